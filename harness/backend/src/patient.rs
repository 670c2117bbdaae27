//! What the backend knows about one patient.

use std::collections::BTreeMap;

use medtwin_sim::Vital;
use serde::{Deserialize, Serialize};

use super::escalation::{Escalation, Level};
use super::window::{Pushed, Window};
use medtwin_sim::news2::{self, News2, Observations};

/// Every vital the wire carries, in the order of [`Patient`]'s windows.
pub(crate) const VITALS: [Vital; Vital::ALL.len()] = Vital::ALL;

/// One patient: a window per vital, the current score and escalation.
///
/// The wire carries neither supplemental oxygen nor consciousness, so the
/// backend scores every patient as on room air, on SpO2 scale 1, with
/// consciousness missing (0 points, listed in `missing`).
#[derive(Debug)]
pub(crate) struct Patient {
    windows: [Window; VITALS.len()],
    escalation: Escalation,
    news2: News2,
    /// Device technical alarms passed on, by alarm: when last seen.
    alarms: BTreeMap<String, u64>,
}

impl Default for Patient {
    fn default() -> Self {
        let windows: [Window; VITALS.len()] = Default::default();
        let news2 = news2::score(&observations(&windows));
        Self {
            windows,
            escalation: Escalation::default(),
            news2,
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
        self.news2 = news2::score(&observations(&self.windows));
        self.escalation
            .update(&self.news2, measured_ms, reset_after_ms)
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
                    value: window.median()?,
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

fn observations(windows: &[Window; VITALS.len()]) -> Observations {
    let median = |vital: Vital| windows[vital.index()].median();
    Observations {
        rr_per_min: median(Vital::Rr),
        spo2_pct: median(Vital::Spo2),
        sbp_mmhg: median(Vital::Sbp),
        hr_per_min: median(Vital::Hr),
        temp_c: median(Vital::Temp),
        ..Observations::default()
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
