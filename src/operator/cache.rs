//! The compact caches: each config as its hash and a few flags (never its data), each
//! workload as its reload-relevant facts, and, beside each config, the workloads that
//! reference or name it, so a change costs no LIST of workloads.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::operator::model::{
    facts::{ConfigEntry, WorkloadFacts},
    kinds::{ConfigKey, WorkloadKey},
};

#[derive(Default)]
pub struct Store {
    /// Every config that is cached, or referenced or named by a workload, or both: one
    /// key per config, so the reverse index costs no second copy of it (S2 in bench/).
    configs: HashMap<ConfigKey, Slot>,
    /// How many slots hold an entry (a config the caches have seen).
    cached: usize,
    workloads: HashMap<WorkloadKey, Arc<WorkloadFacts>>,
    /// Workloads with a regex reload item, by namespace.
    with_patterns: HashMap<String, HashSet<WorkloadKey>>,
}

/// One config: its entry once the caches have seen it, and the workloads that use it.
#[derive(Default)]
struct Slot {
    entry: Option<ConfigEntry>,
    users: Users,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.entry.is_none() && matches!(self.users, Users::None)
    }
}

/// Nearly every config has one user: it is held inline, and a map only for shared ones.
#[derive(Default)]
enum Users {
    #[default]
    None,
    One(Arc<WorkloadFacts>),
    // Boxed: a map inline would make every config's slot 40 bytes larger, for the few shared.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<WorkloadKey, Arc<WorkloadFacts>>>),
}

impl Users {
    fn add(&mut self, facts: &Arc<WorkloadFacts>) {
        match self {
            Users::None => *self = Users::One(facts.clone()),
            Users::One(one) if one.key == facts.key => *one = facts.clone(),
            Users::One(one) => {
                let many = [one.clone(), facts.clone()].map(|f| (f.key.clone(), f));
                *self = Users::Many(Box::new(many.into_iter().collect()));
            }
            Users::Many(many) => {
                many.insert(facts.key.clone(), facts.clone());
            }
        }
    }

    fn remove(&mut self, key: &WorkloadKey) {
        match self {
            Users::One(one) if one.key == *key => *self = Users::None,
            Users::Many(many) => {
                many.remove(key);
                if many.len() <= 1 {
                    let last = many.drain().next().map(|(_, last)| last);
                    *self = last.map_or(Users::None, Users::One);
                }
            }
            _ => {}
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Arc<WorkloadFacts>> + '_> {
        match self {
            Users::None => Box::new(std::iter::empty()),
            Users::One(one) => Box::new(std::iter::once(one)),
            Users::Many(many) => Box::new(many.values()),
        }
    }
}

impl Store {
    pub fn config(&self, key: &ConfigKey) -> Option<&ConfigEntry> {
        self.configs.get(key)?.entry.as_ref()
    }

    /// Records a config and returns what was there before.
    pub fn put_config(&mut self, key: ConfigKey, entry: ConfigEntry) -> Option<ConfigEntry> {
        let before = self.configs.entry(key).or_default().entry.replace(entry);
        self.cached += usize::from(before.is_none());
        before
    }

    pub fn remove_config(&mut self, key: &ConfigKey) -> Option<ConfigEntry> {
        let slot = self.configs.get_mut(key)?;
        let before = slot.entry.take()?;
        self.cached -= 1;
        if slot.is_empty() {
            self.configs.remove(key);
        }
        Some(before)
    }

    pub fn config_count(&self) -> usize {
        self.cached
    }

    pub fn configs(&self) -> impl Iterator<Item = (&ConfigKey, &ConfigEntry)> {
        self.configs
            .iter()
            .filter_map(|(k, slot)| Some((k, slot.entry.as_ref()?)))
    }

    pub fn workload(&self, key: &WorkloadKey) -> Option<&Arc<WorkloadFacts>> {
        self.workloads.get(key)
    }

    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    pub fn workloads(&self) -> impl Iterator<Item = &Arc<WorkloadFacts>> {
        self.workloads.values()
    }

    /// Records a workload, re-indexing it; returns the previous facts.
    pub fn put_workload(&mut self, facts: WorkloadFacts) -> Option<Arc<WorkloadFacts>> {
        let key = facts.key.clone();
        let old = self.remove_workload(&key);
        let facts = Arc::new(facts);
        let (named, any_regex) = facts.named();
        let referenced = facts.refs.refs.iter().map(|r| (r.kind, r.name.clone()));
        for (kind, name) in referenced.chain(named) {
            let ck = ConfigKey {
                kind,
                namespace: key.namespace.clone(),
                name,
            };
            self.configs.entry(ck).or_default().users.add(&facts);
        }
        if any_regex {
            self.with_patterns
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.clone());
        }
        self.workloads.insert(key, facts);
        old
    }

    pub fn remove_workload(&mut self, key: &WorkloadKey) -> Option<Arc<WorkloadFacts>> {
        let old = self.workloads.remove(key)?;
        let (named, _) = old.named();
        let referenced = old.refs.refs.iter().map(|r| (r.kind, r.name.clone()));
        for (kind, name) in referenced.chain(named) {
            let ck = ConfigKey {
                kind,
                namespace: key.namespace.clone(),
                name,
            };
            if let Some(slot) = self.configs.get_mut(&ck) {
                slot.users.remove(key);
                if slot.is_empty() {
                    self.configs.remove(&ck);
                }
            }
        }
        if let Some(set) = self.with_patterns.get_mut(&key.namespace) {
            set.remove(key);
            if set.is_empty() {
                self.with_patterns.remove(&key.namespace);
            }
        }
        Some(old)
    }

    /// The workloads that might roll when `config` changes: those that reference it or
    /// name it literally, plus those of its namespace with a regex reload item.
    pub fn candidates(&self, config: &ConfigKey) -> Vec<Arc<WorkloadFacts>> {
        let direct = self
            .configs
            .get(config)
            .into_iter()
            .flat_map(|s| s.users.iter());
        let patterned = self
            .with_patterns
            .get(&config.namespace)
            .into_iter()
            .flatten()
            .filter_map(|k| self.workloads.get(k));
        let mut seen = HashSet::new();
        direct
            .chain(patterned)
            .filter(|f| seen.insert(&f.key))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::operator::model::{
        annotations::{AnnotationKeys, WorkloadRules},
        kinds::{ConfigKind, WorkloadKind},
        references::{ConfigRef, PodRefs},
    };

    fn facts(name: &str, annotations: &[(&str, &str)], refs: &[&str]) -> WorkloadFacts {
        let a: BTreeMap<_, _> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorkloadFacts {
            key: WorkloadKey {
                kind: WorkloadKind::Deployment,
                namespace: "ns".into(),
                name: name.into(),
            },
            uid: format!("uid-{name}"),
            rules: WorkloadRules::parse(&AnnotationKeys::default(), Some(&a), None),
            refs: PodRefs {
                containers: vec!["c".into()],
                refs: refs
                    .iter()
                    .map(|n| ConfigRef {
                        kind: ConfigKind::ConfigMap,
                        name: n.to_string(),
                        container: "c".into(),
                    })
                    .collect(),
            },
            env_markers: vec![],
            ..WorkloadFacts::bare("ns", "")
        }
    }

    fn cm(ns: &str, name: &str) -> ConfigKey {
        ConfigKey {
            kind: ConfigKind::ConfigMap,
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn names(v: Vec<Arc<WorkloadFacts>>) -> Vec<String> {
        let mut n: Vec<_> = v.iter().map(|f| f.key.name.clone()).collect();
        n.sort();
        n
    }

    #[test]
    fn index_finds_referencing_and_naming_workloads() {
        let mut s = Store::default();
        s.put_workload(facts("uses", &[], &["a"]));
        s.put_workload(facts(
            "names",
            &[("configmap.reloader.stakater.com/reload", "a,b")],
            &[],
        ));
        s.put_workload(facts(
            "regex",
            &[("configmap.reloader.stakater.com/reload", "x-.*")],
            &[],
        ));
        s.put_workload(facts("other", &[], &["z"]));
        assert_eq!(
            names(s.candidates(&cm("ns", "a"))),
            ["names", "regex", "uses"]
        );
        assert_eq!(names(s.candidates(&cm("ns", "b"))), ["names", "regex"]);
        assert_eq!(
            names(s.candidates(&cm("other-ns", "a"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn replacing_and_removing_a_workload_reindexes_it() {
        let mut s = Store::default();
        s.put_workload(facts("w", &[], &["a"]));
        s.put_workload(facts("w", &[], &["b"]));
        assert!(s.candidates(&cm("ns", "a")).is_empty());
        assert_eq!(names(s.candidates(&cm("ns", "b"))), ["w"]);
        s.remove_workload(&facts("w", &[], &[]).key);
        assert!(s.candidates(&cm("ns", "b")).is_empty());
        assert!(s.configs.is_empty() && s.with_patterns.is_empty());
    }

    #[test]
    fn a_shared_config_keeps_each_user_until_it_goes() {
        let mut s = Store::default();
        for w in ["a", "b", "c"] {
            s.put_workload(facts(w, &[], &["shared"]));
        }
        assert_eq!(names(s.candidates(&cm("ns", "shared"))), ["a", "b", "c"]);
        s.remove_workload(&facts("b", &[], &[]).key);
        assert_eq!(names(s.candidates(&cm("ns", "shared"))), ["a", "c"]);
        s.remove_workload(&facts("a", &[], &[]).key);
        s.put_workload(facts("c", &[], &["shared", "other"]));
        assert_eq!(names(s.candidates(&cm("ns", "shared"))), ["c"]);
        s.remove_workload(&facts("c", &[], &[]).key);
        assert!(s.configs.is_empty());
    }

    #[test]
    fn a_config_and_its_users_come_and_go_independently() {
        let mut s = Store::default();
        let entry = || ConfigEntry {
            hash: crate::operator::model::hash::ConfigHash::empty(),
            flags: Default::default(),
        };
        s.put_workload(facts("w", &[], &["a"]));
        assert!(s.config(&cm("ns", "a")).is_none());
        assert_eq!(s.config_count(), 0);
        assert!(s.put_config(cm("ns", "a"), entry()).is_none());
        assert!(s.put_config(cm("ns", "a"), entry()).is_some());
        assert_eq!((s.config_count(), s.configs().count()), (1, 1));
        s.remove_workload(&facts("w", &[], &[]).key);
        assert!(s.config(&cm("ns", "a")).is_some());
        s.put_workload(facts("w", &[], &["a"]));
        assert!(s.remove_config(&cm("ns", "a")).is_some());
        assert!(s.remove_config(&cm("ns", "a")).is_none());
        assert_eq!((s.config_count(), s.configs().count()), (0, 0));
        assert_eq!(names(s.candidates(&cm("ns", "a"))), ["w"]);
        s.remove_workload(&facts("w", &[], &[]).key);
        assert!(s.configs.is_empty());
    }
}
