//! Reload by HTTP against a local receiver: retries with backoff after 500s, the method and
//! expected status, and /healthz failing while reloads keep failing (then recovering).

use crate::{
    common::{healthz_is, metric_reaches, tmpdir},
    support::{Binary, Receiver, TestNs, free_addr, until},
};

async fn setup(prefix: &str, receiver: &Receiver, extra: &[&str]) -> (TestNs, Binary) {
    let ns = TestNs::new(prefix).await;
    ns.create_cm("app", "0").await;
    let addr = free_addr();
    let mut args: Vec<String> = vec![
        "sidecar".into(),
        format!("--configmap={}/app", ns.name),
        format!("--dir={}", tmpdir(prefix).display()),
        format!("--reload-http=http://{}/-/reload", receiver.addr),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut p = Binary::in_pod(&args, &[], Some(addr));
    p.ready().await;
    (ns, p)
}

#[tokio::test]
async fn http_reload_retries_after_500s() {
    let receiver = Receiver::start(&[500, 500, 200]).await;
    let (ns, p) = setup("inpod-http", &receiver, &["--reload-http-backoff=50ms"]).await;
    assert_eq!(receiver.count(), 0, "no reload for the first write");

    ns.set_cm("app", "1").await;
    until("three calls", || receiver.count() == 3).await;
    let log = p.log();
    metric_reaches(&p, "kube_reloader_inpod_reloads_total", 1.0).await;
    assert_eq!(receiver.calls(), ["POST /-/reload"; 3]);
    assert_eq!(
        p.metric("kube_reloader_inpod_reload_failures_total").await,
        Some(0.0),
        "retries are one reload"
    );
    assert!(
        p.metric("kube_reloader_inpod_last_reload_success_timestamp_seconds")
            .await
            > Some(1e9)
    );
    assert_eq!(p.http_get("/healthz").await.0, 200);
    assert!(log.contains("status 500"), "{log}");
}

#[tokio::test]
async fn healthz_fails_while_reloads_keep_failing() {
    let receiver = Receiver::start(&[500]).await;
    let extra = [
        "--reload-http-method=put",
        "--reload-http-status=204",
        "--reload-http-retries=0",
        "--failure-threshold=2",
    ];
    let (ns, p) = setup("inpod-health", &receiver, &extra).await;
    assert_eq!(p.http_get("/healthz").await.0, 200);

    ns.set_cm("app", "1").await;
    // The failed reload is retried by itself (1s, then 2s later), so failures accumulate.
    healthz_is(&p, 503).await;
    assert!(p.metric("kube_reloader_inpod_reload_failures_total").await >= Some(2.0));
    assert!(p.log().contains("status 500 (want 204)"), "{}", p.log());

    receiver.set(&[204]);
    healthz_is(&p, 200).await;
    assert_eq!(
        p.metric("kube_reloader_inpod_reloads_total").await,
        Some(1.0)
    );
    assert!(receiver.calls().iter().all(|r| r == "PUT /-/reload"));
}

/// SIGTERM during a reload's retries stops the sidecar at once (the kubelet's grace period
/// is shorter than a reload's retries may take).
#[tokio::test]
async fn sigterm_does_not_wait_for_a_retrying_reload() {
    let receiver = Receiver::start(&[500]).await;
    let extra = ["--reload-http-retries=20", "--reload-http-backoff=5s"];
    let (ns, mut p) = setup("inpod-http-stop", &receiver, &extra).await;
    ns.set_cm("app", "1").await;
    until("the first call", || receiver.count() == 1).await;
    p.signal("TERM");
    let status = p.exit(std::time::Duration::from_secs(3)).await;
    assert!(status.success(), "{status}:\n{}", p.log());
}
