//! `twinfault serve` as a real process on a free loopback port, driven over HTTP.

use crate::root;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WRITE: &str = "test-gateway-token-0123456789";
pub const READ: &str = "test-dashboard-token-0123456789";

pub struct Server {
    child: Child,
    pub base: String,
    pub port: u16,
    pub store: PathBuf,
    config: PathBuf,
    /// `serve`'s arguments after `--config`.
    args: Vec<String>,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts a server with `extra` appended to a test configuration, storing in `store`.
    pub fn start(dir: &Path, extra: &str) -> Server {
        Self::start_facility(dir, "twins/datacenter.toml", extra)
    }

    /// As [`Server::start`], serving another facility (or fleet) file of the repo.
    pub fn start_facility(dir: &Path, facility: &str, extra: &str) -> Server {
        let port = free_port();
        let store = dir.join("store");
        let config = dir.join("serve.toml");
        let mut f = std::fs::File::create(&config).unwrap();
        writeln!(f, "bind = \"127.0.0.1:{port}\"\nstore = \"{}\"\n{extra}", store.display()).unwrap();
        writeln!(f, "[[tokens]]\nname = \"gateway\"\ntoken = \"{WRITE}\"\naccess = \"write\"").unwrap();
        writeln!(f, "[[tokens]]\nname = \"dashboard\"\ntoken = \"{READ}\"\naccess = \"read\"").unwrap();
        Self::spawn(port, store, config, vec!["--facility".into(), facility.to_string()])
    }

    /// `twinfault serve --config CONFIG ARGS…`, answering on `port`, storing in `store`.
    pub fn spawn(port: u16, store: PathBuf, config: PathBuf, args: Vec<String>) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_twinfault"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(&args)
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(match std::env::var_os("TWINFAULT_TEST_SERVER_LOGS") {
                Some(_) => Stdio::from(std::fs::File::create(store.with_extension("log")).unwrap()),
                None => Stdio::null(),
            })
            .spawn()
            .expect("server starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let s = Server { child, base: format!("http://127.0.0.1:{port}"), port, store, config, args, agent };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if s.agent.get(format!("{}/health", s.base)).call().is_ok_and(|r| r.status() == 200) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not answer /health within 60 s");
    }

    /// Sends the process a signal (`STOP`, `CONT`) with the shell's `kill` builtin.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("sh").args(["-c", &format!("kill -{sig} {}", self.child.id())]).status().unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and starts it again on the same store.
    pub fn kill_and_restart(mut self) -> Server {
        self.kill();
        self.restart()
    }

    /// Kills the process with SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the process again (after it was killed) on the same port, store and arguments.
    pub fn restart(self) -> Server {
        let (port, store, config, args) = (self.port, self.store.clone(), self.config.clone(), self.args.clone());
        std::mem::forget(self);
        Self::spawn(port, store, config, args)
    }

    /// Every stored point of a node's default metric (position) from `from` on, read `page` at
    /// a time: (time [ms], value); none for a node the server does not know (yet).
    pub fn history(&self, node: &str, from: i64, page: usize) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut cursor = Some(from);
        while let Some(c) = cursor {
            let reply = self.get(&format!("/api/nodes/{node}/history?from={c}&limit={page}"), Some(READ)).json();
            let Some(points) = reply["points"].as_array() else { return out };
            out.extend(points.iter().map(|p| (p["t_ms"].as_i64().unwrap(), p["value"].as_f64().unwrap())));
            cursor = reply["next_from"].as_i64();
        }
        out
    }

    /// The server process's resident memory [bytes], from `/proc`.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS in /proc status");
        kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
    }

    fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        match r {
            Ok(mut r) => {
                let headers =
                    r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
                let status = r.status().as_u16();
                let body = r.body_mut().read_to_string().unwrap_or_default();
                Reply { status, body, headers }
            }
            Err(e) => panic!("request failed: {e}"),
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::reply(req.call())
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> Reply {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Self::reply(req.send(body))
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let uri = format!("{}{path}", self.base);
        let mut b = ureq::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        Self::reply(self.agent.run(b.body(()).unwrap()))
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn iso(ms: i64) -> String {
    twinfault_core::time::format_timestamp_ms(ms)
}

pub fn seed_sample(node: &str, t_ms: i64, position: f64) -> String {
    format!(
        r#"{{"nodeId":"{node}","timestamp":"{}","deviceType":"dampener","parentIds":["ahu-01"],"telemetry":{{"position_percent":{position},"setpoint_position_percent":40,"torque":0.01,"temperature":27.1,"power_w":0,"rotation_direction":0}}}}"#,
        iso(t_ms)
    )
}

#[test]
fn ingest_accepts_the_seed_and_rig_formats_and_keeps_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "");
    let t0 = now_ms() - 10_000;
    // One object, an array, NDJSON, and the rig's own field names at the top level.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &seed_sample("BEL-VNT-003", t0, 40.0)).status, 200);
    let arr =
        format!("[{},{}]", seed_sample("BEL-VNT-003", t0 + 100, 40.1), seed_sample("BEL-VNT-003", t0 + 150, 40.2));
    assert_eq!(s.post("/api/ingest", Some(WRITE), &arr).json()["accepted"], 2);
    let nd =
        format!("{}\n{}\n", seed_sample("BEL-VNT-003", t0 + 200, 40.3), seed_sample("BEL-VNT-003", t0 + 250, 40.4));
    assert_eq!(s.post("/api/ingest", Some(WRITE), &nd).json()["accepted"], 2);
    let rig = format!(
        r#"{{"nodeId":"BEL-VNT-003","_time":"{}","feedback_position_%":40.5,"setpoint_position_%":40.0,"motor_torque_Nmm":-0.6,"power_W":0.17,"internal_temperature_deg_C":27.2,"rotation_direction":1}}"#,
        iso(t0 + 300)
    );
    assert_eq!(s.post("/api/ingest", Some(WRITE), &rig).status, 200);
    // Same millisecond twice, and out of order within the window: both kept.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &seed_sample("BEL-VNT-003", t0 + 300, 40.6)).status, 200);
    assert_eq!(s.post("/api/ingest", Some(WRITE), &seed_sample("BEL-VNT-003", t0 + 120, 40.7)).status, 200);

    let h = s.get(&format!("/api/nodes/BEL-VNT-003/history?metric=position_pct&from={}", t0), Some(READ)).json();
    let values: Vec<f64> = h["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values.len(), 8, "{h}");
    let times: Vec<i64> = h["points"].as_array().unwrap().iter().map(|p| p["t_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history is in time order: {times:?}");
    assert!(values.contains(&40.5) && values.contains(&40.6) && values.contains(&40.7));
    // Paged, never unbounded.
    let page = s.get(&format!("/api/nodes/BEL-VNT-003/history?from={}&limit=4", t0), Some(READ)).json();
    assert_eq!(page["points"].as_array().unwrap().len(), 4);
    assert!(page["next_from"].as_i64().is_some());
    let node = s.get("/api/nodes/BEL-VNT-003", Some(READ)).json();
    assert_eq!(node["last_sample"]["position_pct"], 40.6);
    assert_eq!(node["parent"], "ahu-01");
    let m = s.get("/metrics", None).body;
    assert!(m.contains("twinfault_ingested_samples_total 8"), "{m}");
}

#[test]
fn bad_input_gets_the_exact_status_code_and_nothing_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "max_body_bytes = 4096\nsimulate = [\"BEL-VNT-001\"]");
    let now = now_ms();
    let ok = seed_sample("BEL-VNT-003", now, 40.0);
    let check = |body: &str, token: Option<&str>, status: u16, needle: &str| {
        let r = s.post("/api/ingest", token, body);
        assert_eq!(r.status, status, "{body} -> {}", r.body);
        assert!(r.body.contains(needle), "{} does not mention {needle}", r.body);
    };
    check("{not json", Some(WRITE), 400, "invalid JSON");
    check(&ok, None, 401, "bearer token");
    check(&ok, Some("wrong-token-0123456789"), 401, "unknown token");
    check(&ok, Some(READ), 403, "read-only");
    check(&ok.replace("BEL-VNT-003", "BEL-VNT-099"), Some(WRITE), 404, "BEL-VNT-099");
    check(
        &ok.replace("\"position_percent\":40", "\"position_percent\":\"abc\""),
        Some(WRITE),
        422,
        "telemetry.position_percent",
    );
    check(&ok.replace("\"torque\":0.01", "\"torque\":\"NaN\""), Some(WRITE), 422, "telemetry.torque");
    check(&ok.replace("dampener", "toaster"), Some(WRITE), 422, "deviceType");
    check(&seed_sample("BEL-VNT-003", now + 3_600_000, 40.0), Some(WRITE), 422, "in the future");
    check(&ok.replace("\"rotation_direction\":0", "\"rotation_direction\":7"), Some(WRITE), 422, "rotation_direction");
    check(&seed_sample("BEL-VNT-001", now, 40.0), Some(WRITE), 409, "simulated");
    // A batch with one bad element is refused whole, naming the element.
    let batch = format!("[{ok},{}]", ok.replace("\"power_w\":0", "\"power_w\":null"));
    check(&batch, Some(WRITE), 422, "[1].telemetry.power_w");
    // Too large.
    let big = format!("[{}]", vec![ok.clone(); 40].join(","));
    assert!(big.len() > 4096);
    check(&big, Some(WRITE), 413, "");
    // Nothing above was stored; a good sample is, and then an old one is refused.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &ok).status, 200);
    check(&seed_sample("BEL-VNT-003", now - 1_000_000, 40.0), Some(WRITE), 422, "older than this node's latest");
    let h = s.get("/api/nodes/BEL-VNT-003/history?from=0", Some(READ)).json();
    assert_eq!(h["points"].as_array().unwrap().len(), 1, "{h}");
    // Reads: unknown node 404, bad metric 400, no token 401; status never fails.
    assert_eq!(s.get("/api/nodes/NOPE", Some(READ)).status, 404);
    assert_eq!(s.get("/api/nodes/BEL-VNT-003/history?metric=speed", Some(READ)).status, 400);
    assert_eq!(s.get("/api/nodes/BEL-VNT-003/history?limit=0", Some(READ)).status, 400);
    assert_eq!(s.get("/api/faults?state=maybe", Some(READ)).status, 400);
    assert_eq!(s.get("/api/status", None).status, 401);
    let st = s.get("/api/status", Some(READ));
    assert_eq!(st.status, 200);
    assert_eq!(st.json()["nodes"].as_array().unwrap().len(), 17);
    let m = s.get("/metrics", None).body;
    assert!(m.contains("twinfault_rejected_samples_total{reason=\"invalid\"}"), "{m}");
    assert!(m.contains("twinfault_ingested_samples_total 1"), "{m}");
}

/// A gear jam shaped like the rig's recording, timestamped over the last four minutes.
pub fn jam_ndjson(node: &str, from_ms: i64, k0: usize, k1: usize) -> String {
    let mut out = String::new();
    for k in k0..k1 {
        let t = k as f64 / 20.0;
        let x = (t / 120.0).rem_euclid(1.0);
        let sp = 99.0 * (1.0 - (2.0 * x - 1.0).abs());
        let rot = if k % 10 == 0 { 1 } else { 0 };
        out.push_str(&format!(
            r#"{{"nodeId":"{node}","timestamp":{},"telemetry":{{"position_percent":1.2,"setpoint_position_percent":{sp:.2},"torque":0.0,"temperature":27.5,"power_w":0.004,"rotation_direction":{rot}}}}}"#,
            from_ms + (k as i64) * 50
        ));
        out.push('\n');
    }
    out
}

pub fn wait_for(deadline_s: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(deadline_s);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn kill_9_loses_no_acknowledged_sample_and_the_fault_survives() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "");
    let from = now_ms() - 240_000;
    let n = 4800;
    let mut acked = 0;
    for chunk in (0..n).step_by(400) {
        let r = s.post("/api/ingest", Some(WRITE), &jam_ndjson("BEL-VNT-005", from, chunk, (chunk + 400).min(n)));
        assert_eq!(r.status, 200, "{}", r.body);
        acked += r.json()["accepted"].as_u64().unwrap();
    }
    assert_eq!(acked, n as u64);
    let mut fault_id = String::new();
    assert!(
        wait_for(10, || {
            let f = s.get("/api/faults?state=open", Some(READ)).json();
            match f.as_array().unwrap().iter().find(|f| f["kind"] == "gear_jam" && f["node"] == "BEL-VNT-005") {
                Some(f) => {
                    fault_id = f["id"].as_str().unwrap().to_string();
                    true
                }
                None => false,
            }
        }),
        "the jam was not detected"
    );
    let s = s.kill_and_restart();
    // Every acknowledged sample is back, in pages.
    assert_eq!(s.history("BEL-VNT-005", from, 1000).len(), n, "samples after kill -9");
    // The fault state was restored from the store, under the same id.
    let f = s.get("/api/faults?state=open", Some(READ)).json();
    assert!(f.as_array().unwrap().iter().any(|f| f["id"] == fault_id.as_str()), "{f}");
    let st = s.get("/api/status", Some(READ)).json();
    assert!(st["open_faults"].as_array().unwrap().iter().any(|f| f["id"] == fault_id.as_str()));
    let hist = s.get("/api/nodes/BEL-VNT-005/fault-history", Some(READ)).json();
    assert!(
        hist.as_array().unwrap().iter().any(|c| c["fault_id"] == fault_id.as_str() && c["change"] == "opened"),
        "{hist}"
    );

    // An operator resolves it: read tokens may not; the resolution names who and why, and
    // survives another restart.
    let path = format!("/api/faults/{fault_id}/resolve");
    assert_eq!(s.post(&path, Some(READ), r#"{"note":"x"}"#).status, 403);
    assert_eq!(s.post("/api/faults/F-nope/resolve", Some(WRITE), r#"{"note":"x"}"#).status, 404);
    // A body's `who` is a note: the actor is the token's holder (finding 7 of issue 13).
    let r = s.post(&path, Some(WRITE), r#"{"note":"gear replaced","who":"chief-engineer"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["resolved_by"], "gateway");
    assert_eq!(s.post(&path, Some(WRITE), r#"{"note":"again"}"#).status, 409);
    // In the resolved list at once, not only after the twin's next epoch.
    let resolved = |s: &Server| -> serde_json::Value {
        let res = s.get("/api/faults?state=resolved", Some(READ)).json();
        res.as_array().unwrap().iter().find(|f| f["id"] == fault_id.as_str()).cloned().unwrap_or_default()
    };
    let before = resolved(&s);
    assert_eq!(
        (before["resolved_by"].as_str(), before["note"].as_str()),
        (Some("gateway"), Some("gear replaced (on behalf of chief-engineer)")),
        "{before}"
    );
    let audit = s.get("/api/audit?from=0&limit=1000", Some(READ)).json();
    let last = audit["entries"].as_array().and_then(|e| e.last()).cloned().unwrap_or_default();
    assert_eq!(last["who"], "gateway", "{audit}");
    std::thread::sleep(Duration::from_millis(1100));
    let s = s.kill_and_restart();
    // The resolution time survives the restart (it is the operator's, not the restart's).
    let after = resolved(&s);
    assert_eq!(after["resolved_at"], before["resolved_at"], "{before} / {after}");
    assert_eq!(after["resolved_by"], "gateway");
    let open = s.get("/api/faults?state=open", Some(READ)).json();
    assert!(
        !open.as_array().unwrap().iter().any(|f| f["id"] == fault_id.as_str()),
        "resolved fault reopened after restart: {open}"
    );
}

#[test]
fn live_injection_into_simulated_nodes_and_cors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "simulate = [\"BEL-VNT-001\"]\ncors_origins = [\"http://dash.local\"]");
    let inj = r#"{"node":"BEL-VNT-001","kind":"gear_jam","severity":1.0}"#;
    assert_eq!(s.post("/api/scenario/inject", Some(READ), inj).status, 403);
    let r = s.post("/api/scenario/inject", Some(WRITE), inj);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.post("/api/scenario/inject", Some(WRITE), &inj.replace("BEL-VNT-001", "BEL-VNT-002")).status, 409);
    assert_eq!(s.post("/api/scenario/inject", Some(WRITE), &inj.replace("gear_jam", "jam")).status, 422);
    // A valve leak into a damper does not apply (the same rule as scenario files and the visualizer).
    let leak = s.post("/api/scenario/inject", Some(WRITE), &inj.replace("gear_jam", "valve_leak"));
    assert!(leak.status == 422 && leak.body.contains("does not apply"), "{}", leak.body);
    // Clearing ends the injected fault (the device is repaired); an ingesting node has none.
    let c = s.post("/api/scenario/clear", Some(WRITE), r#"{"node":"BEL-VNT-001"}"#);
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.json()["ended"].as_array().unwrap().len(), 1);
    let again = s.post("/api/scenario/clear", Some(WRITE), r#"{"node":"BEL-VNT-001"}"#);
    assert!(again.json()["ended"].as_array().unwrap().is_empty(), "nothing left to end");
    assert_eq!(s.post("/api/scenario/clear", Some(WRITE), r#"{"node":"BEL-VNT-002"}"#).status, 409);
    assert_eq!(s.post("/api/scenario/clear", Some(WRITE), r#"{"node":"X"}"#).status, 404);
    assert_eq!(s.post("/api/scenario/clear", Some(READ), r#"{"node":"BEL-VNT-001"}"#).status, 403);
    assert_eq!(s.post("/api/scenario/inject", Some(WRITE), &inj.replace("BEL-VNT-001", "X")).status, 404);
    // CORS: closed unless configured.
    let pre = s.request(
        "OPTIONS",
        "/api/status",
        &[("Origin", "http://dash.local"), ("Access-Control-Request-Method", "GET")],
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("http://dash.local"));
    let pre = s.request(
        "OPTIONS",
        "/api/status",
        &[("Origin", "http://evil.example"), ("Access-Control-Request-Method", "GET")],
    );
    assert_eq!(pre.status, 403);
    let get = s.request("GET", "/health", &[("Origin", "http://evil.example")]);
    assert_eq!(get.header("access-control-allow-origin"), None);
    // The OpenAPI document is generated from the code and covers every endpoint.
    let doc = s.get("/api/openapi.json", None).json();
    for p in [
        "/api/ingest",
        "/api/status",
        "/api/facility",
        "/api/nodes/{id}",
        "/api/nodes/{id}/history",
        "/api/faults",
        "/api/nodes/{id}/fault-history",
        "/api/faults/{id}/resolve",
        "/api/scenario/inject",
        "/api/scenario/clear",
        "/api/actions",
        "/api/actions/{id}/approve",
        "/api/actions/{id}/reject",
        "/api/audit",
        "/health",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from the OpenAPI document");
    }
    assert_eq!(
        doc["paths"]["/api/ingest"]["post"]["responses"]["429"]["description"]
            .as_str()
            .map(|d| d.contains("Retry-After")),
        Some(true)
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The simulated node runs on its own and reports samples of its own.
    assert!(wait_for(10, || s.get("/api/nodes/BEL-VNT-001", Some(READ)).json()["mode"] == "simulate"));
}

/// A full ingest queue answers 429 with Retry-After and accepts nothing. Driven in-process through
/// the real handlers, with a writer queue of one job that nobody drains (so it stays full).
#[actix_web::test]
async fn a_full_queue_gets_429_with_retry_after() {
    use std::sync::Arc;
    use twinfault::live::Live;
    use twinfault::serve::{ServeConfig, Writer, api};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServeConfig::default();
    cfg.tokens.push(twinfault::serve::TokenDef {
        name: "gw".into(),
        token: WRITE.into(),
        access: twinfault::serve::Access::Write,
    });
    let facility = Arc::new(twinfault::serve::facility(&root().join("twins/datacenter.toml"), &cfg).unwrap());
    let scenario = twinfault_core::scenario::Scenario::parse(
        "name = \"t\"\nfacility = \"-\"\nseed = 1\nduration_s = 10\nsample_rate_hz = 1.0\n[schedule]\nmode = \"always_on\"\n[weather]\noutdoor_mean_c = 20.0\noutdoor_amplitude_c = 0.0\n",
        "t",
    )
    .unwrap();
    let setup = twinfault_core::plain::Setup::new(&scenario, &facility, false);
    let recorder = twinfault_core::plain::Recorder::new(Arc::clone(&facility), Vec::new());
    let engine = twinfault::sim::engine::Engine::start_with(
        setup,
        Arc::clone(&facility),
        recorder,
        scenario.duration,
        1,
        Box::new(|_, _| {}),
    );
    let live = Arc::new(Live::new(Arc::clone(&facility)));
    let (tx, _rx) = std::sync::mpsc::sync_channel(1);
    let store = twinfault::store::Store::open(&dir.path().join("store")).unwrap();
    let policy = Arc::new(twinfault::agent::policy::Policy::new(store.audit().unwrap(), 600.0, Vec::new()).unwrap());
    let (cfg, actuators) = (Arc::new(cfg), Arc::new(std::sync::RwLock::new(engine.actuators.clone())));
    let ingest = Arc::new(twinfault::serve::admit::Ingest {
        cfg: Arc::clone(&cfg),
        facility: Arc::clone(&facility),
        live: Arc::clone(&live),
        actors: Arc::clone(&actuators),
        store: store.clone(),
    });
    let state = actix_web::web::Data::new(api::AppState {
        policy,
        cfg,
        facility: Arc::clone(&facility),
        live: Arc::clone(&live),
        store,
        writer: Writer::new(tx, Arc::clone(&live)),
        actuators,
        ahus: engine.ahus.clone(),
        supervisor: engine.supervisor.clone(),
        inflight: Arc::default(),
        ingest,
        cluster: None,
    });
    let common = api::Common::new(Arc::clone(&state.cfg));
    let app = actix_web::test::init_service(api::app(common, api::Served::Facility(state))).await;
    let req = |t: i64| {
        actix_web::test::TestRequest::post()
            .uri("/api/ingest")
            .insert_header(("Authorization", format!("Bearer {WRITE}")))
            .set_payload(seed_sample("BEL-VNT-003", t, 40.0))
            .to_request()
    };
    // The first request fills the queue and waits for a writer that never comes: poll it until it
    // is waiting (its job queued), then leave it.
    let mut first = Box::pin(actix_web::test::call_service(&app, req(now_ms())));
    // (It is parsed on a blocking thread: poll it for up to 10 s.)
    for _ in 0..10_000 {
        if futures_util::FutureExt::now_or_never(&mut first).is_some() {
            panic!("the first request finished without a writer");
        }
        if live.queue_depth.load(std::sync::atomic::Ordering::Relaxed) == 1 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(live.queue_depth.load(std::sync::atomic::Ordering::Relaxed), 1);
    let second = actix_web::test::call_service(&app, req(now_ms())).await;
    assert_eq!(second.status().as_u16(), 429);
    assert_eq!(second.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body = actix_web::test::read_body(second).await;
    assert!(String::from_utf8_lossy(&body).contains("queue is full"));
    assert_eq!(live.ingested.load(std::sync::atomic::Ordering::Relaxed), 0);
    drop(first);
}

#[test]
fn unknown_nodes_are_auto_created_under_their_parent_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), "auto_create = true");
    let t0 = now_ms() - 5_000;
    let new = |t: i64, parents: &str| seed_sample("BEL-VNT-NEW", t, 40.0).replace("[\"ahu-01\"]", parents);
    // No parent, or an unknown one: still 404, and nothing is created.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &new(t0, "[]")).status, 404);
    assert_eq!(s.post("/api/ingest", Some(WRITE), &new(t0, "[\"ahu-99\"]")).status, 404);
    assert_eq!(s.get("/api/nodes/BEL-VNT-NEW", Some(READ)).status, 404);
    // Under a known AHU but in a batch that is refused (one bad value): nothing is created.
    let refused = seed_sample("BEL-VNT-REFUSED", t0, 40.0).replace("[\"ahu-01\"]", "[\"ahu-02\"]");
    let bad = seed_sample("BEL-VNT-002", t0, 40.0).replace("\"torque\":0.01", "\"torque\":\"x\"");
    let r = s.post("/api/ingest", Some(WRITE), &format!("[{refused},{bad}]"));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(s.get("/api/nodes/BEL-VNT-REFUSED", Some(READ)).status, 404);
    // Under a known AHU: created, stored, evaluated, listed, rolled up.
    let r = s.post("/api/ingest", Some(WRITE), &new(t0, "[\"ahu-02\"]"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.post("/api/ingest", Some(WRITE), &new(t0 + 100, "[\"ahu-02\"]")).status, 200);
    let n = s.get("/api/nodes/BEL-VNT-NEW", Some(READ)).json();
    assert_eq!(n["parent"], "ahu-02");
    assert_eq!(n["auto_created"], true);
    assert_eq!(n["last_sample"]["position_pct"], 40.0);
    let st = s.get("/api/status", Some(READ)).json();
    assert!(st["nodes"].as_array().unwrap().iter().any(|n| n["id"] == "BEL-VNT-NEW"));
    // A sample naming the wrong parent for an existing auto-created node is refused.
    assert_eq!(s.post("/api/ingest", Some(WRITE), &new(t0 + 200, "[\"ahu-01\"]")).status, 422);
    // It survives a restart with its history.
    let s = s.kill_and_restart();
    let h = s.get(&format!("/api/nodes/BEL-VNT-NEW/history?from={t0}"), Some(READ)).json();
    assert_eq!(h["points"].as_array().unwrap().len(), 2, "{h}");
    assert_eq!(s.get("/api/nodes/BEL-VNT-NEW", Some(READ)).json()["parent"], "ahu-02");
    assert_eq!(s.get("/api/nodes/BEL-VNT-REFUSED", Some(READ)).status, 404, "a refused batch stored its node");
}

#[test]
fn changes_wait_for_their_operators_approval_and_everything_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let bob = "test-bob-write-token-0123456789";
    let extra = format!("action_expiry_s = 2.0\n[[tokens]]\nname = \"bob\"\ntoken = \"{bob}\"\naccess = \"write\"");
    let s = Server::start(dir.path(), &extra);
    let from = now_ms() - 240_000;
    for chunk in (0..4800).step_by(400) {
        let r = s.post("/api/ingest", Some(WRITE), &jam_ndjson("BEL-VNT-005", from, chunk, chunk + 400));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut fault = String::new();
    assert!(wait_for(10, || {
        let f = s.get("/api/faults", Some(READ)).json();
        f.as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "gear_jam")
            .map(|f| fault = f["id"].as_str().unwrap().into())
            .is_some()
    }));
    let propose = |token: &str| {
        let body =
            serde_json::json!({ "tool": "resolve_fault", "arguments": { "fault": fault, "note": "gear replaced" } });
        s.post("/api/actions", Some(token), &body.to_string())
    };
    // A proposal changes nothing; it is bound to its operator (the gateway token).
    let p = propose(WRITE).json();
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["operator"], "gateway");
    assert!(s.get("/api/faults", Some(READ)).json().as_array().unwrap().iter().any(|f| f["id"] == fault.as_str()));
    assert_eq!(s.get("/api/actions", Some(WRITE)).json().as_array().unwrap().len(), 1);
    // Another operator may not approve it, a read token may not approve at all.
    assert_eq!(s.post(&format!("/api/actions/{id}/approve"), Some(bob), "").status, 403);
    assert_eq!(s.post(&format!("/api/actions/{id}/approve"), Some(READ), "").status, 403);
    // Its operator approves: carried out once.
    let r = s.post(&format!("/api/actions/{id}/approve"), Some(WRITE), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["resolved_by"], "gateway");
    assert_eq!(s.post(&format!("/api/actions/{id}/approve"), Some(WRITE), "").status, 404);
    assert!(wait_for(5, || !s
        .get("/api/faults", Some(READ))
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == fault.as_str())));
    // Rejected and expired actions are refused.
    let q = propose(WRITE).json()["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&format!("/api/actions/{q}/reject"), Some(WRITE), "").status, 200);
    assert_eq!(s.post(&format!("/api/actions/{q}/approve"), Some(WRITE), "").status, 404);
    let e = propose(WRITE).json()["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(s.post(&format!("/api/actions/{e}/approve"), Some(WRITE), "").status, 410);
    // Unknown tools are refused (never taken for another change); the three changes are proposable.
    let r = s.post("/api/actions", Some(WRITE), r#"{"tool":"delete_everything","arguments":{}}"#);
    assert!(r.status == 422 && r.body.contains("resolve_fault, inject_fault, clear_fault"), "{}", r.body);
    let c = s.post("/api/actions", Some(WRITE), r#"{"tool":"clear_fault","arguments":{"node":"BEL-VNT-001"}}"#);
    assert_eq!((c.status, c.json()["tool"].as_str()), (200, Some("clear_fault")), "{}", c.body);
    let c = c.json()["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&format!("/api/actions/{c}/reject"), Some(WRITE), "").status, 200);
    // The audit log has every step, paged, and survives a kill -9.
    let s = s.kill_and_restart();
    let mut outcomes = Vec::new();
    let mut from = Some(0u64);
    while let Some(f) = from {
        let page = s.get(&format!("/api/audit?from={f}&limit=3"), Some(READ)).json();
        outcomes.extend(page["entries"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap().to_string()));
        from = page["next_from"].as_u64();
    }
    assert_eq!(
        outcomes,
        [
            "pending", "error", "approved", "error", "pending", "rejected", "error", "pending", "expired", "pending",
            "rejected"
        ],
        "{outcomes:?}"
    );
    // A direct REST change is audited too.
    assert_eq!(s.post("/api/faults/F-nope/resolve", Some(WRITE), r#"{"note":"x"}"#).status, 404);
    let last = s.get("/api/audit?from=0&limit=1000", Some(READ)).json();
    let last = last["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["tool"].as_str(), last["outcome"].as_str(), last["who"].as_str()),
        (Some("resolve_fault"), Some("error"), Some("gateway"))
    );
    // `twinfault audit` reads the same log from the store once the server is gone.
    let store = s.store.clone();
    drop(s);
    let out = Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["audit", "--store", store.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12);
    assert!(lines.iter().any(|e| e["outcome"] == "approved" && e["who"] == "gateway"));
}
