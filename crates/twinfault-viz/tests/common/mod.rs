//! A real `twinfault serve` process on a free loopback port, and a jammed actuator's telemetry to
//! feed it: the test runs the product's binary as a user would, which `cargo test --workspace`
//! builds before any test runs.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const WRITE: &str = "viz-test-gateway-token-0123";
pub const READ: &str = "viz-test-dashboard-token-0123";

pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The shared data folder beside the project, when this machine has it; where it must be (CI sets
/// `TWINFAULT_REQUIRE_SHARED_DATA`) a missing folder fails the test instead of skipping it.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let p = root().join("..").join("shared").join("data").join(sub);
    if p.is_dir() {
        Some(p)
    } else if std::env::var_os("TWINFAULT_REQUIRE_SHARED_DATA").is_some() {
        panic!("{} is missing, and TWINFAULT_REQUIRE_SHARED_DATA says it must be here", p.display());
    } else {
        eprintln!("SKIPPED: {} is not on this machine; the checks that need it did not run", p.display());
        None
    }
}

pub struct Server {
    pub base: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `twinfault` binary beside this test's executable (`target/<profile>/twinfault`).
fn twinfault_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join(format!("twinfault{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the README's `cargo test --workspace` (or `cargo build --bin twinfault` first)",
        bin.display()
    );
    bin
}

/// Starts the server on `twins/datacenter.toml` with BEL-VNT-001 simulated, and waits for `/health`.
pub fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config: PathBuf = dir.path().join("serve.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(f, "bind = \"127.0.0.1:{port}\"\nstore = \"{}\"", dir.path().join("store").display()).unwrap();
    writeln!(f, "simulate = [\"BEL-VNT-001\"]").unwrap();
    writeln!(f, "[[tokens]]\nname = \"gateway\"\ntoken = \"{WRITE}\"\naccess = \"write\"").unwrap();
    writeln!(f, "[[tokens]]\nname = \"dashboard\"\ntoken = \"{READ}\"\naccess = \"read\"").unwrap();
    drop(f);
    let mut child = std::process::Command::new(twinfault_bin())
        .arg("serve")
        .arg("--facility")
        .arg(root().join("twins/datacenter.toml"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("twinfault serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("twinfault serve exited with {status} before answering /health");
        }
        if ureq::get(format!("{base}/health")).call().is_ok() {
            return Server { base, child, _dir: dir };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not answer /health within 30 s");
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Four minutes of a jammed damper at 20 Hz ending now: the command sweeps, the output stays at
/// 1 %, no torque. Posted in pages.
pub fn ingest_jam(base: &str, node: &str) {
    let from = now_ms() - 240_000;
    let lines: Vec<String> = (0..4800)
        .map(|k| {
            let t = k as f64 / 20.0;
            let x = (t / 120.0).rem_euclid(1.0);
            let sp = 99.0 * (1.0 - (2.0 * x - 1.0).abs());
            format!(
                r#"{{"nodeId":"{node}","timestamp":{},"telemetry":{{"position_percent":1.2,"setpoint_position_percent":{sp:.2},"torque":0.0,"temperature":27.5,"power_w":0.004,"rotation_direction":{}}}}}"#,
                from + k * 50,
                i32::from(k % 10 == 0)
            )
        })
        .collect();
    for page in lines.chunks(400) {
        let r = ureq::post(format!("{base}/api/ingest"))
            .header("Authorization", format!("Bearer {WRITE}"))
            .header("Content-Type", "application/x-ndjson")
            .send(page.join("\n"))
            .expect("ingest accepted");
        assert_eq!(r.status(), 200);
    }
}

/// Polls `f` every 100 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
