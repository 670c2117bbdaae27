//! Matching obligations with alerts: one-to-one, in time order, per
//! patient; outcomes, metrics and the verdict of one expectation.

use crate::duration::{format, human};
use crate::metrics::Metrics;
use crate::records::{AlertRecord, Obligation, Times};
use crate::{ExpectKind, Expectation, Reference};

/// What became of one obligation or one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutcomeKind {
    /// Alerted within the deadline.
    Hit,
    /// Alerted, after the deadline.
    Late,
    /// Never alerted, and the deadline passed during the run.
    Missed,
    /// Not judged: deadline after the end of the run, or reference unknown.
    Inconclusive,
    /// An alert with no obligation to answer for: before the patient's
    /// first obligation, or a repeat after its cause stopped holding.
    False,
    /// A further alert for an obligation already answered, while its
    /// cause still holds (plus the re-arm window).
    Duplicate,
    /// An alert naming a patient the twin never simulated.
    UnknownPatient,
}

impl OutcomeKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Hit => "hit",
            OutcomeKind::Late => "late",
            OutcomeKind::Missed => "missed",
            OutcomeKind::Inconclusive => "inconclusive",
            OutcomeKind::False => "false",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::UnknownPatient => "unknown_patient",
        }
    }

    /// Whether it fails the expectation (false alerts only past the budget).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            OutcomeKind::Late | OutcomeKind::Missed | OutcomeKind::False
        )
    }
}

/// Where a hit's time went: device (reference → measured), network
/// (measured → delivered), harness (delivered → actually sent) and backend
/// (sent → alert).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decomposition {
    /// Onset to criterion.
    pub physiology_ms: Option<u64>,
    /// Criterion (else onset) to the first abnormal measurement.
    pub device_ms: Option<u64>,
    /// That measurement to its delivery (`None` if it was lost).
    pub network_ms: Option<u64>,
    /// The harness's own lag: the first abnormal delivery's scheduled time
    /// to when the harness actually sent it.
    pub harness_ms: Option<u64>,
    /// That send to the alert.
    pub backend_ms: Option<u64>,
}

/// One line of an expectation's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What happened.
    pub outcome: OutcomeKind,
    /// The patient.
    pub patient: String,
    /// The obligation's start (onset or rule due time), if there is one.
    pub from_ms: Option<u64>,
    /// The reference time of the deadline.
    pub reference_ms: Option<u64>,
    /// When the alert reached medtwin, if there is one.
    pub alert_ms: Option<u64>,
    /// Reference to alert, for hits and late alerts (0 when the alert came
    /// before the reference time but after the start).
    pub latency_ms: Option<u64>,
    /// The triggering measurement's time, as the target reported it.
    pub reported_measured_ms: Option<u64>,
    /// The way from onset to the data.
    pub times: Times,
    /// Latency decomposition, for hits and late alerts.
    pub decomposition: Option<Decomposition>,
    /// Why an obligation is inconclusive, or other remarks.
    pub note: Option<String>,
}

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every condition held.
    Pass,
    /// At least one did not.
    Fail,
}

/// The result of one expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectationResult {
    /// Its name.
    pub name: String,
    /// `episode` or `rule`.
    pub kind: String,
    /// The condition (episode expectations).
    pub condition: Option<String>,
    /// Where the deadline counts from (episode expectations).
    pub from: Option<String>,
    /// The rule: the oracle, or what "abnormal" means for an episode.
    pub rule: Option<String>,
    /// The alert kind required.
    pub alert: String,
    /// The deadline, ms from the reference time.
    pub within_ms: u64,
    /// False alerts tolerated (a count; `None`: no count limit).
    pub max_false_alerts: Option<u64>,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Counts, rates and latency.
    pub metrics: Metrics,
    /// Why it failed, in words.
    pub failures: Vec<String>,
    /// Every obligation and alert, in time order.
    pub outcomes: Vec<Outcome>,
}

/// The run-wide facts the checker needs besides obligations and alerts.
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    /// Last simulated time at which an alert could still have been seen.
    pub end_ms: u64,
    /// Patients simulated.
    pub patients: u64,
    /// Simulated duration.
    pub duration_ms: u64,
    /// The patients' names; `None`: every name is one of them.
    pub known: Option<&'a std::collections::HashSet<String>>,
}

impl Window<'_> {
    /// Whether `patient` is one the twin simulated.
    pub fn knows(&self, patient: &str) -> bool {
        self.known.is_none_or(|k| k.contains(patient))
    }
}

fn decompose(times: &Times, alert_ms: u64) -> Decomposition {
    let start = times.criterion_ms.or(times.onset_ms);
    let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Decomposition {
        physiology_ms: diff(times.onset_ms, times.criterion_ms),
        device_ms: diff(start, times.measured_ms),
        network_ms: diff(times.measured_ms, times.measured_delivered_ms),
        harness_ms: diff(times.delivered_ms, times.sent_ms),
        backend_ms: diff(times.sent_ms.or(times.delivered_ms), Some(alert_ms)),
    }
}

/// Checks one expectation against its obligations and every alert.
///
/// Per patient, obligation `i` is open from its start (`from_ms`) until
/// obligation `i + 1` of the patient starts; the first alert of the kind in
/// that interval answers it (hit within the deadline, late after), and
/// every further alert in it is a duplicate while the obligation's cause
/// still holds (plus the re-arm window), a false alert after. Alerts before
/// a patient's first obligation are false; alerts naming patients the twin
/// never simulated are counted apart (`unknown_patients`) and touch no
/// metric of real patients. So one dropped alert is one miss, whatever
/// follows it.
pub fn check(
    expectation: &Expectation,
    obligations: &[Obligation],
    alerts: &[AlertRecord],
    window: Window<'_>,
) -> ExpectationResult {
    let mut owed: Vec<&Obligation> = obligations.iter().collect();
    owed.sort_by(|a, b| (a.patient.as_str(), a.from_ms).cmp(&(b.patient.as_str(), b.from_ms)));
    let mut candidates: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.kind == expectation.alert)
        .collect();
    candidates.sort_by(|a, b| (a.patient.as_str(), a.at_ms).cmp(&(b.patient.as_str(), b.at_ms)));
    let mut outcomes = Vec::with_capacity(owed.len() + candidates.len());
    let mut rest = owed.as_slice();
    let mut alerts_left = candidates.as_slice();
    // Walk patients in name order, with their obligations and alerts.
    while !rest.is_empty() || !alerts_left.is_empty() {
        let patient = match (rest.first(), alerts_left.first()) {
            (Some(o), Some(a)) => o.patient.as_str().min(a.patient.as_str()),
            (Some(o), None) => o.patient.as_str(),
            (None, Some(a)) => a.patient.as_str(),
            (None, None) => break,
        };
        let n_owed = rest.iter().take_while(|o| o.patient == patient).count();
        let n_alerts = alerts_left
            .iter()
            .take_while(|a| a.patient == patient)
            .count();
        let (mine, later) = rest.split_at(n_owed);
        let (theirs, after) = alerts_left.split_at(n_alerts);
        if window.knows(patient) {
            patient_outcomes(expectation, mine, theirs, window, &mut outcomes);
        } else {
            outcomes.extend(
                theirs
                    .iter()
                    .map(|a| alert_outcome(a, OutcomeKind::UnknownPatient)),
            );
        }
        rest = later;
        alerts_left = after;
    }
    outcomes.sort_by(|a, b| {
        (a.from_ms.or(a.alert_ms), &a.patient, a.outcome).cmp(&(
            b.from_ms.or(b.alert_ms),
            &b.patient,
            b.outcome,
        ))
    });
    let metrics = tally(&owed, &outcomes, window);
    let mut result = result(expectation, metrics, outcomes);
    if result.metrics.obligations > 0 && candidates.is_empty() && !alerts.is_empty() {
        let mut kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        result.failures.push(format!(
            "no `{}` alert arrived at all; received kinds: {}",
            expectation.alert,
            kinds.join(", ")
        ));
        result.verdict = Verdict::Fail;
    }
    result
}

/// One patient's obligations (sorted by start) against its alerts of the
/// kind (sorted by arrival).
fn patient_outcomes(
    expectation: &Expectation,
    owed: &[&Obligation],
    alerts: &[&AlertRecord],
    window: Window<'_>,
    outcomes: &mut Vec<Outcome>,
) {
    let mut next = 0;
    // Before the first obligation nothing is owed.
    let first_from = owed.first().map_or(u64::MAX, |o| o.from_ms);
    while next < alerts.len() && alerts[next].at_ms < first_from {
        outcomes.push(alert_outcome(alerts[next], OutcomeKind::False));
        next += 1;
    }
    for (i, ob) in owed.iter().enumerate() {
        let closes = owed.get(i + 1).map_or(u64::MAX, |o| o.from_ms);
        let start = next;
        while next < alerts.len() && alerts[next].at_ms < closes {
            next += 1;
        }
        let in_interval = &alerts[start..next];
        let answered = ob.reference_ms.and_then(|_| in_interval.first());
        outcomes.push(obligation_outcome(
            expectation,
            ob,
            answered.copied(),
            window,
        ));
        let extras = &in_interval[usize::from(answered.is_some())..];
        for alert in extras {
            let still_holds = ob
                .holds_until_ms
                .is_none_or(|until| alert.at_ms <= until.saturating_add(expectation.rearm_ms));
            let kind = if still_holds {
                OutcomeKind::Duplicate
            } else {
                OutcomeKind::False
            };
            outcomes.push(alert_outcome(alert, kind));
        }
    }
}

/// What became of one obligation, answered by `alert` or not.
fn obligation_outcome(
    expectation: &Expectation,
    ob: &Obligation,
    alert: Option<&AlertRecord>,
    window: Window<'_>,
) -> Outcome {
    let base = Outcome {
        outcome: OutcomeKind::Missed,
        patient: ob.patient.clone(),
        from_ms: Some(ob.from_ms),
        reference_ms: ob.reference_ms,
        alert_ms: None,
        latency_ms: None,
        reported_measured_ms: None,
        times: ob.times.clone(),
        decomposition: None,
        note: None,
    };
    let Some(reference) = ob.reference_ms else {
        return Outcome {
            outcome: OutcomeKind::Inconclusive,
            note: ob.unresolved.clone(),
            ..base
        };
    };
    let deadline = reference.saturating_add(expectation.within_ms);
    match alert {
        Some(alert) => Outcome {
            outcome: if alert.at_ms <= deadline {
                OutcomeKind::Hit
            } else {
                OutcomeKind::Late
            },
            alert_ms: Some(alert.at_ms),
            latency_ms: Some(alert.at_ms.saturating_sub(reference)),
            reported_measured_ms: alert.measured_ms,
            decomposition: Some(decompose(&ob.times, alert.at_ms)),
            note: (alert.at_ms < reference)
                .then(|| "alert came before the reference time".to_owned()),
            ..base
        },
        None if deadline > window.end_ms => Outcome {
            outcome: OutcomeKind::Inconclusive,
            note: Some("deadline after the end of the run".into()),
            ..base
        },
        None => base,
    }
}

/// An alert that answers no obligation.
fn alert_outcome(alert: &AlertRecord, kind: OutcomeKind) -> Outcome {
    Outcome {
        outcome: kind,
        patient: alert.patient.clone(),
        from_ms: None,
        reference_ms: None,
        alert_ms: Some(alert.at_ms),
        latency_ms: None,
        reported_measured_ms: alert.measured_ms,
        times: Times::default(),
        decomposition: None,
        note: None,
    }
}

/// Counts and rates of one expectation's outcomes.
fn tally(owed: &[&Obligation], outcomes: &[Outcome], window: Window<'_>) -> Metrics {
    let count = |kind: OutcomeKind| outcomes.iter().filter(|o| o.outcome == kind).count() as u64;
    let mut with_outcome: Vec<&str> = owed.iter().map(|o| o.patient.as_str()).collect();
    with_outcome.extend(
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::False)
            .map(|o| o.patient.as_str()),
    );
    with_outcome.sort_unstable();
    with_outcome.dedup();
    let latencies: Vec<u64> = outcomes.iter().filter_map(|o| o.latency_ms).collect();
    Metrics {
        obligations: owed.len() as u64,
        hits: count(OutcomeKind::Hit),
        late: count(OutcomeKind::Late),
        missed: count(OutcomeKind::Missed),
        inconclusive: count(OutcomeKind::Inconclusive),
        false_alerts: count(OutcomeKind::False),
        duplicates: count(OutcomeKind::Duplicate),
        unknown_patients: count(OutcomeKind::UnknownPatient),
        true_negatives: window.patients.saturating_sub(with_outcome.len() as u64),
        patient_days: window.patients as f64 * window.duration_ms as f64 / 86_400_000.0,
        ..Metrics::default()
    }
    .compute(&latencies)
}

/// The result of one expectation: its description, metrics, failures and verdict.
fn result(
    expectation: &Expectation,
    metrics: Metrics,
    outcomes: Vec<Outcome>,
) -> ExpectationResult {
    let failures = failures(expectation, &metrics);
    let (condition, from) = match &expectation.kind {
        ExpectKind::Episode {
            condition, from, ..
        } => (
            Some(condition.name().to_owned()),
            Some(from.name().to_owned()),
        ),
        ExpectKind::State { .. } => (None, Some(Reference::Onset.name().to_owned())),
        ExpectKind::Rule => (None, None),
    };
    ExpectationResult {
        name: expectation.name.clone(),
        kind: match expectation.kind {
            ExpectKind::Episode { .. } => "episode",
            ExpectKind::State { .. } => "state",
            ExpectKind::Rule => "rule",
        }
        .to_owned(),
        condition,
        from,
        rule: expectation.rule.as_ref().map(|r| r.source.clone()),
        alert: expectation.alert.clone(),
        within_ms: expectation.within_ms,
        max_false_alerts: expectation.budgets.false_alert_limit(),
        verdict: if failures.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        metrics,
        failures,
        outcomes,
    }
}

/// Why an expectation fails, in sentences; empty when it holds.
fn failures(e: &Expectation, m: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    let what = match e.kind {
        ExpectKind::Episode { .. } => "episodes",
        ExpectKind::State { .. } => "abnormal states",
        ExpectKind::Rule => "rule onsets",
    };
    if m.missed > 0 {
        out.push(format!(
            "{} of {} {what} got no `{}` alert",
            m.missed, m.obligations, e.alert
        ));
    }
    if m.late > 0 {
        out.push(format!(
            "{} `{}` alerts came later than {} (worst {})",
            m.late,
            e.alert,
            format(e.within_ms),
            human(m.latency_ms.max.unwrap_or(0))
        ));
    }
    let b = &e.budgets;
    if let Some(limit) = b.false_alert_limit()
        && m.false_alerts > limit
    {
        out.push(format!(
            "{} false `{}` alerts (at most {limit} allowed)",
            m.false_alerts, e.alert
        ));
    }
    if let (Some(limit), Some(rate)) = (
        b.max_false_alerts_per_patient_day,
        m.false_alerts_per_patient_day,
    ) && rate > limit
    {
        out.push(format!(
            "{rate:.2} false `{}` alerts per patient-day (at most {limit} allowed)",
            e.alert
        ));
    }
    if let Some(limit) = b.max_duplicates
        && m.duplicates > limit
    {
        out.push(format!(
            "{} duplicate `{}` alerts (at most {limit} allowed)",
            m.duplicates, e.alert
        ));
    }
    for (name, limit, value) in [
        ("p50", b.max_latency_p50_ms, m.latency_ms.p50),
        ("p95", b.max_latency_p95_ms, m.latency_ms.p95),
        ("p99", b.max_latency_p99_ms, m.latency_ms.p99),
        ("max", b.max_latency_ms, m.latency_ms.max),
    ] {
        if let (Some(limit), Some(value)) = (limit, value)
            && value > limit
        {
            out.push(format!(
                "latency {name} {} is over the budget of {}",
                human(value),
                human(limit)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Budgets;
    use crate::metrics::{Percentiles, summarize};
    use medtwin_sim::ConditionKind;

    pub(super) fn expectation(within_ms: u64) -> Expectation {
        Expectation {
            name: "e".into(),
            kind: ExpectKind::Episode {
                condition: ConditionKind::Sepsis,
                from: Reference::Onset,
                criterion: "sepsis".into(),
            },
            alert: "news2-medium".into(),
            within_ms,
            rule: None,
            max_gap_ms: 60_000,
            rearm_ms: 60_000,
            early_ms: 0,
            budgets: Budgets::default(),
        }
    }

    pub(super) fn owed(patient: &str, onset_ms: u64) -> Obligation {
        Obligation {
            patient: patient.into(),
            from_ms: onset_ms,
            reference_ms: Some(onset_ms),
            unresolved: None,
            holds_until_ms: None,
            times: Times {
                onset_ms: Some(onset_ms),
                ..Times::default()
            },
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

    fn window(end_ms: u64) -> Window<'static> {
        Window {
            end_ms,
            patients: 5,
            duration_ms: 86_400_000,
            known: None,
        }
    }

    #[test]
    fn classifies_hit_late_missed_false_and_duplicate() {
        let owed = [owed("a", 100), owed("b", 100), owed("c", 100)];
        let alerts = [
            alert("a", "news2-medium", 150), // hit, latency 50
            alert("a", "news2-medium", 170), // duplicate
            alert("b", "news2-medium", 400), // late, latency 300
            alert("d", "news2-medium", 50),  // false: no episode
            alert("c", "news2-medium", 90),  // false: before onset; c is then missed
            alert("c", "news2-high", 120),   // another kind: ignored
        ];
        let r = check(&expectation(100), &owed, &alerts, window(10_000));
        let m = &r.metrics;
        assert_eq!((m.obligations, m.hits, m.late, m.missed), (3, 1, 1, 1));
        assert_eq!((m.false_alerts, m.duplicates, m.inconclusive), (2, 1, 0));
        assert_eq!(m.latency_ms.p50, Some(50));
        assert_eq!(m.latency_ms.max, Some(300));
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.failures.len(), 3, "{:?}", r.failures);
        // 5 patients: a, b, c owed; d false; e is the one true negative.
        assert_eq!(m.true_negatives, 1);
        assert_eq!(m.sensitivity, Some(1.0 / 3.0));
        assert_eq!(m.ppv, Some(2.0 / 4.0));
        // (TP + TN) / (TP + TN + FP + 5 FN) = (1 + 1) / (1 + 1 + 2 + 5 * 2).
        assert_eq!(m.physionet_score, Some(2.0 / 14.0));
        assert_eq!(m.false_alerts_per_patient_day, Some(2.0 / 5.0));
    }

    #[test]
    fn one_dropped_alert_is_one_miss() {
        // Two onsets for one patient; the backend dropped the first alert
        // and answered the second at once: one missed, one hit (not a late
        // hit for the first and a miss for the second).
        let owed = [owed("a", 1_000), owed("a", 50_000)];
        let r = check(
            &expectation(5_000),
            &owed,
            &[alert("a", "news2-medium", 51_000)],
            window(100_000),
        );
        let m = &r.metrics;
        assert_eq!((m.hits, m.late, m.missed), (1, 0, 1), "{:?}", r.outcomes);
        assert_eq!(m.latency_ms.max, Some(1_000));
    }

    #[test]
    fn a_repeat_after_the_cause_stopped_is_false_not_a_duplicate() {
        let mut o = owed("a", 1_000);
        o.holds_until_ms = Some(10_000);
        let e = expectation(5_000); // re-arm window 60 s
        let alerts = [
            alert("a", "news2-medium", 2_000),  // hit
            alert("a", "news2-medium", 65_000), // within re-arm: duplicate
            alert("a", "news2-medium", 75_000), // 65 s after it stopped: false
        ];
        let r = check(&e, &[o], &alerts, window(100_000));
        let m = &r.metrics;
        assert_eq!((m.hits, m.duplicates, m.false_alerts), (1, 1, 1));
        assert_eq!(r.verdict, Verdict::Fail, "max_false_alerts defaults to 0");
    }

    #[test]
    fn unknown_patients_are_counted_apart() {
        let known: std::collections::HashSet<String> =
            ["a", "b"].iter().map(|p| (*p).to_owned()).collect();
        let w = Window {
            known: Some(&known),
            patients: 2,
            ..window(100_000)
        };
        let alerts = [
            alert("a", "news2-medium", 2_000),
            alert("ghost", "news2-medium", 3_000),
        ];
        let r = check(&expectation(5_000), &[owed("a", 1_000)], &alerts, w);
        let m = &r.metrics;
        assert_eq!((m.hits, m.false_alerts, m.unknown_patients), (1, 0, 1));
        // b had nothing owed and no false alert: the one true negative,
        // whatever the ghost got.
        assert_eq!(m.true_negatives, 1);
        assert_eq!(m.ppv, Some(1.0));
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn a_rate_budget_replaces_the_default_count() {
        let mut e = expectation(5_000);
        e.budgets.max_false_alerts_per_patient_day = Some(1.0);
        // 5 patients over a day, 3 false alerts: 0.6 per patient-day.
        let alerts = [
            alert("x", "news2-medium", 1),
            alert("y", "news2-medium", 2),
            alert("z", "news2-medium", 3),
        ];
        let r = check(&e, &[], &alerts, window(100_000));
        assert_eq!(r.metrics.false_alerts, 3);
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.failures);
        e.budgets.max_false_alerts = Some(2);
        let r = check(&e, &[], &alerts, window(100_000));
        assert_eq!(
            r.verdict,
            Verdict::Fail,
            "both budgets apply when both are set"
        );
    }

    #[test]
    fn a_kind_that_never_arrived_names_the_kinds_that_did() {
        let r = check(
            &expectation(5_000),
            &[owed("a", 1_000)],
            &[alert("a", "news2_medium", 2_000)],
            window(100_000),
        );
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("received kinds: news2_medium")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn unalerted_obligation_with_deadline_after_the_end_is_inconclusive() {
        let r = check(
            &expectation(1_000),
            &[owed("a", 9_500)],
            &[],
            window(10_000),
        );
        assert_eq!((r.metrics.missed, r.metrics.inconclusive), (0, 1));
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn unknown_reference_is_inconclusive_with_its_reason() {
        let mut o = owed("a", 100);
        o.reference_ms = None;
        o.unresolved = Some("criterion not recorded".into());
        let r = check(
            &expectation(1_000),
            &[o],
            &[alert("a", "news2-medium", 200)],
            window(10_000),
        );
        assert_eq!(r.metrics.inconclusive, 1);
        assert_eq!(
            r.outcomes[0].note.as_deref(),
            Some("criterion not recorded")
        );
        // The alert follows the obligation: a duplicate, not a false alert.
        assert_eq!(r.metrics.duplicates, 1);
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn latency_counts_from_the_reference_and_decomposes() {
        let mut o = owed("a", 1_000);
        o.reference_ms = Some(5_000);
        o.times.measured_ms = Some(4_000);
        o.times.measured_delivered_ms = Some(4_100);
        o.times.delivered_ms = Some(5_000);
        let r = check(
            &expectation(1_000),
            &[o],
            &[alert("a", "news2-medium", 5_600)],
            window(10_000),
        );
        let hit = &r.outcomes[0];
        assert_eq!((hit.outcome, hit.latency_ms), (OutcomeKind::Hit, Some(600)));
        let d = hit.decomposition.as_ref().unwrap();
        assert_eq!(
            (d.device_ms, d.network_ms, d.backend_ms),
            (Some(3_000), Some(100), Some(600))
        );
    }

    #[test]
    fn budgets_fail_the_expectation() {
        let mut e = expectation(1_000);
        e.budgets.max_false_alerts = Some(1);
        e.budgets.max_duplicates = Some(0);
        e.budgets.max_latency_p50_ms = Some(100);
        let alerts = [
            alert("x", "news2-medium", 5),
            alert("a", "news2-medium", 300),
            alert("a", "news2-medium", 400),
        ];
        let r = check(&e, &[owed("a", 100)], &alerts, window(10_000));
        assert_eq!(r.metrics.false_alerts, 1);
        assert_eq!(r.failures.len(), 2, "{:?}", r.failures);
        assert!(r.failures.iter().any(|f| f.contains("duplicate")));
        assert!(r.failures.iter().any(|f| f.contains("p50")));
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

    #[test]
    fn summary_sums_per_kind_and_overall() {
        let a = check(
            &expectation(100),
            &[owed("a", 100)],
            &[alert("a", "news2-medium", 150)],
            window(1_000),
        );
        let mut e2 = expectation(100);
        e2.alert = "news2-high".into();
        let b = check(&e2, &[owed("a", 100)], &[], window(1_000));
        let s = summarize(&[a, b]);
        assert_eq!(s.by_kind["news2-medium"].hits, 1);
        assert_eq!(s.by_kind["news2-high"].missed, 1);
        assert_eq!((s.overall.hits, s.overall.missed), (1, 1));
        assert_eq!(s.overall.sensitivity, Some(0.5));
    }
}

#[cfg(test)]
mod properties {
    use super::tests::expectation;
    use super::*;
    use quickcheck::{Gen, QuickCheck, TestResult};
    use std::collections::HashSet;

    /// Small random obligations and alert streams over five patients (p4
    /// unknown to the twin) and two kinds.
    fn random_case(
        seed_owed: Vec<(u8, u16, u8, u8)>,
        seed_alerts: Vec<(u8, bool, u16)>,
    ) -> (Vec<Obligation>, Vec<AlertRecord>) {
        let patient = |p: u8| format!("p{}", p % 5);
        let owed = seed_owed
            .iter()
            .take(6)
            .map(|&(p, t, lag, held)| Obligation {
                patient: format!("p{}", p % 4),
                from_ms: u64::from(t),
                // Sometimes the reference lies after the start, sometimes it is unknown.
                reference_ms: (lag != 255).then_some(u64::from(t) + u64::from(lag % 50)),
                unresolved: None,
                // Sometimes still holding at the end.
                holds_until_ms: (held != 255).then_some(u64::from(t) + u64::from(held) * 8),
                times: Times::default(),
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
        (owed, alerts)
    }

    /// Counts of one check: hits, late, missed, inconclusive, duplicates,
    /// false, unknown, and the sorted latencies.
    type Counts = (u64, u64, u64, u64, u64, u64, u64, Vec<u64>);

    /// The reference, from the definitions, one alert at a time: an alert
    /// belongs to its patient's obligation with the latest start at or
    /// before it (the last in (patient, start) order among equal starts);
    /// it answers it if it is that obligation's earliest alert and the
    /// reference is known, else it is a duplicate while the cause held
    /// (plus re-arm) and false after; with no such obligation it is false;
    /// for an unknown patient, unknown.
    fn naive(
        owed: &[Obligation],
        alerts: &[AlertRecord],
        within: u64,
        end: u64,
        rearm: u64,
        known: &HashSet<String>,
    ) -> Counts {
        let of_kind: Vec<&AlertRecord> =
            alerts.iter().filter(|a| a.kind == "news2-medium").collect();
        let mut order: Vec<&Obligation> = owed.iter().collect();
        order.sort_by_key(|o| (o.patient.clone(), o.from_ms));
        let owner = |a: &AlertRecord| -> Option<usize> {
            (0..order.len())
                .filter(|&i| order[i].patient == a.patient && order[i].from_ms <= a.at_ms)
                .max_by_key(|&i| (order[i].from_ms, i))
        };
        let mut answer: Vec<Option<u64>> = vec![None; order.len()];
        let (mut duplicates, mut false_alerts, mut unknown) = (0, 0, 0);
        for (k, a) in of_kind.iter().enumerate() {
            if !known.contains(&a.patient) {
                unknown += 1;
                continue;
            }
            let Some(i) = owner(a) else {
                false_alerts += 1;
                continue;
            };
            let earliest = of_kind.iter().enumerate().all(|(j, b)| {
                j == k
                    || b.patient != a.patient
                    || owner(b) != Some(i)
                    || (b.at_ms, j) > (a.at_ms, k)
            });
            if earliest && order[i].reference_ms.is_some() {
                answer[i] = Some(a.at_ms);
            } else if order[i].holds_until_ms.is_none_or(|u| a.at_ms <= u + rearm) {
                duplicates += 1;
            } else {
                false_alerts += 1;
            }
        }
        let (mut hit, mut late, mut missed, mut inconclusive) = (0, 0, 0, 0);
        let mut latencies = Vec::new();
        for (i, o) in order.iter().enumerate() {
            match (o.reference_ms, answer[i]) {
                (None, _) => inconclusive += 1,
                (Some(r), Some(t)) => {
                    latencies.push(t.saturating_sub(r));
                    if t <= r + within { hit += 1 } else { late += 1 }
                }
                (Some(r), None) if r + within > end => inconclusive += 1,
                (Some(_), None) => missed += 1,
            }
        }
        latencies.sort_unstable();
        (
            hit,
            late,
            missed,
            inconclusive,
            duplicates,
            false_alerts,
            unknown,
            latencies,
        )
    }

    fn invariants(
        raw_owed: Vec<(u8, u16, u8, u8)>,
        raw_alerts: Vec<(u8, bool, u16)>,
        within: u16,
        end: u16,
    ) -> TestResult {
        let (owed, alerts) = random_case(raw_owed, raw_alerts);
        let e = expectation(u64::from(within) + 1);
        let known: HashSet<String> = (0..4).map(|p| format!("p{p}")).collect();
        let w = Window {
            end_ms: u64::from(end),
            patients: 4,
            duration_ms: 86_400_000,
            known: Some(&known),
        };
        let r = check(&e, &owed, &alerts, w);
        let m = &r.metrics;
        let of_kind = alerts.iter().filter(|a| a.kind == "news2-medium").count() as u64;
        if m.hits + m.late + m.missed + m.inconclusive != m.obligations {
            return TestResult::error(format!("obligations do not add up: {r:?}"));
        }
        if m.hits + m.late + m.duplicates + m.false_alerts + m.unknown_patients != of_kind {
            return TestResult::error(format!("alerts do not add up: {r:?}"));
        }
        let mut latencies: Vec<u64> = r.outcomes.iter().filter_map(|o| o.latency_ms).collect();
        latencies.sort_unstable();
        let want = naive(
            &owed,
            &alerts,
            e.within_ms,
            u64::from(end),
            e.rearm_ms,
            &known,
        );
        let got = (
            m.hits,
            m.late,
            m.missed,
            m.inconclusive,
            m.duplicates,
            m.false_alerts,
            m.unknown_patients,
            latencies,
        );
        if got != want {
            return TestResult::error(format!("checker {got:?} != naive {want:?}"));
        }
        // Latency ≥ 0 is in the type (u64); a latency never exceeds the alert time.
        TestResult::from_bool(r.outcomes.iter().all(|o| match (o.latency_ms, o.alert_ms) {
            (Some(l), Some(a)) => l <= a,
            (Some(_), None) => false,
            _ => true,
        }))
    }

    #[test]
    fn counting_invariants_hold_and_match_a_naive_matcher() {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(40, 0x006d_6564_7477_696e))
            .tests(3_000)
            .quickcheck(
                invariants
                    as fn(Vec<(u8, u16, u8, u8)>, Vec<(u8, bool, u16)>, u16, u16) -> TestResult,
            );
    }
}
