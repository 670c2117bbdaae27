//! `medtwin compare` on two load reports: throughput, errors, drops and
//! ingest latency side by side; a regression when errors grow by more
//! than 0.1 percentage points, an ingest percentile grows past
//! `--max-latency-regression` (and by more than 1 ms), or a threshold that
//! held fails.

use std::fmt::Write as _;
use std::path::Path;

use super::report::{LOAD_SCHEMA, LoadReport};

/// Errors may grow by this many percentage points before it counts.
pub const MAX_ERRORS_INCREASE_PCT: f64 = 0.1;
/// Latency growth below this is noise, whatever the ratio, ms.
pub const MIN_LATENCY_INCREASE_MS: f64 = 1.0;

/// What the comparison found.
#[derive(Debug)]
pub struct Found {
    /// The side-by-side table.
    pub table: String,
    /// Regressions, in words.
    pub regressions: Vec<String>,
    /// Things to know (an unreliable side).
    pub notes: Vec<String>,
}

/// The load report at `path` (a report.json or its folder), if it is one.
pub fn read_if_load(path: &Path) -> Option<anyhow::Result<LoadReport>> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_owned()
    };
    let text = std::fs::read_to_string(&file).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    (value["schema"].as_str() == Some(LOAD_SCHEMA)).then(|| LoadReport::read(&file))
}

/// Compares baseline `a` with candidate `b`.
pub fn compare(a: &LoadReport, b: &LoadReport, max_latency_regression: f64) -> Found {
    let mut table = String::new();
    let mut regressions = Vec::new();
    let rate = |r: &LoadReport| r.totals.accepted as f64 / r.wall_s.max(1e-9);
    let pct = |r: &LoadReport| r.totals.errors_pct().unwrap_or(0.0);
    let drops = |r: &LoadReport| r.totals.drops_pct().unwrap_or(0.0);
    let _ = writeln!(table, "{:<26} {:>14} {:>14}", "", "baseline", "candidate");
    let mut row = |name: &str, x: f64, y: f64| {
        let _ = writeln!(table, "{name:<26} {x:>14.3} {y:>14.3}");
    };
    row(
        "scheduled",
        a.totals.scheduled as f64,
        b.totals.scheduled as f64,
    );
    row("accepted/s (wall)", rate(a), rate(b));
    row("errors %", pct(a), pct(b));
    row("dropped by generator %", drops(a), drops(b));
    let latencies = [
        ("ingest p50 ms", a.ingest_ms.p50, b.ingest_ms.p50),
        ("ingest p95 ms", a.ingest_ms.p95, b.ingest_ms.p95),
        ("ingest p99 ms", a.ingest_ms.p99, b.ingest_ms.p99),
        ("ingest max ms", a.ingest_ms.max, b.ingest_ms.max),
    ];
    for (name, x, y) in latencies {
        row(name, x, y);
    }
    row(
        "generator lateness p99 ms",
        a.generator.lateness_ms.p99,
        b.generator.lateness_ms.p99,
    );
    if pct(b) > pct(a) + MAX_ERRORS_INCREASE_PCT {
        regressions.push(format!(
            "errors grew from {:.3} % to {:.3} % (more than {MAX_ERRORS_INCREASE_PCT} points)",
            pct(a),
            pct(b)
        ));
    }
    for (name, x, y) in &latencies[..3] {
        if *y > x * (1.0 + max_latency_regression) && y - x > MIN_LATENCY_INCREASE_MS {
            regressions.push(format!(
                "{name} grew from {x:.2} to {y:.2} (more than {:.0} %)",
                max_latency_regression * 100.0
            ));
        }
    }
    for t in &b.thresholds {
        let before = a.thresholds.iter().find(|o| o.threshold == t.threshold);
        if !t.passed && before.is_some_and(|o| o.passed) {
            regressions.push(format!("threshold `{}` held, now fails", t.threshold));
        }
    }
    let mut notes = Vec::new();
    for (side, r) in [("baseline", a), ("candidate", b)] {
        if r.generator.unreliable {
            notes.push(format!(
                "the {side} is unreliable: {}",
                r.generator.reasons.join("; ")
            ));
        }
    }
    Found {
        table,
        regressions,
        notes,
    }
}
