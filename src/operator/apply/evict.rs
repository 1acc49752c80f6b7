//! The eviction strategy (`kube-reloader.io/reload-strategy: evict`), for pods whose
//! template belongs to another controller (an operator that reverts template edits): the
//! template is left alone; the pods the workload had when the change was applied are
//! evicted through the Eviction API, a bounded number at a time, each batch waiting for the
//! replacements to be Ready. PodDisruptionBudgets are the API server's to enforce (an
//! eviction they refuse is retried). The record on the workload, `kube-reloader.io/evicted-for`,
//! holds the hashes rolled, when, and the uids of the pods to replace (listed after the
//! change, so every pod not in it runs the new config): only those are ever evicted, so a
//! restarted operator finishes the job without evicting a pod twice. (Creation timestamps
//! have whole seconds: "created before the change" cannot tell a pod from its replacement.)

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{EvictParams, ListParams, Patch},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Applier, Failed};
use crate::operator::model::{annotations::EVICTED_FOR, facts::WorkloadFacts};

/// What `kube-reloader.io/evicted-for` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictRecord {
    /// When the change was applied (for people).
    pub since: String,
    pub configs: Vec<EvictedConfig>,
    /// The uids of the pods to replace.
    #[serde(default)]
    pub pods: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictedConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub hash: String,
}

impl EvictRecord {
    pub fn parse(text: Option<&str>) -> EvictRecord {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    pub fn has(&self, kind: &str, name: &str, hash: &str) -> bool {
        (self.configs.iter()).any(|c| c.kind == kind && c.name == name && c.hash == hash)
    }

    /// Sets `name`'s hash, keeping the others'.
    pub fn set(&mut self, kind: &str, name: &str, hash: &str) {
        self.configs.retain(|c| !(c.kind == kind && c.name == name));
        self.configs.push(EvictedConfig {
            kind: kind.into(),
            name: name.into(),
            hash: hash.into(),
        });
    }
}

fn ready(p: &Pod) -> bool {
    let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// How long a batch may wait for its replacements before the reload is retried.
const READY_WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_secs(1);

impl Applier {
    /// Lists the pods to replace into the record, writes it (a merge patch of the
    /// workload's metadata, uid-guarded: no template is touched), then evicts.
    pub(super) async fn evict_for(
        &self,
        facts: &WorkloadFacts,
        record: &str,
    ) -> Result<(), Failed> {
        let mut record = EvictRecord::parse(Some(record));
        record.pods = (self.pods_of(facts).await?.iter())
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let text = serde_json::to_string(&record).expect("a record serializes");
        let body =
            json!({ "metadata": { "uid": facts.uid, "annotations": { EVICTED_FOR: text } } });
        let api = self.api(facts.key.kind, &facts.key.namespace);
        api.patch(&facts.key.name, &self.params(), &Patch::Merge(&body))
            .await?;
        self.evict_pods(facts, &record).await
    }

    async fn pods_of(&self, facts: &WorkloadFacts) -> Result<Vec<Pod>, Failed> {
        let Some(selector) = facts.pod_selector.as_deref() else {
            tracing::warn!(workload = %facts.key, "no pod selector: nothing to evict");
            return Ok(Vec::new());
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &facts.key.namespace);
        Ok(pods
            .list(&ListParams::default().labels(selector))
            .await?
            .items)
    }

    /// Evicts the record's pods still there, at most `kube-reloader.io/evict-max-unavailable`
    /// not Ready at a time.
    pub(super) async fn evict_pods(
        &self,
        facts: &WorkloadFacts,
        record: &EvictRecord,
    ) -> Result<(), Failed> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &facts.key.namespace);
        let max = facts.rules.evict_max_unavailable();
        let mut waited = Duration::ZERO;
        loop {
            let all = self.pods_of(facts).await?;
            let live: Vec<&Pod> = all
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let listed =
                |p: &&Pod| (p.metadata.uid.as_ref()).is_some_and(|u| record.pods.contains(u));
            let mut old: Vec<&Pod> = live.iter().copied().filter(listed).collect();
            if old.is_empty() {
                tracing::info!(workload = %facts.key, "every pod listed at the change is replaced; evictions done");
                return Ok(());
            }
            let terminating = all.len() - live.len();
            let unready = live.iter().filter(|p| !ready(p)).count() + terminating;
            if unready >= max {
                if waited >= READY_WAIT {
                    tracing::warn!(workload = %facts.key, "replacement pods not Ready in time; will retry");
                    return Err(Failed::Stalled);
                }
                tokio::time::sleep(POLL).await;
                waited += POLL;
                continue;
            }
            waited = Duration::ZERO;
            old.sort_by_key(|p| p.metadata.creation_timestamp.clone());
            // Not-Ready old pods first: evicting them costs no availability.
            old.sort_by_key(|p| ready(p));
            for pod in old.into_iter().take(max - unready) {
                let name = pod.metadata.name.clone().unwrap_or_default();
                match pods.evict(&name, &EvictParams::default()).await {
                    Ok(_) => tracing::info!(workload = %facts.key, pod = name, "evicted"),
                    // A PodDisruptionBudget says not now: asked again after a poll.
                    Err(kube::Error::Api(s)) if s.code == 429 => {
                        tracing::debug!(workload = %facts.key, pod = name, "eviction refused by a disruption budget; waiting");
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_every_config_and_replaces_one_hash() {
        let mut r = EvictRecord::parse(Some("not json"));
        assert_eq!(r, EvictRecord::default());
        r.set("CONFIGMAP", "a", "1");
        r.set("SECRET", "s", "1");
        r.set("CONFIGMAP", "a", "2");
        assert!(r.has("CONFIGMAP", "a", "2") && !r.has("CONFIGMAP", "a", "1"));
        assert!(r.has("SECRET", "s", "1"));
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(EvictRecord::parse(Some(&text)), r);
    }
}
