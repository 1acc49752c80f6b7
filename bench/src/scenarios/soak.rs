//! Soak: 10 changes per second across 50 ConfigMaps of 50 Deployments, sampling RSS and
//! open file descriptors.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{Ctx, Sizes};
use crate::cluster::{self, Result};

/// One sample of the soak: seconds since start, RSS and open file descriptors.
pub struct SoakSample {
    pub at_s: f64,
    pub rss_mib: f64,
    pub fds: usize,
}

/// Soak: 10 changes per second across 50 ConfigMaps of 50 Deployments for `sz.soak`,
/// sampling RSS and open file descriptors every 10 s (every 2 s in quick mode).
pub async fn run(ctx: &Ctx<'_>, sz: &Sizes) -> Result<Vec<SoakSample>> {
    let client = ctx.client();
    let ns = ctx.namespace("soak").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..50).map(|i| format!("cfg-{i}")).collect();
    cluster::create_all(
        &cms,
        "ConfigMaps",
        names.iter().map(|c| cluster::configmap(c, 64)).collect(),
    )
    .await?;
    let ds = (0..50).map(|i| cluster::deployment(&format!("app-{i}"), 0, &names[i..=i], &[]));
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let (op, _) = ctx.start(&ns, &[]).await?;
    let every = if sz.soak < Duration::from_secs(60) {
        2
    } else {
        10
    };
    let start = tokio::time::Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = start;
    let mut i = 0u64;
    while start.elapsed() < sz.soak {
        if tokio::time::Instant::now() >= next_sample {
            let fds = std::fs::read_dir(format!("/proc/{}/fd", op.pid)).map_or(0, |d| d.count());
            let s = SoakSample {
                at_s: start.elapsed().as_secs_f64(),
                rss_mib: op.rss_mib()?,
                fds,
            };
            eprintln!(
                "    {:>5.0}s RSS {:.1} MiB, {} fds",
                s.at_s, s.rss_mib, s.fds
            );
            samples.push(s);
            next_sample += Duration::from_secs(every);
        }
        let patch = json!({ "data": { "k": format!("soak-{i}") } });
        cms.patch(
            &names[(i % 50) as usize],
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| format!("soak change: {e}"))?;
        i += 1;
        tokio::time::sleep_until(start + Duration::from_millis(100 * i)).await;
    }
    op.stop().await;
    cluster::delete_namespace(client, &ns).await;
    Ok(samples)
}
