//! A fresh namespace per test (`TestNs`) with create, patch, get and list helpers, and the
//! objects tests put in it: configs, Deployments, Jobs and CronJobs as JSON, set up the
//! way most tests use them.

use std::{
    fmt::Debug,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::Deployment,
        batch::v1::Job,
        core::v1::{ConfigMap, Namespace, Secret},
    },
};
use kube::{
    Api, Client, Resource,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::plane::{bin_dir, client_for, control_plane};

/// `PREFIX-<pid>-<n>`: a name no other test of this run uses (namespaces, logs, files).
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A kind of object that lives in a namespace, as `TestNs` reads and writes them.
pub trait Namespaced:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug
{
}

impl<K> Namespaced for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
{
}

/// A fresh namespace for one test. Deleted (without waiting) when dropped.
pub struct TestNs {
    pub name: String,
    pub client: Client,
    kubeconfig: PathBuf,
}

impl TestNs {
    /// Creates `PREFIX-<pid>-<n>` with the label `kube-reloader-test=true`.
    pub async fn new(prefix: &str) -> Self {
        Self::on(control_plane(), prefix).await
    }

    /// Creates it on the plane that the admin kubeconfig at `kubeconfig` reaches.
    pub async fn on(kubeconfig: &Path, prefix: &str) -> Self {
        let client = client_for(kubeconfig).await;
        let name = unique(prefix);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "kube-reloader-test": "true" } }
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        TestNs {
            name,
            client,
            kubeconfig: kubeconfig.to_owned(),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates an object from JSON in this namespace.
    pub async fn create<K>(&self, obj: Value) -> K
    where
        K: Namespaced + Serialize,
    {
        let obj: K = serde_json::from_value(obj).expect("object JSON matches its type");
        let name = obj.meta().name.clone().unwrap_or_default();
        self.api::<K>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {} {name}: {e}", K::kind(&())))
    }

    /// Reads an object, panicking with its kind and name if it is missing.
    pub async fn get<K>(&self, name: &str) -> K
    where
        K: Namespaced,
    {
        self.api::<K>()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {} {name}: {e}", K::kind(&())))
    }

    /// Applies a JSON merge patch, as a user editing the object would.
    pub async fn merge_patch<K>(&self, name: &str, patch: Value) -> K
    where
        K: Namespaced,
    {
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch {} {name}: {e}", K::kind(&())))
    }

    /// Lists objects of a kind in this namespace.
    pub async fn list<K>(&self) -> Vec<K>
    where
        K: Namespaced,
    {
        self.api::<K>()
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", K::kind(&())))
            .items
    }

    /// Creates ConfigMap `name` whose only entry is `k: value`.
    pub async fn create_cm(&self, name: &str, value: &str) {
        self.create::<ConfigMap>(configmap(name, value)).await;
    }

    /// Sets entry `k` of ConfigMap `name` to `value`, as a user editing it would.
    pub async fn set_cm(&self, name: &str, value: &str) {
        self.merge_patch::<ConfigMap>(name, json!({ "data": { "k": value } }))
            .await;
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        // Best effort and non-blocking: the plane is throw-away, this only keeps a reused
        // plane tidy between runs.
        let _ = Command::new(bin_dir().join("kubectl"))
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .env("KUBECONFIG", &self.kubeconfig)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// A ConfigMap whose only entry is `k: value` (the config `cm_hash` hashes).
pub fn configmap(name: &str, value: &str) -> Value {
    json!({ "metadata": { "name": name }, "data": { "k": value } })
}

/// Creates config `name` of `kind` ("ConfigMap" or "Secret") with `k: 1` and the given
/// annotations and labels.
pub async fn create_config(
    ns: &TestNs,
    kind: &str,
    name: &str,
    annotations: &Value,
    labels: &Value,
) {
    let metadata = json!({ "name": name, "annotations": annotations, "labels": labels });
    if kind == "Secret" {
        ns.create::<Secret>(json!({ "metadata": metadata, "stringData": { "k": "1" } }))
            .await;
    } else {
        ns.create::<ConfigMap>(json!({ "metadata": metadata, "data": { "k": "1" } }))
            .await;
    }
}

/// Changes config `name` of `kind` ("ConfigMap" or "Secret") to `k: 2`.
pub async fn change_config(ns: &TestNs, kind: &str, name: &str) {
    if kind == "Secret" {
        ns.merge_patch::<Secret>(name, json!({ "stringData": { "k": "2" } }))
            .await;
    } else {
        ns.set_cm(name, "2").await;
    }
}

/// Stakater's auto annotation: the workload rolls for every config it references.
pub fn auto() -> Value {
    json!({ "reloader.stakater.com/auto": "true" })
}

/// A Deployment with no replicas, its annotations and pod spec.
pub fn deployment(name: &str, annotations: Value, pod: Value) -> Value {
    json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } }, "spec": pod }
        }
    })
}

/// The pod most tests use: one container `app` with `env` and `envFrom`.
pub fn app_pod(env_from: Value, env: Value) -> Value {
    json!({ "containers": [
        { "name": "app", "image": "x", "env": env, "envFrom": env_from }
    ]})
}

/// A Deployment with no replicas whose container `app` takes `env_from`.
pub fn app_deployment(name: &str, annotations: Value, env_from: Value) -> Value {
    deployment(name, annotations, app_pod(env_from, json!([])))
}

/// An auto-annotated Deployment whose container `app` has `env` and `envFrom`.
pub fn auto_deployment(name: &str, env_from: Value, env: Value) -> Value {
    deployment(name, auto(), app_pod(env_from, env))
}

/// An auto-annotated Deployment whose container `app` takes the ConfigMaps `configs` by
/// envFrom.
pub fn auto_using(name: &str, configs: &[&str]) -> Value {
    auto_deployment(name, configmap_refs(configs), json!([]))
}

/// `envFrom` entries for ConfigMaps.
pub fn configmap_refs(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| json!({ "configMapRef": { "name": n } }))
        .collect()
}

/// One `envFrom` entry for config `name` of `kind` ("ConfigMap" or "Secret").
pub fn env_from(kind: &str, name: &str) -> Value {
    if kind == "Secret" {
        json!({ "secretRef": { "name": name } })
    } else {
        json!({ "configMapRef": { "name": name } })
    }
}

/// A Job's pod: container `task` with `envFrom`, never restarted.
pub fn task_pod(env_from: Value) -> Value {
    json!({
        "restartPolicy": "Never",
        "containers": [{ "name": "task", "image": "x", "envFrom": env_from }]
    })
}

/// A Job with its annotations and pod spec.
pub fn job(name: &str, annotations: Value, pod: Value) -> Value {
    json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "template": { "spec": pod } }
    })
}

/// A CronJob that never comes due by itself (January 1st, midnight) with its annotations
/// and its Jobs' pod spec.
pub fn cronjob(name: &str, annotations: Value, pod: Value) -> Value {
    json!({
        "metadata": { "name": name, "annotations": annotations },
        "spec": {
            "schedule": "0 0 1 1 *",
            "jobTemplate": { "spec": { "template": { "spec": pod } } }
        }
    })
}

/// The same ConfigMap `cfg` (`k: 1`) and auto Deployment `w` using it in each namespace.
pub async fn setup_auto_pair(a: &TestNs, b: &TestNs) {
    for ns in [a, b] {
        ns.create_cm("cfg", "1").await;
        ns.create::<Deployment>(auto_using("w", &["cfg"])).await;
    }
}

/// Secret `s` (`t: 1`) and Job `migrate` whose reload list names it; returns the Job.
pub async fn create_job_with_secret(ns: &TestNs) -> Job {
    ns.create::<Secret>(json!({ "metadata": { "name": "s" }, "stringData": { "t": "1" } }))
        .await;
    let annotations = json!({ "secret.reloader.stakater.com/reload": "s" });
    ns.create(job("migrate", annotations, task_pod(json!([]))))
        .await
}

/// Changes the Secret of `create_job_with_secret` to `t: 2`.
pub async fn change_job_secret(ns: &TestNs) {
    ns.merge_patch::<Secret>("s", json!({ "stringData": { "t": "2" } }))
        .await;
}

/// The generation of Deployment `name` (see `markers::generation`).
pub async fn deployment_generation(ns: &TestNs, name: &str) -> i64 {
    super::markers::generation(&ns.get::<Deployment>(name).await)
}

/// The notes of the Events with `reason` about `workload` in the test namespace.
pub async fn warnings(ns: &TestNs, workload: &str, reason: &str) -> Vec<String> {
    ns.list::<k8s_openapi::api::events::v1::Event>()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(workload))
        .map(|e| e.note.unwrap_or_default())
        .collect()
}

/// The persisted state's shard ConfigMaps (`kube-reloader-state-NN`) in the namespace.
pub async fn state_shards(ns: &TestNs) -> Vec<ConfigMap> {
    ns.list::<ConfigMap>()
        .await
        .into_iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("kube-reloader-state-"))
        })
        .collect()
}
