//! How the true state moves. Each step, a patient's *target* state is
//! computed in closed form from its traits, the time of day, its conditions
//! and the interventions it has had; the true state is that target plus
//! natural variability (an Ornstein-Uhlenbeck deviation per vital). Only
//! four things carry memory: the variability, the effective oxygen flow,
//! the body's oxygen stores (arterial saturation follows its target with a
//! first-order lag, [`O2Store`]) and the glucose model (see
//! [`crate::glucose`]).
//!
//! The order of the couplings inside [`target`] is the model:
//! circadian baseline (the patient's own sleep times) → condition shifts →
//! haemorrhage baroreflex → fluids → fever → vasopressor → opioid →
//! glucose → AF → gas exchange → hypoxaemic drive → perfusion → cardiac
//! arrest → hypoxic brain injury after return of circulation.

use bevy_ecs::component::Component;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::clinical::{ConditionKind, InterventionKind, Params};
use crate::profile::Traits;
use crate::vitals::{Acvpu, Rhythm, Vitals};

const MIN_MS: f64 = 60_000.0;
const HOUR_MS: f64 = 3_600_000.0;

/// One condition episode on a patient.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// Which condition.
    pub kind: ConditionKind,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// Severity in (0, 1].
    pub severity: f64,
    /// Onset to full severity, simulated ms.
    pub ramp_ms: u64,
    /// Scenario-given duration, after which it resolves by itself.
    pub duration_ms: Option<u64>,
    /// Condition-specific parameters.
    pub params: Params,
    /// Whether the onset has been logged.
    pub started: bool,
    /// When it ended (logged once set).
    pub end_ms: Option<u64>,
    /// Glucose episodes: whether the glucose has crossed the threshold yet.
    pub reached: bool,
    /// Missed-meal hypoglycaemia: whether the meal has been skipped yet.
    pub skipped_meal: bool,
}

impl Episode {
    /// Fraction of the ramp done at `now_ms`, in [0, 1].
    pub fn progress(&self, now_ms: u64) -> f64 {
        if now_ms < self.onset_ms {
            return 0.0;
        }
        if self.ramp_ms == 0 {
            return 1.0;
        }
        ((now_ms - self.onset_ms) as f64 / self.ramp_ms as f64).min(1.0)
    }

    /// Whether it has started and not ended at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        self.started && now_ms >= self.onset_ms && self.end_ms.is_none_or(|end| now_ms < end)
    }

    /// Ramp progress, fading out after the episode ended with the
    /// condition's offset time constant.
    fn activity(&self, now_ms: u64) -> f64 {
        if !self.started || now_ms < self.onset_ms {
            return 0.0;
        }
        let p = self.progress(now_ms);
        match self.end_ms {
            Some(end) if now_ms >= end => {
                let tau = offset_tau_ms(self.kind);
                if tau <= 0.0 {
                    0.0
                } else {
                    p * (-((now_ms - end) as f64) / tau).exp()
                }
            }
            _ => p,
        }
    }
}

/// How fast a condition's effect fades once it has ended.
fn offset_tau_ms(kind: ConditionKind) -> f64 {
    match kind {
        // A paroxysm stops abruptly.
        ConditionKind::AtrialFibrillation => 5_000.0,
        // Design choice: an opioid's remaining effect wanes over ~1 h.
        ConditionKind::OpioidRespiratoryDepression => 20.0 * MIN_MS,
        ConditionKind::CopdExacerbation => 6.0 * HOUR_MS,
        ConditionKind::HypertensiveCrisis => 1.0 * HOUR_MS,
        // Sepsis resolution has its own course (antibiotics), glucose
        // episodes act through the glucose model, blood loss is not undone
        // by stopping the bleed, arrest ends with return of circulation.
        ConditionKind::Sepsis
        | ConditionKind::Hypoglycaemia
        | ConditionKind::Hyperglycaemia
        | ConditionKind::Haemorrhage
        | ConditionKind::CardiacArrest => 0.0,
    }
}

/// An intervention scheduled for or given to a patient.
#[derive(Clone, Debug, PartialEq)]
pub struct Given {
    /// What.
    pub kind: InterventionKind,
    /// When, simulated ms.
    pub at_ms: u64,
    /// Parameters, in the order of [`InterventionKind::params`].
    pub params: Params,
    /// How long it runs (infusions, oxygen, CPR), if limited.
    pub duration_ms: Option<u64>,
    /// Whether it has been given (and logged).
    pub done: bool,
}

impl Given {
    fn running(&self, now_ms: u64) -> bool {
        self.done
            && now_ms >= self.at_ms
            && self
                .duration_ms
                .is_none_or(|d| now_ms < self.at_ms.saturating_add(d))
    }

    fn minutes_since(&self, now_ms: u64) -> f64 {
        now_ms.saturating_sub(self.at_ms) as f64 / MIN_MS
    }
}

/// A patient's conditions and interventions, past, present and scheduled.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Course {
    /// Episodes in scenario order.
    pub episodes: Vec<Episode>,
    /// Interventions in time order.
    pub given: Vec<Given>,
    /// Effective oxygen flow, L/min: follows the set flow with a 1-min lag.
    pub o2_effective: f32,
}

impl Course {
    /// Nothing scheduled, nothing given.
    pub const NONE: Course = Course {
        episodes: Vec::new(),
        given: Vec::new(),
        o2_effective: 0.0,
    };

    /// Whether nothing has been or will be done to this patient.
    pub fn is_empty(&self) -> bool {
        self.episodes.is_empty() && self.given.is_empty()
    }

    /// Given interventions of one kind.
    fn of(&self, kind: InterventionKind) -> impl Iterator<Item = &Given> {
        self.given.iter().filter(move |g| g.done && g.kind == kind)
    }

    /// The oxygen flow currently set, L/min.
    pub fn o2_set(&self, now_ms: u64) -> f32 {
        self.of(InterventionKind::Oxygen)
            .filter(|g| g.at_ms <= now_ms)
            .last()
            .map_or(0.0, |g| {
                if g.running(now_ms) {
                    g.params.get(0) as f32
                } else {
                    0.0
                }
            })
    }

    /// Whether CPR is under way.
    pub fn cpr(&self, now_ms: u64) -> bool {
        self.of(InterventionKind::Cpr).any(|g| g.running(now_ms))
    }

    /// Sum over interventions of `kind` of `effect(minutes since, params)`.
    fn effect(&self, kind: InterventionKind, now_ms: u64, f: impl Fn(&Given, f64) -> f64) -> f64 {
        self.of(kind)
            .filter(|g| g.at_ms <= now_ms)
            .map(|g| f(g, g.minutes_since(now_ms)))
            .sum()
    }
}

/// A drug effect: first-order onset with `onset_min`, full for
/// `last_min`, then first-order offset with `offset_min`.
fn drug_curve(t_min: f64, onset_min: f64, last_min: f64, offset_min: f64) -> f64 {
    let on = 1.0 - (-t_min / onset_min).exp();
    if t_min <= last_min {
        on
    } else {
        on * (-(t_min - last_min) / offset_min).exp()
    }
}

/// Naloxone's block of opioid effect, 0..1. Onset within 2 min, full
/// reversal of respiratory depression within 5 (docs/references.md: "naloxone
/// reverses within minutes"); duration 30-90 min, shorter than most
/// opioids (design choice: 45 min, then a 15-min offset), so an opioid
/// still acting re-sedates the patient. 0.4 mg is a full reversal dose.
fn naloxone_block(course: &Course, now_ms: u64) -> f64 {
    course
        .effect(InterventionKind::Naloxone, now_ms, |g, t| {
            (g.params.get(0) / 0.4).min(1.0) * drug_curve(t, 1.0, 45.0, 15.0)
        })
        .min(1.0)
}

/// Paracetamol: up to 1 °C off a fever (design choice consistent with
/// trials showing ~0.5-1 °C falls at 1 g), onset over ~1 h, 5 h duration.
fn antipyretic_c(course: &Course, now_ms: u64) -> f64 {
    course
        .effect(InterventionKind::Antipyretic, now_ms, |g, t| {
            (g.params.get(0) / 1000.0).min(1.0) * drug_curve(t, 25.0, 300.0, 60.0)
        })
        .min(1.5)
}

/// Rate control: fraction of the way from the AF rate to a controlled
/// 95/min; 95 % within 30 min (RACE II lenient target < 110/min), 8 h.
fn rate_control(course: &Course, now_ms: u64) -> f64 {
    course
        .effect(InterventionKind::RateControl, now_ms, |_, t| {
            drug_curve(t, 10.0, 480.0, 60.0)
        })
        .min(1.0)
}

/// Antihypertensive: fraction of the crisis BP rise removed; at most 60 %,
/// so SBP falls by no more than ~25 % in the first hour (ACC/AHA 2017).
fn antihypertensive(course: &Course, now_ms: u64) -> f64 {
    0.6 * course
        .effect(InterventionKind::Antihypertensive, now_ms, |_, t| {
            drug_curve(t, 30.0, 360.0, 60.0)
        })
        .min(1.0)
}

/// Millilitres of crystalloid infused so far that stay intravascular: a
/// third (the ATLS "3:1" rule), delivered evenly over the infusion time.
fn fluids_retained_ml(course: &Course, now_ms: u64) -> f64 {
    course.effect(InterventionKind::IvFluids, now_ms, |g, t| {
        let over_min = infusion_min(g);
        g.params.get(0) / 3.0 * (t / over_min).min(1.0)
    })
}

fn infusion_min(g: &Given) -> f64 {
    g.duration_ms.map_or(30.0, |d| (d as f64 / MIN_MS).max(1.0))
}

/// Transient BP support of a fluid bolus in a hypotensive patient: about
/// +10 mmHg SBP per 500 mL at the end of the infusion, fading over ~1 h
/// (design choice; fluid-bolus effects dissipate within 1-2 h).
fn fluid_bp_boost(course: &Course, now_ms: u64) -> f64 {
    course
        .effect(InterventionKind::IvFluids, now_ms, |g, t| {
            let over = infusion_min(g);
            let dose = (g.params.get(0) / 500.0).min(2.0) * 10.0;
            if t <= over {
                dose * t / over
            } else {
                dose * (-(t - over) / 60.0).exp()
            }
        })
        .min(20.0)
}

/// Linear interpolation in a table of (x, y) points sorted by x.
fn interp(table: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (table[0], table[table.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    for pair in table.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// MAP, % of baseline, by fraction of blood volume lost: Pulse's haemorrhage
/// validation data, ~101/98/65/41 % at 10/20/30/40 % (docs/references.md). Beyond
/// 40 %: design choice, continuing the fall.
pub const MAP_CURVE: [(f64, f64); 6] = [
    (0.0, 100.0),
    (0.1, 101.0),
    (0.2, 98.0),
    (0.3, 65.0),
    (0.4, 41.0),
    (0.6, 20.0),
];
/// Cardiac output, % of baseline: ~97/81/54/29 % at 10/20/30/40 % (docs/references.md).
pub const CO_CURVE: [(f64, f64); 6] = [
    (0.0, 100.0),
    (0.1, 97.0),
    (0.2, 81.0),
    (0.3, 54.0),
    (0.4, 29.0),
    (0.6, 10.0),
];
/// Stroke volume, fraction of baseline, by fraction of blood volume lost
/// (Frank-Starling: less filling, less ejected). Fitted so that cardiac
/// output = HR × SV, with the baroreflex's HR below, gives Pulse's cardiac
/// output points (docs/references.md, "Haemorrhage"); beyond 40 %: design
/// choice, falling towards nothing.
pub const SV_CURVE: [(f64, f64); 8] = [
    (0.0, 1.0),
    (0.1, 0.79),
    (0.2, 0.56),
    (0.3, 0.32),
    (0.4, 0.15),
    (0.5, 0.07),
    (0.6, 0.03),
    (0.7, 0.01),
];
/// The baroreflex's activation reaches 1 at this fraction of blood volume
/// lost (ATLS class IV begins).
const BARO_FULL: f64 = 0.4;
/// HR rise at full activation, /min: with activation ∝ volume lost it
/// places a ~73/min patient in the ATLS classes (docs/references.md): < 15 %
/// HR < 100, 15-30 % 100-120, 30-40 % 120-140, > 40 % > 140.
const BARO_HR: f64 = 65.0;
/// Vascular resistance rise at full activation (fraction of baseline),
/// applied as activation^1.2 (vasoconstriction recruited a little late): with
/// MAP = CO × SVR it gives Pulse's MAP points (~101/98/65/41 % at
/// 10/20/30/40 % lost) within a few points (fitted; tested).
const BARO_SVR: f64 = 0.45;
/// Pulse pressure follows stroke volume as SV^0.5: pulse pressure ∝ SV /
/// arterial compliance, and vasoconstriction stiffens the arteries as SV
/// falls (design choice; it narrows the pulse pressure in ATLS class II
/// while SBP stays normal, as the class table says).
const PP_SV_EXPONENT: f64 = 0.5;
/// Untreated loss of this fraction of the blood volume ends in PEA arrest
/// once it has held [`EXSANGUINATION_HOLD_MS`] (docs/references.md,
/// "Exsanguination": loss beyond ~40-50 % leads to PEA/asystole).
pub const EXSANGUINATION_LOSS: f64 = 0.5;
/// How long the loss holds before the heart stops (design choice: minutes
/// of MAP near 25 mmHg exhaust coronary perfusion).
pub const EXSANGUINATION_HOLD_MS: u64 = 5 * 60_000;
/// RR rise, /min, for the ATLS classes: 15-30 % RR 20-30; 30-40 % 30-40; > 40 % > 35.
const RR_CURVE: [(f64, f64); 5] = [
    (0.0, 0.0),
    (0.15, 5.0),
    (0.3, 13.0),
    (0.4, 20.0),
    (0.5, 24.0),
];

/// Blood volume ≈ 7 % of body weight in adults (ATLS), mL.
pub fn blood_volume_ml(weight_kg: f64) -> f64 {
    70.0 * weight_kg
}

/// Fraction of the blood volume lost at `now_ms`, net of the crystalloid
/// that stayed intravascular, in [0, 0.7].
pub fn net_blood_loss(body: &Body, course: &Course, now_ms: u64) -> f64 {
    let mut lost_ml = 0.0;
    for ep in &course.episodes {
        if ep.kind == ConditionKind::Haemorrhage && ep.started {
            lost_ml += ep.severity
                * ep.params.get(0)
                * ep.progress(now_ms)
                * f64::from(body.blood_volume_ml)
                / 100.0;
        }
    }
    if lost_ml <= 0.0 {
        return 0.0;
    }
    ((lost_ml - fluids_retained_ml(course, now_ms)) / f64::from(body.blood_volume_ml))
        .clamp(0.0, 0.7)
}

/// Whether an untreated exsanguination stops the heart at `now_ms`: the
/// net loss has been at least [`EXSANGUINATION_LOSS`] now and
/// [`EXSANGUINATION_HOLD_MS`] ago (bleeding and infusions are monotone,
/// so both ends holding means it held throughout), and no arrest is
/// under way or due.
pub fn exsanguinated(body: &Body, course: &Course, now_ms: u64) -> bool {
    let Some(then) = now_ms.checked_sub(EXSANGUINATION_HOLD_MS) else {
        return false;
    };
    let arrested = course.episodes.iter().any(|e| {
        e.kind == ConditionKind::CardiacArrest && (e.end_ms.is_none() || e.active(now_ms))
    });
    !arrested
        && course
            .episodes
            .iter()
            .any(|e| e.kind == ConditionKind::Haemorrhage && e.started)
        && net_blood_loss(body, course, now_ms) >= EXSANGUINATION_LOSS
        && net_blood_loss(body, course, then) >= EXSANGUINATION_LOSS
}

/// Severinghaus (1979) oxygen dissociation curve: SO2 % from PO2 mmHg.
pub fn severinghaus(po2: f64) -> f64 {
    let p = po2.max(0.0);
    100.0 / (1.0 + 23_400.0 / (p * p * p + 150.0 * p))
}

/// Inverse of [`severinghaus`] by bisection (used once per patient).
pub fn po2_for_saturation(so2: f64) -> f64 {
    let (mut lo, mut hi) = (1.0, 600.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if severinghaus(mid) < so2 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Alveolar gas equation at sea level: PAO2 = FiO2 (760 − 47) − PaCO2 / 0.8.
fn alveolar_po2(fio2: f64, paco2: f64) -> f64 {
    fio2 * 713.0 - paco2 / 0.8
}

/// FiO2 by flow: about +4 % per L/min over room air's 21 % (nasal cannula
/// rule of thumb), up to 0.8 with a reservoir mask at 15 L/min.
pub fn fio2(flow_lpm: f64) -> f64 {
    (0.21 + 0.04 * flow_lpm.max(0.0)).min(0.8)
}

/// How arterial CO2 follows breathing: PaCO2 ∝ (RR₀/RR)^0.5. A constant
/// tidal volume would give an exponent of 1; tidal volume rises as rate
/// falls in opioid depression, and 0.5 puts RR 4/min at ~75 mmHg and
/// RR 28/min at ~28 mmHg (design choice, matching PRODIGY's ≥ 60 mmHg
/// at RR ≤ 5 and the low EtCO2 of septic hyperventilation).
fn paco2(etco2_base: f64, rr_base: f64, rr: f64) -> f64 {
    etco2_base * (rr_base / rr.max(1.0)).sqrt()
}

/// A patient's fixed physiology: drawn traits plus what follows from them.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Body {
    /// Drawn traits.
    pub traits: Traits,
    /// Arterial/alveolar O2 ratio (PaO2/PAO2) that gives the drawn SpO2 on
    /// air. The a/A ratio, unlike the A-a gradient, stays roughly constant
    /// as FiO2 changes (Gilbert & Keighley 1974), so oxygen therapy raises
    /// PaO2 in proportion rather than one for one.
    pub pa_ratio: f32,
    /// Blood volume, mL.
    pub blood_volume_ml: f32,
    /// Uncontrolled AF ventricular rate at severity 1, /min.
    pub af_rate: f32,
    /// Local hour the patient falls asleep (21-25, past midnight above 24).
    pub sleep_at_h: f32,
    /// Local hour the patient wakes (5-9).
    pub wake_at_h: f32,
}

/// Uncontrolled AF ventricular rate at severity 1: docs/references.md
/// ("Atrial fibrillation") gives 110-160/min; medtwin draws each patient's
/// from N(150, 10) within 120-180 (design choice: the published range is
/// the spread of severities and patients, the mean keeps severity 1 fast).
const AF_RATE: (f64, f64, f64, f64) = (150.0, 10.0, 120.0, 180.0);
/// When people sleep: 23:00-07:00 at the centre, each patient's onset and
/// waking drawn from N(0, 0.75 h) within ±2 h of it (docs/references.md,
/// "Sleep": the timing of sleep spreads by about an hour between people,
/// Roenneberg 2007; a ward's lights-out narrows it, design choice).
const SLEEP_SPREAD_H: f64 = 0.75;

impl Body {
    /// The body for `traits`, at the population's centre for what is not
    /// a trait (AF rate, sleep times).
    pub fn new(traits: Traits) -> Body {
        let pao2 = po2_for_saturation(f64::from(traits.spo2));
        let alveolar = alveolar_po2(0.21, f64::from(traits.etco2));
        Body {
            traits,
            pa_ratio: (pao2 / alveolar).clamp(0.05, 1.0) as f32,
            blood_volume_ml: blood_volume_ml(f64::from(traits.weight_kg)) as f32,
            af_rate: AF_RATE.0 as f32,
            sleep_at_h: 23.0,
            wake_at_h: 7.0,
        }
    }

    /// The body for `traits` with its own AF rate and sleep times drawn
    /// from `rng` (a stream of the patient's own, so the traits' draws are
    /// unchanged).
    pub fn drawn<R: Rng + ?Sized>(traits: Traits, rng: &mut R) -> Body {
        let mut body = Body::new(traits);
        let mut normal = |mean: f64, sd: f64, lo: f64, hi: f64| {
            let z: f64 = StandardNormal.sample(rng);
            (mean + sd * z).clamp(lo, hi) as f32
        };
        body.af_rate = normal(AF_RATE.0, AF_RATE.1, AF_RATE.2, AF_RATE.3);
        body.sleep_at_h = normal(23.0, SLEEP_SPREAD_H, 21.0, 25.0);
        body.wake_at_h = normal(7.0, SLEEP_SPREAD_H, 5.0, 9.0);
        body
    }

    /// How asleep the patient is at `day`: 1 asleep, 0 awake, with smooth
    /// 1-h transitions centred on its own sleep and wake times.
    #[inline]
    pub fn sleep(&self, day: Daytime) -> f64 {
        // Hours since noon: falling asleep and waking lie in order. Awake
        // or asleep outright most of the day: no curve to compute (this
        // runs for every patient every step).
        let t = day.since_noon_h;
        let onset = f64::from(self.sleep_at_h) - 12.0;
        let wake = f64::from(self.wake_at_h) + 12.0;
        if t <= onset - 0.5 || t >= wake + 0.5 {
            0.0
        } else if t >= onset + 0.5 && t <= wake - 0.5 {
            1.0
        } else {
            smoothstep(t - onset + 0.5) * (1.0 - smoothstep(t - wake + 0.5))
        }
    }
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// The time of day, shared by every patient in a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Daytime {
    /// Hours since local noon, 0 ≤ t < 24 (the night in one piece).
    pub since_noon_h: f64,
    /// 1 while a typical patient is asleep (23:00-07:00), 0 awake, smooth
    /// 1-h transitions (what devices and sensors see; each patient's own
    /// is [`Body::sleep`]).
    pub sleep: f64,
    /// cos(2π (h − 16) / 24): +1 at 16:00, −1 at 04:00.
    pub temp_wave: f64,
}

impl Daytime {
    /// The time of day `ms_of_day` after local midnight.
    pub fn at(ms_of_day: u64) -> Daytime {
        let h = (ms_of_day % 86_400_000) as f64 / HOUR_MS;
        let sleep = if h >= 12.0 {
            smoothstep(h - 22.5)
        } else {
            1.0 - smoothstep(h - 6.5)
        };
        Daytime {
            since_noon_h: if h >= 12.0 { h - 12.0 } else { h + 12.0 },
            sleep,
            temp_wave: (std::f64::consts::TAU * (h - 16.0) / 24.0).cos(),
        }
    }
}

/// What [`target`] gives besides the vitals: how much natural variability
/// applies and any beat-to-beat irregularity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Multiplier of the HR and BP variability (0 without circulation).
    pub circulation: f64,
    /// Extra white HR noise, SD in /min (irregular rhythms).
    pub hr_irregular_sd: f64,
}

// Sepsis at full severity (docs/references.md ramp, *design choice*): HR 80→125,
// RR 14→28, 37→39.5 °C, SBP 120→85, SpO2 97→90. HR: 45 in all, of which
// 8.5 × 2.5 comes from the fever coupling. DBP: design choice, ~60 % of the
// systolic fall. SpO2: an A-a gradient rise that, with the septic
// hyperventilation's low PaCO2, lands SpO2 at ~90 (tested): an a/A ratio
// fall of 0.43 (design choice, calibrated to the docs/references.md ramp).
const SEPSIS_HR: f64 = 45.0 - FEVER_HR_PER_C * 2.5;
const SEPSIS_RR: f64 = 14.0;
const SEPSIS_TEMP: f64 = 2.5;
const SEPSIS_SBP: f64 = -35.0;
const SEPSIS_DBP: f64 = -20.0;
const SEPSIS_RATIO: f64 = 0.43;
// Septic shock, reached untreated at 1.5 × the time full sepsis took
// (BioGears: signs at ~24 h, near shock at ~36 h; docs/references.md):
// vasoplegia takes SBP a further 25 and DBP 15 mmHg down, so MAP stays
// under 65 mmHg despite a fluid bolus (Sepsis-3 septic shock: vasopressors
// needed for MAP ≥ 65); HR +10, a/A ratio −0.05 (design choices).
const SHOCK_AT_LEVEL: f64 = 1.5;
const SHOCK_SBP: f64 = -25.0;
const SHOCK_DBP: f64 = -15.0;
const SHOCK_HR: f64 = 10.0;
const SHOCK_RATIO: f64 = 0.05;
/// Sleep lowers minute ventilation by 13-15 % (Douglas 1982); medtwin lets
/// the rate carry half of it, the rest is tidal volume (design choice).
const SLEEP_RR_FALL: f64 = 0.07;
/// Oxygen in CO2 retainers (NEWS2 scale 2, hypercapnic respiratory
/// failure) raises PaCO2: +23 mmHg on FiO2 1.0 in COPD with acute
/// respiratory failure (Aubier 1980), so ~29 mmHg per unit FiO2 above air.
const O2_CO2_RISE: f64 = 29.0;
/// Fever raises HR ~8.5 /min per °C (Karjalainen & Viitasalo 1986).
const FEVER_HR_PER_C: f64 = 8.5;
// COPD exacerbation (docs/references.md: RR ≥ 24, HR ≥ 95, SpO2 < 92 or a drop > 3,
// PaCO2 > 45): shifts at full severity on the COPD profile's baseline.
const COPD_RR: f64 = 10.0;
const COPD_HR: f64 = 20.0;
const COPD_RATIO: f64 = 0.10;
const COPD_CO2: f64 = 12.0;
// Hypertensive crisis (docs/references.md: SBP > 180 and/or DBP > 120).
const CRISIS_SBP: f64 = 70.0;
const CRISIS_DBP: f64 = 45.0;
const CRISIS_HR: f64 = 8.0;
/// Opioid depression at full severity: RR falls by 72 % (14 → ~4/min, PRODIGY RR ≤ 5).
const OPIOID_RR_FALL: f64 = 0.72;

/// The target state at `now_ms`.
pub fn target(
    body: &Body,
    course: &Course,
    glucose_mgdl: f64,
    day: Daytime,
    now_ms: u64,
) -> (Vitals, Shape) {
    let t = &body.traits;
    let sleep = body.sleep(day);
    let mut hr = f64::from(t.hr) - f64::from(t.hr_night_drop) * sleep;
    let dip = 1.0 - f64::from(t.bp_dip) * sleep;
    let mut sbp = f64::from(t.sbp) * dip;
    let mut dbp = f64::from(t.dbp) * dip;
    let rr_base = f64::from(t.rr);
    let mut rr = rr_base * (1.0 - SLEEP_RR_FALL * sleep);
    let mut fever = 0.0;
    let mut ratio = f64::from(body.pa_ratio);
    let mut co2_retention = 0.0;
    let mut co_frac = 1.0;
    let mut acvpu = Acvpu::Alert;
    let mut opioid: f64 = 0.0;
    let mut af: Option<(f64, f64)> = None;
    let mut arrest: Option<&Episode> = None;
    let mut post_rosc: Option<(&Episode, f64)> = None;

    for ep in &course.episodes {
        let act = ep.activity(now_ms);
        match ep.kind {
            ConditionKind::Sepsis => {
                let level = sepsis_level(ep, course, now_ms);
                let shock = ((level - 1.0) / (SHOCK_AT_LEVEL - 1.0)).clamp(0.0, 1.0);
                let level = level.min(1.0);
                hr += SEPSIS_HR * level + SHOCK_HR * shock;
                rr += SEPSIS_RR * level;
                fever += SEPSIS_TEMP * level;
                sbp += SEPSIS_SBP * level + SHOCK_SBP * shock;
                dbp += SEPSIS_DBP * level + SHOCK_DBP * shock;
                ratio -= SEPSIS_RATIO * level + SHOCK_RATIO * shock;
                if level >= 0.8 {
                    // qSOFA's altered mentation at the severe end (design choice).
                    acvpu = acvpu.max(Acvpu::Confused);
                }
            }
            ConditionKind::AtrialFibrillation if act > 0.0 => {
                // docs/references.md: uncontrolled ventricular rate 110-160,
                // up to the patient's own (or the scenario's) at severity 1.
                let full = if ep.params.get(0) > 0.0 {
                    ep.params.get(0)
                } else {
                    f64::from(body.af_rate)
                };
                let rate = 110.0 + (full - 110.0) * ep.severity;
                sbp -= 10.0 * ep.severity * act; // loss of atrial kick (design choice)
                let prev = af.map_or(0.0, |(_, a)| a);
                if act >= prev {
                    af = Some((rate, act));
                }
            }
            ConditionKind::OpioidRespiratoryDepression => {
                opioid = opioid.max(ep.severity * act);
            }
            ConditionKind::CopdExacerbation => {
                let level = ep.severity * act;
                rr += COPD_RR * level;
                hr += COPD_HR * level;
                ratio -= COPD_RATIO * level;
                co2_retention += COPD_CO2 * level;
            }
            ConditionKind::HypertensiveCrisis => {
                let level = ep.severity * act * (1.0 - antihypertensive(course, now_ms));
                sbp += CRISIS_SBP * level;
                dbp += CRISIS_DBP * level;
                hr += CRISIS_HR * ep.severity * act;
            }
            ConditionKind::CardiacArrest => {
                if ep.active(now_ms) {
                    arrest = Some(ep);
                } else if let Some(end) = ep.end_ms.filter(|&end| now_ms >= end) {
                    post_rosc = Some((ep, (now_ms - end) as f64 / MIN_MS));
                }
            }
            // Blood loss is summed below, over every haemorrhage.
            ConditionKind::Haemorrhage
            | ConditionKind::Hypoglycaemia
            | ConditionKind::Hyperglycaemia
            | ConditionKind::AtrialFibrillation => {}
        }
    }

    // Haemorrhage: one baroreflex, activated in proportion to the volume
    // lost, raises HR and vascular resistance together; stroke volume
    // falls with filling (Frank-Starling). CO = HR × SV, MAP = CO × SVR
    // (the lumped circulation of Guyton's and Ursino's models), pulse
    // pressure follows SV: HR, SBP and pulse pressure move together
    // through the ATLS classes, MAP and CO through Pulse's curve.
    let lost = if course.episodes.is_empty() {
        0.0
    } else {
        net_blood_loss(body, course, now_ms)
    };
    if lost > 0.0 {
        let activation = lost / BARO_FULL;
        let hr_before = hr.max(1.0);
        hr += BARO_HR * activation;
        let hr_ratio = hr.min(f64::from(t.hr_max)) / hr_before;
        let sv = interp(&SV_CURVE, lost);
        let svr = 1.0 + BARO_SVR * activation.min(1.0).powf(1.2);
        let co_ratio = hr_ratio * sv;
        let map = (dbp + (sbp - dbp) / 3.0) * co_ratio * svr;
        let pulse = (sbp - dbp) * sv.powf(PP_SV_EXPONENT);
        sbp = map + 2.0 * pulse / 3.0;
        dbp = map - pulse / 3.0;
        co_frac *= co_ratio;
        rr += interp(&RR_CURVE, lost);
    }
    // Fluids lift BP only as far as it has fallen below the patient's own.
    let boost = fluid_bp_boost(course, now_ms);
    if boost > 0.0 {
        let deficit = (f64::from(t.sbp) * dip - sbp).max(0.0);
        let lift = boost.min(deficit);
        sbp += lift;
        dbp += 0.6 * lift;
    }
    // Fever, less what an antipyretic takes off it, drives HR.
    fever = (fever - antipyretic_c(course, now_ms)).max(0.0);
    hr += FEVER_HR_PER_C * fever;
    let temp = f64::from(t.temp) + f64::from(t.temp_swing) * day.temp_wave + fever;
    // Vasopressor: titrated up to its MAP target over ~15 min.
    for g in course.of(InterventionKind::Vasopressor) {
        if g.running(now_ms) {
            let reach = 1.0 - (-g.minutes_since(now_ms) / 5.0).exp();
            let map = dbp + (sbp - dbp) / 3.0;
            let raise = (g.params.get(0) - map).max(0.0) * reach;
            sbp += raise;
            dbp += raise;
        }
    }
    // Opioid: naloxone blocks it for as long as it lasts.
    let opioid = opioid * (1.0 - naloxone_block(course, now_ms));
    rr *= 1.0 - OPIOID_RR_FALL * opioid;
    if opioid >= 0.8 {
        acvpu = acvpu.max(Acvpu::Pain);
    } else if opioid >= 0.5 {
        acvpu = acvpu.max(Acvpu::Voice);
    }
    // Glucose: adrenergic response under 70 mg/dL, neuroglycopenia under
    // ~54 (ADA level 2), worsening consciousness below (design choice
    // thresholds); DKA signs above 300 (tachycardia, Kussmaul breathing).
    let g = glucose_mgdl;
    if g < 70.0 {
        hr += ((70.0 - g) * 0.8).min(20.0);
        acvpu = acvpu.max(if g < 20.0 {
            Acvpu::Unresponsive
        } else if g < 30.0 {
            Acvpu::Pain
        } else if g < 40.0 {
            Acvpu::Voice
        } else if g < 54.0 {
            Acvpu::Confused
        } else {
            Acvpu::Alert
        });
    } else if g > 300.0 {
        hr += ((g - 300.0) * 0.08).min(20.0);
        rr += ((g - 300.0) * 0.04).min(10.0);
    }
    // Sinus rate cannot pass the age-predicted maximum (Tanaka 2001).
    hr = hr.min(f64::from(t.hr_max));
    let mut rhythm = Rhythm::Sinus;
    let mut hr_irregular_sd = 0.0;
    if let Some((rate, act)) = af {
        let rc = rate_control(course, now_ms);
        let rate = rate - (rate - 95.0) * rc;
        hr += (rate - hr) * act;
        if act > 0.5 {
            rhythm = Rhythm::Af;
            // Irregularly irregular: per-second rate scatter, CV ~10 %
            // (design choice; beat-to-beat CV in AF is 15-25 %, and a 1-s
            // average spans 2-3 beats).
            hr_irregular_sd = 0.10 * hr;
        }
    }
    // Gas exchange: PaCO2 from breathing, PAO2 from FiO2, SpO2 from the
    // dissociation curve through the patient's a/A ratio.
    let fio2 = fio2(f64::from(course.o2_effective));
    if t.spo2_scale == 2 {
        // A CO2 retainer on oxygen: less hypoxic drive, worse V/Q, the
        // Haldane effect (Aubier 1980).
        co2_retention += O2_CO2_RISE * (fio2 - 0.21);
    }
    let paco2 = paco2(f64::from(t.etco2), rr_base, rr) + co2_retention;
    let pao2 = (alveolar_po2(fio2, paco2) * ratio.max(0.05)).max(5.0);
    let mut spo2 = severinghaus(pao2);
    // Hypoxaemia drives breathing (0.5/min per % under 90, design choice),
    // unless an opioid has blunted the drive.
    if spo2 < 90.0 {
        rr += 0.5 * (90.0 - spo2) * (1.0 - opioid);
    }
    // CO2 reaching the lungs falls with pulmonary blood flow.
    let mut etco2 = paco2 * co_frac.powf(0.7);
    let mut co = f64::from(t.co) * co_frac;
    let mut circulation = 1.0;

    if let Some(ep) = arrest {
        let since_s = now_ms.saturating_sub(ep.onset_ms) as f64 / 1000.0;
        let cpr = course.cpr(now_ms);
        rhythm = arrest_rhythm(ep, course, now_ms);
        hr = 0.0;
        hr_irregular_sd = 0.0;
        circulation = 0.0;
        // CPR gives ~25 % of normal cardiac output, systolic peaks ~70 and
        // diastolic ~20 mmHg, EtCO2 10-20 mmHg, and a ventilation every 6 s
        // (AHA; design choice within the published ranges). Without it:
        // no flow, BP at the mean filling pressure, agonal gasps for a
        // minute, then apnoea; EtCO2 < 10 (docs/references.md).
        if cpr {
            co = 0.25 * f64::from(t.co);
            sbp = 70.0;
            dbp = 20.0;
            rr = 10.0;
            etco2 = 15.0;
            spo2 = 70.0 + (spo2 - 70.0) * (-since_s / 300.0).exp();
        } else {
            co = 0.0;
            sbp = 8.0;
            dbp = 6.0;
            rr = if since_s < 60.0 { 4.0 } else { 0.0 };
            etco2 = 5.0 + (etco2 - 5.0) * (-since_s / 20.0).exp();
            spo2 = 40.0 + (spo2 - 40.0) * (-since_s / 90.0).exp();
        }
        if since_s >= 15.0 {
            acvpu = Acvpu::Unresponsive;
        }
    } else if let Some((ep, m)) = post_rosc {
        // After return of circulation (design choice): a catecholamine
        // tachycardia and low BP easing over ~30 min, and a slow wake-up
        // to no better than what the arrest left of the brain.
        let fade = (-m / 30.0).exp();
        hr += 30.0 * fade;
        sbp -= 25.0 * fade;
        dbp -= 15.0 * fade;
        acvpu = acvpu
            .max(if m < 30.0 {
                Acvpu::Unresponsive
            } else if m < 60.0 {
                Acvpu::Pain
            } else if m < 120.0 {
                Acvpu::Voice
            } else {
                Acvpu::Alert
            })
            .max(hypoxic_injury(ep, course));
    }

    let vitals = Vitals {
        hr_bpm: hr,
        sbp_mmhg: sbp,
        dbp_mmhg: dbp,
        rr_bpm: rr,
        spo2_pct: spo2,
        temp_c: temp,
        etco2_mmhg: etco2,
        glucose_mgdl,
        co_lpm: co as f32,
        o2_lpm: course.o2_set(now_ms),
        acvpu,
        rhythm,
    };
    (
        vitals,
        Shape {
            circulation,
            hr_irregular_sd,
        },
    )
}

/// Sepsis: `severity` reached at the end of the ramp; untreated it keeps
/// worsening at the same rate, past full severity (1) to septic shock
/// (1.5, docs/references.md: signs at ~24 h, near shock at ~36 h in
/// BioGears), so the severity sets how soon shock comes. Antibiotics stop
/// the course within an hour and it resolves with an 8-h time constant
/// (design choice).
pub fn sepsis_level(ep: &Episode, course: &Course, now_ms: u64) -> f64 {
    if !ep.started || now_ms < ep.onset_ms {
        return 0.0;
    }
    let untreated = |at: u64| -> f64 {
        let elapsed = (at - ep.onset_ms) as f64;
        if ep.ramp_ms == 0 {
            // No ramp, no rate to progress at: straight to its severity.
            return ep.severity;
        }
        (ep.severity * elapsed / ep.ramp_ms as f64).min(SHOCK_AT_LEVEL)
    };
    let antibiotics = course
        .of(InterventionKind::Antibiotics)
        .map(|g| g.at_ms)
        .find(|&at| at >= ep.onset_ms && at <= now_ms);
    match antibiotics {
        None => untreated(now_ms),
        Some(at) => {
            let turn = at + 3_600_000;
            if now_ms <= turn {
                untreated(now_ms)
            } else {
                untreated(turn) * (-((now_ms - turn) as f64) / (8.0 * HOUR_MS)).exp()
            }
        }
    }
}

/// Pulseless VT degenerates to VF within minutes (design choice: 3 min;
/// the VF that follows keeps the arrest's clock).
const PULSELESS_VT_MS: u64 = 3 * 60_000;

/// Pulseless VT turns to VF after 3 min; VF degrades to asystole: after 10 min without CPR, 25 min with it
/// started by then (design choice: VF amplitude decays over minutes and
/// CPR slows the decay). PEA stays PEA.
pub fn arrest_rhythm(ep: &Episode, course: &Course, now_ms: u64) -> Rhythm {
    let initial = ep.params.get(0);
    if initial == 2.0 {
        return Rhythm::Pea;
    }
    if initial == 3.0 && now_ms < ep.onset_ms + PULSELESS_VT_MS {
        return Rhythm::Vt;
    }
    if initial != 0.0 && initial != 3.0 {
        return Rhythm::Asystole;
    }
    let ten = ep.onset_ms + 10 * 60_000;
    let cpr_early = course
        .of(InterventionKind::Cpr)
        .any(|g| g.at_ms >= ep.onset_ms && g.at_ms <= ten);
    let limit = if cpr_early {
        ep.onset_ms + 25 * 60_000
    } else {
        ten
    };
    if now_ms < limit {
        Rhythm::Vf
    } else {
        Rhythm::Asystole
    }
}

/// Chance that a shock at `now_ms` restores circulation from VF: 50 % at
/// the first minute (design choice), falling 10 points a minute without
/// CPR and 4 with it (survival falls 7-10 %/min without CPR and 3-4 %/min
/// with it: Larsen 1993, AHA guidelines).
pub fn shock_success(ep: &Episode, course: &Course, now_ms: u64) -> f64 {
    if !matches!(arrest_rhythm(ep, course, now_ms), Rhythm::Vf | Rhythm::Vt) {
        return 0.0;
    }
    let minutes = now_ms.saturating_sub(ep.onset_ms) as f64 / MIN_MS;
    let cpr_from = course
        .of(InterventionKind::Cpr)
        .map(|g| g.at_ms)
        .filter(|&at| at >= ep.onset_ms && at <= now_ms)
        .min();
    let (before, during) = match cpr_from {
        Some(at) => {
            let before = (at - ep.onset_ms) as f64 / MIN_MS;
            (before, minutes - before)
        }
        None => (minutes, 0.0),
    };
    (0.5 - 0.10 * before - 0.04 * during).max(0.0)
}

/// Chance that a completed 2-min CPR cycle ending `cpr_min` minutes into
/// CPR brings circulation back in a non-shockable rhythm: 5 % ×
/// exp(−(t / 26 min)²). A hazard that falls with the duration of
/// resuscitation, fitted to Goldberger et al. (Lancet 2012;
/// docs/references.md, "Resuscitation duration"): over a cohort on
/// continuous CPR, ~43 % reach ROSC, the median duration of the successful
/// attempts is ~12 min and ~7 % of the successes come after 30 min.
pub fn cpr_cycle_rosc(cpr_min: f64) -> f64 {
    CPR_ROSC_PEAK * (-(cpr_min / CPR_ROSC_FALL_MIN).powi(2)).exp()
}

const CPR_ROSC_PEAK: f64 = 0.05;
const CPR_ROSC_FALL_MIN: f64 = 26.0;

/// What a cardiac arrest leaves of consciousness once circulation is back:
/// hypoxic-ischaemic brain injury grows with the no-flow and low-flow
/// intervals (the OHCA score, Adrie et al. 2006; docs/references.md,
/// "Resuscitation duration"). Ischaemic minutes = no-flow + ½ low-flow
/// (CPR gives ~25 % of normal flow); under 10 none, then confusion, voice
/// (20), pain (30), unresponsive (45): design choices.
pub fn hypoxic_injury(ep: &Episode, course: &Course) -> Acvpu {
    let Some(end) = ep.end_ms else {
        return Acvpu::Alert;
    };
    let total = end.saturating_sub(ep.onset_ms) as f64 / MIN_MS;
    let low_flow: f64 = course
        .of(InterventionKind::Cpr)
        .map(|g| {
            let from = g.at_ms.max(ep.onset_ms);
            let to = g
                .duration_ms
                .map_or(end, |d| g.at_ms.saturating_add(d).min(end));
            to.saturating_sub(from) as f64 / MIN_MS
        })
        .sum::<f64>()
        .min(total);
    let ischaemic = total - low_flow + 0.5 * low_flow;
    if ischaemic < 10.0 {
        Acvpu::Alert
    } else if ischaemic < 20.0 {
        Acvpu::Confused
    } else if ischaemic < 30.0 {
        Acvpu::Voice
    } else if ischaemic < 45.0 {
        Acvpu::Pain
    } else {
        Acvpu::Unresponsive
    }
}

/// Natural variability of one vital: an Ornstein-Uhlenbeck process with a
/// stationary standard deviation and a correlation time.
#[derive(Clone, Copy, Debug)]
struct Variability {
    sd: f64,
    tau_s: f64,
}

/// Design choices, sized so a healthy adult's values stay inside the
/// docs/references.md validation ranges: HR variability and breath-to-breath
/// variation average out over tens of seconds; BP drifts over minutes;
/// core temperature over tens of minutes. The HR SD is the profile's.
const VARIABILITY: [Variability; 7] = [
    Variability {
        sd: 1.0, // HR: scaled by the profile's hr_variability
        tau_s: 30.0,
    },
    Variability {
        sd: 4.0, // SBP
        tau_s: 120.0,
    },
    Variability {
        sd: 3.0, // DBP
        tau_s: 120.0,
    },
    Variability {
        sd: 1.0, // RR
        tau_s: 60.0,
    },
    Variability {
        sd: 0.4, // SpO2
        tau_s: 30.0,
    },
    Variability {
        sd: 0.05, // temperature
        tau_s: 600.0,
    },
    Variability {
        sd: 1.0, // EtCO2
        tau_s: 60.0,
    },
];

/// A patient's current deviations from its target (HR, SBP, DBP, RR,
/// SpO2, temperature, EtCO2), in units of each vital.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct Variation(pub [f32; 7]);

/// The arterial saturation the body's oxygen stores (lung volume,
/// haemoglobin) hold, %: it follows the saturation ventilation and
/// circulation allow with a first-order lag, so SpO2 moves over tens of
/// seconds, not in one step, when breathing or circulation changes.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct O2Store(pub f32);

/// Time constant of the oxygen stores, s: arterial saturation follows a
/// change in ventilation or FiO2 over tens of seconds to minutes
/// (docs/references.md, "Oxygen stores"; Farmery & Roe 1996 model the
/// stores, lung and blood, that set it). 40 s: design choice within that
/// range for an adult breathing air.
pub const O2_STORE_TAU_S: f64 = 40.0;

/// Precomputed exact OU update factors for one step length.
#[derive(Clone, Copy, Debug)]
pub struct StepFactors {
    keep: [f32; 7],
    noise: [f32; 7],
    /// Step length, ms.
    pub step_ms: u64,
    /// Fraction of an oxygen-flow change reached in one step (1-min lag).
    pub o2_follow: f32,
    /// Fraction of a saturation change the oxygen stores follow in one step.
    pub o2_store_follow: f32,
}

impl StepFactors {
    /// Factors for a step of `step_ms`.
    pub fn new(step_ms: u64) -> StepFactors {
        let dt_s = step_ms as f64 / 1000.0;
        let mut keep = [0.0; 7];
        let mut noise = [0.0; 7];
        for (i, v) in VARIABILITY.into_iter().enumerate() {
            // Exact discretisation: x' = x a + sd sqrt(1 - a^2) z.
            let a = (-dt_s / v.tau_s).exp();
            keep[i] = a as f32;
            noise[i] = (v.sd * (1.0 - a * a).sqrt()) as f32;
        }
        StepFactors {
            keep,
            noise,
            step_ms,
            o2_follow: (1.0 - (-dt_s / 60.0).exp()) as f32,
            o2_store_follow: (1.0 - (-dt_s / O2_STORE_TAU_S).exp()) as f32,
        }
    }
}

impl Variation {
    /// A stationary start: each deviation drawn from its stationary spread.
    pub fn stationary<R: Rng + ?Sized>(hr_sd: f64, rng: &mut R) -> Variation {
        let mut v = [0.0f32; 7];
        for (i, (x, var)) in v.iter_mut().zip(VARIABILITY).enumerate() {
            let z: f64 = StandardNormal.sample(rng);
            let sd = if i == 0 { var.sd * hr_sd } else { var.sd };
            *x = (sd * z) as f32;
        }
        Variation(v)
    }
}

/// Advances the variability and the oxygen stores one step and writes
/// target + variability into `state` (SpO2: the stores + variability).
#[allow(clippy::too_many_arguments)] // the state a step moves, and what moves it
pub fn advance<R: Rng + ?Sized>(
    state: &mut Vitals,
    variation: &mut Variation,
    store: &mut O2Store,
    target: &Vitals,
    shape: Shape,
    hr_sd: f32,
    f: &StepFactors,
    rng: &mut R,
) {
    let v = &mut variation.0;
    for (i, x) in v.iter_mut().enumerate() {
        let z: f32 = StandardNormal.sample(rng);
        let sd = if i == 0 {
            f.noise[0] * hr_sd
        } else {
            f.noise[i]
        };
        *x = *x * f.keep[i] + sd * z;
    }
    store.0 += (target.spo2_pct as f32 - store.0) * f.o2_store_follow;
    let c = shape.circulation;
    let mut hr = target.hr_bpm + c * f64::from(v[0]);
    if shape.hr_irregular_sd > 0.0 {
        let z: f64 = StandardNormal.sample(rng);
        hr += shape.hr_irregular_sd * z;
    }
    *state = Vitals {
        hr_bpm: hr,
        sbp_mmhg: target.sbp_mmhg + c * f64::from(v[1]),
        dbp_mmhg: target.dbp_mmhg + c * f64::from(v[2]),
        rr_bpm: target.rr_bpm + f64::from(v[3]) * (target.rr_bpm / 14.0).min(1.0),
        spo2_pct: f64::from(store.0) + f64::from(v[4]),
        temp_c: target.temp_c + f64::from(v[5]),
        etco2_mmhg: target.etco2_mmhg + f64::from(v[6]),
        ..*target
    };
    state.clamp_physical();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severinghaus_matches_known_points_and_inverts() {
        // Normal arterial blood: PO2 ~100 mmHg → ~97.5 %; P50 ≈ 26.8 mmHg.
        assert!((severinghaus(100.0) - 97.5).abs() < 0.5);
        assert!((severinghaus(26.8) - 50.0).abs() < 1.5);
        assert!((severinghaus(60.0) - 90.0).abs() < 1.5);
        for s in [50.0, 85.0, 90.0, 97.0] {
            assert!((severinghaus(po2_for_saturation(s)) - s).abs() < 1e-6);
        }
    }

    #[test]
    fn interpolation_hits_the_published_haemorrhage_points() {
        assert_eq!(interp(&MAP_CURVE, 0.3), 65.0);
        assert_eq!(interp(&CO_CURVE, 0.4), 29.0);
        assert_eq!(interp(&MAP_CURVE, 0.25), 81.5);
        assert_eq!(interp(&MAP_CURVE, 5.0), 20.0);
    }

    #[test]
    fn circadian_sleep_and_temperature_phases() {
        assert_eq!(Daytime::at(3 * 3_600_000).sleep, 1.0);
        assert_eq!(Daytime::at(14 * 3_600_000).sleep, 0.0);
        assert!((Daytime::at(4 * 3_600_000).temp_wave + 1.0).abs() < 1e-12);
        assert!((Daytime::at(16 * 3_600_000).temp_wave - 1.0).abs() < 1e-12);
        // Smooth around 23:00 and 07:00.
        let eleven = Daytime::at(23 * 3_600_000).sleep;
        assert!((eleven - 0.5).abs() < 1e-9, "{eleven}");
    }

    fn standard_body() -> Body {
        let traits = crate::profile::ProfileSpec::healthy_adult()
            .sample(&mut crate::rng::stream(1, 1, "vitals"))
            .0;
        Body::new(Traits {
            hr: 73.0,
            sbp: 114.0,
            dbp: 73.0,
            ..traits
        })
    }

    #[test]
    fn the_baroreflex_reproduces_the_published_haemorrhage_points() {
        let body = standard_body();
        let day = Daytime::at(14 * 3_600_000);
        let (base, _) = target(&body, &Course::NONE, 90.0, day, 0);
        for (lost, map_pub) in [(0.1, 101.0), (0.2, 98.0), (0.3, 65.0), (0.4, 41.0)] {
            let mut course = Course::NONE;
            let kind = ConditionKind::Haemorrhage;
            course.episodes.push(Episode {
                kind,
                onset_ms: 0,
                severity: 1.0,
                ramp_ms: 0,
                duration_ms: None,
                params: Params([lost * 100.0, 0.0, 0.0]),
                started: true,
                end_ms: None,
                reached: false,
                skipped_meal: false,
            });
            let (v, _) = target(&body, &course, 90.0, day, 1);
            let map = 100.0 * v.map_mmhg() / base.map_mmhg();
            let co = 100.0 * f64::from(v.co_lpm / base.co_lpm);
            let co_pub = interp(&CO_CURVE, lost);
            assert!((map - map_pub).abs() <= 10.0, "{lost}: MAP {map:.0} %");
            assert!((co - co_pub).abs() <= 10.0, "{lost}: CO {co:.0} %");
            assert_eq!(interp(&MAP_CURVE, lost), map_pub);
        }
    }

    #[test]
    fn cpr_rosc_chance_falls_with_duration() {
        assert!((cpr_cycle_rosc(0.0) - 0.05).abs() < 1e-12);
        assert!(cpr_cycle_rosc(10.0) > cpr_cycle_rosc(20.0));
        assert!(cpr_cycle_rosc(40.0) < 0.005);
    }

    #[test]
    fn sleep_follows_the_patients_own_times() {
        let mut body = standard_body();
        body.sleep_at_h = 24.5;
        body.wake_at_h = 5.5;
        let at = |h: f64| Daytime::at((h * 3_600_000.0) as u64);
        assert_eq!(body.sleep(at(23.5)), 0.0);
        assert!((body.sleep(at(0.5)) - 0.5).abs() < 1e-9);
        assert_eq!(body.sleep(at(3.0)), 1.0);
        assert!((body.sleep(at(5.5)) - 0.5).abs() < 1e-9);
        assert_eq!(body.sleep(at(7.0)), 0.0);
        // At the centre: what every patient had before.
        let centre = Body::new(body.traits);
        for h in [1.0, 6.8, 12.0, 22.7, 23.2] {
            assert!((centre.sleep(at(h)) - at(h).sleep).abs() < 1e-9, "{h}");
        }
    }

    #[test]
    fn long_arrests_leave_hypoxic_injury() {
        let arrest = |minutes: u64, cpr_after: Option<u64>| {
            let mut course = Course::NONE;
            let ep = Episode {
                kind: ConditionKind::CardiacArrest,
                onset_ms: 0,
                severity: 1.0,
                ramp_ms: 0,
                duration_ms: None,
                params: Params([0.0; 3]),
                started: true,
                end_ms: Some(minutes * 60_000),
                reached: false,
                skipped_meal: false,
            };
            if let Some(m) = cpr_after {
                course.given.push(Given {
                    kind: InterventionKind::Cpr,
                    at_ms: m * 60_000,
                    params: Params([0.0; 3]),
                    duration_ms: None,
                    done: true,
                });
            }
            hypoxic_injury(&ep, &course)
        };
        assert_eq!(arrest(5, Some(1)), Acvpu::Alert);
        assert_eq!(arrest(15, Some(1)), Acvpu::Alert);
        assert_eq!(arrest(25, Some(1)), Acvpu::Confused);
        assert_eq!(arrest(15, None), Acvpu::Confused);
        assert_eq!(arrest(70, Some(2)), Acvpu::Pain);
        assert_eq!(arrest(50, None), Acvpu::Unresponsive);
    }

    #[test]
    fn drug_curves_rise_hold_and_fade() {
        assert_eq!(drug_curve(0.0, 1.0, 45.0, 15.0), 0.0);
        assert!(drug_curve(5.0, 1.0, 45.0, 15.0) > 0.99);
        assert!(drug_curve(90.0, 1.0, 45.0, 15.0) < 0.06);
    }
}
