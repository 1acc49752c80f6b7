//! The engine: one task owns the caches. Watch messages update them; a config whose hash
//! changed is turned, through the reverse index and `decide`, into pending reloads per
//! workload; due reloads are planned (pure) and handed to `apply`, at most one write in
//! flight per workload. Failed writes are retried with backoff, never dropped.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

mod effects;
mod state_sync;
#[cfg(test)]
mod tests;
mod webhooks;
use effects::{DRAIN, Dispatch, Effect, Replies};
use state_sync::Flushed;
use webhooks::{WebhookDone, Webhooks};

use crate::operator::state::configmaps::Loaded;
pub use state_sync::Persist;

use crate::operator::{
    apply::{
        Applier, WriteOutcome,
        plan::{self, PendingItem},
    },
    cache::Store,
    coalesce::{self, Deferral, TokenBucket},
    decide::{self, Reason},
    health::Readiness,
    metrics::{KindLabels, Metrics, ReasonLabels, Skip, Stakater},
    model::{
        facts::{ConfigEntry, ConfigFlags, WorkloadFacts},
        hash::ConfigHash,
        kinds::{ConfigKey, WorkloadKey},
    },
    options::Options,
    watch::{ObjKey, Obs, StreamScope, WatchMsg, csi::CsiState},
};

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
    /// Deployments paused for a pause-period, by when to resume them.
    resumes: HashMap<WorkloadKey, Instant>,
    csi: CsiState,
    metrics: Metrics,
    bucket: TokenBucket,
    /// When each workload was last written, for `--min-reload-interval`.
    last_write: HashMap<WorkloadKey, Instant>,
    /// `--webhook-url`: the POSTs still to send.
    webhooks: Webhooks,
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
            resumes: HashMap::new(),
            csi: CsiState::default(),
            opts,
            ready,
        }
    }

    /// Runs until the watches end or `shutdown` completes; then no new write starts and
    /// the writes in flight are given `DRAIN` to finish.
    pub async fn run(
        mut self,
        mut watch_rx: mpsc::Receiver<WatchMsg>,
        shutdown: impl std::future::Future<Output = ()>,
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
        loop {
            self.perform(&replies);
            self.metrics.pending.set(self.pending.len() as i64);
            self.metrics
                .stakater
                .queue_depth
                .set(self.pending.len() as i64);
            // A follower keeps its pending reloads and resumes for when it leads.
            let writes = self
                .pending
                .iter()
                .filter(|(k, _)| !self.in_flight.contains_key(*k))
                .map(|(_, p)| p.due)
                .chain(self.resumes.values().copied())
                .filter(|_| self.is_leader());
            let next_due = writes
                .chain(self.next_flush())
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
                    }
                }
                () = sleep => {
                    self.dispatch_resumes();
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
        self.catch_up();
        if self.opts.sync_after_restart && self.opts.reload_on_create {
            self.sync_after_restart();
        }
    }

    /// `reloader_events_received_total`: stakater's informers see a relisted object it
    /// had as an update, a new one as an add.
    fn count_received(&self, msg: &WatchMsg) {
        if !self.is_leader() {
            return; // stakater's followers watch nothing
        }
        let (stream, event_type) = match msg {
            WatchMsg::InitApply { stream, obs } | WatchMsg::Apply { stream, obs } => {
                let update = self.has(&obs.key());
                (*stream, if update { "update" } else { "add" })
            }
            WatchMsg::Delete { stream, .. } => (*stream, "delete"),
            _ => return,
        };
        if let Some(resource) = self.scopes[stream].what.stakater_resource() {
            self.metrics.stakater.received(event_type, resource);
        }
    }

    /// Whether the caches hold `key`.
    fn has(&self, key: &ObjKey) -> bool {
        match key {
            ObjKey::Config(k) => self.store.config(k).is_some(),
            ObjKey::Workload(k) => self.store.workload(k).is_some(),
            ObjKey::Namespace(n) => self.selected.as_ref().is_some_and(|s| s.contains(n)),
            ObjKey::CsiClass(_) => false,
            ObjKey::CsiStatus(k) => self.csi.has_status(k),
        }
    }

    fn on_watch(&mut self, msg: WatchMsg) {
        if let WatchMsg::Init { stream } | WatchMsg::InitApply { stream, .. } = &msg {
            self.listing(*stream);
        }
        self.count_received(&msg);
        match msg {
            WatchMsg::Refused { stream, why } => self.on_refused(stream, why),
            WatchMsg::Init { stream } => self.streams[stream].relisting = Some(HashSet::new()),
            WatchMsg::InitApply { stream, obs } => {
                if let Some(seen) = self.streams[stream].relisting.as_mut() {
                    seen.insert(obs.key());
                }
                // On the first list of a stream nothing "changed"; on a relist (after 410
                // Gone or a lost watch) a differing hash is a change we would otherwise lose.
                let live = self.streams[stream].synced_once;
                self.observe(obs, live);
            }
            WatchMsg::InitDone { stream } => {
                let seen = self.streams[stream].relisting.take().unwrap_or_default();
                if self.streams[stream].synced_once {
                    let gone: Vec<ObjKey> = self
                        .cached_keys()
                        .filter(|k| self.scopes[stream].covers(k) && !seen.contains(k))
                        .collect();
                    for key in gone {
                        self.forget(key, true);
                    }
                }
                self.listing(stream);
                self.streams[stream].synced_once = true;
                self.maybe_ready();
            }
            WatchMsg::Apply { obs, .. } => self.observe(obs, true),
            WatchMsg::Delete {
                stream,
                namespace,
                name,
            } => {
                if let Some(key) = self.scopes[stream].key_of(namespace, name) {
                    self.forget(key, true);
                }
            }
        }
    }

    fn cached_keys(&self) -> impl Iterator<Item = ObjKey> + '_ {
        let c = self.store.configs().map(|(k, _)| ObjKey::Config(k.clone()));
        let w = self
            .store
            .workloads()
            .map(|f| ObjKey::Workload(f.key.clone()));
        let n = self
            .selected
            .iter()
            .flatten()
            .map(|n| ObjKey::Namespace(n.clone()));
        let csi = self
            .csi
            .class_keys()
            .map(|k| ObjKey::CsiClass(k.clone()))
            .chain(self.csi.status_keys().map(|k| ObjKey::CsiStatus(k.clone())));
        let w = w.chain(n).chain(csi);
        c.chain(w).collect::<Vec<_>>().into_iter()
    }

    fn observe(&mut self, obs: Obs, live: bool) {
        match obs {
            Obs::Namespace(name) => {
                let added = self
                    .selected
                    .as_mut()
                    .is_some_and(|s| s.insert(name.clone()));
                // Selected after start-up: its workloads' warnings are this instance's now.
                if added && self.ready.borrow().warm {
                    let theirs: Vec<Arc<WorkloadFacts>> = (self.store.workloads())
                        .filter(|f| f.key.namespace == name)
                        .cloned()
                        .collect();
                    for facts in theirs {
                        self.warn_invalid(&facts);
                    }
                }
            }
            Obs::Config(key, entry) => {
                // Configs of namespaces outside --namespace-selector are cached too (a hash
                // each): the selection can change, and the Namespace stream may list after
                // this one. They are filtered when they change (`on_config_change`).
                let live = live && self.all_synced();
                if self.opts.namespace_ignored(&key.namespace) {
                    if live {
                        self.metrics.stakater.skipped(Skip::IgnoredOrNotSelected);
                    }
                    return;
                }
                let new_hash = entry.hash;
                let flags = entry.flags;
                let event = match self.put_config(key.clone(), entry) {
                    Some(o) => ConfigEvent::Updated(o.hash != new_hash),
                    None => ConfigEvent::Created,
                };
                if live {
                    self.on_config_event(&key, flags, event);
                }
            }
            Obs::Workload(facts) => {
                let problems_changed = self
                    .store
                    .workload(&facts.key)
                    .is_none_or(|old| old.problems != facts.problems);
                // Until every cache is warm the namespace selection is not known yet;
                // `warn_all_invalid` reports what the first lists found.
                if problems_changed && self.all_synced() {
                    self.warn_invalid(&facts);
                }
                self.schedule_resume(&facts);
                let key = facts.key.clone();
                self.put_workload(*facts);
                self.drop_if_written(&key);
            }
            Obs::CsiClass(key, flags) => {
                self.csi.put_class(key.clone(), flags);
                self.refresh_csi_entry(&key);
            }
            Obs::CsiStatus(status) => {
                if self.opts.namespace_ignored(&status.key.namespace) {
                    return;
                }
                let class = status.class.clone();
                let known = self.csi.has_status(&status.key);
                let rotated = self.csi.put_status(status);
                let entry = self.refresh_csi_entry(&class);
                if let Some(entry) = entry.filter(|_| live && known && self.all_synced()) {
                    let event = ConfigEvent::Updated(rotated);
                    self.on_config_event(&class, entry.flags, event);
                }
            }
        }
    }

    /// Stakater's `--sync-after-restart`: every listed ConfigMap and Secret counts as
    /// created. Plans skip markers already in place, so only stale workloads roll.
    fn sync_after_restart(&mut self) {
        let listed: Vec<_> = self
            .store
            .configs()
            .filter(|(k, _)| {
                k.kind != crate::operator::model::kinds::ConfigKind::SecretProviderClass
            })
            .map(|(k, e)| (k.clone(), e.flags))
            .collect();
        tracing::info!(
            configs = listed.len(),
            "--sync-after-restart: checking every workload"
        );
        for (key, flags) in listed {
            self.on_config_change(&key, flags, false);
        }
    }

    /// A pending reload whose markers are already on the workload (another replica or an
    /// earlier write put them there) has nothing left to do: followers would otherwise keep
    /// it until they lead.
    fn drop_if_written(&mut self, key: &WorkloadKey) {
        if self.in_flight.contains_key(key) {
            return;
        }
        let (Some(p), Some(facts)) = (self.pending.get(key), self.store.workload(key)) else {
            return;
        };
        let hashes = |c: &ConfigKey| -> Option<ConfigHash> { self.store.config(c).map(|e| e.hash) };
        if plan::plan(self.opts.strategy, facts, &p.items, hashes, unix_now()).is_none() {
            tracing::debug!(workload = %key, "pending reload already in place; dropped");
            self.pending.remove(key);
        }
    }

    fn watched_gauge(&self, kind: &'static str) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics
            .watched
            .get_or_create(&KindLabels { kind })
            .clone()
    }

    /// Store writes go through these so `kube_reloader_watched_objects` stays exact.
    fn put_config(&mut self, key: ConfigKey, entry: ConfigEntry) -> Option<ConfigEntry> {
        let kind = key.kind.as_str();
        let old = self.store.put_config(key, entry);
        if old.is_none() {
            self.watched_gauge(kind).inc();
        }
        old
    }

    fn remove_config(&mut self, key: &ConfigKey) -> Option<ConfigEntry> {
        let old = self.store.remove_config(key);
        if old.is_some() {
            self.watched_gauge(key.kind.as_str()).dec();
        }
        old
    }

    fn put_workload(&mut self, facts: WorkloadFacts) {
        let kind = facts.key.kind.as_str();
        if self.store.put_workload(facts).is_none() {
            self.watched_gauge(kind).inc();
        }
    }

    /// A Warning Event for a workload's invalid annotations, from the leader only and only
    /// where this operator serves: another instance may serve the other namespaces.
    fn warn_invalid(&mut self, facts: &WorkloadFacts) {
        let serves = self.is_leader() && self.namespace_allowed(&facts.key.namespace);
        if serves && !facts.problems.is_empty() {
            let facts = Box::new(facts.clone());
            self.effects.push(Effect::WarnInvalid(facts));
        }
    }

    /// At start-up and on gaining the lease: every workload's problems, except those an
    /// operator before already reported (the applier reads the Events back). Once per
    /// term: warm caches and the lease can arrive together, and both ask for it.
    fn warn_all_invalid(&mut self) {
        if !self.is_leader() || self.warned_this_term {
            return;
        }
        self.warned_this_term = true;
        let all: Vec<WorkloadFacts> = self
            .store
            .workloads()
            .filter(|f| !f.problems.is_empty() && self.namespace_allowed(&f.key.namespace))
            .map(|f| (**f).clone())
            .collect();
        if !all.is_empty() {
            self.effects.push(Effect::WarnAllInvalid(all));
        }
    }

    fn namespace_allowed(&self, ns: &str) -> bool {
        let unselected = self.selected.as_ref().is_some_and(|s| !s.contains(ns));
        !self.opts.namespace_ignored(ns) && !unselected
    }

    /// Mirrors a SecretProviderClass's merged entry into the store, where plans read hashes.
    fn refresh_csi_entry(&mut self, class: &ConfigKey) -> Option<ConfigEntry> {
        let entry = self.csi.entry(class);
        match &entry {
            Some(e) => self.put_config(class.clone(), e.clone()),
            None => self.remove_config(class),
        };
        entry
    }

    fn forget(&mut self, key: ObjKey, live: bool) {
        match key {
            ObjKey::Namespace(name) => {
                if let Some(sel) = self.selected.as_mut() {
                    sel.remove(&name);
                }
            }
            ObjKey::Config(key) => {
                if let Some(old) = self.remove_config(&key)
                    && live
                    && self.all_synced()
                {
                    self.on_config_event(&key, old.flags, ConfigEvent::Deleted);
                }
            }
            ObjKey::CsiClass(key) => {
                self.csi.remove_class(&key);
                self.refresh_csi_entry(&key);
            }
            // A pod went away; never a change of its class (as in stakater).
            ObjKey::CsiStatus(key) => {
                if let Some(class) = self.csi.remove_status(&key) {
                    self.refresh_csi_entry(&class);
                }
            }
            ObjKey::Workload(key) => {
                self.resumes.remove(&key);
                if self.store.remove_workload(&key).is_some() {
                    self.watched_gauge(key.kind.as_str()).dec();
                }
                self.pending.remove(&key);
                self.last_write.remove(&key);
            }
        }
    }

    /// A live event of a config, counted as stakater counts the items of its queue (one
    /// per update, and per create or delete when those reload), then handled.
    fn on_config_event(&mut self, key: &ConfigKey, flags: ConfigFlags, event: ConfigEvent) {
        let counted = match event {
            ConfigEvent::Created => self.opts.reload_on_create,
            ConfigEvent::Deleted => self.opts.reload_on_delete,
            ConfigEvent::Updated(_) => true,
        };
        if !counted {
            return;
        }
        let stakater = self.stakater();
        let skipped = |why| stakater.iter().for_each(|s| s.skipped(why));
        if !self.namespace_allowed(&key.namespace) {
            tracing::debug!(config = %key, "namespace not selected; not reloading");
            return skipped(Skip::IgnoredOrNotSelected);
        }
        let started = std::time::Instant::now();
        match event {
            ConfigEvent::Updated(false) => skipped(Skip::NoDataChange),
            ConfigEvent::Deleted => {
                tracing::info!(config = %key, "config deleted");
                self.on_config_change(key, flags, true);
            }
            ConfigEvent::Created | ConfigEvent::Updated(true) => {
                let hash = self.store.config(key).map(|e| e.hash.short());
                tracing::info!(config = %key, hash = ?hash, "config changed");
                self.on_config_change(key, flags, false);
            }
        }
        let resource = key.kind.stakater_resource();
        if let Some(s) = stakater {
            s.reconciled(resource, started.elapsed().as_secs_f64());
        }
    }

    /// Stakater's series, counted by the leader only: stakater's followers watch nothing.
    fn stakater(&self) -> Option<Stakater> {
        self.is_leader().then(|| self.metrics.stakater.clone())
    }

    fn on_config_change(&mut self, key: &ConfigKey, flags: ConfigFlags, deleted: bool) {
        if !self.namespace_allowed(&key.namespace) {
            tracing::debug!(config = %key, "namespace not selected; not reloading");
            return;
        }
        if self.opts.webhook_url.is_some() {
            return self.queue_webhook(key);
        }
        let stakater = self.stakater();
        for facts in self.store.candidates(key) {
            let decision = decide::should_reload(
                &self.opts.decide,
                facts.key.kind,
                &facts.rules,
                key.kind,
                &key.name,
                flags,
            );
            if let Some(s) = &stakater {
                s.scanned(facts.key.kind.as_str(), decision.is_ok());
            }
            let reason: Reason = match decision {
                Ok(r) => r,
                Err(skip) => {
                    tracing::debug!(workload = %facts.key, config = %key, ?skip, "not reloading");
                    continue;
                }
            };
            if let Some(s) = &stakater {
                s.queued();
            }
            let item = PendingItem {
                config: key.clone(),
                reason,
                deleted,
            };
            let now = Instant::now();
            let limits = &self.opts.limits;
            let p = self
                .pending
                .entry(facts.key.clone())
                .or_insert_with(|| Pending {
                    items: Vec::new(),
                    first_seen: now,
                    due: now,
                    attempts: 0,
                });
            if !p.items.is_empty() {
                self.metrics.coalesced.inc();
            }
            // A retry keeps its backoff; otherwise the debounce slides, up to the cap.
            if p.attempts == 0 {
                p.due = coalesce::coalesced_due(limits, p.first_seen, now);
            }
            p.items.retain(|i| i.config != item.config);
            p.items.push(item);
        }
    }

    /// A Deployment we paused (it carries paused-at) resumes at paused-at + pause-period;
    /// read from the object, so a restarted operator resumes it too (stakater#1016).
    fn schedule_resume(&mut self, facts: &WorkloadFacts) {
        let ours = facts.key.kind == crate::operator::model::kinds::WorkloadKind::Deployment
            && facts.paused;
        let Some(at) = facts.paused_at.as_deref().filter(|_| ours) else {
            self.resumes.remove(&facts.key);
            return;
        };
        let period = match facts.rules.pause_period {
            Some(Ok(d)) => d,
            _ => Duration::ZERO, // annotation removed or invalid: resume now
        };
        let paused_at = at
            .parse::<k8s_openapi::jiff::Timestamp>()
            .map(|t| t.as_millisecond());
        let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
        let left_ms = paused_at.map_or(0, |p| p + period.as_millis() as i64 - now_ms);
        let due = Instant::now() + Duration::from_millis(left_ms.max(0) as u64);
        self.resumes.insert(facts.key.clone(), due);
    }

    fn dispatch_resumes(&mut self) {
        if !self.is_leader() {
            return;
        }
        let now = Instant::now();
        let due: Vec<WorkloadKey> = self
            .resumes
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.resumes.remove(&key);
            let Some(facts) = self.store.workload(&key).cloned() else {
                continue;
            };
            if self.opts.dry_run {
                continue;
            }
            self.effects.push(Effect::Resume(facts));
        }
    }

    fn dispatch_due(&mut self) {
        if !self.is_leader() {
            return;
        }
        let now = Instant::now();
        let due: Vec<WorkloadKey> = self
            .pending
            .iter()
            .filter(|(k, p)| p.due <= now && !self.in_flight.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        // Once the rate limit is hit, it holds for the rest of this pass: those reloads are
        // deferred without being planned (in a storm, planning each for every token wastes).
        let mut limited: Option<Instant> = None;
        for key in due {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            if let Some(until) = limited {
                self.defer(key, p, until, Deferral::RateLimit);
                continue;
            }
            let Some(facts) = self.store.workload(&key).cloned() else {
                continue;
            };
            let hashes =
                |c: &ConfigKey| -> Option<ConfigHash> { self.store.config(c).map(|e| e.hash) };
            let write = plan::plan(self.opts.strategy, &facts, &p.items, hashes, unix_now());
            let Some(write) = write else {
                tracing::debug!(workload = %key, "already up to date; nothing to write");
                self.metrics.stakater.skipped(Skip::StrategyNotUpdated);
                continue;
            };
            // Paced: --min-reload-interval per workload, then the global token bucket.
            let last = self.last_write.get(&key).copied();
            let deferred = match coalesce::interval_due(&self.opts.limits, last, now) {
                Some(t) => Some((t, Deferral::MinInterval)),
                None => (self.bucket.take(now).err()).map(|t| (t, Deferral::RateLimit)),
            };
            if let Some((until, reason)) = deferred {
                if reason == Deferral::RateLimit {
                    limited = Some(until);
                }
                self.defer(key, p, until, reason);
                continue;
            }
            if !self.opts.limits.min_reload_interval.is_zero() {
                self.last_write.insert(key.clone(), now);
            }
            let configs = p.items.iter().map(|i| i.config.clone()).collect();
            self.in_flight.insert(key.clone(), configs);
            let waited = p.first_seen.elapsed().as_secs_f64();
            self.metrics.stakater.dequeued(waited);
            self.effects.push(Effect::Write(Box::new(Dispatch {
                facts,
                write,
                items: p.items,
                attempts: p.attempts,
                first_seen: p.first_seen,
            })));
        }
    }

    fn on_done(&mut self, done: Done) {
        self.in_flight.remove(&done.key);
        let m = &self.metrics;
        match done.outcome {
            WriteOutcome::Written if self.opts.dry_run => {
                m.dry_run.inc();
            }
            WriteOutcome::Written => {
                m.reload_executed(&done.key.namespace, true);
                let kind = done.key.kind.as_str();
                let seen = done.first_seen.elapsed().as_secs_f64();
                m.latency.get_or_create(&KindLabels { kind }).observe(seen);
                m.stakater.action(kind, true, seen);
            }
            WriteOutcome::Gone | WriteOutcome::NothingToDo => {}
            WriteOutcome::Retry { attempts } => {
                m.reload_executed(&done.key.namespace, false);
                m.error("write");
                let seen = done.first_seen.elapsed().as_secs_f64();
                m.stakater.action(done.key.kind.as_str(), false, seen);
                m.stakater.retried();
                self.requeue(done.key, done.items, done.first_seen, attempts);
            }
        }
    }

    /// A failed write goes back to pending with backoff; newer items for the same config
    /// (arrived meanwhile) win over the failed ones.
    /// Storm control delays, never drops: the reload stays pending until `until`.
    fn defer(&mut self, key: WorkloadKey, mut p: Pending, until: Instant, why: Deferral) {
        let reason = why.label();
        tracing::debug!(workload = %key, reason, "reload deferred");
        self.metrics
            .deferred
            .get_or_create(&ReasonLabels { reason })
            .inc();
        p.due = until;
        self.pending.insert(key, p);
    }

    fn requeue(
        &mut self,
        key: WorkloadKey,
        items: Vec<PendingItem>,
        first_seen: Instant,
        attempts: u32,
    ) {
        let backoff = crate::shared::backoff::backoff(
            Duration::from_millis(500),
            attempts,
            Duration::from_secs(64),
        );
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            items: Vec::new(),
            first_seen,
            due: Instant::now(),
            attempts,
        });
        p.first_seen = p.first_seen.min(first_seen);
        // Change order is kept: the failed items came first, then what arrived meanwhile.
        let newer = std::mem::take(&mut p.items);
        p.items = items
            .into_iter()
            .filter(|i| !newer.iter().any(|n| n.config == i.config))
            .collect();
        p.items.extend(newer);
        p.attempts = attempts;
        p.due = Instant::now() + backoff;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
