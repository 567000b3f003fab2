//! NASA C-MAPSS files and fleet files: a fleet file with its asset template and health model,
//! and the whitespace-separated cycle files its members are replayed from (shared by the
//! product's `replay`, `train` and benchmark and by the visualizer's fleet view).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use twinfault_core::asset::{AssetTemplate, Fleet, FleetFile, HealthModel};
use twinfault_core::config::ConfigError;

/// One engine's cycles as read.
#[derive(Debug, Clone)]
pub struct Unit {
    pub unit: usize,
    pub cycles: Vec<u32>,
    pub settings: Vec<Vec<f64>>,
    pub sensors: Vec<Vec<f64>>,
}

/// Reads a C-MAPSS text file: whitespace-separated rows of unit, cycle, the template's settings
/// and sensors in channel order. Errors name the file, line and column.
pub fn read_units(path: &Path, template: &AssetTemplate) -> Result<Vec<Unit>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let (ns, nx) = (template.settings().count(), template.sensors().count());
    let want = 2 + ns + nx;
    let mut units: Vec<Unit> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let at = |c: usize| format!("{}:{}: column {} ({})", path.display(), i + 1, c + 1, column_name(template, c));
        if fields.len() != want {
            bail!(
                "{}:{}: {} columns, expected {want} (unit, cycle, {ns} settings, {nx} sensors)",
                path.display(),
                i + 1,
                fields.len()
            );
        }
        let mut v = Vec::with_capacity(want);
        for (c, f) in fields.iter().enumerate() {
            match f.parse::<f64>() {
                Ok(x) if x.is_finite() => v.push(x),
                _ => bail!("{}: \"{f}\" is not a number", at(c)),
            }
        }
        if v[0] < 1.0 || v[0].fract() != 0.0 || v[1] < 1.0 || v[1].fract() != 0.0 {
            bail!(
                "{}: unit and cycle must be positive whole numbers",
                at(if v[0] < 1.0 || v[0].fract() != 0.0 { 0 } else { 1 })
            );
        }
        let (unit, cycle) = (v[0] as usize, v[1] as u32);
        if units.last().is_none_or(|u| u.unit != unit) {
            if units.iter().any(|u| u.unit == unit) {
                bail!("{}: unit {unit} appears again after other units", at(0));
            }
            units.push(Unit { unit, cycles: Vec::new(), settings: Vec::new(), sensors: Vec::new() });
        }
        let u = units.last_mut().expect("pushed above");
        if u.cycles.last().is_some_and(|&c| cycle <= c) {
            bail!("{}: cycle {cycle} does not follow cycle {}", at(1), u.cycles.last().copied().unwrap_or(0));
        }
        u.cycles.push(cycle);
        u.settings.push(v[2..2 + ns].to_vec());
        u.sensors.push(v[2 + ns..].to_vec());
    }
    if units.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(units)
}

fn column_name(t: &AssetTemplate, c: usize) -> String {
    match c {
        0 => "unit".into(),
        1 => "cycle".into(),
        _ => t.channels.get(c - 2).map_or("?".into(), |ch| ch.name.clone()),
    }
}

/// Reads `RUL_FDxxx.txt`: one true remaining life per test unit, in unit order.
pub fn read_rul(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .with_context(|| format!("{}:{}: \"{}\" is not a remaining life", path.display(), i + 1, l.trim()))
        })
        .collect()
}

/// Loads an asset template file.
pub fn load_template(path: &Path) -> Result<AssetTemplate> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(AssetTemplate::parse(&text, &path.display().to_string())?)
}

/// Loads a fleet file with its template and model (paths relative to it).
pub fn load_fleet(path: &Path) -> Result<Fleet> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("{label}: cannot read"))?;
    let file = FleetFile::parse(&text, &label)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tpath = dir.join(&file.template);
    let template =
        load_template(&tpath).map_err(|e| ConfigError::new(&label, "template", format!("{e:#}")).locate(&text))?;
    let mpath = dir.join(&file.model);
    let mtext = std::fs::read_to_string(&mpath).map_err(|e| {
        ConfigError::new(
            &label,
            "model",
            format!(
                "cannot read \"{}\": {e} (train one with `twinfault train --cmapss DIR --out {}`)",
                mpath.display(),
                mpath.display()
            ),
        )
        .locate(&text)
    })?;
    let model = HealthModel::from_json(&mtext, &mpath.display().to_string(), &template)?;
    Ok(Fleet { file, template: Arc::new(template), model: Arc::new(model) })
}
