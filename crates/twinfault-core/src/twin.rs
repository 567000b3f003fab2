//! Twins: a device model (or its real telemetry) plus its detector, advanced one control epoch
//! at a time. The actors in the `twinfault` crate wrap these; [`crate::plain`] steps the same
//! twins in a plain loop, which is both the speed reference and a determinism oracle.

use crate::actuator::{Actuator, Sample};
use crate::ahu::ChildReport;
use crate::classify::{LiveClassifier, WindowClassifier};
use crate::config::{ActuatorNode, ActuatorTemplate, Facility};
use crate::detect::{ActuatorDetector, FindingEvent};
use crate::fault::Injection;
use crate::types::{Phase, Role, SimTime, Status};
use std::sync::Arc;

/// Length of one history block [ms]: a block holds every sample of a node for this long.
pub const HISTORY_BLOCK_MS: u64 = 60_000;

/// A closed block of a node's samples, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryBlock {
    pub start: SimTime,
    pub samples: Vec<Sample>,
}

/// Whether a twin simulates its device or is fed real telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Simulate,
    Ingest,
}

/// The time grid of a run: sample `k` is at `round(k × 1000 / rate)` ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub sample_rate_hz: f64,
    /// Samples per control epoch.
    pub samples_per_epoch: u64,
}

impl Grid {
    pub fn new(sample_rate_hz: f64, control_period_s: f64) -> Grid {
        Grid { sample_rate_hz, samples_per_epoch: (sample_rate_hz * control_period_s).round().max(1.0) as u64 }
    }
    pub fn sample_time(&self, k: u64) -> SimTime {
        SimTime(crate::types::round(k as f64 * 1000.0 / self.sample_rate_hz) as u64)
    }
    pub fn epoch_start(&self, epoch: u64) -> SimTime {
        self.sample_time(epoch * self.samples_per_epoch)
    }
    pub fn epochs_in(&self, duration: SimTime) -> u64 {
        let samples = (duration.as_secs_f64() * self.sample_rate_hz).round() as u64;
        samples.div_ceil(self.samples_per_epoch)
    }
}

/// The result of advancing an actuator twin by one epoch.
#[derive(Debug, Clone, Default)]
pub struct EpochReport {
    pub report: ChildReport,
    pub findings: Vec<FindingEvent>,
    /// A history block that closed during the epoch.
    pub history: Option<HistoryBlock>,
}

/// Appends a sample to the open block; returns the block it closed, if any.
fn record(block: &mut Option<HistoryBlock>, enabled: bool, s: &Sample) -> Option<HistoryBlock> {
    if !enabled {
        return None;
    }
    let start = SimTime(s.t.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS);
    let mut closed = None;
    if block.as_ref().is_some_and(|b| b.start != start) {
        closed = block.take();
    }
    block.get_or_insert_with(|| HistoryBlock { start, samples: Vec::new() }).samples.push(*s);
    closed
}

/// Feeds a sample to the twin's classifier, if it has one.
fn classify(
    c: &mut Option<Box<LiveClassifier>>,
    d: &ActuatorDetector,
    phase_known: bool,
    id: &str,
    s: &Sample,
    out: &mut Vec<FindingEvent>,
) {
    if let Some(c) = c.as_mut() {
        let phase = if phase_known { d.phase() } else { Phase::Occupied };
        c.observe(s, phase, &|| d.book().open_kinds().collect(), id, out);
    }
}

/// How often a live clock ticks an ingesting twin when its samples are replayed [ms].
pub const CLOCK_TICK_MS: u64 = 1000;

/// How long into a silence replayed ticks come every second (then every minute) [ms].
const DENSE_SILENCE_MS: u64 = 15 * 60 * 1000;

/// An actuator twin: model (when simulating) + detector + the open history block.
#[derive(Debug, Clone)]
pub struct ActuatorTwin {
    pub id: String,
    model: Option<Actuator>,
    detector: ActuatorDetector,
    record_history: bool,
    block: Option<HistoryBlock>,
    /// A learned classifier's second opinion, when the facility names one.
    classifier: Option<Box<LiveClassifier>>,
    /// Whether an AHU (or a replay) has told the twin its phase; a device replayed on its own
    /// is taken as operating.
    phase_known: bool,
}

impl ActuatorTwin {
    pub fn new(
        id: &str,
        template: Arc<ActuatorTemplate>,
        mode: Mode,
        seed: u64,
        initial_pct: f64,
        record_history: bool,
    ) -> ActuatorTwin {
        let model = (mode == Mode::Simulate).then(|| Actuator::new(Arc::clone(&template), seed, id, initial_pct));
        ActuatorTwin {
            id: id.to_string(),
            model,
            detector: ActuatorDetector::new(template),
            record_history,
            block: None,
            classifier: None,
            phase_known: false,
        }
    }

    /// The twin of `node` of `facility`, under `id` (the node's own, or that of an auto-created
    /// node that takes this node's template and role), with the facility's learned classifier
    /// when it has one. Every driver that runs the facility's twins builds them here, so none
    /// forgets the classifier.
    pub fn of_node(
        facility: &Facility,
        node: &ActuatorNode,
        id: &str,
        mode: Mode,
        seed: u64,
        record_history: bool,
    ) -> ActuatorTwin {
        let twin = ActuatorTwin::new(id, Arc::clone(&node.template), mode, seed, 0.0, record_history);
        match &facility.classifier {
            Some(m) => twin.with_classifier(Arc::clone(m), node.role),
            None => twin,
        }
    }

    /// Whether a learned classifier runs alongside the rules.
    pub fn has_classifier(&self) -> bool {
        self.classifier.is_some()
    }

    /// Runs a learned window classifier alongside the rules (see [`crate::classify`]).
    pub fn with_classifier(mut self, model: Arc<dyn WindowClassifier>, role: Role) -> ActuatorTwin {
        self.classifier = Some(Box::new(LiveClassifier::new(model, role)));
        self
    }

    fn classify(&mut self, s: &Sample, out: &mut Vec<FindingEvent>) {
        classify(&mut self.classifier, &self.detector, self.phase_known, &self.id, s, out);
    }

    pub fn inject(&mut self, injection: Injection) -> bool {
        match self.model.as_mut() {
            Some(m) => {
                m.inject(injection);
                true
            }
            None => false,
        }
    }

    /// Ends the faults injected into a simulating twin at `t`; their ids (`None` for a twin fed
    /// by telemetry).
    pub fn clear_injections(&mut self, t: SimTime) -> Option<Vec<String>> {
        self.model.as_mut().map(|m| m.clear_injections(t))
    }

    /// Resolves an open finding on an operator's word; returns the event.
    pub fn force_resolve(&mut self, t: SimTime, kind: crate::types::FaultKind) -> Option<FindingEvent> {
        self.detector.force_resolve(t, kind, &self.id)
    }

    /// Tells the detector the AHU's phase (replays; a simulated run does this in [`Self::advance`]).
    pub fn set_phase(&mut self, t: SimTime, phase: Phase) {
        self.detector.set_phase(t, phase);
        self.phase_known = true;
    }

    /// Time passes without a sample (replays): silence and timed rules are checked.
    pub fn tick(&mut self, now: SimTime, out: &mut Vec<FindingEvent>) {
        self.detector.tick(now, &self.id, out);
    }

    /// Every rule's last evaluation against its threshold, as of `now`.
    pub fn diagnosis(&self, now: SimTime) -> crate::detect::Diagnosis {
        self.detector.diagnosis(&self.id, now)
    }

    pub fn detector(&self) -> &ActuatorDetector {
        &self.detector
    }

    pub fn status(&self, now: SimTime) -> Status {
        self.detector.status(now)
    }

    /// Takes the open history block (at the end of a run).
    pub fn take_open_block(&mut self) -> Option<HistoryBlock> {
        self.block.take()
    }

    /// Feeds one real sample (ingest mode, or a replay); returns finding changes and a closed
    /// history block, if any. Samples older than the last one are not evaluated, but are kept.
    pub fn ingest(&mut self, s: &Sample, out: &mut Vec<FindingEvent>) -> Option<HistoryBlock> {
        // Evaluated in time order only: a late sample or one delivered again is recorded but
        // changes no finding.
        if self.detector.last_sample().is_none_or(|l| s.t > l.t) {
            self.detector.observe(s, &self.id, out);
            self.classify(s, out);
        }
        record(&mut self.block, self.record_history, s)
    }

    /// A recorded sample fed as a live server would have met it: the clock ticks on whole
    /// seconds after `since` (the sample before it) up to the sample's time, so that through a
    /// silence the twin goes offline and raises signal loss and the next tick clears them; then
    /// the sample is ingested. `replay` and the server's restore from its store both feed so.
    pub fn ingest_after(&mut self, since: SimTime, s: &Sample, out: &mut Vec<FindingEvent>) -> Option<HistoryBlock> {
        let mut tick = (since.0 / CLOCK_TICK_MS + 1) * CLOCK_TICK_MS;
        while tick <= s.t.0 {
            self.tick(SimTime(tick), out);
            // What a silence changes (offline, signal loss confirmed) is settled in its first
            // minutes; after that a minute's tick is enough, so a week's gap costs thousands of
            // ticks on a restore, not 600,000.
            let step = if tick - since.0 < DENSE_SILENCE_MS { CLOCK_TICK_MS } else { 60 * CLOCK_TICK_MS };
            tick += step;
        }
        self.ingest(s, out)
    }

    /// Advances one epoch: samples `first..first + grid.samples_per_epoch` under `command_pct`,
    /// in `phase`. An ingesting twin only checks for silence.
    pub fn advance(&mut self, grid: &Grid, first_sample: u64, command_pct: f64, phase: Phase, out: &mut EpochReport) {
        let t0 = grid.sample_time(first_sample);
        self.detector.set_phase(t0, phase);
        self.phase_known = true;
        let n = grid.samples_per_epoch;
        let t_end = grid.sample_time(first_sample + n);
        let mut opening_sum = 0.0;
        if let Some(model) = self.model.as_mut() {
            let mut prev = grid.sample_time(first_sample.saturating_sub(1));
            for k in first_sample..first_sample + n {
                let t = grid.sample_time(k);
                let dt_s = if k == 0 { 1.0 / grid.sample_rate_hz } else { (t.0 - prev.0) as f64 / 1000.0 };
                prev = t;
                let sample = model.step(t, dt_s, command_pct);
                opening_sum += model.opening_pct();
                if let Some(s) = sample {
                    self.detector.observe(&s, &self.id, &mut out.findings);
                    classify(&mut self.classifier, &self.detector, true, &self.id, &s, &mut out.findings);
                    if let Some(b) = record(&mut self.block, self.record_history, &s) {
                        out.history = Some(b);
                    }
                }
            }
        }
        self.detector.tick(t_end, &self.id, &mut out.findings);
        let feedback_pct = self.detector.last_sample().map_or(f64::NAN, |s| f64::from(s.position_pct));
        out.report = ChildReport {
            opening_pct: if self.model.is_some() { opening_sum / n as f64 } else { feedback_pct },
            feedback_pct,
            status: self.detector.status(t_end),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Change;
    use crate::testkit;
    use crate::types::FaultKind;

    fn sample(t_ms: u64) -> Sample {
        Sample {
            t: SimTime(t_ms),
            setpoint_pct: 50.0,
            position_pct: 50.0,
            torque_nm: 0.5,
            power_w: 0.4,
            temperature_c: 28.0,
            rotation: 0,
            signal_quality: None,
        }
    }

    #[test]
    fn a_replayed_silence_raises_and_clears_signal_loss_as_the_live_clock_does() {
        let f = testkit::datacenter();
        let a = f.actuators.iter().find(|a| a.id == "BEL-VNT-003").unwrap();
        let mut twin = ActuatorTwin::of_node(&f, a, &a.id, Mode::Ingest, 7, false);
        let mut out = Vec::new();
        let mut since = SimTime(0);
        // 60 s at 5 Hz, 3 min of silence, 3 min at 5 Hz.
        let times = (0..300).map(|k| k * 200).chain((0..900).map(|k| 240_000 + k * 200));
        for t in times {
            let s = sample(t);
            twin.ingest_after(since, &s, &mut out);
            since = s.t;
        }
        let loss: Vec<(Change, u64)> =
            out.iter().filter(|e| e.kind == FaultKind::SignalLoss).map(|e| (e.change, e.t.0)).collect();
        // Offline after 10 s, confirmed 30 s later, inside the silence; clear 60 s after it ends.
        assert!(matches!(loss.first(), Some((Change::Opened, t)) if (60_000..240_000).contains(t)), "{loss:?}");
        assert!(matches!(loss.last(), Some((Change::Resolved, t)) if *t > 240_000), "{loss:?}");
        // Fed without the clock (plain ingest), the same samples raise nothing: the ticks matter.
        let mut plain = ActuatorTwin::of_node(&f, a, &a.id, Mode::Ingest, 7, false);
        let mut quiet = Vec::new();
        for t in (0..300).map(|k| k * 200).chain((0..900).map(|k| 240_000 + k * 200)) {
            plain.ingest(&sample(t), &mut quiet);
        }
        assert!(quiet.iter().all(|e| e.kind != FaultKind::SignalLoss), "{quiet:?}");
        // A week of silence: the same episode, opened once, resolved once after it.
        let mut week = ActuatorTwin::of_node(&f, a, &a.id, Mode::Ingest, 7, false);
        let mut out = Vec::new();
        let week_ms = 7 * 86_400_000;
        let times: Vec<u64> = (0..300).map(|k| k * 200).chain((0..900).map(|k| week_ms + k * 200)).collect();
        let mut since = SimTime(0);
        for &t in &times {
            week.ingest_after(since, &sample(t), &mut out);
            since = SimTime(t);
        }
        let changes: Vec<Change> = out
            .iter()
            .filter(|e| e.kind == FaultKind::SignalLoss && e.change != Change::Updated)
            .map(|e| e.change)
            .collect();
        assert_eq!(changes, [Change::Opened, Change::Resolved]);
    }
}
