//! Reloads as a user sees them: pods replaced. On the shared plane kwok makes pods Running
//! and Ready (no container runs), so a reload's rollout runs to completion under the
//! workload's own rules. Each config change replaces every pod exactly once, a burst
//! replaces them once, a pause-period pauses then completes (also across a SIGKILL), a
//! change during a rollout gives at most one more, and maxUnavailable and a StatefulSet's
//! partition are kept.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};
use support::{
    Binary, TestNs, WAIT, annotation, auto, cm_hash, marker_var,
    pods::{self, Kind, PodLog},
    start_operator, wait_for,
};

const VAR: &str = "STAKATER_CFG_CONFIGMAP";

/// The workload `w` with `replicas` pods (a DaemonSet: one per node) rolled out and Ready
/// before the test goes on; returns those pods.
async fn rolled_out(
    ns: &TestNs,
    kind: Kind,
    obj: Value,
    n: usize,
) -> Vec<k8s_openapi::api::core::v1::Pod> {
    pods::create(ns, kind, obj).await;
    pods::rollout_status(ns, kind, "w").await;
    pods::wait_ready_pods(ns, "w", n).await
}

/// After a change: `n` live pods, all Ready, all on one revision other than `old`, each
/// carrying `var` = `hash`; and exactly `n` pods created since the log started (each old
/// pod replaced once), every one of them on that revision.
fn assert_replaced_once(
    kind: Kind,
    log: &PodLog,
    now: &[k8s_openapi::api::core::v1::Pod],
    old: &str,
    var: &str,
    hash: &str,
    n: usize,
) {
    let revs: Vec<String> = now.iter().map(|p| pods::revision(kind, p)).collect();
    assert_eq!(now.len(), n, "live pods: {revs:?}");
    assert!(now.iter().all(pods::is_ready), "every pod Ready");
    assert!(
        revs.iter().all(|r| r == &revs[0] && r != old),
        "one new revision: {revs:?} (old {old})"
    );
    for p in now {
        assert_eq!(
            pods::pod_env(p, var).as_deref(),
            Some(hash),
            "{var} on {:?}",
            p.metadata.name
        );
    }
    let created = log.created("w");
    let created_revs: Vec<String> = created.iter().map(|p| pods::revision(kind, p)).collect();
    let names: Vec<_> = created.iter().map(|p| p.metadata.name.clone()).collect();
    assert_eq!(
        created.len(),
        n,
        "pods created by the change: {names:?} {created_revs:?}"
    );
    assert!(
        created_revs.iter().all(|r| r == &revs[0]),
        "{created_revs:?}"
    );
}

/// One ConfigMap change to a workload of `kind` with three pods (a DaemonSet: one per fake
/// node): the rollout completes and each pod is replaced exactly once, with the new env var.
async fn one_change_replaces_every_pod_once(kind: Kind) {
    let ns = TestNs::new(&format!("pods-{}", kind.name().to_lowercase())).await;
    ns.create_cm("cfg", "1").await;
    let n = match kind {
        Kind::DaemonSet => pods::fake_nodes(&ns).await,
        _ => 3,
    };
    let before = rolled_out(
        &ns,
        kind,
        pods::workload(kind, "w", 3, auto(), &["cfg"], json!({})),
        n,
    )
    .await;
    let old = pods::revision(kind, &before[0]);
    let log = PodLog::start(&ns).await;
    let _op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "2").await;
    pods::wait_template_env(&ns, kind, "w", VAR, &cm_hash("2")).await;
    pods::rollout_status(&ns, kind, "w").await;
    let now = pods::wait_ready_pods(&ns, "w", n).await;
    assert_replaced_once(kind, &log, &now, &old, VAR, &cm_hash("2"), n);
    // Nothing more comes later (a second write would be a second rollout).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(log.created("w").len(), n, "no further pods");
    assert_eq!(pods::revisions(&ns, kind, "w").await, 2, "one rollout");
}

#[tokio::test]
async fn a_change_replaces_every_pod_of_a_deployment_once() {
    one_change_replaces_every_pod_once(Kind::Deployment).await;
}

#[tokio::test]
async fn a_change_replaces_every_pod_of_a_statefulset_once() {
    one_change_replaces_every_pod_once(Kind::StatefulSet).await;
}

#[tokio::test]
async fn a_change_replaces_every_pod_of_a_daemonset_once() {
    one_change_replaces_every_pod_once(Kind::DaemonSet).await;
}

#[tokio::test]
async fn a_burst_of_changes_to_several_configs_replaces_the_pods_once() {
    let ns = TestNs::new("pods-burst").await;
    let names = ["a", "b", "c"];
    for n in names {
        ns.create_cm(n, "1").await;
    }
    let obj = pods::workload(Kind::Deployment, "w", 3, auto(), &names, json!({}));
    let before = rolled_out(&ns, Kind::Deployment, obj, 3).await;
    let old = pods::revision(Kind::Deployment, &before[0]);
    let log = PodLog::start(&ns).await;
    // Default settings: the burst falls within the coalescing window.
    let _op = start_operator(&ns, &[]).await;
    for n in names {
        ns.set_cm(n, "2").await;
    }
    pods::wait_template_env(
        &ns,
        Kind::Deployment,
        "w",
        "STAKATER_C_CONFIGMAP",
        &cm_hash("2"),
    )
    .await;
    pods::rollout_status(&ns, Kind::Deployment, "w").await;
    let now = pods::wait_ready_pods(&ns, "w", 3).await;
    for n in names {
        let var = marker_var("ConfigMap", n);
        assert_replaced_once(Kind::Deployment, &log, &now, &old, &var, &cm_hash("2"), 3);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(log.created("w").len(), 3, "no further pods");
    assert_eq!(
        pods::revisions(&ns, Kind::Deployment, "w").await,
        2,
        "one rollout"
    );
}

fn paused(d: &Deployment) -> (Option<bool>, bool) {
    let marked = annotation(d, "deployment.reloader.stakater.com/paused-at").is_some();
    (d.spec.paused, marked)
}

/// A Deployment with a pause-period of `period`, rolled out with two Ready pods.
async fn pausing_deployment(ns: &TestNs, period: &str) -> (String, PodLog) {
    ns.create_cm("cfg", "1").await;
    let mut ann = auto();
    ann["deployment.reloader.stakater.com/pause-period"] = json!(period);
    let before = rolled_out(
        ns,
        Kind::Deployment,
        pods::workload(Kind::Deployment, "w", 2, ann, &["cfg"], json!({})),
        2,
    )
    .await;
    (
        pods::revision(Kind::Deployment, &before[0]),
        PodLog::start(ns).await,
    )
}

/// Waits for the pause that carries the reload; while it lasts no pod is replaced.
async fn wait_paused_without_rollout(ns: &TestNs, log: &PodLog) {
    wait_for("the Deployment paused with the reload", WAIT, || async {
        let d = ns.get::<Deployment>("w").await;
        match (paused(&d), support::env_of(&d, "app", VAR)) {
            ((Some(true), true), Some(_)) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log.created("w").len(), 0, "no pod replaced while paused");
    assert_eq!(
        pods::revisions(ns, Kind::Deployment, "w").await,
        1,
        "no rollout while paused"
    );
}

/// Waits until the Deployment is resumed (not paused, no paused-at), then for the rollout;
/// both pods replaced once.
async fn resumed_and_completed(ns: &TestNs, log: &PodLog, old: &str) {
    wait_for("the Deployment resumed", WAIT, || async {
        match paused(&ns.get::<Deployment>("w").await) {
            (Some(false) | None, false) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    pods::rollout_status(ns, Kind::Deployment, "w").await;
    let now = pods::wait_ready_pods(ns, "w", 2).await;
    assert_replaced_once(Kind::Deployment, log, &now, old, VAR, &cm_hash("2"), 2);
    assert_eq!(
        pods::revisions(ns, Kind::Deployment, "w").await,
        2,
        "one rollout"
    );
    let (spec_paused, marked) = paused(&ns.get::<Deployment>("w").await);
    assert!(!spec_paused.unwrap_or(false) && !marked, "left unpaused");
}

#[tokio::test]
async fn pause_period_pauses_then_resumes_and_the_rollout_completes() {
    let ns = TestNs::new("pods-pause").await;
    let (old, log) = pausing_deployment(&ns, "4s").await;
    let _op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "2").await;
    wait_paused_without_rollout(&ns, &log).await;
    resumed_and_completed(&ns, &log, &old).await;
}

#[tokio::test]
async fn pause_period_completes_when_the_operator_is_killed_mid_pause() {
    let ns = TestNs::new("pods-pause-kill").await;
    let (old, log) = pausing_deployment(&ns, "4s").await;
    let op = Binary::in_namespace(&ns, "first", &[], &[]).await;
    ns.set_cm("cfg", "2").await;
    wait_paused_without_rollout(&ns, &log).await;
    op.sigkill().await;
    // Past the pause-period with no operator running: still paused, nothing replaced.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(paused(&ns.get::<Deployment>("w").await), (Some(true), true));
    assert_eq!(
        log.created("w").len(),
        0,
        "no pod replaced while no operator ran"
    );
    let _op = Binary::in_namespace(&ns, "second", &[], &[]).await;
    resumed_and_completed(&ns, &log, &old).await;
}

#[tokio::test]
async fn a_change_during_a_rollout_gives_at_most_one_more_and_ends_on_the_latest() {
    let ns = TestNs::new("pods-midway").await;
    ns.create_cm("cfg", "1").await;
    // Each new pod counts as available 2 s after it is Ready, one at a time: a rollout of
    // three pods takes over 6 s.
    let spec = json!({ "minReadySeconds": 2,
        "strategy": { "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } } });
    let obj = pods::workload(Kind::Deployment, "w", 3, auto(), &["cfg"], spec);
    rolled_out(&ns, Kind::Deployment, obj, 3).await;
    let log = PodLog::start(&ns).await;
    let _op = start_operator(&ns, &["--coalesce-window=0s"]).await;
    ns.set_cm("cfg", "2").await;
    pods::wait_template_env(&ns, Kind::Deployment, "w", VAR, &cm_hash("2")).await;
    wait_for("the first rollout under way", WAIT, || async {
        match log.created("w").len() {
            n @ 1..3 => Ok(n),
            n => Err(n),
        }
    })
    .await;
    ns.set_cm("cfg", "3").await;
    pods::wait_template_env(&ns, Kind::Deployment, "w", VAR, &cm_hash("3")).await;
    pods::rollout_status(&ns, Kind::Deployment, "w").await;
    let now = pods::wait_ready_pods(&ns, "w", 3).await;
    let latest = pods::revision(Kind::Deployment, &now[0]);
    for p in &now {
        assert_eq!(pods::revision(Kind::Deployment, p), latest);
        assert_eq!(
            pods::pod_env(p, VAR),
            Some(cm_hash("3")),
            "the latest hash on every pod"
        );
    }
    assert_eq!(
        pods::revisions(&ns, Kind::Deployment, "w").await,
        3,
        "two changes, two rollouts"
    );
    let created = log.created("w").len();
    assert!(
        (4..=6).contains(&created),
        "pods created: {created} (3 for the latest, at most 3 before)"
    );
}

#[tokio::test]
async fn the_rollout_keeps_the_deployments_max_unavailable_and_max_surge() {
    let ns = TestNs::new("pods-strategy").await;
    ns.create_cm("cfg", "1").await;
    let spec = json!({ "minReadySeconds": 1,
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } } });
    let obj = pods::workload(Kind::Deployment, "w", 4, auto(), &["cfg"], spec);
    let before = rolled_out(&ns, Kind::Deployment, obj, 4).await;
    let log = PodLog::start(&ns).await;
    let _op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "2").await;
    pods::wait_template_env(&ns, Kind::Deployment, "w", VAR, &cm_hash("2")).await;
    pods::rollout_status(&ns, Kind::Deployment, "w").await;
    let old = pods::revision(Kind::Deployment, &before[0]);
    let now = pods::wait_ready_pods(&ns, "w", 4).await;
    assert_replaced_once(Kind::Deployment, &log, &now, &old, VAR, &cm_hash("2"), 4);
    let counts = log.counts("w", &before);
    assert!(!counts.is_empty(), "pod events seen");
    for (live, ready) in &counts {
        assert!(
            *live <= 4,
            "maxSurge 0: at most 4 pods, saw {live}: {counts:?}"
        );
        assert!(
            *ready >= 3,
            "maxUnavailable 1: at least 3 Ready, saw {ready}: {counts:?}"
        );
    }
}

#[tokio::test]
async fn the_rollout_keeps_the_statefulsets_partition() {
    let ns = TestNs::new("pods-partition").await;
    ns.create_cm("cfg", "1").await;
    let spec = json!({ "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 2 } } });
    let obj = pods::workload(Kind::StatefulSet, "w", 3, auto(), &["cfg"], spec);
    let before = rolled_out(&ns, Kind::StatefulSet, obj, 3).await;
    let old = pods::revision(Kind::StatefulSet, &before[0]);
    let log = PodLog::start(&ns).await;
    let _op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "2").await;
    pods::wait_template_env(&ns, Kind::StatefulSet, "w", VAR, &cm_hash("2")).await;
    let status = pods::rollout_status(&ns, Kind::StatefulSet, "w").await;
    assert!(
        status.contains("partitioned roll out complete: 1 new pods"),
        "{status}"
    );
    let now = pods::wait_ready_pods(&ns, "w", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for p in &now {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        let rev = pods::revision(Kind::StatefulSet, p);
        let was = before
            .iter()
            .find(|b| b.metadata.name == p.metadata.name)
            .expect("same names");
        if name == "w-2" {
            assert_ne!(rev, old, "w-2, above the partition, is updated");
            assert_eq!(pods::pod_env(p, VAR), Some(cm_hash("2")));
        } else {
            assert_eq!(rev, old, "{name}, below the partition, keeps its revision");
            assert_eq!(p.metadata.uid, was.metadata.uid, "{name} not replaced");
        }
    }
    let created: Vec<_> = log
        .created("w")
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(created, ["w-2"], "only w-2 replaced");
}
