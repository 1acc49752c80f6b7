//! `run -- CMD ARGS`: writes the config, then starts the app as a child (so it starts with
//! its config in place), signals it on change, forwards SIGTERM and SIGINT, and exits with
//! its status (128 + the signal's number when a signal ended it, as a shell reports).

use std::{os::unix::process::ExitStatusExt, process::ExitStatus};

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    Fail, RunError,
    args::RunArgs,
    reload::{Action, Reloader},
    signal::{self as sig, Target},
    spec::UsageError,
    start,
};

/// The shell's convention for a child's status.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => (c & 0xff) as u8,
        (None, Some(s)) => (128 + s) as u8,
        (None, None) => 1,
    }
}

pub async fn run(a: RunArgs) -> Result<u8, Fail> {
    // Installed first: a SIGTERM from now on is ours to forward, not a silent death.
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let refs = start::objects(&a.objects)?;
    let reload_sig = sig::parse(&a.signal).map_err(UsageError::from)?;
    let metrics = start::serve_metrics("run", &a.looping).await?;
    let mut writer = start::writer(&a.objects, refs, metrics.clone()).await?;
    tokio::select! {
        r = writer.wait_complete(a.wait) => r?,
        _ = term.recv() => return Ok(128 + Signal::SIGTERM as u8),
        _ = int.recv() => return Ok(128 + Signal::SIGINT as u8),
    }
    writer.write_now().map_err(RunError::from)?;

    let (program, args) = a.command.split_first().expect("clap requires CMD");
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .spawn()
        .map_err(|source| RunError::Start {
            program: program.clone(),
            source,
        })?;
    let pid = child.id().map_or(0, |p| p as i32);
    tracing::info!(pid, command = ?program, "app started");
    let forward = |s: Signal| {
        tracing::info!(signal = %s, pid, "forwarding to the app");
        if let Err(e) = sig::send(&Target::Pid(pid), s) {
            tracing::warn!(error = %e, "cannot forward");
        }
    };
    let exited = async {
        loop {
            tokio::select! {
                status = child.wait() => return status,
                _ = term.recv() => forward(Signal::SIGTERM),
                _ = int.recv() => forward(Signal::SIGINT),
            }
        }
    };
    let reloader = Reloader {
        action: Action::Signal(Target::Pid(pid), reload_sig),
        metrics,
    };
    let mut debounce = start::debounce(&a.looping);
    // Bound first, so the future borrowing `child` is gone before the arms use it.
    let outcome = writer.run_until(&reloader, &mut debounce, exited).await;
    match outcome {
        Ok(Ok(status)) => {
            tracing::info!(%status, "app exited");
            Ok(exit_code(status))
        }
        Ok(Err(e)) => Err(RunError::Wait(e).into()),
        Err(e) => {
            // The config can no longer be kept current: stop the app rather than let it
            // run on stale config unsupervised.
            forward(Signal::SIGTERM);
            let _ = child.wait().await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(
            exit_code(ExitStatus::from_raw(15)),
            143,
            "killed by SIGTERM"
        );
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137, "killed by SIGKILL");
    }
}
