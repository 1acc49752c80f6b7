//! The client and the facts about the API and the pod that both subsystems need.

use kube::Client;

/// No client could be made from the kubeconfig or the service account.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build a Kubernetes client: {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Build(#[from] kube::Error),
}

/// A client from the kubeconfig or the pod's service account (operator and in-pod modes).
pub async fn client() -> Result<Client, ClientError> {
    Ok(Client::try_default().await?)
}

/// The pod's namespace: POD_NAMESPACE, else the in-cluster namespace file. A blank
/// POD_NAMESPACE means none: the file is not read then.
pub fn pod_namespace() -> Option<String> {
    let file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string(file).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether `group_version` serves every one of `plurals`. An optional API that is not
/// served would leave its watch failing forever (and the operator never ready), so it is
/// looked up first, and `flag` is named in the warning when it is not.
pub async fn api_served(
    client: &Client,
    group_version: &str,
    plurals: &[&str],
    flag: &str,
) -> bool {
    match client.list_api_group_resources(group_version).await {
        Ok(list)
            if plurals
                .iter()
                .all(|p| list.resources.iter().any(|r| r.name == *p)) =>
        {
            true
        }
        other => {
            let why = other
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "resources missing".into());
            let what = plurals.join("/");
            tracing::warn!(%why, "{flag} is on but {group_version} {what} is not served; not watched");
            false
        }
    }
}
