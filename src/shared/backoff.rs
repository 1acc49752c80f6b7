//! Exponential backoff for retries (writes, state reads, webhook POSTs, in-pod reloads).

use std::time::Duration;

/// Exponential backoff: `first`, doubling with each `attempt` (from 0), capped at `max`.
pub fn backoff(first: Duration, attempt: u32, max: Duration) -> Duration {
    first.saturating_mul(1u32 << attempt.min(20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs(1);
        let caps: Vec<_> = (0..7).map(|i| backoff(s, i, 30 * s).as_secs()).collect();
        assert_eq!(caps, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(s, 100, 30 * s), 30 * s);
    }
}
