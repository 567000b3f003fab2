//! Wall-clock timestamps as text: RFC 3339 / ISO 8601 to milliseconds since the epoch and back.
//! Pure arithmetic on given values (the core never reads the clock); used by log readers, the
//! server's wire format and the visualizer.

/// Days in month `m` (1-12) of year `y` (proleptic Gregorian): `2026-02-31` is no date.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let ms = parse_timestamp_ms("2026-03-19T10:00:00.123Z").unwrap();
        assert_eq!(format_timestamp_ms(ms), "2026-03-19T10:00:00.123Z");
        assert_eq!(parse_timestamp_ms("2026-03-19T12:00:00.123+02:00"), Some(ms));
        assert_eq!(parse_timestamp_ms("2026-03-19 10:00:00.123000+00:00"), Some(ms));
        assert_eq!(parse_timestamp_ms("2026-03-19T10:00:00.123"), Some(ms));
        assert_eq!(format_timestamp_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp_ms(-1), "1969-12-31T23:59:59.999Z");
    }

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
    fn refuses_what_is_no_date() {
        for bad in [
            "2026-02-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01",
            "x",
            "2026-01-01T00:00:00+25:00",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
        assert!(parse_timestamp_ms("2024-02-29T00:00:00Z").is_some());
        assert_eq!(parse_timestamp_ms("2100-02-29T00:00:00Z"), None);
    }
}
