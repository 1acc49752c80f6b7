//! client-go's `rest_client_requests_total{code,method,host}` and
//! `rest_client_request_duration_seconds{verb,host}` for the operator's API client: a
//! tower layer around kube's client stack, counting each request when its response head
//! arrives (for a watch, when it starts), or with code `<error>` when none does.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    method: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: String,
    host: String,
}

fn duration_buckets() -> Histogram {
    Histogram::new([0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0])
}

/// The two series, shared by every client built with [`RestMetrics::layer`].
#[derive(Clone)]
pub struct RestMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<VerbLabels, Histogram, fn() -> Histogram>,
}

impl RestMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = RestMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
        };
        r.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            m.requests.clone(),
        );
        r.register(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb and host.",
            m.duration.clone(),
        );
        m
    }

    /// The layer for a client of the API server at `host` (`host:port`, as client-go
    /// labels it: the requests themselves carry only a path at this point of the stack).
    pub fn layer(&self, host: String) -> RestLayer {
        RestLayer {
            metrics: self.clone(),
            host,
        }
    }

    fn record(&self, method: &str, host: &str, code: String, seconds: f64) {
        let labels = RequestLabels {
            code,
            method: method.to_owned(),
            host: host.to_owned(),
        };
        self.requests.get_or_create(&labels).inc();
        let labels = VerbLabels {
            verb: method.to_owned(),
            host: host.to_owned(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
    }
}

#[derive(Clone)]
pub struct RestLayer {
    metrics: RestMetrics,
    host: String,
}

impl<S> Layer<S> for RestLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    layer: RestLayer,
}

impl<S, B, R> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().as_str().to_owned();
        let layer = self.layer.clone();
        let started = Instant::now();
        let response = self.inner.call(req);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(r) => r.status().as_str().to_owned(),
                Err(_) => "<error>".to_owned(),
            };
            let seconds = started.elapsed().as_secs_f64();
            layer.metrics.record(&method, &layer.host, code, seconds);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[tokio::test]
    async fn each_request_is_counted_by_code_method_and_host() {
        let mut r = Registry::default();
        let m = RestMetrics::register(&mut r);
        let inner = tower::service_fn(|req: Request<()>| async move {
            let status = if req.method() == http::Method::PATCH {
                409
            } else {
                200
            };
            Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap())
        });
        let mut svc = m.layer("10.96.0.1:443".into()).layer(inner);
        for method in ["GET", "GET", "PATCH"] {
            let req = Request::builder()
                .method(method)
                .uri("/api")
                .body(())
                .unwrap();
            svc.call(req).await.unwrap();
        }
        let text = crate::shared::http::encode_registry(&r);
        let get = r#"rest_client_requests_total{code="200",method="GET",host="10.96.0.1:443"} 2"#;
        let patch =
            r#"rest_client_requests_total{code="409",method="PATCH",host="10.96.0.1:443"} 1"#;
        assert!(text.contains(get) && text.contains(patch), "{text}");
        let count =
            r#"rest_client_request_duration_seconds_count{verb="PATCH",host="10.96.0.1:443"} 1"#;
        assert!(text.contains(count), "{text}");
    }
}
