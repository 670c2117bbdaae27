//! The physiological state of a patient and the population it is drawn from.

use bevy_ecs::component::Component;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use crate::config::Profile;

/// A vital sign a device can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vital {
    /// Heart (pulse) rate, beats per minute.
    Hr,
    /// Peripheral oxygen saturation, percent.
    Spo2,
    /// Respiratory rate, breaths per minute.
    Rr,
    /// Systolic blood pressure, mmHg.
    Sbp,
    /// Diastolic blood pressure, mmHg.
    Dbp,
    /// Mean arterial pressure, mmHg.
    Map,
    /// Core body temperature, degrees Celsius.
    Temp,
}

impl Vital {
    /// Short code used on the wire and in reports.
    pub fn code(self) -> &'static str {
        match self {
            Vital::Hr => "hr",
            Vital::Spo2 => "spo2",
            Vital::Rr => "rr",
            Vital::Sbp => "sbp",
            Vital::Dbp => "dbp",
            Vital::Map => "map",
            Vital::Temp => "temp",
        }
    }

    /// UCUM unit of the value.
    pub fn unit(self) -> &'static str {
        match self {
            Vital::Hr | Vital::Rr => "/min",
            Vital::Spo2 => "%",
            Vital::Sbp | Vital::Dbp | Vital::Map => "mm[Hg]",
            Vital::Temp => "Cel",
        }
    }
}

/// True physiological state of one patient (not what a device reports).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Vitals {
    /// Heart rate, /min.
    pub hr_bpm: f64,
    /// Systolic blood pressure, mmHg.
    pub sbp_mmhg: f64,
    /// Diastolic blood pressure, mmHg.
    pub dbp_mmhg: f64,
    /// Respiratory rate, /min.
    pub rr_bpm: f64,
    /// Peripheral oxygen saturation, %.
    pub spo2_pct: f64,
    /// Core temperature, °C.
    pub temp_c: f64,
}

impl Vitals {
    /// Mean arterial pressure by the usual one-third pulse-pressure rule.
    pub fn map_mmhg(&self) -> f64 {
        self.dbp_mmhg + (self.sbp_mmhg - self.dbp_mmhg) / 3.0
    }

    /// Physical bounds: whatever a model does, a vital never leaves these.
    pub fn clamp_physical(&mut self) {
        self.hr_bpm = self.hr_bpm.clamp(0.0, 300.0);
        self.sbp_mmhg = self.sbp_mmhg.clamp(0.0, 300.0);
        self.dbp_mmhg = self.dbp_mmhg.clamp(0.0, (self.sbp_mmhg - 5.0).max(0.0));
        self.rr_bpm = self.rr_bpm.clamp(0.0, 80.0);
        self.spo2_pct = self.spo2_pct.clamp(0.0, 100.0);
        self.temp_c = self.temp_c.clamp(25.0, 45.0);
    }
}

/// A patient's resting values, around which the state varies.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Baseline(pub Vitals);

/// A normal distribution truncated to `[lo, hi]` by resampling (bounded tries,
/// then clamping, so a bad parameter can never loop forever).
struct Spread {
    mean: f64,
    sd: f64,
    lo: f64,
    hi: f64,
}

impl Spread {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        for _ in 0..16 {
            let z: f64 = StandardNormal.sample(rng);
            let x = self.mean + self.sd * z;
            if (self.lo..=self.hi).contains(&x) {
                return x;
            }
        }
        self.mean.clamp(self.lo, self.hi)
    }
}

impl Profile {
    /// Draws one patient's resting values from this profile's population.
    pub fn sample_baseline<R: Rng + ?Sized>(self, rng: &mut R) -> Baseline {
        match self {
            // Means: the BioGears/Pulse standard patient (HR 72-73, BP 114/73,
            // RR 12-16, SpO2 97-98 %, core 37.0 °C; REFERENCE.md "Resting
            // adult physiology"). Truncation: inside its validation ranges
            // (HR 60-100, SBP 100-140, DBP 60-90, RR 12-20, SpO2 96-100).
            // Spreads and the slightly narrower truncation are design
            // choices: a *healthy* cohort should not sit on a NEWS2 boundary.
            Profile::HealthyAdult => {
                let hr_bpm = Spread {
                    mean: 73.0,
                    sd: 8.0,
                    lo: 58.0,
                    hi: 92.0,
                }
                .sample(rng);
                let sbp_mmhg = Spread {
                    mean: 118.0,
                    sd: 9.0,
                    lo: 105.0,
                    hi: 140.0,
                }
                .sample(rng);
                let dbp_mmhg = Spread {
                    mean: 74.0,
                    sd: 6.0,
                    lo: 62.0,
                    hi: 88.0,
                }
                .sample(rng);
                let rr_bpm = Spread {
                    mean: 14.5,
                    sd: 1.5,
                    lo: 12.0,
                    hi: 18.0,
                }
                .sample(rng);
                let spo2_pct = Spread {
                    mean: 97.6,
                    sd: 0.7,
                    lo: 96.5,
                    hi: 99.5,
                }
                .sample(rng);
                let temp_c = Spread {
                    mean: 36.9,
                    sd: 0.2,
                    lo: 36.4,
                    hi: 37.4,
                }
                .sample(rng);
                Baseline(Vitals {
                    hr_bpm,
                    sbp_mmhg,
                    dbp_mmhg,
                    rr_bpm,
                    spo2_pct,
                    temp_c,
                })
            }
        }
    }
}
