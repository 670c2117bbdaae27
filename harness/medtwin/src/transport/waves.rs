//! Waveform chunks on the wire (`docs/formats/waveform-json.md`): each
//! block a waveform device recorded in a step (`StepOutput::waves`, at
//! most 1 s) becomes one [`WaveformChunk`], POSTed to the target's
//! waveform URL ([`waveform_url`]) through the same lanes, retries and
//! breaker as the measurements, and counted apart
//! ([`super::TransportStats::waveforms`]). A pure function of the twin's
//! record, the names and the run's start.

use std::time::{Duration, SystemTime};

use medtwin_sim::waveform::Channel;
use medtwin_sim::{Twin, WaveBlock};
use medtwin_wire::{WAVEFORM_SCHEMA, WaveformChunk, WireChannel, format_time};

use super::json::Names;

/// Size of one integer step of a channel on the wire, in its unit: 1 µV for
/// the ECG, 0.1 milli-units for pleth and impedance (the steps medtwin's
/// WFDB and EDF+ records use, so a chunk and a record hold the same
/// integers).
pub fn factor(channel: Channel) -> f64 {
    match channel {
        Channel::EcgII => 0.001,
        Channel::Pleth | Channel::Resp => 0.0001,
    }
}

/// The URL waveform chunks go to, from the telemetry URL: its last path
/// segment replaced by `waveforms` (`http://h/v1/measurements` →
/// `http://h/v1/waveforms`; `http://h/ingest` → `http://h/waveforms`;
/// `http://h` → `http://h/waveforms`). Query and fragment are kept.
pub fn waveform_url(telemetry_url: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(telemetry_url) else {
        return format!("{}/waveforms", telemetry_url.trim_end_matches('/'));
    };
    let path = url.path().to_owned();
    let base = match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    };
    url.set_path(&format!("{base}/waveforms"));
    url.to_string()
}

/// What a waveform device records, by device index.
#[derive(Clone, Debug)]
struct DeviceWaves {
    rate_hz: u32,
    channels: Vec<Channel>,
}

/// Encodes wave blocks as [`WaveformChunk`] JSON.
#[derive(Clone, Debug)]
pub struct WaveEncoder {
    names: Names,
    start: SystemTime,
    devices: Vec<Option<DeviceWaves>>,
}

impl WaveEncoder {
    /// An encoder for `twin`'s waveform devices, simulated time zero at
    /// `start`; `None` when no device records waveforms.
    pub fn of(twin: &Twin, names: Names, start: SystemTime) -> Option<WaveEncoder> {
        let devices: Vec<Option<DeviceWaves>> = (0..twin.device_names().len() as u32)
            .map(|i| {
                twin.waveform(i).map(|w| DeviceWaves {
                    rate_hz: w.rate_hz,
                    channels: w.channels.clone(),
                })
            })
            .collect();
        devices.iter().any(Option::is_some).then_some(WaveEncoder {
            names,
            start,
            devices,
        })
    }

    /// The chunk of one block (`pool`: the step's `wave_samples`); `None`
    /// for a device that records no waveforms.
    pub fn chunk(&self, block: &WaveBlock, pool: &[f32]) -> Option<WaveformChunk> {
        let device = self.devices.get(block.device_idx as usize)?.as_ref()?;
        let name = |list: &[String], idx: u32| list.get(idx as usize).cloned().unwrap_or_default();
        // Sample periods at 125, 250 and 500 Hz are whole milliseconds.
        let start_ms = block.first_sample * 1000 / u64::from(device.rate_hz.max(1));
        let channels = device
            .channels
            .iter()
            .enumerate()
            .map(|(c, &channel)| {
                let step = factor(channel);
                WireChannel {
                    name: channel.name().to_owned(),
                    unit: channel.unit().to_owned(),
                    factor: step,
                    data: block
                        .channel(pool, c)
                        .iter()
                        .map(|&v| (f64::from(v) / step).round() as i32)
                        .collect(),
                }
            })
            .collect();
        Some(WaveformChunk {
            schema: WAVEFORM_SCHEMA.to_owned(),
            synthetic: true,
            patient_id: name(&self.names.patients, block.patient_idx),
            device_id: name(&self.names.devices, block.device_idx),
            device_kind: name(&self.names.models, block.device_idx),
            first_sample: block.first_sample,
            start: format_time(self.start + Duration::from_millis(start_ms)),
            rate_hz: device.rate_hz,
            samples: block.len,
            hr_bpm: block.hr_bpm.map(|hr| f64::from(hr).round()),
            lead_off: block.lead_off,
            channels,
        })
    }

    /// Simulated time just after the block's last sample, ms: when the
    /// chunk is complete and goes out.
    pub fn end_ms(&self, block: &WaveBlock) -> u64 {
        let rate = self
            .devices
            .get(block.device_idx as usize)
            .and_then(Option::as_ref)
            .map_or(1000, |d| u64::from(d.rate_hz.max(1)));
        (block.first_sample + u64::from(block.len)) * 1000 / rate
    }

    /// Appends the JSON of one block's chunk to `out`; false (nothing
    /// written) for a device that records no waveforms.
    pub fn encode(&self, block: &WaveBlock, pool: &[f32], out: &mut Vec<u8>) -> bool {
        let Some(chunk) = self.chunk(block, pool) else {
            return false;
        };
        // Serialising a struct of strings and numbers into memory cannot fail.
        serde_json::to_writer(out, &chunk).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waveform_url_replaces_the_last_path_segment() {
        for (telemetry, waves) in [
            (
                "http://127.0.0.1:8080/v1/measurements",
                "http://127.0.0.1:8080/v1/waveforms",
            ),
            ("https://h.example/ingest", "https://h.example/waveforms"),
            ("http://h.example", "http://h.example/waveforms"),
            ("http://h.example/api/", "http://h.example/api/waveforms"),
            (
                "http://h.example/in?tenant=7",
                "http://h.example/waveforms?tenant=7",
            ),
        ] {
            assert_eq!(waveform_url(telemetry), waves, "{telemetry}");
        }
    }
}
