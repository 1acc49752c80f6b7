//! The engine's side of the persisted state: the start-up catch-up (changes made while no
//! operator watched roll their workloads once) and batched flushes that advance a config's
//! hash only when no reload for it is outstanding.

use std::{collections::HashSet, time::Duration};

use tokio::{sync::mpsc, time::Instant};

use super::{Effect, Engine, Replies};
use crate::operator::{
    metrics::ResultLabels,
    model::{
        hash::ConfigHash,
        kinds::{ConfigKey, ConfigKind},
    },
    state::{
        self, Missed, ShardDigest, State, StateDiff,
        configmaps::{Loaded, StateStore},
    },
};

/// How often the state is written at most: changes are batched, never one write per event.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub struct Persist {
    store: StateStore,
    /// The state as read, until the catch-up compares it with the caches.
    read: State,
    /// From the catch-up on, the state as last computed, as where it differs from the
    /// caches (kept up to date by `config_changing`).
    diff: StateDiff,
    /// A digest of each shard's text as it is stored (`None`: no such ConfigMap): enough
    /// to tell a changed shard, at 20 bytes instead of a line per config.
    stored: Vec<Option<ShardDigest>>,
    phase: Phase,
    flushing: bool,
    next: Instant,
    /// What the state is computed from (the caches, the outstanding reloads, a failed
    /// shard) may have changed since it was last computed. An idle operator computes
    /// nothing and does not wake for it: encoding every config is its costliest turn.
    changed: bool,
}

/// Where the state stands for this replica.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Read into `Persist::state` (`first_run`: there was none at all); the catch-up waits
    /// for warm caches and leadership.
    Read { first_run: bool },
    /// Being read again, for a leadership just gained.
    Reading,
    /// Caught up; flushed while leader.
    Active,
    /// Leadership lost: another replica owns the state until this one leads again.
    Stale,
}

impl Persist {
    pub fn is_flushing(&self) -> bool {
        self.flushing
    }

    pub fn new(store: StateStore, loaded: Loaded) -> Self {
        let mut p = Self::unread(store);
        p.set_read(loaded);
        p
    }

    /// For a replica that starts as a follower (`--enable-ha`): the state is read when it
    /// first leads, as after any leadership gain, not at start-up.
    pub fn unread(store: StateStore) -> Self {
        Persist {
            store,
            read: State::default(),
            diff: StateDiff::default(),
            stored: vec![None; crate::operator::state::SHARDS],
            phase: Phase::Stale,
            flushing: false,
            next: Instant::now(),
            changed: true,
        }
    }

    fn set_read(&mut self, loaded: Loaded) {
        self.phase = Phase::Read {
            first_run: loaded.state.is_none(),
        };
        self.read = loaded.state.unwrap_or_default();
        self.stored = loaded
            .texts
            .iter()
            .map(|t| t.as_deref().map(ShardDigest::of))
            .collect();
        self.changed = true;
    }
}

/// The outcome of one flush: per shard written, its text and whether it was stored.
pub struct Flushed(Vec<(usize, String, bool)>);

#[cfg(test)]
impl Flushed {
    /// Every shard of `dirty` stored.
    pub(super) fn stored(dirty: Vec<(usize, String)>) -> Self {
        Flushed(dirty.into_iter().map(|(i, text)| (i, text, true)).collect())
    }
}

impl Engine {
    /// When the next flush is due (none before the catch-up, none while one runs, none
    /// while following, none while nothing it derives from changed).
    pub(super) fn next_flush(&self) -> Option<Instant> {
        let p = self.persist.as_ref()?;
        let due = p.phase == Phase::Active && !p.flushing && p.changed && self.is_leader();
        due.then_some(p.next)
    }

    /// The caches change `key` from `before` to `after` (`None`: absent); called before
    /// they do, so the state computed last stays known where it now differs from them.
    pub(super) fn config_changing(
        &mut self,
        key: &ConfigKey,
        before: Option<ConfigHash>,
        after: Option<ConfigHash>,
    ) {
        if let Some(p) = self.persist.as_mut()
            && p.phase == Phase::Active
        {
            p.diff.cache_changing(key, before, after);
        }
    }

    /// Something the state derives from may have changed: a watch message, a write's
    /// outcome, a state read, a leadership change, a webhook sent. Not the heartbeat nor
    /// dispatching (a reload in flight is as outstanding as a pending one), so an idle
    /// operator stops flushing once the state is stored.
    pub(super) fn state_may_have_changed(&mut self) {
        if let Some(p) = self.persist.as_mut() {
            p.changed = true;
        }
    }

    /// Leadership gained: the state the previous leader kept is read again, then caught up
    /// with. Lost: stop flushing; the new leader owns the state.
    pub(super) fn on_leadership(&mut self, leader: bool) {
        self.state_may_have_changed();
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        match (leader, &p.phase) {
            (false, _) => {
                p.phase = Phase::Stale;
                // Storing it is the new leader's part now.
                self.ready.send_modify(|r| r.state_unstored = None);
            }
            (true, Phase::Reading) => {}
            // Even a state read at start-up may be stale by now: the leader kept writing.
            (true, _) => {
                p.phase = Phase::Reading;
                self.effects.push(Effect::ReadState(p.store.clone()));
            }
        }
    }

    pub(super) fn on_state_read(&mut self, loaded: Loaded) {
        self.state_may_have_changed();
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        if p.phase != Phase::Reading {
            return;
        }
        p.set_read(loaded);
        self.catch_up();
    }

    /// Once every cache is warm and this replica leads: roll, once, the dependents of
    /// configs that changed while no operator was watching. No state at all (a first run)
    /// rolls nothing.
    pub(super) fn catch_up(&mut self) {
        if !self.all_synced() || !self.is_leader() {
            return;
        }
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        let Phase::Read { first_run } = std::mem::replace(&mut p.phase, Phase::Active) else {
            return;
        };
        p.next = Instant::now();
        let read = std::mem::take(&mut p.read);
        let current = self.store.configs().map(|(k, e)| (k, e.hash));
        p.diff = StateDiff::of(&read, current, |k| self.store.config(k).is_some());
        if p.stored[state::ANCHOR].is_none() {
            let at = crate::operator::state::configmaps::describe(&p.store.namespace);
            self.ready.send_modify(|r| r.state_unstored = Some(at));
        }
        // Job re-creations an earlier operator recorded but did not finish.
        self.effects.push(Effect::FinishRecorded);
        if first_run {
            tracing::info!("no persisted state: first run, nothing to catch up");
            return;
        }
        let persisted = &read;
        let current = self.store.configs().map(|(k, e)| (k, e.hash));
        let missed = state::missed(persisted, current);
        tracing::info!(
            persisted = persisted.len(),
            missed = missed.len(),
            "catching up with changes made while no operator was watching"
        );
        for m in missed {
            let (key, deleted) = match m {
                Missed::Changed(k) => (k, false),
                // A CSI status appearing or going is never a change (as in stakater).
                Missed::Created(k) if k.kind == ConfigKind::SecretProviderClass => continue,
                Missed::Deleted(k) if k.kind == ConfigKind::SecretProviderClass => continue,
                Missed::Created(k) if self.opts.reload_on_create => (k, false),
                Missed::Deleted(k) if self.opts.reload_on_delete => (k, true),
                Missed::Created(_) | Missed::Deleted(_) => continue,
            };
            if !self.namespace_allowed(&key.namespace) {
                continue;
            }
            let flags = self.store.config(&key).map(|e| e.flags).unwrap_or_default();
            tracing::info!(config = %key, deleted, "changed while no operator was watching");
            self.on_config_change(&key, flags, deleted);
        }
    }

    /// The configs whose reloads (or webhook POSTs) are not all done yet.
    fn outstanding(&self) -> HashSet<&ConfigKey> {
        let pending = self.pending.values().flat_map(|p| p.items.iter());
        let pending = pending.map(|i| &i.config);
        let in_flight = self.in_flight.values().flatten();
        let webhooks = self.webhooks.outstanding();
        pending.chain(in_flight).chain(webhooks).collect()
    }

    /// Writes the shards whose text changed, in the background.
    pub(super) fn maybe_flush(&mut self) {
        let now = Instant::now();
        if self.next_flush().is_none_or(|t| t > now) {
            return;
        }
        let mut p = self.persist.take().expect("checked above");
        let cached = |k: &ConfigKey| self.store.config(k).is_some();
        p.diff.advance(&self.outstanding(), cached);
        let current = self.store.configs().map(|(k, e)| (k, e.hash));
        let dirty = dirty_shards(&p.stored, &p.diff.encode(current, cached));
        p.next = now + FLUSH_EVERY;
        p.changed = false;
        if !dirty.is_empty() {
            p.flushing = true;
            self.effects.push(Effect::Flush(p.store.clone(), dirty));
        }
        self.persist = Some(p);
    }

    pub(super) fn on_flushed(&mut self, done: Flushed) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        p.flushing = false;
        for (shard, text, ok) in done.0 {
            let result = if ok { "ok" } else { "error" };
            self.metrics
                .state_writes
                .get_or_create(&ResultLabels { result })
                .inc();
            if ok {
                p.stored[shard] = Some(ShardDigest::of(&text));
            } else {
                // Written again at the next flush.
                p.changed = true;
                self.metrics.error("state");
            }
        }
        if p.stored[state::ANCHOR].is_some() && self.ready.borrow().state_unstored.is_some() {
            tracing::info!(at = %crate::operator::state::configmaps::describe(&p.store.namespace), "first state stored; ready");
            self.ready.send_modify(|r| r.state_unstored = None);
        }
    }

    /// At shutdown: one last flush of what is fully applied, awaited.
    pub(super) async fn final_flush(
        &mut self,
        to: &Replies,
        flushed: &mut mpsc::Receiver<Flushed>,
    ) {
        let leader = self.is_leader();
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        if p.phase != Phase::Active || !leader {
            return; // not caught up, or not ours: the stored state stays as it is
        }
        p.next = Instant::now();
        p.flushing = false;
        self.maybe_flush();
        let flushing = self.persist.as_ref().is_some_and(Persist::is_flushing);
        self.perform(to);
        if flushing && let Some(done) = flushed.recv().await {
            self.on_flushed(done);
        }
    }
}

/// The shards to write, the anchor last (and always, until it exists).
fn dirty_shards(stored: &[Option<ShardDigest>], wanted: &[String]) -> Vec<(usize, String)> {
    let mut dirty: Vec<(usize, String)> = wanted
        .iter()
        .enumerate()
        .filter(|(i, text)| match &stored[*i] {
            Some(old) => *old != ShardDigest::of(text),
            // An empty shard that does not exist stays absent; the anchor never does.
            None => !text.is_empty() || *i == state::ANCHOR,
        })
        .map(|(i, text)| (i, text.clone()))
        .collect();
    dirty.sort_by_key(|(i, _)| *i == state::ANCHOR);
    dirty
}

pub(super) async fn write_shards(store: &StateStore, dirty: Vec<(usize, String)>) -> Flushed {
    let mut out = Vec::with_capacity(dirty.len());
    let mut failed = false;
    for (shard, text) in dirty {
        if shard == state::ANCHOR && failed {
            // Not before the others: a first state must not look whole while it is not.
            out.push((shard, text, false));
            continue;
        }
        let ok = match store.write(shard, &text).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(shard, namespace = %store.namespace, error = %e, "state not written; will retry");
                false
            }
        };
        failed |= !ok;
        out.push((shard, text, ok));
    }
    Flushed(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_or_new_non_empty_shards_are_written() {
        let d = |t: &str| Some(ShardDigest::of(t));
        let stored = vec![d("a\n"), None, None, d("d\n")];
        let wanted = ["a\n", "", "c\n", ""].map(String::from);
        let dirty = dirty_shards(&stored, &wanted);
        assert_eq!(dirty, [(2, "c\n".to_owned()), (3, String::new())]);
    }

    #[test]
    fn the_anchor_is_written_last_and_even_empty_until_it_exists() {
        let stored = vec![None, None, Some(ShardDigest::of("c\n"))];
        let wanted = ["", "b\n", "c2\n"].map(String::from);
        let dirty = dirty_shards(&stored, &wanted);
        assert_eq!(
            dirty,
            [
                (1, "b\n".to_owned()),
                (2, "c2\n".to_owned()),
                (0, String::new())
            ]
        );
        let wanted = ["a\n", "", "c\n"].map(String::from);
        assert_eq!(dirty_shards(&stored, &wanted).last().unwrap().0, 0);
    }
}
