//! `--webhook-url` and alert sinks, against a local HTTP receiver.

mod support;

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use serde_json::json;
use support::{TestNs, WAIT, start_operator, wait_for};

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Serves POST /hook on a free loopback port; returns its base URL and what it received
/// as (content type, body).
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        seen.lock()
            .unwrap()
            .push((ct, String::from_utf8_lossy(&body).into_owned()));
        "ok"
    }
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
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
