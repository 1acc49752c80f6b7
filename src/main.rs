//! The binary: the command line picks the operator or an in-pod mode.

use kube_reloader::{
    cli::{self, CliError, Command},
    inpod,
    operator::{self, options::Options},
    shared::telemetry,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match cli::parse_cli(std::env::args_os().collect(), |k| std::env::var(k).ok()) {
        Ok(cli) => cli,
        Err(CliError::Clap(e)) => e.exit(),
        Err(CliError::Env(e)) => {
            eprintln!("kube-reloader: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::InPod(cmd)) => return inpod::main(cmd).await,
        Some(Command::Explain(args)) => return operator::explain::main(args).await,
        None => {}
    }
    // Options first: a bad log level or format is one of their warnings, and logging is
    // set up from what they resolved.
    let opts = match Options::from_args(&cli.operator) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kube-reloader: invalid option {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init(opts.log) {
        eprintln!("kube-reloader: {e}");
        return std::process::ExitCode::from(2);
    }
    match operator::main(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
