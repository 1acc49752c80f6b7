//! Test support: one real control plane per test run (started through `hack/cluster up`,
//! or reused when already up), a fresh namespace per test, and small helpers to create,
//! change and read objects and to wait for a condition with a clear failure message.
#![allow(dead_code)] // each test binary uses its own subset of these helpers

pub mod chart;
pub mod pods;

use std::{
    fmt::Debug,
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use clap::Parser;
use k8s_openapi::{NamespaceResourceScope, api::core::v1::Namespace};
use kube::{
    Api, Client, Config, Resource,
    api::{ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_reloader::{
    cli::Cli,
    operator::{health::Readiness, http, metrics::Metrics, options::Options},
};
use serde::{Serialize, de::DeserializeOwned};

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the control plane once per test process (`hack/cluster up` is idempotent and
/// locked, so concurrent test binaries share one plane) and returns its kubeconfig path.
pub fn control_plane() -> &'static Path {
    static KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();
    KUBECONFIG.get_or_init(|| {
        let script = repo_root().join("hack/cluster");
        // The shared plane, whatever a developer's shell says about planes of one's own.
        let status = Command::new(&script)
            .arg("up")
            .env_remove("KUBE_RELOADER_CLUSTER_DIR")
            .env_remove("KUBE_RELOADER_CLUSTER_CONTROLLERS")
            .env_remove("KUBE_RELOADER_CLUSTER_NODES")
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "`hack/cluster up` failed ({status}); see .cache/cluster/*.log"
        );
        repo_root().join(".cache/cluster/kubeconfig")
    })
}

/// Directory holding the built kubectl and helm.
pub fn bin_dir() -> PathBuf {
    repo_root().join(".cache/bin")
}

/// An admin client for the local control plane.
pub async fn admin_client() -> Client {
    client_for(control_plane()).await
}

/// A client from the kubeconfig at `path`.
pub async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read the admin kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load the admin kubeconfig");
    Client::try_from(config).expect("build a client")
}

/// A fresh namespace for one test. Deleted (without waiting) when dropped.
pub struct TestNs {
    pub name: String,
    pub client: Client,
    kubeconfig: PathBuf,
}

impl TestNs {
    /// Creates `PREFIX-<pid>-<n>` with the label `kube-reloader-test=true`.
    pub async fn new(prefix: &str) -> Self {
        Self::on(control_plane(), prefix).await
    }

    /// Creates it on the plane that the admin kubeconfig at `kubeconfig` reaches.
    pub async fn on(kubeconfig: &Path, prefix: &str) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let client = client_for(kubeconfig).await;
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "kube-reloader-test": "true" } }
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        TestNs {
            name,
            client,
            kubeconfig: kubeconfig.to_owned(),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates an object from JSON in this namespace.
    pub async fn create<K>(&self, obj: serde_json::Value) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
    {
        let obj: K = serde_json::from_value(obj).expect("object JSON matches its type");
        let name = obj.meta().name.clone().unwrap_or_default();
        self.api::<K>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {} {name}: {e}", K::kind(&())))
    }

    /// Reads an object, panicking with its kind and name if it is missing.
    pub async fn get<K>(&self, name: &str) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        self.api::<K>()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {} {name}: {e}", K::kind(&())))
    }

    /// Applies a JSON merge patch, as a user editing the object would.
    pub async fn merge_patch<K>(&self, name: &str, patch: serde_json::Value) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch {} {name}: {e}", K::kind(&())))
    }

    /// Lists objects of a kind in this namespace.
    pub async fn list<K>(&self) -> Vec<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        self.api::<K>()
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", K::kind(&())))
            .items
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // Best effort and non-blocking: the plane is throw-away, this only keeps a reused
        // plane tidy between runs.
        let _ = Command::new(bin_dir().join("kubectl"))
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .env("KUBECONFIG", &self.kubeconfig)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what` and the
/// last value seen.
pub async fn wait_for<T, S, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let start = Instant::now();
    let mut last;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => last = seen,
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the built kubectl against the local plane and returns its stdout; panics on failure.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    run_tool("kubectl", args, stdin)
}

/// Applies `manifest` server-side as a GitOps tool would (field manager `gitops`).
pub fn apply_as_gitops(manifest: &str) {
    kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=gitops",
            "-f",
            "-",
        ],
        Some(manifest),
    );
}

/// Runs the built helm against the test plane; panics with its stderr on failure.
pub fn helm(args: &[&str]) -> String {
    let (ok, out, err) = try_tool("helm", args, None);
    assert!(ok, "helm {args:?} failed: {err}");
    out
}

/// Runs a built tool (kubectl, helm) against the test plane, or against `kubeconfig`;
/// returns success, stdout and stderr without judging.
pub fn try_tool(tool: &str, args: &[&str], kubeconfig: Option<&Path>) -> (bool, String, String) {
    let out = Command::new(bin_dir().join(tool))
        .args(args)
        .env("KUBECONFIG", kubeconfig.unwrap_or(control_plane()))
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("kube-reloader-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("kube-reloader-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("kube-reloader-helm-data"),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn run_tool(tool: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(bin_dir().join(tool))
        .args(args)
        .env("KUBECONFIG", control_plane())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    let input = stdin.unwrap_or("").to_owned();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait for tool");
    writer.join().unwrap().expect("write tool stdin");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// How long tests wait for the operator to act.
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs the operator in this process, scoped to the test namespace, until dropped. Its
/// HTTP server (`/metrics`, `/ready` …) listens on `addr`.
pub struct Operator {
    handle: tokio::task::JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub addr: std::net::SocketAddr,
}

impl Operator {
    /// Sends the shutdown signal (as SIGTERM does) and waits for the operator to stop.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.handle).await.expect("operator task");
    }

    /// GETs a path of the operator's HTTP server; returns the status code and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// One sample of its `/metrics` (name and labels as exposed).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (code, body) = self.http_get("/metrics").await;
        assert_eq!(code, 200, "/metrics: {body}");
        sample(&body, series)
    }
}

/// A bare HTTP/1.0 GET; returns the status code and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_owned())
}

/// The value of one sample (`name{labels}` exactly as exposed) in a `/metrics` body.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub async fn start_operator(ns: &TestNs, extra: &[&str]) -> Operator {
    let scope = format!("--namespaces={}", ns.name);
    let args: Vec<&str> = std::iter::once(scope.as_str())
        .chain(extra.iter().copied())
        .collect();
    run_operator(&ns.client, &args).await
}

/// The operator in the test process with `client`'s identity and exactly `args`.
pub async fn start_operator_as(client: &Client, args: &[&str]) -> Operator {
    run_operator(client, args).await
}

/// The operator watching every namespace (for options that apply only in global mode).
pub async fn start_global_operator(ns: &TestNs, extra: &[&str]) -> Operator {
    run_operator(&ns.client, extra).await
}

async fn run_operator(client: &Client, extra: &[&str]) -> Operator {
    let args = ["kube-reloader", "--http-addr=127.0.0.1:0"];
    let cli = Cli::try_parse_from(args.iter().chain(extra)).expect("valid flags");
    let opts = Options::from_args(&cli.operator).expect("valid options");
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(Readiness::default());
    let metrics = Metrics::new(opts.metrics_by_namespace);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = http::serve_on(listener, ready_rx.clone(), metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator = kube_reloader::operator::run(client.clone(), opts, ready_tx, metrics, async {
        let _ = stop_rx.await;
    });
    let handle = tokio::spawn(async move {
        tokio::select! {
            () = operator => {}
            r = server => panic!("HTTP server stopped: {r:?}"),
        }
    });
    tokio::time::timeout(WAIT, ready_rx.wait_for(|r| r.warm))
        .await
        .expect("operator ready within 30s")
        .expect("operator running");
    Operator {
        handle,
        shutdown: Some(stop_tx),
        addr,
    }
}

/// The built binary run as a child process (killed when dropped), with the test plane's
/// kubeconfig. POD_NAME, POD_NAMESPACE and KUBERNETES_NAMESPACE are cleared unless given.
pub struct Binary {
    child: tokio::process::Child,
    pub log: PathBuf,
    pub addr: std::net::SocketAddr,
}

impl Binary {
    /// Starts it with `args` and `env` (in the child only); returns once `/ready` is 200.
    pub async fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut bin = Binary::start(name, args, env);
        bin.wait_ready().await;
        bin
    }

    /// Starts it with `args` and `env` (in the child only); returns at once.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{name}-{}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let file = std::fs::File::create(&log).expect("create the binary's log file");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-reloader"));
        cmd.args(args)
            .arg(format!("--http-addr={addr}"))
            .env("KUBECONFIG", control_plane())
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("KUBERNETES_NAMESPACE")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .kill_on_drop(true);
        Binary {
            child: cmd.spawn().expect("spawn kube-reloader"),
            log,
            addr,
        }
    }

    /// Waits until it serves `/ready` with 200, or for `/ready`'s answer to contain `want`
    /// with any status (`None`: 200 alone); returns the body.
    pub async fn wait_ready_body(&mut self, want: Option<&str>) -> String {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!("kube-reloader exited early ({status}):\n{}", self.log());
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let (code, body) = http_get(self.addr, "/ready").await;
                match want {
                    None if code == 200 => return body,
                    Some(w) if body.contains(w) => return body,
                    _ => last = format!("{code} {body}"),
                }
            }
            if start.elapsed() > WAIT {
                panic!(
                    "/ready not as wanted ({want:?}) within {WAIT:?}; last: {last}\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&mut self) {
        self.wait_ready_body(None).await;
    }

    /// Scoped to `ns` and keeping its state there, with no coalescing window, plus `extra`;
    /// `run` tells its log from other runs'.
    pub async fn in_namespace(
        ns: &TestNs,
        run: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Binary {
        let mut bin = Binary::start_in_namespace(ns, run, extra, env);
        bin.wait_ready().await;
        bin
    }

    /// As `in_namespace`, returning at once.
    pub fn start_in_namespace(
        ns: &TestNs,
        run: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Binary {
        let (scope, state) = (
            format!("--namespaces={}", ns.name),
            format!("--state-namespace={}", ns.name),
        );
        let args: Vec<&str> = [scope.as_str(), state.as_str(), "--coalesce-window=0s"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        Binary::start(&format!("{}-{run}", ns.name), &args, env)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// One sample of its `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.http_get("/metrics").await.1, series)
    }

    /// SIGTERM, then waits for the process to exit (drain, flush, lease release).
    pub async fn sigterm(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = tokio::time::timeout(WAIT, self.child.wait()).await;
        let status = status
            .expect("exit within 30s after SIGTERM")
            .expect("wait");
        assert!(status.success(), "exit status {status}:\n{}", self.log());
    }

    /// SIGKILL: no drain, no flush, no lease release.
    pub async fn sigkill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

/// A Deployment with no replicas, its annotations and pod spec.
pub fn deployment(
    name: &str,
    annotations: serde_json::Value,
    pod: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } }, "spec": pod }
        }
    })
}

/// An auto-annotated Deployment whose container `app` has `env` and `envFrom`.
pub fn auto_deployment(
    name: &str,
    env_from: serde_json::Value,
    env: serde_json::Value,
) -> serde_json::Value {
    let auto = serde_json::json!({ "reloader.stakater.com/auto": "true" });
    let pod = serde_json::json!({ "containers": [
        { "name": "app", "image": "x", "env": env, "envFrom": env_from }
    ]});
    deployment(name, auto, pod)
}

/// The value of env var `var` on `container` of a Deployment's template.
pub fn env_of(
    d: &k8s_openapi::api::apps::v1::Deployment,
    container: &str,
    var: &str,
) -> Option<String> {
    container_env(&d.spec.template.spec.as_ref()?.containers, container, var)
}

/// The value of env var `var` on the container named `container` among `containers`.
pub fn container_env(
    containers: &[k8s_openapi::api::core::v1::Container],
    container: &str,
    var: &str,
) -> Option<String> {
    let c = containers.iter().find(|c| c.name == container)?;
    c.env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .clone()
}

/// Stakater's hash of a ConfigMap whose only entry is `k: value` (the tests' configs).
pub fn cm_hash(value: &str) -> String {
    let data = std::collections::BTreeMap::from([("k".to_owned(), value.to_owned())]);
    kube_reloader::operator::model::hash::configmap_hash(Some(&data), None).to_string()
}

/// Stakater's hash of Secret data given as plain text.
pub fn secret_hash(pairs: &[(&str, &str)]) -> String {
    let raw: std::collections::BTreeMap<String, k8s_openapi::ByteString> = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                k8s_openapi::ByteString(v.as_bytes().to_vec()),
            )
        })
        .collect();
    kube_reloader::operator::model::hash::secret_hash(Some(&raw)).to_string()
}

/// The value of env var `var` on a Job's first container.
pub fn job_env(j: &k8s_openapi::api::batch::v1::Job, var: &str) -> Option<String> {
    j.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .clone()
}

/// Waits until the Job named like `old` exists with another uid; returns it.
pub async fn wait_job_recreated(
    ns: &TestNs,
    old: &k8s_openapi::api::batch::v1::Job,
) -> k8s_openapi::api::batch::v1::Job {
    let name = old.metadata.name.as_deref().expect("a named Job");
    wait_for(&format!("Job {name} re-created"), WAIT, || async {
        let api = ns.api::<k8s_openapi::api::batch::v1::Job>();
        match api.get_opt(name).await.expect("get the Job") {
            Some(j) if j.metadata.uid != old.metadata.uid => Ok(j),
            other => Err(other.and_then(|j| j.metadata.uid)),
        }
    })
    .await
}

/// Waits until container `app` of Deployment `name` has `var` = `want`; returns it.
pub async fn wait_env_value(
    ns: &TestNs,
    name: &str,
    var: &str,
    want: &str,
) -> k8s_openapi::api::apps::v1::Deployment {
    wait_for(&format!("{name}: {var}={want}"), WAIT, || async {
        let d = ns.get::<k8s_openapi::api::apps::v1::Deployment>(name).await;
        match env_of(&d, "app", var) {
            Some(v) if v == want => Ok(d),
            other => Err(other),
        }
    })
    .await
}

/// Waits until container `app` of Deployment `name` carries `var`; returns its value.
pub async fn wait_marker(ns: &TestNs, name: &str, var: &str) -> String {
    wait_for(&format!("{name}: {var}"), WAIT, || async {
        let d = ns.get::<k8s_openapi::api::apps::v1::Deployment>(name).await;
        env_of(&d, "app", var).ok_or("not yet")
    })
    .await
}

/// The hash that the annotations strategy recorded in the pod template's
/// `last-reloaded-from`.
pub fn recorded_hash(d: &k8s_openapi::api::apps::v1::Deployment) -> Option<String> {
    let ann = d.spec.template.metadata.as_ref()?.annotations.as_ref()?;
    let source = ann.get(kube_reloader::operator::model::annotations::LAST_RELOADED_FROM)?;
    let source: kube_reloader::operator::apply::markers::ReloadSource =
        serde_json::from_str(source).ok()?;
    Some(source.hash)
}

/// The notes of the Events with `reason` about `workload` in the test namespace.
pub async fn warnings(ns: &TestNs, workload: &str, reason: &str) -> Vec<String> {
    ns.list::<k8s_openapi::api::events::v1::Event>()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(workload))
        .map(|e| e.note.unwrap_or_default())
        .collect()
}

/// `envFrom` entries for ConfigMaps.
pub fn configmap_refs(names: &[&str]) -> serde_json::Value {
    names
        .iter()
        .map(|n| serde_json::json!({ "configMapRef": { "name": n } }))
        .collect()
}

/// A kubeconfig for the plane that authenticates with a token of ServiceAccount `sa` in `ns`.
pub fn service_account_kubeconfig(ns: &str, sa: &str) -> PathBuf {
    let jsonpath = |p: &str| {
        kubectl(
            &[
                "config",
                "view",
                "--raw",
                "--minify",
                "-o",
                &format!("jsonpath={p}"),
            ],
            None,
        )
    };
    let server = jsonpath("{.clusters[0].cluster.server}");
    let ca = jsonpath("{.clusters[0].cluster.certificate-authority-data}");
    let token = kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"], None);
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{ "name": "plane", "cluster": { "server": server, "certificate-authority-data": ca } }],
        "users": [{ "name": sa, "user": { "token": token.trim() } }],
        "contexts": [{ "name": "sa", "context": { "cluster": "plane", "user": sa } }],
        "current-context": "sa",
    });
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}-{sa}.kubeconfig"));
    std::fs::write(&path, config.to_string()).expect("write the kubeconfig");
    path
}

/// A TCP proxy in front of the API server that a test can cut (every connection dropped,
/// new ones refused) and restore. TLS passes through untouched.
pub struct CutProxy {
    pub addr: std::net::SocketAddr,
    kubeconfig: PathBuf,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CutProxy {
    /// A proxy to the test plane's API server.
    pub async fn to_api_server() -> CutProxy {
        Self::to(control_plane()).await
    }

    /// A proxy to the API server of the admin kubeconfig at `kubeconfig`.
    pub async fn to(kubeconfig: &Path) -> CutProxy {
        let text = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
        let target: std::net::SocketAddr = api_server_addr(&text).parse().expect("ip:port");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let p = CutProxy {
            addr: listener.local_addr().expect("local addr"),
            kubeconfig: kubeconfig.to_owned(),
            up: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            conns: std::sync::Arc::default(),
        };
        let (up, conns) = (p.up.clone(), p.conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        p
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The admin kubeconfig, pointed at this proxy.
    pub fn kubeconfig(&self) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read the kubeconfig");
        let path = std::env::temp_dir().join(format!(
            "kube-reloader-via-{}-{}.kubeconfig",
            std::process::id(),
            self.addr.port()
        ));
        let rewritten = text.replace(api_server_addr(&text), &self.addr.to_string());
        std::fs::write(&path, rewritten).expect("write the kubeconfig");
        path
    }
}

/// The `ip:port` of the kubeconfig's server.
/// The shared plane's API server as `host:port` (client-go's `host` label).
pub fn api_server_host() -> String {
    let text = std::fs::read_to_string(control_plane()).expect("read the kubeconfig");
    api_server_addr(&text).to_owned()
}

fn api_server_addr(kubeconfig: &str) -> &str {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server line in the kubeconfig")
        .trim()
}

/// A control plane of one test's own (etcd and kube-apiserver, no controllers) for faults
/// that would break the shared plane: restarting the API server, compacting etcd. Driven
/// through `hack/cluster` with `KUBE_RELOADER_CLUSTER_DIR`; stopped when dropped.
pub struct OwnPlane {
    dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl OwnPlane {
    pub async fn start(name: &str) -> OwnPlane {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("plane-{name}-{}", std::process::id()));
        let plane = OwnPlane {
            kubeconfig: dir.join("kubeconfig"),
            dir,
        };
        plane.cluster("up").await;
        plane
    }

    /// Stops the API server; clients see refused connections until it is started again.
    pub async fn stop_api_server(&self) {
        self.cluster("apiserver-stop").await;
    }

    /// Starts the API server again on the same port; returns once it is ready.
    pub async fn start_api_server(&self) {
        self.cluster("apiserver-start").await;
    }

    /// Compacts etcd at its current revision; returns that revision.
    pub async fn compact_etcd(&self) -> u64 {
        let out = self.cluster("compact").await;
        out.trim()
            .parse()
            .expect("hack/cluster compact prints the revision")
    }

    fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new(repo_root().join("hack/cluster"));
        c.arg(cmd)
            .env("KUBE_RELOADER_CLUSTER_DIR", &self.dir)
            .env("KUBE_RELOADER_CLUSTER_CONTROLLERS", "0");
        c
    }

    async fn cluster(&self, cmd: &str) -> String {
        let out = tokio::process::Command::from(self.command(cmd))
            .stderr(std::process::Stdio::inherit())
            .output()
            .await
            .expect("run hack/cluster");
        assert!(
            out.status.success(),
            "`hack/cluster {cmd}` failed ({}); see {}/*.log",
            out.status,
            self.dir.display()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for OwnPlane {
    fn drop(&mut self) {
        let _ = self.command("down").output();
        // Its logs are kept when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_file(self.dir.with_extension("lock"));
        }
    }
}

/// A cluster-scoped admission policy refusing `operation` on `group`/`resource` in one
/// namespace with the message "held by the test"; removed when dropped, also when the
/// test fails.
pub struct Refusal(String);

impl Refusal {
    pub fn apply(ns: &TestNs, group: &str, resource: &str, operation: &str) -> Refusal {
        Refusal::apply_unless(ns, group, resource, operation, "false")
    }

    /// Refusing only the requests for which the CEL expression `allowed` is false.
    pub fn apply_unless(
        ns: &TestNs,
        group: &str,
        resource: &str,
        operation: &str,
        allowed: &str,
    ) -> Refusal {
        let name = format!("hold-{resource}-{}", ns.name);
        let manifests = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": [
            { "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": { "name": name },
              "spec": { "failurePolicy": "Fail",
                "matchConstraints": { "resourceRules": [{ "apiGroups": [group], "apiVersions": ["v1"],
                    "operations": [operation], "resources": [resource] }] },
                "validations": [{ "expression": allowed, "message": "held by the test" }] } },
            { "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
              "metadata": { "name": name },
              "spec": { "policyName": name, "validationActions": ["Deny"],
                "matchResources": { "namespaceSelector": { "matchLabels": {
                    "kubernetes.io/metadata.name": ns.name } } } } }
        ]});
        kubectl(&["apply", "-f", "-"], Some(&manifests.to_string()));
        Refusal(name)
    }
}

impl Refusal {
    /// Every Job create in `ns` refused, once the policy is in force (a dry-run create
    /// is refused).
    pub async fn job_creates(ns: &TestNs) -> Refusal {
        let refusal = Refusal::apply(ns, "batch", "jobs", "CREATE");
        let probe: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "probe" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "m", "image": "x" }] } } }
        }))
        .unwrap();
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        wait_for("the policy in force", WAIT, || async {
            match ns.api().create(&dry_run, &probe).await {
                Err(kube::Error::Api(s)) if s.message.contains("held by the test") => Ok(()),
                other => Err(other.map(|_| ()).map_err(|e| e.to_string())),
            }
        })
        .await;
        refusal
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        let kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy";
        let args = ["delete", kinds, &self.0, "--ignore-not-found"];
        let (ok, _, err) = try_tool("kubectl", &args, None);
        assert!(ok || std::thread::panicking(), "kubectl {args:?}: {err}");
    }
}
