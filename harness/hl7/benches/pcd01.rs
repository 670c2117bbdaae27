//! Encoding cost of one PCD-01 `ORU^R01` (and decoding it back).
//! `cargo bench -p medtwin-hl7`. On the 2-core build machine (2026-12):
//! encode 4.9 µs median for a two-value oximeter message (~200 k
//! messages/s on one core), parse and decode 23 µs.

use medtwin_hl7::{Message, Pcd01Options, decode_oru_r01, encode_oru_r01};
use medtwin_wire::{TELEMETRY_SCHEMA, TelemetryMessage, WireValue};

fn main() {
    divan::main();
}

fn oximeter() -> TelemetryMessage {
    let v = |code: &str, value, unit: &str, loinc: &str| WireValue {
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
        seq: 4711,
        measured_at: "2026-01-01T08:00:01.000Z".into(),
        values: vec![
            v("spo2", 97.0, "%", "59408-5"),
            v("hr", 72.0, "/min", "8867-4"),
        ],
        alarm: None,
        event: None,
    }
}

#[divan::bench]
fn encode_oru_r01_oximeter(b: divan::Bencher) {
    let (m, opts) = (oximeter(), Pcd01Options::default());
    b.bench(|| encode_oru_r01(divan::black_box(&m), &opts));
}

#[divan::bench]
fn parse_and_decode_oru_r01_oximeter(b: divan::Bencher) {
    let text = encode_oru_r01(&oximeter(), &Pcd01Options::default());
    b.bench(|| decode_oru_r01(&Message::parse(divan::black_box(&text)).unwrap()).unwrap());
}
