//! Fault lifecycles folded from finding events, with one id scheme. Every view of faults (the
//! store's per-run records, the live server, the visualizer, `replay`'s report) folds through a
//! [`FaultLedger`]: a finding opens a [`Fault`], updates refresh it, a resolution (the twin's, or
//! an operator's first) retires it.
//!
//! A fault's id is `F-{device}-{kind}-{opened_ms}` (the device the evidence points at, or the node
//! for a finding about itself); a learned model's verdict is `V-…`, never sharing an id with a
//! rule's finding. Every finding event carries the time its finding opened, so a later event of
//! the same finding names the same id, across restarts too.

use crate::detect::{Change, FindingEvent, Source};
use crate::event::Event;
use crate::types::{FaultKind, Severity, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The id of the finding `f` reported by `node`.
pub fn fault_id(node: &str, f: &FindingEvent) -> String {
    let prefix = if f.source == Source::Model { 'V' } else { 'F' };
    format!("{prefix}-{}-{}-{}", f.device.as_deref().unwrap_or(node), f.kind.as_str(), f.opened_at.0)
}

/// One fault from its opening to its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub id: String,
    /// The node whose rule found it.
    pub node: String,
    /// For AHU findings: the device the evidence points at.
    pub device: Option<String>,
    pub kind: FaultKind,
    pub severity: Severity,
    pub confidence: f32,
    #[serde(default)]
    pub source: Source,
    pub opened_at: SimTime,
    pub updated_at: SimTime,
    pub resolved_at: Option<SimTime>,
    /// Updates between opening and resolution.
    pub updates: u32,
    pub summary: String,
    /// The recommended action.
    pub action: String,
    /// The rule's measured value and threshold when it opened.
    #[serde(default)]
    pub value: f32,
    #[serde(default)]
    pub threshold: Option<f32>,
    /// The injection that caused it (simulated runs).
    pub truth: Option<String>,
    /// Who resolved it and their note, when an operator did.
    #[serde(default)]
    pub resolved_by: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// For an AHU finding: the element its counterfactual fork found likeliest when it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likely: Option<crate::counterfactual::Likely>,
}

impl Fault {
    /// The node a fault is about: the device the evidence points at, or the finding's node.
    pub fn target(&self) -> &str {
        self.device.as_deref().unwrap_or(&self.node)
    }

    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// One change in a node's fault history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub t: SimTime,
    pub fault_id: String,
    pub kind: FaultKind,
    pub change: Change,
    pub severity: Severity,
    pub summary: String,
}

/// How much a ledger keeps: `usize::MAX` for a finished run, bounds for a long-lived server.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Resolved faults kept (oldest dropped first).
    pub resolved: usize,
    /// History entries kept per node.
    pub history_per_node: usize,
}

impl Retention {
    pub const ALL: Retention = Retention { resolved: usize::MAX, history_per_node: usize::MAX };
}

/// Where an open fault stands in the list an operator reads: the more severe first, then the more
/// confident, then the older, then by a tie-breaker (the id). The one order of the server's
/// lists, the agent's overview and the visualizer's issues panel.
#[derive(Debug, Clone, Copy)]
pub struct Rank<'a> {
    severity: Severity,
    confidence: f32,
    opened_at: SimTime,
    tie: &'a str,
}

impl<'a> Rank<'a> {
    pub fn of(severity: Severity, confidence: f32, opened_at: SimTime, tie: &'a str) -> Rank<'a> {
        Rank { severity, confidence, opened_at, tie }
    }
}

/// Worst first: a fault that ranks before another is "less".
impl Ord for Rank<'_> {
    fn cmp(&self, b: &Self) -> std::cmp::Ordering {
        b.severity
            .cmp(&self.severity)
            .then(b.confidence.total_cmp(&self.confidence))
            .then(self.opened_at.cmp(&b.opened_at))
            .then(self.tie.cmp(b.tie))
    }
}

impl PartialOrd for Rank<'_> {
    fn partial_cmp(&self, b: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(b))
    }
}

impl PartialEq for Rank<'_> {
    fn eq(&self, b: &Self) -> bool {
        self.cmp(b).is_eq()
    }
}

impl Eq for Rank<'_> {}

/// Open and resolved faults and each node's fault history.
#[derive(Debug, Clone)]
pub struct FaultLedger {
    keep: Retention,
    open: BTreeMap<String, Fault>,
    resolved: VecDeque<Fault>,
    /// Per target node (the device for AHU findings).
    history: BTreeMap<String, VecDeque<HistoryEntry>>,
    /// Every fault ever opened, in opening order, as ids (finished runs: `Retention::ALL`).
    order: Vec<String>,
}

impl Default for FaultLedger {
    fn default() -> Self {
        FaultLedger::new(Retention::ALL)
    }
}

impl FaultLedger {
    pub fn new(keep: Retention) -> FaultLedger {
        FaultLedger {
            keep,
            open: BTreeMap::new(),
            resolved: VecDeque::new(),
            history: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// A ledger of every finding in `events`.
    pub fn of_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> FaultLedger {
        let mut l = FaultLedger::default();
        for e in events {
            l.apply_event(e);
        }
        l
    }

    /// Folds one event (only findings change the ledger).
    pub fn apply_event(&mut self, e: &Event) {
        if let Event::Finding { node, finding, truth, .. } = e {
            self.apply(node, finding, truth.as_deref());
        }
    }

    /// Folds one finding event reported by `node`; returns the fault's id.
    pub fn apply(&mut self, node: &str, f: &FindingEvent, truth: Option<&str>) -> String {
        let id = fault_id(node, f);
        // Kept under the node the fault is about (`Fault::target`): the device for AHU findings.
        let hist = self.history.entry(f.device.as_deref().unwrap_or(node).to_string()).or_default();
        hist.push_back(HistoryEntry {
            t: f.t,
            fault_id: id.clone(),
            kind: f.kind,
            change: f.change,
            severity: f.severity,
            summary: f.summary.clone(),
        });
        if hist.len() > self.keep.history_per_node {
            hist.pop_front();
        }
        match f.change {
            Change::Opened => {
                if self.keep.resolved == usize::MAX {
                    self.order.push(id.clone());
                }
                let fault = Fault {
                    id: id.clone(),
                    node: node.to_string(),
                    device: f.device.clone(),
                    kind: f.kind,
                    severity: f.severity,
                    confidence: f.confidence,
                    source: f.source,
                    opened_at: f.t,
                    updated_at: f.t,
                    resolved_at: None,
                    updates: 0,
                    summary: f.summary.clone(),
                    action: f.action.clone(),
                    value: f.value,
                    threshold: f.threshold,
                    truth: truth.map(str::to_string),
                    resolved_by: None,
                    note: None,
                    likely: f.likely.clone(),
                };
                self.open.insert(id.clone(), fault);
            }
            Change::Updated => {
                if let Some(v) = self.open.get_mut(&id) {
                    v.updated_at = f.t;
                    v.updates += 1;
                    v.confidence = f.confidence;
                    v.summary = f.summary.clone();
                }
            }
            Change::Resolved => {
                if let Some(v) = self.open.remove(&id) {
                    self.retire(v, f.t);
                }
            }
        }
        id
    }

    fn retire(&mut self, mut v: Fault, at: SimTime) {
        v.resolved_at = Some(at);
        v.updated_at = at;
        self.resolved.push_back(v);
        if self.resolved.len() > self.keep.resolved {
            self.resolved.pop_front();
        }
    }

    /// An operator resolved `id` at `at` (before the twin's own resolution event, which then finds
    /// it already resolved). An already resolved fault keeps its resolution but takes who and why.
    /// Returns whether the fault is known.
    pub fn resolve_by(&mut self, id: &str, at: Option<SimTime>, who: Option<String>, note: Option<String>) -> bool {
        if let Some(v) = self.open.remove(id) {
            let when = at.unwrap_or(v.updated_at);
            self.retire(v, when);
        }
        let Some(v) = self.resolved.iter_mut().rev().find(|v| v.id == id) else {
            return false;
        };
        v.resolved_by = who;
        v.note = note;
        if let Some(a) = at {
            v.resolved_at = Some(a);
            v.updated_at = a;
        }
        true
    }

    pub fn fault(&self, id: &str) -> Option<&Fault> {
        self.open.get(id).or_else(|| self.resolved.iter().rev().find(|v| v.id == id))
    }

    /// Open faults in id order.
    pub fn open(&self) -> impl Iterator<Item = &Fault> {
        self.open.values()
    }

    /// Open faults, worst first: severity, then confidence, then the oldest, then by id.
    pub fn open_ranked(&self) -> Vec<&Fault> {
        let mut v: Vec<&Fault> = self.open.values().collect();
        v.sort_by(|a, b| {
            Rank::of(a.severity, a.confidence, a.opened_at, &a.id).cmp(&Rank::of(
                b.severity,
                b.confidence,
                b.opened_at,
                &b.id,
            ))
        });
        v
    }

    /// Open faults found by `node` or pointing at it.
    pub fn open_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Fault> + 'a {
        self.open.values().filter(move |f| f.node == node || f.device.as_deref() == Some(node))
    }

    /// Resolved faults, newest resolution first.
    pub fn resolved(&self) -> impl Iterator<Item = &Fault> {
        self.resolved.iter().rev()
    }

    /// A node's fault changes, oldest first.
    pub fn history(&self, node: &str) -> impl Iterator<Item = &HistoryEntry> {
        self.history.get(node).into_iter().flatten()
    }

    /// Fault changes at or after `t` on every node, oldest first, with the node each is about.
    pub fn changes_since(&self, t: SimTime) -> Vec<(&str, &HistoryEntry)> {
        let mut out: Vec<(&str, &HistoryEntry)> = self
            .history
            .iter()
            .flat_map(|(node, h)| h.iter().rev().take_while(move |e| e.t >= t).map(move |e| (node.as_str(), e)))
            .collect();
        out.sort_by(|a, b| a.1.t.cmp(&b.1.t).then(a.0.cmp(b.0)));
        out
    }

    /// Every fault in the order it opened (a ledger with `Retention::ALL`: a finished run).
    pub fn all(&self) -> Vec<&Fault> {
        self.order.iter().filter_map(|id| self.fault(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(t: u64, opened: u64, change: Change, device: Option<&str>, source: Source) -> FindingEvent {
        FindingEvent {
            t: SimTime(t),
            kind: FaultKind::GearJam,
            change,
            severity: Severity::Critical,
            confidence: t as f32 / 1000.0,
            value: 1.0,
            threshold: Some(0.5),
            opened_at: SimTime(opened),
            summary: format!("at {t}"),
            action: "check".into(),
            device: device.map(str::to_string),
            source,
            likely: None,
        }
    }

    #[test]
    fn an_ahu_faults_record_keeps_the_forks_conclusion_from_its_opening() {
        let likely = crate::counterfactual::Likely {
            device: "BEL-CHW-201".into(),
            kind: FaultKind::StuckAt,
            hypothesis: "BEL-CHW-201 stuck at 100 %".into(),
            fit_mixed_c: 0.1,
            fit_supply_c: 0.4,
            runner_up: Some("BEL-CHW-201 leaking 50 %".into()),
        };
        let mut l = FaultLedger::default();
        let open =
            FindingEvent { likely: Some(likely.clone()), ..finding(100, 100, Change::Opened, None, Source::Rule) };
        let id = l.apply("ahu-02", &open, None);
        l.apply("ahu-02", &finding(200, 100, Change::Updated, None, Source::Rule), None);
        assert_eq!(l.fault(&id).unwrap().likely.as_ref(), Some(&likely));
        // Stored and read back (a record written before the field existed reads as none).
        let text = serde_json::to_string(l.fault(&id).unwrap()).unwrap();
        assert_eq!(serde_json::from_str::<Fault>(&text).unwrap().likely, Some(likely));
        let old = text.split(",\"likely\"").next().unwrap().to_string() + "}";
        assert_eq!(serde_json::from_str::<Fault>(&old).unwrap().likely, None);
    }

    #[test]
    fn a_lifecycle_folds_into_one_fault_with_one_id() {
        let mut l = FaultLedger::default();
        let id = l.apply("BEL-1", &finding(100, 100, Change::Opened, None, Source::Rule), Some("F1"));
        assert_eq!(id, "F-BEL-1-gear_jam-100");
        l.apply("BEL-1", &finding(200, 100, Change::Updated, None, Source::Rule), Some("F1"));
        let f = l.fault(&id).unwrap();
        assert_eq!(
            (f.updates, f.updated_at, f.summary.as_str(), f.truth.as_deref()),
            (1, SimTime(200), "at 200", Some("F1"))
        );
        assert_eq!(l.open_of("BEL-1").count(), 1);
        assert_eq!(l.apply("BEL-1", &finding(300, 100, Change::Resolved, None, Source::Rule), None), id);
        let f = l.fault(&id).unwrap();
        assert_eq!((f.resolved_at, f.is_open()), (Some(SimTime(300)), false));
        assert_eq!(l.open().count(), 0);
        let changes: Vec<Change> = l.history("BEL-1").map(|h| h.change).collect();
        assert_eq!(changes, [Change::Opened, Change::Updated, Change::Resolved]);
        assert_eq!(l.all().len(), 1);
    }

    #[test]
    fn model_verdicts_and_ahu_findings_keep_their_own_ids() {
        let mut l = FaultLedger::default();
        let rule = l.apply("BEL-1", &finding(100, 100, Change::Opened, None, Source::Rule), None);
        let model = l.apply("BEL-1", &finding(100, 100, Change::Opened, None, Source::Model), None);
        let ahu = l.apply("ahu-01", &finding(150, 150, Change::Opened, Some("BEL-1"), Source::Rule), None);
        assert_eq!(
            (rule.as_str(), model.as_str(), ahu.as_str()),
            ("F-BEL-1-gear_jam-100", "V-BEL-1-gear_jam-100", "F-BEL-1-gear_jam-150")
        );
        // The AHU's finding is about the device: listed with it and in its history.
        assert_eq!(l.open_of("BEL-1").count(), 3);
        assert_eq!(l.open_of("ahu-01").count(), 1);
        assert_eq!(l.history("BEL-1").count(), 3);
        assert_eq!(l.fault(&ahu).unwrap().target(), "BEL-1");
        // An update for a finding never opened here (a restart in the middle) changes nothing.
        l.apply("BEL-2", &finding(300, 250, Change::Updated, None, Source::Rule), None);
        assert!(l.fault("F-BEL-2-gear_jam-250").is_none());
    }

    #[test]
    fn ranks_worst_first_and_bounds_what_it_keeps() {
        let mut l = FaultLedger::new(Retention { resolved: 2, history_per_node: 3 });
        for k in 0..5u64 {
            let node = format!("BEL-{k}");
            l.apply(&node, &finding(100 + k, 100 + k, Change::Opened, None, Source::Rule), None);
        }
        let ranked: Vec<&str> = l.open_ranked().iter().map(|f| f.node.as_str()).collect();
        // Same severity: the higher confidence (later here) first.
        assert_eq!(ranked, ["BEL-4", "BEL-3", "BEL-2", "BEL-1", "BEL-0"]);
        for k in 0..5u64 {
            l.apply(&format!("BEL-{k}"), &finding(500 + k, 100 + k, Change::Resolved, None, Source::Rule), None);
        }
        let kept: Vec<&str> = l.resolved().map(|f| f.node.as_str()).collect();
        assert_eq!(kept, ["BEL-4", "BEL-3"]);
        for t in 0..5 {
            l.apply("BEL-9", &finding(1000 + t, 1000, Change::Updated, None, Source::Rule), None);
        }
        assert_eq!(l.history("BEL-9").count(), 3);
    }

    #[test]
    fn an_operators_resolution_comes_first_and_keeps_its_time() {
        let mut l = FaultLedger::default();
        let id = l.apply("BEL-1", &finding(100, 100, Change::Opened, None, Source::Rule), None);
        assert!(l.resolve_by(&id, Some(SimTime(150)), Some("alice".into()), Some("replaced".into())));
        // The twin's own resolution follows at its next epoch: the operator's time stands.
        l.apply("BEL-1", &finding(200, 100, Change::Resolved, None, Source::Rule), None);
        let f = l.fault(&id).unwrap();
        assert_eq!(
            (f.resolved_at, f.resolved_by.as_deref(), f.note.as_deref()),
            (Some(SimTime(150)), Some("alice"), Some("replaced"))
        );
        assert_eq!(l.resolved().count(), 1);
        assert!(!l.resolve_by("F-nope", None, None, None));
    }
}
