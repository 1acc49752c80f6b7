//! Finding the app by name in /proc (the pod's shared process namespace).

/// One process as /proc shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// The executable's name, truncated by the kernel to 15 bytes.
    pub comm: String,
    /// argv[0].
    pub argv0: String,
}

/// Whether `p` is called `name`: its comm (compared as the kernel truncates it), or the
/// base name of argv[0].
fn is_named(p: &Proc, name: &str) -> bool {
    let truncated = &name.as_bytes()[..name.len().min(15)];
    p.comm.as_bytes() == truncated || p.argv0.rsplit('/').next() == Some(name)
}

/// The process to signal among `procs`: of those named `name`, the ones whose parent is not
/// (nginx's master, not its workers; not a forked copy of the app), the lowest pid first.
pub fn pick(procs: &[Proc], name: &str, own_pid: i32) -> Option<i32> {
    let named: Vec<&Proc> = procs
        .iter()
        .filter(|p| p.pid != own_pid && is_named(p, name))
        .collect();
    named
        .iter()
        .filter(|p| !named.iter().any(|q| q.pid == p.ppid))
        .map(|p| p.pid)
        .min()
}

/// Reads /proc/PID/stat (ppid, comm) and cmdline; `None` for a process gone meanwhile.
fn read(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?;
    if state == "Z" {
        return None; // a zombie cannot act on a signal
    }
    let ppid = rest.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    Some(Proc {
        pid,
        ppid,
        comm,
        argv0: String::from_utf8_lossy(argv0).into_owned(),
    })
}

/// The pid of the process called `name`, if one runs; an error when /proc cannot be read.
pub fn find(name: &str) -> std::io::Result<Option<i32>> {
    let entries = std::fs::read_dir("/proc")?;
    let procs: Vec<Proc> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read)
        .collect();
    Ok(pick(&procs, name, std::process::id() as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, comm: &str, argv0: &str) -> Proc {
        Proc {
            pid,
            ppid,
            comm: comm.into(),
            argv0: argv0.into(),
        }
    }

    #[test]
    fn picks_the_master_not_the_workers() {
        let procs = [
            p(1, 0, "pause", "/pause"),
            p(7, 1, "nginx", "nginx: master process nginx -g daemon off;"),
            p(30, 7, "nginx", "nginx: worker process"),
            p(31, 7, "nginx", "nginx: worker process"),
            p(40, 1, "kube-reloader", "/kube-reloader"),
        ];
        assert_eq!(pick(&procs, "nginx", 40), Some(7));
        assert_eq!(pick(&procs, "redis", 40), None);
        assert_eq!(pick(&procs, "kube-reloader", 40), None, "never itself");
        // After pid wrap-around a worker may have a lower pid than its master.
        let wrapped = [
            p(500, 1, "nginx", "nginx: master process"),
            p(30, 500, "nginx", "nginx: worker process"),
        ];
        assert_eq!(pick(&wrapped, "nginx", 0), Some(500));
    }

    #[test]
    fn names_match_comm_truncated_or_argv0() {
        let procs = [p(9, 1, "prometheus-conf", "/bin/prometheus-config-x")];
        assert_eq!(pick(&procs, "prometheus-config-x", 0), Some(9));
        assert_eq!(pick(&procs, "prometheus-conf", 0), Some(9));
        let procs = [p(9, 1, "python3", "/usr/local/bin/gunicorn")];
        assert_eq!(pick(&procs, "gunicorn", 0), Some(9));
        assert_eq!(pick(&procs, "unicorn", 0), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let proc = read(me).unwrap();
        assert_eq!(proc.pid, me);
        assert!(proc.ppid > 0);
        assert!(!proc.comm.is_empty());
    }
}
