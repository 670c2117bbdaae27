//! The twin's numbers are pinned: every shipped scenario (and the fixture
//! runs) must give the truth and telemetry digests recorded in
//! `fixtures/pinned/digests.toml`, whatever else changes around the twin.

use crate::common::root;
use medtwin::run::digest;
use medtwin::scenario;
use serde::Deserialize;

#[derive(Deserialize)]
struct Pinned {
    run: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    scenario: String,
    telemetry: String,
    truth: String,
}

fn pinned() -> Pinned {
    let text = std::fs::read_to_string(root().join("fixtures/pinned/digests.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

#[test]
fn every_shipped_scenario_is_pinned() {
    let pinned = pinned();
    let mut dirs = vec![root().join("scenarios")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let relative = path.strip_prefix(root()).unwrap().to_string_lossy();
                assert!(
                    pinned.run.iter().any(|r| r.scenario == relative),
                    "{relative} has no digests in fixtures/pinned/digests.toml"
                );
            }
        }
    }
}

/// Set MEDTWIN_BLESS=1 to rewrite the pinned digests after a deliberate
/// change to the twin's numbers (the file's comments and order are kept;
/// say why in the commit).
#[test]
fn digests_of_every_shipped_scenario_are_unchanged() {
    let mut changed = Vec::new();
    let mut now = Vec::new();
    for run in pinned().run {
        let s = scenario::load(&root().join(&run.scenario))
            .unwrap_or_else(|d| panic!("{}: {d}", run.scenario));
        let got = digest::of_run(&s.sim).unwrap();
        if got.telemetry != run.telemetry || got.truth != run.truth {
            changed.push(format!(
                "{}: telemetry {} (pinned {}), truth {} (pinned {})",
                run.scenario, got.telemetry, run.telemetry, got.truth, run.truth
            ));
        }
        now.push((run.scenario, got.telemetry, got.truth));
    }
    if std::env::var_os("MEDTWIN_BLESS").is_some() {
        bless(&now);
        return;
    }
    assert!(
        changed.is_empty(),
        "digests changed (after a deliberate change, rewrite them with \
         `MEDTWIN_BLESS=1 cargo test -p medtwin --test it digests`):\n{}",
        changed.join("\n")
    );
}

/// Rewrites the `telemetry` and `truth` lines of each run in the pinned
/// file, keeping everything else.
fn bless(runs: &[(String, String, String)]) {
    let path = root().join("fixtures/pinned/digests.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut current: Option<&(String, String, String)> = None;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("scenario = ") {
            let name = name.trim_matches('"');
            current = runs.iter().find(|r| r.0 == name);
        }
        match (current, line.split_once(" = ")) {
            (Some(run), Some(("telemetry", _))) => {
                out.push_str(&format!("telemetry = \"{}\"", run.1))
            }
            (Some(run), Some(("truth", _))) => out.push_str(&format!("truth = \"{}\"", run.2)),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
}
