//! Watching a running `twinfault serve`: a background thread polls its REST API and hands
//! snapshots to the app, which never waits on the network; resolve and inject requests go the
//! other way.

use crate::state::{ChartPoint, Issue};
use serde::Deserialize;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};
use twinfault_core::detect::Change;
use twinfault_core::layout::Layout;
use twinfault_core::time::parse_timestamp_ms;
use twinfault_core::types::{FaultKind, SimTime, Status};
use twinfault_wire::{ErrorBody, FaultChange, HistoryPage, InjectReply, NodeView, ResolveReply, StatusView};

/// What the app asks of the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Follow this node's history (charts, fault changes).
    Select(String),
    Inject {
        node: String,
        kind: FaultKind,
        severity: f64,
    },
    Resolve {
        fault: String,
        note: String,
    },
    /// Ask the server's operations agent (the conversation so far).
    Ask(Vec<serde_json::Value>),
    /// Approve or reject a pending action.
    Decide {
        action: String,
        approve: bool,
    },
}

/// What the poller hands to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// One `GET /api/status`: server time, every node's status, output positions, open faults.
    Status { time: SimTime, statuses: Vec<(String, Status)>, openings: Vec<(String, f64)>, issues: Vec<Issue> },
    /// The selected node's recent samples, oldest first (the whole window each time).
    Chart { node: String, points: Vec<ChartPoint> },
    /// The selected node's fault changes, oldest first.
    FaultHistory { node: String, changes: Vec<(SimTime, String, FaultKind, Change)> },
    /// The outcome of a command, or a failed poll, for the status line.
    Message(String),
    /// Whether the last poll reached the server.
    Reachable(bool),
    /// The agent's answer (`POST /api/agent/chat`'s reply, or the error as its `reply`).
    Agent(serde_json::Value),
}

/// A connection to `twinfault serve`.
pub struct Remote {
    pub base: String,
    tx: Sender<Command>,
    /// Behind a mutex only so the app state can be shared with bevy's systems (it is `Sync`).
    rx: std::sync::Mutex<Receiver<Update>>,
}

/// Chart window kept for the selected device [ms].
const CHART_WINDOW_MS: u64 = 20 * 60 * 1000;

#[derive(Clone)]
struct Http {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Http {
    fn new(base: &str, token: Option<String>) -> Http {
        Http { base: base.trim_end_matches('/').to_string(), token, agent: Http::agent(10) }
    }

    fn agent(timeout_s: u64) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(timeout_s)))
            .build()
            .into()
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    /// A JSON reply, or one line saying what went wrong (the server's own `error` when it sent one).
    fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, String> {
        let r = self.auth(self.agent.get(format!("{}{path}", self.base))).call();
        Self::reply(&self.base, path, r)
    }

    fn post<T: for<'de> Deserialize<'de>>(&self, path: &str, body: &serde_json::Value) -> Result<T, String> {
        let req = self.auth(self.agent.post(format!("{}{path}", self.base))).header("Content-Type", "application/json");
        Self::reply(&self.base, path, req.send(body.to_string()))
    }

    fn reply<T: for<'de> Deserialize<'de>>(
        base: &str,
        path: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, String> {
        let mut r = r.map_err(|e| format!("cannot reach {base}: {e}"))?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().map_err(|e| format!("{path}: {e}"))?;
        if status != 200 {
            let why = serde_json::from_str::<ErrorBody>(&body).map(|e| e.error).unwrap_or(body);
            return Err(format!("{path}: HTTP {status}: {why}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("{path}: unexpected reply: {e}"))
    }
}

impl Remote {
    /// Fetches the facility's layout (failing with one clear line when the server cannot be reached
    /// or refuses the token), then starts polling every `every`.
    pub fn connect(base: &str, token: Option<String>, every: Duration) -> Result<(Layout, Remote), String> {
        if !base.starts_with("http://") {
            return Err(format!("--connect {base}: expected an http:// URL (put TLS in front with a proxy)"));
        }
        let http = Http::new(base, token);
        let layout: Layout = http.get("/api/facility")?;
        layout.check().map_err(|e| format!("{base}/api/facility: {e}"))?;
        let (tx, commands) = channel();
        let (updates, rx) = channel();
        let base = http.base.clone();
        let ids: Vec<String> = layout.actuators.iter().map(|a| a.id.clone()).collect();
        std::thread::Builder::new()
            .name("twinfault-viz-poll".into())
            .spawn(move || poll(http, ids, every, commands, updates))
            .map_err(|e| format!("cannot start the poller: {e}"))?;
        Ok((layout, Remote { base, tx, rx: std::sync::Mutex::new(rx) }))
    }

    pub fn send(&self, c: Command) {
        // The poller only stops when the app drops this end.
        let _ = self.tx.send(c);
    }

    /// Everything the poller has sent since the last call.
    pub fn updates(&self) -> Vec<Update> {
        self.rx.lock().map(|rx| rx.try_iter().collect()).unwrap_or_default()
    }
}

fn time(s: &str) -> SimTime {
    SimTime(parse_timestamp_ms(s).unwrap_or(0).max(0) as u64)
}

/// Chart metrics as the history endpoint names them, with where each goes in a point.
type Slot = fn(&mut ChartPoint) -> &mut f64;
const METRICS: [(&str, Slot); 6] = [
    ("setpoint_pct", |p| &mut p.setpoint_pct),
    ("position_pct", |p| &mut p.position_pct),
    ("torque_nm", |p| &mut p.torque_nm),
    ("power_w", |p| &mut p.power_w),
    ("temperature_c", |p| &mut p.temperature_c),
    ("signal_quality", |p| &mut p.signal_quality),
];

fn blank(t_ms: u64) -> ChartPoint {
    ChartPoint {
        t_s: t_ms as f64 / 1000.0,
        setpoint_pct: f64::NAN,
        position_pct: f64::NAN,
        torque_nm: f64::NAN,
        power_w: f64::NAN,
        temperature_c: f64::NAN,
        signal_quality: f64::NAN,
    }
}

/// The poller: status every `every`, the selected node's history and fault changes with it, and
/// commands as they come.
fn poll(http: Http, actuators: Vec<String>, every: Duration, commands: Receiver<Command>, out: Sender<Update>) {
    let mut selected: Option<String> = None;
    // The selected actuator's points by time, and how far the stored history was read.
    let mut chart: std::collections::BTreeMap<u64, ChartPoint> = Default::default();
    let mut read_to: u64 = 0;
    let mut next = Instant::now();
    loop {
        match commands.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(Command::Select(id)) => {
                if selected.as_ref() != Some(&id) {
                    selected = Some(id);
                    chart.clear();
                    read_to = 0;
                    next = Instant::now();
                }
                continue;
            }
            Ok(Command::Ask(messages)) => {
                // A model may take a while: ask on a thread of its own, polling goes on.
                let (http, out) = (http.clone(), out.clone());
                std::thread::spawn(move || {
                    let long = Http { agent: Http::agent(180), ..http };
                    let body = serde_json::json!({ "messages": messages });
                    let reply = long
                        .post::<serde_json::Value>("/api/agent/chat", &body)
                        .unwrap_or_else(|e| serde_json::json!({ "reply": e, "model_available": false }));
                    let _ = out.send(Update::Agent(reply));
                });
                continue;
            }
            Ok(c) => {
                let msg = run(&http, c);
                if out.send(Update::Message(msg)).is_err() {
                    return;
                }
                // Show the effect soon.
                next = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        next = Instant::now() + every;
        let status: StatusView = match http.get("/api/status") {
            Ok(s) => s,
            Err(e) => {
                if out.send(Update::Reachable(false)).is_err() || out.send(Update::Message(e)).is_err() {
                    return;
                }
                continue;
            }
        };
        let now = time(&status.time);
        let openings = status
            .nodes
            .iter()
            .filter_map(|n| n.last_sample.as_ref().map(|s| (n.id.clone(), s.sample.position_pct)))
            .collect();
        let issues = status
            .open_faults
            .into_iter()
            .map(|f| Issue {
                id: Some(f.id),
                node: f.node,
                device: f.device,
                kind: f.kind,
                severity: f.severity,
                confidence: f.confidence,
                opened_at: time(&f.opened_at),
                summary: f.summary,
                action: f.recommended_action,
                source: f.source,
            })
            .collect();
        let statuses = status.nodes.into_iter().map(|n| (n.id, n.status)).collect();
        let _ = out.send(Update::Reachable(true));
        if out.send(Update::Status { time: now, statuses, openings, issues }).is_err() {
            return;
        }
        let Some(id) = selected.clone() else { continue };
        if actuators.contains(&id) {
            let from = read_to.max(now.0.saturating_sub(CHART_WINDOW_MS));
            for (metric, slot) in METRICS {
                let path = format!("/api/nodes/{id}/history?metric={metric}&from={from}&limit=10000");
                if let Ok(page) = http.get::<HistoryPage>(&path) {
                    for p in page.points {
                        *slot(chart.entry(p.t_ms).or_insert_with(|| blank(p.t_ms))) = p.value.unwrap_or(f64::NAN);
                        read_to = read_to.max(p.t_ms + 1);
                    }
                }
            }
            // The newest sample, before it reaches the stored history.
            if let Ok(n) = http.get::<NodeView>(&format!("/api/nodes/{id}"))
                && let Some(s) = n.last_sample
            {
                let t = time(&s.timestamp).0;
                let p = chart.entry(t).or_insert_with(|| blank(t));
                let v = s.sample;
                (p.setpoint_pct, p.position_pct, p.torque_nm) = (v.setpoint_pct, v.position_pct, v.torque_nm);
                (p.power_w, p.temperature_c) = (v.power_w, v.temperature_c);
                p.signal_quality = v.signal_quality.unwrap_or(f64::NAN);
            }
            let keep_from = now.0.saturating_sub(CHART_WINDOW_MS);
            chart = chart.split_off(&keep_from);
            let points = chart.values().copied().collect();
            if out.send(Update::Chart { node: id.clone(), points }).is_err() {
                return;
            }
        }
        if let Ok(changes) = http.get::<Vec<FaultChange>>(&format!("/api/nodes/{id}/fault-history")) {
            let changes = changes.into_iter().map(|c| (time(&c.at), id.clone(), c.kind, c.change)).collect();
            if out.send(Update::FaultHistory { node: id, changes }).is_err() {
                return;
            }
        }
    }
}

/// Carries out a command; the line the app shows.
fn run(http: &Http, c: Command) -> String {
    match c {
        Command::Select(_) | Command::Ask(_) => String::new(),
        Command::Decide { action, approve } => {
            let path = format!("/api/actions/{action}/{}", if approve { "approve" } else { "reject" });
            match http.post::<serde_json::Value>(&path, &serde_json::json!({})) {
                Ok(_) => format!("{} {action}", if approve { "approved and carried out" } else { "rejected" }),
                Err(e) => format!("{action} refused: {e}"),
            }
        }
        Command::Inject { node, kind, severity } => {
            let body = serde_json::json!({ "node": node, "kind": kind, "severity": severity });
            match http.post::<InjectReply>("/api/scenario/inject", &body) {
                Ok(r) => format!("injected {} into {node}", r.injection),
                Err(e) => format!("injection refused: {e}"),
            }
        }
        Command::Resolve { fault, note } => {
            let body = serde_json::json!({ "note": note });
            match http.post::<ResolveReply>(&format!("/api/faults/{fault}/resolve"), &body) {
                Ok(r) => format!("resolved {fault} by {}", r.resolved_by),
                Err(e) => format!("resolve refused: {e}"),
            }
        }
    }
}
