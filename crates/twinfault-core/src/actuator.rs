//! The actuator model: a Belimo-style damper or valve actuator, calibrated to the real rig.
//!
//! Physics per step: the device's positioner compares its command with its own encoder and,
//! outside its deadband, drives the motor toward the command. The motor holds rated speed while
//! the load allows; load is Coulomb plus viscous friction plus any fault torque. From rest the
//! motor torque builds up at a finite rate and the shaft breaks away only when it exceeds the
//! static (breakaway) friction, so stiction produces real stick-slip: a hold, then a jump. A
//! blocked shaft stalls; after `overload_protection_s` the device stops driving and stays off
//! while the command stays on the blocked side; it retries when the command comes back or
//! crosses to the free side, or after `retry_after_s` (the rig's held gear left the motor off).
//! Power follows torque × speed plus electronics and copper losses; the housing temperature is a
//! first-order thermal RC with self-heating. Outputs are quantised like the real device.

use crate::config::ActuatorTemplate;
use crate::fault::{ActiveInjection, FaultEffects, Injection};
use crate::rng::{NodeRng, node_rng, normal, uniform};
use crate::types::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// One telemetry sample of an actuator, as the device (or its gateway) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: SimTime,
    /// Commanded position [%].
    pub setpoint_pct: f32,
    /// Feedback position [%].
    pub position_pct: f32,
    /// Signed motor torque [N·m]: negative while opening, positive while closing.
    pub torque_nm: f32,
    /// Electrical power [W].
    pub power_w: f32,
    /// Internal temperature [°C].
    pub temperature_c: f32,
    /// 0 = stopped, 1 = opening, 2 = closing.
    pub rotation: u8,
    /// Control-signal quality [0..1], when the device or gateway reports one.
    pub signal_quality: Option<f32>,
}

/// Which way the positioner drives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Drive {
    Idle,
    /// Driving in `dir` (+1 opening, −1 closing); `held_s` is how long the shaft has been held.
    Driving {
        dir: i8,
        held_s: f32,
    },
    /// Overload protection: stopped after being blocked while driving in `dir`, for `since_s`.
    Protected {
        dir: i8,
        since_s: f32,
    },
}

/// A simulated actuator.
#[derive(Debug, Clone)]
pub struct Actuator {
    template: Arc<ActuatorTemplate>,
    rng: NodeRng,
    /// True shaft position [%].
    pos: f64,
    /// Motor torque magnitude being applied [N·m].
    motor_torque: f64,
    drive: Drive,
    /// Whether the shaft is turning (broke away).
    moving: bool,
    temperature_c: f64,
    /// Position as last refreshed by the device's feedback [%].
    feedback_pct: f64,
    /// Recent shaft positions, oldest first, for a feedback that reports a delayed position;
    /// empty without a delay.
    history: VecDeque<(SimTime, f64)>,
    next_feedback: SimTime,
    injections: Vec<ActiveInjection>,
    /// The output position (what the air or water sees) in the last step [%].
    opening_pct: f64,
    /// The last valid command [%]; held when a command is not a number.
    last_command_pct: f64,
}

fn quantize(v: f64, q: f64) -> f64 {
    if q > 0.0 { crate::types::round(v / q) * q } else { v }
}

impl Actuator {
    pub fn new(template: Arc<ActuatorTemplate>, seed: u64, node_id: &str, initial_pct: f64) -> Actuator {
        let m = &template.model;
        let temperature_c = m.ambient_c + m.self_heating_c + m.start_temperature_offset_c;
        let pos = initial_pct.clamp(0.0, 100.0);
        Actuator {
            rng: node_rng(seed, node_id, "model"),
            pos,
            motor_torque: 0.0,
            drive: Drive::Idle,
            moving: false,
            temperature_c,
            feedback_pct: pos,
            history: VecDeque::new(),
            next_feedback: SimTime::ZERO,
            injections: Vec::new(),
            opening_pct: pos,
            last_command_pct: pos,
            template,
        }
    }

    pub fn template(&self) -> &Arc<ActuatorTemplate> {
        &self.template
    }

    /// Adds an injected fault; it takes effect from its onset.
    pub fn inject(&mut self, injection: Injection) {
        self.injections.push(ActiveInjection { injection, stuck_default_pct: f64::NAN });
    }

    /// Ends every injection still active at `t` (the fault is repaired); their ids.
    pub fn clear_injections(&mut self, t: SimTime) -> Vec<String> {
        let mut ended = Vec::new();
        for a in &mut self.injections {
            if a.injection.start <= t && a.injection.end.is_none_or(|e| e > t) {
                a.injection.end = Some(t);
                ended.push(a.injection.id.clone());
            }
        }
        ended
    }

    /// The output position the air or water sees [%] (differs from feedback under leaks and `stuck_at`).
    pub fn opening_pct(&self) -> f64 {
        self.opening_pct
    }

    fn effects(&mut self, t: SimTime) -> FaultEffects {
        if self.injections.is_empty() {
            return FaultEffects::NONE;
        }
        for a in &mut self.injections {
            if a.stuck_default_pct.is_nan() && a.injection.active_at(t) {
                a.stuck_default_pct = self.opening_pct;
            }
        }
        FaultEffects::at(&self.injections, t, self.template.model.rated_torque_nm)
    }

    /// Advances the model by `dt_s` to time `t` under `command_pct`; returns the sample the
    /// device reports, or `None` when the sample is lost on the way (signal loss).
    pub fn step(&mut self, t: SimTime, dt_s: f64, command_pct: f64) -> Option<Sample> {
        let e = self.effects(t);
        // Borrow the template (no refcount traffic: twins on several threads share it).
        let tpl: &ActuatorTemplate = &self.template;
        let m = &tpl.model;
        let q = &tpl.quantization;
        let t_s = t.as_secs_f64();

        if command_pct.is_finite() {
            self.last_command_pct = command_pct;
        }
        let mut cmd = self.last_command_pct;
        if e.hunting_amp_pct > 0.0 {
            cmd += e.hunting_amp_pct * (std::f64::consts::TAU * t_s / e.hunting_period_s.max(1.0)).sin();
        }
        let cmd = cmd.clamp(0.0, 100.0);

        // External pokes displace the shaft against the drive (destabilization): against the
        // way it is driving, or either way at rest.
        if e.poke_rate_hz > 0.0 && uniform(&mut self.rng) < e.poke_rate_hz * dt_s {
            let sign = match self.drive {
                Drive::Driving { dir, .. } => -f64::from(dir),
                _ if uniform(&mut self.rng) < 0.5 => -1.0,
                _ => 1.0,
            };
            self.pos = (self.pos + sign * e.poke_pct).clamp(0.0, 100.0);
            self.moving = false;
        }

        let err = cmd - self.pos;
        let db = m.deadband_pct;
        self.drive = match self.drive {
            Drive::Idle if err.abs() > db => Drive::Driving { dir: if err > 0.0 { 1 } else { -1 }, held_s: 0.0 },
            Drive::Driving { dir, held_s } => {
                if f64::from(dir) * err <= 0.0 {
                    // Reached (or passed) the command: stop, or reverse when far past it.
                    if err.abs() > db { Drive::Driving { dir: -dir, held_s: 0.0 } } else { Drive::Idle }
                } else {
                    Drive::Driving { dir, held_s }
                }
            }
            // A protected device stays off while the command stays on the blocked side (a
            // sweeping setpoint does not make it push again on every step); it retries when the
            // command comes back to the shaft or crosses to the free side, or after a while.
            Drive::Protected { dir, since_s } => {
                let since_s = since_s + dt_s as f32;
                if err.abs() <= db {
                    Drive::Idle
                } else if f64::from(dir) * err < 0.0 || f64::from(since_s) >= m.retry_after_s {
                    Drive::Driving { dir: if err > 0.0 { 1 } else { -1 }, held_s: 0.0 }
                } else {
                    Drive::Protected { dir, since_s }
                }
            }
            d => d,
        };

        let mut speed_pct_s = 0.0;
        match self.drive {
            Drive::Driving { dir, held_s } => {
                let d = f64::from(dir);
                let friction =
                    m.coulomb_torque_nm + e.extra_friction_nm + m.viscous_torque_nm_per_pct_s * m.rated_speed_pct_s;
                let resisting = (friction + e.jam_torque_nm + d * (m.side_load_nm + e.side_load_nm)).max(0.0);
                let obstacle = dir < 0 && e.block_below_pct.is_some_and(|b| self.pos <= b + 1e-9);
                let can_turn = resisting < m.rated_torque_nm && !obstacle;
                let speed = if m.approach_band_pct > 0.0 {
                    m.rated_speed_pct_s * ((cmd - self.pos).abs() / m.approach_band_pct).clamp(1.0 / 3.0, 1.0)
                } else {
                    m.rated_speed_pct_s
                };
                if self.moving && can_turn {
                    let mut next = self.pos + d * speed * dt_s;
                    if let Some(b) = e.block_below_pct.filter(|&b| dir < 0 && next <= b) {
                        next = b;
                        self.moving = false;
                    }
                    if (cmd - next) * d <= 0.0 {
                        next = cmd;
                        self.moving = false;
                        self.drive = Drive::Idle;
                    }
                    speed_pct_s = (next - self.pos).abs() / dt_s.max(1e-9);
                    self.pos = next.clamp(0.0, 100.0);
                    self.motor_torque = resisting;
                } else {
                    self.moving = false;
                    let breakaway = (m.breakaway_torque_nm
                        + e.extra_breakaway_nm
                        + e.extra_friction_nm
                        + e.jam_torque_nm
                        + d * (m.side_load_nm + e.side_load_nm))
                        .clamp(0.0, m.rated_torque_nm);
                    let before = self.motor_torque;
                    self.motor_torque = (before + m.torque_ramp_nm_s * dt_s).min(m.rated_torque_nm);
                    if can_turn && self.motor_torque >= breakaway {
                        // Break away: the torque stored in the gear train above sliding friction
                        // is released as a jump; the rest of the step is travel at rated speed.
                        let t_break = ((breakaway - before).max(0.0) / m.torque_ramp_nm_s).min(dt_s);
                        self.moving = true;
                        let jump = (breakaway - resisting).max(0.0) * m.slip_gain_pct_per_nm;
                        let travel = jump + speed * (dt_s - t_break);
                        let mut next = self.pos + d * travel;
                        if (cmd - next) * d <= 0.0 && jump < (cmd - self.pos).abs() {
                            // Reached the command within the step without overshooting.
                            next = cmd;
                            self.moving = false;
                            self.drive = Drive::Idle;
                        } else {
                            self.drive = Drive::Driving { dir, held_s: 0.0 };
                        }
                        if let Some(b) = e.block_below_pct.filter(|_| dir < 0) {
                            next = next.max(b);
                        }
                        speed_pct_s = (next - self.pos).abs() / dt_s.max(1e-9);
                        self.pos = next.clamp(0.0, 100.0);
                        self.motor_torque = resisting;
                    } else {
                        let held_s = held_s + dt_s as f32;
                        self.drive = if f64::from(held_s) >= m.overload_protection_s {
                            self.motor_torque = 0.0;
                            Drive::Protected { dir, since_s: 0.0 }
                        } else {
                            Drive::Driving { dir, held_s }
                        };
                    }
                }
            }
            Drive::Idle | Drive::Protected { .. } => {
                self.moving = false;
                self.motor_torque = 0.0;
            }
        }

        let (rotation, dir) = match self.drive {
            Drive::Driving { dir, .. } if dir > 0 => (1u8, 1.0),
            Drive::Driving { .. } => (2u8, -1.0),
            _ => (0u8, 0.0),
        };
        let driving = rotation != 0;
        let torque_noise = if driving { m.torque_noise_nm } else { m.rest_torque_noise_nm };
        // With the motor off the sensor mostly reads exactly zero (the rig: 80-88 % of samples).
        let silent = !driving && m.rest_torque_zero_share > 0.0 && uniform(&mut self.rng) < m.rest_torque_zero_share;
        let torque = if silent { 0.0 } else { -dir * self.motor_torque + torque_noise * normal(&mut self.rng) };
        let omega_rad_s = speed_pct_s / 100.0 * m.stroke_deg.to_radians();
        let mut power = m.standby_power_w;
        if driving {
            power += m.moving_power_w
                + self.motor_torque * omega_rad_s / m.motor_efficiency
                + m.copper_loss_w_per_nm2 * self.motor_torque * self.motor_torque
                + m.power_noise_w * normal(&mut self.rng);
        }
        let power = power.max(0.0);
        let t_ss = m.ambient_c + m.self_heating_c + m.thermal_resistance_c_per_w * (power + e.heat_w);
        let a = (dt_s / m.thermal_time_constant_s).min(1.0);
        self.temperature_c += (t_ss - self.temperature_c) * a;

        self.opening_pct = match e.stuck {
            Some((p, w)) => self.pos * (1.0 - w) + p * w,
            None => self.pos,
        }
        .max(e.leak_pct);

        let reported = if m.feedback_delay_s > 0.0 {
            // The newest position at least the delay old (the oldest while the history is
            // shorter): a move shows whole, one step, the delay later.
            let cutoff = t.0.saturating_sub(crate::types::round(m.feedback_delay_s * 1000.0) as u64);
            self.history.push_back((t, self.pos));
            while self.history.len() > 1 && self.history[1].0.0 <= cutoff {
                self.history.pop_front();
            }
            self.history[0].1
        } else {
            self.pos
        };
        if t >= self.next_feedback {
            self.feedback_pct = (reported + e.feedback_offset_pct).clamp(0.0, 100.0);
            let period_ms = crate::types::round(1000.0 / m.position_update_hz) as u64;
            self.next_feedback = SimTime(t.0 + period_ms.max(1));
        }
        let quality =
            (m.signal_quality_mean.min(e.quality_cap) + m.signal_quality_noise * normal(&mut self.rng)).clamp(0.0, 1.0);
        // Samples a healthy gateway loses anyway (irregular polling), and those a fault loses.
        let drop = 1.0 - (1.0 - e.drop_prob) * (1.0 - m.healthy_drop_share);
        if drop > 0.0 && uniform(&mut self.rng) < drop {
            return None;
        }
        Some(Sample {
            t,
            setpoint_pct: cmd as f32,
            position_pct: quantize(self.feedback_pct, q.position_pct) as f32,
            torque_nm: torque as f32,
            power_w: quantize(power, q.power_w) as f32,
            temperature_c: quantize(self.temperature_c, q.temperature_c) as f32,
            rotation,
            signal_quality: m.reports_signal_quality.then_some(quality as f32),
        })
    }
}
