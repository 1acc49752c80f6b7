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
    pub s2_rss_mib: Option<Rss>,
    pub s2_ready_s: Option<f64>,
    pub s3_fanout_s: Option<f64>,
    pub s4_burst_rollouts: Option<i64>,
    pub s4_flap_rollouts: Option<i64>,
    pub s5_idle_cpu_s: Option<f64>,
    pub api_requests_per_reload: Option<f64>,
    pub meta: serde_json::Value,
}

/// (label, measured, target, unit); the target is an upper bound except for the burst.
fn rows(r: &Results) -> Vec<(&'static str, Option<f64>, Option<f64>, &'static str)> {
    let lat = r.s1_latency_ms.as_ref();
    let rss = r.s2_rss_mib.as_ref();
    vec![
        ("S1 latency p50", lat.map(|l| l.p50), None, "ms"),
        ("S1 latency p95", lat.map(|l| l.p95), None, "ms"),
        ("S1 latency p99", lat.map(|l| l.p99), Some(50.0), "ms"),
        ("S1 latency max", lat.map(|l| l.max), None, "ms"),
        (
            "S2 RSS after sync",
            rss.map(|m| m.steady),
            Some(32.0),
            "MiB",
        ),
        ("S2 RSS peak", rss.map(|m| m.peak), Some(64.0), "MiB"),
        ("S2 time to ready", r.s2_ready_s, None, "s"),
        ("S3 fan-out", r.s3_fanout_s, Some(5.0), "s"),
        (
            "S4 burst rollouts",
            r.s4_burst_rollouts.map(|v| v as f64),
            Some(1.0),
            "",
        ),
        (
            "S4 flap rollouts",
            r.s4_flap_rollouts.map(|v| v as f64),
            None,
            "",
        ),
        ("S5 idle CPU", r.s5_idle_cpu_s, Some(0.5), "s"),
        (
            "API requests per reload",
            r.api_requests_per_reload,
            None,
            "",
        ),
    ]
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::from("| Measure | Result | Target |\n|---|---|---|\n");
    for (label, v, target, unit) in rows(r) {
        let v = v.map_or("not run".into(), |v| format!("{v:.2} {unit}"));
        let t = match (target, label) {
            (Some(t), "S4 burst rollouts") => format!("exactly {t}"),
            (Some(t), _) => format!("≤ {t} {unit}"),
            (None, _) => "–".into(),
        };
        let _ = writeln!(out, "| {label} | {v} | {t} |");
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

/// Horizontal bars, one per measure, each scaled to its own target (or value): the bar is
/// green within the target, red beyond it; the target is the dashed line.
pub fn svg(r: &Results, title: &str) -> String {
    let rows: Vec<_> = rows(r)
        .into_iter()
        .filter(|(_, v, _, _)| v.is_some())
        .collect();
    let (w, row_h, top, left, bar_w) = (960.0, 34.0, 60.0, 230.0, 520.0);
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
    // Rows with the same unit share a scale, so p50 and p99 compare at a glance.
    let scale_of = |unit: &str| {
        let of_unit = rows.iter().filter(|r| r.3 == unit);
        of_unit
            .flat_map(|(_, v, t, _)| [v.unwrap_or(0.0), t.unwrap_or(0.0)])
            .fold(1e-9, f64::max)
            * 1.15
    };
    for (i, (label, v, target, unit)) in rows.iter().enumerate() {
        let v = v.unwrap_or(0.0);
        let y = top + row_h * i as f64;
        let scale = scale_of(unit);
        let len = (v / scale * bar_w).max(1.0);
        let over = target.is_some_and(|t| {
            if *label == "S4 burst rollouts" {
                v != t
            } else {
                v > t
            }
        });
        let color = match (target, over) {
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
            esc(label),
            y + 6.0,
            row_h - 12.0,
            left + len + 8.0,
            y + 20.0,
            target.map_or(String::new(), |t| format!("  (target {t} {unit})")),
        );
        if let Some(t) = target {
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
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }
}
