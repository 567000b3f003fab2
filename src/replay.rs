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
    /// Ingest field name → CSV column.
    pub fields: BTreeMap<String, String>,
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
        let m: Mapping = parse_toml(&text, &label)?;
        if m.format != "csv" {
            bail!("{label}: key `format`: only \"csv\" mappings exist (NDJSON needs none)");
        }
        if m.time != "rfc3339" && m.time != "seconds" {
            bail!("{label}: key `time`: \"{}\" is not rfc3339 or seconds", m.time);
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
}

pub struct ReplayOptions {
    pub node: Option<String>,
    pub map: Option<PathBuf>,
    /// Pace at this multiple of the log's own time; `None` is as fast as possible.
    pub speed: Option<f64>,
}

/// Replays `file` into the twins of `facility` (every actuator ingesting).
pub fn replay(file: &Path, facility: &Facility, opts: &ReplayOptions) -> Result<ReplayReport> {
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

    let mut twins: BTreeMap<usize, ActuatorTwin> = BTreeMap::new();
    let mut findings: Vec<(String, FindingEvent)> = Vec::new();
    let wall0 = std::time::Instant::now();
    let t_first = accepted.first().map_or(0, |a| a.sample.t.0);
    for a in &accepted {
        let node = &facility.actuators[a.actuator];
        let twin = twins
            .entry(a.actuator)
            .or_insert_with(|| ActuatorTwin::new(&node.id, Arc::clone(&node.template), Mode::Ingest, 1, 0.0, false));
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
            }),
            Change::Resolved => {
                if let Some(r) = report_findings
                    .iter_mut()
                    .rev()
                    .find(|r| &r.node == node && r.kind == f.kind.as_str() && r.resolved_at_ms.is_none())
                {
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
