//! Values stakater starts with although they cannot mean what they say (a bad log level,
//! an unknown `--ignored-workload-types` item, `ALERT_ON_RELOAD=yes` …): read as stakater
//! reads them, each set aside with a `ConfigWarning` that the operator logs and counts.

use crate::{
    operator::{
        args::{OperatorArgs, items},
        model::kinds::WorkloadKind,
        notify::{AlertConfig, AlertSink, Proxy},
    },
    shared::{
        go::parse_go_bool,
        telemetry::{self, LogSettings},
    },
};

/// A value stakater starts with although it cannot mean what it says: kube-reloader starts
/// too, doing what stakater does with it, and says so once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The flag, or stakater's env var for the `ALERT_*` settings.
    pub flag: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

#[derive(Default)]
pub(super) struct Warnings(Vec<ConfigWarning>);

impl Warnings {
    pub(super) fn into_vec(self) -> Vec<ConfigWarning> {
        self.0
    }

    pub(super) fn add(&mut self, flag: &'static str, message: String) {
        self.0.push(ConfigWarning { flag, message });
    }
}

/// Stakater warns and keeps logrus's default for a bad level or format. (When the format
/// is bad stakater drops a good level too; here a good level still applies.)
pub(super) fn log_settings(format: &str, level: &str, w: &mut Warnings) -> LogSettings {
    let default = LogSettings::default();
    let level = telemetry::parse_level(level).unwrap_or_else(|| {
        let accepted = telemetry::LEVELS;
        w.add(
            "--log-level",
            format!("{level:?} is not a level ({accepted}); logging at info"),
        );
        default.level
    });
    let format = telemetry::parse_format(format).unwrap_or_else(|| {
        let accepted = telemetry::FORMATS;
        w.add(
            "--log-format",
            format!("{format:?} is not a format ({accepted}); logging as text"),
        );
        default.format
    });
    LogSettings { format, level }
}

/// Stakater's rule: items are exact (case-sensitive, untrimmed), and one that is neither
/// `jobs` nor `cronjobs` voids the whole list, so Jobs and CronJobs are rolled.
pub(super) fn ignored_workload_kinds(items: &[String], w: &mut Warnings) -> Vec<WorkloadKind> {
    let kind = |t: &str| match t {
        "jobs" => Ok(WorkloadKind::Job),
        "cronjobs" => Ok(WorkloadKind::CronJob),
        other => Err(other.to_owned()),
    };
    items
        .iter()
        .map(|t| kind(t))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|other| {
            w.add(
                "--ignored-workload-types",
                format!(
                    "{other:?} is not jobs or cronjobs (items are exact: lowercase, no spaces); the whole list is ignored, so Jobs and CronJobs are reloaded"
                ),
            );
            Vec::new()
        })
}

/// `--namespaces`, else KUBERNETES_NAMESPACE; none: every namespace (global mode).
pub(super) fn watched_namespaces(a: &OperatorArgs) -> Vec<String> {
    let namespaces = items(&a.namespaces);
    if !namespaces.is_empty() {
        return namespaces;
    }
    a.kubernetes_namespace
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect()
}

/// A list that applies in global mode only: in scoped mode stakater ignores it, and so do
/// we, with a warning when it was given.
/// Why a global-mode flag is set aside in scoped mode.
pub(super) const GLOBAL_ONLY: &str = "ignored: it applies when every namespace is watched, and --namespaces or KUBERNETES_NAMESPACE narrows the watch";

pub(super) fn global_only(
    flag: &'static str,
    list: Vec<String>,
    scoped: bool,
    w: &mut Warnings,
) -> Vec<String> {
    if !scoped || list.is_empty() {
        return list;
    }
    w.add(flag, GLOBAL_ONLY.into());
    Vec::new()
}

/// Stakater sends alerts only when ALERT_ON_RELOAD is exactly `true`: a value that reads as
/// true elsewhere (`True`, `1`) or not at all (`yes`) leaves them off.
fn stakater_alert_on_reload(value: &str, w: &mut Warnings) -> bool {
    if value == "true" {
        return true;
    }
    if !value.is_empty() && parse_go_bool(value) != Some(false) {
        w.add(
            "ALERT_ON_RELOAD",
            format!("{value:?} is not exactly \"true\"; alerts are off"),
        );
    }
    false
}

/// The alert settings, trimmed as stakater trims them. Where stakater would fail every
/// alert (no URL, a proxy it cannot use) alerts are off, with a warning.
pub(super) fn alert_config(a: &OperatorArgs, w: &mut Warnings) -> Option<AlertConfig> {
    let on = match a.alert_on_reload {
        Some(on) => on,
        None => stakater_alert_on_reload(&a.alert_on_reload_env, w),
    };
    if !on {
        return None;
    }
    let url = a.alert_webhook_url.trim();
    if url.is_empty() {
        w.add(
            "ALERT_WEBHOOK_URL",
            "alerts are on but no URL is set; none are sent".into(),
        );
        return None;
    }
    let proxy = match a.alert_webhook_proxy.trim() {
        "" => None,
        proxy => match Proxy::parse(proxy) {
            Ok(p) => Some(p),
            Err(e) => {
                w.add("ALERT_WEBHOOK_PROXY", format!("{e}; alerts are not sent"));
                return None;
            }
        },
    };
    Some(AlertConfig {
        sink: AlertSink::parse(a.alert_sink.trim()),
        url: url.to_owned(),
        additional_info: a.alert_additional_info.trim().to_owned(),
        proxy,
    })
}
