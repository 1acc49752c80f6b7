//! Helpers for the in-pod tests (the binary itself runs through `support::Binary::in_pod`):
//! temp directories, waits on its `/healthz` and `/metrics`, and a shell that records the
//! signals it gets.

use std::path::{Path, PathBuf};

use crate::support::{self, Binary, WAIT, until};

/// A fresh directory under the system temp dir, not the target dir: the target dir may sit
/// under a home only root can enter (`/root/.cache/...` in CI), and one test runs as nobody.
pub fn tmpdir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join("kube-reloader-inpod-tests")
        .join(support::unique(prefix));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// Waits for `/healthz` to answer `code`.
pub async fn healthz_is(p: &Binary, code: u16) {
    let what = format!("/healthz {code}");
    support::wait_for(&what, WAIT, || async {
        if tokio::net::TcpStream::connect(p.addr()).await.is_err() {
            return Err((0, "not listening yet".into()));
        }
        let got = p.http_get("/healthz").await;
        if got.0 == code { Ok(()) } else { Err(got) }
    })
    .await
}

/// Waits for a sample of `/metrics` to reach `value`.
pub async fn metric_reaches(p: &Binary, series: &str, value: f64) {
    support::wait_for(series, WAIT, || async {
        let got = p.metric(series).await;
        if got >= Some(value) { Ok(()) } else { Err(got) }
    })
    .await
}

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
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
