//! Accuracy curves as a small self-contained SVG (no plotting dependency: one polyline per run).

use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 400.0;
const PAD: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// SVG text of accuracy (0..1) against round for each named series.
pub fn accuracy_svg(title: &str, series: &[(String, Vec<f64>)]) -> String {
    let rounds = series
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let x = |r: usize| PAD + (W - 2.0 * PAD) * (r as f64 - 1.0) / (rounds as f64 - 1.0);
    let y = |a: f64| H - PAD - (H - 2.0 * PAD) * a.clamp(0.0, 1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{PAD}\" y=\"25\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for tick in 0..=5 {
        let a = f64::from(tick) / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{PAD}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"10\" y=\"{:.1}\">{a:.1}</text>",
            W - PAD,
            y(a) + 4.0,
            y0 = y(a)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\">round (1..{rounds})</text>",
        W / 2.0 - 30.0,
        H - 15.0
    );
    for (i, (name, acc)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = acc
            .iter()
            .enumerate()
            .map(|(r, &a)| format!("{:.1},{:.1}", x(r + 1), y(a)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
        let ly = PAD + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{ly:.1}\" fill=\"{color}\">{}</text>",
            W - PAD - 150.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_one_polyline_per_series() {
        let svg = super::accuracy_svg(
            "t<1>",
            &[("a".into(), vec![0.1, 0.5]), ("b".into(), vec![0.2])],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("t&lt;1&gt;"));
    }
}
