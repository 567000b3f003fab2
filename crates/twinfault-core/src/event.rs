//! The event log: everything a run decided, in a deterministic order, one JSON object per line.
//!
//! The log is the run's ground truth and its fingerprint: the same scenario and seed produce the
//! same bytes at any worker-thread count, and the run prints their SHA-256.

use crate::detect::FindingEvent;
use crate::types::{FaultKind, Phase, SimTime, Status};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An AHU changed operating phase.
    Phase { t: SimTime, node: String, from: Phase, to: Phase },
    /// An injected fault began (its onset; a ramp may follow).
    InjectionStarted { t: SimTime, id: String, node: String, kind: FaultKind, severity: f64 },
    /// An injected fault ended.
    InjectionEnded { t: SimTime, id: String, node: String },
    /// A finding opened, updated or resolved on `node` (for AHU rules, `finding.device` names the
    /// device the evidence points at). `truth` is the injection that caused it, if any.
    Finding {
        node: String,
        /// Phase of the node's AHU when it happened (none for the plant).
        phase: Option<Phase>,
        #[serde(flatten)]
        finding: FindingEvent,
        truth: Option<String>,
    },
    /// A node's status changed. `truth` lists the injections in its subtree behind the new status.
    Status { t: SimTime, node: String, from: Status, to: Status, truth: Vec<String> },
}

impl Event {
    pub fn t(&self) -> SimTime {
        match self {
            Event::Phase { t, .. }
            | Event::InjectionStarted { t, .. }
            | Event::InjectionEnded { t, .. }
            | Event::Status { t, .. } => *t,
            Event::Finding { finding, .. } => finding.t,
        }
    }

    /// Sort class within one instant: phases, injections, findings, statuses.
    pub fn class(&self) -> u8 {
        match self {
            Event::Phase { .. } => 0,
            Event::InjectionStarted { .. } | Event::InjectionEnded { .. } => 1,
            Event::Finding { .. } => 2,
            Event::Status { .. } => 3,
        }
    }
}
