//! Turbofan twins on NASA C-MAPSS FD001: the twin files, the seed's labels, a causal detector,
//! the fleet replay through actors, and the benchmark. Checks that need `../shared/data/cmapss`
//! skip with a message when it is absent; the file checks always run.

use crate::{root, shared_data};
use std::sync::Arc;
use twinfault::fleet::cmapss::{Subset, benchmark, load_fleet, load_template, read_rul, read_units, test_rul};
use twinfault_core::asset::{HealthModel, Monitor};

fn template() -> twinfault_core::asset::AssetTemplate {
    load_template(&root().join("twins/turbofan.toml")).expect("the turbofan template loads")
}

#[test]
fn the_turbofan_twin_files_load_and_validate() {
    let t = template();
    assert_eq!(t.settings().count(), 3);
    assert_eq!(t.sensors().count(), 21);
    assert_eq!(t.health.sensors.len(), 14);
    assert!(t.sensors().all(|c| !c.unit.is_empty() && !c.description.is_empty()));
    let f = load_fleet(&root().join("twins/turbofan_fleet.toml")).expect("the fleet loads with its model");
    assert_eq!(f.file.members, 100);
    assert_eq!(f.file.member(7).as_deref(), Some("engine-007"));
    assert_eq!(f.file.member(101), None);
    assert_eq!(f.model.sensors, t.health.sensors);
    // `twinfault validate` knows both kinds.
    for (file, says) in
        [("twins/turbofan.toml", "asset template \"turbofan\""), ("twins/turbofan_fleet.toml", "fleet \"fleet-fd001\"")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
            .args(["validate", file])
            .current_dir(root())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(says), "{file}: {text} {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn broken_turbofan_files_get_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let twins = crate::copy_twins(dir.path());
    let t = std::fs::read_to_string(twins.join("turbofan.toml")).unwrap();
    std::fs::write(twins.join("turbofan.toml"), t.replace("\"W31\", \"W32\"]", "\"W31\", \"W99\"]")).unwrap();
    let e = format!("{:#}", load_template(&twins.join("turbofan.toml")).unwrap_err());
    assert!(e.contains("turbofan.toml") && e.contains("health.sensors[13]") && e.contains("W99"), "{e}");
    // A fleet whose model file is missing says which key and how to make one.
    let f = std::fs::read_to_string(twins.join("turbofan_fleet.toml")).unwrap();
    std::fs::write(twins.join("turbofan.toml"), t).unwrap();
    std::fs::write(twins.join("turbofan_fleet.toml"), f.replace("turbofan_fd001.model.json", "nope.json")).unwrap();
    let e = format!("{:#}", load_fleet(&twins.join("turbofan_fleet.toml")).unwrap_err());
    assert!(e.contains("turbofan_fleet.toml") && e.contains("model") && e.contains("twinfault train --cmapss"), "{e}");
    // A model trained for other sensors is refused.
    let m = std::fs::read_to_string(twins.join("turbofan_fd001.model.json")).unwrap();
    let other = m.replacen("\"T24\"", "\"T2\"", 1);
    let e = HealthModel::from_json(&other, "m.json", &template()).unwrap_err().to_string();
    assert!(e.contains("m.json") && e.contains("other sensors"), "{e}");
    // A malformed data row names file, line and column.
    let bad = dir.path().join("test_bad.txt");
    std::fs::write(&bad, "1 1 0.0 0.0 100.0 518.67 x 1585.29 1398.21 14.62 21.61 553.90 2388.04 9050.17 1.30 47.20 521.72 2388.03 8125.55 8.4052 0.03 392 2388 100.00 38.86 23.3735\n").unwrap();
    let e = format!("{:#}", read_units(&bad, &template()).unwrap_err());
    assert!(e.contains("test_bad.txt:1: column 7 (T24)") && e.contains("\"x\""), "{e}");
    // A unit beyond the fleet is named.
    let row = "101 1 0.0 0.0 100.0 518.67 642.0 1585.29 1398.21 14.62 21.61 553.90 2388.04 9050.17 1.30 47.20 521.72 2388.03 8125.55 8.4052 0.03 392 2388 100.00 38.86 23.3735\n";
    let file = dir.path().join("test_101.txt");
    std::fs::write(&file, row).unwrap();
    let fleet = load_fleet(&root().join("twins/turbofan_fleet.toml")).unwrap();
    let e = format!("{:#}", twinfault::fleet::actors::replay(&file, &fleet, None, 1, Default::default()).unwrap_err());
    assert!(e.contains("unit 101") && e.contains("fleet-fd001"), "{e}");
}

#[test]
fn replay_options_that_do_not_apply_to_a_fleet_are_refused() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
            .args(["replay", "test_FD001.txt"])
            .args(args)
            .current_dir(root())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = run(&["--facility", "twins/turbofan_fleet.toml", "--node", "engine-001"]);
    assert!(code == Some(2) && err.contains("--node does not apply"), "{err}");
    let (code, err) = run(&["--facility", "twins/turbofan_fleet.toml", "--map", "maps/lbnl-szvav.toml"]);
    assert!(code == Some(2) && err.contains("--map cmapss"), "{err}");
    let (code, err) = run(&["--facility", "twins/datacenter.toml", "--map", "cmapss"]);
    assert!(code == Some(2) && err.contains("twins/datacenter.toml is not one"), "{err}");
}

fn fd001() -> Option<Subset> {
    let dir = shared_data("cmapss")?;
    Some(Subset::new(&dir, "FD001").expect("FD001 files"))
}

#[test]
fn labels_match_the_hand_count() {
    let Some(s) = fd001() else { return };
    let units = read_units(&s.test, &template()).unwrap();
    let rul = read_rul(&s.rul).unwrap();
    let truth = test_rul(&units, &rul).unwrap();
    assert_eq!(units.iter().map(|u| u.cycles.len()).sum::<usize>(), 13_096);
    let positives = |u: usize| truth[u - 1].iter().filter(|r| **r <= 30.0).count();
    assert_eq!((1..=100).map(positives).sum::<usize>(), 332);
    // Unit 34: 203 cycles, 7 left after the last: RUL = 210 - cycle ≤ 30 from cycle 180, 24 rows.
    assert_eq!((units[33].cycles.len(), rul[33]), (203, 7.0));
    assert_eq!(positives(34), 24);
    assert_eq!(truth[33][179], 30.0);
    assert_eq!(truth[33][178], 31.0);
    // Unit 1: 31 cycles, 112 left: none.
    assert_eq!(positives(1), 0);
    assert_eq!(truth[0][0], 142.0);
}

#[test]
fn the_detector_is_causal() {
    let Some(s) = fd001() else { return };
    let fleet = load_fleet(&root().join("twins/turbofan_fleet.toml")).unwrap();
    let units = read_units(&s.test, &fleet.template).unwrap();
    for u in units.iter().filter(|u| [20, 34, 49, 68].contains(&u.unit)) {
        let run = |n: usize| {
            let mut m = Monitor::new(Arc::clone(&fleet.model));
            (0..n).map(|i| m.observe(u.cycles[i], &u.settings[i], &u.sensors[i])).collect::<Vec<_>>()
        };
        let full = run(u.cycles.len());
        for cut in [20, 60, u.cycles.len() - 25, u.cycles.len() - 1] {
            assert_eq!(run(cut)[..], full[..cut], "unit {}: cycles up to {cut} changed when later ones came", u.unit);
        }
        // Cycles appended beyond the data (the last one repeated) leave the past alone too.
        let mut m = Monitor::new(Arc::clone(&fleet.model));
        let n = u.cycles.len();
        let mut more = Vec::new();
        for i in 0..n + 10 {
            let j = i.min(n - 1);
            more.push(m.observe(i as u32 + 1, &u.settings[j], &u.sensors[j]));
        }
        assert_eq!(
            more[..n].iter().map(|v| (v.rul, v.hi, v.alarm)).collect::<Vec<_>>(),
            full.iter().map(|v| (v.rul, v.hi, v.alarm)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn replaying_one_engine_raises_its_alarm_inside_its_last_30_cycles() {
    let Some(s) = fd001() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Engine 68 alone: 187 cycles, 8 left after the last.
    let rows: String = std::fs::read_to_string(&s.test)
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("68"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("test_FD001.txt");
    std::fs::write(&file, rows).unwrap();
    std::fs::copy(&s.rul, dir.path().join("RUL_FD001.txt")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["replay"])
        .arg(&file)
        .args(["--facility", "twins/turbofan_fleet.toml", "--map", "cmapss", "--json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &r["members"][0];
    assert_eq!((m["node"].as_str(), m["cycles"].as_u64()), (Some("engine-068"), Some(187)), "{m}");
    assert_eq!(m["true_rul_at_end"], 8.0);
    let at = m["true_rul_at_alarm"].as_f64().expect("an alarm");
    assert!((8.0..=30.0).contains(&at), "alarm with {at} cycles left");
    assert_eq!((r["fleet_status"].as_str(), m["status"].as_str()), (Some("critical"), Some("critical")));
    assert_eq!(r["alarms"][0]["node"], "engine-068");
    assert_eq!(r["scored"]["caught"], 1);
}

#[test]
fn the_fleet_replay_is_the_same_at_any_thread_count() {
    let Some(s) = fd001() else { return };
    let fleet = load_fleet(&root().join("twins/turbofan_fleet.toml")).unwrap();
    let run = |threads| {
        let r = twinfault::fleet::actors::replay(&s.test, &fleet, Some(&s.rul), threads, Default::default()).unwrap();
        (serde_json::to_string(&r).unwrap(), twinfault::sim::runner::log_lines(&r.events).unwrap())
    };
    let (one, log) = run(1);
    assert_eq!((one.clone(), log.clone()), run(4));
    // The event log: each alarm a finding on its member (the facility's fault ids), the member
    // going critical with it, and the fleet going critical once, at the first alarm's cycle.
    let events: Vec<serde_json::Value> = log.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let findings: Vec<_> = events.iter().filter(|e| e["event"] == "finding").collect();
    let fleet_changes: Vec<_> =
        events.iter().filter(|e| e["event"] == "status" && e["node"] == "fleet-fd001").collect();
    assert!(findings.iter().all(|f| f["kind"] == "degradation" && f["change"] == "opened"), "{:?}", findings[0]);
    assert_eq!(fleet_changes.len(), 1, "{fleet_changes:?}");
    assert_eq!((&fleet_changes[0]["to"], &fleet_changes[0]["t"]), (&serde_json::json!("critical"), &findings[0]["t"]));
    let member_changes = events.iter().filter(|e| e["event"] == "status" && e["node"] != "fleet-fd001").count();
    assert_eq!(member_changes, findings.len());
    // And it agrees with the benchmark's own scoring of the same model.
    let r: serde_json::Value = serde_json::from_str(&one).unwrap();
    let b = benchmark(&template(), &s, Some((*fleet.model).clone())).unwrap();
    assert_eq!(r["scored"]["caught"].as_u64(), Some(b.chosen.engines_caught as u64));
    assert_eq!(r["scored"]["early"].as_u64(), Some(b.chosen.engines_early as u64));
    // One latched alarm per alarmed engine, each either inside the last 30 cycles or early.
    assert_eq!(r["alarms"].as_array().unwrap().len(), b.chosen.engines_caught + b.chosen.engines_early);
    assert_eq!(findings.len(), b.chosen.engines_caught + b.chosen.engines_early);
    assert_eq!(
        r["alarms"][0]["id"],
        format!("F-{}-degradation-{}", findings[0]["node"].as_str().unwrap(), findings[0]["t"])
    );
}

/// FD001 flown in six operating conditions (FD002's settings): each row gets a condition by a
/// fixed rule, and every sensor is scaled and shifted by its condition, far more than wear moves
/// it. Normalising per regime must undo that: the same detector, trained the same way, must
/// score about as on FD001.
#[test]
fn the_same_detector_works_when_fd001_is_flown_in_six_conditions() {
    let Some(s) = fd001() else { return };
    let conditions = [
        [0.0, 0.0, 100.0],
        [10.0, 0.25, 100.0],
        [20.0, 0.7, 100.0],
        [25.0, 0.62, 60.0],
        [35.0, 0.84, 100.0],
        [42.0, 0.84, 100.0],
    ];
    let dir = tempfile::tempdir().unwrap();
    for (from, name) in [(&s.train, "train_FD001.txt"), (&s.test, "test_FD001.txt")] {
        let mut out = String::new();
        for line in std::fs::read_to_string(from).unwrap().lines() {
            let v: Vec<f64> = line.split_whitespace().map(|f| f.parse().unwrap()).collect();
            let r = ((v[0] as usize) * 31 + (v[1] as usize) * 17) % 6;
            let mut row = vec![v[0], v[1]];
            row.extend((0..3).map(|k| conditions[r][k] + v[2 + k] * if k == 2 { 0.0 } else { 1.0 }));
            row.extend(v[5..].iter().map(|x| x * (1.0 + 0.05 * r as f64) + 10.0 * r as f64));
            out += &row.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" ");
            out.push('\n');
        }
        std::fs::write(dir.path().join(name), out).unwrap();
    }
    std::fs::copy(&s.rul, dir.path().join("RUL_FD001.txt")).unwrap();
    let six = benchmark(&template(), &Subset::new(dir.path(), "FD001").unwrap(), None).unwrap();
    // The FD001 fleet's model knows one condition: replayed into it, the other five are gated,
    // and the replay warns.
    let fleet = load_fleet(&root().join("twins/turbofan_fleet.toml")).unwrap();
    let r = twinfault::fleet::actors::replay(&dir.path().join("test_FD001.txt"), &fleet, None, 1, Default::default())
        .unwrap();
    let gated: usize = r.members.iter().map(|m| m.gated).sum();
    assert!(gated > r.rows / 2, "{gated} of {}", r.rows);
    assert!(r.render(false).contains("warning:"), "{}", r.render(false));
    let one = benchmark(&template(), &s, None).unwrap();
    assert_eq!((six.regimes, six.chosen.gated_rows, one.chosen.gated_rows), (6, 0, 0));
    assert!((six.chosen.f1 - one.chosen.f1).abs() < 0.03, "six conditions {} vs one {}", six.chosen.f1, one.chosen.f1);
    assert!(six.chosen.rul_rmse_last < 18.0, "RMSE {}", six.chosen.rul_rmse_last);
}

#[test]
fn the_benchmark_beats_the_seed_and_the_shipped_model_is_what_training_gives() {
    let Some(s) = fd001() else { return };
    let t = template();
    let b = benchmark(&t, &s, None).unwrap();
    assert_eq!((b.chosen.rows, b.chosen.positives), (13_096, 332));
    // The deployed detector against the seed's 0.71, and the RUL estimate within published range.
    assert!(b.chosen.f1 >= 0.80 && b.chosen.f1 > b.seed.2, "F1 {}", b.chosen.f1);
    assert!(b.chosen.engines_missed <= 2, "{:?}", b.chosen);
    assert!(b.chosen.rul_rmse_last < 18.0, "RMSE {}", b.chosen.rul_rmse_last);
    // One trace per engine whose last 30 cycles are in the data; the chart is a PNG.
    assert_eq!(b.traces.len(), b.chosen.engines_with_window);
    let dir = tempfile::tempdir().unwrap();
    b.chart(&dir.path().join("c.png")).unwrap();
    assert!(std::fs::read(dir.path().join("c.png")).unwrap().starts_with(b"\x89PNG"));
    // The model the fleet file ships is the one `train --cmapss` makes from train_FD001.
    let trained = twinfault::fleet::cmapss::train(&t, &s.train).unwrap();
    let shipped = load_fleet(&root().join("twins/turbofan_fleet.toml")).unwrap();
    assert_eq!(*shipped.model, trained, "twins/turbofan_fd001.model.json is stale: train it again");
}

#[test]
fn a_served_fleet_takes_cycles_over_http_and_keeps_them_through_kill_9() {
    use crate::server::{READ, Server, WRITE};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_facility(dir.path(), "twins/turbofan_fleet.toml", "");
    let doc = |node: &str, cycle: u32, settings: &[f64], sensors: &[f64]| json!({ "node": node, "cycle": cycle, "settings": settings, "sensors": sensors });
    let post = |body: &serde_json::Value, token| s.post("/api/fleet/cycles", Some(token), &body.to_string());
    // Bad input: one clear refusal each, nothing stored.
    let r = post(&json!([doc("engine-999", 1, &[0.0, 0.0, 100.0], &[1.0; 21])]), WRITE);
    assert!(r.status == 404 && r.body.contains("engine-999"), "{}", r.body);
    let r = post(&json!([doc("engine-001", 1, &[0.0, 0.0, 100.0], &[1.0; 20])]), WRITE);
    assert!(r.status == 422 && r.body.contains("[0].sensors"), "{}", r.body);
    assert_eq!(post(&json!([doc("engine-001", 1, &[0.0, 0.0, 100.0], &[1.0; 21])]), READ).status, 403);
    let f = s.get("/api/fleet", Some(READ)).json();
    assert_eq!((f["status"].as_str(), f["members"].as_array().unwrap().len()), (Some("healthy"), 100));
    assert!(f["members"][0]["last"].is_null(), "{}", f["members"][0]);

    let Some(sub) = fd001() else { return };
    let units = read_units(&sub.test, &template()).unwrap();
    let u = units.iter().find(|u| u.unit == 68).unwrap();
    let docs: Vec<serde_json::Value> =
        (0..u.cycles.len()).map(|i| doc("engine-068", u.cycles[i], &u.settings[i], &u.sensors[i])).collect();
    let mut opened = Vec::new();
    for chunk in docs.chunks(50) {
        let r = post(&json!(chunk), WRITE);
        assert_eq!(r.status, 200, "{}", r.body);
        opened.extend(r.json()["alarms_opened"].as_array().unwrap().clone());
    }
    assert_eq!(opened.len(), 1, "{opened:?}");
    let alarm_cycle = opened[0]["cycle"].as_u64().unwrap();
    // Engine 68: 187 cycles, 8 left after the last; its alarm comes inside its last 30 cycles.
    let left = 187 + 8 - alarm_cycle;
    assert!((8..=30).contains(&left), "alarm with {left} cycles left");
    // A cycle that does not follow the member's last is refused.
    let r = post(&json!([doc("engine-068", 100, &u.settings[0], &u.sensors[0])]), WRITE);
    assert!(r.status == 409 && r.body.contains("187"), "{}", r.body);
    let before = s.get("/api/fleet", Some(READ)).json();
    assert_eq!(before["status"], "critical");
    assert_eq!(before["alarms"][0]["node"], "engine-068");
    // The alarm is a fault as the facility's server shows one: the same views, ids and routes.
    let id = opened[0]["fault_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("F-engine-068-degradation-"), "{id}");
    let st = s.get("/api/status", Some(READ)).json();
    assert_eq!((st["nodes"][0]["kind"].as_str(), st["nodes"][0]["status"].as_str()), (Some("fleet"), Some("critical")));
    assert_eq!(st["nodes"].as_array().unwrap().len(), 101);
    assert_eq!(
        (st["nodes"][68]["id"].as_str(), st["nodes"][68]["kind"].as_str()),
        (Some("engine-068"), Some("member"))
    );
    assert_eq!(st["nodes"][68]["status"], "critical");
    assert_eq!(
        (st["open_faults"][0]["id"].as_str(), st["open_faults"][0]["kind"].as_str()),
        (Some(id.as_str()), Some("degradation"))
    );
    assert_eq!(st["health"]["open_faults"], 1);
    let n = s.get("/api/nodes/engine-068", Some(READ)).json();
    assert_eq!(n["open_faults"][0]["id"], id);
    assert_eq!(s.get("/api/nodes/engine-001", Some(READ)).json()["open_faults"], json!([]));
    let h = s.get("/api/nodes/engine-068/fault-history", Some(READ)).json();
    assert_eq!((h[0]["fault_id"].as_str(), h[0]["change"].as_str()), (Some(id.as_str()), Some("opened")));
    assert_eq!(s.get("/api/faults", Some(READ)).json()[0]["id"], id);
    // One error convention: an unknown node, a bad query, a route only a facility has.
    let r = s.get("/api/nodes/engine-999", Some(READ));
    assert!(r.status == 404 && r.json()["error"].as_str().unwrap().contains("engine-999"), "{}", r.body);
    let r = s.get("/api/faults?state=maybe", Some(READ));
    assert!(r.status == 400 && r.json()["details"][0]["path"] == "state", "{}", r.body);
    let r = s.post("/api/ingest", Some(WRITE), "[]");
    assert!(r.status == 404 && r.json()["error"].as_str().unwrap().contains("/api/ingest"), "{}", r.body);
    assert_eq!(s.get("/api/status", None).status, 401);
    // kill -9: everything acknowledged comes back, to the same state, alarm times included.
    let s = s.kill_and_restart();
    let after = s.get("/api/fleet", Some(READ)).json();
    assert_eq!(after["alarms"], before["alarms"]);
    assert_eq!(after["members"][67], before["members"][67]);
    assert_eq!(after["members"][67]["last"]["cycle"], 187);
    assert_eq!(s.get("/api/status", Some(READ)).json()["open_faults"][0]["id"], id);
}

#[test]
fn a_served_fleet_gives_back_the_same_alarms_in_the_same_order_after_kill_9() {
    use crate::server::{READ, Server, WRITE};
    use serde_json::json;
    let Some(sub) = fd001() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_facility(dir.path(), "twins/turbofan_fleet.toml", "");
    let units = read_units(&sub.test, &template()).unwrap();
    // Engines 41 and 37 alarm one cycle apart (112, 113): posted interleaved, engine 41 first in
    // every batch, both alarms open in the same batch.
    let (a, b) = (units.iter().find(|u| u.unit == 41).unwrap(), units.iter().find(|u| u.unit == 37).unwrap());
    let doc = |u: &twinfault::fleet::cmapss::Unit, i: usize| json!({ "node": format!("engine-{:03}", u.unit), "cycle": u.cycles[i], "settings": u.settings[i], "sensors": u.sensors[i] });
    let mut docs = Vec::new();
    for i in 0..a.cycles.len().max(b.cycles.len()) {
        for u in [a, b] {
            if i < u.cycles.len() {
                docs.push(doc(u, i));
            }
        }
    }
    let mut opened = 0;
    for chunk in docs.chunks(100) {
        let r = s.post("/api/fleet/cycles", Some(WRITE), &json!(chunk).to_string());
        assert_eq!(r.status, 200, "{}", r.body);
        opened += r.json()["alarms_opened"].as_array().unwrap().len();
    }
    assert_eq!(opened, 2);
    let before = s.get("/api/fleet", Some(READ)).json();
    let status_before = s.get("/api/status", Some(READ)).json();
    assert_eq!(before["alarms"].as_array().unwrap().len(), 2, "{}", before["alarms"]);
    let s = s.kill_and_restart();
    assert_eq!(s.get("/api/fleet", Some(READ)).json()["alarms"], before["alarms"]);
    assert_eq!(s.get("/api/status", Some(READ)).json()["open_faults"], status_before["open_faults"]);
}
