//! FHIR R4 on the backend's HTTP port, under `/fhir` (same bearer token as
//! every other route): telemetry in as Observations (one per request, or
//! transaction Bundles, all-or-nothing), scored by the same ingest as
//! `POST /v1/measurements`; Patient and Device by conditional create;
//! alerts out as `DetectedIssue`, `Flag` and `Communication` (searchable
//! with `_lastUpdated` and `patient`) and as R4 Subscriptions Backport
//! rest-hook notifications (handshake, event-notification, heartbeat).
//!
//! The store is always on: every alert the lanes deliver is stored
//! (bounded: the oldest are forgotten) whether or not anyone polls or
//! subscribes. Every error is an `OperationOutcome` with the status FHIR
//! gives it (400 unreadable, 404 unknown, 412 several matches, 415 media
//! type, 422 unprocessable, 503 full).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medtwin_fhir::admin::{decode, parse_identifier_search};
use medtwin_fhir::alert::{communication, detected_issue, flag};
use medtwin_fhir::bundle::{RawEntry, from_value, outcome, parse_observation, parse_transaction};
use medtwin_fhir::codes::{FHIR_JSON, SID_OBSERVATION, TOPIC_ALERT};
use medtwin_fhir::model::{
    Bundle, BundleEntry, BundleResponse, Identifier, Meta, Observation, OperationOutcome,
    Subscription,
};
use medtwin_fhir::observation::telemetry;
use medtwin_fhir::subscription::{
    Event, Focus, Notification, NotificationType, SubscriptionSettings, notification_bundle,
    settings,
};
use medtwin_fhir::{FhirError, model};
use medtwin_listen::BodyError;
use medtwin_wire::{AlertMessage, format_time, parse_time};
use serde::Serialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use tokio::sync::mpsc;

use crate::server::{NotIngested, RUN_HEADER, Shared};
use crate::sink::Phase;
use crate::stats::Reason;

/// Largest FHIR request body (a transaction Bundle of many Observations).
pub const MAX_FHIR_BODY_BYTES: usize = 1 << 20;
/// Patients and Devices kept (each kind).
pub const MAX_ADMIN_RESOURCES: usize = 200_000;
/// Observation identifiers remembered for conditional create (per run and
/// identifier); the oldest are forgotten.
pub const MAX_SEEN_OBSERVATIONS: usize = 1_000_000;
/// Alert resources kept (DetectedIssue, Flag and Communication together).
pub const MAX_ALERT_RESOURCES: usize = 30_000;
/// Active subscriptions at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Events waiting for one subscription's rest-hook; more are dropped and
/// the subscriber sees the gap in `events-since-subscription-start`.
pub const NOTIFY_QUEUE: usize = 1_024;
/// Timeout of one notification unless the subscription asks for another
/// (bounded by [`MAX_NOTIFY_TIMEOUT`]).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest notification timeout a subscription may ask for.
pub const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest heartbeat period honoured.
pub const MIN_HEARTBEAT: Duration = Duration::from_secs(1);
/// Search results per page by default, and at most.
const DEFAULT_COUNT: usize = 100;
const MAX_COUNT: usize = 1_000;
/// Resource types alerts are stored as.
const ALERT_TYPES: [&str; 3] = ["DetectedIssue", "Flag", "Communication"];

/// One stored resource.
#[derive(Debug, Clone)]
struct Stored {
    resource: Value,
    last_updated_ms: u64,
    /// The patient it is about (identifier value), for `patient=`.
    patient: Option<String>,
}

/// One subscription's live state.
#[derive(Debug)]
struct Live {
    id: String,
    focus_type: &'static str,
    events: Arc<AtomicU64>,
    tx: mpsc::Sender<Event>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (type, id) → resource.
    resources: HashMap<(String, String), Stored>,
    /// (type, system, value) → ids with that identifier.
    by_identifier: HashMap<(String, String, String), Vec<String>>,
    /// Alert resources, oldest first (for the bound).
    alert_order: VecDeque<(String, String)>,
    /// (run, observation identifier) → id; and its order for the bound.
    seen: HashMap<(String, String), String>,
    seen_order: VecDeque<(String, String)>,
    /// Alert id → its Flag's id (an end makes it inactive).
    flags: HashMap<String, String>,
    admin_count: HashMap<String, usize>,
    subscriptions: Vec<Live>,
    next_id: u64,
    last_updated_ms: u64,
}

/// Counters of the FHIR side.
#[derive(Debug, Default)]
struct Counters {
    notifications_sent: AtomicU64,
    notifications_failed: AtomicU64,
    events_dropped: AtomicU64,
}

/// The FHIR store and its subscriptions.
#[derive(Debug)]
pub(crate) struct FhirStore {
    token: Option<String>,
    inner: Mutex<Inner>,
    client: reqwest::Client,
    counters: Counters,
}

impl FhirStore {
    /// An empty store requiring `token` (when set) on every request.
    pub(crate) fn new(
        token: Option<String>,
        tls: Option<&medtwin_tls::ClientTls>,
    ) -> Result<Arc<FhirStore>, reqwest::Error> {
        medtwin_tls::install_default_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(MAX_NOTIFY_TIMEOUT)
            .connect_timeout(NOTIFY_TIMEOUT)
            .no_proxy();
        if let Some(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls.config_owned());
        }
        let client = builder.build()?;
        Ok(Arc::new(FhirStore {
            token,
            inner: Mutex::new(Inner::default()),
            client,
            counters: Counters::default(),
        }))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Each update is a few inserts; a panic elsewhere leaves usable data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores one alert phase: a start becomes a DetectedIssue, an active
    /// Flag and a Communication, and an event for every subscription; an
    /// end makes its Flag inactive.
    pub(crate) fn record_alert(&self, alert: &AlertMessage, phase: Phase) {
        let now = format_time(SystemTime::now());
        let mut inner = self.inner();
        match phase {
            Phase::End => {
                let Some(id) = alert
                    .alert_id
                    .as_ref()
                    .and_then(|a| inner.flags.get(a).cloned())
                else {
                    return;
                };
                let ms = inner.tick();
                if let Some(s) = inner.resources.get_mut(&("Flag".to_owned(), id)) {
                    s.resource["status"] = json!("inactive");
                    if let Some(Value::Object(period)) = s.resource.get_mut("period") {
                        period.insert("end".into(), json!(format_ms(ms)));
                    }
                    bump_meta(&mut s.resource, ms);
                    s.last_updated_ms = ms;
                }
            }
            Phase::Start => {
                let patient_ref = inner
                    .find(
                        "Patient",
                        medtwin_fhir::codes::SID_PATIENT,
                        &alert.patient_id,
                    )
                    .map(|id| format!("Patient/{id}"));
                let resources = [
                    to_value(&detected_issue(alert, patient_ref.as_deref())),
                    to_value(&flag(alert, patient_ref.as_deref())),
                    to_value(&communication(alert, patient_ref.as_deref(), &now)),
                ];
                let mut ids = Vec::new();
                for (kind, resource) in ALERT_TYPES.iter().zip(resources) {
                    let (id, stored) = inner.insert_alert(kind, resource, &alert.patient_id);
                    if *kind == "Flag"
                        && let Some(a) = &alert.alert_id
                    {
                        // Bounded like the resources: the oldest alerts'
                        // ends are then no longer marked on their Flags.
                        if inner.flags.len() >= MAX_ALERT_RESOURCES {
                            inner.flags.clear();
                        }
                        inner.flags.insert(a.clone(), id.clone());
                    }
                    ids.push((*kind, id, stored));
                }
                for sub in &inner.subscriptions {
                    let Some((kind, id, resource)) =
                        ids.iter().find(|(k, _, _)| *k == sub.focus_type)
                    else {
                        continue;
                    };
                    let number = sub.events.fetch_add(1, Ordering::Relaxed) + 1;
                    let event = Event {
                        number,
                        timestamp: now.clone(),
                        focus: Some(Focus {
                            full_url: format!("{kind}/{id}"),
                            resource_type: (*kind).to_owned(),
                            resource: Some(resource.clone()),
                        }),
                    };
                    if sub.tx.try_send(event).is_err() {
                        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = self.token.as_deref() else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes())))
    }
}

impl Inner {
    /// A new `lastUpdated`, strictly after the previous one, so a poll
    /// with `_lastUpdated=gt<the newest seen>` misses nothing.
    fn tick(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_updated_ms = now.max(self.last_updated_ms + 1);
        self.last_updated_ms
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn find(&self, kind: &str, system: &str, value: &str) -> Option<String> {
        self.by_identifier
            .get(&(kind.to_owned(), system.to_owned(), value.to_owned()))
            .and_then(|ids| ids.first().cloned())
    }

    fn index(&mut self, kind: &str, resource: &Value, id: &str) {
        for i in identifiers(resource) {
            if let (Some(system), Some(value)) = (i.system, i.value) {
                self.by_identifier
                    .entry((kind.to_owned(), system, value))
                    .or_default()
                    .push(id.to_owned());
            }
        }
    }

    fn unindex(&mut self, kind: &str, resource: &Value, id: &str) {
        for i in identifiers(resource) {
            if let (Some(system), Some(value)) = (i.system, i.value) {
                let key = (kind.to_owned(), system, value);
                if let Some(ids) = self.by_identifier.get_mut(&key) {
                    ids.retain(|x| x != id);
                    if ids.is_empty() {
                        self.by_identifier.remove(&key);
                    }
                }
            }
        }
    }

    fn insert(
        &mut self,
        kind: &str,
        mut resource: Value,
        patient: Option<String>,
    ) -> (String, Value) {
        let id = self.new_id(&kind[..2].to_ascii_lowercase());
        let ms = self.tick();
        resource["id"] = json!(id);
        resource["meta"] = json!({"versionId": "1", "lastUpdated": format_ms(ms)});
        self.index(kind, &resource, &id);
        self.resources.insert(
            (kind.to_owned(), id.clone()),
            Stored {
                resource: resource.clone(),
                last_updated_ms: ms,
                patient,
            },
        );
        (id, resource)
    }

    fn insert_alert(&mut self, kind: &str, resource: Value, patient: &str) -> (String, Value) {
        while self.alert_order.len() >= MAX_ALERT_RESOURCES {
            if let Some(old) = self.alert_order.pop_front()
                && let Some(s) = self.resources.remove(&old)
            {
                self.unindex(&old.0, &s.resource, &old.1);
            }
        }
        let (id, stored) = self.insert(kind, resource, Some(patient.to_owned()));
        self.alert_order.push_back((kind.to_owned(), id.clone()));
        (id, stored)
    }

    fn remember(&mut self, key: (String, String), id: String) {
        while self.seen_order.len() >= MAX_SEEN_OBSERVATIONS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen_order.push_back(key.clone());
        self.seen.insert(key, id);
    }

    /// The patient id (identifier value) a literal `Patient/<id>` names.
    fn patient_of(&self, reference: &str) -> Option<String> {
        let id = reference.rsplit('/').next()?;
        let stored = self.resources.get(&("Patient".to_owned(), id.to_owned()))?;
        identifiers(&stored.resource)
            .into_iter()
            .find_map(|i| i.value)
    }
}

fn to_value(resource: &impl Serialize) -> Value {
    // Our resource types serialise to JSON objects without fail.
    serde_json::to_value(resource).unwrap_or(Value::Null)
}

fn identifiers(resource: &Value) -> Vec<Identifier> {
    resource
        .get("identifier")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn format_ms(ms: u64) -> String {
    format_time(UNIX_EPOCH + Duration::from_millis(ms))
}

fn bump_meta(resource: &mut Value, ms: u64) {
    let version = resource["meta"]["versionId"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    resource["meta"] =
        json!({"versionId": (version + 1).to_string(), "lastUpdated": format_ms(ms)});
}

/// State of the FHIR routes.
#[derive(Clone)]
struct Fhir {
    shared: Arc<Shared>,
    store: Arc<FhirStore>,
}

/// The `/fhir` routes (to be nested under `/fhir`).
pub(crate) fn router(shared: Arc<Shared>, store: Arc<FhirStore>) -> Router {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/", post(post_bundle))
        .route("/{kind}", post(post_resource).get(search))
        .route("/{kind}/{id}", get(read).delete(delete))
        .fallback(not_found)
        .with_state(Fhir { shared, store })
}

/// An OperationOutcome answer.
fn oo(status: StatusCode, code: &str, diagnostics: impl Into<String>) -> Response {
    fhir_json(status, &outcome("error", code, diagnostics, None), None)
}

fn oo_of(status: StatusCode, e: &FhirError) -> Response {
    fhir_json(
        status,
        &outcome("error", e.issue_code(), e.to_string(), e.expression()),
        None,
    )
}

fn fhir_json(status: StatusCode, body: &impl Serialize, location: Option<String>) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, l);
    }
    response
}

/// The 401 (counted as the rest of the backend counts it).
fn check_auth(f: &Fhir, headers: &HeaderMap) -> Option<Response> {
    if f.store.authorized(headers) {
        return None;
    }
    f.shared.counters.reject(Reason::Unauthorized, 1);
    Some(oo(
        StatusCode::UNAUTHORIZED,
        "login",
        "send Authorization: Bearer <token> (the backend's --token-file or MEDTWIN_BACKEND_TOKEN)",
    ))
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

async fn body_of(f: &Fhir, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = media.split(';').next().unwrap_or("").trim();
    if !matches!(essence, "application/fhir+json" | "application/json" | "") {
        return Err(oo(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("Content-Type {media:?}: send {FHIR_JSON}"),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    medtwin_listen::read_body(
        body,
        declared,
        MAX_FHIR_BODY_BYTES,
        medtwin_listen::BODY_TIMEOUT,
    )
    .await
    .map(|b| b.to_vec())
    .map_err(|e| {
        let (reason, status, code, text) = match e {
            BodyError::TooLarge => (
                Reason::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-long",
                format!("body larger than {MAX_FHIR_BODY_BYTES} bytes"),
            ),
            BodyError::Cut(e) => (
                Reason::BodyUnreadable,
                StatusCode::BAD_REQUEST,
                "incomplete",
                format!("reading the body: {e}"),
            ),
            BodyError::Timeout => (
                Reason::BodyTimeout,
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the body was too slow".to_owned(),
            ),
        };
        f.shared.counters.reject(reason, 1);
        oo(status, code, text)
    })
}

async fn metadata(State(f): State<Fhir>, headers: HeaderMap) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    let search = |names: &[(&str, &str)]| -> Vec<Value> {
        names
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t}))
            .collect()
    };
    let create = |kind: &str| {
        json!({"type": kind, "interaction": [{"code": "create"}, {"code": "read"}, {"code": "search-type"}],
               "conditionalCreate": true,
               "searchParam": search(&[("identifier", "token")])})
    };
    let alert = |kind: &str| {
        json!({"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(&[("_lastUpdated", "date"), ("patient", "reference"), ("_count", "number")])})
    };
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": {"name": "medtwin reference backend"},
        "implementation": {"description": "medtwin's reference backend (synthetic data only)", "url": base_url(&headers)},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "resource": [
                create("Patient"),
                create("Device"),
                {"type": "Observation", "interaction": [{"code": "create"}], "conditionalCreate": true},
                alert("DetectedIssue"),
                alert("Flag"),
                alert("Communication"),
                {"type": "Subscription", "interaction": [{"code": "create"}, {"code": "read"}, {"code": "delete"}],
                 "supportedProfile": [medtwin_fhir::codes::PROFILE_BACKPORT_SUBSCRIPTION]}
            ],
            "interaction": [{"code": "transaction"}]
        }]
    });
    fhir_json(StatusCode::OK, &body, None)
}

async fn not_found(State(f): State<Fhir>, headers: HeaderMap) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    oo(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such FHIR interaction here",
    )
}

/// What one conditional create did.
struct Created {
    status: StatusCode,
    id: String,
    kind: String,
    resource: Option<Value>,
}

/// Why a create failed.
struct Failed {
    status: StatusCode,
    outcome: OperationOutcome,
}

impl Failed {
    fn new(status: StatusCode, code: &str, text: impl Into<String>, at: Option<&str>) -> Failed {
        Failed {
            status,
            outcome: outcome("error", code, text, at),
        }
    }

    fn of(e: &FhirError) -> Failed {
        let status = match e {
            FhirError::Json { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Failed {
            status,
            outcome: outcome("error", e.issue_code(), e.to_string(), e.expression()),
        }
    }

    fn into_response(self) -> Response {
        fhir_json(self.status, &self.outcome, None)
    }
}

/// Conditional (or plain) create of a Patient or Device.
fn create_admin(
    store: &FhirStore,
    kind: &str,
    resource: Value,
    if_none_exist: Option<&str>,
) -> Result<Created, Failed> {
    let mut inner = store.inner();
    if let Some(query) = if_none_exist {
        let (system, value) = parse_identifier_search(query).ok_or_else(|| {
            Failed::new(
                StatusCode::BAD_REQUEST,
                "not-supported",
                format!("If-None-Exist {query:?}: only identifier=[system|]value is supported"),
                None,
            )
        })?;
        let matches: Vec<String> = inner
            .by_identifier
            .iter()
            .filter(|((k, s, v), _)| {
                k == kind && *v == value && system.as_deref().is_none_or(|sys| sys == s)
            })
            .flat_map(|(_, ids)| ids.iter().cloned())
            .collect();
        match matches.as_slice() {
            [] => {}
            [id] => {
                let resource = inner
                    .resources
                    .get(&(kind.to_owned(), id.clone()))
                    .map(|s| s.resource.clone());
                return Ok(Created {
                    status: StatusCode::OK,
                    id: id.clone(),
                    kind: kind.to_owned(),
                    resource,
                });
            }
            _ => {
                return Err(Failed::new(
                    StatusCode::PRECONDITION_FAILED,
                    "multiple-matches",
                    format!("{} {kind}s match {query:?}", matches.len()),
                    None,
                ));
            }
        }
    }
    let count = inner.admin_count.entry(kind.to_owned()).or_default();
    if *count >= MAX_ADMIN_RESOURCES {
        return Err(Failed::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-costly",
            format!("this backend keeps at most {MAX_ADMIN_RESOURCES} {kind}s"),
            None,
        ));
    }
    *count += 1;
    let patient = (kind == "Patient")
        .then(|| identifiers(&resource).into_iter().find_map(|i| i.value))
        .flatten();
    let (id, stored) = inner.insert(kind, resource, patient);
    Ok(Created {
        status: StatusCode::CREATED,
        id,
        kind: kind.to_owned(),
        resource: Some(stored),
    })
}

/// Observations to ingest: those already seen (same run and identifier,
/// by conditional create) are answered 200; the others are all decoded
/// before any is ingested, so a bad one fails the lot.
fn create_observations(
    f: &Fhir,
    run: &str,
    items: Vec<(Observation, Option<String>)>,
) -> Result<Vec<Created>, Failed> {
    let keys: Vec<Option<String>> = items
        .iter()
        .map(|(_, ine)| {
            let (system, value) = parse_identifier_search(ine.as_deref()?)?;
            (system.as_deref().is_none_or(|s| s == SID_OBSERVATION)).then_some(value)
        })
        .collect();
    let seen: Vec<Option<String>> = {
        let inner = f.store.inner();
        keys.iter()
            .map(|k| {
                k.as_ref()
                    .and_then(|k| inner.seen.get(&(run.to_owned(), k.clone())).cloned())
            })
            .collect()
    };
    let fresh: Vec<Observation> = items
        .iter()
        .zip(&seen)
        .filter(|(_, s)| s.is_none())
        .map(|((o, _), _)| o.clone())
        .collect();
    let resolve = |r: &str| f.store.inner().patient_of(r);
    // Observations of one message (SpO2 and pulse rate) are scored as one.
    let messages = telemetry(&fresh, &resolve).map_err(|e| {
        f.shared.reject_undecodable(Reason::BadFhir);
        Failed::of(&e)
    })?;
    if messages
        .iter()
        .any(|m| m.patient_id.is_empty() || m.patient_id.len() > 256)
    {
        f.shared.reject_undecodable(Reason::BadPatientId);
        return Err(Failed::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the patient id must be 1–256 bytes",
            Some("Observation.subject"),
        ));
    }
    for m in messages {
        if let Err(NotIngested {
            reason,
            detail,
            full,
        }) = f.shared.ingest_message(run, m)
        {
            return Err(if full {
                Failed::new(StatusCode::SERVICE_UNAVAILABLE, "transient", detail, None)
            } else {
                Failed::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "processing",
                    format!("{reason}: {detail}"),
                    None,
                )
            });
        }
    }
    let mut inner = f.store.inner();
    let out = keys
        .into_iter()
        .zip(seen)
        .map(|(key, seen)| match seen {
            Some(id) => Created {
                status: StatusCode::OK,
                id,
                kind: "Observation".into(),
                resource: None,
            },
            None => {
                let id = inner.new_id("ob");
                if let Some(k) = key {
                    inner.remember((run.to_owned(), k), id.clone());
                }
                Created {
                    status: StatusCode::CREATED,
                    id,
                    kind: "Observation".into(),
                    resource: None,
                }
            }
        })
        .collect();
    Ok(out)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn post_resource(
    State(f): State<Fhir>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    let bytes = match body_of(&f, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let base = base_url(&headers);
    let run = header_text(&headers, RUN_HEADER).unwrap_or("").to_owned();
    let if_none_exist = header_text(&headers, "if-none-exist").map(str::to_owned);
    let minimal = header_text(&headers, "prefer").is_some_and(|p| p.contains("return=minimal"));
    if kind == "Observation" {
        let obs = match parse_observation(&bytes) {
            Ok(obs) => obs,
            Err(e) => {
                f.shared.reject_undecodable(Reason::BadFhir);
                return oo_of(StatusCode::BAD_REQUEST, &e);
            }
        };
        let echo = (!minimal).then(|| to_value(&obs));
        return match create_observations(&f, &run, vec![(obs, if_none_exist)]) {
            Ok(mut created) => {
                let c = created.remove(0);
                let location = format!("{base}/Observation/{}/_history/1", c.id);
                match echo {
                    Some(mut body) => {
                        body["id"] = json!(c.id);
                        fhir_json(c.status, &body, Some(location))
                    }
                    None => fhir_json(
                        c.status,
                        &outcome("information", "informational", "created", None),
                        Some(location),
                    ),
                }
            }
            Err(failed) => failed.into_response(),
        };
    }
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            f.shared.reject_undecodable(Reason::BadFhir);
            return oo(
                StatusCode::BAD_REQUEST,
                "structure",
                format!("not JSON: {e}"),
            );
        }
    };
    if model::resource_type(&value) != Some(kind.as_str()) {
        f.shared.reject_undecodable(Reason::BadFhir);
        return oo(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "POST /{kind} with a {:?} resource",
                model::resource_type(&value).unwrap_or("non-")
            ),
        );
    }
    let created = match kind.as_str() {
        "Patient" | "Device" => create_admin(&f.store, &kind, value, if_none_exist.as_deref()),
        "Subscription" => return create_subscription(&f, value, &base),
        _ => {
            return oo(
                StatusCode::NOT_FOUND,
                "not-supported",
                format!("this server does not create {kind} resources"),
            );
        }
    };
    match created {
        Ok(c) => {
            let location = format!("{base}/{}/{}/_history/1", c.kind, c.id);
            let body = c
                .resource
                .unwrap_or_else(|| json!({"resourceType": c.kind, "id": c.id}));
            fhir_json(c.status, &body, Some(location))
        }
        Err(failed) => failed.into_response(),
    }
}

async fn post_bundle(State(f): State<Fhir>, headers: HeaderMap, body: Body) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    let bytes = match body_of(&f, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let base = base_url(&headers);
    let run = header_text(&headers, RUN_HEADER).unwrap_or("").to_owned();
    let (kind, entries) = match parse_transaction(&bytes) {
        Ok(b) => b,
        Err(e) => {
            f.shared.reject_undecodable(Reason::BadFhir);
            return oo_of(StatusCode::BAD_REQUEST, &e);
        }
    };
    if kind != "transaction" {
        return oo(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            format!("Bundle.type {kind:?}: this server takes transactions"),
        );
    }
    match transaction(&f, &run, &base, entries) {
        Ok(response) => fhir_json(StatusCode::OK, &response, None),
        Err(failed) => failed.into_response(),
    }
}

/// A transaction: Patients and Devices first (conditional creates), then
/// the Observations, all decoded before anything is ingested.
fn transaction(f: &Fhir, run: &str, base: &str, entries: Vec<RawEntry>) -> Result<Bundle, Failed> {
    let mut responses: Vec<Option<BundleResponse>> = vec![None; entries.len()];
    let mut observations = Vec::new();
    let mut obs_index = Vec::new();
    let mut admin = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let refuse = |text: String| {
            f.shared.reject_undecodable(Reason::BadFhir);
            Failed::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("entry {i}: {text}"),
                Some("Bundle.entry.request"),
            )
        };
        let kind = entry.resource_type.clone();
        if entry.method != "POST" || entry.url != kind {
            return Err(refuse(format!(
                "{} {} of a {kind}: only POST [type] is supported",
                entry.method, entry.url
            )));
        }
        match kind.as_str() {
            "Observation" => {
                let obs = parse_observation(entry.resource.get().as_bytes()).map_err(|e| {
                    f.shared.reject_undecodable(Reason::BadFhir);
                    Failed::of(&e)
                })?;
                observations.push((obs, entry.if_none_exist));
                obs_index.push(i);
            }
            "Patient" | "Device" => {
                let value: Value = serde_json::from_str(entry.resource.get())
                    .map_err(|e| refuse(format!("not JSON: {e}")))?;
                admin.push((i, kind, value, entry.if_none_exist));
            }
            other => return Err(refuse(format!("{other:?} is not taken here"))),
        }
    }
    for (i, kind, resource, ine) in admin {
        let c = create_admin(&f.store, &kind, resource, ine.as_deref())?;
        responses[i] = Some(entry_response(base, &c));
    }
    let created = create_observations(f, run, observations)?;
    for (i, c) in obs_index.into_iter().zip(created) {
        responses[i] = Some(entry_response(base, &c));
    }
    Ok(Bundle {
        kind: "transaction-response".into(),
        timestamp: Some(format_time(SystemTime::now())),
        entry: responses
            .into_iter()
            .map(|r| BundleEntry {
                response: r,
                ..BundleEntry::default()
            })
            .collect(),
        ..Bundle::default()
    })
}

fn entry_response(base: &str, c: &Created) -> BundleResponse {
    BundleResponse {
        status: if c.status == StatusCode::CREATED {
            "201 Created".into()
        } else {
            "200 OK".into()
        },
        location: Some(format!("{base}/{}/{}/_history/1", c.kind, c.id)),
        outcome: None,
    }
}

async fn read(
    State(f): State<Fhir>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    match f.store.inner().resources.get(&(kind.clone(), id.clone())) {
        Some(s) => fhir_json(StatusCode::OK, &s.resource, None),
        None => oo(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{kind}/{id} is not known"),
        ),
    }
}

async fn delete(
    State(f): State<Fhir>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    if kind != "Subscription" {
        return oo(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("{kind} resources cannot be deleted here"),
        );
    }
    let mut inner = f.store.inner();
    // Dropping its sender ends the subscription's task.
    inner.subscriptions.retain(|s| s.id != id);
    match inner.resources.remove(&(kind, id.clone())) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => oo(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("Subscription/{id} is not known"),
        ),
    }
}

/// `_lastUpdated` comparisons of a search.
#[derive(Default)]
struct Filter {
    after_ms: Option<(u64, bool)>,
    before_ms: Option<(u64, bool)>,
    patient: Option<String>,
    identifier: Option<(Option<String>, String)>,
    count: usize,
}

fn filter(query: &str) -> Result<Filter, String> {
    let mut f = Filter {
        count: DEFAULT_COUNT,
        ..Filter::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value);
        match name {
            "_lastUpdated" => {
                let (prefix, time) = match value.get(..2) {
                    Some(p @ ("gt" | "ge" | "lt" | "le" | "eq")) => (p, &value[2..]),
                    _ => ("eq", value.as_str()),
                };
                let ms = parse_time(time)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .ok_or_else(|| format!("_lastUpdated {value:?} is not a dateTime"))?;
                match prefix {
                    "gt" => f.after_ms = Some((ms, false)),
                    "ge" => f.after_ms = Some((ms, true)),
                    "lt" => f.before_ms = Some((ms, false)),
                    "le" => f.before_ms = Some((ms, true)),
                    _ => {
                        f.after_ms = Some((ms, true));
                        f.before_ms = Some((ms, true));
                    }
                }
            }
            "patient" | "subject" => {
                f.patient = Some(value.rsplit('/').next().unwrap_or("").to_owned());
            }
            "identifier" => f.identifier = parse_identifier_search(pair),
            "_count" => {
                f.count = value
                    .parse::<usize>()
                    .map_err(|_| format!("_count {value:?} is not a number"))?
                    .min(MAX_COUNT);
            }
            "_sort" | "_format" => {}
            other => return Err(format!("search parameter {other:?} is not supported")),
        }
    }
    Ok(f)
}

async fn search(
    State(f): State<Fhir>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_auth(&f, &headers) {
        return r;
    }
    if !matches!(
        kind.as_str(),
        "Patient" | "Device" | "DetectedIssue" | "Flag" | "Communication" | "Subscription"
    ) {
        return oo(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("{kind} cannot be searched here"),
        );
    }
    let filter = match filter(query.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return oo(StatusCode::BAD_REQUEST, "not-supported", e),
    };
    let base = base_url(&headers);
    let inner = f.store.inner();
    let mut hits: Vec<&Stored> = inner
        .resources
        .iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|(_, s)| s)
        .filter(|s| match filter.after_ms {
            Some((t, true)) => s.last_updated_ms >= t,
            Some((t, false)) => s.last_updated_ms > t,
            None => true,
        })
        .filter(|s| match filter.before_ms {
            Some((t, true)) => s.last_updated_ms <= t,
            Some((t, false)) => s.last_updated_ms < t,
            None => true,
        })
        .filter(|s| {
            filter.patient.as_ref().is_none_or(|p| {
                s.patient.as_deref() == Some(p.as_str())
                    || s.resource["patient"]["reference"]
                        .as_str()
                        .is_some_and(|r| r.ends_with(&format!("/{p}")))
                    || s.resource["subject"]["reference"]
                        .as_str()
                        .is_some_and(|r| r.ends_with(&format!("/{p}")))
            })
        })
        .filter(|s| {
            filter.identifier.as_ref().is_none_or(|(system, value)| {
                identifiers(&s.resource).iter().any(|i| {
                    i.value.as_deref() == Some(value.as_str())
                        && system
                            .as_ref()
                            .is_none_or(|sys| i.system.as_ref() == Some(sys))
                })
            })
        })
        .collect();
    hits.sort_by_key(|s| s.last_updated_ms);
    let total = hits.len();
    let entry = hits
        .into_iter()
        .take(filter.count)
        .map(|s| BundleEntry {
            full_url: s.resource["id"]
                .as_str()
                .map(|id| format!("{base}/{kind}/{id}")),
            resource: Some(s.resource.clone()),
            ..BundleEntry::default()
        })
        .collect();
    let bundle = Bundle {
        kind: "searchset".into(),
        total: Some(total as u64),
        entry,
        ..Bundle::default()
    };
    fhir_json(StatusCode::OK, &bundle, None)
}

fn create_subscription(f: &Fhir, value: Value, base: &str) -> Response {
    let sub: Subscription = match from_value(value, "Subscription") {
        Ok(s) => s,
        Err(e) => return oo_of(StatusCode::BAD_REQUEST, &e),
    };
    let wanted = match settings(&sub) {
        Ok(s) => s,
        Err(e) => return oo_of(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    if wanted.topic != TOPIC_ALERT {
        return oo(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            format!("topic {:?}: this server has {TOPIC_ALERT:?}", wanted.topic),
        );
    }
    // The focus resource: the filter's type (`Flag?...`), else DetectedIssue.
    let filter = sub
        .criteria_ext
        .as_ref()
        .and_then(|c| c.extension.first())
        .and_then(|e| e.value_string.clone())
        .unwrap_or_default();
    let focus_type = ALERT_TYPES
        .into_iter()
        .find(|t| filter.starts_with(t))
        .unwrap_or("DetectedIssue");
    let mut resource = sub;
    resource.status = "active".into();
    resource.meta = Meta::profile(medtwin_fhir::codes::PROFILE_BACKPORT_SUBSCRIPTION);
    let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
    let events = Arc::new(AtomicU64::new(0));
    let (id, stored) = {
        let mut inner = f.store.inner();
        if inner.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return oo(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-costly",
                format!("at most {MAX_SUBSCRIPTIONS} subscriptions at once"),
            );
        }
        let (id, stored) = inner.insert("Subscription", to_value(&resource), None);
        inner.subscriptions.push(Live {
            id: id.clone(),
            focus_type,
            events: Arc::clone(&events),
            tx,
        });
        (id, stored)
    };
    let url = format!("{base}/Subscription/{id}");
    tokio::spawn(notify(
        Arc::downgrade(&f.store),
        wanted,
        url.clone(),
        base.to_owned(),
        events,
        rx,
    ));
    fhir_json(
        StatusCode::CREATED,
        &stored,
        Some(format!("{url}/_history/1")),
    )
}

/// One subscription's rest-hook: the handshake, then each event as it
/// comes, and a heartbeat after each quiet period; ends when the
/// subscription is deleted or the backend stops.
async fn notify(
    store: Weak<FhirStore>,
    settings: SubscriptionSettings,
    url: String,
    base: String,
    events: Arc<AtomicU64>,
    mut rx: mpsc::Receiver<Event>,
) {
    let heartbeat = (settings.heartbeat_s > 0)
        .then(|| Duration::from_secs(settings.heartbeat_s).max(MIN_HEARTBEAT));
    let timeout = settings
        .timeout_s
        .map_or(NOTIFY_TIMEOUT, Duration::from_secs)
        .min(MAX_NOTIFY_TIMEOUT);
    let send = |kind: NotificationType, count: u64, event: Option<Event>| {
        let store = store.clone();
        let settings = &settings;
        let url = &url;
        let base = &base;
        async move {
            let Some(store) = store.upgrade() else {
                return false;
            };
            let mut events: Vec<Event> = event.into_iter().collect();
            for e in &mut events {
                if let Some(focus) = &mut e.focus {
                    focus.full_url = format!("{base}/{}", focus.full_url);
                    if settings.content != "full-resource" {
                        focus.resource = None;
                    }
                }
            }
            let n = Notification {
                kind,
                subscription: url.clone(),
                topic: Some(settings.topic.clone()),
                status: "active".into(),
                events_since_start: Some(count),
                events,
            };
            let body =
                serde_json::to_vec(&notification_bundle(&n, &format_time(SystemTime::now())))
                    .unwrap_or_default();
            let mut request = store
                .client
                .post(&settings.endpoint)
                .timeout(timeout)
                .header(header::CONTENT_TYPE, FHIR_JSON)
                .body(body);
            for h in &settings.headers {
                if let Some((name, value)) = h.split_once(':') {
                    request = request.header(name.trim(), value.trim());
                }
            }
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            let counter = if ok {
                &store.counters.notifications_sent
            } else {
                &store.counters.notifications_failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            true
        }
    };
    if !send(NotificationType::Handshake, 0, None).await {
        return;
    }
    loop {
        let next = match heartbeat {
            Some(period) => tokio::time::timeout(period, rx.recv()).await,
            None => Ok(rx.recv().await),
        };
        let alive = match next {
            Ok(Some(event)) => {
                let number = event.number;
                send(NotificationType::EventNotification, number, Some(event)).await
            }
            Ok(None) => false,
            Err(_quiet) => {
                send(
                    NotificationType::Heartbeat,
                    events.load(Ordering::Relaxed),
                    None,
                )
                .await
            }
        };
        if !alive {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_filters_parse() {
        let f =
            filter("_lastUpdated=gt2026-01-01T08%3A00%3A00Z&patient=Patient/p1&_count=5").unwrap();
        assert_eq!(f.after_ms.map(|(_, inclusive)| inclusive), Some(false));
        assert_eq!(f.patient.as_deref(), Some("p1"));
        assert_eq!(f.count, 5);
        assert!(filter("_lastUpdated=gtyesterday").is_err());
        assert!(filter("color=blue").is_err());
    }

    #[test]
    fn alerts_are_bounded_and_last_updated_increases() {
        let store = FhirStore::new(None, None).unwrap();
        let alert = AlertMessage {
            schema: None,
            alert_id: Some("a".into()),
            patient_id: "p".into(),
            kind: "news2-high".into(),
            priority: medtwin_wire::Priority::High,
            measurement_time: None,
            score: Some(7),
        };
        for _ in 0..(MAX_ALERT_RESOURCES / 3 + 5) {
            store.record_alert(&alert, Phase::Start);
        }
        let inner = store.inner();
        assert!(inner.alert_order.len() <= MAX_ALERT_RESOURCES);
        let mut times: Vec<u64> = inner
            .resources
            .values()
            .map(|s| s.last_updated_ms)
            .collect();
        let n = times.len();
        times.sort_unstable();
        times.dedup();
        assert_eq!(times.len(), n, "every lastUpdated is distinct");
    }
}
