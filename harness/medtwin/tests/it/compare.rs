//! `medtwin compare` as a CI gate, end to end with the real binary: two
//! runs of one scenario and seed compare cleanly, a faulty backend is
//! caught by the metric it breaks, suites (`--seeds N`) compare run for run,
//! and runs of different scenarios are refused. Every run uses the virtual
//! clock (fast, and no wall-clock noise to fight over the 2 cores).

use std::path::Path;
use std::process::Output;

use crate::common::{medtwin, root, run_passing, text};

const SMALL: &str = "fixtures/scenarios/small-sepsis.toml";
const KNOBS: &str = "fixtures/scenarios/fault-knobs.toml";

/// `medtwin compare A B EXTRA...`, with its exit code and standard output
/// (standard error appended, for the assertion messages).
fn compare(a: &Path, b: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["compare", a.to_str().unwrap(), b.to_str().unwrap()];
    args.extend_from_slice(extra);
    let Output {
        status,
        stdout,
        stderr,
    } = medtwin(&args);
    (
        status.code(),
        format!("{}\nstderr:\n{}", text(&stdout), text(&stderr)),
    )
}

/// `medtwin run ARGS --out DIR` that must fail its expectations (exit 1).
fn run_failing(args: &[&str], out: &Path) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let run = medtwin(&all);
    assert_eq!(
        run.status.code(),
        Some(1),
        "medtwin {all:?}\n{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
}

#[test]
fn compare_passes_two_runs_of_one_scenario_and_seed() {
    let (a, _) = run_passing(&[SMALL, "--clock", "virtual"]);
    let (b, _) = run_passing(&[SMALL, "--clock", "virtual"]);
    let (code, out) = compare(a.path(), b.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("compare: no regression past the thresholds"),
        "{out}"
    );
    assert!(!out.contains("REGRESSION"), "{out}");
    // The table: every metric of the expectation and overall.
    for metric in [
        "missed",
        "sensitivity",
        "ppv",
        "false/patient-day",
        "latency p95",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("sepsis raises news2-medium") && l.contains(metric)),
            "{metric}: {out}"
        );
    }
    assert!(out.contains("(overall)"), "{out}");
}

#[test]
fn compare_catches_a_faulty_backend_by_the_metric_it_breaks() {
    let (clean, _) = run_passing(&[KNOBS, "--clock", "virtual"]);
    let dir = tempfile::tempdir().unwrap();
    // Every alert dropped: every obligation missed.
    let dropped = dir.path().join("dropped");
    run_failing(
        &[KNOBS, "--clock", "virtual", "--drop-alerts-pct", "100"],
        &dropped,
    );
    let (code, out) = compare(clean.path(), &dropped, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("REGRESSION: sepsis raises news2-medium: missed 0 → 2 (limit +0)"),
        "{out}"
    );
    assert!(out.contains("REGRESSION: (overall): missed 0 → 4"), "{out}");
    assert!(
        out.contains("REGRESSION: (overall): sensitivity 1.000 → 0.000"),
        "{out}"
    );
    // The other way round it is an improvement, not a regression.
    let (code, out) = compare(&dropped, clean.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    // Every alert of the other NEWS2 kind: news2-high pages answer nothing.
    let swapped = dir.path().join("swapped");
    run_failing(
        &[KNOBS, "--clock", "virtual", "--wrong-kind-pct", "100"],
        &swapped,
    );
    let (code, out) = compare(clean.path(), &swapped, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("REGRESSION: news2 >= 7 raises news2-high: ppv 1.000 → "),
        "{out}"
    );
    assert!(out.contains("REGRESSION: (overall): ppv 1.000 → "), "{out}");
}

#[test]
fn compare_takes_suites_and_refuses_different_scenarios() {
    // A suite folder of one small scenario, run with three seeds, twice.
    let scenarios = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join(SMALL),
        scenarios.path().join("small-sepsis.toml"),
    )
    .unwrap();
    let folder = scenarios.path().to_str().unwrap();
    let suite = [folder, "--seeds", "3", "--clock", "virtual"];
    let (a, _) = run_passing(&suite);
    let (b, _) = run_passing(&suite);
    assert!(a.path().join("suite.json").is_file());
    let (code, out) = compare(a.path(), b.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("A 3 runs (seeds 7, 8, 9)"), "{out}");
    assert!(out.contains("missed/run"), "{out}");
    // The same suite with every alert dropped: missed per run.
    let dropped = tempfile::tempdir().unwrap();
    let mut args = suite.to_vec();
    args.extend_from_slice(&["--drop-alerts-pct", "100"]);
    run_failing(&args, dropped.path());
    let (code, out) = compare(a.path(), dropped.path(), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("REGRESSION: sepsis raises news2-medium: missed/run 0.00 → 2.00"),
        "{out}"
    );
    // Another scenario: refused (exit 2), unless allowed.
    let (other, _) = run_passing(&[KNOBS, "--clock", "virtual"]);
    let (code, out) = compare(a.path(), other.path(), &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("A and B ran different scenarios")
            && out.contains("only in A: small-sepsis (small-sepsis.toml)")
            && out.contains("only in B: fault-knobs (fault-knobs.toml)"),
        "{out}"
    );
    let (code, out) = compare(a.path(), other.path(), &["--allow-different-scenarios"]);
    assert_ne!(code, Some(2), "{out}");
    assert!(
        out.contains("note: expectation only in B, not compared: news2 >= 7 raises news2-high"),
        "{out}"
    );
}
