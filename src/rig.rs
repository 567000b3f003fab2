//! Reading recordings of the real Belimo rig (the `flox` 20 Hz exports and the `pulse` bench
//! tests) into samples, with times relative to the first row.

use anyhow::{Context, Result, bail};
use std::path::Path;
use twinfault_core::SimTime;
use twinfault_core::actuator::Sample;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
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
        || !(1..=31).contains(&da)
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
    pub samples: Vec<Sample>,
    /// Whether `rotation` is the device's own report (else derived from position changes).
    pub rotation_reported: bool,
    /// The file line each sample came from (2 = the first data row).
    pub lines: Vec<usize>,
}

/// Reads a rig CSV of either format. Rows with an empty or unreadable time are skipped; any
/// other unreadable value is an error naming the row and column.
pub fn read(path: &Path) -> Result<Recording> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split(',').map(str::trim).collect();
    let col = |names: &[&str]| names.iter().find_map(|n| header.iter().position(|h| h == n));
    let flox = col(&["_time"]).is_some();
    let (t_col, sp_col, pos_col, tq_col, pw_col, temp_col) = if flox {
        (
            col(&["_time"]),
            col(&["setpoint_position_%"]),
            col(&["feedback_position_%"]),
            col(&["motor_torque_Nmm"]),
            col(&["power_W"]),
            col(&["internal_temperature_deg_C"]),
        )
    } else {
        (
            col(&["time_s"]),
            col(&["setpoint"]),
            col(&["position"]),
            col(&["torque_nmm"]),
            col(&["power_w"]),
            col(&["temperature_c"]),
        )
    };
    let (Some(t_col), Some(sp_col), Some(pos_col), Some(tq_col), Some(pw_col), Some(temp_col)) =
        (t_col, sp_col, pos_col, tq_col, pw_col, temp_col)
    else {
        bail!(
            "{}: not a rig recording (missing time, setpoint, position, torque, power or temperature column)",
            path.display()
        );
    };
    // The sweep files' `direction` is the sweep's, not the motor's: derive rotation there.
    let rot_col = if flox {
        col(&["rotation_direction"])
    } else if header.contains(&"repeat") {
        None
    } else {
        col(&["direction"])
    };
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let get = |c: usize| f.get(c).copied().unwrap_or("");
        let t_ms = if flox {
            parse_timestamp_ms(get(t_col))
        } else {
            get(t_col).trim().parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64)
        };
        let Some(t_ms) = t_ms else { continue };
        let num = |c: usize, name: &str| -> Result<f32> {
            get(c).trim().parse::<f32>().with_context(|| {
                format!("{}: row {}: column {name}: \"{}\" is not a number", path.display(), i + 2, get(c))
            })
        };
        let rotation = match rot_col {
            Some(c) => parse_rotation(get(c))
                .with_context(|| format!("{}: row {}: rotation \"{}\"", path.display(), i + 2, get(c)))?,
            None => u8::MAX,
        };
        rows.push((
            t_ms,
            num(sp_col, "setpoint")?,
            num(pos_col, "position")?,
            num(tq_col, "torque")?,
            num(pw_col, "power")?,
            num(temp_col, "temperature")?,
            rotation,
            i + 2,
        ));
    }
    if flox {
        rows.sort_by_key(|r| r.0);
    } else {
        // Bench tests restart their clock at each step segment: lay the segments end to end,
        // a quarter second apart, in file order.
        let mut offset = 0;
        let mut prev: Option<i64> = None;
        for r in &mut rows {
            if let Some(p) = prev.filter(|&p| r.0 + offset < p) {
                offset = p + 250 - r.0;
            }
            r.0 += offset;
            prev = Some(r.0);
        }
    }
    let t0 = rows.first().map_or(0, |r| r.0);
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
        let positions: Vec<f32> = samples.iter().map(|s| s.position_pct).collect();
        for (k, s) in samples.iter_mut().enumerate() {
            let d = if k + 1 < positions.len() { positions[k + 1] - positions[k] } else { 0.0 };
            s.rotation = if d > 0.05 {
                1
            } else if d < -0.05 {
                2
            } else {
                0
            };
        }
    }
    let name = path.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let lines = rows.iter().map(|r| r.7).collect();
    Ok(Recording { name, samples, rotation_reported, lines })
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
