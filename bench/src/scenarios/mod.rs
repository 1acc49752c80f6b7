//! The scenarios. Each makes a namespace of its own for each operator, with the sentinel
//! (`sentinel.rs`), starts the operator scoped to it, waits until the sentinel rolled,
//! measures, and cleans up.

pub mod calm;
pub mod fanout;
pub mod latency;
pub mod memory;
pub mod soak;

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use kube::Client;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    cluster::{self, Result, Seen},
    operator::{Operator, Subject},
    sentinel,
};

/// How big a run is: `--quick` (CI's smoke test), the default, or `--full` (adds S2 at
/// 200,000 configs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Quick,
    Standard,
    Full,
}

pub struct Sizes {
    /// Pods per Deployment in S1 and S3 (the rollouts measured); the others have none.
    pub replicas: i32,
    pub s1_workloads: usize,
    pub s1_updates: usize,
    pub s1_rate: f64,
    /// S2's sizes in configs (half ConfigMaps, half Secrets), one Deployment per 20.
    pub s2_configs: Vec<usize>,
    /// The size S2's headline figures and S5 are taken at.
    pub s2_headline: usize,
    pub s2_bytes: usize,
    pub s3_workloads: usize,
    /// `--max-concurrent-rollouts` for S3 with waves.
    pub s3_wave: usize,
    /// S3's write-only sizes (Deployments without pods), each with the write ceiling.
    pub s3_growth: Vec<usize>,
    /// How long a write-only fan-out may take before it is reported unfinished.
    pub s3_cap: Duration,
    pub s4_flap: Duration,
    /// After ready, before S5 measures: the same quiet period for every operator.
    pub quiet: Duration,
    pub s5_idle: Duration,
    pub soak: Duration,
}

impl Sizes {
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Quick => Sizes {
                replicas: 1,
                s1_workloads: 40,
                s1_updates: 30,
                s1_rate: 10.0,
                s2_configs: vec![100, 400],
                s2_headline: 400,
                s2_bytes: 8192,
                s3_workloads: 40,
                s3_wave: 5,
                s3_growth: vec![10, 40],
                s3_cap: Duration::from_secs(60),
                s4_flap: Duration::from_secs(5),
                quiet: Duration::from_secs(5),
                s5_idle: Duration::from_secs(5),
                soak: Duration::from_secs(20),
            },
            Profile::Standard | Profile::Full => Sizes {
                replicas: 1,
                s1_workloads: 1000,
                s1_updates: 300,
                s1_rate: 10.0,
                s2_configs: if profile == Profile::Full {
                    vec![2_000, 20_000, 200_000]
                } else {
                    vec![2_000, 20_000]
                },
                s2_headline: 20_000,
                s2_bytes: 8192,
                s3_workloads: 1000,
                s3_wave: 50,
                s3_growth: vec![100, 1_000, 5_000],
                s3_cap: Duration::from_secs(300),
                s4_flap: Duration::from_secs(60),
                quiet: Duration::from_secs(30),
                s5_idle: Duration::from_secs(60),
                soak: Duration::from_secs(600),
            },
        }
    }
}

/// The plane every scenario runs on: the bench's client, the operators' identity (whose
/// requests alone the audit log holds), where results go.
pub struct Plane {
    pub client: Client,
    /// The operators' identity, for the write ceiling's patches: the API server audits
    /// its requests, so the ceiling pays what an operator's writes pay.
    pub as_operator: Client,
    pub operator_kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    pub out: PathBuf,
    /// Tells this run's namespaces from an earlier one's.
    pub run: String,
}

/// One scenario for one operator.
pub struct Ctx<'a> {
    pub plane: &'a Plane,
    pub subject: &'a Subject,
}

impl Ctx<'_> {
    pub fn client(&self) -> &Client {
        &self.plane.client
    }

    /// Starts the operator on `ns` and waits until it rolled the sentinel; returns it and
    /// the seconds from its start to then (time to ready).
    async fn start(&self, ns: &str, flags: &[&str]) -> Result<(Operator, f64)> {
        let log = self.plane.out.join(format!("{ns}-operator.log"));
        let kubeconfig = &self.plane.operator_kubeconfig;
        let mut op = Operator::start(self.subject, kubeconfig, ns, flags, log).await?;
        let limit = Duration::from_secs(900);
        let rolled = sentinel::wait_rolled(self.client(), ns, &mut op, limit).await?;
        let ready_s = (rolled - op.started).as_secs_f64();
        Ok((op, ready_s))
    }

    /// A new namespace for `scenario` and this operator, with the sentinel in it.
    async fn namespace(&self, scenario: &str) -> Result<String> {
        let ns = format!("bench-{scenario}-{}-{}", self.subject.slug, self.plane.run);
        cluster::namespace(self.client(), &ns).await?;
        sentinel::create(self.client(), &ns).await?;
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
