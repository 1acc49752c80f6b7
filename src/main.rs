use kube_reloader::{
    inpod::{self, env::CliError},
    options::Options,
    telemetry,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match inpod::env::parse_cli(std::env::args_os().collect(), |k| std::env::var(k).ok())
    {
        Ok(cli) => cli,
        Err(CliError::Clap(e)) => e.exit(),
        Err(CliError::Env(e)) => {
            eprintln!("kube-reloader: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(cmd) = cli.command {
        return inpod::main(cmd).await;
    }
    let args = cli.operator;
    if let Err(e) = telemetry::init(&args.log_format, &args.log_level) {
        eprintln!("kube-reloader: {e}");
        return std::process::ExitCode::from(2);
    }
    let opts = match Options::from_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kube-reloader: invalid option {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match kube_reloader::operator::main(opts).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
