//! Grounding a small model in the twin: what a question asks ([`Intent`]), the tool calls the
//! agent makes itself before the model speaks ([`calls`]), the check of the model's answer against
//! the twin ([`verify`]), and the answer from the twin's own facts when the model's fails
//! ([`facts_answer`]).
//!
//! A 1.5B model left alone picks the wrong tool, invents ids and ends with an empty message; given
//! the facts, asked for a short answer and checked, it answers most questions right, and the
//! operator gets the twin's facts (said so) for the rest.

use super::tools::{Host, NodeArgs, RecentArgs, Tool, specs};
use twinfault_core::config::NodeRef;
use twinfault_core::time::{format_timestamp_ms, parse_timestamp_ms};
use twinfault_core::types::FaultKind;
use twinfault_wire::FaultView;

/// What a question asks, as far as a few words tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Which fault a node has.
    WhichFault,
    /// When (since when) a fault opened.
    Since,
    /// What an operator should do about it.
    Action,
    /// Which device is behind an AHU's alarm.
    RootCause,
    /// Whether a fault is gone (after a repair, a resolution).
    Fixed,
    /// What changed lately.
    Changed,
    /// How the facility is.
    Overview,
    /// A change asked for (resolve, inject, repair): the model proposes it, an operator approves.
    Change,
    /// Anything else: the model chooses its tools.
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WhichFault => "which_fault",
            Kind::Since => "since_when",
            Kind::Action => "recommended_action",
            Kind::RootCause => "root_cause",
            Kind::Fixed => "fixed_after_repair",
            Kind::Changed => "what_changed",
            Kind::Overview => "overview",
            Kind::Change => "change",
            Kind::Other => "other",
        }
    }
}

impl Kind {
    /// What a right answer to this kind of question says, for the model (read off the facts).
    pub fn answer_shape(self) -> &'static str {
        match self {
            Kind::WhichFault => {
                "Name the fault's kind exactly as in its `kind` field (for example gear_jam), its severity and its id."
            }
            Kind::Since => "Give the time the fault opened, its `opened_at`, exactly as written.",
            Kind::Action => "Say what to do: the fault's `recommended_action`, in your own words.",
            Kind::RootCause => {
                "Name the device: the `device` of the AHU's open finding, or the device below the AHU that is in alarm."
            }
            Kind::Fixed => {
                "Look at node_details `open_faults`: if the fault is listed there it is still open and NOT fixed; say so, with the fault's kind."
            }
            Kind::Changed => {
                "List each fault in recent_changes `shown`: its kind, its node, whether it opened or resolved, and when."
            }
            Kind::Overview => "Give the counts by status and the worst open faults with their node and kind.",
            Kind::Change | Kind::Other => "",
        }
    }
}

/// A question's kind and the ids it names that the twin knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub kind: Kind,
    /// Node ids named, as the twin spells them, in the order named.
    pub nodes: Vec<String>,
    /// Fault ids named.
    pub faults: Vec<String>,
    /// A fault kind named (`gear_jam`, or `gear jam`).
    pub fault_kind: Option<FaultKind>,
    /// "in the last N minutes / hours" [minutes].
    pub minutes: Option<f64>,
}

impl Intent {
    /// Whether the facts the agent gathers answer the question, so the model only has to say it
    /// (it is then asked for text, without tools).
    pub fn answerable_from_facts(&self) -> bool {
        match self.kind {
            Kind::WhichFault | Kind::Since | Kind::Action | Kind::Fixed => !self.nodes.is_empty(),
            Kind::RootCause => !self.nodes.is_empty() || !self.faults.is_empty(),
            Kind::Changed | Kind::Overview => true,
            Kind::Change | Kind::Other => false,
        }
    }
}

fn has(q: &str, any: &[&str]) -> bool {
    any.iter().any(|w| q.contains(w))
}

/// Words of `text` (ids keep their dashes and underscores).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).filter(|w| !w.is_empty())
}

/// The kind of `question` and the ids in it the twin knows.
pub fn intent(question: &str, host: &dyn Host) -> Intent {
    let live = host.live();
    let q = format!(" {} ", question.to_lowercase());
    // A word is a node as written, in capitals or in small letters (ids are looked up, not
    // scanned: a facility may hold a million).
    let find = |w: &str| {
        [w.to_string(), w.to_uppercase(), w.to_lowercase()].into_iter().find_map(|c| {
            let f = live.facility();
            f.node(&c).map(|n| f.node_id(n).to_string()).or_else(|| live.extra(&c).map(|_| c.clone()))
        })
    };
    let mut nodes = Vec::new();
    let mut faults = Vec::new();
    for w in words(question) {
        let w = w.trim_matches(|c| c == '-' || c == '_');
        if let Some(id) = find(w) {
            if !nodes.contains(&id) {
                nodes.push(id);
            }
        } else if w.starts_with("F-") && live.fault(w).is_some() && !faults.iter().any(|f| f == w) {
            faults.push(w.to_string());
        }
    }
    let fault_kind = FaultKind::ALL.iter().copied().find(|k| {
        let name = k.as_str();
        q.contains(name) || q.contains(&name.replace('_', " "))
    });
    let minutes = {
        let ws: Vec<&str> = q.split_whitespace().collect();
        ws.windows(2).find_map(|p| {
            let n: f64 = p[0].parse().ok()?;
            if p[1].starts_with("minute") || p[1] == "min" {
                Some(n)
            } else if p[1].starts_with("hour") {
                Some(n * 60.0)
            } else {
                None
            }
        })
    }
    .or_else(|| has(&q, &["last hour", "past hour"]).then_some(60.0))
    .or_else(|| has(&q, &["today", "last day", "24 hours"]).then_some(24.0 * 60.0));
    let kind = if has(
        &q,
        &[
            " fixed",
            "still ",
            "been resolved",
            "is it resolved",
            "back to normal",
            "healthy again",
            "gone now",
            "cleared now",
        ],
    ) {
        Kind::Fixed
    } else if has(&q, &[" inject", " resolve ", " mark ", " clear ", " repair ", " approve", "please resolve"])
        || q.trim_start().starts_with("resolve")
        || q.trim_start().starts_with("repair")
    {
        Kind::Change
    } else if has(&q, &[" behind ", "root cause", " caused", " cause ", "responsible", "which device", "what device"]) {
        Kind::RootCause
    } else if has(&q, &[" when ", "since when", "how long", "what time", " since "]) {
        Kind::Since
    } else if has(
        &q,
        &["should", "what to do", "recommend", "how do i fix", "how to fix", "what do i do", "next step", " do about"],
    ) {
        Kind::Action
    } else if has(&q, &["changed", "what happened", "recent", "new fault", "last hour", "past hour"]) {
        Kind::Changed
    } else if has(
        &q,
        &[
            "which fault",
            "what fault",
            "what is wrong",
            "what's wrong",
            "what kind",
            "fault does",
            "faults does",
            "what problem",
        ],
    ) {
        Kind::WhichFault
    } else if has(&q, &["overview", "status", "how is", "how are", "summary", "top fault", "health"]) {
        Kind::Overview
    } else {
        Kind::Other
    };
    Intent { kind, nodes, faults, fault_kind, minutes }
}

/// The fault a question about `node` is about: its open fault of the kind named (or its worst
/// open one), else its latest resolved one of that kind.
pub fn subject_fault(host: &dyn Host, node: &str, kind: Option<FaultKind>) -> Option<FaultView> {
    let live = host.live();
    let fits = |f: &FaultView| kind.is_none_or(|k| f.kind == k);
    let mut open = live.open_faults_of(node);
    // Rule findings first (a model's verdict sets no status), then the worst.
    open.sort_by_key(|f| (f.source != twinfault_core::detect::Source::Rule, std::cmp::Reverse(f.severity)));
    open.into_iter().find(|f| fits(f)).or_else(|| {
        live.resolved_faults(10_000).into_iter().find(|f| f.device.as_deref().unwrap_or(&f.node) == node && fits(f))
    })
}

/// The calls the agent makes itself before the model speaks: the overview, each node the
/// question names, and the one the question's kind needs.
pub fn calls(intent: &Intent, host: &dyn Host) -> Vec<Tool> {
    let mut out = vec![Tool::SystemOverview];
    let node = |n: &str| NodeArgs { node: n.to_string() };
    for n in intent.nodes.iter().take(3) {
        out.push(Tool::NodeDetails(node(n)));
    }
    let first = intent.nodes.first();
    match intent.kind {
        Kind::RootCause => {
            let fault = intent
                .faults
                .first()
                .cloned()
                .or_else(|| first.and_then(|n| subject_fault(host, n, intent.fault_kind)).map(|f| f.id));
            if let Some(f) = fault {
                out.push(Tool::ExplainFault(super::tools::FaultArgs { fault: f }));
            }
        }
        Kind::Fixed => {
            if let Some(n) = first {
                out.push(Tool::FaultHistory(node(n)));
            }
        }
        Kind::Changed => out.push(Tool::RecentChanges(RecentArgs { minutes: intent.minutes })),
        _ => {}
    }
    out
}

/// Times in `text`, in ms since the epoch: timestamps (`2026-12-03T10:15:00Z`), clock times
/// (`10:15:00`, `10:15`) on `day_ms`'s UTC day, and plain numbers of seconds since the epoch
/// (a simulated run starts there). With the tolerance each form allows [ms].
pub fn times_in(text: &str, day_ms: i64) -> Vec<(i64, i64)> {
    let day = day_ms.div_euclid(86_400_000) * 86_400_000;
    let day_text = format_timestamp_ms(day);
    let date = &day_text[..10];
    let mut out = Vec::new();
    for w in text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '`' | '*')) {
        let w = w.trim_end_matches(['.', ':']);
        if let Some(ms) = parse_timestamp_ms(w) {
            out.push((ms, 5_000));
        } else if w.matches(':').count() == 2
            && let Some(ms) = parse_timestamp_ms(&format!("{date}T{w}Z"))
        {
            out.push((ms, 5_000));
        } else if w.matches(':').count() == 1
            && let Some(ms) = parse_timestamp_ms(&format!("{date}T{w}:00Z"))
        {
            out.push((ms, 60_000));
        } else if let Ok(n) = w.trim_end_matches('s').parse::<f64>()
            && n.is_finite()
        {
            // A number of seconds (`130`, `130.5`, `130s`), not a part of a date.
            out.push(((n * 1000.0) as i64, 5_000));
        }
    }
    out
}

/// Significant words of a recommended action (to see whether an answer conveys it).
fn content_words(text: &str) -> Vec<String> {
    const STOP: [&str; 12] =
        ["the", "and", "for", "with", "that", "this", "from", "then", "into", "its", "their", "check"];
    words(&text.to_lowercase()).filter(|w| w.len() >= 4 && !STOP.contains(w)).map(str::to_string).collect()
}

/// Whether `text` conveys the recommended `action`: at least half of its significant words (of
/// the first six), each matched on its first five letters ("inspect" for "inspection").
pub fn conveys(action: &str, text: &str) -> bool {
    let want = content_words(action);
    let got = content_words(text);
    let stem = |w: &str| w.chars().take(5).collect::<String>();
    let shared = want.iter().take(6).filter(|w| got.iter().any(|g| stem(g) == stem(w))).count();
    want.is_empty() || shared * 2 >= want.len().min(6)
}

/// Whether `answer` says the same as the twin on the question's point; why not if it does not.
pub fn verify(intent: &Intent, host: &dyn Host, answer: &str, unverified: &[String]) -> Result<(), String> {
    let text = answer.trim();
    if text.is_empty() {
        return Err("the answer was empty".into());
    }
    if !unverified.is_empty() {
        return Err(format!("it names ids the twin does not know ({})", unverified.join(", ")));
    }
    let lower = text.to_lowercase();
    let norm = lower.replace(' ', "_");
    if intent.kind != Kind::Change
        && (specs().iter().any(|s| lower.contains(s.name))
            || has(&lower, &["call the", "use the tool", "run the tool", "tool call"]))
    {
        return Err("it tells the operator to call a tool instead of answering".into());
    }
    let live = host.live();
    let node = intent.nodes.first().map(String::as_str);
    match intent.kind {
        Kind::WhichFault => {
            let Some(n) = node else { return Ok(()) };
            let open = live.open_faults_of(n);
            if open.is_empty() {
                if FaultKind::ALL.iter().any(|k| norm.contains(k.as_str()))
                    && !has(&lower, &["no open", "none", "no fault", "resolved"])
                {
                    return Err(format!("{n} has no open fault, and the answer names one"));
                }
            } else if !open.iter().any(|f| norm.contains(f.kind.as_str())) {
                let kinds: Vec<&str> = open.iter().map(|f| f.kind.as_str()).collect();
                return Err(format!("it does not name {n}'s open fault ({})", kinds.join(", ")));
            }
        }
        Kind::Since => {
            let Some(f) = node.and_then(|n| subject_fault(host, n, intent.fault_kind)) else { return Ok(()) };
            let at = parse_timestamp_ms(&f.opened_at).unwrap_or_default();
            if !times_in(text, at).iter().any(|(t, tol)| (t - at).abs() <= *tol) {
                return Err(format!("it does not give the time the {} opened ({})", f.kind, f.opened_at));
            }
        }
        Kind::Action => {
            let Some(f) = node.and_then(|n| subject_fault(host, n, intent.fault_kind)) else { return Ok(()) };
            if !conveys(&f.recommended_action, text) {
                return Err(format!("it does not convey the twin's recommended action (\"{}\")", f.recommended_action));
            }
        }
        Kind::RootCause => {
            let ahu = node
                .map(str::to_string)
                .or_else(|| intent.faults.first().and_then(|id| live.fault(id)).map(|f| f.node));
            let Some(ahu) = ahu else { return Ok(()) };
            let suspects = suspects(host, &ahu);
            if !suspects.is_empty() && !suspects.iter().any(|d| lower.contains(&d.to_lowercase())) {
                return Err(format!("it does not name the device behind {ahu}'s alarm ({})", suspects.join(", ")));
            }
        }
        Kind::Fixed => {
            let Some(n) = node else { return Ok(()) };
            let still = live.open_faults_of(n).into_iter().any(|f| intent.fault_kind.is_none_or(|k| f.kind == k));
            let says_open =
                has(&lower, &["still", "not fixed", "not resolved", "remains", "is open", "no,", "not yet"]);
            let says_fixed = has(&lower, &["resolved", "fixed", "yes", "no open", "cleared", "healthy", "gone"]);
            if still && !says_open {
                return Err(format!("{n}'s fault is still open, and the answer does not say so"));
            }
            if still && (lower.starts_with("yes") || has(&lower, &["is fixed", "been fixed", "was resolved"])) {
                return Err(format!("{n}'s fault is still open, and the answer says it is fixed"));
            }
            if !still && (says_open || !says_fixed) {
                return Err(format!("{n} has no open fault of that kind now, and the answer does not say it is fixed"));
            }
        }
        Kind::Changed => {
            let since = host.now_ms() - (intent.minutes.unwrap_or(60.0) * 60_000.0) as i64;
            let changes = live.changes_since(twinfault_core::types::SimTime(since.max(0) as u64));
            if changes.is_empty() {
                if !has(&lower, &["no ", "nothing", "none"]) {
                    return Err("nothing changed in that time, and the answer does not say so".into());
                }
            } else if !changes.iter().any(|(n, c)| lower.contains(&n.to_lowercase()) || norm.contains(c.kind.as_str()))
            {
                return Err("it names none of the faults that opened or resolved in that time".into());
            }
        }
        Kind::Overview | Kind::Change | Kind::Other => {}
    }
    Ok(())
}

/// The devices behind an AHU's alarm: those its open findings point at, then its children in alarm.
pub fn suspects(host: &dyn Host, ahu: &str) -> Vec<String> {
    let live = host.live();
    let f = live.facility();
    let mut out: Vec<String> =
        live.open_faults_of(ahu).into_iter().filter_map(|g| g.device.filter(|d| d != ahu)).collect();
    if let Some(NodeRef::Ahu(h)) = f.node(ahu) {
        for &c in &f.ahus[h].children {
            if live.status(NodeRef::Actuator(c)).is_alarm() && !out.contains(&f.actuators[c].id) {
                out.push(f.actuators[c].id.clone());
            }
        }
    }
    out.dedup();
    out
}

fn ago(host: &dyn Host, at: &str) -> String {
    let Some(t) = parse_timestamp_ms(at) else { return String::new() };
    let s = (host.now_ms() - t) / 1000;
    match s {
        s if s < 0 => String::new(),
        s if s < 120 => format!(" ({s} s ago)"),
        s if s < 7200 => format!(" ({} min ago)", s / 60),
        s => format!(" ({:.1} h ago)", s as f64 / 3600.0),
    }
}

fn describe(f: &FaultView) -> String {
    let by = if f.device.as_deref().is_some_and(|d| d != f.node) {
        format!(", raised by {}", f.node)
    } else {
        String::new()
    };
    format!("{} ({}, {}{by})", f.kind, format!("{:?}", f.severity).to_lowercase(), f.id)
}

/// The answer the twin's own facts give to the question (no model involved).
pub fn facts_answer(intent: &Intent, host: &dyn Host) -> String {
    let live = host.live();
    let node = intent.nodes.first();
    let subject = node.and_then(|n| subject_fault(host, n, intent.fault_kind));
    let status = |n: &str| live.node_view(n).map(|v| format!("{:?}", v.status).to_lowercase()).unwrap_or_default();
    match (intent.kind, node) {
        (Kind::WhichFault, Some(n)) => {
            let open = live.open_faults_of(n);
            if open.is_empty() {
                format!("{n} has no open fault; its status is {}.", status(n))
            } else {
                let list: Vec<String> = open.iter().map(describe).collect();
                format!(
                    "{n} is {} with {} open: {}. {}",
                    status(n),
                    if open.len() == 1 { "one fault" } else { "faults" },
                    list.join("; "),
                    open[0].summary
                )
            }
        }
        (Kind::Since, Some(n)) => match subject {
            Some(f) => format!(
                "The {} on {n} opened at {}{}{}.",
                f.kind,
                f.opened_at,
                ago(host, &f.opened_at),
                f.resolved_at.as_ref().map(|r| format!(" and was resolved at {r}")).unwrap_or_default()
            ),
            None => format!("{n} has had no such fault."),
        },
        (Kind::Action, Some(n)) => match subject {
            Some(f) => format!("For the {} on {n}: {}", f.kind, f.recommended_action),
            None => format!("{n} has no open fault to act on; its status is {}.", status(n)),
        },
        (Kind::RootCause, _) => {
            let ahu = node.cloned().or_else(|| intent.faults.first().and_then(|id| live.fault(id)).map(|f| f.node));
            let Some(ahu) = ahu else { return overview_text(host) };
            let s = suspects(host, &ahu);
            match s.first() {
                None => format!(
                    "{ahu} is {}; no device below it is in alarm and none of its findings points at one.",
                    status(&ahu)
                ),
                Some(d) => {
                    let faults: Vec<String> = live.open_faults_of(d).iter().map(describe).collect();
                    format!(
                        "{d} is behind the alarm on {ahu}: {d} is {} with {}.",
                        status(d),
                        if faults.is_empty() { "no open fault of its own".to_string() } else { faults.join("; ") }
                    )
                }
            }
        }
        (Kind::Fixed, Some(n)) => {
            let open: Vec<FaultView> =
                live.open_faults_of(n).into_iter().filter(|f| intent.fault_kind.is_none_or(|k| f.kind == k)).collect();
            match (open.first(), subject) {
                (Some(f), _) => format!(
                    "No: the {} on {n} is still open (since {}); its status is {}.",
                    f.kind,
                    f.opened_at,
                    status(n)
                ),
                (None, Some(f)) => format!(
                    "Yes: the {} on {n} was resolved at {}; {n} is {} now.",
                    f.kind,
                    f.resolved_at.unwrap_or_default(),
                    status(n)
                ),
                (None, None) => format!("{n} has no open fault of that kind; its status is {}.", status(n)),
            }
        }
        (Kind::Changed, _) => {
            let minutes = intent.minutes.unwrap_or(60.0);
            let since = host.now_ms() - (minutes * 60_000.0) as i64;
            let changes = live.changes_since(twinfault_core::types::SimTime(since.max(0) as u64));
            if changes.is_empty() {
                format!("No fault opened or resolved in the last {minutes:.0} minutes.")
            } else {
                let list: Vec<String> = changes
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|(n, c)| {
                        format!(
                            "{} {} on {n} at {}",
                            c.kind,
                            serde_json::to_value(c.change)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            c.at
                        )
                    })
                    .collect();
                format!("In the last {minutes:.0} minutes {} change(s): {}.", changes.len(), list.join("; "))
            }
        }
        _ => overview_text(host),
    }
}

fn overview_text(host: &dyn Host) -> String {
    let live = host.live();
    let open = live.open_faults();
    let mut s = format!("{}: {} open fault(s).", live.facility().name, open.len());
    for f in open.iter().take(5) {
        s.push_str(&format!(" {}: {}.", f.device.as_deref().unwrap_or(&f.node), describe(f)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::policy::Change;
    use crate::live::Live;
    use serde_json::Value;
    use std::sync::Arc;

    struct Floor(Live);

    impl Host for Floor {
        fn live(&self) -> &Live {
            &self.0
        }
        fn now_ms(&self) -> i64 {
            7_200_000
        }
        fn diagnose<'a>(&'a self, _: &'a str) -> super::super::tools::LocalBoxFuture<'a, Result<Value, String>> {
            Box::pin(std::future::ready(Err("none here".into())))
        }
        fn propose(&self, _: Change, _: Value) -> Result<Value, String> {
            Err("none here".into())
        }
        fn pending_ids(&self) -> Vec<String> {
            Vec::new()
        }
        fn audit_read(&self, _: &str, _: &Value, _: bool) {}
    }

    fn floor() -> Floor {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let f = crate::load::facility(&root.join("twins/datacenter.toml"), None).unwrap();
        Floor(Live::new(Arc::new(f)))
    }

    #[test]
    fn a_questions_kind_and_ids_are_read_from_its_words() {
        let h = floor();
        let k = |q: &str| intent(q, &h);
        let i = k("Which fault does bel-vnt-003 have?");
        assert_eq!((i.kind, i.nodes.as_slice()), (Kind::WhichFault, ["BEL-VNT-003".to_string()].as_slice()));
        assert_eq!(k("When did the gear jam on BEL-VNT-003 open?").kind, Kind::Since);
        assert_eq!(
            k("When did the gear jam on BEL-VNT-003 open?").fault_kind,
            Some(FaultKind::ALL[0]).filter(|k| k.as_str() == "gear_jam").or(FaultKind::parse("gear_jam"))
        );
        assert_eq!(k("What should an operator do about the stiction on BEL-VNT-002?").kind, Kind::Action);
        assert_eq!(k("Which device is behind the alarm on ahu-02?").kind, Kind::RootCause);
        assert_eq!(k("BEL-VNT-003 was repaired at 10:00. Is its gear_jam fixed now?").kind, Kind::Fixed);
        assert_eq!(k("What changed in the last hour?").kind, Kind::Changed);
        assert_eq!(k("What changed in the last 15 minutes?").minutes, Some(15.0));
        assert_eq!(k("Resolve fault F-x with note 'done'").kind, Kind::Change);
        assert_eq!(k("Inject a 0.6 stiction into BEL-VNT-002").kind, Kind::Change);
        assert_eq!(k("Run diagnosis on BEL-VNT-005 now.").kind, Kind::Other);
        assert_eq!(k("Give me a live overview.").kind, Kind::Overview);
        // An unknown id is not taken for a node.
        assert!(k("Which fault does BEL-VNT-999 have?").nodes.is_empty());
    }

    #[test]
    fn times_are_read_as_timestamps_clock_times_and_seconds() {
        let day = 1_795_392_000_000; // 2026-11-23T00:00:00Z
        let t = times_in("It opened at 2026-11-23T10:15:30.000Z (about 10:15), 130 s in.", day);
        assert_eq!(t, [(day + 36_930_000, 5_000), (day + 36_900_000, 60_000), (130_000, 5_000)]);
        // The parts of a date are not read as seconds.
        assert_eq!(times_in("at 1970-01-01T00:36:21.000Z", 0), [(2_181_000, 5_000)]);
    }

    #[test]
    fn an_action_is_conveyed_by_its_words_not_its_exact_phrase() {
        let a = "Inspect the gear train and linkage for a jam; free or replace the actuator.";
        assert!(conveys(
            a,
            "An operator should inspect the gears and the linkage for the jam, and replace the actuator if needed."
        ));
        assert!(!conveys(a, "Call node_details to learn more."));
    }

    #[test]
    fn empty_invented_and_tool_telling_answers_fail_the_check() {
        let h = floor();
        let i = intent("Which fault does BEL-VNT-003 have?", &h);
        assert!(verify(&i, &h, "  ", &[]).unwrap_err().contains("empty"));
        assert!(verify(&i, &h, "BEL-VNT-099 is jammed", &["BEL-VNT-099".into()]).unwrap_err().contains("BEL-VNT-099"));
        assert!(verify(&i, &h, "Use the tool node_details.", &[]).unwrap_err().contains("call a tool"));
        // Nothing is open on the fresh floor: naming a fault is wrong, saying none is right.
        assert!(verify(&i, &h, "BEL-VNT-003 has a gear_jam.", &[]).is_err());
        assert!(verify(&i, &h, "BEL-VNT-003 has no open fault.", &[]).is_ok());
        assert!(facts_answer(&i, &h).contains("BEL-VNT-003 has no open fault"));
    }
}
