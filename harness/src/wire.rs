//! medtwin's own HTTP JSON wire format: one telemetry message per
//! measurement, and the alert the target posts back to the webhook.
//!
//! The JSON Schemas in `docs/schemas/` describe these for target authors.

use std::time::{Duration, SystemTime};

use medtwin_sim::{DeviceTime, Measurement, Vital};
use serde::{Deserialize, Serialize};

/// Schema tag of a telemetry message.
pub const TELEMETRY_SCHEMA: &str = "medtwin.telemetry.v1";
/// Schema tag of an alert.
pub const ALERT_SCHEMA: &str = "medtwin.alert.v1";
/// Largest message body either side accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// LOINC code of a vital, as FHIR vital-signs use them (REFERENCE.md,
/// "Interoperability"; 8478-0 is LOINC's mean blood pressure, 29463-7 body
/// weight, 99504-3 CGM interstitial glucose). Infusion rate has none.
pub fn loinc(vital: Vital) -> Option<&'static str> {
    Some(match vital {
        Vital::Hr => "8867-4",
        Vital::Spo2 => "59408-5",
        Vital::Rr => "9279-1",
        Vital::Sbp => "8480-6",
        Vital::Dbp => "8462-4",
        Vital::Map => "8478-0",
        Vital::Temp => "8310-5",
        Vital::Glucose => "99504-3",
        Vital::Weight => "29463-7",
        Vital::InfusionRate => return None,
    })
}

/// A device clock's factory epoch: where a reset clock restarts.
pub fn device_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800) // 2000-01-01T00:00:00Z
}

/// One measured value on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireValue {
    /// Short code: `hr`, `spo2`, `rr`, `sbp`, `dbp`, `map`, `temp`,
    /// `glucose`, `weight`, `infusion_rate`.
    pub code: String,
    /// The value.
    pub value: f64,
    /// UCUM unit: `/min`, `%`, `mm[Hg]`, `Cel`, `mg/dL`, `kg`, `mL/h`.
    pub unit: String,
    /// LOINC code, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loinc: Option<String>,
}

/// An event a device reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    /// `dose_taken`, `dose_missed` or `pill_ingested`.
    pub kind: String,
    /// The scheduled dose it refers to, on the device's clock.
    pub scheduled_at: String,
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
    /// When the measurement was taken by the device's own clock, RFC 3339
    /// UTC with milliseconds: it drifts, and a reset clock restarts at
    /// 2000-01-01T00:00:00Z.
    pub measured_at: String,
    /// The values (none for a message that only carries an alarm or an event).
    pub values: Vec<WireValue>,
    /// A device technical alarm: `low_battery`, `sensor_off`, `lead_off`,
    /// `low_perfusion`, `sensor_expired`, `occlusion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// A device event (dispenser, smart pill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<WireEvent>,
}

/// Names needed to put a measurement on the wire.
pub struct Names<'a> {
    /// Patient names by index.
    pub patients: &'a [String],
    /// Device names by index.
    pub devices: &'a [String],
    /// Device model (catalogue) names by device index.
    pub models: &'a [String],
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
        device_kind: names.models[m.device_idx as usize].clone(),
        seq: m.seq,
        measured_at: format_time(device_clock(start, m.device_time)),
        values: m
            .readings
            .as_slice()
            .iter()
            .map(|r| WireValue {
                code: r.vital.code().to_owned(),
                value: r.value,
                unit: r.vital.unit().to_owned(),
                loinc: loinc(r.vital).map(str::to_owned),
            })
            .collect(),
        alarm: m.alarm.map(|a| a.name().to_owned()),
        event: m.event.map(|e| WireEvent {
            kind: e.kind.name().to_owned(),
            scheduled_at: format_time(device_clock(
                start,
                shift(m.device_time, e.scheduled_ms as i64 - m.measured_ms as i64),
            )),
        }),
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
