//! Results: `results.json`, a markdown table beside it, and `results.png` (bars against the
//! targets, drawn as SVG and rasterised with resvg).

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

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

#[derive(Serialize)]
pub struct Rss {
    pub steady: f64,
    pub peak: f64,
}

#[derive(Default, Serialize)]
pub struct Results {
    pub s1_latency_ms: Option<Percentiles>,
    /// From the update to the rollout complete (every pod of the new ReplicaSet Ready).
    pub s1_rollout_ms: Option<Percentiles>,
    /// Pods created ÷ pods the updates had to replace.
    pub s1_pods_per_replica: Option<f64>,
    pub s2_rss_mib: Option<Rss>,
    pub s2_ready_s: Option<f64>,
    pub s3_fanout_s: Option<f64>,
    /// From the update to the last of the Deployments' rollouts complete.
    pub s3_rollouts_s: Option<f64>,
    /// Pods created ÷ pods the change had to replace.
    pub s3_pods_per_replica: Option<f64>,
    /// S3 with `--max-concurrent-rollouts`: all rolled out, the most at once, the bound.
    pub s3w_rollouts_s: Option<f64>,
    pub s3w_most_rolling: Option<f64>,
    pub s3w_bound: Option<f64>,
    pub s4_burst_rollouts: Option<i64>,
    pub s4_flap_rollouts: Option<i64>,
    pub s5_idle_cpu_s: Option<f64>,
    pub api_requests_per_reload: Option<f64>,
    pub meta: serde_json::Value,
}

/// How a row's target is read: an upper bound, or a value to hit exactly.
#[derive(Clone, Copy, PartialEq)]
enum Bound {
    AtMost,
    Exactly,
}

/// One measure: label, value, target and how it bounds, unit, and the scale it shares
/// with the rows it compares with in the plot.
struct Row {
    label: &'static str,
    value: Option<f64>,
    target: Option<(f64, Bound)>,
    unit: &'static str,
    scale: &'static str,
}

fn row(
    label: &'static str,
    value: Option<f64>,
    target: Option<(f64, Bound)>,
    unit: &'static str,
    scale: &'static str,
) -> Row {
    Row {
        label,
        value,
        target,
        unit,
        scale,
    }
}

/// p50, p95, p99 and max of `p` as four rows named `labels`; `p99` is the p99's target.
fn percentile_rows(
    labels: [&'static str; 4],
    p: Option<&Percentiles>,
    p99: Option<(f64, Bound)>,
    scale: &'static str,
) -> [Row; 4] {
    let [l50, l95, l99, lmax] = labels;
    [
        row(l50, p.map(|l| l.p50), None, "ms", scale),
        row(l95, p.map(|l| l.p95), None, "ms", scale),
        row(l99, p.map(|l| l.p99), p99, "ms", scale),
        row(lmax, p.map(|l| l.max), None, "ms", scale),
    ]
}

fn rows(r: &Results) -> Vec<Row> {
    use Bound::{AtMost, Exactly};
    let rss = r.s2_rss_mib.as_ref();
    let latency = percentile_rows(
        [
            "S1 latency p50",
            "S1 latency p95",
            "S1 latency p99",
            "S1 latency max",
        ],
        r.s1_latency_ms.as_ref(),
        Some((50.0, AtMost)),
        "latency",
    );
    let rollout = percentile_rows(
        [
            "S1 rollout complete p50",
            "S1 rollout complete p95",
            "S1 rollout complete p99",
            "S1 rollout complete max",
        ],
        r.s1_rollout_ms.as_ref(),
        None,
        "rollout",
    );
    let rest = vec![
        row(
            "S1 pods created per pod replaced",
            r.s1_pods_per_replica,
            Some((1.0, Exactly)),
            "",
            "ratio",
        ),
        row(
            "S2 RSS after sync",
            rss.map(|m| m.steady),
            Some((32.0, AtMost)),
            "MiB",
            "mem",
        ),
        row(
            "S2 RSS peak",
            rss.map(|m| m.peak),
            Some((64.0, AtMost)),
            "MiB",
            "mem",
        ),
        row("S2 time to ready", r.s2_ready_s, None, "s", "seconds"),
        row(
            "S3 fan-out (all written)",
            r.s3_fanout_s,
            Some((5.0, AtMost)),
            "s",
            "seconds",
        ),
        row(
            "S3 fan-out (all rolled out)",
            r.s3_rollouts_s,
            None,
            "s",
            "fanout-rollout",
        ),
        row(
            "S3 pods created per pod replaced",
            r.s3_pods_per_replica,
            Some((1.0, Exactly)),
            "",
            "ratio",
        ),
        row(
            "S3 with waves (all rolled out)",
            r.s3w_rollouts_s,
            None,
            "s",
            "fanout-rollout",
        ),
        row(
            "S3 with waves, most rolling at once",
            r.s3w_most_rolling,
            r.s3w_bound.map(|n| (n, AtMost)),
            "",
            "count",
        ),
        row(
            "S4 burst rollouts",
            r.s4_burst_rollouts.map(|v| v as f64),
            Some((1.0, Exactly)),
            "",
            "count",
        ),
        row(
            "S4 flap rollouts",
            r.s4_flap_rollouts.map(|v| v as f64),
            None,
            "",
            "count",
        ),
        row(
            "S5 idle CPU",
            r.s5_idle_cpu_s,
            Some((0.5, AtMost)),
            "s",
            "seconds",
        ),
        row(
            "API requests per reload",
            r.api_requests_per_reload,
            None,
            "",
            "count",
        ),
    ];
    latency.into_iter().chain(rollout).chain(rest).collect()
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::from("| Measure | Result | Target |\n|---|---|---|\n");
    for row in rows(r) {
        let unit = row.unit;
        let v = row
            .value
            .map_or("not run".into(), |v| format!("{v:.2} {unit}"));
        let t = match row.target {
            Some((t, Bound::Exactly)) => format!("exactly {t}"),
            Some((t, Bound::AtMost)) => format!("≤ {t} {unit}"),
            None => "–".into(),
        };
        let _ = writeln!(out, "| {} | {v} | {t} |", row.label);
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

/// Horizontal bars, one per measure, each scaled to its own target (or value): the bar is
/// green within the target, red beyond it; the target is the dashed line.
pub fn svg(r: &Results, title: &str) -> String {
    let rows: Vec<Row> = rows(r).into_iter().filter(|r| r.value.is_some()).collect();
    let (w, row_h, top, left, bar_w) = (1000.0, 34.0, 60.0, 290.0, 500.0);
    let h = top + row_h * rows.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="DejaVu Sans, sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="32" font-size="20" font-weight="bold">{}</text>
"#,
        esc(title)
    );
    // Rows of one scale share it, so p50 and p99 compare at a glance.
    let scale_of = |scale: &str| {
        let of_scale = rows.iter().filter(|r| r.scale == scale);
        of_scale
            .flat_map(|r| [r.value.unwrap_or(0.0), r.target.map_or(0.0, |t| t.0)])
            .fold(1e-9, f64::max)
            * 1.15
    };
    for (i, row) in rows.iter().enumerate() {
        let (v, unit) = (row.value.unwrap_or(0.0), row.unit);
        let y = top + row_h * i as f64;
        let scale = scale_of(row.scale);
        let len = (v / scale * bar_w).max(1.0);
        let over = row.target.is_some_and(|(t, bound)| match bound {
            Bound::Exactly => (v - t).abs() > 1e-9,
            Bound::AtMost => v > t,
        });
        let color = match (row.target, over) {
            (None, _) => "#6b8fd6",
            (Some(_), false) => "#3aa655",
            (Some(_), true) => "#d64545",
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="14" text-anchor="end">{}</text>
<rect x="{left}" y="{}" width="{len:.1}" height="{}" fill="{color}"/>
<text x="{:.1}" y="{}" font-size="13">{v:.2} {unit}{}</text>"#,
            left - 10.0,
            y + 20.0,
            esc(row.label),
            y + 6.0,
            row_h - 12.0,
            left + len + 8.0,
            y + 20.0,
            row.target
                .map_or(String::new(), |(t, _)| format!("  (target {t} {unit})")),
        );
        if let Some((t, _)) = row.target {
            let x = left + t / scale * bar_w;
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black" stroke-dasharray="4,3"/>"#,
                y + 2.0,
                y + row_h - 2.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn png(svg: &str, path: &Path) -> Result<(), String> {
    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("empty plot")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.save_png(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_targets_read_as_exactly_and_plot_red_when_missed() {
        let r = Results {
            s3_pods_per_replica: Some(1.5),
            s4_burst_rollouts: Some(1),
            ..Default::default()
        };
        let md = markdown(&r);
        assert!(
            md.contains("| S3 pods created per pod replaced | 1.50  | exactly 1 |"),
            "{md}"
        );
        assert!(
            md.contains("| S1 rollout complete p99 | not run | – |"),
            "{md}"
        );
        let svg = svg(&r, "t");
        assert_eq!(
            svg.matches("#d64545").count(),
            1,
            "only the missed exact target is red"
        );
        assert_eq!(svg.matches("#3aa655").count(), 1, "the burst is on target");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }
}
