//! `run -- CMD`: the config is in place before the app starts, the app gets the reload
//! signal on change, SIGTERM and SIGINT are forwarded, and the app's status is the exit code.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::{
    common::{read, tmpdir},
    support::{Binary, TestNs, WAIT, free_addr, until},
};

fn run(ns: &TestNs, dir: &std::path::Path, script: &str) -> Binary {
    let addr = free_addr();
    let args: Vec<String> = vec![
        "run".into(),
        format!("--configmap={}/app", ns.name),
        format!("--dir={}", dir.display()),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        script.into(),
    ];
    Binary::in_pod(&args, &[], Some(addr))
}

#[tokio::test]
async fn run_signals_the_app_and_forwards_sigterm() {
    let ns = TestNs::new("inpod-run").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "app" }, "data": { "conf": "v1" } }))
        .await;
    let dir = tmpdir("run");
    let out = tmpdir("run-out");
    let (start, hup, term) = (out.join("start"), out.join("hup"), out.join("term"));
    let script = format!(
        "cat {d}/conf > {start}; trap 'cat {d}/conf >> {hup}' HUP; trap 'echo term > {term}; exit 7' TERM; while :; do sleep 0.05; done",
        d = dir.display(),
        start = start.display(),
        hup = hup.display(),
        term = term.display(),
    );
    let mut p = run(&ns, &dir, &script);
    p.ready().await;
    until("the app started", || start.exists()).await;
    assert_eq!(
        read(&start).as_deref(),
        Some("v1"),
        "the app started with its config in place"
    );
    // The app itself may race a late write and win; the supervisor's order may not.
    let log = p.log();
    let (written, started) = (log.find("config written"), log.find("app started"));
    assert!(written.is_some() && written < started, "{log}");

    ns.merge_patch::<ConfigMap>("app", json!({ "data": { "conf": "v2" } }))
        .await;
    until("the app reloaded v2 on SIGHUP", || {
        read(&hup).as_deref() == Some("v2")
    })
    .await;

    p.signal("TERM");
    let status = p.exit(WAIT).await;
    assert_eq!(status.code(), Some(7), "the app's status:\n{}", p.log());
    assert!(term.exists(), "SIGTERM reached the app");
}

#[tokio::test]
async fn run_exits_with_the_apps_status() {
    let ns = TestNs::new("inpod-run-exit").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "app" }, "data": { "conf": "v1" } }))
        .await;
    let dir = tmpdir("run-exit");
    let mut p = run(&ns, &dir, "exit 3");
    assert_eq!(p.exit(WAIT).await.code(), Some(3), "{}", p.log());

    let mut p = run(&ns, &dir, "kill -KILL $$");
    assert_eq!(
        p.exit(WAIT).await.code(),
        Some(137),
        "128 + SIGKILL:\n{}",
        p.log()
    );

    let ready = tmpdir("run-int").join("ready");
    let script = format!(
        "trap 'exit 5' INT; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut p = run(&ns, &dir, &script);
    until("the app trapping SIGINT", || ready.exists()).await;
    p.signal("INT");
    assert_eq!(
        p.exit(WAIT).await.code(),
        Some(5),
        "SIGINT forwarded:\n{}",
        p.log()
    );
}
