//! What `/live` (and `/healthz`) decide: the operator is wedged when its engine loop has
//! not turned for `--live-engine-stall`, or a watch's list/watch calls have failed for
//! `--live-watch-broken` with no success in between, and a restart is the cure. An idle
//! engine still turns (a heartbeat), and a quiet watch is not failing. A watch the API
//! refuses (forbidden, not served) does not count: a restart does not change RBAC.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::streams::StreamView;

/// How often an idle engine loop turns anyway, so `/live` tells idle from wedged (the
/// shortest `--live-engine-stall` is three of these).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The two limits; `None` (flag value 0) disables a check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveLimits {
    pub engine_stall: Option<Duration>,
    pub watch_broken: Option<Duration>,
}

/// Why `/live` fails.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum NotLive {
    #[error("the engine loop has not turned for {}s (limit {}s)", secs(*idle), secs(*limit))]
    EngineStalled { idle: Duration, limit: Duration },
    #[error("the {stream} watch has failed for {}s (limit {}s): {why}", secs(*broken_for), secs(*limit))]
    WatchBroken {
        stream: String,
        broken_for: Duration,
        limit: Duration,
        why: String,
    },
}

fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

/// Live unless the engine has been idle (not turned) past its limit, or a stream has been
/// failing past its limit (the longest-failing one is named).
pub fn check(
    limits: LiveLimits,
    engine_idle: Duration,
    streams: &[StreamView],
) -> Result<(), NotLive> {
    if let Some(limit) = limits.engine_stall
        && engine_idle > limit
    {
        return Err(NotLive::EngineStalled {
            idle: engine_idle,
            limit,
        });
    }
    let Some(limit) = limits.watch_broken else {
        return Ok(());
    };
    let worst = streams
        .iter()
        .filter_map(|s| s.broken_for.map(|d| (d, s)))
        .filter(|(d, _)| *d > limit)
        .max_by_key(|(d, _)| *d);
    match worst {
        Some((broken_for, s)) => Err(NotLive::WatchBroken {
            stream: s.describe(),
            broken_for,
            limit,
            why: s.error.clone().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// When the engine loop last turned; cheap to clone and to beat.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    base: Instant,
    /// Milliseconds after `base`.
    last: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    /// Beaten now: the engine has its limit's time to start.
    fn default() -> Self {
        Heartbeat {
            base: Instant::now(),
            last: Arc::default(),
        }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Since the last beat.
    pub fn idle(&self, now: Instant) -> Duration {
        let last = self.base + Duration::from_millis(self.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

#[cfg(test)]
mod tests {
    use super::super::streams::StreamState;
    use super::*;

    const LIMITS: LiveLimits = LiveLimits {
        engine_stall: Some(Duration::from_secs(120)),
        watch_broken: Some(Duration::from_secs(300)),
    };

    fn stream(state: StreamState, broken_for: Option<u64>) -> StreamView {
        StreamView {
            kind: "ConfigMap",
            namespace: Some("team".into()),
            state,
            error: broken_for.map(|_| "connection refused".into()),
            broken_for: broken_for.map(Duration::from_secs),
            age: None,
        }
    }

    #[test]
    fn a_stalled_engine_is_not_live_unless_disabled() {
        let idle = Duration::from_secs(121);
        let e = check(LIMITS, idle, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the engine loop has not turned for 121.0s (limit 120.0s)"
        );
        assert!(check(LIMITS, Duration::from_secs(119), &[]).is_ok());
        let off = LiveLimits {
            engine_stall: None,
            ..LIMITS
        };
        assert!(check(off, idle, &[]).is_ok());
    }

    #[test]
    fn a_watch_failing_past_the_limit_is_not_live_and_named() {
        let ok = Duration::ZERO;
        let quiet = stream(StreamState::Synced, None);
        let short = stream(StreamState::Erroring, Some(299));
        assert!(check(LIMITS, ok, &[quiet.clone(), short.clone()]).is_ok());
        let long = stream(StreamState::Erroring, Some(301));
        let e = check(LIMITS, ok, &[quiet, short, long]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the ConfigMap in team watch has failed for 301.0s (limit 300.0s): connection refused"
        );
        let off = LiveLimits {
            watch_broken: None,
            ..LIMITS
        };
        let long = stream(StreamState::Erroring, Some(3000));
        assert!(check(off, ok, &[long]).is_ok());
    }

    #[test]
    fn the_heartbeat_measures_since_the_last_beat() {
        let h = Heartbeat::default();
        let later = Instant::now() + Duration::from_secs(30);
        assert!(h.idle(later) >= Duration::from_secs(30));
        h.beat();
        assert!(h.idle(Instant::now()) < Duration::from_secs(1));
    }
}
