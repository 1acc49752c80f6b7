//! Stakater's Job and CronJob reloads: a Job is deleted and created again with the markers;
//! a CronJob gets a new Job made from its jobTemplate now.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::batch::v1::{CronJob, Job},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Api,
    api::{DeleteParams, Preconditions, PropagationPolicy},
    runtime::events::EventType,
};

use super::{Applier, Failed, post_params, same_uid};
use crate::{limits::backoff, plan::Write, store::WorkloadFacts, strategy::apply_markers};

impl Applier {
    /// Stakater's CronJob reload: a Job made now from the jobTemplate with the markers,
    /// owned by the CronJob. The CronJob itself is left alone.
    pub(super) async fn create_job_from_cronjob(
        &self,
        facts: &WorkloadFacts,
        write: &Write,
    ) -> Result<(), Failed> {
        let ns = &facts.key.namespace;
        let cronjob: CronJob = Api::namespaced(self.client.clone(), ns)
            .get(&facts.key.name)
            .await?;
        same_uid(&cronjob.metadata, facts)?;
        let tmpl = cronjob.spec.job_template;
        let mut spec = tmpl.spec.unwrap_or_default();
        apply_markers(&mut spec.template, &write.markers);
        let meta = tmpl.metadata.unwrap_or_default();
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
        let job = Job {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", facts.key.name)),
                namespace: Some(ns.clone()),
                annotations: Some(annotations),
                labels: meta.labels,
                owner_references: Some(vec![OwnerReference {
                    api_version: "batch/v1".into(),
                    kind: "CronJob".into(),
                    name: facts.key.name.clone(),
                    uid: facts.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        let pp = post_params();
        Api::<Job>::namespaced(self.client.clone(), ns)
            .create(&pp, &job)
            .await?;
        Ok(())
    }

    /// Stakater's Job reload: delete the Job and create it again, same name, with the
    /// markers and without the fields the API server set.
    pub(super) async fn recreate_job(
        &self,
        facts: &WorkloadFacts,
        write: &Write,
    ) -> Result<(), Failed> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), &facts.key.namespace);
        let mut job = api.get(&facts.key.name).await?;
        same_uid(&job.metadata, facts)?;
        if job.metadata.deletion_timestamp.is_some() {
            return Err(Failed::Gone); // someone is deleting it: not ours to bring back
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: Some(facts.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        api.delete(&facts.key.name, &dp).await?;
        const SERVER_LABELS: [&str; 4] = [
            "controller-uid",
            "batch.kubernetes.io/controller-uid",
            "batch.kubernetes.io/job-name",
            "job-name",
        ];
        let meta = &mut job.metadata;
        meta.resource_version = None;
        meta.uid = None;
        meta.creation_timestamp = None;
        meta.managed_fields = None;
        meta.generation = None;
        if let Some(l) = meta.labels.as_mut() {
            l.retain(|k, _| !SERVER_LABELS.contains(&k.as_str()));
        }
        job.status = None;
        if let Some(spec) = job.spec.as_mut() {
            spec.selector = None;
            spec.manual_selector = None;
            if let Some(l) = spec
                .template
                .metadata
                .as_mut()
                .and_then(|m| m.labels.as_mut())
            {
                l.retain(|k, _| !SERVER_LABELS.contains(&k.as_str()));
            }
            apply_markers(&mut spec.template, &write.markers);
        }
        self.create_again(facts, &api, &job).await;
        Ok(())
    }

    /// Creates the deleted Job again. Nothing else holds it now, so giving up would lose
    /// it: errors are retried (the old Job still on its way out, a quota not yet released,
    /// an outage, an admission policy), backing off to 30 s, until it lands or is moot.
    async fn create_again(&self, facts: &WorkloadFacts, api: &Api<Job>, job: &Job) {
        let pp = post_params();
        let (mut reported, started) = (false, Instant::now());
        for attempt in 0u32.. {
            let e = match api.create(&pp, job).await {
                Ok(_) => return,
                Err(e) => e,
            };
            let next = match &e {
                kube::Error::Api(s) if s.code == 409 => match api.get_opt(&facts.key.name).await {
                    Ok(Some(j)) if j.metadata.deletion_timestamp.is_none() => {
                        Next::Stop("another Job of that name was created meanwhile")
                    }
                    Ok(Some(_)) => Next::Wait,
                    _ => Next::Retry,
                },
                kube::Error::Api(s) => after_refusal(s.code, &s.message),
                _ => Next::Retry,
            };
            let note = match next {
                Next::Stop(why) => {
                    tracing::info!(workload = %facts.key, why, "the deleted Job is not created again");
                    return;
                }
                Next::Wait if started.elapsed() < WAIT_WARNING => None,
                Next::Wait => Some(format!(
                    "the Job deleted for its reload is still being removed after {}s; waiting to create it again",
                    WAIT_WARNING.as_secs()
                )),
                Next::Retry => {
                    self.metrics.error("write");
                    tracing::warn!(workload = %facts.key, error = %e, "the deleted Job cannot be created again yet; retrying");
                    Some(format!(
                        "Job deleted for its reload cannot be created again yet: {e}; retrying"
                    ))
                }
            };
            if let Some(note) = note.filter(|_| !reported) {
                reported = true;
                self.event(facts, EventType::Warning, super::RELOAD_FAIL, note)
                    .await;
            }
            let delay = Duration::from_millis(100);
            tokio::time::sleep(backoff(delay, attempt, Duration::from_secs(30))).await;
        }
    }
}

/// How long the old Job may take to go before a Warning says so.
const WAIT_WARNING: Duration = Duration::from_secs(60);

/// After a failed create of the deleted Job.
#[derive(Debug, PartialEq)]
enum Next {
    /// The old Job is still being removed.
    Wait,
    Retry,
    /// Moot: nothing to create any more.
    Stop(&'static str),
}

/// An API refusal other than 409: its namespace gone or going ends it; anything else
/// (quota, admission, RBAC, a server error) may pass and is retried.
fn after_refusal(code: u16, message: &str) -> Next {
    match code {
        404 => Next::Stop("its namespace is gone"),
        403 if message.contains("being terminated") => Next::Stop("its namespace is being deleted"),
        _ => Next::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_or_terminating_namespace_ends_it_and_other_refusals_retry() {
        assert_eq!(
            after_refusal(404, "namespaces \"x\" not found"),
            Next::Stop("its namespace is gone")
        );
        let terminating =
            "unable to create new content in namespace x because it is being terminated";
        assert_eq!(
            after_refusal(403, terminating),
            Next::Stop("its namespace is being deleted")
        );
        assert_eq!(
            after_refusal(403, "exceeded quota: q, requested: count/jobs.batch=1"),
            Next::Retry
        );
        assert_eq!(after_refusal(422, "denied by policy"), Next::Retry);
        assert_eq!(
            after_refusal(500, "etcdserver: request timed out"),
            Next::Retry
        );
    }
}
