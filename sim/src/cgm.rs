//! A continuous glucose monitor (CGM): what a subcutaneous sensor reports
//! given the true blood glucose.
//!
//! Four effects, in the order they act on a reading (docs/references.md,
//! "Devices": a reading every 5 min, MARD ~8-10 %, 1-2 h warm-up, sensor
//! life 10-15 days, lag 5-15 min, compression lows when lain on):
//!
//! 1. **Lag.** The sensor sits in interstitial fluid, which follows blood
//!    glucose through a first-order diffusion: dIG/dt = (BG − IG) / τ
//!    (the two-compartment model of K. Rebrin, G. M. Steil et al.,
//!    "Subcutaneous glucose predicts plasma glucose independent of insulin:
//!    implications for continuous monitoring", Am. J. Physiol. 277:E561-E571,
//!    1999). Between two readings blood glucose is taken to change linearly
//!    and the equation is solved exactly, so the result does not depend on
//!    how often the sensor is read.
//! 2. **Calibration.** Each sensor has a fixed multiplicative gain error,
//!    drawn once at insertion (factory calibration differs sensor to sensor).
//! 3. **Compression lows.** Lying on the sensor squeezes interstitial fluid
//!    out of the tissue around it and the signal drops until the pressure is
//!    released (docs/references.md). The process is a *design choice*, described at
//!    [`CgmModel::compression_per_night`].
//! 4. **Noise.** M. Breton and B. Kovatchev, "Analysis, modeling, and
//!    simulation of the accuracy of continuous glucose sensors", J. Diabetes
//!    Sci. Technol. 2(5):853-862 (2008), the sensor model of the UVA/Padova
//!    simulator: a Gaussian AR(1) series e_n = 0.7 (e_{n−1} + v_n) at 5 min,
//!    v_n ~ N(0, 1), mapped through a Johnson SU transform
//!    ε = ξ + λ sinh((e − γ) / δ), in mg/dL, added to the signal.
//!
//! The reading is then rounded to the display resolution and clamped to the
//! reporting range (the sensor shows LOW or HIGH outside it).
//!
//! Pure and deterministic: the randomness comes from the caller's stream,
//! drawn in the same order for the same calls.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::rng::StreamRng;

/// Correlation of the Breton & Kovatchev AR(1) noise between readings
/// 5 min apart (Breton & Kovatchev 2008: e_n = 0.7 (e_{n−1} + v_n)).
const NOISE_AR_5MIN: f64 = 0.7;
/// The interval the AR coefficient above refers to, min.
const NOISE_AR_INTERVAL_MIN: f64 = 5.0;
/// Stationary variance of e_n = 0.7 (e_{n−1} + v_n): 0.7² / (1 − 0.7²).
/// The process is advanced as e ← a e + sqrt(1 − a²) σ v with
/// a = 0.7^(dt / 5 min) and σ² this variance, which is the published
/// recursion exactly when dt = 5 min (sqrt(1 − 0.49) σ = 0.7) and keeps the
/// same stationary distribution and autocorrelation for any other interval.
const NOISE_AR_VARIANCE: f64 =
    NOISE_AR_5MIN * NOISE_AR_5MIN / (1.0 - NOISE_AR_5MIN * NOISE_AR_5MIN);
/// Johnson SU location ξ, mg/dL (Breton & Kovatchev 2008).
const JOHNSON_XI_MGDL: f64 = -5.47;
/// Johnson SU scale λ, mg/dL (Breton & Kovatchev 2008).
const JOHNSON_LAMBDA_MGDL: f64 = 15.9574;
/// Johnson SU shape δ (Breton & Kovatchev 2008).
const JOHNSON_DELTA: f64 = 1.6898;
/// Johnson SU shape γ (Breton & Kovatchev 2008).
const JOHNSON_GAMMA: f64 = -0.5444;

/// Minutes of full sleep that `compression_per_night` refers to: a night
/// under [`crate::physiology::Daytime`] integrates to 8 h of `sleep`.
const NIGHT_SLEEP_MIN: f64 = 8.0 * 60.0;
/// A compression low pulls the signal down by a fraction drawn uniformly
/// from this range. *Design choice*: deep enough to take ordinary
/// night-time glucose below a low alarm threshold, which is what makes
/// compression lows matter (false low alarms at night).
const COMPRESSION_DEPTH: (f64, f64) = (0.3, 0.5);
/// The attenuation ramps in linearly over this many minutes (*design
/// choice*: "within minutes") and ends at once when the episode ends (the
/// patient rolls over and fluid flows back).
const COMPRESSION_RAMP_MIN: f64 = 5.0;
/// An episode lasts the model's mean duration times a factor drawn
/// uniformly from this range (*design choice*: bounded, mean preserved).
const COMPRESSION_DURATION_FACTOR: (f64, f64) = (0.5, 1.5);

/// Per-sensor gain errors are kept within this range, so that a wide
/// `calibration_sd` cannot make a sensor read negative or absurdly high.
const GAIN_RANGE: (f64, f64) = (0.5, 1.5);

/// Milliseconds per minute.
const MINUTE_MS: f64 = 60_000.0;

/// Published characteristics of a CGM model (one catalogue entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CgmModel {
    /// Time constant of the blood-to-interstitial first-order lag, min
    /// (docs/references.md: lag 5-15 min). 0 means no lag.
    pub lag_min: f64,
    /// After insertion the sensor gives no readings for this long, ms.
    pub warmup_ms: u64,
    /// The sensor expires this long after insertion, ms.
    pub life_ms: u64,
    /// Multiplier on the Breton & Kovatchev noise; 1.0 is the published
    /// model, 0 a noiseless sensor.
    pub noise_scale: f64,
    /// SD of the per-sensor multiplicative gain error, as a fraction
    /// (0.03 is ±3 %); 0 for a perfectly calibrated sensor.
    pub calibration_sd: f64,
    /// Mean number of compression-low episodes per night of sleep.
    ///
    /// *Design choice* (docs/references.md names the artefact, not its
    /// statistics): while asleep, episodes start as a Poisson process whose
    /// rate is this number per 8 h of full sleep, scaled by how much the
    /// patient is asleep (`Daytime::sleep`); none start while another is
    /// under way, and an episode ends early when the patient is fully
    /// awake. During one the signal falls by 30-50 %, ramping in over
    /// 5 min.
    pub compression_per_night: f64,
    /// Mean duration of one compression low, min.
    pub compression_min: f64,
    /// Display resolution, mg/dL.
    pub resolution: f64,
    /// Lowest value reported, mg/dL; below it the sensor shows LOW (this value).
    pub min_mgdl: f64,
    /// Highest value reported, mg/dL; above it the sensor shows HIGH (this value).
    pub max_mgdl: f64,
}

impl CgmModel {
    /// A modern factory-calibrated sensor: MARD ~9 % against blood glucose
    /// (docs/references.md: MARD ~8-10 %).
    ///
    /// Lag 8 min, warm-up 2 h, life 10 days, range 40-400 mg/dL in steps of
    /// 1 (all within docs/references.md's bands).
    ///
    /// *Tuned*: `noise_scale` and `calibration_sd`, against the
    /// population-day of the MARD test (60 Type 1 and 60 non-diabetic
    /// patients, three meals, readings every 5 min while awake). The
    /// Breton & Kovatchev noise is absolute (SD ~12 mg/dL at any glucose),
    /// fitted to a 2008 sensor: alone it gives MARD 8.8 %; as published
    /// (scale 1.0), with the 8-min lag and a 3 % gain error, 9.9 %, at the
    /// top of the band for today's sensors. Scaled by 0.9 it gives 9.2 %
    /// (lag and gain error alone: 4.3 %). The 3 % gain SD is a *design
    /// choice* for sensor-to-sensor factory-calibration spread; it matters
    /// less than the noise (MARD 8.8 % with none, 9.2 % with 3 %).
    ///
    /// Compression lows: 0.3 a night, 20 min each (*design choice*, see
    /// [`CgmModel::compression_per_night`]).
    pub const DEFAULT: CgmModel = CgmModel {
        lag_min: 8.0,
        warmup_ms: 2 * 3_600_000,
        life_ms: 10 * 86_400_000,
        noise_scale: 0.9,
        calibration_sd: 0.03,
        compression_per_night: 0.3,
        compression_min: 20.0,
        resolution: 1.0,
        min_mgdl: 40.0,
        max_mgdl: 400.0,
    };
}

impl Default for CgmModel {
    /// [`CgmModel::DEFAULT`].
    fn default() -> CgmModel {
        CgmModel::DEFAULT
    }
}

/// What one reading attempt gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CgmReading {
    /// The sensor is still warming up after insertion (or not yet inserted).
    WarmingUp,
    /// The sensor is past its life.
    Expired,
    /// A value in mg/dL (already clamped to the reporting range and rounded),
    /// and whether a compression artifact is acting on it (truth only; the
    /// device does not know).
    Value {
        /// The reported glucose, mg/dL.
        mgdl: f64,
        /// A compression low is acting on this reading.
        compression: bool,
    },
}

/// One sensor's state (56 bytes: a twin may hold 10^5 of them).
///
/// Small values whose precision does not matter (gain, compression) are
/// `f32`; the lag and noise states are `f64`.
#[derive(Clone, Debug)]
pub struct CgmSensor {
    /// Insertion time, simulated ms (negative: before the run started).
    inserted_ms: i64,
    /// Time the lag and noise states below refer to, simulated ms.
    state_ms: u64,
    /// Blood glucose at `state_ms`, mg/dL.
    blood_mgdl: f64,
    /// Interstitial glucose at `state_ms`, mg/dL.
    interstitial_mgdl: f64,
    /// The Gaussian AR(1) noise state e (before the Johnson transform).
    noise: f64,
    /// Multiplicative gain error of this sensor (1 is exact).
    gain: f32,
    /// Fraction of the signal a compression low removes once ramped in.
    compression_depth: f32,
    /// Minutes since the current compression low began.
    compression_elapsed_min: f32,
    /// Minutes the current compression low has left; 0 when none.
    compression_left_min: f32,
}

fn normal(rng: &mut StreamRng) -> f64 {
    StandardNormal.sample(rng)
}

/// The Breton & Kovatchev Johnson SU transform of the Gaussian state, mg/dL.
fn johnson_su_mgdl(e: f64) -> f64 {
    JOHNSON_XI_MGDL + JOHNSON_LAMBDA_MGDL * ((e - JOHNSON_GAMMA) / JOHNSON_DELTA).sinh()
}

/// Interstitial glucose after `dt_min` minutes of the first-order lag with
/// time constant `tau_min`, starting at `interstitial`, while blood glucose
/// moves linearly from `blood_from` to `blood_to`.
///
/// With slope s, the solution of dI/dt = (G0 + s t − I) / τ is
/// I(t) = G(t) − s τ + (I0 − G0 + s τ) e^(−t/τ).
fn lag(interstitial: f64, blood_from: f64, blood_to: f64, dt_min: f64, tau_min: f64) -> f64 {
    if tau_min <= 0.0 {
        return blood_to;
    }
    if dt_min <= 0.0 {
        return interstitial;
    }
    let slope_tau = (blood_to - blood_from) / dt_min * tau_min;
    let decay = (-dt_min / tau_min).exp();
    blood_to - slope_tau + (interstitial - blood_from + slope_tau) * decay
}

/// `mgdl` held to the model's reporting range (LOW or HIGH outside it).
/// Not `f64::clamp`, which panics when a catalogue entry has its minimum
/// above its maximum; this never does.
fn report_range(mgdl: f64, model: &CgmModel) -> f64 {
    mgdl.max(model.min_mgdl).min(model.max_mgdl)
}

impl CgmSensor {
    /// A sensor inserted at `inserted_ms` (simulated ms; negative for a
    /// sensor already worn when the run starts), its interstitial
    /// compartment at equilibrium with blood glucose `glucose_mgdl` at time
    /// `max(inserted_ms, 0)`, its noise process at its stationary
    /// distribution and its calibration error drawn from `rng`.
    pub fn new(
        model: &CgmModel,
        inserted_ms: i64,
        glucose_mgdl: f64,
        rng: &mut StreamRng,
    ) -> CgmSensor {
        let gain = (1.0 + model.calibration_sd * normal(rng)).clamp(GAIN_RANGE.0, GAIN_RANGE.1);
        let noise = NOISE_AR_VARIANCE.sqrt() * normal(rng);
        CgmSensor {
            inserted_ms,
            state_ms: inserted_ms.max(0) as u64,
            blood_mgdl: glucose_mgdl,
            interstitial_mgdl: glucose_mgdl,
            noise,
            gain: gain as f32,
            compression_depth: 0.0,
            compression_elapsed_min: 0.0,
            compression_left_min: 0.0,
        }
    }

    /// One reading at simulated time `now_ms`, true blood glucose
    /// `glucose_mgdl` now, `asleep` in 0..=1 (`Daytime::sleep`) for the
    /// compression-low process.
    ///
    /// Advances the interstitial lag from the previous call (exact
    /// first-order solution for a blood glucose that changes linearly
    /// between the previous call's value and this one), the noise process
    /// and the compression process, also while warming up or expired, so
    /// the state stays continuous. Calls are expected in non-decreasing
    /// time; an earlier `now_ms` counts as no time passing. Deterministic
    /// given the rng stream.
    pub fn read(
        &mut self,
        model: &CgmModel,
        now_ms: u64,
        glucose_mgdl: f64,
        asleep: f64,
        rng: &mut StreamRng,
    ) -> CgmReading {
        let dt_min = now_ms.saturating_sub(self.state_ms) as f64 / MINUTE_MS;
        self.interstitial_mgdl = lag(
            self.interstitial_mgdl,
            self.blood_mgdl,
            glucose_mgdl,
            dt_min,
            model.lag_min,
        );
        self.blood_mgdl = glucose_mgdl;
        self.state_ms = self.state_ms.max(now_ms);

        let a = NOISE_AR_5MIN.powf(dt_min / NOISE_AR_INTERVAL_MIN);
        self.noise = a * self.noise + ((1.0 - a * a) * NOISE_AR_VARIANCE).sqrt() * normal(rng);

        let attenuation = self.advance_compression(model, dt_min, asleep.clamp(0.0, 1.0), rng);

        let age_ms = i128::from(now_ms) - i128::from(self.inserted_ms);
        if age_ms < i128::from(model.warmup_ms) {
            return CgmReading::WarmingUp;
        }
        if age_ms >= i128::from(model.life_ms) {
            return CgmReading::Expired;
        }
        let signal = self.interstitial_mgdl * f64::from(self.gain) * (1.0 - attenuation);
        let raw = signal + model.noise_scale * johnson_su_mgdl(self.noise);
        let rounded = if model.resolution > 0.0 {
            (raw / model.resolution).round() * model.resolution
        } else {
            raw
        };
        CgmReading::Value {
            mgdl: report_range(rounded, model),
            compression: self.compression_left_min > 0.0,
        }
    }

    /// Advances the compression-low process by `dt_min` and returns the
    /// fraction of the signal it removes now (0 when no episode).
    fn advance_compression(
        &mut self,
        model: &CgmModel,
        dt_min: f64,
        asleep: f64,
        rng: &mut StreamRng,
    ) -> f64 {
        if self.compression_left_min > 0.0 {
            let left = f64::from(self.compression_left_min) - dt_min;
            if left <= 0.0 || asleep <= 0.0 {
                self.compression_left_min = 0.0;
            } else {
                self.compression_left_min = left as f32;
                self.compression_elapsed_min += dt_min as f32;
            }
        } else {
            let rate_per_min = model.compression_per_night / NIGHT_SLEEP_MIN * asleep;
            let chance = 1.0 - (-rate_per_min * dt_min).exp();
            if chance > 0.0 && rng.random_bool(chance.min(1.0)) {
                // The start fell somewhere in the interval just past: the
                // Poisson arrival time given one arrival is uniform.
                let elapsed = dt_min * rng.random_range(0.0..1.0);
                let duration = model.compression_min
                    * rng
                        .random_range(COMPRESSION_DURATION_FACTOR.0..COMPRESSION_DURATION_FACTOR.1);
                self.compression_depth =
                    rng.random_range(COMPRESSION_DEPTH.0..COMPRESSION_DEPTH.1) as f32;
                if duration > elapsed {
                    self.compression_elapsed_min = elapsed as f32;
                    self.compression_left_min = (duration - elapsed) as f32;
                }
            }
        }
        if self.compression_left_min > 0.0 {
            let ramp = (f64::from(self.compression_elapsed_min) / COMPRESSION_RAMP_MIN).min(1.0);
            f64::from(self.compression_depth) * ramp
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glucose::{Drive, GlucoseParams, GlucoseState, Metabolism, step_minutes};
    use crate::physiology::Daytime;
    use crate::rng;

    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;

    fn value(reading: CgmReading) -> (f64, bool) {
        match reading {
            CgmReading::Value { mgdl, compression } => (mgdl, compression),
            other => panic!("expected a value, got {other:?}"),
        }
    }

    /// A noiseless, perfectly calibrated sensor without compression lows
    /// and without rounding.
    fn ideal(lag_min: f64) -> CgmModel {
        CgmModel {
            lag_min,
            noise_scale: 0.0,
            calibration_sd: 0.0,
            compression_per_night: 0.0,
            resolution: 0.0,
            ..CgmModel::DEFAULT
        }
    }

    /// The population-day of the MARD test: `n` patients, half Type 1 with
    /// matched boluses, half without diabetes, with weights, sensitivities
    /// and fasting glucose spread over plausible ranges; three meals; a
    /// sensor between 3 h and 9 days old. The sensor is read every 5 min
    /// for 24 h from midnight; the readings taken while fully awake
    /// (07:30-22:30) count. Returns (MARD, number of readings counted).
    fn population_mard(model: &CgmModel, n: u32, seed: u64) -> (f64, usize) {
        let meals: [(u32, f64); 3] = [(8 * 60, 50.0), (12 * 60 + 30, 60.0), (19 * 60, 70.0)];
        let mut sum_ard = 0.0;
        let mut n_readings = 0;
        for i in 0..n {
            let type1 = i % 2 == 0;
            let k = f64::from(i / 2);
            let weight_kg = 55.0 + (k * 7.0) % 45.0;
            let sensitivity = 0.7 + (k * 0.13) % 0.7;
            let (metabolism, fasting_mgdl) = if type1 {
                (Metabolism::Type1, 100.0 + (k * 11.0) % 60.0)
            } else {
                (Metabolism::NonDiabetic, 78.0 + (k * 3.0) % 22.0)
            };
            let p = GlucoseParams::new(weight_kg, metabolism, sensitivity, fasting_mgdl);
            let mut s = GlucoseState::steady(&p);
            let mut rng = rng::stream(seed, u64::from(i), "cgm");
            let age_ms = 3 * HOUR + u64::from(i) * 7 * HOUR % (9 * DAY);
            let mut sensor = CgmSensor::new(model, -(age_ms as i64), s.glucose_mgdl(&p), &mut rng);
            for minute in 0..24 * 60_u32 {
                for (at, carbs_g) in meals {
                    if minute == at {
                        s.eat(&p, carbs_g);
                        if type1 {
                            s.bolus_sc(&p, carbs_g / p.carb_ratio_g_per_u());
                        }
                    }
                }
                if minute % 5 == 0 {
                    let now_ms = u64::from(minute) * MINUTE;
                    let truth = s.glucose_mgdl(&p);
                    let asleep = Daytime::at(now_ms).sleep;
                    let (mgdl, compression) =
                        value(sensor.read(model, now_ms, truth, asleep, &mut rng));
                    assert!(!compression);
                    if asleep == 0.0 {
                        sum_ard += (mgdl - truth).abs() / truth;
                        n_readings += 1;
                    }
                }
                step_minutes(&mut s, &p, &Drive::default(), 1);
            }
        }
        (sum_ard / n_readings as f64, n_readings)
    }

    #[test]
    fn cgm_default_mard_over_a_population_day_is_8_to_11_pct() {
        let model = CgmModel {
            compression_per_night: 0.0,
            ..CgmModel::DEFAULT
        };
        let (mard, n_readings) = population_mard(&model, 120, 2024);
        println!("MARD {:.2} % over {n_readings} readings", 100.0 * mard);
        assert!((0.08..=0.11).contains(&mard), "MARD {:.2} %", 100.0 * mard);
        // Most of it is the noise: lag and gain error alone are far better.
        let noiseless = CgmModel {
            noise_scale: 0.0,
            ..model
        };
        let (noiseless_mard, _) = population_mard(&noiseless, 120, 2024);
        println!("MARD {:.2} % without noise", 100.0 * noiseless_mard);
        assert!(noiseless_mard < 0.05, "{noiseless_mard}");
    }

    #[test]
    fn cgm_lag_follows_a_step_with_its_time_constant() {
        let tau_min = 8.0;
        let model = ideal(tau_min);
        let mut rng = rng::stream(1, 1, "cgm");
        let mut sensor = CgmSensor::new(&model, -(DAY as i64), 100.0, &mut rng);
        // Blood glucose steps from 100 to 200 mg/dL within the first
        // second: the reading then approaches 200 as 1 − e^(−t/τ).
        assert_eq!(value(sensor.read(&model, 0, 100.0, 0.0, &mut rng)).0, 100.0);
        let first = value(sensor.read(&model, 1000, 200.0, 0.0, &mut rng)).0;
        assert!(first < 101.0, "{first}");
        for minute in 1..=60_u64 {
            let (mgdl, _) = value(sensor.read(&model, minute * MINUTE, 200.0, 0.0, &mut rng));
            // The step happened over [0, 1 s]: measure time from its middle.
            let t_min = minute as f64 - 0.5 / 60.0;
            let expected = 200.0 - 100.0 * (-t_min / tau_min).exp();
            assert!(
                (mgdl - expected).abs() < 0.01,
                "minute {minute}: {mgdl} vs {expected}"
            );
            if minute == 8 {
                // One time constant: 63 % of the way.
                assert!((163.0..=164.0).contains(&mgdl), "{mgdl}");
            }
        }
        // Reading less often does not change the answer (exact solution).
        let mut rare = CgmSensor::new(&model, -(DAY as i64), 100.0, &mut rng);
        rare.read(&model, 0, 100.0, 0.0, &mut rng);
        rare.read(&model, 1000, 200.0, 0.0, &mut rng);
        let (at_20, _) = value(rare.read(&model, 20 * MINUTE, 200.0, 0.0, &mut rng));
        let expected = 200.0 - 100.0 * (-(20.0 - 0.5 / 60.0) / tau_min).exp();
        assert!((at_20 - expected).abs() < 0.01, "{at_20} vs {expected}");
        // A ramp: after the transient the reading trails by slope × τ.
        let mut ramp = CgmSensor::new(&model, -(DAY as i64), 100.0, &mut rng);
        let mut last = 0.0;
        for minute in 0..=120_u64 {
            let blood = 100.0 + minute as f64;
            last = value(ramp.read(&model, minute * MINUTE, blood, 0.0, &mut rng)).0;
        }
        assert!((last - (220.0 - tau_min)).abs() < 0.01, "{last}");
    }

    #[test]
    fn cgm_warms_up_then_reads_then_expires() {
        let model = CgmModel::DEFAULT;
        let mut rng = rng::stream(1, 2, "cgm");
        let inserted_ms = 5 * HOUR;
        let mut sensor = CgmSensor::new(&model, inserted_ms as i64, 120.0, &mut rng);
        let mut read = |now_ms| sensor.read(&model, now_ms, 120.0, 0.0, &mut rng);
        assert_eq!(read(0), CgmReading::WarmingUp);
        assert_eq!(read(inserted_ms), CgmReading::WarmingUp);
        assert_eq!(read(inserted_ms + 2 * HOUR - 1), CgmReading::WarmingUp);
        assert!(matches!(
            read(inserted_ms + 2 * HOUR),
            CgmReading::Value { .. }
        ));
        assert!(matches!(
            read(inserted_ms + 10 * DAY - 1),
            CgmReading::Value { .. }
        ));
        assert_eq!(read(inserted_ms + 10 * DAY), CgmReading::Expired);
        assert_eq!(read(inserted_ms + 11 * DAY), CgmReading::Expired);
        // A sensor inserted before the run started counts its age from then.
        let mut old = CgmSensor::new(&model, -(9 * DAY as i64), 120.0, &mut rng);
        assert!(matches!(
            old.read(&model, 0, 120.0, 0.0, &mut rng),
            CgmReading::Value { .. }
        ));
        assert!(matches!(
            old.read(&model, DAY - 1, 120.0, 0.0, &mut rng),
            CgmReading::Value { .. }
        ));
        assert_eq!(
            old.read(&model, DAY, 120.0, 0.0, &mut rng),
            CgmReading::Expired
        );
    }

    #[test]
    fn cgm_compression_lows_come_at_night_read_low_and_at_the_set_rate() {
        let per_night = 2.0;
        let model = CgmModel {
            compression_per_night: per_night,
            life_ms: u64::MAX / 2,
            ..ideal(8.0)
        };
        let n_nights = 400_u64;
        let truth = 150.0;
        let mut rng = rng::stream(3, 3, "cgm");
        let mut sensor = CgmSensor::new(&model, -(DAY as i64), truth, &mut rng);
        let mut episodes = 0;
        let mut was_compressed = false;
        let mut deepest_pct: f64 = 0.0;
        for step in 0..n_nights * DAY / (5 * MINUTE) {
            let now_ms = step * 5 * MINUTE;
            let asleep = Daytime::at(now_ms).sleep;
            let (mgdl, compression) = value(sensor.read(&model, now_ms, truth, asleep, &mut rng));
            if compression {
                assert!(asleep > 0.0, "compression while awake at {now_ms} ms");
                assert!(mgdl <= truth, "{mgdl}");
                if sensor.compression_elapsed_min >= COMPRESSION_RAMP_MIN as f32 {
                    let drop = 1.0 - mgdl / truth;
                    assert!((0.3 - 1e-6..=0.5 + 1e-6).contains(&drop), "{drop}");
                }
                deepest_pct = deepest_pct.max(100.0 * (1.0 - mgdl / truth));
                if !was_compressed {
                    episodes += 1;
                }
            } else {
                assert_eq!(mgdl, truth);
            }
            was_compressed = compression;
        }
        // While one episode runs no other starts: with mean duration d the
        // expected count falls by 1 / (1 + rate d) (renewal process).
        let rate_per_min = per_night / NIGHT_SLEEP_MIN;
        let expected = per_night * n_nights as f64 / (1.0 + rate_per_min * model.compression_min);
        let ratio = f64::from(episodes) / expected;
        println!("{episodes} compression lows, expected {expected:.0}");
        assert!((0.9..=1.1).contains(&ratio), "{episodes} vs {expected:.0}");
        assert!(deepest_pct > 45.0, "{deepest_pct}");
    }

    #[test]
    fn cgm_same_seed_gives_the_same_readings() {
        let run = |seed: u64| {
            let model = CgmModel {
                compression_per_night: 3.0,
                ..CgmModel::DEFAULT
            };
            let mut rng = rng::stream(seed, 7, "cgm");
            let mut sensor = CgmSensor::new(&model, -(3 * HOUR as i64), 110.0, &mut rng);
            (0..2 * DAY / (5 * MINUTE))
                .map(|step| {
                    let now_ms = step * 5 * MINUTE;
                    let blood = 110.0 + 40.0 * (step as f64 / 30.0).sin();
                    sensor.read(&model, now_ms, blood, Daytime::at(now_ms).sleep, &mut rng)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn cgm_noise_has_the_published_correlation_at_any_interval() {
        // Lag-free, gain-exact sensor at constant glucose: the error is the
        // Johnson-transformed AR(1). Its Gaussian state must have lag-5-min
        // correlation 0.7 whether read every 1 or every 5 minutes.
        let model = CgmModel {
            noise_scale: 1.0,
            ..ideal(0.0)
        };
        for every_min in [1_u64, 5] {
            let mut rng = rng::stream(5, every_min, "cgm");
            let mut sensor = CgmSensor::new(&model, -(DAY as i64), 150.0, &mut rng);
            let mut states = Vec::new();
            for step in 0..200_000 / every_min {
                sensor.read(&model, step * every_min * MINUTE, 150.0, 0.0, &mut rng);
                states.push(sensor.noise);
            }
            let stride = (5 / every_min) as usize;
            let n = states.len() - stride;
            let var = states.iter().map(|e| e * e).sum::<f64>() / states.len() as f64;
            let cov = (0..n).map(|i| states[i] * states[i + stride]).sum::<f64>() / n as f64;
            assert!(
                (var - NOISE_AR_VARIANCE).abs() < 0.05,
                "{every_min}: var {var}"
            );
            assert!((cov / var - 0.7).abs() < 0.02, "{every_min}: {}", cov / var);
        }
    }

    #[test]
    fn cgm_readings_are_rounded_and_clamped() {
        let model = ideal(0.0);
        let model = CgmModel {
            resolution: 1.0,
            ..model
        };
        let mut rng = rng::stream(1, 4, "cgm");
        let mut sensor = CgmSensor::new(&model, -(DAY as i64), 100.0, &mut rng);
        assert_eq!(value(sensor.read(&model, 0, 123.4, 0.0, &mut rng)).0, 123.0);
        assert_eq!(value(sensor.read(&model, 1, 20.0, 0.0, &mut rng)).0, 40.0);
        assert_eq!(value(sensor.read(&model, 2, 700.0, 0.0, &mut rng)).0, 400.0);
    }

    #[test]
    fn cgm_sensor_fits_in_64_bytes() {
        assert!(size_of::<CgmSensor>() <= 64, "{}", size_of::<CgmSensor>());
    }
}
