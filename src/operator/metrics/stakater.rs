//! Stakater's `reloader_*` series beside its reload counter: the same names, types, label
//! names and buckets, so a stakater dashboard keeps its panels. Each is given the nearest
//! honest meaning in this design (docs/configuration.md says which, series by series):
//! stakater queues one item per config event and lists every workload for it; here a
//! config event goes through the reverse index, and reloads wait per workload.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub workload_kind: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadKindLabel {
    pub workload_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event_type: &'static str,
    pub resource_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessedLabels {
    pub event_type: &'static str,
    pub resource_type: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Why stakater counts a skip (`reloader_skipped_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// An update that left the config's data as it was.
    NoDataChange,
    /// A config event in a namespace that is ignored or not selected.
    IgnoredOrNotSelected,
    /// A reload whose markers were already in place: nothing written.
    StrategyNotUpdated,
}

impl Skip {
    fn label(self) -> &'static str {
        match self {
            Skip::NoDataChange => "no_data_change",
            Skip::IgnoredOrNotSelected => "ignored_or_not_selected",
            Skip::StrategyNotUpdated => "strategy_not_updated",
        }
    }
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

fn action_buckets() -> Histogram {
    Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

fn queue_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

#[derive(Clone)]
pub struct Stakater {
    reconcile: Family<ResultLabel, Counter>,
    reconcile_duration: Histograms<ResultLabel>,
    action: Family<ActionLabels, Counter>,
    action_latency: Histograms<WorkloadKindLabel>,
    skipped: Family<ReasonLabel, Counter>,
    pub queue_depth: Gauge,
    queue_adds: Counter,
    queue_latency: Histogram,
    errors: Family<TypeLabel, Counter>,
    retries: Counter,
    received: Family<EventLabels, Counter>,
    processed: Family<ProcessedLabels, Counter>,
    scanned: Family<KindLabel, Counter>,
    matched: Family<KindLabel, Counter>,
}

impl Stakater {
    pub fn register(r: &mut Registry) -> Self {
        let s = Stakater {
            reconcile: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_buckets),
            action: Family::default(),
            action_latency: Family::new_with_constructor(action_buckets),
            skipped: Family::default(),
            queue_depth: Gauge::default(),
            queue_adds: Counter::default(),
            queue_latency: queue_buckets(),
            errors: Family::default(),
            retries: Counter::default(),
            received: Family::default(),
            processed: Family::default(),
            scanned: Family::default(),
            matched: Family::default(),
        };
        let n = |name: &str| format!("reloader_{name}");
        r.register(
            n("reconcile"),
            "Config events handled, by result",
            s.reconcile.clone(),
        );
        r.register(
            n("reconcile_duration_seconds"),
            "Time spent handling a config event, by result",
            s.reconcile_duration.clone(),
        );
        r.register(
            n("action"),
            "Workload writes, by kind and result",
            s.action.clone(),
        );
        r.register(
            n("action_latency_seconds"),
            "From a change being seen to its workload write, by kind",
            s.action_latency.clone(),
        );
        r.register(
            n("skipped"),
            "Skipped operations, by reason",
            s.skipped.clone(),
        );
        r.register(
            n("workqueue_depth"),
            "Workloads with a reload waiting",
            s.queue_depth.clone(),
        );
        r.register(
            n("workqueue_adds"),
            "Reloads queued for a workload (one per workload a change selects)",
            s.queue_adds.clone(),
        );
        r.register(
            n("workqueue_latency_seconds"),
            "From a workload's first queued change to its write starting (coalescing included)",
            s.queue_latency.clone(),
        );
        r.register(n("errors"), "Errors, by type", s.errors.clone());
        r.register(n("retries"), "Write attempts retried", s.retries.clone());
        r.register(
            n("events_received"),
            "Watch events of configs, namespaces and CSI statuses, by type and resource",
            s.received.clone(),
        );
        r.register(
            n("events_processed"),
            "Config events handled, by resource and result",
            s.processed.clone(),
        );
        r.register(
            n("workloads_scanned"),
            "Workloads examined for a config event (from the reverse index), by kind",
            s.scanned.clone(),
        );
        r.register(
            n("workloads_matched"),
            "Workloads a config event selects for a reload, by kind",
            s.matched.clone(),
        );
        s
    }

    /// One config event handled in `seconds` (this design's handler cannot fail).
    pub fn reconciled(&self, resource_type: &'static str, seconds: f64) {
        let result = "success";
        self.reconcile.get_or_create(&ResultLabel { result }).inc();
        let labels = ResultLabel { result };
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(seconds);
        let labels = ProcessedLabels {
            event_type: "unknown", // stakater never knows it here either
            resource_type,
            result,
        };
        self.processed.get_or_create(&labels).inc();
    }

    pub fn received(&self, event_type: &'static str, resource_type: &'static str) {
        let labels = EventLabels {
            event_type,
            resource_type,
        };
        self.received.get_or_create(&labels).inc();
    }

    pub fn skipped(&self, why: Skip) {
        let reason = why.label();
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn scanned(&self, kind: &'static str, matched: bool) {
        self.scanned.get_or_create(&KindLabel { kind }).inc();
        if matched {
            self.matched.get_or_create(&KindLabel { kind }).inc();
        }
    }

    pub fn queued(&self) {
        self.queue_adds.inc();
    }

    pub fn dequeued(&self, waited_seconds: f64) {
        self.queue_latency.observe(waited_seconds);
    }

    /// A workload write that landed or failed, `seconds` after its first change was seen.
    pub fn action(&self, workload_kind: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "success" } else { "error" };
        let labels = ActionLabels {
            workload_kind,
            result,
        };
        self.action.get_or_create(&labels).inc();
        let labels = WorkloadKindLabel { workload_kind };
        self.action_latency.get_or_create(&labels).observe(seconds);
        if !ok {
            let r#type = "handler_error";
            self.errors.get_or_create(&TypeLabel { r#type }).inc();
        }
    }

    pub fn retried(&self) {
        self.retries.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_buckets_are_stakaters() {
        let mut r = Registry::default();
        let s = Stakater::register(&mut r);
        s.reconciled("configmaps", 0.002);
        s.received("update", "secrets");
        s.skipped(Skip::NoDataChange);
        s.scanned("Deployment", true);
        s.queued();
        s.dequeued(0.3);
        s.action("StatefulSet", false, 2.0);
        s.retried();
        s.queue_depth.set(3);
        let text = crate::shared::http::encode_registry(&r);
        for line in [
            "reloader_reconcile_total{result=\"success\"} 1",
            "reloader_reconcile_duration_seconds_bucket{le=\"0.005\",result=\"success\"} 1",
            "reloader_events_processed_total{event_type=\"unknown\",resource_type=\"configmaps\",result=\"success\"} 1",
            "reloader_events_received_total{event_type=\"update\",resource_type=\"secrets\"} 1",
            "reloader_skipped_total{reason=\"no_data_change\"} 1",
            "reloader_workloads_scanned_total{kind=\"Deployment\"} 1",
            "reloader_workloads_matched_total{kind=\"Deployment\"} 1",
            "reloader_workqueue_adds_total 1",
            "reloader_workqueue_depth 3",
            "reloader_workqueue_latency_seconds_bucket{le=\"0.5\"} 1",
            "reloader_action_total{workload_kind=\"StatefulSet\",result=\"error\"} 1",
            "reloader_action_latency_seconds_bucket{le=\"2.5\",workload_kind=\"StatefulSet\"} 1",
            "reloader_action_latency_seconds_bucket{le=\"60.0\",workload_kind=\"StatefulSet\"} 1",
            "reloader_errors_total{type=\"handler_error\"} 1",
            "reloader_retries_total 1",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(text.contains("# TYPE reloader_reconcile_duration_seconds histogram"));
        assert!(text.contains("# TYPE reloader_workqueue_depth gauge"));
    }
}
