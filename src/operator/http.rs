//! The HTTP server: `/metrics`, `/live` (and `/healthz`, the same: 503 naming why when the
//! engine has stalled or a watch has failed for long, see `health::check`) and `/ready`
//! (200 once every cache has synced or is refused by the API, which the body names; JSON
//! with each watch stream's state for `?format=json` or `Accept: application/json`).
//! Nothing else is served here: no debug or profiling endpoints.

use std::time::Instant;

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use tokio::sync::watch;

use crate::operator::{
    health::{Health, Readiness, StreamState, StreamView},
    metrics::Metrics,
};

#[derive(Clone)]
struct AppState {
    ready: watch::Receiver<Readiness>,
    health: Health,
    metrics: Metrics,
}

/// `/ready?format=json`'s body.
#[derive(Serialize)]
struct ReadyJson {
    ready: bool,
    /// The plain-text body.
    reason: String,
    streams: Vec<StreamJson>,
}

#[derive(Serialize)]
struct StreamJson {
    kind: &'static str,
    /// None: all namespaces.
    namespace: Option<String>,
    state: StreamState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// None until the stream has shown it works once.
    last_event_age_seconds: Option<f64>,
}

impl From<StreamView> for StreamJson {
    fn from(v: StreamView) -> Self {
        StreamJson {
            kind: v.kind,
            namespace: v.namespace,
            state: v.state,
            error: v.error,
            last_event_age_seconds: v.age.map(|d| d.as_secs_f64()),
        }
    }
}

fn wants_json(uri: &Uri, headers: &HeaderMap) -> bool {
    let query = uri.query().unwrap_or_default();
    let by_query = query.split('&').any(|kv| kv == "format=json");
    let by_accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    by_query || by_accept
}

async fn ready_handler(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let (ready, reason) = {
        let r = st.ready.borrow();
        (r.is_ready(), r.describe())
    };
    let code = match ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    if !wants_json(&uri, &headers) {
        return (code, reason).into_response();
    }
    let streams = st.health.streams.views(Instant::now());
    let body = ReadyJson {
        ready,
        reason,
        streams: streams.into_iter().map(StreamJson::from).collect(),
    };
    (code, axum::Json(body)).into_response()
}

async fn live_handler(State(st): State<AppState>) -> (StatusCode, String) {
    match st.health.live() {
        Ok(()) => (StatusCode::OK, "alive".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live: {why}")),
    }
}

async fn metrics_handler(State(st): State<AppState>) -> impl IntoResponse {
    // The ages are of now, not of the last change.
    let streams = st.health.streams.views(Instant::now());
    st.metrics.set_watch_ages(&streams);
    (
        [(header::CONTENT_TYPE, crate::shared::http::CONTENT_TYPE)],
        st.metrics.encode(),
    )
}

pub async fn serve(
    addr: &str,
    ready_rx: watch::Receiver<Readiness>,
    health: Health,
    m: Metrics,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(crate::shared::http::bind_addr(addr)).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /live, /ready, /healthz");
    serve_on(listener, ready_rx, health, m).await
}

pub async fn serve_on(
    listener: tokio::net::TcpListener,
    ready: watch::Receiver<Readiness>,
    health: Health,
    metrics: Metrics,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/live", get(live_handler))
        .route("/healthz", get(live_handler))
        .route("/ready", get(ready_handler))
        .with_state(AppState {
            ready,
            health,
            metrics,
        });
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_asked_by_query_or_accept() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let none = HeaderMap::new();
        assert!(wants_json(&uri("/ready?format=json"), &none));
        assert!(wants_json(&uri("/ready?x=1&format=json"), &none));
        assert!(!wants_json(&uri("/ready"), &none));
        assert!(!wants_json(&uri("/ready?format=text"), &none));
        let mut accept = HeaderMap::new();
        accept.insert(
            header::ACCEPT,
            "text/html, application/json;q=0.9".parse().unwrap(),
        );
        assert!(wants_json(&uri("/ready"), &accept));
    }
}
