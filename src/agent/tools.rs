//! The twin's tools for the operations agent, declared once: a closed [`Tool`] parsed from a
//! model's call (name and typed arguments, refused with the field that is wrong), its JSON schema
//! for the model ([`specs`]), and one implementation of every read ([`call`]) over a [`Host`]:
//! the live server, or `agent-eval`'s finished run, which folds its event log into the same
//! [`Live`] view the server keeps. Changes are never carried out here: the host turns them into
//! pending actions.

use super::policy::Change;
use crate::live::{Live, clip};
pub use futures_util::future::LocalBoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use twinfault_core::config::NodeRef;
use twinfault_core::time::format_timestamp_ms;
use twinfault_core::types::Status;

#[derive(Deserialize, JsonSchema)]
pub struct NoArgs {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeArgs {
    /// A node id, e.g. BEL-VNT-003 or ahu-01.
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Part of a node id (case-insensitive).
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FaultArgs {
    /// A fault id as the tools give it.
    pub fault: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecentArgs {
    /// How far back to look [minutes] (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<f64>,
}

#[derive(Deserialize, JsonSchema)]
pub struct ResolveArgs {
    /// The fault id, e.g. F-BEL-VNT-003-gear_jam-1795313100000.
    pub fault: String,
    /// What was done (kept with the resolution).
    pub note: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct ClearArgs {
    /// A simulated actuator's id: its injected faults end (it is repaired).
    pub node: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct InjectArgs {
    /// A simulated actuator's id.
    pub node: String,
    /// A fault kind, e.g. stiction.
    pub kind: String,
    /// 0..1.
    pub severity: f64,
}

/// One tool call, parsed: every name the agent may call, with its arguments checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    SystemOverview,
    NodeDetails(NodeArgs),
    FaultHistory(NodeArgs),
    SearchNodes(SearchArgs),
    RunDiagnosis(NodeArgs),
    ExplainFault(FaultArgs),
    RecentChanges(RecentArgs),
    /// A change, proposed with its arguments (checked against the change's argument type).
    Propose(Change, Value),
}

/// A tool as the model sees it: name, what it does, whether it changes anything, its schema.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub changes: bool,
    pub schema: Value,
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

/// Every tool, in the order the model is offered them.
pub fn specs() -> Vec<ToolSpec> {
    let read = |name, description, schema| ToolSpec { name, description, changes: false, schema };
    let change = |c: Change, description, schema| ToolSpec { name: c.as_str(), description, changes: true, schema };
    vec![
        read(
            "system_overview",
            "Health of the facility, counts by status and the top open faults (ranked by severity, then confidence).",
            schema::<NoArgs>(),
        ),
        read(
            "node_details",
            "One node: kind, parent, status, latest sample, open faults with their evidence summary and recommended action.",
            schema::<NodeArgs>(),
        ),
        read(
            "fault_history",
            "A node's faults opening and resolving (the last 20 changes), newest last.",
            schema::<NodeArgs>(),
        ),
        read("search_nodes", "Node ids containing a text.", schema::<SearchArgs>()),
        read(
            "run_diagnosis",
            "Evaluate a node's rules now: for every rule, what it measures (unit, window), the measured value against its threshold, whether the condition holds, whether the operating phase gates it, and its finding's state (clear, confirming, open, clearing) with confirmation and clear times; plus detector notes such as learned baselines.",
            schema::<NodeArgs>(),
        ),
        read(
            "explain_fault",
            "A fault's evidence (rule summary, value, confidence, recommended action) and its causal chain: the device, its AHU and the plant with their statuses and open faults, so a symptom up the tree can be traced to its cause below.",
            schema::<FaultArgs>(),
        ),
        read(
            "recent_changes",
            "Faults opened or resolved in the last N minutes (default 60) anywhere in the facility, oldest first, with the node each is about.",
            schema::<RecentArgs>(),
        ),
        change(
            Change::ResolveFault,
            "Propose to resolve an open fault with a note. Needs an operator's approval: it only creates a pending action.",
            schema::<ResolveArgs>(),
        ),
        change(
            Change::InjectFault,
            "Propose to inject a fault into a simulated actuator. Needs an operator's approval: it only creates a pending action.",
            schema::<InjectArgs>(),
        ),
        change(
            Change::ClearFault,
            "Propose to end the injected faults of a simulated actuator (repair it). Needs an operator's approval: it only creates a pending action.",
            schema::<ClearArgs>(),
        ),
    ]
}

fn args<T: DeserializeOwned>(name: &str, v: &Value) -> Result<T, String> {
    // A model that sends no arguments for a tool without any sends `null` or `""`.
    let v = if v.is_null() { json!({}) } else { v.clone() };
    serde_json::from_value(v).map_err(|e| format!("{name}: bad arguments: {e}"))
}

impl Tool {
    /// The tool `name` with `arguments`, or why not (no such tool; a missing or mistyped field).
    pub fn parse(name: &str, arguments: &Value) -> Result<Tool, String> {
        Ok(match name {
            "system_overview" => {
                args::<NoArgs>(name, arguments)?;
                Tool::SystemOverview
            }
            "node_details" => Tool::NodeDetails(args(name, arguments)?),
            "fault_history" => Tool::FaultHistory(args(name, arguments)?),
            "search_nodes" => Tool::SearchNodes(args(name, arguments)?),
            "run_diagnosis" => Tool::RunDiagnosis(args(name, arguments)?),
            "explain_fault" => Tool::ExplainFault(args(name, arguments)?),
            "recent_changes" => Tool::RecentChanges(args(name, arguments)?),
            _ => {
                let change = Change::parse(name).ok_or_else(|| format!("no tool \"{}\"", clip(name)))?;
                match change {
                    Change::ResolveFault => drop(args::<ResolveArgs>(name, arguments)?),
                    Change::InjectFault => drop(args::<InjectArgs>(name, arguments)?),
                    Change::ClearFault => drop(args::<ClearArgs>(name, arguments)?),
                }
                Tool::Propose(change, arguments.clone())
            }
        })
    }

    /// The arguments as the model would have sent them.
    pub fn arguments(&self) -> Value {
        match self {
            Tool::SystemOverview => json!({}),
            Tool::NodeDetails(a) | Tool::FaultHistory(a) | Tool::RunDiagnosis(a) => json!(a),
            Tool::SearchNodes(a) => json!(a),
            Tool::ExplainFault(a) => json!(a),
            Tool::RecentChanges(a) => json!(a),
            Tool::Propose(_, v) => v.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Tool::SystemOverview => "system_overview",
            Tool::NodeDetails(_) => "node_details",
            Tool::FaultHistory(_) => "fault_history",
            Tool::SearchNodes(_) => "search_nodes",
            Tool::RunDiagnosis(_) => "run_diagnosis",
            Tool::ExplainFault(_) => "explain_fault",
            Tool::RecentChanges(_) => "recent_changes",
            Tool::Propose(c, _) => c.as_str(),
        }
    }
}

/// What the tools read and where proposals go: the live server, or a finished run.
pub trait Host {
    /// The twin's view: statuses, phases, last samples, open and resolved faults, histories.
    fn live(&self) -> &Live;
    /// "Now" for the twin: the wall clock on a server, the run's end in an evaluation.
    fn now_ms(&self) -> i64;
    /// A node's diagnosis now (asks its actor), or why there is none.
    fn diagnose<'a>(&'a self, node: &'a str) -> LocalBoxFuture<'a, Result<Value, String>>;
    /// A change proposed as a pending action; its description.
    fn propose(&self, change: Change, arguments: Value) -> Result<Value, String>;
    /// Ids of pending actions the agent may name.
    fn pending_ids(&self) -> Vec<String>;
    /// Audits a read.
    fn audit_read(&self, tool: &str, args: &Value, ok: bool);
}

/// The deterministic overview: also what the agent shows when no model answers.
pub fn overview(host: &dyn Host) -> Value {
    let live = host.live();
    let facility = live.facility();
    let open = live.open_faults();
    let statuses: Vec<Status> = (0..facility.actuators.len()).map(|i| live.status(NodeRef::Actuator(i))).collect();
    json!({
        "facility": facility.name,
        "time": format_timestamp_ms(host.now_ms()),
        "actuators": twinfault_wire::status_counts(&statuses),
        "open_faults": open.len(),
        "top_faults": open.iter().take(5).map(|f| json!({ "id": f.id, "node": f.device.clone().unwrap_or(f.node.clone()), "kind": f.kind,
            "severity": f.severity, "confidence": f.confidence, "opened_at": f.opened_at, "summary": f.summary,
            "recommended_action": f.recommended_action, "source": f.source })).collect::<Vec<_>>(),
    })
}

/// Node, fault and action ids that exist (to flag ids in a reply that do not).
pub fn known_ids(host: &dyn Host) -> BTreeSet<String> {
    let live = host.live();
    let mut k: BTreeSet<String> = live.facility().node_ids().into_iter().map(str::to_string).collect();
    k.extend(live.extras().into_iter().map(|(e, _)| e.id));
    k.extend(live.open_faults().into_iter().map(|f| f.id));
    k.extend(live.resolved_faults(10_000).into_iter().map(|f| f.id));
    k.extend(host.pending_ids());
    k
}

/// Carries out a read, or proposes a change through the host. Reads are audited.
pub async fn call(host: &dyn Host, tool: &Tool, raw_args: &Value) -> Result<Value, String> {
    if let Tool::Propose(change, arguments) = tool {
        return host.propose(*change, arguments.clone());
    }
    let r = match tool {
        Tool::RunDiagnosis(a) => host.diagnose(&a.node).await.map(brief_fork),
        other => read(host, other),
    };
    host.audit_read(tool.name(), raw_args, r.is_ok());
    r
}

/// An AHU's fork, as the model is shown it: the three best hypotheses (the endpoint has all 28;
/// a small model's context has no room for them).
fn brief_fork(mut diagnosis: Value) -> Value {
    if let Some(ranked) = diagnosis.pointer_mut("/fork/ranked").and_then(Value::as_array_mut) {
        ranked.truncate(3);
    }
    diagnosis
}

fn read(host: &dyn Host, tool: &Tool) -> Result<Value, String> {
    let live = host.live();
    let f = live.facility();
    let known = |id: &str| live.node_view(id).ok_or_else(|| format!("no node \"{}\"", clip(id)));
    match tool {
        Tool::SystemOverview => Ok(overview(host)),
        Tool::NodeDetails(a) => {
            let mut v = known(&a.node)?;
            v.open_faults = Some(live.open_faults_of(&a.node));
            Ok(json!(v))
        }
        Tool::FaultHistory(a) => {
            known(&a.node)?;
            // Updates (the same fault growing surer) are left out: they crowd out what changed.
            let h: Vec<_> = live
                .fault_history(&a.node)
                .into_iter()
                .filter(|c| c.change != twinfault_core::detect::Change::Updated)
                .collect();
            Ok(json!(h.iter().rev().take(20).rev().collect::<Vec<_>>()))
        }
        Tool::ExplainFault(a) => {
            let fault = live.fault(&a.fault).ok_or_else(|| format!("no fault \"{}\"", clip(&a.fault)))?;
            let device = fault.device.clone().unwrap_or(fault.node.clone());
            // Up the tree from the device (or the AHU the finding is on), with what is open at
            // each level; down from an AHU to its devices that are not healthy.
            let mut chain = Vec::new();
            let level = |id: &str, n: NodeRef| {
                json!({ "node": id, "status": live.status(n), "open_faults": live.open_faults_of(id).iter()
                    .map(|g| json!({ "id": g.id, "kind": g.kind, "summary": g.summary, "source": g.source })).collect::<Vec<_>>() })
            };
            if let Some(n @ NodeRef::Actuator(i)) = f.node(&device) {
                chain.push(level(&device, n));
                let ahu = &f.ahus[f.actuators[i].ahu].id;
                chain.push(level(ahu, NodeRef::Ahu(f.actuators[i].ahu)));
            } else if let Some(n @ NodeRef::Ahu(h)) = f.node(&fault.node) {
                chain.push(level(&fault.node, n));
                for &c in &f.ahus[h].children {
                    if live.status(NodeRef::Actuator(c)).is_alarm() {
                        chain.push(level(&f.actuators[c].id, NodeRef::Actuator(c)));
                    }
                }
            }
            if let Some(p) = &f.plant {
                chain.push(level(&p.id, NodeRef::Plant));
            }
            Ok(json!({ "fault": fault, "chain": chain }))
        }
        Tool::SearchNodes(a) => {
            let q = a.query.to_lowercase();
            let ids: Vec<&str> =
                f.node_ids().into_iter().filter(|id| id.to_lowercase().contains(&q)).take(50).collect();
            Ok(json!(ids))
        }
        Tool::RecentChanges(a) => {
            let minutes = a.minutes.filter(|m| m.is_finite() && *m > 0.0).unwrap_or(60.0);
            let since = (host.now_ms() - (minutes * 60_000.0) as i64).max(0);
            let changes = live.changes_since(twinfault_core::types::SimTime(since as u64));
            let shown: Vec<Value> = changes
                .iter()
                .rev()
                .take(50)
                .rev()
                .map(|(node, c)| json!({ "node": node, "at": c.at, "change": c.change, "fault": c.fault_id, "kind": c.kind, "severity": c.severity }))
                .collect();
            Ok(json!({ "since": format_timestamp_ms(since), "now": format_timestamp_ms(host.now_ms()),
                "changes": changes.len(), "shown": shown }))
        }
        Tool::RunDiagnosis(_) | Tool::Propose(..) => unreachable!("handled by call"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_sees_an_ahus_three_best_hypotheses() {
        let ranked: Vec<Value> = (0..28).map(|i| json!({ "score": i })).collect();
        let d = brief_fork(json!({ "node": "ahu-02", "fork": { "ranked": ranked, "samples": 120 } }));
        assert_eq!(d["fork"]["ranked"].as_array().unwrap().len(), 3);
        assert_eq!(d["fork"]["ranked"][0]["score"], 0);
        assert_eq!(d["fork"]["samples"], 120);
        // A device's diagnosis has no fork and passes unchanged.
        assert_eq!(brief_fork(json!({ "node": "BEL-VNT-001" })), json!({ "node": "BEL-VNT-001" }));
    }

    #[test]
    fn schemas_come_from_the_argument_types() {
        let t = specs();
        let resolve = t.iter().find(|t| t.name == "resolve_fault").unwrap();
        assert!(resolve.changes);
        assert!(resolve.schema["properties"]["note"].is_object(), "{}", resolve.schema);
        let req = resolve.schema["required"].as_array().unwrap();
        assert!(req.contains(&json!("fault")) && req.contains(&json!("note")));
        assert_eq!(t.iter().filter(|t| !t.changes).count(), 7);
        // Every offered name parses (with its arguments) to the tool of that name.
        let example = |s: &ToolSpec| match s.name {
            "system_overview" => json!({}),
            "search_nodes" => json!({ "query": "vnt" }),
            "explain_fault" => json!({ "fault": "F-x" }),
            "recent_changes" => json!({ "minutes": 30 }),
            "resolve_fault" => json!({ "fault": "F-x", "note": "n" }),
            "inject_fault" => json!({ "node": "BEL-VNT-001", "kind": "stiction", "severity": 0.5 }),
            _ => json!({ "node": "BEL-VNT-001" }),
        };
        for s in &t {
            assert_eq!(Tool::parse(s.name, &example(s)).unwrap().name(), s.name);
        }
    }

    #[test]
    fn unknown_names_and_bad_arguments_are_refused() {
        assert!(Tool::parse("drop_tables", &json!({})).unwrap_err().contains("no tool"));
        // The old fall-through carried any other name out as an injection.
        assert!(Tool::parse("inject_faults", &json!({})).is_err());
        let e = Tool::parse("resolve_fault", &json!({ "fault": "F-x" })).unwrap_err();
        assert!(e.contains("note"), "{e}");
        let e =
            Tool::parse("inject_fault", &json!({ "node": "x", "kind": "stiction", "severity": "high" })).unwrap_err();
        assert!(e.contains("inject_fault"), "{e}");
        assert!(Tool::parse("node_details", &json!({})).unwrap_err().contains("node"));
        assert_eq!(Tool::parse("system_overview", &Value::Null), Ok(Tool::SystemOverview));
    }
}
