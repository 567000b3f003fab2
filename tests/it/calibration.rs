//! The simulated healthy damper actuator against the real rig's healthy recordings: travel speed,
//! torque (signed) while moving and at rest, power while moving and at rest, each within the
//! tolerance stated in `src/calibrate/mod.rs`; and `calibrate --fit`.

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
    let r =
        twinfault::telemetry::rig::read(&rig.join("flox/baseline_normal__normal__20260319_001356.csv"), true).unwrap();
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

/// `calibrate --faults`: the four hand-imposed kinds, simulated in a bench exercise on the
/// shipped damper template, reproduce the figures domain.md §1 documents for the rig's, all but
/// three that the model does not reproduce yet (named here and in the README): the jammed
/// device's power (the rig's drew nothing during the recording; the model's first blocked
/// attempt draws stall current until its protection trips), the blockage's upper edge (the model's
/// obstacle stops closing only) and the destabilised device's rotation-0 share (the model keeps
/// driving between pokes).
#[test]
fn simulated_faults_have_the_rigs_signatures() {
    let not_yet = [
        "power mean [W]/gear_jam",
        "feedback max [%]/closure_blockage",
        "rotation 0 share (about a third)/destabilization",
    ];
    let figures = twinfault::calibrate::fault_signatures(&damper(), 1);
    assert_eq!(figures.len(), 13);
    let held: Vec<_> =
        figures.iter().filter(|f| !not_yet.contains(&format!("{}/{}", f.name, f.kind).as_str())).collect();
    assert_eq!(held.len(), 10, "the figures not yet reproduced are named exactly");
    for f in held {
        assert!(f.ok(), "{} {}: real {:.3} model {:.3} (±{:.3})", f.kind, f.name, f.real, f.model, f.allowed);
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

/// A device with known parameters, simulated on bench programmes (sweeps and steps at 20 Hz, at
/// its own load and at 1.8 ×) and written as the rig logs them: `calibrate --fit`, started from
/// the shipped damper template, recovers what was changed, and its simulated drives look more
/// like the recordings than the unfitted template's.
#[test]
fn fit_recovers_a_known_device_from_its_recordings() {
    use twinfault_core::SimTime;
    use twinfault_core::actuator::Actuator;
    let shipped = damper();
    let mut truth = (*shipped).clone();
    let m = &mut truth.model;
    m.rated_speed_pct_s = 3.9;
    m.coulomb_torque_nm = 0.8;
    m.breakaway_torque_nm = 0.95;
    m.torque_noise_nm = 0.15;
    m.side_load_nm = 0.08;
    m.feedback_delay_s = 0.3;
    m.healthy_drop_share = 0.0;
    let dir = tempfile::tempdir().unwrap();
    let programmes: [(&str, f64, f64); 4] =
        [("sweep_a", 40.0, 1.0), ("steps_a", 0.0, 1.0), ("sweep_b", 55.0, 1.8), ("steps_b", 0.0, 1.8)];
    for (k, (name, period, load)) in programmes.iter().enumerate() {
        let mut t = truth.clone();
        t.model = truth.model.with_load(*load);
        let mut a = Actuator::new(Arc::new(t), 10 + k as u64, name, 20.0);
        let hz = 20.0;
        let mut rows = Vec::new();
        // Each row's setpoint is sent as the row is logged: the device follows it from then on.
        let mut command = 20.0;
        for i in 0..(90.0 * hz) as usize {
            let ts = i as f64 / hz;
            let sp = if *period > 0.0 {
                let x = (ts / period + 0.2).rem_euclid(1.0);
                100.0 * (1.0 - (2.0 * x - 1.0).abs())
            } else {
                [20.0, 45.0, 70.0, 95.0, 60.0, 25.0, 5.0, 40.0, 80.0][((ts / 10.0) as usize).min(8)]
            };
            let s = a.step(SimTime((ts * 1000.0).round() as u64), 1.0 / hz, command).unwrap();
            command = sp;
            rows.push((ts, sp, f64::from(s.position_pct), f64::from(s.torque_nm), f64::from(s.power_w), s.rotation));
        }
        std::fs::write(dir.path().join(format!("{name}.csv")), crate::replay::flox_csv(&rows)).unwrap();
    }
    let f = twinfault::calibrate::fit::fit(&root().join("twins/damper_actuator.toml"), dir.path(), true).unwrap();
    let got = |key: &str| f.params.iter().find(|p| p.key == key).unwrap_or_else(|| panic!("{key} not fitted")).after;
    let near = |key: &str, want: f64, tol: f64| {
        let v = got(key);
        assert!((v - want).abs() <= tol, "{key}: fitted {v}, truth {want} (±{tol})");
    };
    near("rated_speed_pct_s", 3.9, 0.2);
    near("coulomb_torque_nm", 0.8, 0.08);
    near("torque_noise_nm", 0.15, 0.04);
    near("side_load_nm", 0.08, 0.04);
    near("feedback_delay_s", 0.3, 0.08);
    assert_eq!(f.loads.len(), 4);
    for (name, _, want) in &programmes {
        let l = f.loads.iter().find(|l| l.0 == *name).unwrap().1;
        assert!((l - want).abs() <= 0.15, "{name}: load {l}, truth {want}");
    }
    assert!(f.after.knn_mixing > f.before.knn_mixing && f.after.mmd < f.before.mmd, "{:?} -> {:?}", f.before, f.after);
    // The written template validates, and its comments and other tables are kept.
    assert_eq!(f.template.model.feedback_delay_s, got("feedback_delay_s"));
    assert!(f.text.starts_with("# [model] fitted by `twinfault calibrate --fit` to 4 healthy recordings"));
    assert!(f.text.contains("[findings.gear_jam]") && f.text.contains("# Damper actuator template"));
}

/// The shipped damper template is the fit to the rig's healthy recordings: simulated along each
/// recording it meets the realism target (kNN mixing >= 0.40, MMD <= 0.10 on the windows of
/// `twinfault realism`), and a refit moves none of the main parameters by more than 5 %.
#[test]
fn shipped_damper_template_is_fitted_to_the_rig() {
    let Some(rig) = shared_data("belimo-rig") else { return };
    let f = twinfault::calibrate::fit::fit(&root().join("twins/damper_actuator.toml"), &rig, false).unwrap();
    assert!(f.before.knn_mixing >= 0.40 && f.before.mmd <= 0.10, "shipped template: {:?}", f.before);
    for key in ["rated_speed_pct_s", "coulomb_torque_nm", "torque_noise_nm", "copper_loss_w_per_nm2"] {
        let p = f.params.iter().find(|p| p.key == key).unwrap();
        assert!((p.after - p.before).abs() <= 0.05 * p.before.abs(), "{key}: shipped {} refit {}", p.before, p.after);
    }
    let p = f.params.iter().find(|p| p.key == "feedback_delay_s").unwrap();
    assert!((0.05..0.4).contains(&p.before) && (p.after - p.before).abs() <= 0.05, "{p:?}");
}

/// `calibrate --fit` on what is not a folder of recordings: one clear error naming it.
#[test]
fn fit_refuses_a_folder_without_recordings_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let template = root().join("twins/damper_actuator.toml");
    let err = twinfault::calibrate::fit::fit(&template, dir.path(), false).err().unwrap().to_string();
    assert!(err.contains("no CSV recordings") && err.contains(&dir.path().display().to_string()), "{err}");
    std::fs::write(dir.path().join("notes.csv"), "a,b\n1,2\n").unwrap();
    let err = twinfault::calibrate::fit::fit(&template, dir.path(), false).err().unwrap().to_string();
    assert!(err.contains("notes.csv") && err.contains("not a rig recording"), "{err}");
    let err = twinfault::calibrate::fit::fit(&template, &dir.path().join("missing"), false).err().unwrap().to_string();
    assert!(err.contains("missing"), "{err}");
}
