//! The in-pod modes' own small registry (the operator's series make no sense in a pod) and
//! the health that /healthz reports: failing once reloads keep failing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone)]
pub struct InPodMetrics {
    registry: Arc<Registry>,
    reloads: Counter,
    failures: Counter,
    writes: Counter,
    last_success: Gauge<f64, AtomicU64>,
    /// Reloads failed in a row: exported, and what /healthz compares with `threshold`.
    consecutive: Gauge,
    threshold: u32,
    ready: Arc<AtomicBool>,
}

impl InPodMetrics {
    /// `threshold`: reloads failed in a row that make /healthz fail (0 never does).
    pub fn new(mode: &str, threshold: u32) -> Self {
        let mut r = Registry::with_prefix("kube_reloader_inpod");
        let m = InPodMetrics {
            registry: Arc::default(),
            reloads: Counter::default(),
            failures: Counter::default(),
            writes: Counter::default(),
            last_success: Gauge::default(),
            consecutive: Gauge::default(),
            threshold,
            ready: Arc::default(),
        };
        r.register(
            "reloads",
            "Reloads of the app that succeeded",
            m.reloads.clone(),
        );
        r.register(
            "reload_failures",
            "Reloads of the app that failed (after their retries)",
            m.failures.clone(),
        );
        r.register(
            "writes",
            "Config versions written into the directory",
            m.writes.clone(),
        );
        r.register(
            "last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload",
            m.last_success.clone(),
        );
        r.register(
            "consecutive_reload_failures",
            "Reloads failed since the last success",
            m.consecutive.clone(),
        );
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        info.get_or_create(&vec![
            ("version".into(), env!("CARGO_PKG_VERSION").into()),
            ("mode".into(), mode.into()),
        ])
        .set(1);
        r.register("build_info", "Build information", info);
        InPodMetrics {
            registry: Arc::new(r),
            ..m
        }
    }

    pub fn reload_ok(&self) {
        self.reloads.inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
        self.consecutive.set(0);
    }

    pub fn reload_failed(&self) {
        self.failures.inc();
        self.consecutive.inc();
    }

    pub fn written(&self) {
        self.writes.inc();
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// `Err(n)` once `n` reloads in a row failed and `n` reached the threshold.
    pub fn health(&self) -> Result<(), u32> {
        let n = u32::try_from(self.consecutive.get()).unwrap_or(u32::MAX);
        if self.threshold > 0 && n >= self.threshold {
            Err(n)
        } else {
            Ok(())
        }
    }

    pub fn encode(&self) -> String {
        crate::shared::http::encode_registry(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_fails_after_the_threshold_and_recovers() {
        let m = InPodMetrics::new("sidecar", 2);
        assert_eq!(m.health(), Ok(()));
        m.reload_failed();
        assert_eq!(m.health(), Ok(()));
        m.reload_failed();
        assert_eq!(m.health(), Err(2));
        m.reload_ok();
        assert_eq!(m.health(), Ok(()));
        let text = m.encode();
        assert!(
            text.contains("kube_reloader_inpod_reloads_total 1"),
            "{text}"
        );
        assert!(
            text.contains("kube_reloader_inpod_reload_failures_total 2"),
            "{text}"
        );
        assert!(
            text.contains("kube_reloader_inpod_consecutive_reload_failures 0"),
            "{text}"
        );
        assert!(text.contains("mode=\"sidecar\""), "{text}");
        let never = InPodMetrics::new("x", 0);
        never.reload_failed();
        assert_eq!(never.health(), Ok(()), "0 disables the health check");
    }
}
