//! Argo Rollouts (`--is-Argo-Rollouts`), both rollout strategies, on a minimal Rollout CRD.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, PostParams};
use kube_reloader::{hash, watch::rollout_resource};
use serde_json::{Value, json};
use support::{TestNs, WAIT, kubectl, repo_root, start_operator, wait_for};

fn rollout(name: &str, annotations: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "replicas": 1, "template": { "spec": { "containers": [
            { "name": "app", "image": "x", "envFrom": [{ "configMapRef": { "name": "cfg" } }] }
        ]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn rollouts_get_the_marker_or_a_restart() {
    let crd = repo_root().join("tests/fixtures/rollout-crd.yaml");
    kubectl(&["apply", "-f", crd.to_str().unwrap()], None);
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/rollouts.argoproj.io",
            "--timeout=30s",
        ],
        None,
    );
    let ns = TestNs::new("rollout").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "cfg" }, "data": { "k": "1" } }))
        .await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let pp = PostParams::default();
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    api.create(&pp, &rollout("updated", auto.clone()))
        .await
        .expect("create rollout");
    let mut restart = auto;
    restart["reloader.stakater.com/rollout-strategy"] = json!("restart");
    api.create(&pp, &rollout("restarted", restart))
        .await
        .expect("create rollout");
    let _op = start_operator(&ns, &["--is-Argo-Rollouts=true"]).await;

    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    let mut data = std::collections::BTreeMap::new();
    data.insert("k".to_string(), "2".to_string());
    let expected = hash::configmap_hash(Some(&data), None).to_string();
    wait_for("the env var in the Rollout's template", WAIT, || async {
        let r = api.get("updated").await.expect("get");
        let env = r
            .data
            .pointer("/spec/template/spec/containers/0/env")
            .cloned();
        match &env {
            Some(e) if e == &json!([{ "name": "STAKATER_CFG_CONFIGMAP", "value": expected }]) => {
                Ok(())
            }
            _ => Err(env),
        }
    })
    .await;
    let restarted = wait_for(
        "spec.restartAt on the restart-strategy Rollout",
        WAIT,
        || async {
            let r = api.get("restarted").await.expect("get");
            match r.data.pointer("/spec/restartAt") {
                Some(Value::String(t)) if t.parse::<k8s_openapi::jiff::Timestamp>().is_ok() => {
                    Ok(r.clone())
                }
                other => Err(other.cloned()),
            }
        },
    )
    .await;
    assert_eq!(
        restarted
            .data
            .pointer("/spec/template/spec/containers/0/env"),
        None,
        "restart leaves the template (and Git) alone"
    );
}
