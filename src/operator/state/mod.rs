//! The persisted state (pure part): the last hash of each config whose dependents have all
//! been written. It is kept in `SHARDS` ConfigMaps named `kube-reloader-state-<n>`, each
//! holding one sorted line per config, so a restart or a new leader can tell what changed
//! while no operator was watching, and an unchanged shard is never rewritten.

pub(crate) mod configmaps;
mod diff;

pub use diff::StateDiff;

use std::collections::{BTreeMap, HashSet};

use crate::operator::model::{
    hash::ConfigHash,
    kinds::{ConfigKey, ConfigKind},
};

/// Fixed, so a config's shard never moves. 100,000 configs with 60-byte names are about
/// 160 KiB per shard; even the longest legal names (253 + 63) stay near 560 KiB.
pub const SHARDS: usize = 64;

pub const NAME_PREFIX: &str = "kube-reloader-state";

/// The shard that exists once a whole state has been stored: always written, even empty,
/// and last, so a first write cut short reads as no state at all rather than as a state
/// missing the configs of the shards not yet written.
pub const ANCHOR: usize = 0;

pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const COMPONENT: &str = "kube-reloader-state";

/// Whether a ConfigMap is one of our state shards (by its component label).
pub fn is_state_object(meta: &kube::core::ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(COMPONENT_LABEL))
        .is_some_and(|v| v == COMPONENT)
}

/// The data key inside each shard ConfigMap.
pub const DATA_KEY: &str = "entries";

pub type State = BTreeMap<ConfigKey, ConfigHash>;

/// A shard's text as a SHA-1 digest: what is kept of a stored shard, to tell whether it
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardDigest([u8; 20]);

impl ShardDigest {
    pub fn of(text: &str) -> Self {
        use sha1::{Digest, Sha1};
        ShardDigest(Sha1::digest(text.as_bytes()).into())
    }
}

pub fn shard_name(shard: usize) -> String {
    format!("{NAME_PREFIX}-{shard:02}")
}

/// FNV-1a over `kind/namespace/name`: stable across builds and processes.
pub fn shard_of(key: &ConfigKey) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [kind_code(key.kind), &key.namespace, &key.name];
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ u64::from(b'/')).wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % SHARDS as u64) as usize
}

fn kind_code(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::ConfigMap => "c",
        ConfigKind::Secret => "s",
        ConfigKind::SecretProviderClass => "p",
    }
}

fn kind_of(code: &str) -> Option<ConfigKind> {
    match code {
        "c" => Some(ConfigKind::ConfigMap),
        "s" => Some(ConfigKind::Secret),
        "p" => Some(ConfigKind::SecretProviderClass),
        _ => None,
    }
}

/// Each shard's text: `<kind> <namespace> <name> <hash>` lines, in the order given, which
/// is key order (names hold no spaces), so the text is deterministic.
pub fn encode<'a>(sorted: impl IntoIterator<Item = (&'a ConfigKey, ConfigHash)>) -> Vec<String> {
    let mut shards = vec![String::new(); SHARDS];
    for (key, hash) in sorted {
        let out = &mut shards[shard_of(key)];
        out.push_str(kind_code(key.kind));
        out.push(' ');
        out.push_str(&key.namespace);
        out.push(' ');
        out.push_str(&key.name);
        out.push(' ');
        out.push_str(&hash.to_string());
        out.push('\n');
    }
    shards
}

/// Parses one shard's text into `into`; returns the lines it could not read.
pub fn decode_into(text: &str, into: &mut State) -> usize {
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.split(' ');
        let parsed = (|| {
            let kind = kind_of(parts.next()?)?;
            let namespace = parts.next()?.to_owned();
            let name = parts.next()?.to_owned();
            let hash = ConfigHash::parse(parts.next()?)?;
            parts.next().is_none().then_some(())?;
            Some((
                ConfigKey {
                    kind,
                    namespace,
                    name,
                },
                hash,
            ))
        })();
        match parsed {
            Some((k, h)) => {
                into.insert(k, h);
            }
            None => bad += 1,
        }
    }
    bad
}

/// What to persist now: a config's current hash once no reload for it is outstanding,
/// otherwise what was persisted before (the change is not fully applied yet), or, with
/// nothing persisted before (a first run, a config created since), `UNAPPLIED`. Configs
/// gone from the caches and not outstanding are dropped. The rule on a whole state: the
/// model `StateDiff` is tested against, which applies it without copying every config.
#[cfg(test)]
pub fn advance<'a>(
    previous: &State,
    current: impl Iterator<Item = (&'a ConfigKey, ConfigHash)>,
    outstanding: &HashSet<&ConfigKey>,
) -> State {
    let mut next = State::new();
    for (key, hash) in current {
        let held = outstanding.contains(key);
        let hash = match previous.get(key) {
            Some(old) if held => *old,
            None if held => ConfigHash::UNAPPLIED,
            _ => hash,
        };
        next.insert(key.clone(), hash);
    }
    for key in outstanding {
        if let Some(old) = previous.get(*key) {
            next.entry((*key).clone()).or_insert(*old);
        }
    }
    next
}

/// How a config differs between the persisted state and the caches at start-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Missed {
    Changed(ConfigKey),
    Created(ConfigKey),
    Deleted(ConfigKey),
}

/// The changes made while no operator was watching.
pub fn missed<'a>(
    persisted: &State,
    current: impl Iterator<Item = (&'a ConfigKey, ConfigHash)>,
) -> Vec<Missed> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (key, hash) in current {
        seen.insert(key);
        match persisted.get(key) {
            Some(old) if *old != hash => out.push(Missed::Changed(key.clone())),
            Some(_) => {}
            None => out.push(Missed::Created(key.clone())),
        }
    }
    for key in persisted.keys() {
        if !seen.contains(key) {
            out.push(Missed::Deleted(key.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> ConfigKey {
        ConfigKey {
            kind: ConfigKind::Secret,
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn round_trip() {
        let mut s = State::new();
        s.insert(key("a", "x"), crate::operator::model::hash::of_str("1"));
        s.insert(
            ConfigKey {
                kind: ConfigKind::ConfigMap,
                namespace: "b".into(),
                name: "y.z".into(),
            },
            crate::operator::model::hash::of_str("2"),
        );
        let mut back = State::new();
        for shard in encode(s.iter().map(|(k, h)| (k, *h))) {
            assert_eq!(decode_into(&shard, &mut back), 0);
        }
        assert_eq!(back, s);
        assert_eq!(decode_into("x bad line\nc a b nothex\n", &mut back), 2);
    }

    #[test]
    fn a_hundred_thousand_entries_stay_far_below_one_mebibyte_per_shard() {
        let mut s = State::new();
        for i in 0..100_000 {
            // Realistic long names: 30-char namespaces, 60-char names.
            let ns = format!("team-{:03}-production-services", i % 300);
            let name = format!("application-{i:08}-configuration-with-a-longish-name-x");
            s.insert(key(&ns, &name), crate::operator::model::hash::of_str(&name));
        }
        let shards = encode(s.iter().map(|(k, h)| (k, *h)));
        let sizes: Vec<usize> = shards.iter().map(String::len).collect();
        let max = *sizes.iter().max().unwrap();
        let min = *sizes.iter().min().unwrap();
        assert!(max < 512 * 1024, "largest shard {max} bytes");
        assert!(min > max / 2, "shards are balanced: {min}..{max}");
        let mut back = State::new();
        for shard in &shards {
            decode_into(shard, &mut back);
        }
        assert_eq!(back.len(), 100_000);
    }

    #[test]
    fn the_shard_is_stable() {
        // Pinned: changing the function would orphan every persisted entry.
        assert_eq!(
            shard_of(&key("default", "db")),
            shard_of(&key("default", "db"))
        );
        let spread: HashSet<usize> = (0..1000)
            .map(|i| shard_of(&key("n", &i.to_string())))
            .collect();
        assert_eq!(spread.len(), SHARDS);
    }

    #[test]
    fn advance_holds_back_outstanding_configs() {
        let (a, b, gone) = (key("n", "a"), key("n", "b"), key("n", "gone"));
        let h = crate::operator::model::hash::of_str;
        let prev = State::from([(a.clone(), h("a1")), (b.clone(), h("b1")), (gone, h("g"))]);
        let current = [(&a, h("a2")), (&b, h("b2"))];
        let outstanding = HashSet::from([&b]);
        let next = advance(&prev, current.into_iter(), &outstanding);
        assert_eq!(
            next,
            State::from([(a.clone(), h("a2")), (b.clone(), h("b1"))])
        );
    }

    #[test]
    fn an_outstanding_change_with_nothing_persisted_before_is_seen_as_missed_next_time() {
        // A first run: nothing persisted; `b` changed after the caches were listed.
        let (a, b) = (key("n", "a"), key("n", "b"));
        let h = crate::operator::model::hash::of_str;
        let current = [(&a, h("a1")), (&b, h("b2"))];
        let next = advance(&State::new(), current.into_iter(), &HashSet::from([&b]));
        assert_eq!(
            next,
            State::from([(a.clone(), h("a1")), (b.clone(), ConfigHash::UNAPPLIED)])
        );
        // The operator dies before applying it: the next one rolls `b`, and only `b`.
        let current = [(&a, h("a1")), (&b, h("b2"))];
        assert_eq!(missed(&next, current.into_iter()), [Missed::Changed(b)]);
    }

    #[test]
    fn missed_changes() {
        let h = crate::operator::model::hash::of_str;
        let (same, changed, created, deleted) = (
            key("n", "s"),
            key("n", "c"),
            key("n", "new"),
            key("n", "del"),
        );
        let persisted = State::from([
            (same.clone(), h("1")),
            (changed.clone(), h("1")),
            (deleted.clone(), h("1")),
        ]);
        let current = [(&same, h("1")), (&changed, h("2")), (&created, h("1"))];
        let mut m = missed(&persisted, current.into_iter());
        m.sort_by_key(|m| format!("{m:?}"));
        assert_eq!(
            m,
            [
                Missed::Changed(changed),
                Missed::Created(created),
                Missed::Deleted(deleted)
            ]
        );
    }
}
