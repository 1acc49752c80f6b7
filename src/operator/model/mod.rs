//! The operator's vocabulary, pure: kinds and keys, stakater's hash, annotations, what a
//! pod template references, label selectors, and the facts a workload is reduced to.

pub mod annotations;
pub mod custom_kinds;
pub(crate) mod facts;
pub mod hash;
pub mod kinds;
pub(crate) mod references;
pub mod selector;
