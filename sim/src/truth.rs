//! What really happened: the records one step produces. The harness streams
//! them out (to the transport, the checker and the truth digest); the twin
//! keeps none of them beyond the step.

use serde::Serialize;

use crate::clinical::{ConditionKind, InterventionKind, Params};
use crate::command::Command;
use crate::config::DeviceKind;
use crate::scores::Criterion;
use crate::vitals::Vital;
use crate::waveform::{BeatKind, EcgRhythm};

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

    /// The readings, to change their values.
    pub fn as_mut_slice(&mut self) -> &mut [Reading] {
        &mut self.items[..usize::from(self.len)]
    }

    /// Whether there are none (a message with only an alarm or an event).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Serialize for Readings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

/// A message a device produced: readings (possibly none), and what the
/// device says about itself (a technical alarm, an event). The twin also
/// records what it knows and the device does not: the true time and
/// whether an artifact or a fault shaped the values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Index of the device (see `Twin::device_name`).
    pub device_idx: u32,
    /// Index of the patient it is attached to.
    pub patient_idx: u32,
    /// What class of device took it.
    #[serde(serialize_with = "device_kind_name")]
    pub kind: DeviceKind,
    /// Per-device sequence number, from 0.
    pub seq: u64,
    /// Simulated time the measurement was taken, ms (true time).
    pub measured_ms: u64,
    /// The time on the device's own clock.
    pub device_time: DeviceTime,
    /// The values, as the device reports them (with its error).
    pub readings: Readings,
    /// What shaped the values (truth only: not on the wire).
    pub quality: Quality,
    /// A technical alarm the device raises with this message.
    pub alarm: Option<TechAlarm>,
    /// An event the device reports (dose taken, pill ingested...).
    pub event: Option<DeviceEvent>,
}

/// The time a device stamps on a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceTime {
    /// Synchronised at the start, then drifting: simulated ms (may run
    /// ahead of or behind the true time).
    Synced(i64),
    /// The clock was reset: ms since its factory epoch (2000-01-01T00:00:00Z).
    SinceEpoch(u64),
}

/// What shaped a message's values, as only the twin knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// The device's ordinary error only.
    #[default]
    Good,
    /// A motion artifact (false lows on SpO2, spurious rates).
    Motion,
    /// Signal lost to low perfusion: no values.
    LowPerfusion,
    /// ECG electrodes off: no values.
    LeadOff,
    /// A CGM compression low (the patient lay on the sensor).
    Compression,
    /// Firmware fault: repeated last values.
    Stuck,
    /// Firmware fault: values in the wrong unit.
    WrongUnit,
}

impl Quality {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Motion => "motion",
            Quality::LowPerfusion => "low_perfusion",
            Quality::LeadOff => "lead_off",
            Quality::Compression => "compression",
            Quality::Stuck => "stuck",
            Quality::WrongUnit => "wrong_unit",
        }
    }
}

/// Device technical alarms (IEC 60601-1-8 "technical" as opposed to
/// physiological alarms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TechAlarm {
    /// Battery below the model's low threshold.
    LowBattery,
    /// The sensor came off the patient.
    SensorOff,
    /// ECG electrodes lost contact.
    LeadOff,
    /// Optical signal too weak (low perfusion).
    LowPerfusion,
    /// A CGM sensor reached the end of its life.
    SensorExpired,
    /// Infusion line occluded; the pump stopped.
    Occlusion,
    /// A cuff found no pulse oscillations: no reading this cycle.
    MeasurementFailed,
}

impl TechAlarm {
    /// Every alarm, in report order.
    pub const ALL: [TechAlarm; 7] = [
        TechAlarm::LowBattery,
        TechAlarm::SensorOff,
        TechAlarm::LeadOff,
        TechAlarm::LowPerfusion,
        TechAlarm::SensorExpired,
        TechAlarm::Occlusion,
        TechAlarm::MeasurementFailed,
    ];

    /// The name used on the wire and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TechAlarm::LowBattery => "low_battery",
            TechAlarm::SensorOff => "sensor_off",
            TechAlarm::LeadOff => "lead_off",
            TechAlarm::LowPerfusion => "low_perfusion",
            TechAlarm::SensorExpired => "sensor_expired",
            TechAlarm::Occlusion => "occlusion",
            TechAlarm::MeasurementFailed => "measurement_failed",
        }
    }
}

/// An event a device reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceEvent {
    /// What happened.
    pub kind: EventKind,
    /// The scheduled dose it refers to, simulated ms.
    pub scheduled_ms: u64,
}

/// Kinds of device event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The patient took the dose from the dispenser.
    DoseTaken,
    /// The dose window closed without the dose being taken.
    DoseMissed,
    /// An ingestible sensor reported the pill swallowed.
    PillIngested,
}

impl EventKind {
    /// The name used on the wire and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::DoseTaken => "dose_taken",
            EventKind::DoseMissed => "dose_missed",
            EventKind::PillIngested => "pill_ingested",
        }
    }
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
    /// A resend of a message already delivered (its acknowledgement was
    /// lost): the backend sees the same device and seq twice.
    pub duplicate: bool,
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
    /// Not taken: the CGM sensor had expired.
    SensorExpired,
    /// Sent while the device was disconnected, with no room left on board.
    Disconnected,
}

impl LossCause {
    /// Every cause, in report order.
    pub const ALL: [LossCause; 7] = [
        LossCause::LinkLoss,
        LossCause::BufferOverflow,
        LossCause::Outage,
        LossCause::SensorOff,
        LossCause::BatteryDead,
        LossCause::SensorExpired,
        LossCause::Disconnected,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            LossCause::LinkLoss => "link_loss",
            LossCause::BufferOverflow => "buffer_overflow",
            LossCause::Outage => "outage",
            LossCause::SensorOff => "sensor_off",
            LossCause::BatteryDead => "battery_dead",
            LossCause::SensorExpired => "sensor_expired",
            LossCause::Disconnected => "disconnected",
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

/// A clinically defined abnormal state (a [`Criterion`] holding) that
/// began or ended on a patient, whatever caused it: a scheduled condition,
/// a meal, the patient's own variability. Every state that begins ends with
/// a record of its own (unless the run ends first); a relapse within the
/// criterion's clear time ([`Criterion::clear_s`]) continues the state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StateChange {
    /// The patient.
    pub patient_idx: u32,
    /// Which criterion.
    pub criterion: Criterion,
    /// `onset` or `end`.
    pub change: Change,
    /// For an onset, the first moment the criterion held, simulated ms; for
    /// an end, the first moment it no longer held (to the second), recorded
    /// once it has not held again for the clear time.
    pub at_ms: u64,
}

/// Whether a [`StateChange`] begins or ends its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The state began.
    Onset,
    /// The state ended.
    End,
}

/// A command applied to the twin (see [`crate::command`]): from this step
/// on, the twin treats it as if it had been scheduled at `at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandApplied {
    /// The time it was stamped with, simulated ms (within or, for a command
    /// stamped exactly at the end of the previous step, at the start of the
    /// step that applied it).
    pub at_ms: u64,
    /// The patient it addressed.
    pub patient_idx: u32,
    /// What it was.
    pub command: Command,
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
    /// Commands applied at the start of the step, by (time, patient stable
    /// id, arrival).
    pub commands: Vec<CommandApplied>,
    /// Criteria that first held during the step (since the start or the
    /// patient's latest episode onset).
    pub criteria: Vec<CriterionOnset>,
    /// Abnormal states that began or ended during the step, episode or not.
    pub states: Vec<StateChange>,
    /// Measurements taken during the step.
    pub measurements: Vec<Measurement>,
    /// Measurements that arrived during the step.
    pub deliveries: Vec<Delivery>,
    /// Measurements lost during the step.
    pub losses: Vec<Loss>,
    /// True beats whose R peak fell in the step (patients wearing a
    /// waveform device only), by (time, patient stable id).
    pub beats: Vec<BeatMark>,
    /// Rhythms the ECG began to show in the step (the first at the first
    /// step), by (time, patient stable id).
    pub rhythms: Vec<RhythmMark>,
    /// Blocks of waveform samples recorded in the step, by (device stable
    /// id, first sample); their samples are in `wave_samples`.
    pub waves: Vec<WaveBlock>,
    /// The samples of `waves`, each block channel-major.
    pub wave_samples: Vec<f32>,
}

/// A true beat.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BeatMark {
    /// Whose.
    pub patient_idx: u32,
    /// R peak, simulated seconds from the start.
    pub r_s: f64,
    /// Normal or ventricular.
    #[serde(serialize_with = "beat_code")]
    pub kind: BeatKind,
}

fn beat_code<S: serde::Serializer>(kind: &BeatKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_char(kind.code())
}

/// A rhythm beginning, as the ECG shows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RhythmMark {
    /// Whose.
    pub patient_idx: u32,
    /// When, simulated seconds from the start.
    pub at_s: f64,
    /// The rhythm.
    #[serde(serialize_with = "rhythm_label")]
    pub rhythm: EcgRhythm,
}

fn rhythm_label<S: serde::Serializer>(rhythm: &EcgRhythm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rhythm.label())
}

/// A block of one device's waveform samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WaveBlock {
    /// Which device (its channels and rate: `Twin::waveform`).
    pub device_idx: u32,
    /// Whose.
    pub patient_idx: u32,
    /// Index of the first sample since the start (sample `k` is at
    /// `k / rate` simulated seconds).
    pub first_sample: u64,
    /// Samples per channel.
    pub len: u32,
    /// Where the block's samples start in [`StepOutput::wave_samples`]:
    /// channel `c` is `offset + c·len .. offset + (c+1)·len`.
    pub offset: u32,
    /// Whether the electrodes were off (the ECG is flat).
    pub lead_off: bool,
    /// The heart rate the device's own QRS detector counted by the end of
    /// the block, /min (`None` before it has counted two beats, or for a
    /// device with no ECG channel).
    pub hr_bpm: Option<f32>,
}

impl WaveBlock {
    /// Channel `c`'s samples, from the step's pool.
    pub fn channel<'a>(&self, pool: &'a [f32], c: usize) -> &'a [f32] {
        let start = self.offset as usize + c * self.len as usize;
        &pool[start..start + self.len as usize]
    }
}

impl StepOutput {
    pub(crate) fn clear(&mut self) {
        self.onsets.clear();
        self.ends.clear();
        self.interventions.clear();
        self.commands.clear();
        self.criteria.clear();
        self.states.clear();
        self.measurements.clear();
        self.deliveries.clear();
        self.losses.clear();
        self.beats.clear();
        self.rhythms.clear();
        self.waves.clear();
        self.wave_samples.clear();
    }
}
