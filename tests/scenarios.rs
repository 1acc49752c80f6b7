//! A table of stakater scenarios against the real API server: annotations, flags, kinds
//! and reference types, each with the container expected to get the marker, or none.
//! Negative cases are proven with a sentinel: a second config of the same kind, changed
//! after the case's config, rolls its own workload; once it has, the case's change was
//! seen too, so a missing marker means "decided not to roll", not "not yet". Where the
//! sentinel cannot roll either, a witness that can is changed last (an ignored kind,
//! filtered labels), or the dry run's count of what it would have written shows both
//! changes handled.

mod support;

use futures::future::join_all;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use support::{
    SETTLE, TestNs, WAIT, auto, change_config, create_config, env_from, marker_var, start_operator,
    wait_for,
};

struct Case {
    name: &'static str,
    flags: &'static [&'static str],
    /// "ConfigMap" or "Secret".
    config_kind: &'static str,
    config_annotations: Value,
    config_labels: Value,
    workload_kind: &'static str,
    workload_annotations: Value,
    template_annotations: Value,
    pod: Value,
    /// The container that must get the env var, or `None` when nothing may roll.
    expect: Option<&'static str>,
}

fn pod_envfrom(kind: &str) -> Value {
    json!({ "containers": [{ "name": "other", "image": "x" },
                           { "name": "user", "image": "x", "envFrom": [env_from(kind, "cfg")] }] })
}

fn base(
    name: &'static str,
    kind: &'static str,
    annotations: Value,
    expect: Option<&'static str>,
) -> Case {
    Case {
        name,
        flags: &[],
        config_kind: kind,
        config_annotations: json!({}),
        config_labels: json!({}),
        workload_kind: "Deployment",
        workload_annotations: annotations,
        template_annotations: json!({}),
        pod: pod_envfrom(kind),
        expect,
    }
}

fn cases() -> Vec<Case> {
    let auto = || json!({ "reloader.stakater.com/auto": "true" });
    vec![
        base("auto-configmap-envfrom", "ConfigMap", auto(), Some("user")),
        base("auto-secret-envfrom", "Secret", auto(), Some("user")),
        base("typed-auto-secret", "Secret", json!({ "secret.reloader.stakater.com/auto": "true" }), Some("user")),
        base("typed-auto-wrong-type", "ConfigMap", json!({ "secret.reloader.stakater.com/auto": "true" }), None),
        base("named-unreferenced-first-container", "ConfigMap",
            json!({ "configmap.reloader.stakater.com/reload": "c.g" }),
            Some("other")).with_pod(json!({ "containers": [{ "name": "other", "image": "x" }] })),
        base("auto-unreferenced", "ConfigMap", auto(), None)
            .with_pod(json!({ "containers": [{ "name": "other", "image": "x" }] })),
        base("exclude", "ConfigMap",
            json!({ "reloader.stakater.com/auto": "true", "configmaps.exclude.reloader.stakater.com/reload": "x, cfg" }),
            None),
        Case { config_annotations: json!({ "reloader.stakater.com/ignore": "true" }), ..base("config-ignored", "Secret", auto(), None) },
        Case { config_annotations: json!({ "reloader.stakater.com/match": "true" }),
            ..base("search-match", "ConfigMap", json!({ "reloader.stakater.com/search": "true" }), Some("user")) },
        base("search-without-match", "ConfigMap", json!({ "reloader.stakater.com/search": "true" }), None),
        Case { template_annotations: auto(), ..base("pod-template-fallback", "ConfigMap", json!({}), Some("user")) },
        base("unannotated", "ConfigMap", json!({}), None),
        Case { flags: &["--auto-reload-all"], ..base("auto-reload-all", "ConfigMap", json!({}), Some("user")) },
        Case { flags: &["--auto-reload-all"],
            ..base("auto-reload-all-opt-out", "ConfigMap", json!({ "reloader.stakater.com/auto": "false" }), None) },
        Case { flags: &["--resources-to-ignore=secrets"], ..base("resources-to-ignore", "Secret", auto(), None) },
        Case { flags: &["--dry-run"], ..base("dry-run", "ConfigMap", auto(), None) },
        Case { flags: &["--resource-label-selector=reload=yes"], ..base("label-selector-miss", "ConfigMap", auto(), None) },
        Case { flags: &["--resource-label-selector=reload:yes"], config_labels: json!({ "reload": "yes" }),
            ..base("label-selector-hit", "ConfigMap", auto(), Some("user")) },
        Case { flags: &["--reload-strategy=annotations"], ..base("annotations-strategy", "Secret", auto(), Some("user")) },
        base("env-valuefrom", "Secret", auto(), Some("b")).with_pod(json!({ "containers": [
            { "name": "a", "image": "x" },
            { "name": "b", "image": "x", "env": [{ "name": "P", "valueFrom": { "secretKeyRef": { "name": "cfg", "key": "k" } } }] }
        ]})),
        base("volume", "ConfigMap", auto(), Some("b")).with_pod(json!({
            "volumes": [{ "name": "v", "configMap": { "name": "cfg" } }],
            "containers": [{ "name": "a", "image": "x" },
                           { "name": "b", "image": "x", "volumeMounts": [{ "name": "v", "mountPath": "/v" }] }]
        })),
        base("projected-volume", "Secret", auto(), Some("b")).with_pod(json!({
            "volumes": [{ "name": "p", "projected": { "sources": [{ "secret": { "name": "cfg" } }] } }],
            "containers": [{ "name": "a", "image": "x" },
                           { "name": "b", "image": "x", "volumeMounts": [{ "name": "p", "mountPath": "/p" }] }]
        })),
        base("init-container-only", "ConfigMap", auto(), Some("a")).with_pod(json!({
            "initContainers": [{ "name": "init", "image": "x", "envFrom": [{ "configMapRef": { "name": "cfg" } }] }],
            "containers": [{ "name": "a", "image": "x" }, { "name": "b", "image": "x" }]
        })),
        Case { workload_kind: "StatefulSet", ..base("statefulset", "ConfigMap", auto(), Some("user")) },
        Case { workload_kind: "DaemonSet", ..base("daemonset", "Secret", auto(), Some("user")) },
        Case { flags: &["--ignored-workload-types=jobs"], workload_kind: "DaemonSet",
            ..base("ignored-types-spare-others", "Secret", auto(), Some("user")) },
    ]
}

impl Case {
    fn with_pod(self, pod: Value) -> Case {
        Case { pod, ..self }
    }
}

fn workload_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind))
}

fn workload(
    kind: &str,
    name: &str,
    annotations: &Value,
    template_annotations: &Value,
    pod: &Value,
) -> DynamicObject {
    let mut pod = pod.clone();
    if kind == "DaemonSet" {
        pod["tolerations"] = json!([{ "operator": "Exists" }]);
    }
    let mut spec = json!({
        "selector": { "matchLabels": { "app": name } },
        "template": { "metadata": { "labels": { "app": name }, "annotations": template_annotations }, "spec": pod }
    });
    if kind != "DaemonSet" {
        spec["replicas"] = json!(0);
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": { "name": name, "annotations": annotations },
        "spec": spec
    }))
    .unwrap()
}

/// The containers (by name) that carry the env var or annotation for `config`.
fn marked(obj: &DynamicObject, config_kind: &str, config: &str) -> Vec<String> {
    let var = marker_var(config_kind, config);
    let t = &obj.data["spec"]["template"];
    let mut out: Vec<String> = t["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["name"] == var.as_str())
        })
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    if let Some(a) =
        t["metadata"]["annotations"]["reloader.stakater.com/last-reloaded-from"].as_str()
    {
        let v: Value = serde_json::from_str(a).unwrap();
        out.extend(
            v["containerRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap().to_owned()),
        );
    }
    out
}

/// Waits until Deployment `name` has the marker of its config `name` of `kind`.
async fn wait_rolled(api: &Api<DynamicObject>, case: &str, name: &str, kind: &str) {
    wait_for(&format!("{case}: {name} rolled"), WAIT, || async {
        let m = marked(&api.get(name).await.expect("get sentinel"), kind, name);
        if m.is_empty() { Err(m) } else { Ok(()) }
    })
    .await;
}

async fn run_case(case: Case) -> Result<(), String> {
    let ns = TestNs::new(&format!(
        "sc-{}",
        case.name.chars().take(30).collect::<String>()
    ))
    .await;
    create_config(
        &ns,
        case.config_kind,
        "cfg",
        &case.config_annotations,
        &case.config_labels,
    )
    .await;
    // The sentinel: same kind, same selector labels, a plain auto workload.
    create_config(
        &ns,
        case.config_kind,
        "sentinel",
        &json!({}),
        &case.config_labels,
    )
    .await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &workload_resource(case.workload_kind),
    );
    let sentinel_api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &workload_resource("Deployment"),
    );
    let pp = PostParams::default();
    api.create(
        &pp,
        &workload(
            case.workload_kind,
            "w",
            &case.workload_annotations,
            &case.template_annotations,
            &case.pod,
        ),
    )
    .await
    .map_err(|e| format!("{}: create workload: {e}", case.name))?;
    let sentinel_pod = json!({ "containers": [
        { "name": "s", "image": "x", "envFrom": [env_from(case.config_kind, "sentinel")] }
    ]});
    let sentinel_annotations = json!({ "reloader.stakater.com/auto": "true" });
    sentinel_api
        .create(
            &pp,
            &workload(
                "Deployment",
                "sentinel",
                &sentinel_annotations,
                &json!({}),
                &sentinel_pod,
            ),
        )
        .await
        .map_err(|e| format!("{}: create sentinel: {e}", case.name))?;
    let flag = |prefix: &str| case.flags.iter().any(|f| f.starts_with(prefix));
    let (dry_run, ignores_kind, filters_labels) = (
        flag("--dry-run"),
        flag("--resources-to-ignore"),
        flag("--resource-label-selector"),
    );
    // The witness: a plain auto workload on a config the flags let through (a ConfigMap
    // when the case's kind is ignored, labelled for the label selector).
    let witness_kind = if ignores_kind {
        "ConfigMap"
    } else {
        case.config_kind
    };
    if ignores_kind || filters_labels {
        let labels = json!({ "reload": "yes" });
        create_config(&ns, witness_kind, "witness", &json!({}), &labels).await;
        let pod = json!({ "containers": [
            { "name": "s", "image": "x", "envFrom": [env_from(witness_kind, "witness")] }
        ]});
        let witness = workload("Deployment", "witness", &auto(), &json!({}), &pod);
        sentinel_api
            .create(&pp, &witness)
            .await
            .map_err(|e| format!("{}: create witness: {e}", case.name))?;
    }
    let op = start_operator(&ns, case.flags).await;

    change_config(&ns, case.config_kind, "cfg").await;
    if let Some(container) = case.expect {
        wait_for(
            &format!("{}: marker on {container}", case.name),
            WAIT,
            || async {
                let obj = api.get("w").await.expect("get workload");
                let m = marked(&obj, case.config_kind, "cfg");
                if m == [container] { Ok(()) } else { Err(m) }
            },
        )
        .await;
        return Ok(());
    }
    change_config(&ns, case.config_kind, "sentinel").await;
    let sentinel_rolls = !(dry_run || ignores_kind || filters_labels);
    if sentinel_rolls {
        wait_rolled(&sentinel_api, case.name, "sentinel", case.config_kind).await;
    } else if dry_run {
        // Nothing is written: the case's workload and the sentinel, both auto on a changed
        // config, are counted as what would have been.
        let series = "kube_reloader_dry_run_reloads_total";
        wait_for(&format!("{}: {series} 2", case.name), WAIT, || async {
            match op.metric(series).await {
                Some(n) if n >= 2.0 => Ok(()),
                other => Err(other),
            }
        })
        .await;
    } else {
        change_config(&ns, witness_kind, "witness").await;
        wait_rolled(&sentinel_api, case.name, "witness", witness_kind).await;
    }
    tokio::time::sleep(SETTLE).await;
    if !sentinel_rolls {
        // The sentinel cannot roll either (dry run, ignored kind, filtered labels).
        let m = marked(
            &sentinel_api.get("sentinel").await.expect("get sentinel"),
            case.config_kind,
            "sentinel",
        );
        if !m.is_empty() {
            return Err(format!("{}: the sentinel rolled too: {m:?}", case.name));
        }
    }
    let m = marked(
        &api.get("w").await.expect("get workload"),
        case.config_kind,
        "cfg",
    );
    if m.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: expected no reload, got markers on {m:?}",
            case.name
        ))
    }
}

#[tokio::test]
async fn stakater_scenarios() {
    // SCENARIO=name runs one case (for debugging).
    let only = std::env::var("SCENARIO").ok();
    let chosen = cases()
        .into_iter()
        .filter(|c| only.as_deref().is_none_or(|o| o == c.name));
    let results = join_all(chosen.map(run_case)).await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}
