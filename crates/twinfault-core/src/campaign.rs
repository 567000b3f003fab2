//! Campaign files: distributions of runs for training data, not single runs. A campaign names a
//! facility and says how device parameters vary from unit to unit, which faults occur with what
//! prevalence, severity, onset and evolution, how often they overlap, how the AHUs are scheduled,
//! how long windows are, and how runs are split. [`Campaign::draw`] turns run `i` of a campaign
//! seed into an ordinary deterministic [`Scenario`] on a varied copy of the facility.
//! Every key is documented in `campaigns/README.md`.

use crate::config::{ActuatorTemplate, Check, ConfigError, Facility, parse_toml};
use crate::fault::Injection;
use crate::rng::{NodeRng, node_rng, uniform};
use crate::scenario::{CommandProfile, Expectation, Scenario, Schedule, Shape, Weather};
use crate::types::{FaultKind, Role, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A closed range `[lo, hi]` to draw uniformly from.
pub type Range = [f64; 2];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Facility file, relative to the campaign file.
    pub facility: String,
    /// Runs when `--runs` is not given.
    pub runs: usize,
    pub duration_s: Range,
    /// Sample rate of a run, drawn per run (gateways poll at different rates) [Hz].
    pub sample_rate_hz: Range,
    #[serde(default = "one")]
    pub control_period_s: f64,
    pub schedule: ScheduleDist,
    pub weather: WeatherDist,
    #[serde(default)]
    pub exercise: ExerciseDist,
    #[serde(default)]
    pub variation: Variation,
    pub faults: FaultDist,
    pub windows: WindowSpec,
    pub splits: Splits,
}

fn one() -> f64 {
    1.0
}

/// How runs are scheduled: a share always on (startup at t = 0), the rest daily with the run
/// starting before the occupied period so it holds off → startup → occupied (→ shutdown → off).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDist {
    /// Share of runs with the AHUs always on (the rest run a daily schedule).
    pub always_on_share: f64,
    pub startup_s: Range,
    pub shutdown_s: Range,
    /// Daily runs: time from the run's start to the occupied start [s].
    pub lead_s: Range,
    /// Daily runs: length of the occupied period [s].
    pub occupied_s: Range,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherDist {
    pub outdoor_mean_c: Range,
    pub outdoor_amplitude_c: Range,
}

/// Actuators driven by an exercise profile (as a BMS exercise or a bench test) instead of
/// their controller.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExerciseDist {
    /// Share of actuators exercised in a run.
    pub share: f64,
    pub shapes: Vec<Shape>,
    pub period_s: Range,
    pub min_pct: Range,
    pub max_pct: Range,
    /// A short test instead of a standing exercise: the profile runs this long `[lo, hi]` [s],
    /// starting at a random time of the run, then the controller takes over again (as a
    /// commissioning test or the rig's bench tests). Absent: for the whole run.
    #[serde(default)]
    pub test_s: Option<Range>,
}

impl Default for ExerciseDist {
    fn default() -> Self {
        ExerciseDist {
            share: 0.0,
            shapes: vec![Shape::Sweep],
            period_s: [60.0, 600.0],
            min_pct: [0.0, 10.0],
            max_pct: [90.0, 100.0],
            test_s: None,
        }
    }
}

/// Unit-to-unit spread: relative (±, uniform) on the template's model parameters, and absolute
/// ranges where a relative spread makes no sense.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    #[serde(default)]
    pub rated_speed: f64,
    #[serde(default)]
    pub coulomb_torque: f64,
    #[serde(default)]
    pub breakaway_torque: f64,
    #[serde(default)]
    pub viscous_torque: f64,
    #[serde(default)]
    pub torque_noise: f64,
    #[serde(default)]
    pub power_noise: f64,
    #[serde(default)]
    pub moving_power: f64,
    #[serde(default)]
    pub signal_quality_noise: f64,
    #[serde(default)]
    pub thermal_resistance: f64,
    /// Mechanical load per unit, `[lo, hi]`: a factor on the template's running (Coulomb and
    /// viscous) torques, the breakaway margin kept (a bigger or stiffer damper; the real rig was
    /// recorded at about 1× and 2×). Absent: 1.
    #[serde(default)]
    pub load: Option<Range>,
    /// Share of samples a healthy unit's gateway loses, `[lo, hi]` per unit (polling is
    /// irregular: the rig's logs lose 5-40 % of their intervals' samples). Absent: none.
    #[serde(default)]
    pub drop_share: Option<Range>,
    /// Share of devices that report a control-signal quality (the real rig reports none).
    #[serde(default = "all")]
    pub signal_quality_reporting: f64,
    /// Ambient temperature around the device [°C]; absent keeps the template's.
    #[serde(default)]
    pub ambient_c: Option<Range>,
    /// Where a unit's inside temperature starts against its equilibrium at rest [°C], `[lo, hi]`
    /// per unit (negative: still warming up; the rig's healthy recordings warm by 0.2-0.4 °C/min
    /// while they run). Absent: the template's.
    #[serde(default)]
    pub start_temperature_offset_c: Option<Range>,
}

impl Default for Variation {
    fn default() -> Self {
        parse_toml("", "default").expect("every key has a default")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultDist {
    /// Relative weight of each number of faulty devices in a run, e.g. `{ "0" = 1, "1" = 2 }`.
    pub per_run: BTreeMap<String, f64>,
    /// Relative prevalence of each fault kind (kinds not listed never occur).
    pub kinds: BTreeMap<String, f64>,
    /// Onset of the first fault [s into the run].
    pub onset_s: Range,
    /// How long a fault lasts [s]; absent: until the end of the run.
    #[serde(default)]
    pub duration_s: Option<Range>,
    pub severity: Range,
    /// Share of faults that ramp in (the rest are steps).
    #[serde(default)]
    pub ramp_share: f64,
    #[serde(default = "default_ramp")]
    pub ramp_s: Range,
    /// Probability that a further fault starts while the first is active (else its onset is
    /// drawn independently).
    #[serde(default)]
    pub overlap: f64,
}

fn all() -> f64 {
    1.0
}

fn default_ramp() -> Range {
    [60.0, 600.0]
}

/// Classifier windows.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub length_s: f64,
    pub stride_s: f64,
}

/// Shares of runs per split; a run (and every device in it) belongs to exactly one.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    pub train: f64,
    pub validation: f64,
    pub test: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Split> {
        [Split::Train, Split::Validation, Split::Test].into_iter().find(|x| x.as_str() == s)
    }
}

/// One drawn run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub index: usize,
    pub seed: u64,
    pub split: Split,
    pub scenario: Scenario,
    pub facility: Facility,
}

/// Whether a campaign draws a fault kind for an actuator of this role: where the modelled
/// sensors can see it. A leak or a slipped linkage leaves the device's own telemetry normal and
/// shows only in the air: through the coils for valves, through the mixing for the outdoor-air
/// damper. A zone damper's would show only in its zone's airflow, which no twin measures.
/// Within what can be injected at all (`FaultKind::applies_to`).
pub fn applies(kind: FaultKind, role: Role) -> bool {
    kind.applies_to(role)
        && match kind {
            FaultKind::DamperLeak => role == Role::OutdoorAirDamper,
            FaultKind::StuckAt => role != Role::ZoneDamper,
            _ => true,
        }
}

fn draw(rng: &mut NodeRng, r: Range) -> f64 {
    r[0] + (r[1] - r[0]) * uniform(rng)
}

/// Picks an index by relative weights.
fn pick(rng: &mut NodeRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = uniform(rng) * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

impl Campaign {
    pub fn parse(text: &str, file: &str) -> Result<Campaign, ConfigError> {
        let c: Campaign = parse_toml(text, file)?;
        c.check(file).map_err(|e| e.locate(text))?;
        Ok(c)
    }

    /// Fault kinds with their weights, in `FaultKind` order.
    pub fn kinds(&self) -> Vec<(FaultKind, f64)> {
        let mut v: Vec<(FaultKind, f64)> =
            self.faults.kinds.iter().filter_map(|(k, w)| FaultKind::parse(k).map(|k| (k, *w))).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let c = Check { file, prefix: String::new() };
        let range = |c: &Check, key: &str, r: Range, lo: f64, hi: f64| -> Result<(), ConfigError> {
            c.range(&format!("{key}[0]"), r[0], lo, hi)?;
            c.range(&format!("{key}[1]"), r[1], r[0], hi)
        };
        if self.runs == 0 || self.runs > 1_000_000 {
            return Err(ConfigError::new(file, "runs", format!("{} is outside 1..=1000000", self.runs)));
        }
        range(&c, "duration_s", self.duration_s, 60.0, crate::scenario::MAX_DURATION_S)?;
        range(&c, "sample_rate_hz", self.sample_rate_hz, 0.01, crate::scenario::MAX_SAMPLE_RATE_HZ)?;
        c.range("control_period_s", self.control_period_s, 0.05, 3600.0)?;
        if self.control_period_s * self.sample_rate_hz[0] < 0.999 {
            return Err(ConfigError::new(file, "control_period_s", "must hold at least one sample period"));
        }
        let s = Check { file, prefix: "schedule".into() };
        s.range("always_on_share", self.schedule.always_on_share, 0.0, 1.0)?;
        range(&s, "startup_s", self.schedule.startup_s, 0.0, 7200.0)?;
        range(&s, "shutdown_s", self.schedule.shutdown_s, 0.0, 7200.0)?;
        range(&s, "lead_s", self.schedule.lead_s, 0.0, 6.0 * 3600.0)?;
        range(&s, "occupied_s", self.schedule.occupied_s, 600.0, 14.0 * 3600.0)?;
        let w = Check { file, prefix: "weather".into() };
        range(&w, "outdoor_mean_c", self.weather.outdoor_mean_c, -50.0, 60.0)?;
        range(&w, "outdoor_amplitude_c", self.weather.outdoor_amplitude_c, 0.0, 30.0)?;
        let e = Check { file, prefix: "exercise".into() };
        e.range("share", self.exercise.share, 0.0, 1.0)?;
        range(&e, "period_s", self.exercise.period_s, 1.0, 86_400.0)?;
        range(&e, "min_pct", self.exercise.min_pct, 0.0, 100.0)?;
        range(&e, "max_pct", self.exercise.max_pct, self.exercise.min_pct[1], 100.0)?;
        if let Some(t) = self.exercise.test_s {
            range(&e, "test_s", t, 1.0, self.duration_s[0])?;
        }
        if self.exercise.share > 0.0 && self.exercise.shapes.is_empty() {
            return Err(ConfigError::new(file, "exercise.shapes", "needs at least one shape when share > 0"));
        }
        let v = Check { file, prefix: "variation".into() };
        let rel = [
            ("rated_speed", self.variation.rated_speed),
            ("coulomb_torque", self.variation.coulomb_torque),
            ("breakaway_torque", self.variation.breakaway_torque),
            ("viscous_torque", self.variation.viscous_torque),
            ("torque_noise", self.variation.torque_noise),
            ("power_noise", self.variation.power_noise),
            ("moving_power", self.variation.moving_power),
            ("signal_quality_noise", self.variation.signal_quality_noise),
            ("thermal_resistance", self.variation.thermal_resistance),
        ];
        for (k, x) in rel {
            v.range(k, x, 0.0, 0.9)?;
        }
        if let Some(a) = self.variation.ambient_c {
            range(&v, "ambient_c", a, -40.0, 70.0)?;
        }
        if let Some(o) = self.variation.start_temperature_offset_c {
            range(&v, "start_temperature_offset_c", o, -40.0, 40.0)?;
        }
        v.range("signal_quality_reporting", self.variation.signal_quality_reporting, 0.0, 1.0)?;
        if let Some(l) = self.variation.load {
            range(&v, "load", l, 0.2, 5.0)?;
        }
        if let Some(d) = self.variation.drop_share {
            range(&v, "drop_share", d, 0.0, 0.9)?;
        }
        let f = Check { file, prefix: "faults".into() };
        if self.faults.per_run.is_empty() {
            return Err(ConfigError::new(file, "faults.per_run", "needs at least one count, e.g. { \"1\" = 1.0 }"));
        }
        for (k, wt) in &self.faults.per_run {
            if k.parse::<usize>().is_err() {
                return Err(ConfigError::new(file, format!("faults.per_run.{k}"), "keys are counts of faulty devices"));
            }
            f.range(&format!("per_run.{k}"), *wt, 0.0, 1e9)?;
        }
        if self.faults.per_run.values().sum::<f64>() <= 0.0 {
            return Err(ConfigError::new(file, "faults.per_run", "weights must not all be 0"));
        }
        for (k, wt) in &self.faults.kinds {
            match FaultKind::parse(k) {
                Some(kind) if kind.injectable() => f.range(&format!("kinds.{k}"), *wt, 0.0, 1e9)?,
                _ => {
                    let names: Vec<&str> =
                        FaultKind::ALL.iter().filter(|k| k.injectable()).map(|k| k.as_str()).collect();
                    return Err(ConfigError::new(
                        file,
                        format!("faults.kinds.{k}"),
                        format!("not an injectable fault kind ({})", names.join(", ")),
                    ));
                }
            }
        }
        let busy = self.faults.per_run.iter().any(|(k, w)| *w > 0.0 && k != "0");
        if busy && self.faults.kinds.values().sum::<f64>() <= 0.0 {
            return Err(ConfigError::new(file, "faults.kinds", "runs have faults, so some kind needs a weight"));
        }
        range(&f, "onset_s", self.faults.onset_s, 0.0, self.duration_s[0])?;
        if let Some(d) = self.faults.duration_s {
            range(&f, "duration_s", d, 1.0, crate::scenario::MAX_DURATION_S)?;
        }
        range(&f, "severity", self.faults.severity, 0.0, 1.0)?;
        f.range("ramp_share", self.faults.ramp_share, 0.0, 1.0)?;
        range(&f, "ramp_s", self.faults.ramp_s, 0.0, crate::scenario::MAX_DURATION_S)?;
        f.range("overlap", self.faults.overlap, 0.0, 1.0)?;
        let wn = Check { file, prefix: "windows".into() };
        wn.range("length_s", self.windows.length_s, 1.0, 86_400.0)?;
        wn.range("stride_s", self.windows.stride_s, 1.0, self.windows.length_s * 10.0)?;
        if self.windows.length_s * self.sample_rate_hz[0] < 4.0 {
            return Err(ConfigError::new(file, "windows.length_s", "a window must hold at least 4 samples"));
        }
        let sp = Check { file, prefix: "splits".into() };
        for (k, x) in [("train", self.splits.train), ("validation", self.splits.validation), ("test", self.splits.test)]
        {
            sp.range(k, x, 0.0, 1.0)?;
        }
        if (self.splits.train + self.splits.validation + self.splits.test - 1.0).abs() > 1e-6 {
            return Err(ConfigError::new(file, "splits", "train + validation + test must be 1"));
        }
        Ok(())
    }

    /// The split of each of `runs` runs: a seeded permutation of the runs cut by the shares, so
    /// the counts are exact and a run is in exactly one split.
    pub fn splits(&self, runs: usize, seed: u64) -> Vec<Split> {
        let mut order: Vec<usize> = (0..runs).collect();
        let mut rng = node_rng(seed, "campaign", "splits");
        for i in (1..runs).rev() {
            let j = ((uniform(&mut rng) * (i + 1) as f64) as usize).min(i);
            order.swap(i, j);
        }
        let n_test = (self.splits.test * runs as f64).round() as usize;
        let n_val = ((self.splits.validation * runs as f64).round() as usize).min(runs - n_test);
        let mut out = vec![Split::Train; runs];
        for (k, &run) in order.iter().enumerate() {
            out[run] = if k < n_test {
                Split::Test
            } else if k < n_test + n_val {
                Split::Validation
            } else {
                Split::Train
            };
        }
        out
    }

    /// Run `index` of the campaign under `seed`: a scenario and a copy of `base` with each
    /// actuator's parameters drawn around its template. Depends only on (campaign, base,
    /// seed, index), never on other runs or on the thread that draws it.
    pub fn draw(&self, base: &Facility, index: usize, seed: u64, split: Split) -> RunSpec {
        let run_seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(index as u64 + 1);
        let mut rng = node_rng(run_seed, "campaign", "run");
        let duration_s = draw(&mut rng, self.duration_s).round();
        let sample_rate_hz = (draw(&mut rng, self.sample_rate_hz) * 10.0).round() / 10.0;
        let sd = &self.schedule;
        let startup_s = draw(&mut rng, sd.startup_s).round();
        let shutdown_s = draw(&mut rng, sd.shutdown_s).round();
        let (schedule, start_clock_s) = if uniform(&mut rng) < sd.always_on_share {
            (Schedule::AlwaysOn { startup_s }, (draw(&mut rng, [0.0, 23.0]) * 3600.0).round())
        } else {
            let lead = draw(&mut rng, sd.lead_s).round();
            let occupied = draw(&mut rng, sd.occupied_s).round();
            // Start the run early enough that the day fits before midnight.
            let latest = (86_400.0 - lead - occupied - shutdown_s - 60.0).max(0.0);
            let clock = (draw(&mut rng, [4.0 * 3600.0, 8.0 * 3600.0])).min(latest).round();
            let start_s = clock + lead;
            (Schedule::Daily { start_s, end_s: start_s + occupied.max(startup_s + 60.0), startup_s, shutdown_s }, clock)
        };
        let weather = Weather {
            outdoor_mean_c: draw(&mut rng, self.weather.outdoor_mean_c),
            outdoor_amplitude_c: draw(&mut rng, self.weather.outdoor_amplitude_c),
        };

        let mut facility = base.clone();
        let var = &self.variation;
        for a in &mut facility.actuators {
            let mut r = node_rng(run_seed, &a.id, "campaign-variation");
            let mut t: ActuatorTemplate = (*a.template).clone();
            let m = &mut t.model;
            let mut scale = |x: &mut f64, v: f64| *x *= 1.0 + v * (2.0 * uniform(&mut r) - 1.0);
            scale(&mut m.rated_speed_pct_s, var.rated_speed);
            scale(&mut m.coulomb_torque_nm, var.coulomb_torque);
            scale(&mut m.breakaway_torque_nm, var.breakaway_torque);
            scale(&mut m.viscous_torque_nm_per_pct_s, var.viscous_torque);
            scale(&mut m.torque_noise_nm, var.torque_noise);
            scale(&mut m.power_noise_w, var.power_noise);
            scale(&mut m.moving_power_w, var.moving_power);
            scale(&mut m.signal_quality_noise, var.signal_quality_noise);
            scale(&mut m.thermal_resistance_c_per_w, var.thermal_resistance);
            if let Some(amb) = var.ambient_c {
                m.ambient_c = draw(&mut r, amb);
            }
            if let Some(o) = var.start_temperature_offset_c {
                m.start_temperature_offset_c = draw(&mut r, o);
            }
            if let Some(l) = var.load {
                *m = m.with_load(draw(&mut r, l));
            }
            m.breakaway_torque_nm = m.breakaway_torque_nm.max(m.coulomb_torque_nm);
            m.reports_signal_quality = uniform(&mut r) < var.signal_quality_reporting;
            if let Some(d) = var.drop_share {
                m.healthy_drop_share = draw(&mut r, d);
            }
            a.template = Arc::new(t);
        }

        let mut commands = Vec::new();
        let ex = &self.exercise;
        for a in &facility.actuators {
            let mut r = node_rng(run_seed, &a.id, "campaign-exercise");
            if uniform(&mut r) < ex.share {
                let shape = ex.shapes[pick(&mut r, &vec![1.0; ex.shapes.len()])];
                let lo = draw(&mut r, ex.min_pct);
                let max_pct = draw(&mut r, ex.max_pct).max(lo);
                let period_s = draw(&mut r, ex.period_s).round().max(1.0);
                let (from, to) = match ex.test_s {
                    Some(t) => {
                        let len = draw(&mut r, t).round();
                        let start = draw(&mut r, [0.0, (duration_s - len).max(0.0)]).round();
                        (SimTime::from_secs_f64(start), Some(SimTime::from_secs_f64(start + len)))
                    }
                    None => (SimTime(0), None),
                };
                commands.push(CommandProfile { node: a.id.clone(), shape, min_pct: lo, max_pct, period_s, from, to });
            }
        }

        let counts: Vec<(usize, f64)> =
            self.faults.per_run.iter().filter_map(|(k, w)| k.parse().ok().map(|n| (n, *w))).collect();
        let n_faults = counts[pick(&mut rng, &counts.iter().map(|c| c.1).collect::<Vec<_>>())].0;
        let kinds = self.kinds();
        let mut free: Vec<usize> = (0..facility.actuators.len()).collect();
        let mut injections: Vec<Injection> = Vec::new();
        let fd = &self.faults;
        for k in 0..n_faults.min(facility.actuators.len()) {
            if free.is_empty() {
                break;
            }
            let slot = ((uniform(&mut rng) * free.len() as f64) as usize).min(free.len() - 1);
            let a = free.swap_remove(slot);
            let role = facility.actuators[a].role;
            let fitting: Vec<(FaultKind, f64)> =
                kinds.iter().copied().filter(|(kind, _)| applies(*kind, role)).collect();
            if fitting.iter().map(|f| f.1).sum::<f64>() <= 0.0 {
                continue;
            }
            let kind = fitting[pick(&mut rng, &fitting.iter().map(|f| f.1).collect::<Vec<_>>())].0;
            let onset = match injections.first() {
                Some(first) if uniform(&mut rng) < fd.overlap => {
                    let end = first.end.map_or(duration_s, |e| e.as_secs_f64());
                    draw(&mut rng, [first.start.as_secs_f64(), end.max(first.start.as_secs_f64())])
                }
                _ => draw(&mut rng, fd.onset_s),
            }
            .min(duration_s - 1.0)
            .round();
            let end = fd.duration_s.map(|d| onset + draw(&mut rng, d).round()).filter(|e| *e < duration_s);
            let ramp_s = if uniform(&mut rng) < fd.ramp_share { draw(&mut rng, fd.ramp_s).round() } else { 0.0 };
            let severity = (draw(&mut rng, fd.severity) * 100.0).round() / 100.0;
            injections.push(Injection {
                id: format!("R{index}-F{}", k + 1),
                node: facility.actuators[a].id.clone(),
                kind,
                severity,
                start: SimTime::from_secs_f64(onset),
                ramp_s,
                end: end.map(SimTime::from_secs_f64),
                position_pct: None,
                period_s: None,
            });
        }
        injections.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));

        let scenario = Scenario {
            name: format!("{}-run{index}", self.name),
            description: format!("run {index} of campaign {} (seed {seed})", self.name),
            facility: self.facility.clone(),
            seed: run_seed,
            duration: SimTime::from_secs_f64(duration_s),
            sample_rate_hz,
            control_period_s: self.control_period_s,
            start_clock_s,
            history_retention_s: None,
            campus: None,
            schedule,
            weather,
            commands,
            injections,
            expectations: Vec::<Expectation>::new(),
        };
        RunSpec { index, seed: run_seed, split, scenario, facility }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn campaign() -> Campaign {
        Campaign::parse(include_str!("../../../campaigns/actuator_faults.toml"), "actuator_faults.toml")
            .expect("shipped campaign parses")
    }

    #[test]
    fn a_run_depends_only_on_the_seed_and_its_index() {
        let (c, base) = (campaign(), testkit::datacenter());
        let a = c.draw(&base, 3, 11, Split::Train);
        let b = c.draw(&base, 3, 11, Split::Train);
        assert_eq!(format!("{:?}", a.scenario), format!("{:?}", b.scenario));
        let other = c.draw(&base, 4, 11, Split::Train);
        let reseeded = c.draw(&base, 3, 12, Split::Train);
        assert_ne!(format!("{:?}", a.scenario), format!("{:?}", other.scenario));
        assert_ne!(format!("{:?}", a.scenario), format!("{:?}", reseeded.scenario));
        // Every injection drawn applies to its device's role, and the run fits its facility.
        for r in [&a, &other, &reseeded] {
            for i in &r.scenario.injections {
                let Some(crate::config::NodeRef::Actuator(k)) = r.facility.node(&i.node) else {
                    panic!("{} is no actuator", i.node)
                };
                assert!(applies(i.kind, r.facility.actuators[k].role), "{} on {}", i.kind, i.node);
            }
        }
    }

    #[test]
    fn splits_are_exact_and_by_run() {
        let c = campaign();
        let s = c.splits(200, 5);
        assert_eq!(s, c.splits(200, 5));
        let count = |x: Split| s.iter().filter(|&&y| y == x).count();
        assert_eq!(count(Split::Test), (c.splits.test * 200.0).round() as usize);
        assert_eq!(count(Split::Validation), (c.splits.validation * 200.0).round() as usize);
        assert_eq!(count(Split::Train) + count(Split::Test) + count(Split::Validation), 200);
        assert_ne!(s, c.splits(200, 6), "another seed, another permutation");
    }

    #[test]
    fn draws_only_what_the_twins_can_see() {
        assert!(applies(FaultKind::DamperLeak, Role::OutdoorAirDamper));
        assert!(!applies(FaultKind::DamperLeak, Role::ZoneDamper));
        assert!(!applies(FaultKind::StuckAt, Role::ZoneDamper));
        // Never wider than what can be injected at all.
        for &k in FaultKind::ALL {
            for r in [Role::ZoneDamper, Role::OutdoorAirDamper, Role::CoolingValve, Role::HeatingValve] {
                assert!(!applies(k, r) || k.applies_to(r), "{k} on {r:?}");
            }
        }
    }

    #[test]
    fn a_bad_campaign_names_its_key() {
        let text = include_str!("../../../campaigns/actuator_faults.toml").replacen("runs = ", "runs = -", 1);
        let e = Campaign::parse(&text, "c.toml").unwrap_err().to_string();
        assert!(e.starts_with("c.toml:") && e.contains("runs"), "{e}");
    }
}
