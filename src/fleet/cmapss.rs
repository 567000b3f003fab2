//! NASA C-MAPSS turbofan data: reading the files, the seed's row labels (RUL ≤ 30), training the
//! health model on a training subset and scoring a test subset the way the second seed did,
//! plus per-engine scores, lead times, false alarms and RUL RMSE.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinfault_core::asset::{AssetTemplate, DetectorChoice, HealthModel, MemberPhase, Monitor, TrainingRun};
pub use twinfault_load::cmapss::{Unit, load_fleet, load_template, read_rul, read_units};

/// The seed's second-seed figures on FD001 (precision, recall, F1 of the anomaly rows).
pub const SEED_FD001: (f64, f64, f64) = (0.66, 0.78, 0.71);

/// True remaining life of every row of the test units: last observed cycle + RUL − cycle.
pub fn test_rul(units: &[Unit], rul: &[f64]) -> Result<Vec<Vec<f64>>> {
    units
        .iter()
        .map(|u| {
            let end = *rul.get(u.unit - 1).with_context(|| format!("no RUL for unit {}", u.unit))?;
            let last = f64::from(*u.cycles.last().expect("units have rows"));
            Ok(u.cycles.iter().map(|&c| last + end - f64::from(c)).collect())
        })
        .collect()
}

/// The files of one subset under `dir`.
pub struct Subset {
    pub name: String,
    pub train: PathBuf,
    pub test: PathBuf,
    pub rul: PathBuf,
}

impl Subset {
    pub fn new(dir: &Path, name: &str) -> Result<Subset> {
        let s = Subset {
            name: name.to_string(),
            train: dir.join(format!("train_{name}.txt")),
            test: dir.join(format!("test_{name}.txt")),
            rul: dir.join(format!("RUL_{name}.txt")),
        };
        for p in [&s.train, &s.test, &s.rul] {
            if !p.is_file() {
                bail!("{}: no such file (expected the C-MAPSS subset {name} in {})", p.display(), dir.display());
            }
        }
        Ok(s)
    }
}

/// Trains the template's health model on a training file (run-to-failure units).
pub fn train(template: &AssetTemplate, train_file: &Path) -> Result<HealthModel> {
    let units = read_units(train_file, template)?;
    let runs: Vec<TrainingRun> =
        units.into_iter().map(|u| TrainingRun { settings: u.settings, sensors: u.sensors }).collect();
    let name = train_file.file_name().map_or("?".into(), |n| n.to_string_lossy().to_string());
    twinfault_core::asset::train(template, &runs, &format!("{name} ({} engines)", runs.len()))
        .map_err(|e| anyhow::anyhow!("{}: {e}", train_file.display()))
}

/// How one engine's alarm stands against its truth (the per-engine protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOutcome {
    /// Alarmed inside its last `horizon` cycles, not before.
    Caught,
    /// Alarmed with more than `horizon` cycles left.
    Early,
    /// Its last `horizon` cycles are in the data and it raised nothing.
    Missed,
    /// No alarm, and none was due in the data.
    Quiet,
}

impl EngineOutcome {
    /// From the life left at the end of the data and at the first alarm.
    pub fn of(end: f64, alarm_at: Option<f64>, horizon: f64) -> EngineOutcome {
        match alarm_at {
            Some(r) if r > horizon => EngineOutcome::Early,
            Some(_) => EngineOutcome::Caught,
            None if end <= horizon => EngineOutcome::Missed,
            None => EngineOutcome::Quiet,
        }
    }
}

/// Scores of one detector on a test subset.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub detector: String,
    pub threshold: f64,
    pub rows: usize,
    pub positives: usize,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Engines whose last `horizon` cycles are in the data.
    pub engines_with_window: usize,
    /// Of those, alarmed inside the window and never before.
    pub engines_caught: usize,
    /// Engines alarmed before their last `horizon` cycles (false alarms).
    pub engines_early: usize,
    /// Life left at those early alarms: median [cycles] (how early they were).
    pub early_median_rul: Option<f64>,
    /// Engines with a window in the data and no alarm.
    pub engines_missed: usize,
    pub engines: usize,
    /// Early alarms per engine.
    pub false_alarms_per_engine: f64,
    /// Cycles of life left at the first (right) alarm: median, min, max.
    pub lead_median: Option<f64>,
    pub lead_min: Option<f64>,
    pub lead_max: Option<f64>,
    /// RMSE of the remaining-life estimate on each engine's last observed cycle.
    pub rul_rmse_last: f64,
    /// Rows not scored by the monitor (unknown operating condition, outlier): they keep the
    /// engine's previous state.
    pub gated_rows: usize,
}

/// Runs each test unit through a fresh monitor and scores rows and engines.
pub fn score(model: &Arc<HealthModel>, units: &[Unit], truth: &[Vec<f64>], horizon: f64) -> Scores {
    score_traced(model, units, truth, horizon, &mut Vec::new())
}

/// A test engine's estimates against the truth (true, estimated), and where its alarm opened.
pub use crate::dataset::charts::RulTrace as Trace;

/// As [`score`], also collecting the trace of every engine whose last `horizon` cycles are in
/// the data.
pub fn score_traced(
    model: &Arc<HealthModel>,
    units: &[Unit],
    truth: &[Vec<f64>],
    horizon: f64,
    traces: &mut Vec<Trace>,
) -> Scores {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let (mut with_window, mut caught, mut early, mut missed) = (0, 0, 0, 0);
    let mut leads = Vec::new();
    let mut earlies = Vec::new();
    let mut se = 0.0;
    let mut rows = 0;
    let mut gated = 0;
    for (u, rul) in units.iter().zip(truth) {
        let mut m = Monitor::new(Arc::clone(model));
        let mut first_alarm: Option<f64> = None;
        let mut trace: Trace = (Vec::with_capacity(u.cycles.len()), None);
        let mut last_est = model.rul.cap;
        for (i, &c) in u.cycles.iter().enumerate() {
            let v = m.observe(c, &u.settings[i], &u.sensors[i]);
            rows += 1;
            gated += usize::from(matches!(v.phase, MemberPhase::UnknownRegime | MemberPhase::Outlier));
            last_est = v.rul;
            let label = rul[i] <= horizon;
            if v.opened && first_alarm.is_none() {
                first_alarm = Some(rul[i]);
                trace.1 = Some((rul[i], v.rul));
            }
            trace.0.push((rul[i], v.rul));
            match (v.alarm, label) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
        let end = *rul.last().expect("units have rows");
        se += (last_est - end.min(model.rul.cap)).powi(2);
        let has_window = end <= horizon;
        if has_window {
            traces.push(trace);
        }
        with_window += usize::from(has_window);
        match (EngineOutcome::of(end, first_alarm, horizon), first_alarm) {
            (EngineOutcome::Early, Some(r)) => {
                early += 1;
                earlies.push(r);
            }
            (EngineOutcome::Caught, Some(r)) => {
                caught += 1;
                leads.push(r);
            }
            (EngineOutcome::Missed, _) => missed += 1,
            _ => {}
        }
    }
    leads.sort_by(f64::total_cmp);
    earlies.sort_by(f64::total_cmp);
    let p = if tp + fp == 0 { 0.0 } else { tp as f64 / (tp + fp) as f64 };
    let r = if tp + fn_ == 0 { 0.0 } else { tp as f64 / (tp + fn_) as f64 };
    Scores {
        detector: match model.detector {
            DetectorChoice::HealthIndex => "health_index".into(),
            _ => "rul".into(),
        },
        threshold: model.threshold,
        rows,
        positives: tp + fn_,
        tp,
        fp,
        fn_,
        precision: p,
        recall: r,
        f1: if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) },
        engines_with_window: with_window,
        engines_caught: caught,
        engines_early: early,
        early_median_rul: earlies.get(earlies.len() / 2).copied(),
        engines_missed: missed,
        engines: units.len(),
        false_alarms_per_engine: early as f64 / units.len().max(1) as f64,
        lead_median: leads.get(leads.len() / 2).copied(),
        lead_min: leads.first().copied(),
        lead_max: leads.last().copied(),
        rul_rmse_last: (se / units.len().max(1) as f64).sqrt(),
        gated_rows: gated,
    }
}

/// The benchmark: the deployed detector and the other one, on one subset.
#[derive(Debug, Clone, Serialize)]
pub struct Benchmark {
    pub subset: String,
    pub trained_on: String,
    pub regimes: usize,
    pub chosen: Scores,
    pub other: Scores,
    pub cv: twinfault_core::asset::CvScores,
    pub seed: (f64, f64, f64),
    /// The deployed detector's estimates on each test engine whose last cycles are in the data.
    #[serde(skip)]
    pub traces: Vec<Trace>,
    /// The cap of the deployed alarm's estimate and the label horizon (for the chart).
    pub alarm_cap: f64,
    pub horizon_cycles: f64,
}

/// Trains on the subset's training file (or takes `model`) and scores its test file.
pub fn benchmark(template: &AssetTemplate, subset: &Subset, model: Option<HealthModel>) -> Result<Benchmark> {
    let model = match model {
        Some(m) => m,
        None => train(template, &subset.train)?,
    };
    let units = read_units(&subset.test, template)?;
    let rul = read_rul(&subset.rul)?;
    if rul.len() < units.len() {
        bail!("{}: {} values for {} test units", subset.rul.display(), rul.len(), units.len());
    }
    let truth = test_rul(&units, &rul)?;
    let horizon = template.alarm.horizon_cycles;
    let chosen = Arc::new(model.clone());
    let mut traces = Vec::new();
    let mut other = model.clone();
    (other.detector, other.threshold) = match model.detector {
        DetectorChoice::HealthIndex => (DetectorChoice::Rul, model.cv.rul_threshold),
        _ => (DetectorChoice::HealthIndex, model.cv.health_index_threshold),
    };
    Ok(Benchmark {
        subset: subset.name.clone(),
        trained_on: model.trained_on.clone(),
        regimes: model.regimes.len(),
        chosen: score_traced(&chosen, &units, &truth, horizon, &mut traces),
        other: score(&Arc::new(other), &units, &truth, horizon),
        cv: model.cv.clone(),
        traces,
        alarm_cap: model.alarm_rul.cap,
        horizon_cycles: horizon,
        seed: SEED_FD001,
    })
}

impl Benchmark {
    /// The estimates of the engines whose last cycles are in the data, against the truth (PNG).
    pub fn chart(&self, path: &Path) -> Result<()> {
        let title = format!(
            "C-MAPSS {}: remaining-life estimate near the end of life, {} test engines (dot: alarm)",
            self.subset,
            self.traces.len()
        );
        crate::dataset::charts::rul_traces(
            &self.traces,
            self.chosen.threshold,
            self.horizon_cycles,
            self.alarm_cap,
            &title,
            path,
        )
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "C-MAPSS {}: {} test rows, {} anomalous (RUL ≤ 30); trained on {} ({} operating regime{})\n\n",
            self.subset,
            self.chosen.rows,
            self.chosen.positives,
            self.trained_on,
            self.regimes,
            if self.regimes == 1 { "" } else { "s" }
        );
        s += "detector                          precision  recall     F1   engines caught/early/missed  FA/engine  lead (median, min-max)  RUL RMSE\n";
        let row = |name: &str, c: &Scores| {
            format!(
                "{name:<33} {:>9.3} {:>7.3} {:>6.3}   {:>6}/{}/{} of {:<3} with window  {:>8.2}  {:>22}  {:>8.1}\n",
                c.precision,
                c.recall,
                c.f1,
                c.engines_caught,
                c.engines_early,
                c.engines_missed,
                c.engines_with_window,
                c.false_alarms_per_engine,
                match (c.lead_median, c.lead_min, c.lead_max) {
                    (Some(m), Some(a), Some(b)) => format!("{m:.0} ({a:.0}-{b:.0}) cycles"),
                    _ => "-".into(),
                },
                c.rul_rmse_last
            )
        };
        let name = |c: &Scores| match c.detector.as_str() {
            "rul" => format!("twinfault RUL ≤ {:.1} (deployed)", c.threshold),
            _ => format!("twinfault health index ≥ {:.2}", c.threshold),
        };
        s += &row(&name(&self.chosen), &self.chosen);
        s += &row(&name(&self.other).replace(" (deployed)", ""), &self.other);
        for c in [&self.chosen, &self.other] {
            if let Some(e) = c.early_median_rul {
                s += &format!(
                    "{}: the {} early alarms came with a median {e:.0} cycles of life left (an alarm is right within the last 30)\n",
                    name(c).replace(" (deployed)", ""),
                    c.engines_early
                );
            }
        }
        if self.chosen.gated_rows > 0 {
            s += &format!(
                "warning: {} of {} rows were not scored (operating conditions the model was not trained on, or outliers)\n",
                self.chosen.gated_rows, self.chosen.rows
            );
        }
        if self.subset == "FD001" {
            s += &format!(
                "second seed (random forest, SMOTE)  {:>7.3} {:>7.3} {:>6.3}\n",
                self.seed.0, self.seed.1, self.seed.2
            );
        }
        s += &format!(
            "\nchosen on train (engine-wise 5-fold row F1): RUL estimate {:.3}, health index {:.3}\n",
            self.cv.rul, self.cv.health_index
        );
        s
    }
}
