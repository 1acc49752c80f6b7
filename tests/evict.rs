//! The eviction strategy (`kube-reloader.io/reload-strategy: evict`) on the plane with pods:
//! the pods are replaced through the Eviction API with a PodDisruptionBudget respected, the
//! template untouched; killed midway, a restarted operator finishes without evicting a pod
//! twice.

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::{apps::v1::Deployment, policy::v1::PodDisruptionBudget};
use serde_json::json;
use support::{
    pods::{self, Kind, PodLog},
    *,
};

fn evicting(name: &str, replicas: i32) -> serde_json::Value {
    let annotations = json!({
        "reloader.stakater.com/auto": "true",
        "kube-reloader.io/reload-strategy": "evict",
    });
    pods::workload(
        Kind::Deployment,
        name,
        replicas,
        annotations,
        &["cfg"],
        json!({}),
    )
}

fn names(pods: &[k8s_openapi::api::core::v1::Pod]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

#[tokio::test]
async fn pods_are_evicted_within_the_disruption_budget_and_the_template_stays() {
    let ns = TestNs::new("evict").await;
    ns.create_cm("cfg", "1").await;
    pods::create(&ns, Kind::Deployment, evicting("w", 3)).await;
    ns.create::<PodDisruptionBudget>(json!({
        "metadata": { "name": "w" },
        "spec": { "minAvailable": 2, "selector": { "matchLabels": { "app": "w" } } }
    }))
    .await;
    let before = pods::wait_ready_pods(&ns, "w", 3).await;
    let template_before = ns.get::<Deployment>("w").await.spec.template;
    let log = PodLog::start(&ns).await;
    let op = start_operator(&ns, &["--coalesce-window=0s"]).await;

    ns.set_cm("cfg", "2").await;
    let old = names(&before);
    wait_for("every pod replaced", WAIT, || async {
        let live = pods::live_pods(&ns, "w").await;
        let fresh = live.iter().filter(|p| pods::is_ready(p)).count();
        let left = names(&live).intersection(&old).count();
        if left == 0 && fresh == 3 {
            Ok(())
        } else {
            Err((left, fresh))
        }
    })
    .await;
    let created = log.created("w");
    assert_eq!(
        created.len(),
        3,
        "one replacement per pod, none evicted again"
    );
    let least_ready = log.counts("w", &before).iter().map(|(_, r)| *r).min();
    assert!(
        least_ready >= Some(2),
        "the budget held: {:?}",
        log.counts("w", &before)
    );
    let d: Deployment = ns.get("w").await;
    assert_eq!(
        d.spec.template, template_before,
        "the template was not touched"
    );
    assert_eq!(
        pods::revisions(&ns, Kind::Deployment, "w").await,
        1,
        "no new ReplicaSet"
    );
    assert!(!has_env(&d, &marker_var("ConfigMap", "cfg")));
    let record = annotation(&d, "kube-reloader.io/evicted-for").expect("the record");
    assert!(record.contains(&cm_hash("2")), "{record}");
    op.shutdown().await;
}

#[tokio::test]
async fn a_restarted_operator_finishes_the_evictions_without_evicting_a_pod_twice() {
    let ns = TestNs::new("evict-restart").await;
    ns.create_cm("cfg", "1").await;
    pods::create(&ns, Kind::Deployment, evicting("w", 4)).await;
    let before = pods::wait_ready_pods(&ns, "w", 4).await;
    let log = PodLog::start(&ns).await;
    let first = Binary::in_namespace(&ns, "first", &[], &[]).await;

    ns.set_cm("cfg", "2").await;
    wait_for("the first eviction", WAIT, || async {
        match log.created("w").len() {
            0 => Err("none yet"),
            _ => Ok(()),
        }
    })
    .await;
    first.sigkill().await;
    let done_by_first = log.created("w").len();
    let _second = Binary::in_namespace(&ns, "second", &[], &[]).await;
    let old = names(&before);
    wait_for("every pod replaced", WAIT, || async {
        let live = pods::live_pods(&ns, "w").await;
        let left = names(&live).intersection(&old).count();
        let ready = live.iter().filter(|p| pods::is_ready(p)).count();
        if left == 0 && ready == 4 {
            Ok(())
        } else {
            Err((left, ready))
        }
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        log.created("w").len(),
        4,
        "each pod replaced once (the first run replaced {done_by_first})"
    );
}
