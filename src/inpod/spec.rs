//! Flags checked together and turned into what the modes run with; every error names the
//! flag at fault.

use std::path::PathBuf;

use super::{
    args::{ObjectArgs, ReloadArgs},
    objref::{self, Kind, ObjectRef, RefError},
    reload::Action,
    reload_http::{HttpReload, HttpSettingsError},
    signal::{self, SignalNameError, Target},
};

/// Bad input: a flag's value, or flags that do not go together (exit code 2). Each names
/// the flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error("give at least one --configmap or --secret")]
    NoObjects,
    #[error("--dir must not be empty")]
    EmptyDir,
    #[error(
        "--label {0:?}: expected KEY or KEY=VALUE, a label key and value as Kubernetes allows them"
    )]
    Label(String),
    #[error("--namespace {0:?} is not a valid namespace name")]
    Namespace(String),
    #[error(
        "give --namespace or --all-namespaces, or set POD_NAMESPACE (the in-cluster namespace file was not found either)"
    )]
    NoNamespace,
    /// More than one way to reload was given.
    #[error("{} cannot be combined: choose one way to reload", .flags.join(" and "))]
    Combined { flags: Vec<&'static str> },
    #[error("--signal {0}")]
    Signal(#[from] SignalNameError),
    #[error("--process-name must not be empty")]
    EmptyProcessName,
    #[error("--signal needs --process-name or --pid-file to say whom to signal")]
    SignalWithoutTarget,
    #[error("--reload-http-username and --reload-http-password go together")]
    HalfCredentials,
    #[error("--reload-http-json is not JSON: {0}")]
    NotJson(String),
    #[error(transparent)]
    Http(#[from] HttpSettingsError),
    /// `--http-addr` cannot be listened on; `addr` as bound (`:PORT` made whole).
    #[error("--http-addr {addr}: {source}")]
    HttpAddr {
        addr: String,
        source: std::io::Error,
    },
    /// A `watch-dir` directory cannot be watched.
    #[error("--dir {}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The `watch-dir` directories cannot be read.
    #[error("--dir: {0}")]
    ReadDirs(#[source] std::io::Error),
}

/// The objects to write, namespaces resolved (`default_ns`: `objref::default_namespace`).
pub fn objects(a: &ObjectArgs, default_ns: Option<&str>) -> Result<Vec<ObjectRef>, UsageError> {
    let mut refs = a
        .configmaps
        .iter()
        .map(|s| objref::parse(Kind::ConfigMap, s, default_ns))
        .chain(
            a.secrets
                .iter()
                .map(|s| objref::parse(Kind::Secret, s, default_ns)),
        )
        .collect::<Result<Vec<_>, _>>()?;
    // The same object named twice (`a` and `ns/a`) would collide with itself.
    let mut seen = Vec::new();
    refs.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    if refs.is_empty() {
        return Err(UsageError::NoObjects);
    }
    if a.dir.as_os_str().is_empty() {
        return Err(UsageError::EmptyDir);
    }
    Ok(refs)
}

/// The reload action: at most one of --reload-http, --process-name, --pid-file, --touch.
pub fn action(r: &ReloadArgs) -> Result<Action, UsageError> {
    let given: Vec<&'static str> = [
        ("--reload-http", r.reload_http.is_some()),
        ("--process-name", r.process_name.is_some()),
        ("--pid-file", r.pid_file.is_some()),
        ("--touch", r.touch.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if given.len() > 1 {
        return Err(UsageError::Combined { flags: given });
    }
    let sig = match &r.signal {
        Some(s) => Some(signal::parse(s)?),
        None => None,
    };
    let target = match (&r.process_name, &r.pid_file) {
        (Some(name), _) if name.trim().is_empty() => {
            return Err(UsageError::EmptyProcessName);
        }
        (Some(name), _) => Some(Target::ProcessName(name.clone())),
        (_, Some(path)) => Some(Target::PidFile(path.clone())),
        _ => None,
    };
    if let Some(t) = target {
        return Ok(Action::Signal(
            t,
            sig.unwrap_or(nix::sys::signal::Signal::SIGHUP),
        ));
    }
    if sig.is_some() {
        return Err(UsageError::SignalWithoutTarget);
    }
    if let Some(url) = &r.reload_http {
        let h = HttpReload::new(
            url,
            &r.reload_http_method,
            r.reload_http_status,
            r.reload_http_timeout,
            r.reload_http_retries,
            r.reload_http_backoff,
        )?;
        let h = match (&r.reload_http_username, &r.reload_http_password) {
            (Some(user), Some(password)) => h.with_basic_auth(user, password),
            (None, None) => h,
            _ => return Err(UsageError::HalfCredentials),
        };
        let h = match &r.reload_http_json {
            Some(body) => {
                serde_json::from_str::<serde_json::Value>(body)
                    .map_err(|e| UsageError::NotJson(e.to_string()))?;
                h.with_json(body.clone())
            }
            None => h,
        };
        return Ok(Action::Http(Box::new(h)));
    }
    Ok(r.touch.clone().map_or(Action::None, Action::Touch))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use nix::sys::signal::Signal;

    use super::*;
    use crate::{cli::Cli, inpod::args::Command};

    fn sidecar(args: &[&str]) -> crate::inpod::args::SidecarArgs {
        let argv = ["kube-reloader", "sidecar", "--dir=/d"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::InPod(Command::Sidecar(s))) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn objects_need_one_and_a_namespace() {
        let s = sidecar(&["--configmap=a", "--secret=x/b"]);
        let refs = objects(&s.objects, Some("pod")).unwrap();
        assert_eq!(refs[0].to_string(), "configmap pod/a");
        assert_eq!(refs[1].to_string(), "secret x/b");
        let twice = sidecar(&["--configmap=a", "--configmap=pod/a"]);
        assert_eq!(objects(&twice.objects, Some("pod")).unwrap().len(), 1);
        let e = objects(&sidecar(&[]).objects, Some("pod"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--configmap or --secret"), "{e}");
        let e = objects(&s.objects, None).unwrap_err().to_string();
        assert!(e.contains("--configmap \"a\" has no namespace"), "{e}");
    }

    #[test]
    fn one_action_at_most() {
        assert!(matches!(action(&sidecar(&[]).reload), Ok(Action::None)));
        let a = action(&sidecar(&["--process-name=nginx"]).reload).unwrap();
        assert!(matches!(
            a,
            Action::Signal(Target::ProcessName(_), Signal::SIGHUP)
        ));
        let a = action(&sidecar(&["--pid-file=/p", "--signal=USR2"]).reload).unwrap();
        assert!(matches!(
            a,
            Action::Signal(Target::PidFile(_), Signal::SIGUSR2)
        ));
        assert!(matches!(
            action(&sidecar(&["--touch=/t"]).reload),
            Ok(Action::Touch(_))
        ));
        let a = action(&sidecar(&["--reload-http=http://127.0.0.1:1/"]).reload).unwrap();
        assert!(matches!(a, Action::Http(_)));

        let e = action(&sidecar(&["--touch=/t", "--pid-file=/p"]).reload)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--pid-file and --touch cannot be combined"),
            "{e}"
        );
        let e = action(&sidecar(&["--signal=HUP"]).reload)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--signal needs"), "{e}");
        let url = "--reload-http=http://127.0.0.1:1/";
        let e = action(&sidecar(&[url, "--reload-http-username=u"]).reload)
            .unwrap_err()
            .to_string();
        assert!(e.contains("go together"), "{e}");
        let e = action(&sidecar(&[url, "--reload-http-json={x"]).reload)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--reload-http-json is not JSON"), "{e}");
        let ok = [
            url,
            "--reload-http-json=[1]",
            "--reload-http-username=u",
            "--reload-http-password=p",
        ];
        assert!(matches!(action(&sidecar(&ok).reload), Ok(Action::Http(_))));
        let e = action(&sidecar(&["--process-name=x", "--signal=NOPE"]).reload)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--signal") && e.contains("NOPE"), "{e}");
    }
}
