//! The HTTP server: `/metrics`, `/live`, `/ready` (200 once every cache has synced or is
//! refused by the API, which the body names) and `/healthz`. Nothing else is served here:
//! no debug or profiling endpoints.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::sync::watch;

use crate::operator::{health::Readiness, metrics::Metrics};

#[derive(Clone)]
struct AppState {
    ready: watch::Receiver<Readiness>,
    metrics: Metrics,
}

async fn ready_handler(State(st): State<AppState>) -> (StatusCode, String) {
    let r = st.ready.borrow();
    let code = match r.is_ready() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, r.describe())
}

async fn metrics_handler(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::shared::http::CONTENT_TYPE)],
        st.metrics.encode(),
    )
}

pub async fn serve(
    addr: &str,
    ready_rx: watch::Receiver<Readiness>,
    m: Metrics,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(crate::shared::http::bind_addr(addr)).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /live, /ready, /healthz");
    serve_on(listener, ready_rx, m).await
}

pub async fn serve_on(
    listener: tokio::net::TcpListener,
    ready: watch::Receiver<Readiness>,
    metrics: Metrics,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/live", get(|| async { "alive" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/ready", get(ready_handler))
        .with_state(AppState { ready, metrics });
    axum::serve(listener, app).await
}
