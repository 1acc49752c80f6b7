//! Watches turned into compact observations: each object is reduced (configs to a hash,
//! workloads to facts) the moment it arrives and sent to the engine; nothing else is kept.

pub mod csi;

use self::csi::{StatusKey, StatusObs};
use crate::shared::{
    kube::api_served,
    watcher::{Step, events, reason, refused},
};
use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{ConfigMap, Namespace, Secret},
    },
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject},
    runtime::watcher,
};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::operator::{
    health::{Seen, StreamBoard},
    metrics::Metrics,
    model::{
        annotations::AnnotationKeys,
        custom_kinds::CustomKind,
        facts::{self, ConfigEntry, ConfigFlags, WorkloadFacts},
        hash,
        kinds::{ConfigKey, ConfigKind, WorkloadKey, WorkloadKind as W},
        selector::LabelSelector,
    },
    options::Options,
};

/// The key of anything the engine caches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjKey {
    Config(ConfigKey),
    Workload(WorkloadKey),
    /// A namespace selected by `--namespace-selector`.
    Namespace(String),
    /// A namespace whose `kube-reloader.io/auto` is true (`--namespace-opt-in`).
    OptedIn(String),
    /// A CSI SecretProviderClass (for its ignore and match annotations).
    CsiClass(ConfigKey),
    CsiStatus(StatusKey),
}

impl ObjKey {
    pub fn namespace(&self) -> &str {
        match self {
            ObjKey::Config(k) => &k.namespace,
            ObjKey::Workload(k) => &k.namespace,
            ObjKey::Namespace(n) | ObjKey::OptedIn(n) => n,
            ObjKey::CsiClass(k) => &k.namespace,
            ObjKey::CsiStatus(k) => &k.namespace,
        }
    }
}

/// One reduced object.
#[derive(Debug)]
pub enum Obs {
    Config(ConfigKey, ConfigEntry),
    Workload(Box<WorkloadFacts>),
    Namespace(String),
    /// A namespace and whether its `kube-reloader.io/auto` is true.
    NamespaceOptIn(String, bool),
    CsiClass(ConfigKey, ConfigFlags),
    CsiStatus(StatusObs),
}

impl Obs {
    pub fn key(&self) -> ObjKey {
        match self {
            Obs::Config(k, _) => ObjKey::Config(k.clone()),
            Obs::Workload(f) => ObjKey::Workload(f.key.clone()),
            Obs::Namespace(n) => ObjKey::Namespace(n.clone()),
            Obs::NamespaceOptIn(n, _) => ObjKey::OptedIn(n.clone()),
            Obs::CsiClass(k, _) => ObjKey::CsiClass(k.clone()),
            Obs::CsiStatus(s) => ObjKey::CsiStatus(s.key.clone()),
        }
    }
}

/// What a watch stream tells the engine. `stream` identifies the watch (one per
/// resource and namespace scope) so a relist can be diffed against what it listed before.
#[derive(Debug)]
pub enum WatchMsg {
    /// A (re)list starts.
    Init {
        stream: usize,
    },
    /// An object of the (re)list.
    InitApply {
        stream: usize,
        obs: Obs,
    },
    /// The (re)list is complete: objects of this stream not listed are gone.
    InitDone {
        stream: usize,
    },
    Apply {
        stream: usize,
        obs: Obs,
    },
    Delete {
        stream: usize,
        namespace: Option<String>,
        name: String,
    },
    /// The API refused the watch (forbidden or not served); it retries with backoff.
    Refused {
        stream: usize,
        why: String,
    },
}

/// Which objects a stream covers, so a relist knows what it may declare gone.
#[derive(Clone, Debug)]
pub struct StreamScope {
    pub what: Watched,
    pub namespace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watched {
    Namespaces,
    /// Every namespace, for its `kube-reloader.io/auto` (`--namespace-opt-in`).
    NamespaceOptIns,
    Config(ConfigKind),
    Workload(crate::operator::model::kinds::WorkloadKind),
    CsiClasses,
    CsiStatuses,
}

impl Watched {
    /// Stakater's `resource_type` label, for the kinds stakater watches itself.
    pub fn stakater_resource(&self) -> Option<&'static str> {
        match self {
            Watched::Namespaces => Some("namespaces"),
            Watched::Config(k) => Some(k.stakater_resource()),
            Watched::CsiStatuses => Some(ConfigKind::SecretProviderClass.stakater_resource()),
            Watched::Workload(_) | Watched::CsiClasses | Watched::NamespaceOptIns => None,
        }
    }

    /// The kind of object the stream watches (for logs, `/ready` and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Watched::Namespaces | Watched::NamespaceOptIns => "Namespace",
            Watched::Config(k) => k.as_str(),
            Watched::Workload(k) => k.as_str(),
            Watched::CsiClasses => "SecretProviderClass",
            Watched::CsiStatuses => "SecretProviderClassPodStatus",
        }
    }
}

impl StreamScope {
    /// The key of an object of this stream, from its namespace and name.
    pub fn key_of(&self, namespace: Option<String>, name: String) -> Option<ObjKey> {
        Some(match self.what {
            Watched::Namespaces => ObjKey::Namespace(name),
            Watched::NamespaceOptIns => ObjKey::OptedIn(name),
            Watched::Config(kind) => ObjKey::Config(ConfigKey {
                kind,
                namespace: namespace?,
                name,
            }),
            Watched::Workload(kind) => ObjKey::Workload(WorkloadKey {
                kind,
                namespace: namespace?,
                name,
            }),
            Watched::CsiClasses => ObjKey::CsiClass(ConfigKey {
                kind: ConfigKind::SecretProviderClass,
                namespace: namespace?,
                name,
            }),
            Watched::CsiStatuses => ObjKey::CsiStatus(StatusKey {
                namespace: namespace?,
                name,
            }),
        })
    }

    pub fn covers(&self, key: &ObjKey) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| ns == key.namespace());
        ns_ok
            && match (self.what, key) {
                (Watched::Config(k), ObjKey::Config(c)) => c.kind == k,
                (Watched::Workload(k), ObjKey::Workload(w)) => w.kind == k,
                (Watched::Namespaces, ObjKey::Namespace(_)) => true,
                (Watched::NamespaceOptIns, ObjKey::OptedIn(_)) => true,
                (Watched::CsiClasses, ObjKey::CsiClass(_)) => true,
                (Watched::CsiStatuses, ObjKey::CsiStatus(_)) => true,
                _ => false,
            }
    }
}

fn config_key(kind: ConfigKind, meta: &kube::core::ObjectMeta) -> Option<ConfigKey> {
    Some(ConfigKey {
        kind,
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
    })
}

fn config_obs(
    keys: &AnnotationKeys,
    kind: ConfigKind,
    meta: &kube::core::ObjectMeta,
    h: hash::ConfigHash,
) -> Option<Obs> {
    let entry = ConfigEntry {
        hash: h,
        flags: facts::config_flags(keys, meta),
    };
    Some(Obs::Config(config_key(kind, meta)?, entry))
}

/// A workload's facts, marked when its labels match `--workload-selector`.
fn workload_obs(
    facts: Option<WorkloadFacts>,
    selector: &Option<LabelSelector>,
    meta: &kube::core::ObjectMeta,
) -> Option<Obs> {
    let labels = meta.labels.as_ref();
    let f = facts::with_policy(facts?, selector.as_ref(), labels);
    Some(Obs::Workload(Box::new(f)))
}

/// Where the watch tasks send their observations, count their errors and report their
/// health.
#[derive(Clone)]
pub struct Sink {
    pub tx: mpsc::Sender<WatchMsg>,
    pub metrics: Metrics,
    pub health: StreamBoard,
}

/// What one stream's task needs: its id, kind and scope, and where to send and record.
struct Outlet {
    stream: usize,
    kind: &'static str,
    sink: Sink,
    scope: StreamScope,
}

impl Sink {
    fn outlet(&self, stream: usize, scope: &StreamScope) -> Outlet {
        Outlet {
            stream,
            kind: scope.what.kind(),
            sink: self.clone(),
            scope: scope.clone(),
        }
    }
}

/// Spawns one watch task per (resource, namespace) and returns the scopes by stream id.
pub async fn spawn_all(client: &Client, opts: &Options, tx: Sink) -> Vec<StreamScope> {
    let rollouts = opts.argo_rollouts
        && api_served(
            client,
            "argoproj.io/v1alpha1",
            &["rollouts"],
            "--is-Argo-Rollouts",
        )
        .await;
    let csi = opts
        .watched_configs
        .contains(&ConfigKind::SecretProviderClass)
        && csi::installed(client).await;
    for kind in &opts.custom_kinds {
        if let W::Custom(id) = kind {
            discover(client, id.get()).await;
        }
    }
    let namespaces: Vec<Option<String>> = if opts.namespaces.is_empty() {
        vec![None]
    } else {
        opts.namespaces.iter().cloned().map(Some).collect()
    };
    let mut scopes = Vec::new();
    // Global mode only, as in stakater: the selected namespaces, by label, server-side.
    if let (None, Some(sel)) = (&namespaces[0], &opts.namespace_selector) {
        scopes.push(StreamScope {
            what: Watched::Namespaces,
            namespace: None,
        });
        let api: Api<Namespace> = Api::all(client.clone());
        let cfg = watcher::Config::default().labels(sel);
        spawn_stream(api, tx.outlet(0, &scopes[0]), cfg, |n| {
            n.metadata.name.map(Obs::Namespace)
        });
    }
    if opts.namespace_opt_in {
        let id = scopes.len();
        scopes.push(StreamScope {
            what: Watched::NamespaceOptIns,
            namespace: None,
        });
        let api: Api<Namespace> = Api::all(client.clone());
        let cfg = watcher::Config::default();
        spawn_stream(api, tx.outlet(id, &scopes[id]), cfg, |n| {
            let auto = facts::namespace_auto(n.metadata.annotations.as_ref());
            n.metadata.name.map(|name| Obs::NamespaceOptIn(name, auto))
        });
    }
    for ns in &namespaces {
        // Streaming lists (WatchList): the initial state arrives object by object on a
        // watch instead of as 500-object pages, so the list never sits in memory at once.
        let cfg = watcher::Config::default().streaming_lists();
        let cfg_labels = match &opts.resource_label_selector {
            Some(sel) => cfg.clone().labels(sel),
            None => cfg.clone(),
        };
        // SecretProviderClasses are watched below, as two streams.
        let core_kinds = opts
            .watched_configs
            .iter()
            .filter(|k| **k != ConfigKind::SecretProviderClass);
        for kind in core_kinds {
            let id = scopes.len();
            scopes.push(StreamScope {
                what: Watched::Config(*kind),
                namespace: ns.clone(),
            });
            let keys = opts.keys.clone();
            match kind {
                ConfigKind::ConfigMap => spawn_one::<ConfigMap, _>(
                    client,
                    cfg_labels.clone(),
                    tx.outlet(id, &scopes[id]),
                    move |cm| {
                        // Our own state shards are not config: tracking them would make
                        // every flush a change to flush again.
                        if crate::operator::state::is_state_object(&cm.metadata) {
                            return None;
                        }
                        config_obs(
                            &keys,
                            ConfigKind::ConfigMap,
                            &cm.metadata,
                            hash::of_configmap(&cm),
                        )
                    },
                ),
                ConfigKind::Secret => spawn_one::<Secret, _>(
                    client,
                    cfg_labels.clone(),
                    tx.outlet(id, &scopes[id]),
                    move |s| {
                        config_obs(&keys, ConfigKind::Secret, &s.metadata, hash::of_secret(&s))
                    },
                ),
                ConfigKind::SecretProviderClass => {}
            }
        }
        if csi {
            let keys = opts.keys.clone();
            let id = scopes.len();
            scopes.push(StreamScope {
                what: Watched::CsiClasses,
                namespace: ns.clone(),
            });
            let api = dynamic_api(client, ns, &csi::class_resource());
            spawn_stream(api, tx.outlet(id, &scopes[id]), cfg.clone(), move |o| {
                let key = config_key(ConfigKind::SecretProviderClass, &o.metadata)?;
                Some(Obs::CsiClass(key, facts::config_flags(&keys, &o.metadata)))
            });
            let id = scopes.len();
            scopes.push(StreamScope {
                what: Watched::CsiStatuses,
                namespace: ns.clone(),
            });
            let api = dynamic_api(client, ns, &csi::status_resource());
            spawn_stream(api, tx.outlet(id, &scopes[id]), cfg.clone(), |o| {
                csi::status_obs(&o).map(Obs::CsiStatus)
            });
        }
        let keys = opts.keys.clone();
        let mut add = |kind: W| {
            let id = scopes.len();
            let scope = StreamScope {
                what: Watched::Workload(kind),
                namespace: ns.clone(),
            };
            let out = tx.outlet(id, &scope);
            scopes.push(scope);
            out
        };
        let sel = opts.workload_selector.clone();
        let ctx = move || (keys.clone(), sel.clone());
        let ((k1, s1), (k2, s2), (k3, s3)) = (ctx(), ctx(), ctx());
        let ((k4, s4), (k5, s5), (k6, s6)) = (ctx(), ctx(), ctx());
        let out = add(W::Deployment);
        spawn_one::<Deployment, _>(client, cfg.clone(), out, move |d| {
            workload_obs(facts::deployment(&k1, &d), &s1, &d.metadata)
        });
        let out = add(W::StatefulSet);
        spawn_one::<StatefulSet, _>(client, cfg.clone(), out, move |s| {
            workload_obs(facts::statefulset(&k2, &s), &s2, &s.metadata)
        });
        let out = add(W::DaemonSet);
        spawn_one::<DaemonSet, _>(client, cfg.clone(), out, move |d| {
            workload_obs(facts::daemonset(&k3, &d), &s3, &d.metadata)
        });
        // Ignored kinds are not watched at all: the chart drops their RBAC.
        let ignored = &opts.decide.ignored_workload_kinds;
        if !ignored.contains(&W::CronJob) {
            let out = add(W::CronJob);
            spawn_one::<CronJob, _>(client, cfg.clone(), out, move |c| {
                workload_obs(facts::cronjob(&k4, &c), &s4, &c.metadata)
            });
        }
        if !ignored.contains(&W::Job) {
            let out = add(W::Job);
            spawn_one::<Job, _>(client, cfg.clone(), out, move |j| {
                // A Job run by a controller (a CronJob's) is that controller's to roll.
                let owned = j
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true));
                if owned {
                    None
                } else {
                    workload_obs(facts::job(&k5, &j), &s5, &j.metadata)
                }
            });
        }
        if rollouts {
            let out = add(W::Rollout);
            spawn_stream(
                dynamic_api(client, ns, &rollout_resource()),
                out,
                cfg.clone(),
                move |r| workload_obs(facts::rollout(&k6, &r), &s6, &r.metadata),
            );
        }
        for kind in opts.custom_kinds.iter().copied() {
            let W::Custom(custom) = kind else { continue };
            let out = add(kind);
            let (keys, sel) = ctx();
            spawn_stream(
                dynamic_api(client, ns, &custom.get().api_resource()),
                out,
                cfg.clone(),
                move |r| workload_obs(facts::dynamic(&keys, kind, &r), &sel, &r.metadata),
            );
        }
    }
    scopes
}

/// The Argo Rollout resource, read and written as dynamic objects.
/// Finds a declared kind's resource (its plural) by discovery. A kind not served (yet) is
/// watched under kube's plural guess: its watch is refused, reported on `/ready` and
/// retried, and never holds the other kinds back.
pub(crate) async fn discover(client: &Client, kind: &CustomKind) {
    match kube::discovery::pinned_kind(client, &kind.gvk()).await {
        Ok((ar, caps)) if caps.scope == kube::discovery::Scope::Namespaced => {
            tracing::info!(kind = kind.spec, plural = %ar.plural, "--workload-kinds: watching");
            kind.discovered(ar);
        }
        Ok(_) => tracing::warn!(
            kind = kind.spec,
            "--workload-kinds: a cluster-scoped kind has no namespaced pods to roll; watched, but it will list nothing"
        ),
        Err(e) => {
            tracing::warn!(kind = kind.spec, error = %e, "--workload-kinds: not served (yet); its watch retries until it is")
        }
    }
}

pub fn rollout_resource() -> ApiResource {
    crate::operator::model::kinds::WorkloadKind::Rollout.api_resource()
}

fn dynamic_api(client: &Client, ns: &Option<String>, ar: &ApiResource) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn spawn_one<K, F>(client: &Client, cfg: watcher::Config, out: Outlet, reduce: F)
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    F: Fn(K) -> Option<Obs> + Send + 'static,
{
    let api: Api<K> = match &out.scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    spawn_stream(api, out, cfg, reduce);
}

fn spawn_stream<K, F>(api: Api<K>, out: Outlet, cfg: watcher::Config, reduce: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(K) -> Option<Obs> + Send + 'static,
{
    let Outlet {
        stream,
        kind,
        sink,
        scope,
    } = out;
    let health = (sink.health).add(kind, scope.namespace, api.resource_url());
    tokio::spawn(async move {
        let mut events = events(api, cfg).boxed();
        while let Some(ev) = events.next().await {
            health.seen(seen(&ev));
            let msg = match ev {
                Ok(Step::Event(watcher::Event::Init)) => Some(WatchMsg::Init { stream }),
                Ok(Step::Event(watcher::Event::InitDone)) => Some(WatchMsg::InitDone { stream }),
                Ok(Step::Event(watcher::Event::InitApply(o))) => {
                    reduce(o).map(|obs| WatchMsg::InitApply { stream, obs })
                }
                Ok(Step::Event(watcher::Event::Apply(o))) => {
                    reduce(o).map(|obs| WatchMsg::Apply { stream, obs })
                }
                // The key comes from the metadata and the stream's scope: no need to hash a
                // deleted config's data or rebuild a deleted workload's facts.
                Ok(Step::Event(watcher::Event::Delete(o))) => Some(WatchMsg::Delete {
                    stream,
                    namespace: o.meta().namespace.clone(),
                    name: o.name_any(),
                }),
                Ok(Step::Expired(e)) => {
                    sink.metrics.watch_error(kind, "expired");
                    tracing::info!(%kind, error = %e, "watch expired; listing again");
                    None
                }
                Err(e) if refused(&e) => {
                    sink.metrics.watch_error(kind, "refused");
                    tracing::warn!(%kind, error = %e, "the API refuses this watch; the other kinds go on, this one retries with backoff");
                    Some(WatchMsg::Refused {
                        stream,
                        why: e.to_string(),
                    })
                }
                Err(e) => {
                    sink.metrics.watch_error(kind, reason(&e));
                    tracing::warn!(%kind, error = %e, "watch error; retrying with backoff");
                    None
                }
            };
            if let Some(msg) = msg
                && sink.tx.send(msg).await.is_err()
            {
                return; // the engine stopped
            }
        }
    });
}

/// A watch item, for the stream's health record.
fn seen<K>(ev: &Result<Step<K>, watcher::Error>) -> Seen {
    match ev {
        Ok(Step::Event(watcher::Event::Init)) => Seen::ListStarts,
        Ok(Step::Event(watcher::Event::InitDone)) => Seen::Listed,
        Ok(Step::Event(_)) => Seen::Object,
        Ok(Step::Expired(_)) => Seen::Expired,
        Err(e) if refused(e) => Seen::Refused(e.to_string()),
        Err(e) => Seen::Failed(e.to_string()),
    }
}
