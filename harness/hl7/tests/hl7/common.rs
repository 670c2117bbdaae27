//! Shared samples and helpers.

use std::path::PathBuf;
use std::process::Command;

use medtwin_hl7::{AlertReport, EventPhase, Trigger};
use medtwin_wire::{AlertMessage, Priority, TELEMETRY_SCHEMA, TelemetryMessage, WireValue};

pub fn value(code: &str, value: f64, unit: &str, loinc: Option<&str>) -> WireValue {
    WireValue {
        code: code.into(),
        value,
        unit: unit.into(),
        loinc: loinc.map(Into::into),
    }
}

pub fn telemetry(kind: &str, values: Vec<WireValue>, alarm: Option<&str>) -> TelemetryMessage {
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.into(),
        synthetic: true,
        patient_id: "ward-003".into(),
        device_id: format!("ward-003/{kind}"),
        device_kind: kind.into(),
        seq: 4711,
        measured_at: "2026-01-01T08:00:01.250Z".into(),
        values,
        alarm: alarm.map(Into::into),
        event: None,
    }
}

/// One message of every device the catalogue ships, with the values it
/// sends, plus alarm-only messages.
pub fn every_device() -> Vec<TelemetryMessage> {
    vec![
        telemetry(
            "pulse_oximeter",
            vec![
                value("spo2", 97.0, "%", Some("59408-5")),
                value("hr", 72.0, "/min", Some("8867-4")),
            ],
            None,
        ),
        telemetry(
            "ring_oximeter",
            vec![value("spo2", 93.5, "%", Some("59408-5"))],
            None,
        ),
        telemetry(
            "ecg_patch",
            vec![value("hr", 131.0, "/min", Some("8867-4"))],
            None,
        ),
        telemetry(
            "bp_cuff",
            vec![
                value("sbp", 118.0, "mm[Hg]", Some("8480-6")),
                value("dbp", 76.0, "mm[Hg]", Some("8462-4")),
                value("map", 90.0, "mm[Hg]", Some("8478-0")),
            ],
            None,
        ),
        telemetry(
            "thermometer",
            vec![value("temp", 38.25, "Cel", Some("8310-5"))],
            None,
        ),
        telemetry(
            "resp_monitor",
            vec![value("rr", 22.0, "/min", Some("9279-1"))],
            None,
        ),
        telemetry(
            "cgm",
            vec![value("glucose", 141.0, "mg/dL", Some("99504-3"))],
            None,
        ),
        telemetry(
            "weight_scale",
            vec![value("weight", 81.35, "kg", Some("29463-7"))],
            None,
        ),
        telemetry(
            "infusion_pump",
            vec![value("infusion_rate", 125.0, "mL/h", None)],
            None,
        ),
        telemetry(
            "nurse_observations",
            vec![
                value("acvpu", 2.0, "{ACVPU}", Some("80288-4")),
                value("o2_flow", 2.0, "L/min", Some("3151-8")),
                value("spo2_scale", 2.0, "{scale}", None),
            ],
            None,
        ),
        telemetry("ecg_patch", vec![], Some("lead_off")),
        telemetry("pulse_oximeter", vec![], Some("low_perfusion")),
        telemetry(
            "infusion_pump",
            vec![value("infusion_rate", 0.0, "mL/h", None)],
            Some("occlusion"),
        ),
    ]
}

pub fn alert(kind: &str, priority: Priority, score: Option<i64>) -> AlertMessage {
    AlertMessage {
        schema: None,
        alert_id: Some(format!("ward-003/{kind}/1")),
        patient_id: "ward-003".into(),
        kind: kind.into(),
        priority,
        measurement_time: Some("2026-01-01T08:00:01.250Z".into()),
        score,
    }
}

/// A report of every phase and kind medtwin's backend sends.
pub fn every_report() -> Vec<AlertReport> {
    let trigger = Trigger {
        value: value("spo2", 88.0, "%", Some("59408-5")),
        time: "2026-01-01T08:00:01.250Z".into(),
    };
    let mut out = Vec::new();
    for (phase, time) in [
        (EventPhase::Start, "2026-01-01T08:00:02.000Z"),
        (EventPhase::Escalate, "2026-01-01T08:10:00.000Z"),
        (EventPhase::End, "2026-01-01T09:00:00.000Z"),
    ] {
        out.push(AlertReport::from_alert(
            &alert("news2-high", Priority::High, Some(8)),
            phase.clone(),
            time,
            Some(trigger.clone()),
        ));
        out.push(AlertReport::from_alert(
            &alert("news2-medium", Priority::Medium, Some(5)),
            phase.clone(),
            time,
            Some(trigger.clone()),
        ));
        out.push(AlertReport::from_alert(
            &alert("device-lead-off", Priority::Low, None),
            phase,
            time,
            None,
        ));
    }
    out
}

/// The Python with hl7apy, or `None` (skip) unless CI requires it.
pub fn python() -> Option<String> {
    match std::env::var("MEDTWIN_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the HL7 validator: set MEDTWIN_PYTHON (scripts/test.sh does)"
            );
            eprintln!("skipped: MEDTWIN_PYTHON is not set (the hl7apy validator)");
            None
        }
    }
}

pub fn validator_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/validators/validate_hl7.py")
}

/// Runs validate_hl7.py on each (name, message); returns its exit status
/// and output.
pub fn validate(python: &str, messages: &[(String, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, text) in messages {
        let path = dir.path().join(format!("{name}.hl7"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let out = Command::new(python)
        .arg(validator_script())
        .args(&files)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
