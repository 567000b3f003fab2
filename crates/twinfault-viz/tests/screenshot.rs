//! The real window, rendered under Xvfb with Mesa's software Vulkan (lavapipe), captured with
//! bevy's screenshot API once the injected gear jam has been detected, and checked pixel by pixel.
//! `.ci/run` installs `xvfb` and `mesa-vulkan-drivers`.

use std::path::Path;
use std::process::Command;
use twinfault_core::types::Status;
use twinfault_viz::app::{Layout, RIGHT_PANEL, TOP_BAR, WINDOW, status_rgb};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn near(px: &[u8], want: [u8; 3], tol: i32) -> bool {
    (0..3).all(|k| (i32::from(px[k]) - i32::from(want[k])).abs() <= tol)
}

#[test]
fn the_window_shows_the_critical_device_and_its_issue() {
    let dir = tempfile_dir();
    let shot = dir.join("viz.png");
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_twinfault-viz"))
        .arg(root().join("scenarios/datacenter_gear_jam.toml"))
        .args(["--speed", "400", "--select", "BEL-VNT-003", "--screenshot"])
        .arg(&shot)
        .env("WGPU_BACKEND", "vulkan")
        .status()
        .expect("xvfb-run is not installed: apt-get install xvfb xauth mesa-vulkan-drivers (.ci/run does this)");
    assert!(status.success(), "the visualizer failed under Xvfb");

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("screenshot written")));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!((w, h), (WINDOW.0 as usize, WINDOW.1 as usize));
    let channels = info.line_size / w;
    let px = |x: usize, y: usize| &buf[y * info.line_size + x * channels..y * info.line_size + x * channels + 3];

    // BEL-VNT-003 (the jammed damper) sits at map (730, 185): its marker is critical red.
    let (x, y) = Layout::fit(1200.0, 700.0).map_to_screen(730.0, 185.0);
    let critical = status_rgb(Status::Critical);
    let hits = (-3..=3)
        .flat_map(|dx| (-3..=3).map(move |dy| (x as i64 + dx, y as i64 + dy)))
        .filter(|&(x, y)| near(px(x as usize, y as usize), critical, 30))
        .count();
    assert!(
        hits >= 40,
        "the jammed damper is not drawn critical at ({x:.0}, {y:.0}): {hits} of 49 pixels; centre {:?}",
        px(x as usize, y as usize)
    );
    // A healthy damper (BEL-VNT-001 at map (250, 185)) is not.
    let (hx, hy) = Layout::fit(1200.0, 700.0).map_to_screen(250.0, 185.0);
    assert!(
        near(px(hx as usize, hy as usize), status_rgb(Status::Healthy), 30),
        "healthy damper colour {:?}",
        px(hx as usize, hy as usize)
    );

    // The issues panel (right) lists it: its first rows hold text and a critical dot.
    let x0 = (WINDOW.0 - RIGHT_PANEL) as usize + 4;
    let (y0, y1) = (TOP_BAR as usize + 30, TOP_BAR as usize + 120);
    let mut distinct = std::collections::BTreeSet::new();
    let mut red = 0;
    for y in y0..y1 {
        for x in x0..w - 4 {
            let p = px(x, y);
            distinct.insert((p[0] / 16, p[1] / 16, p[2] / 16));
            if near(p, critical, 40) {
                red += 1;
            }
        }
    }
    assert!(distinct.len() > 8, "the issues panel looks empty ({} colours)", distinct.len());
    assert!(red > 5, "no critical marker in the issues panel");
    // Keep the picture for the README when asked to.
    if let Ok(dest) = std::env::var("TWINFAULT_VIZ_SCREENSHOT") {
        std::fs::copy(&shot, dest).unwrap();
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("twinfault-viz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
