//! Command line. The operator (no subcommand) takes stakater/Reloader's flags with their
//! exact spellings, so stakater's chart arguments start this binary unchanged. The in-pod
//! modes are subcommands (`src/inpod/args.rs`).

use std::time::Duration;

use clap::Args;

use crate::{
    operator::apply::markers::ReloadStrategy,
    shared::go::{go_bool, go_duration},
};

/// One occurrence of a stakater list flag, read as pflag's `StringSlice` reads it (one CSV
/// record: `"a,b"` is one item, without its quotes). Occurrences accumulate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringSlice(pub Vec<String>);

fn string_slice(s: &str) -> Result<StringSlice, String> {
    crate::shared::go::csv::read_record(s)
        .map(StringSlice)
        .map_err(|e| format!("{s:?} is not a comma-separated list: {e}"))
}

/// Every item of a list flag's occurrences, in order.
pub fn items(occurrences: &[StringSlice]) -> Vec<String> {
    occurrences
        .iter()
        .flat_map(|o| o.0.iter().cloned())
        .collect()
}

#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// How workloads are rolled: an env var on the container, or a pod-template annotation.
    #[arg(long, value_enum, default_value = "env-vars")]
    pub reload_strategy: ReloadStrategy,

    /// Treat every workload as `reloader.stakater.com/auto: "true"` unless it sets auto itself.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub auto_reload_all: bool,

    /// Roll workloads when a config they use is created.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub reload_on_create: bool,

    /// Roll workloads when a config they use is deleted (env-vars: the env var is removed).
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub reload_on_delete: bool,

    /// With --reload-on-create: treat the configs listed at start-up as created, so
    /// workloads whose markers are missing or stale roll (those up to date do not).
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub sync_after_restart: bool,

    /// Also roll Argo Rollouts (argoproj.io/v1alpha1).
    #[arg(long = "is-Argo-Rollouts", alias = "is-argo-rollouts", value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub is_argo_rollouts: bool,

    /// Config kinds not to watch: `configmaps` or `secrets` (not both).
    #[arg(long, value_parser = string_slice)]
    pub resources_to_ignore: Vec<StringSlice>,

    /// Workload kinds not to roll: `jobs`, `cronjobs`.
    #[arg(long, value_parser = string_slice)]
    pub ignored_workload_types: Vec<StringSlice>,

    /// Watch only these namespaces (scoped mode; no cluster-wide RBAC needed).
    #[arg(long, value_parser = string_slice)]
    pub namespaces: Vec<StringSlice>,

    /// Single-namespace mode (stakater's env var); `--namespaces` wins over it.
    #[arg(
        long = "kubernetes-namespace",
        env = "KUBERNETES_NAMESPACE",
        hide = true
    )]
    pub kubernetes_namespace: Option<String>,

    /// Namespaces to ignore (global mode only).
    #[arg(long, value_parser = string_slice)]
    pub namespaces_to_ignore: Vec<StringSlice>,

    /// Only namespaces whose labels match these selectors (global mode only).
    #[arg(long, value_parser = string_slice)]
    pub namespace_selector: Vec<StringSlice>,

    /// Only ConfigMaps and Secrets whose labels match (applied by the API server).
    #[arg(long, value_parser = string_slice)]
    pub resource_label_selector: Vec<StringSlice>,

    /// More workload kinds to roll: any kind with a pod template, as
    /// `GROUP/VERSION/KIND:PATH` (`apps.kruise.io/v1alpha1/CloneSet:spec.template`).
    #[arg(long, value_parser = string_slice)]
    pub workload_kinds: Vec<StringSlice>,

    /// Workloads whose labels match roll as if annotated `reloader.stakater.com/auto: "true"`,
    /// unless they set auto themselves (the same syntax as the other selectors).
    #[arg(long, value_parser = string_slice)]
    pub workload_selector: Vec<StringSlice>,

    /// Read `kube-reloader.io/auto` on Namespaces: `"true"` makes their workloads auto unless
    /// they set auto themselves (global mode only; needs list and watch on namespaces).
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub namespace_opt_in: bool,

    /// Notify this URL instead of rolling anything.
    #[arg(long, default_value = "")]
    pub webhook_url: String,

    /// Leader election through a Lease (needs POD_NAME and POD_NAMESPACE).
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub enable_ha: bool,

    /// Roll workloads when the CSI Secrets Store driver rotates a SecretProviderClass's
    /// objects (watches SecretProviderClassPodStatus when secrets-store.csi.x-k8s.io/v1 is served).
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub enable_csi_integration: bool,

    /// Log format: `json`, or empty/`text` for plain text.
    #[arg(long, default_value = "")]
    pub log_format: String,

    /// Log level: trace, debug, info, warn(ing), error (fatal and panic map to error).
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Accepted for stakater compatibility; no profiling endpoint is ever served.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub enable_pprof: bool,

    /// Accepted for stakater compatibility; ignored.
    #[arg(long, default_value = ":6060")]
    pub pprof_addr: String,

    /// Log and count what would be rolled, but write nothing.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub dry_run: bool,

    /// Address of the HTTP server for /metrics, /live, /ready and /healthz.
    #[arg(long, default_value = ":9090")]
    pub http_addr: String,

    /// Changes to one workload's configs within this window go out in one write (a trailing
    /// debounce; 0 writes at once).
    #[arg(long, value_parser = go_duration, default_value = "2s")]
    pub coalesce_window: Duration,

    /// Cap on the debounce: a workload whose configs keep changing still rolls this often.
    #[arg(long, value_parser = go_duration, default_value = "30s")]
    pub coalesce_max_delay: Duration,

    /// Workload writes per second across the operator (0: unlimited). Excess is delayed.
    #[arg(long, default_value = "10")]
    pub reload_rate: f64,

    /// Writes allowed at once above --reload-rate.
    #[arg(long, default_value = "100")]
    pub reload_burst: u32,

    /// Workload writes in flight at once across the operator (0: no limit); the rest wait
    /// their turn. Each write in flight holds a connection to the API server.
    #[arg(long, default_value = "16")]
    pub write_concurrency: u32,

    /// Health-gated waves: at most this many workloads rolling at once, each counted until
    /// its rollout completes or --rollout-timeout passes (0: no limit, stakater's way).
    #[arg(long, default_value = "0")]
    pub max_concurrent_rollouts: u32,

    /// With --max-concurrent-rollouts: how long a rollout may hold its slot.
    #[arg(long, value_parser = go_duration, default_value = "10m")]
    pub rollout_timeout: Duration,

    /// Least time between two rollouts of one workload (0: none). Excess is delayed.
    #[arg(long, value_parser = go_duration, default_value = "0s")]
    pub min_reload_interval: Duration,

    /// Namespace of the persisted state (`kube-reloader-state-NN` ConfigMaps) when neither
    /// POD_NAMESPACE nor the in-cluster namespace file gives one; none disables it.
    #[arg(long, default_value = "")]
    pub state_namespace: String,

    /// `/live` fails (so the kubelet restarts the operator) once the engine loop has not
    /// turned for this long; it turns at least every 10 s when idle. 0 disables; else at
    /// least 30s.
    #[arg(long, value_parser = go_duration, default_value = "2m")]
    pub live_engine_stall: Duration,

    /// `/live` fails once a watch's list/watch calls have failed this long with no success
    /// in between (a quiet watch is not failing; one the API refuses does not count). 0
    /// disables.
    #[arg(long, value_parser = go_duration, default_value = "5m")]
    pub live_watch_broken: Duration,

    /// Stakater's switch for `reloader_reload_executed_total_by_namespace`: `enabled`.
    #[arg(
        long,
        env = "METRICS_COUNT_BY_NAMESPACE",
        hide = true,
        default_value = ""
    )]
    pub metrics_count_by_namespace: String,

    /// Lease timings (stakater PR #1206 spellings).
    #[arg(long, value_parser = go_duration, default_value = "15s")]
    pub leader_election_lease_duration: Duration,
    #[arg(long, value_parser = go_duration, default_value = "10s")]
    pub leader_election_renew_deadline: Duration,
    #[arg(long, value_parser = go_duration, default_value = "2s")]
    pub leader_election_retry_period: Duration,

    /// Name of the Lease (in the leader-election namespace).
    #[arg(long, default_value = "kube-reloader-lock")]
    pub leader_election_id: String,

    /// Namespace of the Lease (POD_NAMESPACE, as in stakater).
    #[arg(long, env = "POD_NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,

    /// This replica's identity in the Lease (POD_NAME, as in stakater).
    #[arg(long, env = "POD_NAME", hide = true, default_value = "")]
    pub pod_name: String,

    /// Alert after each reload (stakater v2's flag, a Go boolean); wins over ALERT_ON_RELOAD.
    #[arg(long, value_parser = go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub alert_on_reload: Option<bool>,

    /// Stakater's ALERT_ON_RELOAD, read as stakater reads it: on only for exactly `true`.
    #[arg(
        long = "alert-on-reload-env",
        env = "ALERT_ON_RELOAD",
        hide = true,
        default_value = ""
    )]
    pub alert_on_reload_env: String,

    /// Alert format: slack, teams, gchat, or anything else for raw text (ALERT_SINK).
    #[arg(long, env = "ALERT_SINK", default_value = "")]
    pub alert_sink: String,

    /// Where alerts are POSTed (ALERT_WEBHOOK_URL).
    #[arg(long, env = "ALERT_WEBHOOK_URL", default_value = "")]
    pub alert_webhook_url: String,

    /// Proxy for alerts, `http://`, `https://` or `socks5://[user:password@]host[:port]`
    /// (ALERT_WEBHOOK_PROXY; `--alert-proxy` is stakater v2's spelling).
    #[arg(
        long,
        env = "ALERT_WEBHOOK_PROXY",
        alias = "alert-proxy",
        default_value = ""
    )]
    pub alert_webhook_proxy: String,

    /// Text put before each alert (ALERT_ADDITIONAL_INFO).
    #[arg(long, env = "ALERT_ADDITIONAL_INFO", default_value = "")]
    pub alert_additional_info: String,

    #[command(flatten)]
    pub annotations: AnnotationArgs,
}

/// Stakater's annotation-override flags.
#[derive(Debug, Clone, Args)]
pub struct AnnotationArgs {
    #[arg(long, default_value = "reloader.stakater.com/auto")]
    pub auto_annotation: String,
    #[arg(long, default_value = "configmap.reloader.stakater.com/auto")]
    pub configmap_auto_annotation: String,
    #[arg(long, default_value = "secret.reloader.stakater.com/auto")]
    pub secret_auto_annotation: String,
    #[arg(long, default_value = "configmap.reloader.stakater.com/reload")]
    pub configmap_annotation: String,
    #[arg(long, default_value = "secret.reloader.stakater.com/reload")]
    pub secret_annotation: String,
    #[arg(long, default_value = "reloader.stakater.com/search")]
    pub auto_search_annotation: String,
    #[arg(long, default_value = "reloader.stakater.com/match")]
    pub search_match_annotation: String,
    #[arg(long, default_value = "reloader.stakater.com/ignore")]
    pub ignore_annotation: String,
    #[arg(long, default_value = "deployment.reloader.stakater.com/pause-period")]
    pub pause_deployment_annotation: String,
    #[arg(long, default_value = "deployment.reloader.stakater.com/paused-at")]
    pub pause_deployment_time_annotation: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kube-reloader").chain(args.iter().copied()))
    }

    #[test]
    fn stakater_chart_arguments_parse() {
        let cli = parse(&[
            "--reload-strategy=annotations",
            "--reload-on-create=true",
            "--reload-on-delete=true",
            "--is-Argo-Rollouts=true",
            "--auto-reload-all",
            "--namespaces-to-ignore=kube-system,flux",
            "--resources-to-ignore=secrets",
            "--ignored-workload-types=jobs,cronjobs",
            "--resource-label-selector=app=x",
            "--log-format=json",
            "--enable-ha=false",
        ])
        .unwrap();
        let o = cli.operator;
        assert_eq!(o.reload_strategy, ReloadStrategy::Annotations);
        assert!(
            o.reload_on_create && o.reload_on_delete && o.is_argo_rollouts && o.auto_reload_all
        );
        assert!(!o.enable_ha);
        assert_eq!(items(&o.namespaces_to_ignore), ["kube-system", "flux"]);
        assert_eq!(items(&o.ignored_workload_types), ["jobs", "cronjobs"]);
    }

    #[test]
    fn repeated_flags_behave_as_in_go() {
        let o = parse(&[
            "--coalesce-window=1s",
            "--coalesce-window=5s",
            "--namespaces-to-ignore=a",
            "--namespaces-to-ignore=b,c",
        ])
        .unwrap()
        .operator;
        assert_eq!(
            o.coalesce_window,
            Duration::from_secs(5),
            "the last value wins"
        );
        assert_eq!(
            items(&o.namespaces_to_ignore),
            ["a", "b", "c"],
            "lists accumulate"
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_accepted_values() {
        let err = parse(&["--reload-strategy=bogus"]).unwrap_err().to_string();
        assert!(
            err.contains("--reload-strategy") && err.contains("env-vars"),
            "{err}"
        );
        let err = parse(&["--reload-on-create=maybe"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--reload-on-create") && err.contains("true, false"),
            "{err}"
        );
        let err = parse(&[r#"--namespaces=a,"b"#]).unwrap_err().to_string();
        assert!(
            err.contains("--namespaces") && err.contains("quoted field"),
            "pflag rejects it too: {err}"
        );
    }

    #[test]
    fn list_flags_are_read_as_pflag_reads_them() {
        // Stakater's chart quotes the selector; pflag's CSV reader strips the quotes.
        let o = parse(&[
            r#"--namespace-selector="team=a,env!=prod""#,
            r#"--resource-label-selector="app=x""#,
            "--ignored-workload-types=jobs, cronjobs",
            "--namespaces=",
        ])
        .unwrap()
        .operator;
        assert_eq!(items(&o.namespace_selector), ["team=a,env!=prod"]);
        assert_eq!(items(&o.resource_label_selector), ["app=x"]);
        assert_eq!(
            items(&o.ignored_workload_types),
            ["jobs", " cronjobs"],
            "not trimmed"
        );
        assert!(items(&o.namespaces).is_empty(), "an empty value: no items");
    }

    #[test]
    fn alert_on_reload_flag_is_a_go_boolean() {
        assert_eq!(parse(&[]).unwrap().operator.alert_on_reload, None);
        let on = parse(&["--alert-on-reload"]).unwrap().operator;
        assert_eq!(on.alert_on_reload, Some(true));
        let off = parse(&["--alert-on-reload=F"]).unwrap().operator;
        assert_eq!(off.alert_on_reload, Some(false));
        let err = parse(&["--alert-on-reload=yes"]).unwrap_err().to_string();
        assert!(err.contains("--alert-on-reload"), "{err}");
    }
}
