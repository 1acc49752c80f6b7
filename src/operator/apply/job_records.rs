//! Job re-creations in progress, kept durably. Stakater's Job reload deletes the Job and
//! creates it again; between the two only we hold it. So the Job to create is written here
//! before the delete and removed once it exists again: a lost answer, a restart or a new
//! leader finishes it, exactly once (a Job's name is unique, and a Job of that name with
//! another uid means the work is done, or the name is someone else's now).
//!
//! Kept in Secrets, since a Job's pod spec may carry credentials: `kube-reloader-jobs-NN`
//! in the state namespace, one data key per Job. Read by name, so the operator needs no
//! list of Secrets there.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::batch::v1::Job, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::operator::model::kinds::FIELD_MANAGER;

/// Fixed, so a Job's record never moves. A record is a few KiB: thousands fit.
pub const SHARDS: usize = 16;

pub const NAME_PREFIX: &str = "kube-reloader-jobs";

/// A Job deleted (or about to be) for its reload, and the Job to create in its place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub namespace: String,
    pub name: String,
    /// The uid of the Job being replaced.
    pub uid: String,
    /// The Job to create: the old one with the markers and without what the API server set.
    pub job: Job,
}

pub fn shard_name(shard: usize) -> String {
    format!("{NAME_PREFIX}-{shard:02}")
}

/// FNV-1a over `namespace/name`: stable across builds and processes.
fn shard_of(namespace: &str, name: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(name.bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

/// `_` is in no namespace or Job name, and is allowed in a Secret's data key.
fn data_key(namespace: &str, name: &str) -> String {
    format!("{namespace}_{name}")
}

/// The records' Secrets in the state namespace.
#[derive(Clone)]
pub struct JobRecords {
    api: Api<Secret>,
}

impl JobRecords {
    pub fn new(client: Client, namespace: &str) -> Self {
        JobRecords {
            api: Api::namespaced(client, namespace),
        }
    }

    /// Writes `record`, creating its Secret the first time.
    pub async fn put(&self, record: &JobRecord) -> kube::Result<()> {
        let shard = shard_name(shard_of(&record.namespace, &record.name));
        let key = data_key(&record.namespace, &record.name);
        let value = ByteString(serde_json::to_vec(record).expect("a Job serializes"));
        let patch = json!({ "data": { key.clone(): value } });
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match self.api.patch(&shard, &pp, &Patch::Merge(&patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => return other.map(|_| ()),
        }
        let secret = Secret {
            metadata: kube::core::ObjectMeta {
                name: Some(shard.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "kube-reloader".to_owned(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(key, value)])),
            ..Default::default()
        };
        let post = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match self.api.create(&post, &secret).await {
            // Created meanwhile by another write: patch it.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            other => return other.map(|_| ()),
        }
        self.api.patch(&shard, &pp, &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Forgets the record of `namespace/name`, if any.
    pub async fn remove(&self, namespace: &str, name: &str) -> kube::Result<()> {
        let shard = shard_name(shard_of(namespace, name));
        let patch = json!({ "data": { data_key(namespace, name): null } });
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match self.api.patch(&shard, &pp, &Patch::Merge(&patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub async fn get(&self, namespace: &str, name: &str) -> kube::Result<Option<JobRecord>> {
        let shard = shard_name(shard_of(namespace, name));
        let Some(secret) = self.api.get_opt(&shard).await? else {
            return Ok(None);
        };
        let key = data_key(namespace, name);
        Ok(records(&shard, secret)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r))
    }

    /// Every record (for a start-up or a new leader to finish).
    pub async fn all(&self) -> kube::Result<Vec<JobRecord>> {
        let mut out = Vec::new();
        for shard in (0..SHARDS).map(shard_name) {
            if let Some(secret) = self.api.get_opt(&shard).await? {
                out.extend(records(&shard, secret).into_iter().map(|(_, r)| r));
            }
        }
        Ok(out)
    }
}

/// A shard's records by data key; unreadable ones are logged and left out.
fn records(shard: &str, secret: Secret) -> Vec<(String, JobRecord)> {
    let data = secret.data.unwrap_or_default();
    data.into_iter()
        .filter_map(|(key, value)| match serde_json::from_slice(&value.0) {
            Ok(record) => Some((key, record)),
            Err(e) => {
                tracing::warn!(secret = shard, key, error = %e, "unreadable Job record; ignored");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_keeps_its_shard_and_key() {
        assert_eq!(shard_of("team-a", "migrate"), shard_of("team-a", "migrate"));
        assert!(shard_of("team-a", "migrate") < SHARDS);
        assert_ne!(data_key("a", "b-c"), data_key("a-b", "c"));
        assert_eq!(shard_name(3), "kube-reloader-jobs-03");
        let spread: std::collections::HashSet<usize> = (0..200)
            .map(|i| shard_of("ns", &format!("job-{i}")))
            .collect();
        assert_eq!(spread.len(), SHARDS, "records spread over every shard");
    }

    #[test]
    fn a_record_round_trips_and_a_bad_one_is_left_out() {
        let job: Job = serde_json::from_value(json!({
            "metadata": { "name": "migrate" },
            "spec": { "template": { "spec": { "containers": [{ "name": "m", "image": "x" }] } } }
        }))
        .unwrap();
        let record = JobRecord {
            namespace: "ns".into(),
            name: "migrate".into(),
            uid: "u1".into(),
            job,
        };
        let secret = Secret {
            data: Some(BTreeMap::from([
                (
                    "ns_migrate".into(),
                    ByteString(serde_json::to_vec(&record).unwrap()),
                ),
                ("ns_bad".into(), ByteString(b"not json".to_vec())),
            ])),
            ..Default::default()
        };
        assert_eq!(records("s", secret), [("ns_migrate".to_owned(), record)]);
    }
}
