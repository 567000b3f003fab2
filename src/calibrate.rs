//! The calibration check: the simulated healthy actuator, driven by the real rig's setpoint
//! trajectory at the rig's own sample times, against the rig's recording.

use crate::rig::Recording;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use twinfault_core::SimTime;
use twinfault_core::actuator::{Actuator, Sample};
use twinfault_core::config::ActuatorTemplate;

/// Statistics compared between rig and model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Mean travel speed over consecutive driving samples [%/s].
    pub speed_pct_s: f64,
    /// Mean |torque| while driving [N·m].
    pub torque_moving_nm: f64,
    /// Mean signed torque while opening and while closing [N·m].
    pub torque_opening_nm: f64,
    pub torque_closing_nm: f64,
    /// Mean |torque| at rest [N·m].
    pub torque_rest_nm: f64,
    /// Mean power while driving and at rest [W].
    pub power_moving_w: f64,
    pub power_rest_w: f64,
    /// Samples at rest (a figure at rest needs enough of them to mean anything).
    pub rest_samples: usize,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

pub fn stats(samples: &[Sample]) -> Stats {
    let moving = || samples.iter().filter(|s| s.rotation == 1 || s.rotation == 2);
    let rest = || samples.iter().filter(|s| s.rotation == 0);
    // Travel speed: distance over time inside runs of at least five driving samples in one
    // direction, leaving out each run's first and last interval (start-up and stop), so the
    // rig's uneven timestamps and its rotation flag's lag at a stop do not bias it.
    let (mut dist, mut time) = (0.0, 0.0);
    let mut k = 0;
    while k < samples.len() {
        let r = samples[k].rotation;
        let mut end = k;
        while end + 1 < samples.len() && samples[end + 1].rotation == r {
            end += 1;
        }
        if r != 0 && end >= k + 4 {
            for w in samples[k + 1..end].windows(2) {
                if w[1].t > w[0].t {
                    dist += f64::from((w[1].position_pct - w[0].position_pct).abs());
                    time += (w[1].t.0 - w[0].t.0) as f64 / 1000.0;
                }
            }
        }
        k = end + 1;
    }
    let speed = if time > 0.0 { dist / time } else { f64::NAN };
    Stats {
        speed_pct_s: speed,
        torque_moving_nm: mean(moving().map(|s| f64::from(s.torque_nm.abs()))),
        torque_opening_nm: mean(samples.iter().filter(|s| s.rotation == 1).map(|s| f64::from(s.torque_nm))),
        torque_closing_nm: mean(samples.iter().filter(|s| s.rotation == 2).map(|s| f64::from(s.torque_nm))),
        torque_rest_nm: mean(rest().map(|s| f64::from(s.torque_nm.abs()))),
        power_moving_w: mean(moving().map(|s| f64::from(s.power_w))),
        power_rest_w: mean(rest().map(|s| f64::from(s.power_w))),
        rest_samples: rest().count(),
    }
}

/// Simulates the template's actuator along the recording's setpoints and sample times.
pub fn simulate(template: &Arc<ActuatorTemplate>, rec: &Recording, seed: u64) -> Vec<Sample> {
    let first = rec.samples.first().map_or(0.0, |s| f64::from(s.position_pct));
    let mut a = Actuator::new(Arc::clone(template), seed, &rec.name, first);
    let mut out = Vec::with_capacity(rec.samples.len());
    let mut prev = SimTime::ZERO;
    for (k, s) in rec.samples.iter().enumerate() {
        let dt = if k == 0 { 0.05 } else { ((s.t.0 - prev.0) as f64 / 1000.0).max(0.001) };
        prev = s.t;
        if let Some(x) = a.step(s.t, dt, f64::from(s.setpoint_pct)) {
            out.push(x);
        }
    }
    out
}

/// The tolerances of the check, with the reason for each.
pub struct Tolerance {
    pub name: &'static str,
    pub rig: f64,
    pub model: f64,
    pub allowed: f64,
    /// Not compared: the recording has too few samples for this figure.
    pub skipped: bool,
}

/// A figure at rest needs at least this many rest samples in the recording.
const MIN_REST_SAMPLES: usize = 20;

impl Tolerance {
    pub fn ok(&self) -> bool {
        self.skipped || (self.rig - self.model).abs() <= self.allowed
    }
}

/// Compares one recording with the model; returns each figure with its tolerance.
pub fn compare(template: &Arc<ActuatorTemplate>, rec: &Recording) -> Vec<Tolerance> {
    let real = stats(&rec.samples);
    let sim = stats(&simulate(template, rec, 1));
    let rest_ok = real.rest_samples >= MIN_REST_SAMPLES;
    let t = |name, rig, model, allowed, skipped| Tolerance { name, rig, model, allowed, skipped };
    vec![
        // Speed within 15 %: the rig's own recordings spread 4.1-5.1 %/s.
        t("travel speed [%/s]", real.speed_pct_s, sim.speed_pct_s, 0.15 * real.speed_pct_s, false),
        t("|torque| moving [N·m]", real.torque_moving_nm, sim.torque_moving_nm, 0.15, false),
        t("torque opening [N·m]", real.torque_opening_nm, sim.torque_opening_nm, 0.2, false),
        t("torque closing [N·m]", real.torque_closing_nm, sim.torque_closing_nm, 0.2, false),
        t("|torque| at rest [N·m]", real.torque_rest_nm, sim.torque_rest_nm, 0.05, !rest_ok),
        t("power moving [W]", real.power_moving_w, sim.power_moving_w, 0.05, false),
        t("power at rest [W]", real.power_rest_w, sim.power_rest_w, 0.02, !rest_ok),
    ]
}

/// The healthy recordings calibrated against: the 20 Hz baselines and the low-load bench tests
/// that report the motor's rotation. Left out: the `*600`-`*1000` tests (about twice the load:
/// |torque| 1.2-1.3 N·m, 0.4 W) and the sweeps (their `direction` is the sweep's, and they too
/// ran under more load), which are not this template's operating point.
pub fn calibration_files(rig_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for sub in ["flox", "pulse"] {
        let Ok(rd) = std::fs::read_dir(rig_dir.join(sub)) else { continue };
        let mut files: Vec<_> =
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "csv")).collect();
        files.sort();
        for f in files {
            let name = f.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
            let low_load = ["test100", "test200", "test300", "test400", "test500"].iter().any(|t| name.ends_with(t))
                && !name.starts_with("sweep");
            if sub == "flox" || low_load {
                v.push(f);
            }
        }
    }
    v
}

/// Runs the check over the rig folder; returns (recording, comparisons).
pub fn check(template: &Arc<ActuatorTemplate>, rig_dir: &Path, strict: bool) -> Result<Vec<(String, Vec<Tolerance>)>> {
    let mut out = Vec::new();
    for f in calibration_files(rig_dir) {
        let rec = crate::rig::read(&f, strict)?;
        rec.tally.warn();
        out.push((rec.name.clone(), compare(template, &rec)));
    }
    Ok(out)
}
