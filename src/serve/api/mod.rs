//! The HTTP API (actix-web): the shared state, error replies and body reading here; the
//! handlers by concern in [`auth`], [`ingest`], [`read`], [`changes`] and [`agent`]; the OpenAPI
//! document generated from their annotations; CORS; and [`app`], the routes.

// Handlers return a ready `HttpResponse` as their error: it is the value they would build anyway.
#![allow(clippy::result_large_err)]

mod agent;
mod auth;
mod changes;
mod ingest;
mod read;

pub(crate) use agent::*;
pub(crate) use auth::*;
pub(crate) use changes::*;
pub(crate) use ingest::*;
pub(crate) use read::*;

use super::{Access, ServeConfig, WriteJob, Writer};
use crate::agent::policy::{Change, Refusal as ActionRefusal};
use crate::clock::now_ms;
use crate::live::Live;
use crate::live::clip;
use crate::sim::engine::{AhuActor, ForceResolve, LiveClear, LiveError, LiveInject, Supervisor};
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
pub(crate) use twinfault_wire::ErrorBody;
use twinfault_wire::{
    ClearReply, FaultChange, FaultState, FaultView, Health, HistoryPage, IngestReply, InjectReply, LastSample,
    NodeKind, NodeView, Point, RejectReply, ResolveReply, SampleView, StatusView,
};

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
    pub inflight: Arc<crate::serve::body::Inflight>,
    /// The ingest admission (shared with MQTT).
    pub ingest: Arc<crate::serve::admit::Ingest>,
    /// A cluster's shard: HTTP ingest goes to the stream, for whichever shard runs the node.
    pub cluster: Option<crate::serve::cluster::shard::Link>,
}

/// Largest body of the endpoints other than ingest [bytes].
const SMALL_BODY: usize = 256 * 1024;

/// The token's holder and the body of a request of at most [`SMALL_BODY`] bytes, or the refusal
/// (the token is checked before any of the body is read).
async fn authorized_body(
    req: &HttpRequest,
    payload: web::Payload,
    st: &AppState,
    need: Access,
) -> Result<(String, web::Bytes, crate::serve::body::Held), HttpResponse> {
    let who = authorize(req, st, need)?;
    let (body, held) = read_body(req, payload, st, SMALL_BODY).await?;
    Ok((who, body, held))
}

/// The body of an authenticated request, or the refusal.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    st: &AppState,
    limit: usize,
) -> Result<(web::Bytes, crate::serve::body::Held), HttpResponse> {
    crate::serve::body::read(req, payload, &st.cfg, &st.inflight, limit.min(st.cfg.max_body_bytes)).await
}

type State = web::Data<AppState>;

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
    info(title = "twinfault", description = "Live digital twins of HVAC actuators: ingest, status, faults. A fleet's server (`serve --facility FLEET`) answers the same reads (status, nodes, fault history, faults) with its fleet and members as nodes, and the `fleet` routes."),
    paths(changes::clear, agent::agent_chat, changes::propose, changes::actions, changes::approve, changes::reject, read::audit, ingest::ingest, read::status, read::facility, read::node, read::history, read::diagnosis, read::faults, read::fault_history, changes::resolve, changes::inject, health, metrics, crate::serve::fleet::members, crate::serve::fleet::ingest),
    components(schemas(ResolveReply, InjectReply, ClearReply, RejectReply, crate::serve::fleet::CycleDoc, crate::serve::fleet::CyclesReply, crate::serve::fleet::AlarmOpened, crate::serve::fleet::FleetMembers, crate::serve::fleet::MemberView, ErrorBody, FieldError, IngestReply, SampleDoc, TelemetryDoc, HistoryPage, Point, StatusView, Health, NodeView, NodeKind, LastSample, SampleView, FaultView, FaultState, FaultChange, ResolveBody, InjectBody, ClearBody, ProposeBody, ChatBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(<ApiDoc as utoipa::OpenApi>::openapi())
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>, details: Vec<FieldError>) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: message.into(), details })
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, description = "ok")))]
async fn health(c: web::Data<Common>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "uptime_s": c.started.elapsed().as_secs() }))
}

/// Prometheus text: ingest rate, queue depth, rejected samples by reason, open faults.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(st: State, c: web::Data<Common>) -> HttpResponse {
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
    line("twinfault_open_faults", "Open faults, by severity.", "gauge", by_severity(&l.open_faults()));
    if st.cluster.is_some() {
        line(
            "twinfault_nats_acked_messages_total",
            "JetStream messages acknowledged after their samples were stored.",
            "counter",
            vec![(String::new(), l.nats_acked.load(Ordering::Relaxed) as f64)],
        );
    }
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
        vec![(String::new(), c.started.elapsed().as_secs_f64())],
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}

/// Prometheus rows of open faults by severity (a facility's server and a cluster's plant).
pub(crate) fn by_severity(open: &[FaultView]) -> Vec<(String, f64)> {
    ["warning", "critical"]
        .iter()
        .map(|s| {
            let n = open.iter().filter(|f| format!("{:?}", f.severity).to_lowercase() == *s).count();
            (format!("{{severity=\"{s}\"}}"), n as f64)
        })
        .collect()
}

/// CORS: closed unless the origin is configured; answers preflights.
fn cors_headers(cfg: &ServeConfig, origin: Option<&str>) -> Option<String> {
    origin.filter(|o| cfg.cors_origins.iter().any(|c| c == o || c == "*")).map(str::to_string)
}

async fn preflight(req: HttpRequest, c: web::Data<Common>) -> HttpResponse {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match cors_headers(&c.cfg, origin) {
        Some(o) => HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
            .finish(),
        None => error(StatusCode::FORBIDDEN, "origin not allowed (configure cors_origins)", vec![]),
    }
}

/// What a server serves: a facility's twins, or a fleet of assets.
#[derive(Clone)]
pub enum Served {
    Facility(State),
    Fleet(web::Data<crate::serve::fleet::FleetState>),
    /// A cluster's plant role: its shards' summaries rolled up.
    Plant(web::Data<crate::serve::cluster::plant::PlantState>),
}

/// What every server's routes share: its configuration and when it started.
pub struct Common {
    pub cfg: Arc<ServeConfig>,
    pub started: std::time::Instant,
}

impl Common {
    pub fn new(cfg: Arc<ServeConfig>) -> web::Data<Common> {
        web::Data::new(Common { cfg, started: std::time::Instant::now() })
    }
}

/// The one app: the same limits, query errors, CORS, health, OpenAPI document and error replies
/// (an unknown route is a JSON 404) for a facility's server and a fleet's, with their own routes.
pub fn app(
    common: web::Data<Common>,
    served: Served,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = common.cfg.max_body_bytes;
    let cfg = Arc::clone(&common.cfg);
    let app = App::new()
        .app_data(common)
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
        .route("/health", web::get().to(health));
    let app = match served {
        Served::Facility(st) => app.app_data(st).configure(facility_routes),
        Served::Fleet(st) => app.app_data(st).configure(crate::serve::fleet::routes),
        Served::Plant(st) => app.app_data(st).configure(crate::serve::cluster::plant::routes),
    };
    app.route("/{tail:.*}", web::method(Method::OPTIONS).to(preflight)).default_service(web::to(not_found))
}

/// An unknown route (or one the other kind of server has): the same JSON error as any other.
async fn not_found(req: HttpRequest) -> HttpResponse {
    error(StatusCode::NOT_FOUND, format!("no route {} {}", req.method(), clip(req.path())), vec![])
}

/// A facility's routes.
fn facility_routes(c: &mut web::ServiceConfig) {
    c.route("/metrics", web::get().to(metrics))
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
        .route("/api/agent/chat", web::post().to(agent_chat));
}

/// Listens on the configured address and serves `served` until the server stops.
pub async fn listen(cfg: Arc<ServeConfig>, served: Served) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let common = Common::new(Arc::clone(&cfg));
    let workers = cfg.workers.max(1);
    actix_web::HttpServer::new(move || app(common.clone(), served.clone()))
        .workers(workers)
        .max_connections(cfg.max_connections.div_ceil(workers).max(1))
        .bind(&cfg.bind)
        .with_context(|| format!("cannot listen on {}", cfg.bind))?
        .run()
        .await
        .context("the HTTP server stopped")
}
