//! The compact caches: each config as its hash and a few flags (never its data), each
//! workload as its reload-relevant facts, and a reverse index from a config to the
//! workloads that reference or name it, so a change costs no LIST of workloads.

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
    configs: HashMap<ConfigKey, ConfigEntry>,
    workloads: HashMap<WorkloadKey, Arc<WorkloadFacts>>,
    by_config: HashMap<ConfigKey, HashSet<WorkloadKey>>,
    /// Workloads with a regex reload item, by namespace.
    with_patterns: HashMap<String, HashSet<WorkloadKey>>,
}

impl Store {
    pub fn config(&self, key: &ConfigKey) -> Option<&ConfigEntry> {
        self.configs.get(key)
    }

    /// Records a config and returns what was there before.
    pub fn put_config(&mut self, key: ConfigKey, entry: ConfigEntry) -> Option<ConfigEntry> {
        self.configs.insert(key, entry)
    }

    pub fn remove_config(&mut self, key: &ConfigKey) -> Option<ConfigEntry> {
        self.configs.remove(key)
    }

    pub fn config_count(&self) -> usize {
        self.configs.len()
    }

    pub fn configs(&self) -> impl Iterator<Item = (&ConfigKey, &ConfigEntry)> {
        self.configs.iter()
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
        let (named, any_regex) = facts.named();
        let referenced = facts.refs.refs.iter().map(|r| (r.kind, r.name.clone()));
        for (kind, name) in referenced.chain(named) {
            let ck = ConfigKey {
                kind,
                namespace: key.namespace.clone(),
                name,
            };
            self.by_config.entry(ck).or_default().insert(key.clone());
        }
        if any_regex {
            self.with_patterns
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.clone());
        }
        self.workloads.insert(key, Arc::new(facts));
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
            if let Some(set) = self.by_config.get_mut(&ck) {
                set.remove(key);
                if set.is_empty() {
                    self.by_config.remove(&ck);
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
        let direct = self.by_config.get(config).into_iter().flatten();
        let patterned = self
            .with_patterns
            .get(&config.namespace)
            .into_iter()
            .flatten();
        let mut seen = HashSet::new();
        direct
            .chain(patterned)
            .filter(|k| seen.insert(*k))
            .filter_map(|k| self.workloads.get(k).cloned())
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
        assert!(s.by_config.is_empty() && s.with_patterns.is_empty());
    }
}
