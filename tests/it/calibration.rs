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
