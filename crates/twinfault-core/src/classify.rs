//! A learned window classifier running inside a twin, alongside its rules.
//!
//! The twin keeps its last window of samples and asks the classifier every half window. A fault
//! class in two evaluations in a row opens a model verdict; normal twice closes it. Verdicts are
//! [`FindingEvent`]s with [`Source::Model`]: they go to the event log, the store and the API like
//! findings, say in their summary whether the rules agree, and never change a status. The rules
//! stay the twin's judgement; the model is a second opinion that is always visible.

use crate::actuator::Sample;
use crate::detect::{Change, FindingEvent, Source};
use crate::features::{N_FEATURES, window_features};
use crate::types::{FaultKind, Phase, Role, Severity, SimTime};
use std::collections::VecDeque;
use std::sync::Arc;

/// What a trained model offers the twins (the `twinfault` crate loads one from a model file).
pub trait WindowClassifier: Send + Sync + std::fmt::Debug {
    /// Class names; index 0 is `normal`, the others fault kinds.
    fn classes(&self) -> &[String];
    /// The window the features are computed over [s].
    fn window_s(&self) -> f64;
    /// The class of a window and the model's confidence in it.
    fn predict(&self, features: &[f64; N_FEATURES]) -> (usize, f32);
}

/// Evaluations in a row needed to open or close a verdict.
const CONFIRM: u32 = 2;

/// One twin's live classification.
#[derive(Debug, Clone)]
pub struct LiveClassifier {
    model: Arc<dyn WindowClassifier>,
    role: Role,
    window_ms: u64,
    buf: VecDeque<Sample>,
    next_ms: u64,
    /// The class seen in the last evaluations and how many times in a row.
    streak: (usize, u32),
    open: Option<(FaultKind, SimTime)>,
}

impl LiveClassifier {
    pub fn new(model: Arc<dyn WindowClassifier>, role: Role) -> LiveClassifier {
        let window_ms = (model.window_s() * 1000.0).round().max(1000.0) as u64;
        LiveClassifier { model, role, window_ms, buf: VecDeque::new(), next_ms: window_ms, streak: (0, 0), open: None }
    }

    /// Takes a sample; at each half-window boundary classifies the last window.
    pub fn observe(
        &mut self,
        s: &Sample,
        phase: Phase,
        rules_open: &dyn Fn() -> Vec<FaultKind>,
        node: &str,
        out: &mut Vec<FindingEvent>,
    ) {
        if self.buf.back().is_some_and(|b| b.t >= s.t) {
            return;
        }
        if self.buf.is_empty() && self.next_ms == self.window_ms {
            // The grid of half windows starts at the first sample's (a run's first is at 0; a
            // replayed log's is at its own UTC time), not at the epoch.
            let half = self.window_ms / 2;
            self.next_ms += s.t.0 / half * half;
        }
        while s.t.0 >= self.next_ms {
            let end = self.next_ms;
            let start = end - self.window_ms;
            while self.buf.front().is_some_and(|b| b.t.0 < start) {
                self.buf.pop_front();
            }
            let window: Vec<Sample> = self.buf.iter().filter(|b| b.t.0 < end).copied().collect();
            let f = window_features(&window, self.window_ms as f64 / 1000.0, self.role, phase);
            let (class, confidence) = self.model.predict(&f);
            self.judge(SimTime(end), class, confidence, &rules_open(), node, out);
            self.next_ms += self.window_ms / 2;
        }
        self.buf.push_back(*s);
    }

    fn judge(
        &mut self,
        t: SimTime,
        class: usize,
        confidence: f32,
        rules_open: &[FaultKind],
        node: &str,
        out: &mut Vec<FindingEvent>,
    ) {
        self.streak = if self.streak.0 == class { (class, self.streak.1 + 1) } else { (class, 1) };
        if self.streak.1 < CONFIRM {
            return;
        }
        let kind = (class != 0).then(|| self.model.classes().get(class).and_then(|c| FaultKind::parse(c))).flatten();
        if self.open.map(|o| o.0) == kind {
            return;
        }
        let rules = if rules_open.is_empty() {
            "no rule finding".to_string()
        } else {
            format!("rules: {}", rules_open.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))
        };
        if let Some((was, since)) = self.open.take() {
            out.push(verdict(
                t,
                was,
                Change::Resolved,
                since,
                confidence,
                format!("model: {was} no longer seen ({rules})"),
                node,
            ));
        }
        if let Some(k) = kind {
            let agree = if rules_open.contains(&k) { "agrees with the rules" } else { "the rules disagree" };
            let summary = format!("model: {k} ({:.0} % of votes; {agree}; {rules})", confidence * 100.0);
            out.push(verdict(t, k, Change::Opened, t, confidence, summary, node));
            self.open = Some((k, t));
        }
    }
}

fn verdict(
    t: SimTime,
    kind: FaultKind,
    change: Change,
    opened_at: SimTime,
    confidence: f32,
    summary: String,
    node: &str,
) -> FindingEvent {
    FindingEvent {
        t,
        kind,
        change,
        severity: Severity::Warning,
        confidence,
        value: confidence,
        threshold: None,
        opened_at,
        summary: format!("{node}: {summary}"),
        action: "A learned model's opinion, not a rule: compare with the rules' evidence before acting".into(),
        device: None,
        source: Source::Model,
        likely: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Says `normal` and counts how often it was asked.
    #[derive(Debug, Default)]
    struct Counting {
        classes: Vec<String>,
        asked: AtomicUsize,
    }

    impl WindowClassifier for Counting {
        fn classes(&self) -> &[String] {
            &self.classes
        }
        fn window_s(&self) -> f64 {
            60.0
        }
        fn predict(&self, _: &[f64; N_FEATURES]) -> (usize, f32) {
            self.asked.fetch_add(1, Ordering::Relaxed);
            (0, 1.0)
        }
    }

    fn feed(model: &Arc<Counting>, t0_ms: u64, seconds: u64) -> usize {
        let mut c = LiveClassifier::new(Arc::clone(model) as Arc<dyn WindowClassifier>, Role::ZoneDamper);
        let mut out = Vec::new();
        let before = model.asked.load(Ordering::Relaxed);
        for k in 0..seconds * 10 {
            let s = Sample {
                t: SimTime(t0_ms + k * 100),
                setpoint_pct: 50.0,
                position_pct: 50.0,
                torque_nm: 0.0,
                power_w: 0.0,
                temperature_c: 27.0,
                rotation: 0,
                signal_quality: None,
            };
            c.observe(&s, Phase::Occupied, &Vec::new, "n", &mut out);
        }
        model.asked.load(Ordering::Relaxed) - before
    }

    /// Half-window evaluations counted from the first sample, whether the clock starts at 0 (a
    /// run) or at a UTC time (a replayed log): 120 s of samples are judged at 60 and 90 s, not
    /// once per half window since 1970.
    #[test]
    fn evaluations_start_at_the_first_sample() {
        let model = Arc::new(Counting { classes: vec!["normal".into()], ..Counting::default() });
        assert_eq!(feed(&model, 0, 120), 2);
        assert_eq!(feed(&model, 1_773_673_200_000, 120), 2);
    }
}
