//! The collector's view: each watch's objects as placed, which watches have listed, and
//! the files written so far; and what one sync did.

use std::{collections::BTreeMap, path::PathBuf};

use super::{
    super::{files::File, objref::ObjectRef},
    place::{self, Naming, Placed},
    plan::{self, Collision, Op},
    source::{Msg, Seen},
};

pub struct State {
    naming: Naming,
    /// Each watch as logs name it (`configmaps in NS`).
    names: Vec<String>,
    /// Per watch: its objects as of its last list and the events since.
    objects: Vec<BTreeMap<ObjectRef, Placed>>,
    listed: Vec<bool>,
    last_error: Vec<Option<String>>,
    /// The files written (or found as wanted), so a removal touches only our own.
    pub written: BTreeMap<PathBuf, File>,
}

impl State {
    pub fn new(naming: Naming, names: Vec<String>) -> Self {
        let streams = names.len();
        State {
            naming,
            names,
            objects: vec![BTreeMap::new(); streams],
            listed: vec![false; streams],
            last_error: vec![None; streams],
            written: BTreeMap::new(),
        }
    }

    /// Whether every watch has listed once.
    pub fn complete(&self) -> bool {
        self.listed.iter().all(|l| *l)
    }

    /// The watches that have not listed yet, with their last error.
    pub fn pending(&self) -> Vec<String> {
        (0..self.listed.len())
            .filter(|i| !self.listed[*i])
            .map(|i| match &self.last_error[i] {
                Some(e) => format!("{} (last error: {e})", self.names[i]),
                None => self.names[i].clone(),
            })
            .collect()
    }

    fn placed(&self, object: &ObjectRef, seen: &Seen) -> Placed {
        let p = place::place(&self.naming, object, &seen.annotations, &seen.files);
        for (key, why) in &p.skipped {
            tracing::warn!(%object, key, "key skipped: {why}");
        }
        for path in p.files.keys() {
            if place::outside(&self.naming.dir, path) {
                tracing::debug!(%object, path = %path.display(), "file outside the folder, as its annotation says");
            }
        }
        p
    }

    /// Takes one message; `true` when the objects changed.
    pub fn apply(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Listed { stream, objects } => {
                let placed = objects
                    .iter()
                    .map(|(o, seen)| (o.clone(), self.placed(o, seen)))
                    .collect();
                let changed = self.objects[stream] != placed || !self.listed[stream];
                self.objects[stream] = placed;
                self.listed[stream] = true;
                self.last_error[stream] = None;
                changed
            }
            Msg::Applied {
                stream,
                object,
                seen,
            } => {
                let placed = self.placed(&object, &seen);
                self.objects[stream].insert(object, placed.clone()) != Some(placed)
            }
            Msg::Deleted { stream, object } => {
                tracing::info!(%object, "deleted or no longer labelled; its files go");
                self.objects[stream].remove(&object).is_some()
            }
            Msg::Error { stream, error } => {
                tracing::warn!(watch = %self.names[stream], %error, "watch failed; retrying");
                self.last_error[stream] = Some(error);
                false
            }
        }
    }

    /// The operations bringing the folders up to date, and the paths claimed twice.
    pub fn plan(&self) -> (Vec<Op>, Vec<Collision>) {
        let all = self.objects.iter().flat_map(|m| m.iter());
        let (want, collisions) = plan::desired(all);
        let want = want.into_iter().map(|(p, (_, f))| (p, f)).collect();
        (plan::diff(&want, &self.written), collisions)
    }
}

/// What one sync did to the files.
#[derive(Debug, Default)]
pub struct Changes {
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub failed: usize,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.created + self.updated + self.removed > 0
    }

    /// Whether the app is to be told. After the first sync, on any change; the first only
    /// when it replaced or removed a file the app may have read (files created in an empty
    /// folder are what the app starts with, as k8s-sidecar's REQ_SKIP_INIT).
    pub fn reload(&self, first: bool) -> bool {
        if first {
            self.updated + self.removed > 0
        } else {
            self.any()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inpod::{files::Files, objref::Kind};

    fn state() -> State {
        let naming = Naming {
            dir: "/d".into(),
            annotation: "dir".into(),
            unique: false,
        };
        State::new(
            naming,
            vec!["configmaps in ns".into(), "secrets in ns".into()],
        )
    }

    fn obj(name: &str) -> ObjectRef {
        ObjectRef {
            kind: Kind::ConfigMap,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn seen(key: &str, content: &str) -> Seen {
        let f = File {
            bytes: content.as_bytes().to_vec(),
            mode: 0o644,
        };
        let files: Files = [(key.to_string(), f)].into();
        Seen {
            annotations: BTreeMap::new(),
            files,
        }
    }

    fn paths(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Write(p, _) => format!("write {}", p.display()),
                Op::Remove(p) => format!("remove {}", p.display()),
            })
            .collect()
    }

    /// Applies the plan as a successful sync would.
    fn sync(s: &mut State) -> Vec<String> {
        let (ops, _) = s.plan();
        for op in &ops {
            match op {
                Op::Write(p, f) => {
                    s.written.insert(p.clone(), f.clone());
                }
                Op::Remove(p) => {
                    s.written.remove(p);
                }
            }
        }
        paths(&ops)
    }

    #[test]
    fn complete_once_every_watch_listed() {
        let mut s = state();
        let listed = |stream, objects| Msg::Listed { stream, objects };
        assert!(s.apply(listed(0, vec![(obj("a"), seen("a.json", "1"))])));
        assert!(!s.complete());
        assert_eq!(s.pending().len(), 1);
        assert!(s.apply(listed(1, vec![])), "a first empty list counts");
        assert!(s.complete());
        assert_eq!(sync(&mut s), ["write /d/a.json"]);
    }

    #[test]
    fn a_relist_drops_what_vanished_meanwhile() {
        let mut s = state();
        let objects = vec![
            (obj("a"), seen("a.json", "1")),
            (obj("b"), seen("b.json", "1")),
        ];
        s.apply(Msg::Listed { stream: 0, objects });
        s.apply(Msg::Listed {
            stream: 1,
            objects: vec![],
        });
        sync(&mut s);
        // The watch was lost; the relist shows b changed and a gone.
        let objects = vec![(obj("b"), seen("b.json", "2"))];
        assert!(s.apply(Msg::Listed { stream: 0, objects }));
        assert_eq!(sync(&mut s), ["write /d/b.json", "remove /d/a.json"]);
        // The same list again changes nothing.
        let objects = vec![(obj("b"), seen("b.json", "2"))];
        assert!(!s.apply(Msg::Listed { stream: 0, objects }));
        assert!(sync(&mut s).is_empty());
    }

    #[test]
    fn events_update_and_delete() {
        let mut s = state();
        s.apply(Msg::Listed {
            stream: 0,
            objects: vec![],
        });
        let applied = |c| Msg::Applied {
            stream: 0,
            object: obj("a"),
            seen: seen("a.json", c),
        };
        assert!(s.apply(applied("1")));
        assert!(!s.apply(applied("1")), "the same content is no change");
        let mut moved = seen("a.json", "1");
        moved.annotations.insert("dir".into(), "sub".into());
        s.apply(Msg::Applied {
            stream: 0,
            object: obj("a"),
            seen: seen("a.json", "1"),
        });
        sync(&mut s);
        s.apply(Msg::Applied {
            stream: 0,
            object: obj("a"),
            seen: moved,
        });
        assert_eq!(
            sync(&mut s),
            ["write /d/sub/a.json", "remove /d/a.json"],
            "a new folder annotation moves the file"
        );
        assert!(s.apply(Msg::Deleted {
            stream: 0,
            object: obj("a")
        }));
        assert_eq!(sync(&mut s), ["remove /d/sub/a.json"]);
        let err = Msg::Error {
            stream: 1,
            error: "forbidden".into(),
        };
        assert!(!s.apply(err));
        assert_eq!(s.pending(), ["secrets in ns (last error: forbidden)"]);
    }

    #[test]
    fn the_first_sync_reloads_only_for_what_the_app_may_have_read() {
        let created = Changes {
            created: 2,
            ..Default::default()
        };
        assert!(!created.reload(true) && created.reload(false));
        let updated = Changes {
            updated: 1,
            ..Default::default()
        };
        assert!(updated.reload(true));
        assert!(!Changes::default().reload(false));
    }
}
