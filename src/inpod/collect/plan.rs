//! What the folders should hold (every collected object's files) against what was written:
//! the files to write and those to remove. Pure, so collisions and removals are tested
//! without a file system.

use std::{collections::BTreeMap, path::PathBuf};

use super::{super::files::File, super::objref::ObjectRef, place::Placed};

/// Two objects with a file at the same path: the first in object order is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub path: PathBuf,
    pub written: ObjectRef,
    pub dropped: ObjectRef,
}

/// Every path and its file; a path claimed twice keeps the first object's file (objects are
/// ordered by kind, namespace, name: the same choice after every restart).
pub fn desired<'a>(
    objects: impl IntoIterator<Item = (&'a ObjectRef, &'a Placed)>,
) -> (BTreeMap<PathBuf, (ObjectRef, File)>, Vec<Collision>) {
    let mut sorted: Vec<_> = objects.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: BTreeMap<PathBuf, (ObjectRef, File)> = BTreeMap::new();
    let mut collisions = Vec::new();
    for (object, placed) in sorted {
        for (path, file) in &placed.files {
            match out.get(path) {
                Some((first, _)) => collisions.push(Collision {
                    path: path.clone(),
                    written: first.clone(),
                    dropped: object.clone(),
                }),
                None => {
                    out.insert(path.clone(), (object.clone(), file.clone()));
                }
            }
        }
    }
    (out, collisions)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write(PathBuf, File),
    Remove(PathBuf),
}

/// The operations that take the folders from `written` to `want`.
pub fn diff(want: &BTreeMap<PathBuf, File>, written: &BTreeMap<PathBuf, File>) -> Vec<Op> {
    let writes = want
        .iter()
        .filter(|(path, file)| written.get(*path) != Some(file))
        .map(|(path, file)| Op::Write(path.clone(), file.clone()));
    let removals = written
        .keys()
        .filter(|path| !want.contains_key(*path))
        .map(|path| Op::Remove(path.clone()));
    writes.chain(removals).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::objref::Kind;

    fn obj(name: &str) -> ObjectRef {
        ObjectRef {
            kind: Kind::ConfigMap,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn file(s: &str) -> File {
        File {
            bytes: s.as_bytes().to_vec(),
            mode: 0o644,
        }
    }

    fn placed(files: &[(&str, &str)]) -> Placed {
        Placed {
            files: files.iter().map(|(p, c)| (p.into(), file(c))).collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn a_path_claimed_twice_keeps_the_first_object() {
        let (a, b) = (obj("a"), obj("b"));
        let (pa, pb) = (
            placed(&[("/d/x", "a")]),
            placed(&[("/d/x", "b"), ("/d/y", "b")]),
        );
        let (want, collisions) = desired([(&b, &pb), (&a, &pa)]);
        assert_eq!(want[&PathBuf::from("/d/x")], (a.clone(), file("a")));
        assert_eq!(want.len(), 2);
        assert_eq!(
            collisions,
            [Collision {
                path: "/d/x".into(),
                written: a,
                dropped: b
            }]
        );
    }

    #[test]
    fn only_changes_are_written_and_vanished_files_removed() {
        let written: BTreeMap<PathBuf, File> = [
            ("/d/same".into(), file("1")),
            ("/d/changed".into(), file("1")),
            ("/d/gone".into(), file("1")),
        ]
        .into();
        let mut want = written.clone();
        want.remove(&PathBuf::from("/d/gone"));
        want.insert("/d/changed".into(), file("2"));
        want.insert("/d/new".into(), file("3"));
        let mut chmod = file("1");
        chmod.mode = 0o600;
        want.insert("/d/same".into(), file("1"));
        assert_eq!(
            diff(&want, &written),
            [
                Op::Write("/d/changed".into(), file("2")),
                Op::Write("/d/new".into(), file("3")),
                Op::Remove("/d/gone".into()),
            ]
        );
        want.insert("/d/same".into(), chmod.clone());
        assert!(diff(&want, &written).contains(&Op::Write("/d/same".into(), chmod)));
        assert!(diff(&written, &written).is_empty());
    }
}
