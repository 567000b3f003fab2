//! Real logs, read tolerantly: one home for what every reader of a trend log or rig recording
//! (`replay`, `evaluate --real`, `calibrate`, `realism`) does with an imperfect row.
//!
//! A row that cannot give a sample (no time, an empty or unreadable essential cell, a duplicated
//! or backwards time, fewer cells than the header) is skipped; a cell the sample can do without
//! (power, temperature, torque, rotation) is held at the row before's value. Either way it is
//! counted by reason in a [`Tally`], which prints one summary line naming the reasons, counts and
//! first rows, and with `strict` turns the first of them into an error naming file, row and
//! column. A BOM, CRLF line ends and blank lines are read as if they were not there.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// Rows named per reason in the summary.
const FIRST_ROWS_SHOWN: usize = 3;
/// A silence longer than this between two rows is reported as a gap [ms] (or longer than
/// [`GAP_INTERVALS`] of the log's median interval, for logs sampled more slowly).
pub const GAP_REPORTED_MS: i64 = 10_000;
/// A gap in a slowly sampled log: this many median intervals.
pub const GAP_INTERVALS: i64 = 5;

/// Why a row (or one cell of it) was not used as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The time cell is empty or not a time.
    NoTime,
    /// An essential cell (setpoint, position; a mapped field) is empty.
    EmptyCell,
    /// A cell holds `NaN` or an infinity.
    NonFinite,
    /// A cell is not a number.
    NotANumber,
    /// The same time as the row before.
    DuplicateTime,
    /// Earlier than a row before it.
    BackwardsTime,
    /// Fewer cells than the header (a truncated line).
    ShortRow,
    /// A line that is not valid JSON (NDJSON logs).
    BadJson,
    /// A row the ingest validation refused (unknown node, a value out of range).
    Invalid,
    /// A cell the sample can do without was empty or unreadable: the row before's value was used.
    HeldField,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoTime => "no time",
            Reason::EmptyCell => "empty cell",
            Reason::NonFinite => "NaN or infinite value",
            Reason::NotANumber => "not a number",
            Reason::DuplicateTime => "duplicated time",
            Reason::BackwardsTime => "backwards time",
            Reason::ShortRow => "truncated row",
            Reason::BadJson => "invalid JSON",
            Reason::Invalid => "invalid sample",
            Reason::HeldField => "field held from the row before",
        }
    }
}

/// One reason's count and where it was first seen.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReasonCount {
    pub count: usize,
    /// File rows (1 = the header of a CSV, the first line of an NDJSON file).
    pub first_rows: Vec<usize>,
    /// The first occurrence, in words (column and cell).
    pub first: String,
}

/// What a reader skipped or patched, and how the log was sampled.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    #[serde(skip)]
    file: String,
    #[serde(skip)]
    strict: bool,
    pub rows: usize,
    pub used: usize,
    pub reasons: BTreeMap<Reason, ReasonCount>,
    /// Silences longer than `gap_over_ms` between used rows.
    pub gaps: usize,
    /// What counts as a gap: [`GAP_REPORTED_MS`], or [`GAP_INTERVALS`] median intervals when
    /// that is longer (a trend log every minute has no gap every minute) [ms].
    pub gap_over_ms: i64,
    pub longest_gap_ms: i64,
    /// Median interval between used rows [ms].
    pub median_interval_ms: Option<i64>,
}

impl Tally {
    pub fn new(file: &Path, strict: bool) -> Tally {
        Tally { file: file.display().to_string(), strict, ..Tally::default() }
    }

    /// Records one problem at `row`; with `strict`, it is the error.
    pub fn note(&mut self, reason: Reason, row: usize, detail: impl FnOnce() -> String) -> Result<()> {
        let detail = detail();
        if self.strict {
            bail!("{}: row {row}: {}: {detail} (--strict)", self.file, reason.as_str());
        }
        let e = self.reasons.entry(reason).or_default();
        e.count += 1;
        if e.first_rows.len() < FIRST_ROWS_SHOWN {
            e.first_rows.push(row);
        }
        if e.first.is_empty() {
            e.first = detail;
        }
        Ok(())
    }

    /// Rows skipped (held fields do not count: their rows were used).
    pub fn skipped(&self) -> usize {
        self.reasons.iter().filter(|(r, _)| **r != Reason::HeldField).map(|(_, c)| c.count).sum()
    }

    pub fn count(&self, reason: Reason) -> usize {
        self.reasons.get(&reason).map_or(0, |c| c.count)
    }

    /// Closes the tally once every row is read: rows in the file, rows used, and the intervals
    /// between consecutive used samples of one device [ms] (for gaps and the median).
    pub fn finish(&mut self, rows: usize, used: usize, mut intervals: Vec<i64>) {
        self.rows = rows;
        self.used = used;
        self.median_interval_ms = if intervals.is_empty() {
            None
        } else {
            let mid = intervals.len() / 2;
            Some(*intervals.select_nth_unstable(mid).1)
        };
        let over = GAP_REPORTED_MS.max(self.median_interval_ms.unwrap_or(0).saturating_mul(GAP_INTERVALS));
        self.gap_over_ms = over;
        self.gaps = intervals.iter().filter(|&&d| d > over).count();
        self.longest_gap_ms = intervals.iter().copied().filter(|&d| d > over).max().unwrap_or(0);
    }

    /// Prints the summary line as a warning on stderr, when there is something to say.
    pub fn warn(&self) {
        if let Some(s) = self.summary() {
            eprintln!("warning: {s}");
        }
    }

    /// One line for the user: nothing to say about a clean, evenly sampled log.
    pub fn summary(&self) -> Option<String> {
        if self.reasons.is_empty() && self.gaps == 0 {
            return None;
        }
        let mut parts = Vec::new();
        for (r, c) in &self.reasons {
            let rows: Vec<String> = c.first_rows.iter().map(usize::to_string).collect();
            let more = if c.count > c.first_rows.len() { ", …" } else { "" };
            parts.push(format!("{} {} (row {}{more}: {})", r.as_str(), c.count, rows.join(", "), c.first));
        }
        if self.gaps > 0 {
            parts.push(format!(
                "{} gap{} over {} s (longest {:.1} s)",
                self.gaps,
                if self.gaps == 1 { "" } else { "s" },
                self.gap_over_ms / 1000,
                self.longest_gap_ms as f64 / 1000.0
            ));
        }
        Some(format!(
            "{}: {} rows, {} used, {} skipped; {}",
            self.file,
            self.rows,
            self.used,
            self.skipped(),
            parts.join("; ")
        ))
    }
}

/// A file's text without a BOM; an error names the file when it is unreadable or not UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!("{}: line {line}: not UTF-8 text", path.display())
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(t) => t.to_string(),
        None => text,
    })
}

/// The cells of a CSV line: split on commas outside double quotes, quotes removed, trimmed.
pub fn cells(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(unquote(&line[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(unquote(&line[start..]));
    out
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s).trim()
}

/// The data lines of a CSV: (file row, cells), after its header; blank lines left out.
pub struct Csv<'a> {
    pub header: Vec<&'a str>,
    pub rows: Vec<(usize, Vec<&'a str>)>,
}

impl<'a> Csv<'a> {
    pub fn parse(text: &'a str, file: &Path) -> Result<Csv<'a>> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, head) = lines.next().with_context(|| format!("{}: empty file", file.display()))?;
        let header = cells(head);
        let rows = lines.map(|(i, l)| (i + 1, cells(l))).collect();
        Ok(Csv { header, rows })
    }

    /// The index of the first of `names` the header has.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.header.iter().position(|h| h == n))
    }
}

/// A cell as a finite number, or why not.
pub fn number(cell: &str) -> Result<f64, Reason> {
    let c = cell.trim();
    if c.is_empty() {
        return Err(Reason::EmptyCell);
    }
    match c.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(Reason::NonFinite),
        Err(_) => Err(Reason::NotANumber),
    }
}

/// Keeps a log's times in order: a row at the same time as the last used one, or before it, is
/// refused with its reason.
#[derive(Debug, Default)]
pub struct TimeOrder {
    last: Option<i64>,
}

impl TimeOrder {
    /// Whether a row at `t` may follow; on success `t` is the new last time.
    pub fn admit(&mut self, t: i64, tally: &mut Tally, row: usize) -> Result<bool> {
        match self.last {
            Some(p) if t == p => {
                tally.note(Reason::DuplicateTime, row, || format!("time {t} ms again"))?;
                Ok(false)
            }
            Some(p) if t < p => {
                tally.note(Reason::BackwardsTime, row, || {
                    format!("{:.3} s before the row before", (p - t) as f64 / 1e3)
                })?;
                Ok(false)
            }
            _ => {
                self.last = Some(t);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_split_outside_quotes_and_trimmed() {
        assert_eq!(cells(" a, \"b,c\" ,d\r"), vec!["a", "b,c", "d"]);
        assert_eq!(cells(""), vec![""]);
    }

    #[test]
    fn numbers_say_why_not() {
        assert_eq!(number(" 1.5 "), Ok(1.5));
        assert_eq!(number(""), Err(Reason::EmptyCell));
        assert_eq!(number("NaN"), Err(Reason::NonFinite));
        assert_eq!(number("-inf"), Err(Reason::NonFinite));
        assert_eq!(number("1,5"), Err(Reason::NotANumber));
    }

    #[test]
    fn a_tally_counts_names_rows_and_is_strict_on_request() {
        let mut t = Tally::new(Path::new("log.csv"), false);
        let mut order = TimeOrder::default();
        assert!(order.admit(0, &mut t, 2).unwrap());
        assert!(!order.admit(0, &mut t, 3).unwrap());
        assert!(!order.admit(-5, &mut t, 4).unwrap());
        assert!(order.admit(20_000, &mut t, 5).unwrap());
        t.note(Reason::EmptyCell, 6, || "column position: \"\"".into()).unwrap();
        t.finish(5, 2, vec![1_000, 1_000, 20_000]);
        assert_eq!(t.skipped(), 3);
        let s = t.summary().unwrap();
        assert!(s.contains("duplicated time 1 (row 3"), "{s}");
        assert!(s.contains("backwards time 1 (row 4"), "{s}");
        assert!(s.contains("empty cell 1 (row 6: column position"), "{s}");
        assert!(s.contains("1 gap over 10 s (longest 20.0 s)"), "{s}");
        // A log every minute: a gap is five of its intervals, not every minute.
        let mut slow = Tally::new(Path::new("trend.csv"), false);
        slow.finish(4, 4, vec![60_000, 60_000, 400_000]);
        assert_eq!((slow.gaps, slow.gap_over_ms), (1, 300_000));
        assert!(slow.summary().unwrap().contains("1 gap over 300 s (longest 400.0 s)"));
        let mut strict = Tally::new(Path::new("log.csv"), true);
        let e = strict.note(Reason::NonFinite, 9, || "column torque: \"NaN\"".into()).unwrap_err();
        assert_eq!(e.to_string(), "log.csv: row 9: NaN or infinite value: column torque: \"NaN\" (--strict)");
    }
}
