//! Cost of the FHIR encoder per message: a pulse-oximeter message (SpO2
//! and pulse rate) to two Observations, to compact JSON through them, and
//! straight to JSON (the encoder's path).
//! `cargo bench -p medtwin-fhir`.

use medtwin_fhir::bundle::to_json;
use medtwin_fhir::observation::{Refs, observations, write_observations};
use medtwin_wire::{TELEMETRY_SCHEMA, TelemetryMessage, WireValue};

fn main() {
    divan::main();
}

fn message() -> TelemetryMessage {
    let v = |code: &str, value: f64, unit: &str, loinc: &str| WireValue {
        code: code.into(),
        value,
        unit: unit.into(),
        loinc: Some(loinc.into()),
    };
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.into(),
        synthetic: true,
        patient_id: "ward-003".into(),
        device_id: "ward-003/pulse_oximeter".into(),
        device_kind: "pulse_oximeter".into(),
        seq: 1234,
        measured_at: "2026-01-01T08:00:01.500Z".into(),
        values: vec![
            v("spo2", 96.0, "%", "59408-5"),
            v("hr", 88.0, "/min", "8867-4"),
        ],
        alarm: None,
        event: None,
    }
}

#[divan::bench]
fn observations_of_a_message(b: divan::Bencher) {
    let m = message();
    let refs = Refs {
        patient: Some("Patient/1"),
        device: Some("Device/2"),
    };
    b.bench(|| {
        let mut out = Vec::with_capacity(2);
        observations(divan::black_box(&m), refs, &mut out);
        out
    });
}

#[divan::bench]
fn observations_to_json(b: divan::Bencher) {
    let m = message();
    let refs = Refs {
        patient: Some("Patient/1"),
        device: Some("Device/2"),
    };
    b.bench(|| {
        let mut out = Vec::with_capacity(2);
        observations(divan::black_box(&m), refs, &mut out);
        out.iter().map(to_json).collect::<Vec<_>>()
    });
}

#[divan::bench]
fn written_straight_to_json(b: divan::Bencher) {
    let m = message();
    let refs = Refs {
        patient: Some("Patient/1"),
        device: Some("Device/2"),
    };
    let mut out = Vec::with_capacity(4096);
    b.bench_local(|| {
        out.clear();
        write_observations(divan::black_box(&m), refs, &mut out);
        out.len()
    });
}
