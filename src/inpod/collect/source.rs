//! Label-selected watches, one per kind and namespace (or over all namespaces). kube's
//! watcher relists after a lost watch or a 410 Gone; each complete (re)list is sent whole,
//! so objects deleted or unlabelled while the watch was down are dropped by the collector
//! (k8s-sidecar's watch, dying silently, misses them). An object losing the label is a
//! delete to a label-selected watch.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, Resource, ResourceExt, runtime::watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::shared::watcher::Step;

use super::super::{
    files::{self, Files},
    objref::{Kind, ObjectRef},
};

/// What the collector needs of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub annotations: BTreeMap<String, String>,
    pub files: Files,
}

#[derive(Debug)]
pub enum Msg {
    /// A (re)list of watch `stream` completed: exactly these objects match now.
    Listed {
        stream: usize,
        objects: Vec<(ObjectRef, Seen)>,
    },
    Applied {
        stream: usize,
        object: ObjectRef,
        seen: Seen,
    },
    Deleted {
        stream: usize,
        object: ObjectRef,
    },
    /// The watch failed (it is retried with backoff).
    Error {
        stream: usize,
        error: String,
    },
}

/// One watch: a kind in a namespace (`None`: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub kind: Kind,
    pub namespace: Option<String>,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}s in {ns}", self.kind.as_str()),
            None => write!(f, "{}s in all namespaces", self.kind.as_str()),
        }
    }
}

/// Spawns the watches; messages carry the stream's index. A watch ends when its next
/// message finds the receiver gone.
pub fn spawn(
    client: &Client,
    streams: &[Stream],
    selector: &str,
    modes: (u32, u32),
    tx: mpsc::Sender<Msg>,
) {
    let (cm_mode, secret_mode) = modes;
    for (idx, s) in streams.iter().enumerate() {
        let w = Watch {
            cfg: watcher::Config::default().labels(selector),
            stream: idx,
            name: s.to_string(),
            kind: s.kind,
        };
        let tx = tx.clone();
        match s.kind {
            Kind::ConfigMap => {
                let api = api::<ConfigMap>(client, s.namespace.as_deref());
                let to_files = move |cm: &ConfigMap| files::of_configmap(cm, cm_mode);
                tokio::spawn(run(api, w, to_files, tx));
            }
            Kind::Secret => {
                let api = api::<Secret>(client, s.namespace.as_deref());
                let to_files = move |s: &Secret| files::of_secret(s, secret_mode);
                tokio::spawn(run(api, w, to_files, tx));
            }
        }
    }
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// One watch's settings: its index in the streams, its name for logs.
struct Watch {
    cfg: watcher::Config,
    stream: usize,
    name: String,
    kind: Kind,
}

async fn run<K>(api: Api<K>, w: Watch, to_files: impl Fn(&K) -> Files, tx: mpsc::Sender<Msg>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let (stream, kind) = (w.stream, w.kind);
    let object = |o: &K| ObjectRef {
        kind,
        namespace: o.namespace().unwrap_or_default(),
        name: o.name_any(),
    };
    let seen = |o: &K| Seen {
        annotations: o.annotations().clone(),
        files: to_files(o),
    };
    let mut events = std::pin::pin!(crate::shared::watcher::events(api, w.cfg));
    // The (re)list in progress.
    let mut listing = Vec::new();
    while let Some(ev) = events.next().await {
        let msg = match ev {
            // 410 Gone: the watcher lists again at once, and that list replaces what this
            // watch had, so what vanished meanwhile goes.
            Ok(Step::Expired(_)) => {
                tracing::info!(watch = %w.name, "watch expired (410 Gone); listing again");
                continue;
            }
            Ok(Step::Event(watcher::Event::Init)) => {
                listing.clear();
                continue;
            }
            Ok(Step::Event(watcher::Event::InitApply(o))) => {
                listing.push((object(&o), seen(&o)));
                continue;
            }
            Ok(Step::Event(watcher::Event::InitDone)) => Msg::Listed {
                stream,
                objects: std::mem::take(&mut listing),
            },
            Ok(Step::Event(watcher::Event::Apply(o))) => Msg::Applied {
                stream,
                object: object(&o),
                seen: seen(&o),
            },
            Ok(Step::Event(watcher::Event::Delete(o))) => Msg::Deleted {
                stream,
                object: object(&o),
            },
            Err(e) => Msg::Error {
                stream,
                error: e.to_string(),
            },
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}
