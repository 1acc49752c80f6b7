//! Bad input, as a table: each case sets up its own workload and configs in one namespace
//! served by one operator, makes its change and checks its expected outcome (a reload, a
//! Warning Event, or a documented skip). Afterwards a sentinel proves the operator still
//! serves everyone else. Documented in docs/reliability.md.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{apps::v1::Deployment, core::v1::ConfigMap},
};
use kube_reloader::operator::model::hash;
use serde_json::{Value, json};
use support::{
    TestNs, WAIT, app_deployment, cm_hash, configmap_refs, deployment_generation, start_operator,
    wait_env_value, wait_for, wait_warnings, warnings,
};

/// A Deployment whose container `app` takes the ConfigMaps `env_from`.
fn workload(name: &str, annotations: Value, env_from: &[&str]) -> Value {
    app_deployment(name, annotations, configmap_refs(env_from))
}

#[tokio::test]
async fn bad_input_is_reported_or_skipped_and_everyone_else_is_served() {
    let ns = TestNs::new("badinput").await;
    let auto = json!({ "reloader.stakater.com/auto": "true" });

    // Setup, one row per case.
    ns.create_cm("good", "1").await;
    ns.create::<Deployment>(workload(
        "bad-regex",
        json!({ "configmap.reloader.stakater.com/reload": "good,([" }),
        &[],
    ))
    .await;
    ns.create_cm("paused-cfg", "1").await;
    let bad_pause = json!({
        "reloader.stakater.com/auto": "true",
        "deployment.reloader.stakater.com/pause-period": "five minutes"
    });
    ns.create::<Deployment>(workload("bad-pause", bad_pause, &["paused-cfg"]))
        .await;
    let many: Vec<String> = (0..10_000).map(|i| format!("name-{i}")).collect();
    let listed = json!({ "configmap.reloader.stakater.com/reload": many.join(",") });
    ns.create_cm("name-9999", "1").await;
    ns.create::<Deployment>(workload("ten-thousand-names", listed, &[]))
        .await;
    let big_value = "x".repeat(1024 * 1024 - 512);
    ns.create_cm("big", &big_value).await;
    ns.create::<Deployment>(workload("uses-big", auto.clone(), &["big"]))
        .await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "bin" },
        "binaryData": { "blob": "AAEC/w==" } }))
        .await;
    ns.create::<Deployment>(workload("uses-bin", auto.clone(), &["bin"]))
        .await;
    ns.create_cm("a-b", "1").await;
    ns.create_cm("a.b", "1").await;
    ns.create::<Deployment>(workload("collide", auto.clone(), &["a-b", "a.b"]))
        .await;
    ns.create_cm("unused", "1").await;
    ns.create::<Deployment>(workload("references-nothing", auto.clone(), &[]))
        .await;
    ns.create_cm("doomed-cfg", "1").await;
    ns.create::<Deployment>(workload("doomed", auto.clone(), &["doomed-cfg"]))
        .await;
    ns.create_cm("sentinel-cfg", "1").await;
    ns.create::<Deployment>(workload("sentinel", auto.clone(), &["sentinel-cfg"]))
        .await;
    // A window long enough to delete `doomed` while its reload is pending.
    let op = start_operator(&ns, &["--coalesce-window=3s"]).await;

    // Invalid regex item: one Warning Event; the valid item still reloads.
    let w = wait_warnings(&ns, "bad-regex", "InvalidAnnotation").await;
    assert!(w[0].contains("(["), "{w:?}");
    ns.set_cm("good", "2").await;

    // Bad pause-period: a Warning Event; the reload goes out without a pause.
    wait_for("InvalidAnnotation on bad-pause", WAIT, || async {
        let w = warnings(&ns, "bad-pause", "InvalidAnnotation").await;
        if w.iter().any(|n| n.contains("five minutes")) {
            Ok(())
        } else {
            Err(w)
        }
    })
    .await;
    ns.set_cm("paused-cfg", "2").await;

    // 10,000 names in one annotation; a 1 MiB ConfigMap; binaryData.
    ns.set_cm("name-9999", "2").await;
    let big_new = "y".repeat(1024 * 1024 - 512);
    ns.set_cm("big", &big_new).await;
    ns.merge_patch::<ConfigMap>("bin", json!({ "binaryData": { "blob": "AQID" } }))
        .await;

    // A config referenced by nobody under auto: a documented skip (nothing to roll).
    ns.set_cm("unused", "2").await;

    // The workload is deleted while its reload waits in the coalescing window.
    ns.set_cm("doomed-cfg", "2").await;
    ns.api::<Deployment>()
        .delete("doomed", &Default::default())
        .await
        .expect("delete doomed");

    wait_env_value(&ns, "bad-regex", "STAKATER_GOOD_CONFIGMAP", &cm_hash("2")).await;
    wait_env_value(
        &ns,
        "bad-pause",
        "STAKATER_PAUSED_CFG_CONFIGMAP",
        &cm_hash("2"),
    )
    .await;
    let paused = ns.get::<Deployment>("bad-pause").await.spec.paused;
    assert_ne!(paused, Some(true), "an invalid pause-period must not pause");
    wait_env_value(
        &ns,
        "ten-thousand-names",
        "STAKATER_NAME_9999_CONFIGMAP",
        &cm_hash("2"),
    )
    .await;
    wait_env_value(
        &ns,
        "uses-big",
        "STAKATER_BIG_CONFIGMAP",
        &cm_hash(&big_new),
    )
    .await;
    let bin = BTreeMap::from([("blob".to_owned(), ByteString(vec![1, 2, 3]))]);
    let bin_hash = hash::configmap_hash(None, Some(&bin)).to_string();
    wait_env_value(&ns, "uses-bin", "STAKATER_BIN_CONFIGMAP", &bin_hash).await;

    // Colliding env names (`a-b` and `a.b` are both A_B, as in stakater): the variable holds
    // the hash of whichever changed last, and each change rolls.
    ns.set_cm("a-b", "2").await;
    wait_env_value(&ns, "collide", "STAKATER_A_B_CONFIGMAP", &cm_hash("2")).await;
    ns.set_cm("a.b", "3").await;
    wait_env_value(&ns, "collide", "STAKATER_A_B_CONFIGMAP", &cm_hash("3")).await;

    // Everyone else is still served, after every case above.
    ns.set_cm("sentinel-cfg", "2").await;
    wait_env_value(
        &ns,
        "sentinel",
        "STAKATER_SENTINEL_CFG_CONFIGMAP",
        &cm_hash("2"),
    )
    .await;
    assert_eq!(
        deployment_generation(&ns, "references-nothing").await,
        1,
        "rolled for nothing"
    );
    assert!(
        ns.api::<Deployment>()
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none(),
        "the deleted workload came back"
    );
    let (code, _) = op.http_get("/ready").await;
    assert_eq!(code, 200, "the operator stopped serving");
    let failed = op
        .metric("kube_reloader_errors_total{kind=\"write\"}")
        .await;
    assert_eq!(failed.unwrap_or(0.0), 0.0, "a write failed");
}
