//! Reload intents → the marker written on the pod template, and the patch that writes it.
//! `env-vars`: `STAKATER_<NAME>_<CONFIGMAP|SECRET>=<hash>` on the chosen container.
//! `annotations`: `reloader.stakater.com/last-reloaded-from` with stakater's JSON.

use serde::Serialize;
use serde_json::{Value, json};

use crate::operator::model::{
    annotations::LAST_RELOADED_FROM, hash::ConfigHash, kinds::ConfigKind,
};

/// `--reload-strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReloadStrategy {
    #[default]
    #[value(name = "env-vars")]
    EnvVars,
    #[value(name = "annotations")]
    Annotations,
}

/// Stakater's `ConvertToEnvVarName`: uppercase, keep `[A-Z0-9]`, and turn each run of
/// other bytes that follows a kept one into a single `_`.
pub fn convert_to_env_var_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_kept = false;
    for b in text.bytes() {
        let c = b.to_ascii_uppercase();
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            out.push(c as char);
            last_kept = true;
        } else {
            if last_kept {
                out.push('_');
            }
            last_kept = false;
        }
    }
    out
}

/// `STAKATER_<NAME>_<TYPE>`.
pub fn env_var_name(kind: ConfigKind, name: &str) -> String {
    format!(
        "STAKATER_{}_{}",
        convert_to_env_var_name(name),
        kind.stakater_type()
    )
}

/// Stakater's `ReloadSource`, in its field order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub hash: String,
    pub container_refs: Vec<String>,
    pub observed_at: i64,
}

impl ReloadSource {
    /// Whether an existing annotation value already records this config at this hash.
    pub fn recorded_in(existing: &str, kind: ConfigKind, ns: &str, name: &str, hash: &str) -> bool {
        serde_json::from_str::<ReloadSource>(existing).is_ok_and(|s| {
            s.kind == kind.stakater_type() && s.namespace == ns && s.name == name && s.hash == hash
        })
    }
}

/// One change to a pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Set (or, with `None`, remove) an env var on a container.
    Env {
        container: String,
        var: String,
        value: Option<String>,
    },
    /// Set the `last-reloaded-from` annotation to this JSON.
    Annotation(String),
    /// The eviction strategy's record (`kube-reloader.io/evicted-for`): written on the
    /// workload's metadata, never on its template.
    Evict(String),
}

impl Marker {
    pub fn env(container: &str, kind: ConfigKind, name: &str, hash: Option<ConfigHash>) -> Self {
        Marker::Env {
            container: container.to_owned(),
            var: env_var_name(kind, name),
            value: hash.map(|h| h.to_string()),
        }
    }

    pub fn annotation(source: &ReloadSource) -> Self {
        Marker::Annotation(serde_json::to_string(source).expect("ReloadSource serializes"))
    }
}

/// The pod-template part of a strategic merge patch that writes `markers`: containers
/// merge by name and env by name, so nothing else in the template is touched. The
/// containers are listed in `order` (the template's): the API server orders the merged
/// list by the patch where the two disagree, so any other order would move containers.
pub fn template_patch(markers: &[Marker], order: &[String]) -> Value {
    let mut containers: Vec<(String, Vec<Value>)> = Vec::new();
    let mut annotation = None;
    for m in markers {
        match m {
            Marker::Env {
                container,
                var,
                value,
            } => {
                let entry = match value {
                    Some(v) => json!({ "name": var, "value": v }),
                    None => json!({ "name": var, "$patch": "delete" }),
                };
                match containers.iter_mut().find(|(c, _)| c == container) {
                    Some((_, env)) => env.push(entry),
                    None => containers.push((container.clone(), vec![entry])),
                }
            }
            Marker::Annotation(v) => annotation = Some(v.clone()),
            Marker::Evict(_) => {}
        }
    }
    let mut template = serde_json::Map::new();
    if let Some(v) = annotation {
        template.insert(
            "metadata".into(),
            json!({ "annotations": { LAST_RELOADED_FROM: v } }),
        );
    }
    if !containers.is_empty() {
        // Stable: a container the facts do not know (none should be) keeps its place last.
        containers.sort_by_key(|(c, _)| order.iter().position(|o| o == c).unwrap_or(usize::MAX));
        let list: Vec<Value> = containers
            .into_iter()
            .map(|(name, env)| json!({ "name": name, "env": env }))
            .collect();
        template.insert("spec".into(), json!({ "containers": list }));
    }
    Value::Object(template)
}

/// Applies `markers` to a whole pod template in memory (for kinds that are re-created
/// rather than patched: a Job made from a CronJob, a re-created Job).
pub fn apply_markers(
    template: &mut k8s_openapi::api::core::v1::PodTemplateSpec,
    markers: &[Marker],
) {
    let mut json = serde_json::to_value(&*template).expect("a pod template serializes");
    apply_markers_json(&mut json, markers);
    *template = serde_json::from_value(json).expect("markers keep the template valid");
}

/// Markers applied to a pod template held as JSON (also a custom resource's), touching
/// nothing else, so unknown fields and their spelling survive the round trip.
pub fn apply_markers_json(template: &mut Value, markers: &[Marker]) {
    for m in markers {
        match m {
            Marker::Env {
                container,
                var,
                value,
            } => {
                let containers = template
                    .pointer_mut("/spec/containers")
                    .and_then(Value::as_array_mut);
                let Some(c) = containers
                    .into_iter()
                    .flatten()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(container.as_str()))
                else {
                    continue;
                };
                let Some(obj) = c.as_object_mut() else {
                    continue;
                };
                let env = obj.entry("env").or_insert_with(|| json!([]));
                let Some(env) = env.as_array_mut() else {
                    continue;
                };
                env.retain(|e| e.get("name").and_then(Value::as_str) != Some(var.as_str()));
                if let Some(v) = value {
                    env.push(json!({ "name": var, "value": v }));
                }
            }
            Marker::Annotation(v) => {
                let Some(t) = template.as_object_mut() else {
                    continue;
                };
                let meta = t.entry("metadata").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                    if let Some(ann) = ann.as_object_mut() {
                        ann.insert(LAST_RELOADED_FROM.into(), Value::String(v.clone()));
                    }
                }
            }
            Marker::Evict(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_match_stakater() {
        assert_eq!(
            convert_to_env_var_name("www.stakater.com"),
            "WWW_STAKATER_COM"
        );
        assert_eq!(
            env_var_name(ConfigKind::ConfigMap, "my-config"),
            "STAKATER_MY_CONFIG_CONFIGMAP"
        );
        assert_eq!(
            env_var_name(ConfigKind::Secret, "db.creds"),
            "STAKATER_DB_CREDS_SECRET"
        );
        // Leading separators are dropped, runs collapse, a trailing one stays.
        assert_eq!(convert_to_env_var_name("-a--b."), "A_B_");
        // Collisions exist, as in stakater.
        assert_eq!(
            convert_to_env_var_name("a-b"),
            convert_to_env_var_name("a.b")
        );
    }

    #[test]
    fn reload_source_json_has_stakater_field_order() {
        let s = ReloadSource {
            kind: "CONFIGMAP".into(),
            name: "app".into(),
            namespace: "ns".into(),
            hash: "abc".into(),
            container_refs: vec!["c".into()],
            observed_at: 1700000000,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"type":"CONFIGMAP","name":"app","namespace":"ns","hash":"abc","containerRefs":["c"],"observedAt":1700000000}"#
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(ReloadSource::recorded_in(
            &json,
            ConfigKind::ConfigMap,
            "ns",
            "app",
            "abc"
        ));
        assert!(!ReloadSource::recorded_in(
            &json,
            ConfigKind::ConfigMap,
            "ns",
            "app",
            "abd"
        ));
        assert!(!ReloadSource::recorded_in(
            &json,
            ConfigKind::Secret,
            "ns",
            "app",
            "abc"
        ));
        assert!(!ReloadSource::recorded_in(
            "not json",
            ConfigKind::ConfigMap,
            "ns",
            "app",
            "abc"
        ));
    }

    #[test]
    fn template_patch_groups_env_by_container() {
        let h = ConfigHash::empty();
        let patch = template_patch(
            &[
                Marker::env("a", ConfigKind::ConfigMap, "one", Some(h)),
                Marker::env("b", ConfigKind::Secret, "two", None),
                Marker::env("a", ConfigKind::Secret, "three", Some(h)),
            ],
            &["a".into(), "b".into()],
        );
        assert_eq!(
            patch,
            json!({ "spec": { "containers": [
                { "name": "a", "env": [
                    { "name": "STAKATER_ONE_CONFIGMAP", "value": h.to_string() },
                    { "name": "STAKATER_THREE_SECRET", "value": h.to_string() }
                ]},
                { "name": "b", "env": [ { "name": "STAKATER_TWO_SECRET", "$patch": "delete" } ] }
            ]}})
        );
    }

    #[test]
    fn markers_apply_to_a_whole_template() {
        let mut t: k8s_openapi::api::core::v1::PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "a", "env": [{"name": "STAKATER_X_SECRET", "value": "old"}]}]}
        }))
        .unwrap();
        let h = ConfigHash::empty();
        apply_markers(
            &mut t,
            &[
                Marker::env("a", ConfigKind::Secret, "x", Some(h)),
                Marker::env("a", ConfigKind::ConfigMap, "y", None),
                Marker::Annotation("{}".into()),
            ],
        );
        let env = t.spec.as_ref().unwrap().containers[0].env.as_ref().unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].value.as_deref(), Some(h.to_string().as_str()));
        assert_eq!(
            t.metadata.unwrap().annotations.unwrap()[LAST_RELOADED_FROM],
            "{}"
        );
    }

    #[test]
    fn markers_apply_to_json_templates_keeping_unknown_fields() {
        let mut t = json!({ "x-custom": 1, "spec": { "containers": [
            { "name": "a", "resources": { "limits": { "cpu": "1000m" } } }
        ]}});
        let h = ConfigHash::empty();
        apply_markers_json(
            &mut t,
            &[
                Marker::env("a", ConfigKind::ConfigMap, "c", Some(h)),
                Marker::Annotation("{}".into()),
            ],
        );
        assert_eq!(
            t,
            json!({ "x-custom": 1,
            "metadata": { "annotations": { LAST_RELOADED_FROM: "{}" } },
            "spec": { "containers": [{ "name": "a", "resources": { "limits": { "cpu": "1000m" } },
                "env": [{ "name": "STAKATER_C_CONFIGMAP", "value": h.to_string() }] }]}})
        );
    }

    #[test]
    fn template_patch_lists_containers_in_template_order() {
        let h = ConfigHash::empty();
        let order: Vec<String> = ["main", "side", "worker"].map(String::from).into();
        let markers = [
            Marker::env("worker", ConfigKind::ConfigMap, "w", Some(h)),
            Marker::env("ghost", ConfigKind::ConfigMap, "g", Some(h)),
            Marker::env("main", ConfigKind::ConfigMap, "m", None),
            Marker::env("worker", ConfigKind::Secret, "w2", Some(h)),
        ];
        let patch = template_patch(&markers, &order);
        let names: Vec<&str> = patch["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["main", "worker", "ghost"]);
        assert_eq!(
            patch["spec"]["containers"][1]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn template_patch_for_annotation() {
        let patch = template_patch(&[Marker::Annotation("{}".into())], &[]);
        assert_eq!(
            patch,
            json!({ "metadata": { "annotations": { LAST_RELOADED_FROM: "{}" } } })
        );
    }
}
