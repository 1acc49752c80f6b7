//! The Helm chart against the real control plane: lint, a matrix of rendered values, the
//! schema rejecting bad values, and `helm install` in global and namespaced modes. Then the
//! operator binary runs on the host as the chart's ServiceAccount (a token from
//! `kubectl create token`) with the arguments the chart rendered, and performs a real
//! reload: the chart's RBAC is enough. The same identity cannot write Secrets or reach
//! outside its scope.

mod support;

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job};
use std::path::PathBuf;
use support::chart::{Release, can_i, chart, doc, render, render_args, run_as};
use support::{
    Binary, TestNs, WAIT, auto, auto_using, configmap_refs, helm, job, kubectl, repo_root,
    state_shards, task_pod, try_tool, wait_for, wait_marker,
};

#[test]
fn lint_passes() {
    let out = helm(&["lint", "--strict", &chart()]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn rendered_rbac_and_arguments_follow_the_values() {
    let docs = render(&[]);
    let cr = doc(&docs, "ClusterRole", None).expect("global mode: a ClusterRole");
    assert!(cr.contains("\"secrets\""));
    assert!(
        !cr.contains("namespaces"),
        "namespaces only with a selector"
    );
    assert!(!cr.contains("leases") && !cr.contains("rollouts"));
    let dep = doc(&docs, "Deployment", None).unwrap();
    for arg in [
        "--log-level=info",
        "--coalesce-window=2s",
        "--http-addr=:9090",
    ] {
        assert!(dep.contains(arg), "{arg}");
    }
    assert!(dep.contains("type: Recreate"), "one writer during upgrades");
    assert!(dep.contains("readOnlyRootFilesystem: true") && dep.contains("drop:"));
    assert!(dep.contains("path: /ready") && dep.contains("path: /live"));
    // No write verbs on configs outside our own state.
    assert!(!cr.contains("configmaps\"]\n  verbs: [get, list, watch, patch"));

    let docs = render(&[
        "reloader.ignoreSecrets=true",
        "reloader.ignoreJobs=true",
        "reloader.ignoreCronJobs=true",
        "reloader.namespaceSelector=team=a",
        "reloader.isArgoRollouts=true",
        "reloader.enableCSIIntegration=true",
        "reloader.reloadStrategy=annotations",
    ]);
    let cr = doc(&docs, "ClusterRole", None).unwrap();
    assert!(!cr.contains("secrets\""), "ignored Secrets keep no RBAC");
    assert!(
        !cr.contains("jobs"),
        "ignored Jobs and CronJobs keep no RBAC"
    );
    assert!(cr.contains("namespaces") && cr.contains("rollouts"));
    assert!(cr.contains("secretproviderclasspodstatuses"));
    let dep = doc(&docs, "Deployment", None).unwrap();
    for arg in [
        "--resources-to-ignore=secrets",
        "--ignored-workload-types=jobs,cronjobs",
        "--namespace-selector=team=a",
        "--is-Argo-Rollouts=true",
        "--enable-csi-integration=true",
        "--reload-strategy=annotations",
    ] {
        assert!(dep.contains(arg), "{arg}");
    }

    // The eviction strategy's RBAC, only when asked for.
    let cr = doc(
        &render(&["reloader.podEvictions=true"]),
        "ClusterRole",
        None,
    )
    .unwrap()
    .clone();
    assert!(
        cr.contains("pods/eviction") && cr.contains("resources: [pods]"),
        "{cr}"
    );
    assert!(
        !doc(&render(&[]), "ClusterRole", None)
            .unwrap()
            .contains("pods/eviction")
    );

    // Waves: both flags only when on.
    let docs = render(&["reloader.waves.maxConcurrent=3"]);
    let dep = doc(&docs, "Deployment", None).unwrap();
    assert!(dep.contains("--max-concurrent-rollouts=3") && dep.contains("--rollout-timeout=10m"));
    let dep = doc(&render(&[]), "Deployment", None).unwrap().clone();
    assert!(!dep.contains("--max-concurrent-rollouts"));

    // Opt-in by policy: the flags, and list/watch on namespaces for the opt-in only.
    let docs = render(&[
        "reloader.workloadSelector=reload=yes",
        "reloader.namespaceOptIn=true",
    ]);
    let dep = doc(&docs, "Deployment", None).unwrap();
    assert!(dep.contains("--workload-selector=reload=yes") && dep.contains("--namespace-opt-in"));
    assert!(
        doc(&docs, "ClusterRole", None)
            .unwrap()
            .contains("namespaces")
    );
    let plain = render(&[]);
    assert!(
        !doc(&plain, "ClusterRole", None)
            .unwrap()
            .contains("namespaces")
    );
    assert!(
        !doc(&plain, "Deployment", None)
            .unwrap()
            .contains("--namespace-opt-in")
    );

    let docs = render(&[
        "reloader.watchGlobally=false",
        "reloader.namespaces={team-b,team-a}",
        "reloader.enableHA=true",
        "reloader.deployment.replicas=2",
    ]);
    assert!(
        doc(&docs, "ClusterRole", None).is_none(),
        "namespaced: no ClusterRole"
    );
    for ns in ["team-a", "team-b", "ops"] {
        assert!(doc(&docs, "Role", Some(ns)).is_some(), "a Role in {ns}");
    }
    let dep = doc(&docs, "Deployment", None).unwrap();
    assert!(dep.contains("--namespaces=ops,team-a,team-b"), "{dep}");
    assert!(dep.contains("--enable-ha=true") && dep.contains("podAntiAffinity"));
    assert!(!dep.contains("Recreate"));
    let leases = docs
        .iter()
        .any(|d| d.contains("leases") && d.contains("kube-reloader-lock"));
    assert!(leases, "the Lease's update is limited to its name");

    // The monitors and the rule render only where their API is served.
    let monitoring = [
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--set",
        "reloader.serviceMonitor.enabled=true",
        "--set",
        "reloader.podMonitor.enabled=true",
        "--set",
        "reloader.prometheusRule.enabled=true",
    ];
    let unserved = render_args(&monitoring[2..]);
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule"] {
        assert!(
            doc(&unserved, kind, None).is_none(),
            "{kind} without its API"
        );
    }
    let mut args = monitoring.to_vec();
    for s in [
        "reloader.podDisruptionBudget.enabled=true",
        "reloader.netpol.enabled=true",
        "reloader.alerts.onReload=true",
        "reloader.alerts.webhookUrl=https://hooks.example/x",
        "reloader.enableMetricsByNamespace=true",
        "reloader.grafanaDashboard.enabled=true",
    ] {
        args.extend(["--set", s]);
    }
    let docs = render_args(&args);
    let rules = doc(&docs, "PrometheusRule", None).expect("PrometheusRule");
    for alert in ["KubeReloaderAbsent", "kube_reloader_state_writes_total"] {
        assert!(rules.contains(alert), "{alert}");
    }
    let dashboard = docs
        .iter()
        .find(|d| d.contains("kube-reloader.json"))
        .expect("dashboard");
    assert!(dashboard.contains("kube_reloader_reload_latency_seconds_bucket"));
    for kind in [
        "ServiceMonitor",
        "PodMonitor",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Service",
        "Secret",
    ] {
        assert!(doc(&docs, kind, None).is_some(), "{kind}");
    }
    let dep = doc(&docs, "Deployment", None).unwrap();
    assert!(dep.contains("ALERT_WEBHOOK_URL") && dep.contains("--alert-on-reload=true"));
    assert!(dep.contains("METRICS_COUNT_BY_NAMESPACE"));
    assert!(
        !dep.contains("hooks.example"),
        "the webhook URL stays in the Secret"
    );
}

#[test]
fn bad_values_fail_with_a_message_naming_them() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["reloader.reloadStrategy=bogus"],
            "/reloader/reloadStrategy",
        ),
        (&["reloader.reloadStategy=annotations"], "reloadStategy"),
        (&["reloader.logFormat=xml"], "/reloader/logFormat"),
        (&["reloader.namespaces={a}"], "reloader.watchGlobally=false"),
        (
            &["reloader.deployment.replicas=3"],
            "reloader.enableHA=true",
        ),
    ];
    for (sets, expected) in cases {
        let chart = chart();
        let mut args = vec!["template", "t", &chart];
        for s in sets {
            args.extend(["--set", s]);
        }
        let (ok, _, err) = try_tool("helm", &args, None);
        assert!(!ok, "{sets:?} rendered");
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}

/// Runs the binary as the installed release's ServiceAccount with its rendered args.
async fn run_as_release(release: &Release, extra: &[&str]) -> (Binary, PathBuf) {
    let sa = release.fullname();
    run_as(&release.namespace, &sa, &sa, extra).await
}

#[tokio::test]
async fn global_install_rbac_is_enough_for_a_real_reload_and_no_more() {
    let release_ns = TestNs::new("chart-global").await;
    let app_ns = TestNs::new("chart-global-app").await;
    // The selector keeps this cluster-wide install away from other tests' namespaces.
    let label = format!("kube-reloader-chart-test={}", app_ns.name);
    kubectl(&["label", "namespace", &app_ns.name, &label], None);
    let selector = format!(
        "reloader.namespaceSelector=kube-reloader-chart-test={}",
        app_ns.name
    );
    let release = Release::install("g", &release_ns.name, &[&selector]);
    app_ns.create_cm("cfg", "1").await;
    app_ns
        .create::<Deployment>(auto_using("app", &["cfg"]))
        .await;
    let job: Job = app_ns
        .create(job("migrate", auto(), task_pod(configmap_refs(&["cfg"]))))
        .await;
    let (bin, kubeconfig) = run_as_release(&release, &["--coalesce-window=0s"]).await;
    app_ns.set_cm("cfg", "2").await;
    wait_marker(&app_ns, "app", "STAKATER_CFG_CONFIGMAP").await;
    // A Job re-created, its record kept in the release's namespace meanwhile.
    let recreated = support::wait_job_recreated(&app_ns, &job).await;
    assert!(support::job_env(&recreated, "STAKATER_CFG_CONFIGMAP").is_some());
    assert!(can_i(
        &kubeconfig,
        "patch",
        "secrets/kube-reloader-jobs-03",
        &release_ns.name
    ));
    assert!(!can_i(
        &kubeconfig,
        "patch",
        "secrets/other",
        &release_ns.name
    ));
    // The state was written with the release's own permissions.
    wait_for("the state shards", WAIT, || async {
        let n = state_shards(&release_ns).await.len();
        if n > 0 { Ok(n) } else { Err(bin.log()) }
    })
    .await;

    for verb in ["create", "update", "patch", "delete"] {
        assert!(
            !can_i(&kubeconfig, verb, "secrets", &app_ns.name),
            "{verb} secrets"
        );
    }
    assert!(
        !can_i(&kubeconfig, "patch", "configmaps", &app_ns.name),
        "patch others' ConfigMaps"
    );
    assert!(
        !can_i(&kubeconfig, "create", "configmaps", &app_ns.name),
        "create ConfigMaps outside its namespace"
    );
    assert!(!can_i(
        &kubeconfig,
        "patch",
        "configmaps/not-state",
        &release_ns.name
    ));
    assert!(can_i(
        &kubeconfig,
        "patch",
        "configmaps/kube-reloader-state-07",
        &release_ns.name
    ));
    assert!(
        !can_i(&kubeconfig, "create", "leases", &release_ns.name),
        "no HA, no leases"
    );
    let (ok, _, err) = try_tool(
        "kubectl",
        &[
            "create",
            "secret",
            "generic",
            "x",
            "-n",
            &app_ns.name,
            "--from-literal=a=b",
        ],
        Some(&kubeconfig),
    );
    assert!(
        !ok && err.contains("forbidden"),
        "a Secret was written: {err}"
    );
    drop(bin);
}

#[tokio::test]
async fn namespaced_install_reloads_in_scope_and_cannot_reach_outside() {
    let release_ns = TestNs::new("chart-ns").await;
    let app_ns = TestNs::new("chart-ns-app").await;
    let outside = TestNs::new("chart-ns-outside").await;
    let scope = format!("reloader.namespaces={{{}}}", app_ns.name);
    let release = Release::install(
        "n",
        &release_ns.name,
        &[
            "reloader.watchGlobally=false",
            &scope,
            "reloader.enableHA=true",
        ],
    );
    for ns in [&app_ns, &outside] {
        ns.create_cm("cfg", "1").await;
        ns.create::<Deployment>(auto_using("app", &["cfg"])).await;
    }
    let (bin, kubeconfig) = run_as_release(&release, &["--coalesce-window=0s"]).await;
    wait_for("the release holds its Lease", WAIT, || async {
        match bin.metric("kube_reloader_leader").await {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}\n{}", bin.log())),
        }
    })
    .await;
    outside.set_cm("cfg", "2").await;
    app_ns.set_cm("cfg", "2").await;
    wait_marker(&app_ns, "app", "STAKATER_CFG_CONFIGMAP").await;
    let d = outside.get::<Deployment>("app").await;
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "a workload outside the scope was written"
    );

    for (verb, res) in [
        ("list", "configmaps"),
        ("get", "secrets"),
        ("patch", "deployments"),
        ("create", "jobs"),
    ] {
        assert!(
            !can_i(&kubeconfig, verb, res, &outside.name),
            "{verb} {res} outside"
        );
        assert!(
            !can_i(&kubeconfig, verb, res, "default"),
            "{verb} {res} in default"
        );
    }
    assert!(can_i(&kubeconfig, "patch", "deployments", &app_ns.name));
    assert!(!can_i(&kubeconfig, "create", "secrets", &app_ns.name));
    assert!(
        !can_i(&kubeconfig, "list", "namespaces", ""),
        "cluster-scoped reads"
    );
    let (ok, _, err) = try_tool(
        "kubectl",
        &[
            "patch",
            "deployment",
            "app",
            "-n",
            &outside.name,
            "-p",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ],
        Some(&kubeconfig),
    );
    assert!(
        !ok && err.contains("forbidden"),
        "patched outside its scope: {err}"
    );
    drop(bin);
}

#[test]
fn plain_manifests_match_the_chart_and_apply() {
    let script = repo_root().join("hack/render-manifests");
    let out = std::process::Command::new(&script)
        .arg("--check")
        .output()
        .expect("run hack/render-manifests");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The namespaced variant applies for real (it touches only its own namespace); the
    // global one is validated by the API server without being stored.
    let namespaced = repo_root().join("deploy/namespaced");
    let global = repo_root().join("deploy/global");
    kubectl(&["apply", "-k", namespaced.to_str().unwrap()], None);
    let role = kubectl(&["get", "role", "-n", "kube-reloader", "-o", "name"], None);
    assert!(role.contains("kube-reloader"), "{role}");
    let (ok, _, err) = try_tool(
        "kubectl",
        &["apply", "--dry-run=server", "-k", global.to_str().unwrap()],
        None,
    );
    kubectl(
        &["delete", "-k", namespaced.to_str().unwrap(), "--wait=false"],
        None,
    );
    assert!(ok, "deploy/global rejected: {err}");
}
