//! Reading recordings of the real Belimo rig (the `flox` 20 Hz exports and the `pulse` bench
//! tests) into samples, with times relative to the first row.

use crate::logfile::{self, Reason, Tally, TimeOrder};
use anyhow::{Context, Result, bail};
use std::path::Path;
use twinfault_core::SimTime;
use twinfault_core::actuator::Sample;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
/// Days in month `m` (1-12) of year `y` (proleptic Gregorian): `2026-02-31` is no date.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an ISO 8601 / RFC 3339 timestamp (`2026-03-16 14:17:46.194000+00:00`,
/// `2026-03-19T10:00:00.123Z`, `2026-03-19T12:00:00+02:00`) into milliseconds since the epoch.
/// A timestamp without an offset is taken as UTC.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (time, offset_min) = if let Some(t) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
        if oh > 23 || om > 59 {
            return None;
        }
        (t, sign * (oh * 60 + om))
    } else {
        (rest, 0)
    };
    let mut parts = time.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&da)
        || h > 23
        || mi > 59
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    let local_ms = (days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60) * 1000 + (sec * 1000.0).round() as i64;
    Some(local_ms - offset_min * 60_000)
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_timestamp_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil from days (inverse of `days_from_civil`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000
    )
}

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
/// skipped or their optional cells held, and counted in `tally` (see [`crate::logfile`]);
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
    fn parses_rig_timestamps_to_the_millisecond() {
        let a = parse_timestamp_ms("2026-03-16 14:17:46.194000+00:00").unwrap();
        let b = parse_timestamp_ms("2026-03-16 14:17:46.241000+00:00").unwrap();
        assert_eq!(b - a, 47);
        assert_eq!(parse_timestamp_ms("1970-01-02T00:00:00Z"), Some(86_400_000));
        assert_eq!(parse_timestamp_ms(""), None);
        assert_eq!(parse_timestamp_ms("2026-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp_ms("2026-03-19T12:00:00.5+02:00"), parse_timestamp_ms("2026-03-19T10:00:00.500Z"));
        assert_eq!(parse_timestamp_ms("2026-03-19T05:30:00-04:30"), parse_timestamp_ms("2026-03-19T10:00:00Z"));
        let t = parse_timestamp_ms("2026-03-19T10:00:00.123Z").unwrap();
        assert_eq!(format_timestamp_ms(t), "2026-03-19T10:00:00.123Z");
        assert_eq!(format_timestamp_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn rotation_codes() {
        assert_eq!(parse_rotation("2.0"), Some(2));
        assert_eq!(parse_rotation("opening"), Some(1));
        assert_eq!(parse_rotation("sideways"), None);
    }
}
