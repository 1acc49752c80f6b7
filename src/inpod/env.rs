//! Configuration by environment variables, so pod specs written for Pod Reloader
//! (morecontainers/reloader, `RELOADER_*`), for config-reloader-sidecar (`CONFIG_DIR`,
//! `PROCESS_NAME`, `RELOAD_SIGNAL`) and for kiwigrid k8s-sidecar (`LABEL`, `FOLDER`, …,
//! `k8s_sidecar.rs`) run our image unchanged. The image's entrypoint has no arguments, so
//! when no subcommand is given these variables pick the mode:
//!
//! - `RELOADER_CONFIGMAP`, `RELOADER_SECRET` or `RELOADER_INIT` set: `sidecar`, or `init`
//!   when `RELOADER_INIT` is non-empty (any value, even `0`, as Pod Reloader reads it);
//! - else `CONFIG_DIR` set: `watch-dir`;
//! - else `LABEL` and `FOLDER` set: `collect`;
//! - else the operator.
//!
//! The variables become flags, so they are validated exactly as flags are; arguments given
//! on the command line follow them (and win, a repeated flag taking its last value).

/// The subcommand and flags the environment asks for; `None`: run the operator.
pub fn args_from_env(get: impl Fn(&str) -> Option<String>) -> Option<Result<Vec<String>, String>> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let pod_reloader = ["RELOADER_CONFIGMAP", "RELOADER_SECRET", "RELOADER_INIT"];
    if pod_reloader.iter().any(|k| var(k).is_some()) {
        return Some(pod_reloader_args(&var));
    }
    if let Some(dir) = var("CONFIG_DIR") {
        return Some(config_reloader_args(&dir, &var));
    }
    match (var("LABEL"), var("FOLDER")) {
        (Some(label), Some(folder)) => Some(super::k8s_sidecar::args(&label, &folder, &var)),
        _ => None,
    }
}

fn list(flag: &str, value: Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| format!("--{flag}={s}"))
        .collect()
}

/// Pod Reloader: one of ENDPOINT (POST), PIDFILE (with RELOADER_SIGNAL, default SIGUSR2)
/// or TOUCHFILE, in that order of precedence.
fn pod_reloader_args(var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let mode = if var("RELOADER_INIT").is_some() {
        "init"
    } else {
        "sidecar"
    };
    let mut args = vec![mode.to_owned()];
    args.extend(list("configmap", var("RELOADER_CONFIGMAP")));
    args.extend(list("secret", var("RELOADER_SECRET")));
    if let Some(ns) = var("RELOADER_NAMESPACE") {
        args.push(format!("--namespace={ns}"));
    }
    let dir = var("RELOADER_PATH").ok_or("RELOADER_PATH (the directory to write to) is not set")?;
    args.push(format!("--dir={dir}"));
    if let Some(url) = var("RELOADER_ENDPOINT") {
        args.push(format!("--reload-http={url}"));
    } else if let Some(pid_file) = var("RELOADER_PIDFILE") {
        args.push(format!("--pid-file={pid_file}"));
        let sig = var("RELOADER_SIGNAL").unwrap_or_else(|| "SIGUSR2".into());
        args.push(format!("--signal={sig}"));
    } else if let Some(touch) = var("RELOADER_TOUCHFILE") {
        args.push(format!("--touch={touch}"));
    }
    Ok(args)
}

/// config-reloader-sidecar: CONFIG_DIR (comma list), PROCESS_NAME (required), RELOAD_SIGNAL
/// (default SIGHUP), VERBOSE=true for debug logs.
fn config_reloader_args(
    dir: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut args = vec!["watch-dir".to_owned()];
    args.extend(list("dir", Some(dir.to_owned())));
    let name = var("PROCESS_NAME")
        .ok_or("CONFIG_DIR is set but PROCESS_NAME (the process to signal) is not")?;
    args.push(format!("--process-name={name}"));
    args.push(format!(
        "--signal={}",
        var("RELOAD_SIGNAL").unwrap_or_else(|| "SIGHUP".into())
    ));
    if var("VERBOSE").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        args.push("--log-level=debug".into());
    }
    Ok(args)
}

/// An environment of exactly `pairs`, for tests.
#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let m: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::{env_of as env, *};

    fn args(pairs: &[(&str, &str)]) -> Option<Result<Vec<String>, String>> {
        args_from_env(env(pairs))
    }

    #[test]
    fn nothing_set_is_the_operator() {
        assert_eq!(args(&[]), None);
        assert_eq!(
            args(&[("RELOADER_CONFIGMAP", " "), ("POD_NAMESPACE", "x")]),
            None
        );
    }

    #[test]
    fn pod_reloader_variables() {
        let a = args(&[
            ("RELOADER_CONFIGMAP", "app"),
            ("RELOADER_NAMESPACE", "team"),
            ("RELOADER_PATH", "/cfg"),
            ("RELOADER_ENDPOINT", "http://localhost:5000/reload"),
            ("RELOADER_PIDFILE", "/run/app.pid"),
        ]);
        assert_eq!(
            a.unwrap().unwrap(),
            [
                "sidecar",
                "--configmap=app",
                "--namespace=team",
                "--dir=/cfg",
                "--reload-http=http://localhost:5000/reload"
            ],
            "ENDPOINT wins over PIDFILE"
        );
        let a = args(&[
            ("RELOADER_SECRET", "db"),
            ("RELOADER_PATH", "/s"),
            ("RELOADER_PIDFILE", "/p"),
        ]);
        assert_eq!(
            a.unwrap().unwrap(),
            [
                "sidecar",
                "--secret=db",
                "--dir=/s",
                "--pid-file=/p",
                "--signal=SIGUSR2"
            ],
            "Pod Reloader's default signal"
        );
        let a = args(&[
            ("RELOADER_SECRET", "db"),
            ("RELOADER_PATH", "/s"),
            ("RELOADER_INIT", "0"),
            ("RELOADER_TOUCHFILE", "/t"),
        ]);
        assert_eq!(
            a.unwrap().unwrap(),
            ["init", "--secret=db", "--dir=/s", "--touch=/t"],
            "any RELOADER_INIT value means init"
        );
        let e = args(&[("RELOADER_CONFIGMAP", "app")]).unwrap().unwrap_err();
        assert!(e.contains("RELOADER_PATH"), "{e}");
    }

    #[test]
    fn config_reloader_sidecar_variables() {
        let a = args(&[
            ("CONFIG_DIR", "/etc/a,/etc/b"),
            ("PROCESS_NAME", "nginx"),
            ("VERBOSE", "true"),
        ]);
        assert_eq!(
            a.unwrap().unwrap(),
            [
                "watch-dir",
                "--dir=/etc/a",
                "--dir=/etc/b",
                "--process-name=nginx",
                "--signal=SIGHUP",
                "--log-level=debug"
            ]
        );
        let a = args(&[
            ("CONFIG_DIR", "/c"),
            ("PROCESS_NAME", "x"),
            ("RELOAD_SIGNAL", "SIGUSR1"),
        ]);
        assert!(a.unwrap().unwrap().contains(&"--signal=SIGUSR1".to_owned()));
        let e = args(&[("CONFIG_DIR", "/c")]).unwrap().unwrap_err();
        assert!(e.contains("PROCESS_NAME"), "{e}");
    }
}
