//! The ingest side of a twin actor: samples pushed to it are evaluated like simulated ones, and
//! silence makes it offline.

use actix::prelude::*;
use twinfault::engine::{ActuatorActor, Advance, IngestSample};
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

/// The rig's bench tests drive healthy devices with exercise and sine setpoints; a hunting
/// finding there describes the command (it is active over 20 % of the time), not the device, and
/// is allowed. No device fault may open.
#[test]
fn real_healthy_recordings_raise_no_device_faults() {
    let Some(rig) = crate::shared_data("belimo-rig") else { return };
    let mut checked = 0;
    for f in twinfault::calibrate::calibration_files(&rig) {
        let rec = twinfault::rig::read(&f).unwrap();
        let mut twin = ActuatorTwin::new(&rec.name, template(), Mode::Ingest, 1, 0.0, false);
        let mut findings = Vec::new();
        for s in &rec.samples {
            twin.ingest(s, &mut findings);
        }
        let faults: Vec<_> = findings.iter().map(|f| f.kind).filter(|k| *k != FaultKind::Hunting).collect();
        assert!(faults.is_empty(), "{}: {faults:?}", rec.name);
        checked += 1;
    }
    assert!(checked >= 5);
}

/// A facility may mix simulated and ingesting twins: an ingesting node that receives nothing in a
/// simulated run raises nothing and does not disturb its AHU.
#[test]
fn a_mixed_facility_runs_with_an_idle_ingesting_node() {
    let dir = tempfile::tempdir().unwrap();
    let twins = dir.path().join("twins");
    std::fs::create_dir_all(&twins).unwrap();
    for e in std::fs::read_dir(crate::root().join("twins")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), twins.join(e.file_name())).unwrap();
    }
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
