//! What one message costs to encode, in each wire format the transports
//! carry (`json`, `fhir`, `hl7`): a pulse oximeter's SpO2 and pulse, a
//! blood pressure cycle (systolic, diastolic, mean) and a temperature,
//! encoded into a reused buffer as the twin's thread does.
//!
//! `cargo bench -p medtwin --bench encode` runs them; CI builds them. The
//! machines are shared and noisy: compare formats within one run.

use std::time::{Duration, SystemTime};

use divan::Bencher;
use divan::counter::ItemsCount;
use medtwin::scenario::interop::Encoding;
use medtwin::transport::Encoder as _;
use medtwin::transport::json::Names;
use medtwin::transport::select::{EncodeContext, encoder};
use medtwin_sim::{DeviceKind, DeviceTime, Measurement, Quality, Reading, Readings, Vital};

fn main() {
    divan::main();
}

fn measurement(device_idx: u32, kind: DeviceKind, readings: &[(Vital, f64)]) -> Measurement {
    let readings: Vec<Reading> = readings
        .iter()
        .map(|&(vital, value)| Reading { vital, value })
        .collect();
    Measurement {
        device_idx,
        patient_idx: 0,
        kind,
        seq: 1_234,
        measured_ms: 3_600_000,
        device_time: DeviceTime::Synced(3_600_000),
        readings: Readings::new(&readings),
        quality: Quality::Good,
        alarm: None,
        event: None,
    }
}

fn messages() -> Vec<Measurement> {
    vec![
        measurement(
            0,
            DeviceKind::PulseOximeter,
            &[(Vital::Spo2, 96.0), (Vital::Hr, 88.0)],
        ),
        measurement(
            1,
            DeviceKind::BpCuff,
            &[(Vital::Sbp, 104.0), (Vital::Dbp, 61.0), (Vital::Map, 75.0)],
        ),
        measurement(2, DeviceKind::Thermometer, &[(Vital::Temp, 38.4)]),
    ]
}

fn context() -> EncodeContext {
    EncodeContext {
        names: Names {
            patients: vec!["ward-000".into()],
            devices: vec![
                "ward-000/pulse_oximeter".into(),
                "ward-000/bp_cuff".into(),
                "ward-000/thermometer".into(),
            ],
            models: vec![
                "pulse_oximeter".into(),
                "bp_cuff".into(),
                "thermometer".into(),
            ],
        },
        start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_790_400),
    }
}

/// One message (of the three kinds in turn), per format.
#[divan::bench(args = ["json", "fhir", "hl7"])]
fn encode_one(bencher: Bencher, format: &str) {
    let Some(encoding) = Encoding::parse(format) else {
        return;
    };
    // A format this build cannot encode is skipped, not measured as zero.
    let Ok(encoder) = encoder(encoding, &context()) else {
        eprintln!("{format}: not available in this build");
        return;
    };
    let messages = messages();
    let mut out = Vec::with_capacity(4096);
    let mut i = 0;
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        out.clear();
        encoder.encode(&messages[i % messages.len()], &mut out);
        i += 1;
        divan::black_box(out.len())
    });
}
