//! `sidecar` (keep the directory current, reload on change) and `init` (write once, exit).

use super::{
    Fail, RunError,
    args::{InitArgs, SidecarArgs},
    metrics::InPodMetrics,
    reload::Reloader,
    spec, start,
};

pub async fn sidecar(a: SidecarArgs) -> Result<(), Fail> {
    let refs = start::objects(&a.objects)?;
    let action = spec::action(&a.reload)?;
    let metrics = start::serve_metrics("sidecar", &a.looping).await?;
    let names: Vec<_> = refs.iter().map(ToString::to_string).collect();
    let mut writer = start::writer(&a.objects, refs, metrics.clone()).await?;
    tracing::info!(objects = ?names, dir = %a.objects.dir.display(), action = ?action, "sidecar started");
    let reloader = Reloader { action, metrics };
    let mut debounce = start::debounce(&a.looping);
    writer
        .run_until(&reloader, &mut debounce, super::terminated())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn init(a: InitArgs) -> Result<(), Fail> {
    let s = &a.sidecar;
    let refs = start::objects(&s.objects)?;
    // Checked, so a bad reload flag shared with the sidecar fails here, before the app starts.
    spec::action(&s.reload)?;
    let mut writer = start::writer(&s.objects, refs, InPodMetrics::new("init", 0)).await?;
    writer.wait_complete(a.wait).await?;
    writer.write_now().map_err(RunError::from)?;
    Ok(())
}
