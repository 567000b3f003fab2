//! Terminal rendering of reports, runs and history.

use std::fmt::Write;
use twinfault_core::report::Report;

/// Renders rows as aligned columns; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    out
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1} s"))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The full terminal report of a run.
pub fn report(r: &Report) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "scenario {}  seed {}  {} s simulated  {} events", r.scenario, r.seed, r.duration_s, r.events);
    let _ = writeln!(out, "event log sha256 {}\n", r.event_log_sha256);
    let mut rows = vec![vec!["expectation".to_string(), "result".into(), "latency".into(), "detail".into()]];
    for e in &r.expectations {
        rows.push(vec![
            e.expectation.clone(),
            if e.passed { "PASS".into() } else { "FAIL".into() },
            secs(e.latency_s),
            e.detail.clone(),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    if r.detections.is_empty() {
        out.push_str("detections: none\n");
    } else {
        let mut rows = vec![vec![
            "opened".to_string(),
            "node".into(),
            "kind".into(),
            "severity".into(),
            "conf".into(),
            "truth".into(),
            "latency".into(),
        ]];
        for d in &r.detections {
            let node = match &d.device {
                Some(dev) => format!("{} (via {})", dev, d.node),
                None => d.node.clone(),
            };
            rows.push(vec![
                twinfault_core::SimTime::from_secs_f64(d.opened_at_s).to_string(),
                node,
                d.kind.to_string(),
                format!("{:?}", d.severity).to_lowercase(),
                format!("{:.2}", d.confidence),
                d.truth.clone().unwrap_or_else(|| "FALSE ALARM".into()),
                secs(d.latency_s),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push('\n');
    if !r.per_kind.is_empty() {
        let mut rows = vec![vec![
            "fault kind".to_string(),
            "injected".into(),
            "detected".into(),
            "findings".into(),
            "precision".into(),
            "recall".into(),
        ]];
        for (k, s) in &r.per_kind {
            rows.push(vec![
                k.to_string(),
                s.injected.to_string(),
                s.detected.to_string(),
                s.findings.to_string(),
                ratio(s.precision),
                ratio(s.recall),
            ]);
        }
        out.push_str(&table(&rows));
        out.push('\n');
    }
    if !r.model_verdicts.is_empty() {
        // The learned classifier's second opinion, apart from the rules (it decides nothing).
        let _ = writeln!(out, "learned classifier (alongside the rules; counts in no expectation):");
        let mut rows = vec![vec![
            "opened".to_string(),
            "node".into(),
            "verdict".into(),
            "votes".into(),
            "truth".into(),
            "".into(),
        ]];
        for d in &r.model_verdicts {
            let agrees = d.summary.contains("agrees with the rules");
            rows.push(vec![
                twinfault_core::SimTime::from_secs_f64(d.opened_at_s).to_string(),
                d.node.clone(),
                d.kind.to_string(),
                format!("{:.2}", d.confidence),
                d.truth.clone().unwrap_or_else(|| "FALSE ALARM".into()),
                if agrees { "rules agree".into() } else { "rules disagree".into() },
            ]);
        }
        out.push_str(&table(&rows));
        let _ = writeln!(out, "model false alarms: {}\n", r.model_false_alarms);
    }
    let _ = writeln!(out, "false alarms: {}   result: {}", r.false_alarms, if r.passed { "PASS" } else { "FAIL" });
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(&[vec!["a".into(), "bb".into()], vec!["ccc".into(), "d".into()]]);
        assert_eq!(t, "a    bb\n---  --\nccc  d\n");
    }
}
