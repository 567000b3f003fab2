//! # twinfault
//!
//! The product crate: actix actors around the deterministic core ([`twinfault_core`]), the sled
//! store, the scenario runner and the command line. See `ARCHITECTURE.md` for the actor tree.

pub mod agent;
pub mod bench;
pub mod calibrate;
pub mod clock;
pub mod cmapss;
pub mod dataset;
pub mod engine;
pub mod fleet;
pub mod fleet_serve;
pub mod live;
pub mod logfile;
pub mod render;
pub mod replay;
pub mod rig;
pub mod runner;
pub mod serve;
pub mod store;
pub mod validate;

/// Twin and scenario files and the classifier they name (the loader crate the visualizer shares).
pub use twinfault_load as load;
