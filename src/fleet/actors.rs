//! Fleets of assets as actors: one actor per member (its causal health monitor), rolling up to
//! a fleet actor as actuators roll up to their AHU: the fleet's status is the worst of its
//! members'. `twinfault replay FILE --facility twins/turbofan_fleet.toml --map cmapss` streams a
//! C-MAPSS file through them.

use crate::fleet::cmapss::{EngineOutcome, Unit, read_rul, read_units, test_rul};
use actix::prelude::*;
use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use twinfault_core::asset::{CycleVerdict, Fleet, FleetLog, MemberPhase, Monitor};
use twinfault_core::detect::FindingEvent;
use twinfault_core::event::Event;
use twinfault_core::ledger::FaultLedger;
use twinfault_core::types::{FaultKind, Severity, SimTime, Status};

/// A member's alarm opened: its finding, for the fleet node.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct MemberAlarm {
    pub member: usize,
    pub finding: FindingEvent,
}

/// In a replay a cycle carries no time of day: the event log's `t` is the cycle number.
pub fn cycle_as_time(cycle: u32) -> SimTime {
    SimTime(u64::from(cycle))
}

pub struct MemberActor {
    index: usize,
    id: String,
    fleet_def: Arc<Fleet>,
    monitor: Monitor,
    fleet: Addr<FleetActor>,
}

impl MemberActor {
    /// The actor of member `index` (0-based) with id `id`, reporting to `fleet`.
    pub fn new(index: usize, id: String, fleet_def: Arc<Fleet>, fleet: Addr<FleetActor>) -> MemberActor {
        let monitor = Monitor::new(Arc::clone(&fleet_def.model));
        MemberActor { index, id, fleet_def, monitor, fleet }
    }
}

impl Actor for MemberActor {
    type Context = Context<Self>;
}

/// One cycle of a member's data, at time `t` (the event log's clock).
#[derive(Message)]
#[rtype(result = "CycleVerdict")]
pub struct CycleIn {
    pub cycle: u32,
    pub t: SimTime,
    pub settings: Vec<f64>,
    pub sensors: Vec<f64>,
}

impl Handler<CycleIn> for MemberActor {
    type Result = MessageResult<CycleIn>;
    fn handle(&mut self, m: CycleIn, _: &mut Context<Self>) -> Self::Result {
        let v = self.monitor.observe(m.cycle, &m.settings, &m.sensors);
        if v.opened {
            let finding = self.fleet_def.alarm_finding(&self.id, &v, m.t);
            self.fleet.do_send(MemberAlarm { member: self.index, finding });
        }
        MessageResult(v)
    }
}

/// The fleet node: its members' statuses, rolled up from the alarms as they arrive (its event
/// log, [`FleetLog`]), and the alarms themselves.
pub struct FleetActor {
    log: FleetLog,
    /// The log's findings as faults (one id scheme with the facility's server).
    ledger: FaultLedger,
    alarms: Vec<(usize, FindingEvent)>,
    /// Print each alarm as it arrives, with the fleet's status (in a replay, where `t` is the cycle).
    live: bool,
}

impl FleetActor {
    /// The fleet node of `fleet`, all members healthy; `live` prints alarms as they come.
    pub fn new(fleet: &Fleet, live: bool) -> FleetActor {
        FleetActor { log: FleetLog::of_fleet(fleet), ledger: FaultLedger::default(), alarms: Vec::new(), live }
    }
}

impl Actor for FleetActor {
    type Context = Context<Self>;
}

impl Handler<MemberAlarm> for FleetActor {
    type Result = ();
    fn handle(&mut self, m: MemberAlarm, _: &mut Context<Self>) {
        for e in self.log.apply(m.member, m.finding.clone()) {
            self.ledger.apply_event(e);
        }
        if self.live {
            let st = self.log.statuses();
            let alarmed = st.iter().filter(|s| **s != Status::Healthy).count();
            println!(
                "  cycle {:>3}  {}  {} ({}): {}   [fleet {}: {} {alarmed} of {} engines]",
                m.finding.t.0,
                self.log.members().get(m.member).map_or("?", String::as_str),
                m.finding.kind,
                m.finding.severity.status().as_str(),
                m.finding.summary,
                self.log.id(),
                self.log.status().as_str(),
                st.len()
            );
        }
        self.alarms.push((m.member, m.finding));
    }
}

/// The alarms (member, finding) so far, in the order they arrived.
#[derive(Message)]
#[rtype(result = "Vec<(usize, FindingEvent)>")]
pub struct Alarms;

impl Handler<Alarms> for FleetActor {
    type Result = MessageResult<Alarms>;
    fn handle(&mut self, _: Alarms, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.alarms.clone())
    }
}

/// The members' statuses and the fleet's faults now.
#[derive(Message)]
#[rtype(result = "(Vec<Status>, FaultLedger)")]
pub struct View;

impl Handler<View> for FleetActor {
    type Result = MessageResult<View>;
    fn handle(&mut self, _: View, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.log.statuses().to_vec(), self.ledger.clone()))
    }
}

/// An alarm in a replay's report.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmRow {
    /// The fault's id ([`twinfault_core::ledger::fault_id`]).
    pub id: String,
    pub node: String,
    pub cycle: u32,
    pub kind: FaultKind,
    pub severity: Severity,
    /// The detector's value (remaining cycles or health index) and its threshold.
    pub value: f32,
    pub threshold: Option<f32>,
    pub summary: String,
    pub action: String,
}

/// One member after a replay.
#[derive(Debug, Clone, Serialize)]
pub struct MemberResult {
    pub node: String,
    pub unit: usize,
    pub cycles: usize,
    pub status: Status,
    /// Cycles gated (unknown operating condition or outlier).
    pub gated: usize,
    pub last_rul_estimate: f64,
    pub last_health_index: f64,
    pub alarm_cycle: Option<u32>,
    /// True remaining life at the end of the data and at the alarm (when a RUL file is known).
    pub true_rul_at_end: Option<f64>,
    pub true_rul_at_alarm: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReplay {
    pub file: String,
    pub fleet: String,
    pub fleet_status: Status,
    pub rows: usize,
    pub members: Vec<MemberResult>,
    /// Alarms in (cycle, member) order.
    pub alarms: Vec<AlarmRow>,
    /// With a RUL file: members alarmed inside their last `horizon` cycles (and not before),
    /// alarmed early, and missed, of those whose last `horizon` cycles are in the data.
    pub scored: Option<FleetScore>,
    /// The event log: each alarm a finding on its member, the members' and the fleet's status
    /// changes; `t` is the cycle. The same at any thread count.
    #[serde(skip)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetScore {
    pub rul_file: String,
    pub with_window: usize,
    pub caught: usize,
    pub early: usize,
    pub missed: usize,
}

/// How a replay runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayPace {
    /// Cycles per second per member (all members start together); `None`: as fast as possible.
    pub cycles_per_s: Option<f64>,
    /// Print alarms as the fleet receives them.
    pub live: bool,
}

/// Streams every member's cycles into its own actor (members in parallel over `threads`
/// arbiters, each member's cycles in order); `rul` scores the alarms when given.
pub fn replay(file: &Path, fleet: &Fleet, rul: Option<&Path>, threads: usize, pace: ReplayPace) -> Result<FleetReplay> {
    let units = read_units(file, &fleet.template)?;
    let mut ids = Vec::with_capacity(units.len());
    for u in &units {
        match fleet.file.member(u.unit) {
            Some(id) => ids.push(id),
            None => bail!(
                "{}: unit {} is not a member of fleet \"{}\" ({} members: {} … {}); a fleet file with more members (and a model trained on that subset) takes it",
                file.display(),
                u.unit,
                fleet.file.id,
                fleet.file.members,
                fleet.file.member(1).unwrap_or_default(),
                fleet.file.member(fleet.file.members).unwrap_or_default()
            ),
        }
    }
    let fleet = Arc::new(fleet.clone());
    let units = Arc::new(units);
    let (verdicts, statuses, log) = actix::System::new().block_on({
        let (fleet, units, ids) = (Arc::clone(&fleet), Arc::clone(&units), ids.clone());
        async move {
            let arbiters: Vec<Arbiter> = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
            let fleet_addr = FleetActor::new(&fleet, pace.live).start();
            let t0 = actix::clock::Instant::now();
            let mut runs = Vec::new();
            for (k, u) in units.iter().enumerate() {
                let actor = MemberActor::new(u.unit - 1, ids[k].clone(), Arc::clone(&fleet), fleet_addr.clone());
                let addr = MemberActor::start_in_arbiter(&arbiters[k % arbiters.len()].handle(), move |_| actor);
                let units = Arc::clone(&units);
                runs.push(async move {
                    let u: &Unit = &units[k];
                    let mut out = Vec::with_capacity(u.cycles.len());
                    for i in 0..u.cycles.len() {
                        if let Some(rate) = pace.cycles_per_s {
                            actix::clock::sleep_until(t0 + std::time::Duration::from_secs_f64(i as f64 / rate)).await;
                        }
                        let m = CycleIn {
                            cycle: u.cycles[i],
                            t: cycle_as_time(u.cycles[i]),
                            settings: u.settings[i].clone(),
                            sensors: u.sensors[i].clone(),
                        };
                        out.push(addr.send(m).await.expect("member actors live through the replay"));
                    }
                    out
                });
            }
            let verdicts: Vec<Vec<CycleVerdict>> = futures_util::future::join_all(runs).await;
            let alarms = fleet_addr.send(Alarms).await.expect("the fleet actor lives");
            for a in arbiters {
                a.stop();
            }
            // Alarms arrive in whichever order the arbiters ran; the log is made in time order.
            let mut log = FleetLog::of_fleet(&fleet);
            log.apply_all(alarms);
            (verdicts, log.statuses().to_vec(), log)
        }
    });
    let truth = match rul {
        Some(p) => Some(test_rul(&units, &read_rul(p)?).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let horizon = fleet.template.alarm.horizon_cycles;
    let mut members = Vec::new();
    let (mut with_window, mut caught, mut early, mut missed) = (0, 0, 0, 0);
    for (k, (u, v)) in units.iter().zip(&verdicts).enumerate() {
        let alarm_at = v.iter().position(|c| c.opened);
        let last = v.iter().rev().find(|c| matches!(c.phase, MemberPhase::Monitoring | MemberPhase::Baseline));
        let t = truth.as_ref().map(|t| &t[k]);
        let (end, at_alarm) = (t.and_then(|t| t.last().copied()), t.zip(alarm_at).map(|(t, i)| t[i]));
        if let Some(end) = end {
            with_window += usize::from(end <= horizon);
            match EngineOutcome::of(end, at_alarm, horizon) {
                EngineOutcome::Early => early += 1,
                EngineOutcome::Caught => caught += 1,
                EngineOutcome::Missed => missed += 1,
                EngineOutcome::Quiet => {}
            }
        }
        members.push(MemberResult {
            node: ids[k].clone(),
            unit: u.unit,
            cycles: u.cycles.len(),
            status: statuses[u.unit - 1],
            gated: v.iter().filter(|c| matches!(c.phase, MemberPhase::UnknownRegime | MemberPhase::Outlier)).count(),
            last_rul_estimate: last.map_or(f64::NAN, |c| c.rul),
            last_health_index: last.map_or(f64::NAN, |c| c.hi),
            alarm_cycle: alarm_at.map(|i| v[i].cycle),
            true_rul_at_end: end,
            true_rul_at_alarm: at_alarm,
        });
    }
    Ok(FleetReplay {
        file: file.display().to_string(),
        fleet: fleet.file.id.clone(),
        fleet_status: statuses.iter().copied().max().unwrap_or(Status::Healthy),
        rows: units.iter().map(|u| u.cycles.len()).sum(),
        members,
        alarms: alarm_rows(&log),
        events: log.events().to_vec(),
        scored: rul.map(|p| FleetScore { rul_file: p.display().to_string(), with_window, caught, early, missed }),
    })
}

/// The alarms of a fleet's log, in its order.
fn alarm_rows(log: &FleetLog) -> Vec<AlarmRow> {
    log.events()
        .iter()
        .filter_map(|e| match e {
            Event::Finding { node, finding: f, .. } => Some(AlarmRow {
                id: twinfault_core::ledger::fault_id(node, f),
                node: node.clone(),
                cycle: f.t.0 as u32,
                kind: f.kind,
                severity: f.severity,
                value: f.value,
                threshold: f.threshold,
                summary: f.summary.clone(),
                action: f.action.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The RUL file beside a C-MAPSS test file (`test_FD001.txt` → `RUL_FD001.txt`), if present.
pub fn rul_beside(file: &Path) -> Option<std::path::PathBuf> {
    let name = file.file_name()?.to_str()?;
    let rest = name.strip_prefix("test_")?;
    let p = file.with_file_name(format!("RUL_{rest}"));
    p.is_file().then_some(p)
}

impl FleetReplay {
    /// The report; `alarms`: list the alarms (a live replay printed them as they came).
    pub fn render(&self, alarms: bool) -> String {
        let mut s = format!(
            "replayed {} cycles of {} engines from {} into fleet {} (one actor per engine)\n",
            self.rows,
            self.members.len(),
            self.file,
            self.fleet
        );
        for a in self.alarms.iter().filter(|_| alarms) {
            s += &format!(
                "  cycle {:>3}  {}  {} ({}): {}\n",
                a.cycle,
                a.node,
                a.kind,
                a.severity.status().as_str(),
                a.summary
            );
        }
        let count = |st: Status| self.members.iter().filter(|m| m.status == st).count();
        s += &format!(
            "fleet {}: {} — {} critical, {} warning, {} healthy\n",
            self.fleet,
            self.fleet_status.as_str(),
            count(Status::Critical),
            count(Status::Warning),
            count(Status::Healthy)
        );
        let gated: usize = self.members.iter().map(|m| m.gated).sum();
        if gated > 0 {
            s += &format!(
                "warning: {gated} of {} cycles were not scored (settings in no operating condition the model was trained on, or far off the engine's state): is the model trained on this kind of data?\n",
                self.rows
            );
        }
        if let Some(sc) = &self.scored {
            s += &format!(
                "against {}: {} of {} engines whose last 30 cycles are in the data alarmed inside them ({} missed); {} engines alarmed earlier\n",
                sc.rul_file, sc.caught, sc.with_window, sc.missed, sc.early
            );
        }
        s
    }
}
