//! The operator under test as a child process: started with stakater's flags (plus ours
//! when it is kube-reloader), readiness, and its RSS, peak RSS and CPU time from /proc.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
};

use crate::cluster::Result;

pub struct Operator {
    child: Child,
    pub pid: u32,
    addr: SocketAddr,
    pub started: Instant,
}

pub struct Launch<'a> {
    pub binary: &'a Path,
    pub kubeconfig: &'a Path,
    pub namespace: &'a str,
    /// Flags only kube-reloader understands; dropped for another reloader.
    pub ours: &'a [&'a str],
    pub is_ours: bool,
    pub log: PathBuf,
}

impl Operator {
    pub async fn start(l: Launch<'_>) -> Result<Operator> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| e.to_string())?;
        let mut args = vec![
            format!("--namespaces={}", l.namespace),
            format!("--http-addr={addr}"),
        ];
        if l.is_ours {
            args.extend(l.ours.iter().map(|s| s.to_string()));
        }
        let log = std::fs::File::create(&l.log).map_err(|e| e.to_string())?;
        let child = Command::new(l.binary)
            .args(&args)
            .env("KUBECONFIG", l.kubeconfig)
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {}: {e}", l.binary.display()))?;
        let pid = child.id().ok_or("the operator exited at once")?;
        Ok(Operator {
            child,
            pid,
            addr,
            started: Instant::now(),
        })
    }

    /// Waits for `/ready` 200 (kube-reloader) or, for another reloader, `/metrics`.
    pub async fn wait_ready(&mut self, is_ours: bool, timeout: Duration) -> Result<Duration> {
        let path = if is_ours { "/ready" } else { "/metrics" };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the operator exited ({status}); see its log"));
            }
            if get_status(self.addr, path).await == Some(200) {
                return Ok(self.started.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| e.to_string())?;
        s.lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| format!("no {field} in /proc/{}/status", self.pid))
    }

    pub fn rss_mib(&self) -> Result<f64> {
        Ok(self.status_kib("VmRSS:")? as f64 / 1024.0)
    }

    /// The high-water mark of RSS since start: the peak during the initial list.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        Ok(self.status_kib("VmHWM:")? as f64 / 1024.0)
    }

    /// User plus system CPU seconds so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map_err(|e| e.to_string())?;
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let rest = s
            .rsplit_once(") ")
            .map(|(_, r)| r)
            .ok_or("bad /proc stat")?;
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().map_err(|e| e.to_string())?
            + f[12].parse::<f64>().map_err(|e| e.to_string())?;
        Ok(ticks / clock_ticks())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut head = vec![0u8; 64];
    let n = s.read(&mut head).await.ok()?;
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split(' ').nth(1)?.parse().ok()
}
