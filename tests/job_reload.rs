//! A Job's reload (stakater's: delete it, create it again) is never lost, against the real
//! API server: not when the delete's answer is lost, not when the operator is stopped or
//! killed while the API server refuses the new Job, not when the leader dies meanwhile. The
//! Job to create is recorded before the delete (Secrets `kube-reloader-jobs-NN`); whoever
//! writes next finishes it, exactly once.

mod support;

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http::{Method, Request, Response};
use k8s_openapi::api::{batch::v1::Job, core::v1::Secret};
use kube::{
    Client, Config,
    client::{Body, ClientBuilder},
    config::{KubeConfigOptions, Kubeconfig},
};
use support::{
    Binary, Refusal, TestNs, WAIT, change_job_secret, create_job_with_secret, job_env, secret_hash,
    start_operator_as, wait_for, wait_job_recreated, wait_lease_holder, warnings,
};
use tower::{BoxError, Layer, Service};

/// Waits for the Job re-created with the marker; then makes sure it stays the one Job (no
/// second re-creation) and that no record of it is left.
async fn recreated_once(ns: &TestNs, old: &Job) {
    let new = wait_job_recreated(ns, old).await;
    assert_eq!(
        job_env(&new, "STAKATER_S_SECRET"),
        Some(secret_hash(&[("t", "2")])),
        "the re-created Job carries the marker"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = ns.get::<Job>("migrate").await;
    assert_eq!(now.metadata.uid, new.metadata.uid, "created exactly once");
    wait_for("the record forgotten", WAIT, || async {
        let left: Vec<String> = ns
            .list::<Secret>()
            .await
            .into_iter()
            .filter(|s| {
                s.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("kube-reloader-jobs-"))
            })
            .flat_map(|s| s.data.unwrap_or_default().into_keys())
            .collect();
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await;
}

/// Lets the first `n` Job deletes through to the API server and then loses their answers,
/// as a connection cut right after the request would.
#[derive(Clone)]
struct LoseDeleteAnswers(Arc<AtomicUsize>);

struct Lossy<S> {
    inner: S,
    left: Arc<AtomicUsize>,
}

impl<S> Layer<S> for LoseDeleteAnswers {
    type Service = Lossy<S>;
    fn layer(&self, inner: S) -> Lossy<S> {
        Lossy {
            inner,
            left: self.0.clone(),
        }
    }
}

impl<S, B> Service<Request<Body>> for Lossy<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let job_delete = req.method() == Method::DELETE && req.uri().path().contains("/jobs/");
        let lose = job_delete
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let answer = answer.await;
            if lose {
                drop(answer);
                return Err("connection reset after the request: the answer was lost".into());
            }
            answer
        })
    }
}

async fn lossy_client(deletes: usize) -> Client {
    let kubeconfig = Kubeconfig::read_from(support::control_plane()).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load kubeconfig");
    let layer = LoseDeleteAnswers(Arc::new(AtomicUsize::new(deletes)));
    ClientBuilder::try_from(config)
        .expect("client stack")
        .with_layer(&layer)
        .build()
}

#[tokio::test]
async fn a_delete_whose_answer_is_lost_is_settled_and_the_job_created_once() {
    let ns = TestNs::new("job-lost").await;
    let old = create_job_with_secret(&ns).await;
    let client = lossy_client(1).await;
    let args = [
        format!("--namespaces={}", ns.name),
        format!("--state-namespace={}", ns.name),
        "--coalesce-window=0s".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _op = start_operator_as(&client, &args).await;
    change_job_secret(&ns).await;
    recreated_once(&ns, &old).await;
}

/// Holds Job creates, changes the Secret and waits until the operator has deleted the Job
/// and been refused its new one: from then on only the record holds it.
async fn hold_the_new_job(ns: &TestNs, op: &Binary) -> Refusal {
    let refusal = Refusal::job_creates(ns).await;
    change_job_secret(ns).await;
    wait_for("the new Job refused", WAIT, || async {
        let refused = warnings(ns, "migrate", "ReloadFail").await;
        if refused.is_empty() {
            Err(op.log())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        ns.api::<Job>().get_opt("migrate").await.unwrap().is_none(),
        "the old Job is deleted"
    );
    refusal
}

#[tokio::test]
async fn a_stopped_operator_leaves_the_job_to_the_next_one() {
    for how in ["sigterm", "sigkill"] {
        let ns = TestNs::new(&format!("job-{how}")).await;
        let old = create_job_with_secret(&ns).await;
        let first = Binary::in_namespace(&ns, "first", &[], &[]).await;
        let refusal = hold_the_new_job(&ns, &first).await;
        match how {
            "sigterm" => first.sigterm().await,
            _ => first.sigkill().await,
        }
        drop(refusal);
        let _next = Binary::in_namespace(&ns, "next", &[], &[]).await;
        recreated_once(&ns, &old).await;
    }
}

#[tokio::test]
async fn a_new_leader_finishes_the_job_of_a_leader_killed_meanwhile() {
    let ns = TestNs::new("job-ha").await;
    let old = create_job_with_secret(&ns).await;
    let a = Binary::ha_replica(&ns, "a", &[]).await;
    wait_for("a leading", WAIT, || async {
        let holder = wait_lease_holder(&ns).await;
        if holder == "a" { Ok(()) } else { Err(holder) }
    })
    .await;
    let b = Binary::ha_replica(&ns, "b", &[]).await;
    let refusal = hold_the_new_job(&ns, &a).await;
    a.sigkill().await;
    drop(refusal);
    recreated_once(&ns, &old).await;
    assert!(
        b.log().contains("finishing a recorded Job re-creation"),
        "{}",
        b.log()
    );
}
