//! `junit.xml`: one `<testsuite>` per run (scenario and seed), one
//! `<testcase>` per expectation, a `<failure>` carrying its reasons.
//!
//! Written by hand rather than with a crate: the subset CI systems read
//! (Jenkins, GitLab, GitHub test reporters) is a dozen lines, and every
//! text goes through [`escape`].

use std::fmt::Write as _;

use crate::checker::Verdict;
use crate::report::{Report, human};

/// Escapes text for XML attributes and content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit document for one or more runs.
pub fn render(reports: &[Report]) -> String {
    let tests: usize = reports.iter().map(|r| r.expectations.len()).sum();
    let failures: usize = reports
        .iter()
        .flat_map(|r| &r.expectations)
        .filter(|e| e.verdict == Verdict::Fail)
        .count();
    let time: f64 = reports
        .iter()
        .map(|r| r.timing.wall_ms as f64 / 1000.0)
        .sum();
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="medtwin" tests="{tests}" failures="{failures}" errors="0" time="{time:.3}">"#
    );
    for r in reports {
        let failing = r
            .expectations
            .iter()
            .filter(|e| e.verdict == Verdict::Fail)
            .count();
        let suite = format!("{} (seed {})", r.scenario.name, r.seed);
        let _ = writeln!(
            x,
            r#"  <testsuite name="{}" tests="{}" failures="{failing}" errors="0" time="{:.3}">"#,
            escape(&suite),
            r.expectations.len(),
            r.timing.wall_ms as f64 / 1000.0
        );
        let _ = writeln!(x, "    <properties>");
        for (name, value) in [
            ("scenario", r.scenario.path.as_str()),
            ("run_id", r.run_id.as_str()),
            ("version", r.version.as_str()),
            ("repro", r.repro.as_str()),
        ] {
            let _ = writeln!(
                x,
                r#"      <property name="{name}" value="{}"/>"#,
                escape(value)
            );
        }
        let _ = writeln!(x, r#"      <property name="seed" value="{}"/>"#, r.seed);
        let _ = writeln!(x, "    </properties>");
        for e in &r.expectations {
            let m = &e.metrics;
            let _ = write!(
                x,
                r#"    <testcase classname="{}" name="{}" time="0">"#,
                escape(&format!("medtwin.{}", r.scenario.name)),
                escape(&e.name)
            );
            let lat = |v: Option<u64>| v.map_or("-".to_owned(), human);
            let summary = format!(
                "obligations {} · hits {} · late {} · missed {} · inconclusive {} · false {} · duplicates {} · latency p50 {} p95 {} p99 {} max {}",
                m.obligations,
                m.hits,
                m.late,
                m.missed,
                m.inconclusive,
                m.false_alerts,
                m.duplicates,
                lat(m.latency_ms.p50),
                lat(m.latency_ms.p95),
                lat(m.latency_ms.p99),
                lat(m.latency_ms.max)
            );
            if e.verdict == Verdict::Fail {
                let _ = write!(
                    x,
                    "\n      <failure message=\"{}\" type=\"expectation\">{}\n{}\nrepro: {}</failure>\n    ",
                    escape(&e.failures.join("; ")),
                    escape(&e.failures.join("\n")),
                    escape(&summary),
                    escape(&r.repro)
                );
            } else {
                let _ = write!(
                    x,
                    "\n      <system-out>{}</system-out>\n    ",
                    escape(&summary)
                );
            }
            let _ = writeln!(x, "</testcase>");
        }
        let _ = writeln!(x, "  </testsuite>");
    }
    let _ = writeln!(x, "</testsuites>");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}"
        );
    }
}
