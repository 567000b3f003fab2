//! Real telemetry: `serve`, `replay`, and `viz` (which runs the visualizer binary).

use super::*;

pub(super) fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Serve { facility, cluster, shard, plant, config, bind, store, mqtt, topic } => {
            let mut cfg = match &config {
                Some(p) => crate::serve::ServeConfig::load(p)?,
                None => crate::serve::ServeConfig::default(),
            };
            if let Some(b) = &bind {
                cfg.bind = b.clone();
            }
            if let Some(s) = &store {
                cfg.store = s.clone();
            }
            if let (Some(url), Some(topic)) = (mqtt, topic) {
                cfg.mqtt = Some(match cfg.mqtt.take() {
                    // The flags name the broker and topic; the session settings stay the config's.
                    Some(m) => crate::serve::MqttConfig { url, topic, ..m },
                    None => crate::serve::MqttConfig::new(url, topic),
                });
            }
            if cfg.tokens.is_empty() {
                eprintln!(
                    "warning: no tokens configured: ingest and every write endpoint will refuse requests (see serve.example.toml)"
                );
            }
            if let Some(path) = cluster {
                let c = crate::serve::cluster::Cluster::load(&path)?;
                if plant {
                    cfg.bind = bind.unwrap_or_else(|| c.plant.bind.clone());
                    crate::serve::cluster::plant::serve(c, cfg)?;
                    return Ok(ExitCode::SUCCESS);
                }
                let Some(name) = shard else {
                    anyhow::bail!("--cluster needs --shard NAME or --plant");
                };
                let (_, def) = c.shard(&name)?;
                cfg.bind = bind.unwrap_or_else(|| def.bind.clone());
                cfg.store = store.unwrap_or_else(|| def.store.clone());
                crate::serve::serve_shard(c, &name, cfg)?;
                return Ok(ExitCode::SUCCESS);
            }
            let facility = facility.expect("clap requires --facility without --cluster");
            if let crate::validate::FileKind::Fleet = crate::validate::file_kind(&facility)? {
                anyhow::ensure!(cfg.mqtt.is_none(), "a fleet is served over HTTP only (no MQTT yet)");
                crate::serve::fleet::serve(&facility, cfg)?;
                return Ok(ExitCode::SUCCESS);
            }
            crate::serve::serve(&facility, cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            file,
            facility,
            node,
            map,
            speed,
            as_fast_as_possible: _,
            labels,
            report,
            json,
            strict,
            events,
        } => {
            if let Some(s) = speed {
                anyhow::ensure!(s.is_finite() && s > 0.0, "--speed must be a positive number");
            }
            if let crate::validate::FileKind::Fleet = crate::validate::file_kind(&facility)? {
                anyhow::ensure!(
                    map.as_deref().is_none_or(|m| m == std::path::Path::new("cmapss")),
                    "a fleet replays C-MAPSS files: --map cmapss (or none)"
                );
                anyhow::ensure!(
                    node.is_none(),
                    "a C-MAPSS file names its engines by unit number: --node does not apply"
                );
                let fleet = crate::fleet::cmapss::load_fleet(&facility)?;
                let rul = labels.clone().or_else(|| crate::fleet::actors::rul_beside(&file));
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                // C-MAPSS cycles carry no time of day: --speed is cycles per second per engine.
                let pace = crate::fleet::actors::ReplayPace { cycles_per_s: speed, live: !json };
                if !json {
                    println!("replaying {} into {} ...", file.display(), fleet.file.id);
                }
                let r = crate::fleet::actors::replay(&file, &fleet, rul.as_deref(), threads, pace)?;
                let lines = crate::sim::runner::log_lines(&r.events)?;
                if let Some(p) = &events {
                    write_out(p, &lines.iter().map(|l| format!("{l}\n")).collect::<String>())?;
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", r.render(false));
                    println!(
                        "event log: {} events, sha256 {}",
                        lines.len(),
                        &crate::sim::runner::hash_lines(&lines)[..16]
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::ensure!(
                events.is_none(),
                "--events writes a fleet replay's event log; a telemetry replay's findings are in --json"
            );
            anyhow::ensure!(
                map.as_deref() != Some(std::path::Path::new("cmapss")),
                "--map cmapss replays into a fleet file (kind = \"fleet\", e.g. twins/turbofan_fleet.toml); {} is not one",
                facility.display()
            );
            let cfg = crate::serve::ServeConfig::default();
            let f = crate::serve::facility(&facility, &cfg)?;
            if let Some(m) = map
                .as_ref()
                .map(|m| crate::telemetry::replay::Mapping::load(m))
                .transpose()?
                .filter(|m| m.target == "ahu")
            {
                let r = crate::telemetry::replay::replay_ahu(&file, &f, &m, labels.as_deref(), strict)?;
                r.reading.warn();
                if let Some(dir) = &report {
                    let (json_path, png_path) = crate::telemetry::replay::write_day_report(&r, dir)?;
                    eprintln!("wrote {} and {}", json_path.display(), png_path.display());
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!("replayed {} rows of {}", r.rows, r.file);
                    let mut rows = vec![vec![
                        "day".to_string(),
                        "label".into(),
                        "findings".into(),
                        "fork: top hypothesis (fit mixed/supply K)".into(),
                        "runner-up".into(),
                        "right".into(),
                    ]];
                    for d in &r.days {
                        let (top, next) = match &d.fork {
                            Some(k) => (
                                format!("{} ({:.1}/{:.1})", k.top, k.fit_mixed_c, k.fit_supply_c),
                                k.runner_up.clone().unwrap_or_default(),
                            ),
                            None => ("-".into(), "-".into()),
                        };
                        rows.push(vec![
                            d.date.clone(),
                            d.label.clone().unwrap_or_else(|| "-".into()),
                            if d.findings.is_empty() { "-".into() } else { d.findings.join(", ") },
                            top,
                            next,
                            d.right_component.map_or("-", |r| if r { "yes" } else { "no" }).into(),
                        ]);
                    }
                    print!("{}", render::table(&rows));
                    if let (Some((a, b)), Some((c, d))) = (r.faulted_days_flagged, r.unfaulted_days_flagged) {
                        println!("faulted days flagged: {a} of {b}; unfaulted days flagged: {c} of {d}");
                    }
                    if let Some((a, b)) = r.right_component_first {
                        println!("right component first: {a} of {b} faulted days");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::ensure!(
                report.is_none(),
                "--report writes an AHU trend log's per-day report (a mapping with target = \"ahu\"); {} is not one",
                file.display()
            );
            let r = crate::telemetry::replay::replay(
                &file,
                &f,
                &crate::telemetry::replay::ReplayOptions { node, map, speed, strict },
            )?;
            r.reading.warn();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "replayed {} samples of {} from {} ({} to {})",
                    r.samples,
                    r.nodes.join(", "),
                    r.file,
                    r.time(r.first_ms),
                    r.time(r.last_ms)
                );
                let mut rows = vec![vec![
                    "opened".to_string(),
                    "after".into(),
                    "resolved".into(),
                    "node".into(),
                    "kind".into(),
                    "severity".into(),
                    "evidence".into(),
                    "summary".into(),
                ]];
                for f in &r.findings {
                    rows.push(vec![
                        r.time(f.opened_at_ms),
                        format!("{:.1} s", f.after_s),
                        f.resolved_at_ms.map_or("open".into(), |t| r.time(t)),
                        f.node.clone(),
                        f.kind.clone(),
                        if f.source == "model" { "model".into() } else { f.severity.clone() },
                        match f.threshold {
                            Some(th) => format!("{:.2} vs {:.2} {}", f.value, th, f.unit),
                            None => format!("{:.2}", f.value),
                        },
                        f.summary.clone(),
                    ]);
                }
                if r.findings.is_empty() {
                    println!("findings: none");
                } else {
                    print!("{}", render::table(&rows));
                }
                let st: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("statuses: {}", st.join(", "));
                for v in &r.verdicts {
                    let model = if v.model_kinds.is_empty() {
                        String::new()
                    } else {
                        format!("; learned classifier: {}", v.model_kinds.join(", "))
                    };
                    let kinds = if v.kinds.is_empty() { String::new() } else { format!(": {}", v.kinds.join(", ")) };
                    println!(
                        "verdict {}: {}{kinds} ({} samples over {:.1} s){model}",
                        v.node, v.result, v.samples, v.span_s
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Viz { args } => {
            let exe = std::env::current_exe().context("cannot find this program's path")?;
            let viz = exe.with_file_name(format!("twinfault-viz{}", std::env::consts::EXE_SUFFIX));
            anyhow::ensure!(
                viz.exists(),
                "the visualizer is not built next to {}: cargo build --release -p twinfault-viz (or cargo run --release -p twinfault-viz -- …)",
                exe.display()
            );
            let status = std::process::Command::new(&viz)
                .args(&args)
                .status()
                .with_context(|| format!("cannot run {}", viz.display()))?;
            Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8)
            })
        }
        _ => unreachable!("dispatched to {} by cli::dispatch", module_path!()),
    }
}
