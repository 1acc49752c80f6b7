//! Outgoing notifications: `--webhook-url` (notify instead of reloading, stakater's body)
//! and alerts after a reload (stakater's ALERT_* settings: slack, teams, gchat or raw text).
//! Uses the HTTP client stack kube already brings (hyper + rustls), so no new TLS stack.
//! Redirects are not followed, as in stakater.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::json;

/// Where alerts go and how they look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertSink {
    Slack,
    Teams,
    GChat,
    Raw,
}

impl AlertSink {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "slack" => AlertSink::Slack,
            "teams" => AlertSink::Teams,
            "gchat" => AlertSink::GChat,
            _ => AlertSink::Raw,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AlertConfig {
    pub sink: AlertSink,
    pub url: String,
    pub additional_info: String,
}

/// Stakater's alert text; `*` marks bold in chat sinks.
pub fn alert_text(
    info: &str,
    config: &str,
    config_type: &str,
    ns: &str,
    workload: &str,
    kind: &str,
) -> String {
    let prefix = if info.is_empty() {
        String::new()
    } else {
        format!("{info} : ")
    };
    format!(
        "{prefix}Reloader detected changes in *{config}* of type *{config_type}* in namespace *{ns}*. Hence reloaded *{workload}* of type *{kind}* in namespace *{ns}*"
    )
}

/// The request body and content type for a sink.
pub fn alert_body(sink: &AlertSink, text: &str) -> (String, &'static str) {
    match sink {
        AlertSink::Slack => (
            json!({ "attachments": [{ "text": text, "color": "good", "author_name": "Reloader" }] })
                .to_string(),
            "application/json",
        ),
        AlertSink::Teams | AlertSink::GChat => (json!({ "text": text }).to_string(), "application/json"),
        AlertSink::Raw => (text.replace('*', ""), "text/plain"),
    }
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

#[derive(Clone)]
pub struct Notifier {
    client: HttpsClient,
}

impl Notifier {
    pub fn new() -> Result<Self, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load TLS roots for webhooks: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Notifier {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// POSTs `body`; any status but 2xx (redirects included) is an error.
    pub async fn post(&self, url: &str, body: String, content_type: &str) -> Result<(), String> {
        let req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| format!("POST {url}: timed out"))?
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("POST {url}: HTTP {status}"))
        }
    }

    /// `--webhook-url` mode: stakater's fixed body.
    pub async fn webhook(&self, url: &str) -> Result<(), String> {
        self.post(
            url,
            json!({ "webhook": "update successful" }).to_string(),
            "application/json",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stakater_alert_shapes() {
        let t = alert_text("prod", "cfg", "CONFIGMAP", "ns", "app", "Deployment");
        assert_eq!(
            t,
            "prod : Reloader detected changes in *cfg* of type *CONFIGMAP* in namespace *ns*. Hence reloaded *app* of type *Deployment* in namespace *ns*"
        );
        let (raw, ct) = alert_body(&AlertSink::Raw, &t);
        assert!(!raw.contains('*') && ct == "text/plain");
        let (slack, _) = alert_body(&AlertSink::Slack, "x");
        assert_eq!(
            slack,
            r#"{"attachments":[{"author_name":"Reloader","color":"good","text":"x"}]}"#
        );
        assert_eq!(alert_body(&AlertSink::Teams, "x").0, r#"{"text":"x"}"#);
        assert_eq!(AlertSink::parse("GCHAT"), AlertSink::GChat);
        assert_eq!(AlertSink::parse(""), AlertSink::Raw);
    }
}
