//! `kube-reloader explain`: why a workload did or did not reload, config by config, with the
//! operator's own decision code and the flags it runs with. Exit 0: up to date; 1: a marker
//! differs from its config's hash (a reload is due or was lost); 2: it could not tell.

pub mod args;
mod lint;
mod read;
mod render;
pub mod report;
pub mod snapshot;

use std::process::ExitCode;

use args::{ExplainArgs, Output};

use crate::operator::options::Options;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("invalid option {0}")]
    Option(#[from] crate::operator::options::OptionError),
    #[error(transparent)]
    Client(#[from] crate::shared::kube::ClientError),
    #[error(transparent)]
    Read(#[from] read::ReadError),
}

pub async fn main(args: ExplainArgs) -> ExitCode {
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kube-reloader explain: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints the report; `Ok(false)` when a workload is out of date.
async fn run(args: &ExplainArgs) -> Result<bool, ExplainError> {
    let opts = Options::from_args(&args.operator)?;
    let target = (args.target.as_deref())
        .map(|t| read::parse_target(&opts, t))
        .transpose()?;
    for w in &opts.warnings {
        eprintln!("warning: {}: {}", w.flag, w.message);
    }
    let client = crate::shared::kube::client().await?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let snap = read::snapshot(&client, &opts, &ns, target.as_ref()).await?;
    let report = report::report(&opts, &snap);
    match (args.output, &target) {
        (Output::Json, _) => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report is plain data")
        ),
        (Output::Text, Some(_)) => {
            for w in &report.workloads {
                print!("{}", render::workload(&report, w));
            }
        }
        (Output::Text, None) => print!("{}", render::table(&report)),
    }
    Ok(report.workloads.iter().all(|w| w.up_to_date))
}
