//! `[NAMESPACE/]NAME` references to the ConfigMaps and Secrets an in-pod mode writes, and
//! the pod's own namespace for those given without one.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// Why a `--configmap` or `--secret` value names no object: its name or namespace is
/// invalid, or it has no namespace and none is known; `given` is the value as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error(
        "--{} {given:?}: {name:?} is not a valid object name (lowercase letters, digits, '-' and '.')",
        .kind.as_str()
    )]
    Name {
        kind: Kind,
        given: String,
        name: String,
    },
    #[error(
        "--{} {given:?} has no namespace: give NAMESPACE/NAME or --namespace, or set POD_NAMESPACE (the in-cluster namespace file was not found either)",
        .kind.as_str()
    )]
    NoNamespace { kind: Kind, given: String },
    #[error("--{} {given:?}: {namespace:?} is not a valid namespace name", .kind.as_str())]
    Namespace {
        kind: Kind,
        given: String,
        namespace: String,
    },
}

/// A DNS-1123 subdomain (object names) or label (namespaces): the API rejects anything
/// else, so a typo fails here with the flag named rather than as a 404 forever.
fn valid_dns(s: &str, max: usize, dots: bool) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(ok_char)
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
        && (dots || !s.contains('.'))
}

/// Whether `s` can be a namespace's name.
pub fn valid_namespace(s: &str) -> bool {
    valid_dns(s, 63, false)
}

/// Parses `[NS/]NAME`; `default_ns` is used when no namespace is given (and an error
/// explains where it comes from when there is none).
pub fn parse(kind: Kind, s: &str, default_ns: Option<&str>) -> Result<ObjectRef, RefError> {
    let given = || s.to_owned();
    let (ns, name) = match s.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, s),
    };
    if !valid_dns(name, 253, true) {
        return Err(RefError::Name {
            kind,
            given: given(),
            name: name.to_owned(),
        });
    }
    let ns = ns.or(default_ns).ok_or_else(|| RefError::NoNamespace {
        kind,
        given: given(),
    })?;
    if !valid_dns(ns, 63, false) {
        return Err(RefError::Namespace {
            kind,
            given: given(),
            namespace: ns.to_owned(),
        });
    }
    Ok(ObjectRef {
        kind,
        namespace: ns.to_owned(),
        name: name.to_owned(),
    })
}

/// The namespace for names given without one: `--namespace`, else the pod's
/// (`shared::kube::pod_namespace`). A blank `--namespace` means none at all.
pub fn default_namespace(flag: Option<&str>) -> Option<String> {
    match flag {
        Some(ns) => Some(ns.trim().to_owned()).filter(|s| !s.is_empty()),
        None => crate::shared::kube::pod_namespace(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_namespace() {
        let r = parse(Kind::ConfigMap, "team-a/app.conf", None).unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str()),
            ("team-a", "app.conf")
        );
        let r = parse(Kind::Secret, "db", Some("pod-ns")).unwrap();
        assert_eq!(r.to_string(), "secret pod-ns/db");
        // An explicit namespace wins over the default.
        let r = parse(Kind::Secret, "x/db", Some("pod-ns")).unwrap();
        assert_eq!(r.namespace, "x");
    }

    #[test]
    fn missing_namespace_is_a_clear_error() {
        let err = parse(Kind::ConfigMap, "app", None).unwrap_err();
        assert!(matches!(err, RefError::NoNamespace { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("--configmap") && err.contains("POD_NAMESPACE"),
            "{err}"
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        for bad in [
            "", "App", "a/b/c", "ns/", "/name", "a_b", "-a", "ns.x/a", "a..b",
        ] {
            let r = parse(Kind::Secret, bad, Some("d"));
            assert!(r.is_err(), "{bad:?} accepted as {r:?}");
        }
        let err = parse(Kind::Secret, "Bad", Some("d"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--secret") && err.contains("\"Bad\""), "{err}");
    }
}
