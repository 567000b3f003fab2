//! Every change to a live server: resolve, inject, clear (the one path of each, for an
//! operator's own request and for an approved action), and the approval endpoints.

use super::*;

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
    responses((status = 200, body = ResolveReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn resolve(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    st: State,
) -> HttpResponse {
    let (holder, body, _held) = match authorized_body(&req, payload, &st, Access::Write).await {
        Ok(x) => x,
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

/// An operator's own inject or clear request (write token): carried out by the one path of the
/// change, audited by what its reply says.
async fn direct_change(req: HttpRequest, payload: web::Payload, st: State, change: Change) -> HttpResponse {
    let (who, body, _held) = match authorized_body(&req, payload, &st, Access::Write).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let args: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let reply = match change {
        Change::InjectFault => inject_fault(&st, &body).await,
        Change::ClearFault => clear_fault(&st, &body).await,
        Change::ResolveFault => unreachable!("a resolution names its fault in the path: `resolve`"),
    };
    audit_reply(&st, &who, change.as_str(), args, &reply, Outcome::Executed);
    reply
}

/// Audits a direct change by what its reply says.
pub(super) fn audit_reply(
    st: &AppState,
    who: &str,
    tool: &str,
    args: serde_json::Value,
    reply: &HttpResponse,
    ok: Outcome,
) {
    let outcome = if reply.status().is_success() { ok } else { Outcome::Error };
    st.policy.record(who, tool, args, outcome, &format!("HTTP {}", reply.status().as_u16()));
}

/// Resolves an open fault on `who`'s word: the one path for the REST endpoint and approved actions.
pub(crate) async fn resolve_fault(st: &AppState, fault: &str, note: &str, who: &str) -> HttpResponse {
    let Some(f) = st.live.fault(fault) else {
        return error(StatusCode::NOT_FOUND, format!("no fault \"{fault}\""), vec![]);
    };
    if f.state != FaultState::Open {
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
            HttpResponse::Ok().json(ResolveReply {
                fault: f.id.clone(),
                resolved_by: who.to_string(),
                note: note.to_string(),
                at: format_timestamp_ms(t.0 as i64),
            })
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
    responses((status = 200, body = InjectReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The node is fed by telemetry", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn inject(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    direct_change(req, payload, st, Change::InjectFault).await
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
        Ok(Ok(())) => HttpResponse::Ok().json(InjectReply {
            injection: id,
            node: b.node,
            kind,
            at: format_timestamp_ms(start.0 as i64),
        }),
        Ok(Err(e)) => error(live_status(&e), e.to_string(), vec![]),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the supervisor did not answer: {e}"), vec![]),
    }
}

/// The status of a live change the twins refused.
pub(super) fn live_status(e: &LiveError) -> StatusCode {
    match e {
        LiveError::UnknownNode(_) => StatusCode::NOT_FOUND,
        LiveError::FedByTelemetry(_) => StatusCode::CONFLICT,
        LiveError::NoAnswer(..) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error message naming a node, with the node's id clipped as every reply clips it.
pub(super) fn clip_message(message: &str, node: &str) -> String {
    message.replace(node, &clip(node))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearBody {
    node: String,
}

/// End the injected faults of a simulated actuator now (write token): the device is repaired.
#[utoipa::path(post, path = "/api/scenario/clear", tag = "write", request_body = ClearBody,
    responses((status = 200, body = ClearReply), (status = 404, body = ErrorBody), (status = 409, description = "The node is fed by telemetry", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn clear(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    direct_change(req, payload, st, Change::ClearFault).await
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
            HttpResponse::Ok().json(ClearReply { node: b.node, ended: ids, at: format_timestamp_ms(t.0 as i64) })
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
pub(super) async fn propose(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let (who, body, _held) = match authorized_body(&req, payload, &st, Access::Read).await {
        Ok(x) => x,
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
pub(super) async fn actions(req: HttpRequest, st: State) -> HttpResponse {
    match authorize(&req, &st, Access::Read) {
        Ok(who) => HttpResponse::Ok().json(st.policy.list(&who)),
        Err(r) => r,
    }
}

/// Approve a pending action (write token, its operator): it is carried out, once, and audited.
#[utoipa::path(post, path = "/api/actions/{id}/approve", tag = "approval", params(("id" = String, Path, description = "Action id")),
    responses((status = 200, description = "Carried out"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, description = "Expired", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn approve(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
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
    responses((status = 200, body = RejectReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn reject(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    let who = match authorize(&req, &st, Access::Read) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match st.policy.reject(&path, &who, now_ms()) {
        Ok(p) => HttpResponse::Ok().json(RejectReply { action: p.id, rejected_by: who }),
        Err(r) => refusal(r),
    }
}

pub(super) fn refusal(r: ActionRefusal) -> HttpResponse {
    let status = match r {
        ActionRefusal::Unknown(_) => StatusCode::NOT_FOUND,
        ActionRefusal::Expired(_) => StatusCode::GONE,
        ActionRefusal::NotYours { .. } => StatusCode::FORBIDDEN,
    };
    error(status, r.to_string(), vec![])
}
