//! `Patient` and `Device`, created once per run by conditional create
//! (`If-None-Exist: identifier=<system>|<value>`), so reruns find them
//! instead of duplicating them.

use crate::codes::{DEVICE_SPECIALIZATIONS, MDC, SID_DEVICE, SID_PATIENT};
use crate::model::{
    CodeableConcept, Device, DeviceName, DeviceSpecialization, Identifier, Patient, Reference,
};

/// A medtwin patient: its identifier, active.
pub fn patient(patient_id: &str) -> Patient {
    Patient {
        identifier: vec![Identifier::new(SID_PATIENT, patient_id)],
        active: Some(true),
        ..Patient::default()
    }
}

/// A medtwin device: identifier, model (the catalogue entry), the MDC
/// device specialisation where the model is one the PHD IG lists, and its
/// patient (literal reference when known, and by identifier).
pub fn device(device_id: &str, model: &str, patient_id: &str, patient_ref: Option<&str>) -> Device {
    let specialization = DEVICE_SPECIALIZATIONS
        .iter()
        .find(|(word, _)| model.contains(word))
        .map(|(_, code)| DeviceSpecialization {
            system_type: CodeableConcept::one(MDC, code.code, code.display),
        });
    Device {
        identifier: vec![Identifier::new(SID_DEVICE, device_id)],
        status: Some("active".to_owned()),
        manufacturer: Some("medtwin (simulated device)".to_owned()),
        device_name: vec![DeviceName {
            name: model.to_owned(),
            kind: "model-name".to_owned(),
        }],
        model_number: Some(model.to_owned()),
        kind: Some(CodeableConcept {
            coding: Vec::new(),
            text: Some(model.to_owned()),
        }),
        specialization: specialization.into_iter().collect(),
        patient: Some(Reference {
            reference: patient_ref.map(str::to_owned),
            identifier: Some(Identifier::new(SID_PATIENT, patient_id)),
            display: None,
        }),
        ..Device::default()
    }
}

/// The search of a conditional create by identifier:
/// `identifier=<system>|<value>`, the value percent-encoded so a `/`,
/// `|`, `,` or `&` in an id cannot change the query's meaning.
pub fn if_none_exist(system: &str, value: &str) -> String {
    format!("identifier={}|{}", encode(system), encode(value))
}

/// Percent-encodes what a query value may not carry as is (RFC 3986
/// unreserved characters and `:` and `/` in URIs pass).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space, as forms write it).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(system, value)` of an `identifier=` search (`system|value`, `value`
/// alone, or `|value`), decoded.
pub fn parse_identifier_search(query: &str) -> Option<(Option<String>, String)> {
    let param = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("identifier="))?;
    let param = decode(param);
    Some(match param.split_once('|') {
        Some((system, value)) => (
            (!system.is_empty()).then(|| system.to_owned()),
            value.to_owned(),
        ),
        None => (None, param),
    })
}

/// A name-derived UUID (RFC 9562 version 8: custom) for `urn:uuid:`
/// fullUrls: the same name gives the same UUID, so a transaction Bundle
/// is a pure function of its messages.
pub fn uuid_for(name: &str) -> String {
    let a = fnv1a(name.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a(name.as_bytes(), 0x6c62_272e_07bb_0142);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
