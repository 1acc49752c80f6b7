//! The image run with no arguments, configured as Pod Reloader (`RELOADER_*`) and as
//! config-reloader-sidecar (`CONFIG_DIR`, `PROCESS_NAME`, `RELOAD_SIGNAL`) pod specs do.

use crate::{
    common::{Recorder, read, tmpdir},
    support::{Binary, TestNs, WAIT, until},
    watch_dir::{kubelet_swap, watch_dir},
};

#[tokio::test]
async fn pod_reloader_variables_give_init_then_sidecar() {
    let ns = TestNs::new("inpod-env").await;
    ns.create_cm("app", "1").await;
    let dir = tmpdir("env");
    let path = dir.display().to_string();
    let common = [
        ("RELOADER_CONFIGMAP", "app"),
        ("RELOADER_PATH", path.as_str()),
    ];

    // The init container: RELOADER_INIT, the namespace from RELOADER_NAMESPACE.
    let mut env = common.to_vec();
    env.extend([
        ("RELOADER_INIT", "true"),
        ("RELOADER_NAMESPACE", ns.name.as_str()),
    ]);
    let mut init = Binary::in_pod(&[], &env, None);
    assert!(init.exit(WAIT).await.success(), "{}", init.log());
    assert_eq!(read(&dir.join("k")).as_deref(), Some("1"));

    // The sidecar: RELOADER_PIDFILE with Pod Reloader's default signal, SIGUSR2; the
    // namespace from POD_NAMESPACE.
    let app = Recorder::start("USR2", None).await;
    let pid_file = app.pid_file.display().to_string();
    let mut env = common.to_vec();
    env.extend([
        ("RELOADER_PIDFILE", pid_file.as_str()),
        ("POD_NAMESPACE", ns.name.as_str()),
    ]);
    let mut p = no_subcommand(&env);
    p.ready().await;
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(0.0),
        "init's files are current"
    );
    ns.set_cm("app", "2").await;
    until("SIGUSR2 to the app", || app.count() == 1).await;
    assert_eq!(read(&dir.join("k")).as_deref(), Some("2"));
}

/// The binary with only `--http-addr` and `--debounce` as arguments.
fn no_subcommand(env: &[(&str, &str)]) -> Binary {
    watch_dir(std::path::Path::new("/unused"), &[], env)
}

#[tokio::test]
async fn config_reloader_sidecar_variables_give_watch_dir() {
    let dir = tmpdir("env-dir");
    kubelet_swap(&dir, "1", &[("nginx.conf", "1")]);
    let name = format!("krenv{}", std::process::id() % 1_000_000);
    let app = Recorder::start("USR1", Some(&name)).await;
    let path = dir.display().to_string();
    let env = [
        ("CONFIG_DIR", path.as_str()),
        ("PROCESS_NAME", name.as_str()),
        ("RELOAD_SIGNAL", "SIGUSR1"),
    ];
    let mut p = no_subcommand(&env);
    p.ready().await;
    kubelet_swap(&dir, "2", &[("nginx.conf", "2")]);
    until("SIGUSR1 to the app", || app.count() == 1).await;

    let mut bad = Binary::in_pod(&[], &[("CONFIG_DIR", path.as_str())], None);
    assert_eq!(bad.exit(WAIT).await.code(), Some(2));
    assert!(bad.log().contains("PROCESS_NAME"), "{}", bad.log());
}
