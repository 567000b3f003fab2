//! PNG charts with plotters (drawn into a buffer, encoded with `png`), text in the bundled
//! DejaVu font: the confusion matrix, the detection-latency histogram, the realism comparison.

use super::metrics::Confusion;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansCondensed.ttf");

fn font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is compiled in; it always parses.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `(w, h)` pixels with `draw` and writes them as an RGB PNG.
fn png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(&root)?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = ::png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(::png::ColorType::Rgb);
    enc.set_depth(::png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&buf).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("chart: {e}")
}

/// The confusion matrix as a heat map, rows normalised (each true class sums to 1), with counts.
pub fn confusion(c: &Confusion, title: &str, path: &Path) -> Result<()> {
    // Only classes present in the truth or the predictions.
    let keep: Vec<usize> = (0..c.classes.len())
        .filter(|&i| c.counts[i].iter().sum::<u64>() > 0 || c.counts.iter().any(|r| r[i] > 0))
        .collect();
    let n = keep.len().max(1);
    png(path, (200 + 56 * n as u32, 160 + 40 * n as u32), |root| {
        let (left, top) = (190, 60);
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 22).into_font())).map_err(err)?;
        root.draw(&Text::new("predicted →", (left, top - 22), ("sans-serif", 15).into_font())).map_err(err)?;
        for (row, &t) in keep.iter().enumerate() {
            let total: u64 = c.counts[t].iter().sum();
            let y = top + 40 * row as i32;
            root.draw(&Text::new(c.classes[t].clone(), (10, y + 12), ("sans-serif", 15).into_font())).map_err(err)?;
            for (col, &p) in keep.iter().enumerate() {
                let x = left + 56 * col as i32;
                let v = c.counts[t][p];
                let share = if total > 0 { v as f64 / total as f64 } else { 0.0 };
                let shade = (255.0 * (1.0 - share)) as u8;
                let fill =
                    if t == p { RGBColor(shade, 255 - (255 - shade) / 3, shade) } else { RGBColor(255, shade, shade) };
                root.draw(&Rectangle::new([(x, y), (x + 54, y + 38)], fill.filled())).map_err(err)?;
                if v > 0 {
                    root.draw(&Text::new(v.to_string(), (x + 4, y + 12), ("sans-serif", 13).into_font()))
                        .map_err(err)?;
                }
            }
        }
        // Column labels, rotated would need a transform: short names under the matrix instead.
        let y = top + 40 * n as i32 + 8;
        for (col, &p) in keep.iter().enumerate() {
            let x = left + 56 * col as i32;
            let short: String = c.classes[p].chars().take(8).collect();
            root.draw(&Text::new(short, (x + 2, y + (col as i32 % 2) * 16), ("sans-serif", 12).into_font()))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// A histogram of detection latencies [s].
pub fn latency_histogram(latencies: &[f64], title: &str, path: &Path) -> Result<()> {
    png(path, (900, 500), |root| {
        let max = latencies.iter().copied().fold(60.0, f64::max);
        let bins = 30usize;
        let width = (max / bins as f64).max(1.0);
        let mut counts = vec![0u32; bins + 1];
        for l in latencies {
            counts[((l / width) as usize).min(bins)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..(width * (bins + 1) as f64), 0u32..top + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds from fault onset to the first alarm of its kind")
            .y_desc("faults")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width * 0.9, *c)], RGBColor(46, 120, 200).filled())
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// One engine's remaining-life estimates against the truth, (true, estimated) per cycle, and
/// where its alarm opened.
pub type RulTrace = (Vec<(f64, f64)>, Option<(f64, f64)>);

/// Remaining-life estimates against the truth, one line per engine (x: true cycles left,
/// counting down to the right; y: estimate), with the perfect diagonal, the alarm threshold and
/// the label horizon; a dot where each engine's alarm opened.
pub fn rul_traces(
    engines: &[RulTrace],
    threshold: f64,
    horizon: f64,
    cap: f64,
    title: &str,
    path: &Path,
) -> Result<()> {
    png(path, (1000, 620), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((cap + 5.0)..-2.0, -2.0..(cap + 5.0))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("true cycles of life left")
            .y_desc("estimated cycles left")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let grey = RGBColor(150, 150, 150);
        chart.draw_series(LineSeries::new([(cap, cap), (0.0, 0.0)], grey.stroke_width(2))).map_err(err)?;
        chart
            .draw_series(LineSeries::new([(cap + 5.0, threshold), (-2.0, threshold)], RED.stroke_width(2)))
            .map_err(err)?
            .label(format!("alarm threshold {threshold:.1}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(LineSeries::new([(horizon, -2.0), (horizon, cap + 5.0)], BLUE.stroke_width(1)))
            .map_err(err)?
            .label(format!("label horizon: {horizon:.0} cycles left"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(1)));
        for (i, (trace, alarm)) in engines.iter().enumerate() {
            let colour = Palette99::pick(i).mix(0.7);
            let pts: Vec<(f64, f64)> = trace.iter().filter(|(t, _)| *t <= cap + 5.0).copied().collect();
            chart.draw_series(LineSeries::new(pts, colour.stroke_width(1))).map_err(err)?;
            if let Some(a) = alarm {
                chart.draw_series([Circle::new(*a, 4, BLACK.filled())]).map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Per-feature KS statistics as bars, with the overall MMD and kNN mixing in the caption.
pub fn realism(ks: &[(String, f64)], mmd: f64, mixing: f64, path: &Path) -> Result<()> {
    png(path, (1000, 120 + 26 * ks.len() as u32), |root| {
        let title = format!(
            "synthetic vs real healthy windows: kNN mixing {mixing:.2} (0.5 = indistinguishable), MMD {mmd:.3}"
        );
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(200)
            .build_cartesian_2d(0.0..1.0f64, (0..ks.len()).into_segmented())
            .map_err(err)?;
        let names: Vec<String> = ks.iter().map(|k| k.0.clone()).collect();
        chart
            .configure_mesh()
            .x_desc("Kolmogorov-Smirnov statistic (0 = same distribution)")
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(ks.iter().enumerate().map(|(i, (_, d))| {
                Rectangle::new(
                    [(0.0, SegmentValue::Exact(i)), (*d, SegmentValue::Exact(i + 1))],
                    RGBColor(200, 90, 40).filled(),
                )
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// One row of a day × component chart: the day, its label, whether it was flagged, and the
/// fork's top hypothesis as (component column, evidence per sample).
pub struct DayRow {
    pub date: String,
    pub label: String,
    pub flagged: bool,
    /// Column the label names (the truth), if any.
    pub truth: Option<usize>,
    pub blamed: Option<(usize, f64)>,
}

/// Days down, components across: a cell is filled where the fork put the blame (darker with
/// more evidence), outlined where the day's label puts it; a grey day was not flagged.
pub fn day_components(rows: &[DayRow], components: &[&str], title: &str, path: &Path) -> Result<()> {
    let (left, top, cw, rh) = (330, 70, 130, 30);
    let w = left + cw * components.len() as i32 + 20;
    let h = top + rh * rows.len() as i32 + 60;
    png(path, (w as u32, h as u32), |root| {
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 20).into_font())).map_err(err)?;
        root.draw(&Text::new(
            "filled: the fork's top hypothesis; outlined: the label; grey row: not flagged",
            (10, 36),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(err)?;
        for (c, name) in components.iter().enumerate() {
            let x = left + cw * c as i32;
            root.draw(&Text::new(name.to_string(), (x + 4, top - 16), ("sans-serif", 14).into_font())).map_err(err)?;
        }
        for (r, d) in rows.iter().enumerate() {
            let y = top + rh * r as i32;
            let text = format!("{}  {}", d.date, d.label);
            let colour = if d.flagged { BLACK } else { RGBColor(150, 150, 150) };
            root.draw(&Text::new(text, (10, y + 8), ("sans-serif", 13).into_font().color(&colour))).map_err(err)?;
            for c in 0..components.len() {
                let x = left + cw * c as i32;
                let cell = [(x, y), (x + cw - 4, y + rh - 4)];
                let fill = match d.blamed {
                    Some((b, e)) if b == c => {
                        let s = (e / 20.0).clamp(0.15, 1.0);
                        RGBColor(255, (235.0 - 180.0 * s) as u8, (200.0 - 180.0 * s) as u8)
                    }
                    _ if d.flagged => RGBColor(245, 245, 245),
                    _ => RGBColor(225, 225, 225),
                };
                root.draw(&Rectangle::new(cell, fill.filled())).map_err(err)?;
                if d.truth == Some(c) {
                    root.draw(&Rectangle::new(cell, ShapeStyle::from(&RGBColor(20, 90, 200)).stroke_width(3)))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    })
}
