//! k8s-sidecar's SCRIPT: a program run after each change, before the reload call. Its
//! failure is logged, and the reload still happens (as k8s-sidecar does).

use std::{os::unix::fs::PermissionsExt, path::Path, process::Stdio};

pub async fn run(path: &Path) {
    let executable = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    let mut cmd = if executable {
        tokio::process::Command::new(path)
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.arg(path);
        c
    };
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match cmd.output().await {
        Ok(out) if out.status.success() => {
            tracing::info!(script = %path.display(), "script ran");
        }
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            tracing::error!(script = %path.display(), status = %out.status, stderr = %stderr.trim(), "script failed");
        }
        Err(e) => {
            let how = if executable {
                ""
            } else {
                " (not executable, so with sh)"
            };
            tracing::error!(script = %path.display(), error = %e, "cannot run the script{how}");
        }
    }
}
