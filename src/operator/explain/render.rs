//! The report as text: one block per workload, or a table of them all.

use std::fmt::Write;

use super::report::{ConfigReport, Report, WorkloadReport};

fn short(hash: Option<&str>) -> &str {
    hash.map_or("-", |h| &h[..h.len().min(12)])
}

fn state(w: &WorkloadReport) -> &'static str {
    match w.up_to_date {
        true => "up to date",
        false => "OUT OF DATE",
    }
}

fn reloads(w: &WorkloadReport) -> usize {
    w.configs
        .iter()
        .filter(|c| c.decision == "reload" && c.exists)
        .count()
}

/// Every workload of the namespace, a line each, then their warnings.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "namespace {} (strategy {})", r.namespace, r.strategy);
    if r.workloads.is_empty() {
        let _ = writeln!(out, "no workloads");
        return out;
    }
    let rows: Vec<[String; 5]> = r
        .workloads
        .iter()
        .map(|w| {
            let skipped = w.configs.iter().filter(|c| c.decision == "skip").count();
            [
                format!("{}/{}", w.kind, w.name),
                reloads(w).to_string(),
                skipped.to_string(),
                state(w).to_owned(),
                w.warnings.len().to_string(),
            ]
        })
        .collect();
    let head = ["WORKLOAD", "RELOADS ON", "SKIPS", "STATE", "WARNINGS"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    for row in std::iter::once(head.map(String::from)).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for w in r.workloads.iter().filter(|w| !w.warnings.is_empty()) {
        let _ = writeln!(out, "\n{}/{}:", w.kind, w.name);
        for warning in &w.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    let _ = writeln!(
        out,
        "\nkube-reloader explain -n {} KIND/NAME says why, config by config",
        r.namespace
    );
    out
}

fn config_block(out: &mut String, c: &ConfigReport) {
    let exists = if c.exists { "" } else { " (does not exist)" };
    let used = if c.referenced {
        ""
    } else {
        " (not used by the pod template)"
    };
    let _ = writeln!(out, "  {} {}{exists}{used}", c.kind, c.name);
    let verdict = match c.decision {
        "reload" => "RELOADS",
        _ => "does not reload",
    };
    let _ = writeln!(out, "    {verdict}: {} — {}", c.rule, c.detail);
    if let Some(s) = c.suspect {
        let _ = writeln!(out, "    likely a mistake ({s})");
    }
    if c.decision == "reload" && c.exists {
        let _ = writeln!(
            out,
            "    hash {}  marker {}  {}",
            short(c.hash.as_deref()),
            short(c.marker.as_deref()),
            c.state
        );
    }
    let _ = writeln!(out, "    next change: {}", c.next_change);
}

/// One workload in full.
pub fn workload(r: &Report, w: &WorkloadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}/{}: {} (strategy {})",
        w.kind,
        r.namespace,
        w.name,
        state(w),
        r.strategy
    );
    if w.containers.is_empty() {
        let _ = writeln!(out, "  no container uses a ConfigMap or Secret");
    }
    for c in &w.containers {
        let init = if c.init { " (init)" } else { "" };
        let _ = writeln!(out, "  container {}{init}:", c.name);
        for u in &c.uses {
            let _ = writeln!(out, "    {} {} via {}", u.kind, u.name, u.how);
        }
    }
    let t = &w.timing;
    let own = match t.from_annotations.is_empty() {
        true => "the flags".to_owned(),
        false => t.from_annotations.join(", "),
    };
    let _ = writeln!(
        out,
        "  timing: window {}, max delay {}, min interval {} (from {own})",
        t.coalesce_window, t.coalesce_max_delay, t.min_reload_interval
    );
    let _ = writeln!(out);
    for c in &w.configs {
        config_block(&mut out, c);
    }
    if !w.warnings.is_empty() {
        let _ = writeln!(out);
    }
    for warning in &w.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}
