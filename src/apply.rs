//! Writes a planned reload: a strategic merge patch of the pod template under the field
//! manager `kube-reloader` (it owns only the entries it sets), guarded by the workload's
//! uid so a re-created namesake is never patched with stale facts. Then Events.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use serde_json::json;

use crate::{
    kinds::WorkloadKind, options::Options, plan::Write, store::WorkloadFacts,
    strategy::template_patch,
};

pub const FIELD_MANAGER: &str = "kube-reloader";

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The workload is gone (or was re-created): nothing left to reload.
    Gone,
    Retry {
        attempts: u32,
    },
}

#[derive(Clone)]
pub struct Applier {
    client: Client,
    recorder: Recorder,
    opts: Arc<Options>,
}

impl Applier {
    pub fn new(client: Client, opts: Arc<Options>) -> Self {
        let reporter = Reporter {
            controller: "kube-reloader".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Applier {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            opts,
        }
    }

    fn api(&self, kind: WorkloadKind, ns: &str) -> Api<DynamicObject> {
        let (group, version) = kind
            .api_version()
            .split_once('/')
            .unwrap_or(("", kind.api_version()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind.as_str()));
        Api::namespaced_with(self.client.clone(), ns, &ar)
    }

    fn reference(facts: &WorkloadFacts) -> ObjectReference {
        ObjectReference {
            api_version: Some(facts.key.kind.api_version().into()),
            kind: Some(facts.key.kind.as_str().into()),
            name: Some(facts.key.name.clone()),
            namespace: Some(facts.key.namespace.clone()),
            uid: Some(facts.uid.clone()),
            ..Default::default()
        }
    }

    async fn event(&self, facts: &WorkloadFacts, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reload".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &Self::reference(facts)).await {
            tracing::warn!(workload = %facts.key, error = %e, "cannot publish event");
        }
    }

    /// Reports invalid annotations once per distinct set of problems.
    pub fn warn_invalid(&self, facts: &WorkloadFacts) {
        let this = self.clone();
        let facts = facts.clone();
        tokio::spawn(async move {
            for p in &facts.problems {
                tracing::warn!(workload = %facts.key, problem = %p, "invalid annotation");
            }
            let note = facts.problems.join("; ");
            this.event(&facts, EventType::Warning, "InvalidAnnotation", note)
                .await;
        });
    }

    pub async fn apply(&self, facts: &WorkloadFacts, write: &Write, attempts: u32) -> WriteOutcome {
        let names: Vec<String> = write.configs.iter().map(|c| c.to_string()).collect();
        if self.opts.dry_run {
            tracing::info!(workload = %facts.key, configs = ?names, "dry run: would reload");
            return WriteOutcome::Written;
        }
        let template = template_patch(&write.markers);
        let spec = match facts.key.kind {
            WorkloadKind::CronJob => json!({ "jobTemplate": { "spec": { "template": template } } }),
            _ => json!({ "template": template }),
        };
        let body = json!({ "metadata": { "uid": facts.uid }, "spec": spec });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let api = self.api(facts.key.kind, &facts.key.namespace);
        match api
            .patch(&facts.key.name, &params, &Patch::Strategic(&body))
            .await
        {
            Ok(_) => {
                tracing::info!(workload = %facts.key, configs = ?names, "reloaded");
                for c in &write.configs {
                    let note = format!(
                        "Changes detected in '{}' of type '{}' in namespace '{}', Updated '{}' of type '{}' in namespace '{}'",
                        c.name,
                        c.kind.stakater_type(),
                        c.namespace,
                        facts.key.name,
                        facts.key.kind,
                        facts.key.namespace
                    );
                    self.event(facts, EventType::Normal, "Reloaded", note).await;
                }
                WriteOutcome::Written
            }
            Err(kube::Error::Api(s))
                if s.code == 404 || (s.code == 409 && s.message.contains("UID")) =>
            {
                tracing::info!(workload = %facts.key, "workload gone before its reload; skipped");
                WriteOutcome::Gone
            }
            Err(e) => {
                tracing::warn!(workload = %facts.key, error = %e, attempt = attempts + 1, "reload failed; will retry");
                if attempts == 0 {
                    let note = format!("Reloading for {} failed: {e}; retrying", names.join(", "));
                    self.event(facts, EventType::Warning, "ReloadFailed", note)
                        .await;
                }
                WriteOutcome::Retry {
                    attempts: attempts + 1,
                }
            }
        }
    }
}
