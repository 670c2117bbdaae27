//! `junit.xml` (with `quick-junit`, nextest's JUnit model): one
//! `<testsuite>` per run (scenario and seed), one `<testcase>` per
//! expectation, a `<failure>` carrying its reasons and the repro command.

use std::time::Duration;

use medtwin_check::duration::human;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{ExpectationResult, Report, Verdict};

/// The JUnit document for one or more runs.
pub fn render(reports: &[Report]) -> anyhow::Result<String> {
    let mut junit = quick_junit::Report::new("medtwin");
    let mut total = Duration::ZERO;
    for r in reports {
        let wall = Duration::from_millis(r.timing.wall_ms);
        total += wall;
        let mut suite = TestSuite::new(format!("{} (seed {})", r.scenario.name, r.seed));
        suite.set_time(wall);
        suite.add_properties([
            Property::new("scenario", r.scenario.path.as_str()),
            Property::new("run_id", r.run_id.as_str()),
            Property::new("version", r.version.as_str()),
            Property::new("repro", r.repro.as_str()),
            Property::new("seed", r.seed.to_string()),
            Property::new("verdict", r.verdict.text()),
            Property::new("reliable", r.harness.reliable.to_string()),
        ]);
        if let Some(case) = interrupted_case(r) {
            suite.add_test_case(case);
        }
        suite.add_test_case(uptake_case(r));
        for e in &r.expectations {
            suite.add_test_case(test_case(r, e));
        }
        junit.add_test_suite(suite);
    }
    junit.set_time(total);
    Ok(junit.to_string()?)
}

/// A run that stopped early: an error (the harness did not finish), named
/// so a CI dashboard shows why.
fn interrupted_case(r: &Report) -> Option<TestCase> {
    let i = r.interrupted.as_ref()?;
    let text = format!(
        "interrupted ({}) at simulated {} of {}; the other results hold only until then",
        i.reason,
        human(i.at_sim_ms),
        human(r.timing.sim_duration_ms)
    );
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_message(text.as_str())
        .set_type("interrupted")
        .set_description(format!("{text}\nrepro: {}", r.repro));
    let mut case = TestCase::new("run completed", status);
    case.set_classname(format!("medtwin.{}", r.scenario.name))
        .set_time(Duration::ZERO);
    Some(case)
}

/// Whether the target took the telemetry: a run it did not cannot pass.
fn uptake_case(r: &Report) -> TestCase {
    let t = &r.transport;
    let share = t
        .accepted_share
        .map_or("-".to_owned(), |s| format!("{:.2} %", s * 100.0));
    let summary = format!(
        "{} of {} deliveries accepted ({share}; at least {:.0} % needed) · sent {} · refused {} · failed {} · not sent {}{}",
        t.deliveries_accepted,
        t.deliveries_accepted + t.deliveries_not_accepted,
        t.min_accepted_share * 100.0,
        t.stats.sent,
        t.stats.refused,
        t.stats.failed,
        t.stats.not_sent,
        if t.stats.by_cause.is_empty() {
            String::new()
        } else {
            let causes: Vec<String> = t
                .stats
                .by_cause
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            format!(" ({})", causes.join(", "))
        }
    );
    let status = match r.verdict {
        Verdict::TargetUnreachable | Verdict::TargetRefusedData => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(r.verdict.text())
                .set_type("target")
                .set_description(format!("{summary}\nrepro: {}", r.repro));
            status
        }
        _ => TestCaseStatus::success(),
    };
    let mut case = TestCase::new("target accepted the telemetry", status);
    case.set_classname(format!("medtwin.{}", r.scenario.name))
        .set_time(Duration::ZERO)
        .set_system_out(summary);
    case
}

fn test_case(r: &Report, e: &ExpectationResult) -> TestCase {
    let m = &e.metrics;
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
    let status = match e.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        _ => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(e.failures.join("; "))
                .set_type("expectation")
                .set_description(format!(
                    "{}\n{summary}\nrepro: {}",
                    e.failures.join("\n"),
                    r.repro
                ));
            status
        }
    };
    let mut case = TestCase::new(e.name.as_str(), status);
    case.set_classname(format!("medtwin.{}", r.scenario.name))
        .set_time(Duration::ZERO);
    if e.verdict == Verdict::Pass {
        case.set_system_out(summary);
    }
    case
}
