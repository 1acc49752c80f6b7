//! The usual mistakes behind "it did not reload and said nothing" (pure): a misspelled key,
//! keys on the pod template that the metadata hides, a named config that does not exist, a
//! regex that matches no config, a typed auto that can never fire, invalid values.

use crate::operator::model::{
    annotations::{
        AnnotationKeys, COALESCE_MAX_DELAY, COALESCE_WINDOW, LAST_RELOADED_FROM,
        MIN_RELOAD_INTERVAL, NAMESPACE_AUTO, RuleSource,
    },
    kinds::ConfigKind,
};
use crate::operator::options::Options;

use super::snapshot::{Snapshot, WorkloadView};

/// Our own workload annotations besides stakater's keys.
const OURS: [&str; 3] = [COALESCE_WINDOW, COALESCE_MAX_DELAY, MIN_RELOAD_INTERVAL];

fn known_keys(keys: &AnnotationKeys) -> Vec<&str> {
    let mut all = vec![
        keys.auto.as_str(),
        &keys.search,
        &keys.search_match,
        &keys.ignore,
        &keys.pause_period,
        &keys.paused_at,
        &keys.rollout_strategy,
        &keys.cronjob_strategy,
        LAST_RELOADED_FROM,
        NAMESPACE_AUTO,
    ];
    for kind in ConfigKind::ALL {
        all.extend([keys.typed_auto(kind), keys.reload(kind), keys.exclude(kind)]);
    }
    all.extend(OURS);
    all
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A key that is not one we read but looks meant to be: close to a known key, or naming
/// reloader at all. `Some(nearest)` with the known key it is nearest to.
pub fn misspelled<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    if known.contains(&key) {
        return None;
    }
    let (nearest, d) = known
        .iter()
        .map(|k| (*k, distance(&key.to_ascii_lowercase(), k)))
        .min_by_key(|(_, d)| *d)?;
    let looks_ours = key.to_ascii_lowercase().contains("reloader");
    (d <= 3 || looks_ours).then_some(nearest)
}

pub fn warnings(opts: &Options, snap: &Snapshot, w: &WorkloadView) -> Vec<String> {
    let keys = &opts.keys;
    let known = known_keys(keys);
    let mut out: Vec<String> = w.facts.problems.clone();
    out.extend(crate::operator::timing::problem(
        &opts.limits,
        &w.facts.rules.timing,
    ));
    for (place, map) in [
        ("the workload", &w.metadata_annotations),
        ("the pod template", &w.template_annotations),
    ] {
        for key in map.keys() {
            if let Some(near) = misspelled(key, &known) {
                out.push(format!(
                    "annotation {key:?} on {place} is not one kube-reloader reads; did you mean {near:?}?"
                ));
            }
        }
    }
    let template = RuleSource::parse(keys, Some(&w.template_annotations));
    for kind in ConfigKind::ALL {
        if w.facts.rules.metadata.has_any_for(kind) && template.has_any_for(kind) {
            out.push(format!(
                "the pod template's reload annotations for {kind}s are not read: the workload's metadata has some, and stakater reads one place only"
            ));
            break;
        }
    }
    let ns = &snap.namespace.name;
    for kind in ConfigKind::ALL {
        let src = w.facts.rules.source_for(kind);
        let listed = snap.listed.contains(&kind);
        for item in src.reload(kind).map(|p| p.items()).unwrap_or_default() {
            let mut names = snap.configs_of(kind);
            if !listed {
                continue;
            }
            if item.is_regex() && !names.any(|n| item.matches(n)) {
                out.push(format!(
                    "{} item {:?} matches no {kind} in {ns}",
                    keys.reload(kind),
                    item.text()
                ));
            } else if !item.is_regex() && !names.any(|n| n == item.text()) {
                out.push(format!(
                    "{} names {kind} {:?}, which does not exist in {ns}",
                    keys.reload(kind),
                    item.text()
                ));
            }
        }
        let typed_on = src
            .typed_auto(kind)
            .and_then(crate::shared::go::parse_go_bool)
            == Some(true);
        let uses_kind = w.facts.refs.refs.iter().any(|r| r.kind == kind);
        if typed_on && !opts.watched_configs.contains(&kind) {
            out.push(format!(
                "{} is on, but {kind}s are not watched: it can never fire",
                keys.typed_auto(kind)
            ));
        } else if typed_on && !uses_kind {
            out.push(format!(
                "{} is on, but no container uses a {kind}: it can never fire",
                keys.typed_auto(kind)
            ));
        }
    }
    let auto_on = [&w.facts.rules.metadata, &w.facts.rules.template]
        .iter()
        .any(|s| s.auto.as_deref().and_then(crate::shared::go::parse_go_bool) == Some(true));
    if auto_on && w.facts.refs.refs.is_empty() {
        out.push(format!(
            "{} is on, but no container uses a ConfigMap or Secret: nothing can roll it",
            keys.auto
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_keys_and_reloader_keys_are_flagged() {
        let keys = AnnotationKeys::default();
        let known = known_keys(&keys);
        assert_eq!(
            misspelled("reloader.stakater.com/atuo", &known),
            Some("reloader.stakater.com/auto")
        );
        assert_eq!(
            misspelled("configmaps.reloader.stakater.com/reload", &known),
            Some("configmap.reloader.stakater.com/reload")
        );
        assert_eq!(
            misspelled("Reloader.Stakater.com/Auto", &known),
            Some("reloader.stakater.com/auto")
        );
        assert!(misspelled("reloader.example.org/whatever", &known).is_some());
        assert_eq!(misspelled("reloader.stakater.com/auto", &known), None);
        assert_eq!(
            misspelled("kubectl.kubernetes.io/restartedAt", &known),
            None
        );
        assert_eq!(misspelled("app.kubernetes.io/name", &known), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("auto", "auto"), 0);
        assert_eq!(distance("atuo", "auto"), 2);
        assert_eq!(distance("", "ab"), 2);
        assert_eq!(distance("configmaps", "configmap"), 1);
    }
}
