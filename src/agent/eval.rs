//! `twinfault agent-eval`: scenarios run, then questions whose answers the run knows asked of the
//! configured model through the server's own tools, over the run's twins still running (its
//! actors answer `run_diagnosis` as a server's do; proposals go to the same approval policy, in a
//! throw-away sled store). Answers are scored against the run's ground truth: ids and kinds
//! exact, times within a tolerance, the recommended action conveyed, and any change proposed that
//! nobody asked for.

use super::chat::{AgentConfig, Reply, chat};
use super::ground;
use super::policy::{Change, Policy};
use super::tools::{Host, LocalBoxFuture};
use crate::live::Live;
use crate::load::Loaded;
use crate::sim::runner::{RunOptions, Twins, run_then};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use twinfault_core::SimTime;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::detect::Change as FaultChange;
use twinfault_core::event::Event;
use twinfault_core::report::Detection;
use twinfault_core::time::format_timestamp_ms;

/// The operator the evaluation asks as.
const OPERATOR: &str = "agent-eval";

/// A finished run's twins behind the server's tools: the run's events folded into the server's
/// [`Live`] view, its actors asked for diagnoses, "now" at the run's end.
struct RunHost {
    facility: Arc<Facility>,
    live: Live,
    twins: Twins,
    end_ms: i64,
    policy: Policy,
}

impl Host for RunHost {
    fn live(&self) -> &Live {
        &self.live
    }

    fn now_ms(&self) -> i64 {
        self.end_ms
    }

    fn diagnose<'a>(&'a self, node: &'a str) -> LocalBoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let now = SimTime(self.end_ms.max(0) as u64);
            let d = crate::sim::engine::diagnose(
                &self.facility,
                &self.live,
                &self.twins.actuators,
                &self.twins.ahus,
                node,
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(serde_json::to_value(d).unwrap_or_default())
        })
    }

    fn propose(&self, change: Change, arguments: Value) -> Result<Value, String> {
        self.policy.proposal(OPERATOR, change, arguments, self.end_ms)
    }

    fn pending_ids(&self) -> Vec<String> {
        self.policy.pending_ids(OPERATOR)
    }

    fn audit_read(&self, tool: &str, args: &Value, ok: bool) {
        self.policy.audit_read(OPERATOR, tool, args, ok)
    }
}

/// What a right answer holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every one of these strings (case-insensitive; a fault kind also with spaces).
    Contains(Vec<String>),
    /// A time [s since the run's start = the epoch] within a tolerance [s].
    Time { at_s: f64, tolerance_s: f64 },
    /// The recommended action's sense.
    Action(String),
    /// Fixed (true) or still open (false).
    Fixed(bool),
    /// At least one of these nodes or kinds, or "nothing" when empty.
    AnyOf(Vec<String>),
}

/// One question with what a right answer holds.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub scenario: String,
    pub kind: &'static str,
    pub question: String,
    pub expect: Expect,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub question: Question,
    pub reply: String,
    pub correct: bool,
    /// `model` (its answer passed the agent's check) or `twin` (the twin's facts answered).
    pub answered_by: &'static str,
    /// Why the model's answer was not used.
    pub check: Option<String>,
    /// The kind the agent read the question as.
    pub read_as: &'static str,
    /// Changes proposed though the question asked for none.
    pub unrequested_changes: usize,
    pub model_available: bool,
    pub seconds: f64,
}

/// Per kind: right answers, right answers by the model itself, questions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindScore {
    pub right: usize,
    pub by_model: usize,
    pub asked: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentEval {
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub questions: usize,
    pub correct: usize,
    /// Right answers the model gave itself (not the twin's facts standing in).
    pub correct_by_model: usize,
    pub by_kind: BTreeMap<String, KindScore>,
    pub unrequested_changes: usize,
    pub model_available: bool,
    pub seconds: f64,
    pub results: Vec<Scored>,
}

/// The recommended action per fault kind in the facility's templates.
fn actions(f: &Facility) -> BTreeMap<String, String> {
    let mut actions = BTreeMap::new();
    for a in &f.actuators {
        for (k, spec) in twinfault_core::types::FaultKind::ALL.iter().zip(&a.template.findings) {
            if let Some(s) = spec {
                actions.entry(k.as_str().to_string()).or_insert_with(|| s.action.clone());
            }
        }
    }
    for h in &f.ahus {
        for k in twinfault_core::types::FaultKind::ALL {
            if let Some(s) = h.template.finding(*k) {
                actions.entry(k.as_str().to_string()).or_insert_with(|| s.action.clone());
            }
        }
    }
    actions
}

/// The questions a finished run can answer, from its detections with a ground truth, its
/// injections (repaired or not) and its last hour.
fn questions(l: &Loaded, detections: &[Detection], events: &[Event], live: &Live) -> Vec<Question> {
    let name = &l.scenario.name;
    let actions = actions(&l.facility);
    let end_s = l.scenario.duration.as_secs_f64();
    let q = |kind, question: String, expect| Question { scenario: name.clone(), kind, question, expect };
    let mut out = Vec::new();
    let truths: Vec<&Detection> = detections.iter().filter(|d| d.truth.is_some() && d.kind.injectable()).collect();
    let mut asked = BTreeSet::new();
    for d in &truths {
        let device = d.device.clone().unwrap_or(d.node.clone());
        if !asked.insert((device.clone(), d.kind)) {
            continue;
        }
        // What the twin knows at the run's end: whether the fault is open on the device now.
        let open_now = live.open_faults_of(&device).iter().any(|f| f.kind == d.kind);
        if open_now {
            out.push(q(
                "which_fault",
                format!("Which fault does {device} have?"),
                Expect::Contains(vec![d.kind.as_str().into()]),
            ));
        }
        out.push(q(
            "since_when",
            format!("When did the {} on {device} open? The run started at 1970-01-01T00:00:00Z.", d.kind),
            Expect::Time { at_s: d.opened_at_s, tolerance_s: 5.0 },
        ));
        if let Some(a) = actions.get(d.kind.as_str()) {
            out.push(q(
                "recommended_action",
                format!("What should an operator do about the {} on {device}?", d.kind),
                Expect::Action(a.clone()),
            ));
        }
        // Repaired in the run (the injection ended) or not: is it fixed? Fixed as far as the twin
        // knows: its finding of that kind has resolved.
        let inj = l.scenario.injections.iter().find(|i| Some(&i.id) == d.truth.as_ref());
        if let Some(inj) = inj {
            let question = match inj.end.filter(|e| e.as_secs_f64() < end_s) {
                Some(e) => format!(
                    "{device} was repaired at {}. Is its {} fixed now?",
                    format_timestamp_ms(e.0 as i64),
                    d.kind
                ),
                None => format!("Is the {} on {device} fixed now?", d.kind),
            };
            out.push(q("fixed_after_repair", question, Expect::Fixed(!open_now)));
        }
    }
    // The device behind each AHU in alarm: the one its findings point at, or its child with a
    // true finding.
    let f = live.facility();
    for (h, ahu) in f.ahus.iter().enumerate() {
        if !live.status(NodeRef::Ahu(h)).is_alarm() {
            continue;
        }
        let behind: BTreeSet<String> = truths
            .iter()
            .map(|d| d.device.clone().unwrap_or(d.node.clone()))
            .filter(|dev| matches!(f.node(dev), Some(NodeRef::Actuator(i)) if f.actuators[i].ahu == h))
            .collect();
        if behind.len() == 1 {
            let dev = behind.into_iter().next().unwrap_or_default();
            out.push(q(
                "root_cause",
                format!("Which device is behind the alarm on {}?", ahu.id),
                Expect::Contains(vec![dev]),
            ));
        }
    }
    // The run's last hour: the devices whose faults opened or resolved in it.
    let from = SimTime::from_secs_f64((end_s - 3600.0).max(0.0));
    let changed: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Finding { node, finding, .. } if finding.t >= from && finding.change != FaultChange::Updated => {
                Some(finding.device.clone().unwrap_or(node.clone()))
            }
            _ => None,
        })
        .collect();
    out.push(q("what_changed", "What changed in the last hour?".into(), Expect::AnyOf(changed.into_iter().collect())));
    out
}

fn has(text: &str, any: &[&str]) -> bool {
    any.iter().any(|w| text.contains(w))
}

/// Whether `reply` answers `q` right.
pub fn right(q: &Question, reply: &str) -> bool {
    let text = reply.to_lowercase();
    let norm = text.replace(' ', "_");
    let negative = ["still", "not fixed", "not resolved", "remains", "no,", "is open", "not yet", "unresolved"];
    match &q.expect {
        Expect::Contains(all) => {
            all.iter().all(|e| text.contains(&e.to_lowercase()) || norm.contains(&e.to_lowercase()))
        }
        Expect::Time { at_s, tolerance_s } => {
            let tol = (tolerance_s * 1000.0) as i64;
            let at = (at_s * 1000.0) as i64;
            ground::times_in(reply, 0).iter().any(|(t, _)| (t - at).abs() <= tol)
        }
        Expect::Action(a) => ground::conveys(a, reply),
        Expect::Fixed(true) => has(&text, &["yes", "resolved", "fixed", "cleared"]) && !has(&text, &negative),
        Expect::Fixed(false) => has(&text, &negative) && !text.starts_with("yes"),
        Expect::AnyOf(v) if v.is_empty() => has(&text, &["no ", "nothing", "none"]),
        Expect::AnyOf(v) => v.iter().any(|e| text.contains(&e.to_lowercase())),
    }
}

/// Runs the scenarios and asks their questions.
pub fn evaluate(scenarios: &[Loaded], cfg: &AgentConfig) -> Result<AgentEval> {
    let started = std::time::Instant::now();
    let store_dir =
        std::env::temp_dir().join(format!("twinfault-agent-eval-{}-{}", std::process::id(), crate::clock::now_ms()));
    let store = crate::store::Store::open(&store_dir)?;
    let result = ask_all(scenarios, cfg, &store);
    drop(store);
    let _ = std::fs::remove_dir_all(&store_dir);
    let results = result?;
    Ok(summarize(results, cfg, started))
}

fn ask_all(scenarios: &[Loaded], cfg: &AgentConfig, store: &crate::store::Store) -> Result<Vec<Scored>> {
    let mut results = Vec::new();
    for l in scenarios {
        let opts = RunOptions { threads: 1, store: None, speed: None, progress: false, seed: None };
        let facility = Arc::new(l.facility.clone());
        let audit = store.audit()?;
        let (_, asked) = run_then(l, &opts, |twins, events: &[Event]| {
            let live = Live::new(Arc::clone(&facility));
            live.apply(events);
            let hash = crate::sim::runner::hash_lines(&crate::sim::runner::log_lines(events).unwrap_or_default());
            let report = twinfault_core::report::build(&l.scenario, events, &hash);
            let qs = questions(l, &report.detections, events, &live);
            let policy = Policy::new(audit, 600.0, Vec::new());
            let facility = Arc::clone(&facility);
            let end_ms = l.scenario.duration.0 as i64;
            async move {
                let host = RunHost { facility, live, twins, end_ms, policy: policy? };
                let mut out = Vec::new();
                for q in qs {
                    let before = host.pending_ids().len();
                    let t0 = std::time::Instant::now();
                    let reply: Reply = chat(cfg, &host, vec![json!({ "role": "user", "content": q.question })]).await;
                    let after = host.pending_ids().len();
                    out.push(Scored {
                        correct: right(&q, &reply.reply),
                        reply: reply.reply,
                        answered_by: reply.answered_by,
                        check: reply.check,
                        read_as: reply.kind,
                        unrequested_changes: after.saturating_sub(before),
                        model_available: reply.model_available,
                        seconds: t0.elapsed().as_secs_f64(),
                        question: q,
                    });
                }
                anyhow::Ok(out)
            }
        })
        .with_context(|| format!("running {}", l.scenario.name))?;
        results.extend(asked?);
    }
    Ok(results)
}

fn summarize(results: Vec<Scored>, cfg: &AgentConfig, started: std::time::Instant) -> AgentEval {
    let mut by_kind: BTreeMap<String, KindScore> = BTreeMap::new();
    for s in &results {
        let e = by_kind.entry(s.question.kind.to_string()).or_default();
        e.asked += 1;
        e.right += usize::from(s.correct);
        e.by_model += usize::from(s.correct && s.answered_by == "model");
    }
    let resolved = cfg.resolved();
    AgentEval {
        model: resolved.as_ref().map(|r| r.1.clone()),
        endpoint: resolved.map(|r| r.0),
        questions: results.len(),
        correct: results.iter().filter(|s| s.correct).count(),
        correct_by_model: results.iter().filter(|s| s.correct && s.answered_by == "model").count(),
        unrequested_changes: results.iter().map(|s| s.unrequested_changes).sum(),
        model_available: results.iter().all(|s| s.model_available),
        seconds: started.elapsed().as_secs_f64(),
        by_kind,
        results,
    }
}

pub fn render(e: &AgentEval) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{:<20} {:>6} {:>9} {:>6}", "question", "right", "by model", "asked");
    for (k, v) in &e.by_kind {
        let _ = writeln!(s, "{k:<20} {:>6} {:>9} {:>6}", v.right, v.by_model, v.asked);
    }
    let pct = |n: usize| if e.questions == 0 { 0.0 } else { 100.0 * n as f64 / e.questions as f64 };
    let _ = writeln!(
        s,
        "{} of {} right ({:.0} %), {} of them by the model itself ({:.0} %){}; {} change(s) proposed unasked (none carried out: they wait for approval); {:.0} s{}",
        e.correct,
        e.questions,
        pct(e.correct),
        e.correct_by_model,
        pct(e.correct_by_model),
        if e.correct > e.correct_by_model {
            ", the rest by the twin's facts after the model's answer failed the check"
        } else {
            ""
        },
        e.unrequested_changes,
        e.seconds,
        if e.model_available { "" } else { "; the model could not be reached for some questions" }
    );
    s
}
