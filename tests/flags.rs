//! Flags against the real API server: stakater's annotation-override flags, the
//! `KUBERNETES_NAMESPACE` scope (through the real binary), `--ignored-workload-types`, the
//! arguments stakater's chart renders, and the values stakater tolerates (through the real
//! binary: it starts, warns and behaves as stakater).
//! Negatives are proven with a sentinel: a change made after the negative one rolls its
//! own workload; once it has, the operator has seen the negative change too, so a missing
//! marker means "decided not to roll", not "not yet".

mod support;

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
    core::v1::ConfigMap,
};
use serde_json::{Value, json};
use support::{
    Binary, SETTLE, TestNs, WAIT, annotation, app_deployment, auto, change_config, configmap_refs,
    create_config, cronjob, env_from, has_env, job, kubectl, marker_var, recorded_hash,
    setup_auto_pair, start_operator, task_pod, wait_for, wait_job_recreated, wait_marker,
};

/// A Deployment with no replicas whose container `app` takes `config` of `kind` through
/// envFrom.
fn deployment(name: &str, annotations: &Value, kind: &str, config: &str) -> Value {
    app_deployment(name, annotations.clone(), json!([env_from(kind, config)]))
}

/// One annotation-override flag: the pair of annotation sets that must roll (`rolls`) and
/// the one that must not (`stays`) while the flag is given.
struct Case {
    name: &'static str,
    flag: &'static str,
    kind: &'static str,
    rolls: Side,
    stays: Side,
}

/// Annotations on a workload and on the config it references.
struct Side {
    workload: Value,
    config: Value,
}

fn side(workload: Value, config: Value) -> Side {
    Side { workload, config }
}

fn override_cases() -> Vec<Case> {
    let t = |key: &str| json!({ key: "true" });
    let none = || json!({});
    vec![
        Case {
            name: "auto",
            flag: "--auto-annotation=example.com/auto",
            kind: "ConfigMap",
            rolls: side(t("example.com/auto"), none()),
            stays: side(t("reloader.stakater.com/auto"), none()),
        },
        Case {
            name: "configmap-auto",
            flag: "--configmap-auto-annotation=example.com/cm-auto",
            kind: "ConfigMap",
            rolls: side(t("example.com/cm-auto"), none()),
            stays: side(t("configmap.reloader.stakater.com/auto"), none()),
        },
        Case {
            name: "secret-auto",
            flag: "--secret-auto-annotation=example.com/secret-auto",
            kind: "Secret",
            rolls: side(t("example.com/secret-auto"), none()),
            stays: side(t("secret.reloader.stakater.com/auto"), none()),
        },
        Case {
            name: "configmap-reload",
            flag: "--configmap-annotation=example.com/cm-reload",
            kind: "ConfigMap",
            rolls: side(json!({ "example.com/cm-reload": "rolls,stays" }), none()),
            stays: side(
                json!({ "configmap.reloader.stakater.com/reload": "rolls,stays" }),
                none(),
            ),
        },
        Case {
            name: "secret-reload",
            flag: "--secret-annotation=example.com/secret-reload",
            kind: "Secret",
            rolls: side(
                json!({ "example.com/secret-reload": "rolls,stays" }),
                none(),
            ),
            stays: side(
                json!({ "secret.reloader.stakater.com/reload": "rolls,stays" }),
                none(),
            ),
        },
        Case {
            name: "search",
            flag: "--auto-search-annotation=example.com/search",
            kind: "ConfigMap",
            rolls: side(t("example.com/search"), t("reloader.stakater.com/match")),
            stays: side(
                t("reloader.stakater.com/search"),
                t("reloader.stakater.com/match"),
            ),
        },
        Case {
            name: "search-match",
            flag: "--search-match-annotation=example.com/match",
            kind: "Secret",
            rolls: side(t("reloader.stakater.com/search"), t("example.com/match")),
            stays: side(
                t("reloader.stakater.com/search"),
                t("reloader.stakater.com/match"),
            ),
        },
        // Inverted: the renamed key is the one that now suppresses, and stakater's no longer does.
        Case {
            name: "ignore",
            flag: "--ignore-annotation=example.com/ignore",
            kind: "ConfigMap",
            rolls: side(
                t("reloader.stakater.com/auto"),
                t("reloader.stakater.com/ignore"),
            ),
            stays: side(t("reloader.stakater.com/auto"), t("example.com/ignore")),
        },
    ]
}

/// Configs `stays` and `rolls`, each referenced by the Deployment of the same name. `stays`
/// changes first; `rolls` is its sentinel.
async fn run_override(case: Case) -> Result<(), String> {
    let ns = TestNs::new(&format!("flag-{}", case.name)).await;
    for (name, s) in [("stays", &case.stays), ("rolls", &case.rolls)] {
        create_config(&ns, case.kind, name, &s.config, &json!({})).await;
        ns.create::<Deployment>(deployment(name, &s.workload, case.kind, name))
            .await;
    }
    let _op = start_operator(&ns, &[case.flag]).await;
    change_config(&ns, case.kind, "stays").await;
    change_config(&ns, case.kind, "rolls").await;
    // The workload using the renamed key rolls.
    wait_marker(&ns, "rolls", &marker_var(case.kind, "rolls")).await;
    tokio::time::sleep(SETTLE).await;
    let stays = ns.get::<Deployment>("stays").await;
    if has_env(&stays, &marker_var(case.kind, "stays")) {
        return Err(format!(
            "{}: with {} the workload using stakater's key rolled too",
            case.name, case.flag
        ));
    }
    Ok(())
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn annotation_override_flags_replace_stakaters_keys() {
    // Each case in its own task, so a timed-out wait fails its case, not the others.
    let tasks = override_cases()
        .into_iter()
        .map(|c| tokio::spawn(run_override(c)));
    let failures: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(panic_message(e)),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn pause_annotation_flags_rename_the_period_and_the_paused_at_keys() {
    let ns = TestNs::new("flag-pause").await;
    let custom = json!({ "reloader.stakater.com/auto": "true", "example.com/pause": "3s" });
    let stock = json!({
        "reloader.stakater.com/auto": "true",
        "deployment.reloader.stakater.com/pause-period": "1h"
    });
    for (name, annotations) in [("custom", &custom), ("stock", &stock)] {
        create_config(&ns, "ConfigMap", name, &json!({}), &json!({})).await;
        ns.create::<Deployment>(deployment(name, annotations, "ConfigMap", name))
            .await;
    }
    let _op = start_operator(
        &ns,
        &[
            "--pause-deployment-annotation=example.com/pause",
            "--pause-deployment-time-annotation=example.com/paused-at",
        ],
    )
    .await;
    change_config(&ns, "ConfigMap", "stock").await;
    change_config(&ns, "ConfigMap", "custom").await;

    // The reload and the pause go out in one write, so a rolled workload shows both.
    let paused = wait_marker(&ns, "custom", "STAKATER_CUSTOM_CONFIGMAP").await;
    assert_eq!(paused.spec.paused, Some(true), "paused");
    assert!(
        annotation(&paused, "example.com/paused-at").is_some(),
        "the renamed paused-at key is written: {:?}",
        paused.metadata.annotations
    );
    assert_eq!(
        annotation(&paused, "deployment.reloader.stakater.com/paused-at"),
        None
    );

    let stock = wait_marker(&ns, "stock", "STAKATER_STOCK_CONFIGMAP").await;
    assert_ne!(
        stock.spec.paused,
        Some(true),
        "stakater's pause-period key no longer pauses"
    );
    assert_eq!(annotation(&stock, "example.com/paused-at"), None);
    assert_eq!(
        annotation(&stock, "deployment.reloader.stakater.com/paused-at"),
        None
    );

    // Resuming reads the renamed paused-at key back.
    wait_for("the resume after 3s", WAIT, || async {
        let d = ns.get::<Deployment>("custom").await;
        match (d.spec.paused, annotation(&d, "example.com/paused-at")) {
            (Some(false) | None, None) => Ok(()),
            other => Err(other),
        }
    })
    .await;
}

#[tokio::test]
async fn kubernetes_namespace_env_scopes_the_real_binary() {
    let scoped = TestNs::new("envns-scoped").await;
    let other = TestNs::new("envns-other").await;
    setup_auto_pair(&scoped, &other).await;
    let bin = Binary::spawn(
        "envns",
        &[],
        &[("KUBERNETES_NAMESPACE", scoped.name.as_str())],
    )
    .await;
    // Were the binary watching everything, one cluster-wide watch would bring `other`'s
    // change before `scoped`'s.
    change_config(&other, "ConfigMap", "cfg").await;
    change_config(&scoped, "ConfigMap", "cfg").await;
    wait_for(
        "the reload in the KUBERNETES_NAMESPACE namespace",
        WAIT,
        || async {
            let d = scoped.get::<Deployment>("w").await;
            if has_env(&d, "STAKATER_CFG_CONFIGMAP") {
                Ok(())
            } else {
                Err(bin.log())
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let d = other.get::<Deployment>("w").await;
    assert!(
        !has_env(&d, "STAKATER_CFG_CONFIGMAP"),
        "a namespace outside KUBERNETES_NAMESPACE was reloaded; log:\n{}",
        bin.log()
    );
}

#[tokio::test]
async fn ignored_workload_types_spare_jobs_and_cronjobs() {
    let ns = TestNs::new("flag-ignored-types").await;
    create_config(&ns, "ConfigMap", "cfg", &json!({}), &json!({})).await;
    let pod = task_pod(configmap_refs(&["cfg"]));
    ns.create::<CronJob>(cronjob("nightly", auto(), pod.clone()))
        .await;
    let job: Job = ns.create(job("migrate", auto(), pod)).await;
    // The sentinel uses the same ConfigMap: once it rolled, the change has been handled.
    ns.create::<Deployment>(deployment("sentinel", &auto(), "ConfigMap", "cfg"))
        .await;
    let _op = start_operator(&ns, &["--ignored-workload-types=jobs,cronjobs"]).await;
    change_config(&ns, "ConfigMap", "cfg").await;
    wait_marker(&ns, "sentinel", "STAKATER_CFG_CONFIGMAP").await;
    // A Job re-creation is a delete and a create: give both time to land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let jobs: Vec<(Option<String>, Option<String>)> = ns
        .list::<Job>()
        .await
        .into_iter()
        .map(|j| (j.metadata.name, j.metadata.uid))
        .collect();
    assert_eq!(
        jobs,
        [(job.metadata.name, job.metadata.uid)],
        "no Job from the CronJob, and the Job is the original one"
    );
}

#[tokio::test]
async fn stakaters_chart_arguments_start_the_binary_and_it_reloads() {
    let selected = TestNs::new("chart-args-selected").await;
    let other = TestNs::new("chart-args-other").await;
    let label = format!("stakater-chart-{}", std::process::id());
    let selector = format!("{label}=yes");
    kubectl(&["label", "namespace", &selected.name, &selector], None);
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    for ns in [&selected, &other] {
        ns.create::<ConfigMap>(json!({
            "metadata": { "name": "cfg", "labels": { &label: "yes" } },
            "data": { "k": "1" }
        }))
        .await;
        ns.create::<Deployment>(deployment("w", &auto, "ConfigMap", "cfg"))
            .await;
    }
    // The arguments stakater's chart (2.2.16) renders for namespaceSelector,
    // resourceLabelSelector, ignoreNamespaces, logFormat: json, ignoreJobs, ignoreCronJobs,
    // reloadStrategy: annotations and reloadOnCreate, with its literal quotes around the
    // namespace selector.
    let args = [
        "--log-format=json".to_owned(),
        "--log-level=info".to_owned(),
        "--resources-to-ignore=secrets".to_owned(),
        "--ignored-workload-types=jobs,cronjobs".to_owned(),
        "--namespaces-to-ignore=kube-system".to_owned(),
        format!("--namespace-selector=\"{selector}\""),
        format!("--resource-label-selector={selector}"),
        "--reload-on-create=true".to_owned(),
        "--reload-strategy=annotations".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bin = Binary::spawn("stakater-chart-args", &args, &[]).await;
    change_config(&other, "ConfigMap", "cfg").await;
    change_config(&selected, "ConfigMap", "cfg").await;
    wait_for("the reload in the selected namespace", WAIT, || async {
        let d = selected.get::<Deployment>("w").await;
        recorded_hash(&d).ok_or_else(|| bin.log())
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    let untouched = other.get::<Deployment>("w").await;
    assert_eq!(recorded_hash(&untouched), None, "outside the selector");
    let (_, metrics) = bin.http_get("/metrics").await;
    assert!(
        !metrics.contains("kube_reloader_config_warnings_total{"),
        "nothing to warn about:\n{}",
        bin.log()
    );
}

#[tokio::test]
async fn values_stakater_tolerates_start_the_binary_with_warnings() {
    let ns = TestNs::new("tolerated").await;
    create_config(&ns, "ConfigMap", "cfg", &json!({}), &json!({})).await;
    ns.create::<Deployment>(deployment("w", &auto(), "ConfigMap", "cfg"))
        .await;
    let job: Job = ns
        .create(job("migrate", auto(), task_pod(configmap_refs(&["cfg"]))))
        .await;
    let tolerated = [
        "--log-level=loud",
        "--log-format=xml",
        // " cronjobs" (with its space) is not an item stakater knows: the list is void.
        "--ignored-workload-types=jobs, cronjobs",
        // Scoped mode: stakater ignores a namespace selector there.
        "--namespace-selector=team=nobody",
    ];
    let bin = Binary::in_namespace(&ns, "tolerated", &tolerated, &[]).await;
    change_config(&ns, "ConfigMap", "cfg").await;
    wait_marker(&ns, "w", "STAKATER_CFG_CONFIGMAP").await;
    wait_job_recreated(&ns, &job).await;
    let log = bin.log();
    for flag in [
        "--log-level",
        "--log-format",
        "--ignored-workload-types",
        "--namespace-selector",
    ] {
        let series = format!("kube_reloader_config_warnings_total{{flag=\"{flag}\"}}");
        assert_eq!(bin.metric(&series).await, Some(1.0), "{series}:\n{log}");
        assert!(
            log.contains(&format!("{flag}: ")),
            "a line naming {flag}:\n{log}"
        );
    }
    let text_at_info = log.contains(" WARN ") && !log.contains(" DEBUG ");
    assert!(text_at_info, "logs as text at info:\n{log}");
}
