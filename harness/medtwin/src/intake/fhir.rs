//! Alerts in from FHIR: Subscriptions Backport rest-hook notifications, or
//! polling `Flag`, `DetectedIssue` or `Communication`
//! (`docs/intakes/fhir.md`).
//!
//! `fhir-subscription` listens like the webhook (bearer token checked in
//! constant time before the body is read, body limit and timeout), then
//! creates a topic-based `Subscription` (R4 Backport profile) on the
//! target's FHIR base pointing at itself. Each notification is a
//! `history` Bundle: `events-since-subscription-start` and each event's
//! number reveal lost notifications (counted as `gaps`, with
//! `missed_events`), heartbeats are counted, and a quiet stretch longer
//! than two heartbeat periods is a `silence`. Each event's focus resource
//! is an alert (read as a DetectedIssue, Flag or Communication, or through
//! the scenario's mapping).
//!
//! `fhir-poll` asks `[base]/<resource>?_lastUpdated=gt<t>` every
//! `poll_every` (wall time), with a second of overlap so a resource stamped
//! in the same instant as the last one seen is not missed, and takes each
//! resource id once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use medtwin_fhir::alert::alert_from;
use medtwin_fhir::bundle::{first_issue, parse, parse_location, to_json};
use medtwin_fhir::codes::{FHIR_JSON, TOPIC_ALERT};
use medtwin_fhir::model::Bundle;
use medtwin_fhir::subscription::{
    NotificationType, SubscriptionRequest, parse_notification, subscription,
};
use medtwin_listen::{BodyError, Limits, Server};
use medtwin_wire::{AlertMessage, format_time, parse_time};
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use tokio::task::JoinHandle;

use super::mapping::AlertParser;
use super::{AnyIntake, Inbox, IntakeContext, Refusal, TargetInfo};
use crate::scenario::interop::{FhirIntakeOptions, IntakeKind};
use crate::transport::auth::Auth;

/// Path the rest-hook listens on.
pub const HOOK_PATH: &str = "/fhir-hook";
/// Largest notification body.
pub const MAX_NOTIFICATION_BYTES: usize = 1 << 20;
/// Default heartbeat period asked of the server.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Default polling period.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(1);
/// Timeout of each request to the FHIR server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Overlap of consecutive polls, so a resource stamped in the instant of
/// the newest one seen is not missed (ids are deduplicated).
pub const POLL_OVERLAP: Duration = Duration::from_secs(1);
/// Most resource ids remembered by the poller.
pub const MAX_SEEN_IDS: usize = 1_000_000;
/// Resources asked for per poll.
const POLL_COUNT: usize = 1_000;

const VIA_SUBSCRIPTION: &str = "fhir-subscription";
const VIA_POLL: &str = "fhir-poll";

/// A FHIR intake, subscription or poller.
pub struct FhirIntake {
    subscription: bool,
    options: FhirIntakeOptions,
    ctx: IntakeContext,
    client: reqwest::Client,
    hook: Option<(Server, Arc<Hook>)>,
    /// The subscription's URL on the server, deleted at stop.
    created: Option<(String, Auth)>,
    tasks: Vec<JoinHandle<()>>,
    poller: Option<Arc<Poller>>,
    address: String,
}

/// The rest-hook's state.
struct Hook {
    inbox: Arc<Inbox>,
    parser: Arc<AlertParser>,
    token: String,
    /// Highest event number heard.
    last_event: Mutex<u64>,
    /// When anything was last heard.
    last_heard: Mutex<Instant>,
    silent: AtomicBool,
    notifications: AtomicU64,
}

/// Opens the rest-hook listener (subscription) or prepares the poller;
/// neither talks to the FHIR server until [`AnyIntake::attach`].
pub async fn open(
    options: &FhirIntakeOptions,
    subscription: bool,
    ctx: &IntakeContext,
) -> anyhow::Result<AnyIntake> {
    let client = crate::transport::http::client(REQUEST_TIMEOUT, 4, None)
        .context("cannot build the HTTP client")?;
    let mut intake = FhirIntake {
        subscription,
        options: options.clone(),
        ctx: ctx.clone(),
        client,
        hook: None,
        created: None,
        tasks: Vec::new(),
        poller: None,
        address: String::new(),
    };
    if subscription {
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let hook = Arc::new(Hook {
            inbox: Arc::clone(&ctx.inbox),
            parser: Arc::clone(&ctx.parser),
            token: ctx.token.clone(),
            last_event: Mutex::new(0),
            last_heard: Mutex::new(Instant::now()),
            silent: AtomicBool::new(false),
            notifications: AtomicU64::new(0),
        });
        let app = Router::new()
            .route(HOOK_PATH, post(notified))
            .with_state(Arc::clone(&hook));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for FHIR notifications on {listen}"))?;
        let tls = ctx.server_tls.as_ref().map(|t| t.config());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = medtwin_listen::serve_tls(listener, app, Limits::default(), tls)
            .with_context(|| format!("cannot serve FHIR notifications on {listen}"))?;
        intake.address = format!("{scheme}://{}{HOOK_PATH}", server.addr());
        intake.hook = Some((server, hook));
    } else {
        intake.address = "fhir-poll (not attached)".to_owned();
    }
    Ok(AnyIntake::Fhir(Box::new(intake)))
}

impl FhirIntake {
    /// Which intake it is.
    pub fn kind(&self) -> IntakeKind {
        if self.subscription {
            IntakeKind::FhirSubscription
        } else {
            IntakeKind::FhirPoll
        }
    }

    /// The rest-hook URL, or what is polled.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    fn resource(&self) -> anyhow::Result<&'static str> {
        match self.options.resource.as_deref() {
            None | Some("DetectedIssue") => Ok("DetectedIssue"),
            Some("Flag") => Ok("Flag"),
            Some("Communication") => Ok("Communication"),
            Some(other) => anyhow::bail!(
                "alerts.fhir.resource {other:?}: use DetectedIssue, Flag or Communication"
            ),
        }
    }

    /// Creates the subscription, or starts polling.
    pub async fn attach(&mut self, target: &TargetInfo) -> anyhow::Result<()> {
        let base = self
            .options
            .base
            .clone()
            .or_else(|| target.fhir_base.clone())
            .context("no FHIR base URL: set [alerts.fhir] base (or a FHIR target)")?;
        let base = base.trim_end_matches('/').to_owned();
        if crate::scenario::interop::uses_tls(&base)
            && let Some(tls) = &target.tls
        {
            // The target's FHIR server, over the target's TLS.
            self.client = crate::transport::http::client(REQUEST_TIMEOUT, 4, Some(tls))
                .context("cannot build the HTTP client")?;
        }
        let resource = self.resource()?;
        if self.subscription {
            self.subscribe(&base, resource, target.auth.clone()).await
        } else {
            self.address = format!("{base}/{resource}");
            let every = self
                .options
                .poll_every
                .map_or(DEFAULT_POLL_EVERY, |d| d.std());
            let poller = Arc::new(Poller {
                client: self.client.clone(),
                url: format!("{base}/{resource}"),
                auth: target.auth.clone(),
                inbox: Arc::clone(&self.ctx.inbox),
                parser: Arc::clone(&self.ctx.parser),
                state: tokio::sync::Mutex::new(PollState {
                    since: SystemTime::now() - POLL_OVERLAP,
                    seen: HashSet::new(),
                }),
            });
            self.tasks
                .push(tokio::spawn(Arc::clone(&poller).run(every)));
            self.poller = Some(poller);
            Ok(())
        }
    }

    async fn subscribe(&mut self, base: &str, resource: &str, auth: Auth) -> anyhow::Result<()> {
        let heartbeat = self
            .options
            .heartbeat
            .map_or(DEFAULT_HEARTBEAT, |d| d.std())
            .max(Duration::from_secs(1));
        let request = SubscriptionRequest {
            topic: self
                .options
                .topic
                .clone()
                .unwrap_or_else(|| TOPIC_ALERT.to_owned()),
            endpoint: self.address.clone(),
            heartbeat_s: heartbeat.as_secs(),
            timeout_s: Some(REQUEST_TIMEOUT.as_secs()),
            headers: vec![format!("Authorization: Bearer {}", self.ctx.token)],
            filter: self
                .options
                .resource
                .as_ref()
                .map(|_| format!("{resource}?")),
            reason: "medtwin alert intake".to_owned(),
        };
        let post = self
            .client
            .post(format!("{base}/Subscription"))
            .header(header::CONTENT_TYPE, FHIR_JSON)
            .header(header::ACCEPT, FHIR_JSON)
            .body(to_json(&subscription(&request)));
        let response = match auth.send(post).await {
            Ok(answer) => {
                answer.with_context(|| format!("cannot POST the Subscription to {base}"))?
            }
            Err(f) => anyhow::bail!(
                "cannot POST the Subscription to {base}: {}: {}",
                f.cause.name(),
                f.detail
            ),
        };
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_location);
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let why = first_issue(&body).map_or_else(
                || String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned(),
                |i| format!("{}: {}", i.code, i.diagnostics.unwrap_or_default()),
            );
            anyhow::bail!("the server refused the Subscription ({status}): {why}");
        }
        let id = location.map(|(_, id)| id).or_else(|| {
            let v: Value = serde_json::from_slice(&body).ok()?;
            v.get("id")?.as_str().map(str::to_owned)
        });
        if let Some(id) = id {
            self.created = Some((format!("{base}/Subscription/{id}"), auth));
        }
        if let Some((_, hook)) = &self.hook {
            *lock(&hook.last_heard) = Instant::now();
            self.tasks
                .push(tokio::spawn(watch_silence(Arc::clone(hook), heartbeat)));
        }
        Ok(())
    }

    /// In virtual time, at each lockstep barrier: a poller asks now, so
    /// its alerts are placed near the data that raised them (a
    /// subscription is told; it has nothing to do).
    pub async fn settle(&self) {
        if let Some(poller) = &self.poller {
            poller.poll_once().await;
        }
    }

    /// Deletes the subscription (best effort) and stops listening or
    /// polling.
    pub async fn stop(self: Box<Self>) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some((url, auth)) = &self.created {
            let delete = self.client.delete(url).timeout(Duration::from_secs(2));
            // The run is over either way; a server that keeps the
            // subscription will fail to reach the closed listener.
            let _ = auth.send(delete).await;
        }
        if let Some((server, _)) = self.hook {
            let connections = server.shutdown().await;
            self.ctx.inbox.add_connections(&connections);
            for (cause, n) in connections.tls_failures() {
                self.ctx.inbox.count("fhir-subscription", cause, n);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a silence each time nothing was heard for two heartbeat
/// periods.
async fn watch_silence(hook: Arc<Hook>, heartbeat: Duration) {
    loop {
        tokio::time::sleep(heartbeat).await;
        let quiet = lock(&hook.last_heard).elapsed();
        if quiet > 2 * heartbeat && !hook.silent.swap(true, Ordering::Relaxed) {
            hook.inbox.count(VIA_SUBSCRIPTION, "silences", 1);
        }
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

/// One alert resource into the inbox.
fn take(
    inbox: &Inbox,
    parser: &AlertParser,
    resource: Value,
    arrival: super::Arrival,
    via: &'static str,
) {
    let read: Result<AlertMessage, Refusal> = if parser.is_mapped() {
        parser.parse_json_value(&resource)
    } else {
        alert_from(resource.clone()).map_err(|e| Refusal::Malformed(e.to_string()))
    };
    match read {
        Ok(alert) => {
            // Only a full inbox refuses, and it counts that itself.
            let _ = inbox.accept(alert, arrival, via);
        }
        Err(why) => inbox.refuse(&why, resource.to_string().as_bytes()),
    }
}

async fn notified(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Body) -> StatusCode {
    let arrival = hook.inbox.arrival();
    if !authorized(&headers, &hook.token) {
        hook.inbox.refuse(&Refusal::Unauthorized, b"");
        return StatusCode::UNAUTHORIZED;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match medtwin_listen::read_body(
        body,
        length,
        MAX_NOTIFICATION_BYTES,
        medtwin_listen::BODY_TIMEOUT,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            let (why, status) = match e {
                BodyError::TooLarge => (Refusal::TooLarge, StatusCode::PAYLOAD_TOO_LARGE),
                BodyError::Cut(e) => (Refusal::CutOff(e), StatusCode::BAD_REQUEST),
                BodyError::Timeout => (Refusal::BodyTimeout, StatusCode::REQUEST_TIMEOUT),
            };
            hook.inbox.refuse(&why, b"");
            return status;
        }
    };
    let n = match parse_notification(&body) {
        Ok(n) => n,
        Err(e) => {
            hook.inbox.refuse(
                &Refusal::Malformed(format!("not a notification: {e}")),
                &body,
            );
            return StatusCode::BAD_REQUEST;
        }
    };
    *lock(&hook.last_heard) = Instant::now();
    hook.silent.store(false, Ordering::Relaxed);
    hook.notifications.fetch_add(1, Ordering::Relaxed);
    let inbox = &hook.inbox;
    match n.kind {
        NotificationType::Handshake => inbox.count(VIA_SUBSCRIPTION, "handshakes", 1),
        NotificationType::Heartbeat => inbox.count(VIA_SUBSCRIPTION, "heartbeats", 1),
        _ => inbox.count(VIA_SUBSCRIPTION, "event_notifications", 1),
    }
    // Events the server says it generated that never reached us.
    let mut accepted = Vec::new();
    {
        let mut last = lock(&hook.last_event);
        for e in &n.events {
            if e.number <= *last {
                inbox.count(VIA_SUBSCRIPTION, "duplicate_events", 1);
                continue;
            }
            if e.number > *last + 1 {
                inbox.count(VIA_SUBSCRIPTION, "gaps", 1);
                inbox.count(VIA_SUBSCRIPTION, "missed_events", e.number - *last - 1);
            }
            *last = e.number;
            accepted.push(e.clone());
        }
        if n.events.is_empty()
            && let Some(since) = n.events_since_start
            && since > *last
        {
            inbox.count(VIA_SUBSCRIPTION, "gaps", 1);
            inbox.count(VIA_SUBSCRIPTION, "missed_events", since - *last);
            *last = since;
        }
    }
    for e in accepted {
        match e.focus.and_then(|f| f.resource) {
            Some(resource) => take(inbox, &hook.parser, resource, arrival, VIA_SUBSCRIPTION),
            None => inbox.refuse(
                &Refusal::Malformed(format!(
                    "event {} carries no focus resource (medtwin asks for full-resource)",
                    e.number
                )),
                &body,
            ),
        }
    }
    StatusCode::OK
}

/// Polls a FHIR search for new alert resources.
struct Poller {
    client: reqwest::Client,
    url: String,
    auth: Auth,
    inbox: Arc<Inbox>,
    parser: Arc<AlertParser>,
    /// One poll at a time (the timer's and a lockstep barrier's).
    state: tokio::sync::Mutex<PollState>,
}

/// Why a poll found nothing.
enum PollError {
    /// No answer (connection, timeout).
    NoAnswer,
    /// An answer that is not a searchset (a 4xx/5xx, or not a Bundle).
    Unreadable(anyhow::Error),
}

/// Where polling has got to.
struct PollState {
    /// Resources updated after this are asked for.
    since: SystemTime,
    /// Ids already taken.
    seen: HashSet<String>,
}

impl Poller {
    async fn run(self: Arc<Self>, every: Duration) {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(50)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.poll_once().await;
        }
    }

    /// One search, counted; new resources into the inbox.
    async fn poll_once(&self) {
        let mut state = self.state.lock().await;
        let since = state.since;
        match self.poll(since, &mut state.seen).await {
            Ok(newest) => {
                self.inbox.count(VIA_POLL, "polls", 1);
                if let Some(t) = newest {
                    state.since = since.max(t - POLL_OVERLAP);
                }
            }
            Err(PollError::NoAnswer) => {
                // The server is down or slow (at the end of a run, it
                // stops first): no payload was refused.
                self.inbox.count(VIA_POLL, "poll_errors", 1);
            }
            Err(PollError::Unreadable(e)) => {
                self.inbox.count(VIA_POLL, "poll_errors", 1);
                self.inbox
                    .refuse(&Refusal::Malformed(format!("poll: {e:#}")), b"");
            }
        }
    }

    /// One search; the newest `lastUpdated` seen.
    async fn poll(
        &self,
        since: SystemTime,
        seen: &mut HashSet<String>,
    ) -> Result<Option<SystemTime>, PollError> {
        let since_text = format_time(since);
        let url = format!(
            "{}?_lastUpdated=gt{}&_count={POLL_COUNT}",
            self.url,
            medtwin_fhir::admin::encode(&since_text)
        );
        let request = self.client.get(url).header(header::ACCEPT, FHIR_JSON);
        let response = match self.auth.send(request).await {
            Ok(answer) => answer.map_err(|_| PollError::NoAnswer)?,
            Err(f) => {
                return Err(PollError::Unreadable(anyhow::anyhow!(
                    "{}: {}",
                    f.cause.name(),
                    f.detail
                )));
            }
        };
        let status = response.status();
        let body = response.bytes().await.map_err(|_| PollError::NoAnswer)?;
        let arrival = self.inbox.arrival();
        if !status.is_success() {
            let why = first_issue(&body)
                .map(|i| format!("{}: {}", i.code, i.diagnostics.unwrap_or_default()))
                .unwrap_or_default();
            return Err(PollError::Unreadable(anyhow::anyhow!(
                "the server answered {status} {why}"
            )));
        }
        let bundle: Bundle = parse(&body, "Bundle")
            .map_err(|e| PollError::Unreadable(anyhow::Error::new(e).context("not a Bundle")))?;
        let mut newest = None;
        for resource in bundle.entry.into_iter().filter_map(|e| e.resource) {
            let updated = resource["meta"]["lastUpdated"]
                .as_str()
                .and_then(parse_time);
            if let Some(t) = updated {
                newest = newest.max(Some(t));
            }
            let id = resource["id"].as_str().unwrap_or_default().to_owned();
            if id.is_empty() || seen.contains(&id) {
                continue;
            }
            if seen.len() >= MAX_SEEN_IDS {
                seen.clear();
                self.inbox.count(VIA_POLL, "seen_ids_reset", 1);
            }
            seen.insert(id);
            take(&self.inbox, &self.parser, resource, arrival, VIA_POLL);
        }
        Ok(newest.filter(|t| t.duration_since(UNIX_EPOCH).is_ok()))
    }
}
