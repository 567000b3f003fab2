//! `twinfault replay`: a trend log (CSV with a mapping, the rig's CSVs, or NDJSON in the ingest
//! format) fed into the facility's twins through the ingest validation, in time order, as fast as
//! possible or paced. Reports every finding and the resulting statuses.

use crate::rig::{parse_rotation, parse_timestamp_ms};
use crate::serve::payload::{self, Window};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinfault_core::SimTime;
use twinfault_core::config::{Facility, parse_toml};
use twinfault_core::detect::{Change, FindingEvent};
use twinfault_core::twin::{ActuatorTwin, Mode};
use twinfault_core::types::Status;

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
    pub fields: BTreeMap<String, String>,
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
    pub commands: BTreeMap<String, String>,
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

/// Parses `9/11/2017 13:05` (month/day/year, 24 h) into ms since the epoch (as UTC).
fn parse_us_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let mut d = date.split('/').map(|x| x.parse::<u32>().ok());
    let (m, day, y) = (d.next()??, d.next()??, d.next()??);
    let (h, mi) = time.split_once(':')?;
    let iso = format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:00Z", h.parse::<u32>().ok()?, mi.parse::<u32>().ok()?);
    parse_timestamp_ms(&iso)
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
        Ok(m)
    }
}

/// Turns a mapped CSV into ingest objects.
fn csv_objects(text: &str, file: &str, m: &Mapping, node: Option<&str>) -> Result<Vec<Value>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split(',').map(str::trim).collect();
    let col = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("{file}: no column \"{name}\" (the mapping names it)"))
    };
    let t_col = col(&m.time_column)?;
    let node_col = m.node_column.as_deref().map(col).transpose()?;
    if node_col.is_none() && node.is_none() {
        bail!("{file}: the mapping has no node_column: say which node with --node");
    }
    let fields: Vec<(String, usize)> = m.fields.iter().map(|(k, c)| Ok((k.clone(), col(c)?))).collect::<Result<_>>()?;
    let mut out = Vec::new();
    let (mut offset, mut prev) = (0i64, None::<i64>);
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("").trim();
        let t = match m.time.as_str() {
            "rfc3339" => parse_timestamp_ms(get(t_col)),
            "us_datetime" => parse_us_datetime(get(t_col)),
            _ => get(t_col).parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64),
        };
        let Some(mut t) = t else { continue };
        if m.time == "seconds" {
            if let Some(p) = prev.filter(|&p| t + offset < p) {
                offset = p + 250 - t;
            }
            t += offset;
            prev = Some(t);
        }
        let mut tel = Map::new();
        for (k, c) in &fields {
            let raw = get(*c);
            let v = if k == "rotation_direction" {
                parse_rotation(raw).map(|r| json!(r)).unwrap_or(json!(raw))
            } else {
                raw.parse::<f64>().map(|x| json!(x)).unwrap_or(json!(raw))
            };
            tel.insert(k.clone(), v);
        }
        let node = match node_col {
            Some(c) => get(c).to_string(),
            None => node.unwrap_or_default().to_string(),
        };
        let _ = i;
        out.push(json!({ "nodeId": node, "timestamp": t, "telemetry": tel }));
    }
    Ok(out)
}

/// The rig's CSVs, read by the rig reader (which knows their quirks), as ingest objects.
fn rig_objects(path: &Path, node: &str) -> Result<Vec<Value>> {
    let rec = crate::rig::read(path)?;
    Ok(rec
        .samples
        .iter()
        .map(|s| {
            json!({ "nodeId": node, "timestamp": s.t.0, "telemetry": {
                "position_percent": s.position_pct, "setpoint_position_percent": s.setpoint_pct, "torque": s.torque_nm,
                "power_w": s.power_w, "temperature": s.temperature_c, "rotation_direction": s.rotation } })
        })
        .collect())
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub file: String,
    pub samples: usize,
    pub nodes: Vec<String>,
    /// Findings that opened, with the replayed log's time.
    pub findings: Vec<ReplayFinding>,
    /// Final status per node that received samples, and of their AHUs (worst child).
    pub statuses: BTreeMap<String, Status>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayFinding {
    pub node: String,
    pub kind: String,
    pub severity: String,
    pub opened_at_ms: u64,
    pub resolved_at_ms: Option<u64>,
    pub summary: String,
    /// `rule`, or `model` for a learned classifier's verdict (which sets no status).
    pub source: &'static str,
}

pub struct ReplayOptions {
    pub node: Option<String>,
    pub map: Option<PathBuf>,
    /// Pace at this multiple of the log's own time; `None` is as fast as possible.
    pub speed: Option<f64>,
}

/// Reads and validates a log's samples (rig CSV, mapped CSV or NDJSON), in time order.
pub fn read_samples(file: &Path, facility: &Facility, opts: &ReplayOptions) -> Result<Vec<payload::Accepted>> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {label}"))?;
    let objects = if let Some(m) = &opts.map {
        csv_objects(&text, &label, &Mapping::load(m)?, opts.node.as_deref())?
    } else if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        payload::objects(text.as_bytes()).map_err(|e| anyhow::anyhow!("{label}: {}: {}", e.path, e.message))?
    } else {
        let node = opts
            .node
            .as_deref()
            .with_context(|| format!("{label}: a CSV needs --node (and --map unless it is a rig recording)"))?;
        rig_objects(file, node)?
    };
    let max_t = objects.iter().filter_map(|o| o.get("timestamp").and_then(Value::as_i64)).max().unwrap_or(0);
    // The log's own clock: nothing is "in the future"; out-of-order within the whole log.
    let window = Window { now_ms: max_t, max_future_ms: 0, out_of_order_ms: i64::MAX / 4 };
    let mut accepted = payload::validate(&objects, facility, &window, |_| None).map_err(|(_, errors)| {
        let first: Vec<String> = errors.iter().take(3).map(|e| format!("{}: {}", e.path, e.message)).collect();
        anyhow::anyhow!("{label}: {} invalid rows (nothing replayed): {}", errors.len(), first.join("; "))
    })?;
    accepted.sort_by_key(|a| a.sample.t);
    Ok(accepted)
}

/// Replays `file` into the twins of `facility` (every actuator ingesting).
pub fn replay(file: &Path, facility: &Facility, opts: &ReplayOptions) -> Result<ReplayReport> {
    let label = file.display().to_string();
    let accepted = read_samples(file, facility, opts)?;

    let mut twins: BTreeMap<usize, ActuatorTwin> = BTreeMap::new();
    let mut findings: Vec<(String, FindingEvent)> = Vec::new();
    let wall0 = std::time::Instant::now();
    let t_first = accepted.first().map_or(0, |a| a.sample.t.0);
    for a in &accepted {
        let node = &facility.actuators[a.actuator];
        let twin = twins.entry(a.actuator).or_insert_with(|| {
            let twin = ActuatorTwin::new(&node.id, Arc::clone(&node.template), Mode::Ingest, 1, 0.0, false);
            match &facility.classifier {
                Some(m) => twin.with_classifier(Arc::clone(m), node.role),
                None => twin,
            }
        });
        if let Some(speed) = opts.speed {
            let due = std::time::Duration::from_secs_f64((a.sample.t.0 - t_first) as f64 / 1000.0 / speed);
            if let Some(wait) = due.checked_sub(wall0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut out = Vec::new();
        twin.ingest(&a.sample, &mut out);
        findings.extend(out.into_iter().map(|f| (node.id.clone(), f)));
    }
    let end = SimTime(accepted.last().map_or(0, |a| a.sample.t.0));
    let mut statuses = BTreeMap::new();
    for (&i, twin) in &twins {
        let s = twin.status(end);
        statuses.insert(facility.actuators[i].id.clone(), s);
        let ahu = &facility.ahus[facility.actuators[i].ahu].id;
        let e = statuses.entry(ahu.clone()).or_insert(Status::Healthy);
        *e = (*e).max(s);
    }
    let mut report_findings: Vec<ReplayFinding> = Vec::new();
    for (node, f) in &findings {
        match f.change {
            Change::Opened => report_findings.push(ReplayFinding {
                node: node.clone(),
                kind: f.kind.to_string(),
                severity: format!("{:?}", f.severity).to_lowercase(),
                opened_at_ms: f.t.0,
                resolved_at_ms: None,
                summary: f.summary.clone(),
                source: if f.source == twinfault_core::detect::Source::Model { "model" } else { "rule" },
            }),
            Change::Resolved => {
                if let Some(r) = report_findings.iter_mut().rev().find(|r| {
                    &r.node == node
                        && r.kind == f.kind.as_str()
                        && r.resolved_at_ms.is_none()
                        && (r.source == "model") == (f.source == twinfault_core::detect::Source::Model)
                }) {
                    r.resolved_at_ms = Some(f.t.0);
                }
            }
            Change::Updated => {}
        }
    }
    Ok(ReplayReport {
        file: label,
        samples: accepted.len(),
        nodes: twins.keys().map(|&i| facility.actuators[i].id.clone()).collect(),
        findings: report_findings,
        statuses,
    })
}

/// One day of an AHU replay.
#[derive(Debug, Clone, Serialize)]
pub struct AhuDay {
    pub date: String,
    /// Findings open at some time of the day: `kind` or `kind@device`.
    pub findings: Vec<String>,
    /// The label of the day from `--labels`, when given (`none` = unfaulted).
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AhuReplayReport {
    pub file: String,
    pub rows: usize,
    pub days: Vec<AhuDay>,
    /// With labels: faulted days flagged, unfaulted days flagged.
    pub faulted_days_flagged: Option<(usize, usize)>,
    pub unfaulted_days_flagged: Option<(usize, usize)>,
}

fn day_of(ms: i64) -> String {
    crate::rig::format_timestamp_ms(ms)[..10].to_string()
}

/// Reads a label file (`dataset,date,fault_component,fault_type,...`): date → "component fault_type".
fn read_labels(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let Some(ms) = parse_us_datetime(&format!("{} 0:00", f[1].trim())) else { continue };
        let label = if f[2].trim() == "none" { "none".to_string() } else { format!("{} {}", f[2].trim(), f[3].trim()) };
        out.insert(day_of(ms), label);
    }
    Ok(out)
}

/// Replays a real AHU's trend log into its AHU twin's rules; reports which days were flagged.
pub fn replay_ahu(file: &Path, facility: &Facility, map: &Mapping, labels: Option<&Path>) -> Result<AhuReplayReport> {
    let label = file.display().to_string();
    let node = map.node.as_deref().with_context(|| format!("{label}: an AHU mapping needs `node`"))?;
    let h = facility
        .ahus
        .iter()
        .position(|a| a.id == node)
        .with_context(|| format!("the facility has no AHU \"{node}\""))?;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {label}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split(',').map(str::trim).collect();
    let col = |name: &str| -> Result<usize> {
        header.iter().position(|h| *h == name.trim()).with_context(|| format!("{label}: no column \"{name}\""))
    };
    let field = |k: &str| -> Result<Option<usize>> { map.fields.get(k).map(|c| col(c)).transpose() };
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
        cmd_cols.push(map.commands.get(*c).map(|name| col(name)).transpose()?);
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
    let mut ahu = twinfault_core::ahu::Ahu::new(node, Arc::clone(&ahu_node.template), specs, schedule, weather, 0.0, 1);
    let mut day_findings: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut open: std::collections::BTreeSet<String> = Default::default();
    let mut prev_t: Option<i64> = None;
    let mut rows = 0;
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let get = |c: usize| f.get(c).map(|s| s.trim()).unwrap_or("");
        let num = |c: usize| get(c).parse::<f64>().ok();
        let Some(t) = parse_us_datetime(get(t_col)).or_else(|| parse_timestamp_ms(get(t_col))) else {
            bail!("{label}: row {}: column {}: \"{}\" is not a time", i + 2, map.time_column, get(t_col));
        };
        let (Some(oa), Some(ra), Some(ma), Some(sa)) = (num(oa), num(ra), num(ma), num(sa)) else { continue };
        let (oa, ra, ma, sa) = (to_c(oa), to_c(ra), to_c(ma), to_c(sa));
        // The controller holds supply air inside its heating-cooling setpoint band.
        let setpoint = match (sp.and_then(num), sp_heat.and_then(num), sp_cool.and_then(num)) {
            (Some(x), _, _) => Some(to_c(x)),
            (None, Some(lo), Some(hi)) => Some(sa.clamp(to_c(lo).min(to_c(hi)), to_c(hi).max(to_c(lo)))),
            (None, None, Some(x)) | (None, Some(x), None) => Some(to_c(x)),
            _ => None,
        };
        let occupied = occ.and_then(num).is_none_or(|v| v > 0.5) && fan.and_then(num).is_none_or(|v| v > 0.5);
        let commands_pct = cmd_cols
            .iter()
            .map(|c| c.and_then(num).map_or(0.0, |v| (v * map.command_scale).clamp(0.0, 100.0)))
            .collect();
        let dt = prev_t.map_or(60.0, |p| ((t - p) as f64 / 1000.0).max(1.0));
        prev_t = Some(t);
        let m = twinfault_core::ahu::AhuMeasurement {
            t: SimTime(t.max(0) as u64),
            occupied,
            outdoor_air_c: oa,
            return_air_c: ra,
            mixed_air_c: ma,
            supply_air_c: sa,
            supply_air_setpoint_c: setpoint,
            commands_pct,
        };
        let mut out = Vec::new();
        ahu.observe(&m, dt, &mut out);
        for f in out {
            let name = match &f.device {
                Some(d) => format!("{}@{d}", f.kind),
                None => f.kind.to_string(),
            };
            match f.change {
                Change::Opened => {
                    open.insert(name);
                }
                Change::Resolved => {
                    open.remove(&name);
                }
                Change::Updated => {}
            }
        }
        let day = day_of(t);
        let e = day_findings.entry(day).or_default();
        e.extend(open.iter().cloned());
        rows += 1;
    }
    let labels = labels.map(read_labels).transpose()?;
    let days: Vec<AhuDay> = day_findings
        .into_iter()
        .map(|(date, f)| AhuDay {
            label: labels.as_ref().and_then(|l| l.get(&date).cloned()),
            findings: f.into_iter().collect(),
            date,
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
        days,
    })
}
