//! Other assets as data: NASA C-MAPSS files, training and the benchmark ([`cmapss`]), and a
//! fleet's member and fleet actors and `replay` into them ([`actors`]). A fleet served over HTTP
//! is `crate::serve::fleet`.

pub mod actors;
pub mod cmapss;
