//! Transaction `Bundle`s (all-or-nothing POSTs with conditional creates),
//! their responses, and `OperationOutcome`.

use serde::Serialize;
use serde_json::Value;

use crate::admin::{if_none_exist, uuid_for};
use crate::codes::SID_OBSERVATION;
use crate::error::FhirError;
use crate::model::{
    Bundle, BundleEntry, BundleRequest, Issue, Observation, OperationOutcome, resource_type,
};

/// One entry of a transaction to build: a resource to POST, with the
/// search that must find nothing (conditional create).
#[derive(Clone, Debug)]
pub struct Create {
    /// The resource as JSON.
    pub resource: Value,
    /// Its type (`Observation`), the POST's URL.
    pub resource_type: &'static str,
    /// A stable name for its `urn:uuid:` fullUrl.
    pub name: String,
    /// `If-None-Exist` search.
    pub if_none_exist: Option<String>,
}

/// The conditional create of an Observation: by its medtwin identifier
/// when it has one.
pub fn create_observation(obs: &Observation) -> Create {
    let key = obs
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(SID_OBSERVATION))
        .and_then(|i| i.value.clone());
    Create {
        // Serialising a struct of strings and numbers cannot fail; a NaN
        // (never produced by the twin) would become null.
        resource: serde_json::to_value(obs).unwrap_or(Value::Null),
        resource_type: "Observation",
        name: key.clone().unwrap_or_default(),
        if_none_exist: key.map(|k| if_none_exist(SID_OBSERVATION, &k)),
    }
}

/// A `transaction` Bundle of conditional creates: each entry a fresh
/// `urn:uuid:` fullUrl (derived from its name, so the Bundle is a pure
/// function of its entries), `request` POST with `ifNoneExist`.
pub fn transaction(creates: Vec<Create>) -> Bundle {
    Bundle {
        kind: "transaction".to_owned(),
        entry: creates
            .into_iter()
            .enumerate()
            .map(|(i, c)| BundleEntry {
                full_url: Some(format!(
                    "urn:uuid:{}",
                    uuid_for(&format!("{}#{i}#{}", c.resource_type, c.name))
                )),
                resource: Some(c.resource),
                request: Some(BundleRequest {
                    method: "POST".to_owned(),
                    url: c.resource_type.to_owned(),
                    if_none_exist: c.if_none_exist,
                }),
                response: None,
            })
            .collect(),
        ..Bundle::default()
    }
}

/// Compact JSON of a resource.
pub fn to_json(resource: &impl Serialize) -> Vec<u8> {
    // Serialising these types into memory cannot fail (no maps with
    // non-string keys, no failing Serialize impls).
    serde_json::to_vec(resource).unwrap_or_default()
}

/// Parses a JSON resource of the given type.
pub fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &'static str,
) -> Result<T, FhirError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|source| FhirError::Json { expected, source })?;
    from_value(value, expected)
}

/// Reads a JSON value as a resource of the given type.
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: Value,
    expected: &'static str,
) -> Result<T, FhirError> {
    match resource_type(&value) {
        Some(found) if found == expected => {}
        found => {
            return Err(FhirError::WrongType {
                expected,
                found: found.unwrap_or("nothing").to_owned(),
            });
        }
    }
    serde_json::from_value(value).map_err(|source| FhirError::Json { expected, source })
}

/// What a server said to a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactionOutcome {
    /// Every entry 2xx: the locations in order.
    Done(Vec<Option<String>>),
    /// An entry was not 2xx: its index, HTTP status and its issue.
    Failed {
        /// Index of the first entry that failed.
        index: usize,
        /// Its HTTP status.
        status: u16,
        /// The issue code, if the entry carried an OperationOutcome.
        issue: Option<Issue>,
    },
}

/// Reads a `transaction-response` Bundle against the number of entries
/// sent: a count that differs is an error, as is any other Bundle type.
pub fn transaction_outcome(body: &[u8], sent: usize) -> Result<TransactionOutcome, FhirError> {
    let bundle: Bundle = parse(body, "Bundle")?;
    if bundle.kind != "transaction-response" {
        return Err(FhirError::element(
            "Bundle.type",
            format!("{:?}, expected \"transaction-response\"", bundle.kind),
        ));
    }
    if bundle.entry.len() != sent {
        return Err(FhirError::element(
            "Bundle.entry",
            format!("{} entries answer {sent} sent", bundle.entry.len()),
        ));
    }
    let mut locations = Vec::with_capacity(sent);
    for (index, entry) in bundle.entry.iter().enumerate() {
        let response = entry
            .response
            .as_ref()
            .ok_or_else(|| FhirError::element("Bundle.entry.response", "missing"))?;
        let status = http_status(&response.status).ok_or_else(|| {
            FhirError::element(
                "Bundle.entry.response.status",
                format!("{:?} does not start with an HTTP status", response.status),
            )
        })?;
        if !(200..300).contains(&status) {
            let issue = response
                .outcome
                .clone()
                .and_then(|o| from_value::<OperationOutcome>(o, "OperationOutcome").ok())
                .and_then(|o| o.issue.into_iter().next());
            return Ok(TransactionOutcome::Failed {
                index,
                status,
                issue,
            });
        }
        locations.push(response.location.clone());
    }
    Ok(TransactionOutcome::Done(locations))
}

/// The 3-digit status a `Bundle.entry.response.status` starts with
/// (`201 Created`).
pub fn http_status(text: &str) -> Option<u16> {
    let digits: String = text
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (digits.len() == 3).then(|| digits.parse().ok()).flatten()
}

/// An OperationOutcome of one issue.
pub fn outcome(
    severity: &str,
    code: &str,
    diagnostics: impl Into<String>,
    expression: Option<&str>,
) -> OperationOutcome {
    OperationOutcome {
        issue: vec![Issue {
            severity: severity.to_owned(),
            code: code.to_owned(),
            diagnostics: Some(diagnostics.into()),
            expression: expression.map(str::to_owned).into_iter().collect(),
        }],
        ..OperationOutcome::default()
    }
}

/// The first error (or fatal) issue of an OperationOutcome body, else its
/// first issue; `None` when the body is not an OperationOutcome.
pub fn first_issue(body: &[u8]) -> Option<Issue> {
    let outcome: OperationOutcome = parse(body, "OperationOutcome").ok()?;
    let pick = outcome
        .issue
        .iter()
        .position(|i| i.severity == "error" || i.severity == "fatal")
        .unwrap_or(0);
    outcome.issue.into_iter().nth(pick)
}

/// `(type, id)` of a `Location` or `response.location`:
/// `[base]/Patient/12/_history/1`, `Patient/12`.
pub fn parse_location(location: &str) -> Option<(String, String)> {
    let path = location.split(['?', '#']).next()?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let at = parts.iter().rposition(|p| *p == "_history");
    let end = at.unwrap_or(parts.len());
    if end < 2 {
        return None;
    }
    let (kind, id) = (parts[end - 2], parts[end - 1]);
    let is_type = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    (is_type && !id.is_empty()).then(|| (kind.to_owned(), id.to_owned()))
}

/// One entry of a transaction as read: the request, and the resource left
/// as raw JSON to be parsed once, into its own type.
#[derive(Debug)]
pub struct RawEntry {
    /// `request.method`.
    pub method: String,
    /// `request.url`.
    pub url: String,
    /// `request.ifNoneExist`.
    pub if_none_exist: Option<String>,
    /// The resource's `resourceType`.
    pub resource_type: String,
    /// The resource.
    pub resource: Box<serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct RawBundle {
    #[serde(rename = "resourceType")]
    _resource_type: crate::model::BundleType,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    entry: Vec<RawBundleEntry>,
}

#[derive(serde::Deserialize)]
struct RawBundleEntry {
    #[serde(default)]
    resource: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    request: Option<BundleRequest>,
}

#[derive(serde::Deserialize)]
struct Typed {
    #[serde(rename = "resourceType")]
    resource_type: String,
}

#[derive(serde::Deserialize)]
struct Identified {
    #[serde(default)]
    identifier: Vec<crate::model::Identifier>,
}

/// Reads a Bundle's type and entries without building a JSON tree: each
/// entry's resource stays raw for [`parse_observation`] (or any type).
pub fn parse_transaction(body: &[u8]) -> Result<(String, Vec<RawEntry>), FhirError> {
    let bundle: RawBundle = serde_json::from_slice(body).map_err(|source| FhirError::Json {
        expected: "Bundle",
        source,
    })?;
    let mut out = Vec::with_capacity(bundle.entry.len());
    for (i, e) in bundle.entry.into_iter().enumerate() {
        let request = e.request.ok_or_else(|| {
            FhirError::element("Bundle.entry.request", format!("entry {i} has no request"))
        })?;
        let resource = e.resource.ok_or_else(|| {
            FhirError::element(
                "Bundle.entry.resource",
                format!("entry {i} has no resource"),
            )
        })?;
        let typed: Typed =
            serde_json::from_str(resource.get()).map_err(|source| FhirError::Json {
                expected: "resource",
                source,
            })?;
        out.push(RawEntry {
            method: request.method,
            url: request.url,
            if_none_exist: request.if_none_exist,
            resource_type: typed.resource_type,
            resource,
        });
    }
    Ok((bundle.kind, out))
}

/// Reads an Observation in one pass (its `resourceType` checked).
pub fn parse_observation(body: &[u8]) -> Result<Observation, FhirError> {
    serde_json::from_slice(body).map_err(|source| FhirError::Json {
        expected: "Observation",
        source,
    })
}

/// The `If-None-Exist` search of a raw Observation: its medtwin
/// identifier, if it has one.
pub fn observation_if_none_exist(resource: &[u8]) -> Option<String> {
    let ided: Identified = serde_json::from_slice(resource).ok()?;
    ided.identifier
        .into_iter()
        .find(|i| i.system.as_deref() == Some(SID_OBSERVATION))
        .and_then(|i| i.value)
        .map(|v| if_none_exist(SID_OBSERVATION, &v))
}

/// A transaction Bundle of conditional creates of raw Observations (each
/// one compact JSON resource), written without re-parsing them: the same
/// Bundle [`transaction`] builds from typed ones.
pub fn transaction_raw(resources: &[&[u8]]) -> Vec<u8> {
    let size: usize = resources.iter().map(|r| r.len() + 200).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"transaction","entry":["#);
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let ine = observation_if_none_exist(r);
        let name = ine
            .as_deref()
            .map_or("", |s| s.rsplit('|').next().unwrap_or(""));
        let name = crate::admin::decode(name);
        let full_url = format!("urn:uuid:{}", uuid_for(&format!("Observation#{i}#{name}")));
        out.extend_from_slice(br#"{"fullUrl":"#);
        // Writing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut out, &full_url);
        out.extend_from_slice(br#","resource":"#);
        out.extend_from_slice(r);
        out.extend_from_slice(br#","request":{"method":"POST","url":"Observation""#);
        if let Some(ine) = &ine {
            out.extend_from_slice(br#","ifNoneExist":"#);
            let _ = serde_json::to_writer(&mut out, ine);
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}");
    out
}
