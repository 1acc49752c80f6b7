//! Opt-in by policy against the real API server: `--workload-selector` and a Namespace's
//! `kube-reloader.io/auto` (with `--namespace-opt-in`) make workloads auto, an explicit
//! `auto: "false"` wins over both; and skips that are likely mistakes are counted.

mod support;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use support::*;

fn labelled(
    name: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) -> serde_json::Value {
    let mut d = app_deployment(name, annotations, configmap_refs(&["cfg"]));
    d["metadata"]["labels"] = labels;
    d
}

async fn opt_in(ns: &TestNs, value: &str) {
    let api: Api<Namespace> = Api::all(ns.client.clone());
    let patch = json!({ "metadata": { "annotations": { "kube-reloader.io/auto": value } } });
    api.patch(&ns.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("annotate the namespace");
}

#[tokio::test]
async fn the_workload_selector_makes_matching_workloads_auto_unless_they_say_false() {
    let ns = TestNs::new("policy-selector").await;
    ns.create_cm("cfg", "1").await;
    let yes = json!({ "reload": "yes" });
    ns.create::<Deployment>(labelled("picked", yes.clone(), json!({})))
        .await;
    let off = json!({ "reloader.stakater.com/auto": "false" });
    ns.create::<Deployment>(labelled("refuses", yes, off)).await;
    ns.create::<Deployment>(labelled("unlabelled", json!({}), json!({})))
        .await;
    let op = start_operator(&ns, &["--workload-selector=reload:yes"]).await;

    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    wait_env_value(&ns, "picked", &var, &cm_hash("2")).await;
    tokio::time::sleep(SETTLE).await;
    for name in ["refuses", "unlabelled"] {
        let d: Deployment = ns.get(name).await;
        assert!(!has_env(&d, &var), "{name} rolled");
    }
    op.shutdown().await;
}

#[tokio::test]
async fn a_namespace_opted_in_makes_its_workloads_auto_until_it_opts_out() {
    let ns = TestNs::new("policy-namespace").await;
    ns.create_cm("cfg", "1").await;
    ns.create::<Deployment>(app_deployment("plain", json!({}), configmap_refs(&["cfg"])))
        .await;
    let off = json!({ "reloader.stakater.com/auto": "false" });
    ns.create::<Deployment>(app_deployment("refuses", off, configmap_refs(&["cfg"])))
        .await;
    ns.create::<Deployment>(auto_using("sentinel", &["cfg"]))
        .await;
    opt_in(&ns, "true").await;
    let op = start_global_operator(&ns, &["--namespace-opt-in"]).await;

    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    wait_env_value(&ns, "plain", &var, &cm_hash("2")).await;
    tokio::time::sleep(SETTLE).await;
    let d: Deployment = ns.get("refuses").await;
    assert!(!has_env(&d, &var), "an explicit auto: false wins");

    // Opted out: the next change rolls nothing (`sentinel`, auto by its own annotation,
    // shows the operator handled that change). Opted in again: the change after rolls.
    opt_in(&ns, "false").await;
    // The Namespace and ConfigMap watches are separate streams: let the annotation's event
    // arrive before the change it must govern.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    ns.set_cm("cfg", "3").await;
    wait_env_value(&ns, "sentinel", &var, &cm_hash("3")).await;
    tokio::time::sleep(SETTLE).await;
    let d: Deployment = ns.get("plain").await;
    assert_eq!(
        env_of(&d, "app", &var),
        Some(cm_hash("2")),
        "opted out: not rolled"
    );
    opt_in(&ns, "true").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    ns.set_cm("cfg", "4").await;
    wait_env_value(&ns, "plain", &var, &cm_hash("4")).await;
    op.shutdown().await;
}

#[tokio::test]
async fn skips_that_are_likely_mistakes_are_counted_by_reason() {
    let ns = TestNs::new("policy-suspects").await;
    ns.create_cm("cfg", "1").await;
    create_config(&ns, "Secret", "creds", &json!({}), &json!({})).await;
    let typed = json!({ "configmap.reloader.stakater.com/auto": "true" });
    let pod = app_pod(
        configmap_refs(&["cfg"]),
        json!([{ "name": "PW", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "k" } } }]),
    );
    ns.create::<Deployment>(deployment("typed", typed, pod))
        .await;
    let op = start_operator(&ns, &[]).await;
    let series = r#"kube_reloader_suspicious_skips_total{reason="typed_auto_other_kind"}"#;
    assert_eq!(
        op.metric(series).await,
        Some(0.0),
        "every reason starts at 0"
    );

    change_config(&ns, "Secret", "creds").await;
    wait_for("the skip to be counted", WAIT, || async {
        match op.metric(series).await {
            Some(1.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let d: Deployment = ns.get("typed").await;
    assert!(
        !has_env(&d, &marker_var("Secret", "creds")),
        "still skipped, as stakater does"
    );
    let other = r#"kube_reloader_suspicious_skips_total{reason="excluded_but_used"}"#;
    assert_eq!(op.metric(other).await, Some(0.0));
    op.shutdown().await;
}
