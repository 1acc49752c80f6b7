//! Persisted state against the real API server: a change made while the operator is
//! SIGKILLed is applied exactly once after restart, and a first install, a restart with no
//! changes and a switch from stakater roll nothing.

mod support;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube_reloader::operator::{
    model::kinds::{ConfigKey, ConfigKind},
    state::{self, NAME_PREFIX, State},
};
use serde_json::json;
use support::{
    Binary, Refusal, TestNs, WAIT, auto_deployment, cm_hash, configmap_refs, deployment_generation,
    marker_var, sample, start_operator, wait_env_value, wait_for, wait_no_marker,
};

/// An auto Deployment using ConfigMap `config`, carrying the marker `marker` if given (as
/// a reloader before left it).
fn deployment(name: &str, config: &str, marker: Option<&str>) -> serde_json::Value {
    let env = marker.map_or(
        json!([]),
        |v| json!([{ "name": marker_var("ConfigMap", config), "value": v }]),
    );
    auto_deployment(name, configmap_refs(&[config]), env)
}

/// The persisted state as stored in the namespace's shard ConfigMaps.
async fn persisted(ns: &TestNs) -> State {
    let mut st = State::new();
    for cm in ns.list::<ConfigMap>().await {
        if cm
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(NAME_PREFIX))
        {
            let text = cm.data.and_then(|mut d| d.remove(state::DATA_KEY));
            state::decode_into(&text.unwrap_or_default(), &mut st);
        }
    }
    st
}

async fn wait_persisted(ns: &TestNs, name: &str, want: &str) {
    let key = ConfigKey {
        kind: ConfigKind::ConfigMap,
        namespace: ns.name.clone(),
        name: name.into(),
    };
    wait_for(&format!("{name} persisted as {want}"), WAIT, || async {
        match persisted(ns).await.get(&key).map(|h| h.to_string()) {
            Some(h) if h == want => Ok(()),
            other => Err(other),
        }
    })
    .await
}

const WRITES: &str = "reloader_reload_executed_total{success=\"true\"}";

#[tokio::test]
async fn a_change_made_while_the_operator_was_killed_is_applied_exactly_once() {
    let ns = TestNs::new("sigkill").await;
    ns.create_cm("cfg", "0").await;
    ns.create::<Deployment>(deployment("app", "cfg", None))
        .await;
    let first = Binary::in_namespace(&ns, "1", &[], &[]).await;
    wait_persisted(&ns, "cfg", &cm_hash("0")).await;
    first.sigkill().await;

    ns.set_cm("cfg", "1").await;
    let second = Binary::in_namespace(&ns, "2", &[], &[]).await;
    wait_env_value(&ns, "app", "STAKATER_CFG_CONFIGMAP", &cm_hash("1")).await;
    // Killed again right after the write, most likely before the state caught up.
    second.sigkill().await;
    assert_eq!(
        deployment_generation(&ns, "app").await,
        2,
        "one rollout for one change"
    );

    let third = Binary::in_namespace(&ns, "3", &[], &[]).await;
    wait_persisted(&ns, "cfg", &cm_hash("1")).await;
    assert_eq!(third.metric(WRITES).await, Some(0.0), "the third run wrote");
    assert_eq!(deployment_generation(&ns, "app").await, 2, "rolled twice");
    third.sigkill().await;
}

#[tokio::test]
async fn install_restart_and_stakater_switch_roll_nothing() {
    let ns = TestNs::new("zeroroll").await;
    for name in ["cfg", "probe"] {
        ns.create_cm(name, "0").await;
    }
    // Never reloaded by anyone, reloaded by stakater (current marker), and the sentinel.
    ns.create::<Deployment>(deployment("fresh", "cfg", None))
        .await;
    let current = cm_hash("0");
    ns.create::<Deployment>(deployment("switched", "cfg", Some(&current)))
        .await;
    ns.create::<Deployment>(deployment("sentinel", "probe", None))
        .await;
    let state_flag = format!("--state-namespace={}", ns.name);
    for (run, probe) in [("install", "1"), ("restart", "2")] {
        let op = start_operator(&ns, &[&state_flag, "--coalesce-window=0s"]).await;
        // A change to the probe, made after start-up, rolls its sentinel; whatever the
        // start-up planned was dispatched before it.
        ns.set_cm("probe", probe).await;
        wait_env_value(&ns, "sentinel", "STAKATER_PROBE_CONFIGMAP", &cm_hash(probe)).await;
        for name in ["fresh", "switched"] {
            assert_eq!(
                deployment_generation(&ns, name).await,
                1,
                "{run} rolled {name}"
            );
        }
        let (_, body) = op.http_get("/metrics").await;
        let writes = sample(&body, "reloader_reload_executed_total{success=\"true\"}");
        assert_eq!(writes, Some(1.0), "{run}: only the sentinel was written");
        // Our own state shards are not watched as config (else every flush would be a
        // change to flush): cfg, probe and kube-root-ca.crt only.
        let watched = sample(&body, "kube_reloader_watched_objects{kind=\"ConfigMap\"}");
        assert_eq!(watched, Some(3.0), "{run}");
        op.shutdown().await; // graceful: the state is flushed on the way out
        wait_persisted(&ns, "probe", &cm_hash(probe)).await;
    }
}

#[tokio::test]
async fn configs_created_and_deleted_while_down_follow_reload_on_create_and_delete() {
    let ns = TestNs::new("createdel").await;
    ns.create_cm("old", "0").await;
    // Rolled for `old` before; waiting for `new`, which does not exist yet.
    ns.create::<Deployment>(deployment("uses-old", "old", Some(&cm_hash("0"))))
        .await;
    ns.create::<Deployment>(deployment("waits-new", "new", None))
        .await;
    let args = ["--reload-on-create=true", "--reload-on-delete=true"];
    let first = Binary::in_namespace(&ns, "1", &args, &[]).await;
    wait_persisted(&ns, "old", &cm_hash("0")).await;
    first.sigkill().await;

    ns.create_cm("new", "0").await;
    ns.api::<ConfigMap>()
        .delete("old", &Default::default())
        .await
        .expect("delete old");
    let _second = Binary::in_namespace(&ns, "2", &args, &[]).await;
    wait_env_value(&ns, "waits-new", "STAKATER_NEW_CONFIGMAP", &cm_hash("0")).await;
    // The env var removed for the deleted config.
    wait_no_marker(&ns, "uses-old", "STAKATER_OLD_CONFIGMAP").await;
}

#[tokio::test]
async fn a_first_state_cut_short_reads_as_none_and_readiness_waits_for_it() {
    let ns = TestNs::new("firststate").await;
    let key = |name: &str| ConfigKey {
        kind: ConfigKind::ConfigMap,
        namespace: ns.name.clone(),
        name: name.into(),
    };
    // One config in the anchor shard, one elsewhere.
    let in_anchor = (0..)
        .map(|i| format!("a{i}"))
        .find(|n| state::shard_of(&key(n)) == state::ANCHOR)
        .unwrap();
    let elsewhere = (0..)
        .map(|i| format!("e{i}"))
        .find(|n| state::shard_of(&key(n)) != state::ANCHOR)
        .unwrap();
    for name in [&in_anchor, &elsewhere] {
        ns.create_cm(name, "0").await;
        ns.create::<Deployment>(deployment(&format!("app-{name}"), name, None))
            .await;
    }
    // Every shard can be created but the anchor.
    let anchor = state::shard_name(state::ANCHOR);
    let refusal = Refusal::apply_unless(
        &ns,
        "",
        "configmaps",
        "CREATE",
        &format!("object.metadata.name != '{anchor}'"),
    );
    let probe: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": anchor } })).unwrap();
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    refusal
        .wait_in_force(|| async {
            let created = ns.api::<ConfigMap>().create(&dry_run, &probe).await;
            created.map(|_| ())
        })
        .await;
    let args = ["--reload-on-create=true"];
    let mut first = Binary::start_in_namespace(&ns, "1", &args, &[]);
    let body = first.wait_ready_body(Some("not stored yet")).await;
    assert!(
        body.contains(&format!("{}/kube-reloader-state-NN", ns.name)),
        "{body}"
    );
    assert_eq!(first.http_get("/ready").await.0, 503);
    let elsewhere_shard = state::shard_name(state::shard_of(&key(&elsewhere)));
    wait_for("the other shard written", WAIT, || async {
        let names: Vec<String> = ns
            .list::<ConfigMap>()
            .await
            .into_iter()
            .map(|c| c.metadata.name.unwrap_or_default())
            .collect();
        names.contains(&elsewhere_shard).then_some(()).ok_or(names)
    })
    .await;
    first.sigkill().await;
    drop(refusal);

    // What was stored is not a whole state: a first run again, so with --reload-on-create
    // the config missing from it is not taken for one created while no operator watched.
    let second = Binary::in_namespace(&ns, "2", &args, &[]).await;
    assert!(second.log().contains("first run"), "{}", second.log());
    ns.set_cm(&in_anchor, "1").await;
    let var = marker_var("ConfigMap", &in_anchor);
    wait_env_value(&ns, &format!("app-{in_anchor}"), &var, &cm_hash("1")).await;
    let app = format!("app-{in_anchor}");
    assert_eq!(
        deployment_generation(&ns, &app).await,
        2,
        "one rollout for one change"
    );
    assert_eq!(
        deployment_generation(&ns, &format!("app-{elsewhere}")).await,
        1
    );
    wait_persisted(&ns, &in_anchor, &cm_hash("1")).await;

    // Now it is whole: a change made while down rolls once.
    second.sigkill().await;
    ns.set_cm(&elsewhere, "1").await;
    let third = Binary::in_namespace(&ns, "3", &args, &[]).await;
    let var = marker_var("ConfigMap", &elsewhere);
    wait_env_value(&ns, &format!("app-{elsewhere}"), &var, &cm_hash("1")).await;
    assert_eq!(
        deployment_generation(&ns, &format!("app-{elsewhere}")).await,
        2
    );
    assert_eq!(deployment_generation(&ns, &app).await, 2);
    third.sigkill().await;
}
