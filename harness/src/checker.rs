//! The checker: holds the target's alerts against what really happened.
//!
//! For an episode expectation ("alert K for each episode of C within D of
//! onset"), every episode is an *obligation*. Per patient, obligations and
//! alerts of kind K are matched one-to-one in time order: each obligation
//! takes the first unmatched alert at or after its onset. A matched alert is
//! a *hit* if it came within D, else *late*; an obligation with no alert is
//! *missed*, or *inconclusive* if its deadline lies beyond the end of the
//! observation window. Unmatched alerts are *duplicates* when they follow an
//! episode of the patient, and *false* otherwise.
//!
//! By construction: hits + late + missed + inconclusive = obligations, and
//! hits + late + duplicates + false = alerts of kind K.

use medtwin_sim::ConditionKind;
use serde::Serialize;

use crate::scenario::Expectation;

/// A condition episode, from the truth log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpisodeRecord {
    /// Patient id.
    pub patient: String,
    /// Condition.
    #[serde(serialize_with = "condition_name")]
    pub condition: ConditionKind,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// Severity in (0, 1].
    pub severity: f64,
}

fn condition_name<S: serde::Serializer>(kind: &ConditionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// An alert from the target, placed in simulated time.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRecord {
    /// Patient id as the target sent it.
    pub patient: String,
    /// Alert kind.
    pub kind: String,
    /// Simulated time it reached medtwin.
    pub at_ms: u64,
    /// Simulated time of the measurement the target says triggered it.
    pub measured_ms: Option<u64>,
}

/// What became of one obligation or one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Alerted within the deadline.
    Hit,
    /// Alerted, after the deadline.
    Late,
    /// Never alerted, and the deadline passed during the run.
    Missed,
    /// Never alerted, but the deadline lies after the end of the run.
    Inconclusive,
    /// An alert with no episode to answer for.
    False,
    /// A further alert for an episode already alerted.
    Duplicate,
}

/// One line of an expectation's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// What happened.
    pub outcome: OutcomeKind,
    /// The patient.
    pub patient: String,
    /// Onset of the episode, if there is one.
    pub onset_ms: Option<u64>,
    /// When the alert reached medtwin, if there is one.
    pub alert_ms: Option<u64>,
    /// Onset to alert, for hits and late alerts.
    pub latency_ms: Option<u64>,
    /// The triggering measurement's time, as the target reported it.
    pub measured_ms: Option<u64>,
}

/// Latency percentiles (nearest rank), ms; `None` when nothing was alerted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every condition held.
    Pass,
    /// At least one did not.
    Fail,
}

/// The result of one expectation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// Its name.
    pub name: String,
    /// Always `episode` for now.
    pub kind: &'static str,
    /// The condition.
    #[serde(serialize_with = "condition_name")]
    pub condition: ConditionKind,
    /// The alert kind required.
    pub alert: String,
    /// The deadline, ms from onset.
    pub within_ms: u64,
    /// False alerts tolerated.
    pub max_false_alerts: u32,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Episodes that required an alert.
    pub obligations: u64,
    /// Alerted in time.
    pub hits: u64,
    /// Alerted too late.
    pub late: u64,
    /// Never alerted.
    pub missed: u64,
    /// Deadline after the end of the run, not alerted (does not fail).
    pub inconclusive: u64,
    /// Alerts without an episode.
    pub false_alerts: u64,
    /// Repeat alerts after a matched one (do not fail).
    pub duplicates: u64,
    /// Onset-to-alert latency of hits and late alerts.
    pub latency_ms: Percentiles,
    /// Why it failed, in words.
    pub failures: Vec<String>,
    /// Every obligation and alert, in time order.
    pub outcomes: Vec<Outcome>,
}

/// Checks one expectation. `end_ms` is the last simulated time at which an
/// alert could still have been observed.
pub fn check(
    expectation: &Expectation,
    episodes: &[EpisodeRecord],
    alerts: &[AlertRecord],
    end_ms: u64,
) -> ExpectationResult {
    let mut obligations: Vec<&EpisodeRecord> = episodes
        .iter()
        .filter(|e| e.condition == expectation.condition)
        .collect();
    obligations
        .sort_by(|a, b| (a.patient.as_str(), a.onset_ms).cmp(&(b.patient.as_str(), b.onset_ms)));
    let mut candidates: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.kind == expectation.alert)
        .collect();
    candidates.sort_by(|a, b| (a.patient.as_str(), a.at_ms).cmp(&(b.patient.as_str(), b.at_ms)));

    let mut used = vec![false; candidates.len()];
    let mut outcomes = Vec::new();
    for episode in &obligations {
        let matched = candidates.iter().enumerate().find(|(i, a)| {
            !used[*i] && a.patient == episode.patient && a.at_ms >= episode.onset_ms
        });
        let deadline = episode.onset_ms + expectation.within_ms;
        let outcome = match matched {
            Some((i, alert)) => {
                used[i] = true;
                let latency = alert.at_ms - episode.onset_ms;
                Outcome {
                    outcome: if latency <= expectation.within_ms {
                        OutcomeKind::Hit
                    } else {
                        OutcomeKind::Late
                    },
                    patient: episode.patient.clone(),
                    onset_ms: Some(episode.onset_ms),
                    alert_ms: Some(alert.at_ms),
                    latency_ms: Some(latency),
                    measured_ms: alert.measured_ms,
                }
            }
            None => Outcome {
                outcome: if deadline > end_ms {
                    OutcomeKind::Inconclusive
                } else {
                    OutcomeKind::Missed
                },
                patient: episode.patient.clone(),
                onset_ms: Some(episode.onset_ms),
                alert_ms: None,
                latency_ms: None,
                measured_ms: None,
            },
        };
        outcomes.push(outcome);
    }
    for (alert, _) in candidates.iter().zip(&used).filter(|(_, used)| !**used) {
        let follows_episode = obligations
            .iter()
            .any(|e| e.patient == alert.patient && e.onset_ms <= alert.at_ms);
        outcomes.push(Outcome {
            outcome: if follows_episode {
                OutcomeKind::Duplicate
            } else {
                OutcomeKind::False
            },
            patient: alert.patient.clone(),
            onset_ms: None,
            alert_ms: Some(alert.at_ms),
            latency_ms: None,
            measured_ms: alert.measured_ms,
        });
    }
    outcomes.sort_by_key(|o| (o.onset_ms.or(o.alert_ms), o.patient.clone()));

    let count = |kind: OutcomeKind| outcomes.iter().filter(|o| o.outcome == kind).count() as u64;
    let (hits, late, missed) = (
        count(OutcomeKind::Hit),
        count(OutcomeKind::Late),
        count(OutcomeKind::Missed),
    );
    let false_alerts = count(OutcomeKind::False);
    let latencies: Vec<u64> = outcomes.iter().filter_map(|o| o.latency_ms).collect();
    let mut failures = Vec::new();
    let within = crate::scenario::duration::format(expectation.within_ms);
    if missed > 0 {
        failures.push(format!(
            "{missed} of {} episodes got no `{}` alert",
            obligations.len(),
            expectation.alert
        ));
    }
    if late > 0 {
        let worst = latencies.iter().max().copied().unwrap_or(0);
        failures.push(format!(
            "{late} `{}` alerts came later than {within} (worst {})",
            expectation.alert,
            crate::report::human(worst)
        ));
    }
    if false_alerts > u64::from(expectation.max_false_alerts) {
        failures.push(format!(
            "{false_alerts} false `{}` alerts (at most {} allowed)",
            expectation.alert, expectation.max_false_alerts
        ));
    }
    ExpectationResult {
        name: expectation.name.clone(),
        kind: "episode",
        condition: expectation.condition,
        alert: expectation.alert.clone(),
        within_ms: expectation.within_ms,
        max_false_alerts: expectation.max_false_alerts,
        verdict: if failures.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        obligations: obligations.len() as u64,
        hits,
        late,
        missed,
        inconclusive: count(OutcomeKind::Inconclusive),
        false_alerts,
        duplicates: count(OutcomeKind::Duplicate),
        latency_ms: Percentiles::of(&latencies),
        failures,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(within_ms: u64) -> Expectation {
        Expectation {
            name: "e".into(),
            condition: ConditionKind::Sepsis,
            alert: "news2-medium".into(),
            within_ms,
            max_false_alerts: 0,
        }
    }

    fn episode(patient: &str, onset_ms: u64) -> EpisodeRecord {
        EpisodeRecord {
            patient: patient.into(),
            condition: ConditionKind::Sepsis,
            onset_ms,
            severity: 1.0,
        }
    }

    fn alert(patient: &str, kind: &str, at_ms: u64) -> AlertRecord {
        AlertRecord {
            patient: patient.into(),
            kind: kind.into(),
            at_ms,
            measured_ms: None,
        }
    }

    #[test]
    fn classifies_hit_late_missed_false_and_duplicate() {
        let episodes = [episode("a", 100), episode("b", 100), episode("c", 100)];
        let alerts = [
            alert("a", "news2-medium", 150), // hit, latency 50
            alert("a", "news2-medium", 170), // duplicate
            alert("b", "news2-medium", 400), // late, latency 300
            alert("d", "news2-medium", 50),  // false: no episode
            alert("c", "news2-medium", 90),  // false: before onset; c is then missed
            alert("c", "news2-high", 120),   // another kind: ignored
        ];
        let r = check(&expectation(100), &episodes, &alerts, 10_000);
        assert_eq!((r.obligations, r.hits, r.late, r.missed), (3, 1, 1, 1));
        assert_eq!((r.false_alerts, r.duplicates, r.inconclusive), (2, 1, 0));
        assert_eq!(r.latency_ms.p50, Some(50));
        assert_eq!(r.latency_ms.max, Some(300));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.failures.len(), 3, "{:?}", r.failures);
    }

    #[test]
    fn unalerted_episode_with_deadline_after_the_end_is_inconclusive() {
        let r = check(&expectation(1_000), &[episode("a", 9_500)], &[], 10_000);
        assert_eq!((r.missed, r.inconclusive), (0, 1));
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn allowed_false_alerts_do_not_fail() {
        let mut e = expectation(100);
        e.max_false_alerts = 1;
        let r = check(&e, &[], &[alert("x", "news2-medium", 5)], 1_000);
        assert_eq!((r.false_alerts, r.verdict), (1, Verdict::Pass));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of(&(1..=100).collect::<Vec<_>>());
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(50), Some(95), Some(99), Some(100))
        );
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use quickcheck::{Gen, QuickCheck, TestResult};

    /// Small random truths and alert streams over four patients and two kinds.
    fn random_case(
        seed_onsets: Vec<(u8, u16)>,
        seed_alerts: Vec<(u8, bool, u16)>,
    ) -> (Vec<EpisodeRecord>, Vec<AlertRecord>) {
        let patient = |p: u8| format!("p{}", p % 4);
        let episodes = seed_onsets
            .iter()
            .take(6)
            .map(|&(p, t)| EpisodeRecord {
                patient: patient(p),
                condition: ConditionKind::Sepsis,
                onset_ms: u64::from(t),
                severity: 1.0,
            })
            .collect();
        let alerts = seed_alerts
            .iter()
            .take(12)
            .map(|&(p, high, t)| AlertRecord {
                patient: patient(p),
                kind: if high { "news2-high" } else { "news2-medium" }.into(),
                at_ms: u64::from(t),
                measured_ms: None,
            })
            .collect();
        (episodes, alerts)
    }

    /// The counting invariants hold for any truth and alert stream, and a
    /// naive matcher (scan alerts in time order, give each to the earliest
    /// open episode of its patient that it follows) finds as many matches.
    fn invariants(
        onsets: Vec<(u8, u16)>,
        raw_alerts: Vec<(u8, bool, u16)>,
        within: u16,
    ) -> TestResult {
        let (episodes, alerts) = random_case(onsets, raw_alerts);
        let e = Expectation {
            name: "p".into(),
            condition: ConditionKind::Sepsis,
            alert: "news2-medium".into(),
            within_ms: u64::from(within) + 1,
            max_false_alerts: 0,
        };
        let r = check(&e, &episodes, &alerts, 70_000);
        let of_kind = alerts.iter().filter(|a| a.kind == "news2-medium").count() as u64;
        if r.hits + r.late + r.missed + r.inconclusive != r.obligations {
            return TestResult::error(format!("obligations do not add up: {r:?}"));
        }
        if r.hits + r.late + r.duplicates + r.false_alerts != of_kind {
            return TestResult::error(format!("alerts do not add up: {r:?}"));
        }
        let mut sorted: Vec<&AlertRecord> =
            alerts.iter().filter(|a| a.kind == "news2-medium").collect();
        sorted.sort_by_key(|a| a.at_ms);
        let mut open: Vec<&EpisodeRecord> = episodes.iter().collect();
        open.sort_by_key(|e| e.onset_ms);
        let mut matched = 0;
        for alert in sorted {
            if let Some(i) = open
                .iter()
                .position(|e| e.patient == alert.patient && e.onset_ms <= alert.at_ms)
            {
                open.remove(i);
                matched += 1;
            }
        }
        TestResult::from_bool(r.hits + r.late == matched)
    }

    #[test]
    fn counting_invariants_hold_and_match_a_naive_matcher() {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(40, 0x006d_6564_7477_696e))
            .tests(2_000)
            .quickcheck(invariants as fn(Vec<(u8, u16)>, Vec<(u8, bool, u16)>, u16) -> TestResult);
    }
}
