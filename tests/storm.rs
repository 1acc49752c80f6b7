//! Coalescing and storm control against the real API server: changes within the window
//! give one rollout, the max-delay cap rolls a workload whose configs never settle, a
//! flapping Secret rolls a bounded number of times, and rate limits delay but never drop.
//! Metrics are read by scraping `/metrics`.

mod support;

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{apps::v1::Deployment, core::v1::Secret},
};
use kube_reloader::operator::model::hash;
use serde_json::json;
use support::{
    TestNs, auto_deployment, auto_using, cm_hash, marker_var, rollouts, start_operator,
    wait_env_value,
};

#[tokio::test]
async fn five_configs_changed_within_the_window_give_one_rollout() {
    let ns = TestNs::new("coalesce").await;
    let names = ["c1", "c2", "c3", "c4", "c5"];
    for n in names {
        ns.create_cm(n, "0").await;
    }
    ns.create::<Deployment>(auto_using("app", &names)).await;
    let op = start_operator(&ns, &["--coalesce-window=3s"]).await;
    for n in names {
        ns.set_cm(n, "1").await;
    }
    let d = wait_env_value(&ns, "app", "STAKATER_C5_CONFIGMAP", &cm_hash("1")).await;
    for n in names {
        let var = marker_var("ConfigMap", n);
        assert_eq!(
            support::env_of(&d, "app", &var),
            Some(cm_hash("1")),
            "{var}"
        );
    }
    assert_eq!(rollouts(&d), 1, "five changes, one write");
    assert_eq!(
        op.metric("kube_reloader_coalesced_changes_total").await,
        Some(4.0)
    );
    // The write is counted once its Events are out, a moment after the patch shows.
    support::wait_for("the write counted", support::WAIT, || async {
        match op
            .metric("reloader_reload_executed_total{success=\"true\"}")
            .await
        {
            Some(n) if n >= 1.0 => Ok(n),
            other => Err(other),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        op.metric("reloader_reload_executed_total{success=\"true\"}")
            .await,
        Some(1.0)
    );
    let count = op.metric("kube_reloader_reload_latency_seconds_count{kind=\"Deployment\"}");
    assert_eq!(count.await, Some(1.0));
    // Ours plus the kube-root-ca.crt every namespace gets.
    assert_eq!(
        op.metric("kube_reloader_watched_objects{kind=\"ConfigMap\"}")
            .await,
        Some(6.0)
    );
}

#[tokio::test]
async fn the_max_delay_rolls_a_workload_whose_config_never_settles() {
    let ns = TestNs::new("maxdelay").await;
    ns.create_cm("busy", "0").await;
    ns.create::<Deployment>(auto_using("app", &["busy"])).await;
    let _op = start_operator(&ns, &["--coalesce-window=3s", "--coalesce-max-delay=4s"]).await;
    // Changes every 500 ms never leave a 3 s gap, so only the cap can roll the workload
    // while they go on; they go on for up to three caps.
    let mut rolled_during_changes = false;
    for i in 1..=30 {
        ns.set_cm("busy", &i.to_string()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let d = ns.get::<Deployment>("app").await;
        if support::env_of(&d, "app", "STAKATER_BUSY_CONFIGMAP").is_some() {
            rolled_during_changes = true;
            break;
        }
    }
    assert!(
        rolled_during_changes,
        "no rollout within 15 s of changes every 500 ms (cap 4 s)"
    );
}

#[tokio::test]
async fn a_flapping_secret_rolls_a_bounded_number_of_times_and_the_last_hash_lands() {
    let ns = TestNs::new("flap").await;
    ns.create::<Secret>(json!({ "metadata": { "name": "flappy" }, "stringData": { "k": "0" } }))
        .await;
    let refs = json!([{ "secretRef": { "name": "flappy" } }]);
    ns.create::<Deployment>(auto_deployment("app", refs, json!([])))
        .await;
    let _op = start_operator(&ns, &[]).await; // the defaults: 2 s window, 30 s cap
    let mut last = String::new();
    let start = tokio::time::Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(30) {
        i += 1;
        last = i.to_string();
        ns.merge_patch::<Secret>("flappy", json!({ "stringData": { "k": last } }))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raw = BTreeMap::from([("k".to_string(), ByteString(last.into_bytes()))]);
    let want = hash::secret_hash(Some(&raw)).to_string();
    let d = wait_env_value(&ns, "app", "STAKATER_FLAPPY_SECRET", &want).await;
    // One write per cap while flapping (30 s: at most 2 with scheduling slack), plus the
    // one after the last change.
    assert!(
        (1..=3).contains(&rollouts(&d)),
        "{i} changes gave {} rollouts",
        rollouts(&d)
    );
}

#[tokio::test]
async fn rate_limits_delay_reloads_but_never_drop_them() {
    let ns = TestNs::new("ratelimit").await;
    ns.create_cm("shared", "0").await;
    let apps = ["a1", "a2", "a3", "a4"];
    for a in apps {
        ns.create::<Deployment>(auto_using(a, &["shared"])).await;
    }
    let op = start_operator(
        &ns,
        &[
            "--coalesce-window=0s",
            "--reload-rate=2",
            "--reload-burst=1",
            "--min-reload-interval=3s",
        ],
    )
    .await;
    ns.set_cm("shared", "1").await;
    for a in apps {
        wait_env_value(&ns, a, "STAKATER_SHARED_CONFIGMAP", &cm_hash("1")).await;
    }
    let limited = "kube_reloader_deferred_reloads_total{reason=\"rate_limit\"}";
    let n = op.metric(limited).await.unwrap_or(0.0);
    assert!(
        n >= 3.0,
        "4 writes with burst 1 defer at least 3 times; got {n}"
    );

    // A second change right away: the per-workload interval defers it; it still lands.
    ns.set_cm("shared", "2").await;
    for a in apps {
        let d = wait_env_value(&ns, a, "STAKATER_SHARED_CONFIGMAP", &cm_hash("2")).await;
        assert_eq!(rollouts(&d), 2, "{a}");
    }
    let interval = "kube_reloader_deferred_reloads_total{reason=\"min_interval\"}";
    let n = op.metric(interval).await.unwrap_or(0.0);
    assert!(n >= 1.0, "the second change came within 3 s; got {n}");
}
