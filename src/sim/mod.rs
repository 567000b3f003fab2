//! Simulated runs on actors: the actor tree and its messages ([`engine`]), a scenario run end to
//! end with its clock loop, hash, report and store ([`runner`]), and the speed benchmark
//! ([`bench`]).

pub mod bench;
pub mod engine;
pub mod runner;
