//! What a device model is: a resolved device-catalogue entry. The class
//! ([`DeviceKind`]) says what the device measures and how (code); the
//! spec says how well, how often, on what battery and with which quirks
//! (data: `harness/medtwin/catalogue/devices.toml`, extendable by users).
//!
//! [`DeviceSpec::class_default`] is each class's reference device, from the
//! published figures in docs/references.md ("Devices"); catalogue entries start
//! from it and change what differs.

use crate::cgm::CgmModel;
use crate::config::DeviceKind;
use crate::waveform::Channel;

/// Error model of one reported channel: a fixed per-device bias, a slowly
/// varying error (AR(1) with correlation time `tau_s`), a random walk
/// (calibration drift), white per-reading error, and display resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelSpec {
    /// SD of the per-device bias, in the channel's unit.
    pub bias_sd: f64,
    /// Stationary SD of the slowly varying error.
    pub slow_sd: f64,
    /// Correlation time of the slowly varying error, s.
    pub tau_s: f64,
    /// SD of the white per-reading error.
    pub white_sd: f64,
    /// Random-walk drift: SD of the accumulated error after one day (grows
    /// with the square root of time since calibration).
    pub drift_per_day: f64,
    /// Display resolution; readings are rounded to it.
    pub resolution: f64,
}

impl ChannelSpec {
    /// A channel with no error at all, at resolution `resolution`.
    pub const fn exact(resolution: f64) -> ChannelSpec {
        ChannelSpec {
            bias_sd: 0.0,
            slow_sd: 0.0,
            tau_s: 1.0,
            white_sd: 0.0,
            drift_per_day: 0.0,
            resolution,
        }
    }

    const fn white(bias_sd: f64, white_sd: f64, resolution: f64) -> ChannelSpec {
        ChannelSpec {
            bias_sd,
            white_sd,
            ..ChannelSpec::exact(resolution)
        }
    }
}

/// A battery: capacity and what each activity costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatterySpec {
    /// Usable capacity, mAh.
    pub capacity_mah: f64,
    /// Continuous draw between samples (sleep, sensing front end), µA.
    pub idle_ua: f64,
    /// Charge per sample taken, µAh.
    pub sample_uah: f64,
    /// Charge per message transmitted, µAh.
    pub transmit_uah: f64,
    /// Charge (percent of capacity) below which the device raises a
    /// low-battery technical alarm.
    pub low_pct: f64,
}

impl BatterySpec {
    /// Hours a full battery lasts sampling (and sending) every `every_ms`.
    pub fn life_hours(&self, every_ms: u64) -> f64 {
        let per_hour_uah = self.idle_ua
            + (self.sample_uah + self.transmit_uah) * 3_600_000.0 / every_ms.max(1) as f64;
        self.capacity_mah * 1000.0 / per_hour_uah.max(1e-9)
    }
}

/// A Poisson process of artifact episodes with exponential durations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArtifactSpec {
    /// Mean episodes per hour (while awake for motion).
    pub per_hour: f64,
    /// Mean duration of an episode, s.
    pub mean_s: f64,
}

impl ArtifactSpec {
    /// No artifacts.
    pub const NONE: ArtifactSpec = ArtifactSpec {
        per_hour: 0.0,
        mean_s: 0.0,
    };

    /// Whether episodes ever happen.
    pub fn active(&self) -> bool {
        self.per_hour > 0.0 && self.mean_s > 0.0
    }
}

/// A device model: everything the twin needs to simulate one.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSpec {
    /// Catalogue name, e.g. `ring_oximeter`; the device's kind on the wire.
    pub name: String,
    /// What it measures and how.
    pub class: DeviceKind,
    /// One line for listings.
    pub description: String,
    /// Where the figures come from.
    pub source: String,
    /// Default sampling interval, simulated ms (ignored when `times` is set).
    pub every_ms: u64,
    /// Daily schedule, minutes after local midnight: a weigh-in, a dose.
    /// When set, the device acts at these times instead of every `every_ms`.
    pub times: Vec<u32>,
    /// Accuracy of each channel, in [`DeviceKind::channels`] order.
    pub channels: [ChannelSpec; 3],
    /// The battery (`None`: mains powered).
    pub battery: Option<BatterySpec>,
    /// SD of the clock's frequency error, ppm (crystal tolerance).
    pub clock_ppm: f64,
    /// Motion artifacts (while awake).
    pub motion: ArtifactSpec,
    /// Lead-off episodes (electrodes losing contact).
    pub lead_off: ArtifactSpec,
    /// Mean arterial pressure below which the optical signal drops out
    /// (low perfusion), mmHg; 0 for devices that do not depend on it.
    pub low_perfusion_map_mmhg: f64,
    /// Share of delivered messages whose acknowledgement is lost, so the
    /// device sends them again (a duplicate), percent.
    pub duplicate_pct: f64,
    /// Times a message lost on the link is sent again before it counts as lost.
    pub retries: u32,
    /// Wait before a resend, simulated ms.
    pub retry_ms: u64,
    /// Messages kept on board while disconnected, sent on reconnect.
    pub memory: u32,
    /// Sensor model (CGM class only).
    pub cgm: CgmModel,
    /// Share of scheduled doses taken (dispenser and smart pill), percent.
    pub adherence_pct: f64,
    /// Programmed infusion rate (infusion pump), mL/h.
    pub rate_ml_h: f64,
    /// Time from an occlusion to the pump's alarm, simulated ms.
    pub alarm_delay_ms: u64,
    /// Waveform sample rate when a scenario asks for waveforms, Hz
    /// (0: the model records none).
    pub waveform_hz: u32,
    /// The waveform channels it records, in [`Channel::ALL`] order.
    pub waveform_channels: Vec<Channel>,
}

// Pulse oximeter: accuracy ±2-3 % Arms over 70-100 % (docs/references.md,
// "Devices"). Bias 1.2 and slow error 1.4 give about 1.9 % Arms plus
// integer display: at the good end of the published band. The device
// scales the error with saturation (see `device::spo2_error_scale`).
// Pulse rate: design choice, ±1-2 /min.
const OXI_SPO2: ChannelSpec = ChannelSpec {
    bias_sd: 1.2,
    slow_sd: 1.4,
    tau_s: 20.0,
    white_sd: 0.0,
    drift_per_day: 0.0,
    resolution: 1.0,
};
const PULSE_RATE: ChannelSpec = ChannelSpec {
    bias_sd: 0.5,
    slow_sd: 1.0,
    tau_s: 10.0,
    white_sd: 0.5,
    drift_per_day: 0.0,
    resolution: 1.0,
};
// Oscillometric cuff: ISO 81060-2 accepts mean error ≤ 5 mmHg with SD ≤ 8
// (docs/references.md). Bias SD 2 and per-reading SD 5 (sys) / 4 (dia) stay inside.
const CUFF_SBP: ChannelSpec = ChannelSpec::white(2.0, 5.0, 1.0);
const CUFF_DBP: ChannelSpec = ChannelSpec::white(2.0, 4.0, 1.0);
// Thermometer: ±0.1-0.3 °C (docs/references.md), displayed to 0.1 °C.
const THERMO: ChannelSpec = ChannelSpec::white(0.1, 0.1, 0.1);
// Respiratory rate (impedance or pleth-derived): design choice, ±1-2 /min.
const RESP: ChannelSpec = ChannelSpec::white(0.5, 1.0, 1.0);
// ECG-derived heart rate: R-R intervals are exact to a sample at 125-500 Hz
// (docs/references.md), so the error is small (design choice: ±1 /min).
const ECG_HR: ChannelSpec = ChannelSpec::white(0.0, 1.0, 1.0);
// Scale: design choice, ±0.1 kg at 0.1 kg resolution (class III scale).
const SCALE: ChannelSpec = ChannelSpec::white(0.1, 0.05, 0.1);
// Pump: reports its programmed rate (exact, 0.1 mL/h steps).
const PUMP: ChannelSpec = ChannelSpec::exact(0.1);
// Nurse observations: what is charted is what is true (design choice: the
// level of consciousness as assessed, the flowmeter read to 0.1 L/min, the
// scale as prescribed). Codes, so whole numbers.
const CHARTED_CODE: ChannelSpec = ChannelSpec::exact(1.0);
const CHARTED_O2: ChannelSpec = ChannelSpec::exact(0.1);
/// Default interval of a nurse's observation round: 4 h. RCP 2017
/// (docs/references.md, "Early-warning scores") asks for observations at
/// least 12-hourly at NEWS2 0 and 4-6-hourly at 1-4; 4 h is the usual ward
/// round (design choice within that range).
pub const NURSE_OBS_EVERY_MS: u64 = 4 * 3_600_000;

impl DeviceSpec {
    /// The class's reference device: published accuracy, a typical cadence,
    /// mains power, an exact clock and no artifacts or quirks. Catalogue
    /// entries start here.
    pub fn class_default(class: DeviceKind) -> DeviceSpec {
        let none = ChannelSpec::exact(1.0);
        let (every_ms, channels) = match class {
            // Pulse oximeters stream; one displayed value per second.
            DeviceKind::PulseOximeter => (1_000, [OXI_SPO2, PULSE_RATE, none]),
            DeviceKind::EcgPatch => (1_000, [ECG_HR, RESP, none]),
            // docs/references.md: a CGM reading every 5 min.
            DeviceKind::Cgm => (5 * 60_000, [none; 3]),
            // Ward cuffs: every 15 min to 4 h (docs/references.md).
            DeviceKind::BpCuff | DeviceKind::CufflessBp => {
                (15 * 60_000, [CUFF_SBP, CUFF_DBP, none])
            }
            // Temperature patches: every 1-5 min (docs/references.md).
            DeviceKind::Thermometer => (5 * 60_000, [THERMO, none, none]),
            DeviceKind::WeightScale => (24 * 3_600_000, [SCALE, none, none]),
            DeviceKind::MedDispenser | DeviceKind::SmartPill => (60_000, [none; 3]),
            DeviceKind::InfusionPump => (60_000, [PUMP, none, none]),
            DeviceKind::RespMonitor => (60_000, [RESP, none, none]),
            DeviceKind::NurseObs => (NURSE_OBS_EVERY_MS, [CHARTED_CODE, CHARTED_O2, CHARTED_CODE]),
        };
        DeviceSpec {
            name: class.name().to_owned(),
            class,
            description: class.describe().to_owned(),
            source: match class {
                DeviceKind::NurseObs => {
                    "docs/references.md, Early-warning scores (RCP 2017 observation frequency); charted exactly: design choice"
                }
                _ => "docs/references.md, Devices",
            }
            .to_owned(),
            every_ms,
            times: Vec::new(),
            channels,
            battery: None,
            clock_ppm: 0.0,
            motion: ArtifactSpec::NONE,
            lead_off: ArtifactSpec::NONE,
            low_perfusion_map_mmhg: 0.0,
            duplicate_pct: 0.0,
            retries: 0,
            retry_ms: 5_000,
            memory: 0,
            cgm: CgmModel::DEFAULT,
            adherence_pct: 100.0,
            rate_ml_h: 0.0,
            alarm_delay_ms: 0,
            // ECG patches: 125-500 Hz single lead (docs/references.md,
            // "Devices") with impedance respiration; oximeters a pleth.
            waveform_hz: match class {
                DeviceKind::EcgPatch => 250,
                DeviceKind::PulseOximeter => 125,
                _ => 0,
            },
            waveform_channels: match class {
                DeviceKind::EcgPatch => vec![Channel::EcgII, Channel::Resp],
                DeviceKind::PulseOximeter => vec![Channel::Pleth],
                _ => Vec::new(),
            },
        }
    }

    /// A fresh device's age at the start: a CGM just past its warm-up (so
    /// it reads from the first step), anything else new.
    pub fn default_age_ms(&self) -> u64 {
        match self.class {
            DeviceKind::Cgm => self.cgm.warmup_ms,
            _ => 0,
        }
    }

    /// Whether the device acts at fixed times of day rather than on a cadence.
    pub fn scheduled(&self) -> bool {
        !self.times.is_empty()
    }
}
