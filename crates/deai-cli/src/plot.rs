//! Training curves as a small self-contained SVG: accuracy and test loss against round, one
//! polyline per run, labelled axes and a legend. No plotting dependency: the picture is a few
//! dozen elements.

use std::fmt::Write as _;

const W: f64 = 680.0;
/// Height of one panel.
const PANEL: f64 = 300.0;
/// Left margin (y labels), the others.
const LEFT: f64 = 70.0;
const PAD: f64 = 40.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// One run's curves.
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Accuracy after each round (0..1).
    pub accuracy: Vec<f64>,
    /// Test loss after each round.
    pub loss: Vec<f64>,
}

/// One panel: `values` of each series against round, on a y axis from 0 to `top`.
fn panel(
    svg: &mut String,
    top_y: f64,
    label: &str,
    top: f64,
    rounds: usize,
    series: &[(&str, &[f64])],
) {
    let plot_h = PANEL - 2.0 * PAD;
    let x = |r: usize| LEFT + (W - LEFT - PAD) * (r as f64 - 1.0) / (rounds as f64 - 1.0);
    let y = |v: f64| top_y + PAD + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    for tick in 0..=5 {
        let v = top * f64::from(tick) / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - PAD,
            LEFT - 6.0,
            y(v) + 4.0,
            tick_label(v, top),
            y0 = y(v)
        );
    }
    for r in round_ticks(rounds) {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{r}</text>",
            x(r),
            top_y + PANEL - PAD + 16.0
        );
    }
    let mid = top_y + PANEL / 2.0;
    let _ = writeln!(
        svg,
        "<text x=\"18\" y=\"{mid:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {mid:.1})\">{}</text>",
        escape(label)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">round</text>",
        LEFT + (W - LEFT - PAD) / 2.0,
        top_y + PANEL - 6.0
    );
    for (i, (name, values)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(r, &v)| format!("{:.1},{:.1}", x(r + 1), y(v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{}</text>",
            W - PAD - 170.0,
            top_y + PAD + 14.0 + 16.0 * i as f64,
            escape(name)
        );
    }
}

fn tick_label(v: f64, top: f64) -> String {
    if top <= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// About six round numbers from 1 to `rounds`.
fn round_ticks(rounds: usize) -> Vec<usize> {
    let step = (rounds / 6).max(1);
    let mut t: Vec<usize> = (1..=rounds).step_by(step).collect();
    if t.last() != Some(&rounds) {
        t.push(rounds);
    }
    t
}

/// SVG text: accuracy (0..1) above, test loss below, against round, for each series.
pub fn curves_svg(title: &str, series: &[Series]) -> String {
    let rounds = series
        .iter()
        .map(|s| s.accuracy.len().max(s.loss.len()))
        .max()
        .unwrap_or(1)
        .max(2);
    let loss_top = series
        .iter()
        .flat_map(|s| s.loss.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = 2.0 * PANEL + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"22\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    let acc: Vec<(&str, &[f64])> = series
        .iter()
        .map(|s| (s.name.as_str(), s.accuracy.as_slice()))
        .collect();
    panel(&mut svg, 30.0, "test accuracy", 1.0, rounds, &acc);
    let loss: Vec<(&str, &[f64])> = series
        .iter()
        .map(|s| (s.name.as_str(), s.loss.as_slice()))
        .collect();
    panel(&mut svg, 30.0 + PANEL, "test loss", loss_top, rounds, &loss);
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
    use super::*;

    #[test]
    fn draws_accuracy_and_loss_per_series_with_labelled_axes() {
        let svg = curves_svg(
            "t<1>",
            &[
                Series {
                    name: "a".into(),
                    accuracy: vec![0.1, 0.5],
                    loss: vec![2.0, 1.0],
                },
                Series {
                    name: "b".into(),
                    accuracy: vec![0.2],
                    loss: vec![1.5],
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 4, "two panels, two runs");
        assert!(svg.contains("t&lt;1&gt;"));
        assert!(svg.contains(">test accuracy<") && svg.contains(">test loss<"));
        assert_eq!(svg.matches(">round<").count(), 2);
        assert!(
            svg.contains(">2.00<"),
            "the loss axis reaches the largest loss"
        );
        assert_eq!(round_ticks(20), vec![1, 4, 7, 10, 13, 16, 19, 20]);
    }
}
