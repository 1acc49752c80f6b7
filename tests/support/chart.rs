//! Helpers for the Helm chart tests (tests/chart.rs, tests/chart_stakater.rs): rendering,
//! installed releases that clean up after themselves, and running the operator as a
//! release's ServiceAccount with the arguments the chart rendered.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde_json::Value;

use super::{Binary, kubectl, repo_root, service_account_kubeconfig, try_tool};

pub fn chart() -> String {
    repo_root()
        .join("charts/kube-reloader")
        .display()
        .to_string()
}

/// A file under tests/fixtures, as a path string for helm's `-f` and the like.
pub fn fixture(rel: &str) -> String {
    repo_root()
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

/// `helm template t <chart> -n ops ARGS…`; the rendered documents.
pub fn render_args(args: &[&str]) -> Vec<String> {
    let chart = chart();
    let mut all = vec!["template", "t", &chart, "-n", "ops"];
    all.extend_from_slice(args);
    super::helm(&all)
        .split("\n---\n")
        .map(str::to_owned)
        .filter(|d| d.contains("kind:"))
        .collect()
}

/// `helm template` with `--set` values; the rendered documents.
pub fn render(sets: &[&str]) -> Vec<String> {
    let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
    render_args(&args)
}

/// The one document of `kind` (and, if given, in `namespace`).
pub fn doc<'a>(docs: &'a [String], kind: &str, namespace: Option<&str>) -> Option<&'a String> {
    let kind_line = format!("\nkind: {kind}\n");
    docs.iter().find(|d| {
        format!("\n{d}").contains(&kind_line)
            && namespace.is_none_or(|ns| d.contains(&format!("  namespace: {ns}\n")))
    })
}

/// `helm template rel <chart> -n ops ARGS…` as JSON objects (kubectl reads the YAML; the
/// monitoring CRDs are installed first so it knows their kinds).
pub fn render_json(args: &[&str]) -> Vec<Value> {
    monitoring_crds();
    let chart = chart();
    let mut all = vec!["template", "rel", &chart, "-n", "ops"];
    all.extend_from_slice(args);
    let yaml = super::helm(&all);
    let json = kubectl(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        Some(&yaml),
    );
    serde_json::Deserializer::from_str(&json)
        .into_iter::<Value>()
        .map(|v| v.expect("kubectl's JSON"))
        .collect()
}

/// The object of `kind` (named `name`, if given) among `objs`; panics naming what is there.
pub fn find<'a>(objs: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && name.is_none_or(|n| o["metadata"]["name"] == n))
        .unwrap_or_else(|| {
            let there: Vec<String> = objs
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind} {name:?} among {there:?}")
        })
}

/// Whether an object of `kind` is among `objs`.
pub fn has_kind(objs: &[Value], kind: &str) -> bool {
    objs.iter().any(|o| o["kind"] == kind)
}

/// A values file as JSON, as Helm reads it (nulls kept).
pub fn values_json(file: &str) -> Value {
    let out = super::helm(&["template", "v", &fixture("values-json"), "-f", file]);
    let json: String = out
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("---"))
        .collect();
    serde_json::from_str(&json).expect("values as JSON")
}

/// Installs the stand-in CRDs of tests/fixtures/monitoring-crds.yaml once per process and
/// waits until they are served.
pub fn monitoring_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let file = fixture("monitoring-crds.yaml");
        kubectl(&["apply", "-f", &file], None);
        kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "-f",
                &file,
            ],
            None,
        );
    });
}

/// An object read from the API server as JSON.
pub fn get_json(kind: &str, name: &str, ns: Option<&str>) -> Value {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    serde_json::from_str(&kubectl(&args, None)).expect("kubectl get JSON")
}

/// Whether `kind`/`name` exists.
pub fn exists(kind: &str, name: &str, ns: Option<&str>) -> bool {
    let mut args = vec!["get", kind, name, "-o", "name"];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    try_tool("kubectl", &args, None).0
}

/// The installed Deployment's container arguments, minus the HTTP address (the host
/// run picks a free port).
pub fn installed_args(ns: &str, name: &str) -> Vec<String> {
    let d = get_json("deployment", name, Some(ns));
    let args = d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    args.iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| !a.starts_with("--http-addr"))
        .collect()
}

pub fn can_i(kubeconfig: &Path, verb: &str, resource: &str, ns: &str) -> bool {
    let (_, out, _) = try_tool(
        "kubectl",
        &["auth", "can-i", verb, resource, "-n", ns],
        Some(kubeconfig),
    );
    out.trim() == "yes"
}

/// An installed release, uninstalled when dropped (also when a test fails).
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    /// `helm install`; the full name carries the process id, because cluster-scoped
    /// objects (the ClusterRole) outlive a failed run's namespaces.
    pub fn install(prefix: &str, ns: &str, sets: &[&str]) -> Release {
        Release::install_file(prefix, ns, None, sets)
    }

    /// `install` with a values file from tests/fixtures, which the `--set` values override.
    pub fn install_file(prefix: &str, ns: &str, file: Option<&str>, sets: &[&str]) -> Release {
        let name = format!("{prefix}{}", std::process::id());
        let fullname = format!("fullnameOverride={name}-kube-reloader");
        let file = file.map(fixture);
        let mut args: Vec<&str> = file.iter().flat_map(|f| ["-f", f.as_str()]).collect();
        args.extend(["--set", fullname.as_str()]);
        args.extend(sets.iter().flat_map(|s| ["--set", s]));
        Release::install_chart(&name, ns, &chart(), &args)
    }

    /// The full name `install` gives the release (also its ServiceAccount's name).
    pub fn fullname(&self) -> String {
        format!("{}-kube-reloader", self.name)
    }

    /// `helm install NAME CHART -n NS ARGS…`.
    pub fn install_chart(name: &str, ns: &str, chart: &str, args: &[&str]) -> Release {
        let mut all = vec!["install", name, chart, "-n", ns];
        all.extend_from_slice(args);
        super::helm(&all);
        Release {
            name: name.to_owned(),
            namespace: ns.to_owned(),
        }
    }

    /// `helm upgrade` of this release to kube-reloader's chart; success, stdout, stderr.
    pub fn upgrade(&self, args: &[&str]) -> (bool, String, String) {
        let chart = chart();
        let mut all = vec!["upgrade", &self.name, &chart, "-n", &self.namespace];
        all.extend_from_slice(args);
        try_tool("helm", &all, None)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = try_tool(
            "helm",
            &["uninstall", &self.name, "-n", &self.namespace],
            None,
        );
    }
}

/// Runs the binary as ServiceAccount `sa` of namespace `ns` with the arguments rendered
/// into Deployment `deployment`, plus `extra`.
pub async fn run_as(ns: &str, sa: &str, deployment: &str, extra: &[&str]) -> (Binary, PathBuf) {
    let kubeconfig = service_account_kubeconfig(ns, sa);
    let mut args = installed_args(ns, deployment);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let kc = kubeconfig.display().to_string();
    let env = [
        ("KUBECONFIG", kc.as_str()),
        ("POD_NAMESPACE", ns),
        ("POD_NAME", "host-run"),
    ];
    let bin = Binary::spawn(sa, &args, &env).await;
    (bin, kubeconfig)
}
