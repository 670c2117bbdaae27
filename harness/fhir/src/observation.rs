//! Telemetry as FHIR R4 `Observation`s, and back.
//!
//! One [`TelemetryMessage`] becomes one Observation per measured value
//! (vital-signs profile, LOINC + MDC codes, UCUM units), except a blood
//! pressure reading, which is one panel (85354-9) with systolic, diastolic
//! and mean as components, as the R4 `bp` profile and the PHD IG's
//! compound example have it. A technical alarm becomes an Observation of
//! the device's status (code: the alarm, from medtwin's alarm code system,
//! with the MDC event code where there is one) and a device event
//! (dispenser, smart pill) an Observation whose `valueDateTime` is the
//! scheduled dose. A message with nothing at all becomes nothing.
//!
//! Each Observation has an identifier `<device>/<seq>/<code>` so a resend
//! is recognised (conditional create), and references its patient and
//! device both literally (the server's ids, when known) and logically (by
//! identifier), so the reverse direction needs no lookup.

use medtwin_wire::{TELEMETRY_SCHEMA, TelemetryMessage, WireEvent, WireValue};

use crate::codes::{
    self, ACVPU, CS_ACVPU, CS_DEVICE_ALARM, CS_DEVICE_EVENT, CS_VITAL, Category,
    DATA_ABSENT_REASON, DEVICE_ALARMS, DEVICE_EVENTS, LOINC, LOINC_BP_PANEL, MDC, MDC_BP,
    MDC_PULSE_RATE, OBSERVATION_CATEGORY, PROFILE_BP, SID_DEVICE, SID_OBSERVATION, SID_PATIENT,
    UCUM, ValueKind, VitalCode,
};
use crate::error::FhirError;
use crate::model::{
    CodeableConcept, Coding, Identifier, Meta, Observation, ObservationComponent, Quantity,
    Reference,
};

/// The literal references an Observation carries beside the logical
/// ones: the server's `Patient/<id>` and `Device/<id>`, or a transaction's
/// `urn:uuid:`. `None` leaves only the identifier.
#[derive(Clone, Copy, Debug, Default)]
pub struct Refs<'a> {
    /// The patient's literal reference.
    pub patient: Option<&'a str>,
    /// The device's literal reference.
    pub device: Option<&'a str>,
}

/// The identifier code of a blood pressure panel (`<device>/<seq>/bp`).
pub const BP_CODE: &str = "bp";
/// The identifier code of an alarm Observation.
pub const ALARM_CODE: &str = "alarm";
/// The identifier code of an event Observation.
pub const EVENT_CODE: &str = "event";

const BP_PARTS: [&str; 3] = ["sbp", "dbp", "map"];

/// The Observations of one message, appended to `out` (pure: the same
/// message and references give the same resources).
pub fn observations(message: &TelemetryMessage, refs: Refs<'_>, out: &mut Vec<Observation>) {
    let has_spo2 = message.values.iter().any(|v| v.code == "spo2");
    let mut bp_done = false;
    for value in &message.values {
        if BP_PARTS.contains(&value.code.as_str()) {
            if !bp_done {
                out.push(bp_panel(message, refs));
                bp_done = true;
            }
            continue;
        }
        out.push(single(message, refs, value, has_spo2));
    }
    if let Some(alarm) = &message.alarm {
        out.push(alarm_observation(message, refs, alarm));
    }
    if let Some(event) = &message.event {
        out.push(event_observation(message, refs, event));
    }
}

/// The identifier value of one Observation of a message.
pub fn observation_key(device_id: &str, seq: u64, code: &str) -> String {
    format!("{device_id}/{seq}/{code}")
}

fn base(message: &TelemetryMessage, refs: Refs<'_>, code_key: &str) -> Observation {
    Observation {
        identifier: vec![Identifier::new(
            SID_OBSERVATION,
            &observation_key(&message.device_id, message.seq, code_key),
        )],
        status: "final".to_owned(),
        subject: Some(Reference {
            reference: refs.patient.map(str::to_owned),
            identifier: Some(Identifier::new(SID_PATIENT, &message.patient_id)),
            display: None,
        }),
        effective_date_time: Some(message.measured_at.clone()),
        device: Some(Reference {
            reference: refs.device.map(str::to_owned),
            identifier: Some(Identifier::new(SID_DEVICE, &message.device_id)),
            display: (!message.device_kind.is_empty()).then(|| message.device_kind.clone()),
        }),
        ..Observation::default()
    }
}

fn category(c: Category) -> Vec<CodeableConcept> {
    vec![CodeableConcept::one(
        OBSERVATION_CATEGORY,
        c.code(),
        c.display(),
    )]
}

fn quantity(value: f64, v: &VitalCode) -> Quantity {
    Quantity {
        value: Some(value),
        unit: Some(v.unit_display.to_owned()),
        system: Some(UCUM.to_owned()),
        code: Some(v.unit.to_owned()),
    }
}

fn concept(v: &VitalCode, pulse_rate: bool) -> CodeableConcept {
    let mut coding = Vec::with_capacity(3);
    // The profile's own code first (2708-6 for oxygen saturation), then
    // the more specific LOINC the wire carries, then MDC.
    if let Some(also) = v.loinc_also {
        coding.push(Coding::new(LOINC, also.code, also.display));
    }
    if let Some(loinc) = v.loinc {
        coding.push(Coding::new(LOINC, loinc.code, loinc.display));
    }
    let mdc = if pulse_rate {
        Some(MDC_PULSE_RATE)
    } else {
        v.mdc
    };
    if let Some(mdc) = mdc {
        coding.push(Coding::new(MDC, mdc.code, mdc.display));
    }
    if v.loinc.is_none() && mdc.is_none() {
        coding.push(Coding::new(CS_VITAL, v.wire, v.text));
    }
    CodeableConcept {
        coding,
        text: Some(v.text.to_owned()),
    }
}

fn single(
    message: &TelemetryMessage,
    refs: Refs<'_>,
    value: &WireValue,
    has_spo2: bool,
) -> Observation {
    let mut obs = base(message, refs, &value.code);
    let Some(v) = codes::vital(&value.code) else {
        // A code this crate does not know: say what it is in medtwin's
        // words rather than drop it.
        obs.code = CodeableConcept::one(CS_VITAL, &value.code, "");
        obs.value_quantity = Some(Quantity {
            value: Some(value.value),
            unit: Some(value.unit.clone()),
            system: Some(UCUM.to_owned()),
            code: Some(value.unit.clone()),
        });
        return obs;
    };
    obs.meta = v.profile.and_then(Meta::profile);
    obs.category = category(v.category);
    obs.code = concept(v, v.wire == "hr" && has_spo2);
    let whole = (value.value.fract() == 0.0).then_some(value.value as i64);
    match (v.value, whole) {
        (ValueKind::Acvpu, Some(level)) if (0..5).contains(&level) => {
            let code = ACVPU[level as usize];
            obs.value_codeable_concept =
                Some(CodeableConcept::one(CS_ACVPU, code.code, code.display));
        }
        (ValueKind::Integer, Some(n)) => obs.value_integer = Some(n),
        _ => obs.value_quantity = Some(quantity(value.value, v)),
    }
    obs
}

fn bp_panel(message: &TelemetryMessage, refs: Refs<'_>) -> Observation {
    let mut obs = base(message, refs, BP_CODE);
    let parts: Vec<&WireValue> = message
        .values
        .iter()
        .filter(|v| BP_PARTS.contains(&v.code.as_str()))
        .collect();
    obs.meta = Meta::profile(PROFILE_BP);
    obs.category = category(Category::VitalSigns);
    obs.code = CodeableConcept {
        coding: vec![
            Coding::new(LOINC, LOINC_BP_PANEL.code, LOINC_BP_PANEL.display),
            Coding::new(MDC, MDC_BP.code, MDC_BP.display),
        ],
        text: Some("Blood pressure".to_owned()),
    };
    obs.component = parts
        .iter()
        .filter_map(|value| {
            let v = codes::vital(&value.code)?;
            Some(ObservationComponent {
                code: concept(v, false),
                value_quantity: Some(quantity(value.value, v)),
                data_absent_reason: None,
            })
        })
        .collect();
    // The bp profile requires systolic and diastolic components (R4
    // vital-signs: a panel code SHALL conform to its profile); one the
    // device did not report is there with a data absent reason.
    for code in ["sbp", "dbp"] {
        if parts.iter().any(|v| v.code == code) {
            continue;
        }
        if let Some(v) = codes::vital(code) {
            obs.component.push(ObservationComponent {
                code: concept(v, false),
                value_quantity: None,
                data_absent_reason: Some(CodeableConcept::one(
                    DATA_ABSENT_REASON,
                    "not-performed",
                    "Not Performed",
                )),
            });
        }
    }
    obs
}

fn alarm_observation(message: &TelemetryMessage, refs: Refs<'_>, alarm: &str) -> Observation {
    let mut obs = base(message, refs, ALARM_CODE);
    let known = DEVICE_ALARMS.iter().find(|(code, _, _)| *code == alarm);
    let display = known.map_or("", |(_, display, _)| display);
    let mut coding = vec![Coding::new(CS_DEVICE_ALARM, alarm, display)];
    if let Some((_, _, Some(mdc))) = known {
        coding.push(Coding::new(MDC, mdc.code, mdc.display));
    }
    obs.code = CodeableConcept {
        coding,
        text: Some(format!("Device technical alarm: {alarm}")),
    };
    obs
}

fn event_observation(message: &TelemetryMessage, refs: Refs<'_>, event: &WireEvent) -> Observation {
    let mut obs = base(message, refs, EVENT_CODE);
    let display = DEVICE_EVENTS
        .iter()
        .find(|(code, _)| *code == event.kind)
        .map_or("", |(_, display)| display);
    obs.code = CodeableConcept {
        coding: vec![Coding::new(CS_DEVICE_EVENT, &event.kind, display)],
        text: Some(format!("Device event: {}", event.kind)),
    };
    obs.value_date_time = Some(event.scheduled_at.clone());
    obs
}

/// What one Observation says, in medtwin's terms.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    key: Option<(String, u64)>,
    message: TelemetryMessage,
}

/// The telemetry messages a list of Observations carries, in order:
/// Observations of one message (same device and `seq` in their
/// identifiers) are merged back into it; an Observation without
/// medtwin's identifier is a message of its own (seq 0). `patient_of`
/// turns a literal subject reference (`Patient/12`) into a patient id
/// when the subject has no identifier.
pub fn telemetry(
    observations: &[Observation],
    patient_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<TelemetryMessage>, FhirError> {
    let mut out: Vec<(Option<(String, u64)>, TelemetryMessage)> = Vec::new();
    for obs in observations {
        let reading = reading(obs, patient_of)?;
        let merged = reading.key.as_ref().and_then(|key| {
            out.iter_mut()
                .find(|(k, _)| k.as_ref() == Some(key))
                .map(|(_, m)| m)
        });
        match merged {
            Some(message) => {
                message.values.extend(reading.message.values);
                message.alarm = message.alarm.take().or(reading.message.alarm);
                message.event = message.event.take().or(reading.message.event);
            }
            None => out.push((reading.key, reading.message)),
        }
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

fn reading(
    obs: &Observation,
    patient_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Reading, FhirError> {
    let subject = obs
        .subject
        .as_ref()
        .ok_or_else(|| FhirError::element("Observation.subject", "missing"))?;
    let patient_id = subject
        .identifier
        .as_ref()
        .and_then(|i| i.value.clone())
        .or_else(|| subject.reference.as_deref().and_then(patient_of))
        .ok_or_else(|| {
            FhirError::element(
                "Observation.subject",
                "names no known patient (no identifier, and the reference resolves to none)",
            )
        })?;
    let measured_at = obs.effective_date_time.clone().ok_or_else(|| {
        FhirError::element("Observation.effective[x]", "effectiveDateTime is required")
    })?;
    if medtwin_wire::parse_time(&measured_at).is_none() {
        return Err(FhirError::element(
            "Observation.effective[x]",
            format!("{measured_at:?} is not a dateTime with a time"),
        ));
    }
    let device = obs.device.as_ref();
    let device_id = device
        .and_then(|d| d.identifier.as_ref()?.value.clone())
        .or_else(|| device.and_then(|d| d.reference.clone()))
        .unwrap_or_default();
    let device_kind = device.and_then(|d| d.display.clone()).unwrap_or_default();
    let key = obs
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(SID_OBSERVATION))
        .and_then(|i| parse_key(i.value.as_deref()?));
    let mut message = TelemetryMessage {
        schema: TELEMETRY_SCHEMA.to_owned(),
        synthetic: true,
        patient_id,
        device_id,
        device_kind,
        seq: key.as_ref().map_or(0, |(_, seq)| *seq),
        measured_at,
        values: Vec::new(),
        alarm: None,
        event: None,
    };
    if let Some(alarm) = obs.code.code_in(CS_DEVICE_ALARM) {
        message.alarm = Some(alarm.to_owned());
    } else if let Some(kind) = obs.code.code_in(CS_DEVICE_EVENT) {
        let scheduled_at = obs.value_date_time.clone().ok_or_else(|| {
            FhirError::element(
                "Observation.valueDateTime",
                "a device event needs its scheduled time",
            )
        })?;
        message.event = Some(WireEvent {
            kind: kind.to_owned(),
            scheduled_at,
        });
    } else if is_bp_panel(&obs.code) {
        for (i, component) in obs.component.iter().enumerate() {
            if component.value_quantity.is_none() && component.data_absent_reason.is_some() {
                continue;
            }
            let v = vital_of(&component.code).ok_or_else(|| {
                FhirError::element(
                    "Observation.component.code",
                    format!("component {i} has no blood pressure code medtwin knows"),
                )
            })?;
            let q = component.value_quantity.as_ref().ok_or_else(|| {
                FhirError::element("Observation.component.valueQuantity", "missing")
            })?;
            message.values.push(wire_value(v, quantity_value(q, v)?));
        }
        if message.values.is_empty() {
            return Err(FhirError::element(
                "Observation.component",
                "a blood pressure panel with no components",
            ));
        }
    } else {
        let v = vital_of(&obs.code).ok_or_else(|| {
            FhirError::element(
                "Observation.code",
                "no LOINC, MDC or medtwin code medtwin knows",
            )
        })?;
        let value = if let Some(q) = &obs.value_quantity {
            quantity_value(q, v)?
        } else if let Some(n) = obs.value_integer {
            n as f64
        } else if let Some(cc) = &obs.value_codeable_concept {
            let code = cc.code_in(CS_ACVPU).unwrap_or_default();
            ACVPU.iter().position(|a| a.code == code).ok_or_else(|| {
                FhirError::element(
                    "Observation.valueCodeableConcept",
                    format!("{code:?} is not an ACVPU level"),
                )
            })? as f64
        } else {
            return Err(FhirError::element(
                "Observation.value[x]",
                "no valueQuantity, valueInteger or valueCodeableConcept",
            ));
        };
        message.values.push(wire_value(v, value));
    }
    Ok(Reading { key, message })
}

fn is_bp_panel(code: &CodeableConcept) -> bool {
    code.coding
        .iter()
        .any(|c| c.is(LOINC, LOINC_BP_PANEL.code) || c.is(MDC, MDC_BP.code))
}

fn vital_of(code: &CodeableConcept) -> Option<&'static VitalCode> {
    // LOINC first: it is what the profiles require; then MDC, then ours.
    [LOINC, MDC, CS_VITAL].iter().find_map(|system| {
        code.coding
            .iter()
            .filter(|c| c.system.as_deref() == Some(system))
            .find_map(|c| codes::vital_by_code(system, c.code.as_deref()?))
    })
}

fn quantity_value(q: &Quantity, v: &VitalCode) -> Result<f64, FhirError> {
    let value = q
        .value
        .ok_or_else(|| FhirError::element("Observation.valueQuantity.value", "missing"))?;
    if q.system.as_deref() != Some(UCUM) || q.code.as_deref() != Some(v.unit) {
        return Err(FhirError::element(
            "Observation.valueQuantity",
            format!(
                "{} must be in UCUM {:?}, not {:?} {:?}",
                v.wire, v.unit, q.system, q.code
            ),
        ));
    }
    Ok(value)
}

fn wire_value(v: &VitalCode, value: f64) -> WireValue {
    WireValue {
        code: v.wire.to_owned(),
        value,
        unit: v.unit.to_owned(),
        loinc: v.loinc.map(|l| l.code.to_owned()),
    }
}

/// `(device, seq)` of an identifier `<device>/<seq>/<code>` (the device id
/// may itself hold `/`).
pub fn parse_key(value: &str) -> Option<(String, u64)> {
    let mut parts = value.rsplitn(3, '/');
    let _code = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    let device = parts.next()?;
    Some((device.to_owned(), seq))
}

/// The same Observations as [`observations`], written straight to `out`
/// as compact JSON, one per line, without building them first: the
/// encoder's hot path (the twin's thread encodes every delivery). A test
/// holds the two equal.
pub fn write_observations(message: &TelemetryMessage, refs: Refs<'_>, out: &mut Vec<u8>) {
    let mut w = Writer { out, first: true };
    let has_spo2 = message.values.iter().any(|v| v.code == "spo2");
    let mut bp_done = false;
    for value in &message.values {
        if BP_PARTS.contains(&value.code.as_str()) {
            if !bp_done {
                w.line();
                w.bp_panel(message, refs);
                bp_done = true;
            }
            continue;
        }
        w.line();
        w.single(message, refs, value, has_spo2);
    }
    if let Some(alarm) = &message.alarm {
        w.line();
        w.alarm(message, refs, alarm);
    }
    if let Some(event) = &message.event {
        w.line();
        w.event(message, refs, event);
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Writer<'_> {
    fn line(&mut self) {
        if !self.first {
            self.out.push(b'\n');
        }
        self.first = false;
    }

    fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn string(&mut self, s: &str) {
        // Writing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, s);
    }

    fn number(&mut self, v: f64) {
        let _ = serde_json::to_writer(&mut *self.out, &v);
    }

    fn coding(&mut self, system: &str, code: &str, display: &str) {
        self.raw(r#"{"system":"#);
        self.string(system);
        self.raw(r#","code":"#);
        self.string(code);
        if !display.is_empty() {
            self.raw(r#","display":"#);
            self.string(display);
        }
        self.raw("}");
    }

    fn identifier(&mut self, system: &str, value: &str) {
        self.raw(r#"{"system":"#);
        self.string(system);
        self.raw(r#","value":"#);
        self.string(value);
        self.raw("}");
    }

    /// `resourceType`, `meta`, `identifier` and `status`.
    fn head(&mut self, message: &TelemetryMessage, profile: Option<&str>, key: &str) {
        self.raw(r#"{"resourceType":"Observation""#);
        if let Some(p) = profile {
            self.raw(r#","meta":{"profile":["#);
            self.string(p);
            self.raw("]}");
        }
        self.raw(r#","identifier":["#);
        self.raw(r#"{"system":"#);
        self.string(SID_OBSERVATION);
        self.raw(r#","value":"#);
        let _ = serde_json::to_writer(
            &mut *self.out,
            &format_args!("{}/{}/{key}", message.device_id, message.seq).to_string(),
        );
        self.raw(r#"}],"status":"final""#);
    }

    fn category(&mut self, c: Category) {
        self.raw(r#","category":[{"coding":["#);
        self.coding(OBSERVATION_CATEGORY, c.code(), c.display());
        self.raw("]}]");
    }

    fn concept(&mut self, v: &VitalCode, pulse_rate: bool) {
        self.raw(r#"{"coding":["#);
        let mut first = true;
        let mut sep = |w: &mut Self| {
            if !first {
                w.raw(",");
            }
            first = false;
        };
        if let Some(also) = v.loinc_also {
            sep(self);
            self.coding(LOINC, also.code, also.display);
        }
        if let Some(loinc) = v.loinc {
            sep(self);
            self.coding(LOINC, loinc.code, loinc.display);
        }
        let mdc = if pulse_rate {
            Some(MDC_PULSE_RATE)
        } else {
            v.mdc
        };
        if let Some(mdc) = mdc {
            sep(self);
            self.coding(MDC, mdc.code, mdc.display);
        }
        if v.loinc.is_none() && mdc.is_none() {
            sep(self);
            self.coding(CS_VITAL, v.wire, v.text);
        }
        self.raw(r#"],"text":"#);
        self.string(v.text);
        self.raw("}");
    }

    /// `subject` and `effectiveDateTime`.
    fn subject(&mut self, message: &TelemetryMessage, refs: Refs<'_>) {
        self.raw(r#","subject":{"#);
        if let Some(r) = refs.patient {
            self.raw(r#""reference":"#);
            self.string(r);
            self.raw(",");
        }
        self.raw(r#""identifier":"#);
        self.identifier(SID_PATIENT, &message.patient_id);
        self.raw(r#"},"effectiveDateTime":"#);
        self.string(&message.measured_at);
    }

    /// `device`, and the closing brace.
    fn tail(&mut self, message: &TelemetryMessage, refs: Refs<'_>) {
        self.raw(r#","device":{"#);
        if let Some(r) = refs.device {
            self.raw(r#""reference":"#);
            self.string(r);
            self.raw(",");
        }
        self.raw(r#""identifier":"#);
        self.identifier(SID_DEVICE, &message.device_id);
        if !message.device_kind.is_empty() {
            self.raw(r#","display":"#);
            self.string(&message.device_kind);
        }
        self.raw("}");
    }

    fn quantity(&mut self, value: f64, v: &VitalCode) {
        self.raw(r#"{"value":"#);
        self.number(value);
        self.raw(r#","unit":"#);
        self.string(v.unit_display);
        self.raw(r#","system":"#);
        self.string(UCUM);
        self.raw(r#","code":"#);
        self.string(v.unit);
        self.raw("}");
    }

    fn single(
        &mut self,
        message: &TelemetryMessage,
        refs: Refs<'_>,
        value: &WireValue,
        has_spo2: bool,
    ) {
        let Some(v) = codes::vital(&value.code) else {
            // Rare (a code this crate does not know): the typed path.
            let obs = single(message, refs, value, has_spo2);
            let _ = serde_json::to_writer(&mut *self.out, &obs);
            return;
        };
        self.head(message, v.profile, &value.code);
        self.category(v.category);
        self.raw(r#","code":"#);
        self.concept(v, v.wire == "hr" && has_spo2);
        self.subject(message, refs);
        let whole = (value.value.fract() == 0.0).then_some(value.value as i64);
        match (v.value, whole) {
            (ValueKind::Acvpu, Some(level)) if (0..5).contains(&level) => {
                let code = ACVPU[level as usize];
                self.raw(r#","valueCodeableConcept":{"coding":["#);
                self.coding(CS_ACVPU, code.code, code.display);
                self.raw("]}");
            }
            (ValueKind::Integer, Some(n)) => {
                self.raw(r#","valueInteger":"#);
                self.raw(&n.to_string());
            }
            _ => {
                self.raw(r#","valueQuantity":"#);
                self.quantity(value.value, v);
            }
        }
        self.tail(message, refs);
        self.raw("}");
    }

    fn bp_panel(&mut self, message: &TelemetryMessage, refs: Refs<'_>) {
        self.head(message, Some(PROFILE_BP), BP_CODE);
        self.category(Category::VitalSigns);
        self.raw(r#","code":{"coding":["#);
        self.coding(LOINC, LOINC_BP_PANEL.code, LOINC_BP_PANEL.display);
        self.raw(",");
        self.coding(MDC, MDC_BP.code, MDC_BP.display);
        self.raw(r#"],"text":"Blood pressure"}"#);
        self.subject(message, refs);
        self.tail(message, refs);
        self.raw(r#","component":["#);
        let mut first = true;
        for value in message
            .values
            .iter()
            .filter(|v| BP_PARTS.contains(&v.code.as_str()))
        {
            let Some(v) = codes::vital(&value.code) else {
                continue;
            };
            if !first {
                self.raw(",");
            }
            first = false;
            self.raw(r#"{"code":"#);
            self.concept(v, false);
            self.raw(r#","valueQuantity":"#);
            self.quantity(value.value, v);
            self.raw("}");
        }
        for code in ["sbp", "dbp"] {
            if message.values.iter().any(|v| v.code == code) {
                continue;
            }
            let Some(v) = codes::vital(code) else {
                continue;
            };
            if !first {
                self.raw(",");
            }
            first = false;
            self.raw(r#"{"code":"#);
            self.concept(v, false);
            self.raw(r#","dataAbsentReason":{"coding":["#);
            self.coding(DATA_ABSENT_REASON, "not-performed", "Not Performed");
            self.raw("]}}");
        }
        self.raw("]}");
    }

    fn alarm(&mut self, message: &TelemetryMessage, refs: Refs<'_>, alarm: &str) {
        let obs = alarm_observation(message, refs, alarm);
        let _ = serde_json::to_writer(&mut *self.out, &obs);
    }

    fn event(&mut self, message: &TelemetryMessage, refs: Refs<'_>, event: &WireEvent) {
        let obs = event_observation(message, refs, event);
        let _ = serde_json::to_writer(&mut *self.out, &obs);
    }
}
