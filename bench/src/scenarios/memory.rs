//! S2 and S5: many 8 KiB ConfigMaps and Secrets with a Deployment per 20 of them, at each
//! of the profile's sizes: time to ready, RSS after a quiet period, peak RSS; at the
//! headline size also S5, the CPU time of a further idle minute.

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use kube::Api;

use super::{Ctx, Sizes};
use crate::{
    cluster::{self, Result},
    report::MemoryPoint,
};

/// Configs per Deployment.
const PER_WORKLOAD: usize = 20;

/// S2 at `configs` configs; with `idle`, S5 too (CPU seconds per minute).
pub async fn run(
    ctx: &Ctx<'_>,
    sz: &Sizes,
    configs: usize,
    idle: bool,
) -> Result<(MemoryPoint, Option<f64>)> {
    let client = ctx.client();
    let ns = ctx.namespace(&format!("s2-{configs}")).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let n = configs / 2;
    let cm_names: Vec<String> = (0..n).map(|i| format!("cfg-{i}")).collect();
    let sec_names: Vec<String> = (0..n).map(|i| format!("sec-{i}")).collect();
    let cm_objs = cm_names.iter().map(|c| cluster::configmap(c, sz.s2_bytes));
    cluster::create_all(&cms, "ConfigMaps", cm_objs.collect()).await?;
    let sec_objs = sec_names.iter().map(|s| cluster::secret(s, sz.s2_bytes));
    cluster::create_all(&secrets, "Secrets", sec_objs.collect()).await?;
    let workloads = configs / PER_WORKLOAD;
    let ds = (0..workloads).map(|i| {
        let (c, s) = (i % n, (i + n / 2) % n);
        cluster::deployment(&format!("app-{i}"), 0, &cm_names[c..=c], &sec_names[s..=s])
    });
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let (op, ready_s) = ctx.start(&ns, &[]).await?;
    eprintln!(
        "    ready in {ready_s:.2}s (the sentinel rolled); quiet for {:?}",
        sz.quiet
    );
    tokio::time::sleep(sz.quiet).await;
    let rss_mib = op.rss_mib()?;
    let idle_cpu = if idle {
        let cpu0 = op.cpu()?;
        tokio::time::sleep(sz.s5_idle).await;
        let s = cpu0.since(op.cpu()?);
        Some(s * 60.0 / sz.s5_idle.as_secs_f64())
    } else {
        None
    };
    let peak_mib = op.peak_rss_mib()?;
    eprintln!(
        "    RSS {rss_mib:.1} MiB, peak {peak_mib:.1} MiB{}",
        idle_cpu.map_or(String::new(), |c| format!(", idle {c:.3} CPU-s per minute"))
    );
    op.stop().await;
    cluster::delete_namespace_and_wait(client, &ns, Duration::from_secs(600)).await;
    Ok((
        MemoryPoint {
            configs,
            workloads,
            ready_s,
            rss_mib,
            peak_mib,
        },
        idle_cpu,
    ))
}
