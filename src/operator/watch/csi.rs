//! CSI Secrets Store integration (`--enable-csi-integration`), as stakater does it: a
//! SecretProviderClass (SPC) "changes" when one of its per-pod SecretProviderClassPodStatus
//! objects (SPCPS) is updated with other object versions, i.e. the driver rotated a secret.
//! The SPC's hash is that of its statuses; its ignore and match annotations are read from
//! the SPC itself. Creating or deleting a status (a pod coming or going) is never a change.

use std::collections::HashMap;

use kube::{
    Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};

use crate::operator::model::{
    facts::{ConfigEntry, ConfigFlags},
    hash::{self, ConfigHash},
    kinds::{ConfigKey, ConfigKind},
};

const GROUP_VERSION: &str = "secrets-store.csi.x-k8s.io/v1";

pub fn class_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass"),
        "secretproviderclasses",
    )
}

pub fn status_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "secrets-store.csi.x-k8s.io",
            "v1",
            "SecretProviderClassPodStatus",
        ),
        "secretproviderclasspodstatuses",
    )
}

/// Whether the CSI driver's API is served (see `shared::kube::api_served`).
pub async fn installed(client: &Client) -> bool {
    let plurals = ["secretproviderclasses", "secretproviderclasspodstatuses"];
    crate::shared::kube::api_served(client, GROUP_VERSION, &plurals, "--enable-csi-integration")
        .await
}

/// One SecretProviderClassPodStatus, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusKey {
    pub namespace: String,
    pub name: String,
}

/// What is kept of one status: its class and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusObs {
    pub key: StatusKey,
    pub class: ConfigKey,
    pub hash: ConfigHash,
}

/// Reduces a SecretProviderClassPodStatus; `None` without a namespace or class name.
pub fn status_obs(o: &DynamicObject) -> Option<StatusObs> {
    let namespace = o.metadata.namespace.clone()?;
    let status = o.data.get("status")?;
    let class_name = status.get("secretProviderClassName")?.as_str()?;
    let objects = status
        .get("objects")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|obj| {
            let field = |f: &str| obj.get(f).and_then(|v| v.as_str()).unwrap_or("");
            Some((field("id"), field("version"))).filter(|(id, _)| !id.is_empty())
        });
    Some(StatusObs {
        hash: hash::spc_status_hash(class_name, objects),
        class: ConfigKey {
            kind: ConfigKind::SecretProviderClass,
            namespace: namespace.clone(),
            name: class_name.to_owned(),
        },
        key: StatusKey {
            namespace,
            name: o.metadata.name.clone()?,
        },
    })
}

/// The classes and statuses seen, merged into one config entry per class.
#[derive(Default)]
pub struct CsiState {
    flags: HashMap<ConfigKey, ConfigFlags>,
    statuses: HashMap<StatusKey, (ConfigKey, ConfigHash)>,
    /// How many statuses name each class; the class's entry lives while any does.
    users: HashMap<ConfigKey, usize>,
    /// The latest hash seen per class.
    latest: HashMap<ConfigKey, ConfigHash>,
}

impl CsiState {
    pub fn put_class(&mut self, key: ConfigKey, flags: ConfigFlags) {
        self.flags.insert(key, flags);
    }

    pub fn remove_class(&mut self, key: &ConfigKey) {
        self.flags.remove(key);
    }

    pub fn class_keys(&self) -> impl Iterator<Item = &ConfigKey> {
        self.flags.keys()
    }

    pub fn has_status(&self, key: &StatusKey) -> bool {
        self.statuses.contains_key(key)
    }

    pub fn status_keys(&self) -> impl Iterator<Item = &StatusKey> {
        self.statuses.keys()
    }

    /// The config entry of a class that some status names.
    pub fn entry(&self, class: &ConfigKey) -> Option<ConfigEntry> {
        let hash = *self.latest.get(class)?;
        let flags = self.flags.get(class).copied().unwrap_or_default();
        Some(ConfigEntry { hash, flags })
    }

    /// Records a status. True when it is an update of a known status to another hash: a
    /// rotation. A status seen for the first time (a new pod) is not a change.
    pub fn put_status(&mut self, s: StatusObs) -> bool {
        self.latest.insert(s.class.clone(), s.hash);
        match self.statuses.insert(s.key, (s.class.clone(), s.hash)) {
            Some((old_class, old_hash)) if old_class == s.class => old_hash != s.hash,
            Some((old_class, _)) => {
                self.release(&old_class);
                *self.users.entry(s.class).or_default() += 1;
                false
            }
            None => {
                *self.users.entry(s.class).or_default() += 1;
                false
            }
        }
    }

    /// Forgets a status; returns its class if no status names that class any more.
    pub fn remove_status(&mut self, key: &StatusKey) -> Option<ConfigKey> {
        let (class, _) = self.statuses.remove(key)?;
        self.release(&class).then_some(class)
    }

    fn release(&mut self, class: &ConfigKey) -> bool {
        let Some(n) = self.users.get_mut(class) else {
            return false;
        };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        self.users.remove(class);
        self.latest.remove(class);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(name: &str, class: &str, version: &str) -> StatusObs {
        let o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": GROUP_VERSION,
            "kind": "SecretProviderClassPodStatus",
            "metadata": {"name": name, "namespace": "ns"},
            "status": {
                "podName": name,
                "secretProviderClassName": class,
                "mounted": true,
                "objects": [{"id": "secret/db", "version": version}]
            }
        }))
        .unwrap();
        status_obs(&o).unwrap()
    }

    #[test]
    fn reduces_a_status_to_its_class_and_hash() {
        let s = status("pod-a", "vault", "1");
        assert_eq!(s.class.name, "vault");
        assert_eq!(s.class.kind, ConfigKind::SecretProviderClass);
        assert_eq!(
            s.hash,
            hash::of_str("SecretProviderClassName=vault;secret/db=1")
        );
    }

    #[test]
    fn only_an_update_to_another_version_is_a_rotation() {
        let mut st = CsiState::default();
        assert!(!st.put_status(status("pod-a", "vault", "1")), "a new pod");
        assert!(!st.put_status(status("pod-b", "vault", "1")), "a new pod");
        assert!(!st.put_status(status("pod-a", "vault", "1")), "no change");
        assert!(st.put_status(status("pod-a", "vault", "2")), "rotated");
        let class = status("x", "vault", "2").class;
        assert_eq!(
            st.entry(&class).unwrap().hash,
            status("x", "vault", "2").hash
        );
        // The repeat from the other pod is still an update; the plan's marker check is
        // what keeps it from rolling twice.
        assert!(st.put_status(status("pod-b", "vault", "2")));
    }

    #[test]
    fn the_class_entry_lives_while_a_status_names_it() {
        let mut st = CsiState::default();
        let a = status("pod-a", "vault", "1");
        let class = a.class.clone();
        st.put_class(
            class.clone(),
            ConfigFlags {
                ignore: true,
                search_match: false,
            },
        );
        st.put_status(a.clone());
        st.put_status(status("pod-b", "vault", "1"));
        assert!(st.entry(&class).unwrap().flags.ignore);
        assert_eq!(st.remove_status(&a.key), None);
        assert_eq!(
            st.remove_status(&status("pod-b", "vault", "1").key),
            Some(class.clone())
        );
        assert!(st.entry(&class).is_none());
    }
}
