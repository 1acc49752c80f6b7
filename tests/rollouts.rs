//! Argo Rollouts (`--is-Argo-Rollouts`), both rollout strategies, on a minimal Rollout CRD.

mod support;

use kube::api::{Api, DynamicObject, PostParams};
use kube_reloader::operator::{model::hash, watch::rollout_resource};
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

/// Once per test binary: two concurrent creates of the CRD would race.
fn install_crd() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
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
    });
}

#[tokio::test]
async fn rollouts_get_the_marker_or_a_restart() {
    install_crd();
    let ns = TestNs::new("rollout").await;
    ns.create_cm("cfg", "1").await;
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

    ns.set_cm("cfg", "2").await;
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

/// Two configs changed 0.3 s apart, the second container's first: one write with both
/// markers, and the containers in their order.
#[tokio::test]
async fn a_coalesced_rollout_write_keeps_the_container_order() {
    install_crd();
    let ns = TestNs::new("rollout-order").await;
    for n in ["a", "b"] {
        ns.create_cm(n, "1").await;
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let r: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": { "name": "w", "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": { "replicas": 1, "template": { "spec": { "containers": [
            { "name": "main", "image": "x", "envFrom": [{ "configMapRef": { "name": "a" } }] },
            { "name": "side", "image": "x", "envFrom": [{ "configMapRef": { "name": "b" } }] }
        ]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &r)
        .await
        .expect("create rollout");
    let _op = start_operator(&ns, &["--is-Argo-Rollouts=true", "--coalesce-window=2s"]).await;

    for n in ["b", "a"] {
        ns.set_cm(n, "2").await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let containers = wait_for("both markers", WAIT, || async {
        let r = api.get("w").await.expect("get");
        let c = r.data.pointer("/spec/template/spec/containers").cloned();
        let has = |i: usize| {
            c.as_ref()
                .and_then(|c| c.pointer(&format!("/{i}/env/0/name")))
                .is_some()
        };
        if has(0) && has(1) {
            Ok(c.unwrap())
        } else {
            Err(c)
        }
    })
    .await;
    let names: Vec<&str> = containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main", "side"]);
    assert_eq!(containers[0]["env"][0]["name"], "STAKATER_A_CONFIGMAP");
    assert_eq!(containers[1]["env"][0]["name"], "STAKATER_B_CONFIGMAP");
}

#[tokio::test]
async fn a_rollout_with_workload_ref_is_rolled_through_its_deployment() {
    use k8s_openapi::api::apps::v1::Deployment;
    install_crd();
    let ns = TestNs::new("rollout-ref").await;
    ns.create_cm("cfg", "1").await;
    // The Deployment whose template Argo runs (scaled to 0, not annotated itself).
    ns.create::<Deployment>(support::app_deployment(
        "base",
        json!({}),
        support::configmap_refs(&["cfg"]),
    ))
    .await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let ro: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": { "name": "ro", "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": { "replicas": 1,
                  "workloadRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "base" } }
    }))
    .unwrap();
    api.create(&PostParams::default(), &ro)
        .await
        .expect("create rollout");
    let op = start_operator(&ns, &["--is-Argo-Rollouts=true", "--coalesce-window=0s"]).await;

    ns.set_cm("cfg", "2").await;
    let var = support::marker_var("ConfigMap", "cfg");
    support::wait_env_value(&ns, "base", &var, &support::cm_hash("2")).await;
    let ro = api.get("ro").await.unwrap();
    assert!(
        ro.data["spec"].get("template").is_none(),
        "the Rollout is not written: {:#}",
        ro.data
    );
    // A restart that re-checks every config writes nothing: the markers are read from the
    // Deployment's template, not the Rollout's (it has none).
    op.shutdown().await;
    let generation = support::deployment_generation(&ns, "base").await;
    let flags = [
        "--is-Argo-Rollouts=true",
        "--coalesce-window=0s",
        "--reload-on-create=true",
        "--sync-after-restart=true",
    ];
    let op = start_operator(&ns, &flags).await;
    let skipped = r#"reloader_skipped_total{reason="strategy_not_updated"}"#;
    wait_for("the re-check found the markers in place", WAIT, || async {
        match op.metric(skipped).await {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        support::deployment_generation(&ns, "base").await,
        generation
    );
    op.shutdown().await;
}
