//! Workload kinds declared by flag (`--workload-kinds`): any kind with a pod template,
//! given as `GROUP/VERSION/KIND:PATH` (`apps.kruise.io/v1alpha1/CloneSet:spec.template`,
//! `v1/ReplicationController:spec.template` for the core group), watched and written as
//! dynamic objects. A declared kind is interned once per process, so `WorkloadKind` stays a
//! small `Copy` key and its name a `&'static str`; the set is bounded by the flags given.

use std::sync::{Mutex, OnceLock};

use kube::core::{ApiResource, GroupVersionKind};

/// One declared kind.
#[derive(Debug)]
pub struct CustomKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// `group/version`, or `version` for the core group.
    pub api_version: &'static str,
    /// The pod template as a JSON pointer (`/spec/template`).
    pub template: &'static str,
    /// The declaration as given (for logs and `explain`).
    pub spec: &'static str,
    /// The resource as discovery found it; until then kube's plural guess.
    resource: OnceLock<ApiResource>,
}

impl CustomKind {
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(self.group, self.version, self.kind)
    }

    pub fn api_resource(&self) -> ApiResource {
        match self.resource.get() {
            Some(ar) => ar.clone(),
            None => ApiResource::from_gvk(&self.gvk()),
        }
    }

    /// Records what discovery found (the plural may differ from the guess).
    pub fn discovered(&self, ar: ApiResource) {
        let _ = self.resource.set(ar);
    }
}

/// An index into the interned kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomId(u16);

static KINDS: Mutex<Vec<&'static CustomKind>> = Mutex::new(Vec::new());

impl CustomId {
    pub fn get(self) -> &'static CustomKind {
        KINDS.lock().expect("custom kinds lock")[self.0 as usize]
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Kubernetes' rules for a kind name (`CloneSet`): alphanumeric, starting with a letter.
fn kind_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Parses and interns one declaration; `Err` says what is wrong.
pub fn declare(spec: &str) -> Result<CustomId, String> {
    let spec = spec.trim();
    let (gvk, path) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("{spec:?} is not GROUP/VERSION/KIND:PATH (no `:PATH`)"))?;
    let parts: Vec<&str> = gvk.split('/').collect();
    let (group, version, kind) = match parts[..] {
        [g, v, k] if !g.is_empty() => (g, v, k),
        [v, k] => ("", v, k),
        _ => {
            return Err(format!(
                "{gvk:?} is not GROUP/VERSION/KIND (or VERSION/KIND for the core group)"
            ));
        }
    };
    if version.is_empty() || !kind_name(kind) {
        return Err(format!(
            "{gvk:?} needs a version and a kind such as CloneSet"
        ));
    }
    let fields: Vec<&str> = path.split('.').collect();
    if fields.iter().any(|f| f.is_empty()) {
        return Err(format!(
            "{path:?} is not a field path such as spec.template"
        ));
    }
    let template = leak(fields.iter().map(|f| format!("/{f}")).collect());
    let mut kinds = KINDS.lock().expect("custom kinds lock");
    let same = |k: &&CustomKind| {
        k.group == group && k.version == version && k.kind == kind && k.template == template
    };
    if let Some(i) = kinds.iter().position(same) {
        return Ok(CustomId(i as u16));
    }
    let id = u16::try_from(kinds.len()).map_err(|_| "too many --workload-kinds".to_owned())?;
    let api_version = match group {
        "" => version.to_owned(),
        g => format!("{g}/{version}"),
    };
    kinds.push(Box::leak(Box::new(CustomKind {
        group: leak(group.into()),
        version: leak(version.into()),
        kind: leak(kind.into()),
        api_version: leak(api_version),
        template,
        spec: leak(spec.into()),
        resource: OnceLock::new(),
    })));
    Ok(CustomId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_parse_and_intern() {
        let a = declare("apps.kruise.io/v1alpha1/CloneSet:spec.template").unwrap();
        let k = a.get();
        assert_eq!(
            (k.group, k.version, k.kind),
            ("apps.kruise.io", "v1alpha1", "CloneSet")
        );
        assert_eq!(
            (k.api_version, k.template),
            ("apps.kruise.io/v1alpha1", "/spec/template")
        );
        assert_eq!(
            declare(" apps.kruise.io/v1alpha1/CloneSet:spec.template ").unwrap(),
            a
        );
        let job = declare("keda.sh/v1alpha1/ScaledJob:spec.jobTargetRef.template").unwrap();
        assert_ne!(job, a);
        assert_eq!(job.get().template, "/spec/jobTargetRef/template");
        let core = declare("v1/ReplicationController:spec.template")
            .unwrap()
            .get();
        assert_eq!((core.group, core.api_version), ("", "v1"));
        assert_eq!(core.api_resource().plural, "replicationcontrollers");
    }

    #[test]
    fn bad_declarations_say_what_is_wrong() {
        for bad in [
            "apps.kruise.io/v1alpha1/CloneSet",
            "CloneSet:spec.template",
            "a/b/c/D:spec.template",
            "apps/v1/clone-set:spec.template",
            "apps/v1/CloneSet:spec..template",
            "apps/v1/CloneSet:",
        ] {
            assert!(declare(bad).is_err(), "{bad} accepted");
        }
    }
}
