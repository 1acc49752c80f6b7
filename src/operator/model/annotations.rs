//! Workload and config annotations → reload rules, parsed once when an object is cached.
//! Keys default to stakater's and can be renamed by its flags (see `AnnotationKeys`).

use std::{collections::BTreeMap, time::Duration};

use regex::Regex;

use crate::{operator::model::kinds::ConfigKind, shared::go::parse_go_duration};

/// The annotation keys in force. Defaults are stakater's; the CLI may override some.
#[derive(Clone, Debug)]
pub struct AnnotationKeys {
    pub auto: String,
    pub configmap_auto: String,
    pub secret_auto: String,
    pub spc_auto: String,
    pub configmap_reload: String,
    pub secret_reload: String,
    pub spc_reload: String,
    pub search: String,
    pub search_match: String,
    pub ignore: String,
    pub configmap_exclude: String,
    pub secret_exclude: String,
    pub spc_exclude: String,
    pub pause_period: String,
    pub paused_at: String,
    pub rollout_strategy: String,
    pub cronjob_strategy: String,
}

/// The annotation the `annotations` strategy writes on the pod template (not configurable).
pub const LAST_RELOADED_FROM: &str = "reloader.stakater.com/last-reloaded-from";

/// Ours, on a Namespace (with `--namespace-opt-in`): `"true"` makes its workloads auto.
pub const NAMESPACE_AUTO: &str = "kube-reloader.io/auto";

/// Our per-workload timing annotations (workload metadata), overriding the global flags of
/// the same names. Ours, not stakater's: no stakater flag renames them.
pub const COALESCE_WINDOW: &str = "kube-reloader.io/coalesce-window";
pub const COALESCE_MAX_DELAY: &str = "kube-reloader.io/coalesce-max-delay";
pub const MIN_RELOAD_INTERVAL: &str = "kube-reloader.io/min-reload-interval";

/// Ours, on the workload: `evict` rolls it by evicting its pods, its template untouched.
pub const RELOAD_STRATEGY: &str = "kube-reloader.io/reload-strategy";
/// Ours, with `reload-strategy: evict`: how many pods may be not Ready at once (default 1).
pub const EVICT_MAX_UNAVAILABLE: &str = "kube-reloader.io/evict-max-unavailable";
/// Ours, written on the workload by the eviction strategy: what was rolled, since when.
pub const EVICTED_FOR: &str = "kube-reloader.io/evicted-for";

/// Ours, on the workload (with `--max-concurrent-rollouts`): an integer; higher rolls first.
pub const ROLLOUT_PRIORITY: &str = "kube-reloader.io/rollout-priority";

impl Default for AnnotationKeys {
    fn default() -> Self {
        AnnotationKeys {
            auto: "reloader.stakater.com/auto".into(),
            configmap_auto: "configmap.reloader.stakater.com/auto".into(),
            secret_auto: "secret.reloader.stakater.com/auto".into(),
            spc_auto: "secretproviderclass.reloader.stakater.com/auto".into(),
            configmap_reload: "configmap.reloader.stakater.com/reload".into(),
            secret_reload: "secret.reloader.stakater.com/reload".into(),
            spc_reload: "secretproviderclass.reloader.stakater.com/reload".into(),
            search: "reloader.stakater.com/search".into(),
            search_match: "reloader.stakater.com/match".into(),
            ignore: "reloader.stakater.com/ignore".into(),
            configmap_exclude: "configmaps.exclude.reloader.stakater.com/reload".into(),
            secret_exclude: "secrets.exclude.reloader.stakater.com/reload".into(),
            spc_exclude: "secretproviderclasses.exclude.reloader.stakater.com/reload".into(),
            pause_period: "deployment.reloader.stakater.com/pause-period".into(),
            paused_at: "deployment.reloader.stakater.com/paused-at".into(),
            rollout_strategy: "reloader.stakater.com/rollout-strategy".into(),
            cronjob_strategy: "reloader.stakater.com/cronjob-reload-strategy".into(),
        }
    }
}

impl AnnotationKeys {
    pub fn typed_auto(&self, kind: ConfigKind) -> &str {
        match kind {
            ConfigKind::ConfigMap => &self.configmap_auto,
            ConfigKind::Secret => &self.secret_auto,
            ConfigKind::SecretProviderClass => &self.spc_auto,
        }
    }

    pub fn reload(&self, kind: ConfigKind) -> &str {
        match kind {
            ConfigKind::ConfigMap => &self.configmap_reload,
            ConfigKind::Secret => &self.secret_reload,
            ConfigKind::SecretProviderClass => &self.spc_reload,
        }
    }

    pub fn exclude(&self, kind: ConfigKind) -> &str {
        match kind {
            ConfigKind::ConfigMap => &self.configmap_exclude,
            ConfigKind::Secret => &self.secret_exclude,
            ConfigKind::SecretProviderClass => &self.spc_exclude,
        }
    }
}

/// One item of a reload list: a literal name, or a regex anchored as `^item$`.
#[derive(Clone, Debug)]
pub enum NamePattern {
    Literal(String),
    /// The compiled item, and the item as written.
    Regex(Regex, String),
}

impl NamePattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Literal(l) => l == name,
            NamePattern::Regex(re, _) => re.is_match(name),
        }
    }

    /// The item as written.
    pub fn text(&self) -> &str {
        match self {
            NamePattern::Literal(l) | NamePattern::Regex(_, l) => l,
        }
    }

    pub fn is_regex(&self) -> bool {
        matches!(self, NamePattern::Regex(..))
    }
}

/// A `…/reload` list: comma-separated, each item space-trimmed and anchored.
#[derive(Clone, Debug, Default)]
pub struct NamePatterns {
    items: Vec<NamePattern>,
    /// Items that are not valid regexes, with the parser's message; they are skipped.
    pub invalid: Vec<(String, String)>,
}

/// Whether `^(?:item)$` can only match `item` itself: no character that is special outside
/// a character class. (`regex::escape` also escapes `-`, which is in most object names, and
/// compiling thousands of those as regexes on every update of a workload is slow.)
fn is_literal(item: &str) -> bool {
    !item.contains([
        '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
    ])
}

/// Longest reload list item we compile; a regex this long is a mistake or an attack.
const MAX_PATTERN_LEN: usize = 1024;

impl NamePatterns {
    pub fn parse(value: &str) -> Self {
        let mut out = NamePatterns::default();
        for item in value.split(',').map(str::trim) {
            if item.is_empty() {
                continue; // `^$` never matches an object name
            }
            if is_literal(item) {
                out.items.push(NamePattern::Literal(item.to_owned()));
                continue;
            }
            if item.len() > MAX_PATTERN_LEN {
                out.invalid.push((
                    truncate(item),
                    format!("longer than {MAX_PATTERN_LEN} bytes"),
                ));
                continue;
            }
            match compile(item) {
                Ok(re) => out.items.push(NamePattern::Regex(re, item.to_owned())),
                Err(e) => out.invalid.push((truncate(item), e)),
            }
        }
        out
    }

    /// The items that are plain names (indexable without a regex).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|p| match p {
            NamePattern::Literal(l) => Some(l.as_str()),
            NamePattern::Regex(..) => None,
        })
    }

    pub fn has_regex(&self) -> bool {
        self.items.iter().any(NamePattern::is_regex)
    }

    pub fn matches(&self, name: &str) -> bool {
        self.items.iter().any(|p| p.matches(name))
    }

    /// The valid items in order.
    pub fn items(&self) -> &[NamePattern] {
        &self.items
    }

    /// The first item that matches `name` (what `explain` names as the rule).
    pub fn matching_item(&self, name: &str) -> Option<&NamePattern> {
        self.items.iter().find(|p| p.matches(name))
    }
}

/// An item as Go reads it (stakater's dialect), anchored as a whole.
fn compile(item: &str) -> Result<Regex, String> {
    let pattern = crate::shared::go::regexp::anchored(item).map_err(|e| e.to_string())?;
    regex::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| first_line(&e.to_string()))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_owned()
}

/// The reload keys found on one annotation map (workload metadata or pod template).
/// `Some` means the key is present, even with an empty value, as in stakater.
#[derive(Clone, Debug, Default)]
pub struct RuleSource {
    pub auto: Option<String>,
    pub typed_auto: [Option<String>; 3],
    pub reload: [Option<NamePatterns>; 3],
    pub search: Option<String>,
}

impl RuleSource {
    pub fn parse(keys: &AnnotationKeys, annotations: Option<&BTreeMap<String, String>>) -> Self {
        let get = |k: &str| annotations.and_then(|a| a.get(k)).cloned();
        let mut src = RuleSource {
            auto: get(&keys.auto),
            search: get(&keys.search),
            ..Default::default()
        };
        for kind in ConfigKind::ALL {
            src.typed_auto[kind.index()] = get(keys.typed_auto(kind));
            src.reload[kind.index()] = get(keys.reload(kind)).map(|v| NamePatterns::parse(&v));
        }
        src
    }

    pub fn typed_auto(&self, kind: ConfigKind) -> Option<&str> {
        self.typed_auto[kind.index()].as_deref()
    }

    pub fn reload(&self, kind: ConfigKind) -> Option<&NamePatterns> {
        self.reload[kind.index()].as_ref()
    }

    /// Stakater reads the pod template only when none of these four is on the metadata.
    pub fn has_any_for(&self, kind: ConfigKind) -> bool {
        self.reload(kind).is_some()
            || self.typed_auto(kind).is_some()
            || self.auto.is_some()
            || self.search.is_some()
    }
}

/// How an Argo Rollout is rolled (`reloader.stakater.com/rollout-strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RolloutStrategy {
    /// Update the pod template (stakater's default).
    #[default]
    Rollout,
    /// Merge-patch `spec.restartAt`; the template is left alone.
    Restart,
}

/// How a CronJob is reloaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CronJobStrategy {
    /// Create a Job from the CronJob now (stakater's way).
    #[default]
    CreateJob,
    /// Patch the jobTemplate so the next scheduled Job picks up the change.
    Patch,
}

/// A Go duration annotation: `None` when absent, `Err` holding the bad value.
pub type DurationAnnotation = Option<Result<Duration, String>>;

fn duration(value: Option<&String>) -> DurationAnnotation {
    value.map(|v| parse_go_duration(v).ok_or_else(|| v.clone()))
}

/// A workload's own timing (`kube-reloader.io/…`); what is absent or invalid falls back to
/// the global flag (see `operator::timing`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    pub window: DurationAnnotation,
    pub max_delay: DurationAnnotation,
    pub min_interval: DurationAnnotation,
}

impl Timing {
    fn parse(metadata: Option<&BTreeMap<String, String>>) -> Self {
        let get = |k: &str| duration(metadata.and_then(|a| a.get(k)));
        Timing {
            window: get(COALESCE_WINDOW),
            max_delay: get(COALESCE_MAX_DELAY),
            min_interval: get(MIN_RELOAD_INTERVAL),
        }
    }

    /// Each bad value, naming its annotation and the flag that applies instead.
    fn problems(&self) -> impl Iterator<Item = String> + '_ {
        [
            (&self.window, COALESCE_WINDOW, "--coalesce-window"),
            (&self.max_delay, COALESCE_MAX_DELAY, "--coalesce-max-delay"),
            (
                &self.min_interval,
                MIN_RELOAD_INTERVAL,
                "--min-reload-interval",
            ),
        ]
        .into_iter()
        .filter_map(|(value, key, flag)| match value {
            Some(Err(bad)) => Some(format!(
                "{}; the global {flag} applies",
                invalid_duration(bad, key)
            )),
            _ => None,
        })
    }
}

fn invalid_duration(bad: &str, key: &str) -> String {
    format!(
        "invalid duration {:?} in annotation {key}; expected a Go duration such as 30s, 5m or 1h30m",
        truncate(bad)
    )
}

/// Everything the decision needs to know about one workload's annotations.
#[derive(Clone, Debug, Default)]
pub struct WorkloadRules {
    pub metadata: RuleSource,
    pub template: RuleSource,
    /// Exclude lists (exact names), read from workload metadata only.
    pub exclude: [Option<Vec<String>>; 3],
    /// `pause-period`, Deployments only; `Err` holds the bad value.
    pub pause_period: Option<Result<Duration, String>>,
    pub rollout_strategy: RolloutStrategy,
    pub cronjob_strategy: Option<CronJobStrategy>,
    /// Per-workload coalescing and pacing, read from workload metadata only.
    pub timing: Timing,
    /// `kube-reloader.io/reload-strategy: evict`.
    pub evict: bool,
    /// `kube-reloader.io/evict-max-unavailable`; `Err` holds the bad value (then 1).
    pub evict_max_unavailable: Option<Result<usize, String>>,
    /// `kube-reloader.io/rollout-priority`; `Err` holds the bad value (then 0).
    pub rollout_priority: Option<Result<i32, String>>,
}

impl WorkloadRules {
    /// With the eviction strategy: pods not Ready at once; absent or invalid is 1.
    pub fn evict_max_unavailable(&self) -> usize {
        self.evict_max_unavailable
            .clone()
            .and_then(Result::ok)
            .unwrap_or(1)
    }

    /// The wave priority: higher rolls first; absent or invalid is 0.
    pub fn priority(&self) -> i32 {
        self.rollout_priority
            .clone()
            .and_then(Result::ok)
            .unwrap_or(0)
    }

    pub fn parse(
        keys: &AnnotationKeys,
        metadata: Option<&BTreeMap<String, String>>,
        template: Option<&BTreeMap<String, String>>,
    ) -> Self {
        let get = |k: &str| metadata.and_then(|a| a.get(k));
        let mut rules = WorkloadRules {
            metadata: RuleSource::parse(keys, metadata),
            template: RuleSource::default(),
            pause_period: duration(get(&keys.pause_period)),
            timing: Timing::parse(metadata),
            rollout_priority: get(ROLLOUT_PRIORITY)
                .map(|v| v.trim().parse().map_err(|_| v.clone())),
            evict: get(RELOAD_STRATEGY).is_some_and(|v| v.trim() == "evict"),
            evict_max_unavailable: get(EVICT_MAX_UNAVAILABLE).map(|v| {
                (v.trim().parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| v.clone())
            }),
            rollout_strategy: match get(&keys.rollout_strategy).map(String::as_str) {
                Some("restart") => RolloutStrategy::Restart,
                _ => RolloutStrategy::Rollout,
            },
            cronjob_strategy: get(&keys.cronjob_strategy).map(|v| match v.as_str() {
                "patch" => CronJobStrategy::Patch,
                _ => CronJobStrategy::CreateJob,
            }),
            ..Default::default()
        };
        // The template is only ever consulted when metadata lacks the keys for some kind.
        if !ConfigKind::ALL
            .iter()
            .all(|k| rules.metadata.has_any_for(*k))
        {
            rules.template = RuleSource::parse(keys, template);
        }
        for kind in ConfigKind::ALL {
            rules.exclude[kind.index()] = get(keys.exclude(kind)).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            });
        }
        rules
    }

    /// The source stakater reads the reload keys from for a change of `kind`.
    pub fn source_for(&self, kind: ConfigKind) -> &RuleSource {
        if self.metadata.has_any_for(kind) {
            &self.metadata
        } else {
            &self.template
        }
    }

    pub fn excludes(&self, kind: ConfigKind, name: &str) -> bool {
        self.exclude[kind.index()]
            .as_ref()
            .is_some_and(|l| l.iter().any(|n| n == name))
    }

    /// Problems worth a Warning Event: invalid regex items and bad durations.
    pub fn problems(&self, keys: &AnnotationKeys) -> Vec<String> {
        let mut out = Vec::new();
        for src in [&self.metadata, &self.template] {
            for kind in ConfigKind::ALL {
                for (item, err) in src.reload(kind).map(|p| &p.invalid[..]).unwrap_or(&[]) {
                    out.push(format!(
                        "invalid regex {item:?} in annotation {}: {err}; the item is skipped",
                        keys.reload(kind)
                    ));
                }
            }
        }
        if let Some(Err(bad)) = &self.pause_period {
            out.push(invalid_duration(bad, &keys.pause_period));
        }
        out.extend(self.timing.problems());
        if let Some(Err(bad)) = &self.evict_max_unavailable {
            out.push(format!(
                "invalid count {:?} in annotation {EVICT_MAX_UNAVAILABLE} (a whole number of at least 1); 1 is used",
                truncate(bad)
            ));
        }
        if let Some(Err(bad)) = &self.rollout_priority {
            out.push(format!(
                "invalid integer {:?} in annotation {ROLLOUT_PRIORITY}; priority 0 is used",
                truncate(bad)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reload_list_items_are_trimmed_and_anchored() {
        let p = NamePatterns::parse(" app-config , db-.* ,");
        assert!(p.matches("app-config"));
        assert!(p.matches("db-main"));
        assert!(!p.matches("my-app-config"), "anchored at the start");
        assert!(!p.matches("app-config-2"), "anchored at the end");
        assert!(!p.matches("xdb-main"));
        assert!(p.invalid.is_empty());
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        // Go compiles "^a|b$", which would match "ab-x"; we anchor the whole item, which
        // is what users mean (and what stakater documents).
        let p = NamePatterns::parse("a|b");
        assert!(p.matches("a") && p.matches("b"));
        assert!(!p.matches("ab-x"));
    }

    #[test]
    fn invalid_regex_items_are_reported_and_skipped() {
        let p = NamePatterns::parse("good,bad[,also-good");
        assert!(p.matches("good") && p.matches("also-good"));
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].0, "bad[");
    }

    #[test]
    fn template_is_read_only_when_metadata_has_none_of_the_four_keys() {
        let keys = AnnotationKeys::default();
        let meta = ann(&[("secret.reloader.stakater.com/reload", "s1")]);
        let tmpl = ann(&[("configmap.reloader.stakater.com/reload", "c1")]);
        let rules = WorkloadRules::parse(&keys, Some(&meta), Some(&tmpl));
        // For Secrets the metadata has the key; for ConfigMaps it does not.
        assert!(
            rules
                .source_for(ConfigKind::Secret)
                .reload(ConfigKind::Secret)
                .is_some()
        );
        let cm_src = rules.source_for(ConfigKind::ConfigMap);
        assert!(cm_src.reload(ConfigKind::ConfigMap).unwrap().matches("c1"));

        // `auto` on metadata counts for both kinds, so the template is never read.
        let meta = ann(&[("reloader.stakater.com/auto", "false")]);
        let rules = WorkloadRules::parse(&keys, Some(&meta), Some(&tmpl));
        assert!(
            rules
                .source_for(ConfigKind::ConfigMap)
                .reload(ConfigKind::ConfigMap)
                .is_none()
        );
    }

    #[test]
    fn exclude_and_pause_period_come_from_metadata_only() {
        let keys = AnnotationKeys::default();
        let meta = ann(&[
            ("configmaps.exclude.reloader.stakater.com/reload", "a, b"),
            ("deployment.reloader.stakater.com/pause-period", "1m30s"),
        ]);
        let tmpl = ann(&[("secrets.exclude.reloader.stakater.com/reload", "s")]);
        let rules = WorkloadRules::parse(&keys, Some(&meta), Some(&tmpl));
        assert!(rules.excludes(ConfigKind::ConfigMap, "b"));
        assert!(!rules.excludes(ConfigKind::ConfigMap, "c"));
        assert!(!rules.excludes(ConfigKind::Secret, "s"));
        assert_eq!(rules.pause_period, Some(Ok(Duration::from_secs(90))));
    }

    #[test]
    fn problems_name_the_annotation_and_the_bad_value() {
        let keys = AnnotationKeys::default();
        let meta = ann(&[
            ("configmap.reloader.stakater.com/reload", "ok,(unclosed"),
            ("deployment.reloader.stakater.com/pause-period", "soon"),
        ]);
        let problems = WorkloadRules::parse(&keys, Some(&meta), None).problems(&keys);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("(unclosed") && problems[0].contains("configmap.reloader"));
        assert!(problems[1].contains("\"soon\""));
    }

    #[test]
    fn timing_comes_from_metadata_and_bad_values_are_problems() {
        let keys = AnnotationKeys::default();
        let meta = ann(&[
            (COALESCE_WINDOW, "0s"),
            (COALESCE_MAX_DELAY, "-5s"),
            (MIN_RELOAD_INTERVAL, "soon"),
        ]);
        let tmpl = ann(&[(COALESCE_WINDOW, "1m")]);
        let rules = WorkloadRules::parse(&keys, Some(&meta), Some(&tmpl));
        assert_eq!(rules.timing.window, Some(Ok(Duration::ZERO)));
        assert_eq!(rules.timing.max_delay, Some(Err("-5s".into())), "negative");
        let problems = rules.problems(&keys);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("\"-5s\"") && problems[0].contains(COALESCE_MAX_DELAY));
        assert!(problems[1].contains("\"soon\"") && problems[1].contains("--min-reload-interval"));
        let only_tmpl = WorkloadRules::parse(&keys, None, Some(&tmpl));
        assert_eq!(
            only_tmpl.timing,
            Timing::default(),
            "the template is not read"
        );
    }

    #[test]
    fn rollout_and_cronjob_strategies() {
        let keys = AnnotationKeys::default();
        let meta = ann(&[
            ("reloader.stakater.com/rollout-strategy", "restart"),
            ("reloader.stakater.com/cronjob-reload-strategy", "patch"),
        ]);
        let r = WorkloadRules::parse(&keys, Some(&meta), None);
        assert_eq!(r.rollout_strategy, RolloutStrategy::Restart);
        assert_eq!(r.cronjob_strategy, Some(CronJobStrategy::Patch));
        let meta = ann(&[("reloader.stakater.com/rollout-strategy", "bogus")]);
        let r = WorkloadRules::parse(&keys, Some(&meta), None);
        assert_eq!(r.rollout_strategy, RolloutStrategy::Rollout);
    }
}
