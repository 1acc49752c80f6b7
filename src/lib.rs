//! kube-reloader: rolls Kubernetes workloads when the ConfigMaps and Secrets they use
//! change, compatible with stakater/Reloader's annotations, flags, hash and env vars.

pub mod annotations;
pub mod apply;
pub mod cli;
pub mod csi;
pub mod decide;
pub mod engine;
pub mod facts;
pub mod go_csv;
pub mod go_regex;
pub mod hash;
pub mod health;
pub mod http;
pub mod inpod;
pub mod kinds;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod options;
pub mod persist;
pub mod plan;
pub mod references;
pub mod state;
pub mod store;
pub mod strategy;
pub mod telemetry;
pub mod watch;
