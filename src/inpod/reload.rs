//! Telling the app its config changed: an HTTP call, a signal, or a touched file; each
//! outcome counted, and failures feeding /healthz.

use std::{
    path::PathBuf,
    time::{Instant, SystemTime},
};

use nix::sys::signal::Signal;

use super::{
    debounce::retry_delay,
    metrics::InPodMetrics,
    reload_http::{HttpError, HttpReload},
    signal::{SignalError, Target},
};

#[derive(Debug, Clone)]
pub enum Action {
    /// Only write the files (the app watches them itself).
    None,
    Http(Box<HttpReload>),
    Signal(Target, Signal),
    Touch(PathBuf),
}

/// Why a reload failed (once its retries, if any, are spent).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error("cannot touch {}: {source}", .path.display())]
    Touch {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the file, or sets its modification time to now; its content is kept.
fn touch(path: &std::path::Path) -> Result<(), ReloadError> {
    let touched = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
    touched.map_err(|source| ReloadError::Touch {
        path: path.to_owned(),
        source,
    })
}

/// A failed reload's next attempt: when, and how many retries came before it.
pub type Retry = Option<(Instant, u32)>;

/// An action with its bookkeeping.
#[derive(Clone)]
pub struct Reloader {
    pub action: Action,
    pub metrics: InPodMetrics,
}

impl Reloader {
    /// Runs the action once; `false` when it failed (logged and counted).
    pub async fn reload(&self) -> bool {
        let outcome: Result<String, ReloadError> = match &self.action {
            // Not a reload: nothing to log or count.
            Action::None => return true,
            Action::Http(h) => h
                .reload()
                .await
                .map(|()| format!("{h:?}"))
                .map_err(Into::into),
            Action::Signal(target, sig) => super::signal::send(target, *sig)
                .map(|pid| format!("{sig} to process {pid}"))
                .map_err(Into::into),
            Action::Touch(path) => touch(path).map(|()| format!("touched {}", path.display())),
        };
        match outcome {
            Ok(what) => {
                tracing::info!(%what, "app reloaded");
                self.metrics.reload_ok();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed");
                self.metrics.reload_failed();
                false
            }
        }
    }

    /// Reloads; on failure, when to try again (`retry_delay`).
    /// `previous`: the retry this attempt is, if any.
    pub async fn attempt(&self, previous: Retry) -> Retry {
        let n = previous.map_or(0, |(_, n)| n + 1);
        if self.reload().await {
            return None;
        }
        Some((Instant::now() + retry_delay(n), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_creates_then_bumps_the_time_and_keeps_content() {
        let p = std::env::temp_dir().join(format!("kr-touch-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        touch(&p).unwrap();
        assert!(p.exists());
        std::fs::write(&p, "keep").unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        touch(&p).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert!(m.modified().unwrap() > old);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "keep");
        std::fs::remove_file(&p).unwrap();
        let e = touch(std::path::Path::new("/nonexistent-dir/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot touch /nonexistent-dir/x"), "{e}");
    }
}
