//! Overload: `connections` clients each posting NDJSON batches of `batch` samples as fast as they
//! are answered, for `seconds`, while a prober asks `/api/status` and `/health` every 100 ms.
//! Prints the share of each answer (200, 429, …) and of failures (timeouts, resets), ingest
//! latency p50/p99, the probes' p50/p99/max, and the server's peak resident memory (read from
//! `/proc/PID/status`, so run it on the server's machine).
//!
//!     twinfault serve --facility twins/datacenter.toml --config bench/serve.bench.toml &
//!     cargo run --release --example overload -- http://127.0.0.1:5000 $! 256 5000 20

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "dev-gateway-token-change-me";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn rss_bytes(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One outcome: an HTTP status, or how the request failed.
fn outcome(r: &Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> String {
    match r {
        Ok(r) => r.status().as_u16().to_string(),
        Err(ureq::Error::Timeout(_)) => "timeout".into(),
        Err(ureq::Error::Io(e)) => format!("io {:?}", e.kind()),
        Err(e) => format!("error {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:5000".into());
    let pid: u32 = args.get(2).expect("usage: overload URL PID [connections] [batch] [seconds]").parse().unwrap();
    let connections: usize = args.get(3).map_or(256, |s| s.parse().unwrap());
    let batch: usize = args.get(4).map_or(5000, |s| s.parse().unwrap());
    let seconds: u64 = args.get(5).map_or(20, |s| s.parse().unwrap());

    // The reference floor's actuators, from the facility the server serves.
    let facility = twinfault::load::facility(std::path::Path::new("twins/datacenter.toml"), None).unwrap();
    let nodes: Arc<Vec<String>> = Arc::new(facility.actuators.iter().map(|a| a.id.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let next_t = Arc::new(AtomicI64::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
    ));
    let outcomes: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let samples_ok = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
    let start_rss = rss_bytes(pid);

    let sampler = {
        let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let prober = {
        let (stop, base) = (Arc::clone(&stop), base.clone());
        std::thread::spawn(move || {
            let agent = agent();
            let (mut status, mut health, mut failed) = (Vec::new(), Vec::new(), 0u64);
            while !stop.load(Ordering::Relaxed) {
                for (path, into) in [("/api/status", &mut status), ("/health", &mut health)] {
                    let t = Instant::now();
                    match agent.get(format!("{base}{path}")).header("Authorization", format!("Bearer {TOKEN}")).call() {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_string();
                            into.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => failed += 1,
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (status, health, failed)
        })
    };

    let t0 = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, base, next_t, nodes) = (Arc::clone(&stop), base.clone(), Arc::clone(&next_t), Arc::clone(&nodes));
            let (outcomes, latencies, samples_ok) =
                (Arc::clone(&outcomes), Arc::clone(&latencies), Arc::clone(&samples_ok));
            std::thread::spawn(move || {
                let agent = agent();
                let mut mine = std::collections::BTreeMap::<String, u64>::new();
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // Each sample its own millisecond: the batch's times are reserved at once.
                    let t = next_t.fetch_add(batch as i64, Ordering::Relaxed);
                    let body: String = (0..batch)
                        .map(|i| {
                            format!(
                                "{{\"nodeId\":\"{}\",\"timestamp\":{},\"telemetry\":{{\"position_percent\":40.1,\"setpoint_position_percent\":40,\"torque\":0.01,\"temperature\":27.1,\"power_w\":0,\"rotation_direction\":0}}}}\n",
                                nodes[i % nodes.len()],
                                t + i as i64
                            )
                        })
                        .collect();
                    let sent = Instant::now();
                    let r = agent
                        .post(format!("{base}/api/ingest"))
                        .header("Authorization", format!("Bearer {TOKEN}"))
                        .header("Content-Type", "application/x-ndjson")
                        .send(&body);
                    let o = outcome(&r);
                    if let Ok(mut r) = r {
                        let _ = r.body_mut().read_to_string();
                        if r.status() == 200 {
                            samples_ok.fetch_add(batch as u64, Ordering::Relaxed);
                        }
                        if r.status() == 429 {
                            // As a well-behaved client: wait as told.
                            let wait = r
                                .headers()
                                .get("Retry-After")
                                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                                .unwrap_or(1);
                            std::thread::sleep(Duration::from_millis(wait * 1000 / 4));
                        }
                    }
                    lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                    *mine.entry(o).or_default() += 1;
                }
                let mut all = outcomes.lock().unwrap();
                for (k, v) in mine {
                    *all.entry(k).or_default() += v;
                }
                latencies.lock().unwrap().extend(lat);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (mut status, mut health, probe_failed) = prober.join().unwrap();
    sampler.join().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let after = rss_bytes(pid);

    let outcomes = outcomes.lock().unwrap();
    let total: u64 = outcomes.values().sum();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    status.sort_by(f64::total_cmp);
    health.sort_by(f64::total_cmp);
    println!("{connections} connections, {batch}-sample batches, {elapsed:.1} s: {total} requests");
    for (k, v) in outcomes.iter() {
        println!("  {k:>12}: {v:>7} ({:.1} %)", *v as f64 * 100.0 / total.max(1) as f64);
    }
    println!(
        "  stored {:.2} M samples/s; ingest latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples_ok.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  /api/status p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; /health p99 {:.0} ms, max {:.0} ms; {probe_failed} probes failed",
        percentile(&status, 0.5),
        percentile(&status, 0.99),
        status.last().copied().unwrap_or(f64::NAN),
        percentile(&health, 0.99),
        health.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  server RSS: {} MB before, peak {} MB, {} MB 5 s after",
        start_rss >> 20,
        peak.load(Ordering::Relaxed) >> 20,
        after >> 20
    );
}
