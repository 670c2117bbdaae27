//! The session's HTTP side (axum): the pages and their assets, compiled
//! into the binary; the ward's snapshot and live feeds (Server-Sent
//! Events); trainee actions (acknowledge, silence, give an intervention);
//! the instructor's console behind a bearer token (conditions, faults,
//! outages, interventions, the clock, cues, ending the session).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::action::{self, Action, Cue};
use super::bus::{Bus, Event, Resume};
use super::session::{Request, Shared};
use super::ward::{AlarmState, Changes, LogEntry};
use crate::stop::Stop;

/// Most actions kept for "save cues".
const MAX_ISSUED: usize = action::MAX_CUES;
/// Largest request body (a cue file).
const MAX_BODY: usize = 256 * 1024;

/// What every handler shares.
pub struct App {
    /// The session.
    pub shared: Arc<Shared>,
    /// The instructor's token.
    pub token: String,
    /// Into the twin thread.
    pub requests: mpsc::Sender<Request>,
    /// Ends the session.
    pub stop: Stop,
    /// What the instructor did, as cues (for "save").
    pub issued: Mutex<Vec<Cue>>,
}

type AppState = Arc<App>;

/// The router.
pub fn router(app: AppState) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| page(include_str!("assets/central.html"))))
        .route(
            "/bed/{bed}",
            get(|| page(include_str!("assets/bedside.html"))),
        )
        .route(
            "/instructor",
            get(|| page(include_str!("assets/instructor.html"))),
        )
        .route("/assets/{file}", get(asset))
        .route("/report", get(report))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/ward", get(snapshot))
        .route("/api/bed/{bed}", get(bed))
        .route("/api/events", get(events))
        .route("/api/waves", get(waves))
        .route("/api/stats", get(stats))
        .route("/api/alarms/{id}/ack", post(acknowledge))
        .route("/api/silence", post(silence))
        .route("/api/act", post(trainee_act))
        .route("/api/instructor/command", post(instructor_command))
        .route("/api/instructor/clock", post(instructor_clock))
        .route("/api/instructor/cues", get(save_cues).post(load_cues))
        .route("/api/instructor/end", post(end))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn page(html: &'static str) -> Html<&'static str> {
    Html(html)
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, mime): (&'static str, &str) = match file.as_str() {
        "app.css" => (include_str!("assets/app.css"), "text/css"),
        "common.js" => (include_str!("assets/common.js"), "text/javascript"),
        "central.js" => (include_str!("assets/central.js"), "text/javascript"),
        "bedside.js" => (include_str!("assets/bedside.js"), "text/javascript"),
        "instructor.js" => (include_str!("assets/instructor.js"), "text/javascript"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(header::CONTENT_TYPE, mime)], body).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The refusal of a request without the instructor's token (compared in
/// constant time), counted; `None` when it carries the token.
fn refused(app: &App, headers: &HeaderMap) -> Option<Response> {
    use subtle::ConstantTimeEq as _;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(app.token.as_bytes())) {
        return None;
    }
    app.shared.ward().counters.unauthorized += 1;
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "the instructor console needs the session's token (Authorization: Bearer ...)",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"medtwin instructor\""),
    );
    Some(response)
}

async fn snapshot(State(app): State<AppState>) -> Response {
    let s = &app.shared;
    let last_event_id = s.events.last_id();
    let ward = s.ward();
    let alarms: Vec<_> = ward
        .alarms
        .iter()
        .filter(|a| a.state != AlarmState::Cleared)
        .collect();
    let log_tail = &ward.log[ward.log.len().saturating_sub(200)..];
    let body = json!({
        "scenario": s.scenario,
        "run_id": s.run_id,
        "t": ward.now_ms,
        "duration_ms": s.duration_ms,
        "clock": s.pace.view(),
        "finished": s.finished.load(Ordering::Relaxed),
        "audio_paused_until": ward.audio_paused_until_ms,
        "beds": ward.beds_by_acuity(),
        "alarms": alarms,
        "log": log_tail,
        "last_event_id": last_event_id,
        "catalogue": catalogue(),
    });
    drop(ward);
    Json(body).into_response()
}

/// Names the instructor console offers.
fn catalogue() -> serde_json::Value {
    use medtwin_sim::{ConditionKind, InterventionKind, ParamKind, config::FaultKind};
    let params = |specs: &[medtwin_sim::ParamSpec]| -> Vec<serde_json::Value> {
        specs
            .iter()
            .map(|p| match p.kind {
                ParamKind::Number {
                    unit,
                    min,
                    max,
                    default,
                } => json!({"name": p.name, "unit": unit, "min": min, "max": max, "default": default}),
                ParamKind::Choice { options, default } => {
                    json!({"name": p.name, "options": options, "default": options.get(default)})
                }
            })
            .collect()
    };
    json!({
        "conditions": ConditionKind::ALL.map(|c| c.name()),
        "interventions": InterventionKind::ALL
            .iter()
            .map(|i| json!({"name": i.name(), "params": params(i.params())}))
            .collect::<Vec<_>>(),
        "faults": FaultKind::ALL
            .into_iter()
            .filter(|f| f.on_devices())
            .map(|f| f.name())
            .collect::<Vec<_>>(),
    })
}

async fn bed(State(app): State<AppState>, Path(bed): Path<u32>) -> Response {
    let ward = app.shared.ward();
    let Some(b) = ward.beds.get(bed as usize) else {
        return error(StatusCode::NOT_FOUND, format!("no bed {bed}"));
    };
    let view = ward
        .beds_by_acuity()
        .into_iter()
        .find(|v| v.bed == bed)
        .map(|v| serde_json::to_value(v).unwrap_or_default());
    let alarms: Vec<_> = ward.alarms.iter().filter(|a| a.bed == bed).collect();
    let body = json!({
        "bed": bed,
        "patient": b.patient,
        "now": view,
        "trend": ward.trend(bed),
        "waves": b.waves.iter().map(|(d, rate, ch)| json!({"device": d, "rate": rate, "channels": ch})).collect::<Vec<_>>(),
        "alarms": alarms,
        "t": ward.now_ms,
    });
    drop(ward);
    Json(body).into_response()
}

#[derive(Deserialize)]
struct FeedQuery {
    /// Where to resume (what `Last-Event-ID` says, for clients that
    /// cannot set headers).
    last_event_id: Option<u64>,
    /// Only this bed's events (waves).
    bed: Option<u32>,
}

async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.last_event_id);
    feed(app.clone(), |s| &s.events, last, None, None)
}

async fn waves(
    State(app): State<AppState>,
    Query(q): Query<FeedQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let watcher = Watcher::new(app.clone(), q.bed);
    feed(app.clone(), |s| &s.waves, None, q.bed, Some(watcher))
}

/// Counts a waveform viewer while its stream lives.
struct Watcher {
    app: AppState,
    bed: Option<u32>,
}

impl Watcher {
    fn new(app: AppState, bed: Option<u32>) -> Watcher {
        if let Some(w) = app.shared.watching_counter(bed) {
            w.fetch_add(1, Ordering::Relaxed);
        }
        Watcher { app, bed }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(w) = self.app.shared.watching_counter(self.bed) {
            w.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A subscriber's stream: what it missed, then live; on falling a ring
/// behind, a `lagged` event and the end (the browser reconnects with its
/// `Last-Event-ID` and is replayed what the buffer still holds).
fn feed(
    app: AppState,
    bus: fn(&Shared) -> &Bus,
    last: Option<u64>,
    bed: Option<u32>,
    watcher: Option<Watcher>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (resume, rx) = bus(&app.shared).subscribe(last);
    let mut backlog: VecDeque<SseEvent> = VecDeque::new();
    match resume {
        Resume::From(missed) => backlog.extend(missed.iter().map(|e| sse(e))),
        Resume::TooOld => backlog.push_back(SseEvent::default().event("reload").data("{}")),
    }
    struct Feed {
        app: AppState,
        bus: fn(&Shared) -> &Bus,
        rx: broadcast::Receiver<Arc<Event>>,
        backlog: VecDeque<SseEvent>,
        bed: Option<u32>,
        done: bool,
        /// Dropped with the stream: the viewer is no longer counted.
        _watcher: Option<Watcher>,
    }
    let state = Feed {
        app,
        bus,
        rx,
        backlog,
        bed,
        done: false,
        _watcher: watcher,
    };
    let stream = futures_util::stream::unfold(state, |mut f| async move {
        if let Some(e) = f.backlog.pop_front() {
            return Some((Ok(e), f));
        }
        if f.done {
            return None;
        }
        loop {
            match f.rx.recv().await {
                Ok(e) => {
                    if f.bed.is_some() && e.patient != f.bed {
                        continue;
                    }
                    return Some((Ok(sse(&e)), f));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    (f.bus)(&f.app.shared)
                        .lagged
                        .fetch_add(1, Ordering::Relaxed);
                    f.done = true;
                    let e = SseEvent::default().event("lagged").data("{}");
                    return Some((Ok(e), f));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.name)
        .data(&e.data)
}

async fn stats(State(app): State<AppState>) -> Response {
    let s = &app.shared;
    let counters = s.ward().counters.clone();
    Json(json!({
        "counters": counters,
        "events": {"last_id": s.events.last_id(), "lagged": s.events.lagged.load(Ordering::Relaxed), "too_old": s.events.too_old.load(Ordering::Relaxed)},
        "waves": {"last_id": s.waves.last_id(), "lagged": s.waves.lagged.load(Ordering::Relaxed)},
        "busy": s.busy.load(Ordering::Relaxed),
        "steps": s.steps.load(Ordering::Relaxed),
        "cpu_s": crate::run::trust::process_cpu_s(),
        "clock": s.pace.view(),
    }))
    .into_response()
}

#[derive(Deserialize, Default)]
struct AckBody {
    /// Who acknowledges (a name or role; default `trainee`).
    #[serde(default)]
    by: Option<String>,
}

fn actor(by: Option<String>) -> String {
    let by = by.unwrap_or_default();
    let clean: String = by
        .chars()
        .filter(|c| c.is_alphanumeric() || " -_.".contains(*c))
        .take(40)
        .collect();
    if clean.trim().is_empty() {
        "trainee".into()
    } else {
        clean
    }
}

async fn acknowledge(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    body: Option<Json<AckBody>>,
) -> Response {
    let by = actor(body.and_then(|b| b.0.by));
    let mut changes = Changes::default();
    let done = app.shared.ward().acknowledge(id, &by, &mut changes);
    app.shared.publish(changes);
    match done {
        Ok(()) => {
            app.shared.publish_tick();
            Json(json!({"acknowledged": id})).into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

#[derive(Deserialize)]
struct SilenceBody {
    /// Wall seconds of audio paused (default 120, at most 600; 0 ends it).
    seconds: Option<u64>,
    by: Option<String>,
}

async fn silence(State(app): State<AppState>, Json(body): Json<SilenceBody>) -> Response {
    let seconds = body.seconds.unwrap_or(120).min(600);
    let by = actor(body.by);
    let speed = app.shared.pace.view().speed;
    let mut changes = Changes::default();
    {
        let mut ward = app.shared.ward();
        let now = ward.now_ms;
        ward.audio_paused_until_ms =
            (seconds > 0).then(|| now + (seconds as f64 * 1000.0 * speed) as u64);
        let entry = LogEntry {
            t: now,
            actor: by,
            what: "silence",
            patient: None,
            text: if seconds > 0 {
                format!("alarm audio paused for {seconds} s")
            } else {
                "alarm audio resumed".into()
            },
        };
        ward.note(&mut changes, entry);
    }
    app.shared.publish(changes);
    app.shared.publish_tick();
    Json(json!({"audio_paused_s": seconds})).into_response()
}

/// Hands a command to the twin thread and waits for its answer.
async fn queue(app: &App, action: &Action, at_ms: Option<u64>, actor: &str) -> Response {
    let command = match action.command() {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (reply, answer) = oneshot::channel();
    let request = Request {
        at_ms,
        command,
        actor: actor.to_owned(),
        reply,
    };
    if app.requests.try_send(request).is_err() {
        app.shared.busy.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the twin is busy; try again",
        );
    }
    match answer.await {
        Ok(Ok(at_ms)) => {
            let mut changes = Changes::default();
            {
                let mut ward = app.shared.ward();
                let entry = LogEntry {
                    t: ward.now_ms,
                    actor: actor.to_owned(),
                    what: "queued",
                    patient: Some(action.patient().to_owned()),
                    text: format!(
                        "{} for {}",
                        serde_json::to_string(action).unwrap_or_default(),
                        medtwin_check::duration::format(at_ms)
                    ),
                };
                ward.note(&mut changes, entry);
            }
            app.shared.publish(changes);
            Json(json!({"queued_at_ms": at_ms})).into_response()
        }
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the session has ended"),
    }
}

#[derive(Deserialize)]
struct TraineeAct {
    #[serde(flatten)]
    action: Action,
    by: Option<String>,
}

async fn trainee_act(State(app): State<AppState>, Json(body): Json<TraineeAct>) -> Response {
    if !matches!(body.action, Action::Intervention { .. }) {
        return error(
            StatusCode::FORBIDDEN,
            "trainees give interventions; conditions, faults and outages are the instructor's",
        );
    }
    let by = actor(body.by);
    queue(&app, &body.action, None, &by).await
}

async fn instructor_command(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(action): Json<Action>,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let response = queue(&app, &action, None, "instructor").await;
    if response.status().is_success() {
        let at = app.shared.ward().now_ms;
        let mut issued = app.issued.lock().unwrap_or_else(|p| p.into_inner());
        if issued.len() < MAX_ISSUED {
            issued.push(Cue {
                at: medtwin_check::duration::format(at),
                action,
            });
        }
    }
    response
}

#[derive(Deserialize)]
struct ClockBody {
    /// `pause`, `resume` or `speed`.
    action: String,
    speed: Option<f64>,
}

async fn instructor_clock(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<ClockBody>,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let pace = &app.shared.pace;
    let text = match (body.action.as_str(), body.speed) {
        ("pause", _) => {
            pace.pause();
            "paused".to_owned()
        }
        ("resume", _) => {
            pace.resume();
            "resumed".to_owned()
        }
        ("speed", Some(speed)) => match pace.set_speed(speed) {
            Ok(()) => format!("speed x{speed}"),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "action: expected pause, resume or speed (with speed)",
            );
        }
    };
    let mut changes = Changes::default();
    {
        let mut ward = app.shared.ward();
        let entry = LogEntry {
            t: ward.now_ms,
            actor: "instructor".into(),
            what: "clock",
            patient: None,
            text,
        };
        ward.note(&mut changes, entry);
    }
    app.shared.publish(changes);
    app.shared.publish_tick();
    Json(json!({"clock": pace.view()})).into_response()
}

async fn save_cues(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let issued = app.issued.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (
        [
            (header::CONTENT_TYPE, "application/toml"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cues.toml\"",
            ),
        ],
        action::write(&issued),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CueQuery {
    /// `now`: cue times count from now instead of the session's start.
    from: Option<String>,
}

async fn load_cues(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CueQuery>,
    body: Bytes,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let text = String::from_utf8_lossy(&body);
    let cues = match action::parse(&text) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cue file: {e}")),
    };
    let offset = match q.from.as_deref() {
        Some("now") => app.shared.ward().now_ms,
        _ => 0,
    };
    Json(arm(&app, cues, offset).await).into_response()
}

/// Queues every cue at its time (plus `offset`); a cue already past is
/// refused by the twin and reported.
pub async fn arm(app: &App, cues: Vec<(u64, Cue)>, offset: u64) -> serde_json::Value {
    let (mut queued, mut refused) = (0, Vec::new());
    for (at_ms, cue) in cues {
        let at = at_ms + offset;
        let now = app.shared.ward().now_ms;
        if at < now {
            refused.push(format!("cue at {}: already past", cue.at));
            continue;
        }
        let response = queue(app, &cue.action, Some(at), "cue").await;
        if response.status().is_success() {
            queued += 1;
        } else {
            refused.push(format!("cue at {}: {}", cue.at, response.status()));
        }
    }
    json!({"queued": queued, "refused": refused})
}

async fn end(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    app.stop.trigger(crate::stop::StopReason::Interrupt);
    Json(json!({"ending": true})).into_response()
}

async fn report(State(app): State<AppState>) -> Html<String> {
    Html(super::aar::render(&app.shared))
}
