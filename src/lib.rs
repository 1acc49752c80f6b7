//! kube-reloader: rolls Kubernetes workloads when the ConfigMaps and Secrets they use
//! change, compatible with stakater/Reloader's annotations, flags, hash and env vars.

pub mod annotations;
pub mod cli;
pub mod decide;
pub mod facts;
pub mod hash;
pub mod kinds;
pub mod references;
pub mod store;
pub mod strategy;
