//! Integration tests: the product as a user runs it, on real files, a real sled store and the
//! real binary. One test binary with modules (see docs/style: ripgrep, NeXosim).

mod agent;
mod calibration;
mod chart;
mod cli;
mod cluster;
mod cmapss;
mod dataset;
mod determinism;
mod errors;
mod hardening;
mod hierarchy;
mod ingest;
mod mqtt;
mod replay;
mod scenarios;
mod server;
mod store;

use std::path::{Path, PathBuf};
use twinfault::load::Loaded;
use twinfault::sim::runner::{RunOptions, RunResult};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn load(scenario: &str) -> Loaded {
    twinfault::load::scenario(&root().join("scenarios").join(scenario), None).expect("scenario loads")
}

pub fn run(loaded: &Loaded, threads: usize, store: Option<PathBuf>) -> RunResult {
    let opts = RunOptions { threads, store, speed: None, progress: false, seed: None };
    twinfault::sim::runner::run(loaded, &opts).expect("run completes")
}

/// The shared data folder beside the project, when this machine has it. Where it must be (CI
/// sets `TWINFAULT_REQUIRE_SHARED_DATA`), a missing folder fails the test instead of skipping it.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let p = root().join("..").join("shared").join("data").join(sub);
    if p.is_dir() {
        Some(p)
    } else if std::env::var_os("TWINFAULT_REQUIRE_SHARED_DATA").is_some() {
        panic!("{} is missing, and TWINFAULT_REQUIRE_SHARED_DATA says it must be here", p.display());
    } else {
        eprintln!("SKIPPED: {} is not on this machine; the checks that need it did not run", p.display());
        None
    }
}

/// Copies the repo's twins into `dir/twins`, so a test can break one file.
pub fn copy_twins(dir: &Path) -> PathBuf {
    let twins = dir.join("twins");
    std::fs::create_dir_all(&twins).unwrap();
    for e in std::fs::read_dir(root().join("twins")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), twins.join(e.file_name())).unwrap();
    }
    twins
}
