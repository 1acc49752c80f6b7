//! `collect`'s flags checked into what it runs with: the label selector, the watches (one
//! per kind and namespace) and the naming of files.

use regex::Regex;

use super::{
    super::{
        args::{CollectArgs, Resource},
        objref::{self, Kind},
        spec::UsageError,
    },
    place::Naming,
    source::Stream,
};

pub struct Settings {
    pub selector: String,
    pub streams: Vec<Stream>,
    pub naming: Naming,
}

/// `KEY` or `KEY=VALUE` as a label selector; the API's syntax, so a typo fails at start
/// rather than as a watch failing forever.
pub fn selector(label: &str) -> Result<String, UsageError> {
    let key = Regex::new(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
    )
    .expect("a valid regex");
    let value =
        Regex::new(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$").expect("a valid regex");
    let (k, v) = match label.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (label, None),
    };
    let ok =
        key.is_match(k) && k.len() <= 316 && v.is_none_or(|v| value.is_match(v) && v.len() <= 63);
    if !ok {
        return Err(UsageError::Label(label.to_owned()));
    }
    Ok(match v {
        Some(v) if !v.is_empty() => format!("{k}={v}"),
        _ => k.to_owned(),
    })
}

/// The namespaces to watch (`None`: all); `default_ns` as `objref::default_namespace`.
pub fn namespaces(
    a: &CollectArgs,
    default_ns: Option<String>,
) -> Result<Vec<Option<String>>, UsageError> {
    if a.all_namespaces {
        return Ok(vec![None]);
    }
    let mut out: Vec<Option<String>> = Vec::new();
    for ns in a
        .namespaces
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if !objref::valid_namespace(ns) {
            return Err(UsageError::Namespace(ns.to_owned()));
        }
        if !out.iter().flatten().any(|n| n == ns) {
            out.push(Some(ns.to_owned()));
        }
    }
    if out.is_empty() {
        out.push(Some(default_ns.ok_or(UsageError::NoNamespace)?));
    }
    Ok(out)
}

pub fn settings(a: &CollectArgs, default_ns: Option<String>) -> Result<Settings, UsageError> {
    if a.dir.as_os_str().is_empty() {
        return Err(UsageError::EmptyDir);
    }
    let selector = selector(&a.label)?;
    let kinds: &[Kind] = match a.resource {
        Resource::Configmap => &[Kind::ConfigMap],
        Resource::Secret => &[Kind::Secret],
        Resource::Both => &[Kind::ConfigMap, Kind::Secret],
    };
    let namespaces = namespaces(a, default_ns)?;
    let streams = kinds
        .iter()
        .flat_map(|kind| {
            namespaces.iter().map(|ns| Stream {
                kind: *kind,
                namespace: ns.clone(),
            })
        })
        .collect();
    let naming = Naming {
        dir: a.dir.clone(),
        annotation: a.folder_annotation.clone(),
        unique: a.unique_filenames,
    };
    Ok(Settings {
        selector,
        streams,
        naming,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{cli::Cli, inpod::args::Command};

    fn collect(args: &[&str]) -> CollectArgs {
        let argv = ["kube-reloader", "collect", "--dir=/d"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::InPod(Command::Collect(c))) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn labels_are_checked() {
        assert_eq!(selector("grafana_dashboard").unwrap(), "grafana_dashboard");
        assert_eq!(selector("app.io/x=1").unwrap(), "app.io/x=1");
        assert_eq!(selector("k=").unwrap(), "k", "an empty value: any value");
        for bad in ["", "a b", "a,b", "k=v w", "-a", "A.B/x", "k!=v"] {
            assert!(selector(bad).is_err(), "{bad:?}");
        }
        let e = selector("a b").unwrap_err().to_string();
        assert!(e.contains("--label \"a b\""), "{e}");
    }

    #[test]
    fn one_watch_per_kind_and_namespace() {
        let a = collect(&[
            "--label=l",
            "--resource=both",
            "--namespace=a,b",
            "--namespace=a",
        ]);
        let s = settings(&a, None).unwrap();
        let got: Vec<String> = s.streams.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "configmaps in a",
                "configmaps in b",
                "secrets in a",
                "secrets in b"
            ]
        );
        let a = collect(&["--label=l", "--all-namespaces", "--resource=secret"]);
        let s = settings(&a, Some("pod".into())).unwrap();
        assert_eq!(s.streams[0].to_string(), "secrets in all namespaces");
        let a = collect(&["--label=l"]);
        assert_eq!(settings(&a, Some("pod".into())).unwrap().streams.len(), 1);
        let e = settings(&a, None).err().unwrap().to_string();
        assert!(e.contains("POD_NAMESPACE"), "{e}");
        let a = collect(&["--label=l", "--namespace=Bad"]);
        let e = settings(&a, None).err().unwrap().to_string();
        assert!(e.contains("--namespace \"Bad\""), "{e}");
    }
}
