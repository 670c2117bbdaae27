//! Patient populations: a profile says how a cohort's ages, sexes, weights
//! and resting values are spread. Profiles are data (the harness reads them
//! from `catalogue/profiles.toml` and users' own files); this module only
//! defines their shape and draws patients from them.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use crate::glucose::Metabolism;

/// A normal distribution truncated to `[min, max]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (0 = always the mean).
    pub sd: f64,
    /// Smallest value drawn.
    pub min: f64,
    /// Largest value drawn.
    pub max: f64,
}

impl Spread {
    /// Always `value`.
    pub const fn fixed(value: f64) -> Spread {
        Spread {
            mean: value,
            sd: 0.0,
            min: value,
            max: value,
        }
    }

    /// Draws by resampling (bounded tries, then clamping, so a bad parameter
    /// can never loop forever).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        // Always consume the same number of draws per call would cost more;
        // determinism only needs the same sequence for the same inputs.
        for _ in 0..16 {
            let z: f64 = StandardNormal.sample(rng);
            let x = self.mean + self.sd * z;
            if (self.min..=self.max).contains(&x) {
                return x;
            }
        }
        self.mean.clamp(self.min, self.max)
    }

    /// Whether the spread makes sense: finite, `min ≤ mean ≤ max`, `sd ≥ 0`.
    pub fn is_valid(&self) -> bool {
        [self.mean, self.sd, self.min, self.max]
            .iter()
            .all(|x| x.is_finite())
            && self.sd >= 0.0
            && self.min <= self.mean
            && self.mean <= self.max
    }
}

/// A meal in a profile's daily routine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meal {
    /// Minutes after local midnight.
    pub minute_of_day: u32,
    /// Carbohydrate, g.
    pub carbs_g: f64,
}

/// A patient population.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileSpec {
    /// Name used in scenario files.
    pub name: String,
    /// One line for `medtwin list profiles`.
    pub description: String,
    /// Where its numbers come from.
    pub source: String,
    /// Age, years.
    pub age: Spread,
    /// Share of women, percent.
    pub female_pct: f64,
    /// Body weight, kg.
    pub weight_kg: Spread,
    /// Resting heart rate, /min.
    pub hr: Spread,
    /// Daytime systolic BP, mmHg.
    pub sbp: Spread,
    /// Daytime diastolic BP, mmHg.
    pub dbp: Spread,
    /// Respiratory rate, /min.
    pub rr: Spread,
    /// SpO2 on room air, %.
    pub spo2: Spread,
    /// Core temperature (24 h mean), °C.
    pub temp: Spread,
    /// End-tidal CO2, mmHg.
    pub etco2: Spread,
    /// Fasting blood glucose, mg/dL.
    pub glucose: Spread,
    /// Cardiac output, L/min.
    pub cardiac_output: Spread,
    /// NEWS2 SpO2 scale the patient is charted on (1, or 2 for a prescribed 88-92 % target).
    pub spo2_scale: u8,
    /// Glucose regulation.
    pub metabolism: Metabolism,
    /// Insulin sensitivity multiplier (1 = the model's nominal values).
    pub insulin_sensitivity: Spread,
    /// Night-time fall of BP, fraction of the daytime value.
    pub bp_dip: Spread,
    /// Night-time fall of HR, /min.
    pub hr_night_drop: Spread,
    /// Amplitude of the circadian core-temperature swing, °C.
    pub temp_swing_c: f64,
    /// Beat-to-beat HR variability, SD in /min.
    pub hr_variability: f64,
    /// Premature ventricular complexes per minute (0: none). Seen only on
    /// waveforms (the twin's rate is the mean rate); docs/references.md,
    /// "Waveforms".
    pub pvc_per_min: f64,
    /// The daily meals.
    pub meals: Vec<Meal>,
}

impl ProfileSpec {
    /// The built-in healthy adult, for tests and examples; the harness's
    /// catalogue file is where users see and extend it.
    pub fn healthy_adult() -> ProfileSpec {
        ProfileSpec {
            name: "healthy_adult".into(),
            description: "healthy adult at rest, 18-65 years".into(),
            source: "BioGears/Pulse standard patient and validation ranges (docs/references.md)"
                .into(),
            age: Spread {
                mean: 40.0,
                sd: 12.0,
                min: 18.0,
                max: 65.0,
            },
            female_pct: 50.0,
            weight_kg: Spread {
                mean: 75.0,
                sd: 12.0,
                min: 50.0,
                max: 110.0,
            },
            hr: Spread {
                mean: 73.0,
                sd: 7.0,
                min: 63.0,
                max: 92.0,
            },
            sbp: Spread {
                mean: 118.0,
                sd: 8.0,
                min: 108.0,
                max: 136.0,
            },
            dbp: Spread {
                mean: 74.0,
                sd: 5.0,
                min: 64.0,
                max: 86.0,
            },
            rr: Spread {
                mean: 15.0,
                sd: 1.3,
                min: 13.0,
                max: 18.5,
            },
            spo2: Spread {
                mean: 97.6,
                sd: 0.7,
                min: 96.5,
                max: 99.5,
            },
            temp: Spread {
                mean: 36.9,
                sd: 0.2,
                min: 36.4,
                max: 37.3,
            },
            etco2: Spread {
                mean: 40.0,
                sd: 2.0,
                min: 36.0,
                max: 44.0,
            },
            glucose: Spread {
                mean: 87.0,
                sd: 6.0,
                min: 75.0,
                max: 99.0,
            },
            cardiac_output: Spread {
                mean: 5.6,
                sd: 0.5,
                min: 4.5,
                max: 7.0,
            },
            spo2_scale: 1,
            metabolism: Metabolism::NonDiabetic,
            insulin_sensitivity: Spread {
                mean: 1.0,
                sd: 0.15,
                min: 0.7,
                max: 1.3,
            },
            bp_dip: Spread {
                mean: 0.12,
                sd: 0.03,
                min: 0.05,
                max: 0.2,
            },
            hr_night_drop: Spread {
                mean: 6.0,
                sd: 2.0,
                min: 2.0,
                max: 10.0,
            },
            temp_swing_c: 0.5,
            hr_variability: 2.5,
            pvc_per_min: 0.0,
            meals: vec![
                Meal {
                    minute_of_day: 8 * 60,
                    carbs_g: 50.0,
                },
                Meal {
                    minute_of_day: 12 * 60 + 30,
                    carbs_g: 60.0,
                },
                Meal {
                    minute_of_day: 19 * 60,
                    carbs_g: 70.0,
                },
            ],
        }
    }

    /// Every spread with its field name, for validation.
    pub fn spreads(&self) -> [(&'static str, &Spread); 15] {
        [
            ("age", &self.age),
            ("weight_kg", &self.weight_kg),
            ("hr", &self.hr),
            ("sbp", &self.sbp),
            ("dbp", &self.dbp),
            ("rr", &self.rr),
            ("spo2", &self.spo2),
            ("temp", &self.temp),
            ("etco2", &self.etco2),
            ("glucose", &self.glucose),
            ("cardiac_output", &self.cardiac_output),
            ("insulin_sensitivity", &self.insulin_sensitivity),
            ("bp_dip", &self.bp_dip),
            ("hr_night_drop", &self.hr_night_drop),
            (
                "female_pct",
                // A fixed spread so the caller can range-check it uniformly.
                &FEMALE_PCT_RANGE,
            ),
        ]
    }
}

const FEMALE_PCT_RANGE: Spread = Spread {
    mean: 50.0,
    sd: 0.0,
    min: 0.0,
    max: 100.0,
};

/// Sex at birth, as far as the model uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// One patient's fixed traits, drawn once from the profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Traits {
    /// Age, years.
    pub age: f32,
    /// Sex.
    pub sex: Sex,
    /// Weight, kg.
    pub weight_kg: f32,
    /// Resting HR, /min.
    pub hr: f32,
    /// Daytime SBP, mmHg.
    pub sbp: f32,
    /// Daytime DBP, mmHg.
    pub dbp: f32,
    /// RR, /min.
    pub rr: f32,
    /// SpO2 on air, %.
    pub spo2: f32,
    /// Core temperature, °C.
    pub temp: f32,
    /// EtCO2, mmHg.
    pub etco2: f32,
    /// Cardiac output, L/min.
    pub co: f32,
    /// Night BP fall, fraction.
    pub bp_dip: f32,
    /// Night HR fall, /min.
    pub hr_night_drop: f32,
    /// Circadian temperature amplitude, °C.
    pub temp_swing: f32,
    /// Tanaka's age-predicted maximum HR, /min.
    pub hr_max: f32,
    /// NEWS2 SpO2 scale (1 or 2).
    pub spo2_scale: u8,
}

/// What drawing a patient gives besides the traits: glucose set-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlucoseDraw {
    /// Fasting glucose, mg/dL.
    pub fasting_mgdl: f64,
    /// Insulin sensitivity multiplier.
    pub insulin_sensitivity: f64,
}

impl ProfileSpec {
    /// Draws one patient.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> (Traits, GlucoseDraw) {
        let age = self.age.sample(rng);
        let female = rng.random_bool((self.female_pct / 100.0).clamp(0.0, 1.0));
        let traits = Traits {
            age: age as f32,
            sex: if female { Sex::Female } else { Sex::Male },
            weight_kg: self.weight_kg.sample(rng) as f32,
            hr: self.hr.sample(rng) as f32,
            sbp: self.sbp.sample(rng) as f32,
            dbp: self.dbp.sample(rng) as f32,
            rr: self.rr.sample(rng) as f32,
            spo2: self.spo2.sample(rng) as f32,
            temp: self.temp.sample(rng) as f32,
            etco2: self.etco2.sample(rng) as f32,
            co: self.cardiac_output.sample(rng) as f32,
            bp_dip: self.bp_dip.sample(rng) as f32,
            hr_night_drop: self.hr_night_drop.sample(rng) as f32,
            temp_swing: self.temp_swing_c as f32,
            // Tanaka, Monahan & Seals 2001: HRmax = 208 - 0.7 × age (docs/references.md).
            hr_max: (208.0 - 0.7 * age) as f32,
            spo2_scale: self.spo2_scale,
        };
        let glucose = GlucoseDraw {
            fasting_mgdl: self.glucose.sample(rng),
            insulin_sensitivity: self.insulin_sensitivity.sample(rng),
        };
        (traits, glucose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    #[test]
    fn samples_stay_inside_their_spreads() {
        let p = ProfileSpec::healthy_adult();
        let mut rng = rng::stream(1, 1, "t");
        for _ in 0..2_000 {
            let (t, g) = p.sample(&mut rng);
            assert!((63.0..=92.0).contains(&t.hr));
            assert!((18.0..=65.0).contains(&t.age));
            assert!((75.0..=99.0).contains(&g.fasting_mgdl));
            assert!(t.hr_max > 160.0);
        }
        assert!(p.spreads().iter().all(|(_, s)| s.is_valid()));
    }

    #[test]
    fn a_degenerate_spread_terminates() {
        let s = Spread {
            mean: 10.0,
            sd: 1e9,
            min: 9.0,
            max: 11.0,
        };
        let mut rng = rng::stream(1, 1, "t");
        let x = s.sample(&mut rng);
        assert!((9.0..=11.0).contains(&x));
    }
}
