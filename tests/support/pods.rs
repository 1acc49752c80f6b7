//! Pods on the shared plane: kwok plays the kubelet of its fake nodes (`hack/cluster`), so
//! scheduled pods become Running and Ready, pods being deleted go, and rollouts complete.
//! Workloads with pods, `kubectl rollout status`, their revisions (ReplicaSets,
//! ControllerRevisions), and a log of every pod event in a namespace to count the pods a
//! change created.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::{ControllerRevision, ReplicaSet},
    core::v1::Pod,
};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
    runtime::watcher,
};
use serde_json::{Value, json};

use super::{TestNs, bin_dir, ns::Namespaced, wait_for};

/// The workload kinds whose pods a reload replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
        }
    }

    fn resource(self) -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", self.name()))
    }

    /// The pod label naming the revision a pod was made from.
    fn revision_label(self) -> &'static str {
        match self {
            Kind::Deployment => "pod-template-hash",
            _ => "controller-revision-hash",
        }
    }
}

/// A workload named `name` with pods labelled `app: NAME` whose container `app` takes
/// `configs` by envFrom; `replicas` unless a DaemonSet (one pod per node). `spec` is merged
/// into its spec (strategy, minReadySeconds, …).
pub fn workload(
    kind: Kind,
    name: &str,
    replicas: i32,
    annotations: Value,
    configs: &[&str],
    spec: Value,
) -> Value {
    let pod = json!({ "containers": [{ "name": "app", "image": "example.invalid/app:1",
        "envFrom": super::configmap_refs(configs) }] });
    let mut body = json!({
        "selector": { "matchLabels": { "app": name } },
        "template": { "metadata": { "labels": { "app": name } }, "spec": pod }
    });
    if kind != Kind::DaemonSet {
        body["replicas"] = json!(replicas);
    }
    for (k, v) in spec.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    json!({
        "apiVersion": "apps/v1", "kind": kind.name(),
        "metadata": { "name": name, "annotations": annotations },
        "spec": body
    })
}

fn api(ns: &TestNs, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, &kind.resource())
}

pub async fn create(ns: &TestNs, kind: Kind, obj: Value) {
    let obj: DynamicObject = serde_json::from_value(obj).expect("a workload");
    api(ns, kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", kind.name()));
}

pub async fn get(ns: &TestNs, kind: Kind, name: &str) -> DynamicObject {
    api(ns, kind)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", kind.name()))
}

/// The value of env var `var` on container `app` of the workload's pod template.
pub fn template_env(obj: &DynamicObject, var: &str) -> Option<String> {
    obj.data["spec"]["template"]["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "app")?["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)?["value"]
        .as_str()
        .map(str::to_owned)
}

/// Waits until the workload's template has `var` = `want` (the operator wrote it).
pub async fn wait_template_env(ns: &TestNs, kind: Kind, name: &str, var: &str, want: &str) {
    wait_for(&format!("{name}: {var}={want}"), super::WAIT, || async {
        match template_env(&get(ns, kind, name).await, var) {
            Some(v) if v == want => Ok(()),
            other => Err(other),
        }
    })
    .await;
}

/// `kubectl rollout status`, as a user waits for a rollout: panics unless it reports the
/// rollout done within 90 s. Run as a child process, so the test's runtime keeps running.
pub async fn rollout_status(ns: &TestNs, kind: Kind, name: &str) -> String {
    let target = format!("{}/{name}", kind.name().to_lowercase());
    let out = tokio::process::Command::new(bin_dir().join("kubectl"))
        .args([
            "rollout",
            "status",
            &target,
            "-n",
            &ns.name,
            "--timeout=90s",
        ])
        .env("KUBECONFIG", super::control_plane())
        .output()
        .await
        .expect("run kubectl rollout status");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl rollout status {target}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Not being deleted and not finished.
pub fn is_live(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    p.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Running with the Ready condition true.
pub fn is_ready(p: &Pod) -> bool {
    let status = p.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    running && ready
}

fn app_of(p: &Pod) -> Option<&str> {
    p.metadata.labels.as_ref()?.get("app").map(String::as_str)
}

/// The revision (pod-template-hash or controller-revision-hash) a pod was made from.
pub fn revision(kind: Kind, p: &Pod) -> String {
    let labels = p.metadata.labels.as_ref();
    labels
        .and_then(|l| l.get(kind.revision_label()))
        .cloned()
        .unwrap_or_default()
}

/// The value of env var `var` on the pod's container `app`.
pub fn pod_env(p: &Pod, var: &str) -> Option<String> {
    super::container_env(&p.spec.as_ref()?.containers, "app", var)
}

/// The live pods of workload `name`.
pub async fn live_pods(ns: &TestNs, name: &str) -> Vec<Pod> {
    ns.list::<Pod>()
        .await
        .into_iter()
        .filter(|p| app_of(p) == Some(name) && is_live(p))
        .collect()
}

/// Waits until workload `name` has exactly `n` live pods, all Ready; returns them.
pub async fn wait_ready_pods(ns: &TestNs, name: &str, n: usize) -> Vec<Pod> {
    wait_for(
        &format!("{n} Ready pods of {name}"),
        super::WAIT,
        || async {
            let pods = live_pods(ns, name).await;
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            if pods.len() == n && ready == n {
                Ok(pods)
            } else {
                Err((pods.len(), ready))
            }
        },
    )
    .await
}

/// The plane's fake nodes (kwok's), which a DaemonSet runs one pod on each of.
pub async fn fake_nodes(ns: &TestNs) -> usize {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(ns.client.clone());
    let lp = kube::api::ListParams::default().labels("type=kwok");
    let list = nodes.list(&lp).await.expect("list the nodes");
    list.items.len()
}

/// The objects of type `K` in the namespace owned by `owner_kind` `owner`.
async fn owned_by<K>(ns: &TestNs, owner_kind: &str, owner: &str) -> Vec<K>
where
    K: Namespaced,
{
    ns.list::<K>()
        .await
        .into_iter()
        .filter(|o| {
            o.meta()
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.kind == owner_kind && r.name == owner)
        })
        .collect()
}

/// The ReplicaSets of Deployment `name`: one per revision of its pod template.
pub async fn replica_sets(ns: &TestNs, name: &str) -> Vec<ReplicaSet> {
    owned_by(ns, "Deployment", name).await
}

/// How many revisions of its pod template the workload has had: its ReplicaSets
/// (Deployment) or ControllerRevisions (StatefulSet, DaemonSet).
pub async fn revisions(ns: &TestNs, kind: Kind, name: &str) -> usize {
    match kind {
        Kind::Deployment => replica_sets(ns, name).await.len(),
        _ => owned_by::<ControllerRevision>(ns, kind.name(), name)
            .await
            .len(),
    }
}

/// Every pod event in a namespace from the moment it is started: pods created since, and
/// the live and Ready pods of a workload after each event. A watch, so a pod that came and
/// went during a relist could be missed; the revision counts above do not depend on it.
pub struct PodLog {
    inner: Arc<Mutex<LogInner>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct LogInner {
    listed: bool,
    known: HashSet<String>,
    /// Pods first seen after the initial list, in that order.
    created: Vec<Pod>,
    /// Every event after the initial list: the pod, and whether it was deleted.
    events: Vec<(Pod, bool)>,
}

impl PodLog {
    /// Starts the watch; returns once its initial list is in.
    pub async fn start(ns: &TestNs) -> PodLog {
        let inner = Arc::new(Mutex::new(LogInner::default()));
        let api: Api<Pod> = ns.api();
        let log = inner.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = events.next().await {
                let mut l = log.lock().unwrap();
                match ev {
                    Ok(watcher::Event::Init) => {}
                    Ok(watcher::Event::InitDone) => l.listed = true,
                    Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p)) => l.seen(p, false),
                    Ok(watcher::Event::Delete(p)) => l.seen(p, true),
                    Err(_) => {}
                }
            }
        });
        let log = PodLog { inner, task };
        wait_for("the pod watch listed", super::WAIT, || async {
            if log.inner.lock().unwrap().listed {
                Ok(())
            } else {
                Err("not yet")
            }
        })
        .await;
        log
    }

    /// The pods of workload `name` created since the log started, in order.
    pub fn created(&self, name: &str) -> Vec<Pod> {
        let l = self.inner.lock().unwrap();
        l.created
            .iter()
            .filter(|p| app_of(p) == Some(name))
            .cloned()
            .collect()
    }

    /// After each pod event of workload `name` since the start: (live pods, live Ready
    /// pods), starting from the pods listed at the start.
    pub fn counts(&self, name: &str, listed: &[Pod]) -> Vec<(usize, usize)> {
        let l = self.inner.lock().unwrap();
        let mut state: std::collections::BTreeMap<String, Pod> = listed
            .iter()
            .map(|p| (p.metadata.uid.clone().unwrap_or_default(), p.clone()))
            .collect();
        let mut out = Vec::new();
        for (p, deleted) in l.events.iter().filter(|(p, _)| app_of(p) == Some(name)) {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if *deleted {
                state.remove(&uid);
            } else {
                state.insert(uid, p.clone());
            }
            let live = state.values().filter(|p| is_live(p));
            let (n, ready) = live.fold((0, 0), |(n, r), p| (n + 1, r + usize::from(is_ready(p))));
            out.push((n, ready));
        }
        out
    }
}

impl LogInner {
    fn seen(&mut self, p: Pod, deleted: bool) {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let new = self.known.insert(uid);
        if !self.listed {
            return;
        }
        if new {
            self.created.push(p.clone());
        }
        self.events.push((p, deleted));
    }
}

impl Drop for PodLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
