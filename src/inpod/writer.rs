//! The objects' latest files, and the loop that writes them and reloads the app:
//! changes are debounced, nothing is written or reloaded unless the content hash moved,
//! and a failed reload is retried with backoff until it succeeds or the content moves on.

use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use kube::Client;
use tokio::sync::mpsc;

use super::{
    RunError, atomic,
    debounce::{self, Debounce, Step, sleep_until},
    files::{self, ContentHash, Files, WriteError},
    metrics::InPodMetrics,
    objref::ObjectRef,
    reload::{Reloader, Retry},
    source::{self, SourceMsg},
};

/// An object not seen in time, and the last error of its watch, if any.
#[derive(Debug)]
pub struct Missing {
    pub object: ObjectRef,
    pub last_error: Option<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.last_error {
            Some(e) => write!(f, "{} (last error: {e})", self.object),
            None => write!(f, "{} (not found)", self.object),
        }
    }
}

/// `a (not found), b (last error: …)`.
pub fn list(missing: &[Missing]) -> String {
    let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
    missing.join(", ")
}

pub struct Writer {
    refs: Vec<ObjectRef>,
    dir: PathBuf,
    rx: mpsc::Receiver<SourceMsg>,
    /// Each object's last known files; kept when it is deleted, as the kubelet keeps a
    /// deleted ConfigMap's last content in a running pod.
    objects: Vec<Option<Files>>,
    last_error: Vec<Option<String>>,
    /// What the directory holds: last written, or found there at start.
    last: Option<ContentHash>,
    metrics: InPodMetrics,
}

impl Writer {
    pub fn start(
        client: &Client,
        refs: Vec<ObjectRef>,
        dir: PathBuf,
        modes: (u32, u32),
        metrics: InPodMetrics,
    ) -> Self {
        let (tx, rx) = mpsc::channel(64);
        source::spawn(client, &refs, modes, tx);
        let last = atomic::has_data(&dir)
            .then(|| files::read_dir(&dir).ok())
            .flatten()
            .map(|f| files::hash(f.iter().map(|(k, v)| (k.as_str(), &v[..]))));
        let n = refs.len();
        Writer {
            refs,
            dir,
            rx,
            objects: vec![None; n],
            last_error: vec![None; n],
            last,
            metrics,
        }
    }

    fn complete(&self) -> bool {
        self.objects.iter().all(Option::is_some)
    }

    /// Takes one message; `true` when an object's files changed.
    fn apply(&mut self, msg: SourceMsg) -> bool {
        match msg {
            SourceMsg::Object {
                idx,
                files: Some(f),
            } => {
                self.last_error[idx] = None;
                let changed = self.objects[idx].as_ref() != Some(&f);
                self.objects[idx] = Some(f);
                changed
            }
            SourceMsg::Object { idx, files: None } => {
                if self.objects[idx].is_some() {
                    tracing::warn!(object = %self.refs[idx], "deleted; its last files stay in place");
                }
                false
            }
            SourceMsg::Error { idx, error } => {
                tracing::warn!(object = %self.refs[idx], %error, "watch failed; retrying");
                self.last_error[idx] = Some(error);
                false
            }
        }
    }

    async fn recv(&mut self) -> Result<SourceMsg, RunError> {
        self.rx.recv().await.ok_or(RunError::WatchesStopped)
    }

    /// Waits until every object has been seen, or fails after `wait` naming those missing.
    pub async fn wait_complete(&mut self, wait: Duration) -> Result<(), RunError> {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.complete() {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(msg) => {
                    self.apply(msg?);
                }
                Err(_) => return Err(self.missing(wait)),
            }
        }
        Ok(())
    }

    fn missing(&self, wait: Duration) -> RunError {
        let missing = (0..self.refs.len())
            .filter(|i| self.objects[*i].is_none())
            .map(|i| Missing {
                object: self.refs[i].clone(),
                last_error: self.last_error[i].clone(),
            })
            .collect();
        RunError::TimedOut { wait, missing }
    }

    /// Writes the merged files if their content differs from what the directory holds.
    pub fn write_now(&mut self) -> Result<Step, WriteError> {
        let named = self.refs.iter().map(ToString::to_string);
        let merged = files::merge(named.zip(self.objects.iter().flatten()))?;
        let hash = files::hash_files(&merged);
        let step = debounce::decide(self.last, hash);
        if step != Step::Nothing {
            let folder = atomic::write(&self.dir, &merged)?;
            self.last = Some(hash);
            self.metrics.written();
            tracing::info!(dir = %self.dir.display(), %folder, files = merged.len(), hash = ?hash, "config written");
        }
        self.metrics.set_ready();
        Ok(step)
    }

    /// Keeps the directory up to date and the app reloaded until `stop` completes.
    pub async fn run_until<T>(
        &mut self,
        reloader: &Reloader,
        debounce: &mut Debounce,
        stop: impl Future<Output = T>,
    ) -> Result<T, RunError> {
        let mut stop = std::pin::pin!(stop);
        // The first complete set is compared with the directory without waiting.
        let mut first = !self.metrics.ready();
        if first && self.complete() {
            debounce.force(Instant::now());
        }
        let mut retry: Retry = None;
        let mut write_failures = 0;
        loop {
            let (due, retry_at) = (debounce.due(), retry.map(|(at, _)| at));
            let reload_from = tokio::select! {
                out = &mut stop => return Ok(out),
                msg = self.recv() => {
                    let changed = self.apply(msg?);
                    if self.complete() && first {
                        debounce.force(Instant::now());
                    } else if self.complete() && changed {
                        debounce.changed(Instant::now());
                    }
                    continue;
                }
                () = sleep_until(due) => {
                    debounce.clear();
                    first = false;
                    match self.write_now() {
                        Ok(Step::Write { reload: true }) => write_failures = 0,
                        Ok(_) => {
                            write_failures = 0;
                            continue;
                        }
                        Err(e) => {
                            // Counted with reload failures: the app is not getting its config.
                            tracing::error!(error = %e, "cannot write the config; retrying");
                            self.metrics.reload_failed();
                            debounce.force(Instant::now() + debounce::retry_delay(write_failures));
                            write_failures += 1;
                            continue;
                        }
                    }
                    None
                }
                () = sleep_until(retry_at) => retry,
            };
            // A reload may spend its retries' time; stopping does not wait for it.
            tokio::select! {
                out = &mut stop => return Ok(out),
                r = reloader.attempt(reload_from) => retry = r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::objref::Kind;

    #[test]
    fn a_timeout_names_what_is_missing_and_why() {
        let object = |name: &str| ObjectRef {
            kind: Kind::ConfigMap,
            namespace: "ns".into(),
            name: name.into(),
        };
        let e = RunError::TimedOut {
            wait: Duration::from_secs(2),
            missing: vec![
                Missing {
                    object: object("a"),
                    last_error: None,
                },
                Missing {
                    object: object("b"),
                    last_error: Some("forbidden".into()),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "timed out after 2s waiting for configmap ns/a (not found), configmap ns/b (last error: forbidden)"
        );
    }
}
