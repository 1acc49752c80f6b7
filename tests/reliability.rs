//! Faults against the real API server: the operator SIGKILLed at random moments during a
//! stream of changes, its connections cut, the API server restarted (on a plane of the
//! test's own) and etcd compacted so resumed watches get 410 Gone, and other writers (an
//! HPA-like scaler, a GitOps re-apply loop) working on the same Deployment while reloads
//! happen.

mod support;

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::ConfigMap};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use support::{
    Binary, CutProxy, OwnPlane, TestNs, WAIT, apply_as_gitops, auto_using, change_job_secret,
    cm_hash, create_job_with_secret, env_of, job_env, marker_var, recorded_hash, rollouts,
    secret_hash, start_operator, wait_env_value, wait_for, wait_job_recreated, wait_warnings,
};

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// ConfigMaps `cfg-<i>` (`k: 0`) and auto Deployments `app-<i>` using them, for i < n.
async fn create_pairs(ns: &TestNs, n: usize) {
    for i in 0..n {
        let cm = format!("cfg-{i}");
        ns.create_cm(&cm, "0").await;
        ns.create::<Deployment>(auto_using(&format!("app-{i}"), &[&cm]))
            .await;
    }
}

/// Where `app-<i>` carries the hash of `cfg-<i>`: an env var, or with the annotations
/// strategy (where a repeated reload shows as another rollout) `last-reloaded-from`.
type Marker = fn(&Deployment, usize) -> Option<String>;

fn env_marker(d: &Deployment, i: usize) -> Option<String> {
    env_of(d, "app", &marker_var("ConfigMap", &format!("cfg-{i}")))
}

fn annotation_marker(d: &Deployment, _: usize) -> Option<String> {
    recorded_hash(d)
}

/// Every `app-<i>` ends with the hash of `cfg-<i>`'s last value (`changes[i]`, unless never
/// changed) and rolled no more often than `cfg-<i>` changed.
async fn assert_final_hashes(
    ns: &TestNs,
    changes: &[u32],
    marker: Marker,
    wait: Duration,
    context: &str,
) {
    for (i, count) in changes.iter().enumerate() {
        let name = format!("app-{i}");
        let want = cm_hash(&count.to_string());
        let d = wait_for(&format!("{name}: the final hash"), wait, || async {
            let d = ns.get::<Deployment>(&name).await;
            let have = marker(&d, i);
            if *count == 0 || have.as_deref() == Some(want.as_str()) {
                Ok(d)
            } else {
                Err(have)
            }
        })
        .await;
        let rollouts = rollouts(&d);
        assert!(
            rollouts <= i64::from(*count),
            "{name} rolled {rollouts} times for {count} changes ({context})"
        );
    }
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_and_never_rolls_more_than_changed() {
    let ns = TestNs::new("killstream").await;
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64);
    eprintln!("seed {seed} (SEED=… replays it)");
    let mut rng = Lcg(seed);
    let n = 50;
    create_pairs(&ns, n).await;
    let mut op = Binary::in_namespace(&ns, "0", &[], &[]).await;
    let mut changes = vec![0u32; n];
    let kills: Vec<u64> = (0..4).map(|_| rng.next(200)).collect();
    for step in 0..200u64 {
        let i = rng.next(n as u64) as usize;
        changes[i] += 1;
        let patch = json!({ "data": { "k": changes[i].to_string() } });
        ns.api::<ConfigMap>()
            .patch(
                &format!("cfg-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("change");
        if kills.contains(&step) {
            op.sigkill().await;
            let run = (step + 1).to_string();
            op = Binary::in_namespace(&ns, &run, &[], &[]).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.next(60))).await;
    }
    assert_final_hashes(&ns, &changes, env_marker, WAIT, &format!("seed {seed}")).await;
    op.sigkill().await;
}

#[tokio::test]
async fn scaler_and_gitops_writers_keep_their_fields_while_reloads_land() {
    let ns = TestNs::new("writers").await;
    ns.create_cm("cfg", "0").await;
    // The GitOps manifest leaves replicas to the scaler, as it must with an HPA.
    let manifest = |version: u32| {
        let mut d = auto_using("web", &["cfg"]);
        d["apiVersion"] = json!("apps/v1");
        d["kind"] = json!("Deployment");
        d["metadata"]["namespace"] = json!(ns.name);
        d["metadata"]["labels"] = json!({ "gitops-revision": version.to_string() });
        d["spec"].as_object_mut().unwrap().remove("replicas");
        d.to_string()
    };
    apply_as_gitops(&manifest(0));
    let op = Binary::in_namespace(&ns, "0", &[], &[]).await;
    let deploys = ns.api::<Deployment>();
    let (mut replicas, mut revision, mut value) = (1, 0, 0);
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        replicas = replicas % 4 + 1;
        let scale = json!({ "spec": { "replicas": replicas } });
        deploys
            .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .expect("scale");
        revision += 1;
        apply_as_gitops(&manifest(revision));
        value += 1;
        ns.set_cm("cfg", &value.to_string()).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let want = cm_hash(&value.to_string());
    let d = wait_env_value(&ns, "web", "STAKATER_CFG_CONFIGMAP", &want).await;
    assert_eq!(
        d.spec.replicas,
        Some(replicas),
        "the scaler's replicas were clobbered"
    );
    let label = d
        .metadata
        .labels
        .unwrap_or_default()
        .remove("gitops-revision");
    assert_eq!(
        label,
        Some(revision.to_string()),
        "the GitOps label was clobbered"
    );
    let failed = op
        .metric("kube_reloader_errors_total{kind=\"write\"}")
        .await;
    assert_eq!(failed.unwrap_or(0.0), 0.0, "reload writes failed");
    op.sigkill().await;
}

#[tokio::test]
async fn cut_connections_during_a_stream_lose_nothing() {
    let ns = TestNs::new("cutstream").await;
    let n = 10;
    create_pairs(&ns, n).await;
    // The operator reaches the API server only through the proxy: its watches and its
    // writes are cut every 1.5 s for 300 ms while changes stream.
    let proxy = CutProxy::to_api_server().await;
    let kubeconfig = proxy.kubeconfig().display().to_string();
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let op = Binary::in_namespace(&ns, "0", &[], &env).await;
    let mut changes = vec![0u32; n];
    let start = tokio::time::Instant::now();
    let mut step = 0usize;
    while start.elapsed() < Duration::from_secs(9) {
        let i = step % n;
        changes[i] += 1;
        ns.set_cm(&format!("cfg-{i}"), &changes[i].to_string())
            .await;
        if step % 15 == 14 {
            // Cut, and change a config while the operator cannot see it.
            proxy.cut();
            let j = (step / 15) % n;
            changes[j] += 1;
            let patch = json!({ "data": { "k": changes[j].to_string() } });
            ns.merge_patch::<ConfigMap>(&format!("cfg-{j}"), patch)
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.restore();
        }
        step += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_final_hashes(&ns, &changes, env_marker, WAIT, "cut stream").await;
    op.sigkill().await;
}

/// Changes `cfg-<i>` round-robin every 50 ms until `stop` turns true. Each change is retried
/// until the API server takes it (it may be down); returns how often each config changed.
async fn stream_changes(
    api: Api<ConfigMap>,
    n: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<u32> {
    let mut changes = vec![0u32; n];
    let mut step = 0;
    while !*stop.borrow() {
        let i = step % n;
        let patch = json!({ "data": { "k": (changes[i] + 1).to_string() } });
        let (name, params, patch) = (
            format!("cfg-{i}"),
            PatchParams::default(),
            Patch::Merge(patch),
        );
        loop {
            let sent = api.patch(&name, &params, &patch);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), sent).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        changes[i] += 1;
        step += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    changes
}

/// After an outage the watcher's backoff between connection attempts may have grown to 30 s.
const OUTAGE_WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn api_server_restarts_and_etcd_compaction_lose_and_repeat_nothing() {
    // Restarting an API server would break every test sharing it: this plane is our own.
    let plane = OwnPlane::start("restart").await;
    let ns = TestNs::on(&plane.kubeconfig, "restart").await;
    let n = 20;
    create_pairs(&ns, n).await;
    // The operator reaches the plane through a proxy, so it can be kept away while the
    // plane moves on without it.
    let proxy = CutProxy::to(&plane.kubeconfig).await;
    let kubeconfig = proxy.kubeconfig().display().to_string();
    let args = ["--reload-strategy=annotations"];
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let op = Binary::in_namespace(&ns, "0", &args, &env).await;

    // 1. The API server stops mid-stream for 2 s and comes back on the same port.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(stream_changes(ns.api(), n, stopped));
    tokio::time::sleep(Duration::from_secs(2)).await;
    plane.stop_api_server().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    plane.start_api_server().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.send(true).unwrap();
    let mut changes = writer.await.expect("the writer");
    assert_final_hashes(
        &ns,
        &changes,
        annotation_marker,
        OUTAGE_WAIT,
        "after a restart",
    )
    .await;

    // 2. With the operator cut off, half the configs change, etcd is compacted past all it
    // has seen, and the API server restarts (its watch cache starts after the compaction):
    // the watches the operator resumes get 410 Gone and must list again.
    const EXPIRED: &str = "kube_reloader_watch_errors_total{kind=\"ConfigMap\",reason=\"expired\"}";
    let expired_before = op.metric(EXPIRED).await.unwrap_or(0.0);
    proxy.cut();
    for (i, count) in changes.iter_mut().enumerate().take(n / 2) {
        *count += 1;
        let patch = json!({ "data": { "k": count.to_string() } });
        ns.merge_patch::<ConfigMap>(&format!("cfg-{i}"), patch)
            .await;
    }
    let revision = plane.compact_etcd().await;
    plane.stop_api_server().await;
    plane.start_api_server().await;
    proxy.restore();
    let restored = tokio::time::Instant::now();
    // 3. And the other half changes after.
    for (i, count) in changes.iter_mut().enumerate().skip(n / 2) {
        *count += 1;
        let patch = json!({ "data": { "k": count.to_string() } });
        ns.merge_patch::<ConfigMap>(&format!("cfg-{i}"), patch)
            .await;
    }

    assert_final_hashes(
        &ns,
        &changes,
        annotation_marker,
        OUTAGE_WAIT,
        "after compaction",
    )
    .await;
    eprintln!(
        "caught up {:?} after the proxy was restored",
        restored.elapsed()
    );
    let expired = op.metric(EXPIRED).await.unwrap_or(0.0);
    assert!(
        expired > expired_before,
        "the ConfigMap watch never got 410 Gone after the compaction at revision {revision}:\n{}",
        op.log()
    );
    assert_eq!(
        op.http_get("/ready").await.0,
        200,
        "not ready after the faults"
    );
    op.sigkill().await;
}

#[tokio::test]
async fn a_reload_write_cut_off_is_retried_and_lands_once() {
    let ns = TestNs::new("cutwrite").await;
    create_pairs(&ns, 1).await;
    let proxy = CutProxy::to_api_server().await;
    let kubeconfig = proxy.kubeconfig().display().to_string();
    // The window puts the write 3 s after the change is seen: inside the cut below. The
    // annotations strategy makes a repeated write show as another rollout.
    let args = ["--coalesce-window=3s", "--reload-strategy=annotations"];
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let op = Binary::in_namespace(&ns, "0", &args, &env).await;
    ns.set_cm("cfg-0", "1").await;
    wait_for("the change seen", WAIT, || async {
        let pending = op.metric("kube_reloader_pending_reloads").await;
        (pending == Some(1.0)).then_some(()).ok_or(pending)
    })
    .await;
    proxy.cut();
    const FAILED: &str = "kube_reloader_errors_total{kind=\"write\"}";
    // The operator's /metrics is local, so it answers during the cut.
    wait_for("the write failing", WAIT, || async {
        let failed = op.metric(FAILED).await;
        (failed >= Some(1.0)).then_some(()).ok_or(failed)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    assert_final_hashes(&ns, &[1], annotation_marker, WAIT, "write cut off").await;
    op.sigkill().await;
}

#[tokio::test]
async fn a_job_whose_recreation_is_refused_for_a_while_is_created_once_allowed() {
    let ns = TestNs::new("jobheld").await;
    let created = create_job_with_secret(&ns).await;
    // An admission policy refuses every Job created in the namespace until it is removed:
    // stakater's Job reload deletes the Job first, so from then on only we hold it.
    let policy = support::Refusal::job_creates(&ns).await;

    let op = start_operator(&ns, &[]).await;
    change_job_secret(&ns).await;
    // A warning that the Job waits.
    let note = wait_warnings(&ns, "migrate", "ReloadFail").await.remove(0);
    assert!(note.contains("held by the test"), "{note}");
    let failed = op
        .metric("kube_reloader_errors_total{kind=\"write\"}")
        .await;
    assert!(
        failed >= Some(1.0),
        "refused creates not counted: {failed:?}"
    );
    assert!(
        ns.api::<Job>().get_opt("migrate").await.unwrap().is_none(),
        "the Job is deleted while creation is refused"
    );
    drop(policy);
    let recreated = wait_job_recreated(&ns, &created).await;
    assert_eq!(
        job_env(&recreated, "STAKATER_S_SECRET"),
        Some(secret_hash(&[("t", "2")])),
        "the re-created Job carries the marker"
    );
}
