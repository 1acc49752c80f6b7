//! kiwigrid k8s-sidecar's environment variables (the Grafana and kube-prometheus-stack
//! charts' dashboard and datasource loader) as `collect` flags. Each variable is mapped,
//! accepted with a warning (logged at start through the hidden `--env-warning`), or refused
//! with an error naming it; docs/configuration.md has the table.

/// Variables accepted but without effect here, and why.
const IGNORED: &[(&str, &str)] = &[
    (
        "REQ_RETRY_CONNECT",
        "one retry budget (REQ_RETRY_TOTAL) covers every kind of failure",
    ),
    (
        "REQ_RETRY_READ",
        "one retry budget (REQ_RETRY_TOTAL) covers every kind of failure",
    ),
    (
        "ERROR_THROTTLE_SLEEP",
        "a failed watch is retried with backoff from 0.8s to 30s",
    ),
    (
        "WATCH_SERVER_TIMEOUT",
        "the watch is renewed by kube's watcher, which relists whenever it cannot resume",
    ),
    (
        "WATCH_CLIENT_TIMEOUT",
        "the watch is renewed by kube's watcher, which relists whenever it cannot resume",
    ),
    (
        "ENABLE_5XX",
        "`.url` keys are not downloaded (they are skipped)",
    ),
    (
        "LOG_CONFIG",
        "logs are configured by LOG_LEVEL and LOG_FORMAT",
    ),
    ("SLEEP_TIME", "objects are watched, not polled"),
];

fn is_true(v: Option<String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The `collect` arguments for k8s-sidecar's environment; `Err` names a variable refused.
pub fn args(
    label: &str,
    folder: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut args = vec!["collect".to_owned()];
    let mut warnings: Vec<String> = Vec::new();
    let selector = match var("LABEL_VALUE") {
        Some(v) => format!("{}={}", label.trim(), v.trim()),
        None => label.trim().to_owned(),
    };
    args.push(format!("--label={selector}"));
    args.push(format!("--dir={folder}"));
    if let Some(a) = var("FOLDER_ANNOTATION") {
        args.push(format!("--folder-annotation={}", a.trim()));
    }
    match var("NAMESPACE") {
        Some(ns) if ns.split(',').any(|n| n.trim() == "ALL") => {
            args.push("--all-namespaces".into());
        }
        ns => args.extend(
            ns.iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("--namespace={n}")),
        ),
    }
    let resource = var("RESOURCE").map(|r| r.trim().to_ascii_lowercase());
    match resource.as_deref() {
        None | Some("configmap") => {}
        Some(r @ ("secret" | "both")) => args.push(format!("--resource={r}")),
        Some(_) => return Err("RESOURCE must be configmap, secret or both".into()),
    }
    if var("RESOURCE_NAME").is_some() {
        return Err("RESOURCE_NAME is not supported: to write named objects (with RBAC limited to them), use `kube-reloader sidecar --configmap NAME --secret NAME`, or the RELOADER_* variables".into());
    }
    match var("METHOD").map(|m| m.trim().to_ascii_uppercase()).as_deref() {
        Some("LIST") => args.push("--once".into()),
        Some("SLEEP") => warnings.push(
            "METHOD=SLEEP: watching instead of polling every SLEEP_TIME (changes are seen at once; a lost watch relists)".into(),
        ),
        _ => {}
    }
    let url = var("REQ_URL");
    if let Some(url) = &url {
        args.push(format!("--reload-http={url}"));
        let method = var("REQ_METHOD").map_or("GET".into(), |m| m.trim().to_ascii_uppercase());
        args.push(format!("--reload-http-method={method}"));
        if let Some(payload) = var("REQ_PAYLOAD") {
            if method == "POST" {
                // As k8s-sidecar: JSON as it is, anything else as a JSON string.
                let json = match serde_json::from_str::<serde_json::Value>(&payload) {
                    Ok(_) => payload,
                    Err(_) => serde_json::Value::String(payload).to_string(),
                };
                args.push(format!("--reload-http-json={json}"));
            } else {
                warnings.push(format!(
                    "REQ_PAYLOAD is sent only with REQ_METHOD=POST, not {method}"
                ));
            }
        }
        match (var("REQ_USERNAME"), var("REQ_PASSWORD")) {
            (Some(u), Some(p)) => {
                args.push(format!("--reload-http-username={u}"));
                args.push(format!("--reload-http-password={p}"));
            }
            (None, None) => {}
            _ => warnings.push("REQ_USERNAME and REQ_PASSWORD go together; neither is used".into()),
        }
        if let Some(enc) = var("REQ_BASIC_AUTH_ENCODING")
            && !enc.trim().eq_ignore_ascii_case("utf-8")
            && !enc.trim().eq_ignore_ascii_case("utf8")
        {
            warnings.push(format!("REQ_BASIC_AUTH_ENCODING={enc}: credentials are sent as UTF-8 (the same bytes as latin1 for ASCII)"));
        }
    }
    if let Some(n) = var("REQ_RETRY_TOTAL") {
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("REQ_RETRY_TOTAL {n:?} is not a number of retries"))?;
        args.push(format!("--reload-http-retries={n}"));
    }
    for (name, flag) in [
        ("REQ_RETRY_BACKOFF_FACTOR", "--reload-http-backoff"),
        ("REQ_TIMEOUT", "--reload-http-timeout"),
    ] {
        if let Some(v) = var(name) {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("{name} {v:?} is not a number of seconds"))?;
            args.push(format!("{flag}={}ms", (secs * 1000.0).round() as u64));
        }
    }
    if is_true(var("REQ_SKIP_TLS_VERIFY")) {
        if url
            .as_deref()
            .is_some_and(|u| u.trim().starts_with("https:"))
        {
            return Err("REQ_SKIP_TLS_VERIFY=true is not supported: the reload call verifies TLS (use http:// to the app in the pod, or a certificate the system roots trust)".into());
        }
        warnings.push("REQ_SKIP_TLS_VERIFY: ignored, REQ_URL is not https".into());
    }
    if is_true(var("SKIP_TLS_VERIFY")) {
        // In a pod the service account's CA is the right one, so the spec works as it is.
        warnings.push("SKIP_TLS_VERIFY is ignored: the API server's certificate is verified (with the service account's CA in a pod; a KUBECONFIG with insecure-skip-tls-verify is the explicit way out)".into());
    }
    if let Some(script) = var("SCRIPT") {
        args.push(format!("--script={script}"));
    }
    if is_true(var("UNIQUE_FILENAMES")) {
        args.push("--unique-filenames".into());
    }
    // k8s-sidecar's files get the umask's mode (0644) unless DEFAULT_FILE_MODE is set.
    let mode = var("DEFAULT_FILE_MODE").unwrap_or_else(|| "0644".into());
    args.push(format!("--file-mode={}", mode.trim()));
    args.push(format!("--secret-file-mode={}", mode.trim()));
    let level = var("LOG_LEVEL").map(|l| l.trim().to_ascii_uppercase());
    let level = match level.as_deref() {
        None | Some("INFO") => "info",
        Some("DEBUG") => "debug",
        Some("WARN" | "WARNING") => "warn",
        Some("ERROR" | "CRITICAL") => "error",
        Some(other) => {
            return Err(format!(
                "LOG_LEVEL {other:?}: expected DEBUG, INFO, WARN, ERROR or CRITICAL"
            ));
        }
    };
    args.push(format!("--log-level={level}"));
    // k8s-sidecar logs JSON unless told LOGFMT.
    match var("LOG_FORMAT")
        .map(|f| f.trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("JSON") => args.push("--log-format=json".into()),
        Some("LOGFMT") => args.push("--log-format=text".into()),
        Some(other) => return Err(format!("LOG_FORMAT {other:?}: expected JSON or LOGFMT")),
    }
    if var("LOG_TZ").is_some_and(|tz| tz.trim().eq_ignore_ascii_case("LOCAL")) {
        warnings.push("LOG_TZ=LOCAL: log times are UTC".into());
    }
    match var("HEALTH_PORT") {
        Some(port) => args.push(format!("--http-addr=:{}", port.trim())),
        // k8s-sidecar's default, which its containers of one pod share: the first gets it.
        None => args.extend(["--http-addr=:8080".into(), "--http-addr-taken-ok".into()]),
    }
    for (name, why) in IGNORED {
        if var(name).is_some() {
            warnings.push(format!("{name} is ignored: {why}"));
        }
    }
    args.extend(warnings.into_iter().map(|w| format!("--env-warning={w}")));
    Ok(args)
}

#[cfg(test)]
mod tests {
    use crate::inpod::env::{args_from_env, env_of as env};

    fn args(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
        args_from_env(env(pairs)).expect("k8s-sidecar's variables pick collect")
    }

    const GRAFANA: [(&str, &str); 2] = [
        ("LABEL", "grafana_dashboard"),
        ("FOLDER", "/tmp/dashboards"),
    ];

    #[test]
    fn label_and_folder_pick_collect_with_k8s_sidecars_defaults() {
        assert_eq!(
            args_from_env(env(&[("LABEL", "x")])),
            None,
            "FOLDER is needed too"
        );
        assert_eq!(
            args(&GRAFANA).unwrap(),
            [
                "collect",
                "--label=grafana_dashboard",
                "--dir=/tmp/dashboards",
                "--file-mode=0644",
                "--secret-file-mode=0644",
                "--log-level=info",
                "--log-format=json",
                "--http-addr=:8080",
                "--http-addr-taken-ok",
            ]
        );
    }

    #[test]
    fn the_grafana_charts_variables() {
        let mut e = GRAFANA.to_vec();
        e.extend([
            ("LABEL_VALUE", "1"),
            ("FOLDER_ANNOTATION", "grafana_folder"),
            ("RESOURCE", "both"),
            ("NAMESPACE", "monitoring, team-a"),
            ("METHOD", "WATCH"),
            (
                "REQ_URL",
                "http://localhost:3000/api/admin/provisioning/dashboards/reload",
            ),
            ("REQ_METHOD", "POST"),
            ("REQ_USERNAME", "admin"),
            ("REQ_PASSWORD", "pw"),
            ("REQ_RETRY_TOTAL", "3"),
            ("REQ_RETRY_BACKOFF_FACTOR", "1.1"),
            ("REQ_TIMEOUT", "10"),
            ("REQ_SKIP_INIT", "true"),
            ("UNIQUE_FILENAMES", "true"),
            ("DEFAULT_FILE_MODE", "440"),
            ("LOG_LEVEL", "DEBUG"),
            ("LOG_FORMAT", "LOGFMT"),
            ("HEALTH_PORT", "9000"),
            ("SCRIPT", "/scripts/after.sh"),
        ]);
        let a = args(&e).unwrap();
        for want in [
            "--label=grafana_dashboard=1",
            "--folder-annotation=grafana_folder",
            "--resource=both",
            "--namespace=monitoring",
            "--namespace=team-a",
            "--reload-http=http://localhost:3000/api/admin/provisioning/dashboards/reload",
            "--reload-http-method=POST",
            "--reload-http-username=admin",
            "--reload-http-password=pw",
            "--reload-http-retries=3",
            "--reload-http-backoff=1100ms",
            "--reload-http-timeout=10000ms",
            "--unique-filenames",
            "--file-mode=440",
            "--secret-file-mode=440",
            "--log-level=debug",
            "--log-format=text",
            "--http-addr=:9000",
            "--script=/scripts/after.sh",
        ] {
            assert!(a.contains(&want.to_owned()), "{want} not in {a:?}");
        }
        assert!(
            !a.iter()
                .any(|x| x.starts_with("--once") || x.starts_with("--env-warning")),
            "{a:?}"
        );
        assert!(crate::cli::parse_cli(vec!["kube-reloader".into()], env(&e)).is_ok());
    }

    #[test]
    fn methods_namespaces_and_payloads() {
        let with = |extra: &[(&str, &str)]| {
            let mut e = GRAFANA.to_vec();
            e.extend_from_slice(extra);
            args(&e).unwrap()
        };
        assert!(with(&[("METHOD", "LIST")]).contains(&"--once".to_owned()));
        let a = with(&[("METHOD", "SLEEP"), ("SLEEP_TIME", "30")]);
        let warnings: Vec<_> = a
            .iter()
            .filter(|x| x.starts_with("--env-warning="))
            .collect();
        assert_eq!(warnings.len(), 2, "{a:?}");
        assert!(with(&[("NAMESPACE", "ALL")]).contains(&"--all-namespaces".to_owned()));
        let url = ("REQ_URL", "http://x/");
        assert!(
            with(&[url]).contains(&"--reload-http-method=GET".to_owned()),
            "k8s-sidecar's default"
        );
        let a = with(&[url, ("REQ_METHOD", "post"), ("REQ_PAYLOAD", r#"{"a": 1}"#)]);
        assert!(
            a.contains(&r#"--reload-http-json={"a": 1}"#.to_owned()),
            "{a:?}"
        );
        let a = with(&[url, ("REQ_METHOD", "POST"), ("REQ_PAYLOAD", "reload")]);
        assert!(
            a.contains(&r#"--reload-http-json="reload""#.to_owned()),
            "not JSON: a JSON string"
        );
        let a = with(&[url, ("REQ_PAYLOAD", "x")]);
        assert!(
            a.iter().any(|x| x.contains("REQ_PAYLOAD is sent only")),
            "{a:?}"
        );
        let a = with(&[url, ("REQ_SKIP_TLS_VERIFY", "true")]);
        assert!(
            a.iter().any(|x| x.contains("REQ_SKIP_TLS_VERIFY: ignored")),
            "{a:?}"
        );
    }

    #[test]
    fn refusals_name_the_variable() {
        let refused = |extra: &[(&str, &str)], want: &str| {
            let mut e = GRAFANA.to_vec();
            e.extend_from_slice(extra);
            let err = args(&e).unwrap_err();
            assert!(err.starts_with(want), "{err}");
        };
        refused(&[("RESOURCE", "pods")], "RESOURCE must be");
        refused(
            &[("RESOURCE_NAME", "secret/x")],
            "RESOURCE_NAME is not supported",
        );
        refused(
            &[("REQ_URL", "https://x/"), ("REQ_SKIP_TLS_VERIFY", "true")],
            "REQ_SKIP_TLS_VERIFY",
        );
        refused(&[("LOG_LEVEL", "LOUD")], "LOG_LEVEL");
        refused(&[("LOG_FORMAT", "XML")], "LOG_FORMAT");
        refused(&[("REQ_RETRY_TOTAL", "many")], "REQ_RETRY_TOTAL");
        refused(&[("REQ_TIMEOUT", "-1")], "REQ_TIMEOUT");
    }
}
