//! Every scenario in `scenarios/` runs through the actor engine and meets its expectations.

use crate::{load, root, run};

fn scenario_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_scenario_meets_its_expectations() {
    let files = scenario_files();
    assert!(files.len() >= 15, "expected at least 15 scenarios, found {}", files.len());
    let mut failures = Vec::new();
    let mut hashes = String::new();
    for f in &files {
        let l = load(f);
        assert!(!l.scenario.expectations.is_empty(), "{f} states no expectations");
        let r = run(&l, 2, None);
        for e in r.report.expectations.iter().filter(|e| !e.passed) {
            failures.push(format!("{f}: {} -> {}", e.expectation, e.detail));
        }
        hashes.push_str(&format!("{f} {}\n", r.report.event_log_sha256));
    }
    assert!(failures.is_empty(), "failed expectations:\n{}", failures.join("\n"));
    // Each scenario's event log is pinned: a change that alters one must say so by rewriting the
    // list (TWINFAULT_BLESS_HASHES=1), so a refactoring that should change nothing is checked.
    let pinned = root().join("tests/scenario_hashes.txt");
    if std::env::var_os("TWINFAULT_BLESS_HASHES").is_some() {
        std::fs::write(&pinned, &hashes).unwrap();
    }
    let want = std::fs::read_to_string(&pinned).expect("tests/scenario_hashes.txt");
    let changed: Vec<String> = hashes
        .lines()
        .filter(|l| !want.lines().any(|w| w == *l))
        .map(|l| l.split(' ').next().unwrap_or(l).to_string())
        .collect();
    assert!(
        changed.is_empty() && want.lines().count() == files.len(),
        "event logs changed for {changed:?} (or scenarios were added/removed); if intended, rerun with TWINFAULT_BLESS_HASHES=1 and say why in the commit"
    );
}

#[test]
fn every_injectable_kind_has_a_scenario_that_detects_it() {
    use std::collections::BTreeSet;
    use twinfault_core::FaultKind;
    let mut covered = BTreeSet::new();
    for f in scenario_files() {
        let l = load(&f);
        for e in &l.scenario.expectations {
            if let twinfault_core::scenario::Expectation::Detected { fault, .. } = e {
                covered.insert(*fault);
            }
        }
    }
    let missing: Vec<_> = FaultKind::ALL.iter().filter(|k| k.injectable() && !covered.contains(k)).collect();
    assert!(missing.is_empty(), "no scenario expects detection of {missing:?}");
}

#[test]
fn fault_free_day_has_zero_alarms_through_startups_and_shutdowns() {
    let l = load("datacenter_fault_free_day.toml");
    assert!(l.scenario.duration.as_secs_f64() >= 86_400.0);
    let r = run(&l, 1, None);
    assert!(r.report.detections.is_empty(), "alarms on a fault-free day: {:?}", r.report.detections);
    // The day really had its transients: two AHUs × (startup, occupied, shutdown, off).
    let phases = r.log_lines.iter().filter(|l| l.contains("\"event\":\"phase\"")).count();
    assert_eq!(phases, 8, "phase changes in the log");
}
