//! Should this workload roll for this config change? Stakater's `ShouldReload` order:
//! 1. the workload kind is in `--ignored-workload-types`: no;
//! 2. the config carries `reloader.stakater.com/ignore: "true"`: no;
//! 3. the workload's exclude list for the config's kind names it: no;
//! 4. an item of the kind's `…/reload` list matches the name: yes, a named reload;
//! 5. `search: "true"` on the workload and `match: "true"` on the config: yes, auto;
//! 6. `auto` or the typed auto is true, or both are empty and `--auto-reload-all` or a policy
//!    (`--workload-selector`, a Namespace's `kube-reloader.io/auto`) makes it auto: yes, auto;
//! 7. otherwise no.
//!
//! An auto reload needs the workload to reference the config; a named one does not. A skip
//! of a config the workload uses that is likely a mistake is a `Suspect`: counted and
//! shown by `explain`.

use crate::{
    operator::model::{
        annotations::WorkloadRules,
        facts::ConfigFlags,
        kinds::{ConfigKind, WorkloadKind},
        references::PodRefs,
    },
    shared::go::parse_go_bool,
};

/// Options that change decisions.
#[derive(Clone, Debug, Default)]
pub struct DecideOptions {
    pub auto_reload_all: bool,
    pub ignored_workload_kinds: Vec<WorkloadKind>,
}

/// Why a workload reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A `…/reload` list item matched: no reference needed.
    Named,
    /// `search` + `match`: the workload must reference the config.
    Search,
    /// `auto`, typed auto or `--auto-reload-all`: the workload must reference the config.
    Auto,
}

impl Reason {
    pub fn needs_reference(self) -> bool {
        !matches!(self, Reason::Named)
    }
}

/// Why a workload does not reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    IgnoredWorkloadType,
    ConfigIgnored,
    Excluded,
    NotSelected,
}

pub type Decision = Result<Reason, Skip>;

/// `policy_auto`: a policy makes this workload auto where it does not set auto itself.
pub fn should_reload(
    opts: &DecideOptions,
    workload: WorkloadKind,
    rules: &WorkloadRules,
    policy_auto: bool,
    kind: ConfigKind,
    name: &str,
    config: ConfigFlags,
) -> Decision {
    if opts.ignored_workload_kinds.contains(&workload) {
        return Err(Skip::IgnoredWorkloadType);
    }
    if config.ignore {
        return Err(Skip::ConfigIgnored);
    }
    if rules.excludes(kind, name) {
        return Err(Skip::Excluded);
    }
    let src = rules.source_for(kind);
    if src.reload(kind).is_some_and(|p| p.matches(name)) {
        return Ok(Reason::Named);
    }
    if src.search.as_deref() == Some("true") && config.search_match {
        return Ok(Reason::Search);
    }
    let auto = src.auto.as_deref().unwrap_or("");
    let typed = src.typed_auto(kind).unwrap_or("");
    if parse_go_bool(auto) == Some(true)
        || parse_go_bool(typed) == Some(true)
        || (auto.is_empty() && typed.is_empty() && (opts.auto_reload_all || policy_auto))
    {
        return Ok(Reason::Auto);
    }
    Err(Skip::NotSelected)
}

/// A skip of a config the workload uses that its annotations most likely did not mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspect {
    /// Its exclude list names a config it uses.
    ExcludedButUsed,
    /// A typed auto for another kind is on, none for this kind (and no `auto`).
    TypedAutoOtherKind,
    /// `search: "true"`, but the config lacks `match: "true"`.
    SearchWithoutMatch,
    /// `auto` or the typed auto is set to something that is not a Go boolean (`yes`).
    AutoNotABool,
}

impl Suspect {
    /// The `reason` label of `kube_reloader_suspicious_skips_total`.
    pub fn label(self) -> &'static str {
        match self {
            Suspect::ExcludedButUsed => "excluded_but_used",
            Suspect::TypedAutoOtherKind => "typed_auto_other_kind",
            Suspect::SearchWithoutMatch => "search_without_match",
            Suspect::AutoNotABool => "auto_not_a_bool",
        }
    }

    pub const ALL: [Suspect; 4] = [
        Suspect::ExcludedButUsed,
        Suspect::TypedAutoOtherKind,
        Suspect::SearchWithoutMatch,
        Suspect::AutoNotABool,
    ];
}

/// Whether a skip of a config the workload references is a likely mistake.
pub fn suspect(
    rules: &WorkloadRules,
    kind: ConfigKind,
    config: ConfigFlags,
    skip: Skip,
) -> Option<Suspect> {
    let src = rules.source_for(kind);
    match skip {
        Skip::Excluded => Some(Suspect::ExcludedButUsed),
        Skip::NotSelected => {
            let not_bool = |v: Option<&str>| v.is_some_and(|v| parse_go_bool(v).is_none());
            if not_bool(src.auto.as_deref()) || not_bool(src.typed_auto(kind)) {
                return Some(Suspect::AutoNotABool);
            }
            if src.search.as_deref() == Some("true") && !config.search_match {
                return Some(Suspect::SearchWithoutMatch);
            }
            // Each kind's typed auto is read where that kind's keys are read.
            let other_on = ConfigKind::ALL.iter().any(|k| {
                *k != kind
                    && rules.source_for(*k).typed_auto(*k).and_then(parse_go_bool) == Some(true)
            });
            let this_unset = src.auto.is_none() && src.typed_auto(kind).is_none();
            (other_on && this_unset).then_some(Suspect::TypedAutoOtherKind)
        }
        Skip::IgnoredWorkloadType | Skip::ConfigIgnored => None,
    }
}

/// The container that carries the marker, or `None` when an auto reload finds no
/// reference (the workload is then skipped, as in stakater).
pub fn target_container<'a>(
    refs: &'a PodRefs,
    kind: ConfigKind,
    name: &str,
    reason: Reason,
) -> Option<&'a str> {
    match refs.find(kind, name) {
        Some(r) => Some(&r.container),
        None if reason.needs_reference() => None,
        None => refs.first_container(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::model::{annotations::AnnotationKeys, references::ConfigRef};
    use std::collections::BTreeMap;

    fn rules(meta: &[(&str, &str)], tmpl: &[(&str, &str)]) -> WorkloadRules {
        let m: BTreeMap<_, _> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let t: BTreeMap<_, _> = tmpl
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorkloadRules::parse(&AnnotationKeys::default(), Some(&m), Some(&t))
    }

    const CM: ConfigKind = ConfigKind::ConfigMap;
    const SEC: ConfigKind = ConfigKind::Secret;
    const DEP: WorkloadKind = WorkloadKind::Deployment;

    fn decide(r: &WorkloadRules, kind: ConfigKind, name: &str) -> Decision {
        should_reload(
            &DecideOptions::default(),
            DEP,
            r,
            false,
            kind,
            name,
            ConfigFlags::default(),
        )
    }

    #[test]
    fn auto_and_typed_auto() {
        let r = rules(&[("reloader.stakater.com/auto", "true")], &[]);
        assert_eq!(decide(&r, CM, "x"), Ok(Reason::Auto));
        assert_eq!(decide(&r, SEC, "x"), Ok(Reason::Auto));
        let r = rules(&[("secret.reloader.stakater.com/auto", "1")], &[]);
        assert_eq!(decide(&r, SEC, "x"), Ok(Reason::Auto));
        assert_eq!(
            decide(&r, CM, "x"),
            Err(Skip::NotSelected),
            "typed auto is for its kind only"
        );
        let r = rules(&[("reloader.stakater.com/auto", "yes")], &[]);
        assert_eq!(
            decide(&r, CM, "x"),
            Err(Skip::NotSelected),
            "ParseBool rejects yes"
        );
    }

    #[test]
    fn named_reload_wins_over_auto_false() {
        let r = rules(
            &[
                ("reloader.stakater.com/auto", "false"),
                ("configmap.reloader.stakater.com/reload", "app-.*"),
            ],
            &[],
        );
        assert_eq!(decide(&r, CM, "app-1"), Ok(Reason::Named));
        assert_eq!(decide(&r, CM, "other"), Err(Skip::NotSelected));
    }

    #[test]
    fn ignore_and_exclude_come_first() {
        let r = rules(
            &[
                ("configmap.reloader.stakater.com/reload", "a,b"),
                ("configmaps.exclude.reloader.stakater.com/reload", "b"),
            ],
            &[],
        );
        assert_eq!(decide(&r, CM, "b"), Err(Skip::Excluded));
        let ignored = ConfigFlags {
            ignore: true,
            search_match: false,
        };
        assert_eq!(
            should_reload(&DecideOptions::default(), DEP, &r, false, CM, "a", ignored),
            Err(Skip::ConfigIgnored)
        );
        let opts = DecideOptions {
            ignored_workload_kinds: vec![WorkloadKind::Job],
            ..Default::default()
        };
        let flags = ConfigFlags::default();
        assert_eq!(
            should_reload(&opts, WorkloadKind::Job, &r, false, CM, "a", flags),
            Err(Skip::IgnoredWorkloadType)
        );
        assert_eq!(
            should_reload(&opts, DEP, &r, false, CM, "a", flags),
            Ok(Reason::Named)
        );
    }

    #[test]
    fn search_needs_match_true_exactly() {
        let r = rules(&[("reloader.stakater.com/search", "true")], &[]);
        let matched = ConfigFlags {
            ignore: false,
            search_match: true,
        };
        let opts = DecideOptions::default();
        assert_eq!(
            should_reload(&opts, DEP, &r, false, CM, "x", matched),
            Ok(Reason::Search)
        );
        assert_eq!(decide(&r, CM, "x"), Err(Skip::NotSelected));
        let r = rules(&[("reloader.stakater.com/search", "True")], &[]);
        assert_eq!(
            should_reload(&opts, DEP, &r, false, CM, "x", matched),
            Err(Skip::NotSelected)
        );
    }

    #[test]
    fn auto_reload_all_respects_explicit_values() {
        let opts = DecideOptions {
            auto_reload_all: true,
            ..Default::default()
        };
        let f = ConfigFlags::default();
        let none = rules(&[], &[]);
        assert_eq!(
            should_reload(&opts, DEP, &none, false, CM, "x", f),
            Ok(Reason::Auto)
        );
        let off = rules(&[("reloader.stakater.com/auto", "false")], &[]);
        assert_eq!(
            should_reload(&opts, DEP, &off, false, CM, "x", f),
            Err(Skip::NotSelected)
        );
        let typed_off = rules(&[("configmap.reloader.stakater.com/auto", "false")], &[]);
        assert_eq!(
            should_reload(&opts, DEP, &typed_off, false, CM, "x", f),
            Err(Skip::NotSelected)
        );
    }

    #[test]
    fn a_policy_is_auto_unless_the_workload_sets_auto() {
        let (o, f) = (DecideOptions::default(), ConfigFlags::default());
        let none = rules(&[], &[]);
        assert_eq!(
            should_reload(&o, DEP, &none, true, CM, "x", f),
            Ok(Reason::Auto)
        );
        assert_eq!(
            should_reload(&o, DEP, &none, false, CM, "x", f),
            Err(Skip::NotSelected)
        );
        let off = rules(&[("reloader.stakater.com/auto", "false")], &[]);
        assert_eq!(
            should_reload(&o, DEP, &off, true, CM, "x", f),
            Err(Skip::NotSelected),
            "an explicit auto: false wins over the policy"
        );
        let named = rules(&[("configmap.reloader.stakater.com/reload", "a")], &[]);
        assert_eq!(
            should_reload(&o, DEP, &named, true, CM, "a", f),
            Ok(Reason::Named)
        );
    }

    #[test]
    fn likely_mistakes_are_suspects() {
        let f = ConfigFlags::default();
        let s = |meta: &[(&str, &str)], kind, skip| suspect(&rules(meta, &[]), kind, f, skip);
        let typed = [("secret.reloader.stakater.com/auto", "true")];
        assert_eq!(
            s(&typed, CM, Skip::NotSelected),
            Some(Suspect::TypedAutoOtherKind)
        );
        let both = [
            ("secret.reloader.stakater.com/auto", "true"),
            ("configmap.reloader.stakater.com/auto", "false"),
        ];
        assert_eq!(s(&both, CM, Skip::NotSelected), None, "false on purpose");
        assert_eq!(
            s(
                &[("reloader.stakater.com/auto", "yes")],
                CM,
                Skip::NotSelected
            ),
            Some(Suspect::AutoNotABool)
        );
        assert_eq!(
            s(
                &[("reloader.stakater.com/auto", "false")],
                CM,
                Skip::NotSelected
            ),
            None
        );
        let search = [("reloader.stakater.com/search", "true")];
        assert_eq!(
            s(&search, CM, Skip::NotSelected),
            Some(Suspect::SearchWithoutMatch)
        );
        assert_eq!(s(&[], CM, Skip::Excluded), Some(Suspect::ExcludedButUsed));
        assert_eq!(s(&[], CM, Skip::NotSelected), None, "not annotated at all");
        assert_eq!(s(&typed, CM, Skip::ConfigIgnored), None);
    }

    #[test]
    fn pod_template_fallback() {
        let r = rules(&[], &[("reloader.stakater.com/auto", "true")]);
        assert_eq!(decide(&r, CM, "x"), Ok(Reason::Auto));
        // Any of the four keys on metadata hides the template entirely.
        let r = rules(
            &[("reloader.stakater.com/search", "false")],
            &[("reloader.stakater.com/auto", "true")],
        );
        assert_eq!(decide(&r, CM, "x"), Err(Skip::NotSelected));
    }

    #[test]
    fn container_choice_for_named_and_auto() {
        let refs = PodRefs {
            containers: vec!["first".into(), "second".into()],
            refs: vec![ConfigRef {
                kind: CM,
                name: "used".into(),
                container: "second".into(),
            }],
        };
        assert_eq!(
            target_container(&refs, CM, "used", Reason::Auto),
            Some("second")
        );
        assert_eq!(target_container(&refs, CM, "unused", Reason::Auto), None);
        assert_eq!(target_container(&refs, CM, "unused", Reason::Search), None);
        assert_eq!(
            target_container(&refs, CM, "unused", Reason::Named),
            Some("first")
        );
        assert_eq!(
            target_container(&PodRefs::default(), CM, "x", Reason::Named),
            None
        );
    }
}
