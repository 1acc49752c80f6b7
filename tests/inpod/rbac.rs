//! The Role documented in docs/in-pod.md (get, list, watch on the named objects only) is
//! all the sidecar needs, and it really limits: another ConfigMap is forbidden.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

use crate::{
    common::{read, tmpdir},
    support::{
        Binary, TestNs, WAIT, free_addr, kubectl, repo_root, service_account_kubeconfig, until,
    },
};

/// The YAML between the `rbac:begin` and `rbac:end` markers of docs/in-pod.md.
fn documented_rbac() -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/in-pod.md")).unwrap();
    let block = doc
        .split("<!-- rbac:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- rbac:end -->").next())
        .expect("the rbac markers in docs/in-pod.md");
    block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_documented_role_is_enough_and_limits() {
    let ns = TestNs::new("inpod-rbac").await;
    ns.create_cm("app-config", "1").await;
    ns.create::<ConfigMap>(json!({ "metadata": { "name": "other" }, "data": { "o": "1" } }))
        .await;
    ns.create::<Secret>(
        json!({ "metadata": { "name": "app-secret" }, "stringData": { "s": "1" } }),
    )
    .await;
    kubectl(
        &["apply", "-n", &ns.name, "-f", "-"],
        Some(&documented_rbac()),
    );
    let kubeconfig = service_account_kubeconfig(&ns.name, "app");

    let dir = tmpdir("rbac");
    let addr = free_addr();
    let args: Vec<String> = vec![
        "sidecar".into(),
        "--configmap=app-config".into(),
        "--secret=app-secret".into(),
        format!("--dir={}", dir.display()),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    let mut p = Binary::in_pod_as(
        &args,
        &[("POD_NAMESPACE", &ns.name)],
        Some(addr),
        &kubeconfig,
    );
    p.ready().await;
    assert_eq!(read(&dir.join("s")).as_deref(), Some("1"));
    ns.set_cm("app-config", "2").await;
    until("the change, watched with the limited Role", || {
        read(&dir.join("k")).as_deref() == Some("2")
    })
    .await;

    let args: Vec<String> = vec![
        "init".into(),
        "--configmap=other".into(),
        format!("--dir={}", tmpdir("rbac-other").display()),
        "--wait=3s".into(),
    ];
    let mut other = Binary::in_pod_as(&args, &[("POD_NAMESPACE", &ns.name)], None, &kubeconfig);
    assert_eq!(other.exit(WAIT).await.code(), Some(1), "{}", other.log());
    assert!(other.log().contains("forbidden"), "{}", other.log());
}
