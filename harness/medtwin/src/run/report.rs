//! The one place a run's results become the report's model
//! ([`crate::report`]): every field of `report.json` is set here, from the
//! twin, transport, intake, checker and backend results, so renaming a
//! runtime field cannot silently change the report.

use std::collections::HashMap;
use std::time::SystemTime;

use medtwin_backend::{PctKnob, Stats};
use medtwin_check::observe::Truth;
use medtwin_check::{self as check, AlertRecord};
use medtwin_wire::format_time;

use super::Start;
use super::judge::Judged;
use super::trust::{RunVerdict, Trust};
use super::twin::{Counts, KindCounts, TwinSummary};
use crate::intake::{self, ReceivedAlert};
use crate::report::{self as r, MAX_TIMELINES, REPORT_SCHEMA, Report};
use crate::scenario::limits::{self, Estimate};
use crate::scenario::{Clock, Scenario, duration};
use crate::stop::StopReason;
use crate::transport::{Lag, TransportStats};

/// Everything a report is built from.
pub struct Parts<'a> {
    /// The scenario run.
    pub scenario: &'a Scenario,
    /// The run's epoch and clock.
    pub start: &'a Start,
    /// Where telemetry went.
    pub target_url: &'a str,
    /// Where alerts were to go.
    pub webhook_url: &'a str,
    /// The twin's side.
    pub twin: TwinSummary,
    /// The checker's truth side, on what the target accepted.
    pub truth: Truth,
    /// The harness's assessment of itself and of the target's uptake.
    pub trust: Trust,
    /// The run's verdict.
    pub verdict: RunVerdict,
    /// Why the run stopped early and the simulated time reached, if it did.
    pub interrupted: Option<(StopReason, u64)>,
    /// What the run was estimated to take.
    pub estimate: Estimate,
    /// What the transport did.
    pub transport: (TransportStats, Lag),
    /// Alerts received.
    pub received: &'a [ReceivedAlert],
    /// Payloads refused.
    pub refused: intake::Refused,
    /// Later phases, repeats and the intakes' counters.
    pub heard: intake::Heard,
    /// Each open intake: its kind and address.
    pub intakes: Vec<(&'static str, String)>,
    /// The checker's results.
    pub judged: Judged,
    /// The embedded backend's counters, when it was used.
    pub backend: Option<Stats>,
}

/// Builds the report of a run.
pub fn build(p: Parts<'_>) -> Report {
    let s = p.scenario;
    let twin = p.twin;
    let truth = p.truth;
    let timelines = timelines(
        &p.judged.expectations,
        &p.judged.alerts,
        &truth,
        &twin.patients,
    );
    let n_patients = twin.patients.len() as u64;
    let busy_s = twin.busy.as_secs_f64();
    let (transport_stats, lag) = p.transport;
    Report {
        schema: REPORT_SCHEMA.to_owned(),
        synthetic_data: true,
        run_id: p.start.run_id.clone(),
        scenario: r::ScenarioInfo {
            name: s.name.clone(),
            path: s.path.display().to_string(),
            description: s.description.clone(),
        },
        seed: s.sim.seed,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        repro: repro(s),
        verdict: run_verdict(p.verdict),
        clock: clock_info(s, p.start),
        target: target_info(s, p.target_url),
        timing: r::Timing {
            sim_duration_ms: s.sim.duration_ms,
            step_ms: s.sim.step_ms,
            wall_ms: p.start.wall.elapsed().as_millis() as u64,
            steps: twin.steps,
            twin_busy_ms: busy_s * 1000.0,
            twin_patient_steps_per_s: if busy_s > 0.0 {
                (n_patients * twin.steps) as f64 / busy_s
            } else {
                0.0
            },
        },
        population: r::Population {
            patients: n_patients,
            devices: twin.n_devices,
            devices_by_kind: twin.devices_by_kind.clone(),
        },
        digests: r::Digests {
            telemetry: twin.digests.telemetry.clone(),
            truth: twin.digests.truth.clone(),
        },
        accounting: accounting(&twin),
        transport: r::TransportReport {
            stats: transport_report(transport_stats),
            send_lag_ms: s.clock.speed().map(|_| r::Lag {
                p50: lag.p50,
                p99: lag.p99,
                max: lag.max,
            }),
            deliveries_accepted: p.trust.accepted,
            deliveries_not_accepted: p.trust.not_accepted,
            accepted_share: p.trust.accepted_share(),
            min_accepted_share: p.trust.min_accepted_share,
        },
        alerts: r::AlertsReport {
            received: p.received.len() as u64,
            by_kind: intake::count_by_kind(p.received),
            unknown_patients: p.judged.unknown_patients,
            refused: refused(p.refused),
            webhook: p.webhook_url.to_owned(),
            intakes: p
                .intakes
                .iter()
                .map(|(kind, address)| r::IntakeReport {
                    kind: (*kind).to_owned(),
                    address: address.clone(),
                    received: p.received.iter().filter(|a| a.via == *kind).count() as u64,
                    counters: p.heard.counters.get(*kind).cloned().unwrap_or_default(),
                })
                .collect(),
            history: p
                .heard
                .history
                .iter()
                .map(|h| r::HistoryRecord {
                    via: h.via.to_owned(),
                    alert_id: h.alert_id.clone(),
                    patient_id: h.patient_id.clone(),
                    kind: h.kind.clone(),
                    phase: h.phase.clone(),
                    state: h.state.clone(),
                    at_ms: h.sim_ms,
                })
                .collect(),
            history_dropped: p.heard.history_dropped,
            token_source: p.start.token_source.to_owned(),
        },
        episodes: truth.episodes.iter().map(episode).collect(),
        interventions: truth.interventions.iter().map(intervention).collect(),
        interventions_not_listed: truth.interventions_dropped,
        expectations: p.judged.expectations.iter().map(expectation).collect(),
        metrics: summary(&p.judged.metrics),
        timelines,
        backend: p.backend.map(backend_counters),
        interrupted: p.interrupted.map(|(reason, at_sim_ms)| r::Interruption {
            reason: reason.name().to_owned(),
            at_sim_ms,
            after_wall_s: p.start.wall.elapsed().as_secs_f64(),
        }),
        harness: harness(&p.trust, s, &p.estimate),
    }
}

fn harness(t: &Trust, s: &Scenario, estimate: &Estimate) -> r::HarnessReport {
    r::HarnessReport {
        build: t.build.to_owned(),
        send_lag_sim_ms: t.lag_sim_ms.as_ref().map(|l| r::Lag {
            p50: l.p50,
            p99: l.p99,
            max: l.max,
        }),
        lag_bound_sim_ms: t.lag_bound_sim_ms,
        reliable: t.reliable,
        cpu_s: t.cpu_s,
        cpu_cores_used: t.cpu_cores_used,
        notes: t.notes.clone(),
        memory_estimate_bytes: estimate.memory_bytes,
        peak_rss_bytes: limits::peak_rss(),
        max_wall_s: limits::default_max_wall(s).as_secs_f64(),
    }
}

fn run_verdict(v: RunVerdict) -> r::Verdict {
    match v {
        RunVerdict::Pass => r::Verdict::Pass,
        RunVerdict::Fail => r::Verdict::Fail,
        RunVerdict::TargetUnreachable => r::Verdict::TargetUnreachable,
        RunVerdict::TargetRefusedData => r::Verdict::TargetRefusedData,
        RunVerdict::Interrupted(_) => r::Verdict::Interrupted,
    }
}

fn clock_info(s: &Scenario, start: &Start) -> r::ClockInfo {
    r::ClockInfo {
        mode: s.clock.mode_name().to_owned(),
        speed: s.clock.speed(),
        epoch: format_time(start.epoch),
        start: format_time(start.sim_start),
        alert_time_basis: match s.clock {
            Clock::Virtual => {
                "frontier: the latest simulated delivery time sent when the alert arrived"
            }
            _ => "epoch: (arrival wall time - epoch) x speed",
        }
        .to_owned(),
    }
}

fn target_info(s: &Scenario, url: &str) -> r::TargetInfo {
    let f = &s.backend.faults;
    r::TargetInfo {
        kind: if s.target.is_some() {
            "external"
        } else {
            "embedded-reference-backend"
        }
        .to_owned(),
        url: url.to_owned(),
        transport: s.transport.protocol.name().to_owned(),
        encoding: s.transport.encoding.name().to_owned(),
        faults: s.target.is_none().then_some(r::Faults {
            drop_alerts_pct: f.drop_alerts_pct,
            delay_alerts_ms: f.delay_alerts.as_millis() as u64,
            duplicate_alerts_pct: f.duplicate_alerts_pct,
            spurious_alerts_pct: f.spurious_alerts_pct,
            wrong_patient_pct: f.wrong_patient_pct,
            wrong_kind_pct: f.wrong_kind_pct,
        }),
        security: security(s, url),
    }
}

fn counts(c: &Counts) -> r::Counts {
    r::Counts {
        generated: c.generated,
        delivered: c.delivered,
        lost: c.lost,
        buffered: c.buffered,
    }
}

fn kind_counts(k: &KindCounts) -> r::DeviceCounts {
    r::DeviceCounts {
        counts: counts(&k.counts),
        lost_by_cause: k.lost_by_cause.clone(),
        duplicates: k.duplicates,
        alarms: k.alarms.clone(),
        events: k.events.clone(),
        artifacts: k.artifacts.clone(),
    }
}

fn accounting(twin: &TwinSummary) -> r::Accounting {
    r::Accounting {
        total: counts(&twin.accounting),
        lost_by_cause: twin.lost_by_cause.clone(),
        duplicates: twin.duplicates,
        by_device_kind: twin
            .by_kind
            .iter()
            .map(|(name, k)| (name.clone(), kind_counts(k)))
            .collect(),
    }
}

fn transport_report(t: TransportStats) -> r::TransportStats {
    r::TransportStats {
        sent: t.sent,
        accepted: t.accepted,
        refused: t.refused,
        failed: t.failed,
        not_sent: t.not_sent,
        by_cause: t.by_cause,
        by_reason: t.by_reason,
        carrier: t.carrier,
        retries: t.retries,
        retries_denied: t.retries_denied,
        retry_after_waits: t.retry_after_waits,
        breaker_opened: t.breaker_opened,
        breaker_probes: t.breaker_probes,
        samples: t.samples,
        waveforms: (t.waveforms.sent > 0).then_some(r::WaveformChunks {
            sent: t.waveforms.sent,
            accepted: t.waveforms.accepted,
            refused: t.waveforms.refused,
            failed: t.waveforms.failed,
            not_sent: t.waveforms.not_sent,
            by_cause: t.waveforms.by_cause,
        }),
    }
}

fn refused(x: intake::Refused) -> r::Refused {
    r::Refused {
        unauthorized: x.unauthorized,
        malformed: x.malformed,
        unmapped: x.unmapped,
        too_large: x.too_large,
        cut_off: x.cut_off,
        body_timeout: x.body_timeout,
        header_timeout: x.header_timeout,
        too_many_connections: x.too_many_connections,
        dropped_at_shutdown: x.dropped_at_shutdown,
        overflow: x.overflow,
        samples: x.samples,
    }
}

fn verdict(v: check::Verdict) -> r::Verdict {
    match v {
        check::Verdict::Pass => r::Verdict::Pass,
        check::Verdict::Fail => r::Verdict::Fail,
    }
}

fn outcome_kind(k: check::OutcomeKind) -> r::OutcomeKind {
    match k {
        check::OutcomeKind::Hit => r::OutcomeKind::Hit,
        check::OutcomeKind::Late => r::OutcomeKind::Late,
        check::OutcomeKind::Missed => r::OutcomeKind::Missed,
        check::OutcomeKind::Inconclusive => r::OutcomeKind::Inconclusive,
        check::OutcomeKind::False => r::OutcomeKind::False,
        check::OutcomeKind::Duplicate => r::OutcomeKind::Duplicate,
        check::OutcomeKind::UnknownPatient => r::OutcomeKind::UnknownPatient,
    }
}

fn times(t: &check::Times) -> r::Times {
    r::Times {
        onset_ms: t.onset_ms,
        criterion_ms: t.criterion_ms,
        measured_ms: t.measured_ms,
        measured_delivered_ms: t.measured_delivered_ms,
        delivered_ms: t.delivered_ms,
        sent_ms: t.sent_ms,
    }
}

fn outcome(o: &check::Outcome) -> r::Outcome {
    r::Outcome {
        outcome: outcome_kind(o.outcome),
        patient: o.patient.clone(),
        from_ms: o.from_ms,
        reference_ms: o.reference_ms,
        alert_ms: o.alert_ms,
        latency_ms: o.latency_ms,
        reported_measured_ms: o.reported_measured_ms,
        times: times(&o.times),
        decomposition: o.decomposition.as_ref().map(|d| r::Decomposition {
            physiology_ms: d.physiology_ms,
            device_ms: d.device_ms,
            network_ms: d.network_ms,
            harness_ms: d.harness_ms,
            backend_ms: d.backend_ms,
        }),
        note: o.note.clone(),
    }
}

fn metrics(m: &check::Metrics) -> r::Metrics {
    r::Metrics {
        obligations: m.obligations,
        hits: m.hits,
        late: m.late,
        missed: m.missed,
        inconclusive: m.inconclusive,
        false_alerts: m.false_alerts,
        duplicates: m.duplicates,
        unknown_patients: m.unknown_patients,
        true_negatives: m.true_negatives,
        patient_days: m.patient_days,
        sensitivity: m.sensitivity,
        ppv: m.ppv,
        false_alerts_per_patient_day: m.false_alerts_per_patient_day,
        physionet_score: m.physionet_score,
        latency_ms: r::Percentiles {
            p50: m.latency_ms.p50,
            p95: m.latency_ms.p95,
            p99: m.latency_ms.p99,
            max: m.latency_ms.max,
        },
    }
}

fn summary(s: &check::Summary) -> r::Summary {
    r::Summary {
        by_kind: s
            .by_kind
            .iter()
            .map(|(k, m)| (k.clone(), metrics(m)))
            .collect(),
        overall: metrics(&s.overall),
    }
}

fn expectation(e: &check::ExpectationResult) -> r::ExpectationResult {
    r::ExpectationResult {
        name: e.name.clone(),
        kind: e.kind.clone(),
        condition: e.condition.clone(),
        from: e.from.clone(),
        rule: e.rule.clone(),
        alert: e.alert.clone(),
        within_ms: e.within_ms,
        max_false_alerts: e.max_false_alerts,
        verdict: verdict(e.verdict),
        metrics: metrics(&e.metrics),
        failures: e.failures.clone(),
        outcomes: e.outcomes.iter().map(outcome).collect(),
    }
}

fn episode(e: &check::EpisodeRecord) -> r::EpisodeRecord {
    r::EpisodeRecord {
        patient: e.patient.clone(),
        condition: e.condition.clone(),
        onset_ms: e.onset_ms,
        severity: e.severity,
        end_ms: e.end_ms,
        end_reason: e.end_reason.clone(),
        criteria: e.criteria.clone(),
    }
}

fn intervention(g: &check::InterventionRecord) -> r::InterventionRecord {
    r::InterventionRecord {
        patient: g.patient.clone(),
        kind: g.kind.clone(),
        at_ms: g.at_ms,
        params: g
            .params
            .iter()
            .map(|(name, v)| {
                let value = match v {
                    check::ParamValue::Number(x) => r::ParamValue::Number(*x),
                    check::ParamValue::Choice(c) => r::ParamValue::Choice(c.clone()),
                };
                (name.clone(), value)
            })
            .collect(),
        rosc: g.rosc,
    }
}

fn series(s: &check::observe::Series) -> r::Series {
    r::Series {
        bucket_ms: s.bucket_ms,
        vitals: s.vitals.clone(),
        delivered: s.delivered.clone(),
        lost: s.lost.clone(),
    }
}

fn backend_counters(s: Stats) -> r::BackendCounters {
    let j = &s.rejected;
    let rejected = [
        ("bad_json", j.bad_json),
        ("wrong_schema", j.wrong_schema),
        ("unknown_vital", j.unknown_vital),
        ("unit_mismatch", j.unit_mismatch),
        ("loinc_mismatch", j.loinc_mismatch),
        ("bad_time", j.bad_time),
        ("bad_patient_id", j.bad_patient_id),
        ("too_large", j.too_large),
        ("body_unreadable", j.body_unreadable),
        ("too_many_patients", j.too_many_patients),
        ("unauthorized", j.unauthorized),
        ("body_timeout", j.body_timeout),
        ("bad_hl7", j.bad_hl7),
        ("bad_fhir", j.bad_fhir),
    ];
    // Listed only when it happened: runs without waveforms report as before.
    let bad_waveform = (j.bad_waveform > 0).then_some(("bad_waveform", j.bad_waveform));
    r::BackendCounters {
        accepted: s.accepted,
        rejected: rejected
            .iter()
            .chain(bad_waveform.iter())
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
        out_of_order: s.out_of_order,
        unknown_metrics: s.unknown_metrics,
        patients: s.patients,
        alerts_emitted: s.alerts_emitted,
        alerts_dropped_by_fault: s.alerts_dropped_by_fault,
        alerts_duplicated_by_fault: s.alerts_duplicated_by_fault,
        alerts_spurious_by_fault: s.alerts_spurious_by_fault,
        alerts_delivered: s.alerts_delivered,
        alerts_failed: s.alerts_failed,
        alerts_queue_overflow: s.alerts_queue_overflow,
        alerts_retried: s.alerts_retried,
        alerts_pending: s.alerts_pending,
        waveform_chunks: s.waveform_chunks,
        waveform_samples: s.waveform_samples,
    }
}

/// Timelines for failing outcomes (missed, late, false), at most
/// [`MAX_TIMELINES`], each with the patient's retained vitals series.
fn timelines(
    results: &[check::ExpectationResult],
    alerts: &[AlertRecord],
    truth: &Truth,
    patients: &[String],
) -> Vec<r::Timeline> {
    let index: HashMap<&str, u32> = patients
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u32))
        .collect();
    let mut out = Vec::new();
    for e in results {
        for o in e.outcomes.iter().filter(|o| o.outcome.is_failure()) {
            if out.len() >= MAX_TIMELINES {
                return out;
            }
            let mut marks: Vec<r::AlertMark> = alerts
                .iter()
                .filter(|a| a.patient == o.patient)
                .map(|a| r::AlertMark {
                    kind: a.kind.clone(),
                    at_ms: a.at_ms,
                })
                .collect();
            marks.sort_by(|a, b| (a.at_ms, &a.kind).cmp(&(b.at_ms, &b.kind)));
            marks.truncate(50);
            out.push(r::Timeline {
                expectation: e.name.clone(),
                patient: o.patient.clone(),
                outcome: outcome_kind(o.outcome),
                reference_ms: o.reference_ms,
                deadline_ms: o.reference_ms.map(|t| t + e.within_ms),
                alert_ms: o.alert_ms,
                times: times(&o.times),
                alerts: marks,
                series: index
                    .get(o.patient.as_str())
                    .and_then(|i| truth.series.get(i))
                    .map(series),
            });
        }
    }
    out
}

/// `20261124T101500Z-quickstart-s42`.
pub fn run_id(name: &str, seed: u64, at: SystemTime) -> String {
    let stamp: String = format_time(at)
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{stamp}Z-{slug}-s{seed}")
}

/// A command that repeats this run exactly (scenario, seed, version, and
/// whatever the command line changed).
fn repro(s: &Scenario) -> String {
    let mut cmd = format!("medtwin run {} --seed {}", s.path.display(), s.sim.seed);
    match s.clock {
        Clock::Virtual => cmd.push_str(" --clock virtual"),
        Clock::RealTime => cmd.push_str(" --clock real-time"),
        Clock::Accelerated { speed } => {
            cmd.push_str(&format!(" --clock accelerated --speed {speed}"))
        }
    }
    match &s.target {
        Some(target) => cmd.push_str(&format!(" --target {}", target.url)),
        None => {
            let faults = &s.backend.faults;
            for knob in PctKnob::ALL {
                let pct = faults.pct(knob);
                if pct > 0.0 {
                    cmd.push_str(&format!(" {} {pct}", knob.flag()));
                }
            }
            if !faults.delay_alerts.is_zero() {
                cmd.push_str(&format!(
                    " --delay-alerts {}",
                    duration::format(faults.delay_alerts.as_millis() as u64)
                ));
            }
        }
    }
    cmd.push_str(&format!("  # medtwin {}", env!("CARGO_PKG_VERSION")));
    cmd
}

/// The security mechanisms of the run's target, from its scenario.
fn security(s: &Scenario, url: &str) -> r::Security {
    let tls = &s.transport.tls;
    let uses_tls = crate::scenario::interop::uses_tls(url);
    r::Security {
        tls: if uses_tls {
            tls.describe()
        } else {
            "none".to_owned()
        },
        insecure_skip_verify: uses_tls && tls.insecure_skip_verify,
        auth: auth_mechanism(s).to_owned(),
    }
}

/// How medtwin authenticated to the target (never a secret): the
/// scenario's `[target.auth]` kind, `bearer` for the embedded backend or
/// `MEDTWIN_TARGET_TOKEN`, `mqtt-password` for whatever MQTT sent as its
/// password.
fn auth_mechanism(s: &Scenario) -> &'static str {
    use crate::scenario::auth::AuthSpec;
    use crate::scenario::interop::Protocol;
    let mechanism = match &s.target {
        None => "bearer",
        Some(t) => match &t.auth {
            AuthSpec::None
                if std::env::var_os(super::target::TARGET_TOKEN_ENV)
                    .is_some_and(|v| !v.is_empty()) =>
            {
                "bearer"
            }
            auth => auth.mechanism(),
        },
    };
    match (s.transport.protocol, mechanism) {
        (_, "none") => "none",
        (Protocol::Mqtt, _) => "mqtt-password",
        (Protocol::Hl7Mllp | Protocol::File, _) => "none",
        (_, m) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_a_utc_stamp_a_slug_and_the_seed() {
        let at = medtwin_wire::parse_time("2026-11-24T10:15:00.750Z").unwrap();
        assert_eq!(
            run_id("Quickstart: a ward", 42, at),
            "20261124T101500Z-quickstart-a-ward-s42"
        );
    }
}
