//! `sidecar` (keep the directory current, reload on change) and `init` (write once, exit).

use super::{
    Fail,
    args::{InitArgs, SidecarArgs},
    debounce::Debounce,
    metrics::InPodMetrics,
    objref,
    reload::Reloader,
    server, spec,
    writer::Writer,
};

fn modes(a: &super::args::ObjectArgs) -> (u32, u32) {
    (a.file_mode, a.secret_file_mode)
}

pub async fn sidecar(a: SidecarArgs) -> Result<(), Fail> {
    let ns = objref::default_namespace(a.objects.namespace.as_deref());
    let refs = spec::objects(&a.objects, ns.as_deref()).map_err(Fail::Usage)?;
    let action = spec::action(&a.reload).map_err(Fail::Usage)?;
    let metrics = InPodMetrics::new("sidecar", a.looping.failure_threshold);
    let listener = server::bind(&a.looping.http_addr)
        .await
        .map_err(Fail::Usage)?;
    let client = super::client().await?;
    tokio::spawn(server::serve(listener, metrics.clone()));
    tracing::info!(objects = ?refs.iter().map(ToString::to_string).collect::<Vec<_>>(), dir = %a.objects.dir.display(), action = ?action, "sidecar started");
    let dir = a.objects.dir.clone();
    let mut writer = Writer::start(&client, refs, dir, modes(&a.objects), metrics.clone());
    let reloader = Reloader { action, metrics };
    let mut debounce = Debounce::new(a.looping.debounce, a.looping.debounce_max_delay);
    writer
        .run_until(&reloader, &mut debounce, super::terminated())
        .await
        .map_err(Fail::Run)?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn init(a: InitArgs) -> Result<(), Fail> {
    let s = &a.sidecar;
    let ns = objref::default_namespace(s.objects.namespace.as_deref());
    let refs = spec::objects(&s.objects, ns.as_deref()).map_err(Fail::Usage)?;
    // Checked, so a bad reload flag shared with the sidecar fails here, before the app starts.
    spec::action(&s.reload).map_err(Fail::Usage)?;
    let client = super::client().await?;
    let metrics = InPodMetrics::new("init", 0);
    let dir = s.objects.dir.clone();
    let mut writer = Writer::start(&client, refs, dir, modes(&s.objects), metrics);
    writer.wait_complete(a.wait).await.map_err(Fail::Run)?;
    writer.write_now().map_err(Fail::Run)?;
    Ok(())
}
