//! What the engine's handlers ask of the API, as values. Handlers push them into the
//! outbox (`Engine::effects`) and `run` performs them after each turn of its loop, so the
//! engine's rules (coalescing, pacing, relist diffs, catch-up, leadership) are unit tested by
//! feeding it observations and reading the outbox, with no API server.

use std::sync::Arc;

use tokio::{sync::mpsc, time::Instant};

use super::{Done, Engine, state_sync::Flushed, webhooks::WebhookDone};
use crate::operator::{
    apply::plan::{PendingItem, Write},
    model::{facts::WorkloadFacts, kinds::ConfigKey},
    state::configmaps::{Loaded, StateStore, load_state},
};

pub(super) enum Effect {
    /// A planned reload; its outcome comes back as a `Done`.
    Write(Box<Dispatch>),
    /// Resume a Deployment paused for its pause-period.
    Resume(Arc<WorkloadFacts>),
    /// A RolloutFailed Warning: the rollout we started cannot finish; the waves halt.
    RolloutFailed(Arc<WorkloadFacts>, String),
    /// One InvalidAnnotation Warning for a workload.
    WarnInvalid(Box<WorkloadFacts>),
    /// A term's report of every workload with invalid annotations.
    WarnAllInvalid(Vec<WorkloadFacts>),
    /// Read the persisted state (a leadership gained).
    ReadState(StateStore),
    /// Write these state shards (the anchor last).
    Flush(StateStore, Vec<(usize, String)>),
    /// Finish the Job re-creations an earlier operator recorded.
    FinishRecorded,
    /// POST the `--webhook-url` for a config change.
    Webhook(ConfigKey),
}

/// One write handed to the applier, with what comes back with its outcome.
pub(super) struct Dispatch {
    pub facts: Arc<WorkloadFacts>,
    pub write: Write,
    pub items: Vec<PendingItem>,
    pub attempts: u32,
    pub first_seen: Instant,
}

/// Where the outcomes of performed effects come back to the loop.
pub(super) struct Replies {
    pub done: mpsc::Sender<Done>,
    pub flushed: mpsc::Sender<Flushed>,
    pub read: mpsc::Sender<Loaded>,
    pub webhook: mpsc::Sender<WebhookDone>,
}

impl Engine {
    /// Starts every effect in the outbox, in order; none is awaited here.
    pub(super) fn perform(&mut self, to: &Replies) {
        for effect in std::mem::take(&mut self.effects) {
            let applier = self.applier.clone();
            match effect {
                Effect::Write(d) => {
                    let tx = to.done.clone();
                    tokio::spawn(async move {
                        let Dispatch {
                            facts,
                            write,
                            items,
                            attempts,
                            first_seen,
                        } = *d;
                        let outcome = applier.apply(&facts, &write, attempts).await;
                        let key = facts.key.clone();
                        let done = Done {
                            key,
                            items,
                            first_seen,
                            outcome,
                        };
                        let _ = tx.send(done).await;
                    });
                }
                Effect::Resume(facts) => {
                    tokio::spawn(async move { applier.resume(&facts).await });
                }
                Effect::RolloutFailed(facts, why) => {
                    tokio::spawn(async move { applier.report_rollout_failed(&facts, &why).await });
                }
                Effect::WarnInvalid(facts) => {
                    tokio::spawn(async move { applier.report_invalid(&facts).await });
                }
                Effect::WarnAllInvalid(all) => {
                    tokio::spawn(async move { applier.report_all_invalid(all).await });
                }
                Effect::ReadState(store) => {
                    let tx = to.read.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(load_state(&store).await).await;
                    });
                }
                Effect::Flush(store, dirty) => {
                    let tx = to.flushed.clone();
                    tokio::spawn(async move {
                        let _ = tx
                            .send(super::state_sync::write_shards(&store, dirty).await)
                            .await;
                    });
                }
                Effect::FinishRecorded => {
                    tokio::spawn(async move { applier.finish_recorded().await });
                }
                Effect::Webhook(key) => {
                    let tx = to.webhook.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(WebhookDone(applier.webhook(&key).await)).await;
                    });
                }
            }
        }
    }
}
