//! The learned window classifier: a balanced random forest of smartcore decision trees.
//!
//! Each tree is grown by smartcore's CART (`DecisionTreeClassifier`) on a class-balanced bootstrap
//! of the training windows and a random subset of the features (bagging with random subspaces).
//! The bagging is ours rather than smartcore's `RandomForestClassifier` for two reasons: the
//! training windows are about 95 % normal, and a balanced bootstrap per tree is the standard
//! cure that smartcore's forest does not offer; and the vote share of the trees is the model's
//! confidence, which smartcore's forest does not expose. The file is versioned JSON with the
//! feature schema and classes it was trained on, checked when it is loaded.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{DecisionTreeClassifier, DecisionTreeClassifierParameters};
use std::path::Path;
use twinfault_core::features::{FEATURES, N_FEATURES};
use twinfault_core::rng::{node_rng, uniform};

pub const FORMAT: &str = "twinfault-window-classifier";
pub const VERSION: u32 = 1;

type Tree = DecisionTreeClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

#[derive(Serialize, Deserialize, Debug)]
pub struct Member {
    /// Feature indices this tree sees, in its column order.
    pub features: Vec<usize>,
    pub tree: Tree,
}

/// Training settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TrainParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Features each tree sees.
    pub features_per_tree: usize,
    /// Windows drawn per class for each tree's bootstrap (fewer when a class has fewer).
    pub per_class: usize,
    /// Normal windows drawn per tree, as a multiple of `per_class` (normal operation is the
    /// most varied class, and the cost of calling it a fault is a false alarm).
    pub normal_factor: usize,
    /// A fault class is predicted only with at least this share of the votes; else normal.
    pub min_votes: f32,
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            trees: 60,
            max_depth: 14,
            min_samples_leaf: 2,
            features_per_tree: 20,
            per_class: 1500,
            normal_factor: 8,
            min_votes: 0.6,
            seed: 1,
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Model {
    pub format: String,
    pub version: u32,
    pub engine_version: String,
    /// Feature names in the order the trees index them.
    pub features: Vec<String>,
    /// Class names; index 0 is `normal`.
    pub classes: Vec<String>,
    /// The window the features are computed over [s].
    pub window_s: f64,
    pub params: TrainParams,
    /// Where it was trained: dataset card hash, runs, counts.
    pub trained_on: serde_json::Value,
    pub members: Vec<Member>,
}

impl Model {
    /// Trains on `rows` with class indices `y` (into `classes`).
    pub fn train(
        rows: &[[f64; N_FEATURES]],
        y: &[usize],
        classes: Vec<String>,
        window_s: f64,
        params: TrainParams,
        trained_on: serde_json::Value,
    ) -> Result<Model> {
        if rows.len() != y.len() || rows.is_empty() {
            bail!("no training windows");
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
        for (i, c) in y.iter().enumerate() {
            by_class[*c].push(i);
        }
        if by_class.iter().filter(|v| !v.is_empty()).count() < 2 {
            bail!("training needs windows of at least two classes");
        }
        let k = params.features_per_tree.clamp(1, N_FEATURES);
        let mut members = Vec::with_capacity(params.trees);
        for t in 0..params.trees {
            let mut rng = node_rng(params.seed, &format!("tree-{t}"), "train");
            // A random feature subset (partial Fisher-Yates).
            let mut feats: Vec<usize> = (0..N_FEATURES).collect();
            for i in 0..k {
                let j = i + ((uniform(&mut rng) * (N_FEATURES - i) as f64) as usize).min(N_FEATURES - i - 1);
                feats.swap(i, j);
            }
            let mut feats = feats[..k].to_vec();
            feats.sort_unstable();
            // A class-balanced bootstrap.
            let mut x: Vec<Vec<f64>> = Vec::new();
            let mut ty: Vec<u32> = Vec::new();
            for (c, idx) in by_class.iter().enumerate() {
                if idx.is_empty() {
                    continue;
                }
                let want = if c == 0 { params.per_class * params.normal_factor.max(1) } else { params.per_class };
                let n = want.min(idx.len().max(want / 4));
                for _ in 0..n {
                    let i = idx[((uniform(&mut rng) * idx.len() as f64) as usize).min(idx.len() - 1)];
                    x.push(feats.iter().map(|f| rows[i][*f]).collect());
                    ty.push(c as u32);
                }
            }
            let xm = DenseMatrix::from_2d_vec(&x).map_err(|e| anyhow::anyhow!("training matrix: {e}"))?;
            let p = DecisionTreeClassifierParameters::default()
                .with_max_depth(params.max_depth)
                .with_min_samples_leaf(params.min_samples_leaf);
            let tree = Tree::fit(&xm, &ty, p).map_err(|e| anyhow::anyhow!("tree {t}: {e}"))?;
            members.push(Member { features: feats, tree });
        }
        Ok(Model {
            format: FORMAT.into(),
            version: VERSION,
            engine_version: env!("CARGO_PKG_VERSION").into(),
            features: FEATURES.iter().map(|f| f.0.to_string()).collect(),
            classes,
            window_s,
            params,
            trained_on,
            members,
        })
    }

    /// The class with most votes and its vote share.
    pub fn predict(&self, row: &[f64; N_FEATURES]) -> (usize, f32) {
        let mut votes = vec![0u32; self.classes.len()];
        for m in &self.members {
            let x: Vec<f64> = m.features.iter().map(|f| row[*f]).collect();
            let xm = DenseMatrix::new(1, x.len(), x, false).expect("one row");
            if let Ok(p) = m.tree.predict(&xm)
                && let Some(c) = p.first()
            {
                let last = votes.len() - 1;
                votes[(*c as usize).min(last)] += 1;
            }
        }
        let (best, n) = votes.iter().enumerate().max_by_key(|(i, v)| (**v, std::cmp::Reverse(*i))).expect("classes");
        let share = *n as f32 / self.members.len().max(1) as f32;
        if best != 0 && share < self.params.min_votes {
            return (0, votes[0] as f32 / self.members.len().max(1) as f32);
        }
        (best, share)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_vec(self)?).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Loads a model file, refusing one of another format, version or feature schema.
    pub fn load(path: &Path) -> Result<Model> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read model {label}"))?;
        let head: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("{label} is not JSON"))?;
        if head["format"] != FORMAT {
            bail!("{label}: not a twinfault window classifier (format {})", head["format"]);
        }
        if head["version"] != VERSION {
            bail!("{label}: model file version {} (this twinfault reads version {VERSION})", head["version"]);
        }
        let m: Model = serde_json::from_value(head).with_context(|| format!("{label}: malformed model"))?;
        let want: Vec<&str> = FEATURES.iter().map(|f| f.0).collect();
        if m.features != want {
            bail!(
                "{label}: trained on other features ({} of them) than this twinfault computes ({})",
                m.features.len(),
                want.len()
            );
        }
        if m.members.iter().any(|t| t.features.iter().any(|f| *f >= N_FEATURES)) || m.classes.len() < 2 {
            bail!("{label}: malformed model (feature index or classes)");
        }
        Ok(m)
    }
}

impl twinfault_core::classify::WindowClassifier for Model {
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn window_s(&self) -> f64 {
        self.window_s
    }
    fn predict(&self, features: &[f64; N_FEATURES]) -> (usize, f32) {
        Model::predict(self, features)
    }
}
