//! The persisted state kept as where it differs from the caches. Nearly every config is
//! persisted at the hash the caches hold, so a full second map of every key (as the state
//! read at start-up is) would double the memory per config for nothing; this holds only
//! the configs whose change is not fully applied yet, or that the caches no longer hold.

use std::collections::{HashMap, HashSet};

use super::{State, encode};
use crate::operator::model::{hash::ConfigHash, kinds::ConfigKey};

/// A config absent from `held` is persisted at its cached hash (or, while `none_persisted`,
/// not persisted); `Some(h)`: persisted at `h`; `None`: not persisted at all (created since
/// the last flush).
#[derive(Debug, Default)]
pub struct StateDiff {
    held: HashMap<ConfigKey, Option<ConfigHash>>,
    /// Nothing persisted yet (a first start): every config would be held as `None` until
    /// the first flush; this says so without an entry per config.
    none_persisted: bool,
}

impl StateDiff {
    /// `persisted` (a whole state, as read) against the caches: `current` lists them,
    /// `cached` looks a config up in them.
    pub fn of<'a>(
        persisted: &State,
        current: impl Iterator<Item = (&'a ConfigKey, ConfigHash)>,
        cached: impl Fn(&ConfigKey) -> bool,
    ) -> Self {
        if persisted.is_empty() {
            return StateDiff {
                held: HashMap::new(),
                none_persisted: true,
            };
        }
        let mut diff = HashMap::new();
        for (key, hash) in current {
            match persisted.get(key) {
                Some(p) if *p == hash => {}
                p => {
                    diff.insert(key.clone(), p.copied());
                }
            }
        }
        for (key, p) in persisted {
            if !cached(key) {
                diff.insert(key.clone(), Some(*p));
            }
        }
        StateDiff {
            held: diff,
            none_persisted: false,
        }
    }

    /// The caches change `key` from `before` to `after` (`None`: absent): what is persisted
    /// for it is remembered, unless it already is.
    pub fn cache_changing(
        &mut self,
        key: &ConfigKey,
        before: Option<ConfigHash>,
        after: Option<ConfigHash>,
    ) {
        if before != after && !self.none_persisted && !self.held.contains_key(key) {
            self.held.insert(key.clone(), before);
        }
    }

    /// A flush (`state::advance` on the whole state): a config with nothing outstanding
    /// is persisted at its cached hash again, or dropped when the caches lost it; an
    /// outstanding one keeps what it had, `UNAPPLIED` when that was nothing.
    pub fn advance(
        &mut self,
        outstanding: &HashSet<&ConfigKey>,
        cached: impl Fn(&ConfigKey) -> bool,
    ) {
        if std::mem::take(&mut self.none_persisted) {
            for key in outstanding {
                self.held.entry((*key).clone()).or_insert(None);
            }
        }
        self.held.retain(|key, persisted| {
            if !outstanding.contains(key) {
                return false;
            }
            match persisted {
                Some(_) => true,
                None if cached(key) => {
                    *persisted = Some(ConfigHash::UNAPPLIED);
                    true
                }
                None => false,
            }
        });
        // The first flush after a start empties a diff of every config: give the table back.
        if self.held.capacity() > 4 * self.held.len() + 64 {
            self.held.shrink_to_fit();
        }
    }

    /// Each shard's text, as `state::encode` writes the whole state.
    pub fn encode<'a>(
        &'a self,
        current: impl Iterator<Item = (&'a ConfigKey, ConfigHash)>,
        cached: impl Fn(&ConfigKey) -> bool,
    ) -> Vec<String> {
        let mut entries: Vec<(&ConfigKey, ConfigHash)> = current
            .filter_map(|(key, hash)| match self.held.get(key) {
                None => (!self.none_persisted).then_some((key, hash)),
                Some(p) => p.map(|p| (key, p)),
            })
            .collect();
        let gone = self.held.iter().filter(|(key, _)| !cached(key));
        entries.extend(gone.filter_map(|(key, p)| p.map(|p| (key, p))));
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        encode(entries)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{
        model::{hash::of_str, kinds::ConfigKind},
        state::advance,
    };

    fn key(name: &str) -> ConfigKey {
        ConfigKey {
            kind: ConfigKind::ConfigMap,
            namespace: "n".into(),
            name: name.into(),
        }
    }

    /// A small deterministic generator, so the walk is the same on every run.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random changes to the caches and the outstanding set, flushed now and then: the
    /// diff must encode exactly what `advance` on the whole state does, and stay small.
    #[test]
    fn the_diff_encodes_what_the_whole_state_does() {
        let keys: Vec<ConfigKey> = (0..12).map(|i| key(&format!("c{i}"))).collect();
        let mut rng = Lcg(7);
        for run in 0..200 {
            let mut cache: HashMap<ConfigKey, ConfigHash> = HashMap::new();
            for k in keys.iter().filter(|_| rng.below(3) > 0) {
                cache.insert(k.clone(), of_str(&format!("{run}-{}", k.name)));
            }
            // What an earlier operator persisted: some of these, some others.
            // A quarter of the runs are a first start: nothing persisted.
            let mut whole = State::new();
            for k in keys.iter().filter(|_| run % 4 != 0) {
                if rng.below(2) == 0 {
                    continue;
                }
                let h = match cache.get(k) {
                    Some(h) if rng.below(2) == 0 => *h,
                    _ => of_str(&format!("old-{}", k.name)),
                };
                whole.insert(k.clone(), h);
            }
            let entries = |c: &HashMap<ConfigKey, ConfigHash>| {
                let mut v: Vec<(ConfigKey, ConfigHash)> =
                    c.iter().map(|(k, h)| (k.clone(), *h)).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            };
            let list = entries(&cache);
            let mut diff = StateDiff::of(&whole, list.iter().map(|(k, h)| (k, *h)), |k| {
                cache.contains_key(k)
            });
            for step in 0..30 {
                let k = &keys[rng.below(keys.len() as u64) as usize];
                let before = cache.get(k).copied();
                let after = match rng.below(4) {
                    0 => None,
                    1 => before,
                    _ => Some(of_str(&format!("{run}-{step}-{}", k.name))),
                };
                diff.cache_changing(k, before, after);
                match after {
                    Some(h) => cache.insert(k.clone(), h),
                    None => cache.remove(k),
                };
                if rng.below(3) == 0 {
                    let outstanding: HashSet<&ConfigKey> =
                        keys.iter().filter(|_| rng.below(3) == 0).collect();
                    let list = entries(&cache);
                    let current = || list.iter().map(|(k, h)| (k, *h));
                    whole = advance(&whole, current(), &outstanding);
                    diff.advance(&outstanding, |k| cache.contains_key(k));
                    let want = encode(whole.iter().map(|(k, h)| (k, *h)));
                    let got = diff.encode(current(), |k| cache.contains_key(k));
                    assert_eq!(got, want, "run {run}, step {step}");
                    assert!(
                        diff.len() <= outstanding.len(),
                        "only outstanding configs held"
                    );
                }
            }
        }
    }

    #[test]
    fn an_unchanged_config_is_not_held() {
        let (a, b) = (key("a"), key("b"));
        let whole = State::from([(a.clone(), of_str("a1")), (b.clone(), of_str("b0"))]);
        let cache = HashMap::from([(a.clone(), of_str("a1")), (b.clone(), of_str("b1"))]);
        let mut diff = StateDiff::of(&whole, cache.iter().map(|(k, h)| (k, *h)), |k| {
            cache.contains_key(k)
        });
        assert_eq!(diff.len(), 1, "only b differs");
        diff.cache_changing(&a, Some(of_str("a1")), Some(of_str("a1")));
        assert_eq!(diff.len(), 1, "an update that keeps the hash is no change");
        diff.advance(&HashSet::new(), |k| cache.contains_key(k));
        assert_eq!(
            diff.len(),
            0,
            "nothing outstanding: all at their cached hash"
        );
    }

    #[test]
    fn a_first_start_holds_nothing_per_config() {
        let cache: HashMap<ConfigKey, ConfigHash> = (0..100)
            .map(|i| (key(&format!("c{i}")), of_str("x")))
            .collect();
        let cached = |k: &ConfigKey| cache.contains_key(k);
        let current = || cache.iter().map(|(k, h)| (k, *h));
        let mut diff = StateDiff::of(&State::new(), current(), cached);
        diff.cache_changing(&key("c1"), Some(of_str("x")), Some(of_str("y")));
        assert_eq!(diff.len(), 0);
        assert!(diff.encode(current(), cached).iter().all(String::is_empty));
        let c2 = key("c2");
        let outstanding = HashSet::from([&c2]);
        diff.advance(&outstanding, cached);
        assert_eq!(diff.len(), 1, "only the outstanding one, as unapplied");
    }
}
