//! What `/ready` reports: whether the caches are warm, and which watches the API refuses
//! to list (forbidden, or not served). Those do not hold readiness back: every other kind
//! reloads, and a refused watch retries with backoff until it is allowed.

/// Published by the engine, read by the HTTP server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Every watch has listed once, or is refused.
    pub warm: bool,
    /// The refused watches, each as "KIND in NAMESPACE: why" (sorted).
    pub not_listed: Vec<String>,
}

impl Readiness {
    /// The `/ready` body.
    pub fn describe(&self) -> String {
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
        assert_eq!(r.describe(), "ready");
        r.not_listed = vec!["DaemonSet in all namespaces: forbidden".into()];
        assert_eq!(
            r.describe(),
            "ready; not listed (refused by the API, retrying): DaemonSet in all namespaces: forbidden"
        );
    }
}
