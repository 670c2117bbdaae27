//! Waveform chunks: a waveform device's samples, one message per device
//! per block (at most 1 s), POSTed beside the telemetry
//! (`docs/formats/waveform-json.md`, schema
//! `docs/schemas/waveform.schema.json`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Schema tag of a waveform chunk.
pub const WAVEFORM_SCHEMA: &str = "medtwin.waveform.v1";
/// Sample rates a chunk may have, Hz.
pub const WAVEFORM_RATES_HZ: [u32; 3] = [125, 250, 500];
/// Most samples one channel of a chunk carries (1 s at the highest rate).
pub const MAX_CHUNK_SAMPLES: usize = 500;

/// One channel of a chunk: value of sample `k` = `data[k] × factor`, in
/// `unit` (FHIR `SampledData`'s convention with origin 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireChannel {
    /// `ecg_ii` (ECG lead II), `pleth` (photoplethysmogram at the
    /// finger), `resp` (thoracic impedance respiration).
    #[schemars(extend("enum" = ["ecg_ii", "pleth", "resp"]))]
    pub name: String,
    /// Unit of `data × factor`: `mV` (ECG), `NU` (pleth, normalised units:
    /// 1 is a normal pulse's height), `Ohm` (impedance change around the
    /// baseline).
    #[schemars(extend("enum" = ["mV", "NU", "Ohm"]))]
    pub unit: String,
    /// Size of one step of `data`, in `unit`: 0.001 (1 µV) for the ECG,
    /// 0.0001 for pleth and respiration.
    #[schemars(range(min = 0.0))]
    pub factor: f64,
    /// The samples as integers, first to last; as many in every channel of
    /// the chunk.
    #[schemars(length(min = 1, max = 500))]
    pub data: Vec<i32>,
}

/// medtwin waveform chunk: one block of one waveform device's samples
/// (at most 1 s), POSTed as the body of one HTTP request (`Content-Type:
/// application/json`) to the target's waveform URL. All data is
/// synthetic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "medtwin waveform chunk", extend("$id" = WAVEFORM_SCHEMA))]
pub struct WaveformChunk {
    /// Always `medtwin.waveform.v1`.
    #[schemars(extend("const" = WAVEFORM_SCHEMA))]
    pub schema: String,
    /// Always true: medtwin patients are simulated.
    #[schemars(extend("const" = true))]
    pub synthetic: bool,
    /// Patient id, e.g. `ward-003`.
    #[schemars(length(min = 1, max = 256))]
    pub patient_id: String,
    /// Device id, e.g. `ward-003/ecg_patch`.
    #[schemars(length(min = 1))]
    pub device_id: String,
    /// The device model (catalogue entry), e.g. `ecg_patch`,
    /// `bedside_monitor`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub device_kind: String,
    /// Index of the chunk's first sample since the device started
    /// recording (sample `k` is `k / rate_hz` s after the run's simulated
    /// time zero): the next chunk starts at `first_sample + samples`, so a
    /// gap is a chunk lost on the way and a repeat a resend.
    pub first_sample: u64,
    /// Time of the first sample (RFC 3339, UTC, millisecond precision):
    /// simulated time zero (the scenario's `start`) plus `first_sample /
    /// rate_hz` s. Waveform time does not drift with the device's clock.
    #[schemars(extend("format" = "date-time"))]
    pub start: String,
    /// Samples per second per channel: 125, 250 or 500.
    #[schemars(extend("enum" = [125, 250, 500]))]
    pub rate_hz: u32,
    /// Samples per channel in this chunk (every channel's `data` has this
    /// many): `rate_hz` for a whole second.
    #[schemars(range(min = 1, max = 500))]
    pub samples: u32,
    /// The heart rate the device's own QRS detector counted on its ECG by
    /// the end of the chunk, /min; absent before it has counted two beats
    /// and for a device without an ECG channel. A noisy ECG yields a wrong
    /// rate, as on a real device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr_bpm: Option<f64>,
    /// Whether the ECG electrodes were off during the chunk (the ECG is a
    /// flat line; the device raises `lead_off` in its telemetry).
    pub lead_off: bool,
    /// The channels, in the order `ecg_ii`, `pleth`, `resp` (those the
    /// device records).
    #[schemars(length(min = 1, max = 3))]
    pub channels: Vec<WireChannel>,
}

impl WaveformChunk {
    /// Checks what the schema cannot say: the tag, the rate, every
    /// channel's `data` holding `samples` values, known channel names and
    /// units, a positive factor, an RFC 3339 `start`. The error names the
    /// field.
    pub fn check(&self) -> Result<(), String> {
        if self.schema != WAVEFORM_SCHEMA {
            return Err(format!(
                "schema is {:?}, expected {WAVEFORM_SCHEMA:?}",
                self.schema
            ));
        }
        if !self.synthetic {
            return Err("synthetic must be true".into());
        }
        if self.patient_id.is_empty() || self.patient_id.len() > 256 {
            return Err(format!(
                "patient_id must be 1–256 bytes, not {}",
                self.patient_id.len()
            ));
        }
        if !WAVEFORM_RATES_HZ.contains(&self.rate_hz) {
            return Err(format!(
                "rate_hz {} is not one of 125, 250, 500",
                self.rate_hz
            ));
        }
        if self.samples == 0 || self.samples as usize > MAX_CHUNK_SAMPLES {
            return Err(format!("samples {} is not 1–500", self.samples));
        }
        if crate::parse_time(&self.start).is_none() {
            return Err(format!("start {:?} is not an RFC 3339 time", self.start));
        }
        if self.channels.is_empty() || self.channels.len() > 3 {
            return Err(format!(
                "channels holds {}, expected 1–3",
                self.channels.len()
            ));
        }
        for (i, c) in self.channels.iter().enumerate() {
            let unit = match c.name.as_str() {
                "ecg_ii" => "mV",
                "pleth" => "NU",
                "resp" => "Ohm",
                other => return Err(format!("channels[{i}].name {other:?} is unknown")),
            };
            if c.unit != unit {
                return Err(format!(
                    "channels[{i}].unit is {:?}, expected {unit:?}",
                    c.unit
                ));
            }
            if !(c.factor.is_finite() && c.factor > 0.0) {
                return Err(format!("channels[{i}].factor must be positive"));
            }
            if c.data.len() != self.samples as usize {
                return Err(format!(
                    "channels[{i}].data holds {} samples, expected samples = {}",
                    c.data.len(),
                    self.samples
                ));
            }
        }
        Ok(())
    }
}
