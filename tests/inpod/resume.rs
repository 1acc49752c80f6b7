//! The watch resumes after its connection to the API server is cut, without missing a
//! change made meanwhile: the sidecar reaches the API through a local TCP proxy that the
//! test cuts (every connection dropped, new ones refused) and restores.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::{
    common::{InPod, free_addr, read, tmpdir, until},
    support::{TestNs, control_plane},
};

struct CutProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CutProxy {
    async fn start(target: SocketAddr) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = CutProxy {
            addr: listener.local_addr().unwrap(),
            up: Arc::new(AtomicBool::new(true)),
            conns: Arc::default(),
        };
        let (up, conns) = (p.up.clone(), p.conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        p
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The admin kubeconfig's server address.
fn server(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server line in the kubeconfig")
        .trim()
}

/// The admin kubeconfig with the server address replaced by `via`.
fn kubeconfig_via(via: SocketAddr) -> PathBuf {
    let text = std::fs::read_to_string(control_plane()).unwrap();
    let path = tmpdir("kubeconfig-via").join("config");
    std::fs::write(&path, text.replace(server(&text), &via.to_string())).unwrap();
    path
}

#[tokio::test]
async fn the_watch_resumes_after_a_cut_without_missing_a_change() {
    let ns = TestNs::new("inpod-resume").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "app" }, "data": { "k": "1" } }))
        .await;
    let admin = std::fs::read_to_string(control_plane()).unwrap();
    let proxy = CutProxy::start(server(&admin).parse().expect("an ip:port server")).await;
    let kubeconfig = kubeconfig_via(proxy.addr);
    let dir = tmpdir("resume");
    let addr = free_addr();
    let args: Vec<String> = vec![
        "sidecar".into(),
        format!("--configmap={}/app", ns.name),
        format!("--dir={}", dir.display()),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    let mut p = InPod::start_as(&args, &[], Some(addr), &kubeconfig);
    p.ready().await;
    assert_eq!(read(&dir.join("k")).as_deref(), Some("1"));

    proxy.cut();
    ns.merge_patch::<ConfigMap>("app", json!({ "data": { "k": "2" } }))
        .await;
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
