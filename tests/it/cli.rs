//! The binary as a user runs it: exit codes, the report table, the store commands.

use crate::root;
use std::process::Command;

fn twinfault(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_twinfault")).args(args).current_dir(root()).output().expect("binary runs")
}

#[test]
fn run_prints_the_report_stores_it_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let out = twinfault(&["run", "scenarios/datacenter_gear_jam.toml", "--store", store, "--quiet"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("gear_jam on BEL-VNT-003"), "{stdout}");
    assert!(stdout.contains("PASS"));
    assert!(stdout.contains("event log sha256"));
    assert!(stdout.contains("stored as run-"));
    let runs = twinfault(&["runs", "--store", store]);
    assert!(String::from_utf8_lossy(&runs.stdout).contains("datacenter_gear_jam"));
    let show = twinfault(&["show", "last", "--faults", "--store", store]);
    let s = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success() && s.contains("gear_jam") && s.contains("F1"), "{s}");
    let hist = twinfault(&[
        "history",
        "last",
        "BEL-VNT-003",
        "--metric",
        "torque_nm",
        "--from",
        "1800",
        "--limit",
        "5",
        "--store",
        store,
    ]);
    let h = String::from_utf8_lossy(&hist.stdout);
    assert_eq!(h.lines().count(), 6, "{h}");
    assert!(h.starts_with("t_s,torque_nm\n1800.000,"));
}

#[test]
fn a_failed_expectation_exits_one_and_prints_how_to_reproduce() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("scenarios/datacenter_gear_jam.toml")).unwrap();
    // Expect the jam far too fast to be possible (no detector can know a device is blocked in 1 s).
    let text = text
        .replacen("within_s = 600", "within_s = 1", 1)
        .replace("../twins/", &format!("{}/twins/", root().display()));
    let p = dir.path().join("too_fast.toml");
    std::fs::write(&p, text).unwrap();
    let out = twinfault(&["run", p.to_str().unwrap(), "--no-store", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reproduce with: twinfault run"));
}

#[test]
fn bad_input_exits_two_with_one_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("garbage.toml");
    std::fs::write(&p, "this is = = not toml").unwrap();
    for args in [
        vec!["run", p.to_str().unwrap(), "--no-store"],
        vec!["run", "no/such/file.toml", "--no-store"],
        vec!["validate", p.to_str().unwrap()],
        vec!["show", "run-999999", "--store", dir.path().to_str().unwrap()],
        vec!["show", "not-a-run", "--store", dir.path().to_str().unwrap()],
    ] {
        let out = twinfault(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn validate_and_list_cover_the_repo_files() {
    let out = twinfault(&["list"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!s.contains("INVALID"), "{s}");
    assert!(s.contains("datacenter_multi_fault") && s.contains("facility \"datacenter\""), "{s}");
    let out = twinfault(&[
        "validate",
        "scenarios/datacenter_stiction.toml",
        "twins/datacenter.toml",
        "twins/valve_actuator.toml",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn a_report_piped_into_a_reader_that_left_ends_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["run", "scenarios/datacenter_multi_fault.toml", "--no-store"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the report is written (as `| head -0` would).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
