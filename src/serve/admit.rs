//! The one ingest admission, for HTTP and MQTT alike: a body becomes the samples to store, or one
//! refusal. [`Ingest::check`] parses and validates without side effects (it runs on a blocking
//! thread); [`Ingest::admit`] then creates the batch's new nodes (`auto_create`), so a refused
//! batch creates nothing.

use super::{Actors, ServeConfig};
use crate::live::{ExtraNode, Live};
use crate::store::Store;
use crate::telemetry::payload::{self, Accepted, FieldError, Refusal, Window};
use actix_web::http::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;
use twinfault_core::config::Facility;
use twinfault_core::twin::Mode;

/// What admission needs of the server.
pub struct Ingest {
    pub cfg: Arc<ServeConfig>,
    pub facility: Arc<Facility>,
    pub live: Arc<Live>,
    pub actors: Actors,
    pub store: Store,
}

/// Why a body was refused; nothing of it was stored or created.
#[derive(Debug)]
pub enum Refused {
    /// Not JSON, a JSON array or NDJSON at all.
    NotJson(FieldError),
    /// Parsed, and refused by validation (`items` objects in the body).
    Checked { refusal: Refusal, details: Vec<FieldError>, items: usize },
    /// Telemetry for a node this server simulates.
    Simulated { details: Vec<FieldError>, items: usize },
}

impl Refused {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::NotJson(_) | Refused::Checked { refusal: Refusal::Malformed, .. } => StatusCode::BAD_REQUEST,
            Refused::Checked { refusal: Refusal::UnknownNode, .. } => StatusCode::NOT_FOUND,
            Refused::Checked { refusal: Refusal::Invalid, .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Refused::Simulated { .. } => StatusCode::CONFLICT,
        }
    }

    /// The reason counted in `twinfault_rejected_samples_total` for HTTP.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::NotJson(_) | Refused::Checked { refusal: Refusal::Malformed, .. } => "malformed",
            Refused::Checked { refusal: Refusal::UnknownNode, .. } => "unknown_node",
            Refused::Checked { refusal: Refusal::Invalid, .. } => "invalid",
            Refused::Simulated { .. } => "simulated_node",
        }
    }

    /// The reason counted for MQTT.
    pub fn mqtt_reason(&self) -> &'static str {
        match self {
            Refused::NotJson(_) => "mqtt_malformed",
            Refused::Checked { .. } => "mqtt_invalid",
            Refused::Simulated { .. } => "simulated_node",
        }
    }

    /// The one-line summary of the reply.
    pub fn message(&self) -> &'static str {
        match self {
            Refused::NotJson(_) => "the body is not JSON, a JSON array or NDJSON",
            Refused::Checked { refusal: Refusal::Malformed, .. } => "malformed payload; nothing was accepted",
            Refused::Checked { refusal: Refusal::UnknownNode, .. } => "unknown node; nothing was accepted",
            Refused::Checked { refusal: Refusal::Invalid, .. } => "invalid samples; nothing was accepted",
            Refused::Simulated { .. } => "telemetry for a simulated node; nothing was accepted",
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            Refused::NotJson(e) => std::slice::from_ref(e),
            Refused::Checked { details, .. } | Refused::Simulated { details, .. } => details,
        }
    }

    /// Samples (objects) refused.
    pub fn items(&self) -> usize {
        match self {
            Refused::NotJson(_) => 1,
            Refused::Checked { items, .. } | Refused::Simulated { items, .. } => *items,
        }
    }
}

/// A checked body: its samples, some of them for nodes still to be created.
#[derive(Debug)]
pub struct Checked {
    samples: Vec<Accepted>,
    /// Nodes to create, in order; a sample for the k-th has actuator index `PROVISIONAL + k`.
    new_nodes: Vec<ExtraNode>,
}

impl Checked {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Each object's actuator, in body order (one sample per object).
    pub fn actuators(&self) -> impl Iterator<Item = usize> + '_ {
        self.samples.iter().map(|a| a.actuator)
    }
}

/// Actuator indices from here on stand for nodes not created yet.
const PROVISIONAL: usize = usize::MAX / 2;

/// Whether `id` may name an auto-created node.
fn valid_new_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && !id.chars().any(|c| c.is_whitespace() || c == '/')
}

impl Ingest {
    /// Parses and validates a body at `now_ms` (server clock); creates and stores nothing.
    pub fn check(&self, body: &[u8], now_ms: i64) -> Result<Checked, Refused> {
        self.check_late(body, now_ms, false)
    }

    /// As [`Ingest::check`]; with `late`, a sample older than its node's latest by more than
    /// `out_of_order_window_s` is taken too (within the retention): a message JetStream delivers
    /// again after a crash, which the stream accepted long ago, is stored rather than refused.
    pub fn check_late(&self, body: &[u8], now_ms: i64, late: bool) -> Result<Checked, Refused> {
        let items = payload::objects(body).map_err(Refused::NotJson)?;
        self.check_objects(&items, now_ms, late)
    }

    /// As [`Ingest::check_late`], on a body already split into its objects.
    pub fn check_objects(&self, items: &[serde_json::Value], now_ms: i64, late: bool) -> Result<Checked, Refused> {
        let (facility, live) = (&self.facility, &self.live);
        // Unknown nodes whose parentIds name a known AHU, when the server creates such nodes.
        let mut new_nodes: Vec<ExtraNode> = Vec::new();
        let mut provisional: BTreeMap<String, usize> = BTreeMap::new();
        if self.cfg.auto_create {
            for item in items {
                let Some(id) = item.get("nodeId").and_then(|v| v.as_str()) else { continue };
                if facility.node(id).is_some()
                    || live.extra(id).is_some()
                    || provisional.contains_key(id)
                    || !valid_new_id(id)
                {
                    continue;
                }
                let parent = item.get("parentIds").and_then(|v| v.as_array()).and_then(|ps| {
                    ps.iter().filter_map(|p| p.as_str()).find_map(|p| facility.ahus.iter().position(|a| a.id == p))
                });
                let Some(ahu) = parent else { continue };
                let device_type = item.get("deviceType").and_then(|v| v.as_str()).unwrap_or("actuator").to_string();
                provisional.insert(id.to_string(), new_nodes.len());
                new_nodes.push(ExtraNode { id: id.to_string(), ahu, device_type });
            }
        }
        let cfg = &self.cfg;
        // The live server's limits now.
        let window = Window {
            now_ms,
            max_future_ms: (cfg.max_future_s * 1000.0) as i64,
            out_of_order_ms: if late {
                (cfg.history_retention_s * 1000.0) as i64
            } else {
                (cfg.out_of_order_window_s * 1000.0) as i64
            },
            retention_ms: (cfg.history_retention_s * 1000.0) as i64,
        };
        let samples = payload::validate_with(
            items,
            facility,
            &window,
            |i| if i >= PROVISIONAL { None } else { live.latest_ms(i) },
            |id| live.extra(id).or_else(|| provisional.get(id).map(|&k| (PROVISIONAL + k, new_nodes[k].ahu))),
        )
        .map_err(|(refusal, details)| Refused::Checked { refusal, details, items: items.len() })?;
        // Samples for simulated nodes are refused: their twin makes its own.
        let simulated: Vec<FieldError> = samples
            .iter()
            .filter(|a| facility.actuators.get(a.actuator).is_some_and(|n| n.mode == Mode::Simulate))
            .map(|a| FieldError {
                path: "nodeId".into(),
                message: format!("\"{}\" is simulated by this server", facility.actuators[a.actuator].id),
            })
            .collect();
        if !simulated.is_empty() {
            return Err(Refused::Simulated { details: simulated, items: items.len() });
        }
        Ok(Checked { samples, new_nodes })
    }

    /// Creates the checked batch's new nodes (an actor each: call it on an actix thread) and
    /// returns the samples with their nodes' indices.
    pub fn admit(&self, c: Checked) -> anyhow::Result<Vec<Accepted>> {
        let mut index = Vec::with_capacity(c.new_nodes.len());
        for node in c.new_nodes {
            index.push(super::create_extra(&self.facility, &self.live, &self.actors, &self.store, node, None)?);
        }
        let mut samples = c.samples;
        for a in &mut samples {
            if a.actuator >= PROVISIONAL {
                a.actuator = index[a.actuator - PROVISIONAL];
            }
        }
        Ok(samples)
    }
}
