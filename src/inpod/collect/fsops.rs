//! Plain files, as k8s-sidecar writes them (an app such as Grafana reads every file in the
//! folder), but each replaced by a rename, so a reader never sees half a file. A file that
//! already holds the content is left alone, so a restart over a current folder changes
//! nothing.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use super::super::files::{File, WriteError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

fn err(what: &'static str, path: &Path, source: std::io::Error) -> WriteError {
    WriteError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The temporary name beside `path`: hidden, and not ending as the file does (Grafana reads
/// `*.json`).
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.kube-reloader-tmp"))
}

/// Writes `file` at `path`, creating its folder.
pub fn write(path: &Path, file: &File) -> Result<Outcome, WriteError> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err("cannot read", path, e)),
    };
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
    if existing.as_deref() == Some(&file.bytes[..]) && mode.as_ref().ok() == Some(&file.mode) {
        return Ok(Outcome::Unchanged);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("cannot create", dir, e))?;
    }
    let tmp = temp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("cannot create", &tmp, e))?;
    // Explicitly, since the umask applies to create's mode.
    f.set_permissions(std::fs::Permissions::from_mode(file.mode))
        .map_err(|e| err("cannot chmod", &tmp, e))?;
    f.write_all(&file.bytes)
        .map_err(|e| err("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("cannot rename", &tmp, e))?;
    Ok(if existing.is_some() {
        Outcome::Updated
    } else {
        Outcome::Created
    })
}

/// Removes the file at `path`; `false` when it was not there.
pub fn remove(path: &Path) -> Result<bool, WriteError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(err("cannot remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compare_first_and_removes_tolerate_absence() {
        let d = std::env::temp_dir().join(format!("kr-collect-fs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let path = d.join("sub/a.json");
        let f = |s: &str, mode| File {
            bytes: s.as_bytes().to_vec(),
            mode,
        };
        assert_eq!(write(&path, &f("1", 0o640)).unwrap(), Outcome::Created);
        assert_eq!(write(&path, &f("1", 0o640)).unwrap(), Outcome::Unchanged);
        assert_eq!(write(&path, &f("2", 0o640)).unwrap(), Outcome::Updated);
        assert_eq!(write(&path, &f("2", 0o644)).unwrap(), Outcome::Updated);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert!(!temp_path(&path).exists());
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
