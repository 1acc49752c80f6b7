//! Signalling the app: signal names, finding the process (a pid file, a process name or a
//! known child) and kill(2) with errors that say what to fix.

use std::path::{Path, PathBuf};

use nix::{
    errno::Errno,
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// A `--signal` value that is no signal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a signal name such as HUP, SIGUSR1 or 1")]
pub struct SignalNameError {
    pub given: String,
}

/// Why a signal could not be sent: the process was not found, or kill(2) refused.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot read the pid file {}: {source}", .path.display())]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the pid file {} holds {text:?}, not a process id", .path.display())]
    NotAPid { path: PathBuf, text: String },
    #[error(
        "no process named {name:?} (is shareProcessNamespace: true set on the pod, and has the app started?)"
    )]
    NoProcess { name: String },
    #[error("cannot read /proc: {0}")]
    Proc(#[source] std::io::Error),
    #[error(
        "cannot send {sig} to process {pid}: no such process (stale pid file, or the pod lacks shareProcessNamespace: true)"
    )]
    NoSuchProcess { sig: Signal, pid: i32 },
    #[error(
        "cannot send {sig} to process {pid}: not permitted (run kube-reloader as the app's user, or add the KILL capability)"
    )]
    NotPermitted { sig: Signal, pid: i32 },
    #[error("cannot send {sig} to process {pid}: {errno}")]
    Kill { sig: Signal, pid: i32, errno: Errno },
}

/// `HUP`, `SIGHUP`, `sighup` or `1`.
pub fn parse(s: &str) -> Result<Signal, SignalNameError> {
    let upper = s.trim().to_ascii_uppercase();
    let parsed = match upper.parse::<i32>() {
        Ok(n) => Signal::try_from(n).ok(),
        Err(_) => {
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            name.parse::<Signal>().ok()
        }
    };
    parsed.ok_or_else(|| SignalNameError {
        given: s.to_owned(),
    })
}

/// Which process to signal.
#[derive(Clone, Debug)]
pub enum Target {
    PidFile(PathBuf),
    ProcessName(String),
    /// A child the supervisor started.
    Pid(i32),
}

impl Target {
    fn resolve(&self) -> Result<i32, SignalError> {
        match self {
            Target::Pid(pid) => Ok(*pid),
            Target::PidFile(path) => read_pid_file(path),
            Target::ProcessName(name) => super::procs::find(name)
                .map_err(SignalError::Proc)?
                .ok_or_else(|| SignalError::NoProcess { name: name.clone() }),
        }
    }
}

fn read_pid_file(path: &Path) -> Result<i32, SignalError> {
    let text = std::fs::read_to_string(path).map_err(|source| SignalError::PidFile {
        path: path.to_owned(),
        source,
    })?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| SignalError::NotAPid {
            path: path.to_owned(),
            text: text.trim().to_owned(),
        })
}

/// Sends `sig` to the target.
pub fn send(target: &Target, sig: Signal) -> Result<i32, SignalError> {
    let pid = target.resolve()?;
    kill(Pid::from_raw(pid), sig).map_err(|e| explain(e, pid, sig))?;
    Ok(pid)
}

fn explain(errno: Errno, pid: i32, sig: Signal) -> SignalError {
    match errno {
        Errno::ESRCH => SignalError::NoSuchProcess { sig, pid },
        Errno::EPERM => SignalError::NotPermitted { sig, pid },
        errno => SignalError::Kill { sig, pid, errno },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        for s in ["HUP", "SIGHUP", "sighup", " hup ", "1"] {
            assert_eq!(parse(s), Ok(Signal::SIGHUP), "{s:?}");
        }
        assert_eq!(parse("usr2"), Ok(Signal::SIGUSR2));
        assert_eq!(parse("SIGUSR1"), Ok(Signal::SIGUSR1));
        for bad in ["", "SIG", "HUPP", "0", "999", "-1"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a signal name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = explain(Errno::EPERM, 7, Signal::SIGHUP).to_string();
        assert!(
            e.contains("not permitted") && e.contains("KILL capability"),
            "{e}"
        );
        let e = explain(Errno::ESRCH, 7, Signal::SIGHUP).to_string();
        assert!(e.contains("shareProcessNamespace"), "{e}");
    }

    #[test]
    fn pid_files() {
        let dir = std::env::temp_dir();
        let p = dir.join(format!("kr-pid-{}", std::process::id()));
        std::fs::write(&p, "123\n").unwrap();
        assert_eq!(read_pid_file(&p).ok(), Some(123));
        std::fs::write(&p, "nginx").unwrap();
        let e = read_pid_file(&p).unwrap_err();
        assert!(matches!(e, SignalError::NotAPid { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("not a process id"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let e = read_pid_file(&p).unwrap_err().to_string();
        assert!(e.contains("cannot read the pid file"), "{e}");
    }
}
