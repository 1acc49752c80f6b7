//! Per-workload timing against the real API server: a workload's own
//! `kube-reloader.io/coalesce-window` rolls it while the others still wait the global
//! window, and a bad or inconsistent timing annotation is one InvalidAnnotation Warning
//! while the workload still reloads by the flags. Only the order is asserted (with
//! generous deadlines), never a duration.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use support::{
    TestNs, app_deployment, cm_hash, configmap_refs, env_of, start_operator, wait_env_value,
    wait_for, wait_marker, wait_warnings, warnings,
};

const VAR: &str = "STAKATER_SHARED_CONFIGMAP";

/// Half the global window of the first test.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_workload_with_its_own_window_rolls_while_the_others_wait_the_global_one() {
    let ns = TestNs::new("ownwindow").await;
    ns.create_cm("shared", "0").await;
    let refs = configmap_refs(&["shared"]);
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    let prompt = json!({
        "reloader.stakater.com/auto": "true",
        "kube-reloader.io/coalesce-window": "0s",
    });
    ns.create::<Deployment>(app_deployment("held", auto, refs.clone()))
        .await;
    ns.create::<Deployment>(app_deployment("prompt", prompt, refs))
        .await;
    // A global window far longer than any write takes, so "not yet" is unambiguous, and
    // "promptly" is well inside it (half of it: a generous deadline, not a measurement).
    let _op = start_operator(&ns, &["--coalesce-window=20s", "--coalesce-max-delay=60s"]).await;
    ns.set_cm("shared", "1").await;
    let want = cm_hash("1");
    wait_for(
        "prompt rolled within half the global window",
        PROMPTLY,
        || async {
            let d = ns.get::<Deployment>("prompt").await;
            match env_of(&d, "app", VAR) {
                Some(v) if v == want => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    let held = ns.get::<Deployment>("held").await;
    assert_eq!(
        env_of(&held, "app", VAR),
        None,
        "the other still waits the global window"
    );
    wait_env_value(&ns, "held", VAR, &cm_hash("1")).await;
}

#[tokio::test]
async fn bad_timing_annotations_are_warned_once_and_the_flags_apply() {
    let ns = TestNs::new("badtiming").await;
    ns.create_cm("shared", "0").await;
    let refs = configmap_refs(&["shared"]);
    let unparsable = json!({
        "reloader.stakater.com/auto": "true",
        "kube-reloader.io/min-reload-interval": "soon",
    });
    // Shorter than the global window: raised to it, and warned.
    let too_short = json!({
        "reloader.stakater.com/auto": "true",
        "kube-reloader.io/coalesce-max-delay": "100ms",
    });
    ns.create::<Deployment>(app_deployment("soon", unparsable, refs.clone()))
        .await;
    ns.create::<Deployment>(app_deployment("short", too_short, refs))
        .await;
    let _op = start_operator(&ns, &["--coalesce-window=1s"]).await;
    let soon = wait_warnings(&ns, "soon", "InvalidAnnotation").await;
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert!(
        soon[0].contains("kube-reloader.io/min-reload-interval") && soon[0].contains("\"soon\""),
        "{soon:?}"
    );
    let short = wait_warnings(&ns, "short", "InvalidAnnotation").await;
    assert_eq!(short.len(), 1, "{short:?}");
    assert!(
        short[0].contains("kube-reloader.io/coalesce-max-delay"),
        "{short:?}"
    );

    ns.set_cm("shared", "1").await;
    wait_marker(&ns, "soon", VAR).await;
    wait_marker(&ns, "short", VAR).await;
    // The reloads changed the templates, not the annotations: still one warning each.
    assert_eq!(warnings(&ns, "soon", "InvalidAnnotation").await.len(), 1);
    assert_eq!(warnings(&ns, "short", "InvalidAnnotation").await.len(), 1);
}
