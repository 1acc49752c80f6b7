//! What a reload leaves on a workload, read back: stakater's env-var names (made by the
//! library's own function), the hashes they carry, env values, `last-reloaded-from`, and
//! the generation that counts writes.

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::Container};

/// Stakater's env var for config `name` of `kind` ("ConfigMap", "Secret"):
/// `STAKATER_<NAME>_<CONFIGMAP|SECRET>`, as the operator names it.
pub fn marker_var(kind: &str, name: &str) -> String {
    use kube_reloader::operator::model::kinds::ConfigKind;
    let kind = match kind {
        "ConfigMap" => ConfigKind::ConfigMap,
        "Secret" => ConfigKind::Secret,
        other => panic!("not a config kind: {other}"),
    };
    kube_reloader::operator::apply::markers::env_var_name(kind, name)
}

/// Stakater's hash of a ConfigMap whose only entry is `k: value` (the tests' configs).
pub fn cm_hash(value: &str) -> String {
    let data = std::collections::BTreeMap::from([("k".to_owned(), value.to_owned())]);
    kube_reloader::operator::model::hash::configmap_hash(Some(&data), None).to_string()
}

/// Stakater's hash of Secret data given as plain text.
pub fn secret_hash(pairs: &[(&str, &str)]) -> String {
    let raw: std::collections::BTreeMap<String, k8s_openapi::ByteString> = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                k8s_openapi::ByteString(v.as_bytes().to_vec()),
            )
        })
        .collect();
    kube_reloader::operator::model::hash::secret_hash(Some(&raw)).to_string()
}

/// The value of env var `var` on `container` of a Deployment's template.
pub fn env_of(d: &Deployment, container: &str, var: &str) -> Option<String> {
    container_env(&d.spec.template.spec.as_ref()?.containers, container, var)
}

/// The value of env var `var` on the container named `container` among `containers`.
pub fn container_env(containers: &[Container], container: &str, var: &str) -> Option<String> {
    let c = containers.iter().find(|c| c.name == container)?;
    c.env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .clone()
}

/// Whether any container of the Deployment's template carries env var `var`.
pub fn has_env(d: &Deployment, var: &str) -> bool {
    d.spec
        .template
        .spec
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| c.env.iter().flatten())
        .any(|e| e.name == var)
}

/// The value of env var `var` on a Job's first container.
pub fn job_env(j: &Job, var: &str) -> Option<String> {
    j.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == var)?
        .value
        .clone()
}

/// The hash that the annotations strategy recorded in the pod template's
/// `last-reloaded-from`.
pub fn recorded_hash(d: &Deployment) -> Option<String> {
    let ann = d.spec.template.metadata.as_ref()?.annotations.as_ref()?;
    let source = ann.get(kube_reloader::operator::model::annotations::LAST_RELOADED_FROM)?;
    let source: kube_reloader::operator::apply::markers::ReloadSource =
        serde_json::from_str(source).ok()?;
    Some(source.hash)
}

/// The Deployment's own annotation `key` (not its pod template's), such as the paused-at
/// time a pause-period leaves.
pub fn annotation(d: &Deployment, key: &str) -> Option<String> {
    d.metadata.annotations.as_ref()?.get(key).cloned()
}

/// The workload's generation: 1 as created, one more for each write to its spec.
pub fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or_default()
}

/// How often the workload's spec was written (rolled) since it was created.
pub fn rollouts(d: &Deployment) -> i64 {
    generation(d) - 1
}
