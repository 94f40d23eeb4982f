//! Training curves drawn with plotters: test accuracy above, test loss below, against round, a
//! line per run, labelled axes and a legend; SVG or PNG by the file's extension. Text is set in
//! a font compiled into the binary, so a PNG looks the same on a machine without fonts.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Picture size in pixels (the SVG's user units).
const SIZE: (u32, u32) = (800, 640);
/// The font family every text uses; registered from `ttf_noto_sans` on first use.
const FONT: &str = "sans-serif";
const COLORS: &[RGBColor] = &[
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
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

/// The picture formats written, chosen by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics, for a browser or a document.
    Svg,
    /// An 8-bit RGB bitmap.
    Png,
}

impl Format {
    /// The format a path's extension names, if it names one written here.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// The curves as the bytes of a file of `format`.
pub fn curves(format: Format, title: &str, series: &[Series]) -> anyhow::Result<Vec<u8>> {
    register_font();
    match format {
        Format::Svg => {
            let mut svg = String::new();
            draw(
                SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
                title,
                series,
            )?;
            Ok(svg.into_bytes())
        }
        Format::Png => {
            let (w, h) = SIZE;
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            draw(
                BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
                title,
                series,
            )?;
            let mut png = Vec::new();
            let mut encoder = png::Encoder::new(&mut png, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&rgb)?;
            writer.finish()?;
            Ok(png)
        }
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a constant of a pinned crate; it not parsing is a build defect, and text
        // then fails to draw with a named error from plotters rather than here.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR);
    });
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the plot: {e}");
    root.fill(&WHITE).map_err(fail)?;
    let body = root.titled(title, (FONT, 20)).map_err(fail)?;
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
        .fold(0.0f64, f64::max);
    let loss_top = if loss_top > 0.0 { loss_top * 1.05 } else { 1.0 };
    let panels = body.split_evenly((2, 1));
    let acc: Vec<(&str, &[f64])> = series
        .iter()
        .map(|s| (s.name.as_str(), s.accuracy.as_slice()))
        .collect();
    panel(
        &panels[0],
        "test accuracy",
        1.0,
        rounds,
        &acc,
        SeriesLabelPosition::LowerRight,
    )
    .map_err(fail)?;
    let loss: Vec<(&str, &[f64])> = series
        .iter()
        .map(|s| (s.name.as_str(), s.loss.as_slice()))
        .collect();
    panel(
        &panels[1],
        "test loss",
        loss_top,
        rounds,
        &loss,
        SeriesLabelPosition::UpperRight,
    )
    .map_err(fail)?;
    root.present().map_err(fail)?;
    Ok(())
}

/// One panel: each line's values against round 1..=`rounds`, y from 0 to `top`.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    y_desc: &str,
    top: f64,
    rounds: usize,
    lines: &[(&str, &[f64])],
    legend: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..rounds, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc(y_desc)
        .x_labels(rounds.min(10))
        .y_labels(6)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()?;
    for (i, (name, values)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        // A value that is not finite (a run that diverged) breaks the line there.
        let mut segments: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
        for (r, &v) in values.iter().enumerate() {
            match (v.is_finite(), segments.last_mut()) {
                (true, Some(s)) => s.push((r + 1, v.clamp(0.0, top))),
                (false, Some(s)) if !s.is_empty() => segments.push(Vec::new()),
                _ => {}
            }
        }
        for (k, segment) in segments.into_iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(segment, style))?;
            if k == 0 {
                drawn
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            }
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xbb, 0xbb, 0xbb))
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn two_runs() -> Vec<Series> {
        vec![
            Series {
                name: "fedavg".into(),
                accuracy: vec![0.1, 0.5, 0.8],
                loss: vec![2.0, 1.0, 0.5],
            },
            Series {
                name: "krum".into(),
                accuracy: vec![0.2, 0.4, 0.5],
                loss: vec![1.5, f64::NAN, 1.0],
            },
        ]
    }

    #[test]
    fn the_svg_has_both_panels_labelled_axes_and_a_legend() -> anyhow::Result<()> {
        let svg = String::from_utf8(curves(Format::Svg, "t<1>", &two_runs())?)?;
        // plotters writes each text element as `>\nTEXT\n</text>`.
        let texts = |t: &str| svg.matches(&format!(">\n{t}\n</text>")).count();
        assert!(svg.starts_with("<svg"));
        assert_eq!(texts("t&lt;1&gt;"), 1, "the title, escaped");
        assert_eq!(texts("test accuracy"), 1);
        assert_eq!(texts("test loss"), 1);
        assert_eq!(texts("round"), 2, "an x description per panel");
        assert_eq!(texts("fedavg"), 2, "a legend entry per panel");
        assert_eq!(texts("krum"), 2);
        // A line per panel and a legend sample each; krum's NaN loss breaks its loss line.
        let lines = |c: RGBColor| {
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
            svg.lines()
                .filter(|l| l.starts_with("<polyline") && l.contains(&stroke))
                .count()
        };
        assert_eq!(lines(COLORS[0]), 4);
        assert_eq!(lines(COLORS[1]), 5);
        Ok(())
    }

    #[test]
    fn the_png_decodes_and_shows_each_run_and_text() -> anyhow::Result<()> {
        let bytes = curves(Format::Png, "digits", &two_runs())?;
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
        let mut rgb = vec![0; reader.output_buffer_size().context("no frame size")?];
        let info = reader.next_frame(&mut rgb)?;
        assert_eq!((info.width, info.height), SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let pixels: Vec<&[u8]> = rgb.chunks(3).collect();
        let count = |c: RGBColor| pixels.iter().filter(|p| **p == [c.0, c.1, c.2]).count();
        assert!(count(COLORS[0]) > 200, "the first run's lines");
        assert!(count(COLORS[1]) > 100, "the second run's lines");
        // Axis descriptions stand left of the plot: dark anti-aliased glyph pixels there mean the
        // compiled-in font drew text (without a font plotters draws none).
        let w = SIZE.0 as usize;
        let left_text = pixels
            .iter()
            .enumerate()
            .filter(|(i, p)| i % w < 25 && p.iter().all(|&c| c < 100))
            .count();
        assert!(
            left_text > 50,
            "the y axis descriptions are drawn ({left_text} dark pixels)"
        );
        Ok(())
    }

    #[test]
    fn the_format_comes_from_the_extension() {
        assert_eq!(Format::of(Path::new("a/curves.svg")), Some(Format::Svg));
        assert_eq!(Format::of(Path::new("curves.PNG")), Some(Format::Png));
        assert_eq!(Format::of(Path::new("curves.jpg")), None);
        assert_eq!(Format::of(Path::new("curves")), None);
    }
}
