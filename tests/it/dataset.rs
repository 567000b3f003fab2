//! Training data end to end on real files: generate (determinism at any job count, the card's
//! counts, splits by run, invariant checks), evaluate, train and the model file.

use crate::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use twinfault::dataset::evaluate::{Dataset, Detector, evaluate, feature_rows};
use twinfault::dataset::generate::{Format, Request, check, generate, load_campaign, simulate};
use twinfault::dataset::model::{Model, TrainParams};
use twinfault::dataset::table::{Col, read_parquet};

/// The shipped campaign made small: short runs, two or three faults each.
fn small_campaign(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("campaigns/actuator_faults.toml")).unwrap();
    let mut c: toml::Table = text.parse().unwrap();
    let set = |c: &mut toml::Table, path: &[&str], v: toml::Value| {
        let mut t = c;
        for k in &path[..path.len() - 1] {
            t = t.get_mut(*k).and_then(|x| x.as_table_mut()).expect("the shipped campaign has this table");
        }
        assert!(t.insert(path[path.len() - 1].to_string(), v).is_some(), "the shipped campaign has {path:?}");
    };
    let facility = root().join("twins/datacenter.toml").display().to_string();
    set(&mut c, &["facility"], facility.into());
    set(&mut c, &["duration_s"], toml::Value::try_from([1500, 2100]).unwrap());
    set(&mut c, &["schedule", "lead_s"], toml::Value::try_from([0, 300]).unwrap());
    set(&mut c, &["schedule", "startup_s"], toml::Value::try_from([300, 600]).unwrap());
    set(&mut c, &["faults", "onset_s"], toml::Value::try_from([200, 900]).unwrap());
    let per_run: toml::Table = "\"2\" = 1.0\n\"3\" = 1.0".parse().unwrap();
    set(&mut c, &["faults", "per_run"], per_run.into());
    let path = dir.join("small.toml");
    std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
    path
}

fn request(campaign: &Path, out: &Path, runs: usize, jobs: usize, format: Format) -> Request {
    Request {
        campaign: campaign.into(),
        out: out.into(),
        runs: Some(runs),
        seed: 7,
        jobs,
        format,
        progress: false,
        shard: None,
    }
}

/// `generate --shard K/N` writes a contiguous part of the runs; the parts, merged, are the files
/// of one run of the whole campaign, byte for byte (Parquet, CSV and the card), so a batch
/// scheduler can spread a campaign with no coordinator.
#[test]
fn the_parts_of_a_sharded_campaign_merge_into_the_single_runs_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = small_campaign(dir.path());
    let whole = dir.path().join("whole");
    generate(&request(&campaign, &whole, 5, 2, Format::Both)).unwrap();
    // Three parts of five runs (1, 2 and 2 runs), written out of order, merged by the CLI.
    let mut parts = Vec::new();
    for k in [2, 0, 1] {
        let part = dir.path().join(format!("part{k}"));
        generate(&Request { shard: Some((k, 3)), ..request(&campaign, &part, 5, 1, Format::Both) }).unwrap();
        parts.push(part);
    }
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("part1/dataset.json")).unwrap()).unwrap();
    assert_eq!(card["shard"]["runs"], serde_json::json!([1, 3]), "{}", card["shard"]);
    let merged = dir.path().join("merged");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["generate", "--out", merged.to_str().unwrap(), "--merge"])
        .args(&parts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "samples.parquet",
        "windows.parquet",
        "ahus.parquet",
        "findings.parquet",
        "samples.csv",
        "windows.csv",
        "ahus.csv",
        "findings.csv",
        "dataset.json",
    ] {
        let (a, b) = (std::fs::read(whole.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap());
        assert!(a == b, "{f} differs: {} against {} bytes", a.len(), b.len());
    }
    // Parts missing one, or from another seed, are refused.
    let e = twinfault::dataset::generate::merge(&parts[..2], &dir.path().join("x")).unwrap_err();
    assert!(format!("{e:#}").contains("0..3 of 3"), "{e:#}");
    let other = dir.path().join("other");
    generate(&Request { seed: 8, shard: Some((1, 3)), ..request(&campaign, &other, 5, 1, Format::Both) }).unwrap();
    let e = twinfault::dataset::generate::merge(&[parts[0].clone(), parts[1].clone(), other], &dir.path().join("y"))
        .unwrap_err();
    assert!(format!("{e:#}").contains("seed"), "{e:#}");
}

#[test]
fn generate_is_deterministic_counts_match_and_splits_are_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = small_campaign(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let sa = generate(&request(&campaign, &a, 6, 1, Format::Both)).unwrap();
    let sb = generate(&request(&campaign, &b, 6, 2, Format::Parquet)).unwrap();
    assert_eq!((sb.samples, sb.windows), (sa.samples, sa.windows));
    assert_eq!((sa.runs_written, sa.runs_rejected), (6, 0));
    assert!(sa.samples > 100_000, "{} samples", sa.samples);
    for f in ["samples.parquet", "windows.parquet", "ahus.parquet"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between 1 and 2 jobs"
        );
    }
    let card_a: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("dataset.json")).unwrap()).unwrap();
    let card_b: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(card_a["counts"], card_b["counts"]);
    assert_eq!(card_a["run_list"], card_b["run_list"]);
    // A different seed draws different runs.
    let c = dir.path().join("c");
    generate(&Request { seed: 8, ..request(&campaign, &c, 6, 2, Format::Parquet) }).unwrap();
    assert!(std::fs::read(a.join("windows.parquet")).unwrap() != std::fs::read(c.join("windows.parquet")).unwrap());

    // The card's class counts are the data's, per table and split.
    for (table, label) in [("samples", "fault_kind"), ("windows", "label")] {
        let t = read_parquet(&a.join(format!("{table}.parquet"))).unwrap();
        let (Col::Str { dict: sd, codes: sc }, Col::Str { dict: ld, codes: lc }) =
            (t.col("split").unwrap(), t.col(label).unwrap())
        else {
            panic!("text columns")
        };
        let mut counted: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (s, l) in sc.iter().zip(lc) {
            *counted.entry(sd[*s as usize].to_string()).or_default().entry(ld[*l as usize].to_string()).or_default() +=
                1;
        }
        assert_eq!(serde_json::to_value(&counted).unwrap(), card_a["counts"][table], "{table} counts");
    }
    assert_eq!(card_a["totals"]["samples"], sa.samples);
    // Every run is in exactly one split, and every row of a run carries that split.
    let t = read_parquet(&a.join("windows.parquet")).unwrap();
    let (Col::I32(run), Col::Str { dict, codes }) = (t.col("run").unwrap(), t.col("split").unwrap()) else { panic!() };
    let mut split_of: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for (r, s) in run.iter().zip(codes) {
        split_of.entry(*r).or_default().insert(dict[*s as usize].to_string());
    }
    assert_eq!(split_of.len(), 6);
    assert!(split_of.values().all(|s| s.len() == 1), "a run spans splits: {split_of:?}");
    let lists: Vec<BTreeSet<u64>> = ["train", "validation", "test"]
        .iter()
        .map(|s| card_a["splits"][s].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect())
        .collect();
    assert!(lists[0].is_disjoint(&lists[1]) && lists[0].is_disjoint(&lists[2]) && lists[1].is_disjoint(&lists[2]));
    assert_eq!(lists.iter().map(BTreeSet::len).sum::<usize>(), 6);
    for (r, s) in &split_of {
        let k = ["train", "validation", "test"].iter().position(|x| s.contains(*x)).unwrap();
        assert!(lists[k].contains(&(*r as u64)), "run {r} is in {s:?} but the card says otherwise");
    }
    // CSV: the same rows as the Parquet file.
    let csv = std::fs::read_to_string(a.join("windows.csv")).unwrap();
    assert_eq!(csv.lines().count() - 1, t.rows());
    assert!(csv.lines().next().unwrap().starts_with("run,split,node,t_start_ms,t_end_ms,role,phase,label"));
}

#[test]
fn the_invariant_check_rejects_a_corrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (campaign, facility, _) = load_campaign(&small_campaign(dir.path())).unwrap();
    let spec = campaign.draw(&facility, 0, 3, twinfault_core::campaign::Split::Train);
    let mut run = simulate(&spec, campaign.windows);
    assert_eq!(check(&run), Ok(()));
    let k = run.samples.position.len() / 2;
    let saved = run.samples.position[k];
    run.samples.position[k] = 140.0;
    assert!(check(&run).unwrap_err().contains("position_pct 140 is outside the travel"), "{:?}", check(&run));
    run.samples.position[k] = f32::NAN;
    assert!(check(&run).unwrap_err().contains("position_pct is NaN"));
    run.samples.position[k] = saved;
    // Mixed air outside its two inlets on a healthy, running AHU.
    let j = (0..run.ahus.t_ms.len()).find(|&j| run.ahus.phase[j] == 2 && run.ahus.root_cause[j].is_none()).unwrap();
    run.ahus.temps[2][j] = run.ahus.temps[0][j].max(run.ahus.temps[1][j]) + 5.0;
    assert!(check(&run).unwrap_err().contains("mixed air"), "{:?}", check(&run));
}

#[test]
fn evaluate_and_train_end_to_end_and_the_model_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = small_campaign(dir.path());
    let data = dir.path().join("data");
    generate(&request(&campaign, &data, 8, 2, Format::Parquet)).unwrap();
    let ds = Dataset::load(&data, None).unwrap();

    // The rules: every window of the split scored, every injected fault accounted for.
    let e = evaluate(&ds, &Detector::Rules, None).unwrap();
    assert_eq!(e.runs, 8);
    assert_eq!(e.windows, ds.windows.rows() as u64);
    assert_eq!(e.scores.iter().map(|s| s.support).sum::<u64>(), e.windows);
    let injected: usize =
        ds.card["run_list"].as_array().unwrap().iter().map(|r| r["faults"].as_array().unwrap().len()).sum();
    assert_eq!(e.detections.len(), injected);
    assert!(e.detections.iter().any(|d| d.latency_s.is_some()), "the rules detected nothing");
    assert!(e.detections.iter().filter_map(|d| d.latency_s).all(|l| l >= 0.0));
    assert!(e.device_days > 0.0);
    // The device rules replayed over the written samples find exactly what the same rules found
    // while the data was generated.
    let replayed: BTreeSet<(i32, String, String, i64)> =
        twinfault::dataset::evaluate::replay_rules(&ds, &ds.runs(None))
            .unwrap()
            .into_iter()
            .filter(|a| a.source == "device")
            .map(|a| (a.run, a.node, a.kind.to_string(), a.opened_ms))
            .collect();
    let f = &ds.findings;
    let (
        Col::I32(run),
        Col::Str { dict: nd, codes: nc },
        Col::Str { dict: kd, codes: kc },
        Col::Str { dict: cd, codes: cc },
        Col::I64(t),
    ) = (
        f.col("run").unwrap(),
        f.col("node").unwrap(),
        f.col("kind").unwrap(),
        f.col("change").unwrap(),
        f.col("t_ms").unwrap(),
    )
    else {
        panic!("finding columns")
    };
    let recorded: BTreeSet<(i32, String, String, i64)> = (0..t.len())
        .filter(|&j| &*cd[cc[j] as usize] == "opened" && nd[nc[j] as usize].starts_with("BEL-"))
        .map(|j| (run[j], nd[nc[j] as usize].to_string(), kd[kc[j] as usize].to_string(), t[j]))
        .collect();
    assert!(!recorded.is_empty());
    assert_eq!(replayed, recorded, "replayed device rules differ from the run's own");

    // A small model: trained, saved, loaded, predicting the same on every window.
    let params = TrainParams { trees: 8, per_class: 300, ..TrainParams::default() };
    let rows = feature_rows(&ds).unwrap();
    let y = twinfault::dataset::evaluate::labels(&ds).unwrap();
    let classes = twinfault::dataset::generate::classes().iter().map(|s| s.to_string()).collect();
    let m = Model::train(&rows, &y, classes, 60.0, params, serde_json::json!({})).unwrap();
    let path = dir.path().join("models/m.json");
    m.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    let same = rows.iter().all(|r| m.predict(r) == back.predict(r));
    assert!(same, "predictions changed through the file");
    // It learned something: on its own training windows it beats always-normal.
    let right = rows.iter().zip(&y).filter(|(r, y)| back.predict(r).0 == **y && **y != 0).count();
    assert!(right > 0, "the model never recognised a fault window");
    // Files of another version or feature schema are refused with a clear message.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["version"] = 99.into();
    std::fs::write(dir.path().join("v99.json"), v.to_string()).unwrap();
    assert!(Model::load(&dir.path().join("v99.json")).unwrap_err().to_string().contains("version 99"));
    v["version"] = 1.into();
    v["features"].as_array_mut().unwrap().pop();
    std::fs::write(dir.path().join("f.json"), v.to_string()).unwrap();
    assert!(Model::load(&dir.path().join("f.json")).unwrap_err().to_string().contains("other features"));

    // Charts are real PNGs.
    let cm = dir.path().join("cm.png");
    twinfault::dataset::charts::confusion(&e.confusion, "confusion", &cm).unwrap();
    let hist = dir.path().join("lat.png");
    let lat: Vec<f64> = e.detections.iter().filter_map(|d| d.latency_s).collect();
    twinfault::dataset::charts::latency_histogram(&lat, "latency", &hist).unwrap();
    for p in [&cm, &hist] {
        let head = std::fs::read(p).unwrap();
        assert!(head.starts_with(b"\x89PNG") && head.len() > 2000, "{}", p.display());
    }
    // Realism against the real rig, when this machine has it.
    if let Some(rig) = crate::shared_data("belimo-rig") {
        let r = twinfault::dataset::realism::run(&rig, &data, 10.0, 0.3, None, false).unwrap();
        assert!(r.real_windows > 100 && r.synthetic_windows > 100, "{} / {}", r.real_windows, r.synthetic_windows);
        assert!((0.0..=0.6).contains(&r.knn_mixing) && r.mmd >= 0.0);
        assert_eq!(r.ks.len(), twinfault::dataset::realism::COMPARED.len());
        assert!(r.ks.iter().all(|(_, d)| (0.0..=1.0).contains(d)));
    }

    // The model scored by the same evaluation.
    let me = evaluate(&ds, &Detector::Model(path.clone()), None).unwrap();
    assert_eq!(me.windows, e.windows);
    let both = evaluate(&ds, &Detector::Both(path), None).unwrap();
    assert_eq!(both.detections.len(), injected);
}

#[test]
fn a_broken_campaign_gets_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(small_campaign(dir.path())).unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, good.replace("gear_jam = 1.0", "gear_jammed = 1.0")).unwrap();
    assert!(good.contains("gear_jam = 1.0") && good.contains("train = 0.6"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["generate", "--campaign", path.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad input exits 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml") && err.contains("faults.kinds.gear_jammed"), "{err}");
    std::fs::write(&path, good.replace("train = 0.6", "train = 0.9")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["generate", "--campaign", path.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("splits") && err.contains("must be 1"), "{err}");
}

#[test]
fn a_trained_model_runs_inside_the_twins_beside_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = small_campaign(dir.path());
    let data = dir.path().join("data");
    generate(&request(&campaign, &data, 16, 2, Format::Parquet)).unwrap();
    let model = dir.path().join("model.json");
    let params = TrainParams { trees: 20, ..TrainParams::default() };
    twinfault::dataset::train::train(&data, &model, params, None).unwrap();

    // The reference floor naming the model.
    let twins = crate::copy_twins(dir.path());
    let text = std::fs::read_to_string(twins.join("datacenter.toml")).unwrap();
    let named = text.replacen(
        "name = \"datacenter\"",
        &format!("name = \"datacenter\"\nclassifier = {:?}", model.display().to_string()),
        1,
    );
    assert_ne!(named, text);
    std::fs::write(twins.join("datacenter.toml"), named).unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::copy(root().join("scenarios/datacenter_multi_fault.toml"), scenarios.join("s.toml")).unwrap();
    let with = twinfault::load::scenario(&scenarios.join("s.toml"), None).unwrap();
    assert!(with.facility.classifier.is_some());
    let without = crate::load("datacenter_multi_fault.toml");

    // Deterministic at any thread count, and the rules decide exactly what they decide alone:
    // the model adds verdicts, never a status.
    let a = crate::run(&with, 1, None);
    let b = crate::run(&with, 2, None);
    assert_eq!(a.report.event_log_sha256, b.report.event_log_sha256);
    let plain = crate::run(&without, 2, None);
    assert_eq!(a.report.detections, plain.report.detections);
    assert_eq!(a.report.expectations, plain.report.expectations);
    let statuses = |log: &[String]| -> Vec<String> {
        log.iter().filter(|l| l.contains("\"event\":\"status\"")).cloned().collect()
    };
    assert_eq!(statuses(&a.log_lines), statuses(&plain.log_lines));
    let model_lines: Vec<&String> = a.log_lines.iter().filter(|l| l.contains("\"source\":\"model\"")).collect();
    assert!(!plain.log_lines.iter().any(|l| l.contains("\"source\":\"model\"")));
    assert_eq!(
        model_lines.iter().filter(|l| l.contains("\"change\":\"opened\"")).count(),
        a.report.model_verdicts.len()
    );
    for v in &a.report.model_verdicts {
        assert!(v.summary.contains("rules"), "a verdict says what the rules think: {}", v.summary);
    }

    // The real rig's healthy recordings through the twin with the model: no fault from either.
    if let Some(rig) = crate::shared_data("belimo-rig") {
        let mut files = 0;
        for sub in ["flox", "pulse"] {
            for e in std::fs::read_dir(rig.join(sub)).unwrap() {
                let path = e.unwrap().path();
                let opts = twinfault::telemetry::replay::ReplayOptions {
                    node: Some("BEL-VNT-001".into()),
                    map: None,
                    speed: None,
                    strict: false,
                };
                let r = twinfault::telemetry::replay::replay(&path, &with.facility, &opts).unwrap();
                assert!(r.findings.is_empty(), "{}: {:?}", path.display(), r.findings);
                files += 1;
            }
        }
        assert!(files >= 10, "{files} recordings");
    }

    // A facility naming a model that is not there: one clear error.
    let broken = std::fs::read_to_string(twins.join("datacenter.toml")).unwrap().replace("model.json", "missing.json");
    std::fs::write(twins.join("datacenter.toml"), broken).unwrap();
    let err = twinfault::load::facility(&twins.join("datacenter.toml"), None).unwrap_err().to_string();
    assert!(err.contains("datacenter.toml") && err.contains("classifier") && err.contains("missing.json"), "{err}");
}

#[test]
fn the_shipped_campaigns_load_and_draw_runs_their_facility_can_run() {
    for name in ["actuator_faults.toml", "rig_bench.toml"] {
        let (c, f, _) = load_campaign(&root().join("campaigns").join(name)).unwrap();
        let spec = c.draw(&f, 0, 0, twinfault_core::campaign::Split::Train);
        spec.scenario.check_against(&spec.facility, name, "").unwrap();
        assert!(spec.scenario.duration.0 > 0 && spec.scenario.sample_rate_hz >= c.sample_rate_hz[0]);
    }
    // Every injectable kind appears in the shipped training campaign.
    let (c, _, _) = load_campaign(&root().join("campaigns/actuator_faults.toml")).unwrap();
    let kinds: Vec<_> = c.kinds().into_iter().filter(|k| k.1 > 0.0).map(|k| k.0).collect();
    for k in twinfault_core::types::FaultKind::ALL.iter().filter(|k| k.injectable()) {
        assert!(kinds.contains(k), "{k} missing from campaigns/actuator_faults.toml");
    }
}

#[test]
fn a_labelled_real_log_is_scored_like_a_dataset() {
    let Some(rig) = crate::shared_data("belimo-rig") else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(rig.join("flox/baseline_normal__normal__20260319_001356.csv")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let col = lines[0].split(',').position(|h| h == "anomaly_type").expect("the rig labels its rows");
    // The second half of the healthy recording labelled as a jam: one labelled fault that the
    // rules must not find (the device was healthy), windows labelled by the column.
    let half = lines.len() / 2;
    let relabel = |from: &str, to: &str| -> String {
        let mut out = vec![lines[0].to_string()];
        for (i, l) in lines.iter().enumerate().skip(1) {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            if i >= half {
                assert_eq!(f[col], from);
                f[col] = to.to_string();
            }
            out.push(f.join(","));
        }
        out.join("\n") + "\n"
    };
    let file = dir.path().join("labelled.csv");
    std::fs::write(&file, relabel("normal", "gear_jam")).unwrap();
    let facility = root().join("twins/datacenter.toml");
    let log = twinfault::dataset::evaluate::RealLog {
        file: &file,
        facility: &facility,
        node: "BEL-VNT-001",
        map: None,
        label_column: "anomaly_type",
        window: twinfault_core::campaign::WindowSpec { length_s: 10.0, stride_s: 5.0 },
        strict: false,
    };
    let ds = Dataset::from_real(&log).unwrap();
    let e = evaluate(&ds, &Detector::Rules, None).unwrap();
    assert_eq!(e.detections.len(), 1, "one labelled fault");
    assert_eq!((e.detections[0].kind.as_str(), e.detections[0].latency_s), ("gear_jam", None));
    let jam = e.scores.iter().find(|s| s.class == "gear_jam").unwrap();
    let normal = e.scores.iter().find(|s| s.class == "normal").unwrap();
    assert!(jam.support >= 2 && normal.support >= 2, "{} jam and {} normal windows", jam.support, normal.support);
    assert_eq!(jam.support + normal.support, e.windows);
    assert_eq!(e.false_alarms, 0);
    // A label that is no fault kind: one error naming the row and the column.
    std::fs::write(&file, relabel("normal", "jammed")).unwrap();
    let err = Dataset::from_real(&log).err().unwrap().to_string();
    assert!(err.contains("labelled.csv") && err.contains("anomaly_type") && err.contains("\"jammed\""), "{err}");
}
