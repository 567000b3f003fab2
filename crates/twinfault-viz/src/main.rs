//! `twinfault-viz SCENARIO [--speed N] [--screenshot PNG] [--inject-at S:NODE:KIND:SEVERITY] [--select NODE]`

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
    let mut opts = Options { speed: 60.0, screenshot: None, inject_at: None, select: None };
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
            "-h" | "--help" => usage(),
            s if scenario.is_none() && !s.starts_with('-') => scenario = Some(PathBuf::from(s)),
            _ => usage(),
        }
    }
    let Some(path) = scenario else { usage() };
    let loaded = match twinfault::load::scenario(&path, None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    run(Sim::new(loaded.scenario, loaded.facility), opts);
}
