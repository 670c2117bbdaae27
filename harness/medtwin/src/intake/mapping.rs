//! Reading alerts from systems medtwin has never seen: the scenario's
//! `[alerts.mapping]` says where a foreign payload keeps the patient, the
//! kind, the priority, the time and the id, as JSON pointers (RFC 6901:
//! `/subject/identifier/value`) for JSON and FHIR payloads, or HL7 v2
//! segment–field paths (`PID-3-1`, `OBX[2]-5`) for HL7. Without a mapping,
//! payloads are read as medtwin's own alert JSON, strictly.
//!
//! A payload the mapping cannot read is refused as `unmapped`, with a
//! sample, never dropped silently (`docs/intakes/mapping.md`).

use medtwin_wire::{AlertMessage, Priority, format_time, parse_hl7_time, parse_time};
use serde_json::Value;

use super::Refusal;
use crate::scenario::interop::MappingSpec;

/// Longest patient id or kind taken from a payload, bytes.
const MAX_FIELD_BYTES: usize = 256;

/// How an intake reads alert payloads.
#[derive(Clone, Debug, Default)]
pub struct AlertParser {
    mapping: Option<MappingSpec>,
}

impl AlertParser {
    /// medtwin's own alert JSON, or the scenario's mapping when given.
    pub fn new(mapping: Option<&MappingSpec>) -> AlertParser {
        AlertParser {
            mapping: mapping.cloned(),
        }
    }

    /// Whether a mapping is configured.
    pub fn is_mapped(&self) -> bool {
        self.mapping.is_some()
    }

    /// Reads a JSON payload (medtwin's alert, or anything the mapping
    /// reads: a FHIR resource, a vendor's alarm JSON).
    pub fn parse_json(&self, body: &[u8]) -> Result<AlertMessage, Refusal> {
        let Some(mapping) = &self.mapping else {
            return medtwin_wire::parse_alert(body).map_err(Refusal::Malformed);
        };
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::Unmapped(format!("not JSON: {e}")))?;
        self.parse_value(mapping, &value)
    }

    /// Reads an already parsed JSON value through the mapping (or as
    /// medtwin's alert when there is none).
    pub fn parse_json_value(&self, value: &Value) -> Result<AlertMessage, Refusal> {
        match &self.mapping {
            Some(mapping) => self.parse_value(mapping, value),
            None => serde_json::to_vec(value)
                .map_err(|e| Refusal::Malformed(e.to_string()))
                .and_then(|body| medtwin_wire::parse_alert(&body).map_err(Refusal::Malformed)),
        }
    }

    fn parse_value(&self, mapping: &MappingSpec, value: &Value) -> Result<AlertMessage, Refusal> {
        read(mapping, |pointer| {
            value.pointer(pointer).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
        })
    }

    /// Reads an HL7 v2 message through the mapping's segment–field paths,
    /// given a way to read a path; `None` when no mapping is configured
    /// (the intake then reads the message its own way).
    pub fn parse_hl7(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<AlertMessage, Refusal>> {
        let mapping = self.mapping.as_ref()?;
        Some(read(mapping, |path| get(path).filter(|v| !v.is_empty())))
    }
}

/// Applies a mapping, reading each configured location with `get`.
fn read(
    mapping: &MappingSpec,
    get: impl Fn(&str) -> Option<String>,
) -> Result<AlertMessage, Refusal> {
    let required = |field: &str, at: &Option<String>| -> Result<String, Refusal> {
        let at = at.as_deref().unwrap_or_default();
        let value = get(at).ok_or_else(|| Refusal::Unmapped(format!("no {field} at \"{at}\"")))?;
        let value = value.trim().to_owned();
        if value.is_empty() || value.len() > MAX_FIELD_BYTES {
            return Err(Refusal::Unmapped(format!(
                "{field} at \"{at}\" must be 1–{MAX_FIELD_BYTES} bytes, not {}",
                value.len()
            )));
        }
        Ok(value)
    };
    let patient_id = required("patient", &mapping.patient)?;
    let kind = match (&mapping.kind, &mapping.kind_value) {
        (Some(_), _) => {
            let word = required("kind", &mapping.kind)?;
            mapping.kinds.get(&word).cloned().unwrap_or(word)
        }
        (None, Some(fixed)) => fixed.clone(),
        (None, None) => return Err(Refusal::Unmapped("the mapping names no kind".into())),
    };
    let priority = match &mapping.priority {
        None => Priority::Medium,
        Some(at) => {
            let word = required("priority", &Some(at.clone()))?;
            let named = mapping
                .priorities
                .get(&word)
                .map(String::as_str)
                .unwrap_or(word.as_str());
            priority(named).ok_or_else(|| {
                Refusal::Unmapped(format!(
                    "priority \"{word}\" at \"{at}\" is not low, medium or high, and [alerts.mapping.priorities] does not name it"
                ))
            })?
        }
    };
    let measurement_time = match &mapping.time {
        None => None,
        Some(at) => {
            let text = required("time", &Some(at.clone()))?;
            let t = parse_time(&text)
                .or_else(|| parse_hl7_time(&text))
                .ok_or_else(|| {
                    Refusal::Unmapped(format!(
                        "time \"{text}\" at \"{at}\" is neither RFC 3339 nor an HL7 DTM"
                    ))
                })?;
            Some(format_time(t))
        }
    };
    let alert_id = match &mapping.id {
        None => None,
        Some(at) => Some(required("id", &Some(at.clone()))?),
    };
    Ok(AlertMessage {
        schema: None,
        alert_id,
        patient_id,
        kind,
        priority,
        measurement_time,
        score: None,
    })
}

fn priority(word: &str) -> Option<Priority> {
    match word.to_ascii_lowercase().as_str() {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MappingSpec {
        MappingSpec {
            patient: Some("/subject/identifier/value".into()),
            kind: Some("/code/coding/0/code".into()),
            priority: Some("/priority".into()),
            time: Some("/authoredOn".into()),
            id: Some("/id".into()),
            priorities: [("stat".to_owned(), "high".to_owned())].into(),
            kinds: [("news2-high-risk".to_owned(), "news2-high".to_owned())].into(),
            ..MappingSpec::default()
        }
    }

    #[test]
    fn a_foreign_json_alert_is_read_through_the_mapping() {
        let parser = AlertParser::new(Some(&spec()));
        let body = br#"{"resourceType":"Communication","id":"c1","priority":"stat",
            "subject":{"identifier":{"value":"ward-003"}},
            "code":{"coding":[{"code":"news2-high-risk"}]},
            "authoredOn":"2026-01-01T09:00:00+01:00"}"#;
        let alert = parser.parse_json(body).unwrap();
        assert_eq!(alert.patient_id, "ward-003");
        assert_eq!(alert.kind, "news2-high");
        assert_eq!(alert.priority, Priority::High);
        assert_eq!(
            alert.measurement_time.as_deref(),
            Some("2026-01-01T08:00:00.000Z")
        );
        assert_eq!(alert.alert_id.as_deref(), Some("c1"));
    }

    #[test]
    fn what_the_mapping_cannot_read_is_refused_with_the_reason() {
        let parser = AlertParser::new(Some(&spec()));
        let missing = parser.parse_json(br#"{"priority":"stat"}"#).unwrap_err();
        assert!(
            matches!(&missing, Refusal::Unmapped(why) if why.contains("/subject/identifier/value")),
            "{missing:?}"
        );
        let body = br#"{"subject":{"identifier":{"value":"p"}},"code":{"coding":[{"code":"k"}]},
            "priority":"whenever","authoredOn":"2026-01-01T09:00:00Z","id":"x"}"#;
        let bad = parser.parse_json(body).unwrap_err();
        assert!(
            matches!(&bad, Refusal::Unmapped(why) if why.contains("whenever")),
            "{bad:?}"
        );
        assert!(matches!(
            parser.parse_json(b"<xml/>"),
            Err(Refusal::Unmapped(_))
        ));
    }

    #[test]
    fn without_a_mapping_medtwins_alert_is_read_strictly() {
        let parser = AlertParser::default();
        let ok = parser.parse_json(br#"{"patient_id":"p","kind":"k","priority":"low"}"#);
        assert_eq!(ok.unwrap().priority, Priority::Low);
        assert!(matches!(
            parser.parse_json(br#"{"patient_id":"p","kind":"k","priority":"low","x":1}"#),
            Err(Refusal::Malformed(_))
        ));
        assert!(parser.parse_hl7(|_| None).is_none());
    }

    #[test]
    fn hl7_paths_are_read_through_the_getter() {
        let spec = MappingSpec {
            patient: Some("PID-3-1".into()),
            kind_value: Some("news2-high".into()),
            time: Some("OBX[1]-14".into()),
            ..MappingSpec::default()
        };
        let parser = AlertParser::new(Some(&spec));
        let fields = |path: &str| match path {
            "PID-3-1" => Some("ward-007".to_owned()),
            "OBX[1]-14" => Some("20260101090000+0000".to_owned()),
            _ => None,
        };
        let alert = parser.parse_hl7(fields).unwrap().unwrap();
        assert_eq!(
            (alert.patient_id.as_str(), alert.kind.as_str()),
            ("ward-007", "news2-high")
        );
        assert_eq!(alert.priority, Priority::Medium, "no priority path: medium");
        assert_eq!(
            alert.measurement_time.as_deref(),
            Some("2026-01-01T09:00:00.000Z")
        );
    }
}
