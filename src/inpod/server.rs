//! The in-pod HTTP server: `/metrics`, `/healthz` (503 once reloads keep failing, so a
//! liveness probe restarts the pod) and `/ready` (200 once the config is in place).

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use super::{metrics::InPodMetrics, spec::UsageError};

async fn healthz(State(m): State<InPodMetrics>) -> (StatusCode, String) {
    match m.health() {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(n) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the last {n} reloads failed"),
        ),
    }
}

async fn ready(State(m): State<InPodMetrics>) -> (StatusCode, &'static str) {
    if m.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "config not in place yet")
    }
}

async fn metrics(State(m): State<InPodMetrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::shared::http::CONTENT_TYPE)],
        m.encode(),
    )
}

/// Binds `addr` (`:PORT` means all interfaces); empty or `0` serves nothing.
pub async fn bind(addr: &str) -> Result<Option<tokio::net::TcpListener>, UsageError> {
    if addr.is_empty() || addr == "0" {
        return Ok(None);
    }
    let addr = crate::shared::http::bind_addr(addr);
    let l = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(source) => return Err(UsageError::HttpAddr { addr, source }),
    };
    tracing::info!(addr = %addr, "serving /metrics, /healthz, /ready");
    Ok(Some(l))
}

/// Serves until the process ends (or never, without a listener).
pub async fn serve(listener: Option<tokio::net::TcpListener>, m: InPodMetrics) {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/ready", get(ready))
        .with_state(m);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the HTTP server stopped");
    }
}
