//! Objects on the control plane: bulk creation with progress, builders, a watch of the
//! Deployments' reloader markers, and a count of the pods created.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::{
    ByteString,
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace, Pod, Secret},
    },
};
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use tokio::sync::mpsc;

pub type Result<T> = std::result::Result<T, String>;

pub async fn namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "kube-reloader-bench": "true" } }
    }))
    .map_err(|e| e.to_string())?;
    api.create(&PostParams::default(), &ns)
        .await
        .map_err(|e| format!("create namespace {name}: {e}"))?;
    Ok(())
}

pub async fn delete_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::background()).await;
}

/// Deletes the namespace and waits (up to `limit`) until it is gone, so the deletion of
/// its objects does not load the plane under the next measure.
pub async fn delete_namespace_and_wait(client: &Client, name: &str, limit: std::time::Duration) {
    delete_namespace(client, name).await;
    let api: Api<Namespace> = Api::all(client.clone());
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(None) = api.get_opt(name).await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    eprintln!("    namespace {name} still being deleted after {limit:?}; going on");
}

/// Creates `objects` with up to 64 requests in flight, printing progress.
pub async fn create_all<K>(api: &Api<K>, what: &str, objects: Vec<K>) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let total = objects.len();
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    stream::iter(objects)
        .map(|o| {
            let done = done.clone();
            async move {
                api.create(&PostParams::default(), &o)
                    .await
                    .map_err(|e| format!("create {what}: {e}"))?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) || n == total {
                    eprintln!(
                        "    {what}: {n}/{total} ({:.1}s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok::<_, String>(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn value_of_size(bytes: usize, seed: &str) -> String {
    seed.chars().cycle().take(bytes).collect()
}

pub fn configmap(name: &str, bytes: usize) -> ConfigMap {
    let data = BTreeMap::from([("k".to_owned(), value_of_size(bytes, name))]);
    ConfigMap {
        metadata: meta(name),
        data: Some(data),
        ..Default::default()
    }
}

pub fn secret(name: &str, bytes: usize) -> Secret {
    let v = ByteString(value_of_size(bytes, name).into_bytes());
    Secret {
        metadata: meta(name),
        data: Some(BTreeMap::from([("k".to_owned(), v)])),
        ..Default::default()
    }
}

fn meta(name: &str) -> kube::core::ObjectMeta {
    kube::core::ObjectMeta {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

/// An auto-annotated Deployment with `replicas` pods using `configmaps` and `secrets` by
/// envFrom.
pub fn deployment(
    name: &str,
    replicas: i32,
    configmaps: &[String],
    secrets: &[String],
) -> Deployment {
    let mut env_from: Vec<_> = configmaps
        .iter()
        .map(|c| json!({ "configMapRef": { "name": c } }))
        .collect();
    env_from.extend(
        secrets
            .iter()
            .map(|s| json!({ "secretRef": { "name": s } })),
    );
    serde_json::from_value(json!({
        "metadata": { "name": name, "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } }, "spec": {
                "containers": [{ "name": "app", "image": "x", "envFrom": env_from }]
            }}
        }
    }))
    .expect("a valid Deployment")
}

/// What a Deployment looked like when the watch saw it.
#[derive(Debug)]
pub struct Seen {
    pub name: String,
    pub generation: i64,
    /// The reloader's markers: STAKATER_* env vars, or the last-reloaded-from annotation.
    pub markers: BTreeMap<String, String>,
    /// The rollout of this generation is complete, as `kubectl rollout status` judges it:
    /// observed, every replica updated and available, no old replica left.
    pub complete: bool,
    pub at: Instant,
}

fn complete(d: &Deployment) -> bool {
    let Some(st) = d.status.as_ref() else {
        return false;
    };
    let want = d.spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    st.observed_generation >= d.metadata.generation
        && updated == want
        && st.replicas.unwrap_or(0) == updated
        && st.available_replicas.unwrap_or(0) == updated
}

pub fn markers(d: &Deployment) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let tpl = &d.spec.template;
    for c in tpl.spec.iter().flat_map(|s| s.containers.iter()) {
        for e in c.env.iter().flatten() {
            if e.name.starts_with("STAKATER_") {
                out.insert(e.name.clone(), e.value.clone().unwrap_or_default());
            }
        }
    }
    let ann = tpl.metadata.as_ref().and_then(|m| m.annotations.as_ref());
    if let Some(v) = ann.and_then(|a| a.get("reloader.stakater.com/last-reloaded-from")) {
        out.insert("last-reloaded-from".into(), v.clone());
    }
    out
}

/// The sentinel's name (`sentinel.rs`), for its ConfigMap and Deployment.
pub const SENTINEL: &str = "bench-sentinel";

/// Watches the namespace's Deployments but the sentinel; every event is timestamped on
/// arrival.
pub fn watch_deployments(client: &Client, ns: &str) -> mpsc::UnboundedReceiver<Seen> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = watcher::Config::default().fields(&format!("metadata.name!={SENTINEL}"));
    tokio::spawn(async move {
        let mut events = watcher(api, cfg)
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(ev) = events.next().await {
            let Ok(d) = ev else { continue };
            let seen = Seen {
                name: d.metadata.name.clone().unwrap_or_default(),
                generation: d.metadata.generation.unwrap_or_default(),
                markers: markers(&d),
                complete: complete(&d),
                at: Instant::now(),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    rx
}

/// Counts the pods created in a namespace after the watch's initial list (every uid not
/// listed first), so a scenario can tell how many pods its changes made.
pub struct NewPods {
    count: Arc<AtomicUsize>,
    listed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl NewPods {
    /// Starts the watch; returns once its initial list is in.
    pub async fn watch(client: &Client, ns: &str) -> Result<NewPods> {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let count = Arc::new(AtomicUsize::new(0));
        let listed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (counted, done) = (count.clone(), listed.clone());
        let task = tokio::spawn(async move {
            let mut known = std::collections::HashSet::new();
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = events.next().await {
                let pod = match ev {
                    Ok(watcher::Event::InitDone) => {
                        done.store(true, Ordering::Relaxed);
                        continue;
                    }
                    Ok(
                        watcher::Event::InitApply(p)
                        | watcher::Event::Apply(p)
                        | watcher::Event::Delete(p),
                    ) => p,
                    _ => continue,
                };
                let new = known.insert(pod.metadata.uid.unwrap_or_default());
                if new && done.load(Ordering::Relaxed) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let pods = NewPods {
            count,
            listed,
            task,
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while !pods.listed.load(Ordering::Relaxed) {
            if Instant::now() > deadline {
                return Err("the pod watch did not list within 120 s".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(pods)
    }

    /// Pods created since the initial list.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for NewPods {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "d", "generation": generation },
            "spec": { "replicas": 2, "selector": {}, "template": {} },
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn complete_as_kubectl_rollout_status_judges_it() {
        let done = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 2 });
        assert!(complete(&with(2, done.clone())));
        assert!(
            !complete(&with(3, done)),
            "the new generation not yet observed"
        );
        let old_left = json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
            "availableReplicas": 2 });
        assert!(
            !complete(&with(2, old_left)),
            "an old replica still counted"
        );
        let unavailable = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 1 });
        assert!(!complete(&with(2, unavailable)), "a new pod not available");
        let partial = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
            "availableReplicas": 2 });
        assert!(!complete(&with(2, partial)), "one replica not updated");
        assert!(!complete(&with(2, json!(null))), "no status yet");
    }
}
