//! Classification metrics: confusion matrix, per-class precision, recall and F1, macro-F1, and
//! percentiles for latencies.

use serde::Serialize;

/// Rows are true classes, columns predicted ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

/// One class's scores; `None` where the denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: String,
    /// Windows truly of this class.
    pub support: u64,
    pub predicted: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

impl Confusion {
    pub fn new(classes: Vec<String>) -> Confusion {
        let n = classes.len();
        Confusion { classes, counts: vec![vec![0; n]; n] }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn scores(&self) -> Vec<ClassScore> {
        let n = self.classes.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = (0..n).map(|r| self.counts[r][c]).sum();
                let precision = (predicted > 0).then(|| tp / predicted as f64);
                let recall = (support > 0).then(|| tp / support as f64);
                let f1 = match (precision, recall) {
                    (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                    (Some(_), Some(_)) => Some(0.0),
                    // A class never present but predicted: its F1 is 0; never present nor
                    // predicted: it has no score.
                    (Some(_), None) => Some(0.0),
                    (None, Some(_)) => Some(0.0),
                    (None, None) => None,
                };
                ClassScore { class: self.classes[c].clone(), support, predicted, precision, recall, f1 }
            })
            .collect()
    }

    /// Mean F1 over the classes that occur in the truth or the predictions.
    pub fn macro_f1(&self) -> f64 {
        let f: Vec<f64> = self.scores().iter().filter_map(|s| s.f1).collect();
        if f.is_empty() { 0.0 } else { f.iter().sum::<f64>() / f.len() as f64 }
    }

    pub fn accuracy(&self) -> f64 {
        let t = self.total();
        if t == 0 { 0.0 } else { (0..self.classes.len()).map(|c| self.counts[c][c]).sum::<u64>() as f64 / t as f64 }
    }
}

/// The `p`-quantile (0..=1) by the nearest-rank method; `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_a_hand_made_confusion_matrix() {
        // 3 classes. Truth normal: 8 right, 2 called jam. Truth jam: 3 right, 1 called normal.
        // Truth leak: 0 right, 2 called jam. Nothing predicted leak.
        let mut c = Confusion::new(vec!["normal".into(), "gear_jam".into(), "valve_leak".into()]);
        for (t, p, n) in [(0, 0, 8), (0, 1, 2), (1, 1, 3), (1, 0, 1), (2, 1, 2)] {
            for _ in 0..n {
                c.add(t, p);
            }
        }
        let s = c.scores();
        // normal: precision 8/9, recall 8/10.
        assert!((s[0].precision.unwrap() - 8.0 / 9.0).abs() < 1e-12);
        assert!((s[0].recall.unwrap() - 0.8).abs() < 1e-12);
        let f_normal = 2.0 * (8.0 / 9.0) * 0.8 / (8.0 / 9.0 + 0.8);
        assert!((s[0].f1.unwrap() - f_normal).abs() < 1e-12);
        // jam: 3 of 7 predictions right, 3 of 4 found.
        assert!((s[1].precision.unwrap() - 3.0 / 7.0).abs() < 1e-12);
        assert!((s[1].recall.unwrap() - 0.75).abs() < 1e-12);
        let f_jam = 2.0 * (3.0 / 7.0) * 0.75 / (3.0 / 7.0 + 0.75);
        // leak: never predicted: no precision, recall 0, F1 0.
        assert_eq!((s[2].precision, s[2].recall, s[2].f1), (None, Some(0.0), Some(0.0)));
        assert_eq!((s[2].support, s[1].predicted), (2, 7));
        assert!((c.macro_f1() - (f_normal + f_jam) / 3.0).abs() < 1e-12);
        assert!((c.accuracy() - 11.0 / 16.0).abs() < 1e-12);
        // A class absent from truth and predictions has no score and does not count.
        let mut d = Confusion::new(vec!["a".into(), "b".into()]);
        d.add(0, 0);
        assert_eq!(d.scores()[1].f1, None);
        assert_eq!(d.macro_f1(), 1.0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.95), Some(5.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
