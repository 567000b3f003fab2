//! Counterfactual diagnosis of an AHU: which of its valves and dampers explains what the air did.
//!
//! An AHU's rules see symptoms (supply air off its setpoint, heat across a closed coil); a stuck
//! or leaking element shows only in the temperatures, because a trend log records what the
//! controller *commanded*. When an AHU finding opens, the twin forks: it re-simulates the recent
//! window of its own history under each hypothesis drawn from its children (every element
//! healthy; one stuck at its observed position, 0, 50 or 100 %; one leaking 5-50 %) and asks which
//! one the observed temperatures fit best.
//!
//! The model each hypothesis is simulated with is the unit's own, learned from its history
//! ([`UnitModel::learn`]): mixed air as a monotone function of the outdoor-air damper's position,
//! supply air as mixed air plus fan heat minus a monotone cooling curve plus a monotone heating
//! curve of the (lagged) valve positions. The learning is robust (an S-step over starts fitted to
//! each operating period, then an M-step with a fixed scale that down-weights samples and whole
//! hours that disagree), so a fault-free period need not come first or be labelled: a fault
//! present in a minority of periods does not become the unit's normal. Where the history says
//! nothing (a heating coil never used), the template's physics is the prior.
//!
//! Under each hypothesis the unit's parameters are refitted to the window (within physical bounds
//! and a penalty for moving away from the unit's own), and hypotheses are ranked by the fitted
//! residual plus a penalty for complexity: a fault must explain at least `penalty` of a residual
//! variance per sample to be preferred over "all healthy". Everything here is a pure function of
//! the window, so the ranking is deterministic.

use crate::types::{Role, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Knots of the monotone position curves [fraction open].
pub const KNOTS: [f64; 7] = [0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0];
const NK: usize = KNOTS.len() - 1;
/// Mixing parameters: sensor bias, fraction at closed, increments per knot.
const NM: usize = 2 + NK;
/// Coil parameters: fan heat (and sensor bias), cooling increments, heating increments.
const NC: usize = 1 + 2 * NK;

/// The elements a hypothesis can be about, in slot order.
pub const ELEMENTS: [Role; 3] = [Role::OutdoorAirDamper, Role::CoolingValve, Role::HeatingValve];

/// One sample of an AHU's history: its air temperatures and the positions its controller gave
/// (or its actuators reported) for each element, as fractions (0 when the AHU has no such
/// element).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: SimTime,
    /// Operating (fan on, occupied, settled enough to judge).
    pub operating: bool,
    pub outdoor_c: f64,
    pub return_c: f64,
    pub mixed_c: f64,
    pub supply_c: f64,
    /// Outdoor-air damper, cooling valve, heating valve [fraction open].
    pub positions: [f64; 3],
}

/// The recent history an AHU keeps for its fork: samples averaged over `sample_s`, at most
/// `window_s` of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    sample_s: f64,
    window_s: f64,
    capacity: usize,
    samples: VecDeque<Sample>,
    /// The bucket being averaged: its sum and count.
    open: Option<(Sample, u32)>,
}

impl History {
    pub fn new(window_s: f64, sample_s: f64) -> History {
        let sample_s = sample_s.max(1.0);
        let capacity = (window_s / sample_s).ceil().max(1.0) as usize;
        History { sample_s, window_s, capacity, samples: VecDeque::with_capacity(capacity.min(4096)), open: None }
    }

    /// Adds one observation; a bucket closes once `sample_s` has passed since it opened (a
    /// bucket is operating only if all its observations were).
    pub fn push(&mut self, s: Sample) {
        match &mut self.open {
            Some((acc, n)) if s.t.0.saturating_sub(acc.t.0) < (self.sample_s * 1000.0) as u64 => {
                acc.operating &= s.operating;
                acc.outdoor_c += s.outdoor_c;
                acc.return_c += s.return_c;
                acc.mixed_c += s.mixed_c;
                acc.supply_c += s.supply_c;
                for k in 0..3 {
                    acc.positions[k] += s.positions[k];
                }
                *n += 1;
            }
            _ => {
                self.close();
                self.open = Some((s, 1));
            }
        }
    }

    fn close(&mut self) {
        if let Some((acc, n)) = self.open.take() {
            let n = f64::from(n);
            let mut s = acc;
            s.outdoor_c /= n;
            s.return_c /= n;
            s.mixed_c /= n;
            s.supply_c /= n;
            for p in &mut s.positions {
                *p /= n;
            }
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
            }
            self.samples.push_back(s);
        }
    }

    /// The closed samples of the last `window_s` (none from before a silence, such as the night
    /// between two days of a trend log), oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let Some(last) = self.samples.back() else { return Vec::new() };
        let from = last.t.0.saturating_sub((self.window_s * 1000.0) as u64);
        self.samples.iter().filter(|s| s.t.0 >= from).copied().collect()
    }

    pub fn sample_s(&self) -> f64 {
        self.sample_s
    }
}

/// What the template says the unit should do, before it has shown what it does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub fan_heat_c: f64,
    /// Cooling and heating across a fully open coil [K].
    pub cooling_full_k: f64,
    pub heating_full_k: f64,
    /// Time constant of a coil's response to its valve [s].
    pub coil_time_constant_s: f64,
}

/// A unit's thermal response, learned from its own history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitModel {
    /// `mixed − return = mix[0] + (mix[1] + Σ mix[2+j]·ramp_j(damper))·(outdoor − return)`.
    pub mix: Vec<f64>,
    /// `supply − mixed' = coil[0] − Σ coil[1+j]·ramp_j(cooling) + Σ coil[1+NK+j]·ramp_j(heating)`,
    /// `mixed'` the mixed air through the coil's lag, the valves' positions lagged likewise.
    pub coil: Vec<f64>,
    /// Robust residual scales [K].
    pub sigma_mixed_c: f64,
    pub sigma_supply_c: f64,
    pub coil_time_constant_s: f64,
    /// Robust scale of the supply air's residual once averaged over `averaged_over_s` (what a
    /// rule holding that average against a threshold sees of the unit's normal scatter) [K].
    pub sigma_supply_averaged_c: f64,
    pub averaged_over_s: f64,
    /// Operating samples the model was learned from (0: the template's prior).
    pub learned_from: usize,
}

fn ramps(p: f64) -> [f64; NK] {
    let p = if p.is_finite() { p.clamp(0.0, 1.0) } else { 0.0 };
    std::array::from_fn(|j| ((p - KNOTS[j]) / (KNOTS[j + 1] - KNOTS[j])).clamp(0.0, 1.0))
}

fn mix_features(s: &Sample, damper: f64) -> [f64; NM] {
    let x = s.outdoor_c - s.return_c;
    let r = ramps(damper);
    let mut f = [0.0; NM];
    f[0] = 1.0;
    f[1] = x;
    for j in 0..NK {
        f[2 + j] = r[j] * x;
    }
    f
}

fn coil_features(cooling: f64, heating: f64) -> [f64; NC] {
    let (c, h) = (ramps(cooling), ramps(heating));
    let mut f = [0.0; NC];
    f[0] = 1.0;
    for j in 0..NK {
        f[1 + j] = -c[j];
        f[1 + NK + j] = h[j];
    }
    f
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// One regression problem: rows of features and targets, each with the block (hour) it is in.
struct Problem<const N: usize> {
    x: Vec<[f64; N]>,
    y: Vec<f64>,
    block: Vec<usize>,
    /// The operating period of each row (starts for the S-step).
    period: Vec<usize>,
}

/// Minimises `Σ w·(y − x·b)²/s² + ridge·Σ ((b − base)/sigma)²` with `b ≥ lo` (coordinate
/// descent on the normal equations); returns `b` and the penalised objective.
#[allow(clippy::too_many_arguments)]
fn solve<const N: usize>(
    p: &Problem<N>,
    rows: &[usize],
    w: Option<&[f64]>,
    s: f64,
    base: &[f64; N],
    sigma: &[f64; N],
    lo: &[f64; N],
    ridge: f64,
) -> ([f64; N], f64) {
    let mut g = [[0.0; N]; N];
    let mut h = [0.0; N];
    let inv = 1.0 / (s * s);
    for &i in rows {
        let wi = w.map_or(1.0, |w| w[i]) * inv;
        if wi == 0.0 {
            continue;
        }
        let xi = &p.x[i];
        for a in 0..N {
            if xi[a] == 0.0 {
                continue;
            }
            h[a] += wi * xi[a] * p.y[i];
            for b in a..N {
                g[a][b] += wi * xi[a] * xi[b];
            }
        }
    }
    // The matrix is symmetric: mirror the upper triangle.
    #[allow(clippy::needless_range_loop)]
    for a in 0..N {
        for b in 0..a {
            g[a][b] = g[b][a];
        }
        let prec = ridge / (sigma[a] * sigma[a]);
        g[a][a] += prec;
        h[a] += prec * base[a];
    }
    let mut b = *base;
    for a in 0..N {
        b[a] = b[a].max(lo[a]);
    }
    for _ in 0..200 {
        let mut moved = 0.0f64;
        for a in 0..N {
            let new = (b[a] + (h[a] - dot(&g[a], &b)) / g[a][a]).max(lo[a]);
            moved = moved.max((new - b[a]).abs());
            b[a] = new;
        }
        if moved < 1e-9 {
            break;
        }
    }
    let mut objective = 0.0;
    for &i in rows {
        let r = p.y[i] - dot(&p.x[i], &b);
        objective += w.map_or(1.0, |w| w[i]) * r * r * inv;
    }
    for a in 0..N {
        objective += ridge * ((b[a] - base[a]) / sigma[a]).powi(2);
    }
    (b, objective)
}

/// Root-mean-square residual of a fit over all its rows.
fn rms<const N: usize>(p: &Problem<N>, b: &[f64; N]) -> f64 {
    let n = p.y.len().max(1) as f64;
    (p.x.iter().zip(&p.y).map(|(x, y)| (y - dot(x, b)).powi(2)).sum::<f64>() / n).sqrt()
}

fn tukey(u: f64) -> f64 {
    if u.abs() < 1.0 { (1.0 - u * u).powi(2) } else { 0.0 }
}

/// The robust fit of one part of the unit model: S-step over starts (the prior and a fit to each
/// operating period), M-step with the S-scale fixed and hour blocks that disagree down-weighted.
///
/// Only a physically plausible fit can be the unit's normal (`plausible`: a coil that does not
/// heat or cool with its valve open is broken, not normal). If most of the history was faulty the
/// same way, the faulty fits lose to the plausible ones instead of becoming the baseline.
fn learn_part<const N: usize>(
    p: &Problem<N>,
    prior: &[f64; N],
    sigma: &[f64; N],
    lo: &[f64; N],
    plausible: impl Fn(&[f64; N]) -> bool,
) -> ([f64; N], f64) {
    let all: Vec<usize> = (0..p.y.len()).collect();
    let residuals = |b: &[f64; N]| -> Vec<f64> { all.iter().map(|&i| p.y[i] - dot(&p.x[i], b)).collect() };
    let periods = p.period.iter().copied().max().map_or(0, |m| m + 1);
    // How well a fit explains the unit's best-explained third of its operating periods (their
    // median absolute residual, pooled): a third of the days need be normal for an element, not
    // half, and a day's fault cannot hide in another day's noise.
    let crit = |b: &[f64; N]| {
        let r = residuals(b);
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); periods.max(1)];
        for (i, ri) in r.iter().enumerate() {
            per[p.period[i]].push(ri.abs());
        }
        let mut typical: Vec<(f64, usize)> =
            per.iter_mut().enumerate().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (median(v), k)).collect();
        typical.sort_by(|a, b| a.0.total_cmp(&b.0));
        let keep = typical.len().div_ceil(3).max(1);
        let mut pooled: Vec<f64> =
            typical[..keep.min(typical.len())].iter().flat_map(|&(_, k)| per[k].iter().copied()).collect();
        median(&mut pooled)
    };
    let mut starts = vec![*prior];
    for k in 0..periods {
        let rows: Vec<usize> = all.iter().copied().filter(|&i| p.period[i] == k).collect();
        if rows.len() < 2 * N {
            continue;
        }
        // A robust fit of this period alone (the scale re-estimated each round).
        let (mut b, _) = solve(p, &rows, None, 1.0, prior, sigma, lo, 1.0);
        let mut w = vec![1.0; p.y.len()];
        for _ in 0..8 {
            let mut r: Vec<f64> = rows.iter().map(|&i| p.y[i] - dot(&p.x[i], &b)).collect();
            let s = (1.4826 * median(&mut r.iter().map(|x| x.abs()).collect::<Vec<_>>())).max(0.05);
            for (&i, ri) in rows.iter().zip(r.iter_mut()) {
                w[i] = tukey(*ri / (4.685 * s));
            }
            b = solve(p, &rows, Some(&w), s, prior, sigma, lo, 1.0).0;
        }
        starts.push(b);
    }
    let (mut best, mut best_crit) = (*prior, f64::INFINITY);
    for b in starts.into_iter().filter(|b| plausible(b)) {
        let c = crit(&b);
        if c < best_crit {
            (best, best_crit) = (b, c);
        }
    }
    let start = best;
    let s = (1.4826 * best_crit).max(0.05);
    let blocks = p.block.iter().copied().max().map_or(0, |m| m + 1);
    let mut b = best;
    let mut w = vec![1.0; p.y.len()];
    for _ in 0..20 {
        let r = residuals(&b);
        for i in 0..r.len() {
            w[i] = tukey(r[i] / (4.685 * s));
        }
        // A persistent disagreement (an hour off as a whole) is a fault, not noise.
        let mut per_block: Vec<Vec<f64>> = vec![Vec::new(); blocks];
        for i in 0..r.len() {
            per_block[p.block[i]].push(r[i]);
        }
        let block_w: Vec<f64> = per_block.iter_mut().map(|v| tukey(median(v) / (2.5 * s))).collect();
        for i in 0..r.len() {
            w[i] *= block_w[p.block[i]];
        }
        let next = solve(p, &all, Some(&w), s, prior, sigma, lo, 1.0).0;
        let moved = next.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        b = next;
        if moved < 1e-6 {
            break;
        }
    }
    if !plausible(&b) {
        b = start;
        let r = residuals(&b);
        for i in 0..r.len() {
            w[i] = tukey(r[i] / (4.685 * s));
        }
    }
    let mut inlier: Vec<f64> = residuals(&b).iter().zip(&w).filter(|(_, w)| **w > 0.0).map(|(r, _)| r.abs()).collect();
    let scale = (1.4826 * median(&mut inlier)).max(0.1);
    (b, scale)
}

/// A first-order lag (time constant `tau_s`) of `value` along the samples, starting from the
/// first sample's value; a value that is not finite counts as 0.
fn lag_series(samples: &[Sample], tau_s: f64, value: impl Fn(usize, &Sample) -> f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(samples.len());
    let mut l = f64::NAN;
    let mut prev_t: Option<SimTime> = None;
    for (i, s) in samples.iter().enumerate() {
        let v = value(i, s);
        let v = if v.is_finite() { v } else { 0.0 };
        l = match prev_t {
            None => v,
            Some(t0) => {
                let dt = s.t.0.saturating_sub(t0.0) as f64 / 1000.0;
                l + (v - l) * (1.0 - (-dt / tau_s.max(1.0)).exp())
            }
        };
        prev_t = Some(s.t);
        out.push(l);
    }
    out
}

/// Lagged valve positions (the coil's response to its valve), `over` giving what the valve did.
fn lagged(samples: &[Sample], slot: usize, tau_s: f64, over: impl Fn(usize, f64) -> f64) -> Vec<f64> {
    lag_series(samples, tau_s, |i, s| over(i, s.positions[slot]))
}

/// Mixed air as the supply sensor sees it through the coil's thermal mass: when the mixed air
/// steps (a damper opens), the supply air follows with the coil's time constant.
fn mixed_through_coil(samples: &[Sample], tau_s: f64) -> Vec<f64> {
    lag_series(samples, tau_s, |_, s| s.mixed_c)
}

/// One mixing row: features at the damper's position, and mixed minus return air.
fn mix_row(s: &Sample, damper: f64) -> ([f64; NM], f64) {
    (mix_features(s, damper), s.mixed_c - s.return_c)
}

/// One coil row: features at the valves' lagged positions, and supply minus the mixed air
/// through the coil's lag.
fn coil_row(s: &Sample, cooling: f64, heating: f64, through: f64) -> ([f64; NC], f64) {
    (coil_features(cooling, heating), s.supply_c - through)
}

/// The operating samples with all four temperatures, each with its hour block and operating
/// period (a new one at each day and after every pause), numbered densely.
fn operating_rows(samples: &[Sample]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut rows, mut blocks, mut periods) = (Vec::new(), Vec::new(), Vec::new());
    let (mut block, mut period) = (0usize, 0usize);
    let mut last: Option<(u64, u64, bool)> = None;
    for (i, s) in samples.iter().enumerate() {
        let (hour, day) = (s.t.0 / 3_600_000, s.t.0 / 86_400_000);
        if let Some((h, d, op)) = last {
            if h != hour || !op {
                block += 1;
            }
            if d != day || !op {
                period += 1;
            }
        }
        last = Some((hour, day, s.operating));
        if s.operating && [s.outdoor_c, s.return_c, s.mixed_c, s.supply_c].iter().all(|x| x.is_finite()) {
            rows.push(i);
            blocks.push(block);
            periods.push(period);
        }
    }
    for p in [&mut blocks, &mut periods] {
        let mut seen = std::collections::BTreeMap::new();
        for v in p.iter_mut() {
            let next = seen.len();
            *v = *seen.entry(*v).or_insert(next);
        }
    }
    (rows, blocks, periods)
}

const MIX_LO: [f64; NM] = {
    let mut lo = [0.0; NM];
    lo[0] = f64::NEG_INFINITY;
    lo
};
const COIL_LO: [f64; NC] = {
    let mut lo = [0.0; NC];
    lo[0] = f64::NEG_INFINITY;
    lo
};

impl UnitModel {
    /// The template's physics: mixing proportional to the damper, coils linear in their valves.
    pub fn prior(p: &Prior) -> UnitModel {
        let mut mix = vec![0.0; NM];
        let mut coil = vec![0.0; NC];
        coil[0] = p.fan_heat_c;
        for j in 0..NK {
            let step = KNOTS[j + 1] - KNOTS[j];
            mix[2 + j] = step;
            coil[1 + j] = p.cooling_full_k * step;
            coil[1 + NK + j] = p.heating_full_k * step;
        }
        UnitModel {
            mix,
            coil,
            sigma_mixed_c: 0.5,
            sigma_supply_c: 1.0,
            coil_time_constant_s: p.coil_time_constant_s,
            sigma_supply_averaged_c: 1.0,
            averaged_over_s: 0.0,
            learned_from: 0,
        }
    }

    /// Learns the unit's response from its history (operating samples only), robustly; the prior
    /// holds where the history is silent. The coil's time constant is the unit's own too: of a
    /// quarter to four times the template's, the one its supply air follows best (the mixing
    /// does not depend on it and is learned once).
    pub fn learn(samples: &[Sample], prior: &Prior) -> UnitModel {
        let start = UnitModel::prior(prior);
        let (rows, block, period) = operating_rows(samples);
        let n = rows.len();
        if n < 4 * NC {
            return start;
        }
        let (x, y) = rows.iter().map(|&i| mix_row(&samples[i], samples[i].positions[0])).unzip();
        let mix: Problem<NM> = Problem { x, y, block: block.clone(), period: period.clone() };
        // Weak pull toward the prior: the data decide wherever they say something.
        let mix_sigma: [f64; NM] = std::array::from_fn(|a| if a == 0 { 1.0 } else { 0.3 });
        let coil_sigma: [f64; NC] = std::array::from_fn(|a| if a == 0 { 2.0 } else { 5.0 });
        let mix_prior: [f64; NM] = start.mix.clone().try_into().expect("NM mixing parameters");
        let coil_prior: [f64; NC] = start.coil.clone().try_into().expect("NC coil parameters");
        // Plausible: sensor offsets and fan heat within 3 K; at least a third of the template's
        // outdoor-air span and of its coils' capacities (the template's physics is the prior).
        let mix_ok = |b: &[f64; NM]| b[0].abs() <= 3.0 && b[2..].iter().sum::<f64>() >= 1.0 / 3.0;
        let (cool_prior, heat_prior) = (prior.cooling_full_k, prior.heating_full_k);
        let coil_ok = |b: &[f64; NC]| {
            b[0].abs() <= 3.0f64.max(3.0 * prior.fan_heat_c.abs())
                && b[1..1 + NK].iter().sum::<f64>() >= cool_prior / 3.0
                && b[1 + NK..].iter().sum::<f64>() >= heat_prior / 3.0
        };
        let (m, sm) = learn_part(&mix, &mix_prior, &mix_sigma, &MIX_LO, mix_ok);
        let mut best: Option<([f64; NC], f64, f64)> = None;
        for factor in [0.25, 0.5, 1.0, 2.0, 3.0, 4.0] {
            let tau = (prior.coil_time_constant_s * factor).max(30.0);
            let (cool, heat) = (lagged(samples, 1, tau, |_, p| p), lagged(samples, 2, tau, |_, p| p));
            let through = mixed_through_coil(samples, tau);
            let (x, y) = rows.iter().map(|&i| coil_row(&samples[i], cool[i], heat[i], through[i])).unzip();
            let coil: Problem<NC> = Problem { x, y, block: block.clone(), period: period.clone() };
            let (c, sc) = learn_part(&coil, &coil_prior, &coil_sigma, &COIL_LO, coil_ok);
            if best.is_none_or(|b| sc < b.1) {
                best = Some((c, sc, tau));
            }
        }
        let (c, sc, tau) = best.expect("at least one time constant was tried");
        UnitModel {
            mix: m.to_vec(),
            coil: c.to_vec(),
            sigma_mixed_c: sm,
            sigma_supply_c: sc,
            coil_time_constant_s: tau,
            sigma_supply_averaged_c: sc,
            averaged_over_s: 0.0,
            learned_from: n,
        }
    }

    /// Measures [`UnitModel::sigma_supply_averaged_c`] on the history the model was learned
    /// from: the residual against the model, averaged (first order, `tau_s`), its robust scale
    /// over the operating samples.
    pub fn measure_averaged_scatter(&mut self, samples: &[Sample], tau_s: f64) {
        let tau = self.coil_time_constant_s;
        let (cool, heat) = (lagged(samples, 1, tau, |_, p| p), lagged(samples, 2, tau, |_, p| p));
        let through = mixed_through_coil(samples, tau);
        let mut avg = 0.0;
        let mut prev: Option<SimTime> = None;
        // Per day: the averaged residual's typical size; the unit's is the median day's (a rule's
        // threshold errs high: with faulty days the majority it is inflated, and only large
        // departures are flagged; a tighter one flagged clean days).
        let mut days: std::collections::BTreeMap<u64, Vec<f64>> = std::collections::BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            let r = s.supply_c - through[i] - self.coil_change_c(cool[i], heat[i]);
            if !s.operating || !r.is_finite() {
                prev = None;
                continue;
            }
            avg = match prev {
                None => r,
                Some(t0) => {
                    let dt = s.t.0.saturating_sub(t0.0) as f64 / 1000.0;
                    avg + (r - avg) * (1.0 - (-dt / tau_s.max(1.0)).exp())
                }
            };
            prev = Some(s.t);
            days.entry(s.t.0 / 86_400_000).or_default().push(avg.abs());
        }
        let mut typical: Vec<f64> = days.values_mut().filter(|v| v.len() >= 10).map(|v| median(v)).collect();
        if typical.is_empty() {
            return;
        }
        self.sigma_supply_averaged_c = (1.4826 * median(&mut typical)).max(0.05);
        self.averaged_over_s = tau_s;
    }

    /// Supply minus mixed air with both coils closed: fan heat and the sensors' offset [K].
    pub fn coil_offset_c(&self) -> f64 {
        self.coil[0]
    }

    /// Supply minus mixed air (through the coil's lag) at the valves' lagged positions [K].
    pub fn coil_change_c(&self, cooling: f64, heating: f64) -> f64 {
        dot(&coil_features(cooling, heating), &self.coil)
    }

    /// The mixed-air sensor's offset from the return air with no outdoor air [K].
    pub fn mixed_offset_c(&self) -> f64 {
        self.mix[0]
    }

    /// The outdoor-air fraction of the mixed air at a damper position [fraction].
    pub fn outdoor_fraction(&self, damper: f64) -> f64 {
        self.mix[1] + dot(&ramps(damper), &self.mix[2..])
    }
}

/// What a hypothesis says an element did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behaviour {
    /// Stuck where it was at the start of the window.
    StuckObserved {
        at_pct: f64,
    },
    StuckAt {
        at_pct: f64,
    },
    /// Passes `pct` of full flow when closed (and proportionally less as it opens).
    Leaking {
        pct: f64,
    },
}

/// One hypothesis: all elements healthy, or one element behaving so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The element's actuator id; `None` for "all healthy".
    pub device: Option<String>,
    pub role: Option<Role>,
    pub behaviour: Option<Behaviour>,
}

impl Hypothesis {
    pub fn healthy() -> Hypothesis {
        Hypothesis { device: None, role: None, behaviour: None }
    }

    /// The fault kind this hypothesis stands for (`stuck_at`, `valve_leak`, `damper_leak`).
    pub fn fault_kind(&self) -> Option<crate::types::FaultKind> {
        use crate::types::FaultKind;
        match (self.behaviour?, self.role?) {
            (Behaviour::Leaking { .. }, Role::OutdoorAirDamper) => Some(FaultKind::DamperLeak),
            (Behaviour::Leaking { .. }, _) => Some(FaultKind::ValveLeak),
            _ => Some(FaultKind::StuckAt),
        }
    }

    /// `BEL-CHW-201 stuck at 100 %`, `all healthy`.
    pub fn describe(&self) -> String {
        match (&self.device, self.behaviour) {
            (Some(d), Some(Behaviour::StuckObserved { at_pct })) => {
                format!("{d} stuck where it was ({at_pct:.0} %)")
            }
            (Some(d), Some(Behaviour::StuckAt { at_pct })) => format!("{d} stuck at {at_pct:.0} %"),
            (Some(d), Some(Behaviour::Leaking { pct })) => format!("{d} leaking {pct:.0} %"),
            _ => "all healthy".to_string(),
        }
    }
}

/// A hypothesis with how well the window fits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub hypothesis: Hypothesis,
    /// Penalised fit (lower is better): squared residuals in units of the unit's own scatter,
    /// the refit's distance from the unit's parameters, and the complexity penalty.
    pub score: f64,
    /// Root-mean-square residual of mixed and supply air under this hypothesis [K].
    pub rmse_mixed_c: f64,
    pub rmse_supply_c: f64,
}

/// The fork's answer: hypotheses best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub node: String,
    /// When the fork ran (its window's last sample, when [`rank`] is called directly).
    pub at: SimTime,
    /// Window judged [s] and operating samples in it.
    pub window_s: f64,
    pub samples: usize,
    pub ranked: Vec<Scored>,
}

impl Ranking {
    pub fn top(&self) -> Option<&Scored> {
        self.ranked.first()
    }

    /// The best hypothesis about a device, when it beats "all healthy".
    pub fn culprit(&self) -> Option<&Scored> {
        self.top().filter(|s| s.hypothesis.device.is_some())
    }

    pub fn runner_up(&self) -> Option<&Scored> {
        self.ranked.get(1)
    }

    /// Score per sample by which the top beats "all healthy" (0 when healthy is on top).
    pub fn evidence(&self) -> f64 {
        let healthy = self.ranked.iter().find(|s| s.hypothesis.device.is_none()).map_or(0.0, |s| s.score);
        self.top().map_or(0.0, |t| (healthy - t.score).max(0.0) / self.samples.max(1) as f64)
    }

    /// One line for a finding's summary: `likely BEL-CHW-201 stuck at 100 % (fit 0.4/0.6 K;
    /// next: …)`, or that no element explains it better than all healthy.
    pub fn sentence(&self) -> String {
        let fit = |s: &Scored| format!("fit {:.1}/{:.1} K", s.rmse_mixed_c, s.rmse_supply_c);
        match (self.culprit(), self.runner_up()) {
            (Some(top), Some(next)) => format!(
                "likely {} ({}; next: {}, {})",
                top.hypothesis.describe(),
                fit(top),
                next.hypothesis.describe(),
                fit(next)
            ),
            (Some(top), None) => format!("likely {} ({})", top.hypothesis.describe(), fit(top)),
            _ => format!(
                "no single valve or damper explains it better than all healthy over the last {:.0} min",
                self.window_s / 60.0
            ),
        }
    }
}

/// The fork's conclusion, in short, as it goes onto a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Likely {
    pub device: String,
    pub kind: crate::types::FaultKind,
    /// `BEL-CHW-201 stuck at 100 %`.
    pub hypothesis: String,
    /// Its fit: RMS residual of mixed and supply air [K].
    pub fit_mixed_c: f64,
    pub fit_supply_c: f64,
    pub runner_up: Option<String>,
}

impl Ranking {
    /// The culprit, when a device hypothesis beats "all healthy".
    pub fn likely(&self) -> Option<Likely> {
        let top = self.culprit()?;
        Some(Likely {
            device: top.hypothesis.device.clone()?,
            kind: top.hypothesis.fault_kind()?,
            hypothesis: top.hypothesis.describe(),
            fit_mixed_c: top.rmse_mixed_c,
            fit_supply_c: top.rmse_supply_c,
            runner_up: self.runner_up().map(|s| s.hypothesis.describe()),
        })
    }
}

/// An element the fork may blame: its slot in [`ELEMENTS`] and its actuator id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Element {
    pub slot: usize,
    pub device: String,
}

/// Parameters of the fork.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForkSpec {
    /// History judged when a finding opens [s].
    pub window_s: f64,
    /// History resolution [s].
    pub sample_s: f64,
    /// A fault hypothesis must explain this share of a residual variance per sample [-].
    pub penalty: f64,
    /// While an AHU finding stays open, the fork is run again this often [s].
    pub rediagnose_s: f64,
}

impl Default for ForkSpec {
    fn default() -> ForkSpec {
        ForkSpec { window_s: 7200.0, sample_s: 60.0, penalty: 0.25, rediagnose_s: 3600.0 }
    }
}

/// The hypotheses drawn from the elements: each stuck at its observed position, 0, 50 and 100 %,
/// and leaking 5, 10, 20, 30 and 50 %; all healthy first.
pub fn hypotheses(elements: &[Element], window: &[Sample]) -> Vec<(Hypothesis, Option<usize>)> {
    let mut out = vec![(Hypothesis::healthy(), None)];
    for e in elements {
        let role = ELEMENTS[e.slot];
        let first = window
            .iter()
            .find(|s| s.operating)
            .or(window.first())
            .map_or(0.0, |s| if s.positions[e.slot].is_finite() { s.positions[e.slot] } else { 0.0 });
        let mut behaviours = vec![Behaviour::StuckObserved { at_pct: (first * 100.0).round() }];
        behaviours.extend([0.0, 50.0, 100.0].map(|at_pct| Behaviour::StuckAt { at_pct }));
        behaviours.extend([5.0, 10.0, 20.0, 30.0, 50.0].map(|pct| Behaviour::Leaking { pct }));
        for b in behaviours {
            out.push((
                Hypothesis { device: Some(e.device.clone()), role: Some(role), behaviour: Some(b) },
                Some(e.slot),
            ));
        }
    }
    out
}

fn effective(b: Behaviour, p: f64) -> f64 {
    let p = if p.is_finite() { p } else { 0.0 };
    match b {
        Behaviour::StuckObserved { at_pct } | Behaviour::StuckAt { at_pct } => at_pct / 100.0,
        Behaviour::Leaking { pct } => pct / 100.0 + (1.0 - pct / 100.0) * p,
    }
}

/// Runs the fork: each hypothesis simulated over `window` with the unit's parameters refitted
/// (within bounds, penalised for moving from `model`), ranked best first.
pub fn rank(node: &str, model: &UnitModel, elements: &[Element], window: &[Sample], spec: &ForkSpec) -> Ranking {
    let at = window.last().map_or(SimTime(0), |s| s.t);
    let window_s = match (window.first(), window.last()) {
        (Some(a), Some(b)) => b.t.0.saturating_sub(a.t.0) as f64 / 1000.0,
        _ => 0.0,
    };
    let operating: Vec<usize> = (0..window.len())
        .filter(|&i| {
            let s = &window[i];
            s.operating && [s.outdoor_c, s.return_c, s.mixed_c, s.supply_c].iter().all(|x| x.is_finite())
        })
        .collect();
    let n = operating.len();
    let mut ranked = Vec::new();
    if n == 0 {
        return Ranking { node: node.to_string(), at, window_s, samples: 0, ranked };
    }
    // How far a refit may move each parameter (in its own units) before it costs a residual
    // variance per sample: the sensors' offsets and fan heat hardly, the damper curve a little,
    // the coils' capacities (which follow the plant's water temperatures) more.
    let mix_sigma: [f64; NM] = std::array::from_fn(|a| if a == 0 { 0.3 } else { 0.1 });
    let coil_sigma: [f64; NC] = std::array::from_fn(|a| if a == 0 { 0.3 } else { 2.0 });
    let ridge = n as f64;
    let mix_base: [f64; NM] = model.mix.clone().try_into().unwrap_or([0.0; NM]);
    let coil_base: [f64; NC] = model.coil.clone().try_into().unwrap_or([0.0; NC]);
    let tau = model.coil_time_constant_s;
    let rows: Vec<usize> = (0..n).collect();
    // Each part refitted: its penalised objective and RMS residual.
    let fit_mix = |damper: &[f64]| {
        let (x, y) = operating.iter().map(|&i| mix_row(&window[i], damper[i])).unzip();
        let p: Problem<NM> = Problem { x, y, block: Vec::new(), period: Vec::new() };
        let (b, objective) = solve(&p, &rows, None, model.sigma_mixed_c, &mix_base, &mix_sigma, &MIX_LO, ridge);
        (objective, rms(&p, &b))
    };
    let through = mixed_through_coil(window, tau);
    let fit_coil = |cool: &[f64], heat: &[f64]| {
        let (x, y) = operating.iter().map(|&i| coil_row(&window[i], cool[i], heat[i], through[i])).unzip();
        let p: Problem<NC> = Problem { x, y, block: Vec::new(), period: Vec::new() };
        let (b, objective) = solve(&p, &rows, None, model.sigma_supply_c, &coil_base, &coil_sigma, &COIL_LO, ridge);
        (objective, rms(&p, &b))
    };
    // A hypothesis about the damper changes only the mixing, one about a valve only its coil:
    // the other part is the healthy one's.
    let damper: Vec<f64> = window.iter().map(|s| s.positions[0]).collect();
    let (cool, heat) = (lagged(window, 1, tau, |_, p| p), lagged(window, 2, tau, |_, p| p));
    let (healthy_mix, healthy_coil) = (fit_mix(&damper), fit_coil(&cool, &heat));
    for (h, slot) in hypotheses(elements, window) {
        let ((om, rm), (oc, rc)) = match (slot, h.behaviour) {
            (Some(0), Some(b)) => {
                let stuck: Vec<f64> = damper.iter().map(|&p| effective(b, p)).collect();
                (fit_mix(&stuck), healthy_coil)
            }
            (Some(1), Some(b)) => (healthy_mix, fit_coil(&lagged(window, 1, tau, |_, p| effective(b, p)), &heat)),
            (Some(2), Some(b)) => (healthy_mix, fit_coil(&cool, &lagged(window, 2, tau, |_, p| effective(b, p)))),
            _ => (healthy_mix, healthy_coil),
        };
        let complexity = if h.device.is_some() { spec.penalty * n as f64 } else { 0.0 };
        ranked.push(Scored { score: om + oc + complexity, rmse_mixed_c: rm, rmse_supply_c: rc, hypothesis: h });
    }
    // Best first; ties keep the order hypotheses were drawn in (deterministic).
    ranked.sort_by(|a, b| a.score.total_cmp(&b.score));
    Ranking { node: node.to_string(), at, window_s, samples: n, ranked }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIOR: Prior =
        Prior { fan_heat_c: 0.6, cooling_full_k: 9.0, heating_full_k: 12.0, coil_time_constant_s: 300.0 };

    /// A unit whose truth is `truth`, driven through a day of varied commands; `fault` changes
    /// what one element does from sample `from` on.
    fn day(truth: &UnitModel, fault: Option<(usize, Behaviour)>, from: usize, seed: u64) -> Vec<Sample> {
        let mut rng = crate::rng::node_rng(seed, "unit", "test");
        let mut out: Vec<Sample> = Vec::new();
        let (mut lc, mut lh) = (0.0, 0.0);
        for i in 0..720 {
            let t = SimTime(i as u64 * 60_000);
            let phase = i as f64 / 720.0 * std::f64::consts::TAU;
            let outdoor = 18.0 + 8.0 * phase.sin();
            let ret = 23.0;
            // The controller: heats in the cool morning, economizes, then cools.
            let cmd = [
                (0.5 + 0.5 * (phase * 2.0).sin()).clamp(0.0, 1.0),
                (0.6 * phase.sin()).clamp(0.0, 1.0),
                (-0.5 * phase.sin()).clamp(0.0, 1.0),
            ];
            let mut actual = cmd;
            if let Some((slot, b)) = fault.filter(|_| i >= from) {
                actual[slot] = effective(b, cmd[slot]);
            }
            let a = 1.0 - (-60.0f64 / 300.0).exp();
            lc += (actual[1] - lc) * a;
            lh += (actual[2] - lh) * a;
            let mut s = Sample {
                t,
                operating: true,
                outdoor_c: outdoor,
                return_c: ret,
                mixed_c: 0.0,
                supply_c: 0.0,
                positions: cmd,
            };
            let noise = |rng: &mut crate::rng::NodeRng| 0.1 * crate::rng::normal(rng);
            s.mixed_c = ret + dot(&mix_features(&s, actual[0]), &truth.mix) + noise(&mut rng);
            s.supply_c = s.mixed_c + dot(&coil_features(lc, lh), &truth.coil) + noise(&mut rng);
            out.push(s);
        }
        out
    }

    fn elements() -> Vec<Element> {
        ["OAD", "CHW", "HW"].iter().enumerate().map(|(slot, d)| Element { slot, device: d.to_string() }).collect()
    }

    #[test]
    fn the_unit_is_learned_from_a_history_that_is_mostly_faulty() {
        let truth = UnitModel::prior(&Prior { fan_heat_c: 1.0, cooling_full_k: 12.0, ..PRIOR });
        let mut history = Vec::new();
        for d in 0..5u64 {
            // Three of five days with a heating valve stuck open: most of the history is faulty.
            let fault = (1..=3).contains(&d).then_some((2, Behaviour::StuckAt { at_pct: 100.0 }));
            for mut s in day(&truth, fault, 0, d) {
                s.t = SimTime(s.t.0 + d * 86_400_000);
                history.push(s);
            }
        }
        let learned = UnitModel::learn(&history, &PRIOR);
        assert!((learned.coil[0] - 1.0).abs() < 0.3, "fan heat {:?}", learned.coil);
        let cooling: f64 = learned.coil[1..1 + NK].iter().sum();
        assert!((cooling - 12.0).abs() < 2.0, "full cooling {cooling}: {:?}", learned.coil);
        assert!(learned.sigma_supply_c < 0.5, "{learned:?}");
    }

    #[test]
    fn the_fork_names_the_element_that_explains_the_air() {
        let truth = UnitModel::prior(&PRIOR);
        // The unit as learned from two days of its own healthy history.
        let mut history = day(&truth, None, 0, 1);
        history.extend(day(&truth, None, 0, 2).into_iter().map(|s| Sample { t: SimTime(s.t.0 + 86_400_000), ..s }));
        let model = UnitModel::learn(&history, &PRIOR);
        let cases = [
            (1, Behaviour::StuckAt { at_pct: 100.0 }),
            (2, Behaviour::StuckAt { at_pct: 100.0 }),
            (1, Behaviour::Leaking { pct: 30.0 }),
            (0, Behaviour::StuckAt { at_pct: 0.0 }),
            (0, Behaviour::StuckAt { at_pct: 100.0 }),
            (2, Behaviour::Leaking { pct: 50.0 }),
        ];
        for (slot, b) in cases {
            let window = day(&truth, Some((slot, b)), 0, 7);
            let r = rank("ahu", &model, &elements(), &window, &ForkSpec::default());
            let top =
                r.culprit().unwrap_or_else(|| panic!("{slot} {b:?}: nothing named: {:?}", r.ranked[..3].to_vec()));
            assert_eq!(
                top.hypothesis.device.as_deref(),
                Some(["OAD", "CHW", "HW"][slot]),
                "{b:?}: {:?}",
                &r.ranked[..3]
            );
            assert!(r.evidence() > 0.0);
        }
        let healthy = day(&truth, None, 0, 8);
        let r = rank("ahu", &model, &elements(), &healthy, &ForkSpec::default());
        assert!(r.culprit().is_none(), "a healthy unit is blamed: {:?}", &r.ranked[..3]);
        // The same window gives the same ranking.
        assert_eq!(r, rank("ahu", &model, &elements(), &healthy, &ForkSpec::default()));
    }

    #[test]
    fn history_averages_into_buckets_and_keeps_its_window() {
        let mut h = History::new(600.0, 60.0);
        for i in 0..3600u64 {
            h.push(Sample {
                t: SimTime(i * 1000),
                operating: i % 600 != 5,
                outdoor_c: i as f64,
                return_c: 0.0,
                mixed_c: 0.0,
                supply_c: 0.0,
                positions: [0.5; 3],
            });
        }
        let s = h.samples();
        assert_eq!(s.len(), 10);
        assert_eq!(s.last().unwrap().t, SimTime(3_480_000));
        assert!((s.last().unwrap().outdoor_c - 3509.5).abs() < 1e-9);
        assert_eq!(s.iter().filter(|s| !s.operating).count(), 1);
    }
}
