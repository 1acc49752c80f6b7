//! What `/ready` decides, and its plain-text body: whether the caches are warm, whether
//! the first persisted state is stored, and which watches the API refuses to list
//! (forbidden, or not served). Refused watches do not hold readiness back: every other
//! kind reloads, and a refused watch retries with backoff until it is allowed. A watch
//! erroring after its first list does not either: the caches stay warm with what it
//! listed, and `/live` is what acts on a watch failing for long.

/// Published by the engine, read by the HTTP server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Every watch has listed once, or is refused.
    pub warm: bool,
    /// On a first run, until the leader has stored the state once: where it goes. A
    /// change seen before that is lost if the operator dies before applying it (the next
    /// one has nothing to compare with), so the replica is not ready until then.
    pub state_unstored: Option<String>,
    /// The refused watches, each as "KIND in NAMESPACE: why" (sorted).
    pub not_listed: Vec<String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.warm && self.state_unstored.is_none()
    }

    /// The `/ready` body.
    pub fn describe(&self) -> String {
        if let (true, Some(at)) = (self.warm, &self.state_unstored) {
            return format!("caches synced; the first state is not stored yet in {at}");
        }
        match (self.warm, self.not_listed.is_empty()) {
            (false, _) => "caches not synced".into(),
            (true, true) => "ready".into(),
            (true, false) => format!(
                "ready; not listed (refused by the API, retrying): {}",
                self.not_listed.join("; ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_what_is_not_listed() {
        let mut r = Readiness::default();
        assert_eq!(r.describe(), "caches not synced");
        r.warm = true;
        r.state_unstored = Some("ns/kube-reloader-state-NN".into());
        assert!(!r.is_ready());
        assert_eq!(
            r.describe(),
            "caches synced; the first state is not stored yet in ns/kube-reloader-state-NN"
        );
        r.state_unstored = None;
        assert!(r.is_ready());
        assert_eq!(r.describe(), "ready");
        r.not_listed = vec!["DaemonSet in all namespaces: forbidden".into()];
        assert_eq!(
            r.describe(),
            "ready; not listed (refused by the API, retrying): DaemonSet in all namespaces: forbidden"
        );
    }
}
