//! Reading twin and scenario files from disk into the core's validated types.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use twinfault_core::config::{ConfigError, Facility, FacilityFile, Templates, template_kind};
use twinfault_core::scenario::{CampusSize, Scenario};

/// A problem with an input file, already phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] ConfigError),
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })
}

/// Loads a facility (or campus) file and the templates it names, relative to it.
pub fn facility(path: &Path, campus: Option<CampusSize>) -> Result<Facility, LoadError> {
    let label = path.display().to_string();
    let text = read(path)?;
    let mut file = FacilityFile::parse(&text, &label)?;
    if let Some(c) = campus {
        file.set_campus_size(Some(c.ahus), Some(c.actuators_per_ahu));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut templates = Templates::default();
    for (name, rel) in &file.templates {
        let tpath = dir.join(rel);
        let ttext = read(&tpath).map_err(|e| match e {
            LoadError::Read { source, .. } => LoadError::Config(ConfigError::new(
                &label,
                format!("templates.{name}"),
                format!("cannot read \"{}\": {source}", tpath.display()),
            )),
            other => other,
        })?;
        templates.add(name, &ttext, &tpath.display().to_string())?;
    }
    let classifier = file.classifier.clone();
    let mut f = file.build(&templates, &label).map_err(|e| e.locate(&text))?;
    if let Some(rel) = classifier {
        let mpath = dir.join(&rel);
        let model = crate::dataset::model::Model::load(&mpath).map_err(|e| {
            ConfigError::new(&label, "classifier", format!("{e:#} (train one with `twinfault train`)")).locate(&text)
        })?;
        f.classifier = Some(std::sync::Arc::new(model));
    }
    Ok(f)
}

/// A scenario with its facility, both validated.
pub struct Loaded {
    pub scenario: Scenario,
    pub facility: Facility,
    pub scenario_path: PathBuf,
    pub facility_path: PathBuf,
    /// The scenario file's bytes, for its hash.
    pub scenario_text: String,
}

/// Loads a scenario and its facility; `campus` overrides a generated campus's size.
pub fn scenario(path: &Path, campus: Option<CampusSize>) -> Result<Loaded, LoadError> {
    let label = path.display().to_string();
    let text = read(path)?;
    let scenario = Scenario::parse(&text, &label)?;
    let facility_path = path.parent().unwrap_or(Path::new(".")).join(&scenario.facility);
    if !facility_path.is_file() {
        return Err(ConfigError::new(
            &label,
            "facility",
            format!("no facility file at \"{}\"", facility_path.display()),
        )
        .into());
    }
    let facility = facility(&facility_path, campus.or(scenario.campus))?;
    scenario.check_against(&facility, &label, &text)?;
    Ok(Loaded { scenario, facility, scenario_path: path.to_path_buf(), facility_path, scenario_text: text })
}

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
            let m = crate::replay::Mapping::load(path)?;
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
            let f = crate::cmapss::load_fleet(path)?;
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
            let t = crate::cmapss::load_template(path)?;
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
