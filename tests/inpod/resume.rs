//! The watch resumes after its connection to the API server is cut, without missing a
//! change made meanwhile: the sidecar reaches the API through a local TCP proxy that the
//! test cuts (every connection dropped, new ones refused) and restores.

use std::time::Duration;

use crate::{
    common::{read, tmpdir},
    support::{Binary, CutProxy, TestNs, free_addr, until},
};

#[tokio::test]
async fn the_watch_resumes_after_a_cut_without_missing_a_change() {
    let ns = TestNs::new("inpod-resume").await;
    ns.create_cm("app", "1").await;
    let proxy = CutProxy::to_api_server().await;
    let kubeconfig = proxy.kubeconfig();
    let dir = tmpdir("resume");
    let addr = free_addr();
    let args: Vec<String> = vec![
        "sidecar".into(),
        format!("--configmap={}/app", ns.name),
        format!("--dir={}", dir.display()),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    let mut p = Binary::in_pod_as(&args, &[], Some(addr), &kubeconfig);
    p.ready().await;
    assert_eq!(read(&dir.join("k")).as_deref(), Some("1"));

    proxy.cut();
    ns.set_cm("app", "2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        read(&dir.join("k")).as_deref(),
        Some("1"),
        "the cut did not cut"
    );

    proxy.restore();
    until("the change made during the cut", || {
        read(&dir.join("k")).as_deref() == Some("2")
    })
    .await;
}
