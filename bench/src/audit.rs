//! API cost from the API server's audit log: `hack/cluster` logs every request of the
//! operator identity (and nobody else's) once, when its response is complete, so a window
//! of the log is exactly what the operator under test asked in that time, whatever binary
//! it is.

use std::{
    collections::BTreeMap,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::cluster::Result;

/// The categories a request is counted in, in the order results show them.
pub const CATEGORIES: [&str; 8] = [
    "GET",
    "LIST",
    "WATCH",
    "PATCH",
    "PUT",
    "POST events",
    "state writes",
    "other",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    verb: String,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    name: String,
}

/// Where a request counts: Events written (created or, as client-go aggregates repeats,
/// patched), writes of kube-reloader's persisted state (`kube-reloader-state-NN`,
/// `kube-reloader-jobs-NN`, a Lease), else by verb.
fn category(e: &Event) -> &'static str {
    let o = e.object_ref.as_ref();
    let resource = o.map_or("", |o| o.resource.as_str());
    let name = o.map_or("", |o| o.name.as_str());
    let write = matches!(e.verb.as_str(), "create" | "patch" | "update" | "delete");
    if resource == "events" && matches!(e.verb.as_str(), "create" | "patch") {
        return "POST events";
    }
    let state = (resource == "configmaps" && name.starts_with("kube-reloader-state-"))
        || (resource == "secrets" && name.starts_with("kube-reloader-jobs-"))
        || resource == "leases";
    if write && state {
        return "state writes";
    }
    match e.verb.as_str() {
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "patch" => "PATCH",
        "update" => "PUT",
        _ => "other",
    }
}

/// Counts the requests in audit-log lines, by category.
fn count(lines: &str) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for line in lines.lines() {
        if let Ok(e) = serde_json::from_str::<Event>(line) {
            *out.entry(category(&e)).or_default() += 1;
        }
    }
    out
}

/// A window of the audit log, opened at its current end.
pub struct Window {
    path: PathBuf,
    from: u64,
}

impl Window {
    pub fn open(path: &Path) -> Result<Window> {
        let from = std::fs::metadata(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?
            .len();
        Ok(Window {
            path: path.to_owned(),
            from,
        })
    }

    /// The requests logged since `open`, by category (a watch counts when it ends).
    pub fn close(self) -> Result<BTreeMap<&'static str, u64>> {
        let mut f = std::fs::File::open(&self.path).map_err(|e| e.to_string())?;
        f.seek(SeekFrom::Start(self.from))
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        f.read_to_string(&mut text).map_err(|e| e.to_string())?;
        Ok(count(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(verb: &str, resource: &str, name: &str) -> String {
        format!(
            r#"{{"kind":"Event","stage":"ResponseComplete","verb":"{verb}","objectRef":{{"resource":"{resource}","namespace":"ns","name":"{name}"}},"user":{{"username":"kube-reloader-bench-operator"}}}}"#
        )
    }

    #[test]
    fn requests_by_category() {
        let log = [
            line("get", "deployments", "app"),
            line("list", "deployments", ""),
            line("patch", "deployments", "app"),
            line("create", "events", "app.1"),
            line("patch", "events", "app.1"),
            line("patch", "configmaps", "kube-reloader-state-07"),
            line("get", "configmaps", "kube-reloader-state-07"),
            line("update", "leases", "kube-reloader"),
            line("create", "secrets", "kube-reloader-jobs-01"),
            line("update", "rollouts", "r"),
            line("delete", "jobs", "j"),
            "not json".into(),
        ]
        .join("\n");
        let c = count(&log);
        let want = [
            ("GET", 2),
            ("LIST", 1),
            ("PATCH", 1),
            ("POST events", 2),
            ("state writes", 3),
            ("PUT", 1),
            ("other", 1),
        ];
        for (k, v) in want {
            assert_eq!(c.get(k), Some(&v), "{k}: {c:?}");
        }
        assert_eq!(c.values().sum::<u64>(), 11);
    }
}
