//! The persisted state's IO: shard ConfigMaps in the operator's namespace, read once at
//! start-up and written by server-side apply (field manager `kube-reloader`), only the
//! shards whose text changed.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};

use crate::{
    operator::{
        model::kinds::FIELD_MANAGER,
        state::{self, COMPONENT, COMPONENT_LABEL, DATA_KEY, NAME_PREFIX, SHARDS, State},
    },
    shared::backoff::backoff,
};

/// What was read at start-up.
pub struct Loaded {
    /// `None` when the anchor shard does not exist: a first run (or a first write cut
    /// short), nothing to catch up.
    pub state: Option<State>,
    /// Each shard's text as stored, so unchanged shards are not rewritten.
    pub texts: Vec<Option<String>>,
}

#[derive(Clone)]
pub struct StateStore {
    api: Api<ConfigMap>,
    pub namespace: String,
}

impl StateStore {
    pub fn new(client: Client, namespace: String) -> Self {
        StateStore {
            api: Api::namespaced(client, &namespace),
            namespace,
        }
    }

    pub async fn load(&self) -> kube::Result<Loaded> {
        let lp = ListParams::default().labels(&format!("{COMPONENT_LABEL}={COMPONENT}"));
        let list = self.api.list(&lp).await?;
        let mut texts = vec![None; SHARDS];
        let mut st = State::new();
        for cm in list.items {
            let name = cm.metadata.name.unwrap_or_default();
            let Some(shard) = (0..SHARDS).find(|i| state::shard_name(*i) == name) else {
                continue;
            };
            let text = cm
                .data
                .and_then(|mut d| d.remove(DATA_KEY))
                .unwrap_or_default();
            let bad = state::decode_into(&text, &mut st);
            if bad > 0 {
                tracing::warn!(configmap = %name, lines = bad, "unreadable lines in the persisted state; ignored");
            }
            texts[shard] = Some(text);
        }
        Ok(Loaded {
            state: texts[state::ANCHOR].is_some().then_some(st),
            texts,
        })
    }

    pub async fn write(&self, shard: usize, text: &str) -> kube::Result<()> {
        let name = state::shard_name(shard);
        let cm = ConfigMap {
            metadata: kube::core::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (COMPONENT_LABEL.to_owned(), COMPONENT.to_owned()),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "kube-reloader".to_owned(),
                    ),
                ])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(DATA_KEY.to_owned(), text.to_owned())])),
            ..Default::default()
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        self.api.patch(&name, &pp, &Patch::Apply(&cm)).await?;
        Ok(())
    }
}

/// For logs: which object holds the state.
pub fn describe(namespace: &str) -> String {
    format!("{namespace}/{NAME_PREFIX}-NN")
}

/// Reads the persisted state, retrying until it can: starting without it would overwrite
/// it and lose the changes it exists to catch up.
pub async fn load_state(store: &StateStore) -> Loaded {
    let mut attempt = 0;
    loop {
        match store.load().await {
            Ok(loaded) => {
                let entries = loaded.state.as_ref().map_or(0, |s| s.len());
                tracing::info!(at = %describe(&store.namespace), entries, "persisted state read");
                return loaded;
            }
            Err(e) => {
                tracing::error!(at = %describe(&store.namespace), error = %e, "cannot read the persisted state; retrying (check RBAC for configmaps there)");
                let delay = backoff(Duration::from_secs(1), attempt, Duration::from_secs(30));
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}
