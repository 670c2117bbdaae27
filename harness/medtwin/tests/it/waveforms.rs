//! `medtwin record` as a user runs it: the binary writes WFDB, EDF+ and
//! vitals files, and independent tools (PhysioNet's wfdb package, pyEDFlib;
//! scripts/validators/validate_waveforms.py) open them and score a
//! standard QRS detector against the true beats.

use std::process::Command;

use crate::common::{medtwin, root, text};
use medtwin::record::wfdb;

/// The Python with wfdb and pyedflib, or `None` (skip) unless CI requires it.
fn python() -> Option<String> {
    match std::env::var("MEDTWIN_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the waveform validators: set MEDTWIN_PYTHON (scripts/test.sh does)"
            );
            eprintln!("skipped: MEDTWIN_PYTHON is not set (the wfdb and pyedflib validators)");
            None
        }
    }
}

/// Records `scenario` into a fresh folder; insists it worked.
fn record(scenario: &str, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["record", scenario, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = medtwin(&args);
    assert_eq!(
        run.status.code(),
        Some(0),
        "medtwin {args:?}\nstdout:\n{}\nstderr:\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    out
}

/// Every case of fixtures/waveforms/rhythms.toml and the QRS complexes
/// its record must show.
const CASES: [(&str, &str); 16] = [
    ("sinus40_000_ecg_patch", "narrow"),
    ("sinus75_000_ecg_patch", "narrow"),
    ("sinus120_000_ecg_patch", "narrow"),
    ("sinus180_000_ecg_patch", "narrow"),
    ("noisy75_000_ecg_patch", "narrow"),
    ("noisy150_000_ecg_patch", "narrow"),
    ("af80_000_ecg_patch", "narrow"),
    ("af160_000_ecg_patch", "narrow"),
    ("afnoisy_000_ecg_patch", "narrow"),
    ("pvc_000_ecg_patch", "narrow"),
    ("vt_000_ecg_patch", "wide"),
    ("vf_000_ecg_patch", "none"),
    ("noisy40_000_ecg_patch", "narrow"),
    ("noisy180_000_ecg_patch", "narrow"),
    ("afnoisy80_000_ecg_patch", "narrow"),
    ("afnoisy160_000_ecg_patch", "narrow"),
];

#[test]
fn recorded_rhythms_pass_independent_qrs_detection_and_open_in_wfdb_and_pyedflib() {
    let out = record("fixtures/waveforms/rhythms.toml", &[]);
    // Our own reading first: every record has its files and annotations.
    let records = std::fs::read_to_string(out.path().join("RECORDS")).unwrap();
    assert_eq!(records.lines().count(), CASES.len(), "{records}");
    for (name, _) in CASES {
        for ext in ["hea", "dat", "atr", "edf"] {
            assert!(
                out.path().join(format!("{name}.{ext}")).is_file(),
                "{name}.{ext}"
            );
        }
        let atr = std::fs::read(out.path().join(format!("{name}.atr"))).unwrap();
        let annotations = wfdb::read_annotations(&atr).unwrap();
        let first = &annotations[0];
        assert_eq!((first.sample, first.code), (0, wfdb::RHYTHM), "{name}");
    }
    let vitals = std::fs::read_to_string(out.path().join("vitals.csv")).unwrap();
    assert!(vitals.starts_with("time_s,patient,hr_bpm,"));
    assert_eq!(vitals.lines().count(), 1 + 120 * CASES.len());
    let ndjson = std::fs::read_to_string(out.path().join("vitals.ndjson")).unwrap();
    for line in ndjson.lines().take(20) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["hr_bpm"].is_number() && v["rhythm"].is_string(), "{line}");
    }

    let Some(python) = python() else { return };
    let mut args = vec![
        root()
            .join("scripts/validators/validate_waveforms.py")
            .display()
            .to_string(),
        out.path().display().to_string(),
    ];
    args.extend(
        CASES
            .iter()
            .map(|(name, expect)| format!("{name}={expect}")),
    );
    let run = Command::new(python).args(&args).output().unwrap();
    let report = text(&run.stdout);
    assert!(run.status.success(), "{report}{}", text(&run.stderr));
    // What the validator saw, for the record (and to check it checked).
    let results: Vec<serde_json::Value> = report
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(results.len(), CASES.len(), "{report}");
    let by_name = |name: &str| results.iter().find(|r| r["record"] == name).unwrap();
    assert_eq!(by_name("vt_000_ecg_patch")["rhythms"][0], "(VT");
    // Both independent detectors scored every record with beats.
    for (name, expect) in CASES.iter().filter(|(_, e)| *e != "none") {
        for detector in ["xqrs", "neurokit2"] {
            let se = by_name(name)[detector]["sensitivity"].as_f64();
            assert!(
                se.is_some_and(|se| se >= 0.995),
                "{name} ({expect}) {detector}: {se:?}"
            );
        }
    }
    assert_eq!(by_name("af80_000_ecg_patch")["rhythms"][1], "(AFIB");
    assert!(
        by_name("pvc_000_ecg_patch")["ventricular"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Sinus and AF apart by RR irregularity, on the exported truth.
    for (name, expect) in CASES {
        let rmssd = by_name(name)["rmssd_over_rr"].as_f64();
        if name.starts_with("sinus") || name.starts_with("noisy") {
            assert!(rmssd.unwrap() < 0.1, "{name}: {rmssd:?}");
        } else if name.starts_with("af") {
            assert!(rmssd.unwrap() > 0.15, "{name}: {rmssd:?}");
        } else if expect == "none" {
            assert!(rmssd.is_none());
        }
    }
    eprintln!("{report}");
}

#[test]
fn the_same_seed_records_the_same_bytes() {
    let a = record("fixtures/waveforms/rhythms.toml", &["--formats", "wfdb"]);
    let b = record("fixtures/waveforms/rhythms.toml", &["--formats", "wfdb"]);
    for (name, _) in CASES {
        for ext in ["hea", "dat", "atr"] {
            let file = format!("{name}.{ext}");
            assert_eq!(
                std::fs::read(a.path().join(&file)).unwrap(),
                std::fs::read(b.path().join(&file)).unwrap(),
                "{file}"
            );
        }
    }
    assert!(
        !a.path().join("vitals.csv").exists(),
        "--formats wfdb writes only WFDB"
    );
    let c = record(
        "fixtures/waveforms/rhythms.toml",
        &["--formats", "wfdb", "--seed", "8"],
    );
    let file = "sinus75_000_ecg_patch.dat";
    assert_ne!(
        std::fs::read(a.path().join(file)).unwrap(),
        std::fs::read(c.path().join(file)).unwrap()
    );
}

#[test]
fn bad_input_is_an_error_with_file_and_field_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\nduration = \"1m\"\n[[cohort]]\nname = \"w\"\ncount = 1\n\
         devices = [{ kind = \"ecg_patch\", waveforms = true, waveform_hz = 300 }]\n",
    )
    .unwrap();
    let run = medtwin(&[
        "record",
        bad.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let err = text(&run.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("waveform_hz"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // An output folder that cannot be created: exit 3, the path named.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("sub");
    let run = medtwin(&[
        "record",
        "fixtures/waveforms/rhythms.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    let err = text(&run.stderr);
    assert!(err.contains("a-file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The lead-off fixture's record (ECG lead II and respiration, 250 Hz).
const LEAD_OFF: &str = "bay_000_loose_ecg_patch";

#[test]
fn lead_off_episodes_are_noise_annotations_where_the_ecg_is_flat() {
    let out = record("fixtures/waveforms/lead-off.toml", &[]);
    let atr = std::fs::read(out.path().join(format!("{LEAD_OFF}.atr"))).unwrap();
    let annotations = wfdb::read_annotations(&atr).unwrap();
    let noise: Vec<(u64, i8)> = annotations
        .iter()
        .filter(|a| a.code == wfdb::NOISE)
        .map(|a| (a.sample, a.subtyp.unwrap_or(0)))
        .collect();
    assert!(noise.len() >= 4, "a few episodes in ten minutes: {noise:?}");
    // Off (ECG, signal 0, and respiration, signal 1, unreadable) and on
    // again, alternately.
    for (k, (_, subtyp)) in noise.iter().enumerate() {
        assert_eq!(*subtyp, if k % 2 == 0 { 0x30 } else { 0 }, "{noise:?}");
    }
    // The samples themselves (format 16, two interleaved signals): the ECG
    // is exactly 0 from each `~` off to its `~` on, and nowhere else for a
    // whole second.
    let dat = std::fs::read(out.path().join(format!("{LEAD_OFF}.dat"))).unwrap();
    let ecg: Vec<i16> = dat
        .chunks_exact(4)
        .map(|f| i16::from_le_bytes([f[0], f[1]]))
        .collect();
    let off = |s: usize| {
        noise
            .chunks(2)
            .any(|p| s as u64 >= p[0].0 && p.get(1).is_none_or(|on| (s as u64) < on.0))
    };
    for (s, &v) in ecg.iter().enumerate() {
        if off(s) {
            assert_eq!(v, 0, "sample {s} inside a lead-off episode");
        }
    }
    for second in ecg.chunks(250).enumerate() {
        let (i, samples) = second;
        if !off(i * 250) {
            assert!(
                samples.iter().any(|&v| v != 0),
                "second {i} flat, not annotated"
            );
        }
    }
    // The EDF+ annotations say the same.
    let edf = std::fs::read(out.path().join(format!("{LEAD_OFF}.edf"))).unwrap();
    let edf = String::from_utf8_lossy(&edf);
    assert_eq!(
        edf.matches("lead off").count(),
        noise.len().div_ceil(2),
        "EDF+ lead off notes"
    );

    // PhysioNet's reader sees the same `~` at the same samples, with the
    // same subtypes.
    let Some(python) = python() else { return };
    let script = format!(
        "import wfdb, json\n\
         a = wfdb.rdann({:?}, 'atr')\n\
         print(json.dumps([[int(s), int(t)] for s, y, t in zip(a.sample, a.symbol, a.subtype) if y == '~']))\n",
        out.path().join(LEAD_OFF).display().to_string()
    );
    let run = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let read: Vec<(u64, i8)> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(read, noise, "wfdb.rdann");
}
