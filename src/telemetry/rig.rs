//! Reading recordings of the real Belimo rig (the `flox` 20 Hz exports and the `pulse` bench
//! tests) into samples, with times relative to the first row.

use crate::telemetry::logfile::{self, Reason, Tally, TimeOrder};
use anyhow::{Context, Result, bail};
use std::path::Path;
use twinfault_core::SimTime;
use twinfault_core::actuator::Sample;
use twinfault_core::time::parse_timestamp_ms;

/// Rotation from the rig's codes: 0/1/2, 0.0/1.0/2.0, or opening/closing/stopped.
pub fn parse_rotation(s: &str) -> Option<u8> {
    match s.trim() {
        "0" | "0.0" | "stopped" | "idle" => Some(0),
        "1" | "1.0" | "opening" => Some(1),
        "2" | "2.0" | "closing" => Some(2),
        _ => None,
    }
}

/// One recording of the rig.
pub struct Recording {
    pub name: String,
    /// Times relative to the first used row.
    pub samples: Vec<Sample>,
    /// Whether `rotation` is the device's own report (else derived from position changes).
    pub rotation_reported: bool,
    /// The file line each sample came from (2 = the first data row).
    pub lines: Vec<usize>,
    /// The first sample's own time [ms since the epoch], when the log has absolute times.
    pub origin_ms: Option<i64>,
    /// What was skipped or held, and how the recording was sampled.
    pub tally: Tally,
}

/// A used row: (time ms, setpoint, position, torque, power, temperature, rotation, file line).
type Row = (i64, f32, f32, f32, f32, f32, u8, usize);

/// Rotation from position changes, for logs without the motor's own report: opening or
/// closing when the next sample's feedback is more than 0.05 % away, else stopped.
pub fn derive_rotation(samples: &mut [Sample]) {
    for k in 0..samples.len() {
        let d = if k + 1 < samples.len() { samples[k + 1].position_pct - samples[k].position_pct } else { 0.0 };
        samples[k].rotation = if d > 0.05 {
            1
        } else if d < -0.05 {
            2
        } else {
            0
        };
    }
}

/// Every CSV file under `dir`, recursively, in name order; an error when there is none.
pub fn csv_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{}: no CSV recordings", dir.display());
    }
    Ok(files)
}

/// A relative clock that drops below this has restarted (the bench tests' step segments) [s].
const CLOCK_RESTART_BELOW_S: f64 = 2.0;
/// Relative times above this are Unix times (the sweep tests write them) [s].
const UNIX_SECONDS_FROM: f64 = 1.0e9;

/// Reads a rig CSV of either format (the flox export or a pulse bench test). Imperfect rows are
/// skipped or their optional cells held, and counted in `tally` (see [`crate::telemetry::logfile`]);
/// `strict` makes the first of them an error naming the row and column.
pub fn read(path: &Path, strict: bool) -> Result<Recording> {
    let text = logfile::read_text(path)?;
    let csv = logfile::Csv::parse(&text, path)?;
    let col = |names: &[&str]| csv.column(names);
    let flox = col(&["_time"]).is_some();
    let names: [&[&str]; 6] = if flox {
        [
            &["_time"],
            &["setpoint_position_%"],
            &["feedback_position_%"],
            &["motor_torque_Nmm"],
            &["power_W"],
            &["internal_temperature_deg_C"],
        ]
    } else {
        [&["time_s"], &["setpoint"], &["position"], &["torque_nmm"], &["power_w"], &["temperature_c"]]
    };
    let [Some(t_col), Some(sp_col), Some(pos_col), Some(tq_col), Some(pw_col), Some(temp_col)] = names.map(col) else {
        bail!(
            "{}: not a rig recording (missing time, setpoint, position, torque, power or temperature column)",
            path.display()
        );
    };
    // The sweep files' `direction` is the sweep's, not the motor's: derive rotation there.
    let rot_col = if flox {
        col(&["rotation_direction"])
    } else if csv.header.contains(&"repeat") {
        None
    } else {
        col(&["direction"])
    };
    let mut tally = Tally::new(path, strict);
    let mut order = TimeOrder::default();
    let column_name = |c: usize| csv.header.get(c).copied().unwrap_or("?");
    let mut rows: Vec<Row> = Vec::new();
    // Relative clocks: the offset that lays restarted segments end to end, a quarter second apart.
    let (mut offset, mut prev_raw): (i64, Option<i64>) = (0, None);
    'rows: for (line, f) in &csv.rows {
        let line = *line;
        if f.len() < csv.header.len() {
            tally.note(Reason::ShortRow, line, || format!("{} of {} cells", f.len(), csv.header.len()))?;
            continue;
        }
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let t_ms = if flox {
            parse_timestamp_ms(get(t_col))
        } else {
            logfile::number(get(t_col)).ok().map(|s| (s * 1000.0).round() as i64)
        };
        let Some(raw) = t_ms else {
            tally.note(Reason::NoTime, line, || format!("column {}: \"{}\"", column_name(t_col), get(t_col)))?;
            continue;
        };
        let t = if flox {
            raw
        } else {
            if let Some(p) = prev_raw.filter(|&p| raw < p && (raw as f64) < CLOCK_RESTART_BELOW_S * 1000.0) {
                // The clock restarted: a new segment after the last used row.
                offset += p + 250 - raw;
            }
            raw + offset
        };
        let prev = rows.last().copied();
        let mut v = [0f32; 5];
        for (k, &c) in [sp_col, pos_col, tq_col, pw_col, temp_col].iter().enumerate() {
            match logfile::number(get(c)) {
                Ok(x) => v[k] = x as f32,
                Err(reason) => {
                    let detail = || format!("column {}: \"{}\"", column_name(c), get(c));
                    // Setpoint and position make the sample; the rest can be held a row.
                    let held = match (k, prev) {
                        (2, Some(p)) => Some(p.3),
                        (3, Some(p)) => Some(p.4),
                        (4, Some(p)) => Some(p.5),
                        _ => None,
                    };
                    match held {
                        Some(h) => {
                            tally.note(Reason::HeldField, line, || format!("{}: {}", reason.as_str(), detail()))?;
                            v[k] = h;
                        }
                        None => {
                            tally.note(reason, line, detail)?;
                            continue 'rows;
                        }
                    }
                }
            }
        }
        let rotation = match rot_col {
            Some(c) => match (parse_rotation(get(c)), prev) {
                (Some(r), _) => r,
                (None, Some(p)) => {
                    tally.note(Reason::HeldField, line, || format!("column rotation: \"{}\"", get(c)))?;
                    p.6
                }
                (None, None) => {
                    tally.note(Reason::NotANumber, line, || format!("column rotation: \"{}\"", get(c)))?;
                    continue;
                }
            },
            None => u8::MAX,
        };
        if !order.admit(t, &mut tally, line)? {
            continue;
        }
        prev_raw = Some(raw);
        rows.push((t, v[0], v[1], v[2], v[3], v[4], rotation, line));
    }
    tally.finish(csv.rows.len(), rows.len(), rows.windows(2).map(|w| w[1].0 - w[0].0).collect());
    let t0 = rows.first().map_or(0, |r| r.0);
    let origin_ms = if flox {
        rows.first().map(|r| r.0)
    } else {
        // Unix seconds (the sweep tests) are absolute too.
        rows.first().filter(|r| r.0 as f64 >= UNIX_SECONDS_FROM * 1000.0).map(|r| r.0)
    };
    let mut samples: Vec<Sample> = rows
        .iter()
        .map(|r| Sample {
            t: SimTime((r.0 - t0).max(0) as u64),
            setpoint_pct: r.1,
            position_pct: r.2,
            torque_nm: r.3,
            power_w: r.4,
            temperature_c: r.5,
            rotation: r.6,
            signal_quality: None,
        })
        .collect();
    let rotation_reported = rot_col.is_some();
    if !rotation_reported {
        derive_rotation(&mut samples);
    }
    let name = path.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let lines = rows.iter().map(|r| r.7).collect();
    Ok(Recording { name, samples, rotation_reported, lines, origin_ms, tally })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_codes() {
        assert_eq!(parse_rotation("2.0"), Some(2));
        assert_eq!(parse_rotation("opening"), Some(1));
        assert_eq!(parse_rotation("sideways"), None);
    }
}
