//! The HTTP API (actix-web).

// Handlers return a ready `HttpResponse` as their error: it is the value they would build anyway.
#![allow(clippy::result_large_err)]

use super::{Access, ServeConfig, WriteJob, Writer};
use crate::agent::policy::{Change, Refusal as ActionRefusal};
use crate::clock::now_ms;
use crate::live::clip;
use crate::live::{FaultChange, FaultView, Live};
use crate::sim::engine::{AhuActor, Diagnose, ForceResolve, LiveClear, LiveError, LiveInject, Supervisor};
use crate::store::Store;
use crate::store::audit::Outcome;
use crate::telemetry::payload::FieldError;
use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use twinfault_core::SimTime;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::detect::Diagnosis;
use twinfault_core::fault::{Injection, InjectionProblem};
use twinfault_core::time::{format_timestamp_ms, parse_timestamp_ms};
use twinfault_core::types::{FaultKind, Status};

pub struct AppState {
    pub cfg: Arc<ServeConfig>,
    /// The one approval policy for changes, with the audit log.
    pub policy: Arc<crate::agent::policy::Policy>,
    pub facility: Arc<Facility>,
    pub live: Arc<Live>,
    pub store: Store,
    pub writer: Writer,
    /// Every actuator actor: the facility's, then auto-created ones.
    pub actuators: super::Actors,
    pub ahus: Vec<Addr<AhuActor>>,
    pub supervisor: Addr<Supervisor>,
    /// Bytes of bodies and samples waiting for the disk, against their limits.
    pub inflight: Arc<super::body::Inflight>,
    /// The ingest admission (shared with MQTT).
    pub ingest: Arc<super::admit::Ingest>,
}

/// Largest body of the endpoints other than ingest [bytes].
const SMALL_BODY: usize = 256 * 1024;

/// The body of an authenticated request, or the refusal.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    st: &AppState,
    limit: usize,
) -> Result<(web::Bytes, super::body::Held), HttpResponse> {
    super::body::read(req, payload, &st.cfg, &st.inflight, limit.min(st.cfg.max_body_bytes)).await
}

type State = web::Data<AppState>;

/// An error reply: what was wrong, and where.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: String,
    details: Vec<FieldError>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct IngestReply {
    /// Samples stored and passed to the twins.
    accepted: u64,
}

/// One sample as gateways send it (the rig's names are accepted too: `feedback_position_%`,
/// `setpoint_position_%`, `motor_torque_Nmm`, `power_W`, `internal_temperature_deg_C`).
#[derive(utoipa::ToSchema)]
#[allow(non_snake_case, dead_code)]
pub(crate) struct SampleDoc {
    /// Actuator id, e.g. `BEL-VNT-003`.
    nodeId: String,
    /// RFC 3339 with sub-second precision, or epoch milliseconds.
    timestamp: String,
    /// dampener, damper, damper_actuator, valve, valve_actuator or actuator.
    deviceType: Option<String>,
    /// If given, must contain the node's AHU.
    parentIds: Option<Vec<String>>,
    telemetry: TelemetryDoc,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct TelemetryDoc {
    position_percent: f64,
    setpoint_position_percent: f64,
    /// Signed motor torque [N·m].
    torque: f64,
    /// Internal temperature [°C].
    temperature: f64,
    power_w: f64,
    /// 0 stopped, 1 opening, 2 closing.
    rotation_direction: Option<u8>,
    /// 0..1, when the gateway reports one.
    signal_quality: Option<f64>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct PointDoc {
    t: String,
    t_ms: u64,
    value: f64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct HistoryReply {
    node: String,
    metric: String,
    points: Vec<PointDoc>,
    /// Pass as `from` for the next page; null on the last.
    next_from: Option<u64>,
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "twinfault", description = "Live digital twins of HVAC actuators: ingest, status, faults."),
    paths(clear, agent_chat, propose, actions, approve, reject, audit, ingest, status, facility, node, history, diagnosis, faults, fault_history, resolve, inject, health, metrics),
    components(schemas(ErrorBody, FieldError, IngestReply, SampleDoc, TelemetryDoc, HistoryReply, PointDoc, FaultView, FaultChange, ResolveBody, InjectBody, ClearBody, ProposeBody, ChatBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(<ApiDoc as utoipa::OpenApi>::openapi())
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>, details: Vec<FieldError>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into(), "details": details }))
}

/// Byte strings equal, in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The token's holder and access, or the response refusing the request.
fn authorize(req: &HttpRequest, st: &AppState, need: Access) -> Result<String, HttpResponse> {
    authorize_cfg(req, &st.cfg, need)
}

/// The caller's token name, if its token allows `need` under `cfg`; else the refusal.
pub(crate) fn authorize_cfg(req: &HttpRequest, cfg: &ServeConfig, need: Access) -> Result<String, HttpResponse> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        if need == Access::Read && cfg.read_open {
            return Ok("anonymous".into());
        }
        return Err(super::body::closing(error(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer …)",
            vec![],
        )));
    };
    // Every configured token is compared, each in constant time: the reply's timing tells
    // nothing about how much of a guess was right.
    let found = cfg
        .tokens
        .iter()
        .fold(None, |hit, t| if constant_time_eq(t.token.as_bytes(), token.as_bytes()) { Some(t) } else { hit });
    match found {
        None => Err(super::body::closing(error(StatusCode::UNAUTHORIZED, "unknown token", vec![]))),
        Some(t) if need == Access::Write && t.access != Access::Write => Err(super::body::closing(error(
            StatusCode::FORBIDDEN,
            format!("token \"{}\" is read-only", t.name),
            vec![],
        ))),
        Some(t) => Ok(t.name.clone()),
    }
}

/// Ingest samples: one object, a JSON array, or NDJSON; the seed's or the rig's field names.
/// All or nothing: a 2xx means every sample is on disk.
#[utoipa::path(post, path = "/api/ingest", tag = "ingest",
    request_body(content = SampleDoc, description = "One sample, an array of them, or NDJSON (one per line)"),
    responses(
        (status = 200, description = "Stored and passed to the twins", body = IngestReply),
        (status = 400, description = "Not JSON, an array or NDJSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "Unknown node", body = ErrorBody),
        (status = 409, description = "The node is simulated by this server", body = ErrorBody),
        (status = 413, description = "Body larger than max_body_bytes"),
        (status = 422, description = "Invalid values, with field paths", body = ErrorBody),
        (status = 429, description = "Queue full; retry after the Retry-After seconds", body = ErrorBody),
        (status = 503, description = "The store could not write", body = ErrorBody)),
    security(("bearer" = [])))]
async fn ingest(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    st.live.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(r) = authorize(&req, &st, Access::Write) {
        return r;
    }
    let (body, mut held) = match read_body(&req, payload, &st, st.cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => {
            st.live.reject("body", 1);
            return r;
        }
    };
    // Parsed and validated on a blocking thread, a few bodies at a time: a large body does not
    // hold up the workers' other requests (`/health`, `/api/status`), and its parsed form (several
    // times its bytes) is gone before the request waits for the disk.
    let Ok(permit) = Arc::clone(&st.inflight.parsing).acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping", vec![]);
    };
    let ingest = Arc::clone(&st.ingest);
    let checked = web::block(move || ingest.check(&body, now_ms())).await;
    drop(permit);
    let checked = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(refused)) => {
            st.live.reject(refused.reason(), refused.items() as u64);
            return error(refused.status(), refused.message(), refused.details().to_vec());
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not parse: {e}"), vec![]),
    };
    let n = checked.len();
    // Admission by work: the samples waiting for the disk across all requests are bounded.
    if !held.add_samples(n, st.cfg.max_inflight_samples) {
        st.live.reject("busy", n as u64);
        return super::body::busy("max_inflight_samples", st.cfg.max_inflight_samples, "samples waiting for the disk");
    }
    // Only now are the batch's new nodes created (a refused batch creates none).
    let samples = match st.ingest.admit(checked) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not create a node: {e:#}"), vec![]),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Err(_job) = st.writer.try_send(WriteJob { samples, ack: tx }) {
        st.live.reject("queue_full", n as u64);
        return super::body::busy("queue_depth", st.cfg.queue_depth, "the ingest queue is full");
    }
    let reply = rx.await;
    drop(held);
    match reply {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "accepted": n })),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e, vec![]),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the writer stopped", vec![]),
    }
}

/// An f32 as the shortest decimal that reads back as it (40.1, not 40.099998474121094).
/// The facility's tree and map geometry (zones, positions, children), as the visualizer draws it.
#[utoipa::path(get, path = "/api/facility", tag = "read", responses((status = 200, description = "Facility layout (JSON object)"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn facility(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(st.facility.layout())
}

/// Every node with its status, open faults ranked by severity then confidence, building health.
#[utoipa::path(get, path = "/api/status", tag = "read", responses((status = 200, description = "Facility status (JSON object)"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn status(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    let f = &st.facility;
    let mut nodes = Vec::new();
    if f.plant.is_some() {
        nodes.push(st.live.node_ref_json(NodeRef::Plant));
    }
    nodes.extend((0..f.ahus.len()).map(|h| st.live.node_ref_json(NodeRef::Ahu(h))));
    nodes.extend((0..f.actuators.len()).map(|i| st.live.node_ref_json(NodeRef::Actuator(i))));
    let extras = st.live.extras();
    for (e, s) in &extras {
        nodes.push(st.live.extra_json(e, *s));
    }
    let all: Vec<Status> = (0..f.actuators.len())
        .map(|i| st.live.status(NodeRef::Actuator(i)))
        .chain(extras.iter().map(|e| e.1))
        .collect();
    // Building health counts only the nodes that have reported; with none, it is unknown.
    let known = all.iter().filter(|&&x| x != Status::Unknown).count();
    let healthy = all.iter().filter(|&&x| x == Status::Healthy).count();
    let worst = all.iter().copied().max().unwrap_or(Status::Unknown);
    let open = st.live.open_faults();
    HttpResponse::Ok().json(json!({
        "facility": f.name,
        "time": format_timestamp_ms(now_ms()),
        "health": {
            "status": worst,
            "healthy_share": (known > 0).then(|| healthy as f64 / known as f64),
            "known": known,
            "actuators": crate::agent::tools::status_counts(&all),
            "open_faults": open.len(),
        },
        "open_faults": open,
        "nodes": nodes,
    }))
}

/// A facility node, or `None` for an auto-created actuator (with its JSON).
fn find_node(st: &AppState, id: &str) -> Result<Option<NodeRef>, HttpResponse> {
    if let Some(n) = st.facility.node(id) {
        return Ok(Some(n));
    }
    if st.live.extra(id).is_some() {
        return Ok(None);
    }
    Err(error(StatusCode::NOT_FOUND, format!("unknown node \"{id}\""), vec![]))
}

/// One node: kind, parent, children, status, mode, last sample, open faults.
#[utoipa::path(get, path = "/api/nodes/{id}", tag = "read", params(("id" = String, Path, description = "Node id")), responses((status = 200, description = "The node (JSON object)"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn node(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    let Some(mut v) = st.live.node_json(&path) else {
        return error(StatusCode::NOT_FOUND, format!("unknown node \"{}\"", clip(&path)), vec![]);
    };
    v["open_faults"] = json!(st.live.open_faults_of(&path));
    HttpResponse::Ok().json(v)
}

#[derive(Deserialize)]
struct HistoryQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// A time given as epoch milliseconds or RFC 3339.
fn time_param(name: &str, v: &Option<String>, default: i64) -> Result<i64, FieldError> {
    match v {
        None => Ok(default),
        Some(s) => s.parse::<i64>().ok().or_else(|| parse_timestamp_ms(s)).ok_or_else(|| FieldError {
            path: name.into(),
            message: format!("\"{s}\" is neither epoch milliseconds nor RFC 3339"),
        }),
    }
}

/// One page of an actuator's telemetry, in time order.
#[utoipa::path(get, path = "/api/nodes/{id}/history", tag = "read",
    params(("id" = String, Path, description = "Actuator id"),
        ("metric" = Option<String>, Query, description = "position_pct (default), setpoint_pct, torque_nm, power_w, temperature_c, rotation, signal_quality"),
        ("from" = Option<String>, Query, description = "Epoch ms or RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "Epoch ms or RFC 3339, exclusive"),
        ("limit" = Option<usize>, Query, description = "1..=10000, default 1000")),
    responses((status = 200, body = HistoryReply), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn history(req: HttpRequest, path: web::Path<String>, q: web::Query<HistoryQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    match find_node(&st, &path) {
        Ok(Some(NodeRef::Actuator(_)) | None) => {}
        Ok(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "live history is kept for actuators", vec![]),
        Err(r) => return r,
    }
    let (from, to) = match (time_param("from", &q.from, 0), time_param("to", &q.to, i64::MAX)) {
        (Ok(a), Ok(b)) => (a.max(0) as u64, b.max(0) as u64),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, "bad time", vec![e]),
    };
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > crate::store::MAX_HISTORY_LIMIT {
        let e =
            FieldError { path: "limit".into(), message: format!("must be 1..={}", crate::store::MAX_HISTORY_LIMIT) };
        return error(StatusCode::BAD_REQUEST, "bad limit", vec![e]);
    }
    let metric = q.metric.clone().unwrap_or_else(|| "position_pct".into());
    match st.store.live_history(&path, &metric, SimTime(from), SimTime(to), limit) {
        Ok(page) => HttpResponse::Ok().json(json!({
            "node": path.as_str(),
            "metric": metric,
            "points": page.points.iter().map(|(t, v)| json!({ "t": format_timestamp_ms(t.0 as i64), "t_ms": t.0, "value": crate::live::short(*v as f32) })).collect::<Vec<_>>(),
            "next_from": page.next_from.map(|t| t.0),
        })),
        Err(e) if e.to_string().contains("unknown metric") => {
            error(StatusCode::BAD_REQUEST, "bad metric", vec![FieldError { path: "metric".into(), message: e.to_string() }])
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]),
    }
}

#[derive(Deserialize)]
struct FaultsQuery {
    state: Option<String>,
    limit: Option<usize>,
}

/// Open faults (ranked) or recently resolved ones.
#[utoipa::path(get, path = "/api/faults", tag = "read",
    params(("state" = Option<String>, Query, description = "open (default) or resolved"), ("limit" = Option<usize>, Query, description = "default 1000")),
    responses((status = 200, body = Vec<FaultView>), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
async fn faults(req: HttpRequest, q: web::Query<FaultsQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    match q.state.as_deref().unwrap_or("open") {
        "open" => HttpResponse::Ok().json(st.live.open_faults().into_iter().take(limit).collect::<Vec<_>>()),
        "resolved" => HttpResponse::Ok().json(st.live.resolved_faults(limit)),
        other => error(
            StatusCode::BAD_REQUEST,
            "bad state",
            vec![FieldError { path: "state".into(), message: format!("\"{other}\" is not open or resolved") }],
        ),
    }
}

/// A node's fault changes (opened, updated, resolved), oldest first.
#[utoipa::path(get, path = "/api/nodes/{id}/fault-history", tag = "read", params(("id" = String, Path, description = "Node id")),
    responses((status = 200, body = Vec<FaultChange>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn fault_history(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    if let Err(r) = find_node(&st, &path) {
        return r;
    }
    HttpResponse::Ok().json(st.live.fault_history(&path))
}

/// A node's rules as last evaluated, asked of its actor now: per rule what it measures, the value
/// against its threshold, whether the phase gates it, and where its finding stands.
pub(crate) async fn diagnose(st: &AppState, id: &str) -> Result<Diagnosis, (StatusCode, String)> {
    let now = SimTime(now_ms().max(0) as u64);
    let actuator = |i: usize| st.actuators.read().expect("not poisoned").get(i).cloned();
    let answer = match st.facility.node(id) {
        Some(NodeRef::Actuator(i)) => match actuator(i) {
            Some(a) => a.send(Diagnose(now)).await,
            None => return Err((StatusCode::SERVICE_UNAVAILABLE, format!("\"{id}\" has no running twin"))),
        },
        Some(NodeRef::Ahu(h)) => st.ahus[h].send(Diagnose(now)).await,
        Some(NodeRef::Plant) => {
            let msg = format!("\"{id}\" is the plant: it has no rules of its own; diagnose its AHUs or devices");
            return Err((StatusCode::UNPROCESSABLE_ENTITY, msg));
        }
        None => match st.live.extra(id).and_then(|(i, _)| actuator(i)) {
            Some(a) => a.send(Diagnose(now)).await,
            None => return Err((StatusCode::NOT_FOUND, format!("no node \"{id}\""))),
        },
    };
    answer.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("the twin of \"{id}\" did not answer: {e}")))
}

/// Run a node's diagnosis now (read token).
#[utoipa::path(get, path = "/api/nodes/{id}/diagnosis", tag = "read", params(("id" = String, Path, description = "Node id")),
    responses((status = 200, description = "Every rule's measured value against its threshold, gates and finding state"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn diagnosis(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    match diagnose(&st, &path).await {
        Ok(d) => HttpResponse::Ok().json(d),
        Err((code, msg)) => error(code, msg, vec![]),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    note: String,
    #[serde(default)]
    who: Option<String>,
}

/// Resolve an open fault (write token). If its condition persists it opens again as a new fault.
#[utoipa::path(post, path = "/api/faults/{id}/resolve", tag = "write", params(("id" = String, Path, description = "Fault id")),
    request_body = ResolveBody,
    responses((status = 200, description = "Resolved"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn resolve(req: HttpRequest, path: web::Path<String>, payload: web::Payload, st: State) -> HttpResponse {
    let holder = match authorize(&req, &st, Access::Write) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let (body, _held) = match read_body(&req, payload, &st, SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let b: ResolveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "expected {\"note\": \"…\", \"who\": \"…\"}",
                vec![FieldError { path: "body".into(), message: e.to_string() }],
            );
        }
    };
    // The actor is the token's holder; a body's `who` is only a note of whose word it was.
    let note = match b.who.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => format!("{} (on behalf of {})", b.note, clip(w)),
        None => b.note.clone(),
    };
    let reply = resolve_fault(&st, &path, &note, &holder).await;
    audit_reply(
        &st,
        &holder,
        "resolve_fault",
        json!({ "fault": clip(&path), "note": note }),
        &reply,
        Outcome::Executed,
    );
    reply
}

/// Audits a direct change by what its reply says.
fn audit_reply(st: &AppState, who: &str, tool: &str, args: serde_json::Value, reply: &HttpResponse, ok: Outcome) {
    let outcome = if reply.status().is_success() { ok } else { Outcome::Error };
    st.policy.record(who, tool, args, outcome, &format!("HTTP {}", reply.status().as_u16()));
}

/// Resolves an open fault on `who`'s word: the one path for the REST endpoint and approved actions.
pub(crate) async fn resolve_fault(st: &AppState, fault: &str, note: &str, who: &str) -> HttpResponse {
    let Some(f) = st.live.fault(fault) else {
        return error(StatusCode::NOT_FOUND, format!("no fault \"{fault}\""), vec![]);
    };
    if f.state != "open" {
        return error(StatusCode::CONFLICT, format!("fault \"{}\" is already resolved", f.id), vec![]);
    }
    let t = SimTime(now_ms().max(0) as u64);
    let msg = ForceResolve { t, kind: f.kind, device: f.device.clone() };
    let actor = match st.facility.node(&f.node) {
        Some(NodeRef::Actuator(i)) => st.actuators.read().expect("not poisoned").get(i).cloned(),
        None => st.live.extra(&f.node).and_then(|(i, _)| st.actuators.read().expect("not poisoned").get(i).cloned()),
        _ => None,
    };
    let done = match (actor, st.facility.node(&f.node)) {
        (Some(a), _) => a.send(msg).await,
        (None, Some(NodeRef::Ahu(h))) => st.ahus[h].send(msg).await,
        _ => Ok(false),
    };
    match done {
        Ok(true) => {
            let record = json!({ "who": who, "note": note, "at": format_timestamp_ms(t.0 as i64) });
            if let Err(e) = st.store.put_resolution(&f.id, &record) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]);
            }
            st.live.mark_resolved(&f.id, &record);
            HttpResponse::Ok().json(
                json!({ "fault": f.id, "resolved_by": record["who"], "note": record["note"], "at": record["at"] }),
            )
        }
        Ok(false) => error(StatusCode::CONFLICT, format!("fault \"{}\" is no longer open", f.id), vec![]),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the twin did not answer: {e}"), vec![]),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InjectBody {
    node: String,
    kind: String,
    severity: f64,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ramp_s: f64,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    position_pct: Option<f64>,
    #[serde(default)]
    period_s: Option<f64>,
}

/// Inject a fault into a simulated actuator now (write token).
#[utoipa::path(post, path = "/api/scenario/inject", tag = "write", request_body = InjectBody,
    responses((status = 200, description = "Injected"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The node is fed by telemetry", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn inject(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Write) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (body, _held) = match read_body(&req, payload, &st, SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let args: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let reply = inject_fault(&st, &body).await;
    audit_reply(&st, &who, "inject_fault", args, &reply, Outcome::Executed);
    reply
}

/// Injects a fault into a simulated actuator now: the one path for the REST endpoint and approved
/// actions.
pub(crate) async fn inject_fault(st: &AppState, body: &[u8]) -> HttpResponse {
    let b: InjectBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad injection",
                vec![FieldError { path: "body".into(), message: e.to_string() }],
            );
        }
    };
    let bad = |p: &str, m: String| {
        error(StatusCode::UNPROCESSABLE_ENTITY, "bad injection", vec![FieldError { path: p.into(), message: m }])
    };
    let Some(kind) = FaultKind::parse(&b.kind) else {
        return bad("kind", format!("\"{}\" is not a fault kind", clip(&b.kind)));
    };
    if b.duration_s.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        return bad("duration_s", "duration_s must be a positive number of seconds".into());
    }
    let start = SimTime(now_ms().max(0) as u64);
    let id = b.id.unwrap_or_else(|| format!("L-{}-{}", b.node, start.0));
    let injection = Injection {
        id: id.clone(),
        node: b.node.clone(),
        kind,
        severity: b.severity,
        start,
        ramp_s: b.ramp_s,
        end: b.duration_s.map(|d| SimTime(start.0 + (d * 1000.0) as u64)),
        position_pct: b.position_pct,
        period_s: b.period_s,
    };
    // The core's one rule: a simulated actuator, a kind that applies to its role, values in range.
    if let Err(e) = injection.validate(&*st.facility) {
        let status = match e.problem {
            InjectionProblem::UnknownNode => StatusCode::NOT_FOUND,
            InjectionProblem::FedByTelemetry => StatusCode::CONFLICT,
            InjectionProblem::Invalid => return bad(if e.field == "end" { "duration_s" } else { e.field }, e.message),
        };
        return error(status, clip_message(&e.message, &b.node), vec![]);
    }
    match st.supervisor.send(LiveInject(injection)).await {
        Ok(Ok(())) => HttpResponse::Ok()
            .json(json!({ "injection": id, "node": b.node, "kind": kind, "at": format_timestamp_ms(start.0 as i64) })),
        Ok(Err(e)) => error(live_status(&e), e.to_string(), vec![]),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the supervisor did not answer: {e}"), vec![]),
    }
}

/// The status of a live change the twins refused.
fn live_status(e: &LiveError) -> StatusCode {
    match e {
        LiveError::UnknownNode(_) => StatusCode::NOT_FOUND,
        LiveError::FedByTelemetry(_) => StatusCode::CONFLICT,
        LiveError::NoAnswer(..) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error message naming a node, with the node's id clipped as every reply clips it.
fn clip_message(message: &str, node: &str) -> String {
    message.replace(node, &clip(node))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearBody {
    node: String,
}

/// End the injected faults of a simulated actuator now (write token): the device is repaired.
#[utoipa::path(post, path = "/api/scenario/clear", tag = "write", request_body = ClearBody,
    responses((status = 200, description = "The injections ended"), (status = 404, body = ErrorBody), (status = 409, description = "The node is fed by telemetry", body = ErrorBody)),
    security(("bearer" = [])))]
async fn clear(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Write) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (body, _held) = match read_body(&req, payload, &st, SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let args: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let reply = clear_fault(&st, &body).await;
    audit_reply(&st, &who, "clear_fault", args, &reply, Outcome::Executed);
    reply
}

/// Ends a simulated node's injected faults: the one path for the REST endpoint and approved actions.
pub(crate) async fn clear_fault(st: &AppState, body: &[u8]) -> HttpResponse {
    let b: ClearBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            let f = FieldError { path: "body".into(), message: e.to_string() };
            return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"node\": \"…\"}", vec![f]);
        }
    };
    let t = SimTime(now_ms().max(0) as u64);
    match st.supervisor.send(LiveClear { node: b.node.clone(), t }).await {
        Ok(Ok(ids)) => {
            HttpResponse::Ok().json(json!({ "node": b.node, "ended": ids, "at": format_timestamp_ms(t.0 as i64) }))
        }
        Ok(Err(e)) => error(live_status(&e), e.to_string(), vec![]),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the supervisor did not answer: {e}"), vec![]),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeBody {
    /// `resolve_fault` (`{"fault", "note"}`) or `inject_fault` (as `POST /api/scenario/inject`).
    tool: String,
    arguments: serde_json::Value,
}

/// Propose a change (any authenticated operator): it waits, as a pending action bound to the
/// proposer, for that operator's approval; nothing changes before.
#[utoipa::path(post, path = "/api/actions", tag = "approval", request_body = ProposeBody,
    responses((status = 200, description = "The pending action"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn propose(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Read) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (body, _held) = match read_body(&req, payload, &st, SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let b: ProposeBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            let f = FieldError { path: "body".into(), message: e.to_string() };
            return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"tool\", \"arguments\"}", vec![f]);
        }
    };
    let Some(tool) = Change::parse(&b.tool) else {
        let names: Vec<&str> = Change::ALL.iter().map(|c| c.as_str()).collect();
        let f = FieldError {
            path: "tool".into(),
            message: format!("\"{}\" is not a change (one of {})", clip(&b.tool), names.join(", ")),
        };
        return error(StatusCode::UNPROCESSABLE_ENTITY, "unknown change", vec![f]);
    };
    match st.policy.propose(&who, tool, b.arguments, now_ms()) {
        Ok(p) => HttpResponse::Ok().json(p),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]),
    }
}

/// The caller's pending actions (all of them for an operator who may approve for others).
#[utoipa::path(get, path = "/api/actions", tag = "approval", responses((status = 200, description = "Pending actions")), security(("bearer" = [])))]
async fn actions(req: HttpRequest, st: State) -> HttpResponse {
    match authorize(&req, &st, Access::Read) {
        Ok(who) => HttpResponse::Ok().json(st.policy.list(&who)),
        Err(r) => r,
    }
}

/// Approve a pending action (write token, its operator): it is carried out, once, and audited.
#[utoipa::path(post, path = "/api/actions/{id}/approve", tag = "approval", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, description = "Carried out"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, description = "Expired", body = ErrorBody)),
    security(("bearer" = [])))]
async fn approve(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Write) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let p = match st.policy.approve(&path, &who, now_ms()) {
        Ok(p) => p,
        Err(r) => return refusal(r),
    };
    let reply = match p.tool {
        Change::ResolveFault => {
            let fault = p.arguments["fault"].as_str().unwrap_or_default();
            let note = p.arguments["note"].as_str().unwrap_or_default();
            resolve_fault(&st, fault, note, &p.operator).await
        }
        Change::ClearFault => clear_fault(&st, p.arguments.to_string().as_bytes()).await,
        Change::InjectFault => inject_fault(&st, p.arguments.to_string().as_bytes()).await,
    };
    let tool = format!("{} (action {}, approved by {who})", p.tool, p.id);
    audit_reply(&st, &who, &tool, p.arguments.clone(), &reply, Outcome::Approved);
    reply
}

/// Reject a pending action (its operator): it is cancelled and audited.
#[utoipa::path(post, path = "/api/actions/{id}/reject", tag = "approval", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, description = "Cancelled"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn reject(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Read) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match st.policy.reject(&path, &who, now_ms()) {
        Ok(p) => HttpResponse::Ok().json(json!({ "action": p.id, "rejected_by": who })),
        Err(r) => refusal(r),
    }
}

fn refusal(r: ActionRefusal) -> HttpResponse {
    let status = match r {
        ActionRefusal::Unknown(_) => StatusCode::NOT_FOUND,
        ActionRefusal::Expired(_) => StatusCode::GONE,
        ActionRefusal::NotYours { .. } => StatusCode::FORBIDDEN,
    };
    error(status, r.to_string(), vec![])
}

#[derive(Deserialize)]
struct AuditQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// The audit log, oldest first, one page (`next_from` for the next).
#[utoipa::path(get, path = "/api/audit", tag = "read",
    params(("from" = Option<u64>, Query, description = "First sequence number"), ("limit" = Option<usize>, Query, description = "1..=1000, default 100")),
    responses((status = 200, description = "Entries and next_from")), security(("bearer" = [])))]
async fn audit(req: HttpRequest, q: web::Query<AuditQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    match st.policy.audit.page(q.from.unwrap_or(0), q.limit.unwrap_or(100).clamp(1, 1000)) {
        Ok((entries, next)) => HttpResponse::Ok().json(json!({ "entries": entries, "next_from": next })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]),
    }
}

/// The twin's tools for the agent, acting for one operator.
struct Host<'a> {
    st: &'a AppState,
    operator: String,
}

impl crate::agent::tools::Host for Host<'_> {
    fn live(&self) -> &Live {
        &self.st.live
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn diagnose<'a>(
        &'a self,
        node: &'a str,
    ) -> crate::agent::tools::LocalBoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let d = diagnose(self.st, node).await.map_err(|(_, msg)| msg)?;
            Ok(serde_json::to_value(d).unwrap_or_default())
        })
    }

    fn propose(&self, change: Change, args: serde_json::Value) -> Result<serde_json::Value, String> {
        let p = self.st.policy.propose(&self.operator, change, args, now_ms()).map_err(|e| format!("{e:#}"))?;
        Ok(json!({ "pending_action": p.id, "tool": p.tool, "arguments": p.arguments, "awaits_approval_by": p.operator,
            "expires_at": format_timestamp_ms(p.expires_ms), "note": "nothing has changed; an operator must approve this action" }))
    }

    fn pending_ids(&self) -> Vec<String> {
        self.st.policy.list(&self.operator).into_iter().map(|p| p.id).collect()
    }

    fn audit_read(&self, tool: &str, args: &serde_json::Value, ok: bool) {
        let outcome = if ok { Outcome::Executed } else { Outcome::Error };
        self.st.policy.record(&format!("agent for {}", self.operator), tool, args.clone(), outcome, "");
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ChatBody {
    /// The conversation so far: OpenAI chat messages (`{"role": "user", "content": "…"}`, …).
    #[schema(value_type = Vec<Object>)]
    messages: Vec<serde_json::Value>,
}

/// Ask the operations agent (any token): it answers from the twin's tools; changes it wants
/// become pending actions for the caller to approve.
#[utoipa::path(post, path = "/api/agent/chat", tag = "agent", request_body = ChatBody,
    responses((status = 200, description = "reply, tool_events, pending_actions, unverified_ids, model_available"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn agent_chat(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Read) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (body, _held) = match read_body(&req, payload, &st, SMALL_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let b = match serde_json::from_slice::<ChatBody>(&body) {
        Ok(b) if !b.messages.is_empty() => b,
        Ok(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "messages is empty", vec![]),
        Err(e) => {
            let f = FieldError { path: "body".into(), message: e.to_string() };
            return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"messages\": [...]}", vec![f]);
        }
    };
    let host = Host { st: &st, operator: who };
    let reply = crate::agent::chat::chat(&st.cfg.agent, &host, b.messages).await;
    HttpResponse::Ok().json(reply)
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, description = "ok")))]
async fn health(st: State) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "uptime_s": st.live.started.elapsed().as_secs() }))
}

/// Prometheus text: ingest rate, queue depth, rejected samples by reason, open faults.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(st: State) -> HttpResponse {
    let l = &st.live;
    let mut out = String::new();
    let mut line = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in samples {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    line(
        "twinfault_ingested_samples_total",
        "Samples acknowledged and stored.",
        "counter",
        vec![(String::new(), l.ingested.load(Ordering::Relaxed) as f64)],
    );
    line(
        "twinfault_ingest_requests_total",
        "Ingest requests received.",
        "counter",
        vec![(String::new(), l.requests.load(Ordering::Relaxed) as f64)],
    );
    let rejected = l
        .rejected
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(k, v)| (format!("{{reason=\"{k}\"}}"), *v as f64))
        .collect();
    line("twinfault_rejected_samples_total", "Samples refused, by reason.", "counter", rejected);
    line(
        "twinfault_ingest_queue_depth",
        "Ingest requests waiting for the writer.",
        "gauge",
        vec![(String::new(), l.queue_depth.load(Ordering::Relaxed) as f64)],
    );
    let open = l.open_faults();
    let by_sev = ["warning", "critical"]
        .iter()
        .map(|s| {
            (
                format!("{{severity=\"{s}\"}}"),
                open.iter().filter(|f| format!("{:?}", f.severity).to_lowercase() == *s).count() as f64,
            )
        })
        .collect();
    line("twinfault_open_faults", "Open faults, by severity.", "gauge", by_sev);
    if st.cfg.mqtt.is_some() {
        let up = f64::from(u8::from(l.mqtt_subscribed.load(Ordering::Relaxed)));
        line(
            "twinfault_mqtt_subscribed",
            "1 while the MQTT subscription is in place.",
            "gauge",
            vec![(String::new(), up)],
        );
        line(
            "twinfault_mqtt_connections_total",
            "MQTT connections made to the broker (more than 1: it reconnected).",
            "counter",
            vec![(String::new(), l.mqtt_connections.load(Ordering::Relaxed) as f64)],
        );
    }
    line(
        "twinfault_uptime_seconds",
        "Seconds since the server started.",
        "gauge",
        vec![(String::new(), l.started.elapsed().as_secs_f64())],
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}

/// CORS: closed unless the origin is configured; answers preflights.
fn cors_headers(cfg: &ServeConfig, origin: Option<&str>) -> Option<String> {
    origin.filter(|o| cfg.cors_origins.iter().any(|c| c == o || c == "*")).map(str::to_string)
}

async fn preflight(req: HttpRequest, st: State) -> HttpResponse {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match cors_headers(&st.cfg, origin) {
        Some(o) => HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .finish(),
        None => error(StatusCode::FORBIDDEN, "origin not allowed (configure cors_origins)", vec![]),
    }
}

pub fn app(
    state: State,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.cfg.max_body_bytes;
    let cfg = Arc::clone(&state.cfg);
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            let resp = error(
                StatusCode::BAD_REQUEST,
                "bad query",
                vec![FieldError { path: "query".into(), message: e.to_string() }],
            );
            actix_web::error::InternalError::from_response(e, resp).into()
        }))
        .wrap_fn(move |req, srv| {
            let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
            let allow = cors_headers(&cfg, origin.as_deref());
            let fut = actix_web::dev::Service::call(srv, req);
            async move {
                let mut res = fut.await?;
                if let Some(o) = allow.and_then(|o| header::HeaderValue::from_str(&o).ok()) {
                    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
                }
                Ok(res)
            }
        })
        .route("/api/openapi.json", web::get().to(openapi))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .route("/api/ingest", web::post().to(ingest))
        .route("/api/status", web::get().to(status))
        .route("/api/facility", web::get().to(facility))
        .route("/api/nodes/{id}", web::get().to(node))
        .route("/api/nodes/{id}/history", web::get().to(history))
        .route("/api/nodes/{id}/fault-history", web::get().to(fault_history))
        .route("/api/nodes/{id}/diagnosis", web::get().to(diagnosis))
        .route("/api/faults", web::get().to(faults))
        .route("/api/faults/{id}/resolve", web::post().to(resolve))
        .route("/api/scenario/inject", web::post().to(inject))
        .route("/api/scenario/clear", web::post().to(clear))
        .route("/api/actions", web::post().to(propose))
        .route("/api/actions", web::get().to(actions))
        .route("/api/actions/{id}/approve", web::post().to(approve))
        .route("/api/actions/{id}/reject", web::post().to(reject))
        .route("/api/audit", web::get().to(audit))
        .route("/api/agent/chat", web::post().to(agent_chat))
        .route("/{tail:.*}", web::method(Method::OPTIONS).to(preflight))
}
