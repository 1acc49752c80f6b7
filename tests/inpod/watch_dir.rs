//! `watch-dir` on a simulated kubelet volume (a timestamped folder, `..data` swapped by a
//! rename, keys as symlinks), and on a plain directory.

use std::{os::unix::fs::symlink, path::Path, time::Duration};

use crate::{
    common::tmpdir,
    support::{Binary, Receiver, free_addr, until},
};

/// Publishes a version as the kubelet's AtomicWriter does, independently of our writer.
pub fn kubelet_swap(dir: &Path, version: &str, files: &[(&str, &str)]) {
    let old = std::fs::read_link(dir.join("..data")).ok();
    let folder = format!("..2024_01_01_00_00_00.{version}");
    std::fs::create_dir(dir.join(&folder)).unwrap();
    for (k, v) in files {
        std::fs::write(dir.join(&folder).join(k), v).unwrap();
    }
    symlink(&folder, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (k, _) in files {
        let _ = symlink(Path::new("..data").join(k), dir.join(k));
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

pub fn watch_dir(dir: &Path, extra: &[String], env: &[(&str, &str)]) -> Binary {
    let addr = free_addr();
    let mut args: Vec<String> = vec!["--debounce=200ms".into(), format!("--http-addr={addr}")];
    if env.is_empty() {
        args.insert(0, "watch-dir".into());
        args.push(format!("--dir={}", dir.display()));
    }
    args.extend(extra.iter().cloned());
    Binary::in_pod(&args, env, Some(addr))
}

#[tokio::test]
async fn one_reload_per_data_swap() {
    let dir = tmpdir("kubelet");
    kubelet_swap(&dir, "1", &[("a", "1"), ("b", "1"), ("c", "1")]);
    let receiver = Receiver::start(&[200]).await;
    let mut p = watch_dir(
        &dir,
        &[format!("--reload-http=http://{}/-/reload", receiver.addr)],
        &[],
    );
    p.ready().await;

    kubelet_swap(&dir, "2", &[("a", "2"), ("b", "2"), ("c", "2")]);
    until("the reload", || receiver.count() == 1).await;
    // A stray file in the volume is not a swap.
    std::fs::write(dir.join("stray"), "x").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.count(), 1, "one swap of three files is one reload");

    kubelet_swap(&dir, "3", &[("a", "3"), ("b", "2"), ("c", "2")]);
    until("the second reload", || receiver.count() == 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.count(), 2);
}

#[tokio::test]
async fn plain_directories_reload_when_their_content_changes() {
    let dir = tmpdir("plain");
    std::fs::write(dir.join("app.conf"), "1").unwrap();
    let touch = dir.with_extension("touched");
    let mut p = watch_dir(&dir, &[format!("--touch={}", touch.display())], &[]);
    p.ready().await;

    std::fs::write(dir.join("app.conf"), "2").unwrap();
    until("the reload", || touch.exists()).await;
    std::fs::remove_file(&touch).unwrap();
    std::fs::write(dir.join("app.conf"), "2").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!touch.exists(), "the same content again is no change");
    assert_eq!(
        p.metric("kube_reloader_inpod_reloads_total").await,
        Some(1.0)
    );
}
