//! The HTTP JSON wire format, medtwin's own (`medtwin_wire`, schema in
//! `docs/schemas/telemetry.schema.json`): one message per measurement.
//! A pure function of the twin's record, the names and the run's start.

use std::time::{Duration, SystemTime};

use medtwin_sim::{DeviceTime, Measurement};
use medtwin_wire::{
    TELEMETRY_SCHEMA, TelemetryMessage, WireEvent, WireValue, device_epoch, format_time,
};

use super::Encoder;

/// The names a measurement needs on the wire, by index.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Patient names by patient index.
    pub patients: Vec<String>,
    /// Device names by device index.
    pub devices: Vec<String>,
    /// Device model (catalogue entry) names by device index.
    pub models: Vec<String>,
}

impl Names {
    /// The twin's names: patients, devices, and each device's model
    /// (catalogue entry) name, its kind on the wire and in the report.
    pub fn of(twin: &medtwin_sim::Twin) -> Names {
        Names {
            patients: twin.patient_names().to_vec(),
            devices: twin.device_names().to_vec(),
            models: (0..twin.device_names().len() as u32)
                .map(|i| {
                    twin.device_model(i)
                        .map_or_else(String::new, |m| m.name.clone())
                })
                .collect(),
        }
    }
}

/// Encodes measurements as [`TelemetryMessage`] JSON.
#[derive(Clone, Debug)]
pub struct JsonEncoder {
    names: Names,
    start: SystemTime,
}

impl JsonEncoder {
    /// An encoder whose simulated time zero is the wall time `start`.
    pub fn new(names: Names, start: SystemTime) -> JsonEncoder {
        JsonEncoder { names, start }
    }

    /// The wire message for a measurement.
    pub fn message(&self, m: &Measurement) -> TelemetryMessage {
        let name = |list: &[String], idx: u32| list.get(idx as usize).cloned().unwrap_or_default();
        TelemetryMessage {
            schema: TELEMETRY_SCHEMA.to_owned(),
            synthetic: true,
            patient_id: name(&self.names.patients, m.patient_idx),
            device_id: name(&self.names.devices, m.device_idx),
            device_kind: name(&self.names.models, m.device_idx),
            seq: m.seq,
            measured_at: format_time(device_clock(self.start, m.device_time)),
            values: m
                .readings
                .as_slice()
                .iter()
                .map(|r| WireValue {
                    code: r.vital.code().to_owned(),
                    value: r.value,
                    unit: r.vital.unit().to_owned(),
                    loinc: r.vital.loinc().map(str::to_owned),
                })
                .collect(),
            alarm: m.alarm.map(|a| a.name().to_owned()),
            event: m.event.map(|e| WireEvent {
                kind: e.kind.name().to_owned(),
                scheduled_at: format_time(device_clock(
                    self.start,
                    shift(m.device_time, e.scheduled_ms as i64 - m.measured_ms as i64),
                )),
            }),
        }
    }
}

impl Encoder for JsonEncoder {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn encode(&self, m: &Measurement, out: &mut Vec<u8>) {
        // Serialising a struct of strings and numbers into memory cannot fail.
        let _ = serde_json::to_writer(out, &self.message(m));
    }
}

/// A device timestamp as wall-clock time, the run starting at `start`.
pub fn device_clock(start: SystemTime, t: DeviceTime) -> SystemTime {
    match t {
        DeviceTime::Synced(ms) if ms >= 0 => start + Duration::from_millis(ms as u64),
        DeviceTime::Synced(ms) => start - Duration::from_millis(ms.unsigned_abs()),
        DeviceTime::SinceEpoch(ms) => device_epoch() + Duration::from_millis(ms),
    }
}

/// The device time `delta_ms` later (earlier when negative).
fn shift(t: DeviceTime, delta_ms: i64) -> DeviceTime {
    match t {
        DeviceTime::Synced(ms) => DeviceTime::Synced(ms + delta_ms),
        DeviceTime::SinceEpoch(ms) => DeviceTime::SinceEpoch(ms.saturating_add_signed(delta_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtwin_sim::{DeviceKind, Quality, Reading, Readings, Vital};

    #[test]
    fn a_measurement_becomes_a_valid_telemetry_message() {
        let start = medtwin_wire::parse_time("2026-01-01T08:00:00Z").unwrap();
        let encoder = JsonEncoder::new(
            Names {
                patients: vec!["ward-000".into()],
                devices: vec!["ward-000/pulse_oximeter".into()],
                models: vec!["pulse_oximeter".into()],
            },
            start,
        );
        let m = Measurement {
            device_idx: 0,
            patient_idx: 0,
            kind: DeviceKind::PulseOximeter,
            seq: 3,
            measured_ms: 61_500,
            device_time: DeviceTime::Synced(61_500),
            readings: Readings::new(&[Reading {
                vital: Vital::Spo2,
                value: 96.0,
            }]),
            quality: Quality::Good,
            alarm: None,
            event: None,
        };
        let mut body = Vec::new();
        encoder.encode(&m, &mut body);
        let back: TelemetryMessage = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.measured_at, "2026-01-01T08:01:01.500Z");
        assert_eq!(back.values[0].loinc.as_deref(), Some("59408-5"));
        assert_eq!((back.patient_id.as_str(), back.seq), ("ward-000", 3));
        // A reset clock restarts at the device epoch.
        assert_eq!(
            format_time(device_clock(start, DeviceTime::SinceEpoch(1_000))),
            "2000-01-01T00:00:01.000Z"
        );
    }
}
