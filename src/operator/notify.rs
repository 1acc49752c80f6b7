//! Outgoing notifications: `--webhook-url` (notify instead of reloading, stakater's body)
//! and alerts after a reload (stakater's ALERT_* settings: slack, teams, gchat or raw text).
//! Uses the HTTP client stack kube already brings (hyper + rustls), so no new TLS stack.
//! Redirects are not followed, as in stakater. Alerts, and only alerts, may go through a
//! proxy (ALERT_WEBHOOK_PROXY), as Go's `http.ProxyURL` would take them: through an HTTP
//! or HTTPS proxy, absolute-form requests for `http://` targets and a CONNECT tunnel for
//! `https://` ones; through a SOCKS5 proxy, a tunnel for both.

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
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{
            Connect, Connected, Connection, HttpConnector,
            proxy::{SocksV5, Tunnel},
        },
    },
    rt::{TokioExecutor, TokioIo},
};
use serde_json::json;

use crate::shared::http::without_user_info;

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
    /// ALERT_WEBHOOK_PROXY: send alerts through this proxy.
    pub proxy: Option<Proxy>,
}

/// The proxy schemes Go's HTTP client supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProxyScheme {
    Http,
    Https,
    Socks5,
}

/// A proxy URL, `http://`, `https://` or `socks5://[user:password@]host[:port]` (ports 80,
/// 443 and 1080 by default; `socks5h://` is `socks5://`, names being resolved by the proxy
/// either way). Percent-encoded user info becomes a `Proxy-Authorization: Basic` header for
/// HTTP(S) proxies and SOCKS5 username/password authentication, as in Go.
#[derive(Clone)]
pub struct Proxy {
    scheme: ProxyScheme,
    /// Where to connect: `http://host:port` for plain TCP, `https://host:port` for TLS.
    dial: Uri,
    /// The decoded user name and password.
    user: Option<(String, String)>,
}

/// Without the password.
impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("scheme", &self.scheme)
            .field("dial", &self.dial)
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .finish()
    }
}

const PROXY_FORMS: &str = "expected http://, https:// or socks5://host:port";

/// A proxy URL we cannot use; `url` has any password hidden.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{url:?} is not a URL ({why}); {PROXY_FORMS}")]
    NotUrl { url: String, why: String },
    #[error("{url:?}: unsupported proxy scheme; {PROXY_FORMS}")]
    Scheme { url: String },
    #[error("{url:?} has no host; {PROXY_FORMS}")]
    NoHost { url: String },
    #[error("{url:?} has an invalid port; {PROXY_FORMS}")]
    Port { url: String },
    #[error("{url:?}: the user info is not UTF-8")]
    UserInfo { url: String },
    #[error("{url:?}: {why}")]
    Dial { url: String, why: String },
}

impl Proxy {
    /// Errors show the URL with any password hidden.
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        let shown = || without_user_info(url);
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ProxyError::NotUrl {
                url: shown(),
                why: e.to_string(),
            })?;
        let (scheme, default_port) = match uri.scheme_str().map(str::to_ascii_lowercase) {
            Some(p) if p == "http" => (ProxyScheme::Http, 80),
            Some(p) if p == "https" => (ProxyScheme::Https, 443),
            Some(p) if p == "socks5" || p == "socks5h" => (ProxyScheme::Socks5, 1080),
            _ => return Err(ProxyError::Scheme { url: shown() }),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| ProxyError::NoHost { url: shown() })?;
        let (user_info, host_port) = match authority.as_str().rsplit_once('@') {
            Some((user_info, host_port)) => (Some(user_info), host_port),
            None => (None, authority.as_str()),
        };
        // Go reads an empty port (`host:`) as the default one.
        let port = match host_port.strip_prefix(authority.host()) {
            Some("" | ":") => default_port,
            _ => authority
                .port_u16()
                .ok_or_else(|| ProxyError::Port { url: shown() })?,
        };
        let user = user_info
            .map(|u| decode_user_info(u).ok_or_else(|| ProxyError::UserInfo { url: shown() }))
            .transpose()?;
        let tls = if scheme == ProxyScheme::Https {
            "https"
        } else {
            "http"
        };
        let dial = format!("{tls}://{}:{port}", authority.host())
            .parse()
            .map_err(|e: http::uri::InvalidUri| ProxyError::Dial {
                url: shown(),
                why: e.to_string(),
            })?;
        Ok(Proxy { scheme, dial, user })
    }

    /// `Basic base64(user:password)`, as Go sends it to an HTTP(S) proxy.
    fn basic_auth(&self) -> Option<HeaderValue> {
        let (user, password) = self.user.as_ref()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::try_from(format!("Basic {token}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// `user[:password]`, each part percent-decoded (Go's `url.User`).
fn decode_user_info(user_info: &str) -> Option<(String, String)> {
    let decode = |p: &str| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    Some((decode(user)?, decode(password)?))
}

/// Plain TCP to an `http://` URI, TLS to an `https://` one: how we reach a proxy.
type ToProxy = HttpsConnector<HttpConnector>;
type ProxyStream = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// Connects through the proxy. The tunnels (CONNECT, SOCKS5) carry the destination's
/// bytes, so the outer `HttpsConnector` sets up TLS inside them for `https://` targets; an
/// `http://` target behind an HTTP(S) proxy gets a connection to the proxy instead, marked
/// as proxied so the client writes absolute-form request lines (`POST http://host/path`).
#[derive(Clone)]
enum ProxyConnector {
    Http {
        dial: Uri,
        to_proxy: ToProxy,
        tunnel: Tunnel<ToProxy>,
    },
    Socks(SocksV5<ToProxy>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ProxyConnector {
    fn new(p: &Proxy) -> Result<Self, PostError> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        let to_proxy = tls()?.https_or_http().enable_http1().wrap_connector(tcp);
        Ok(match p.scheme {
            ProxyScheme::Http | ProxyScheme::Https => {
                let mut tunnel = Tunnel::new(p.dial.clone(), to_proxy.clone());
                if let Some(auth) = p.basic_auth() {
                    tunnel = tunnel.with_auth(auth);
                }
                ProxyConnector::Http {
                    dial: p.dial.clone(),
                    to_proxy,
                    tunnel,
                }
            }
            ProxyScheme::Socks5 => {
                let mut socks = SocksV5::new(p.dial.clone(), to_proxy);
                if let Some((user, password)) = &p.user {
                    socks = socks.with_auth(user.clone(), password.clone());
                }
                ProxyConnector::Socks(socks)
            }
        })
    }
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ViaProxy;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ViaProxy, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            ProxyConnector::Http {
                to_proxy, tunnel, ..
            } => match to_proxy.poll_ready(cx) {
                Poll::Ready(Ok(())) => tunnel.poll_ready(cx).map_err(Into::into),
                other => other,
            },
            ProxyConnector::Socks(socks) => socks.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // The tunnels take a missing port for 443.
        let dst = with_port(dst);
        let https = dst.scheme() == Some(&Scheme::HTTPS);
        match self {
            ProxyConnector::Http { tunnel, .. } if https => {
                let tunnel = tunnel.call(dst);
                Box::pin(async move { Ok(ViaProxy::tunnel(tunnel.await?)) })
            }
            ProxyConnector::Http { dial, to_proxy, .. } => {
                let connect = to_proxy.call(dial.clone());
                Box::pin(async move {
                    let io = connect.await?;
                    Ok(ViaProxy { io, forward: true })
                })
            }
            ProxyConnector::Socks(socks) => {
                let tunnel = socks.call(dst);
                Box::pin(async move { Ok(ViaProxy::tunnel(tunnel.await?)) })
            }
        }
    }
}

/// `dst` with its scheme's default port written out.
fn with_port(dst: Uri) -> Uri {
    let (Some(host), None) = (dst.host(), dst.port()) else {
        return dst;
    };
    let port = if dst.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let mut parts = dst.clone().into_parts();
    match format!("{host}:{port}").parse() {
        Ok(authority) => {
            parts.authority = Some(authority);
            Uri::from_parts(parts).unwrap_or(dst)
        }
        Err(_) => dst,
    }
}

/// A connection made by `ProxyConnector`; `forward` marks one that talks HTTP to the proxy.
struct ViaProxy {
    io: ProxyStream,
    forward: bool,
}

impl ViaProxy {
    fn tunnel(io: ProxyStream) -> Self {
        ViaProxy { io, forward: false }
    }
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

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type ProxiedClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

#[derive(Clone)]
pub struct Notifier {
    client: HttpsClient,
    /// Alerts' route when ALERT_WEBHOOK_PROXY is set.
    alert_proxy: Option<ProxyRoute>,
}

#[derive(Clone)]
struct ProxyRoute {
    client: ProxiedClient,
    /// `Proxy-Authorization` for requests forwarded by an HTTP(S) proxy.
    auth: Option<HeaderValue>,
}

fn tls()
-> Result<hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>, PostError>
{
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| PostError::TlsRoots(e.to_string()))
}

/// Why a POST of ours could not be made, did not reach its receiver, or was refused.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PostError {
    #[error("cannot load TLS roots for webhooks: {0}")]
    TlsRoots(String),
    #[error("invalid URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("POST {url}: timed out")]
    TimedOut { url: String },
    #[error("POST {url}: {why}")]
    Unreachable { url: String, why: String },
    /// It reached the receiver, which answered with something other than 2xx.
    #[error("POST {url}: HTTP {status}")]
    Status {
        url: String,
        status: http::StatusCode,
    },
    #[error("no webhook or alert configured")]
    NotConfigured,
}

impl Notifier {
    pub fn new(alert_proxy: Option<&Proxy>) -> Result<Self, PostError> {
        let connector = tls()?.https_or_http().enable_http1().build();
        let alert_proxy = match alert_proxy {
            None => None,
            Some(p) => {
                let via = ProxyConnector::new(p)?;
                let connector = tls()?.https_or_http().enable_http1().wrap_connector(via);
                Some(ProxyRoute {
                    client: Client::builder(TokioExecutor::new()).build(connector),
                    auth: (p.scheme != ProxyScheme::Socks5)
                        .then(|| p.basic_auth())
                        .flatten(),
                })
            }
        };
        Ok(Notifier {
            client: Client::builder(TokioExecutor::new()).build(connector),
            alert_proxy,
        })
    }

    /// POSTs `body` directly; any status but 2xx (redirects included) is an error.
    pub async fn post(&self, url: &str, body: String, content_type: &str) -> Result<(), PostError> {
        let req = request(url, body, content_type)?;
        send(&self.client, req, url).await
    }

    /// POSTs an alert, through the alert proxy when one is set.
    pub async fn alert(
        &self,
        url: &str,
        body: String,
        content_type: &str,
    ) -> Result<(), PostError> {
        let Some(route) = &self.alert_proxy else {
            return self.post(url, body, content_type).await;
        };
        let mut req = request(url, body, content_type)?;
        // A tunnelled (https) request carries the credentials in its CONNECT only; a SOCKS5
        // route has no header to set.
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
    pub async fn webhook(&self, url: &str) -> Result<(), PostError> {
        let body = json!({ "webhook": "update successful" }).to_string();
        match self.post(url, body, "application/json").await {
            Err(e @ PostError::Status { .. }) => {
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
) -> Result<http::Request<Full<Bytes>>, PostError> {
    http::Request::post(url)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PostError::Url {
            url: url.into(),
            why: e.to_string(),
        })
}

/// One POST, with a 10 s timeout.
async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    url: &str,
) -> Result<(), PostError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let url = url.to_owned();
    let resp = match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Err(_) => return Err(PostError::TimedOut { url }),
        Ok(Err(e)) => {
            let why = with_causes(&e);
            return Err(PostError::Unreachable { url, why });
        }
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    match status.is_success() {
        true => Ok(()),
        false => Err(PostError::Status { url, status }),
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
    fn proxy_urls_as_go_reads_them() {
        let p = Proxy::parse("http://squid.infra:3128").unwrap();
        assert_eq!(p.scheme, ProxyScheme::Http);
        assert_eq!(p.dial, "http://squid.infra:3128");
        assert_eq!(p.basic_auth(), None);
        let default_port = |url: &str| Proxy::parse(url).unwrap().dial.to_string();
        assert_eq!(default_port("http://10.0.0.1"), "http://10.0.0.1:80/");
        assert_eq!(default_port("http://10.0.0.1:"), "http://10.0.0.1:80/");
        assert_eq!(
            default_port("HTTPS://squid"),
            "https://squid:443/",
            "TLS to it"
        );
        assert_eq!(default_port("socks5://[::1]"), "http://[::1]:1080/");
        assert_eq!(default_port("socks5h://socks:1081"), "http://socks:1081/");
    }

    #[test]
    fn proxy_credentials() {
        let p = Proxy::parse("https://user:p%40ss@squid:8080/").unwrap();
        assert_eq!(
            p.dial, "https://squid:8080",
            "no user info towards the proxy"
        );
        assert_eq!(p.basic_auth().unwrap(), "Basic dXNlcjpwQHNz", "user:p@ss");
        let p = Proxy::parse("http://user@squid").unwrap();
        assert_eq!(
            p.basic_auth().unwrap(),
            "Basic dXNlcjo=",
            "user: with an empty password, as Go"
        );
        let p = Proxy::parse("socks5://us%3Aer:s%3Dcret@socks").unwrap();
        assert_eq!(p.user, Some(("us:er".into(), "s=cret".into())));
        let shown = format!("{p:?}");
        assert!(
            shown.contains("us:er") && !shown.contains("cret"),
            "{shown}"
        );
    }

    #[test]
    fn unusable_proxy_urls() {
        for bad in [
            "squid:3128",
            "ftp://squid:21",
            "socks4://squid:1080",
            "http://",
            "http://squid:port",
            "not a url",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad} accepted");
        }
        let e = Proxy::parse("ftp://user:secret@squid").unwrap_err();
        assert!(matches!(e, ProxyError::Scheme { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("ftp://***@squid") && !e.contains("secret"),
            "{e}"
        );
        assert!(e.contains("socks5://"), "names what works: {e}");
    }

    #[test]
    fn tunnels_get_the_default_port_written_out() {
        let port = |u: &str| with_port(u.parse().unwrap()).to_string();
        assert_eq!(
            port("http://alerts.invalid/hook"),
            "http://alerts.invalid:80/hook"
        );
        assert_eq!(
            port("https://alerts.invalid/x?y"),
            "https://alerts.invalid:443/x?y"
        );
        assert_eq!(port("https://h:8443/"), "https://h:8443/");
    }
}
