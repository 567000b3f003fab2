//! Request bodies, read only after the caller is authenticated, against a deadline and from a
//! bounded budget: a stranger's body is never read, a slow one is cut off, and the bytes all
//! bodies being read hold at once are capped by configuration.

use super::ServeConfig;
use super::api::error;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes held by request bodies being read or processed, against `max_inflight_bytes`; samples
/// waiting for the disk, against `max_inflight_samples`; and the bodies being parsed at once (a
/// parsed body takes several times its bytes until it is validated into samples).
#[derive(Debug)]
pub struct Inflight {
    bytes: AtomicUsize,
    samples: AtomicUsize,
    /// One permit per body parsed at a time.
    pub parsing: Arc<tokio::sync::Semaphore>,
}

impl Inflight {
    /// A budget that parses at most `parsers` bodies at a time.
    pub fn new(parsers: usize) -> Inflight {
        Inflight {
            bytes: AtomicUsize::new(0),
            samples: AtomicUsize::new(0),
            parsing: Arc::new(tokio::sync::Semaphore::new(parsers.max(1))),
        }
    }
}

impl Default for Inflight {
    /// Two parsers, as the default two workers.
    fn default() -> Self {
        Inflight::new(2)
    }
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Held {
    inflight: Arc<Inflight>,
    bytes: usize,
    samples: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inflight.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        self.inflight.samples.fetch_sub(self.samples, Ordering::AcqRel);
    }
}

impl Inflight {
    fn take(counter: &AtomicUsize, n: usize, max: usize) -> bool {
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |x| x.checked_add(n).filter(|&y| y <= max)).is_ok()
    }
}

impl Held {
    /// Adds `n` samples waiting for the disk to this share; false (nothing taken) over `max`.
    pub fn add_samples(&mut self, n: usize, max: usize) -> bool {
        let ok = Inflight::take(&self.inflight.samples, n, max);
        if ok {
            self.samples += n;
        }
        ok
    }

    fn add_bytes(&mut self, n: usize, max: usize) -> bool {
        let ok = Inflight::take(&self.inflight.bytes, n, max);
        if ok {
            self.bytes += n;
        }
        ok
    }
}

/// A refusal that also closes the connection: the rest of the body is never read.
pub fn closing(mut r: HttpResponse) -> HttpResponse {
    r.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    r
}

/// 429 with Retry-After, naming the limit that refused.
pub fn busy(limit: &str, value: usize, what: &str) -> HttpResponse {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("the server is at its limit {limit} = {value} ({what}); nothing was accepted, retry after 1 s"),
        vec![],
    );
    r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

/// Reads the body (at most `limit` bytes) of a request whose caller is already authenticated.
/// Refusals: 413 over `limit` (from Content-Length before any byte is read, or as it arrives),
/// 429 when the bodies being read already hold `max_inflight_bytes`, 408 when the body stops for
/// `body_idle_timeout_s` or arrives slower than `body_min_rate_bytes_s` after
/// `body_timeout_s`. Every refusal closes the connection.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    cfg: &ServeConfig,
    inflight: &Arc<Inflight>,
    limit: usize,
) -> Result<(web::Bytes, Held), HttpResponse> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let too_large = |n: usize| {
        closing(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is {n} bytes or more; this endpoint takes at most {limit} bytes (max_body_bytes)"),
            vec![],
        ))
    };
    if let Some(n) = declared.filter(|&n| n > limit) {
        return Err(too_large(n));
    }
    let mut held = Held { inflight: Arc::clone(inflight), bytes: 0, samples: 0 };
    let max = cfg.max_inflight_bytes;
    if let Some(n) = declared
        && !held.add_bytes(n, max)
    {
        return Err(closing(busy("max_inflight_bytes", max, "bytes of request bodies held at once")));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let started = Instant::now();
    let idle = Duration::from_secs_f64(cfg.body_idle_timeout_s);
    loop {
        // The whole body by its deadline: the grace, plus what has arrived at the minimum rate.
        let allowed = cfg.body_timeout_s + body.len() as f64 / cfg.body_min_rate_bytes_s;
        let left = Duration::from_secs_f64(allowed).saturating_sub(started.elapsed());
        let slow = |got: usize| {
            closing(error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body came too slowly: {got} bytes in {:.1} s (bodies must arrive within body_timeout_s = {} s plus 1 s per {} bytes, with no pause over body_idle_timeout_s = {} s)",
                    started.elapsed().as_secs_f64(),
                    cfg.body_timeout_s,
                    cfg.body_min_rate_bytes_s,
                    cfg.body_idle_timeout_s
                ),
                vec![],
            ))
        };
        let next = match tokio::time::timeout(idle.min(left), payload.next()).await {
            Err(_) => return Err(slow(body.len())),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(closing(error(
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                    vec![],
                )));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if body.len() + next.len() > limit {
            return Err(too_large(body.len() + next.len()));
        }
        if declared.is_none() && !held.add_bytes(next.len(), max) {
            return Err(closing(busy("max_inflight_bytes", max, "bytes of request bodies held at once")));
        }
        body.extend_from_slice(&next);
    }
    Ok((body.freeze(), held))
}
