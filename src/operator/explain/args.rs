//! `kube-reloader explain`: what to explain, and the operator's own flags, so the answer is
//! the one the operator started with those flags would give.

use clap::{Args, ValueEnum};

use crate::operator::args::OperatorArgs;

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,

    /// `KIND/NAME` (deployment/web, sts/db, ds/agent, cronjob/x, job/y, rollout/z); without
    /// it, a table of every workload in the namespace.
    pub target: Option<String>,

    /// `text` for people, `json` for machines.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: Output,

    /// The operator's flags, as it runs with them (stakater's spellings).
    #[command(flatten)]
    pub operator: OperatorArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}
