//! An admission policy that makes the API server refuse one kind of request in a test's
//! namespace ("held by the test"), removed when dropped.

use std::future::Future;

use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use serde_json::json;

use super::{
    ns::{TestNs, job, task_pod},
    plane::{kubectl, try_tool},
    wait::{WAIT, wait_for},
};

/// A cluster-scoped admission policy refusing `operation` on `group`/`resource` in one
/// namespace with the message "held by the test"; removed when dropped, also when the
/// test fails.
pub struct Refusal(String);

impl Refusal {
    pub fn apply(ns: &TestNs, group: &str, resource: &str, operation: &str) -> Refusal {
        Refusal::apply_unless(ns, group, resource, operation, "false")
    }

    /// Refusing only the requests for which the CEL expression `allowed` is false.
    pub fn apply_unless(
        ns: &TestNs,
        group: &str,
        resource: &str,
        operation: &str,
        allowed: &str,
    ) -> Refusal {
        let name = format!("hold-{resource}-{}", ns.name);
        let manifests = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": [
            { "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": { "name": name },
              "spec": { "failurePolicy": "Fail",
                "matchConstraints": { "resourceRules": [{ "apiGroups": [group], "apiVersions": ["v1"],
                    "operations": [operation], "resources": [resource] }] },
                "validations": [{ "expression": allowed, "message": "held by the test" }] } },
            { "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
              "metadata": { "name": name },
              "spec": { "policyName": name, "validationActions": ["Deny"],
                "matchResources": { "namespaceSelector": { "matchLabels": {
                    "kubernetes.io/metadata.name": ns.name } } } } }
        ]});
        kubectl(&["apply", "-f", "-"], Some(&manifests.to_string()));
        Refusal(name)
    }
}

impl Refusal {
    /// Waits until the policy is in force: `probe` (a dry-run request of the kind refused)
    /// is refused with the test's message.
    pub async fn wait_in_force<F, Fut>(&self, mut probe: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<()>>,
    {
        wait_for("the policy in force", WAIT, || {
            let sent = probe();
            async move {
                match sent.await {
                    Err(kube::Error::Api(s)) if s.message.contains("held by the test") => Ok(()),
                    other => Err(other.map_err(|e| e.to_string())),
                }
            }
        })
        .await;
    }

    /// Every Job create in `ns` refused, once the policy is in force (a dry-run create
    /// is refused).
    pub async fn job_creates(ns: &TestNs) -> Refusal {
        let refusal = Refusal::apply(ns, "batch", "jobs", "CREATE");
        let probe: Job =
            serde_json::from_value(job("probe", json!({}), task_pod(json!([])))).unwrap();
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        refusal
            .wait_in_force(|| async { ns.api().create(&dry_run, &probe).await.map(|_| ()) })
            .await;
        refusal
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        let kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy";
        let args = ["delete", kinds, &self.0, "--ignore-not-found"];
        let (ok, _, err) = try_tool("kubectl", &args, None);
        assert!(ok || std::thread::panicking(), "kubectl {args:?}: {err}");
    }
}
