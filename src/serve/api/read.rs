//! The read endpoints: facility, status, nodes, history, faults, fault history, diagnosis, audit.

use super::*;

/// The facility's tree and map geometry (zones, positions, children), as the visualizer draws it.
#[utoipa::path(get, path = "/api/facility", tag = "read", responses((status = 200, description = "Facility layout (JSON object)"), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn facility(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(st.facility.layout())
}

/// Every node with its status, open faults ranked by severity then confidence, building health.
#[utoipa::path(get, path = "/api/status", tag = "read", responses((status = 200, body = StatusView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn status(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(status_view(&st.live, st.live.open_faults()))
}

/// Every node of `live` with its status, building health, and `open_faults` (a facility's own,
/// or a cluster's plant's from its shards).
pub(crate) fn status_view(live: &Live, open_faults: Vec<FaultView>) -> StatusView {
    let f = live.facility();
    let mut nodes = Vec::new();
    if f.plant.is_some() {
        nodes.push(live.node_ref_view(NodeRef::Plant));
    }
    nodes.extend((0..f.ahus.len()).map(|h| live.node_ref_view(NodeRef::Ahu(h))));
    nodes.extend((0..f.actuators.len()).map(|i| live.node_ref_view(NodeRef::Actuator(i))));
    let extras = live.extras();
    for (e, s) in &extras {
        nodes.push(live.extra_view(e, *s));
    }
    let all: Vec<Status> =
        (0..f.actuators.len()).map(|i| live.status(NodeRef::Actuator(i))).chain(extras.iter().map(|e| e.1)).collect();
    // Building health counts only the nodes that have reported; with none, it is unknown.
    StatusView {
        facility: f.name.clone(),
        time: format_timestamp_ms(now_ms()),
        health: Health::of(&all, open_faults.len()),
        open_faults,
        nodes,
    }
}

/// A facility node, or `None` for an auto-created actuator (with its JSON).
pub(super) fn find_node(st: &AppState, id: &str) -> Result<Option<NodeRef>, HttpResponse> {
    if let Some(n) = st.facility.node(id) {
        return Ok(Some(n));
    }
    if st.live.extra(id).is_some() {
        return Ok(None);
    }
    Err(error(StatusCode::NOT_FOUND, format!("unknown node \"{id}\""), vec![]))
}

/// One node: kind, parent, children, status, mode, last sample, open faults.
#[utoipa::path(get, path = "/api/nodes/{id}", tag = "read", params(("id" = String, Path, description = "Node id")), responses((status = 200, body = NodeView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn node(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    let Some(mut v) = st.live.node_view(&path) else {
        return error(StatusCode::NOT_FOUND, format!("unknown node \"{}\"", clip(&path)), vec![]);
    };
    v.open_faults = Some(st.live.open_faults_of(&path));
    HttpResponse::Ok().json(v)
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// A time given as epoch milliseconds or RFC 3339.
pub(super) fn time_param(name: &str, v: &Option<String>, default: i64) -> Result<i64, FieldError> {
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
    responses((status = 200, body = HistoryPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn history(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<HistoryQuery>,
    st: State,
) -> HttpResponse {
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
        Ok(page) => HttpResponse::Ok().json(HistoryPage {
            node: path.to_string(),
            metric,
            points: page.points.iter().map(|&(t, v)| Point::new(t, v as f32)).collect(),
            next_from: page.next_from.map(|t| t.0),
        }),
        Err(e) if e.to_string().contains("unknown metric") => error(
            StatusCode::BAD_REQUEST,
            "bad metric",
            vec![FieldError { path: "metric".into(), message: e.to_string() }],
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]),
    }
}

#[derive(Deserialize)]
pub(crate) struct FaultsQuery {
    pub state: Option<String>,
    pub limit: Option<usize>,
}

/// The faults `q` asks for: open ones ranked (`state=open`, the default) or the latest resolved.
pub(crate) fn fault_list(
    q: &FaultsQuery,
    open: impl FnOnce(usize) -> Vec<FaultView>,
    resolved: impl FnOnce(usize) -> Vec<FaultView>,
) -> HttpResponse {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    match q.state.as_deref().unwrap_or("open") {
        "open" => HttpResponse::Ok().json(open(limit)),
        "resolved" => HttpResponse::Ok().json(resolved(limit)),
        other => error(
            StatusCode::BAD_REQUEST,
            "bad state",
            vec![FieldError { path: "state".into(), message: format!("\"{other}\" is not open or resolved") }],
        ),
    }
}

/// Open faults (ranked) or recently resolved ones.
#[utoipa::path(get, path = "/api/faults", tag = "read",
    params(("state" = Option<String>, Query, description = "open (default) or resolved"), ("limit" = Option<usize>, Query, description = "default 1000")),
    responses((status = 200, body = Vec<FaultView>), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn faults(req: HttpRequest, q: web::Query<FaultsQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    fault_list(&q, |n| st.live.open_faults().into_iter().take(n).collect(), |n| st.live.resolved_faults(n))
}

/// A node's fault changes (opened, updated, resolved), oldest first.
#[utoipa::path(get, path = "/api/nodes/{id}/fault-history", tag = "read", params(("id" = String, Path, description = "Node id")),
    responses((status = 200, body = Vec<FaultChange>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(super) async fn fault_history(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
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
use crate::sim::engine::NoDiagnosis;

pub(crate) async fn diagnose(st: &AppState, id: &str) -> Result<Diagnosis, (StatusCode, String)> {
    let actuators = st.actuators.read().expect("not poisoned").clone();
    let now = SimTime(now_ms().max(0) as u64);
    crate::sim::engine::diagnose(&st.facility, &st.live, &actuators, &st.ahus, id, now).await.map_err(|e| {
        let code = match e {
            NoDiagnosis::NotRunning(_) | NoDiagnosis::NoAnswer(_) => StatusCode::SERVICE_UNAVAILABLE,
            NoDiagnosis::Plant(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NoDiagnosis::Unknown(_) => StatusCode::NOT_FOUND,
        };
        (code, e.to_string())
    })
}

/// Run a node's diagnosis now (read token).
#[utoipa::path(get, path = "/api/nodes/{id}/diagnosis", tag = "read", params(("id" = String, Path, description = "Node id")),
    responses((status = 200, description = "Every rule's measured value against its threshold, gates and finding state; for an AHU, `fork`: its latest counterfactual diagnosis, every hypothesis about its elements (stuck, leaking, all healthy) with its score and fit, best first"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn diagnosis(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    match diagnose(&st, &path).await {
        Ok(d) => HttpResponse::Ok().json(d),
        Err((code, msg)) => error(code, msg, vec![]),
    }
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// The audit log, oldest first, one page (`next_from` for the next).
#[utoipa::path(get, path = "/api/audit", tag = "read",
    params(("from" = Option<u64>, Query, description = "First sequence number"), ("limit" = Option<usize>, Query, description = "1..=1000, default 100")),
    responses((status = 200, description = "Entries and next_from")), security(("bearer" = [])))]
pub(super) async fn audit(req: HttpRequest, q: web::Query<AuditQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize(&req, &st, Access::Read) {
        return r;
    }
    match st.policy.audit.page(q.from.unwrap_or(0), q.limit.unwrap_or(100).clamp(1, 1000)) {
        Ok((entries, next)) => HttpResponse::Ok().json(json!({ "entries": entries, "next_from": next })),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), vec![]),
    }
}
