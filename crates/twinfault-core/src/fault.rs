//! Fault injection: what an injected fault does to a device's physics, as a function of time.
//!
//! Each injection has a severity in 0..1, an onset (a step, or a ramp over `ramp_s`) and an
//! optional end. [`FaultEffects`] is the sum of every injection active on a device at one instant;
//! the actuator model and the AHU's thermal model read it. Severity scales each kind as
//! documented in `scenarios/README.md`.

use crate::scenario::MAX_DURATION_S;
use crate::twin::Mode;
use crate::types::{FaultKind, Role, SimTime};
use serde::Serialize;

/// What an injection may target: a tree of actuators by id, with their role and mode (a
/// [`crate::config::Facility`] or the visualizer's [`crate::layout::Layout`]).
pub trait InjectionTarget {
    /// The actuator `id`'s role and mode; `None` when there is no such actuator.
    fn role_and_mode(&self, id: &str) -> Option<(Role, Mode)>;
}

/// Why an injection cannot go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectionProblem {
    /// No actuator of that id (an AHU, the plant, or nothing).
    UnknownNode,
    /// The actuator is fed by real telemetry: there is no model to inject into.
    FedByTelemetry,
    /// A value out of range, or a kind that does not apply to the device's role.
    Invalid,
}

/// An injection refused: the field at fault, what is wrong and which kind of problem it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InjectionError {
    /// `node`, `kind`, `severity`, `ramp_s`, `end`, `position_pct` or `period_s`.
    pub field: &'static str,
    pub problem: InjectionProblem,
    pub message: String,
}

fn invalid(field: &'static str, message: String) -> InjectionError {
    InjectionError { field, problem: InjectionProblem::Invalid, message }
}

fn range(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), InjectionError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(invalid(field, format!("{v} is outside {lo}..={hi}")))
    }
}

/// One injected fault, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    /// Id from the scenario, e.g. `F1`; every detection it causes carries it as ground truth.
    pub id: String,
    pub node: String,
    pub kind: FaultKind,
    /// Final severity [0..1].
    pub severity: f64,
    pub start: SimTime,
    /// Ramp duration from 0 to full severity [s]; 0 is a step.
    pub ramp_s: f64,
    pub end: Option<SimTime>,
    /// Kind-specific position [%] (`stuck_at`: where it sticks; `closure_blockage`: the obstacle).
    pub position_pct: Option<f64>,
    /// Kind-specific period [s] (`hunting`: oscillation period).
    pub period_s: Option<f64>,
}

impl Injection {
    /// The injection's own values: an injectable kind, severity 0..=1, a ramp and a duration
    /// within [`MAX_DURATION_S`], the kind's position 0..=100 % and period 2 s..1 day.
    pub fn check_values(&self) -> Result<(), InjectionError> {
        if !self.kind.injectable() {
            return Err(invalid("kind", format!("{} is not an injectable fault kind", self.kind)));
        }
        range("severity", self.severity, 0.0, 1.0)?;
        range("ramp_s", self.ramp_s, 0.0, MAX_DURATION_S)?;
        if let Some(e) = self.end {
            let d = e.0 as f64 / 1000.0 - self.start.0 as f64 / 1000.0;
            if !(0.0..=MAX_DURATION_S).contains(&d) {
                return Err(invalid(
                    "end",
                    format!("the injection must not end before it starts, nor last over {MAX_DURATION_S} s"),
                ));
            }
        }
        if let Some(p) = self.position_pct {
            range("position_pct", p, 0.0, 100.0)?;
        }
        if let Some(p) = self.period_s {
            range("period_s", p, 2.0, 86_400.0)?;
        }
        Ok(())
    }

    /// The one rule for an injection into `target`, for scenario files, the visualizer and the
    /// live server: its values, and its node a simulated actuator of a role the kind applies to
    /// ([`FaultKind::applies_to`]).
    pub fn validate(&self, target: &impl InjectionTarget) -> Result<(), InjectionError> {
        self.check_values()?;
        let Some((role, mode)) = target.role_and_mode(&self.node) else {
            let message = format!("unknown actuator \"{}\" (faults are injected into actuators)", self.node);
            return Err(InjectionError { field: "node", problem: InjectionProblem::UnknownNode, message });
        };
        if mode == Mode::Ingest {
            let message =
                format!("\"{}\" is fed by real telemetry; faults are injected into simulated nodes only", self.node);
            return Err(InjectionError { field: "node", problem: InjectionProblem::FedByTelemetry, message });
        }
        if !self.kind.applies_to(role) {
            return Err(invalid(
                "kind",
                format!("{} does not apply to \"{}\", a {}", self.kind, self.node, role.as_str()),
            ));
        }
        Ok(())
    }

    /// Severity in effect at `t` (0 before onset and after the end).
    pub fn severity_at(&self, t: SimTime) -> f64 {
        if t < self.start || self.end.is_some_and(|e| t >= e) {
            return 0.0;
        }
        let since = (t.0 - self.start.0) as f64 / 1000.0;
        if self.ramp_s > 0.0 && since < self.ramp_s { self.severity * since / self.ramp_s } else { self.severity }
    }

    pub fn active_at(&self, t: SimTime) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// The combined physical effect of the faults active on one actuator at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultEffects {
    /// Holding torque on the gear train [N·m]; above rated torque the shaft cannot turn.
    pub jam_torque_nm: f64,
    /// Position below which an obstacle blocks closing [%].
    pub block_below_pct: Option<f64>,
    /// Extra sliding friction [N·m].
    pub extra_friction_nm: f64,
    /// A one-sided load toward closed (a spring, a binding linkage, gravity on the blades): it
    /// adds to the torque opening and takes from it closing [N·m].
    pub side_load_nm: f64,
    /// Extra static friction to break away [N·m].
    pub extra_breakaway_nm: f64,
    /// Rate of external pokes [1/s] and their size [%].
    pub poke_rate_hz: f64,
    pub poke_pct: f64,
    /// Highest signal quality the link allows [0..1] and probability of losing a sample [0..1].
    pub quality_cap: f64,
    pub drop_prob: f64,
    /// Extra heat in the housing [W].
    pub heat_w: f64,
    /// Offset of the reported feedback [%].
    pub feedback_offset_pct: f64,
    /// Oscillation added to the command: amplitude [%] and period [s].
    pub hunting_amp_pct: f64,
    pub hunting_period_s: f64,
    /// Leak: the flow element passes at least this opening when closed [%].
    pub leak_pct: f64,
    /// Output decoupled from the drive: stuck position [%] and weight [0..1].
    pub stuck: Option<(f64, f64)>,
}

impl FaultEffects {
    pub const NONE: FaultEffects = FaultEffects {
        jam_torque_nm: 0.0,
        block_below_pct: None,
        extra_friction_nm: 0.0,
        side_load_nm: 0.0,
        extra_breakaway_nm: 0.0,
        poke_rate_hz: 0.0,
        poke_pct: 0.0,
        quality_cap: 1.0,
        drop_prob: 0.0,
        heat_w: 0.0,
        feedback_offset_pct: 0.0,
        hunting_amp_pct: 0.0,
        hunting_period_s: 40.0,
        leak_pct: 0.0,
        stuck: None,
    };

    /// Sums the effects of `injections` at `t`. `rated_torque_nm` scales the mechanical faults and
    /// `stuck_default_pct` is where a `stuck_at` without a position sticks (the position at onset).
    pub fn at(injections: &[ActiveInjection], t: SimTime, rated_torque_nm: f64) -> FaultEffects {
        let mut e = FaultEffects::NONE;
        for a in injections {
            let s = a.injection.severity_at(t);
            if s <= 0.0 {
                continue;
            }
            match a.injection.kind {
                // A jam is a jam: the holding torque (0.9 to 2 × rated, plus friction) exceeds what
                // the motor can give at any severity; severity sets how hard it holds.
                FaultKind::GearJam => e.jam_torque_nm += (0.9 + 1.1 * s) * rated_torque_nm,
                FaultKind::ClosureBlockage => {
                    let p = a.injection.position_pct.unwrap_or(10.0 + 30.0 * s);
                    e.block_below_pct = Some(e.block_below_pct.map_or(p, |q: f64| q.max(p)));
                }
                // The real rig's added resistance biased the signed torque (mean about -0.34 N·m
                // against about 0) and raised power from 0.17 to about 0.22 W at speed unchanged:
                // a one-sided load with a little friction, not friction alone (which raises both
                // directions alike and leaves the mean at 0). `calibrate --faults` holds it.
                FaultKind::AddedResistance => {
                    e.side_load_nm += 0.30 * s;
                    e.extra_friction_nm += 0.1 * s;
                }
                FaultKind::Stiction => e.extra_breakaway_nm += 3.0 * s,
                // The rig's pokes were repeated, by hand, against the drive.
                FaultKind::Destabilization => {
                    e.poke_rate_hz += 0.05 + 0.15 * s;
                    e.poke_pct = e.poke_pct.max(2.0 + 8.0 * s);
                }
                // Signal faults put the quality in their own band at any severity: a loss below
                // 0.15 with half to all samples lost, a weak signal between 0.22 and 0.42.
                FaultKind::SignalLoss => {
                    e.quality_cap = e.quality_cap.min(0.15 * (1.0 - s));
                    e.drop_prob = 1.0 - (1.0 - e.drop_prob) * (0.5 - 0.5 * s);
                }
                FaultKind::WeakSignal => e.quality_cap = e.quality_cap.min(0.42 - 0.2 * s),
                FaultKind::TemperatureDrift => e.heat_w += 2.0 * s,
                FaultKind::FeedbackDrift => e.feedback_offset_pct += 20.0 * s,
                FaultKind::Hunting => {
                    e.hunting_amp_pct = e.hunting_amp_pct.max(25.0 * s);
                    e.hunting_period_s = a.injection.period_s.unwrap_or(60.0);
                }
                FaultKind::ValveLeak | FaultKind::DamperLeak => e.leak_pct = e.leak_pct.max(40.0 * s),
                FaultKind::StuckAt => {
                    let p = a.injection.position_pct.unwrap_or(a.stuck_default_pct);
                    e.stuck = Some((p, s));
                }
                FaultKind::SupplyAirDeviation
                | FaultKind::MixedAirOutOfBand
                | FaultKind::Degradation
                | FaultKind::CoilResponse => {}
            }
        }
        e
    }
}

/// An injection bound to a device, with what the device learned at onset.
#[derive(Debug, Clone)]
pub struct ActiveInjection {
    pub injection: Injection,
    /// The output position at onset [%], where a `stuck_at` without a position sticks.
    pub stuck_default_pct: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inj(kind: FaultKind, severity: f64, start_s: f64, ramp_s: f64, end_s: Option<f64>) -> Injection {
        Injection {
            id: "F1".into(),
            node: "n".into(),
            kind,
            severity,
            start: SimTime::from_secs_f64(start_s),
            ramp_s,
            end: end_s.map(SimTime::from_secs_f64),
            position_pct: None,
            period_s: None,
        }
    }

    #[test]
    fn ramp_reaches_full_severity_and_ends() {
        let i = inj(FaultKind::AddedResistance, 0.8, 100.0, 50.0, Some(300.0));
        assert_eq!(i.severity_at(SimTime::from_secs_f64(99.0)), 0.0);
        assert!((i.severity_at(SimTime::from_secs_f64(125.0)) - 0.4).abs() < 1e-9);
        assert_eq!(i.severity_at(SimTime::from_secs_f64(200.0)), 0.8);
        assert_eq!(i.severity_at(SimTime::from_secs_f64(300.0)), 0.0);
    }

    #[test]
    fn overlapping_faults_combine() {
        let a =
            ActiveInjection { injection: inj(FaultKind::AddedResistance, 1.0, 0.0, 0.0, None), stuck_default_pct: 0.0 };
        let b = ActiveInjection { injection: inj(FaultKind::WeakSignal, 1.0, 0.0, 0.0, None), stuck_default_pct: 0.0 };
        let e = FaultEffects::at(&[a, b], SimTime::from_secs_f64(1.0), 5.0);
        assert!(e.side_load_nm > 0.29 && e.extra_friction_nm > 0.05);
        assert!((e.quality_cap - 0.22).abs() < 1e-9);
    }
}
