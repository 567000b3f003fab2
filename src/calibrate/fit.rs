//! `twinfault calibrate --fit`: a template's healthy-device parameters fitted to a folder of
//! healthy recordings of one actuator type, so a user with another actuator calibrates their own
//! twin in one command.
//!
//! Each recording is a drive: its setpoints at its own sample times. The template's device is
//! simulated along every drive and its parameters moved, a few rounds, until the simulated
//! figures meet the recorded ones: travel speed, running torque (with a load factor per
//! recording: a bench may run the same actuator under several loads, and the template keeps the
//! lightest), torque noise and direction bias, power against torque; then the feedback's age, by
//! the position error sample by sample. Figures the simulation does not change are taken from
//! the recordings directly: the sensor at rest, the feedback refresh rate and the share of polls
//! the logger lost. Not fitted: the deadband, breakaway margin, thermal parameters (a recording's
//! inside temperature cannot tell the room's ambient from self-heating) and long silences.
//! Realism of the simulated drives against the recorded ones (the windows of `twinfault
//! realism`) is measured before and after.

use super::{mean, simulate_drive, stats};
use crate::dataset::realism::{self, Realism};
use crate::telemetry::rig::Recording;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use twinfault_core::actuator::Sample;
use twinfault_core::config::{ActuatorModelParams, ActuatorTemplate};

/// Rounds of simulate-and-adjust; the figures settle within about ten.
const ROUNDS: usize = 12;
/// Recordings whose loads lie within this factor of the lightest are the template's own load.
const NOMINAL_LOAD_SPREAD: f64 = 1.25;
/// Realism windows: those of `twinfault realism`'s defaults.
const WINDOW_S: f64 = 10.0;
const MIN_MOVING: f64 = 0.3;
/// Intervals longer than this many nominal intervals (and over 2 s) are gaps, not lost polls.
const GAP_INTERVALS: f64 = 10.0;

/// One fitted parameter of `[model]`.
#[derive(Debug, Clone)]
pub struct Param {
    pub key: &'static str,
    pub before: f64,
    pub after: f64,
    /// What it was fitted to.
    pub how: String,
}

/// A fit's outcome.
pub struct Fit {
    pub params: Vec<Param>,
    /// Per recording: its name and the load factor found (1 = the template's load).
    pub loads: Vec<(String, f64)>,
    /// Realism of the simulated drives against the recordings, with the template as given and fitted.
    pub before: Realism,
    pub after: Realism,
    pub template: Arc<ActuatorTemplate>,
    /// The template file with the fitted values written in (comments and layout kept).
    pub text: String,
    /// What the recordings show that the template does not model.
    pub notes: Vec<String>,
}

/// The figures fitted, of one drive (recorded or simulated).
#[derive(Debug, Clone, Copy)]
struct Figures {
    speed: f64,
    torque_moving: f64,
    /// Signed torque's spread while moving, around each direction's own mean [N·m].
    torque_sd: f64,
    /// Opening and closing torque's mean imbalance: `-(opening + closing) / 2` [N·m].
    bias: f64,
    power_moving: f64,
    power_sd: f64,
    moving_samples: usize,
}

fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// The median of the finite values, the two middle ones averaged (the dataset's nearest-rank
/// percentile takes the lower, which over ten recordings biases every ratio low); NaN without any.
fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

fn figures(samples: &[Sample]) -> Figures {
    let st = stats(samples);
    let dir = |r: u8| samples.iter().filter(move |s| s.rotation == r).map(|s| f64::from(s.torque_nm));
    let mut dev: Vec<f64> = Vec::new();
    for r in [1u8, 2] {
        let m = mean(dir(r));
        dev.extend(dir(r).map(|x| x - m));
    }
    let power: Vec<f64> = samples.iter().filter(|s| s.rotation != 0).map(|s| f64::from(s.power_w)).collect();
    Figures {
        speed: st.speed_pct_s,
        torque_moving: st.torque_moving_nm,
        torque_sd: if dev.len() >= 2 {
            (dev.iter().map(|x| x * x).sum::<f64>() / dev.len() as f64).sqrt()
        } else {
            f64::NAN
        },
        bias: -(st.torque_opening_nm + st.torque_closing_nm) / 2.0,
        power_moving: st.power_moving_w,
        power_sd: sd(&power),
        moving_samples: power.len(),
    }
}

/// Realism of the simulated drives against the recordings themselves.
pub fn paired_realism(
    model: &ActuatorModelParams,
    template: &ActuatorTemplate,
    recs: &[Recording],
    loads: &[f64],
) -> Result<Realism> {
    let w_ms = (WINDOW_S * 1000.0) as u64;
    let (mut real, mut sim) = (Vec::new(), Vec::new());
    for (k, (rec, load)) in recs.iter().zip(loads).enumerate() {
        realism::windows(&rec.samples, w_ms, MIN_MOVING, &mut real);
        realism::windows(&simulate_drive(model, template, rec, *load, 1 + k as u64), w_ms, MIN_MOVING, &mut sim);
    }
    let mut r = realism::compare(real, sim, WINDOW_S)?;
    r.min_moving = MIN_MOVING;
    Ok(r)
}

/// Sampling of the recordings: the median share of polls lost (against each recording's
/// 10th-percentile interval, gaps left out), and the gaps over 2 s (count, longest [s]).
fn sampling(recs: &[Recording]) -> (f64, usize, f64) {
    let (mut shares, mut gaps, mut longest) = (Vec::new(), 0usize, 0.0f64);
    for rec in recs {
        let mut dts: Vec<f64> = rec
            .samples
            .windows(2)
            .map(|w| w[1].t.0.saturating_sub(w[0].t.0) as f64 / 1000.0)
            .filter(|d| *d > 0.0)
            .collect();
        if dts.len() < 20 {
            continue;
        }
        dts.sort_by(f64::total_cmp);
        let nominal = dts[dts.len() / 10];
        let gap = (GAP_INTERVALS * nominal).max(2.0);
        let (mut span, mut n) = (0.0, 0usize);
        for &d in &dts {
            if d > gap {
                gaps += 1;
                longest = longest.max(d);
            } else {
                span += d;
                n += 1;
            }
        }
        shares.push((1.0 - n as f64 * nominal / span).clamp(0.0, 0.9));
    }
    (median(shares), gaps, longest)
}

/// Fits the template at `template_path` to every healthy recording under `rig_dir`.
pub fn fit(template_path: &Path, rig_dir: &Path, strict: bool) -> Result<Fit> {
    let folder =
        rig_dir.file_name().map_or_else(|| rig_dir.display().to_string(), |f| f.to_string_lossy().into_owned());
    let text =
        std::fs::read_to_string(template_path).with_context(|| format!("cannot read {}", template_path.display()))?;
    let template = ActuatorTemplate::parse(&text, &template_path.display().to_string())?;
    let mut recs = Vec::new();
    for f in crate::telemetry::rig::csv_files(rig_dir)? {
        let rec = crate::telemetry::rig::read(&f, strict)?;
        rec.tally.warn();
        if rec.samples.len() >= 20 {
            recs.push(rec);
        }
    }
    if recs.is_empty() {
        bail!("{}: no recording with at least 20 usable samples", rig_dir.display());
    }
    let before_model = template.model.clone();
    // As given: each recording at the load the template as it is needs for it.
    let before = paired_realism(&before_model, &template, &recs, &loads_for(&before_model, &template, &recs))?;
    let mut m = template.model.clone();
    let mut params = Vec::new();
    let mut notes = Vec::new();
    let set = |params: &mut Vec<Param>, key: &'static str, before: f64, after: f64, how: String| {
        params.push(Param { key, before, after, how });
    };

    // Straight from the recordings: the sensor at rest, refresh rate, temperature, sampling.
    let reported: Vec<&Recording> = recs.iter().filter(|r| r.rotation_reported).collect();
    let rest: Vec<f64> = reported
        .iter()
        .flat_map(|r| r.samples.iter().filter(|s| s.rotation == 0).map(|s| f64::from(s.torque_nm)))
        .collect();
    if rest.len() >= 50 {
        let zero = rest.iter().filter(|x| **x == 0.0).count() as f64 / rest.len() as f64;
        let nonzero: Vec<f64> = rest.iter().copied().filter(|x| *x != 0.0).collect();
        let how = format!("{} samples at rest in {} recordings", rest.len(), reported.len());
        set(&mut params, "rest_torque_zero_share", m.rest_torque_zero_share, zero, how.clone());
        m.rest_torque_zero_share = zero;
        if nonzero.len() >= 10 {
            let rms = (nonzero.iter().map(|x| x * x).sum::<f64>() / nonzero.len() as f64).sqrt();
            set(&mut params, "rest_torque_noise_nm", m.rest_torque_noise_nm, rms, how.clone() + ", not reading 0");
            m.rest_torque_noise_nm = rms;
        }
        let power = mean(
            reported.iter().flat_map(|r| r.samples.iter().filter(|s| s.rotation == 0).map(|s| f64::from(s.power_w))),
        );
        // Below half the power resolution the device reads 0 at rest.
        let power = if power < 0.5 * template.quantization.power_w { 0.0 } else { power };
        set(&mut params, "standby_power_w", m.standby_power_w, power, how);
        m.standby_power_w = power;
    }
    // Feedback refresh: position changes per second while driving, where the log samples fast
    // enough to see it (a refresh slower than the sampling leaves samples unchanged).
    let (mut changes, mut time, mut fast) = (0usize, 0.0, 0usize);
    for r in &reported {
        let mut sorted: Vec<u64> = r.samples.windows(2).map(|w| w[1].t.0.saturating_sub(w[0].t.0)).collect();
        sorted.sort_unstable();
        if sorted.get(sorted.len() / 2).is_none_or(|&d| d > 80) {
            continue;
        }
        fast += 1;
        for w in r.samples.windows(2) {
            if w[0].rotation != 0 && w[1].rotation == w[0].rotation && w[1].t.0.saturating_sub(w[0].t.0) <= 200 {
                changes += usize::from(w[1].position_pct != w[0].position_pct);
                time += w[1].t.0.saturating_sub(w[0].t.0) as f64 / 1000.0;
            }
        }
    }
    if time > 5.0 {
        let hz = changes as f64 / time;
        set(
            &mut params,
            "position_update_hz",
            m.position_update_hz,
            hz,
            format!("feedback changes while driving in {fast} recordings sampled above 12 Hz"),
        );
        m.position_update_hz = hz;
    }
    let temps = median(recs.iter().flat_map(|r| r.samples.iter().map(|s| f64::from(s.temperature_c))).collect());
    let (tmin, tmax) = recs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| f64::from(s.temperature_c)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if temps.is_finite() {
        // Inside temperature is the room's ambient plus self-heating, which the recordings
        // cannot tell apart: neither is fitted; the range says what ambient a campaign needs.
        let h = m.self_heating_c;
        notes.push(format!(
            "inside temperatures {tmin:.1}-{tmax:.1} °C (median {temps:.1}) across the recordings: with self_heating_c {h:.1}, an ambient of {:.1}-{:.1} °C (a campaign's variation.ambient_c); not fitted",
            tmin - h,
            tmax - h
        ));
    }
    let (drop, gaps, longest) = sampling(&recs);
    if drop.is_finite() {
        set(
            &mut params,
            "healthy_drop_share",
            m.healthy_drop_share,
            drop,
            "median share of polls lost against each recording's 10th-percentile interval".into(),
        );
        m.healthy_drop_share = drop;
    }
    if gaps > 0 {
        notes.push(format!(
            "{gaps} silences over 2 s in the recordings (longest {longest:.1} s): not modelled by the template (a campaign's signal_loss faults are silences)"
        ));
    }

    // Simulate-and-adjust, on the recordings that report the motor's rotation.
    let fit_recs: Vec<&Recording> = recs.iter().filter(|r| figures(&r.samples).moving_samples >= 20).collect();
    if !fit_recs.iter().any(|r| r.rotation_reported) {
        bail!("{}: no recording reports the motor's rotation with at least 20 samples driving", rig_dir.display());
    }
    let real: Vec<Figures> = fit_recs.iter().map(|r| figures(&r.samples)).collect();
    let mut loads = vec![1.0; fit_recs.len()];
    let start = m.clone();
    for _ in 0..ROUNDS {
        let sim: Vec<Figures> = fit_recs
            .iter()
            .zip(&loads)
            .enumerate()
            .map(|(k, (r, l))| figures(&simulate_drive(&m, &template, r, *l, 1 + k as u64)))
            .collect();
        // Load per recording from running torque; the lightest cluster is the template's own.
        rescale_loads(&mut loads, &real, &sim);
        let lightest = loads.iter().copied().fold(f64::INFINITY, f64::min);
        let nominal = median(loads.iter().copied().filter(|l| *l <= lightest * NOMINAL_LOAD_SPREAD).collect());
        m = m.with_load(nominal);
        loads.iter_mut().for_each(|l| *l /= nominal);
        // The rest from the recordings that report the motor's own rotation (derived rotation
        // lags and misses slow travel, so it serves the load only).
        let own: Vec<usize> = own_of(&fit_recs).collect();
        let (real, sim, loads): (Vec<Figures>, Vec<Figures>, Vec<f64>) = (
            own.iter().map(|&i| real[i]).collect(),
            own.iter().map(|&i| sim[i]).collect(),
            own.iter().map(|&i| loads[i]).collect(),
        );
        let ratio = |f: fn(&Figures) -> f64| {
            median(real.iter().zip(&sim).map(|(r, s)| f(r) / f(s)).filter(|x| x.is_finite() && *x > 0.0).collect())
        };
        let r = ratio(|f| f.speed);
        if r.is_finite() {
            m.rated_speed_pct_s = (m.rated_speed_pct_s * r.clamp(0.5, 2.0)).clamp(0.01, 100.0);
        }
        let r = ratio(|f| f.torque_sd);
        if r.is_finite() {
            m.torque_noise_nm *= r.clamp(0.5, 2.0);
        }
        let r = ratio(|f| f.power_sd);
        if r.is_finite() {
            m.power_noise_w *= r.clamp(0.5, 2.0);
        }
        // Bias scales with the load (`with_load`): per unit of load.
        let d = median(real.iter().zip(&sim).zip(&loads).map(|((r, s), l)| (r.bias - s.bias) / l).collect());
        if d.is_finite() {
            m.side_load_nm += d;
        }
        // Power: the residual against squared running torque; with loads far enough apart the
        // slope (copper loss) is fitted too, else only the offset (electronics while running).
        let pts: Vec<(f64, f64)> = real
            .iter()
            .zip(&sim)
            .filter(|(r, s)| r.power_moving.is_finite() && s.power_moving.is_finite())
            .map(|(r, s)| (s.torque_moving * s.torque_moving, r.power_moving - s.power_moving))
            .collect();
        let (xmin, xmax) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
        if pts.len() >= 3 && xmax > 1.5 * xmin {
            let k = pts.len() as f64;
            let (sx, sy) = (pts.iter().map(|p| p.0).sum::<f64>() / k, pts.iter().map(|p| p.1).sum::<f64>() / k);
            let sxx = pts.iter().map(|p| (p.0 - sx).powi(2)).sum::<f64>();
            let slope = pts.iter().map(|p| (p.0 - sx) * (p.1 - sy)).sum::<f64>() / sxx;
            m.copper_loss_w_per_nm2 = (m.copper_loss_w_per_nm2 + slope).max(0.0);
            m.moving_power_w = (m.moving_power_w + sy - slope * sx).max(0.0);
        } else if !pts.is_empty() {
            m.moving_power_w = (m.moving_power_w + median(pts.iter().map(|p| p.1).collect())).max(0.0);
        }
    }
    // Feedback age: a grid search over the paired position error (sample by sample). The
    // deadband is not fitted: that error prefers none (the positioner then follows closest),
    // which the rig's restarts at about 1 % contradict.
    let own: Vec<usize> = own_of(&fit_recs).collect();
    let error = |m: &ActuatorModelParams| {
        let (mut sum, mut n) = (0.0, 0usize);
        for &i in &own {
            let sim = simulate_drive(m, &template, fit_recs[i], loads[i], 1 + i as u64);
            for (a, b) in fit_recs[i].samples.iter().zip(&sim) {
                sum += f64::from((a.position_pct - b.position_pct).abs());
                n += 1;
            }
        }
        sum / n.max(1) as f64
    };
    m = (0..=30)
        .map(|k| ActuatorModelParams { feedback_delay_s: 0.02 * f64::from(k), ..m.clone() })
        .map(|c| (error(&c), c))
        .fold((f64::INFINITY, m.clone()), |a, b| if b.0 < a.0 { b } else { a })
        .1;
    let k = own.len();
    let how = |what: &str| format!("{what} ({k} drives simulated)");
    for (key, b, a, what) in [
        ("rated_speed_pct_s", start.rated_speed_pct_s, m.rated_speed_pct_s, "travel speed"),
        ("coulomb_torque_nm", start.coulomb_torque_nm, m.coulomb_torque_nm, "|torque| driving at the lightest load"),
        (
            "viscous_torque_nm_per_pct_s",
            start.viscous_torque_nm_per_pct_s,
            m.viscous_torque_nm_per_pct_s,
            "scaled with the running torque",
        ),
        (
            "breakaway_torque_nm",
            start.breakaway_torque_nm,
            m.breakaway_torque_nm,
            "running torque plus the template's breakaway margin",
        ),
        ("torque_noise_nm", start.torque_noise_nm, m.torque_noise_nm, "torque spread driving"),
        ("side_load_nm", start.side_load_nm, m.side_load_nm, "opening against closing torque"),
        ("moving_power_w", start.moving_power_w, m.moving_power_w, "power driving, offset"),
        (
            "copper_loss_w_per_nm2",
            start.copper_loss_w_per_nm2,
            m.copper_loss_w_per_nm2,
            "power driving against torque²",
        ),
        ("power_noise_w", start.power_noise_w, m.power_noise_w, "power spread driving"),
        (
            "feedback_delay_s",
            start.feedback_delay_s,
            m.feedback_delay_s,
            "feedback against the recorded, sample by sample",
        ),
    ] {
        set(&mut params, key, b, a, how(what));
    }
    for p in &mut params {
        p.after = round_sig(p.after, 3);
    }
    apply(&mut m, &params);

    // All recordings for the realism after the fit: loads found where fitted, else 1.
    let all_loads: Vec<f64> =
        recs.iter().map(|r| fit_recs.iter().position(|f| std::ptr::eq(*f, r)).map_or(1.0, |i| loads[i])).collect();
    let after = paired_realism(&m, &template, &recs, &all_loads)?;
    let text = rewrite(&text, &params, &format!("{} healthy recordings in {folder}/", recs.len()))?;
    let fitted = ActuatorTemplate::parse(&text, &template_path.display().to_string())
        .context("the fitted template does not validate")?;
    let loads = recs.iter().zip(&all_loads).map(|(r, l)| (r.name.clone(), round_sig(*l, 3))).collect();
    Ok(Fit { params, loads, before, after, template: Arc::new(fitted), text, notes })
}

/// Each recording's load factor moved by the ratio of recorded to simulated running torque.
fn rescale_loads(loads: &mut [f64], real: &[Figures], sim: &[Figures]) {
    for (l, (re, si)) in loads.iter_mut().zip(real.iter().zip(sim)) {
        if si.torque_moving > 0.05 && re.torque_moving.is_finite() {
            *l = (*l * re.torque_moving / si.torque_moving).clamp(0.2, 5.0);
        }
    }
}

/// The load factor of each recording under the model as it is (1 where a recording does not
/// drive enough to tell).
fn loads_for(model: &ActuatorModelParams, template: &ActuatorTemplate, recs: &[Recording]) -> Vec<f64> {
    let real: Vec<Figures> = recs.iter().map(|r| figures(&r.samples)).collect();
    let mut loads = vec![1.0; recs.len()];
    for _ in 0..4 {
        let sim: Vec<Figures> = recs
            .iter()
            .zip(&loads)
            .enumerate()
            .map(|(k, (r, l))| figures(&simulate_drive(model, template, r, *l, 1 + k as u64)))
            .collect();
        rescale_loads(&mut loads, &real, &sim);
    }
    for (l, r) in loads.iter_mut().zip(&real) {
        if r.moving_samples < 20 {
            *l = 1.0;
        }
    }
    loads
}

/// Indices of the recordings that report the motor's own rotation.
fn own_of<'a>(recs: &'a [&Recording]) -> impl Iterator<Item = usize> + 'a {
    (0..recs.len()).filter(|&i| recs[i].rotation_reported)
}

fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e = digits - 1 - x.abs().log10().floor() as i32;
    let f = 10f64.powi(e);
    (x * f).round() / f
}

/// Writes the rounded values back into the model (so the realism after is the written template's).
fn apply(m: &mut ActuatorModelParams, params: &[Param]) {
    for p in params {
        let v = p.after;
        match p.key {
            "rest_torque_zero_share" => m.rest_torque_zero_share = v,
            "rest_torque_noise_nm" => m.rest_torque_noise_nm = v,
            "standby_power_w" => m.standby_power_w = v,
            "position_update_hz" => m.position_update_hz = v,
            "healthy_drop_share" => m.healthy_drop_share = v,
            "rated_speed_pct_s" => m.rated_speed_pct_s = v,
            "coulomb_torque_nm" => m.coulomb_torque_nm = v,
            "viscous_torque_nm_per_pct_s" => m.viscous_torque_nm_per_pct_s = v,
            "breakaway_torque_nm" => m.breakaway_torque_nm = v,
            "torque_noise_nm" => m.torque_noise_nm = v,
            "side_load_nm" => m.side_load_nm = v,
            "moving_power_w" => m.moving_power_w = v,
            "copper_loss_w_per_nm2" => m.copper_loss_w_per_nm2 = v,
            "power_noise_w" => m.power_noise_w = v,
            "feedback_delay_s" => m.feedback_delay_s = v,
            other => unreachable!("no fitted parameter {other}"),
        }
    }
}

/// The template's text with each fitted `[model]` key set (added where absent), its comment
/// naming what it was fitted to; everything else (comments, layout, other tables) kept.
fn rewrite(text: &str, params: &[Param], source: &str) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("the template is not TOML")?;
    let model = doc["model"].as_table_mut().context("the template has no [model] table")?;
    for p in params {
        let mut v = toml_edit::Value::from(p.after);
        v.decor_mut().set_prefix(" ");
        v.decor_mut().set_suffix(format!("  # fit: {}", p.how));
        model.insert(p.key, toml_edit::Item::Value(v));
    }
    // One stamp line at the top, replaced on a refit.
    const STAMP: &str = "# [model] fitted by `twinfault calibrate --fit` to ";
    let body = doc.to_string();
    let body = match body.strip_prefix(STAMP) {
        Some(rest) => rest.split_once('\n').map_or("", |r| r.1).to_string(),
        None => body,
    };
    Ok(format!("{STAMP}{source}\n{body}"))
}
