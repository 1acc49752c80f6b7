//! The control planes tests run against: the shared one (`hack/cluster up`, once per test
//! process), one of a test's own (`OwnPlane`), clients and kubeconfigs for them, and the
//! built kubectl and helm run against them.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

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

/// The shared plane's API server as `host:port` (client-go's `host` label).
pub fn api_server_host() -> String {
    let text = std::fs::read_to_string(control_plane()).expect("read the kubeconfig");
    api_server_addr(&text).to_owned()
}

/// The `ip:port` of the kubeconfig's server.
pub fn api_server_addr(kubeconfig: &str) -> &str {
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
