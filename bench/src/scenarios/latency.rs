//! S1: one ConfigMap per Deployment, updates at a steady rate; latency to the new template
//! and to the rollout complete, pods created, and the operator's API requests per reload.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{Ctx, Sizes, rolled_out, until};
use crate::{
    audit,
    cluster::{self, NewPods, Result},
    report::ApiCost,
};

/// The rollout a reload started, followed to its end: the generation the reload wrote
/// (seen with its marker) and when the change was made.
struct Rolling {
    changed: Instant,
    generation: i64,
}

pub struct Latency {
    pub ms: Vec<f64>,
    /// From the update to the rollout complete (every pod of the new ReplicaSet Ready).
    pub rollout_ms: Vec<f64>,
    /// Pods created ÷ pods the updates had to replace (1.0: each replaced once).
    pub pods_per_replica: f64,
    pub api: ApiCost,
}

pub async fn run(ctx: &Ctx<'_>, sz: &Sizes) -> Result<Latency> {
    let client = ctx.client();
    let ns = ctx.namespace("s1").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let n = sz.s1_workloads;
    let names: Vec<String> = (0..n).map(|i| format!("cfg-{i}")).collect();
    cluster::create_all(
        &cms,
        "ConfigMaps",
        names.iter().map(|c| cluster::configmap(c, 64)).collect(),
    )
    .await?;
    let ds =
        (0..n).map(|i| cluster::deployment(&format!("app-{i}"), sz.replicas, &names[i..=i], &[]));
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let (op, _) = ctx.start(&ns, &["--coalesce-window=0s"]).await?;
    let mut rx = cluster::watch_deployments(client, &ns);
    rolled_out(&mut rx, n).await?;
    let pods = NewPods::watch(client, &ns).await?;
    let requests = audit::Window::open(&ctx.plane.audit_log)?;
    let mut accepted: HashMap<String, Instant> = HashMap::new();
    let start = tokio::time::Instant::now();
    let every = Duration::from_secs_f64(1.0 / sz.s1_rate);
    eprintln!("    {} updates at {}/s", sz.s1_updates, sz.s1_rate);
    for i in 0..sz.s1_updates {
        tokio::time::sleep_until(start + every * i as u32).await;
        let idx = i % n;
        let patch = json!({ "data": { "k": format!("update-{i}") } });
        cms.patch(&names[idx], &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("update: {e}"))?;
        accepted.insert(format!("app-{idx}"), Instant::now());
    }
    let mut ms = Vec::new();
    let mut rollout_ms = Vec::new();
    let mut template_ms: HashMap<String, f64> = HashMap::new();
    let mut pending: BTreeMap<String, Instant> = accepted.into_iter().collect();
    let mut rolling: HashMap<String, Rolling> = HashMap::new();
    let drained = until(&mut rx, Duration::from_secs(600), |s| {
        if !s.markers.is_empty()
            && let Some(t) = pending.get(&s.name).copied()
            && s.at >= t
        {
            let latency = (s.at - t).as_secs_f64() * 1000.0;
            ms.push(latency);
            template_ms.insert(s.name.clone(), latency);
            pending.remove(&s.name);
            let generation = s.generation;
            rolling.insert(
                s.name.clone(),
                Rolling {
                    changed: t,
                    generation,
                },
            );
        }
        if s.complete
            && let Some(r) = rolling.get(&s.name)
            && s.generation >= r.generation
        {
            rollout_ms.push((s.at - r.changed).as_secs_f64() * 1000.0);
            rolling.remove(&s.name);
        }
        pending.is_empty() && rolling.is_empty()
    })
    .await;
    let mut samples = String::from("workload,latency_ms\n");
    for (name, latency) in &template_ms {
        samples.push_str(&format!("{name},{latency:.3}\n"));
    }
    let csv = ctx
        .plane
        .out
        .join(format!("s1_latency_{}.csv", ctx.subject.slug));
    std::fs::write(&csv, samples).map_err(|e| format!("{}: {e}", csv.display()))?;
    // What the operator asked for meanwhile, its Events and state flushes included.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let api = ApiCost::per_reload(requests.close()?, ms.len());
    let to_replace = (sz.s1_updates * sz.replicas as usize).max(1) as f64;
    let pods_per_replica = pods.count() as f64 / to_replace;
    op.stop().await;
    cluster::delete_namespace(client, &ns).await;
    if !drained {
        return Err(format!(
            "{} workloads never rolled, {} rollouts never completed",
            pending.len(),
            rolling.len()
        ));
    }
    eprintln!(
        "    pods created: {} for {to_replace} to replace; {:.2} API requests per reload",
        pods.count(),
        api.total
    );
    Ok(Latency {
        ms,
        rollout_ms,
        pods_per_replica,
        api,
    })
}
