//! `results.png`: a bar per operator for each measure, drawn as SVG and rasterised with
//! resvg. Rows of one scale share it; the target is the dashed line, and a value that
//! misses it is written in red.

use std::{fmt::Write as _, path::Path};

use super::{Report, Row, rows};

/// Our bar, then the other operator's.
const COLORS: [&str; 2] = ["#2f6fd6", "#e08a2c"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

fn value_text(v: f64, unit: &str) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v.abs() >= 0.1 || v == 0.0 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.3} {unit}")
    }
}

pub fn svg(report: &Report, title: &str) -> String {
    let all = rows(report);
    let rows: Vec<&Row> = all
        .iter()
        .filter(|r| r.values.iter().any(Option::is_some))
        .collect();
    let ops = report.operators.len().max(1);
    let bar_h = 14.0;
    let row_h = bar_h * ops as f64 + 14.0;
    let (w, top, left, bar_w) = (1200.0, 84.0, 420.0, 520.0);
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
    for (i, op) in report.operators.iter().enumerate() {
        let x = 20.0 + 260.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="48" width="16" height="16" fill="{}"/><text x="{}" y="61" font-size="14">{}</text>"#,
            COLORS[i % 2],
            x + 22.0,
            esc(&op.label)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="560" y1="56" x2="590" y2="56" stroke="black" stroke-dasharray="4,3"/><text x="598" y="61" font-size="14">target (a miss in red)</text>"#
    );
    // Rows of one scale share it, so p50 and p99 compare at a glance.
    let scale_of = |scale: &str| {
        rows.iter()
            .filter(|r| r.scale == scale)
            .flat_map(|r| {
                let t = r.target.map_or(0.0, |t| t.0);
                r.values.iter().map(move |v| v.unwrap_or(0.0).max(t))
            })
            .fold(1e-9, f64::max)
            * 1.15
    };
    for (i, row) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let scale = scale_of(&row.scale);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="13" text-anchor="end">{}</text>"#,
            left - 10.0,
            y + row_h / 2.0 + 2.0,
            esc(&row.label),
        );
        for (j, v) in row.values.iter().enumerate() {
            let by = y + 5.0 + bar_h * j as f64;
            let Some(v) = *v else {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" font-size="11" fill="#888">not run</text>"##,
                    left + 4.0,
                    by + bar_h - 3.0
                );
                continue;
            };
            let len = (v / scale * bar_w).clamp(1.0, bar_w * 1.2);
            let fill = if row.missed(v) { "#c62828" } else { "black" };
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{by}" width="{len:.1}" height="{}" fill="{}"/>
<text x="{:.1}" y="{}" font-size="11" fill="{fill}">{}</text>"#,
                bar_h - 2.0,
                COLORS[j % 2],
                left + len + 6.0,
                by + bar_h - 3.0,
                esc(&value_text(v, row.unit)),
            );
        }
        if let Some((t, _)) = row.target {
            let x = left + t / scale * bar_w;
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black" stroke-dasharray="4,3"/>"#,
                y + 2.0,
                y + row_h - 4.0
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
    use crate::report::Results;

    #[test]
    fn a_bar_per_operator_and_misses_in_red() {
        let ours = Results {
            label: "kube-reloader".into(),
            s4_burst_rollouts: Some(1),
            ..Default::default()
        };
        let theirs = Results {
            label: "reloader".into(),
            s4_burst_rollouts: Some(5),
            ..Default::default()
        };
        let report = Report {
            meta: serde_json::Value::Null,
            ceiling: vec![],
            operators: vec![ours, theirs],
        };
        let svg = svg(&report, "t");
        assert_eq!(
            svg.matches(&format!("fill=\"{}\"/>\n", COLORS[0])).count(),
            1
        );
        assert_eq!(
            svg.matches(&format!("fill=\"{}\"/>\n", COLORS[1])).count(),
            1
        );
        assert_eq!(svg.matches("fill=\"#c62828\"").count(), 1, "only 5 misses");
    }
}
