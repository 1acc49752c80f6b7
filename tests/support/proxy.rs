//! A TCP proxy in front of an API server that a test cuts (every connection dropped, new
//! ones refused) and restores, and a kubeconfig that goes through it.

use std::path::{Path, PathBuf};

use super::plane::{api_server_addr, control_plane};

/// A TCP proxy in front of the API server that a test can cut (every connection dropped,
/// new ones refused) and restore. TLS passes through untouched.
pub struct CutProxy {
    pub addr: std::net::SocketAddr,
    kubeconfig: PathBuf,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CutProxy {
    /// A proxy to the test plane's API server.
    pub async fn to_api_server() -> CutProxy {
        Self::to(control_plane()).await
    }

    /// A proxy to the API server of the admin kubeconfig at `kubeconfig`.
    pub async fn to(kubeconfig: &Path) -> CutProxy {
        let text = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
        let target: std::net::SocketAddr = api_server_addr(&text).parse().expect("ip:port");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let p = CutProxy {
            addr: listener.local_addr().expect("local addr"),
            kubeconfig: kubeconfig.to_owned(),
            up: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            conns: std::sync::Arc::default(),
        };
        let (up, conns) = (p.up.clone(), p.conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(std::sync::atomic::Ordering::SeqCst) {
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

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The admin kubeconfig, pointed at this proxy.
    pub fn kubeconfig(&self) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read the kubeconfig");
        let path = std::env::temp_dir().join(format!(
            "kube-reloader-via-{}-{}.kubeconfig",
            std::process::id(),
            self.addr.port()
        ));
        let rewritten = text.replace(api_server_addr(&text), &self.addr.to_string());
        std::fs::write(&path, rewritten).expect("write the kubeconfig");
        path
    }
}
