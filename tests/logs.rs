//! A Secret's content never leaves it: the real binary at trace level, a Secret created
//! and changed, and its values (raw and base64) searched for in the log, the Events, the
//! metrics and the persisted state.

mod support;

use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Event, Secret},
};
use serde_json::json;
use support::{Binary, TestNs, WAIT, state_shards, wait_for};

#[tokio::test]
async fn secret_values_never_reach_the_log_even_at_trace_level() {
    let ns = TestNs::new("logs").await;
    let (first, second) = ("s3cr3t-first-7f1c2a", "s3cr3t-second-93be41");
    ns.create::<Secret>(
        json!({ "metadata": { "name": "db" }, "stringData": { "password": first } }),
    )
    .await;
    let refs = json!([{ "secretRef": { "name": "db" } }]);
    ns.create::<Deployment>(support::auto_deployment("app", refs, json!([])))
        .await;
    let bin = Binary::in_namespace(&ns, "trace", &["--log-level=trace"], &[]).await;
    ns.merge_patch::<Secret>("db", json!({ "stringData": { "password": second } }))
        .await;
    support::wait_marker(&ns, "app", "STAKATER_DB_SECRET").await;
    let log = bin.log();
    assert!(
        log.contains("reloaded"),
        "trace log too short to mean anything:\n{log}"
    );
    let events = serde_json::to_string(&ns.list::<Event>().await).unwrap();
    assert!(events.contains("Reloaded"), "no Reloaded Event: {events}");
    let metrics = bin.http_get("/metrics").await.1;
    let state = wait_for("the persisted state", WAIT, || async {
        let text = serde_json::to_string(&state_shards(&ns).await).unwrap();
        if text.contains(" db ") {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    for (place, text) in [
        ("log", &log),
        ("Events", &events),
        ("metrics", &metrics),
        ("state", &state),
    ] {
        for value in [first, second] {
            let encoded = STANDARD.encode(value);
            assert!(!text.contains(value), "{value} in the {place}");
            assert!(!text.contains(&encoded), "base64 of {value} in the {place}");
        }
    }
}
