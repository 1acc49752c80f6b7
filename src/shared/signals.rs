//! The shutdown signal of every mode.

/// Completes on SIGTERM or SIGINT (the operator's and the in-pod modes' shutdown signal).
pub async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
