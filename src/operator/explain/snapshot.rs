//! What `explain` read from the API: the namespace, its configs as hashes and flags, and
//! its workloads as the facts the operator keeps, plus what only `explain` shows.

use std::collections::BTreeMap;

use crate::operator::model::{
    facts::{ConfigFlags, WorkloadFacts},
    hash::ConfigHash,
    kinds::{ConfigKey, ConfigKind},
    references::Usage,
};

/// A config as the API holds it.
#[derive(Clone, Debug)]
pub struct ConfigView {
    pub hash: ConfigHash,
    pub flags: ConfigFlags,
    /// Its labels match `--resource-label-selector` (or there is none).
    pub labels_match: bool,
}

/// The namespace, as far as it could be read.
#[derive(Clone, Debug, Default)]
pub struct NamespaceView {
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One workload as read, with what `explain` needs beyond its facts.
#[derive(Clone, Debug)]
pub struct WorkloadView {
    pub facts: WorkloadFacts,
    pub usages: Vec<Usage>,
    pub metadata_annotations: BTreeMap<String, String>,
    pub template_annotations: BTreeMap<String, String>,
}

/// Everything read from the API.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub namespace: NamespaceView,
    /// The configs of the kinds that could be listed.
    pub configs: BTreeMap<ConfigKey, ConfigView>,
    pub listed: Vec<ConfigKind>,
    pub workloads: Vec<WorkloadView>,
}

impl Snapshot {
    pub fn configs_of(&self, kind: ConfigKind) -> impl Iterator<Item = &str> {
        self.configs
            .keys()
            .filter(move |k| k.kind == kind)
            .map(|k| k.name.as_str())
    }
}
