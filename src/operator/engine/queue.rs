//! Config changes into pending reloads, one per workload: which workloads (`decide`), held
//! for the coalescing window, paced (minimum interval, token bucket), planned and handed
//! out as writes, at most one in flight per workload; outcomes come back, and failures are
//! retried with backoff, never dropped. Pause-period resumes too.

use std::{cmp::Reverse, collections::HashSet, sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{Dispatch, Done, Effect, Engine, Pending, unix_now};
use crate::operator::{
    apply::{
        WriteOutcome,
        plan::{self, PendingItem},
    },
    coalesce::{self, Deferral},
    decide::{self, Reason, Skip},
    metrics::{self, KindLabels, ReasonLabels, Stakater},
    model::{
        facts::{ConfigFlags, WorkloadFacts},
        hash::ConfigHash,
        kinds::{ConfigKey, WorkloadKey},
    },
    timing,
};

impl Engine {
    /// Stakater's series, counted by the leader only: stakater's followers watch nothing.
    pub(super) fn stakater(&self) -> Option<Stakater> {
        self.is_leader().then(|| self.metrics.stakater.clone())
    }

    pub(super) fn on_config_change(&mut self, key: &ConfigKey, flags: ConfigFlags, deleted: bool) {
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
                self.policy_auto(&facts),
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
                    self.count_suspect(&facts, key, flags, skip);
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
            let limits = timing::effective(&self.opts.limits, &facts.rules.timing);
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
            // A retry keeps its backoff; otherwise the debounce slides, up to the cap (the
            // workload's, from the first change still pending).
            if p.attempts == 0 {
                p.due = coalesce::coalesced_due(&limits, p.first_seen, now);
            }
            p.items.retain(|i| i.config != item.config);
            p.items.push(item);
        }
    }

    /// Evictions an earlier run (or leader) started and may not have finished: each
    /// workload with a record evicts its pods older than it (a LIST when none is left).
    /// One write per workload still: it counts as in flight.
    pub(super) fn resume_evictions(&mut self) {
        if !self.is_leader() || self.opts.dry_run {
            return;
        }
        let started: Vec<Arc<WorkloadFacts>> = (self.store.workloads())
            .filter(|f| f.rules.evict && f.evicted_for.is_some())
            .filter(|f| !self.in_flight.contains_key(&f.key))
            .cloned()
            .collect();
        for facts in started {
            self.in_flight.insert(facts.key.clone(), Vec::new());
            let write = plan::Write {
                markers: Vec::new(),
                configs: Vec::new(),
            };
            self.effects.push(Effect::Write(Box::new(Dispatch {
                facts,
                write,
                items: Vec::new(),
                attempts: 0,
                first_seen: Instant::now(),
            })));
        }
    }

    /// Whether a policy makes the workload auto: `--workload-selector` or its Namespace's
    /// `kube-reloader.io/auto` (with `--namespace-opt-in`).
    pub(super) fn policy_auto(&self, facts: &WorkloadFacts) -> bool {
        facts.policy_selected || self.auto_namespaces.contains(&facts.key.namespace)
    }

    /// A skip of a config the workload uses that is likely a mistake: counted (leader only,
    /// as the other reload series) and logged at info, where debug lines would hide it.
    fn count_suspect(
        &self,
        facts: &WorkloadFacts,
        key: &ConfigKey,
        flags: ConfigFlags,
        skip: Skip,
    ) {
        if !self.is_leader() || facts.refs.find(key.kind, &key.name).is_none() {
            return;
        }
        if let Some(s) = decide::suspect(&facts.rules, key.kind, flags, skip) {
            let reason = s.label();
            tracing::info!(workload = %facts.key, config = %key, reason, "a config it uses changed, but a rule that is likely a mistake kept it from rolling; see `kube-reloader explain`");
            self.metrics
                .suspicious_skips
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
    }

    /// A Deployment we paused (it carries paused-at) resumes at paused-at + pause-period;
    /// read from the object, so a restarted operator resumes it too (stakater#1016).
    pub(super) fn schedule_resume(&mut self, facts: &WorkloadFacts) {
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

    pub(super) fn dispatch_resumes(&mut self) {
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

    /// `--write-concurrency` writes are in flight.
    pub(super) fn writes_full(&self) -> bool {
        self.in_flight.len() >= self.opts.write_concurrency
    }

    /// Up to `n` due keys not in flight nor in `skip`, in dispatch order: higher
    /// `kube-reloader.io/rollout-priority` first (it matters when waves hold some back),
    /// then key order, so a pass is the same whatever the map's order. Only those `n` are
    /// cloned and sorted: with thousands pending, each freed write slot costs no clone of
    /// them all (S3 sizes in bench/).
    fn due_keys(&self, now: Instant, n: usize, skip: &HashSet<WorkloadKey>) -> Vec<WorkloadKey> {
        let priority = |k: &WorkloadKey| self.store.workload(k).map_or(0, |f| f.rules.priority());
        let mut due: Vec<(Reverse<i32>, &WorkloadKey)> = self
            .pending
            .iter()
            .filter(|(k, p)| p.due <= now && !self.in_flight.contains_key(*k) && !skip.contains(*k))
            .map(|(k, _)| (Reverse(priority(k)), k))
            .collect();
        if due.len() > n {
            due.select_nth_unstable(n);
            due.truncate(n);
        }
        due.sort_unstable();
        due.into_iter().map(|(_, k)| k.clone()).collect()
    }

    pub(super) fn dispatch_due(&mut self) {
        if !self.is_leader() {
            return;
        }
        let now = Instant::now();
        // Once the rate limit is hit, it holds for the rest of this pass: those reloads are
        // deferred without being planned (in a storm, planning each for every token wastes).
        let mut limited: Option<Instant> = None;
        // In rounds of as many as there are free write slots (all once rate-limited, to
        // defer them): a key skipped without a write frees its slot for the next round.
        let mut seen = HashSet::new();
        loop {
            let free = self
                .opts
                .write_concurrency
                .saturating_sub(self.in_flight.len());
            let want = if limited.is_some() { usize::MAX } else { free };
            let round = if free == 0 {
                Vec::new()
            } else {
                self.due_keys(now, want, &seen)
            };
            if round.is_empty() {
                return;
            }
            for key in round {
                // The rest stay pending and due; a write's outcome turns the loop again.
                if self.writes_full() {
                    return;
                }
                seen.insert(key.clone());
                self.dispatch_one(key, now, &mut limited);
            }
        }
    }

    /// Plans, holds, defers or dispatches one due reload.
    fn dispatch_one(&mut self, key: WorkloadKey, now: Instant, limited: &mut Option<Instant>) {
        let Some(p) = self.pending.remove(&key) else {
            return;
        };
        if let Some(until) = *limited {
            self.defer(key, p, until, Deferral::RateLimit);
            return;
        }
        let Some(facts) = self.store.workload(&key).cloned() else {
            return;
        };
        let hashes = |c: &ConfigKey| -> Option<ConfigHash> { self.store.config(c).map(|e| e.hash) };
        let write = plan::plan(self.opts.strategy, &facts, &p.items, hashes, unix_now());
        let Some(write) = write else {
            tracing::debug!(workload = %key, "already up to date; nothing to write");
            self.metrics
                .stakater
                .skipped(metrics::Skip::StrategyNotUpdated);
            return;
        };
        // Health-gated waves first: a held reload takes no token.
        if let Some(until) = self.wave_hold(&key, now) {
            self.defer(key, p, until, Deferral::Wave);
            return;
        }
        // Paced: the workload's minimum interval, then the global token bucket.
        let limits = timing::effective(&self.opts.limits, &facts.rules.timing);
        let last = self.last_write.get(&key).copied();
        let deferred = match coalesce::interval_due(&limits, last, now) {
            Some(t) => Some((t, Deferral::MinInterval)),
            None => (self.bucket.take(now).err()).map(|t| (t, Deferral::RateLimit)),
        };
        if let Some((until, reason)) = deferred {
            if reason == Deferral::RateLimit {
                *limited = Some(until);
            }
            self.defer(key, p, until, reason);
            return;
        }
        if !limits.min_reload_interval.is_zero() {
            self.last_write.insert(key.clone(), now);
        }
        let configs = p.items.iter().map(|i| i.config.clone()).collect();
        self.in_flight.insert(key.clone(), configs);
        self.wave_started(&facts, now);
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

    pub(super) fn on_done(&mut self, done: Done) {
        self.state_may_have_changed();
        self.in_flight.remove(&done.key);
        let rolls = matches!(done.outcome, WriteOutcome::Written) && !self.opts.dry_run;
        self.wave_written(&done.key, rolls);
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
    pub(super) fn defer(
        &mut self,
        key: WorkloadKey,
        mut p: Pending,
        until: Instant,
        why: Deferral,
    ) {
        let reason = why.label();
        tracing::debug!(workload = %key, reason, "reload deferred");
        self.metrics
            .deferred
            .get_or_create(&ReasonLabels { reason })
            .inc();
        p.due = until;
        self.pending.insert(key, p);
    }

    pub(super) fn requeue(
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
