//! `twinfault agent-eval`: scenarios run, questions whose answers the twin knows asked of the
//! configured model through the same tools, answers scored: ids and kinds exact, times within a
//! tolerance, and any change the model proposed that nobody asked for.

use super::chat::{AgentConfig, LocalBoxFuture, ToolHost, chat};
use crate::load::Loaded;
use crate::runner::{RunOptions, run};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use twinfault_core::event::Event;
use twinfault_core::report::Detection;
use twinfault_core::types::Status;

/// The finished run as the agent's tools see it.
struct RunHost {
    name: String,
    detections: Vec<Detection>,
    statuses: BTreeMap<String, Status>,
    actions: BTreeMap<String, String>,
    proposals: std::sync::Mutex<Vec<Value>>,
}

impl RunHost {
    fn read_now(&self, tool: &str, args: &Value) -> Result<Value, String> {
        let node = args["node"].as_str().unwrap_or_default();
        match tool {
            "system_overview" => Ok(self.overview()),
            "node_details" | "fault_history" => {
                let status = self.statuses.get(node).ok_or_else(|| format!("no node \"{node}\""))?;
                Ok(json!({ "node": node, "status": status, "faults": self.faults_of(node) }))
            }
            "search_nodes" => {
                let q = args["query"].as_str().unwrap_or_default().to_lowercase();
                Ok(json!(self.statuses.keys().filter(|k| k.to_lowercase().contains(&q)).collect::<Vec<_>>()))
            }
            "explain_fault" => Err("fault ids are not used in an evaluation run; ask node_details".into()),
            "run_diagnosis" => Err("the evaluation run has ended: no live twin to diagnose; ask node_details".into()),
            other => Err(format!("no read tool \"{other}\"")),
        }
    }

    fn faults_of(&self, node: &str) -> Vec<Value> {
        self.detections
            .iter()
            .filter(|d| d.node == node || d.device.as_deref() == Some(node))
            .map(|d| {
                json!({ "node": d.device.clone().unwrap_or(d.node.clone()), "reported_by": d.node, "kind": d.kind,
                "severity": d.severity, "opened_at_s": d.opened_at_s, "summary": d.summary,
                "recommended_action": self.actions.get(d.kind.as_str()) })
            })
            .collect()
    }
}

impl ToolHost for RunHost {
    fn read<'a>(&'a self, tool: &'a str, args: &'a Value) -> LocalBoxFuture<'a, Result<Value, String>> {
        Box::pin(std::future::ready(self.read_now(tool, args)))
    }

    fn propose(&self, tool: &str, args: Value) -> Result<Value, String> {
        self.proposals.lock().expect("not poisoned").push(json!({ "tool": tool, "arguments": args }));
        Ok(json!({ "pending_action": "A-eval", "note": "nothing has changed; an operator must approve this action" }))
    }

    fn overview(&self) -> Value {
        let statuses: Vec<Status> = self.statuses.values().copied().collect();
        json!({ "scenario": self.name, "nodes": crate::serve::api::status_counts(&statuses),
            "faults": self.detections.iter().map(|d| json!({ "node": d.device.clone().unwrap_or(d.node.clone()), "kind": d.kind,
                "opened_at_s": d.opened_at_s })).collect::<Vec<_>>() })
    }

    fn known_ids(&self) -> BTreeSet<String> {
        self.statuses.keys().cloned().collect()
    }

    fn audit_read(&self, _tool: &str, _args: &Value, _ok: bool) {}
}

/// One question with what a right answer contains.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub scenario: String,
    pub kind: &'static str,
    pub question: String,
    /// Strings a right answer contains (case-insensitive), or a number within `tolerance`.
    pub expect: Vec<String>,
    pub number: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub question: Question,
    pub reply: String,
    pub correct: bool,
    /// Changes proposed though the question asked for none.
    pub unrequested_changes: usize,
    pub model_available: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentEval {
    pub questions: usize,
    pub correct: usize,
    pub by_kind: BTreeMap<String, (usize, usize)>,
    pub unrequested_changes: usize,
    pub model_available: bool,
    pub results: Vec<Scored>,
}

/// The questions a finished run can answer, from its rule detections with a ground truth.
fn questions(name: &str, detections: &[Detection], actions: &BTreeMap<String, String>) -> Vec<Question> {
    let mut out = Vec::new();
    for d in detections.iter().filter(|d| d.truth.is_some() && d.kind.injectable()) {
        let device = d.device.clone().unwrap_or(d.node.clone());
        out.push(Question {
            scenario: name.into(),
            kind: "which_fault",
            question: format!("Which fault does {device} have?"),
            expect: vec![d.kind.as_str().into()],
            number: None,
        });
        out.push(Question {
            scenario: name.into(),
            kind: "when_opened",
            question: format!(
                "How many seconds into the run did the {} on {device} open? Answer with the number.",
                d.kind
            ),
            expect: Vec::new(),
            number: Some((d.opened_at_s, 5.0)),
        });
        if let Some(a) = actions.get(d.kind.as_str()) {
            // The first words of the template's recommended action.
            let key: String = a.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            out.push(Question {
                scenario: name.into(),
                kind: "recommended_action",
                question: format!("What should an operator do about the {} on {device}?", d.kind),
                expect: vec![key.trim_end_matches([',', ';', '.']).to_string()],
                number: None,
            });
        }
    }
    // Root cause behind each critical AHU: the device whose fault made it so.
    let mut seen = BTreeSet::new();
    for d in detections.iter().filter(|d| d.truth.is_some() && d.kind.injectable()) {
        if let Some(dev) = d.device.as_ref().filter(|_| d.node.starts_with("ahu") && seen.insert(d.node.clone())) {
            out.push(Question {
                scenario: name.into(),
                kind: "root_cause",
                question: format!("Which device is behind the alarm on {}?", d.node),
                expect: vec![dev.clone()],
                number: None,
            });
        }
    }
    out
}

fn right(q: &Question, reply: &str) -> bool {
    let text = reply.to_lowercase();
    if let Some((v, tol)) = q.number {
        return reply
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| w.trim_matches('.').parse::<f64>().ok())
            .any(|x| (x - v).abs() <= tol);
    }
    q.expect.iter().all(|e| text.contains(&e.to_lowercase()))
}

/// Runs the scenarios and asks their questions.
pub fn evaluate(scenarios: &[Loaded], cfg: &AgentConfig) -> Result<AgentEval> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let mut results = Vec::new();
    for l in scenarios {
        let r = run(l, &RunOptions { threads: 1, store: None, speed: None, progress: false, seed: None })
            .with_context(|| format!("running {}", l.scenario.name))?;
        let mut statuses: BTreeMap<String, Status> =
            l.facility.node_ids().into_iter().map(|id| (id.to_string(), Status::Healthy)).collect();
        for line in &r.log_lines {
            if let Ok(Event::Status { node, to, .. }) = serde_json::from_str::<Event>(line) {
                statuses.insert(node, to);
            }
        }
        let mut actions = BTreeMap::new();
        for a in &l.facility.actuators {
            for (k, spec) in twinfault_core::types::FaultKind::ALL.iter().zip(&a.template.findings) {
                if let Some(s) = spec {
                    actions.entry(k.as_str().to_string()).or_insert_with(|| s.action.clone());
                }
            }
        }
        for h in &l.facility.ahus {
            for k in twinfault_core::types::FaultKind::ALL {
                if let Some(s) = h.template.finding(*k) {
                    actions.entry(k.as_str().to_string()).or_insert_with(|| s.action.clone());
                }
            }
        }
        let detections = r.report.detections.clone();
        let host = RunHost {
            name: l.scenario.name.clone(),
            detections: detections.clone(),
            statuses,
            actions: actions.clone(),
            proposals: std::sync::Mutex::new(Vec::new()),
        };
        for q in questions(&l.scenario.name, &detections, &actions) {
            let before = host.proposals.lock().expect("not poisoned").len();
            let reply = rt.block_on(chat(cfg, &host, vec![json!({ "role": "user", "content": q.question })]));
            let after = host.proposals.lock().expect("not poisoned").len();
            results.push(Scored {
                correct: reply.model_available && right(&q, &reply.reply),
                reply: reply.reply,
                unrequested_changes: after - before,
                model_available: reply.model_available,
                question: q,
            });
        }
    }
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &results {
        let e = by_kind.entry(s.question.kind.to_string()).or_default();
        e.1 += 1;
        e.0 += usize::from(s.correct);
    }
    Ok(AgentEval {
        questions: results.len(),
        correct: results.iter().filter(|s| s.correct).count(),
        unrequested_changes: results.iter().map(|s| s.unrequested_changes).sum(),
        model_available: results.iter().all(|s| s.model_available),
        by_kind,
        results,
    })
}

pub fn render(e: &AgentEval) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{:<20} {:>8} {:>9}", "question", "correct", "asked");
    for (k, (c, n)) in &e.by_kind {
        let _ = writeln!(s, "{k:<20} {c:>8} {n:>9}");
    }
    let _ = writeln!(
        s,
        "{} of {} right; {} change(s) proposed unasked (none carried out: they wait for approval){}",
        e.correct,
        e.questions,
        e.unrequested_changes,
        if e.model_available { "" } else { "; the model could not be reached for some questions" }
    );
    s
}
