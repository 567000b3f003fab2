//! `twinfault replay`: trend logs into the twins through the ingest validation.

use crate::{root, shared_data};
use std::process::Command;

fn replay(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_twinfault")).arg("replay").args(args).current_dir(root()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn replaying_the_rigs_normal_recordings_raises_no_fault() {
    let Some(rig) = shared_data("belimo-rig") else { return };
    let mut n = 0;
    for sub in ["flox", "pulse"] {
        for e in std::fs::read_dir(rig.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let (code, out, err) = replay(&[
                p.to_str().unwrap(),
                "--facility",
                "twins/datacenter.toml",
                "--node",
                "BEL-VNT-001",
                "--json",
            ]);
            assert_eq!(code, 0, "{err}");
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert!(r["samples"].as_u64().unwrap() > 200, "{}", p.display());
            assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{}: {}", p.display(), r["findings"]);
            assert_eq!(r["statuses"]["BEL-VNT-001"], "healthy");
            n += 1;
        }
    }
    assert!(n >= 13);
    // The shipped mapping reads the 20 Hz export the same way.
    let f = rig.join("flox/baseline_normal__normal__20260319_001356.csv");
    let (code, out, err) = replay(&[
        f.to_str().unwrap(),
        "--facility",
        "twins/datacenter.toml",
        "--node",
        "BEL-VNT-001",
        "--map",
        "maps/belimo-flox.toml",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["samples"], 968);
}

#[test]
fn an_ndjson_log_of_a_jammed_damper_raises_a_gear_jam_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("jam.ndjson");
    let mut text = String::new();
    for k in 0..4800u64 {
        let t = k as f64 / 20.0;
        let x = (t / 120.0).rem_euclid(1.0);
        let sp = 99.0 * (1.0 - (2.0 * x - 1.0).abs());
        text.push_str(&format!(
            "{{\"nodeId\":\"BEL-VNT-006\",\"timestamp\":{},\"telemetry\":{{\"position_percent\":1.2,\"setpoint_position_percent\":{sp:.2},\"torque\":0.0,\"temperature\":27.5,\"power_w\":0.004,\"rotation_direction\":{}}}}}\n",
            1_773_670_000_000 + k * 50,
            if k % 10 == 0 { 1 } else { 0 }
        ));
    }
    std::fs::write(&p, text).unwrap();
    let (code, out, err) = replay(&[p.to_str().unwrap(), "--facility", "twins/datacenter.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gear_jam") && out.contains("BEL-VNT-006"), "{out}");
    assert!(out.contains("ahu-02 critical"), "{out}");
}

#[test]
fn bad_logs_are_refused_with_the_row_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.ndjson");
    std::fs::write(&p, "{\"nodeId\":\"BEL-VNT-006\",\"timestamp\":1000,\"telemetry\":{\"position_percent\":1}}\n{\"nodeId\":\"BEL-VNT-006\",\"timestamp\":2000,\"telemetry\":{\"position_percent\":\"x\"}}\n").unwrap();
    let (code, _, err) = replay(&[p.to_str().unwrap(), "--facility", "twins/datacenter.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("[0].telemetry.setpoint_position_percent") && err.contains("nothing replayed"), "{err}");
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let (code, _, err) = replay(&[
        csv.to_str().unwrap(),
        "--facility",
        "twins/datacenter.toml",
        "--node",
        "BEL-VNT-001",
        "--map",
        "maps/belimo-flox.toml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no column \"_time\""), "{err}");
}

/// The LBNL SZVAV trend log (real AHU, faults imposed per day) through the AHU twin's rules.
#[test]
fn the_lbnl_trend_log_flags_the_cooling_valve_fault_days() {
    let Some(data) = shared_data("lbnl-ahu") else { return };
    let log = data.join("SZVAV.csv");
    let labels = data.join("SZVAV_fault_days.csv");
    let (code, out, err) = replay(&[
        log.to_str().unwrap(),
        "--facility",
        "twins/lbnl_szvav.toml",
        "--map",
        "maps/lbnl-szvav.toml",
        "--labels",
        labels.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["rows"].as_u64().unwrap() > 15_000);
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 11);
    let day = |d: &str| days.iter().find(|x| x["date"] == d).unwrap_or_else(|| panic!("no {d}"));
    for d in ["2017-09-11", "2017-09-22"] {
        assert!(day(d)["label"].as_str().unwrap().starts_with("cooling_coil_valve"));
        let f: Vec<&str> = day(d)["findings"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        assert!(f.contains(&"valve_leak@SZVAV-CHW"), "{d}: {f:?}");
    }
    let (flagged, faulted) =
        (r["faulted_days_flagged"][0].as_u64().unwrap(), r["faulted_days_flagged"][1].as_u64().unwrap());
    assert_eq!(faulted, 7);
    assert!(flagged >= 6, "only {flagged} of 7 fault days flagged");
}
