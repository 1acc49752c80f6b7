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

use super::{Applier, Failed, job_records::JobRecord, post_params, same_uid};
use crate::operator::{
    apply::{markers::apply_markers, plan::Write},
    model::{
        facts::WorkloadFacts,
        kinds::{WorkloadKey, WorkloadKind},
    },
};
use crate::shared::backoff::backoff;

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
    /// markers and without the fields the API server set. The Job to create is recorded
    /// (`job_records.rs`) before the delete and forgotten once it exists again, so it is
    /// never lost in between: not to a lost answer, a restart or a change of leader.
    pub(super) async fn recreate_job(
        &self,
        facts: &WorkloadFacts,
        write: &Write,
    ) -> Result<(), Failed> {
        let target = JobTarget::of(facts);
        let api: Api<Job> = Api::namespaced(self.client.clone(), &target.key.namespace);
        let Some(job) = api.get_opt(&target.key.name).await? else {
            // Gone: deleted by an earlier attempt of ours whose answer was lost, if recorded.
            let record = self.recorded(&target).await?.ok_or(Failed::Gone)?;
            self.create_recorded(&target, &api, &record).await;
            return Ok(());
        };
        same_uid(&job.metadata, facts)?;
        if job.metadata.deletion_timestamp.is_some() {
            // Ours (recorded) on its way out, or someone else deleting it: not ours then.
            let record = self.recorded(&target).await?.ok_or(Failed::Gone)?;
            self.create_recorded(&target, &api, &record).await;
            return Ok(());
        }
        let record = JobRecord {
            namespace: target.key.namespace.clone(),
            name: target.key.name.clone(),
            uid: target.uid.clone(),
            job: fresh(job, write),
        };
        if let Some(records) = &self.job_records {
            records.put(&record).await?;
        }
        self.delete_old(&api, &target).await?;
        self.create_recorded(&target, &api, &record).await;
        Ok(())
    }

    /// At start-up or on gaining the lease: finishes every recorded re-creation that the
    /// operator before this one did not (stopped, killed, or no longer leading).
    pub async fn finish_recorded(&self) {
        let Some(records) = &self.job_records else {
            return;
        };
        let mut attempt = 0;
        let all = loop {
            match records.all().await {
                Ok(all) => break all,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the recorded Job re-creations; retrying");
                    let delay = backoff(Duration::from_secs(1), attempt, Duration::from_secs(30));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        };
        for record in all {
            tracing::info!(job = %record.name, namespace = %record.namespace, "finishing a recorded Job re-creation");
            let this = self.clone();
            tokio::spawn(async move { this.finish(record).await });
        }
    }

    /// One recorded re-creation: the old Job gone or going, it is created; still there, it
    /// is deleted first; a Job of that name with another uid means it is done (or the name
    /// is someone else's now).
    async fn finish(&self, record: JobRecord) {
        let target = JobTarget {
            key: WorkloadKey {
                kind: WorkloadKind::Job,
                namespace: record.namespace.clone(),
                name: record.name.clone(),
            },
            uid: record.uid.clone(),
        };
        let api: Api<Job> = Api::namespaced(self.client.clone(), &record.namespace);
        for attempt in 0u32.. {
            match api.get_opt(&record.name).await {
                Ok(None) => break,
                Ok(Some(j)) if j.metadata.uid.as_deref() != Some(record.uid.as_str()) => {
                    tracing::info!(job = %target.key, "a Job of that name exists again; the record is done");
                    return self.forget(&target).await;
                }
                Ok(Some(j)) if j.metadata.deletion_timestamp.is_some() => break,
                Ok(Some(_)) => match self.delete_old(&api, &target).await {
                    Ok(()) => break,
                    Err(_) => return, // refused or replaced: forgotten there
                },
                Err(e) => {
                    tracing::warn!(job = %target.key, error = %e, "cannot read the Job of a recorded re-creation; retrying");
                    let delay = Duration::from_millis(100);
                    tokio::time::sleep(backoff(delay, attempt, Duration::from_secs(30))).await;
                }
            }
        }
        self.create_recorded(&target, &api, &record).await;
    }

    /// The record of `target`'s re-creation, if it is for this Job (its uid).
    async fn recorded(&self, target: &JobTarget) -> Result<Option<JobRecord>, Failed> {
        let Some(records) = &self.job_records else {
            return Ok(None);
        };
        let record = records.get(&target.key.namespace, &target.key.name).await?;
        Ok(record.filter(|r| r.uid == target.uid))
    }

    async fn create_recorded(&self, target: &JobTarget, api: &Api<Job>, record: &JobRecord) {
        self.create_again(target, api, &record.job).await;
        self.forget(target).await;
    }

    /// Done (or moot): the record goes. Left behind by a failure, it is dropped by the next
    /// start, which finds a Job of that name with another uid.
    async fn forget(&self, target: &JobTarget) {
        let Some(records) = &self.job_records else {
            return;
        };
        if let Err(e) = records
            .remove(&target.key.namespace, &target.key.name)
            .await
        {
            tracing::warn!(job = %target.key, error = %e, "the Job's record is left; the next start drops it");
        }
    }

    /// Deletes the old Job (uid precondition). An answer lost on the way is settled by
    /// looking: gone or going means the delete happened. A refusal forgets the record (the
    /// Job is still there; the engine retries the reload).
    async fn delete_old(&self, api: &Api<Job>, target: &JobTarget) -> Result<(), Failed> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: Some(target.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        for attempt in 0u32.. {
            let e = match api.delete(&target.key.name, &dp).await {
                Ok(_) => return Ok(()),
                // Gone since it was read: recorded, so it is ours to create.
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e @ kube::Error::Api(_)) => {
                    self.forget(target).await;
                    return Err(e.into());
                }
                Err(e) => e,
            };
            tracing::warn!(job = %target.key, error = %e, "no answer to the Job's delete; looking whether it happened");
            match api.get_opt(&target.key.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(j)) if j.metadata.uid.as_deref() != Some(target.uid.as_str()) => {
                    self.forget(target).await;
                    return Err(Failed::Gone);
                }
                Ok(Some(j)) if j.metadata.deletion_timestamp.is_some() => return Ok(()),
                Ok(Some(_)) | Err(_) => {} // not deleted, or no answer again: once more
            }
            let delay = Duration::from_millis(100);
            tokio::time::sleep(backoff(delay, attempt, Duration::from_secs(30))).await;
        }
        unreachable!("the loop returns")
    }

    /// Creates the deleted Job again. Nothing else holds it now, so giving up would lose
    /// it: errors are retried (the old Job still on its way out, a quota not yet released,
    /// an outage, an admission policy), backing off to 30 s, until it lands or is moot.
    async fn create_again(&self, target: &JobTarget, api: &Api<Job>, job: &Job) {
        let pp = post_params();
        let (mut reported, started) = (false, Instant::now());
        for attempt in 0u32.. {
            let e = match api.create(&pp, job).await {
                Ok(_) => return,
                Err(e) => e,
            };
            let next = match &e {
                kube::Error::Api(s) if s.code == 409 => match api.get_opt(&target.key.name).await {
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
                    tracing::info!(workload = %target.key, why, "the deleted Job is not created again");
                    return;
                }
                Next::Wait if started.elapsed() < WAIT_WARNING => None,
                Next::Wait => Some(format!(
                    "the Job deleted for its reload is still being removed after {}s; waiting to create it again",
                    WAIT_WARNING.as_secs()
                )),
                Next::Retry => {
                    self.metrics.error("write");
                    tracing::warn!(workload = %target.key, error = %e, "the deleted Job cannot be created again yet; retrying");
                    Some(format!(
                        "Job deleted for its reload cannot be created again yet: {e}; retrying"
                    ))
                }
            };
            if let Some(note) = note.filter(|_| !reported) {
                reported = true;
                let (key, uid) = (&target.key, &target.uid);
                self.event(key, uid, EventType::Warning, super::RELOAD_FAIL, note)
                    .await;
            }
            let delay = Duration::from_millis(100);
            tokio::time::sleep(backoff(delay, attempt, Duration::from_secs(30))).await;
        }
    }
}

/// The Job a re-creation is for: its key, and the uid of the one being replaced.
struct JobTarget {
    key: WorkloadKey,
    uid: String,
}

impl JobTarget {
    fn of(facts: &WorkloadFacts) -> Self {
        JobTarget {
            key: facts.key.clone(),
            uid: facts.uid.clone(),
        }
    }
}

/// The Job to create in place of `job`: with the markers, and without what the API server
/// set (its identity, status and the selector and labels of the job controller).
fn fresh(mut job: Job, write: &Write) -> Job {
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
    meta.deletion_timestamp = None;
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
    job
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
