//! Twin files: device templates (actuator, AHU, plant) and facilities, parsed from TOML text.
//!
//! Parsing happens in two steps, as the house style asks: raw `*File` structs with
//! `deny_unknown_fields`, then validation into the domain types. This module never touches the
//! file system: callers pass the text and a label (normally the path) used in error messages.

use crate::types::{FaultKind, Phase, Role, Severity, Status};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// A problem in a twin or scenario file: which file, which key, what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The file (or label) the text came from.
    pub file: String,
    /// Line and column (1-based) when the parser knows them.
    pub line_col: Option<(usize, usize)>,
    /// Dotted key path, e.g. `inject[2].severity`; empty when unknown.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// Fills in the line and column of the error's key in `text`, when the error lacks them.
    pub fn locate(mut self, text: &str) -> ConfigError {
        if self.line_col.is_none() && !self.key.is_empty() {
            self.line_col = locate_key(text, &self.key);
        }
        self
    }

    pub fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.to_string(), line_col: None, key: key.into(), message: message.into() }
    }
}

/// Parses TOML text into `T`, turning parser errors into a one-line [`ConfigError`].
pub fn parse_toml<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let line_col = e.span().map(|span| line_col(text, span.start));
        let key = e.span().map(|span| key_at(text, span.start)).unwrap_or_default();
        let message = e.message().trim().replace('\n', " ");
        ConfigError { file: file.to_string(), line_col, key, message }
    })
}

/// Where the key path `key` (as [`key_at`] writes it) is written in `text`: the `key = value`
/// line, or the table header when the path names a table.
fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if key_at(text, offset + indent) == key {
            return Some(line_col(text, offset + indent));
        }
        if trimmed.starts_with('[') {
            // A header names its table: `inject[2]` for the third `[[inject]]`.
            let path = key_at(text, offset + line.len()).rsplit_once('.').map(|(t, _)| t.to_string());
            if path.as_deref() == Some(key) || trimmed.trim_end().trim_matches(|c| c == '[' || c == ']') == key {
                return Some(line_col(text, offset + indent));
            }
        }
        offset += line.len();
    }
    None
}

/// The dotted key path of the `key = value` line at `offset`, with array-of-table indices
/// (`inject[2].severity`); empty when the line is not a key-value pair.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let Some((k, _)) = line.split_once('=') else { return String::new() };
    let k = k.trim();
    if k.is_empty() || k.starts_with('[') || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return String::new();
    }
    // The table this line is in, counting array-of-tables headers for the index.
    let mut table = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = counts.entry(name.trim().to_string()).or_insert(0);
            table = format!("{}[{}]", name.trim(), *n);
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.trim().to_string();
        }
    }
    if table.is_empty() { k.to_string() } else { format!("{table}.{k}") }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Collects range checks with key paths; the first failure is reported.
pub(crate) struct Check<'a> {
    pub file: &'a str,
    pub prefix: String,
}

impl Check<'_> {
    pub fn range(&self, key: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
        if v.is_finite() && v >= lo && v <= hi {
            Ok(())
        } else {
            Err(ConfigError::new(self.file, self.key(key), format!("{v} is outside {lo}..={hi}")))
        }
    }
    pub fn positive(&self, key: &str, v: f64) -> Result<(), ConfigError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(ConfigError::new(self.file, self.key(key), format!("{v} must be a positive number")))
        }
    }
    pub fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_string() } else { format!("{}.{key}", self.prefix) }
    }
}

/// How a finding is raised and reported: from the template, not from strings in code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingSpec {
    pub severity: Severity,
    /// The condition must hold this long before the finding opens [s].
    pub confirm_s: f64,
    /// The condition must stay clear this long before the finding resolves [s].
    pub clear_s: f64,
    /// Phases in which the rule is gated off (it neither opens nor keeps counting).
    #[serde(default)]
    pub gated_in: Vec<Phase>,
    /// One-line summary; `{node}` and `{value}` are filled in.
    pub summary: String,
    /// What an operator should do.
    pub action: String,
}

/// Physical parameters of an actuator model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActuatorModelParams {
    /// Full stroke [deg].
    pub stroke_deg: f64,
    /// Travel speed at rated load [%/s].
    pub rated_speed_pct_s: f64,
    /// Positioning deadband [%].
    pub deadband_pct: f64,
    /// Within this distance of the command the drive slows down in proportion (to at least a
    /// third of rated speed), as real positioners do [%].
    pub approach_band_pct: f64,
    /// Maximum motor torque [N·m].
    pub rated_torque_nm: f64,
    /// Coulomb (sliding) friction [N·m].
    pub coulomb_torque_nm: f64,
    /// Viscous friction [N·m per %/s].
    pub viscous_torque_nm_per_pct_s: f64,
    /// Static friction to break away from rest [N·m].
    pub breakaway_torque_nm: f64,
    /// How fast motor torque builds up while the shaft is held [N·m/s].
    pub torque_ramp_nm_s: f64,
    /// Extra travel released when the shaft breaks away, per N·m of excess torque [%/N·m].
    pub slip_gain_pct_per_nm: f64,
    /// Standard deviation of torque noise while moving [N·m].
    pub torque_noise_nm: f64,
    /// Standard deviation of torque noise at rest [N·m].
    pub rest_torque_noise_nm: f64,
    /// Electronics power at rest [W].
    pub standby_power_w: f64,
    /// Extra electronics power while the motor runs [W].
    pub moving_power_w: f64,
    /// Mechanical-to-electrical efficiency of the drive [-].
    pub motor_efficiency: f64,
    /// Copper loss per squared torque [W/(N·m)²]; heats a stalled motor.
    pub copper_loss_w_per_nm2: f64,
    /// Standard deviation of power noise while the motor runs [W].
    pub power_noise_w: f64,
    /// Ambient temperature around the actuator [°C].
    pub ambient_c: f64,
    /// Thermal resistance housing to ambient [°C/W].
    pub thermal_resistance_c_per_w: f64,
    /// Thermal time constant [s].
    pub thermal_time_constant_s: f64,
    /// Initial internal temperature above ambient [°C] (electronics self-heating).
    pub self_heating_c: f64,
    /// Where the inside temperature starts against its at-rest equilibrium (ambient +
    /// self-heating) [°C]: negative for a device still warming up (just powered, or brought in
    /// from a colder place), as the rig's recordings warm by 0.2-0.4 °C/min while they run.
    #[serde(default)]
    pub start_temperature_offset_c: f64,
    /// Overload protection: stop driving after being blocked this long [s].
    pub overload_protection_s: f64,
    /// After overload protection, retry after this long or on a new command [s].
    pub retry_after_s: f64,
    /// How often the device refreshes its position feedback [Hz].
    pub position_update_hz: f64,
    /// Age of the position a feedback refresh reports [s]: the bus and the device's own
    /// filtering make the reported position trail the shaft while it moves.
    #[serde(default)]
    pub feedback_delay_s: f64,
    /// Mean control-signal (communication) quality when healthy [0..1].
    pub signal_quality_mean: f64,
    /// Standard deviation of the signal quality [-].
    pub signal_quality_noise: f64,
    /// Share of samples a healthy device's gateway loses (irregular polling) [0..1).
    #[serde(default)]
    pub healthy_drop_share: f64,
    /// Share of samples at rest whose torque reads exactly zero (the motor is off) [0..1].
    #[serde(default)]
    pub rest_torque_zero_share: f64,
    /// A healthy one-sided load (a spring, the blades' weight or air force) that resists
    /// opening and helps closing [N·m]; negative: the other way. Signed mean torque while moving
    /// shows it as a bias (opening and closing torque of different size).
    #[serde(default)]
    pub side_load_nm: f64,
    /// Whether the device (or its gateway) reports a signal quality at all.
    #[serde(default = "yes")]
    pub reports_signal_quality: bool,
}

fn yes() -> bool {
    true
}

impl ActuatorModelParams {
    /// The same device under `factor` × its mechanical load: a heavier load drags more
    /// (Coulomb and viscous friction, and any one-sided load); it does not make the gear
    /// stickier, so the breakaway margin above the running torque stays.
    pub fn with_load(&self, factor: f64) -> ActuatorModelParams {
        let mut m = self.clone();
        let margin = (m.breakaway_torque_nm - m.coulomb_torque_nm).max(0.0);
        m.coulomb_torque_nm *= factor;
        m.viscous_torque_nm_per_pct_s *= factor;
        m.side_load_nm *= factor;
        m.breakaway_torque_nm = (m.coulomb_torque_nm + margin).max(m.coulomb_torque_nm);
        m
    }
}

/// The device's reporting resolution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantization {
    pub position_pct: f64,
    pub power_w: f64,
    pub temperature_c: f64,
}

/// Detection thresholds of an actuator twin. See `twins/README.md` for each rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActuatorDetection {
    /// Silence after which the device is offline [s] (a Belimo gateway drops it after 10 s).
    pub offline_after_s: f64,
    /// Setpoint-feedback error above which the device is not following [%].
    pub tracking_error_pct: f64,
    /// Progress toward the setpoint below this fraction of rated speed counts as not moving [-].
    pub progress_min_ratio: f64,
    /// Travel range in the band window below which the position is pinned (gear jam) [%].
    pub pinned_range_pct: f64,
    /// Window over which travel range and setpoint range are compared [s].
    pub band_window_s: f64,
    /// The setpoint swept this much more than the feedback travelled in the band window: the
    /// device is confined (evidence of a block even without stall reports) [%].
    pub confined_excess_pct: f64,
    /// Prior for the moving torque magnitude when the device has not learned its own [N·m].
    pub torque_prior_nm: f64,
    /// Moving time over which the device learns its own torque baseline [s].
    pub torque_learn_moving_s: f64,
    /// A learned baseline above prior × this is not believed (the device was faulty while it
    /// learned); the prior is used instead [-].
    pub torque_learn_max_ratio: f64,
    /// Moving torque above baseline × ratio + margin is added resistance [-].
    pub torque_ratio: f64,
    pub torque_margin_nm: f64,
    /// Time constant of the moving-torque average, counted in moving time [s].
    pub torque_tau_moving_s: f64,
    /// A hold while driving at least this long, then a jump, is one stick-slip event [s].
    pub stick_min_s: f64,
    /// A jump larger than this beyond the travel expected in one sample [%].
    pub jump_pct: f64,
    /// Window for counting stick-slip events and pokes [s].
    pub event_window_s: f64,
    /// Events in the window needed for stiction [-].
    pub stiction_min_events: f64,
    /// Undriven position jumps in the window needed for destabilization [-].
    pub poke_min_events: f64,
    /// Feedback carried away from the setpoint by this much in one push is an external move (a
    /// poke), whatever the rotation flag says: a positioner only ever drives toward its command.
    /// The healthy rig coasts at most about 1.7 % past a reversing setpoint [%].
    pub poke_away_pct: f64,
    /// Signed torque bias, the mean of the opening and closing torques (which cancel on a
    /// healthy drive: -0.6 and +0.6 N·m on the rig), beyond which a one-sided load is added
    /// resistance; judged from the first strokes, with no baseline to learn [N·m]. Left out, the
    /// rule is off (a template with no rig recordings to set it by, such as the valve's).
    #[serde(default)]
    pub torque_bias_nm: Option<f64>,
    /// Travel time per direction the bias needs before it is judged: a fresh twin starts from
    /// the template's prior (no bias) weighted as this much travel [s].
    pub torque_bias_prior_s: f64,
    /// Window for the active-time ratio (hunting) [s].
    pub hunting_window_s: f64,
    /// Active (moving) time above this fraction of operating time is hunting (Belimo: 20 %) [-].
    pub hunting_active_ratio: f64,
    /// Direction reversals per hour needed as well [1/h].
    pub hunting_min_reversals_per_h: f64,
    /// Time constant of the signal-quality average [s].
    pub signal_tau_s: f64,
    pub weak_signal_below: f64,
    pub signal_loss_below: f64,
    /// Time constant of the temperature average [s].
    pub temperature_tau_s: f64,
    /// Internal temperature above ambient + this is a temperature drift [°C].
    pub temperature_rise_c: f64,
    /// Rest offset between setpoint and feedback, with no stall, is feedback drift [%].
    pub rest_offset_pct: f64,
    /// The device must rest this long before its offset counts [s].
    pub rest_settle_s: f64,
    /// After a transient phase ends, gated rules stay gated this long [s].
    pub transient_grace_s: f64,
}

/// An actuator device template (damper or valve).
#[derive(Debug, Clone)]
pub struct ActuatorTemplate {
    pub name: String,
    pub description: String,
    pub model: ActuatorModelParams,
    pub quantization: Quantization,
    pub detection: ActuatorDetection,
    /// Indexed by [`FaultKind::index`]; `None` where the template raises no such finding.
    pub findings: Vec<Option<FindingSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActuatorTemplateFile {
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    model: ActuatorModelParams,
    quantization: Quantization,
    detection: ActuatorDetection,
    findings: BTreeMap<String, FindingSpec>,
}

fn findings_table(file: &str, raw: BTreeMap<String, FindingSpec>) -> Result<Vec<Option<FindingSpec>>, ConfigError> {
    let mut out: Vec<Option<FindingSpec>> = vec![None; crate::types::N_FAULT_KINDS];
    for (key, spec) in raw {
        let kind = FaultKind::parse(&key)
            .ok_or_else(|| ConfigError::new(file, format!("findings.{key}"), "unknown fault kind"))?;
        let c = Check { file, prefix: format!("findings.{key}") };
        c.range("confirm_s", spec.confirm_s, 0.0, 86_400.0)?;
        c.range("clear_s", spec.clear_s, 0.0, 86_400.0)?;
        out[kind.index()] = Some(spec);
    }
    Ok(out)
}

fn check_kind(file: &str, got: &str, want: &str) -> Result<(), ConfigError> {
    if got == want {
        Ok(())
    } else {
        Err(ConfigError::new(file, "kind", format!("expected \"{want}\", found \"{got}\"")))
    }
}

impl ActuatorTemplate {
    pub fn parse(text: &str, file: &str) -> Result<ActuatorTemplate, ConfigError> {
        Self::parse_unlocated(text, file).map_err(|e| e.locate(text))
    }

    fn parse_unlocated(text: &str, file: &str) -> Result<ActuatorTemplate, ConfigError> {
        let raw: ActuatorTemplateFile = parse_toml(text, file)?;
        check_kind(file, &raw.kind, "actuator")?;
        let m = &raw.model;
        let c = Check { file, prefix: "model".into() };
        c.positive("stroke_deg", m.stroke_deg)?;
        c.range("rated_speed_pct_s", m.rated_speed_pct_s, 0.01, 100.0)?;
        c.range("deadband_pct", m.deadband_pct, 0.0, 10.0)?;
        c.range("approach_band_pct", m.approach_band_pct, 0.0, 50.0)?;
        c.positive("rated_torque_nm", m.rated_torque_nm)?;
        c.range("coulomb_torque_nm", m.coulomb_torque_nm, 0.0, m.rated_torque_nm)?;
        c.range("breakaway_torque_nm", m.breakaway_torque_nm, m.coulomb_torque_nm, m.rated_torque_nm)?;
        c.positive("torque_ramp_nm_s", m.torque_ramp_nm_s)?;
        c.range("motor_efficiency", m.motor_efficiency, 0.01, 1.0)?;
        c.positive("thermal_time_constant_s", m.thermal_time_constant_s)?;
        c.positive("overload_protection_s", m.overload_protection_s)?;
        c.positive("retry_after_s", m.retry_after_s)?;
        c.range("position_update_hz", m.position_update_hz, 0.1, 1000.0)?;
        c.range("feedback_delay_s", m.feedback_delay_s, 0.0, 5.0)?;
        c.range("start_temperature_offset_c", m.start_temperature_offset_c, -40.0, 40.0)?;
        c.range("signal_quality_mean", m.signal_quality_mean, 0.0, 1.0)?;
        c.range("rest_torque_zero_share", m.rest_torque_zero_share, 0.0, 1.0)?;
        c.range("healthy_drop_share", m.healthy_drop_share, 0.0, 0.9)?;
        let d = &raw.detection;
        let c = Check { file, prefix: "detection".into() };
        c.positive("offline_after_s", d.offline_after_s)?;
        c.positive("tracking_error_pct", d.tracking_error_pct)?;
        c.positive("band_window_s", d.band_window_s)?;
        c.positive("event_window_s", d.event_window_s)?;
        c.positive("hunting_window_s", d.hunting_window_s)?;
        c.range("hunting_active_ratio", d.hunting_active_ratio, 0.0, 1.0)?;
        c.positive("signal_tau_s", d.signal_tau_s)?;
        c.positive("temperature_tau_s", d.temperature_tau_s)?;
        c.positive("torque_tau_moving_s", d.torque_tau_moving_s)?;
        c.positive("poke_away_pct", d.poke_away_pct)?;
        if let Some(b) = d.torque_bias_nm {
            c.positive("torque_bias_nm", b)?;
        }
        c.positive("torque_bias_prior_s", d.torque_bias_prior_s)?;
        c.range("signal_loss_below", d.signal_loss_below, 0.0, d.weak_signal_below)?;
        let q = &raw.quantization;
        let c = Check { file, prefix: "quantization".into() };
        c.range("position_pct", q.position_pct, 0.0, 10.0)?;
        c.range("power_w", q.power_w, 0.0, 10.0)?;
        c.range("temperature_c", q.temperature_c, 0.0, 10.0)?;
        Ok(ActuatorTemplate {
            name: raw.name,
            description: raw.description,
            findings: findings_table(file, raw.findings)?,
            model: raw.model,
            quantization: raw.quantization,
            detection: raw.detection,
        })
    }

    pub fn finding(&self, kind: FaultKind) -> Option<&FindingSpec> {
        self.findings[kind.index()].as_ref()
    }
}

/// Physical parameters of an AHU model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AhuModelParams {
    /// Supply-air temperature setpoint [°C].
    pub supply_air_setpoint_c: f64,
    /// Zone temperature setpoint [°C].
    pub zone_setpoint_c: f64,
    /// Temperature rise across the fan [°C].
    pub fan_heat_c: f64,
    /// Chilled-water supply temperature [°C].
    pub chilled_water_c: f64,
    /// Hot-water supply temperature [°C].
    pub hot_water_c: f64,
    /// Cooling-coil effectiveness at a fully open valve [-].
    pub cooling_coil_effectiveness: f64,
    /// Heating-coil effectiveness at a fully open valve [-].
    pub heating_coil_effectiveness: f64,
    /// Coil thermal time constant [s].
    pub coil_time_constant_s: f64,
    /// Heat load of one zone [kW].
    pub zone_load_kw: f64,
    /// Zone thermal capacity [kJ/K].
    pub zone_capacity_kj_per_k: f64,
    /// Air heat-transport capacity of a zone's branch at a fully open damper [kW/K].
    pub zone_airflow_kw_per_k: f64,
    /// Supply-air PI loop gains: proportional [1/K] and integral [1/(K·s)].
    pub sat_kp: f64,
    pub sat_ki: f64,
    /// Zone damper PI loop gains [%/K] and [%/(K·s)].
    pub zone_kp_pct_per_k: f64,
    pub zone_ki_pct_per_k_s: f64,
    /// Minimum zone damper position in occupied mode [%].
    pub zone_min_damper_pct: f64,
    /// Economize when outdoor air is this much cooler than return air [K].
    pub economizer_margin_k: f64,
    /// Standard deviation of temperature sensor noise [°C].
    pub sensor_noise_c: f64,
}

/// Detection thresholds of an AHU twin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AhuDetection {
    /// Time constant of the residual averages [s].
    pub residual_tau_s: f64,
    /// Supply-air error that counts as a deviation [°C] (G36 FC: 2 °F ≈ 1.1 K; we use a wider band).
    pub supply_air_error_c: f64,
    /// Mixed-air fraction error between command and thermal response [-].
    pub outdoor_fraction_error: f64,
    /// Minimum |outdoor − return| for the mixing rules to be observable [°C].
    pub min_mixing_delta_c: f64,
    /// A damper or valve at or below this command is closed [%].
    pub closed_below_pct: f64,
    /// Temperature change across a closed coil that counts as a leak [°C].
    pub closed_coil_delta_c: f64,
    /// Coil temperature change error between command and response [°C].
    pub coil_error_c: f64,
    /// Zone above setpoint by this much with its damper saturated open [°C].
    pub zone_error_c: f64,
    /// After startup ends, AHU rules stay gated this long [s].
    pub settle_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AhuTemplate {
    pub name: String,
    pub description: String,
    pub model: AhuModelParams,
    pub detection: AhuDetection,
    /// The counterfactual fork run when an AHU finding opens.
    pub fork: crate::counterfactual::ForkSpec,
    pub findings: Vec<Option<FindingSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AhuTemplateFile {
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    model: AhuModelParams,
    detection: AhuDetection,
    #[serde(default)]
    fork: crate::counterfactual::ForkSpec,
    findings: BTreeMap<String, FindingSpec>,
}

impl AhuTemplate {
    pub fn parse(text: &str, file: &str) -> Result<AhuTemplate, ConfigError> {
        Self::parse_unlocated(text, file).map_err(|e| e.locate(text))
    }

    fn parse_unlocated(text: &str, file: &str) -> Result<AhuTemplate, ConfigError> {
        let raw: AhuTemplateFile = parse_toml(text, file)?;
        check_kind(file, &raw.kind, "ahu")?;
        let m = &raw.model;
        let c = Check { file, prefix: "model".into() };
        c.range("cooling_coil_effectiveness", m.cooling_coil_effectiveness, 0.0, 1.0)?;
        c.range("heating_coil_effectiveness", m.heating_coil_effectiveness, 0.0, 1.0)?;
        c.positive("coil_time_constant_s", m.coil_time_constant_s)?;
        c.positive("zone_capacity_kj_per_k", m.zone_capacity_kj_per_k)?;
        c.positive("zone_airflow_kw_per_k", m.zone_airflow_kw_per_k)?;
        c.range("zone_min_damper_pct", m.zone_min_damper_pct, 0.0, 100.0)?;
        let d = &raw.detection;
        let c = Check { file, prefix: "detection".into() };
        c.positive("residual_tau_s", d.residual_tau_s)?;
        c.positive("supply_air_error_c", d.supply_air_error_c)?;
        c.range("closed_below_pct", d.closed_below_pct, 0.0, 50.0)?;
        let f = &raw.fork;
        let c = Check { file, prefix: "fork".into() };
        c.positive("window_s", f.window_s)?;
        c.positive("sample_s", f.sample_s)?;
        c.range("penalty", f.penalty, 0.0, 100.0)?;
        c.positive("rediagnose_s", f.rediagnose_s)?;
        Ok(AhuTemplate {
            name: raw.name,
            description: raw.description,
            findings: findings_table(file, raw.findings)?,
            model: raw.model,
            detection: raw.detection,
            fork: raw.fork,
        })
    }
    pub fn finding(&self, kind: FaultKind) -> Option<&FindingSpec> {
        self.findings[kind.index()].as_ref()
    }
}

/// A plant template: the chilled/hot water plant that serves the AHUs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantTemplate {
    #[serde(skip)]
    pub name: String,
    /// Chilled-water supply temperature at no load [°C].
    pub chilled_water_supply_c: f64,
    /// Chilled-water supply temperature rise per kW of load beyond capacity [K/kW].
    pub chilled_water_rise_k_per_kw: f64,
    /// Cooling capacity [kW].
    pub cooling_capacity_kw: f64,
    /// Hot-water supply temperature [°C].
    pub hot_water_supply_c: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlantTemplateFile {
    kind: String,
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    model: PlantTemplate,
}

impl PlantTemplate {
    pub fn parse(text: &str, file: &str) -> Result<PlantTemplate, ConfigError> {
        let raw: PlantTemplateFile = parse_toml(text, file)?;
        check_kind(file, &raw.kind, "plant").map_err(|e| e.locate(text))?;
        let c = Check { file, prefix: "model".into() };
        c.positive("cooling_capacity_kw", raw.model.cooling_capacity_kw).map_err(|e| e.locate(text))?;
        Ok(PlantTemplate { name: raw.name, ..raw.model })
    }
}

/// Map geometry of a zone: `[x, y, width, height]` in map units.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDef {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub rect: [f64; 4],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlantDef {
    id: String,
    template: String,
    #[serde(default)]
    position: [f64; 2],
    #[serde(default)]
    description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AhuDef {
    id: String,
    template: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    position: [f64; 2],
    #[serde(default)]
    description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActuatorDef {
    id: String,
    template: String,
    parent: String,
    role: Role,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    position: [f64; 2],
    #[serde(default)]
    model: String,
    /// `simulate` (default) or `ingest` (fed by the real device's telemetry).
    #[serde(default = "default_mode")]
    mode: crate::twin::Mode,
}

fn default_mode() -> crate::twin::Mode {
    crate::twin::Mode::Simulate
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MapDef {
    width: f64,
    height: f64,
}

/// A facility file (`kind = "facility"`) or a generated campus (`kind = "campus"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityFile {
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    /// Template name → path of the template file, relative to the facility file.
    pub templates: BTreeMap<String, String>,
    #[serde(default)]
    map: Option<MapDef>,
    #[serde(default)]
    zones: Vec<ZoneDef>,
    #[serde(default)]
    plant: Option<PlantDef>,
    #[serde(default)]
    ahus: Vec<AhuDef>,
    #[serde(default)]
    actuators: Vec<ActuatorDef>,
    /// Campus only: the generated layout.
    #[serde(default)]
    campus: Option<CampusDef>,
    /// A learned window classifier (a model file from `twinfault train`, relative to the
    /// facility file) that every actuator twin runs alongside its rules.
    #[serde(default)]
    pub classifier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampusDef {
    ahus: usize,
    actuators_per_ahu: usize,
    damper_template: String,
    valve_template: String,
    ahu_template: String,
    plant_template: String,
}

/// Largest generated campus; a limit so a typo cannot ask for a billion actors.
pub const MAX_CAMPUS_ACTUATORS: usize = 2_000_000;

/// Loaded templates by the names the facility gives them.
#[derive(Default, Clone)]
pub struct Templates {
    pub actuators: BTreeMap<String, Arc<ActuatorTemplate>>,
    pub ahus: BTreeMap<String, Arc<AhuTemplate>>,
    pub plants: BTreeMap<String, Arc<PlantTemplate>>,
}

/// What kind of template a template file holds, read from its `kind` key.
pub fn template_kind(text: &str, file: &str) -> Result<String, ConfigError> {
    #[derive(Deserialize)]
    struct K {
        kind: Option<String>,
    }
    let k: K = toml::from_str(text).map_err(|e| ConfigError::new(file, "", e.message()))?;
    k.kind.ok_or_else(|| ConfigError::new(file, "kind", "missing (expected actuator, ahu or plant)"))
}

impl Templates {
    /// Adds a template from its text, dispatching on its `kind` key.
    pub fn add(&mut self, name: &str, text: &str, file: &str) -> Result<(), ConfigError> {
        match template_kind(text, file)?.as_str() {
            "actuator" => {
                self.actuators.insert(name.into(), Arc::new(ActuatorTemplate::parse(text, file)?));
            }
            "ahu" => {
                self.ahus.insert(name.into(), Arc::new(AhuTemplate::parse(text, file)?));
            }
            "plant" => {
                let mut p = PlantTemplate::parse(text, file)?;
                p.name = name.into();
                self.plants.insert(name.into(), Arc::new(p));
            }
            other => {
                return Err(ConfigError::new(
                    file,
                    "kind",
                    format!("\"{other}\" is not a template kind (actuator, ahu, plant)"),
                ));
            }
        }
        Ok(())
    }
}

/// One actuator of a facility.
#[derive(Debug, Clone)]
pub struct ActuatorNode {
    pub id: String,
    pub template: Arc<ActuatorTemplate>,
    /// Index into [`Facility::ahus`].
    pub ahu: usize,
    pub role: Role,
    /// Index into [`Facility::zones`] for zone dampers.
    pub zone: Option<usize>,
    pub position: [f64; 2],
    pub model: String,
    /// Whether the twin simulates the device or takes its real samples.
    pub mode: crate::twin::Mode,
}

#[derive(Debug, Clone)]
pub struct AhuNode {
    pub id: String,
    pub template: Arc<AhuTemplate>,
    pub position: [f64; 2],
    pub description: String,
    /// Indices into [`Facility::actuators`], in file order.
    pub children: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct PlantNode {
    pub id: String,
    pub template: Arc<PlantTemplate>,
    pub position: [f64; 2],
    pub description: String,
}

/// A validated facility: the node tree and its map.
#[derive(Debug, Clone)]
pub struct Facility {
    pub name: String,
    pub description: String,
    pub map_size: [f64; 2],
    pub zones: Vec<ZoneDef>,
    pub plant: Option<PlantNode>,
    pub ahus: Vec<AhuNode>,
    pub actuators: Vec<ActuatorNode>,
    /// The learned window classifier the actuator twins run alongside their rules, if the
    /// facility names one (loaded by the caller: the core reads no files).
    pub classifier: Option<std::sync::Arc<dyn crate::classify::WindowClassifier>>,
    /// Node id → node, built with the facility: a lookup is O(1), so setting up a million
    /// twins is not a million scans of a million ids.
    index: std::collections::HashMap<String, NodeRef>,
}

/// Where a node sits in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    Plant,
    Ahu(usize),
    Actuator(usize),
}

impl FacilityFile {
    pub fn parse(text: &str, file: &str) -> Result<FacilityFile, ConfigError> {
        let f: FacilityFile = parse_toml(text, file)?;
        if f.kind != "facility" && f.kind != "campus" {
            return Err(ConfigError::new(
                file,
                "kind",
                format!("expected \"facility\" or \"campus\", found \"{}\"", f.kind),
            ));
        }
        Ok(f)
    }

    /// Overrides a campus's generated size (from the command line).
    pub fn set_campus_size(&mut self, ahus: Option<usize>, per_ahu: Option<usize>) {
        if let Some(c) = self.campus.as_mut() {
            if let Some(a) = ahus {
                c.ahus = a;
            }
            if let Some(m) = per_ahu {
                c.actuators_per_ahu = m;
            }
        }
    }

    /// Validates the file against its loaded templates and builds the node tree.
    pub fn build(mut self, templates: &Templates, file: &str) -> Result<Facility, ConfigError> {
        if self.kind == "campus" {
            self.expand_campus(file)?;
        }
        let actuator_t = |key: String, name: &str| {
            templates
                .actuators
                .get(name)
                .cloned()
                .ok_or_else(|| ConfigError::new(file, key, format!("no actuator template named \"{name}\"")))
        };
        let mut ids = BTreeSet::new();
        let mut unique = |key: String, id: &str| -> Result<(), ConfigError> {
            if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(ConfigError::new(
                    file,
                    key,
                    format!("\"{id}\" is not a valid node id (1-64 characters, no spaces or '/')"),
                ));
            }
            if !ids.insert(id.to_string()) {
                return Err(ConfigError::new(file, key, format!("duplicate node id \"{id}\"")));
            }
            Ok(())
        };
        let plant = match self.plant {
            Some(p) => {
                unique("plant.id".into(), &p.id)?;
                let template = templates.plants.get(&p.template).cloned().ok_or_else(|| {
                    ConfigError::new(file, "plant.template", format!("no plant template named \"{}\"", p.template))
                })?;
                Some(PlantNode { id: p.id, template, position: p.position, description: p.description })
            }
            None => None,
        };
        let mut ahus = Vec::with_capacity(self.ahus.len());
        for (i, a) in self.ahus.into_iter().enumerate() {
            unique(format!("ahus[{i}].id"), &a.id)?;
            let template = templates.ahus.get(&a.template).cloned().ok_or_else(|| {
                ConfigError::new(
                    file,
                    format!("ahus[{i}].template"),
                    format!("no AHU template named \"{}\"", a.template),
                )
            })?;
            if let Some(parent) = a.parent.as_ref().filter(|p| plant.as_ref().map(|x| &x.id) != Some(*p)) {
                return Err(ConfigError::new(
                    file,
                    format!("ahus[{i}].parent"),
                    format!("unknown parent node \"{parent}\" (an AHU's parent must be the plant)"),
                ));
            }
            ahus.push(AhuNode {
                id: a.id,
                template,
                position: a.position,
                description: a.description,
                children: Vec::new(),
            });
        }
        let mut actuators = Vec::with_capacity(self.actuators.len());
        let ahu_at: std::collections::HashMap<&str, usize> =
            ahus.iter().enumerate().map(|(h, a)| (a.id.as_str(), h)).collect();
        let mut zone_at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (z, d) in self.zones.iter().enumerate() {
            zone_at.entry(d.id.as_str()).or_insert(z);
        }
        let mut parents = Vec::with_capacity(self.actuators.len());
        for (i, a) in self.actuators.iter().enumerate() {
            let ahu = ahu_at.get(a.parent.as_str()).copied().ok_or_else(|| {
                ConfigError::new(file, format!("actuators[{i}].parent"), format!("unknown AHU \"{}\"", a.parent))
            });
            let zone = match &a.zone {
                Some(z) => zone_at.get(z.as_str()).copied().map(Some).ok_or_else(|| {
                    ConfigError::new(file, format!("actuators[{i}].zone"), format!("unknown zone \"{z}\""))
                }),
                None => Ok(None),
            };
            parents.push((ahu, zone));
        }
        drop((ahu_at, zone_at));
        for (i, (a, (ahu, zone))) in self.actuators.into_iter().zip(parents).enumerate() {
            unique(format!("actuators[{i}].id"), &a.id)?;
            let template = actuator_t(format!("actuators[{i}].template"), &a.template)?;
            let ahu = ahu?;
            let zone = zone?;
            if a.role == Role::ZoneDamper && zone.is_none() {
                return Err(ConfigError::new(file, format!("actuators[{i}].zone"), "a zone_damper needs a zone"));
            }
            ahus[ahu].children.push(actuators.len());
            actuators.push(ActuatorNode {
                id: a.id,
                template,
                ahu,
                role: a.role,
                zone,
                position: a.position,
                model: a.model,
                mode: a.mode,
            });
        }
        for (i, h) in ahus.iter().enumerate() {
            for role in [Role::OutdoorAirDamper, Role::CoolingValve, Role::HeatingValve] {
                let n = h.children.iter().filter(|&&c| actuators[c].role == role).count();
                if n > 1 {
                    return Err(ConfigError::new(
                        file,
                        format!("ahus[{i}]"),
                        format!("AHU \"{}\" has {n} actuators with role {}; at most one", h.id, role.as_str()),
                    ));
                }
            }
        }
        let map_size = self.map.map(|m| [m.width, m.height]).unwrap_or([1000.0, 1000.0]);
        let mut index = std::collections::HashMap::with_capacity(1 + ahus.len() + actuators.len());
        index.extend(actuators.iter().enumerate().rev().map(|(i, a)| (a.id.clone(), NodeRef::Actuator(i))));
        index.extend(ahus.iter().enumerate().rev().map(|(h, a)| (a.id.clone(), NodeRef::Ahu(h))));
        if let Some(p) = &plant {
            index.insert(p.id.clone(), NodeRef::Plant);
        }
        Ok(Facility {
            name: self.name,
            description: self.description,
            map_size,
            zones: self.zones,
            plant,
            ahus,
            actuators,
            classifier: None,
            index,
        })
    }

    fn expand_campus(&mut self, file: &str) -> Result<(), ConfigError> {
        let c = self
            .campus
            .clone()
            .ok_or_else(|| ConfigError::new(file, "campus", "a campus file needs a [campus] table"))?;
        let total = c.ahus.saturating_mul(c.actuators_per_ahu);
        if c.ahus == 0 || c.actuators_per_ahu == 0 || total > MAX_CAMPUS_ACTUATORS {
            return Err(ConfigError::new(
                file,
                "campus",
                format!(
                    "{} AHUs × {} actuators is outside 1..={MAX_CAMPUS_ACTUATORS} actuators",
                    c.ahus, c.actuators_per_ahu
                ),
            ));
        }
        let cols = (c.ahus as f64).sqrt().ceil() as usize;
        let cell = 1000.0;
        self.map = Some(MapDef { width: cols as f64 * cell, height: c.ahus.div_ceil(cols) as f64 * cell });
        self.plant = Some(PlantDef {
            id: "plant-01".into(),
            template: c.plant_template.clone(),
            position: [cols as f64 * cell / 2.0, -200.0],
            description: "Generated campus plant".into(),
        });
        for a in 0..c.ahus {
            let (cx, cy) = ((a % cols) as f64 * cell, (a / cols) as f64 * cell);
            let ahu_id = format!("ahu-{:04}", a + 1);
            self.ahus.push(AhuDef {
                id: ahu_id.clone(),
                template: c.ahu_template.clone(),
                parent: Some("plant-01".into()),
                position: [cx + cell / 2.0, cy + 60.0],
                description: String::new(),
            });
            let per_row = (c.actuators_per_ahu as f64).sqrt().ceil().max(1.0) as usize;
            for k in 0..c.actuators_per_ahu {
                let (role, template, prefix) = match k {
                    0 => (Role::OutdoorAirDamper, &c.damper_template, "OAD"),
                    1 => (Role::CoolingValve, &c.valve_template, "CHW"),
                    2 => (Role::HeatingValve, &c.valve_template, "HW"),
                    _ => (Role::ZoneDamper, &c.damper_template, "VNT"),
                };
                let pos = [
                    cx + 100.0 + (k % per_row) as f64 * 800.0 / per_row as f64,
                    cy + 150.0 + (k / per_row) as f64 * 800.0 / per_row as f64,
                ];
                let zone = if role == Role::ZoneDamper {
                    let zid = format!("zone-{:04}-{:04}", a + 1, k + 1);
                    self.zones.push(ZoneDef {
                        id: zid.clone(),
                        name: String::new(),
                        rect: [pos[0] - 20.0, pos[1] - 20.0, 40.0, 40.0],
                    });
                    Some(zid)
                } else {
                    None
                };
                self.actuators.push(ActuatorDef {
                    id: format!("{prefix}-{:04}-{:04}", a + 1, k + 1),
                    template: template.clone(),
                    parent: ahu_id.clone(),
                    role,
                    zone,
                    position: pos,
                    model: String::new(),
                    mode: crate::twin::Mode::Simulate,
                });
            }
        }
        Ok(())
    }
}

impl Facility {
    /// Finds a node by the id users see.
    pub fn node(&self, id: &str) -> Option<NodeRef> {
        // The index, checked against the node it points at (the tree's vectors are public: if
        // one was reordered after building, the scan finds the node).
        let hit = self.index.get(id).copied()?;
        let holds = match hit {
            NodeRef::Plant => self.plant.as_ref().is_some_and(|p| p.id == id),
            NodeRef::Ahu(h) => self.ahus.get(h).is_some_and(|a| a.id == id),
            NodeRef::Actuator(i) => self.actuators.get(i).is_some_and(|a| a.id == id),
        };
        if holds {
            return Some(hit);
        }
        find_node(
            id,
            self.plant.as_ref().map(|p| p.id.as_str()),
            self.ahus.iter().map(|a| a.id.as_str()),
            self.actuators.iter().map(|a| a.id.as_str()),
        )
    }

    /// Whether `ancestor` is `node` or above it in the tree.
    pub fn is_ancestor_or_self(&self, ancestor: NodeRef, node: NodeRef) -> bool {
        match (ancestor, node) {
            (a, n) if a == n => true,
            (NodeRef::Plant, _) => self.plant.is_some(),
            (NodeRef::Ahu(h), NodeRef::Actuator(i)) => self.actuators[i].ahu == h,
            _ => false,
        }
    }

    pub fn node_id(&self, n: NodeRef) -> &str {
        match n {
            NodeRef::Plant => self.plant.as_ref().map_or("", |p| p.id.as_str()),
            NodeRef::Ahu(i) => &self.ahus[i].id,
            NodeRef::Actuator(i) => &self.actuators[i].id,
        }
    }

    /// Each node's status before anything has run, in [`Facility::node_ids`] order: an ingesting
    /// actuator is unknown until it reports; a parent with only unknown nodes below it is unknown.
    pub fn initial_statuses(&self) -> Vec<Status> {
        let actuators: Vec<Status> = self
            .actuators
            .iter()
            .map(|a| if a.mode == crate::twin::Mode::Ingest { Status::Unknown } else { Status::Healthy })
            .collect();
        let ahus: Vec<Status> = self
            .ahus
            .iter()
            .map(|h| Status::roll_up(Status::Healthy, h.children.iter().map(|&c| actuators[c])))
            .collect();
        let mut v: Vec<Status> =
            self.plant.iter().map(|_| ahus.iter().copied().max().unwrap_or(Status::Healthy)).collect();
        v.extend(ahus);
        v.extend(actuators);
        v
    }

    /// The actuator `id`, if there is one.
    pub fn actuator(&self, id: &str) -> Option<&ActuatorNode> {
        match self.node(id)? {
            NodeRef::Actuator(i) => Some(&self.actuators[i]),
            _ => None,
        }
    }

    /// A node's place in [`Facility::node_ids`] order (plant, AHUs, actuators).
    pub fn node_index(&self, n: NodeRef) -> usize {
        let p = usize::from(self.plant.is_some());
        match n {
            NodeRef::Plant => 0,
            NodeRef::Ahu(i) => p + i,
            NodeRef::Actuator(i) => p + self.ahus.len() + i,
        }
    }

    /// The part of the facility under the AHUs `ahus` (indices, in any order): the plant, those
    /// AHUs in facility order and their actuators in facility order, re-indexed; zones, map and
    /// classifier as they are. A cluster's shard runs one of these.
    pub fn subtree(&self, ahus: &[usize]) -> Facility {
        let keep: BTreeSet<usize> = ahus.iter().copied().filter(|&h| h < self.ahus.len()).collect();
        let new_ahu: std::collections::HashMap<usize, usize> = keep.iter().enumerate().map(|(k, &h)| (h, k)).collect();
        let mut out_ahus: Vec<AhuNode> =
            keep.iter().map(|&h| AhuNode { children: Vec::new(), ..self.ahus[h].clone() }).collect();
        let mut actuators = Vec::new();
        for a in &self.actuators {
            if let Some(&k) = new_ahu.get(&a.ahu) {
                out_ahus[k].children.push(actuators.len());
                actuators.push(ActuatorNode { ahu: k, ..a.clone() });
            }
        }
        let mut index = std::collections::HashMap::with_capacity(1 + out_ahus.len() + actuators.len());
        index.extend(actuators.iter().enumerate().map(|(i, a)| (a.id.clone(), NodeRef::Actuator(i))));
        index.extend(out_ahus.iter().enumerate().map(|(h, a)| (a.id.clone(), NodeRef::Ahu(h))));
        if let Some(p) = &self.plant {
            index.insert(p.id.clone(), NodeRef::Plant);
        }
        Facility {
            name: self.name.clone(),
            description: self.description.clone(),
            map_size: self.map_size,
            zones: self.zones.clone(),
            plant: self.plant.clone(),
            ahus: out_ahus,
            actuators,
            classifier: self.classifier.clone(),
            index,
        }
    }

    /// All node ids in a fixed order: plant, AHUs, actuators (file order).
    pub fn node_ids(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.plant.iter().map(|p| p.id.as_str()).collect();
        v.extend(self.ahus.iter().map(|a| a.id.as_str()));
        v.extend(self.actuators.iter().map(|a| a.id.as_str()));
        v
    }
}

/// A node by id among a tree's plant, AHUs and actuators (a [`Facility`] or a
/// [`crate::layout::Layout`]).
pub(crate) fn find_node<'a>(
    id: &str,
    plant: Option<&str>,
    mut ahus: impl Iterator<Item = &'a str>,
    mut actuators: impl Iterator<Item = &'a str>,
) -> Option<NodeRef> {
    if plant == Some(id) {
        return Some(NodeRef::Plant);
    }
    if let Some(i) = ahus.position(|a| a == id) {
        return Some(NodeRef::Ahu(i));
    }
    actuators.position(|a| a == id).map(NodeRef::Actuator)
}

impl crate::fault::InjectionTarget for Facility {
    fn role_and_mode(&self, id: &str) -> Option<(Role, crate::twin::Mode)> {
        self.actuator(id).map(|a| (a.role, a.mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn every_node_is_found_by_its_id_and_no_other() {
        let mut f = testkit::datacenter();
        assert_eq!(f.node(&f.plant.as_ref().unwrap().id.clone()), Some(NodeRef::Plant));
        for (h, a) in f.ahus.iter().enumerate() {
            assert_eq!(f.node(&a.id), Some(NodeRef::Ahu(h)));
        }
        for (i, a) in f.actuators.iter().enumerate() {
            assert_eq!(f.node(&a.id), Some(NodeRef::Actuator(i)));
        }
        assert_eq!(f.node("no-such-node"), None);
        assert_eq!(f.node(""), None);
        // The tree's vectors are public: reordered after building, a node is still found.
        f.actuators.swap(0, 1);
        let id = f.actuators[0].id.clone();
        assert_eq!(f.node(&id), Some(NodeRef::Actuator(0)));
    }

    #[test]
    fn a_subtree_keeps_its_ahus_devices_in_order_re_indexed() {
        let f = testkit::datacenter();
        let sub = f.subtree(&[1]);
        assert_eq!(sub.ahus.len(), 1);
        assert_eq!(sub.ahus[0].id, f.ahus[1].id);
        let expected: Vec<&str> = f.ahus[1].children.iter().map(|&c| f.actuators[c].id.as_str()).collect();
        let got: Vec<&str> = sub.actuators.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(got, expected);
        assert_eq!(sub.ahus[0].children, (0..expected.len()).collect::<Vec<_>>());
        assert!(sub.actuators.iter().all(|a| a.ahu == 0));
        for (i, a) in sub.actuators.iter().enumerate() {
            assert_eq!(sub.node(&a.id), Some(NodeRef::Actuator(i)));
        }
        assert_eq!(sub.node(&f.actuators[f.ahus[0].children[0]].id), None, "another AHU's device");
        assert_eq!(sub.node(&f.plant.as_ref().unwrap().id), Some(NodeRef::Plant));
        // Every AHU: the facility itself, node for node.
        let all = f.subtree(&[1, 0]);
        assert_eq!(all.node_ids(), f.node_ids());
    }

    #[test]
    fn the_facility_tree_and_its_orders() {
        let f = testkit::datacenter();
        let ids = f.node_ids();
        // Plant, AHUs, actuators: the order statuses and the recorder use.
        assert_eq!(&ids[..3], ["plant-01", "ahu-01", "ahu-02"]);
        assert_eq!(ids.len(), 1 + f.ahus.len() + f.actuators.len());
        for (k, id) in ids.iter().enumerate() {
            let n = f.node(id).unwrap_or_else(|| panic!("{id} is a node"));
            assert_eq!(f.node_id(n), *id, "node {k}");
            assert_eq!(f.node_index(n), k, "{id}");
        }
        let jam = f.node("BEL-VNT-003").unwrap();
        let NodeRef::Actuator(i) = jam else { panic!("an actuator") };
        assert!(f.is_ancestor_or_self(NodeRef::Plant, jam));
        assert!(f.is_ancestor_or_self(NodeRef::Ahu(f.actuators[i].ahu), jam));
        assert!(!f.is_ancestor_or_self(NodeRef::Ahu(1 - f.actuators[i].ahu), jam));
        assert!(f.node("BEL-VNT-999").is_none());
        // Simulated nodes start healthy.
        assert!(f.initial_statuses().iter().all(|&s| s == Status::Healthy));
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let text = testkit::DATACENTER.replacen("width = 1200.0", "width = \"wide\"", 1);
        let e = FacilityFile::parse(&text, "dc.toml").unwrap_err();
        assert_eq!(e.file, "dc.toml");
        let line = text.lines().position(|l| l.contains("\"wide\"")).unwrap() + 1;
        assert_eq!(e.line_col.map(|x| x.0), Some(line), "{e}");
        assert!(e.to_string().contains("map.width"), "{e}");
        // An unknown key is refused, not ignored.
        let e = FacilityFile::parse(&format!("{}\nwidht = 3\n", testkit::DATACENTER), "dc.toml").unwrap_err();
        assert!(e.to_string().contains("widht"), "{e}");
        // A template that is not there is named with its key.
        let text = testkit::DATACENTER.replacen("template = \"plant\"", "template = \"boiler\"", 1);
        let e =
            FacilityFile::parse(&text, "dc.toml").and_then(|f| f.build(&Templates::default(), "dc.toml")).unwrap_err();
        assert!(e.to_string().contains("dc.toml"), "{e}");
    }

    #[test]
    fn a_template_is_checked_against_its_ranges() {
        let t = include_str!("../../../twins/damper_actuator.toml");
        assert!(ActuatorTemplate::parse(t, "d.toml").is_ok());
        let bad = t.replacen("stroke_deg = ", "stroke_deg = -", 1);
        let e = ActuatorTemplate::parse(&bad, "d.toml").unwrap_err().to_string();
        assert!(e.contains("stroke_deg"), "{e}");
    }
}
