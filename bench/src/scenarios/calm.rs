//! S4: five ConfigMaps of one Deployment changed within a second, and a Secret changing
//! every 100 ms; rollouts counted with the operator's default settings.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Ctx, Sizes, listed};
use crate::cluster::{self, Result, Seen};

pub struct Calm {
    pub burst_rollouts: i64,
    pub flap_rollouts: i64,
    pub flap_changes: usize,
}

/// Waits until no Deployment event arrived for `quiet`; returns the last generations.
async fn settle(rx: &mut UnboundedReceiver<Seen>, quiet: Duration) -> HashMap<String, i64> {
    let mut generations = HashMap::new();
    let cap = Instant::now() + Duration::from_secs(90);
    while let Ok(Some(s)) = tokio::time::timeout(quiet, rx.recv()).await {
        generations.insert(s.name.clone(), s.generation);
        if Instant::now() > cap {
            break;
        }
    }
    generations
}

pub async fn run(ctx: &Ctx<'_>, sz: &Sizes) -> Result<Calm> {
    let client = ctx.client();
    let ns = ctx.namespace("s4").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let five: Vec<String> = (0..5).map(|i| format!("part-{i}")).collect();
    cluster::create_all(
        &cms,
        "ConfigMaps",
        five.iter().map(|c| cluster::configmap(c, 64)).collect(),
    )
    .await?;
    cluster::create_all(&secrets, "Secrets", vec![cluster::secret("flappy", 64)]).await?;
    let burst = cluster::deployment("burst", 0, &five, &[]);
    let flap = cluster::deployment("flap", 0, &[], &["flappy".to_owned()]);
    cluster::create_all(&deps, "Deployments", vec![burst, flap]).await?;
    let (op, _) = ctx.start(&ns, &[]).await?;
    let mut rx = cluster::watch_deployments(client, &ns);
    listed(&mut rx, 2).await?;
    for (i, c) in five.iter().enumerate() {
        let patch = json!({ "data": { "k": "changed" } });
        cms.patch(c, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
        if i < 4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let generations = settle(&mut rx, Duration::from_secs(8)).await;
    let burst_rollouts = generations.get("burst").copied().unwrap_or(1) - 1;
    eprintln!(
        "    burst: {burst_rollouts} rollout(s); flapping for {:?}",
        sz.s4_flap
    );
    let start = Instant::now();
    let mut flap_changes = 0;
    while start.elapsed() < sz.s4_flap {
        flap_changes += 1;
        let patch = json!({ "stringData": { "k": flap_changes.to_string() } });
        secrets
            .patch("flappy", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let generations = settle(&mut rx, Duration::from_secs(8)).await;
    let flap_now = match generations.get("flap") {
        Some(g) => *g,
        None => deps
            .get("flap")
            .await
            .map_err(|e| e.to_string())?
            .metadata
            .generation
            .unwrap_or(1),
    };
    op.stop().await;
    cluster::delete_namespace(client, &ns).await;
    Ok(Calm {
        burst_rollouts,
        flap_rollouts: flap_now - 1,
        flap_changes,
    })
}
