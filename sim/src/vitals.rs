//! The physiological state of a patient: what the twin knows to be true.

use bevy_ecs::component::Component;
use serde::Serialize;

use crate::news2::Spo2Scale;

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
    /// Glucose (interstitial, from a CGM), mg/dL.
    Glucose,
    /// Body weight, kg.
    Weight,
    /// Infusion rate a pump delivers, mL/h.
    InfusionRate,
    /// Level of consciousness as charted, coded 0-4 (see [`Acvpu::code`]).
    Acvpu,
    /// Supplemental oxygen flow as charted, L/min (0 = room air).
    O2Flow,
    /// The patient's NEWS2 SpO2 scale as charted, 1 or 2 (see
    /// [`spo2_scale_code`]).
    Spo2Scale,
}

impl Vital {
    /// Every vital, in declaration order: `ALL[v.index()] == v`.
    pub const ALL: [Vital; 13] = [
        Vital::Hr,
        Vital::Spo2,
        Vital::Rr,
        Vital::Sbp,
        Vital::Dbp,
        Vital::Map,
        Vital::Temp,
        Vital::Glucose,
        Vital::Weight,
        Vital::InfusionRate,
        Vital::Acvpu,
        Vital::O2Flow,
        Vital::Spo2Scale,
    ];

    /// Position in [`Vital::ALL`], for per-vital arrays.
    pub fn index(self) -> usize {
        self as usize
    }

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
            Vital::Glucose => "glucose",
            Vital::Weight => "weight",
            Vital::InfusionRate => "infusion_rate",
            Vital::Acvpu => "acvpu",
            Vital::O2Flow => "o2_flow",
            Vital::Spo2Scale => "spo2_scale",
        }
    }

    /// UCUM unit of the value.
    pub fn unit(self) -> &'static str {
        match self {
            Vital::Hr | Vital::Rr => "/min",
            Vital::Spo2 => "%",
            Vital::Sbp | Vital::Dbp | Vital::Map => "mm[Hg]",
            Vital::Temp => "Cel",
            Vital::Glucose => "mg/dL",
            Vital::Weight => "kg",
            Vital::InfusionRate => "mL/h",
            // Coded values: dimensionless, with a UCUM annotation naming
            // the code list (UCUM `{...}` annotations equal 1).
            Vital::Acvpu => "{ACVPU}",
            Vital::O2Flow => "L/min",
            Vital::Spo2Scale => "{scale}",
        }
    }

    /// Whether the vital is charted by hand (a nurse's observation set)
    /// rather than measured: a coded level or a setting, not a signal.
    pub fn charted(self) -> bool {
        matches!(self, Vital::Acvpu | Vital::O2Flow | Vital::Spo2Scale)
    }

    /// LOINC code of the vital, as FHIR vital signs use them
    /// (docs/references.md, "Interoperability"; 8478-0 is LOINC's mean
    /// blood pressure, 29463-7 body weight, 99504-3 CGM interstitial
    /// glucose). Infusion rate has none. SpO2 also has 2708-6; medtwin
    /// sends the pulse-oximetry code 59408-5. Charted observations: 80288-4
    /// level of consciousness (ACVPU, here as a code 0-4), 3151-8 inhaled
    /// oxygen flow rate (L/min, the US Core pulse-oximetry profile's
    /// component); the NEWS2 SpO2 scale has no LOINC code.
    pub fn loinc(self) -> Option<&'static str> {
        Some(match self {
            Vital::Hr => "8867-4",
            Vital::Spo2 => "59408-5",
            Vital::Rr => "9279-1",
            Vital::Sbp => "8480-6",
            Vital::Dbp => "8462-4",
            Vital::Map => "8478-0",
            Vital::Temp => "8310-5",
            Vital::Glucose => "99504-3",
            Vital::Weight => "29463-7",
            Vital::Acvpu => "80288-4",
            Vital::O2Flow => "3151-8",
            Vital::InfusionRate | Vital::Spo2Scale => return None,
        })
    }
}

/// Level of consciousness on the ACVPU scale, ordered from best to worst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acvpu {
    /// Alert.
    #[default]
    Alert,
    /// New confusion.
    Confused,
    /// Responds to voice.
    Voice,
    /// Responds to pain.
    Pain,
    /// Unresponsive.
    Unresponsive,
}

impl Acvpu {
    /// The one-letter code charts use.
    pub fn letter(self) -> &'static str {
        match self {
            Acvpu::Alert => "A",
            Acvpu::Confused => "C",
            Acvpu::Voice => "V",
            Acvpu::Pain => "P",
            Acvpu::Unresponsive => "U",
        }
    }

    /// Every level, best first: `ALL[a.code()] == a`.
    pub const ALL: [Acvpu; 5] = [
        Acvpu::Alert,
        Acvpu::Confused,
        Acvpu::Voice,
        Acvpu::Pain,
        Acvpu::Unresponsive,
    ];

    /// The code the wire carries (`acvpu`): 0 = A, 1 = C, 2 = V, 3 = P,
    /// 4 = U, in the scale's order.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The level of a code on the wire; `None` unless `value` is one of
    /// 0-4 exactly.
    pub fn from_code(value: f64) -> Option<Acvpu> {
        if value.fract() != 0.0 || !(0.0..=4.0).contains(&value) {
            return None;
        }
        Acvpu::ALL.get(value as usize).copied()
    }
}

/// The code the wire carries for a NEWS2 SpO2 scale (`spo2_scale`): 1 or 2.
pub fn spo2_scale_code(scale: Spo2Scale) -> u8 {
    match scale {
        Spo2Scale::Scale1 => 1,
        Spo2Scale::Scale2 => 2,
    }
}

/// The SpO2 scale of a code on the wire; `None` unless `value` is 1 or 2.
pub fn spo2_scale_from_code(value: f64) -> Option<Spo2Scale> {
    if value == 1.0 {
        Some(Spo2Scale::Scale1)
    } else if value == 2.0 {
        Some(Spo2Scale::Scale2)
    } else {
        None
    }
}

/// Cardiac rhythm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rhythm {
    /// Sinus rhythm.
    #[default]
    Sinus,
    /// Atrial fibrillation.
    Af,
    /// Pulseless ventricular tachycardia (an arrest rhythm: regular wide
    /// complexes at [`VT_RATE`], no pulse).
    Vt,
    /// Ventricular fibrillation.
    Vf,
    /// Asystole.
    Asystole,
    /// Pulseless electrical activity: organised complexes, no pulse (the
    /// arrest of exsanguination).
    Pea,
}

/// The rate an ECG counts in ventricular fibrillation, /min: the
/// fibrillatory waves run at 4-10 Hz (docs/references.md, "Cardiac arrest");
/// a QRS detector counting them reads ~300/min (design choice, 5 Hz).
pub const VF_COUNTED_RATE: f64 = 300.0;
/// The rate of pulseless ventricular tachycardia, /min (design choice:
/// VT is 100-250 /min; pulseless VT is usually fast).
pub const VT_RATE: f64 = 180.0;
/// The rate of the complexes in PEA, /min (design choice: the slow,
/// wide-complex PEA of a heart failing for lack of volume).
pub const PEA_RATE: f64 = 50.0;

impl Rhythm {
    /// Whether the heart ejects blood (a pulse to feel, a pleth to see,
    /// oscillations for a cuff).
    pub fn perfusing(self) -> bool {
        matches!(self, Rhythm::Sinus | Rhythm::Af)
    }
}

/// True physiological state of one patient (not what a device reports).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Vitals {
    /// Heart (pulse) rate, /min; 0 without a pulse.
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
    /// End-tidal CO2, mmHg.
    pub etco2_mmhg: f64,
    /// Blood glucose, mg/dL.
    pub glucose_mgdl: f64,
    /// Cardiac output, L/min.
    pub co_lpm: f32,
    /// Supplemental oxygen flow, L/min (0 = room air).
    pub o2_lpm: f32,
    /// Level of consciousness.
    pub acvpu: Acvpu,
    /// Cardiac rhythm.
    pub rhythm: Rhythm,
}

impl Vitals {
    /// A resting state for tests and examples: the docs/references.md standard patient.
    pub const STANDARD: Vitals = Vitals {
        hr_bpm: 73.0,
        sbp_mmhg: 114.0,
        dbp_mmhg: 73.0,
        rr_bpm: 14.0,
        spo2_pct: 97.5,
        temp_c: 37.0,
        etco2_mmhg: 40.0,
        glucose_mgdl: 87.0,
        co_lpm: 5.6,
        o2_lpm: 0.0,
        acvpu: Acvpu::Alert,
        rhythm: Rhythm::Sinus,
    };

    /// Mean arterial pressure by the usual one-third pulse-pressure rule.
    pub fn map_mmhg(&self) -> f64 {
        self.dbp_mmhg + (self.sbp_mmhg - self.dbp_mmhg) / 3.0
    }

    /// Whether the patient has a pulse (a perfusing rhythm).
    pub fn has_pulse(&self) -> bool {
        self.rhythm.perfusing()
    }

    /// The rate an ECG counts: the pulse rate in a perfusing rhythm, the
    /// fibrillatory waves in VF, the complexes in PEA, none in asystole.
    pub fn ecg_rate(&self) -> f64 {
        match self.rhythm {
            Rhythm::Sinus | Rhythm::Af => self.hr_bpm,
            Rhythm::Vt => VT_RATE,
            Rhythm::Vf => VF_COUNTED_RATE,
            Rhythm::Pea => PEA_RATE,
            Rhythm::Asystole => 0.0,
        }
    }

    /// Whether the patient is on supplemental oxygen.
    pub fn on_oxygen(&self) -> bool {
        self.o2_lpm > 0.0
    }

    /// Physical bounds: whatever a model does, a vital never leaves these,
    /// and a NaN (which no model should produce) becomes the bound's low end.
    pub fn clamp_physical(&mut self) {
        fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
            if x.is_nan() { lo } else { x.clamp(lo, hi) }
        }
        self.hr_bpm = clamp(self.hr_bpm, 0.0, 300.0);
        self.sbp_mmhg = clamp(self.sbp_mmhg, 0.0, 300.0);
        self.dbp_mmhg = clamp(self.dbp_mmhg, 0.0, self.sbp_mmhg);
        self.rr_bpm = clamp(self.rr_bpm, 0.0, 80.0);
        self.spo2_pct = clamp(self.spo2_pct, 0.0, 100.0);
        self.temp_c = clamp(self.temp_c, 25.0, 45.0);
        self.etco2_mmhg = clamp(self.etco2_mmhg, 0.0, 150.0);
        self.glucose_mgdl = clamp(self.glucose_mgdl, 0.0, 1500.0);
        self.co_lpm = if self.co_lpm.is_nan() {
            0.0
        } else {
            self.co_lpm.clamp(0.0, 30.0)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_position_in_all() {
        for (i, v) in Vital::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
    }

    #[test]
    fn charted_codes_round_trip() {
        for a in Acvpu::ALL {
            assert_eq!(Acvpu::from_code(f64::from(a.code())), Some(a));
        }
        assert_eq!(Acvpu::from_code(4.5), None);
        assert_eq!(Acvpu::from_code(-1.0), None);
        assert_eq!(Acvpu::from_code(f64::NAN), None);
        for s in [Spo2Scale::Scale1, Spo2Scale::Scale2] {
            assert_eq!(spo2_scale_from_code(f64::from(spo2_scale_code(s))), Some(s));
        }
        assert_eq!(spo2_scale_from_code(0.0), None);
        assert_eq!(spo2_scale_from_code(3.0), None);
    }
}
