//! The twin's live view that the server's API and the agent's tools read: node statuses, last
//! samples, open and resolved faults (a [`FaultLedger`]), counters. Updated from the supervisor's
//! events each epoch and by the writer as samples are committed; `agent-eval` folds a finished
//! run into one.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use twinfault_core::actuator::Sample;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::detect::FindingEvent;
use twinfault_core::event::Event;
use twinfault_core::ledger::{FaultLedger, Retention};
use twinfault_core::types::{Phase, SimTime, Status};
use twinfault_wire::{FaultChange, FaultView, LastSample, NodeKind, NodeView};

/// Longest id or name echoed back in a reply or a log line [characters].
const MAX_ECHO: usize = 64;

/// `s` as it may be echoed: at most 64 characters, the rest counted.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… ({} more bytes)", &s[..i], s.len() - i),
    }
}

/// Resolved faults kept in memory for `GET /api/faults?state=resolved`.
const RESOLVED_KEPT: usize = 10_000;
/// Fault changes kept per node for `GET /api/nodes/{id}/fault-history`.
const NODE_HISTORY_KEPT: usize = 1_000;

/// An actuator created at run time from telemetry naming an unknown node under a known AHU
/// (`auto_create`). It has a twin (ingesting) and reports under its AHU; it is not part of the
/// AHU's thermal model.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ExtraNode {
    pub id: String,
    /// Index of its AHU in the facility.
    pub ahu: usize,
    pub device_type: String,
}

pub struct Live {
    facility: Arc<Facility>,
    /// Auto-created actuators; their index is `facility.actuators.len() + k`.
    extras: RwLock<Vec<(ExtraNode, Status)>>,
    /// Per node in `Facility::node_ids` order.
    statuses: RwLock<Vec<Status>>,
    phases: RwLock<Vec<Phase>>,
    /// Latest sample per actuator (by timestamp) and its time, for the out-of-order window.
    last: Mutex<Vec<Option<Sample>>>,
    faults: RwLock<FaultLedger>,
    /// Per device: the worst open rule finding about it raised by another node (its AHU), which
    /// its status counts as well as its own findings.
    about: RwLock<BTreeMap<String, Status>>,
    pub ingested: AtomicU64,
    pub requests: AtomicU64,
    pub rejected: Mutex<BTreeMap<&'static str, u64>>,
    pub queue_depth: AtomicUsize,
    /// Whether the MQTT subscription is in place (1 after the broker's SubAck).
    pub mqtt_subscribed: std::sync::atomic::AtomicBool,
    /// MQTT connections made (each ConnAck): also which connection a message came on.
    pub mqtt_connections: AtomicU64,
    /// JetStream messages acknowledged after their group commit (a cluster's shard).
    pub nats_acked: AtomicU64,
}

impl Live {
    pub fn new(facility: Arc<Facility>) -> Live {
        let (a, h) = (facility.actuators.len(), facility.ahus.len());
        Live {
            statuses: RwLock::new(facility.initial_statuses()),
            facility,
            extras: RwLock::new(Vec::new()),
            phases: RwLock::new(vec![Phase::Off; h]),
            last: Mutex::new(vec![None; a]),
            faults: RwLock::new(FaultLedger::new(Retention {
                resolved: RESOLVED_KEPT,
                history_per_node: NODE_HISTORY_KEPT,
            })),
            about: RwLock::new(BTreeMap::new()),
            ingested: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            rejected: Mutex::new(BTreeMap::new()),
            queue_depth: AtomicUsize::new(0),
            mqtt_subscribed: std::sync::atomic::AtomicBool::new(false),
            mqtt_connections: AtomicU64::new(0),
            nats_acked: AtomicU64::new(0),
        }
    }

    pub fn facility(&self) -> &Facility {
        &self.facility
    }

    /// A node as the API shows it: kind, status, parent, children, mode, last sample (facility
    /// nodes and auto-created actuators).
    pub fn node_view(&self, id: &str) -> Option<NodeView> {
        if let Some(n) = self.facility.node(id) {
            return Some(self.node_ref_view(n));
        }
        self.extras().into_iter().find(|(e, _)| e.id == id).map(|(e, s)| self.extra_view(&e, s))
    }

    pub fn node_ref_view(&self, n: NodeRef) -> NodeView {
        let f = &self.facility;
        let kind = match n {
            NodeRef::Plant => NodeKind::Plant,
            NodeRef::Ahu(_) => NodeKind::Ahu,
            NodeRef::Actuator(_) => NodeKind::Actuator,
        };
        let mut v = NodeView::new(f.node_id(n).to_string(), kind, self.status(n));
        match n {
            NodeRef::Plant => v.children = Some(f.ahus.iter().map(|a| a.id.clone()).collect()),
            NodeRef::Ahu(h) => {
                v.parent = f.plant.as_ref().map(|p| p.id.clone());
                v.phase = Some(self.phase(h));
                v.children = Some(f.ahus[h].children.iter().map(|&c| f.actuators[c].id.clone()).collect());
            }
            NodeRef::Actuator(i) => {
                let a = &f.actuators[i];
                v.parent = Some(f.ahus[a.ahu].id.clone());
                v.role = Some(a.role.as_str().to_string());
                v.mode = Some(a.mode);
                v.model = Some(a.model.clone());
                v.last_sample = self.last_sample(i).as_ref().map(LastSample::of);
            }
        }
        v
    }

    pub fn extra_view(&self, e: &ExtraNode, status: Status) -> NodeView {
        NodeView {
            parent: Some(self.facility.ahus[e.ahu].id.clone()),
            role: Some("unassigned".into()),
            mode: Some(twinfault_core::twin::Mode::Ingest),
            auto_created: true,
            device_type: Some(e.device_type.clone()),
            last_sample: self.extra(&e.id).and_then(|(i, _)| self.last_sample(i)).as_ref().map(LastSample::of),
            ..NodeView::new(e.id.clone(), NodeKind::Actuator, status)
        }
    }

    /// Registers an auto-created actuator; returns its index.
    pub fn add_extra(&self, node: ExtraNode) -> usize {
        let mut extras = self.extras.write().expect("not poisoned");
        let mut last = self.last.lock().expect("not poisoned");
        extras.push((node, Status::Unknown));
        last.push(None);
        self.facility.actuators.len() + extras.len() - 1
    }

    /// The index and AHU of an auto-created actuator.
    pub fn extra(&self, id: &str) -> Option<(usize, usize)> {
        let a = self.facility.actuators.len();
        // One guard: a second read while a writer waits could deadlock.
        let extras = self.extras.read().expect("not poisoned");
        extras.iter().position(|(e, _)| e.id == id).map(|k| (a + k, extras[k].0.ahu))
    }

    pub fn extras(&self) -> Vec<(ExtraNode, Status)> {
        self.extras.read().expect("not poisoned").clone()
    }

    pub fn set_extra_status(&self, index: usize, status: Status) {
        let k = index - self.facility.actuators.len();
        if let Some(e) = self.extras.write().expect("not poisoned").get_mut(k) {
            e.1 = status;
        }
    }

    /// The id of actuator `index` (facility or auto-created).
    pub fn actuator_id(&self, index: usize) -> String {
        let a = self.facility.actuators.len();
        if index < a {
            self.facility.actuators[index].id.clone()
        } else {
            self.extras.read().expect("not poisoned")[index - a].0.id.clone()
        }
    }

    /// Worst status of the auto-created actuators under an AHU (`None`: all of them).
    pub fn extras_status(&self, ahu: Option<usize>) -> Status {
        self.extras
            .read()
            .expect("not poisoned")
            .iter()
            .filter(|(e, _)| ahu.is_none_or(|h| e.ahu == h))
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(Status::Unknown)
    }

    pub fn reject(&self, reason: &'static str, n: u64) {
        *self.rejected.lock().expect("not poisoned").entry(reason).or_default() += n;
    }

    pub fn note_sample(&self, actuator: usize, s: Sample) {
        let mut last = self.last.lock().expect("not poisoned");
        if last[actuator].is_none_or(|l| s.t >= l.t) {
            last[actuator] = Some(s);
        }
    }

    pub fn latest_ms(&self, actuator: usize) -> Option<i64> {
        self.last.lock().expect("not poisoned")[actuator].map(|s| s.t.0 as i64)
    }

    pub fn last_sample(&self, actuator: usize) -> Option<Sample> {
        self.last.lock().expect("not poisoned")[actuator]
    }

    /// A node's status; an AHU's and the plant's include their auto-created actuators, a device's
    /// the findings about it that its AHU raised (a `stuck_at` found from the air temperatures is
    /// the damper's fault, whatever the damper's own rules say).
    pub fn status(&self, node: NodeRef) -> Status {
        let own = self.statuses.read().expect("not poisoned")[self.facility.node_index(node)];
        match node {
            NodeRef::Ahu(h) => own.max(self.extras_status(Some(h))),
            NodeRef::Plant => own.max(self.extras_status(None)),
            NodeRef::Actuator(i) => self.about_status(&self.facility.actuators[i].id).map_or(own, |a| own.max(a)),
        }
    }

    /// The worst open rule finding about `device` raised by another node, as a status.
    pub fn about_status(&self, device: &str) -> Option<Status> {
        self.about.read().expect("not poisoned").get(device).copied()
    }

    /// Recomputes [`Live::about_status`] from the open faults (called with the ledger locked).
    fn note_about(&self, faults: &FaultLedger) {
        let mut about = BTreeMap::new();
        for f in faults.open().filter(|f| f.source == twinfault_core::detect::Source::Rule) {
            if let Some(d) = f.device.as_ref().filter(|d| **d != f.node) {
                let s = about.entry(d.clone()).or_insert(Status::Healthy);
                *s = (*s).max(f.severity.status());
            }
        }
        *self.about.write().expect("not poisoned") = about;
    }

    /// Sets a node's own status (a cluster's plant, from its shards' summaries).
    pub fn set_status(&self, node: NodeRef, status: Status) {
        self.statuses.write().expect("not poisoned")[self.facility.node_index(node)] = status;
    }

    pub fn set_phase(&self, ahu: usize, phase: Phase) {
        self.phases.write().expect("not poisoned")[ahu] = phase;
    }

    pub fn phase(&self, ahu: usize) -> Phase {
        self.phases.read().expect("not poisoned")[ahu]
    }

    /// Findings replayed from the store at start-up.
    pub fn apply_restored(&self, node: &str, findings: Vec<FindingEvent>) {
        let mut faults = self.faults.write().expect("not poisoned");
        for f in &findings {
            faults.apply(node, f, None);
        }
        self.note_about(&faults);
    }

    /// One epoch's events from the supervisor.
    pub fn apply(&self, events: &[Event]) {
        let mut faults = self.faults.write().expect("not poisoned");
        for e in events {
            match e {
                Event::Finding { node, finding, truth, .. } => {
                    faults.apply(node, finding, truth.as_deref());
                }
                Event::Status { node, to, .. } => {
                    if let Some(n) = self.facility.node(node) {
                        let k = self.facility.node_index(n);
                        self.statuses.write().expect("not poisoned")[k] = *to;
                    }
                }
                Event::Phase { node, to, .. } => {
                    if let Some(NodeRef::Ahu(h)) = self.facility.node(node) {
                        self.phases.write().expect("not poisoned")[h] = *to;
                    }
                }
                Event::InjectionStarted { .. } | Event::InjectionEnded { .. } => {}
            }
        }
        if events.iter().any(|e| matches!(e, Event::Finding { .. })) {
            self.note_about(&faults);
        }
    }

    /// Records who resolved a fault (the twin's own `resolved` event follows). Resolved now, not
    /// at the twin's next epoch: the resolved list shows it at once, with the operator's time,
    /// which a restart (re-resolving at start-up) must not change.
    pub fn mark_resolved(&self, id: &str, record: &serde_json::Value) {
        let text = |k: &str| record.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let at =
            text("at").and_then(|a| twinfault_core::time::parse_timestamp_ms(&a)).map(|ms| SimTime(ms.max(0) as u64));
        let mut faults = self.faults.write().expect("not poisoned");
        faults.resolve_by(id, at, text("who"), text("note"));
        self.note_about(&faults);
    }

    pub fn open_faults_of(&self, node: &str) -> Vec<FaultView> {
        self.faults.read().expect("not poisoned").open_of(node).map(FaultView::of).collect()
    }

    pub fn fault(&self, id: &str) -> Option<FaultView> {
        self.faults.read().expect("not poisoned").fault(id).map(FaultView::of)
    }

    /// Open faults, worst first: severity, then confidence, then oldest.
    pub fn open_faults(&self) -> Vec<FaultView> {
        self.faults.read().expect("not poisoned").open_ranked().into_iter().map(FaultView::of).collect()
    }

    pub fn resolved_faults(&self, limit: usize) -> Vec<FaultView> {
        self.faults.read().expect("not poisoned").resolved().take(limit).map(FaultView::of).collect()
    }

    /// Faults opened or resolved at or after `t` on any node, oldest first, with the node each
    /// is about (updates left out: they are the same fault growing surer).
    pub fn changes_since(&self, t: SimTime) -> Vec<(String, FaultChange)> {
        let faults = self.faults.read().expect("not poisoned");
        faults
            .changes_since(t)
            .into_iter()
            .filter(|(_, e)| e.change != twinfault_core::detect::Change::Updated)
            .map(|(n, e)| (n.to_string(), FaultChange::of(e)))
            .collect()
    }

    pub fn fault_history(&self, node: &str) -> Vec<FaultChange> {
        self.faults.read().expect("not poisoned").history(node).map(FaultChange::of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stuck damper of the reference floor is found by its AHU (from the air temperatures):
    /// the damper's own rules see nothing, yet its status is the finding's severity.
    #[test]
    fn a_device_counts_the_findings_its_ahu_raised_about_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let l = crate::load::scenario(&root.join("scenarios/datacenter_stuck_at.toml"), None).unwrap();
        let opts = crate::sim::runner::RunOptions { threads: 1, store: None, speed: None, progress: false, seed: None };
        let r = crate::sim::runner::run(&l, &opts).unwrap();
        let events: Vec<Event> = r.log_lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
        let live = Live::new(Arc::new(l.facility.clone()));
        live.apply(&events);
        let about: Vec<FaultView> =
            live.open_faults().into_iter().filter(|f| f.device.as_ref().is_some_and(|d| *d != f.node)).collect();
        let f = about.first().expect("an open AHU finding about a device");
        let device = f.device.clone().unwrap();
        let n = l.facility.node(&device).unwrap();
        let own = live.statuses.read().unwrap()[l.facility.node_index(n)];
        assert!(own < f.severity.status(), "its own rules already say {own:?}: the test shows nothing");
        assert_eq!(live.status(n), f.severity.status(), "{device}");
        // Resolved by an operator, the finding no longer counts.
        live.mark_resolved(&f.id, &serde_json::json!({ "who": "op", "note": "fixed", "at": "1970-01-01T05:00:00Z" }));
        assert_eq!(live.status(n), own);
    }
}
