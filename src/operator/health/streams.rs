//! What each watch stream is doing, as its own task sees it (events, errors) and as the
//! wire shows it (any 2xx answer or body bytes on its path, see `tap`): kube's watcher
//! swallows bookmarks and re-established watches, so the events alone would leave a
//! quiet or recovered watch looking stale or still broken.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// A stream's state, as `/ready?format=json` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Listed, and watching.
    Synced,
    /// Its first list, or a relist (after 410 Gone), is under way.
    Listing,
    /// Its list or watch calls fail (retried with backoff).
    Erroring,
    /// The API refuses it (forbidden or not served); retried with backoff.
    Refused,
}

/// What a watch task saw.
#[derive(Debug)]
pub enum Seen {
    /// A (re)list starts.
    ListStarts,
    /// An object of a list, or a live event.
    Object,
    /// A (re)list is complete.
    Listed,
    /// 410 Gone: the watcher lists again.
    Expired,
    Refused(String),
    Failed(String),
}

#[derive(Clone, Debug)]
struct Failure {
    why: String,
    refused: bool,
    /// The last one.
    at: Instant,
    /// The first of this run (no success in between).
    since: Instant,
}

/// One stream's record; pure, given the times.
#[derive(Clone, Debug)]
pub struct StreamStatus {
    listing: bool,
    synced_once: bool,
    /// The last event from the watcher.
    event_at: Option<Instant>,
    /// The last 2xx answer or body bytes on the stream's path.
    wire_at: Option<Instant>,
    failure: Option<Failure>,
}

impl Default for StreamStatus {
    fn default() -> Self {
        StreamStatus {
            listing: true,
            synced_once: false,
            event_at: None,
            wire_at: None,
            failure: None,
        }
    }
}

/// A stream as reported at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamView {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub state: StreamState,
    /// While erroring or refused: the last error.
    pub error: Option<String>,
    /// While erroring: since the first failure with no success after it.
    pub broken_for: Option<Duration>,
    /// Since the last success (event, list, bookmark or re-established watch).
    pub age: Option<Duration>,
}

impl StreamView {
    /// "KIND in NAMESPACE", as `/ready` and the logs name a stream.
    pub fn describe(&self) -> String {
        let ns = self.namespace.as_deref().unwrap_or("all namespaces");
        format!("{} in {ns}", self.kind)
    }
}

impl StreamStatus {
    fn ok_at(&self) -> Option<Instant> {
        self.event_at.max(self.wire_at)
    }

    /// The failure, unless something succeeded after it.
    fn failing(&self) -> Option<&Failure> {
        let ok = self.ok_at();
        self.failure
            .as_ref()
            .filter(|f| ok.is_none_or(|ok| f.at > ok))
    }

    pub fn seen(&mut self, what: Seen, now: Instant) {
        let fail = |s: &Self, why: String, refused: bool| {
            let since = match s.failing() {
                Some(f) if f.refused == refused => f.since,
                _ => now,
            };
            Some(Failure {
                why,
                refused,
                at: now,
                since,
            })
        };
        match what {
            Seen::ListStarts | Seen::Expired => self.listing = true,
            Seen::Object => self.event_at = Some(now),
            Seen::Listed => {
                (self.listing, self.synced_once) = (false, true);
                self.event_at = Some(now);
            }
            Seen::Refused(why) => self.failure = fail(self, why, true),
            Seen::Failed(why) => self.failure = fail(self, why, false),
        }
    }

    pub fn wire(&mut self, now: Instant) {
        self.wire_at = Some(now);
    }

    pub fn view(&self, kind: &'static str, namespace: Option<String>, now: Instant) -> StreamView {
        let failing = self.failing();
        let state = match failing {
            Some(f) if f.refused => StreamState::Refused,
            Some(_) => StreamState::Erroring,
            None if self.listing || !self.synced_once => StreamState::Listing,
            None => StreamState::Synced,
        };
        StreamView {
            kind,
            namespace,
            state,
            error: failing.map(|f| f.why.clone()),
            broken_for: failing
                .filter(|f| !f.refused)
                .map(|f| now.saturating_duration_since(f.since)),
            age: self.ok_at().map(|t| now.saturating_duration_since(t)),
        }
    }
}

struct Entry {
    kind: &'static str,
    namespace: Option<String>,
    status: StreamStatus,
}

#[derive(Default)]
struct Board {
    streams: Vec<Entry>,
    /// Request path (`Api::resource_url`) → stream.
    by_path: HashMap<String, usize>,
}

/// Every watch stream's record, shared by the watch tasks, the client tap and the HTTP
/// server. Cheap to clone.
#[derive(Clone, Default)]
pub struct StreamBoard(Arc<Mutex<Board>>);

impl StreamBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        // A panic while holding it leaves plain data behind: keep reporting.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new stream of `kind` in `namespace` (None: all), whose requests go to `path`.
    pub fn add(&self, kind: &'static str, namespace: Option<String>, path: &str) -> StreamHealth {
        let mut b = self.lock();
        let index = b.streams.len();
        b.streams.push(Entry {
            kind,
            namespace,
            status: StreamStatus::default(),
        });
        b.by_path.insert(path.to_owned(), index);
        StreamHealth {
            board: self.clone(),
            index,
        }
    }

    /// A 2xx answer or body bytes on `path`: the stream there works.
    pub fn touch(&self, path: &str) {
        let now = Instant::now();
        let mut b = self.lock();
        if let Some(&i) = b.by_path.get(path) {
            b.streams[i].status.wire(now);
        }
    }

    /// Every stream, in the order they were added.
    pub fn views(&self, now: Instant) -> Vec<StreamView> {
        let b = self.lock();
        let view = |e: &Entry| e.status.view(e.kind, e.namespace.clone(), now);
        b.streams.iter().map(view).collect()
    }
}

/// One stream's handle, for its watch task.
pub struct StreamHealth {
    board: StreamBoard,
    index: usize,
}

impl StreamHealth {
    pub fn seen(&self, what: Seen) {
        let now = Instant::now();
        self.board.lock().streams[self.index].status.seen(what, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    fn view(st: &StreamStatus, now: Instant) -> StreamView {
        st.view("ConfigMap", None, now)
    }

    #[test]
    fn a_stream_lists_then_is_synced_and_ages_until_its_next_sign_of_life() {
        let (t, mut st) = (Instant::now(), StreamStatus::default());
        assert_eq!(view(&st, t).state, StreamState::Listing);
        assert_eq!(view(&st, t).age, None);
        st.seen(Seen::ListStarts, t);
        st.seen(Seen::Object, at(t, 1));
        assert_eq!(view(&st, at(t, 1)).state, StreamState::Listing);
        st.seen(Seen::Listed, at(t, 2));
        let v = view(&st, at(t, 5));
        assert_eq!(
            (v.state, v.age),
            (StreamState::Synced, Some(Duration::from_secs(3)))
        );
        // A bookmark (bytes on the wire) is a sign of life too.
        st.wire(at(t, 60));
        assert_eq!(view(&st, at(t, 61)).age, Some(Duration::from_secs(1)));
        st.seen(Seen::Expired, at(t, 62));
        assert_eq!(view(&st, at(t, 62)).state, StreamState::Listing);
    }

    #[test]
    fn failures_count_from_the_first_until_anything_succeeds() {
        let (t, mut st) = (Instant::now(), StreamStatus::default());
        st.seen(Seen::Listed, t);
        st.seen(Seen::Failed("connection refused".into()), at(t, 10));
        st.seen(Seen::Failed("connection refused".into()), at(t, 20));
        let v = view(&st, at(t, 25));
        assert_eq!(v.state, StreamState::Erroring);
        assert_eq!(v.error.as_deref(), Some("connection refused"));
        assert_eq!(v.broken_for, Some(Duration::from_secs(15)));
        // A watch re-established (a 2xx, no event from kube's watcher) ends the run ...
        st.wire(at(t, 30));
        let v = view(&st, at(t, 31));
        assert_eq!(
            (v.state, v.error, v.broken_for),
            (StreamState::Synced, None, None)
        );
        // ... so the next failure starts a new one.
        st.seen(Seen::Failed("timeout".into()), at(t, 40));
        assert_eq!(
            view(&st, at(t, 41)).broken_for,
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn a_refusal_is_not_a_broken_watch() {
        let (t, mut st) = (Instant::now(), StreamStatus::default());
        st.seen(Seen::ListStarts, t);
        st.seen(Seen::Refused("forbidden".into()), at(t, 1));
        let v = view(&st, at(t, 600));
        assert_eq!(v.state, StreamState::Refused);
        assert_eq!(
            (v.error.as_deref(), v.broken_for),
            (Some("forbidden"), None)
        );
        // Allowed later: it lists.
        st.seen(Seen::Object, at(t, 601));
        assert_eq!(view(&st, at(t, 601)).state, StreamState::Listing);
    }

    #[test]
    fn the_wire_counts_for_the_stream_of_its_path() {
        let board = StreamBoard::default();
        let cm = board.add("ConfigMap", None, "/api/v1/configmaps");
        let _d = board.add(
            "Deployment",
            Some("a".into()),
            "/apis/apps/v1/namespaces/a/deployments",
        );
        cm.seen(Seen::Failed("refused".into()));
        board.touch("/apis/apps/v1/namespaces/a/deployments");
        board.touch("/api/v1/other");
        let views = board.views(Instant::now());
        assert_eq!(views[0].state, StreamState::Erroring);
        assert!(views[1].age.is_some() && views[0].age.is_none());
        assert_eq!(views[1].describe(), "Deployment in a");
    }
}
