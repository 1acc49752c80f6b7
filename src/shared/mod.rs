//! What both subsystems (the operator and the in-pod modes) use; imports nothing from either.

pub(crate) mod backoff;
pub mod go;
pub(crate) mod http;
pub(crate) mod kube;
pub(crate) mod signals;
pub mod telemetry;
pub(crate) mod watcher;
