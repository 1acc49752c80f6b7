//! Wiring: client, watches, engine and HTTP server, run until SIGTERM or SIGINT.

use std::sync::Arc;

use kube::Client;
use tokio::sync::{mpsc, watch};

use crate::{apply::Applier, engine::Engine, http, metrics::Metrics, options::Options};

/// Runs the operator with `client` until `shutdown` completes (then writes in flight are
/// let finish). `ready` turns true once every cache has synced.
pub async fn run(
    client: Client,
    opts: Options,
    ready: watch::Sender<bool>,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let opts = Arc::new(opts);
    let (tx, rx) = mpsc::channel(1024);
    let scopes = crate::watch::spawn_all(&client, &opts, tx).await;
    let applier = Applier::new(client, opts.clone());
    let engine = Engine::new(opts, scopes, applier, ready, metrics);
    engine.run(rx, shutdown).await;
    tracing::info!("stopped");
}

/// The binary's entry: options, client, HTTP server and the operator.
pub async fn main(opts: Options) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot build a Kubernetes client: {e}"))?;
    let (ready_tx, ready_rx) = watch::channel(false);
    let metrics = Metrics::new(opts.metrics_by_namespace);
    let addr = opts.http_addr.clone();
    let m = metrics.clone();
    let server = tokio::spawn(async move { http::serve(&addr, ready_rx, m).await });
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    tokio::select! {
        () = run(client, opts, ready_tx, metrics, shutdown) => Ok(()),
        r = server => Err(format!("HTTP server stopped: {r:?}")),
    }
}
