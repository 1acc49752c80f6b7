//! What the API holds → why each workload does or does not reload (pure). The decision is
//! the engine's own (`decide::should_reload`, `target_container`, `suspect`), behind the
//! same gates the engine passes a change through first: the kind is watched, the
//! namespace is watched, not ignored and selected, the config's labels match
//! `--resource-label-selector`.

use serde::Serialize;

use crate::operator::{
    apply::markers::{ReloadSource, ReloadStrategy, env_var_name},
    decide::{self, Reason, Skip},
    model::{
        annotations::{NAMESPACE_AUTO, RuleSource},
        facts::{WorkloadFacts, namespace_auto},
        kinds::{ConfigKey, ConfigKind},
        selector::LabelSelector,
    },
    options::Options,
};

use super::snapshot::{Snapshot, WorkloadView};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub namespace: String,
    pub strategy: &'static str,
    pub workloads: Vec<WorkloadReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub kind: &'static str,
    pub name: String,
    /// Every config a change of which rolls it has its marker at the current hash (or has
    /// none yet: never rolled, so it runs what it was started with).
    pub up_to_date: bool,
    pub containers: Vec<ContainerReport>,
    pub configs: Vec<ConfigReport>,
    pub timing: TimingReport,
    pub warnings: Vec<String>,
}

/// The limits its reloads are held and paced by (`operator::timing::effective`).
#[derive(Clone, Debug, Serialize)]
pub struct TimingReport {
    pub coalesce_window: String,
    pub coalesce_max_delay: String,
    pub min_reload_interval: String,
    /// Its own `kube-reloader.io/` annotations in force (valid ones).
    pub from_annotations: Vec<&'static str>,
}

/// A duration as the flags are written: `0s`, `2s`, `5m`, `1h`, else Rust's `1.5s`, `250ms`.
fn show(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (d.subsec_nanos(), s) {
        (0, 0) => "0s".into(),
        (0, s) if s % 3600 == 0 => format!("{}h", s / 3600),
        (0, s) if s % 60 == 0 => format!("{}m", s / 60),
        (0, s) => format!("{s}s"),
        _ => format!("{d:?}"),
    }
}

fn timing(opts: &Options, facts: &WorkloadFacts) -> TimingReport {
    use crate::operator::model::annotations::{
        COALESCE_MAX_DELAY, COALESCE_WINDOW, MIN_RELOAD_INTERVAL,
    };
    let t = &facts.rules.timing;
    let l = crate::operator::timing::effective(&opts.limits, t);
    let set = [
        (COALESCE_WINDOW, &t.window),
        (COALESCE_MAX_DELAY, &t.max_delay),
        (MIN_RELOAD_INTERVAL, &t.min_interval),
    ];
    TimingReport {
        coalesce_window: show(l.coalesce_window),
        coalesce_max_delay: show(l.coalesce_max_delay),
        min_reload_interval: show(l.min_reload_interval),
        from_annotations: set
            .iter()
            .filter(|(_, v)| matches!(v, Some(Ok(_))))
            .map(|(k, _)| *k)
            .collect(),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ContainerReport {
    pub name: String,
    pub init: bool,
    pub uses: Vec<UseReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UseReport {
    pub kind: &'static str,
    pub name: String,
    pub how: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigReport {
    pub kind: &'static str,
    pub name: String,
    pub exists: bool,
    /// The workload's pod template uses it.
    pub referenced: bool,
    pub hash: Option<String>,
    /// `reload` or `skip`.
    pub decision: &'static str,
    /// A short code for the rule (`auto`, `named`, `excluded`, `namespace-not-selected`…).
    pub rule: &'static str,
    pub detail: String,
    /// A skip that is likely a mistake (`kube_reloader_suspicious_skips_total`'s reason).
    pub suspect: Option<&'static str>,
    /// The container whose marker it is (reloads only).
    pub container: Option<String>,
    pub marker: Option<String>,
    /// `up-to-date`, `out-of-date`, `no-marker`, or `-` where there is nothing to compare.
    pub state: &'static str,
    pub next_change: String,
}

/// Why a config never reaches the decision, as the engine's gates decide.
fn gate(opts: &Options, snap: &Snapshot, kind: ConfigKind) -> Option<(&'static str, String)> {
    let ns = &snap.namespace.name;
    if !opts.watched_configs.contains(&kind) {
        let why = match kind {
            ConfigKind::SecretProviderClass => "without --enable-csi-integration".to_owned(),
            _ => format!("--resources-to-ignore={}", kind.stakater_resource()),
        };
        return Some((
            "kind-not-watched",
            format!("{kind}s are not watched ({why})"),
        ));
    }
    if !opts.namespaces.is_empty() && !opts.namespaces.contains(ns) {
        let list = opts.namespaces.join(",");
        return Some((
            "namespace-not-watched",
            format!("namespace {ns} is not watched (--namespaces={list})"),
        ));
    }
    if opts.namespace_ignored(ns) {
        return Some((
            "namespace-ignored",
            format!("namespace {ns} is in --namespaces-to-ignore"),
        ));
    }
    if let Some(sel) = &opts.namespace_selector {
        let selected = LabelSelector::parse(sel)
            .map(|s| s.matches(snap.namespace.labels.as_ref()))
            .unwrap_or(false);
        if !selected {
            return Some((
                "namespace-not-selected",
                format!("namespace {ns}'s labels do not match --namespace-selector={sel}"),
            ));
        }
    }
    None
}

/// Whether a policy makes the workload auto, and which.
fn policy(
    opts: &Options,
    snap: &Snapshot,
    facts: &WorkloadFacts,
) -> Option<(&'static str, String)> {
    if facts.policy_selected {
        let sel = opts.workload_selector.as_ref().map_or("", |s| s.as_str());
        return Some((
            "workload-selector",
            format!("its labels match --workload-selector={sel}"),
        ));
    }
    if opts.namespace_opt_in && namespace_auto(snap.namespace.annotations.as_ref()) {
        let ns = &snap.namespace.name;
        return Some((
            "namespace-opt-in",
            format!("namespace {ns} has {NAMESPACE_AUTO}: \"true\""),
        ));
    }
    None
}

fn source_note(facts: &WorkloadFacts, kind: ConfigKind) -> &'static str {
    if facts.rules.metadata.has_any_for(kind) {
        "on the workload"
    } else {
        "on the pod template (the workload's metadata has none of auto, search, the typed auto or the reload list)"
    }
}

fn describe_reason(
    opts: &Options,
    snap: &Snapshot,
    facts: &WorkloadFacts,
    kind: ConfigKind,
    name: &str,
    reason: Reason,
) -> (&'static str, String) {
    let keys = &opts.keys;
    let src = facts.rules.source_for(kind);
    let at = source_note(facts, kind);
    let is_true = |v: Option<&str>| v.and_then(crate::shared::go::parse_go_bool) == Some(true);
    match reason {
        Reason::Named => {
            let item = src
                .reload(kind)
                .and_then(|p| p.matching_item(name))
                .map_or("", |p| p.text());
            let key = keys.reload(kind);
            ("named", format!("{key} item {item:?} matches ({at})"))
        }
        Reason::Search => (
            "search",
            format!(
                "{}: \"true\" {at}, and the {kind} has {}: \"true\"",
                keys.search, keys.search_match
            ),
        ),
        Reason::Auto if is_true(src.auto.as_deref()) => {
            let v = src.auto.as_deref().unwrap_or_default();
            ("auto", format!("{}: {v:?} {at}", keys.auto))
        }
        Reason::Auto if is_true(src.typed_auto(kind)) => {
            let v = src.typed_auto(kind).unwrap_or_default();
            (
                "typed-auto",
                format!("{}: {v:?} {at}", keys.typed_auto(kind)),
            )
        }
        Reason::Auto if opts.decide.auto_reload_all => (
            "auto-reload-all",
            "--auto-reload-all, and the workload sets no auto".into(),
        ),
        Reason::Auto => policy(opts, snap, facts)
            .map(|(rule, why)| (rule, format!("{why}, and the workload sets no auto")))
            .unwrap_or(("auto", String::new())),
    }
}

fn describe_skip(
    opts: &Options,
    facts: &WorkloadFacts,
    kind: ConfigKind,
    name: &str,
    skip: Skip,
    suspect: Option<decide::Suspect>,
) -> (&'static str, String) {
    let keys = &opts.keys;
    let src = facts.rules.source_for(kind);
    match skip {
        Skip::IgnoredWorkloadType => (
            "ignored-workload-type",
            format!("--ignored-workload-types includes {}", facts.key.kind),
        ),
        Skip::ConfigIgnored => (
            "config-ignored",
            format!("the {kind} has {}: \"true\"", keys.ignore),
        ),
        Skip::Excluded => (
            "excluded",
            format!("{} on the workload names {name:?}", keys.exclude(kind)),
        ),
        Skip::NotSelected => ("not-selected", not_selected(keys, src, kind, suspect)),
    }
}

fn not_selected(
    keys: &crate::operator::model::annotations::AnnotationKeys,
    src: &RuleSource,
    kind: ConfigKind,
    suspect: Option<decide::Suspect>,
) -> String {
    use decide::Suspect as S;
    match suspect {
        Some(S::AutoNotABool) => format!(
            "{} / {} is set to a value that is not a Go boolean (true, false, 1, 0, t, f…); it reads as false",
            keys.auto,
            keys.typed_auto(kind)
        ),
        Some(S::SearchWithoutMatch) => format!(
            "{}: \"true\", but the {kind} lacks {}: \"true\"",
            keys.search, keys.search_match
        ),
        Some(S::TypedAutoOtherKind) => format!(
            "only another kind's typed auto is on; {} is not set, so {kind}s do not roll it",
            keys.typed_auto(kind)
        ),
        Some(S::ExcludedButUsed) | None => {
            if let Some(v) = src.auto.as_deref() {
                format!("{}: {v:?}", keys.auto)
            } else if let Some(v) = src.typed_auto(kind) {
                format!("{}: {v:?}", keys.typed_auto(kind))
            } else if src.reload(kind).is_some() {
                format!("not an item of {}", keys.reload(kind))
            } else {
                format!(
                    "no annotation selects it ({}, {}, {}, or {} with match)",
                    keys.auto,
                    keys.typed_auto(kind),
                    keys.reload(kind),
                    keys.search
                )
            }
        }
    }
}

/// The configs worth a line: those the template uses, then those its reload lists name or
/// match, in that order.
fn candidates(snap: &Snapshot, w: &WorkloadView) -> Vec<ConfigKey> {
    let ns = &snap.namespace.name;
    let key = |kind, name: &str| ConfigKey {
        kind,
        namespace: ns.clone(),
        name: name.to_owned(),
    };
    let mut out: Vec<ConfigKey> = Vec::new();
    let mut push = |k: ConfigKey| {
        if !out.contains(&k) {
            out.push(k);
        }
    };
    for u in &w.usages {
        push(key(u.kind, &u.name));
    }
    for kind in ConfigKind::ALL {
        let Some(list) = w.facts.rules.source_for(kind).reload(kind) else {
            continue;
        };
        for item in list.items() {
            if item.is_regex() {
                snap.configs_of(kind)
                    .filter(|n| item.matches(n))
                    .for_each(|n| push(key(kind, n)));
            } else {
                push(key(kind, item.text()));
            }
        }
    }
    out
}

pub fn report(opts: &Options, snap: &Snapshot) -> Report {
    let workloads = snap
        .workloads
        .iter()
        .map(|w| workload(opts, snap, w))
        .collect();
    Report {
        namespace: snap.namespace.name.clone(),
        strategy: match opts.strategy {
            ReloadStrategy::EnvVars => "env-vars",
            ReloadStrategy::Annotations => "annotations",
        },
        workloads,
    }
}

fn workload(opts: &Options, snap: &Snapshot, w: &WorkloadView) -> WorkloadReport {
    let mut containers: Vec<ContainerReport> = Vec::new();
    for u in &w.usages {
        let c = match containers.iter_mut().position(|c| c.name == u.container) {
            Some(i) => &mut containers[i],
            None => {
                containers.push(ContainerReport {
                    name: u.container.clone(),
                    init: u.init,
                    uses: Vec::new(),
                });
                containers.last_mut().expect("just pushed")
            }
        };
        c.uses.push(UseReport {
            kind: u.kind.as_str(),
            name: u.name.clone(),
            how: u.how.clone(),
        });
    }
    let configs: Vec<ConfigReport> = candidates(snap, w)
        .iter()
        .map(|k| config(opts, snap, &w.facts, k))
        .collect();
    let up_to_date = configs.iter().all(|c| c.state != "out-of-date");
    WorkloadReport {
        kind: w.facts.key.kind.as_str(),
        name: w.facts.key.name.clone(),
        up_to_date,
        containers,
        timing: timing(opts, &w.facts),
        warnings: super::lint::warnings(opts, snap, w),
        configs,
    }
}

fn config(opts: &Options, snap: &Snapshot, facts: &WorkloadFacts, key: &ConfigKey) -> ConfigReport {
    let view = snap.configs.get(key);
    let referenced = facts.refs.find(key.kind, &key.name).is_some();
    let mut r = ConfigReport {
        kind: key.kind.as_str(),
        name: key.name.clone(),
        exists: view.is_some(),
        referenced,
        hash: view.map(|v| v.hash.to_string()),
        decision: "skip",
        rule: "",
        detail: String::new(),
        suspect: None,
        container: None,
        marker: None,
        state: "-",
        next_change: "nothing".into(),
    };
    if let Some((rule, detail)) = gate(opts, snap, key.kind) {
        (r.rule, r.detail) = (rule, detail);
        return r;
    }
    if view.is_some_and(|v| !v.labels_match) {
        let sel = opts.resource_label_selector.as_deref().unwrap_or_default();
        r.rule = "resource-label-selector";
        r.detail = format!(
            "its labels do not match --resource-label-selector={sel}: the operator never sees it"
        );
        return r;
    }
    let flags = view.map(|v| v.flags).unwrap_or_default();
    let policy_auto = policy(opts, snap, facts).is_some();
    let decision = decide::should_reload(
        &opts.decide,
        facts.key.kind,
        &facts.rules,
        policy_auto,
        key.kind,
        &key.name,
        flags,
    );
    let reason = match decision {
        Err(skip) => {
            let suspect =
                decide::suspect(&facts.rules, key.kind, flags, skip).filter(|_| referenced);
            r.suspect = suspect.map(|s| s.label());
            (r.rule, r.detail) = describe_skip(opts, facts, key.kind, &key.name, skip, suspect);
            return r;
        }
        Ok(reason) => reason,
    };
    (r.rule, r.detail) = describe_reason(opts, snap, facts, key.kind, &key.name, reason);
    let Some(container) = decide::target_container(&facts.refs, key.kind, &key.name, reason) else {
        r.detail = format!(
            "{}; but no container uses the {}, and {} reloads need one",
            r.detail, key.kind, r.rule
        );
        r.rule = "no-reference";
        return r;
    };
    r.decision = "reload";
    r.container = Some(container.to_owned());
    let Some(view) = view else {
        r.next_change = match opts.reload_on_create {
            true => format!(
                "creating it rolls the workload (--reload-on-create; marker on container {container})"
            ),
            false => {
                "it does not exist; creating it rolls nothing (without --reload-on-create)".into()
            }
        };
        return r;
    };
    let hash = view.hash.to_string();
    (r.marker, r.state) = marker_state(opts.strategy, facts, key, container, &hash);
    r.next_change = next_change(opts, facts, key, container);
    r
}

/// The marker on the workload for this config, and how it compares with the hash now.
fn marker_state(
    strategy: ReloadStrategy,
    facts: &WorkloadFacts,
    key: &ConfigKey,
    container: &str,
    hash: &str,
) -> (Option<String>, &'static str) {
    match strategy {
        ReloadStrategy::EnvVars => {
            let var = env_var_name(key.kind, &key.name);
            match facts.env_value(container, &var) {
                None => (None, "no-marker"),
                Some(v) if v == hash => (Some(v.to_owned()), "up-to-date"),
                Some(v) => (Some(v.to_owned()), "out-of-date"),
            }
        }
        ReloadStrategy::Annotations => {
            let recorded = facts
                .annotation_marker
                .as_deref()
                .and_then(|a| serde_json::from_str::<ReloadSource>(a).ok());
            let this = recorded.filter(|s| {
                s.kind == key.kind.stakater_type()
                    && s.namespace == key.namespace
                    && s.name == key.name
            });
            match this {
                // The one annotation names the last change only: another config's says
                // nothing about this one.
                None => (None, "no-marker"),
                Some(s) if s.hash == hash => (Some(s.hash), "up-to-date"),
                Some(s) => (Some(s.hash), "out-of-date"),
            }
        }
    }
}

fn next_change(opts: &Options, facts: &WorkloadFacts, key: &ConfigKey, container: &str) -> String {
    use crate::operator::model::{annotations::CronJobStrategy, kinds::WorkloadKind};
    if opts.webhook_url.is_some() {
        return "a change is POSTed to --webhook-url; nothing is rolled".into();
    }
    let marker = match opts.strategy {
        ReloadStrategy::EnvVars => format!(
            "env {} on container {container}",
            env_var_name(key.kind, &key.name)
        ),
        ReloadStrategy::Annotations => {
            crate::operator::model::annotations::LAST_RELOADED_FROM.to_owned()
                + " on the pod template"
        }
    };
    let how = match facts.key.kind {
        WorkloadKind::CronJob if facts.rules.cronjob_strategy != Some(CronJobStrategy::Patch) => {
            "creates a Job from the CronJob".to_owned()
        }
        WorkloadKind::CronJob => format!("patches the job template ({marker})"),
        _ => format!("rolls it ({marker})"),
    };
    match opts.dry_run {
        true => format!("would roll: {how}; --dry-run writes nothing"),
        false => how,
    }
}
