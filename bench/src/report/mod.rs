//! Results: what each operator measured (`results.json`), the rows derived from them (one
//! column per operator, their ratio, the target), as markdown and as the plot (`plot.rs`).

mod plot;

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

pub use plot::{png, svg};

use crate::audit::CATEGORIES;

#[derive(Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// The operator's API requests per reload, by category (`audit::CATEGORIES`); `total`
/// leaves watches out (a watch is logged when it ends, whenever that is).
#[derive(Default, Serialize)]
pub struct ApiCost {
    pub reloads: usize,
    pub total: f64,
    pub per_reload: BTreeMap<String, f64>,
}

impl ApiCost {
    pub fn per_reload(counts: BTreeMap<&'static str, u64>, reloads: usize) -> ApiCost {
        let r = reloads.max(1) as f64;
        let per_reload: BTreeMap<String, f64> = CATEGORIES
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    counts.get(c).copied().unwrap_or(0) as f64 / r,
                )
            })
            .collect();
        let total = per_reload
            .iter()
            .filter(|(k, _)| k.as_str() != "WATCH")
            .map(|(_, v)| v)
            .sum();
        ApiCost {
            reloads,
            total,
            per_reload,
        }
    }
}

/// S2 at one size.
#[derive(Serialize)]
pub struct MemoryPoint {
    pub configs: usize,
    pub workloads: usize,
    pub ready_s: f64,
    pub rss_mib: f64,
    pub peak_mib: f64,
}

impl MemoryPoint {
    fn objects(&self) -> usize {
        self.configs + self.workloads
    }
}

/// Bytes of RSS per tracked object (configs and workloads) from `a` to the larger `b`.
fn marginal_bytes(a: &MemoryPoint, b: &MemoryPoint) -> f64 {
    let objects = b.objects().saturating_sub(a.objects()).max(1) as f64;
    (b.rss_mib - a.rss_mib) * 1024.0 * 1024.0 / objects
}

/// S3 without pods at one size: how many of the Deployments were written in how long.
#[derive(Serialize)]
pub struct FanoutPoint {
    pub deployments: usize,
    pub written: usize,
    /// To the last write; the cap when not all were written.
    pub s: f64,
    pub writes_per_s: f64,
}

impl FanoutPoint {
    pub fn new(deployments: usize, written: usize, s: f64) -> FanoutPoint {
        FanoutPoint {
            deployments,
            written,
            s,
            writes_per_s: written as f64 / s.max(1e-6),
        }
    }
}

/// The bench's own writes of S3's patches at one size: what the API server allows.
#[derive(Serialize)]
pub struct CeilingPoint {
    pub deployments: usize,
    pub s: f64,
    pub writes_per_s: f64,
    /// Patches the API server turned away first (throttled) and that were sent again.
    pub retried: usize,
}

/// What one operator measured.
#[derive(Default, Serialize)]
pub struct Results {
    pub label: String,
    pub s1_latency_ms: Option<Percentiles>,
    /// From the update to the rollout complete (every pod of the new ReplicaSet Ready).
    pub s1_rollout_ms: Option<Percentiles>,
    /// Pods created ÷ pods the updates had to replace.
    pub s1_pods_per_replica: Option<f64>,
    /// During S1.
    pub api: Option<ApiCost>,
    /// S2 at each size, smallest first; `s2_headline` is the size of the headline rows.
    pub s2: Vec<MemoryPoint>,
    pub s2_headline: usize,
    pub s3_fanout_s: Option<f64>,
    /// From the update to the last of the Deployments' rollouts complete.
    pub s3_rollouts_s: Option<f64>,
    /// Pods created ÷ pods the change had to replace.
    pub s3_pods_per_replica: Option<f64>,
    /// S3 with `--max-concurrent-rollouts`: all rolled out, the most at once, the bound.
    pub s3w_rollouts_s: Option<f64>,
    pub s3w_most_rolling: Option<f64>,
    pub s3w_bound: Option<f64>,
    /// S3 without pods at each size.
    pub s3_growth: Vec<FanoutPoint>,
    pub s4_burst_rollouts: Option<i64>,
    pub s4_flap_rollouts: Option<i64>,
    /// CPU seconds per minute, idle at S2's headline size after the quiet period.
    pub s5_idle_cpu_s_per_min: Option<f64>,
}

/// A whole run: the ceiling (the plane's), one `Results` per operator (ours first).
#[derive(Serialize)]
pub struct Report {
    pub meta: serde_json::Value,
    pub ceiling: Vec<CeilingPoint>,
    pub operators: Vec<Results>,
}

/// How a row's target is read.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Bound {
    AtMost,
    AtLeast,
    Exactly,
}

impl Bound {
    fn met(self, v: f64, t: f64) -> bool {
        match self {
            Bound::AtMost => v <= t,
            Bound::AtLeast => v >= t,
            Bound::Exactly => (v - t).abs() < 1e-9,
        }
    }
}

/// One measure: a value per operator, the target and how it bounds, the unit, and the
/// scale it shares in the plot with the rows it compares with.
pub struct Row {
    pub label: String,
    pub values: Vec<Option<f64>>,
    pub target: Option<(f64, Bound)>,
    pub unit: &'static str,
    pub scale: String,
}

impl Row {
    pub fn missed(&self, v: f64) -> bool {
        self.target.is_some_and(|(t, b)| !b.met(v, t))
    }
}

/// `1234` as `1,234`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn s2_at(r: &Results, configs: usize) -> Option<&MemoryPoint> {
    r.s2.iter().find(|p| p.configs == configs)
}

fn s3_at(r: &Results, deployments: usize) -> Option<&FanoutPoint> {
    r.s3_growth.iter().find(|p| p.deployments == deployments)
}

/// Targets by S2 size: after sync and peak.
fn s2_targets(configs: usize) -> (Option<f64>, Option<f64>) {
    match configs {
        20_000 => (Some(32.0), Some(64.0)),
        200_000 => (Some(64.0), None),
        _ => (None, None),
    }
}

pub fn rows(report: &Report) -> Vec<Row> {
    use Bound::{AtLeast, AtMost, Exactly};
    let ops = &report.operators;
    let mut out = Vec::new();
    let mut add = |label: String,
                   f: &dyn Fn(&Results) -> Option<f64>,
                   target: Option<(f64, Bound)>,
                   unit: &'static str,
                   scale: &str| {
        out.push(Row {
            label,
            values: ops.iter().map(f).collect(),
            target,
            unit,
            scale: scale.to_owned(),
        });
    };
    type Pick = fn(&Percentiles) -> f64;
    let pct: [(&str, Pick); 4] = [
        ("p50", |p| p.p50),
        ("p95", |p| p.p95),
        ("p99", |p| p.p99),
        ("max", |p| p.max),
    ];
    for (name, pick) in pct {
        let target = (name == "p99").then_some((50.0, AtMost));
        let f = move |r: &Results| r.s1_latency_ms.as_ref().map(pick);
        add(format!("S1 latency {name}"), &f, target, "ms", "latency");
    }
    for (name, pick) in pct {
        let f = move |r: &Results| r.s1_rollout_ms.as_ref().map(pick);
        add(
            format!("S1 rollout complete {name}"),
            &f,
            None,
            "ms",
            "rollout",
        );
    }
    add(
        "S1 pods created per pod replaced".into(),
        &|r| r.s1_pods_per_replica,
        Some((1.0, Exactly)),
        "",
        "ratio",
    );
    add(
        "API requests per reload (S1, watches left out)".into(),
        &|r| r.api.as_ref().map(|a| a.total),
        None,
        "",
        "api",
    );
    for c in CATEGORIES {
        let f = move |r: &Results| r.api.as_ref().and_then(|a| a.per_reload.get(c).copied());
        add(format!("  API per reload: {c}"), &f, None, "", "api");
    }
    let (rss_t, peak_t) = s2_targets(ops.first().map_or(0, |r| r.s2_headline));
    add(
        "S2 RSS after sync".into(),
        &|r| s2_at(r, r.s2_headline).map(|p| p.rss_mib),
        rss_t.map(|t| (t, AtMost)),
        "MiB",
        "mem",
    );
    add(
        "S2 RSS peak".into(),
        &|r| s2_at(r, r.s2_headline).map(|p| p.peak_mib),
        peak_t.map(|t| (t, AtMost)),
        "MiB",
        "mem",
    );
    add(
        "S2 time to ready".into(),
        &|r| s2_at(r, r.s2_headline).map(|p| p.ready_s),
        None,
        "s",
        "ready",
    );
    let sizes: Vec<usize> = ops
        .first()
        .map(|r| r.s2.iter().map(|p| p.configs).collect())
        .unwrap_or_default();
    for (i, &c) in sizes.iter().enumerate() {
        let (rss_t, _) = s2_targets(c);
        let n = thousands(c);
        add(
            format!("S2 at {n} configs: RSS after sync"),
            &move |r| s2_at(r, c).map(|p| p.rss_mib),
            rss_t.map(|t| (t, AtMost)),
            "MiB",
            "growth-mem",
        );
        add(
            format!("S2 at {n} configs: RSS peak"),
            &move |r| s2_at(r, c).map(|p| p.peak_mib),
            None,
            "MiB",
            "growth-mem",
        );
        add(
            format!("S2 at {n} configs: time to ready"),
            &move |r| s2_at(r, c).map(|p| p.ready_s),
            None,
            "s",
            "ready",
        );
        if let Some(&prev) = i.checked_sub(1).and_then(|j| sizes.get(j)) {
            let f = move |r: &Results| {
                let a = s2_at(r, prev)?;
                Some(marginal_bytes(a, s2_at(r, c)?))
            };
            add(
                format!("S2 bytes per object, {} → {n}", thousands(prev)),
                &f,
                Some((200.0, AtMost)),
                "B",
                "marginal",
            );
        }
    }
    add(
        "S3 fan-out (all written)".into(),
        &|r| r.s3_fanout_s,
        Some((5.0, AtMost)),
        "s",
        "fanout",
    );
    add(
        "S3 fan-out (all rolled out)".into(),
        &|r| r.s3_rollouts_s,
        None,
        "s",
        "fanout-rollout",
    );
    add(
        "S3 pods created per pod replaced".into(),
        &|r| r.s3_pods_per_replica,
        Some((1.0, Exactly)),
        "",
        "ratio",
    );
    add(
        "S3 with waves (all rolled out)".into(),
        &|r| r.s3w_rollouts_s,
        None,
        "s",
        "fanout-rollout",
    );
    let bound = ops.first().and_then(|r| r.s3w_bound);
    add(
        "S3 with waves, most rolling at once".into(),
        &|r| r.s3w_most_rolling,
        bound.map(|n| (n, AtMost)),
        "",
        "waves",
    );
    for c in &report.ceiling {
        let n = c.deployments;
        let label = thousands(n);
        add(
            format!("S3 at {label} (no pods): to the last write"),
            &move |r| s3_at(r, n).map(|p| p.s),
            None,
            "s",
            "growth-fanout",
        );
        add(
            format!("S3 at {label} (no pods): writes per second"),
            &move |r| s3_at(r, n).map(|p| p.writes_per_s),
            None,
            "/s",
            "growth-rate",
        );
        let ceiling = c.writes_per_s;
        add(
            format!("S3 at {label}: fraction of the ceiling ({ceiling:.0}/s)"),
            &move |r| s3_at(r, n).map(|p| p.writes_per_s / ceiling),
            Some((0.8, AtLeast)),
            "",
            "fraction",
        );
    }
    add(
        "S4 burst rollouts".into(),
        &|r| r.s4_burst_rollouts.map(|v| v as f64),
        Some((1.0, Exactly)),
        "",
        "count",
    );
    add(
        "S4 flap rollouts".into(),
        &|r| r.s4_flap_rollouts.map(|v| v as f64),
        None,
        "",
        "flap",
    );
    add(
        "S5 idle CPU per minute".into(),
        &|r| r.s5_idle_cpu_s_per_min,
        Some((0.02, AtMost)),
        "s",
        "idle",
    );
    out
}

fn cell(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "not run".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0} {unit}"),
        Some(v) if v.abs() >= 0.1 || v == 0.0 => format!("{v:.2} {unit}"),
        Some(v) => format!("{v:.3} {unit}"),
    }
    .trim_end()
    .to_owned()
}

fn target_cell(target: Option<(f64, Bound)>, unit: &str) -> String {
    match target {
        Some((t, Bound::Exactly)) => format!("exactly {t}"),
        Some((t, Bound::AtMost)) => format!("≤ {t} {unit}").trim_end().to_owned(),
        Some((t, Bound::AtLeast)) => format!("≥ {t} {unit}").trim_end().to_owned(),
        None => "–".into(),
    }
}

/// The results table: a column per operator, with two also the ratio (the other's value
/// ÷ ours), the ceiling table, and the S3 points left unfinished.
pub fn markdown(report: &Report) -> String {
    let ops = &report.operators;
    let mut out = String::from("| Measure |");
    for r in ops {
        let _ = write!(out, " {} |", r.label);
    }
    if ops.len() == 2 {
        let _ = write!(out, " {} ÷ {} |", ops[1].label, ops[0].label);
    }
    out.push_str(" Target |\n|---|");
    out.push_str(&"---|".repeat(ops.len() + usize::from(ops.len() == 2) + 1));
    out.push('\n');
    for row in rows(report) {
        let _ = write!(out, "| {} |", row.label);
        for v in &row.values {
            let mark = match v {
                Some(v) if row.missed(*v) => " ✗",
                _ => "",
            };
            let _ = write!(out, " {}{mark} |", cell(*v, row.unit));
        }
        if let [Some(a), Some(b)] = row.values[..] {
            let ratio = if a != 0.0 {
                format!("{:.2}×", b / a)
            } else {
                "–".into()
            };
            let _ = write!(out, " {ratio} |");
        } else if ops.len() == 2 {
            out.push_str(" – |");
        }
        let _ = writeln!(out, " {} |", target_cell(row.target, row.unit));
    }
    if !report.ceiling.is_empty() {
        out.push_str(
            "\nThe write ceiling (the bench's own patches, all sent at once, as kube-reloader \
             sends them with `--reload-rate=0`):\n\n| Deployments | Time | Writes per second | \
             Retried (throttled) |\n|---|---|---|---|\n",
        );
        for c in &report.ceiling {
            let _ = writeln!(
                out,
                "| {} | {:.2} s | {:.0} | {} |",
                thousands(c.deployments),
                c.s,
                c.writes_per_s,
                c.retried
            );
        }
    }
    for r in ops {
        for p in r.s3_growth.iter().filter(|p| p.written < p.deployments) {
            let _ = writeln!(
                out,
                "\n{}: S3 at {} wrote {} Deployments in the {:.0} s allowed, not all.",
                r.label,
                thousands(p.deployments),
                thousands(p.written),
                p.s
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ops: Vec<Results>) -> Report {
        Report {
            meta: serde_json::Value::Null,
            ceiling: vec![CeilingPoint {
                deployments: 100,
                s: 1.0,
                writes_per_s: 100.0,
                retried: 0,
            }],
            operators: ops,
        }
    }

    fn point(configs: usize, rss_mib: f64) -> MemoryPoint {
        MemoryPoint {
            configs,
            workloads: configs / 20,
            ready_s: 1.0,
            rss_mib,
            peak_mib: rss_mib,
        }
    }

    #[test]
    fn exact_targets_read_as_exactly_and_missed_ones_are_marked() {
        let r = Results {
            label: "kube-reloader".into(),
            s3_pods_per_replica: Some(1.5),
            s4_burst_rollouts: Some(1),
            ..Default::default()
        };
        let md = markdown(&report(vec![r]));
        assert!(
            md.contains("| S3 pods created per pod replaced | 1.50 ✗ | exactly 1 |"),
            "{md}"
        );
        assert!(
            md.contains("| S4 burst rollouts | 1.00 | exactly 1 |"),
            "{md}"
        );
        assert!(
            md.contains("| S1 rollout complete p99 | not run | – |"),
            "{md}"
        );
    }

    #[test]
    fn two_operators_get_a_ratio_column() {
        let ours = Results {
            label: "kube-reloader".into(),
            s1_latency_ms: Some(Percentiles::of(vec![10.0])),
            ..Default::default()
        };
        let theirs = Results {
            label: "reloader".into(),
            s1_latency_ms: Some(Percentiles::of(vec![640.0])),
            ..Default::default()
        };
        let md = markdown(&report(vec![ours, theirs]));
        assert!(
            md.starts_with("| Measure | kube-reloader | reloader | reloader ÷ kube-reloader | Target |\n|---|---|---|---|---|\n"),
            "{md}"
        );
        assert!(
            md.contains("| S1 latency p99 | 10.00 ms | 640 ms ✗ | 64.00× | ≤ 50 ms |"),
            "{md}"
        );
    }

    #[test]
    fn growth_rows_give_the_marginal_bytes_and_the_ceiling_fraction() {
        let r = Results {
            label: "kube-reloader".into(),
            s2: vec![point(2_000, 10.0), point(20_000, 13.0)],
            s2_headline: 20_000,
            s3_growth: vec![FanoutPoint::new(100, 100, 2.0)],
            ..Default::default()
        };
        let rep = report(vec![r]);
        let rows = rows(&rep);
        let find = |l: &str| rows.iter().find(|r| r.label == l).unwrap().values[0];
        // 3 MiB over 18,900 more objects.
        let slope = find("S2 bytes per object, 2,000 → 20,000").unwrap();
        assert!((slope - 3.0 * 1048576.0 / 18_900.0).abs() < 1e-6, "{slope}");
        assert_eq!(find("S2 RSS after sync"), Some(13.0));
        let fraction = find("S3 at 100: fraction of the ceiling (100/s)").unwrap();
        assert!((fraction - 0.5).abs() < 1e-9, "{fraction}");
        let md = markdown(&rep);
        assert!(md.contains("| 100 | 1.00 s | 100 | 0 |"), "{md}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }

    #[test]
    fn api_cost_per_reload_leaves_watches_out_of_the_total() {
        let counts = BTreeMap::from([("PATCH", 10), ("POST events", 10), ("WATCH", 7)]);
        let c = ApiCost::per_reload(counts, 10);
        assert_eq!(c.total, 2.0);
        assert_eq!(c.per_reload["WATCH"], 0.7);
        assert_eq!(c.per_reload["GET"], 0.0);
    }
}
