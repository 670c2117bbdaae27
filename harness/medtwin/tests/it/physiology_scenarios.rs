//! The physiology as a user reaches it: profiles from catalogue files and
//! inline tables, `medtwin list`, `medtwin bench sim`, and the training
//! scenarios run end to end against the reference backend.

use crate::common::{check_schema, medtwin, report, root, run_passing, text};
use medtwin::scenario;
use medtwin_sim::glucose::Metabolism;
use serde_json::Value;

#[test]
fn scenario_profiles_come_from_catalogue_files_and_inline_tables() {
    let s = scenario::load(&root().join("fixtures/scenarios/custom-profile.toml")).unwrap();
    let runners = &s.sim.cohorts[0].profile;
    assert_eq!(runners.name, "endurance_athlete");
    assert_eq!(runners.hr.mean, 50.0);
    // Inherited from healthy_adult.
    assert_eq!(runners.sbp.mean, 118.0);
    assert_eq!(runners.meals.len(), 1);
    let frail = &s.sim.cohorts[1].profile;
    assert_eq!(frail.age.mean, 84.0);
    // Inherited through copd from older_adult.
    assert_eq!(frail.spo2_scale, 2);
    assert_eq!(frail.metabolism, Metabolism::NonDiabetic);
    assert_eq!(s.sim.start_ms_of_day, (6 * 60 + 30) * 60_000);
    assert_eq!(s.sim.interventions.len(), 1);
    // The twin draws from them: athletes' resting HR sits near 50.
    let mut twin = medtwin_sim::Twin::new(&s.sim).unwrap();
    twin.step();
    for p in 0..3 {
        let hr = twin.vitals(p).unwrap().hr_bpm;
        assert!((35.0..65.0).contains(&hr), "runner {p}: HR {hr}");
    }
}

#[test]
fn every_shipped_scenario_and_fixture_validates_and_says_what_it_tests() {
    let mut files = Vec::new();
    let mut dirs = vec![root().join("scenarios"), root().join("fixtures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml")
                && !path.components().any(|c| c.as_os_str() == "invalid")
                && !path
                    .parent()
                    .is_some_and(|d| d.ends_with("profiles") || d.ends_with("pinned"))
            {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        if let Err(d) = scenario::load(&file) {
            panic!("{}:\n{d}", file.display());
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with('#'),
            "{} must open with a comment saying what it tests",
            file.display()
        );
    }
}

#[test]
fn list_prints_profiles_conditions_and_interventions() {
    let out = medtwin(&[
        "list",
        "profiles",
        "--catalogue",
        "fixtures/profiles/athletes.toml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in [
        "healthy_adult",
        "copd",
        "type1_diabetes",
        "endurance_athlete",
    ] {
        assert!(stdout.contains(name), "{name} in\n{stdout}");
    }
    let out = medtwin(&["list", "interventions"]);
    assert!(text(&out.stdout).contains("naloxone"));
    let out = medtwin(&["list", "conditions"]);
    assert!(text(&out.stdout).contains("cardiac_arrest"));
    let out = medtwin(&["list", "profiles", "--catalogue", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.toml"));
}

#[test]
fn bench_sim_reports_throughput_and_state_size() {
    let out = medtwin(&[
        "bench",
        "sim",
        "--patients",
        "2000",
        "--steps",
        "5",
        "--threads",
        "2",
        "--sick-pct",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2000 patients (5% with conditions) x 5 steps"),
        "{stdout}"
    );
    assert!(stdout.contains("million patient-steps/s"), "{stdout}");
    assert!(stdout.contains("B of components"), "{stdout}");
    assert!(stdout.contains("patient-minutes/s"), "{stdout}");
}

/// Runs a training scenario in virtual time: its lockstep windows place
/// alerts within a simulated second, as the scenario's own accelerated
/// clock would, without a loaded CI machine's wall-clock lag. Returns the
/// report, checked against its documented schema.
fn training(file: &str) -> Value {
    let (out, stdout) = run_passing(&[file, "--clock", "virtual"]);
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    let r = report(out.path());
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/report.schema.json")).unwrap(),
    )
    .unwrap();
    check_schema(&schema, &schema, &r, "report").unwrap();
    r
}

#[test]
fn training_opioid_depression_is_alerted() {
    let r = training("scenarios/training/post-op-opioid.toml");
    // The report carries the truth an educator debriefs from: when each
    // patient met PRODIGY, and the naloxone given.
    let episodes = r["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 2);
    for e in episodes {
        let met = e["criteria"]["respiratory_depression"].as_u64().unwrap();
        assert!(met > e["onset_ms"].as_u64().unwrap(), "{e}");
    }
    let given = r["interventions"].as_array().unwrap();
    assert_eq!(given.len(), 1);
    assert_eq!(given[0]["kind"], "naloxone");
    assert_eq!(given[0]["patient"], "surgical-003");
    assert_eq!(given[0]["params"]["dose_mg"], 0.4);
}

#[test]
fn training_haemorrhage_is_alerted() {
    let r = training("scenarios/training/haemorrhage-fluids.toml");
    let given = r["interventions"].as_array().unwrap();
    assert_eq!(given[0]["kind"], "iv_fluids");
    assert_eq!(given[0]["params"]["volume_ml"], 2000.0);
}

#[test]
fn training_af_is_alerted() {
    let r = training("scenarios/training/paroxysmal-af.toml");
    // The paroxysm left alone stops after its 90 minutes.
    let episodes = r["episodes"].as_array().unwrap();
    let ended: Vec<_> = episodes
        .iter()
        .filter(|e| e["end_reason"] == "duration")
        .collect();
    assert_eq!(ended.len(), 2, "{episodes:?}");
    let stepdown6 = episodes
        .iter()
        .find(|e| e["patient"] == "stepdown-006")
        .unwrap();
    assert_eq!(
        stepdown6["end_ms"].as_u64().unwrap() - stepdown6["onset_ms"].as_u64().unwrap(),
        90 * 60_000
    );
}
