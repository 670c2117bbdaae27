//! Alerts as FHIR: `DetectedIssue` (the risk detected), `Flag` (the
//! banner while it lasts) and `Communication` (the page sent), built from
//! an [`AlertMessage`] and read back.
//!
//! Priority (IEC 60601-1-8 low/medium/high) maps to `DetectedIssue.severity`
//! low/moderate/high, the core `flag-priority` extension PL/PM/PH, and
//! `Communication.priority` routine/urgent/stat. The alert kind is a code
//! in medtwin's alert-kind system; the alert id an identifier; the score an
//! extension; the triggering measurement's time `identifiedDateTime`,
//! `period.start`, or (Communication) an extension.

use medtwin_wire::{ALERT_SCHEMA, AlertMessage, Priority};
use serde_json::Value;

use crate::bundle::from_value;
use crate::codes::{
    COMMUNICATION_CATEGORY, CS_ALERT_KIND, EXT_ALERT_SCORE, EXT_TRIGGER_TIME, FLAG_CATEGORY,
    FLAG_PRIORITY_CODES, FLAG_PRIORITY_EXTENSION, SID_ALERT, SID_PATIENT,
};
use crate::error::FhirError;
use crate::model::{
    CodeableConcept, Communication, CommunicationPayload, DetectedIssue, Extension, Flag,
    Identifier, Period, Reference, resource_type,
};

/// The resource types an alert can take.
pub const ALERT_TYPES: [&str; 3] = ["DetectedIssue", "Flag", "Communication"];

fn kind_concept(alert: &AlertMessage) -> CodeableConcept {
    CodeableConcept {
        text: Some(alert.kind.clone()),
        ..CodeableConcept::one(CS_ALERT_KIND, &alert.kind, "")
    }
}

fn patient(alert: &AlertMessage, patient_ref: Option<&str>) -> Reference {
    Reference {
        reference: patient_ref.map(str::to_owned),
        identifier: Some(Identifier::new(SID_PATIENT, &alert.patient_id)),
        display: None,
    }
}

fn identifiers(alert: &AlertMessage) -> Vec<Identifier> {
    alert
        .alert_id
        .iter()
        .map(|id| Identifier::new(SID_ALERT, id))
        .collect()
}

fn score(alert: &AlertMessage) -> Vec<Extension> {
    alert
        .score
        .map(|s| Extension {
            url: EXT_ALERT_SCORE.to_owned(),
            value_integer: Some(s),
            ..Extension::default()
        })
        .into_iter()
        .collect()
}

fn detail(alert: &AlertMessage) -> String {
    match alert.score {
        Some(s) => format!("{} for {} (score {s})", alert.kind, alert.patient_id),
        None => format!("{} for {}", alert.kind, alert.patient_id),
    }
}

/// The alert as a `DetectedIssue` (status final).
pub fn detected_issue(alert: &AlertMessage, patient_ref: Option<&str>) -> DetectedIssue {
    DetectedIssue {
        extension: score(alert),
        identifier: identifiers(alert),
        status: "final".to_owned(),
        code: Some(kind_concept(alert)),
        severity: Some(
            match alert.priority {
                Priority::High => "high",
                Priority::Medium => "moderate",
                Priority::Low => "low",
            }
            .to_owned(),
        ),
        patient: Some(patient(alert, patient_ref)),
        identified_date_time: alert.measurement_time.clone(),
        detail: Some(detail(alert)),
        ..DetectedIssue::default()
    }
}

/// The alert as an active clinical `Flag`.
pub fn flag(alert: &AlertMessage, patient_ref: Option<&str>) -> Flag {
    let (code, display) = match alert.priority {
        Priority::High => ("PH", "High priority"),
        Priority::Medium => ("PM", "Medium priority"),
        Priority::Low => ("PL", "Low priority"),
    };
    let mut extension = vec![Extension {
        url: FLAG_PRIORITY_EXTENSION.to_owned(),
        value_codeable_concept: Some(CodeableConcept::one(FLAG_PRIORITY_CODES, code, display)),
        ..Extension::default()
    }];
    extension.extend(score(alert));
    Flag {
        extension,
        identifier: identifiers(alert),
        status: "active".to_owned(),
        category: vec![CodeableConcept::one(FLAG_CATEGORY, "clinical", "Clinical")],
        code: kind_concept(alert),
        subject: patient(alert, patient_ref),
        period: alert.measurement_time.as_ref().map(|t| Period {
            start: Some(t.clone()),
            end: None,
        }),
        ..Flag::default()
    }
}

/// The alert as a completed `Communication` (category alert) sent at
/// `sent`.
pub fn communication(alert: &AlertMessage, patient_ref: Option<&str>, sent: &str) -> Communication {
    let mut extension = Vec::new();
    if let Some(t) = &alert.measurement_time {
        extension.push(Extension {
            url: EXT_TRIGGER_TIME.to_owned(),
            value_date_time: Some(t.clone()),
            ..Extension::default()
        });
    }
    extension.extend(score(alert));
    Communication {
        extension,
        identifier: identifiers(alert),
        status: "completed".to_owned(),
        category: vec![CodeableConcept::one(
            COMMUNICATION_CATEGORY,
            "alert",
            "Alert",
        )],
        priority: Some(
            match alert.priority {
                Priority::High => "stat",
                Priority::Medium => "urgent",
                Priority::Low => "routine",
            }
            .to_owned(),
        ),
        subject: Some(patient(alert, patient_ref)),
        sent: Some(sent.to_owned()),
        reason_code: vec![kind_concept(alert)],
        payload: vec![CommunicationPayload {
            content_string: detail(alert),
        }],
        ..Communication::default()
    }
}

fn patient_id(r: Option<&Reference>, element: &'static str) -> Result<String, FhirError> {
    let r = r.ok_or_else(|| FhirError::element(element, "missing"))?;
    if let Some(id) = r.identifier.as_ref().and_then(|i| i.value.clone()) {
        return Ok(id);
    }
    // A literal reference alone: the id part names the patient.
    r.reference
        .as_deref()
        .and_then(|s| s.rsplit('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| FhirError::element(element, "names no patient"))
}

fn kind_of(c: Option<&CodeableConcept>, element: &'static str) -> Result<String, FhirError> {
    let c = c.ok_or_else(|| FhirError::element(element, "missing"))?;
    c.code_in(CS_ALERT_KIND)
        .or_else(|| c.coding.iter().find_map(|c| c.code.as_deref()))
        .or(c.text.as_deref())
        .map(str::to_owned)
        .ok_or_else(|| FhirError::element(element, "has no code and no text"))
}

fn ext_score(ext: &[Extension]) -> Option<i64> {
    ext.iter()
        .find(|e| e.url == EXT_ALERT_SCORE)
        .and_then(|e| e.value_integer)
}

fn alert_id(identifiers: &[Identifier], id: Option<&String>) -> Option<String> {
    identifiers
        .iter()
        .find(|i| i.system.as_deref() == Some(SID_ALERT))
        .and_then(|i| i.value.clone())
        .or_else(|| id.cloned())
}

/// The alert a `DetectedIssue`, `Flag` or `Communication` carries.
pub fn alert_from(resource: Value) -> Result<AlertMessage, FhirError> {
    let found = resource_type(&resource).unwrap_or("nothing").to_owned();
    let alert = |patient_id, kind, priority, measurement_time, alert_id, score| AlertMessage {
        schema: Some(ALERT_SCHEMA.to_owned()),
        alert_id,
        patient_id,
        kind,
        priority,
        measurement_time,
        score,
    };
    match found.as_str() {
        "DetectedIssue" => {
            let r: DetectedIssue = from_value(resource, "DetectedIssue")?;
            let priority = match r.severity.as_deref() {
                Some("high") => Priority::High,
                Some("moderate") => Priority::Medium,
                Some("low") => Priority::Low,
                other => {
                    return Err(FhirError::element(
                        "DetectedIssue.severity",
                        format!("{other:?} is not high, moderate or low"),
                    ));
                }
            };
            Ok(alert(
                patient_id(r.patient.as_ref(), "DetectedIssue.patient")?,
                kind_of(r.code.as_ref(), "DetectedIssue.code")?,
                priority,
                r.identified_date_time.clone(),
                alert_id(&r.identifier, r.id.as_ref()),
                ext_score(&r.extension),
            ))
        }
        "Flag" => {
            let r: Flag = from_value(resource, "Flag")?;
            let code = r
                .extension
                .iter()
                .find(|e| e.url == FLAG_PRIORITY_EXTENSION)
                .and_then(|e| e.value_codeable_concept.as_ref())
                .and_then(|c| c.code_in(FLAG_PRIORITY_CODES));
            let priority = match code {
                Some("PH") => Priority::High,
                Some("PM") => Priority::Medium,
                Some("PL") => Priority::Low,
                other => {
                    return Err(FhirError::element(
                        "Flag.extension:flag-priority",
                        format!("{other:?} is not PH, PM or PL"),
                    ));
                }
            };
            Ok(alert(
                patient_id(Some(&r.subject), "Flag.subject")?,
                kind_of(Some(&r.code), "Flag.code")?,
                priority,
                r.period.as_ref().and_then(|p| p.start.clone()),
                alert_id(&r.identifier, r.id.as_ref()),
                ext_score(&r.extension),
            ))
        }
        "Communication" => {
            let r: Communication = from_value(resource, "Communication")?;
            let priority = match r.priority.as_deref() {
                Some("stat" | "asap") => Priority::High,
                Some("urgent") => Priority::Medium,
                Some("routine") => Priority::Low,
                other => {
                    return Err(FhirError::element(
                        "Communication.priority",
                        format!("{other:?} is not routine, urgent, asap or stat"),
                    ));
                }
            };
            let time = r
                .extension
                .iter()
                .find(|e| e.url == EXT_TRIGGER_TIME)
                .and_then(|e| e.value_date_time.clone());
            Ok(alert(
                patient_id(r.subject.as_ref(), "Communication.subject")?,
                kind_of(r.reason_code.first(), "Communication.reasonCode")?,
                priority,
                time,
                alert_id(&r.identifier, r.id.as_ref()),
                ext_score(&r.extension),
            ))
        }
        _ => Err(FhirError::WrongType {
            expected: "DetectedIssue, Flag or Communication",
            found,
        }),
    }
}
