//! Status rolls up the tree as the worst current condition and recovers when the child heals.

use crate::{load, run};
use twinfault_core::Status;
use twinfault_core::event::Event;

fn statuses(lines: &[String], node: &str) -> Vec<(u64, Status)> {
    lines
        .iter()
        .filter_map(|l| match serde_json::from_str::<Event>(l).unwrap() {
            Event::Status { t, node: n, to, .. } if n == node => Some((t.0, to)),
            _ => None,
        })
        .collect()
}

fn at(timeline: &[(u64, Status)], t_ms: u64) -> Status {
    timeline.iter().take_while(|(t, _)| *t <= t_ms).last().map_or(Status::Healthy, |x| x.1)
}

#[test]
fn parent_recovers_after_its_child_heals() {
    let l = load("datacenter_multi_fault.toml");
    let r = run(&l, 2, None);
    let ahu = statuses(&r.log_lines, "ahu-01");
    let dev = statuses(&r.log_lines, "BEL-VNT-003");
    // F1 (gear jam on BEL-VNT-003) runs 1800-3600 s; ahu-01 has nothing else wrong.
    assert_eq!(at(&ahu, 1_700_000), Status::Healthy);
    assert_eq!(at(&ahu, 3_000_000), Status::Critical, "ahu-01 during the jam: {ahu:?}");
    assert_eq!(at(&dev, 3_000_000), Status::Critical);
    assert_eq!(at(&ahu, 4_300_000), Status::Healthy, "ahu-01 after the repair: {ahu:?}");
    assert_eq!(at(&dev, 4_300_000), Status::Healthy);
    // The plant stays critical: ahu-02 still has a decoupled valve (F3).
    let plant = statuses(&r.log_lines, "plant-01");
    assert_eq!(at(&plant, 4_300_000), Status::Critical);
    // Every status change up the tree carries the injection behind it.
    for line in &r.log_lines {
        if let Event::Status { to, truth, node, .. } = serde_json::from_str::<Event>(line).unwrap()
            && to != Status::Healthy
        {
            assert!(!truth.is_empty(), "{node} became {to} with no ground truth");
        }
    }
}

#[test]
fn parent_shows_the_worst_current_status_of_its_children() {
    let l = load("datacenter_multi_fault.toml");
    let r = run(&l, 1, None);
    let ahu2 = statuses(&r.log_lines, "ahu-02");
    let children =
        ["BEL-VNT-005", "BEL-VNT-006", "BEL-VNT-007", "BEL-VNT-008", "BEL-OAD-201", "BEL-CHW-201", "BEL-HW-201"];
    let timelines: Vec<_> = children.iter().map(|c| statuses(&r.log_lines, c)).collect();
    for t in (0..7_200_000).step_by(60_000) {
        let worst = timelines.iter().map(|tl| at(tl, t)).max().unwrap();
        assert!(at(&ahu2, t) >= worst, "at {t} ms ahu-02 is {} but a child is {worst}", at(&ahu2, t));
    }
}

/// Every twin is built by `ActuatorTwin::of_node`, which attaches the facility's learned
/// classifier when it has one (the server's auto-created twins used to go without).
#[test]
fn twins_built_for_a_facility_carry_its_classifier() {
    use std::sync::Arc;
    use twinfault_core::classify::WindowClassifier;
    use twinfault_core::features::N_FEATURES;
    use twinfault_core::twin::{ActuatorTwin, Mode};
    #[derive(Debug)]
    struct Always(Vec<String>);
    impl WindowClassifier for Always {
        fn classes(&self) -> &[String] {
            &self.0
        }
        fn window_s(&self) -> f64 {
            60.0
        }
        fn predict(&self, _: &[f64; N_FEATURES]) -> (usize, f32) {
            (0, 1.0)
        }
    }
    let mut f = twinfault::load::facility(&crate::root().join("twins/datacenter.toml"), None).unwrap();
    let node = f.actuators[0].clone();
    assert!(!ActuatorTwin::of_node(&f, &node, "X-1", Mode::Ingest, 1, false).has_classifier());
    f.classifier = Some(Arc::new(Always(vec!["normal".into()])));
    for mode in [Mode::Ingest, Mode::Simulate] {
        assert!(ActuatorTwin::of_node(&f, &node, "X-1", mode, 1, false).has_classifier());
    }
}
