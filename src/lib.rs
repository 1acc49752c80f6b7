//! kube-reloader: rolls Kubernetes workloads when the ConfigMaps and Secrets they use
//! change, compatible with stakater/Reloader's annotations, flags, hash and env vars.
//!
//! `operator` is the controller (the binary with no subcommand), `inpod` the in-pod modes;
//! both build on `shared`, and `cli` is the one place that knows them both.

pub mod cli;
pub mod inpod;
pub mod operator;
pub mod shared;
