//! Training data: campaigns drawn into runs, simulated and labelled ([`generate`]), the tables
//! they are written as ([`table`]), detector scores ([`evaluate`], [`metrics`]) and the learned
//! window classifier ([`model`], [`train`]).

pub mod charts;
pub mod evaluate;
pub mod generate;
pub mod metrics;
pub mod realism;
pub mod table;
pub mod train;

/// The learned window classifier; it lives in the loader crate, which loads it with a facility.
pub use twinfault_load::model;
