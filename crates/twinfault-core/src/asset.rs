//! Assets beyond HVAC, described by data: an asset template names its channels (operating
//! settings and sensors, with units) and configures a causal, phase-aware health detector; a fleet
//! file puts members of one template under a fleet node. The turbofan engines of NASA C-MAPSS
//! (`twins/turbofan.toml`, `twins/turbofan_fleet.toml`) are the first such asset.
//!
//! Detection per member, one cycle at a time, using only the cycles seen so far:
//! 1. **Regime**: the operating settings pick the nearest learned operating condition (within
//!    its tolerance); a cycle in no known condition is gated (not scored, state unchanged).
//! 2. **Normalisation per regime**: each sensor as a z-score against that condition's healthy
//!    reference, so one detector works on single- and multi-condition data alike.
//! 3. **Phase**: a member's first `baseline_cycles` learn its own offset (initial wear and
//!    manufacturing spread are normal) and raise nothing; a cycle far off the member's smoothed
//!    state is an outlier and does not move it; after that the member is monitored.
//! 4. **Health**: the smoothed z-scores minus the member's baseline give a health index (sign
//!    aligned mean) and a remaining-life estimate (ridge regression on a capped life target);
//!    the trained model says which one alarms, and at what threshold.
//! 5. **Alarm** with confirmation: the condition must hold `confirm_cycles` in a row; once open
//!    the alarm stays open (degradation does not heal).

use crate::config::{ConfigError, parse_toml};
use crate::detect::{Change, FindingEvent, Source};
use crate::event::Event;
use crate::types::{FaultKind, Severity, SimTime, Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelRole {
    /// An operating setting (decides the regime).
    Setting,
    Sensor,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    pub role: ChannelRole,
    pub unit: String,
    pub description: String,
}

/// How operating regimes are told apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeSpec {
    /// Per setting, in channel order: settings closer than this to a regime's centre belong to it.
    pub tolerance: Vec<f64>,
    /// Training fails when the data show more operating conditions than this.
    pub max_regimes: usize,
}

/// Which health output raises the alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorChoice {
    /// Whichever scores better on the training data (engine-wise cross-validation).
    Auto,
    /// The remaining-life estimate at or below a threshold.
    Rul,
    /// The unsupervised health index at or above a threshold.
    HealthIndex,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Sensors the detector uses (names of sensor channels).
    pub sensors: Vec<String>,
    /// Training: each member's first cycles are its healthy reference for the regime statistics.
    pub reference_cycles: usize,
    /// Each member's first cycles set its own baseline; nothing is raised before.
    pub baseline_cycles: usize,
    /// Time constant of the exponential smoothing [cycles].
    pub smoothing_cycles: f64,
    /// Time constant of a slower second smoothing [cycles]; the difference of the two is each
    /// sensor's recent trend, an input of its own.
    pub trend_cycles: f64,
    /// Cap of the whole-life remaining-life target [cycles] (early life all looks healthy).
    pub rul_cap: f64,
    /// Candidate caps of the end-of-life estimate that raises the alarm [cycles]; training keeps
    /// the one that scores best on its own runs (out of fold).
    pub alarm_caps: Vec<f64>,
    /// A cycle whose mean |z| departs further than this from the smoothed state is an outlier.
    pub outlier_z: f64,
    /// Ridge penalty of the regressions (on standardised inputs).
    pub ridge: f64,
    pub detector: DetectorChoice,
}

/// The finding kinds an asset's alarm can raise.
pub const ASSET_KINDS: &[FaultKind] = &[FaultKind::Degradation];

/// What an alarm means and how it is raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSpec {
    /// Finding kind, e.g. `degradation`.
    pub kind: FaultKind,
    pub severity: Severity,
    /// An alarm is right when the member has at most this many cycles left (the label).
    pub horizon_cycles: f64,
    /// Cycles in a row the condition must hold before the alarm opens.
    pub confirm_cycles: usize,
    /// `{node}`, `{rul}` and `{hi}` are filled in.
    pub summary: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetTemplateFile {
    kind: String,
    asset: String,
    description: String,
    time_unit: String,
    channels: Vec<Channel>,
    regimes: RegimeSpec,
    health: HealthSpec,
    alarm: AlarmSpec,
}

/// A validated asset template.
#[derive(Debug, Clone, Serialize)]
pub struct AssetTemplate {
    pub asset: String,
    pub description: String,
    pub time_unit: String,
    pub channels: Vec<Channel>,
    pub regimes: RegimeSpec,
    pub health: HealthSpec,
    pub alarm: AlarmSpec,
}

impl AssetTemplate {
    pub fn parse(text: &str, file: &str) -> Result<AssetTemplate, ConfigError> {
        Self::parse_unlocated(text, file).map_err(|e| e.locate(text))
    }

    fn parse_unlocated(text: &str, file: &str) -> Result<AssetTemplate, ConfigError> {
        let raw: AssetTemplateFile = parse_toml(text, file)?;
        if raw.kind != "asset" {
            return Err(ConfigError::new(file, "kind", format!("expected \"asset\", found \"{}\"", raw.kind)));
        }
        let err = |k: &str, m: String| Err(ConfigError::new(file, k, m));
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in raw.channels.iter().enumerate() {
            if !seen.insert(c.name.as_str()) {
                return err(&format!("channels[{i}].name"), format!("\"{}\" is listed twice", c.name));
            }
        }
        let settings = raw.channels.iter().filter(|c| c.role == ChannelRole::Setting).count();
        if settings == 0 || raw.channels.iter().all(|c| c.role != ChannelRole::Sensor) {
            return err("channels", "needs at least one setting and one sensor".into());
        }
        if raw.regimes.tolerance.len() != settings {
            return err("regimes.tolerance", format!("{} values for {settings} settings", raw.regimes.tolerance.len()));
        }
        if let Some(t) = raw.regimes.tolerance.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
            return err("regimes.tolerance", format!("{t} must be a positive number"));
        }
        if raw.regimes.max_regimes == 0 {
            return err("regimes.max_regimes", "must be at least 1".into());
        }
        let h = &raw.health;
        if h.sensors.is_empty() {
            return err("health.sensors", "names no sensor".into());
        }
        for (i, s) in h.sensors.iter().enumerate() {
            if !raw.channels.iter().any(|c| c.name == *s && c.role == ChannelRole::Sensor) {
                return err(&format!("health.sensors[{i}]"), format!("\"{s}\" is not a sensor channel"));
            }
        }
        for (k, v) in [
            ("health.smoothing_cycles", h.smoothing_cycles),
            ("health.trend_cycles", h.trend_cycles),
            ("health.rul_cap", h.rul_cap),
            ("health.outlier_z", h.outlier_z),
            ("alarm.horizon_cycles", raw.alarm.horizon_cycles),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(k, format!("{v} must be a positive number"));
            }
        }
        if !ASSET_KINDS.contains(&raw.alarm.kind) {
            let names: Vec<&str> = ASSET_KINDS.iter().map(|k| k.as_str()).collect();
            return err(
                "alarm.kind",
                format!("\"{}\" is an HVAC fault kind; an asset alarm is one of {}", raw.alarm.kind, names.join(", ")),
            );
        }
        if h.alarm_caps.is_empty() {
            return err("health.alarm_caps", "names no cap".into());
        }
        if let Some(c) = h.alarm_caps.iter().find(|c| !(c.is_finite() && **c > raw.alarm.horizon_cycles)) {
            return err(
                "health.alarm_caps",
                format!("{c} must be a number above alarm.horizon_cycles ({})", raw.alarm.horizon_cycles),
            );
        }
        if !(h.ridge.is_finite() && h.ridge >= 0.0) {
            return err("health.ridge", format!("{} must be zero or positive", h.ridge));
        }
        for (k, v) in [
            ("health.reference_cycles", h.reference_cycles),
            ("health.baseline_cycles", h.baseline_cycles),
            ("alarm.confirm_cycles", raw.alarm.confirm_cycles),
        ] {
            if v == 0 {
                return err(k, "must be at least 1".into());
            }
        }
        Ok(AssetTemplate {
            asset: raw.asset,
            description: raw.description,
            time_unit: raw.time_unit,
            channels: raw.channels,
            regimes: raw.regimes,
            health: raw.health,
            alarm: raw.alarm,
        })
    }

    pub fn settings(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter().filter(|c| c.role == ChannelRole::Setting)
    }

    pub fn sensors(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter().filter(|c| c.role == ChannelRole::Sensor)
    }

    /// Positions of the health sensors among the sensor channels.
    pub fn health_sensor_positions(&self) -> Vec<usize> {
        self.health.sensors.iter().filter_map(|s| self.sensors().position(|c| c.name == *s)).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFileRaw {
    kind: String,
    id: String,
    name: String,
    template: String,
    model: String,
    members: usize,
    member_id: String,
}

/// A fleet: `members` assets of one template (ids from `member_id`, e.g. `engine-{unit:03}`)
/// under one fleet node, watched with one trained model. Paths are relative to the file.
#[derive(Debug, Clone)]
pub struct FleetFile {
    pub id: String,
    pub name: String,
    pub template: String,
    pub model: String,
    pub members: usize,
    pub member_id: String,
}

impl FleetFile {
    pub fn parse(text: &str, file: &str) -> Result<FleetFile, ConfigError> {
        let raw: FleetFileRaw = parse_toml(text, file)?;
        let err = |k: &str, m: String| Err(ConfigError::new(file, k, m).locate(text));
        if raw.kind != "fleet" {
            return err("kind", format!("expected \"fleet\", found \"{}\"", raw.kind));
        }
        if raw.members == 0 {
            return err("members", "must be at least 1".into());
        }
        if format_member(&raw.member_id, 1).is_none() {
            return err("member_id", format!("\"{}\" needs {{unit}} or {{unit:0N}}", raw.member_id));
        }
        if raw.id.trim().is_empty() {
            return err("id", "is empty".into());
        }
        Ok(FleetFile {
            id: raw.id,
            name: raw.name,
            template: raw.template,
            model: raw.model,
            members: raw.members,
            member_id: raw.member_id,
        })
    }

    /// The id of member `unit` (1-based), or `None` past the fleet's size.
    pub fn member(&self, unit: usize) -> Option<String> {
        (1..=self.members).contains(&unit).then(|| format_member(&self.member_id, unit)).flatten()
    }
}

/// Fills `{unit}` or `{unit:0N}` (zero-padded to N digits).
fn format_member(pattern: &str, unit: usize) -> Option<String> {
    let start = pattern.find("{unit")?;
    let end = start + pattern[start..].find('}')?;
    let spec = &pattern[start + 5..end];
    let text = match spec.strip_prefix(":0") {
        None if spec.is_empty() => unit.to_string(),
        Some(w) => format!("{unit:0width$}", width = w.parse::<usize>().ok().filter(|w| *w <= 12)?),
        None => return None,
    };
    Some(format!("{}{text}{}", &pattern[..start], &pattern[end + 1..]))
}

/// One operating condition: its centre and healthy sensor statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regime {
    pub centre: Vec<f64>,
    /// Per health sensor.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Training rows in this regime.
    pub rows: usize,
}

/// Format tag and version of a health model file.
pub const HEALTH_MODEL_FORMAT: &str = "twinfault-health-model";
pub const HEALTH_MODEL_VERSION: u32 = 1;

/// A linear estimate of remaining life, clamped to `0..=cap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearRul {
    pub weights: Vec<f64>,
    pub bias: f64,
    pub cap: f64,
}

impl LinearRul {
    fn eval(&self, x: &[f64]) -> f64 {
        (self.bias + x.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>()).clamp(0.0, self.cap)
    }
}

/// A trained detector for one asset template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthModel {
    pub format: String,
    pub version: u32,
    pub asset: String,
    /// What it was trained on (e.g. `train_FD001.txt (100 engines)`).
    pub trained_on: String,
    pub sensors: Vec<String>,
    /// Positions of `sensors` among the template's sensor channels.
    pub sensor_positions: Vec<usize>,
    pub tolerance: Vec<f64>,
    pub regimes: Vec<Regime>,
    pub smoothing_cycles: f64,
    pub trend_cycles: f64,
    pub baseline_cycles: usize,
    pub outlier_z: f64,
    /// Health index = Σ weight × (smoothed z − the member's baseline): sign-aligned mean.
    pub hi_weights: Vec<f64>,
    /// Remaining life over the whole life (shown, and scored by RMSE). Features: smoothed z per
    /// sensor, its trend (smoothed minus slowly smoothed) per sensor, cycles seen / 100.
    pub rul: LinearRul,
    /// Remaining life near the end of life, with the cap that scored best on the training runs:
    /// the alarm's estimate.
    pub alarm_rul: LinearRul,
    pub detector: DetectorChoice,
    /// Alarm when the end-of-life estimate ≤ threshold (`rul`) or the index ≥ it (`health_index`).
    pub threshold: f64,
    pub confirm_cycles: usize,
    pub horizon_cycles: f64,
    /// Why `detector`, `threshold` and the alarm's cap were chosen.
    pub cv: CvScores,
}

/// Row F1 on the training runs, out of fold (5 folds of whole runs), each with the threshold that
/// scored best there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvScores {
    pub rul: f64,
    pub rul_threshold: f64,
    /// Per candidate cap of the end-of-life estimate: (cap, F1, threshold).
    pub rul_by_cap: Vec<(f64, f64, f64)>,
    pub health_index: f64,
    pub health_index_threshold: f64,
}

impl HealthModel {
    /// Parses a model file, refusing other formats, versions and templates.
    pub fn from_json(text: &str, file: &str, template: &AssetTemplate) -> Result<HealthModel, ConfigError> {
        let m: HealthModel =
            serde_json::from_str(text).map_err(|e| ConfigError::new(file, "", format!("not a health model: {e}")))?;
        if m.format != HEALTH_MODEL_FORMAT || m.version != HEALTH_MODEL_VERSION {
            return Err(ConfigError::new(
                file,
                "version",
                format!(
                    "{} v{} is not {HEALTH_MODEL_FORMAT} v{HEALTH_MODEL_VERSION}; train it again with `twinfault train --cmapss`",
                    m.format, m.version
                ),
            ));
        }
        if m.asset != template.asset || m.sensors != template.health.sensors {
            return Err(ConfigError::new(
                file,
                "sensors",
                format!("trained for {} with other sensors than the template's {}", m.asset, template.asset),
            ));
        }
        let k = m.sensors.len();
        let ok = m.hi_weights.len() == k
            && m.rul.weights.len() == 2 * k + 1
            && m.alarm_rul.weights.len() == 2 * k + 1
            && m.sensor_positions.len() == k
            && m.sensor_positions.iter().all(|&p| p < template.sensors().count())
            && m.tolerance.len() == template.settings().count()
            && !m.regimes.is_empty()
            && m.regimes.iter().all(|r| r.mean.len() == k && r.std.len() == k && r.centre.len() == m.tolerance.len());
        if !ok {
            return Err(ConfigError::new(file, "", "inconsistent sizes: the file is damaged"));
        }
        Ok(m)
    }

    /// The regime of a cycle's settings, if it is within tolerance of one.
    pub fn regime_of(&self, settings: &[f64]) -> Option<usize> {
        nearest(&self.regimes.iter().map(|r| r.centre.as_slice()).collect::<Vec<_>>(), &self.tolerance, settings)
    }

    /// The shown remaining life: the end-of-life estimate below its cap, else the whole-life one.
    fn shown_rul(&self, x: &[f64]) -> (f64, f64) {
        let near = self.alarm_rul.eval(x);
        let whole = self.rul.eval(x);
        // Near its cap the end-of-life estimate only says "at least about the cap": there the
        // whole-life one is shown. Inside the alarm's range the alarm's own estimate is.
        let edge = (0.75 * self.alarm_rul.cap).max(self.threshold + 1.0);
        let shown = if near < edge { near } else { whole.max(near) };
        (shown, near)
    }
}

/// The nearest centre within tolerance (distance in tolerances, max norm).
fn nearest(centres: &[&[f64]], tol: &[f64], x: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in centres.iter().enumerate() {
        let d = c.iter().zip(x).zip(tol).map(|((c, x), t)| ((x - c) / t).abs()).fold(0.0, f64::max);
        if d <= 1.0 && best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberPhase {
    /// Learning its own baseline (and filling its averages): nothing is raised.
    Baseline,
    Monitoring,
    /// Settings in no known operating condition: the cycle is gated.
    UnknownRegime,
    /// Far off the member's smoothed state (or a sensor missing): not used.
    Outlier,
}

/// The monitor's verdict on one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CycleVerdict {
    pub cycle: u32,
    pub regime: Option<usize>,
    pub phase: MemberPhase,
    /// Health index (0 at the member's baseline, grows with degradation) [z].
    pub hi: f64,
    /// Remaining life estimate [cycles].
    pub rul: f64,
    /// Whether the alarm is open after this cycle.
    pub alarm: bool,
    /// Whether it opened at this cycle.
    pub opened: bool,
}

/// The causal detector of one member, fed its cycles in order: what it says about a cycle
/// depends on that cycle and the ones before only.
#[derive(Debug, Clone)]
pub struct Monitor {
    model: Arc<HealthModel>,
    seen: usize,
    smooth: Vec<f64>,
    slow: Vec<f64>,
    base_sum: Vec<f64>,
    base_n: usize,
    streak: usize,
    open: bool,
    last: Option<CycleVerdict>,
    /// Outlier cycles in a row.
    outliers: usize,
}

/// Outlier cycles in a row after which the new level is taken as real (a sensor swapped, an
/// engine washed): the averages restart from it instead of gating the member for good.
pub const SHIFT_AFTER_OUTLIERS: usize = 5;

/// The inputs of the estimates for one monitored cycle.
struct Inputs {
    /// Smoothed z, trend per sensor, cycles seen / 100 (the regressions').
    x: Vec<f64>,
    /// Smoothed z minus the member's baseline (the health index's).
    rel: Vec<f64>,
}

impl Monitor {
    pub fn new(model: Arc<HealthModel>) -> Monitor {
        let k = model.sensors.len();
        Monitor {
            model,
            seen: 0,
            smooth: vec![0.0; k],
            slow: vec![0.0; k],
            base_sum: vec![0.0; k],
            base_n: 0,
            streak: 0,
            open: false,
            last: None,
            outliers: 0,
        }
    }

    fn inputs(&self) -> Inputs {
        let n = self.base_n.max(1) as f64;
        let mut x = Vec::with_capacity(2 * self.smooth.len() + 1);
        x.extend_from_slice(&self.smooth);
        x.extend(self.smooth.iter().zip(&self.slow).map(|(s, w)| s - w));
        x.push(self.seen as f64 / 100.0);
        let rel = self.smooth.iter().zip(&self.base_sum).map(|(s, b)| s - b / n).collect();
        Inputs { x, rel }
    }

    /// Updates the member's state with one cycle; the cycle's phase and regime.
    fn update(&mut self, settings: &[f64], sensors: &[f64]) -> (MemberPhase, Option<usize>) {
        let m = Arc::clone(&self.model);
        let Some(r) = m.regime_of(settings) else { return (MemberPhase::UnknownRegime, None) };
        let reg = &m.regimes[r];
        let z: Vec<f64> = m
            .sensor_positions
            .iter()
            .enumerate()
            .map(|(k, &p)| (sensors.get(p).copied().unwrap_or(f64::NAN) - reg.mean[k]) / reg.std[k])
            .collect();
        if z.iter().any(|v| !v.is_finite()) {
            return (MemberPhase::Outlier, Some(r));
        }
        let mut restart = self.seen == 0;
        if self.seen > 0 {
            let dev = z.iter().zip(&self.smooth).map(|(z, s)| (z - s).abs()).sum::<f64>() / z.len() as f64;
            if dev > m.outlier_z {
                self.outliers += 1;
                if self.outliers < SHIFT_AFTER_OUTLIERS {
                    return (MemberPhase::Outlier, Some(r));
                }
                restart = true;
            }
        }
        self.outliers = 0;
        let first = restart;
        for (avg, tau) in [(&mut self.smooth, m.smoothing_cycles), (&mut self.slow, m.trend_cycles)] {
            let a = 1.0 - (-1.0 / tau).exp();
            for (s, z) in avg.iter_mut().zip(&z) {
                *s = if first { *z } else { *s + (z - *s) * a };
            }
        }
        self.seen += 1;
        if self.base_n < m.baseline_cycles {
            self.base_sum.iter_mut().zip(&z).for_each(|(b, z)| *b += z);
            self.base_n += 1;
        }
        let phase = if self.base_n < m.baseline_cycles { MemberPhase::Baseline } else { MemberPhase::Monitoring };
        (phase, Some(r))
    }

    /// One cycle: `settings` in channel order, `sensors` all sensor channels in channel order.
    pub fn observe(&mut self, cycle: u32, settings: &[f64], sensors: &[f64]) -> CycleVerdict {
        let (phase, regime) = self.update(settings, sensors);
        let m = Arc::clone(&self.model);
        if !matches!(phase, MemberPhase::Baseline | MemberPhase::Monitoring) {
            // Gated: the state and the alarm stay as they were.
            let last = self.last;
            return CycleVerdict {
                cycle,
                regime,
                phase,
                hi: last.map_or(0.0, |l| l.hi),
                rul: last.map_or(m.rul.cap, |l| l.rul),
                alarm: self.open,
                opened: false,
            };
        }
        let inp = self.inputs();
        let hi: f64 = inp.rel.iter().zip(&m.hi_weights).map(|(x, w)| x * w).sum();
        let (rul, near) = m.shown_rul(&inp.x);
        let cond = phase == MemberPhase::Monitoring
            && match m.detector {
                DetectorChoice::HealthIndex => hi >= m.threshold,
                _ => near <= m.threshold,
            };
        self.streak = if cond { self.streak + 1 } else { 0 };
        let opened = !self.open && self.streak >= m.confirm_cycles;
        self.open |= opened;
        let v = CycleVerdict { cycle, regime, phase, hi, rul, alarm: self.open, opened };
        self.last = Some(v);
        v
    }
}

/// One member's cycles for training: settings and all sensor channels per cycle, in order.
pub struct TrainingRun {
    pub settings: Vec<Vec<f64>>,
    pub sensors: Vec<Vec<f64>>,
}

/// Trains a model on run-to-failure members (the last cycle of each is its failure).
pub fn train(template: &AssetTemplate, runs: &[TrainingRun], trained_on: &str) -> Result<HealthModel, String> {
    let h = &template.health;
    let pos = template.health_sensor_positions();
    let k = pos.len();
    if runs.len() < 5 {
        return Err(format!("{} runs: training needs at least 5 run-to-failure members", runs.len()));
    }
    if let Some((i, _)) = runs.iter().enumerate().find(|(_, r)| r.settings.len() <= h.baseline_cycles) {
        return Err(format!("run {} is not longer than health.baseline_cycles", i + 1));
    }
    let tol = &template.regimes.tolerance;
    let regimes = regimes_of(runs, tol, template.regimes.max_regimes, &pos, h.reference_cycles)?;
    let zero = LinearRul { weights: vec![0.0; 2 * k + 1], bias: 0.0, cap: h.rul_cap };
    let mut model = HealthModel {
        format: HEALTH_MODEL_FORMAT.into(),
        version: HEALTH_MODEL_VERSION,
        asset: template.asset.clone(),
        trained_on: trained_on.to_string(),
        sensors: h.sensors.clone(),
        sensor_positions: pos,
        tolerance: tol.clone(),
        regimes,
        smoothing_cycles: h.smoothing_cycles,
        trend_cycles: h.trend_cycles,
        baseline_cycles: h.baseline_cycles,
        outlier_z: h.outlier_z,
        hi_weights: vec![0.0; k],
        rul: zero.clone(),
        alarm_rul: zero,
        detector: DetectorChoice::Rul,
        threshold: 0.0,
        confirm_cycles: template.alarm.confirm_cycles,
        horizon_cycles: template.alarm.horizon_cycles,
        cv: CvScores {
            rul: 0.0,
            rul_threshold: 0.0,
            rul_by_cap: Vec::new(),
            health_index: 0.0,
            health_index_threshold: 0.0,
        },
    };
    let feats = features_of(&model, runs);
    if feats.is_empty() {
        return Err("no monitored training cycles".into());
    }
    // Health index: the direction each sensor moves as life runs out, equal weights.
    let n = feats.len() as f64;
    let mean_y = feats.iter().map(|f| f.rul).sum::<f64>() / n;
    for j in 0..k {
        let mean_x = feats.iter().map(|f| f.rel[j]).sum::<f64>() / n;
        let cov: f64 = feats.iter().map(|f| (f.rel[j] - mean_x) * (f.rul - mean_y)).sum();
        model.hi_weights[j] = if cov < 0.0 { 1.0 } else { -1.0 } / k as f64;
    }
    let (horizon, confirm) = (template.alarm.horizon_cycles, template.alarm.confirm_cycles);
    let hi: Vec<f64> =
        feats.iter().map(|f| f.rel.iter().zip(&model.hi_weights).map(|(x, w)| x * w).sum::<f64>()).collect();
    let (lo, top) = hi.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let (hi_f1, hi_t) = best_threshold(&feats, &hi, horizon, confirm, false, lo, top, (top - lo) / 400.0);
    // Remaining life: ridge regressions on capped targets; the end-of-life cap and the
    // threshold chosen on out-of-fold estimates (5 folds of whole runs).
    let folds = 5;
    let mut by_cap = Vec::new();
    for &cap in &h.alarm_caps {
        let mut oof = vec![0.0; feats.len()];
        for fold in 0..folds {
            let fit = ridge(feats.iter().filter(|f| f.run % folds != fold), cap, h.ridge);
            for (i, f) in feats.iter().enumerate().filter(|(_, f)| f.run % folds == fold) {
                oof[i] = fit.eval(&f.x);
            }
        }
        let (f1, t) = best_threshold(&feats, &oof, horizon, confirm, true, 0.0, cap, 0.5);
        by_cap.push((cap, f1, t));
    }
    let &(cap, rul_f1, rul_t) = by_cap.iter().max_by(|a, b| a.1.total_cmp(&b.1)).ok_or("health.alarm_caps is empty")?;
    model.rul = ridge(feats.iter(), h.rul_cap, h.ridge);
    model.alarm_rul = ridge(feats.iter(), cap, h.ridge);
    model.cv = CvScores {
        rul: rul_f1,
        rul_threshold: rul_t,
        rul_by_cap: by_cap,
        health_index: hi_f1,
        health_index_threshold: hi_t,
    };
    let use_rul = match h.detector {
        DetectorChoice::Auto => rul_f1 >= hi_f1,
        DetectorChoice::Rul => true,
        DetectorChoice::HealthIndex => false,
    };
    model.detector = if use_rul { DetectorChoice::Rul } else { DetectorChoice::HealthIndex };
    model.threshold = if use_rul { rul_t } else { hi_t };
    Ok(model)
}

/// Operating regimes by leader clustering of the settings (centres: the means of their rows),
/// with healthy sensor statistics from each run's first `reference` cycles.
fn regimes_of(
    runs: &[TrainingRun],
    tol: &[f64],
    max: usize,
    pos: &[usize],
    reference: usize,
) -> Result<Vec<Regime>, String> {
    let mut centres: Vec<Vec<f64>> = Vec::new();
    let mut sums: Vec<(Vec<f64>, usize)> = Vec::new();
    for s in runs.iter().flat_map(|r| &r.settings) {
        let refs: Vec<&[f64]> = centres.iter().map(Vec::as_slice).collect();
        match nearest(&refs, tol, s) {
            Some(i) => {
                sums[i].0.iter_mut().zip(s).for_each(|(a, b)| *a += b);
                sums[i].1 += 1;
            }
            None if centres.len() == max => {
                return Err(format!(
                    "the settings show more than {max} operating conditions (regimes.max_regimes); settings {s:?}"
                ));
            }
            None => {
                centres.push(s.clone());
                sums.push((s.clone(), 1));
            }
        }
    }
    let centres: Vec<Vec<f64>> = sums.iter().map(|(s, n)| s.iter().map(|v| v / *n as f64).collect()).collect();
    let refs: Vec<&[f64]> = centres.iter().map(Vec::as_slice).collect();
    let k = pos.len();
    let mut acc = vec![(vec![0.0; k], vec![0.0; k], 0usize, 0usize); centres.len()];
    for run in runs {
        for (c, (s, x)) in run.settings.iter().zip(&run.sensors).enumerate() {
            let Some(r) = nearest(&refs, tol, s) else { continue };
            acc[r].3 += 1;
            if c >= reference {
                continue;
            }
            for (j, &p) in pos.iter().enumerate() {
                acc[r].0[j] += x[p];
                acc[r].1[j] += x[p] * x[p];
            }
            acc[r].2 += 1;
        }
    }
    acc.into_iter()
        .zip(centres)
        .map(|((sum, sq, n, rows), centre)| {
            if n < 2 {
                return Err(format!("operating condition {centre:?} has no healthy reference cycles"));
            }
            let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
            let std = sq
                .iter()
                .zip(&mean)
                .map(|(q, m)| {
                    let v = (q / n as f64 - m * m).max(0.0) * n as f64 / (n - 1) as f64;
                    // A constant sensor carries no information: unit scale keeps it harmless.
                    if v.sqrt() > 1e-9 { v.sqrt() } else { 1.0 }
                })
                .collect();
            Ok(Regime { centre, mean, std, rows })
        })
        .collect()
}

/// A monitored training cycle.
struct Feat {
    run: usize,
    x: Vec<f64>,
    rel: Vec<f64>,
    rul: f64,
}

/// Runs the monitor over each training run and keeps the inputs of its monitored cycles.
fn features_of(model: &HealthModel, runs: &[TrainingRun]) -> Vec<Feat> {
    let model = Arc::new(model.clone());
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut mon = Monitor::new(Arc::clone(&model));
        let n = run.settings.len();
        for (c, (s, x)) in run.settings.iter().zip(&run.sensors).enumerate() {
            if mon.update(s, x).0 == MemberPhase::Monitoring {
                let Inputs { x, rel } = mon.inputs();
                out.push(Feat { run: i, x, rel, rul: (n - 1 - c) as f64 });
            }
        }
    }
    out
}

/// Ridge regression of min(rul, cap) on the features (standardised inside; weights returned
/// in the original units).
fn ridge<'a>(rows: impl Iterator<Item = &'a Feat> + Clone, cap: f64, lambda: f64) -> LinearRul {
    let p = rows.clone().next().map_or(0, |f| f.x.len());
    let n = rows.clone().count().max(1) as f64;
    let mut mean = vec![0.0; p];
    let mut my = 0.0;
    for f in rows.clone() {
        mean.iter_mut().zip(&f.x).for_each(|(m, x)| *m += x / n);
        my += f.rul.min(cap) / n;
    }
    let mut var = vec![0.0; p];
    for f in rows.clone() {
        var.iter_mut().zip(f.x.iter().zip(&mean)).for_each(|(s, (x, m))| *s += (x - m) * (x - m) / n);
    }
    let sd: Vec<f64> = var.iter().map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 }).collect();
    let mut a = vec![vec![0.0; p]; p];
    let mut rhs = vec![0.0; p];
    for f in rows {
        let z: Vec<f64> = (0..p).map(|j| (f.x[j] - mean[j]) / sd[j]).collect();
        let y = f.rul.min(cap) - my;
        for i in 0..p {
            rhs[i] += z[i] * y;
            for j in 0..p {
                a[i][j] += z[i] * z[j];
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += lambda * n;
    }
    let beta = solve(a, rhs);
    let weights: Vec<f64> = beta.iter().zip(&sd).map(|(b, s)| b / s).collect();
    let bias = my - weights.iter().zip(&mean).map(|(w, m)| w * m).sum::<f64>();
    LinearRul { weights, bias, cap }
}

/// Solves a small symmetric positive system by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let piv = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap_or(c);
        a.swap(c, piv);
        b.swap(c, piv);
        let d = a[c][c];
        if d.abs() < 1e-12 {
            continue;
        }
        let (top, rest) = a.split_at_mut(c + 1);
        let pivot = &top[c];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[c] / d;
            if f != 0.0 {
                row[c..].iter_mut().zip(&pivot[c..]).for_each(|(x, p)| *x -= f * p);
                b[c + 1 + i] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; n];
    for c in (0..n).rev() {
        let s: f64 = (c + 1..n).map(|k| a[c][k] * x[k]).sum();
        x[c] = if a[c][c].abs() < 1e-12 { 0.0 } else { (b[c] - s) / a[c][c] };
    }
    x
}

/// The threshold in `lo..=hi` (by `step`) with the best row F1 (label: rul ≤ horizon), with
/// confirmation and the latch applied run by run as deployed; `below`: alarm when the score is
/// at or below the threshold. Returns (F1, threshold).
#[allow(clippy::too_many_arguments)]
fn best_threshold(
    feats: &[Feat],
    score: &[f64],
    horizon: f64,
    confirm: usize,
    below: bool,
    lo: f64,
    hi: f64,
    step: f64,
) -> (f64, f64) {
    let mut best = (0.0, lo);
    let steps = ((hi - lo) / step.max(1e-9)).floor().clamp(0.0, 10_000.0) as usize;
    for s in 0..=steps {
        let t = lo + s as f64 * step;
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        let (mut streak, mut open, mut run) = (0usize, false, usize::MAX);
        for (f, &v) in feats.iter().zip(score) {
            if f.run != run {
                (streak, open, run) = (0, false, f.run);
            }
            let cond = if below { v <= t } else { v >= t };
            streak = if cond { streak + 1 } else { 0 };
            open |= streak >= confirm;
            match (open, f.rul <= horizon) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fn_ += 1.0,
                _ => {}
            }
        }
        let f1 = if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) };
        if f1 > best.0 {
            best = (f1, t);
        }
    }
    best
}

/// An asset template and its fleet, loaded: what `replay` and the fleet actors need.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub file: FleetFile,
    pub template: Arc<AssetTemplate>,
    pub model: Arc<HealthModel>,
}

impl Fleet {
    /// The finding summary and action of an alarm, filled in.
    pub fn alarm_text(&self, node: &str, v: &CycleVerdict) -> (String, String) {
        let fill = |s: &str| {
            s.replace("{node}", node)
                .replace("{rul}", &format!("{:.0}", v.rul))
                .replace("{hi}", &format!("{:.2}", v.hi))
        };
        (fill(&self.template.alarm.summary), fill(&self.template.alarm.action))
    }

    /// The finding an alarm opens on member `node` at `t`: the template's kind and severity, the
    /// detector's value against the model's threshold. It never resolves (degradation does not
    /// heal, and fleets have no operator resolution yet).
    pub fn alarm_finding(&self, node: &str, v: &CycleVerdict, t: SimTime) -> FindingEvent {
        let (summary, action) = self.alarm_text(node, v);
        let a = &self.template.alarm;
        let value = match self.model.detector {
            DetectorChoice::HealthIndex => v.hi,
            _ => v.rul,
        };
        FindingEvent {
            t,
            kind: a.kind,
            change: Change::Opened,
            severity: a.severity,
            // Confirmed over `confirm_cycles` in a row before it opens.
            confidence: 1.0,
            value: value as f32,
            threshold: Some(self.model.threshold as f32),
            opened_at: t,
            summary,
            action,
            device: None,
            source: Source::Rule,
            likely: None,
        }
    }

    /// Every member's id, in unit order.
    pub fn member_ids(&self) -> Vec<String> {
        (1..=self.file.members).filter_map(|u| self.file.member(u)).collect()
    }
}

/// A fleet's event log, folded from its members' alarms in time order: each alarm is a finding on
/// its member, the member's status follows the finding's severity, and the fleet's status is the
/// worst of its members' (as an AHU's is of its actuators'). The same events in the same order
/// give the same log, whichever actor or thread raised them.
#[derive(Debug, Clone)]
pub struct FleetLog {
    id: String,
    members: Vec<String>,
    statuses: Vec<Status>,
    events: Vec<Event>,
}

impl FleetLog {
    /// The fleet node `id` and its members, all healthy, no events.
    pub fn new(id: String, members: Vec<String>) -> FleetLog {
        FleetLog { id, statuses: vec![Status::Healthy; members.len()], members, events: Vec::new() }
    }

    /// The log of `fleet`.
    pub fn of_fleet(fleet: &Fleet) -> FleetLog {
        FleetLog::new(fleet.file.id.clone(), fleet.member_ids())
    }

    /// The fleet node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Each member's status, in member order.
    pub fn statuses(&self) -> &[Status] {
        &self.statuses
    }

    /// The fleet's status: the worst of its members'.
    pub fn status(&self) -> Status {
        self.statuses.iter().copied().max().unwrap_or(Status::Healthy)
    }

    /// Member `member` (0-based) raised `finding`; returns the events it added (the finding,
    /// the member's status change, the fleet's). Findings must come in time order.
    pub fn apply(&mut self, member: usize, finding: FindingEvent) -> &[Event] {
        let start = self.events.len();
        let Some(node) = self.members.get(member).cloned() else { return &[] };
        let t = finding.t;
        let (before, fleet_before) = (self.statuses[member], self.status());
        // A member has at most one alarm open (it latches), so a resolution leaves it healthy.
        let after = match finding.change {
            Change::Resolved => Status::Healthy,
            _ => before.max(finding.severity.status()),
        };
        self.events.push(Event::Finding { node: node.clone(), phase: None, finding, truth: None });
        if after != before {
            self.statuses[member] = after;
            self.events.push(Event::Status { t, node, from: before, to: after, truth: Vec::new() });
        }
        if self.status() != fleet_before {
            self.events.push(Event::Status {
                t,
                node: self.id.clone(),
                from: fleet_before,
                to: self.status(),
                truth: Vec::new(),
            });
        }
        &self.events[start..]
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Adds `alarms` (member index, finding) given in any order: sorted by time, then member.
    pub fn apply_all(&mut self, mut alarms: Vec<(usize, FindingEvent)>) {
        alarms.sort_by_key(|(m, f)| (f.t, *m));
        for (m, f) in alarms {
            self.apply(m, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(t: u64, severity: Severity) -> FindingEvent {
        FindingEvent {
            t: SimTime(t),
            kind: FaultKind::Degradation,
            change: Change::Opened,
            severity,
            confidence: 1.0,
            value: 20.0,
            threshold: Some(25.0),
            opened_at: SimTime(t),
            summary: "degrading".into(),
            action: "inspect".into(),
            device: None,
            source: Source::Rule,
            likely: None,
        }
    }

    #[test]
    fn a_fleet_log_is_the_same_in_any_arrival_order() {
        let members: Vec<String> = (1..=3).map(|u| format!("e{u}")).collect();
        let raised = vec![
            (2, alarm(90, Severity::Critical)),
            (0, alarm(40, Severity::Warning)),
            (1, alarm(90, Severity::Critical)),
        ];
        let mut a = FleetLog::new("fleet".into(), members.clone());
        a.apply_all(raised.clone());
        let mut b = FleetLog::new("fleet".into(), members);
        b.apply_all(raised.into_iter().rev().collect());
        assert_eq!(a.events(), b.events());
        assert_eq!(a.statuses(), &[Status::Warning, Status::Critical, Status::Critical]);
        assert_eq!(a.status(), Status::Critical);
        // The fleet goes warning at 40 and critical at 90 once, though two members alarm then.
        let fleet: Vec<(u64, Status)> = a
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::Status { t, node, to, .. } if node == "fleet" => Some((t.0, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(fleet, vec![(40, Status::Warning), (90, Status::Critical)]);
        let findings = a.events().iter().filter(|e| matches!(e, Event::Finding { .. })).count();
        assert_eq!(findings, 3);
    }

    #[test]
    fn an_alarm_kind_must_be_an_asset_kind() {
        let text = include_str!("../../../twins/turbofan.toml");
        let t = AssetTemplate::parse(text, "turbofan.toml").expect("the shipped template parses");
        assert_eq!(t.alarm.kind, FaultKind::Degradation);
        let e = AssetTemplate::parse(&text.replace("kind = \"degradation\"", "kind = \"gear_jam\""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("alarm.kind") && e.contains("degradation"), "{e}");
        let e = AssetTemplate::parse(&text.replace("kind = \"degradation\"", "kind = \"wear\""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wear"), "{e}");
    }

    #[test]
    fn an_unknown_member_adds_nothing() {
        let mut log = FleetLog::new("fleet".into(), vec!["e1".into()]);
        assert!(log.apply(5, alarm(1, Severity::Critical)).is_empty());
        assert_eq!(log.status(), Status::Healthy);
    }

    #[test]
    fn member_ids_are_formatted_and_bounded() {
        assert_eq!(format_member("engine-{unit:03}", 7).as_deref(), Some("engine-007"));
        assert_eq!(format_member("e{unit}x", 12).as_deref(), Some("e12x"));
        assert_eq!(format_member("engine", 1), None);
        assert_eq!(format_member("e{unit:3}", 1), None);
    }

    #[test]
    fn ridge_recovers_a_linear_law() {
        let feats: Vec<Feat> = (0..200)
            .map(|i| {
                let (a, b) = ((i % 17) as f64, (i % 5) as f64);
                Feat { run: i % 5, x: vec![a, b], rel: Vec::new(), rul: 3.0 * a - 2.0 * b + 10.0 }
            })
            .collect();
        let fit = ridge(feats.iter(), 1e9, 0.0);
        let (w, b) = (&fit.weights, fit.bias);
        assert!((w[0] - 3.0).abs() < 1e-6 && (w[1] + 2.0).abs() < 1e-6 && (b - 10.0).abs() < 1e-6, "{w:?} {b}");
    }

    /// Two operating conditions that shift every sensor far more than wear does, flown in random
    /// order: per-regime normalisation must find both conditions and still see the wear.
    #[test]
    fn one_detector_works_across_operating_conditions() {
        let text = r#"
kind = "asset"
asset = "toy"
description = "two sensors, one setting"
time_unit = "cycle"
channels = [
    { name = "alt", role = "setting", unit = "kft", description = "altitude" },
    { name = "a", role = "sensor", unit = "-", description = "wears up" },
    { name = "b", role = "sensor", unit = "-", description = "wears down" },
]
[regimes]
tolerance = [2.0]
max_regimes = 4
[health]
sensors = ["a", "b"]
reference_cycles = 30
baseline_cycles = 10
smoothing_cycles = 4.0
trend_cycles = 15.0
rul_cap = 100.0
alarm_caps = [40.0, 60.0]
outlier_z = 8.0
ridge = 0.001
detector = "auto"
[alarm]
kind = "degradation"
severity = "critical"
horizon_cycles = 20.0
confirm_cycles = 2
summary = "{node}: {rul} left"
action = "inspect"
"#;
        let t = AssetTemplate::parse(text, "toy.toml").unwrap();
        let mut rng = crate::rng::node_rng(7, "toy", "test");
        let run = |len: usize, rng: &mut crate::rng::NodeRng| {
            let mut r = TrainingRun { settings: Vec::new(), sensors: Vec::new() };
            for c in 0..len {
                let alt = if crate::rng::uniform(rng) < 0.5 { 0.0 } else { 30.0 };
                let wear = (0.04 * (c as f64 - len as f64 + 60.0)).exp();
                let shift = if alt > 0.0 { 50.0 } else { 0.0 };
                r.settings.push(vec![alt + crate::rng::normal(rng) * 0.1]);
                r.sensors.push(vec![
                    shift + wear + crate::rng::normal(rng) * 0.3,
                    -shift - 0.5 * wear + crate::rng::normal(rng) * 0.3,
                ]);
            }
            r
        };
        let runs: Vec<TrainingRun> = (0..30).map(|i| run(150 + 7 * i, &mut rng)).collect();
        let m = Arc::new(train(&t, &runs, "toy").unwrap());
        assert_eq!(m.regimes.len(), 2, "{:?}", m.regimes.iter().map(|r| &r.centre).collect::<Vec<_>>());
        // A new member: no alarm in early life despite the condition changes; an alarm near its end.
        let probe = run(200, &mut rng);
        let mut mon = Monitor::new(Arc::clone(&m));
        let mut opened = None;
        for (c, (s, x)) in probe.settings.iter().zip(&probe.sensors).enumerate() {
            if mon.observe(c as u32 + 1, s, x).opened {
                opened = Some(199 - c);
            }
        }
        let left = opened.expect("an alarm before the end");
        assert!(left <= 40, "alarm with {left} cycles left");
        // Settings in no known condition are gated, not scored.
        let v = mon.observe(201, &[15.0], &[0.0, 0.0]);
        assert_eq!(v.phase, MemberPhase::UnknownRegime);
        // A lone spike is an outlier; a level that stays is taken after a few cycles.
        let (s, x) = (&probe.settings[199], &probe.sensors[199]);
        let far = [x[0] + 100.0, x[1] - 100.0];
        assert_eq!(mon.observe(202, s, &far).phase, MemberPhase::Outlier);
        assert_eq!(mon.observe(203, s, x).phase, MemberPhase::Monitoring);
        let phases: Vec<MemberPhase> =
            (0..SHIFT_AFTER_OUTLIERS as u32).map(|i| mon.observe(204 + i, s, &far).phase).collect();
        assert_eq!(phases.last(), Some(&MemberPhase::Monitoring), "{phases:?}");
        assert_eq!(mon.observe(210, s, &far).phase, MemberPhase::Monitoring);
    }

    #[test]
    fn regimes_match_within_tolerance_only() {
        let c = [vec![0.0, 0.0], vec![10.0, 0.5]];
        let refs: Vec<&[f64]> = c.iter().map(Vec::as_slice).collect();
        assert_eq!(nearest(&refs, &[1.0, 0.05], &[9.5, 0.51]), Some(1));
        assert_eq!(nearest(&refs, &[1.0, 0.05], &[5.0, 0.2]), None);
    }
}
