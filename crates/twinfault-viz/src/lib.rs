//! # twinfault-viz
//!
//! The desktop visualizer: a scenario stepped in-process and paced, drawn as a facility map
//! (bevy 2D) under egui panels: ranked issues, the selected device's live charts and fault
//! history, the hierarchy with search, play/pause/step/speed, and live fault injection.
//! The panel logic lives in [`state`] as plain code with unit tests; [`app`] draws it. A fleet of
//! other assets (C-MAPSS turbofans) replayed in-process is drawn by [`fleet`]. The operations
//! agent answers in-process too ([`agent`]: the server's own chat and tools over the run).

pub mod agent;
pub mod app;
pub mod fleet;
pub mod remote;
pub mod state;
