//! The `twinfault` command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use twinfault::render;
use twinfault::sim::runner::{RunOptions, run};
use twinfault::store::{self, Store};
use twinfault_core::SimTime;
use twinfault_core::scenario::CampusSize;

#[derive(Parser)]
#[command(name = "twinfault", version, about = "Actor-based digital twins for fault intelligence on HVAC actuators")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Store directory (sled).
    #[arg(long, default_value = store::DEFAULT_DIR, env = "TWINFAULT_STORE")]
    store: PathBuf,
}

#[derive(Args, Clone, Default)]
struct CampusArgs {
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
struct CmapssArgs {
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
enum Command {
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
        /// Facility file.
        #[arg(long)]
        facility: PathBuf,
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
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse the log at its first imperfect row (else such rows are skipped and counted).
        #[arg(long)]
        strict: bool,
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
        #[arg(long)]
        campaign: PathBuf,
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
        format: twinfault::dataset::generate::Format,
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
    Bench(twinfault::sim::bench::BenchArgs),
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
fn calibrate_fit(template: &Path, rig: &Path, out: &Path, strict: bool) -> Result<ExitCode> {
    let f = twinfault::calibrate::fit::fit(template, rig, strict)?;
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
    print!("{}", twinfault::dataset::realism::render(&f.after));
    println!(
        "realism of the simulated drives against the recordings ({} windows of {} s): kNN mixing {:.3} -> {:.3}, MMD {:.3} -> {:.3} (0.5 / 0 = indistinguishable)",
        f.after.real_windows, f.after.window_s, f.before.knn_mixing, f.after.knn_mixing, f.before.mmd, f.after.mmd
    );
    std::fs::write(out, &f.text).with_context(|| format!("cannot write {}", out.display()))?;
    println!("written: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn resolve_run(store: &Store, id: &str) -> Result<String> {
    if id == "last" {
        return store.runs()?.last().map(|r| r.id.clone()).context("the store holds no runs yet");
    }
    Ok(id.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A report piped into `head` ends quietly (exit status 141, as a shell reports SIGPIPE)
    // rather than with a "broken pipe" panic: the reader has gone, nothing is left to say.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default_hook(info)
    }));
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format_error(&e));
            ExitCode::from(2)
        }
    }
}

/// One line: the outermost context and the root cause, without repeating.
fn format_error(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}

fn write_out(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run { scenario, seed, threads, store, no_store, json, events, realtime, speed, quiet, campus } => {
            let loaded = twinfault::load::scenario(&scenario, campus.size())?;
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
                let line = twinfault::validate::validate(f)?;
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
                    let what = match twinfault::validate::validate(&f) {
                        Ok(s) => s,
                        Err(e) => format!("INVALID: {}", format_error(&e)),
                    };
                    rows.push(vec![f.display().to_string(), what]);
                }
            }
            print!("{}", render::table(&rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { connect, facility, token } => {
            match (connect, facility) {
                (Some(url), _) => {
                    let token = token.context("--token (or TWINFAULT_TOKEN) is required with --connect")?;
                    twinfault::agent::terminal::run(&url, &token)?;
                }
                (None, Some(f)) => {
                    // A private server on a free loopback port, its store in a temporary folder.
                    let dir = std::env::temp_dir().join(format!("twinfault-agent-{}", std::process::id()));
                    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                    let fac = twinfault::serve::facility(&f, &twinfault::serve::ServeConfig::default())?;
                    let token = format!("operator-{}-{}", std::process::id(), twinfault::clock::now_ms());
                    let cfg = twinfault::serve::ServeConfig {
                        bind: format!("127.0.0.1:{port}"),
                        store: dir.clone(),
                        simulate: fac.actuators.iter().map(|a| a.id.clone()).collect(),
                        tokens: vec![twinfault::serve::TokenDef {
                            name: "operator".into(),
                            token: token.clone(),
                            access: twinfault::serve::Access::Write,
                        }],
                        ..twinfault::serve::ServeConfig::default()
                    };
                    std::thread::spawn(move || {
                        if let Err(e) = twinfault::serve::serve(&f, cfg) {
                            eprintln!("error: {e:#}");
                            std::process::exit(2);
                        }
                    });
                    let base = format!("http://127.0.0.1:{port}");
                    let up = (0..200).any(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    });
                    anyhow::ensure!(up, "the simulated floor did not start");
                    let r = twinfault::agent::terminal::run(&base, &token);
                    let _ = std::fs::remove_dir_all(&dir);
                    r?;
                }
                (None, None) => anyhow::bail!("--connect or --facility is required"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::AgentEval { scenarios, endpoint, model, json } => {
            let files = if scenarios.is_empty() {
                ["gear_jam", "stiction", "signal_loss", "valve_leak"]
                    .iter()
                    .map(|k| PathBuf::from(format!("scenarios/datacenter_{k}.toml")))
                    .collect()
            } else {
                scenarios
            };
            let loaded: Vec<_> = files.iter().map(|f| twinfault::load::scenario(f, None)).collect::<Result<_, _>>()?;
            let cfg = twinfault::agent::chat::AgentConfig {
                base_url: endpoint,
                model,
                ..twinfault::agent::chat::AgentConfig::default()
            };
            let e = twinfault::agent::eval::evaluate(&loaded, &cfg)?;
            print!("{}", twinfault::agent::eval::render(&e));
            if let Some(p) = json {
                std::fs::write(&p, serde_json::to_string_pretty(&e)? + "\n")
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
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
        Command::Show { run, store, faults, events, json } => {
            let s = Store::open_existing(&store.store)?;
            let id = resolve_run(&s, &run)?;
            let r = s.run(&id)?;
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
                let figures = twinfault::calibrate::fault_signatures(&t, 1);
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
            let results = twinfault::calibrate::check(&t, &rig, strict)?;
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
        Command::Serve { facility, config, bind, store, mqtt, topic } => {
            let mut cfg = match &config {
                Some(p) => twinfault::serve::ServeConfig::load(p)?,
                None => twinfault::serve::ServeConfig::default(),
            };
            if let Some(b) = bind {
                cfg.bind = b;
            }
            if let Some(s) = store {
                cfg.store = s;
            }
            if let (Some(url), Some(topic)) = (mqtt, topic) {
                cfg.mqtt = Some(match cfg.mqtt.take() {
                    // The flags name the broker and topic; the session settings stay the config's.
                    Some(m) => twinfault::serve::MqttConfig { url, topic, ..m },
                    None => twinfault::serve::MqttConfig::new(url, topic),
                });
            }
            if cfg.tokens.is_empty() {
                eprintln!(
                    "warning: no tokens configured: ingest and every write endpoint will refuse requests (see serve.example.toml)"
                );
            }
            if let twinfault::validate::FileKind::Fleet = twinfault::validate::file_kind(&facility)? {
                anyhow::ensure!(cfg.mqtt.is_none(), "a fleet is served over HTTP only (no MQTT yet)");
                twinfault::fleet::serve::serve(&facility, cfg)?;
                return Ok(ExitCode::SUCCESS);
            }
            twinfault::serve::serve(&facility, cfg)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { file, facility, node, map, speed, as_fast_as_possible: _, labels, json, strict } => {
            if let Some(s) = speed {
                anyhow::ensure!(s.is_finite() && s > 0.0, "--speed must be a positive number");
            }
            if let twinfault::validate::FileKind::Fleet = twinfault::validate::file_kind(&facility)? {
                anyhow::ensure!(
                    map.as_deref().is_none_or(|m| m == std::path::Path::new("cmapss")),
                    "a fleet replays C-MAPSS files: --map cmapss (or none)"
                );
                anyhow::ensure!(
                    node.is_none(),
                    "a C-MAPSS file names its engines by unit number: --node does not apply"
                );
                let fleet = twinfault::fleet::cmapss::load_fleet(&facility)?;
                let rul = labels.clone().or_else(|| twinfault::fleet::actors::rul_beside(&file));
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                // C-MAPSS cycles carry no time of day: --speed is cycles per second per engine.
                let pace = twinfault::fleet::actors::ReplayPace { cycles_per_s: speed, live: !json };
                if !json {
                    println!("replaying {} into {} ...", file.display(), fleet.file.id);
                }
                let r = twinfault::fleet::actors::replay(&file, &fleet, rul.as_deref(), threads, pace)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", r.render(false));
                }
                return Ok(ExitCode::SUCCESS);
            }
            anyhow::ensure!(
                map.as_deref() != Some(std::path::Path::new("cmapss")),
                "--map cmapss replays into a fleet file (kind = \"fleet\", e.g. twins/turbofan_fleet.toml); {} is not one",
                facility.display()
            );
            let cfg = twinfault::serve::ServeConfig::default();
            let f = twinfault::serve::facility(&facility, &cfg)?;
            if let Some(m) = map
                .as_ref()
                .map(|m| twinfault::telemetry::replay::Mapping::load(m))
                .transpose()?
                .filter(|m| m.target == "ahu")
            {
                let r = twinfault::telemetry::replay::replay_ahu(&file, &f, &m, labels.as_deref(), strict)?;
                r.reading.warn();
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!("replayed {} rows of {}", r.rows, r.file);
                    let mut rows = vec![vec!["day".to_string(), "label".into(), "findings".into()]];
                    for d in &r.days {
                        rows.push(vec![
                            d.date.clone(),
                            d.label.clone().unwrap_or_else(|| "-".into()),
                            if d.findings.is_empty() { "-".into() } else { d.findings.join(", ") },
                        ]);
                    }
                    print!("{}", render::table(&rows));
                    if let (Some((a, b)), Some((c, d))) = (r.faulted_days_flagged, r.unfaulted_days_flagged) {
                        println!("faulted days flagged: {a} of {b}; unfaulted days flagged: {c} of {d}");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let r = twinfault::telemetry::replay::replay(
                &file,
                &f,
                &twinfault::telemetry::replay::ReplayOptions { node, map, speed, strict },
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
        Command::Generate { campaign, out, runs, seed, jobs, format } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let req = twinfault::dataset::generate::Request {
                campaign,
                out: out.clone(),
                runs,
                seed,
                jobs,
                format,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let s = twinfault::dataset::generate::generate(&req)?;
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
            let t = twinfault::fleet::cmapss::load_template(&template)?;
            let s = twinfault::fleet::cmapss::Subset::new(&dir, &subset)?;
            let model = match model {
                Some(p) => {
                    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
                    Some(twinfault_core::asset::HealthModel::from_json(&text, &p.display().to_string(), &t)?)
                }
                None => None,
            };
            let b = twinfault::fleet::cmapss::benchmark(&t, &s, model)?;
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
            use twinfault::dataset::evaluate::{Dataset, RealLog};
            let det = twinfault::dataset::evaluate::Detector::parse(&detector)?;
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
            let e = twinfault::dataset::evaluate::evaluate(&ds, &det, split.as_deref())?;
            print!("{}", twinfault::dataset::evaluate::render(&e));
            let json = json.unwrap_or_else(|| data.join(format!("evaluation-{}.json", det.name())));
            std::fs::write(&json, serde_json::to_string_pretty(&e)? + "\n")
                .with_context(|| format!("cannot write {}", json.display()))?;
            let (cm, hist) = (json.with_extension("confusion.png"), json.with_extension("latency.png"));
            let title = format!("{} on {} runs ({})", e.detector, e.runs, e.split.as_deref().unwrap_or("all splits"));
            twinfault::dataset::charts::confusion(&e.confusion, &format!("confusion: {title}"), &cm)?;
            let lat: Vec<f64> = e.detections.iter().filter_map(|d| d.latency_s).collect();
            twinfault::dataset::charts::latency_histogram(&lat, &format!("detection latency: {title}"), &hist)?;
            println!("written: {}, {}, {}", json.display(), cm.display(), hist.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train { cmapss: CmapssArgs { dir: Some(dir), subset, template }, out, .. } => {
            let t = twinfault::fleet::cmapss::load_template(&template)?;
            let s = twinfault::fleet::cmapss::Subset::new(&dir, &subset)?;
            let m = twinfault::fleet::cmapss::train(&t, &s.train)?;
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
            let params = twinfault::dataset::model::TrainParams {
                trees,
                seed,
                ..twinfault::dataset::model::TrainParams::default()
            };
            let t = twinfault::dataset::train::train(&data, &out, params, facility.as_deref())?;
            println!(
                "trained on {} windows in {:.1} s; model written to {}",
                t.windows,
                t.seconds,
                t.model_path.display()
            );
            for e in &t.held_out {
                print!("{}", twinfault::dataset::evaluate::render(e));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Realism { real, synthetic, window_s, min_moving, out, facility, strict } => {
            anyhow::ensure!(window_s >= 1.0 && window_s.is_finite(), "--window-s must be at least 1");
            anyhow::ensure!((0.0..=1.0).contains(&min_moving), "--min-moving must be within 0..=1");
            let r =
                twinfault::dataset::realism::run(&real, &synthetic, window_s, min_moving, facility.as_deref(), strict)?;
            print!("{}", twinfault::dataset::realism::render(&r));
            let prefix = out.unwrap_or_else(|| synthetic.join("realism"));
            let (json, png) = (prefix.with_extension("json"), prefix.with_extension("png"));
            std::fs::write(&json, serde_json::to_string_pretty(&r)? + "\n")
                .with_context(|| format!("cannot write {}", json.display()))?;
            twinfault::dataset::charts::realism(&r.ks, r.mmd, r.knn_mixing, &png)?;
            println!("written: {}, {}", json.display(), png.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            twinfault::sim::bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
