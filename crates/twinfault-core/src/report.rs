//! Ground-truth attribution, expectation checks and scores of a run.

use crate::config::{Facility, NodeRef};
use crate::detect::{Change, Source};
use crate::event::Event;
use crate::fault::Injection;
use crate::scenario::{Expectation, Scenario};
use crate::types::{FaultKind, Severity, SimTime, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A detection may lag its injection's end by this much and still be caused by it [s].
pub const ATTRIBUTION_GRACE_S: f64 = 300.0;

/// Which injection, if any, caused a finding of `kind` on `node` (pointing at `device`) at `t`.
///
/// Candidates are injections active at `t` (or ended within the grace) whose target is the
/// device, the node, or below the node. A same-kind injection wins, then one on the exact
/// device, then the earliest.
pub fn attribute<'a>(
    facility: &Facility,
    injections: &'a [Injection],
    node: &str,
    device: Option<&str>,
    kind: FaultKind,
    t: SimTime,
) -> Option<&'a Injection> {
    let node_ref = facility.node(node)?;
    let grace = SimTime::from_secs_f64(ATTRIBUTION_GRACE_S);
    injections
        .iter()
        .filter(|i| t >= i.start && i.end.is_none_or(|e| t.0 <= e.0 + grace.0))
        .filter(|i| {
            let Some(target) = facility.node(&i.node) else {
                return false;
            };
            device == Some(i.node.as_str()) || facility.is_ancestor_or_self(node_ref, target)
        })
        .min_by_key(|i| {
            let exact = device.map_or(i.node == node, |d| d == i.node);
            (i.kind != kind, !exact, i.start)
        })
}

/// Injections active (or within the grace) at `t` whose target is `node` or below it.
pub fn injections_below<'a>(
    facility: &Facility,
    injections: &'a [Injection],
    node: NodeRef,
    t: SimTime,
) -> Vec<&'a Injection> {
    let grace = SimTime::from_secs_f64(ATTRIBUTION_GRACE_S);
    injections
        .iter()
        .filter(|i| t >= i.start && i.end.is_none_or(|e| t.0 <= e.0 + grace.0))
        .filter(|i| facility.node(&i.node).is_some_and(|target| facility.is_ancestor_or_self(node, target)))
        .collect()
}

/// One opened finding as the report lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Detection {
    pub node: String,
    pub device: Option<String>,
    pub kind: FaultKind,
    pub severity: Severity,
    pub confidence: f32,
    pub opened_at_s: f64,
    /// The injection that caused it; `None` is a false alarm.
    pub truth: Option<String>,
    /// Seconds from the injection's onset to this finding.
    pub latency_s: Option<f64>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpectationResult {
    pub expectation: String,
    pub passed: bool,
    /// Detection or recovery latency where it applies [s].
    pub latency_s: Option<f64>,
    pub detail: String,
}

/// Precision and recall of one fault kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KindScore {
    /// Injections of this kind.
    pub injected: usize,
    /// Of those, detected as this kind.
    pub detected: usize,
    /// Findings of this kind.
    pub findings: usize,
    /// Of those, caused by an injection of this kind (or, for symptom kinds, by any injection).
    pub correct: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub duration_s: f64,
    pub events: usize,
    /// SHA-256 of the event log (JSON lines).
    pub event_log_sha256: String,
    pub passed: bool,
    pub expectations: Vec<ExpectationResult>,
    pub detections: Vec<Detection>,
    pub false_alarms: usize,
    pub per_kind: BTreeMap<FaultKind, KindScore>,
    /// Verdicts of a learned classifier run alongside the rules (none without one); they count
    /// in no expectation.
    #[serde(default)]
    pub model_verdicts: Vec<Detection>,
    #[serde(default)]
    pub model_false_alarms: usize,
}

fn describe(e: &Expectation) -> String {
    match e {
        Expectation::Detected { injection, node, fault, within_s } => {
            format!("{fault} on {node} within {within_s} s ({injection})")
        }
        Expectation::Status { injection, node, status, within_s } => {
            format!("{node} at least {status} within {within_s} s ({injection})")
        }
        Expectation::Recovers { injection, node, within_s } => {
            format!("{node} healthy within {within_s} s after {injection} ends")
        }
        Expectation::RootCause { injection, device, within_s } => {
            format!("the fork names {device} within {within_s} s ({injection})")
        }
        Expectation::NoFalseAlarms => "no false alarms".into(),
        Expectation::NoAlarm { nodes } => format!("no alarm on {}", nodes.join(", ")),
        Expectation::NoAlarmInPhase { phases } => {
            format!("no alarm during {}", phases.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("/"))
        }
    }
}

/// Builds the report of a finished run from its event log.
pub fn build(scenario: &Scenario, events: &[Event], hash: &str) -> Report {
    let inj = |id: &str| scenario.injections.iter().find(|i| i.id == id);
    let mut detections = Vec::new();
    let mut model_verdicts = Vec::new();
    for e in events {
        if let Event::Finding { node, finding, truth, .. } = e {
            if finding.change != Change::Opened {
                continue;
            }
            let list = if finding.source == Source::Model { &mut model_verdicts } else { &mut detections };
            let latency_s =
                truth.as_deref().and_then(inj).map(|i| (finding.t.0.saturating_sub(i.start.0)) as f64 / 1000.0);
            list.push(Detection {
                node: node.clone(),
                device: finding.device.clone(),
                kind: finding.kind,
                severity: finding.severity,
                confidence: finding.confidence,
                opened_at_s: finding.t.as_secs_f64(),
                truth: truth.clone(),
                latency_s,
                summary: finding.summary.clone(),
            });
        }
    }
    let opened = || {
        events.iter().filter_map(|e| match e {
            Event::Finding { node, phase, finding, truth }
                if finding.change == Change::Opened && finding.source == Source::Rule =>
            {
                Some((node, phase, finding, truth))
            }
            _ => None,
        })
    };

    let mut results = Vec::new();
    for x in &scenario.expectations {
        let (passed, latency_s, detail) = match x {
            Expectation::Detected { injection, node, fault, within_s } => {
                let i = inj(injection).expect("validated");
                let hit = opened().find(|(n, _, f, truth)| {
                    f.kind == *fault
                        && (*n == node || f.device.as_deref() == Some(node.as_str()))
                        && truth.as_deref() == Some(injection.as_str())
                        && f.t >= i.start
                });
                match hit {
                    Some((_, _, f, _)) => {
                        let lat = (f.t.0 - i.start.0) as f64 / 1000.0;
                        (lat <= *within_s, Some(lat), format!("opened at {} ({lat:.1} s after onset)", f.t))
                    }
                    None => (false, None, "not detected".into()),
                }
            }
            Expectation::Status { injection, node, status, within_s } => {
                let i = inj(injection).expect("validated");
                // Walk the node's status changes: the first time at or after the onset that it
                // is at least `status` (possibly already at the onset).
                let mut current = Status::Healthy;
                let mut hit = None;
                for e in events {
                    let Event::Status { t, node: n, to, .. } = e else { continue };
                    if n != node {
                        continue;
                    }
                    if *t >= i.start && hit.is_none() && current >= *status {
                        hit = Some(i.start);
                    }
                    current = *to;
                    if *t >= i.start && hit.is_none() && current >= *status {
                        hit = Some(*t);
                    }
                }
                if hit.is_none() && current >= *status {
                    hit = Some(i.start);
                }
                match hit {
                    Some(t) => {
                        let lat = (t.0 - i.start.0) as f64 / 1000.0;
                        let how = if t == i.start { "already at onset".to_string() } else { format!("reached at {t}") };
                        (lat <= *within_s, Some(lat), format!("{how} ({lat:.1} s after onset)"))
                    }
                    None => (false, None, format!("never reached {status}")),
                }
            }
            Expectation::Recovers { injection, node, within_s } => {
                let i = inj(injection).expect("validated");
                let end = i.end.expect("validated");
                let deadline = SimTime(end.0 + (within_s * 1000.0) as u64);
                let mut status = Status::Healthy;
                let mut since = SimTime::ZERO;
                for e in events {
                    if let Event::Status { t, node: n, to, .. } = e
                        && n == node
                        && *t <= deadline
                    {
                        status = *to;
                        since = *t;
                    }
                }
                if status == Status::Healthy {
                    let lat = (since.0.saturating_sub(end.0)) as f64 / 1000.0;
                    (true, Some(lat), format!("healthy from {since}"))
                } else {
                    (false, None, format!("still {status} at {deadline}"))
                }
            }
            Expectation::RootCause { injection, device, within_s } => {
                let i = inj(injection).expect("validated");
                let first =
                    opened().find_map(|(n, _, f, _)| Some((n, f, f.likely.as_ref()?)).filter(|_| f.t >= i.start));
                match first {
                    Some((n, f, likely)) => {
                        let lat = (f.t.0 - i.start.0) as f64 / 1000.0;
                        let named = likely.device == *device;
                        (
                            named && lat <= *within_s,
                            Some(lat),
                            format!(
                                "{n}'s {} at {} ({lat:.1} s after onset): likely {} (fit {:.2}/{:.2} K; next: {})",
                                f.kind,
                                f.t,
                                likely.hypothesis,
                                likely.fit_mixed_c,
                                likely.fit_supply_c,
                                likely.runner_up.as_deref().unwrap_or("-")
                            ),
                        )
                    }
                    None => (false, None, "no AHU finding with a fork conclusion after the onset".into()),
                }
            }
            Expectation::NoFalseAlarms => {
                let bad: Vec<String> = opened()
                    .filter(|o| o.3.is_none())
                    .map(|(n, _, f, _)| format!("{} on {n} at {}", f.kind, f.t))
                    .collect();
                (bad.is_empty(), None, if bad.is_empty() { "none".into() } else { bad.join("; ") })
            }
            Expectation::NoAlarm { nodes } => {
                let bad: Vec<String> = opened()
                    .filter(|(n, _, f, _)| nodes.contains(n) || f.device.as_ref().is_some_and(|d| nodes.contains(d)))
                    .map(|(n, _, f, _)| format!("{} on {n} at {}", f.kind, f.t))
                    .collect();
                (bad.is_empty(), None, if bad.is_empty() { "none".into() } else { bad.join("; ") })
            }
            Expectation::NoAlarmInPhase { phases } => {
                let bad: Vec<String> = opened()
                    .filter(|(_, p, _, _)| p.is_some_and(|p| phases.contains(&p)))
                    .map(|(n, p, f, _)| format!("{} on {n} at {} ({})", f.kind, f.t, p.map_or("", |p| p.as_str())))
                    .collect();
                (bad.is_empty(), None, if bad.is_empty() { "none".into() } else { bad.join("; ") })
            }
        };
        results.push(ExpectationResult { expectation: describe(x), passed, latency_s, detail });
    }

    let mut per_kind: BTreeMap<FaultKind, KindScore> = BTreeMap::new();
    for i in &scenario.injections {
        let s = per_kind.entry(i.kind).or_default();
        s.injected += 1;
        if detections.iter().any(|d| d.kind == i.kind && d.truth.as_deref() == Some(i.id.as_str())) {
            s.detected += 1;
        }
    }
    for d in &detections {
        let s = per_kind.entry(d.kind).or_default();
        s.findings += 1;
        let correct = match d.truth.as_deref().and_then(inj) {
            Some(i) => i.kind == d.kind || !d.kind.injectable(),
            None => false,
        };
        if correct {
            s.correct += 1;
        }
    }
    for s in per_kind.values_mut() {
        s.precision = (s.findings > 0).then(|| s.correct as f64 / s.findings as f64);
        s.recall = (s.injected > 0).then(|| s.detected as f64 / s.injected as f64);
    }
    let false_alarms = detections.iter().filter(|d| d.truth.is_none()).count();
    Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        duration_s: scenario.duration.as_secs_f64(),
        events: events.len(),
        event_log_sha256: hash.to_string(),
        passed: results.iter().all(|r| r.passed),
        expectations: results,
        detections,
        false_alarms,
        per_kind,
        model_false_alarms: model_verdicts.iter().filter(|d| d.truth.is_none()).count(),
        model_verdicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::FindingEvent;
    use crate::testkit;

    fn opened(node: &str, kind: FaultKind, t_s: u64, truth: Option<&str>) -> Event {
        Event::Finding {
            node: node.into(),
            phase: None,
            finding: FindingEvent {
                t: SimTime(t_s * 1000),
                kind,
                change: Change::Opened,
                severity: Severity::Critical,
                confidence: 0.9,
                value: 1.0,
                threshold: Some(0.5),
                opened_at: SimTime(t_s * 1000),
                summary: String::new(),
                action: String::new(),
                device: None,
                source: Source::Rule,
                likely: None,
            },
            truth: truth.map(str::to_string),
        }
    }

    const EXPECT: &str = "[[expect]]\ntype = \"detected\"\ninjection = \"F1\"\nwithin_s = 60\n\
                          [[expect]]\ntype = \"no_false_alarms\"\n";

    #[test]
    fn detections_count_against_their_injection_and_the_rest_are_false_alarms() {
        let s = testkit::scenario(1200, &format!("{}{EXPECT}", testkit::gear_jam(600)));
        let events = [
            opened("BEL-VNT-003", FaultKind::GearJam, 630, Some("F1")),
            opened("BEL-VNT-005", FaultKind::Stiction, 700, None),
        ];
        let r = build(&s, &events, "h");
        assert_eq!((r.detections.len(), r.false_alarms, r.event_log_sha256.as_str()), (2, 1, "h"));
        assert_eq!(r.detections[0].latency_s, Some(30.0));
        assert_eq!(r.expectations.iter().map(|e| e.passed).collect::<Vec<_>>(), [true, false]);
        assert!(!r.passed);
        let jam = &r.per_kind[&FaultKind::GearJam];
        assert_eq!((jam.injected, jam.detected, jam.findings, jam.correct), (1, 1, 1, 1));
        // Too late is a miss with its latency.
        let late = build(&s, &[opened("BEL-VNT-003", FaultKind::GearJam, 700, Some("F1"))], "h");
        assert_eq!((late.expectations[0].passed, late.expectations[0].latency_s), (false, Some(100.0)));
        assert!(late.expectations[1].passed);
    }

    #[test]
    fn findings_are_attributed_to_the_injection_below_them() {
        let s = testkit::scenario(1200, &testkit::gear_jam(600));
        let f = testkit::datacenter();
        let at = |node: &str, t_s: u64| {
            attribute(&f, &s.injections, node, None, FaultKind::GearJam, SimTime(t_s * 1000)).map(|i| i.id.as_str())
        };
        assert_eq!(at("BEL-VNT-003", 650), Some("F1"));
        // Its AHU and the plant are above it; another AHU's device is not, nor is anything before the onset.
        let NodeRef::Actuator(i) = f.node("BEL-VNT-003").unwrap() else { panic!() };
        assert_eq!(at(&f.ahus[f.actuators[i].ahu].id, 650), Some("F1"));
        assert_eq!(at("plant-01", 650), Some("F1"));
        assert_eq!(at("BEL-VNT-003", 500), None);
        let other = f.actuators.iter().find(|a| a.ahu != f.actuators[i].ahu).unwrap();
        assert_eq!(at(&other.id, 650), None);
        assert_eq!(injections_below(&f, &s.injections, NodeRef::Plant, SimTime(650_000)).len(), 1);
    }
}
