//! `POST /api/ingest`: telemetry in, admitted by `serve::admit`, acknowledged after the group commit.

use super::*;

/// Bodies up to this size are parsed on the worker itself [bytes] (a few dozen samples).
const INLINE_PARSE_BYTES: usize = 8 * 1024;

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
pub(super) async fn ingest(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
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
    // A cluster's shard: checked against the whole facility and published to the stream, from
    // which the shard that runs each node takes it (acknowledged once JetStream has stored it).
    if let Some(link) = st.cluster.clone() {
        let Ok(permit) = Arc::clone(&st.inflight.parsing).acquire_owned().await else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping", vec![]);
        };
        let prepared = {
            let link = link.clone();
            web::block(move || link.prepare(&body)).await
        };
        drop(permit);
        let prepared = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(r)) => return refuse(&st, &r),
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not parse: {e}"), vec![]),
        };
        let published = link.publish(prepared).await;
        drop(held);
        return match published {
            Ok(n) => HttpResponse::Ok().json(IngestReply { accepted: n as u64 }),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("not stored in the stream: {e:#}"), vec![]),
        };
    }
    // A large body is parsed and validated on a blocking thread, a few bodies at a time: it does
    // not hold up the workers' other requests (`/health`, `/api/status`), and its parsed form
    // (several times its bytes) is gone before the request waits for the disk. A small one (a
    // gateway's single sample) is parsed in place: microseconds, where a trip to a blocking
    // thread and back costs two context switches, which bounded single-sample ingest on two cores.
    let checked = if body.len() <= INLINE_PARSE_BYTES {
        Ok(st.ingest.check(&body, now_ms()))
    } else {
        let Ok(permit) = Arc::clone(&st.inflight.parsing).acquire_owned().await else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping", vec![]);
        };
        let ingest = Arc::clone(&st.ingest);
        let checked = web::block(move || ingest.check(&body, now_ms())).await;
        drop(permit);
        checked
    };
    let checked = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(r)) => return refuse(&st, &r),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not parse: {e}"), vec![]),
    };
    let n = checked.len();
    // Admission by work: the samples waiting for the disk across all requests are bounded.
    if !held.add_samples(n, st.cfg.max_inflight_samples) {
        st.live.reject("busy", n as u64);
        return crate::serve::body::busy(
            "max_inflight_samples",
            st.cfg.max_inflight_samples,
            "samples waiting for the disk",
        );
    }
    // Only now are the batch's new nodes created (a refused batch creates none).
    let samples = match st.ingest.admit(checked) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("could not create a node: {e:#}"), vec![]),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Err(_job) = st.writer.try_send(WriteJob { samples, ack: tx }) {
        st.live.reject("queue_full", n as u64);
        return crate::serve::body::busy("queue_depth", st.cfg.queue_depth, "the ingest queue is full");
    }
    let reply = rx.await;
    drop(held);
    match reply {
        Ok(Ok(())) => HttpResponse::Ok().json(IngestReply { accepted: n as u64 }),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e, vec![]),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the writer stopped", vec![]),
    }
}

/// A refused body: counted by reason, answered with its status and field errors.
fn refuse(st: &AppState, r: &crate::serve::admit::Refused) -> HttpResponse {
    st.live.reject(r.reason(), r.items() as u64);
    error(r.status(), r.message(), r.details().to_vec())
}
