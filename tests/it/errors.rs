//! Bad input gets one clear error naming the file, the key and what was wrong; nothing panics.

use crate::{copy_twins, root};
use std::path::{Path, PathBuf};

/// Writes a scenario variant into a temp dir next to a copy of the twins, and loads it.
fn load_variant(dir: &Path, name: &str, text: &str) -> String {
    copy_twins(dir);
    let sdir = dir.join("scenarios");
    std::fs::create_dir_all(&sdir).unwrap();
    let p = sdir.join(name);
    std::fs::write(&p, text).unwrap();
    match twinfault::load::scenario(&p, None) {
        Ok(_) => panic!("{name} loaded but should not"),
        Err(e) => e.to_string(),
    }
}

fn base() -> String {
    std::fs::read_to_string(root().join("scenarios/datacenter_gear_jam.toml")).unwrap()
}

fn check(name: &str, text: &str, must_contain: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_variant(dir.path(), name, text);
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
    for m in must_contain {
        assert!(msg.contains(m), "error {msg:?} does not mention {m:?}");
    }
}

#[test]
fn broken_toml_names_file_and_line() {
    check("broken.toml", &base().replace("seed = 7", "seed = = 7"), &["broken.toml:4:"]);
}

#[test]
fn unknown_key_is_named() {
    check(
        "unknown_key.toml",
        &base().replace("seed = 7", "seed = 7\nsed = 8"),
        &["unknown_key.toml:5:", "key `sed`", "unknown field `sed`"],
    );
}

#[test]
fn out_of_range_severity_names_the_key_path() {
    check(
        "bad_severity.toml",
        &base().replace("severity = 1.0", "severity = 1.5"),
        &["bad_severity.toml:22:1:", "inject[0].severity", "1.5"],
    );
}

#[test]
fn unknown_node_is_named() {
    check(
        "unknown_node.toml",
        &base().replace("node = \"BEL-VNT-003\"", "node = \"BEL-VNT-099\""),
        &["inject[0].node", "BEL-VNT-099"],
    );
}

#[test]
fn unknown_fault_kind_lists_the_kinds() {
    check(
        "bad_kind.toml",
        &base().replace("kind = \"gear_jam\"", "kind = \"gear_jammed\""),
        &["inject[0].kind", "gear_jammed", "stiction"],
    );
}

#[test]
fn wrong_type_names_the_field() {
    check(
        "wrong_type.toml",
        &base().replace("duration_s = 5400", "duration_s = \"long\""),
        &["wrong_type.toml:5:", "key `duration_s`", "expected f64"],
    );
}

#[test]
fn missing_facility_file_is_named() {
    check(
        "no_facility.toml",
        &base().replace("../twins/datacenter.toml", "../twins/nowhere.toml"),
        &["facility", "nowhere.toml"],
    );
}

#[test]
fn expectation_naming_an_unknown_injection_is_rejected() {
    check(
        "bad_expect.toml",
        &base().replacen("injection = \"F1\"", "injection = \"F9\"", 1),
        &["expect[0].injection", "F9"],
    );
}

#[test]
fn bad_twin_files_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let twins = copy_twins(dir.path());
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        (
            "datacenter.toml",
            "parent = \"ahu-02\"\nrole = \"zone_damper\"\nzone = \"zone-5\"",
            "parent = \"ahu-09\"\nrole = \"zone_damper\"\nzone = \"zone-5\"",
            &["datacenter.toml:", "actuators[4].parent", "ahu-09"],
        ),
        ("datacenter.toml", "id = \"BEL-VNT-002\"", "id = \"BEL-VNT-001\"", &["duplicate node id", "BEL-VNT-001"]),
        (
            "damper_actuator.toml",
            "rated_speed_pct_s = 4.8",
            "rated_speed_pct_s = -4.8",
            &["damper_actuator.toml", "model.rated_speed_pct_s"],
        ),
        (
            "damper_actuator.toml",
            "[findings.stiction]",
            "[findings.sticktion]",
            &["findings.sticktion", "unknown fault kind"],
        ),
    ];
    for (file, from, to, must) in cases {
        let original = std::fs::read_to_string(root().join("twins").join(file)).unwrap();
        assert!(original.contains(from), "{file} has no {from:?}");
        std::fs::write(twins.join(file), original.replacen(from, to, 1)).unwrap();
        let err = twinfault::load::facility(&twins.join("datacenter.toml"), None).expect_err("must fail").to_string();
        for m in must {
            assert!(err.contains(m), "error {err:?} does not mention {m:?}");
        }
        std::fs::write(twins.join(file), original).unwrap();
    }
}

#[test]
fn every_file_in_the_repo_validates() {
    for dir in ["scenarios", "twins"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p: PathBuf = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                twinfault::validate::validate(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
            }
        }
    }
}

#[test]
fn a_bad_value_inside_an_array_of_tables_names_its_index() {
    let text = base().replace("at_s = 1800", "at_s = \"soon\"");
    check("bad_at.toml", &text, &["key `inject[0].at_s`"]);
}

#[test]
fn injecting_into_an_ingesting_node_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let twins = copy_twins(dir.path());
    let facility = std::fs::read_to_string(twins.join("datacenter.toml")).unwrap();
    let marked = facility.replacen("id = \"BEL-VNT-003\"", "id = \"BEL-VNT-003\"\nmode = \"ingest\"", 1);
    std::fs::write(twins.join("datacenter.toml"), marked).unwrap();
    let sdir = dir.path().join("scenarios");
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::write(sdir.join("jam.toml"), base()).unwrap();
    let err = twinfault::load::scenario(&sdir.join("jam.toml"), None).err().expect("must fail").to_string();
    assert!(err.contains("jam.toml:20:") && err.contains("inject[0].node") && err.contains("real telemetry"), "{err}");
}
