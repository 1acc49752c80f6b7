//! `collect`: every ConfigMap/Secret carrying a label, in one or more namespaces (or all),
//! written into a folder as plain files, one per key, and removed when the object goes or
//! loses the label; the app is told after each change (a script, then the reload action).
//! This is kiwigrid k8s-sidecar's model, which the env mapping (`env.rs`) selects.

mod fsops;
mod place;
mod plan;
mod script;
mod settings;
mod source;
mod state;
mod sync;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{
    Fail, RunError,
    args::CollectArgs,
    debounce::{self, sleep_until},
    metrics::InPodMetrics,
    objref,
    reload::{Reloader, Retry},
    server, spec, start,
};
use source::Msg;
use state::State;
use sync::sync;

pub async fn collect(a: CollectArgs) -> Result<(), Fail> {
    for w in &a.env_warnings {
        tracing::warn!("{w}");
    }
    let s = settings::settings(&a, objref::default_namespace(None))?;
    let action = spec::action(&a.reload)?;
    let metrics = InPodMetrics::new("collect", a.looping.failure_threshold);
    if !a.once {
        match server::bind(&a.looping.http_addr).await {
            Ok(listener) => {
                tokio::spawn(server::serve(listener, metrics.clone()));
            }
            Err(e) if a.http_addr_taken_ok => {
                tracing::warn!(error = %e, "not serving /healthz, /ready and /metrics: the port is taken (another k8s-sidecar container of this pod?); give each its own HEALTH_PORT");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let client = crate::shared::kube::client()
        .await
        .map_err(RunError::from)?;
    let (tx, rx) = mpsc::channel(64);
    let modes = (a.file_mode, a.secret_file_mode);
    source::spawn(&client, &s.streams, &s.selector, modes, tx);
    let watches: Vec<String> = s.streams.iter().map(ToString::to_string).collect();
    tracing::info!(label = %s.selector, watches = ?watches, dir = %a.dir.display(), action = ?action, once = a.once, "collect started");
    let state = State::new(s.naming, watches);

    if a.once {
        return once(state, rx, a.wait).await;
    }
    let reloader = Reloader { action, metrics };
    keep_current(state, rx, &reloader, &a).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `--once`: waits for every watch's first list (up to `wait`), writes, and is done.
async fn once(mut state: State, mut rx: mpsc::Receiver<Msg>, wait: Duration) -> Result<(), Fail> {
    let deadline = tokio::time::Instant::now() + wait;
    while !state.complete() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => {
                state.apply(msg);
            }
            Ok(None) => return Err(RunError::WatchesStopped.into()),
            Err(_) => {
                let pending = state.pending();
                return Err(RunError::ListTimedOut { wait, pending }.into());
            }
        }
    }
    let (c, error) = sync(&mut state);
    tracing::info!(?c, "collected once");
    error.map_or(Ok(()), |e| Err(RunError::Write(e).into()))
}

/// Keeps the folders current and tells the app after each change, until SIGTERM: changes
/// are debounced, a failed write is retried with backoff, a failed reload too (unless a
/// newer change supersedes it).
async fn keep_current(
    mut state: State,
    mut rx: mpsc::Receiver<Msg>,
    reloader: &Reloader,
    a: &CollectArgs,
) -> Result<(), RunError> {
    let mut debounce = start::debounce(&a.looping);
    let mut stop = std::pin::pin!(super::terminated());
    let mut first = true;
    let mut retry: Retry = None;
    let mut write_failures = 0;
    loop {
        let (due, retry_at) = (debounce.due(), retry.map(|(at, _)| at));
        let reload_from = tokio::select! {
            () = &mut stop => break,
            msg = rx.recv() => {
                let changed = state.apply(msg.ok_or(RunError::WatchesStopped)?);
                if state.complete() && first {
                    debounce.force(Instant::now());
                } else if state.complete() && changed {
                    debounce.changed(Instant::now());
                }
                continue;
            }
            () = sleep_until(due) => {
                debounce.clear();
                let (c, error) = sync(&mut state);
                let reload = c.reload(first);
                first = false;
                if c.any() {
                    reloader.metrics.written();
                }
                reloader.metrics.set_ready();
                if error.is_some() {
                    // Counted with reload failures: the app is not getting its config.
                    reloader.metrics.reload_failed();
                    debounce.force(Instant::now() + debounce::retry_delay(write_failures));
                    write_failures += 1;
                } else {
                    write_failures = 0;
                }
                if !reload {
                    continue;
                }
                None
            }
            () = sleep_until(retry_at) => retry,
        };
        // A reload may spend its retries' time; stopping does not wait for it.
        let tell = async {
            if reload_from.is_none()
                && let Some(path) = &a.script
            {
                script::run(path).await;
            }
            reloader.attempt(reload_from).await
        };
        tokio::select! {
            () = &mut stop => break,
            r = tell => retry = r,
        }
    }
    Ok(())
}
