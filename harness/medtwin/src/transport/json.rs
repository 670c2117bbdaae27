//! The HTTP JSON wire format, medtwin's own (`medtwin_wire`, schema in
//! `docs/schemas/telemetry.schema.json`): one message per measurement.
//! A pure function of the twin's record, the names and the run's start.

use std::time::{Duration, SystemTime};

use medtwin_sim::{DeviceTime, Measurement, Vital};
use medtwin_wire::{
    TELEMETRY_SCHEMA, TelemetryMessage, WireEvent, WireValue, device_epoch, format_time, write_time,
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
///
/// [`Encoder::encode`] writes the bytes directly (the load generator's hot
/// path: no message struct, no allocation): the fixed parts (each
/// patient's and each device's names, each vital's code, unit and LOINC)
/// are escaped once, here. Its output is byte for byte `serde_json`'s for [`message`]
/// (`JsonEncoder::message`), which a property test holds it to.
#[derive(Clone, Debug)]
pub struct JsonEncoder {
    names: Names,
    start: SystemTime,
    /// The message's fixed parts, escaped once.
    parts: Parts,
}

/// A message's fixed parts as JSON text, so that encoding is a few copies.
#[derive(Clone, Debug, Default)]
struct Parts {
    /// By patient: `{"schema":…,"synthetic":true,"patient_id":"<name>"`.
    patients: Vec<Box<[u8]>>,
    /// By device: `,"device_id":"<name>","device_kind":"<model>","seq":`.
    devices: Vec<Box<[u8]>>,
    /// Both for an index past the names (empty names, as `message`).
    no_patient: Box<[u8]>,
    no_device: Box<[u8]>,
    /// By `Vital as usize`: `{"code":…,"value":` and `,"unit":…}`.
    vitals: Vec<Option<VitalParts>>,
}

/// A reading's text before and after its value.
type VitalParts = (Box<[u8]>, Box<[u8]>);

/// A reading's text around its value: `{"code":…,"value":` and
/// `,"unit":…,"loinc":…}` (no LOINC key where the vital has none).
fn vital_parts(v: Vital) -> VitalParts {
    let mut open = b"{\"code\":".to_vec();
    json_str(v.code(), &mut open);
    open.extend_from_slice(b",\"value\":");
    let mut close = b",\"unit\":".to_vec();
    json_str(v.unit(), &mut close);
    if let Some(loinc) = v.loinc() {
        close.extend_from_slice(b",\"loinc\":");
        json_str(loinc, &mut close);
    }
    close.push(b'}');
    (open.into_boxed_slice(), close.into_boxed_slice())
}

/// The name at `i`, empty past the list.
fn name_at(list: &[String], i: usize) -> &str {
    list.get(i).map_or("", String::as_str)
}

impl Parts {
    fn new(names: &Names) -> Parts {
        let patient = |name: &str| -> Box<[u8]> {
            let mut out =
                format!("{{\"schema\":\"{TELEMETRY_SCHEMA}\",\"synthetic\":true,\"patient_id\":")
                    .into_bytes();
            json_str(name, &mut out);
            out.into_boxed_slice()
        };
        let device = |name: &str, model: &str| -> Box<[u8]> {
            let mut out = b",\"device_id\":".to_vec();
            json_str(name, &mut out);
            out.extend_from_slice(b",\"device_kind\":");
            json_str(model, &mut out);
            out.extend_from_slice(b",\"seq\":");
            out.into_boxed_slice()
        };
        let device_count = names.devices.len().max(names.models.len());
        let mut vitals = vec![
            None;
            Vital::ALL
                .iter()
                .map(|&v| v as usize + 1)
                .max()
                .unwrap_or(0)
        ];
        for v in Vital::ALL {
            vitals[v as usize] = Some(vital_parts(v));
        }
        Parts {
            patients: names.patients.iter().map(|n| patient(n)).collect(),
            devices: (0..device_count)
                .map(|i| device(name_at(&names.devices, i), name_at(&names.models, i)))
                .collect(),
            no_patient: patient(""),
            no_device: device("", ""),
            vitals,
        }
    }
}

impl JsonEncoder {
    /// An encoder whose simulated time zero is the wall time `start`.
    pub fn new(names: Names, start: SystemTime) -> JsonEncoder {
        let parts = Parts::new(&names);
        JsonEncoder {
            names,
            start,
            parts,
        }
    }

    /// The wire message for a measurement.
    pub fn message(&self, m: &Measurement) -> TelemetryMessage {
        let name = |list: &[String], idx: u32| name_at(list, idx as usize).to_owned();
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
        let parts = &self.parts;
        // Room for a whole message, so that no write below regrows it.
        out.reserve(512);
        out.extend_from_slice(
            parts
                .patients
                .get(m.patient_idx as usize)
                .unwrap_or(&parts.no_patient),
        );
        out.extend_from_slice(
            parts
                .devices
                .get(m.device_idx as usize)
                .unwrap_or(&parts.no_device),
        );
        json_value(&m.seq, out);
        out.extend_from_slice(b",\"measured_at\":\"");
        write_time(device_clock(self.start, m.device_time), out);
        out.extend_from_slice(b"\",\"values\":[");
        for (i, r) in m.readings.as_slice().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Every vital is in the table; one missing would be built here.
            let built;
            let (open, close) = match parts.vitals.get(r.vital as usize) {
                Some(Some(p)) => p,
                _ => {
                    built = vital_parts(r.vital);
                    &built
                }
            };
            out.extend_from_slice(open);
            json_value(&r.value, out);
            out.extend_from_slice(close);
        }
        out.push(b']');
        if let Some(alarm) = m.alarm {
            out.extend_from_slice(b",\"alarm\":");
            json_str(alarm.name(), out);
        }
        if let Some(e) = m.event {
            out.extend_from_slice(b",\"event\":{\"kind\":");
            json_str(e.kind.name(), out);
            out.extend_from_slice(b",\"scheduled_at\":\"");
            let at = shift(m.device_time, e.scheduled_ms as i64 - m.measured_ms as i64);
            write_time(device_clock(self.start, at), out);
            out.extend_from_slice(b"\"}");
        }
        out.push(b'}');
    }
}

/// `s` as a JSON string literal: copied between quotes when nothing in it
/// needs escaping (what serde_json escapes: `"`, `\\` and control
/// characters), else serde_json's escaping.
fn json_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        json_value(s, out);
    }
}

/// A number (or any value) as serde_json writes it.
fn json_value<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Serialising a number or a string into memory cannot fail.
    let _ = serde_json::to_writer(out, v);
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

    /// The direct encoder writes exactly serde_json's text of the message:
    /// every vital, alarm and event, names that need escaping (quotes,
    /// backslashes, control characters, non-ASCII), indices past the
    /// names, values that are not finite, clocks before the run, reset
    /// clocks, and times outside the fast path.
    #[test]
    fn direct_encoding_is_serde_jsons_byte_for_byte() {
        use medtwin_sim::{DeviceEvent, EventKind, TechAlarm};
        use quickcheck::{Gen, QuickCheck};

        #[allow(clippy::type_complexity)]
        fn same(
            names: Vec<(String, String, String)>,
            idx: (u8, u8),
            readings: Vec<(u8, f64)>,
            when: (bool, i64, u64),
            extras: (Option<u8>, Option<(u8, u32)>),
        ) -> bool {
            let names = Names {
                patients: names.iter().map(|n| n.0.clone()).collect(),
                devices: names.iter().map(|n| n.1.clone()).collect(),
                // Fewer models than devices: the rest are empty, as in `message`.
                models: names
                    .iter()
                    .take(names.len() / 2)
                    .map(|n| n.2.clone())
                    .collect(),
            };
            let start = medtwin_wire::parse_time("2026-12-01T20:36:15.123Z").unwrap()
                + Duration::from_nanos(456_789);
            let encoder = JsonEncoder::new(names, start);
            let readings: Vec<Reading> = readings
                .iter()
                .take(3)
                .map(|&(v, value)| Reading {
                    vital: Vital::ALL[usize::from(v) % Vital::ALL.len()],
                    value,
                })
                .collect();
            let (synced, ms, since) = when;
            let m = Measurement {
                device_idx: u32::from(idx.0),
                patient_idx: u32::from(idx.1),
                kind: DeviceKind::PulseOximeter,
                seq: since.rotate_left(17),
                measured_ms: 40_000_000,
                device_time: if synced {
                    DeviceTime::Synced(ms % 400_000_000_000_000)
                } else {
                    DeviceTime::SinceEpoch(since % 400_000_000_000_000)
                },
                readings: Readings::new(&readings),
                quality: Quality::Good,
                alarm: extras
                    .0
                    .map(|a| TechAlarm::ALL[usize::from(a) % TechAlarm::ALL.len()]),
                event: extras.1.map(|(k, at)| DeviceEvent {
                    kind: [
                        EventKind::DoseTaken,
                        EventKind::DoseMissed,
                        EventKind::PillIngested,
                    ][usize::from(k) % 3],
                    scheduled_ms: u64::from(at) * 1_000,
                }),
            };
            let mut direct = Vec::new();
            encoder.encode(&m, &mut direct);
            direct == serde_json::to_vec(&encoder.message(&m)).unwrap()
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(30, 0x006a_736f_6e65_6e63))
            .tests(5_000)
            .quickcheck(
                same as fn(
                    Vec<(String, String, String)>,
                    (u8, u8),
                    Vec<(u8, f64)>,
                    (bool, i64, u64),
                    (Option<u8>, Option<(u8, u32)>),
                ) -> bool,
            );
    }
}
