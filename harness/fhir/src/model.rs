//! The FHIR R4 data types and resources medtwin writes and reads, as
//! typed structs: field order is the order FHIR's JSON examples use
//! (`resourceType` first), absent elements are left out, and elements
//! medtwin does not know are ignored on reading (servers add `meta`,
//! `text`, ...).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `resourceType` of each resource struct: written as its name, and a
/// different name refused on reading.
macro_rules! resource_tag {
    ($tag:ident, $name:literal) => {
        #[doc = concat!("The `resourceType` `", $name, "`.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $tag;

        impl $tag {
            /// The resource type's name.
            pub const NAME: &'static str = $name;
        }

        impl Serialize for $tag {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($name)
            }
        }

        impl<'de> Deserialize<'de> for $tag {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                if text == $name {
                    Ok($tag)
                } else {
                    Err(D::Error::custom(format!(
                        "resourceType is {text:?}, expected {:?}",
                        $name
                    )))
                }
            }
        }
    };
}

resource_tag!(ObservationType, "Observation");
resource_tag!(PatientType, "Patient");
resource_tag!(DeviceType, "Device");
resource_tag!(BundleType, "Bundle");
resource_tag!(OperationOutcomeType, "OperationOutcome");
resource_tag!(DetectedIssueType, "DetectedIssue");
resource_tag!(FlagType, "Flag");
resource_tag!(CommunicationType, "Communication");
resource_tag!(SubscriptionType, "Subscription");
resource_tag!(ParametersType, "Parameters");

/// `Coding`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coding {
    /// Code system URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Its display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// A coding with system, code and display.
    pub fn new(system: &str, code: &str, display: &str) -> Coding {
        Coding {
            system: Some(system.to_owned()),
            code: Some(code.to_owned()),
            display: (!display.is_empty()).then(|| display.to_owned()),
        }
    }

    /// Whether this is `code` in `system`.
    pub fn is(&self, system: &str, code: &str) -> bool {
        self.system.as_deref() == Some(system) && self.code.as_deref() == Some(code)
    }
}

/// `CodeableConcept`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeableConcept {
    /// Codings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept of one coding.
    pub fn one(system: &str, code: &str, display: &str) -> CodeableConcept {
        CodeableConcept {
            coding: vec![Coding::new(system, code, display)],
            text: None,
        }
    }

    /// The code of the first coding in `system`.
    pub fn code_in(&self, system: &str) -> Option<&str> {
        self.coding
            .iter()
            .find(|c| c.system.as_deref() == Some(system))
            .and_then(|c| c.code.as_deref())
    }
}

/// `Quantity`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Unit as people read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Unit system (UCUM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Unit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `Identifier`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    /// Namespace of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Identifier {
    /// An identifier `value` in `system`.
    pub fn new(system: &str, value: &str) -> Identifier {
        Identifier {
            system: Some(system.to_owned()),
            value: Some(value.to_owned()),
        }
    }
}

/// `Reference`: a literal reference and/or a logical one (identifier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Literal reference (`Patient/123`, `urn:uuid:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Logical reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// `Meta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Version id the server gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When the server last changed the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Profiles claimed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<String>,
}

impl Meta {
    /// Meta claiming `profile`.
    pub fn profile(profile: &str) -> Option<Meta> {
        Some(Meta {
            profile: vec![profile.to_owned()],
            ..Meta::default()
        })
    }
}

/// `Extension` with the value types medtwin uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// What the extension means.
    pub url: String,
    /// `valueInteger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_integer: Option<i64>,
    /// `valueUnsignedInt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_unsigned_int: Option<u64>,
    /// `valueCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_code: Option<String>,
    /// `valueString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    /// `valueDateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_date_time: Option<String>,
    /// `valueCodeableConcept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
}

/// The extensions of a JSON primitive (`_payload`, `_criteria`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrimitiveExtensions {
    /// The extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

/// `Period`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `Observation.component`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationComponent {
    /// What the component is.
    pub code: CodeableConcept,
    /// Its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    /// Why there is no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_absent_reason: Option<CodeableConcept>,
}

/// `Observation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Always `Observation`.
    pub resource_type: ObservationType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// `final` for what medtwin sends.
    pub status: String,
    /// Categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// What was observed.
    pub code: CodeableConcept,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// When, by the device's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<String>,
    /// `valueQuantity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    /// `valueCodeableConcept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    /// `valueInteger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_integer: Option<i64>,
    /// `valueBoolean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_boolean: Option<bool>,
    /// `valueDateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_date_time: Option<String>,
    /// The device that measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Reference>,
    /// Components (a blood pressure panel's systolic, diastolic, mean).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub component: Vec<ObservationComponent>,
}

/// `Patient` (only what medtwin needs: an identifier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Always `Patient`.
    pub resource_type: PatientType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Whether the record is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `Device.deviceName`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceName {
    /// The name.
    pub name: String,
    /// udi-label-name | user-friendly-name | patient-reported-name |
    /// manufacturer-name | model-name | other.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `Device.specialization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpecialization {
    /// The standard the device follows (an MDC device specialisation).
    pub system_type: CodeableConcept,
}

/// `Device`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Always `Device`.
    pub resource_type: DeviceType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// active | inactive | entered-in-error | unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_name: Vec<DeviceName>,
    /// Model (the catalogue entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_number: Option<String>,
    /// Kind of device.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CodeableConcept>,
    /// Standards it follows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specialization: Vec<DeviceSpecialization>,
    /// The patient wearing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Reference>,
}

/// `OperationOutcome.issue`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// fatal | error | warning | information.
    pub severity: String,
    /// The issue type (`invalid`, `processing`, `not-found`, ...).
    pub code: String,
    /// Details for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// FHIRPath of the element at fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

/// `OperationOutcome`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationOutcome {
    /// Always `OperationOutcome`.
    #[serde(rename = "resourceType")]
    pub resource_type: OperationOutcomeType,
    /// The issues (at least one).
    pub issue: Vec<Issue>,
}

/// `Bundle.entry.request`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleRequest {
    /// GET | HEAD | POST | PUT | DELETE | PATCH.
    pub method: String,
    /// URL relative to the base.
    pub url: String,
    /// Conditional create: the search that must find nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_none_exist: Option<String>,
}

/// `Bundle.entry.response`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleResponse {
    /// HTTP status, starting with the 3-digit code.
    pub status: String,
    /// Where the resource is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// OperationOutcome of a failed entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
}

/// `Bundle.entry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    /// The entry's URL (`urn:uuid:...` in a transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource, as JSON (any resource type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// What to do with it (transaction, history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<BundleRequest>,
    /// What was done (transaction-response, history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<BundleResponse>,
}

/// `Bundle`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always `Bundle`.
    #[serde(rename = "resourceType")]
    pub resource_type: BundleType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// transaction | transaction-response | history | searchset | ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When assembled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Number of matches (searchset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
}

/// `DetectedIssue`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectedIssue {
    /// Always `DetectedIssue`.
    pub resource_type: DetectedIssueType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (the score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Business identifiers (the alert id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// registered | preliminary | final | amended | ...
    pub status: String,
    /// The alert kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// high | moderate | low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Reference>,
    /// When identified (the triggering measurement's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identified_date_time: Option<String>,
    /// Text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `Flag`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    /// Always `Flag`.
    pub resource_type: FlagType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (priority, score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Business identifiers (the alert id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// active | inactive | entered-in-error.
    pub status: String,
    /// Categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The alert kind.
    pub code: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// Since the triggering measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// `Communication.payload`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationPayload {
    /// The message text.
    pub content_string: String,
}

/// `Communication`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Communication {
    /// Always `Communication`.
    pub resource_type: CommunicationType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Server metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (trigger time, score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Business identifiers (the alert id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// completed | in-progress | ...
    pub status: String,
    /// Categories (`alert`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// routine | urgent | asap | stat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// When sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// Why (the alert kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    /// The message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload: Vec<CommunicationPayload>,
}

/// `Subscription.channel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChannel {
    /// Extensions (heartbeat period, timeout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// rest-hook | websocket | email | sms | message.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where notifications go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// MIME type of the notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Extensions of `payload` (content: full-resource).
    #[serde(default, rename = "_payload", skip_serializing_if = "Option::is_none")]
    pub payload_ext: Option<PrimitiveExtensions>,
    /// HTTP headers to send (`Authorization: Bearer ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<String>,
}

/// `Subscription` (R4, Backport profile).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Always `Subscription`.
    pub resource_type: SubscriptionType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// requested | active | error | off.
    pub status: String,
    /// When it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Why.
    pub reason: String,
    /// The topic's canonical URL.
    pub criteria: String,
    /// Extensions of `criteria` (filters).
    #[serde(default, rename = "_criteria", skip_serializing_if = "Option::is_none")]
    pub criteria_ext: Option<PrimitiveExtensions>,
    /// Latest error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How notifications are sent.
    pub channel: SubscriptionChannel,
}

/// `Parameters.parameter` (values medtwin uses).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// Name.
    pub name: String,
    /// `valueReference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Reference>,
    /// `valueCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_code: Option<String>,
    /// `valueCanonical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_canonical: Option<String>,
    /// `valueString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    /// `valueInstant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_instant: Option<String>,
    /// `valueInteger` (some servers write counts so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_integer: Option<i64>,
    /// `valueUnsignedInt` (some servers write counts so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_unsigned_int: Option<u64>,
    /// Parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part: Vec<Parameter>,
}

impl Parameter {
    /// The part named `name`.
    pub fn part(&self, name: &str) -> Option<&Parameter> {
        self.part.iter().find(|p| p.name == name)
    }
}

/// `Parameters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Always `Parameters`.
    #[serde(rename = "resourceType")]
    pub resource_type: ParametersType,
    /// Server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<Parameter>,
}

impl Parameters {
    /// The first parameter named `name`.
    pub fn get(&self, name: &str) -> Option<&Parameter> {
        self.parameter.iter().find(|p| p.name == name)
    }
}

/// `resourceType` of a JSON resource, if it has one.
pub fn resource_type(resource: &Value) -> Option<&str> {
    resource.get("resourceType")?.as_str()
}
