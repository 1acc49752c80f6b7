//! Health-gated waves (`--max-concurrent-rollouts`) on the plane with pods (kwok makes
//! rollouts complete): never more than N rollouts at once, every workload rolled; a failed
//! rollout (progress deadline) halts the waves with a Warning until it completes.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use support::{
    pods::{self, Kind},
    *,
};

/// Whether the Deployment's rollout of its current generation is done, as
/// `kubectl rollout status` decides.
fn complete(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.replicas.unwrap_or(1);
    let Some(s) = &d.status else { return false };
    let updated = s.updated_replicas.unwrap_or(0);
    s.observed_generation.unwrap_or(0) >= generation
        && updated >= want
        && s.replicas.unwrap_or(0) <= updated
        && s.available_replicas.unwrap_or(0) >= updated
}

#[tokio::test]
async fn waves_never_exceed_n_rollouts_and_roll_every_workload() {
    let ns = TestNs::new("waves").await;
    ns.create_cm("cfg", "1").await;
    let names: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
    for n in &names {
        let w = pods::workload(Kind::Deployment, n, 2, auto(), &["cfg"], json!({}));
        pods::create(&ns, Kind::Deployment, w).await;
    }
    for n in &names {
        pods::wait_ready_pods(&ns, n, 2).await;
    }
    let op = start_operator(
        &ns,
        &["--max-concurrent-rollouts=2", "--coalesce-window=0s"],
    )
    .await;
    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    let want = cm_hash("2");
    let most = std::sync::atomic::AtomicUsize::new(0);
    wait_for(
        "every Deployment rolled and complete",
        std::time::Duration::from_secs(120),
        || {
            let (ns, var, want, most) = (&ns, &var, &want, &most);
            async move {
                // One LIST is one snapshot: a slot is freed only after the completion that
                // frees it, so a snapshot never shows more rollouts than the operator allows.
                let all: Vec<Deployment> = ns.list().await;
                let rolled =
                    |d: &Deployment| env_of(d, "app", var).as_deref() == Some(want.as_str());
                let rolling = all.iter().filter(|d| rolled(d) && !complete(d)).count();
                most.fetch_max(rolling, std::sync::atomic::Ordering::Relaxed);
                assert!(rolling <= 2, "{rolling} rollouts at once");
                let done = all.iter().filter(|d| rolled(d) && complete(d)).count();
                if done == 6 {
                    Ok(())
                } else {
                    Err(format!("{done} of 6 done, {rolling} rolling"))
                }
            }
        },
    )
    .await;
    let held = op
        .metric(r#"kube_reloader_deferred_reloads_total{reason="waves"}"#)
        .await
        .unwrap_or(0.0);
    assert!(held > 0.0, "some reloads waited for a slot");
    assert!(op.metric("kube_reloader_rollouts_in_progress").await == Some(0.0));
    eprintln!("at most {most:?} rollouts seen at once");
    op.shutdown().await;
}

#[tokio::test]
async fn a_failed_rollout_halts_the_waves_until_it_completes() {
    let ns = TestNs::new("waves-halt").await;
    ns.create_cm("cfg", "1").await;
    let mut first = auto();
    first["kube-reloader.io/rollout-priority"] = json!("10");
    // Its pods never schedule: each rollout misses its 2 s progress deadline.
    let stuck = json!({ "progressDeadlineSeconds": 2 });
    let mut broken = pods::workload(Kind::Deployment, "broken", 1, first, &["cfg"], stuck);
    broken["spec"]["template"]["spec"]["nodeSelector"] = json!({ "no-such-node": "x" });
    pods::create(&ns, Kind::Deployment, broken).await;
    let after = pods::workload(Kind::Deployment, "after", 1, auto(), &["cfg"], json!({}));
    pods::create(&ns, Kind::Deployment, after).await;
    pods::wait_ready_pods(&ns, "after", 1).await;
    let op = start_operator(
        &ns,
        &["--max-concurrent-rollouts=1", "--coalesce-window=0s"],
    )
    .await;

    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    wait_marker(&ns, "broken", &var).await;
    let notes = wait_warnings(&ns, "broken", "RolloutFailed").await;
    assert!(notes[0].contains("the other reloads wait"), "{notes:?}");
    assert_eq!(op.metric("kube_reloader_waves_halted").await, Some(1.0));
    assert_eq!(
        op.metric("kube_reloader_rollouts_failed_total").await,
        Some(1.0)
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let d: Deployment = ns.get("after").await;
    assert!(!has_env(&d, &var), "held while the failed rollout stands");

    // Fixed: its rollout completes, and the held reload goes out.
    let fix = json!({ "spec": { "template": { "spec": { "nodeSelector": null } } } });
    ns.merge_patch::<Deployment>("broken", fix).await;
    wait_env_value(&ns, "after", &var, &cm_hash("2")).await;
    assert_eq!(op.metric("kube_reloader_waves_halted").await, Some(0.0));
    op.shutdown().await;
}
