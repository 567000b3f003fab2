//! Models and data: `calibrate`, `generate`, `evaluate`, `train`, `realism`.

use super::*;

pub(super) fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Calibrate { rig, template, strict, faults, fit, out } => {
            if fit {
                let out = out.context("--fit needs --out")?;
                return calibrate_fit(&template, &rig, &out, strict);
            }
            let text =
                std::fs::read_to_string(&template).with_context(|| format!("cannot read {}", template.display()))?;
            let t = std::sync::Arc::new(twinfault_core::config::ActuatorTemplate::parse(
                &text,
                &template.display().to_string(),
            )?);
            if faults {
                let figures = crate::calibrate::fault_signatures(&t, 1);
                let mut rows = vec![vec![
                    "kind".to_string(),
                    "figure".into(),
                    "real (domain.md)".into(),
                    "model".into(),
                    "tolerance".into(),
                    "result".into(),
                ]];
                for f in &figures {
                    rows.push(vec![
                        f.kind.to_string(),
                        f.name.into(),
                        format!("{:.3}", f.real),
                        format!("{:.3}", f.model),
                        format!("±{:.3}", f.allowed),
                        if f.ok() { "ok".into() } else { "OUT".into() },
                    ]);
                }
                print!("{}", render::table(&rows));
                return Ok(if figures.iter().all(|f| f.ok()) { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
            let results = crate::calibrate::check(&t, &rig, strict)?;
            anyhow::ensure!(!results.is_empty(), "no rig recordings under {}", rig.display());
            let mut rows = vec![vec![
                "recording".to_string(),
                "figure".into(),
                "rig".into(),
                "model".into(),
                "tolerance".into(),
                "result".into(),
            ]];
            let mut all_ok = true;
            for (name, cmp) in &results {
                for c in cmp {
                    all_ok &= c.ok();
                    rows.push(vec![
                        name.clone(),
                        c.name.into(),
                        format!("{:.3}", c.rig),
                        format!("{:.3}", c.model),
                        format!("±{:.3}", c.allowed),
                        if c.skipped {
                            "n/a (few samples)".into()
                        } else if c.ok() {
                            "ok".into()
                        } else {
                            "OUT".into()
                        },
                    ]);
                }
            }
            print!("{}", render::table(&rows));
            Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Generate { campaign, out, runs, seed, jobs, format, shard, merge } => {
            if !merge.is_empty() {
                crate::dataset::generate::merge(&merge, &out)?;
                println!("{} parts merged into {}", merge.len(), out.display());
                return Ok(ExitCode::SUCCESS);
            }
            let campaign = campaign.context("--campaign is required (or --merge)")?;
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let req = crate::dataset::generate::Request {
                campaign,
                shard,
                out: out.clone(),
                runs,
                seed,
                jobs,
                format,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let s = crate::dataset::generate::generate(&req)?;
            println!(
                "{} runs written ({} rejected) to {}: {} labelled samples, {} windows in {:.1} s ({:.2} M samples/s with {jobs} jobs)",
                s.runs_written,
                s.runs_rejected,
                out.display(),
                s.samples,
                s.windows,
                s.seconds,
                s.samples as f64 / s.seconds / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate { cmapss: CmapssArgs { dir: Some(dir), subset, template }, model, json, .. } => {
            let t = crate::fleet::cmapss::load_template(&template)?;
            let s = crate::fleet::cmapss::Subset::new(&dir, &subset)?;
            let model = match model {
                Some(p) => {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
                    Some(twinfault_core::asset::HealthModel::from_json(&text, &p.display().to_string(), &t)?)
                }
                None => None,
            };
            let b = crate::fleet::cmapss::benchmark(&t, &s, model)?;
            print!("{}", b.table());
            let json = json.unwrap_or_else(|| PathBuf::from(format!("cmapss-{subset}.json")));
            std::fs::write(&json, serde_json::to_string_pretty(&b)? + "\n")
                .with_context(|| format!("cannot write {}", json.display()))?;
            let png = json.with_extension("png");
            b.chart(&png)?;
            println!("written: {}, {}", json.display(), png.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate {
            data, real, node, map, labels, window_s, detector, split, json, facility, strict, ..
        } => {
            use crate::dataset::evaluate::{Dataset, RealLog};
            let det = crate::dataset::evaluate::Detector::parse(&detector)?;
            let (ds, split) = match (&data, &real) {
                (Some(d), _) => (Dataset::load(d, facility.as_deref())?, (split != "all").then_some(split)),
                (None, Some(file)) => {
                    anyhow::ensure!(window_s >= 2.0 && window_s.is_finite(), "--window-s must be at least 2");
                    let log = RealLog {
                        file,
                        facility: facility.as_deref().context("--facility is required with --real")?,
                        node: node.as_deref().context("--node is required with --real")?,
                        map: map.as_deref(),
                        label_column: labels.as_deref().context("--labels is required with --real")?,
                        window: twinfault_core::campaign::WindowSpec { length_s: window_s, stride_s: window_s / 2.0 },
                        strict,
                    };
                    (Dataset::from_real(&log)?, None)
                }
                (None, None) => anyhow::bail!("--data or --real is required"),
            };
            // Results go next to a dataset; for a real log (often in a read-only folder), here.
            let data = if real.is_some() { PathBuf::from(".") } else { ds.dir.clone() };
            let e = crate::dataset::evaluate::evaluate(&ds, &det, split.as_deref())?;
            print!("{}", crate::dataset::evaluate::render(&e));
            let json = json.unwrap_or_else(|| data.join(format!("evaluation-{}.json", det.name())));
            std::fs::write(&json, serde_json::to_string_pretty(&e)? + "\n")
                .with_context(|| format!("cannot write {}", json.display()))?;
            let (cm, hist) = (json.with_extension("confusion.png"), json.with_extension("latency.png"));
            let title = format!("{} on {} runs ({})", e.detector, e.runs, e.split.as_deref().unwrap_or("all splits"));
            crate::dataset::charts::confusion(&e.confusion, &format!("confusion: {title}"), &cm)?;
            let lat: Vec<f64> = e.detections.iter().filter_map(|d| d.latency_s).collect();
            crate::dataset::charts::latency_histogram(&lat, &format!("detection latency: {title}"), &hist)?;
            println!("written: {}, {}, {}", json.display(), cm.display(), hist.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train { cmapss: CmapssArgs { dir: Some(dir), subset, template }, out, .. } => {
            let t = crate::fleet::cmapss::load_template(&template)?;
            let s = crate::fleet::cmapss::Subset::new(&dir, &subset)?;
            let m = crate::fleet::cmapss::train(&t, &s.train)?;
            std::fs::write(&out, serde_json::to_string_pretty(&m)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "trained on {}: {} operating regime(s); deployed detector {} (threshold {:.2}); engine-wise 5-fold row F1 on train: RUL estimate {:.3}, health index {:.3}; model written to {}",
                m.trained_on,
                m.regimes.len(),
                if m.detector == twinfault_core::asset::DetectorChoice::HealthIndex {
                    "health index"
                } else {
                    "RUL estimate"
                },
                m.threshold,
                m.cv.rul,
                m.cv.health_index,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Train { data, out, trees, seed, facility, .. } => {
            let data = data.context("--data or --cmapss is required")?;
            let params =
                crate::dataset::model::TrainParams { trees, seed, ..crate::dataset::model::TrainParams::default() };
            let t = crate::dataset::train::train(&data, &out, params, facility.as_deref())?;
            println!(
                "trained on {} windows in {:.1} s; model written to {}",
                t.windows,
                t.seconds,
                t.model_path.display()
            );
            for e in &t.held_out {
                print!("{}", crate::dataset::evaluate::render(e));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Realism { real, synthetic, window_s, min_moving, out, facility, strict } => {
            anyhow::ensure!(window_s >= 1.0 && window_s.is_finite(), "--window-s must be at least 1");
            anyhow::ensure!((0.0..=1.0).contains(&min_moving), "--min-moving must be within 0..=1");
            let r = crate::dataset::realism::run(&real, &synthetic, window_s, min_moving, facility.as_deref(), strict)?;
            print!("{}", crate::dataset::realism::render(&r));
            let prefix = out.unwrap_or_else(|| synthetic.join("realism"));
            let (json, png) = (prefix.with_extension("json"), prefix.with_extension("png"));
            std::fs::write(&json, serde_json::to_string_pretty(&r)? + "\n")
                .with_context(|| format!("cannot write {}", json.display()))?;
            crate::dataset::charts::realism(&r.ks, r.mmd, r.knn_mixing, &png)?;
            println!("written: {}, {}", json.display(), png.display());
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("dispatched to {} by cli::dispatch", module_path!()),
    }
}
