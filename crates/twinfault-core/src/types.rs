//! Small shared types: simulated time, statuses, operating phases and fault kinds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Simulated time since the start of a run [ms]. Never derived from the wall clock.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub u64);

/// `x.round()` (halves away from zero), bit for bit, without the library call: on baseline
/// x86-64 `f64::round` is a call into libm, and the models round every sample's time and
/// readings (the call was about 4 % of a simulated step in a profile).
#[inline]
pub fn round(x: f64) -> f64 {
    // Below 2^52 the conversion truncates exactly and `x - t` is exact; above, `x` is whole.
    if x.abs() < 4_503_599_627_370_496.0 {
        let t = ((x as i64) as f64).copysign(x);
        if (x - t).abs() >= 0.5 { t + 1.0f64.copysign(x) } else { t }
    } else {
        x
    }
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub fn from_secs_f64(s: f64) -> SimTime {
        SimTime(round(s.max(0.0) * 1000.0) as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn ms(self) -> u64 {
        self.0
    }
    pub fn saturating_sub(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for SimTime {
    /// Formats as `HH:MM:SS.mmm` of simulated time since the start of the run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let s = self.0 / 1000;
        write!(f, "{:02}:{:02}:{:02}.{:03}", s / 3600, (s / 60) % 60, s % 60, ms)
    }
}

/// Health of a node. Ordered: a parent shows the maximum over itself and its children, and
/// `Unknown` (a node that has never reported) ranks below `Healthy`, so it darkens no parent
/// while a parent with nothing known below it is unknown too. The discriminants are the stored
/// codes (0 healthy … 3 offline, 4 unknown).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Healthy,
    Warning,
    Critical,
    Offline,
    /// Never reported (an ingesting node before its first sample).
    Unknown,
}

impl Status {
    /// How many statuses there are (for tables indexed by `status as usize`).
    pub const COUNT: usize = 5;

    /// A parent's status from its own and its children's: the worst of them, except that a
    /// parent with nothing wrong of its own and only unknown children is unknown.
    pub fn roll_up(own: Status, children: impl IntoIterator<Item = Status>) -> Status {
        match children.into_iter().max() {
            Some(Status::Unknown) if own <= Status::Healthy => Status::Unknown,
            Some(worst) => own.max(worst),
            None => own,
        }
    }

    /// Warning, critical or offline: something is known to be wrong (not healthy, not unknown).
    pub fn is_alarm(self) -> bool {
        self > Status::Healthy
    }

    fn rank(self) -> u8 {
        match self {
            Status::Unknown => 0,
            Status::Healthy => 1,
            Status::Warning => 2,
            Status::Critical => 3,
            Status::Offline => 4,
        }
    }
}

impl PartialOrd for Status {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Status {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Offline => "offline",
            Status::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a finding. Maps onto a [`Status`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn status(self) -> Status {
        match self {
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

/// Operating phase of an AHU, passed down to its devices so that rules can be gated.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Off,
    Startup,
    Occupied,
    Shutdown,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Off, Phase::Startup, Phase::Occupied, Phase::Shutdown];
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Off => "off",
            Phase::Startup => "startup",
            Phase::Occupied => "occupied",
            Phase::Shutdown => "shutdown",
        }
    }
    /// Transient phases, in which rules that would false-alarm are gated.
    pub fn is_transient(self) -> bool {
        matches!(self, Phase::Startup | Phase::Shutdown)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! fault_kinds {
    ($( $variant:ident => $name:literal, injectable: $inj:literal; )*) => {
        /// Every fault kind the engine can inject or detect.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum FaultKind { $( $variant, )* }

        impl FaultKind {
            pub const ALL: &'static [FaultKind] = &[ $( FaultKind::$variant, )* ];
            pub fn as_str(self) -> &'static str {
                match self { $( FaultKind::$variant => $name, )* }
            }
            /// Whether a scenario can inject this kind (the others are symptoms found by rules).
            pub fn injectable(self) -> bool {
                match self { $( FaultKind::$variant => $inj, )* }
            }
            pub fn parse(s: &str) -> Option<FaultKind> {
                match s { $( $name => Some(FaultKind::$variant), )* _ => None }
            }
            pub fn index(self) -> usize { self as usize }
        }
    };
}

fault_kinds! {
    GearJam => "gear_jam", injectable: true;
    ClosureBlockage => "closure_blockage", injectable: true;
    AddedResistance => "added_resistance", injectable: true;
    Destabilization => "destabilization", injectable: true;
    Stiction => "stiction", injectable: true;
    SignalLoss => "signal_loss", injectable: true;
    WeakSignal => "weak_signal", injectable: true;
    TemperatureDrift => "temperature_drift", injectable: true;
    FeedbackDrift => "feedback_drift", injectable: true;
    Hunting => "hunting", injectable: true;
    ValveLeak => "valve_leak", injectable: true;
    DamperLeak => "damper_leak", injectable: true;
    StuckAt => "stuck_at", injectable: true;
    SupplyAirDeviation => "supply_air_deviation", injectable: false;
    MixedAirOutOfBand => "mixed_air_out_of_band", injectable: false;
    Degradation => "degradation", injectable: false;
    CoilResponse => "coil_response", injectable: false;
}

impl FaultKind {
    /// Whether this kind can be injected into an actuator of `role`: a leak needs the element
    /// that leaks (a valve leaks through a coil, a damper past its blades); the device faults
    /// apply to any actuator. The one rule for scenarios, the visualizer and the live server; a
    /// campaign draws from a narrower set (`campaign::applies`, where the twins can see it).
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            FaultKind::ValveLeak => matches!(role, Role::CoolingValve | Role::HeatingValve),
            FaultKind::DamperLeak => matches!(role, Role::OutdoorAirDamper | Role::ZoneDamper),
            k => k.injectable(),
        }
    }
}

/// Number of fault kinds; sizes the per-device finding tables.
pub const N_FAULT_KINDS: usize = 17;

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an actuator drives, which decides how the AHU uses it and which AHU rules watch it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A zone supply damper, commanded by its zone's temperature loop.
    ZoneDamper,
    /// The AHU's outdoor-air (economizer) damper.
    OutdoorAirDamper,
    /// The chilled-water valve of the AHU's cooling coil.
    CoolingValve,
    /// The hot-water valve of the AHU's heating coil.
    HeatingValve,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ZoneDamper => "zone_damper",
            Role::OutdoorAirDamper => "outdoor_air_damper",
            Role::CoolingValve => "cooling_valve",
            Role::HeatingValve => "heating_valve",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_f64_round_bit_for_bit() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999999999999994,
            -0.49999999999999994,
            0.3,
            -0.3,
            0.7,
            -0.7,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1e300,
            -1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
        ];
        // And a spread of ordinary values, halves among them.
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let scale = [1.0, 100.0, 1e4, 1e9, 1e15][(r % 5) as usize];
            xs.push(((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale);
            xs.push(((r % 20_001) as f64 - 10_000.0) / 2.0);
        }
        for x in xs {
            assert_eq!(round(x).to_bits(), x.round().to_bits(), "{x:e}");
        }
        assert!(round(f64::NAN).is_nan());
    }

    #[test]
    fn fault_kind_table_is_consistent() {
        assert_eq!(FaultKind::ALL.len(), N_FAULT_KINDS);
        for (i, k) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(FaultKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(FaultKind::ALL.iter().filter(|k| k.injectable()).count(), 13);
    }

    #[test]
    fn leaks_apply_only_to_what_leaks() {
        assert!(FaultKind::ValveLeak.applies_to(Role::CoolingValve));
        assert!(!FaultKind::ValveLeak.applies_to(Role::ZoneDamper));
        assert!(FaultKind::DamperLeak.applies_to(Role::ZoneDamper));
        assert!(!FaultKind::DamperLeak.applies_to(Role::HeatingValve));
        assert!(FaultKind::GearJam.applies_to(Role::HeatingValve));
        assert!(!FaultKind::SupplyAirDeviation.applies_to(Role::ZoneDamper));
    }

    #[test]
    fn status_order_is_worst_last() {
        assert!(Status::Healthy < Status::Warning);
        assert!(Status::Warning < Status::Critical);
        assert!(Status::Critical < Status::Offline);
        assert!(Status::Unknown < Status::Healthy);
        assert_eq!([Status::Unknown, Status::Healthy].into_iter().max(), Some(Status::Healthy));
        assert_eq!(Status::Unknown as usize, Status::COUNT - 1);
        use Status::*;
        assert_eq!(Status::roll_up(Healthy, [Unknown, Unknown]), Unknown);
        assert_eq!(Status::roll_up(Healthy, [Unknown, Healthy]), Healthy);
        assert_eq!(Status::roll_up(Warning, [Unknown]), Warning);
        assert_eq!(Status::roll_up(Healthy, [Unknown, Offline]), Offline);
        assert_eq!(Status::roll_up(Healthy, []), Healthy);
    }

    #[test]
    fn sim_time_formats_as_clock() {
        assert_eq!(SimTime(3_723_045).to_string(), "01:02:03.045");
    }
}
