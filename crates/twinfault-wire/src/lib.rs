//! # twinfault-wire
//!
//! The live server's replies as types, shared by the server's handlers (which serialize them),
//! its OpenAPI document (which describes them, feature `openapi`) and the visualizer's client
//! (which reads them): one description of the wire format. Its own crate, so the core never
//! waits for the OpenAPI macros to build.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use twinfault_core::actuator::Sample;
use twinfault_core::detect::{Change, Source};
use twinfault_core::ledger::{Fault, HistoryEntry};
use twinfault_core::time::format_timestamp_ms;
use twinfault_core::twin::Mode;
use twinfault_core::types::{FaultKind, Phase, Severity, SimTime, Status};

/// An `f32` as JSON, printed as short as it reads (40.1, not 40.099998474121094).
pub fn short(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

fn at(t: SimTime) -> String {
    format_timestamp_ms(t.0 as i64)
}

/// One problem with one field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Where: `[3].telemetry.torque`, `nodeId`, `body`, `query`.
    pub path: String,
    pub message: String,
}

/// Every refusal: what was wrong, and where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub details: Vec<FieldError>,
}

/// `POST /api/ingest`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReply {
    /// Samples stored and passed to the twins.
    pub accepted: u64,
}

/// `POST /api/faults/{id}/resolve`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolveReply {
    pub fault: String,
    /// The token's holder.
    pub resolved_by: String,
    pub note: String,
    /// RFC 3339.
    pub at: String,
}

/// `POST /api/scenario/inject`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InjectReply {
    pub injection: String,
    pub node: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: FaultKind,
    /// When it starts, RFC 3339.
    pub at: String,
}

/// `POST /api/scenario/clear`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClearReply {
    pub node: String,
    /// The injections that ended.
    pub ended: Vec<String>,
    pub at: String,
}

/// `POST /api/actions/{id}/reject`'s reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectReply {
    pub action: String,
    pub rejected_by: String,
}

/// Whether a fault is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FaultState {
    Open,
    Resolved,
}

/// A fault as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaultView {
    /// Stable id: the device, the kind and when it opened ([`twinfault_core::ledger::fault_id`]).
    pub id: String,
    pub node: String,
    /// For AHU findings: the device the evidence points at.
    pub device: Option<String>,
    /// Fault kind, e.g. `gear_jam`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: FaultKind,
    /// `warning` or `critical`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    pub confidence: f32,
    pub opened_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
    pub state: FaultState,
    pub summary: String,
    pub recommended_action: String,
    /// `rule`, or `model` for a learned classifier's verdict (which sets no status).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub source: Source,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    /// For an AHU finding: the element its counterfactual fork found likeliest when it opened
    /// (device, kind, hypothesis, fit of mixed and supply air, runner-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub likely: Option<twinfault_core::counterfactual::Likely>,
}

impl FaultView {
    pub fn of(f: &Fault) -> FaultView {
        FaultView {
            id: f.id.clone(),
            node: f.node.clone(),
            device: f.device.clone(),
            kind: f.kind,
            severity: f.severity,
            confidence: f.confidence,
            opened_at: at(f.opened_at),
            updated_at: at(f.updated_at),
            resolved_at: f.resolved_at.map(at),
            state: if f.is_open() { FaultState::Open } else { FaultState::Resolved },
            summary: f.summary.clone(),
            recommended_action: f.action.clone(),
            source: f.source,
            resolved_by: f.resolved_by.clone(),
            note: f.note.clone(),
            likely: f.likely.clone(),
        }
    }
}

/// One change in a node's fault history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaultChange {
    pub at: String,
    pub fault_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: FaultKind,
    /// `opened`, `updated` or `resolved`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub change: Change,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    pub summary: String,
}

impl FaultChange {
    pub fn of(h: &HistoryEntry) -> FaultChange {
        FaultChange {
            at: at(h.t),
            fault_id: h.fault_id.clone(),
            kind: h.kind,
            change: h.change,
            severity: h.severity,
            summary: h.summary.clone(),
        }
    }
}

/// An actuator's latest sample.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SampleView {
    pub setpoint_pct: f64,
    pub position_pct: f64,
    pub torque_nm: f64,
    pub power_w: f64,
    pub temperature_c: f64,
    /// 0 still, 1 opening, 2 closing.
    pub rotation: u8,
    pub signal_quality: Option<f64>,
}

impl SampleView {
    pub fn of(s: &Sample) -> SampleView {
        SampleView {
            setpoint_pct: short(s.setpoint_pct),
            position_pct: short(s.position_pct),
            torque_nm: short(s.torque_nm),
            power_w: short(s.power_w),
            temperature_c: short(s.temperature_c),
            rotation: s.rotation,
            signal_quality: s.signal_quality.map(short),
        }
    }
}

/// A sample with its time, as a node's `last_sample`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastSample {
    /// RFC 3339.
    pub timestamp: String,
    #[serde(flatten)]
    pub sample: SampleView,
}

impl LastSample {
    pub fn of(s: &Sample) -> LastSample {
        LastSample { timestamp: at(s.t), sample: SampleView::of(s) }
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Plant,
    Ahu,
    Actuator,
    /// A fleet of assets (`twinfault serve --facility FLEET`), whose status is its members' worst.
    Fleet,
    /// One asset of a fleet (e.g. an engine).
    Member,
}

/// One node of the live facility.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    pub id: String,
    pub kind: NodeKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    /// AHUs: the operating phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phase: Option<Phase>,
    /// Actuators: role (`unassigned` for an auto-created one), mode and device model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Created at run time from telemetry naming an unknown node (`auto_create`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_created: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample: Option<LastSample>,
    /// `GET /api/nodes/{id}` only: its open faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_faults: Option<Vec<FaultView>>,
}

impl NodeView {
    /// A node of `kind` with `status` and nothing else said about it yet.
    pub fn new(id: String, kind: NodeKind, status: Status) -> NodeView {
        NodeView {
            id,
            kind,
            status,
            parent: None,
            children: None,
            phase: None,
            role: None,
            mode: None,
            model: None,
            auto_created: false,
            device_type: None,
            last_sample: None,
            open_faults: None,
        }
    }
}

/// Building health over the actuators that have reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// The worst actuator status (`unknown` when none has reported).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: Status,
    /// Healthy share of the known actuators; null when none is known.
    pub healthy_share: Option<f64>,
    /// Actuators that have reported.
    pub known: usize,
    /// Actuators per status, every status named.
    pub actuators: BTreeMap<String, usize>,
    pub open_faults: usize,
}

impl Health {
    /// Health of actuators with these statuses and `open_faults` open faults.
    pub fn of(all: &[Status], open_faults: usize) -> Health {
        let known = all.iter().filter(|&&x| x != Status::Unknown).count();
        let healthy = all.iter().filter(|&&x| x == Status::Healthy).count();
        Health {
            status: all.iter().copied().max().unwrap_or(Status::Unknown),
            healthy_share: (known > 0).then(|| healthy as f64 / known as f64),
            known,
            actuators: status_counts(all),
            open_faults,
        }
    }
}

/// How many nodes are in each status: `{"healthy": n, …, "unknown": n}`, zeros included.
pub fn status_counts(all: &[Status]) -> BTreeMap<String, usize> {
    [Status::Healthy, Status::Warning, Status::Critical, Status::Offline, Status::Unknown]
        .into_iter()
        .map(|s| (s.as_str().to_string(), all.iter().filter(|&&x| x == s).count()))
        .collect()
}

/// `GET /api/status`: every node, the open faults worst first, building health.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusView {
    pub facility: String,
    /// The server's time, RFC 3339.
    pub time: String,
    pub health: Health,
    pub open_faults: Vec<FaultView>,
    pub nodes: Vec<NodeView>,
}

/// One point of a node's history.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    #[serde(skip_deserializing)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub t: PointTime,
    pub t_ms: u64,
    /// Null where the sample has no value (e.g. signal quality not reported).
    pub value: Option<f64>,
}

/// A point's time as RFC 3339 (written by the server; clients read `t_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PointTime(pub SimTime);

impl Serialize for PointTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at(self.0))
    }
}

impl Point {
    pub fn new(t: SimTime, value: f32) -> Point {
        let v = short(value);
        Point { t: PointTime(t), t_ms: t.0, value: v.is_finite().then_some(v) }
    }
}

/// `GET /api/nodes/{id}/history`: one page of a metric, in time order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub node: String,
    pub metric: String,
    pub points: Vec<Point>,
    /// Pass as `from` for the next page; null on the last.
    pub next_from: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reads_back_as_it_was_written() {
        let s = Sample {
            t: SimTime(1_000),
            setpoint_pct: 40.1,
            position_pct: 39.9,
            torque_nm: 0.3,
            power_w: 1.2,
            temperature_c: 27.5,
            rotation: 1,
            signal_quality: None,
        };
        let n = NodeView {
            id: "BEL-1".into(),
            kind: NodeKind::Actuator,
            status: Status::Warning,
            parent: Some("ahu-01".into()),
            children: None,
            phase: None,
            role: Some("zone_damper".into()),
            mode: Some(Mode::Ingest),
            model: Some("LM24A".into()),
            auto_created: false,
            device_type: None,
            last_sample: Some(LastSample::of(&s)),
            open_faults: None,
        };
        let v = serde_json::to_value(&n).unwrap();
        // f32 printed short; absent what does not apply; the sample's fields beside its time.
        assert_eq!(v["last_sample"]["setpoint_pct"], serde_json::json!(40.1));
        assert_eq!(v["last_sample"]["timestamp"], "1970-01-01T00:00:01.000Z");
        assert!(v.get("children").is_none() && v.get("auto_created").is_none() && v.get("open_faults").is_none());
        let back: NodeView = serde_json::from_value(v).unwrap();
        assert_eq!(back.last_sample.map(|l| l.sample.setpoint_pct), Some(40.1));
        assert_eq!((back.id, back.status, back.mode), ("BEL-1".to_string(), Status::Warning, Some(Mode::Ingest)));
    }

    #[test]
    fn health_counts_only_known_nodes() {
        let h = Health::of(&[Status::Unknown, Status::Healthy, Status::Critical], 1);
        assert_eq!((h.status, h.known, h.healthy_share), (Status::Critical, 2, Some(0.5)));
        assert_eq!(h.actuators["unknown"], 1);
        assert_eq!(h.actuators.len(), 5);
        assert_eq!(Health::of(&[Status::Unknown], 0).healthy_share, None);
        let p = serde_json::to_value(Point::new(SimTime(5), f32::NAN)).unwrap();
        assert_eq!(p, serde_json::json!({ "t": "1970-01-01T00:00:00.005Z", "t_ms": 5, "value": null }));
    }
}
