//! The scenario file as written: serde types that mirror the TOML exactly.
//! Every table denies unknown keys. Required fields are `Option` here so
//! that [`super::resolve`] can report *all* missing ones with positions,
//! instead of serde stopping at the first.

use serde::Deserialize;
use toml::Spanned;

use super::catalogue::ProfileEntry;
use super::duration::Dur;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub duration: Option<Spanned<Dur>>,
    pub step: Option<Spanned<Dur>>,
    pub start: Option<Spanned<String>>,
    pub time_of_day: Option<Spanned<String>>,
    pub clock: Option<Spanned<ClockSpec>>,
    pub catalogue: Option<CatalogueSpec>,
    #[serde(default)]
    pub profile: Vec<Spanned<ProfileEntry>>,
    #[serde(default)]
    pub device: Vec<Spanned<super::devices::DeviceEntry>>,
    #[serde(default)]
    pub cohort: Vec<Spanned<CohortSpec>>,
    #[serde(default)]
    pub event: Vec<Spanned<EventSpec>>,
    #[serde(default)]
    pub intervention: Vec<Spanned<InterventionSpec>>,
    #[serde(default)]
    pub fault: Vec<Spanned<FaultSpec>>,
    pub target: Option<Spanned<TargetSpec>>,
    pub alerts: Option<AlertsSpec>,
    pub backend: Option<Spanned<BackendSpec>>,
    #[serde(default)]
    pub expect: Vec<Spanned<ExpectSpec>>,
    /// `[load]`: what `medtwin load` does with the fleet.
    pub load: Option<Spanned<super::load::LoadSpec>>,
}

/// `[catalogue]`: extra files of definitions, relative to the scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSpec {
    #[serde(default)]
    pub profiles: Vec<Spanned<String>>,
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
}

/// `[clock]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    pub mode: Option<ClockMode>,
    pub speed: Option<Spanned<f64>>,
}

/// Clock modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ClockMode {
    #[serde(rename = "virtual")]
    Virtual,
    #[serde(rename = "real-time")]
    RealTime,
    #[serde(rename = "accelerated")]
    Accelerated,
}

/// `[[cohort]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortSpec {
    pub name: Option<Spanned<String>>,
    pub count: Option<Spanned<u32>>,
    pub profile: Option<Spanned<String>>,
    #[serde(default)]
    pub devices: Vec<Spanned<DeviceSpec>>,
    pub network: Option<Spanned<NetworkSpec>>,
}

/// One entry of `devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// A device model from the catalogue, e.g. `ring_oximeter`.
    pub kind: Option<Spanned<String>>,
    pub every: Option<Spanned<Dur>>,
    pub battery_pct: Option<Spanned<f64>>,
    pub age: Option<Spanned<Dur>>,
    /// Record waveforms (the model's channels at its rate).
    pub waveforms: Option<Spanned<bool>>,
    /// Overrides the model's waveform rate: 125, 250 or 500 Hz.
    pub waveform_hz: Option<Spanned<u32>>,
    /// Electrode and motion noise: none, low, moderate or high.
    pub waveform_noise: Option<Spanned<String>>,
    /// Mains frequency picked up: 50 or 60 Hz.
    pub mains_hz: Option<Spanned<u32>>,
}

/// `network = "hospital_wifi"` or an inline table.
#[derive(Debug)]
pub enum NetworkSpec {
    Named(String),
    Custom(Box<NetworkTable>),
}

/// A network written out (optionally on top of a named profile).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkTable {
    pub profile: Option<Spanned<String>>,
    pub latency_median: Option<Dur>,
    pub latency_p99: Option<Dur>,
    pub loss_pct: Option<f64>,
    pub loss_burst: Option<Spanned<f64>>,
    pub gateway: Option<Spanned<GatewaySpec>>,
}

/// `gateway = { buffer = 2000, eviction = "drop_oldest", flush_rate = 50, mtbf = "12h", mttr = "5m" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    pub buffer: Option<Spanned<u32>>,
    pub eviction: Option<EvictionName>,
    pub flush_rate: Option<Spanned<f64>>,
    pub mtbf: Option<Spanned<Dur>>,
    pub mttr: Option<Spanned<Dur>>,
}

/// Eviction policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionName {
    DropOldest,
    DropNewest,
}

/// `[[fault]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: Option<Spanned<Dur>>,
    pub who: Option<Spanned<String>>,
    pub pick: Option<Spanned<u32>>,
    pub kind: Option<FaultName>,
    pub device: Option<Spanned<String>>,
    pub duration: Option<Spanned<Dur>>,
}

/// Fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultName {
    NetworkOutage,
    SensorOff,
    BatteryDead,
    StuckValue,
    WrongUnit,
    ClockReset,
    Disconnect,
    Occlusion,
}

impl<'de> Deserialize<'de> for NetworkSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NetworkVisitor;
        impl<'de> serde::de::Visitor<'de> for NetworkVisitor {
            type Value = NetworkSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a network profile name or a table with latency_median, latency_p99, loss_pct",
                )
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<NetworkSpec, E> {
                Ok(NetworkSpec::Named(name.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<NetworkSpec, A::Error> {
                NetworkTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|table| NetworkSpec::Custom(Box::new(table)))
            }
        }
        deserializer.deserialize_any(NetworkVisitor)
    }
}

/// `[[event]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub at: Option<Spanned<Dur>>,
    pub who: Option<Spanned<String>>,
    pub pick: Option<Spanned<u32>>,
    pub condition: Option<ConditionName>,
    pub severity: Option<Spanned<f64>>,
    pub ramp: Option<Dur>,
    pub duration: Option<Spanned<Dur>>,
    // Condition parameters (see `medtwin list conditions`); the ones a
    // condition does not take are reported.
    pub cause: Option<Spanned<String>>,
    pub insulin_u: Option<Spanned<f64>>,
    pub volume_pct: Option<Spanned<f64>>,
    pub rhythm: Option<Spanned<String>>,
    pub rate_bpm: Option<Spanned<f64>>,
}

/// Condition names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionName {
    Sepsis,
    AtrialFibrillation,
    Hypoglycaemia,
    Hyperglycaemia,
    OpioidRespiratoryDepression,
    CopdExacerbation,
    HypertensiveCrisis,
    Haemorrhage,
    CardiacArrest,
}

/// `[[intervention]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionSpec {
    pub at: Option<Spanned<Dur>>,
    pub who: Option<Spanned<String>>,
    pub pick: Option<Spanned<u32>>,
    pub kind: Option<InterventionName>,
    pub duration: Option<Spanned<Dur>>,
    // Intervention parameters (see `medtwin list interventions`).
    pub flow_lpm: Option<Spanned<f64>>,
    pub volume_ml: Option<Spanned<f64>>,
    pub target_map: Option<Spanned<f64>>,
    pub units: Option<Spanned<f64>>,
    pub route: Option<Spanned<String>>,
    pub grams: Option<Spanned<f64>>,
    pub carbs_g: Option<Spanned<f64>>,
    pub bolus_u: Option<Spanned<f64>>,
    pub dose_mg: Option<Spanned<f64>>,
}

/// Intervention names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionName {
    Oxygen,
    IvFluids,
    Vasopressor,
    Insulin,
    Glucose,
    Meal,
    Naloxone,
    Antipyretic,
    Antibiotics,
    RateControl,
    Antihypertensive,
    Defibrillation,
    Cpr,
}

/// `[target]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub url: Option<Spanned<String>>,
    pub transport: Option<Spanned<String>>,
    pub encoding: Option<Spanned<String>>,
    pub fhir: Option<super::interop::FhirOptions>,
    pub mqtt: Option<super::interop::MqttOptions>,
    pub hl7: Option<super::interop::Hl7Options>,
    pub file: Option<super::interop::FileOptions>,
    pub tls: Option<super::interop::TlsSpec>,
    pub auth: Option<Spanned<super::auth::AuthFile>>,
    pub token: Option<String>,
    pub timeout: Option<Spanned<Dur>>,
    pub concurrency: Option<Spanned<u32>>,
    pub min_accepted_pct: Option<Spanned<f64>>,
}

/// `[alerts]`: the webhook the target posts alerts to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    pub listen: Option<Spanned<String>>,
    pub token: Option<String>,
    pub grace: Option<Dur>,
    pub kinds: Option<Vec<Spanned<String>>>,
    pub intake: Option<Spanned<OneOrMany>>,
    pub webhook: Option<super::interop::WebhookOptions>,
    pub acm: Option<super::interop::AcmOptions>,
    pub mqtt: Option<super::interop::MqttIntakeOptions>,
    pub fhir: Option<super::interop::FhirIntakeOptions>,
    pub mapping: Option<super::interop::MappingSpec>,
    pub tls: Option<super::interop::ListenerTlsSpec>,
}

/// One name or a list of names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[backend]`: knobs of the embedded reference backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    pub drop_alerts_pct: Option<Spanned<f64>>,
    pub duplicate_alerts_pct: Option<Spanned<f64>>,
    pub spurious_alerts_pct: Option<Spanned<f64>>,
    pub wrong_patient_pct: Option<Spanned<f64>>,
    pub wrong_kind_pct: Option<Spanned<f64>>,
    pub delay_alerts: Option<Dur>,
    pub smoothing: Option<Dur>,
    pub reset_after: Option<Dur>,
}

impl BackendSpec {
    /// The percentage knob as written, if it is.
    pub fn pct(&self, knob: medtwin_backend::PctKnob) -> Option<&Spanned<f64>> {
        use medtwin_backend::PctKnob;
        match knob {
            PctKnob::DropAlerts => self.drop_alerts_pct.as_ref(),
            PctKnob::DuplicateAlerts => self.duplicate_alerts_pct.as_ref(),
            PctKnob::SpuriousAlerts => self.spurious_alerts_pct.as_ref(),
            PctKnob::WrongPatient => self.wrong_patient_pct.as_ref(),
            PctKnob::WrongKind => self.wrong_kind_pct.as_ref(),
        }
    }
}

/// `[[expect]]` (resolved in `expect.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    pub name: Option<Spanned<String>>,
    pub episode: Option<ConditionName>,
    pub state: Option<Spanned<String>>,
    pub rule: Option<Spanned<String>>,
    pub abnormal: Option<Spanned<String>>,
    pub from: Option<Spanned<ReferenceName>>,
    pub criterion: Option<Spanned<String>>,
    pub alert: Option<Spanned<String>>,
    pub within: Option<Spanned<Dur>>,
    pub max_gap: Option<Spanned<Dur>>,
    pub rearm: Option<Spanned<Dur>>,
    pub early: Option<Spanned<Dur>>,
    pub max_false_alerts: Option<u32>,
    pub max_false_alerts_per_patient_day: Option<Spanned<f64>>,
    pub max_duplicates: Option<u64>,
    pub max_latency_p50: Option<Dur>,
    pub max_latency_p95: Option<Dur>,
    pub max_latency_p99: Option<Dur>,
    pub max_latency: Option<Dur>,
}

/// `from = ...` of an episode expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceName {
    Onset,
    Criterion,
    FirstAbnormalMeasurement,
    FirstAbnormalDelivery,
}
