//! Runs a scenario through the actor engine: the clock loop, pacing, progress, the event log's
//! hash, the report and the store.

use crate::load::Loaded;
use crate::sim::engine::{Engine, Finish, RunEpoch};
use crate::store::{RunRecord, Store};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinfault_core::event::Event;
use twinfault_core::plain::Setup;
use twinfault_core::report::{self, Report};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads for the actors (1 = all on the main thread).
    pub threads: usize,
    /// Store directory; `None` runs without a store.
    pub store: Option<PathBuf>,
    /// Pace simulated time at this multiple of the wall clock; `None` is as fast as possible.
    pub speed: Option<f64>,
    pub progress: bool,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
}

pub struct RunResult {
    pub report: Report,
    pub run_id: Option<String>,
    /// The event log, one JSON object per line (what the hash covers).
    pub log_lines: Vec<String>,
    pub wall_s: f64,
}

/// SHA-256 of the log lines, each followed by a newline, as hex.
pub fn hash_lines(lines: &[String]) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Serialises the event log, one line per event.
pub fn log_lines(events: &[Event]) -> Result<Vec<String>> {
    events.iter().map(|e| serde_json::to_string(e).context("serialising an event")).collect()
}

/// Runs a loaded scenario to the end.
pub fn run(loaded: &Loaded, opts: &RunOptions) -> Result<RunResult> {
    run_then(loaded, opts, |_, _| std::future::ready(())).map(|(r, ())| r)
}

/// The twins of a finished run, still running: what `agent-eval` asks as a server's tools ask
/// theirs.
pub struct Twins {
    pub actuators: Vec<actix::Addr<crate::sim::engine::ActuatorActor>>,
    pub ahus: Vec<actix::Addr<crate::sim::engine::AhuActor>>,
}

/// As [`run`], then `then` with the still-running twins and the event log, inside the run's actor
/// system (the twins stop when it returns).
pub fn run_then<T, F: std::future::Future<Output = T>>(
    loaded: &Loaded,
    opts: &RunOptions,
    then: impl FnOnce(Twins, &[Event]) -> F,
) -> Result<(RunResult, T)> {
    let mut scenario = loaded.scenario.clone();
    if let Some(seed) = opts.seed {
        scenario.seed = seed;
    }
    let store = opts.store.as_deref().map(Store::open).transpose()?;
    let seq = store.as_ref().map(Store::next_run).transpose()?;
    let facility = Arc::new(loaded.facility.clone());
    let retention_s = scenario.history_retention_s.unwrap_or(crate::store::DEFAULT_RETENTION_S);
    let started = Instant::now();
    let started_unix_s = (crate::clock::now_ms() / 1000).max(0) as u64;

    let history_store = store.clone();
    let history_errors = Arc::new(std::sync::Mutex::new(None::<anyhow::Error>));
    let history_errors_sink = Arc::clone(&history_errors);
    let sink: crate::sim::engine::HistorySink = Box::new(move |node, block| {
        if let (Some(s), Some(seq)) = (history_store.as_ref(), seq)
            && let Err(e) = s.put_history(seq, node, &block, retention_s)
        {
            history_errors_sink.lock().expect("not poisoned").get_or_insert(e);
        }
    });

    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::new(scenario.duration.0 / 1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:40}] {pos}/{len} sim-s ({per_sec}, eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(scenario.name.clone());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let setup = Setup::new(&scenario, &facility, store.is_some());
    let threads = opts.threads.max(1);
    let speed = opts.speed;
    let injections = scenario.injections.clone();
    let duration = scenario.duration;
    let bar2 = bar.clone();
    let (events, after) = actix::System::new().block_on(async move {
        let engine = Engine::start(setup, facility, injections, duration, threads, sink);
        let wall0 = Instant::now();
        for e in 0..engine.epochs {
            engine.supervisor.send(RunEpoch(e)).await.context("the supervisor stopped")?;
            let t1 = engine.grid.epoch_start(e + 1);
            bar2.set_position(t1.0 / 1000);
            if let Some(speed) = speed {
                let due = Duration::from_secs_f64(t1.as_secs_f64() / speed);
                if let Some(wait) = due.checked_sub(wall0.elapsed()) {
                    actix::clock::sleep(wait).await;
                }
            }
        }
        let log: Vec<Event> = engine.supervisor.send(Finish).await.context("the supervisor stopped")?;
        let twins = Twins { actuators: engine.actuators.clone(), ahus: engine.ahus.clone() };
        let after = then(twins, &log).await;
        anyhow::Ok((log, after))
    })?;
    bar.finish_and_clear();
    if let Some(e) = history_errors.lock().expect("not poisoned").take() {
        return Err(e.context("writing history to the store"));
    }
    let lines = log_lines(&events)?;
    let hash = hash_lines(&lines);
    let report = report::build(&scenario, &events, &hash);
    let wall_s = started.elapsed().as_secs_f64();
    let run_id = match (store, seq) {
        (Some(store), Some(seq)) => {
            let record = RunRecord {
                id: Store::run_id(seq),
                scenario: scenario.name.clone(),
                scenario_path: loaded.scenario_path.display().to_string(),
                scenario_sha256: sha256_hex(loaded.scenario_text.as_bytes()),
                facility: loaded.facility.name.clone(),
                seed: scenario.seed,
                threads,
                started_unix_s,
                wall_s,
                report: report.clone(),
            };
            store.put_run(seq, &record, &lines, &events)?;
            Some(record.id)
        }
        _ => None,
    };
    Ok((RunResult { report, run_id, log_lines: lines, wall_s }, after))
}
