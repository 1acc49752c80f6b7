//! Pending reloads of one workload → the one write that brings it up to date (pure).
//! Markers already in place are left out, so replays, retries and restarts write nothing.

use crate::operator::{
    apply::{
        evict::EvictRecord,
        markers::{Marker, ReloadSource, ReloadStrategy, env_var_name},
    },
    decide::{Reason, target_container},
    model::{facts::WorkloadFacts, hash::ConfigHash, kinds::ConfigKey},
};

/// A reload waiting for its workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingItem {
    pub config: ConfigKey,
    pub reason: Reason,
    pub deleted: bool,
}

/// One write to one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub markers: Vec<Marker>,
    /// The configs this write reloads for (for Events and logs).
    pub configs: Vec<ConfigKey>,
}

/// Stakater's annotation-strategy hash for a deleted config.
pub fn delete_marker_hash() -> ConfigHash {
    crate::operator::model::hash::of_str("__RELOADER_EMPTY_DELETE_MARKER__")
}

pub fn plan(
    strategy: ReloadStrategy,
    facts: &WorkloadFacts,
    items: &[PendingItem],
    current_hash: impl Fn(&ConfigKey) -> Option<ConfigHash>,
    now_unix: i64,
) -> Option<Write> {
    let mut write = Write {
        markers: Vec::new(),
        configs: Vec::new(),
    };
    // Annotations strategy: the one annotation names the last change (items are in change
    // order), written if any change is not yet recorded, even when the last one is.
    let mut last_source: Option<(ReloadSource, &ConfigKey)> = None;
    let mut unrecorded = false;
    // The eviction strategy: one record of every config's hash on the workload itself.
    let mut evicted = EvictRecord::parse(facts.evicted_for.as_deref());
    for item in items {
        let key = &item.config;
        let Some(container) = target_container(&facts.refs, key.kind, &key.name, item.reason)
        else {
            tracing::debug!(workload = %facts.key, config = %key, "no container references the config");
            continue;
        };
        // The hash now, not when the change was seen: coalesced changes write the latest.
        // The hash if it exists (for a delete item: re-created since, so reload to its new
        // content); a vanished config is a removal only for a delete item.
        let hash = match current_hash(key) {
            Some(h) => Some(h),
            None if item.deleted => None,
            None => continue, // deleted since; a delete item covers it if wanted
        };
        if facts.rules.evict {
            let h = hash.unwrap_or_else(delete_marker_hash).to_string();
            let kind = key.kind.stakater_type();
            if !evicted.has(kind, &key.name, &h) {
                evicted.set(kind, &key.name, &h);
                write.configs.push(key.clone());
            }
            continue;
        }
        match strategy {
            ReloadStrategy::EnvVars => {
                let var = env_var_name(key.kind, &key.name);
                let present = facts.env_value(container, &var);
                let wanted = hash.map(|h| h.to_string());
                if present == wanted.as_deref() {
                    continue;
                }
                write
                    .markers
                    .push(Marker::env(container, key.kind, &key.name, hash));
            }
            ReloadStrategy::Annotations => {
                let h = hash.unwrap_or_else(delete_marker_hash).to_string();
                let recorded = facts.annotation_marker.as_deref().is_some_and(|a| {
                    ReloadSource::recorded_in(a, key.kind, &key.namespace, &key.name, &h)
                });
                let source = ReloadSource {
                    kind: key.kind.stakater_type().into(),
                    name: key.name.clone(),
                    namespace: key.namespace.clone(),
                    hash: h,
                    container_refs: vec![container.to_owned()],
                    observed_at: now_unix,
                };
                last_source = Some((source, key));
                if recorded {
                    continue;
                }
                unrecorded = true;
            }
        }
        write.configs.push(key.clone());
    }
    if facts.rules.evict && !write.configs.is_empty() {
        evicted.since = k8s_openapi::jiff::Timestamp::from_second(now_unix)
            .unwrap_or_default()
            .to_string();
        let record = serde_json::to_string(&evicted).expect("a record serializes");
        write.markers.push(Marker::Evict(record));
    }
    if let Some((source, key)) = last_source.filter(|_| unrecorded) {
        write.markers.push(Marker::annotation(&source));
        if !write.configs.contains(key) {
            write.configs.push(key.clone());
        }
    }
    (!write.markers.is_empty()).then_some(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::model::{
        facts::EnvMarker,
        kinds::{ConfigKind, WorkloadKey, WorkloadKind},
        references::{ConfigRef, PodRefs},
    };

    fn cm(name: &str) -> ConfigKey {
        ConfigKey {
            kind: ConfigKind::ConfigMap,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn facts(env: &[(&str, &str)]) -> WorkloadFacts {
        WorkloadFacts {
            key: WorkloadKey {
                kind: WorkloadKind::Deployment,
                namespace: "ns".into(),
                name: "w".into(),
            },
            uid: "u".into(),
            rules: Default::default(),
            refs: PodRefs {
                containers: vec!["main".into(), "side".into()],
                refs: vec![ConfigRef {
                    kind: ConfigKind::ConfigMap,
                    name: "used".into(),
                    container: "side".into(),
                }],
            },
            env_markers: env
                .iter()
                .map(|(v, val)| EnvMarker {
                    container: "side".into(),
                    var: v.to_string(),
                    value: val.to_string(),
                })
                .collect(),
            ..WorkloadFacts::bare("ns", "")
        }
    }

    fn item(name: &str, reason: Reason, deleted: bool) -> PendingItem {
        PendingItem {
            config: cm(name),
            reason,
            deleted,
        }
    }

    #[test]
    fn env_marker_on_the_referencing_container_and_idempotent() {
        let h = ConfigHash::empty();
        let w = plan(
            ReloadStrategy::EnvVars,
            &facts(&[]),
            &[item("used", Reason::Auto, false)],
            |_| Some(h),
            0,
        )
        .unwrap();
        assert_eq!(
            w.markers,
            [Marker::env("side", ConfigKind::ConfigMap, "used", Some(h))]
        );
        let done = facts(&[("STAKATER_USED_CONFIGMAP", &h.to_string())]);
        assert_eq!(
            plan(
                ReloadStrategy::EnvVars,
                &done,
                &[item("used", Reason::Auto, false)],
                |_| Some(h),
                0
            ),
            None
        );
    }

    #[test]
    fn auto_without_reference_writes_nothing_but_named_uses_first_container() {
        let h = ConfigHash::empty();
        let o = ReloadStrategy::EnvVars;
        assert_eq!(
            plan(
                o,
                &facts(&[]),
                &[item("other", Reason::Auto, false)],
                |_| Some(h),
                0
            ),
            None
        );
        let w = plan(
            o,
            &facts(&[]),
            &[item("other", Reason::Named, false)],
            |_| Some(h),
            0,
        )
        .unwrap();
        assert_eq!(
            w.markers,
            [Marker::env("main", ConfigKind::ConfigMap, "other", Some(h))]
        );
    }

    #[test]
    fn delete_removes_the_env_var_only_when_present() {
        let o = ReloadStrategy::EnvVars;
        let present = facts(&[("STAKATER_USED_CONFIGMAP", "x")]);
        let w = plan(
            o,
            &present,
            &[item("used", Reason::Auto, true)],
            |_| None,
            0,
        )
        .unwrap();
        assert_eq!(
            w.markers,
            [Marker::env("side", ConfigKind::ConfigMap, "used", None)]
        );
        assert_eq!(
            plan(
                o,
                &facts(&[]),
                &[item("used", Reason::Auto, true)],
                |_| None,
                0
            ),
            None
        );
    }

    #[test]
    fn annotation_names_the_last_change_even_when_it_is_recorded() {
        let o = ReloadStrategy::Annotations;
        let (h1, h2) = (
            ConfigHash::empty(),
            crate::operator::model::hash::of_str("x"),
        );
        let mut f = facts(&[]);
        f.refs.refs.push(ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: "other".into(),
            container: "main".into(),
        });
        let first = plan(o, &f, &[item("used", Reason::Auto, false)], |_| Some(h1), 1);
        let Marker::Annotation(used_at_h1) = &first.unwrap().markers[0] else {
            panic!()
        };
        // "used" is recorded at h1; then "other" changed, and "used" changed last (back to h1).
        f.annotation_marker = Some(used_at_h1.clone());
        let items = [
            item("other", Reason::Auto, false),
            item("used", Reason::Auto, false),
        ];
        let hashes = |c: &ConfigKey| Some(if c.name == "used" { h1 } else { h2 });
        let w = plan(o, &f, &items, hashes, 2).unwrap();
        let [Marker::Annotation(json)] = &w.markers[..] else {
            panic!("{w:?}")
        };
        let s: ReloadSource = serde_json::from_str(json).unwrap();
        assert_eq!((s.name.as_str(), s.hash), ("used", h1.to_string()));
        assert_eq!(w.configs, [cm("other"), cm("used")]);
        // Every change recorded: nothing to write, whatever the order.
        let only = [item("used", Reason::Auto, false)];
        assert_eq!(plan(o, &f, &only, hashes, 3), None);
    }

    #[test]
    fn annotations_strategy_compares_the_hash_not_observed_at() {
        let o = ReloadStrategy::Annotations;
        let h = ConfigHash::empty();
        let w = plan(
            o,
            &facts(&[]),
            &[item("used", Reason::Auto, false)],
            |_| Some(h),
            42,
        )
        .unwrap();
        let Marker::Annotation(json) = &w.markers[0] else {
            panic!("annotation expected")
        };
        assert!(json.contains(&h.to_string()) && json.contains("\"observedAt\":42"));
        let mut done = facts(&[]);
        done.annotation_marker = Some(json.clone());
        assert_eq!(
            plan(
                o,
                &done,
                &[item("used", Reason::Auto, false)],
                |_| Some(h),
                99
            ),
            None
        );
        let deleted = plan(
            o,
            &facts(&[]),
            &[item("used", Reason::Auto, true)],
            |_| None,
            0,
        )
        .unwrap();
        let Marker::Annotation(json) = &deleted.markers[0] else {
            panic!()
        };
        assert!(json.contains(&delete_marker_hash().to_string()));
    }

    #[test]
    fn the_eviction_strategy_records_every_hash_on_the_workload_and_touches_no_template() {
        let mut f = facts(&[]);
        f.rules.evict = true;
        let h = ConfigHash::empty();
        let items = [item("used", Reason::Auto, false)];
        let w = plan(
            ReloadStrategy::EnvVars,
            &f,
            &items,
            |_| Some(h),
            1_700_000_000,
        )
        .unwrap();
        let [Marker::Evict(record)] = &w.markers[..] else {
            panic!("one record, no template marker: {:?}", w.markers)
        };
        let r = EvictRecord::parse(Some(record));
        assert!(r.has("CONFIGMAP", "used", &h.to_string()));
        assert_eq!(r.since, "2023-11-14T22:13:20Z");
        f.evicted_for = Some(record.clone());
        assert_eq!(
            plan(ReloadStrategy::Annotations, &f, &items, |_| Some(h), 0),
            None,
            "recorded: nothing to do, whatever the strategy flag"
        );
    }
}
