//! Helpers for the in-pod tests: the real binary as a child process, temp directories, a
//! local HTTP receiver with scripted statuses, and a shell that records the signals it gets.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use crate::support::{self, WAIT};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory under the system temp dir, not the target dir: the target dir may sit
/// under a home only root can enter (`/root/.cache/...` in CI), and one test runs as nobody.
pub fn tmpdir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join("kube-reloader-inpod-tests")
        .join(unique(prefix));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Variables that would change the mode or the namespace, cleared unless a test sets them.
const MODE_VARS: &[&str] = &[
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
];

/// The kube-reloader binary run with `args` (killed when dropped).
pub struct InPod {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    /// Where its HTTP server listens, when the test gave `--http-addr`.
    pub addr: Option<SocketAddr>,
}

impl InPod {
    /// Starts it; `addr` is what the test passed as `--http-addr`, if any. `kubeconfig`
    /// defaults to the admin's.
    pub fn start(args: &[String], env: &[(&str, &str)], addr: Option<SocketAddr>) -> InPod {
        Self::start_as(args, env, addr, support::control_plane())
    }

    pub fn start_as(
        args: &[String],
        env: &[(&str, &str)],
        addr: Option<SocketAddr>,
        kubeconfig: &Path,
    ) -> InPod {
        let bin = env!("CARGO_BIN_EXE_kube-reloader");
        Self::spawn(bin, &[], args, env, addr, kubeconfig)
    }

    /// Runs it as the user `nobody` (through setpriv; the test process must be root).
    pub fn start_as_nobody(args: &[String], addr: Option<SocketAddr>) -> InPod {
        // A directory just made is owned by the effective user.
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(tmpdir("uid")).unwrap());
        assert_eq!(uid, 0, "running a process as nobody needs root");
        let setpriv = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_kube-reloader"),
        ];
        Self::spawn(
            "setpriv",
            &setpriv,
            args,
            &[],
            addr,
            support::control_plane(),
        )
    }

    fn spawn(
        program: &str,
        pre: &[&str],
        args: &[String],
        env: &[(&str, &str)],
        addr: Option<SocketAddr>,
        kubeconfig: &Path,
    ) -> InPod {
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique("inpod")));
        let file = std::fs::File::create(&log).expect("create the log file");
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(pre).args(args).env("KUBECONFIG", kubeconfig);
        for v in MODE_VARS {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        InPod { child, log, addr }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        support::http_get(self.addr.expect("started with --http-addr"), path).await
    }

    /// Waits for `/ready` to answer 200 (the config is in place).
    pub async fn ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!("kube-reloader exited early ({status}):\n{}", self.log());
            }
            let addr = self.addr.expect("started with --http-addr");
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && self.get("/ready").await.0 == 200
            {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "not ready within {WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One sample of its `/metrics`.
    pub async fn metric(&self, series: &str) -> f64 {
        let body = self.get("/metrics").await.1;
        support::sample(&body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
    }

    /// Waits for it to exit by itself.
    pub async fn exit(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("still running after {within:?}:\n{}", self.log()),
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
    }
}

/// Polls `check` every 50 ms until it holds, or panics after `WAIT` with `what`.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `/healthz` to answer `code`.
pub async fn healthz_is(p: &InPod, code: u16) {
    let what = format!("/healthz {code}");
    support::wait_for(&what, WAIT, || async {
        let addr = p.addr.expect("started with --http-addr");
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return Err((0, "not listening yet".into()));
        }
        let got = p.get("/healthz").await;
        if got.0 == code { Ok(()) } else { Err(got) }
    })
    .await
}

/// Waits for a sample of `/metrics` to reach `value`.
pub async fn metric_reaches(p: &InPod, series: &str, value: f64) {
    support::wait_for(series, WAIT, || async {
        let got = p.metric(series).await;
        if got >= value { Ok(()) } else { Err(got) }
    })
    .await
}

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A local HTTP server answering each request with the next scripted status (the last
/// one repeats); records `METHOD PATH` of each request.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub statuses: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Receiver {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let r = Receiver {
            addr: listener.local_addr().expect("addr"),
            requests: Arc::default(),
            statuses: Arc::new(Mutex::new(statuses.to_vec())),
        };
        let rec = r.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let line = head.lines().next().unwrap_or_default();
                let req: Vec<&str> = line.split(' ').take(2).collect();
                rec.requests.lock().unwrap().push(req.join(" "));
                let status = {
                    let mut s = rec.statuses.lock().unwrap();
                    if s.len() > 1 { s.remove(0) } else { s[0] }
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            }
        });
        r
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn set(&self, statuses: &[u16]) {
        *self.statuses.lock().unwrap() = statuses.to_vec();
    }
}

/// A shell that appends a line to its log for each `signal` it receives, and writes its
/// pid to a file. With `name`, the shell binary is copied under that name first, so the
/// process's name (comm) is `name`.
pub struct Recorder {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

impl Recorder {
    pub async fn start(signal: &str, name: Option<&str>) -> Recorder {
        let dir = tmpdir("recorder");
        let log = dir.join("signals");
        let pid_file = dir.join("pid");
        let shell = match name {
            Some(n) => {
                let p = dir.join(n);
                std::fs::copy("/bin/sh", &p).expect("copy /bin/sh");
                p
            }
            None => PathBuf::from("/bin/sh"),
        };
        let script = format!(
            "trap 'echo {signal} >> {log}' {signal}; echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; while :; do sleep 0.05; done",
            log = log.display(),
            pid = pid_file.display()
        );
        let child = tokio::process::Command::new(shell)
            .args(["-c", &script])
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the recorder");
        let r = Recorder {
            child,
            log,
            pid_file,
        };
        until("the recorder's pid file", || r.pid_file.exists()).await;
        r
    }

    /// How many signals it has recorded.
    pub fn count(&self) -> usize {
        read(&self.log).map_or(0, |s| s.lines().count())
    }
}
