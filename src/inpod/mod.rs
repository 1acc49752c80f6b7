//! In-pod modes, for apps that hot-reload: write ConfigMaps and Secrets into a directory
//! straight from the API (no kubelet delay) and tell the app, or watch a mounted volume.
//! Subcommands `sidecar`, `init`, `run` and `watch-dir`, or the environment (`env.rs`).

pub mod args;
pub(crate) mod atomic;
pub(crate) mod collect;
pub(crate) mod debounce;
pub(crate) mod env;
pub(crate) mod files;
pub(crate) mod k8s_sidecar;
pub(crate) mod metrics;
pub(crate) mod objref;
pub(crate) mod procs;
pub(crate) mod reload;
pub(crate) mod reload_http;
pub(crate) mod server;
pub(crate) mod sidecar;
pub(crate) mod signal;
pub(crate) mod source;
pub(crate) mod spec;
pub(crate) mod start;
pub(crate) mod supervise;
pub(crate) mod watch_dir;
pub(crate) mod writer;

use std::{ffi::OsString, process::ExitCode, time::Duration};

use args::{Command, LogArgs};
use files::WriteError;
use spec::UsageError;
use writer::Missing;

use crate::shared::{kube::ClientError, signals::terminated};

/// How a mode failed: bad input (exit 2) or at run time (exit 1).
#[derive(Debug)]
pub enum Fail {
    Usage(UsageError),
    Run(RunError),
}

impl From<UsageError> for Fail {
    fn from(e: UsageError) -> Self {
        Fail::Usage(e)
    }
}

impl From<RunError> for Fail {
    fn from(e: RunError) -> Self {
        Fail::Run(e)
    }
}

/// Why a mode stopped at run time: no client, the config not had or not written, the app
/// or inotify failing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Every watch of the objects ended (it is the writer's input).
    #[error("every watch stopped")]
    WatchesStopped,
    /// Not every object was seen within `--wait`.
    #[error("timed out after {wait:?} waiting for {}", writer::list(.missing))]
    TimedOut {
        wait: Duration,
        missing: Vec<Missing>,
    },
    /// SIGTERM or SIGINT could not be caught.
    #[error(transparent)]
    Signals(std::io::Error),
    #[error("cannot start {program:?}: {source}")]
    Start {
        program: OsString,
        source: std::io::Error,
    },
    #[error("cannot wait for the app: {0}")]
    Wait(#[source] std::io::Error),
    #[error("inotify: {0}")]
    Inotify(#[source] std::io::Error),
    #[error("inotify stopped")]
    InotifyStopped,
    /// `collect --once`: not every list succeeded within `--wait`.
    #[error("timed out after {wait:?} listing {}", .pending.join(", "))]
    ListTimedOut {
        wait: Duration,
        pending: Vec<String>,
    },
}

fn log_args(cmd: &Command) -> &LogArgs {
    match cmd {
        Command::Sidecar(a) => &a.log,
        Command::Init(a) => &a.sidecar.log,
        Command::Run(a) => &a.log,
        Command::WatchDir(a) => &a.log,
        Command::Collect(a) => &a.log,
    }
}

/// Runs one in-pod mode to its end.
pub async fn main(cmd: Command) -> ExitCode {
    let log = log_args(&cmd);
    let started = crate::shared::telemetry::LogSettings::strict(&log.log_format, &log.log_level)
        .and_then(crate::shared::telemetry::init);
    if let Err(e) = started {
        eprintln!("kube-reloader: {e}");
        return ExitCode::from(2);
    }
    let outcome = match cmd {
        Command::Sidecar(a) => sidecar::sidecar(a).await.map(|()| 0),
        Command::Init(a) => sidecar::init(a).await.map(|()| 0),
        Command::Run(a) => supervise::run(a).await,
        Command::WatchDir(a) => watch_dir::watch_dir(a).await.map(|()| 0),
        Command::Collect(a) => collect::collect(a).await.map(|()| 0),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Fail::Usage(e)) => {
            tracing::error!("invalid option {e}");
            eprintln!("kube-reloader: invalid option {e}");
            ExitCode::from(2)
        }
        Err(Fail::Run(e)) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
