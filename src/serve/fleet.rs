//! `twinfault serve --facility FLEET`: a fleet's cycles over HTTP into its member actors, served
//! by the one app ([`crate::serve::api::app`]: the same tokens, limits, errors and read views as a
//! facility's server).
//!
//! `POST /api/fleet/cycles` (write token) takes a JSON array (or NDJSON) of
//! `{"node", "cycle", "settings": [...], "sensors": [...]}`; all or nothing: the batch is checked
//! (known node, one value per channel, finite numbers, each member's cycles increasing), written
//! to the sled store with the time it was accepted and flushed, and only then answered and
//! passed to the actors, in order. An alarm is a finding on its member in the fleet's event log
//! ([`twinfault_core::asset::FleetLog`]), with the facility server's fault ids. On start the
//! stored cycles are replayed into fresh actors in the order they were accepted, so a restart
//! (even `kill -9`) loses nothing acknowledged and ends in the same state, alarms and their
//! times included. Reads: `GET /api/status`, `/api/nodes/{id}`, `/api/nodes/{id}/fault-history`,
//! `/api/faults` (the facility server's wire types; the fleet and its members are nodes of kind
//! `fleet` and `member`) and `GET /api/fleet` (every member's last verdict).

use crate::fleet::actors::{CycleIn, FleetActor, MemberActor, View};
use crate::fleet::cmapss::load_fleet;
use crate::serve::Access;
use crate::serve::ServeConfig;
use crate::serve::api::{FaultsQuery, Served, authorize_cfg, error, fault_list};
use crate::store::Store;
use crate::store::fleet::FleetCycles;
use crate::telemetry::payload::FieldError;
use actix::prelude::*;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use twinfault_core::asset::{CycleVerdict, Fleet};
use twinfault_core::ledger::FaultLedger;
use twinfault_core::time::format_timestamp_ms;
use twinfault_core::types::{SimTime, Status};
use twinfault_wire::{FaultChange, FaultView, Health, NodeKind, NodeView, StatusView};

/// One cycle of one member, as posted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleDoc {
    pub node: String,
    pub cycle: u32,
    pub settings: Vec<f64>,
    pub sensors: Vec<f64>,
}

/// One cycle as stored: the document and when the server accepted it (the event log's time of
/// what it raised; absent in stores written before it was kept).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCycle {
    node: String,
    cycle: u32,
    settings: Vec<f64>,
    sensors: Vec<f64>,
    #[serde(default)]
    accepted_ms: u64,
}

/// Each member's last verdict, and the time the last batch was stamped with.
struct Latest {
    verdicts: Vec<Option<CycleVerdict>>,
    t: SimTime,
}

/// A fleet server's state (the facility server's is [`crate::serve::api::AppState`]).
pub struct FleetState {
    cfg: Arc<ServeConfig>,
    fleet: Arc<Fleet>,
    ids: Vec<String>,
    members: Vec<Addr<MemberActor>>,
    fleet_addr: Addr<FleetActor>,
    cycles: FleetCycles,
    /// Bodies being read and parsed, against the server's limits (as the HVAC server's).
    inflight: Arc<crate::serve::body::Inflight>,
    /// Ingest holds this lock from checking a batch until its cycles are passed on, so members'
    /// cycles stay in order and the fleet's events in time order.
    latest: tokio::sync::Mutex<Latest>,
}

type St = web::Data<FleetState>;

/// A fleet's routes in the one app ([`crate::serve::api::app`]).
pub fn routes(c: &mut web::ServiceConfig) {
    c.route("/api/status", web::get().to(status))
        .route("/api/nodes/{id}", web::get().to(node))
        .route("/api/nodes/{id}/fault-history", web::get().to(fault_history))
        .route("/api/faults", web::get().to(faults))
        .route("/api/fleet", web::get().to(members))
        .route("/api/fleet/cycles", web::post().to(ingest));
}

/// Serves a fleet file until the process ends.
pub fn serve(fleet_path: &Path, cfg: ServeConfig) -> Result<()> {
    let fleet = Arc::new(load_fleet(fleet_path)?);
    anyhow::ensure!(fleet.file.members <= usize::from(u16::MAX), "a fleet has at most 65,535 members");
    let store = Store::open(&cfg.store)?;
    let cycles = store.fleet_cycles()?;
    let ids = fleet.member_ids();
    let cfg = Arc::new(cfg);
    actix_web::rt::System::new().block_on(async move {
        let fleet_addr = FleetActor::new(&fleet, false).start();
        let members: Vec<Addr<MemberActor>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| MemberActor::new(i, id.clone(), Arc::clone(&fleet), fleet_addr.clone()).start())
            .collect();
        // What was acknowledged before comes back first, in the order it was accepted (each
        // member's cycles in order), so the fleet's events are what they were.
        let mut stored = cycles.all::<StoredCycle>()?;
        stored.sort_by_key(|(member, c)| (c.accepted_ms, *member));
        let mut latest = Latest { verdicts: vec![None; ids.len()], t: SimTime::ZERO };
        let restored = stored.len();
        for (member, c) in stored {
            let Some(addr) = members.get(member) else { continue };
            let t = SimTime(c.accepted_ms);
            let m = CycleIn { cycle: c.cycle, t, settings: c.settings, sensors: c.sensors };
            latest.verdicts[member] = Some(addr.send(m).await.context("a member actor stopped")?);
            latest.t = latest.t.max(t);
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
        crate::serve::api::listen(cfg, Served::Fleet(state)).await
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

/// A fleet server only: cycles of its members, a JSON array or NDJSON of `{node, cycle,
/// settings, sensors}`, all or nothing, stored and flushed before the reply (write token).
#[utoipa::path(post, path = "/api/fleet/cycles", tag = "fleet", request_body(content = Vec<CycleDoc>, description = "JSON array or NDJSON"),
    responses((status = 200, body = CyclesReply), (status = 400, body = crate::serve::api::ErrorBody), (status = 404, body = crate::serve::api::ErrorBody),
        (status = 409, body = crate::serve::api::ErrorBody), (status = 413, body = crate::serve::api::ErrorBody), (status = 422, body = crate::serve::api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn ingest(req: HttpRequest, payload: web::Payload, st: web::Data<FleetState>) -> HttpResponse {
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
    let mut last: Vec<Option<u32>> = latest.verdicts.iter().map(|v| v.map(|v| v.cycle)).collect();
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
    // One time for the batch, never before the last one's: the event log stays in time order.
    let t = SimTime(crate::clock::now_ms().max(0) as u64).max(latest.t);
    let stored: Vec<StoredCycle> = docs
        .into_iter()
        .map(|d| StoredCycle {
            node: d.node,
            cycle: d.cycle,
            settings: d.settings,
            sensors: d.sensors,
            accepted_ms: t.0,
        })
        .collect();
    // On disk before anything is acknowledged or evaluated.
    let items: Vec<(usize, u32, &StoredCycle)> = stored.iter().zip(&members).map(|(d, &m)| (m, d.cycle, d)).collect();
    if let Err(e) = st.cycles.put(&items) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]);
    }
    latest.t = t;
    let mut opened = Vec::new();
    // Member by member (each member's cycles in order), as a restart replays them: the fleet's
    // events within one batch (one time) come in member order either way.
    let mut batch: Vec<(StoredCycle, usize)> = stored.into_iter().zip(members.iter().copied()).collect();
    batch.sort_by_key(|(_, m)| *m);
    let accepted = batch.len();
    for (d, m) in batch {
        let node = d.node.clone();
        match st.members[m].send(CycleIn { cycle: d.cycle, t, settings: d.settings, sensors: d.sensors }).await {
            Ok(v) => {
                if v.opened {
                    opened.push(AlarmOpened { fault_id: None, node, cycle: v.cycle, rul: v.rul, hi: v.hi });
                }
                latest.verdicts[m] = Some(v);
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
    // The ids the fleet node gave the alarms (it has them once the members' messages are in).
    if !opened.is_empty()
        && let Ok((_, ledger)) = st.fleet_addr.send(View).await
    {
        for a in &mut opened {
            if let Some(f) = ledger.open_of(&a.node).next() {
                a.fault_id = Some(f.id.clone());
            }
        }
    }
    HttpResponse::Ok().json(CyclesReply { accepted, alarms_opened: opened })
}

/// `POST /api/fleet/cycles`'s reply.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CyclesReply {
    /// Cycles stored and passed to the members.
    pub accepted: usize,
    pub alarms_opened: Vec<AlarmOpened>,
}

/// An alarm the batch opened.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmOpened {
    /// The fault it opened (none if the fleet node did not answer).
    pub fault_id: Option<String>,
    pub node: String,
    pub cycle: u32,
    /// Remaining-life estimate [cycles] and health index at the alarm.
    pub rul: f64,
    pub hi: f64,
}

/// The members' statuses and the fleet's faults, from the fleet node.
async fn view(st: &FleetState) -> Result<(Vec<Status>, FaultLedger), HttpResponse> {
    st.fleet_addr
        .send(View)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("the fleet did not answer: {e}"), vec![]))
}

fn fleet_node(st: &FleetState, statuses: &[Status]) -> NodeView {
    let status = statuses.iter().copied().max().unwrap_or(Status::Healthy);
    NodeView {
        children: Some(st.ids.clone()),
        device_type: Some(st.fleet.template.asset.clone()),
        ..NodeView::new(st.fleet.file.id.clone(), NodeKind::Fleet, status)
    }
}

fn member_node(st: &FleetState, m: usize, status: Status) -> NodeView {
    NodeView {
        parent: Some(st.fleet.file.id.clone()),
        device_type: Some(st.fleet.template.asset.clone()),
        ..NodeView::new(st.ids[m].clone(), NodeKind::Member, status)
    }
}

fn open_faults(ledger: &FaultLedger) -> Vec<FaultView> {
    ledger.open_ranked().into_iter().map(FaultView::of).collect()
}

/// The fleet node and every member with their statuses, the open alarms, the fleet's health.
async fn status(req: HttpRequest, st: St) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let (statuses, ledger) = match view(&st).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let open = open_faults(&ledger);
    let mut nodes = vec![fleet_node(&st, &statuses)];
    nodes.extend(statuses.iter().enumerate().map(|(m, s)| member_node(&st, m, *s)));
    HttpResponse::Ok().json(StatusView {
        facility: st.fleet.file.name.clone(),
        time: format_timestamp_ms(crate::clock::now_ms()),
        health: Health::of(&statuses, open.len()),
        open_faults: open,
        nodes,
    })
}

/// The fleet node or a member, with its open faults.
async fn node(req: HttpRequest, path: web::Path<String>, st: St) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let (statuses, ledger) = match view(&st).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut v = if *path == st.fleet.file.id {
        fleet_node(&st, &statuses)
    } else if let Some(m) = st.ids.iter().position(|id| *id == *path) {
        member_node(&st, m, statuses[m])
    } else {
        return unknown(&st, &path);
    };
    v.open_faults = Some(if v.kind == NodeKind::Fleet {
        open_faults(&ledger)
    } else {
        ledger.open_of(&path).map(FaultView::of).collect()
    });
    HttpResponse::Ok().json(v)
}

fn unknown(st: &FleetState, id: &str) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("unknown node \"{}\" (fleet \"{}\" and its members)", crate::live::clip(id), st.fleet.file.id),
        vec![],
    )
}

/// A member's fault changes, oldest first.
async fn fault_history(req: HttpRequest, path: web::Path<String>, st: St) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    if *path != st.fleet.file.id && !st.ids.contains(&path) {
        return unknown(&st, &path);
    }
    match view(&st).await {
        Ok((_, ledger)) => HttpResponse::Ok().json(ledger.history(&path).map(FaultChange::of).collect::<Vec<_>>()),
        Err(r) => r,
    }
}

/// The fleet's open alarms (ranked) or resolved ones.
async fn faults(req: HttpRequest, q: web::Query<FaultsQuery>, st: St) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    match view(&st).await {
        Ok((_, ledger)) => fault_list(
            &q,
            |n| open_faults(&ledger).into_iter().take(n).collect(),
            |n| ledger.resolved().take(n).map(FaultView::of).collect(),
        ),
        Err(r) => r,
    }
}

/// `GET /api/fleet`: the fleet's status, every member's last verdict and the open alarms.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetMembers {
    pub fleet: String,
    #[schema(value_type = String)]
    pub status: Status,
    pub members: Vec<MemberView>,
    pub alarms: Vec<FaultView>,
}

/// One member and its monitor's last verdict.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub node: String,
    #[schema(value_type = String)]
    pub status: Status,
    /// The last cycle's verdict (cycle, regime, phase, health index, remaining life, alarm).
    #[schema(value_type = Option<Object>)]
    pub last: Option<CycleVerdict>,
}

/// A fleet server only: the fleet's status, each member's last verdict, its alarms (read token).
#[utoipa::path(get, path = "/api/fleet", tag = "fleet", responses((status = 200, body = FleetMembers), (status = 401, body = crate::serve::api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn members(req: HttpRequest, st: St) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let latest: Vec<Option<CycleVerdict>> = st.latest.lock().await.verdicts.clone();
    let (statuses, ledger) = match view(&st).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let members = st
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| MemberView { node: id.clone(), status: statuses[i], last: latest[i] })
        .collect();
    HttpResponse::Ok().json(FleetMembers {
        fleet: st.fleet.file.id.clone(),
        status: statuses.iter().copied().max().unwrap_or(Status::Healthy),
        members,
        alarms: ledger.all().into_iter().map(FaultView::of).collect(),
    })
}
