//! S3: one Secret used by many Deployments changes. With pods: the time until all are
//! written and until all their rollouts are complete, pods created per pod replaced, and,
//! with waves, the most rolling at once. Without pods, at several sizes: the time to the
//! last write and writes per second, beside the ceiling: the same patches written by the
//! bench itself as fast as the API server takes them.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

use super::{Ctx, Plane, Sizes, rolled_out, until};
use crate::{
    cluster::{self, NewPods, Result},
    report::{CeilingPoint, FanoutPoint},
};

pub struct Fanout {
    /// From the update to the last Deployment written.
    pub written_s: f64,
    /// From the update to the last rollout complete.
    pub rolled_out_s: f64,
    /// Pods created ÷ pods that had to be replaced (1.0: each replaced once).
    pub pods_per_replica: f64,
    /// The most Deployments written and not yet rolled out at once, as their events show.
    pub most_rolling: usize,
}

/// The flags S3 runs kube-reloader with: no window, no write rate limit, `concurrency`
/// writes in flight.
fn flags(concurrency: usize) -> Vec<String> {
    vec![
        "--coalesce-window=0s".into(),
        "--reload-rate=0".into(),
        format!("--write-concurrency={concurrency}"),
    ]
}

/// `n` Deployments of `replicas` pods using the Secret `shared`, in a new namespace.
async fn setup(ctx: &Ctx<'_>, scenario: &str, n: usize, replicas: i32) -> Result<String> {
    let ns = ctx.namespace(scenario).await?;
    create_fleet(ctx.client(), &ns, n, replicas).await?;
    Ok(ns)
}

async fn create_fleet(client: &kube::Client, ns: &str, n: usize, replicas: i32) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
    cluster::create_all(&secrets, "Secrets", vec![cluster::secret("shared", 64)]).await?;
    let shared = ["shared".to_owned()];
    let ds = (0..n).map(|i| cluster::deployment(&format!("app-{i}"), replicas, &[], &shared));
    cluster::create_all(&deps, "Deployments", ds.collect()).await
}

async fn rotate(client: &kube::Client, ns: &str) -> Result<Instant> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let patch = json!({ "stringData": { "k": "rotated" } });
    secrets
        .patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("rotate the Secret: {e}"))?;
    Ok(Instant::now())
}

/// S3 with pods; with `waves`, kube-reloader's `--max-concurrent-rollouts` that many.
pub async fn with_pods(
    ctx: &Ctx<'_>,
    sz: &Sizes,
    concurrency: usize,
    waves: Option<usize>,
) -> Result<Fanout> {
    let client = ctx.client();
    let n = sz.s3_workloads;
    let scenario = if waves.is_some() { "s3w" } else { "s3" };
    let ns = setup(ctx, scenario, n, sz.replicas).await?;
    let mut flags = flags(concurrency);
    flags.extend(waves.map(|w| format!("--max-concurrent-rollouts={w}")));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (op, _) = ctx.start(&ns, &flags).await?;
    let mut rx = cluster::watch_deployments(client, &ns);
    rolled_out(&mut rx, n).await?;
    let pods = NewPods::watch(client, &ns).await?;
    let t0 = rotate(client, &ns).await?;
    let mut written: HashMap<String, i64> = HashMap::new();
    let mut completed = HashSet::new();
    let (mut last_write, mut last_complete) = (t0, t0);
    let mut shown = 0;
    let mut most_rolling = 0;
    let all = until(&mut rx, Duration::from_secs(900), |s| {
        if !s.markers.is_empty() && !written.contains_key(&s.name) {
            written.insert(s.name.clone(), s.generation);
            last_write = s.at;
        }
        if s.complete
            && written.get(&s.name).is_some_and(|g| s.generation >= *g)
            && completed.insert(s.name.clone())
        {
            last_complete = s.at;
            if completed.len() >= shown + n.div_ceil(5) || completed.len() == n {
                shown = completed.len();
                eprintln!(
                    "    written {}/{n}, rolled out {shown}/{n} ({:.1}s)",
                    written.len(),
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        most_rolling = most_rolling.max(written.len() - completed.len());
        completed.len() == n
    })
    .await;
    let to_replace = (n * sz.replicas as usize).max(1) as f64;
    let created = pods.count();
    op.stop().await;
    cluster::delete_namespace(client, &ns).await;
    if !all {
        return Err(format!(
            "only {} of {n} written, {} rolled out",
            written.len(),
            completed.len()
        ));
    }
    eprintln!("    pods created: {created} for {to_replace} to replace");
    Ok(Fanout {
        written_s: (last_write - t0).as_secs_f64(),
        rolled_out_s: (last_complete - t0).as_secs_f64(),
        pods_per_replica: created as f64 / to_replace,
        most_rolling,
    })
}

/// S3 without pods at `n` Deployments: the time to the last write, or how many were
/// written when `sz.s3_cap` ran out.
pub async fn writes(
    ctx: &Ctx<'_>,
    sz: &Sizes,
    concurrency: usize,
    n: usize,
) -> Result<FanoutPoint> {
    let client = ctx.client();
    let ns = setup(ctx, &format!("s3-{n}"), n, 0).await?;
    let flags = flags(concurrency);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (op, _) = ctx.start(&ns, &flags).await?;
    let mut rx = cluster::watch_deployments(client, &ns);
    super::listed(&mut rx, n).await?;
    let t0 = rotate(client, &ns).await?;
    let mut written = HashSet::new();
    let mut last = t0;
    let mut shown = 0;
    until(&mut rx, sz.s3_cap, |s| {
        if !s.markers.is_empty() && written.insert(s.name.clone()) {
            last = s.at;
            if written.len() >= shown + n.div_ceil(5) {
                shown = written.len();
                eprintln!(
                    "    written {shown}/{n} ({:.1}s)",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        written.len() == n
    })
    .await;
    op.stop().await;
    cluster::delete_namespace_and_wait(client, &ns, Duration::from_secs(120)).await;
    let done = written.len() == n;
    let elapsed = if done { last - t0 } else { sz.s3_cap };
    if !done {
        eprintln!(
            "    only {} of {n} written within {:?}",
            written.len(),
            sz.s3_cap
        );
    }
    Ok(FanoutPoint::new(n, written.len(), elapsed.as_secs_f64()))
}

/// The write ceiling at `n` Deployments: the bench writes the patch S3 needs (the env-var
/// marker, guarded by the uid, kube-reloader's field manager) to every one of them,
/// `concurrency` at once (0: all), as kube-reloader with `--reload-rate=0` and that
/// `--write-concurrency` does, as the operators' identity (audited as theirs are),
/// retrying what the API server turns away, and times the last answer.
pub async fn ceiling(plane: &Plane, n: usize, concurrency: usize) -> Result<CeilingPoint> {
    let client = &plane.client;
    let ns = format!("bench-ceiling-{n}-{}", plane.run);
    cluster::namespace(client, &ns).await?;
    create_fleet(client, &ns, n, 0).await?;
    let deps: Api<Deployment> = Api::namespaced(plane.as_operator.clone(), &ns);
    let listed = deps
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list Deployments: {e}"))?;
    let targets: Vec<(String, String)> = listed
        .items
        .into_iter()
        .filter_map(|d| Some((d.metadata.name?, d.metadata.uid?)))
        .collect();
    let params = PatchParams {
        field_manager: Some("kube-reloader".into()),
        ..PatchParams::default()
    };
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let t0 = Instant::now();
    let turned_away = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<()>> = stream::iter(&targets)
        .map(|(name, uid)| {
            let (deps, params, turned_away) = (&deps, &params, &turned_away);
            async move {
                let body = json!({
                    "metadata": { "uid": uid },
                    "spec": { "template": { "spec": { "containers": [{ "name": "app",
                        "env": [{ "name": "STAKATER_SHARED_SECRET", "value": hash }] }] } } }
                });
                let mut attempt = 0;
                loop {
                    let patch = Patch::Strategic(&body);
                    match deps.patch(name, params, &patch).await {
                        Ok(_) => return Ok(()),
                        Err(_) if attempt < 20 => {
                            turned_away.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        }
                        Err(e) => return Err(format!("ceiling patch {name}: {e}")),
                    }
                }
            }
        })
        .buffer_unordered(match concurrency {
            0 => targets.len().max(1),
            c => c,
        })
        .collect()
        .await;
    let elapsed = t0.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    cluster::delete_namespace_and_wait(client, &ns, Duration::from_secs(120)).await;
    let retried = turned_away.into_inner();
    eprintln!(
        "    ceiling at {n}: {elapsed:.2}s, {:.0} writes/s{}",
        n as f64 / elapsed,
        if retried > 0 {
            format!(" ({retried} retried)")
        } else {
            String::new()
        }
    );
    Ok(CeilingPoint {
        deployments: n,
        s: elapsed,
        writes_per_s: n as f64 / elapsed,
        retried,
    })
}
