//! Leader election (`--enable-ha`) on a coordination.k8s.io Lease, client-go style: every
//! change to the Lease is a replace carrying the resourceVersion read, so two replicas can
//! never both take it (compare-and-swap). The holder renews every retry period and stops
//! writing once it has failed to renew for the renew deadline, which is shorter than the
//! lease duration a follower waits before taking over. Expiry is judged by when this replica
//! last saw the record change, not by the holder's clock.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::{sync::watch, time::Instant};

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What the last read of the Lease showed, and when this replica first saw it so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    renew: Option<String>,
}

/// The decision for one round (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Renew,
    Acquire,
    Follow,
}

pub fn decide(
    me: &str,
    holder: Option<&str>,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Step {
    match holder.filter(|h| !h.is_empty()) {
        Some(h) if h == me => Step::Renew,
        None => Step::Acquire,
        Some(_) if unchanged_for >= lease_duration => Step::Acquire,
        Some(_) => Step::Follow,
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    observed: Option<(Observed, Instant)>,
    last_renew: Option<Instant>,
}

impl Elector {
    /// One round: read, then renew, acquire or follow. Returns whether we hold the lease.
    async fn round(&mut self) -> kube::Result<bool> {
        let now = Instant::now();
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return self.create().await;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let seen = Observed {
            holder: spec.holder_identity.clone(),
            renew: spec.renew_time.as_ref().map(|t| t.0.to_string()),
        };
        let since = match &self.observed {
            Some((o, at)) if *o == seen => *at,
            _ => now,
        };
        self.observed = Some((seen.clone(), since));
        let step = decide(
            &self.cfg.identity,
            seen.holder.as_deref(),
            now - since,
            self.cfg.lease_duration,
        );
        match step {
            Step::Follow => return Ok(false),
            Step::Renew => {}
            Step::Acquire => {
                spec.holder_identity = Some(self.cfg.identity.clone());
                spec.acquire_time = Some(now_micro());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        spec.renew_time = Some(now_micro());
        spec.lease_duration_seconds = Some(self.cfg.lease_duration.as_secs().max(1) as i32);
        // `lease` still carries the resourceVersion we read: a replace is a compare-and-swap.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.last_renew = Some(now);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create(&mut self) -> kube::Result<bool> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => {
                self.last_renew = Some(Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false), // someone else made it
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up at shutdown so a follower takes over at once (ReleaseOnCancel).
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.cfg.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.cfg.name, "lease released"),
            Err(e) => tracing::warn!(lease = %self.cfg.name, error = %e, "lease not released"),
        }
    }
}

/// Runs the election until `shutdown`, publishing whether this replica may write.
pub async fn run(
    client: Client,
    cfg: LeaseConfig,
    leader: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut el = Elector {
        api: Api::namespaced(client, &cfg.namespace),
        observed: None,
        last_renew: None,
        cfg,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let held = match el.round().await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(lease = %el.cfg.name, error = %e, "lease round failed");
                false
            }
        };
        // A holder that cannot renew keeps writing only until the renew deadline, which
        // ends before any follower may take over.
        let may_write = held
            || (*leader.borrow()
                && el
                    .last_renew
                    .is_some_and(|t| t.elapsed() < el.cfg.renew_deadline));
        if may_write != *leader.borrow() {
            tracing::info!(identity = %el.cfg.identity, lease = %el.cfg.name, leader = may_write, "leadership changed");
            leader.send_replace(may_write);
        }
        tokio::select! {
            () = tokio::time::sleep(el.cfg.retry_period) => {}
            () = &mut shutdown => break,
        }
    }
    leader.send_replace(false);
    el.release().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn decisions() {
        assert_eq!(decide("a", Some("a"), Duration::ZERO, D), Step::Renew);
        assert_eq!(decide("a", None, Duration::ZERO, D), Step::Acquire);
        assert_eq!(decide("a", Some(""), Duration::ZERO, D), Step::Acquire);
        assert_eq!(
            decide("a", Some("b"), Duration::from_secs(14), D),
            Step::Follow
        );
        assert_eq!(decide("a", Some("b"), D, D), Step::Acquire);
    }
}
