//! `twinfault replay`: a trend log (CSV with a mapping, the rig's CSVs, or NDJSON in the ingest
//! format) fed into the facility's twins through the ingest validation, in time order, as fast as
//! possible or paced. Reports every finding and the resulting statuses.

use crate::telemetry::logfile::{self, Reason, Tally, TimeOrder};
use crate::telemetry::payload::{self, Window};
use crate::telemetry::rig::parse_rotation;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinfault_core::SimTime;
use twinfault_core::config::{Facility, parse_toml};
use twinfault_core::counterfactual::Ranking;
use twinfault_core::detect::{FindingEvent, Source};
use twinfault_core::ledger::FaultLedger;
use twinfault_core::time::parse_timestamp_ms;
use twinfault_core::twin::{ActuatorTwin, Mode};
use twinfault_core::types::{Role, Status};

/// The column (or, for a family of logs that name it differently, the columns in order of
/// preference) a mapped field is read from: `"sat"` or `["AHU: Supply Air Temperature Set
/// Point", "SA-TEMP-SP"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Any(Vec<String>),
}

impl Columns {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Columns::One(c) => vec![c.trim()],
            Columns::Any(cs) => cs.iter().map(|c| c.trim()).collect(),
        }
    }
}

impl std::fmt::Display for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" or "))
    }
}

/// A column mapping for CSV trend logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub format: String,
    pub time_column: String,
    /// `rfc3339` (absolute) or `seconds` (relative; a clock that restarts starts a new segment).
    pub time: String,
    /// Column with the node id; without it, `--node` names the node.
    #[serde(default)]
    pub node_column: Option<String>,
    /// Ingest field name → CSV column (for AHU logs: outdoor_air, return_air, mixed_air,
    /// supply_air, supply_air_setpoint or supply_air_heating/cooling_setpoint, occupied, fan).
    pub fields: BTreeMap<String, Columns>,
    /// Fields (or, for AHU logs, children whose command column) a log of this format may lack
    /// (a family map: one log has a single setpoint column, another a heating and a cooling one;
    /// a unit without a heating coil); any other's column must exist. A missing command is 0 %.
    #[serde(default)]
    pub optional: Vec<String>,
    /// `actuator` (default) or `ahu`.
    #[serde(default = "default_target")]
    pub target: String,
    /// The node an AHU log belongs to.
    #[serde(default)]
    pub node: Option<String>,
    /// `celsius` (default) or `fahrenheit`.
    #[serde(default = "default_unit")]
    pub temperature_unit: String,
    /// AHU logs: child actuator id → column of its command.
    #[serde(default)]
    pub commands: BTreeMap<String, Columns>,
    /// Multiplier from the log's command unit to % (100 for 0..1).
    #[serde(default = "default_scale")]
    pub command_scale: f64,
}

fn default_target() -> String {
    "actuator".into()
}
fn default_unit() -> String {
    "celsius".into()
}
fn default_scale() -> f64 {
    1.0
}

/// Parses `9/11/2017 13:05` (month/day/year, 24 h; also with seconds, and `1:05:00 PM` as a
/// spreadsheet writes it) into ms since the epoch (as UTC).
fn parse_us_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let mut d = date.split('/').map(|x| x.parse::<u32>().ok());
    let (m, day, y) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim();
    let (time, pm) = match time.strip_suffix("PM").or_else(|| time.strip_suffix("pm")) {
        Some(t) => (t.trim(), Some(true)),
        None => match time.strip_suffix("AM").or_else(|| time.strip_suffix("am")) {
            Some(t) => (t.trim(), Some(false)),
            None => (time, None),
        },
    };
    let mut t = time.split(':');
    let (h, mi) = (t.next()?.parse::<u32>().ok()?, t.next()?.parse::<u32>().ok()?);
    let sec = t.next().map_or(Some(0), |x| x.parse::<u32>().ok())?;
    if t.next().is_some() {
        return None;
    }
    let h = match pm {
        Some(_) if !(1..=12).contains(&h) => return None,
        Some(true) => h % 12 + 12,
        Some(false) => h % 12,
        None => h,
    };
    parse_timestamp_ms(&format!("{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:{sec:02}Z"))
}

/// A trend log's time: US `M/D/YYYY H:MM[:SS]`, or ISO 8601 / RFC 3339 (with or without seconds
/// and offset; without an offset, UTC).
fn parse_log_time(s: &str) -> Option<i64> {
    parse_us_datetime(s).or_else(|| parse_timestamp_ms(s)).or_else(|| parse_timestamp_ms(&format!("{}:00", s.trim())))
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
        let m: Mapping = parse_toml(&text, &label)?;
        if m.format != "csv" {
            bail!("{label}: key `format`: only \"csv\" mappings exist (NDJSON needs none)");
        }
        if !["rfc3339", "seconds", "us_datetime"].contains(&m.time.as_str()) {
            bail!("{label}: key `time`: \"{}\" is not rfc3339, seconds or us_datetime", m.time);
        }
        if m.target != "actuator" && m.target != "ahu" {
            bail!("{label}: key `target`: \"{}\" is not actuator or ahu", m.target);
        }
        if m.temperature_unit != "celsius" && m.temperature_unit != "fahrenheit" {
            bail!("{label}: key `temperature_unit`: \"{}\" is not celsius or fahrenheit", m.temperature_unit);
        }
        if let Some(o) = m.optional.iter().find(|o| !m.fields.contains_key(*o) && !m.commands.contains_key(*o)) {
            bail!("{label}: key `optional`: \"{o}\" is not one of the mapping's fields or commands");
        }
        Ok(m)
    }
}

/// Ingest objects read from a log, each with the file row it came from.
struct Objects {
    items: Vec<Value>,
    rows: Vec<usize>,
    /// Whether the log's times are absolute (UTC) or relative to its start.
    absolute: bool,
}

/// Fields without which a row of an actuator log is no sample (the rest may be held a row).
const ESSENTIAL_FIELDS: [&str; 6] = [
    "position_percent",
    "setpoint_position_percent",
    "feedback_position_%",
    "setpoint_position_%",
    "position",
    "setpoint",
];

/// Turns a mapped CSV into ingest objects; imperfect rows are counted in `tally`.
fn csv_objects(text: &str, file: &Path, m: &Mapping, node: Option<&str>, tally: &mut Tally) -> Result<Objects> {
    let label = file.display().to_string();
    let csv = logfile::Csv::parse(text, file)?;
    let col = |name: &str| -> Result<usize> {
        csv.column(&[name]).with_context(|| format!("{label}: no column \"{name}\" (the mapping names it)"))
    };
    let t_col = col(&m.time_column)?;
    let node_col = m.node_column.as_deref().map(col).transpose()?;
    if node_col.is_none() && node.is_none() {
        bail!("{label}: the mapping has no node_column: say which node with --node");
    }
    let mut fields: Vec<(String, usize)> = Vec::new();
    for (k, c) in &m.fields {
        match csv.column(&c.names()) {
            Some(i) => fields.push((k.clone(), i)),
            None if m.optional.contains(k) => {}
            None => bail!("{label}: no column {c} (the mapping's fields.{k})"),
        }
    }
    let mut out = Objects { items: Vec::new(), rows: Vec::new(), absolute: m.time != "seconds" };
    let (mut offset, mut prev) = (0i64, None::<i64>);
    let mut last: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    'rows: for (row, f) in &csv.rows {
        let row = *row;
        if f.len() < csv.header.len() {
            tally.note(Reason::ShortRow, row, || format!("{} of {} cells", f.len(), csv.header.len()))?;
            continue;
        }
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let t = match m.time.as_str() {
            "rfc3339" => parse_timestamp_ms(get(t_col)),
            "us_datetime" => parse_us_datetime(get(t_col)),
            _ => logfile::number(get(t_col)).ok().map(|s| (s * 1000.0).round() as i64),
        };
        let Some(mut t) = t else {
            tally.note(Reason::NoTime, row, || format!("column {}: \"{}\"", m.time_column, get(t_col)))?;
            continue;
        };
        if m.time == "seconds" {
            if let Some(p) = prev.filter(|&p| t + offset < p) {
                offset = p + 250 - t;
            }
            t += offset;
            prev = Some(t);
        }
        let node = match node_col {
            Some(c) => get(c).to_string(),
            None => node.unwrap_or_default().to_string(),
        };
        let before = last.get(&node);
        let mut tel = Map::new();
        for (k, c) in &fields {
            let raw = get(*c);
            let v = if k == "rotation_direction" {
                parse_rotation(raw).map(|r| json!(r)).ok_or(if raw.is_empty() {
                    Reason::EmptyCell
                } else {
                    Reason::NotANumber
                })
            } else {
                logfile::number(raw).map(|x| json!(x))
            };
            match v {
                Ok(v) => {
                    tel.insert(k.clone(), v);
                }
                Err(reason) => {
                    let detail = || format!("column {}: \"{raw}\"", csv.header.get(*c).copied().unwrap_or("?"));
                    match before.and_then(|b| b.get(k)).filter(|_| !ESSENTIAL_FIELDS.contains(&k.as_str())) {
                        Some(held) => {
                            tally.note(Reason::HeldField, row, || format!("{}: {}", reason.as_str(), detail()))?;
                            tel.insert(k.clone(), held.clone());
                        }
                        None => {
                            tally.note(reason, row, detail)?;
                            continue 'rows;
                        }
                    }
                }
            }
        }
        last.insert(node.clone(), tel.clone());
        out.items.push(json!({ "nodeId": node, "timestamp": t, "telemetry": tel }));
        out.rows.push(row);
    }
    Ok(out)
}

/// NDJSON (or a JSON array) in the ingest format; a line that is not JSON is counted.
fn json_objects(text: &str, tally: &mut Tally) -> Result<Objects> {
    let mut out = Objects { items: Vec::new(), rows: Vec::new(), absolute: true };
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => {
                out.rows = (1..=items.len()).collect();
                out.items = items;
                return Ok(out);
            }
            Ok(_) => bail!("expected an array of objects"),
            Err(e) => bail!("invalid JSON: {e}"),
        }
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => {
                out.items.push(v);
                out.rows.push(i + 1);
            }
            Err(e) => tally.note(Reason::BadJson, i + 1, || e.to_string())?,
        }
    }
    Ok(out)
}

/// The rig's CSVs, read by the rig reader (which knows their quirks), as ingest objects at the
/// recording's own times (relative to its start when it has no absolute clock).
fn rig_objects(path: &Path, node: &str, strict: bool) -> Result<(Objects, Tally)> {
    let rec = crate::telemetry::rig::read(path, strict)?;
    let origin = rec.origin_ms.unwrap_or(0);
    let items = rec
        .samples
        .iter()
        .map(|s| {
            json!({ "nodeId": node, "timestamp": origin + s.t.0 as i64, "telemetry": {
                "position_percent": s.position_pct, "setpoint_position_percent": s.setpoint_pct, "torque": s.torque_nm,
                "power_w": s.power_w, "temperature": s.temperature_c, "rotation_direction": s.rotation } })
        })
        .collect();
    Ok((Objects { items, rows: rec.lines.clone(), absolute: rec.origin_ms.is_some() }, rec.tally))
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub file: String,
    pub samples: usize,
    pub nodes: Vec<String>,
    /// `utc` when the log's times are absolute (ms since the epoch), else `relative` (ms since
    /// the log's start).
    pub clock: &'static str,
    /// When the first and the last sample were, on that clock [ms].
    pub first_ms: u64,
    pub last_ms: u64,
    /// Findings that opened, with the replayed log's time.
    pub findings: Vec<ReplayFinding>,
    /// Final status per node that received samples, and of their AHUs (worst child).
    pub statuses: BTreeMap<String, Status>,
    /// The log as a whole, per device: the kinds found, when, on what evidence.
    pub verdicts: Vec<Verdict>,
    /// Rows skipped or patched, by reason; gaps and the sampling interval.
    pub reading: Tally,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayFinding {
    pub node: String,
    pub kind: String,
    pub severity: String,
    pub opened_at_ms: u64,
    /// Seconds from the log's first sample to the opening.
    pub after_s: f64,
    pub resolved_at_ms: Option<u64>,
    pub summary: String,
    /// `rule`, or `model` for a learned classifier's verdict (which sets no status).
    pub source: &'static str,
    /// The measured value when it opened, and the rule's threshold (same unit).
    pub value: f32,
    pub threshold: Option<f32>,
    pub unit: String,
}

/// A commissioning-style verdict on one device over the whole log.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub node: String,
    /// `fault` (a rule opened a finding), `healthy`, or `offline` at the end.
    pub result: &'static str,
    /// The rules' kinds found, in the order they first opened.
    pub kinds: Vec<String>,
    /// Kinds only the learned classifier saw (they set no status).
    pub model_kinds: Vec<String>,
    pub samples: usize,
    pub span_s: f64,
}

pub struct ReplayOptions {
    pub node: Option<String>,
    pub map: Option<PathBuf>,
    /// Pace at this multiple of the log's own time; `None` is as fast as possible.
    pub speed: Option<f64>,
    /// Any imperfect row is an error (else it is skipped and counted).
    pub strict: bool,
}

/// A log's validated samples in time order per node, with what was skipped.
pub struct LogSamples {
    pub accepted: Vec<payload::Accepted>,
    pub tally: Tally,
    /// Whether sample times are UTC (else relative to the log's start).
    pub absolute: bool,
}

/// Reads and validates a log's samples (rig CSV, mapped CSV or NDJSON), in time order. Rows
/// that give no valid sample are skipped and counted (`strict`: refused).
pub fn read_samples(file: &Path, facility: &Facility, opts: &ReplayOptions) -> Result<LogSamples> {
    let label = file.display().to_string();
    let text = logfile::read_text(file)?;
    let mut tally = Tally::new(file, opts.strict);
    let objects = if let Some(m) = &opts.map {
        csv_objects(&text, file, &Mapping::load(m)?, opts.node.as_deref(), &mut tally)?
    } else if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        json_objects(&text, &mut tally).with_context(|| label.clone())?
    } else {
        let node = opts
            .node
            .as_deref()
            .with_context(|| format!("{label}: a CSV needs --node (and --map unless it is a rig recording)"))?;
        let (objects, rig_tally) = rig_objects(file, node, opts.strict)?;
        tally = rig_tally;
        objects
    };
    let rows_read = tally.rows.max(objects.items.len() + tally.skipped());
    let max_t = objects.items.iter().filter_map(|o| o.get("timestamp").and_then(Value::as_i64)).max().unwrap_or(0);
    // The log's own clock: nothing is "in the future"; out-of-order within the whole log.
    let window = Window { now_ms: max_t, max_future_ms: 0, out_of_order_ms: i64::MAX / 4, retention_ms: i64::MAX / 4 };
    let mut accepted = Vec::with_capacity(objects.items.len());
    let mut order: BTreeMap<usize, TimeOrder> = BTreeMap::new();
    for (item, &row) in objects.items.iter().zip(&objects.rows) {
        match payload::validate(std::slice::from_ref(item), facility, &window, |_| None) {
            Ok(a) => {
                for a in a {
                    // Time order per node: a duplicated or backwards time is counted (the rig
                    // reader has done this already for its files).
                    let o = order.entry(a.actuator).or_default();
                    if o.admit(a.sample.t.0 as i64, &mut tally, row)? {
                        accepted.push(a);
                    }
                }
            }
            Err((_, errors)) => {
                let first = errors.first().map_or(String::new(), |e| format!("{}: {}", e.path, e.message));
                tally.note(Reason::Invalid, row, || first)?;
            }
        }
    }
    // Sampling (intervals, gaps) per node, in time order.
    accepted.sort_by_key(|a| (a.actuator, a.sample.t));
    let intervals = accepted
        .windows(2)
        .filter(|w| w[0].actuator == w[1].actuator)
        .map(|w| (w[1].sample.t.0 - w[0].sample.t.0) as i64)
        .collect();
    tally.finish(rows_read, accepted.len(), intervals);
    accepted.sort_by_key(|a| a.sample.t);
    Ok(LogSamples { accepted, tally, absolute: objects.absolute })
}

/// Replays `file` into the twins of `facility` (every actuator ingesting). Time passes in the
/// twins through a log's silences as it would live (a tick every second), so a long gap raises
/// `signal_loss`.
pub fn replay(file: &Path, facility: &Facility, opts: &ReplayOptions) -> Result<ReplayReport> {
    let label = file.display().to_string();
    let LogSamples { accepted, tally, absolute } = read_samples(file, facility, opts)?;
    if accepted.is_empty() {
        bail!("{label}: no usable samples; {}", tally.summary().unwrap_or_else(|| format!("{} rows", tally.rows)));
    }
    // Per device: its twin, samples fed, first and last sample time.
    let mut twins: BTreeMap<usize, (ActuatorTwin, usize, SimTime, SimTime)> = BTreeMap::new();
    let mut findings: Vec<(String, FindingEvent)> = Vec::new();
    let wall0 = std::time::Instant::now();
    let t_first = accepted.first().map_or(0, |a| a.sample.t.0);
    for a in &accepted {
        let node = &facility.actuators[a.actuator];
        let (twin, n, _, last) = twins.entry(a.actuator).or_insert_with(|| {
            let twin = ActuatorTwin::of_node(facility, node, &node.id, Mode::Ingest, 1, false);
            (twin, 0, a.sample.t, a.sample.t)
        });
        if let Some(speed) = opts.speed {
            let due = std::time::Duration::from_secs_f64((a.sample.t.0 - t_first) as f64 / 1000.0 / speed);
            if let Some(wait) = due.checked_sub(wall0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut out = Vec::new();
        twin.ingest_after(*last, &a.sample, &mut out);
        *n += 1;
        *last = a.sample.t;
        findings.extend(out.into_iter().map(|f| (node.id.clone(), f)));
    }
    let end = SimTime(accepted.last().map_or(0, |a| a.sample.t.0));
    let mut statuses = BTreeMap::new();
    for (&i, (twin, ..)) in &twins {
        let s = twin.status(end);
        statuses.insert(facility.actuators[i].id.clone(), s);
        let ahu = &facility.ahus[facility.actuators[i].ahu].id;
        let e = statuses.entry(ahu.clone()).or_insert(Status::Healthy);
        *e = (*e).max(s);
    }
    let mut ledger = FaultLedger::default();
    for (node, f) in &findings {
        ledger.apply(node, f, None);
    }
    let report_findings: Vec<ReplayFinding> = ledger
        .all()
        .into_iter()
        .map(|f| ReplayFinding {
            node: f.node.clone(),
            kind: f.kind.to_string(),
            severity: format!("{:?}", f.severity).to_lowercase(),
            opened_at_ms: f.opened_at.0,
            after_s: (f.opened_at.0 - t_first) as f64 / 1000.0,
            resolved_at_ms: f.resolved_at.map(|t| t.0),
            summary: f.summary.clone(),
            source: if f.source == Source::Model { "model" } else { "rule" },
            value: f.value,
            threshold: f.threshold,
            unit: twinfault_core::detect::rule_evidence(f.kind).1.to_string(),
        })
        .collect();
    let verdicts = twins
        .iter()
        .map(|(&i, (twin, n, first, last))| {
            let id = &facility.actuators[i].id;
            let (mut kinds, mut model_kinds): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
            for f in report_findings.iter().filter(|f| &f.node == id) {
                let list = if f.source == "model" { &mut model_kinds } else { &mut kinds };
                if !list.contains(&f.kind) {
                    list.push(f.kind.clone());
                }
            }
            let result = if twin.status(end) == Status::Offline {
                "offline"
            } else if kinds.is_empty() {
                "healthy"
            } else {
                "fault"
            };
            Verdict {
                node: id.clone(),
                result,
                kinds,
                model_kinds,
                samples: *n,
                span_s: last.saturating_sub(*first).as_secs_f64(),
            }
        })
        .collect();
    Ok(ReplayReport {
        file: label,
        samples: accepted.len(),
        nodes: twins.keys().map(|&i| facility.actuators[i].id.clone()).collect(),
        clock: if absolute { "utc" } else { "relative" },
        first_ms: t_first,
        last_ms: end.0,
        findings: report_findings,
        statuses,
        verdicts,
        reading: tally,
    })
}

impl ReplayReport {
    /// A time on the log's own clock: UTC, or seconds from its start.
    pub fn time(&self, ms: u64) -> String {
        if self.clock == "utc" {
            twinfault_core::time::format_timestamp_ms(ms as i64)
        } else {
            format!("t+{:.3} s", ms as f64 / 1000.0)
        }
    }
}

/// One day of an AHU replay.
#[derive(Debug, Clone, Serialize)]
pub struct AhuDay {
    pub date: String,
    /// Findings open at some time of the day: `kind` or `kind@device`.
    pub findings: Vec<String>,
    /// The label of the day from `--labels`, when given (`none` = unfaulted).
    pub label: Option<String>,
    /// The day's strongest fork answer (the one whose top beat "all healthy" by the most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork: Option<DayFork>,
    /// With a label naming a component: whether the fork's top hypothesis names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub right_component: Option<bool>,
}

/// The fork's answer for a day, in short.
#[derive(Debug, Clone, Serialize)]
pub struct DayFork {
    /// When it ran (UTC).
    pub at: String,
    /// `SZVAV-HW stuck at 100 %` or `all healthy`.
    pub top: String,
    pub device: Option<String>,
    /// The element's role (`heating_valve`, ...).
    pub role: Option<String>,
    /// Its fit: RMS residual of mixed and supply air [K].
    pub fit_mixed_c: f64,
    pub fit_supply_c: f64,
    pub runner_up: Option<String>,
    /// Score per sample by which the top beats "all healthy".
    pub evidence: f64,
    /// Forks run that day.
    pub runs: usize,
}

impl DayFork {
    fn of(rankings: &[Ranking]) -> Option<DayFork> {
        let best = rankings.iter().max_by(|a, b| a.evidence().total_cmp(&b.evidence()))?;
        let top = best.top()?;
        Some(DayFork {
            at: twinfault_core::time::format_timestamp_ms(best.at.0 as i64),
            top: top.hypothesis.describe(),
            device: top.hypothesis.device.clone(),
            role: top.hypothesis.role.map(|r| r.as_str().to_string()),
            fit_mixed_c: top.rmse_mixed_c,
            fit_supply_c: top.rmse_supply_c,
            runner_up: best.runner_up().map(|s| s.hypothesis.describe()),
            evidence: best.evidence(),
            runs: rankings.len(),
        })
    }
}

/// Writes an AHU replay's per-day report into `dir`: `days.json` (the report) and `days.png`
/// (days × components: where the fork put the blame, where the label puts it).
pub fn write_day_report(r: &AhuReplayReport, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json_path = dir.join("days.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(r)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    // One column per element the fork can blame, in its order.
    const ROLES: [Role; 3] = twinfault_core::counterfactual::ELEMENTS;
    let column = |role: &str| ROLES.iter().position(|r| r.as_str() == role);
    let rows: Vec<crate::dataset::charts::DayRow> = r
        .days
        .iter()
        .map(|d| crate::dataset::charts::DayRow {
            date: d.date.clone(),
            label: d.label.clone().unwrap_or_default(),
            flagged: !d.findings.is_empty(),
            truth: d.label.as_deref().and_then(label_role).and_then(|role| column(role.as_str())),
            blamed: d.fork.as_ref().and_then(|k| Some((column(k.role.as_deref()?)?, k.evidence))),
        })
        .collect();
    let png_path = dir.join("days.png");
    let names = ROLES.map(|r| r.as_str());
    let title = match r.right_component_first {
        Some((a, b)) => format!("{}: right component first on {a} of {b} faulted days", r.file),
        None => r.file.clone(),
    };
    crate::dataset::charts::day_components(&rows, &names, &title, &png_path)?;
    Ok((json_path, png_path))
}

/// The role a label's component names (`oa_damper`, `cooling_coil_valve`, `heating_coil_valve`
/// and their spellings in other logs, `OA damper` with a space too); `None` for a component no
/// child stands for.
pub fn label_role(label: &str) -> Option<Role> {
    let c = label.to_ascii_lowercase();
    let c = c.replace(' ', "_");
    if c.contains("economizer")
        || (c.contains("damper") && (c.contains("oa") || c.contains("outdoor") || c.contains("outside")))
    {
        Some(Role::OutdoorAirDamper)
    } else if c.contains("cool") || c.contains("chw") {
        Some(Role::CoolingValve)
    } else if c.contains("heat") || c.contains("hw") {
        Some(Role::HeatingValve)
    } else {
        None
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AhuReplayReport {
    pub file: String,
    pub rows: usize,
    pub days: Vec<AhuDay>,
    /// With labels: faulted days flagged, unfaulted days flagged.
    pub faulted_days_flagged: Option<(usize, usize)>,
    pub unfaulted_days_flagged: Option<(usize, usize)>,
    /// With labels: faulted days whose flagged fork names the labelled component first, of
    /// faulted days.
    pub right_component_first: Option<(usize, usize)>,
    /// The unit model learned from the log.
    pub unit: twinfault_core::counterfactual::UnitModel,
    /// Rows skipped, by reason; gaps and the sampling interval.
    pub reading: Tally,
}

fn day_of(ms: i64) -> String {
    twinfault_core::time::format_timestamp_ms(ms)[..10].to_string()
}

/// Reads a label file (`dataset,date,fault_component,fault_type,...`): date → "component fault_type".
/// Dates are `M/D/YYYY` or `YYYY-MM-DD`; a row with fewer fields or another date is refused,
/// naming the file and line (blank lines are skipped).
fn read_labels(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let at = || format!("{} line {}", path.display(), n + 1);
        if f.len() < 4 {
            bail!("{}: {} fields, a label needs dataset,date,fault_component,fault_type", at(), f.len());
        }
        let d = f[1].trim();
        let ms = parse_us_datetime(&format!("{d} 0:00")).or_else(|| parse_timestamp_ms(&format!("{d}T00:00:00Z")));
        let Some(ms) = ms else { bail!("{}: date \"{d}\" is neither M/D/YYYY nor YYYY-MM-DD", at()) };
        let label = if f[2].trim() == "none" { "none".to_string() } else { format!("{} {}", f[2].trim(), f[3].trim()) };
        out.insert(day_of(ms), label);
    }
    Ok(out)
}

/// Replays a real AHU's trend log into its AHU twin's rules; reports which days were flagged.
pub fn replay_ahu(
    file: &Path,
    facility: &Facility,
    map: &Mapping,
    labels: Option<&Path>,
    strict: bool,
) -> Result<AhuReplayReport> {
    let AhuLog { node, mut ahu, rows: log, reading: tally, file: label } = read_ahu_log(file, facility, map, strict)?;
    let node = node.as_str();
    let mut day_findings: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut open = FaultLedger::default();
    let mut prev_t: Option<i64> = None;
    let mut rows = 0;
    // The unit's own normal, learned from the whole log (robustly: its faulty days need not be
    // known), then the log replayed against it.
    ahu.learn_unit(&log);
    let mut forks: BTreeMap<String, Vec<Ranking>> = BTreeMap::new();
    let mut forks_seen: Option<SimTime> = None;
    for m in &log {
        let t = m.t.0 as i64;
        let dt = prev_t.map_or(60.0, |p| ((t - p) as f64 / 1000.0).max(1.0));
        prev_t = Some(t);
        let mut out = Vec::new();
        ahu.observe(m, dt, &mut out);
        for f in &out {
            open.apply(node, f, None);
        }
        let day = day_of(t);
        // A fork ran in this row if the latest answer is new (one per row at most).
        if let Some(r) = ahu.last_ranking().filter(|r| forks_seen.is_none_or(|at| r.at > at)) {
            forks_seen = Some(r.at);
            forks.entry(day.clone()).or_default().push(r.clone());
        }
        let e = day_findings.entry(day).or_default();
        e.extend(open.open().map(|f| match &f.device {
            Some(d) => format!("{}@{d}", f.kind),
            None => f.kind.to_string(),
        }));
        rows += 1;
    }
    let labels = labels.map(read_labels).transpose()?;
    let days: Vec<AhuDay> = day_findings
        .into_iter()
        .map(|(date, f)| {
            let label = labels.as_ref().and_then(|l| l.get(&date).cloned());
            // A day's fork counts only if the day was flagged (its rules raised something).
            let fork = if f.is_empty() { None } else { forks.get(&date).and_then(|r| DayFork::of(r)) };
            let right_component = label.as_deref().and_then(label_role).map(|role| {
                fork.as_ref().is_some_and(|k| k.device.is_some() && k.role.as_deref() == Some(role.as_str()))
            });
            AhuDay { label, findings: f.into_iter().collect(), fork, right_component, date }
        })
        .collect();
    let score = |faulted: bool| {
        labels.as_ref().map(|_| {
            let those: Vec<&AhuDay> =
                days.iter().filter(|d| d.label.as_deref().is_some_and(|l| (l != "none") == faulted)).collect();
            (those.iter().filter(|d| !d.findings.is_empty()).count(), those.len())
        })
    };
    Ok(AhuReplayReport {
        file: label,
        rows,
        faulted_days_flagged: score(true),
        unfaulted_days_flagged: score(false),
        right_component_first: labels.as_ref().map(|_| {
            let faulted: Vec<&AhuDay> =
                days.iter().filter(|d| d.label.as_deref().is_some_and(|l| l != "none")).collect();
            (faulted.iter().filter(|d| d.right_component == Some(true)).count(), faulted.len())
        }),
        unit: ahu.unit_model().clone(),
        days,
        reading: tally,
    })
}

/// A real AHU's trend log read through its mapping: the AHU twin it feeds (not yet learned),
/// the rows in time order, and what was skipped or held.
pub struct AhuLog {
    pub file: String,
    pub node: String,
    pub ahu: twinfault_core::ahu::Ahu,
    pub rows: Vec<twinfault_core::ahu::AhuMeasurement>,
    pub reading: Tally,
}

/// Reads an AHU trend log (see [`Mapping`]): imperfect rows skipped or cells held, counted.
pub fn read_ahu_log(file: &Path, facility: &Facility, map: &Mapping, strict: bool) -> Result<AhuLog> {
    let label = file.display().to_string();
    let node = map.node.as_deref().with_context(|| format!("{label}: an AHU mapping needs `node`"))?;
    let h = facility
        .ahus
        .iter()
        .position(|a| a.id == node)
        .with_context(|| format!("the facility has no AHU \"{node}\""))?;
    let text = logfile::read_text(file)?;
    let csv = logfile::Csv::parse(&text, file)?;
    let mut tally = Tally::new(file, strict);
    let mut order = TimeOrder::default();
    let mut times = Vec::new();
    let col = |name: &str| -> Result<usize> {
        csv.column(&[name.trim()]).with_context(|| format!("{label}: no column \"{name}\""))
    };
    let field = |k: &str| -> Result<Option<usize>> {
        let Some(c) = map.fields.get(k) else { return Ok(None) };
        match csv.column(&c.names()) {
            Some(i) => Ok(Some(i)),
            None if map.optional.iter().any(|o| o == k) => Ok(None),
            None => bail!("{label}: no column {c} (the mapping's fields.{k})"),
        }
    };
    let t_col = col(&map.time_column)?;
    let need = |k: &str| -> Result<usize> { field(k)?.with_context(|| format!("the mapping needs fields.{k}")) };
    let (oa, ra, ma, sa) = (need("outdoor_air")?, need("return_air")?, need("mixed_air")?, need("supply_air")?);
    let (sp, sp_heat, sp_cool, occ, fan) = (
        field("supply_air_setpoint")?,
        field("supply_air_heating_setpoint")?,
        field("supply_air_cooling_setpoint")?,
        field("occupied")?,
        field("fan")?,
    );
    let ahu_node = &facility.ahus[h];
    let children: Vec<&str> = ahu_node.children.iter().map(|&c| facility.actuators[c].id.as_str()).collect();
    let mut cmd_cols = Vec::new();
    for c in &children {
        let col = match map.commands.get(*c) {
            None => None,
            Some(cs) => match csv.column(&cs.names()) {
                Some(i) => Some(i),
                None if map.optional.iter().any(|o| o == c) => None,
                None => bail!("{label}: no column {cs} (the command of {c})"),
            },
        };
        cmd_cols.push(col);
    }
    let to_c = |f: f64| if map.temperature_unit == "fahrenheit" { (f - 32.0) / 1.8 } else { f };
    let schedule = twinfault_core::scenario::Schedule::Off;
    let weather = twinfault_core::scenario::Weather { outdoor_mean_c: 20.0, outdoor_amplitude_c: 0.0 };
    let specs = ahu_node
        .children
        .iter()
        .map(|&c| twinfault_core::ahu::ChildSpec {
            id: facility.actuators[c].id.clone(),
            role: facility.actuators[c].role,
            profile: None,
        })
        .collect();
    let ahu = twinfault_core::ahu::Ahu::new(node, Arc::clone(&ahu_node.template), specs, schedule, weather, 0.0, 1);
    // The last value of each command and of the occupancy and fan flags, and the held cells of
    // the current row.
    let mut last_cmds: Vec<Option<f64>> = vec![None; cmd_cols.len()];
    let mut last_flags: [Option<f64>; 2] = [None, None];
    let mut held_cells: Vec<(usize, String)> = Vec::new();
    let mut log = Vec::new();
    for (row, f) in &csv.rows {
        let row = *row;
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let num = |c: usize| logfile::number(get(c)).ok();
        let Some(t) = parse_log_time(get(t_col)) else {
            tally.note(Reason::NoTime, row, || format!("column {}: \"{}\"", map.time_column, get(t_col)))?;
            continue;
        };
        // The four air temperatures make the row; without one it is skipped and counted.
        let mut temps = [0.0; 4];
        let mut complete = true;
        for (k, c) in [oa, ra, ma, sa].into_iter().enumerate() {
            match logfile::number(get(c)) {
                Ok(x) => temps[k] = x,
                Err(reason) => {
                    let name = csv.header.get(c).copied().unwrap_or("?");
                    tally.note(reason, row, || format!("column {name}: \"{}\"", get(c)))?;
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        // Commands and the occupancy and fan flags: an empty or unreadable cell holds the row
        // before's value (a trend log records on change), counted; with no value yet the row is
        // skipped and counted. An empty setpoint cell means none (the supply rule waits).
        let mut missing = None;
        let mut held = |c: Option<usize>, last: &mut Option<f64>| -> Option<f64> {
            let c = c?;
            match logfile::number(get(c)) {
                Ok(x) => *last = Some(x),
                Err(reason) => {
                    let name = csv.header.get(c).copied().unwrap_or("?").trim();
                    if last.is_some() {
                        held_cells.push((row, format!("{}: column {name}: \"{}\"", reason.as_str(), get(c))));
                    } else if missing.is_none() {
                        missing = Some((reason, format!("column {name}: \"{}\"", get(c))));
                    }
                }
            }
            *last
        };
        let occupied = held(occ, &mut last_flags[0]).is_none_or(|v| v > 0.5)
            && held(fan, &mut last_flags[1]).is_none_or(|v| v > 0.5);
        let commands_pct: Vec<f64> = cmd_cols
            .iter()
            .zip(last_cmds.iter_mut())
            .map(|(c, last)| held(*c, last).map_or(0.0, |v| (v * map.command_scale).clamp(0.0, 100.0)))
            .collect();
        for (r, detail) in held_cells.drain(..) {
            tally.note(Reason::HeldField, r, || detail)?;
        }
        if let Some((reason, detail)) = missing {
            tally.note(reason, row, || detail)?;
            continue;
        }
        if !order.admit(t, &mut tally, row)? {
            continue;
        }
        times.push(t);
        let [oa, ra, ma, sa] = temps;
        let (oa, ra, ma, sa) = (to_c(oa), to_c(ra), to_c(ma), to_c(sa));
        // The controller holds supply air inside its heating-cooling setpoint band.
        let setpoint = match (sp.and_then(num), sp_heat.and_then(num), sp_cool.and_then(num)) {
            (Some(x), _, _) => Some(to_c(x)),
            (None, Some(lo), Some(hi)) => Some(sa.clamp(to_c(lo).min(to_c(hi)), to_c(hi).max(to_c(lo)))),
            (None, None, Some(x)) | (None, Some(x), None) => Some(to_c(x)),
            _ => None,
        };
        log.push(twinfault_core::ahu::AhuMeasurement {
            t: SimTime(t.max(0) as u64),
            occupied,
            outdoor_air_c: oa,
            return_air_c: ra,
            mixed_air_c: ma,
            supply_air_c: sa,
            supply_air_setpoint_c: setpoint,
            commands_pct,
        });
    }
    let rows = log.len();
    tally.finish(csv.rows.len(), rows, times.windows(2).map(|w| w[1] - w[0]).collect());
    Ok(AhuLog { file: label, node: node.to_string(), ahu, rows: log, reading: tally })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labels_component_is_read_as_the_role_it_names() {
        for (label, role) in [
            ("oa_damper stuck", Some(Role::OutdoorAirDamper)),
            ("OA damper stuck", Some(Role::OutdoorAirDamper)),
            ("Cooling coil valve leaking", Some(Role::CoolingValve)),
            ("none", None),
            ("outdoor_air_damper leaking", Some(Role::OutdoorAirDamper)),
            ("economizer stuck", Some(Role::OutdoorAirDamper)),
            ("cooling_coil_valve stuck", Some(Role::CoolingValve)),
            ("chw_valve leaking", Some(Role::CoolingValve)),
            ("heating_coil_valve leaking", Some(Role::HeatingValve)),
            ("return_air_damper stuck", None),
            ("supply_fan failed", None),
        ] {
            assert_eq!(label_role(label), role, "{label}");
        }
    }

    #[test]
    fn a_trend_logs_times_are_read_in_the_forms_logs_write() {
        let at = |s: &str| parse_log_time(s).map(twinfault_core::time::format_timestamp_ms);
        let want = Some("2017-09-11T13:05:00.000Z".to_string());
        for s in [
            "9/11/2017 13:05",
            "9/11/2017 13:05:00",
            "9/11/2017 1:05:00 PM",
            "9/11/2017 1:05 pm",
            "2017-09-11T13:05:00Z",
            "2017-09-11 13:05:00",
            "2017-09-11 13:05",
            "2017-09-11T15:05:00+02:00",
        ] {
            assert_eq!(at(s), want, "{s}");
        }
        assert_eq!(at("9/11/2017 12:30 AM").unwrap(), "2017-09-11T00:30:00.000Z");
        for bad in ["9/11/2017 13:05 PM", "9/31/2017 10:00", "13/11/2017 10:00", "9/11/2017", "noon"] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn labels_take_either_date_form_and_a_bad_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("days.csv");
        std::fs::write(
            &path,
            "dataset,date,fault_component,fault_type\nX,9/11/2017,oa_damper,stuck\n\nX,2017-09-12,none,unfaulted\n",
        )
        .unwrap();
        let l = read_labels(&path).unwrap();
        assert_eq!(l["2017-09-11"], "oa_damper stuck");
        assert_eq!(l["2017-09-12"], "none");
        std::fs::write(&path, "dataset,date,fault_component,fault_type\nX,11.9.2017,oa_damper,stuck\n").unwrap();
        let e = format!("{:#}", read_labels(&path).unwrap_err());
        assert!(e.contains("days.csv line 2") && e.contains("11.9.2017"), "{e}");
    }

    #[test]
    fn a_map_lists_only_its_own_fields_as_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let map = |optional: &str| {
            format!(
                "format = \"csv\"\ntarget = \"ahu\"\nnode = \"a\"\ntime_column = \"t\"\ntime = \"rfc3339\"\noptional = [{optional}]\n\
                 [fields]\nsupply_air = [\"SAT\", \"DAT\"]\nfan = \"FAN\"\n[commands]\nHW-1 = \"HWV\"\n"
            )
        };
        std::fs::write(&path, map("\"fan\", \"HW-1\"")).unwrap();
        let m = Mapping::load(&path).unwrap();
        assert_eq!(m.fields["supply_air"].names(), ["SAT", "DAT"]);
        assert_eq!(m.fields["supply_air"].to_string(), "\"SAT\" or \"DAT\"");
        std::fs::write(&path, map("\"occupied\"")).unwrap();
        let e = format!("{:#}", Mapping::load(&path).unwrap_err());
        assert!(e.contains("m.toml") && e.contains("optional") && e.contains("occupied"), "{e}");
    }
}
