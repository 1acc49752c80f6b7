//! Pod template → the config objects it references, each with the container that
//! stakater would put its env var on (stakater's `getContainerUsingResource`):
//! 1. the first pod volume naming the config, then the first regular container mounting it
//!    (`containers[0]` if only an init container mounts it); a CSI volume names its
//!    SecretProviderClass in `volumeAttributes.secretProviderClass`;
//! 2. otherwise the first regular container referencing it from `env[].valueFrom` or
//!    `envFrom` (`containers[0]` if only an init container does);
//! 3. otherwise no container: auto reloads skip the workload, named reloads use
//!    `containers[0]` (see `decide::target_container`).

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

use crate::operator::model::kinds::ConfigKind;

/// A referenced config and the container chosen for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRef {
    pub kind: ConfigKind,
    pub name: String,
    pub container: String,
}

/// The reload-relevant facts of a pod template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRefs {
    /// The regular containers' names in template order: `containers[0]` is the fallback
    /// for named reloads, and a write that touches several lists them in this order, so
    /// the strategic merge patch keeps the order (it would follow the patch's otherwise).
    pub containers: Vec<String>,
    /// Every referenced config once, in first-seen order.
    pub refs: Vec<ConfigRef>,
}

impl PodRefs {
    pub fn first_container(&self) -> Option<&str> {
        self.containers.first().map(String::as_str)
    }

    pub fn find(&self, kind: ConfigKind, name: &str) -> Option<&ConfigRef> {
        self.refs.iter().find(|r| r.kind == kind && r.name == name)
    }
}

/// The names a volume gives for `kind`: direct, then projected sources.
fn volume_names(v: &Volume, kind: ConfigKind) -> impl Iterator<Item = &str> {
    let direct = match kind {
        ConfigKind::ConfigMap => v.config_map.as_ref().map(|c| c.name.as_str()),
        ConfigKind::Secret => v.secret.as_ref().and_then(|s| s.secret_name.as_deref()),
        ConfigKind::SecretProviderClass => v
            .csi
            .as_ref()
            .and_then(|c| c.volume_attributes.as_ref())
            .and_then(|a| a.get("secretProviderClass"))
            .map(String::as_str),
    };
    let projected = v
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(move |s| match kind {
            ConfigKind::ConfigMap => s.config_map.as_ref().map(|c| c.name.as_str()),
            ConfigKind::Secret => s.secret.as_ref().map(|c| c.name.as_str()),
            ConfigKind::SecretProviderClass => None,
        });
    direct.into_iter().chain(projected)
}

fn env_names(c: &Container, kind: ConfigKind) -> impl Iterator<Item = &str> {
    let value_from = c
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.value_from.as_ref())
        .filter_map(move |vf| match kind {
            ConfigKind::ConfigMap => vf.config_map_key_ref.as_ref().map(|r| r.name.as_str()),
            ConfigKind::Secret => vf.secret_key_ref.as_ref().map(|r| r.name.as_str()),
            ConfigKind::SecretProviderClass => None,
        });
    let env_from = c
        .env_from
        .iter()
        .flatten()
        .filter_map(move |ef| match kind {
            ConfigKind::ConfigMap => ef.config_map_ref.as_ref().map(|r| r.name.as_str()),
            ConfigKind::Secret => ef.secret_ref.as_ref().map(|r| r.name.as_str()),
            ConfigKind::SecretProviderClass => None,
        });
    value_from.chain(env_from)
}

fn mounts(c: &Container, volume: &str) -> bool {
    c.volume_mounts.iter().flatten().any(|m| m.name == volume)
}

/// Stakater's container choice for one config, as an index into `containers`.
pub fn choose_container(spec: &PodSpec, kind: ConfigKind, name: &str) -> Option<usize> {
    let containers = &spec.containers;
    let inits = spec.init_containers.as_deref().unwrap_or(&[]);
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| volume_names(v, kind).any(|n| n == name));
    if let Some(v) = volume {
        if let Some(i) = containers.iter().position(|c| mounts(c, &v.name)) {
            return Some(i);
        }
        if inits.iter().any(|c| mounts(c, &v.name)) && !containers.is_empty() {
            return Some(0);
        }
    }
    if let Some(i) = containers
        .iter()
        .position(|c| env_names(c, kind).any(|n| n == name))
    {
        return Some(i);
    }
    if inits.iter().any(|c| env_names(c, kind).any(|n| n == name)) && !containers.is_empty() {
        return Some(0);
    }
    None
}

/// One way a container uses a config (for `explain`; reload decisions use `pod_refs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub kind: ConfigKind,
    pub name: String,
    pub container: String,
    pub init: bool,
    /// `envFrom`, `env VAR (key K)`, `volume V at /path`, `projected volume V at /path`…
    pub how: String,
}

/// Every use of a config by every container, init containers first, in template order.
pub fn usages(spec: &PodSpec) -> Vec<Usage> {
    let inits = spec.init_containers.iter().flatten().map(|c| (c, true));
    let regular = spec.containers.iter().map(|c| (c, false));
    let mut out = Vec::new();
    for (c, init) in inits.chain(regular) {
        let mut add = |kind, name: &str, how: String| {
            out.push(Usage {
                kind,
                name: name.to_owned(),
                container: c.name.clone(),
                init,
                how,
            })
        };
        for ef in c.env_from.iter().flatten() {
            if let Some(r) = &ef.config_map_ref {
                add(ConfigKind::ConfigMap, &r.name, "envFrom".into());
            }
            if let Some(r) = &ef.secret_ref {
                add(ConfigKind::Secret, &r.name, "envFrom".into());
            }
        }
        for e in c.env.iter().flatten() {
            let Some(vf) = &e.value_from else { continue };
            if let Some(r) = &vf.config_map_key_ref {
                let how = format!("env {} (key {})", e.name, r.key);
                add(ConfigKind::ConfigMap, &r.name, how);
            }
            if let Some(r) = &vf.secret_key_ref {
                let how = format!("env {} (key {})", e.name, r.key);
                add(ConfigKind::Secret, &r.name, how);
            }
        }
        for m in c.volume_mounts.iter().flatten() {
            let Some(v) = spec.volumes.iter().flatten().find(|v| v.name == m.name) else {
                continue;
            };
            let what = match (&v.projected, &v.csi) {
                (Some(_), _) => "projected volume",
                (_, Some(_)) => "csi volume",
                _ => "volume",
            };
            for kind in ConfigKind::ALL {
                for name in volume_names(v, kind) {
                    add(kind, name, format!("{what} {} at {}", v.name, m.mount_path));
                }
            }
        }
    }
    out
}

/// All configs a pod template references, each with its chosen container.
pub fn pod_refs(spec: &PodSpec) -> PodRefs {
    let mut candidates: Vec<(ConfigKind, &str)> = Vec::new();
    for kind in ConfigKind::ALL {
        for v in spec.volumes.iter().flatten() {
            candidates.extend(volume_names(v, kind).map(|n| (kind, n)));
        }
        let all = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in all {
            candidates.extend(env_names(c, kind).map(|n| (kind, n)));
        }
    }
    let mut refs: Vec<ConfigRef> = Vec::new();
    for (kind, name) in candidates {
        if refs.iter().any(|r| r.kind == kind && r.name == name) {
            continue;
        }
        if let Some(i) = choose_container(spec, kind, name) {
            refs.push(ConfigRef {
                kind,
                name: name.to_owned(),
                container: spec.containers[i].name.clone(),
            });
        }
    }
    PodRefs {
        containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
        refs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn volume_mount_picks_the_mounting_container() {
        let s = spec(json!({
            "volumes": [{"name": "cfg", "configMap": {"name": "app"}}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "cfg", "mountPath": "/c"}]}
            ]
        }));
        assert_eq!(choose_container(&s, ConfigKind::ConfigMap, "app"), Some(1));
        assert_eq!(choose_container(&s, ConfigKind::Secret, "app"), None);
    }

    #[test]
    fn usages_say_how_each_container_uses_each_config() {
        let s = spec(json!({
            "volumes": [
                {"name": "v", "configMap": {"name": "files"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "tls"}}]}}
            ],
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "boot"}}]}],
            "containers": [{
                "name": "app",
                "env": [{"name": "DB", "valueFrom": {"configMapKeyRef": {"name": "db", "key": "url"}}}],
                "volumeMounts": [{"name": "v", "mountPath": "/etc/app"}, {"name": "p", "mountPath": "/tls"}]
            }]
        }));
        let all = usages(&s);
        let hows: Vec<(&str, bool, &str)> = (all.iter())
            .map(|u| (u.name.as_str(), u.init, u.how.as_str()))
            .collect();
        assert_eq!(
            hows,
            [
                ("boot", true, "envFrom"),
                ("db", false, "env DB (key url)"),
                ("files", false, "volume v at /etc/app"),
                ("tls", false, "projected volume p at /tls"),
            ]
        );
    }

    #[test]
    fn projected_volumes_count() {
        let s = spec(json!({
            "volumes": [{"name": "p", "projected": {"sources": [
                {"configMap": {"name": "c1"}}, {"secret": {"name": "s1"}}
            ]}}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "p", "mountPath": "/p"}]}]
        }));
        let refs = pod_refs(&s);
        assert_eq!(
            refs.find(ConfigKind::ConfigMap, "c1").unwrap().container,
            "b"
        );
        assert_eq!(refs.find(ConfigKind::Secret, "s1").unwrap().container, "b");
    }

    #[test]
    fn init_container_only_references_fall_back_to_the_first_container() {
        let s = spec(json!({
            "volumes": [{"name": "v", "secret": {"secretName": "tls"}}],
            "initContainers": [
                {"name": "init", "volumeMounts": [{"name": "v", "mountPath": "/t"}],
                 "envFrom": [{"configMapRef": {"name": "boot"}}]}
            ],
            "containers": [{"name": "main"}, {"name": "side"}]
        }));
        let refs = pod_refs(&s);
        assert_eq!(
            refs.find(ConfigKind::Secret, "tls").unwrap().container,
            "main"
        );
        assert_eq!(
            refs.find(ConfigKind::ConfigMap, "boot").unwrap().container,
            "main"
        );
    }

    #[test]
    fn env_value_from_and_env_from() {
        let s = spec(json!({
            "containers": [
                {"name": "a", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]},
                {"name": "c", "envFrom": [{"configMapRef": {"name": "settings"}}]}
            ]
        }));
        let refs = pod_refs(&s);
        assert_eq!(refs.find(ConfigKind::Secret, "db").unwrap().container, "b");
        assert_eq!(
            refs.find(ConfigKind::ConfigMap, "settings")
                .unwrap()
                .container,
            "c"
        );
        assert_eq!(refs.refs.len(), 2);
        assert_eq!(refs.first_container(), Some("a"));
        assert_eq!(refs.containers, ["a", "b", "c"]);
    }

    #[test]
    fn an_unmounted_volume_falls_through_to_env() {
        let s = spec(json!({
            "volumes": [{"name": "unused", "configMap": {"name": "app"}}],
            "containers": [
                {"name": "a"},
                {"name": "b", "envFrom": [{"configMapRef": {"name": "app"}}]}
            ]
        }));
        assert_eq!(choose_container(&s, ConfigKind::ConfigMap, "app"), Some(1));
        let only_volume = spec(json!({
            "volumes": [{"name": "unused", "configMap": {"name": "app"}}],
            "containers": [{"name": "a"}]
        }));
        assert!(
            pod_refs(&only_volume).refs.is_empty(),
            "not mounted anywhere: no reference"
        );
    }

    #[test]
    fn csi_volumes_name_their_secret_provider_class() {
        let s = spec(json!({
            "volumes": [{"name": "vault", "csi": {
                "driver": "secrets-store.csi.k8s.io",
                "volumeAttributes": {"secretProviderClass": "db-creds"}
            }}],
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "vault", "mountPath": "/mnt/secrets"}]}
            ]
        }));
        let refs = pod_refs(&s);
        let r = refs
            .find(ConfigKind::SecretProviderClass, "db-creds")
            .expect("the CSI volume is a reference");
        assert_eq!(r.container, "b");
        assert!(refs.find(ConfigKind::Secret, "db-creds").is_none());
    }

    #[test]
    fn no_containers_never_panics() {
        let s = spec(json!({
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s"}}]}],
            "containers": []
        }));
        assert_eq!(choose_container(&s, ConfigKind::Secret, "s"), None);
        assert_eq!(pod_refs(&s), PodRefs::default());
    }
}
