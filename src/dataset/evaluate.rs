//! `twinfault evaluate`: labelled data replayed through the twins' detectors (the rules, a
//! learned model, or both), scored per fault kind: precision, recall, F1 and a confusion matrix
//! over windows, detection latency per injected fault, false alarms per device-day and during
//! startup/shutdown.

use super::generate::{PHASES, classes};
use super::metrics::{ClassScore, Confusion, percentile};
use super::model::Model;
use super::table::{Col, Table, read_parquet};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinfault_core::actuator::Sample;
use twinfault_core::config::Facility;
use twinfault_core::detect::{Change, FindingEvent};
use twinfault_core::features::N_FEATURES;
use twinfault_core::twin::{ActuatorTwin, Mode};
use twinfault_core::types::{FaultKind, Phase, SimTime};

/// A finding attributed to a device within a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    pub run: i32,
    pub node: String,
    pub kind: FaultKind,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    /// The AHU phase when it opened.
    pub phase: &'static str,
    /// Whose rule: `device`, `ahu` (attributed to this device) or `model`.
    pub source: &'static str,
}

/// A generated dataset on disk.
pub struct Dataset {
    pub dir: PathBuf,
    pub card: Value,
    pub samples: Table,
    pub windows: Table,
    pub ahus: Table,
    pub findings: Table,
    pub facility: Facility,
}

fn str_col<'a>(t: &'a Table, name: &str) -> Result<(&'a [Arc<str>], &'a [u32])> {
    match t.col(name)? {
        Col::Str { dict, codes } => Ok((dict, codes)),
        _ => bail!("column \"{name}\" is not text"),
    }
}

fn f32_col<'a>(t: &'a Table, name: &str) -> Result<&'a [f32]> {
    match t.col(name)? {
        Col::F32(v) => Ok(v),
        _ => bail!("column \"{name}\" is not float"),
    }
}

fn i64_col<'a>(t: &'a Table, name: &str) -> Result<&'a [i64]> {
    match t.col(name)? {
        Col::I64(v) => Ok(v),
        _ => bail!("column \"{name}\" is not int64"),
    }
}

fn i32_col<'a>(t: &'a Table, name: &str) -> Result<&'a [i32]> {
    match t.col(name)? {
        Col::I32(v) => Ok(v),
        _ => bail!("column \"{name}\" is not int32"),
    }
}

impl Dataset {
    /// Reads `dataset.json` and the Parquet tables of `dir`; the facility from the card (or
    /// `facility` when given).
    pub fn load(dir: &Path, facility: Option<&Path>) -> Result<Dataset> {
        let card_path = dir.join("dataset.json");
        let card: Value = serde_json::from_str(
            &std::fs::read_to_string(&card_path).with_context(|| format!("cannot read {}", card_path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", card_path.display()))?;
        let table = |name: &str| -> Result<Table> {
            let p = dir.join(format!("{name}.parquet"));
            if !p.is_file() {
                bail!(
                    "{}: missing (evaluate and train read Parquet: generate with --format parquet or both)",
                    p.display()
                );
            }
            read_parquet(&p)
        };
        let fpath = match facility {
            Some(p) => p.to_path_buf(),
            None => {
                let file = card["campaign"]["file"].as_str().context("dataset.json: campaign.file missing")?;
                let rel = card["campaign"]["spec"]["facility"].as_str().context("dataset.json: facility missing")?;
                Path::new(file).parent().unwrap_or(Path::new(".")).join(rel)
            }
        };
        let facility = crate::load::facility(&fpath, None)
            .with_context(|| format!("the dataset's facility (use --facility to point at it): {}", fpath.display()))?;
        Ok(Dataset {
            dir: dir.to_path_buf(),
            card,
            samples: table("samples")?,
            windows: table("windows")?,
            ahus: table("ahus")?,
            findings: table("findings")?,
            facility,
        })
    }

    /// Runs of a split (all when `None`).
    pub fn runs(&self, split: Option<&str>) -> Vec<i32> {
        let mut v: Vec<i32> = self.card["run_list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| split.is_none_or(|s| r["split"] == s))
            .filter_map(|r| r["run"].as_i64().map(|x| x as i32))
            .collect();
        v.sort_unstable();
        v
    }

    /// Injected faults of a run: (id, node, kind, start ms, end ms).
    fn faults(&self, run: i32) -> Vec<(String, String, FaultKind, i64, Option<i64>)> {
        let r = self.card["run_list"].as_array().into_iter().flatten().find(|r| r["run"] == run);
        r.and_then(|r| r["faults"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f["id"].as_str()?.to_string(),
                    f["node"].as_str()?.to_string(),
                    FaultKind::parse(f["kind"].as_str()?)?,
                    (f["start_s"].as_f64()? * 1000.0).round() as i64,
                    f["end_s"].as_f64().map(|e| (e * 1000.0).round() as i64),
                ))
            })
            .collect()
    }

    /// The twins of a run as it was generated: the campaign re-draws each unit's parameters
    /// (its detector's expectations follow them); the base facility for other data.
    pub fn run_facility(&self, run: i32) -> Facility {
        let spec: Option<twinfault_core::campaign::Campaign> =
            serde_json::from_value(self.card["campaign"]["spec"].clone()).ok();
        match (spec, self.card["seed"].as_u64()) {
            (Some(c), Some(seed)) if run >= 0 => {
                c.draw(&self.facility, run as usize, seed, twinfault_core::campaign::Split::Train).facility
            }
            _ => self.facility.clone(),
        }
    }

    /// The run's time grid (sample rate and control period), when the card has it.
    fn grid(&self, run: i32) -> Option<twinfault_core::twin::Grid> {
        let r = self.card["run_list"].as_array().into_iter().flatten().find(|r| r["run"] == run)?;
        Some(twinfault_core::twin::Grid::new(r["sample_rate_hz"].as_f64()?, r["control_period_s"].as_f64()?))
    }

    fn duration_ms(&self, run: i32) -> i64 {
        let r = self.card["run_list"].as_array().into_iter().flatten().find(|r| r["run"] == run);
        r.and_then(|r| r["duration_s"].as_f64()).map_or(0, |d| (d * 1000.0) as i64)
    }
}

/// The rows of one (run, node) each, as ranges: the tables are written run by run, node by node.
pub(crate) fn groups<'a>(run: &'a [i32], node: &'a [u32]) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let mut k = 0;
    std::iter::from_fn(move || {
        if k >= run.len() {
            return None;
        }
        let start = k;
        while k < run.len() && run[k] == run[start] && node[k] == node[start] {
            k += 1;
        }
        Some(start..k)
    })
}

fn phase_of(name: &str) -> Phase {
    match name {
        "startup" => Phase::Startup,
        "steady" => Phase::Occupied,
        "shutdown" => Phase::Shutdown,
        _ => Phase::Off,
    }
}

/// Replays every run's samples through fresh device detectors and its AHU rows through the AHU
/// rules (children's commands from the devices' setpoints); the alarms attributed to devices.
pub fn replay_rules(ds: &Dataset, runs: &[i32]) -> Result<Vec<Alarm>> {
    let t = &ds.samples;
    let run_col = i32_col(t, "run")?;
    let (nodes, node) = str_col(t, "node")?;
    let t_ms = i64_col(t, "t_ms")?;
    let (sp, pos, tq, pw, temp) = (
        f32_col(t, "setpoint_pct")?,
        f32_col(t, "position_pct")?,
        f32_col(t, "torque_nm")?,
        f32_col(t, "power_w")?,
        f32_col(t, "temperature_c")?,
    );
    let rot = i32_col(t, "rotation")?;
    let Col::OptF32(sq) = t.col("signal_quality")? else { bail!("signal_quality is not an optional float") };
    let (phase_names, phase) = str_col(t, "phase")?;
    let wanted: std::collections::BTreeSet<i32> = runs.iter().copied().collect();
    let f = &ds.facility;
    let mut alarms = Vec::new();
    let mut run_facility: Option<(i32, Facility)> = None;
    // Per run and device: phase changes (time, phase), for alarms found one level up.
    let mut phases: Timelines = BTreeMap::new();
    for std::ops::Range { start: k, end } in groups(run_col, node) {
        let (r, nd) = (run_col[k], node[k]);
        if wanted.contains(&r) {
            let id = &*nodes[nd as usize];
            if run_facility.as_ref().is_none_or(|x| x.0 != r) {
                run_facility = Some((r, ds.run_facility(r)));
            }
            let rf = &run_facility.as_ref().expect("set above").1;
            let i =
                rf.actuators.iter().position(|a| a.id == id).with_context(|| format!("run {r}: unknown node {id}"))?;
            let mut twin = ActuatorTwin::new(id, Arc::clone(&rf.actuators[i].template), Mode::Ingest, 0, 0.0, false);
            let mut out: Vec<FindingEvent> = Vec::new();
            let mut cur_phase = None;
            // Time passes as it did in the run: the rules tick at the end of every control epoch
            // and learn the AHU's phase at the start of one (every second for other data).
            let grid = ds.grid(r);
            let epoch_of = |ms: i64| -> u64 {
                grid.map_or(ms.max(0) as u64 / 1000, |g| {
                    ((ms.max(0) as f64 * g.sample_rate_hz / 1000.0).round() as u64) / g.samples_per_epoch
                })
            };
            let epoch_start = |e: u64| -> i64 { grid.map_or(e as i64 * 1000, |g| g.epoch_start(e).0 as i64) };
            let mut next_epoch = 1;
            let timeline = phases.entry((r, id.to_string())).or_default();
            for j in k..end {
                while epoch_start(next_epoch) <= t_ms[j] {
                    twin.tick(SimTime(epoch_start(next_epoch) as u64), &mut out);
                    next_epoch += 1;
                }
                let now = SimTime(t_ms[j].max(0) as u64);
                let p = phase_of(&phase_names[phase[j] as usize]);
                if cur_phase != Some(p) {
                    let at = epoch_start(epoch_of(t_ms[j]));
                    twin.set_phase(SimTime(at.max(0) as u64), p);
                    cur_phase = Some(p);
                    timeline.push((at, static_phase(&phase_names[phase[j] as usize])));
                }
                let s = Sample {
                    t: now,
                    setpoint_pct: sp[j],
                    position_pct: pos[j],
                    torque_nm: tq[j],
                    power_w: pw[j],
                    temperature_c: temp[j],
                    rotation: rot[j].clamp(0, 2) as u8,
                    signal_quality: sq[j],
                };
                twin.ingest(&s, &mut out);
            }
            let run_end = ds.duration_ms(r);
            let last_epoch = grid.map_or(run_end.max(0) as u64 / 1000, |g| g.epochs_in(SimTime(run_end.max(0) as u64)));
            while next_epoch <= last_epoch {
                twin.tick(SimTime(epoch_start(next_epoch) as u64), &mut out);
                next_epoch += 1;
            }
            let timeline = &phases[&(r, id.to_string())];
            collect(&mut alarms, r, id, &out, &|ms| at_time(timeline, ms));
        }
    }
    // The AHU rules: what the AHU twins found while the runs were generated (they saw the
    // plant's water and the zones, which the AHU rows do not hold), attributed to the device
    // the evidence points at.
    let fr = &ds.findings;
    let (frun, (fnodes, fnode), ft) = (i32_col(fr, "run")?, str_col(fr, "node")?, i64_col(fr, "t_ms")?);
    let Col::OptStr { dict: fdev_names, codes: fdev } = fr.col("device")? else { bail!("device column") };
    let (kinds, kind) = str_col(fr, "kind")?;
    let (changes, change) = str_col(fr, "change")?;
    for j in 0..ft.len() {
        let is_ahu = f.ahus.iter().any(|a| *a.id == *fnodes[fnode[j] as usize]);
        let (Some(d), true) = (fdev[j], is_ahu && wanted.contains(&frun[j])) else { continue };
        let dev = &*fdev_names[d as usize];
        let Some(k) = FaultKind::parse(&kinds[kind[j] as usize]) else { continue };
        let ch = match &*changes[change[j] as usize] {
            "opened" => Change::Opened,
            "resolved" => Change::Resolved,
            _ => Change::Updated,
        };
        let fe = FindingEvent {
            t: SimTime(ft[j].max(0) as u64),
            kind: k,
            change: ch,
            severity: twinfault_core::types::Severity::Warning,
            confidence: 0.0,
            value: 0.0,
            threshold: None,
            opened_at: SimTime(ft[j].max(0) as u64),
            summary: String::new(),
            action: String::new(),
            device: Some(dev.to_string()),
            source: twinfault_core::detect::Source::Rule,
            likely: None,
        };
        let phase = sample_phase(&phases, frun[j], dev, ft[j]);
        collect(&mut alarms, frun[j], dev, std::slice::from_ref(&fe), &|_| phase);
    }
    // Close every alarm where its resolve was seen; order by run, node, time.
    alarms.sort_by(|a, b| (a.run, &a.node, a.opened_ms).cmp(&(b.run, &b.node, b.opened_ms)));
    Ok(alarms)
}

fn static_phase(name: &str) -> &'static str {
    PHASES.iter().find(|p| **p == name).copied().unwrap_or("off")
}

/// The phase in effect at `ms` on a timeline of changes.
fn at_time(timeline: &[(i64, &'static str)], ms: i64) -> &'static str {
    let i = timeline.partition_point(|x| x.0 <= ms);
    if i == 0 { timeline.first().map_or("off", |x| x.1) } else { timeline[i - 1].1 }
}

type Timelines = BTreeMap<(i32, String), Vec<(i64, &'static str)>>;

fn sample_phase(phases: &Timelines, run: i32, dev: &str, ms: i64) -> &'static str {
    phases.get(&(run, dev.to_string())).map_or("off", |t| at_time(t, ms))
}

fn collect(
    alarms: &mut Vec<Alarm>,
    run: i32,
    node: &str,
    out: &[FindingEvent],
    phase_at: &dyn Fn(i64) -> &'static str,
) {
    for fe in out {
        if !fe.kind.injectable() {
            continue;
        }
        match fe.change {
            Change::Opened => alarms.push(Alarm {
                run,
                node: node.to_string(),
                kind: fe.kind,
                opened_ms: fe.t.0 as i64,
                closed_ms: None,
                phase: phase_at(fe.t.0 as i64),
                source: if fe.device.is_some() { "ahu" } else { "device" },
            }),
            Change::Resolved => {
                if let Some(a) = alarms
                    .iter_mut()
                    .rev()
                    .find(|a| a.run == run && a.node == node && a.kind == fe.kind && a.closed_ms.is_none())
                {
                    a.closed_ms = Some(fe.t.0 as i64);
                }
            }
            Change::Updated => {}
        }
    }
}

/// Which detector to score.
#[derive(Debug, Clone)]
pub enum Detector {
    Rules,
    Model(PathBuf),
    Both(PathBuf),
}

impl Detector {
    pub fn parse(s: &str) -> Result<Detector> {
        Ok(match s.split_once(':') {
            None if s == "rules" => Detector::Rules,
            Some(("model", f)) => Detector::Model(f.into()),
            Some(("both", f)) => Detector::Both(f.into()),
            _ => bail!("--detector: expected rules, model:FILE or both:FILE, got \"{s}\""),
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Detector::Rules => "rules",
            Detector::Model(_) => "model",
            Detector::Both(_) => "both",
        }
    }
}

/// Latency of one injected fault.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub run: i32,
    pub fault_id: String,
    pub node: String,
    pub kind: FaultKind,
    /// Seconds from onset to the first alarm of its kind on its device; `None`: missed.
    pub latency_s: Option<f64>,
}

/// The evaluation's result.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub detector: String,
    pub split: Option<String>,
    pub runs: usize,
    pub windows: u64,
    pub confusion: Confusion,
    pub scores: Vec<ClassScore>,
    pub macro_f1: f64,
    pub accuracy: f64,
    pub detections: Vec<Detection>,
    /// Per fault kind: detected, missed, median and p95 latency [s].
    pub latency: BTreeMap<String, LatencySummary>,
    pub false_alarms: u64,
    pub device_days: f64,
    pub false_alarms_per_device_day: f64,
    pub false_alarms_startup_shutdown: u64,
    /// Alarms of the wrong kind while a fault was active on the device.
    pub wrong_kind_alarms: u64,
    /// The false alarms themselves.
    pub false_alarm_list: Vec<Alarm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub faults: usize,
    pub detected: usize,
    pub median_s: Option<f64>,
    pub p95_s: Option<f64>,
}

/// Alarms of a learned model on windows: a fault kind predicted in `confirm` consecutive
/// windows opens an alarm (at the end of the last), `confirm` normal windows close it.
pub fn model_alarms(ds: &Dataset, predictions: &[usize], runs: &[i32], confirm: usize) -> Result<Vec<Alarm>> {
    let w = &ds.windows;
    let run_col = i32_col(w, "run")?;
    let (nodes, node) = str_col(w, "node")?;
    let t_end = i64_col(w, "t_end_ms")?;
    let (phase_names, phase) = str_col(w, "phase")?;
    let names = classes();
    let wanted: std::collections::BTreeSet<i32> = runs.iter().copied().collect();
    let mut alarms: Vec<Alarm> = Vec::new();
    for std::ops::Range { start: k, end } in groups(run_col, node) {
        let (r, nd) = (run_col[k], node[k]);
        if wanted.contains(&r) {
            let mut open: Option<usize> = None;
            let (mut streak_class, mut streak) = (usize::MAX, 0);
            for j in k..end {
                let p = predictions[j];
                if p == streak_class {
                    streak += 1;
                } else {
                    (streak_class, streak) = (p, 1);
                }
                if streak < confirm {
                    continue;
                }
                match (open, p) {
                    (Some(o), p) if p == 0 || p != alarms[o].kind_index() => {
                        alarms[o].closed_ms = Some(t_end[j]);
                        open = None;
                        if p != 0 {
                            open = Some(push_alarm(
                                &mut alarms,
                                r,
                                &nodes[nd as usize],
                                &names,
                                p,
                                t_end[j],
                                &phase_names[phase[j] as usize],
                            ));
                        }
                    }
                    (None, p) if p != 0 => {
                        open = Some(push_alarm(
                            &mut alarms,
                            r,
                            &nodes[nd as usize],
                            &names,
                            p,
                            t_end[j],
                            &phase_names[phase[j] as usize],
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(alarms)
}

fn push_alarm(
    alarms: &mut Vec<Alarm>,
    run: i32,
    node: &str,
    names: &[&str],
    class: usize,
    t: i64,
    phase: &str,
) -> usize {
    alarms.push(Alarm {
        run,
        node: node.to_string(),
        kind: FaultKind::parse(names[class]).expect("class names are fault kinds"),
        opened_ms: t,
        closed_ms: None,
        phase: PHASES.iter().find(|p| **p == phase).copied().unwrap_or("off"),
        source: "model",
    });
    alarms.len() - 1
}

impl Alarm {
    fn kind_index(&self) -> usize {
        super::generate::class_code(Some(self.kind)) as usize
    }
    fn open_at(&self, ms: i64) -> bool {
        self.opened_ms <= ms && self.closed_ms.is_none_or(|c| ms < c)
    }
}

/// Per window: the class the rules show at its end (an open alarm of that device; the latest
/// opened when several are), else normal.
pub fn rule_predictions(ds: &Dataset, alarms: &[Alarm]) -> Result<Vec<usize>> {
    let w = &ds.windows;
    let run_col = i32_col(w, "run")?;
    let (nodes, node) = str_col(w, "node")?;
    let t_end = i64_col(w, "t_end_ms")?;
    let mut by: BTreeMap<(i32, &str), Vec<&Alarm>> = BTreeMap::new();
    for a in alarms {
        by.entry((a.run, a.node.as_str())).or_default().push(a);
    }
    Ok((0..t_end.len())
        .map(|j| {
            by.get(&(run_col[j], &*nodes[node[j] as usize]))
                .and_then(|v| v.iter().rev().find(|a| a.open_at(t_end[j] - 1)))
                .map_or(0, |a| a.kind_index())
        })
        .collect())
}

/// The window features as rows.
pub fn feature_rows(ds: &Dataset) -> Result<Vec<[f64; N_FEATURES]>> {
    let w = &ds.windows;
    let cols: Vec<&[f64]> = twinfault_core::features::FEATURES
        .iter()
        .map(|(n, _)| match w.col(n)? {
            Col::F64(v) => Ok(v.as_slice()),
            _ => bail!("feature column {n} is not double"),
        })
        .collect::<Result<_>>()?;
    Ok((0..w.rows())
        .map(|j| {
            let mut f = [0.0; N_FEATURES];
            for (k, c) in cols.iter().enumerate() {
                f[k] = c[j];
            }
            f
        })
        .collect())
}

/// The window labels as class indices.
pub fn labels(ds: &Dataset) -> Result<Vec<usize>> {
    let (dict, codes) = str_col(&ds.windows, "label")?;
    let names = classes();
    let map: Vec<usize> = dict
        .iter()
        .map(|d| names.iter().position(|n| *n == &**d).with_context(|| format!("unknown label \"{d}\"")))
        .collect::<Result<_>>()?;
    Ok(codes.iter().map(|c| map[*c as usize]).collect())
}

/// Scores a detector on the runs of `split` (all runs when `None`).
pub fn evaluate(ds: &Dataset, detector: &Detector, split: Option<&str>) -> Result<Evaluation> {
    let runs = ds.runs(split);
    if runs.is_empty() {
        bail!("no runs in split {}", split.unwrap_or("(all)"));
    }
    let names = classes();
    let wanted: std::collections::BTreeSet<i32> = runs.iter().copied().collect();
    let run_col = i32_col(&ds.windows, "run")?.to_vec();
    let truth = labels(ds)?;
    let (rule_alarms, rule_pred) = match detector {
        Detector::Rules | Detector::Both(_) => {
            let a = replay_rules(ds, &runs)?;
            let p = rule_predictions(ds, &a)?;
            (a, p)
        }
        Detector::Model(_) => (Vec::new(), Vec::new()),
    };
    let model = match detector {
        Detector::Model(f) | Detector::Both(f) => Some(Model::load(f)?),
        Detector::Rules => None,
    };
    let model_pred = match &model {
        Some(m) => {
            let rows = feature_rows(ds)?;
            Some(
                rows.iter()
                    .enumerate()
                    .map(|(j, r)| if wanted.contains(&run_col[j]) { m.predict(r).0 } else { 0 })
                    .collect::<Vec<usize>>(),
            )
        }
        None => None,
    };
    let (pred, alarms) = match (detector, model_pred) {
        (Detector::Rules, _) => (rule_pred, rule_alarms),
        (Detector::Model(_), Some(m)) => {
            let a = model_alarms(ds, &m, &runs, 2)?;
            (m, a)
        }
        (Detector::Both(_), Some(m)) => {
            // Where one of them sees a fault, it stands; where they see different faults, the
            // one more often right about its kind on the validation runs (never the runs scored).
            let trust = match split {
                Some(sp) if sp != "validation" && !ds.runs(Some("validation")).is_empty() => {
                    Some(validation_precision(ds, model.as_ref().expect("loaded for both"))?)
                }
                _ => None,
            };
            let combined: Vec<usize> = rule_pred
                .iter()
                .zip(&m)
                .map(|(r, m)| match (*r, *m) {
                    (r, 0) => r,
                    (0, m) => m,
                    (r, m) if r == m => r,
                    (r, m) => match &trust {
                        Some((pr, pm)) if pm[m] > pr[r] => m,
                        _ => r,
                    },
                })
                .collect();
            let mut a = rule_alarms;
            let model = model_alarms(ds, &m, &runs, 2)?;
            let extra: Vec<Alarm> = model
                .into_iter()
                .filter(|ma| {
                    !a.iter().any(|ra| {
                        ra.run == ma.run && ra.node == ma.node && ra.kind == ma.kind && ra.open_at(ma.opened_ms)
                    })
                })
                .collect();
            a.extend(extra);
            a.sort_by(|x, y| (x.run, &x.node, x.opened_ms).cmp(&(y.run, &y.node, y.opened_ms)));
            (combined, a)
        }
        _ => unreachable!("a model detector has predictions"),
    };
    let mut confusion = Confusion::new(names.iter().map(|s| s.to_string()).collect());
    let mut windows = 0;
    for j in 0..truth.len() {
        if wanted.contains(&run_col[j]) {
            confusion.add(truth[j], pred[j]);
            windows += 1;
        }
    }
    // Latency per injected fault; false alarms.
    let grace_ms = 120_000;
    let mut detections = Vec::new();
    let (mut false_alarms, mut transient_false, mut wrong_kind) = (0u64, 0u64, 0u64);
    let mut false_list = Vec::new();
    let mut device_days = 0.0;
    // Devices that have samples (all of a generated facility; the one of a real log).
    let n_devices = match ds.samples.col("node") {
        Ok(Col::Str { codes, .. }) => codes.iter().collect::<std::collections::BTreeSet<_>>().len() as f64,
        _ => ds.facility.actuators.len() as f64,
    };
    for &r in &runs {
        let faults = ds.faults(r);
        device_days += n_devices * ds.duration_ms(r) as f64 / 86_400_000.0;
        for (id, node, kind, start, end) in &faults {
            let first = alarms
                .iter()
                .filter(|a| a.run == r && &a.node == node && a.kind == *kind && a.opened_ms >= *start)
                .find(|a| end.is_none_or(|e| a.opened_ms <= e + grace_ms));
            detections.push(Detection {
                run: r,
                fault_id: id.clone(),
                node: node.clone(),
                kind: *kind,
                latency_s: first.map(|a| (a.opened_ms - start) as f64 / 1000.0),
            });
        }
        for a in alarms.iter().filter(|a| a.run == r) {
            let active = faults
                .iter()
                .filter(|f| f.1 == a.node)
                .any(|f| a.opened_ms >= f.3 && f.4.is_none_or(|e| a.opened_ms <= e + grace_ms));
            if !active {
                false_alarms += 1;
                false_list.push(a.clone());
                if matches!(a.phase, "startup" | "shutdown") {
                    transient_false += 1;
                }
            } else if !faults.iter().any(|f| f.1 == a.node && f.2 == a.kind) {
                wrong_kind += 1;
            }
        }
    }
    let mut latency = BTreeMap::new();
    for k in FaultKind::ALL.iter().filter(|k| k.injectable()) {
        let of: Vec<&Detection> = detections.iter().filter(|d| d.kind == *k).collect();
        if of.is_empty() {
            continue;
        }
        let l: Vec<f64> = of.iter().filter_map(|d| d.latency_s).collect();
        latency.insert(
            k.as_str().to_string(),
            LatencySummary {
                faults: of.len(),
                detected: l.len(),
                median_s: percentile(&l, 0.5),
                p95_s: percentile(&l, 0.95),
            },
        );
    }
    Ok(Evaluation {
        detector: detector.name().to_string(),
        split: split.map(str::to_string),
        runs: runs.len(),
        windows,
        scores: confusion.scores(),
        macro_f1: confusion.macro_f1(),
        accuracy: confusion.accuracy(),
        confusion,
        detections,
        latency,
        false_alarms,
        device_days,
        false_alarms_per_device_day: if device_days > 0.0 { false_alarms as f64 / device_days } else { 0.0 },
        false_alarms_startup_shutdown: transient_false,
        wrong_kind_alarms: wrong_kind,
        false_alarm_list: false_list,
    })
}

/// Per class, how often the rules and the model are right when they name it, on the validation
/// runs (1 where they never name it).
fn validation_precision(ds: &Dataset, model: &Model) -> Result<(Vec<f64>, Vec<f64>)> {
    let runs = ds.runs(Some("validation"));
    let wanted: std::collections::BTreeSet<i32> = runs.iter().copied().collect();
    let run_col = i32_col(&ds.windows, "run")?;
    let truth = labels(ds)?;
    let rules = rule_predictions(ds, &replay_rules(ds, &runs)?)?;
    let rows = feature_rows(ds)?;
    let n = classes().len();
    let (mut hit, mut said) = ([vec![0u64; n], vec![0u64; n]], [vec![0u64; n], vec![0u64; n]]);
    for j in (0..truth.len()).filter(|&j| wanted.contains(&run_col[j])) {
        for (k, p) in [rules[j], model.predict(&rows[j]).0].into_iter().enumerate() {
            said[k][p] += 1;
            if p == truth[j] {
                hit[k][p] += 1;
            }
        }
    }
    let prec =
        |k: usize| (0..n).map(|c| if said[k][c] == 0 { 1.0 } else { hit[k][c] as f64 / said[k][c] as f64 }).collect();
    Ok((prec(0), prec(1)))
}

/// The evaluation as a terminal table.
pub fn render(e: &Evaluation) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "detector {} on {} runs ({}), {} windows",
        e.detector,
        e.runs,
        e.split.as_deref().unwrap_or("all splits"),
        e.windows
    );
    let _ = writeln!(
        s,
        "{:<20} {:>8} {:>9} {:>7} {:>6}   {:>7} {:>9} {:>8}",
        "class", "windows", "precision", "recall", "F1", "faults", "detected", "latency"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
    for c in &e.scores {
        if c.support == 0 && c.predicted == 0 {
            continue;
        }
        let lat = e.latency.get(&c.class);
        let _ = writeln!(
            s,
            "{:<20} {:>8} {:>9} {:>7} {:>6}   {:>7} {:>9} {:>8}",
            c.class,
            c.support,
            opt(c.precision),
            opt(c.recall),
            opt(c.f1),
            lat.map_or("".into(), |l| l.faults.to_string()),
            lat.map_or("".into(), |l| l.detected.to_string()),
            lat.and_then(|l| l.median_s).map_or("".into(), |m| format!("{m:.0} s")),
        );
    }
    let _ = writeln!(s, "macro-F1 {:.3}, accuracy {:.3}", e.macro_f1, e.accuracy);
    let _ = writeln!(
        s,
        "false alarms: {} ({:.2} per device-day over {:.1} device-days), {} during startup/shutdown; {} alarms of the wrong kind",
        e.false_alarms,
        e.false_alarms_per_device_day,
        e.device_days,
        e.false_alarms_startup_shutdown,
        e.wrong_kind_alarms
    );
    s
}

/// A labelled real recording to score like a generated dataset.
pub struct RealLog<'a> {
    pub file: &'a Path,
    pub facility: &'a Path,
    pub node: &'a str,
    pub map: Option<&'a Path>,
    /// The CSV column holding each row's label: `normal` (or empty) or a fault kind.
    pub label_column: &'a str,
    pub window: twinfault_core::campaign::WindowSpec,
    /// Any imperfect row is an error (else it is skipped and counted).
    pub strict: bool,
}

/// Reads the label column of a CSV: per row, its file line, its time (when `time_column` is
/// given and parses) [ms] and its label, `normal` for an empty cell.
fn csv_labels(file: &Path, column: &str, time_column: Option<&str>) -> Result<Vec<(usize, Option<i64>, String)>> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {label}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split(',').map(str::trim).collect();
    let lc = header.iter().position(|h| *h == column).with_context(|| format!("{label}: no column \"{column}\""))?;
    let tc = match time_column {
        Some(t) => Some(header.iter().position(|h| *h == t).with_context(|| format!("{label}: no column \"{t}\""))?),
        None => None,
    };
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let t = tc.map(|c| f.get(c).map(|s| s.trim()).unwrap_or("")).and_then(|t| {
            twinfault_core::time::parse_timestamp_ms(t)
                .or_else(|| t.parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64))
        });
        let l = f.get(lc).map(|s| s.trim()).unwrap_or("");
        let l = if l.is_empty() || l == "normal" { "normal".to_string() } else { l.to_string() };
        if l != "normal" && FaultKind::parse(&l).filter(|k| k.injectable()).is_none() {
            bail!("{label}: row {}: column {column}: \"{l}\" is neither normal nor a fault kind", i + 2);
        }
        out.push((i + 2, t, l));
    }
    Ok(out)
}

impl Dataset {
    /// A labelled real log as a one-run dataset, so `evaluate` scores it like generated data:
    /// its samples replayed through the rules, its windows through a model, faults taken from
    /// runs of rows with the same fault label.
    pub fn from_real(log: &RealLog) -> Result<Dataset> {
        use super::generate::{PHASES, classes};
        use super::table::Col;
        let facility = crate::load::facility(log.facility, None)?;
        let Some(twinfault_core::config::NodeRef::Actuator(ai)) = facility.node(log.node) else {
            bail!("{}: no actuator \"{}\"", log.facility.display(), log.node);
        };
        let role = facility.actuators[ai].role;
        // Samples with their rows' labels: a rig recording by its file lines (its reader re-times
        // the rows), any other log by time.
        let (samples, sample_labels): (Vec<Sample>, Vec<String>) = if log.map.is_none()
            && !std::fs::read_to_string(log.file).unwrap_or_default().trim_start().starts_with(['{', '['])
        {
            let rec = crate::telemetry::rig::read(log.file, log.strict)?;
            rec.tally.warn();
            let by_line: std::collections::HashMap<usize, String> =
                csv_labels(log.file, log.label_column, None)?.into_iter().map(|(line, _, l)| (line, l)).collect();
            let labels = rec.lines.iter().map(|l| by_line.get(l).cloned().unwrap_or_else(|| "normal".into())).collect();
            (rec.samples, labels)
        } else {
            let opts = crate::telemetry::replay::ReplayOptions {
                node: Some(log.node.to_string()),
                map: log.map.map(Path::to_path_buf),
                speed: None,
                strict: log.strict,
            };
            let read = crate::telemetry::replay::read_samples(log.file, &facility, &opts)?;
            read.tally.warn();
            let samples: Vec<Sample> =
                read.accepted.into_iter().filter(|a| a.actuator == ai).map(|a| a.sample).collect();
            let time_column = match log.map {
                Some(m) => crate::telemetry::replay::Mapping::load(m)?.time_column,
                None => "timestamp".into(),
            };
            let mut labels: Vec<(i64, String)> = csv_labels(log.file, log.label_column, Some(&time_column))?
                .into_iter()
                .filter_map(|(_, t, l)| t.map(|t| (t, l)))
                .collect();
            labels.sort_by_key(|x| x.0);
            let label_at = |t: i64| -> String {
                let i = labels.partition_point(|x| x.0 <= t);
                if i == 0 { "normal".into() } else { labels[i - 1].1.clone() }
            };
            let l = samples.iter().map(|s| label_at(s.t.0 as i64)).collect();
            (samples, l)
        };
        if samples.len() < 4 {
            bail!("{}: fewer than 4 samples of {}", log.file.display(), log.node);
        }
        // Shift to a run-relative clock starting at the first sample.
        let t0 = samples[0].t.0;
        let rel: Vec<Sample> = samples.iter().map(|s| Sample { t: SimTime(s.t.0 - t0), ..*s }).collect();
        // Faults: runs of one fault label.
        let mut faults: Vec<(String, FaultKind, u64, u64)> = Vec::new();
        for (s, l) in rel.iter().zip(&sample_labels) {
            let Some(k) = FaultKind::parse(l) else { continue };
            match faults.last_mut() {
                Some(f) if f.1 == k && f.3 + 60_000 >= s.t.0 => f.3 = s.t.0,
                _ => faults.push((format!("L{}", faults.len() + 1), k, s.t.0, s.t.0)),
            }
        }
        let duration_ms = rel.last().expect("non-empty").t.0 + 1;
        let names = classes();
        let class = |l: &str| names.iter().position(|n| *n == l).unwrap_or(0) as u32;
        let fault_of = |t: u64| faults.iter().position(|f| t >= f.2 && t <= f.3).map(|i| i as u32);
        let fault_dict: Vec<Arc<str>> = faults.iter().map(|f| Arc::from(f.0.as_str())).collect();
        let n = rel.len();
        let node_dict: Vec<Arc<str>> = vec![Arc::from(log.node)];
        let split = |n: usize| Col::Str { dict: vec![Arc::from("test")], codes: vec![0; n] };
        let samples_t = Table::new(vec![
            ("run", Col::I32(vec![0; n])),
            ("split", split(n)),
            ("node", Col::Str { dict: node_dict.clone(), codes: vec![0; n] }),
            ("t_ms", Col::I64(rel.iter().map(|s| s.t.0 as i64).collect())),
            ("setpoint_pct", Col::F32(rel.iter().map(|s| s.setpoint_pct).collect())),
            ("position_pct", Col::F32(rel.iter().map(|s| s.position_pct).collect())),
            ("torque_nm", Col::F32(rel.iter().map(|s| s.torque_nm).collect())),
            ("power_w", Col::F32(rel.iter().map(|s| s.power_w).collect())),
            ("temperature_c", Col::F32(rel.iter().map(|s| s.temperature_c).collect())),
            ("rotation", Col::I32(rel.iter().map(|s| i32::from(s.rotation)).collect())),
            ("signal_quality", Col::OptF32(rel.iter().map(|s| s.signal_quality).collect())),
            ("phase", Col::Str { dict: vec![Arc::from(PHASES[2])], codes: vec![0; n] }),
            (
                "fault_kind",
                Col::Str {
                    dict: names.iter().map(|s| Arc::from(*s)).collect(),
                    codes: sample_labels.iter().map(|l| class(l)).collect(),
                },
            ),
            (
                "fault_id",
                Col::OptStr { dict: fault_dict.clone(), codes: rel.iter().map(|s| fault_of(s.t.0)).collect() },
            ),
            ("severity", Col::F32(rel.iter().map(|s| if fault_of(s.t.0).is_some() { 1.0 } else { 0.0 }).collect())),
        ]);
        // Windows, labelled like generated ones: the fault covering at least half.
        let (len, stride) = ((log.window.length_s * 1000.0) as u64, (log.window.stride_s * 1000.0) as u64);
        let mut w_start = Vec::new();
        let mut w_class = Vec::new();
        let mut w_share = Vec::new();
        let mut w_fault = Vec::new();
        let mut feats: Vec<[f64; N_FEATURES]> = Vec::new();
        let mut t = 0;
        while t + len <= duration_ms {
            let lo = rel.partition_point(|s| s.t.0 < t);
            let hi = rel.partition_point(|s| s.t.0 < t + len);
            let cover =
                |f: &(String, FaultKind, u64, u64)| (f.3.min(t + len).saturating_sub(f.2.max(t))) as f64 / len as f64;
            let best = faults.iter().enumerate().map(|(i, f)| (i, cover(f))).max_by(|a, b| a.1.total_cmp(&b.1));
            let lab = best.filter(|b| b.1 >= 0.5);
            w_start.push(t as i64);
            w_class.push(lab.map_or(0, |b| class(faults[b.0].1.as_str())));
            w_share.push(best.map_or(0.0, |b| b.1) as f32);
            w_fault.push(lab.map(|b| b.0 as u32));
            feats.push(twinfault_core::features::window_features(
                &rel[lo..hi],
                log.window.length_s,
                role,
                Phase::Occupied,
            ));
            t += stride;
        }
        let nw = w_start.len();
        let mut wcols = vec![
            ("run", Col::I32(vec![0; nw])),
            ("split", split(nw)),
            ("node", Col::Str { dict: node_dict.clone(), codes: vec![0; nw] }),
            ("t_start_ms", Col::I64(w_start.clone())),
            ("t_end_ms", Col::I64(w_start.iter().map(|s| s + len as i64).collect())),
            ("role", Col::Str { dict: vec![Arc::from(role.as_str())], codes: vec![0; nw] }),
            ("phase", Col::Str { dict: vec![Arc::from(PHASES[2])], codes: vec![0; nw] }),
            ("label", Col::Str { dict: names.iter().map(|s| Arc::from(*s)).collect(), codes: w_class }),
            ("label_share", Col::F32(w_share)),
            ("fault_id", Col::OptStr { dict: fault_dict, codes: w_fault }),
            ("severity", Col::F32(vec![0.0; nw])),
        ];
        for (j, (name, _)) in twinfault_core::features::FEATURES.iter().enumerate() {
            wcols.push((name, Col::F64(feats.iter().map(|f| f[j]).collect())));
        }
        let windows = Table::new(wcols);
        let empty = |cols: &[(&str, bool)]| {
            Table::new(
                cols.iter()
                    .map(|(n, text)| {
                        (
                            *n,
                            if *text { Col::Str { dict: Vec::new(), codes: Vec::new() } } else { Col::I64(Vec::new()) },
                        )
                    })
                    .collect(),
            )
        };
        let mut findings = empty(&[("node", true), ("kind", true), ("change", true), ("t_ms", false)]);
        findings.names.insert(0, "run".into());
        findings.cols.insert(0, Col::I32(Vec::new()));
        findings.names.insert(2, "device".into());
        findings.cols.insert(2, Col::OptStr { dict: Vec::new(), codes: Vec::new() });
        let card = serde_json::json!({
            "source": log.file.display().to_string(),
            "run_list": [{ "run": 0, "split": "test", "duration_s": duration_ms as f64 / 1000.0,
                "faults": faults.iter().map(|f| serde_json::json!({ "id": f.0, "node": log.node, "kind": f.1,
                    "start_s": f.2 as f64 / 1000.0, "end_s": f.3 as f64 / 1000.0 })).collect::<Vec<_>>() }],
            "windows": { "length_s": log.window.length_s, "stride_s": log.window.stride_s },
        });
        // The rules are scored here; a model is scored through --detector, not the facility's.
        let mut facility = facility;
        facility.classifier = None;
        Ok(Dataset {
            dir: log.file.parent().unwrap_or(Path::new(".")).to_path_buf(),
            card,
            samples: samples_t,
            windows,
            ahus: Table::new(vec![]),
            findings,
            facility,
        })
    }
}
