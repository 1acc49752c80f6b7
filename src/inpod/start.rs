//! Start-up shared by the modes: the objects to write and their watches (`sidecar`, `init`,
//! `run`), and the metrics server and debounce of the long-running ones (not `init`).

use super::{
    Fail, RunError,
    args::{LoopArgs, ObjectArgs},
    debounce::Debounce,
    metrics::InPodMetrics,
    objref::{self, ObjectRef},
    server, spec,
    writer::Writer,
};

/// The objects the flags name; those without a namespace are in `--namespace` or the pod's.
pub fn objects(a: &ObjectArgs) -> Result<Vec<ObjectRef>, Fail> {
    let ns = objref::default_namespace(a.namespace.as_deref());
    Ok(spec::objects(a, ns.as_deref())?)
}

/// Starts watching `refs`, to be written into `--dir`.
pub async fn writer(
    a: &ObjectArgs,
    refs: Vec<ObjectRef>,
    metrics: InPodMetrics,
) -> Result<Writer, Fail> {
    let client = crate::shared::kube::client()
        .await
        .map_err(RunError::from)?;
    let modes = (a.file_mode, a.secret_file_mode);
    Ok(Writer::start(&client, refs, a.dir.clone(), modes, metrics))
}

/// The mode's metrics, served on `--http-addr` from now on.
pub async fn serve_metrics(mode: &str, l: &LoopArgs) -> Result<InPodMetrics, Fail> {
    let metrics = InPodMetrics::new(mode, l.failure_threshold);
    let listener = server::bind(&l.http_addr).await?;
    tokio::spawn(server::serve(listener, metrics.clone()));
    Ok(metrics)
}

pub fn debounce(l: &LoopArgs) -> Debounce {
    Debounce::new(l.debounce, l.debounce_max_delay)
}
