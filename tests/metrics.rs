//! `/metrics` of the real binary after a reload, against the real API server: every
//! series of stakater's that a dashboard may plot, with its name, type and label names,
//! plus `process_*` and client-go's `rest_client_*`.

mod support;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use serde_json::json;
use support::{Binary, TestNs, WAIT, auto_using, cm_hash, wait_env_value, wait_for};

/// The value of the first sample whose line starts with `prefix`.
fn first(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))?
        .rsplit_once(' ')?
        .1
        .parse()
        .ok()
}

#[tokio::test]
async fn stakater_process_and_client_series_after_a_reload() {
    let ns = TestNs::new("metrics").await;
    ns.create_cm("cfg", "1").await;
    ns.create_cm("loose", "1").await;
    ns.create::<Deployment>(auto_using("app", &["cfg"])).await;
    let env = [("METRICS_COUNT_BY_NAMESPACE", "enabled")];
    let op = Binary::in_namespace(&ns, "metrics", &[], &env).await;
    ns.set_cm("cfg", "2").await;
    ns.merge_patch::<ConfigMap>("loose", json!({ "metadata": { "labels": { "x": "y" } } }))
        .await;
    wait_env_value(&ns, "app", "STAKATER_CFG_CONFIGMAP", &cm_hash("2")).await;
    let text = wait_for("the write counted", WAIT, || async {
        let text = op.http_get("/metrics").await.1;
        let counted = r#"reloader_reload_executed_total{success="true"} 1"#;
        let skipped = r#"reloader_skipped_total{reason="no_data_change"} 1"#;
        if text.contains(counted) && text.contains(skipped) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    let ns_label = &ns.name;
    let exact = [
        r#"reloader_reload_executed_total{success="false"} 0"#.to_owned(),
        format!(r#"reloader_reload_executed_total_by_namespace{{success="true",namespace="{ns_label}"}} 1"#),
        r#"reloader_reconcile_total{result="success"} 2"#.into(),
        r#"reloader_events_processed_total{event_type="unknown",resource_type="configmaps",result="success"} 2"#.into(),
        r#"reloader_action_total{workload_kind="Deployment",result="success"} 1"#.into(),
        r#"reloader_action_latency_seconds_count{workload_kind="Deployment"} 1"#.into(),
        r#"reloader_workloads_scanned_total{kind="Deployment"} 1"#.into(),
        r#"reloader_workloads_matched_total{kind="Deployment"} 1"#.into(),
        r#"reloader_workqueue_adds_total 1"#.into(),
        r#"reloader_workqueue_depth 0"#.into(),
        r#"reloader_workqueue_latency_seconds_count 1"#.into(),
    ];
    for line in &exact {
        assert!(text.contains(line.as_str()), "missing {line}\n{text}");
    }
    // Two updates seen live; the first lists count as adds, as in stakater's informers.
    let updates =
        r#"reloader_events_received_total{event_type="update",resource_type="configmaps"}"#;
    assert_eq!(first(&text, updates), Some(2.0), "{text}");
    let adds = r#"reloader_events_received_total{event_type="add",resource_type="configmaps"}"#;
    assert!(first(&text, adds) >= Some(2.0), "{text}");
    for typed in [
        "# TYPE reloader_reconcile_duration_seconds histogram",
        "# TYPE reloader_action_latency_seconds histogram",
        "# TYPE reloader_workqueue_latency_seconds histogram",
        "# TYPE reloader_retries counter",
        "# TYPE rest_client_request_duration_seconds histogram",
    ] {
        assert!(text.contains(typed), "missing {typed}\n{text}");
    }
    // The binary's watches go through their tapped client: each stream has its age.
    let age = format!(
        r#"kube_reloader_watch_last_event_age_seconds{{kind="ConfigMap",watch_namespace="{ns_label}"}}"#
    );
    assert!(
        first(&text, &age).is_some_and(|a| a >= 0.0),
        "missing {age}\n{text}"
    );
    assert_eq!(op.http_get("/live").await, (200, "alive".into()));
    assert!(
        text.contains(
            "reloader_reconcile_duration_seconds_bucket{le=\"0.001\",result=\"success\"}"
        )
    );
    // Nothing failed: the error and retry series exist, at zero.
    assert!(text.contains("reloader_retries_total 0"), "{text}");
    // client-go's series for our client, by code, method and API server host:port.
    let host = support::api_server_host();
    let patch = format!(r#"rest_client_requests_total{{code="200",method="PATCH",host="{host}"}}"#);
    // The workload write and the state shards' server-side applies.
    assert!(first(&text, &patch) >= Some(1.0), "{text}");
    let gets = format!(r#"rest_client_requests_total{{code="200",method="GET",host="{host}"}}"#);
    assert!(first(&text, &gets) >= Some(1.0), "{text}");
    // The process.
    assert!(
        first(&text, "process_resident_memory_bytes") > Some(1e6),
        "{text}"
    );
    assert!(first(&text, "process_open_fds") > Some(3.0), "{text}");
    assert!(first(&text, "process_max_fds") > Some(0.0), "{text}");
    assert!(
        first(&text, "process_cpu_seconds_total") > Some(0.0),
        "{text}"
    );
    assert!(
        first(&text, "process_start_time_seconds") > Some(1.6e9),
        "{text}"
    );
    assert!(
        first(&text, "process_virtual_memory_bytes") > Some(1e6),
        "{text}"
    );
}
