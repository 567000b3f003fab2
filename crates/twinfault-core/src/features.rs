//! Window features of one actuator's samples: what the dataset's window files hold, what the
//! learned classifier is trained on and what a twin computes on its live windows. One function
//! for all three, so training and inference can never disagree. Features are rates, fractions
//! and statistics that do not depend on the sample rate where that can be helped.

use crate::actuator::Sample;
use crate::types::{Phase, Role};

/// Feature names, in order, with units.
pub const FEATURES: &[(&str, &str)] = &[
    ("setpoint_mean", "%"),
    ("setpoint_std", "%"),
    ("position_mean", "%"),
    ("position_std", "%"),
    ("position_range", "%"),
    ("error_abs_mean", "%"),
    ("error_abs_max", "%"),
    ("error_abs_last", "%"),
    ("setpoint_travel_rate", "%/s"),
    ("position_travel_rate", "%/s"),
    ("travel_ratio", "1"),
    ("moving_share", "1"),
    ("speed_moving", "%/s"),
    ("reversals_rate", "1/min"),
    ("jumps_rate", "1/min"),
    ("stuck_share", "1"),
    ("torque_abs_mean", "N·m"),
    ("torque_std", "N·m"),
    ("torque_abs_max", "N·m"),
    ("torque_abs_moving", "N·m"),
    ("torque_abs_rest", "N·m"),
    ("torque_opening", "N·m"),
    ("torque_closing", "N·m"),
    ("power_mean", "W"),
    ("power_max", "W"),
    ("power_moving", "W"),
    ("temperature_mean", "°C"),
    ("temperature_max", "°C"),
    ("temperature_slope", "°C/min"),
    ("signal_quality_mean", "1"),
    ("signal_quality_min", "1"),
    ("sample_rate", "Hz"),
    ("max_gap", "s"),
    ("is_valve", "1"),
    ("phase_startup", "1"),
    ("phase_shutdown", "1"),
    ("phase_off", "1"),
];

pub const N_FEATURES: usize = 37;

/// Features of the samples `s` (time order) of a window `length_s` long, on an actuator of
/// `role`, in `phase`. Missing values (no samples, no signal quality) are written as −1.
pub fn window_features(s: &[Sample], length_s: f64, role: Role, phase: Phase) -> [f64; N_FEATURES] {
    let mut f = [-1.0; N_FEATURES];
    let n = s.len();
    let dur = length_s.max(1e-3);
    f[31] = n as f64 / dur;
    f[33] = f64::from(u8::from(matches!(role, Role::CoolingValve | Role::HeatingValve)));
    f[34] = f64::from(u8::from(phase == Phase::Startup));
    f[35] = f64::from(u8::from(phase == Phase::Shutdown));
    f[36] = f64::from(u8::from(phase == Phase::Off));
    if n == 0 {
        f[32] = dur;
        return f;
    }
    let nf = n as f64;
    let mean = |g: &dyn Fn(&Sample) -> f64| s.iter().map(g).sum::<f64>() / nf;
    let std = |g: &dyn Fn(&Sample) -> f64, m: f64| (s.iter().map(|x| (g(x) - m).powi(2)).sum::<f64>() / nf).sqrt();
    let sp = |x: &Sample| f64::from(x.setpoint_pct);
    let pos = |x: &Sample| f64::from(x.position_pct);
    let tq = |x: &Sample| f64::from(x.torque_nm);
    let err = |x: &Sample| (f64::from(x.setpoint_pct) - f64::from(x.position_pct)).abs();
    f[0] = mean(&sp);
    f[1] = std(&sp, f[0]);
    f[2] = mean(&pos);
    f[3] = std(&pos, f[2]);
    let (pmin, pmax) = s.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(pos(x)), b.max(pos(x))));
    f[4] = pmax - pmin;
    f[5] = mean(&err);
    f[6] = s.iter().map(err).fold(0.0, f64::max);
    f[7] = err(&s[n - 1]);
    let (mut sp_travel, mut pos_travel, mut reversals, mut jumps, mut stuck) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut last_dir = 0.0f64;
    let mut max_gap: f64 = 0.0;
    for w in s.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        sp_travel += (sp(b) - sp(a)).abs();
        let d = pos(b) - pos(a);
        pos_travel += d.abs();
        if d.abs() > 0.05 {
            let dir = d.signum();
            if last_dir != 0.0 && dir != last_dir {
                reversals += 1.0;
            }
            last_dir = dir;
        }
        if d.abs() > 1.0 {
            jumps += 1.0;
        }
        if err(b) > 5.0 && d.abs() < 0.01 {
            stuck += 1.0;
        }
        max_gap = max_gap.max((b.t.0.saturating_sub(a.t.0)) as f64 / 1000.0);
    }
    f[8] = sp_travel / dur;
    f[9] = pos_travel / dur;
    f[10] = pos_travel / sp_travel.max(1.0);
    let moving: Vec<&Sample> = s.iter().filter(|x| x.rotation != 0).collect();
    let moving_share = moving.len() as f64 / nf;
    f[11] = moving_share;
    f[12] = if moving.is_empty() { 0.0 } else { pos_travel / (moving_share * dur).max(1e-3) };
    f[13] = reversals / dur * 60.0;
    f[14] = jumps / dur * 60.0;
    f[15] = stuck / nf;
    f[16] = mean(&|x| tq(x).abs());
    let tm = mean(&tq);
    f[17] = std(&tq, tm);
    f[18] = s.iter().map(|x| tq(x).abs()).fold(0.0, f64::max);
    let avg = |it: &mut dyn Iterator<Item = f64>| {
        let (sum, k) = it.fold((0.0, 0usize), |(a, k), v| (a + v, k + 1));
        if k == 0 { 0.0 } else { sum / k as f64 }
    };
    f[19] = avg(&mut moving.iter().map(|x| tq(x).abs()));
    f[20] = avg(&mut s.iter().filter(|x| x.rotation == 0).map(|x| tq(x).abs()));
    f[21] = avg(&mut s.iter().filter(|x| x.rotation == 1).map(tq));
    f[22] = avg(&mut s.iter().filter(|x| x.rotation == 2).map(tq));
    f[23] = mean(&|x| f64::from(x.power_w));
    f[24] = s.iter().map(|x| f64::from(x.power_w)).fold(f64::MIN, f64::max);
    f[25] = avg(&mut moving.iter().map(|x| f64::from(x.power_w)));
    f[26] = mean(&|x| f64::from(x.temperature_c));
    f[27] = s.iter().map(|x| f64::from(x.temperature_c)).fold(f64::MIN, f64::max);
    let span_s = ((s[n - 1].t.0.saturating_sub(s[0].t.0)) as f64 / 1000.0).max(1.0);
    f[28] = (f64::from(s[n - 1].temperature_c) - f64::from(s[0].temperature_c)) / span_s * 60.0;
    let q: Vec<f64> = s.iter().filter_map(|x| x.signal_quality.map(f64::from)).collect();
    if !q.is_empty() {
        f[29] = q.iter().sum::<f64>() / q.len() as f64;
        f[30] = q.iter().copied().fold(f64::MAX, f64::min);
    }
    // The part of the window its samples do not span counts as a gap too.
    f[32] = max_gap.max(dur - span_s);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SimTime;

    fn sample(t_ms: u64, sp: f32, pos: f32, torque: f32, rotation: u8) -> Sample {
        Sample {
            t: SimTime(t_ms),
            setpoint_pct: sp,
            position_pct: pos,
            torque_nm: torque,
            power_w: 0.1,
            temperature_c: 30.0,
            rotation,
            signal_quality: Some(0.95),
        }
    }

    #[test]
    fn names_match_the_vector() {
        assert_eq!(FEATURES.len(), N_FEATURES);
    }

    #[test]
    fn a_jammed_window_and_a_tracking_window_differ_where_they_should() {
        // 10 s at 10 Hz: the command ramps 0 → 50 %; one actuator follows, one stays at 0.
        let follow: Vec<Sample> =
            (0..100).map(|k| sample(k * 100, k as f32 / 2.0, (k as f32 / 2.0 - 1.0).max(0.0), -0.6, 1)).collect();
        let jammed: Vec<Sample> = (0..100).map(|k| sample(k * 100, k as f32 / 2.0, 0.0, 0.0, 1)).collect();
        let a = window_features(&follow, 10.0, Role::ZoneDamper, Phase::Occupied);
        let b = window_features(&jammed, 10.0, Role::ZoneDamper, Phase::Occupied);
        assert!((a[9] - 4.85).abs() < 1e-3, "position travel rate {}", a[9]);
        assert_eq!(b[9], 0.0);
        assert!(a[10] > 0.9 && b[10] == 0.0, "travel ratio {} {}", a[10], b[10]);
        assert!(b[15] > 0.8 && a[15] == 0.0, "stuck share {} {}", b[15], a[15]);
        assert!((a[19] - 0.6).abs() < 1e-6 && b[19] == 0.0);
        assert!((a[31] - 10.0).abs() < 1e-9);
        assert!((a[29] - 0.95).abs() < 1e-6);
        assert_eq!((a[33], a[34], a[36]), (0.0, 0.0, 0.0));
        // An empty window: silence for its whole length.
        let e = window_features(&[], 10.0, Role::CoolingValve, Phase::Startup);
        assert_eq!((e[31], e[32], e[33], e[34]), (0.0, 10.0, 1.0, 1.0));
    }
}
