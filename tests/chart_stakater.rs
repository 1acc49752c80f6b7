//! stakater/Reloader values files against kube-reloader's chart. Every key of stakater's
//! chart (2.2.16) is accepted and has its effect, its documented equivalent or a documented
//! "no effect"; docs/migration.md's mapping table, the schema and the every-key fixture name
//! the same keys; realistic stakater values files (tests/fixtures/stakater) install on the
//! real API server with the expected arguments, env, labels, RBAC and resources; and a
//! stakater release is taken over in place by `helm upgrade`.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};
use support::chart::{
    Release, can_i, chart, doc, exists, find, fixture, get_json, has_kind, installed_args,
    monitoring_crds, render, render_json, run_as, values_json,
};
use support::{
    TestNs, WAIT, auto_using, cm_hash, kubectl, recorded_hash, repo_root,
    service_account_kubeconfig, try_tool, wait_for,
};

const EVERY_KEY: &str = "stakater/every-key.yaml";

/// The arguments the chart always adds after the behaviour flags (the defaults of
/// kube-reloader's own values).
const OWN_ARGS: [&str; 8] = [
    "--coalesce-window=2s",
    "--coalesce-max-delay=30s",
    "--reload-rate=10",
    "--reload-burst=100",
    "--min-reload-interval=0s",
    "--write-concurrency=16",
    "--live-engine-stall=2m",
    "--live-watch-broken=5m",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `want` ⊆ `labels`.
fn assert_labels(what: &str, labels: &Value, want: &[(&str, &str)]) {
    let have = map(labels);
    for (k, v) in want {
        assert_eq!(
            have.get(*k).map(String::as_str),
            Some(*v),
            "{what}: {k} in {have:?}"
        );
    }
}

fn pairs(want: &[(&str, &str)]) -> BTreeMap<String, String> {
    want.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn container(d: &Value) -> &Value {
    &d["spec"]["template"]["spec"]["containers"][0]
}

/// The container's env as name -> the entry (value or valueFrom).
fn env(d: &Value) -> BTreeMap<String, Value> {
    container(d)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

fn secret_ref(name: &str, key: &str) -> Value {
    json!({ "secretKeyRef": { "name": name, "key": key } })
}

// ---------------------------------------------------------------- every key, rendered

#[test]
fn every_stakater_key_renders_its_effect() {
    let every = fixture(EVERY_KEY);
    let served = [
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--api-versions",
        "autoscaling.k8s.io/v1",
    ];
    let mut args = vec!["-f", every.as_str()];
    args.extend(served);
    let objs = render_json(&args);
    let selector = [
        ("app", "platform-reloader"),
        ("release", "rel"),
        ("team", "platform"),
    ];

    let d = find(&objs, "Deployment", Some("platform-reloader"));
    assert_eq!(d["metadata"]["namespace"], "tools", "top-level namespace");
    assert_eq!(
        map(&d["spec"]["selector"]["matchLabels"]),
        pairs(&selector),
        "stakater's selector: app, release and matchLabels"
    );
    let stakater_labels = [
        ("provider", "stakater"),
        ("group", "com.stakater.platform"),
        ("version", "v1.4.21"),
    ];
    assert_labels("Deployment", &d["metadata"]["labels"], &stakater_labels);
    let pod = &d["spec"]["template"];
    assert_labels("pod", &pod["metadata"]["labels"], &stakater_labels);
    assert_labels("pod", &pod["metadata"]["labels"], &selector);
    assert_eq!(
        d["metadata"]["annotations"]["example.com/owner"], "platform",
        "deployment.annotations"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/scrape"], "false",
        "deployment.pod.annotations"
    );
    assert_eq!(d["spec"]["replicas"], 2, "replicas with enableHA");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 5);
    let spec = &pod["spec"];
    for (key, want) in [
        ("hostUsers", json!(false)),
        ("runtimeClassName", json!("sandboxed")),
        ("schedulerName", json!("platform-scheduler")),
        ("priorityClassName", json!("system-cluster-critical")),
        ("automountServiceAccountToken", json!(true)),
        ("serviceAccountName", json!("reloader-sa")),
        ("nodeSelector", json!({ "kubernetes.io/os": "linux" })),
        (
            "dnsConfig",
            json!({ "options": [{ "name": "ndots", "value": "2" }] }),
        ),
        (
            "imagePullSecrets",
            json!([{ "name": "regcred" }, { "name": "regcred-object" }, { "name": "deployment-regcred" }]),
        ),
        (
            "volumes",
            json!([{ "name": "custom-ca", "configMap": { "name": "custom-ca" } }]),
        ),
    ] {
        assert_eq!(spec[key], want, "pod {key}");
    }
    assert_eq!(spec["tolerations"][0]["key"], "node-role.example.com/infra");
    assert!(
        spec["affinity"]["nodeAffinity"].is_object()
            && spec["affinity"]["podAntiAffinity"].is_null(),
        "the given affinity replaces the HA default: {}",
        spec["affinity"]
    );
    assert_eq!(
        spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]["app"],
        "platform-reloader"
    );
    assert_eq!(spec["securityContext"]["runAsUser"], 65534);

    let c = container(d);
    assert_eq!(
        c["image"],
        "mirror.example.com/kube-reloader/kube-reloader@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "global.imageRegistry + image.name, pinned by image.digest"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "20m", "memory": "512Mi" }, "limits": { "memory": "1Gi" } }),
        "resources exactly as given"
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "readOnlyRootFileSystem forces it over containerSecurityContext"
    );
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/etc/ssl/custom");
    for (probe, period) in [("livenessProbe", 11), ("readinessProbe", 10)] {
        assert_eq!(c[probe]["periodSeconds"], period, "{probe}");
        assert_eq!(c[probe]["successThreshold"], 1, "{probe}");
    }
    assert_eq!(c["livenessProbe"]["timeoutSeconds"], 7);
    assert_eq!(c["readinessProbe"]["timeoutSeconds"], 15);

    let mut want_args: Vec<String> = [
        "--namespaces-to-ignore=kube-system,kube-public",
        "--namespace-selector=team=platform",
        "--resource-label-selector=reload=yes",
        "--resources-to-ignore=configmaps",
        "--ignored-workload-types=jobs",
        "--reload-strategy=annotations",
        "--reload-on-create=true",
        "--reload-on-delete=true",
        "--sync-after-restart=true",
        "--auto-reload-all=true",
        "--is-Argo-Rollouts=true",
        "--enable-csi-integration=true",
        "--enable-ha=true",
        "--leader-election-id=kube-reloader-lock",
        "--leader-election-lease-duration=15s",
        "--leader-election-renew-deadline=10s",
        "--leader-election-retry-period=2s",
        "--log-format=json",
        "--log-level=debug",
        "--webhook-url=https://hooks.example.com/changed",
        "--auto-annotation=example.com/auto",
        "--configmap-annotation=example.com/configmap-reload",
        "--configmap-auto-annotation=example.com/configmap-auto",
        "--ignore-annotation=example.com/ignore",
        "--search-match-annotation=example.com/match",
        "--pause-deployment-annotation=example.com/pause-period",
        "--pause-deployment-time-annotation=example.com/paused-at",
        "--auto-search-annotation=example.com/search",
        "--secret-annotation=example.com/secret-reload",
        "--secret-auto-annotation=example.com/secret-auto",
    ]
    .map(String::from)
    .to_vec();
    want_args.extend(OWN_ARGS.map(String::from));
    want_args.push("--http-addr=:9090".into());
    // No pprof flags (never served) and no GOMAXPROCS/GOMEMLIMIT (Go only).
    assert_eq!(strings(&c["args"]), want_args);

    let env = env(d);
    assert_eq!(env["ALERT_ON_RELOAD"]["value"], "true", "env.open");
    assert!(
        !env.contains_key("LEFT_EMPTY"),
        "empty env values are skipped"
    );
    assert_eq!(
        env["ALERT_WEBHOOK_URL"]["valueFrom"],
        secret_ref("platform-reloader-env", "ALERT_WEBHOOK_URL"),
        "env.secret"
    );
    assert_eq!(
        env["ALERT_SINK"]["valueFrom"],
        secret_ref("alert-settings", "sink-key"),
        "env.existing in stakater's shape"
    );
    assert_eq!(
        env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert!(env.contains_key("METRICS_COUNT_BY_NAMESPACE"));
    for go in ["GOMAXPROCS", "GOMEMLIMIT"] {
        assert!(!env.contains_key(go), "{go}: a Go runtime setting");
    }
    let secret = find(&objs, "Secret", Some("platform-reloader-env"));
    assert_eq!(
        secret["stringData"],
        json!({ "ALERT_WEBHOOK_URL": "https://hooks.example.com/alerts" })
    );

    let sa = find(&objs, "ServiceAccount", Some("reloader-sa"));
    assert_labels(
        "ServiceAccount",
        &sa["metadata"]["labels"],
        &[("example.com/sa", "platform")],
    );
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/reloader"
    );
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(sa["imagePullSecrets"], spec["imagePullSecrets"]);

    let cr = find(&objs, "ClusterRole", Some("platform-reloader"));
    assert_labels(
        "ClusterRole",
        &cr["metadata"]["labels"],
        &[("example.com/rbac", "platform")],
    );
    let rules = cr["rules"].to_string();
    assert!(
        !rules.contains("\"configmaps\""),
        "ignoreConfigMaps: {rules}"
    );
    for res in ["namespaces", "rollouts", "secretproviderclasspodstatuses"] {
        assert!(rules.contains(res), "{res}: {rules}");
    }
    assert!(
        !rules.contains("deploymentconfigs"),
        "isOpenshift: no effect"
    );
    for kind in ["Role", "RoleBinding", "ClusterRoleBinding"] {
        assert_labels(
            kind,
            &find(&objs, kind, None)["metadata"]["labels"],
            &[("example.com/rbac", "platform")],
        );
    }

    let svc = find(&objs, "Service", Some("platform-reloader"));
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(map(&svc["spec"]["selector"]), pairs(&selector));
    assert_labels(
        "Service",
        &svc["metadata"]["labels"],
        &[("example.com/service", "metrics")],
    );
    assert_eq!(
        svc["metadata"]["annotations"]["example.com/note"],
        "scraped"
    );

    for (kind, endpoints, token, targets) in [
        (
            "ServiceMonitor",
            "endpoints",
            "bearerTokenFile",
            "targetLabels",
        ),
        (
            "PodMonitor",
            "podMetricsEndpoints",
            "bearerTokenSecret",
            "podTargetLabels",
        ),
    ] {
        let m = find(&objs, kind, None);
        assert_eq!(m["metadata"]["namespace"], "monitoring", "{kind}.namespace");
        assert_labels(kind, &m["metadata"]["labels"], &[("release", "prometheus")]);
        assert!(m["metadata"]["annotations"]["example.com/monitor"].is_string());
        assert_eq!(map(&m["spec"]["selector"]["matchLabels"]), pairs(&selector));
        assert_eq!(
            m["spec"]["namespaceSelector"]["matchNames"],
            json!(["tools"])
        );
        assert_eq!(m["spec"][targets], json!(["team"]), "{kind}.{targets}");
        let e = &m["spec"][endpoints][0];
        for key in [
            "interval",
            "scrapeTimeout",
            "scheme",
            "tlsConfig",
            "metricRelabelings",
            "relabelings",
            token,
        ] {
            assert!(!e[key].is_null(), "{kind}: {key} in {e}");
        }
        let honor = kind == "ServiceMonitor";
        assert_eq!(e["honorLabels"], honor, "{kind}.honorLabels");
    }
    let sm = find(&objs, "ServiceMonitor", None);
    assert_eq!(
        sm["spec"]["endpoints"][0]["scrapeTimeout"], "10s",
        "timeout"
    );

    let pdb = find(&objs, "PodDisruptionBudget", None);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1, "maxUnavailable wins");
    assert!(pdb["spec"]["minAvailable"].is_null(), "{}", pdb["spec"]);
    assert_eq!(
        map(&pdb["spec"]["selector"]["matchLabels"]),
        pairs(&selector)
    );

    let np = find(&objs, "NetworkPolicy", None);
    assert_eq!(
        map(&np["spec"]["podSelector"]["matchLabels"]),
        pairs(&selector)
    );
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring",
        "netpol.from"
    );
    assert_eq!(
        np["spec"]["egress"][1]["to"],
        json!([{ "ipBlock": { "cidr": "10.96.0.1/32" } }]),
        "netpol.to"
    );

    let vpa = find(&objs, "VerticalPodAutoscaler", None);
    assert_eq!(vpa["spec"]["targetRef"]["name"], "platform-reloader");
    let policy = &vpa["spec"]["resourcePolicy"]["containerPolicies"][0];
    assert_eq!(policy["containerName"], "kube-reloader");
    assert_eq!(policy["controlledValues"], "RequestsOnly");
    assert_eq!(policy["maxAllowed"]["memory"], "1Gi");
    assert_eq!(vpa["spec"]["updatePolicy"]["updateMode"], "Initial");
    assert_eq!(
        vpa["spec"]["recommenders"][0]["name"],
        "platform-recommender"
    );
}

#[test]
fn stakater_rendering_rules_that_users_depend_on() {
    let every = fixture(EVERY_KEY);
    let render = |extra: &[&str]| {
        let mut args = vec!["-f", every.as_str()];
        args.extend_from_slice(extra);
        render_json(&args)
    };
    // webhookUrl only inside the custom_annotations block, as in stakater's chart.
    let objs = render(&["--set", "reloader.custom_annotations=null"]);
    let args = strings(&container(find(&objs, "Deployment", None))["args"]);
    assert!(
        !args.iter().any(|a| a.starts_with("--webhook-url")),
        "webhookUrl without custom_annotations turned reloading off: {args:?}"
    );
    // Namespaced mode watches `namespace`, where the operator runs, and gives it a Role.
    let scoped = render(&["--set", "reloader.watchGlobally=false"]);
    let args = strings(&container(find(&scoped, "Deployment", None))["args"]);
    assert!(args.contains(&"--namespaces=tools".to_owned()), "{args:?}");
    assert_eq!(
        find(&scoped, "Role", Some("platform-reloader"))["metadata"]["namespace"],
        "tools"
    );
    // Monitors and the VPA only where their API is served.
    for kind in ["ServiceMonitor", "PodMonitor", "VerticalPodAutoscaler"] {
        assert!(!has_kind(&objs, kind), "{kind} without its API");
    }
    // rbac.enabled=false: the RBAC is the user's.
    let objs = render(&["--set", "reloader.rbac.enabled=false"]);
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(!has_kind(&objs, kind), "{kind} with rbac.enabled=false");
    }
    // A PodDisruptionBudget with neither bound sets neither.
    let objs = render(&[
        "--set",
        "reloader.podDisruptionBudget.minAvailable=null",
        "--set",
        "reloader.podDisruptionBudget.maxUnavailable=null",
    ]);
    let pdb = &find(&objs, "PodDisruptionBudget", None)["spec"];
    assert!(
        pdb["minAvailable"].is_null() && pdb["maxUnavailable"].is_null(),
        "{pdb}"
    );
    // The Service: a port alone renders it; `enabled: false` turns it off.
    let objs = render_json(&["--set", "reloader.service.port=9100"]);
    assert_eq!(
        find(&objs, "Service", None)["spec"]["ports"][0]["port"],
        9100
    );
    let objs = render_json(&[
        "--set",
        "reloader.service.port=9100",
        "--set",
        "reloader.service.enabled=false",
    ]);
    assert!(!has_kind(&objs, "Service"));
    assert!(
        !has_kind(&render_json(&[]), "Service"),
        "no Service by default"
    );
    // global.imagePullSecrets in the string form alone.
    let objs = render_json(&["--set", "global.imagePullSecrets={regcred}"]);
    let d = find(&objs, "Deployment", None);
    assert_eq!(
        d["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{ "name": "regcred" }])
    );
    // Given requests, nothing is merged in; given nothing, kube-reloader's defaults.
    let objs = render_json(&["--set", "reloader.deployment.resources.requests.memory=1Gi"]);
    assert_eq!(
        container(find(&objs, "Deployment", None))["resources"],
        json!({ "requests": { "memory": "1Gi" } })
    );
    let objs = render_json(&[]);
    assert_eq!(
        container(find(&objs, "Deployment", None))["resources"],
        json!({ "requests": { "cpu": "10m", "memory": "64Mi" }, "limits": { "memory": "256Mi" } })
    );
}

/// The release notes of a client-side dry-run install with values file `file`.
fn notes(file: &str) -> String {
    let (chart, file) = (chart(), fixture(file));
    let out = support::helm(&["install", "n", &chart, "--dry-run=client", "-f", &file]);
    out.split("NOTES:").nth(1).unwrap_or_default().to_owned()
}

#[test]
fn the_notes_name_carried_over_values_that_do_nothing() {
    let leftover = notes("stakater/alerts-mirror.yaml");
    assert!(
        leftover.contains("reloader.webhookUrl is set but has no effect"),
        "{leftover}"
    );
    let every = notes(EVERY_KEY);
    assert!(
        !every.contains("webhookUrl"),
        "with custom_annotations it works: {every}"
    );
    for key in [
        "reloader.isOpenshift",
        "reloader.enablePProf",
        "reloader.deployment.gomemlimitOverride",
    ] {
        assert!(every.contains(key), "{key}: {every}");
    }
    assert!(!notes("stakater/platform-global.yaml").contains("no effect"));
}

#[test]
fn stakaters_image_in_the_values_gives_kube_reloaders_image() {
    let image = |sets: &[&str]| {
        let docs = render(sets);
        let d = doc(&docs, "Deployment", None)
            .expect("a Deployment")
            .clone();
        d.lines()
            .find_map(|l| l.trim().strip_prefix("image: ").map(str::to_owned))
            .expect("an image line")
    };
    let own = image(&[]);
    assert_eq!(own, "\"ghcr.io/kube-reloader/kube-reloader:0.1.0\"");
    let stakater = [
        "image.repository=ghcr.io/stakater/reloader",
        "image.name=stakater/reloader",
        "image.tag=v1.4.21",
        "image.digest=sha256:1234567",
    ];
    assert_eq!(
        image(&stakater),
        own,
        "stakater's tag and digest are its image's"
    );
    let mirror = [
        "global.imageRegistry=mirror.example.com",
        "image.name=stakater/reloader",
    ];
    assert_eq!(
        image(&mirror),
        "\"mirror.example.com/kube-reloader/kube-reloader:0.1.0\""
    );
    let said = notes("stakater/copied-defaults.yaml");
    assert!(
        said.contains("stakater/Reloader's image (ghcr.io/stakater/reloader:v1.4.21)"),
        "{said}"
    );
    assert!(!notes("stakater/platform-global.yaml").contains("stakater/Reloader's image"));
}

#[test]
fn key_typos_fail_naming_them() {
    let chart = chart();
    let cases: [(&[&str], &str); 5] = [
        (&["reloader.deployment.hostUser=false"], "hostUser"),
        (&["reloader.podMonitor.honourLabels=true"], "honourLabels"),
        (
            &["reloader.netpol.form[0].podSelector.matchLabels.a=b"],
            "form",
        ),
        (
            &["reloader.service.ipFamilyPolicy=Dual"],
            "/reloader/service/ipFamilyPolicy",
        ),
        (&["nameSpace=x"], "nameSpace"),
    ];
    for (sets, expected) in cases {
        let mut args = vec!["template", "t", chart.as_str()];
        for s in sets {
            args.extend(["--set", s]);
        }
        let (ok, _, err) = try_tool("helm", &args, None);
        assert!(!ok, "{sets:?} rendered");
        assert!(err.contains(expected), "{sets:?}: {err}");
    }
}

// ---------------------------------------------------------------- keys: docs, schema, fixture

/// Leaf keys of the schema: properties without properties of their own.
fn schema_leaves(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, sub) in schema["properties"].as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if sub.get("properties").is_some() {
            schema_leaves(sub, &path, out);
        } else {
            out.insert(path);
        }
    }
}

/// Leaf keys of a values file, cut where the schema stops listing properties (maps such as
/// labels or resources are one key).
fn value_leaves(values: &Value, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in values.as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let sub = &schema["properties"][k];
        if sub.get("properties").is_some() && v.is_object() {
            value_leaves(v, sub, &path, out);
        } else {
            out.insert(path);
        }
    }
}

/// `a.{b, c}.d` -> `a.b.d`, `a.c.d` (one brace group).
fn expand(key: &str) -> Vec<String> {
    match (key.find('{'), key.find('}')) {
        (Some(open), Some(close)) => key[open + 1..close]
            .split(',')
            .map(|alt| format!("{}{}{}", &key[..open], alt.trim(), &key[close + 1..]))
            .collect(),
        _ => vec![key.to_owned()],
    }
}

/// The keys in the first column of the table under `## Chart values` in docs/migration.md
/// whose header's first cell is `header`.
fn doc_table_keys(header: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/migration.md")).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Chart values"))
        .expect("docs/migration.md: ## Chart values");
    let mut keys = BTreeSet::new();
    let mut in_table = false;
    for line in section.lines() {
        if let Some(first) = line.strip_prefix('|').and_then(|l| l.split('|').next()) {
            if first.trim() == header {
                in_table = true;
            } else if in_table && !first.trim_start().starts_with("---") {
                for key in first.split('`').skip(1).step_by(2) {
                    keys.extend(expand(key));
                }
            }
        } else {
            in_table = false;
        }
    }
    assert!(!keys.is_empty(), "no table headed {header:?}");
    keys
}

#[test]
fn the_mapping_table_the_schema_and_the_every_key_fixture_agree() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("charts/kube-reloader/values.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let mut accepted = BTreeSet::new();
    schema_leaves(&schema, "", &mut accepted);
    let stakater = doc_table_keys("stakater key");
    let own = doc_table_keys("kube-reloader key");

    let mut fixture_keys = BTreeSet::new();
    value_leaves(
        &values_json(&fixture(EVERY_KEY)),
        &schema,
        "",
        &mut fixture_keys,
    );
    let mut copied = BTreeSet::new();
    let copied_file = fixture("stakater/copied-defaults.yaml");
    value_leaves(&values_json(&copied_file), &schema, "", &mut copied);

    let documented: BTreeSet<String> = stakater.union(&own).cloned().collect();
    let every = format!("in the table, not in {EVERY_KEY}");
    let table = format!("in {EVERY_KEY}, not in the table");
    let copied_msg = format!("stakater's values.yaml keys missing from {EVERY_KEY}");
    for (a, b, what) in [
        (&stakater, &fixture_keys, every.as_str()),
        (&fixture_keys, &stakater, table.as_str()),
        (&copied, &fixture_keys, copied_msg.as_str()),
        (&stakater, &accepted, "stakater keys the schema rejects"),
        (&accepted, &documented, "schema keys the tables miss"),
        (&own, &accepted, "kube-reloader keys not in the schema"),
    ] {
        let extra: Vec<&String> = a.difference(b).collect();
        assert!(extra.is_empty(), "{what}: {extra:?}");
    }
    assert!(
        stakater.is_disjoint(&own),
        "{:?}",
        stakater.intersection(&own).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- realistic files, installed

fn deployment(ns: &str, name: &str) -> Value {
    get_json("deployment", name, Some(ns))
}

/// Installs kube-reloader's chart as `name` with a values file from tests/fixtures and
/// `--set` values (the run's fullnameOverride, namespaces and the like).
fn install_values(name: &str, ns: &str, file: &str, sets: &[String]) -> Release {
    let file = fixture(file);
    let mut args = vec!["-f", file.as_str()];
    for s in sets {
        args.extend(["--set", s.as_str()]);
    }
    Release::install_chart(name, ns, &chart(), &args)
}

fn with_own_args(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    // --log-level comes before the kube-reloader settings.
    let at = all
        .iter()
        .position(|a| a.starts_with("--log-level"))
        .unwrap_or(all.len());
    all.splice(at + 1..at + 1, OWN_ARGS.map(String::from));
    all
}

#[tokio::test]
async fn platform_global_values_install_and_reload_with_the_chart_rbac() {
    monitoring_crds();
    let release_ns = TestNs::new("stk-platform").await;
    let app_ns = TestNs::new("stk-platform-app").await;
    let name = format!("p{}", std::process::id());
    let full = format!("reloader-{name}");
    // Keeps this cluster-wide install away from other tests' namespaces (adds one argument and
    // the namespaces rule to what the file renders).
    let label = format!("kube-reloader-stakater-test={}", app_ns.name);
    kubectl(&["label", "namespace", &app_ns.name, &label], None);
    let sets = [
        format!("fullnameOverride={full}"),
        format!("reloader.namespaceSelector={label}"),
    ];
    let _release = install_values(
        &name,
        &release_ns.name,
        "stakater/platform-global.yaml",
        &sets,
    );
    let ns = release_ns.name.as_str();
    let d = deployment(ns, &full);
    let sel = format!("--namespace-selector={label}");
    assert_eq!(
        installed_args(ns, &full),
        with_own_args(&[
            "--namespaces-to-ignore=kube-system,kube-node-lease",
            &sel,
            "--reload-strategy=annotations",
            "--log-format=json",
            "--log-level=info",
        ])
    );
    let env: Vec<String> = env(&d).into_keys().collect();
    assert_eq!(
        env,
        ["METRICS_COUNT_BY_NAMESPACE", "POD_NAME", "POD_NAMESPACE"]
    );
    let selector = [("app", full.as_str()), ("release", name.as_str())];
    assert_eq!(map(&d["spec"]["selector"]["matchLabels"]), pairs(&selector));
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_labels("pod", pod_labels, &selector);
    assert_labels(
        "pod",
        pod_labels,
        &[("provider", "stakater"), ("team", "platform")],
    );
    assert_eq!(
        container(&d)["resources"],
        json!({ "limits": { "cpu": "150m", "memory": "512Mi" }, "requests": { "cpu": "10m", "memory": "128Mi" } })
    );
    let spec = &d["spec"]["template"]["spec"];
    assert_eq!(spec["priorityClassName"], "system-cluster-critical");
    assert_eq!(spec["tolerations"][0]["key"], "CriticalAddonsOnly");
    let sa = get_json("serviceaccount", &full, Some(ns));
    assert!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string());
    let pm = get_json("podmonitor", &full, Some(ns));
    assert_labels(
        "PodMonitor",
        &pm["metadata"]["labels"],
        &[("release", "kube-prometheus-stack")],
    );
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "30s");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["honorLabels"], true);

    // The rendered arguments start the binary, and the chart's RBAC carries a real reload
    // with the annotations strategy.
    app_ns.create_cm("cfg", "1").await;
    app_ns
        .create::<Deployment>(auto_using("app", &["cfg"]))
        .await;
    let (bin, kubeconfig) = run_as(ns, &full, &full, &["--coalesce-window=0s"]).await;
    app_ns.set_cm("cfg", "2").await;
    wait_for("the annotation", WAIT, || async {
        let d = app_ns.get::<Deployment>("app").await;
        match recorded_hash(&d) {
            Some(h) if h == cm_hash("2") => Ok(()),
            other => Err(format!("{other:?}\n{}", bin.log())),
        }
    })
    .await;
    assert!(!can_i(&kubeconfig, "patch", "secrets", &app_ns.name));
    drop(bin);
}

#[tokio::test]
async fn team_namespaced_ha_values_install_with_a_valid_pod_and_scoped_rbac() {
    let release_ns = TestNs::new("stk-team").await;
    let (team_a, team_b) = (
        TestNs::new("stk-team-a").await,
        TestNs::new("stk-team-b").await,
    );
    let outside = TestNs::new("stk-team-out").await;
    let ns = release_ns.name.as_str();
    // The ServiceAccount is made beforehand (serviceAccount.create: false).
    kubectl(
        &["create", "serviceaccount", "team-reloader", "-n", ns],
        None,
    );
    // The file's namespaces, as a CSV with a space, replaced by this run's.
    let scope = format!("reloader.namespaces=\"{}, {}\"", team_b.name, team_a.name);
    let file = fixture("stakater/team-namespaced-ha.yaml");
    // A fixed release name: the file's spread constraint selects app=team-reloader. Nothing
    // is cluster-scoped in namespaced mode, so runs cannot collide.
    let _release =
        Release::install_chart("team", ns, &chart(), &["-f", &file, "--set-json", &scope]);
    let d = deployment(ns, "team-kube-reloader");
    let mut watched = [ns, team_a.name.as_str(), team_b.name.as_str()];
    watched.sort();
    let scope_arg = format!("--namespaces={}", watched.join(","));
    assert_eq!(
        installed_args(ns, "team-kube-reloader"),
        with_own_args(&[
            &scope_arg,
            "--resources-to-ignore=secrets",
            "--reload-strategy=env-vars",
            "--reload-on-create=true",
            "--sync-after-restart=true",
            "--enable-ha=true",
            "--leader-election-id=kube-reloader-lock",
            "--leader-election-lease-duration=15s",
            "--leader-election-renew-deadline=10s",
            "--leader-election-retry-period=2s",
            "--log-level=info",
        ])
    );
    assert_eq!(d["spec"]["replicas"], 2);
    let spec = &d["spec"]["template"]["spec"];
    assert_eq!(spec["serviceAccountName"], "team-reloader");
    let spread = map(&spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]);
    let pod_labels = map(&d["spec"]["template"]["metadata"]["labels"]);
    for (k, v) in &spread {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "the spread rule selects the pods: {k}"
        );
    }
    assert!(
        spec["affinity"]["podAntiAffinity"].is_object(),
        "HA spreads by host"
    );
    assert_eq!(
        container(&d)["resources"],
        json!({ "requests": { "cpu": "50m", "memory": "300Mi" } })
    );
    // The API server accepts the pod (a request above a merged-in 256Mi limit would not).
    wait_for("a pod of the release", WAIT, || async {
        let pods = kubectl(
            &[
                "get",
                "pods",
                "-n",
                ns,
                "-l",
                "app=team-reloader,release=team",
                "-o",
                "name",
            ],
            None,
        );
        if pods.trim().is_empty() {
            let events = kubectl(&["get", "events", "-n", ns], None);
            Err(events)
        } else {
            Ok(())
        }
    })
    .await;
    let pdb = get_json("poddisruptionbudget", "team-kube-reloader", Some(ns));
    assert!(
        pdb["spec"]["minAvailable"].is_null() && pdb["spec"]["maxUnavailable"].is_null(),
        "no bound unless given: {}",
        pdb["spec"]
    );
    let kubeconfig = service_account_kubeconfig(ns, "team-reloader");
    for team in [&team_a, &team_b] {
        assert!(can_i(&kubeconfig, "watch", "configmaps", &team.name));
        assert!(can_i(&kubeconfig, "patch", "deployments", &team.name));
        assert!(
            !can_i(&kubeconfig, "get", "secrets", &team.name),
            "ignoreSecrets"
        );
    }
    assert!(!can_i(&kubeconfig, "list", "configmaps", &outside.name));
    assert!(can_i(&kubeconfig, "create", "leases", ns));
    assert!(!exists("clusterrole", "team-kube-reloader", None));
}

#[tokio::test]
async fn alerts_and_mirror_values_install_without_turning_reloads_off() {
    let release_ns = TestNs::new("stk-alerts").await;
    let ns = release_ns.name.as_str();
    let release = Release::install_file("a", ns, Some("stakater/alerts-mirror.yaml"), &[]);
    let full = release.fullname();
    let d = deployment(ns, &full);
    assert_eq!(
        installed_args(ns, &full),
        with_own_args(&[
            "--ignored-workload-types=jobs,cronjobs",
            "--is-Argo-Rollouts=true",
            "--log-level=info"
        ]),
        "no --webhook-url without custom_annotations"
    );
    assert_eq!(
        container(&d)["image"],
        "registry.internal.example/kube-reloader/kube-reloader:0.1.0"
    );
    let pull = json!([{ "name": "mirror-pull" }]);
    assert_eq!(d["spec"]["template"]["spec"]["imagePullSecrets"], pull);
    assert_eq!(
        get_json("serviceaccount", &full, Some(ns))["imagePullSecrets"],
        pull
    );
    let env = env(&d);
    let env_secret = format!("{full}-env");
    for key in [
        "ALERT_ON_RELOAD",
        "ALERT_SINK",
        "ALERT_WEBHOOK_URL",
        "ALERT_ADDITIONAL_INFO",
    ] {
        assert_eq!(env[key]["valueFrom"], secret_ref(&env_secret, key), "{key}");
    }
    assert_eq!(
        env["ALERT_WEBHOOK_PROXY"]["valueFrom"],
        secret_ref("slack-proxy", "proxy-url")
    );
    let secret = get_json("secret", &env_secret, Some(ns));
    let keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ALERT_ADDITIONAL_INFO",
            "ALERT_ON_RELOAD",
            "ALERT_SINK",
            "ALERT_WEBHOOK_URL"
        ]
    );
    let svc = get_json("service", &full, Some(ns));
    assert_eq!(
        svc["spec"]["ports"][0]["port"], 9090,
        "a port is enough for a Service"
    );
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    let np = get_json("networkpolicy", &full, Some(ns));
    assert_eq!(
        np["spec"]["egress"][1]["to"][0]["ipBlock"]["cidr"],
        "10.0.0.0/8"
    );
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "prometheus"
    );
    let cr = get_json("clusterrole", &full, None);
    assert_labels(
        "ClusterRole",
        &cr["metadata"]["labels"],
        &[("audit.example.com/owner", "platform")],
    );
    let kubeconfig = service_account_kubeconfig(ns, &full);
    assert!(!can_i(&kubeconfig, "list", "jobs", "default"), "ignoreJobs");
    assert!(
        !can_i(&kubeconfig, "patch", "cronjobs", "default"),
        "ignoreCronJobs"
    );
    // kubectl cannot ask about a kind the server does not serve: read the rule instead.
    let rollouts = json!({ "apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch", "update", "patch"] });
    assert!(
        cr["rules"].as_array().unwrap().contains(&rollouts),
        "{}",
        cr["rules"]
    );
}

#[tokio::test]
async fn a_copied_stakater_values_file_installs_with_kube_reloaders_defaults() {
    let release_ns = TestNs::new("stk-copied").await;
    let ns = release_ns.name.as_str();
    let release = Release::install_file("c", ns, Some("stakater/copied-defaults.yaml"), &[]);
    let (name, full) = (release.name.clone(), release.fullname());
    let d = deployment(ns, &full);
    assert_eq!(
        installed_args(ns, &full),
        with_own_args(&["--log-level=info"])
    );
    assert_labels(
        "pod",
        &d["spec"]["template"]["metadata"]["labels"],
        &[
            ("provider", "stakater"),
            ("app", full.as_str()),
            ("release", name.as_str()),
        ],
    );
    let c = container(&d);
    assert_eq!(
        c["image"], "ghcr.io/kube-reloader/kube-reloader:0.1.0",
        "stakater's image in the file gives kube-reloader's"
    );
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "10m", "memory": "64Mi" }, "limits": { "memory": "256Mi" } }),
        "stakater's resources: {{}} gives kube-reloader's defaults"
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "containerSecurityContext: {{}} keeps the hardening"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        65534
    );
    for kind in [
        "service",
        "poddisruptionbudget",
        "networkpolicy",
        "podmonitor",
    ] {
        assert!(
            !exists(kind, &full, Some(ns)),
            "{kind} from a values file that enables none"
        );
    }
}

#[tokio::test]
async fn the_every_key_file_installs_on_the_api_server() {
    monitoring_crds();
    let release_ns = TestNs::new("stk-every").await;
    let objects = TestNs::new("stk-every-obj").await;
    let monitoring = TestNs::new("stk-every-mon").await;
    let ns = objects.name.as_str();
    let name = format!("e{}", std::process::id());
    let full = format!("{name}-platform");
    // The release record in one namespace, its objects in `namespace`, the monitors in theirs.
    let sets = [
        format!("fullnameOverride={full}"),
        format!("namespace={ns}"),
        format!("reloader.serviceMonitor.namespace={}", monitoring.name),
        format!("reloader.podMonitor.namespace={}", monitoring.name),
    ];
    let _release = install_values(&name, &release_ns.name, EVERY_KEY, &sets);
    let d = deployment(ns, &full);
    assert_eq!(d["spec"]["template"]["spec"]["hostUsers"], false);
    let svc = get_json("service", &full, Some(ns));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    for kind in ["servicemonitor", "podmonitor"] {
        assert!(
            exists(kind, &full, Some(&monitoring.name)),
            "{kind} in its namespace"
        );
    }
    assert!(exists("verticalpodautoscaler", &full, Some(ns)));
    assert!(exists("secret", &format!("{full}-env"), Some(ns)));
    let binding = get_json("rolebinding", &format!("{full}-self"), Some(ns));
    assert_eq!(binding["subjects"][0]["namespace"], ns);
}

// ---------------------------------------------------------------- in-place upgrade

/// Installs the stand-in for a stakater release (tests/fixtures/stakater-release), with
/// client-side apply as Helm 3 does, or server-side apply as Helm 4 does by default.
fn stakater_release(name: &str, ns: &str, server_side: bool, args: &[&str]) -> Release {
    let ssa = format!("--server-side={server_side}");
    let mut all = vec![ssa.as_str()];
    all.extend_from_slice(args);
    Release::install_chart(name, ns, &fixture("stakater-release"), &all)
}

fn replica_sets(ns: &str) -> Vec<(String, i64)> {
    let list: Value = serde_json::from_str(&kubectl(
        &["get", "replicasets", "-n", ns, "-o", "json"],
        None,
    ))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| {
            let c = &rs["spec"]["template"]["spec"]["containers"][0]["name"];
            (
                c.as_str().unwrap().to_owned(),
                rs["spec"]["replicas"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_stakater_release_with_a_fullname_override_is_taken_over_in_place() {
    let release_ns = TestNs::new("stk-inplace").await;
    let ns = release_ns.name.as_str();
    let name = format!("u{}", std::process::id());
    let full = format!("reloader-{name}");
    let (file, fullname) = (
        fixture("stakater/platform-global.yaml"),
        format!("fullnameOverride={full}"),
    );
    let args = ["-f", file.as_str(), "--set", fullname.as_str()];
    let release = stakater_release(&name, ns, false, &args);
    let before = deployment(ns, &full);
    assert_eq!(before["spec"]["strategy"]["type"], "RollingUpdate");

    let (ok, _, err) = release.upgrade(&args);
    assert!(ok, "helm upgrade: {err}");
    let after = deployment(ns, &full);
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "patched, not re-created"
    );
    assert_eq!(after["spec"]["selector"], before["spec"]["selector"]);
    assert_eq!(after["spec"]["strategy"], json!({ "type": "Recreate" }));
    let containers: Vec<&Value> = after["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(
        containers,
        [&json!("kube-reloader")],
        "stakater's container is gone"
    );
    assert!(
        !exists("clusterrole", &format!("{full}-role"), None),
        "stakater's ClusterRole is removed"
    );
    assert!(!exists(
        "clusterrolebinding",
        &format!("{full}-role-binding"),
        None
    ));
    assert!(exists("clusterrole", &full, None) && exists("clusterrolebinding", &full, None));
    // The Deployment controller replaces stakater's pods by kube-reloader's.
    wait_for(
        "kube-reloader's ReplicaSet replaces stakater's",
        WAIT,
        || async {
            let sets = replica_sets(ns);
            let theirs = sets.iter().find(|(c, _)| *c == full).map(|s| s.1);
            let ours = sets.iter().find(|(c, _)| c == "kube-reloader").map(|s| s.1);
            if theirs == Some(0) && ours == Some(1) {
                Ok(())
            } else {
                Err(sets)
            }
        },
    )
    .await;
    // And the release runs: its ServiceAccount gets what the chart grants.
    let kubeconfig = service_account_kubeconfig(ns, &full);
    assert!(can_i(&kubeconfig, "watch", "deployments", "default"));
}

#[tokio::test]
async fn a_server_side_stakater_release_needs_client_side_apply_for_the_take_over() {
    let release_ns = TestNs::new("stk-ssa").await;
    let ns = release_ns.name.as_str();
    let name = format!("s{}", std::process::id());
    let full = format!("reloader-{name}");
    let fullname = format!("fullnameOverride={full}");
    let release = stakater_release(&name, ns, true, &["--set", &fullname]);
    // Server-side apply keeps the defaulted rollingUpdate no manager owns: the upgrade fails
    // and stakater keeps running.
    let (ok, _, err) = release.upgrade(&["--set", &fullname]);
    assert!(!ok && err.contains("rollingUpdate"), "{err}");
    let d = deployment(ns, &full);
    assert_eq!(container(&d)["name"], full.as_str(), "stakater still runs");
    // The documented path: the same upgrade with client-side apply.
    let (ok, _, err) = release.upgrade(&["--set", &fullname, "--server-side=false"]);
    assert!(ok, "{err}");
    let d = deployment(ns, &full);
    assert_eq!(container(&d)["name"], "kube-reloader");
    assert_eq!(d["spec"]["strategy"], json!({ "type": "Recreate" }));
    // Later upgrades of the release need nothing special, HA on and off included.
    for ha in ["true", "false"] {
        let set = format!("reloader.enableHA={ha}");
        let (ok, _, err) =
            release.upgrade(&["--set", &fullname, "--set", &set, "--server-side=true"]);
        assert!(ok, "enableHA={ha}: {err}");
    }
    assert_eq!(
        deployment(ns, &full)["spec"]["strategy"],
        json!({ "type": "Recreate" })
    );
}

#[tokio::test]
async fn a_stakater_release_without_an_override_moves_to_a_new_deployment() {
    let release_ns = TestNs::new("stk-move").await;
    let ns = release_ns.name.as_str();
    let name = format!("m{}", std::process::id());
    let release = stakater_release(&name, ns, false, &[]);
    let theirs = format!("{name}-reloader");
    let selector = deployment(ns, &theirs)["spec"]["selector"].clone();
    let (ok, _, err) = release.upgrade(&[]);
    assert!(ok, "{err}");
    assert!(
        !exists("deployment", &theirs, Some(ns)),
        "stakater's Deployment is removed"
    );
    let ours = deployment(ns, &format!("{name}-kube-reloader"));
    assert_eq!(
        ours["spec"]["selector"], selector,
        "stakater's labels, so rules selecting them still match"
    );
    assert!(!exists("clusterrole", &format!("{theirs}-role"), None));
}
