//! The command line, composed: the operator's flags (stakater's spellings,
//! `operator::args`), `explain` (`operator::explain`) and the in-pod subcommands
//! (`inpod::args`); with no subcommand, the environment variables of other in-pod tools may
//! pick one (`inpod::env`).

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::{
    inpod::{args::Command as InPod, env::args_from_env},
    operator::{args::OperatorArgs, explain::args::ExplainArgs},
};

/// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Why a workload did or did not reload: its configs, the rule for each, and the
    /// markers against the hashes now (exit 1 when a marker is out of date).
    Explain(ExplainArgs),
    #[command(flatten)]
    InPod(InPod),
}

#[derive(Debug, Parser)]
#[command(
    name = "kube-reloader",
    version,
    // As Go's flag package: a repeated flag takes its last value (so extra args override).
    args_override_self = true,
    about = "Rolls Kubernetes workloads when the ConfigMaps and Secrets they use change"
)]
pub struct Cli {
    #[command(flatten)]
    pub operator: OperatorArgs,

    /// `explain` or an in-pod mode; none runs the operator.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Why the command line could not be used.
#[derive(Debug)]
pub enum CliError {
    /// clap's own (usage, help, version): printed and exited as clap does.
    Clap(clap::Error),
    /// The environment's settings are incomplete.
    Env(String),
}

/// Parses `argv` (program name first); with no subcommand, the environment may choose one.
pub fn parse_cli(
    argv: Vec<OsString>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Cli, CliError> {
    let direct = Cli::try_parse_from(&argv);
    if let Ok(cli) = &direct
        && cli.command.is_some()
    {
        return direct.map_err(CliError::Clap);
    }
    match args_from_env(get) {
        None => direct.map_err(CliError::Clap),
        Some(Err(e)) => Err(CliError::Env(e)),
        Some(Ok(mode)) => {
            let program = argv
                .first()
                .cloned()
                .unwrap_or_else(|| "kube-reloader".into());
            let rest = argv.into_iter().skip(1);
            let argv = std::iter::once(program)
                .chain(mode.into_iter().map(OsString::from))
                .chain(rest);
            Cli::try_parse_from(argv).map_err(CliError::Clap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::env::env_of as env;

    fn cli(argv: &[&str], pairs: &[(&str, &str)]) -> Result<Cli, CliError> {
        let argv = argv.iter().map(OsString::from).collect();
        parse_cli(argv, env(pairs))
    }

    #[test]
    fn the_environment_picks_the_mode_only_without_a_subcommand() {
        let cm = [
            ("RELOADER_CONFIGMAP", "app"),
            ("RELOADER_PATH", "/cfg"),
            ("POD_NAMESPACE", "x"),
        ];
        let c = cli(&["kube-reloader", "--http-addr=:8080"], &cm).unwrap();
        let Some(Command::InPod(InPod::Sidecar(s))) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(s.objects.configmaps, ["app"]);
        assert_eq!(
            s.looping.http_addr, ":8080",
            "command-line flags go to the mode"
        );
        let c = cli(&["kube-reloader", "--dir=/other"], &cm).unwrap();
        let Some(Command::InPod(InPod::Sidecar(s))) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(
            s.objects.dir.to_str(),
            Some("/other"),
            "and win over the variables"
        );

        let c = cli(&["kube-reloader", "watch-dir", "--dir=/d"], &cm).unwrap();
        assert!(
            matches!(c.command, Some(Command::InPod(InPod::WatchDir(_)))),
            "an explicit subcommand wins"
        );

        let c = cli(&["kube-reloader", "--namespaces=a"], &[]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(crate::operator::args::items(&c.operator.namespaces), ["a"]);

        let e = cli(&["kube-reloader"], &[("CONFIG_DIR", "/c")]).unwrap_err();
        assert!(
            matches!(e, CliError::Env(ref m) if m.contains("PROCESS_NAME")),
            "{e:?}"
        );
        let e = cli(&["kube-reloader", "--namespaces=a"], &cm).unwrap_err();
        assert!(
            matches!(e, CliError::Clap(_)),
            "operator flags do not mix with in-pod env"
        );
    }

    #[test]
    fn explain_takes_the_operators_flags_after_it() {
        let c = cli(
            &[
                "kube-reloader",
                "explain",
                "-n",
                "team",
                "deploy/web",
                "--auto-reload-all",
                "-o",
                "json",
            ],
            &[],
        )
        .unwrap();
        let Some(Command::Explain(e)) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(e.namespace.as_deref(), Some("team"));
        assert_eq!(e.target.as_deref(), Some("deploy/web"));
        assert!(e.operator.auto_reload_all);
        assert_eq!(e.output, crate::operator::explain::args::Output::Json);
    }

    #[test]
    fn no_subcommand_is_the_operator() {
        let cli = Cli::try_parse_from(["kube-reloader", "--namespaces=x"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(
            crate::operator::args::items(&cli.operator.namespaces),
            ["x"]
        );
    }
}
