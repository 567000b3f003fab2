//! The visualizer's state and panel logic, as plain code (no bevy, no egui): the simulation it
//! steps, ranking of issues, selection, search, and the injection form's validation.

use crate::remote::{Command, Remote, Update};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::detect::{Change, FindingEvent, Source};
use twinfault_core::event::Event;
use twinfault_core::fault::Injection;
use twinfault_core::layout::Layout;
use twinfault_core::ledger::{FaultLedger, Retention};
use twinfault_core::plain::Run;
use twinfault_core::scenario::Scenario;
use twinfault_core::types::{FaultKind, Phase, Severity, SimTime, Status};

/// Points kept for the selected device's charts.
pub const CHART_POINTS: usize = 1200;

/// An open fault as the issues panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// The server's fault id (live mode: what a resolve names).
    pub id: Option<String>,
    pub node: String,
    /// For AHU findings: the device the evidence points at (selecting the issue selects it).
    pub device: Option<String>,
    pub kind: FaultKind,
    pub severity: Severity,
    pub confidence: f32,
    pub opened_at: SimTime,
    pub summary: String,
    pub action: String,
    /// A rule's finding, or a learned model's verdict (which colours no status).
    pub source: Source,
}

impl Issue {
    /// The node a click on the issue selects.
    pub fn target(&self) -> &str {
        self.device.as_deref().unwrap_or(&self.node)
    }
}

/// Open issues, worst first: severity, then confidence, then the oldest, then by node.
pub fn rank(issues: &mut [Issue]) {
    use twinfault_core::ledger::Rank;
    issues.sort_by(|a, b| {
        Rank::of(a.severity, a.confidence, a.opened_at, a.target()).cmp(&Rank::of(
            b.severity,
            b.confidence,
            b.opened_at,
            b.target(),
        ))
    });
}

/// Node ids matching a search (case-insensitive substring; empty matches all).
pub fn search<'a>(ids: impl IntoIterator<Item = &'a str>, query: &str) -> Vec<&'a str> {
    let q = query.trim().to_lowercase();
    ids.into_iter().filter(|id| q.is_empty() || id.to_lowercase().contains(&q)).collect()
}

/// What is at a point of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHit {
    Device(usize),
    Ahu(usize),
    Zone(usize),
}

/// The device nearest to map point `(x, y)` within `reach` map units; else an AHU there; else the
/// zone it lies in.
pub fn hit_test(f: &Layout, x: f64, y: f64, reach: f64) -> Option<MapHit> {
    let device = f
        .actuators
        .iter()
        .enumerate()
        .map(|(i, a)| (i, (a.position[0] - x).hypot(a.position[1] - y)))
        .filter(|(_, d)| *d <= reach)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| MapHit::Device(i));
    device
        .or_else(|| {
            f.ahus
                .iter()
                .position(|a| (a.position[0] - x).abs() <= 2.0 * reach && (a.position[1] - y).abs() <= 1.2 * reach)
                .map(MapHit::Ahu)
        })
        .or_else(|| {
            f.zones
                .iter()
                .position(|z| {
                    x >= z.rect[0] && x <= z.rect[0] + z.rect[2] && y >= z.rect[1] && y <= z.rect[1] + z.rect[3]
                })
                .map(MapHit::Zone)
        })
}

/// The map rectangle `[x, y, w, h]` around each AHU and its devices: what stands for them when the
/// map is zoomed out too far to draw every device.
pub fn ahu_blocks(f: &Layout, margin: f64) -> Vec<[f64; 4]> {
    f.ahus
        .iter()
        .map(|a| {
            let points = a.children.iter().map(|&c| f.actuators[c].position).chain([a.position]);
            let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for [x, y] in points {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
            [x0 - margin, y0 - margin, x1 - x0 + 2.0 * margin, y1 - y0 + 2.0 * margin]
        })
        .collect()
}

/// Per AHU, how many of its devices are in each status (healthy, warning, critical, offline).
pub fn ahu_counts(f: &Layout, devices: &[Status]) -> Vec<[usize; Status::COUNT]> {
    let mut counts = vec![[0; Status::COUNT]; f.ahus.len()];
    for (a, s) in f.actuators.iter().zip(devices) {
        counts[a.ahu][*s as usize] += 1;
    }
    counts
}

/// The worst status with a count above zero.
pub fn worst(counts: &[usize; Status::COUNT]) -> Status {
    [Status::Offline, Status::Critical, Status::Warning, Status::Healthy, Status::Unknown]
        .into_iter()
        .find(|s| counts[*s as usize] > 0)
        .unwrap_or_default()
}

/// At most `max` of `points`, evenly spread over them (the last one kept), for a chart.
pub fn thin<T: Copy>(points: Vec<T>, max: usize) -> Vec<T> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let stride = points.len().div_ceil(max - 1);
    let last = *points.last().expect("more than max");
    let mut out: Vec<T> = points.into_iter().step_by(stride).collect();
    out.push(last);
    out
}

/// Node ids for an `@` mention being typed at the end of `text` (at most 5).
pub fn mentions<'a>(f: &'a Layout, text: &str) -> Vec<&'a str> {
    let Some(word) = text.rsplit(char::is_whitespace).next().and_then(|w| w.strip_prefix('@')) else {
        return Vec::new();
    };
    let mut v = search(f.node_ids(), word);
    v.truncate(5);
    v
}

/// The text with its trailing `@partial` replaced by `id`.
pub fn complete_mention(text: &str, id: &str) -> String {
    match text.rfind('@') {
        Some(i) => format!("{}{id} ", &text[..i]),
        None => format!("{text}{id} "),
    }
}

/// The injection form.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectForm {
    pub node: String,
    pub kind: FaultKind,
    /// As typed [0..1].
    pub severity: String,
}

impl Default for InjectForm {
    fn default() -> Self {
        InjectForm { node: String::new(), kind: FaultKind::GearJam, severity: "1.0".into() }
    }
}

impl InjectForm {
    /// The injection the form describes at `now`, or what is wrong with it.
    pub fn validate(&self, facility: &Layout, now: SimTime, seq: usize) -> Result<Injection, String> {
        let severity: f64 = self
            .severity
            .trim()
            .parse()
            .map_err(|_| format!("severity \"{}\" is not a number", self.severity.trim()))?;
        let inj = Injection {
            id: format!("L{seq}"),
            node: self.node.trim().to_string(),
            kind: self.kind,
            severity,
            start: now,
            ramp_s: 0.0,
            end: None,
            position_pct: None,
            period_s: None,
        };
        // The core's one rule for an injection, as scenario files and the server apply it.
        inj.validate(facility).map_err(|e| match e.field {
            "severity" => format!("severity {}", e.message),
            _ => e.message,
        })?;
        Ok(inj)
    }
}

/// One chart point of the selected device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartPoint {
    pub t_s: f64,
    pub setpoint_pct: f64,
    pub position_pct: f64,
    pub torque_nm: f64,
    pub power_w: f64,
    pub temperature_c: f64,
    pub signal_quality: f64,
}

/// The in-process simulation behind a [`Sim`].
struct Local {
    scenario: Scenario,
    run: Run,
    injected: usize,
}

/// Where the twins run.
enum Driver {
    /// A scenario stepped in-process, epoch by epoch.
    Local(Box<Local>),
    /// A running `twinfault serve`, polled.
    Remote(Remote),
}

/// What the visualizer shows: a scenario running in-process, or a live server it watches. The
/// panels read the same state either way.
pub struct Sim {
    /// Scenario name, or the server's address.
    pub title: String,
    pub layout: Arc<Layout>,
    driver: Driver,
    /// Status per node, by id.
    pub statuses: BTreeMap<String, Status>,
    pub phases: BTreeMap<String, Phase>,
    /// Open issues by fault id (in-process: the ledger's; live: the server's).
    issues: BTreeMap<String, Issue>,
    /// In-process runs: the faults folded from the run's events.
    ledger: FaultLedger,
    /// Fault changes of every node: (time, node, kind, change).
    pub fault_history: VecDeque<(SimTime, String, FaultKind, Change)>,
    /// Output position per actuator [%], for drawing.
    pub openings: Vec<f64>,
    pub selected: Option<String>,
    pub chart: VecDeque<ChartPoint>,
    /// The selected AHU's epochs (in-process; a server keeps no AHU trends): (time [s], summary).
    pub ahu_chart: VecDeque<(f64, twinfault_core::ahu::AhuSummary)>,
    /// Server time of the last poll (live mode).
    server_time: SimTime,
    /// Whether the last poll reached the server (live mode).
    pub reachable: bool,
    /// Outcomes of live requests, for the status line.
    pub messages: Vec<String>,
    /// The conversation with the server's agent: ("you" | "agent", text).
    pub agent: Vec<(String, String)>,
    /// Changes the agent proposed, waiting for this operator: (action id, what).
    pub pending: Vec<(String, String)>,
    /// Injected faults (in-process: the truth), in the order they began.
    pub truth: Vec<Truth>,
    /// Every event of the in-process run so far (what the time slider replays).
    events: Vec<Event>,
    /// The run as it was at an earlier time, while the time slider is held there.
    past: Option<Past>,
    /// Live mode: what this window has watched, for the time slider.
    watched: Watched,
    /// Where the in-process agent's model is (the configuration, then the environment).
    pub agent_config: twinfault::agent::chat::AgentConfig,
    /// The agent in-process, started by the first question.
    local_agent: Option<crate::agent::LocalAgent>,
}

/// Statuses and open issues at an earlier time of the run.
struct Past {
    /// When [s]: of the run in-process, since 1970 live.
    t_s: f64,
    statuses: BTreeMap<String, Status>,
    issues: BTreeMap<String, Issue>,
}

/// Live mode: what this window has watched since it connected (a server keeps no past statuses;
/// the window remembers its polls), to scrub back through. Bounded: the oldest changes fold into
/// the base once there are too many.
#[derive(Default)]
struct Watched {
    /// Every node's status at `base_t_s` [s since 1970].
    base: BTreeMap<String, Status>,
    base_t_s: Option<f64>,
    /// Status changes after the base, oldest first: (t [s], node, status).
    changes: VecDeque<(f64, String, Status)>,
    /// The open issues each time they changed, oldest first, and how many issues they hold.
    issues: VecDeque<(f64, Arc<BTreeMap<String, Issue>>)>,
    issue_entries: usize,
}

/// Status changes, issue lists and issues in them a live window remembers (a few tens of MB at
/// most).
const WATCHED_CHANGES: usize = 200_000;
const WATCHED_ISSUE_LISTS: usize = 5_000;
const WATCHED_ISSUES: usize = 100_000;

impl Watched {
    /// One poll: the server's time, its statuses (before they are folded in) against `known`,
    /// and its open issues.
    fn poll(
        &mut self,
        t_s: f64,
        known: &BTreeMap<String, Status>,
        statuses: &[(String, Status)],
        issues: &BTreeMap<String, Issue>,
    ) {
        if self.base_t_s.is_none() {
            self.base = statuses.iter().cloned().collect();
            self.base_t_s = Some(t_s);
        } else {
            for (id, s) in statuses.iter().filter(|(id, s)| known.get(id) != Some(s)) {
                self.changes.push_back((t_s, id.clone(), *s));
            }
            while self.changes.len() > WATCHED_CHANGES {
                if let Some((t, id, s)) = self.changes.pop_front() {
                    self.base.insert(id, s);
                    self.base_t_s = Some(t);
                }
            }
        }
        if self.issues.back().is_none_or(|(_, last)| **last != *issues) {
            self.issues.push_back((t_s, Arc::new(issues.clone())));
            self.issue_entries += issues.len();
            while self.issues.len() > WATCHED_ISSUE_LISTS || self.issue_entries > WATCHED_ISSUES {
                let Some((_, dropped)) = self.issues.pop_front() else { break };
                self.issue_entries -= dropped.len();
            }
        }
    }

    /// The earliest time both the statuses and the issues are remembered for [s since 1970].
    fn since(&self) -> Option<f64> {
        Some(self.base_t_s?.max(self.issues.front().map_or(f64::NEG_INFINITY, |x| x.0)))
    }

    /// Statuses and issues as polled at `t_s`.
    fn at(&self, t_s: f64) -> (BTreeMap<String, Status>, BTreeMap<String, Issue>) {
        let mut statuses = self.base.clone();
        for (_, id, s) in self.changes.iter().take_while(|c| c.0 <= t_s) {
            statuses.insert(id.clone(), *s);
        }
        let issues = self.issues.iter().rev().find(|x| x.0 <= t_s).map(|x| (*x.1).clone()).unwrap_or_default();
        (statuses, issues)
    }
}

/// One finding folded into a ledger and the open issues it keeps.
fn fold_finding(
    ledger: &mut FaultLedger,
    issues: &mut BTreeMap<String, Issue>,
    node: &str,
    f: &FindingEvent,
    truth: Option<&str>,
) {
    let id = ledger.apply(node, f, truth);
    match ledger.fault(&id).filter(|x| x.is_open()) {
        Some(x) => {
            let issue = Issue {
                id: Some(id.clone()),
                node: x.node.clone(),
                device: x.device.clone(),
                kind: x.kind,
                severity: x.severity,
                confidence: x.confidence,
                opened_at: x.opened_at,
                summary: x.summary.clone(),
                action: x.action.clone(),
                source: x.source,
            };
            issues.insert(id, issue);
        }
        None => {
            issues.remove(&id);
        }
    }
}

/// An injected fault as the device panel shows it, apart from what the twin found.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub id: String,
    pub node: String,
    pub kind: FaultKind,
    pub severity: f64,
    pub start_s: f64,
    pub end_s: Option<f64>,
}

/// Chart times as clock times: a run's seconds from its start clock, or a live server's seconds
/// relative to its "now" as UTC.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Seconds of the day at chart time 0 (in-process), or ms since the epoch at chart time 0 (live).
    origin: f64,
    live: bool,
}

impl Clock {
    /// Seconds of the day at chart time 0 (for placing marks on whole minutes and hours).
    pub fn offset_s(self) -> f64 {
        (if self.live { self.origin / 1000.0 } else { self.origin }).rem_euclid(86_400.0)
    }

    /// `HH:MM:SS` of chart time `x` [s].
    pub fn label(self, x: f64) -> String {
        let day_s = if self.live {
            (self.origin / 1000.0 + x).rem_euclid(86_400.0)
        } else {
            (self.origin + x).rem_euclid(86_400.0)
        };
        let s = day_s.round() as u64 % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// Fault changes kept for the device panel.
const FAULT_HISTORY_KEPT: usize = 10_000;

impl Sim {
    pub fn new(scenario: Scenario, facility: Facility) -> Sim {
        let facility = Arc::new(facility);
        let mut run = Run::new(&scenario, Arc::clone(&facility), false);
        run.recorder.stream_only();
        let title = scenario.name.clone();
        let layout = Arc::new(facility.layout());
        let local = Local { scenario, run, injected: 0 };
        Sim::with(title, layout, Driver::Local(Box::new(local)))
    }

    /// Watches a running `twinfault serve` at `base` (`http://host:port`), polling every `every`.
    pub fn connect(base: &str, token: Option<String>, every: std::time::Duration) -> Result<Sim, String> {
        let (layout, remote) = Remote::connect(base, token, every)?;
        let title = format!("{} at {}", layout.name, remote.base);
        Ok(Sim::with(title, Arc::new(layout), Driver::Remote(remote)))
    }

    fn with(title: String, layout: Arc<Layout>, driver: Driver) -> Sim {
        let statuses = layout.node_ids().into_iter().map(|id| (id.to_string(), Status::Healthy)).collect();
        let n = layout.actuators.len();
        Sim {
            title,
            layout,
            driver,
            statuses,
            phases: BTreeMap::new(),
            issues: BTreeMap::new(),
            ledger: FaultLedger::new(Retention { resolved: 1000, history_per_node: FAULT_HISTORY_KEPT }),
            fault_history: VecDeque::new(),
            openings: vec![0.0; n],
            selected: None,
            chart: VecDeque::new(),
            ahu_chart: VecDeque::new(),
            server_time: SimTime(0),
            reachable: true,
            messages: Vec::new(),
            agent: Vec::new(),
            pending: Vec::new(),
            truth: Vec::new(),
            events: Vec::new(),
            past: None,
            watched: Watched::default(),
            agent_config: Default::default(),
            local_agent: None,
        }
    }

    /// How chart times read as clock times.
    pub fn clock(&self) -> Clock {
        match &self.driver {
            Driver::Local(l) => Clock { origin: l.scenario.start_clock_s, live: false },
            Driver::Remote(_) => Clock { origin: self.server_time.0 as f64, live: true },
        }
    }

    /// Whether this watches a live server (no stepping; resolve instead).
    pub fn is_live(&self) -> bool {
        matches!(self.driver, Driver::Remote(_))
    }

    /// Simulated time since the start of the run, or the server's clock [ms since 1970].
    pub fn now(&self) -> SimTime {
        match &self.driver {
            Driver::Local(l) => l.run.setup.grid.epoch_start(l.run.epoch()),
            Driver::Remote(_) => self.server_time,
        }
    }

    /// A time as the panels print it: the run's clock in-process (its start clock on, as the
    /// charts and the slider read it), UTC date and time live.
    pub fn time_label(&self, t: SimTime) -> String {
        match self.driver {
            Driver::Local(_) => self.clock().label(t.as_secs_f64()),
            Driver::Remote(_) => twinfault_core::time::format_timestamp_ms(t.0 as i64),
        }
    }

    /// What chart times are measured from [s]: the run's start in-process, the server's "now" live
    /// (so a live chart reads in seconds before now).
    pub fn chart_origin_s(&self) -> f64 {
        match self.driver {
            Driver::Local(_) => 0.0,
            Driver::Remote(_) => self.server_time.as_secs_f64(),
        }
    }

    pub fn finished(&self) -> bool {
        match &self.driver {
            Driver::Local(l) => l.run.finished(),
            Driver::Remote(_) => false,
        }
    }

    /// The step of the in-process run [s] (live: 1).
    pub fn control_period_s(&self) -> f64 {
        match &self.driver {
            Driver::Local(l) => l.scenario.control_period_s,
            Driver::Remote(_) => 1.0,
        }
    }

    /// Advances one epoch of the in-process run; returns its events (live: none).
    pub fn step(&mut self) -> Vec<Event> {
        let Driver::Local(l) = &mut self.driver else { return Vec::new() };
        let Some((out, _)) = l.run.step() else { return Vec::new() };
        for (i, r) in out.actuators.iter().enumerate() {
            self.openings[i] = r.report.opening_pct;
        }
        let events = l.run.recorder.last_epoch().to_vec();
        self.apply(&events);
        self.sample_chart();
        self.tell_agent(false);
        events
    }

    /// The selected device's chart points within the last `window_s` seconds of it (all when `None`).
    pub fn chart_window(&self, window_s: Option<f64>) -> impl Iterator<Item = &ChartPoint> {
        let last = self.chart.back().map_or(0.0, |p| p.t_s);
        let from = window_s.map_or(f64::MIN, |w| last - w);
        self.chart.iter().filter(move |p| p.t_s >= from)
    }

    /// Takes in what the server poller sent (live mode), or the in-process agent's replies and
    /// the diagnoses it waits for; returns whether anything changed.
    pub fn poll(&mut self) -> bool {
        let Driver::Remote(r) = &self.driver else { return self.poll_agent() };
        let updates = r.updates();
        let changed = !updates.is_empty();
        for u in updates {
            match u {
                Update::Status { time, statuses, openings, issues } => {
                    self.server_time = time;
                    self.issues = issues.into_iter().map(|i| (i.id.clone().unwrap_or_default(), i)).collect();
                    self.watched.poll(time.as_secs_f64(), &self.statuses, &statuses, &self.issues);
                    self.statuses.extend(statuses);
                    for (id, pct) in openings {
                        if let Some(NodeRef::Actuator(i)) = self.layout.node(&id) {
                            self.openings[i] = pct;
                        }
                    }
                }
                Update::Chart { node, points } if self.selected.as_ref() == Some(&node) => {
                    self.chart = thin(points, CHART_POINTS).into();
                }
                Update::FaultHistory { node, changes } => {
                    self.fault_history.retain(|h| h.1 != node);
                    self.fault_history.extend(changes);
                }
                Update::Message(m) => self.messages.push(m),
                Update::Agent(v) => self.take_reply(&v),
                Update::Reachable(ok) => self.reachable = ok,
                Update::Chart { .. } => {}
            }
        }
        changed
    }

    fn apply(&mut self, events: &[Event]) {
        if !self.is_live() {
            self.events.extend_from_slice(events);
        }
        if let Some(a) = &self.local_agent {
            a.live.apply(events);
        }
        for ev in events {
            match ev {
                Event::Status { node, to, .. } => {
                    self.statuses.insert(node.clone(), *to);
                }
                Event::Phase { node, to, .. } => {
                    self.phases.insert(node.clone(), *to);
                }
                Event::Finding { node, finding, truth, .. } => self.apply_finding(node, finding, truth.as_deref()),
                Event::InjectionStarted { t, id, node, kind, severity } => self.truth.push(Truth {
                    id: id.clone(),
                    node: node.clone(),
                    kind: *kind,
                    severity: *severity,
                    start_s: t.as_secs_f64(),
                    end_s: None,
                }),
                Event::InjectionEnded { t, id, .. } => {
                    if let Some(x) = self.truth.iter_mut().rev().find(|x| x.id == *id) {
                        x.end_s = Some(t.as_secs_f64());
                    }
                }
            }
        }
    }

    fn apply_finding(&mut self, node: &str, f: &FindingEvent, truth: Option<&str>) {
        self.fault_history.push_back((f.t, f.device.clone().unwrap_or_else(|| node.to_string()), f.kind, f.change));
        if self.fault_history.len() > FAULT_HISTORY_KEPT {
            self.fault_history.pop_front();
        }
        fold_finding(&mut self.ledger, &mut self.issues, node, f, truth);
    }

    /// Shows the map, statuses and issues as they were at chart time `t` [s] (`None`: now): of
    /// the run in-process (replaying its events), of what this window has watched live. The run
    /// goes on underneath.
    pub fn scrub_to(&mut self, t: Option<f64>) {
        let Some(t) = t.filter(|t| *t < self.now().as_secs_f64() - self.chart_origin_s()) else {
            self.past = None;
            return;
        };
        let at_s = t + self.chart_origin_s();
        if self.past.as_ref().is_some_and(|p| p.t_s == at_s) {
            return;
        }
        if self.is_live() {
            let (statuses, issues) = self.watched.at(at_s);
            self.past = Some(Past { t_s: at_s, statuses, issues });
            return;
        }
        let mut statuses: BTreeMap<String, Status> =
            self.layout.node_ids().into_iter().map(|id| (id.to_string(), Status::Healthy)).collect();
        let mut ledger = FaultLedger::new(Retention { resolved: 1000, history_per_node: 16 });
        let mut issues = BTreeMap::new();
        let at = SimTime::from_secs_f64(at_s);
        for ev in self.events.iter().take_while(|e| e.t() <= at) {
            match ev {
                Event::Status { node, to, .. } => {
                    statuses.insert(node.clone(), *to);
                }
                Event::Finding { node, finding, truth, .. } => {
                    fold_finding(&mut ledger, &mut issues, node, finding, truth.as_deref());
                }
                _ => {}
            }
        }
        self.past = Some(Past { t_s: at_s, statuses, issues });
    }

    /// The chart times [s] the time slider spans: the run so far in-process, what this window
    /// has watched live (`None` before the first poll).
    pub fn history_range(&self) -> Option<(f64, f64)> {
        let origin = self.chart_origin_s();
        match &self.driver {
            Driver::Local(_) => Some((0.0, self.now().as_secs_f64().max(1.0))),
            Driver::Remote(_) => self.watched.since().map(|t0| ((t0 - origin).min(0.0), 0.0)),
        }
    }

    /// Writes the selected device's charted window (the last `window_s` seconds, all when `None`;
    /// up to the time shown when scrubbed back) as a labelled slice in the dataset's telemetry
    /// columns and names (`twinfault generate`'s `samples`; Parquet when `path` ends in
    /// `.parquet`, CSV otherwise): per sample the signals, the AHU's phase, the injected fault in
    /// force (`fault_kind`, `normal` when none; `fault_id`, `severity`) and what the twin had open
    /// (`finding`, kinds joined by `+`). Watching a live server, `phase` and `fault_kind` are
    /// empty: the visualizer knows neither the phase history nor any truth there. Returns the rows
    /// written.
    pub fn export_window(&self, window_s: Option<f64>, path: &std::path::Path) -> Result<usize, String> {
        let Some(node) = self.selected.clone().filter(|n| matches!(self.layout.node(n), Some(NodeRef::Actuator(_))))
        else {
            return Err("select a device to export its window".into());
        };
        let upto = self.shown_at().unwrap_or(f64::INFINITY) + if self.is_live() { self.chart_origin_s() } else { 0.0 };
        let ahu = match self.layout.node(&node) {
            Some(NodeRef::Actuator(i)) => Some(self.layout.ahus[self.layout.actuators[i].ahu].id.clone()),
            _ => None,
        };
        // Phase changes of the device's AHU and the twin's finding changes on it, in time order.
        let phases: Vec<(f64, Phase)> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Phase { t, node: n, to, .. } if Some(n) == ahu.as_ref() => Some((t.as_secs_f64(), *to)),
                _ => None,
            })
            .collect();
        let findings: Vec<(f64, FaultKind, Change)> = self
            .fault_history
            .iter()
            .filter(|h| h.1 == node && h.3 != Change::Updated)
            .map(|h| (h.0.as_secs_f64(), h.2, h.3))
            .collect();
        use twinfault::dataset::generate::{PHASES, class_code, classes, phase_code};
        use twinfault::dataset::table::{Col, Dict, Table};
        let dict = |names: &[&str]| -> Vec<Arc<str>> { names.iter().map(|n| Arc::from(*n)).collect() };
        let (mut t_ms, mut setpoint, mut position, mut torque, mut power, mut temperature, mut quality) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut phase, mut class, mut severity) = (Vec::new(), Vec::new(), Vec::new());
        let (mut fault_ids, mut fault, mut finding_names, mut finding) =
            (Dict::default(), Vec::new(), Dict::default(), Vec::new());
        let live = self.is_live();
        for p in self.chart_window(window_s).filter(|p| p.t_s <= upto) {
            let t = p.t_s;
            t_ms.push((t * 1000.0).round() as i64);
            setpoint.push(p.setpoint_pct as f32);
            position.push(p.position_pct as f32);
            torque.push(p.torque_nm as f32);
            power.push(p.power_w as f32);
            temperature.push(p.temperature_c as f32);
            quality.push(p.signal_quality.is_finite().then_some(p.signal_quality as f32));
            // A live server's phases and truth are not known here: those cells stay empty.
            phase.push((!live).then(|| phases.iter().rev().find(|x| x.0 <= t).map_or(0, |x| phase_code(x.1))));
            let truth = self.truth.iter().rfind(|x| x.node == node && x.start_s <= t && x.end_s.is_none_or(|e| t < e));
            class.push((!live).then(|| class_code(truth.map(|x| x.kind))));
            fault.push(truth.map(|x| fault_ids.code(&x.id)));
            severity.push(truth.map_or(0.0, |x| x.severity as f32));
            let mut open: Vec<FaultKind> = Vec::new();
            for (_, kind, change) in findings.iter().filter(|f| f.0 <= t) {
                match change {
                    Change::Opened if !open.contains(kind) => open.push(*kind),
                    Change::Resolved => open.retain(|k| k != kind),
                    _ => {}
                }
            }
            let open: Vec<&str> = open.iter().map(|k| k.as_str()).collect();
            finding.push((!open.is_empty()).then(|| finding_names.code(&open.join("+"))));
        }
        let rows = t_ms.len();
        let table = Table::new(vec![
            ("node", Col::Str { dict: vec![Arc::from(node.as_str())], codes: vec![0; rows] }),
            ("t_ms", Col::I64(t_ms)),
            ("setpoint_pct", Col::F32(setpoint)),
            ("position_pct", Col::F32(position)),
            ("torque_nm", Col::F32(torque)),
            ("power_w", Col::F32(power)),
            ("temperature_c", Col::F32(temperature)),
            ("signal_quality", Col::OptF32(quality)),
            ("phase", Col::OptStr { dict: dict(&PHASES), codes: phase }),
            ("fault_kind", Col::OptStr { dict: dict(&classes()), codes: class }),
            ("fault_id", Col::OptStr { dict: fault_ids.values, codes: fault }),
            ("severity", Col::F32(severity)),
            ("finding", Col::OptStr { dict: finding_names.values, codes: finding }),
        ]);
        twinfault::dataset::table::write_file(path, &table).map_err(|e| format!("{e:#}"))?;
        Ok(rows)
    }

    /// The time shown when scrubbed back [chart time, s: of the run in-process, before the
    /// server's now live].
    pub fn shown_at(&self) -> Option<f64> {
        self.past.as_ref().map(|p| p.t_s - self.chart_origin_s())
    }

    fn shown_statuses(&self) -> &BTreeMap<String, Status> {
        self.past.as_ref().map_or(&self.statuses, |p| &p.statuses)
    }

    fn shown_issues(&self) -> &BTreeMap<String, Issue> {
        self.past.as_ref().map_or(&self.issues, |p| &p.issues)
    }

    /// Open issues, ranked.
    pub fn issues(&self) -> Vec<Issue> {
        let mut v: Vec<Issue> = self.shown_issues().values().cloned().collect();
        rank(&mut v);
        v
    }

    /// A node's status: its own, and for a device the worst rule finding about it that another
    /// node (its AHU) raised: a damper found stuck from the air temperatures is in fault.
    pub fn status(&self, id: &str) -> Status {
        let own = self.shown_statuses().get(id).copied().unwrap_or_default();
        self.about().get(id).map_or(own, |a| own.max(*a))
    }

    /// Per device, the worst rule finding about it raised by another node.
    fn about(&self) -> BTreeMap<&str, Status> {
        let mut m: BTreeMap<&str, Status> = BTreeMap::new();
        for i in self.shown_issues().values().filter(|i| i.source == Source::Rule) {
            if let Some(d) = i.device.as_deref().filter(|d| *d != i.node) {
                let e = m.entry(d).or_insert(Status::Healthy);
                *e = (*e).max(i.severity.status());
            }
        }
        m
    }

    /// Selects a node (its charts start afresh).
    pub fn select(&mut self, id: &str) {
        if self.layout.node(id).is_some() && self.selected.as_deref() != Some(id) {
            self.selected = Some(id.to_string());
            self.chart.clear();
            self.ahu_chart.clear();
            if let Driver::Remote(r) = &self.driver {
                r.send(Command::Select(id.to_string()));
            }
        }
    }

    fn sample_chart(&mut self) {
        let Driver::Local(l) = &self.driver else { return };
        let i = match self.selected.as_deref().and_then(|s| self.layout.node(s)) {
            Some(NodeRef::Actuator(i)) => i,
            Some(NodeRef::Ahu(h)) => {
                self.ahu_chart.push_back((self.now().as_secs_f64(), l.run.setup.ahus[h].last_summary()));
                if self.ahu_chart.len() > CHART_POINTS {
                    self.ahu_chart.pop_front();
                }
                return;
            }
            _ => return,
        };
        let Some(s) = l.run.setup.actuators[i].detector().last_sample() else { return };
        self.chart.push_back(ChartPoint {
            t_s: s.t.as_secs_f64(),
            setpoint_pct: f64::from(s.setpoint_pct),
            position_pct: f64::from(s.position_pct),
            torque_nm: f64::from(s.torque_nm),
            power_w: f64::from(s.power_w),
            temperature_c: f64::from(s.temperature_c),
            signal_quality: s.signal_quality.map_or(f64::NAN, f64::from),
        });
        if self.chart.len() > CHART_POINTS {
            self.chart.pop_front();
        }
    }

    /// Injects a fault from the form into a running simulation now.
    /// In-process the fault is in at once; live, the request goes to the server and its answer
    /// comes back in [`Sim::messages`].
    pub fn inject(&mut self, form: &InjectForm) -> Result<String, String> {
        let now = self.now();
        match &mut self.driver {
            Driver::Local(l) => {
                let inj = form.validate(&self.layout, now, l.injected + 1)?;
                let Some(NodeRef::Actuator(i)) = self.layout.node(&inj.node) else { unreachable!("validated") };
                if !l.run.setup.actuators[i].inject(inj.clone()) {
                    return Err(format!("{} is fed by telemetry", inj.node));
                }
                l.injected += 1;
                let id = inj.id.clone();
                l.run.recorder.add_injection(inj);
                Ok(format!("injected {id}"))
            }
            Driver::Remote(r) => {
                let inj = form.validate(&self.layout, now, 0)?;
                r.send(Command::Inject { node: inj.node.clone(), kind: inj.kind, severity: inj.severity });
                Ok(format!("asked the server to inject {} into {}", inj.kind, inj.node))
            }
        }
    }

    /// Asks the agent: the server's (live mode), or the agent in-process over this run (started
    /// by the first question). The answer arrives in [`Sim::agent`].
    pub fn ask(&mut self, text: &str) -> Result<(), String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("ask something".into());
        }
        if let Driver::Local(l) = &self.driver
            && self.local_agent.is_none()
        {
            let agent =
                crate::agent::LocalAgent::start(Arc::clone(l.run.facility()), &self.events, self.agent_config.clone())?;
            self.local_agent = Some(agent);
        }
        self.agent.push(("you".into(), text.to_string()));
        let messages = self
            .agent
            .iter()
            .map(
                |(who, t)| serde_json::json!({ "role": if who == "you" { "user" } else { "assistant" }, "content": t }),
            )
            .collect();
        if let Driver::Remote(r) = &self.driver {
            r.send(Command::Ask(messages));
            return Ok(());
        }
        // The run as it is now (it may be paused), before the agent reads it.
        self.tell_agent(true);
        if let Some(a) = &mut self.local_agent {
            a.ask(messages);
        }
        Ok(())
    }

    /// What answers the agent's questions: a model (named, with its endpoint), or the twin's own
    /// facts; `None` before the first question in-process, and live (the server's configuration).
    pub fn agent_answers_with(&self) -> Option<&str> {
        self.local_agent.as_ref().map(|a| a.answers_with.as_str())
    }

    /// Questions asked of the in-process agent and not yet answered.
    pub fn agent_waiting(&self) -> usize {
        self.local_agent.as_ref().map_or(0, |a| a.waiting)
    }

    /// One agent reply (the server's format) into the conversation and the pending changes.
    fn take_reply(&mut self, v: &serde_json::Value) {
        let mut text = v["reply"].as_str().unwrap_or_default().to_string();
        let tools: Vec<&str> =
            v["tool_events"].as_array().into_iter().flatten().filter_map(|e| e["tool"].as_str()).collect();
        if !tools.is_empty() {
            text = format!("[{}] {text}", tools.join(", "));
        }
        if let Some(ids) = v["unverified_ids"].as_array().filter(|a| !a.is_empty()) {
            let ids: Vec<&str> = ids.iter().filter_map(|x| x.as_str()).collect();
            text.push_str(&format!(" (not known to the twin: {})", ids.join(", ")));
        }
        self.agent.push(("agent".into(), text));
        for p in v["pending_actions"].as_array().into_iter().flatten() {
            if let Some(id) = p["pending_action"].as_str() {
                self.pending.push((id.into(), format!("{} {}", p["tool"].as_str().unwrap_or("?"), p["arguments"])));
            }
        }
    }

    /// The in-process agent's replies in, and the diagnoses it waits for answered from the run's
    /// twins as they are now.
    fn poll_agent(&mut self) -> bool {
        let (Driver::Local(l), Some(a)) = (&self.driver, &mut self.local_agent) else { return false };
        let now = l.run.setup.grid.epoch_start(l.run.epoch());
        for d in a.diagnoses() {
            use twinfault::sim::engine::NoDiagnosis;
            let answer = match l.run.facility().node(&d.node) {
                Some(NodeRef::Actuator(i)) => Ok(serde_json::to_value(l.run.setup.actuators[i].diagnosis(now))),
                Some(NodeRef::Ahu(h)) => Ok(serde_json::to_value(l.run.setup.ahus[h].diagnosis(now))),
                Some(NodeRef::Plant) => Err(NoDiagnosis::Plant(d.node.clone()).to_string()),
                None => Err(NoDiagnosis::Unknown(d.node.clone()).to_string()),
            };
            let _ = d.reply.send(answer.map(|v| v.unwrap_or_default()));
        }
        let replies = a.replies();
        let changed = !replies.is_empty();
        for v in replies {
            self.take_reply(&v);
        }
        changed
    }

    /// The in-process agent's "now", and each device's latest sample while a question is open
    /// (or `now`).
    fn tell_agent(&self, now: bool) {
        let (Driver::Local(l), Some(a)) = (&self.driver, &self.local_agent) else { return };
        a.set_now(self.now().0 as i64);
        if a.waiting == 0 && !now {
            return;
        }
        for (i, t) in l.run.setup.actuators.iter().enumerate() {
            if let Some(s) = t.detector().last_sample() {
                a.live.note_sample(i, *s);
            }
        }
    }

    /// Approves or rejects a change the agent proposed. Live, the server decides and carries it
    /// out; in-process, the approval policy decides and the run takes the change at once.
    pub fn decide(&mut self, action: &str, approve: bool) {
        self.pending.retain(|p| p.0 != action);
        if let Driver::Remote(r) = &self.driver {
            r.send(Command::Decide { action: action.to_string(), approve });
            return;
        }
        let Some(a) = &self.local_agent else { return };
        let now = twinfault::clock::now_ms();
        let policy = Arc::clone(&a.policy);
        let decided = if approve {
            policy.approve(action, crate::agent::OPERATOR, now)
        } else {
            policy.reject(action, crate::agent::OPERATOR, now)
        };
        let message = match decided {
            Err(e) => e.to_string(),
            Ok(p) if !approve => format!("rejected {}: nothing changed", p.id),
            Ok(p) => {
                let result = self.carry_out(p.tool, &p.arguments);
                if let Some(a) = &self.local_agent {
                    a.record(p.tool, p.arguments.clone(), &result);
                }
                match result {
                    Ok(m) => format!("approved {}: {m}", p.id),
                    Err(e) => format!("approved {}, but it failed: {e}", p.id),
                }
            }
        };
        self.messages.push(message);
    }

    /// An approved change, on the in-process run now.
    fn carry_out(
        &mut self,
        change: twinfault::agent::policy::Change,
        args: &serde_json::Value,
    ) -> Result<String, String> {
        use twinfault::agent::policy::Change as C;
        let text = |k: &str| args[k].as_str().map(str::to_string).ok_or_else(|| format!("{change}: no \"{k}\""));
        match change {
            C::InjectFault => {
                let kind = text("kind")?;
                let form = InjectForm {
                    node: text("node")?,
                    kind: FaultKind::parse(&kind).ok_or_else(|| format!("\"{kind}\" is not a fault kind"))?,
                    severity: args["severity"].as_f64().map_or_else(|| args["severity"].to_string(), |v| v.to_string()),
                };
                self.inject(&form)
            }
            C::ClearFault => self.repair(&text("node")?),
            C::ResolveFault => self.resolve(&text("fault")?, &text("note")?),
        }
    }

    /// Repairs a simulated device now: its injected faults end (in-process runs; a live server
    /// repairs through its agent's approved `clear_fault`).
    pub fn repair(&mut self, node: &str) -> Result<String, String> {
        let now = self.now();
        let Driver::Local(l) = &mut self.driver else { return Err("a live server repairs through its agent".into()) };
        let Some(NodeRef::Actuator(i)) = self.layout.node(node) else { return Err(format!("no actuator \"{node}\"")) };
        let ids =
            l.run.setup.actuators[i].clear_injections(now).ok_or_else(|| format!("{node} is fed by telemetry"))?;
        l.run.recorder.end_injections(&ids, now);
        Ok(if ids.is_empty() {
            format!("{node} had no injected fault")
        } else {
            format!("repaired {node}: ended {}", ids.join(", "))
        })
    }

    /// Questions to offer: about the worst open issue first.
    pub fn quick_prompts(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(i) = self.issues().first() {
            v.push(format!("Why is {} reporting {}?", i.target(), i.kind));
            v.push(format!("Show the fault history of {}.", i.node));
        }
        v.push("Give me a live overview and the top faults.".into());
        v
    }

    /// Resolves an open fault with a note of what was done: a live server's (it answers in
    /// [`Sim::messages`]), or in-process at once, as its twin's `force_resolve` (it opens again if
    /// its condition holds).
    pub fn resolve(&mut self, fault: &str, note: &str) -> Result<String, String> {
        let note = note.trim();
        if note.is_empty() {
            return Err("a resolution needs a note (what was done)".into());
        }
        let now = self.now();
        let l = match &mut self.driver {
            Driver::Remote(r) => {
                r.send(Command::Resolve { fault: fault.to_string(), note: note.to_string() });
                return Ok(format!("asked the server to resolve {fault}"));
            }
            Driver::Local(l) => l,
        };
        let f = self.ledger.fault(fault).filter(|f| f.is_open()).ok_or_else(|| format!("no open fault \"{fault}\""))?;
        let (node, kind, device) = (f.node.clone(), f.kind, f.device.clone());
        let (at, event) = match self.layout.node(&node) {
            Some(n @ NodeRef::Actuator(i)) => (n, l.run.setup.actuators[i].force_resolve(now, kind)),
            Some(n @ NodeRef::Ahu(h)) => (n, l.run.setup.ahus[h].force_resolve(now, kind, device.as_deref())),
            _ => (NodeRef::Plant, None),
        };
        let e = event.ok_or_else(|| format!("{fault} is no longer open on {node}"))?;
        l.run.recorder.findings(at, vec![e]);
        Ok(format!("resolved {fault} ({note})"))
    }

    /// Status of every actuator (facility order) and of every zone, in one pass: what a frame
    /// paints.
    pub fn frame_statuses(&self) -> (Vec<Status>, Vec<Status>) {
        let about = self.about();
        let devices: Vec<Status> = self
            .layout
            .actuators
            .iter()
            .map(|a| {
                let own = self.shown_statuses().get(&a.id).copied().unwrap_or_default();
                about.get(a.id.as_str()).map_or(own, |s| own.max(*s))
            })
            .collect();
        let mut zones = vec![Status::Healthy; self.layout.zones.len()];
        for (a, s) in self.layout.actuators.iter().zip(&devices) {
            if let Some(z) = a.zone {
                zones[z] = zones[z].max(*s);
            }
        }
        (devices, zones)
    }

    /// Status of a zone: the worst of the devices in it.
    pub fn zone_status(&self, zone: usize) -> Status {
        self.layout
            .actuators
            .iter()
            .filter(|a| a.zone == Some(zone))
            .map(|a| self.status(&a.id))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(node: &str, severity: Severity, confidence: f32, opened_s: u64) -> Issue {
        Issue {
            id: None,
            node: node.into(),
            device: None,
            kind: FaultKind::GearJam,
            severity,
            confidence,
            opened_at: SimTime(opened_s * 1000),
            summary: String::new(),
            action: String::new(),
            source: Source::Rule,
        }
    }

    #[test]
    fn issues_rank_by_severity_then_confidence_then_age() {
        let mut v = vec![
            issue("a", Severity::Warning, 0.9, 1),
            issue("b", Severity::Critical, 0.6, 5),
            issue("c", Severity::Critical, 0.8, 9),
            issue("d", Severity::Critical, 0.8, 3),
        ];
        rank(&mut v);
        let order: Vec<&str> = v.iter().map(|i| i.node.as_str()).collect();
        assert_eq!(order, ["d", "c", "b", "a"]);
    }

    #[test]
    fn search_is_case_insensitive_and_empty_matches_all() {
        let ids = ["BEL-VNT-001", "BEL-VNT-002", "ahu-01"];
        assert_eq!(search(ids, "vnt-002"), ["BEL-VNT-002"]);
        assert_eq!(search(ids, "  ").len(), 3);
        assert!(search(ids, "xyz").is_empty());
    }

    fn facility() -> Layout {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../twins/datacenter.toml");
        twinfault_load::facility(&root, None).unwrap().layout()
    }

    #[test]
    fn hit_test_finds_the_device_then_the_ahu_then_the_zone() {
        let f = facility();
        let id = |h: Option<MapHit>| match h {
            Some(MapHit::Device(i)) => f.actuators[i].id.clone(),
            Some(MapHit::Ahu(i)) => f.ahus[i].id.clone(),
            Some(MapHit::Zone(i)) => f.zones[i].id.clone(),
            None => "-".into(),
        };
        // BEL-VNT-003 is drawn at (730, 185), in zone-3; ahu-01 at (20, 185).
        assert_eq!(id(hit_test(&f, 733.0, 183.0, 10.0)), "BEL-VNT-003");
        assert_eq!(id(hit_test(&f, 760.0, 230.0, 10.0)), "zone-3");
        assert_eq!(id(hit_test(&f, 25.0, 190.0, 10.0)), "ahu-01");
        assert_eq!(id(hit_test(&f, 1190.0, 690.0, 10.0)), "-");
    }

    #[test]
    fn mentions_complete_node_ids() {
        let f = facility();
        assert_eq!(
            mentions(&f, "why is @bel-vnt-00"),
            ["BEL-VNT-001", "BEL-VNT-002", "BEL-VNT-003", "BEL-VNT-004", "BEL-VNT-005"]
        );
        assert_eq!(mentions(&f, "why is @ahu-02"), ["ahu-02"]);
        assert!(mentions(&f, "no mention here").is_empty());
        assert_eq!(complete_mention("why is @ahu", "ahu-02"), "why is ahu-02 ");
    }

    #[test]
    fn quick_prompts_start_from_the_worst_issue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/datacenter_gear_jam.toml");
        let l = twinfault_load::scenario(&root, None).unwrap();
        let mut sim = Sim::new(l.scenario, l.facility);
        assert_eq!(sim.quick_prompts(), ["Give me a live overview and the top faults."]);
        while sim.issues().is_empty() && !sim.finished() {
            sim.step();
        }
        assert_eq!(sim.quick_prompts()[0], "Why is BEL-VNT-003 reporting gear_jam?");
        assert_eq!(sim.ask("  ").unwrap_err(), "ask something");
        assert_eq!(sim.agent_answers_with(), None, "an empty question started the agent");
    }

    #[test]
    fn thinning_spreads_points_over_the_whole_window_and_keeps_the_last() {
        let v: Vec<u32> = (0..4800).collect();
        let t = thin(v, 1200);
        assert!(t.len() <= 1200 && t.len() > 600, "{}", t.len());
        assert_eq!((t[0], *t.last().unwrap()), (0, 4799));
        assert_eq!(thin(vec![1, 2, 3], 1200), [1, 2, 3]);
    }

    #[test]
    fn zoomed_out_blocks_cover_each_ahu_and_take_its_worst_device() {
        let f = facility();
        let blocks = ahu_blocks(&f, 10.0);
        assert_eq!(blocks.len(), 2);
        for (a, b) in f.ahus.iter().zip(&blocks) {
            let inside = |[x, y]: [f64; 2]| x > b[0] && x < b[0] + b[2] && y > b[1] && y < b[1] + b[3];
            assert!(inside(a.position), "{} outside its block", a.id);
            assert!(a.children.iter().all(|&c| inside(f.actuators[c].position)));
        }
        let mut devices = vec![Status::Healthy; f.actuators.len()];
        let i = f.actuators.iter().position(|a| a.id == "BEL-VNT-005").unwrap();
        devices[i] = Status::Critical;
        devices[f.actuators.iter().position(|a| a.id == "BEL-VNT-006").unwrap()] = Status::Warning;
        let counts = ahu_counts(&f, &devices);
        let h = f.actuators[i].ahu;
        assert_eq!(counts[h], [5, 1, 1, 0, 0]);
        assert_eq!((worst(&counts[h]), worst(&counts[1 - h])), (Status::Critical, Status::Healthy));
        assert_eq!(worst(&[3, 2, 0, 1, 0]), Status::Offline);
        assert_eq!(worst(&[1, 0, 0, 0, 2]), Status::Healthy);
        assert_eq!(worst(&[0, 0, 0, 0, 2]), Status::Unknown);
    }

    #[test]
    fn the_injection_form_refuses_what_cannot_be_injected() {
        let f = facility();
        let form = |node: &str, kind, severity: &str| InjectForm { node: node.into(), kind, severity: severity.into() };
        assert!(form("BEL-VNT-003", FaultKind::GearJam, "0.8").validate(&f, SimTime(5000), 1).is_ok());
        assert!(
            form("ahu-01", FaultKind::GearJam, "1")
                .validate(&f, SimTime(0), 1)
                .unwrap_err()
                .contains("unknown actuator")
        );
        assert!(
            form("BEL-VNT-003", FaultKind::GearJam, "1.5").validate(&f, SimTime(0), 1).unwrap_err().contains("outside")
        );
        assert!(
            form("BEL-VNT-003", FaultKind::GearJam, "lots")
                .validate(&f, SimTime(0), 1)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            form("BEL-VNT-003", FaultKind::ValveLeak, "1")
                .validate(&f, SimTime(0), 1)
                .unwrap_err()
                .contains("does not apply")
        );
        assert!(
            form("BEL-VNT-003", FaultKind::SupplyAirDeviation, "1")
                .validate(&f, SimTime(0), 1)
                .unwrap_err()
                .contains("not an injectable fault kind")
        );
        let inj = form(" BEL-CHW-101 ", FaultKind::ValveLeak, "0.5").validate(&f, SimTime(7000), 3).unwrap();
        assert_eq!((inj.node.as_str(), inj.start, inj.id.as_str()), ("BEL-CHW-101", SimTime(7000), "L3"));
    }

    #[test]
    fn a_live_injection_is_detected_and_selection_follows_the_issue() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/datacenter_fault_free_day.toml");
        let l = twinfault_load::scenario(&root, None).unwrap();
        let mut sim = Sim::new(l.scenario, l.facility);
        // Into the occupied day, then a jam.
        while sim.now() < SimTime(8 * 3600 * 1000) {
            sim.step();
        }
        assert!(sim.issues().is_empty());
        let form = InjectForm { node: "BEL-VNT-004".into(), kind: FaultKind::GearJam, severity: "1".into() };
        sim.inject(&form).unwrap();
        sim.select("BEL-VNT-004");
        // A settled zone loop asks little of its damper: the jam shows once the zone drifts.
        for _ in 0..1800 {
            sim.step();
            if !sim.issues().is_empty() {
                break;
            }
        }
        for _ in 0..5 {
            sim.step();
        }
        let issues = sim.issues();
        assert_eq!(issues.first().map(|i| (i.target(), i.kind)), Some(("BEL-VNT-004", FaultKind::GearJam)));
        assert_eq!(sim.status("BEL-VNT-004"), Status::Critical);
        assert_eq!(sim.status("ahu-01"), Status::Critical);
        let zone = sim.layout.actuators.iter().find(|a| a.id == "BEL-VNT-004").unwrap().zone.unwrap();
        assert_eq!(sim.zone_status(zone), Status::Critical);
        let (devices, zones) = sim.frame_statuses();
        assert_eq!(zones[zone], Status::Critical);
        assert_eq!(zones.iter().filter(|z| **z == Status::Critical).count(), 1);
        assert_eq!(devices.iter().filter(|d| **d == Status::Critical).count(), 1);
        assert!(sim.chart.len() >= 5, "the selected device's chart fills");
        let last = sim.chart.back().unwrap().t_s;
        assert!(sim.chart_window(Some(30.0)).all(|p| p.t_s >= last - 30.0));
        assert!(sim.chart_window(Some(30.0)).count() < sim.chart.len());
        assert_eq!(sim.chart_window(None).count(), sim.chart.len());
        assert!(sim.fault_history.iter().any(|h| h.1 == "BEL-VNT-004" && h.3 == Change::Opened));
    }

    /// The stuck valve is found by its AHU: its status counts it; the time slider shows the run
    /// before the fault (all healthy, no issue) and returns to now.
    #[test]
    fn a_device_counts_its_ahus_finding_and_the_slider_shows_the_past() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/datacenter_stuck_at.toml");
        let l = twinfault_load::scenario(&root, None).unwrap();
        let mut sim = Sim::new(l.scenario, l.facility);
        while !sim.finished() && sim.issues().iter().all(|i| i.target() != "BEL-CHW-201") {
            sim.step();
        }
        let issue = sim.issues().into_iter().find(|i| i.target() == "BEL-CHW-201").expect("the stuck valve is found");
        assert_eq!(issue.node, "ahu-02", "raised by its AHU");
        assert!(
            sim.statuses["BEL-CHW-201"] < Status::Critical,
            "its own status already says so: the test shows nothing"
        );
        assert_eq!(sim.status("BEL-CHW-201"), issue.severity.status());
        let (devices, _) = sim.frame_statuses();
        let k = sim.layout.actuators.iter().position(|a| a.id == "BEL-CHW-201").unwrap();
        assert_eq!(devices[k], issue.severity.status());
        // Back to before the injection: no issue, the valve and its AHU as they were.
        let before = issue.opened_at.as_secs_f64() - 600.0;
        sim.scrub_to(Some(before));
        assert_eq!(sim.shown_at(), Some(before));
        assert!(sim.issues().is_empty());
        assert_eq!(sim.status("BEL-CHW-201"), Status::Healthy);
        assert_eq!(sim.status("ahu-02"), Status::Healthy);
        // Just after it opened: the issue again; then now.
        sim.scrub_to(Some(issue.opened_at.as_secs_f64() + 1.0));
        assert_eq!(sim.issues().len(), 1);
        sim.scrub_to(None);
        assert_eq!(sim.shown_at(), None);
        assert_eq!(sim.status("BEL-CHW-201"), issue.severity.status());
    }

    /// A live window remembers what it polled, bounded: statuses by their changes, issue lists
    /// while they fit.
    #[test]
    fn a_live_window_remembers_its_polls_within_bounds() {
        let mut w = Watched::default();
        let mut known = BTreeMap::new();
        let mut poll = |w: &mut Watched, t: f64, s: Status, n_issues: usize| {
            let statuses = vec![("BEL-VNT-005".to_string(), s)];
            let issues: BTreeMap<String, Issue> = (0..n_issues)
                .map(|k| (format!("F-{t}-{k}"), issue("BEL-VNT-005", Severity::Critical, 0.9, k as u64)))
                .collect();
            w.poll(t, &known, &statuses, &issues);
            known.extend(statuses);
        };
        poll(&mut w, 100.0, Status::Healthy, 0);
        poll(&mut w, 101.0, Status::Healthy, 0);
        poll(&mut w, 102.0, Status::Critical, 1);
        assert_eq!(w.changes.len(), 1, "an unchanged status is not kept again");
        assert_eq!(w.issues.len(), 2, "an unchanged issue list is not kept again");
        let (st, is) = w.at(101.5);
        assert_eq!((st["BEL-VNT-005"], is.len()), (Status::Healthy, 0));
        let (st, is) = w.at(102.0);
        assert_eq!((st["BEL-VNT-005"], is.len()), (Status::Critical, 1));
        // Big issue lists: the oldest go, and the slider starts where both are remembered.
        for k in 0..30 {
            poll(&mut w, 200.0 + f64::from(k), Status::Critical, 5_000);
        }
        assert!(w.issue_entries <= WATCHED_ISSUES, "{}", w.issue_entries);
        assert_eq!(w.issue_entries, w.issues.iter().map(|x| x.1.len()).sum::<usize>());
        assert!(w.since().unwrap() > 200.0);
    }

    /// The charted window of a jammed damper, exported: one labelled row per sample, the
    /// injected fault in force from its onset, the twin's finding from when it opened.
    #[test]
    fn the_charted_window_exports_as_a_labelled_slice() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/datacenter_gear_jam.toml");
        let l = twinfault_load::scenario(&root, None).unwrap();
        let mut sim = Sim::new(l.scenario, l.facility);
        sim.select("BEL-VNT-003");
        while sim.now() < SimTime(2_400_000) {
            sim.step();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slice.csv");
        let rows = sim.export_window(Some(1200.0), &path).unwrap();
        // The same slice as Parquet, read back by the dataset's reader: the same rows and labels.
        let parquet = dir.path().join("slice.parquet");
        assert_eq!(sim.export_window(Some(1200.0), &parquet).unwrap(), rows);
        let back = twinfault::dataset::table::read_parquet(&parquet).unwrap();
        assert_eq!(back.rows(), rows);
        let twinfault::dataset::table::Col::OptStr { dict, codes } = back.col("fault_kind").unwrap() else {
            panic!("fault_kind is text")
        };
        let labels: Vec<&str> = codes.iter().map(|c| dict[c.unwrap() as usize].as_ref()).collect();
        assert_eq!((labels[0], labels[rows - 1]), ("normal", "gear_jam"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), rows + 1);
        assert!(rows >= 1000, "{rows} rows for 20 minutes");
        assert!(lines[0].starts_with("node,t_ms,setpoint_pct,position_pct,torque_nm"));
        let col = |l: &str, k: usize| l.split(',').nth(k).unwrap().to_string();
        // From 1200 s to 2400 s: normal before the jam's onset at 1800 s, gear_jam (F1) after.
        let first = lines[1];
        let last = lines[rows];
        assert_eq!(
            (col(first, 0), col(first, 9), col(first, 8)),
            ("BEL-VNT-003".into(), "normal".into(), "steady".into())
        );
        assert_eq!((col(last, 9), col(last, 10)), ("gear_jam".into(), "F1".into()));
        assert_eq!(col(last, 12), "gear_jam", "the twin had found it by the window's end");
        let onset = lines[1..].iter().position(|l| col(l, 9) == "gear_jam").unwrap();
        let t: i64 = col(lines[1 + onset], 1).parse().unwrap();
        assert!((1_800_000..1_801_000).contains(&t), "labelled from {t} ms");
        // Nothing selected, or an AHU: a clear refusal.
        sim.selected = None;
        assert!(sim.export_window(None, &path).unwrap_err().contains("select"));
        sim.select("ahu-01");
        sim.step();
        assert!(sim.export_window(None, &path).unwrap_err().contains("select a device"));
        // An AHU selected charts its own epochs.
        let (_, p) = *sim.ahu_chart.back().expect("the AHU's epoch charted");
        assert!(sim.chart.is_empty() && p.supply_air_c.is_finite() && p.cooling_kw >= 0.0, "{p:?}");
    }
}
