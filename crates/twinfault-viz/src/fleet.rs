//! A fleet of assets (C-MAPSS turbofans) in the visualizer: `twinfault-viz FLEET --cycles FILE`
//! replays a cycle file into the fleet's members (every member one cycle per step, all starting
//! together, as `twinfault replay --speed` paces them) with the same monitor, fleet log and fault
//! ledger as the product, and draws the members as a grid of named squares in their status'
//! colour, the open alarms ranked, and the selected member's health index and remaining-life
//! estimate over its cycles.

use crate::app::{LEFT_PANEL, RIGHT_PANEL, TOP_BAR, status_rgb};
use bevy::prelude::*;
use bevy::render::view::window::screenshot::{Screenshot, save_to_disk};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use egui_plot::{Line, Plot, PlotPoints};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use twinfault_core::asset::{CycleVerdict, Fleet, FleetLog, MemberPhase, Monitor};
use twinfault_core::ledger::FaultLedger;
use twinfault_core::types::{Severity, SimTime, Status};
use twinfault_load::cmapss::{Unit, load_fleet, read_units};

/// One member's monitor and what it said so far.
struct Member {
    monitor: Monitor,
    /// Index into the cycle file's units, if the file has this member.
    unit: Option<usize>,
    /// Cycles fed so far.
    next: usize,
    /// (cycle, health index, remaining-life estimate) per scored cycle.
    trace: Vec<(u32, f64, f64)>,
}

/// A fleet replayed in-process: the state the panels read (plain code, unit-tested).
pub struct FleetSim {
    pub fleet: Arc<Fleet>,
    pub title: String,
    units: Vec<Unit>,
    members: Vec<Member>,
    pub log: FleetLog,
    pub ledger: FaultLedger,
    /// Steps taken (each member one cycle per step).
    pub steps: usize,
    pub selected: Option<usize>,
}

impl FleetSim {
    /// The fleet file `fleet` with the members of cycle file `cycles`; errors name the file.
    pub fn load(fleet: &Path, cycles: &Path) -> Result<FleetSim, String> {
        let fleet = load_fleet(fleet).map_err(|e| format!("{e:#}"))?;
        let units = read_units(cycles, &fleet.template).map_err(|e| format!("{e:#}"))?;
        if let Some(u) = units.iter().find(|u| fleet.file.member(u.unit).is_none()) {
            return Err(format!(
                "{}: unit {} is not a member of fleet \"{}\" ({} members)",
                cycles.display(),
                u.unit,
                fleet.file.id,
                fleet.file.members
            ));
        }
        Ok(FleetSim::new(Arc::new(fleet), units, cycles))
    }

    pub fn new(fleet: Arc<Fleet>, units: Vec<Unit>, cycles: &Path) -> FleetSim {
        let members = (1..=fleet.file.members)
            .map(|u| Member {
                monitor: Monitor::new(Arc::clone(&fleet.model)),
                unit: units.iter().position(|x| x.unit == u),
                next: 0,
                trace: Vec::new(),
            })
            .collect();
        let name = cycles.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string());
        FleetSim {
            title: format!("{} · {name}", fleet.file.name),
            log: FleetLog::of_fleet(&fleet),
            ledger: FaultLedger::default(),
            fleet,
            units,
            members,
            steps: 0,
            selected: None,
        }
    }

    /// Whether every member's cycles are in.
    pub fn finished(&self) -> bool {
        self.members.iter().all(|m| m.unit.is_none_or(|u| m.next >= self.units[u].cycles.len()))
    }

    /// Feeds every member its next cycle; alarms become findings in the log, `t` the cycle, in
    /// member order (every member's cycles start together, and C-MAPSS numbers them 1, 2, …, so
    /// a step is one cycle of every member).
    pub fn step(&mut self) {
        self.steps += 1;
        let mut alarms = Vec::new();
        for (k, m) in self.members.iter_mut().enumerate() {
            let Some(u) = m.unit.map(|u| &self.units[u]) else { continue };
            let Some(&cycle) = u.cycles.get(m.next) else { continue };
            let v: CycleVerdict = m.monitor.observe(cycle, &u.settings[m.next], &u.sensors[m.next]);
            m.next += 1;
            if matches!(v.phase, MemberPhase::Monitoring | MemberPhase::Baseline) {
                m.trace.push((cycle, v.hi, v.rul));
            }
            if v.opened {
                let id = self.log.members()[k].clone();
                alarms.push((k, self.fleet.alarm_finding(&id, &v, SimTime(u64::from(cycle)))));
            }
        }
        for (k, f) in alarms {
            for e in self.log.apply(k, f) {
                self.ledger.apply_event(e);
            }
        }
    }

    pub fn member_ids(&self) -> &[String] {
        self.log.members()
    }

    /// A member's (cycle, health index, remaining life) so far.
    pub fn trace(&self, member: usize) -> &[(u32, f64, f64)] {
        self.members.get(member).map_or(&[], |m| &m.trace)
    }

    /// Whether a member has data in the cycle file.
    pub fn has_data(&self, member: usize) -> bool {
        self.members.get(member).is_some_and(|m| m.unit.is_some())
    }

    /// Selects a member by id; false if there is none.
    pub fn select(&mut self, id: &str) -> bool {
        self.selected = self.member_ids().iter().position(|m| m == id);
        self.selected.is_some()
    }

    /// A grid for `n` squares in a `w` × `h` area: (columns, side) with the largest squares.
    pub fn grid(n: usize, w: f32, h: f32) -> (usize, f32) {
        let n = n.max(1);
        (1..=n)
            .map(|cols| {
                let rows = n.div_ceil(cols);
                (cols, (w / cols as f32).min(h / rows as f32))
            })
            .fold((1, 0.0), |best, c| if c.1 > best.1 { c } else { best })
    }
}

/// How the fleet view was started.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Steps (cycles per member) per wall second.
    pub speed: f64,
    /// Save a PNG once a critical alarm is open and listed, then exit.
    pub screenshot: Option<PathBuf>,
    pub select: Option<String>,
}

#[derive(Resource)]
struct View {
    sim: FleetSim,
    opts: FleetOptions,
    paused: bool,
    owed: f64,
    /// Frames since the shot was due (`None`: not yet due).
    shot: Option<u32>,
}

/// Opens the window on a fleet replay.
pub fn run(mut sim: FleetSim, opts: FleetOptions) {
    if let Some(id) = &opts.select {
        sim.select(id);
    }
    crate::app::window_app(&sim.title)
        .insert_resource(View { sim, opts, paused: false, owed: 0.0, shot: None })
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn(Camera2d);
        })
        .add_systems(Update, (advance, screenshot).chain())
        .add_systems(EguiPrimaryContextPass, panels)
        .run();
}

fn advance(time: Res<Time>, mut v: ResMut<View>) {
    if v.paused || v.sim.finished() {
        return;
    }
    v.owed += time.delta_secs_f64() * v.opts.speed;
    let mut n = 0;
    while v.owed >= 1.0 && n < 50 {
        v.owed -= 1.0;
        v.sim.step();
        n += 1;
    }
}

fn screenshot(mut commands: Commands, mut v: ResMut<View>, mut exit: MessageWriter<AppExit>) {
    let Some(path) = v.opts.screenshot.clone() else { return };
    match v.shot {
        None => {
            if v.sim.ledger.open().any(|f| f.severity == Severity::Critical) {
                v.paused = true;
                v.shot = Some(0);
            } else if v.sim.finished() {
                eprintln!("the replay ended without a critical alarm; no screenshot");
                exit.write(AppExit::error());
            }
        }
        Some(n) => {
            if n == 10 {
                commands.spawn(Screenshot::primary_window()).observe(save_to_disk(path.clone()));
            }
            if n > 30 && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                exit.write(AppExit::Success);
            }
            if n > 600 {
                eprintln!("the screenshot was not written");
                exit.write(AppExit::error());
            }
            v.shot = Some(n + 1);
        }
    }
}

fn rgb(s: Status) -> egui::Color32 {
    let [r, g, b] = status_rgb(s);
    egui::Color32::from_rgb(r, g, b)
}

fn panels(mut contexts: EguiContexts, mut v: ResMut<View>) -> Result {
    let ctx = contexts.ctx_mut()?;
    let mut root = egui::Ui::new(
        ctx.clone(),
        "root".into(),
        egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(ctx.viewport_rect()),
    );
    let v = &mut *v;
    egui::Panel::top("controls").exact_size(TOP_BAR).show(&mut root, |ui| {
        ui.horizontal_centered(|ui| {
            if ui.button(if v.paused { "play" } else { "pause" }).clicked() {
                v.paused = !v.paused;
            }
            if ui.button("step").clicked() {
                v.sim.step();
            }
            ui.label("cycles/s");
            ui.add(egui::Slider::new(&mut v.opts.speed, 1.0..=200.0).logarithmic(true));
            ui.separator();
            ui.monospace(format!("{}  cycle {}", v.sim.title, v.sim.steps));
            if v.sim.finished() {
                ui.label("(end)");
            }
            ui.separator();
            let st = v.sim.log.status();
            ui.colored_label(rgb(st), format!("fleet {}", st.as_str()));
        });
    });
    egui::Panel::left("members").exact_size(LEFT_PANEL).resizable(false).show(&mut root, |ui| {
        ui.heading(&v.sim.fleet.file.id);
        let statuses = v.sim.log.statuses();
        for s in [Status::Critical, Status::Warning, Status::Healthy] {
            let n = statuses.iter().filter(|x| **x == s).count();
            ui.colored_label(rgb(s), format!("{n} {}", s.as_str()));
        }
        ui.label(format!(
            "{} of {} members in the file",
            (0..statuses.len()).filter(|&m| v.sim.has_data(m)).count(),
            statuses.len()
        ));
    });
    egui::Panel::right("alarms").exact_size(RIGHT_PANEL).resizable(false).show(&mut root, |ui| {
        ui.heading("Alarms");
        let open = v.sim.ledger.open_ranked();
        if open.is_empty() {
            ui.label("none open");
        }
        let mut pick = None;
        egui::ScrollArea::vertical().max_height(260.0).show(ui, |ui| {
            for f in open {
                ui.horizontal(|ui| {
                    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                    ui.painter().circle_filled(rect.center(), 5.0, rgb(f.severity.status()));
                    if ui.link(format!("{}  {}  cycle {}", f.node, f.kind, f.opened_at.0)).clicked() {
                        pick = Some(f.node.clone());
                    }
                });
                ui.small(&f.summary);
            }
        });
        if let Some(id) = pick {
            v.sim.select(&id);
        }
        ui.separator();
        match v.sim.selected {
            None => {
                ui.label("click a member to see its health");
            }
            Some(m) => {
                let id = v.sim.member_ids()[m].clone();
                ui.strong(format!("{id}  {}", v.sim.log.statuses()[m].as_str()));
                let trace = v.sim.trace(m);
                let hi: PlotPoints = trace.iter().map(|&(c, h, _)| [f64::from(c), h]).collect();
                let rul: PlotPoints = trace.iter().map(|&(c, _, r)| [f64::from(c), r]).collect();
                Plot::new("hi").height(150.0).x_axis_label("cycle").show(ui, |p| {
                    p.line(Line::new("health index", hi));
                });
                Plot::new("rul").height(150.0).x_axis_label("cycle").show(ui, |p| {
                    p.line(Line::new("remaining cycles (estimate)", rul));
                });
            }
        }
    });
    egui::CentralPanel::default().show(&mut root, |ui| {
        let area = ui.available_rect_before_wrap();
        let n = v.sim.member_ids().len();
        let (cols, side) = FleetSim::grid(n, area.width(), area.height());
        let statuses = v.sim.log.statuses().to_vec();
        let painter = ui.painter_at(area);
        let mut clicked = None;
        for (m, id) in v.sim.member_ids().iter().enumerate() {
            let (c, r) = (m % cols, m / cols);
            let min = area.min + egui::vec2(c as f32 * side, r as f32 * side);
            let rect = egui::Rect::from_min_size(min, egui::vec2(side, side)).shrink(2.0);
            let fill = if v.sim.has_data(m) { rgb(statuses[m]) } else { rgb(Status::Unknown).gamma_multiply(0.4) };
            painter.rect_filled(rect, 3.0, fill);
            if v.sim.selected == Some(m) {
                painter.rect_stroke(rect, 3.0, egui::Stroke::new(2.0, egui::Color32::WHITE), egui::StrokeKind::Outside);
            }
            // The member's number, so an engine is found without hovering.
            let label = id.rsplit(['-', '_']).next().unwrap_or(id);
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                label,
                egui::FontId::proportional((side * 0.32).clamp(8.0, 16.0)),
                egui::Color32::from_rgb(245, 245, 245),
            );
            if ui.interact(rect, egui::Id::new(("member", m)), egui::Sense::click()).on_hover_text(id).clicked() {
                clicked = Some(m);
            }
        }
        if clicked.is_some() {
            v.sim.selected = clicked;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_fills_the_area_with_the_largest_squares() {
        let (cols, side) = FleetSim::grid(100, 640.0, 760.0);
        assert_eq!(cols, 10);
        assert!((side - 64.0).abs() < 1e-3);
        let (cols, side) = FleetSim::grid(3, 300.0, 100.0);
        assert_eq!((cols, side), (3, 100.0));
        assert_eq!(FleetSim::grid(0, 10.0, 10.0).0, 1);
    }
}
