//! The run report: `report.json` (versioned; see `docs/report.md`) and the
//! terminal summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checker::observe::Series;
use crate::checker::{
    EpisodeRecord, ExpectationResult, InterventionRecord, OutcomeKind, Summary, Times, Verdict,
};
use crate::intake::Refused;
use crate::scenario::duration;
use crate::transport::{Lag, TransportStats};

/// Schema tag of `report.json`.
pub const REPORT_SCHEMA: &str = "medtwin.report.v2";

/// Everything a run found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// Always true: every patient in it is simulated.
    pub synthetic_data: bool,
    /// Unique id of this run.
    pub run_id: String,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The seed used.
    pub seed: u64,
    /// medtwin version.
    pub version: String,
    /// A command that repeats this run.
    pub repro: String,
    /// `pass` when every expectation held.
    pub verdict: Verdict,
    /// How simulated time mapped to wall time.
    pub clock: ClockInfo,
    /// What was driven.
    pub target: TargetInfo,
    /// Durations and rates.
    pub timing: Timing,
    /// Who and what was simulated.
    pub population: Population,
    /// SHA-256 of the telemetry delivered and of the whole truth log.
    pub digests: Digests,
    /// What became of every measurement.
    pub accounting: Accounting,
    /// What the transport did with the delivered measurements.
    pub transport: TransportReport,
    /// Alerts the webhook received.
    pub alerts: AlertsReport,
    /// Condition episodes, from the truth log, with how each ended and when
    /// each clinical criterion first held after its onset.
    pub episodes: Vec<EpisodeRecord>,
    /// Interventions given, from the truth log (at most 10 000 listed).
    #[serde(default)]
    pub interventions: Vec<InterventionRecord>,
    /// Interventions given past that limit.
    #[serde(default)]
    pub interventions_not_listed: u64,
    /// One result per expectation.
    pub expectations: Vec<ExpectationResult>,
    /// Metrics per alert kind and overall, summed over the expectations.
    pub metrics: Summary,
    /// A timeline of the patient's vitals for failing outcomes (at most
    /// [`MAX_TIMELINES`]).
    pub timelines: Vec<Timeline>,
    /// The embedded reference backend's own counters, when it was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<serde_json::Value>,
}

/// The scenario run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Its name.
    pub name: String,
    /// The file.
    pub path: String,
    /// What it tests.
    pub description: Option<String>,
}

/// Clock mapping.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClockInfo {
    /// `virtual`, `real-time` or `accelerated`.
    pub mode: String,
    /// Simulated seconds per wall second (absent for virtual).
    pub speed: Option<f64>,
    /// Wall-clock time of simulated zero (the run epoch).
    pub epoch: String,
    /// Timestamp carried by measurements taken at simulated zero.
    pub start: String,
    /// How alert times were placed in simulated time.
    pub alert_time_basis: String,
}

/// The target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `embedded-reference-backend` or `external`.
    pub kind: String,
    /// Where telemetry went.
    pub url: String,
    /// Fault knobs of the embedded backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}

/// Reference-backend fault knobs as run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Percentage of alerts dropped.
    pub drop_alerts_pct: f64,
    /// Simulated delay before each alert.
    pub delay_alerts_ms: u64,
    /// Percentage of alerts sent twice.
    #[serde(default)]
    pub duplicate_alerts_pct: f64,
    /// Percentage of scored messages on an unescalated patient that raise a
    /// spurious alert.
    #[serde(default)]
    pub spurious_alerts_pct: f64,
    /// Percentage of alerts sent naming another patient.
    #[serde(default)]
    pub wrong_patient_pct: f64,
    /// Percentage of alerts sent with the other NEWS2 kind.
    #[serde(default)]
    pub wrong_kind_pct: f64,
}

/// Most timelines in one report (bounded size).
pub const MAX_TIMELINES: usize = 20;

/// An alert on a timeline.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlertMark {
    /// Alert kind.
    pub kind: String,
    /// When it reached medtwin, simulated ms.
    pub at_ms: u64,
}

/// One failing outcome, with the patient's vitals around it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    /// The expectation.
    pub expectation: String,
    /// The patient.
    pub patient: String,
    /// What happened.
    pub outcome: OutcomeKind,
    /// Reference time of the deadline.
    pub reference_ms: Option<u64>,
    /// Deadline.
    pub deadline_ms: Option<u64>,
    /// The alert matched or judged, if any.
    pub alert_ms: Option<u64>,
    /// Onset, criterion, first abnormal measurement and delivery.
    pub times: Times,
    /// Every alert of the patient (any kind, at most 50).
    pub alerts: Vec<AlertMark>,
    /// The patient's vitals, downsampled; `None` when not retained (see
    /// `checker::observe::MAX_SERIES_PATIENTS`).
    pub series: Option<Series>,
}

/// Durations and rates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timing {
    /// Simulated duration.
    pub sim_duration_ms: u64,
    /// Fixed step.
    pub step_ms: u64,
    /// Wall time of the whole run, including the alert grace period.
    pub wall_ms: u64,
    /// Steps the twin ran.
    pub steps: u64,
    /// Wall time spent inside the twin's steps.
    pub twin_busy_ms: f64,
    /// Patients × steps per second of twin time.
    pub twin_patient_steps_per_s: f64,
}

/// Population.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Population {
    /// Patients.
    pub patients: u64,
    /// Devices.
    pub devices: u64,
    /// Devices by kind.
    pub devices_by_kind: BTreeMap<String, u64>,
}

/// Digests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Digests {
    /// Every delivery (measurement and delivery time), in delivery order.
    pub telemetry: String,
    /// Every truth record (onsets, measurements, deliveries, losses).
    pub truth: String,
}

/// Per-measurement accounting: generated = delivered + lost + buffered.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Measurements taken.
    pub generated: u64,
    /// Reached the target's edge.
    pub delivered: u64,
    /// Lost on the way.
    pub lost: u64,
    /// Still on the way when the run ended.
    pub buffered: u64,
}

/// Accounting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accounting {
    /// Totals.
    #[serde(flatten)]
    pub total: Counts,
    /// Losses by cause.
    pub lost_by_cause: BTreeMap<String, u64>,
    /// Second copies delivered (a lost acknowledgement made the device
    /// send again); not in `delivered`.
    #[serde(default)]
    pub duplicates: u64,
    /// The same, by device kind (catalogue model).
    pub by_device_kind: BTreeMap<String, DeviceCounts>,
}

/// Accounting of one device kind: the counts, losses by cause, and what
/// the devices said or suffered on the way.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceCounts {
    /// generated = delivered + lost + buffered.
    #[serde(flatten)]
    pub counts: Counts,
    /// Losses by cause.
    #[serde(default)]
    pub lost_by_cause: BTreeMap<String, u64>,
    /// Duplicate copies delivered.
    #[serde(default)]
    pub duplicates: u64,
    /// Technical alarms raised, by alarm.
    #[serde(default)]
    pub alarms: BTreeMap<String, u64>,
    /// Events reported, by event.
    #[serde(default)]
    pub events: BTreeMap<String, u64>,
    /// Messages whose values an artifact or firmware fault shaped, by cause
    /// (truth only: the wire does not say).
    #[serde(default)]
    pub artifacts: BTreeMap<String, u64>,
}

/// Transport results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransportReport {
    /// Counts.
    #[serde(flatten)]
    pub stats: TransportStats,
    /// How late sends went out against their due time (timed clocks only).
    pub send_lag_ms: Option<Lag>,
}

/// Alerts received.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlertsReport {
    /// Accepted by the webhook.
    pub received: u64,
    /// By kind.
    pub by_kind: BTreeMap<String, u64>,
    /// About patients medtwin never simulated.
    pub unknown_patients: u64,
    /// Refused by the webhook.
    pub refused: Refused,
}

impl Report {
    /// Writes `report.json`, `junit.xml` and `index.html` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("report.json"), json + "\n")?;
        self.render(dir)
    }

    /// Writes `junit.xml` and `index.html` from this report (what
    /// `medtwin report` does with a report.json).
    pub fn render(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(
            dir.join("junit.xml"),
            crate::junit::render(std::slice::from_ref(self)),
        )?;
        std::fs::write(dir.join("index.html"), crate::html::render(self))?;
        Ok(())
    }

    /// Reads a `report.json` (a file, or a run folder holding one).
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        use anyhow::Context as _;
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a medtwin report", file.display()))?;
        anyhow::ensure!(
            report.schema == REPORT_SCHEMA,
            "{} has schema `{}`; this medtwin reads `{REPORT_SCHEMA}`",
            file.display(),
            report.schema
        );
        Ok(report)
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let speed = match self.clock.speed {
            Some(x) => format!("{} x{x}", self.clock.mode),
            None => self.clock.mode.to_owned(),
        };
        let _ = writeln!(
            s,
            "medtwin {} · {} · seed {} · {} · {} patients, {} devices",
            self.version,
            self.scenario.name,
            self.seed,
            speed,
            self.population.patients,
            self.population.devices
        );
        let wall_s = self.timing.wall_ms as f64 / 1000.0;
        let _ = writeln!(
            s,
            "simulated {} in {wall_s:.1} s wall · twin {:.0} patient-steps/s",
            duration::format(self.timing.sim_duration_ms),
            self.timing.twin_patient_steps_per_s
        );
        let a = &self.accounting.total;
        let _ = writeln!(
            s,
            "telemetry: {} generated · {} delivered · {} lost · {} buffered or in flight at end",
            a.generated, a.delivered, a.lost, a.buffered
        );
        let t = &self.transport.stats;
        let _ = write!(
            s,
            "target {}: {} sent · {} accepted · {} rejected · {} server errors · {} failed",
            self.target.url, t.sent, t.accepted, t.rejected, t.server_errors, t.failed
        );
        if let Some(lag) = &self.transport.send_lag_ms {
            let _ = write!(s, " · send lag p99 {:.1} ms", lag.p99);
        }
        let _ = writeln!(s);
        let kinds: Vec<String> = self
            .alerts
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "alerts: {} received ({}) · {} refused",
            self.alerts.received,
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            },
            self.alerts.refused.total()
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<36} {:<7} {:>4} {:>4} {:>6} {:>5} {:>4} {:>9} {:>9} {:>9}",
            "expectation", "verdict", "hits", "late", "missed", "false", "dup", "p50", "p95", "max"
        );
        for e in &self.expectations {
            let lat = |v: Option<u64>| v.map_or("-".to_owned(), human);
            let m = &e.metrics;
            let _ = writeln!(
                s,
                "{:<36} {:<7} {:>4} {:>4} {:>6} {:>5} {:>4} {:>9} {:>9} {:>9}",
                truncate(&e.name, 36),
                verdict_text(e.verdict),
                m.hits,
                m.late,
                m.missed,
                m.false_alerts,
                m.duplicates,
                lat(m.latency_ms.p50),
                lat(m.latency_ms.p95),
                lat(m.latency_ms.max)
            );
            for o in e.outcomes.iter().take(MAX_SUMMARY_OUTCOMES) {
                let at = |v: Option<u64>| v.map_or("-".to_owned(), clock_text);
                let latency = o
                    .latency_ms
                    .map(|l| format!("  latency {}", human(l)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "    {:<12} {:<12} from {:>8}  alert {:>8}{latency}",
                    o.outcome.name(),
                    o.patient,
                    at(o.from_ms),
                    at(o.alert_ms),
                );
            }
            if e.outcomes.len() > MAX_SUMMARY_OUTCOMES {
                let _ = writeln!(
                    s,
                    "    ... {} more in report.json",
                    e.outcomes.len() - MAX_SUMMARY_OUTCOMES
                );
            }
            for failure in &e.failures {
                let _ = writeln!(s, "    FAIL: {failure}");
            }
        }
        let rate = |x: Option<f64>, pct: bool| match x {
            Some(v) if pct => format!("{:.1}%", v * 100.0),
            Some(v) => format!("{v:.3}"),
            None => "-".to_owned(),
        };
        let mut rows: Vec<(&str, &crate::checker::Metrics)> = self
            .metrics
            .by_kind
            .iter()
            .map(|(k, m)| (k.as_str(), m))
            .collect();
        rows.push(("overall", &self.metrics.overall));
        for (kind, m) in rows {
            let _ = writeln!(
                s,
                "{kind}: sensitivity {} · PPV {} · false/patient-day {} · PhysioNet {}",
                rate(m.sensitivity, true),
                rate(m.ppv, true),
                rate(m.false_alerts_per_patient_day, false),
                rate(m.physionet_score, false)
            );
        }
        let _ = writeln!(s);
        let _ = write!(s, "verdict: {}", verdict_text(self.verdict).to_uppercase());
        if self.verdict == Verdict::Fail {
            let _ = write!(s, "\nrepro: {}", self.repro);
        }
        s
    }
}

/// Outcome lines per expectation in the terminal summary.
const MAX_SUMMARY_OUTCOMES: usize = 12;

/// `pass` or `fail`.
pub fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    }
}

fn truncate(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// A latency for people: `27m25s`, `4.2s`, `350ms`.
pub fn human(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => duration::format((ms + 500) / 1000 * 1000),
    }
}

/// Simulated time as `hh:mm:ss`.
pub fn clock_text(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Timelines for failing outcomes (missed, late, false), at most
/// [`MAX_TIMELINES`], each with the patient's retained vitals series.
pub fn timelines(
    results: &[ExpectationResult],
    alerts: &[crate::checker::AlertRecord],
    truth: &crate::checker::observe::Truth,
    patients: &[String],
) -> Vec<Timeline> {
    let index: std::collections::HashMap<&str, u32> = patients
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u32))
        .collect();
    let mut out = Vec::new();
    for r in results {
        for o in r.outcomes.iter().filter(|o| o.outcome.is_failure()) {
            if out.len() >= MAX_TIMELINES {
                return out;
            }
            let series = index
                .get(o.patient.as_str())
                .and_then(|i| truth.series.get(i))
                .cloned();
            let mut marks: Vec<AlertMark> = alerts
                .iter()
                .filter(|a| a.patient == o.patient)
                .map(|a| AlertMark {
                    kind: a.kind.clone(),
                    at_ms: a.at_ms,
                })
                .collect();
            marks.sort_by(|a, b| (a.at_ms, &a.kind).cmp(&(b.at_ms, &b.kind)));
            marks.truncate(50);
            out.push(Timeline {
                expectation: r.name.clone(),
                patient: o.patient.clone(),
                outcome: o.outcome,
                reference_ms: o.reference_ms,
                deadline_ms: o.reference_ms.map(|t| t + r.within_ms),
                alert_ms: o.alert_ms,
                times: o.times.clone(),
                alerts: marks,
                series,
            });
        }
    }
    out
}
