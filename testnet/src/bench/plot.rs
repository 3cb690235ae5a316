//! A hand-rolled SVG of finality latency (p50, p99) and committed transfers/s against offered load, written
//! next to `summary.json`: people read a curve faster than a table, and 100 lines of SVG need no plotting
//! crate (nor its font and image dependencies) in the build.

use std::fmt::Write as _;

/// One point of the curve: offered transfers/s, committed transfers/s, p50 and p99 latency (ms).
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Offered load.
    pub offered: f64,
    /// Committed rate.
    pub committed: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

const W: f64 = 760.0;
const H: f64 = 440.0;
const L: f64 = 70.0;
const R: f64 = 80.0;
const T: f64 = 40.0;
const B: f64 = 60.0;

/// A "nice" upper bound for an axis (1, 2 or 5 times a power of ten).
fn nice(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|v| *v >= max).unwrap_or(10.0 * p)
}

/// The SVG document. `budget_ms` draws the finality budget as a dashed line.
pub fn svg(points: &[Point], budget_ms: f64, title: &str) -> String {
    let x_max = nice(points.iter().map(|p| p.offered).fold(0.0, f64::max));
    let y_max = nice(points.iter().map(|p| p.p99_ms).fold(budget_ms, f64::max));
    let c_max = nice(points.iter().map(|p| p.committed).fold(0.0, f64::max));
    let x = |v: f64| L + v / x_max * (W - L - R);
    let y = |v: f64| H - B - v / y_max * (H - T - B);
    let yc = |v: f64| H - B - v / c_max * (H - T - B);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#, W / 2.0, escape(title));
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let (gx, gy) = (x(f * x_max), y(f * y_max));
        let _ = writeln!(s, r##"<line x1="{L}" y1="{gy}" x2="{}" y2="{gy}" stroke="#ddd"/>"##, W - R);
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="end">{:.0}</text>"#, L - 6.0, gy + 4.0, f * y_max);
        let _ =
            writeln!(s, r#"<text x="{}" y="{}" text-anchor="start">{:.0}</text>"#, W - R + 6.0, gy + 4.0, f * c_max);
        let _ = writeln!(s, r#"<text x="{gx}" y="{}" text-anchor="middle">{:.0}</text>"#, H - B + 18.0, f * x_max);
    }
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        W - L - R,
        H - T - B
    );
    let _ =
        writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">offered load (transfers/s)</text>"#, W / 2.0, H - 20.0);
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">finality latency (ms)</text>"#,
        H / 2.0,
        H / 2.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(90 {} {})">committed (transfers/s)</text>"#,
        W - 20.0,
        H / 2.0,
        W - 20.0,
        H / 2.0
    );
    let by = y(budget_ms);
    let _ = writeln!(
        s,
        r##"<line x1="{L}" y1="{by}" x2="{}" y2="{by}" stroke="#888" stroke-dasharray="6 4"/><text x="{}" y="{}" fill="#666">budget {budget_ms:.1} ms</text>"##,
        W - R,
        L + 6.0,
        by - 4.0
    );
    type At<'a> = Box<dyn Fn(&Point) -> (f64, f64) + 'a>;
    let series: [(&str, &str, At); 3] = [
        ("p50 latency", "#1f77b4", Box::new(|p: &Point| (x(p.offered), y(p.p50_ms)))),
        ("p99 latency", "#d62728", Box::new(|p: &Point| (x(p.offered), y(p.p99_ms)))),
        ("committed/s (right axis)", "#2ca02c", Box::new(|p: &Point| (x(p.offered), yc(p.committed)))),
    ];
    for (i, (name, color, at)) in series.iter().enumerate() {
        let pts: Vec<String> = points.iter().map(at).map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in points {
            let (a, b) = at(p);
            let _ = writeln!(s, r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#);
        }
        let ly = T + 16.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            L + 10.0,
            L + 30.0,
            L + 36.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_one_polyline_per_series_and_nice_axes() {
        let pts = [
            Point { offered: 100.0, committed: 100.0, p50_ms: 200.0, p99_ms: 400.0 },
            Point { offered: 400.0, committed: 350.0, p50_ms: 900.0, p99_ms: 2500.0 },
        ];
        let s = svg(&pts, 30.0, "a < b");
        assert_eq!(s.matches("<polyline").count(), 3);
        assert!(s.contains("a &lt; b"));
        assert_eq!(nice(2500.0), 5000.0);
        assert_eq!(nice(350.0), 500.0);
    }
}
