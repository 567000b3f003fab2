//! # twinfault-load
//!
//! Reading twin and scenario files from disk into the core's validated types, with the learned
//! classifier a facility names ([`model`]), and fleets of other assets with the C-MAPSS files
//! they replay ([`cmapss`]). The small loader the product and the visualizer share: no server,
//! store or dataset stack.

use std::path::{Path, PathBuf};
use twinfault_core::config::{ConfigError, Facility, FacilityFile, Templates};
use twinfault_core::scenario::{CampusSize, Scenario};

pub mod cmapss;
pub mod model;

/// A problem with an input file, already phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] ConfigError),
}

pub fn read(path: &Path) -> Result<String, LoadError> {
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
        let model = model::Model::load(&mpath).map_err(|e| {
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
