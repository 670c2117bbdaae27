//! The HTTP side: routes, body limits, validation and ingestion.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::UNIX_EPOCH;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medtwin_sim::Vital;
use serde_json::json;

use super::alerts::Dispatcher;
use super::patient::{Patient, PatientView, VITALS};
use super::stats::{Counters, Reason, bump};
use medtwin_wire::{self as wire, MAX_BODY_BYTES, TELEMETRY_SCHEMA, TelemetryMessage};

/// Longest patient id accepted, in bytes: ids are names like `ward-003`; the
/// cap bounds what a million patients' keys can take.
const MAX_PATIENT_ID_BYTES: usize = 256;
/// Patient map shards: requests for different patients rarely contend.
const SHARDS: usize = 64;

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    shards: Box<[Mutex<HashMap<String, Patient>>]>,
    pub(crate) counters: Arc<Counters>,
    dispatcher: Dispatcher,
    smoothing_ms: u64,
    reset_after_ms: u64,
    max_patients: u64,
}

/// Settings of the ingest path.
pub(crate) struct Limits {
    pub(crate) smoothing_ms: u64,
    pub(crate) reset_after_ms: u64,
    pub(crate) max_patients: u64,
}

/// A refused request: which rule, and the detail a sender needs to fix it.
#[derive(Debug)]
struct Refusal {
    reason: Reason,
    detail: String,
}

impl Refusal {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// A message that passed validation.
struct Checked {
    patient_id: String,
    measured_ms: u64,
    /// `measured_at` exactly as received, for the alert's `measurement_time`.
    measured_at: String,
    /// A device technical alarm, passed on as a `device-<alarm>` alert.
    alarm: Option<String>,
    samples: Vec<(Vital, f64)>,
}

/// A new patient would exceed `max_patients`.
struct Full;

impl Shared {
    pub(crate) fn new(limits: Limits, counters: Arc<Counters>, dispatcher: Dispatcher) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            counters,
            dispatcher,
            smoothing_ms: limits.smoothing_ms,
            reset_after_ms: limits.reset_after_ms,
            max_patients: limits.max_patients,
        }
    }

    fn shard(&self, patient_id: &str) -> MutexGuard<'_, HashMap<String, Patient>> {
        let mut hasher = DefaultHasher::new();
        patient_id.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() % SHARDS as u64) as usize];
        // A panic while holding a shard leaves plain data behind, still
        // consistent enough to serve; do not let it take the backend down.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The view of one patient, if known.
    pub(crate) fn patient(&self, patient_id: &str) -> Option<PatientView> {
        self.shard(patient_id)
            .get(patient_id)
            .map(|p| p.view(patient_id))
    }

    /// Records one message, re-scores its patient and raises any alert.
    fn ingest(&self, message: &Checked) -> Result<(), Full> {
        let mut patients = self.shard(&message.patient_id);
        if !patients.contains_key(&message.patient_id) {
            let max = self.max_patients;
            self.counters
                .patients
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < max).then_some(n + 1)
                })
                .map_err(|_| Full)?;
            patients.insert(message.patient_id.clone(), Patient::default());
            self.dispatcher.register(&message.patient_id);
        }
        let Some(patient) = patients.get_mut(&message.patient_id) else {
            unreachable!("the patient was inserted above");
        };
        for &(vital, value) in &message.samples {
            if !patient.record(vital, message.measured_ms, value, self.smoothing_ms) {
                bump(&self.counters.out_of_order);
            }
        }
        let reached = patient.rescore(message.measured_ms, self.reset_after_ms);
        let total = patient.news2().total;
        // Raised under the shard lock so a patient's alerts queue in the
        // order its escalations happened.
        if reached.is_empty() {
            self.dispatcher
                .maybe_spurious(&message.patient_id, &message.measured_at, total);
        }
        for level in reached {
            self.dispatcher
                .raise(&message.patient_id, level, &message.measured_at, total);
        }
        if let Some(alarm) = &message.alarm
            && patient.alarm_due(alarm, message.measured_ms, self.reset_after_ms)
        {
            self.dispatcher
                .raise_device(&message.patient_id, alarm, &message.measured_at);
        }
        Ok(())
    }
}

/// The backend's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/measurements", post(post_measurements))
        .route("/v1/patients/{id}", get(get_patient))
        .route("/v1/stats", get(get_stats))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

fn error(status: StatusCode, reason: &str, detail: &str) -> Response {
    (status, Json(json!({ "error": reason, "detail": detail }))).into_response()
}

fn refuse(shared: &Shared, refusal: &Refusal) -> Response {
    shared.counters.reject(refusal.reason, 1);
    let status = match refusal.reason {
        Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, refusal.reason.name(), &refusal.detail)
}

async fn post_measurements(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let messages = match read_messages(&headers, body).await {
        Ok(messages) => messages,
        Err(refusal) => return refuse(&shared, &refusal),
    };
    // All or nothing: a body with one bad message changes no state, so a
    // sender can fix and resend the whole body.
    let checked = match messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            check(m).map_err(|r| Refusal::new(r.reason, format!("message {i}: {}", r.detail)))
        })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&shared, &refusal),
    };
    let mut n_accepted = 0_u64;
    let mut n_full = 0_u64;
    for message in &checked {
        match shared.ingest(message) {
            Ok(()) => n_accepted += 1,
            Err(Full) => n_full += 1,
        }
    }
    super::stats::add(&shared.counters.accepted, n_accepted);
    if n_full > 0 {
        shared.counters.reject(Reason::TooManyPatients, n_full);
        let body = json!({
            "error": Reason::TooManyPatients.name(),
            "detail": format!("{n_full} message(s) for new patients beyond max_patients = {}", shared.max_patients),
            "accepted": n_accepted,
            "rejected": n_full,
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": n_accepted })),
    )
        .into_response()
}

/// Reads at most [`MAX_BODY_BYTES`] and parses one message or an array.
async fn read_messages(headers: &HeaderMap, body: Body) -> Result<Vec<TelemetryMessage>, Refusal> {
    let too_large = || {
        Refusal::new(
            Reason::TooLarge,
            format!("body larger than {MAX_BODY_BYTES} bytes; send fewer messages per request"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = read_limited(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => too_large(),
            ReadError::Body(e) => {
                Refusal::new(Reason::BodyUnreadable, format!("reading the body: {e}"))
            }
        })?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = if first == Some(&b'[') {
        serde_json::from_slice::<Vec<TelemetryMessage>>(&bytes)
    } else {
        serde_json::from_slice::<TelemetryMessage>(&bytes).map(|m| vec![m])
    };
    parsed.map_err(|e| {
        Refusal::new(
            Reason::BadJson,
            format!("expected a {TELEMETRY_SCHEMA} message or an array of them: {e}"),
        )
    })
}

enum ReadError {
    TooLarge,
    Body(axum::Error),
}

/// Collects a body, stopping as soon as it exceeds `limit` (a chunked body
/// has no Content-Length to check up front).
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut collected = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(ReadError::Body)?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                return Err(ReadError::TooLarge);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

/// Technical alarms the wire format defines; others are ignored.
const KNOWN_ALARMS: [&str; 7] = [
    "low_battery",
    "sensor_off",
    "lead_off",
    "low_perfusion",
    "sensor_expired",
    "occlusion",
    "measurement_failed",
];

/// Validates one message against the wire format.
fn check(message: TelemetryMessage) -> Result<Checked, Refusal> {
    if message.schema != TELEMETRY_SCHEMA {
        return Err(Refusal::new(
            Reason::WrongSchema,
            format!(
                "schema is {:?}, expected {TELEMETRY_SCHEMA:?}",
                message.schema
            ),
        ));
    }
    if message.patient_id.is_empty() || message.patient_id.len() > MAX_PATIENT_ID_BYTES {
        return Err(Refusal::new(
            Reason::BadPatientId,
            format!("patient_id must be 1–{MAX_PATIENT_ID_BYTES} bytes"),
        ));
    }
    let measured_ms = wire::parse_time(&message.measured_at)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            Refusal::new(
                Reason::BadTime,
                format!(
                    "measured_at {:?} is not an RFC 3339 UTC time",
                    message.measured_at
                ),
            )
        })?;
    let samples = message
        .values
        .iter()
        .map(|v| {
            // Measured vitals and a nurse's charted observations (`acvpu`,
            // `o2_flow`, `spo2_scale`) alike: each has its unit and LOINC
            // code; what a coded value means is the scorer's business
            // (`patient.rs`: a code outside its list counts as not charted).
            let Some(&vital) = VITALS.iter().find(|vital| vital.code() == v.code) else {
                return Err(Refusal::new(
                    Reason::UnknownVital,
                    format!(
                        "unknown vital code {:?}; known: {}",
                        v.code,
                        VITALS.map(|v| v.code()).join(", ")
                    ),
                ));
            };
            if v.unit != vital.unit() {
                return Err(Refusal::new(
                    Reason::UnitMismatch,
                    format!("{} in {:?}, expected {:?}", v.code, v.unit, vital.unit()),
                ));
            }
            // SpO2 has two LOINC codes (2708-6 and the pulse-oximetry
            // 59408-5, docs/references.md "Interoperability"); accept both.
            let loinc = v.loinc.as_deref();
            let loinc_ok =
                loinc == vital.loinc() || (vital == Vital::Spo2 && loinc == Some("2708-6"));
            if !loinc_ok {
                return Err(Refusal::new(
                    Reason::LoincMismatch,
                    format!(
                        "{} with LOINC {:?}, expected {:?}",
                        v.code,
                        v.loinc,
                        vital.loinc()
                    ),
                ));
            }
            Ok((vital, v.value))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        patient_id: message.patient_id,
        measured_ms,
        measured_at: message.measured_at,
        samples,
        alarm: message.alarm.filter(|a| KNOWN_ALARMS.contains(&a.as_str())),
    })
}

async fn get_patient(
    State(shared): State<Arc<Shared>>,
    Path(patient_id): Path<String>,
) -> Response {
    match shared.patient(&patient_id) {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_patient",
            &format!("no measurements for patient {patient_id:?}"),
        ),
    }
}

async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.counters.snapshot()).into_response()
}
