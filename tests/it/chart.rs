//! Run reports as pictures: `twinfault run … --chart` and `twinfault show RUN --chart`, read back
//! pixel by pixel: a lane per AHU and device, the injected fault (truth) and its finding as bars
//! at their times, statuses as colour, and a campus drawn one lane per AHU.

use twinfault::dataset::charts::{TIMELINE, TRUTH_RGB, status_rgb, timeline_lanes};
use twinfault_core::types::Status;

/// The PNG's width, height and RGB pixels.
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width, info.height, buf)
}

struct Picture {
    w: u32,
    h: u32,
    px: Vec<u8>,
    duration_s: f64,
}

impl Picture {
    fn at(&self, x: i32, y: i32) -> [u8; 3] {
        let i = (y as usize * self.w as usize + x as usize) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }
    /// Whether most of the 9×3 pixels around `(x, y)` are `rgb` (labels are drawn over bars).
    fn mostly(&self, x: i32, y: i32, rgb: [u8; 3]) -> bool {
        let near = |p: [u8; 3]| (0..3).all(|k| (i32::from(p[k]) - i32::from(rgb[k])).abs() <= 30);
        let hits = (-4..=4)
            .flat_map(|dx| (-1..=1).map(move |dy| (dx, dy)))
            .filter(|(dx, dy)| near(self.at(x + dx, y + dy)))
            .count();
        hits >= 16
    }

    fn x_of(&self, t: f64) -> i32 {
        let (w, left, right, _, _) = TIMELINE;
        left + ((t / self.duration_s).clamp(0.0, 1.0) * (w as i32 - left - right) as f64) as i32
    }
    /// Top of lane `k`.
    fn lane(&self, k: usize) -> i32 {
        TIMELINE.3 + TIMELINE.4 * k as i32
    }
}

fn run_chart(scenario: &str, extra: &[&str], out: &std::path::Path) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["run", scenario, "-q", "--chart"])
        .arg(out)
        .args(extra)
        .current_dir(crate::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    text
}

#[test]
fn a_run_is_drawn_with_a_lane_per_node_and_its_fault_where_it_happened() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jam.png");
    let store = dir.path().join("store");
    let text = run_chart("scenarios/datacenter_gear_jam.toml", &["--store", store.to_str().unwrap()], &out);
    let l = crate::load("datacenter_gear_jam.toml");
    let lanes = timeline_lanes(&l.facility, 60);
    // The plant, each AHU, each of the 14 devices.
    assert_eq!(lanes.len(), 1 + l.facility.ahus.len() + l.facility.actuators.len());
    assert!(text.contains(&format!("({} lanes)", lanes.len())), "{text}");
    let (w, h, px) = read_png(&out);
    let p = Picture { w, h, px, duration_s: l.scenario.duration.as_secs_f64() };
    assert_eq!((p.w, p.h), (TIMELINE.0, (TIMELINE.3 + TIMELINE.4 * lanes.len() as i32 + 50) as u32));
    let jam = lanes.iter().position(|x| x.status_of == "BEL-VNT-003").unwrap();
    let healthy = lanes.iter().position(|x| x.status_of == "BEL-VNT-001").unwrap();
    let run = crate::run(&l, 1, None);
    let found = run.report.detections.iter().find(|d| d.kind.as_str() == "gear_jam").unwrap();
    // The truth bar from the injection (1800 s) on, in the device's lane only.
    let (y, yh) = (p.lane(jam) + 6, p.lane(healthy) + 6);
    assert!(p.mostly(p.x_of(1900.0), y, TRUTH_RGB));
    assert!(!p.mostly(p.x_of(1700.0), y, TRUTH_RGB), "nothing was injected before 1800 s");
    assert!(!p.mostly(p.x_of(1900.0), yh, TRUTH_RGB));
    // The finding from when it opened, in its severity's colour (critical), below the truth.
    let fy = p.lane(jam) + 19;
    assert!(p.mostly(p.x_of(found.opened_at_s + 60.0), fy, status_rgb(Status::Critical)));
    assert!(!p.mostly(p.x_of(found.opened_at_s - 60.0), fy, status_rgb(Status::Critical)));
    // Status strip: healthy before, critical after; the untouched device healthy throughout.
    let sy = p.lane(jam) + TIMELINE.4 - 5;
    assert!(p.mostly(p.x_of(1000.0), sy, status_rgb(Status::Healthy)));
    assert!(p.mostly(p.x_of(p.duration_s - 60.0), sy, status_rgb(Status::Critical)));
    assert!(p.mostly(p.x_of(p.duration_s - 60.0), p.lane(healthy) + TIMELINE.4 - 5, status_rgb(Status::Healthy)));

    // The stored run draws the same picture.
    let again = dir.path().join("again.png");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["show", "last", "--store", store.to_str().unwrap(), "--chart"])
        .arg(&again)
        .current_dir(crate::root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_png(&again), read_png(&out));
}

#[test]
fn a_campus_is_drawn_one_lane_per_ahu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("campus.png");
    run_chart("scenarios/campus_small.toml", &["--no-store"], &out);
    let l = crate::load("campus_small.toml");
    assert!(l.facility.actuators.len() > 60, "a campus this small is drawn per device: the test shows nothing");
    let lanes = timeline_lanes(&l.facility, 60);
    assert_eq!(lanes.len(), usize::from(l.facility.plant.is_some()) + l.facility.ahus.len());
    let (w, h, px) = read_png(&out);
    assert_eq!((w, h), (TIMELINE.0, (TIMELINE.3 + TIMELINE.4 * lanes.len() as i32 + 50) as u32));
    // Every injection shows as truth in the lane of its device's AHU.
    let p = Picture { w, h, px, duration_s: l.scenario.duration.as_secs_f64() };
    for inj in &l.scenario.injections {
        let k = lanes.iter().position(|x| x.members.contains(&inj.node)).expect("its AHU's lane");
        let t = inj.start.as_secs_f64() + 30.0;
        assert!(p.mostly(p.x_of(t), p.lane(k) + 6, TRUTH_RGB), "{} at {t} s", inj.node);
    }
}
