//! The twin's configuration: everything resolved, no defaults left to apply
//! and no file positions. The harness builds it from a scenario file.

use crate::clinical::{ConditionKind, InterventionKind, Params};
use crate::error::ConfigError;
use crate::profile::ProfileSpec;
use crate::spec::DeviceSpec;
use crate::vitals::Vital;
use crate::waveform::WaveformConfig;

/// A resolved simulation: population, schedule of events, step and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Scenario seed; every random stream derives from it.
    pub seed: u64,
    /// Fixed step in simulated milliseconds.
    pub step_ms: u64,
    /// Simulated duration in milliseconds; the twin runs `ceil(duration / step)` steps.
    pub duration_ms: u64,
    /// Groups of similar patients.
    pub cohorts: Vec<CohortConfig>,
    /// Local time of day at simulated time 0, ms after midnight (drives
    /// the circadian rhythm and the profiles' meal times).
    pub start_ms_of_day: u64,
    /// Conditions that start at given times on given patients.
    pub events: Vec<EventConfig>,
    /// Interventions given at given times to given patients.
    pub interventions: Vec<InterventionConfig>,
    /// Faults injected at given times on given patients' equipment.
    pub faults: Vec<FaultConfig>,
    /// Which part of the population this twin simulates.
    pub shard: Shard,
}

/// A fault injected on purpose.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// When it starts, simulated ms.
    pub at_ms: u64,
    /// Whose equipment.
    pub who: PatientSelector,
    /// What fails.
    pub kind: FaultKind,
    /// Device faults: only devices of this model or class (`None`: every device).
    pub device: Option<String>,
    /// How long it lasts, simulated ms.
    pub duration_ms: u64,
}

/// Kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The uplink behind the patient's devices is down: a gateway buffers
    /// (and evicts when full); without one, messages are lost.
    NetworkOutage,
    /// The sensor is off the patient: scheduled measurements are not taken
    /// (lost, cause `sensor_off`).
    SensorOff,
    /// The battery is dead until replaced at the fault's end: scheduled
    /// measurements are lost (cause `battery_dead`).
    BatteryDead,
    /// Firmware fault: the device repeats its last readings.
    StuckValue,
    /// Firmware fault: values in the wrong unit under the right label
    /// (°F as Cel, mmol/L as mg/dL, lb as kg, kPa as mmHg...).
    WrongUnit,
    /// The device clock resets to its factory epoch (2000-01-01) and
    /// counts from there until the fault ends and it resynchronises.
    ClockReset,
    /// The device loses its link (out of BLE range): it keeps up to its
    /// model's `memory` messages on board and sends them on reconnect.
    Disconnect,
    /// An infusion line occludes: the pump stops delivering and alarms
    /// after its detection delay.
    Occlusion,
}

impl FaultKind {
    /// Every kind, for listings and suggestions.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::NetworkOutage,
        FaultKind::SensorOff,
        FaultKind::BatteryDead,
        FaultKind::StuckValue,
        FaultKind::WrongUnit,
        FaultKind::ClockReset,
        FaultKind::Disconnect,
        FaultKind::Occlusion,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NetworkOutage => "network_outage",
            FaultKind::SensorOff => "sensor_off",
            FaultKind::BatteryDead => "battery_dead",
            FaultKind::StuckValue => "stuck_value",
            FaultKind::WrongUnit => "wrong_unit",
            FaultKind::ClockReset => "clock_reset",
            FaultKind::Disconnect => "disconnect",
            FaultKind::Occlusion => "occlusion",
        }
    }

    /// One line for `medtwin list networks`.
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::NetworkOutage => {
                "the patient's uplink is down: a gateway buffers (and evicts when full), without one messages are lost"
            }
            FaultKind::SensorOff => {
                "the sensor is off the patient: scheduled measurements are lost (cause sensor_off)"
            }
            FaultKind::BatteryDead => {
                "the battery is dead until replaced at the fault's end: measurements lost (cause battery_dead)"
            }
            FaultKind::StuckValue => {
                "firmware fault: the device keeps sending its last readings (a negative test for backends)"
            }
            FaultKind::WrongUnit => {
                "firmware fault: values in the wrong unit under the right label (°F as Cel, mmol/L as mg/dL, lb as kg)"
            }
            FaultKind::ClockReset => {
                "the device clock restarts at its epoch (2000-01-01) until the fault ends and it resynchronises"
            }
            FaultKind::Disconnect => {
                "the device loses its link: it keeps up to `memory` messages on board (oldest dropped), sends them on reconnect"
            }
            FaultKind::Occlusion => {
                "infusion line occluded: the pump stops (rate 0) and alarms after its detection delay"
            }
        }
    }

    /// Whether it acts on devices (rather than the network).
    pub fn on_devices(self) -> bool {
        !matches!(self, FaultKind::NetworkOutage)
    }
}

/// Shard `index` of `count`: the patients whose position in the whole
/// population (cohorts in order) is `index` modulo `count`, with their
/// devices. Every shard gives exactly the records the unsharded run gives
/// for its patients and devices, so shards can run on separate threads or
/// machines and their outputs merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// The whole population.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the patient at `position` in the whole population is ours.
    pub fn owns(self, position: u64) -> bool {
        position % u64::from(self.count.max(1)) == u64::from(self.index)
    }
}

/// A group of patients sharing a profile, a device set and a network.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortConfig {
    /// Unique name; patients are called `<name>-<index:03>`.
    pub name: String,
    /// Number of patients.
    pub count: u32,
    /// Population the baselines are drawn from.
    pub profile: ProfileSpec,
    /// Devices attached to every patient of the cohort.
    pub devices: Vec<DeviceConfig>,
    /// The network hop every device of the cohort sends through.
    pub network: NetworkConfig,
}

/// Device classes: what a device measures and how it behaves (code). A
/// catalogue entry ([`DeviceSpec`]) names a model of a class with its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    /// Pulse oximeter (finger clip or ring): SpO2 and pulse rate.
    PulseOximeter,
    /// Single-lead ECG patch: heart rate and impedance respiratory rate.
    EcgPatch,
    /// Continuous glucose monitor: interstitial glucose.
    Cgm,
    /// Oscillometric blood-pressure cuff: systolic, diastolic, mean.
    BpCuff,
    /// Cuffless (PPG-based) blood-pressure patch: calibrated, then drifts.
    CufflessBp,
    /// Thermometer or temperature patch: core temperature estimate.
    Thermometer,
    /// Weight scale (heart-failure fluid watch).
    WeightScale,
    /// Smart medication dispenser: dose-taken and dose-missed events.
    MedDispenser,
    /// Smart pill (ingestible sensor): ingestion events.
    SmartPill,
    /// Infusion pump: delivered rate, occlusion alarm.
    InfusionPump,
    /// Respiration monitor (impedance or pleth-derived): respiratory rate.
    RespMonitor,
    /// A nurse's observation round (ward or community nurse, virtual ward):
    /// what a charting system knows and no sensor measures: the level of
    /// consciousness (ACVPU), the supplemental oxygen flow and the
    /// patient's NEWS2 SpO2 scale.
    NurseObs,
}

impl DeviceKind {
    /// Every class, for listings and suggestions.
    pub const ALL: [DeviceKind; 12] = [
        DeviceKind::PulseOximeter,
        DeviceKind::EcgPatch,
        DeviceKind::Cgm,
        DeviceKind::BpCuff,
        DeviceKind::CufflessBp,
        DeviceKind::Thermometer,
        DeviceKind::WeightScale,
        DeviceKind::MedDispenser,
        DeviceKind::SmartPill,
        DeviceKind::InfusionPump,
        DeviceKind::RespMonitor,
        DeviceKind::NurseObs,
    ];

    /// The class name used in catalogue files.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::PulseOximeter => "pulse_oximeter",
            DeviceKind::EcgPatch => "ecg_patch",
            DeviceKind::Cgm => "cgm",
            DeviceKind::BpCuff => "bp_cuff",
            DeviceKind::CufflessBp => "cuffless_bp",
            DeviceKind::Thermometer => "thermometer",
            DeviceKind::WeightScale => "weight_scale",
            DeviceKind::MedDispenser => "med_dispenser",
            DeviceKind::SmartPill => "smart_pill",
            DeviceKind::InfusionPump => "infusion_pump",
            DeviceKind::RespMonitor => "resp_monitor",
            DeviceKind::NurseObs => "nurse_observations",
        }
    }

    /// One line for listings.
    pub fn describe(self) -> &'static str {
        match self {
            DeviceKind::PulseOximeter => "pulse oximeter: SpO2 and pulse rate",
            DeviceKind::EcgPatch => "single-lead ECG patch: heart rate and respiratory rate",
            DeviceKind::Cgm => "continuous glucose monitor: interstitial glucose",
            DeviceKind::BpCuff => "oscillometric blood-pressure cuff: systolic, diastolic, mean",
            DeviceKind::CufflessBp => "cuffless blood-pressure patch: calibrated, then drifts",
            DeviceKind::Thermometer => "thermometer or temperature patch",
            DeviceKind::WeightScale => "weight scale",
            DeviceKind::MedDispenser => "smart medication dispenser: dose taken / missed events",
            DeviceKind::SmartPill => "smart pill: ingestion events",
            DeviceKind::InfusionPump => "infusion pump: delivered rate, occlusion alarm",
            DeviceKind::RespMonitor => "respiration monitor: respiratory rate",
            DeviceKind::NurseObs => {
                "nurse observations: level of consciousness (ACVPU), oxygen flow, NEWS2 SpO2 scale"
            }
        }
    }

    /// The vitals each reading channel reports, in channel order.
    pub fn channels(self) -> &'static [Vital] {
        match self {
            DeviceKind::PulseOximeter => &[Vital::Spo2, Vital::Hr],
            DeviceKind::EcgPatch => &[Vital::Hr, Vital::Rr],
            DeviceKind::Cgm => &[Vital::Glucose],
            DeviceKind::BpCuff | DeviceKind::CufflessBp => &[Vital::Sbp, Vital::Dbp],
            DeviceKind::Thermometer => &[Vital::Temp],
            DeviceKind::WeightScale => &[Vital::Weight],
            DeviceKind::MedDispenser | DeviceKind::SmartPill => &[],
            DeviceKind::InfusionPump => &[Vital::InfusionRate],
            DeviceKind::RespMonitor => &[Vital::Rr],
            DeviceKind::NurseObs => &[Vital::Acvpu, Vital::O2Flow, Vital::Spo2Scale],
        }
    }
}

/// One device on every patient of a cohort.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    /// The model.
    pub spec: DeviceSpec,
    /// Sampling interval in simulated milliseconds (at least one step).
    pub every_ms: u64,
    /// Battery charge at the start, percent (battery-powered models).
    pub battery_pct: f64,
    /// How long the device has been worn at the start, ms (a CGM sensor's
    /// age: warm-up and expiry count from insertion).
    pub age_ms: u64,
    /// Waveforms it records, when the scenario asks for them (`None`:
    /// none, the device reports values only).
    pub waveform: Option<WaveformConfig>,
}

impl DeviceConfig {
    /// The class's reference device at its default cadence, fully charged.
    pub fn of(class: DeviceKind) -> DeviceConfig {
        let spec = DeviceSpec::class_default(class);
        DeviceConfig {
            every_ms: spec.every_ms,
            battery_pct: 100.0,
            age_ms: spec.default_age_ms(),
            waveform: None,
            spec,
        }
    }

    /// The class of the model.
    pub fn kind(&self) -> DeviceKind {
        self.spec.class
    }
}

/// The path from a device to the backend: one hop with log-normal latency
/// and bursty (Gilbert-Elliott) loss, optionally behind a gateway that
/// stores and forwards while its uplink is down.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Median one-way latency in milliseconds.
    pub latency_median_ms: f64,
    /// 99th-percentile one-way latency in milliseconds (≥ the median).
    pub latency_p99_ms: f64,
    /// Long-run share of messages lost, in percent.
    pub loss_pct: f64,
    /// Mean length of a loss burst, in messages (Gilbert-Elliott bad-state
    /// sojourn). Up to `1 / (1 - loss)` the losses are independent.
    pub loss_burst: f64,
    /// A store-and-forward gateway between the devices and the uplink.
    pub gateway: Option<GatewayConfig>,
}

/// A gateway (phone, home hub, bedside hub) that buffers while its uplink
/// is down and flushes on reconnect.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayConfig {
    /// Messages the buffer holds.
    pub buffer: u32,
    /// What goes when the buffer is full.
    pub eviction: Eviction,
    /// Messages per second it forwards when flushing a backlog.
    pub flush_per_s: f64,
    /// Mean time between random uplink outages, ms (`None`: only scheduled ones).
    pub mtbf_ms: Option<u64>,
    /// Mean time to repair a random outage, ms.
    pub mttr_ms: u64,
}

/// Which message a full gateway buffer gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// The oldest buffered message makes room for the new one.
    DropOldest,
    /// The new message is refused.
    DropNewest,
}

impl NetworkConfig {
    /// No latency, no loss: the default when a cohort names no network.
    pub const IDEAL: NetworkConfig = NetworkConfig {
        latency_median_ms: 0.0,
        latency_p99_ms: 0.0,
        loss_pct: 0.0,
        loss_burst: 1.0,
        gateway: None,
    };

    /// Named network profiles. Orders of magnitude from docs/references.md
    /// ("Networks": loss is bursty, Gilbert-Elliott fits it better than
    /// independent drops); the exact figures, burst lengths included, are
    /// design choices to refine.
    pub const PROFILES: [(&'static str, NetworkConfig); 7] = [
        ("ideal", NetworkConfig::IDEAL),
        (
            "hospital_wifi",
            NetworkConfig {
                latency_median_ms: 15.0,
                latency_p99_ms: 120.0,
                loss_pct: 0.1,
                loss_burst: 3.0,
                gateway: None,
            },
        ),
        (
            "home_wifi",
            NetworkConfig {
                latency_median_ms: 30.0,
                latency_p99_ms: 250.0,
                loss_pct: 0.5,
                loss_burst: 4.0,
                gateway: None,
            },
        ),
        (
            "lte",
            NetworkConfig {
                latency_median_ms: 60.0,
                latency_p99_ms: 400.0,
                loss_pct: 1.0,
                loss_burst: 5.0,
                gateway: None,
            },
        ),
        (
            "5g",
            NetworkConfig {
                latency_median_ms: 20.0,
                latency_p99_ms: 150.0,
                loss_pct: 0.5,
                loss_burst: 3.0,
                gateway: None,
            },
        ),
        // BLE to a phone or hub: 10-100 ms, drops when out of range
        // (docs/references.md): long loss bursts (design choice).
        (
            "ble",
            NetworkConfig {
                latency_median_ms: 30.0,
                latency_p99_ms: 100.0,
                loss_pct: 2.0,
                loss_burst: 20.0,
                gateway: None,
            },
        ),
        // A moving ambulance: LTE with tail spikes of seconds on handover
        // (docs/references.md); the vehicle router stores and forwards through
        // short handover gaps (design choice: one every ~10 min, ~20 s).
        (
            "ambulance",
            NetworkConfig {
                latency_median_ms: 70.0,
                latency_p99_ms: 2_500.0,
                loss_pct: 2.0,
                loss_burst: 8.0,
                gateway: Some(GatewayConfig {
                    buffer: 20_000,
                    eviction: Eviction::DropOldest,
                    flush_per_s: 200.0,
                    mtbf_ms: Some(10 * 60_000),
                    mttr_ms: 20_000,
                }),
            },
        ),
    ];

    /// The profile called `name`, if there is one.
    pub fn named(name: &str) -> Option<NetworkConfig> {
        Self::PROFILES
            .iter()
            .find(|(profile, _)| *profile == name)
            .map(|(_, config)| config.clone())
    }
}

/// A condition starting at a given time on a selection of patients.
#[derive(Clone, Debug, PartialEq)]
pub struct EventConfig {
    /// Onset in simulated milliseconds from the start.
    pub at_ms: u64,
    /// Which patients.
    pub who: PatientSelector,
    /// Which condition.
    pub condition: ConditionKind,
    /// Severity in (0, 1]: the fraction of the full deterioration reached.
    pub severity: f64,
    /// Time from onset to full severity, in simulated milliseconds.
    pub ramp_ms: u64,
    /// Time after onset at which it resolves by itself, if it does.
    pub duration_ms: Option<u64>,
    /// Condition-specific parameters, in the order of [`ConditionKind::params`].
    pub params: Params,
}

/// An intervention given at a given time to a selection of patients.
#[derive(Clone, Debug, PartialEq)]
pub struct InterventionConfig {
    /// When, in simulated milliseconds from the start.
    pub at_ms: u64,
    /// Which patients.
    pub who: PatientSelector,
    /// What.
    pub kind: InterventionKind,
    /// Parameters, in the order of [`InterventionKind::params`].
    pub params: Params,
    /// How long it runs (infusion, oxygen, CPR), if limited.
    pub duration_ms: Option<u64>,
}

/// Patients `first..end` of a cohort, optionally `pick` of them at random.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientSelector {
    /// Index of the cohort in [`SimConfig::cohorts`].
    pub cohort: usize,
    /// First patient index (inclusive).
    pub first: u32,
    /// Last patient index (exclusive).
    pub end: u32,
    /// Choose this many of the range at random (seeded) instead of all.
    pub pick: Option<u32>,
}

impl SimConfig {
    /// A small configuration for examples and tests: 4 healthy adults with
    /// all four devices over ideal networking, one of them septic after 10 min.
    pub fn example() -> SimConfig {
        SimConfig {
            seed: 7,
            step_ms: 1_000,
            duration_ms: 30 * 60_000,
            cohorts: vec![CohortConfig {
                name: "ward".into(),
                count: 4,
                profile: ProfileSpec::healthy_adult(),
                devices: [
                    DeviceKind::PulseOximeter,
                    DeviceKind::BpCuff,
                    DeviceKind::Thermometer,
                    DeviceKind::RespMonitor,
                ]
                .into_iter()
                .map(DeviceConfig::of)
                .collect(),
                network: NetworkConfig::named("hospital_wifi").unwrap(),
            }],
            events: vec![EventConfig {
                at_ms: 10 * 60_000,
                who: PatientSelector {
                    cohort: 0,
                    first: 0,
                    end: 1,
                    pick: None,
                },
                condition: ConditionKind::Sepsis,
                severity: 1.0,
                ramp_ms: 60 * 60_000,
                duration_ms: None,
                params: Params::defaults(&[]),
            }],
            interventions: Vec::new(),
            start_ms_of_day: 8 * 3_600_000,
            faults: Vec::new(),
            shard: Shard::WHOLE,
        }
    }

    /// Checks what the twin relies on; the harness reports friendlier,
    /// positioned errors first, so this is the last line of defence.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.step_ms == 0 {
            return Err(ConfigError::ZeroStep);
        }
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            return Err(ConfigError::OutOfRange {
                field: "shard".into(),
                value: f64::from(self.shard.index),
                expected: "an index below a count of at least 1",
            });
        }
        for (i, cohort) in self.cohorts.iter().enumerate() {
            if self.cohorts[..i]
                .iter()
                .any(|other| other.name == cohort.name)
            {
                return Err(ConfigError::DuplicateCohort {
                    name: cohort.name.clone(),
                });
            }
            let net = &cohort.network;
            let field = |name: &str| format!("cohort[{i}].network.{name}");
            if !(0.0..=100.0).contains(&net.loss_pct) {
                return Err(ConfigError::OutOfRange {
                    field: field("loss_pct"),
                    value: net.loss_pct,
                    expected: "0 to 100",
                });
            }
            if !(net.latency_median_ms >= 0.0 && net.latency_median_ms <= 3_600_000.0) {
                return Err(ConfigError::OutOfRange {
                    field: field("latency_median"),
                    value: net.latency_median_ms,
                    expected: "0 to 1 h",
                });
            }
            if !(net.loss_burst >= 1.0 && net.loss_burst <= 1e6) {
                return Err(ConfigError::OutOfRange {
                    field: field("loss_burst"),
                    value: net.loss_burst,
                    expected: "1 to 1000000 messages",
                });
            }
            if let Some(g) = &net.gateway
                && !(g.flush_per_s > 0.0 && g.flush_per_s <= 1e6)
            {
                return Err(ConfigError::OutOfRange {
                    field: field("gateway.flush_rate"),
                    value: g.flush_per_s,
                    expected: "greater than 0, at most 1000000 per second",
                });
            }
            if !(net.latency_p99_ms >= net.latency_median_ms && net.latency_p99_ms <= 3_600_000.0) {
                return Err(ConfigError::OutOfRange {
                    field: field("latency_p99"),
                    value: net.latency_p99_ms,
                    expected: "at least the median, at most 1 h",
                });
            }
            for (j, device) in cohort.devices.iter().enumerate() {
                if device.every_ms < self.step_ms {
                    return Err(ConfigError::OutOfRange {
                        field: format!("cohort[{i}].devices[{j}].every"),
                        value: device.every_ms as f64,
                        expected: "at least one step",
                    });
                }
            }
        }
        for (i, event) in self.events.iter().enumerate() {
            self.check_selector("event", i, &event.who)?;
            if !(event.severity > 0.0 && event.severity <= 1.0) {
                return Err(ConfigError::OutOfRange {
                    field: format!("event[{i}].severity"),
                    value: event.severity,
                    expected: "greater than 0, at most 1",
                });
            }
        }
        for (i, given) in self.interventions.iter().enumerate() {
            self.check_selector("intervention", i, &given.who)?;
        }
        for (i, fault) in self.faults.iter().enumerate() {
            self.check_selector("fault", i, &fault.who)?;
        }
        for cohort in &self.cohorts {
            let p = &cohort.profile;
            if let Some((field, _)) = p.spreads().into_iter().find(|(_, s)| !s.is_valid()) {
                return Err(ConfigError::BadProfile {
                    profile: p.name.clone(),
                    field,
                });
            }
            if !(0.0..=100.0).contains(&p.female_pct) {
                return Err(ConfigError::BadProfile {
                    profile: p.name.clone(),
                    field: "female_pct",
                });
            }
            if !matches!(p.spo2_scale, 1 | 2) {
                return Err(ConfigError::BadProfile {
                    profile: p.name.clone(),
                    field: "spo2_scale",
                });
            }
        }
        Ok(())
    }

    fn check_selector(
        &self,
        what: &'static str,
        i: usize,
        who: &PatientSelector,
    ) -> Result<(), ConfigError> {
        let Some(cohort) = self.cohorts.get(who.cohort) else {
            return Err(ConfigError::UnknownCohort {
                what,
                index: i,
                cohort: who.cohort,
                n_cohorts: self.cohorts.len(),
            });
        };
        if who.first >= who.end || who.end > cohort.count {
            return Err(ConfigError::PatientOutOfRange {
                what,
                index: i,
                first: who.first,
                end: who.end,
                count: cohort.count,
            });
        }
        Ok(())
    }
}
