//! "Ready", the same observable fact for every reloader: a sentinel ConfigMap's change has
//! rolled its Deployment. A reloader's own endpoints cannot say it (stakater's `/metrics`
//! answers before its informers have synced), and a change it saw only in its initial list
//! it never rolls, so the sentinel is changed again every 250 ms until one lands.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::{
    cluster::{self, Result},
    operator::Operator,
};

const NAME: &str = cluster::SENTINEL;
const EVERY: Duration = Duration::from_millis(250);

/// The sentinel ConfigMap and a Deployment without pods using it, auto-annotated; its own
/// coalescing window is 0 for kube-reloader (others ignore the annotation).
pub async fn create(client: &Client, ns: &str) -> Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let pp = PostParams::default();
    cms.create(&pp, &cluster::configmap(NAME, 16))
        .await
        .map_err(|e| format!("create the sentinel ConfigMap: {e}"))?;
    let mut d = cluster::deployment(NAME, 0, &[NAME.to_owned()], &[]);
    d.metadata
        .annotations
        .get_or_insert_default()
        .insert("kube-reloader.io/coalesce-window".into(), "0s".into());
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deps.create(&pp, &d)
        .await
        .map_err(|e| format!("create the sentinel Deployment: {e}"))?;
    Ok(())
}

/// Changes the sentinel until its Deployment carries a reloader's marker; returns when the
/// marker was first seen. Fails when `op` exits or `timeout` passes.
pub async fn wait_rolled(
    client: &Client,
    ns: &str,
    op: &mut Operator,
    timeout: Duration,
) -> Result<Instant> {
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut marked = watcher(deps, cfg)
        .default_backoff()
        .applied_objects()
        .filter_map(|d| async move { d.ok().filter(|d| !cluster::markers(d).is_empty()) })
        .boxed();
    let deadline = Instant::now() + timeout;
    let mut i = 0u64;
    loop {
        i += 1;
        op.check_running()?;
        if Instant::now() > deadline {
            return Err(format!(
                "not ready within {timeout:?}: the sentinel ConfigMap's changes never rolled \
                 its Deployment; see {}",
                op.log.display()
            ));
        }
        let patch = json!({ "data": { "k": format!("sentinel-{i}") } });
        cms.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("change the sentinel: {e}"))?;
        if let Ok(Some(_)) = tokio::time::timeout(EVERY, marked.next()).await {
            return Ok(Instant::now());
        }
    }
}
