//! kube's watcher as both the operator and the in-pod modes use it: default backoff,
//! except that a 410 Gone lists again at once; and how to tell a refusal from a failure.

use std::{
    fmt::Debug,
    time::{Duration, Instant},
};

use futures::StreamExt;
use kube::{
    Api, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;

/// A watcher with kube's default backoff (800 ms doubling to 30 s), except that a 410 Gone
/// lists again at once (see [`ExpiredGate`]).
pub fn events<K>(
    api: Api<K>,
    cfg: watcher::Config,
) -> impl futures::Stream<Item = Result<Step<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut expired = ExpiredGate::default();
    watcher(api, cfg)
        .map(move |ev| expired.pass(ev))
        .default_backoff()
}

/// A watch item: an event, or a 410 Gone let through the backoff as progress.
pub enum Step<K> {
    Event(watcher::Event<K>),
    Expired(watcher::Error),
}

fn is_expired(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::WatchError(status) if status.code == 410)
}

/// An answer that retrying soon will not change: not allowed (401, 403) or not served (404).
pub fn refused(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        _ => None,
    };
    matches!(code, Some(401 | 403 | 404))
}

pub fn reason(e: &watcher::Error) -> &'static str {
    if is_expired(e) { "expired" } else { "other" }
}

/// 410 Gone (the resourceVersion a watch resumed from was compacted away, or the API server
/// restarted with an empty watch cache) is the protocol's "list again", and the watcher has
/// already reset to do so. Backing off first, as for a failure, would leave the operator
/// blind for up to 30 s right after an outage. So a 410 goes through as progress and the
/// list starts at once, unless another one did so less than [`EXPIRED_REARM`] ago with no
/// live event since: a server answering 410 after every list is not hammered.
#[derive(Default)]
struct ExpiredGate {
    /// When a 410 last went through, unless a live event came after it.
    passed: Option<Instant>,
}

/// See [`ExpiredGate`].
const EXPIRED_REARM: Duration = Duration::from_secs(10);

impl ExpiredGate {
    fn pass<K>(
        &mut self,
        ev: Result<watcher::Event<K>, watcher::Error>,
    ) -> Result<Step<K>, watcher::Error> {
        self.pass_at(ev, Instant::now())
    }

    fn pass_at<K>(
        &mut self,
        ev: Result<watcher::Event<K>, watcher::Error>,
        now: Instant,
    ) -> Result<Step<K>, watcher::Error> {
        match ev {
            Err(e) if is_expired(&e) && self.passed.is_none_or(|t| now - t >= EXPIRED_REARM) => {
                self.passed = Some(now);
                Ok(Step::Expired(e))
            }
            Err(e) => Err(e),
            Ok(ev) => {
                // A list (even a complete one) may be followed by a 410 at once; a live
                // event shows the watch works.
                if matches!(ev, watcher::Event::Apply(_) | watcher::Event::Delete(_)) {
                    self.passed = None;
                }
                Ok(Step::Event(ev))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    type Ev = Result<watcher::Event<ConfigMap>, watcher::Error>;

    fn gone() -> Ev {
        let mut status = Box::new(kube::core::Status::default());
        status.code = 410;
        Err(watcher::Error::WatchError(status))
    }

    fn other() -> Ev {
        Err(watcher::Error::NoResourceVersion)
    }

    /// What the backoff sees for each item, at its second: true when it is an error (and
    /// so backs off).
    fn backs_off(items: Vec<(u64, Ev)>) -> Vec<bool> {
        let (mut gate, start) = (ExpiredGate::default(), Instant::now());
        items
            .into_iter()
            .map(|(s, i)| gate.pass_at(i, start + Duration::from_secs(s)).is_err())
            .collect()
    }

    fn listed() -> Ev {
        Ok(watcher::Event::InitDone)
    }

    fn live() -> Ev {
        Ok(watcher::Event::Apply(ConfigMap::default()))
    }

    #[test]
    fn an_expiry_relists_at_once_but_not_twice_within_the_rearm_time() {
        let items = vec![(0, gone()), (1, listed()), (2, gone()), (9, gone())];
        assert_eq!(backs_off(items), [false, false, true, true]);
        // After the re-arm time, or a live event, the next one relists at once again.
        let items = vec![(0, gone()), (10, gone()), (11, live()), (12, gone())];
        assert_eq!(backs_off(items), [false, false, false, false]);
    }

    #[test]
    fn forbidden_and_not_served_are_refusals() {
        let api = |code: u16| kube::core::Status {
            code,
            ..Default::default()
        };
        let start = |code| watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(api(code))));
        assert!(refused(&start(403)) && refused(&start(401)) && refused(&start(404)));
        assert!(!refused(&start(500)) && !refused(&start(429)));
        assert!(refused(&watcher::Error::WatchError(Box::new(api(403)))));
        assert!(!refused(&gone().unwrap_err()) && !refused(&other().unwrap_err()));
    }

    #[test]
    fn other_errors_always_back_off() {
        assert_eq!(backs_off(vec![(0, other()), (60, other())]), [true, true]);
        assert_eq!(reason(&other().unwrap_err()), "other");
        assert_eq!(reason(&gone().unwrap_err()), "expired");
    }
}
