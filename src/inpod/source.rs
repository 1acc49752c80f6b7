//! One watch per named object, turned into "its files are now X" messages. kube-runtime's
//! watcher relists after a lost watch or 410 Gone, so a change made meanwhile is still
//! seen. Each watch carries the field selector `metadata.name=NAME`, which lets RBAC grant
//! list and watch on the named objects only (`resourceNames`).

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, runtime::watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::shared::watcher::Step;

use super::{
    files::{self, Files},
    objref::{Kind, ObjectRef},
};

#[derive(Debug)]
pub enum SourceMsg {
    /// The object's files as of now; `None`: it does not exist.
    Object { idx: usize, files: Option<Files> },
    /// The watch failed (it is retried with backoff).
    Error { idx: usize, error: String },
}

/// Spawns a watch for each object; messages carry the object's index in `refs`. Nothing
/// joins them: a watch ends when its next message finds the receiver gone.
pub fn spawn(client: &Client, refs: &[ObjectRef], modes: (u32, u32), tx: mpsc::Sender<SourceMsg>) {
    let (cm_mode, secret_mode) = modes;
    for (idx, r) in refs.iter().enumerate() {
        let fields = format!("metadata.name={}", r.name);
        let client = client.clone();
        let tx = tx.clone();
        match r.kind {
            Kind::ConfigMap => {
                let api = Api::<ConfigMap>::namespaced(client, &r.namespace);
                let to_files = move |cm: &ConfigMap| files::of_configmap(cm, cm_mode);
                tokio::spawn(run(api, fields, idx, to_files, tx));
            }
            Kind::Secret => {
                let api = Api::<Secret>::namespaced(client, &r.namespace);
                let to_files = move |s: &Secret| files::of_secret(s, secret_mode);
                tokio::spawn(run(api, fields, idx, to_files, tx));
            }
        }
    }
}

async fn run<K>(
    api: Api<K>,
    fields: String,
    idx: usize,
    to_files: impl Fn(&K) -> Files,
    tx: mpsc::Sender<SourceMsg>,
) where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let cfg = watcher::Config::default().fields(&fields);
    let mut stream = std::pin::pin!(crate::shared::watcher::events(api, cfg));
    // Whether the (re)list in progress has shown the object.
    let mut listed = false;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(Step::Event(ev)) => Ok(ev),
            // 410 Gone: the watcher lists again at once; nothing is wrong.
            Ok(Step::Expired(_)) => continue,
            Err(e) => Err(e),
        };
        let msg = match ev {
            Ok(watcher::Event::Init) => {
                listed = false;
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                listed = true;
                SourceMsg::Object {
                    idx,
                    files: Some(to_files(&o)),
                }
            }
            Ok(watcher::Event::InitDone) if listed => continue,
            Ok(watcher::Event::InitDone) | Ok(watcher::Event::Delete(_)) => {
                SourceMsg::Object { idx, files: None }
            }
            Ok(watcher::Event::Apply(o)) => SourceMsg::Object {
                idx,
                files: Some(to_files(&o)),
            },
            Err(e) => SourceMsg::Error {
                idx,
                error: e.to_string(),
            },
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}
