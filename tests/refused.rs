//! A watch the API refuses does not hold the others back, against the real API server:
//! the operator runs as a ServiceAccount that may not list DaemonSets, nor anything in a
//! second namespace it is told to watch. It becomes ready, says what it cannot list (in
//! `/ready` and a metric), reloads the rest, and picks the DaemonSets up by itself once
//! they are allowed.

mod support;

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::ServiceAccount,
    rbac::v1::{Role, RoleBinding},
};
use serde_json::{Value, json};
use support::{
    TestNs, WAIT, auto, auto_using, cm_hash, container_env,
    pods::{self, Kind},
    service_account_kubeconfig, start_operator_as, wait_env_value, wait_for,
};

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": groups, "resources": resources, "verbs": verbs })
}

/// What the operator needs in a watched namespace, except DaemonSets.
fn role_without_daemonsets() -> Value {
    let read = ["get", "list", "watch"];
    json!({
        "metadata": { "name": "operator" },
        "rules": [
            rule(&[""], &["configmaps", "secrets"], &read),
            rule(&["apps"], &["deployments", "statefulsets"], &["get", "list", "watch", "patch"]),
            rule(&["batch"], &["cronjobs", "jobs"], &["get", "list", "watch", "patch", "create", "delete"]),
            rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
        ]
    })
}

fn binding(role: &str) -> Value {
    json!({
        "metadata": { "name": role },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role },
        "subjects": [{ "kind": "ServiceAccount", "name": "operator" }]
    })
}

fn ds_env(d: &DaemonSet) -> Option<String> {
    let containers = &d.spec.template.spec.as_ref()?.containers;
    container_env(containers, "app", "STAKATER_CFG_CONFIGMAP")
}

#[tokio::test]
async fn a_refused_watch_does_not_stop_the_others_and_recovers_when_allowed() {
    let ns = TestNs::new("refused").await;
    let other = TestNs::new("refused-other").await; // the operator may read nothing here
    ns.create::<ServiceAccount>(json!({ "metadata": { "name": "operator" } }))
        .await;
    ns.create::<Role>(role_without_daemonsets()).await;
    ns.create::<RoleBinding>(binding("operator")).await;
    ns.create_cm("cfg", "1").await;
    ns.create::<Deployment>(auto_using("web", &["cfg"])).await;
    let agent = pods::workload(Kind::DaemonSet, "agent", 0, auto(), &["cfg"], json!({}));
    ns.create::<DaemonSet>(agent).await;

    let kubeconfig = service_account_kubeconfig(&ns.name, "operator");
    let client = support::client_for(&kubeconfig).await;
    let scope = format!("--namespaces={},{}", ns.name, other.name);
    let op = start_operator_as(&client, &[&scope, "--coalesce-window=0s"]).await;

    let (code, body) = op.http_get("/ready").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&format!("DaemonSet in {}", ns.name)),
        "{body}"
    );
    assert!(
        body.contains(&format!("ConfigMap in {}", other.name)),
        "{body}"
    );
    assert!(body.contains("forbidden"), "{body}");
    assert!(
        !body.contains(&format!("Deployment in {}", ns.name)),
        "{body}"
    );
    let refused = |kind: &str| format!("kube_reloader_watches_refused{{kind=\"{kind}\"}}");
    assert_eq!(
        op.metric(&refused("DaemonSet")).await,
        Some(2.0),
        "both namespaces"
    );
    assert_eq!(
        op.metric(&refused("Deployment")).await,
        Some(1.0),
        "the other namespace"
    );

    // The kinds it may list reload.
    ns.set_cm("cfg", "2").await;
    wait_env_value(&ns, "web", "STAKATER_CFG_CONFIGMAP", &cm_hash("2")).await;

    // Allowed now: the DaemonSet watch lists on its next retry (backing off up to 30 s),
    // and from then on DaemonSets reload.
    ns.create::<Role>(json!({
        "metadata": { "name": "daemonsets" },
        "rules": [rule(&["apps"], &["daemonsets"], &["get", "list", "watch", "patch"])]
    }))
    .await;
    ns.create::<RoleBinding>(binding("daemonsets")).await;
    let mine = format!("DaemonSet in {}:", ns.name);
    wait_for(
        "the DaemonSet watch listing",
        Duration::from_secs(90),
        || async {
            let (_, body) = op.http_get("/ready").await;
            if body.contains(&mine) {
                Err(body)
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert_eq!(
        op.metric(&refused("DaemonSet")).await,
        Some(1.0),
        "the other namespace still"
    );
    ns.set_cm("cfg", "3").await;
    wait_for("the DaemonSet reloaded", WAIT, || async {
        let d = ns.get::<DaemonSet>("agent").await;
        match ds_env(&d) {
            Some(v) if v == cm_hash("3") => Ok(()),
            other => Err(other),
        }
    })
    .await;
}
