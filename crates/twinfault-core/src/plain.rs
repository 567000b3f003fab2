//! Building a run's twins, recording its event log, and the plain loop.
//!
//! [`Setup`] builds every twin of a scenario; [`Recorder`] turns what the twins report in each
//! epoch into the ordered, attributed event log. Both the actor engine (crate `twinfault`) and
//! [`run_plain`] use them, so the plain loop is the actor engine without messages: the speed
//! reference of the benchmark and a determinism oracle in the tests.

use crate::ahu::{Ahu, AhuSummary, ChildReport, ChildSpec, Plant, PlantConditions};
use crate::config::{Facility, NodeRef};
use crate::detect::FindingEvent;
use crate::event::Event;
use crate::fault::Injection;
use crate::report::{attribute, injections_below};
use crate::scenario::Scenario;
use crate::twin::{ActuatorTwin, EpochReport, Grid, HistoryBlock};
use crate::types::{Phase, SimTime, Status};
use std::sync::Arc;

/// Every twin of a run, built from a scenario and its facility.
pub struct Setup {
    pub actuators: Vec<ActuatorTwin>,
    pub ahus: Vec<Ahu>,
    pub plant: Option<Plant>,
    pub grid: Grid,
}

impl Setup {
    pub fn new(scenario: &Scenario, facility: &Facility, record_history: bool) -> Setup {
        let mut actuators: Vec<ActuatorTwin> = facility
            .actuators
            .iter()
            .map(|a| ActuatorTwin::of_node(facility, a, &a.id, a.mode, scenario.seed, record_history))
            .collect();
        for inj in &scenario.injections {
            if let Some(NodeRef::Actuator(i)) = facility.node(&inj.node) {
                actuators[i].inject(inj.clone());
            }
        }
        let ahus = facility
            .ahus
            .iter()
            .map(|h| {
                let children = h
                    .children
                    .iter()
                    .map(|&c| {
                        let a = &facility.actuators[c];
                        ChildSpec {
                            id: a.id.clone(),
                            role: a.role,
                            profile: scenario.commands.iter().find(|p| p.node == a.id).cloned(),
                        }
                    })
                    .collect();
                Ahu::new(
                    &h.id,
                    h.template.clone(),
                    children,
                    scenario.schedule,
                    scenario.weather,
                    scenario.start_clock_s,
                    scenario.seed,
                )
            })
            .collect();
        let plant = facility.plant.as_ref().map(|p| Plant::new(&p.id, p.template.clone()));
        Setup { actuators, ahus, plant, grid: Grid::new(scenario.sample_rate_hz, scenario.control_period_s) }
    }
}

/// Collects one epoch's outputs and appends them to the log in a fixed order: by time, then
/// phases < injections < findings < statuses, then node order (plant, AHUs, actuators), then the
/// order each node produced them. Arrival order never matters.
pub struct Recorder {
    facility: Arc<Facility>,
    injections: Vec<Injection>,
    /// Status per node in `Facility::node_ids` order.
    statuses: Vec<Status>,
    phases: Vec<Phase>,
    pending: Vec<(SimTime, u8, usize, Event)>,
    log: Vec<Event>,
    /// Where the last epoch's events start in `log`.
    last_from: usize,
    /// Whether the log keeps every epoch (a run) or only the last (a server, which streams it).
    keep_log: bool,
}

impl Recorder {
    pub fn new(facility: Arc<Facility>, injections: Vec<Injection>) -> Recorder {
        let h = facility.ahus.len();
        Recorder {
            statuses: facility.initial_statuses(),
            facility,
            injections,
            phases: vec![Phase::Off; h],
            pending: Vec::new(),
            log: Vec::new(),
            last_from: 0,
            keep_log: true,
        }
    }

    fn push(&mut self, node: NodeRef, e: Event) {
        let key = (e.t(), e.class(), self.facility.node_index(node));
        self.pending.push((key.0, key.1, key.2, e));
    }

    /// Injection onsets and ends in `[t0, t1)`.
    pub fn injections(&mut self, t0: SimTime, t1: SimTime) {
        let mut events = Vec::new();
        for i in &self.injections {
            let Some(node) = self.facility.node(&i.node) else {
                continue;
            };
            if i.start >= t0 && i.start < t1 {
                events.push((
                    node,
                    Event::InjectionStarted {
                        t: i.start,
                        id: i.id.clone(),
                        node: i.node.clone(),
                        kind: i.kind,
                        severity: i.severity,
                    },
                ));
            }
            if let Some(end) = i.end.filter(|e| *e >= t0 && *e < t1) {
                events.push((node, Event::InjectionEnded { t: end, id: i.id.clone(), node: i.node.clone() }));
            }
        }
        for (node, e) in events {
            self.push(node, e);
        }
    }

    pub fn phase(&mut self, t: SimTime, ahu: usize, phase: Phase) {
        let from = self.phases[ahu];
        if from != phase {
            self.phases[ahu] = phase;
            self.push(NodeRef::Ahu(ahu), Event::Phase { t, node: self.facility.ahus[ahu].id.clone(), from, to: phase });
        }
    }

    fn phase_of(&self, node: NodeRef) -> Option<Phase> {
        match node {
            NodeRef::Plant => None,
            NodeRef::Ahu(i) => Some(self.phases[i]),
            NodeRef::Actuator(i) => Some(self.phases[self.facility.actuators[i].ahu]),
        }
    }

    /// Findings of one node, in the order the node produced them.
    pub fn findings(&mut self, node: NodeRef, findings: Vec<FindingEvent>) {
        let id = self.facility.node_id(node).to_string();
        let phase = self.phase_of(node);
        for f in findings {
            let truth = attribute(&self.facility, &self.injections, &id, f.device.as_deref(), f.kind, f.t)
                .map(|i| i.id.clone());
            self.push(node, Event::Finding { node: id.clone(), phase, finding: f, truth });
        }
    }

    /// The status of a node at `t`; an event when it changed.
    pub fn status(&mut self, t: SimTime, node: NodeRef, status: Status) {
        let k = self.facility.node_index(node);
        let from = self.statuses[k];
        if from == status {
            return;
        }
        self.statuses[k] = status;
        let truth = if status == Status::Healthy {
            Vec::new()
        } else {
            injections_below(&self.facility, &self.injections, node, t).iter().map(|i| i.id.clone()).collect()
        };
        self.push(node, Event::Status { t, node: self.facility.node_id(node).to_string(), from, to: status, truth });
    }

    /// Orders the epoch's events, appends them to the log and returns them.
    pub fn end_epoch(&mut self) -> &[Event] {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(t, c, n, _)| (*t, *c, *n));
        if !self.keep_log {
            self.log.clear();
        }
        self.last_from = self.log.len();
        self.log.extend(pending.into_iter().map(|p| p.3));
        self.last_epoch()
    }

    /// The events of the last epoch recorded.
    pub fn last_epoch(&self) -> &[Event] {
        &self.log[self.last_from..]
    }

    /// Whether the log keeps every epoch's events.
    pub fn keeps_log(&self) -> bool {
        self.keep_log
    }

    /// Keep only the last epoch's events (for a server that streams them elsewhere).
    pub fn stream_only(&mut self) {
        self.keep_log = false;
    }

    /// Ends injections at `t` (a live repair): ground truth stops at the repair.
    pub fn end_injections(&mut self, ids: &[String], t: SimTime) {
        for i in self.injections.iter_mut().filter(|i| ids.contains(&i.id)) {
            i.end = Some(t);
        }
    }

    /// Adds an injection made while the run goes on (live fault injection).
    pub fn add_injection(&mut self, injection: Injection) {
        self.injections.push(injection);
    }

    pub fn log(&self) -> &[Event] {
        &self.log
    }

    pub fn into_log(self) -> Vec<Event> {
        self.log
    }
}

/// What one epoch of a whole facility produced, for the recorder.
pub struct EpochOutputs {
    pub phases: Vec<Phase>,
    pub actuators: Vec<EpochReport>,
    pub ahu_findings: Vec<Vec<FindingEvent>>,
    pub ahu_summaries: Vec<AhuSummary>,
    pub plant_status: Option<Status>,
}

/// Feeds one epoch's outputs to the recorder in the canonical order.
pub fn record_epoch(
    rec: &mut Recorder,
    t0: SimTime,
    t1: SimTime,
    out: &mut EpochOutputs,
) -> Vec<(usize, HistoryBlock)> {
    rec.injections(t0, t1);
    for (h, p) in out.phases.iter().enumerate() {
        rec.phase(t0, h, *p);
    }
    let mut blocks = Vec::new();
    for (i, r) in out.actuators.iter_mut().enumerate() {
        rec.findings(NodeRef::Actuator(i), std::mem::take(&mut r.findings));
        if let Some(b) = r.history.take() {
            blocks.push((i, b));
        }
    }
    for (h, f) in out.ahu_findings.iter_mut().enumerate() {
        rec.findings(NodeRef::Ahu(h), std::mem::take(f));
    }
    for (i, r) in out.actuators.iter().enumerate() {
        rec.status(t1, NodeRef::Actuator(i), r.report.status);
    }
    for (h, s) in out.ahu_summaries.iter().enumerate() {
        rec.status(t1, NodeRef::Ahu(h), s.status);
    }
    if let Some(s) = out.plant_status {
        rec.status(t1, NodeRef::Plant, s);
    }
    rec.end_epoch();
    blocks
}

/// A run in the plain loop, stepped one epoch at a time: its twins, its recorder, the plant's
/// conditions (none without a plant) and the epoch it is at. The visualizer, `generate`, the
/// benchmark and [`run_plain`] all step through it.
pub struct Run {
    pub setup: Setup,
    pub recorder: Recorder,
    facility: Arc<Facility>,
    conditions: Option<PlantConditions>,
    next: u64,
    epochs: u64,
}

impl Run {
    pub fn new(scenario: &Scenario, facility: Arc<Facility>, record_history: bool) -> Run {
        let setup = Setup::new(scenario, &facility, record_history);
        let conditions = setup.plant.as_ref().map(Plant::conditions);
        let epochs = setup.grid.epochs_in(scenario.duration);
        let recorder = Recorder::new(Arc::clone(&facility), scenario.injections.clone());
        Run { setup, recorder, facility, conditions, next: 0, epochs }
    }

    pub fn facility(&self) -> &Arc<Facility> {
        &self.facility
    }

    /// The next epoch to run.
    pub fn epoch(&self) -> u64 {
        self.next
    }

    pub fn epochs(&self) -> u64 {
        self.epochs
    }

    pub fn finished(&self) -> bool {
        self.next >= self.epochs
    }

    /// Steps every twin through the next epoch without recording it (the caller takes the
    /// findings and samples itself); `None` once the run is over.
    pub fn advance(&mut self) -> Option<(u64, EpochOutputs)> {
        if self.finished() {
            return None;
        }
        let e = self.next;
        self.next += 1;
        Some((e, step_epoch(&mut self.setup, &self.facility, e, &mut self.conditions)))
    }

    /// Steps and records the next epoch: its outputs (findings taken into the log) and history
    /// blocks; the epoch's events are then [`Recorder::last_epoch`].
    pub fn step(&mut self) -> Option<(EpochOutputs, Vec<(usize, HistoryBlock)>)> {
        let (e, mut out) = self.advance()?;
        let grid = self.setup.grid;
        let blocks = record_epoch(&mut self.recorder, grid.epoch_start(e), grid.epoch_start(e + 1), &mut out);
        Some((out, blocks))
    }
}

/// Runs a scenario in a plain loop (no actors, one thread) and returns its event log.
pub fn run_plain(scenario: &Scenario, facility: &Facility) -> Vec<Event> {
    let mut run = Run::new(scenario, Arc::new(facility.clone()), false);
    while run.step().is_some() {}
    run.recorder.into_log()
}

/// One epoch of the whole facility in a plain loop.
fn step_epoch(setup: &mut Setup, facility: &Facility, epoch: u64, cond: &mut Option<PlantConditions>) -> EpochOutputs {
    let grid = setup.grid;
    let (t0, t1) = (grid.epoch_start(epoch), grid.epoch_start(epoch + 1));
    let dt_s = (t1.0 - t0.0) as f64 / 1000.0;
    let mut reports: Vec<EpochReport> = (0..setup.actuators.len()).map(|_| EpochReport::default()).collect();
    let mut phases = Vec::with_capacity(setup.ahus.len());
    let mut ahu_findings = Vec::with_capacity(setup.ahus.len());
    let mut summaries = Vec::with_capacity(setup.ahus.len());
    for (h, ahu) in setup.ahus.iter_mut().enumerate() {
        let (phase, cmds) = ahu.begin_epoch(t0, dt_s, *cond);
        phases.push(phase);
        let children = &facility.ahus[h].children;
        let mut child_reports: Vec<ChildReport> = Vec::with_capacity(children.len());
        for (slot, &i) in children.iter().enumerate() {
            setup.actuators[i].advance(&grid, epoch * grid.samples_per_epoch, cmds[slot], phase, &mut reports[i]);
            child_reports.push(reports[i].report);
        }
        let mut f = Vec::new();
        summaries.push(ahu.end_epoch(t1, dt_s, &child_reports, &mut f));
        ahu_findings.push(f);
    }
    let plant_status = setup.plant.as_mut().map(|p| {
        *cond = Some(p.update(&summaries));
        summaries.iter().map(|s| s.status).max().unwrap_or(Status::Healthy)
    });
    EpochOutputs { phases, actuators: reports, ahu_findings, ahu_summaries: summaries, plant_status }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Change;
    use crate::testkit;
    use crate::types::FaultKind;

    #[test]
    fn stepping_a_run_gives_the_plain_loops_log_epoch_by_epoch() {
        let (f, s) = (testkit::datacenter(), testkit::scenario(1200, &testkit::gear_jam(600)));
        let whole = run_plain(&s, &f);
        let mut run = Run::new(&s, Arc::new(f), false);
        assert_eq!(run.epochs(), 1200);
        let mut pieces = Vec::new();
        while let Some((out, _)) = run.step() {
            assert_eq!(out.actuators.len(), run.facility().actuators.len());
            pieces.extend_from_slice(run.recorder.last_epoch());
        }
        assert!(run.finished() && run.step().is_none() && run.advance().is_none());
        assert_eq!(pieces, whole);
        assert_eq!(run.recorder.log(), whole.as_slice());
        // The jam's first finding is attributed to it, and its AHU and the plant go critical
        // in the same epoch (findings come before statuses in an epoch's events); the gear-jam
        // rule itself confirms later.
        let first = whole.iter().find_map(|e| match e {
            Event::Finding { node, finding, truth, .. } if node == "BEL-VNT-003" => Some((finding.t, truth.clone())),
            _ => None,
        });
        let (t, truth) = first.expect("the jam is found");
        assert_eq!(truth.as_deref(), Some("F1"));
        let critical = |id: &str| {
            whole.iter().find_map(|e| match e {
                Event::Status { node, to: Status::Critical, t, .. } if node == id => Some(*t),
                _ => None,
            })
        };
        let next = SimTime(t.0 + 1000);
        assert_eq!((critical("ahu-01"), critical("plant-01"), critical("ahu-02")), (Some(next), Some(next), None));
        assert!(whole.iter().any(|e| matches!(e, Event::Finding { node, finding, .. }
            if node == "BEL-VNT-003" && finding.kind == FaultKind::GearJam && finding.change == Change::Opened)));
    }

    #[test]
    fn a_streaming_recorder_keeps_only_the_last_epoch() {
        let (f, s) = (testkit::datacenter(), testkit::scenario(120, ""));
        let mut run = Run::new(&s, Arc::new(f), false);
        run.recorder.stream_only();
        let mut total = 0;
        while run.step().is_some() {
            assert_eq!(run.recorder.log(), run.recorder.last_epoch());
            total += run.recorder.last_epoch().len();
        }
        // The AHUs start up: there were phase changes to stream.
        assert!(total > 0);
        assert!(!run.recorder.keeps_log());
    }

    #[test]
    fn without_a_plant_the_ahus_run_on_their_templates_conditions() {
        // The data centre without its plant.
        let text = testkit::DATACENTER
            .replace("[plant]\nid = \"plant-01\"\ntemplate = \"plant\"\nposition = [600.0, 660.0]\n", "")
            .replace("description = \"Chilled- and hot-water plant\"\n", "")
            .replace("parent = \"plant-01\"\n", "");
        let f = testkit::facility_from(&text);
        assert!(f.plant.is_none());
        let s = testkit::scenario(30, "");
        let mut run = Run::new(&s, Arc::new(f), false);
        while let Some((out, _)) = run.step() {
            assert!(out.plant_status.is_none());
        }
    }
}
