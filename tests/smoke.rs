//! The control plane is real: a Deployment's pod-template change makes the controller
//! manager create a second ReplicaSet, which is how most reload tests observe a rollout;
//! and it has pods (kwok's fake nodes), which `tests/pods.rs` follows to completion.

mod support;

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use serde_json::json;
use support::{TestNs, pods::replica_sets, wait_for};

#[tokio::test]
async fn template_change_creates_a_second_replicaset() {
    let ns = TestNs::new("smoke").await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "app-config" },
        "data": { "greeting": "hello" }
    }))
    .await;
    ns.create::<Deployment>(json!({
        "metadata": { "name": "app" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "app" } },
            "template": {
                "metadata": { "labels": { "app": "app" } },
                "spec": { "containers": [{
                    "name": "app", "image": "example.invalid/app:1",
                    "envFrom": [{ "configMapRef": { "name": "app-config" } }]
                }]}
            }
        }
    }))
    .await;

    let first = wait_for("the first ReplicaSet", Duration::from_secs(30), || async {
        let rs = replica_sets(&ns, "app").await;
        if rs.len() == 1 { Ok(rs) } else { Err(rs.len()) }
    })
    .await;

    ns.merge_patch::<Deployment>(
        "app",
        json!({ "spec": { "template": { "metadata": { "annotations": { "changed": "1" } } } } }),
    )
    .await;

    let all = wait_for("a second ReplicaSet", Duration::from_secs(30), || async {
        let rs = replica_sets(&ns, "app").await;
        if rs.len() == 2 { Ok(rs) } else { Err(rs.len()) }
    })
    .await;
    let first_uid = first[0].metadata.uid.clone();
    let new_rs = all
        .iter()
        .find(|rs| rs.metadata.uid != first_uid)
        .expect("one ReplicaSet is new");
    let annotations = new_rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref());
    assert_eq!(
        annotations
            .and_then(|a| a.get("changed"))
            .map(String::as_str),
        Some("1"),
        "the new ReplicaSet carries the changed template"
    );
}

/// The plane has pods: kwok's fake nodes are Ready, a Deployment's pods are scheduled and
/// become Running and Ready, and a Job made from a CronJob completes.
#[tokio::test]
async fn pods_run_and_a_cronjobs_job_completes() {
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    use support::pods::{self, Kind};
    let ns = TestNs::new("smoke-pods").await;
    ns.create_cm("cfg", "1").await;
    let d = pods::workload(Kind::Deployment, "w", 2, json!({}), &["cfg"], json!({}));
    pods::create(&ns, Kind::Deployment, d).await;
    let status = pods::rollout_status(&ns, Kind::Deployment, "w").await;
    assert!(status.contains("successfully rolled out"), "{status}");
    for p in pods::wait_ready_pods(&ns, "w", 2).await {
        let node = p.spec.and_then(|s| s.node_name).unwrap_or_default();
        assert!(
            node.starts_with("kwok-node-"),
            "scheduled onto a fake node: {node}"
        );
    }
    ns.create::<CronJob>(json!({
        "metadata": { "name": "nightly" },
        "spec": { "schedule": "0 0 1 1 *", "jobTemplate": { "spec": { "template": { "spec": {
            "restartPolicy": "Never", "containers": [{ "name": "c", "image": "example.invalid/c:1" }]
        }}}}}
    }))
    .await;
    support::kubectl(
        &[
            "create",
            "job",
            "now",
            "--from=cronjob/nightly",
            "-n",
            &ns.name,
        ],
        None,
    );
    wait_for("the Job complete", Duration::from_secs(30), || async {
        let j = ns.get::<Job>("now").await;
        let conditions = j.status.and_then(|s| s.conditions).unwrap_or_default();
        match conditions.iter().find(|c| c.type_ == "Complete") {
            Some(c) if c.status == "True" => Ok(()),
            _ => Err(conditions),
        }
    })
    .await;
}
