//! The real window, rendered under Xvfb with Mesa's software Vulkan (lavapipe), captured with
//! bevy's screenshot API once a critical fault is open and listed, and checked pixel by pixel:
//! once for a scenario run in-process, once watching a live `twinfault serve`.
//! `.ci/run` installs `xvfb` and `mesa-vulkan-drivers`.

mod common;

use std::process::Command;
use twinfault_core::types::Status;
use twinfault_viz::app::{CHART_MIN_HEIGHT, LEFT_PANEL, Layout, RIGHT_PANEL, TOP_BAR, WINDOW, marker_size, status_rgb};

fn near(px: &[u8], want: [u8; 3], tol: i32) -> bool {
    (0..3).all(|k| (i32::from(px[k]) - i32::from(want[k])).abs() <= tol)
}

/// A decoded screenshot, and what the visualizer printed while taking it.
struct Shot {
    buf: Vec<u8>,
    line: usize,
    channels: usize,
    width: usize,
    stderr: String,
}

/// The datacenter map's size (twins/datacenter.toml).
const MAP: (f32, f32) = (1200.0, 700.0);

impl Shot {
    fn px(&self, x: usize, y: usize) -> &[u8] {
        &self.buf[y * self.line + x * self.channels..y * self.line + x * self.channels + 3]
    }

    /// The device drawn at map point `at` (datacenter map) has this status' colour.
    fn assert_device(&self, id: &str, at: (f32, f32), status: Status) {
        let (x, y) = Layout::fit(MAP.0, MAP.1).map_to_screen(at.0, at.1);
        let hits = (-3..=3)
            .flat_map(|dx| (-3..=3).map(move |dy| (x as i64 + dx, y as i64 + dy)))
            .filter(|&(x, y)| near(self.px(x as usize, y as usize), status_rgb(status), 30))
            .count();
        assert!(
            hits >= 40,
            "{id} is not drawn {status} at ({x:.0}, {y:.0}): {hits} of 49 pixels; centre {:?}",
            self.px(x as usize, y as usize)
        );
    }

    /// The device at map point `at` is named on the map: right of its marker (or, where that is
    /// taken, left of it) a dark label box holds text in `colour`.
    fn assert_named(&self, id: &str, at: (f32, f32), colour: [u8; 3]) {
        let l = Layout::fit(MAP.0, MAP.1);
        let (x, y) = l.map_to_screen(at.0, at.1);
        let half = marker_size([f64::from(MAP.0), f64::from(MAP.1)]) * l.scale / 2.0;
        let count = |x0: f32| {
            let mut n = 0;
            for yy in (y - 8.0) as usize..(y + 10.0) as usize {
                for xx in x0 as usize..(x0 + 80.0) as usize {
                    n += usize::from(near(self.px(xx, yy), colour, 40));
                }
            }
            n
        };
        let (right, left) = (count(x + half + 4.0), count(x - half - 88.0));
        assert!(right.max(left) >= 25, "{id} has no name beside it ({right} text pixels right, {left} left)");
    }

    /// The chart `name` was laid out at least [`CHART_MIN_HEIGHT`] tall, and its first line is
    /// drawn inside it.
    fn assert_chart(&self, name: &str, line: [u8; 3]) {
        let l = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix(&format!("chart {name}: ")))
            .unwrap_or_else(|| panic!("chart {name} not drawn:\n{}", self.stderr));
        let r: Vec<f32> = l.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert!(r[3] - r[1] >= CHART_MIN_HEIGHT, "chart {name} is {} px high", r[3] - r[1]);
        let mut hits = 0;
        for y in r[1] as usize..r[3] as usize {
            for x in r[0] as usize..r[2] as usize {
                hits += usize::from(near(self.px(x, y), line, 30));
            }
        }
        assert!(hits >= 40, "chart {name} has no line in it ({hits} pixels)");
    }

    /// The issues panel (right) lists a critical fault: its first rows hold text and a critical dot.
    fn assert_issue_listed(&self) {
        let x0 = (WINDOW.0 - RIGHT_PANEL) as usize + 4;
        let (y0, y1) = (TOP_BAR as usize + 30, TOP_BAR as usize + 120);
        let mut distinct = std::collections::BTreeSet::new();
        let mut red = 0;
        for y in y0..y1 {
            for x in x0..self.width - 4 {
                let p = self.px(x, y);
                distinct.insert((p[0] / 16, p[1] / 16, p[2] / 16));
                if near(p, status_rgb(Status::Critical), 40) {
                    red += 1;
                }
            }
        }
        assert!(distinct.len() > 8, "the issues panel looks empty ({} colours)", distinct.len());
        assert!(red > 5, "no critical marker in the issues panel");
    }
}

/// Runs the visualizer under Xvfb with `args` and decodes the screenshot it saves.
fn shoot(name: &str, args: &[&str]) -> Shot {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.png"));
    let out = Command::new("xvfb-run")
        .args(["-a", "-s", &format!("-screen 0 {}x{}x24", WINDOW.0, WINDOW.1)])
        .arg(env!("CARGO_BIN_EXE_twinfault-viz"))
        .args(args)
        .arg("--screenshot")
        .arg(&path)
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .expect("xvfb-run is not installed: apt-get install xvfb xauth mesa-vulkan-drivers (.ci/run does this)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the visualizer failed under Xvfb:\n{stderr}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).expect("screenshot written")));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!((w, h), (WINDOW.0 as usize, WINDOW.1 as usize));
    // Keep the picture for the README when asked to.
    if let Ok(dest) = std::env::var(format!("TWINFAULT_VIZ_SCREENSHOT_{}", name.to_uppercase())) {
        std::fs::copy(&path, dest).unwrap();
    }
    Shot { channels: info.line_size / w, line: info.line_size, width: w, buf, stderr }
}

#[test]
fn the_window_shows_the_critical_device_and_its_issue() {
    let scenario = common::root().join("scenarios/datacenter_gear_jam.toml");
    let shot = shoot("scenario", &[scenario.to_str().unwrap(), "--speed", "400", "--select", "BEL-VNT-003"]);
    // BEL-VNT-003 (the jammed damper) sits at map (730, 185); BEL-VNT-001 at (250, 185) is healthy.
    shot.assert_device("BEL-VNT-003", (730.0, 185.0), Status::Critical);
    shot.assert_device("BEL-VNT-001", (250.0, 185.0), Status::Healthy);
    shot.assert_issue_listed();
    // Names on the map: the jammed damper's in its status' colour, a healthy one's in white.
    shot.assert_named("BEL-VNT-003", (730.0, 185.0), status_rgb(Status::Critical));
    shot.assert_named("BEL-VNT-001", (250.0, 185.0), [235, 235, 235]);
    // A plot per signal under the map, each of a readable height, with its line.
    shot.assert_chart("position", [70, 150, 240]);
    shot.assert_chart("torque", [240, 140, 60]);
}

/// The stuck chilled-water valve is found by its AHU from the air temperatures (its own rules see
/// nothing): its square, its dot in the tree and its name are drawn critical all the same. Asked
/// about it, the agent in-process (the model double) answers in the window's panel.
#[test]
fn a_device_with_a_finding_its_ahu_raised_is_drawn_in_the_findings_colour() {
    let reply = "BEL-CHW-201 is stuck_at about 20 %: ahu-02 finds it from the air temperatures.";
    let model = twinfault::agent::double::Double::start(vec![twinfault::agent::double::answer(reply)]).unwrap();
    let scenario = common::root().join("scenarios/datacenter_stuck_at.toml");
    let base = model.base_url();
    let question = "What is wrong with BEL-CHW-201?";
    let shot = shoot(
        "stuck",
        &[
            scenario.to_str().unwrap(),
            "--speed",
            "400",
            "--select",
            "BEL-CHW-201",
            "--agent-base-url",
            &base,
            "--agent-model",
            "double",
            "--ask",
            question,
        ],
    );
    // BEL-CHW-201 sits at map (1140, 580) (twins/datacenter.toml).
    shot.assert_device("BEL-CHW-201", (1140.0, 580.0), Status::Critical);
    shot.assert_named("BEL-CHW-201", (1140.0, 580.0), status_rgb(Status::Critical));
    shot.assert_issue_listed();
    // The window asked once the fault was open, waited for the reply, and shows it.
    let requests = model.requests();
    assert!(!requests.is_empty(), "the model was not asked:\n{}", shot.stderr);
    assert!(requests[0]["messages"].to_string().contains(question));
    for line in [format!("answers with double at {base}"), format!("you: {question}")] {
        assert!(shot.stderr.contains(&format!("agent panel: {line}")), "no \"{line}\" in:\n{}", shot.stderr);
    }
    // The reply, after the tools that grounded it.
    let answered = shot.stderr.lines().find(|l| l.starts_with("agent panel: agent: [")).unwrap_or_default();
    assert!(answered.ends_with(reply) && answered.contains("node_details"), "{}", shot.stderr);
}

/// An AHU selected: its air temperatures and coil duties are charted (not a device's empty
/// plots), with the injection on the device below it on the truth strip.
#[test]
fn an_ahu_selected_charts_its_air_and_coils() {
    let scenario = common::root().join("scenarios/datacenter_stuck_at.toml");
    let shot = shoot("ahu", &[scenario.to_str().unwrap(), "--speed", "400", "--select", "ahu-02"]);
    let colour = |name: &str| twinfault_viz::app::SERIES.iter().find(|s| s.0 == name).unwrap().1;
    shot.assert_chart("air", colour("supply °C"));
    shot.assert_chart("coils", colour("cooling kW"));
    assert!(!shot.stderr.contains("chart position:"), "a device's charts for an AHU:\n{}", shot.stderr);
}

#[test]
fn the_window_watches_a_live_server() {
    let server = common::serve();
    common::ingest_jam(&server.base, "BEL-VNT-005");
    let shot = shoot(
        "live",
        &["--connect", &server.base, "--token", common::READ, "--select", "BEL-VNT-005", "--poll-ms", "200"],
    );
    // BEL-VNT-005 (jammed, fed over HTTP) sits at map (250, 455); BEL-VNT-001 (simulated) at (250, 185).
    shot.assert_device("BEL-VNT-005", (250.0, 455.0), Status::Critical);
    shot.assert_device("BEL-VNT-001", (250.0, 185.0), Status::Healthy);
    shot.assert_issue_listed();
}

/// A fleet replayed in-process (C-MAPSS FD001 into `twins/turbofan_fleet.toml`): the member grid
/// shows alarmed engines in red and the others green, and the alarms panel lists one.
#[test]
fn the_window_draws_a_fleet_and_its_alarms() {
    let Some(dir) = common::shared_data("cmapss") else { return };
    let fleet = common::root().join("twins/turbofan_fleet.toml");
    let cycles = dir.join("test_FD001.txt");
    let shot = shoot(
        "fleet",
        &[fleet.to_str().unwrap(), "--cycles", cycles.to_str().unwrap(), "--speed", "200", "--select", "engine-068"],
    );
    // The grid fills the central area: count the squares' colours there.
    let (x0, x1) = (LEFT_PANEL as usize + 10, (WINDOW.0 - RIGHT_PANEL) as usize - 10);
    let (y0, y1) = (TOP_BAR as usize + 10, WINDOW.1 as usize - 10);
    let (mut red, mut green) = (0, 0);
    for y in (y0..y1).step_by(2) {
        for x in (x0..x1).step_by(2) {
            let p = shot.px(x, y);
            red += usize::from(near(p, status_rgb(Status::Critical), 20));
            green += usize::from(near(p, status_rgb(Status::Healthy), 20));
        }
    }
    assert!(red > 200, "no critical member drawn ({red} samples)");
    assert!(green > 2 * red, "most members should still be healthy ({green} green, {red} red samples)");
    shot.assert_issue_listed();
}
