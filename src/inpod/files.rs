//! Objects as the files they become (one per key: ConfigMap `data` as text, `binaryData`
//! and Secret values as bytes), and the content hash that decides whether anything changed.
//! File contents are never logged: they may be a Secret's.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use sha1::{Digest, Sha1};

/// One file to write.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "File({} bytes, {:o})", self.bytes.len(), self.mode)
    }
}

/// File name → file.
pub type Files = BTreeMap<String, File>;

pub fn of_configmap(cm: &ConfigMap, mode: u32) -> Files {
    let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
    text.chain(binary)
        .map(|(k, v)| {
            (
                k.clone(),
                File {
                    bytes: v.to_vec(),
                    mode,
                },
            )
        })
        .collect()
}

pub fn of_secret(s: &Secret, mode: u32) -> Files {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                File {
                    bytes: v.0.clone(),
                    mode,
                },
            )
        })
        .collect()
}

/// A key that cannot be a file name (`check_key`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} cannot be a file name")]
pub struct BadKey {
    pub key: String,
}

/// Why the objects' files could not be written: they do not merge into one directory
/// (`merge`), or the directory refused them (`atomic::write`). `object` names an object as
/// `ObjectRef` shows it.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{object}: {source}")]
    Key { object: String, source: BadKey },
    #[error("key {key:?} is in both {first} and {second}; each file needs one source")]
    Collision {
        key: String,
        first: String,
        second: String,
    },
    /// A file in our way that we did not write.
    #[error(
        "{} exists and was not written by kube-reloader; use an empty directory",
        .path.display()
    )]
    Foreign { path: PathBuf },
    /// A file operation failed; `what` is the operation ("cannot create", "cannot rename" …).
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Keys become names in the directory: the API allows `[-._a-zA-Z0-9]+`, and names starting
/// with `..` are the writer's own (`..data`), so those are refused rather than written.
pub fn check_key(key: &str) -> Result<(), BadKey> {
    let ok = !key.is_empty()
        && key != "."
        && !key.starts_with("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BadKey {
            key: key.to_owned(),
        })
    }
}

/// The union of several objects' files; a key present in two of them is an error (as in
/// a projected volume), naming both.
pub fn merge<'a>(
    objects: impl IntoIterator<Item = (String, &'a Files)>,
) -> Result<Files, WriteError> {
    let mut out = Files::new();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (what, files) in objects {
        for (key, file) in files {
            check_key(key).map_err(|source| WriteError::Key {
                object: what.clone(),
                source,
            })?;
            if let Some(first) = owner.insert(key.clone(), what.clone()) {
                return Err(WriteError::Collision {
                    key: key.clone(),
                    first,
                    second: what,
                });
            }
            out.insert(key.clone(), file.clone());
        }
    }
    Ok(out)
}

/// A SHA-1 over names and contents, length-prefixed so that no two different sets of files
/// hash alike (modes are not part of it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentHash([u8; 20]);

impl std::fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

pub fn hash<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> ContentHash {
    let mut h = Sha1::new();
    for (name, bytes) in entries {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    ContentHash(h.finalize().into())
}

pub fn hash_files(files: &Files) -> ContentHash {
    hash(files.iter().map(|(k, f)| (k.as_str(), &f.bytes[..])))
}

/// What a directory shows the app: its visible files (not `..`-prefixed), symlinks
/// followed, sorted by name; sub-directories are skipped (watching is not recursive).
pub fn read_dir(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            // A dangling symlink (a key being removed) or a directory.
            _ => continue,
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                out.insert(name, bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The hash of several directories' contents (each prefixed by its path).
pub fn hash_dirs(dirs: &[impl AsRef<Path>]) -> std::io::Result<ContentHash> {
    let mut all = Vec::new();
    for dir in dirs {
        let prefix = dir.as_ref().to_string_lossy().into_owned();
        for (name, bytes) in read_dir(dir.as_ref())? {
            all.push((format!("{prefix}/{name}"), bytes));
        }
    }
    Ok(hash(all.iter().map(|(n, b)| (n.as_str(), &b[..]))))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;

    fn cm(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            binary_data: Some(
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn objects_become_files() {
        let f = of_configmap(&cm(&[("a.conf", "x=1")], &[("blob", &[0, 255])]), 0o644);
        assert_eq!(f["a.conf"].bytes, b"x=1");
        assert_eq!(f["blob"].bytes, [0, 255], "binaryData is written as bytes");
        assert_eq!(f["blob"].mode, 0o644);
        let s = Secret {
            data: Some([("pw".to_string(), ByteString(b"s3cr3t".to_vec()))].into()),
            ..Default::default()
        };
        let f = of_secret(&s, 0o600);
        assert_eq!(f["pw"].bytes, b"s3cr3t", "Secret values are decoded");
        assert_eq!(
            format!("{:?}", f["pw"]),
            "File(6 bytes, 600)",
            "Debug hides content"
        );
    }

    #[test]
    fn merge_refuses_collisions_and_bad_keys() {
        let a = of_configmap(&cm(&[("k", "1")], &[]), 0o644);
        let b = of_configmap(&cm(&[("k", "2")], &[]), 0o644);
        let err = merge([("configmap ns/a".into(), &a), ("configmap ns/b".into(), &b)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("configmap ns/a") && err.contains("configmap ns/b"),
            "{err}"
        );
        let c = of_configmap(&cm(&[("other", "3")], &[]), 0o644);
        assert_eq!(
            merge([("a".into(), &a), ("c".into(), &c)]).unwrap().len(),
            2
        );
        let d = of_configmap(&cm(&[("..data", "4")], &[]), 0o644);
        let err = merge([("configmap ns/d".into(), &d)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configmap ns/d: key \"..data\" cannot be a file name"
        );
        for bad in ["..data", "..x", ".", "a/b", ""] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(".hidden").is_ok());
    }

    #[test]
    fn hash_is_unambiguous_and_ignores_modes() {
        let h = |pairs: &[(&str, &[u8])]| hash(pairs.iter().copied());
        assert_ne!(h(&[("a", b"bc")]), h(&[("ab", b"c")]));
        assert_ne!(h(&[("a", b"")]), h(&[]));
        let one = of_configmap(&cm(&[("a", "1")], &[]), 0o644);
        let other = of_configmap(&cm(&[("a", "1")], &[]), 0o600);
        assert_eq!(hash_files(&one), hash_files(&other));
    }
}
