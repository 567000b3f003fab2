//! Other assets as data: NASA C-MAPSS files, training and the benchmark ([`cmapss`]), a fleet's
//! member and fleet actors and `replay` into them ([`actors`]), and a fleet served over HTTP
//! ([`serve`]).

pub mod actors;
pub mod cmapss;
pub mod serve;
