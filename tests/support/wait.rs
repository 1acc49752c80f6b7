//! Waiting for a condition with a timeout and a clear failure message (`wait_for`,
//! `until`), and the waits tests share: a marker written or removed, a Job re-created,
//! Warning Events, the Lease holder.

use std::{
    fmt::Debug,
    future::Future,
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, coordination::v1::Lease};

use super::{markers::env_of, ns::TestNs, ns::warnings};

/// How long tests wait for the operator to act.
pub const WAIT: Duration = Duration::from_secs(30);

/// How long a negative waits after its sentinel rolled, for writes still in flight.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Polls `check` until it returns `Ok`, or panics after `timeout` naming `what` and the
/// last value seen.
pub async fn wait_for<T, S, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let start = Instant::now();
    let mut last;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => last = seen,
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 50 ms until it holds, or panics after `WAIT` with `what`.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the Job named like `old` exists with another uid; returns it.
pub async fn wait_job_recreated(ns: &TestNs, old: &Job) -> Job {
    let name = old.metadata.name.as_deref().expect("a named Job");
    wait_for(&format!("Job {name} re-created"), WAIT, || async {
        match ns.api::<Job>().get_opt(name).await.expect("get the Job") {
            Some(j) if j.metadata.uid != old.metadata.uid => Ok(j),
            other => Err(other.and_then(|j| j.metadata.uid)),
        }
    })
    .await
}

/// Waits until the value of env var `var` on container `app` of Deployment `name` is
/// one that `wanted` accepts (`None`: no such variable); returns the Deployment.
async fn wait_env(
    ns: &TestNs,
    name: &str,
    var: &str,
    what: &str,
    wanted: impl Fn(Option<&str>) -> bool,
) -> Deployment {
    wait_for(
        &format!("{}/{name}: {var} {what}", ns.name),
        WAIT,
        || async {
            let d = ns.get::<Deployment>(name).await;
            match env_of(&d, "app", var) {
                v if wanted(v.as_deref()) => Ok(d),
                other => Err(other),
            }
        },
    )
    .await
}

/// Waits until container `app` of Deployment `name` has `var` = `want`; returns it.
pub async fn wait_env_value(ns: &TestNs, name: &str, var: &str, want: &str) -> Deployment {
    wait_env(ns, name, var, &format!("= {want}"), |v| v == Some(want)).await
}

/// Waits until container `app` of Deployment `name` carries `var` (rolled, whatever the
/// hash); returns the Deployment.
pub async fn wait_marker(ns: &TestNs, name: &str, var: &str) -> Deployment {
    wait_env(ns, name, var, "set", |v| v.is_some()).await
}

/// Waits until container `app` of Deployment `name` no longer carries `var`.
pub async fn wait_no_marker(ns: &TestNs, name: &str, var: &str) {
    wait_env(ns, name, var, "removed", |v| v.is_none()).await;
}

/// Waits until at least one Event with `reason` is about `workload`; returns their notes.
pub async fn wait_warnings(ns: &TestNs, workload: &str, reason: &str) -> Vec<String> {
    wait_for(
        &format!("a {reason} Event on {}/{workload}", ns.name),
        WAIT,
        || async {
            let found = warnings(ns, workload, reason).await;
            if found.is_empty() {
                Err("none yet")
            } else {
                Ok(found)
            }
        },
    )
    .await
}

/// Which replica holds the namespace's Lease `kube-reloader-lock`, once one does.
pub async fn wait_lease_holder(ns: &TestNs) -> String {
    wait_for("a lease holder", WAIT, || async {
        let lease = ns
            .api::<Lease>()
            .get_opt("kube-reloader-lock")
            .await
            .expect("get lease");
        lease
            .and_then(|l| l.spec?.holder_identity)
            .ok_or("none yet")
    })
    .await
}
