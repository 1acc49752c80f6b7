//! Reload by signal to a real process found by its pid file or its name, and a clear error
//! (and a failing /healthz) when the process is not there.

use crate::{
    common::{Recorder, healthz_is, tmpdir},
    support::{Binary, TestNs, free_addr, until},
};

fn sidecar(ns: &TestNs, extra: &[String]) -> Binary {
    let addr = free_addr();
    let mut args: Vec<String> = vec![
        "sidecar".into(),
        format!("--configmap={}/app", ns.name),
        format!("--dir={}", tmpdir("signals").display()),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    args.extend(extra.iter().cloned());
    Binary::in_pod(&args, &[], Some(addr))
}

#[tokio::test]
async fn signals_reach_the_app_by_pid_file_and_by_name() {
    let ns = TestNs::new("inpod-signal").await;
    ns.create_cm("app", "0").await;
    let by_file = Recorder::start("HUP", None).await;
    // A unique name of at most 15 bytes, the kernel's limit for a process name.
    let name = format!("krsig{}", std::process::id() % 1_000_000);
    let by_name = Recorder::start("USR1", Some(&name)).await;

    let mut a = sidecar(&ns, &[format!("--pid-file={}", by_file.pid_file.display())]);
    let mut b = sidecar(
        &ns,
        &[format!("--process-name={name}"), "--signal=SIGUSR1".into()],
    );
    a.ready().await;
    b.ready().await;
    assert_eq!((by_file.count(), by_name.count()), (0, 0));

    ns.set_cm("app", "1").await;
    until("HUP by pid file and USR1 by name", || {
        by_file.count() == 1 && by_name.count() == 1
    })
    .await;
    let pid = by_name.child.id().unwrap();
    assert!(
        b.log().contains(&format!("SIGUSR1 to process {pid}")),
        "{}",
        b.log()
    );
}

#[tokio::test]
async fn a_missing_process_is_a_clear_error() {
    let ns = TestNs::new("inpod-nosignal").await;
    ns.create_cm("app", "0").await;
    // The pid of a process that has exited.
    let mut gone = tokio::process::Command::new("true").spawn().unwrap();
    let pid = gone.id().unwrap();
    gone.wait().await.unwrap();
    let pid_file = tmpdir("pidfile").join("pid");
    std::fs::write(&pid_file, pid.to_string()).unwrap();

    let fail = "--failure-threshold=1".to_string();
    let mut a = sidecar(
        &ns,
        &[format!("--pid-file={}", pid_file.display()), fail.clone()],
    );
    let mut b = sidecar(&ns, &["--process-name=no-such-app".into(), fail]);
    a.ready().await;
    b.ready().await;
    ns.set_cm("app", "1").await;
    healthz_is(&a, 503).await;
    healthz_is(&b, 503).await;
    assert!(
        a.log().contains(&format!(
            "cannot send SIGHUP to process {pid}: no such process"
        )),
        "{}",
        a.log()
    );
    assert!(
        b.log().contains("no process named \"no-such-app\""),
        "{}",
        b.log()
    );
}

/// A signal the kernel refuses (another user's process) is a clear error too.
#[tokio::test]
async fn a_signal_not_permitted_is_a_clear_error() {
    let app = Recorder::start("HUP", None).await; // runs as root
    let dir = tmpdir("eperm");
    std::fs::write(dir.join("app.conf"), "1").unwrap();
    let addr = free_addr();
    let args: Vec<String> = vec![
        "watch-dir".into(),
        format!("--dir={}", dir.display()),
        format!("--pid-file={}", app.pid_file.display()),
        "--failure-threshold=1".into(),
        "--debounce=100ms".into(),
        format!("--http-addr={addr}"),
    ];
    let mut p = Binary::in_pod_as_nobody(&args, Some(addr));
    p.ready().await;
    std::fs::write(dir.join("app.conf"), "2").unwrap();
    healthz_is(&p, 503).await;
    let pid = app.child.id().unwrap();
    let want = format!("cannot send SIGHUP to process {pid}: not permitted");
    assert!(p.log().contains(&want), "{}", p.log());
    assert_eq!(app.count(), 0);
}
