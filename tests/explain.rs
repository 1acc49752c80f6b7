//! `kube-reloader explain` against the real API server: each rule and each usual mistake,
//! as text and JSON; the exit code for an out-of-date marker; the namespace and policy
//! gates; and its verdicts agreeing with what the operator then does on the same objects.

mod support;

use std::process::Command;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace};
use kube::Api;
use serde_json::{Value, json};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_kube-reloader");

/// Runs `kube-reloader explain ARGS` with the plane's kubeconfig: (exit code, stdout, stderr).
fn explain(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("explain")
        .args(args)
        .env("KUBECONFIG", control_plane())
        .env_remove("POD_NAMESPACE")
        .env_remove("KUBERNETES_NAMESPACE")
        .output()
        .expect("run kube-reloader explain");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn explain_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = explain(&all);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

fn workload<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no workload {name} in {report:#}"))
}

fn config<'a>(w: &'a Value, kind: &str, name: &str) -> &'a Value {
    w["configs"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == kind && c["name"] == name))
        .unwrap_or_else(|| panic!("no {kind} {name} in {w:#}"))
}

fn warnings_of(w: &Value) -> Vec<String> {
    let all = w["warnings"].as_array().cloned().unwrap_or_default();
    all.iter()
        .map(|s| s.as_str().unwrap_or("").to_owned())
        .collect()
}

fn cm(name: &str, annotations: Value) -> Value {
    json!({ "metadata": { "name": name, "annotations": annotations }, "data": { "k": "1" } })
}

/// The namespace every test here explains: one workload per rule and per mistake.
async fn setup(prefix: &str) -> TestNs {
    let ns = TestNs::new(prefix).await;
    for c in [
        cm("app", json!({})),
        cm("files", json!({})),
        cm("matched", json!({ "reloader.stakater.com/match": "true" })),
        cm("quiet", json!({ "reloader.stakater.com/ignore": "true" })),
        cm("db-main", json!({})),
    ] {
        ns.create::<k8s_openapi::api::core::v1::ConfigMap>(c).await;
    }
    create_config(&ns, "Secret", "creds", &json!({}), &json!({})).await;
    let app = configmap_refs(&["app"]);
    let volume_pod = json!({
        "volumes": [{ "name": "f", "configMap": { "name": "files" } }],
        "containers": [{ "name": "app", "image": "x", "envFrom": app,
                         "volumeMounts": [{ "name": "f", "mountPath": "/etc/files" }] }]
    });
    let creds_env =
        json!([{ "name": "PW", "valueFrom": { "secretKeyRef": { "name": "creds", "key": "k" } } }]);
    let workloads = [
        deployment(
            "auto",
            json!({ "reloader.stakater.com/auto": "true",
                    "configmaps.exclude.reloader.stakater.com/reload": "files" }),
            volume_pod,
        ),
        deployment(
            "typed",
            json!({ "configmap.reloader.stakater.com/auto": "true",
                    "kube-reloader.io/coalesce-window": "0s" }),
            app_pod(app.clone(), creds_env),
        ),
        deployment(
            "named",
            json!({ "configmap.reloader.stakater.com/reload": "app, miss-ing, nomatch-.*, db-.*" }),
            app_pod(json!([]), json!([])),
        ),
        app_deployment(
            "typo",
            json!({ "reloader.stakater.com/atuo": "true" }),
            app.clone(),
        ),
        app_deployment(
            "yes",
            json!({ "reloader.stakater.com/auto": "yes" }),
            app.clone(),
        ),
        app_deployment(
            "searcher",
            json!({ "reloader.stakater.com/search": "true" }),
            configmap_refs(&["app", "matched"]),
        ),
        auto_using("ignoring", &["quiet"]),
        app_deployment("plain", json!({}), app.clone()),
    ];
    for w in workloads {
        ns.create::<Deployment>(w).await;
    }
    // Auto on the pod template only: stakater's fallback.
    let mut tmpl = app_deployment("templated", json!({}), app);
    tmpl["spec"]["template"]["metadata"]["annotations"] =
        json!({ "reloader.stakater.com/auto": "true" });
    ns.create::<Deployment>(tmpl).await;
    ns
}

#[tokio::test]
async fn explain_names_each_rule_and_mistake_in_json_and_text() {
    let ns = setup("explain-rules").await;
    let (code, r) = explain_json(&["-n", &ns.name]);
    assert_eq!(code, 0, "no marker is out of date yet: {r:#}");
    assert_eq!(r["namespace"], ns.name.as_str());

    let auto = workload(&r, "auto");
    let app = config(auto, "ConfigMap", "app");
    assert_eq!(
        (app["decision"].as_str(), app["rule"].as_str()),
        (Some("reload"), Some("auto"))
    );
    assert_eq!(app["container"], "app");
    assert_eq!(app["state"], "no-marker");
    assert!(
        app["next_change"]
            .as_str()
            .unwrap()
            .contains("STAKATER_APP_CONFIGMAP"),
        "{app:#}"
    );
    let files = config(auto, "ConfigMap", "files");
    assert_eq!(files["rule"], "excluded");
    assert_eq!(files["suspect"], "excluded_but_used");
    let uses = &auto["containers"][0]["uses"];
    assert!(
        uses.to_string().contains("volume f at /etc/files"),
        "{uses:#}"
    );
    assert!(uses.to_string().contains("envFrom"), "{uses:#}");

    let typed = workload(&r, "typed");
    assert_eq!(config(typed, "ConfigMap", "app")["rule"], "typed-auto");
    let creds = config(typed, "Secret", "creds");
    assert_eq!(
        (creds["decision"].as_str(), creds["suspect"].as_str()),
        (Some("skip"), Some("typed_auto_other_kind"))
    );
    assert!(typed["containers"].to_string().contains("env PW (key k)"));
    let t = &typed["timing"];
    assert_eq!(
        (
            t["coalesce_window"].as_str(),
            t["coalesce_max_delay"].as_str()
        ),
        (Some("0s"), Some("30s"))
    );
    assert_eq!(
        t["from_annotations"],
        json!(["kube-reloader.io/coalesce-window"])
    );
    assert_eq!(
        workload(&r, "auto")["timing"]["coalesce_window"],
        "2s",
        "the flag's"
    );

    let named = workload(&r, "named");
    let app = config(named, "ConfigMap", "app");
    assert_eq!(
        (app["rule"].as_str(), app["container"].as_str()),
        (Some("named"), Some("app"))
    );
    assert!(
        app["detail"].as_str().unwrap().contains("\"app\""),
        "{app:#}"
    );
    let db = config(named, "ConfigMap", "db-main");
    assert!(
        db["detail"].as_str().unwrap().contains("\"db-.*\""),
        "the matching item: {db:#}"
    );
    assert_eq!(db["referenced"], false);
    let w = warnings_of(named);
    assert!(
        w.iter()
            .any(|m| m.contains("\"miss-ing\", which does not exist")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("\"nomatch-.*\" matches no ConfigMap")),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|m| m.contains("db-.*")),
        "db-.* matches db-main: {w:?}"
    );

    let typo = workload(&r, "typo");
    assert_eq!(config(typo, "ConfigMap", "app")["rule"], "not-selected");
    let w = warnings_of(typo);
    assert!(
        w.iter()
            .any(|m| m.contains("did you mean \"reloader.stakater.com/auto\"")),
        "{w:?}"
    );

    let yes = config(workload(&r, "yes"), "ConfigMap", "app");
    assert_eq!(yes["suspect"], "auto_not_a_bool");

    let searcher = workload(&r, "searcher");
    assert_eq!(config(searcher, "ConfigMap", "matched")["rule"], "search");
    assert_eq!(
        config(searcher, "ConfigMap", "app")["suspect"],
        "search_without_match"
    );

    assert_eq!(
        config(workload(&r, "ignoring"), "ConfigMap", "quiet")["rule"],
        "config-ignored"
    );
    let plain = config(workload(&r, "plain"), "ConfigMap", "app");
    assert_eq!(
        (plain["rule"].as_str(), plain["suspect"].as_str()),
        (Some("not-selected"), None)
    );
    let tmpl = config(workload(&r, "templated"), "ConfigMap", "app");
    assert_eq!(tmpl["rule"], "auto");
    assert!(
        tmpl["detail"].as_str().unwrap().contains("pod template"),
        "{tmpl:#}"
    );

    // The same as text: one workload in full, and the namespace's table.
    let (code, text, _) = explain(&["-n", &ns.name, "deploy/auto"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Deployment") && text.contains("up to date"),
        "{text}"
    );
    assert!(text.contains("RELOADS: auto"), "{text}");
    assert!(
        text.contains("does not reload: excluded")
            && text.contains("likely a mistake (excluded_but_used)"),
        "{text}"
    );
    let (code, table, _) = explain(&["-n", &ns.name]);
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("WORKLOAD") && table.contains("Deployment/named"),
        "{table}"
    );
    assert!(
        table.contains("does not exist"),
        "warnings under the table: {table}"
    );

    // Bad input: a clear error and exit 2, never a panic.
    let (code, _, err) = explain(&["-n", &ns.name, "deploy/nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = explain(&["-n", &ns.name, "pod/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("KIND/NAME"), "{err}");
}

#[tokio::test]
async fn explain_exits_1_for_an_out_of_date_marker() {
    let ns = setup("explain-stale").await;
    let stale = json!({ "spec": { "template": { "spec": { "containers": [{
        "name": "app", "env": [{ "name": "STAKATER_APP_CONFIGMAP", "value": "0000" }]
    }]}}}});
    ns.api::<Deployment>()
        .patch(
            "auto",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(stale),
        )
        .await
        .expect("patch");
    let (code, r) = explain_json(&["-n", &ns.name, "deploy/auto"]);
    assert_eq!(code, 1, "{r:#}");
    let app = config(workload(&r, "auto"), "ConfigMap", "app");
    assert_eq!(
        (app["state"].as_str(), app["marker"].as_str()),
        (Some("out-of-date"), Some("0000"))
    );
    assert_eq!(app["hash"], cm_hash("1").as_str());
    assert_eq!(workload(&r, "auto")["up_to_date"], false);
}

#[tokio::test]
async fn explain_reports_the_gates_and_policies_of_the_flags_given() {
    let ns = setup("explain-gates").await;
    let target = ["-n", ns.name.as_str(), "deploy/auto"];
    let rule_with = |flags: &[&str]| {
        let mut args = target.to_vec();
        args.extend(flags);
        let (_, r) = explain_json(&args);
        config(workload(&r, "auto"), "ConfigMap", "app")["rule"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ignore = format!("--namespaces-to-ignore={}", ns.name);
    assert_eq!(rule_with(&[&ignore]), "namespace-ignored");
    assert_eq!(
        rule_with(&["--namespace-selector=team=nobody"]),
        "namespace-not-selected"
    );
    assert_eq!(
        rule_with(&["--namespaces=elsewhere"]),
        "namespace-not-watched"
    );
    assert_eq!(
        rule_with(&["--resource-label-selector=reload=yes"]),
        "resource-label-selector"
    );
    assert_eq!(
        rule_with(&["--resources-to-ignore=configmaps"]),
        "kind-not-watched"
    );

    // Policies make an unannotated workload auto; an explicit auto: "false" wins.
    let plain = |flags: &[&str]| {
        let mut args = vec!["-n", ns.name.as_str()];
        args.extend(flags);
        let (_, r) = explain_json(&args);
        config(workload(&r, "plain"), "ConfigMap", "app")["rule"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    ns.merge_patch::<Deployment>(
        "plain",
        json!({ "metadata": { "labels": { "tier": "web" } } }),
    )
    .await;
    assert_eq!(
        plain(&["--workload-selector=tier=web"]),
        "workload-selector"
    );
    assert_eq!(plain(&["--workload-selector=tier=db"]), "not-selected");
    assert_eq!(plain(&["--auto-reload-all"]), "auto-reload-all");
    let namespaces: Api<Namespace> = Api::all(ns.client.clone());
    let opt_in = json!({ "metadata": { "annotations": { "kube-reloader.io/auto": "true" } } });
    namespaces
        .patch(
            &ns.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(opt_in),
        )
        .await
        .expect("annotate the namespace");
    assert_eq!(plain(&["--namespace-opt-in"]), "namespace-opt-in");
    assert_eq!(
        plain(&[]),
        "not-selected",
        "the annotation counts only with --namespace-opt-in"
    );
    ns.merge_patch::<Deployment>(
        "plain",
        json!({ "metadata": { "annotations": { "reloader.stakater.com/auto": "false" } } }),
    )
    .await;
    assert_eq!(
        plain(&["--namespace-opt-in", "--workload-selector=tier=web"]),
        "not-selected"
    );
}

/// Whether the operator rolled Deployment `name` for ConfigMap or Secret `config`.
async fn rolled(ns: &TestNs, name: &str, kind: &str, config: &str) -> bool {
    let d: Deployment = ns.get(name).await;
    let var = marker_var(kind, config);
    let pod = d.spec.template.spec.expect("a pod spec");
    pod.containers
        .iter()
        .any(|c| c.env.iter().flatten().any(|e| e.name == var))
}

#[tokio::test]
async fn explain_agrees_with_what_the_operator_does() {
    let ns = setup("explain-agree").await;
    let (_, before) = explain_json(&["-n", &ns.name]);
    let op = start_operator(&ns, &[]).await;
    let changed = [
        ("ConfigMap", "app"),
        ("ConfigMap", "files"),
        ("ConfigMap", "matched"),
        ("ConfigMap", "quiet"),
        ("ConfigMap", "db-main"),
        ("Secret", "creds"),
    ];
    for (kind, name) in changed {
        change_config(&ns, kind, name).await;
    }
    // Every reload explain promised lands...
    let mut promised = Vec::new();
    let mut refused = Vec::new();
    for w in before["workloads"].as_array().unwrap() {
        for c in w["configs"].as_array().unwrap() {
            let entry = (
                w["name"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            );
            if !changed.iter().any(|(k, n)| entry.1 == *k && entry.2 == *n)
                || !c["exists"].as_bool().unwrap()
            {
                continue;
            }
            match c["decision"].as_str() {
                Some("reload") => promised.push(entry),
                _ => refused.push(entry),
            }
        }
    }
    assert!(
        promised.len() >= 6 && refused.len() >= 6,
        "{promised:?} {refused:?}"
    );
    for (w, kind, name) in &promised {
        wait_for(&format!("{w} rolled for {kind} {name}"), WAIT, || async {
            rolled(&ns, w, kind, name)
                .await
                .then_some(())
                .ok_or("not yet")
        })
        .await;
    }
    // ...and none it said would not (checked after every promised one landed: the
    // operator has seen every change by then, with no coalescing window).
    tokio::time::sleep(SETTLE).await;
    for (w, kind, name) in &refused {
        assert!(
            !rolled(&ns, w, kind, name).await,
            "{w} rolled for {kind} {name}, which explain said it would not"
        );
    }
    // Now every marker is at its config's hash.
    let (code, after) = explain_json(&["-n", &ns.name]);
    assert_eq!(code, 0, "{after:#}");
    for (w, kind, name) in &promised {
        let c = config(workload(&after, w), kind, name);
        assert_eq!(c["state"], "up-to-date", "{c:#}");
    }
    op.shutdown().await;
}
