//! Counts and rates of outcomes: sensitivity, PPV, false alerts per
//! patient-day, the PhysioNet/CinC 2015 score, latency percentiles; per
//! expectation, per alert kind and overall.

use std::collections::BTreeMap;

use crate::ExpectationResult;

/// Latency percentiles (nearest rank), ms; `None` when nothing was alerted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<u64>,
    /// 95th percentile.
    pub p95: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values`.
    pub fn of(values: &[u64]) -> Percentiles {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> Option<u64> {
            let n = sorted.len();
            if n == 0 {
                return None;
            }
            let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            Some(sorted[idx])
        };
        Percentiles {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: sorted.last().copied(),
        }
    }
}

/// Counts and rates of a set of outcomes (one expectation, one alert kind,
/// or the whole run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Alerts owed.
    pub obligations: u64,
    /// Alerted in time.
    pub hits: u64,
    /// Alerted too late.
    pub late: u64,
    /// Never alerted.
    pub missed: u64,
    /// Not judged.
    pub inconclusive: u64,
    /// Alerts without an obligation.
    pub false_alerts: u64,
    /// Repeat alerts while an obligation's cause held.
    pub duplicates: u64,
    /// Alerts naming patients the twin never simulated (in no other count).
    pub unknown_patients: u64,
    /// Patients with no obligation and no false alert (true negatives).
    pub true_negatives: u64,
    /// Patient-days observed.
    pub patient_days: f64,
    /// hits / (hits + late + missed); `None` when nothing was judged.
    pub sensitivity: Option<f64>,
    /// (hits + late) / (hits + late + false); `None` with no alert.
    pub ppv: Option<f64>,
    /// False alerts per patient-day.
    pub false_alerts_per_patient_day: Option<f64>,
    /// PhysioNet/CinC 2015: (TP+TN)/(TP+TN+FP+5·FN), TP = hits,
    /// FN = missed + late, FP = false alerts, TN = `true_negatives`.
    pub physionet_score: Option<f64>,
    /// Reference-to-alert latency of hits and late alerts.
    pub latency_ms: Percentiles,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Metrics {
    /// Metrics of counts and latencies.
    pub fn compute(mut self, latencies: &[u64]) -> Metrics {
        self.sensitivity = ratio(self.hits, self.hits + self.late + self.missed);
        self.ppv = ratio(
            self.hits + self.late,
            self.hits + self.late + self.false_alerts,
        );
        self.false_alerts_per_patient_day =
            (self.patient_days > 0.0).then(|| self.false_alerts as f64 / self.patient_days);
        let (tp, tn, fp, fn_) = (
            self.hits,
            self.true_negatives,
            self.false_alerts,
            self.missed + self.late,
        );
        self.physionet_score = ratio(tp + tn, tp + tn + fp + 5 * fn_);
        self.latency_ms = Percentiles::of(latencies);
        self
    }

    /// Adds the counts of `other` (rates are recomputed by [`Metrics::compute`]).
    fn add(&mut self, other: &Metrics) {
        self.obligations += other.obligations;
        self.hits += other.hits;
        self.late += other.late;
        self.missed += other.missed;
        self.inconclusive += other.inconclusive;
        self.false_alerts += other.false_alerts;
        self.duplicates += other.duplicates;
        self.unknown_patients += other.unknown_patients;
        self.true_negatives += other.true_negatives;
        self.patient_days += other.patient_days;
    }
}

/// Metrics per alert kind (over the expectations naming it) and overall.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Per alert kind.
    pub by_kind: BTreeMap<String, Metrics>,
    /// Over every expectation.
    pub overall: Metrics,
}

/// Sums the expectations' counts per alert kind and overall. Each
/// expectation counts its own obligations and alerts, so an alert judged
/// by two expectations counts twice.
pub fn summarize(results: &[ExpectationResult]) -> Summary {
    let mut by_kind: BTreeMap<String, (Metrics, Vec<u64>)> = BTreeMap::new();
    let mut overall = (Metrics::default(), Vec::new());
    for r in results {
        let latencies = r.outcomes.iter().filter_map(|o| o.latency_ms);
        let entry = by_kind.entry(r.alert.clone()).or_default();
        entry.0.add(&r.metrics);
        entry.1.extend(latencies.clone());
        overall.0.add(&r.metrics);
        overall.1.extend(latencies);
    }
    Summary {
        by_kind: by_kind
            .into_iter()
            .map(|(k, (m, l))| (k, m.compute(&l)))
            .collect(),
        overall: overall.0.compute(&overall.1),
    }
}
