//! The bevy app: the facility map (bevy 2D sprites) under egui panels (issues, device charts,
//! hierarchy, scenario controls and live fault injection).

use crate::state::{InjectForm, Sim, search};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;
use bevy::render::view::window::screenshot::{Screenshot, save_to_disk};
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use egui_plot::{Line, Plot, PlotPoints};
use std::path::PathBuf;
use twinfault_core::config::NodeRef;
use twinfault_core::types::{FaultKind, Status};

/// Window and panel geometry at start [logical px] (the window and the panels resize; a
/// screenshot taken at start can be checked pixel by pixel).
pub const WINDOW: (f32, f32) = (1600.0, 1000.0);
pub const LEFT_PANEL: f32 = 220.0;
pub const RIGHT_PANEL: f32 = 420.0;
pub const TOP_BAR: f32 = 40.0;
/// The device charts under the map.
pub const BOTTOM_PANEL: f32 = 400.0;

/// Devices listed per AHU in the hierarchy before "… more".
const TREE_ROWS_PER_AHU: usize = 50;

/// The colour of a status, on the map and in the panels.
pub fn status_rgb(s: Status) -> [u8; 3] {
    match s {
        Status::Healthy => [46, 160, 67],
        Status::Warning => [230, 160, 20],
        Status::Critical => [220, 38, 38],
        Status::Offline => [120, 120, 120],
        Status::Unknown => [150, 170, 200],
    }
}

fn color(s: Status) -> Color {
    let [r, g, b] = status_rgb(s);
    Color::srgb_u8(r, g, b)
}

fn zone_color(s: Status) -> Color {
    let [r, g, b] = status_rgb(s);
    Color::srgba_u8(r, g, b, 60)
}

/// Where the map's region of the window is, and the initial view of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Pixels per map unit.
    pub scale: f32,
    /// Camera centre in world coordinates (map x, −map y).
    pub camera: (f32, f32),
}

impl Layout {
    /// Fits a `w × h` map into the window between the panels.
    pub fn fit(map_w: f32, map_h: f32) -> Layout {
        let region_w = WINDOW.0 - LEFT_PANEL - RIGHT_PANEL;
        let region_h = WINDOW.1 - TOP_BAR - BOTTOM_PANEL;
        let scale = (region_w / map_w).min(region_h / map_h) * 0.95;
        // The region's centre on screen, and its offset from the window's centre.
        let cx = LEFT_PANEL + region_w / 2.0 - WINDOW.0 / 2.0;
        let cy = TOP_BAR + region_h / 2.0 - WINDOW.1 / 2.0;
        Layout { scale, camera: (map_w / 2.0 - cx / scale, -map_h / 2.0 + cy / scale) }
    }

    /// The window pixel (logical, from the top left) where map point `(x, y)` is drawn.
    pub fn map_to_screen(&self, x: f32, y: f32) -> (f32, f32) {
        let (wx, wy) = (x, -y);
        ((wx - self.camera.0) * self.scale + WINDOW.0 / 2.0, WINDOW.1 / 2.0 - (wy - self.camera.1) * self.scale)
    }
}

/// A device marker's size on a `map_size` map [map units]: it scales with the map, so a campus of
/// thousands stays readable when zoomed out.
pub fn marker_size(map_size: [f64; 2]) -> f32 {
    (map_size[0].min(map_size[1]) as f32 / 28.0).clamp(4.0, 36.0)
}

/// How the app was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Save a screenshot here once a critical fault is open (and the issues panel lists it),
    /// then exit.
    pub screenshot: Option<PathBuf>,
    /// Inject this fault live (`node:kind:severity`) when the run reaches this time [s].
    pub inject_at: Option<(f64, InjectForm)>,
    /// Select this node at start (its charts fill from the beginning).
    pub select: Option<String>,
    /// Exit after this many frames, printing frame-time statistics.
    pub frames: Option<u32>,
    /// Start zoomed out this many times from the fitted view.
    pub zoom_out: f32,
    /// Ask the agent this once a critical fault is open (a screenshot then waits for the reply).
    pub ask: Option<String>,
}

/// Per-frame CPU time [µs] of the app's drawing systems (map painting, level of detail, picking,
/// egui panels), of stepping the simulation, and of the whole frame.
#[derive(Resource, Default)]
struct FrameStats {
    draw_us: Vec<u64>,
    sim_us: Vec<u64>,
    frame_us: Vec<u64>,
    current_us: u64,
    current_sim_us: u64,
}

#[derive(Resource)]
struct App {
    sim: Sim,
    opts: Options,
    layout: Layout,
    paused: bool,
    /// Simulated seconds owed to the clock.
    owed_s: f64,
    query: String,
    form: InjectForm,
    message: String,
    shot: ShotState,
    /// What the pointer is over on the map.
    hovered: Option<Marker>,
    /// Where the left button went down (for telling a click from a drag) [px].
    press: Option<Vec2>,
    /// The fault whose resolve note is being typed (live mode), and the note.
    resolving: Option<String>,
    note: String,
    /// Per AHU, the map rectangle around it and its devices.
    blocks: Vec<[f64; 4]>,
    /// Device marker size [map units].
    marker: f32,
    /// Whether the map is drawn aggregated (one block per AHU) because it is zoomed out too far.
    aggregated: bool,
    fonts_set: bool,
    /// Index into [`CHART_WINDOWS`].
    window: usize,
    /// The question being typed for the agent.
    ask: String,
    /// Charts whose place was printed (with --screenshot, for the tests).
    charts_reported: std::collections::BTreeSet<String>,
    /// Conversation entries drawn so far (a new one opens the agent panel).
    agent_seen: usize,
}

/// The camera as the map is drawn this frame: world units per pixel, centre, window size.
#[derive(Clone, Copy, Debug)]
struct View {
    scale: f32,
    centre: (f32, f32),
    window: (f32, f32),
}

impl View {
    /// Where map point `(x, y)` is on screen [logical px].
    fn to_screen(self, x: f32, y: f32) -> egui::Pos2 {
        let (wx, wy) = (x, -y);
        egui::pos2(
            (wx - self.centre.0) / self.scale + self.window.0 / 2.0,
            self.window.1 / 2.0 - (wy - self.centre.1) / self.scale,
        )
    }
}

/// Time windows the device charts can show (label, seconds; `None` for all that is kept).
const CHART_WINDOWS: [(&str, Option<f64>); 5] =
    [("1 min", Some(60.0)), ("5 min", Some(300.0)), ("20 min", Some(1200.0)), ("1 h", Some(3600.0)), ("all", None)];

/// Facilities with more devices than this draw one block per AHU once a device marker would be
/// smaller than [`AGGREGATE_BELOW_PX`].
const AGGREGATE_ABOVE_DEVICES: usize = 200;
const AGGREGATE_BELOW_PX: f32 = 4.0;

#[derive(PartialEq)]
enum ShotState {
    None,
    Waiting,
    Taken(u32),
}

/// What a coloured sprite on the map stands for.
#[derive(Component, Clone, Copy)]
enum Marker {
    Device(usize),
    Zone(usize),
    Ahu(usize),
    Plant,
}
#[derive(Component)]
struct Needle(usize);
/// Drawn only when the map is not aggregated.
#[derive(Component)]
struct Detail;
/// An AHU's block, drawn only when the map is aggregated.
#[derive(Component)]
struct Block(usize);

/// The window every view opens in: titled, of the fixed size the screenshot tests read, with egui.
pub(crate) fn window_app(title: &str) -> bevy::app::App {
    let mut app = bevy::app::App::new();
    app.insert_resource(ClearColor(Color::srgb(0.09, 0.10, 0.12)))
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: format!("twinfault · {title}"),
                resolution: (WINDOW.0 as u32, WINDOW.1 as u32).into(),
                resizable: true,
                ..default()
            }),
            ..default()
        }))
        .add_plugins(EguiPlugin::default());
    app
}

pub fn run(mut sim: Sim, opts: Options) {
    if let Some(id) = &opts.select {
        sim.select(id);
    }
    let layout = Layout::fit(sim.layout.map_size[0] as f32, sim.layout.map_size[1] as f32);
    // Device markers scale with the map so a campus of thousands stays readable when zoomed out.
    let marker = marker_size(sim.layout.map_size);
    let blocks = crate::state::ahu_blocks(&sim.layout, f64::from(marker));
    let shot = if opts.screenshot.is_some() { ShotState::Waiting } else { ShotState::None };
    window_app(&sim.title)
        .insert_resource(App {
            sim,
            opts,
            layout,
            paused: false,
            owed_s: 0.0,
            query: String::new(),
            form: InjectForm::default(),
            message: String::new(),
            shot,
            hovered: None,
            press: None,
            resolving: None,
            note: String::new(),
            blocks,
            marker,
            aggregated: false,
            fonts_set: false,
            window: 4,
            ask: String::new(),
            charts_reported: std::collections::BTreeSet::new(),
            agent_seen: 0,
        })
        .add_systems(Startup, setup)
        .init_resource::<FrameStats>()
        .add_systems(Update, (advance, level_of_detail, paint, pan_zoom, pick, screenshot, frame_stats).chain())
        .add_systems(EguiPrimaryContextPass, panels)
        .run();
}

fn setup(mut commands: Commands, app: Res<App>) {
    let l = app.layout;
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scale: app.opts.zoom_out / l.scale,
            ..OrthographicProjection::default_2d()
        }),
        Transform::from_xyz(l.camera.0, l.camera.1, 0.0),
    ));
    let f = &app.sim.layout;
    for (z, zone) in f.zones.iter().enumerate() {
        let [x, y, w, h] = zone.rect.map(|v| v as f32);
        commands.spawn((
            Sprite::from_color(zone_color(Status::Healthy), Vec2::new(w, h)),
            Transform::from_xyz(x + w / 2.0, -(y + h / 2.0), 0.0),
            Marker::Zone(z),
            Detail,
        ));
    }
    for (h, b) in app.blocks.iter().enumerate() {
        let [x, y, w, h_] = b.map(|v| v as f32);
        commands.spawn((
            Sprite::from_color(zone_color(Status::Healthy), Vec2::new(w, h_)),
            Transform::from_xyz(x + w / 2.0, -(y + h_ / 2.0), 0.5),
            Block(h),
            Visibility::Hidden,
        ));
    }
    let size = app.marker;
    for (i, a) in f.actuators.iter().enumerate() {
        let [x, y] = a.position.map(|v| v as f32);
        commands.spawn((
            Sprite::from_color(color(Status::Healthy), Vec2::splat(size)),
            Transform::from_xyz(x, -y, 2.0),
            Marker::Device(i),
            Detail,
        ));
        // The position needle: a bar whose length follows the output position.
        commands.spawn((
            Sprite::from_color(Color::srgb(0.95, 0.95, 0.95), Vec2::new(size, size * 0.18)),
            Transform::from_xyz(x, -y - size * 0.75, 3.0),
            Needle(i),
            Detail,
        ));
    }
    // Lines from each AHU to its devices and from the plant to each AHU.
    let line = |commands: &mut Commands, a: [f64; 2], b: [f64; 2], width: f32, detail: bool| {
        let (a, b) = (Vec2::new(a[0] as f32, -a[1] as f32), Vec2::new(b[0] as f32, -b[1] as f32));
        let d = b - a;
        let mut e = commands.spawn((
            Sprite::from_color(Color::srgba(0.8, 0.8, 0.85, 0.25), Vec2::new(d.length(), width)),
            Transform::from_xyz((a.x + b.x) / 2.0, (a.y + b.y) / 2.0, 1.0)
                .with_rotation(Quat::from_rotation_z(d.y.atan2(d.x))),
        ));
        if detail {
            e.insert(Detail);
        }
    };
    let width = 1.5 / l.scale;
    for ahu in &f.ahus {
        for &c in &ahu.children {
            line(&mut commands, ahu.position, f.actuators[c].position, width, true);
        }
        if let Some(p) = &f.plant {
            line(&mut commands, p.position, ahu.position, width * 2.0, false);
        }
    }
    if let Some(p) = &f.plant {
        let [x, y] = p.position.map(|v| v as f32);
        commands.spawn((
            Sprite::from_color(color(Status::Healthy), Vec2::new(size * 3.0, size * 1.2)),
            Transform::from_xyz(x, -y, 2.0),
            Marker::Plant,
        ));
    }
    for (h, ahu) in f.ahus.iter().enumerate() {
        let [x, y] = ahu.position.map(|v| v as f32);
        commands.spawn((
            Sprite::from_color(color(Status::Healthy), Vec2::new(size * 2.0, size * 1.2)),
            Transform::from_xyz(x, -y, 2.0),
            Marker::Ahu(h),
        ));
    }
}

/// Steps the simulation at `speed` × the wall clock (never more than 2000 epochs a frame).
fn advance(time: Res<Time>, mut app: ResMut<App>, mut stats: ResMut<FrameStats>) {
    let _t = Timed::new(&mut stats.current_sim_us);
    // The server's updates (live), or the in-process agent's replies and questions of the run.
    app.sim.poll();
    if let Some(m) = app.sim.messages.pop() {
        app.message = m;
        app.sim.messages.clear();
    }
    if app.sim.is_live() {
        return;
    }
    if app.paused || app.sim.finished() {
        return;
    }
    let speed = app.opts.speed;
    app.owed_s += time.delta_secs_f64() * speed;
    let period = app.sim.control_period_s();
    let mut n = 0;
    while app.owed_s >= period && n < 2000 {
        app.owed_s -= period;
        let now = app.sim.now().as_secs_f64();
        if let Some((at, form)) = app.opts.inject_at.clone()
            && now >= at
        {
            app.opts.inject_at = None;
            let msg = match app.sim.inject(&form) {
                Ok(id) => format!("injected {id}: {} {} {}", form.kind, form.node, form.severity),
                Err(e) => format!("injection refused: {e}"),
            };
            app.message = msg;
        }
        app.sim.step();
        n += 1;
    }
    if n == 2000 {
        app.owed_s = 0.0;
    }
}

/// Switches between drawing every device and one block per AHU as the zoom crosses the threshold.
fn level_of_detail(
    mut app: ResMut<App>,
    camera: Query<&Projection, With<Camera2d>>,
    mut detail: Query<&mut Visibility, (With<Detail>, Without<Block>)>,
    mut blocks: Query<&mut Visibility, (With<Block>, Without<Detail>)>,
    mut stats: ResMut<FrameStats>,
) {
    let _t = Timed::new(&mut stats.current_us);
    let Ok(Projection::Orthographic(o)) = camera.single() else { return };
    let aggregated =
        app.sim.layout.actuators.len() > AGGREGATE_ABOVE_DEVICES && app.marker / o.scale < AGGREGATE_BELOW_PX;
    if aggregated == app.aggregated {
        return;
    }
    app.aggregated = aggregated;
    let (on, off) = if aggregated {
        (Visibility::Hidden, Visibility::Inherited)
    } else {
        (Visibility::Inherited, Visibility::Hidden)
    };
    for mut v in &mut detail {
        *v = on;
    }
    for mut v in &mut blocks {
        *v = off;
    }
}

fn paint(
    app: Res<App>,
    mut marks: Query<(&Marker, &mut Sprite), Without<Block>>,
    mut needles: Query<(&Needle, &mut Transform)>,
    mut blocks: Query<(&Block, &mut Sprite), Without<Marker>>,
    mut stats: ResMut<FrameStats>,
) {
    let _t = Timed::new(&mut stats.current_us);
    let sim = &app.sim;
    let f = &sim.layout;
    let (devices, zones) = sim.frame_statuses();
    if app.aggregated {
        // One block per AHU, coloured by its worst device; devices and zones are hidden.
        let counts = crate::state::ahu_counts(f, &devices);
        for (b, mut s) in &mut blocks {
            let [r, g, b_] = status_rgb(crate::state::worst(&counts[b.0]));
            let c = Color::srgba_u8(r, g, b_, 150);
            if s.color != c {
                s.color = c;
            }
        }
        for (m, mut s) in &mut marks {
            let c = match *m {
                Marker::Ahu(h) => color(sim.status(&f.ahus[h].id)),
                Marker::Plant => color(f.plant.as_ref().map_or(Status::Healthy, |p| sim.status(&p.id))),
                _ => continue,
            };
            if s.color != c {
                s.color = c;
            }
        }
        return;
    }
    for (m, mut s) in &mut marks {
        let c = match *m {
            Marker::Device(i) => color(devices[i]),
            Marker::Zone(z) => zone_color(zones[z]),
            Marker::Ahu(h) => color(sim.status(&f.ahus[h].id)),
            Marker::Plant => color(f.plant.as_ref().map_or(Status::Healthy, |p| sim.status(&p.id))),
        };
        // Only touch what changed: bevy re-extracts changed sprites only.
        if s.color != c {
            s.color = c;
        }
    }
    for (n, mut t) in &mut needles {
        let x = (sim.openings[n.0] / 100.0).clamp(0.02, 1.0) as f32;
        if (t.scale.x - x).abs() > 0.005 {
            t.scale.x = x;
        }
    }
}

fn pan_zoom(
    mut contexts: EguiContexts,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut camera: Query<(&mut Transform, &mut Projection), With<Camera2d>>,
) {
    if contexts.ctx_mut().is_ok_and(|c| c.is_pointer_over_egui()) {
        return;
    }
    let Ok((mut t, mut p)) = camera.single_mut() else { return };
    let Projection::Orthographic(o) = &mut *p else { return };
    if scroll.delta.y != 0.0 {
        o.scale = (o.scale * (1.0 - 0.1 * scroll.delta.y.signum())).clamp(0.01, 1000.0);
    }
    if buttons.pressed(MouseButton::Left) || buttons.pressed(MouseButton::Right) {
        t.translation.x -= motion.delta.x * o.scale;
        t.translation.y += motion.delta.y * o.scale;
    }
}

/// Adds the time until it is dropped to a counter [µs].
struct Timed<'a> {
    start: std::time::Instant,
    into: &'a mut u64,
}

impl<'a> Timed<'a> {
    fn new(into: &'a mut u64) -> Timed<'a> {
        Timed { start: std::time::Instant::now(), into }
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        *self.into += self.start.elapsed().as_micros() as u64;
    }
}

/// Collects the frame's figures; with `--frames N`, prints them and exits after N frames.
fn frame_stats(time: Res<Time>, app: Res<App>, mut stats: ResMut<FrameStats>, mut exit: MessageWriter<AppExit>) {
    let us = std::mem::take(&mut stats.current_us);
    stats.draw_us.push(us);
    let us = std::mem::take(&mut stats.current_sim_us);
    stats.sim_us.push(us);
    stats.frame_us.push(time.delta().as_micros() as u64);
    let Some(n) = app.opts.frames else { return };
    if stats.draw_us.len() as u32 >= n {
        // Skip the first frames (start-up, shader compilation).
        let skip = (n as usize / 5).min(30);
        let pct = |v: &[u64], p: f64| {
            let mut v: Vec<u64> = v[skip..].to_vec();
            v.sort_unstable();
            v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
        };
        println!(
            "{} devices{}, {} frames: drawing (map, level of detail, picking, egui panels) median {:.2} ms, p95 {:.2} ms; simulation median {:.2} ms, p95 {:.2} ms; whole frame median {:.1} ms, p95 {:.1} ms",
            app.sim.layout.actuators.len(),
            if app.aggregated { " (aggregated)" } else { "" },
            n as usize - skip,
            pct(&stats.draw_us, 0.5),
            pct(&stats.draw_us, 0.95),
            pct(&stats.sim_us, 0.5),
            pct(&stats.sim_us, 0.95),
            pct(&stats.frame_us, 0.5),
            pct(&stats.frame_us, 0.95)
        );
        exit.write(AppExit::Success);
    }
}

/// Hover and click on the map: the device (or zone) under the pointer; a click (not a drag) selects.
fn pick(
    mut contexts: EguiContexts,
    mut app: ResMut<App>,
    buttons: Res<ButtonInput<MouseButton>>,
    windows: Query<&Window, With<bevy::window::PrimaryWindow>>,
    camera: Query<(&Camera, &GlobalTransform, &Projection), With<Camera2d>>,
) {
    let over_egui = contexts.ctx_mut().is_ok_and(|c| c.is_pointer_over_egui());
    let (Ok(window), Ok((cam, cam_t, proj))) = (windows.single(), camera.single()) else { return };
    let Some(cursor) = window.cursor_position().filter(|_| !over_egui) else {
        app.hovered = None;
        return;
    };
    let Ok(world) = cam.viewport_to_world_2d(cam_t, cursor) else { return };
    let (x, y) = (world.x as f64, -world.y as f64);
    let f = std::sync::Arc::clone(&app.sim.layout);
    // A marker is hit within its half size, or at least a few pixels when zoomed out.
    let px = match proj {
        Projection::Orthographic(o) => o.scale as f64,
        _ => 1.0,
    };
    let reach = (f.map_size[0].min(f.map_size[1]) / 56.0).clamp(2.0, 18.0).max(6.0 * px);
    app.hovered = if app.aggregated {
        // Zoomed out: the blocks stand for their AHUs.
        app.blocks.iter().position(|b| x >= b[0] && x <= b[0] + b[2] && y >= b[1] && y <= b[1] + b[3]).map(Marker::Ahu)
    } else {
        crate::state::hit_test(&f, x, y, reach).map(|h| match h {
            crate::state::MapHit::Device(i) => Marker::Device(i),
            crate::state::MapHit::Ahu(i) => Marker::Ahu(i),
            crate::state::MapHit::Zone(i) => Marker::Zone(i),
        })
    };
    if buttons.just_pressed(MouseButton::Left) {
        app.press = Some(cursor);
    }
    if buttons.just_released(MouseButton::Left) {
        let click = app.press.take().is_some_and(|p| p.distance(cursor) < 4.0);
        let target = match app.hovered {
            Some(Marker::Device(i)) => Some(f.actuators[i].id.clone()),
            Some(Marker::Ahu(h)) => Some(f.ahus[h].id.clone()),
            _ => None,
        };
        if let (true, Some(id)) = (click, target) {
            app.sim.select(&id);
            if f.actuators.iter().any(|a| a.id == id) {
                app.form.node = id;
            }
        }
    }
}

fn screenshot(mut commands: Commands, mut app: ResMut<App>, mut exit: MessageWriter<AppExit>) {
    // A critical fault open, the issues panel has drawn it, and its device is drawn critical (a
    // live server's statuses follow its findings by up to an epoch).
    let critical_shown = |sim: &Sim| {
        sim.issues().iter().any(|i| {
            i.severity == twinfault_core::types::Severity::Critical && sim.status(i.target()) == Status::Critical
        })
    };
    if app.opts.ask.is_some() && critical_shown(&app.sim) {
        let q = app.opts.ask.take().unwrap_or_default();
        if let Err(e) = app.sim.ask(&q) {
            app.message = format!("the agent was not asked: {e}");
        }
    }
    let Some(path) = app.opts.screenshot.clone() else { return };
    match app.shot {
        ShotState::Waiting => {
            // Take the shot then (after the agent's reply, when it was asked).
            let shown = critical_shown(&app.sim);
            if shown && app.sim.agent_waiting() > 0 {
                app.paused = true;
            } else if shown {
                app.paused = true;
                app.shot = ShotState::Taken(0);
            } else if app.sim.finished() {
                eprintln!("the run ended without a critical fault; no screenshot");
                exit.write(AppExit::error());
            }
        }
        ShotState::Taken(n) => {
            // Let egui lay out and draw the paused state for a few frames first.
            if n == 10 {
                commands.spawn(Screenshot::primary_window()).observe(save_to_disk(path.clone()));
                // What the agent panel holds (for the tests).
                if let Some(with) = app.sim.agent_answers_with() {
                    eprintln!("agent panel: answers with {with}");
                }
                for (who, text) in &app.sim.agent {
                    eprintln!("agent panel: {who}: {text}");
                }
            }
            if n > 10 && path.exists() && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) && n > 30 {
                exit.write(AppExit::Success);
            }
            if n > 600 {
                eprintln!("the screenshot was not written");
                exit.write(AppExit::error());
            }
            app.shot = ShotState::Taken(n + 1);
        }
        ShotState::None => {}
    }
}

/// A status dot, painted (the default fonts have no bullet glyph).
fn status_label(ui: &mut egui::Ui, s: Status) {
    let [r, g, b] = status_rgb(s);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.0, egui::Color32::from_rgb(r, g, b));
}

fn panels(
    mut contexts: EguiContexts,
    mut app: ResMut<App>,
    mut stats: ResMut<FrameStats>,
    camera: Query<(&Transform, &Projection), With<Camera2d>>,
    windows: Query<&Window, With<bevy::window::PrimaryWindow>>,
) -> Result {
    let _t = Timed::new(&mut stats.current_us);
    let view = match (camera.single(), windows.single()) {
        (Ok((t, Projection::Orthographic(o))), Ok(w)) => {
            View { scale: o.scale, centre: (t.translation.x, t.translation.y), window: (w.width(), w.height()) }
        }
        _ => View { scale: 1.0, centre: (0.0, 0.0), window: WINDOW },
    };
    let ctx = contexts.ctx_mut()?;
    if !app.fonts_set {
        // DejaVu Sans Condensed (assets/fonts) first: narrow enough for the panels, with the
        // symbols egui's default font lacks.
        ctx.add_font(egui::epaint::text::FontInsert::new(
            "DejaVuSansCondensed",
            egui::FontData::from_static(include_bytes!("../../../assets/fonts/DejaVuSansCondensed.ttf")),
            vec![egui::epaint::text::InsertFontFamily {
                family: egui::FontFamily::Proportional,
                priority: egui::epaint::text::FontPriority::Highest,
            }],
        ));
        app.fonts_set = true;
    }
    let mut root = egui::Ui::new(
        ctx.clone(),
        "root".into(),
        egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(ctx.viewport_rect()),
    );
    let app = &mut *app;

    // Tooltip for what the pointer is over on the map.
    if let (Some(m), Some(pos)) = (app.hovered, ctx.pointer_hover_pos()) {
        let f = &app.sim.layout;
        let (title, detail) = match m {
            Marker::Device(i) => {
                let a = &f.actuators[i];
                let s = app.sim.status(&a.id);
                (
                    format!("{}  {}", a.id, s),
                    format!(
                        "{} {}, under {}, output {:.1} %",
                        a.model,
                        a.role.as_str(),
                        f.ahus[a.ahu].id,
                        app.sim.openings[i]
                    ),
                )
            }
            Marker::Ahu(h) => {
                let n = f.ahus[h].children.iter().map(|&c| app.sim.status(&f.actuators[c].id) as usize);
                let mut counts = [0usize; Status::COUNT];
                for k in n {
                    counts[k] += 1;
                }
                let devices = format!(
                    "{} devices: {} critical, {} warning, {} offline",
                    f.ahus[h].children.len(),
                    counts[Status::Critical as usize],
                    counts[Status::Warning as usize],
                    counts[Status::Offline as usize]
                );
                let d = &f.ahus[h].description;
                (
                    format!("{}  {}", f.ahus[h].id, app.sim.status(&f.ahus[h].id)),
                    if d.is_empty() { devices } else { format!("{d}\n{devices}") },
                )
            }
            Marker::Zone(z) => (format!("{}  {}", f.zones[z].id, app.sim.zone_status(z)), f.zones[z].name.clone()),
            Marker::Plant => (String::new(), String::new()),
        };
        egui::Area::new(egui::Id::new("map-tooltip"))
            .fixed_pos(pos + egui::vec2(14.0, 14.0))
            .order(egui::Order::Tooltip)
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.strong(title);
                    ui.small(detail);
                });
            });
    }

    egui::Panel::top("controls").exact_size(TOP_BAR).show(&mut root, |ui| {
        ui.horizontal_centered(|ui| {
            if app.sim.is_live() {
                // A live building runs on its own clock.
                ui.monospace(format!("{}  {}", app.sim.title, app.sim.time_label(app.sim.now())));
                if !app.sim.reachable {
                    ui.colored_label(egui::Color32::from_rgb(220, 38, 38), "server unreachable, retrying");
                }
            } else {
                let label = if app.paused { "play" } else { "pause" };
                if ui.button(label).clicked() {
                    app.paused = !app.paused;
                }
                if ui.button("step").clicked() {
                    app.sim.step();
                }
                ui.label("speed");
                ui.add(egui::Slider::new(&mut app.opts.speed, 1.0..=1000.0).logarithmic(true).suffix("×"));
                ui.separator();
                // The run's clock, and how far into the run (what scenario files count in).
                let now = app.sim.now();
                ui.monospace(format!("{}  {}  run {now}", app.sim.title, app.sim.time_label(now)));
                if app.sim.finished() {
                    ui.label("(end)");
                }
            }
            // The time slider: the map and the issues as they were then (live: since this window
            // connected; the server keeps no past statuses).
            if let Some((from, to)) = app.sim.history_range() {
                let mut t = app.sim.shown_at().unwrap_or(to);
                ui.label("history").on_hover_text(if app.sim.is_live() {
                    "back through what this window has watched since it connected"
                } else {
                    "back through the run"
                });
                if ui.add(egui::Slider::new(&mut t, from..=to).show_value(false)).changed() {
                    app.sim.scrub_to(Some(t));
                }
                if let Some(at) = app.sim.shown_at() {
                    ui.colored_label(
                        egui::Color32::from_rgb(230, 160, 20),
                        format!("showing {}", app.sim.clock().label(at)),
                    );
                    if ui.button("now").clicked() {
                        app.sim.scrub_to(None);
                    }
                }
            }
            ui.separator();
            for s in [Status::Healthy, Status::Warning, Status::Critical, Status::Offline, Status::Unknown] {
                status_label(ui, s);
                ui.label(s.as_str());
            }
        });
    });

    egui::Panel::left("tree").default_size(LEFT_PANEL).resizable(true).show(&mut root, |ui| {
        ui.heading("Hierarchy");
        ui.add(egui::TextEdit::singleline(&mut app.query).hint_text("search id"));
        let f = std::sync::Arc::clone(&app.sim.layout);
        let matching: std::collections::BTreeSet<&str> = search(f.node_ids(), &app.query).into_iter().collect();
        egui::ScrollArea::vertical().show(ui, |ui| {
            if let Some(p) = &f.plant {
                ui.horizontal(|ui| {
                    status_label(ui, app.sim.status(&p.id));
                    ui.label(&p.id);
                });
            }
            // Small facilities open every AHU; a campus opens them on demand (egui lays out
            // only what is open) or when a search narrows the list.
            let open = f.ahus.len() <= 4 || !app.query.trim().is_empty();
            for ahu in &f.ahus {
                let status = app.sim.status(&ahu.id);
                let header = egui::CollapsingHeader::new(egui::RichText::new(&ahu.id).color({
                    let [r, g, b] = status_rgb(status);
                    egui::Color32::from_rgb(r, g, b)
                }))
                .id_salt(&ahu.id)
                .default_open(f.ahus.len() <= 4)
                .open(if open { Some(true) } else { None });
                header.show(ui, |ui| {
                    if ui
                        .selectable_label(
                            app.sim.selected.as_deref() == Some(ahu.id.as_str()),
                            format!("select {}", ahu.id),
                        )
                        .clicked()
                    {
                        app.sim.select(&ahu.id);
                    }
                    for (shown, &c) in
                        ahu.children.iter().filter(|&&c| matching.contains(f.actuators[c].id.as_str())).enumerate()
                    {
                        let id = &f.actuators[c].id;
                        // A large AHU lists its first devices; search finds the rest.
                        if shown == TREE_ROWS_PER_AHU {
                            ui.small(format!("… {} more (search)", ahu.children.len() - TREE_ROWS_PER_AHU));
                            break;
                        }
                        ui.horizontal(|ui| {
                            status_label(ui, app.sim.status(id));
                            if ui.selectable_label(app.sim.selected.as_deref() == Some(id.as_str()), id).clicked() {
                                app.sim.select(id);
                                app.form.node = id.clone();
                            }
                        });
                    }
                });
            }
        });
    });

    egui::Panel::right("side").default_size(RIGHT_PANEL).resizable(true).show(&mut root, |ui| {
        ui.heading(format!("Issues ({})", app.sim.issues().len()));
        egui::ScrollArea::vertical().id_salt("issues").max_height(420.0).show(ui, |ui| {
            for issue in app.sim.issues() {
                let sev = match issue.severity {
                    twinfault_core::types::Severity::Critical => Status::Critical,
                    twinfault_core::types::Severity::Warning => Status::Warning,
                };
                let text = format!(
                    "{}  {}  {:.2}  since {}",
                    issue.kind,
                    issue.target(),
                    issue.confidence,
                    app.sim.time_label(issue.opened_at)
                );
                ui.horizontal(|ui| {
                    status_label(ui, sev);
                    if ui.selectable_label(app.sim.selected.as_deref() == Some(issue.target()), text).clicked() {
                        let t = issue.target().to_string();
                        app.sim.select(&t);
                        app.form.node = t;
                    }
                });
                ui.small(&issue.summary);
                ui.small(format!("Action: {}", issue.action));
                // An operator resolves a fault with a note of what was done.
                if let Some(id) = issue.id.as_deref() {
                    if app.resolving.as_deref() == Some(id) {
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::TextEdit::singleline(&mut app.note)
                                    .desired_width(220.0)
                                    .hint_text("note: what was done"),
                            );
                            if ui.button("resolve").clicked() {
                                match app.sim.resolve(id, &app.note) {
                                    Ok(m) => {
                                        app.message = m;
                                        app.resolving = None;
                                        app.note.clear();
                                    }
                                    Err(e) => app.message = e,
                                }
                            }
                            if ui.button("cancel").clicked() {
                                app.resolving = None;
                            }
                        });
                    } else if ui.small_button("resolve…").clicked() {
                        app.resolving = Some(id.to_string());
                    }
                }
                ui.separator();
            }
        });
        ui.separator();
        match app.sim.selected.clone() {
            Some(id) => {
                ui.horizontal(|ui| {
                    status_label(ui, app.sim.status(&id));
                    ui.strong(&id);
                    ui.label(app.sim.status(&id).as_str());
                });
                let history: Vec<String> = app
                    .sim
                    .fault_history
                    .iter()
                    .filter(|h| h.1 == id)
                    .rev()
                    .take(6)
                    .map(|h| format!("{}  {} {:?}", app.sim.time_label(h.0), h.2, h.3))
                    .collect();
                for h in history {
                    ui.small(h);
                }
            }
            None => {
                ui.label("Select a device on the tree, the map or an issue.");
            }
        }
        ui.separator();
        ui.strong("Inject a fault");
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut app.form.node).desired_width(110.0).hint_text("node"));
            egui::ComboBox::from_id_salt("kind").selected_text(app.form.kind.as_str()).show_ui(ui, |ui| {
                for k in FaultKind::ALL.iter().filter(|k| k.injectable()) {
                    ui.selectable_value(&mut app.form.kind, *k, k.as_str());
                }
            });
            ui.add(egui::TextEdit::singleline(&mut app.form.severity).desired_width(40.0));
            if ui.button("inject").clicked() {
                let form = app.form.clone();
                app.message = match app.sim.inject(&form) {
                    Ok(m) | Err(m) => m,
                };
            }
        });
        if !app.message.is_empty() {
            ui.small(&app.message);
        }
        agent_panel(ui, app);
    });
    egui::Panel::bottom("device").default_size(BOTTOM_PANEL).resizable(true).show(&mut root, |ui| {
        device_charts(ui, app);
    });
    // What is left is the map's: its names, decluttered.
    map_names(ctx, root.available_rect_before_wrap(), app, view);
    Ok(())
}

/// One plot: its name, its lines, whether it is on a 0-100 % scale.
type Chart<'a> = (&'a str, Vec<&'a str>, bool);
/// One point of a chart: its time [s] and a value per line.
type Row = (f64, Vec<f64>);

/// A device's chart lines, and an AHU's.
const DEVICE_SERIES: [&str; 6] =
    ["position %", "setpoint %", "torque N·m", "power W", "temperature °C", "signal quality"];
const AHU_SERIES: [&str; 7] =
    ["outdoor °C", "return °C", "mixed °C", "supply °C", "supply setpoint °C", "cooling kW", "heating kW"];

/// A line's colour in the charts (also its legend's, drawn above the plot).
pub const SERIES: [(&str, [u8; 3]); 13] = [
    ("position %", [70, 150, 240]),
    ("setpoint %", [200, 200, 200]),
    ("torque N·m", [240, 140, 60]),
    ("power W", [230, 200, 70]),
    ("temperature °C", [220, 90, 160]),
    ("signal quality", [110, 200, 180]),
    ("outdoor °C", [150, 150, 160]),
    ("return °C", [230, 200, 70]),
    ("mixed °C", [110, 200, 180]),
    ("supply °C", [70, 150, 240]),
    ("supply setpoint °C", [200, 200, 200]),
    ("cooling kW", [90, 170, 250]),
    ("heating kW", [240, 110, 60]),
];

fn series_colour(name: &str) -> egui::Color32 {
    let [r, g, b] = SERIES.iter().find(|s| s.0 == name).map_or([200, 200, 200], |s| s.1);
    egui::Color32::from_rgb(r, g, b)
}

/// Minimum height of one device chart [px].
pub const CHART_MIN_HEIGHT: f32 = 120.0;

/// The selected device's charts: a plot per signal, legends above them, clock time on a shared
/// axis, the twin's findings as shaded bands, and the injected faults (the truth) on their own
/// strip above.
fn device_charts(ui: &mut egui::Ui, app: &mut App) {
    let Some(id) = app.sim.selected.clone() else {
        ui.label("Select a device on the tree, the map or an issue to chart it.");
        return;
    };
    ui.horizontal(|ui| {
        status_label(ui, app.sim.status(&id));
        ui.strong(&id);
        ui.label("window");
        egui::ComboBox::from_id_salt("window").selected_text(CHART_WINDOWS[app.window].0).show_ui(ui, |ui| {
            for (k, (label, _)) in CHART_WINDOWS.iter().enumerate() {
                ui.selectable_value(&mut app.window, k, *label);
            }
        });
        ui.label("export window");
        for ext in ["csv", "parquet"].into_iter().filter(|_| !matches!(app.sim.layout.node(&id), Some(NodeRef::Ahu(_))))
        {
            if ui
                .button(ext.to_uppercase())
                .on_hover_text("the charted samples, labelled, in the dataset's telemetry columns")
                .clicked()
            {
                let x = app.sim.shown_at().unwrap_or(if app.sim.is_live() { 0.0 } else { app.sim.now().as_secs_f64() });
                let stamp = app.sim.clock().label(x).replace(':', "");
                let path = PathBuf::from(format!("twinfault-{id}-{stamp}.{ext}"));
                app.message = match app.sim.export_window(CHART_WINDOWS[app.window].1, &path) {
                    Ok(n) => format!("wrote {n} labelled samples to {}", path.display()),
                    Err(e) => e,
                };
            }
        }
        ui.small("shaded: the twin's findings; purple strip: injected faults (truth)");
    });
    let origin = app.sim.chart_origin_s();
    let window = CHART_WINDOWS[app.window].1;
    let clock = app.sim.clock();
    // Scrubbed back: the charts end where the map and the issues are.
    let upto = app.sim.shown_at().map_or(f64::INFINITY, |t| t + origin);
    // The points as (time, a value per line of `names`): a device's signals, or an AHU's air
    // temperatures and coil duties.
    let is_ahu = matches!(app.sim.layout.node(&id), Some(NodeRef::Ahu(_)));
    if is_ahu && app.sim.is_live() {
        ui.label("A live server keeps no AHU trends: select one of its devices to chart it.");
        return;
    }
    let (names, plots, pts): (&[&str], Vec<Chart>, Vec<Row>) = if is_ahu {
        let last = app.sim.ahu_chart.back().map_or(0.0, |p| p.0);
        let from = window.map_or(f64::MIN, |w| last - w);
        let pts = app
            .sim
            .ahu_chart
            .iter()
            .filter(|(t, _)| *t >= from && *t <= upto)
            .map(|(t, p)| {
                let v = [p.outdoor_air_c, p.return_air_c, p.mixed_air_c, p.supply_air_c, p.supply_air_setpoint_c];
                (*t, v.into_iter().chain([p.cooling_kw, p.heating_kw]).collect())
            })
            .collect();
        let plots = vec![("air", AHU_SERIES[..5].to_vec(), false), ("coils", AHU_SERIES[5..].to_vec(), false)];
        (&AHU_SERIES, plots, pts)
    } else {
        let pts = app
            .sim
            .chart_window(window)
            .filter(|p| p.t_s <= upto)
            .map(|p| {
                let v = [p.position_pct, p.setpoint_pct, p.torque_nm, p.power_w, p.temperature_c, p.signal_quality];
                (p.t_s, v.to_vec())
            })
            .collect();
        let plots = vec![
            ("position", vec!["position %", "setpoint %"], true),
            ("torque", vec!["torque N·m"], false),
            ("power", vec!["power W"], false),
            ("temperature", vec!["temperature °C"], false),
            ("signal", vec!["signal quality"], false),
        ];
        (&DEVICE_SERIES, plots, pts)
    };
    let value = |line: &str, p: &Row| names.iter().position(|n| *n == line).map_or(f64::NAN, |k| p.1[k]);
    let (t0, t1) = (
        pts.first().map_or(0.0, |p| p.0 - origin),
        pts.last().map_or(1.0, |p| p.0 - origin).max(pts.first().map_or(0.0, |p| p.0 - origin) + 1.0),
    );
    // The twin's findings on this device (an AHU: on it and its devices): (from, to, kind), open
    // ones to the chart's end.
    let layout = std::sync::Arc::clone(&app.sim.layout);
    let below = |node: &str| {
        node == id
            || (is_ahu
                && matches!(layout.node(node), Some(NodeRef::Actuator(i)) if layout.ahus[layout.actuators[i].ahu].id == id))
    };
    let mut bands: Vec<(f64, f64, FaultKind)> = Vec::new();
    let mut open: Vec<(f64, FaultKind)> = Vec::new();
    for h in app.sim.fault_history.iter().filter(|h| below(&h.1)) {
        let t = h.0.as_secs_f64() - origin;
        match h.3 {
            twinfault_core::detect::Change::Opened => open.push((t, h.2)),
            twinfault_core::detect::Change::Resolved => {
                if let Some(k) = open.iter().position(|o| o.1 == h.2) {
                    let (from, kind) = open.remove(k);
                    bands.push((from, t, kind));
                }
            }
            twinfault_core::detect::Change::Updated => {}
        }
    }
    bands.extend(open.into_iter().map(|(from, kind)| (from, t1.max(from), kind)));
    let truth: Vec<(f64, f64, String)> = app
        .sim
        .truth
        .iter()
        .filter(|x| below(&x.node))
        .map(|x| {
            let on = if x.node == id { String::new() } else { format!(" ({})", x.node) };
            (
                x.start_s - origin,
                x.end_s.map_or(t1, |e| e - origin),
                format!("injected {} {:.1}{on}", x.kind, x.severity),
            )
        })
        .collect();
    let link = egui::Id::new("device-charts");
    let fmt = move |m: egui_plot::GridMark, _: &std::ops::RangeInclusive<f64>| clock.label(m.value);
    let offset = clock.offset_s();
    // The truth strip.
    Plot::new("truth")
        .height(34.0)
        .show_axes([false, false])
        .show_grid(false)
        .allow_scroll(false)
        .link_axis(link, [true, false])
        .include_x(t0)
        .include_x(t1)
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |p| {
            for (from, to, what) in &truth {
                p.span(
                    egui_plot::Span::new(what.clone(), *from..=*to)
                        .fill(egui::Color32::from_rgba_unmultiplied(120, 80, 170, 170))
                        .border_width(0.0),
                );
            }
        });
    let cols = 3usize;
    let rows = plots.len().div_ceil(cols);
    let gap = ui.spacing().item_spacing;
    let legend_h = 18.0;
    let height = ((ui.available_height() - rows as f32 * (legend_h + gap.y * 2.0)) / rows as f32).max(CHART_MIN_HEIGHT);
    let width = (ui.available_width() - gap.x * (cols as f32 - 1.0)) / cols as f32;
    egui::ScrollArea::vertical().id_salt("charts").show(ui, |ui| {
        for row in plots.chunks(cols) {
            ui.horizontal_top(|ui| {
                for (name, lines, percent) in row {
                    ui.vertical(|ui| {
                        ui.set_width(width);
                        // The legend, outside the plot.
                        ui.horizontal_wrapped(|ui| {
                            for l in lines {
                                ui.colored_label(series_colour(l), format!("━ {l}"));
                            }
                        });
                        let mut plot = Plot::new(*name)
                            .height(height)
                            .width(width)
                            .link_axis(link, [true, false])
                            .x_axis_formatter(fmt)
                            .x_grid_spacer(Box::new(move |input| clock_marks(input, offset)))
                            .include_x(t0)
                            .include_x(t1);
                        if *percent {
                            plot = plot.include_y(0.0).include_y(100.0);
                        } else {
                            // A flat signal (a temperature that holds 27.1 °C) still gets a
                            // readable scale around its value.
                            let (lo, hi) = pts
                                .iter()
                                .flat_map(|c| lines.iter().map(|l| value(l, c)))
                                .filter(|v| v.is_finite())
                                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                            if lo <= hi {
                                let pad = ((hi - lo) * 0.05).max(min_span(name) / 2.0);
                                plot = plot.include_y(lo - pad).include_y(hi + pad);
                            }
                        }
                        // A signal the device never reported (a gateway without signal quality)
                        // says so rather than leaving an empty plot that reads as zero.
                        let reported = pts.iter().any(|c| lines.iter().any(|l| value(l, c).is_finite()));
                        let r = plot.show(ui, |p| {
                            if !reported {
                                p.text(
                                    egui_plot::Text::new(
                                        "not reported",
                                        egui_plot::PlotPoint::new((t0 + t1) / 2.0, 0.0),
                                        "not reported by the device",
                                    )
                                    .color(egui::Color32::GRAY),
                                );
                            }
                            for (from, to, kind) in &bands {
                                p.span(
                                    egui_plot::Span::new(format!("finding: {kind}"), *from..=*to)
                                        .fill(egui::Color32::from_rgba_unmultiplied(220, 38, 38, 40))
                                        .border_width(0.0),
                                );
                            }
                            for l in lines {
                                let points: PlotPoints = pts
                                    .iter()
                                    .map(|c| [c.0 - origin, value(l, c)])
                                    .filter(|q| q[1].is_finite())
                                    .collect();
                                p.line(Line::new(*l, points).color(series_colour(l)).width(1.5));
                            }
                        });
                        if app.opts.screenshot.is_some() && !app.charts_reported.contains(*name) {
                            let rc = r.response.rect;
                            eprintln!("chart {name}: {:.0} {:.0} {:.0} {:.0}", rc.min.x, rc.min.y, rc.max.x, rc.max.y);
                            app.charts_reported.insert(name.to_string());
                        }
                    });
                }
            });
        }
    });
}

/// Time-axis grid steps a clock reads [s]: each a multiple of the one before.
const CLOCK_STEPS: [f64; 14] =
    [1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0, 604800.0];

/// Grid steps for a time axis: whole seconds, minutes, 5 and 10 minutes, half hours, hours…
/// (egui_plot's default is powers of ten: a mark every 1000 s reads 08:16:40, 08:33:20).
pub fn clock_steps(input: egui_plot::GridInput) -> [f64; 3] {
    let at_least = |min: f64| CLOCK_STEPS.into_iter().find(|s| *s >= min).unwrap_or(CLOCK_STEPS[13]);
    let fine = at_least(input.base_step_size);
    [fine, at_least(fine * 4.0), at_least(fine * 16.0)]
}

/// Time-axis marks at [`clock_steps`] on the clock: chart time `x` reads `offset_s + x` seconds
/// of the day, so marks fall on whole minutes and hours whatever the chart's origin.
pub fn clock_marks(input: egui_plot::GridInput, offset_s: f64) -> Vec<egui_plot::GridMark> {
    let (lo, hi) = input.bounds;
    let mut marks: Vec<egui_plot::GridMark> = Vec::new();
    if !(input.base_step_size > 0.0 && lo.is_finite() && hi.is_finite()) {
        return marks;
    }
    // Largest steps first: where steps coincide, the mark keeps the largest.
    for step in clock_steps(input).into_iter().rev() {
        let mut v = ((lo + offset_s) / step).ceil() * step - offset_s;
        while v <= hi && marks.len() < 10_000 {
            if !marks.iter().any(|m| (m.value - v).abs() < 1e-6) {
                marks.push(egui_plot::GridMark { value: v, step_size: step });
            }
            v += step;
        }
    }
    marks
}

/// The smallest y range a device chart shows (so a flat signal does not fill the plot with
/// noise-free nothing or a degenerate axis).
fn min_span(chart: &str) -> f64 {
    match chart {
        "torque" => 0.5,
        "power" => 0.5,
        "temperature" => 1.0,
        "air" => 2.0,
        "coils" => 1.0,
        _ => 0.2,
    }
}

/// The map's names: zones, AHUs and devices where they fit, the devices in alarm and the
/// selected one first, none over another (so zooming out thins them and zooming in shows all).
fn map_names(ctx: &egui::Context, area: egui::Rect, app: &App, view: View) {
    let painter =
        ctx.layer_painter(egui::LayerId::new(egui::Order::Background, egui::Id::new("map-names"))).with_clip_rect(area);
    let f = &app.sim.layout;
    let to_screen = |x: f64, y: f64| view.to_screen(x as f32, y as f32);
    let px = 1.0 / view.scale;
    let marker_px = app.marker * px;
    // (priority: lower first, text, anchor, colour, size)
    let mut labels: Vec<(u8, String, egui::Pos2, egui::Color32, f32)> = Vec::new();
    let white = egui::Color32::from_rgb(235, 235, 235);
    if let Some(sel) = app.sim.selected.as_deref()
        && let Some(NodeRef::Actuator(i)) = f.node(sel)
    {
        let [x, y] = f.actuators[i].position;
        let st = app.sim.status(sel);
        let [r, g, b] = status_rgb(st);
        let c = if st.is_alarm() { egui::Color32::from_rgb(r, g, b) } else { white };
        labels.push((0, sel.to_string(), to_screen(x, y) + egui::vec2(marker_px / 2.0 + 4.0, -8.0), c, 14.0));
    }
    if !app.aggregated {
        // Every device's status in one pass (not one look-up of the findings about it each).
        let (statuses, _) = app.sim.frame_statuses();
        for (a, &s) in f.actuators.iter().zip(&statuses) {
            if app.sim.selected.as_deref() == Some(a.id.as_str()) {
                continue;
            }
            let alarm = s.is_alarm();
            // Healthy devices are named once they are big enough to tell apart.
            if !alarm && marker_px < 10.0 {
                continue;
            }
            let [x, y] = a.position;
            let p = to_screen(x, y);
            if !area.expand(50.0).contains(p) {
                continue;
            }
            let [r, g, b] = status_rgb(s);
            let c = if alarm { egui::Color32::from_rgb(r, g, b) } else { white };
            labels.push((
                if alarm { 1 } else { 4 },
                a.id.clone(),
                p + egui::vec2(marker_px / 2.0 + 4.0, -8.0),
                c,
                13.0,
            ));
        }
    }
    for a in &f.ahus {
        let [x, y] = a.position;
        let s = app.sim.status(&a.id);
        let [r, g, b] = status_rgb(s);
        let c = if s.is_alarm() { egui::Color32::from_rgb(r, g, b) } else { white };
        labels.push((2, a.id.clone(), to_screen(x, y) + egui::vec2(-(marker_px), marker_px * 0.7 + 2.0), c, 14.0));
    }
    for z in &f.zones {
        let [x, y, w, _] = z.rect;
        if (w as f32) * px < 60.0 {
            continue;
        }
        let name = if z.name.is_empty() { z.id.clone() } else { z.name.clone() };
        labels.push((3, name, to_screen(x, y) + egui::vec2(4.0, 3.0), egui::Color32::from_rgb(190, 195, 205), 13.0));
    }
    if let Some(p) = &f.plant {
        let [x, y] = p.position;
        let s = app.sim.status(&p.id);
        let [r, g, b] = status_rgb(s);
        let c = if s.is_alarm() { egui::Color32::from_rgb(r, g, b) } else { white };
        labels.push((
            2,
            p.id.clone(),
            to_screen(x, y) + egui::vec2(-(marker_px * 1.5), marker_px * 0.7 + 2.0),
            c,
            14.0,
        ));
    }
    labels.sort_by_key(|l| l.0);
    let mut placed: Vec<egui::Rect> = Vec::new();
    for (_, text, at, colour, size) in labels.into_iter().take(2000) {
        if placed.len() >= 400 {
            break;
        }
        let galley = painter.layout_no_wrap(text, egui::FontId::proportional(size), colour);
        let sz = galley.size();
        // Where it was asked for, else left of the marker, below it, above it.
        let left = egui::pos2(at.x - marker_px - 8.0 - sz.x, at.y);
        let below = egui::pos2(at.x - marker_px / 2.0 - 4.0 - sz.x / 2.0, at.y + marker_px / 2.0 + 12.0);
        let above = egui::pos2(below.x, at.y - marker_px / 2.0 - sz.y + 2.0);
        let spot = [at, left, below, above]
            .into_iter()
            .map(|p| (p, egui::Rect::from_min_size(p, sz).expand(2.0)))
            .find(|(_, r)| area.contains_rect(*r) && !placed.iter().any(|q| q.intersects(*r)));
        let Some((at, rect)) = spot else { continue };
        painter.rect_filled(rect, 2.0, egui::Color32::from_rgba_unmultiplied(15, 17, 22, 190));
        painter.galley(at, galley, colour);
        placed.push(rect);
    }
}

/// The operations agent (the server's, or the same agent in-process over this run): quick
/// prompts from the worst issue, `@NODE` mentions, the conversation, and the changes it proposed
/// with approve/reject buttons.
fn agent_panel(ui: &mut egui::Ui, app: &mut App) {
    ui.separator();
    // A new entry in the conversation opens the panel.
    let new = app.sim.agent.len() > app.agent_seen;
    app.agent_seen = app.sim.agent.len();
    let header = egui::CollapsingHeader::new("Agent").id_salt("agent").default_open(false);
    header.open(new.then_some(true)).show(ui, |ui| {
        if let Some(with) = app.sim.agent_answers_with() {
            ui.small(format!("answers with {with}"));
        }
        ui.horizontal_wrapped(|ui| {
            for q in app.sim.quick_prompts() {
                if ui.small_button(&q).clicked() {
                    app.ask = q;
                }
            }
        });
        egui::ScrollArea::vertical().id_salt("agent-log").max_height(140.0).stick_to_bottom(true).show(ui, |ui| {
            for (who, text) in &app.sim.agent {
                ui.small(format!("{who}: {text}"));
            }
            if app.sim.agent_waiting() > 0 {
                ui.small("agent: thinking… (a model on a CPU can take minutes; the run goes on)");
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut app.ask).desired_width(300.0).hint_text("ask; @ to name a node"));
            if ui.button("ask").clicked() {
                let q = std::mem::take(&mut app.ask);
                if let Err(e) = app.sim.ask(&q) {
                    app.message = e;
                    app.ask = q;
                }
            }
        });
        let layout = std::sync::Arc::clone(&app.sim.layout);
        let suggestions = crate::state::mentions(&layout, &app.ask);
        if !suggestions.is_empty() {
            ui.horizontal_wrapped(|ui| {
                for id in suggestions {
                    if ui.small_button(id).clicked() {
                        app.ask = crate::state::complete_mention(&app.ask, id);
                    }
                }
            });
        }
        for (id, what) in app.sim.pending.clone() {
            ui.horizontal(|ui| {
                ui.small(format!("proposed {id}: {what}"));
                if ui.small_button("approve").clicked() {
                    app.sim.decide(&id, true);
                }
                if ui.small_button("reject").clicked() {
                    app.sim.decide(&id, false);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_axis_steps_fall_on_clock_units() {
        let steps = |base| clock_steps(egui_plot::GridInput { bounds: (0.0, 1200.0), base_step_size: base });
        // 20 minutes across a plot: marks every 5 s, labels every 30 s and 5 min (not 1000 s).
        assert_eq!(steps(4.0), [5.0, 30.0, 300.0]);
        assert_eq!(steps(20.0), [30.0, 300.0, 600.0]);
        // Marks on whole minutes of the clock, whatever the origin (a live chart's is "now").
        let input = egui_plot::GridInput { bounds: (-600.0, 0.0), base_step_size: 20.0 };
        let marks = clock_marks(input, 12.0 * 3600.0 + 37.4);
        let minutes: Vec<f64> =
            marks.iter().filter(|m| m.step_size >= 300.0).map(|m| (m.value + 37.4).rem_euclid(60.0)).collect();
        assert!(!minutes.is_empty() && minutes.iter().all(|r| r.abs() < 1e-6 || (r - 60.0).abs() < 1e-6), "{marks:?}");
        assert!(marks.iter().all(|m| (-600.0..=0.0).contains(&m.value)));
        for base in [0.3, 2.0, 7.0, 45.0, 700.0, 5000.0, 1e6] {
            let [a, b, c] = steps(base);
            assert!(a >= base.min(604800.0) && b >= a && c >= b, "{base}: {:?}", [a, b, c]);
            assert!((b / a).fract() == 0.0 && (c / b).fract() == 0.0, "{base}: not multiples {:?}", [a, b, c]);
        }
    }
}
