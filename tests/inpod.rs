//! In-pod modes against the real API server, with the real binary as a child process:
//! files and their atomic swap, reloads by HTTP, signal and touch, the supervisor, init,
//! watch-dir, RBAC limited to the named objects, the environment-variable configuration and
//! the label-selected collection of k8s-sidecar's variables.

mod support;

#[path = "inpod/collect.rs"]
mod collect;
#[path = "inpod/common.rs"]
mod common;
#[path = "inpod/env_vars.rs"]
mod env_vars;
#[path = "inpod/files.rs"]
mod files;
#[path = "inpod/init.rs"]
mod init;
#[path = "inpod/rbac.rs"]
mod rbac;
#[path = "inpod/reload_http.rs"]
mod reload_http;
#[path = "inpod/resume.rs"]
mod resume;
#[path = "inpod/signals.rs"]
mod signals;
#[path = "inpod/supervise.rs"]
mod supervise;
#[path = "inpod/watch_dir.rs"]
mod watch_dir;
