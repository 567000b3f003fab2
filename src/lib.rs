//! # twinfault
//!
//! The product crate: actix actors around the deterministic core ([`twinfault_core`]), the sled
//! store, the live server, the operations agent, datasets and the command line. See
//! `ARCHITECTURE.md` for the map.

pub mod agent;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod dataset;
pub mod fleet;
pub mod live;
pub mod render;
pub mod serve;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod validate;

/// Twin and scenario files and the classifier they name (the loader crate the visualizer shares).
pub use twinfault_load as load;
