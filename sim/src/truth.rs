//! What really happened: the records one step produces. The harness streams
//! them out (to the transport, the checker and the truth digest); the twin
//! keeps none of them beyond the step.

use serde::Serialize;

use crate::clinical::{ConditionKind, InterventionKind, Params};
use crate::config::DeviceKind;
use crate::scores::Criterion;
use crate::vitals::Vital;

/// One value of a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Reading {
    /// Which vital.
    pub vital: Vital,
    /// The reported value, in [`Vital::unit`].
    pub value: f64,
}

/// Up to three readings taken together (SpO2 + pulse; systolic, diastolic,
/// mean), stored inline so a measurement never allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readings {
    len: u8,
    items: [Reading; 3],
}

impl Readings {
    const EMPTY: Reading = Reading {
        vital: Vital::Hr,
        value: 0.0,
    };

    /// Readings from a slice of at most three.
    pub fn new(readings: &[Reading]) -> Readings {
        assert!(
            readings.len() <= 3,
            "a measurement carries at most three readings"
        );
        let mut items = [Self::EMPTY; 3];
        items[..readings.len()].copy_from_slice(readings);
        Readings {
            len: readings.len() as u8,
            items,
        }
    }

    /// The readings.
    pub fn as_slice(&self) -> &[Reading] {
        &self.items[..usize::from(self.len)]
    }
}

impl Serialize for Readings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

/// A measurement a device took.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Index of the device (see `Twin::device_name`).
    pub device_idx: u32,
    /// Index of the patient it is attached to.
    pub patient_idx: u32,
    /// What kind of device took it.
    #[serde(serialize_with = "device_kind_name")]
    pub kind: DeviceKind,
    /// Per-device sequence number, from 0.
    pub seq: u64,
    /// Simulated time the measurement was taken, ms.
    pub measured_ms: u64,
    /// The values, as the device reports them (with its error).
    pub readings: Readings,
}

fn device_kind_name<S: serde::Serializer>(kind: &DeviceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn condition_name<S: serde::Serializer>(kind: &ConditionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// A measurement that reached the far end of the network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Delivery {
    /// What was delivered.
    pub measurement: Measurement,
    /// Simulated time it left for the backend (later than measured when a
    /// gateway held it), ms.
    pub sent_ms: u64,
    /// Simulated time it arrived at the backend's edge, ms.
    pub delivered_ms: u64,
}

/// Why a measurement never arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossCause {
    /// Dropped by the network hop.
    LinkLoss,
    /// Evicted from (or refused by) a full gateway buffer.
    BufferOverflow,
    /// Sent into an outage with no gateway buffer to hold it.
    Outage,
    /// Not taken: the sensor was off the patient.
    SensorOff,
    /// Not taken: the battery was dead.
    BatteryDead,
}

impl LossCause {
    /// Every cause, in report order.
    pub const ALL: [LossCause; 5] = [
        LossCause::LinkLoss,
        LossCause::BufferOverflow,
        LossCause::Outage,
        LossCause::SensorOff,
        LossCause::BatteryDead,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            LossCause::LinkLoss => "link_loss",
            LossCause::BufferOverflow => "buffer_overflow",
            LossCause::Outage => "outage",
            LossCause::SensorOff => "sensor_off",
            LossCause::BatteryDead => "battery_dead",
        }
    }
}

/// A measurement that was lost, and why.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Loss {
    /// Device that took it.
    pub device_idx: u32,
    /// Its sequence number.
    pub seq: u64,
    /// Simulated time it was lost, ms.
    pub lost_ms: u64,
    /// Why.
    pub cause: LossCause,
}

/// A condition started on a patient.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EpisodeOnset {
    /// The patient.
    pub patient_idx: u32,
    /// Which condition.
    #[serde(serialize_with = "condition_name")]
    pub condition: ConditionKind,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// Severity in (0, 1].
    pub severity: f64,
    /// Onset to full severity, simulated ms.
    pub ramp_ms: u64,
}

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its scenario `duration` ran out (a paroxysm stopped, a drug wore off).
    Duration,
    /// Treatment resolved it (antibiotics, return of circulation).
    Treated,
    /// The physiology returned to normal (e.g. glucose back in range).
    Recovered,
}

/// A condition that ended on a patient.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EpisodeEnd {
    /// The patient.
    pub patient_idx: u32,
    /// Which condition.
    #[serde(serialize_with = "condition_name")]
    pub condition: ConditionKind,
    /// When it began, simulated ms (identifies the episode).
    pub onset_ms: u64,
    /// When it ended, simulated ms.
    pub end_ms: u64,
    /// Why.
    pub reason: EndReason,
}

/// An intervention given to a patient.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct InterventionGiven {
    /// The patient.
    pub patient_idx: u32,
    /// What was given.
    #[serde(serialize_with = "intervention_name")]
    pub kind: InterventionKind,
    /// When, simulated ms.
    pub at_ms: u64,
    /// Its parameters, in the order of [`InterventionKind::params`].
    #[serde(serialize_with = "param_values")]
    pub params: Params,
    /// For a defibrillation or a CPR cycle: whether circulation returned.
    pub rosc: Option<bool>,
}

fn intervention_name<S: serde::Serializer>(
    kind: &InterventionKind,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn param_values<S: serde::Serializer>(params: &Params, s: S) -> Result<S::Ok, S::Error> {
    params.0.serialize(s)
}

/// The first moment a clinical criterion held in the true physiology,
/// since the start or since the patient's latest episode onset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CriterionOnset {
    /// The patient.
    pub patient_idx: u32,
    /// Which criterion.
    pub criterion: Criterion,
    /// When it first held, simulated ms.
    pub at_ms: u64,
}

/// Everything one step produced, in a fixed order: each list is sorted by
/// time and then by stable device or patient order, so the same scenario
/// and seed give the same records in the same order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOutput {
    /// Simulated time at the end of the step, ms.
    pub now_ms: u64,
    /// Conditions that began during the step.
    pub onsets: Vec<EpisodeOnset>,
    /// Conditions that ended during the step.
    pub ends: Vec<EpisodeEnd>,
    /// Interventions given during the step.
    pub interventions: Vec<InterventionGiven>,
    /// Criteria that first held during the step.
    pub criteria: Vec<CriterionOnset>,
    /// Measurements taken during the step.
    pub measurements: Vec<Measurement>,
    /// Measurements that arrived during the step.
    pub deliveries: Vec<Delivery>,
    /// Measurements lost during the step.
    pub losses: Vec<Loss>,
}

impl StepOutput {
    pub(crate) fn clear(&mut self) {
        self.onsets.clear();
        self.ends.clear();
        self.interventions.clear();
        self.criteria.clear();
        self.measurements.clear();
        self.deliveries.clear();
        self.losses.clear();
    }
}
