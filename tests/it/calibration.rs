//! The simulated healthy damper actuator against the real rig's healthy recordings: travel speed,
//! torque (signed) while moving and at rest, power while moving and at rest, each within the
//! tolerance stated in `src/calibrate.rs`.

use crate::{root, shared_data};
use std::sync::Arc;
use twinfault_core::config::ActuatorTemplate;

#[test]
fn damper_template_matches_the_real_rig() {
    let Some(rig) = shared_data("belimo-rig") else { return };
    let path = root().join("twins/damper_actuator.toml");
    let t =
        Arc::new(ActuatorTemplate::parse(&std::fs::read_to_string(&path).unwrap(), "damper_actuator.toml").unwrap());
    let results = twinfault::calibrate::check(&t, &rig, false).unwrap();
    assert!(results.len() >= 5, "too few rig recordings compared: {}", results.len());
    let mut out = Vec::new();
    for (name, figures) in &results {
        assert!(figures.iter().filter(|f| !f.skipped).count() >= 5);
        for f in figures.iter().filter(|f| !f.ok()) {
            out.push(format!("{name}: {} rig {:.3} model {:.3} (±{:.3})", f.name, f.rig, f.model, f.allowed));
        }
    }
    assert!(out.is_empty(), "outside tolerance:\n{}", out.join("\n"));
}

#[test]
fn rig_recordings_parse_with_their_sample_rates() {
    let Some(rig) = shared_data("belimo-rig") else { return };
    let r = twinfault::rig::read(&rig.join("flox/baseline_normal__normal__20260319_001356.csv"), true).unwrap();
    assert_eq!(r.samples.len(), 968);
    let span_s = r.samples.last().unwrap().t.as_secs_f64();
    let rate = r.samples.len() as f64 / span_s;
    assert!((19.0..23.0).contains(&rate), "about 20.8 Hz, got {rate}");
    assert!(r.rotation_reported);
}

fn damper() -> Arc<ActuatorTemplate> {
    let path = root().join("twins/damper_actuator.toml");
    Arc::new(ActuatorTemplate::parse(&std::fs::read_to_string(&path).unwrap(), "damper_actuator.toml").unwrap())
}

/// `calibrate --faults`: the simulated added resistance reproduces the figures domain.md §1
/// documents for the rig's (signed torque mean about -0.34 N·m, power about 0.22 W, speed
/// unchanged). The other three kinds' figures are printed by the command and are not all within
/// tolerance yet (see the README); this test holds the kind that is.
#[test]
fn simulated_added_resistance_has_the_rigs_signature() {
    let figures = twinfault::calibrate::fault_signatures(&damper(), 1);
    assert_eq!(figures.len(), 13);
    let ar: Vec<_> = figures.iter().filter(|f| f.kind == twinfault_core::types::FaultKind::AddedResistance).collect();
    assert_eq!(ar.len(), 3);
    for f in ar {
        assert!(f.ok(), "{}: real {:.3} model {:.3} (±{:.3})", f.name, f.real, f.model, f.allowed);
    }
}

/// The kinds whose simulated bench exercise a fresh twin (no history, the template's prior)
/// finds before 30 s, with nothing else; the healthy exercise raises nothing. The simulated
/// closure blockage is not among them yet: the model's obstacle blocks closing below 11 % only,
/// where the rig's confined the feedback to 11-40 % (`calibrate --faults` shows it OUT), and a
/// fresh twin does not confirm it within the 48 s exercise.
#[test]
fn a_fresh_twin_finds_simulated_bench_faults_before_30_s() {
    use twinfault_core::detect::Change;
    use twinfault_core::twin::{ActuatorTwin, Mode};
    use twinfault_core::types::FaultKind::{self, *};
    let t = damper();
    let found = |kind: Option<FaultKind>| {
        let mut twin = ActuatorTwin::new("bench", Arc::clone(&t), Mode::Ingest, 1, 0.0, false);
        let mut out = Vec::new();
        for s in twinfault::calibrate::bench_exercise(&t, kind, 3) {
            twin.ingest(&s, &mut out);
        }
        out.iter().filter(|f| f.change == Change::Opened).map(|f| (f.kind, f.t.as_secs_f64())).collect::<Vec<_>>()
    };
    assert_eq!(found(None), vec![], "the healthy exercise");
    for kind in [GearJam, Destabilization, AddedResistance] {
        let f = found(Some(kind));
        assert!(!f.is_empty() && f.iter().all(|(k, t)| *k == kind && *t < 30.0), "{kind}: {f:?}");
    }
}
