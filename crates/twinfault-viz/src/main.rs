//! `twinfault-viz SCENARIO [--speed N] [--screenshot PNG] [--inject-at S:NODE:KIND:SEVERITY] [--select NODE] [--frames N] [--ahus N --actuators-per-ahu M]`

use std::path::PathBuf;
use twinfault_core::types::FaultKind;
use twinfault_viz::app::{Options, run};
use twinfault_viz::state::{InjectForm, Sim};

fn usage() -> ! {
    eprintln!(
        "usage: twinfault-viz SCENARIO [--speed N] [--screenshot PNG] [--inject-at S:NODE:KIND:SEVERITY] [--select NODE]"
    );
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut scenario = None;
    let mut opts = Options { speed: 60.0, screenshot: None, inject_at: None, select: None, frames: None };
    let (mut ahus, mut per_ahu) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--speed" => {
                opts.speed =
                    args.next().and_then(|s| s.parse().ok()).filter(|s: &f64| *s > 0.0).unwrap_or_else(|| usage())
            }
            "--screenshot" => opts.screenshot = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "--inject-at" => {
                let spec = args.next().unwrap_or_else(|| usage());
                let parts: Vec<&str> = spec.split(':').collect();
                let [at, node, kind, severity] = parts[..] else { usage() };
                let (Ok(at), Some(kind)) = (at.parse::<f64>(), FaultKind::parse(kind)) else { usage() };
                opts.inject_at = Some((at, InjectForm { node: node.into(), kind, severity: severity.into() }));
            }
            "--select" => opts.select = Some(args.next().unwrap_or_else(|| usage())),
            "--frames" => {
                opts.frames =
                    Some(args.next().and_then(|s| s.parse().ok()).filter(|n: &u32| *n >= 10).unwrap_or_else(|| usage()))
            }
            "--ahus" => ahus = Some(args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())),
            "--actuators-per-ahu" => {
                per_ahu = Some(args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()))
            }
            "-h" | "--help" => usage(),
            s if scenario.is_none() && !s.starts_with('-') => scenario = Some(PathBuf::from(s)),
            _ => usage(),
        }
    }
    let Some(path) = scenario else { usage() };
    let campus = match (ahus, per_ahu) {
        (None, None) => None,
        (a, m) => {
            Some(twinfault_core::scenario::CampusSize { ahus: a.unwrap_or(10), actuators_per_ahu: m.unwrap_or(100) })
        }
    };
    let loaded = match twinfault::load::scenario(&path, campus) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    run(Sim::new(loaded.scenario, loaded.facility), opts);
}
