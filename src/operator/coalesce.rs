//! Storm control (pure): when a pending reload may go out. Coalescing is a per-workload
//! trailing debounce capped by a maximum delay; writes are then paced by a per-workload
//! minimum interval and a global token bucket. Nothing here drops a reload; it only says
//! when to try again.

use std::time::Duration;

use tokio::time::Instant;

use crate::operator::options::Limits;

/// Why a due reload waits longer; never dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferral {
    /// The minimum interval (`--min-reload-interval`, or the workload's own) since its last
    /// write.
    MinInterval,
    /// The global token bucket (`--reload-rate`, `--reload-burst`) is empty.
    RateLimit,
    /// `--max-concurrent-rollouts` workloads are rolling, or a failed rollout halted the waves.
    Wave,
}

impl Deferral {
    /// The `reason` label of `kube_reloader_reloads_deferred_total`.
    pub fn label(self) -> &'static str {
        match self {
            Deferral::MinInterval => "min_interval",
            Deferral::RateLimit => "rate_limit",
            Deferral::Wave => "waves",
        }
    }
}

/// When a reload first seen at `first_seen`, last changed `now`, is due.
pub fn coalesced_due(limits: &Limits, first_seen: Instant, now: Instant) -> Instant {
    (now + limits.coalesce_window).min(first_seen + limits.coalesce_max_delay)
}

/// A token bucket: `rate` tokens per second, at most `burst` stored. Rate 0 is unlimited.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst: burst as f64,
            tokens: burst as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes a token, or says when the next one will be there.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err(now + Duration::from_secs_f64(wait))
        }
    }
}

/// When a workload last written at `last` may be written again (`None`: now).
pub fn interval_due(limits: &Limits, last: Option<Instant>, now: Instant) -> Option<Instant> {
    let next = last? + limits.min_reload_interval;
    (next > now).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            coalesce_window: Duration::from_secs(2),
            coalesce_max_delay: Duration::from_secs(30),
            reload_rate: 1.0,
            reload_burst: 2,
            min_reload_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn debounce_slides_until_the_cap() {
        let l = limits();
        let t0 = Instant::now();
        assert_eq!(coalesced_due(&l, t0, t0), t0 + Duration::from_secs(2));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(coalesced_due(&l, t0, t1), t1 + Duration::from_secs(2));
        let late = t0 + Duration::from_secs(29);
        assert_eq!(coalesced_due(&l, t0, late), t0 + Duration::from_secs(30));
    }

    #[test]
    fn bucket_allows_the_burst_then_paces() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1.0, 2, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let next = b.take(t0).unwrap_err();
        assert_eq!(next, t0 + Duration::from_secs(1));
        assert!(b.take(t0 + Duration::from_millis(999)).is_err());
        assert!(b.take(t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 0, t0);
        for _ in 0..1000 {
            assert!(b.take(t0).is_ok());
        }
    }

    #[test]
    fn min_interval_defers_only_when_recent() {
        let l = limits();
        let t0 = Instant::now();
        assert_eq!(interval_due(&l, None, t0), None);
        let now = t0 + Duration::from_secs(4);
        assert_eq!(
            interval_due(&l, Some(t0), now),
            Some(t0 + Duration::from_secs(10))
        );
        assert_eq!(
            interval_due(&l, Some(t0), t0 + Duration::from_secs(10)),
            None
        );
    }
}
