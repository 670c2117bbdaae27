//! What the checker reads: the truth log's episodes and interventions, the
//! target's alerts placed in simulated time, and the obligations the truth
//! side derived (one per alert owed).

use std::collections::BTreeMap;

/// A condition episode, from the truth log.
#[derive(Clone, Debug, PartialEq)]
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
    pub end_ms: Option<u64>,
    /// Why it ended: `duration`, `treated` or `recovered`.
    pub end_reason: Option<String>,
    /// The first moment after this onset each clinical criterion held in
    /// the true physiology, simulated ms, by criterion name.
    pub criteria: BTreeMap<String, u64>,
}

/// An intervention given, from the truth log.
#[derive(Clone, Debug, PartialEq)]
pub struct InterventionRecord {
    /// Patient id.
    pub patient: String,
    /// Intervention name.
    pub kind: String,
    /// When, simulated ms.
    pub at_ms: u64,
    /// Its parameters by name (numbers, or the chosen option's name).
    pub params: BTreeMap<String, ParamValue>,
    /// For a shock or CPR: whether circulation returned.
    pub rosc: Option<bool>,
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

/// The moments on the way from onset to alert, simulated ms; each `None`
/// when it did not happen or is not known.
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// showed the abnormality (its simulated delivery time).
    pub delivered_ms: Option<u64>,
    /// When the harness actually sent that delivery to the target, in
    /// simulated time: `delivered_ms` plus the harness's own send lag.
    pub sent_ms: Option<u64>,
}

/// One alert owed.
#[derive(Clone, Debug, PartialEq)]
pub struct Obligation {
    /// The patient.
    pub patient: String,
    /// Alerts at or after this may answer it.
    pub from_ms: u64,
    /// Latency and the deadline count from here; `None` when unknown.
    pub reference_ms: Option<u64>,
    /// When its cause stopped holding (the rule's last delivery on which it
    /// held, the episode's end); `None` while it still held at the end of
    /// the run. A repeat alert is a duplicate until this plus the re-arm
    /// window, a false alert after.
    pub holds_until_ms: Option<u64>,
    /// Why the reference is unknown.
    pub unresolved: Option<String>,
    /// The way from onset to the data the target received.
    pub times: Times,
}

/// An intervention parameter's value: a number, or the name of the chosen
/// option.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A numeric parameter (dose, rate, duration in its unit).
    Number(f64),
    /// A choice parameter: the option's name.
    Choice(String),
}
