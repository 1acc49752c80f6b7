//! The engine's rules, without an API server: observations go in (as the watches send
//! them), the clock is tokio's paused one, and what comes out is the outbox of effects.

use std::{sync::Arc, time::Duration};

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use tokio::sync::watch;

use super::{Dispatch, Done, Effect, Engine, Persist, state_sync::Flushed};
use crate::{
    cli::Cli,
    operator::{
        apply::{Applier, WriteOutcome, markers::Marker},
        health::Readiness,
        metrics::Metrics,
        model::{
            facts::{self, ConfigEntry, EnvMarker},
            hash::{self, ConfigHash},
            kinds::{ConfigKey, ConfigKind, WorkloadKey, WorkloadKind},
        },
        options::Options,
        state::{
            State,
            configmaps::{Loaded, StateStore},
        },
        watch::{Obs, StreamScope, WatchMsg, Watched},
    },
};

const CONFIGS: usize = 0;
const WORKLOADS: usize = 1;

/// A client whose every request fails: effects are read here, never performed.
fn no_api() -> kube::Client {
    let service = tower::service_fn(|_: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, _>(std::io::Error::other("no API server here"))
    });
    kube::Client::new(service, "default")
}

struct Harness {
    engine: Engine,
    /// The writes handed out and not yet answered, oldest first.
    dispatched: Vec<Dispatch>,
    leader: watch::Sender<bool>,
    _ready: watch::Receiver<Readiness>,
}

fn harness(flags: &[&str], persisted: Option<State>) -> Harness {
    // No window unless a test sets one (a repeated flag takes its last value).
    let argv = ["kube-reloader", "--coalesce-window=0s"];
    let cli =
        Cli::try_parse_from(argv.into_iter().chain(flags.iter().copied())).expect("valid flags");
    let opts = Arc::new(Options::from_args(&cli.operator).expect("valid options"));
    let metrics = Metrics::new(false);
    let scopes = vec![
        StreamScope {
            what: Watched::Config(ConfigKind::ConfigMap),
            namespace: None,
        },
        StreamScope {
            what: Watched::Workload(WorkloadKind::Deployment),
            namespace: None,
        },
    ];
    let applier = Applier::new(no_api(), opts.clone(), metrics.clone(), None);
    let (ready, ready_rx) = watch::channel(Readiness::default());
    let (leader, leader_rx) = watch::channel(true);
    let persist = persisted.map(|state| {
        let store = StateStore::new(no_api(), "ops".into());
        let mut texts = vec![None; crate::operator::state::SHARDS];
        texts[crate::operator::state::ANCHOR] = Some(String::new());
        Persist::new(
            store,
            Loaded {
                state: Some(state),
                texts,
            },
        )
    });
    let engine = Engine::new(opts, scopes, applier, ready, metrics, persist, leader_rx);
    Harness {
        engine,
        dispatched: Vec::new(),
        leader,
        _ready: ready_rx,
    }
}

fn cm_key(name: &str) -> ConfigKey {
    ConfigKey {
        kind: ConfigKind::ConfigMap,
        namespace: "ns".into(),
        name: name.into(),
    }
}

fn config(name: &str, value: &str) -> Obs {
    let entry = ConfigEntry {
        hash: hash::of_str(value),
        flags: Default::default(),
    };
    Obs::Config(cm_key(name), entry)
}

/// An auto Deployment `name` whose container `app` takes every ConfigMap in `uses` by
/// `envFrom`.
fn app(name: &str, uses: &[&str], annotations: serde_json::Value) -> Obs {
    let env_from: Vec<_> = uses
        .iter()
        .map(|c| json!({ "configMapRef": { "name": c } }))
        .collect();
    let mut meta_annotations = json!({ "reloader.stakater.com/auto": "true" });
    meta_annotations
        .as_object_mut()
        .unwrap()
        .extend(annotations.as_object().cloned().unwrap_or_default());
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                      "annotations": meta_annotations },
        "spec": { "selector": {}, "template": { "spec": { "containers": [
            { "name": "app", "image": "x", "envFrom": env_from }
        ] } } }
    }))
    .unwrap();
    let facts = facts::deployment(&Default::default(), &d).expect("facts");
    Obs::Workload(Box::new(facts))
}

/// `obs` (a workload) as reloaded before: `var` holds the hash of `value` on `app`.
fn marked(obs: Obs, var: &str, value: &str) -> Obs {
    let Obs::Workload(mut f) = obs else {
        unreachable!("a workload")
    };
    f.env_markers.push(EnvMarker {
        container: "app".into(),
        var: var.into(),
        value: h(value),
    });
    Obs::Workload(f)
}

/// Started with `flags` and no state: `app` takes ConfigMap `cfg` (`0`).
fn one_app(flags: &[&str]) -> Harness {
    let mut t = harness(flags, None);
    t.start(
        vec![config("cfg", "0")],
        vec![app("app", &["cfg"], json!({}))],
    );
    t
}

impl Harness {
    /// Each stream lists `objects` of its kind, as at start-up or after a lost watch.
    fn list(&mut self, stream: usize, objects: Vec<Obs>) {
        self.engine.on_watch(WatchMsg::Init { stream });
        for obs in objects {
            self.engine.on_watch(WatchMsg::InitApply { stream, obs });
        }
        self.engine.on_watch(WatchMsg::InitDone { stream });
    }

    fn start(&mut self, configs: Vec<Obs>, workloads: Vec<Obs>) {
        self.list(CONFIGS, configs);
        self.list(WORKLOADS, workloads);
        assert!(self.engine.ready.borrow().warm);
    }

    fn live(&mut self, stream: usize, obs: Obs) {
        self.engine.on_watch(WatchMsg::Apply { stream, obs });
    }

    /// One turn of the loop's timer arm: the writes it asks for, by workload, with the
    /// configs each is for. Other effects are dropped.
    fn due_writes(&mut self) -> Vec<(WorkloadKey, Vec<String>, Vec<Marker>)> {
        self.engine.dispatch_resumes();
        self.engine.dispatch_due();
        let mut out = Vec::new();
        for e in std::mem::take(&mut self.engine.effects) {
            if let Effect::Write(d) = e {
                let configs = d.write.configs.iter().map(|c| c.name.clone()).collect();
                out.push((d.facts.key.clone(), configs, d.write.markers.clone()));
                self.dispatched.push(*d);
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    /// The write dispatched last comes back with `outcome`.
    fn done(&mut self, outcome: WriteOutcome) {
        let d = self.dispatched.remove(0);
        self.engine.on_done(Done {
            key: d.facts.key.clone(),
            items: d.items,
            first_seen: d.first_seen,
            outcome,
        });
    }
}

fn env_value(markers: &[Marker], var: &str) -> Option<Option<String>> {
    markers.iter().find_map(|m| match m {
        Marker::Env { var: v, value, .. } if v == var => Some(value.clone()),
        _ => None,
    })
}

/// One write, for `app`, setting `cfg`'s env var to the hash of `value`.
fn assert_one_write_of(writes: &[(WorkloadKey, Vec<String>, Vec<Marker>)], value: &str) {
    assert_eq!(names(writes), [("app", vec!["cfg"])]);
    let have = env_value(&writes[0].2, "STAKATER_CFG_CONFIGMAP");
    assert_eq!(have, Some(Some(h(value))));
}

fn h(value: &str) -> String {
    hash::of_str(value).to_string()
}

fn names(writes: &[(WorkloadKey, Vec<String>, Vec<Marker>)]) -> Vec<(&str, Vec<&str>)> {
    writes
        .iter()
        .map(|(k, c, _)| (k.name.as_str(), c.iter().map(String::as_str).collect()))
        .collect()
}

async fn advance(secs: f64) {
    tokio::time::advance(Duration::from_secs_f64(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn the_first_lists_roll_nothing_and_a_change_rolls_its_dependents_after_the_window() {
    let mut t = harness(&["--coalesce-window=2s"], None);
    t.start(
        vec![config("cfg", "0"), config("other", "0")],
        vec![
            app("app", &["cfg"], json!({})),
            app("bystander", &["other"], json!({})),
        ],
    );
    assert!(t.due_writes().is_empty(), "a first list is no change");
    t.live(CONFIGS, config("cfg", "1"));
    assert!(t.due_writes().is_empty(), "held for the window");
    advance(1.9).await;
    assert!(t.due_writes().is_empty());
    advance(0.1).await;
    let writes = t.due_writes();
    assert_eq!(names(&writes), [("app", vec!["cfg"])]);
    assert_eq!(
        env_value(&writes[0].2, "STAKATER_CFG_CONFIGMAP"),
        Some(Some(h("1")))
    );
}

#[tokio::test(start_paused = true)]
async fn changes_within_the_window_are_one_write_with_the_hashes_of_its_moment() {
    let mut t = harness(&["--coalesce-window=2s"], None);
    t.start(
        vec![config("a", "0"), config("b", "0")],
        vec![app("app", &["a", "b"], json!({}))],
    );
    t.live(CONFIGS, config("a", "1"));
    advance(1.0).await;
    t.live(CONFIGS, config("b", "1"));
    t.live(CONFIGS, config("a", "2"));
    advance(1.0).await;
    assert!(
        t.due_writes().is_empty(),
        "the window restarts with each change"
    );
    advance(1.0).await;
    let writes = t.due_writes();
    assert_eq!(names(&writes), [("app", vec!["b", "a"])], "in change order");
    assert_eq!(
        env_value(&writes[0].2, "STAKATER_A_CONFIGMAP"),
        Some(Some(h("2")))
    );
    assert_eq!(
        env_value(&writes[0].2, "STAKATER_B_CONFIGMAP"),
        Some(Some(h("1")))
    );
}

#[tokio::test(start_paused = true)]
async fn the_max_delay_caps_a_window_that_keeps_restarting() {
    let mut t = one_app(&["--coalesce-window=2s", "--coalesce-max-delay=5s"]);
    for i in 1..=4 {
        t.live(CONFIGS, config("cfg", &i.to_string()));
        advance(1.2).await;
        assert!(t.due_writes().is_empty(), "change {i}");
    }
    advance(0.2).await; // 5 s after the first change
    assert_eq!(names(&t.due_writes()), [("app", vec!["cfg"])]);
}

#[tokio::test(start_paused = true)]
async fn a_relist_is_diffed_against_the_cache() {
    let mut t = harness(&["--reload-on-delete=true"], None);
    t.start(
        vec![
            config("same", "0"),
            config("changed", "0"),
            config("gone", "0"),
        ],
        vec![
            app("uses-same", &["same"], json!({})),
            app("uses-changed", &["changed"], json!({})),
            marked(
                app("uses-gone", &["gone"], json!({})),
                "STAKATER_GONE_CONFIGMAP",
                "0",
            ),
        ],
    );
    // The watch was lost; meanwhile `changed` changed and `gone` was deleted.
    t.list(CONFIGS, vec![config("same", "0"), config("changed", "1")]);
    let writes = t.due_writes();
    assert_eq!(
        names(&writes),
        [
            ("uses-changed", vec!["changed"]),
            ("uses-gone", vec!["gone"])
        ]
    );
    assert_eq!(
        env_value(&writes[1].2, "STAKATER_GONE_CONFIGMAP"),
        Some(None),
        "removed"
    );
}

#[tokio::test(start_paused = true)]
async fn one_write_in_flight_per_workload_and_what_came_meanwhile_follows() {
    let mut t = one_app(&[]);
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 1);
    t.live(CONFIGS, config("cfg", "2"));
    assert!(t.due_writes().is_empty(), "the first write is in flight");
    t.done(WriteOutcome::Written);
    assert_one_write_of(&t.due_writes(), "2");
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_is_retried_with_backoff_never_dropped() {
    let mut t = one_app(&[]);
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 1);
    t.done(WriteOutcome::Retry { attempts: 2 });
    // 500 ms doubling per attempt: 2 s after the second failure.
    advance(1.9).await;
    assert!(t.due_writes().is_empty());
    advance(0.1).await;
    let writes = t.due_writes();
    assert_eq!(names(&writes), [("app", vec!["cfg"])]);
    assert_eq!(t.dispatched[0].attempts, 2, "the count goes on");
    t.done(WriteOutcome::Gone);
    advance(100.0).await;
    assert!(t.due_writes().is_empty(), "a workload gone is not retried");
}

#[tokio::test(start_paused = true)]
async fn the_minimum_interval_delays_a_second_reload_without_dropping_it() {
    let mut t = one_app(&["--min-reload-interval=10s"]);
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 1);
    t.done(WriteOutcome::Written);
    advance(1.0).await;
    t.live(CONFIGS, config("cfg", "2"));
    assert!(t.due_writes().is_empty(), "deferred");
    advance(8.9).await;
    assert!(t.due_writes().is_empty());
    advance(0.1).await;
    assert_one_write_of(&t.due_writes(), "2");
}

#[tokio::test(start_paused = true)]
async fn a_follower_keeps_its_pending_reloads_and_writes_them_once_it_leads() {
    let mut t = harness(&[], None);
    t.leader.send_replace(false);
    t.start(
        vec![config("cfg", "0")],
        vec![app("app", &["cfg"], json!({}))],
    );
    t.live(CONFIGS, config("cfg", "1"));
    advance(60.0).await;
    assert!(t.due_writes().is_empty(), "a follower writes nothing");
    t.leader.send_replace(true);
    t.engine.on_leadership(true);
    assert_eq!(names(&t.due_writes()), [("app", vec!["cfg"])]);
}

#[tokio::test(start_paused = true)]
async fn the_catch_up_rolls_what_changed_while_no_operator_watched() {
    let persisted = State::from([
        (cm_key("same"), hash::of_str("0")),
        (cm_key("changed"), hash::of_str("0")),
        (cm_key("unapplied"), ConfigHash::UNAPPLIED),
    ]);
    let mut t = harness(&[], Some(persisted));
    t.start(
        vec![
            config("same", "0"),
            config("changed", "1"),
            config("unapplied", "0"),
        ],
        vec![
            app("uses-same", &["same"], json!({})),
            app("uses-changed", &["changed"], json!({})),
            app("uses-unapplied", &["unapplied"], json!({})),
        ],
    );
    assert_eq!(
        names(&t.due_writes()),
        [
            ("uses-changed", vec!["changed"]),
            ("uses-unapplied", vec!["unapplied"])
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_state_holds_back_a_config_until_its_writes_are_done() {
    let persisted = State::from([(cm_key("cfg"), hash::of_str("0"))]);
    let mut t = harness(&[], Some(persisted));
    t.start(
        vec![config("cfg", "0")],
        vec![app("app", &["cfg"], json!({}))],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 1);
    // A flush as the loop runs one: asked for, written, answered.
    let flushed = |t: &mut Harness| {
        t.engine.maybe_flush();
        let dirty = std::mem::take(&mut t.engine.effects)
            .into_iter()
            .find_map(|e| match e {
                Effect::Flush(_, dirty) => Some(dirty),
                _ => None,
            })?;
        let text: String = dirty.iter().map(|(_, text)| text.as_str()).collect();
        t.engine.on_flushed(Flushed::stored(dirty));
        Some(text)
    };
    let text = flushed(&mut t).unwrap_or_default();
    assert!(text.contains(&h("0")) && !text.contains(&h("1")), "{text}");
    t.done(WriteOutcome::Written);
    advance(5.0).await;
    let text = flushed(&mut t).expect("a flush");
    assert!(text.contains(&h("1")), "{text}");
}

#[tokio::test(start_paused = true)]
async fn invalid_annotations_are_warned_once_per_distinct_problem() {
    let mut t = harness(&[], None);
    let bad = json!({ "deployment.reloader.stakater.com/pause-period": "five minutes" });
    t.start(
        vec![config("cfg", "0")],
        vec![app("app", &["cfg"], bad.clone())],
    );
    let warned = |t: &mut Harness| {
        std::mem::take(&mut t.engine.effects)
            .into_iter()
            .filter(|e| matches!(e, Effect::WarnInvalid(_) | Effect::WarnAllInvalid(_)))
            .count()
    };
    assert_eq!(warned(&mut t), 1, "the start-up report");
    t.live(WORKLOADS, app("app", &["cfg"], bad));
    assert_eq!(warned(&mut t), 0, "the same problems again");
    let worse = json!({ "deployment.reloader.stakater.com/pause-period": "soon" });
    t.live(WORKLOADS, app("app", &["cfg"], worse));
    assert_eq!(warned(&mut t), 1, "a new problem");
}

#[tokio::test(start_paused = true)]
async fn a_workload_with_its_own_window_is_written_while_the_others_are_held() {
    let mut t = harness(&["--coalesce-window=10s", "--coalesce-max-delay=30s"], None);
    let at_once = json!({ "kube-reloader.io/coalesce-window": "0s" });
    t.start(
        vec![config("cfg", "0")],
        vec![
            app("held", &["cfg"], json!({})),
            app("prompt", &["cfg"], at_once),
        ],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(names(&t.due_writes()), [("prompt", vec!["cfg"])]);
    advance(9.9).await;
    assert!(
        t.due_writes().is_empty(),
        "the other waits the global window"
    );
    advance(0.1).await;
    assert_eq!(names(&t.due_writes()), [("held", vec!["cfg"])]);
}

#[tokio::test(start_paused = true)]
async fn a_workload_with_its_own_max_delay_is_capped_by_it() {
    let mut t = harness(&["--coalesce-window=2s", "--coalesce-max-delay=60s"], None);
    let capped = json!({ "kube-reloader.io/coalesce-max-delay": "3s" });
    t.start(vec![config("cfg", "0")], vec![app("app", &["cfg"], capped)]);
    // A change every second keeps the window sliding; the cap counts from the first.
    for i in 1..=3 {
        t.live(CONFIGS, config("cfg", &i.to_string()));
        advance(1.0).await;
        if i < 3 {
            assert!(t.due_writes().is_empty(), "change {i}");
        }
    }
    assert_one_write_of(&t.due_writes(), "3");
}

#[tokio::test(start_paused = true)]
async fn a_workload_with_its_own_minimum_interval_is_paced_alone() {
    let mut t = harness(&[], None);
    let paced = json!({ "kube-reloader.io/min-reload-interval": "10s" });
    t.start(
        vec![config("cfg", "0")],
        vec![
            app("free", &["cfg"], json!({})),
            app("paced", &["cfg"], paced),
        ],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 2);
    t.done(WriteOutcome::Written);
    t.done(WriteOutcome::Written);
    advance(1.0).await;
    t.live(CONFIGS, config("cfg", "2"));
    assert_eq!(
        names(&t.due_writes()),
        [("free", vec!["cfg"])],
        "no global interval"
    );
    advance(8.9).await;
    assert!(t.due_writes().is_empty(), "10 s after its last write");
    advance(0.1).await;
    assert_eq!(names(&t.due_writes()), [("paced", vec!["cfg"])]);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_timing_annotation_is_warned_and_the_flag_applies() {
    let mut t = harness(&["--min-reload-interval=10s"], None);
    let bad = json!({ "kube-reloader.io/min-reload-interval": "soon" });
    t.start(vec![config("cfg", "0")], vec![app("app", &["cfg"], bad)]);
    let warnings: Vec<String> = std::mem::take(&mut t.engine.effects)
        .into_iter()
        .flat_map(|e| match e {
            Effect::WarnAllInvalid(all) => all.into_iter().flat_map(|f| f.problems).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("kube-reloader.io/min-reload-interval"));
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 1);
    t.done(WriteOutcome::Written);
    t.live(CONFIGS, config("cfg", "2"));
    advance(9.9).await;
    assert!(t.due_writes().is_empty(), "the global interval");
    advance(0.1).await;
    assert_one_write_of(&t.due_writes(), "2");
}

#[tokio::test(start_paused = true)]
async fn a_max_delay_shorter_than_the_global_window_is_warned() {
    let mut t = harness(&["--coalesce-window=10s", "--coalesce-max-delay=30s"], None);
    let short = json!({ "kube-reloader.io/coalesce-max-delay": "1s" });
    t.start(vec![config("cfg", "0")], vec![app("app", &["cfg"], short)]);
    let warned = std::mem::take(&mut t.engine.effects)
        .into_iter()
        .any(|e| matches!(e, Effect::WarnAllInvalid(all) if all[0].problems.len() == 1));
    assert!(warned);
    t.live(CONFIGS, config("cfg", "1"));
    advance(9.9).await;
    assert!(t.due_writes().is_empty(), "raised to the window");
    advance(0.1).await;
    assert_eq!(t.due_writes().len(), 1);
}

/// `obs` (a workload) with its status saying generation `generation`, complete or failed.
fn rolled(obs: Obs, generation: i64, complete: bool, failed: Option<&str>) -> Obs {
    let Obs::Workload(mut f) = obs else {
        unreachable!("a workload")
    };
    f.rollout.generation = generation;
    f.rollout.complete = complete;
    f.rollout.failed = failed.map(String::from);
    Obs::Workload(f)
}

fn wrote(writes: &[(WorkloadKey, Vec<String>, Vec<Marker>)]) -> Vec<&str> {
    writes.iter().map(|(k, _, _)| k.name.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn waves_roll_n_at_a_time_by_priority_and_a_failed_rollout_halts_them() {
    let mut t = harness(&["--max-concurrent-rollouts=1"], None);
    let first = json!({ "kube-reloader.io/rollout-priority": "5" });
    t.start(
        vec![config("cfg", "0")],
        vec![
            app("a", &["cfg"], json!({})),
            app("b", &["cfg"], json!({})),
            app("c", &["cfg"], first.clone()),
        ],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(
        wrote(&t.due_writes()),
        ["c"],
        "one at a time, the highest priority first"
    );
    t.done(WriteOutcome::Written);
    assert!(t.due_writes().is_empty(), "held while c rolls");
    advance(60.0).await;
    assert!(t.due_writes().is_empty(), "still held: c has not completed");
    t.live(WORKLOADS, rolled(app("c", &["cfg"], first), 1, true, None));
    assert_eq!(
        wrote(&t.due_writes()),
        ["a"],
        "c completed: the next, in key order"
    );
    t.done(WriteOutcome::Written);
    t.live(
        WORKLOADS,
        rolled(app("a", &["cfg"], json!({})), 1, false, Some("deadline")),
    );
    let failed = t.engine.effects.iter().any(
        |e| matches!(e, Effect::RolloutFailed(f, why) if f.key.name == "a" && why == "deadline"),
    );
    assert!(failed, "a RolloutFailed Warning");
    advance(3600.0).await;
    assert!(
        t.due_writes().is_empty(),
        "a failed rollout halts the waves, however long"
    );
    t.live(
        WORKLOADS,
        rolled(app("a", &["cfg"], json!({})), 1, true, None),
    );
    assert_eq!(
        wrote(&t.due_writes()),
        ["b"],
        "it completed: the waves go on, b not dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_never_completes_gives_its_slot_back_at_the_timeout() {
    let mut t = harness(
        &["--max-concurrent-rollouts=1", "--rollout-timeout=5m"],
        None,
    );
    t.start(
        vec![config("cfg", "0")],
        vec![app("a", &["cfg"], json!({})), app("b", &["cfg"], json!({}))],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(wrote(&t.due_writes()), ["a"]);
    t.done(WriteOutcome::Written);
    advance(299.0).await;
    t.engine.wave_expire(tokio::time::Instant::now());
    assert!(t.due_writes().is_empty());
    advance(1.0).await;
    t.engine.wave_expire(tokio::time::Instant::now());
    assert_eq!(wrote(&t.due_writes()), ["b"]);
    // A write that failed gives its slot back at once (it is retried later).
    let mut t = harness(&["--max-concurrent-rollouts=1"], None);
    t.start(
        vec![config("cfg", "0")],
        vec![app("a", &["cfg"], json!({})), app("b", &["cfg"], json!({}))],
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(wrote(&t.due_writes()), ["a"]);
    t.done(WriteOutcome::Retry { attempts: 1 });
    assert_eq!(wrote(&t.due_writes()), ["b"]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_engine_does_not_compute_the_state_again() {
    let persisted = State::from([(cm_key("cfg"), hash::of_str("0"))]);
    let mut t = harness(&[], Some(persisted));
    t.start(
        vec![config("cfg", "0")],
        vec![app("app", &["cfg"], json!({}))],
    );
    assert!(
        t.engine.next_flush().is_some(),
        "the first flush after the catch-up"
    );
    t.engine.maybe_flush();
    for e in std::mem::take(&mut t.engine.effects) {
        if let Effect::Flush(_, dirty) = e {
            t.engine.on_flushed(Flushed::stored(dirty));
        }
    }
    advance(60.0).await;
    assert_eq!(
        t.engine.next_flush(),
        None,
        "nothing changed: no wake-up for it"
    );
    t.live(CONFIGS, config("cfg", "1"));
    assert!(t.engine.next_flush().is_some(), "a change: flushed again");
}

#[tokio::test(start_paused = true)]
async fn writes_in_flight_stay_within_the_write_concurrency() {
    let mut t = harness(&["--write-concurrency=2", "--reload-rate=0"], None);
    let apps = (0..5).map(|i| app(&format!("app-{i}"), &["cfg"], json!({})));
    t.start(vec![config("cfg", "0")], apps.collect());
    t.live(CONFIGS, config("cfg", "1"));
    assert_eq!(t.due_writes().len(), 2, "two slots");
    assert_eq!(t.due_writes().len(), 0, "none free");
    assert!(t.engine.writes_full(), "the loop waits for an outcome");
    t.done(WriteOutcome::Written);
    assert_eq!(t.due_writes().len(), 1, "one slot freed");
    t.done(WriteOutcome::Written);
    t.done(WriteOutcome::Written);
    assert_eq!(t.due_writes().len(), 2, "the last two");
}

#[tokio::test(start_paused = true)]
async fn the_write_slots_go_by_priority_then_name_whatever_the_rounds() {
    let mut t = harness(&["--write-concurrency=2", "--reload-rate=0"], None);
    let high = |p: &str| json!({ "kube-reloader.io/rollout-priority": p });
    let apps = vec![
        app("a", &["cfg"], json!({})),
        app("b", &["cfg"], json!({})),
        app("c", &["cfg"], high("3")),
        app("d", &["cfg"], json!({})),
        app("e", &["cfg"], high("7")),
    ];
    t.start(vec![config("cfg", "0")], apps);
    t.live(CONFIGS, config("cfg", "1"));
    // One slot freed at a time: each round takes the next in order, none jumps ahead.
    let mut order = Vec::new();
    while order.len() < 5 {
        t.due_writes();
        assert!(t.dispatched.len() <= 2, "never more than the slots");
        order.push(t.dispatched[0].facts.key.name.clone());
        t.done(WriteOutcome::Written);
    }
    assert_eq!(order, ["e", "c", "a", "b", "d"]);
}
