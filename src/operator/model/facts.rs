//! What the caches keep of each object: a config as its hash and flags (`ConfigEntry`), a
//! workload as `WorkloadFacts`, built here from the object: only what reload decisions and
//! idempotence checks need. Specs, status and managedFields are dropped as soon as an
//! event arrives.

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::PodTemplateSpec,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::core::DynamicObject;

use crate::operator::model::{
    annotations::{AnnotationKeys, EVICTED_FOR, LAST_RELOADED_FROM, NAMESPACE_AUTO, WorkloadRules},
    hash::ConfigHash,
    kinds::{ConfigKind, WorkloadKey, WorkloadKind},
    references::{PodRefs, pod_refs},
    selector::LabelSelector,
};
use std::collections::BTreeMap;

#[path = "rollout.rs"]
mod rollout;

/// What the decision needs from the changed config object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfigFlags {
    /// `reloader.stakater.com/ignore` is exactly `"true"`.
    pub ignore: bool,
    /// `reloader.stakater.com/match` is exactly `"true"`.
    pub search_match: bool,
}

/// The ignore and match annotations of a config object (exactly `"true"`, as stakater).
pub fn config_flags(keys: &AnnotationKeys, meta: &ObjectMeta) -> ConfigFlags {
    let ann = meta.annotations.as_ref();
    let is_true = |k: &str| ann.and_then(|a| a.get(k)).is_some_and(|v| v == "true");
    ConfigFlags {
        ignore: is_true(&keys.ignore),
        search_match: is_true(&keys.search_match),
    }
}

/// What is kept of a ConfigMap or Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub hash: ConfigHash,
    pub flags: ConfigFlags,
}

/// A reloader env var found on a container: `STAKATER_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvMarker {
    pub container: String,
    pub var: String,
    pub value: String,
}

/// Where a workload's rollout stands, from its status (for `--max-concurrent-rollouts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutState {
    /// `metadata.generation`: a write of ours makes it grow.
    pub generation: i64,
    /// Whether the kind reports rollout progress (Deployments, StatefulSets and DaemonSets
    /// rolling updates); the others count as done once written.
    pub tracked: bool,
    /// Its controller has seen `generation`, and every replica is updated and available.
    pub complete: bool,
    /// Why the rollout of `generation` cannot finish (a Deployment's progress deadline).
    pub failed: Option<String>,
}

/// What is kept of a workload.
#[derive(Clone, Debug)]
pub struct WorkloadFacts {
    pub key: WorkloadKey,
    pub uid: String,
    pub rules: WorkloadRules,
    pub refs: PodRefs,
    pub env_markers: Vec<EnvMarker>,
    /// The `last-reloaded-from` annotation on the pod template.
    pub annotation_marker: Option<String>,
    /// CronJob `spec.suspend`.
    pub suspended: bool,
    /// Deployment `spec.paused`.
    pub paused: bool,
    /// The `paused-at` annotation: set when kube-reloader paused it (pause-period).
    pub paused_at: Option<String>,
    /// Problems in its annotations, reported once per distinct list.
    pub problems: Vec<String>,
    /// Its labels match `--workload-selector`: auto unless it sets auto itself.
    pub policy_selected: bool,
    pub rollout: RolloutState,
    /// Its pods' label selector (for the eviction strategy).
    pub pod_selector: Option<String>,
    /// `kube-reloader.io/evicted-for`: what the eviction strategy last rolled.
    pub evicted_for: Option<String>,
    /// An Argo Rollout's `spec.workloadRef`: the Deployment whose template it runs.
    pub workload_ref: Option<WorkloadKey>,
    /// Where its writes go instead of itself (the referenced Deployment, and its uid),
    /// once the engine has joined the two.
    pub write_to: Option<(WorkloadKey, String)>,
}

impl WorkloadFacts {
    /// A Deployment `ns/name` with nothing known of it yet (tests fill in the rest).
    #[cfg(test)]
    pub fn bare(namespace: &str, name: &str) -> Self {
        WorkloadFacts {
            key: WorkloadKey {
                kind: WorkloadKind::Deployment,
                namespace: namespace.into(),
                name: name.into(),
            },
            uid: format!("uid-{name}"),
            rules: Default::default(),
            refs: Default::default(),
            env_markers: Vec::new(),
            annotation_marker: None,
            suspended: false,
            paused: false,
            paused_at: None,
            problems: Vec::new(),
            policy_selected: false,
            rollout: Default::default(),
            pod_selector: None,
            evicted_for: None,
            workload_ref: None,
            write_to: None,
        }
    }

    /// A Rollout with `workloadRef` takes the referenced Deployment's template: what it
    /// references, the markers on it, and the writes.
    pub fn adopt_template(&mut self, of: &WorkloadFacts) {
        self.refs = of.refs.clone();
        self.env_markers = of.env_markers.clone();
        self.annotation_marker = of.annotation_marker.clone();
        self.write_to = Some((of.key.clone(), of.uid.clone()));
    }

    /// These facts as the object a write goes to.
    pub fn write_target(&self) -> Option<WorkloadFacts> {
        let (key, uid) = self.write_to.clone()?;
        Some(WorkloadFacts {
            key,
            uid,
            write_to: None,
            workload_ref: None,
            paused: false,
            paused_at: None,
            ..self.clone()
        })
    }
}

impl WorkloadFacts {
    pub fn env_value(&self, container: &str, var: &str) -> Option<&str> {
        self.env_markers
            .iter()
            .find(|m| m.container == container && m.var == var)
            .map(|m| m.value.as_str())
    }

    /// The config names this workload's reload lists give literally, and whether any item
    /// is a regex (then it must be checked against every config of its namespace).
    pub(crate) fn named(&self) -> (Vec<(ConfigKind, String)>, bool) {
        let mut names = Vec::new();
        let mut any_regex = false;
        for src in [&self.rules.metadata, &self.rules.template] {
            for kind in ConfigKind::ALL {
                if let Some(p) = src.reload(kind) {
                    names.extend(p.literals().map(|n| (kind, n.to_owned())));
                    any_regex |= p.has_regex();
                }
            }
        }
        (names, any_regex)
    }
}

/// Builds facts from a workload's metadata and pod template.
pub fn from_parts(
    keys: &AnnotationKeys,
    kind: WorkloadKind,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
    suspended: bool,
) -> Option<WorkloadFacts> {
    let key = WorkloadKey {
        kind,
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
    };
    let template_annotations = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref());
    let rules = WorkloadRules::parse(keys, meta.annotations.as_ref(), template_annotations);
    let spec = template.and_then(|t| t.spec.as_ref());
    let env_markers = spec
        .map(|s| {
            s.containers
                .iter()
                .flat_map(|c| {
                    c.env
                        .iter()
                        .flatten()
                        .filter(|e| e.name.starts_with("STAKATER_"))
                        .map(move |e| EnvMarker {
                            container: c.name.clone(),
                            var: e.name.clone(),
                            value: e.value.clone().unwrap_or_default(),
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    let problems = rules.problems(keys);
    Some(WorkloadFacts {
        key,
        uid: meta.uid.clone().unwrap_or_default(),
        refs: spec.map(pod_refs).unwrap_or_default(),
        env_markers,
        annotation_marker: template_annotations.and_then(|a| a.get(LAST_RELOADED_FROM).cloned()),
        suspended,
        paused: false,
        paused_at: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&keys.paused_at))
            .cloned(),
        problems,
        rules,
        policy_selected: false,
        rollout: RolloutState {
            generation: meta.generation.unwrap_or(0),
            ..Default::default()
        },
        pod_selector: None,
        workload_ref: None,
        write_to: None,
        evicted_for: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(EVICTED_FOR))
            .cloned(),
    })
}

/// Whether a Namespace's annotations opt its workloads in (`kube-reloader.io/auto` reads as
/// a true Go boolean).
pub fn namespace_auto(annotations: Option<&BTreeMap<String, String>>) -> bool {
    let v = annotations.and_then(|a| a.get(NAMESPACE_AUTO));
    v.and_then(|v| crate::shared::go::parse_go_bool(v)) == Some(true)
}

/// Marks facts whose object's labels match `--workload-selector`.
pub fn with_policy(
    mut facts: WorkloadFacts,
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> WorkloadFacts {
    facts.policy_selected = selector.is_some_and(|s| s.matches(labels));
    facts
}

pub fn deployment(keys: &AnnotationKeys, d: &Deployment) -> Option<WorkloadFacts> {
    let t = Some(&d.spec.template);
    let mut f = from_parts(keys, WorkloadKind::Deployment, &d.metadata, t, false)?;
    f.paused = d.spec.paused.unwrap_or(false);
    f.rollout = rollout::deployment(d);
    f.pod_selector = Some(selector_string(&d.spec.selector));
    Some(f)
}

pub fn statefulset(keys: &AnnotationKeys, s: &StatefulSet) -> Option<WorkloadFacts> {
    let t = Some(&s.spec.template);
    let mut f = from_parts(keys, WorkloadKind::StatefulSet, &s.metadata, t, false)?;
    f.rollout = rollout::statefulset(s);
    f.pod_selector = Some(selector_string(&s.spec.selector));
    Some(f)
}

pub fn daemonset(keys: &AnnotationKeys, d: &DaemonSet) -> Option<WorkloadFacts> {
    let t = Some(&d.spec.template);
    let mut f = from_parts(keys, WorkloadKind::DaemonSet, &d.metadata, t, false)?;
    f.rollout = rollout::daemonset(d);
    f.pod_selector = Some(selector_string(&d.spec.selector));
    Some(f)
}

pub fn cronjob(keys: &AnnotationKeys, c: &CronJob) -> Option<WorkloadFacts> {
    let t = c.spec.job_template.spec.as_ref().map(|j| &j.template);
    let suspended = c.spec.suspend.unwrap_or(false);
    from_parts(keys, WorkloadKind::CronJob, &c.metadata, t, suspended)
}

pub fn job(keys: &AnnotationKeys, j: &Job) -> Option<WorkloadFacts> {
    let t = j.spec.as_ref().map(|s| &s.template);
    from_parts(keys, WorkloadKind::Job, &j.metadata, t, false)
}

/// An Argo Rollout, read through the dynamic API: only `spec.template` is decoded.
pub fn rollout(keys: &AnnotationKeys, r: &DynamicObject) -> Option<WorkloadFacts> {
    dynamic(keys, WorkloadKind::Rollout, r)
}

/// A kind read through the dynamic API (a Rollout, a `--workload-kinds` kind): only its
/// pod template, at the kind's path, is decoded.
pub fn dynamic(
    keys: &AnnotationKeys,
    kind: WorkloadKind,
    r: &DynamicObject,
) -> Option<WorkloadFacts> {
    let template = dynamic_template(kind, r);
    let mut f = from_parts(keys, kind, &r.metadata, template.as_ref(), false)?;
    if kind == WorkloadKind::Rollout && template.is_none() {
        f.workload_ref = rollout_workload_ref(r);
    }
    // Most kinds with pods keep their selector at spec.selector, as the built-in ones do.
    let selector = r.data.pointer("/spec/selector").cloned();
    f.pod_selector = selector
        .and_then(|s| serde_json::from_value(s).ok())
        .map(|s| selector_string(&s));
    Some(f)
}

/// `spec.workloadRef` naming a Deployment (the only kind Argo takes a template from).
fn rollout_workload_ref(r: &DynamicObject) -> Option<WorkloadKey> {
    let w = r.data.pointer("/spec/workloadRef")?;
    let kind = w.get("kind")?.as_str()?;
    let api = w
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("apps/v1");
    (kind == "Deployment" && api == "apps/v1").then(|| WorkloadKey {
        kind: WorkloadKind::Deployment,
        namespace: r.metadata.namespace.clone().unwrap_or_default(),
        name: w
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// `matchLabels` and `matchExpressions` as a selector string for a LIST.
pub fn selector_string(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> String {
    let mut parts: Vec<String> = (s.match_labels.iter().flatten())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// The pod template of a dynamic object, at its kind's path.
pub fn dynamic_template(kind: WorkloadKind, r: &DynamicObject) -> Option<PodTemplateSpec> {
    let t = r.data.pointer(kind.template_pointer()?)?;
    serde_json::from_value(t.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::model::kinds::ConfigKind;
    use serde_json::json;

    #[test]
    fn deployment_facts_keep_rules_refs_and_markers() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "app", "namespace": "ns", "uid": "u1",
                         "annotations": {"reloader.stakater.com/auto": "true"}},
            "spec": {
                "selector": {},
                "template": {
                    "metadata": {"annotations": {LAST_RELOADED_FROM: "{}"}},
                    "spec": {"containers": [{
                        "name": "c",
                        "envFrom": [{"configMapRef": {"name": "cfg"}}],
                        "env": [{"name": "STAKATER_CFG_CONFIGMAP", "value": "abc"},
                                {"name": "OTHER", "value": "x"}]
                    }]}
                }
            }
        }))
        .unwrap();
        let f = deployment(&AnnotationKeys::default(), &d).unwrap();
        assert_eq!(f.key.name, "app");
        assert_eq!(f.uid, "u1");
        assert!(f.refs.find(ConfigKind::ConfigMap, "cfg").is_some());
        assert_eq!(f.env_markers.len(), 1);
        assert_eq!(f.env_value("c", "STAKATER_CFG_CONFIGMAP"), Some("abc"));
        assert_eq!(f.annotation_marker.as_deref(), Some("{}"));
        assert!(f.rules.metadata.auto.is_some());
    }

    #[test]
    fn suspended_cronjob_and_rollout_template() {
        let c: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "cj", "namespace": "ns"},
            "spec": {"schedule": "* * * * *", "suspend": true, "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}
            }}}}
        }))
        .unwrap();
        let f = cronjob(&AnnotationKeys::default(), &c).unwrap();
        assert!(f.suspended);
        assert!(f.refs.find(ConfigKind::Secret, "s").is_some());

        let r: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "ro", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [{"name": "c",
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}]}}}
        }))
        .unwrap();
        let f = rollout(&AnnotationKeys::default(), &r).unwrap();
        assert!(f.refs.find(ConfigKind::ConfigMap, "cm").is_some());
    }

    #[test]
    fn selectors_render_as_the_api_reads_them() {
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(json!({
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                     {"key": "legacy", "operator": "DoesNotExist"}]
            }))
            .unwrap();
        assert_eq!(selector_string(&s), "app=web,tier in (a,b),!legacy");
    }
}
