//! `twinfault serve --facility FLEET`: a fleet's cycles over HTTP into its member actors.
//!
//! `POST /api/fleet/cycles` (write token) takes a JSON array (or NDJSON) of
//! `{"node", "cycle", "settings": [...], "sensors": [...]}`; all or nothing: the batch is checked
//! (known node, one value per channel, finite numbers, each member's cycles increasing), written
//! to the sled store and flushed, and only then answered and passed to the actors, in order. On
//! start the stored cycles are replayed into fresh actors, so a restart (even `kill -9`) loses
//! nothing acknowledged and ends in the same state. `GET /api/fleet` (read token) gives the
//! fleet's status, every member's last verdict and the alarms.

use crate::fleet::actors::{CycleIn, FleetActor, MemberActor, MemberAlarm, Snapshot};
use crate::fleet::cmapss::load_fleet;
use crate::serve::api::{authorize_cfg, error};
use crate::serve::{Access, ServeConfig};
use crate::store::Store;
use crate::store::fleet::FleetCycles;
use crate::telemetry::payload::FieldError;
use actix::prelude::*;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use twinfault_core::asset::{CycleVerdict, Fleet};
use twinfault_core::types::Status;

/// One cycle of one member, as posted and as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleDoc {
    pub node: String,
    pub cycle: u32,
    pub settings: Vec<f64>,
    pub sensors: Vec<f64>,
}

struct FleetState {
    cfg: Arc<ServeConfig>,
    fleet: Arc<Fleet>,
    ids: Vec<String>,
    members: Vec<Addr<MemberActor>>,
    fleet_addr: Addr<FleetActor>,
    cycles: FleetCycles,
    /// Bodies being read and parsed, against the server's limits (as the HVAC server's).
    inflight: Arc<crate::serve::body::Inflight>,
    /// Per member: its last cycle and verdict. Ingest holds this lock from checking a batch
    /// until its cycles are passed on, so members' cycles stay in order.
    latest: tokio::sync::Mutex<Vec<Option<CycleVerdict>>>,
}

/// Serves a fleet file until the process ends.
pub fn serve(fleet_path: &Path, cfg: ServeConfig) -> Result<()> {
    let fleet = Arc::new(load_fleet(fleet_path)?);
    anyhow::ensure!(fleet.file.members <= usize::from(u16::MAX), "a fleet has at most 65,535 members");
    let store = Store::open(&cfg.store)?;
    let cycles = store.fleet_cycles()?;
    let ids: Vec<String> = (1..=fleet.file.members).filter_map(|u| fleet.file.member(u)).collect();
    let cfg = Arc::new(cfg);
    actix_web::rt::System::new().block_on(async move {
        let fleet_addr = FleetActor::new(&fleet, false).start();
        let members: Vec<Addr<MemberActor>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| MemberActor::new(i, id.clone(), Arc::clone(&fleet), fleet_addr.clone()).start())
            .collect();
        // What was acknowledged before comes back first, in each member's cycle order.
        let mut latest: Vec<Option<CycleVerdict>> = vec![None; ids.len()];
        let mut restored = 0usize;
        for (member, doc) in cycles.all::<CycleDoc>()? {
            let Some(addr) = members.get(member) else { continue };
            let m = CycleIn { cycle: doc.cycle, settings: doc.settings, sensors: doc.sensors };
            latest[member] = Some(addr.send(m).await.context("a member actor stopped")?);
            restored += 1;
        }
        println!(
            "twinfault serve: fleet {} ({} {} members), store {}, {restored} cycles restored, listening on http://{}",
            fleet.file.id,
            fleet.file.members,
            fleet.template.asset,
            cfg.store.display(),
            cfg.bind
        );
        let state = web::Data::new(FleetState {
            cfg: Arc::clone(&cfg),
            fleet,
            ids,
            members,
            fleet_addr,
            cycles,
            inflight: Arc::new(crate::serve::body::Inflight::new(cfg.workers)),
            latest: tokio::sync::Mutex::new(latest),
        });
        let bind = cfg.bind.clone();
        let workers = cfg.workers.max(1);
        actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(state.clone())
                .route("/health", web::get().to(|| async { HttpResponse::Ok().json(json!({ "status": "ok" })) }))
                .route("/api/fleet", web::get().to(status))
                .route("/api/fleet/cycles", web::post().to(ingest))
        })
        .workers(workers)
        .max_connections(cfg.max_connections.div_ceil(workers).max(1))
        .bind(&bind)
        .with_context(|| format!("cannot listen on {bind}"))?
        .run()
        .await
        .context("the HTTP server stopped")
    })
}

/// Why a body was refused: not JSON at all (400), or an item that is not a cycle (422).
enum Refused {
    NotJson(FieldError),
    Item(Vec<FieldError>),
}

/// Parses a JSON array or NDJSON of cycle documents; errors name the item.
fn parse(body: &[u8]) -> Result<Vec<CycleDoc>, Refused> {
    let body_error = |message: String| Refused::NotJson(FieldError { path: "body".into(), message });
    let text = std::str::from_utf8(body).map_err(|_| body_error("not UTF-8".into()))?;
    if text.trim_start().starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| body_error(e.to_string()))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v)
                    .map_err(|e| Refused::Item(vec![FieldError { path: format!("[{i}]"), message: e.to_string() }]))
            })
            .collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| Refused::Item(vec![FieldError { path: format!("[{i}]"), message: e.to_string() }]))
            })
            .collect()
    }
}

async fn ingest(req: HttpRequest, payload: web::Payload, st: web::Data<FleetState>) -> HttpResponse {
    // The token first: a stranger's body is never read.
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Write) {
        return r;
    }
    let (body, _held) =
        match crate::serve::body::read(&req, payload, &st.cfg, &st.inflight, st.cfg.max_body_bytes).await {
            Ok(b) => b,
            Err(r) => return r,
        };
    let Ok(permit) = Arc::clone(&st.inflight.parsing).acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping", vec![]);
    };
    let parsed = web::block(move || parse(&body)).await;
    drop(permit);
    let docs = match parsed {
        Ok(Ok(d)) if !d.is_empty() => d,
        Ok(Ok(_)) => return error(StatusCode::UNPROCESSABLE_ENTITY, "no cycles", vec![]),
        Ok(Err(Refused::NotJson(e))) => {
            return error(StatusCode::BAD_REQUEST, "the body is not JSON or NDJSON", vec![e]);
        }
        Ok(Err(Refused::Item(details))) => return error(StatusCode::UNPROCESSABLE_ENTITY, "bad cycles", details),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not parse: {e}"), vec![]),
    };
    let (ns, nx) = (st.fleet.template.settings().count(), st.fleet.template.sensors().count());
    let mut latest = st.latest.lock().await;
    // Check the whole batch against the members' last cycles (and its own earlier items).
    let mut last: Vec<Option<u32>> = latest.iter().map(|v| v.map(|v| v.cycle)).collect();
    let mut members = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let Some(m) = st.ids.iter().position(|id| *id == d.node) else {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "[{i}].node: \"{}\" is not a member of fleet \"{}\"",
                    crate::live::clip(&d.node),
                    st.fleet.file.id
                ),
                vec![],
            );
        };
        let field = |path: &str, message: String| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad cycles",
                vec![FieldError { path: format!("[{i}].{path}"), message }],
            )
        };
        if d.settings.len() != ns {
            return field("settings", format!("{} values, the template has {ns} settings", d.settings.len()));
        }
        if d.sensors.len() != nx {
            return field("sensors", format!("{} values, the template has {nx} sensors", d.sensors.len()));
        }
        if let Some(k) = d.settings.iter().position(|v| !v.is_finite()) {
            return field(&format!("settings[{k}]"), "not a finite number".into());
        }
        if let Some(k) = d.sensors.iter().position(|v| !v.is_finite()) {
            return field(&format!("sensors[{k}]"), "not a finite number".into());
        }
        if let Some(prev) = last[m].filter(|p| d.cycle <= *p) {
            return error(
                StatusCode::CONFLICT,
                format!("[{i}].cycle: {} of {} does not follow its cycle {prev}", d.cycle, d.node),
                vec![],
            );
        }
        last[m] = Some(d.cycle);
        members.push(m);
    }
    // On disk before anything is acknowledged or evaluated.
    let items: Vec<(usize, u32, &CycleDoc)> = docs.iter().zip(&members).map(|(d, &m)| (m, d.cycle, d)).collect();
    if let Err(e) = st.cycles.put(&items) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]);
    }
    let mut opened = Vec::new();
    for (d, &m) in docs.into_iter().zip(&members) {
        let node = d.node.clone();
        match st.members[m].send(CycleIn { cycle: d.cycle, settings: d.settings, sensors: d.sensors }).await {
            Ok(v) => {
                if v.opened {
                    opened.push(json!({ "node": node, "cycle": v.cycle, "rul": v.rul, "hi": v.hi }));
                }
                latest[m] = Some(v);
            }
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("stored, but {node} did not answer: {e}"),
                    vec![],
                );
            }
        }
    }
    HttpResponse::Ok().json(json!({ "accepted": members.len(), "alarms_opened": opened }))
}

async fn status(req: HttpRequest, st: web::Data<FleetState>) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let latest = st.latest.lock().await.clone();
    let (statuses, mut alarms): (Vec<Status>, Vec<MemberAlarm>) = match st.fleet_addr.send(Snapshot).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("the fleet did not answer: {e}"), vec![]),
    };
    alarms.sort_by_key(|a| (a.cycle, a.member));
    let members: Vec<serde_json::Value> = st
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({ "node": id, "status": statuses[i], "last": latest[i] }))
        .collect();
    HttpResponse::Ok().json(json!({
        "fleet": st.fleet.file.id,
        "status": statuses.iter().copied().max().unwrap_or(Status::Healthy),
        "members": members,
        "alarms": alarms,
    }))
}
