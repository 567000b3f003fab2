//! Real telemetry into twins: the ingest format and its validation, shared by HTTP, MQTT and
//! NDJSON replay ([`payload`]); the one tolerant reader of real logs ([`logfile`]); the Belimo
//! rig's CSVs ([`rig`]); and `twinfault replay` ([`replay`]).

pub mod logfile;
pub mod payload;
pub mod replay;
pub mod rig;
