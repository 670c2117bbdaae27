//! The HTTP side: routes, the bearer token, body limits, validation and
//! ingestion. State is kept per run: each request names its run in the
//! `x-medtwin-run` header (medtwin sends it; absent means the run `""`),
//! and a run's patients are apart from every other run's, so back-to-back
//! runs against one standalone backend both start from nothing. The
//! [`MAX_RUNS`] most recently seen runs are kept; an older one is forgotten
//! when a new one arrives.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use medtwin_sim::Vital;
use serde_json::json;
use subtle::ConstantTimeEq as _;

use super::alerts::Dispatcher;
use super::patient::{Patient, PatientView, VITALS};
use super::stats::{Counters, Reason, bump};
use medtwin_listen::BodyError;
use medtwin_wire::{self as wire, MAX_BODY_BYTES, TELEMETRY_SCHEMA, TelemetryMessage};

/// Longest patient id accepted, in bytes: ids are names like `ward-003`; the
/// cap bounds what a million patients' keys can take.
const MAX_PATIENT_ID_BYTES: usize = 256;
/// Patient map shards: requests for different patients rarely contend.
const SHARDS: usize = 64;
/// Runs whose state is kept at once.
pub const MAX_RUNS: usize = 16;
/// Header naming the run a request belongs to.
pub const RUN_HEADER: &str = "x-medtwin-run";

/// The runs seen, most recent last.
#[derive(Debug, Default)]
struct Runs {
    order: Vec<String>,
}

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Patients by [`key`] (run and patient id).
    shards: Box<[Mutex<HashMap<String, Patient>>]>,
    runs: Mutex<Runs>,
    /// Bearer token every route but `/healthz` requires, when set.
    token: Option<String>,
    pub(crate) counters: Arc<Counters>,
    dispatcher: Dispatcher,
    smoothing_ms: u64,
    reset_after_ms: u64,
    max_patients: u64,
}

/// Settings of the ingest path.
pub(crate) struct Limits {
    pub(crate) token: Option<String>,
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
    /// The run's state key for the patient (see [`key`]).
    key: String,
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

/// Why a message taken by another ingest path (MLLP, MQTT, FHIR) was not
/// scored; already counted in the backend's rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code, reason = "built by the MLLP, MQTT and FHIR ingest paths")]
pub(crate) struct NotIngested {
    /// The rejection's name in the stats (`bad_time`, `too_many_patients`,
    /// ...).
    pub(crate) reason: &'static str,
    /// What is wrong, for the sender.
    pub(crate) detail: String,
    /// The backend is full (a new patient beyond `max_patients`): a
    /// condition of the backend, not of the message.
    pub(crate) full: bool,
}

impl Shared {
    pub(crate) fn new(limits: Limits, counters: Arc<Counters>, dispatcher: Dispatcher) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            runs: Mutex::default(),
            token: limits.token,
            counters,
            dispatcher,
            smoothing_ms: limits.smoothing_ms,
            reset_after_ms: limits.reset_after_ms,
            max_patients: limits.max_patients,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Patient>> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() % SHARDS as u64) as usize];
        // A panic while holding a shard leaves plain data behind, still
        // consistent enough to serve; do not let it take the backend down.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The view of one patient in `run` (default: the most recent run that
    /// knows the patient), if known.
    pub(crate) fn patient(&self, run: Option<&str>, patient_id: &str) -> Option<PatientView> {
        let runs: Vec<String> = match run {
            Some(run) => vec![run.to_owned()],
            None => self.lock_runs().order.iter().rev().cloned().collect(),
        };
        runs.iter().find_map(|run| {
            let key = key(run, patient_id);
            self.shard(&key).get(&key).map(|p| p.view(patient_id))
        })
    }

    fn lock_runs(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `run` as seen now; a new run beyond [`MAX_RUNS`] makes the
    /// backend forget the least recent one.
    fn touch_run(&self, run: &str) {
        let forgotten = {
            let mut runs = self.lock_runs();
            if runs.order.last().is_some_and(|r| r == run) {
                return;
            }
            if let Some(i) = runs.order.iter().position(|r| r == run) {
                let r = runs.order.remove(i);
                runs.order.push(r);
                return;
            }
            runs.order.push(run.to_owned());
            let forgotten = (runs.order.len() > MAX_RUNS).then(|| runs.order.remove(0));
            self.counters
                .runs
                .store(runs.order.len() as u64, Ordering::Relaxed);
            forgotten
        };
        if let Some(old) = forgotten {
            let prefix = key(&old, "");
            for shard in &self.shards {
                let mut patients = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let before = patients.len();
                patients.retain(|k, _| !k.starts_with(&prefix));
                let n = (before - patients.len()) as u64;
                self.counters.patients.fetch_sub(n, Ordering::Relaxed);
            }
        }
    }

    /// Validates, scores and alerts on one message taken by another ingest
    /// path (MLLP, MQTT, FHIR), exactly as `POST /v1/measurements` does, counted the same way.
    #[allow(dead_code, reason = "called by the MLLP, MQTT and FHIR ingest paths")]
    pub(crate) fn ingest_message(
        &self,
        run: &str,
        message: TelemetryMessage,
    ) -> Result<(), NotIngested> {
        let checked = check(run, message).map_err(|r| {
            self.counters.reject(r.reason, 1);
            NotIngested {
                reason: r.reason.name(),
                detail: r.detail,
                full: false,
            }
        })?;
        self.touch_run(run);
        match self.ingest(&checked) {
            Ok(()) => {
                super::stats::add(&self.counters.accepted, 1);
                Ok(())
            }
            Err(Full) => {
                self.counters.reject(Reason::TooManyPatients, 1);
                Err(NotIngested {
                    reason: Reason::TooManyPatients.name(),
                    detail: format!("a new patient beyond max_patients = {}", self.max_patients),
                    full: true,
                })
            }
        }
    }

    /// Counts a message another ingest path could not even decode.
    #[allow(dead_code, reason = "called by the MLLP, MQTT and FHIR ingest paths")]
    pub(crate) fn reject_undecodable(&self, reason: Reason) {
        self.counters.reject(reason, 1);
    }

    /// Records one message, re-scores its patient and raises any alert.
    fn ingest(&self, message: &Checked) -> Result<(), Full> {
        let mut patients = self.shard(&message.key);
        if !patients.contains_key(&message.key) {
            let max = self.max_patients;
            self.counters
                .patients
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < max).then_some(n + 1)
                })
                .map_err(|_| Full)?;
            patients.insert(message.key.clone(), Patient::default());
            self.dispatcher.register(&message.patient_id);
        }
        let Some(patient) = patients.get_mut(&message.key) else {
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
        for level in patient.take_cleared() {
            self.dispatcher.end(&message.patient_id, level);
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
        .route("/v1/waveforms", post(post_waveforms))
        .route("/v1/patients/{id}", get(get_patient))
        .route("/v1/stats", get(get_stats))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

/// The state key of a patient in a run.
fn key(run: &str, patient_id: &str) -> String {
    format!("{run}\u{1f}{patient_id}")
}

/// The run a request belongs to.
fn run_of(headers: &HeaderMap) -> &str {
    headers
        .get(RUN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `None` when the request may go on; the 401 otherwise (counted).
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = shared.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes()))) {
        return None;
    }
    shared.counters.reject(Reason::Unauthorized, 1);
    Some(error(
        StatusCode::UNAUTHORIZED,
        Reason::Unauthorized.name(),
        "send Authorization: Bearer <token> (the backend's --token-file or MEDTWIN_BACKEND_TOKEN)",
    ))
}

fn error(status: StatusCode, reason: &str, detail: &str) -> Response {
    (status, Json(json!({ "error": reason, "detail": detail }))).into_response()
}

fn refuse(shared: &Shared, refusal: &Refusal) -> Response {
    shared.counters.reject(refusal.reason, 1);
    let status = match refusal.reason {
        Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Reason::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, refusal.reason.name(), &refusal.detail)
}

async fn post_measurements(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The token first: an unauthenticated client's body is never read.
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let run = run_of(&headers);
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
            check(run, m).map_err(|r| Refusal::new(r.reason, format!("message {i}: {}", r.detail)))
        })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&shared, &refusal),
    };
    shared.touch_run(run);
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

/// `POST /v1/waveforms`: one waveform chunk, checked against its format,
/// counted (chunks and samples) and dropped: the reference backend scores
/// vitals, not waveforms, and keeps nothing per chunk, so memory does not
/// grow with them.
async fn post_waveforms(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let bytes = match read_bytes(&headers, body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refuse(&shared, &refusal),
    };
    let chunk = match serde_json::from_slice::<wire::WaveformChunk>(&bytes) {
        Ok(chunk) => chunk,
        Err(e) => {
            let detail = format!("expected a {} chunk: {e}", wire::WAVEFORM_SCHEMA);
            return refuse(&shared, &Refusal::new(Reason::BadWaveform, detail));
        }
    };
    if let Err(why) = chunk.check() {
        return refuse(&shared, &Refusal::new(Reason::BadWaveform, why));
    }
    let samples = u64::from(chunk.samples) * chunk.channels.len() as u64;
    bump(&shared.counters.waveform_chunks);
    super::stats::add(&shared.counters.waveform_samples, samples);
    (StatusCode::ACCEPTED, Json(json!({ "accepted": 1 }))).into_response()
}

/// Reads at most [`MAX_BODY_BYTES`] and parses one message or an array.
async fn read_messages(headers: &HeaderMap, body: Body) -> Result<Vec<TelemetryMessage>, Refusal> {
    let bytes = read_bytes(headers, body).await?;
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

/// Reads a body of at most [`MAX_BODY_BYTES`], with the body timeout.
async fn read_bytes(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Refusal> {
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
    let bytes =
        medtwin_listen::read_body(body, declared, MAX_BODY_BYTES, medtwin_listen::BODY_TIMEOUT)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => too_large(),
                BodyError::Cut(e) => {
                    Refusal::new(Reason::BodyUnreadable, format!("reading the body: {e}"))
                }
                BodyError::Timeout => Refusal::new(
                    Reason::BodyTimeout,
                    format!(
                        "the body took longer than {:?}",
                        medtwin_listen::BODY_TIMEOUT
                    ),
                ),
            })?;
    Ok(bytes)
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
fn check(run: &str, message: TelemetryMessage) -> Result<Checked, Refusal> {
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
        key: key(run, &message.patient_id),
        patient_id: message.patient_id,
        measured_ms,
        measured_at: message.measured_at,
        samples,
        alarm: message.alarm.filter(|a| KNOWN_ALARMS.contains(&a.as_str())),
    })
}

/// `?run=` on `GET /v1/patients/{id}`.
#[derive(Debug, serde::Deserialize)]
struct RunQuery {
    run: Option<String>,
}

async fn get_patient(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(patient_id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let run = query
        .run
        .or_else(|| headers.get(RUN_HEADER)?.to_str().ok().map(str::to_owned));
    match shared.patient(run.as_deref(), &patient_id) {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_patient",
            &format!("no measurements for patient {patient_id:?}"),
        ),
    }
}

async fn get_stats(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    Json(shared.counters.snapshot()).into_response()
}
