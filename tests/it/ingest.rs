//! The ingest side of a twin actor: samples pushed to it are evaluated like simulated ones, and
//! silence makes it offline.

use actix::prelude::*;
use twinfault::sim::engine::{ActuatorActor, Advance, IngestSample};
use twinfault_core::SimTime;
use twinfault_core::actuator::Sample;
use twinfault_core::twin::{ActuatorTwin, Grid, Mode};
use twinfault_core::types::{FaultKind, Phase, Status};

fn template() -> std::sync::Arc<twinfault_core::config::ActuatorTemplate> {
    let p = crate::root().join("twins/damper_actuator.toml");
    std::sync::Arc::new(
        twinfault_core::config::ActuatorTemplate::parse(&std::fs::read_to_string(p).unwrap(), "damper").unwrap(),
    )
}

/// A jammed device at 10 Hz for 60 s: the setpoint sweeps, the feedback stays at 1.5 %, the motor
/// tries (rotation 1) then stops (overload protection).
fn jammed_samples() -> Vec<Sample> {
    (0..600)
        .map(|k| Sample {
            t: SimTime(k * 100),
            setpoint_pct: (k as f32 * 0.15).min(90.0),
            position_pct: 1.5,
            torque_nm: if k % 200 < 130 { -4.5 } else { 0.0 },
            power_w: 0.004,
            temperature_c: 27.5,
            rotation: if k % 200 < 130 { 1 } else { 0 },
            signal_quality: None,
        })
        .collect()
}

#[test]
fn an_ingesting_twin_detects_a_gear_jam_and_then_goes_offline() {
    actix::System::new().block_on(async {
        let twin = ActuatorTwin::new("BEL-VNT-REAL", template(), Mode::Ingest, 1, 0.0, false);
        let addr = ActuatorActor::new(twin).start();
        for s in jammed_samples() {
            addr.send(IngestSample(s)).await.unwrap();
        }
        let grid = Grid::new(1.0, 1.0);
        // Epoch at t = 60 s: the findings of the pushed samples come back with the report.
        let r = addr.send(Advance { grid, first_sample: 59, command_pct: 0.0, phase: Phase::Occupied }).await.unwrap();
        assert!(r.findings.iter().any(|f| f.kind == FaultKind::GearJam), "{:?}", r.findings);
        assert_eq!(r.report.status, Status::Critical);
        assert_eq!(r.report.feedback_pct, 1.5);
        // 20 s later with no samples: offline (a gateway drops a device after 10 s).
        let r = addr.send(Advance { grid, first_sample: 80, command_pct: 0.0, phase: Phase::Occupied }).await.unwrap();
        assert_eq!(r.report.status, Status::Offline);
    });
}

/// Every healthy recording of the real rig (baselines, sweeps, steps, hunting, thermal and
/// electronics tests, at both of the rig's load settings) replayed into an ingesting twin: no
/// finding may open. (The bench tests are minutes long: too short for the hunting rule's
/// 10-minute window of operating time, which it needs before it judges.)
#[test]
fn real_healthy_recordings_raise_no_device_faults() {
    let Some(rig) = crate::shared_data("belimo-rig") else { return };
    let mut checked = 0;
    for sub in ["flox", "pulse"] {
        for e in std::fs::read_dir(rig.join(sub)).unwrap() {
            let f = e.unwrap().path();
            if f.extension().is_none_or(|x| x != "csv") {
                continue;
            }
            let rec = twinfault::telemetry::rig::read(&f, false).unwrap();
            let findings = replay(&rec.samples);
            let faults: Vec<_> = findings.iter().map(|f| f.kind).collect();
            assert!(faults.is_empty(), "{}: {faults:?}", rec.name);
            checked += 1;
        }
    }
    assert!(checked >= 13, "only {checked} recordings");
}

fn replay(samples: &[Sample]) -> Vec<twinfault_core::detect::FindingEvent> {
    let mut twin = ActuatorTwin::new("BEL-RIG", template(), Mode::Ingest, 1, 0.0, false);
    let mut findings = Vec::new();
    for s in samples {
        twin.ingest(s, &mut findings);
    }
    findings
}

/// A 20 Hz stream shaped like the fault recordings described in the domain notes.
fn stream(seconds: u64, f: impl Fn(f64, u64) -> (f32, f32, f32, f32, u8)) -> Vec<Sample> {
    (0..seconds * 20)
        .map(|k| {
            let t = k as f64 / 20.0;
            let (setpoint_pct, position_pct, torque_nm, power_w, rotation) = f(t, k);
            Sample {
                t: SimTime(k * 50),
                setpoint_pct,
                position_pct,
                torque_nm,
                power_w,
                temperature_c: 27.5,
                rotation,
                signal_quality: None,
            }
        })
        .collect()
}

fn triangle(t: f64, period: f64, lo: f64, hi: f64) -> f64 {
    let x = (t / period).rem_euclid(1.0);
    lo + (hi - lo) * (1.0 - (2.0 * x - 1.0).abs())
}

fn opened(findings: &[twinfault_core::detect::FindingEvent]) -> Vec<FaultKind> {
    findings.iter().filter(|f| f.change == twinfault_core::detect::Change::Opened).map(|f| f.kind).collect()
}

/// Rig gear jam: feedback pinned near 1 % while the setpoint sweeps 0-99 %, power about 0.004 W,
/// rotation 0 on about 90 % of samples (never a long stall report).
#[test]
fn rig_like_gear_jam_is_found_without_stall_reports() {
    let s = stream(240, |t, k| {
        let sp = triangle(t, 120.0, 0.0, 99.0) as f32;
        let rot = if k % 10 == 0 { if sp > 1.2 { 1 } else { 2 } } else { 0 };
        (sp, 1.2 + if k % 7 == 0 { 0.01 } else { 0.0 }, 0.0, 0.004, rot)
    });
    let kinds = opened(&replay(&s));
    assert_eq!(kinds, vec![FaultKind::GearJam], "{kinds:?}");
}

/// Rig closure blockage: the feedback follows the setpoint only inside a band (11-40 %) while the
/// setpoint spans 0-100 %.
#[test]
fn rig_like_closure_blockage_is_told_apart_from_a_jam() {
    let s = stream(360, |t, _| {
        let sp = triangle(t, 90.0, 0.0, 100.0);
        // The drive follows at about 4.8 %/s; the band is 11-40 %.
        let pos = sp.clamp(11.0, 40.0);
        let moving = (11.0..40.0).contains(&sp);
        let rising = (t / 90.0).rem_euclid(1.0) < 0.5;
        let rot = if moving { if rising { 1 } else { 2 } } else { 0 };
        let torque = if moving { if rising { -0.6 } else { 0.6 } } else { 0.0 };
        (sp as f32, pos as f32, torque, if moving { 0.17 } else { 0.0 }, rot)
    });
    let kinds = opened(&replay(&s));
    assert!(kinds.contains(&FaultKind::ClosureBlockage), "{kinds:?}");
    assert!(!kinds.contains(&FaultKind::GearJam), "{kinds:?}");
}

/// Rig added resistance: torque biased one way (about -1.0 N·m opening, +0.3 closing: a mean
/// near -0.34 N·m), power up to about 0.22 W, travel speed unchanged. Present from the start, so
/// the twin never saw the device healthy.
#[test]
fn rig_like_one_sided_added_resistance_is_found() {
    let s = stream(600, |t, k| {
        let sp = triangle(t, 42.0, 0.0, 100.0);
        let rising = (t / 42.0).rem_euclid(1.0) < 0.5;
        let noise = ((k * 7919) % 100) as f32 / 100.0 * 0.3 - 0.15;
        let torque = if rising { -1.0 + noise } else { 0.3 + noise };
        (sp as f32, sp as f32, torque, 0.22, if rising { 1 } else { 2 })
    });
    let kinds = opened(&replay(&s));
    assert!(kinds.contains(&FaultKind::AddedResistance), "{kinds:?}");
    assert!(!kinds.contains(&FaultKind::GearJam) && !kinds.contains(&FaultKind::ClosureBlockage), "{kinds:?}");
}

/// A facility may mix simulated and ingesting twins: an ingesting node that receives nothing in a
/// simulated run raises nothing and does not disturb its AHU.
#[test]
fn a_mixed_facility_runs_with_an_idle_ingesting_node() {
    let dir = tempfile::tempdir().unwrap();
    let twins = crate::copy_twins(dir.path());
    let facility = std::fs::read_to_string(twins.join("datacenter.toml")).unwrap();
    std::fs::write(
        twins.join("datacenter.toml"),
        facility.replacen("id = \"BEL-VNT-001\"", "id = \"BEL-VNT-001\"\nmode = \"ingest\"", 1),
    )
    .unwrap();
    let sdir = dir.path().join("scenarios");
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::copy(crate::root().join("scenarios/datacenter_gear_jam.toml"), sdir.join("jam.toml")).unwrap();
    let l = twinfault::load::scenario(&sdir.join("jam.toml"), None).unwrap();
    assert_eq!(l.facility.actuators[0].mode, Mode::Ingest);
    let r = crate::run(&l, 2, None);
    assert!(r.report.passed, "{:?}", r.report.expectations);
    assert!(r.report.detections.iter().all(|d| d.node != "BEL-VNT-001"));
}
