//! Writes a set of files into a directory the way the kubelet's AtomicWriter does, so an
//! app never reads half a config:
//!
//! 1. the files go into a new hidden folder `..YYYY_MM_DD_HH_MM_SS.<nanos>`;
//! 2. a symlink `..data_tmp -> that folder` is renamed over `..data` (rename(2) is atomic);
//! 3. each key is a symlink `key -> ..data/key`, created once and never rewritten;
//! 4. the previous folder, and the symlinks of keys no longer present, are removed.
//!
//! A reader that resolves `..data` once sees one whole version; one opening `key` sees a
//! whole file of some version.

use std::{
    collections::BTreeSet,
    io::Write,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use super::files::{Files, WriteError};

pub const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

fn err(what: &'static str, path: &Path, source: std::io::Error) -> WriteError {
    WriteError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The kubelet's folder name for time `t` (UTC): `..2006_01_02_15_04_05.<nanos>`.
pub fn folder_name(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "..{y:04}_{m:02}_{day:02}_{:02}_{:02}_{:02}.{:09}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes `files` into `dir` (created if missing) and returns the folder now behind `..data`.
pub fn write(dir: &Path, files: &Files) -> Result<String, WriteError> {
    std::fs::create_dir_all(dir).map_err(|e| err("cannot create", dir, e))?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let old_keys = visible_links(dir)?;
    for key in files.keys() {
        let path = dir.join(key);
        if !old_keys.contains(key) && path.symlink_metadata().is_ok() {
            return Err(WriteError::Foreign { path });
        }
    }

    // 1. A fresh folder; the clock's nanoseconds make a clash unlikely, a retry settles it.
    let mut name = folder_name(SystemTime::now());
    while dir.join(&name).exists() {
        name = folder_name(SystemTime::now());
    }
    let folder = dir.join(&name);
    std::fs::create_dir(&folder).map_err(|e| err("cannot create", &folder, e))?;
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| err("cannot chmod", &folder, e))?;
    for (key, file) in files {
        let path = folder.join(key);
        let mut f = std::fs::File::create(&path).map_err(|e| err("cannot create", &path, e))?;
        // Explicitly, since the umask applies to create's mode.
        f.set_permissions(std::fs::Permissions::from_mode(file.mode))
            .map_err(|e| err("cannot chmod", &path, e))?;
        f.write_all(&file.bytes)
            .map_err(|e| err("cannot write", &path, e))?;
    }

    // 2. The swap.
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&name, &tmp).map_err(|e| err("cannot create", &tmp, e))?;
    std::fs::rename(&tmp, dir.join(DATA)).map_err(|e| err("cannot rename", &tmp, e))?;

    // 3. New keys' symlinks.
    for key in files.keys().filter(|k| !old_keys.contains(*k)) {
        let path = dir.join(key);
        symlink(Path::new(DATA).join(key), &path).map_err(|e| err("cannot create", &path, e))?;
    }

    // 4. Clean up: what is gone is no longer reachable through `..data`.
    if let Some(old) = old.filter(|o| o.as_os_str() != name.as_str()) {
        let old = dir.join(old);
        if old.starts_with(dir)
            && old
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".."))
        {
            std::fs::remove_dir_all(&old).map_err(|e| err("cannot remove", &old, e))?;
        }
    }
    for key in old_keys.iter().filter(|k| !files.contains_key(*k)) {
        let path = dir.join(key);
        std::fs::remove_file(&path).map_err(|e| err("cannot remove", &path, e))?;
    }
    Ok(name)
}

/// Keys whose symlinks this writer made (`key -> ..data/key`).
fn visible_links(dir: &Path) -> Result<BTreeSet<String>, WriteError> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(|e| err("cannot read", dir, e))? {
        let entry = entry.map_err(|e| err("cannot read", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            continue;
        }
        if let Ok(target) = std::fs::read_link(entry.path())
            && target == Path::new(DATA).join(&name)
        {
            out.insert(name);
        }
    }
    Ok(out)
}

/// Whether `dir` holds a version written by this writer or the kubelet.
pub fn has_data(dir: &Path) -> bool {
    dir.join(DATA).symlink_metadata().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::files::File;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs
            .iter()
            .map(|(k, v)| {
                let f = File {
                    bytes: v.as_bytes().to_vec(),
                    mode: 0o640,
                };
                (k.to_string(), f)
            })
            .collect()
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kr-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn folder_names_are_the_kubelets() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 42);
        assert_eq!(folder_name(t), "..2023_11_14_22_13_20.000000042");
        assert_eq!(folder_name(UNIX_EPOCH), "..1970_01_01_00_00_00.000000000");
        // A leap day.
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert!(folder_name(t).starts_with("..2000_02_29_"));
    }

    #[test]
    fn layout_and_key_removal() {
        let dir = tempdir("layout");
        let first = write(&dir, &files(&[("a", "1"), ("b", "2")])).unwrap();
        assert_eq!(
            std::fs::read_link(dir.join(DATA)).unwrap(),
            Path::new(&first)
        );
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "2");
        let mode = std::fs::metadata(dir.join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);

        let second = write(&dir, &files(&[("a", "3"), ("c", "4")])).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert_eq!(std::fs::read_to_string(dir.join("c")).unwrap(), "4");
        assert!(
            dir.join("b").symlink_metadata().is_err(),
            "removed key disappears"
        );
        assert!(!dir.join(&first).exists(), "old folder removed");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [second.as_str(), "..data", "a", "c"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_files_are_not_overwritten() {
        let dir = tempdir("foreign");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), "mine").unwrap();
        let e = write(&dir, &files(&[("a", "1")])).unwrap_err();
        assert!(
            matches!(&e, WriteError::Foreign { path } if *path == dir.join("a")),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("not written by kube-reloader"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "mine");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
