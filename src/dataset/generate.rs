//! `twinfault generate`: runs drawn from a campaign, simulated in parallel, checked, labelled and
//! written as per-sample telemetry, AHU rows and classifier windows, with a dataset card.

use super::table::{Col, CsvWriter, ParquetWriter, Table, read_parquet_groups};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use twinfault_core::actuator::Sample;
use twinfault_core::campaign::{Campaign, RunSpec, Split, WindowSpec};
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::fault::Injection;
use twinfault_core::features::{FEATURES, N_FEATURES, window_features};
use twinfault_core::plain::Run;
use twinfault_core::types::{FaultKind, Phase, SimTime};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Both,
}

/// The phase names of the dataset (the engine's `occupied` is `steady` here).
pub const PHASES: [&str; 4] = ["off", "startup", "steady", "shutdown"];

/// Index of a phase in [`PHASES`].
pub fn phase_code(p: Phase) -> u32 {
    match p {
        Phase::Off => 0,
        Phase::Startup => 1,
        Phase::Occupied => 2,
        Phase::Shutdown => 3,
    }
}

/// Class names: `normal`, then every injectable fault kind.
pub fn classes() -> Vec<&'static str> {
    std::iter::once("normal").chain(FaultKind::ALL.iter().filter(|k| k.injectable()).map(|k| k.as_str())).collect()
}

/// Index of a class in [`classes`] (`None` is normal).
pub fn class_code(kind: Option<FaultKind>) -> u32 {
    match kind {
        None => 0,
        Some(k) => {
            1 + FaultKind::ALL.iter().filter(|x| x.injectable()).position(|x| *x == k).expect("injectable") as u32
        }
    }
}

/// One run, simulated and labelled, columns ready to write.
pub struct RunData {
    pub index: usize,
    pub split: Split,
    pub seed: u64,
    pub duration_s: f64,
    pub sample_rate_hz: f64,
    pub control_period_s: f64,
    pub injections: Vec<Injection>,
    pub node_ids: Vec<String>,
    pub ahu_ids: Vec<String>,
    pub samples: SampleRows,
    pub ahus: AhuRows,
    pub windows: WindowRows,
    /// What the twins' own rules found while the run was generated.
    pub findings: FindingRows,
}

/// Findings of the run's twins: `node` indexes actuators then AHUs (actuators first).
#[derive(Default)]
pub struct FindingRows {
    pub node: Vec<u32>,
    pub device: Vec<Option<u32>>,
    pub kind: Vec<u32>,
    pub change: Vec<u32>,
    pub t_ms: Vec<i64>,
    pub severity: Vec<u32>,
}

const CHANGES: [&str; 3] = ["opened", "updated", "resolved"];
const SEVERITIES: [&str; 2] = ["warning", "critical"];

#[derive(Default)]
pub struct SampleRows {
    pub node: Vec<u32>,
    pub t_ms: Vec<i64>,
    pub setpoint: Vec<f32>,
    pub position: Vec<f32>,
    pub torque: Vec<f32>,
    pub power: Vec<f32>,
    pub temperature: Vec<f32>,
    pub rotation: Vec<i32>,
    pub signal_quality: Vec<Option<f32>>,
    pub class: Vec<u32>,
    pub fault: Vec<Option<u32>>,
    pub severity: Vec<f32>,
    pub phase: Vec<u32>,
}

#[derive(Default)]
pub struct AhuRows {
    pub node: Vec<u32>,
    pub t_ms: Vec<i64>,
    pub phase: Vec<u32>,
    pub status: Vec<u32>,
    pub temps: [Vec<f32>; 5],
    pub cooling_kw: Vec<f32>,
    pub heating_kw: Vec<f32>,
    pub class: Vec<u32>,
    pub root_cause: Vec<Option<u32>>,
}

#[derive(Default)]
pub struct WindowRows {
    pub node: Vec<u32>,
    pub t_start_ms: Vec<i64>,
    pub t_end_ms: Vec<i64>,
    pub role: Vec<u32>,
    pub phase: Vec<u32>,
    pub class: Vec<u32>,
    pub label_share: Vec<f32>,
    pub fault: Vec<Option<u32>>,
    pub severity: Vec<f32>,
    pub features: Vec<[f64; N_FEATURES]>,
}

const AHU_TEMPS: [&str; 5] = ["outdoor_air_c", "return_air_c", "mixed_air_c", "supply_air_c", "supply_air_setpoint_c"];
const ROLES: [&str; 4] = ["zone_damper", "outdoor_air_damper", "cooling_valve", "heating_valve"];
const STATUSES: [&str; 4] = ["healthy", "warning", "critical", "offline"];

fn role_code(r: twinfault_core::Role) -> u32 {
    ROLES.iter().position(|x| *x == r.as_str()).expect("known role") as u32
}

/// The injection active on `node` at `t` (the one that started last, if two overlap).
fn active<'a>(injections: &'a [(usize, &Injection)], t: SimTime) -> Option<(usize, &'a Injection)> {
    injections.iter().rev().find(|(_, i)| i.active_at(t)).map(|(k, i)| (*k, *i))
}

/// Simulates one run and labels every sample, AHU row and window.
pub fn simulate(spec: &RunSpec, windows: WindowSpec) -> RunData {
    let f: &Facility = &spec.facility;
    let sc = &spec.scenario;
    let mut run = Run::new(sc, Arc::new(f.clone()), true);
    let grid = run.setup.grid;
    let epochs = run.epochs();
    let n = f.actuators.len();
    let mut per_dev: Vec<Vec<Sample>> = vec![Vec::new(); n];
    let mut phases: Vec<Vec<Phase>> = vec![Vec::with_capacity(epochs as usize); f.ahus.len()];
    let injections = &sc.injections;
    // Per AHU: the injections on its devices.
    let below: Vec<Vec<(usize, &Injection)>> = (0..f.ahus.len())
        .map(|h| {
            injections
                .iter()
                .enumerate()
                .filter(|(_, i)| matches!(f.node(&i.node), Some(NodeRef::Actuator(a)) if f.actuators[a].ahu == h))
                .collect()
        })
        .collect();
    let mut ahus = AhuRows::default();
    let mut findings = FindingRows::default();
    let mut record = |node: u32, fe: &twinfault_core::detect::FindingEvent| {
        findings.node.push(node);
        findings
            .device
            .push(fe.device.as_ref().and_then(|d| f.actuators.iter().position(|a| &a.id == d)).map(|i| i as u32));
        findings.kind.push(fe.kind.index() as u32);
        findings.change.push(fe.change as u32);
        findings.t_ms.push(fe.t.0 as i64);
        findings.severity.push(fe.severity as u32);
    };
    while let Some((e, mut out)) = run.advance() {
        for (i, r) in out.actuators.iter().enumerate() {
            for fe in &r.findings {
                record(i as u32, fe);
            }
        }
        for (h, fs) in out.ahu_findings.iter().enumerate() {
            for fe in fs {
                record((n + h) as u32, fe);
            }
        }
        for (h, p) in out.phases.iter().enumerate() {
            phases[h].push(*p);
        }
        for (i, r) in out.actuators.iter_mut().enumerate() {
            if let Some(b) = r.history.take() {
                per_dev[i].extend(b.samples);
            }
        }
        let t_end = grid.epoch_start(e + 1);
        for (h, s) in out.ahu_summaries.iter().enumerate() {
            ahus.node.push(h as u32);
            ahus.t_ms.push(t_end.0 as i64);
            ahus.phase.push(phase_code(s.phase));
            ahus.status.push(s.status as u32);
            let temps = [s.outdoor_air_c, s.return_air_c, s.mixed_air_c, s.supply_air_c, s.supply_air_setpoint_c];
            for (k, v) in temps.iter().enumerate() {
                ahus.temps[k].push(*v as f32);
            }
            ahus.cooling_kw.push(s.cooling_kw as f32);
            ahus.heating_kw.push(s.heating_kw as f32);
            let cause = active(&below[h], t_end);
            ahus.class.push(class_code(cause.map(|c| c.1.kind)));
            ahus.root_cause.push(cause.map(|c| c.0 as u32));
        }
    }
    for (i, a) in run.setup.actuators.iter_mut().enumerate() {
        if let Some(b) = a.take_open_block() {
            per_dev[i].extend(b.samples);
        }
    }

    let spe = grid.samples_per_epoch;
    let phase_at = |ahu: usize, t: SimTime| -> Phase {
        let k = (t.0 as f64 * grid.sample_rate_hz / 1000.0).round() as u64;
        let e = ((k / spe) as usize).min(phases[ahu].len().saturating_sub(1));
        phases[ahu].get(e).copied().unwrap_or_default()
    };
    let mut samples = SampleRows::default();
    let mut wins = WindowRows::default();
    let duration_ms = sc.duration.0;
    let len_ms = (windows.length_s * 1000.0).round() as u64;
    let stride_ms = (windows.stride_s * 1000.0).round() as u64;
    for (i, dev) in per_dev.iter().enumerate() {
        let a = &f.actuators[i];
        let mine: Vec<(usize, &Injection)> = injections.iter().enumerate().filter(|(_, j)| j.node == a.id).collect();
        for s in dev {
            samples.node.push(i as u32);
            samples.t_ms.push(s.t.0 as i64);
            samples.setpoint.push(s.setpoint_pct);
            samples.position.push(s.position_pct);
            samples.torque.push(s.torque_nm);
            samples.power.push(s.power_w);
            samples.temperature.push(s.temperature_c);
            samples.rotation.push(i32::from(s.rotation));
            samples.signal_quality.push(s.signal_quality);
            let act = active(&mine, s.t);
            samples.class.push(class_code(act.map(|x| x.1.kind)));
            samples.fault.push(act.map(|x| x.0 as u32));
            samples.severity.push(act.map_or(0.0, |x| x.1.severity_at(s.t)) as f32);
            samples.phase.push(phase_code(phase_at(a.ahu, s.t)));
        }
        // Windows: [t0, t0 + length), every stride; labelled by the fault covering at least
        // half of the window, else normal.
        let mut lo = 0;
        let mut t0 = 0;
        while t0 + len_ms <= duration_ms {
            let t1 = t0 + len_ms;
            while lo < dev.len() && dev[lo].t.0 < t0 {
                lo += 1;
            }
            let mut hi = lo;
            while hi < dev.len() && dev[hi].t.0 < t1 {
                hi += 1;
            }
            let phase = phase_at(a.ahu, SimTime(t0 + len_ms / 2));
            let cover = |j: &Injection| {
                let s = j.start.0.max(t0);
                let e = j.end.map_or(t1, |e| e.0.min(t1));
                e.saturating_sub(s) as f64 / len_ms as f64
            };
            let best = mine.iter().map(|(k, j)| (*k, *j, cover(j))).max_by(|x, y| x.2.total_cmp(&y.2));
            let labelled = best.filter(|b| b.2 >= 0.5);
            wins.node.push(i as u32);
            wins.t_start_ms.push(t0 as i64);
            wins.t_end_ms.push(t1 as i64);
            wins.role.push(role_code(a.role));
            wins.phase.push(phase_code(phase));
            wins.class.push(class_code(labelled.map(|b| b.1.kind)));
            wins.label_share.push(best.map_or(0.0, |b| b.2) as f32);
            wins.fault.push(labelled.map(|b| b.0 as u32));
            wins.severity.push(labelled.map_or(0.0, |b| b.1.severity_at(SimTime(t1 - 1))) as f32);
            wins.features.push(window_features(&dev[lo..hi], windows.length_s, a.role, phase));
            t0 += stride_ms;
        }
    }
    RunData {
        index: spec.index,
        split: spec.split,
        seed: spec.seed,
        duration_s: sc.duration.as_secs_f64(),
        sample_rate_hz: sc.sample_rate_hz,
        control_period_s: sc.control_period_s,
        injections: injections.clone(),
        node_ids: f.actuators.iter().map(|a| a.id.clone()).collect(),
        ahu_ids: f.ahus.iter().map(|a| a.id.clone()).collect(),
        samples,
        ahus,
        windows: wins,
        findings,
    }
}

/// The invariants every run must hold before it is written; the first broken one, named.
pub fn check(run: &RunData) -> Result<(), String> {
    let s = &run.samples;
    for k in 0..s.t_ms.len() {
        let node = &run.node_ids[s.node[k] as usize];
        let at = || format!("{node} at {} ms", s.t_ms[k]);
        for (name, v) in [
            ("setpoint_pct", s.setpoint[k]),
            ("position_pct", s.position[k]),
            ("torque_nm", s.torque[k]),
            ("power_w", s.power[k]),
            ("temperature_c", s.temperature[k]),
        ] {
            if !v.is_finite() {
                return Err(format!("{name} is {v} ({})", at()));
            }
        }
        if !(-0.5..=100.5).contains(&s.position[k]) {
            return Err(format!("position_pct {} is outside the travel 0..100 ({})", s.position[k], at()));
        }
        if s.signal_quality[k].is_some_and(|q| !(0.0..=1.0).contains(&q)) {
            return Err(format!("signal_quality {:?} is outside 0..1 ({})", s.signal_quality[k], at()));
        }
        if k > 0 && s.node[k] == s.node[k - 1] && s.t_ms[k] <= s.t_ms[k - 1] {
            return Err(format!("time does not increase ({})", at()));
        }
    }
    let a = &run.ahus;
    for k in 0..a.t_ms.len() {
        let node = &run.ahu_ids[a.node[k] as usize];
        let [oa, ra, ma, sa, _] = [0, 1, 2, 3, 4].map(|j| a.temps[j][k]);
        if [oa, ra, ma, sa].iter().any(|v| !v.is_finite()) {
            return Err(format!("an air temperature of {node} at {} ms is not a number", a.t_ms[k]));
        }
        // Mixing can only land between its two inlets while nothing below is faulty.
        if a.root_cause[k].is_none() && a.phase[k] == 2 && (ma < oa.min(ra) - 0.5 || ma > oa.max(ra) + 0.5) {
            return Err(format!(
                "mixed air {ma:.2} °C of healthy {node} at {} ms is outside outdoor {oa:.2} and return {ra:.2} °C",
                a.t_ms[k]
            ));
        }
    }
    for (k, f) in run.windows.features.iter().enumerate() {
        if let Some(j) = f.iter().position(|v| !v.is_finite()) {
            return Err(format!("window {k}: feature {} is {}", FEATURES[j].0, f[j]));
        }
    }
    Ok(())
}

fn dict_of(names: &[&str]) -> Vec<Arc<str>> {
    names.iter().map(|s| Arc::from(*s)).collect()
}

impl RunData {
    fn fault_dict(&self) -> Vec<Arc<str>> {
        self.injections.iter().map(|i| Arc::from(i.id.as_str())).collect()
    }

    fn split_col(&self, rows: usize) -> Col {
        Col::Str { dict: dict_of(&[self.split.as_str()]), codes: vec![0; rows] }
    }

    pub fn sample_table(&self) -> Table {
        let s = &self.samples;
        let n = s.t_ms.len();
        let nodes: Vec<Arc<str>> = self.node_ids.iter().map(|x| Arc::from(x.as_str())).collect();
        Table::new(vec![
            ("run", Col::I32(vec![self.index as i32; n])),
            ("split", self.split_col(n)),
            ("node", Col::Str { dict: nodes, codes: s.node.clone() }),
            ("t_ms", Col::I64(s.t_ms.clone())),
            ("setpoint_pct", Col::F32(s.setpoint.clone())),
            ("position_pct", Col::F32(s.position.clone())),
            ("torque_nm", Col::F32(s.torque.clone())),
            ("power_w", Col::F32(s.power.clone())),
            ("temperature_c", Col::F32(s.temperature.clone())),
            ("rotation", Col::I32(s.rotation.clone())),
            ("signal_quality", Col::OptF32(s.signal_quality.clone())),
            ("phase", Col::Str { dict: dict_of(&PHASES), codes: s.phase.clone() }),
            ("fault_kind", Col::Str { dict: dict_of(&classes()), codes: s.class.clone() }),
            ("fault_id", Col::OptStr { dict: self.fault_dict(), codes: s.fault.clone() }),
            ("severity", Col::F32(s.severity.clone())),
        ])
    }

    pub fn ahu_table(&self) -> Table {
        let a = &self.ahus;
        let n = a.t_ms.len();
        let nodes: Vec<Arc<str>> = self.ahu_ids.iter().map(|x| Arc::from(x.as_str())).collect();
        let mut cols = vec![
            ("run", Col::I32(vec![self.index as i32; n])),
            ("split", self.split_col(n)),
            ("node", Col::Str { dict: nodes, codes: a.node.clone() }),
            ("t_ms", Col::I64(a.t_ms.clone())),
            ("phase", Col::Str { dict: dict_of(&PHASES), codes: a.phase.clone() }),
            ("status", Col::Str { dict: dict_of(&STATUSES), codes: a.status.clone() }),
        ];
        for (k, name) in AHU_TEMPS.iter().enumerate() {
            cols.push((name, Col::F32(a.temps[k].clone())));
        }
        cols.push(("cooling_kw", Col::F32(a.cooling_kw.clone())));
        cols.push(("heating_kw", Col::F32(a.heating_kw.clone())));
        cols.push(("fault_kind", Col::Str { dict: dict_of(&classes()), codes: a.class.clone() }));
        cols.push(("root_cause_fault_id", Col::OptStr { dict: self.fault_dict(), codes: a.root_cause.clone() }));
        Table::new(cols)
    }

    pub fn finding_table(&self) -> Table {
        let fr = &self.findings;
        let n = fr.t_ms.len();
        let nodes: Vec<Arc<str>> = self.node_ids.iter().chain(&self.ahu_ids).map(|x| Arc::from(x.as_str())).collect();
        let devices: Vec<Arc<str>> = self.node_ids.iter().map(|x| Arc::from(x.as_str())).collect();
        let kinds: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
        Table::new(vec![
            ("run", Col::I32(vec![self.index as i32; n])),
            ("split", self.split_col(n)),
            ("node", Col::Str { dict: nodes, codes: fr.node.clone() }),
            ("device", Col::OptStr { dict: devices, codes: fr.device.clone() }),
            ("kind", Col::Str { dict: dict_of(&kinds), codes: fr.kind.clone() }),
            ("change", Col::Str { dict: dict_of(&CHANGES), codes: fr.change.clone() }),
            ("severity", Col::Str { dict: dict_of(&SEVERITIES), codes: fr.severity.clone() }),
            ("t_ms", Col::I64(fr.t_ms.clone())),
        ])
    }

    pub fn window_table(&self) -> Table {
        let w = &self.windows;
        let n = w.t_start_ms.len();
        let nodes: Vec<Arc<str>> = self.node_ids.iter().map(|x| Arc::from(x.as_str())).collect();
        let mut cols = vec![
            ("run", Col::I32(vec![self.index as i32; n])),
            ("split", self.split_col(n)),
            ("node", Col::Str { dict: nodes, codes: w.node.clone() }),
            ("t_start_ms", Col::I64(w.t_start_ms.clone())),
            ("t_end_ms", Col::I64(w.t_end_ms.clone())),
            ("role", Col::Str { dict: dict_of(&ROLES), codes: w.role.clone() }),
            ("phase", Col::Str { dict: dict_of(&PHASES), codes: w.phase.clone() }),
            ("label", Col::Str { dict: dict_of(&classes()), codes: w.class.clone() }),
            ("label_share", Col::F32(w.label_share.clone())),
            ("fault_id", Col::OptStr { dict: self.fault_dict(), codes: w.fault.clone() }),
            ("severity", Col::F32(w.severity.clone())),
        ];
        for (j, (name, _)) in FEATURES.iter().enumerate() {
            cols.push((name, Col::F64(w.features.iter().map(|f| f[j]).collect())));
        }
        Table::new(cols)
    }
}

/// A run checked and turned into tables (in a worker thread), ready to write.
struct Prepared {
    index: usize,
    card: serde_json::Value,
    outcome: Result<Ready, String>,
}

struct Ready {
    tables: [Table; 4],
    split: &'static str,
    sample_classes: BTreeMap<&'static str, u64>,
    window_classes: BTreeMap<&'static str, u64>,
    samples: u64,
    windows: u64,
}

fn prepare(run: RunData) -> Prepared {
    let injections: Vec<serde_json::Value> = run
        .injections
        .iter()
        .map(|j| {
            json!({ "id": j.id, "node": j.node, "kind": j.kind, "severity": j.severity,
            "start_s": j.start.as_secs_f64(), "ramp_s": j.ramp_s, "end_s": j.end.map(|e| e.as_secs_f64()) })
        })
        .collect();
    let card = json!({ "run": run.index, "seed": run.seed, "split": run.split, "duration_s": run.duration_s,
        "sample_rate_hz": run.sample_rate_hz, "control_period_s": run.control_period_s, "faults": injections });
    let outcome = check(&run).map(|()| {
        let names = classes();
        let count = |of: &[u32]| {
            let mut m: BTreeMap<&'static str, u64> = BTreeMap::new();
            for c in of {
                *m.entry(names[*c as usize]).or_default() += 1;
            }
            m
        };
        Ready {
            tables: [run.sample_table(), run.window_table(), run.ahu_table(), run.finding_table()],
            split: run.split.as_str(),
            sample_classes: count(&run.samples.class),
            window_classes: count(&run.windows.class),
            samples: run.samples.t_ms.len() as u64,
            windows: run.windows.t_start_ms.len() as u64,
        }
    });
    Prepared { index: run.index, card, outcome }
}

/// What `generate` was asked.
pub struct Request {
    pub campaign: PathBuf,
    pub out: PathBuf,
    pub runs: Option<usize>,
    pub seed: u64,
    pub jobs: usize,
    pub format: Format,
    pub progress: bool,
    /// `(k, n)`: write only part `k` of `n` (runs `k·runs/n .. (k+1)·runs/n`), for [`merge`].
    pub shard: Option<(usize, usize)>,
}

/// What `generate` did.
#[derive(Debug)]
pub struct Summary {
    pub runs_written: usize,
    pub runs_rejected: usize,
    pub samples: u64,
    pub windows: u64,
    pub seconds: f64,
}

struct Sinks {
    parquet: Vec<ParquetWriter>,
    csv: Vec<CsvWriter>,
}

const TABLES: [&str; 4] = ["samples", "windows", "ahus", "findings"];

/// Loads a campaign file and its facility.
pub fn load_campaign(path: &Path) -> Result<(Campaign, Facility, String)> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
    let c = Campaign::parse(&text, &label)?;
    let fpath = path.parent().unwrap_or(Path::new(".")).join(&c.facility);
    if !fpath.is_file() {
        bail!("{label}: facility: no facility file at \"{}\"", fpath.display());
    }
    let f = crate::load::facility(&fpath, None)?;
    Ok((c, f, text))
}

/// Generates the dataset.
pub fn generate(req: &Request) -> Result<Summary> {
    let started = std::time::Instant::now();
    let (campaign, facility, text) = load_campaign(&req.campaign)?;
    let runs = req.runs.unwrap_or(campaign.runs);
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    std::fs::create_dir_all(&req.out).with_context(|| format!("cannot create {}", req.out.display()))?;
    let splits = campaign.splits(runs, req.seed);
    // A shard is a contiguous range of runs, so the parts in order are the runs in order.
    let (lo, hi) = match req.shard {
        None => (0, runs),
        Some((k, n)) => {
            if n == 0 || k >= n || n > runs {
                bail!("--shard {k}/{n}: K must be below N, and N at most the runs ({runs})");
            }
            (k * runs / n, (k + 1) * runs / n)
        }
    };
    let jobs = req.jobs.max(1).min(hi - lo);
    let next = AtomicUsize::new(lo);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Prepared>(jobs * 2);
    let bar = if req.progress {
        let b = indicatif::ProgressBar::new((hi - lo) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {msg}  elapsed {elapsed}, ETA {eta}")
                .expect("valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut sinks: Option<Sinks> = None;
    let mut run_cards = Vec::new();
    let mut rejected = Vec::new();
    let mut counts: BTreeMap<&str, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    let (mut n_samples, mut n_windows) = (0u64, 0u64);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..jobs {
            let (tx, next, campaign, facility, splits) = (tx.clone(), &next, &campaign, &facility, &splits);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= hi {
                        return;
                    }
                    let spec = campaign.draw(facility, i, req.seed, splits[i]);
                    if tx.send(prepare(simulate(&spec, campaign.windows))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Write in run order whatever order the runs finish in, so the files do not depend on
        // the number of jobs.
        let mut pending: BTreeMap<usize, Prepared> = BTreeMap::new();
        let mut expect = lo;
        for p in rx {
            pending.insert(p.index, p);
            while let Some(run) = pending.remove(&expect) {
                expect += 1;
                bar.inc(1);
                let ready = match run.outcome {
                    Ok(r) => r,
                    Err(why) => {
                        bar.println(format!("run {} rejected: {why}", run.index));
                        rejected.push(json!({ "run": run.index, "reason": why }));
                        continue;
                    }
                };
                run_cards.push(run.card);
                if sinks.is_none() {
                    let mut s = Sinks { parquet: Vec::new(), csv: Vec::new() };
                    for (name, t) in TABLES.iter().zip(&ready.tables) {
                        if req.format != Format::Csv {
                            s.parquet.push(ParquetWriter::create(&req.out.join(format!("{name}.parquet")), t)?);
                        }
                        if req.format != Format::Parquet {
                            s.csv.push(CsvWriter::create(&req.out.join(format!("{name}.csv")), t)?);
                        }
                    }
                    sinks = Some(s);
                }
                let s = sinks.as_mut().expect("created above");
                for (k, t) in ready.tables.iter().enumerate() {
                    if let Some(w) = s.parquet.get_mut(k) {
                        w.write(t)?;
                    }
                    if let Some(w) = s.csv.get_mut(k) {
                        w.write(t)?;
                    }
                }
                for (table, by_class) in [("samples", &ready.sample_classes), ("windows", &ready.window_classes)] {
                    let by = counts.entry(table).or_default().entry(ready.split.to_string()).or_default();
                    for (c, n) in by_class {
                        *by.entry(c.to_string()).or_default() += n;
                    }
                }
                n_samples += ready.samples;
                n_windows += ready.windows;
                bar.set_message(format!("{:.1} M samples", n_samples as f64 / 1e6));
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let Some(s) = sinks else { bail!("every run was rejected; nothing written") };
    for w in s.parquet {
        w.finish()?;
    }
    for w in s.csv {
        w.finish()?;
    }
    use sha2::Digest;
    let mut card = json!({
        "format_version": 1,
        "engine": { "name": "twinfault", "version": env!("CARGO_PKG_VERSION") },
        "campaign": { "file": req.campaign.display().to_string(), "sha256": format!("{:x}", sha2::Sha256::digest(text.as_bytes())), "spec": campaign },
        "facility": facility.name,
        "seed": req.seed,
        "runs": { "requested": runs, "written": run_cards.len(), "rejected": rejected },
        "files": TABLES.iter().map(|t| (t.to_string(), json!({
            "parquet": (req.format != Format::Csv).then(|| format!("{t}.parquet")),
            "csv": (req.format != Format::Parquet).then(|| format!("{t}.csv")),
        }))).collect::<serde_json::Map<_, _>>(),
        "schema": schema(),
        "classes": classes(),
        "counts": counts,
        "totals": { "samples": n_samples, "windows": n_windows },
        "windows": { "length_s": campaign.windows.length_s, "stride_s": campaign.windows.stride_s,
            "label": "the fault covering at least half of the window, else normal" },
        "splits": {},
        "run_list": run_cards,
    });
    card["splits"] = splits_of(&card["run_list"]);
    if let Some((k, n)) = req.shard {
        card["shard"] = json!({ "index": k, "of": n, "runs": [lo, hi] });
    }
    let path = req.out.join("dataset.json");
    std::fs::write(&path, serde_json::to_string_pretty(&card)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Summary {
        runs_written: card["runs"]["written"].as_u64().unwrap_or(0) as usize,
        runs_rejected: rejected_len(&card),
        samples: n_samples,
        windows: n_windows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The card's split lists from its run list: the runs of each split, in run order.
fn splits_of(run_list: &serde_json::Value) -> serde_json::Value {
    let runs = |sp: Split| -> Vec<u64> {
        run_list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["split"] == sp.as_str())
            .filter_map(|c| c["run"].as_u64())
            .collect()
    };
    json!({
        "method": "by run: a permutation of the run indices seeded by --seed, cut by the campaign's shares; every sample and window of a run (all its devices) is in the run's split, never shuffled rows",
        "train": runs(Split::Train), "validation": runs(Split::Validation), "test": runs(Split::Test),
    })
}

/// Merges the parts `generate --shard K/N` wrote (given in any order) into `out`: the data files
/// and the card are byte-identical to what one `generate` of all runs writes.
pub fn merge(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut cards = Vec::new();
    for p in parts {
        let path = p.join("dataset.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let card: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not a dataset card", path.display()))?;
        let shard = &card["shard"];
        let (Some(k), Some(n)) = (shard["index"].as_u64(), shard["of"].as_u64()) else {
            bail!("{}: not a part (no shard; it was written without --shard)", path.display());
        };
        cards.push((k, n, p.clone(), card));
    }
    cards.sort_by_key(|c| c.0);
    let n = cards.first().map_or(0, |c| c.1);
    let ks: Vec<u64> = cards.iter().map(|c| c.0).collect();
    if cards.iter().any(|c| c.1 != n) || ks != (0..n).collect::<Vec<_>>() {
        bail!("the parts must be 0..{n} of {n}, each once; given {ks:?}");
    }
    let same = |key: &str| cards.windows(2).all(|w| w[0].3[key] == w[1].3[key]);
    for key in ["campaign", "seed", "files", "schema", "engine", "windows", "format_version"] {
        if !same(key) {
            bail!("the parts disagree on `{key}`: they are not parts of one campaign run");
        }
    }
    if !cards.windows(2).all(|w| w[0].3["runs"]["requested"] == w[1].3["runs"]["requested"]) {
        bail!("the parts disagree on the number of runs");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = cards[0].3["files"].clone();
    for t in TABLES {
        if let Some(name) = files[t]["parquet"].as_str() {
            let mut w: Option<ParquetWriter> = None;
            for (_, _, dir, _) in &cards {
                for g in read_parquet_groups(&dir.join(name))? {
                    let w = match &mut w {
                        Some(w) => w,
                        None => w.insert(ParquetWriter::create(&out.join(name), &g)?),
                    };
                    w.write(&g)?;
                }
            }
            if let Some(w) = w {
                w.finish()?;
            }
        }
        if let Some(name) = files[t]["csv"].as_str() {
            let path = out.join(name);
            let mut o = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            for (i, (_, _, dir, _)) in cards.iter().enumerate() {
                let part = dir.join(name);
                let text = std::fs::read(&part).with_context(|| format!("cannot read {}", part.display()))?;
                // Every part has the header; the merged file has it once.
                let body = if i == 0 { &text[..] } else { text.splitn(2, |b| *b == b'\n').nth(1).unwrap_or(&[]) };
                std::io::Write::write_all(&mut o, body).with_context(|| format!("cannot write {}", path.display()))?;
            }
            std::io::Write::flush(&mut o).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    // The card: the first part's, with the runs, counts and totals of all.
    let mut card = cards[0].3.clone();
    let (mut run_list, mut rejected) = (Vec::new(), Vec::new());
    let mut counts: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    let (mut samples, mut windows) = (0u64, 0u64);
    for (_, _, _, c) in &cards {
        run_list.extend(c["run_list"].as_array().cloned().unwrap_or_default());
        rejected.extend(c["runs"]["rejected"].as_array().cloned().unwrap_or_default());
        let parsed: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> =
            serde_json::from_value(c["counts"].clone()).context("a part's card has malformed counts")?;
        for (table, by_split) in parsed {
            for (split, by_class) in by_split {
                for (class, k) in by_class {
                    *counts
                        .entry(table.clone())
                        .or_default()
                        .entry(split.clone())
                        .or_default()
                        .entry(class)
                        .or_default() += k;
                }
            }
        }
        samples += c["totals"]["samples"].as_u64().unwrap_or(0);
        windows += c["totals"]["windows"].as_u64().unwrap_or(0);
    }
    card["runs"]["written"] = json!(run_list.len());
    card["runs"]["rejected"] = json!(rejected);
    card["counts"] = json!(counts);
    card["totals"] = json!({ "samples": samples, "windows": windows });
    card["run_list"] = json!(run_list);
    card["splits"] = splits_of(&card["run_list"]);
    if let Some(m) = card.as_object_mut() {
        m.remove("shard");
    }
    let path = out.join("dataset.json");
    std::fs::write(&path, serde_json::to_string_pretty(&card)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn rejected_len(card: &serde_json::Value) -> usize {
    card["runs"]["rejected"].as_array().map_or(0, Vec::len)
}

/// Columns of each table with types and units.
fn schema() -> serde_json::Value {
    let col = |name: &str, ty: &str, unit: &str, what: &str| json!({ "name": name, "type": ty, "unit": unit, "description": what });
    let mut windows = vec![
        col("run", "int32", "", "run index"),
        col("split", "string", "", "train, validation or test (by run)"),
        col("node", "string", "", "actuator id"),
        col("t_start_ms", "int64", "ms", "window start, since the run's start"),
        col("t_end_ms", "int64", "ms", "window end (exclusive)"),
        col("role", "string", "", "zone_damper, outdoor_air_damper, cooling_valve, heating_valve"),
        col("phase", "string", "", "AHU phase at the window's middle: off, startup, steady, shutdown"),
        col("label", "string", "", "fault kind covering at least half of the window, else normal"),
        col("label_share", "float", "1", "share of the window the most-covering fault covers"),
        col("fault_id", "string?", "", "id of the labelled fault"),
        col("severity", "float", "1", "severity of the labelled fault at the window's end"),
    ];
    windows.extend(FEATURES.iter().map(|(n, u)| col(n, "double", u, "window feature (twinfault_core::features)")));
    json!({
        "samples": [
            col("run", "int32", "", "run index"),
            col("split", "string", "", "train, validation or test (by run)"),
            col("node", "string", "", "actuator id"),
            col("t_ms", "int64", "ms", "time since the run's start"),
            col("setpoint_pct", "float", "%", "commanded position"),
            col("position_pct", "float", "%", "feedback position"),
            col("torque_nm", "float", "N·m", "signed motor torque (negative opening)"),
            col("power_w", "float", "W", "electrical power"),
            col("temperature_c", "float", "°C", "internal temperature"),
            col("rotation", "int32", "", "0 stopped, 1 opening, 2 closing"),
            col("signal_quality", "float?", "1", "control-signal quality, when reported"),
            col("phase", "string", "", "off, startup, steady, shutdown (the AHU's)"),
            col("fault_kind", "string", "", "injected fault active on the device, else normal"),
            col("fault_id", "string?", "", "id of that fault"),
            col("severity", "float", "1", "its severity at this instant (ramps included)"),
        ],
        "windows": windows,
        "ahus": [
            col("run", "int32", "", "run index"),
            col("split", "string", "", "train, validation or test (by run)"),
            col("node", "string", "", "AHU id"),
            col("t_ms", "int64", "ms", "end of the control epoch"),
            col("phase", "string", "", "off, startup, steady, shutdown"),
            col("status", "string", "", "the AHU's status: worst of its rules and devices"),
            col("outdoor_air_c", "float", "°C", ""),
            col("return_air_c", "float", "°C", ""),
            col("mixed_air_c", "float", "°C", ""),
            col("supply_air_c", "float", "°C", ""),
            col("supply_air_setpoint_c", "float", "°C", ""),
            col("cooling_kw", "float", "kW", "cooling delivered"),
            col("heating_kw", "float", "kW", "heating delivered"),
            col("fault_kind", "string", "", "kind of the root-cause fault below the AHU, else normal"),
            col("root_cause_fault_id", "string?", "", "the injected device fault its symptoms come from"),
        ],
        "findings": [
            col("run", "int32", "", "run index"),
            col("split", "string", "", "train, validation or test (by run)"),
            col("node", "string", "", "the twin whose rules found it (actuator or AHU)"),
            col("device", "string?", "", "for AHU rules: the device the evidence points at"),
            col("kind", "string", "", "fault kind"),
            col("change", "string", "", "opened, updated, resolved"),
            col("severity", "string", "", "warning or critical"),
            col("t_ms", "int64", "ms", "time since the run's start"),
        ],
    })
}
