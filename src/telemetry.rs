//! Logging: `--log-format json|text` and `--log-level` (logrus level names accepted).

use tracing_subscriber::{EnvFilter, fmt};

pub fn init(format: &str, level: &str) -> Result<(), String> {
    let level = match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        other => {
            return Err(format!(
                "invalid option --log-level: {other:?} (accepted: trace, debug, info, warning, error, fatal, panic)"
            ));
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},kube_reloader={level}")));
    // Colours only on a terminal: `kubectl logs` and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        "json" => builder.json().try_init(),
        "" | "text" => builder.try_init(),
        other => {
            return Err(format!(
                "invalid option --log-format: {other:?} (accepted: json, text)"
            ));
        }
    }
    .map_err(|e| e.to_string())
}
