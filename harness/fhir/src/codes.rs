//! Code systems, profiles and the vital-sign table: every code and URL
//! here is copied, with its source, in `docs/references.md` ("FHIR R4").

/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// ISO/IEEE 11073-10101 nomenclature (MDC), as the Personal Health Device
/// IG codes it beside LOINC.
pub const MDC: &str = "urn:iso:std:iso:11073:10101";
/// HL7 observation categories (`vital-signs`, `laboratory`, ...).
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// HL7 data absent reasons.
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// HL7 flag categories.
pub const FLAG_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/flag-category";
/// HL7 communication categories.
pub const COMMUNICATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/communication-category";
/// The core `flag-priority` extension (R4) and its code system.
pub const FLAG_PRIORITY_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/flag-priority";
/// Codes of the `flag-priority` extension: PN, PL, PM, PH.
pub const FLAG_PRIORITY_CODES: &str = "http://hl7.org/fhir/flag-priority-code";

/// The R4 core vital-signs base profile.
pub const PROFILE_VITALSIGNS: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
/// R4 heart rate profile (8867-4).
pub const PROFILE_HEARTRATE: &str = "http://hl7.org/fhir/StructureDefinition/heartrate";
/// R4 respiratory rate profile (9279-1).
pub const PROFILE_RESPRATE: &str = "http://hl7.org/fhir/StructureDefinition/resprate";
/// R4 oxygen saturation profile (2708-6).
pub const PROFILE_OXYGENSAT: &str = "http://hl7.org/fhir/StructureDefinition/oxygensat";
/// R4 body temperature profile (8310-5).
pub const PROFILE_BODYTEMP: &str = "http://hl7.org/fhir/StructureDefinition/bodytemp";
/// R4 body weight profile (29463-7).
pub const PROFILE_BODYWEIGHT: &str = "http://hl7.org/fhir/StructureDefinition/bodyweight";
/// R4 blood pressure panel profile (85354-9 with 8480-6 and 8462-4).
pub const PROFILE_BP: &str = "http://hl7.org/fhir/StructureDefinition/bp";
/// HL7 CGM IG (uv/cgm 1.0.0), a sensor reading in mass per volume.
pub const PROFILE_CGM_MASS: &str =
    "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-mass-per-volume";

/// The Subscriptions R5 Backport IG's base URL.
pub const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport";
/// Backport profile of the R4 `Subscription`.
pub const PROFILE_BACKPORT_SUBSCRIPTION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";
/// Backport profile of the R4 `Parameters` carrying a SubscriptionStatus.
pub const PROFILE_BACKPORT_STATUS: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";
/// Extension on `Subscription.channel.payload`: empty | id-only | full-resource.
pub const EXT_PAYLOAD_CONTENT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
/// Extension on `Subscription.channel`: heartbeat period in seconds.
pub const EXT_HEARTBEAT_PERIOD: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period";
/// Extension on `Subscription.channel`: timeout of one notification, seconds.
pub const EXT_TIMEOUT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout";
/// Extension on `Subscription.criteria`: additional filter criteria.
pub const EXT_FILTER_CRITERIA: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";

/// medtwin's own namespace for identifier systems and local codes. The
/// `.invalid` top-level domain (RFC 2606) never resolves: these are names,
/// not locations.
pub const MEDTWIN: &str = "https://medtwin.invalid/fhir";
/// Identifier system of medtwin patients (`ward-003`).
pub const SID_PATIENT: &str = "https://medtwin.invalid/fhir/sid/patient";
/// Identifier system of medtwin devices (`ward-003/pulse_oximeter`).
pub const SID_DEVICE: &str = "https://medtwin.invalid/fhir/sid/device";
/// Identifier system of medtwin observations: `<device>/<seq>/<code>`.
pub const SID_OBSERVATION: &str = "https://medtwin.invalid/fhir/sid/observation";
/// Identifier system of alerts (the target's alert id).
pub const SID_ALERT: &str = "https://medtwin.invalid/fhir/sid/alert";
/// Local codes for what LOINC and MDC have no code for in medtwin's
/// vocabulary (`spo2_scale`, `infusion_rate`), and medtwin's wire code of
/// every value.
pub const CS_VITAL: &str = "https://medtwin.invalid/fhir/CodeSystem/vital";
/// Device technical alarms (`low_battery`, `sensor_off`, ...).
pub const CS_DEVICE_ALARM: &str = "https://medtwin.invalid/fhir/CodeSystem/device-alarm";
/// Device events (`dose_taken`, `dose_missed`, `pill_ingested`).
pub const CS_DEVICE_EVENT: &str = "https://medtwin.invalid/fhir/CodeSystem/device-event";
/// ACVPU levels (A, C, V, P, U).
pub const CS_ACVPU: &str = "https://medtwin.invalid/fhir/CodeSystem/acvpu";
/// Alert kinds (`news2-high`, `spo2-low`, ...): the target's own words.
pub const CS_ALERT_KIND: &str = "https://medtwin.invalid/fhir/CodeSystem/alert-kind";
/// Extension carrying an alert's score (valueInteger).
pub const EXT_ALERT_SCORE: &str = "https://medtwin.invalid/fhir/StructureDefinition/alert-score";
/// Extension carrying the trigger time of an alert (valueDateTime) where
/// the resource has no element for it (Communication).
pub const EXT_TRIGGER_TIME: &str =
    "https://medtwin.invalid/fhir/StructureDefinition/alert-trigger-time";
/// The topic medtwin's reference backend publishes its alerts on.
pub const TOPIC_ALERT: &str = "https://medtwin.invalid/fhir/SubscriptionTopic/alert";

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Which observation category a value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// `vital-signs`.
    VitalSigns,
    /// `laboratory` (CGM readings, as the CGM IG has it).
    Laboratory,
    /// `exam` (a charted level of consciousness).
    Exam,
    /// `therapy` (an infusion rate).
    Therapy,
    /// `survey` (the NEWS2 SpO2 scale a nurse chose).
    Survey,
}

impl Category {
    /// The code in [`OBSERVATION_CATEGORY`].
    pub fn code(self) -> &'static str {
        match self {
            Category::VitalSigns => "vital-signs",
            Category::Laboratory => "laboratory",
            Category::Exam => "exam",
            Category::Therapy => "therapy",
            Category::Survey => "survey",
        }
    }

    /// The display text of the code.
    pub fn display(self) -> &'static str {
        match self {
            Category::VitalSigns => "Vital Signs",
            Category::Laboratory => "Laboratory",
            Category::Exam => "Exam",
            Category::Therapy => "Therapy",
            Category::Survey => "Survey",
        }
    }
}

/// How a value is written in `Observation.value[x]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `valueQuantity` with a UCUM unit.
    Quantity,
    /// `valueCodeableConcept` from [`CS_ACVPU`].
    Acvpu,
    /// `valueInteger` (a position on a list: the SpO2 scale).
    Integer,
}

/// One code in a code system, with its display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    /// The code.
    pub code: &'static str,
    /// Its display.
    pub display: &'static str,
}

/// How one of medtwin's wire values is written in FHIR.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VitalCode {
    /// medtwin's wire code (`hr`, `spo2`, ...).
    pub wire: &'static str,
    /// UCUM unit (the wire's).
    pub unit: &'static str,
    /// The unit as people read it.
    pub unit_display: &'static str,
    /// The LOINC code the wire carries (`None` where LOINC has none).
    pub loinc: Option<Code>,
    /// A further LOINC code a profile requires (2708-6 beside 59408-5).
    pub loinc_also: Option<Code>,
    /// The MDC code (IEEE 11073-10101), where one is known.
    pub mdc: Option<Code>,
    /// Observation category.
    pub category: Category,
    /// The profile the observation claims.
    pub profile: Option<&'static str>,
    /// How the value is written.
    pub value: ValueKind,
    /// Text for `code.text`.
    pub text: &'static str,
}

const fn c(code: &'static str, display: &'static str) -> Code {
    Code { code, display }
}

/// LOINC blood pressure panel with all children optional.
pub const LOINC_BP_PANEL: Code = c("85354-9", "Blood pressure panel with all children optional");
/// MDC non-invasive blood pressure (the compound).
pub const MDC_BP: Code = c("150020", "MDC_PRESS_BLD_NONINV");
/// MDC pulse rate from an oximeter, used for `hr` when the same message
/// carries SpO2 (the PHD IG's pulse-oximeter example codes it so).
pub const MDC_PULSE_RATE: Code = c("149530", "MDC_PULS_OXIM_PULS_RATE");

/// Every wire value medtwin sends, in FHIR terms (docs/references.md
/// "FHIR R4": LOINC, UCUM and MDC codes, profiles).
pub const VITALS: [VitalCode; 13] = [
    VitalCode {
        wire: "hr",
        unit: "/min",
        unit_display: "beats/minute",
        loinc: Some(c("8867-4", "Heart rate")),
        loinc_also: None,
        mdc: Some(c("147842", "MDC_ECG_HEART_RATE")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_HEARTRATE),
        value: ValueKind::Quantity,
        text: "Heart rate",
    },
    VitalCode {
        wire: "spo2",
        unit: "%",
        unit_display: "%",
        loinc: Some(c(
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
        )),
        loinc_also: Some(c("2708-6", "Oxygen saturation in Arterial blood")),
        mdc: Some(c("150456", "MDC_PULS_OXIM_SAT_O2")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_OXYGENSAT),
        value: ValueKind::Quantity,
        text: "Oxygen saturation (pulse oximetry)",
    },
    VitalCode {
        wire: "rr",
        unit: "/min",
        unit_display: "breaths/minute",
        loinc: Some(c("9279-1", "Respiratory rate")),
        loinc_also: None,
        mdc: Some(c("151562", "MDC_RESP_RATE")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_RESPRATE),
        value: ValueKind::Quantity,
        text: "Respiratory rate",
    },
    VitalCode {
        wire: "sbp",
        unit: "mm[Hg]",
        unit_display: "mmHg",
        loinc: Some(c("8480-6", "Systolic blood pressure")),
        loinc_also: None,
        mdc: Some(c("150021", "MDC_PRESS_BLD_NONINV_SYS")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_BP),
        value: ValueKind::Quantity,
        text: "Systolic blood pressure",
    },
    VitalCode {
        wire: "dbp",
        unit: "mm[Hg]",
        unit_display: "mmHg",
        loinc: Some(c("8462-4", "Diastolic blood pressure")),
        loinc_also: None,
        mdc: Some(c("150022", "MDC_PRESS_BLD_NONINV_DIA")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_BP),
        value: ValueKind::Quantity,
        text: "Diastolic blood pressure",
    },
    VitalCode {
        wire: "map",
        unit: "mm[Hg]",
        unit_display: "mmHg",
        loinc: Some(c("8478-0", "Mean blood pressure")),
        loinc_also: None,
        mdc: Some(c("150023", "MDC_PRESS_BLD_NONINV_MEAN")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_BP),
        value: ValueKind::Quantity,
        text: "Mean blood pressure",
    },
    VitalCode {
        wire: "temp",
        unit: "Cel",
        unit_display: "C",
        loinc: Some(c("8310-5", "Body temperature")),
        loinc_also: None,
        mdc: Some(c("150364", "MDC_TEMP_BODY")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_BODYTEMP),
        value: ValueKind::Quantity,
        text: "Body temperature",
    },
    VitalCode {
        wire: "glucose",
        unit: "mg/dL",
        unit_display: "mg/dL",
        loinc: Some(c("99504-3", "Glucose [Mass/volume] in Interstitial fluid")),
        loinc_also: None,
        mdc: Some(c("160212", "MDC_CONC_GLU_ISF")),
        category: Category::Laboratory,
        profile: Some(PROFILE_CGM_MASS),
        value: ValueKind::Quantity,
        text: "Glucose in interstitial fluid (CGM)",
    },
    VitalCode {
        wire: "weight",
        unit: "kg",
        unit_display: "kg",
        loinc: Some(c("29463-7", "Body weight")),
        loinc_also: None,
        mdc: Some(c("188736", "MDC_MASS_BODY_ACTUAL")),
        category: Category::VitalSigns,
        profile: Some(PROFILE_BODYWEIGHT),
        value: ValueKind::Quantity,
        text: "Body weight",
    },
    VitalCode {
        wire: "infusion_rate",
        unit: "mL/h",
        unit_display: "mL/h",
        loinc: None,
        loinc_also: None,
        mdc: None,
        category: Category::Therapy,
        profile: None,
        value: ValueKind::Quantity,
        text: "Infusion rate",
    },
    VitalCode {
        wire: "acvpu",
        unit: "{ACVPU}",
        unit_display: "ACVPU",
        loinc: Some(c("80288-4", "Level of consciousness")),
        loinc_also: None,
        mdc: None,
        category: Category::Exam,
        profile: None,
        value: ValueKind::Acvpu,
        text: "Level of consciousness (ACVPU)",
    },
    VitalCode {
        wire: "o2_flow",
        unit: "L/min",
        unit_display: "L/min",
        loinc: Some(c("3151-8", "Inhaled oxygen flow rate")),
        loinc_also: None,
        mdc: None,
        category: Category::VitalSigns,
        profile: None,
        value: ValueKind::Quantity,
        text: "Inhaled oxygen flow rate",
    },
    VitalCode {
        wire: "spo2_scale",
        unit: "{scale}",
        unit_display: "scale",
        loinc: None,
        loinc_also: None,
        mdc: None,
        category: Category::Survey,
        profile: None,
        value: ValueKind::Integer,
        text: "NEWS2 SpO2 scale",
    },
];

/// The FHIR terms of a wire code.
pub fn vital(wire: &str) -> Option<&'static VitalCode> {
    VITALS.iter().find(|v| v.wire == wire)
}

/// The wire code a LOINC or MDC code (or a medtwin local code) names.
pub fn vital_by_code(system: &str, code: &str) -> Option<&'static VitalCode> {
    VITALS.iter().find(|v| match system {
        LOINC => {
            v.loinc.is_some_and(|l| l.code == code) || v.loinc_also.is_some_and(|l| l.code == code)
        }
        MDC => {
            v.mdc.is_some_and(|m| m.code == code) || (v.wire == "hr" && code == MDC_PULSE_RATE.code)
        }
        CS_VITAL => v.wire == code,
        _ => false,
    })
}

/// ACVPU levels by their wire code 0..=4.
pub const ACVPU: [Code; 5] = [
    c("A", "Alert"),
    c("C", "New confusion"),
    c("V", "Responds to voice"),
    c("P", "Responds to pain"),
    c("U", "Unresponsive"),
];

/// Device technical alarms: medtwin's code, its display, and the MDC event
/// code where the nomenclature has one we could check.
pub const DEVICE_ALARMS: [(&str, &str, Option<Code>); 7] = [
    (
        "low_battery",
        "Low battery",
        Some(c("196802", "MDC_EVT_BATT_LO")),
    ),
    ("sensor_off", "Sensor off the patient", None),
    (
        "lead_off",
        "ECG lead off",
        Some(c("196876", "MDC_EVT_LEAD_DISCONN")),
    ),
    ("low_perfusion", "Low perfusion, no pulsatile signal", None),
    ("sensor_expired", "Sensor expired", None),
    ("occlusion", "Infusion line occluded", None),
    ("measurement_failed", "Measurement failed", None),
];

/// Device events: medtwin's code and its display.
pub const DEVICE_EVENTS: [(&str, &str); 3] = [
    ("dose_taken", "Scheduled dose taken"),
    ("dose_missed", "Scheduled dose missed"),
    ("pill_ingested", "Pill ingested"),
];

/// MDC device specialisations (PHD IG `DeviceTypes11073MDC`) of the
/// catalogue's device classes, by a word in the device model's name.
pub const DEVICE_SPECIALIZATIONS: [(&str, Code); 6] = [
    ("oximeter", c("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM")),
    ("ecg", c("528390", "MDC_DEV_SPEC_PROFILE_MIN_ECG")),
    ("bp", c("528391", "MDC_DEV_SPEC_PROFILE_BPM")),
    ("therm", c("528392", "MDC_DEV_SPEC_PROFILE_TEMP")),
    ("temperature", c("528392", "MDC_DEV_SPEC_PROFILE_TEMP")),
    ("infusion", c("528385", "MDC_DEV_SPEC_PROFILE_INFUS")),
];
