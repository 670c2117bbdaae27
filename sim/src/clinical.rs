//! What can happen to a patient: the conditions the twin can start and the
//! interventions it can give, each with a one-line description and the
//! parameters it takes. The harness validates scenario files against these
//! tables and `medtwin list` prints them, so they are the single source of
//! truth for names, units, defaults and ranges.

/// A parameter's value: a number, or the index of one of a fixed set of options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    /// A number in `min..=max`.
    Number {
        /// UCUM-style unit for display.
        unit: &'static str,
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
        /// Value when the scenario gives none.
        default: f64,
    },
    /// One of a fixed set of names; the value is the option's index.
    Choice {
        /// The accepted names.
        options: &'static [&'static str],
        /// Index of the default option.
        default: usize,
    },
}

/// One parameter of a condition or intervention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name used in scenario files.
    pub name: &'static str,
    /// What it means.
    pub help: &'static str,
    /// Its type, range and default.
    pub kind: ParamKind,
}

impl ParamSpec {
    /// The default as the resolved numeric value.
    pub fn default_value(&self) -> f64 {
        match self.kind {
            ParamKind::Number { default, .. } => default,
            ParamKind::Choice { default, .. } => default as f64,
        }
    }

    /// The default as written in a scenario file.
    pub fn default_text(&self) -> String {
        match self.kind {
            ParamKind::Number { default, unit, .. } => format!("{default} {unit}"),
            ParamKind::Choice { options, default } => format!("\"{}\"", options[default]),
        }
    }
}

/// Most parameters any condition or intervention takes.
pub const MAX_PARAMS: usize = 3;

/// Resolved parameter values, in the order of the kind's [`ParamSpec`]s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params(pub [f64; MAX_PARAMS]);

impl Params {
    /// Every parameter at its default.
    pub fn defaults(specs: &[ParamSpec]) -> Params {
        let mut values = [0.0; MAX_PARAMS];
        for (value, spec) in values.iter_mut().zip(specs) {
            *value = spec.default_value();
        }
        Params(values)
    }

    /// The value of parameter `i`.
    pub fn get(&self, i: usize) -> f64 {
        self.0[i]
    }
}

const fn number(
    name: &'static str,
    unit: &'static str,
    min: f64,
    max: f64,
    default: f64,
    help: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        help,
        kind: ParamKind::Number {
            unit,
            min,
            max,
            default,
        },
    }
}

const fn choice(
    name: &'static str,
    options: &'static [&'static str],
    default: usize,
    help: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        help,
        kind: ParamKind::Choice { options, default },
    }
}

/// Medical conditions the twin can start on a patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionKind {
    /// Sepsis: SIRS/qSOFA signs developing over hours.
    Sepsis,
    /// Paroxysmal atrial fibrillation: fast, irregular ventricular rate.
    AtrialFibrillation,
    /// Hypoglycaemia from an insulin excess or a missed meal.
    Hypoglycaemia,
    /// Hyperglycaemia from missed insulin or illness.
    Hyperglycaemia,
    /// Opioid-induced respiratory depression.
    OpioidRespiratoryDepression,
    /// Acute exacerbation of COPD.
    CopdExacerbation,
    /// Hypertensive crisis.
    HypertensiveCrisis,
    /// Haemorrhage, by fraction of blood volume lost.
    Haemorrhage,
    /// Cardiac arrest in VF or asystole.
    CardiacArrest,
}

impl ConditionKind {
    /// Every condition, for listings and suggestions.
    pub const ALL: [ConditionKind; 9] = [
        ConditionKind::Sepsis,
        ConditionKind::AtrialFibrillation,
        ConditionKind::Hypoglycaemia,
        ConditionKind::Hyperglycaemia,
        ConditionKind::OpioidRespiratoryDepression,
        ConditionKind::CopdExacerbation,
        ConditionKind::HypertensiveCrisis,
        ConditionKind::Haemorrhage,
        ConditionKind::CardiacArrest,
    ];

    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            ConditionKind::Sepsis => "sepsis",
            ConditionKind::AtrialFibrillation => "atrial_fibrillation",
            ConditionKind::Hypoglycaemia => "hypoglycaemia",
            ConditionKind::Hyperglycaemia => "hyperglycaemia",
            ConditionKind::OpioidRespiratoryDepression => "opioid_respiratory_depression",
            ConditionKind::CopdExacerbation => "copd_exacerbation",
            ConditionKind::HypertensiveCrisis => "hypertensive_crisis",
            ConditionKind::Haemorrhage => "haemorrhage",
            ConditionKind::CardiacArrest => "cardiac_arrest",
        }
    }

    /// The condition called `name`.
    pub fn named(name: &str) -> Option<ConditionKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// One line for `medtwin list conditions`.
    pub fn describe(self) -> &'static str {
        match self {
            ConditionKind::Sepsis => {
                "HR, RR and temperature rise, SBP and SpO2 fall over the ramp (HR 80→125, RR 14→28, \
                 37→39.5 °C, SBP 120→85, SpO2 97→90 at severity 1); confusion at high severity; \
                 untreated it keeps worsening at the same rate into septic shock (MAP under 65 \
                 despite fluids by 1.5× the time full severity took; lactate not modelled); \
                 vasopressors hold the MAP; antibiotics resolve it"
            }
            ConditionKind::AtrialFibrillation => {
                "irregularly irregular ventricular rate from 110/min up to the patient's own \
                 uncontrolled rate at severity 1 (120-180, mean 150), SBP -10; self-terminates \
                 after `duration`; rate control brings the rate under 110"
            }
            ConditionKind::Hypoglycaemia => {
                "an insulin excess (or a meal missed after its bolus: under 70 mg/dL about two \
                 hours later) drives the glucose model below 70 mg/dL; glucagon and adrenaline \
                 slow the fall (type 1: adrenaline only); adrenergic HR rise, then confusion \
                 under 54 and reduced consciousness lower; glucose reverses it"
            }
            ConditionKind::Hyperglycaemia => {
                "missed insulin (basal stops) or illness (insulin resistance, more hepatic \
                 glucose) drives glucose up; DKA signs (tachycardia, Kussmaul breathing) above \
                 300 mg/dL; insulin reverses it"
            }
            ConditionKind::OpioidRespiratoryDepression => {
                "RR falls to ~4/min, SpO2 falls, EtCO2 rises, consciousness to V/P (by severity); \
                 naloxone reverses within minutes but wears off before the opioid does"
            }
            ConditionKind::CopdExacerbation => {
                "RR ≥24, HR ≥95, SpO2 falls more than 3 points, EtCO2 rises; oxygen raises SpO2"
            }
            ConditionKind::HypertensiveCrisis => {
                "SBP above 180 and DBP above 120; an antihypertensive lowers BP by at most 25 % \
                 in the first hour"
            }
            ConditionKind::Haemorrhage => {
                "blood volume lost over the ramp; one baroreflex raises HR and vascular \
                 resistance together (CO = HR × SV, MAP = CO × SVR): HR, SBP and pulse pressure \
                 through the ATLS classes, MAP and cardiac output along Pulse's curve; \
                 untreated loss of half the blood volume ends in PEA arrest within 5 min; IV \
                 fluids restore volume"
            }
            ConditionKind::CardiacArrest => {
                "pulse, BP and breathing stop, EtCO2 under 10, unconscious within 15 s; CPR \
                 gives partial perfusion; defibrillation may restore circulation from VF; each \
                 CPR cycle in asystole or PEA may, less the longer CPR lasts (Goldberger 2012); \
                 long arrests leave the patient confused or worse (hypoxic brain injury)"
            }
        }
    }

    /// The parameters the condition takes besides `severity`, `ramp` and `duration`.
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            ConditionKind::Hypoglycaemia => {
                const {
                    &[
                        choice(
                            "cause",
                            &["insulin_excess", "missed_meal"],
                            0,
                            "insulin_excess: an extra s.c. insulin bolus at onset; missed_meal: the \
                     patient's next meal is skipped after its bolus",
                        ),
                        number(
                            "insulin_u",
                            "U",
                            0.0,
                            100.0,
                            10.0,
                            "insulin_excess: units given at severity 1 (scaled by severity)",
                        ),
                    ]
                }
            }
            ConditionKind::Hyperglycaemia => {
                const {
                    &[choice(
                        "cause",
                        &["missed_insulin", "illness"],
                        0,
                        "missed_insulin: basal insulin stops (severity 1) or is reduced; illness: stress \
                 hormones raise glucose output and insulin resistance",
                    )]
                }
            }
            ConditionKind::Haemorrhage => {
                const {
                    &[number(
                        "volume_pct",
                        "%",
                        1.0,
                        60.0,
                        30.0,
                        "blood volume lost by the end of the ramp, at severity 1",
                    )]
                }
            }
            ConditionKind::AtrialFibrillation => {
                const {
                    &[number(
                        "rate_bpm",
                        "/min",
                        0.0,
                        220.0,
                        0.0,
                        "uncontrolled ventricular rate at severity 1; 0 = the patient's own \
                 (drawn 120-180, mean 150)",
                    )]
                }
            }
            ConditionKind::CardiacArrest => {
                const {
                    &[choice(
                        "rhythm",
                        &["vf", "asystole", "pea", "vt"],
                        0,
                        "initial rhythm: vf and vt (pulseless ventricular tachycardia, which \
                 degenerates to vf after 3 min) are shockable, asystole and pea (pulseless \
                 electrical activity) are not",
                    )]
                }
            }
            _ => &[],
        }
    }

    /// Default time from onset to full severity, ms.
    pub fn default_ramp_ms(self) -> u64 {
        const MIN: u64 = 60_000;
        match self {
            // docs/references.md: a usable sepsis ramp over 6-24 h (design choice).
            ConditionKind::Sepsis => 6 * 60 * MIN,
            // Paroxysmal AF starts abruptly.
            ConditionKind::AtrialFibrillation => 10_000,
            // Glucose-driven: the ramp is the glucose model's own time course.
            ConditionKind::Hypoglycaemia | ConditionKind::Hyperglycaemia => 0,
            // Opioid peak effect: IV morphine 15-30 min (design choice within
            // the PRODIGY "mostly within 24 h" window).
            ConditionKind::OpioidRespiratoryDepression => 20 * MIN,
            ConditionKind::CopdExacerbation => 12 * 60 * MIN,
            ConditionKind::HypertensiveCrisis => 60 * MIN,
            ConditionKind::Haemorrhage => 30 * MIN,
            ConditionKind::CardiacArrest => 0,
        }
    }
}

/// Things done to a patient that change its course.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterventionKind {
    /// Supplemental oxygen.
    Oxygen,
    /// Intravenous crystalloid bolus.
    IvFluids,
    /// Noradrenaline infusion titrated to a MAP target.
    Vasopressor,
    /// Insulin, subcutaneous or intravenous.
    Insulin,
    /// Glucose, oral or intravenous.
    Glucose,
    /// A meal (carbohydrate), with its insulin bolus for type 1 patients.
    Meal,
    /// Naloxone, opioid antagonist.
    Naloxone,
    /// Paracetamol, antipyretic.
    Antipyretic,
    /// Antibiotics for sepsis.
    Antibiotics,
    /// Rate control for atrial fibrillation.
    RateControl,
    /// IV antihypertensive.
    Antihypertensive,
    /// A defibrillator shock.
    Defibrillation,
    /// Cardiopulmonary resuscitation.
    Cpr,
}

impl InterventionKind {
    /// Every intervention, for listings and suggestions.
    pub const ALL: [InterventionKind; 13] = [
        InterventionKind::Oxygen,
        InterventionKind::IvFluids,
        InterventionKind::Vasopressor,
        InterventionKind::Insulin,
        InterventionKind::Glucose,
        InterventionKind::Meal,
        InterventionKind::Naloxone,
        InterventionKind::Antipyretic,
        InterventionKind::Antibiotics,
        InterventionKind::RateControl,
        InterventionKind::Antihypertensive,
        InterventionKind::Defibrillation,
        InterventionKind::Cpr,
    ];

    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            InterventionKind::Oxygen => "oxygen",
            InterventionKind::IvFluids => "iv_fluids",
            InterventionKind::Vasopressor => "vasopressor",
            InterventionKind::Insulin => "insulin",
            InterventionKind::Glucose => "glucose",
            InterventionKind::Meal => "meal",
            InterventionKind::Naloxone => "naloxone",
            InterventionKind::Antipyretic => "antipyretic",
            InterventionKind::Antibiotics => "antibiotics",
            InterventionKind::RateControl => "rate_control",
            InterventionKind::Antihypertensive => "antihypertensive",
            InterventionKind::Defibrillation => "defibrillation",
            InterventionKind::Cpr => "cpr",
        }
    }

    /// The intervention called `name`.
    pub fn named(name: &str) -> Option<InterventionKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// One line for `medtwin list interventions`.
    pub fn describe(self) -> &'static str {
        match self {
            InterventionKind::Oxygen => {
                "nasal cannula or mask; SpO2 rises within 1-2 min (about +4 % FiO2 per L/min); \
                 in CO2 retainers (NEWS2 scale 2) it raises CO2 too; flow 0 stops it; counts as \
                 'on oxygen' for NEWS2"
            }
            InterventionKind::IvFluids => {
                "crystalloid bolus over `duration` (default 30 min); a third stays intravascular \
                 (restores haemorrhage volume); raises BP in sepsis for about 2 h"
            }
            InterventionKind::Vasopressor => {
                "noradrenaline infusion for `duration` (default: to the end), titrated to the MAP \
                 target over about 15 min (Surviving Sepsis: MAP ≥65)"
            }
            InterventionKind::Insulin => {
                "insulin bolus into the glucose model: s.c. peaks in about an hour, i.v. acts \
                 within minutes"
            }
            InterventionKind::Glucose => {
                "oral glucose (the stomach empties it at about 0.8 g/min, faster in \
                 hypoglycaemia; 20 g raises a hypoglycaemic patient's glucose by 30+ mg/dL in \
                 20 min; 75 g is an OGTT) or i.v. dextrose (immediate)"
            }
            InterventionKind::Meal => {
                "carbohydrate into the gut; type 1 patients get a matched bolus (by their \
                 titrated carbohydrate ratio) unless bolus_u says otherwise"
            }
            InterventionKind::Naloxone => {
                "reverses opioid respiratory depression within 2-5 min; lasts about 45 min, \
                 shorter than most opioids (re-narcotisation)"
            }
            InterventionKind::Antipyretic => {
                "paracetamol: temperature falls by up to 1 °C (and HR with it) over about an \
                 hour, for about 5 h"
            }
            InterventionKind::Antibiotics => {
                "stops sepsis progressing; it resolves over about 24 h (design choice)"
            }
            InterventionKind::RateControl => {
                "beta-blocker or diltiazem: AF ventricular rate under 110 within about 30 min; \
                 the rhythm stays AF"
            }
            InterventionKind::Antihypertensive => {
                "IV labetalol-like: BP falls by up to 25 % over the first hour (ACC/AHA 2017)"
            }
            InterventionKind::Defibrillation => {
                "a shock: from VF, return of circulation with a probability that falls with \
                 minutes since arrest (less steeply with CPR); no effect on asystole"
            }
            InterventionKind::Cpr => {
                "chest compressions for `duration` (default: until circulation returns): cardiac \
                 output about 25 % of baseline, EtCO2 10-20 mmHg; in asystole or PEA each 2-min \
                 cycle may restore circulation, 5 % at first, falling with CPR duration (median \
                 successful duration ~12 min, rare after 30 min)"
            }
        }
    }

    /// The parameters the intervention takes besides `duration`.
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            InterventionKind::Oxygen => {
                const {
                    &[number(
                        "flow_lpm",
                        "L/min",
                        0.0,
                        15.0,
                        2.0,
                        "oxygen flow; 0 takes the patient off oxygen",
                    )]
                }
            }
            InterventionKind::IvFluids => {
                const {
                    &[number(
                        "volume_ml",
                        "mL",
                        50.0,
                        5000.0,
                        500.0,
                        "crystalloid volume",
                    )]
                }
            }
            InterventionKind::Vasopressor => {
                const {
                    &[number(
                        "target_map",
                        "mm[Hg]",
                        55.0,
                        90.0,
                        65.0,
                        "MAP the infusion is titrated to",
                    )]
                }
            }
            InterventionKind::Insulin => {
                const {
                    &[
                        number("units", "U", 0.1, 200.0, 4.0, "insulin dose"),
                        choice("route", &["sc", "iv"], 0, "subcutaneous or intravenous"),
                    ]
                }
            }
            InterventionKind::Glucose => {
                const {
                    &[
                        number("grams", "g", 1.0, 200.0, 15.0, "glucose dose"),
                        choice(
                            "route",
                            &["oral", "iv"],
                            0,
                            "oral (tablets, gel) or IV dextrose",
                        ),
                    ]
                }
            }
            InterventionKind::Meal => {
                const {
                    &[
                        number("carbs_g", "g", 0.0, 300.0, 60.0, "carbohydrate in the meal"),
                        number(
                            "bolus_u",
                            "U",
                            -1.0,
                            100.0,
                            -1.0,
                            "insulin bolus with the meal; -1 = matched (carbs ÷ carb ratio) for type 1, \
                     none otherwise",
                        ),
                    ]
                }
            }
            InterventionKind::Naloxone => {
                const {
                    &[number(
                        "dose_mg",
                        "mg",
                        0.04,
                        10.0,
                        0.4,
                        "IV dose; 0.4 mg is a full reversal dose",
                    )]
                }
            }
            InterventionKind::Antipyretic => {
                const {
                    &[number(
                        "dose_mg",
                        "mg",
                        100.0,
                        1000.0,
                        1000.0,
                        "paracetamol dose; the effect scales with dose up to 1 g",
                    )]
                }
            }
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_are_in_range() {
        for kind in ConditionKind::ALL {
            assert_eq!(ConditionKind::named(kind.name()), Some(kind));
            check_specs(kind.params());
        }
        for kind in InterventionKind::ALL {
            assert_eq!(InterventionKind::named(kind.name()), Some(kind));
            check_specs(kind.params());
        }
    }

    fn check_specs(specs: &[ParamSpec]) {
        assert!(specs.len() <= MAX_PARAMS);
        for spec in specs {
            match spec.kind {
                ParamKind::Number {
                    min, max, default, ..
                } => assert!(min <= default && default <= max, "{}", spec.name),
                ParamKind::Choice { options, default } => assert!(default < options.len()),
            }
        }
    }
}
