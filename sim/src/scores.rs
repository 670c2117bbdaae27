//! Clinical scores and criteria evaluated on the *true* physiology, so the
//! truth log can say when each criterion first held after an episode onset,
//! and when each clinically defined abnormal state began and ended whatever
//! caused it: NEWS2 bands and red scores, qSOFA, ADA hypoglycaemia levels,
//! hyperglycaemia, the PRODIGY definition of opioid-induced respiratory
//! depression, SpO2 below its target, a hypertensive crisis and
//! pulselessness.

use serde::Serialize;

use crate::news2::{self, Observations, Spo2Scale, SubScores};
use crate::vitals::{Acvpu, Vitals};

/// NEWS2 (Royal College of Physicians 2017, Chart 1; docs/references.md
/// "Early-warning scores") of the true state, on the one chart in
/// [`crate::news2`]: every parameter known, consciousness from the ACVPU
/// state, `scale` the SpO2 scale (2 for a prescribed 88-92 % target).
#[inline]
pub fn news2(v: &Vitals, scale: u8) -> SubScores {
    news2::points(&Observations {
        rr_per_min: Some(v.rr_bpm),
        spo2_pct: Some(v.spo2_pct),
        spo2_scale: if scale == 2 {
            Spo2Scale::Scale2
        } else {
            Spo2Scale::Scale1
        },
        on_oxygen: v.on_oxygen(),
        sbp_mmhg: Some(v.sbp_mmhg),
        hr_per_min: Some(v.hr_bpm),
        consciousness: Some(v.acvpu),
        temp_c: Some(v.temp_c),
    })
}

/// qSOFA (Sepsis-3, 2016): one point each for RR ≥ 22, altered mentation, SBP ≤ 100.
pub fn qsofa(v: &Vitals) -> u8 {
    u8::from(v.rr_bpm >= 22.0) + u8::from(v.acvpu != Acvpu::Alert) + u8::from(v.sbp_mmhg <= 100.0)
}

/// A clinical criterion whose first moment of holding the truth log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// NEWS2 ≥ 5 (urgent response).
    News2Medium,
    /// NEWS2 ≥ 7 (emergency response).
    News2High,
    /// A NEWS2 parameter scoring 3.
    News2Red,
    /// qSOFA ≥ 2.
    Qsofa,
    /// ADA level 1 hypoglycaemia: glucose < 70 mg/dL.
    HypoglycaemiaLevel1,
    /// ADA level 2 hypoglycaemia: glucose < 54 mg/dL.
    HypoglycaemiaLevel2,
    /// Glucose > 250 mg/dL (level 2 hyperglycaemia of the international CGM
    /// consensus, Battelino 2019; the usual DKA work-up threshold).
    Hyperglycaemia,
    /// PRODIGY respiratory depression: RR ≤ 5, SpO2 ≤ 85 %, or EtCO2 ≤ 15 or
    /// ≥ 60 mmHg for ≥ 3 min, or apnoea > 30 s.
    RespiratoryDepression,
    /// SBP > 180 or DBP > 120 mmHg.
    HypertensiveCrisis,
    /// No pulse.
    Pulseless,
    /// Glucose > 180 mg/dL (level 1 hyperglycaemia, above the target range
    /// 70-180: Battelino 2019).
    HyperglycaemiaLevel1,
    /// SpO2 below the patient's target: < 94 % on NEWS2 scale 1 (the BTS
    /// target range for most patients is 94-98 %; NEWS2 scores 2 or more
    /// below 94), < 88 % on scale 2 (prescribed target 88-92 %; RCP 2017;
    /// docs/references.md §Abnormal states).
    Spo2BelowTarget,
}

impl Criterion {
    /// Every criterion, in bit order.
    pub const ALL: [Criterion; 12] = [
        Criterion::News2Medium,
        Criterion::News2High,
        Criterion::News2Red,
        Criterion::Qsofa,
        Criterion::HypoglycaemiaLevel1,
        Criterion::HypoglycaemiaLevel2,
        Criterion::Hyperglycaemia,
        Criterion::RespiratoryDepression,
        Criterion::HypertensiveCrisis,
        Criterion::Pulseless,
        Criterion::HyperglycaemiaLevel1,
        Criterion::Spo2BelowTarget,
    ];

    /// The name used in reports and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Criterion::News2Medium => "news2_medium",
            Criterion::News2High => "news2_high",
            Criterion::News2Red => "news2_red",
            Criterion::Qsofa => "qsofa",
            Criterion::HypoglycaemiaLevel1 => "hypoglycaemia_level1",
            Criterion::HypoglycaemiaLevel2 => "hypoglycaemia_level2",
            Criterion::Hyperglycaemia => "hyperglycaemia",
            Criterion::RespiratoryDepression => "respiratory_depression",
            Criterion::HypertensiveCrisis => "hypertensive_crisis",
            Criterion::Pulseless => "pulseless",
            Criterion::HyperglycaemiaLevel1 => "hyperglycaemia_level1",
            Criterion::Spo2BelowTarget => "spo2_below_target",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// How long the criterion must stop holding before its abnormal state
    /// ends, seconds; a relapse within it continues the same state (so a
    /// value hovering at a threshold is one state, not many). Glucose
    /// events end after 15 consecutive minutes back across the threshold
    /// (Danne et al., International Consensus on Use of Continuous Glucose
    /// Monitoring, Diabetes Care 40:1631, 2017; docs/references.md
    /// §Abnormal states); the others after 5 min (*design choice*); a
    /// pulse that returns ends pulselessness at once.
    pub fn clear_s(self) -> u32 {
        match self {
            Criterion::HypoglycaemiaLevel1
            | Criterion::HypoglycaemiaLevel2
            | Criterion::Hyperglycaemia
            | Criterion::HyperglycaemiaLevel1 => GLUCOSE_EVENT_CLEAR_S,
            Criterion::Pulseless => 0,
            _ => STATE_CLEAR_S,
        }
    }
}

/// A glucose event ends after 15 min back across its threshold (Danne 2017).
const GLUCOSE_EVENT_CLEAR_S: u32 = 15 * 60;

/// Other abnormal states end after 5 min without the criterion (*design
/// choice*: longer than NEWS2's per-observation noise, shorter than the
/// hourly observations NEWS2 asks for at a medium score).
const STATE_CLEAR_S: u32 = 5 * 60;

/// What [`CriteriaState::update_states`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CriterionEvent {
    /// The criterion holds for the first time since the last
    /// [`CriteriaState::rearm`] (the episode-relative first moment).
    First(Criterion),
    /// An abnormal state began now.
    Onset(Criterion),
    /// An abnormal state ended: it stopped holding at `end_ms` (to the
    /// second) and has not held since, for [`Criterion::clear_s`].
    End(Criterion, u64),
}

/// "Not stopped" in [`CriteriaState`]'s stop times.
const HOLDING: u32 = u32::MAX;

/// PRODIGY needs its signs for 3 minutes; apnoea for 30 s.
const PRODIGY_HOLD_MS: u64 = 3 * 60_000;
const APNOEA_MS: u64 = 30_000;

/// Per-patient memory of which criteria already held since the patient's
/// last episode onset, how long the sustained ones have held, and which
/// abnormal states are open.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CriteriaState {
    met: u16,
    /// Abnormal states open now, by bit.
    open: u16,
    // Seconds since the start when the sign began (u32: 136 years), so the
    // per-patient state stays small.
    prodigy_since: Option<u32>,
    apnoea_since: Option<u32>,
    /// Per criterion, for an open state: the second it stopped holding, or
    /// [`HOLDING`] while it holds.
    stopped_s: [u32; Criterion::ALL.len()],
}

impl Default for CriteriaState {
    fn default() -> CriteriaState {
        CriteriaState {
            met: 0,
            open: 0,
            prodigy_since: None,
            apnoea_since: None,
            stopped_s: [HOLDING; Criterion::ALL.len()],
        }
    }
}

impl CriteriaState {
    /// Forgets what has held, so the next episode gets its own first moments.
    pub fn rearm(&mut self) {
        self.met = 0;
    }

    /// Evaluates the criteria at `now_ms` and calls `first` for each one that
    /// holds for the first time since the last [`CriteriaState::rearm`].
    pub fn update(&mut self, v: &Vitals, scale: u8, now_ms: u64, mut first: impl FnMut(Criterion)) {
        self.update_states(v, scale, now_ms, |event| {
            if let CriterionEvent::First(c) = event {
                first(c);
            }
        });
    }

    /// Evaluates the criteria at `now_ms` and reports, in criterion order,
    /// each one holding for the first time since the last
    /// [`CriteriaState::rearm`] and each abnormal state that began or ended
    /// (see [`Criterion::clear_s`]). Allocation-free.
    pub fn update_states(
        &mut self,
        v: &Vitals,
        scale: u8,
        now_ms: u64,
        mut report: impl FnMut(CriterionEvent),
    ) {
        let scores = news2(v, scale).as_array();
        let (total, red) = (scores.iter().sum::<u8>(), scores.contains(&3));
        let prodigy_signs =
            v.rr_bpm <= 5.0 || v.spo2_pct <= 85.0 || v.etco2_mmhg <= 15.0 || v.etco2_mmhg >= 60.0;
        let now_s = (now_ms / 1000).min(u64::from(u32::MAX)) as u32;
        let prodigy_since = match (prodigy_signs, self.prodigy_since) {
            (false, _) => None,
            (true, None) => Some(now_s),
            (true, since) => since,
        };
        self.prodigy_since = prodigy_since;
        let apnoea_since = match (v.rr_bpm < 1.0, self.apnoea_since) {
            (false, _) => None,
            (true, None) => Some(now_s),
            (true, since) => since,
        };
        self.apnoea_since = apnoea_since;
        let held = |since: Option<u32>, hold_ms: u64| {
            since.is_some_and(|s| u64::from(now_s - s) * 1000 >= hold_ms)
        };
        let holds = [
            (Criterion::News2Medium, total >= 5),
            (Criterion::News2High, total >= 7),
            (Criterion::News2Red, red),
            (Criterion::Qsofa, qsofa(v) >= 2),
            (Criterion::HypoglycaemiaLevel1, v.glucose_mgdl < 70.0),
            (Criterion::HypoglycaemiaLevel2, v.glucose_mgdl < 54.0),
            (Criterion::Hyperglycaemia, v.glucose_mgdl > 250.0),
            (
                Criterion::RespiratoryDepression,
                held(prodigy_since, PRODIGY_HOLD_MS) || held(apnoea_since, APNOEA_MS),
            ),
            (
                Criterion::HypertensiveCrisis,
                v.sbp_mmhg > 180.0 || v.dbp_mmhg > 120.0,
            ),
            (Criterion::Pulseless, v.hr_bpm < 1.0),
            (Criterion::HyperglycaemiaLevel1, v.glucose_mgdl > 180.0),
            (
                Criterion::Spo2BelowTarget,
                v.spo2_pct < if scale == 2 { 88.0 } else { 94.0 },
            ),
        ];
        let mut holding = 0u16;
        for (criterion, holds) in holds {
            holding |= u16::from(holds) << (criterion as u16);
        }
        // Nothing holds and no state is open: the common case, no work.
        let busy = holding | self.open;
        if busy == 0 {
            return;
        }
        for criterion in Criterion::ALL {
            let (bit, k) = (criterion.bit(), criterion as usize);
            if busy & bit == 0 {
                continue;
            }
            if holding & bit != 0 {
                if self.met & bit == 0 {
                    self.met |= bit;
                    report(CriterionEvent::First(criterion));
                }
                if self.open & bit == 0 {
                    self.open |= bit;
                    report(CriterionEvent::Onset(criterion));
                }
                self.stopped_s[k] = HOLDING;
            } else {
                // Open, not holding: ends once it has not held for its clear time.
                if self.stopped_s[k] == HOLDING {
                    self.stopped_s[k] = now_s;
                }
                let stopped = self.stopped_s[k];
                if now_s - stopped >= criterion.clear_s() {
                    self.open &= !bit;
                    self.stopped_s[k] = HOLDING;
                    report(CriterionEvent::End(criterion, u64::from(stopped) * 1000));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_patient_scores_zero() {
        let n = news2(&Vitals::STANDARD, 1);
        assert_eq!((n.total(), n.red()), (0, false));
        assert_eq!(qsofa(&Vitals::STANDARD), 0);
    }

    #[test]
    fn full_sepsis_picture_is_high_with_red_scores() {
        // docs/references.md sepsis ramp end: HR 125, RR 28, 39.5 °C, SBP 85, SpO2 90.
        let v = Vitals {
            hr_bpm: 125.0,
            rr_bpm: 28.0,
            temp_c: 39.5,
            sbp_mmhg: 85.0,
            spo2_pct: 90.0,
            ..Vitals::STANDARD
        };
        // RR 3 + SpO2 3 + SBP 3 + HR 2 + temp 2 = 13.
        assert_eq!(news2(&v, 1).total(), 13);
        assert!(news2(&v, 1).red());
        assert_eq!(qsofa(&v), 2);
    }

    #[test]
    fn scale_two_scores_oxygen_excess_only_on_oxygen() {
        let v = Vitals {
            spo2_pct: 97.0,
            ..Vitals::STANDARD
        };
        assert_eq!(news2(&v, 2).total(), 0);
        let on_o2 = Vitals { o2_lpm: 2.0, ..v };
        // SpO2 ≥97 on O2 scores 3 on scale 2, plus 2 for oxygen.
        assert_eq!(news2(&on_o2, 2).total(), 5);
        assert_eq!(news2(&on_o2, 1).total(), 2);
    }

    #[test]
    fn prodigy_needs_three_minutes_and_apnoea_thirty_seconds() {
        let mut state = CriteriaState::default();
        let low_rr = Vitals {
            rr_bpm: 4.0,
            ..Vitals::STANDARD
        };
        let mut seen = Vec::new();
        for s in 0..=180u64 {
            state.update(&low_rr, 1, s * 1000, |c| seen.push((c, s)));
        }
        assert!(
            seen.contains(&(Criterion::RespiratoryDepression, 180)),
            "{seen:?}"
        );
        // An interruption restarts the hold.
        let mut state = CriteriaState::default();
        let mut seen = Vec::new();
        for s in 0..=300u64 {
            let v = if s == 100 { Vitals::STANDARD } else { low_rr };
            state.update(&v, 1, s * 1000, |c| seen.push((c, s)));
        }
        assert!(
            seen.contains(&(Criterion::RespiratoryDepression, 281)),
            "{seen:?}"
        );
        let apnoea = Vitals {
            rr_bpm: 0.0,
            ..Vitals::STANDARD
        };
        let mut state = CriteriaState::default();
        let mut seen = Vec::new();
        for s in 0..=40u64 {
            state.update(&apnoea, 1, s * 1000, |c| seen.push((c, s)));
        }
        assert!(
            seen.contains(&(Criterion::RespiratoryDepression, 30)),
            "{seen:?}"
        );
    }

    #[test]
    fn each_criterion_fires_once_until_rearmed() {
        let mut state = CriteriaState::default();
        let hypo = Vitals {
            glucose_mgdl: 50.0,
            ..Vitals::STANDARD
        };
        let mut seen = Vec::new();
        for s in 0..10 {
            state.update(&hypo, 1, s * 1000, |c| seen.push(c));
        }
        assert_eq!(
            seen,
            [
                Criterion::HypoglycaemiaLevel1,
                Criterion::HypoglycaemiaLevel2
            ]
        );
        state.rearm();
        state.update(&hypo, 1, 20_000, |c| seen.push(c));
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn a_state_ends_after_its_clear_time_and_a_relapse_within_it_continues_it() {
        let mut state = CriteriaState::default();
        let hypo = Vitals {
            glucose_mgdl: 65.0,
            ..Vitals::STANDARD
        };
        let mut seen = Vec::new();
        // Under 70 for a minute, above for 10 min, under again, then above
        // for good: one state, ending 15 min after the last minute under.
        for s in 0..=3600u64 {
            let low = s < 60 || (660..720).contains(&s);
            let v = if low { hypo } else { Vitals::STANDARD };
            state.update_states(&v, 1, s * 1000, |e| {
                if !matches!(e, CriterionEvent::First(_)) {
                    seen.push((e, s));
                }
            });
        }
        assert_eq!(
            seen,
            [
                (CriterionEvent::Onset(Criterion::HypoglycaemiaLevel1), 0),
                (
                    CriterionEvent::End(Criterion::HypoglycaemiaLevel1, 720_000),
                    720 + 15 * 60
                ),
            ]
        );
        // Pulselessness ends the moment the pulse returns.
        let mut state = CriteriaState::default();
        let mut seen = Vec::new();
        for s in 0..10u64 {
            let v = Vitals {
                hr_bpm: if s < 5 { 0.0 } else { 70.0 },
                ..Vitals::STANDARD
            };
            state.update_states(&v, 1, s * 1000, |e| seen.push((e, s)));
        }
        assert!(seen.contains(&(CriterionEvent::End(Criterion::Pulseless, 5_000), 5)));
    }
}
