//! When to act (a trailing debounce with a cap) and whether there is anything to act on
//! (the content hash moved). Pure, so the timing rules are tested without clocks.

use std::time::{Duration, Instant};

use super::files::ContentHash;
use crate::shared::backoff::backoff;

/// A trailing debounce: due `window` after the last change, but never later than
/// `max_delay` after the first one of the burst.
#[derive(Debug)]
pub struct Debounce {
    window: Duration,
    max_delay: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    forced: Option<Instant>,
}

impl Debounce {
    pub fn new(window: Duration, max_delay: Duration) -> Self {
        Debounce {
            window,
            max_delay: max_delay.max(window),
            first: None,
            last: None,
            forced: None,
        }
    }

    pub fn changed(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// Due at `now`, whatever the window (the first sync should not wait).
    pub fn force(&mut self, now: Instant) {
        self.forced = Some(now);
    }

    /// When to act; `None` while nothing changed.
    pub fn due(&self) -> Option<Instant> {
        let trailing = match (self.first, self.last) {
            (Some(first), Some(last)) => Some((last + self.window).min(first + self.max_delay)),
            _ => None,
        };
        match (trailing, self.forced) {
            (Some(t), Some(f)) => Some(t.min(f)),
            (t, f) => t.or(f),
        }
    }

    /// Called when acting: the next change starts a new burst.
    pub fn clear(&mut self) {
        self.first = None;
        self.last = None;
        self.forced = None;
    }
}

/// What to do once the debounce is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed since the last write (or since what the directory already held).
    Nothing,
    /// Write; `reload` when the app may have read an earlier version.
    Write { reload: bool },
}

/// `last` is the content last written, or found in the directory at start (`None`: empty,
/// so the app cannot have read a version yet and there is nothing to reload).
pub fn decide(last: Option<ContentHash>, new: ContentHash) -> Step {
    match last {
        Some(h) if h == new => Step::Nothing,
        Some(_) => Step::Write { reload: true },
        None => Step::Write { reload: false },
    }
}

/// When to retry a failed write of the config or reload of the app: 1s, doubling, at most
/// a minute apart. (A reload call's own retries, `--reload-http-backoff`, are separate.)
pub fn retry_delay(attempt: u32) -> Duration {
    backoff(Duration::from_secs(1), attempt, Duration::from_secs(60))
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::files::hash;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn trailing_window_with_a_cap() {
        let t0 = Instant::now();
        let mut d = Debounce::new(100 * MS, 250 * MS);
        assert_eq!(d.due(), None);
        d.changed(t0);
        assert_eq!(d.due(), Some(t0 + 100 * MS));
        d.changed(t0 + 80 * MS);
        assert_eq!(d.due(), Some(t0 + 180 * MS), "each change pushes it back");
        d.changed(t0 + 200 * MS);
        assert_eq!(d.due(), Some(t0 + 250 * MS), "but not past the cap");
        d.clear();
        assert_eq!(d.due(), None);
        d.changed(t0 + 300 * MS);
        assert_eq!(d.due(), Some(t0 + 400 * MS), "a new burst");
    }

    #[test]
    fn forcing_makes_it_due_at_once() {
        let t0 = Instant::now();
        let mut d = Debounce::new(100 * MS, 250 * MS);
        d.changed(t0);
        d.force(t0 + 10 * MS);
        assert_eq!(d.due(), Some(t0 + 10 * MS));
        d.clear();
        d.force(t0);
        assert_eq!(d.due(), Some(t0));
    }

    #[test]
    fn a_cap_below_the_window_is_the_window() {
        let t0 = Instant::now();
        let mut d = Debounce::new(100 * MS, 10 * MS);
        d.changed(t0);
        assert_eq!(d.due(), Some(t0 + 100 * MS));
    }

    #[test]
    fn only_changed_content_is_written_and_reloaded() {
        let a = hash([("k", &b"1"[..])]);
        let b = hash([("k", &b"2"[..])]);
        assert_eq!(decide(Some(a), a), Step::Nothing);
        assert_eq!(decide(Some(a), b), Step::Write { reload: true });
        assert_eq!(decide(None, b), Step::Write { reload: false });
    }
}
