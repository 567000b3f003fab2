//! `twinfault-viz SCENARIO [options]` runs a scenario in-process; `twinfault-viz --connect URL`
//! watches a running `twinfault serve`; `twinfault-viz FLEET --cycles FILE` replays a C-MAPSS
//! file into a fleet.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use twinfault_core::types::FaultKind;
use twinfault_viz::app::{Options, run};
use twinfault_viz::state::{InjectForm, Sim};

/// The twinfault desktop visualizer: facility map, ranked issues, live charts, live fault injection.
#[derive(Parser)]
#[command(name = "twinfault-viz", version)]
struct Args {
    /// Scenario file to run in-process (omit with --connect), or a fleet file with --cycles.
    #[arg(required_unless_present = "connect", conflicts_with = "connect")]
    scenario: Option<PathBuf>,
    /// A fleet's cycle file (C-MAPSS, e.g. test_FD001.txt) to replay into the fleet file given
    /// as SCENARIO (e.g. twins/turbofan_fleet.toml); --speed is then cycles per second.
    #[arg(long, conflicts_with = "connect")]
    cycles: Option<PathBuf>,
    /// Watch a running `twinfault serve` instead, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    connect: Option<String>,
    /// Bearer token for --connect (a write token also allows resolve and inject).
    #[arg(long, env = "TWINFAULT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How often to poll the server [ms].
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    poll_ms: u64,
    /// Simulated seconds per wall second (in-process runs).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Save a PNG once a critical fault is open and listed, then exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Inject a fault when the run reaches a time: SECONDS:NODE:KIND:SEVERITY.
    #[arg(long, value_parser = parse_inject)]
    inject_at: Option<(f64, InjectForm)>,
    /// Select this node at start.
    #[arg(long)]
    select: Option<String>,
    /// Exit after this many frames, printing frame-time statistics.
    #[arg(long, value_parser = clap::value_parser!(u32).range(10..))]
    frames: Option<u32>,
    /// Start with the map zoomed out this many times (e.g. 4 to see the aggregated campus view).
    #[arg(long, default_value_t = 1.0)]
    zoom_out: f32,
    /// Generated campus: number of AHUs.
    #[arg(long)]
    ahus: Option<usize>,
    /// Generated campus: actuators per AHU.
    #[arg(long)]
    actuators_per_ahu: Option<usize>,
    /// The in-process agent's model: an OpenAI-compatible base URL, e.g. a local server's
    /// http://127.0.0.1:8089/v1 (without one, the twin's own facts answer).
    #[arg(long, env = "TWINFAULT_AGENT_BASE_URL")]
    agent_base_url: Option<String>,
    /// The in-process agent's model name.
    #[arg(long, env = "TWINFAULT_AGENT_MODEL")]
    agent_model: Option<String>,
    /// Longest time for one question to the in-process agent [s]; then the twin's facts answer
    /// (a small model on a CPU needs minutes; the server's default when omitted).
    #[arg(long)]
    agent_time_limit: Option<f64>,
    /// Ask the agent this once a critical fault is open (with --screenshot, the shot waits for
    /// the reply).
    #[arg(long)]
    ask: Option<String>,
}

fn parse_inject(spec: &str) -> Result<(f64, InjectForm), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [at, node, kind, severity] = parts[..] else { return Err("expected SECONDS:NODE:KIND:SEVERITY".into()) };
    let at: f64 = at.parse().map_err(|_| format!("\"{at}\" is not a number of seconds"))?;
    let kind = FaultKind::parse(kind).ok_or_else(|| format!("\"{kind}\" is not a fault kind"))?;
    Ok((at, InjectForm { node: node.into(), kind, severity: severity.into() }))
}

fn main() -> ExitCode {
    let a = Args::parse();
    if !(a.speed > 0.0 && a.speed.is_finite() && a.zoom_out > 0.0 && a.zoom_out.is_finite()) {
        eprintln!("error: --speed and --zoom-out must be positive numbers");
        return ExitCode::from(2);
    }
    if let (Some(cycles), Some(fleet)) = (&a.cycles, &a.scenario) {
        let sim = match twinfault_viz::fleet::FleetSim::load(fleet, cycles) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let opts = twinfault_viz::fleet::FleetOptions { speed: a.speed, screenshot: a.screenshot, select: a.select };
        twinfault_viz::fleet::run(sim, opts);
        return ExitCode::SUCCESS;
    }
    let sim = match (&a.connect, &a.scenario) {
        (Some(url), _) => Sim::connect(url, a.token.clone(), Duration::from_millis(a.poll_ms)),
        (None, Some(path)) => {
            let campus = match (a.ahus, a.actuators_per_ahu) {
                (None, None) => None,
                (h, m) => Some(twinfault_core::scenario::CampusSize {
                    ahus: h.unwrap_or(10),
                    actuators_per_ahu: m.unwrap_or(100),
                }),
            };
            twinfault_load::scenario(path, campus).map(|l| Sim::new(l.scenario, l.facility)).map_err(|e| e.to_string())
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let mut sim = match sim {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    sim.agent_config.base_url = a.agent_base_url;
    sim.agent_config.model = a.agent_model;
    if let Some(limit) = a.agent_time_limit {
        if !(limit > 0.0 && limit.is_finite()) {
            eprintln!("error: --agent-time-limit must be a positive number of seconds");
            return ExitCode::from(2);
        }
        sim.agent_config.time_limit_s = limit;
    }
    let opts = Options {
        speed: a.speed,
        screenshot: a.screenshot,
        inject_at: a.inject_at,
        select: a.select,
        frames: a.frames,
        zoom_out: a.zoom_out,
        ask: a.ask,
    };
    run(sim, opts);
    ExitCode::SUCCESS
}
