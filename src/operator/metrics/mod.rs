//! Prometheus metrics: stakater's series under their exact names (`metrics/stakater.rs`),
//! the standard `process_*` and client-go's `rest_client_*` ones, plus our own under
//! `kube_reloader_`. Served as Prometheus text (0.0.4) on `/metrics`.

use std::sync::{Arc, atomic::AtomicU64};

mod process;
mod rest;
mod stakater;

pub use rest::RestMetrics;
pub use stakater::{Skip, Stakater};

use crate::operator::health::StreamView;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::{
        MetricType, TypedMetric,
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuccessLabels {
    pub success: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub success: &'static str,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchErrorLabels {
    pub kind: String,
    pub reason: &'static str,
}

/// One watch stream: its kind and namespace ("" for all), both bounded by the flags. Not
/// `namespace`: that is the target's label, and the chart's monitors honor scraped labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub kind: &'static str,
    pub watch_namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// A counter encoded without the `_total` suffix prometheus-client appends, because
/// stakater's name `reloader_reload_executed_total_by_namespace` has it in the middle.
#[derive(Clone, Debug, Default)]
pub struct BareCounter(Counter);

impl BareCounter {
    pub fn inc(&self) {
        self.0.inc();
    }
}

impl TypedMetric for BareCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for BareCounter {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

fn latency_histogram() -> Histogram {
    // 10 ms … 82 s: the coalescing window (2 s by default) is part of the latency.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// Every metric the operator records; cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reloads: Family<SuccessLabels, Counter>,
    reloads_by_namespace: Option<Family<NamespaceLabels, BareCounter>>,
    pub latency: Family<KindLabels, Histogram, fn() -> Histogram>,
    pub coalesced: Counter,
    pub deferred: Family<ReasonLabels, Counter>,
    /// Skips of a used config that are likely mistakes (`decide::Suspect`).
    pub suspicious_skips: Family<ReasonLabels, Counter>,
    /// Health-gated waves: rolling now, failed, timed out, halted.
    pub rollouts_in_progress: Gauge,
    pub rollouts_failed: Counter,
    pub rollout_timeouts: Counter,
    pub waves_halted: Gauge,
    pub pending: Gauge,
    pub watched: Family<KindLabels, Gauge>,
    pub state_writes: Family<ResultLabels, Counter>,
    pub leader: Gauge,
    pub errors: Family<KindLabels, Counter>,
    watch_errors: Family<WatchErrorLabels, Counter>,
    refused_watches: Family<KindLabels, Gauge>,
    watch_ages: Family<StreamLabels, Gauge<f64, AtomicU64>>,
    pub dry_run: Counter,
    pub stakater: Stakater,
    pub rest: RestMetrics,
    config_warnings: Family<FlagLabels, Counter>,
}

impl Metrics {
    /// `by_namespace`: stakater's `METRICS_COUNT_BY_NAMESPACE=enabled`.
    pub fn new(by_namespace: bool) -> Self {
        let mut r = Registry::default();
        let reloads = Family::<SuccessLabels, Counter>::default();
        // Stakater pre-initialises both series to 0.
        for success in ["true", "false"] {
            let _ = reloads.get_or_create(&SuccessLabels { success });
        }
        r.register(
            "reloader_reload_executed",
            "Reloads executed, by success",
            reloads.clone(),
        );
        let reloads_by_namespace = by_namespace.then(|| {
            let f = Family::<NamespaceLabels, BareCounter>::default();
            r.register(
                "reloader_reload_executed_total_by_namespace",
                "Reloads executed, by success and namespace",
                f.clone(),
            );
            f
        });
        let stakater = Stakater::register(&mut r);
        let rest = RestMetrics::register(&mut r);
        r.register_collector(Box::new(process::ProcessCollector));
        let m = Metrics {
            stakater,
            rest,
            reloads,
            reloads_by_namespace,
            latency: Family::new_with_constructor(latency_histogram),
            coalesced: Counter::default(),
            deferred: Family::default(),
            suspicious_skips: Family::default(),
            rollouts_in_progress: Gauge::default(),
            rollouts_failed: Counter::default(),
            rollout_timeouts: Counter::default(),
            waves_halted: Gauge::default(),
            pending: Gauge::default(),
            watched: Family::default(),
            state_writes: Family::default(),
            leader: Gauge::default(),
            errors: Family::default(),
            watch_errors: Family::default(),
            refused_watches: Family::default(),
            watch_ages: Family::default(),
            dry_run: Counter::default(),
            config_warnings: Family::default(),
            registry: Arc::new(Registry::default()),
        };
        let k = |name: &str| format!("kube_reloader_{name}");
        r.register_with_unit(
            k("reload_latency"),
            "From a change being seen to the workload being written",
            prometheus_client::registry::Unit::Seconds,
            m.latency.clone(),
        );
        r.register(
            k("coalesced_changes"),
            "Changes merged into a reload already pending for the workload",
            m.coalesced.clone(),
        );
        r.register(
            k("deferred_reloads"),
            "Reloads delayed (never dropped) by --reload-rate/--reload-burst or --min-reload-interval",
            m.deferred.clone(),
        );
        // Every reason at 0, so an alert on an increase sees the first one.
        for s in crate::operator::decide::Suspect::ALL {
            let _ = m
                .suspicious_skips
                .get_or_create(&ReasonLabels { reason: s.label() });
        }
        r.register(
            k("suspicious_skips"),
            "Changes of a config a workload uses that a rule kept from rolling it where the rule is likely a mistake, by reason (see `kube-reloader explain`)",
            m.suspicious_skips.clone(),
        );
        r.register(
            k("rollouts_in_progress"),
            "With --max-concurrent-rollouts: workloads written whose rollout has not completed yet",
            m.rollouts_in_progress.clone(),
        );
        r.register(
            k("rollouts_failed"),
            "With --max-concurrent-rollouts: rollouts that failed (a Deployment's progress deadline), each halting the waves until it completes",
            m.rollouts_failed.clone(),
        );
        r.register(
            k("rollout_timeouts"),
            "With --max-concurrent-rollouts: rollouts that held their slot for --rollout-timeout; the waves go on",
            m.rollout_timeouts.clone(),
        );
        r.register(
            k("waves_halted"),
            "1 while a failed rollout holds the waves",
            m.waves_halted.clone(),
        );
        r.register(
            k("pending_reloads"),
            "Workloads with a reload waiting",
            m.pending.clone(),
        );
        r.register(
            k("watched_objects"),
            "Objects in the caches, by kind",
            m.watched.clone(),
        );
        r.register(
            k("state_writes"),
            "Writes of the persisted state, by result",
            m.state_writes.clone(),
        );
        r.register(
            k("leader"),
            "1 while this replica may write",
            m.leader.clone(),
        );
        r.register(k("errors"), "Errors, by kind", m.errors.clone());
        r.register(
            k("watch_errors"),
            "Watch errors, by kind of object and reason: expired (410 Gone, listed again at once), refused (forbidden or not served) or other (both retried with backoff)",
            m.watch_errors.clone(),
        );
        r.register(
            k("watches_refused"),
            "Watches the API refuses (forbidden or not served), by kind: retried with backoff while the other kinds reload",
            m.refused_watches.clone(),
        );
        r.register_with_unit(
            k("watch_last_event_age"),
            "Since each watch stream last showed it works (an event, a list, a bookmark or a watch re-established), by kind and watch_namespace (\"\" for all); set when /metrics is read",
            prometheus_client::registry::Unit::Seconds,
            m.watch_ages.clone(),
        );
        r.register(
            k("dry_run_reloads"),
            "Reloads --dry-run would have written",
            m.dry_run.clone(),
        );
        r.register(
            k("config_warnings"),
            "Values set aside at start-up as stakater sets them aside (bad log level, unknown --ignored-workload-types item …), by flag",
            m.config_warnings.clone(),
        );
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        build
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        r.register(k("build_info"), "Build information", build);
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    pub fn reload_executed(&self, namespace: &str, success: bool) {
        let success = if success { "true" } else { "false" };
        self.reloads.get_or_create(&SuccessLabels { success }).inc();
        if let Some(f) = &self.reloads_by_namespace {
            f.get_or_create(&NamespaceLabels {
                success,
                namespace: namespace.to_owned(),
            })
            .inc();
        }
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    pub fn watch_error(&self, kind: &str, reason: &'static str) {
        let labels = WatchErrorLabels {
            kind: kind.to_owned(),
            reason,
        };
        self.watch_errors.get_or_create(&labels).inc();
    }

    pub fn refused_watches(&self, kind: &'static str) -> Gauge {
        self.refused_watches
            .get_or_create(&KindLabels { kind })
            .clone()
    }

    /// Each stream's age as of now, for the next [`Metrics::encode`].
    pub fn set_watch_ages(&self, streams: &[StreamView]) {
        for s in streams {
            let Some(age) = s.age else { continue };
            let labels = StreamLabels {
                kind: s.kind,
                watch_namespace: s.namespace.clone().unwrap_or_default(),
            };
            self.watch_ages
                .get_or_create(&labels)
                .set(age.as_secs_f64());
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        crate::shared::http::encode_registry(&self.registry)
    }
}

// Start-up configuration warnings (`options::ConfigWarning`).

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlagLabels {
    pub flag: &'static str,
}

impl Metrics {
    /// One value stakater tolerates was set aside for `flag`.
    pub fn config_warning(&self, flag: &'static str) {
        self.config_warnings
            .get_or_create(&FlagLabels { flag })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stakater_names_are_exact() {
        let m = Metrics::new(true);
        m.reload_executed("team-a", true);
        let text = m.encode();
        assert!(text.contains("reloader_reload_executed_total{success=\"true\"} 1"));
        assert!(text.contains("reloader_reload_executed_total{success=\"false\"} 0"));
        assert!(text.contains(
            "reloader_reload_executed_total_by_namespace{success=\"true\",namespace=\"team-a\"} 1"
        ));
        assert!(!text.contains("by_namespace_total"));
        assert!(text.contains("kube_reloader_build_info{version="));
    }

    #[test]
    fn by_namespace_only_when_enabled() {
        let m = Metrics::new(false);
        m.reload_executed("team-a", true);
        assert!(!m.encode().contains("by_namespace"));
    }

    #[test]
    fn watch_ages_are_by_kind_and_namespace() {
        let m = Metrics::new(false);
        let view = |namespace: Option<&str>, age: Option<f64>| StreamView {
            kind: "ConfigMap",
            namespace: namespace.map(Into::into),
            state: crate::operator::health::StreamState::Synced,
            error: None,
            broken_for: None,
            age: age.map(std::time::Duration::from_secs_f64),
        };
        m.set_watch_ages(&[view(None, Some(1.5)), view(Some("a"), None)]);
        let text = m.encode();
        let all = r#"kube_reloader_watch_last_event_age_seconds{kind="ConfigMap",watch_namespace=""} 1.5"#;
        assert!(text.contains(all), "{text}");
        assert!(
            !text.contains(r#"watch_namespace="a""#),
            "no age yet, no series: {text}"
        );
    }
}
