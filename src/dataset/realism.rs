//! `twinfault realism`: healthy synthetic windows against the real rig's healthy recordings.
//! Both sides are cut into the same windows, of dampers moving at some time in the window (the
//! rig's recordings are bench tests: the actuator moves), described by the window features that
//! do not depend on the sample rate; then per-feature Kolmogorov-Smirnov statistics, the RBF
//! kernel MMD and kNN neighbourhood mixing (0.5 = indistinguishable) on standardised features.

use super::evaluate::Dataset;
use super::table::Col;
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::Path;
use twinfault_core::actuator::Sample;
use twinfault_core::features::{FEATURES, window_features};
use twinfault_core::types::{Phase, Role, SimTime};

/// Features compared: those that do not grow or shrink with the sample rate (maxima, gaps,
/// per-sample jump counts and rates do) and that a rig without a signal-quality source has.
pub const COMPARED: &[&str] = &[
    "setpoint_mean",
    "setpoint_std",
    "position_mean",
    "position_std",
    "position_range",
    "error_abs_mean",
    "setpoint_travel_rate",
    "position_travel_rate",
    "travel_ratio",
    "moving_share",
    "speed_moving",
    "stuck_share",
    "torque_abs_mean",
    "torque_std",
    "torque_abs_moving",
    "torque_abs_rest",
    "torque_opening",
    "torque_closing",
    "power_mean",
    "power_moving",
    "temperature_mean",
];

#[derive(Debug, Clone, Serialize)]
pub struct Realism {
    pub window_s: f64,
    /// Windows kept: the damper moves at least this share of the time (on both sides).
    pub min_moving: f64,
    pub real_windows: usize,
    pub synthetic_windows: usize,
    /// Per feature: the two-sample Kolmogorov-Smirnov statistic.
    pub ks: Vec<(String, f64)>,
    /// RBF-kernel maximum mean discrepancy (biased estimate, median-distance bandwidth) on
    /// standardised features, balanced samples.
    pub mmd: f64,
    /// Mean share of each window's 5 nearest neighbours that come from the other set (balanced
    /// sets: 0.5 means the two cannot be told apart, 0 means fully separated).
    pub knn_mixing: f64,
    /// Per feature: the median of the real and of the synthetic windows.
    pub real_median: Vec<f64>,
    pub synthetic_median: Vec<f64>,
}

fn select(f: &[f64; twinfault_core::features::N_FEATURES]) -> Vec<f64> {
    COMPARED.iter().map(|n| f[FEATURES.iter().position(|x| x.0 == *n).expect("a feature")]).collect()
}

/// Windows `[t0, t0 + w)` every `w / 2` over time-ordered samples; those in which the device
/// moves at least `min_moving` of the time.
pub fn windows(samples: &[Sample], w_ms: u64, min_moving: f64, out: &mut Vec<Vec<f64>>) {
    let Some(first) = samples.first() else { return };
    let last = samples.last().expect("non-empty").t.0;
    let mut t0 = first.t.0;
    let mut lo = 0;
    while t0 + w_ms <= last + 1 {
        while lo < samples.len() && samples[lo].t.0 < t0 {
            lo += 1;
        }
        let hi = lo + samples[lo..].partition_point(|s| s.t.0 < t0 + w_ms);
        let f = window_features(&samples[lo..hi], w_ms as f64 / 1000.0, Role::ZoneDamper, Phase::Occupied);
        if hi > lo + 3 && f[11] > 0.0 && f[11] >= min_moving {
            out.push(select(&f));
        }
        t0 += w_ms / 2;
    }
}

/// The real rig's recordings (every CSV under `dir`, recursively), as windows.
pub fn real_windows(dir: &Path, w_ms: u64, min_moving: f64, strict: bool) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for f in crate::telemetry::rig::csv_files(dir)? {
        let rec = crate::telemetry::rig::read(&f, strict)?;
        rec.tally.warn();
        windows(&rec.samples, w_ms, min_moving, &mut out);
    }
    Ok(out)
}

/// Healthy steady-state windows of the dataset's dampers.
pub fn synthetic_windows(ds: &Dataset, w_ms: u64, min_moving: f64) -> Result<Vec<Vec<f64>>> {
    let t = &ds.samples;
    let get_f32 = |n: &str| -> Result<&[f32]> {
        match t.col(n)? {
            Col::F32(v) => Ok(v),
            _ => bail!("{n} is not float"),
        }
    };
    let (Col::I32(run), Col::Str { dict: nodes, codes: node }, Col::I64(tms), Col::I32(rot)) =
        (t.col("run")?, t.col("node")?, t.col("t_ms")?, t.col("rotation")?)
    else {
        bail!("unexpected sample columns")
    };
    let (Col::Str { dict: kinds, codes: kind }, Col::Str { dict: phases, codes: phase }) =
        (t.col("fault_kind")?, t.col("phase")?)
    else {
        bail!("unexpected label columns")
    };
    let (sp, pos, tq, pw, temp) = (
        get_f32("setpoint_pct")?,
        get_f32("position_pct")?,
        get_f32("torque_nm")?,
        get_f32("power_w")?,
        get_f32("temperature_c")?,
    );
    let damper = |id: &str| {
        ds.facility.actuators.iter().any(|a| a.id == id && matches!(a.role, Role::ZoneDamper | Role::OutdoorAirDamper))
    };
    let mut out = Vec::new();
    for std::ops::Range { start: k, end } in super::evaluate::groups(run, node) {
        if damper(&nodes[node[k] as usize]) {
            // Stretches of healthy steady operation, each cut into windows.
            let mut j = k;
            while j < end {
                let ok = |i: usize| &*kinds[kind[i] as usize] == "normal" && &*phases[phase[i] as usize] == "steady";
                if !ok(j) {
                    j += 1;
                    continue;
                }
                let mut e = j;
                while e < end && ok(e) {
                    e += 1;
                }
                let samples: Vec<Sample> = (j..e)
                    .map(|i| Sample {
                        t: SimTime(tms[i].max(0) as u64),
                        setpoint_pct: sp[i],
                        position_pct: pos[i],
                        torque_nm: tq[i],
                        power_w: pw[i],
                        temperature_c: temp[i],
                        rotation: rot[i].clamp(0, 2) as u8,
                        signal_quality: None,
                    })
                    .collect();
                windows(&samples, w_ms, min_moving, &mut out);
                j = e;
            }
        }
    }
    Ok(out)
}

/// Two-sample Kolmogorov-Smirnov statistic.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Standardises both sets with their pooled mean and standard deviation per column.
fn standardise(x: &mut [Vec<f64>], y: &mut [Vec<f64>]) {
    let d = x.first().or(y.first()).map_or(0, Vec::len);
    let n = (x.len() + y.len()) as f64;
    for c in 0..d {
        let mean = x.iter().chain(y.iter()).map(|r| r[c]).sum::<f64>() / n;
        let sd = (x.iter().chain(y.iter()).map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-9);
        for r in x.iter_mut().chain(y.iter_mut()) {
            r[c] = (r[c] - mean) / sd;
        }
    }
}

/// Biased MMD with an RBF kernel whose bandwidth is the median pairwise distance.
pub fn mmd(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let pooled: Vec<&Vec<f64>> = x.iter().chain(y).collect();
    let mut d: Vec<f64> = Vec::new();
    for i in 0..pooled.len() {
        for j in (i + 1)..pooled.len() {
            d.push(dist2(pooled[i], pooled[j]));
        }
    }
    d.sort_by(f64::total_cmp);
    let sigma2 = d.get(d.len() / 2).copied().unwrap_or(1.0).max(1e-9);
    let k = |a: &[f64], b: &[f64]| (-dist2(a, b) / (2.0 * sigma2)).exp();
    let mean = |p: &[Vec<f64>], q: &[Vec<f64>]| {
        let mut s = 0.0;
        for a in p {
            for b in q {
                s += k(a, b);
            }
        }
        s / (p.len() * q.len()) as f64
    };
    (mean(x, x) + mean(y, y) - 2.0 * mean(x, y)).max(0.0).sqrt()
}

/// Mean share of each point's `k` nearest neighbours (itself excluded) from the other set.
pub fn knn_mixing(x: &[Vec<f64>], y: &[Vec<f64>], k: usize) -> f64 {
    let pooled: Vec<(&Vec<f64>, bool)> = x.iter().map(|r| (r, false)).chain(y.iter().map(|r| (r, true))).collect();
    let mut total = 0.0;
    for (i, (p, side)) in pooled.iter().enumerate() {
        let mut d: Vec<(f64, bool)> =
            pooled.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, (q, s))| (dist2(p, q), *s)).collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        total += d.iter().take(k).filter(|(_, s)| s != side).count() as f64 / k as f64;
    }
    total / pooled.len().max(1) as f64
}

/// Every `len / n`-th element, so at most `n`.
fn thin(v: Vec<Vec<f64>>, n: usize) -> Vec<Vec<f64>> {
    if v.len() <= n {
        return v;
    }
    let step = v.len() as f64 / n as f64;
    (0..n).map(|i| v[(i as f64 * step) as usize].clone()).collect()
}

pub fn compare(real: Vec<Vec<f64>>, synthetic: Vec<Vec<f64>>, window_s: f64) -> Result<Realism> {
    if real.len() < 5 || synthetic.len() < 5 {
        bail!("too few windows to compare: {} real, {} synthetic", real.len(), synthetic.len());
    }
    let ks_per: Vec<(String, f64)> = COMPARED
        .iter()
        .enumerate()
        .map(|(c, n)| {
            let a: Vec<f64> = real.iter().map(|r| r[c]).collect();
            let b: Vec<f64> = synthetic.iter().map(|r| r[c]).collect();
            (n.to_string(), ks(&a, &b))
        })
        .collect();
    let median = |v: &[Vec<f64>], c: usize| {
        let col: Vec<f64> = v.iter().map(|r| r[c]).collect();
        super::metrics::percentile(&col, 0.5).unwrap_or(f64::NAN)
    };
    let real_median: Vec<f64> = (0..COMPARED.len()).map(|c| median(&real, c)).collect();
    let synthetic_median: Vec<f64> = (0..COMPARED.len()).map(|c| median(&synthetic, c)).collect();
    // Balanced sets for MMD and mixing.
    let n = real.len().min(synthetic.len()).min(1500);
    let (real_n, synthetic_n) = (real.len(), synthetic.len());
    let mut x = thin(real, n);
    let mut y = thin(synthetic, n);
    standardise(&mut x, &mut y);
    Ok(Realism {
        window_s,
        min_moving: 0.0,
        real_windows: real_n,
        synthetic_windows: synthetic_n,
        ks: ks_per,
        mmd: mmd(&x, &y),
        knn_mixing: knn_mixing(&x, &y, 5),
        real_median,
        synthetic_median,
    })
}

pub fn render(r: &Realism) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} real and {} synthetic windows of {} s (dampers moving at least {:.0} % of the window, healthy, steady)",
        r.real_windows,
        r.synthetic_windows,
        r.window_s,
        r.min_moving * 100.0
    );
    let _ = writeln!(s, "{:<22} {:>6} {:>10} {:>10}", "feature", "KS", "real", "synthetic");
    for (k, (n, d)) in r.ks.iter().enumerate() {
        let _ = writeln!(s, "{n:<22} {d:>6.3} {:>10.3} {:>10.3}", r.real_median[k], r.synthetic_median[k]);
    }
    let _ = writeln!(s, "kNN mixing {:.3} (0.5 = indistinguishable), MMD {:.3}", r.knn_mixing, r.mmd);
    s
}

/// Loads both sides and compares them.
pub fn run(
    real: &Path,
    synthetic: &Path,
    window_s: f64,
    min_moving: f64,
    facility: Option<&Path>,
    strict: bool,
) -> Result<Realism> {
    let w_ms = (window_s * 1000.0).round() as u64;
    let ds = Dataset::load(synthetic, facility)?;
    let mut r =
        compare(real_windows(real, w_ms, min_moving, strict)?, synthetic_windows(&ds, w_ms, min_moving)?, window_s)?;
    r.min_moving = min_moving;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(seed: u64, n: usize, shift: f64) -> Vec<Vec<f64>> {
        let mut r = twinfault_core::rng::node_rng(seed, "x", "y");
        (0..n).map(|_| (0..3).map(|_| twinfault_core::rng::normal(&mut r) + shift).collect()).collect()
    }

    #[test]
    fn same_distributions_mix_and_shifted_ones_do_not() {
        let (mut a, mut b) = (cloud(1, 300, 0.0), cloud(2, 300, 0.0));
        standardise(&mut a, &mut b);
        let m = knn_mixing(&a, &b, 5);
        assert!((m - 0.5).abs() < 0.08, "mixing of one distribution {m}");
        assert!(mmd(&a, &b) < 0.1);
        let (mut c, mut d) = (cloud(1, 300, 0.0), cloud(2, 300, 4.0));
        standardise(&mut c, &mut d);
        assert!(knn_mixing(&c, &d, 5) < 0.05);
        assert!(mmd(&c, &d) > 0.5);
        assert_eq!(ks(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert!((ks(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-12);
    }
}
