//! Reload by an HTTP call (Prometheus' `/-/reload`, configmap-reload's webhook): a method,
//! the status that means success, a timeout per attempt and retries with exponential
//! backoff (the app may still be starting, or busy reloading).

use std::time::Duration;

use http::{Method, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::shared::backoff::backoff;

/// Plain HTTP needs no TLS roots (a distroless image may have none).
#[derive(Clone)]
enum Conn {
    Plain(Client<HttpConnector, Empty<Bytes>>),
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>),
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
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("--reload-http {url:?} is not a URL: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "--reload-http {url:?}: expected http://host[:port]/path or https://…"
            ));
        }
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("--reload-http-method {method:?} is not an HTTP method"))?;
        if let Some(s) = status
            && !(100..=599).contains(&s)
        {
            return Err(format!("--reload-http-status {s} is not an HTTP status"));
        }
        let builder = Client::builder(TokioExecutor::new());
        let client = if uri.scheme_str() == Some("https") {
            let tls = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| format!("--reload-http {url:?}: cannot load TLS roots: {e}"))?;
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
        })
    }

    async fn attempt(&self) -> Result<(), String> {
        let req = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let call = async {
            match &self.client {
                Conn::Plain(c) => c.request(req).await,
                Conn::Tls(c) => c.request(req).await,
            }
        };
        let resp = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("timed out after {:?}", self.timeout))?
            .map_err(|e| match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            })?;
        let status = resp.status();
        let _ = tokio::time::timeout(self.timeout, resp.into_body().collect()).await;
        let ok = match self.status {
            Some(want) => status.as_u16() == want,
            None => status.is_success(),
        };
        if ok {
            Ok(())
        } else {
            let want = self.status.map_or("2xx".to_owned(), |s| s.to_string());
            Err(format!("status {} (want {want})", status.as_u16()))
        }
    }

    /// Calls until success or the retries are spent; the error names the last failure.
    pub async fn reload(&self) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            match self.attempt().await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.retries => {
                    return Err(format!("{self:?}: {e} ({} attempts)", attempt + 1));
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

    fn new(url: &str, method: &str, status: Option<u16>) -> Result<HttpReload, String> {
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
        let e = new("localhost:9090", "POST", None).unwrap_err();
        assert!(e.contains("--reload-http"), "{e}");
        let e = new("ftp://x/", "POST", None).unwrap_err();
        assert!(e.contains("--reload-http"), "{e}");
        let e = new("http://x/", "PO ST", None).unwrap_err();
        assert!(e.contains("--reload-http-method"), "{e}");
        let e = new("http://x/", "POST", Some(42)).unwrap_err();
        assert!(e.contains("--reload-http-status"), "{e}");
        assert!(new("http://127.0.0.1:9090/-/reload", "put", Some(204)).is_ok());
    }

    #[test]
    fn credentials_never_show() {
        let r = new("http://user:pw@host:1/x?y", "POST", None).unwrap();
        assert_eq!(format!("{r:?}"), "POST http://***@host:1/x?y");
    }
}
