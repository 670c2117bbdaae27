//! The report's own model: what `report.json` holds (versioned; see
//! `docs/report.md`, schema generated into `docs/schemas/`). These types
//! are converted from a run's results in one place (`run::report`), so a
//! renamed field in the transport, intake or checker cannot silently
//! change the report.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Schema tag of `report.json`.
pub const REPORT_SCHEMA: &str = "medtwin.report.v6";

/// Everything a run found: `report.json` written by `medtwin run`; see
/// docs/report.md. Times named `*_ms` are simulated milliseconds from
/// simulated zero unless the name says wall.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    title = "medtwin run report (medtwin.report.v6)",
    extend("$id" = "https://medtwin.invalid/schemas/report.schema.json")
)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    #[schemars(extend("const" = REPORT_SCHEMA))]
    pub schema: String,
    /// Always true: every patient in it is simulated.
    #[schemars(extend("const" = true))]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendCounters>,
    /// Why and where the run stopped early, when it did (verdict
    /// `interrupted`).
    pub interrupted: Option<Interruption>,
    /// The harness's own reliability.
    pub harness: HarnessReport,
}

/// The scenario run.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// Its name.
    pub name: String,
    /// The file.
    pub path: String,
    /// What it tests.
    pub description: Option<String>,
}

/// Clock mapping.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClockInfo {
    /// `virtual`, `real-time` or `accelerated`.
    #[schemars(extend("enum" = ["virtual", "real-time", "accelerated"]))]
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
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TargetInfo {
    /// `embedded-reference-backend` or `external`.
    #[schemars(extend("enum" = ["embedded-reference-backend", "external"]))]
    pub kind: String,
    /// Where telemetry went.
    pub url: String,
    /// The transport: `http-json`, `fhir`, `mqtt`, `hl7-mllp` or `file`.
    pub transport: String,
    /// The body encoding: `json`, `fhir` or `hl7`.
    pub encoding: String,
    /// Fault knobs of the embedded backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    /// How the connection to the target was secured and authenticated.
    pub security: Security,
}

/// The mechanisms used towards the target (never a secret).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Security {
    /// `none` (a plain address), or the trust used: `system-roots`,
    /// `ca-bundle`, `pinned` or `insecure-skip-verify`, with
    /// `+client-cert` or `+device-certs` for mutual TLS.
    pub tls: String,
    /// Whether the target's certificate went unchecked (the explicit
    /// opt-in): the run's numbers were taken over an unverified connection.
    pub insecure_skip_verify: bool,
    /// How medtwin authenticated: `none`, `bearer`, `basic`,
    /// `oauth2-client-secret`, `oauth2-private-key-jwt` (SMART Backend
    /// Services), or `mqtt-password`.
    pub auth: String,
}

/// Reference-backend fault knobs as run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AlertMark {
    /// Alert kind.
    pub kind: String,
    /// When it reached medtwin, simulated ms.
    pub at_ms: u64,
}

/// One failing outcome, with the patient's vitals around it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// `medtwin_check::observe::MAX_SERIES_PATIENTS`).
    pub series: Option<Series>,
}

/// Durations and rates.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Population {
    /// Patients.
    pub patients: u64,
    /// Devices.
    pub devices: u64,
    /// Devices by kind.
    pub devices_by_kind: BTreeMap<String, u64>,
}

/// Digests.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Digests {
    /// Every delivery (measurement and delivery time), in delivery order.
    pub telemetry: String,
    /// Every truth record (onsets, measurements, deliveries, losses).
    pub truth: String,
}

/// Per-measurement accounting: generated = delivered + lost + buffered.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportReport {
    /// Counts.
    #[serde(flatten)]
    pub stats: TransportStats,
    /// How late sends went out against their due time (timed clocks only).
    pub send_lag_ms: Option<Lag>,
    /// Deliveries the target accepted: what the rule oracles and the first
    /// abnormal deliveries were evaluated on.
    pub deliveries_accepted: u64,
    /// Deliveries it did not accept (refused, failed, unanswered).
    pub deliveries_not_accepted: u64,
    /// accepted / (accepted + not accepted); `None` with no delivery.
    pub accepted_share: Option<f64>,
    /// The share below which the run cannot pass.
    pub min_accepted_share: f64,
}

/// Alerts received.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AlertsReport {
    /// Accepted by the webhook.
    pub received: u64,
    /// By kind.
    pub by_kind: BTreeMap<String, u64>,
    /// About patients medtwin never simulated.
    pub unknown_patients: u64,
    /// Refused by the webhook.
    pub refused: Refused,
    /// Where the target was told to post alerts (the webhook's URL; empty
    /// when no webhook was open).
    pub webhook: String,
    /// Every intake that was open, with what it received.
    pub intakes: Vec<IntakeReport>,
    /// Later phases of alarms (ACM update, end, ...) and alerts seen again
    /// through a second intake, in arrival order.
    pub history: Vec<HistoryRecord>,
    /// History entries beyond the bound, counted.
    pub history_dropped: u64,
    /// Where the webhook's token came from: `scenario`, `--alerts-token-file`,
    /// `MEDTWIN_ALERT_TOKEN` or `generated` (the token itself is never
    /// written down).
    pub token_source: String,
}

/// One intake.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IntakeReport {
    /// `webhook`, `acm`, `mqtt`, `fhir-subscription` or `fhir-poll`.
    pub kind: String,
    /// Where the target sends to it (URL, MLLP address, topic filter).
    pub address: String,
    /// Alerts it received (and the inbox accepted).
    pub received: u64,
    /// Its own counters (`heartbeats`, `gaps`, `silences`, ...).
    pub counters: BTreeMap<String, u64>,
}

/// A later phase of an alarm, or an alert seen again.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HistoryRecord {
    /// The intake it came through.
    pub via: String,
    /// The alert's id, when it has one.
    pub alert_id: Option<String>,
    /// The patient.
    pub patient_id: String,
    /// The alert's kind.
    pub kind: String,
    /// `continue`, `update`, `escalate`, `end`, or `seen-again`.
    pub phase: String,
    /// The alarm's state, when the protocol says.
    pub state: Option<String>,
    /// When it arrived, simulated ms.
    pub at_ms: u64,
}

/// How far the harness itself can be trusted on this machine: its build,
/// its lag against the schedule, its CPU.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HarnessReport {
    /// `release` or `debug` (a debug build lags at high speeds).
    pub build: String,
    /// Send lag against the schedule, in simulated ms (timed clocks).
    pub send_lag_sim_ms: Option<Lag>,
    /// The lag p99 beyond which latencies are not trusted: 1 % of the
    /// tightest deadline (simulated ms; timed clocks).
    pub lag_bound_sim_ms: Option<f64>,
    /// False when the lag passed its bound: no latency can then pass.
    pub reliable: bool,
    /// CPU time of the whole medtwin process, s.
    pub cpu_s: f64,
    /// CPU time over wall time (1.0 = one core busy all the run).
    pub cpu_cores_used: f64,
    /// Why the run is not reliable, in words.
    pub notes: Vec<String>,
    /// The memory the run was estimated to need before it started, bytes.
    pub memory_estimate_bytes: u64,
    /// Peak resident memory of the medtwin process, bytes (Linux `VmHWM`;
    /// in a suite, of every run so far).
    pub peak_rss_bytes: Option<u64>,
    /// The wall-time deadline, s.
    pub max_wall_s: f64,
}

/// A run that stopped before its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Interruption {
    /// `sigint`, `sigterm` or `deadline` (`--max-wall`).
    pub reason: String,
    /// Simulated time reached, ms; alerts were judged up to here.
    pub at_sim_ms: u64,
    /// Wall time from the start to the stop, s.
    pub after_wall_s: f64,
}

/// The run's verdict (and each expectation's: `pass` or `fail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// At least one did not.
    Fail,
    /// The target answered (almost) none of the telemetry: too little was
    /// accepted to judge its alerts, and most of it got no answer at all.
    TargetUnreachable,
    /// The target answered, but refused (4xx, 5xx) too much of the
    /// telemetry to judge its alerts.
    TargetRefusedData,
    /// The run stopped before its end (SIGINT, SIGTERM, or its wall-time
    /// deadline): what it holds is everything counted until then.
    Interrupted,
}

impl Verdict {
    /// `pass`, `fail`, `target unreachable` or `target refused data`.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::TargetUnreachable => "target unreachable",
            Verdict::TargetRefusedData => "target refused data",
            Verdict::Interrupted => "interrupted",
        }
    }
}

/// A condition episode, from the truth log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EpisodeRecord {
    /// Patient id.
    pub patient: String,
    /// Condition name.
    pub condition: String,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// Severity in (0, 1].
    pub severity: f64,
    /// When it ended, simulated ms (`None`: still going at the end).
    #[serde(default)]
    pub end_ms: Option<u64>,
    /// Why it ended: `duration`, `treated` or `recovered`.
    #[serde(default)]
    pub end_reason: Option<String>,
    /// The first moment after this onset each clinical criterion held in
    /// the true physiology, simulated ms, by criterion name.
    #[serde(default)]
    pub criteria: BTreeMap<String, u64>,
}

/// An intervention parameter: a number, or the chosen option's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    /// A numeric parameter.
    Number(f64),
    /// A choice parameter's option.
    Choice(String),
}

/// An intervention given, from the truth log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InterventionRecord {
    /// Patient id.
    pub patient: String,
    /// Intervention name.
    pub kind: String,
    /// When, simulated ms.
    pub at_ms: u64,
    /// Its parameters by name.
    pub params: BTreeMap<String, ParamValue>,
    /// For a shock or CPR: whether circulation returned.
    pub rosc: Option<bool>,
}

/// The moments on the way from onset to alert, simulated ms; each `None`
/// when it did not happen or is not known.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Times {
    /// Condition onset.
    pub onset_ms: Option<u64>,
    /// First moment the clinical criterion held in the true physiology.
    pub criterion_ms: Option<u64>,
    /// First abnormal measurement (taken by the device).
    pub measured_ms: Option<u64>,
    /// When that measurement reached the target (`None`: lost or in flight).
    pub measured_delivered_ms: Option<u64>,
    /// First abnormal delivery: when the data the target received first
    /// showed the abnormality.
    pub delivered_ms: Option<u64>,
    /// When the harness actually sent that delivery (simulated time; the
    /// difference to `delivered_ms` is the harness's own lag).
    #[serde(default)]
    pub sent_ms: Option<u64>,
}

/// What became of one obligation or one alert.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
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
    /// A further alert for an obligation already answered, while its cause
    /// still held (plus the re-arm window).
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

/// Where a hit's time went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Decomposition {
    /// Onset to criterion.
    pub physiology_ms: Option<u64>,
    /// Criterion (else onset) to the first abnormal measurement.
    pub device_ms: Option<u64>,
    /// That measurement to its delivery (`None` if it was lost).
    pub network_ms: Option<u64>,
    /// The harness's own lag: that delivery's scheduled time to its send.
    #[serde(default)]
    pub harness_ms: Option<u64>,
    /// The send to the alert.
    pub backend_ms: Option<u64>,
}

/// One line of an expectation's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    #[serde(flatten)]
    pub times: Times,
    /// Latency decomposition, for hits and late alerts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decomposition: Option<Decomposition>,
    /// Why an obligation is inconclusive, or other remarks.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// Latency percentiles (nearest rank), ms; `None` when nothing was alerted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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

/// Counts and rates of a set of outcomes (one expectation, one alert kind,
/// or the whole run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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

/// The result of one expectation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// False alerts tolerated (`None`: no count limit, a rate budget applies).
    pub max_false_alerts: Option<u64>,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Counts, rates and latency.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Why it failed, in words.
    pub failures: Vec<String>,
    /// Every obligation and alert, in time order.
    pub outcomes: Vec<Outcome>,
}

/// Metrics per alert kind (over the expectations naming it) and overall.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Summary {
    /// Per alert kind.
    pub by_kind: BTreeMap<String, Metrics>,
    /// Over every expectation.
    pub overall: Metrics,
}

/// A patient's vitals, downsampled: per bucket, the last value measured of
/// each vital (`None`: none), and how many measurements of the patient were
/// delivered and lost in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Series {
    /// Bucket width, ms; bucket `i` starts at `i * bucket_ms`.
    pub bucket_ms: u64,
    /// Vital code → values per bucket, to 0.1 (`hr`, `spo2`, `rr`, `sbp`,
    /// `dbp`, `map`, `temp`).
    pub vitals: BTreeMap<String, Vec<Option<f64>>>,
    /// Deliveries per bucket.
    pub delivered: Vec<u32>,
    /// Losses per bucket.
    pub lost: Vec<u32>,
}

/// What the transport did with the delivered measurements: `sent =
/// accepted + refused + failed + not_sent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportStats {
    /// Messages handed to the transport (every delivery, duplicates
    /// included).
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx or 5xx, after any retries.
    pub refused: u64,
    /// No answer, or an unreadable one, after any retries.
    pub failed: u64,
    /// Never sent: the circuit breaker was open (`target_down`), or the run
    /// stopped (`interrupted`).
    pub not_sent: u64,
    /// Every message not accepted, by final cause: `connection_refused`,
    /// `timeout`, `reset`, `closed`, `connect`, `io`, `http_<status>`,
    /// `malformed_answer`, `target_down`, `interrupted`, `hl7_ae`,
    /// `hl7_ar`, `hl7_ce`, `hl7_cr`, `mqtt_rc_<code>`.
    pub by_cause: BTreeMap<String, u64>,
    /// Messages not accepted whose refusal named the protocol's own
    /// sub-cause, by `<cause>: <reason>` (a FHIR `OperationOutcome` issue
    /// code, an HL7 ERR code, an MQTT reason code).
    pub by_reason: BTreeMap<String, u64>,
    /// The carrier's own counters (reconnects, connections, ...).
    pub carrier: BTreeMap<String, u64>,
    /// Extra attempts made.
    pub retries: u64,
    /// Retries not made: the run's retry budget was spent.
    pub retries_denied: u64,
    /// Waits for a `Retry-After` the target asked for.
    pub retry_after_waits: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Probes the open breaker sent.
    pub breaker_probes: u64,
    /// Up to five examples of failures, each naming its cause.
    pub samples: Vec<String>,
    /// Waveform chunks, counted apart from the measurements (present only
    /// when the run streamed waveforms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waveforms: Option<WaveformChunks>,
}

/// What the transport did with the waveform chunks (one per waveform
/// device per block of at most 1 s): `sent = accepted + refused + failed +
/// not_sent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WaveformChunks {
    /// Chunks handed to the transport.
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx or 5xx, after any retries.
    pub refused: u64,
    /// No answer, or an unreadable one, after any retries.
    pub failed: u64,
    /// Never sent: the breaker was open, or the run stopped.
    pub not_sent: u64,
    /// Every chunk not accepted, by final cause (as `by_cause`).
    pub by_cause: BTreeMap<String, u64>,
}

/// Lateness of sends against their due time, ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Lag {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// What the webhook refused, by reason, with a few examples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Refused {
    /// Missing or wrong bearer token (401; the body is not read).
    pub unauthorized: u64,
    /// Body that is not a valid alert (400).
    pub malformed: u64,
    /// Payload the scenario's mapping could not read.
    #[serde(default)]
    pub unmapped: u64,
    /// Body over 64 KiB (413).
    pub too_large: u64,
    /// Body cut off part-way.
    pub cut_off: u64,
    /// Body slower than the body-read timeout (408).
    pub body_timeout: u64,
    /// Connections whose request headers were slower than the timeout.
    pub header_timeout: u64,
    /// Connections closed on arrival: too many were open.
    pub too_many_connections: u64,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: u64,
    /// Alerts beyond the webhook's limit.
    pub overflow: u64,
    /// Up to five examples: reason and the first bytes of the body.
    pub samples: Vec<String>,
}

impl Refused {
    /// Total refused.
    pub fn total(&self) -> u64 {
        self.unauthorized
            + self.malformed
            + self.too_large
            + self.cut_off
            + self.body_timeout
            + self.header_timeout
            + self.too_many_connections
            + self.dropped_at_shutdown
            + self.overflow
    }
}

/// The embedded reference backend's counters (its `GET /v1/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BackendCounters {
    /// Telemetry messages accepted.
    pub accepted: u64,
    /// Refusals by reason (`bad_json`, `wrong_schema`, `unknown_vital`,
    /// `unit_mismatch`, `loinc_mismatch`, `bad_time`, `bad_patient_id`,
    /// `too_large`, `body_unreadable`, `too_many_patients`, `unauthorized`,
    /// `body_timeout`, `bad_hl7`, `bad_fhir`).
    pub rejected: BTreeMap<String, u64>,
    /// Samples ignored as older than their parameter's newest by the
    /// smoothing span or more.
    pub out_of_order: u64,
    /// Observations it has no vital for (an HL7 OBX with an MDC code it
    /// does not score), skipped and counted.
    #[serde(default)]
    pub unknown_metrics: u64,
    /// Patients known.
    pub patients: u64,
    /// Alerts raised by the scorer (before fault injection).
    pub alerts_emitted: u64,
    /// Alerts withheld by the drop fault.
    pub alerts_dropped_by_fault: u64,
    /// Extra copies queued by the duplicate fault.
    #[serde(default)]
    pub alerts_duplicated_by_fault: u64,
    /// Alerts raised with no cause by the spurious fault.
    #[serde(default)]
    pub alerts_spurious_by_fault: u64,
    /// Alerts the webhook answered with 2xx.
    pub alerts_delivered: u64,
    /// Alerts given up on.
    pub alerts_failed: u64,
    /// Alerts not queued because the delivery queue was full.
    pub alerts_queue_overflow: u64,
    /// Delivery attempts repeated.
    pub alerts_retried: u64,
    /// Alerts still queued when the grace period ran out.
    pub alerts_pending: u64,
    /// Waveform chunks accepted (`POST /v1/waveforms`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waveform_chunks: u64,
    /// Samples in them (every channel); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waveform_samples: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
