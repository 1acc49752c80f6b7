//! `sidecar` writing files: contents, modes, the kubelet layout, key removal, the atomic
//! swap seen by a concurrent reader, and the content hash deciding writes and reloads.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

use crate::{
    common::{read, tmpdir},
    support::{Binary, TestNs, free_addr, until},
};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sidecar(ns: &TestNs, dir: &Path, extra: &[&str]) -> Binary {
    let addr = free_addr();
    let mut args: Vec<String> = ["sidecar", "--debounce=100ms"].map(String::from).to_vec();
    args.push(format!("--dir={}", dir.display()));
    args.push(format!("--http-addr={addr}"));
    args.extend(extra.iter().map(|s| s.to_string()));
    Binary::in_pod(&args, &[("POD_NAMESPACE", &ns.name)], Some(addr))
}

#[tokio::test]
async fn keys_become_files_and_follow_changes() {
    let ns = TestNs::new("inpod-files").await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "app" },
        "data": { "app.conf": "v=1", "gone.conf": "x" },
        "binaryData": { "blob": "AAH/" },
    }))
    .await;
    ns.create::<Secret>(
        json!({ "metadata": { "name": "db" }, "stringData": { "password": "s3cr3t" } }),
    )
    .await;
    let dir = tmpdir("files");
    let secret = format!("--secret={}/db", ns.name);
    let mut p = sidecar(
        &ns,
        &dir,
        &["--configmap=app", &secret, "--log-level=trace"],
    );
    p.ready().await;

    assert_eq!(read(&dir.join("app.conf")).as_deref(), Some("v=1"));
    assert_eq!(
        std::fs::read(dir.join("blob")).unwrap(),
        [0, 1, 255],
        "binaryData as bytes"
    );
    assert_eq!(
        read(&dir.join("password")).as_deref(),
        Some("s3cr3t"),
        "decoded"
    );
    assert_eq!(mode(&dir.join("app.conf")), 0o644);
    assert_eq!(
        mode(&dir.join("password")),
        0o600,
        "Secrets are owner-only by default"
    );
    let link = std::fs::read_link(dir.join("app.conf")).unwrap();
    assert_eq!(
        link,
        Path::new("..data/app.conf"),
        "each key a symlink into ..data"
    );
    let first = std::fs::read_link(dir.join("..data")).unwrap();
    assert!(first.to_string_lossy().starts_with("..20"), "{first:?}");

    ns.merge_patch::<ConfigMap>(
        "app",
        json!({ "data": { "app.conf": "v=2", "gone.conf": null } }),
    )
    .await;
    let gone = dir.join("gone.conf");
    until("v=2 written and gone.conf removed", || {
        read(&dir.join("app.conf")).as_deref() == Some("v=2") && gone.symlink_metadata().is_err()
    })
    .await;
    assert!(
        !dir.join(&first).exists(),
        "the previous version's folder is removed"
    );
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(2.0)
    );
    assert!(
        !p.log().contains("s3cr3t"),
        "a Secret's value reached the log:\n{}",
        p.log()
    );
}

/// A reader resolving `..data` once and reading both keys must always see one version:
/// the test changes the keys together, so a mix (or a torn file) means a broken swap.
#[tokio::test]
async fn readers_never_see_a_mix_of_versions() {
    const SIZE: usize = 100_000;
    let value = |c: char| c.to_string().repeat(SIZE);
    let ns = TestNs::new("inpod-atomic").await;
    ns.create::<ConfigMap>(json!({
        "metadata": { "name": "pair" },
        "data": { "a": value('a'), "b": value('a') },
    }))
    .await;
    let dir = tmpdir("atomic");
    let mut p = sidecar(&ns, &dir, &["--configmap=pair", "--debounce=0s"]);
    p.ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut seen, mut problems, mut reads) =
                (std::collections::BTreeSet::new(), Vec::new(), 0);
            let whole = |s: &str| s.len() == SIZE && s.bytes().all(|c| c == s.as_bytes()[0]);
            while !stop.load(Ordering::Relaxed) {
                // Through the key's own symlink: always a whole file of some version.
                if let Ok(a) = std::fs::read_to_string(dir.join("a"))
                    && !whole(&a)
                {
                    problems.push(format!("torn a: {} bytes", a.len()));
                }
                // Through one resolution of ..data: both keys of one version.
                let Ok(folder) = std::fs::read_link(dir.join("..data")) else {
                    continue;
                };
                let (a, b) = (
                    std::fs::read_to_string(dir.join(&folder).join("a")),
                    std::fs::read_to_string(dir.join(&folder).join("b")),
                );
                // A folder removed meanwhile is a version gone, not a mix.
                let (Ok(a), Ok(b)) = (a, b) else { continue };
                reads += 1;
                // Versions by their first byte (and length, for a torn file).
                let version = |s: &str| format!("{}x{}", s.get(..1).unwrap_or(""), s.len());
                if !whole(&a) || a != b {
                    problems.push(format!(
                        "mix in {folder:?}: a={} b={}",
                        version(&a),
                        version(&b)
                    ));
                }
                seen.insert(version(&a));
            }
            (seen, problems, reads)
        })
    };
    for c in 'b'..='p' {
        ns.merge_patch::<ConfigMap>("pair", json!({ "data": { "a": value(c), "b": value(c) } }))
            .await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    until("the last version", || {
        read(&dir.join("b")).is_some_and(|s| s.starts_with('p'))
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (seen, problems, reads) = reader.join().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems in {reads} reads: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(
        seen.len() >= 3,
        "the reader saw too few versions to prove anything: {seen:?}"
    );
}

/// Nothing is written or reloaded unless the content changed: not for a label edit, not
/// for a restart over an up-to-date directory; a burst of changes is one write and one
/// reload; a change made while the sidecar was down is written and reloaded at start.
#[tokio::test]
async fn only_changed_content_is_written_and_reloaded() {
    let ns = TestNs::new("inpod-hash").await;
    ns.create_cm("app", "0").await;
    let dir = tmpdir("hash");
    let touch = dir.with_extension("touched");
    let touch_arg = format!("--touch={}", touch.display());
    let args = ["--configmap=app", touch_arg.as_str(), "--debounce=500ms"];
    let mut p = sidecar(&ns, &dir, &args);
    p.ready().await;
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(1.0)
    );
    assert!(
        !touch.exists(),
        "an empty directory is filled, not reloaded"
    );

    ns.merge_patch::<ConfigMap>("app", json!({ "metadata": { "labels": { "x": "y" } } }))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(1.0),
        "labels are not content"
    );
    assert!(!touch.exists());

    for i in 1..=5 {
        ns.set_cm("app", &i.to_string()).await;
    }
    until("the reload", || touch.exists()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read(&dir.join("k")).as_deref(), Some("5"));
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(2.0),
        "one write for the burst"
    );
    assert_eq!(
        p.metric("kube_reloader_inpod_reloads_total").await,
        Some(1.0),
        "one reload for the burst"
    );
    drop(p);

    std::fs::remove_file(&touch).unwrap();
    let mut p = sidecar(&ns, &dir, &args);
    p.ready().await;
    assert_eq!(
        p.metric("kube_reloader_inpod_writes_total").await,
        Some(0.0),
        "up to date at start"
    );
    assert!(!touch.exists(), "nothing to reload at start");
    drop(p);

    ns.set_cm("app", "while-down").await;
    let mut p = sidecar(&ns, &dir, &args);
    p.ready().await;
    assert_eq!(read(&dir.join("k")).as_deref(), Some("while-down"));
    until("the reload of the change made while down", || {
        touch.exists()
    })
    .await;
    assert_eq!(
        p.metric("kube_reloader_inpod_reloads_total").await,
        Some(1.0)
    );
}

/// A write that fails (here: a file kube-reloader did not write is in the way) fails
/// /healthz and is retried, so the config lands once the obstacle is gone.
#[tokio::test]
async fn a_failed_write_is_retried() {
    let ns = TestNs::new("inpod-write-retry").await;
    ns.create_cm("app", "1").await;
    let dir = tmpdir("write-retry");
    std::fs::write(dir.join("k"), "not ours").unwrap();
    let mut p = sidecar(&ns, &dir, &["--configmap=app", "--failure-threshold=1"]);
    crate::common::healthz_is(&p, 503).await;
    assert!(
        p.log().contains("was not written by kube-reloader"),
        "{}",
        p.log()
    );
    assert_eq!(
        read(&dir.join("k")).as_deref(),
        Some("not ours"),
        "never overwritten"
    );

    std::fs::remove_file(dir.join("k")).unwrap();
    p.ready().await;
    until("the retried write", || {
        read(&dir.join("k")).as_deref() == Some("1")
    })
    .await;
}
