//! What a device reports: the true state plus the device's own error,
//! shaped by its artifacts, its battery, its clock and its faults.
//!
//! Each device carries a fixed bias (drawn once, per channel), a slowly
//! varying error, a calibration drift where its model has one, and white
//! per-reading error; readings are rounded to the resolution the device
//! displays. The figures come from the model's [`DeviceSpec`].

use bevy_ecs::component::Component;
use bevy_ecs::entity::Entity;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::config::DeviceKind;
use crate::news2::Spo2Scale;
use crate::rng::StreamRng;
use crate::spec::{ArtifactSpec, BatterySpec, DeviceSpec};
use crate::truth::{DeviceTime, Quality, Reading, Readings, TechAlarm};
use crate::vitals::{Vital, Vitals, spo2_scale_code};

/// A device attached to a patient.
#[derive(Component, Clone, Debug)]
pub struct Device {
    /// Index in the twin's device table.
    pub idx: u32,
    /// Stable id (hash of the device name): orders output independently of spawn order.
    pub stable_id: u64,
    /// The patient entity it measures.
    pub patient: Entity,
    /// The patient's index.
    pub patient_idx: u32,
    /// The network link it sends through.
    pub link: Entity,
    /// What it is.
    pub kind: DeviceKind,
    /// Its model, by index in the twin's model table.
    pub model: u16,
    /// Sampling interval, simulated ms.
    pub every_ms: u64,
    /// Next scheduled sample, simulated ms.
    pub next_ms: u64,
    /// Sequence number of the next measurement.
    pub seq: u64,
}

/// The device's error state.
#[derive(Component, Clone, Debug)]
pub struct DeviceError {
    bias: [f64; 3],
    slow: [f64; 3],
    walk: [f64; 3],
}

/// The device's measurement-noise stream.
#[derive(Component)]
pub struct NoiseRng(pub StreamRng);

/// How an oximeter's SpO2 error scales with the true saturation: 0.55 at
/// 96 % and above, rising linearly to 1.35 at 70 % (design choice).
/// Oximeter error grows as saturation falls and is smallest near 100 %;
/// the published Arms over 70-100 % is dominated by the low range, so the
/// scale keeps that Arms in the published band.
fn spo2_error_scale(spo2: f64) -> f64 {
    (0.55 + (96.0 - spo2) * (0.8 / 26.0)).clamp(0.55, 1.35)
}

fn normal(rng: &mut StreamRng) -> f64 {
    StandardNormal.sample(rng)
}

fn round_to(x: f64, resolution: f64) -> f64 {
    if resolution > 0.0 {
        (x / resolution).round() * resolution
    } else {
        x
    }
}

impl DeviceError {
    /// A new device's error state: biases drawn, slow errors at stationarity.
    pub fn new(spec: &DeviceSpec, rng: &mut StreamRng) -> DeviceError {
        let mut error = DeviceError {
            bias: [0.0; 3],
            slow: [0.0; 3],
            walk: [0.0; 3],
        };
        // Only the channels the class reports draw: a device's stream does
        // not depend on unused entries.
        let n = spec.class.channels().len();
        for (i, channel) in spec.channels.iter().enumerate().take(n) {
            error.bias[i] = channel.bias_sd * normal(rng);
            error.slow[i] = channel.slow_sd * normal(rng);
        }
        error
    }

    /// Advances the error by `dt_ms` and returns the current error of each channel.
    fn draw(&mut self, spec: &DeviceSpec, dt_ms: u64, rng: &mut StreamRng) -> [f64; 3] {
        let mut out = [0.0; 3];
        let n = spec.class.channels().len();
        for (i, ch) in spec.channels.iter().enumerate().take(n) {
            if ch.slow_sd > 0.0 {
                let a = (-(dt_ms as f64) / 1000.0 / ch.tau_s).exp();
                self.slow[i] = self.slow[i] * a + ch.slow_sd * (1.0 - a * a).sqrt() * normal(rng);
            }
            if ch.drift_per_day > 0.0 {
                // Random walk: variance grows linearly with time.
                let days = dt_ms as f64 / 86_400_000.0;
                self.walk[i] += ch.drift_per_day * days.sqrt() * normal(rng);
            }
            let white = if ch.white_sd > 0.0 {
                ch.white_sd * normal(rng)
            } else {
                0.0
            };
            out[i] = self.bias[i] + self.slow[i] + self.walk[i] + white;
        }
        out
    }
}

/// What a device can see of the patient beyond [`Vitals`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subject {
    /// Body weight, kg.
    pub weight_kg: f64,
    /// The NEWS2 SpO2 scale prescribed for the patient.
    pub spo2_scale: Spo2Scale,
}

/// One reading of the true state `truth` by a device of model `spec`, with
/// its error. Not for CGMs (see [`crate::cgm`]) nor event devices (no
/// readings).
pub fn measure(
    spec: &DeviceSpec,
    truth: &Vitals,
    subject: Subject,
    error: &mut DeviceError,
    dt_ms: u64,
    rng: &mut StreamRng,
) -> Readings {
    let e = error.draw(spec, dt_ms, rng);
    let ch = &spec.channels;
    let reading = |vital, value: f64, res: f64| Reading {
        vital,
        value: round_to(value, res),
    };
    match spec.class {
        DeviceKind::PulseOximeter => Readings::new(&[
            reading(
                Vital::Spo2,
                (truth.spo2_pct + e[0] * spo2_error_scale(truth.spo2_pct)).clamp(0.0, 100.0),
                ch[0].resolution,
            ),
            reading(
                Vital::Hr,
                (truth.hr_bpm + e[1]).clamp(0.0, 300.0),
                ch[1].resolution,
            ),
        ]),
        // The patch counts the rhythm's complexes (0 in asystole: nothing
        // to count, so no error either).
        DeviceKind::EcgPatch => Readings::new(&[
            reading(
                Vital::Hr,
                if truth.ecg_rate() > 0.0 {
                    (truth.ecg_rate() + e[0]).clamp(0.0, 350.0)
                } else {
                    0.0
                },
                ch[0].resolution,
            ),
            reading(
                Vital::Rr,
                (truth.rr_bpm + e[1]).clamp(0.0, 80.0),
                ch[1].resolution,
            ),
        ]),
        DeviceKind::BpCuff | DeviceKind::CufflessBp => {
            let sbp = round_to((truth.sbp_mmhg + e[0]).clamp(0.0, 300.0), ch[0].resolution);
            let dbp = round_to((truth.dbp_mmhg + e[1]).clamp(0.0, sbp), ch[1].resolution);
            // Cuffs report the mean they measure; derived here from the two
            // reported pressures so the three stay mutually consistent.
            Readings::new(&[
                Reading {
                    vital: Vital::Sbp,
                    value: sbp,
                },
                Reading {
                    vital: Vital::Dbp,
                    value: dbp,
                },
                reading(Vital::Map, dbp + (sbp - dbp) / 3.0, 1.0),
            ])
        }
        DeviceKind::Thermometer => Readings::new(&[reading(
            Vital::Temp,
            (truth.temp_c + e[0]).clamp(25.0, 45.0),
            ch[0].resolution,
        )]),
        DeviceKind::RespMonitor => Readings::new(&[reading(
            Vital::Rr,
            (truth.rr_bpm + e[0]).clamp(0.0, 80.0),
            ch[0].resolution,
        )]),
        DeviceKind::WeightScale => Readings::new(&[reading(
            Vital::Weight,
            (subject.weight_kg + e[0]).max(0.0),
            ch[0].resolution,
        )]),
        DeviceKind::InfusionPump => Readings::new(&[reading(
            Vital::InfusionRate,
            (spec.rate_ml_h + e[0]).max(0.0),
            ch[0].resolution,
        )]),
        // What a nurse charts: the assessed level and the prescribed scale
        // are codes (no measurement error); the flowmeter is read to its
        // resolution.
        DeviceKind::NurseObs => Readings::new(&[
            Reading {
                vital: Vital::Acvpu,
                value: f64::from(truth.acvpu.code()),
            },
            reading(
                Vital::O2Flow,
                (f64::from(truth.o2_lpm) + e[1]).max(0.0),
                ch[1].resolution,
            ),
            Reading {
                vital: Vital::Spo2Scale,
                value: f64::from(spo2_scale_code(subject.spo2_scale)),
            },
        ]),
        DeviceKind::Cgm | DeviceKind::MedDispenser | DeviceKind::SmartPill => Readings::new(&[]),
    }
}

/// What a motion artifact does to a reading (design choices after
/// docs/references.md, "Devices": motion causes false lows on oximeters): SpO2
/// reads 2-20 points low, pulse rate swings ±30 %; on an ECG patch, motion
/// noise counted as beats raises the heart rate by up to 80 %; a cuff
/// measuring during movement errs three times as much. Other classes are
/// unaffected.
pub fn motion_artifact(kind: DeviceKind, readings: &mut Readings, rng: &mut StreamRng) -> bool {
    let mut changed = false;
    for r in readings.as_mut_slice() {
        let before = r.value;
        r.value = match (kind, r.vital) {
            (DeviceKind::PulseOximeter, Vital::Spo2) => (r.value - 2.0 - 6.0 * normal(rng).abs())
                .clamp(50.0, 100.0)
                .round(),
            (DeviceKind::PulseOximeter, Vital::Hr) => {
                (r.value * rng.random_range(0.7..1.3)).round()
            }
            (DeviceKind::EcgPatch, Vital::Hr) => (r.value * rng.random_range(1.0..1.8)).round(),
            (DeviceKind::BpCuff | DeviceKind::CufflessBp, Vital::Sbp | Vital::Dbp) => {
                (r.value + 10.0 * normal(rng)).max(0.0).round()
            }
            _ => r.value,
        };
        changed |= r.value != before;
    }
    changed
}

/// The same values in the wrong unit under the right label: the firmware
/// fault backends must catch (°F as Cel, mmol/L as mg/dL, lb as kg, kPa as
/// mmHg, a fraction as %, per second as per minute, mL/min as mL/h, oxygen
/// in mL/min as L/min; coded values are left alone).
pub fn wrong_unit(readings: &mut Readings) {
    for r in readings.as_mut_slice() {
        r.value = match r.vital {
            Vital::Temp => (r.value * 9.0 / 5.0 + 32.0) * 10.0,
            Vital::Glucose => r.value / 18.016 * 10.0,
            Vital::Weight => r.value * 2.204_62 * 10.0,
            Vital::Sbp | Vital::Dbp | Vital::Map => r.value * 0.133_322 * 10.0,
            Vital::Spo2 => r.value / 100.0 * 100.0,
            Vital::Hr | Vital::Rr => r.value / 60.0 * 100.0,
            Vital::InfusionRate => r.value / 60.0 * 10.0,
            // mL/min under an L/min label; codes have no unit to get wrong.
            Vital::O2Flow => r.value * 1000.0 * 10.0,
            Vital::Acvpu | Vital::Spo2Scale => r.value * 10.0,
        }
        .round()
            / match r.vital {
                Vital::Spo2 | Vital::Hr | Vital::Rr => 100.0,
                _ => 10.0,
            };
    }
}

/// A device clock: synchronised at the start, then off by its crystal's
/// frequency error; a clock-reset fault restarts it at the factory epoch.
#[derive(Component, Clone, Copy, Debug)]
pub struct DeviceClock {
    /// Frequency error, parts per million (positive runs fast).
    pub ppm: f64,
}

impl DeviceClock {
    /// A clock with its frequency error drawn from N(0, `spec.clock_ppm`).
    pub fn new(spec: &DeviceSpec, rng: &mut StreamRng) -> DeviceClock {
        DeviceClock {
            ppm: spec.clock_ppm * normal(rng),
        }
    }

    /// The device's time for the true time `now_ms`, `reset_at` the start
    /// of a clock reset in force (if any).
    pub fn time(&self, now_ms: u64, reset_at: Option<u64>) -> DeviceTime {
        match reset_at {
            Some(at) => DeviceTime::SinceEpoch(now_ms - at),
            None => {
                let drift = now_ms as f64 * self.ppm * 1e-6;
                DeviceTime::Synced(now_ms as i64 + drift.round() as i64)
            }
        }
    }
}

/// A battery's state.
#[derive(Component, Clone, Copy, Debug)]
pub struct Power {
    /// Charge left, µAh.
    pub charge_uah: f64,
    /// When the idle draw was last accounted, simulated ms.
    pub since_ms: u64,
    /// Whether the low-battery alarm has been raised.
    pub low_raised: bool,
}

/// What a battery says after a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Enough.
    Ok,
    /// Just crossed the low threshold: raise the alarm with this message.
    JustLow,
    /// Empty: the device is dead.
    Dead,
}

impl Power {
    /// A battery `pct` percent charged at time 0.
    pub fn new(battery: &BatterySpec, pct: f64) -> Power {
        Power {
            charge_uah: battery.capacity_mah * 1000.0 * (pct / 100.0).clamp(0.0, 1.0),
            since_ms: 0,
            low_raised: false,
        }
    }

    /// Whether the battery is empty.
    pub fn dead(&self) -> bool {
        self.charge_uah <= 0.0
    }

    /// Draws the idle current up to `now_ms`, then one sample and one
    /// transmission; says whether the battery just went low or died.
    pub fn drain(&mut self, battery: &BatterySpec, now_ms: u64) -> Charge {
        let hours = now_ms.saturating_sub(self.since_ms) as f64 / 3_600_000.0;
        self.since_ms = now_ms;
        self.charge_uah -= battery.idle_ua * hours + battery.sample_uah + battery.transmit_uah;
        if self.dead() {
            self.charge_uah = 0.0;
            return Charge::Dead;
        }
        let pct = self.charge_uah / (battery.capacity_mah * 10.0);
        if pct < battery.low_pct && !self.low_raised {
            self.low_raised = true;
            return Charge::JustLow;
        }
        Charge::Ok
    }
}

/// One artifact process: when the current episode ends and the next begins.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArtifactClock {
    /// Start of the next episode, simulated ms.
    pub next_ms: u64,
    /// End of the current (or next) episode, simulated ms.
    pub until_ms: u64,
}

impl ArtifactClock {
    /// Whether an episode is in force at `now_ms`, drawing the next episode
    /// when the last one is over. `rate_scale` in 0..=1 scales the onset
    /// rate (motion: less while asleep).
    pub fn active(
        &mut self,
        spec: &ArtifactSpec,
        now_ms: u64,
        rate_scale: f64,
        rng: &mut StreamRng,
    ) -> bool {
        if !spec.active() {
            return false;
        }
        while now_ms >= self.until_ms {
            // Exponential gap (memoryless: scaling the rate at the draw is exact
            // for piecewise-constant rates up to the draw's own span).
            let rate_per_ms = spec.per_hour * rate_scale.max(0.01) / 3_600_000.0;
            let gap = -(1.0 - rng.random::<f64>()).ln() / rate_per_ms;
            let length = -(1.0 - rng.random::<f64>()).ln() * spec.mean_s * 1000.0;
            self.next_ms = self.until_ms.max(now_ms).saturating_add(gap as u64);
            self.until_ms = self.next_ms.saturating_add((length as u64).max(1));
        }
        now_ms >= self.next_ms
    }
}

/// Artifact processes of a device whose model has any.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct Artifacts {
    /// Motion.
    pub motion: ArtifactClock,
    /// Lead-off.
    pub lead_off: ArtifactClock,
}

/// Whether the patient's perfusion is too low for an optical sensor of
/// model `spec`: mean pressure below the model's threshold, or no pulse.
pub fn low_perfusion(spec: &DeviceSpec, truth: &Vitals) -> bool {
    spec.low_perfusion_map_mmhg > 0.0
        && (truth.map_mmhg() < spec.low_perfusion_map_mmhg || f64::from(truth.co_lpm) < 0.5)
}

/// What a device of class `kind` does on a pulseless patient, for
/// listings (`medtwin list devices`); `None` where nothing changes.
pub fn pulseless_note(kind: DeviceKind) -> Option<&'static str> {
    match kind {
        DeviceKind::PulseOximeter => {
            Some("no pulse (VF, asystole, PEA, CPR): no SpO2 or pulse rate, low_perfusion alarm")
        }
        DeviceKind::BpCuff | DeviceKind::CufflessBp => {
            Some("no pulse (VF, asystole, PEA, CPR): the cycle fails, measurement_failed alarm")
        }
        DeviceKind::EcgPatch => {
            Some("counts the rhythm: 0 in asystole, ~300/min in VF, 50/min in PEA")
        }
        _ => None,
    }
}

/// What a device of model `spec` makes of a patient without a pulse (VF,
/// asystole, PEA, on CPR or not): an oximeter finds no pleth and reports
/// no values with its low-perfusion alarm; a cuff (or a cuffless monitor,
/// which reads the pulse wave) finds no oscillations and fails its cycle;
/// other classes are unaffected (docs/references.md, "Cardiac arrest":
/// pulse, BP and pleth vanish). `None` while there is a pulse.
pub fn pulseless(spec: &DeviceSpec, truth: &Vitals) -> Option<TechAlarm> {
    if truth.has_pulse() {
        return None;
    }
    match spec.class {
        DeviceKind::PulseOximeter => Some(TechAlarm::LowPerfusion),
        DeviceKind::BpCuff | DeviceKind::CufflessBp => Some(TechAlarm::MeasurementFailed),
        _ => None,
    }
}

/// The quality a set of readings got, for the truth record.
pub fn quality_of(motion: bool) -> Quality {
    if motion {
        Quality::Motion
    } else {
        Quality::Good
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    const TRUTH: Vitals = Vitals {
        hr_bpm: 75.0,
        sbp_mmhg: 120.0,
        dbp_mmhg: 80.0,
        rr_bpm: 15.0,
        spo2_pct: 95.0,
        temp_c: 37.0,
        ..Vitals::STANDARD
    };
    const SUBJECT: Subject = Subject {
        weight_kg: 80.0,
        spo2_scale: Spo2Scale::Scale1,
    };

    /// Root-mean-square error of `vital` over many devices of `kind`.
    fn arms(kind: DeviceKind, vital: Vital, truth: f64) -> f64 {
        arms_at(kind, vital, &TRUTH, truth)
    }

    fn arms_at(kind: DeviceKind, vital: Vital, state: &Vitals, truth: f64) -> f64 {
        let spec = DeviceSpec::class_default(kind);
        let mut sum_sq = 0.0;
        let mut n = 0.0;
        for device in 0..400u64 {
            let mut rng = rng::stream(3, device, "noise");
            let mut error = DeviceError::new(&spec, &mut rng);
            for _ in 0..50 {
                let r = measure(&spec, state, SUBJECT, &mut error, 60_000, &mut rng);
                let v = r
                    .as_slice()
                    .iter()
                    .find(|r| r.vital == vital)
                    .unwrap()
                    .value;
                sum_sq += (v - truth).powi(2);
                n += 1.0;
            }
        }
        (sum_sq / n).sqrt()
    }

    #[test]
    fn pulse_oximeter_spo2_error_is_within_published_arms() {
        // Arms is specified over 70-100 %: average the squared error over
        // true saturations spread evenly across that range.
        let mut sum_sq = 0.0;
        let levels: Vec<f64> = (70..=100).map(f64::from).collect();
        for &spo2 in &levels {
            let truth = Vitals {
                spo2_pct: spo2,
                ..TRUTH
            };
            sum_sq += arms_at(DeviceKind::PulseOximeter, Vital::Spo2, &truth, spo2).powi(2);
        }
        let a = (sum_sq / levels.len() as f64).sqrt();
        assert!((1.5..=3.0).contains(&a), "SpO2 Arms over 70-100 % {a}");
        // Smaller near normal saturations, larger when low.
        let high = arms(DeviceKind::PulseOximeter, Vital::Spo2, TRUTH.spo2_pct);
        let low_truth = Vitals {
            spo2_pct: 75.0,
            ..TRUTH
        };
        assert!(high < arms_at(DeviceKind::PulseOximeter, Vital::Spo2, &low_truth, 75.0));
    }

    #[test]
    fn cuff_error_is_within_iso_81060_2() {
        let sd = arms(DeviceKind::BpCuff, Vital::Sbp, TRUTH.sbp_mmhg);
        assert!(sd <= 8.0, "SBP error SD {sd}");
        let sd = arms(DeviceKind::BpCuff, Vital::Dbp, TRUTH.dbp_mmhg);
        assert!(sd <= 8.0, "DBP error SD {sd}");
    }

    #[test]
    fn thermometer_error_is_within_published_accuracy() {
        let a = arms(DeviceKind::Thermometer, Vital::Temp, TRUTH.temp_c);
        assert!((0.1..=0.3).contains(&a), "temperature error {a}");
    }

    #[test]
    fn readings_are_rounded_to_display_resolution() {
        let spec = DeviceSpec::class_default(DeviceKind::Thermometer);
        let mut rng = rng::stream(3, 1, "noise");
        let mut error = DeviceError::new(&spec, &mut rng);
        let r = measure(&spec, &TRUTH, SUBJECT, &mut error, 60_000, &mut rng);
        let v = r.as_slice()[0].value;
        assert!(((v * 10.0).round() - v * 10.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn cuffless_drift_grows_with_time_since_calibration() {
        let mut spec = DeviceSpec::class_default(DeviceKind::CufflessBp);
        spec.channels[0] = crate::spec::ChannelSpec {
            drift_per_day: 3.0,
            ..crate::spec::ChannelSpec::exact(1.0)
        };
        // Spread of the error over devices after 1 and after 4 days.
        let spread_after = |days: u64| {
            let mut sum_sq = 0.0;
            for device in 0..500u64 {
                let mut rng = rng::stream(5, device, "noise");
                let mut error = DeviceError::new(&spec, &mut rng);
                let mut last = 0.0;
                for _ in 0..days * 24 {
                    let r = measure(&spec, &TRUTH, SUBJECT, &mut error, 3_600_000, &mut rng);
                    last = r.as_slice()[0].value - TRUTH.sbp_mmhg;
                }
                sum_sq += last * last;
            }
            (sum_sq / 500.0).sqrt()
        };
        let one = spread_after(1);
        let four = spread_after(4);
        assert!((2.4..=3.6).contains(&one), "1-day drift SD {one}");
        assert!(
            (5.0..=7.0).contains(&four),
            "4-day drift SD {four} (√4 × 3)"
        );
    }

    #[test]
    fn wrong_unit_changes_every_value_and_keeps_labels() {
        let mut r = Readings::new(&[
            Reading {
                vital: Vital::Temp,
                value: 37.0,
            },
            Reading {
                vital: Vital::Weight,
                value: 80.0,
            },
        ]);
        wrong_unit(&mut r);
        assert_eq!(r.as_slice()[0].vital, Vital::Temp);
        assert!((r.as_slice()[0].value - 98.6).abs() < 1e-9);
        assert!((r.as_slice()[1].value - 176.4).abs() < 1e-9);
    }

    #[test]
    fn battery_dies_after_its_rated_life_and_warns_first() {
        let battery = BatterySpec {
            capacity_mah: 100.0,
            idle_ua: 1000.0,
            sample_uah: 0.0,
            transmit_uah: 0.0,
            low_pct: 20.0,
        };
        // 100 mAh at 1 mA: 100 h; low at 80 h.
        assert!((battery.life_hours(60_000) - 100.0).abs() < 1e-9);
        let mut power = Power::new(&battery, 100.0);
        let mut low_at = None;
        let mut dead_at = None;
        for h in 1..=120u64 {
            match power.drain(&battery, h * 3_600_000) {
                Charge::JustLow => low_at = Some(h),
                Charge::Dead if dead_at.is_none() => dead_at = Some(h),
                _ => {}
            }
        }
        assert_eq!(low_at, Some(81));
        assert_eq!(dead_at, Some(100));
    }

    #[test]
    fn clock_drift_and_reset() {
        let clock = DeviceClock { ppm: 50.0 };
        // 50 ppm over a day: 4.32 s fast.
        assert_eq!(clock.time(86_400_000, None), DeviceTime::Synced(86_404_320));
        assert_eq!(
            clock.time(86_400_000, Some(86_000_000)),
            DeviceTime::SinceEpoch(400_000)
        );
    }

    #[test]
    fn artifact_episodes_follow_their_rate_and_length() {
        let spec = ArtifactSpec {
            per_hour: 2.0,
            mean_s: 60.0,
        };
        let mut clock = ArtifactClock::default();
        let mut rng = rng::stream(1, 1, "artifact");
        let hours = 2_000u64;
        let mut on = 0u64;
        for s in 0..hours * 3600 {
            on += u64::from(clock.active(&spec, s * 1000, 1.0, &mut rng));
        }
        // 2 episodes of 60 s per hour: 120 s of 3600, 3.3 %.
        let share = on as f64 / (hours * 3600) as f64;
        assert!((0.028..=0.038).contains(&share), "share {share}");
    }
}
