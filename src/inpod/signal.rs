//! Signalling the app: signal names, finding the process (a pid file, a process name or a
//! known child) and kill(2) with errors that say what to fix.

use std::path::{Path, PathBuf};

use nix::{
    errno::Errno,
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// `HUP`, `SIGHUP`, `sighup` or `1`.
pub fn parse(s: &str) -> Result<Signal, String> {
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
    parsed.ok_or_else(|| format!("{s:?} is not a signal name such as HUP, SIGUSR1 or 1"))
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
    fn resolve(&self) -> Result<i32, String> {
        match self {
            Target::Pid(pid) => Ok(*pid),
            Target::PidFile(path) => read_pid_file(path),
            Target::ProcessName(name) => super::procs::find(name)?.ok_or_else(|| {
                format!(
                    "no process named {name:?} (is shareProcessNamespace: true set on the pod, and has the app started?)"
                )
            }),
        }
    }
}

fn read_pid_file(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the pid file {}: {e}", path.display()))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            format!(
                "the pid file {} holds {:?}, not a process id",
                path.display(),
                text.trim()
            )
        })
}

/// Sends `sig` to the target.
pub fn send(target: &Target, sig: Signal) -> Result<i32, String> {
    let pid = target.resolve()?;
    kill(Pid::from_raw(pid), sig).map_err(|e| explain(e, pid, sig))?;
    Ok(pid)
}

fn explain(e: Errno, pid: i32, sig: Signal) -> String {
    match e {
        Errno::ESRCH => format!(
            "cannot send {sig} to process {pid}: no such process (stale pid file, or the pod lacks shareProcessNamespace: true)"
        ),
        Errno::EPERM => format!(
            "cannot send {sig} to process {pid}: not permitted (run kube-reloader as the app's user, or add the KILL capability)"
        ),
        e => format!("cannot send {sig} to process {pid}: {e}"),
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
            let e = parse(bad).unwrap_err();
            assert!(e.contains("not a signal name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = explain(Errno::EPERM, 7, Signal::SIGHUP);
        assert!(
            e.contains("not permitted") && e.contains("KILL capability"),
            "{e}"
        );
        let e = explain(Errno::ESRCH, 7, Signal::SIGHUP);
        assert!(e.contains("shareProcessNamespace"), "{e}");
    }

    #[test]
    fn pid_files() {
        let dir = std::env::temp_dir();
        let p = dir.join(format!("kr-pid-{}", std::process::id()));
        std::fs::write(&p, "123\n").unwrap();
        assert_eq!(read_pid_file(&p), Ok(123));
        std::fs::write(&p, "nginx").unwrap();
        let e = read_pid_file(&p).unwrap_err();
        assert!(e.contains("not a process id"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let e = read_pid_file(&p).unwrap_err();
        assert!(e.contains("cannot read the pid file"), "{e}");
    }
}
