//! The sled store on disk: a run survives closing and reopening, with its event log, faults and
//! bounded, paged history.

use crate::{load, run};
use twinfault::sim::runner::hash_lines;
use twinfault::store::Store;
use twinfault_core::SimTime;

#[test]
fn store_reopens_with_its_runs_events_faults_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let l = load("datacenter_gear_jam.toml");
    let r = run(&l, 2, Some(dir.path().to_path_buf()));
    let id = r.run_id.clone().expect("stored");
    // A second run in the same store gets its own id.
    let r2 = run(&l, 1, Some(dir.path().to_path_buf()));
    assert_ne!(r2.run_id.as_deref(), Some(id.as_str()));

    let s = Store::open(dir.path()).unwrap();
    let runs = s.runs().unwrap();
    assert_eq!(runs.len(), 2);
    let rec = s.run(&id).unwrap();
    assert_eq!(rec.report, r.report);
    assert_eq!(rec.seed, 7);

    let events = s.events(&id).unwrap();
    assert_eq!(events, r.log_lines);
    assert_eq!(hash_lines(&events), r.report.event_log_sha256);

    let faults = s.faults(&id).unwrap();
    let jam = faults.iter().find(|f| f.node == "BEL-VNT-003").expect("the jam is a stored fault");
    assert_eq!(jam.kind, twinfault_core::FaultKind::GearJam);
    assert_eq!(jam.truth.as_deref(), Some("F1"));
    assert!(jam.opened_at >= SimTime(1_800_000));
    assert!(jam.resolved_at.is_none(), "the jam never ends in this scenario");

    // History: every sample of a node in a range, paged, in time order.
    let page = s.history(&id, "BEL-VNT-003", "position_pct", SimTime(2_000_000), SimTime(2_010_000), 20).unwrap();
    assert_eq!(page.points.len(), 20);
    assert_eq!(page.points[0].0, SimTime(2_000_000));
    let next = page.next_from.expect("more than one page");
    let page2 = s.history(&id, "BEL-VNT-003", "position_pct", next, SimTime(2_010_000), 1000).unwrap();
    // 10 s at 5 Hz, less the polls the template's gateway loses (healthy_drop_share).
    let whole = s.history(&id, "BEL-VNT-003", "position_pct", SimTime(2_000_000), SimTime(2_010_000), 1000).unwrap();
    assert!((35..=50).contains(&whole.points.len()), "{} samples in 10 s at 5 Hz", whole.points.len());
    assert_eq!(page.points.len() + page2.points.len(), whole.points.len(), "the pages hold every sample once");
    assert!(page2.next_from.is_none());
    assert!(page.points.windows(2).all(|w| w[0].0 < w[1].0));
    // The jammed damper's feedback does not move.
    let (lo, hi) = page.points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    assert!(hi - lo < 0.5, "jammed feedback moved from {lo} to {hi}");
    assert!(s.history(&id, "BEL-VNT-003", "no_such_metric", SimTime(0), SimTime(1), 1).is_err());

    // AHU history: one point per control epoch, supply air held near its setpoint when occupied.
    let sat = s.history(&id, "ahu-02", "supply_air_c", SimTime(3_000_000), SimTime(3_060_000), 1000).unwrap();
    assert_eq!(sat.points.len(), 60, "one point per 1 s epoch");
    assert!(sat.points.iter().all(|p| (p.1 - 18.0).abs() < 1.5), "{:?}", &sat.points[..3]);
    let phase = s.history(&id, "ahu-02", "phase", SimTime(3_000_000), SimTime(3_001_000), 10).unwrap();
    assert_eq!(phase.points[0].1, 2.0, "occupied");
    let err = s.history(&id, "ahu-02", "torque_nm", SimTime(0), SimTime(1), 1).unwrap_err().to_string();
    assert!(err.contains("supply_air_c"), "{err}");
}

#[test]
fn history_retention_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = load("datacenter_gear_jam.toml");
    l.scenario.history_retention_s = Some(600.0);
    let r = run(&l, 1, Some(dir.path().to_path_buf()));
    let s = Store::open(dir.path()).unwrap();
    let id = r.run_id.unwrap();
    let end = l.scenario.duration;
    let old = s.history(&id, "BEL-VNT-001", "torque_nm", SimTime(0), SimTime(end.0 - 900_000), 10).unwrap();
    assert!(old.points.is_empty(), "history older than the retention was kept");
    let recent = s.history(&id, "BEL-VNT-001", "torque_nm", SimTime(end.0 - 300_000), end, 10).unwrap();
    assert_eq!(recent.points.len(), 10);
}

#[test]
fn history_blocks_round_trip() {
    use twinfault_core::actuator::Sample;
    use twinfault_core::twin::HistoryBlock;
    let samples: Vec<Sample> = (0..7)
        .map(|k| Sample {
            t: SimTime(60_000 + k * 50),
            setpoint_pct: 10.0 + k as f32,
            position_pct: 9.5,
            torque_nm: -0.61,
            power_w: 0.171875,
            temperature_c: 27.3,
            rotation: (k % 3) as u8,
            signal_quality: if k == 3 { None } else { Some(0.9) },
        })
        .collect();
    let b = HistoryBlock { start: SimTime(60_000), samples: samples.clone() };
    let bytes = twinfault::store::encode_block(&b);
    assert_eq!(twinfault::store::decode_block(b.start, &bytes).unwrap(), samples);
    assert!(twinfault::store::decode_block(b.start, &bytes[..bytes.len() - 1]).is_err());
}

/// A batch stored twice (an MQTT message delivered again after a reconnect, a gateway's retry)
/// reads back once; two different samples of the same millisecond are both kept.
#[test]
fn live_samples_stored_twice_read_back_once() {
    use twinfault_core::actuator::Sample;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let at = |t: u64, pos: f32| Sample {
        t: SimTime(t),
        setpoint_pct: 40.0,
        position_pct: pos,
        torque_nm: 0.01,
        power_w: 0.0,
        temperature_c: 27.1,
        rotation: 0,
        signal_quality: None,
    };
    let batch = vec![at(1_000, 10.0), at(2_000, 20.0), at(2_000, 21.0)];
    s.put_live("BEL-VNT-001", &batch).unwrap();
    s.put_live("BEL-VNT-001", &batch[..2]).unwrap();
    let mut read = Vec::new();
    s.for_each_live_sample("BEL-VNT-001", SimTime(0), |x| read.push(x.position_pct)).unwrap();
    read.sort_by(f32::total_cmp);
    assert_eq!(read, vec![10.0, 20.0, 21.0]);
    let page = s.live_history("BEL-VNT-001", "position_pct", SimTime(0), SimTime(10_000), 100).unwrap();
    assert_eq!(page.points.len(), 3, "{:?}", page.points);
}
