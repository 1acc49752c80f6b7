//! The reloader under test as a child process: started the same way for every binary
//! (scoped by KUBERNETES_NAMESPACE, POD_NAMESPACE set as a chart sets it, the plane's
//! operator identity), plus kube-reloader's own flags only when it is ours; its RSS, peak
//! RSS and CPU time from /proc.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Instant,
};

use tokio::process::{Child, Command};

use crate::cluster::Result;

/// A binary to measure. Ours takes `--http-addr` and the scenario's flags; any other is
/// started with no flag at all, as stakater/Reloader rejects flags it does not know, and
/// serves its metrics where it always does (`--operator-metrics`).
#[derive(Clone)]
pub struct Subject {
    /// Its column in the results: "kube-reloader", or the other binary's file name.
    pub label: String,
    /// A short name for namespaces and log files: "ours" or "other".
    pub slug: &'static str,
    pub binary: PathBuf,
    pub ours: bool,
    /// Where another binary serves /metrics (stakater: :9090, always).
    pub metrics: SocketAddr,
}

pub struct Operator {
    child: Child,
    pub pid: u32,
    pub started: Instant,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `subject` watching `namespace`; `flags` are passed only to ours.
    pub async fn start(
        subject: &Subject,
        kubeconfig: &Path,
        namespace: &str,
        flags: &[&str],
        log: PathBuf,
    ) -> Result<Operator> {
        let mut args = Vec::new();
        if subject.ours {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map_err(|e| e.to_string())?;
            args.push(format!("--http-addr={addr}"));
            args.extend(flags.iter().map(|s| s.to_string()));
        } else if std::net::TcpListener::bind(subject.metrics).is_err() {
            return Err(format!(
                "{} serves its metrics on {}, which is taken; free it or pass --operator-metrics",
                subject.label, subject.metrics
            ));
        }
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(&subject.binary)
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBERNETES_NAMESPACE", namespace)
            // As the charts set it: the operator's own namespace (kube-reloader keeps its
            // persisted state there).
            .env("POD_NAMESPACE", namespace)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start {}: {e}", subject.binary.display()))?;
        let pid = child.id().ok_or("the operator exited at once")?;
        Ok(Operator {
            child,
            pid,
            started: Instant::now(),
            log,
        })
    }

    /// An error naming the exit status and the log, if the operator has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "the operator exited ({status}); see {}",
                self.log.display()
            )),
            _ => Ok(()),
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

    /// CPU time so far, in two readings: `/proc/PID/stat`'s utime + stime (every thread
    /// that ever ran, in whole clock ticks of 10 ms) and the sum of the live threads'
    /// `schedstat` run times (nanoseconds, but a thread that exited takes its time along).
    pub fn cpu(&self) -> Result<Cpu> {
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
        let mut threads_ns = 0u64;
        let tasks =
            std::fs::read_dir(format!("/proc/{}/task", self.pid)).map_err(|e| e.to_string())?;
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            threads_ns += stat
                .split(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(Cpu {
            ticks_s: ticks / clock_ticks(),
            threads_s: threads_ns as f64 / 1e9,
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Two readings of a process's CPU time (see [`Operator::cpu`]).
#[derive(Clone, Copy)]
pub struct Cpu {
    ticks_s: f64,
    threads_s: f64,
}

impl Cpu {
    /// CPU seconds from `self` to `later`: the larger of the two readings' differences.
    /// Each can only under-count (ticks are truncated; an exited thread's time is lost
    /// from the sum), so the larger is the closer.
    pub fn since(self, later: Cpu) -> f64 {
        (later.ticks_s - self.ticks_s).max(later.threads_s - self.threads_s)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_takes_the_larger_reading() {
        let a = Cpu {
            ticks_s: 1.00,
            threads_s: 0.900,
        };
        let fine = Cpu {
            ticks_s: 1.00,
            threads_s: 0.915,
        };
        assert!((a.since(fine) - 0.015).abs() < 1e-9, "ticks truncated");
        let exited = Cpu {
            ticks_s: 1.50,
            threads_s: 0.950,
        };
        assert!((a.since(exited) - 0.5).abs() < 1e-9, "a thread's time lost");
    }
}
