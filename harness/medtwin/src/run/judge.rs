//! Judging: the target's alerts, placed in simulated time, against the
//! obligations the truth side found; one result per expectation, metrics
//! per alert kind and overall, the verdict.

use std::collections::HashSet;
use std::time::SystemTime;

use medtwin_check::observe::Truth;
use medtwin_check::{AlertRecord, ExpectationResult, Summary, Verdict, Window};

use super::twin::TwinSummary;
use crate::intake::ReceivedAlert;
use crate::scenario::Scenario;

/// What the checker made of a run.
pub struct Judged {
    /// The alerts as the checker saw them.
    pub alerts: Vec<AlertRecord>,
    /// Alerts naming patients medtwin never simulated.
    pub unknown_patients: u64,
    /// One result per expectation, in scenario order.
    pub expectations: Vec<ExpectationResult>,
    /// Metrics per alert kind and overall.
    pub metrics: Summary,
    /// Pass when every expectation held.
    pub verdict: Verdict,
}

/// Judges the received alerts; `end_ms` is the last simulated time an
/// alert could have been seen, `sim_start` the wall time of simulated zero
/// (to place the measurement times alerts cite).
pub fn judge(
    s: &Scenario,
    twin: &TwinSummary,
    truth: &Truth,
    received: &[ReceivedAlert],
    sim_start: SystemTime,
    end_ms: u64,
) -> Judged {
    let known: HashSet<String> = twin.patients.iter().cloned().collect();
    let alerts: Vec<AlertRecord> = received
        .iter()
        .map(|a| AlertRecord {
            patient: a.message.patient_id.clone(),
            kind: a.message.kind.clone(),
            at_ms: a.received_sim_ms,
            measured_ms: a
                .message
                .measurement_time
                .as_deref()
                .and_then(medtwin_wire::parse_time)
                .and_then(|t| t.duration_since(sim_start).ok())
                .map(|d| d.as_millis() as u64),
        })
        .collect();
    let unknown_patients = alerts
        .iter()
        .filter(|a| !known.contains(a.patient.as_str()))
        .count() as u64;
    let window = Window {
        end_ms,
        patients: twin.patients.len() as u64,
        duration_ms: s.sim.duration_ms,
        known: Some(&known),
    };
    let expectations: Vec<ExpectationResult> = s
        .expectations
        .iter()
        .zip(&truth.obligations)
        .map(|(e, owed)| medtwin_check::check(e, owed, &alerts, window))
        .collect();
    let metrics = medtwin_check::summarize(&expectations);
    let verdict = if expectations.iter().all(|e| e.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Judged {
        alerts,
        unknown_patients,
        expectations,
        metrics,
        verdict,
    }
}
