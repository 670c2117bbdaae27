//! The physiological state of a patient: what the twin knows to be true.

use bevy_ecs::component::Component;
use serde::Serialize;

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
}

impl Vital {
    /// Every vital, in declaration order: `ALL[v.index()] == v`.
    pub const ALL: [Vital; 10] = [
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
        }
    }

    /// LOINC code of the vital, as FHIR vital signs use them
    /// (docs/references.md, "Interoperability"; 8478-0 is LOINC's mean
    /// blood pressure, 29463-7 body weight, 99504-3 CGM interstitial
    /// glucose). Infusion rate has none. SpO2 also has 2708-6; medtwin
    /// sends the pulse-oximetry code 59408-5.
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
            Vital::InfusionRate => return None,
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
    /// Ventricular fibrillation.
    Vf,
    /// Asystole.
    Asystole,
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
}
