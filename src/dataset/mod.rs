//! Training data: campaigns drawn into runs, simulated and labelled ([`generate`]), the tables
//! they are written as ([`table`]), detector scores ([`evaluate`], [`metrics`]) and the learned
//! window classifier ([`model`], [`train`]).

pub mod charts;
pub mod evaluate;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod realism;
pub mod table;
pub mod train;
