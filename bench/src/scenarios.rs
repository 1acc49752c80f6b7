//! The scenarios. Each makes its own namespace, starts the operator scoped to it, measures,
//! and cleans up.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    cluster::{self, NewPods, Result, Seen},
    operator::{Launch, Operator},
};

pub struct Sizes {
    /// Pods per Deployment in S1 and S3 (the rollouts measured); the others have none.
    pub replicas: i32,
    pub s1_workloads: usize,
    pub s1_updates: usize,
    pub s1_rate: f64,
    pub s2_configs: usize,
    pub s2_bytes: usize,
    pub s2_workloads: usize,
    pub s3_workloads: usize,
    /// `--max-concurrent-rollouts` for S3 with waves.
    pub s3_wave: usize,
    pub s4_flap: Duration,
    pub s5_idle: Duration,
    pub soak: Duration,
}

impl Sizes {
    pub fn full() -> Self {
        Sizes {
            replicas: 1,
            s1_workloads: 1000,
            s1_updates: 300,
            s1_rate: 10.0,
            s2_configs: 10_000,
            s2_bytes: 8192,
            s2_workloads: 1000,
            s3_workloads: 1000,
            s3_wave: 50,
            s4_flap: Duration::from_secs(60),
            s5_idle: Duration::from_secs(60),
            soak: Duration::from_secs(600),
        }
    }

    pub fn quick() -> Self {
        Sizes {
            replicas: 1,
            s1_workloads: 40,
            s1_updates: 30,
            s1_rate: 10.0,
            s2_configs: 200,
            s2_bytes: 8192,
            s2_workloads: 40,
            s3_workloads: 40,
            s3_wave: 5,
            s4_flap: Duration::from_secs(5),
            s5_idle: Duration::from_secs(5),
            soak: Duration::from_secs(20),
        }
    }
}

pub struct Ctx {
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub operator: PathBuf,
    pub is_ours: bool,
    pub out: PathBuf,
    pub run: String,
}

impl Ctx {
    async fn start(&self, ns: &str, ours: &[&str]) -> Result<Operator> {
        let log = self.out.join(format!("{ns}-operator.log"));
        let mut op = Operator::start(Launch {
            binary: &self.operator,
            kubeconfig: &self.kubeconfig,
            namespace: ns,
            ours,
            is_ours: self.is_ours,
            log,
        })
        .await?;
        op.wait_ready(self.is_ours, Duration::from_secs(600))
            .await?;
        Ok(op)
    }

    async fn namespace(&self, scenario: &str) -> Result<String> {
        let ns = format!("bench-{scenario}-{}", self.run);
        cluster::namespace(&self.client, &ns).await?;
        Ok(ns)
    }
}

/// Reads watch events until `done` says so or `timeout` passes; returns whether done.
async fn until(
    rx: &mut UnboundedReceiver<Seen>,
    timeout: Duration,
    mut done: impl FnMut(&Seen) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(seen)) if done(&seen) => return true,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return false,
        }
    }
}

/// Waits until the watch has listed all `n` Deployments (the initial list).
async fn listed(rx: &mut UnboundedReceiver<Seen>, n: usize) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    let ok = until(rx, Duration::from_secs(120), |s| {
        names.insert(s.name.clone());
        names.len() >= n
    })
    .await;
    ok.then_some(())
        .ok_or_else(|| format!("only {} of {n} Deployments listed", names.len()))
}

/// Waits until all `n` Deployments are listed with their rollouts complete (every pod
/// Ready), printing progress.
async fn rolled_out(rx: &mut UnboundedReceiver<Seen>, n: usize) -> Result<()> {
    let mut complete: HashMap<String, bool> = HashMap::new();
    let started = Instant::now();
    let mut shown = 0;
    let ok = until(rx, Duration::from_secs(600), |s| {
        complete.insert(s.name.clone(), s.complete);
        let done = complete.values().filter(|c| **c).count();
        if done >= shown + n.div_ceil(5) || done == n {
            shown = done;
            eprintln!(
                "    rolled out: {done}/{n} Deployments ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
        done == n
    })
    .await;
    let done = complete.values().filter(|c| **c).count();
    ok.then_some(())
        .ok_or_else(|| format!("only {done} of {n} Deployments rolled out"))
}

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
    pub api_requests_per_reload: f64,
}

/// S1: one ConfigMap per Deployment, updates at a steady rate, latency to the new template.
pub async fn s1_latency(ctx: &Ctx, sz: &Sizes) -> Result<Latency> {
    let ns = ctx.namespace("s1").await?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
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
    let op = ctx.start(&ns, &["--coalesce-window=0s"]).await?;
    let mut rx = cluster::watch_deployments(&ctx.client, &ns);
    rolled_out(&mut rx, n).await?;
    let pods = NewPods::watch(&ctx.client, &ns).await?;
    let before = cluster::reloader_requests(&ctx.client).await?
        - cluster::scheduler_events(&ctx.client, &ns).await?;
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
    let drained = until(&mut rx, Duration::from_secs(300), |s| {
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
    let csv = ctx.out.join("s1_latency.csv");
    std::fs::write(&csv, samples).map_err(|e| format!("{}: {e}", csv.display()))?;
    // Less our own requests in the window (the ConfigMap updates) and the scheduler's Events
    // for the new pods.
    let after = cluster::reloader_requests(&ctx.client).await?
        - cluster::scheduler_events(&ctx.client, &ns).await?;
    let reloads = ms.len().max(1) as f64;
    let api = (after - before - sz.s1_updates as f64).max(0.0) / reloads;
    let to_replace = (sz.s1_updates * sz.replicas as usize).max(1) as f64;
    let pods_per_replica = pods.count() as f64 / to_replace;
    op.stop().await;
    cluster::delete_namespace(&ctx.client, &ns).await;
    if !drained {
        return Err(format!(
            "{} workloads never rolled, {} rollouts never completed",
            pending.len(),
            rolling.len()
        ));
    }
    eprintln!(
        "    pods created: {} for {to_replace} to replace",
        pods.count()
    );
    Ok(Latency {
        ms,
        rollout_ms,
        pods_per_replica,
        api_requests_per_reload: api,
    })
}

pub struct Memory {
    pub ready_s: f64,
    pub steady_mib: f64,
    pub peak_mib: f64,
    pub idle_cpu_s: f64,
}

/// S2 and S5: many 8 KiB ConfigMaps and Secrets; RSS, time to ready, then idle CPU.
pub async fn s2_memory_and_s5_idle(ctx: &Ctx, sz: &Sizes) -> Result<Memory> {
    let ns = ctx.namespace("s2").await?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let n = sz.s2_configs;
    let cm_names: Vec<String> = (0..n).map(|i| format!("cfg-{i}")).collect();
    let sec_names: Vec<String> = (0..n).map(|i| format!("sec-{i}")).collect();
    let cm_objs = cm_names.iter().map(|c| cluster::configmap(c, sz.s2_bytes));
    cluster::create_all(&cms, "ConfigMaps", cm_objs.collect()).await?;
    let sec_objs = sec_names.iter().map(|s| cluster::secret(s, sz.s2_bytes));
    cluster::create_all(&secrets, "Secrets", sec_objs.collect()).await?;
    let ds = (0..sz.s2_workloads)
        .map(|i| cluster::deployment(&format!("app-{i}"), 0, &cm_names[i..=i], &sec_names[i..=i]));
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let started = Instant::now();
    let op = ctx.start(&ns, &[]).await?;
    let ready_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady_mib = op.rss_mib()?;
    eprintln!(
        "    ready in {ready_s:.2}s, RSS {steady_mib:.1} MiB; idle for {:?}",
        sz.s5_idle
    );
    let cpu0 = op.cpu_seconds()?;
    tokio::time::sleep(sz.s5_idle).await;
    let idle_cpu_s = op.cpu_seconds()? - cpu0;
    let peak_mib = op.peak_rss_mib()?;
    op.stop().await;
    cluster::delete_namespace(&ctx.client, &ns).await;
    Ok(Memory {
        ready_s,
        steady_mib,
        peak_mib,
        idle_cpu_s,
    })
}

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

/// S3: one Secret used by many Deployments changes; time until all are written, and until
/// all their rollouts are complete. With `waves`, `--max-concurrent-rollouts` that many.
pub async fn s3_fanout(ctx: &Ctx, sz: &Sizes, waves: Option<usize>) -> Result<Fanout> {
    let ns = ctx
        .namespace(if waves.is_some() { "s3w" } else { "s3" })
        .await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    cluster::create_all(&secrets, "Secrets", vec![cluster::secret("shared", 64)]).await?;
    let shared = ["shared".to_owned()];
    let n = sz.s3_workloads;
    let ds = (0..n).map(|i| cluster::deployment(&format!("app-{i}"), sz.replicas, &[], &shared));
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let wave_flag = waves.map(|w| format!("--max-concurrent-rollouts={w}"));
    let mut flags = vec!["--coalesce-window=0s", "--reload-rate=0"];
    flags.extend(wave_flag.as_deref());
    let op = ctx.start(&ns, &flags).await?;
    let mut rx = cluster::watch_deployments(&ctx.client, &ns);
    rolled_out(&mut rx, n).await?;
    let pods = NewPods::watch(&ctx.client, &ns).await?;
    let patch = json!({ "stringData": { "k": "rotated" } });
    let t0 = Instant::now();
    secrets
        .patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| e.to_string())?;
    let mut written: HashMap<String, i64> = HashMap::new();
    let mut completed = std::collections::HashSet::new();
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
    cluster::delete_namespace(&ctx.client, &ns).await;
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

/// S4: five ConfigMaps of one Deployment changed within a second, and a Secret changing
/// every 100 ms; rollouts counted with the operator's default settings.
pub async fn s4_calm(ctx: &Ctx, sz: &Sizes) -> Result<Calm> {
    let ns = ctx.namespace("s4").await?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
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
    let op = ctx.start(&ns, &[]).await?;
    let mut rx = cluster::watch_deployments(&ctx.client, &ns);
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
    cluster::delete_namespace(&ctx.client, &ns).await;
    Ok(Calm {
        burst_rollouts,
        flap_rollouts: flap_now - 1,
        flap_changes,
    })
}

/// One sample of the soak: seconds since start, RSS and open file descriptors.
pub struct SoakSample {
    pub at_s: f64,
    pub rss_mib: f64,
    pub fds: usize,
}

/// Soak: 10 changes per second across 50 ConfigMaps of 50 Deployments for `sz.soak`,
/// sampling RSS and open file descriptors every 10 s (every 2 s in quick mode).
pub async fn soak(ctx: &Ctx, sz: &Sizes) -> Result<Vec<SoakSample>> {
    let ns = ctx.namespace("soak").await?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let deps: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let names: Vec<String> = (0..50).map(|i| format!("cfg-{i}")).collect();
    cluster::create_all(
        &cms,
        "ConfigMaps",
        names.iter().map(|c| cluster::configmap(c, 64)).collect(),
    )
    .await?;
    let ds = (0..50).map(|i| cluster::deployment(&format!("app-{i}"), 0, &names[i..=i], &[]));
    cluster::create_all(&deps, "Deployments", ds.collect()).await?;
    let op = ctx.start(&ns, &[]).await?;
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
    cluster::delete_namespace(&ctx.client, &ns).await;
    Ok(samples)
}
