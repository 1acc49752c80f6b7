//! `--webhook-url` and alert sinks, against local receivers, and alerts through HTTP,
//! HTTPS and SOCKS5 proxies written here.

mod support;

use std::sync::{Arc, Mutex};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use serde_json::json;
use support::{
    Binary, Receiver, Requests, TestNs, WAIT, auto_using, first_request, free_addr, has_env,
    read_request, start_operator, wait_for,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stand-in HTTP proxy on a free loopback port: it records every request and answers
/// 200, except CONNECT, which it refuses with 403 (nothing is ever tunnelled). Its
/// `host:port` is its `addr`.
async fn proxy() -> Receiver {
    Receiver::answering(|r| if r.method() == "CONNECT" { 403 } else { 200 }).await
}

/// ConfigMap `cfg` and the auto Deployment `app` using it.
async fn setup(ns: &TestNs) {
    ns.create_cm("cfg", "1").await;
    ns.create::<Deployment>(auto_using("app", &["cfg"])).await;
}

fn has_marker(d: &Deployment) -> bool {
    has_env(d, "STAKATER_CFG_CONFIGMAP")
}

#[tokio::test]
async fn webhook_mode_notifies_and_reloads_nothing() {
    let ns = TestNs::new("webhook").await;
    setup(&ns).await;
    let seen = Receiver::start(&[200]).await;
    let url = seen.url("/hook");
    let _op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;
    ns.set_cm("cfg", "2").await;
    let got = seen.received("the webhook call").await;
    assert_eq!(got[0].call(), "POST /hook");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[0].body).unwrap(),
        json!({ "webhook": "update successful" })
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        !has_marker(&ns.get::<Deployment>("app").await),
        "webhook mode never writes"
    );
}

/// Waits until the receiver has exactly `n` POSTs to /hook, then makes sure no more follow.
async fn exactly(seen: &Receiver, n: usize, what: &str) {
    wait_for(what, WAIT, || async {
        let got = seen.count();
        if got >= n { Ok(()) } else { Err(got) }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let calls = seen.calls();
    assert_eq!(calls, vec!["POST /hook"; n], "{what}: no more afterwards");
}

/// Stakater's contract: one POST per change of a config's data, before any workload is
/// matched (so for a config no workload uses, and for an ignored one), none for a change
/// of metadata only, and the answer's status is not looked at (an error is not retried).
#[tokio::test]
async fn webhook_mode_posts_once_per_change_of_any_config() {
    let ns = TestNs::new("webhook-count").await;
    setup(&ns).await;
    ns.create_cm("unused", "1").await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "ignored", "annotations": { "reloader.stakater.com/ignore": "true" } },
        "data": { "k": "1" }
    }))
    .await;
    let seen = Receiver::start(&[500]).await;
    let url = seen.url("/hook");
    let op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;

    for (name, value) in [
        ("cfg", "2"),
        ("unused", "2"),
        ("ignored", "2"),
        ("cfg", "3"),
    ] {
        ns.set_cm(name, value).await;
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
    let port = free_addr().port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let op = start_operator(&ns, &[&format!("--webhook-url={url}")]).await;
    ns.set_cm("cfg", "2").await;
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
    let seen = Receiver::on(listener, &[200]);
    exactly(&seen, 1, "delivered once the receiver is up").await;
}

#[tokio::test]
async fn slack_alert_after_a_reload() {
    let ns = TestNs::new("alert").await;
    setup(&ns).await;
    let seen = Receiver::start(&[200]).await;
    let url = seen.url("/hook");
    let args = [
        "--alert-on-reload=true".to_string(),
        "--alert-sink=slack".to_string(),
        format!("--alert-webhook-url={url}"),
        "--alert-additional-info=test-cluster".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.set_cm("cfg", "2").await;
    let got = seen.received("the alert").await;
    assert_eq!(got[0].call(), "POST /hook");
    assert!(
        has_marker(&ns.get::<Deployment>("app").await),
        "reloaded before alerting"
    );
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
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
    let hits = proxy().await;
    // The alert's host does not resolve: only the proxy can deliver it.
    let args = alert_args(
        "raw",
        "http://alerts.invalid/hook",
        &format!("http://reloader:s%3Dcret@{}", hits.addr),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.set_cm("cfg", "2").await;
    let hit = hits.first("the alert at the proxy").await;
    assert_eq!(hit.method(), "POST");
    assert_eq!(
        hit.target(),
        "http://alerts.invalid/hook",
        "absolute-form request target"
    );
    assert_eq!(hit.header("host"), Some("alerts.invalid"));
    assert_eq!(
        hit.header("proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0"),
        "reloader:s=cret from the proxy URL"
    );
    assert_eq!(hit.header("content-type"), Some("text/plain"));
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
    let hits = proxy().await;
    let args = alert_args(
        "slack",
        "https://alerts.invalid:8443/hook",
        &format!("http://reloader:s%3Dcret@{}", hits.addr),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator(&ns, &args).await;
    ns.set_cm("cfg", "2").await;
    let hit = hits.first("the CONNECT at the proxy").await;
    assert_eq!(hit.method(), "CONNECT");
    assert_eq!(hit.target(), "alerts.invalid:8443");
    assert_eq!(
        hit.header("proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0")
    );
    // Refused, so nothing went in clear: no second request, and never the alert body.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let all = hits.all();
    assert!(
        all.iter()
            .all(|h| h.method() == "CONNECT" && h.body.is_empty()),
        "{all:?}"
    );
}

/// The plane's CA and its API server's key pair (valid for `localhost` and `127.0.0.1`),
/// which the tests' TLS servers present; the binary trusts the CA through SSL_CERT_FILE,
/// as Go's client (stakater's) would.
fn pki(file: &str) -> String {
    support::repo_root()
        .join(".cache/cluster/pki")
        .join(file)
        .display()
        .to_string()
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    };
    support::control_plane();
    let certs = CertificateDer::pem_file_iter(pki("apiserver.crt"))
        .expect("read the serving certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("a PEM certificate");
    let key = PrivateKeyDer::from_pem_file(pki("apiserver.key")).expect("a PEM key");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a server config");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// An HTTPS server on 127.0.0.1 that records every request. It answers 200, and a
/// CONNECT is also the start of a tunnel to the `host:port` it names: so it serves as an
/// HTTPS proxy and as an HTTPS receiver. Returns its port.
async fn tls_server() -> (u16, Requests) {
    let acceptor = tls_acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Requests = Arc::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), recorded.clone());
            tokio::spawn(async move {
                let mut tls = acceptor.accept(tcp).await?;
                while let Some(req) = read_request(&mut tls).await {
                    seen.lock().unwrap().push(req.clone());
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    tls.write_all(ok.as_bytes()).await?;
                    if let Some(target) = req.line().strip_prefix("CONNECT ") {
                        let target = target.split(' ').next().unwrap_or_default();
                        let mut to = tokio::net::TcpStream::connect(target).await?;
                        tokio::io::copy_bidirectional(&mut tls, &mut to).await?;
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (port, seen)
}

/// What a SOCKS5 proxy was asked: the credentials and the destination, as sent.
type SocksAsks = Arc<Mutex<Vec<(String, String)>>>;

/// A SOCKS5 proxy on 127.0.0.1 that takes username/password authentication and tunnels
/// every connection to `to`, whatever destination was asked (recorded, with the
/// credentials). Returns its address.
async fn socks5_proxy(to: std::net::SocketAddr) -> (String, SocksAsks) {
    async fn handshake(c: &mut tokio::net::TcpStream) -> std::io::Result<(String, String)> {
        let field = async |c: &mut tokio::net::TcpStream| {
            let mut b = vec![0; usize::from(c.read_u8().await?)];
            c.read_exact(&mut b).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&b).into_owned())
        };
        let mut greeting = [0; 2];
        c.read_exact(&mut greeting).await?;
        let mut methods = vec![0; usize::from(greeting[1])];
        c.read_exact(&mut methods).await?;
        assert!(
            methods.contains(&2),
            "offers username/password: {methods:?}"
        );
        c.write_all(&[5, 2]).await?;
        assert_eq!(c.read_u8().await?, 1, "auth version");
        let credentials = format!("{}:{}", field(c).await?, field(c).await?);
        c.write_all(&[1, 0]).await?;
        let mut request = [0; 4];
        c.read_exact(&mut request).await?;
        assert_eq!(request[..3], [5, 1, 0], "CONNECT");
        assert_eq!(request[3], 3, "a domain name, for the proxy to resolve");
        let host = field(c).await?;
        let port = c.read_u16().await?;
        c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        Ok((credentials, format!("{host}:{port}")))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let asks: SocksAsks = Arc::default();
    let recorded = asks.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let asks = recorded.clone();
            tokio::spawn(async move {
                let ask = handshake(&mut c).await?;
                asks.lock().unwrap().push(ask);
                let mut upstream = tokio::net::TcpStream::connect(to).await?;
                tokio::io::copy_bidirectional(&mut c, &mut upstream).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (addr, asks)
}

/// The real binary, scoped to `ns`, with stakater's ALERT_* env vars, trusting the plane's CA.
async fn alerting_binary(ns: &TestNs, run: &str, env: &[(&str, &str)]) -> Binary {
    let ca = pki("ca.crt");
    let env: Vec<(&str, &str)> = [("SSL_CERT_FILE", ca.as_str())]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    Binary::in_namespace(ns, run, &[], &env).await
}

const RAW_ALERT: &str = "Reloader detected changes in cfg of type CONFIGMAP in namespace {ns}. Hence reloaded app of type Deployment in namespace {ns}";

fn raw_alert(ns: &TestNs) -> String {
    RAW_ALERT.replace("{ns}", &ns.name)
}

#[tokio::test]
async fn alerts_go_to_an_https_proxy_over_tls() {
    let ns = TestNs::new("alert-https-proxy").await;
    setup(&ns).await;
    let (port, hits) = tls_server().await;
    let proxy = format!("https://reloader:s%3Dcret@127.0.0.1:{port}");
    // Padded as a value from a Secret may be: stakater trims every ALERT_* value.
    let _bin = alerting_binary(
        &ns,
        "https-proxy",
        &[
            ("ALERT_ON_RELOAD", "true"),
            ("ALERT_WEBHOOK_URL", " http://alerts.invalid/hook\n"),
            ("ALERT_WEBHOOK_PROXY", &format!("{proxy}\n")),
            ("ALERT_SINK", " raw\n"),
        ],
    )
    .await;
    ns.set_cm("cfg", "2").await;
    let hit = first_request(&hits, "the alert at the proxy").await;
    assert_eq!(hit.line(), "POST http://alerts.invalid/hook HTTP/1.1");
    assert_eq!(
        hit.header("proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0")
    );
    assert_eq!(hit.body, raw_alert(&ns));
}

#[tokio::test]
async fn https_alerts_tunnel_through_an_https_proxy() {
    let ns = TestNs::new("alert-https-tunnel").await;
    setup(&ns).await;
    let (receiver_port, received) = tls_server().await;
    let (proxy_port, hits) = tls_server().await;
    let _bin = alerting_binary(
        &ns,
        "https-tunnel",
        &[
            ("ALERT_ON_RELOAD", "true"),
            (
                "ALERT_WEBHOOK_URL",
                &format!("https://localhost:{receiver_port}/hook"),
            ),
            (
                "ALERT_WEBHOOK_PROXY",
                &format!("https://reloader:s%3Dcret@127.0.0.1:{proxy_port}"),
            ),
        ],
    )
    .await;
    ns.set_cm("cfg", "2").await;
    let got = first_request(&received, "the alert through the tunnel").await;
    assert_eq!(got.line(), "POST /hook HTTP/1.1");
    assert_eq!(got.body, raw_alert(&ns));
    assert_eq!(
        got.header("proxy-authorization"),
        None,
        "only in the CONNECT"
    );
    let connect = hits.lock().unwrap().clone();
    assert_eq!(connect.len(), 1, "{connect:?}");
    let want = format!("CONNECT localhost:{receiver_port} HTTP/1.1");
    assert_eq!(connect[0].line(), want);
    assert_eq!(
        connect[0].header("proxy-authorization"),
        Some("Basic cmVsb2FkZXI6cz1jcmV0")
    );
}

#[tokio::test]
async fn alerts_tunnel_through_a_socks5_proxy() {
    let ns = TestNs::new("alert-socks").await;
    setup(&ns).await;
    let seen = Receiver::start(&[200]).await;
    let (addr, asks) = socks5_proxy(seen.addr).await;
    let _bin = alerting_binary(
        &ns,
        "socks",
        &[
            ("ALERT_ON_RELOAD", "true"),
            // Only the proxy can reach a name that does not resolve.
            ("ALERT_WEBHOOK_URL", "http://alerts.invalid/hook"),
            (
                "ALERT_WEBHOOK_PROXY",
                &format!("socks5://reloader:s%3Dcret@{addr}"),
            ),
        ],
    )
    .await;
    ns.set_cm("cfg", "2").await;
    let got = seen.received("the alert through the SOCKS5 tunnel").await;
    assert_eq!(got[0].call(), "POST /hook");
    assert_eq!(got[0].header("content-type"), Some("text/plain"));
    assert_eq!(got[0].body, raw_alert(&ns));
    let ask = asks.lock().unwrap()[0].clone();
    assert_eq!(
        ask,
        ("reloader:s=cret".to_owned(), "alerts.invalid:80".to_owned())
    );
}

/// A binary whose alerts stakater would not send: it runs, reloads, sends nothing, and
/// counts one warning for `flag`.
async fn no_alert_but_a_warning(run: &str, env: &[(&str, &str)], flag: &str) {
    let ns = TestNs::new(run).await;
    setup(&ns).await;
    let seen = Receiver::start(&[200]).await;
    let url = seen.url("/hook");
    let env: Vec<(&str, &str)> = [("ALERT_WEBHOOK_URL", url.as_str())]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    let bin = alerting_binary(&ns, run, &env).await;
    ns.set_cm("cfg", "2").await;
    wait_for("the reload", WAIT, || async {
        has_marker(&ns.get::<Deployment>("app").await)
            .then_some(())
            .ok_or("not yet")
    })
    .await;
    // An alert goes out right after its write.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(seen.count(), 0, "an alert was sent");
    let series = format!("kube_reloader_config_warnings_total{{flag=\"{flag}\"}}");
    assert_eq!(bin.metric(&series).await, Some(1.0), "{}", bin.log());
    assert!(bin.log().contains(&format!("{flag}: ")), "{}", bin.log());
}

#[tokio::test]
async fn alert_on_reload_other_than_exactly_true_is_off_with_a_warning() {
    no_alert_but_a_warning(
        "alert-true-ish",
        &[("ALERT_ON_RELOAD", "True")],
        "ALERT_ON_RELOAD",
    )
    .await;
}

#[tokio::test]
async fn an_unusable_alert_proxy_leaves_alerts_off_with_a_warning() {
    let env = [
        ("ALERT_ON_RELOAD", "true"),
        ("ALERT_WEBHOOK_PROXY", "ftp://proxy:21"),
    ];
    no_alert_but_a_warning("alert-ftp-proxy", &env, "ALERT_WEBHOOK_PROXY").await;
}
