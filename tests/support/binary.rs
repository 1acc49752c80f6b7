//! The built kube-reloader binary as a child process (killed when dropped), its output in
//! a log file: the operator, scoped as a test needs, with its HTTP server on a free port;
//! or an in-pod mode with exactly the arguments a test gives. Its `/ready`, `/metrics`,
//! signals and exit.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant},
};

use super::{
    http::{free_addr, http_get, sample},
    ns::{TestNs, unique},
    plane::control_plane,
    wait::WAIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_kube-reloader");

/// Variables that would change what the binary does (its mode, namespace or identity),
/// cleared in the child unless a test sets them.
const CLEARED: &[&str] = &[
    "POD_NAME",
    "POD_NAMESPACE",
    "KUBERNETES_NAMESPACE",
    "RELOADER_CONFIGMAP",
    "RELOADER_SECRET",
    "RELOADER_NAMESPACE",
    "RELOADER_PATH",
    "RELOADER_ENDPOINT",
    "RELOADER_TOUCHFILE",
    "RELOADER_PIDFILE",
    "RELOADER_SIGNAL",
    "RELOADER_INIT",
    "CONFIG_DIR",
    "PROCESS_NAME",
    "RELOAD_SIGNAL",
    "VERBOSE",
    "LABEL",
    "LABEL_VALUE",
    "FOLDER",
    "NAMESPACE",
    "RESOURCE",
    "METHOD",
    "REQ_URL",
    "HEALTH_PORT",
];

/// The built binary run as a child process (killed when dropped), with the test plane's
/// kubeconfig unless told otherwise; the variables in `CLEARED` are unset unless given.
pub struct Binary {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    /// Where its HTTP server listens; `None` for an in-pod run without `--http-addr`.
    addr: Option<SocketAddr>,
}

/// What to run: `program` with `pre` before the binary's own `args`.
struct Launch<'a> {
    /// Names the log file.
    name: &'a str,
    program: &'a str,
    pre: &'a [&'a str],
    args: &'a [String],
    env: &'a [(&'a str, &'a str)],
    kubeconfig: &'a Path,
    addr: Option<SocketAddr>,
}

impl Binary {
    /// The operator with `args` and `env` (in the child only); returns once `/ready` is 200.
    pub async fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut bin = Binary::start(name, args, env);
        bin.ready().await;
        bin
    }

    /// The operator with `args` and `env` (in the child only); returns at once.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let addr = free_addr();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string())
            .chain([format!("--http-addr={addr}")])
            .collect();
        Binary::launch(Launch {
            name,
            program: BIN,
            pre: &[],
            args: &args,
            env,
            kubeconfig: control_plane(),
            addr: Some(addr),
        })
    }

    /// The operator scoped to `ns` and keeping its state there, with no coalescing window,
    /// plus `extra`; `run` tells its log from other runs'. Returns once ready.
    pub async fn in_namespace(
        ns: &TestNs,
        run: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Binary {
        let mut bin = Binary::start_in_namespace(ns, run, extra, env);
        bin.ready().await;
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

    /// An `--enable-ha` replica named `id` (its POD_NAME) as `in_namespace` runs it, with a
    /// lease of 3 s (renew deadline 2 s, retries every 500 ms), plus `extra`.
    pub async fn ha_replica(ns: &TestNs, id: &str, extra: &[&str]) -> Binary {
        let args: Vec<&str> = [
            "--enable-ha",
            "--leader-election-lease-duration=3s",
            "--leader-election-renew-deadline=2s",
            "--leader-election-retry-period=500ms",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
        let env = [("POD_NAME", id), ("POD_NAMESPACE", ns.name.as_str())];
        Binary::in_namespace(ns, id, &args, &env).await
    }

    /// An in-pod run with exactly `args`; `addr` is what the test passed as `--http-addr`,
    /// if any. Returns at once.
    pub fn in_pod(args: &[String], env: &[(&str, &str)], addr: Option<SocketAddr>) -> Binary {
        Binary::in_pod_as(args, env, addr, control_plane())
    }

    /// `in_pod` with the kubeconfig at `kubeconfig`.
    pub fn in_pod_as(
        args: &[String],
        env: &[(&str, &str)],
        addr: Option<SocketAddr>,
        kubeconfig: &Path,
    ) -> Binary {
        Binary::launch(Launch {
            name: "inpod",
            program: BIN,
            pre: &[],
            args,
            env,
            kubeconfig,
            addr,
        })
    }

    /// `in_pod` as the user `nobody` (through setpriv; the test process must be root).
    pub fn in_pod_as_nobody(args: &[String], addr: Option<SocketAddr>) -> Binary {
        // /proc/PID belongs to the process's effective user.
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(uid, 0, "running a process as nobody needs root");
        Binary::launch(Launch {
            name: "inpod",
            program: "setpriv",
            pre: &["--reuid=65534", "--regid=65534", "--clear-groups", BIN],
            args,
            env: &[],
            kubeconfig: control_plane(),
            addr,
        })
    }

    fn launch(l: Launch<'_>) -> Binary {
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique(l.name)));
        let file = std::fs::File::create(&log).expect("create the binary's log file");
        let mut cmd = tokio::process::Command::new(l.program);
        cmd.args(l.pre).args(l.args).env("KUBECONFIG", l.kubeconfig);
        for v in CLEARED {
            cmd.env_remove(v);
        }
        cmd.envs(l.env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", l.program));
        Binary {
            child,
            log,
            addr: l.addr,
        }
    }

    /// Where its HTTP server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("started with --http-addr")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.addr(), path).await
    }

    /// One sample of its `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.http_get("/metrics").await.1, series)
    }

    /// Waits until it serves `/ready` with 200, or for `/ready`'s answer to contain `want`
    /// with any status (`None`: 200 alone); returns the body. Panics, with its log, if it
    /// exits first.
    pub async fn wait_ready_body(&mut self, want: Option<&str>) -> String {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!("kube-reloader exited early ({status}):\n{}", self.log());
            }
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                let (code, body) = self.http_get("/ready").await;
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `/ready` to answer 200 (caches warm, or in-pod: the config in place).
    pub async fn ready(&mut self) {
        self.wait_ready_body(None).await;
    }

    /// Sends `sig` (a name such as `TERM`).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
    }

    /// Waits for it to exit by itself.
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("still running after {within:?}:\n{}", self.log()),
        }
    }

    /// SIGTERM, then waits for the process to exit successfully (drain, flush, lease
    /// release).
    pub async fn sigterm(mut self) {
        self.signal("TERM");
        let status = self.exit(WAIT).await;
        assert!(status.success(), "exit status {status}:\n{}", self.log());
    }

    /// SIGKILL: no drain, no flush, no lease release.
    pub async fn sigkill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}
