//! `twinfault serve` against hostile and careless clients, as a real process on loopback: what a
//! stranger can make it hold, what a slow or oversized body gets, what a 200 promises.

use crate::server::{READ, Server, WRITE, now_ms, seed_sample};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends a request head declaring `len` body bytes, then `first` bytes of body, and returns the
/// open connection (the rest of the body never comes).
fn slow_post(port: u16, token: Option<&str>, len: usize, first: usize) -> TcpStream {
    slow_post_to(port, "/api/ingest", token, len, first)
}

/// As [`slow_post`], to another endpoint.
pub(crate) fn slow_post_to(port: u16, path: &str, token: Option<&str>, len: usize, first: usize) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {len}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&vec![b' '; first]).unwrap();
    c
}

/// The status line's code of the reply on `c`, and whether the server then closed it.
pub(crate) fn status_and_closed(c: &mut TcpStream) -> (u16, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match c.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, closed)
}

#[test]
fn strangers_slow_bodies_get_401_at_once_and_take_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "");
    let before = s.rss_bytes();
    // 100 connections without a token (and 20 with an unknown one), each declaring 8 MB and
    // sending 64 KiB of it: each gets 401 before the server reads the body, and is closed.
    let started = Instant::now();
    let mut conns: Vec<TcpStream> = (0..100).map(|_| slow_post(s.port, None, 8 << 20, 64 << 10)).collect();
    conns.extend((0..20).map(|_| slow_post(s.port, Some("not-a-token-at-all-0123"), 8 << 20, 64 << 10)));
    for c in &mut conns {
        assert_eq!(status_and_closed(c), (401, true));
    }
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let after = s.rss_bytes();
    assert!(after < before + (100 << 20) && after < 200 << 20, "RSS {before} -> {after} bytes");
    // The server still serves.
    assert_eq!(s.get("/api/status", Some(READ)).status, 200);
}

#[test]
fn a_slow_or_oversized_body_is_cut_off_and_bodies_in_flight_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        "max_body_bytes = 1048576\nmax_inflight_bytes = 1048576\nbody_timeout_s = 1.0\nbody_idle_timeout_s = 1.0\nbody_min_rate_bytes_s = 100000",
    );
    // A body that stops halfway: 408 once it has paused a second, and the connection closed.
    let t = Instant::now();
    let mut c = slow_post(s.port, Some(WRITE), 600_000, 1000);
    assert_eq!(status_and_closed(&mut c), (408, true));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // Two bodies of 600 kB at once do not fit in a budget of 1 MiB: the second gets 429 with a
    // Retry-After and the limit named, before the first is done.
    let _first = slow_post(s.port, Some(WRITE), 600_000, 1000);
    std::thread::sleep(Duration::from_millis(200));
    let mut second = slow_post(s.port, Some(WRITE), 600_000, 1000);
    let mut buf = String::new();
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = second.read_to_string(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 429"), "{buf}");
    assert!(buf.to_ascii_lowercase().contains("retry-after: 1") && buf.contains("max_inflight_bytes"), "{buf}");

    // Over max_body_bytes by its Content-Length: 413 without reading it.
    let mut big = slow_post(s.port, Some(WRITE), 2 << 20, 10);
    assert_eq!(status_and_closed(&mut big).0, 413);

    // A normal request still goes through afterwards.
    let r = s.post("/api/ingest", Some(WRITE), &seed_sample("BEL-VNT-001", now_ms() - 1000, 40.0));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_200_means_kept_duplicate_keys_are_refused_and_long_ids_are_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "history_retention_s = 86400");
    let ok = seed_sample("BEL-VNT-002", now_ms() - 1000, 41.0);
    // What the store would not keep (older than the retention window; epoch 0 and 1 ms), and
    // dates that do not exist, are refused with the reason; nothing of the batch is stored.
    for t in ["\"1970-01-01T00:00:00Z\"", "0", "1", &format!("{}", now_ms() - 10 * 86_400_000)] {
        let bad = seed_sample("BEL-VNT-002", 0, 40.0).replace("\"1970-01-01T00:00:00.000Z\"", t);
        let r = s.post("/api/ingest", Some(WRITE), &format!("[{ok},{bad}]"));
        assert_eq!(r.status, 422, "{t}: {}", r.body);
        assert!(r.body.contains("history_retention_s") && r.body.contains("would not be kept"), "{}", r.body);
    }
    for date in ["2026-02-31T10:00:00Z", "2026-04-31T10:00:00Z", "2025-02-29T10:00:00Z"] {
        let bad = seed_sample("BEL-VNT-002", 0, 40.0).replace("1970-01-01T00:00:00.000Z", date);
        let r = s.post("/api/ingest", Some(WRITE), &bad);
        assert_eq!(r.status, 422, "{date}: {}", r.body);
        assert!(r.body.contains("not a calendar date"), "{}", r.body);
    }
    let hist = s.get("/api/nodes/BEL-VNT-002/history?metric=position_pct&from=0", Some(READ)).json();
    assert_eq!(hist["points"].as_array().map(Vec::len), Some(0), "{hist}");

    // The same key twice in one object: refused, not "last one wins".
    let dup = ok.replacen("\"telemetry\":{", "\"telemetry\":{\"position_percent\":99,", 1);
    let r = s.post("/api/ingest", Some(WRITE), &dup);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("duplicate key \\\"position_percent\\\""), "{}", r.body);

    // A 1 MB node id: refused with the id cut to 64 characters in the reply.
    let long = "X".repeat(1 << 20);
    let r = s.post("/api/ingest", Some(WRITE), &ok.replace("BEL-VNT-002", &long));
    assert_eq!(r.status, 404, "{}", &r.body[..r.body.len().min(300)]);
    assert!(r.body.len() < 2000 && r.body.contains("more bytes"), "{} bytes", r.body.len());

    // And the good sample alone is kept.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &ok).status, 200);
    let hist = s.get("/api/nodes/BEL-VNT-002/history?metric=position_pct&from=0", Some(READ)).json();
    assert_eq!(hist["points"].as_array().map(Vec::len), Some(1), "{hist}");
}

/// A node that has never reported is `unknown`, not healthy; building health counts only the
/// nodes that have reported, and a parent with nothing known below it is unknown too.
#[test]
fn silent_nodes_are_unknown_and_building_health_counts_only_what_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "");
    let status = |s: &Server| s.get("/api/status", Some(READ)).json();
    let node = |st: &serde_json::Value, id: &str| {
        st["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap()["status"].as_str().unwrap().to_string()
    };
    // Fresh, and still after a few control periods: nothing has reported.
    std::thread::sleep(Duration::from_millis(2500));
    let st = status(&s);
    assert_eq!(st["health"]["status"], "unknown", "{}", st["health"]);
    assert_eq!(st["health"]["known"], 0);
    assert!(st["health"]["healthy_share"].is_null(), "{}", st["health"]);
    assert_eq!(st["health"]["actuators"]["unknown"], 14);
    assert_eq!(st["health"]["actuators"]["healthy"], 0);
    for id in ["BEL-VNT-003", "ahu-01", "ahu-02", "plant-01"] {
        assert_eq!(node(&st, id), "unknown", "{id}");
    }
    assert_eq!(s.get("/api/nodes/BEL-VNT-003", Some(READ)).json()["status"], "unknown");

    // One device reports: it is known (healthy), its AHU and the plant follow, the rest stay
    // unknown and do not count.
    let now = now_ms();
    let batch: Vec<String> = (0..5).map(|k| seed_sample("BEL-VNT-003", now - 4_000 + k * 1000, 40.0)).collect();
    assert_eq!(s.post("/api/ingest", Some(WRITE), &format!("[{}]", batch.join(","))).status, 200);
    assert!(crate::server::wait_for(10, || node(&status(&s), "BEL-VNT-003") == "healthy"), "{}", status(&s));
    let st = status(&s);
    assert_eq!((st["health"]["known"].as_u64(), st["health"]["healthy_share"].as_f64()), (Some(1), Some(1.0)));
    assert_eq!(st["health"]["actuators"]["unknown"], 13);
    assert_eq!(
        (node(&st, "ahu-01"), node(&st, "ahu-02"), node(&st, "plant-01")),
        ("healthy".into(), "unknown".into(), "healthy".into())
    );
    // Silent for longer than offline_after_s: offline, and that counts against building health.
    assert!(crate::server::wait_for(20, || node(&status(&s), "BEL-VNT-003") == "offline"), "{}", status(&s));
    let st = status(&s);
    assert_eq!((st["health"]["status"].as_str(), st["health"]["healthy_share"].as_f64()), (Some("offline"), Some(0.0)));
}

/// Many authenticated gateways posting large batches at once: each request is answered 200 or
/// 429 with Retry-After (no timeout, no reset), memory stays bounded, and every 200's samples are
/// stored. (How fast, and the 429 share, are measured in `examples/overload.rs`, not here.)
#[test]
fn an_overload_gets_429_not_timeouts_or_resets_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Server::start(
        dir.path(),
        "max_body_bytes = 2097152\nmax_inflight_bytes = 4194304\nout_of_order_window_s = 3600.0",
    ));
    let (clients, rounds, batch) = (48, 4, 5000i64);
    let from = now_ms() - 3_000_000;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(from));
    let answers: Vec<Vec<(u16, Option<String>, i64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (s, next) = (std::sync::Arc::clone(&s), std::sync::Arc::clone(&next));
                scope.spawn(move || {
                    (0..rounds)
                        .map(|_| {
                            // Each sample its own millisecond on one node: a 200 adds exactly `batch`.
                            let t = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                            let body: Vec<String> = (0..batch)
                                .map(|k| {
                                    format!(
                                        r#"{{"nodeId":"BEL-VNT-006","timestamp":{},"telemetry":{{"position_percent":40.1,"setpoint_position_percent":40,"torque":0.01,"temperature":27.1,"power_w":0,"rotation_direction":0}}}}"#,
                                        t + k
                                    )
                                })
                                .collect();
                            let r = s.post("/api/ingest", Some(WRITE), &body.join("\n"));
                            (r.status, r.header("Retry-After").map(str::to_string), t)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no request failed at the transport")).collect()
    });
    let all: Vec<&(u16, Option<String>, i64)> = answers.iter().flatten().collect();
    assert!(all.iter().all(|a| a.0 == 200 || a.0 == 429), "{:?}", all.iter().map(|a| a.0).collect::<Vec<_>>());
    let busy: Vec<_> = all.iter().filter(|a| a.0 == 429).collect();
    assert!(!busy.is_empty(), "no request was refused: the load did not reach the limit");
    assert!(busy.iter().all(|a| a.1.as_deref() == Some("1")), "a 429 without Retry-After");
    let ok = all.iter().filter(|a| a.0 == 200).count();
    assert!(ok > 0, "nothing was accepted");
    let rss = s.rss_bytes();
    assert!(rss < 300 << 20, "RSS {} MB", rss >> 20);
    // Every accepted batch is there, and nothing of a refused one.
    assert_eq!(s.history("BEL-VNT-006", from, 10_000).len(), ok * batch as usize, "{ok} batches accepted");
}

/// The fleet server (C-MAPSS turbofans) is held to the same rules: a stranger's body is never
/// read, a slow body is cut off, a body that is not JSON gets 400, a long node id is not echoed.
#[test]
fn the_fleet_server_reads_no_strangers_body_and_cuts_slow_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_facility(
        dir.path(),
        "twins/turbofan_fleet.toml",
        "body_timeout_s = 1.0\nbody_idle_timeout_s = 1.0\nbody_min_rate_bytes_s = 100000",
    );
    let before = s.rss_bytes();
    let mut conns: Vec<TcpStream> =
        (0..100).map(|_| slow_post_to(s.port, "/api/fleet/cycles", None, 8 << 20, 64 << 10)).collect();
    for c in &mut conns {
        assert_eq!(status_and_closed(c), (401, true));
    }
    let after = s.rss_bytes();
    assert!(after < before + (100 << 20) && after < 200 << 20, "RSS {before} -> {after} bytes");
    let mut c = slow_post_to(s.port, "/api/fleet/cycles", Some(WRITE), 600_000, 1000);
    assert_eq!(status_and_closed(&mut c), (408, true));
    let r = s.post("/api/fleet/cycles", Some(WRITE), "[{broken");
    assert_eq!(r.status, 400, "{}", r.body);
    let long = "E".repeat(1 << 20);
    let body =
        format!(r#"[{{"node":"{long}","cycle":1,"settings":[0,0,100],"sensors":[{}]}}]"#, vec!["1"; 21].join(","));
    let r = s.post("/api/fleet/cycles", Some(WRITE), &body);
    assert_eq!(r.status, 404, "{}", &r.body[..r.body.len().min(300)]);
    assert!(r.body.len() < 2000 && r.body.contains("more bytes"), "{} bytes", r.body.len());
    assert_eq!(s.get("/api/fleet", Some(READ)).status, 200);
}
