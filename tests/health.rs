//! Honest health against the real API server: `/live` fails while the watches cannot
//! reach the API server for longer than `--live-watch-broken` (on a plane of the test's
//! own, whose API server it stops) and recovers when it is back; `/ready?format=json`
//! lists each watch stream synced, with the age of its last sign of life, and so does
//! `kube_reloader_watch_last_event_age_seconds`.

mod support;

use std::time::Duration;

use support::{OwnPlane, TestNs, start_operator, wait_for};

#[tokio::test]
async fn live_fails_while_the_watches_fail_and_recovers_after() {
    // Stopping an API server would break every test sharing it: this plane is our own.
    let plane = OwnPlane::start("health").await;
    let ns = TestNs::on(&plane.kubeconfig, "health").await;
    let op = start_operator(&ns, &["--live-watch-broken=3s"]).await;
    assert_eq!(op.http_get("/live").await, (200, "alive".into()));

    plane.stop_api_server().await;
    let body = wait_for("/live failing", Duration::from_secs(60), || async {
        match op.http_get("/live").await {
            (503, body) => Ok(body),
            other => Err(other),
        }
    })
    .await;
    assert!(body.contains("watch has failed for"), "{body}");
    assert_eq!(op.http_get("/healthz").await.0, 503, "the same as /live");
    let (_, json) = op.http_get("/ready?format=json").await;
    assert!(json.contains(r#""state":"erroring""#), "{json}");

    plane.start_api_server().await;
    // The watches retry with backoff (up to 30 s).
    wait_for("/live back", Duration::from_secs(90), || async {
        match op.http_get("/live").await {
            (200, _) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(op.http_get("/healthz").await.0, 200);
}

#[tokio::test]
async fn ready_json_and_metrics_show_each_stream_and_its_age() {
    let ns = TestNs::new("health-json").await;
    let op = start_operator(&ns, &[]).await;
    let (code, body) = op.http_get("/ready?format=json").await;
    assert_eq!(code, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], true, "{body}");
    assert_eq!(ready["reason"], "ready", "{body}");
    let streams = ready["streams"].as_array().expect("streams");
    let kinds: Vec<&str> = streams.iter().filter_map(|s| s["kind"].as_str()).collect();
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {body}");
    }
    for s in streams {
        assert_eq!(s["namespace"], ns.name.as_str(), "{body}");
        assert_eq!(s["state"], "synced", "{body}");
        let age = s["last_event_age_seconds"].as_f64().expect("an age");
        assert!((0.0..60.0).contains(&age), "{body}");
        assert!(s.get("error").is_none(), "{body}");
    }
    // The plain body stays what it was.
    assert_eq!(op.http_get("/ready").await, (200, "ready".into()));

    let series = format!(
        "kube_reloader_watch_last_event_age_seconds{{kind=\"ConfigMap\",watch_namespace=\"{}\"}}",
        ns.name
    );
    // Current at scrape time: a quiet stream's age grows between scrapes (unless a
    // bookmark came in between: then the next pair).
    wait_for(
        "the age growing between scrapes",
        Duration::from_secs(30),
        || async {
            let first = op
                .metric(&series)
                .await
                .expect("the age of the ConfigMap stream");
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let later = op.metric(&series).await.expect("the age again");
            if first >= 0.0 && later > first + 1.0 {
                Ok(())
            } else {
                Err((first, later))
            }
        },
    )
    .await;
}
