//! medtwin's own JSON wire format: one telemetry message per measurement
//! (out, to the target), and the alert the target posts back to medtwin's
//! webhook (in).
//!
//! These types are the format's definition: the JSON Schemas in
//! `docs/schemas/` are generated from them ([`schemas`]), and a test fails
//! when the committed files drift. Encoding the twin's records into these
//! messages is the harness's job (its JSON encoder); this crate knows
//! nothing of the twin.

pub mod signature;
pub mod time;
pub mod waveform;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use time::{
    DEVICE_EPOCH_TEXT, device_epoch, format_time, parse_hl7_time, parse_time, write_time,
};
pub use waveform::{WAVEFORM_SCHEMA, WaveformChunk, WireChannel};

/// Schema tag of a telemetry message.
pub const TELEMETRY_SCHEMA: &str = "medtwin.telemetry.v1";
/// Schema tag of an alert.
pub const ALERT_SCHEMA: &str = "medtwin.alert.v1";
/// Largest message body either side accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One measured value on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireValue {
    /// Short code of the vital. Measured: `hr`, `spo2`, `rr`, `sbp`, `dbp`,
    /// `map`, `temp`, `glucose`, `weight`, `infusion_rate`. Charted by a
    /// nurse (device kind `nurse_observations`): `acvpu`, the level of
    /// consciousness coded 0 = alert, 1 = new confusion, 2 = voice, 3 =
    /// pain, 4 = unresponsive; `o2_flow`, supplemental oxygen in L/min (0 on
    /// room air); `spo2_scale`, the patient's NEWS2 SpO2 scale, 1 or 2.
    #[schemars(extend("enum" = ["hr", "spo2", "rr", "sbp", "dbp", "map", "temp", "glucose", "weight", "infusion_rate", "acvpu", "o2_flow", "spo2_scale"]))]
    pub code: String,
    /// The value.
    pub value: f64,
    /// UCUM unit; coded values (`acvpu`, `spo2_scale`) are dimensionless,
    /// with a UCUM annotation naming the code list (`{ACVPU}`, `{scale}`).
    #[schemars(extend("enum" = ["/min", "%", "mm[Hg]", "Cel", "mg/dL", "kg", "mL/h", "{ACVPU}", "L/min", "{scale}"]))]
    pub unit: String,
    /// LOINC code; absent where LOINC has no code (infusion rate, SpO2
    /// scale). `acvpu` is 80288-4 (level of consciousness), `o2_flow`
    /// 3151-8 (inhaled oxygen flow rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["8867-4", "59408-5", "9279-1", "8480-6", "8462-4", "8478-0", "8310-5", "99504-3", "29463-7", "80288-4", "3151-8", null]))]
    pub loinc: Option<String>,
}

/// An event a device reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    /// What happened.
    #[schemars(extend("enum" = ["dose_taken", "dose_missed", "pill_ingested"]))]
    pub kind: String,
    /// The scheduled dose the event refers to, by the device's clock (RFC
    /// 3339).
    #[schemars(extend("format" = "date-time"))]
    pub scheduled_at: String,
}

/// medtwin telemetry message: one message from one simulated device
/// (measured values, and/or a technical alarm, and/or an event), POSTed as
/// the body of one HTTP request (`Content-Type: application/json`) to the
/// target. All data is synthetic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "medtwin telemetry message", extend("$id" = TELEMETRY_SCHEMA))]
pub struct TelemetryMessage {
    /// Always `medtwin.telemetry.v1`.
    #[schemars(extend("const" = TELEMETRY_SCHEMA))]
    pub schema: String,
    /// Always true: medtwin patients are simulated.
    #[schemars(extend("const" = true))]
    pub synthetic: bool,
    /// Patient id, e.g. `ward-003`.
    #[schemars(length(min = 1, max = 256))]
    pub patient_id: String,
    /// Device id, e.g. `ward-003/pulse_oximeter`.
    #[schemars(length(min = 1))]
    pub device_id: String,
    /// The device model: a catalogue entry name (`medtwin list devices`),
    /// e.g. pulse_oximeter, ring_oximeter, ecg_patch, cgm, home_bp_cuff,
    /// weight_scale, med_dispenser, infusion_pump, nurse_observations.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub device_kind: String,
    /// Per-device sequence number from 0; a gap is a message lost on the
    /// way (or never taken). The same seq twice is a duplicate resend.
    pub seq: u64,
    /// When the device took the measurement, by the device's own clock: RFC
    /// 3339, UTC, millisecond precision. Clocks drift (ppm), and a reset
    /// clock restarts at 2000-01-01T00:00:00Z. Simulated time zero is the
    /// scenario's `start` (default: the run's start).
    #[schemars(extend("format" = "date-time"))]
    pub measured_at: String,
    /// The measured values; empty when the message only carries an alarm
    /// (sensor off, lead off, low perfusion, a failed cuff cycle) or an event.
    #[schemars(length(max = 3))]
    pub values: Vec<WireValue>,
    /// A device technical alarm raised with this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["low_battery", "sensor_off", "lead_off", "low_perfusion", "sensor_expired", "occlusion", "measurement_failed", null]))]
    pub alarm: Option<String>,
    /// A device event (dispenser, smart pill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<WireEvent>,
}

/// Alert priority, after IEC 60601-1-8.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low priority.
    Low,
    /// Medium priority.
    Medium,
    /// High priority.
    High,
}

/// Alert posted to medtwin's webhook: POST to the webhook URL (default
/// path `/alerts`) with `Authorization: Bearer <token>`. medtwin answers
/// 202 when accepted, 401 for a missing or wrong token, 400 for a body
/// that does not match this schema (unknown keys included), 413 above 64
/// KiB. Refusals are counted in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Alert posted to medtwin's webhook", extend("$id" = ALERT_SCHEMA))]
pub struct AlertMessage {
    /// `medtwin.alert.v1` when sent by medtwin's reference backend; other
    /// targets may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [ALERT_SCHEMA, null]))]
    pub schema: Option<String>,
    /// The target's own id for the alert, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    /// The `patient_id` of the telemetry the alert is about.
    #[schemars(length(min = 1, max = 256))]
    pub patient_id: String,
    /// Alert kind, e.g. `news2-medium`.
    #[schemars(length(min = 1, max = 256))]
    pub kind: String,
    /// Priority.
    pub priority: Priority,
    /// `measured_at` of the measurement that triggered the alert (RFC 3339,
    /// any offset; used for the latency decomposition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub measurement_time: Option<String>,
    /// Score behind the alert, if any (e.g. the NEWS2 total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
}

/// Parses an alert as the webhook receives it, holding it to everything
/// its schema says: no unknown keys, `schema` (when given)
/// [`ALERT_SCHEMA`], `patient_id` and `kind` of 1–256 bytes, and
/// `measurement_time` (when given) an RFC 3339 time. The error names the
/// field.
pub fn parse_alert(body: &[u8]) -> Result<AlertMessage, String> {
    let alert: AlertMessage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(schema) = alert.schema.as_deref().filter(|s| *s != ALERT_SCHEMA) {
        return Err(format!(
            "schema is {schema:?}, expected {ALERT_SCHEMA:?} or none"
        ));
    }
    for (field, value) in [("patient_id", &alert.patient_id), ("kind", &alert.kind)] {
        if value.is_empty() || value.len() > 256 {
            return Err(format!("{field} must be 1–256 bytes, not {}", value.len()));
        }
    }
    if let Some(t) = alert.measurement_time.as_deref()
        && parse_time(t).is_none()
    {
        return Err(format!("measurement_time {t:?} is not an RFC 3339 time"));
    }
    Ok(alert)
}

/// The JSON Schemas of the wire format, by file name under
/// `docs/schemas/`: `telemetry.schema.json`, `alert.schema.json` and
/// `waveform.schema.json`.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    let mut out = vec![
        (
            "telemetry.schema.json",
            schemars::schema_for!(TelemetryMessage).to_value(),
        ),
        (
            "alert.schema.json",
            schemars::schema_for!(AlertMessage).to_value(),
        ),
        (
            "waveform.schema.json",
            schemars::schema_for!(WaveformChunk).to_value(),
        ),
    ];
    for (_, schema) in &mut out {
        unwrap_descriptions(schema);
    }
    out
}

/// Joins the lines of each doc-comment paragraph in `description`s, so the
/// schema reads as prose rather than as the source's line breaks.
pub fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry() -> TelemetryMessage {
        TelemetryMessage {
            schema: TELEMETRY_SCHEMA.into(),
            synthetic: true,
            patient_id: "ward-003".into(),
            device_id: "ward-003/pulse_oximeter".into(),
            device_kind: "pulse_oximeter".into(),
            seq: 7,
            measured_at: "2026-01-01T08:00:01.000Z".into(),
            values: vec![WireValue {
                code: "spo2".into(),
                value: 97.0,
                unit: "%".into(),
                loinc: Some("59408-5".into()),
            }],
            alarm: None,
            event: None,
        }
    }

    fn validator(name: &str) -> jsonschema::Validator {
        let (_, schema) = schemas().into_iter().find(|(n, _)| *n == name).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    }

    #[test]
    fn messages_validate_against_their_generated_schema() {
        let v = validator("telemetry.schema.json");
        let good = serde_json::to_value(telemetry()).unwrap();
        assert!(v.is_valid(&good), "{good}");
        // What the schema is for: wrong codes, units, extra fields, a
        // missing field, a non-synthetic patient are all refused.
        for (field, bad) in [
            ("/values/0/code", serde_json::json!("pulse")),
            ("/values/0/unit", serde_json::json!("bpm")),
            ("/synthetic", serde_json::json!(false)),
            ("/schema", serde_json::json!("medtwin.telemetry.v0")),
            ("/device_kind", serde_json::json!("pulse oximeter")),
            ("/extra", serde_json::json!(1)),
        ] {
            let mut m = good.clone();
            if field == "/extra" {
                m["extra"] = bad;
            } else {
                *m.pointer_mut(field).unwrap() = bad;
            }
            assert!(!v.is_valid(&m), "{field} accepted: {m}");
        }
        let mut m = good.clone();
        m.as_object_mut().unwrap().remove("measured_at");
        assert!(!v.is_valid(&m));

        // A nurse's observation round: ACVPU, oxygen and the SpO2 scale.
        let mut charted = telemetry();
        charted.device_kind = "nurse_observations".into();
        charted.values = vec![
            WireValue {
                code: "acvpu".into(),
                value: 2.0,
                unit: "{ACVPU}".into(),
                loinc: Some("80288-4".into()),
            },
            WireValue {
                code: "o2_flow".into(),
                value: 2.0,
                unit: "L/min".into(),
                loinc: Some("3151-8".into()),
            },
            WireValue {
                code: "spo2_scale".into(),
                value: 2.0,
                unit: "{scale}".into(),
                loinc: None,
            },
        ];
        let charted = serde_json::to_value(charted).unwrap();
        assert!(v.is_valid(&charted), "{charted}");
        let mut m = charted.clone();
        *m.pointer_mut("/values/1/unit").unwrap() = serde_json::json!("mL/min");
        assert!(!v.is_valid(&m), "oxygen in mL/min accepted: {m}");

        let a = validator("alert.schema.json");
        let alert =
            serde_json::json!({"patient_id": "ward-003", "kind": "spo2-low", "priority": "high"});
        assert!(a.is_valid(&alert));
        assert!(
            !a.is_valid(&serde_json::json!({"patient_id": "x", "kind": "k", "priority": "urgent"}))
        );
    }

    #[test]
    fn waveform_chunks_validate_and_check() {
        let chunk = WaveformChunk {
            schema: WAVEFORM_SCHEMA.into(),
            synthetic: true,
            patient_id: "ward-003".into(),
            device_id: "ward-003/ecg_patch".into(),
            device_kind: "ecg_patch".into(),
            first_sample: 250,
            start: "2026-01-01T08:00:01.000Z".into(),
            rate_hz: 250,
            samples: 3,
            hr_bpm: Some(72.0),
            lead_off: false,
            channels: vec![WireChannel {
                name: "ecg_ii".into(),
                unit: "mV".into(),
                factor: 0.001,
                data: vec![-12, 1100, 40],
            }],
        };
        assert_eq!(chunk.check(), Ok(()));
        let v = validator("waveform.schema.json");
        let good = serde_json::to_value(&chunk).unwrap();
        assert!(v.is_valid(&good), "{good}");
        for (field, bad) in [
            ("/rate_hz", serde_json::json!(200)),
            ("/channels/0/name", serde_json::json!("ecg_v1")),
            ("/channels/0/unit", serde_json::json!("uV")),
            ("/synthetic", serde_json::json!(false)),
            ("/channels/0/data", serde_json::json!([])),
        ] {
            let mut m = good.clone();
            *m.pointer_mut(field).unwrap() = bad;
            assert!(!v.is_valid(&m), "{field} accepted: {m}");
        }
        // What only `check` sees: a channel shorter than `samples`.
        let mut short = chunk.clone();
        short.channels[0].data.pop();
        assert!(short.check().unwrap_err().contains("channels[0].data"));
        let mut pleth_in_mv = chunk;
        pleth_in_mv.channels[0].name = "pleth".into();
        assert!(
            pleth_in_mv
                .check()
                .unwrap_err()
                .contains("channels[0].unit")
        );
    }

    #[test]
    fn committed_schemas_are_the_generated_ones() {
        // `docs/schemas/` is generated from these types; set
        // MEDTWIN_BLESS=1 to rewrite it after a deliberate change.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas");
        let bless = std::env::var_os("MEDTWIN_BLESS").is_some();
        for (name, schema) in schemas() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(name);
            if bless {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "docs/schemas/{name} drifted from the wire types; run \
                 `MEDTWIN_BLESS=1 cargo test -p medtwin-wire` and commit it"
            );
        }
    }
}
