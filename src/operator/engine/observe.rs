//! Watch messages into the caches: lists, relists (diffed, so what changed or went while a
//! watch was lost still counts), live events, the namespace selection, CSI statuses, and
//! which config changes become reloads (`on_config_event`); invalid annotations warned.

use std::{collections::HashSet, sync::Arc};

use super::{ConfigEvent, Effect, Engine, unix_now};
use crate::operator::{
    apply::plan,
    metrics::{KindLabels, Skip},
    model::{
        facts::{ConfigEntry, ConfigFlags, WorkloadFacts},
        hash::ConfigHash,
        kinds::{ConfigKey, WorkloadKey},
    },
    watch::{ObjKey, Obs, WatchMsg},
};

impl Engine {
    /// `reloader_events_received_total`: stakater's informers see a relisted object it
    /// had as an update, a new one as an add.
    pub(super) fn count_received(&self, msg: &WatchMsg) {
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
    pub(super) fn has(&self, key: &ObjKey) -> bool {
        match key {
            ObjKey::Config(k) => self.store.config(k).is_some(),
            ObjKey::Workload(k) => self.store.workload(k).is_some(),
            ObjKey::Namespace(n) => self.selected.as_ref().is_some_and(|s| s.contains(n)),
            ObjKey::OptedIn(n) => self.auto_namespaces.contains(n),
            ObjKey::CsiClass(_) => false,
            ObjKey::CsiStatus(k) => self.csi.has_status(k),
        }
    }

    pub(super) fn on_watch(&mut self, msg: WatchMsg) {
        self.state_may_have_changed();
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

    pub(super) fn cached_keys(&self) -> impl Iterator<Item = ObjKey> + '_ {
        let c = self.store.configs().map(|(k, _)| ObjKey::Config(k.clone()));
        let w = self
            .store
            .workloads()
            .map(|f| ObjKey::Workload(f.key.clone()));
        let n = self
            .selected
            .iter()
            .flatten()
            .map(|n| ObjKey::Namespace(n.clone()))
            .chain(
                self.auto_namespaces
                    .iter()
                    .map(|n| ObjKey::OptedIn(n.clone())),
            );
        let csi = self
            .csi
            .class_keys()
            .map(|k| ObjKey::CsiClass(k.clone()))
            .chain(self.csi.status_keys().map(|k| ObjKey::CsiStatus(k.clone())));
        let w = w.chain(n).chain(csi);
        c.chain(w).collect::<Vec<_>>().into_iter()
    }

    pub(super) fn observe(&mut self, obs: Obs, live: bool) {
        match obs {
            // Read when a config changes: a namespace opted in later rolls on the next change.
            Obs::NamespaceOptIn(name, true) => {
                self.auto_namespaces.insert(name);
            }
            Obs::NamespaceOptIn(name, false) => {
                self.auto_namespaces.remove(&name);
            }
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
            Obs::Workload(mut facts) => {
                // Whether its max delay is shorter than its window depends on the flags too,
                // so that is checked here, not where the facts are built.
                let timing =
                    crate::operator::timing::problem(&self.opts.limits, &facts.rules.timing);
                facts.problems.extend(timing);
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
                if let Some(f) = self.store.workload(&key).cloned() {
                    self.wave_observed(&f);
                }
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
    pub(super) fn sync_after_restart(&mut self) {
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
    pub(super) fn drop_if_written(&mut self, key: &WorkloadKey) {
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

    pub(super) fn watched_gauge(
        &self,
        kind: &'static str,
    ) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics
            .watched
            .get_or_create(&KindLabels { kind })
            .clone()
    }

    /// Store writes go through these so `kube_reloader_watched_objects` stays exact.
    pub(super) fn put_config(&mut self, key: ConfigKey, entry: ConfigEntry) -> Option<ConfigEntry> {
        let kind = key.kind.as_str();
        let before = self.store.config(&key).map(|e| e.hash);
        self.config_changing(&key, before, Some(entry.hash));
        let old = self.store.put_config(key, entry);
        if old.is_none() {
            self.watched_gauge(kind).inc();
        }
        old
    }

    pub(super) fn remove_config(&mut self, key: &ConfigKey) -> Option<ConfigEntry> {
        let before = self.store.config(key).map(|e| e.hash);
        self.config_changing(key, before, None);
        let old = self.store.remove_config(key);
        if old.is_some() {
            self.watched_gauge(key.kind.as_str()).dec();
        }
        old
    }

    pub(super) fn put_workload(&mut self, mut facts: WorkloadFacts) {
        // An Argo Rollout with workloadRef runs the referenced Deployment's template.
        if let Some(target) = facts.workload_ref.clone() {
            let followers = self.referencing.entry(target.clone()).or_default();
            followers.insert(facts.key.clone());
            if let Some(dep) = self.store.workload(&target).cloned() {
                facts.adopt_template(&dep);
            }
        }
        let key = facts.key.clone();
        let kind = key.kind.as_str();
        if self.store.put_workload(facts).is_none() {
            self.watched_gauge(kind).inc();
        }
        // The Rollouts running this Deployment's template follow its changes.
        let followers: Vec<WorkloadKey> = (self.referencing.get(&key).into_iter().flatten())
            .cloned()
            .collect();
        for rollout in followers {
            let f = self.store.workload(&rollout).map(|f| (**f).clone());
            if let Some(f) = f.filter(|f| f.workload_ref.as_ref() == Some(&key)) {
                self.put_workload(f);
            }
        }
    }

    /// A Warning Event for a workload's invalid annotations, from the leader only and only
    /// where this operator serves: another instance may serve the other namespaces.
    pub(super) fn warn_invalid(&mut self, facts: &WorkloadFacts) {
        let serves = self.is_leader() && self.namespace_allowed(&facts.key.namespace);
        if serves && !facts.problems.is_empty() {
            let facts = Box::new(facts.clone());
            self.effects.push(Effect::WarnInvalid(facts));
        }
    }

    /// At start-up and on gaining the lease: every workload's problems, except those an
    /// operator before already reported (the applier reads the Events back). Once per
    /// term: warm caches and the lease can arrive together, and both ask for it.
    pub(super) fn warn_all_invalid(&mut self) {
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

    pub(super) fn namespace_allowed(&self, ns: &str) -> bool {
        let unselected = self.selected.as_ref().is_some_and(|s| !s.contains(ns));
        !self.opts.namespace_ignored(ns) && !unselected
    }

    /// Mirrors a SecretProviderClass's merged entry into the store, where plans read hashes.
    pub(super) fn refresh_csi_entry(&mut self, class: &ConfigKey) -> Option<ConfigEntry> {
        let entry = self.csi.entry(class);
        match &entry {
            Some(e) => self.put_config(class.clone(), e.clone()),
            None => self.remove_config(class),
        };
        entry
    }

    pub(super) fn forget(&mut self, key: ObjKey, live: bool) {
        match key {
            ObjKey::OptedIn(name) => {
                self.auto_namespaces.remove(&name);
            }
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
                let target = self
                    .store
                    .workload(&key)
                    .and_then(|f| f.workload_ref.clone());
                if let Some(set) = target.and_then(|t| self.referencing.get_mut(&t)) {
                    set.remove(&key);
                }
                self.wave_forget(&key);
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
    pub(super) fn on_config_event(
        &mut self,
        key: &ConfigKey,
        flags: ConfigFlags,
        event: ConfigEvent,
    ) {
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
}
