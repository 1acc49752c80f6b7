//! `collect` as kiwigrid k8s-sidecar's environment configures it (the Grafana chart's
//! dashboard sidecar): labelled ConfigMaps and Secrets become plain files in FOLDER (or the
//! folder their annotation names), updates rewrite them and call REQ_URL, a delete or a
//! removed label removes them, METHOD=LIST writes once and exits, and changes made while
//! the watch is cut are not lost.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::DeleteParams;
use serde_json::json;

use crate::{
    common::{read, tmpdir},
    support::{Binary, CutProxy, OwnPlane, Receiver, TestNs, WAIT, free_addr, until},
};

fn dashboard(name: &str, key: &str, value: &str) -> serde_json::Value {
    json!({
        "metadata": { "name": name, "labels": { "grafana_dashboard": "1" } },
        "data": { key: value },
    })
}

/// The image with no subcommand: k8s-sidecar's variables pick the mode; the debounce is
/// shortened on the command line, as extra arguments go to the mode.
fn k8s_sidecar(env: &[(&str, &str)], kubeconfig: Option<&Path>) -> Binary {
    let addr = free_addr();
    let port = addr.port().to_string();
    let mut env = env.to_vec();
    env.push(("HEALTH_PORT", &port));
    let args = ["--debounce=100ms".to_owned()];
    match kubeconfig {
        Some(k) => Binary::in_pod_as(&args, &env, Some(addr), k),
        None => Binary::in_pod(&args, &env, Some(addr)),
    }
}

#[tokio::test]
async fn labelled_objects_become_files_that_follow_changes() {
    let ns = TestNs::new("inpod-collect").await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "dash-a", "labels": { "grafana_dashboard": "1" } },
        "data": { "a.json": "{\"v\":1}" },
        "binaryData": { "b.bin": "AAH/" },
    }))
    .await;
    ns.create::<ConfigMap>(json!({
        "metadata": {
            "name": "dash-team",
            "labels": { "grafana_dashboard": "1" },
            "annotations": { "k8s-sidecar-target-directory": "team" },
        },
        "data": { "t.json": "t" },
    }))
    .await;
    ns.create::<ConfigMap>(
        json!({ "metadata": { "name": "other" }, "data": { "other.json": "x" } }),
    )
    .await;
    ns.create::<Secret>(json!({
        "metadata": { "name": "ds", "labels": { "grafana_dashboard": "1" } },
        "stringData": { "ds.yaml": "password: s3cr3t" },
    }))
    .await;
    let receiver = Receiver::start(&[200]).await;
    let dir = tmpdir("collect");
    let folder = dir.display().to_string();
    let url = receiver.url("/api/admin/provisioning/dashboards/reload");
    let scripts = tmpdir("collect-script");
    let (script, script_log) = (scripts.join("after.sh"), scripts.join("ran"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho ran >> {}\n", script_log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.display().to_string();
    let env = [
        ("LABEL", "grafana_dashboard"),
        ("FOLDER", folder.as_str()),
        ("RESOURCE", "both"),
        ("NAMESPACE", ns.name.as_str()),
        ("REQ_URL", url.as_str()),
        ("REQ_METHOD", "POST"),
        ("REQ_PAYLOAD", "{\"reload\": true}"),
        ("REQ_USERNAME", "admin"),
        ("REQ_PASSWORD", "pw"),
        ("SCRIPT", script.as_str()),
    ];
    let mut p = k8s_sidecar(&env, None);
    p.ready().await;

    assert_eq!(read(&dir.join("a.json")).as_deref(), Some("{\"v\":1}"));
    assert_eq!(
        std::fs::read(dir.join("b.bin")).unwrap(),
        [0, 1, 255],
        "binaryData decoded"
    );
    assert_eq!(
        read(&dir.join("ds.yaml")).as_deref(),
        Some("password: s3cr3t"),
        "Secret decoded"
    );
    assert_eq!(
        read(&dir.join("team/t.json")).as_deref(),
        Some("t"),
        "the annotation's folder, under FOLDER"
    );
    assert!(!dir.join("t.json").exists());
    assert!(
        !dir.join("other.json").exists(),
        "unlabelled objects are not collected"
    );
    assert!(
        !std::fs::symlink_metadata(dir.join("a.json"))
            .unwrap()
            .is_symlink(),
        "plain files, as k8s-sidecar writes"
    );
    assert_eq!(
        receiver.count(),
        0,
        "no call for the files the app starts with"
    );

    ns.merge_patch::<ConfigMap>("dash-a", json!({ "data": { "a.json": "{\"v\":2}" } }))
        .await;
    until("a.json rewritten", || {
        read(&dir.join("a.json")).as_deref() == Some("{\"v\":2}")
    })
    .await;
    let call = receiver.first("the reload call").await;
    assert_eq!(
        call.call(),
        "POST /api/admin/provisioning/dashboards/reload"
    );
    assert_eq!(call.body, "{\"reload\": true}");
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(
        call.header("authorization"),
        Some("Basic YWRtaW46cHc="),
        "REQ_USERNAME:REQ_PASSWORD"
    );
    assert!(read(&script_log).is_some(), "SCRIPT runs before the call");

    ns.api::<Secret>()
        .delete("ds", &DeleteParams::default())
        .await
        .unwrap();
    until("the deleted Secret's file removed", || {
        !dir.join("ds.yaml").exists()
    })
    .await;
    until("a call for the removal", || receiver.count() >= 2).await;

    ns.merge_patch::<ConfigMap>(
        "dash-a",
        json!({ "metadata": { "labels": { "grafana_dashboard": null } } }),
    )
    .await;
    until("the unlabelled ConfigMap's files removed", || {
        !dir.join("a.json").exists() && !dir.join("b.bin").exists()
    })
    .await;
    assert_eq!(
        read(&dir.join("team/t.json")).as_deref(),
        Some("t"),
        "others stay"
    );

    ns.merge_patch::<ConfigMap>(
        "dash-team",
        json!({ "metadata": { "annotations": { "k8s-sidecar-target-directory": format!("{folder}/moved") } } }),
    )
    .await;
    until("the file moved with its annotation", || {
        read(&dir.join("moved/t.json")).as_deref() == Some("t") && !dir.join("team/t.json").exists()
    })
    .await;
    assert!(!p.log().contains("panicked"), "{}", p.log());
}

#[tokio::test]
async fn method_list_writes_once_and_exits() {
    let ns = TestNs::new("inpod-collect-list").await;
    ns.create::<ConfigMap>(dashboard("dash", "a.json", "1"))
        .await;
    let dir = tmpdir("collect-list");
    let folder = dir.display().to_string();
    let env = [
        ("LABEL", "grafana_dashboard"),
        ("LABEL_VALUE", "1"),
        ("FOLDER", folder.as_str()),
        ("NAMESPACE", ns.name.as_str()),
        ("METHOD", "LIST"),
        ("UNIQUE_FILENAMES", "true"),
        ("SLEEP_TIME", "5"),
    ];
    let mut p = Binary::in_pod(&[], &env, None);
    let status = p.exit(WAIT).await;
    assert!(status.success(), "{status}:\n{}", p.log());
    let unique = format!("namespace_{}.configmap_dash.a.json", ns.name);
    assert_eq!(
        read(&dir.join(&unique)).as_deref(),
        Some("1"),
        "{}",
        p.log()
    );
    assert!(p.log().contains("SLEEP_TIME is ignored"), "{}", p.log());

    let mut bad = Binary::in_pod(
        &[],
        &[("LABEL", "x"), ("FOLDER", &folder), ("RESOURCE_NAME", "a")],
        None,
    );
    assert_eq!(bad.exit(WAIT).await.code(), Some(2), "{}", bad.log());
    assert!(
        bad.log().contains("RESOURCE_NAME is not supported"),
        "{}",
        bad.log()
    );
}

/// Dashboards `a` and `b` collected through `proxy`; then the proxy is cut, `a` deleted
/// and `b` changed while the watch cannot see it. Returns the folder and the process.
async fn collect_then_cut(ns: &TestNs, proxy: &CutProxy, tag: &str) -> (PathBuf, Binary) {
    ns.create::<ConfigMap>(dashboard("a", "a.json", "1")).await;
    ns.create::<ConfigMap>(dashboard("b", "b.json", "1")).await;
    let kubeconfig = proxy.kubeconfig();
    let dir = tmpdir(tag);
    let folder = dir.display().to_string();
    let env = [
        ("LABEL", "grafana_dashboard"),
        ("FOLDER", folder.as_str()),
        ("NAMESPACE", ns.name.as_str()),
    ];
    let mut p = k8s_sidecar(&env, Some(&kubeconfig));
    p.ready().await;
    assert_eq!(read(&dir.join("a.json")).as_deref(), Some("1"));
    proxy.cut();
    ns.api::<ConfigMap>()
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    ns.merge_patch::<ConfigMap>("b", json!({ "data": { "b.json": "2" } }))
        .await;
    (dir, p)
}

/// k8s-sidecar's most reported failure is a watch that died silently. Here the connection
/// is cut; a delete and an update made meanwhile are both applied once it is back.
#[tokio::test]
async fn changes_made_while_the_watch_is_cut_are_not_lost() {
    let ns = TestNs::new("inpod-collect-cut").await;
    let proxy = CutProxy::to_api_server().await;
    let (dir, _collecting) = collect_then_cut(&ns, &proxy, "collect-cut").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(dir.join("a.json").exists(), "the cut did not cut");

    proxy.restore();
    until("the delete and the update made during the cut", || {
        !dir.join("a.json").exists() && read(&dir.join("b.json")).as_deref() == Some("2")
    })
    .await;
}

/// The Grafana chart runs several k8s-sidecar containers in one pod, all on port 8080 by
/// default: the one finding the port taken still collects, serving no health endpoints.
#[tokio::test]
async fn a_taken_default_health_port_does_not_stop_collecting() {
    let ns = TestNs::new("inpod-collect-port").await;
    ns.create::<ConfigMap>(dashboard("dash", "a.json", "1"))
        .await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tmpdir("collect-port");
    let args: Vec<String> = vec![
        "collect".into(),
        "--label=grafana_dashboard".into(),
        format!("--namespace={}", ns.name),
        format!("--dir={}", dir.display()),
        format!("--http-addr={}", taken.local_addr().unwrap()),
        "--http-addr-taken-ok".into(),
    ];
    let mut p = Binary::in_pod(&args, &[], None);
    until("a.json collected", || {
        read(&dir.join("a.json")).as_deref() == Some("1")
    })
    .await;
    assert!(p.log().contains("the port is taken"), "{}", p.log());
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "still running:\n{}",
        p.log()
    );
}

/// A resumed watch answered 410 Gone (etcd compacted past it, the API server restarted
/// with an empty watch cache) lists again; the list's difference removes the files of an
/// object deleted meanwhile and rewrites a changed one. On a plane of its own, since the
/// API server restarts.
#[tokio::test]
async fn a_relist_after_410_gone_removes_what_vanished_meanwhile() {
    let plane = OwnPlane::start("collect-410").await;
    let ns = TestNs::on(&plane.kubeconfig, "collect-410").await;
    let proxy = CutProxy::to(&plane.kubeconfig).await;
    let (dir, p) = collect_then_cut(&ns, &proxy, "collect-410").await;
    plane.compact_etcd().await;
    plane.stop_api_server().await;
    plane.start_api_server().await;
    proxy.restore();
    until("the relist's difference applied", || {
        !dir.join("a.json").exists() && read(&dir.join("b.json")).as_deref() == Some("2")
    })
    .await;
    assert!(
        p.log().contains("watch expired (410 Gone); listing again"),
        "the watch never got 410 Gone:\n{}",
        p.log()
    );
}
