//! `--workload-kinds`: a custom resource with its pod template at a path of its own rolls on
//! a config change under both strategies, found by discovery (its plural is irregular); a
//! declared kind the API does not serve is reported and holds nothing back; `explain` reads
//! the same kind.

mod support;

use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use support::*;

const WIDGET: &str = "--workload-kinds=example.kube-reloader.io/v1/Widget:spec.runner.podTemplate";

/// Once per test binary: two concurrent creates of the CRD would race.
fn install_crd() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let crd = repo_root().join("tests/fixtures/widget-crd.yaml");
        kubectl(&["apply", "-f", crd.to_str().unwrap()], None);
        kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "crd/widgetries.example.kube-reloader.io",
                "--timeout=30s",
            ],
            None,
        );
    });
}

fn widgets(ns: &TestNs) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("example.kube-reloader.io", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgetries");
    Api::namespaced_with(ns.client.clone(), &ns.name, &ar)
}

async fn create_widget(ns: &TestNs, name: &str) {
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.kube-reloader.io/v1", "kind": "Widget",
        "metadata": { "name": name, "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": { "size": 3, "runner": { "podTemplate": { "spec": { "containers": [
            { "name": "side", "image": "x" },
            { "name": "app", "image": "x", "envFrom": [{ "configMapRef": { "name": "cfg" } }] }
        ]}}}}
    }))
    .unwrap();
    widgets(ns)
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
}

async fn template(ns: &TestNs, name: &str) -> Value {
    let w = widgets(ns).get(name).await.expect("get widget");
    w.data["spec"]["runner"]["podTemplate"].clone()
}

#[tokio::test]
async fn a_custom_kind_rolls_with_env_vars_and_an_unserved_one_holds_nothing_back() {
    install_crd();
    let ns = TestNs::new("kinds-env").await;
    ns.create_cm("cfg", "1").await;
    create_widget(&ns, "w").await;
    ns.create::<Deployment>(auto_using("d", &["cfg"])).await;
    let ghost = "--workload-kinds=nothere.example.com/v1/Ghost:spec.template";
    let op = start_operator(&ns, &[WIDGET, ghost]).await;
    let (code, body) = op.http_get("/ready").await;
    assert_eq!(
        code, 200,
        "an unserved kind does not hold readiness back: {body}"
    );
    assert!(body.contains("Ghost"), "and /ready names it: {body}");

    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    let want = cm_hash("2");
    wait_for(
        "the Widget's template to carry the marker",
        WAIT,
        || async {
            let t = template(&ns, "w").await;
            let app = &t["spec"]["containers"][1];
            let env = app["env"].as_array().cloned().unwrap_or_default();
            let hit = env
                .iter()
                .any(|e| e["name"] == var.as_str() && e["value"] == want.as_str());
            if hit { Ok(t) } else { Err(t) }
        },
    )
    .await;
    let t = template(&ns, "w").await;
    assert_eq!(
        t["spec"]["containers"][0]["name"], "side",
        "the containers list is kept, in order"
    );
    assert!(
        t["spec"]["containers"][0].get("env").is_none(),
        "the marker is on the container that uses it"
    );
    let w = widgets(&ns).get("w").await.unwrap();
    assert_eq!(
        w.data["spec"]["size"], 3,
        "the rest of the object is untouched"
    );
    wait_env_value(&ns, "d", &var, &want).await;

    // explain reads the same kind, and agrees the marker is in place.
    let out = Command::new(env!("CARGO_BIN_EXE_kube-reloader"))
        .args(["explain", "-n", &ns.name, "widget/w", WIDGET, "-o", "json"])
        .env("KUBECONFIG", control_plane())
        .env_remove("POD_NAMESPACE")
        .output()
        .expect("run explain");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let cfg = &report["workloads"][0]["configs"][0];
    assert_eq!(
        (
            cfg["rule"].as_str(),
            cfg["state"].as_str(),
            cfg["container"].as_str()
        ),
        (Some("auto"), Some("up-to-date"), Some("app"))
    );
    op.shutdown().await;
}

#[tokio::test]
async fn a_custom_kind_rolls_with_the_annotations_strategy() {
    install_crd();
    let ns = TestNs::new("kinds-annotations").await;
    ns.create_cm("cfg", "1").await;
    create_widget(&ns, "w").await;
    let op = start_operator(&ns, &[WIDGET, "--reload-strategy=annotations"]).await;
    ns.set_cm("cfg", "2").await;
    let want = cm_hash("2");
    wait_for(
        "the Widget's template to record the change",
        WAIT,
        || async {
            let t = template(&ns, "w").await;
            let a =
                t["metadata"]["annotations"]["reloader.stakater.com/last-reloaded-from"].clone();
            let source: Value = a
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            if source["hash"] == want.as_str() && source["name"] == "cfg" {
                Ok(())
            } else {
                Err(t)
            }
        },
    )
    .await;
    let t = template(&ns, "w").await;
    let containers = t["spec"]["containers"].as_array().unwrap();
    assert!(
        containers.iter().all(|c| c.get("env").is_none()),
        "no env var with annotations: {t:#}"
    );
    op.shutdown().await;
}

#[tokio::test]
async fn the_charts_rbac_for_a_declared_kind_is_enough_to_roll_it_and_no_more() {
    use support::chart::{Release, can_i, run_as};
    install_crd();
    let ns = TestNs::new("kinds-chart").await;
    let entry = "reloader.workloadKinds[0]";
    let sets = [
        "reloader.watchGlobally=false".to_owned(),
        format!("{entry}.apiVersion=example.kube-reloader.io/v1"),
        format!("{entry}.kind=Widget"),
        format!("{entry}.resource=widgetries"),
        format!("{entry}.templatePath=spec.runner.podTemplate"),
    ];
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let release = Release::install("k", &ns.name, &sets);
    ns.create_cm("cfg", "1").await;
    create_widget(&ns, "w").await;
    let sa = release.fullname();
    let (_bin, kubeconfig) = run_as(&ns.name, &sa, &sa, &["--coalesce-window=0s"]).await;
    ns.set_cm("cfg", "2").await;
    let var = marker_var("ConfigMap", "cfg");
    wait_for(
        "the Widget rolled with the chart's permissions",
        WAIT,
        || async {
            let t = template(&ns, "w").await;
            let env = t["spec"]["containers"][1]["env"].to_string();
            if env.contains(&var) { Ok(()) } else { Err(t) }
        },
    )
    .await;
    let widgetries = "widgetries.example.kube-reloader.io";
    assert!(can_i(&kubeconfig, "update", widgetries, &ns.name));
    for verb in ["create", "delete"] {
        assert!(!can_i(&kubeconfig, verb, widgetries, &ns.name), "{verb}");
    }
}
