//! CSI Secrets Store integration (`--enable-csi-integration`) on minimal stand-ins of the
//! driver's CRDs: the test writes SecretProviderClassPodStatus objects as the driver would.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube_reloader::operator::{model::hash, watch::csi};
use serde_json::{Value, json};
use support::{TestNs, WAIT, env_of, generation, kubectl, repo_root, start_operator, wait_for};

fn install_crds() {
    let crds = repo_root().join("tests/fixtures/csi-crds.yaml");
    kubectl(&["apply", "-f", crds.to_str().unwrap()], None);
    for crd in [
        "crd/secretproviderclasses.secrets-store.csi.x-k8s.io",
        "crd/secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
    ] {
        kubectl(
            &["wait", "--for=condition=Established", crd, "--timeout=30s"],
            None,
        );
    }
}

fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

fn class(name: &str, annotations: Value) -> DynamicObject {
    dynamic(json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
        "metadata": { "name": name, "annotations": annotations },
        "spec": { "provider": "vault", "parameters": { "objects": "db" } }
    }))
}

fn status(name: &str, class: &str, version: &str) -> DynamicObject {
    dynamic(json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClassPodStatus",
        "metadata": { "name": name },
        "status": {
            "podName": name, "secretProviderClassName": class, "mounted": true,
            "targetPath": "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/secrets/mount",
            "objects": [{ "id": "secret/db", "version": version }]
        }
    }))
}

/// A Deployment whose container `app` mounts a CSI volume of `class` (if any).
fn deployment(name: &str, annotations: Value, class: Option<&str>) -> Value {
    let (volumes, mounts) = match class {
        Some(c) => (
            json!([{ "name": "secrets", "csi": {
                "driver": "secrets-store.csi.k8s.io", "readOnly": true,
                "volumeAttributes": { "secretProviderClass": c }
            }}]),
            json!([{ "name": "secrets", "mountPath": "/mnt/secrets" }]),
        ),
        None => (json!([]), json!([])),
    };
    let pod = json!({
        "volumes": volumes,
        "containers": [{ "name": "app", "image": "x", "volumeMounts": mounts }]
    });
    support::deployment(name, annotations, pod)
}

fn env_names(d: &Deployment) -> Vec<(String, Option<String>)> {
    let pod = d.spec.template.spec.as_ref();
    let c = pod.and_then(|p| p.containers.first());
    c.and_then(|c| c.env.as_ref())
        .into_iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect()
}

const VAR: &str = "STAKATER_VAULT_DB_SECRETPROVIDERCLASS";

#[tokio::test]
async fn a_rotated_secret_provider_class_rolls_its_workloads_once() {
    install_crds();
    let ns = TestNs::new("csi").await;
    let classes: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &csi::class_resource());
    let statuses: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &csi::status_resource());
    let pp = PostParams::default();
    classes
        .create(&pp, &class("vault-db", json!({})))
        .await
        .unwrap();
    let ignore = json!({ "reloader.stakater.com/ignore": "true" });
    classes.create(&pp, &class("quiet", ignore)).await.unwrap();
    let auto = json!({ "reloader.stakater.com/auto": "true" });
    let cases = [
        ("auto", auto.clone(), Some("vault-db")),
        (
            "typed",
            json!({ "secretproviderclass.reloader.stakater.com/auto": "true" }),
            Some("vault-db"),
        ),
        (
            "named",
            json!({ "secretproviderclass.reloader.stakater.com/reload": "vault-.*" }),
            None,
        ),
        ("plain", json!({}), Some("vault-db")),
        (
            "excluded",
            json!({
                "reloader.stakater.com/auto": "true",
                "secretproviderclasses.exclude.reloader.stakater.com/reload": "vault-db"
            }),
            Some("vault-db"),
        ),
        (
            "wrong-type",
            json!({ "secret.reloader.stakater.com/auto": "true" }),
            Some("vault-db"),
        ),
        ("ignored", auto, Some("quiet")),
    ];
    for (name, ann, class) in &cases {
        ns.create::<Deployment>(deployment(name, ann.clone(), *class))
            .await;
    }
    // A pod that existed before the operator started.
    statuses
        .create(&pp, &status("pod-1", "vault-db", "1"))
        .await
        .unwrap();
    statuses
        .create(&pp, &status("pod-q", "quiet", "1"))
        .await
        .unwrap();
    let _op = start_operator(&ns, &["--enable-csi-integration=true"]).await;

    let set_version = |name: &'static str, class: &'static str, version: &'static str| {
        let statuses = statuses.clone();
        async move {
            let patch = json!({ "status": { "objects": [{ "id": "secret/db", "version": version }],
                                            "secretProviderClassName": class } });
            statuses
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("patch status");
        }
    };
    // A new pod is not a rotation; the ignored class's rotation is dropped. Both happen on
    // the status stream before the rotation below, so they are processed before it.
    statuses
        .create(&pp, &status("pod-2", "vault-db", "1"))
        .await
        .unwrap();
    set_version("pod-q", "quiet", "2").await;
    set_version("pod-1", "vault-db", "2").await;

    let v2 = hash::spc_status_hash("vault-db", [("secret/db", "2")]).to_string();
    for name in ["auto", "typed", "named"] {
        let what = format!("{name}: {VAR} with the rotated hash");
        wait_for(&what, WAIT, || async {
            let d = ns.get::<Deployment>(name).await;
            match env_of(&d, "app", VAR) {
                Some(v) if v == v2 => Ok(generation(&d)),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    let gen_v2 = generation(&ns.get::<Deployment>("auto").await);
    assert_eq!(gen_v2, 2, "one rotation, one write");

    // The other pod's status catches up with the same versions: no second rollout. The
    // rotation after it is the sentinel that proves the repeat was handled.
    set_version("pod-2", "vault-db", "2").await;
    set_version("pod-1", "vault-db", "3").await;
    let v3 = hash::spc_status_hash("vault-db", [("secret/db", "3")]).to_string();
    let d = wait_for("auto: the second rotation", WAIT, || async {
        let d = ns.get::<Deployment>("auto").await;
        match env_of(&d, "app", VAR) {
            Some(v) if v == v3 => Ok(d),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        generation(&d),
        gen_v2 + 1,
        "the repeated status update rolled the Deployment again"
    );
    for name in ["plain", "excluded", "wrong-type", "ignored"] {
        let d = ns.get::<Deployment>(name).await;
        let vars = env_names(&d);
        assert!(vars.is_empty(), "{name} was rolled: {vars:?}");
        assert_eq!(generation(&d), 1, "{name} was written");
    }
}
