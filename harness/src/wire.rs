//! medtwin's own HTTP JSON wire format: one telemetry message per
//! measurement, and the alert the target posts back to the webhook.
//!
//! The JSON Schemas in `docs/schemas/` describe these for target authors.

use std::time::{Duration, SystemTime};

use medtwin_sim::{Measurement, Vital};
use serde::{Deserialize, Serialize};

/// Schema tag of a telemetry message.
pub const TELEMETRY_SCHEMA: &str = "medtwin.telemetry.v1";
/// Schema tag of an alert.
pub const ALERT_SCHEMA: &str = "medtwin.alert.v1";
/// Largest message body either side accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// LOINC code of a vital, as FHIR vital-signs use them (REFERENCE.md,
/// "Interoperability"; 8478-0 is LOINC's mean blood pressure).
pub fn loinc(vital: Vital) -> &'static str {
    match vital {
        Vital::Hr => "8867-4",
        Vital::Spo2 => "59408-5",
        Vital::Rr => "9279-1",
        Vital::Sbp => "8480-6",
        Vital::Dbp => "8462-4",
        Vital::Map => "8478-0",
        Vital::Temp => "8310-5",
    }
}

/// One measured value on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireValue {
    /// Short code: `hr`, `spo2`, `rr`, `sbp`, `dbp`, `map`, `temp`.
    pub code: String,
    /// The value.
    pub value: f64,
    /// UCUM unit: `/min`, `%`, `mm[Hg]`, `Cel`.
    pub unit: String,
    /// LOINC code.
    pub loinc: String,
}

/// One measurement from one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryMessage {
    /// Always [`TELEMETRY_SCHEMA`].
    pub schema: String,
    /// Always true: medtwin data is synthetic and says so.
    pub synthetic: bool,
    /// Patient id, e.g. `ward-003`.
    pub patient_id: String,
    /// Device id, e.g. `ward-003/pulse_oximeter`.
    pub device_id: String,
    /// Device kind, e.g. `pulse_oximeter`.
    pub device_kind: String,
    /// Per-device sequence number from 0; a gap means a lost message.
    pub seq: u64,
    /// When the measurement was taken, RFC 3339 UTC with milliseconds.
    pub measured_at: String,
    /// The values.
    pub values: Vec<WireValue>,
}

/// Names needed to put a measurement on the wire.
pub struct Names<'a> {
    /// Patient names by index.
    pub patients: &'a [String],
    /// Device names by index.
    pub devices: &'a [String],
}

/// Simulated milliseconds as wall-clock time from the scenario start.
pub fn sim_to_system(start: SystemTime, sim_ms: u64) -> SystemTime {
    start + Duration::from_millis(sim_ms)
}

/// RFC 3339 text of a time, UTC, millisecond precision.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 time (`Z` or an offset of `+00:00`).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim_end_matches("+00:00").trim_end_matches('Z')).ok()
}

/// The wire message for a measurement.
pub fn telemetry(m: &Measurement, names: &Names<'_>, start: SystemTime) -> TelemetryMessage {
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.to_owned(),
        synthetic: true,
        patient_id: names.patients[m.patient_idx as usize].clone(),
        device_id: names.devices[m.device_idx as usize].clone(),
        device_kind: m.kind.name().to_owned(),
        seq: m.seq,
        measured_at: format_time(sim_to_system(start, m.measured_ms)),
        values: m
            .readings
            .as_slice()
            .iter()
            .map(|r| WireValue {
                code: r.vital.code().to_owned(),
                value: r.value,
                unit: r.vital.unit().to_owned(),
                loinc: loinc(r.vital).to_owned(),
            })
            .collect(),
    }
}

/// Alert priority, after IEC 60601-1-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low priority.
    Low,
    /// Medium priority.
    Medium,
    /// High priority.
    High,
}

/// An alert, as a target posts it to medtwin's webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertMessage {
    /// [`ALERT_SCHEMA`] when sent by medtwin's reference backend; optional
    /// so other targets can post the minimal form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The target's own id for the alert, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// Patient the alert is about.
    pub patient_id: String,
    /// Alert kind, e.g. `news2-medium`.
    pub kind: String,
    /// Priority.
    pub priority: Priority,
    /// `measured_at` of the measurement that triggered the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_time: Option<String>,
    /// Score behind the alert, if any (e.g. the NEWS2 total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_precision() {
        let start = parse_time("2026-01-01T08:00:00Z").unwrap();
        let t = sim_to_system(start, 3_723_456);
        let text = format_time(t);
        assert_eq!(text, "2026-01-01T09:02:03.456Z");
        assert_eq!(parse_time(&text), Some(t));
        assert_eq!(parse_time("2026-01-01T09:02:03.456+00:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }
}
