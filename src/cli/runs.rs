//! Scenario runs and the store: `run`, `validate`, `list`, `runs`, `show`, `history`, `audit`, `bench`.

use super::*;

pub(super) fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run {
            scenario,
            seed,
            threads,
            store,
            no_store,
            json,
            events,
            chart,
            realtime,
            speed,
            quiet,
            campus,
        } => {
            let loaded = crate::load::scenario(&scenario, campus.size())?;
            let opts = RunOptions {
                threads,
                store: (!no_store).then_some(store.store),
                speed: if realtime { Some(1.0) } else { speed },
                progress: !quiet,
                seed,
            };
            if let Some(s) = opts.speed {
                anyhow::ensure!(s.is_finite() && s > 0.0, "--speed must be a positive number");
            }
            let r = run(&loaded, &opts)?;
            if let Some(p) = &events {
                write_out(p, &r.log_lines.iter().map(|l| format!("{l}\n")).collect::<String>())?;
            }
            if let Some(p) = &chart {
                let evs = parse_events(&r.log_lines)?;
                draw_timeline(p, &r.report, Some(&loaded.facility), &evs, loaded.scenario.start_clock_s)?;
            }
            let json_text = serde_json::to_string_pretty(&r.report)?;
            match &json {
                Some(p) if p.as_os_str() == "-" => println!("{json_text}"),
                other => {
                    if let Some(p) = other {
                        write_out(p, &json_text)?;
                    }
                    print!("{}", render::report(&r.report));
                    println!("wall time {:.2} s", r.wall_s);
                    if let Some(id) = &r.run_id {
                        println!("stored as {id} (twinfault show {id})");
                    }
                }
            }
            if !r.report.passed {
                eprintln!("reproduce with: twinfault run {} --seed {}", scenario.display(), r.report.seed);
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { files } => {
            for f in &files {
                let line = crate::validate::validate(f)?;
                println!("{}: ok: {line}", f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { dirs } => {
            let dirs = if dirs.is_empty() { vec![PathBuf::from("scenarios"), PathBuf::from("twins")] } else { dirs };
            let mut rows = vec![vec!["file".to_string(), "what".into()]];
            for d in dirs {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                    .with_context(|| format!("cannot list {}", d.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                files.sort();
                for f in files {
                    let what = match crate::validate::validate(&f) {
                        Ok(s) => s,
                        Err(e) => format!("INVALID: {}", format_error(&e)),
                    };
                    rows.push(vec![f.display().to_string(), what]);
                }
            }
            print!("{}", render::table(&rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { store, from, limit, json } => {
            let s = Store::open_existing(&store.store)?;
            let (entries, next) = s.audit()?.page(from, limit.clamp(1, 100_000))?;
            if json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e)?);
                }
            } else {
                let mut rows = vec![vec![
                    "seq".to_string(),
                    "at".into(),
                    "who".into(),
                    "tool".into(),
                    "outcome".into(),
                    "arguments".into(),
                    "detail".into(),
                ]];
                for e in &entries {
                    rows.push(vec![
                        e.seq.to_string(),
                        e.at.clone(),
                        e.who.clone(),
                        e.tool.clone(),
                        serde_json::to_value(e.outcome)?.as_str().unwrap_or_default().to_string(),
                        e.arguments.to_string(),
                        e.detail.clone(),
                    ]);
                }
                print!("{}", render::table(&rows));
                if let Some(n) = next {
                    println!("more: twinfault audit --from {n}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { store } => {
            let s = Store::open_existing(&store.store)?;
            let mut rows = vec![vec![
                "run".to_string(),
                "scenario".into(),
                "seed".into(),
                "result".into(),
                "detections".into(),
                "false alarms".into(),
                "wall".into(),
                "event log sha256".into(),
            ]];
            for r in s.runs()? {
                rows.push(vec![
                    r.id,
                    r.scenario,
                    r.seed.to_string(),
                    if r.report.passed { "PASS".into() } else { "FAIL".into() },
                    r.report.detections.len().to_string(),
                    r.report.false_alarms.to_string(),
                    format!("{:.1} s", r.wall_s),
                    r.report.event_log_sha256[..16].to_string(),
                ]);
            }
            print!("{}", render::table(&rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { run, store, faults, events, json, chart } => {
            let s = Store::open_existing(&store.store)?;
            let id = resolve_run(&s, &run)?;
            let r = s.run(&id)?;
            if let Some(p) = &chart {
                let evs = parse_events(&s.events(&id)?)?;
                // The facility and clock from the scenario file, if it still is what ran.
                let loaded = crate::load::scenario(std::path::Path::new(&r.scenario_path), None)
                    .ok()
                    .filter(|l| crate::sim::runner::sha256_hex(l.scenario_text.as_bytes()) == r.scenario_sha256);
                if loaded.is_none() {
                    eprintln!(
                        "note: {} has changed or moved since the run: one lane per node in the event log, clock from 00:00",
                        r.scenario_path
                    );
                }
                let clock = loaded.as_ref().map_or(0.0, |l| l.scenario.start_clock_s);
                draw_timeline(p, &r.report, loaded.as_ref().map(|l| &l.facility), &evs, clock)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{}  {} (sha256 {})  facility {}  seed {}  threads {}",
                    r.id,
                    r.scenario_path,
                    &r.scenario_sha256[..16],
                    r.facility,
                    r.seed,
                    r.threads
                );
                print!("{}", render::report(&r.report));
            }
            if faults {
                let mut rows = vec![vec![
                    "fault".to_string(),
                    "node".into(),
                    "kind".into(),
                    "severity".into(),
                    "opened".into(),
                    "resolved".into(),
                    "updates".into(),
                    "truth".into(),
                ]];
                for f in s.faults(&id)? {
                    rows.push(vec![
                        f.id,
                        f.device.map_or(f.node.clone(), |d| format!("{d} (via {})", f.node)),
                        f.kind.to_string(),
                        format!("{:?}", f.severity).to_lowercase(),
                        f.opened_at.to_string(),
                        f.resolved_at.map_or("open".into(), |t| t.to_string()),
                        f.updates.to_string(),
                        f.truth.unwrap_or_else(|| "-".into()),
                    ]);
                }
                print!("{}", render::table(&rows));
            }
            if events {
                for l in s.events(&id)? {
                    println!("{l}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { run, node, metric, from, to, limit, store } => {
            let s = Store::open_existing(&store.store)?;
            let id = resolve_run(&s, &run)?;
            s.run(&id)?;
            let nodes = s.history_nodes(&id)?;
            anyhow::ensure!(
                nodes.contains(&node),
                "no history for node \"{node}\" in {id} (nodes with history: {})",
                nodes.join(", ")
            );
            anyhow::ensure!(from.is_finite() && from >= 0.0, "--from must be a time in seconds");
            let to = to.map_or(SimTime(u64::MAX), SimTime::from_secs_f64);
            let page = s.history(&id, &node, &metric, SimTime::from_secs_f64(from), to, limit)?;
            println!("t_s,{metric}");
            for (t, v) in &page.points {
                // Samples are stored as f32; print them at that precision.
                println!("{:.3},{}", t.as_secs_f64(), *v as f32);
            }
            if let Some(next) = page.next_from {
                eprintln!("more: --from {:.3}", next.as_secs_f64());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            crate::sim::bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("dispatched to {} by cli::dispatch", module_path!()),
    }
}

fn parse_events(lines: &[String]) -> Result<Vec<twinfault_core::event::Event>> {
    lines
        .iter()
        .enumerate()
        .map(|(k, l)| serde_json::from_str(l).with_context(|| format!("event log line {}", k + 1)))
        .collect()
}

/// Devices beyond which a run is drawn one lane per AHU.
const CHART_MAX_DEVICES: usize = 60;

/// The run's timeline PNG (see [`crate::dataset::charts::run_timeline`]); without its facility,
/// one lane per node that has an event.
fn draw_timeline(
    path: &std::path::Path,
    report: &twinfault_core::report::Report,
    facility: Option<&twinfault_core::config::Facility>,
    events: &[twinfault_core::event::Event],
    start_clock_s: f64,
) -> Result<()> {
    use crate::dataset::charts::{Lane, run_timeline, timeline_lanes};
    let (lanes, ahus) = match facility {
        Some(f) => (timeline_lanes(f, CHART_MAX_DEVICES), f.ahus.iter().map(|a| a.id.clone()).collect()),
        None => {
            let nodes: std::collections::BTreeSet<String> = events
                .iter()
                .filter_map(|e| match e {
                    twinfault_core::event::Event::Status { node, .. }
                    | twinfault_core::event::Event::Finding { node, .. } => Some(node.clone()),
                    _ => None,
                })
                .collect();
            let lanes = nodes
                .into_iter()
                .map(|n| Lane { label: n.clone(), status_of: n.clone(), ahu: None, members: vec![n] })
                .collect();
            (lanes, Vec::new())
        }
    };
    let title = format!(
        "{}  ·  seed {}  ·  {:.1} h  ·  {}  ·  event log {}",
        report.scenario,
        report.seed,
        report.duration_s / 3600.0,
        if report.passed { "passed" } else { "FAILED" },
        &report.event_log_sha256[..12.min(report.event_log_sha256.len())]
    );
    run_timeline(&title, &lanes, &ahus, events, start_clock_s, report.duration_s, path)?;
    println!("chart: {} ({} lanes)", path.display(), lanes.len());
    Ok(())
}
