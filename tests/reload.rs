//! The operator against the real API server: config changes roll exactly the workloads
//! stakater would roll, with stakater's markers, and re-applying manifests undoes nothing.

mod support;

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, Secret},
};
use kube_reloader::operator::apply::markers::ReloadSource;
use serde_json::json;
use support::{
    Refusal, SETTLE, TestNs, WAIT, annotation, app_deployment, auto, auto_deployment, auto_using,
    cm_hash, configmap_refs, deployment, env_of, job, job_env, kubectl, secret_hash,
    setup_auto_pair, start_operator, task_pod, wait_env_value, wait_for, wait_job_recreated,
    wait_marker, wait_no_marker, wait_warnings, warnings,
};

async fn replicaset_count(ns: &TestNs, name: &str) -> usize {
    support::pods::replica_sets(ns, name).await.len()
}

#[tokio::test]
async fn env_vars_auto_reload_rolls_only_the_referencing_workload() {
    let ns = TestNs::new("envvars").await;
    ns.create_cm("app-config", "v1").await;
    let pod = json!({ "containers": [
        { "name": "side", "image": "x" },
        { "name": "app", "image": "x", "envFrom": [{ "configMapRef": { "name": "app-config" } }] }
    ]});
    ns.create::<Deployment>(deployment(
        "auto",
        json!({ "reloader.stakater.com/auto": "true" }),
        pod.clone(),
    ))
    .await;
    ns.create::<Deployment>(deployment("plain", json!({}), pod))
        .await;
    // The sentinel of the negatives below: its own ConfigMap and auto workload.
    ns.create_cm("sentinel", "1").await;
    ns.create::<Deployment>(auto_using("sentinel", &["sentinel"]))
        .await;
    let _op = start_operator(&ns, &[]).await;
    wait_for("first ReplicaSets", WAIT, || async {
        let n = replicaset_count(&ns, "auto").await + replicaset_count(&ns, "plain").await;
        if n == 2 { Ok(()) } else { Err(n) }
    })
    .await;

    ns.set_cm("app-config", "v2").await;
    // The env var on the referencing container.
    wait_env_value(&ns, "auto", "STAKATER_APP_CONFIG_CONFIGMAP", &cm_hash("v2")).await;
    wait_for("a second ReplicaSet", WAIT, || async {
        let n = replicaset_count(&ns, "auto").await;
        if n == 2 { Ok(()) } else { Err(n) }
    })
    .await;
    let auto = ns.get::<Deployment>("auto").await;
    assert_eq!(
        env_of(&auto, "side", "STAKATER_APP_CONFIG_CONFIGMAP"),
        None,
        "only the chosen container"
    );

    // A metadata-only change is no change; the unannotated workload never rolls. The
    // sentinel's ConfigMap changes after it, on the same watch: once the sentinel rolled, the
    // metadata change was seen and decided on.
    ns.merge_patch::<ConfigMap>(
        "app-config",
        json!({ "metadata": { "labels": { "x": "y" } } }),
    )
    .await;
    ns.set_cm("sentinel", "2").await;
    wait_marker(&ns, "sentinel", "STAKATER_SENTINEL_CONFIGMAP").await;
    tokio::time::sleep(SETTLE).await;
    let plain = ns.get::<Deployment>("plain").await;
    assert_eq!(env_of(&plain, "app", "STAKATER_APP_CONFIG_CONFIGMAP"), None);
    assert_eq!(replicaset_count(&ns, "plain").await, 1);
    assert_eq!(
        replicaset_count(&ns, "auto").await,
        2,
        "no rollout for a metadata change"
    );
    let again = ns.get::<Deployment>("auto").await;
    assert_eq!(again.metadata.generation, auto.metadata.generation);
}

#[tokio::test]
async fn annotations_strategy_named_secret_reload_through_a_volume() {
    let ns = TestNs::new("annot").await;
    ns.create::<Secret>(json!({ "metadata": { "name": "db-creds" }, "stringData": { "pw": "a" } }))
        .await;
    let pod = json!({
        "volumes": [{ "name": "creds", "secret": { "secretName": "db-creds" } }],
        "containers": [
            { "name": "first", "image": "x" },
            { "name": "db", "image": "x", "volumeMounts": [{ "name": "creds", "mountPath": "/c" }] }
        ]
    });
    ns.create::<Deployment>(deployment(
        "named",
        json!({ "secret.reloader.stakater.com/reload": "db-.*" }),
        pod,
    ))
    .await;
    let _op = start_operator(&ns, &["--reload-strategy=annotations"]).await;

    ns.merge_patch::<Secret>("db-creds", json!({ "stringData": { "pw": "b" } }))
        .await;
    let expected = secret_hash(&[("pw", "b")]);
    let source = wait_for("the last-reloaded-from annotation", WAIT, || async {
        let d = ns.get::<Deployment>("named").await;
        let a = d
            .spec
            .template
            .metadata
            .and_then(|m| m.annotations)
            .unwrap_or_default();
        match a.get("reloader.stakater.com/last-reloaded-from") {
            Some(v) => Ok(serde_json::from_str::<ReloadSource>(v).expect("stakater JSON")),
            None => Err(a),
        }
    })
    .await;
    assert_eq!(source.kind, "SECRET");
    assert_eq!(
        (source.name.as_str(), source.namespace.as_str()),
        ("db-creds", ns.name.as_str())
    );
    assert_eq!(source.hash, expected);
    assert_eq!(source.container_refs, ["db"]);
}

#[tokio::test]
async fn reapplying_the_manifest_keeps_the_marker_and_rolls_nothing() {
    let ns = TestNs::new("gitops").await;
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: {ns}}}
data: {{k: v1}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {ns}
  annotations: {{reloader.stakater.com/auto: "true"}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
      - name: app
        image: x
        env: [{{name: FROM_CFG, valueFrom: {{configMapKeyRef: {{name: cfg, key: k}}}}}}]
"#,
        ns = ns.name
    );
    let deployment_only = manifest.split("---\n").nth(1).unwrap().to_string();
    kubectl(&["apply", "-f", "-"], Some(&manifest));
    let _op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "v2").await;
    let marker = env_of(
        &wait_marker(&ns, "app", "STAKATER_CFG_CONFIGMAP").await,
        "app",
        "STAKATER_CFG_CONFIGMAP",
    );
    let rolled = ns.get::<Deployment>("app").await.spec.template;

    // An HPA-like scale, then the user's manifest again, client-side and server-side.
    ns.merge_patch::<Deployment>("app", json!({ "spec": { "replicas": 3 } }))
        .await;
    kubectl(&["apply", "-f", "-"], Some(&deployment_only));
    support::apply_as_gitops(&deployment_only);
    let d = ns.get::<Deployment>("app").await;
    assert_eq!(
        env_of(&d, "app", "STAKATER_CFG_CONFIGMAP"),
        marker,
        "marker kept"
    );
    assert_eq!(d.spec.template, rolled, "the pod template is unchanged");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replicaset_count(&ns, "app").await, 2, "no new rollout");
}

#[tokio::test]
async fn reload_on_delete_removes_the_env_var() {
    let ns = TestNs::new("delete").await;
    ns.create_cm("gone", "v").await;
    let pod = json!({ "containers": [{ "name": "app", "image": "x",
        "envFrom": [{ "configMapRef": { "name": "gone", "optional": true } }] }] });
    ns.create::<Deployment>(deployment("w", auto(), pod)).await;
    let _op = start_operator(&ns, &["--reload-on-delete=true"]).await;
    ns.set_cm("gone", "v2").await;
    wait_marker(&ns, "w", "STAKATER_GONE_CONFIGMAP").await;
    ns.api::<ConfigMap>()
        .delete("gone", &Default::default())
        .await
        .expect("delete");
    wait_no_marker(&ns, "w", "STAKATER_GONE_CONFIGMAP").await;
}

/// A CronJob whose Jobs take ConfigMap `job-config`; `suspend` as given.
fn cronjob(name: &str, annotations: serde_json::Value, suspend: bool) -> serde_json::Value {
    let pod = task_pod(configmap_refs(&["job-config"]));
    let mut c = support::cronjob(name, annotations, pod);
    c["spec"]["suspend"] = json!(suspend);
    c
}

#[tokio::test]
async fn cronjobs_get_a_job_or_a_patched_template_and_suspended_ones_nothing() {
    let ns = TestNs::new("cron").await;
    ns.create_cm("job-config", "1").await;
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    ns.create::<CronJob>(cronjob("runs", auto.clone(), false))
        .await;
    ns.create::<CronJob>(cronjob("paused", auto.clone(), true))
        .await;
    let mut patch_mode = auto;
    patch_mode["reloader.stakater.com/cronjob-reload-strategy"] = json!("patch");
    ns.create::<CronJob>(cronjob("patched", patch_mode, false))
        .await;
    // The sentinel of the suspended CronJob's negative below.
    ns.create_cm("sentinel", "1").await;
    ns.create::<Deployment>(auto_using("sentinel", &["sentinel"]))
        .await;
    let _op = start_operator(&ns, &[]).await;

    ns.set_cm("job-config", "2").await;
    let expected = cm_hash("2");
    wait_for("a Job created from the CronJob", WAIT, || async {
        let n = ns.list::<Job>().await.len();
        if n == 0 { Err(n) } else { Ok(()) }
    })
    .await;
    wait_for("the patched jobTemplate", WAIT, || async {
        let c = ns.get::<CronJob>("patched").await;
        let env = c
            .spec
            .job_template
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers[0].env.clone());
        match env.flatten().and_then(|e| {
            e.into_iter()
                .find(|e| e.name == "STAKATER_JOB_CONFIG_CONFIGMAP")
        }) {
            Some(e) if e.value.as_deref() == Some(expected.as_str()) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    // The sentinel's ConfigMap changes after `job-config`, on the same watch: once it
    // rolled, the change was decided on for every CronJob, the suspended one too.
    ns.set_cm("sentinel", "2").await;
    wait_marker(&ns, "sentinel", "STAKATER_SENTINEL_CONFIGMAP").await;
    tokio::time::sleep(SETTLE).await;
    let jobs: Vec<Job> = ns.list::<Job>().await;
    assert_eq!(
        jobs.len(),
        1,
        "one Job, for the running CronJob only: {:?}",
        jobs.iter()
            .map(|j| j.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    let job = &jobs[0];
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("CronJob", "runs")
    );
    assert_eq!(
        job_env(job, "STAKATER_JOB_CONFIG_CONFIGMAP"),
        Some(expected)
    );
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let runs = ns.get::<CronJob>("runs").await;
    let untouched = runs
        .spec
        .job_template
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .env
        .clone();
    assert_eq!(
        untouched, None,
        "stakater's way leaves the CronJob itself alone"
    );
    drop(jobs);
}

#[tokio::test]
async fn jobs_are_recreated_with_the_marker() {
    let ns = TestNs::new("job").await;
    ns.create::<Secret>(
        json!({ "metadata": { "name": "job-secret" }, "stringData": { "t": "1" } }),
    )
    .await;
    let annotations = json!({ "secret.reloader.stakater.com/reload": "job-secret" });
    let created: Job = ns
        .create(job("migrate", annotations, task_pod(json!([]))))
        .await;
    let _op = start_operator(&ns, &[]).await;
    ns.merge_patch::<Secret>("job-secret", json!({ "stringData": { "t": "2" } }))
        .await;
    let recreated = wait_job_recreated(&ns, &created).await;
    let expected = secret_hash(&[("t", "2")]);
    assert_eq!(
        job_env(&recreated, "STAKATER_JOB_SECRET_SECRET"),
        Some(expected),
        "named reload: first container"
    );
}

#[tokio::test]
async fn an_invalid_regex_item_is_reported_once_and_the_rest_still_works() {
    use k8s_openapi::api::events::v1::Event;
    let ns = TestNs::new("badregex").await;
    ns.create_cm("good", "1").await;
    let pod = json!({ "containers": [{ "name": "app", "image": "x" }] });
    let annotations = json!({ "configmap.reloader.stakater.com/reload": "bad[,good" });
    ns.create::<Deployment>(deployment("w", annotations, pod))
        .await;
    let _op = start_operator(&ns, &[]).await;
    let warning = wait_for("an InvalidAnnotation Warning Event", WAIT, || async {
        let events = ns.list::<Event>().await;
        let found: Vec<Event> = events
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidAnnotation"))
            .collect();
        if found.is_empty() {
            Err("none yet")
        } else {
            Ok(found)
        }
    })
    .await;
    assert_eq!(warning.len(), 1, "once per cause");
    let note = warning[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("bad[") && note.contains("configmap.reloader.stakater.com/reload"),
        "{note}"
    );
    assert_eq!(warning[0].type_.as_deref(), Some("Warning"));

    ns.set_cm("good", "2").await;
    // The valid item still reloads (first container).
    wait_marker(&ns, "w", "STAKATER_GOOD_CONFIGMAP").await;
    // The reload changed the template, not the annotations: still one warning.
    let again: Vec<Event> = ns
        .list::<Event>()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidAnnotation"))
        .collect();
    assert_eq!(again.len(), 1, "{again:#?}");
}

/// Items are Go regexes, each read alone: `app)|(db` cannot break out of its anchors
/// (stakater rejects it too), `\Q…\E` quotes, and a leading `*` repeats stakater's `^`.
/// A sentinel item proves the changes that must not roll were seen.
#[tokio::test]
async fn reload_list_items_are_read_as_go_reads_them() {
    let ns = TestNs::new("goregex").await;
    for n in ["app-x", "xx-db", "my.app", "myxapp", "the-mydb", "sentinel"] {
        ns.create_cm(n, "1").await;
    }
    let pod = json!({ "containers": [{ "name": "app", "image": "x" }] });
    let list = r"app)|(db, \Qmy.app\E, *mydb, sentinel";
    let annotations = json!({ "configmap.reloader.stakater.com/reload": list });
    ns.create::<Deployment>(deployment("w", annotations, pod))
        .await;
    let _op = start_operator(&ns, &[]).await;
    let warned = wait_warnings(&ns, "w", "InvalidAnnotation").await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("app)|(db") && warned[0].contains("unexpected )"),
        "{warned:?}"
    );
    assert!(
        !warned[0].contains("my.app") && !warned[0].contains("*mydb"),
        "{warned:?}"
    );

    for n in ["app-x", "xx-db", "myxapp", "my.app", "the-mydb"] {
        ns.set_cm(n, "2").await;
    }
    // \Q…\E rolls its literal name.
    wait_marker(&ns, "w", "STAKATER_MY_APP_CONFIGMAP").await;
    // *mydb: any name ending in mydb.
    wait_marker(&ns, "w", "STAKATER_THE_MYDB_CONFIGMAP").await;
    ns.set_cm("sentinel", "2").await;
    let d = wait_marker(&ns, "w", "STAKATER_SENTINEL_CONFIGMAP").await;
    for var in [
        "STAKATER_APP_X_CONFIGMAP",
        "STAKATER_XX_DB_CONFIGMAP",
        "STAKATER_MYXAPP_CONFIGMAP",
    ] {
        assert_eq!(env_of(&d, "app", var), None, "{var}: no item matches it");
    }
}

/// A write the API server refuses gives stakater's Warning (reason `ReloadFail`, its text)
/// once, and the reload lands when it is allowed again.
#[tokio::test]
async fn a_refused_write_gives_one_reload_fail_warning_then_lands() {
    let ns = TestNs::new("reloadfail").await;
    ns.create_cm("cfg", "1").await;
    ns.create::<Deployment>(auto_using("w", &["cfg"])).await;
    let refusal = Refusal::apply(&ns, "apps", "deployments", "UPDATE");
    let probe = json!({ "metadata": { "annotations": { "probe": "x" } } });
    let dry_run = kube::api::PatchParams {
        dry_run: true,
        ..Default::default()
    };
    refusal
        .wait_in_force(|| async {
            let patch = kube::api::Patch::Merge(&probe);
            ns.api::<Deployment>()
                .patch("w", &dry_run, &patch)
                .await
                .map(|_| ())
        })
        .await;
    let op = start_operator(&ns, &["--coalesce-window=0s"]).await;
    ns.set_cm("cfg", "2").await;
    let notes = wait_warnings(&ns, "w", "ReloadFail").await;
    let want = format!(
        "Update for 'w' of type 'Deployment' in namespace '{}' failed with error ",
        ns.name
    );
    assert!(notes[0].starts_with(&want), "{notes:?}");
    assert!(notes[0].contains("held by the test"), "{notes:?}");
    let failed = op
        .metric("reloader_reload_executed_total{success=\"false\"}")
        .await;
    assert!(failed >= Some(1.0), "{failed:?}");
    let errors = op
        .metric("reloader_errors_total{type=\"handler_error\"}")
        .await;
    assert_eq!(errors, failed, "one handler_error per failed attempt");
    drop(refusal);
    // The reload, once allowed.
    wait_marker(&ns, "w", "STAKATER_CFG_CONFIGMAP").await;
    assert_eq!(
        warnings(&ns, "w", "ReloadFail").await.len(),
        1,
        "once per reload"
    );
    let retries = op.metric("reloader_retries_total").await;
    assert!(
        retries >= failed,
        "every failed attempt is retried: {retries:?}"
    );
}

/// A Deployment `invalid` whose reload list has an invalid regex item.
async fn create_invalid(ns: &TestNs) {
    let pod = json!({ "containers": [{ "name": "app", "image": "x" }] });
    let invalid = json!({ "configmap.reloader.stakater.com/reload": "bad[" });
    ns.create::<Deployment>(deployment("invalid", invalid, pod))
        .await;
}

/// Waits until the Deployment `invalid` of `create_invalid` is reported.
async fn wait_invalid_reported(ns: &TestNs) {
    wait_warnings(ns, "invalid", "InvalidAnnotation").await;
}

/// Changes `cfg` in both namespaces (the spared one first); `rolled`'s workload reloads and,
/// once it has, `spared`'s still has no marker.
async fn change_both_expect_one(rolled: &TestNs, spared: &TestNs, untouched: &str) {
    for ns in [spared, rolled] {
        ns.set_cm("cfg", "2").await;
    }
    wait_marker(rolled, "w", "STAKATER_CFG_CONFIGMAP").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = spared.get::<Deployment>("w").await;
    assert_eq!(
        env_of(&d, "app", "STAKATER_CFG_CONFIGMAP"),
        None,
        "{untouched}"
    );
}

#[tokio::test]
async fn namespace_selector_limits_reloads_to_selected_namespaces() {
    let selected = TestNs::new("selected").await;
    let other = TestNs::new("unselected").await;
    let label = format!("sel-{}", std::process::id());
    kubectl(
        &[
            "label",
            "namespace",
            &selected.name,
            &format!("{label}=yes"),
        ],
        None,
    );
    setup_auto_pair(&selected, &other).await;
    for ns in [&selected, &other] {
        create_invalid(ns).await;
    }
    // Global mode (the selector only applies there), in stakater's legacy `key:value` form.
    let args = [format!("--namespace-selector={label}:yes")];
    let _op = support::start_global_operator(&selected, &[&args[0]]).await;
    change_both_expect_one(&selected, &other, "unselected namespace untouched").await;
    wait_invalid_reported(&selected).await;
    // Reported together at start-up: an unselected namespace is not this operator's.
    let outside = warnings(&other, "invalid", "InvalidAnnotation").await;
    assert!(
        outside.is_empty(),
        "warned outside its namespaces: {outside:?}"
    );
}

#[tokio::test]
async fn pause_period_pauses_once_and_a_restarted_operator_resumes() {
    let ns = TestNs::new("pause").await;
    ns.create_cm("cfg", "1").await;
    let annotations = json!({
        "reloader.stakater.com/auto": "true",
        "deployment.reloader.stakater.com/pause-period": "4s"
    });
    ns.create::<Deployment>(app_deployment("w", annotations, configmap_refs(&["cfg"])))
        .await;
    let op = start_operator(&ns, &[]).await;
    ns.set_cm("cfg", "2").await;
    let paused = wait_for("the Deployment paused with the marker", WAIT, || async {
        let d = ns.get::<Deployment>("w").await;
        let at = annotation(&d, "deployment.reloader.stakater.com/paused-at");
        match (
            d.spec.paused,
            at,
            env_of(&d, "app", "STAKATER_CFG_CONFIGMAP"),
        ) {
            (Some(true), Some(_), Some(_)) => Ok(d),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        replicaset_count(&ns, "w").await,
        1,
        "no rollout while paused"
    );

    // The operator restarts mid-pause: the new one must still resume (stakater#1016).
    drop(op);
    let _op = start_operator(&ns, &[]).await;
    let resumed = wait_for("the Deployment resumed", WAIT, || async {
        let d = ns.get::<Deployment>("w").await;
        let at = annotation(&d, "deployment.reloader.stakater.com/paused-at");
        match (d.spec.paused, at) {
            (Some(false) | None, None) => Ok(d),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        resumed.spec.template, paused.spec.template,
        "the reload itself stayed"
    );
    wait_for("the rollout after resuming", WAIT, || async {
        let n = replicaset_count(&ns, "w").await;
        if n == 2 { Ok(()) } else { Err(n) }
    })
    .await;
}

#[tokio::test]
async fn namespaces_to_ignore_are_never_reloaded() {
    let watched = TestNs::new("watched").await;
    let ignored = TestNs::new("ignored").await;
    // Both selected, so this global-mode operator stays off other tests' namespaces.
    let label = format!("ign-{}", std::process::id());
    for ns in [&watched, &ignored] {
        kubectl(
            &["label", "namespace", &ns.name, &format!("{label}=yes")],
            None,
        );
    }
    setup_auto_pair(&watched, &ignored).await;
    let args = [
        format!("--namespace-selector={label}=yes"),
        format!("--namespaces-to-ignore={}", ignored.name),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = support::start_global_operator(&watched, &args).await;
    change_both_expect_one(&watched, &ignored, "ignored namespace untouched").await;
}

#[tokio::test]
async fn sync_after_restart_rolls_only_workloads_with_stale_markers() {
    let ns = TestNs::new("syncrestart").await;
    ns.create_cm("cfg", "now").await;
    let current = cm_hash("now");
    let old = cm_hash("before");
    let env = |marker: Option<&str>| {
        marker.map_or(
            json!([]),
            |v| json!([{ "name": "STAKATER_CFG_CONFIGMAP", "value": v }]),
        )
    };
    // Changed while no reloader ran, never reloaded, and already current.
    for (name, marker) in [
        ("stale", Some(old.as_str())),
        ("unmarked", None),
        ("current", Some(current.as_str())),
    ] {
        let d = auto_deployment(name, configmap_refs(&["cfg"]), env(marker));
        ns.create::<Deployment>(d).await;
    }
    let _op = start_operator(
        &ns,
        &["--reload-on-create=true", "--sync-after-restart=true"],
    )
    .await;
    // The current hash after start-up.
    for name in ["stale", "unmarked"] {
        wait_env_value(&ns, name, "STAKATER_CFG_CONFIGMAP", &current).await;
    }
    // All three were planned in the same pass at start-up; the up-to-date one was skipped.
    let d = ns.get::<Deployment>("current").await;
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "an up-to-date workload was written"
    );
}

#[tokio::test]
async fn a_namespace_selected_after_start_up_reloads_on_its_next_change() {
    let late = TestNs::new("late-selected").await;
    let other = TestNs::new("late-other").await;
    setup_auto_pair(&late, &other).await;
    create_invalid(&late).await;
    let label = format!("late-{}", std::process::id());
    // The sentinel: `other` is selected from the start, and its invalid workload is reported
    // in the start-up pass that would report `late`'s if it were served.
    create_invalid(&other).await;
    kubectl(
        &["label", "namespace", &other.name, &format!("{label}=yes")],
        None,
    );
    let args = [format!("--namespace-selector={label}=yes")];
    let _op = support::start_global_operator(&late, &[&args[0], "--coalesce-window=0s"]).await;
    // Not served yet: no warning for its workloads.
    wait_invalid_reported(&other).await;
    tokio::time::sleep(SETTLE).await;
    let early = warnings(&late, "invalid", "InvalidAnnotation").await;
    assert!(early.is_empty(), "warned before it was selected: {early:?}");
    // Selected only now: its ConfigMap was listed while the namespace was not.
    kubectl(
        &["label", "namespace", &late.name, &format!("{label}=yes")],
        None,
    );
    // Its invalid annotations are reported now that it is served: the Namespace watch
    // delivered the label (no timing is asserted). Then one change must roll, though the
    // ConfigMap was listed while unselected.
    wait_invalid_reported(&late).await;
    late.set_cm("cfg", "2").await;
    // The first change after selection.
    wait_marker(&late, "w", "STAKATER_CFG_CONFIGMAP").await;
}
