//! The calibration check: the simulated healthy actuator, driven by the real rig's setpoint
//! trajectory at the rig's own sample times, against the rig's recording.

pub mod fit;

use crate::telemetry::rig::Recording;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use twinfault_core::SimTime;
use twinfault_core::actuator::{Actuator, Sample};
use twinfault_core::config::{ActuatorModelParams, ActuatorTemplate};
use twinfault_core::fault::Injection;
use twinfault_core::types::FaultKind;

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

pub(crate) fn mean(v: impl Iterator<Item = f64>) -> f64 {
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

/// Longest model step between a recording's samples [s]: a sparse log (a sample every 0.5-3 s)
/// is simulated in steps of at most this, so the device is mid-travel at a sample as it was.
const MAX_STEP_S: f64 = 0.05;
const MAX_STEPS_PER_GAP: u64 = 1200;

/// The template's device, under `load` × the model's load, driven along the recording: each
/// row's setpoint is the command sent at that row's time, held until the next row, and each
/// simulated sample is taken at a row's time (before the device reacts to that row's command,
/// as the logger saw it). The recording's polls are already lost: the model's own drop share is
/// not applied. Where the recording derives rotation from feedback, so does the simulation.
pub fn simulate_drive(
    model: &ActuatorModelParams,
    template: &ActuatorTemplate,
    rec: &Recording,
    load: f64,
    seed: u64,
) -> Vec<Sample> {
    let mut t = template.clone();
    t.model = model.with_load(load);
    t.model.healthy_drop_share = 0.0;
    // The device starts where the recording does: its position, and its inside temperature
    // (the lab's ambient that day, which the template cannot know).
    if let Some(s) = rec.samples.first() {
        t.model.ambient_c = f64::from(s.temperature_c) - t.model.self_heating_c;
    }
    let first = rec.samples.first().map_or(0.0, |s| f64::from(s.position_pct));
    let mut a = Actuator::new(Arc::new(t), seed, &rec.name, first);
    let mut out = Vec::with_capacity(rec.samples.len());
    let mut command = first;
    let mut now = rec.samples.first().map_or(0, |s| s.t.0);
    for s in &rec.samples {
        let span_ms = s.t.0.saturating_sub(now);
        // A long silence (a minute or more: the device has long settled) in coarser steps, so a
        // log with a jump of days costs no more than a minute.
        let steps = ((span_ms as f64 / 1000.0 / MAX_STEP_S).ceil() as u64).clamp(1, MAX_STEPS_PER_GAP);
        let mut sample = None;
        for k in 1..=steps {
            let t = now + span_ms * k / steps;
            let dt = ((span_ms as f64 / steps as f64) / 1000.0).max(0.001);
            sample = a.step(SimTime(t), dt, command);
        }
        now = s.t.0;
        if let Some(mut x) = sample {
            x.setpoint_pct = s.setpoint_pct;
            out.push(x);
        }
        command = f64::from(s.setpoint_pct);
    }
    if !rec.rotation_reported {
        crate::telemetry::rig::derive_rotation(&mut out);
    }
    out
}

/// The template's device at its own load along the recording (see [`simulate_drive`]).
pub fn simulate(template: &ActuatorTemplate, rec: &Recording, seed: u64) -> Vec<Sample> {
    simulate_drive(&template.model, template, rec, 1.0, seed)
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
        let rec = crate::telemetry::rig::read(&f, strict)?;
        rec.tally.warn();
        out.push((rec.name.clone(), compare(template, &rec)));
    }
    Ok(out)
}

/// The signature figures of a bench exercise, as `../shared/docs/domain.md` §1 documents them
/// for the rig's hand-imposed faults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signature {
    /// Share of samples with rotation 0, and with a position change from the sample before.
    pub rotation_zero_share: f64,
    pub position_change_share: f64,
    /// Feedback range over the exercise, and the setpoint's [%].
    pub feedback_min_pct: f64,
    pub feedback_max_pct: f64,
    pub setpoint_span_pct: f64,
    /// Signed torque over all samples: mean and standard deviation [N·m].
    pub torque_mean_nm: f64,
    pub torque_sd_nm: f64,
    /// Mean power over all samples [W].
    pub power_mean_w: f64,
}

pub fn signature(samples: &[Sample]) -> Signature {
    let n = samples.len().max(1) as f64;
    let f = |g: fn(&Sample) -> f32| samples.iter().map(move |s| f64::from(g(s)));
    let torque_mean = mean(f(|s| s.torque_nm));
    let var = mean(f(|s| s.torque_nm).map(|x| (x - torque_mean).powi(2)));
    let changes = samples.windows(2).filter(|w| w[1].position_pct != w[0].position_pct).count();
    let sp = f(|s| s.setpoint_pct);
    Signature {
        rotation_zero_share: samples.iter().filter(|s| s.rotation == 0).count() as f64 / n,
        position_change_share: changes as f64 / (n - 1.0).max(1.0),
        feedback_min_pct: f(|s| s.position_pct).fold(f64::INFINITY, f64::min),
        feedback_max_pct: f(|s| s.position_pct).fold(f64::NEG_INFINITY, f64::max),
        setpoint_span_pct: sp.clone().fold(f64::NEG_INFINITY, f64::max) - sp.fold(f64::INFINITY, f64::min),
        torque_mean_nm: torque_mean,
        torque_sd_nm: var.sqrt(),
        power_mean_w: mean(f(|s| s.power_w)),
    }
}

/// Length, sample rate and sweep period of the bench exercise: the rig's faulted recordings are
/// 34-61 s at 16-20 Hz with the setpoint sweeping across the range.
const EXERCISE_S: f64 = 48.0;
const EXERCISE_HZ: f64 = 20.8;
const SWEEP_PERIOD_S: f64 = 42.0;

/// The template's device in a bench exercise, with `kind` injected at full severity from the
/// start (a blockage at 11 %, where the rig's was), or healthy.
pub fn bench_exercise(template: &Arc<ActuatorTemplate>, kind: Option<FaultKind>, seed: u64) -> Vec<Sample> {
    let start = if kind == Some(FaultKind::GearJam) { 1.0 } else { 30.0 };
    let mut a = Actuator::new(Arc::clone(template), seed, "bench", start);
    if let Some(kind) = kind {
        a.inject(Injection {
            id: "F1".into(),
            node: "bench".into(),
            kind,
            severity: 1.0,
            start: SimTime::ZERO,
            ramp_s: 0.0,
            end: None,
            position_pct: (kind == FaultKind::ClosureBlockage).then_some(11.0),
            period_s: None,
        });
    }
    let dt = 1.0 / EXERCISE_HZ;
    let mut out = Vec::new();
    for k in 0..(EXERCISE_S * EXERCISE_HZ) as u64 {
        let t_s = k as f64 * dt;
        // A triangle from the start position's side: 30 % up to 100, down to 0, back up.
        let x = (t_s / SWEEP_PERIOD_S + 0.15).rem_euclid(1.0);
        let sp = 100.0 * (1.0 - (2.0 * x - 1.0).abs());
        if let Some(s) = a.step(SimTime((t_s * 1000.0).round() as u64), dt, sp) {
            out.push(s);
        }
    }
    out
}

/// One documented figure of a fault kind against the model's.
pub struct FaultFigure {
    pub kind: FaultKind,
    pub name: &'static str,
    pub real: f64,
    pub model: f64,
    pub allowed: f64,
}

impl FaultFigure {
    pub fn ok(&self) -> bool {
        (self.real - self.model).abs() <= self.allowed
    }
}

/// The four hand-imposed kinds of the rig, simulated in a bench exercise, against the figures
/// domain.md §1 documents for the real recordings (tolerances: about a third of each figure's
/// own size, or the rig's healthy spread where that is larger). The real recordings' internal
/// temperature (27.7-27.9 °C against about 27.0) is not compared: it reflects the rig's hours of
/// running, which a 48 s exercise from a cold model does not have (thermal time constant 30 min).
pub fn fault_signatures(template: &Arc<ActuatorTemplate>, seed: u64) -> Vec<FaultFigure> {
    use FaultKind::*;
    let mut out = Vec::new();
    let mut fig = |kind, name, real, model, allowed| out.push(FaultFigure { kind, name, real, model, allowed });
    let s = signature(&bench_exercise(template, Some(GearJam), seed));
    fig(GearJam, "feedback max [%] (pinned near 0-2 %)", 2.0, s.feedback_max_pct, 1.5);
    fig(GearJam, "setpoint span [%] (0-99 %)", 99.0, s.setpoint_span_pct, 5.0);
    fig(GearJam, "power mean [W]", 0.004, s.power_mean_w, 0.02);
    fig(GearJam, "rotation 0 share", 0.90, s.rotation_zero_share, 0.10);
    let s = signature(&bench_exercise(template, Some(ClosureBlockage), seed));
    fig(ClosureBlockage, "feedback min [%] (band about 11-40 %)", 11.0, s.feedback_min_pct, 4.0);
    fig(ClosureBlockage, "feedback max [%]", 40.0, s.feedback_max_pct, 10.0);
    fig(ClosureBlockage, "setpoint span [%] (0-100 %)", 100.0, s.setpoint_span_pct, 5.0);
    let s = signature(&bench_exercise(template, Some(Destabilization), seed));
    fig(Destabilization, "rotation 0 share (about a third)", 0.33, s.rotation_zero_share, 0.12);
    fig(Destabilization, "position change share (about a third)", 0.33, s.position_change_share, 0.12);
    fig(Destabilization, "torque mean [N·m]", -0.16, s.torque_mean_nm, 0.08);
    let s = signature(&bench_exercise(template, Some(AddedResistance), seed));
    let healthy = signature(&bench_exercise(template, None, seed));
    fig(AddedResistance, "torque mean [N·m]", -0.34, s.torque_mean_nm, 0.10);
    fig(AddedResistance, "power mean [W]", 0.22, s.power_mean_w, 0.04);
    fig(
        AddedResistance,
        "position change share / healthy (speed unchanged)",
        1.0,
        s.position_change_share / healthy.position_change_share,
        0.10,
    );
    out
}
