//! The HTTP server: `/live`, `/ready` (200 only once every cache has synced) and `/healthz`.
//! Nothing else is served here: no debug or profiling endpoints.

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio::sync::watch;

/// Stakater's `:9090` form is accepted: a bare `:PORT` listens on all interfaces.
pub fn bind_addr(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    }
}

async fn ready(State(ready): State<watch::Receiver<bool>>) -> (StatusCode, &'static str) {
    if *ready.borrow() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

pub async fn serve(addr: &str, ready_rx: watch::Receiver<bool>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/live", get(|| async { "alive" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(ready_rx);
    let listener = tokio::net::TcpListener::bind(bind_addr(addr)).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /live, /ready, /healthz");
    axum::serve(listener, app).await
}
