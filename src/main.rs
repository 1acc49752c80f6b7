use clap::Parser;
use kube_reloader::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _ = cli.operator;
    eprintln!(
        "kube-reloader: the operator loop is not built yet (see README, Status); \
         flags were parsed and are valid"
    );
    std::process::ExitCode::FAILURE
}
