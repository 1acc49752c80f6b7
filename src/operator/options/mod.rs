//! The validated operator options, resolved once from the CLI (and stakater's env vars).

use std::time::Duration;

mod tolerated;

pub use tolerated::ConfigWarning;
use tolerated::{
    Warnings, alert_config, global_only, ignored_workload_kinds, log_settings, watched_namespaces,
};

use crate::{
    operator::{
        apply::markers::ReloadStrategy,
        args::{OperatorArgs, items},
        decide::DecideOptions,
        health::{HEARTBEAT, LiveLimits},
        lease::LeaseConfig,
        model::{
            annotations::AnnotationKeys,
            custom_kinds::declare,
            kinds::{ConfigKind, WorkloadKind},
            selector::LabelSelector,
        },
        notify::AlertConfig,
    },
    shared::telemetry::LogSettings,
};

#[derive(Clone, Debug)]
pub struct Options {
    pub keys: AnnotationKeys,
    pub decide: DecideOptions,
    pub strategy: ReloadStrategy,
    pub reload_on_create: bool,
    pub reload_on_delete: bool,
    /// With reload-on-create: treat every config listed at start-up as created.
    pub sync_after_restart: bool,
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    pub namespaces_to_ignore: Vec<String>,
    pub resource_label_selector: Option<String>,
    /// Global mode only: configs roll workloads only in namespaces matching this.
    pub namespace_selector: Option<String>,
    /// `--workload-kinds`: the declared kinds (`WorkloadKind::Custom`).
    pub custom_kinds: Vec<WorkloadKind>,
    /// `--workload-selector`: workloads it matches are auto unless they set auto.
    pub workload_selector: Option<LabelSelector>,
    /// `--namespace-opt-in` (global mode only): `kube-reloader.io/auto` on Namespaces.
    pub namespace_opt_in: bool,
    pub watched_configs: Vec<ConfigKind>,
    pub dry_run: bool,
    pub http_addr: String,
    /// `--webhook-url`: notify instead of reloading.
    pub webhook_url: Option<String>,
    pub argo_rollouts: bool,
    pub alert: Option<AlertConfig>,
    pub limits: Limits,
    /// `--write-concurrency` (`usize::MAX` when 0).
    pub write_concurrency: usize,
    /// `--max-concurrent-rollouts` (none when 0).
    pub waves: Option<WaveLimits>,
    /// `--live-engine-stall`, `--live-watch-broken`.
    pub liveness: LiveLimits,
    pub metrics_by_namespace: bool,
    /// `--state-namespace`; the wiring puts the pod's own namespace first (see
    /// `operator::main`).
    pub state_namespace: Option<String>,
    /// This replica's name (env `POD_NAME`), the `reportingInstance` of its Events.
    pub pod_name: Option<String>,
    /// `--enable-ha`: the Lease to hold before writing.
    pub lease: Option<LeaseConfig>,
    pub log: LogSettings,
    /// Values stakater tolerates that were set aside; the operator logs and counts them.
    pub warnings: Vec<ConfigWarning>,
}

/// Coalescing and storm control.
#[derive(Clone, Debug)]
pub struct Limits {
    pub coalesce_window: Duration,
    pub coalesce_max_delay: Duration,
    /// Writes per second; 0 is unlimited.
    pub reload_rate: f64,
    pub reload_burst: u32,
    pub min_reload_interval: Duration,
}

/// Health-gated waves.
#[derive(Clone, Debug)]
pub struct WaveLimits {
    /// Workloads rolling at once.
    pub max: usize,
    /// How long one rollout may hold its slot.
    pub timeout: Duration,
}

/// A start-up error that names the flag and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct OptionError {
    pub flag: &'static str,
    pub message: String,
}

fn bad(flag: &'static str, message: String) -> OptionError {
    OptionError { flag, message }
}

/// Stakater's selector syntax: `k:v` → `k=v`, `k:*` and `k=*` → `k` (exists).
pub fn normalize_selector(items: &[String]) -> Option<String> {
    let parts: Vec<String> = items
        .iter()
        .map(|kv| {
            let kv = match kv.split_once(':') {
                Some((k, "*")) => k.to_owned(),
                Some((k, v)) => format!("{k}={v}"),
                None => kv.clone(),
            };
            match kv.split_once('=') {
                Some((k, "*")) => k.to_owned(),
                _ => kv,
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

impl Options {
    pub fn from_args(a: &OperatorArgs) -> Result<Self, OptionError> {
        let mut w = Warnings::default();
        let log = log_settings(&a.log_format, &a.log_level, &mut w);
        let ignored_kinds = ignored_workload_kinds(&items(&a.ignored_workload_types), &mut w);
        let mut watched = vec![ConfigKind::ConfigMap, ConfigKind::Secret];
        for r in items(&a.resources_to_ignore) {
            let kind = match r.trim().to_ascii_lowercase().as_str() {
                "configmaps" => ConfigKind::ConfigMap,
                "secrets" => ConfigKind::Secret,
                other => {
                    return Err(bad(
                        "--resources-to-ignore",
                        format!("{other:?} is not accepted (accepted: configmaps or secrets)"),
                    ));
                }
            };
            watched.retain(|k| *k != kind);
        }
        if watched.is_empty() {
            return Err(bad(
                "--resources-to-ignore",
                "configmaps and secrets cannot both be ignored".into(),
            ));
        }
        if a.enable_csi_integration {
            watched.push(ConfigKind::SecretProviderClass);
        }
        let namespaces = watched_namespaces(a);
        let scoped = !namespaces.is_empty();
        let ignored = items(&a.namespaces_to_ignore);
        let namespaces_to_ignore = global_only("--namespaces-to-ignore", ignored, scoped, &mut w);
        let selector = items(&a.namespace_selector);
        let selector = global_only("--namespace-selector", selector, scoped, &mut w);
        let resource_label_selector = normalize_selector(&items(&a.resource_label_selector));
        let namespace_selector = normalize_selector(&selector);
        let custom_kinds = items(&a.workload_kinds)
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| declare(s).map(WorkloadKind::Custom))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| bad("--workload-kinds", m))?;
        let workload_selector = normalize_selector(&items(&a.workload_selector));
        for (flag, sel) in [
            ("--resource-label-selector", &resource_label_selector),
            ("--namespace-selector", &namespace_selector),
            ("--workload-selector", &workload_selector),
        ] {
            if let Some(sel) = sel {
                LabelSelector::parse(sel)
                    .map_err(|m| bad(flag, format!("not a label selector: {m}")))?;
            }
        }
        let workload_selector = workload_selector.and_then(|s| LabelSelector::parse(&s).ok());
        let namespace_opt_in = a.namespace_opt_in && !scoped;
        if a.namespace_opt_in && scoped {
            w.add("--namespace-opt-in", tolerated::GLOBAL_ONLY.into());
        }
        let alert = alert_config(a, &mut w);
        let an = &a.annotations;
        let keys = AnnotationKeys {
            auto: an.auto_annotation.clone(),
            configmap_auto: an.configmap_auto_annotation.clone(),
            secret_auto: an.secret_auto_annotation.clone(),
            configmap_reload: an.configmap_annotation.clone(),
            secret_reload: an.secret_annotation.clone(),
            search: an.auto_search_annotation.clone(),
            search_match: an.search_match_annotation.clone(),
            ignore: an.ignore_annotation.clone(),
            pause_period: an.pause_deployment_annotation.clone(),
            paused_at: an.pause_deployment_time_annotation.clone(),
            ..AnnotationKeys::default()
        };
        if !(a.reload_rate.is_finite() && a.reload_rate >= 0.0) {
            return Err(bad(
                "--reload-rate",
                format!(
                    "{} is not accepted (a number of writes per second, 0 for unlimited)",
                    a.reload_rate
                ),
            ));
        }
        if a.reload_burst == 0 && a.reload_rate > 0.0 {
            return Err(bad(
                "--reload-burst",
                "must be at least 1 when --reload-rate is set".into(),
            ));
        }
        if a.coalesce_max_delay < a.coalesce_window {
            return Err(bad(
                "--coalesce-max-delay",
                format!(
                    "{:?} is shorter than --coalesce-window {:?}",
                    a.coalesce_max_delay, a.coalesce_window
                ),
            ));
        }
        let liveness = live_limits(a)?;
        let lease = if a.enable_ha {
            if a.pod_name.is_empty() || a.leader_election_namespace.is_empty() {
                return Err(bad(
                    "--enable-ha",
                    "needs the POD_NAME and POD_NAMESPACE env vars (or --leader-election-namespace) for the Lease identity and namespace".into(),
                ));
            }
            let (d, r, p) = (
                a.leader_election_lease_duration,
                a.leader_election_renew_deadline,
                a.leader_election_retry_period,
            );
            if !(p < r && r < d) {
                return Err(bad(
                    "--leader-election-renew-deadline",
                    format!(
                        "need retry-period {p:?} < renew-deadline {r:?} < lease-duration {d:?}"
                    ),
                ));
            }
            Some(LeaseConfig {
                name: a.leader_election_id.clone(),
                namespace: a.leader_election_namespace.clone(),
                identity: a.pod_name.clone(),
                lease_duration: d,
                renew_deadline: r,
                retry_period: p,
            })
        } else {
            None
        };
        Ok(Options {
            lease,
            keys,
            decide: DecideOptions {
                auto_reload_all: a.auto_reload_all,
                ignored_workload_kinds: ignored_kinds,
            },
            strategy: a.reload_strategy,
            reload_on_create: a.reload_on_create,
            reload_on_delete: a.reload_on_delete,
            sync_after_restart: a.sync_after_restart,
            namespaces,
            namespaces_to_ignore,
            resource_label_selector,
            namespace_selector,
            custom_kinds,
            workload_selector,
            namespace_opt_in,
            watched_configs: watched,
            dry_run: a.dry_run,
            http_addr: a.http_addr.clone(),
            webhook_url: (!a.webhook_url.is_empty()).then(|| a.webhook_url.clone()),
            argo_rollouts: a.is_argo_rollouts,
            alert,
            limits: Limits {
                coalesce_window: a.coalesce_window,
                coalesce_max_delay: a.coalesce_max_delay,
                reload_rate: a.reload_rate,
                reload_burst: a.reload_burst,
                min_reload_interval: a.min_reload_interval,
            },
            liveness,
            write_concurrency: match a.write_concurrency {
                0 => usize::MAX,
                n => n as usize,
            },
            waves: (a.max_concurrent_rollouts > 0).then_some(WaveLimits {
                max: a.max_concurrent_rollouts as usize,
                timeout: a.rollout_timeout,
            }),
            metrics_by_namespace: a.metrics_count_by_namespace == "enabled",
            state_namespace: (!a.state_namespace.is_empty()).then(|| a.state_namespace.clone()),
            pod_name: (!a.pod_name.is_empty()).then(|| a.pod_name.clone()),
            log,
            warnings: w.into_vec(),
        })
    }

    pub fn namespace_ignored(&self, ns: &str) -> bool {
        self.namespaces.is_empty() && self.namespaces_to_ignore.iter().any(|n| n == ns)
    }
}

/// The `/live` limits, 0 disabling each. An engine limit of under three heartbeats would
/// fail an idle engine between its turns.
fn live_limits(a: &OperatorArgs) -> Result<LiveLimits, OptionError> {
    let on = |d: std::time::Duration| (!d.is_zero()).then_some(d);
    let least = 3 * HEARTBEAT;
    if let Some(d) = on(a.live_engine_stall)
        && d < least
    {
        return Err(bad(
            "--live-engine-stall",
            format!(
                "{d:?} is shorter than {least:?} (three of the idle engine's 10 s turns); 0 disables it"
            ),
        ));
    }
    Ok(LiveLimits {
        engine_stall: on(a.live_engine_stall),
        watch_broken: on(a.live_watch_broken),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cli::Cli,
        operator::{model::kinds::WorkloadKind, notify::AlertSink},
        shared::telemetry::LogFormat,
    };
    use clap::Parser;

    fn opts(args: &[&str]) -> Result<Options, OptionError> {
        let cli = Cli::try_parse_from(std::iter::once("kube-reloader").chain(args.iter().copied()))
            .unwrap();
        Options::from_args(&cli.operator)
    }

    fn warned(o: &Options) -> Vec<&'static str> {
        o.warnings.iter().map(|w| w.flag).collect()
    }

    #[test]
    fn what_stakater_rejects_is_rejected_naming_the_flag() {
        let e = opts(&["--resources-to-ignore=configmaps,secrets"]).unwrap_err();
        assert_eq!(e.flag, "--resources-to-ignore");
        assert!(e.to_string().contains("both"));
        let e = opts(&["--resources-to-ignore=pods"]).unwrap_err();
        assert!(e.to_string().contains("configmaps or secrets"), "{e}");
        // A selector the API server would refuse on every retry (stakater exits on it).
        let e = opts(&["--namespace-selector=team=a b"]).unwrap_err();
        assert_eq!(e.flag, "--namespace-selector");
        assert!(e.to_string().contains("not a label selector"), "{e}");
        let e = opts(&["--resource-label-selector=env in (a"]).unwrap_err();
        assert_eq!(e.flag, "--resource-label-selector");
        // Stakater's own forms still pass: `k:v`, `k:*`, a set split by the CSV reader.
        assert!(opts(&["--resource-label-selector=team:a,app:*"]).is_ok());
        assert!(opts(&["--namespace-selector=env in (a,b)"]).is_ok());
    }

    #[test]
    fn a_bad_log_level_or_format_falls_back_with_a_warning() {
        let o = opts(&["--log-level=loud", "--log-format=xml"]).unwrap();
        assert_eq!(o.log, LogSettings::default(), "text at info");
        assert_eq!(warned(&o), ["--log-level", "--log-format"]);
        assert!(
            o.warnings[0].message.contains(r#""loud""#),
            "{}",
            o.warnings[0]
        );
        let o = opts(&["--log-level=DEBUG", "--log-format=xml"]).unwrap();
        assert_eq!(
            o.log.level, "debug",
            "a good level applies with a bad format"
        );
        let o = opts(&["--log-level=warning", "--log-format=json"]).unwrap();
        assert_eq!((o.log.level, o.log.format), ("warn", LogFormat::Json));
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn ignored_workload_types_are_read_as_stakater_reads_them() {
        let kinds = |arg: &str| {
            let o = opts(&[arg]).unwrap();
            (o.decide.ignored_workload_kinds.clone(), warned(&o))
        };
        let both = vec![WorkloadKind::Job, WorkloadKind::CronJob];
        assert_eq!(
            kinds("--ignored-workload-types=jobs,cronjobs"),
            (both, vec![])
        );
        // One item that is not exactly `jobs` or `cronjobs` voids the whole list.
        for voided in ["jobs, cronjobs", "Jobs", "jobs,pods", "jobs,"] {
            let arg = format!("--ignored-workload-types={voided}");
            let want = (vec![], vec!["--ignored-workload-types"]);
            assert_eq!(kinds(&arg), want, "{voided}");
        }
    }

    #[test]
    fn global_only_lists_are_set_aside_in_scoped_mode() {
        let o = opts(&[
            "--namespaces=a",
            "--namespace-selector=team=a",
            "--namespaces-to-ignore=b",
        ])
        .unwrap();
        assert_eq!(o.namespace_selector, None, "every namespace stays selected");
        assert!(o.namespaces_to_ignore.is_empty());
        assert_eq!(
            warned(&o),
            ["--namespaces-to-ignore", "--namespace-selector"]
        );
        let o = opts(&["--kubernetes-namespace=a", "--namespace-selector=team=a"]).unwrap();
        assert_eq!(o.namespace_selector, None);
        let o = opts(&[r#"--namespace-selector="team=a,env!=prod""#]).unwrap();
        assert_eq!(o.namespace_selector.as_deref(), Some("team=a,env!=prod"));
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn alert_on_reload_env_is_on_only_for_exactly_true() {
        let url = "--alert-webhook-url=https://hooks.example/x";
        let on = |value: &str| {
            let o = opts(&[&format!("--alert-on-reload-env={value}"), url]).unwrap();
            (o.alert.is_some(), warned(&o))
        };
        assert_eq!(on("true"), (true, vec![]));
        for off in ["", "false", "0", "F"] {
            assert_eq!(on(off), (false, vec![]), "{off:?}");
        }
        for odd in ["True", "1", "yes", " true"] {
            assert_eq!(on(odd), (false, vec!["ALERT_ON_RELOAD"]), "{odd:?}");
        }
        let o = opts(&["--alert-on-reload-env=yes", "--alert-on-reload", url]).unwrap();
        assert!(o.alert.is_some() && o.warnings.is_empty(), "the flag wins");
    }

    #[test]
    fn alert_values_are_trimmed_as_stakater_trims_them() {
        let o = opts(&[
            "--alert-on-reload",
            "--alert-webhook-url= https://hooks.example/x\n",
            "--alert-sink= Slack\n",
            "--alert-additional-info= prod ",
            "--alert-webhook-proxy= socks5://p:1080 ",
        ])
        .unwrap();
        let a = o.alert.unwrap();
        assert_eq!(a.url, "https://hooks.example/x");
        assert_eq!(
            (a.sink, a.additional_info.as_str()),
            (AlertSink::Slack, "prod")
        );
        assert!(a.proxy.is_some());
    }

    #[test]
    fn alerts_that_cannot_go_out_are_off_with_a_warning() {
        let o = opts(&["--alert-on-reload", "--alert-webhook-url= "]).unwrap();
        assert!(o.alert.is_none());
        assert_eq!(warned(&o), ["ALERT_WEBHOOK_URL"]);
        let o = opts(&[
            "--alert-on-reload",
            "--alert-webhook-url=https://hooks.example/x",
            "--alert-webhook-proxy=ftp://user:secret@proxy",
        ])
        .unwrap();
        assert!(o.alert.is_none());
        assert_eq!(warned(&o), ["ALERT_WEBHOOK_PROXY"]);
        assert!(
            !o.warnings[0].message.contains("secret"),
            "{}",
            o.warnings[0]
        );
        let o = opts(&["--alert-webhook-proxy=ftp://proxy"]).unwrap();
        assert!(
            o.warnings.is_empty(),
            "with alerts off the proxy is not read"
        );
    }

    #[test]
    fn alert_proxy_rides_on_the_alert_config() {
        let o = opts(&[
            "--alert-on-reload",
            "--alert-webhook-url=https://hooks.example/x",
            "--alert-proxy=http://proxy:3128",
        ])
        .unwrap();
        assert!(
            o.alert.unwrap().proxy.is_some(),
            "stakater v2's spelling too"
        );
        let o = opts(&[
            "--alert-on-reload",
            "--alert-webhook-url=https://hooks.example/x",
        ])
        .unwrap();
        assert!(o.alert.unwrap().proxy.is_none());
    }

    #[test]
    fn ha_needs_an_identity_and_sane_timings() {
        let e = opts(&["--enable-ha", "--leader-election-namespace=ns"]).unwrap_err();
        assert_eq!(e.flag, "--enable-ha");
        let base = [
            "--enable-ha",
            "--leader-election-namespace=ns",
            "--pod-name=p",
        ];
        let o = opts(&base).unwrap();
        let l = o.lease.unwrap();
        assert_eq!(
            (l.name.as_str(), l.identity.as_str()),
            ("kube-reloader-lock", "p")
        );
        let bad_timing = [&base[..], &["--leader-election-renew-deadline=20s"]].concat();
        let e = opts(&bad_timing).unwrap_err();
        assert_eq!(e.flag, "--leader-election-renew-deadline");
    }

    #[test]
    fn limits_are_checked() {
        let e = opts(&["--coalesce-window=10s", "--coalesce-max-delay=5s"]).unwrap_err();
        assert_eq!(e.flag, "--coalesce-max-delay");
        let e = opts(&["--reload-rate=-1"]).unwrap_err();
        assert_eq!(e.flag, "--reload-rate");
        let o = opts(&[]).unwrap();
        assert_eq!(o.limits.coalesce_window, Duration::from_secs(2));
        let live = o.liveness;
        assert_eq!(live.engine_stall, Some(Duration::from_secs(120)));
        assert_eq!(live.watch_broken, Some(Duration::from_secs(300)));
        let o = opts(&["--live-engine-stall=0", "--live-watch-broken=3s"]).unwrap();
        assert_eq!(o.liveness.engine_stall, None, "0 disables");
        assert_eq!(o.liveness.watch_broken, Some(Duration::from_secs(3)));
        let e = opts(&["--live-engine-stall=5s"]).unwrap_err();
        assert_eq!(e.flag, "--live-engine-stall");
        assert_eq!(o.limits.coalesce_max_delay, Duration::from_secs(30));
    }

    #[test]
    fn stakater_selector_syntax() {
        let s =
            |v: &[&str]| normalize_selector(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            s(&["a:b", "c:*", "d=*", "e=f"]).as_deref(),
            Some("a=b,c,d,e=f")
        );
        assert_eq!(s(&[]), None);
    }

    #[test]
    fn ignored_kinds_and_scope() {
        let o = opts(&["--resources-to-ignore=Secrets", "--namespaces=a,b"]).unwrap();
        assert_eq!(o.watched_configs, [ConfigKind::ConfigMap]);
        assert_eq!(o.namespaces, ["a", "b"]);
        assert!(!o.namespace_ignored("kube-system"));
    }

    #[test]
    fn kubernetes_namespace_scopes_unless_namespaces_is_given() {
        let o = opts(&["--kubernetes-namespace=team"]).unwrap();
        assert_eq!(o.namespaces, ["team"]);
        let o = opts(&["--kubernetes-namespace=team", "--namespaces=a,b"]).unwrap();
        assert_eq!(o.namespaces, ["a", "b"], "--namespaces wins");
        let o = opts(&["--kubernetes-namespace="]).unwrap();
        assert!(o.namespaces.is_empty(), "empty means global");
    }
}
