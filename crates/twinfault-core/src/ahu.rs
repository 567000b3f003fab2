//! The air-handling unit and plant models, with the AHU's own rules.
//!
//! An AHU runs a schedule (off, startup, occupied, shutdown). In occupied mode a supply-air PI
//! loop sequences heating valve → economizer damper → cooling valve (as ASHRAE Guideline 36 does)
//! and each zone's PI loop sets its zone damper. Its thermal model mixes outdoor and return air
//! through the *output* positions of its dampers and valves (what the air and water see), so a
//! decoupled or leaking actuator shows only in the temperatures, as in the LBNL data.
//!
//! Its rules compare what the commands and feedbacks predict with what the sensors measure:
//! outdoor-air fraction of the mixed air, temperature change across each coil, supply air against
//! its setpoint, zone temperature against a saturated damper. They run only in occupied mode after
//! `settle_s`, and an AHU rule about a device is suppressed while the device reports a fault of
//! its own (the device's finding explains it).

use crate::config::{AhuTemplate, FindingSpec, PlantTemplate};
use crate::counterfactual::{self, Element, History, Prior, Ranking, Sample, UnitModel};
use crate::detect::{Change, Diagnosis, FindingBook, FindingEvent, FindingState, RuleInput, Source};
use crate::rng::{NodeRng, node_rng};
use crate::scenario::{CommandProfile, Schedule, Weather};
use crate::types::{FaultKind, Phase, Role, SimTime, Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A child actuator as the AHU knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSpec {
    pub id: String,
    pub role: Role,
    /// Command override (exercise profile) from the scenario.
    pub profile: Option<CommandProfile>,
}

/// What a child reports to its AHU at the end of an epoch.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ChildReport {
    /// Output position averaged over the epoch (what the air or water saw) [%].
    pub opening_pct: f64,
    /// Last reported feedback position [%]; NaN when nothing was reported.
    pub feedback_pct: f64,
    pub status: Status,
}

/// Conditions the plant supplies to its AHUs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlantConditions {
    pub chilled_water_c: f64,
    pub hot_water_c: f64,
}

/// One row of a real AHU's trend log.
#[derive(Debug, Clone, PartialEq)]
pub struct AhuMeasurement {
    pub t: SimTime,
    /// Occupied with the supply fan on.
    pub occupied: bool,
    pub outdoor_air_c: f64,
    pub return_air_c: f64,
    pub mixed_air_c: f64,
    pub supply_air_c: f64,
    /// The controller's active supply-air setpoint, when logged.
    pub supply_air_setpoint_c: Option<f64>,
    /// Command to each child, in child order [%].
    pub commands_pct: Vec<f64>,
}

/// A summary of an AHU epoch for its parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AhuSummary {
    pub phase: Phase,
    pub status: Status,
    pub outdoor_air_c: f64,
    pub return_air_c: f64,
    pub mixed_air_c: f64,
    pub supply_air_c: f64,
    pub supply_air_setpoint_c: f64,
    /// Cooling delivered [kW].
    pub cooling_kw: f64,
    /// Heating delivered [kW].
    pub heating_kw: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Pi {
    kp: f64,
    ki: f64,
    integral: f64,
    lo: f64,
    hi: f64,
}

impl Pi {
    fn new(kp: f64, ki: f64, lo: f64, hi: f64) -> Pi {
        Pi { kp, ki, integral: 0.0, lo, hi }
    }
    fn reset(&mut self, integral: f64) {
        self.integral = integral;
    }
    fn step(&mut self, err: f64, dt: f64) -> f64 {
        let u = self.kp * err + self.integral + self.ki * err * dt;
        // Conditional integration: no windup while saturated.
        if (self.lo..=self.hi).contains(&u) {
            self.integral += self.ki * err * dt;
        }
        u.clamp(self.lo, self.hi)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Zone {
    temp_c: f64,
    /// This zone's share of the template's zone load (zones differ) [-].
    load_factor: f64,
    pi: Pi,
}

fn lag(x: &mut f64, target: f64, dt: f64, tau: f64) {
    *x += (target - *x) * (1.0 - (-dt / tau.max(1e-6)).exp());
}

/// The kinds of the AHU's rules about one of its devices (kept per device).
const DEVICE_KINDS: [FaultKind; 3] = [FaultKind::DamperLeak, FaultKind::StuckAt, FaultKind::ValveLeak];

/// An AHU: schedule, controllers, thermal model and rules. Its whole state serializes (template
/// included), so a snapshot restores to a twin that continues exactly as the original would.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ahu {
    pub id: String,
    template: Arc<AhuTemplate>,
    children: Vec<ChildSpec>,
    /// Zone state per child (zone dampers only).
    zones: Vec<Option<Zone>>,
    schedule: Schedule,
    weather: Weather,
    start_clock_s: f64,
    rng: NodeRng,
    phase: Phase,
    occupied_since: Option<SimTime>,
    sat_pi: Pi,
    economizing: bool,
    /// Supply-air temperature as the controller sees it: measured and filtered [°C].
    supply_air_filtered_c: f64,
    commands: Vec<f64>,
    return_air_c: f64,
    mixed_air_c: f64,
    supply_air_c: f64,
    cool_dt_c: f64,
    heat_dt_c: f64,
    plant: PlantConditions,
    // Detector state.
    expected_cool_dt_c: f64,
    expected_heat_dt_c: f64,
    r_oa_fraction: f64,
    r_supply_c: f64,
    r_sat_error_c: f64,
    r_zone_c: Vec<f64>,
    /// Mixed air outside the outdoor-return band [°C], averaged.
    r_band_c: f64,
    own: FindingBook,
    per_child: Vec<FindingBook>,
    /// Fed by a real AHU's trend log rather than simulated: no coil model is trusted, so the
    /// model-based stuck-valve rule is off (the model-free rules stay).
    measured: bool,
    /// Since when both coil valves have been closed (trend-log mode).
    coils_closed_since: Option<SimTime>,
    last_summary: AhuSummary,
    /// The unit's response as learned from its history (the template's physics until then).
    unit: UnitModel,
    /// The recent history the fork re-simulates.
    history: History,
    /// The children the fork may blame (outdoor-air damper, cooling and heating valve).
    elements: Vec<Element>,
    /// Each element's index among the children (so an epoch finds its position without a search).
    element_children: Vec<usize>,
    /// The fork's latest answer (a new one has a later `at`: one fork at most per epoch).
    last_ranking: Option<Ranking>,
    /// While a finding stays open, when the fork runs again.
    next_fork_at: Option<SimTime>,
    /// Mixed air as the supply sensor sees it through the coil's thermal mass (trend-log mode;
    /// none before the first row).
    mixed_through_coil_c: Option<f64>,
    /// The cooling and heating valves' commands through the coil's lag [fraction] (trend-log
    /// mode) and the supply air's residual against the unit's own response to them [°C].
    valves_through_coil: Option<[f64; 2]>,
    r_coil_response_c: f64,
}

/// What the template's physics says a unit does before it has shown what it does.
pub fn fork_prior(t: &AhuTemplate) -> Prior {
    let m = &t.model;
    Prior {
        fan_heat_c: m.fan_heat_c,
        cooling_full_k: m.cooling_coil_effectiveness * (m.zone_setpoint_c - m.chilled_water_c).max(0.0),
        heating_full_k: m.heating_coil_effectiveness * (m.hot_water_c - m.zone_setpoint_c).max(0.0),
        coil_time_constant_s: m.coil_time_constant_s,
    }
}

impl Ahu {
    pub fn new(
        id: &str,
        template: Arc<AhuTemplate>,
        children: Vec<ChildSpec>,
        schedule: Schedule,
        weather: Weather,
        start_clock_s: f64,
        seed: u64,
    ) -> Ahu {
        let m = &template.model;
        // The AHU's books: its own rules, and per child the rules about a device.
        let tpl: &AhuTemplate = &template;
        let kinds = |about_device: bool| {
            FaultKind::ALL
                .iter()
                .copied()
                .filter(move |k| tpl.finding(*k).is_some() && DEVICE_KINDS.contains(k) == about_device)
        };
        let (own, per_child) = (FindingBook::for_kinds(kinds(false)), FindingBook::for_kinds(kinds(true)));
        let mut zone_rng = node_rng(seed, id, "zones");
        let zones = children
            .iter()
            .map(|c| {
                (c.role == Role::ZoneDamper).then(|| Zone {
                    temp_c: m.zone_setpoint_c,
                    load_factor: 0.7 + 0.6 * crate::rng::uniform(&mut zone_rng),
                    pi: Pi::new(m.zone_kp_pct_per_k, m.zone_ki_pct_per_k_s, 0.0, 100.0),
                })
            })
            .collect();
        let n = children.len();
        let (elements, element_children): (Vec<Element>, Vec<usize>) = counterfactual::ELEMENTS
            .iter()
            .enumerate()
            .filter_map(|(slot, role)| {
                let i = children.iter().position(|c| c.role == *role)?;
                Some((Element { slot, device: children[i].id.clone() }, i))
            })
            .unzip();
        let fork = template.fork;
        Ahu {
            id: id.to_string(),
            unit: UnitModel::prior(&fork_prior(&template)),
            history: History::new(fork.window_s, fork.sample_s),
            elements,
            element_children,
            last_ranking: None,
            next_fork_at: None,
            mixed_through_coil_c: None,
            valves_through_coil: None,
            r_coil_response_c: 0.0,
            zones,
            schedule,
            weather,
            start_clock_s,
            rng: node_rng(seed, id, "ahu"),
            phase: Phase::Off,
            occupied_since: None,
            sat_pi: Pi::new(m.sat_kp, m.sat_ki, -1.0, 1.0),
            economizing: false,
            supply_air_filtered_c: m.zone_setpoint_c,
            commands: vec![0.0; n],
            return_air_c: m.zone_setpoint_c,
            mixed_air_c: m.zone_setpoint_c,
            supply_air_c: m.zone_setpoint_c,
            cool_dt_c: 0.0,
            heat_dt_c: 0.0,
            plant: PlantConditions { chilled_water_c: m.chilled_water_c, hot_water_c: m.hot_water_c },
            expected_cool_dt_c: 0.0,
            expected_heat_dt_c: 0.0,
            r_oa_fraction: 0.0,
            r_supply_c: 0.0,
            r_sat_error_c: 0.0,
            r_zone_c: vec![0.0; n],
            r_band_c: 0.0,
            own,
            per_child: vec![per_child; n],
            measured: false,
            coils_closed_since: None,
            last_summary: AhuSummary::default(),
            children,
            template,
        }
    }

    fn child(&self, role: Role) -> Option<usize> {
        self.children.iter().position(|c| c.role == role)
    }

    fn noise(&mut self) -> f64 {
        crate::rng::normal(&mut self.rng) * self.template.model.sensor_noise_c
    }

    /// Starts an epoch at `t`: updates the phase and returns the commands for the children [%].
    pub fn begin_epoch(&mut self, t: SimTime, dt_s: f64, plant: Option<PlantConditions>) -> (Phase, &[f64]) {
        if let Some(p) = plant {
            self.plant = p;
        }
        let clock_s = self.start_clock_s + t.as_secs_f64();
        let phase = self.schedule.phase(clock_s, t.as_secs_f64());
        if phase != self.phase {
            if phase == Phase::Startup {
                self.sat_pi.reset(0.5);
            }
            if phase == Phase::Occupied {
                self.occupied_since = Some(t);
                // Bumpless transfer from the startup's full cooling.
                self.sat_pi.reset(0.5);
                for z in self.zones.iter_mut().flatten() {
                    z.pi.reset(60.0);
                }
            } else {
                self.occupied_since = None;
            }
            self.phase = phase;
        }
        let m = Arc::clone(&self.template);
        let m = &m.model;
        let n = self.children.len();
        let outdoor = self.weather.outdoor_c(clock_s);
        let (mut oad, mut chw, mut hw, mut zone_cmd) = (0.0, 0.0, 0.0, 0.0);
        match phase {
            Phase::Off | Phase::Shutdown => {}
            Phase::Startup => {
                // Cool-down: zone dampers wide open, no outdoor air, the coil on the supply-air loop.
                let measured = self.supply_air_c + self.noise();
                lag(&mut self.supply_air_filtered_c, measured, dt_s, 15.0);
                let u = self.sat_pi.step(self.supply_air_filtered_c - m.supply_air_setpoint_c, dt_s);
                chw = u.max(0.0) * 100.0;
                hw = (-u).max(0.0) * 100.0;
                zone_cmd = 100.0;
            }
            Phase::Occupied => {
                let margin = m.economizer_margin_k;
                if self.economizing && outdoor > self.return_air_c - margin + 0.5 {
                    self.economizing = false;
                } else if !self.economizing && outdoor < self.return_air_c - margin - 0.5 {
                    self.economizing = true;
                }
                // The BMS filters its input (15 s) so sensor noise does not move the actuators.
                let measured = self.supply_air_c + self.noise();
                lag(&mut self.supply_air_filtered_c, measured, dt_s, 15.0);
                let err = self.supply_air_filtered_c - m.supply_air_setpoint_c;
                let u = self.sat_pi.step(err, dt_s);
                if u < 0.0 {
                    hw = -u * 100.0;
                } else if self.economizing {
                    oad = (u / 0.5).min(1.0) * 100.0;
                    chw = ((u - 0.5) / 0.5).max(0.0) * 100.0;
                } else {
                    chw = u * 100.0;
                }
            }
        }
        for i in 0..n {
            let c = &self.children[i];
            let mut cmd = match c.role {
                Role::OutdoorAirDamper => oad,
                Role::CoolingValve => chw,
                Role::HeatingValve => hw,
                Role::ZoneDamper => {
                    if phase == Phase::Occupied {
                        let sp = m.zone_setpoint_c;
                        let z = self.zones[i].as_mut().expect("zone damper has a zone");
                        let meas = z.temp_c;
                        (m.zone_min_damper_pct + z.pi.step(meas - sp, dt_s)).clamp(0.0, 100.0)
                    } else {
                        zone_cmd
                    }
                }
            };
            if let Some(p) = c.profile.as_ref().and_then(|p| p.command(t)) {
                cmd = p;
            }
            // A BMS sends commands at a resolution of 0.1 %.
            self.commands[i] = (cmd * 10.0).round() / 10.0;
        }
        (phase, &self.commands)
    }

    /// Ends the epoch `[t, t + dt_s)`: advances the thermal model with the children's output
    /// positions, evaluates the AHU's rules and returns the summary.
    pub fn end_epoch(
        &mut self,
        t_end: SimTime,
        dt_s: f64,
        reports: &[ChildReport],
        out: &mut Vec<FindingEvent>,
    ) -> AhuSummary {
        let tpl = Arc::clone(&self.template);
        let m = &tpl.model;
        let clock_s = self.start_clock_s + t_end.as_secs_f64();
        let outdoor = self.weather.outdoor_c(clock_s);
        let fan_on = self.phase != Phase::Off;
        // A child that reported no position (an ingesting twin without data yet) is taken to be
        // where it was commanded.
        let commands = &self.commands;
        let out_pct = |i: usize| if reports[i].opening_pct.is_finite() { reports[i].opening_pct } else { commands[i] };
        let opening = |role: Role| self.child(role).map_or(0.0, |i| out_pct(i) / 100.0);
        let f_oa = opening(Role::OutdoorAirDamper);
        let chw = opening(Role::CoolingValve);
        let hw = opening(Role::HeatingValve);

        let mixed = if fan_on { f_oa * outdoor + (1.0 - f_oa) * self.return_air_c } else { self.return_air_c };
        let cool_target = if fan_on {
            chw * m.cooling_coil_effectiveness * (mixed - self.plant.chilled_water_c).max(0.0)
        } else {
            0.0
        };
        let heat_target =
            if fan_on { hw * m.heating_coil_effectiveness * (self.plant.hot_water_c - mixed).max(0.0) } else { 0.0 };
        lag(&mut self.cool_dt_c, cool_target, dt_s, m.coil_time_constant_s);
        lag(&mut self.heat_dt_c, heat_target, dt_s, m.coil_time_constant_s);
        let supply = mixed + if fan_on { m.fan_heat_c } else { 0.0 } - self.cool_dt_c + self.heat_dt_c;
        self.mixed_air_c = mixed;
        self.supply_air_c = supply;

        let mut flow_total = 0.0;
        let mut zone_sum = 0.0;
        let mut zone_n = 0.0;
        let occupied_load = matches!(self.phase, Phase::Occupied | Phase::Startup);
        for (i, z) in self.zones.iter_mut().enumerate() {
            let Some(z) = z else { continue };
            let flow = if fan_on { m.zone_airflow_kw_per_k * out_pct(i) / 100.0 } else { 0.0 };
            flow_total += flow;
            let load = m.zone_load_kw * z.load_factor * if occupied_load { 1.0 } else { 0.3 };
            // The envelope pulls the zone toward its setpoint (neighbouring spaces, slab).
            let envelope = 0.1 * m.zone_airflow_kw_per_k * (z.temp_c - m.zone_setpoint_c);
            let dq = load - flow * (z.temp_c - supply) - envelope;
            z.temp_c += dq * dt_s / m.zone_capacity_kj_per_k;
            zone_sum += z.temp_c;
            zone_n += 1.0;
        }
        if zone_n > 0.0 {
            lag(&mut self.return_air_c, zone_sum / zone_n + 0.3, dt_s, 60.0);
        }

        // Measurements.
        let (oa_m, ra_m, ma_m, sa_m) =
            (outdoor + self.noise(), self.return_air_c + self.noise(), mixed + self.noise(), supply + self.noise());
        let summary = AhuSummary {
            phase: self.phase,
            status: Status::Healthy,
            outdoor_air_c: oa_m,
            return_air_c: ra_m,
            mixed_air_c: ma_m,
            supply_air_c: sa_m,
            supply_air_setpoint_c: m.supply_air_setpoint_c,
            cooling_kw: self.cool_dt_c * flow_total,
            heating_kw: self.heat_dt_c * flow_total,
        };
        let before = out.len();
        self.evaluate(t_end, dt_s, reports, &summary, out);
        self.fork_if_due(t_end, &mut out[before..]);
        let status = self.status(reports);
        self.last_summary = AhuSummary { status, ..summary };
        self.last_summary
    }

    /// Evaluates the AHU's rules on a real AHU's measurements (a trend-log row): temperatures in
    /// °C and the controller's commands to its children in % (a BMS trend log has commands, not
    /// positions, so commands stand in for feedback). Occupied with the fan on is the operating
    /// phase; the rules wait `settle_s` after it starts, as in a simulated run.
    pub fn observe(&mut self, m: &AhuMeasurement, dt_s: f64, out: &mut Vec<FindingEvent>) -> AhuSummary {
        self.measured = true;
        let phase = if m.occupied { Phase::Occupied } else { Phase::Off };
        if phase != self.phase {
            // A trend log is judged per operating period (as G36 fault conditions are): when the
            // unit stops, its findings close and are re-established, with confirmation, the next
            // time it runs.
            if self.phase == Phase::Occupied {
                let tpl = Arc::clone(&self.template);
                let ids: Vec<String> = self.children.iter().map(|c| c.id.clone()).collect();
                for kind in FaultKind::ALL {
                    let Some(spec) = tpl.finding(*kind) else { continue };
                    out.extend(self.own.force_resolve(m.t, *kind, spec, &self.id, None));
                    for (i, id) in ids.iter().enumerate() {
                        out.extend(self.per_child[i].force_resolve(m.t, *kind, spec, &self.id, Some(id)));
                    }
                }
            }
            self.occupied_since = (phase == Phase::Occupied).then_some(m.t);
            self.phase = phase;
        }
        let reports: Vec<ChildReport> = (0..self.children.len())
            .map(|i| {
                let c = m.commands_pct.get(i).copied().unwrap_or(0.0);
                ChildReport { opening_pct: c, feedback_pct: c, status: Status::Healthy }
            })
            .collect();
        let summary = AhuSummary {
            phase,
            status: Status::Healthy,
            outdoor_air_c: m.outdoor_air_c,
            return_air_c: m.return_air_c,
            mixed_air_c: m.mixed_air_c,
            supply_air_c: m.supply_air_c,
            supply_air_setpoint_c: m.supply_air_setpoint_c.unwrap_or(self.template.model.supply_air_setpoint_c),
            cooling_kw: 0.0,
            heating_kw: 0.0,
        };
        let before = out.len();
        self.evaluate(m.t, dt_s, &reports, &summary, out);
        self.fork_if_due(m.t, &mut out[before..]);
        let status = self.status(&reports);
        self.last_summary = AhuSummary { status, ..summary };
        self.last_summary
    }

    /// Worst of the AHU's own findings and its children's current statuses (unknown while no
    /// child has reported and the AHU has no finding of its own).
    pub fn status(&self, reports: &[ChildReport]) -> Status {
        Status::roll_up(self.own_status(), reports.iter().map(|r| r.status))
    }

    /// Worst of the AHU's own findings (about itself or about a child).
    pub fn own_status(&self) -> Status {
        let f = &self.template.findings;
        self.per_child.iter().map(|b| b.status(f)).fold(self.own.status(f), Status::max)
    }

    /// The AHU's rules (about itself and about each child) as last evaluated, as of `now`.
    pub fn diagnosis(&self, now: SimTime) -> Diagnosis {
        let tpl = &self.template;
        let window = |_| tpl.detection.residual_tau_s;
        let mut checks = self.own.checks(|k| tpl.finding(k), window, None);
        for (i, book) in self.per_child.iter().enumerate() {
            checks.extend(book.checks(|k| tpl.finding(k), window, Some(&self.children[i].id)));
        }
        checks.sort_by_key(|c| c.finding != FindingState::Open && c.finding != FindingState::Clearing);
        let evaluated = |k| self.own.evaluated(k) || self.per_child.iter().any(|b| b.evaluated(k));
        let not_evaluated =
            FaultKind::ALL.iter().copied().filter(|&k| tpl.finding(k).is_some() && !evaluated(k)).collect();
        let mut notes = Vec::new();
        let settle = tpl.detection.settle_s;
        match self.occupied_since {
            Some(since) if now.saturating_sub(since).as_secs_f64() < settle => notes.push(format!(
                "started {:.0} s ago: the AHU's rules wait {settle:.0} s after startup",
                now.saturating_sub(since).as_secs_f64()
            )),
            None => notes.push(format!("not in operation ({}): the AHU's rules are held", self.phase.as_str())),
            _ => {}
        }
        notes.push(
            "rules about a device are held while the device's own status is warning, critical or offline (its own finding explains it)"
                .to_string(),
        );
        Diagnosis {
            node: self.id.clone(),
            at: now,
            phase: self.phase,
            status: self.own_status(),
            last_input_at: checks.iter().map(|c| c.evaluated_at).max(),
            checks,
            not_evaluated,
            notes,
            fork: self.last_ranking.clone(),
        }
    }

    /// The unit model the fork simulates with.
    pub fn unit_model(&self) -> &UnitModel {
        &self.unit
    }

    /// Replaces the unit model (one learned from this unit's history, e.g. a whole trend log).
    pub fn set_unit_model(&mut self, unit: UnitModel) {
        self.unit = unit;
    }

    /// Learns this unit's response from a trend log of it (operating rows after the settle
    /// time, as the rules see them), robustly: faulty days in it need not be known.
    pub fn learn_unit(&mut self, log: &[AhuMeasurement]) {
        let samples = self.history_of(log);
        self.unit = UnitModel::learn(&samples, &fork_prior(&self.template));
        self.unit.measure_averaged_scatter(&samples, self.template.detection.residual_tau_s);
    }

    /// A trend log as the fork's history (every row a sample; operating once the unit has run
    /// `settle_s`, as the rules judge it).
    pub fn history_of(&self, log: &[AhuMeasurement]) -> Vec<Sample> {
        let settle_ms = (self.template.detection.settle_s * 1000.0) as u64;
        let mut since: Option<SimTime> = None;
        let mut samples = Vec::with_capacity(log.len());
        for m in log {
            since = if m.occupied { since.or(Some(m.t)) } else { None };
            let operating = since.is_some_and(|s| m.t.0.saturating_sub(s.0) >= settle_ms);
            let positions = self.positions(|i| m.commands_pct.get(i).copied().unwrap_or(f64::NAN));
            samples.push(Sample {
                t: m.t,
                operating,
                outdoor_c: m.outdoor_air_c,
                return_c: m.return_air_c,
                mixed_c: m.mixed_air_c,
                supply_c: m.supply_air_c,
                positions,
            });
        }
        samples
    }

    /// Runs the fork on `window` (history samples, oldest first) with this unit's model.
    pub fn fork_on(&self, window: &[Sample]) -> Ranking {
        counterfactual::rank(&self.id, &self.unit, &self.elements, window, &self.template.fork)
    }

    /// The last epoch's summary: phase, status, air temperatures, coil duties.
    pub fn last_summary(&self) -> AhuSummary {
        self.last_summary
    }

    /// The latest fork answer.
    pub fn last_ranking(&self) -> Option<&Ranking> {
        self.last_ranking.as_ref()
    }

    /// The elements' positions as fractions, from each child's value in % (0 for no such child
    /// and for a child that reported none: the fork blames only the elements it has).
    fn positions(&self, pct: impl Fn(usize) -> f64) -> [f64; 3] {
        let mut p = [0.0; 3];
        for (e, &i) in self.elements.iter().zip(&self.element_children) {
            let v = pct(i) / 100.0;
            p[e.slot] = if v.is_finite() { v } else { 0.0 };
        }
        p
    }

    /// Runs the fork when one of this epoch's events opened a finding of this AHU, or when one
    /// is open and `rediagnose_s` has passed; its sentence goes into the opened findings'
    /// summaries.
    fn fork_if_due(&mut self, t: SimTime, fresh: &mut [FindingEvent]) {
        let opened = fresh.iter().any(|f| f.change == Change::Opened && f.source == Source::Rule);
        let open = self.own_status() >= Status::Warning;
        if !open && !opened {
            self.next_fork_at = None;
            return;
        }
        if !opened && self.next_fork_at.is_none_or(|n| t < n) {
            return;
        }
        let ranking = Ranking { at: t, ..self.fork_on(&self.history.samples()) };
        let sentence = ranking.sentence();
        let likely = ranking.likely();
        for f in fresh.iter_mut().filter(|f| f.change == Change::Opened && f.source == Source::Rule) {
            f.summary = format!("{}; {sentence}", f.summary);
            f.likely = likely.clone();
        }
        self.next_fork_at = Some(SimTime(t.0 + (self.template.fork.rediagnose_s * 1000.0) as u64));
        self.last_ranking = Some(ranking);
    }

    /// Resolves an open AHU finding (about the AHU itself when `device` is `None`, else about that
    /// child) on an operator's word.
    pub fn force_resolve(&mut self, t: SimTime, kind: FaultKind, device: Option<&str>) -> Option<FindingEvent> {
        let spec = self.template.finding(kind)?;
        let book = match device {
            None => &mut self.own,
            Some(d) => {
                let i = self.children.iter().position(|c| c.id == d)?;
                &mut self.per_child[i]
            }
        };
        book.force_resolve(t, kind, spec, &self.id, device)
    }

    fn evaluate(
        &mut self,
        t: SimTime,
        dt_s: f64,
        reports: &[ChildReport],
        s: &AhuSummary,
        out: &mut Vec<FindingEvent>,
    ) {
        let tpl = Arc::clone(&self.template);
        let m = &tpl.model;
        let d = &tpl.detection;
        let settled = self.phase == Phase::Occupied
            && self.occupied_since.is_some_and(|since| t.0.saturating_sub(since.0) as f64 / 1000.0 >= d.settle_s);
        let tau = d.residual_tau_s;
        let children = &self.children;
        let fb = |role: Role| {
            children.iter().position(|c| c.role == role).map(|i| {
                let f = reports[i].feedback_pct;
                (i, if f.is_finite() { f } else { 0.0 })
            })
        };
        // Shadow coil models driven by feedbacks: what the coils should be doing.
        let ma = s.mixed_air_c;
        let chw_fb = fb(Role::CoolingValve);
        let hw_fb = fb(Role::HeatingValve);
        let oad_fb = fb(Role::OutdoorAirDamper);
        let cool_exp = chw_fb.map_or(0.0, |(_, f)| {
            f / 100.0 * m.cooling_coil_effectiveness * (ma - self.plant.chilled_water_c).max(0.0)
        });
        let heat_exp = hw_fb
            .map_or(0.0, |(_, f)| f / 100.0 * m.heating_coil_effectiveness * (self.plant.hot_water_c - ma).max(0.0));
        let fan_on = self.phase != Phase::Off;
        lag(&mut self.expected_cool_dt_c, if fan_on { cool_exp } else { 0.0 }, dt_s, m.coil_time_constant_s);
        lag(&mut self.expected_heat_dt_c, if fan_on { heat_exp } else { 0.0 }, dt_s, m.coil_time_constant_s);
        // The fork's history: what the air did and what the elements were told or reported.
        let positions = self.positions(|i| reports[i].feedback_pct);
        self.history.push(Sample {
            t,
            operating: settled,
            outdoor_c: s.outdoor_air_c,
            return_c: s.return_air_c,
            mixed_c: s.mixed_air_c,
            supply_c: s.supply_air_c,
            positions,
        });
        // A real AHU's coils are not modelled: with both valves closed, supply air should be mixed
        // air plus what this unit adds then (fan heat and its sensors' offset, learned from its
        // history), once the coils have settled.
        let coil_tau = if self.measured { self.unit.coil_time_constant_s } else { m.coil_time_constant_s };
        let through = if self.measured {
            let through = self.mixed_through_coil_c.get_or_insert(ma);
            lag(through, ma, dt_s, coil_tau);
            *through
        } else {
            ma
        };
        let sa_exp = if self.measured {
            through + self.unit.coil_offset_c()
        } else {
            ma + m.fan_heat_c - self.expected_cool_dt_c + self.expected_heat_dt_c
        };
        let both_closed =
            chw_fb.is_none_or(|(_, f)| f <= d.closed_below_pct) && hw_fb.is_none_or(|(_, f)| f <= d.closed_below_pct);
        if !both_closed {
            self.coils_closed_since = None;
        } else if self.coils_closed_since.is_none() {
            self.coils_closed_since = Some(t);
        }
        let coils_settled = !self.measured
            || self.coils_closed_since.is_some_and(|c| t.0.saturating_sub(c.0) as f64 / 1000.0 >= 3.0 * coil_tau);
        let a = 1.0 - (-dt_s / tau).exp();
        self.r_supply_c += (s.supply_air_c - sa_exp - self.r_supply_c) * a;
        // A real unit against its own learned response to its valves' commands.
        if self.measured {
            let now = [chw_fb, hw_fb].map(|v| v.map_or(0.0, |(_, f)| f / 100.0));
            let valves = self.valves_through_coil.get_or_insert(now);
            for k in 0..2 {
                lag(&mut valves[k], now[k], dt_s, coil_tau);
            }
            let [c, h] = *valves;
            let expected = through + self.unit.coil_change_c(c, h);
            self.r_coil_response_c += (s.supply_air_c - expected - self.r_coil_response_c) * a;
        }
        self.r_sat_error_c += (s.supply_air_c - s.supply_air_setpoint_c - self.r_sat_error_c) * a;
        let mixing_delta = s.outdoor_air_c - s.return_air_c;
        let observable = mixing_delta.abs() >= d.min_mixing_delta_c;
        // On a real unit the mixed-air sensor's offset and the damper's curve are the unit's own
        // (learned from its history); a simulated unit mixes by its damper's position.
        let mixed = if self.measured { s.mixed_air_c - self.unit.mixed_offset_c() } else { s.mixed_air_c };
        if observable && let Some((_, f)) = oad_fb {
            let f_meas = (mixed - s.return_air_c) / mixing_delta;
            let f_exp = if self.measured { self.unit.outdoor_fraction(f / 100.0) } else { f / 100.0 };
            self.r_oa_fraction += (f_meas - f_exp - self.r_oa_fraction) * a;
        }
        let lo = s.outdoor_air_c.min(s.return_air_c) - 1.0;
        let hi = s.outdoor_air_c.max(s.return_air_c) + 1.0;
        let outside = if mixed < lo {
            lo - mixed
        } else if mixed > hi {
            mixed - hi
        } else {
            0.0
        };
        self.r_band_c += (outside - self.r_band_c) * a;
        for (i, z) in self.zones.iter().enumerate() {
            if let Some(z) = z {
                self.r_zone_c[i] += (z.temp_c - m.zone_setpoint_c - self.r_zone_c[i]) * a;
            }
        }

        let gate = !settled;
        let id = self.id.clone();
        let closed = d.closed_below_pct;
        let mut rule = |book: &mut FindingBook,
                        kind: FaultKind,
                        (measured, holds): (f64, bool),
                        threshold: f64,
                        device: Option<&str>,
                        suppressed: bool| {
            let Some(spec): Option<&FindingSpec> = tpl.finding(kind) else {
                return;
            };
            let gated = gate || suppressed || spec.gated_in.contains(&self.phase);
            book.update(t, RuleInput { kind, measured, holds, threshold, gated, spec, node: &id, device }, out);
        };

        // Supply air against its setpoint (a symptom; its cause is found below or on a device).
        // As in APAR's hierarchy, a finding about one of its elements explains the symptom: while
        // one is open (here or on the device itself) the symptom does not hold.
        let explained = self.per_child.iter().any(|b| b.status(&tpl.findings) >= Status::Warning)
            || reports.iter().any(|r| r.status.is_alarm());
        let sat = self.r_sat_error_c;
        rule(
            &mut self.own,
            FaultKind::SupplyAirDeviation,
            (sat, sat.abs() > d.supply_air_error_c && !explained),
            d.supply_air_error_c,
            None,
            false,
        );
        let band = self.r_band_c;
        rule(&mut self.own, FaultKind::MixedAirOutOfBand, (band, band > 0.5), 0.5, None, false);
        // A real unit's supply air off its own response (which element is to blame is the fork's
        // question); explained, like the setpoint symptom, by a finding about an element.
        if self.measured {
            let r = self.r_coil_response_c;
            let threshold = d.coil_error_c.max(4.0 * self.unit.sigma_supply_averaged_c);
            rule(
                &mut self.own,
                FaultKind::CoilResponse,
                (r, r.abs() > threshold && !explained),
                threshold,
                None,
                false,
            );
        }

        // Outdoor-air damper: leak when closed, stuck when the mixing disagrees with its feedback.
        if let Some((i, f)) = oad_fb {
            let dev = self.children[i].id.clone();
            let sup = reports[i].status.is_alarm();
            let r = self.r_oa_fraction;
            let leak = observable && f <= closed && r > d.outdoor_fraction_error;
            let stuck = observable && f > closed && r.abs() > d.outdoor_fraction_error;
            rule(
                &mut self.per_child[i],
                FaultKind::DamperLeak,
                (r, leak),
                d.outdoor_fraction_error,
                Some(&dev),
                sup || !observable,
            );
            rule(
                &mut self.per_child[i],
                FaultKind::StuckAt,
                (r, stuck),
                d.outdoor_fraction_error,
                Some(&dev),
                sup || !observable,
            );
        }
        // Coils: a residual on the supply air belongs to the valve that modulates, or, with both
        // closed, to the coil whose direction it shows (FC14 cooling, FC15 heating).
        let r = self.r_supply_c;
        let chw_open = chw_fb.is_some_and(|(_, f)| f > closed);
        let hw_open = hw_fb.is_some_and(|(_, f)| f > closed);
        // A cooling coil shows as negative residual (colder than predicted), a heating coil as
        // positive: `sign` turns both into "more of what this coil does".
        for (valve, sign, this_open, other_open) in [(chw_fb, -1.0, chw_open, hw_open), (hw_fb, 1.0, hw_open, chw_open)]
        {
            let Some((i, _)) = valve else { continue };
            let dev = self.children[i].id.clone();
            let sup = reports[i].status.is_alarm();
            let leak = coils_settled && !this_open && !other_open && sign * r > d.closed_coil_delta_c;
            let stuck = !self.measured && this_open && !other_open && r.abs() > d.coil_error_c;
            let book = &mut self.per_child[i];
            rule(book, FaultKind::ValveLeak, (sign * r, leak), d.closed_coil_delta_c, Some(&dev), sup);
            rule(book, FaultKind::StuckAt, (r.abs(), stuck), d.coil_error_c, Some(&dev), sup);
        }
        // Zone dampers: the zone stays warm while its damper is already wide open.
        for (i, report) in reports.iter().enumerate() {
            if self.children[i].role != Role::ZoneDamper {
                continue;
            }
            let dev = self.children[i].id.clone();
            let sup = report.status.is_alarm();
            let f = if report.feedback_pct.is_finite() { report.feedback_pct } else { 50.0 };
            let e = self.r_zone_c[i];
            // Too warm with the damper already wide open. (Too cold at minimum airflow is normal
            // at low load, so it is not evidence.) A warm supply explains warm zones: then the
            // damper is not to blame.
            let supply_ok = self.r_sat_error_c.abs() < d.supply_air_error_c / 2.0;
            let stuck = e > d.zone_error_c && f >= 95.0 && supply_ok;
            rule(&mut self.per_child[i], FaultKind::StuckAt, (e.abs(), stuck), d.zone_error_c, Some(&dev), sup);
        }
    }
}

/// The plant: sums its AHUs' loads and sets the water temperatures they get.
#[derive(Debug, Clone)]
pub struct Plant {
    pub id: String,
    template: Arc<PlantTemplate>,
    pub load_kw: f64,
}

impl Plant {
    pub fn new(id: &str, template: Arc<PlantTemplate>) -> Plant {
        Plant { id: id.into(), template, load_kw: 0.0 }
    }

    /// Conditions for the next epoch, from the AHUs' summaries of this one.
    pub fn update(&mut self, ahus: &[AhuSummary]) -> PlantConditions {
        let p = &self.template;
        self.load_kw = ahus.iter().map(|a| a.cooling_kw).sum();
        let over = (self.load_kw - p.cooling_capacity_kw).max(0.0);
        PlantConditions {
            // The chillers' supply temperature rises when overloaded, by at most 10 K.
            chilled_water_c: p.chilled_water_supply_c + (over * p.chilled_water_rise_k_per_kw).min(10.0),
            hot_water_c: p.hot_water_supply_c,
        }
    }

    pub fn conditions(&self) -> PlantConditions {
        PlantConditions {
            chilled_water_c: self.template.chilled_water_supply_c,
            hot_water_c: self.template.hot_water_supply_c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plain::Setup;
    use crate::scenario::Scenario;
    use crate::testkit;

    /// Runs AHU 0 of the data centre for `secs` with children that do what they are told,
    /// except `stuck` (child slot, position) which stays put from 20 min on (its actuator still
    /// reports the command); its findings and last summary.
    fn drive(secs: u64, stuck: Option<(usize, f64)>) -> (Vec<FindingEvent>, Vec<Phase>, AhuSummary, Vec<ChildSpec>) {
        let (f, s) = (testkit::datacenter(), testkit::scenario(secs as u32, ""));
        let setup = Setup::new(&s, &f, false);
        let mut ahu = setup.ahus.into_iter().next().unwrap();
        let (findings, phases, last) = drive_from(&mut ahu, &setup.plant, 0..secs, stuck);
        (findings, phases, last, ahu.children.clone())
    }

    /// Steps `ahu` through the epochs `range` (as [`drive`] does).
    fn drive_from(
        ahu: &mut Ahu,
        plant: &Option<Plant>,
        range: std::ops::Range<u64>,
        stuck: Option<(usize, f64)>,
    ) -> (Vec<FindingEvent>, Vec<Phase>, AhuSummary) {
        let plant = plant.as_ref().map(Plant::conditions);
        let (mut findings, mut phases, mut last) = (Vec::new(), Vec::new(), None);
        for e in range {
            let (phase, cmds) = ahu.begin_epoch(SimTime(e * 1000), 1.0, plant);
            phases.push(phase);
            let reports: Vec<ChildReport> = cmds
                .iter()
                .enumerate()
                .map(|(k, &c)| {
                    let p = match stuck {
                        Some((slot, at)) if slot == k && e >= 1200 => at,
                        _ => c,
                    };
                    ChildReport { opening_pct: p, feedback_pct: c, status: Status::Healthy }
                })
                .collect();
            last = Some(ahu.end_epoch(SimTime((e + 1) * 1000), 1.0, &reports, &mut findings));
        }
        (findings, phases, last.unwrap())
    }

    /// Another unit than SZVAV (the simulated data-centre AHU, its own physics) logged as a
    /// 1-minute trend log of commands and temperatures over five days, with `role`'s element
    /// stuck at `at_pct` on days 1 and 3 while its actuator reports the command; replayed as
    /// `twinfault replay` does (the trend-log template, the unit learned from the log). The
    /// findings opened, by day, and the element's id.
    fn judge_another_unit(role: Role, at_pct: f64) -> (Vec<(u64, FindingEvent)>, String) {
        let f = testkit::datacenter();
        let scenario = |day: u64| {
            let text = format!(
                "name = \"unit\"\nfacility = \"../twins/datacenter.toml\"\nseed = {}\nduration_s = 10800\n\
                 sample_rate_hz = 5.0\ncontrol_period_s = 1.0\nstart_clock = \"08:00\"\n\
                 [schedule]\nmode = \"always_on\"\nstartup_s = 60\n\
                 [weather]\noutdoor_mean_c = {}\noutdoor_amplitude_c = 4.0\n",
                7 + day,
                22.0 + 2.0 * day as f64
            );
            Scenario::parse(&text, "unit.toml").expect("scenario parses")
        };
        let (mut log, mut element) = (Vec::new(), String::new());
        for day in 0..5u64 {
            let s = scenario(day);
            let setup = Setup::new(&s, &f, false);
            let mut ahu = setup.ahus.into_iter().next().unwrap();
            let plant = setup.plant.as_ref().map(Plant::conditions);
            let slot = ahu.children.iter().position(|c| c.role == role).unwrap();
            element = ahu.children[slot].id.clone();
            let faulty = day == 1 || day == 3;
            let mut sink = Vec::new();
            for e in 0..10_800u64 {
                let (phase, cmds) = ahu.begin_epoch(SimTime(e * 1000), 1.0, plant);
                let cmds = cmds.to_vec();
                let reports: Vec<ChildReport> = cmds
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| {
                        let p = if faulty && k == slot && e >= 1800 { at_pct } else { c };
                        ChildReport { opening_pct: p, feedback_pct: c, status: Status::Healthy }
                    })
                    .collect();
                let sum = ahu.end_epoch(SimTime((e + 1) * 1000), 1.0, &reports, &mut sink);
                if e % 60 == 59 {
                    log.push(AhuMeasurement {
                        t: SimTime(day * 86_400_000 + (e + 1) * 1000),
                        occupied: phase == Phase::Occupied,
                        outdoor_air_c: sum.outdoor_air_c,
                        return_air_c: sum.return_air_c,
                        mixed_air_c: sum.mixed_air_c,
                        supply_air_c: sum.supply_air_c,
                        supply_air_setpoint_c: Some(sum.supply_air_setpoint_c),
                        commands_pct: cmds,
                    });
                }
            }
        }
        // The AHU as `twinfault replay` builds it: the trend-log template, the same children.
        let s = scenario(0);
        let sim = Setup::new(&s, &f, false).ahus.into_iter().next().unwrap();
        let template = AhuTemplate::parse(include_str!("../../../twins/ahu_trend_log.toml"), "ahu_trend_log.toml")
            .expect("shipped template parses");
        let mut unit = Ahu::new(&sim.id, Arc::new(template), sim.children.clone(), Schedule::Off, sim.weather, 0.0, 1);
        unit.learn_unit(&log);
        assert!(unit.unit_model().learned_from > 500, "{:?}", unit.unit_model());
        let mut opened: Vec<(u64, FindingEvent)> = Vec::new();
        for m in &log {
            let mut out = Vec::new();
            unit.observe(m, 60.0, &mut out);
            opened.extend(
                out.into_iter().filter(|f| f.change == crate::detect::Change::Opened).map(|f| (m.t.0 / 86_400_000, f)),
            );
        }
        (opened, element)
    }

    #[test]
    fn a_trend_log_of_another_unit_is_judged_against_its_learned_self() {
        // A cooling valve stuck shut or open, a heating valve stuck half open, on warm days.
        for (role, at_pct) in [(Role::CoolingValve, 0.0), (Role::CoolingValve, 100.0), (Role::HeatingValve, 50.0)] {
            let (opened, element) = judge_another_unit(role, at_pct);
            for day in [0, 2, 4] {
                let raised: Vec<&str> =
                    opened.iter().filter(|(d, _)| *d == day).map(|(_, f)| f.summary.as_str()).collect();
                assert!(raised.is_empty(), "{element} at {at_pct} %: healthy day {day} raised {raised:?}");
            }
            for day in [1, 3] {
                let first = opened.iter().find(|(d, _)| *d == day).map(|(_, f)| f);
                let first = first.unwrap_or_else(|| panic!("{element} at {at_pct} %: fault day {day} raised nothing"));
                let likely = first.likely.as_ref().map(|l| (l.device.as_str(), l.kind));
                assert_eq!(likely, Some((element.as_str(), FaultKind::StuckAt)), "day {day}: {}", first.summary);
            }
        }
    }

    #[test]
    fn a_snapshot_restores_to_a_twin_that_continues_byte_for_byte() {
        let (f, s) = (testkit::datacenter(), testkit::scenario(3600, ""));
        let setup = Setup::new(&s, &f, false);
        let mut ahu = setup.ahus.into_iter().next().unwrap();
        let slot = ahu.children.iter().position(|c| c.role == Role::CoolingValve).unwrap();
        // Mid-run: the valve has stuck, findings are pending or open, the fork has history.
        drive_from(&mut ahu, &setup.plant, 0..1500, Some((slot, 0.0)));
        let snapshot = serde_json::to_string(&ahu).expect("an AHU serializes");
        let mut restored: Ahu = serde_json::from_str(&snapshot).expect("and restores");
        assert_eq!(serde_json::to_string(&restored).unwrap(), snapshot);
        let a = drive_from(&mut ahu, &setup.plant, 1500..3600, Some((slot, 0.0)));
        let b = drive_from(&mut restored, &setup.plant, 1500..3600, Some((slot, 0.0)));
        assert!(!a.0.is_empty(), "the continuation raises findings to compare");
        assert_eq!(serde_json::to_string(&a.0).unwrap(), serde_json::to_string(&b.0).unwrap());
        assert_eq!(serde_json::to_string(&ahu).unwrap(), serde_json::to_string(&restored).unwrap());
    }

    #[test]
    fn a_healthy_unit_starts_up_holds_its_setpoint_and_raises_nothing() {
        let (findings, phases, last, _) = drive(1800, None);
        assert_eq!(phases[0], Phase::Startup);
        assert_eq!(*phases.last().unwrap(), Phase::Occupied);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(last.status, Status::Healthy);
        assert!((last.supply_air_c - last.supply_air_setpoint_c).abs() < 1.5, "{last:?}");
        assert!(last.cooling_kw > 0.0, "a warm day needs cooling: {last:?}");
    }

    #[test]
    fn a_stuck_cooling_valve_is_named_by_the_ahu() {
        let (_, _, _, children) = drive(1, None);
        let slot = children.iter().position(|c| c.role == crate::types::Role::CoolingValve).expect("a cooling valve");
        // Its valve shuts on a warm day while the actuator reports what it is told.
        let (findings, _, last, _) = drive(3600, Some((slot, 0.0)));
        let about: Vec<&FindingEvent> =
            findings.iter().filter(|f| f.device.as_deref() == Some(children[slot].id.as_str())).collect();
        assert!(
            about.iter().any(|f| f.kind == FaultKind::StuckAt && f.change == crate::detect::Change::Opened),
            "no stuck_at about {}: {findings:?}",
            children[slot].id
        );
        // The fork, run as it opened, names the valve too.
        let opened = about.iter().find(|f| f.change == crate::detect::Change::Opened).unwrap();
        let likely = opened.likely.as_ref().unwrap_or_else(|| panic!("no fork conclusion: {}", opened.summary));
        assert_eq!(likely.device, children[slot].id, "{}", opened.summary);
        assert!(opened.summary.contains("likely"), "{}", opened.summary);
        // The supply-air symptom it causes does not open while the valve's finding explains it.
        let stuck = about.iter().map(|f| f.t).min().unwrap();
        assert!(
            !findings.iter().any(|f| f.kind == FaultKind::SupplyAirDeviation
                && f.change == crate::detect::Change::Opened
                && f.t > stuck),
            "{findings:?}"
        );
        assert!(last.status >= Status::Warning);
    }

    #[test]
    fn the_status_rolls_up_the_worst_child() {
        let (f, s) = (testkit::datacenter(), testkit::scenario(10, ""));
        let ahu = Setup::new(&s, &f, false).ahus.into_iter().next().unwrap();
        let r = |status| ChildReport { opening_pct: 0.0, feedback_pct: 0.0, status };
        assert_eq!(ahu.status(&[r(Status::Healthy), r(Status::Critical)]), Status::Critical);
        assert_eq!(ahu.status(&[r(Status::Unknown), r(Status::Unknown)]), Status::Unknown);
        assert_eq!(ahu.status(&[r(Status::Unknown), r(Status::Warning)]), Status::Warning);
        assert_eq!(ahu.own_status(), Status::Healthy);
    }
}
