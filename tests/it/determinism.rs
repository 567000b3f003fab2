//! The same scenario and seed give a byte-identical event log at any thread count, and the actor
//! engine produces exactly what the plain loop does.

use crate::{load, run};
use twinfault::sim::runner::{hash_lines, log_lines};

#[test]
fn same_seed_same_log_at_any_thread_count() {
    let l = load("datacenter_multi_fault.toml");
    let one = run(&l, 1, None);
    let again = run(&l, 1, None);
    let three = run(&l, 3, None);
    assert!(!one.log_lines.is_empty());
    assert_eq!(one.log_lines, again.log_lines, "two runs on one thread differ");
    assert_eq!(one.log_lines, three.log_lines, "1 thread and 3 threads differ");
    assert_eq!(one.report.event_log_sha256, three.report.event_log_sha256);
    assert_eq!(one.report.event_log_sha256, hash_lines(&one.log_lines));
}

#[test]
fn actor_engine_matches_the_plain_loop() {
    let l = load("datacenter_multi_fault.toml");
    let actors = run(&l, 2, None);
    let plain = twinfault_core::plain::run_plain(&l.scenario, &l.facility);
    assert_eq!(actors.log_lines, log_lines(&plain).unwrap());
}

#[test]
fn another_seed_gives_another_log() {
    let l = load("datacenter_destabilization.toml");
    let a = run(&l, 1, None);
    let mut l2 = load("datacenter_destabilization.toml");
    l2.scenario.seed += 1;
    let b = run(&l2, 1, None);
    assert_ne!(a.report.event_log_sha256, b.report.event_log_sha256);
}
