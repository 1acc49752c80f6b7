//! The operator: watches (`watch`) reduce objects into the caches (`cache`); for a changed
//! config the engine asks `decide` which workloads reload, holds them in the coalescing
//! window (`coalesce`), and `apply` writes them; `state` persists what is done. This file
//! wires them: client, watches, engine and HTTP server, run until SIGTERM or SIGINT.

pub mod apply;
pub mod args;
pub(crate) mod cache;
pub(crate) mod coalesce;
pub(crate) mod decide;
pub(crate) mod engine;
pub mod explain;
pub mod health;
pub mod http;
pub(crate) mod lease;
pub mod metrics;
pub mod model;
pub(crate) mod notify;
pub mod options;
pub mod state;
pub(crate) mod timing;
pub mod watch;

use std::sync::Arc;

use kube::Client;
use tokio::sync::{mpsc, watch as cell};

use crate::shared::{kube::pod_namespace, signals::terminated};

use self::{
    apply::Applier,
    engine::{Engine, Persist},
    health::{Health, Readiness, tapped},
    metrics::{Metrics, RestMetrics},
    options::Options,
    state::configmaps::{StateStore, load_state},
};

/// Runs the operator with `client` until `shutdown` completes (then writes in flight are
/// let finish). `ready` turns warm once every cache has synced (or is refused); `health`
/// records the watches and the engine's turns for `/live`.
pub async fn run(
    client: Client,
    opts: Options,
    ready: cell::Sender<Readiness>,
    health: Health,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    report_warnings(&opts, &metrics);
    let opts = Arc::new(opts);
    let mut shutdown = std::pin::pin!(shutdown);
    let state_namespace = opts.state_namespace.clone();
    let persist = match state_namespace.clone() {
        Some(ns) => {
            let store = StateStore::new(client.clone(), ns);
            if opts.lease.is_some() {
                Some(Persist::unread(store))
            } else {
                tokio::select! {
                    loaded = load_state(&store) => Some(Persist::new(store, loaded)),
                    () = &mut shutdown => return,
                }
            }
        }
        None => {
            tracing::warn!(
                "no POD_NAMESPACE, in-cluster namespace or --state-namespace: state is not persisted, so changes made while the operator is down are not caught up"
            );
            None
        }
    };
    let (tx, rx) = mpsc::channel(1024);
    let sink = watch::Sink {
        tx,
        metrics: metrics.clone(),
        health: health.streams.clone(),
    };
    // The watches' own client, tapped: the wire shows what kube's watcher does not.
    let watch_client = tapped(client.clone(), health.streams.clone());
    let scopes = watch::spawn_all(&watch_client, &opts, sink).await;
    let applier = Applier::new(
        client.clone(),
        opts.clone(),
        metrics.clone(),
        state_namespace.as_deref(),
    );
    // Without --enable-ha this replica always leads; the sender lives as long as `run`.
    let (leader_tx, leader_rx) = cell::channel(opts.lease.is_none());
    let (stop_lease, lease_stopped) = cell::channel(false);
    let lease_task = opts.lease.clone().map(|cfg| {
        tracing::info!(lease = %cfg.name, namespace = %cfg.namespace, identity = %cfg.identity, "leader election on");
        let leader_tx = leader_tx.clone();
        tokio::spawn(lease::run(client, cfg, leader_tx, stopped(lease_stopped)))
    });
    let (stop_engine, engine_stopped) = cell::channel(false);
    let engine = Engine::new(opts, scopes, applier, ready, metrics, persist, leader_rx);
    let mut engine = std::pin::pin!(engine.run(rx, stopped(engine_stopped), health.turns));
    tokio::select! {
        () = &mut engine => tracing::error!("the engine stopped"),
        () = &mut shutdown => {
            tracing::info!("shutting down");
            stop_engine.send_replace(true);
            engine.await;
        }
    }
    // Only now, with writes drained and the state flushed, is the lease given up.
    stop_lease.send_replace(true);
    if let Some(task) = lease_task {
        let _ = task.await;
    }
    drop(leader_tx);
    tracing::info!("stopped");
}

/// Logs and counts, once, each value set aside as stakater sets it aside.
fn report_warnings(opts: &Options, metrics: &Metrics) {
    for w in &opts.warnings {
        tracing::warn!(flag = w.flag, "{w}");
        metrics.config_warning(w.flag);
    }
}

async fn stopped(mut rx: cell::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Why the operator stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] crate::shared::kube::ClientError),
    #[error("HTTP server on {addr} stopped: {why}")]
    Http { addr: String, why: String },
}

/// The binary's entry: options, client, HTTP server and the operator.
pub async fn main(mut opts: Options) -> Result<(), Error> {
    // Where the state lives: POD_NAMESPACE, then the in-cluster namespace file, then
    // --state-namespace. The only environment read below `main.rs`.
    opts.state_namespace = pod_namespace().or(opts.state_namespace.take());
    let metrics = Metrics::new(opts.metrics_by_namespace);
    let client = observed_client(&metrics.rest).await?;
    let (ready_tx, ready_rx) = cell::channel(Readiness::default());
    let health = Health::new(opts.liveness);
    let addr = opts.http_addr.clone();
    let m = metrics.clone();
    let server = tokio::spawn({
        let (addr, health) = (addr.clone(), health.clone());
        async move { http::serve(&addr, ready_rx, health, m).await }
    });
    tokio::select! {
        () = run(client, opts, ready_tx, health, metrics, terminated()) => Ok(()),
        r = server => {
            let why = match r {
                Ok(Ok(())) => "it returned".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            Err(Error::Http { addr, why })
        }
    }
}

/// The operator's client: every request counted in `rest_client_*`.
async fn observed_client(rest: &RestMetrics) -> Result<Client, crate::shared::kube::ClientError> {
    let config = kube::Config::infer().await?;
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&rest.layer(host)).build())
}
