//! The engine: one task owns the caches. Watch messages update them; a config whose hash
//! changed is turned, through the reverse index and `decide`, into pending reloads per
//! workload; due reloads are planned (pure) and handed to `apply`, at most one write in
//! flight per workload. Failed writes are retried with backoff, never dropped.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tokio::{sync::mpsc, time::Instant};

mod effects;
mod observe;
mod queue;
mod state_sync;
#[cfg(test)]
mod tests;
mod waves;
mod webhooks;

pub use state_sync::Persist;

use effects::{Dispatch, Effect, Replies};
use state_sync::Flushed;
use webhooks::{WebhookDone, Webhooks};

use crate::operator::{
    apply::{Applier, WriteOutcome, plan::PendingItem},
    cache::Store,
    coalesce::TokenBucket,
    health::{HEARTBEAT, Heartbeat, Readiness},
    metrics::Metrics,
    model::kinds::{ConfigKey, WorkloadKey},
    options::Options,
    state::configmaps::Loaded,
    watch::{ObjKey, StreamScope, WatchMsg, csi::CsiState},
};

/// How long in-flight writes may take to finish at shutdown.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Default)]
struct StreamState {
    synced_once: bool,
    /// Keys listed during a relist in progress.
    relisting: Option<HashSet<ObjKey>>,
    /// Why the API refuses this watch, until it lists: the other kinds do not wait for it.
    refused: Option<String>,
}

/// What happened to a config, as a watch event.
#[derive(Clone, Copy, Debug)]
enum ConfigEvent {
    Created,
    /// Whether its data (the hash) changed.
    Updated(bool),
    Deleted,
}

/// What a reload is waiting for.
struct Pending {
    items: Vec<PendingItem>,
    /// When the oldest change in `items` was seen (for the max-delay cap and latency).
    first_seen: Instant,
    due: Instant,
    attempts: u32,
}

pub struct Engine {
    opts: Arc<Options>,
    store: Store,
    scopes: Vec<StreamScope>,
    streams: Vec<StreamState>,
    pending: HashMap<WorkloadKey, Pending>,
    /// Workloads being written, with the configs the write is for.
    in_flight: HashMap<WorkloadKey, Vec<ConfigKey>>,
    persist: Option<Persist>,
    /// Whether this replica may write (always, without `--enable-ha`).
    leader: tokio::sync::watch::Receiver<bool>,
    /// Performs the effects; the engine itself never calls it.
    applier: Applier,
    /// What the handlers ask of the API, performed by `run` after each turn.
    effects: Vec<Effect>,
    ready: tokio::sync::watch::Sender<Readiness>,
    /// With `--namespace-selector`: the namespaces it selects.
    selected: Option<HashSet<String>>,
    /// With `--namespace-opt-in`: the namespaces whose `kube-reloader.io/auto` is true.
    auto_namespaces: HashSet<String>,
    /// Deployments paused for a pause-period, by when to resume them.
    resumes: HashMap<WorkloadKey, Instant>,
    csi: CsiState,
    metrics: Metrics,
    bucket: TokenBucket,
    /// When each workload was last written, for `--min-reload-interval`.
    last_write: HashMap<WorkloadKey, Instant>,
    /// `--webhook-url`: the POSTs still to send.
    webhooks: Webhooks,
    /// Argo Rollouts with workloadRef, by the Deployment whose template they run.
    referencing: HashMap<WorkloadKey, HashSet<WorkloadKey>>,
    /// `--max-concurrent-rollouts`: the slots taken, the reloads held, a halt.
    waves: waves::Waves,
    /// Whether every workload's problems were reported since this replica last gained the
    /// lease (or started, without `--enable-ha`).
    warned_this_term: bool,
}

/// Messages from finished writes back to the engine.
pub struct Done {
    key: WorkloadKey,
    items: Vec<PendingItem>,
    first_seen: Instant,
    outcome: WriteOutcome,
}

impl Engine {
    pub fn new(
        opts: Arc<Options>,
        scopes: Vec<StreamScope>,
        applier: Applier,
        ready: tokio::sync::watch::Sender<Readiness>,
        metrics: Metrics,
        persist: Option<Persist>,
        leader: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let streams = scopes.iter().map(|_| StreamState::default()).collect();
        let l = &opts.limits;
        Engine {
            bucket: TokenBucket::new(l.reload_rate, l.reload_burst, Instant::now()),
            last_write: HashMap::new(),
            webhooks: Webhooks::default(),
            waves: waves::Waves::default(),
            referencing: HashMap::new(),
            warned_this_term: false,
            metrics,
            store: Store::default(),
            scopes,
            streams,
            pending: HashMap::new(),
            in_flight: HashMap::new(),
            persist,
            leader,
            applier,
            effects: Vec::new(),
            selected: opts.namespace_selector.as_ref().map(|_| HashSet::new()),
            auto_namespaces: HashSet::new(),
            resumes: HashMap::new(),
            csi: CsiState::default(),
            opts,
            ready,
        }
    }

    /// Runs until the watches end or `shutdown` completes; then no new write starts and
    /// the writes in flight are given `DRAIN` to finish. Each turn of the loop beats
    /// `turns`, at least every [`HEARTBEAT`].
    pub async fn run(
        mut self,
        mut watch_rx: mpsc::Receiver<WatchMsg>,
        shutdown: impl std::future::Future<Output = ()>,
        turns: Heartbeat,
    ) {
        let (done_tx, mut done_rx) = mpsc::channel::<Done>(256);
        let (flush_tx, mut flush_rx) = mpsc::channel::<Flushed>(4);
        let (read_tx, mut read_rx) = mpsc::channel::<Loaded>(1);
        let (webhook_tx, mut webhook_rx) = mpsc::channel::<WebhookDone>(1);
        let replies = Replies {
            done: done_tx,
            flushed: flush_tx,
            read: read_tx,
            webhook: webhook_tx,
        };
        let mut leader_rx = self.leader.clone();
        self.metrics.leader.set(i64::from(self.is_leader()));
        let mut shutdown = std::pin::pin!(shutdown);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            turns.beat();
            self.perform(&replies);
            self.metrics.pending.set(self.pending.len() as i64);
            self.metrics
                .stakater
                .queue_depth
                .set(self.pending.len() as i64);
            // A follower keeps its pending reloads and resumes for when it leads; with
            // every write slot taken, a write's outcome wakes the loop, not a due time.
            let writes = self
                .pending
                .iter()
                .filter(|(k, _)| !self.in_flight.contains_key(*k) && !self.writes_full())
                .map(|(_, p)| p.due)
                .chain(self.resumes.values().copied())
                .filter(|_| self.is_leader());
            let next_due = writes
                .chain(self.next_flush())
                .chain(self.next_wave_deadline())
                .chain(self.next_webhook())
                .min();
            let sleep = async {
                match next_due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                msg = watch_rx.recv() => match msg {
                    Some(m) => self.on_watch(m),
                    None => break,
                },
                Some(done) = done_rx.recv() => self.on_done(done),
                Some(flushed) = flush_rx.recv() => self.on_flushed(flushed),
                Some(read) = read_rx.recv() => self.on_state_read(read),
                Some(sent) = webhook_rx.recv() => self.on_webhook_done(sent),
                Ok(()) = leader_rx.changed() => {
                    let leader = *leader_rx.borrow_and_update();
                    tracing::info!(leader, "this replica {} write", if leader { "may now" } else { "may no longer" });
                    self.metrics.leader.set(i64::from(leader));
                    if !leader {
                        self.warned_this_term = false;
                    }
                    self.on_leadership(leader);
                    if leader && self.ready.borrow().warm {
                        self.warn_all_invalid();
                        self.resume_evictions();
                    }
                }
                _ = heartbeat.tick() => {}
                () = sleep => {
                    self.dispatch_resumes();
                    self.wave_expire(Instant::now());
                    self.dispatch_due();
                    self.dispatch_webhook();
                    self.maybe_flush();
                }
            }
        }
        // What the last turn asked for (writes already planned) still starts.
        self.perform(&replies);
        let in_flight = self.in_flight.len();
        tracing::info!(
            in_flight,
            pending = self.pending.len(),
            "stopping: no new writes"
        );
        let drain = async {
            while !self.in_flight.is_empty() {
                match done_rx.recv().await {
                    Some(done) => self.on_done(done),
                    None => break,
                }
            }
        };
        if tokio::time::timeout(DRAIN, drain).await.is_err() {
            tracing::warn!(
                in_flight = self.in_flight.len(),
                "writes still in flight at exit"
            );
        }
        if tokio::time::timeout(DRAIN, self.applier.notices_sent())
            .await
            .is_err()
        {
            tracing::warn!("Events or alerts of the last writes still unsent at exit");
        }
        // Wait for a flush under way, then write what is fully applied.
        if self.persist.as_ref().is_some_and(|p| p.is_flushing())
            && let Some(flushed) = flush_rx.recv().await
        {
            self.on_flushed(flushed);
        }
        self.final_flush(&replies, &mut flush_rx).await;
    }

    fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Every watch has listed once, or is refused by the API: the caches that can be warm are.
    fn all_synced(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.synced_once || s.refused.is_some())
    }

    /// A watch the API refused lists again: it counts as any other now.
    fn listing(&mut self, stream: usize) {
        if self.streams[stream].refused.take().is_some() {
            tracing::info!(stream = %self.describe(stream), "the API allows the watch now");
            self.publish_refused();
        }
    }

    fn on_refused(&mut self, stream: usize, why: String) {
        let s = &mut self.streams[stream];
        let first = s.refused.is_none();
        s.refused = Some(why);
        if first {
            self.publish_refused();
            self.maybe_ready();
        }
    }

    /// "KIND in NAMESPACE" for logs and `/ready`.
    fn describe(&self, stream: usize) -> String {
        let scope = &self.scopes[stream];
        let ns = scope.namespace.as_deref().unwrap_or("all namespaces");
        format!("{} in {ns}", scope.what.kind())
    }

    /// The refused watches into `/ready` and `kube_reloader_watches_refused`.
    fn publish_refused(&mut self) {
        let mut not_listed = Vec::new();
        let mut by_kind: HashMap<&'static str, i64> = HashMap::new();
        for (i, s) in self.streams.iter().enumerate() {
            let kind = self.scopes[i].what.kind();
            let n = by_kind.entry(kind).or_default();
            if let Some(why) = &s.refused {
                *n += 1;
                not_listed.push(format!("{}: {why}", self.describe(i)));
            }
        }
        for (kind, n) in by_kind {
            self.metrics.refused_watches(kind).set(n);
        }
        not_listed.sort();
        self.ready.send_modify(|r| r.not_listed = not_listed);
    }

    /// Once every cache that can be warm is: ready, warnings, catch-up.
    fn maybe_ready(&mut self) {
        if !self.all_synced() || self.ready.borrow().warm {
            return;
        }
        tracing::info!(
            configs = self.store.config_count(),
            workloads = self.store.workload_count(),
            "caches synced; ready"
        );
        self.ready.send_modify(|r| r.warm = true);
        self.warn_all_invalid();
        self.resume_evictions();
        self.catch_up();
        if self.opts.sync_after_restart && self.opts.reload_on_create {
            self.sync_after_restart();
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
