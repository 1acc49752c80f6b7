//! The operator run inside the test process (`start_operator` and its variants), scoped
//! as a test needs, with its HTTP server on a free port; stopped when dropped.

use clap::Parser;
use kube::Client;
use kube_reloader::{
    cli::Cli,
    operator::{
        health::{Health, Readiness},
        http,
        metrics::Metrics,
        options::Options,
    },
};

use super::{
    http::{http_get, sample},
    ns::TestNs,
    wait::WAIT,
};

/// Runs the operator in this process, scoped to the test namespace, until dropped. Its
/// HTTP server (`/metrics`, `/ready` …) listens on `addr`.
pub struct Operator {
    handle: tokio::task::JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub addr: std::net::SocketAddr,
}

impl Operator {
    /// Sends the shutdown signal (as SIGTERM does) and waits for the operator to stop.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.handle).await.expect("operator task");
    }

    /// GETs a path of the operator's HTTP server; returns the status code and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// One sample of its `/metrics` (name and labels as exposed).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (code, body) = self.http_get("/metrics").await;
        assert_eq!(code, 200, "/metrics: {body}");
        sample(&body, series)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub async fn start_operator(ns: &TestNs, extra: &[&str]) -> Operator {
    let scope = format!("--namespaces={}", ns.name);
    let args: Vec<&str> = std::iter::once(scope.as_str())
        .chain(extra.iter().copied())
        .collect();
    run_operator(&ns.client, &args).await
}

/// The operator in the test process with `client`'s identity and exactly `args`.
pub async fn start_operator_as(client: &Client, args: &[&str]) -> Operator {
    run_operator(client, args).await
}

/// The operator watching every namespace (for options that apply only in global mode).
pub async fn start_global_operator(ns: &TestNs, extra: &[&str]) -> Operator {
    run_operator(&ns.client, extra).await
}

async fn run_operator(client: &Client, extra: &[&str]) -> Operator {
    let args = ["kube-reloader", "--http-addr=127.0.0.1:0"];
    let cli = Cli::try_parse_from(args.iter().chain(extra)).expect("valid flags");
    let opts = Options::from_args(&cli.operator).expect("valid options");
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(Readiness::default());
    let metrics = Metrics::new(opts.metrics_by_namespace);
    let health = Health::new(opts.liveness);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = http::serve_on(listener, ready_rx.clone(), health.clone(), metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let operator =
        kube_reloader::operator::run(client.clone(), opts, ready_tx, health, metrics, stop);
    let handle = tokio::spawn(async move {
        tokio::select! {
            () = operator => {}
            r = server => panic!("HTTP server stopped: {r:?}"),
        }
    });
    tokio::time::timeout(WAIT, ready_rx.wait_for(|r| r.warm))
        .await
        .expect("operator ready within 30s")
        .expect("operator running");
    Operator {
        handle,
        shutdown: Some(stop_tx),
        addr,
    }
}
