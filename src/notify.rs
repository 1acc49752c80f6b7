//! Outgoing notifications: `--webhook-url` (notify instead of reloading, stakater's body)
//! and alerts after a reload (stakater's ALERT_* settings: slack, teams, gchat or raw text).
//! Uses the HTTP client stack kube already brings (hyper + rustls), so no new TLS stack.
//! Redirects are not followed, as in stakater. Alerts, and only alerts, may go through an
//! HTTP proxy (ALERT_WEBHOOK_PROXY): absolute-form requests for `http://` targets, a
//! CONNECT tunnel for `https://` ones.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use http::{HeaderValue, Uri, uri::Scheme};
use http_body_util::{BodyExt, Full};
use hyper::{
    body::Bytes,
    rt::{Read, ReadBufCursor, Write},
};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connect, Connected, Connection, HttpConnector, proxy::Tunnel},
    },
    rt::TokioExecutor,
};
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
    /// ALERT_WEBHOOK_PROXY: send alerts through this HTTP proxy.
    pub proxy: Option<Proxy>,
}

/// An HTTP forward proxy, `http://[user:password@]host[:port]` (port 80 by default); the
/// user info becomes a `Proxy-Authorization: Basic` header, as Go's `http.ProxyURL` does.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// `http://host:port`, without the user info.
    uri: Uri,
    auth: Option<HeaderValue>,
}

impl Proxy {
    /// Errors show the URL with any password hidden.
    pub fn parse(url: &str) -> Result<Self, String> {
        let s = &redacted(url);
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{s:?} is not a URL ({e}); expected http://host:port"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!(
                "{s:?}: only http:// proxies are supported (expected http://host:port)"
            ));
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| format!("{s:?} has no host; expected http://host:port"))?;
        let (user_info, host_port) = match authority.as_str().rsplit_once('@') {
            Some((user_info, host_port)) => (Some(user_info), host_port),
            None => (None, authority.as_str()),
        };
        let port = match host_port.strip_prefix(authority.host()) {
            Some("") => 80,
            _ => authority
                .port_u16()
                .ok_or_else(|| format!("{s:?} has an invalid port; expected http://host:port"))?,
        };
        let auth = match user_info {
            None => None,
            Some(user_info) => {
                let decoded = percent_encoding::percent_decode_str(user_info)
                    .decode_utf8()
                    .map_err(|_| format!("{s:?}: the user info is not UTF-8"))?;
                let token = base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes());
                let mut value = HeaderValue::try_from(format!("Basic {token}"))
                    .map_err(|e| format!("{s:?}: {e}"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let host = authority.host();
        let uri = format!("http://{host}:{port}")
            .parse()
            .map_err(|e| format!("{s:?}: {e}"))?;
        Ok(Proxy { uri, auth })
    }
}

/// `url` with its user info, if any, replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

/// Connects through the proxy: an `https://` destination gets a CONNECT tunnel (TLS is
/// then set up inside it by the outer `HttpsConnector`); any other destination gets a
/// plain connection to the proxy, marked as proxied so the client writes absolute-form
/// request lines (`POST http://host/path HTTP/1.1`).
#[derive(Clone)]
struct ProxyConnector {
    proxy: Uri,
    http: HttpConnector,
    tunnel: Tunnel<HttpConnector>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ViaProxy;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ViaProxy, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self.http.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.tunnel.poll_ready(cx).map_err(Into::into),
            other => other.map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let tunnel = self.tunnel.call(dst);
            Box::pin(async move {
                let io = tunnel.await?;
                Ok(ViaProxy { io, forward: false })
            })
        } else {
            let connect = self.http.call(self.proxy.clone());
            Box::pin(async move {
                let io = connect.await?;
                Ok(ViaProxy { io, forward: true })
            })
        }
    }
}

/// A connection made by `ProxyConnector`; `forward` marks one that talks HTTP to the proxy.
struct ViaProxy {
    io: <HttpConnector as tower_service::Service<Uri>>::Response,
    forward: bool,
}

impl Connection for ViaProxy {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forward)
    }
}

impl Read for ViaProxy {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for ViaProxy {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
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

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
type ProxiedClient = Client<hyper_rustls::HttpsConnector<ProxyConnector>, Full<Bytes>>;

#[derive(Clone)]
pub struct Notifier {
    client: HttpsClient,
    /// Alerts' route when ALERT_WEBHOOK_PROXY is set.
    alert_proxy: Option<ProxyRoute>,
}

#[derive(Clone)]
struct ProxyRoute {
    client: ProxiedClient,
    /// `Proxy-Authorization` for the proxy, from its URL's user info.
    auth: Option<HeaderValue>,
}

fn tls()
-> Result<hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>, String> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("cannot load TLS roots for webhooks: {e}"))
}

impl Notifier {
    pub fn new(alert_proxy: Option<&Proxy>) -> Result<Self, String> {
        let connector = tls()?.https_or_http().enable_http1().build();
        let alert_proxy = match alert_proxy {
            None => None,
            Some(p) => {
                let mut tunnel = Tunnel::new(p.uri.clone(), HttpConnector::new());
                if let Some(auth) = &p.auth {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let via = ProxyConnector {
                    proxy: p.uri.clone(),
                    http: HttpConnector::new(),
                    tunnel,
                };
                let connector = tls()?.https_or_http().enable_http1().wrap_connector(via);
                Some(ProxyRoute {
                    client: Client::builder(TokioExecutor::new()).build(connector),
                    auth: p.auth.clone(),
                })
            }
        };
        Ok(Notifier {
            client: Client::builder(TokioExecutor::new()).build(connector),
            alert_proxy,
        })
    }

    /// POSTs `body` directly; any status but 2xx (redirects included) is an error.
    pub async fn post(&self, url: &str, body: String, content_type: &str) -> Result<(), String> {
        let req = request(url, body, content_type)?;
        send(&self.client, req, url).await
    }

    /// POSTs an alert, through the alert proxy when one is set.
    pub async fn alert(&self, url: &str, body: String, content_type: &str) -> Result<(), String> {
        let Some(route) = &self.alert_proxy else {
            return self.post(url, body, content_type).await;
        };
        let mut req = request(url, body, content_type)?;
        // A tunnelled (https) request carries the credentials in its CONNECT only.
        if req.uri().scheme() != Some(&Scheme::HTTPS)
            && let Some(auth) = &route.auth
        {
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        send(&route.client, req, url).await
    }

    /// `--webhook-url` mode: stakater's fixed body. Only a POST that does not reach the
    /// receiver is an error: stakater never looks at the status.
    pub async fn webhook(&self, url: &str) -> Result<(), String> {
        let body = json!({ "webhook": "update successful" }).to_string();
        match self.post(url, body, "application/json").await {
            Err(e) if e.starts_with(&format!("POST {url}: HTTP ")) => {
                tracing::warn!(error = %e, "the webhook receiver answered with an error; not retried (as stakater)");
                Ok(())
            }
            other => other,
        }
    }
}

fn request(
    url: &str,
    body: String,
    content_type: &str,
) -> Result<http::Request<Full<Bytes>>, String> {
    http::Request::post(url)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("invalid URL {url:?}: {e}"))
}

async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    url: &str,
) -> Result<(), String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| format!("POST {url}: timed out"))?
        .map_err(|e| format!("POST {url}: {}", with_causes(&e)))?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: HTTP {status}"))
    }
}

/// An error and its sources, `a: b: c` (the client's own message alone says little).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
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

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://squid.infra:3128").unwrap();
        assert_eq!(
            (p.uri.to_string().as_str(), p.auth),
            ("http://squid.infra:3128/", None)
        );
        assert_eq!(
            Proxy::parse("http://10.0.0.1").unwrap().uri,
            "http://10.0.0.1:80"
        );
        let p = Proxy::parse("http://user:p%40ss@squid:8080/").unwrap();
        assert_eq!(p.uri, "http://squid:8080", "no user info towards the proxy");
        assert_eq!(p.auth.unwrap(), "Basic dXNlcjpwQHNz", "user:p@ss");
        for bad in [
            "squid:3128",
            "https://squid:3128",
            "socks5://squid:1080",
            "http://",
            "http://squid:port",
            "http://squid:",
            "not a url",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad} accepted");
        }
        let e = Proxy::parse("https://user:secret@squid").unwrap_err();
        assert!(
            e.contains("https://***@squid") && !e.contains("secret"),
            "{e}"
        );
        assert!(
            Proxy::parse("https://squid")
                .unwrap_err()
                .contains("only http://")
        );
    }
}
