//! Windowed, phase-aware fault detection with confirmation and hysteresis.
//!
//! Every rule computes a condition from windowed statistics of the device's own samples (time
//! weighted exponential windows for averages, block windows for ranges, bounded event rings for
//! counts; all O(1) memory). A [`FindingBook`] turns conditions into findings: a finding opens
//! only after its condition held for `confirm_s`, resolves only after it stayed clear for
//! `clear_s`, keeps its `opened_at` while it is updated, and never flaps. Rules listed in a
//! finding's `gated_in` phases are held while the AHU is in that phase and for
//! `transient_grace_s` after it, so startup and shutdown transients raise no alarms.

use crate::actuator::Sample;
use crate::config::{ActuatorTemplate, FindingSpec};
use crate::types::{FaultKind, N_FAULT_KINDS, Phase, Severity, SimTime, Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What happened to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Opened,
    Updated,
    Resolved,
}

/// A change in a device's or AHU's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingEvent {
    pub t: SimTime,
    pub kind: FaultKind,
    pub change: Change,
    pub severity: Severity,
    /// How sure the rule is [0..1]: grows with how far and how long the evidence exceeds the threshold.
    pub confidence: f32,
    /// The rule's measured value (units in `summary`).
    pub value: f32,
    /// The threshold the value was held against when the event was made (same unit); none
    /// for a learned model's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// When the finding opened (kept through updates and on resolve).
    pub opened_at: SimTime,
    pub summary: String,
    pub action: String,
    /// For AHU rules: the device the evidence points at.
    pub device: Option<String>,
    /// A rule's finding, or a learned model's verdict (which never changes a status).
    #[serde(default, skip_serializing_if = "Source::is_rule")]
    pub source: Source,
    /// For an AHU finding when it opened: the element the counterfactual fork found likeliest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likely: Option<crate::counterfactual::Likely>,
}

/// Who found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Rule,
    Model,
}

impl Source {
    pub fn is_rule(&self) -> bool {
        *self == Source::Rule
    }
}

/// Confirmation and hysteresis of one rule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Slot {
    active: bool,
    /// When the condition started to differ from `active` [ms]; `u64::MAX` when it does not.
    pending_since: u64,
    opened_at: u64,
    last_value: f32,
    last_update: u64,
    /// The rule's last evaluation, for a diagnosis.
    check: Check,
}

/// A rule's last evaluation: what it measured, against what, and whether it held.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Check {
    evaluated: bool,
    t: u64,
    measured: f32,
    threshold: f32,
    holds: bool,
    gated: bool,
}

/// The findings of one node (or one device as seen by its AHU): a slot for each kind its
/// template has a finding for, and none for the others (a device's book holds no AHU kinds),
/// which keeps a twin small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingBook {
    /// Each kind's slot in `slots`; `NO_SLOT` for kinds the book does not track.
    index: [u8; N_FAULT_KINDS],
    slots: Box<[Slot]>,
}

const NO_SLOT: u8 = u8::MAX;

/// A slot that was never touched (for kinds the book does not track).
static EMPTY_SLOT: Slot = Slot {
    active: false,
    pending_since: u64::MAX,
    opened_at: 0,
    last_value: 0.0,
    last_update: 0,
    check: Check { evaluated: false, t: 0, measured: 0.0, threshold: 0.0, holds: false, gated: false },
};

/// Where a rule's finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// No finding, condition clear.
    Clear,
    /// Condition holds, waiting for its confirmation time.
    Confirming,
    Open,
    /// Open, condition clear, waiting for its clear time.
    Clearing,
}

/// One rule as a diagnosis reports it: what it measures, its last evaluation, its finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCheck {
    pub kind: FaultKind,
    /// For AHU rules about a device: that device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What the rule measures and when its condition holds.
    pub rule: String,
    pub unit: String,
    /// The window (or averaging time constant) the measured value covers [s].
    pub window_s: f64,
    pub evaluated_at: SimTime,
    pub measured: f32,
    pub threshold: f32,
    pub holds: bool,
    /// Held by the operating phase (startup/shutdown and their grace time) or by a fault below.
    pub gated: bool,
    pub finding: FindingState,
    /// The value an open finding reported when it opened (or last worsened): the evidence that
    /// crossed the threshold. Some rules keep a finding open by evidence of their own (a jam until
    /// the device moves again), so `measured` may be below the threshold while it stays open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_value: Option<f32>,
    /// When the finding opened (open, clearing) or the condition started to change (confirming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<SimTime>,
    pub confirm_s: f64,
    pub clear_s: f64,
}

/// A node's rules evaluated as of now: the evidence behind its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub node: String,
    pub at: SimTime,
    pub phase: Phase,
    pub status: Status,
    /// The last sample (devices) or epoch (AHUs) the rules saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_input_at: Option<SimTime>,
    /// Every rule evaluated at least once, open findings first.
    pub checks: Vec<RuleCheck>,
    /// Rules of the template never evaluated yet (no data for them, e.g. a device that reports no
    /// signal quality).
    pub not_evaluated: Vec<FaultKind>,
    /// Detector state worth knowing (learned baselines, gates).
    pub notes: Vec<String>,
    /// An AHU's latest counterfactual diagnosis: its hypotheses, best first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<crate::counterfactual::Ranking>,
}

/// What a rule measures: description, unit.
pub fn rule_evidence(kind: FaultKind) -> (&'static str, &'static str) {
    use FaultKind::*;
    match kind {
        GearJam => (
            "tracking error while the device does not follow its setpoint (no progress after a stall, or travel confined inside the commanded range), blocked while opening or pinned; opens above the threshold and, once open, holds until the device moves away from where it jammed",
            "%",
        ),
        ClosureBlockage => (
            "tracking error while the device does not follow its setpoint, blocked only while closing with free travel the other way; opens above the threshold and, once open, holds until the device travels below the obstacle",
            "%",
        ),
        AddedResistance => (
            "mean driving torque of the heavier direction; holds above the learned baseline × ratio + margin (the threshold)",
            "N·m",
        ),
        Stiction => ("stick-slip jumps and overshoots in the event window; holds at or above the threshold", "events"),
        Destabilization => (
            "feedback jumps the drive did not make (external moves) in the event window; holds at or above the threshold",
            "events",
        ),
        Hunting => {
            ("share of operating time driving, with enough reversals per hour; holds above the threshold", "ratio")
        }
        SignalLoss => (
            "averaged signal quality below the threshold, or seconds of silence above the offline limit",
            "quality or s",
        ),
        WeakSignal => ("averaged signal quality; holds below the threshold", "0..1"),
        TemperatureDrift => ("averaged device temperature; holds above ambient + allowed rise (the threshold)", "°C"),
        FeedbackDrift => ("averaged offset of feedback from setpoint at rest; holds above the threshold", "%"),
        SupplyAirDeviation => ("supply air minus its setpoint, averaged; holds when larger than the threshold", "°C"),
        MixedAirOutOfBand => {
            ("mixed air outside the outdoor-return air band, averaged; holds above the threshold", "°C")
        }
        DamperLeak => (
            "measured minus commanded outdoor-air fraction with the damper closed; holds above the threshold",
            "fraction",
        ),
        ValveLeak => {
            ("supply-air residual in the coil's direction with both valves closed; holds above the threshold", "°C")
        }
        StuckAt => (
            "residual against the commanded position (outdoor-air fraction for the damper, °C for coils and zones); holds above the threshold",
            "fraction or °C",
        ),
        Degradation => (
            "an asset's end-of-life estimate (at or below the threshold) or health index (at or above it), held for the template's confirmation cycles",
            "cycles or z",
        ),
        CoilResponse => (
            "supply air against what the unit's own learned response makes of its valves' commands (mixed air through the coil's lag, plus the learned cooling and heating curves); holds above the larger of the template's coil error and 2.5 times the unit's own scatter",
            "°C",
        ),
    }
}

/// Minimum time between two `updated` events of one finding [ms].
const UPDATE_MIN_INTERVAL_MS: u64 = 60_000;

/// Input to [`FindingBook::update`].
pub struct RuleInput<'a> {
    pub kind: FaultKind,
    /// What the rule measured (reported in a finding when `holds`, and in a diagnosis always).
    pub measured: f64,
    /// Whether the rule's condition holds.
    pub holds: bool,
    /// Threshold the value is compared with (for confidence); same units as `measured`.
    pub threshold: f64,
    pub gated: bool,
    pub spec: &'a FindingSpec,
    pub node: &'a str,
    pub device: Option<&'a str>,
}

/// A finding's event, from the rule's input and its slot.
#[cold]
#[inline(never)]
fn emit(
    t: SimTime,
    r: &RuleInput<'_>,
    change: Change,
    slot: &Slot,
    value: f64,
    out: &mut Vec<FindingEvent>,
    held_s: f64,
) {
    let excess = if r.threshold.abs() > 1e-9 { (value / r.threshold).abs() - 1.0 } else { 1.0 };
    let by_value = excess.clamp(0.0, 1.0) * 0.3;
    let by_time = (held_s / (r.spec.confirm_s.max(1.0) * 4.0)).clamp(0.0, 1.0) * 0.2;
    out.push(FindingEvent {
        t,
        kind: r.kind,
        change,
        severity: r.spec.severity,
        confidence: (0.5 + by_value + by_time) as f32,
        value: value as f32,
        threshold: Some(r.threshold as f32),
        opened_at: SimTime(slot.opened_at),
        summary: r
            .spec
            .summary
            .replace("{node}", r.device.unwrap_or(r.node))
            .replace("{value}", &format!("{value:.2}")),
        action: r.spec.action.clone(),
        device: r.device.map(str::to_string),
        source: Source::Rule,
        likely: None,
    });
}

impl FindingBook {
    /// A book tracking `kinds` (others are never open; feeding them is a no-op).
    pub fn for_kinds(kinds: impl Iterator<Item = FaultKind>) -> FindingBook {
        let mut index = [NO_SLOT; N_FAULT_KINDS];
        let mut n = 0u8;
        for k in kinds {
            if index[k.index()] == NO_SLOT {
                index[k.index()] = n;
                n += 1;
            }
        }
        FindingBook { index, slots: vec![EMPTY_SLOT; usize::from(n)].into_boxed_slice() }
    }

    fn slot(&self, kind: FaultKind) -> &Slot {
        match self.index[kind.index()] {
            NO_SLOT => &EMPTY_SLOT,
            i => &self.slots[usize::from(i)],
        }
    }

    fn slot_mut(&mut self, kind: FaultKind) -> Option<&mut Slot> {
        match self.index[kind.index()] {
            NO_SLOT => None,
            i => Some(&mut self.slots[usize::from(i)]),
        }
    }

    pub fn is_open(&self, kind: FaultKind) -> bool {
        self.slot(kind).active
    }

    pub fn open_kinds(&self) -> impl Iterator<Item = FaultKind> + '_ {
        FaultKind::ALL.iter().copied().filter(|&k| self.slot(k).active)
    }

    /// Feeds one evaluation of a rule; pushes an event when the finding opens, updates or resolves.
    ///
    /// Inlined into the rules (a device evaluates about ten a sample): passed through memory,
    /// the rule's input cost a store-forwarding stall per call (inlined, the plain loop ran
    /// about 10 % faster). The events themselves are rare and built out of line.
    #[inline]
    pub fn update(&mut self, t: SimTime, r: RuleInput<'_>, out: &mut Vec<FindingEvent>) {
        let Some(slot) = self.slot_mut(r.kind) else {
            debug_assert!(false, "a book fed a kind it does not track: {}", r.kind);
            return;
        };
        slot.check = Check {
            evaluated: true,
            t: t.0,
            measured: r.measured as f32,
            threshold: r.threshold as f32,
            holds: r.holds,
            gated: r.gated,
        };
        if r.gated {
            // A gated rule neither confirms nor clears: pending evidence is dropped.
            slot.pending_since = u64::MAX;
            return;
        }
        let cond = r.holds;
        let value = if cond { r.measured } else { 0.0 };
        if cond == slot.active {
            slot.pending_since = u64::MAX;
            if slot.active {
                let worse = value.abs() > f64::from(slot.last_value).abs() * 1.25 + 1e-9;
                if worse && t.0.saturating_sub(slot.last_update) >= UPDATE_MIN_INTERVAL_MS {
                    slot.last_value = value as f32;
                    slot.last_update = t.0;
                    let held = (t.0 - slot.opened_at) as f64 / 1000.0;
                    emit(t, &r, Change::Updated, slot, value, out, held);
                }
            }
            return;
        }
        if slot.pending_since == u64::MAX {
            slot.pending_since = t.0;
        }
        let held_s = (t.0 - slot.pending_since) as f64 / 1000.0;
        if !slot.active && held_s >= r.spec.confirm_s {
            slot.active = true;
            slot.pending_since = u64::MAX;
            slot.opened_at = t.0;
            slot.last_value = value as f32;
            slot.last_update = t.0;
            emit(t, &r, Change::Opened, slot, value, out, held_s);
        } else if slot.active && held_s >= r.spec.clear_s {
            slot.active = false;
            slot.pending_since = u64::MAX;
            let last = f64::from(slot.last_value);
            emit(t, &r, Change::Resolved, slot, last, out, 0.0);
        }
    }

    /// Closes an open finding now (an operator resolved it); returns the `resolved` event. If its
    /// condition still holds, it opens again as a new finding after its confirmation time.
    pub fn force_resolve(
        &mut self,
        t: SimTime,
        kind: FaultKind,
        spec: &FindingSpec,
        node: &str,
        device: Option<&str>,
    ) -> Option<FindingEvent> {
        let slot = self.slot_mut(kind)?;
        if !slot.active {
            return None;
        }
        slot.active = false;
        slot.pending_since = u64::MAX;
        Some(FindingEvent {
            t,
            kind,
            change: Change::Resolved,
            severity: spec.severity,
            confidence: 1.0,
            value: slot.last_value,
            threshold: Some(slot.check.threshold),
            opened_at: SimTime(slot.opened_at),
            summary: format!(
                "resolved by an operator: {}",
                spec.summary
                    .replace("{node}", device.unwrap_or(node))
                    .replace("{value}", &format!("{:.2}", slot.last_value))
            ),
            action: spec.action.clone(),
            device: device.map(str::to_string),
            source: Source::Rule,
            likely: None,
        })
    }

    /// The rules evaluated so far, as a diagnosis lists them (`window_s` per kind from the caller).
    pub fn checks<'a>(
        &self,
        finding: impl Fn(FaultKind) -> Option<&'a FindingSpec>,
        window_s: impl Fn(FaultKind) -> f64,
        device: Option<&str>,
    ) -> Vec<RuleCheck> {
        let mut out = Vec::new();
        for &kind in FaultKind::ALL {
            let slot = self.slot(kind);
            let c = slot.check;
            let Some(spec) = finding(kind).filter(|_| c.evaluated) else { continue };
            let pending = slot.pending_since != u64::MAX;
            let (state, since) = match (slot.active, pending) {
                (true, false) => (FindingState::Open, Some(SimTime(slot.opened_at))),
                (true, true) => (FindingState::Clearing, Some(SimTime(slot.opened_at))),
                (false, true) => (FindingState::Confirming, Some(SimTime(slot.pending_since))),
                (false, false) => (FindingState::Clear, None),
            };
            let (rule, unit) = rule_evidence(kind);
            out.push(RuleCheck {
                kind,
                device: device.map(str::to_string),
                rule: rule.to_string(),
                unit: unit.to_string(),
                window_s: window_s(kind),
                evaluated_at: SimTime(c.t),
                measured: c.measured,
                threshold: c.threshold,
                holds: c.holds,
                gated: c.gated,
                finding: state,
                reported_value: slot.active.then_some(slot.last_value),
                since,
                confirm_s: spec.confirm_s,
                clear_s: spec.clear_s,
            });
        }
        out
    }

    /// Whether a rule was ever evaluated.
    pub fn evaluated(&self, kind: FaultKind) -> bool {
        self.slot(kind).check.evaluated
    }

    /// Worst severity over the open findings.
    pub fn status(&self, specs: &[Option<FindingSpec>]) -> Status {
        self.open_kinds()
            .filter_map(|k| specs[k.index()].as_ref().map(|s| s.severity.status()))
            .max()
            .unwrap_or(Status::Healthy)
    }
}

/// Exponential moving average step with weight `a` = 1 − exp(−dt/τ).
#[inline]
fn ewma(avg: &mut f32, x: f32, a: f32) {
    *avg += (x - *avg) * a;
}

/// The weights of the detector's averages for one sample interval, recomputed only when the
/// interval changes (samples are mostly evenly spaced): `exp` is the detector's costliest call.
#[derive(Debug, Clone, Copy, Default)]
struct Alphas {
    dt_s: f64,
    progress: f32,
    torque: f32,
    hunting: f32,
    quality: f32,
    temperature: f32,
    offset: f32,
}

/// Time constant of the progress-toward-setpoint average [s]: short enough that a device
/// stopped at an obstacle shows it within a few seconds of a stroke.
const PROGRESS_TAU_S: f64 = 2.0;
/// Evidence of a block is remembered this long while the device has not travelled past where it
/// was blocked: a sweep meets an obstacle once per stroke, not continuously [ms].
const BLOCK_MEMORY_MS: u64 = 60_000;
/// A push away from the setpoint ends when the feedback has not moved away for this long [ms].
const AWAY_RUN_END_MS: u64 = 500;
/// Average speed of a move shorter than a sample interval, as a fraction of rated speed [-].
const SHORT_MOVE_SPEED_RATIO: f64 = 0.67;
/// Time constant of the rest-offset average [s].
const OFFSET_TAU_S: f64 = 30.0;

impl Alphas {
    fn of(dt_s: f64, d: &crate::config::ActuatorDetection) -> Alphas {
        let a = |tau: f64| (1.0 - (-dt_s / tau.max(1e-6)).exp()) as f32;
        Alphas {
            dt_s,
            progress: a(PROGRESS_TAU_S),
            torque: a(d.torque_tau_moving_s),
            hunting: a(d.hunting_window_s),
            quality: a(d.signal_tau_s),
            temperature: a(d.temperature_tau_s),
            offset: a(OFFSET_TAU_S),
        }
    }
}

/// The weights for the two intervals met last: a gateway that loses a poll now and then
/// alternates between its interval and twice it (the rig's damper lost 17 % of them), which
/// recomputed six `exp`s every time with one entry.
#[derive(Debug, Clone, Copy, Default)]
struct AlphaCache([Alphas; 2]);

impl AlphaCache {
    fn for_dt(&mut self, dt_s: f64, d: &crate::config::ActuatorDetection) -> Alphas {
        if dt_s != self.0[0].dt_s {
            if dt_s == self.0[1].dt_s {
                self.0.swap(0, 1);
            } else {
                self.0 = [Alphas::of(dt_s, d), self.0[0]];
            }
        }
        self.0[0]
    }
}

/// Ranges of setpoint and position over a window made of a ring of blocks.
#[derive(Debug, Clone)]
struct BandWindow {
    /// Per block: [sp_min, sp_max, pos_min, pos_max].
    blocks: [[f32; 4]; BAND_BLOCKS],
    block_ms: u64,
    current: u64,
}

const BAND_BLOCKS: usize = 8;
const EMPTY_BLOCK: [f32; 4] = [f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY];

impl BandWindow {
    fn new(window_s: f64) -> BandWindow {
        let block_ms = ((window_s * 1000.0) / BAND_BLOCKS as f64).max(1.0) as u64;
        BandWindow { blocks: [EMPTY_BLOCK; BAND_BLOCKS], block_ms, current: u64::MAX }
    }

    fn push(&mut self, t: SimTime, sp: f32, pos: f32) {
        let b = t.0 / self.block_ms;
        if b != self.current {
            let gap =
                if self.current == u64::MAX { BAND_BLOCKS as u64 } else { (b - self.current).min(BAND_BLOCKS as u64) };
            for k in 1..=gap {
                self.blocks[((self.current.wrapping_add(k)) % BAND_BLOCKS as u64) as usize] = EMPTY_BLOCK;
            }
            self.blocks[(b % BAND_BLOCKS as u64) as usize] = EMPTY_BLOCK;
            self.current = b;
        }
        let blk = &mut self.blocks[(b % BAND_BLOCKS as u64) as usize];
        blk[0] = blk[0].min(sp);
        blk[1] = blk[1].max(sp);
        blk[2] = blk[2].min(pos);
        blk[3] = blk[3].max(pos);
    }

    /// (setpoint range, position range) over the window.
    fn ranges(&self) -> (f32, f32) {
        let mut r = EMPTY_BLOCK;
        for b in &self.blocks {
            r[0] = r[0].min(b[0]);
            r[1] = r[1].max(b[1]);
            r[2] = r[2].min(b[2]);
            r[3] = r[3].max(b[3]);
        }
        if r[0] > r[1] { (0.0, 0.0) } else { (r[1] - r[0], r[3] - r[2]) }
    }
}

/// Timestamps of recent events [s], bounded.
#[derive(Debug, Clone, Default)]
struct EventRing {
    times_s: [u32; EVENT_RING],
    len: u8,
    head: u8,
}

/// Events kept per kind; more than any threshold needs.
const EVENT_RING: usize = 12;

impl EventRing {
    fn push(&mut self, t_s: u32) {
        self.times_s[self.head as usize] = t_s;
        self.head = ((self.head as usize + 1) % EVENT_RING) as u8;
        self.len = (self.len as usize + 1).min(EVENT_RING) as u8;
    }
    fn count_since(&self, since_s: u32) -> usize {
        self.times_s[..self.len as usize].iter().filter(|&&t| t >= since_s).count()
    }
}

/// The detector of one actuator twin, fed the device's samples in time order.
#[derive(Debug, Clone)]
pub struct ActuatorDetector {
    template: Arc<ActuatorTemplate>,
    st: State,
}

/// The detector's mutable state, apart from its (shared, read-only) template, so rules can
/// borrow the template while they update the state.
#[derive(Debug, Clone)]
struct State {
    book: FindingBook,
    last: Option<Sample>,
    last_seen: SimTime,
    phase: Phase,
    /// Gated rules stay gated until this time [ms] after a transient phase.
    grace_until: u64,
    /// Progress toward the setpoint [%/s], averaged.
    progress_pct_s: f32,
    band: BandWindow,
    /// Last time the device drove without moving for over a second [ms]; `u64::MAX` if never.
    last_stall: u64,
    /// Last time a stall lasted long enough to trip the device's overload protection [ms].
    last_long_stall: u64,
    /// Directions (bit 0 opening, bit 1 closing) in which the device stalled and has not moved
    /// freely since: a gear jam blocks both, an obstacle in the damper blocks closing only.
    stall_dirs: u8,
    /// Free travel since the last stall, per direction [%].
    free_travel_pct: [f32; 2],
    /// Feedback where the device was found blocked [%]; NaN when it is not.
    blocked_at_pct: f32,
    /// The way it could not go there: +1 opening, -1 closing.
    blocked_dir: f32,
    /// Last time the device was seen not following its setpoint [ms].
    last_not_following: u64,
    /// The current push of the feedback away from the setpoint [%], when it was last seen [ms],
    /// and whether it was counted as a poke already.
    away_run_pct: f32,
    away_last: u64,
    away_counted: bool,
    /// Mean signed torque while driving, opening and closing [N·m], and the travel time each
    /// average has seen [s]: their mean is the drive's bias (a one-sided load).
    torque_signed_nm: [f32; 2],
    bias_travel_s: [f32; 2],
    /// Whether the device travelled freely (in either direction) since the first stall of the
    /// current blocking episode: a jammed gear cannot, an obstacle leaves a free band.
    moved_since_stall: bool,
    /// Time driving with no feedback change [s].
    hold_s: f32,
    /// The last sample the device was driving [ms], and driving each way toward its setpoint
    /// (opening, closing; `u64::MAX`: never): a late feedback still shows that drive.
    last_driving: u64,
    last_drive_dir: [u64; 2],
    stick_events: EventRing,
    poke_events: EventRing,
    moving_s: f32,
    /// While learning: Σ |torque| × dt and Σ dt per direction (opening, closing).
    torque_learn: [[f32; 2]; 2],
    torque_baseline_nm: f32,
    /// Mean |torque| while driving, opening and closing [N·m].
    torque_avg_nm: [f32; 2],
    active_ratio: f32,
    /// Operating (occupied) time observed [s]: the active ratio means nothing before a window of it.
    operating_s: f32,
    reversals_per_s: f32,
    /// Last nonzero rotation (1 or 2).
    last_dir: u8,
    quality: f32,
    temperature_c: f32,
    rest_s: f32,
    rest_offset_pct: f32,
    alphas: AlphaCache,
}

impl State {
    fn gated(&self, t: SimTime, spec: &FindingSpec) -> bool {
        spec.gated_in.contains(&self.phase)
            || (t.0 < self.grace_until && spec.gated_in.iter().any(|p| p.is_transient()))
    }

    /// Feeds one evaluation of a rule to the finding book.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn rule(
        &mut self,
        tpl: &ActuatorTemplate,
        t: SimTime,
        kind: FaultKind,
        (measured, holds): (f64, bool),
        threshold: f64,
        node: &str,
        out: &mut Vec<FindingEvent>,
    ) {
        let Some(spec) = tpl.finding(kind) else { return };
        let gated = self.gated(t, spec);
        self.book.update(t, RuleInput { kind, measured, holds, threshold, gated, spec, node, device: None }, out);
    }
}

impl ActuatorDetector {
    pub fn new(template: Arc<ActuatorTemplate>) -> ActuatorDetector {
        let d = &template.detection;
        let temp0 = (template.model.ambient_c + template.model.self_heating_c) as f32;
        let st = State {
            band: BandWindow::new(d.band_window_s),
            torque_baseline_nm: d.torque_prior_nm as f32,
            torque_avg_nm: [d.torque_prior_nm as f32; 2],
            book: FindingBook::for_kinds(FaultKind::ALL.iter().copied().filter(|&k| template.finding(k).is_some())),
            last: None,
            last_seen: SimTime::ZERO,
            phase: Phase::Occupied,
            grace_until: 0,
            progress_pct_s: 0.0,
            last_stall: u64::MAX,
            last_long_stall: u64::MAX,
            stall_dirs: 0,
            free_travel_pct: [0.0; 2],
            blocked_at_pct: f32::NAN,
            blocked_dir: 0.0,
            last_not_following: u64::MAX,
            away_run_pct: 0.0,
            away_last: 0,
            away_counted: false,
            torque_signed_nm: [-(d.torque_prior_nm as f32), d.torque_prior_nm as f32],
            bias_travel_s: [0.0; 2],
            moved_since_stall: false,
            hold_s: 0.0,
            last_driving: 0,
            last_drive_dir: [u64::MAX; 2],
            stick_events: EventRing::default(),
            poke_events: EventRing::default(),
            moving_s: 0.0,
            torque_learn: [[0.0; 2]; 2],
            active_ratio: 0.0,
            operating_s: 0.0,
            reversals_per_s: 0.0,
            last_dir: 0,
            quality: 1.0,
            temperature_c: temp0,
            rest_s: 0.0,
            rest_offset_pct: 0.0,
            alphas: AlphaCache::default(),
        };
        ActuatorDetector { template, st }
    }

    pub fn book(&self) -> &FindingBook {
        &self.st.book
    }

    /// The last sample seen.
    pub fn last_sample(&self) -> Option<&Sample> {
        self.st.last.as_ref()
    }

    /// The operating phase of the device's AHU, as last set.
    pub fn phase(&self) -> Phase {
        self.st.phase
    }

    /// Sets the operating phase of the device's AHU.
    pub fn set_phase(&mut self, t: SimTime, phase: Phase) {
        if self.st.phase.is_transient() && !phase.is_transient() {
            self.st.grace_until = t.0 + (self.template.detection.transient_grace_s * 1000.0) as u64;
        }
        self.st.phase = phase;
    }

    /// Whether the device has been silent longer than `offline_after_s` at `now`.
    pub fn is_offline(&self, now: SimTime) -> bool {
        let limit = (self.template.detection.offline_after_s * 1000.0) as u64;
        self.st.last.is_some_and(|_| now.0.saturating_sub(self.st.last_seen.0) > limit)
    }

    /// Current status: unknown before the first sample, offline when silent, else the worst open
    /// finding.
    pub fn status(&self, now: SimTime) -> Status {
        if self.st.last.is_none() {
            Status::Unknown
        } else if self.is_offline(now) {
            Status::Offline
        } else {
            self.st.book.status(&self.template.findings)
        }
    }

    /// Every rule's last evaluation against its threshold, as of `now` (no rule is re-run).
    pub fn diagnosis(&self, node: &str, now: SimTime) -> Diagnosis {
        let tpl = &self.template;
        let d = &tpl.detection;
        let st = &self.st;
        let window = |k: FaultKind| match k {
            FaultKind::GearJam | FaultKind::ClosureBlockage => d.band_window_s,
            FaultKind::AddedResistance => d.torque_tau_moving_s,
            FaultKind::Stiction | FaultKind::Destabilization => d.event_window_s,
            FaultKind::Hunting => d.hunting_window_s,
            FaultKind::SignalLoss | FaultKind::WeakSignal => d.signal_tau_s,
            FaultKind::TemperatureDrift => d.temperature_tau_s,
            FaultKind::FeedbackDrift => OFFSET_TAU_S,
            _ => 0.0,
        };
        let mut checks = st.book.checks(|k| tpl.finding(k), window, None);
        checks.sort_by_key(|c| c.finding != FindingState::Open && c.finding != FindingState::Clearing);
        let not_evaluated =
            FaultKind::ALL.iter().copied().filter(|&k| tpl.finding(k).is_some() && !st.book.evaluated(k)).collect();
        let mut notes = Vec::new();
        if f64::from(st.moving_s) >= d.torque_learn_moving_s {
            notes.push(format!(
                "torque baseline {:.2} N·m (learned over {:.0} s of travel; the template's prior is {:.2} N·m)",
                st.torque_baseline_nm, d.torque_learn_moving_s, d.torque_prior_nm
            ));
        } else {
            notes.push(format!(
                "still learning the torque baseline: {:.0} of {:.0} s of travel seen; added resistance is not judged yet",
                st.moving_s, d.torque_learn_moving_s
            ));
        }
        if st.phase.is_transient() || now.0 < st.grace_until {
            notes.push(format!(
                "the AHU is in {} (or its grace time of {:.0} s after it): phase-gated rules neither open nor clear",
                st.phase.as_str(),
                d.transient_grace_s
            ));
        }
        if self.is_offline(now) {
            notes.push(format!(
                "no sample for {:.0} s (offline after {:.0} s)",
                now.saturating_sub(st.last_seen).as_secs_f64(),
                d.offline_after_s
            ));
        }
        if st.stall_dirs != 0 {
            let dirs = match st.stall_dirs {
                1 => "opening",
                2 => "closing",
                _ => "both directions",
            };
            notes.push(format!("stalled while {dirs} and has not travelled freely that way since"));
        }
        Diagnosis {
            node: node.to_string(),
            at: now,
            phase: st.phase,
            status: self.status(now),
            last_input_at: st.last.map(|s| s.t),
            checks,
            not_evaluated,
            notes,
            fork: None,
        }
    }

    /// Resolves an open finding on an operator's word (see [`FindingBook::force_resolve`]).
    pub fn force_resolve(&mut self, t: SimTime, kind: FaultKind, node: &str) -> Option<FindingEvent> {
        let spec = self.template.finding(kind)?;
        self.st.book.force_resolve(t, kind, spec, node, None)
    }

    /// Re-evaluates the silence rule at `now` (called when time passes without samples).
    pub fn tick(&mut self, now: SimTime, node: &str, out: &mut Vec<FindingEvent>) {
        let tpl: &ActuatorTemplate = &self.template;
        let st = &mut self.st;
        if st.last.is_none() {
            return;
        }
        let silent_s = now.0.saturating_sub(st.last_seen.0) as f64 / 1000.0;
        let d = &tpl.detection;
        let (loss_below, offline_after) = (d.signal_loss_below, d.offline_after_s);
        if silent_s > offline_after {
            st.rule(tpl, now, FaultKind::SignalLoss, (silent_s, true), offline_after, node, out);
        } else if f64::from(st.quality) >= loss_below {
            st.rule(tpl, now, FaultKind::SignalLoss, (f64::from(st.quality), false), loss_below, node, out);
        }
    }

    /// Feeds one sample (in time order; older samples are ignored) and evaluates every rule:
    /// the evidence first ([`evidence`]: tracking, holds, jumps, pokes, torque, activity,
    /// signal, temperature), then the rules on it ([`tracking_rules`], [`torque_rule`],
    /// [`event_rules`], [`condition_rules`]).
    pub fn observe(&mut self, s: &Sample, node: &str, out: &mut Vec<FindingEvent>) {
        let tpl: &ActuatorTemplate = &self.template;
        let st = &mut self.st;
        let Some(prev) = st.last else {
            st.last = Some(*s);
            st.last_seen = s.t;
            st.quality = s.signal_quality.unwrap_or(1.0);
            st.temperature_c = s.temperature_c;
            return;
        };
        if s.t <= prev.t {
            return;
        }
        let t = s.t;
        let dt = (t.0 - prev.t.0) as f64 / 1000.0;
        let x = Step {
            t,
            dt,
            t_s: (t.0 / 1000) as u32,
            operating: st.phase == Phase::Occupied,
            err: s.setpoint_pct - s.position_pct,
            dpos: s.position_pct - prev.position_pct,
            driving: s.rotation != 0,
            consecutive: dt <= 1.5,
        };
        evidence(st, tpl, s, &prev, &x);
        st.last = Some(*s);
        st.last_seen = t;
        let (stalled_recently, poked_recently) = tracking_rules(st, tpl, s, &x, node, out);
        torque_rule(st, tpl, &x, poked_recently, node, out);
        event_rules(st, tpl, &x, node, out);
        condition_rules(st, tpl, s, &x, stalled_recently, node, out);
    }
}

/// What one sample tells beside its values, for the evidence and the rules.
#[derive(Clone, Copy)]
struct Step {
    t: SimTime,
    /// Seconds since the sample before.
    dt: f64,
    /// `t` in whole seconds (event windows).
    t_s: u32,
    /// The AHU is occupied (hunting counts operating time only).
    operating: bool,
    /// Setpoint minus feedback [%].
    err: f32,
    /// Feedback travel since the sample before [%].
    dpos: f32,
    /// The device reports it is driving.
    driving: bool,
    /// Close enough to the sample before to read jumps between them.
    consecutive: bool,
}

/// Updates the detector's evidence with one sample.
fn evidence(st: &mut State, tpl: &ActuatorTemplate, s: &Sample, prev: &Sample, x: &Step) {
    let Step { t, dt, t_s, operating, err, dpos, driving, consecutive } = *x;
    let d = &tpl.detection;
    let m = &tpl.model;
    let al = st.alphas.for_dt(dt, d);
    // Tracking: progress toward the setpoint, and stalls while driving.
    let toward = if err.abs() > 1e-3 { dpos * err.signum() } else { 0.0 };
    ewma(&mut st.progress_pct_s, toward / dt as f32, al.progress);
    st.band.push(t, s.setpoint_pct, s.position_pct);
    // A feedback that reports the shaft `feedback_delay_s` late shows every move that much
    // after the drive starts: holds count from then on.
    let hold_grace = m.feedback_delay_s as f32;
    if driving && dpos.abs() < 0.05 {
        st.hold_s += dt as f32;
        if st.hold_s >= 1.0 + hold_grace {
            st.last_stall = t.0;
            let bit = s.rotation - 1;
            st.stall_dirs |= 1 << bit;
            st.free_travel_pct[bit as usize] = 0.0;
        }
        if f64::from(st.hold_s) >= 0.75 * m.overload_protection_s {
            st.last_long_stall = t.0;
        }
    }

    if driving && dpos.abs() >= 0.05 && (dpos > 0.0) == (s.rotation == 1) {
        let bit = s.rotation as usize - 1;
        st.free_travel_pct[bit] += dpos.abs();
        if f64::from(st.free_travel_pct[bit]) >= d.pinned_range_pct {
            st.stall_dirs &= !(1 << bit);
            if st.last_stall != u64::MAX {
                st.moved_since_stall = true;
            }
        }
    }

    // With a late feedback, a move shows up to the lag (and two refreshes) after the drive
    // that made it: such a move is the drive's own.
    let late = m.feedback_delay_s > 0.0 && {
        let lag_ms = ((m.feedback_delay_s + 2.0 / m.position_update_hz) * 1000.0) as u64;
        st.last_drive_dir[usize::from(dpos < 0.0)].checked_add(lag_ms).is_some_and(|until| until >= prev.t.0)
    };
    // Stick-slip and pokes: jumps in feedback between consecutive samples.
    let expected = (m.rated_speed_pct_s * dt) as f32;
    if consecutive && dpos.abs() > 0.05 {
        let dir_of = |r: u8| match r {
            1 => 1.0f32,
            2 => -1.0,
            _ => 0.0,
        };
        // A move toward the setpoint that does not pass it is the device's own, even when it
        // started and stopped between two samples.
        let to_setpoint = s.setpoint_pct - prev.position_pct;
        let own_move = to_setpoint * dpos > 0.0 && dpos.abs() <= to_setpoint.abs() + 2.0 * m.deadband_pct as f32;
        let explained = own_move || late || dir_of(prev.rotation) * dpos > 0.0 || dir_of(s.rotation) * dpos > 0.0;
        // Overshoot: the drive carried the feedback past a steady setpoint by more than twice
        // the deadband. A positioner stops at its command; a shaft released from static
        // friction does not. This is the stick-slip evidence slow polling still sees.
        let before = prev.setpoint_pct - prev.position_pct;
        let after = s.setpoint_pct - s.position_pct;
        let db2 = 2.0 * m.deadband_pct as f32;
        let overshoot = before * after < 0.0
            && after.abs() > db2
            && (s.setpoint_pct - prev.setpoint_pct).abs() < m.deadband_pct as f32;
        // External pokes overshoot too: while they are seen, overshoots are not evidence.
        let poked = st.poke_events.count_since(t_s.saturating_sub(d.event_window_s as u32)) > 0;
        if explained {
            let stick_jump =
                st.hold_s >= d.stick_min_s as f32 + hold_grace && dpos.abs() > expected + d.jump_pct as f32;
            if stick_jump || (overshoot && !poked) {
                st.stick_events.push(t_s);
            }
        } else if dpos.abs() > d.jump_pct as f32 {
            st.poke_events.push(t_s);
        }
    }
    // Pokes the rotation flag cannot tell: a back-driven motor reports the direction it is
    // pushed in, and at 20 Hz a push spreads over many small steps. A positioner only ever
    // drives toward its command, so feedback carried away from the setpoint (before and
    // after the step) by more than `poke_away_pct` in one push is an external move.
    if consecutive {
        let (e0, e1) = (prev.setpoint_pct - prev.position_pct, s.setpoint_pct - s.position_pct);
        let away = dpos.abs() > 1e-3 && dpos * e0 < 0.0 && dpos * e1 < 0.0 && e1.abs() > m.deadband_pct as f32 && !late;
        if away {
            st.away_run_pct += dpos.abs();
            st.away_last = t.0;
            if !st.away_counted && f64::from(st.away_run_pct) >= d.poke_away_pct {
                st.poke_events.push(t_s);
                st.away_counted = true;
            }
        } else if dpos.abs() > 1e-3 || t.0.saturating_sub(st.away_last) > AWAY_RUN_END_MS {
            st.away_run_pct = 0.0;
            st.away_counted = false;
        }
    } else {
        st.away_run_pct = 0.0;
        st.away_counted = false;
    }
    // Torque against the device's own baseline, over driving samples that are not a stall
    // (a stall is the tracking rules' business). Moves too short to span a sample still
    // show their torque in the driving samples around them.
    let recent_stall =
        st.last_stall != u64::MAX && t.0.saturating_sub(st.last_stall) <= (2.0 * m.retry_after_s * 1000.0) as u64;
    // Only samples of real travel: holds longer than `stick_min_s` (stick-slip build-up, stalls)
    // are the stiction and tracking rules' evidence, not friction.
    if driving && (dpos.abs() >= 0.05 || st.hold_s < d.stick_min_s as f32 + hold_grace) && !recent_stall {
        let mag = s.torque_nm.abs();
        let dir = usize::from(s.rotation - 1);
        let learn = d.torque_learn_moving_s as f32;
        if st.moving_s < learn {
            st.torque_learn[dir][0] += mag * dt as f32;
            st.torque_learn[dir][1] += dt as f32;
            if st.moving_s + dt as f32 >= learn {
                // The baseline is the lighter direction: a healthy drive needs about the same
                // torque both ways, so a one-sided load cannot hide in it.
                let learned = st
                    .torque_learn
                    .iter()
                    .filter(|[_, time]| *time >= 0.1 * learn)
                    .map(|[sum, time]| sum / time)
                    .fold(f32::INFINITY, f32::min);
                // A baseline learned on an already faulty device would hide the fault: accept
                // only what is plausible next to the template's prior (a heavier damper may
                // need up to about twice it).
                let prior = d.torque_prior_nm as f32;
                st.torque_baseline_nm = if learned.is_finite()
                    && learned <= prior * d.torque_learn_max_ratio as f32
                    && learned >= prior * 0.5
                {
                    learned
                } else {
                    prior
                };
            }
        }
        st.moving_s += dt as f32;
        ewma(&mut st.torque_avg_nm[dir], mag, al.torque);
        // The signed mean per direction starts from the prior (no bias) weighted as
        // `torque_bias_prior_s` of travel, is a running mean until its window is full, then
        // an exponential average: a fresh twin judges the bias from its first strokes.
        st.bias_travel_s[dir] += dt as f32;
        let w = st.bias_travel_s[dir] + d.torque_bias_prior_s as f32;
        ewma(&mut st.torque_signed_nm[dir], s.torque_nm, (dt as f32 / w).max(al.torque));
    }
    // A hold ends when the feedback moves, or when the drive has been off longer than the
    // feedback lags (until then the jump that ends it may still show).
    if driving {
        st.last_driving = t.0;
        // Only a drive toward the setpoint is the positioner's own: a back-driven motor
        // reports the way it is pushed, away from it.
        if (s.rotation == 1) == (err > 0.0) {
            st.last_drive_dir[usize::from(s.rotation - 1)] = t.0;
        }
    }
    let lag_ms = (m.feedback_delay_s * 1000.0) as u64;
    if dpos.abs() >= 0.05 || (!driving && t.0.saturating_sub(st.last_driving) > lag_ms) {
        st.hold_s = 0.0;
    }

    // Activity for hunting (operating time only).
    // Moves shorter than a sample interval leave no rotation flag in the sample: count the
    // time the travel between samples takes at rated speed, and its direction, too.
    let travelled = consecutive && f64::from(dpos.abs()) > m.deadband_pct;
    let direction = if driving {
        s.rotation
    } else if travelled {
        if dpos > 0.0 { 1 } else { 2 }
    } else {
        0
    };
    if operating {
        st.operating_s += dt as f32;
        // Short moves start from rest and slow down near the command: they average about
        // two-thirds of rated speed.
        let active = if driving {
            1.0
        } else if travelled {
            (f64::from(dpos.abs()) / (SHORT_MOVE_SPEED_RATIO * m.rated_speed_pct_s * dt)).min(1.0) as f32
        } else {
            0.0
        };
        ewma(&mut st.active_ratio, active, al.hunting);
        let reversal = direction != 0 && st.last_dir != 0 && direction != st.last_dir;
        let rate = if reversal { 1.0 / dt as f32 } else { 0.0 };
        ewma(&mut st.reversals_per_s, rate, al.hunting);
    }
    if direction != 0 {
        st.last_dir = direction;
    }

    if let Some(q) = s.signal_quality {
        ewma(&mut st.quality, q, al.quality);
    }
    ewma(&mut st.temperature_c, s.temperature_c, al.temperature);

    if driving {
        st.rest_s = 0.0;
    } else {
        st.rest_s += dt as f32;
        if f64::from(st.rest_s) >= d.rest_settle_s {
            ewma(&mut st.rest_offset_pct, err, al.offset);
        }
    }
}

/// Gear jam and closure blockage; returns whether the device stalled recently and whether pokes
/// were seen recently (evidence the later rules weigh).
fn tracking_rules(
    st: &mut State,
    tpl: &ActuatorTemplate,
    s: &Sample,
    x: &Step,
    node: &str,
    out: &mut Vec<FindingEvent>,
) -> (bool, bool) {
    let Step { t, t_s, err, .. } = *x;
    let d = &tpl.detection;
    let m = &tpl.model;
    let band_ms = (d.band_window_s * 1000.0) as u64;
    let stalled_recently = st.last_stall != u64::MAX && t.0.saturating_sub(st.last_stall) <= band_ms;
    // Not following: far from the setpoint without progress after a stall, or blocked long
    // enough to trip the overload protection (as the device's own alarm does) and still away
    // from the setpoint. The retry after a protection trip renews the evidence.
    let retry_ms = (2.0 * m.retry_after_s * 1000.0) as u64;
    let overloaded = st.last_long_stall != u64::MAX
        && t.0.saturating_sub(st.last_long_stall) <= retry_ms
        && f64::from(err.abs()) > 2.0 * m.deadband_pct;
    let no_progress = (st.progress_pct_s as f64) < d.progress_min_ratio * m.rated_speed_pct_s;
    // A device may stop driving almost at once when blocked (the real rig's jammed gear
    // reported rotation 0 on about 90 % of samples), leaving little stall evidence: travel
    // confined well inside the range the setpoint swept is evidence too.
    let (sp_range, pos_range) = st.band.ranges();
    let confined = f64::from(sp_range - pos_range) > d.confined_excess_pct;
    let not_following =
        no_progress && (overloaded || (err.abs() as f64 > d.tracking_error_pct && (stalled_recently || confined)));
    if !stalled_recently {
        // The episode is over: the next stall starts a new one.
        st.moved_since_stall = false;
    }
    // Which fault: a device blocked while opening (or pinned over the whole window) has a
    // jammed gear; one blocked only while closing, with free travel the other way, has an
    // obstacle in its damper. A jam first met while closing reads as a blockage until the
    // device tries to open.
    let pinned = (pos_range as f64) < d.pinned_range_pct;
    let jam = pinned || (st.stall_dirs & 1 != 0 && !st.moved_since_stall);
    //
    // Hysteresis by evidence: an open jam or blockage clears only when the device proves it
    // can move again (away from the jam position; below the obstacle), not merely because
    // the setpoint stopped asking for the blocked travel. That keeps a blockage met once per
    // stroke test from opening and resolving every stroke.
    let (open_jam, open_block) = (st.book.is_open(FaultKind::GearJam), st.book.is_open(FaultKind::ClosureBlockage));
    if not_following {
        st.last_not_following = t.0;
        if st.blocked_at_pct.is_nan() {
            st.blocked_at_pct = s.position_pct;
            st.blocked_dir = err.signum();
        }
    }
    let pinned_range = d.pinned_range_pct as f32;
    let freed_jam = (s.position_pct - st.blocked_at_pct).abs() > pinned_range;
    // Past the obstacle, the way the device could not go.
    let freed_block = (s.position_pct - st.blocked_at_pct) * st.blocked_dir > pinned_range;
    // Evidence is kept between strokes until the device proves it can travel past where it
    // was blocked (a jam: away from it at all), for `BLOCK_MEMORY_MS`.
    let remembered = st.last_not_following != u64::MAX
        && t.0.saturating_sub(st.last_not_following) <= BLOCK_MEMORY_MS
        && !st.blocked_at_pct.is_nan();
    let jam_evidence = not_following || (remembered && !freed_jam);
    let block_evidence = not_following || (remembered && !freed_block);
    let jam_cond = if open_jam { !freed_jam } else { jam_evidence && jam };
    // Pokes knock the feedback off its track and bias the torque: while they are seen, an
    // unfollowed setpoint or a biased drive is their doing, not an obstacle's or a load's.
    let poked_recently = st.poke_events.count_since(t_s.saturating_sub(d.event_window_s as u32)) > 0;
    let block_cond = if open_block { !freed_block } else { block_evidence && !jam && !open_jam && !poked_recently };
    let e = err.abs() as f64;
    st.rule(tpl, t, FaultKind::GearJam, (e, jam_cond), d.tracking_error_pct, node, out);
    st.rule(tpl, t, FaultKind::ClosureBlockage, (e, block_cond), d.tracking_error_pct, node, out);
    if !jam_cond && !block_cond && !st.book.is_open(FaultKind::GearJam) && !st.book.is_open(FaultKind::ClosureBlockage)
    {
        st.blocked_at_pct = f32::NAN;
    }
    (stalled_recently, poked_recently)
}

/// Added resistance: torque against the learned baseline, or a bias between the directions.
fn torque_rule(
    st: &mut State,
    tpl: &ActuatorTemplate,
    x: &Step,
    poked_recently: bool,
    node: &str,
    out: &mut Vec<FindingEvent>,
) {
    let Step { t, .. } = *x;
    let d = &tpl.detection;
    let torque_limit = f64::from(st.torque_baseline_nm) * d.torque_ratio + d.torque_margin_nm;
    let learned = f64::from(st.moving_s) >= d.torque_learn_moving_s;
    // Either direction: a load that acts one way (a spring, gravity, a binding linkage) raises
    // the torque of one direction only, and the signed mean over both hides it.
    let torque = f64::from(st.torque_avg_nm[0].max(st.torque_avg_nm[1]));
    let stalled = st.book.is_open(FaultKind::GearJam)
        || st.book.is_open(FaultKind::ClosureBlockage)
        || st.book.is_open(FaultKind::Stiction);
    let bias = f64::from(st.torque_signed_nm[0] + st.torque_signed_nm[1]) / 2.0;
    let bias_judged = st.bias_travel_s.iter().all(|&s| f64::from(s) >= d.torque_bias_prior_s);
    let biased = d.torque_bias_nm.is_some_and(|b| bias_judged && bias.abs() > b);
    let heavy = learned && torque > torque_limit;
    // Report the evidence that holds: the bias (from the first strokes) or the magnitude
    // against the learned baseline.
    let (measured, threshold) = match d.torque_bias_nm {
        Some(b) if biased && !heavy => (bias.abs(), b),
        _ => (torque, torque_limit),
    };
    st.rule(
        tpl,
        t,
        FaultKind::AddedResistance,
        (measured, (heavy || biased) && !stalled && !poked_recently),
        threshold,
        node,
        out,
    );
}

/// Stiction, destabilization and hunting: events and activity over their windows.
fn event_rules(st: &mut State, tpl: &ActuatorTemplate, x: &Step, node: &str, out: &mut Vec<FindingEvent>) {
    let Step { t, t_s, operating, .. } = *x;
    let d = &tpl.detection;
    let since = t_s.saturating_sub(d.event_window_s as u32);
    let sticks = st.stick_events.count_since(since) as f64;
    st.rule(tpl, t, FaultKind::Stiction, (sticks, sticks >= d.stiction_min_events), d.stiction_min_events, node, out);
    let pokes = st.poke_events.count_since(since) as f64;
    st.rule(tpl, t, FaultKind::Destabilization, (pokes, pokes >= d.poke_min_events), d.poke_min_events, node, out);

    let stick_or_poke = st.book.is_open(FaultKind::Stiction) || st.book.is_open(FaultKind::Destabilization);
    let active = f64::from(st.active_ratio);
    let reversals_h = f64::from(st.reversals_per_s) * 3600.0;
    let hunting = operating
        && f64::from(st.operating_s) >= d.hunting_window_s
        && active > d.hunting_active_ratio
        && reversals_h >= d.hunting_min_reversals_per_h
        && !stick_or_poke;
    st.rule(tpl, t, FaultKind::Hunting, (active, hunting), d.hunting_active_ratio, node, out);
}

/// Signal quality, temperature and feedback drift at rest.
fn condition_rules(
    st: &mut State,
    tpl: &ActuatorTemplate,
    s: &Sample,
    x: &Step,
    stalled_recently: bool,
    node: &str,
    out: &mut Vec<FindingEvent>,
) {
    let Step { t, .. } = *x;
    let d = &tpl.detection;
    let m = &tpl.model;
    let q = f64::from(st.quality);
    if s.signal_quality.is_some() {
        st.rule(tpl, t, FaultKind::SignalLoss, (q, q < d.signal_loss_below), d.signal_loss_below, node, out);
        let weak = q < d.weak_signal_below && !st.book.is_open(FaultKind::SignalLoss);
        st.rule(tpl, t, FaultKind::WeakSignal, (q, weak), d.weak_signal_below, node, out);
    }

    let temp_limit = m.ambient_c + d.temperature_rise_c;
    let temp = f64::from(st.temperature_c);
    st.rule(tpl, t, FaultKind::TemperatureDrift, (temp, temp > temp_limit), temp_limit, node, out);

    // Feedback drift is judged only at rest; while the device moves or settles the rule is
    // not evaluated at all, so its confirmation time keeps running across short moves.
    let offset = f64::from(st.rest_offset_pct);
    let blocked =
        stalled_recently || st.book.is_open(FaultKind::GearJam) || st.book.is_open(FaultKind::ClosureBlockage);
    if f64::from(st.rest_s) >= d.rest_settle_s || blocked {
        let drift = !blocked && offset.abs() > d.rest_offset_pct;
        st.rule(tpl, t, FaultKind::FeedbackDrift, (offset, drift), d.rest_offset_pct, node, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FindingSpec {
        FindingSpec {
            severity: Severity::Critical,
            confirm_s: 10.0,
            clear_s: 5.0,
            gated_in: vec![Phase::Startup],
            summary: "{node} jammed ({value} %)".into(),
            action: "free the gear".into(),
        }
    }

    /// Feeds the rule once a second from `from_s` to `to_s` (exclusive) with `holds`; the events.
    fn feed(
        book: &mut FindingBook,
        s: &FindingSpec,
        from_s: u64,
        to_s: u64,
        holds: bool,
        gated: bool,
    ) -> Vec<FindingEvent> {
        let mut out = Vec::new();
        for t in from_s..to_s {
            let r = RuleInput {
                kind: FaultKind::GearJam,
                measured: if holds { 40.0 } else { 1.0 },
                holds,
                threshold: 20.0,
                gated,
                spec: s,
                node: "BEL-1",
                device: None,
            };
            book.update(SimTime(t * 1000), r, &mut out);
        }
        out
    }

    #[test]
    fn a_finding_opens_after_its_confirmation_and_resolves_after_its_clear_time() {
        let s = spec();
        let mut book = FindingBook::for_kinds([FaultKind::GearJam].into_iter());
        // Held 9 s: not yet.
        assert!(feed(&mut book, &s, 0, 10, true, false).is_empty());
        let opened = feed(&mut book, &s, 10, 11, true, false);
        assert_eq!(opened.len(), 1);
        let o = &opened[0];
        assert_eq!(
            (o.change, o.t, o.opened_at, o.value, o.threshold),
            (Change::Opened, SimTime(10_000), SimTime(10_000), 40.0, Some(20.0))
        );
        assert_eq!(o.summary, "BEL-1 jammed (40.00 %)");
        assert!((0.5..=1.0).contains(&o.confidence));
        assert!(book.is_open(FaultKind::GearJam));
        assert_eq!(book.status(&specs_for(&s)), Status::Critical);
        // A short dip (4 s) does not clear it; 5 s clear does.
        assert!(feed(&mut book, &s, 11, 15, false, false).is_empty());
        assert!(feed(&mut book, &s, 15, 16, true, false).is_empty());
        let resolved = feed(&mut book, &s, 16, 22, false, false);
        assert_eq!(resolved.iter().map(|e| (e.change, e.t)).collect::<Vec<_>>(), [(Change::Resolved, SimTime(21_000))]);
        assert_eq!(resolved[0].opened_at, SimTime(10_000), "the resolution names the finding it ends");
        assert!(!book.is_open(FaultKind::GearJam));
    }

    #[test]
    fn a_gated_rule_neither_confirms_nor_clears() {
        let s = spec();
        let mut book = FindingBook::for_kinds([FaultKind::GearJam].into_iter());
        // Evidence in a gated phase is dropped: 8 s before, 60 s gated, 8 s after: never 10 s held.
        assert!(feed(&mut book, &s, 0, 8, true, false).is_empty());
        assert!(feed(&mut book, &s, 8, 68, true, true).is_empty());
        assert!(feed(&mut book, &s, 68, 76, true, false).is_empty());
        assert!(!book.is_open(FaultKind::GearJam));
        // Open, then gated: it stays open however long the gate lasts.
        feed(&mut book, &s, 76, 90, true, false);
        assert!(book.is_open(FaultKind::GearJam));
        assert!(feed(&mut book, &s, 90, 200, false, true).is_empty());
        assert!(book.is_open(FaultKind::GearJam));
    }

    #[test]
    fn an_operator_resolves_and_the_condition_opens_it_again_as_a_new_finding() {
        let s = spec();
        let mut book = FindingBook::for_kinds([FaultKind::GearJam].into_iter());
        feed(&mut book, &s, 0, 11, true, false);
        let r = book.force_resolve(SimTime(20_000), FaultKind::GearJam, &s, "BEL-1", None).expect("it was open");
        assert_eq!((r.change, r.opened_at), (Change::Resolved, SimTime(10_000)));
        assert!(r.summary.starts_with("resolved by an operator"));
        assert!(book.force_resolve(SimTime(20_000), FaultKind::GearJam, &s, "BEL-1", None).is_none());
        let again = feed(&mut book, &s, 21, 32, true, false);
        assert_eq!(
            again.iter().map(|e| (e.change, e.opened_at)).collect::<Vec<_>>(),
            [(Change::Opened, SimTime(31_000))]
        );
    }

    #[test]
    fn a_diagnosis_lists_each_evaluated_rules_state() {
        let s = spec();
        let mut book = FindingBook::for_kinds([FaultKind::GearJam, FaultKind::Stiction].into_iter());
        feed(&mut book, &s, 0, 5, true, false);
        let checks = book.checks(|k| (k == FaultKind::GearJam).then_some(&s), |_| 30.0, None);
        assert_eq!(checks.len(), 1, "stiction was never evaluated");
        let c = &checks[0];
        assert_eq!(
            (c.kind, c.finding, c.since, c.holds, c.measured, c.threshold),
            (FaultKind::GearJam, FindingState::Confirming, Some(SimTime(0)), true, 40.0, 20.0)
        );
        assert!(book.evaluated(FaultKind::GearJam) && !book.evaluated(FaultKind::Stiction));
    }

    fn specs_for(s: &FindingSpec) -> Vec<Option<FindingSpec>> {
        FaultKind::ALL.iter().map(|&k| (k == FaultKind::GearJam).then(|| s.clone())).collect()
    }
}
