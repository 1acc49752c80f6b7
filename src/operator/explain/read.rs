//! Reads what `explain` reports on, with the user's kubeconfig: the Namespace, its
//! ConfigMaps and Secrets (hashed as the operator hashes them, never printed), and the
//! workloads, reduced to the facts the operator keeps.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, Namespace, PodTemplateSpec, Secret},
};
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams},
};

use super::snapshot::{ConfigView, NamespaceView, Snapshot, WorkloadView};
use crate::operator::{
    model::{
        facts::{self, WorkloadFacts},
        hash,
        kinds::{ConfigKey, ConfigKind, WorkloadKind},
        references::usages,
        selector::LabelSelector,
    },
    options::Options,
};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error(
        "{0:?} is not KIND/NAME with KIND one of deployment, statefulset, daemonset, cronjob, job, rollout, or a --workload-kinds kind"
    )]
    Target(String),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ReadError {
    let what = what.into();
    move |source| ReadError::Api { what, source }
}

/// `deploy/web` → (Deployment, "web"), with kubectl's short names and plurals; a
/// `--workload-kinds` kind by its kind name (`cloneset/web`).
pub fn parse_target(opts: &Options, s: &str) -> Result<(WorkloadKind, String), ReadError> {
    let bad = || ReadError::Target(s.to_owned());
    let (kind, name) = s.split_once('/').ok_or_else(bad)?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
        "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
        "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
        "cronjob" | "cronjobs" | "cj" => WorkloadKind::CronJob,
        "job" | "jobs" => WorkloadKind::Job,
        "rollout" | "rollouts" | "ro" => WorkloadKind::Rollout,
        other => *opts
            .custom_kinds
            .iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(other))
            .ok_or_else(bad)?,
    };
    match name.is_empty() {
        true => Err(bad()),
        false => Ok((kind, name.to_owned())),
    }
}

fn api(client: &Client, ns: &str, kind: WorkloadKind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &kind.api_resource())
}

/// One workload object, whatever its kind: its facts, usages and annotations.
fn view(opts: &Options, kind: WorkloadKind, obj: serde_json::Value) -> Option<WorkloadView> {
    let keys = &opts.keys;
    let (f, meta, template): (Option<WorkloadFacts>, _, Option<PodTemplateSpec>) = match kind {
        WorkloadKind::Deployment => {
            let d: Deployment = serde_json::from_value(obj).ok()?;
            let t = Some(d.spec.template.clone());
            (facts::deployment(keys, &d), d.metadata, t)
        }
        WorkloadKind::StatefulSet => {
            let s: StatefulSet = serde_json::from_value(obj).ok()?;
            let t = Some(s.spec.template.clone());
            (facts::statefulset(keys, &s), s.metadata, t)
        }
        WorkloadKind::DaemonSet => {
            let d: DaemonSet = serde_json::from_value(obj).ok()?;
            let t = Some(d.spec.template.clone());
            (facts::daemonset(keys, &d), d.metadata, t)
        }
        WorkloadKind::CronJob => {
            let c: CronJob = serde_json::from_value(obj).ok()?;
            let t = c.spec.job_template.spec.clone().map(|j| j.template);
            (facts::cronjob(keys, &c), c.metadata, t)
        }
        WorkloadKind::Job => {
            let j: Job = serde_json::from_value(obj).ok()?;
            let t = j.spec.as_ref().map(|s| s.template.clone());
            (facts::job(keys, &j), j.metadata, t)
        }
        WorkloadKind::Rollout | WorkloadKind::Custom(_) => {
            let r: DynamicObject = serde_json::from_value(obj).ok()?;
            let t = facts::dynamic_template(kind, &r);
            (facts::dynamic(keys, kind, &r), r.metadata, t)
        }
    };
    let selector = opts.workload_selector.as_ref();
    let facts = facts::with_policy(f?, selector, meta.labels.as_ref());
    let spec = template.as_ref().and_then(|t| t.spec.as_ref());
    let template_annotations = template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.clone());
    Some(WorkloadView {
        facts,
        usages: spec.map(usages).unwrap_or_default(),
        metadata_annotations: meta.annotations.unwrap_or_default(),
        template_annotations: template_annotations.unwrap_or_default(),
    })
}

/// A Job a controller runs (a CronJob's) is that controller's to roll, as in the operator.
fn controller_owned(obj: &serde_json::Value) -> bool {
    let refs = obj
        .pointer("/metadata/ownerReferences")
        .and_then(|r| r.as_array());
    refs.into_iter()
        .flatten()
        .any(|r| r.get("controller").and_then(|c| c.as_bool()) == Some(true))
}

/// Every object of `kind` in `ns`, as JSON (`view` reads each as its kind).
async fn list_kind(
    client: &Client,
    ns: &str,
    kind: WorkloadKind,
) -> Result<Vec<serde_json::Value>, kube::Error> {
    let items = api(client, ns, kind)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect())
}

async fn get_kind(
    client: &Client,
    ns: &str,
    kind: WorkloadKind,
    name: &str,
) -> Result<Option<serde_json::Value>, kube::Error> {
    let obj = api(client, ns, kind).get_opt(name).await?;
    Ok(obj.and_then(|o| serde_json::to_value(o).ok()))
}

/// The workloads: the one named, or every one the operator would watch.
async fn workloads(
    client: &Client,
    opts: &Options,
    ns: &str,
    target: Option<&(WorkloadKind, String)>,
) -> Result<Vec<WorkloadView>, ReadError> {
    let mut objs: Vec<(WorkloadKind, serde_json::Value)> = Vec::new();
    match target {
        Some((kind, name)) => {
            let what = format!("{kind} {ns}/{name}");
            let obj = get_kind(client, ns, *kind, name)
                .await
                .map_err(api_err(&what))?;
            objs.push((*kind, obj.ok_or(ReadError::NotFound(what))?));
        }
        None => {
            let ignored = &opts.decide.ignored_workload_kinds;
            let builtin = [
                WorkloadKind::Deployment,
                WorkloadKind::StatefulSet,
                WorkloadKind::DaemonSet,
                WorkloadKind::CronJob,
                WorkloadKind::Job,
                WorkloadKind::Rollout,
            ];
            for kind in builtin.into_iter().chain(opts.custom_kinds.iter().copied()) {
                if ignored.contains(&kind) || (kind == WorkloadKind::Rollout && !opts.argo_rollouts)
                {
                    continue;
                }
                let what = format!("listing {kind}s in {ns}");
                let items = list_kind(client, ns, kind).await.map_err(api_err(what))?;
                objs.extend(items.into_iter().map(|o| (kind, o)));
            }
        }
    }
    let mut views: Vec<WorkloadView> = objs
        .into_iter()
        .filter(|(kind, o)| !(*kind == WorkloadKind::Job && controller_owned(o)))
        .filter_map(|(kind, o)| view(opts, kind, o))
        .collect();
    // A Rollout with workloadRef runs the referenced Deployment's template, as the
    // operator joins them.
    for v in &mut views {
        let Some(target) = v.facts.workload_ref.clone() else {
            continue;
        };
        let what = format!("{} {}/{}", target.kind, ns, target.name);
        let dep = get_kind(client, ns, target.kind, &target.name)
            .await
            .map_err(api_err(what))?;
        if let Some(d) = dep.and_then(|d| view(opts, target.kind, d)) {
            v.facts.adopt_template(&d.facts);
            v.usages = d.usages;
        }
    }
    Ok(views)
}

/// Reads the snapshot; a Namespace or config kind the user may not read is left out with
/// a note on stderr (its rules then read as if it were absent).
pub async fn snapshot(
    client: &Client,
    opts: &Options,
    ns: &str,
    target: Option<&(WorkloadKind, String)>,
) -> Result<Snapshot, ReadError> {
    for kind in &opts.custom_kinds {
        if let WorkloadKind::Custom(id) = kind {
            crate::operator::watch::discover(client, id.get()).await;
        }
    }
    let workloads = workloads(client, opts, ns, target).await?;
    let namespace = match Api::<Namespace>::all(client.clone()).get(ns).await {
        Ok(n) => NamespaceView {
            name: ns.to_owned(),
            labels: n.metadata.labels,
            annotations: n.metadata.annotations,
        },
        Err(e) => {
            eprintln!(
                "note: cannot read Namespace {ns} ({e}); its labels and annotations count as none"
            );
            NamespaceView {
                name: ns.to_owned(),
                ..Default::default()
            }
        }
    };
    let labels = opts
        .resource_label_selector
        .as_deref()
        .and_then(|s| LabelSelector::parse(s).ok());
    let matches =
        |l: Option<&BTreeMap<String, String>>| labels.as_ref().is_none_or(|s| s.matches(l));
    let mut configs = BTreeMap::new();
    let mut listed = Vec::new();
    let key = |kind, name: Option<String>| {
        name.map(|name| ConfigKey {
            kind,
            namespace: ns.to_owned(),
            name,
        })
    };
    match Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            listed.push(ConfigKind::ConfigMap);
            for cm in list.items {
                if crate::operator::state::is_state_object(&cm.metadata) {
                    continue;
                }
                let Some(k) = key(ConfigKind::ConfigMap, cm.metadata.name.clone()) else {
                    continue;
                };
                let v = ConfigView {
                    hash: hash::of_configmap(&cm),
                    flags: facts::config_flags(&opts.keys, &cm.metadata),
                    labels_match: matches(cm.metadata.labels.as_ref()),
                };
                configs.insert(k, v);
            }
        }
        Err(e) => eprintln!("note: cannot list ConfigMaps in {ns} ({e})"),
    }
    match Api::<Secret>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            listed.push(ConfigKind::Secret);
            for s in list.items {
                let Some(k) = key(ConfigKind::Secret, s.metadata.name.clone()) else {
                    continue;
                };
                let v = ConfigView {
                    hash: hash::of_secret(&s),
                    flags: facts::config_flags(&opts.keys, &s.metadata),
                    labels_match: matches(s.metadata.labels.as_ref()),
                };
                configs.insert(k, v);
            }
        }
        Err(e) => eprintln!("note: cannot list Secrets in {ns} ({e})"),
    }
    Ok(Snapshot {
        namespace,
        configs,
        listed,
        workloads,
    })
}
