//! Health-gated waves (`--max-concurrent-rollouts N`): at most N workloads roll at once. A
//! workload holds a slot from its write until its status says the rollout completed, or
//! until `--rollout-timeout`. A rollout that fails (a Deployment's progress deadline) halts
//! the waves, with a RolloutFailed Warning, until it completes. Reloads held back stay
//! pending and go out as slots free, higher `kube-reloader.io/rollout-priority` first:
//! nothing is dropped. Kinds whose status tells no rollout (CronJobs, Jobs, Rollouts,
//! declared kinds) hold a slot only while written.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tokio::time::Instant;

use super::{Effect, Engine};
use crate::operator::model::{facts::WorkloadFacts, kinds::WorkloadKey};

/// A slot taken.
struct Rolling {
    /// The generation before our write: the rollout is ours once it has grown.
    before: i64,
    tracked: bool,
    written: bool,
    deadline: Instant,
}

#[derive(Default)]
pub(super) struct Waves {
    rolling: HashMap<WorkloadKey, Rolling>,
    /// Reloads due but held back, released when a slot frees.
    held: HashSet<WorkloadKey>,
    /// The workload whose failed rollout halts the waves.
    halted: Option<WorkloadKey>,
}

impl Engine {
    /// `None` when the reload of `key` may start now; else until when it is held.
    pub(super) fn wave_hold(&mut self, key: &WorkloadKey, now: Instant) -> Option<Instant> {
        let limits = self.opts.waves.as_ref()?;
        let w = &self.waves;
        if w.halted.is_none() && w.rolling.len() < limits.max {
            return None;
        }
        // Woken by a slot freeing; the deadlines bound the wait when nothing else happens.
        let deadline = w.rolling.values().map(|r| r.deadline).min();
        let until = deadline.unwrap_or(now + limits.timeout).max(now);
        self.waves.held.insert(key.clone());
        Some(until)
    }

    /// A write of `facts` is dispatched: it takes a slot.
    pub(super) fn wave_started(&mut self, facts: &WorkloadFacts, now: Instant) {
        let Some(limits) = &self.opts.waves else {
            return;
        };
        let rolling = Rolling {
            before: facts.rollout.generation,
            // An eviction write waits for the replacements itself; the generation stays.
            tracked: facts.rollout.tracked && !facts.rules.evict,
            written: false,
            deadline: now + limits.timeout,
        };
        self.waves.rolling.insert(facts.key.clone(), rolling);
        self.publish_waves();
    }

    /// The write's outcome: a rollout to follow, or the slot back.
    pub(super) fn wave_written(&mut self, key: &WorkloadKey, written: bool) {
        let Some(r) = self.waves.rolling.get_mut(key) else {
            return;
        };
        if written && r.tracked {
            r.written = true;
            // The status may have been seen complete before the write's answer came back.
            if let Some(facts) = self.store.workload(key).cloned() {
                self.wave_observed(&facts);
            }
        } else {
            self.wave_free(key);
        }
    }

    /// A workload's status as observed: its rollout completed, failed or goes on.
    pub(super) fn wave_observed(&mut self, facts: &Arc<WorkloadFacts>) {
        let key = &facts.key;
        let s = &facts.rollout;
        if self.waves.halted.as_ref() == Some(key) && s.complete && s.failed.is_none() {
            tracing::info!(workload = %key, "the failed rollout completed; the waves go on");
            self.waves.halted = None;
            self.wave_release();
        }
        let Some(r) = self.waves.rolling.get(key).filter(|r| r.written) else {
            return;
        };
        if s.generation <= r.before {
            return; // our write is not in its status yet
        }
        if let Some(why) = &s.failed {
            tracing::warn!(workload = %key, why, "rollout failed; the waves halt until it completes");
            self.metrics.rollouts_failed.inc();
            self.waves.halted = Some(key.clone());
            self.effects
                .push(Effect::RolloutFailed(facts.clone(), why.clone()));
            self.wave_free(key);
        } else if s.complete {
            tracing::debug!(workload = %key, "rollout complete");
            self.wave_free(key);
        }
    }

    /// Slots held past `--rollout-timeout` are given back; the waves go on.
    pub(super) fn wave_expire(&mut self, now: Instant) {
        let expired: Vec<WorkloadKey> = (self.waves.rolling.iter())
            .filter(|(_, r)| r.written && r.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            tracing::warn!(workload = %key, "rollout still not complete at --rollout-timeout; its slot goes to the next");
            self.metrics.rollout_timeouts.inc();
            self.wave_free(&key);
        }
    }

    pub(super) fn next_wave_deadline(&self) -> Option<Instant> {
        let written = self.waves.rolling.values().filter(|r| r.written);
        written.map(|r| r.deadline).min()
    }

    /// A workload gone: its slot and hold with it.
    pub(super) fn wave_forget(&mut self, key: &WorkloadKey) {
        self.waves.held.remove(key);
        if self.waves.halted.as_ref() == Some(key) {
            self.waves.halted = None;
        }
        self.wave_free(key);
    }

    fn wave_free(&mut self, key: &WorkloadKey) {
        self.waves.rolling.remove(key);
        self.wave_release();
    }

    /// Held reloads become due now; `dispatch_due` takes them by priority.
    fn wave_release(&mut self) {
        let now = Instant::now();
        for key in std::mem::take(&mut self.waves.held) {
            if let Some(p) = self.pending.get_mut(&key) {
                p.due = p.due.min(now);
            }
        }
        self.publish_waves();
    }

    fn publish_waves(&self) {
        let m = &self.metrics;
        m.rollouts_in_progress.set(self.waves.rolling.len() as i64);
        m.waves_halted.set(i64::from(self.waves.halted.is_some()));
    }
}
