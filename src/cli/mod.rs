//! The `twinfault` command line: the commands and their arguments ([`Cli`], [`Command`]), and
//! [`dispatch`], which hands each command to the module of its area.

mod agent;
mod data;
mod live;
mod runs;

use crate::render;
use crate::sim::runner::{RunOptions, run};
use crate::store::{self, Store};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use twinfault_core::SimTime;
use twinfault_core::scenario::CampusSize;

#[derive(Parser)]
#[command(name = "twinfault", version, about = "Actor-based digital twins for fault intelligence on HVAC actuators")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Store directory (sled).
    #[arg(long, default_value = store::DEFAULT_DIR, env = "TWINFAULT_STORE")]
    store: PathBuf,
}

#[derive(Args, Clone, Default)]
pub struct CampusArgs {
    /// Generated campus only: number of AHUs.
    #[arg(long)]
    ahus: Option<usize>,
    /// Generated campus only: actuators per AHU.
    #[arg(long)]
    actuators_per_ahu: Option<usize>,
}

impl CampusArgs {
    fn size(&self) -> Option<CampusSize> {
        match (self.ahus, self.actuators_per_ahu) {
            (None, None) => None,
            (a, m) => Some(CampusSize { ahus: a.unwrap_or(10), actuators_per_ahu: m.unwrap_or(100) }),
        }
    }
}

/// Where NASA C-MAPSS data is and how it is read.
#[derive(Args)]
pub struct CmapssArgs {
    /// NASA C-MAPSS folder (train_FD001.txt, test_FD001.txt, RUL_FD001.txt, ...).
    #[arg(id = "cmapss", long = "cmapss", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// C-MAPSS subset.
    #[arg(long, default_value = "FD001")]
    subset: String,
    /// The asset template.
    #[arg(long, default_value = "twins/turbofan.toml")]
    template: PathBuf,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a scenario: simulate, inject, detect, report. Exits 1 if an expectation fails.
    Run {
        /// Scenario file (see scenarios/README.md).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads for the actors (the event log is the same for any count).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[command(flatten)]
        store: StoreArgs,
        /// Do not write the run to the store.
        #[arg(long)]
        no_store: bool,
        /// Write the report as JSON to this file (`-` for stdout, replacing the table).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the event log (JSON lines) to this file.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Draw the run as a PNG timeline here: a lane per AHU and device (per AHU for a campus),
        /// phases shaded, injected faults and findings as bars, statuses as colour.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Pace simulated time to the wall clock (same as --speed 1).
        #[arg(long, conflicts_with = "speed")]
        realtime: bool,
        /// Pace simulated time at N × the wall clock.
        #[arg(long)]
        speed: Option<f64>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        campus: CampusArgs,
    },
    /// Check scenario and twin files; prints one line per file, or the first error.
    Validate {
        /// Files to check (scenarios, facilities, templates).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the scenarios and facilities in folders.
    List {
        /// Folders to list (default: scenarios and twins).
        dirs: Vec<PathBuf>,
    },
    /// List the runs in the store.
    Runs {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Chat with the operations agent of a running `twinfault serve` (changes it proposes are put
    /// to you for approval).
    Agent {
        /// The server, e.g. http://127.0.0.1:5000.
        #[arg(long, required_unless_present = "facility", conflicts_with = "facility")]
        connect: Option<String>,
        /// Or: a simulated floor of this facility, served in-process (every actuator simulated,
        /// a fresh store), with the agent configured from the environment.
        #[arg(long)]
        facility: Option<PathBuf>,
        /// Your bearer token (a write token to approve changes); not needed with --facility.
        #[arg(long, env = "TWINFAULT_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Ask the operations agent questions whose answers scenario runs know, and score it.
    AgentEval {
        /// Scenario files to run (default: every single-fault scenario of the reference floor).
        scenarios: Vec<PathBuf>,
        /// The model endpoint (else TWINFAULT_AGENT_BASE_URL).
        #[arg(long)]
        endpoint: Option<String>,
        /// The model (else TWINFAULT_AGENT_MODEL).
        #[arg(long)]
        model: Option<String>,
        /// Also write every question, reply and score as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Longest time for one question, all model requests together [s] (a local model on a
        /// CPU needs minutes); then the twin's facts answer.
        #[arg(long, default_value_t = 240.0)]
        time_limit: f64,
        /// Longest wait for one model request [s].
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
    /// The audit log of a store (`twinfault serve`'s): every change and approval, who and when.
    Audit {
        #[command(flatten)]
        store: StoreArgs,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a stored run: its report, and optionally its faults or event log.
    Show {
        /// Run id (see `twinfault runs`), or `last`.
        run: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print the fault lifecycle table.
        #[arg(long)]
        faults: bool,
        /// Print the event log (JSON lines).
        #[arg(long)]
        events: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Draw the run as a PNG timeline here (see `run --chart`).
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// Print a node's telemetry history from a stored run.
    History {
        /// Run id, or `last`.
        run: String,
        /// Node id, e.g. BEL-VNT-003.
        node: String,
        /// Metric. Actuators: position_pct, setpoint_pct, torque_nm, power_w, temperature_c, rotation,
        /// signal_quality. AHUs: outdoor_air_c, return_air_c, mixed_air_c, supply_air_c,
        /// supply_air_setpoint_c, cooling_kw, heating_kw, phase, status.
        #[arg(long, default_value = "position_pct")]
        metric: String,
        /// From this simulated time [s] (inclusive).
        #[arg(long, default_value_t = 0.0)]
        from: f64,
        /// To this simulated time [s] (exclusive).
        #[arg(long)]
        to: Option<f64>,
        /// At most this many points (one page).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Serve a facility's twins live: HTTP ingest and status API (see README).
    Serve {
        /// Facility file (a cluster's is named by its cluster file).
        #[arg(long, required_unless_present = "cluster", conflicts_with = "cluster")]
        facility: Option<PathBuf>,
        /// Serve one role of a cluster (see cluster.example.toml): `--shard NAME` or `--plant`.
        #[arg(long)]
        cluster: Option<PathBuf>,
        /// The cluster's shard to run.
        #[arg(long, requires = "cluster", conflicts_with = "plant")]
        shard: Option<String>,
        /// Run the cluster's plant role: its shards' summaries rolled up, the facility-wide API.
        #[arg(long, requires = "cluster")]
        plant: bool,
        /// Server configuration (tokens, limits, CORS, simulated nodes); see serve.example.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address (overrides the config).
        #[arg(long)]
        bind: Option<String>,
        /// Store directory (overrides the config).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Subscribe to this MQTT broker, e.g. mqtt://127.0.0.1:1883 (overrides the config).
        #[arg(long, requires = "topic")]
        mqtt: Option<String>,
        /// MQTT topic filter, e.g. 'site/+/telemetry'.
        #[arg(long, requires = "mqtt")]
        topic: Option<String>,
    },
    /// Feed a trend log (rig CSV, mapped CSV, or NDJSON in the ingest format) into the twins.
    Replay {
        /// The log.
        file: PathBuf,
        /// Facility file (every actuator is fed by the log).
        #[arg(long)]
        facility: PathBuf,
        /// The actuator a single-device CSV belongs to.
        #[arg(long)]
        node: Option<String>,
        /// Column mapping for CSV (see maps/); rig recordings need none.
        #[arg(long)]
        map: Option<PathBuf>,
        /// Pace at N × the log's own time (C-MAPSS: N cycles per second per engine).
        #[arg(long, conflicts_with = "as_fast_as_possible")]
        speed: Option<f64>,
        /// As fast as possible (the default).
        #[arg(long)]
        as_fast_as_possible: bool,
        /// AHU logs: a day-label file to score the flagged days against.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// AHU logs: write the per-day report (days.json) and its day × component chart
        /// (days.png) into this folder.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse the log at its first imperfect row (else such rows are skipped and counted).
        #[arg(long)]
        strict: bool,
        /// Fleets: write the event log (JSON lines: each alarm a finding on its member, the
        /// members' and the fleet's status changes; `t` is the cycle) to this file.
        #[arg(long)]
        events: Option<PathBuf>,
    },
    /// Open the desktop visualizer on a scenario (runs the `twinfault-viz` binary built beside
    /// this one: `cargo build --release -p twinfault-viz`).
    Viz {
        /// Arguments for the visualizer: SCENARIO [--speed N] [--select NODE] ...
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Generate a labelled dataset from a campaign: per-sample telemetry, AHU rows, classifier
    /// windows and a dataset card.
    Generate {
        /// Campaign file (see campaigns/README.md).
        #[arg(long, required_unless_present = "merge")]
        campaign: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of runs (default: the campaign's).
        #[arg(long)]
        runs: Option<usize>,
        /// Campaign seed: the same campaign and seed give identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Runs simulated in parallel (default: the cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, value_enum, default_value = "parquet")]
        format: crate::dataset::generate::Format,
        /// Write only part K of N (0-based) of the runs, a contiguous range, e.g. `--shard 2/8`
        /// as a batch scheduler's array index; `--merge` joins the parts.
        #[arg(long, value_parser = parse_shard, conflicts_with = "merge")]
        shard: Option<(usize, usize)>,
        /// Instead: merge the folders `--shard` wrote (all N parts) into `--out`, byte-identical
        /// to one run of the whole campaign.
        #[arg(long, num_args = 1.., conflicts_with_all = ["campaign", "runs", "jobs"])]
        merge: Vec<PathBuf>,
    },
    /// Score a detector on a labelled dataset: precision, recall, F1 per fault kind, confusion
    /// matrix, detection latency, false alarms per device-day and during startup/shutdown.
    Evaluate {
        /// Dataset folder (from `generate`).
        #[arg(long, required_unless_present_any = ["real", "cmapss"], conflicts_with_all = ["real", "cmapss"])]
        data: Option<PathBuf>,
        /// NASA C-MAPSS instead (train_/test_/RUL_ files): train the turbofan health model on the
        /// subset's training engines and score every test row as the second seed did (RUL ≤ 30).
        #[command(flatten)]
        cmapss: CmapssArgs,
        /// A trained health model to score instead of training one (C-MAPSS).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A labelled real log instead (rig CSV, or any CSV with --map), with --facility,
        /// --node and --labels.
        #[arg(long, requires_all = ["facility", "node", "labels"], conflicts_with = "cmapss")]
        real: Option<PathBuf>,
        /// The actuator the real log belongs to.
        #[arg(long)]
        node: Option<String>,
        /// Column mapping of the real log (see maps/).
        #[arg(long)]
        map: Option<PathBuf>,
        /// The real log's label column: `normal` (or empty) or a fault kind per row.
        #[arg(long)]
        labels: Option<String>,
        /// Windows of the real log [s] (length; the stride is half).
        #[arg(long, default_value_t = 60.0)]
        window_s: f64,
        /// rules, model:FILE, or both:FILE (whichever sees a fault; where they see different ones,
        /// the one more often right about that kind on the validation runs).
        #[arg(long, default_value = "rules")]
        detector: String,
        /// Split to score: test (default), validation, train or all.
        #[arg(long, default_value = "test")]
        split: String,
        /// Where to write the result as JSON (default: evaluation-DETECTOR.json in the dataset's
        /// folder, or in the current one for --real), with PNG charts beside it.
        #[arg(long)]
        json: Option<PathBuf>,
        /// The facility, when the dataset's card points at one that moved.
        #[arg(long)]
        facility: Option<PathBuf>,
        /// --real: refuse the log at its first imperfect row (else skipped and counted).
        #[arg(long)]
        strict: bool,
    },
    /// Train the window classifier on a dataset's train split and report its held-out scores,
    /// or (--cmapss) the turbofan health model on a C-MAPSS training subset.
    Train {
        /// Dataset folder (from `generate`).
        #[arg(long, required_unless_present = "cmapss", conflicts_with = "cmapss")]
        data: Option<PathBuf>,
        /// NASA C-MAPSS instead: train the turbofan health model on train_SUBSET.txt.
        #[command(flatten)]
        cmapss: CmapssArgs,
        /// Model file to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 60)]
        trees: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        facility: Option<PathBuf>,
    },
    /// Compare healthy synthetic windows with the real rig's healthy recordings: per-feature
    /// KS statistics, RBF-kernel MMD, kNN neighbourhood mixing (0.5 = indistinguishable).
    Realism {
        /// Folder of real recordings (rig CSVs, searched recursively).
        #[arg(long, default_value = "../shared/data/belimo-rig")]
        real: PathBuf,
        /// Dataset folder (from `generate`).
        #[arg(long)]
        synthetic: PathBuf,
        /// Window length [s] (the rig's recordings are short).
        #[arg(long, default_value_t = 10.0)]
        window_s: f64,
        /// Keep windows in which the damper moves at least this share of the time (both sides):
        /// like is compared with like, the rig's recordings being bench tests.
        #[arg(long, default_value_t = 0.3)]
        min_moving: f64,
        /// Write the table as JSON and the chart as PNG with this path prefix (default: in the
        /// dataset folder).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        facility: Option<PathBuf>,
        /// Refuse a recording at its first imperfect row (else skipped and counted).
        #[arg(long)]
        strict: bool,
    },
    /// Measure engine speed against a plain loop, and memory per actuator twin.
    Bench(crate::sim::bench::BenchArgs),
    /// Compare the simulated healthy actuator with the real rig's recordings.
    Calibrate {
        /// The rig folder (with flox/ and pulse/).
        #[arg(long, default_value = "../shared/data/belimo-rig")]
        rig: PathBuf,
        /// Actuator template to check.
        #[arg(long, default_value = "twins/damper_actuator.toml")]
        template: PathBuf,
        /// Refuse a recording at its first imperfect row (else skipped and counted).
        #[arg(long)]
        strict: bool,
        /// Instead: the rig's four hand-imposed fault kinds simulated in a bench exercise,
        /// against the figures documented for the real recordings.
        #[arg(long, conflicts_with = "fit")]
        faults: bool,
        /// Instead: fit the template's healthy-device parameters to every recording under
        /// `--rig` (healthy recordings of one actuator type) and write the fitted template.
        #[arg(long, requires = "out")]
        fit: bool,
        /// Where `--fit` writes the fitted template.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `twinfault calibrate --fit`: fits, prints what moved and the realism before and after, writes.
pub(crate) fn calibrate_fit(template: &Path, rig: &Path, out: &Path, strict: bool) -> Result<ExitCode> {
    let f = crate::calibrate::fit::fit(template, rig, strict)?;
    let mut rows = vec![vec!["[model] key".to_string(), "template".into(), "fitted".into(), "fitted to".into()]];
    for p in &f.params {
        rows.push(vec![p.key.into(), format!("{:.4}", p.before), format!("{:.4}", p.after), p.how.clone()]);
    }
    print!("{}", render::table(&rows));
    let mut rows = vec![vec!["recording".to_string(), "load factor".into()]];
    for (name, l) in &f.loads {
        rows.push(vec![name.clone(), format!("{l:.2}")]);
    }
    print!("{}", render::table(&rows));
    for n in &f.notes {
        println!("note: {n}");
    }
    print!("{}", crate::dataset::realism::render(&f.after));
    println!(
        "realism of the simulated drives against the recordings ({} windows of {} s): kNN mixing {:.3} -> {:.3}, MMD {:.3} -> {:.3} (0.5 / 0 = indistinguishable)",
        f.after.real_windows, f.after.window_s, f.before.knn_mixing, f.after.knn_mixing, f.before.mmd, f.after.mmd
    );
    std::fs::write(out, &f.text).with_context(|| format!("cannot write {}", out.display()))?;
    println!("written: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn resolve_run(store: &Store, id: &str) -> Result<String> {
    if id == "last" {
        return store.runs()?.last().map(|r| r.id.clone()).context("the store holds no runs yet");
    }
    Ok(id.to_string())
}

pub(crate) fn write_out(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// One line: the outermost context and the root cause, without repeating.
pub fn format_error(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}

/// Runs one command; its exit code (0 ok, 1 a failed expectation or check).
pub fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        c @ (Command::Run { .. }
        | Command::Validate { .. }
        | Command::List { .. }
        | Command::Runs { .. }
        | Command::Show { .. }
        | Command::History { .. }
        | Command::Audit { .. }
        | Command::Bench(_)) => runs::dispatch(c),
        c @ (Command::Agent { .. } | Command::AgentEval { .. }) => agent::dispatch(c),
        c @ (Command::Serve { .. } | Command::Replay { .. } | Command::Viz { .. }) => live::dispatch(c),
        c @ (Command::Calibrate { .. }
        | Command::Generate { .. }
        | Command::Evaluate { .. }
        | Command::Train { .. }
        | Command::Realism { .. }) => data::dispatch(c),
    }
}

/// `K/N` with K < N.
fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("\"{s}\" is not K/N (e.g. 0/4)"))?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| format!("\"{k}\" is not a part number"))?,
        n.trim().parse().map_err(|_| format!("\"{n}\" is not a number of parts"))?,
    );
    if n == 0 || k >= n {
        return Err(format!("part {k} of {n}: K counts from 0 and must be below N"));
    }
    Ok((k, n))
}
