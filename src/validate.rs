//! Validating a file of any kind the user names (`twinfault validate`).

use anyhow::{Context, Result};
use std::path::Path;
use twinfault_core::config::{ConfigError, Templates, template_kind};
use twinfault_load::{facility, read, scenario};

/// What a TOML file holds, to validate any file the user names.
pub enum FileKind {
    Scenario,
    /// A `replay` column mapping.
    Mapping,
    Facility,
    Template,
    /// A fleet of assets (`kind = "fleet"`).
    Fleet,
    /// An asset template (`kind = "asset"`).
    Asset,
}

pub fn file_kind(path: &Path) -> Result<FileKind> {
    let text = read(path)?;
    let label = path.display().to_string();
    let value: toml::Table = toml::from_str(&text).map_err(|e| {
        let c: ConfigError = twinfault_core::config::parse_toml::<toml::Table>(&text, &label)
            .err()
            .unwrap_or_else(|| ConfigError::new(&label, "", e.message()));
        anyhow::anyhow!("{c}")
    })?;
    Ok(match value.get("kind").and_then(|v| v.as_str()) {
        Some("facility" | "campus") => FileKind::Facility,
        Some("fleet") => FileKind::Fleet,
        Some("asset") => FileKind::Asset,
        Some(_) => {
            template_kind(&text, &label)?;
            FileKind::Template
        }
        None if value.contains_key("facility") => FileKind::Scenario,
        None if value.contains_key("format") && value.contains_key("fields") => FileKind::Mapping,
        None => anyhow::bail!("{label}: neither a scenario (no `facility` key) nor a twin file (no `kind` key)"),
    })
}

/// Validates one file of any kind; returns a one-line description on success.
pub fn validate(path: &Path) -> Result<String> {
    let r: Result<String> = match file_kind(path)? {
        FileKind::Scenario => {
            let l = scenario(path, None)?;
            Ok(format!(
                "scenario \"{}\": {} nodes, {} injections, {} expectations, {} s",
                l.scenario.name,
                l.facility.node_ids().len(),
                l.scenario.injections.len(),
                l.scenario.expectations.len(),
                l.scenario.duration.as_secs_f64()
            ))
        }
        FileKind::Mapping => {
            let m = crate::telemetry::replay::Mapping::load(path)?;
            Ok(format!("{} mapping for {} logs, {} fields", m.format, m.target, m.fields.len()))
        }
        FileKind::Facility => {
            let f = facility(path, None)?;
            Ok(format!(
                "facility \"{}\": {} AHUs, {} actuators, {} zones",
                f.name,
                f.ahus.len(),
                f.actuators.len(),
                f.zones.len()
            ))
        }
        FileKind::Template => {
            let text = read(path)?;
            let label = path.display().to_string();
            let mut t = Templates::default();
            t.add("t", &text, &label)?;
            Ok(format!("{} template", template_kind(&text, &label)?))
        }
        FileKind::Fleet => {
            let f = crate::fleet::cmapss::load_fleet(path)?;
            Ok(format!(
                "fleet \"{}\": {} {} members ({} … {}), model trained on {} ({} regime(s), {} detector)",
                f.file.id,
                f.file.members,
                f.template.asset,
                f.file.member(1).unwrap_or_default(),
                f.file.member(f.file.members).unwrap_or_default(),
                f.model.trained_on,
                f.model.regimes.len(),
                if f.model.detector == twinfault_core::asset::DetectorChoice::HealthIndex {
                    "health-index"
                } else {
                    "remaining-life"
                }
            ))
        }
        FileKind::Asset => {
            let t = crate::fleet::cmapss::load_template(path)?;
            Ok(format!(
                "asset template \"{}\": {} settings, {} sensors, health from {} sensors",
                t.asset,
                t.settings().count(),
                t.sensors().count(),
                t.health.sensors.len()
            ))
        }
    };
    r.with_context(|| format!("validating {}", path.display()))
}
