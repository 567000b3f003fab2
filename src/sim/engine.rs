//! The actor engine: one actix actor per actuator, per AHU and per plant, and a supervisor that
//! owns the clock and the event log.
//!
//! ```text
//!  clock loop ──RunEpoch──▶ Supervisor ──PlantEpoch──▶ PlantActor ──AhuEpoch──▶ AhuActor ───Step────▶ ActuatorActor
//!                          (recorder,   ◀─PlantOut──              ◀─AhuDone──            ◀─ChildDone─
//!                           event log)
//! ```
//!
//! Each level answers its parent with its status and a summary; a parent waits for all its
//! children (reports are filed by child slot, never by arrival order) before it finishes its
//! own epoch. That, and the core's [`Recorder`] ordering, make the event log independent of how
//! actors are spread over threads.

use crate::store::{AhuBlock, Block};
use actix::prelude::*;
use futures_util::StreamExt;
use std::sync::Arc;
use twinfault_core::actuator::Sample;
use twinfault_core::ahu::{Ahu, AhuSummary, ChildReport, Plant, PlantConditions};
use twinfault_core::config::Facility;
use twinfault_core::detect::{Diagnosis, FindingEvent};
use twinfault_core::event::Event;
use twinfault_core::fault::Injection;
use twinfault_core::plain::{EpochOutputs, Recorder, Setup, record_epoch};
use twinfault_core::twin::{ActuatorTwin, EpochReport, Grid, HISTORY_BLOCK_MS, HistoryBlock};
use twinfault_core::types::{Phase, SimTime, Status};

/// Advance an actuator twin by one epoch.
#[derive(Message, Clone, Copy)]
#[rtype(result = "EpochReport")]
pub struct Advance {
    pub grid: Grid,
    pub first_sample: u64,
    pub command_pct: f64,
    pub phase: Phase,
}

/// A sample pushed to an ingesting twin. Replies with the finding changes it caused.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct IngestSample(pub Sample);

/// Inject a fault into a simulating twin; replies whether the twin simulates.
#[derive(Message, Clone)]
#[rtype(result = "bool")]
pub struct Inject(pub Injection);

/// End the faults injected into a simulating twin; replies their ids (`None`: fed by telemetry).
#[derive(Message, Clone, Copy)]
#[rtype(result = "Option<Vec<String>>")]
pub struct ClearInjections(pub SimTime);

/// Resolve an open finding on an operator's word; the `resolved` event rides on the next epoch.
#[derive(Message, Clone)]
#[rtype(result = "bool")]
pub struct ForceResolve {
    pub t: SimTime,
    pub kind: twinfault_core::FaultKind,
    /// For AHU findings about a child: that child.
    pub device: Option<String>,
}

impl Handler<ForceResolve> for ActuatorActor {
    type Result = bool;
    fn handle(&mut self, m: ForceResolve, _: &mut Context<Self>) -> bool {
        match self.twin.force_resolve(m.t, m.kind) {
            Some(e) => {
                self.pending.findings.push(e);
                true
            }
            None => false,
        }
    }
}

/// Every rule's last evaluation against its threshold, as of `.0` (answered between epochs).
#[derive(Message, Clone, Copy)]
#[rtype(result = "Diagnosis")]
pub struct Diagnose(pub SimTime);

impl Handler<Diagnose> for ActuatorActor {
    type Result = MessageResult<Diagnose>;
    fn handle(&mut self, m: Diagnose, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.twin.diagnosis(m.0))
    }
}

impl Handler<Diagnose> for AhuActor {
    type Result = MessageResult<Diagnose>;
    fn handle(&mut self, m: Diagnose, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ahu.diagnosis(m.0))
    }
}

/// Why a node has no diagnosis.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoDiagnosis {
    #[error("\"{0}\" has no running twin")]
    NotRunning(String),
    #[error("\"{0}\" is the plant: it has no rules of its own; diagnose its AHUs or devices")]
    Plant(String),
    #[error("no node \"{0}\"")]
    Unknown(String),
    #[error("the twin of {0}")]
    NoAnswer(String),
}

/// A node's rules as last evaluated, asked of its actor at `now` (a server's twins, or a finished
/// run's still running for `agent-eval`): per rule what it measures, the value against its
/// threshold, whether the phase gates it, and where its finding stands.
pub async fn diagnose(
    facility: &Facility,
    live: &crate::live::Live,
    actuators: &[Addr<ActuatorActor>],
    ahus: &[Addr<AhuActor>],
    id: &str,
    now: SimTime,
) -> Result<Diagnosis, NoDiagnosis> {
    use twinfault_core::config::NodeRef;
    let answer = match facility.node(id) {
        Some(NodeRef::Actuator(i)) => match actuators.get(i) {
            Some(a) => a.send(Diagnose(now)).await,
            None => return Err(NoDiagnosis::NotRunning(id.to_string())),
        },
        Some(NodeRef::Ahu(h)) => ahus[h].send(Diagnose(now)).await,
        Some(NodeRef::Plant) => return Err(NoDiagnosis::Plant(id.to_string())),
        None => match live.extra(id).and_then(|(i, _)| actuators.get(i)) {
            Some(a) => a.send(Diagnose(now)).await,
            None => return Err(NoDiagnosis::Unknown(id.to_string())),
        },
    };
    answer.map_err(|e| NoDiagnosis::NoAnswer(format!("\"{id}\" did not answer: {e}")))
}

/// Take the open history block at the end of a run.
#[derive(Message)]
#[rtype(result = "Option<HistoryBlock>")]
pub struct Flush;

pub struct ActuatorActor {
    twin: ActuatorTwin,
    /// Findings and closed history of ingested samples, delivered with the next epoch report.
    pending: EpochReport,
    /// Blocks closed by ingested samples beyond the one the report carries, oldest first.
    pending_blocks: std::collections::VecDeque<HistoryBlock>,
    /// The parent AHU and this child's slot in it, for `Step`.
    parent: Option<(Addr<AhuActor>, usize)>,
}

impl ActuatorActor {
    pub fn new(twin: ActuatorTwin) -> ActuatorActor {
        ActuatorActor { twin, pending: EpochReport::default(), pending_blocks: Default::default(), parent: None }
    }

    fn advance(&mut self, m: &Advance) -> EpochReport {
        let mut out = std::mem::take(&mut self.pending);
        self.twin.advance(&m.grid, m.first_sample, m.command_pct, m.phase, &mut out);
        if out.history.is_none() {
            out.history = self.pending_blocks.pop_front();
        }
        out
    }
}

/// Advance one epoch and report to the parent AHU with [`ChildDone`] (fire-and-forget both ways:
/// no reply channel per message, which is most of a request's cost).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Step(pub Advance);

/// A child's epoch report, sent to its AHU.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChildDone {
    pub slot: usize,
    pub report: EpochReport,
}

/// Tell a child which AHU it reports to, and its slot there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetParent(pub Addr<AhuActor>, pub usize);

impl Handler<SetParent> for ActuatorActor {
    type Result = ();
    fn handle(&mut self, m: SetParent, _: &mut Context<Self>) {
        self.parent = Some((m.0, m.1));
    }
}

impl Handler<Step> for ActuatorActor {
    type Result = ();
    fn handle(&mut self, m: Step, _: &mut Context<Self>) {
        let report = self.advance(&m.0);
        if let Some((parent, slot)) = &self.parent {
            parent.do_send(ChildDone { slot: *slot, report });
        }
    }
}

impl Actor for ActuatorActor {
    type Context = Context<Self>;
}

impl Handler<Advance> for ActuatorActor {
    type Result = MessageResult<Advance>;
    fn handle(&mut self, m: Advance, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.advance(&m))
    }
}

impl Handler<IngestSample> for ActuatorActor {
    type Result = ();
    fn handle(&mut self, m: IngestSample, _: &mut Context<Self>) {
        if let Some(b) = self.twin.ingest(&m.0, &mut self.pending.findings) {
            self.pending_blocks.push_back(b);
        }
    }
}

impl Handler<Inject> for ActuatorActor {
    type Result = bool;
    fn handle(&mut self, m: Inject, _: &mut Context<Self>) -> bool {
        self.twin.inject(m.0)
    }
}

impl Handler<ClearInjections> for ActuatorActor {
    type Result = Option<Vec<String>>;
    fn handle(&mut self, m: ClearInjections, _: &mut Context<Self>) -> Option<Vec<String>> {
        self.twin.clear_injections(m.0)
    }
}

impl Handler<Flush> for ActuatorActor {
    type Result = Option<HistoryBlock>;
    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Option<HistoryBlock> {
        self.twin.take_open_block()
    }
}

/// Run one epoch of an AHU and its children; the AHU reports to the plant with [`AhuDone`]
/// (fire-and-forget both ways, as its children report to it).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct AhuEpoch {
    pub epoch: u64,
    pub grid: Grid,
    pub plant: Option<PlantConditions>,
}

/// What an AHU reports to its parent after an epoch.
pub struct AhuOut {
    pub phase: Phase,
    pub summary: AhuSummary,
    pub findings: Vec<FindingEvent>,
    /// The children's reports, in child order.
    pub children: Vec<EpochReport>,
}

/// An AHU's epoch report, sent to the plant.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AhuDone {
    pub slot: usize,
    pub out: AhuOut,
}

/// Tell an AHU which plant it reports to, and its slot there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPlant(pub Addr<PlantActor>, pub usize);

impl Handler<SetPlant> for AhuActor {
    type Result = ();
    fn handle(&mut self, m: SetPlant, _: &mut Context<Self>) {
        self.parent = Some((m.0, m.1));
    }
}

/// Reports of an epoch filed by the sender's slot (never by arrival order), and how many are
/// still missing: an AHU's children's, the plant's AHUs'.
struct Slots<T> {
    items: Vec<Option<T>>,
    missing: usize,
}

impl<T> Slots<T> {
    fn new(n: usize) -> Slots<T> {
        Slots { items: (0..n).map(|_| None).collect(), missing: n }
    }

    /// Files one report; true once every slot has one.
    fn file(&mut self, slot: usize, item: T) -> bool {
        if self.items[slot].replace(item).is_none() {
            self.missing -= 1;
        }
        self.missing == 0
    }

    /// The reports in slot order (all filed).
    fn into_vec(self, what: &str) -> Vec<T> {
        self.items.into_iter().map(|r| r.unwrap_or_else(|| panic!("{what}: a slot without a report"))).collect()
    }
}

pub struct AhuActor {
    ahu: Ahu,
    children: Vec<Addr<ActuatorActor>>,
    /// The plant and this AHU's slot there, for `AhuEpoch`.
    parent: Option<(Addr<PlantActor>, usize)>,
    /// Operator resolutions, delivered with the next epoch's findings.
    pending: Vec<FindingEvent>,
    /// The epoch in progress and its children's reports.
    open: Option<OpenEpoch>,
}

struct OpenEpoch {
    phase: Phase,
    t1: SimTime,
    dt_s: f64,
    reports: Slots<EpochReport>,
}

impl AhuActor {
    fn finish(&mut self) {
        let Some(open) = self.open.take() else { return };
        let children = open.reports.into_vec("an AHU's children");
        let reports: Vec<ChildReport> = children.iter().map(|c| c.report).collect();
        let mut findings = std::mem::take(&mut self.pending);
        let summary = self.ahu.end_epoch(open.t1, open.dt_s, &reports, &mut findings);
        if let Some((plant, slot)) = &self.parent {
            plant.do_send(AhuDone { slot: *slot, out: AhuOut { phase: open.phase, summary, findings, children } });
        }
    }
}

impl Actor for AhuActor {
    type Context = Context<Self>;
}

impl Handler<AhuEpoch> for AhuActor {
    type Result = ();
    fn handle(&mut self, m: AhuEpoch, _: &mut Context<Self>) {
        let (t0, t1) = (m.grid.epoch_start(m.epoch), m.grid.epoch_start(m.epoch + 1));
        let dt_s = (t1.0 - t0.0) as f64 / 1000.0;
        let (phase, commands) = self.ahu.begin_epoch(t0, dt_s, m.plant);
        let first_sample = m.epoch * m.grid.samples_per_epoch;
        for (child, &command_pct) in self.children.iter().zip(commands) {
            child.do_send(Step(Advance { grid: m.grid, first_sample, command_pct, phase }));
        }
        let n = self.children.len();
        self.open = Some(OpenEpoch { phase, t1, dt_s, reports: Slots::new(n) });
        if n == 0 {
            self.finish();
        }
    }
}

impl Handler<ForceResolve> for AhuActor {
    type Result = bool;
    fn handle(&mut self, m: ForceResolve, _: &mut Context<Self>) -> bool {
        match self.ahu.force_resolve(m.t, m.kind, m.device.as_deref()) {
            Some(e) => {
                self.pending.push(e);
                true
            }
            None => false,
        }
    }
}

impl Handler<ChildDone> for AhuActor {
    type Result = ();
    fn handle(&mut self, m: ChildDone, _: &mut Context<Self>) {
        if self.open.as_mut().is_some_and(|open| open.reports.file(m.slot, m.report)) {
            self.finish();
        }
    }
}

/// Run one epoch of the plant and everything under it.
#[derive(Message, Clone, Copy)]
#[rtype(result = "PlantOut")]
pub struct PlantEpoch {
    pub epoch: u64,
    pub grid: Grid,
}

pub struct PlantOut {
    pub ahus: Vec<AhuOut>,
    pub status: Option<Status>,
}

/// The plant (or, in a facility without one, the root that stands in for it).
pub struct PlantActor {
    plant: Option<Plant>,
    conditions: Option<PlantConditions>,
    ahus: Vec<Addr<AhuActor>>,
    /// The epoch in progress: the AHUs' reports, and where the result goes.
    open: Option<OpenPlantEpoch>,
}

struct OpenPlantEpoch {
    outs: Slots<AhuOut>,
    reply: tokio::sync::oneshot::Sender<PlantOut>,
}

impl PlantActor {
    fn finish(&mut self) {
        let Some(open) = self.open.take() else { return };
        let ahus = open.outs.into_vec("the plant's AHUs");
        let summaries: Vec<AhuSummary> = ahus.iter().map(|a| a.summary).collect();
        let status = self.plant.as_mut().map(|p| {
            self.conditions = Some(p.update(&summaries));
            summaries.iter().map(|s| s.status).max().unwrap_or(Status::Healthy)
        });
        // The supervisor may have gone (the run was dropped): nothing to deliver then.
        let _ = open.reply.send(PlantOut { ahus, status });
    }
}

impl Actor for PlantActor {
    type Context = Context<Self>;
}

impl Handler<PlantEpoch> for PlantActor {
    type Result = ResponseFuture<PlantOut>;
    fn handle(&mut self, m: PlantEpoch, _: &mut Context<Self>) -> Self::Result {
        // One message to each AHU and one back, as an AHU does with its children.
        for a in &self.ahus {
            a.do_send(AhuEpoch { epoch: m.epoch, grid: m.grid, plant: self.conditions });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let n = self.ahus.len();
        self.open = Some(OpenPlantEpoch { outs: Slots::new(n), reply: tx });
        if n == 0 {
            self.finish();
        }
        Box::pin(async move { rx.await.expect("the plant finishes every epoch it starts") })
    }
}

impl Handler<AhuDone> for PlantActor {
    type Result = ();
    fn handle(&mut self, m: AhuDone, _: &mut Context<Self>) {
        if self.open.as_mut().is_some_and(|open| open.outs.file(m.slot, m.out)) {
            self.finish();
        }
    }
}

/// Where closed history blocks go (the store, or nowhere).
pub type HistorySink = Box<dyn FnMut(&str, Block)>;

/// Run one epoch; replies with the events it added to the log.
#[derive(Message)]
#[rtype(result = "Vec<Event>")]
pub struct RunEpoch(pub u64);

/// Why a live change to a twin did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveError {
    #[error("unknown actuator \"{0}\"")]
    UnknownNode(String),
    #[error("\"{0}\" is fed by real telemetry; faults are injected into (and cleared from) simulated nodes only")]
    FedByTelemetry(String),
    #[error("node \"{0}\" did not answer: {1}")]
    NoAnswer(String, String),
}

/// Inject a fault while the run goes on.
#[derive(Message)]
#[rtype(result = "Result<(), LiveError>")]
pub struct LiveInject(pub Injection);

/// Take the event log at the end of a run (flushes open history blocks first).
#[derive(Message)]
#[rtype(result = "Vec<Event>")]
pub struct Finish;

/// The supervisor: owns the recorder (event log) and the root of the tree; the clock drives it.
pub struct Supervisor {
    facility: Arc<Facility>,
    grid: Grid,
    root: Addr<PlantActor>,
    actuators: Vec<Addr<ActuatorActor>>,
    recorder: Option<Recorder>,
    history: HistorySink,
    /// Open history block per AHU.
    ahu_blocks: Vec<Option<AhuBlock>>,
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<RunEpoch> for Supervisor {
    type Result = ResponseActFuture<Self, Vec<Event>>;
    fn handle(&mut self, m: RunEpoch, _: &mut Context<Self>) -> Self::Result {
        let epoch = m.0;
        let grid = self.grid;
        let req = self.root.send(PlantEpoch { epoch, grid });
        Box::pin(req.into_actor(self).map(move |reply, act, _| {
            let out = reply.expect("the plant actor lives as long as the run");
            let n = act.facility.actuators.len();
            let mut actuators: Vec<EpochReport> = (0..n).map(|_| EpochReport::default()).collect();
            let mut phases = Vec::with_capacity(out.ahus.len());
            let mut ahu_findings = Vec::with_capacity(out.ahus.len());
            let mut ahu_summaries = Vec::with_capacity(out.ahus.len());
            for (h, a) in out.ahus.into_iter().enumerate() {
                for (slot, r) in a.children.into_iter().enumerate() {
                    actuators[act.facility.ahus[h].children[slot]] = r;
                }
                phases.push(a.phase);
                ahu_findings.push(a.findings);
                ahu_summaries.push(a.summary);
            }
            let mut outputs = EpochOutputs { phases, actuators, ahu_findings, ahu_summaries, plant_status: out.status };
            let rec = act.recorder.as_mut().expect("not finished");
            let before = if rec.keeps_log() { rec.log().len() } else { 0 };
            let blocks = record_epoch(rec, grid.epoch_start(epoch), grid.epoch_start(epoch + 1), &mut outputs);
            let new_events = rec.log()[before..].to_vec();
            for (i, b) in blocks {
                (act.history)(&act.facility.actuators[i].id, Block::Actuator(b));
            }
            // AHU history: one point per epoch, in blocks like the actuators'.
            let t1 = grid.epoch_start(epoch + 1);
            let start = SimTime(t1.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS);
            for (h, summary) in outputs.ahu_summaries.iter().enumerate() {
                let open = &mut act.ahu_blocks[h];
                if let Some(closed) = open.take_if(|b| b.start != start) {
                    (act.history)(&act.facility.ahus[h].id, Block::Ahu(closed));
                }
                open.get_or_insert_with(|| AhuBlock { start, points: Vec::new() }).points.push((t1, *summary));
            }
            new_events
        }))
    }
}

impl Handler<LiveInject> for Supervisor {
    type Result = ResponseActFuture<Self, Result<(), LiveError>>;
    fn handle(&mut self, m: LiveInject, _: &mut Context<Self>) -> Self::Result {
        let Some(i) = self.facility.actuators.iter().position(|a| a.id == m.0.node) else {
            return Box::pin(actix::fut::ready(Err(LiveError::UnknownNode(m.0.node))));
        };
        let inj = m.0;
        let req = self.actuators[i].send(Inject(inj.clone()));
        Box::pin(req.into_actor(self).map(move |r, act, _| match r {
            Ok(true) => {
                if let Some(rec) = act.recorder.as_mut() {
                    rec.add_injection(inj);
                }
                Ok(())
            }
            Ok(false) => Err(LiveError::FedByTelemetry(inj.node)),
            Err(e) => Err(LiveError::NoAnswer(inj.node, e.to_string())),
        }))
    }
}

/// End the live-injected faults of a simulated actuator now; replies their ids.
#[derive(Message)]
#[rtype(result = "Result<Vec<String>, LiveError>")]
pub struct LiveClear {
    pub node: String,
    pub t: SimTime,
}

impl Handler<LiveClear> for Supervisor {
    type Result = ResponseActFuture<Self, Result<Vec<String>, LiveError>>;
    fn handle(&mut self, m: LiveClear, _: &mut Context<Self>) -> Self::Result {
        let Some(i) = self.facility.actuators.iter().position(|a| a.id == m.node) else {
            return Box::pin(actix::fut::ready(Err(LiveError::UnknownNode(crate::live::clip(&m.node)))));
        };
        let (node, t) = (m.node, m.t);
        let req = self.actuators[i].send(ClearInjections(t));
        Box::pin(req.into_actor(self).map(move |r, act, _| match r {
            Ok(Some(ids)) => {
                if let Some(rec) = act.recorder.as_mut() {
                    rec.end_injections(&ids, t);
                }
                Ok(ids)
            }
            Ok(None) => Err(LiveError::FedByTelemetry(node)),
            Err(e) => Err(LiveError::NoAnswer(node, e.to_string())),
        }))
    }
}

/// Flush requests a finishing run keeps in flight.
const FLUSHES_IN_FLIGHT: usize = 4096;

impl Handler<Finish> for Supervisor {
    type Result = ResponseActFuture<Self, Vec<Event>>;
    fn handle(&mut self, _: Finish, _: &mut Context<Self>) -> Self::Result {
        // A few thousand requests in flight, in order: joining a request per twin at once held a
        // million of them (and their wake-ups) at the end of a million-twin run.
        let flushes = futures_util::stream::iter(self.actuators.clone())
            .map(|a| a.send(Flush))
            .buffered(FLUSHES_IN_FLIGHT)
            .collect::<Vec<_>>();
        Box::pin(flushes.into_actor(self).map(|blocks, act, _| {
            for (i, b) in blocks.into_iter().enumerate() {
                if let Ok(Some(b)) = b {
                    (act.history)(&act.facility.actuators[i].id, Block::Actuator(b));
                }
            }
            for h in 0..act.ahu_blocks.len() {
                if let Some(b) = act.ahu_blocks[h].take() {
                    (act.history)(&act.facility.ahus[h].id, Block::Ahu(b));
                }
            }
            act.recorder.take().map(Recorder::into_log).unwrap_or_default()
        }))
    }
}

/// The started actor tree of one run.
pub struct Engine {
    pub supervisor: Addr<Supervisor>,
    pub actuators: Vec<Addr<ActuatorActor>>,
    pub ahus: Vec<Addr<AhuActor>>,
    pub grid: Grid,
    pub epochs: u64,
    /// Arbiters (threads) the actors run on; stopped when the engine is dropped.
    arbiters: Vec<Arbiter>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

impl Engine {
    /// Starts the actors of `setup` over `threads` worker threads (1 = all on the current
    /// thread). Must be called inside a running actix system.
    pub fn start(
        setup: Setup,
        facility: Arc<Facility>,
        injections: Vec<Injection>,
        duration: SimTime,
        threads: usize,
        history: HistorySink,
    ) -> Engine {
        let recorder = Recorder::new(Arc::clone(&facility), injections);
        Self::start_with(setup, facility, recorder, duration, threads, history)
    }

    /// As [`Engine::start`], with a recorder prepared by the caller (a server streams its log).
    pub fn start_with(
        setup: Setup,
        facility: Arc<Facility>,
        recorder: Recorder,
        duration: SimTime,
        threads: usize,
        history: HistorySink,
    ) -> Engine {
        let arbiters: Vec<Arbiter> =
            if threads > 1 { (0..threads).map(|_| Arbiter::new()).collect() } else { Vec::new() };
        let handle = |k: usize| {
            if arbiters.is_empty() { Arbiter::current() } else { arbiters[k % arbiters.len()].handle() }
        };
        let Setup { actuators, ahus, plant, grid } = setup;
        // An AHU's children live on its thread: the epoch's `Step` and `ChildDone` then never
        // cross threads (round-robin placement made half of them do so, and two threads ran
        // 1.3× one at 100,000 twins). A device under no AHU is placed by its own index.
        let mut home: Vec<usize> = (0..actuators.len()).collect();
        for (h, a) in facility.ahus.iter().enumerate() {
            for &c in &a.children {
                home[c] = h;
            }
        }
        // Taken from the back, the set-up's vector shrinking as its twins move into their actors:
        // consumed whole, it held a copy of every twin until the last actor started (0.7 GiB of
        // peak memory at a million).
        let mut twins = actuators;
        let mut actuator_addrs: Vec<Addr<ActuatorActor>> = Vec::with_capacity(twins.len());
        while let Some(twin) = twins.pop() {
            let i = twins.len();
            actuator_addrs.push(ActuatorActor::start_in_arbiter(&handle(home[i]), move |_| ActuatorActor::new(twin)));
            if twins.len() < twins.capacity() / 2 {
                twins.shrink_to_fit();
            }
        }
        actuator_addrs.reverse();
        let ahu_addrs: Vec<Addr<AhuActor>> = ahus
            .into_iter()
            .enumerate()
            .map(|(h, ahu)| {
                let children: Vec<Addr<ActuatorActor>> =
                    facility.ahus[h].children.iter().map(|&i| actuator_addrs[i].clone()).collect();
                let kids = children.clone();
                let addr = AhuActor::start_in_arbiter(&handle(h), move |_| AhuActor {
                    ahu,
                    children: kids,
                    parent: None,
                    open: None,
                    pending: Vec::new(),
                });
                // Queued before any epoch starts, so every child knows its parent before its first `Step`.
                for (slot, c) in children.iter().enumerate() {
                    c.do_send(SetParent(addr.clone(), slot));
                }
                addr
            })
            .collect();
        let conditions = plant.as_ref().map(Plant::conditions);
        let root = PlantActor { plant, conditions, ahus: ahu_addrs.clone(), open: None }.start();
        // Queued before any epoch is asked of the plant, so before its first `AhuEpoch`.
        for (slot, a) in ahu_addrs.iter().enumerate() {
            a.do_send(SetPlant(root.clone(), slot));
        }
        let ahu_blocks = vec![None; facility.ahus.len()];
        let supervisor = Supervisor {
            facility,
            grid,
            root,
            actuators: actuator_addrs.clone(),
            recorder: Some(recorder),
            history,
            ahu_blocks,
        }
        .start();
        Engine {
            supervisor,
            actuators: actuator_addrs,
            ahus: ahu_addrs,
            grid,
            epochs: grid.epochs_in(duration),
            arbiters,
        }
    }
}
