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

/// Colour of a status in the run timeline (and the visualizer's palette).
fn status_colour(s: twinfault_core::types::Status) -> RGBColor {
    use twinfault_core::types::Status;
    match s {
        Status::Healthy => RGBColor(60, 170, 90),
        Status::Warning => RGBColor(235, 165, 20),
        Status::Critical => RGBColor(205, 40, 40),
        Status::Offline => RGBColor(120, 120, 120),
        Status::Unknown => RGBColor(200, 200, 200),
    }
}

fn phase_colour(p: twinfault_core::Phase) -> RGBColor {
    use twinfault_core::Phase;
    match p {
        Phase::Off => RGBColor(228, 228, 228),
        Phase::Startup => RGBColor(255, 243, 196),
        Phase::Occupied => RGBColor(255, 255, 255),
        Phase::Shutdown => RGBColor(255, 224, 196),
    }
}

/// The run timeline's layout [px]: width, left label column, right margin, header, lane height.
pub const TIMELINE: (u32, i32, i32, i32, i32) = (1500, 230, 20, 84, 34);

/// Colours of the run timeline: injected fault (truth), model verdict.
pub const TRUTH_RGB: [u8; 3] = [120, 80, 170];
pub const MODEL_RGB: [u8; 3] = [60, 110, 200];

/// The status colours of the run timeline.
pub fn status_rgb(s: twinfault_core::types::Status) -> [u8; 3] {
    let RGBColor(r, g, b) = status_colour(s);
    [r, g, b]
}

/// One lane of a run timeline: a node (or, for a large facility, an AHU with everything below it).
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub label: String,
    /// Whose status colours the lane.
    pub status_of: String,
    /// Whose phase shades it (an AHU's index).
    pub ahu: Option<usize>,
    /// Nodes whose injections and findings it shows.
    pub members: Vec<String>,
}

/// The lanes of a run over `facility`: the plant, then each AHU followed by its devices; with
/// more than `max_devices` devices, one lane per AHU holding its subtree.
pub fn timeline_lanes(facility: &twinfault_core::config::Facility, max_devices: usize) -> Vec<Lane> {
    let mut lanes = Vec::new();
    if let Some(p) = &facility.plant {
        lanes.push(Lane { label: p.id.clone(), status_of: p.id.clone(), ahu: None, members: vec![p.id.clone()] });
    }
    let aggregate = facility.actuators.len() > max_devices;
    for (h, a) in facility.ahus.iter().enumerate() {
        let kids: Vec<String> = a.children.iter().map(|&c| facility.actuators[c].id.clone()).collect();
        if aggregate {
            let mut members = vec![a.id.clone()];
            members.extend(kids.iter().cloned());
            lanes.push(Lane {
                label: format!("{} ({} devices)", a.id, kids.len()),
                status_of: a.id.clone(),
                ahu: Some(h),
                members,
            });
        } else {
            lanes.push(Lane {
                label: a.id.clone(),
                status_of: a.id.clone(),
                ahu: Some(h),
                members: vec![a.id.clone()],
            });
            for k in kids {
                lanes.push(Lane { label: format!("  {k}"), status_of: k.clone(), ahu: Some(h), members: vec![k] });
            }
        }
    }
    lanes
}

/// A run as a picture: one lane per node (see [`timeline_lanes`]) against clock time, its AHU's
/// phases shaded behind it, its status as the colour of its lower strip, injected faults (the
/// truth) as purple bars above and findings as bars in the severity's colour with their kind and
/// detection latency.
pub fn run_timeline(
    title: &str,
    lanes: &[Lane],
    ahu_ids: &[String],
    events: &[twinfault_core::event::Event],
    start_clock_s: f64,
    duration_s: f64,
    path: &Path,
) -> Result<()> {
    use std::collections::BTreeMap;
    use twinfault_core::event::Event;
    use twinfault_core::types::Status;
    let (w, left, right, top, lane_h) = TIMELINE;
    let h = (top + lane_h * lanes.len() as i32 + 50) as u32;
    let duration_s = duration_s.max(1.0);
    let x_of = |t: f64| left + ((t / duration_s).clamp(0.0, 1.0) * (w as i32 - left - right) as f64) as i32;
    // Phases per AHU, statuses per node, injections per node: (start, end, what).
    let mut phases: BTreeMap<&str, Vec<(f64, twinfault_core::Phase)>> = BTreeMap::new();
    let mut statuses: BTreeMap<&str, Vec<(f64, Status)>> = BTreeMap::new();
    let mut injected: BTreeMap<&str, Vec<(f64, f64, String, String)>> = BTreeMap::new();
    let mut starts: BTreeMap<&str, f64> = BTreeMap::new();
    for e in events {
        let t = e.t().as_secs_f64();
        match e {
            Event::Phase { node, to, .. } => phases.entry(node).or_default().push((t, *to)),
            Event::Status { node, to, .. } => statuses.entry(node).or_default().push((t, *to)),
            Event::InjectionStarted { id, node, kind, severity, .. } => {
                starts.insert(id, t);
                injected.entry(node).or_default().push((
                    t,
                    duration_s,
                    format!("injected {kind} {severity:.1}"),
                    id.clone(),
                ));
            }
            Event::InjectionEnded { id, node, .. } => {
                if let Some(i) = injected.get_mut(node.as_str()).and_then(|v| v.iter_mut().find(|i| i.3 == *id)) {
                    i.1 = t;
                }
            }
            Event::Finding { .. } => {}
        }
    }
    let ledger = twinfault_core::ledger::FaultLedger::of_events(events);
    let faults = ledger.all();
    png(path, (w, h), |root| {
        let font = |s: i32| ("sans-serif", s).into_font();
        root.draw(&Text::new(title.to_string(), (10, 8), font(20))).map_err(err)?;
        // Legend.
        let mut x = 10;
        let legend: Vec<(RGBColor, &str)> = vec![
            (phase_colour(twinfault_core::Phase::Off), "off"),
            (phase_colour(twinfault_core::Phase::Startup), "startup"),
            (phase_colour(twinfault_core::Phase::Occupied), "occupied"),
            (phase_colour(twinfault_core::Phase::Shutdown), "shutdown"),
            (RGBColor(TRUTH_RGB[0], TRUTH_RGB[1], TRUTH_RGB[2]), "injected fault (truth)"),
            (status_colour(Status::Warning), "warning finding / status"),
            (status_colour(Status::Critical), "critical finding / status"),
            (RGBColor(MODEL_RGB[0], MODEL_RGB[1], MODEL_RGB[2]), "model verdict"),
            (status_colour(Status::Healthy), "healthy"),
        ];
        for (c, name) in legend {
            root.draw(&Rectangle::new([(x, 38), (x + 14, 52)], c.filled())).map_err(err)?;
            root.draw(&Rectangle::new([(x, 38), (x + 14, 52)], RGBColor(150, 150, 150))).map_err(err)?;
            root.draw(&Text::new(name.to_string(), (x + 18, 38), font(14))).map_err(err)?;
            x += 26 + 8 * name.len() as i32;
        }
        // Time axis: clock time, about ten ticks on whole minutes.
        let step = [60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0, 43200.0, 86400.0]
            .into_iter()
            .find(|s| duration_s / s <= 12.0)
            .unwrap_or(86400.0);
        let bottom = top + lane_h * lanes.len() as i32;
        let first = ((start_clock_s / step).ceil() * step) - start_clock_s;
        let mut t = first;
        while t <= duration_s {
            let x = x_of(t);
            root.draw(&PathElement::new(vec![(x, top - 4), (x, bottom)], RGBColor(210, 210, 210))).map_err(err)?;
            let c = (start_clock_s + t).rem_euclid(86400.0) as u64;
            let label = format!("{:02}:{:02}", c / 3600, c / 60 % 60);
            root.draw(&Text::new(label, (x - 16, bottom + 6), font(14))).map_err(err)?;
            t += step;
        }
        root.draw(&Text::new("clock time".to_string(), (left, bottom + 26), font(13))).map_err(err)?;
        for (k, lane) in lanes.iter().enumerate() {
            let y0 = top + lane_h * k as i32;
            let y1 = y0 + lane_h - 2;
            // The AHU's phases behind the lane.
            let ph = lane.ahu.and_then(|a| ahu_ids.get(a)).and_then(|id| phases.get(id.as_str()));
            // The plant (no AHU) is not shaded.
            let mut segs = vec![(
                0.0,
                if lane.ahu.is_some() { twinfault_core::Phase::Off } else { twinfault_core::Phase::Occupied },
            )];
            segs.extend(ph.into_iter().flatten().copied());
            for (i, (t0, p)) in segs.iter().enumerate() {
                let t1 = segs.get(i + 1).map_or(duration_s, |s| s.0);
                root.draw(&Rectangle::new([(x_of(*t0), y0), (x_of(t1), y1)], phase_colour(*p).filled()))
                    .map_err(err)?;
            }
            let bold = !lane.label.starts_with(' ');
            root.draw(&Text::new(
                lane.label.trim_start().to_string(),
                (if bold { 8 } else { 22 }, y0 + 9),
                font(if bold { 15 } else { 14 }),
            ))
            .map_err(err)?;
            // Status: the lower strip; a device's counts the findings its AHU raised about it.
            let mut own = vec![(0.0, Status::Healthy)];
            own.extend(statuses.get(lane.status_of.as_str()).into_iter().flatten().copied());
            let about: Vec<(f64, f64, Status)> = faults
                .iter()
                .filter(|f| {
                    f.source == twinfault_core::detect::Source::Rule
                        && f.target() == lane.status_of
                        && f.node != lane.status_of
                })
                .map(|f| {
                    (
                        f.opened_at.as_secs_f64(),
                        f.resolved_at.map_or(f64::INFINITY, |r| r.as_secs_f64()),
                        f.severity.status(),
                    )
                })
                .collect();
            let mut cuts: Vec<f64> = own
                .iter()
                .map(|s| s.0)
                .chain(about.iter().flat_map(|a| [a.0, a.1]))
                .filter(|t| t.is_finite())
                .collect();
            cuts.sort_by(f64::total_cmp);
            cuts.dedup();
            let at = |t: f64| {
                let o = own.iter().rev().find(|s| s.0 <= t).map_or(Status::Healthy, |s| s.1);
                about.iter().filter(|a| a.0 <= t && t < a.1).map(|a| a.2).fold(o, Status::max)
            };
            let segs: Vec<(f64, Status)> = cuts.iter().map(|&t| (t, at(t))).collect();
            for (i, (t0, s)) in segs.iter().enumerate() {
                let t1 = segs.get(i + 1).map_or(duration_s, |s| s.0);
                root.draw(&Rectangle::new([(x_of(*t0), y1 - 6), (x_of(t1), y1)], status_colour(*s).filled()))
                    .map_err(err)?;
            }
            // Truth above, findings below it.
            for m in &lane.members {
                for (t0, t1, what, _) in injected.get(m.as_str()).into_iter().flatten() {
                    let (x0, x1) = (x_of(*t0), x_of(*t1).max(x_of(*t0) + 2));
                    root.draw(&Rectangle::new(
                        [(x0, y0 + 2), (x1, y0 + 11)],
                        RGBColor(TRUTH_RGB[0], TRUTH_RGB[1], TRUTH_RGB[2]).filled(),
                    ))
                    .map_err(err)?;
                    let label = if lane.members.len() > 1 { format!("{m}: {what}") } else { what.clone() };
                    root.draw(&Text::new(label, (x0 + 3, y0 + 1), font(11).color(&WHITE))).map_err(err)?;
                }
            }
            for f in faults.iter().filter(|f| lane.members.iter().any(|m| m == f.target())) {
                let t0 = f.opened_at.as_secs_f64();
                let t1 = f.resolved_at.map_or(duration_s, |r| r.as_secs_f64());
                let colour = if f.source == twinfault_core::detect::Source::Model {
                    RGBColor(MODEL_RGB[0], MODEL_RGB[1], MODEL_RGB[2])
                } else {
                    status_colour(f.severity.status())
                };
                let (x0, x1) = (x_of(t0), x_of(t1).max(x_of(t0) + 2));
                root.draw(&Rectangle::new([(x0, y0 + 13), (x1, y0 + 24)], colour.filled())).map_err(err)?;
                let latency = f.truth.as_deref().and_then(|id| starts.get(id)).map(|s| format!(" +{:.0} s", t0 - s));
                let by = if f.node != f.target() { format!(" (by {})", f.node) } else { String::new() };
                let who = if lane.members.len() > 1 { format!("{}: ", f.target()) } else { String::new() };
                let label = format!(
                    "{who}{}{}{by}",
                    f.kind,
                    latency.unwrap_or_else(|| if f.truth.is_none() { " false alarm".into() } else { String::new() })
                );
                root.draw(&Text::new(label, (x0 + 3, y0 + 12), font(11).color(&WHITE))).map_err(err)?;
            }
            root.draw(&PathElement::new(vec![(left, y1 + 1), (w as i32 - right, y1 + 1)], RGBColor(190, 190, 190)))
                .map_err(err)?;
        }
        Ok(())
    })
}
