//! Where an object's files go, as k8s-sidecar places them: into `--dir`, or into the folder
//! its folder annotation names (an absolute path as it is, a relative one under `--dir`),
//! each key a file named as the key, or `namespace_NS.KIND_NAME.KEY` with unique names.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::super::{
    files::{self, File, Files},
    objref::ObjectRef,
};

/// How objects are placed (the flags).
#[derive(Debug, Clone)]
pub struct Naming {
    pub dir: PathBuf,
    pub annotation: String,
    pub unique: bool,
}

/// An object's files with their paths; `skipped`: keys that cannot be written, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    pub files: BTreeMap<PathBuf, File>,
    pub skipped: Vec<(String, &'static str)>,
}

/// The folder of an object with these annotations.
pub fn folder(n: &Naming, annotations: &BTreeMap<String, String>) -> PathBuf {
    match annotations.get(&n.annotation) {
        // `Path::join` keeps an absolute path as it is, as Python's `os.path.join` does.
        Some(dest) if !dest.trim().is_empty() => n.dir.join(dest.trim()),
        _ => n.dir.clone(),
    }
}

/// k8s-sidecar's unique file name.
pub fn file_name(object: &ObjectRef, key: &str, unique: bool) -> String {
    if unique {
        format!(
            "namespace_{}.{}_{}.{key}",
            object.namespace,
            object.kind.as_str(),
            object.name
        )
    } else {
        key.to_owned()
    }
}

pub fn place(
    n: &Naming,
    object: &ObjectRef,
    annotations: &BTreeMap<String, String>,
    data: &Files,
) -> Placed {
    let dir = folder(n, annotations);
    let mut out = Placed::default();
    for (key, file) in data {
        if files::check_key(key).is_err() {
            out.skipped.push((key.clone(), "not a file name"));
        } else if key.ends_with(".url") {
            // k8s-sidecar downloads the URL in such a key; we write only what the object holds.
            out.skipped
                .push((key.clone(), "`.url` keys (downloads) are not supported"));
        } else {
            let path = dir.join(file_name(object, key, n.unique));
            out.files.insert(path, file.clone());
        }
    }
    out
}

/// Whether `path` lies under `dir` (for logs: files outside `--dir` are allowed, as in
/// k8s-sidecar, but worth saying).
pub fn outside(dir: &Path, path: &Path) -> bool {
    !path.starts_with(dir)
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::objref::Kind;

    fn naming(unique: bool) -> Naming {
        Naming {
            dir: "/dash".into(),
            annotation: "k8s-sidecar-target-directory".into(),
            unique,
        }
    }

    fn obj() -> ObjectRef {
        ObjectRef {
            kind: Kind::Secret,
            namespace: "mon".into(),
            name: "ds".into(),
        }
    }

    fn ann(v: &str) -> BTreeMap<String, String> {
        [("k8s-sidecar-target-directory".to_string(), v.to_string())].into()
    }

    #[test]
    fn the_annotation_picks_the_folder() {
        let n = naming(false);
        assert_eq!(folder(&n, &BTreeMap::new()), Path::new("/dash"));
        assert_eq!(folder(&n, &ann("team-a")), Path::new("/dash/team-a"));
        assert_eq!(folder(&n, &ann("a/b/")), Path::new("/dash/a/b"));
        assert_eq!(folder(&n, &ann("/elsewhere")), Path::new("/elsewhere"));
        assert_eq!(folder(&n, &ann(" ")), Path::new("/dash"), "blank: --dir");
        let other: BTreeMap<_, _> = [("other".to_string(), "x".to_string())].into();
        assert_eq!(folder(&n, &other), Path::new("/dash"));
        assert!(outside(
            Path::new("/dash"),
            &folder(&n, &ann("/elsewhere")).join("f")
        ));
        assert!(outside(
            Path::new("/dash"),
            &folder(&n, &ann("../x")).join("f")
        ));
        assert!(!outside(
            Path::new("/dash"),
            &folder(&n, &ann("a")).join("f")
        ));
    }

    #[test]
    fn unique_names_are_k8s_sidecars() {
        assert_eq!(file_name(&obj(), "ds.yaml", false), "ds.yaml");
        assert_eq!(
            file_name(&obj(), "ds.yaml", true),
            "namespace_mon.secret_ds.ds.yaml"
        );
        let cm = ObjectRef {
            kind: Kind::ConfigMap,
            ..obj()
        };
        assert_eq!(
            file_name(&cm, "a.json", true),
            "namespace_mon.configmap_ds.a.json"
        );
    }

    #[test]
    fn keys_become_paths_and_bad_ones_are_skipped() {
        let file = File {
            bytes: b"x".to_vec(),
            mode: 0o644,
        };
        let data: Files = ["a.json", "b.json.url", "..data"]
            .iter()
            .map(|k| (k.to_string(), file.clone()))
            .collect();
        let p = place(&naming(true), &obj(), &ann("sub"), &data);
        assert_eq!(
            p.files.keys().collect::<Vec<_>>(),
            [Path::new("/dash/sub/namespace_mon.secret_ds.a.json")]
        );
        let skipped: Vec<_> = p.skipped.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(skipped, ["..data", "b.json.url"]);
    }
}
