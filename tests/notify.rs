//! `--webhook-url` and alert sinks, against a local HTTP receiver.

mod support;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    routing::post,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use serde_json::json;
use support::{TestNs, WAIT, start_operator, wait_for};

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Serves POST /hook on a free loopback port; returns its base URL and what it received
/// as (content type, body).
async fn receiver() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    (url, serve_hook(listener, StatusCode::OK))
}

/// Records each POST /hook on `listener` and answers `status`.
fn serve_hook(listener: tokio::net::TcpListener, status: StatusCode) -> Seen {
    let seen: Seen = Arc::default();
    let hook = move |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        seen.lock()
            .unwrap()
            .push((ct, String::from_utf8_lossy(&body).into_owned()));
        status
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    seen
}

/// One request as an HTTP proxy saw it.
#[derive(Clone, Debug)]
struct ProxyHit {
    method: Method,
    /// The request target: absolute-form for a forwarded request, host:port for CONNECT.
    target: Uri,
    headers: HeaderMap,
    body: String,
}

type ProxyHits = Arc<Mutex<Vec<ProxyHit>>>;

/// A stand-in HTTP proxy on a free loopback port: it records every request and answers
/// 200, except CONNECT, which it refuses with 403 (nothing is ever tunnelled). Returns its
/// `host:port`.
async fn proxy() -> (String, ProxyHits) {
    let hits: ProxyHits = Arc::default();
    async fn record(
        State(hits): State<ProxyHits>,
        method: Method,
        target: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let refuse = method == Method::CONNECT;
        hits.lock().unwrap().push(ProxyHit {
            method,
            target,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if refuse {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        }
    }
    let app = Router::new().fallback(record).with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

async fn proxy_hit(hits: &ProxyHits, what: &str) -> ProxyHit {
    wait_for(what, WAIT, || async {
        hits.lock().unwrap().first().cloned().ok_or("nothing yet")
    })
    .await
}

fn header<'a>(h: &'a ProxyHit, name: &str) -> Option<&'a str> {
    h.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Waits until the receiver has something and returns all it got.
async fn received(seen: &Seen, what: &str) -> Vec<(String, String)> {
    wait_for(what, WAIT, || async {
        let v = seen.lock().unwrap().clone();
        if v.is_empty() {
            Err("nothing received")
        } else {
            Ok(v)
        }
    })
    .await
}

async fn setup(ns: &TestNs) {
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "cfg" }, "data": { "k": "1" } }))
        .await;
    ns.create::<Deployment>(json!({
        "metadata": { "name": "app", "annotations": { "reloader.stakater.com/auto": "true" } },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": "app" } },
            "template": { "metadata": { "labels": { "app": "app" } }, "spec": { "containers": [
                { "name": "app", "image": "x", "envFrom": [{ "configMapRef": { "name": "cfg" } }] }
            ]}}
        }
    }))
    .await;
}

fn has_marker(d: &Deployment) -> bool {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .any(|e| e.name == "STAKATER_CFG_CONFIGMAP")
}

#[tokio::test]
async fn webhook_mode_notifies_and_reloads_nothing() {
    let ns = TestNs::new("webhook").await;
    setup(&ns).await;
    let (url, seen) = receiver().await;
    let _op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;
    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    let got = received(&seen, "the webhook call").await;
    assert_eq!(got[0].0, "application/json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[0].1).unwrap(),
        json!({ "webhook": "update successful" })
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        !has_marker(&ns.get::<Deployment>("app").await),
        "webhook mode never writes"
    );
}

/// Waits until the receiver has exactly `n` POSTs, then makes sure no more follow.
async fn exactly(seen: &Seen, n: usize, what: &str) {
    wait_for(what, WAIT, || async {
        let got = seen.lock().unwrap().len();
        if got >= n { Ok(()) } else { Err(got) }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(seen.lock().unwrap().len(), n, "{what}: no more afterwards");
}

/// Stakater's contract: one POST per change of a config's data, before any workload is
/// matched (so for a config no workload uses, and for an ignored one), none for a change
/// of metadata only, and the answer's status is not looked at (an error is not retried).
#[tokio::test]
async fn webhook_mode_posts_once_per_change_of_any_config() {
    let ns = TestNs::new("webhook-count").await;
    setup(&ns).await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "unused" }, "data": { "k": "1" } }))
        .await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "ignored", "annotations": { "reloader.stakater.com/ignore": "true" } },
        "data": { "k": "1" }
    }))
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = serve_hook(listener, StatusCode::INTERNAL_SERVER_ERROR);
    let op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;

    for (name, value) in [
        ("cfg", "2"),
        ("unused", "2"),
        ("ignored", "2"),
        ("cfg", "3"),
    ] {
        ns.merge_patch::<ConfigMap>(name, json!({ "data": { "k": value } }))
            .await;
    }
    ns.merge_patch::<ConfigMap>("cfg", json!({ "metadata": { "labels": { "x": "y" } } }))
        .await;
    exactly(&seen, 4, "four changes, four POSTs").await;
    assert!(!has_marker(&ns.get::<Deployment>("app").await));
    let executed = op.metric("reloader_reload_executed_total{success=\"true\"}");
    assert_eq!(executed.await, Some(0.0), "no reload happened");
}

/// A POST that cannot reach the receiver is retried until it does, and sent once then.
#[tokio::test]
async fn an_unreachable_webhook_is_retried_until_delivered() {
    let ns = TestNs::new("webhook-retry").await;
    setup(&ns).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;
    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    wait_for("a failed attempt", WAIT, || async {
        match op
            .metric("kube_reloader_errors_total{kind=\"webhook\"}")
            .await
        {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let seen = serve_hook(listener, StatusCode::OK);
    exactly(&seen, 1, "delivered once the receiver is up").await;
}

#[tokio::test]
async fn slack_alert_after_a_reload() {
    let ns = TestNs::new("alert").await;
    setup(&ns).await;
    let (url, seen) = receiver().await;
    let args = [
        "--alert-on-reload=true".to_string(),
        "--alert-sink=slack".to_string(),
        format!("--alert-webhook-url={url}"),
        "--alert-additional-info=test-cluster".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    let got = received(&seen, "the alert").await;
    assert!(
        has_marker(&ns.get::<Deployment>("app").await),
        "reloaded before alerting"
    );
    let body: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    let text = format!(
        "test-cluster : Reloader detected changes in *cfg* of type *CONFIGMAP* in namespace *{ns}*. Hence reloaded *app* of type *Deployment* in namespace *{ns}*",
        ns = ns.name
    );
    assert_eq!(
        body,
        json!({ "attachments": [{ "text": text, "color": "good", "author_name": "Reloader" }] })
    );
}

/// Alert flags sending `sink` alerts for `url` through the proxy at `proxy_url`.
fn alert_args(sink: &str, url: &str, proxy_url: &str) -> Vec<String> {
    vec![
        "--alert-on-reload=true".into(),
        format!("--alert-sink={sink}"),
        format!("--alert-webhook-url={url}"),
        format!("--alert-webhook-proxy={proxy_url}"),
    ]
}

#[tokio::test]
async fn http_alert_goes_to_the_proxy_in_absolute_form() {
    let ns = TestNs::new("alert-proxy").await;
    setup(&ns).await;
    let (addr, hits) = proxy().await;
    // The alert's host does not resolve: only the proxy can deliver it.
    let args = alert_args(
        "raw",
        "http://alerts.invalid/hook",
        &format!("http://reloader:s%3Dcret@{addr}"),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    let hit = proxy_hit(&hits, "the alert at the proxy").await;
    assert_eq!(hit.method, Method::POST);
    assert_eq!(
        hit.target.to_string(),
        "http://alerts.invalid/hook",
        "absolute-form request target"
    );
    assert_eq!(header(&hit, "host"), Some("alerts.invalid"));
    assert_eq!(
        header(&hit, "proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0"),
        "reloader:s=cret from the proxy URL"
    );
    assert_eq!(header(&hit, "content-type"), Some("text/plain"));
    assert_eq!(
        hit.body,
        format!(
            "Reloader detected changes in cfg of type CONFIGMAP in namespace {ns}. Hence reloaded app of type Deployment in namespace {ns}",
            ns = ns.name
        )
    );
}

#[tokio::test]
async fn https_alert_asks_the_proxy_for_a_connect_tunnel() {
    let ns = TestNs::new("alert-tunnel").await;
    setup(&ns).await;
    let (addr, hits) = proxy().await;
    let args = alert_args(
        "slack",
        "https://alerts.invalid:8443/hook",
        &format!("http://reloader:s%3Dcret@{addr}"),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.merge_patch::<ConfigMap>("cfg", json!({ "data": { "k": "2" } }))
        .await;
    let hit = proxy_hit(&hits, "the CONNECT at the proxy").await;
    assert_eq!(hit.method, Method::CONNECT);
    assert_eq!(hit.target.to_string(), "alerts.invalid:8443");
    assert_eq!(
        header(&hit, "proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0")
    );
    // Refused, so nothing went in clear: no second request, and never the alert body.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let all = hits.lock().unwrap().clone();
    assert!(
        all.iter()
            .all(|h| h.method == Method::CONNECT && h.body.is_empty()),
        "{all:?}"
    );
}

#[tokio::test]
async fn a_bad_alert_webhook_proxy_env_stops_the_binary_naming_the_flag() {
    // The real binary, with stakater's env var in the child's environment only; a
    // kubeconfig that does not exist makes a binary that got past its options exit too.
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-reloader"))
        .env("ALERT_WEBHOOK_PROXY", "socks5://proxy:1080")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .arg("--http-addr=127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, child)
        .await
        .expect("the binary exits")
        .expect("run kube-reloader");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--alert-webhook-proxy") && stderr.contains("only http://"),
        "{stderr}"
    );
}
