//! `--webhook-url`, stakater's contract: one POST per config change (an update of its
//! data, and a create or delete with `--reload-on-create`/`--reload-on-delete`), sent
//! instead of any reload and before any workload is matched, so it fires for configs no
//! workload uses and for ignored ones too. Only the namespace filters apply. The status
//! of the answer is not checked (as in stakater); a POST that does not reach the receiver
//! is retried with backoff, in order, and a config with a POST still to send is not
//! recorded in the persisted state, so a restart sends it again.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

use super::Engine;
use crate::operator::{apply::WebhookSent, model::kinds::ConfigKey};

/// The POSTs still to send, oldest first; the first may be in flight.
#[derive(Default)]
pub struct Webhooks {
    queue: VecDeque<ConfigKey>,
    sending: bool,
    /// Failed attempts of the first.
    attempts: u32,
    due: Option<Instant>,
}

impl Webhooks {
    pub fn outstanding(&self) -> impl Iterator<Item = &ConfigKey> {
        self.queue.iter()
    }
}

/// A finished POST.
pub struct WebhookDone(pub(super) WebhookSent);

impl Engine {
    /// Queues a POST for a change. Only the leader sends: a replica that leads later
    /// catches up from the state, which holds no config whose POST is still to send.
    pub(super) fn queue_webhook(&mut self, key: &ConfigKey) {
        if !self.is_leader() {
            return;
        }
        tracing::info!(config = %key, "config changed; webhook to send");
        self.webhooks.queue.push_back(key.clone());
        self.webhooks.due.get_or_insert_with(Instant::now);
    }

    /// When the next POST may start.
    pub(super) fn next_webhook(&self) -> Option<Instant> {
        let w = &self.webhooks;
        w.due.filter(|_| !w.sending && self.is_leader())
    }

    pub(super) fn dispatch_webhook(&mut self) {
        let now = Instant::now();
        if self.next_webhook().is_none_or(|t| t > now) {
            return;
        }
        let Some(key) = self.webhooks.queue.front().cloned() else {
            self.webhooks.due = None;
            return;
        };
        self.webhooks.sending = true;
        self.effects.push(super::Effect::Webhook(key));
    }

    pub(super) fn on_webhook_done(&mut self, WebhookDone(sent): WebhookDone) {
        self.state_may_have_changed();
        let w = &mut self.webhooks;
        w.sending = false;
        match sent {
            WebhookSent::Delivered => {
                w.queue.pop_front();
                w.attempts = 0;
                w.due = (!w.queue.is_empty()).then(Instant::now);
            }
            WebhookSent::Failed => {
                let delay = crate::shared::backoff::backoff(
                    Duration::from_millis(500),
                    w.attempts,
                    MAX_DELAY,
                );
                w.attempts += 1;
                w.due = Some(Instant::now() + delay);
            }
        }
    }
}

/// The longest wait between attempts at an unreachable receiver.
const MAX_DELAY: Duration = Duration::from_secs(30);
