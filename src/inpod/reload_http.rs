//! Reload by an HTTP call (Prometheus' `/-/reload`, configmap-reload's webhook): a method,
//! the status that means success, a timeout per attempt and retries with exponential
//! backoff (the app may still be starting, or busy reloading).

use std::time::Duration;

use http::{Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::shared::backoff::backoff;

/// A `--reload-http*` setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HttpSettingsError {
    #[error("--reload-http {url:?} is not a URL: {source}")]
    NotUrl {
        url: String,
        source: http::uri::InvalidUri,
    },
    #[error("--reload-http {url:?}: expected http://host[:port]/path or https://…")]
    Scheme { url: String },
    #[error("--reload-http-method {method:?} is not an HTTP method")]
    Method { method: String },
    #[error("--reload-http-status {0} is not an HTTP status")]
    Status(u16),
    #[error("--reload-http {url:?}: cannot load TLS roots: {source}")]
    TlsRoots { url: String, source: std::io::Error },
}

/// Why one reload call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Request(#[from] http::Error),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// No answer: the connection failed (the client's error and its cause).
    #[error("{}", with_cause(.0))]
    Unreachable(hyper_util::client::legacy::Error),
    /// An answer, with a status other than the one that means success (`want`; `None`:
    /// any 2xx).
    #[error("status {} (want {})", .got.as_u16(), .want.map_or("2xx".to_owned(), |s| s.to_string()))]
    Status {
        got: http::StatusCode,
        want: Option<u16>,
    },
}

/// The client's error and its first cause: its own message alone says little.
fn with_cause(e: &hyper_util::client::legacy::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Every attempt of a reload call failed; `target` is the method and the URL without
/// user info, `last` the last attempt's failure.
#[derive(Debug, thiserror::Error)]
#[error("{target}: {last} ({attempts} attempts)")]
pub struct HttpError {
    pub target: String,
    pub attempts: u32,
    #[source]
    pub last: CallError,
}

/// Plain HTTP needs no TLS roots (a distroless image may have none).
#[derive(Clone)]
enum Conn {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
}

#[derive(Clone)]
pub struct HttpReload {
    uri: Uri,
    method: Method,
    /// `None`: any 2xx.
    status: Option<u16>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    client: Conn,
    /// A JSON body (`--reload-http-json`), sent as `application/json`.
    json: Option<Bytes>,
    /// The `Authorization` header of `--reload-http-username`/`-password`; never logged.
    auth: Option<http::HeaderValue>,
}

impl std::fmt::Debug for HttpReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, redacted(&self.uri))
    }
}

/// The URL without user info, for logs and errors.
fn redacted(uri: &Uri) -> String {
    match uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
        Some((_, host)) => format!(
            "{}://***@{host}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.path_and_query().map_or("", |p| p.as_str())
        ),
        None => uri.to_string(),
    }
}

impl HttpReload {
    pub fn new(
        url: &str,
        method: &str,
        status: Option<u16>,
        timeout: Duration,
        retries: u32,
        backoff: Duration,
    ) -> Result<Self, HttpSettingsError> {
        let uri: Uri = url.parse().map_err(|source| HttpSettingsError::NotUrl {
            url: crate::shared::http::without_user_info(url),
            source,
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(HttpSettingsError::Scheme {
                url: redacted(&uri),
            });
        }
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            HttpSettingsError::Method {
                method: method.to_owned(),
            }
        })?;
        if let Some(s) = status
            && !(100..=599).contains(&s)
        {
            return Err(HttpSettingsError::Status(s));
        }
        let builder = Client::builder(TokioExecutor::new());
        let client = if uri.scheme_str() == Some("https") {
            let tls = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|source| HttpSettingsError::TlsRoots {
                    url: redacted(&uri),
                    source,
                })?;
            Conn::Tls(builder.build(tls.https_only().enable_http1().build()))
        } else {
            Conn::Plain(builder.build(HttpConnector::new()))
        };
        Ok(HttpReload {
            uri,
            method,
            status,
            timeout,
            retries,
            backoff,
            client,
            json: None,
            auth: None,
        })
    }

    /// Sends `body` (JSON) with each call, as `Content-Type: application/json`.
    pub fn with_json(mut self, body: String) -> Self {
        self.json = Some(Bytes::from(body));
        self
    }

    /// Basic authentication (RFC 7617) with each call; the credentials as UTF-8.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = http::HeaderValue::try_from(format!("Basic {token}"))
            .expect("base64 is a valid header value");
        value.set_sensitive(true);
        self.auth = Some(value);
        self
    }

    async fn attempt(&self) -> Result<(), CallError> {
        let mut req = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        if let Some(auth) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, auth.clone());
        }
        let req = match &self.json {
            Some(body) => req
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))?,
            None => req.body(Full::default())?,
        };
        let call = async {
            match &self.client {
                Conn::Plain(c) => c.request(req).await,
                Conn::Tls(c) => c.request(req).await,
            }
        };
        let resp = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| CallError::TimedOut(self.timeout))?
            .map_err(CallError::Unreachable)?;
        let status = resp.status();
        let _ = tokio::time::timeout(self.timeout, resp.into_body().collect()).await;
        let ok = match self.status {
            Some(want) => status.as_u16() == want,
            None => status.is_success(),
        };
        if ok {
            Ok(())
        } else {
            Err(CallError::Status {
                got: status,
                want: self.status,
            })
        }
    }

    /// Calls until success or the retries are spent; the error names the last failure.
    pub async fn reload(&self) -> Result<(), HttpError> {
        let mut attempt = 0;
        loop {
            match self.attempt().await {
                Ok(()) => return Ok(()),
                Err(last) if attempt >= self.retries => {
                    return Err(HttpError {
                        target: format!("{self:?}"),
                        attempts: attempt + 1,
                        last,
                    });
                }
                Err(e) => {
                    let delay = backoff(self.backoff, attempt, Duration::from_secs(30));
                    tracing::warn!(target_url = ?self, error = %e, retry_in = ?delay, "reload call failed");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_never_show_a_password() {
        let bad = |url: &str| {
            let r = HttpReload::new(url, "POST", None, Duration::from_secs(1), 0, Duration::ZERO);
            r.map(|_| ()).expect_err("refused").to_string()
        };
        for url in ["ftp://user:s3cret@host/x", "http://user:s3cret@ho st/x"] {
            let e = bad(url);
            assert!(!e.contains("s3cret") && e.contains("***@"), "{e}");
        }
    }

    fn new(url: &str, method: &str, status: Option<u16>) -> Result<HttpReload, HttpSettingsError> {
        HttpReload::new(
            url,
            method,
            status,
            Duration::from_secs(1),
            0,
            Duration::ZERO,
        )
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let e = new("localhost:9090", "POST", None).unwrap_err().to_string();
        assert!(e.contains("--reload-http"), "{e}");
        let e = new("ftp://x/", "POST", None).unwrap_err().to_string();
        assert!(e.contains("--reload-http"), "{e}");
        let e = new("http://x/", "PO ST", None).unwrap_err().to_string();
        assert!(e.contains("--reload-http-method"), "{e}");
        let e = new("http://x/", "POST", Some(42)).unwrap_err().to_string();
        assert!(e.contains("--reload-http-status"), "{e}");
        assert!(matches!(
            new("http://x/", "POST", Some(42)),
            Err(HttpSettingsError::Status(42))
        ));
        assert!(new("http://127.0.0.1:9090/-/reload", "put", Some(204)).is_ok());
    }

    #[test]
    fn a_failed_call_names_the_status_wanted() {
        let e = HttpError {
            target: "POST http://x/".into(),
            attempts: 2,
            last: CallError::Status {
                got: http::StatusCode::INTERNAL_SERVER_ERROR,
                want: None,
            },
        };
        assert_eq!(
            e.to_string(),
            "POST http://x/: status 500 (want 2xx) (2 attempts)"
        );
    }

    #[test]
    fn credentials_never_show() {
        let r = new("http://user:pw@host:1/x?y", "POST", None).unwrap();
        assert_eq!(format!("{r:?}"), "POST http://***@host:1/x?y");
        let r = new("http://host:1/x", "POST", None)
            .unwrap()
            .with_basic_auth("admin", "s3cret");
        assert_eq!(format!("{r:?}"), "POST http://host:1/x");
        assert!(r.auth.as_ref().unwrap().is_sensitive());
    }
}
