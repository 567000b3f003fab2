//! # twinfault-core
//!
//! The deterministic heart of twinfault: device models, fault injection, windowed detection rules,
//! twin and scenario files, expectations and the report. It does no I/O, spawns no threads and never
//! reads the wall clock; the `twinfault` crate wraps it in actix actors, a sled store and a CLI.
//!
//! ```text
//!              plant            ← worst status of its AHUs; plant load
//!             /     \
//!         ahu-01   ahu-02       ← schedule, PI loops, thermal model, AHU rules
//!        /  |  \      ...
//!   BEL-VNT-001 ...             ← actuator model + device rules
//! ```
//!
//! One simulation step of a device is [`actuator::Actuator::step`]; its detector is
//! [`detect::ActuatorDetector::observe`]. An AHU epoch is [`ahu::Ahu::commands`] then
//! [`ahu::Ahu::advance`].

pub mod actuator;
pub mod ahu;
pub mod asset;
pub mod campaign;
pub mod classify;
pub mod config;
pub mod counterfactual;
pub mod detect;
pub mod event;
pub mod fault;
pub mod features;
pub mod layout;
pub mod ledger;
pub mod plain;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod time;
pub mod twin;
pub mod types;

pub use types::*;

#[cfg(test)]
mod testkit;
