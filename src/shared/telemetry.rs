//! Logging: `--log-format json|text` and `--log-level` (logrus level names accepted).

use tracing_subscriber::{EnvFilter, fmt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How to log: a format and a `tracing` level name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: &'static str,
}

impl Default for LogSettings {
    /// Stakater's (logrus's) defaults: text at info.
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info",
        }
    }
}

pub const LEVELS: &str = "trace, debug, info, warning, error, fatal, panic";
pub const FORMATS: &str = "json, text";

/// A logrus level name (any case) as a `tracing` level; fatal and panic map to error.
pub fn parse_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => return None,
    })
}

/// `json`, or empty or `text` for plain text (exact spelling, as stakater).
pub fn parse_format(format: &str) -> Option<LogFormat> {
    match format {
        "json" => Some(LogFormat::Json),
        "" | "text" => Some(LogFormat::Text),
        _ => None,
    }
}

impl LogSettings {
    /// Both values, or an error naming the flag (the in-pod modes, which stakater lacks).
    pub fn strict(format: &str, level: &str) -> Result<Self, LogError> {
        let level = parse_level(level).ok_or_else(|| LogError::Level(level.into()))?;
        let format = parse_format(format).ok_or_else(|| LogError::Format(format.into()))?;
        Ok(LogSettings { format, level })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid option --log-level: {0:?} (accepted: {LEVELS})")]
    Level(String),
    #[error("invalid option --log-format: {0:?} (accepted: {FORMATS})")]
    Format(String),
    /// A global subscriber is set already.
    #[error("cannot set up logging: {0}")]
    Init(String),
}

pub fn init(settings: LogSettings) -> Result<(), LogError> {
    let level = settings.level;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},kube_reloader={level}")));
    // Colours only on a terminal: `kubectl logs` and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| LogError::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_level_names_in_any_case() {
        assert_eq!(parse_level("WARNING"), Some("warn"));
        assert_eq!(parse_level("Fatal"), Some("error"));
        assert_eq!(parse_level("verbose"), None);
        assert_eq!(parse_format(""), Some(LogFormat::Text));
        assert_eq!(parse_format("JSON"), None, "exact, as stakater");
    }

    #[test]
    fn strict_settings_name_the_flag() {
        let e = LogSettings::strict("", "loud").unwrap_err().to_string();
        assert!(e.contains("--log-level") && e.contains("\"loud\""), "{e}");
        let e = LogSettings::strict("xml", "info").unwrap_err().to_string();
        assert!(e.contains("--log-format") && e.contains(FORMATS), "{e}");
        let s = LogSettings::strict("json", "debug").unwrap();
        assert_eq!((s.format, s.level), (LogFormat::Json, "debug"));
    }
}
