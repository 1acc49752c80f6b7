//! Writes a planned reload: a strategic merge patch of the pod template under the field
//! manager `kube-reloader` (it owns only the entries it sets), guarded by the workload's
//! uid so a re-created namesake is never patched with stale facts. Then Events.

use std::{collections::HashSet, sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use serde_json::json;
use tokio::sync::watch;

use kube::api::PostParams;

use crate::operator::{
    apply::{
        markers::{Marker, apply_markers_json, template_patch},
        plan::Write,
    },
    metrics::Metrics,
    model::{
        annotations::{CronJobStrategy, RolloutStrategy},
        facts::WorkloadFacts,
        kinds::{ConfigKey, WorkloadKey, WorkloadKind},
    },
    notify::{Notifier, PostError, alert_body, alert_text},
    options::Options,
};

mod evict;
pub(crate) mod job_records;
mod jobs;
pub mod markers;
pub(crate) mod plan;

use crate::operator::model::kinds::FIELD_MANAGER;

/// Why a write did not land.
#[derive(Debug)]
enum Failed {
    /// The workload was deleted or re-created (its UID changed): this reload is moot.
    Gone,
    /// Anything else: retried.
    Api(kube::Error),
    /// Evicted pods' replacements did not become Ready in time: retried.
    Stalled,
}

impl From<kube::Error> for Failed {
    fn from(e: kube::Error) -> Self {
        match &e {
            // 409 naming the UID: the uid precondition of our patch or delete failed.
            kube::Error::Api(s)
                if s.code == 404 || (s.code == 409 && s.message.contains("UID")) =>
            {
                Failed::Gone
            }
            _ => Failed::Api(e),
        }
    }
}

/// Ok when `uid` is the one the facts were taken from.
fn same_uid(meta: &kube::core::ObjectMeta, facts: &WorkloadFacts) -> Result<(), Failed> {
    match meta.uid.as_deref() == Some(facts.uid.as_str()) {
        true => Ok(()),
        false => Err(Failed::Gone),
    }
}

/// Stakater's Warning reason for a reload that did not land.
pub const RELOAD_FAIL: &str = "ReloadFail";

/// Our Warning reason for annotations that cannot be followed.
const INVALID_ANNOTATION: &str = "InvalidAnnotation";

/// The note of a workload's InvalidAnnotation Event (as `event` stores it).
fn invalid_note(facts: &WorkloadFacts) -> String {
    note_text(facts.problems.join("; "))
}

/// An Event's note: at most 1,000 characters.
fn note_text(note: String) -> String {
    note.chars().take(1000).collect()
}

/// A webhook POST reached the receiver (whatever it answered), or did not.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookSent {
    Delivered,
    Failed,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The workload is gone (or was re-created): nothing left to reload.
    Gone,
    /// Nothing to do for it (a suspended CronJob gets no Job).
    NothingToDo,
    Retry {
        attempts: u32,
    },
}

/// Notices (Events and alerts after a write) sent at once: a lane of their own, so a write
/// slot (`--write-concurrency`) is free as soon as its write lands, and a fan-out's writes
/// are not slowed by as many Event POSTs competing with them.
const NOTICES: u32 = 2;

/// How long a notice gives way to writes in flight: in a fan-out the writes (what rolls
/// the pods) go first and the Events follow; a steady stream of writes never holds one
/// back for longer than this.
const NOTICES_YIELD: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Applier {
    client: Client,
    /// The notices lane: `NOTICES` permits, and the notice tasks to await at shutdown.
    notices: Arc<tokio::sync::Semaphore>,
    notice_tasks: tokio_util::task::TaskTracker,
    /// Writes in flight, which notices give way to.
    writing: Arc<watch::Sender<usize>>,
    /// Where Job re-creations are recorded (the state namespace), if state is persisted.
    job_records: Option<job_records::JobRecords>,
    /// Built only when a webhook or alerts are configured.
    notifier: Option<Result<Notifier, PostError>>,
    recorder: Recorder,
    opts: Arc<Options>,
    metrics: Metrics,
}

impl Applier {
    /// `state_namespace`: where Job re-creations are recorded; without one they are held
    /// in memory only (a restart in between loses the Job, as in stakater).
    pub fn new(
        client: Client,
        opts: Arc<Options>,
        metrics: Metrics,
        state_namespace: Option<&str>,
    ) -> Self {
        let reporter = Reporter {
            controller: "kube-reloader".into(),
            instance: opts.pod_name.clone(),
        };
        let wanted = opts.webhook_url.is_some() || opts.alert.is_some();
        let proxy = opts.alert.as_ref().and_then(|a| a.proxy.as_ref());
        let notifier = wanted.then(|| Notifier::new(proxy));
        if let Some(Err(e)) = &notifier {
            tracing::error!(error = %e, "webhooks and alerts cannot be sent");
        }
        Applier {
            notices: Arc::new(tokio::sync::Semaphore::new(NOTICES as usize)),
            notice_tasks: tokio_util::task::TaskTracker::new(),
            writing: Arc::new(watch::Sender::new(0)),
            job_records: state_namespace.map(|ns| job_records::JobRecords::new(client.clone(), ns)),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            notifier,
            opts,
            metrics,
        }
    }

    /// `--webhook-url`: stakater's POST for a change of `config` (see engine/webhooks.rs).
    pub async fn webhook(&self, config: &ConfigKey) -> WebhookSent {
        let url = self.opts.webhook_url.as_deref().unwrap_or_default();
        if self.opts.dry_run {
            tracing::info!(%config, "dry run: would POST the webhook");
            return WebhookSent::Delivered;
        }
        match async { self.notifier()?.webhook(url).await }.await {
            Ok(()) => {
                tracing::info!(%config, "webhook sent instead of reloading");
                WebhookSent::Delivered
            }
            Err(e) => {
                self.metrics.error("webhook");
                tracing::warn!(%config, error = %e, "webhook not delivered; retrying");
                WebhookSent::Failed
            }
        }
    }

    fn notifier(&self) -> Result<&Notifier, PostError> {
        match &self.notifier {
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(e.clone()),
            None => Err(PostError::NotConfigured),
        }
    }

    fn api(&self, kind: WorkloadKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kind.api_resource())
    }

    fn reference(key: &WorkloadKey, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some(key.kind.api_version().into()),
            kind: Some(key.kind.as_str().into()),
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            uid: Some(uid.to_owned()),
            ..Default::default()
        }
    }

    async fn event(
        &self,
        key: &WorkloadKey,
        uid: &str,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note_text(note)),
            action: "Reload".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &Self::reference(key, uid)).await {
            tracing::warn!(workload = %key, error = %e, "cannot publish event");
        }
    }

    /// Reports the invalid annotations of `all` at start-up or on gaining the lease,
    /// leaving out what an operator before this one already reported with the same text
    /// (an Event still on the workload), so a restart or a new leader repeats nothing.
    pub async fn report_all_invalid(&self, all: Vec<WorkloadFacts>) {
        let reported = self.reported_invalid().await;
        for facts in all {
            if !reported.contains(&(facts.uid.clone(), invalid_note(&facts))) {
                self.report_invalid(&facts).await;
            }
        }
    }

    /// One Warning Event (and log line per problem) for a workload's invalid annotations.
    /// A rollout we started cannot finish, so the waves wait for it.
    pub async fn report_rollout_failed(&self, facts: &WorkloadFacts, why: &str) {
        let note = format!(
            "rollout failed after a reload: {why}; the other reloads wait (--max-concurrent-rollouts) until it completes"
        );
        let (key, uid) = (&facts.key, &facts.uid);
        self.event(key, uid, EventType::Warning, "RolloutFailed", note)
            .await;
    }

    pub async fn report_invalid(&self, facts: &WorkloadFacts) {
        for p in &facts.problems {
            tracing::warn!(workload = %facts.key, problem = %p, "invalid annotation");
        }
        let (key, uid) = (&facts.key, &facts.uid);
        let note = invalid_note(facts);
        self.event(key, uid, EventType::Warning, INVALID_ANNOTATION, note)
            .await;
    }

    /// The InvalidAnnotation Events already there, as (workload uid, note), in the
    /// namespaces this operator serves. None if they cannot be read: then all are sent.
    async fn reported_invalid(&self) -> HashSet<(String, String)> {
        use k8s_openapi::api::events::v1::Event as ApiEvent;
        let lp = ListParams::default().fields(&format!("reason={INVALID_ANNOTATION}"));
        let apis: Vec<Api<ApiEvent>> = match self.opts.namespaces.as_slice() {
            [] => vec![Api::all(self.client.clone())],
            nss => nss
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect(),
        };
        let mut out = HashSet::new();
        for api in apis {
            match api.list(&lp).await {
                Ok(list) => out.extend(list.items.into_iter().filter_map(|e| {
                    let uid = e.regarding?.uid?;
                    Some((uid, e.note.unwrap_or_default()))
                })),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the InvalidAnnotation Events already sent; sending them all");
                }
            }
        }
        out
    }

    /// The strategic merge patch of the pod template, guarded by the uid.
    async fn patch_template(&self, facts: &WorkloadFacts, write: &Write) -> Result<(), Failed> {
        let template = template_patch(&write.markers, &facts.refs.containers);
        let spec = match facts.key.kind {
            WorkloadKind::CronJob => json!({ "jobTemplate": { "spec": { "template": template } } }),
            _ => json!({ "template": template }),
        };
        let mut body = json!({ "metadata": { "uid": facts.uid }, "spec": spec });
        // pause-period: the template change and the pause go out in one write, so the
        // rollout starts only on resume; paused-at on the object makes the resume survive
        // restarts. A Deployment paused by someone else is left alone.
        let pause = matches!(facts.rules.pause_period, Some(Ok(d)) if !d.is_zero());
        if facts.key.kind == WorkloadKind::Deployment && pause && !facts.paused {
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            body["spec"]["paused"] = json!(true);
            body["metadata"]["annotations"] = json!({ self.opts.keys.paused_at.clone(): now });
        }
        let api = self.api(facts.key.kind, &facts.key.namespace);
        api.patch(&facts.key.name, &self.params(), &Patch::Strategic(&body))
            .await?;
        Ok(())
    }

    /// Ends a pause-period: unpauses and removes paused-at, retrying until it lands or
    /// the Deployment is gone, so no Deployment stays paused.
    pub async fn resume(&self, facts: &WorkloadFacts) {
        let body = json!({
            "metadata": { "uid": facts.uid, "annotations": { self.opts.keys.paused_at.clone(): null } },
            "spec": { "paused": false }
        });
        let api = self.api(facts.key.kind, &facts.key.namespace);
        for attempt in 0u32.. {
            match api
                .patch(&facts.key.name, &self.params(), &Patch::Strategic(&body))
                .await
            {
                Ok(_) => {
                    tracing::info!(workload = %facts.key, "pause-period over; resumed");
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
                Err(e) => {
                    tracing::warn!(workload = %facts.key, error = %e, "resume failed; retrying");
                    let (first, max) = (Duration::from_secs(1), Duration::from_secs(32));
                    tokio::time::sleep(crate::shared::backoff::backoff(first, attempt, max)).await;
                }
            }
        }
    }

    fn params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        }
    }

    /// `rollout-strategy: restart`: Argo restarts the pods; the template (and Git) stay as
    /// they are. A JSON merge patch, since strategic merge does not work on CRDs.
    async fn restart_rollout(&self, facts: &WorkloadFacts) -> Result<(), Failed> {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let body = json!({ "metadata": { "uid": facts.uid }, "spec": { "restartAt": now } });
        let api = self.api(WorkloadKind::Rollout, &facts.key.namespace);
        api.patch(&facts.key.name, &self.params(), &Patch::Merge(&body))
            .await?;
        Ok(())
    }

    /// A kind read as a dynamic object (the default Rollout reload, a `--workload-kinds`
    /// kind): the template changed in place at its path and written back with its
    /// resourceVersion (a conflict re-reads and retries). Strategic merge does not work on
    /// custom resources, and a JSON merge patch would replace the containers list.
    async fn update_template(&self, facts: &WorkloadFacts, write: &Write) -> Result<(), Failed> {
        let kind = facts.key.kind;
        let api = self.api(kind, &facts.key.namespace);
        let pointer = kind.template_pointer().unwrap_or("/spec/template");
        let pp = post_params();
        let mut attempt = 0;
        loop {
            let mut obj = api.get(&facts.key.name).await?;
            same_uid(&obj.metadata, facts)?;
            if let Some(t) = obj.data.pointer_mut(pointer) {
                apply_markers_json(t, &write.markers);
            }
            obj.metadata.managed_fields = None;
            match api.replace(&facts.key.name, &pp, &obj).await {
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => attempt += 1,
                other => return Ok(other.map(|_| ())?),
            }
        }
    }

    /// A reload's Events (one per config, stakater's text) and alerts, in the notices
    /// lane (`NOTICES` at once).
    async fn notify_reloaded(&self, facts: &WorkloadFacts, configs: &[ConfigKey]) {
        let Ok(_lane) = self.notices.acquire().await else {
            return;
        };
        let mut writing = self.writing.subscribe();
        let _ = tokio::time::timeout(NOTICES_YIELD, writing.wait_for(|n| *n == 0)).await;
        for c in configs {
            let note = format!(
                "Changes detected in '{}' of type '{}' in namespace '{}', Updated '{}' of type '{}' in namespace '{}'",
                c.name,
                c.kind.stakater_type(),
                c.namespace,
                facts.key.name,
                facts.key.kind,
                facts.key.namespace
            );
            let (key, uid) = (&facts.key, &facts.uid);
            self.event(key, uid, EventType::Normal, "Reloaded", note)
                .await;
            if let Some(alert) = &self.opts.alert {
                let text = alert_text(
                    &alert.additional_info,
                    &c.name,
                    c.kind.stakater_type(),
                    &c.namespace,
                    &facts.key.name,
                    facts.key.kind.as_str(),
                );
                let (body, content_type) = alert_body(&alert.sink, &text);
                if let Err(e) =
                    async { self.notifier()?.alert(&alert.url, body, content_type).await }.await
                {
                    tracing::warn!(workload = %facts.key, error = %e, "alert not delivered");
                }
            }
        }
    }

    /// Waits until the notices under way are sent (at shutdown, after the last writes).
    pub async fn notices_sent(&self) {
        self.notice_tasks.close();
        self.notice_tasks.wait().await;
    }

    pub async fn apply(&self, facts: &WorkloadFacts, write: &Write, attempts: u32) -> WriteOutcome {
        // A Rollout with workloadRef is rolled through the Deployment whose template it
        // runs: Argo starts a new revision when that template changes.
        let target = facts.write_target();
        let facts = target.as_ref().unwrap_or(facts);
        let names: Vec<String> = write.configs.iter().map(|c| c.to_string()).collect();
        if self.opts.dry_run {
            tracing::info!(workload = %facts.key, configs = ?names, "dry run: would reload");
            return WriteOutcome::Written;
        }
        let _writing = Writing::start(&self.writing);
        let evict_record = write.markers.iter().find_map(|m| match m {
            Marker::Evict(r) => Some(r.clone()),
            _ => None,
        });
        if facts.rules.evict && write.markers.is_empty() {
            // Resuming evictions an earlier run started: no new record, no Event.
            let record = evict::EvictRecord::parse(facts.evicted_for.as_deref());
            return match self.evict_pods(facts, &record).await {
                Ok(()) | Err(Failed::Gone) => WriteOutcome::NothingToDo,
                Err(_) => WriteOutcome::Retry {
                    attempts: attempts + 1,
                },
            };
        }
        let result = match facts.key.kind {
            _ if evict_record.is_some() => {
                self.evict_for(facts, evict_record.as_deref().unwrap_or_default())
                    .await
            }
            WorkloadKind::CronJob
                if facts.rules.cronjob_strategy != Some(CronJobStrategy::Patch) =>
            {
                if facts.suspended {
                    tracing::info!(workload = %facts.key, "CronJob is suspended; no Job created");
                    return WriteOutcome::NothingToDo;
                }
                self.create_job_from_cronjob(facts, write).await
            }
            WorkloadKind::Job => self.recreate_job(facts, write).await,
            WorkloadKind::Rollout => match facts.rules.rollout_strategy {
                RolloutStrategy::Restart => self.restart_rollout(facts).await,
                RolloutStrategy::Rollout => self.update_template(facts, write).await,
            },
            WorkloadKind::Custom(_) => self.update_template(facts, write).await,
            _ => self.patch_template(facts, write).await,
        };
        match result {
            Ok(_) => {
                tracing::info!(workload = %facts.key, configs = ?names, "reloaded");
                let (this, facts, configs) = (self.clone(), facts.clone(), write.configs.clone());
                let tasks = &self.notice_tasks;
                tasks.spawn(async move { this.notify_reloaded(&facts, &configs).await });
                WriteOutcome::Written
            }
            Err(Failed::Gone) => {
                tracing::info!(workload = %facts.key, "workload gone before its reload; skipped");
                WriteOutcome::Gone
            }
            Err(Failed::Stalled) => {
                tracing::warn!(workload = %facts.key, attempt = attempts + 1, "evicted pods not replaced in time; will retry");
                WriteOutcome::Retry {
                    attempts: attempts + 1,
                }
            }
            Err(Failed::Api(e)) => {
                tracing::warn!(workload = %facts.key, error = %e, attempt = attempts + 1, "reload failed; will retry");
                if attempts == 0 {
                    // Stakater's reason and text, so alerts written on them keep firing.
                    let k = &facts.key;
                    let note = format!(
                        "Update for '{}' of type '{}' in namespace '{}' failed with error {}",
                        k.name,
                        k.kind,
                        k.namespace,
                        api_message(&e)
                    );
                    self.event(k, &facts.uid, EventType::Warning, RELOAD_FAIL, note)
                        .await;
                }
                WriteOutcome::Retry {
                    attempts: attempts + 1,
                }
            }
        }
    }
}

/// What the API server said (as client-go prints it), else the client's error.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// Creates and replaces under our field manager.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// One write in flight, counted while it lives.
struct Writing<'a>(&'a watch::Sender<usize>);

impl<'a> Writing<'a> {
    fn start(count: &'a watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Writing(count)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}
