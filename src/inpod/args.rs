//! The in-pod subcommands' flags. Validation that needs more than one flag, or the
//! environment, happens in `spec.rs`, so every error names the flag at fault.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Subcommand, ValueEnum};

use crate::shared::go::go_duration;

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Write ConfigMaps/Secrets into a directory and reload the app whenever they change.
    Sidecar(SidecarArgs),
    /// Write them once (waiting up to --wait for them to exist) and exit: an init container.
    Init(InitArgs),
    /// Write them, run CMD as a child, signal it on change; exit with its status.
    Run(RunArgs),
    /// Reload the app when a volume-mounted config directory changes (one reload per swap).
    WatchDir(WatchDirArgs),
    /// Write every ConfigMap/Secret carrying a label into a folder, one plain file per key,
    /// removed with the object (kiwigrid k8s-sidecar's model); reload on change.
    Collect(CollectArgs),
}

/// An octal file mode such as `0644` or `600`.
fn file_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.strip_prefix("0o").unwrap_or(s), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0644"))
}

/// Which objects go where.
#[derive(Debug, Clone, Args)]
pub struct ObjectArgs {
    /// A ConfigMap whose keys become files, `[NAMESPACE/]NAME` (repeatable).
    #[arg(long = "configmap", value_name = "[NS/]NAME")]
    pub configmaps: Vec<String>,

    /// A Secret whose keys become files (values decoded), `[NAMESPACE/]NAME` (repeatable).
    #[arg(long = "secret", value_name = "[NS/]NAME")]
    pub secrets: Vec<String>,

    /// Namespace of objects named without one (default: POD_NAMESPACE, then the pod's
    /// in-cluster namespace file).
    #[arg(long)]
    pub namespace: Option<String>,

    /// Directory the files are written to, as the kubelet does (timestamped folder and a
    /// `..data` symlink swap); best an emptyDir shared with the app.
    #[arg(long)]
    pub dir: PathBuf,

    /// Mode of files from ConfigMaps.
    #[arg(long, value_parser = file_mode, default_value = "0644")]
    pub file_mode: u32,

    /// Mode of files from Secrets (owner only: run the sidecar as the app's user).
    #[arg(long, value_parser = file_mode, default_value = "0600")]
    pub secret_file_mode: u32,
}

/// How the app is told. At most one of --reload-http, --process-name, --pid-file, --touch.
#[derive(Debug, Clone, Args)]
pub struct ReloadArgs {
    /// Call this URL to reload (e.g. http://127.0.0.1:9090/-/reload).
    #[arg(long, value_name = "URL")]
    pub reload_http: Option<String>,

    /// HTTP method of the reload call.
    #[arg(long, default_value = "POST")]
    pub reload_http_method: String,

    /// The status that means success (default: any 2xx).
    #[arg(long)]
    pub reload_http_status: Option<u16>,

    /// Timeout of one reload call.
    #[arg(long, value_parser = go_duration, default_value = "10s")]
    pub reload_http_timeout: Duration,

    /// Attempts after the first failed one, with exponential backoff.
    #[arg(long, default_value = "5")]
    pub reload_http_retries: u32,

    /// First delay between attempts; it doubles each time, up to 30s.
    #[arg(long, value_parser = go_duration, default_value = "500ms")]
    pub reload_http_backoff: Duration,

    /// A JSON body for the reload call, sent as `application/json`.
    #[arg(long, value_name = "JSON")]
    pub reload_http_json: Option<String>,

    /// Basic authentication for the reload call (with --reload-http-password).
    #[arg(long, value_name = "USER")]
    pub reload_http_username: Option<String>,

    /// Basic authentication's password (visible in the process list when given as a flag;
    /// the k8s-sidecar variable REQ_PASSWORD is not).
    #[arg(long, value_name = "PASSWORD")]
    pub reload_http_password: Option<String>,

    /// Signal to send with --process-name or --pid-file (HUP, SIGHUP or a number).
    #[arg(long, value_name = "SIG")]
    pub signal: Option<String>,

    /// Signal the process with this name (needs shareProcessNamespace: true).
    #[arg(long, value_name = "NAME")]
    pub process_name: Option<String>,

    /// Signal the process whose pid this file holds (needs shareProcessNamespace: true).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Create this file, or update its modification time, to reload.
    #[arg(long, value_name = "FILE")]
    pub touch: Option<PathBuf>,
}

/// Debounce, health and the HTTP server of the long-running modes.
#[derive(Debug, Clone, Args)]
pub struct LoopArgs {
    /// Changes within this window give one write and one reload (trailing debounce).
    #[arg(long, value_parser = go_duration, default_value = "1s")]
    pub debounce: Duration,

    /// Cap on the debounce from the first change, for configs that never settle.
    #[arg(long, value_parser = go_duration, default_value = "10s")]
    pub debounce_max_delay: Duration,

    /// /healthz fails once this many reloads in a row have failed (so the kubelet restarts
    /// the pod).
    #[arg(long, default_value = "3")]
    pub failure_threshold: u32,

    /// Address for /metrics, /healthz and /ready; empty or `0` serves nothing.
    #[arg(long, default_value = ":9091")]
    pub http_addr: String,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format: `json`, or empty/`text` for plain text.
    #[arg(long, default_value = "")]
    pub log_format: String,

    /// Log level: trace, debug, info, warn(ing), error.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Clone, Args)]
pub struct SidecarArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub looping: LoopArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The sidecar's flags (so one argument list serves both containers; reload and loop
/// flags are checked but unused) plus how long to wait.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub sidecar: SidecarArgs,

    /// How long to wait for every object to exist before failing.
    #[arg(long, value_parser = go_duration, default_value = "60s")]
    pub wait: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub objects: ObjectArgs,

    /// How long to wait for every object to exist before starting the app.
    #[arg(long, value_parser = go_duration, default_value = "60s")]
    pub wait: Duration,

    /// Signal sent to the app when its config changed.
    #[arg(long, value_name = "SIG", default_value = "HUP")]
    pub signal: String,

    #[command(flatten)]
    pub looping: LoopArgs,
    #[command(flatten)]
    pub log: LogArgs,

    /// The app and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Args)]
pub struct WatchDirArgs {
    /// A directory to watch, not recursively (repeatable, or a comma list).
    #[arg(long = "dir", required = true, value_delimiter = ',')]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub looping: LoopArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Which kinds `collect` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    Configmap,
    Secret,
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// The label selecting the objects: `KEY` (any value) or `KEY=VALUE`.
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub label: String,

    /// Namespaces to watch (repeatable, or a comma list; default: POD_NAMESPACE, then the
    /// pod's in-cluster namespace file).
    #[arg(
        long = "namespace",
        value_delimiter = ',',
        conflicts_with = "all_namespaces"
    )]
    pub namespaces: Vec<String>,

    /// Watch every namespace (needs a ClusterRole).
    #[arg(long)]
    pub all_namespaces: bool,

    /// Which kinds to collect.
    #[arg(long, value_enum, default_value = "configmap")]
    pub resource: Resource,

    /// The folder files are written to, one plain file per key.
    #[arg(long)]
    pub dir: PathBuf,

    /// An object's annotation naming another folder for its files (absolute, or relative
    /// to --dir).
    #[arg(long, default_value = "k8s-sidecar-target-directory")]
    pub folder_annotation: String,

    /// Name files `namespace_NS.KIND_NAME.KEY`, so equal keys of different objects do not
    /// collide.
    #[arg(long)]
    pub unique_filenames: bool,

    /// Mode of files from ConfigMaps.
    #[arg(long, value_parser = file_mode, default_value = "0644")]
    pub file_mode: u32,

    /// Mode of files from Secrets.
    #[arg(long, value_parser = file_mode, default_value = "0600")]
    pub secret_file_mode: u32,

    /// Write what is there once and exit (an init container).
    #[arg(long)]
    pub once: bool,

    /// With --once: how long to wait for every list to succeed before failing.
    #[arg(long, value_parser = go_duration, default_value = "60s")]
    pub wait: Duration,

    /// A program run after each change, before the reload (a file without the execute bit
    /// is run by `sh`, which the image lacks).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,

    /// Notes from the environment mapping (`env.rs`), logged at start.
    #[arg(long = "env-warning", hide = true)]
    pub env_warnings: Vec<String>,

    /// A taken --http-addr serves nothing (with a warning) rather than failing: k8s-sidecar
    /// containers of one pod all default to port 8080, and only the first gets it.
    #[arg(long, hide = true)]
    pub http_addr_taken_ok: bool,

    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub looping: LoopArgs,
    #[command(flatten)]
    pub log: LogArgs,
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
    fn subcommands_parse() {
        let cli = parse(&[
            "sidecar",
            "--configmap=a",
            "--secret=ns/b",
            "--configmap=c",
            "--dir=/cfg",
            "--file-mode=0640",
            "--reload-http=http://127.0.0.1:9090/-/reload",
        ])
        .unwrap();
        let Some(crate::cli::Command::InPod(Command::Sidecar(s))) = cli.command else {
            panic!("not sidecar")
        };
        assert_eq!(s.objects.configmaps, ["a", "c"]);
        assert_eq!(s.objects.secrets, ["ns/b"]);
        assert_eq!(s.objects.file_mode, 0o640);
        assert_eq!(s.objects.secret_file_mode, 0o600);
        assert_eq!(s.looping.http_addr, ":9091");

        let cli = parse(&["run", "--configmap=a", "--dir=/d", "--", "nginx", "-g", "x"]).unwrap();
        let Some(crate::cli::Command::InPod(Command::Run(r))) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.command, ["nginx", "-g", "x"]);
        assert_eq!(r.signal, "HUP");

        let cli = parse(&["watch-dir", "--dir=/a,/b", "--dir=/c", "--touch=/t"]).unwrap();
        let Some(crate::cli::Command::InPod(Command::WatchDir(w))) = cli.command else {
            panic!("not watch-dir")
        };
        assert_eq!(w.dirs.len(), 3);

        let cli = parse(&["init", "--secret=s", "--dir=/d", "--wait=5s"]).unwrap();
        let Some(crate::cli::Command::InPod(Command::Init(i))) = cli.command else {
            panic!("not init")
        };
        assert_eq!(i.wait, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["sidecar", "--configmap=a", "--dir=/d", "--file-mode=0999"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--file-mode") && err.contains("octal"),
            "{err}"
        );
        let err = parse(&["run", "--configmap=a", "--dir=/d"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CMD"), "{err}");
    }
}
