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
    assert!(err.contains("no usable samples") && err.contains("invalid sample 2 (row 1, 2"), "{err}");
    assert!(err.contains("telemetry.setpoint_position_percent"), "{err}");
    let (code, _, err) = replay(&[p.to_str().unwrap(), "--facility", "twins/datacenter.toml", "--strict"]);
    assert_eq!(code, 2);
    assert!(err.contains("row 1: invalid sample") && err.contains("--strict"), "{err}");
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
fn the_lbnl_trend_log_flags_its_fault_days_and_the_fork_names_the_component() {
    let Some(data) = shared_data("lbnl-ahu") else { return };
    let log = data.join("SZVAV.csv");
    let labels = data.join("SZVAV_fault_days.csv");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let (code, out, err) = replay(&[
        log.to_str().unwrap(),
        "--facility",
        "twins/lbnl_szvav.toml",
        "--map",
        "maps/lbnl-szvav.toml",
        "--labels",
        labels.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    // --report writes the same report and its day × component chart.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("days.json")).unwrap()).unwrap();
    assert_eq!(written, r);
    let png = std::fs::read(report.join("days.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000, "{} bytes", png.len());
    assert!(r["rows"].as_u64().unwrap() > 15_000);
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 11);
    let day = |d: &str| days.iter().find(|x| x["date"] == d).unwrap_or_else(|| panic!("no {d}"));
    // The per-day table: the fork's top hypothesis names the labelled component on the days
    // whose fault shows in the temperatures (a heating valve stuck or leaking makes supply air
    // warmer than mixed air with full cooling; a cooling valve stuck open cools with its command
    // at 0; a leaking one cools with it closed).
    for (d, device) in [
        ("2017-09-11", "SZVAV-CHW"),
        ("2017-09-12", "SZVAV-HW"),
        ("2017-09-14", "SZVAV-HW"),
        ("2017-09-15", "SZVAV-HW"),
        ("2017-09-22", "SZVAV-CHW"),
    ] {
        assert_eq!(day(d)["fork"]["device"], device, "{d}: {}", day(d));
        assert_eq!(day(d)["right_component"], true, "{d}");
        assert!(
            day(d)["fork"]["runner_up"].is_string() && day(d)["fork"]["fit_supply_c"].as_f64().unwrap().is_finite()
        );
    }
    // A valve stuck open explains the heating days' air to within a kelvin.
    for d in ["2017-09-12", "2017-09-14", "2017-09-15"] {
        assert!(day(d)["fork"]["fit_supply_c"].as_f64().unwrap() < 1.5, "{}", day(d));
    }
    assert!(day("2017-09-14")["fork"]["top"].as_str().unwrap().contains("stuck at 100 %"), "{}", day("2017-09-14"));
    let pair = |k: &str| (r[k][0].as_u64().unwrap(), r[k][1].as_u64().unwrap());
    let (flagged, faulted) = pair("faulted_days_flagged");
    assert_eq!(faulted, 7);
    assert!(flagged >= 6, "only {flagged} of 7 fault days flagged");
    // The unit's own baselines keep its clean days quiet (they flagged 2 of 4 before).
    assert_eq!(pair("unfaulted_days_flagged"), (0, 4), "{}", r["days"]);
    assert_eq!(pair("right_component_first"), (5, 7));
    // What was learned is the unit's, not the template's: a coil lag and a scatter of its own.
    assert!(r["unit"]["learned_from"].as_u64().unwrap() > 5_000);
    assert_ne!(r["unit"]["coil_time_constant_s"].as_f64().unwrap(), 300.0);
}

/// Replays a rig-format file into BEL-VNT-001 of the reference floor, with `extra` arguments.
fn replay_rig(file: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let args = [file.to_str().unwrap(), "--facility", "twins/datacenter.toml", "--node", "BEL-VNT-001"];
    replay(&[&args[..], extra].concat())
}

/// A rig-format (flox) recording written by a test: `rows` of (seconds, setpoint, position,
/// torque, power, rotation) at their own UTC times.
pub(crate) fn flox_csv(rows: &[(f64, f64, f64, f64, f64, u8)]) -> String {
    let mut s = String::from(
        "_time,_measurement,feedback_position_%,internal_temperature_deg_C,motor_torque_Nmm,power_W,rotation_direction,setpoint_position_%,test_number\n",
    );
    let t0 = twinfault_core::time::parse_timestamp_ms("2026-03-16T15:00:00Z").unwrap();
    for &(t, sp, pos, tq, pw, rot) in rows {
        let ts = twinfault_core::time::format_timestamp_ms(t0 + (t * 1000.0).round() as i64)
            .replace('T', " ")
            .replace('Z', "+00:00");
        s.push_str(&format!("{ts},measurements,{pos:.2},27.0,{tq:.4},{pw:.5},{rot},{sp:.3},1\n"));
    }
    s
}

/// A deterministic pseudo-random stream for test fixtures (no dependency, same on every machine).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A bench exercise written as the rig would log it (not the simulator's: the detector is
/// checked on data the model did not make), as the hand-imposed faults of
/// `../shared/docs/domain.md` §1 were recorded: the setpoint sweeping 0-100 % in a triangle, the drive at 4.8 %/s toward it, torque
/// signed (about -0.6 N·m opening, +0.6 closing, 0 at rest), power about 0.17 W while moving; then
/// the fault's signature: `gear_jam` feedback pinned near 1 % with rotation 0 on 90 % of samples;
/// `closure_blockage` feedback confined to 11-40 %; `destabilization` pushes of 6-12 % against
/// the drive (the back-driven motor reporting the push's direction); `added_resistance` a torque
/// bias of -0.34 N·m and power up 0.05 W; `normal` none.
fn rig_like_exercise(kind: &str, hz: f64, seconds: f64, seed: u64) -> Vec<(f64, f64, f64, f64, f64, u8)> {
    let mut rng = Lcg(seed);
    let period = 30.0 + 20.0 * rng.next();
    let phase = rng.next();
    let mut pos = if kind == "gear_jam" { 1.2 } else { 30.0 };
    let pokes: Vec<f64> = (0..6).map(|k| 3.0 + (seconds - 6.0) * (k as f64 + rng.next()) / 6.0).collect();
    let (mut next_poke, mut poke_left, mut poke_dir, mut poke_step) = (0, 0, 0.0, 0.0);
    let mut out = Vec::new();
    for k in 0..(seconds * hz) as usize {
        let t = k as f64 / hz;
        let x = (t / period + phase).rem_euclid(1.0);
        let sp = 100.0 * (1.0 - (2.0 * x - 1.0).abs());
        let err = sp - pos;
        let d = if err.abs() > 0.4 { err.clamp(-4.8 / hz, 4.8 / hz) } else { 0.0 };
        let mut rot = if d > 0.0 {
            1
        } else if d < 0.0 {
            2
        } else {
            0
        };
        let mut new = pos + d;
        match kind {
            "gear_jam" => {
                new = 1.2;
                rot = if rng.next() < 0.1 { 1 } else { 0 };
            }
            "closure_blockage" => {
                new = new.clamp(11.0, 40.0);
                if new == pos && d != 0.0 && rng.next() < 0.7 {
                    rot = 0;
                }
            }
            "destabilization" => {
                if next_poke < pokes.len() && t >= pokes[next_poke] {
                    next_poke += 1;
                    poke_left = (0.8 * hz) as usize + 1;
                    poke_dir = if err > 0.0 { -1.0 } else { 1.0 };
                    poke_step = (6.0 + 6.0 * rng.next()) / poke_left as f64;
                }
                if poke_left > 0 {
                    poke_left -= 1;
                    new = pos + poke_dir * poke_step;
                    rot = if poke_dir > 0.0 { 1 } else { 2 };
                }
            }
            _ => {}
        }
        pos = new.clamp(0.0, 100.0);
        let (mut tq, mut pw) = match rot {
            1 => (-0.6 + 0.25 * rng.normal(), 0.17 + 0.07 * rng.normal()),
            2 => (0.58 + 0.25 * rng.normal(), 0.17 + 0.07 * rng.normal()),
            _ => (0.0, 0.0),
        };
        if kind == "added_resistance" && rot != 0 {
            tq -= 0.34;
            pw += 0.05;
        }
        if kind == "gear_jam" {
            pw = 0.004;
        }
        out.push((t, sp, (pos * 100.0).round() / 100.0, tq, pw.max(0.0), rot));
    }
    out
}

/// A fresh twin (no history, the template's prior) fed a short bench exercise opens the right
/// kind before 30 s, and nothing else, for each of the four hand-imposed kinds, at the rig's
/// 20.8 Hz and at 5 Hz, over 34 and 45 s; the healthy exercise raises nothing.
#[test]
fn a_fresh_twin_finds_each_hand_imposed_kind_in_a_short_bench_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for kind in ["gear_jam", "closure_blockage", "destabilization", "added_resistance", "normal"] {
        for (hz, seconds, seed) in [(20.8, 45.0, 1), (20.8, 34.0, 2), (5.0, 45.0, 3)] {
            let p = dir.path().join(format!("{kind}-{hz}-{seconds}.csv"));
            std::fs::write(&p, flox_csv(&rig_like_exercise(kind, hz, seconds, seed))).unwrap();
            let (code, out, err) = replay_rig(&p, &["--json"]);
            assert_eq!(code, 0, "{err}");
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            let found: Vec<(String, f64)> = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["kind"].as_str().unwrap().to_string(), f["after_s"].as_f64().unwrap()))
                .collect();
            let verdict = &r["verdicts"][0];
            let ok = if kind == "normal" {
                found.is_empty() && verdict["result"] == "healthy"
            } else {
                found.iter().all(|(k, _)| k == kind)
                    && found.iter().any(|(_, t)| *t < 30.0)
                    && verdict["result"] == "fault"
                    && verdict["kinds"][0] == kind
            };
            if !ok {
                failures.push(format!("{kind} at {hz} Hz over {seconds} s: {found:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every kind of imperfect row, a file per reason: the row is skipped (or its field held) and
/// counted by reason with its row; `--strict` refuses the file at that row; nothing aborts.
#[test]
fn imperfect_rows_are_skipped_and_counted_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rig_like_exercise("normal", 20.8, 20.0, 7);
    let clean = flox_csv(&rows);
    let lines: Vec<&str> = clean.lines().collect();
    // (name, edit of the clean file, expected reason text, samples fewer than the clean file's,
    // row named)
    let replace_cell = |row: usize, col: usize, v: &str| -> String {
        let mut ls: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let mut cells: Vec<&str> = ls[row - 1].split(',').collect();
        cells[col] = v;
        ls[row - 1] = cells.join(",");
        ls.join("\n") + "\n"
    };
    let mut cases: Vec<(&str, String, &str, usize, usize)> = vec![
        ("empty-position", replace_cell(40, 2, ""), "empty cell 1 (row 40", 1, 40),
        ("nan-setpoint", replace_cell(41, 7, "NaN"), "NaN or infinite value 1 (row 41", 1, 41),
        ("inf-position", replace_cell(42, 2, "inf"), "NaN or infinite value 1 (row 42", 1, 42),
        ("text-position", replace_cell(43, 2, "n/a"), "not a number 1 (row 43", 1, 43),
        ("no-time", replace_cell(44, 0, ""), "no time 1 (row 44", 1, 44),
        ("empty-torque", replace_cell(45, 4, ""), "field held from the row before 1 (row 45", 0, 45),
    ];
    let mut dup: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    dup.insert(50, dup[49].clone());
    // One row more than the clean file, one skipped: as many samples as the clean file.
    cases.push(("duplicate", dup.join("\n") + "\n", "duplicated time 1 (row 51", 0, 51));
    let mut back: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    back.swap(60, 61);
    cases.push(("backwards", back.join("\n") + "\n", "backwards time 1 (row 62", 1, 62));
    let truncated = clean.trim_end().to_string();
    let cut = truncated.rfind(',').unwrap();
    cases.push(("truncated", truncated[..cut - 10].to_string(), "truncated row 1", 1, lines.len()));
    for (name, text, reason, skipped, row) in &cases {
        let p = dir.path().join(format!("{name}.csv"));
        std::fs::write(&p, text).unwrap();
        let (code, out, err) = replay_rig(&p, &["--json"]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(err.contains(reason), "{name}: {err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["samples"].as_u64().unwrap() as usize, lines.len() - 1 - skipped, "{name}");
        let (code, _, err) = replay_rig(&p, &["--strict"]);
        assert_eq!(code, 2, "{name}: --strict accepted it");
        assert!(err.contains(&format!("row {row}:")) && err.contains("--strict"), "{name}: {err}");
    }
    // A BOM and CRLF line ends are read as if they were not there.
    let p = dir.path().join("bom-crlf.csv");
    std::fs::write(&p, format!("\u{feff}{}", clean.replace('\n', "\r\n"))).unwrap();
    let (code, out, err) = replay_rig(&p, &["--json", "--strict"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["samples"].as_u64().unwrap() as usize, lines.len() - 1);
    // The log's own clock in what is printed.
    assert_eq!(r["clock"], "utc");
    let (_, text, _) = replay_rig(&p, &[]);
    assert!(text.contains("2026-03-16T15:00:00.000Z"), "{text}");
}

/// A long silence in a replayed log raises `signal_loss`, as it would live; the gap is reported.
#[test]
fn a_gap_in_a_replayed_log_raises_signal_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = rig_like_exercise("normal", 20.8, 20.0, 9);
    for r in rig_like_exercise("normal", 20.8, 20.0, 10) {
        rows.push((r.0 + 90.0, r.1, r.2, r.3, r.4, r.5));
    }
    let p = dir.path().join("gap.csv");
    std::fs::write(&p, flox_csv(&rows)).unwrap();
    let (code, out, err) = replay_rig(&p, &["--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 gap over 10 s (longest 70."), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let loss: Vec<&serde_json::Value> =
        r["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "signal_loss").collect();
    assert_eq!(loss.len(), 1, "{}", r["findings"]);
    // Opened in the silence: 10 s offline plus its 30 s confirmation after the last sample.
    let opened = loss[0]["after_s"].as_f64().unwrap();
    assert!((55.0..65.0).contains(&opened), "{opened}");
    assert_eq!(r["findings"].as_array().unwrap().len(), 1, "{}", r["findings"]);
}

/// Another log format for the same unit, mapped without code changes: one supply-air setpoint
/// column instead of a heating and cooling pair, ISO times, extra columns (return fan, duct
/// static pressure), and empty cells: a command or flag holds its last value (counted), a row
/// with an empty temperature or a command never seen is skipped (counted), an empty setpoint
/// means none.
#[test]
fn a_log_with_one_setpoint_column_extra_columns_and_empty_cells_replays() {
    use twinfault::telemetry::logfile::Reason;
    let Some(data) = shared_data("lbnl-ahu") else { return };
    let text = std::fs::read_to_string(data.join("SZVAV.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}"));
    let cols = [
        at("AHU: Supply Air Temperature"),
        at("AHU: Supply Air Temperature Cooling Set Point"),
        at("AHU: Outdoor Air Temperature"),
        at("AHU: Mixed Air Temperature"),
        at("AHU: Return Air Temperature"),
        at("AHU: Supply Air Fan Status"),
        at("AHU: Outdoor Air Damper Control Signal"),
        at("AHU: Cooling Coil Valve Control Signal"),
        at("AHU: Heating Coil Valve Control Signal"),
        at("Occupancy Mode Indicator"),
    ];
    let mut csv = String::from("timestamp,sat,sat_sp,oat,mat,rat,fan,oad,chw,hw,occ,rf_speed,dsp\n");
    let (mut rows, mut blank_temps, mut blank_cmds) = (0, 0, 0);
    for (i, l) in lines.take(3 * 1440).enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        let (d, t) = f[0].split_once(' ').unwrap();
        let [m, day, y]: [u32; 3] = d.split('/').map(|x| x.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
        let (h, min) = t.split_once(':').unwrap();
        let iso =
            format!("{y}-{m:02}-{day:02}T{:02}:{:02}:00Z", h.parse::<u32>().unwrap(), min.parse::<u32>().unwrap());
        let mut cells: Vec<String> = cols.iter().map(|&c| f[c].trim().to_string()).collect();
        if i % 97 == 5 {
            cells[3].clear(); // mixed air: the row cannot be used
            blank_temps += 1;
        } else if i % 31 == 7 {
            cells[6].clear(); // the damper command: held from the row before
            blank_cmds += 1;
        }
        csv += &format!("{iso},{},0.55,1.2\n", cells.join(","));
        rows += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unit.csv");
    std::fs::write(&log, csv).unwrap();
    let map = dir.path().join("unit.toml");
    std::fs::write(
        &map,
        r#"format = "csv"
target = "ahu"
node = "ahu-szvav"
time_column = "timestamp"
time = "rfc3339"
temperature_unit = "fahrenheit"
command_scale = 100.0

[fields]
outdoor_air = "oat"
return_air = "rat"
mixed_air = "mat"
supply_air = "sat"
supply_air_setpoint = "sat_sp"
occupied = "occ"
fan = "fan"

[commands]
SZVAV-OAD = "oad"
SZVAV-CHW = "chw"
SZVAV-HW = "hw"
"#,
    )
    .unwrap();
    let facility = twinfault::load::facility(&root().join("twins/lbnl_szvav.toml"), None).unwrap();
    let mapping = twinfault::telemetry::replay::Mapping::load(&map).unwrap();
    let r = twinfault::telemetry::replay::replay_ahu(&log, &facility, &mapping, None, false).unwrap();
    // Every row is used but those without mixed air and the real log's own bad cells (it has a
    // "#VALUE!" in the outdoor air).
    let own = r.reading.count(Reason::NotANumber) + r.reading.count(Reason::NonFinite);
    assert_eq!(r.rows + blank_temps + own, rows, "{:?}", r.reading);
    assert!(own <= 2, "{:?}", r.reading);
    assert_eq!(r.reading.count(Reason::EmptyCell), blank_temps);
    assert_eq!(r.reading.count(Reason::HeldField), blank_cmds);
    assert_eq!(r.days.len(), 3, "{:?}", r.days);
    // A gap is a silence of five 1-minute rows, not every minute: only the nights between the
    // log's days (it holds daytime rows) or none.
    assert_eq!(r.reading.gap_over_ms, 300_000);
    assert!(r.reading.gaps <= 3, "{:?}", r.reading);
    // --strict refuses the first imperfect row, naming it.
    let e =
        format!("{:#}", twinfault::telemetry::replay::replay_ahu(&log, &facility, &mapping, None, true).unwrap_err());
    assert!(e.contains("unit.csv") && e.contains("row 7") && e.contains("mat"), "{e}");
}

/// The shipped family map reads a log of the multi-zone layout (one supply-air setpoint column,
/// return fan and duct static pressure columns, other column order, blank cells) as it reads
/// SZVAV's, with no code or map change, and the fork still names the heating valve.
#[test]
fn the_family_map_reads_a_single_setpoint_log_and_the_fork_still_names_the_valve() {
    let Some(data) = shared_data("lbnl-ahu") else { return };
    let text = std::fs::read_to_string(data.join("SZVAV.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}"));
    let take = [
        ("Datetime", "Datetime"),
        ("AHU: Supply Air Temperature", "AHU: Supply Air Temperature"),
        ("AHU: Supply Air Temperature Cooling Set Point", "AHU: Supply Air Temperature Set Point"),
        ("AHU: Outdoor Air Temperature", "AHU: Outdoor Air Temperature"),
        ("AHU: Mixed Air Temperature", "AHU: Mixed Air Temperature"),
        ("AHU: Return Air Temperature", "AHU: Return Air Temperature"),
        ("AHU: Supply Air Fan Status", "AHU: Supply Air Fan Status"),
        ("AHU: Supply Air Fan Status", "AHU: Return Air Fan Status"),
        ("AHU: Heating Coil Valve Control Signal", "AHU: Heating Coil Valve Control Signal"),
        ("AHU: Cooling Coil Valve Control Signal", "AHU: Cooling Coil Valve Control Signal"),
        ("AHU: Outdoor Air Damper Control Signal", "AHU: Outdoor Air Damper Control Signal"),
        ("Occupancy Mode Indicator", "Occupancy Mode Indicator"),
    ];
    let mut csv =
        take.iter().map(|(_, to)| *to).collect::<Vec<_>>().join(",") + ",AHU: Supply Air Duct Static Pressure\n";
    let mut blanked = 0;
    for (i, l) in lines.enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        let mut cells: Vec<String> = take.iter().map(|(from, _)| f[at(from)].trim().to_string()).collect();
        if i % 53 == 11 {
            cells[8].clear(); // the heating valve's command: held from the row before
            blanked += 1;
        }
        csv += &format!("{},1.5\n", cells.join(","));
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mzvav.csv");
    std::fs::write(&log, csv).unwrap();
    let facility = twinfault::load::facility(&root().join("twins/lbnl_szvav.toml"), None).unwrap();
    let mapping = twinfault::telemetry::replay::Mapping::load(&root().join("maps/lbnl-ahu.toml")).unwrap();
    let labels = data.join("SZVAV_fault_days.csv");
    let r = twinfault::telemetry::replay::replay_ahu(&log, &facility, &mapping, Some(&labels), false).unwrap();
    assert!(r.rows > 15_000, "{:?}", r.reading);
    assert_eq!(r.reading.count(twinfault::telemetry::logfile::Reason::HeldField), blanked);
    for d in ["2017-09-12", "2017-09-14", "2017-09-15"] {
        let day = r.days.iter().find(|x| x.date == d).unwrap();
        assert_eq!(day.fork.as_ref().and_then(|k| k.device.as_deref()), Some("SZVAV-HW"), "{day:?}");
    }
    let (right, faulted) = r.right_component_first.unwrap();
    assert!(right >= 4 && faulted == 7, "{right} of {faulted}");
    // A log without a column the map requires is refused, naming the columns it looked for.
    std::fs::write(&log, "Datetime,AHU: Supply Air Temperature\n9/11/2017 0:00,70\n").unwrap();
    let e =
        format!("{:#}", twinfault::telemetry::replay::replay_ahu(&log, &facility, &mapping, None, false).unwrap_err());
    assert!(
        e.contains("mzvav.csv") && e.contains("\"AHU: Outdoor Air Temperature\" or \"AHU: Outside Air Temperature\""),
        "{e}"
    );
}

/// `twinfault bench --fork LOG` times the fork on a real log (the figure is the README's; this
/// checks only that the bench runs the diagnoses it reports).
#[test]
fn the_fork_bench_runs_a_diagnosis_per_operating_hour_of_a_log() {
    let Some(data) = shared_data("lbnl-ahu") else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["bench", "--fork"])
        .arg(data.join("SZVAV.csv"))
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let n: usize =
        text.split(" diagnoses").next().and_then(|s| s.rsplit(' ').next()).and_then(|s| s.parse().ok()).unwrap();
    // Eleven days, occupied about twelve hours each.
    assert!((100..=200).contains(&n), "{text}");
    assert!(text.contains("28 hypotheses each") && text.contains("median"), "{text}");
}
