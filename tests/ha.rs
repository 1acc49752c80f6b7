//! `--enable-ha` against the real API server: two replicas, one Lease. Only the leader
//! writes; when it dies mid-burst the warm follower takes over within the lease duration,
//! the last change lands, and nothing already written is written again. The annotations
//! strategy is used because there a repeated write would show as another rollout.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::{apps::v1::Deployment, coordination::v1::Lease};
use kube::Api;
use serde_json::json;
use support::{
    Binary, SETTLE, TestNs, WAIT, auto_using, cm_hash, generation, recorded_hash, wait_for,
    wait_lease_holder, warnings,
};

/// The hash recorded in the pod template's `last-reloaded-from`, and the generation.
async fn recorded(ns: &TestNs, name: &str) -> (Option<String>, i64) {
    let d = ns.get::<Deployment>(name).await;
    (recorded_hash(&d), generation(&d))
}

async fn wait_recorded(ns: &TestNs, name: &str, want: &str) -> i64 {
    wait_for(&format!("{name} reloaded to {want}"), WAIT, || async {
        match recorded(ns, name).await {
            (Some(h), generation) if h == want => Ok(generation),
            other => Err(other),
        }
    })
    .await
}

/// A replica: the real binary, so that killing it is a real SIGKILL (no lease release).
async fn replica(ns: &TestNs, id: &str) -> Binary {
    Binary::ha_replica(ns, id, &["--reload-strategy=annotations"]).await
}

const WRITES: &str = "reloader_reload_executed_total{success=\"true\"}";

#[tokio::test]
async fn only_the_leader_writes_and_a_failover_mid_burst_loses_and_repeats_nothing() {
    let ns = TestNs::new("ha").await;
    for name in ["cfg", "probe"] {
        ns.create_cm(name, "0").await;
    }
    let apps = ["d1", "d2", "d3"];
    for a in apps {
        ns.create::<Deployment>(auto_using(a, &["cfg"])).await;
    }
    ns.create::<Deployment>(auto_using("sentinel", &["probe"]))
        .await;
    let mut replicas = BTreeMap::new();
    replicas.insert("a", replica(&ns, "a").await);
    replicas.insert("b", replica(&ns, "b").await);
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let leader = match wait_lease_holder(&ns).await.as_str() {
        "a" => "a",
        "b" => "b",
        other => panic!("the lease held by {other}, not a replica"),
    };
    let follower = if leader == "a" { "b" } else { "a" };
    wait_for("the leader knows it leads", WAIT, || async {
        match replicas[leader].metric("kube_reloader_leader").await {
            Some(1.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;

    ns.set_cm("cfg", "1").await;
    for a in apps {
        wait_recorded(&ns, a, &cm_hash("1")).await;
    }
    let f = &replicas[follower];
    assert_eq!(f.metric("kube_reloader_leader").await, Some(0.0));
    assert_eq!(f.metric(WRITES).await, Some(0.0), "the follower wrote");
    // What the leader wrote, the follower sees and stops holding as pending.
    wait_for("the follower's pending reloads drained", WAIT, || async {
        match f.metric("kube_reloader_pending_reloads").await {
            Some(0.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(replicas[leader].metric(WRITES).await, Some(3.0));

    // The leader dies (no release, as with SIGKILL) between two changes of a burst.
    ns.set_cm("cfg", "2").await;
    replicas.remove(leader).unwrap().sigkill().await;
    ns.set_cm("cfg", "3").await;
    let mut generations = Vec::new();
    for a in apps {
        generations.push(wait_recorded(&ns, a, &cm_hash("3")).await);
    }
    let f = &replicas[follower];
    assert_eq!(f.metric("kube_reloader_leader").await, Some(1.0));
    let lease = leases.get("kube-reloader-lock").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(follower)
    );

    // Nothing is written again once the last change has landed: a later change to
    // another config is the sentinel.
    ns.set_cm("probe", "1").await;
    wait_recorded(&ns, "sentinel", &cm_hash("1")).await;
    for (a, generation) in apps.iter().zip(generations) {
        assert_eq!(
            recorded(&ns, a).await.1,
            generation,
            "{a} was written again"
        );
    }
    // A graceful stop releases the lease.
    let survivor = replicas.remove(follower).unwrap();
    survivor.sigterm().await;
    let lease = leases.get("kube-reloader-lock").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None, "not released");
}

/// A new leader does not repeat the InvalidAnnotation Warning the old one sent: it reads
/// the Events already on the workload.
#[tokio::test]
async fn a_failover_repeats_no_invalid_annotation_warning() {
    let ns = TestNs::new("ha-warn").await;
    let pod = json!({ "containers": [{ "name": "app", "image": "x" }] });
    let invalid = json!({ "configmap.reloader.stakater.com/reload": "bad[" });
    ns.create::<Deployment>(support::deployment("w", invalid.clone(), pod.clone()))
        .await;
    let mut replicas = BTreeMap::new();
    replicas.insert("a".to_owned(), replica(&ns, "a").await);
    replicas.insert("b".to_owned(), replica(&ns, "b").await);
    let first = wait_lease_holder(&ns).await;
    wait_for("one InvalidAnnotation Warning", WAIT, || async {
        let found = warnings(&ns, "w", "InvalidAnnotation").await;
        if found.len() == 1 { Ok(()) } else { Err(found) }
    })
    .await;
    replicas.remove(&first).unwrap().sigkill().await;
    // The sentinel: a second invalid workload, made once the old leader is gone. Only the new
    // leader reports it, in the pass on gaining the lease that must leave `w` out: the
    // follower caches it first (the lease outlives the kill by seconds).
    ns.create::<Deployment>(support::deployment("sentinel", invalid, pod))
        .await;
    let follower = &replicas[replicas.keys().next().expect("the follower")];
    let watched = "kube_reloader_watched_objects{kind=\"Deployment\"}";
    wait_for("the sentinel cached by the follower", WAIT, || async {
        match follower.metric(watched).await {
            Some(2.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(
        follower.metric("kube_reloader_leader").await,
        Some(0.0),
        "the follower led before it had the sentinel"
    );
    let next = wait_for("the other replica leading", WAIT, || async {
        let h = wait_lease_holder(&ns).await;
        if h != first { Ok(h) } else { Err(h) }
    })
    .await;
    wait_for("the new leader knows it leads", WAIT, || async {
        match replicas[&next].metric("kube_reloader_leader").await {
            Some(1.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    wait_for("the sentinel reported by the new leader", WAIT, || async {
        let found = warnings(&ns, "sentinel", "InvalidAnnotation").await;
        if found.len() == 1 { Ok(()) } else { Err(found) }
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    let found = warnings(&ns, "w", "InvalidAnnotation").await;
    assert_eq!(found.len(), 1, "{found:?}\n{}", replicas[&next].log());
}
