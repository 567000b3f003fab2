//! `twinfault train`: the window classifier trained on a dataset's train split, scored on its
//! held-out splits by the same evaluation as `evaluate`, saved as a versioned model file.

use super::evaluate::{Dataset, Detector, Evaluation, evaluate, feature_rows, labels};
use super::generate::classes;
use super::model::{Model, TrainParams};
use super::table::Col;
use anyhow::{Result, bail};
use std::path::Path;

/// Windows that only partly hold a fault (it covers less than half) are left out of training:
/// labelled normal, they hold the fault's signature.
const MIXED_SHARE: f32 = 0.0;

pub struct Trained {
    pub model_path: std::path::PathBuf,
    pub windows: usize,
    pub seconds: f64,
    pub held_out: Vec<Evaluation>,
}

pub fn train(data: &Path, out: &Path, params: TrainParams, facility: Option<&Path>) -> Result<Trained> {
    let started = std::time::Instant::now();
    let ds = Dataset::load(data, facility)?;
    let train_runs: std::collections::BTreeSet<i32> = ds.runs(Some("train")).into_iter().collect();
    if train_runs.is_empty() {
        bail!("{}: the dataset has no train runs", data.display());
    }
    let rows = feature_rows(&ds)?;
    let y = labels(&ds)?;
    let Col::I32(run) = ds.windows.col("run")? else { bail!("run column") };
    let Col::F32(share) = ds.windows.col("label_share")? else { bail!("label_share column") };
    let mut x = Vec::new();
    let mut ty = Vec::new();
    for j in 0..rows.len() {
        if train_runs.contains(&run[j]) && !(y[j] == 0 && share[j] > MIXED_SHARE) {
            x.push(rows[j]);
            ty.push(y[j]);
        }
    }
    let trained_on = serde_json::json!({
        "dataset": data.display().to_string(),
        "campaign_sha256": ds.card["campaign"]["sha256"],
        "seed": ds.card["seed"],
        "train_runs": train_runs,
        "windows": x.len(),
    });
    let window_s = ds.card["windows"]["length_s"].as_f64().unwrap_or(60.0);
    let model = Model::train(&x, &ty, classes().iter().map(|s| s.to_string()).collect(), window_s, params, trained_on)?;
    model.save(out)?;
    let mut held_out = Vec::new();
    for split in ["validation", "test"] {
        if !ds.runs(Some(split)).is_empty() {
            held_out.push(evaluate(&ds, &Detector::Model(out.to_path_buf()), Some(split))?);
        }
    }
    Ok(Trained { model_path: out.to_path_buf(), windows: x.len(), seconds: started.elapsed().as_secs_f64(), held_out })
}
