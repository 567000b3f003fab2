//! `twinfault bench`: actuator-steps per second of the actor engine against the same models in a
//! plain loop, and resident memory per actuator twin, on generated campuses.

use crate::sim::engine::{Engine, Finish, RunEpoch};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use twinfault_core::config::Facility;
use twinfault_core::plain::{Run, Setup};
use twinfault_core::scenario::{CampusSize, Scenario};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Campus file to generate facilities from.
    #[arg(long, default_value = "twins/campus.toml")]
    pub facility: PathBuf,
    /// Facility sizes in actuators (100 per AHU).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub sizes: Vec<usize>,
    /// Simulated time per measurement [s].
    #[arg(long, default_value_t = 600.0)]
    pub sim_s: f64,
    /// Sample rate of every actuator [Hz].
    #[arg(long, default_value_t = 1.0)]
    pub sample_rate_hz: f64,
    /// Control period: samples per actor message = rate × period [s].
    #[arg(long, default_value_t = 10.0)]
    pub control_period_s: f64,
    /// Worker threads for the actor engine (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Time the engine only, without the plain loop's reference (at a million twins the
    /// reference's own twins set the process's peak memory and double the set-up).
    #[arg(long)]
    pub engine_only: bool,
    /// Instead: time the AHU's counterfactual fork on this trend log (the unit learned from the
    /// log, then the fork run on the window before every hour of it).
    #[arg(long)]
    pub fork: Option<PathBuf>,
    /// The fork bench's mapping and facility.
    #[arg(long, default_value = "maps/lbnl-ahu.toml")]
    pub fork_map: PathBuf,
    #[arg(long, default_value = "twins/lbnl_szvav.toml")]
    pub fork_facility: PathBuf,
}

/// Times the fork on a trend log: learning the unit once, then one diagnosis per hour of log
/// (the window before it, as when a finding opens then) where the unit ran in that window.
pub fn fork(args: &BenchArgs, log: &std::path::Path) -> Result<()> {
    use std::time::Instant;
    let facility = crate::serve::facility(&args.fork_facility, &crate::serve::ServeConfig::default())?;
    let map = crate::telemetry::replay::Mapping::load(&args.fork_map)?;
    let mut read = crate::telemetry::replay::read_ahu_log(log, &facility, &map, false)?;
    read.reading.warn();
    let started = Instant::now();
    read.ahu.learn_unit(&read.rows);
    let learn_s = started.elapsed().as_secs_f64();
    let history = read.ahu.history_of(&read.rows);
    let window_s = facility.ahus.iter().find(|a| a.id == read.node).map_or(7200.0, |a| a.template.fork.window_s);
    let window_ms = (window_s * 1000.0) as u64;
    let (mut times_ms, mut samples, mut hypotheses) = (Vec::new(), Vec::new(), 0);
    let mut start = 0;
    let mut next_hour = history.first().map_or(0, |s| s.t.0 + 3_600_000);
    for end in 0..history.len() {
        if history[end].t.0 < next_hour {
            continue;
        }
        next_hour += 3_600_000;
        while history[start].t.0 + window_ms < history[end].t.0 {
            start += 1;
        }
        let window = &history[start..=end];
        // Only where a finding could open: the unit has been operating in the window.
        if window.iter().filter(|s| s.operating).count() < 30 {
            continue;
        }
        let t0 = Instant::now();
        let r = read.ahu.fork_on(window);
        times_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        samples.push(r.samples);
        hypotheses = hypotheses.max(r.ranked.len());
    }
    anyhow::ensure!(!times_ms.is_empty(), "{}: under an hour of rows, nothing to time", log.display());
    times_ms.sort_by(f64::total_cmp);
    let q = |p: f64| times_ms[((times_ms.len() - 1) as f64 * p).round() as usize];
    let operating = samples.iter().copied().max().unwrap_or(0);
    println!(
        "fork on {}: {} rows; unit learned in {:.2} s; {} diagnoses (windows of up to {} operating samples, {} hypotheses each): median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        log.display(),
        read.rows.len(),
        learn_s,
        times_ms.len(),
        operating,
        hypotheses,
        q(0.5),
        q(0.95),
        q(1.0)
    );
    Ok(())
}

/// Resident set size of this process [bytes] (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// The process's peak resident set size [bytes] (Linux's `VmHWM`; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn scenario(args: &BenchArgs) -> Result<Scenario> {
    let text = format!(
        "name = \"bench\"\nfacility = \"-\"\nseed = 1\nduration_s = {}\nsample_rate_hz = {}\ncontrol_period_s = {}\n\
         [schedule]\nmode = \"always_on\"\nstartup_s = 60\n[weather]\noutdoor_mean_c = 20.0\noutdoor_amplitude_c = 5.0\n",
        args.sim_s, args.sample_rate_hz, args.control_period_s
    );
    Ok(Scenario::parse(&text, "bench")?)
}

fn facility(args: &BenchArgs, n: usize) -> Result<Facility> {
    let per_ahu = n.min(100);
    let size = CampusSize { ahus: n.div_ceil(per_ahu), actuators_per_ahu: per_ahu };
    crate::load::facility(&args.facility, Some(size)).with_context(|| format!("loading {}", args.facility.display()))
}

pub struct Measurement {
    pub actuators: usize,
    pub engine_steps_per_s: f64,
    /// `None` with `--engine-only`.
    pub plain_steps_per_s: Option<f64>,
    pub engine_bytes_per_twin: f64,
    pub realtime_factor: f64,
}

fn measure_plain(s: &Scenario, f: &Arc<Facility>) -> f64 {
    let mut run = Run::new(s, Arc::clone(f), false);
    let (epochs, samples_per_epoch) = (run.epochs(), run.setup.grid.samples_per_epoch);
    let t = Instant::now();
    while run.step().is_some() {}
    let steps = (f.actuators.len() as u64 * epochs * samples_per_epoch) as f64;
    steps / t.elapsed().as_secs_f64()
}

fn measure_engine(s: &Scenario, facility: Arc<Facility>, threads: usize) -> Result<(f64, f64)> {
    let n = facility.actuators.len();
    let rss0 = rss_bytes();
    let setup = Setup::new(s, &facility, false);
    let duration = s.duration;
    actix::System::new().block_on(async move {
        let engine = Engine::start(setup, Arc::clone(&facility), Vec::new(), duration, threads, Box::new(|_, _| {}));
        // Let every arbiter start its actors before measuring memory.
        engine.supervisor.send(RunEpoch(0)).await?;
        let bytes_per_twin = rss_bytes().saturating_sub(rss0) as f64 / n as f64;
        let t = Instant::now();
        for e in 1..engine.epochs {
            engine.supervisor.send(RunEpoch(e)).await?;
        }
        let wall = t.elapsed().as_secs_f64();
        engine.supervisor.send(Finish).await?;
        let steps = (n as u64 * (engine.epochs - 1) * engine.grid.samples_per_epoch) as f64;
        anyhow::Ok((steps / wall, bytes_per_twin))
    })
}

pub fn measure(args: &BenchArgs, n: usize) -> Result<Measurement> {
    let s = scenario(args)?;
    // One facility for both loops (a copy for the plain loop was a million nodes more at the peak).
    let f = Arc::new(facility(args, n)?);
    let actuators = f.actuators.len();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()));
    let plain = (!args.engine_only).then(|| measure_plain(&s, &f));
    let (engine, bytes) = measure_engine(&s, f, threads)?;
    Ok(Measurement {
        actuators,
        engine_steps_per_s: engine,
        plain_steps_per_s: plain,
        engine_bytes_per_twin: bytes,
        realtime_factor: engine / (actuators as f64 * args.sample_rate_hz),
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(log) = &args.fork {
        return fork(args, log);
    }
    anyhow::ensure!(
        args.sizes.iter().all(|&n| (1..=twinfault_core::config::MAX_CAMPUS_ACTUATORS).contains(&n)),
        "--sizes: every size must be 1..={} actuators",
        twinfault_core::config::MAX_CAMPUS_ACTUATORS
    );
    anyhow::ensure!(args.sim_s.is_finite() && args.sim_s >= 1.0, "--sim-s must be at least 1");
    // The engine is timed from its second epoch (the first starts the actors), so a run needs two.
    anyhow::ensure!(
        args.sim_s >= 2.0 * args.control_period_s,
        "--sim-s {} is under two control periods ({} s): the engine is timed from its second epoch",
        args.sim_s,
        args.control_period_s
    );
    anyhow::ensure!(args.sample_rate_hz > 0.0 && args.sample_rate_hz <= 20.0, "--sample-rate-hz must be in (0, 20]");
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()));
    println!(
        "twinfault bench: {} s simulated at {} Hz, {} samples per actor message, {} engine threads, {}{}",
        args.sim_s,
        args.sample_rate_hz,
        (args.sample_rate_hz * args.control_period_s).round(),
        threads,
        if args.engine_only { "no plain loop" } else { "plain loop on 1 thread" },
        if cfg!(debug_assertions) { "  (DEBUG BUILD: use --release for real figures)" } else { "" }
    );
    let mut rows = vec![vec![
        "actuators".to_string(),
        "engine steps/s".into(),
        "plain steps/s".into(),
        "engine/plain".into(),
        "× real time".into(),
        "RSS per twin".into(),
    ]];
    for &n in &args.sizes {
        let m = measure(args, n)?;
        rows.push(vec![
            m.actuators.to_string(),
            format!("{:.2} M", m.engine_steps_per_s / 1e6),
            m.plain_steps_per_s.map_or("-".into(), |p| format!("{:.2} M", p / 1e6)),
            m.plain_steps_per_s.map_or("-".into(), |p| format!("{:.2}", m.engine_steps_per_s / p)),
            format!("{:.0}", m.realtime_factor),
            format!("{:.2} KiB", m.engine_bytes_per_twin / 1024.0),
        ]);
    }
    print!("{}", crate::render::table(&rows));
    println!(
        "(in-memory size of one actuator twin struct: {} bytes, heap excluded)",
        std::mem::size_of::<twinfault_core::twin::ActuatorTwin>()
    );
    if let Some(peak) = peak_rss_bytes() {
        println!("(peak resident memory of this process: {:.2} GiB)", peak as f64 / (1u64 << 30) as f64);
    }
    Ok(())
}
