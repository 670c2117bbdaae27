//! NEWS2, the National Early Warning Score 2 (Royal College of Physicians,
//! 2017, Chart 1; docs/references.md "Early-warning scores"): the one chart
//! in medtwin. The twin scores the true state with it (criteria in the
//! truth log), the checker's rule language scores delivered data with it,
//! and the reference backend scores what it ingests.
//!
//! [`score`] is a pure function of one set of [`Observations`];
//! [`points`] is its allocation-free core (the twin calls it every step for
//! every patient). Each parameter's band function below carries its row of
//! the chart.
//!
//! # Boundaries for real-valued inputs
//!
//! The chart bands charted observations: whole breaths, beats, mmHg and
//! percent, and temperature to 0.1 °C. Devices send real numbers (RR 20.4,
//! temperature 38.05), so before banding each value is rounded the way it
//! would be written on the chart:
//!
//! - respiration rate, SpO2, systolic BP and pulse to the nearest integer,
//! - temperature to one decimal,
//!
//! both **half up** (20.5 → 21, 38.05 → 38.1). A sender's arithmetic can
//! leave a decimal half a unit in the last place low (38.0 + an offset of
//! 0.05 may arrive as 38.049999999999997); a tolerance of
//! [`ROUNDING_TOLERANCE`] (in units of the last charted digit) rounds such
//! values the way they read. So RR 20.4 scores as 20 (0 points) and 20.5 as
//! 21 (2 points); temperature 38.04 scores as 38.0 (0 points) and 38.05 as
//! 38.1 (1 point).
//!
//! A value that is absent, NaN or infinite counts as *missing*: it scores 0
//! and is listed in [`News2::missing`]. The chart has no "missing" column;
//! scoring it 0 is what a partial set of observations adds up to, and listing
//! it lets a reader see that the total is a lower bound.

use serde::{Deserialize, Serialize};

use crate::vitals::Acvpu;

/// Tolerance, in units of the last charted digit, added before rounding half
/// up so that a decimal half computed one unit in the last place low
/// (38.04999…97 for 38.05) rounds up as written. Far below any device's
/// resolution.
pub const ROUNDING_TOLERANCE: f64 = 1e-9;

/// Which SpO2 scale applies to the patient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spo2Scale {
    /// Scale 1: the default for everyone without a prescribed 88–92 % target.
    #[default]
    Scale1,
    /// Scale 2: only for patients with a prescribed 88–92 % target, e.g.
    /// hypercapnic respiratory failure in COPD.
    Scale2,
}

/// One set of observations to score. `None` means not measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observations {
    /// Respiration rate, breaths per minute.
    pub rr_per_min: Option<f64>,
    /// Peripheral oxygen saturation, percent.
    pub spo2_pct: Option<f64>,
    /// Which SpO2 scale applies.
    pub spo2_scale: Spo2Scale,
    /// True when the patient is on supplemental oxygen (false: room air).
    pub on_oxygen: bool,
    /// Systolic blood pressure, mmHg.
    pub sbp_mmhg: Option<f64>,
    /// Pulse, beats per minute.
    pub hr_per_min: Option<f64>,
    /// Level of consciousness.
    pub consciousness: Option<Acvpu>,
    /// Temperature, °C.
    pub temp_c: Option<f64>,
}

/// One row of the NEWS2 chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Respiration rate.
    Rr,
    /// SpO2 (scale 1 or 2).
    Spo2,
    /// Air or oxygen.
    AirOrOxygen,
    /// Systolic blood pressure.
    Sbp,
    /// Pulse.
    Hr,
    /// Consciousness.
    Consciousness,
    /// Temperature.
    Temp,
}

/// Points per parameter, 0–3 each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubScores {
    /// Respiration rate.
    pub rr: u8,
    /// SpO2 on the patient's scale.
    pub spo2: u8,
    /// Air (0) or oxygen (2).
    pub air_or_oxygen: u8,
    /// Systolic blood pressure.
    pub sbp: u8,
    /// Pulse.
    pub hr: u8,
    /// Consciousness.
    pub consciousness: u8,
    /// Temperature.
    pub temp: u8,
}

impl SubScores {
    /// Points of one parameter.
    pub fn get(&self, parameter: Parameter) -> u8 {
        match parameter {
            Parameter::Rr => self.rr,
            Parameter::Spo2 => self.spo2,
            Parameter::AirOrOxygen => self.air_or_oxygen,
            Parameter::Sbp => self.sbp,
            Parameter::Hr => self.hr,
            Parameter::Consciousness => self.consciousness,
            Parameter::Temp => self.temp,
        }
    }

    /// All seven sub-scores, in chart order.
    pub fn as_array(&self) -> [u8; 7] {
        [
            self.rr,
            self.spo2,
            self.air_or_oxygen,
            self.sbp,
            self.hr,
            self.consciousness,
            self.temp,
        ]
    }
}

/// Clinical risk band (RCP 2017, "NEWS thresholds and triggers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Total 0–4 and no red score: ward-based response.
    Low,
    /// Total 0–4 with a 3 in a single parameter (a "red score"): urgent
    /// ward-based review.
    LowMedium,
    /// Total 5–6: urgent response.
    Medium,
    /// Total 7 or more: emergency response.
    High,
}

/// A scored set of observations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct News2 {
    /// Sum of the sub-scores, 0–20.
    pub total: u8,
    /// Points per parameter.
    pub sub_scores: SubScores,
    /// True when any single parameter scores 3.
    pub red: bool,
    /// Risk band.
    pub risk: Risk,
    /// Parameters that were not measured (scored 0), in chart order.
    pub missing: Vec<Parameter>,
}

/// Points of each parameter; absent or non-finite values score 0. No
/// allocation: this is the twin's per-step path.
#[inline]
pub fn points(obs: &Observations) -> SubScores {
    let finite = |value: Option<f64>| value.filter(|v| v.is_finite());
    let spo2 = match finite(obs.spo2_pct) {
        None => 0,
        Some(v) => match obs.spo2_scale {
            Spo2Scale::Scale1 => spo2_scale1_points(v),
            Spo2Scale::Scale2 if obs.on_oxygen => spo2_scale2_oxygen_points(v),
            Spo2Scale::Scale2 => spo2_scale2_air_points(v),
        },
    };
    SubScores {
        rr: finite(obs.rr_per_min).map_or(0, rr_points),
        spo2,
        air_or_oxygen: air_or_oxygen_points(obs.on_oxygen),
        sbp: finite(obs.sbp_mmhg).map_or(0, sbp_points),
        hr: finite(obs.hr_per_min).map_or(0, hr_points),
        consciousness: obs.consciousness.map_or(0, consciousness_points),
        temp: finite(obs.temp_c).map_or(0, temp_points),
    }
}

impl SubScores {
    /// Sum of the sub-scores, 0–20.
    pub fn total(&self) -> u8 {
        self.as_array().iter().sum()
    }

    /// True when any single parameter scores 3 (a "red score").
    pub fn red(&self) -> bool {
        self.as_array().contains(&3)
    }
}

/// Scores one set of observations on NEWS2 Chart 1.
pub fn score(obs: &Observations) -> News2 {
    let sub_scores = points(obs);
    let absent = |v: Option<f64>| !v.is_some_and(f64::is_finite);
    let mut missing = Vec::new();
    for (parameter, is_missing) in [
        (Parameter::Rr, absent(obs.rr_per_min)),
        (Parameter::Spo2, absent(obs.spo2_pct)),
        (Parameter::Sbp, absent(obs.sbp_mmhg)),
        (Parameter::Hr, absent(obs.hr_per_min)),
        (Parameter::Consciousness, obs.consciousness.is_none()),
        (Parameter::Temp, absent(obs.temp_c)),
    ] {
        if is_missing {
            missing.push(parameter);
        }
    }
    let total = sub_scores.total();
    let red = sub_scores.red();
    let risk = match total {
        7.. => Risk::High,
        5..=6 => Risk::Medium,
        _ if red => Risk::LowMedium,
        _ => Risk::Low,
    };
    News2 {
        total,
        sub_scores,
        red,
        risk,
        missing,
    }
}

/// Rounds half up to a whole number, as a charted rate, pressure or
/// percentage is written. Saturates far outside any physiological range.
pub fn round_whole(x: f64) -> i64 {
    (x + 0.5 + ROUNDING_TOLERANCE).floor() as i64
}

/// Rounds half up to tenths and returns the number of tenths (38.05 °C →
/// 381), as a charted temperature is written.
pub fn round_tenths(x: f64) -> i64 {
    (x * 10.0 + 0.5 + ROUNDING_TOLERANCE).floor() as i64
}

/// Respiration rate, breaths/min:
///
/// | ≤8 | 9–11 | 12–20 | 21–24 | ≥25 |
/// |----|------|-------|-------|-----|
/// | 3  | 1    | 0     | 2     | 3   |
fn rr_points(rr_per_min: f64) -> u8 {
    match round_whole(rr_per_min) {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

/// SpO2 scale 1, %:
///
/// | ≤91 | 92–93 | 94–95 | ≥96 |
/// |-----|-------|-------|-----|
/// | 3   | 2     | 1     | 0   |
///
/// Scale 1 ignores air/oxygen (oxygen scores on its own row).
fn spo2_scale1_points(spo2_pct: f64) -> u8 {
    match round_whole(spo2_pct) {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        96.. => 0,
    }
}

/// SpO2 scale 2, %, on room air:
///
/// | ≤83 | 84–85 | 86–87 | 88–92 | ≥93 on air |
/// |-----|-------|-------|-------|------------|
/// | 3   | 2     | 1     | 0     | 0          |
fn spo2_scale2_air_points(spo2_pct: f64) -> u8 {
    match round_whole(spo2_pct) {
        ..=83 => 3,
        84..=85 => 2,
        86..=87 => 1,
        88.. => 0,
    }
}

/// SpO2 scale 2, %, on oxygen: above the 88–92 % target scores again, since
/// over-oxygenation risks hypercapnia in these patients.
///
/// | ≤83 | 84–85 | 86–87 | 88–92 | 93–94 on O2 | 95–96 on O2 | ≥97 on O2 |
/// |-----|-------|-------|-------|-------------|-------------|-----------|
/// | 3   | 2     | 1     | 0     | 1           | 2           | 3         |
fn spo2_scale2_oxygen_points(spo2_pct: f64) -> u8 {
    match round_whole(spo2_pct) {
        ..=83 => 3,
        84..=85 => 2,
        86..=87 => 1,
        88..=92 => 0,
        93..=94 => 1,
        95..=96 => 2,
        97.. => 3,
    }
}

/// Air or oxygen:
///
/// | air | oxygen |
/// |-----|--------|
/// | 0   | 2      |
fn air_or_oxygen_points(on_oxygen: bool) -> u8 {
    if on_oxygen { 2 } else { 0 }
}

/// Systolic blood pressure, mmHg:
///
/// | ≤90 | 91–100 | 101–110 | 111–219 | ≥220 |
/// |-----|--------|---------|---------|------|
/// | 3   | 2      | 1       | 0       | 3    |
fn sbp_points(sbp_mmhg: f64) -> u8 {
    match round_whole(sbp_mmhg) {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

/// Pulse, beats/min:
///
/// | ≤40 | 41–50 | 51–90 | 91–110 | 111–130 | ≥131 |
/// |-----|-------|-------|--------|---------|------|
/// | 3   | 1     | 0     | 1      | 2       | 3    |
fn hr_points(hr_per_min: f64) -> u8 {
    match round_whole(hr_per_min) {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

/// Consciousness:
///
/// | alert | new confusion, V, P or U |
/// |-------|--------------------------|
/// | 0     | 3                        |
fn consciousness_points(level: Acvpu) -> u8 {
    match level {
        Acvpu::Alert => 0,
        Acvpu::Confused | Acvpu::Voice | Acvpu::Pain | Acvpu::Unresponsive => 3,
    }
}

/// Temperature, °C, to one decimal:
///
/// | ≤35.0 | 35.1–36.0 | 36.1–38.0 | 38.1–39.0 | ≥39.1 |
/// |-------|-----------|-----------|-----------|-------|
/// | 3     | 1         | 0         | 1         | 2     |
fn temp_points(temp_c: f64) -> u8 {
    // Compared in tenths of a degree so 36.0 and 36.1 are exact integers.
    match round_tenths(temp_c) {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_the_written_value() {
        assert_eq!(round_whole(20.4), 20);
        assert_eq!(round_whole(20.5), 21);
        assert_eq!(round_tenths(38.05), 381);
        assert_eq!(round_tenths(38.05_f64.next_down()), 381);
        assert_eq!(round_whole(20.5_f64.next_down()), 21);
        assert_eq!(round_tenths(38.04), 380);
        assert_eq!(round_tenths(35.0), 350);
    }

    #[test]
    fn nan_counts_as_missing() {
        let n = score(&Observations {
            hr_per_min: Some(f64::NAN),
            ..Observations::default()
        });
        assert_eq!(n.sub_scores.hr, 0);
        assert!(n.missing.contains(&Parameter::Hr));
    }
}
