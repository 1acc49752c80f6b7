//! `watch-dir`: for config mounted as a volume. inotify on each directory (not recursive);
//! in the kubelet's layout only the `..data` swap counts (it is one rename however many
//! files changed), elsewhere any event does. Events are debounced and the reload happens
//! only when the visible files' content hash moved.

use std::{ffi::OsStr, path::PathBuf, time::Instant};

use futures::StreamExt;
use inotify::{EventMask, Inotify, WatchMask};

use super::{
    Fail, RunError,
    args::WatchDirArgs,
    atomic::{self, DATA},
    debounce::sleep_until,
    files,
    reload::{Reloader, Retry},
    spec::{self, UsageError},
    start,
};

/// Whether an event in a directory is a change worth a look. `kubelet_layout`: the
/// directory has `..data`, so the swap of that symlink is the one event that matters.
pub fn counts(kubelet_layout: bool, mask: EventMask, name: Option<&OsStr>) -> bool {
    if mask.contains(EventMask::Q_OVERFLOW) {
        return true; // events were lost: look at the content
    }
    let Some(name) = name else {
        return false; // about the directory itself
    };
    if name == DATA {
        return mask.intersects(EventMask::CREATE | EventMask::MOVED_TO);
    }
    !kubelet_layout && !name.to_string_lossy().starts_with("..")
}

pub async fn watch_dir(a: WatchDirArgs) -> Result<(), Fail> {
    let action = spec::action(&a.reload)?;
    let dirs: Vec<PathBuf> = a.dirs.clone();
    let inotify = Inotify::init().map_err(RunError::Inotify)?;
    let mask = WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::ONLYDIR;
    let mut wds = Vec::new();
    for dir in &dirs {
        let wd = inotify
            .watches()
            .add(dir, mask)
            .map_err(|source| UsageError::Dir {
                dir: dir.clone(),
                source,
            })?;
        wds.push((wd, dir.clone()));
    }
    let metrics = start::serve_metrics("watch-dir", &a.looping).await?;
    let mut events = inotify
        .into_event_stream(vec![0u8; 64 * 1024])
        .map_err(RunError::Inotify)?;
    let mut last = files::hash_dirs(&dirs).map_err(UsageError::ReadDirs)?;
    metrics.set_ready();
    tracing::info!(dirs = ?dirs, action = ?action, "watching");
    let reloader = Reloader { action, metrics };
    let mut debounce = start::debounce(&a.looping);
    let mut retry: Retry = None;
    let mut stop = std::pin::pin!(super::terminated());
    loop {
        let (due, retry_at) = (debounce.due(), retry.map(|(at, _)| at));
        let reload_from = tokio::select! {
            () = &mut stop => return Ok(()),
            ev = events.next() => {
                let ev = ev
                    .ok_or(RunError::InotifyStopped)?
                    .map_err(RunError::Inotify)?;
                let dir = wds.iter().find(|(wd, _)| *wd == ev.wd).map(|(_, d)| d);
                let layout = dir.is_some_and(|d| atomic::has_data(d));
                if counts(layout, ev.mask, ev.name.as_deref()) {
                    tracing::debug!(dir = ?dir, name = ?ev.name, mask = ?ev.mask, "change");
                    debounce.changed(Instant::now());
                }
                continue;
            }
            () = sleep_until(due) => {
                debounce.clear();
                match files::hash_dirs(&dirs) {
                    Ok(h) if h != last => last = h,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the directories; waiting for the next change");
                        continue;
                    }
                }
                None
            }
            () = sleep_until(retry_at) => retry,
        };
        // A reload may spend its retries' time; stopping does not wait for it.
        tokio::select! {
            () = &mut stop => return Ok(()),
            r = reloader.attempt(reload_from) => retry = r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_swap_counts_in_the_kubelet_layout() {
        let name = |s: &'static str| Some(OsStr::new(s));
        // The kubelet: new folder, ..data_tmp symlink, rename to ..data, old folder removed.
        let swap = [
            (
                EventMask::CREATE | EventMask::ISDIR,
                name("..2024_01_01_00_00_00.1"),
            ),
            (EventMask::CREATE, name("..data_tmp")),
            (EventMask::MOVED_FROM, name("..data_tmp")),
            (EventMask::MOVED_TO, name("..data")),
            (
                EventMask::DELETE | EventMask::ISDIR,
                name("..2023_12_31_00_00_00.9"),
            ),
        ];
        let n = swap.iter().filter(|(m, n)| counts(true, *m, *n)).count();
        assert_eq!(n, 1, "one swap, one change");
        // New keys' symlinks are not changes of their own.
        assert!(!counts(true, EventMask::CREATE, name("app.conf")));
        // A plain directory: any file event, but not ours or the directory's own.
        assert!(counts(false, EventMask::CLOSE_WRITE, name("app.conf")));
        assert!(!counts(false, EventMask::DELETE_SELF, None));
        assert!(
            counts(true, EventMask::Q_OVERFLOW, None),
            "lost events: look"
        );
    }
}
