//! Configuration by environment variables, so pod specs written for Pod Reloader
//! (morecontainers/reloader, `RELOADER_*`) and for config-reloader-sidecar (`CONFIG_DIR`,
//! `PROCESS_NAME`, `RELOAD_SIGNAL`) run our image unchanged. The image's entrypoint has no
//! arguments, so when no subcommand is given these variables pick the mode:
//!
//! - `RELOADER_CONFIGMAP`, `RELOADER_SECRET` or `RELOADER_INIT` set: `sidecar`, or `init`
//!   when `RELOADER_INIT` is non-empty (any value, even `0`, as Pod Reloader reads it);
//! - else `CONFIG_DIR` set: `watch-dir`;
//! - else the operator.
//!
//! The variables become flags, so they are validated exactly as flags are; arguments given
//! on the command line follow them (and win, a repeated flag taking its last value).

use std::ffi::OsString;

use clap::Parser;

use crate::cli::Cli;

/// The subcommand and flags the environment asks for; `None`: run the operator.
pub fn args_from_env(get: impl Fn(&str) -> Option<String>) -> Option<Result<Vec<String>, String>> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let pod_reloader = ["RELOADER_CONFIGMAP", "RELOADER_SECRET", "RELOADER_INIT"];
    if pod_reloader.iter().any(|k| var(k).is_some()) {
        return Some(pod_reloader_args(&var));
    }
    var("CONFIG_DIR").map(|dir| config_reloader_args(&dir, &var))
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

/// Why the command line could not be used.
#[derive(Debug)]
pub enum CliError {
    /// clap's own (usage, help, version): printed and exited as clap does.
    Clap(clap::Error),
    /// The environment's settings are incomplete.
    Env(String),
}

/// Parses `argv` (program name first); with no subcommand, the environment may choose one.
pub fn parse_cli(
    argv: Vec<OsString>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Cli, CliError> {
    let direct = Cli::try_parse_from(&argv);
    if let Ok(cli) = &direct
        && cli.command.is_some()
    {
        return direct.map_err(CliError::Clap);
    }
    match args_from_env(get) {
        None => direct.map_err(CliError::Clap),
        Some(Err(e)) => Err(CliError::Env(e)),
        Some(Ok(mode)) => {
            let program = argv
                .first()
                .cloned()
                .unwrap_or_else(|| "kube-reloader".into());
            let rest = argv.into_iter().skip(1);
            let argv = std::iter::once(program)
                .chain(mode.into_iter().map(OsString::from))
                .chain(rest);
            Cli::try_parse_from(argv).map_err(CliError::Clap)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::inpod::args::Command;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

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

    fn cli(argv: &[&str], pairs: &[(&str, &str)]) -> Result<Cli, CliError> {
        let argv = argv.iter().map(OsString::from).collect();
        parse_cli(argv, env(pairs))
    }

    #[test]
    fn the_environment_picks_the_mode_only_without_a_subcommand() {
        let cm = [
            ("RELOADER_CONFIGMAP", "app"),
            ("RELOADER_PATH", "/cfg"),
            ("POD_NAMESPACE", "x"),
        ];
        let c = cli(&["kube-reloader", "--http-addr=:8080"], &cm).unwrap();
        let Some(Command::Sidecar(s)) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(s.objects.configmaps, ["app"]);
        assert_eq!(
            s.looping.http_addr, ":8080",
            "command-line flags go to the mode"
        );
        let c = cli(&["kube-reloader", "--dir=/other"], &cm).unwrap();
        let Some(Command::Sidecar(s)) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(
            s.objects.dir.to_str(),
            Some("/other"),
            "and win over the variables"
        );

        let c = cli(&["kube-reloader", "watch-dir", "--dir=/d"], &cm).unwrap();
        assert!(
            matches!(c.command, Some(Command::WatchDir(_))),
            "an explicit subcommand wins"
        );

        let c = cli(&["kube-reloader", "--namespaces=a"], &[]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(crate::cli::items(&c.operator.namespaces), ["a"]);

        let e = cli(&["kube-reloader"], &[("CONFIG_DIR", "/c")]).unwrap_err();
        assert!(
            matches!(e, CliError::Env(ref m) if m.contains("PROCESS_NAME")),
            "{e:?}"
        );
        let e = cli(&["kube-reloader", "--namespaces=a"], &cm).unwrap_err();
        assert!(
            matches!(e, CliError::Clap(_)),
            "operator flags do not mix with in-pod env"
        );
    }
}
