//! The wall clock, read here and nowhere else in the product crate: the live server's time, the
//! audit log's timestamps and run metadata. Simulated runs never read it (their time is
//! `SimTime` from the scenario).

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
