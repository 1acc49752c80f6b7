//! `init`: waits for every object, writes once and exits 0; times out naming what is
//! missing; bad input fails at once with a clear message.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

use crate::{
    common::{read, tmpdir},
    support::{Binary, TestNs, WAIT},
};

fn init(ns: &TestNs, dir: &std::path::Path, extra: &[&str]) -> Binary {
    let mut args: Vec<String> = vec!["init".into(), format!("--dir={}", dir.display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    Binary::in_pod(&args, &[("POD_NAMESPACE", &ns.name)], None)
}

#[tokio::test]
async fn init_waits_for_every_object_then_exits() {
    let ns = TestNs::new("inpod-init").await;
    let dir = tmpdir("init");
    let mut p = init(
        &ns,
        &dir,
        &["--configmap=late", "--secret=late-secret", "--wait=60s"],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited before the objects exist:\n{}",
        p.log()
    );

    ns.create::<ConfigMap>(json!({ "metadata": { "name": "late" }, "data": { "app.conf": "x" } }))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited with the Secret missing"
    );
    assert!(!dir.join("app.conf").exists(), "wrote a partial config");

    ns.create::<Secret>(
        json!({ "metadata": { "name": "late-secret" }, "stringData": { "token": "t" } }),
    )
    .await;
    let status = p.exit(WAIT).await;
    assert!(status.success(), "{status}:\n{}", p.log());
    assert_eq!(read(&dir.join("app.conf")).as_deref(), Some("x"));
    assert_eq!(read(&dir.join("token")).as_deref(), Some("t"));
}

#[tokio::test]
async fn init_times_out_naming_what_is_missing() {
    let ns = TestNs::new("inpod-init-timeout").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "present" }, "data": { "a": "1" } }))
        .await;
    let dir = tmpdir("init-timeout");
    let mut p = init(
        &ns,
        &dir,
        &["--configmap=present", "--configmap=absent", "--wait=2s"],
    );
    let status = p.exit(WAIT).await;
    assert_eq!(status.code(), Some(1), "{}", p.log());
    let log = p.log();
    let want = format!(
        "timed out after 2s waiting for configmap {}/absent (not found)",
        ns.name
    );
    assert!(log.contains(&want), "{log}");
    assert!(
        !log.contains("present"),
        "only the missing object is named: {log}"
    );
    assert!(
        !dir.join("..data").exists() && !dir.join("a").exists(),
        "nothing written"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    let dir = tmpdir("bad-input");
    let d = format!("--dir={}", dir.display());
    let cases: [(&[&str], &str); 4] = [
        (
            &["sidecar", "--configmap=app", &d],
            "--configmap \"app\" has no namespace",
        ),
        (
            &[
                "sidecar",
                "--configmap=n/app",
                &d,
                "--touch=/t",
                "--pid-file=/p",
            ],
            "--pid-file and --touch cannot be combined",
        ),
        (
            &["init", "--secret=n/Bad", &d],
            "\"Bad\" is not a valid object name",
        ),
        (
            &["watch-dir", "--dir=/nonexistent-kr", "--touch=/t"],
            "--dir /nonexistent-kr",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut p = Binary::in_pod(&args, &[], None);
        let status = p.exit(WAIT).await;
        assert_eq!(status.code(), Some(2), "{args:?}:\n{}", p.log());
        assert!(
            p.log().contains(want),
            "{args:?}: want {want:?} in:\n{}",
            p.log()
        );
        assert!(!p.log().contains("panicked"), "{}", p.log());
    }
}
