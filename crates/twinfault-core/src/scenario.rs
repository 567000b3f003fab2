//! Scenario files: a facility, a seed, a schedule, weather, command profiles, injected faults and
//! expectations. Every key is documented in `scenarios/README.md`.

use crate::config::{ConfigError, Facility, parse_toml};
use crate::fault::Injection;
use crate::types::{FaultKind, Phase, SimTime, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest scenario accepted [s] (a year); a limit so a typo cannot run forever.
pub const MAX_DURATION_S: f64 = 366.0 * 86_400.0;
/// Highest sample rate of a simulated device [Hz] (the real rig reports at about 20 Hz).
pub const MAX_SAMPLE_RATE_HZ: f64 = 20.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    facility: String,
    seed: u64,
    duration_s: f64,
    sample_rate_hz: f64,
    #[serde(default = "default_control_period")]
    control_period_s: f64,
    #[serde(default = "default_start_clock")]
    start_clock: String,
    #[serde(default)]
    history_retention_s: Option<f64>,
    #[serde(default)]
    campus: Option<CampusSize>,
    schedule: ScheduleFile,
    weather: Weather,
    #[serde(default)]
    command: Vec<CommandFile>,
    #[serde(default)]
    inject: Vec<InjectFile>,
    #[serde(default)]
    expect: Vec<ExpectFile>,
}

fn default_control_period() -> f64 {
    1.0
}
fn default_start_clock() -> String {
    "00:00".into()
}

/// Campus size for generated facilities.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CampusSize {
    pub ahus: usize,
    pub actuators_per_ahu: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    mode: String,
    #[serde(default)]
    occupied_start: Option<String>,
    #[serde(default)]
    occupied_end: Option<String>,
    #[serde(default = "default_startup")]
    startup_s: f64,
    #[serde(default = "default_shutdown")]
    shutdown_s: f64,
}
fn default_startup() -> f64 {
    900.0
}
fn default_shutdown() -> f64 {
    600.0
}

/// Outdoor air temperature: a daily sine peaking at 15:00.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Weather {
    pub outdoor_mean_c: f64,
    pub outdoor_amplitude_c: f64,
}

impl Weather {
    pub fn outdoor_c(&self, clock_s: f64) -> f64 {
        let h = (clock_s / 3600.0).rem_euclid(24.0);
        self.outdoor_mean_c + self.outdoor_amplitude_c * (std::f64::consts::TAU * (h - 9.0) / 24.0).sin()
    }
}

/// The AHUs' operating schedule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub enum Schedule {
    /// Starts up at t = 0, then runs occupied for the rest of the run.
    AlwaysOn { startup_s: f64 },
    /// Daily: startup at `start_s` (seconds after midnight) for `startup_s`, occupied until
    /// `end_s`, shutdown for `shutdown_s`, off otherwise.
    Daily { start_s: f64, end_s: f64, startup_s: f64, shutdown_s: f64 },
    /// Off for the whole run.
    Off,
}

impl Schedule {
    /// The phase at clock time `clock_s` (seconds since midnight of day 0), `run_s` into the run.
    pub fn phase(&self, clock_s: f64, run_s: f64) -> Phase {
        match *self {
            Schedule::Off => Phase::Off,
            Schedule::AlwaysOn { startup_s } => {
                if run_s < startup_s {
                    Phase::Startup
                } else {
                    Phase::Occupied
                }
            }
            Schedule::Daily { start_s, end_s, startup_s, shutdown_s } => {
                let s = clock_s.rem_euclid(86_400.0);
                if s >= start_s && s < start_s + startup_s {
                    Phase::Startup
                } else if s >= start_s + startup_s && s < end_s {
                    Phase::Occupied
                } else if s >= end_s && s < end_s + shutdown_s {
                    Phase::Shutdown
                } else {
                    Phase::Off
                }
            }
        }
    }
}

/// A command profile that overrides the controller for one actuator (an exercise test, as a
/// BMS runs on its actuators).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandProfile {
    pub node: String,
    pub shape: Shape,
    pub min_pct: f64,
    pub max_pct: f64,
    pub period_s: f64,
    pub from: SimTime,
    pub to: Option<SimTime>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Triangle between min and max.
    Sweep,
    /// Square wave between min and max.
    Steps,
    /// Sine between min and max.
    Sine,
    /// Constant at `min_pct`.
    Constant,
}

impl CommandProfile {
    /// The command at `t`, or `None` outside the profile's time span.
    pub fn command(&self, t: SimTime) -> Option<f64> {
        if t < self.from || self.to.is_some_and(|to| t >= to) {
            return None;
        }
        let x = ((t.0 - self.from.0) as f64 / 1000.0 / self.period_s).rem_euclid(1.0);
        let (lo, hi) = (self.min_pct, self.max_pct);
        Some(match self.shape {
            Shape::Sweep => lo + (hi - lo) * (1.0 - (2.0 * x - 1.0).abs()),
            Shape::Steps => {
                if x < 0.5 {
                    hi
                } else {
                    lo
                }
            }
            Shape::Sine => lo + (hi - lo) * 0.5 * (1.0 - (std::f64::consts::TAU * x).cos()),
            Shape::Constant => lo,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    node: String,
    profile: Shape,
    #[serde(default)]
    min_pct: f64,
    #[serde(default = "hundred")]
    max_pct: f64,
    #[serde(default = "default_period")]
    period_s: f64,
    #[serde(default)]
    from_s: f64,
    #[serde(default)]
    to_s: Option<f64>,
}
fn hundred() -> f64 {
    100.0
}
fn default_period() -> f64 {
    120.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectFile {
    id: String,
    node: String,
    kind: String,
    severity: f64,
    at_s: f64,
    #[serde(default)]
    ramp_s: f64,
    #[serde(default)]
    end_s: Option<f64>,
    #[serde(default)]
    position_pct: Option<f64>,
    #[serde(default)]
    period_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    injection: Option<String>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    nodes: Option<Vec<String>>,
    #[serde(default)]
    fault: Option<String>,
    /// `root_cause`: the device the fork must name (the injection's node by default).
    #[serde(default)]
    root_cause: Option<String>,
    #[serde(default)]
    within_s: Option<f64>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    phases: Option<Vec<Phase>>,
}

/// What a run must show.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expectation {
    /// A finding of `fault` opens on `node` (or names it as its device) within `within_s` of the
    /// injection's onset, with that injection as its ground truth.
    Detected { injection: String, node: String, fault: FaultKind, within_s: f64 },
    /// `node` reaches at least `status` within `within_s` of the injection's onset.
    Status { injection: String, node: String, status: Status, within_s: f64 },
    /// `node` is healthy again within `within_s` after the injection ends, and stays so.
    Recovers { injection: String, node: String, within_s: f64 },
    /// No finding anywhere lacks a ground-truth injection.
    NoFalseAlarms,
    /// No finding opens on these nodes.
    NoAlarm { nodes: Vec<String> },
    /// No finding opens while an AHU is in one of these phases.
    NoAlarmInPhase { phases: Vec<Phase> },
    /// The first AHU finding opened after the injection's onset (within `within_s`) carries the
    /// counterfactual fork's conclusion, and it names `device`.
    RootCause { injection: String, device: String, within_s: f64 },
}

/// A validated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Path of the facility file as written, relative to the scenario file.
    pub facility: String,
    pub seed: u64,
    pub duration: SimTime,
    pub sample_rate_hz: f64,
    pub control_period_s: f64,
    /// Clock time of day at t = 0 [s after midnight].
    pub start_clock_s: f64,
    pub history_retention_s: Option<f64>,
    pub campus: Option<CampusSize>,
    pub schedule: Schedule,
    pub weather: Weather,
    pub commands: Vec<CommandProfile>,
    pub injections: Vec<Injection>,
    pub expectations: Vec<Expectation>,
}

/// Parses `HH:MM` into seconds after midnight.
fn clock(file: &str, key: &str, s: &str) -> Result<f64, ConfigError> {
    let bad = || ConfigError::new(file, key, format!("\"{s}\" is not a time of day HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(f64::from(h * 3600 + m * 60))
}

impl Scenario {
    /// Parses a scenario's text (first step: syntax and local checks; the facility is checked by
    /// [`Scenario::check_against`]).
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ConfigError> {
        Self::parse_unlocated(text, file).map_err(|e| e.locate(text))
    }

    fn parse_unlocated(text: &str, file: &str) -> Result<Scenario, ConfigError> {
        let raw: ScenarioFile = parse_toml(text, file)?;
        let c = crate::config::Check { file, prefix: String::new() };
        c.range("duration_s", raw.duration_s, 1.0, MAX_DURATION_S)?;
        c.range("sample_rate_hz", raw.sample_rate_hz, 0.01, MAX_SAMPLE_RATE_HZ)?;
        c.range("control_period_s", raw.control_period_s, 0.05, 3600.0)?;
        if raw.control_period_s * raw.sample_rate_hz < 0.999 {
            return Err(ConfigError::new(file, "control_period_s", "must hold at least one sample period"));
        }
        if let Some(r) = raw.history_retention_s {
            c.range("history_retention_s", r, 60.0, MAX_DURATION_S)?;
        }
        let start_clock_s = clock(file, "start_clock", &raw.start_clock)?;
        let s = &raw.schedule;
        let cs = crate::config::Check { file, prefix: "schedule".into() };
        cs.range("startup_s", s.startup_s, 0.0, 86_400.0)?;
        cs.range("shutdown_s", s.shutdown_s, 0.0, 86_400.0)?;
        let schedule = match s.mode.as_str() {
            "always_on" => Schedule::AlwaysOn { startup_s: s.startup_s },
            "off" => Schedule::Off,
            "daily" => {
                let need = |k: &str, v: &Option<String>| {
                    v.clone()
                        .ok_or_else(|| ConfigError::new(file, format!("schedule.{k}"), "required for mode \"daily\""))
                };
                let start_s = clock(file, "schedule.occupied_start", &need("occupied_start", &s.occupied_start)?)?;
                let end_s = clock(file, "schedule.occupied_end", &need("occupied_end", &s.occupied_end)?)?;
                if end_s <= start_s + s.startup_s || end_s + s.shutdown_s > 86_400.0 {
                    return Err(ConfigError::new(
                        file,
                        "schedule",
                        "occupied_end must come after occupied_start + startup_s, and shutdown must end before midnight",
                    ));
                }
                Schedule::Daily { start_s, end_s, startup_s: s.startup_s, shutdown_s: s.shutdown_s }
            }
            other => {
                return Err(ConfigError::new(
                    file,
                    "schedule.mode",
                    format!("\"{other}\" is not one of daily, always_on, off"),
                ));
            }
        };
        let cw = crate::config::Check { file, prefix: "weather".into() };
        cw.range("outdoor_mean_c", raw.weather.outdoor_mean_c, -50.0, 60.0)?;
        cw.range("outdoor_amplitude_c", raw.weather.outdoor_amplitude_c, 0.0, 30.0)?;

        let mut commands = Vec::new();
        for (i, cmd) in raw.command.iter().enumerate() {
            let c = crate::config::Check { file, prefix: format!("command[{i}]") };
            c.range("min_pct", cmd.min_pct, 0.0, 100.0)?;
            c.range("max_pct", cmd.max_pct, cmd.min_pct, 100.0)?;
            c.range("period_s", cmd.period_s, 1.0, 86_400.0)?;
            c.range("from_s", cmd.from_s, 0.0, raw.duration_s)?;
            commands.push(CommandProfile {
                node: cmd.node.clone(),
                shape: cmd.profile,
                min_pct: cmd.min_pct,
                max_pct: cmd.max_pct,
                period_s: cmd.period_s,
                from: SimTime::from_secs_f64(cmd.from_s),
                to: cmd.to_s.map(SimTime::from_secs_f64),
            });
        }

        let mut injections = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, f) in raw.inject.iter().enumerate() {
            let key = |k: &str| format!("inject[{i}].{k}");
            let kind = FaultKind::parse(&f.kind).filter(|k| k.injectable()).ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().filter(|k| k.injectable()).map(|k| k.as_str()).collect();
                ConfigError::new(
                    file,
                    key("kind"),
                    format!("\"{}\" is not an injectable fault kind ({})", f.kind, names.join(", ")),
                )
            })?;
            if f.id.is_empty() || !ids.insert(f.id.clone()) {
                return Err(ConfigError::new(file, key("id"), format!("\"{}\" is empty or used twice", f.id)));
            }
            let c = crate::config::Check { file, prefix: format!("inject[{i}]") };
            c.range("at_s", f.at_s, 0.0, raw.duration_s)?;
            if let Some(e) = f.end_s {
                c.range("end_s", e, f.at_s, MAX_DURATION_S)?;
            }
            let injection = Injection {
                id: f.id.clone(),
                node: f.node.clone(),
                kind,
                severity: f.severity,
                start: SimTime::from_secs_f64(f.at_s),
                ramp_s: f.ramp_s,
                end: f.end_s.map(SimTime::from_secs_f64),
                position_pct: f.position_pct,
                period_s: f.period_s,
            };
            injection.check_values().map_err(|e| {
                let field = if e.field == "end" { "end_s" } else { e.field };
                ConfigError::new(file, key(field), e.message)
            })?;
            injections.push(injection);
        }

        let mut expectations = Vec::new();
        for (i, e) in raw.expect.iter().enumerate() {
            let key = |k: &str| format!("expect[{i}].{k}");
            let need_inj = || -> Result<&Injection, ConfigError> {
                let id = e.injection.as_ref().ok_or_else(|| ConfigError::new(file, key("injection"), "required"))?;
                injections
                    .iter()
                    .find(|j| &j.id == id)
                    .ok_or_else(|| ConfigError::new(file, key("injection"), format!("no injection with id \"{id}\"")))
            };
            let within = |d: f64| -> Result<f64, ConfigError> {
                let w = e.within_s.unwrap_or(d);
                crate::config::Check { file, prefix: format!("expect[{i}]") }.range(
                    "within_s",
                    w,
                    0.0,
                    MAX_DURATION_S,
                )?;
                Ok(w)
            };
            expectations.push(match e.kind.as_str() {
                "detected" => {
                    let inj = need_inj()?;
                    let fault = match &e.fault {
                        Some(f) => FaultKind::parse(f).ok_or_else(|| ConfigError::new(file, key("fault"), format!("unknown fault kind \"{f}\"")))?,
                        None => inj.kind,
                    };
                    Expectation::Detected {
                        injection: inj.id.clone(),
                        node: e.node.clone().unwrap_or_else(|| inj.node.clone()),
                        fault,
                        within_s: within(600.0)?,
                    }
                }
                "status" => {
                    let inj = need_inj()?;
                    Expectation::Status {
                        injection: inj.id.clone(),
                        node: e.node.clone().ok_or_else(|| ConfigError::new(file, key("node"), "required"))?,
                        status: e.status.ok_or_else(|| ConfigError::new(file, key("status"), "required"))?,
                        within_s: within(600.0)?,
                    }
                }
                "recovers" => {
                    let inj = need_inj()?;
                    if inj.end.is_none() {
                        return Err(ConfigError::new(file, key("injection"), format!("injection \"{}\" has no end_s to recover from", inj.id)));
                    }
                    Expectation::Recovers {
                        injection: inj.id.clone(),
                        node: e.node.clone().ok_or_else(|| ConfigError::new(file, key("node"), "required"))?,
                        within_s: within(600.0)?,
                    }
                }
                "root_cause" => {
                    let inj = need_inj()?;
                    Expectation::RootCause {
                        injection: inj.id.clone(),
                        device: e.root_cause.clone().unwrap_or_else(|| inj.node.clone()),
                        within_s: within(1800.0)?,
                    }
                }
                "no_false_alarms" => Expectation::NoFalseAlarms,
                "no_alarm" => Expectation::NoAlarm {
                    nodes: e.nodes.clone().ok_or_else(|| ConfigError::new(file, key("nodes"), "required"))?,
                },
                "no_alarm_in_phase" => Expectation::NoAlarmInPhase {
                    phases: e.phases.clone().ok_or_else(|| ConfigError::new(file, key("phases"), "required"))?,
                },
                other => {
                    return Err(ConfigError::new(
                        file,
                        key("type"),
                        format!("\"{other}\" is not one of detected, status, recovers, root_cause, no_false_alarms, no_alarm, no_alarm_in_phase"),
                    ));
                }
            });
        }

        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            facility: raw.facility,
            seed: raw.seed,
            duration: SimTime::from_secs_f64(raw.duration_s),
            sample_rate_hz: raw.sample_rate_hz,
            control_period_s: raw.control_period_s,
            start_clock_s,
            history_retention_s: raw.history_retention_s,
            campus: raw.campus,
            schedule,
            weather: raw.weather,
            commands,
            injections,
            expectations,
        })
    }

    /// Second step: checks every node the scenario names against the facility.
    pub fn check_against(&self, facility: &Facility, file: &str, text: &str) -> Result<(), ConfigError> {
        self.check_against_unlocated(facility, file).map_err(|e| e.locate(text))
    }

    fn check_against_unlocated(&self, facility: &Facility, file: &str) -> Result<(), ConfigError> {
        for (i, c) in self.commands.iter().enumerate() {
            if !facility.actuators.iter().any(|a| a.id == c.node) {
                return Err(ConfigError::new(
                    file,
                    format!("command[{i}].node"),
                    format!("unknown actuator \"{}\"", c.node),
                ));
            }
        }
        for (i, inj) in self.injections.iter().enumerate() {
            inj.validate(facility)
                .map_err(|e| ConfigError::new(file, format!("inject[{i}].{}", e.field), e.message))?;
        }
        let known = |n: &str| facility.node(n).is_some();
        for (i, e) in self.expectations.iter().enumerate() {
            let nodes: Vec<&String> = match e {
                Expectation::Detected { node, .. }
                | Expectation::Status { node, .. }
                | Expectation::Recovers { node, .. }
                | Expectation::RootCause { device: node, .. } => vec![node],
                Expectation::NoAlarm { nodes } => nodes.iter().collect(),
                _ => vec![],
            };
            for n in nodes {
                if !known(n) {
                    return Err(ConfigError::new(file, format!("expect[{i}]"), format!("unknown node \"{n}\"")));
                }
            }
        }
        Ok(())
    }

    /// Clock time of day for run time `t` [s after midnight of day 0].
    pub fn clock_s(&self, t: SimTime) -> f64 {
        self.start_clock_s + t.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_schedule_phases() {
        let s = Schedule::Daily { start_s: 6.0 * 3600.0, end_s: 18.0 * 3600.0, startup_s: 900.0, shutdown_s: 600.0 };
        assert_eq!(s.phase(5.0 * 3600.0, 0.0), Phase::Off);
        assert_eq!(s.phase(6.0 * 3600.0 + 10.0, 0.0), Phase::Startup);
        assert_eq!(s.phase(12.0 * 3600.0, 0.0), Phase::Occupied);
        assert_eq!(s.phase(18.0 * 3600.0 + 10.0, 0.0), Phase::Shutdown);
        assert_eq!(s.phase(86_400.0 + 12.0 * 3600.0, 0.0), Phase::Occupied);
    }

    #[test]
    fn profiles_stay_in_range() {
        for shape in [Shape::Sweep, Shape::Steps, Shape::Sine, Shape::Constant] {
            let p = CommandProfile {
                node: "n".into(),
                shape,
                min_pct: 10.0,
                max_pct: 90.0,
                period_s: 60.0,
                from: SimTime(0),
                to: None,
            };
            for k in 0..240 {
                let v = p.command(SimTime(k * 500)).unwrap();
                assert!((10.0..=90.0).contains(&v), "{shape:?} {v}");
            }
        }
    }
}
