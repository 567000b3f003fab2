//! Ingest payloads: the seed's JSON (one object, an array, or NDJSON) with either the seed's or the
//! real rig's field names, validated into samples with a field path for every problem.

use crate::live::clip;
use serde_json::Value;
use twinfault_core::SimTime;
use twinfault_core::actuator::Sample;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::time::parse_timestamp_ms;

pub use twinfault_wire::FieldError;

/// Why a payload was refused; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON / NDJSON at all (400).
    Malformed,
    /// Unknown nodes only (404).
    UnknownNode,
    /// Anything else wrong with the values (422).
    Invalid,
}

/// Most field errors returned for one request.
const MAX_REPORTED_ERRORS: usize = 20;

/// Device types the seed's gateways send, and the rig's.
const DEVICE_TYPES: [&str; 6] = ["dampener", "damper", "damper_actuator", "valve", "valve_actuator", "actuator"];

/// Limits checked against the server clock and each node's latest sample.
pub struct Window {
    /// Now, by the server's clock [ms since the epoch].
    pub now_ms: i64,
    /// Samples further ahead than this are refused [ms].
    pub max_future_ms: i64,
    /// Samples older than a node's latest by more than this are refused [ms].
    pub out_of_order_ms: i64,
    /// Samples older than now minus this would not be kept (the store's retention) and are
    /// refused [ms].
    pub retention_ms: i64,
}

/// JSON parsed into a `Value`, refusing an object with the same key twice (which a plain parse
/// would take silently, the last one winning).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("duplicate key \"{}\"", clip(&k))));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// Splits a body into JSON objects: one object, an array of them, or one per line (NDJSON).
pub fn objects(body: &[u8]) -> Result<Vec<Value>, FieldError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| FieldError { path: "body".into(), message: format!("not UTF-8: {e}") })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(FieldError { path: "body".into(), message: "empty body".into() });
    }
    match parse(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(v @ Value::Object(_)) => Ok(vec![v]),
        Ok(_) => Err(FieldError {
            path: "body".into(),
            message: "expected a JSON object, an array of objects, or NDJSON".into(),
        }),
        Err(whole) => {
            let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
            if lines.len() < 2 {
                return Err(FieldError { path: "body".into(), message: format!("invalid JSON: {whole}") });
            }
            // NDJSON: one object per non-empty line.
            lines
                .into_iter()
                .map(|(i, line)| {
                    parse(line).map_err(|e| FieldError {
                        path: format!("line {}", i + 1),
                        message: format!("invalid JSON: {e}"),
                    })
                })
                .collect()
        }
    }
}

/// Reads a number that may be sent as a JSON number or a numeric string; NaN and infinities are refused.
fn number(v: &Value) -> Result<f64, String> {
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string())?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| format!("\"{}\" is not a number", clip(s)))?,
        Value::Null => return Err("null".into()),
        other => return Err(format!("{} is not a number", clip(&other.to_string()))),
    };
    if x.is_finite() { Ok(x) } else { Err(format!("{x} is not a finite number")) }
}

/// The first of several alternative field names present in `obj`.
fn field<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<(&'a str, &'a Value)> {
    names.iter().find_map(|n| obj.get_key_value(*n).map(|(k, v)| (k.as_str(), v)))
}

/// One validated sample for one actuator (index into `Facility::actuators`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    pub actuator: usize,
    pub sample: Sample,
}

/// Validates every object; all or nothing. `latest_ms(i)` is actuator `i`'s latest stored sample.
pub fn validate(
    items: &[Value],
    facility: &Facility,
    window: &Window,
    latest_ms: impl Fn(usize) -> Option<i64>,
) -> Result<Vec<Accepted>, (Refusal, Vec<FieldError>)> {
    validate_with(items, facility, window, latest_ms, |_| None)
}

/// As [`validate`], with `extra` resolving nodes the facility file does not have (auto-created
/// actuators) to their (actuator index, AHU index).
pub fn validate_with(
    items: &[Value],
    facility: &Facility,
    window: &Window,
    latest_ms: impl Fn(usize) -> Option<i64>,
    extra: impl Fn(&str) -> Option<(usize, usize)>,
) -> Result<Vec<Accepted>, (Refusal, Vec<FieldError>)> {
    let mut ok = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut unknown_only = true;
    let single = items.len() == 1;
    for (i, item) in items.iter().enumerate() {
        let at = |p: &str| if single { p.to_string() } else { format!("[{i}].{p}") };
        let mut err = |path: String, message: String, unknown: bool, errors: &mut Vec<FieldError>| {
            if !unknown {
                unknown_only = false;
            }
            errors.push(FieldError { path, message });
        };
        let Some(obj) = item.as_object() else {
            err(
                if single { "body".into() } else { format!("[{i}]") },
                "expected a JSON object".into(),
                false,
                &mut errors,
            );
            continue;
        };
        let node = match field(obj, &["nodeId", "node_id", "node"]) {
            Some((_, Value::String(s))) => s.as_str(),
            Some((k, v)) => {
                err(at(k), format!("{} is not a node id string", clip(&v.to_string())), false, &mut errors);
                continue;
            }
            None => {
                err(at("nodeId"), "missing".into(), false, &mut errors);
                continue;
            }
        };
        if let Some((k, v)) = field(obj, &["deviceType", "device_type"]) {
            match v.as_str() {
                Some(t) if DEVICE_TYPES.contains(&t) => {}
                _ => err(
                    at(k),
                    format!("unknown device type {} (one of {})", clip(&v.to_string()), DEVICE_TYPES.join(", ")),
                    false,
                    &mut errors,
                ),
            }
        }
        let (actuator, ahu) = match facility.node(node) {
            Some(NodeRef::Actuator(a)) => (a, facility.actuators[a].ahu),
            Some(_) => {
                err(
                    at("nodeId"),
                    format!("\"{}\" is an AHU or the plant; telemetry is ingested for actuators", clip(node)),
                    false,
                    &mut errors,
                );
                continue;
            }
            None => match extra(node) {
                Some(x) => x,
                None => {
                    err(at("nodeId"), format!("unknown node \"{}\"", clip(node)), true, &mut errors);
                    continue;
                }
            },
        };
        if let Some((k, v)) = field(obj, &["parentIds", "parent_ids"]) {
            let parent = &facility.ahus[ahu].id;
            match v.as_array() {
                Some(ps) if ps.iter().any(|p| p.as_str() == Some(parent)) || ps.is_empty() => {}
                Some(_) => err(at(k), format!("\"{}\" belongs to \"{parent}\"", clip(node)), false, &mut errors),
                None => err(at(k), "expected an array of node ids".into(), false, &mut errors),
            }
        }
        let t_ms = match field(obj, &["timestamp", "_time", "time"]) {
            Some((k, Value::String(s))) => match parse_timestamp_ms(s) {
                Some(t) => t,
                None => {
                    err(
                        at(k),
                        format!("\"{}\" is not an RFC 3339 timestamp (or not a calendar date)", clip(s)),
                        false,
                        &mut errors,
                    );
                    continue;
                }
            },
            Some((_, Value::Number(n))) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
            Some((k, v)) => {
                err(
                    at(k),
                    format!("{} is not a timestamp (RFC 3339 string or epoch milliseconds)", clip(&v.to_string())),
                    false,
                    &mut errors,
                );
                continue;
            }
            None => {
                err(at("timestamp"), "missing".into(), false, &mut errors);
                continue;
            }
        };
        if t_ms < 0 {
            err(at("timestamp"), "before 1970".into(), false, &mut errors);
            continue;
        }
        if t_ms < window.now_ms - window.retention_ms {
            let msg = format!(
                "{} is older than the store keeps (history_retention_s = {} s): it would not be kept",
                twinfault_core::time::format_timestamp_ms(t_ms),
                window.retention_ms / 1000
            );
            err(at("timestamp"), msg, false, &mut errors);
            continue;
        }
        if t_ms > window.now_ms + window.max_future_ms {
            err(at("timestamp"), format!("{} s in the future", (t_ms - window.now_ms) / 1000), false, &mut errors);
            continue;
        }
        if let Some(latest) = latest_ms(actuator)
            && t_ms < latest - window.out_of_order_ms
        {
            let msg = format!(
                "{} s older than this node's latest sample; out-of-order samples are accepted within {} s",
                (latest - t_ms) / 1000,
                window.out_of_order_ms / 1000
            );
            err(at("timestamp"), msg, false, &mut errors);
            continue;
        }
        // Telemetry: nested under `telemetry`, or at the top level (the rig's export rows).
        let tel = match obj.get("telemetry") {
            Some(Value::Object(t)) => t,
            Some(v) => {
                err(at("telemetry"), format!("{} is not an object", clip(&v.to_string())), false, &mut errors);
                continue;
            }
            None => obj,
        };
        let tpath = |k: &str| if obj.contains_key("telemetry") { at(&format!("telemetry.{k}")) } else { at(k) };
        let mut get = |names: &[&str], required: bool, errors: &mut Vec<FieldError>| -> Option<f64> {
            match field(tel, names) {
                Some((k, v)) => match number(v) {
                    Ok(x) => Some(x),
                    Err(m) => {
                        err(tpath(k), m, false, errors);
                        None
                    }
                },
                None if required => {
                    err(tpath(names[0]), format!("missing (or one of {})", names[1..].join(", ")), false, errors);
                    None
                }
                None => None,
            }
        };
        let position = get(&["position_percent", "feedback_position_%", "position_pct", "position"], true, &mut errors);
        let setpoint =
            get(&["setpoint_position_percent", "setpoint_position_%", "setpoint_pct", "setpoint"], true, &mut errors);
        let torque = get(&["torque", "motor_torque_Nmm", "torque_nm"], true, &mut errors);
        let power = get(&["power_w", "power_W"], true, &mut errors);
        let temperature = get(&["temperature", "internal_temperature_deg_C", "temperature_c"], true, &mut errors);
        let rotation = get(&["rotation_direction", "rotation"], false, &mut errors);
        let quality = get(&["signal_quality", "signalQuality"], false, &mut errors);
        let (Some(position), Some(setpoint), Some(torque), Some(power), Some(temperature)) =
            (position, setpoint, torque, power, temperature)
        else {
            continue;
        };
        let mut good = true;
        for (k, v, lo, hi) in [
            ("position_percent", position, -5.0, 105.0),
            ("setpoint_position_percent", setpoint, -5.0, 105.0),
            ("torque", torque, -1000.0, 1000.0),
            ("power_w", power, 0.0, 1000.0),
            ("temperature", temperature, -60.0, 200.0),
            ("signal_quality", quality.unwrap_or(1.0), 0.0, 1.0),
        ] {
            if !(lo..=hi).contains(&v) {
                err(tpath(k), format!("{v} is outside {lo}..={hi}"), false, &mut errors);
                good = false;
            }
        }
        let rotation = match rotation {
            None => 0,
            Some(r) if r == 0.0 || r == 1.0 || r == 2.0 => r as u8,
            Some(r) => {
                err(
                    tpath("rotation_direction"),
                    format!("{r} is not 0 (stopped), 1 (opening) or 2 (closing)"),
                    false,
                    &mut errors,
                );
                good = false;
                0
            }
        };
        if good {
            ok.push(Accepted {
                actuator,
                sample: Sample {
                    t: SimTime(t_ms as u64),
                    setpoint_pct: setpoint as f32,
                    position_pct: position as f32,
                    torque_nm: torque as f32,
                    power_w: power as f32,
                    temperature_c: temperature as f32,
                    rotation,
                    signal_quality: quality.map(|q| q as f32),
                },
            });
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        // Bounded: the first problems say what is wrong; a count says how much.
        if errors.len() > MAX_REPORTED_ERRORS {
            let more = errors.len() - MAX_REPORTED_ERRORS;
            errors.truncate(MAX_REPORTED_ERRORS);
            errors.push(FieldError { path: "…".into(), message: format!("and {more} more problems") });
        }
        Err((if unknown_only { Refusal::UnknownNode } else { Refusal::Invalid }, errors))
    }
}
