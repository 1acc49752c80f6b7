//! One sync: the planned writes and removals applied to the file system.

use super::{
    super::files::WriteError,
    fsops,
    plan::Op,
    state::{Changes, State},
};

/// Brings the files up to date; a file that cannot be written is logged and tried again at
/// the next sync. Returns what changed and the first error.
pub fn sync(state: &mut State) -> (Changes, Option<WriteError>) {
    let (ops, collisions) = state.plan();
    for c in collisions {
        tracing::warn!(path = %c.path.display(), written = %c.written, dropped = %c.dropped, "two objects have this file; the first is written (UNIQUE_FILENAMES / --unique-filenames avoids this)");
    }
    let mut changes = Changes::default();
    let mut first_error = None;
    for op in ops {
        let outcome = match op {
            Op::Write(path, file) => fsops::write(&path, &file).map(|o| {
                match o {
                    fsops::Outcome::Created => changes.created += 1,
                    fsops::Outcome::Updated => changes.updated += 1,
                    fsops::Outcome::Unchanged => {}
                }
                if o != fsops::Outcome::Unchanged {
                    tracing::info!(path = %path.display(), "file written");
                }
                state.written.insert(path, file);
            }),
            Op::Remove(path) => fsops::remove(&path).map(|existed| {
                if existed {
                    changes.removed += 1;
                    tracing::info!(path = %path.display(), "file removed");
                }
                state.written.remove(&path);
            }),
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "cannot write the file; retrying");
            changes.failed += 1;
            first_error.get_or_insert(e);
        }
    }
    (changes, first_error)
}
