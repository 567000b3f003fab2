//! Training data: campaigns drawn into runs, simulated and labelled ([`generate`]), the tables
//! they are written as ([`table`]).

pub mod generate;
pub mod table;
