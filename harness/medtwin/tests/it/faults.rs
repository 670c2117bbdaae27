//! Each fault knob of the reference backend is caught by the checker with
//! its own outcome: the `medtwin` binary, the embedded backend and the
//! webhook on loopback. Tests that only count alerts run in virtual time;
//! those that depend on when alerts arrive run accelerated.

use std::process::Command;

use crate::common::root;
use serde_json::Value;

const FIXTURE: &str = "fixtures/scenarios/fault-knobs.toml";
const MEDIUM: usize = 0; // "sepsis raises news2-medium" (episode)
const HIGH: usize = 1; // "news2 >= 7 raises news2-high" (rule oracle)

/// Runs the fixture with `flags`; returns the exit code and report.json.
fn run(flags: &[&str]) -> (Option<i32>, Value) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["run", FIXTURE, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(flags);
    let done = Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(&args)
        .current_dir(root())
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .output()
        .unwrap();
    let json = std::fs::read_to_string(out.path().join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        )
    });
    (done.status.code(), serde_json::from_str(&json).unwrap())
}

fn n(e: &Value, field: &str) -> u64 {
    e[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {e}"))
}

#[test]
fn a_healthy_backend_passes_the_fixture() {
    let (code, r) = run(&[]);
    assert_eq!(code, Some(0), "{:#}", r["expectations"]);
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!(n(e, "hits"), 2, "{e}");
        assert_eq!(
            n(e, "false_alerts") + n(e, "duplicates") + n(e, "missed"),
            0,
            "{e}"
        );
    }
}

#[test]
fn dropped_alerts_are_missed() {
    let (code, r) = run(&["--clock", "virtual", "--drop-alerts-pct", "100"]);
    assert_eq!(code, Some(1));
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!((n(e, "missed"), n(e, "hits")), (2, 0), "{e}");
    }
}

#[test]
fn delayed_alerts_are_late() {
    // Delay is wall time on the backend: accelerated so 25 simulated
    // minutes are about 1 s of wall time.
    let (code, r) = run(&[
        "--clock",
        "accelerated",
        "--speed",
        "1500",
        "--delay-alerts",
        "25m",
    ]);
    assert_eq!(code, Some(1));
    let e = &r["expectations"][HIGH];
    assert_eq!(n(e, "late"), 2, "{e}");
    assert!(
        e["latency_ms"]["p50"].as_u64().unwrap() >= 25 * 60_000,
        "{e}"
    );
}

#[test]
fn duplicated_alerts_are_duplicates() {
    let (code, r) = run(&["--clock", "virtual", "--duplicate-alerts-pct", "100"]);
    assert_eq!(code, Some(1));
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!((n(e, "hits"), n(e, "duplicates")), (2, 2), "{e}");
        assert_eq!(n(e, "false_alerts"), 0, "{e}");
        assert!(
            e["failures"][0].as_str().unwrap().contains("duplicate"),
            "{e}"
        );
    }
    assert_eq!(r["backend"]["alerts_duplicated_by_fault"], 4);
}

#[test]
fn spurious_alerts_are_false() {
    let (code, r) = run(&["--clock", "virtual", "--spurious-alerts-pct", "1"]);
    assert_eq!(code, Some(1));
    let e = &r["expectations"][MEDIUM];
    // Healthy patients get spurious alerts: false, with nothing owed.
    assert!(n(e, "false_alerts") > 5, "{e}");
    // A false alert is on a patient with no episode, or before the onset
    // (5 min) of a septic one; after the onset it would be a duplicate.
    let explained = e["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["outcome"] == "false")
        .all(|o| {
            !matches!(o["patient"].as_str(), Some("bay-000" | "bay-001"))
                || o["alert_ms"].as_u64().unwrap() < 5 * 60_000
        });
    assert!(explained, "{e}");
    assert!(r["backend"]["alerts_spurious_by_fault"].as_u64().unwrap() > 5);
}

#[test]
fn alerts_naming_the_wrong_patient_are_missed_and_false() {
    let (code, r) = run(&["--clock", "virtual", "--wrong-patient-pct", "100"]);
    assert_eq!(code, Some(1));
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!((n(e, "missed"), n(e, "false_alerts")), (2, 2), "{e}");
        assert_eq!(n(e, "hits"), 0, "{e}");
    }
}

#[test]
fn alerts_of_the_wrong_kind_are_false_where_the_rule_never_held() {
    // x600: the swapped alerts come minutes (simulated) before NEWS2 >= 7
    // holds; a slower clock keeps that margin wide on a busy machine.
    let (code, r) = run(&["--speed", "600", "--wrong-kind-pct", "100"]);
    assert_eq!(code, Some(1));
    // news2-medium alerts sent as news2-high arrive before NEWS2 >= 7
    // held on the delivered data: false; the real news2-high never comes.
    let e = &r["expectations"][HIGH];
    assert_eq!(
        (n(e, "false_alerts"), n(e, "missed"), n(e, "hits")),
        (2, 2, 0),
        "{e}"
    );
    assert!(r["alerts"]["by_kind"]["news2-high"].as_u64().unwrap() >= 2);
}
