//! What the backend knows about one patient.

use std::collections::BTreeMap;

use medtwin_sim::Vital;
use medtwin_sim::vitals::{Acvpu, spo2_scale_from_code};
use serde::{Deserialize, Serialize};

use super::escalation::{Escalation, Level};
use super::window::{Pushed, Window};
use medtwin_sim::news2::{self, News2, Observations};

/// Every vital the wire carries, in the order of [`Patient`]'s windows.
pub(crate) const VITALS: [Vital; Vital::ALL.len()] = Vital::ALL;

/// How long a charted observation (`acvpu`, `o2_flow`, `spo2_scale`: a
/// nurse's observation round) counts after it was measured: 12 h of the
/// patient's measurement time. *Design choice*: RCP 2017
/// (docs/references.md, "Early-warning scores") asks for observations at
/// least every 12 h even at NEWS2 0, so a chart older than that is overdue
/// and no longer says what the patient is on.
pub(crate) const CHARTED_STALE_AFTER_MS: u64 = 12 * 3_600_000;

/// One patient: a window per vital, the current score and escalation.
///
/// NEWS2 is scored on the smoothed measured vitals and on the latest
/// charted observations that are not stale ([`CHARTED_STALE_AFTER_MS`]):
/// the SpO2 scale (scale 1 when none is charted), supplemental oxygen (room
/// air when none is charted; any flow above 0 L/min scores 2) and the level
/// of consciousness (missing when none is charted: 0 points, listed in
/// `missing`; C, V, P or U score 3). A coded value outside its list counts
/// as not charted.
#[derive(Debug)]
pub(crate) struct Patient {
    windows: [Window; VITALS.len()],
    escalation: Escalation,
    news2: News2,
    /// Newest measurement time seen for the patient, ms since the epoch:
    /// the "now" charted observations go stale against.
    clock_ms: u64,
    /// Device technical alarms passed on, by alarm: when last seen.
    alarms: BTreeMap<String, u64>,
}

impl Default for Patient {
    fn default() -> Self {
        let windows: [Window; VITALS.len()] = Default::default();
        let news2 = news2::score(&observations(&windows, 0));
        Self {
            windows,
            escalation: Escalation::default(),
            news2,
            clock_ms: 0,
            alarms: BTreeMap::new(),
        }
    }
}

impl Patient {
    /// Whether a device technical alarm should be passed on: the first of
    /// its kind, or the first after `quiet_ms` without one (a device that
    /// repeats "low perfusion" every second raises one alert, not one a
    /// second).
    pub(crate) fn alarm_due(&mut self, alarm: &str, measured_ms: u64, quiet_ms: u64) -> bool {
        let last = self.alarms.insert(alarm.to_owned(), measured_ms);
        last.is_none_or(|t| measured_ms.saturating_sub(t) >= quiet_ms)
    }

    /// Adds one sample; returns false when it was too late to count.
    pub(crate) fn record(
        &mut self,
        vital: Vital,
        measured_ms: u64,
        value: f64,
        smoothing_ms: u64,
    ) -> bool {
        self.windows[vital.index()].push(measured_ms, value, smoothing_ms) == Pushed::Kept
    }

    /// Re-scores after new samples measured at `measured_ms`; returns the
    /// escalation levels newly reached, lowest first.
    pub(crate) fn rescore(&mut self, measured_ms: u64, reset_after_ms: u64) -> Vec<Level> {
        self.clock_ms = self.clock_ms.max(measured_ms);
        self.news2 = news2::score(&observations(&self.windows, self.clock_ms));
        self.escalation
            .update(&self.news2, measured_ms, reset_after_ms)
    }

    /// The levels that re-armed since the last call (their alarms ended).
    pub(crate) fn take_cleared(&mut self) -> Vec<Level> {
        self.escalation.take_cleared()
    }

    /// Current NEWS2 score.
    pub(crate) fn news2(&self) -> &News2 {
        &self.news2
    }

    /// The patient as `GET /v1/patients/{id}` shows it.
    pub(crate) fn view(&self, patient_id: &str) -> PatientView {
        let parameters = VITALS
            .iter()
            .zip(&self.windows)
            .filter_map(|(vital, window)| {
                let (newest_ms, latest) = window.newest()?;
                let view = ParameterView {
                    // A charted observation is scored as charted last,
                    // not smoothed.
                    value: if vital.charted() {
                        latest
                    } else {
                        window.median()?
                    },
                    latest,
                    measured_at: medtwin_wire::format_time(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(newest_ms),
                    ),
                    n_samples: window.len(),
                };
                Some((vital.code().to_owned(), view))
            })
            .collect();
        PatientView {
            patient_id: patient_id.to_owned(),
            level: self.escalation.level(),
            news2: self.news2.clone(),
            parameters,
        }
    }
}

/// What NEWS2 is scored on at `now_ms`: the medians of the measured
/// vitals, and the newest charted observations measured within
/// [`CHARTED_STALE_AFTER_MS`] before `now_ms`.
fn observations(windows: &[Window; VITALS.len()], now_ms: u64) -> Observations {
    let median = |vital: Vital| windows[vital.index()].median();
    let charted = |vital: Vital| {
        windows[vital.index()]
            .newest()
            .filter(|&(measured_ms, _)| {
                now_ms.saturating_sub(measured_ms) <= CHARTED_STALE_AFTER_MS
            })
            .map(|(_, value)| value)
    };
    Observations {
        rr_per_min: median(Vital::Rr),
        spo2_pct: median(Vital::Spo2),
        spo2_scale: charted(Vital::Spo2Scale)
            .and_then(spo2_scale_from_code)
            .unwrap_or_default(),
        on_oxygen: charted(Vital::O2Flow).is_some_and(|lpm| lpm > 0.0),
        sbp_mmhg: median(Vital::Sbp),
        hr_per_min: median(Vital::Hr),
        consciousness: charted(Vital::Acvpu).and_then(Acvpu::from_code),
        temp_c: median(Vital::Temp),
    }
}

/// A patient as the backend sees it (`GET /v1/patients/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatientView {
    /// Patient id.
    pub patient_id: String,
    /// Escalation level: which alerts have fired and not yet re-armed.
    pub level: Level,
    /// Current NEWS2 score of the smoothed parameters.
    pub news2: News2,
    /// Parameters received so far, by wire code (`hr`, `spo2`, ...).
    pub parameters: BTreeMap<String, ParameterView>,
}

/// One parameter of a patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParameterView {
    /// Median of the samples in the smoothing window: the value scored.
    pub value: f64,
    /// Newest sample.
    pub latest: f64,
    /// When the newest sample was measured, RFC 3339 UTC.
    pub measured_at: String,
    /// Samples in the smoothing window.
    pub n_samples: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtwin_sim::news2::Parameter;

    const SMOOTHING_MS: u64 = 60_000;
    const RESET_MS: u64 = 600_000;
    const HOUR_MS: u64 = 3_600_000;

    /// A patient with normal measured vitals and SpO2 `spo2` at `t_ms`.
    fn measured(p: &mut Patient, t_ms: u64, spo2: f64) {
        for (vital, value) in [
            (Vital::Hr, 80.0),
            (Vital::Rr, 16.0),
            (Vital::Sbp, 125.0),
            (Vital::Temp, 36.9),
            (Vital::Spo2, spo2),
        ] {
            assert!(p.record(vital, t_ms, value, SMOOTHING_MS));
        }
    }

    fn chart(p: &mut Patient, t_ms: u64, acvpu: f64, o2_lpm: f64, scale: f64) {
        for (vital, value) in [
            (Vital::Acvpu, acvpu),
            (Vital::O2Flow, o2_lpm),
            (Vital::Spo2Scale, scale),
        ] {
            assert!(p.record(vital, t_ms, value, SMOOTHING_MS));
        }
    }

    #[test]
    fn a_charted_scale_2_patient_at_90_on_air_scores_nothing_for_spo2() {
        let mut p = Patient::default();
        measured(&mut p, 0, 90.0);
        assert_eq!(
            p.rescore(0, RESET_MS),
            vec![Level::Medium],
            "scale 1: a red 3"
        );
        let mut p = Patient::default();
        chart(&mut p, 0, 0.0, 0.0, 2.0);
        measured(&mut p, 1_000, 90.0);
        assert_eq!(p.rescore(1_000, RESET_MS), vec![]);
        let n = p.news2();
        assert_eq!((n.sub_scores.spo2, n.total, n.red), (0, 0, false));
        assert!(!n.missing.contains(&Parameter::Consciousness));
    }

    #[test]
    fn charted_oxygen_scores_2_and_scale_2_scores_high_saturations_on_it() {
        let mut p = Patient::default();
        chart(&mut p, 0, 0.0, 2.0, 2.0);
        measured(&mut p, 1_000, 90.0);
        p.rescore(1_000, RESET_MS);
        assert_eq!(p.news2().sub_scores.air_or_oxygen, 2);
        assert_eq!(p.news2().total, 2);
        // Over-oxygenated on scale 2: 97 % on oxygen is a red 3.
        measured(&mut p, 120_000, 97.0);
        assert_eq!(p.rescore(120_000, RESET_MS), vec![Level::Medium]);
        assert_eq!(p.news2().sub_scores.spo2, 3);
        assert_eq!(p.news2().total, 5);
    }

    #[test]
    fn a_new_confusion_or_worse_scores_3() {
        for code in [1.0, 2.0, 3.0, 4.0] {
            let mut p = Patient::default();
            chart(&mut p, 0, code, 0.0, 1.0);
            measured(&mut p, 1_000, 97.0);
            assert_eq!(p.rescore(1_000, RESET_MS), vec![Level::Medium], "{code}");
            assert_eq!(p.news2().sub_scores.consciousness, 3, "{code}");
        }
        // Not a code: not charted.
        let mut p = Patient::default();
        chart(&mut p, 0, 2.5, 0.0, 3.0);
        measured(&mut p, 1_000, 97.0);
        assert_eq!(p.rescore(1_000, RESET_MS), vec![]);
        assert!(p.news2().missing.contains(&Parameter::Consciousness));
    }

    #[test]
    fn a_chart_goes_stale_after_12_hours() {
        let mut p = Patient::default();
        chart(&mut p, 0, 0.0, 0.0, 2.0);
        let stale = CHARTED_STALE_AFTER_MS;
        assert_eq!(stale, 12 * HOUR_MS);
        measured(&mut p, stale, 90.0);
        assert_eq!(
            p.rescore(stale, RESET_MS),
            vec![],
            "12 h old: still charted"
        );
        measured(&mut p, stale + 1, 90.0);
        assert_eq!(
            p.rescore(stale + 1, RESET_MS),
            vec![Level::Medium],
            "stale: back to scale 1"
        );
        // A late, older message does not turn the clock back.
        p.rescore(5_000, RESET_MS);
        assert_eq!(p.news2().sub_scores.spo2, 3);
    }
}
