//! The SVG plot of the timeline (--svg): one panel each for throughput, latency and, with
//! --rss-pid, resident memory, drawn without any plotting library.

use std::fmt::Write as _;

use crate::memory::RssSamples;
use crate::report::round;
use crate::stats::Op;
use crate::timeline::Point;

/// A "nice" upper bound and step for an axis from 0 to `max` with about `ticks` ticks.
fn nice_axis(max: f64, ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / ticks as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// An axis label: compact (k, M) for large values, without needless decimals.
fn fmt_tick(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{}M", round(v / 1_000_000.0, 2))
    } else if v >= 10_000.0 {
        format!("{}k", round(v / 1000.0, 1))
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", round(v, 3))
    }
}

/// `s` as SVG text or attribute content.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colours of a panel's series, in order (then again from the first).
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One panel of the plot: series of (x, y) points, drawn as lines over a shared x range.
struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

// The layout, in SVG user units: margins around the plot areas (room for the title, the y
// labels and the legend), the size of each panel's plot area and the space between panels.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 50.0;
const PLOT_H: f64 = 220.0;
const GAP: f64 = 70.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;

/// Renders the timeline as a self-contained SVG: throughput per operation, latency
/// percentiles of all successes and, with samples, resident memory per process.
pub(crate) fn render_svg(
    title: &str,
    ops: &[Op],
    points: &[Point],
    pids: &[u32],
    rss: &RssSamples,
) -> String {
    let mut panels = vec![throughput_panel(ops, points), latency_panel(points)];
    if !pids.is_empty() {
        panels.push(memory_panel(pids, rss));
    }

    // Every panel shares the x axis: seconds into the measured window.
    let x_max = points
        .iter()
        .map(|p| p.t)
        .chain(rss.iter().map(|s| s.0))
        .fold(0.0f64, f64::max);
    let (x_top, x_step) = nice_axis(x_max, 10);
    let mut s = String::new();
    header(&mut s, title, panels.len());
    for (n, panel) in panels.iter().enumerate() {
        let y_max = panel
            .series
            .iter()
            .flat_map(|(_, line)| line.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let (y_top, y_step) = nice_axis(y_max * 1.05, 5);
        let frame = Frame {
            y0: TOP + n as f64 * (PLOT_H + GAP) + 20.0,
            x_top,
            x_step,
            y_top,
            y_step,
        };
        draw_panel(&mut s, panel, &frame);
    }
    s.push_str("</svg>\n");
    s
}

/// Requests per second of each operation, and of all of them when there are several.
fn throughput_panel(ops: &[Op], points: &[Point]) -> Panel<'static> {
    let mut throughput: Vec<(String, Vec<(f64, f64)>)> = ops
        .iter()
        .map(|&op| {
            let line = points.iter().map(|p| (p.t, p.rps[op as usize])).collect();
            (format!("{} req/s", op.name()), line)
        })
        .collect();
    if ops.len() > 1 {
        let line = points.iter().map(|p| (p.t, p.total_rps())).collect();
        throughput.push(("total req/s".to_string(), line));
    }
    Panel {
        title: "Throughput",
        unit: "requests/s",
        series: throughput,
    }
}

/// The latency percentiles of each interval (intervals without a success are left out).
fn latency_panel(points: &[Point]) -> Panel<'static> {
    let latency = [("p50", 0usize), ("p90", 1), ("p99", 2)]
        .iter()
        .map(|&(name, k)| {
            let line = points
                .iter()
                .filter_map(|p| [p.p50, p.p90, p.p99][k].map(|v| (p.t, v)))
                .collect();
            (name.to_string(), line)
        })
        .collect();
    Panel {
        title: "Latency of successful requests (all operations)",
        unit: "ms",
        series: latency,
    }
}

/// The resident memory of each --rss-pid process, in MiB (unreadable samples left out).
fn memory_panel(pids: &[u32], rss: &RssSamples) -> Panel<'static> {
    let series = pids
        .iter()
        .enumerate()
        .map(|(k, pid)| {
            let line = rss
                .iter()
                .filter_map(|(t, v)| v[k].map(|kib| (*t, kib as f64 / 1024.0)))
                .collect();
            (format!("pid {pid} RSS"), line)
        })
        .collect();
    Panel {
        title: "Resident memory",
        unit: "MiB",
        series,
    }
}

/// The opening `<svg>` element, sized for `panels` panels, with a white background and the
/// title.
fn header(s: &mut String, title: &str, panels: usize) {
    let (width, height) = (WIDTH, TOP + panels as f64 * (PLOT_H + GAP));
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        width / 2.0,
        xml_escape(title)
    );
}

/// Where one panel's plot area is and what its axes span: the top of the area, and the
/// upper bound and tick step of each axis (both start at 0).
struct Frame {
    y0: f64,
    x_top: f64,
    x_step: f64,
    y_top: f64,
    y_step: f64,
}

impl Frame {
    /// The horizontal position of `x` seconds.
    fn px(&self, x: f64) -> f64 {
        LEFT + x / self.x_top * PLOT_W
    }

    /// The vertical position of the value `y`.
    fn py(&self, y: f64) -> f64 {
        self.y0 + PLOT_H - y / self.y_top * PLOT_H
    }
}

/// One panel: its title, grid and axis labels, frame, lines and legend.
fn draw_panel(s: &mut String, panel: &Panel<'_>, f: &Frame) {
    let (left, plot_w, plot_h, y0) = (LEFT, PLOT_W, PLOT_H, f.y0);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-size="14">{} ({})</text>"#,
        y0 - 8.0,
        xml_escape(panel.title),
        xml_escape(panel.unit)
    );
    y_grid(s, f);
    x_ticks(s, f);
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{y0:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds into the measured window</text>"#,
        left + plot_w / 2.0,
        y0 + plot_h + 34.0
    );
    for (k, (name, line)) in panel.series.iter().enumerate() {
        draw_series(s, f, k, name, line);
    }
}

/// The horizontal grid lines with the y labels.
fn y_grid(s: &mut String, f: &Frame) {
    let (left, plot_w) = (LEFT, PLOT_W);
    let mut y = 0.0;
    while y <= f.y_top + f.y_step / 2.0 {
        let yy = f.py(y);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            fmt_tick(y)
        );
        y += f.y_step;
    }
}

/// The tick marks and labels of the x axis, below the plot area.
fn x_ticks(s: &mut String, f: &Frame) {
    let (plot_h, y0) = (PLOT_H, f.y0);
    let mut x = 0.0;
    while x <= f.x_top + f.x_step / 2.0 {
        let xx = f.px(x);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y0 + plot_h,
            y0 + plot_h + 4.0,
            y0 + plot_h + 18.0,
            fmt_tick(x)
        );
        x += f.x_step;
    }
}

/// Series `k` of a panel: its line (if it has points) and its entry in the legend, right of
/// the plot area.
fn draw_series(s: &mut String, f: &Frame, k: usize, name: &str, line: &[(f64, f64)]) {
    let color = COLORS[k % COLORS.len()];
    if !line.is_empty() {
        let pts: Vec<String> = line
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            pts.join(" ")
        );
    }
    let ly = f.y0 + 14.0 + k as f64 * 18.0;
    let lx = LEFT + PLOT_W + 12.0;
    let _ = writeln!(
        s,
        r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
        lx + 18.0,
        lx + 24.0,
        ly + 4.0,
        xml_escape(name)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{timeline_json, timeline_points, Slot};

    #[test]
    fn timeline_and_svg() {
        let mut slot = Slot::default();
        slot.requests[Op::Post as usize] = 100;
        slot.messages[Op::Post as usize] = 1000;
        for v in 1..=100 {
            slot.hist.record(v * 10);
        }
        let points = timeline_points(&[slot], 1.0, 1.5);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].rps[Op::Post as usize], 100.0);
        assert_eq!(points[1].t, 1.5);
        assert_eq!(points[1].p50, None);
        let rss: RssSamples = vec![(0.0, vec![Some(1024)]), (1.0, vec![Some(2048)])];
        let svg = render_svg("a <b>", &[Op::Post], &points, &[7], &rss);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1 + 3 + 1);
        let doc = timeline_json(&[Op::Post], 1.0, &points, &[7], &rss);
        assert_eq!(doc["points"][0]["ops"]["post"]["mps"], 1000.0);
        assert_eq!(doc["points"][0]["rss_kib"]["7"], 2048);
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(9.3, 5), (10.0, 2.0));
        assert_eq!(nice_axis(0.0, 5), (1.0, 0.2));
        assert_eq!(nice_axis(42_000.0, 5), (50_000.0, 10_000.0));
    }
}
