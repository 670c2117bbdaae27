//! Telemetry out: a seam between *wire formats* ([`Encoder`]: a pure
//! function of the twin's record, one module each, e.g. [`json`]) and
//! *carriers* ([`Carrier`]: how bytes reach the target, e.g. [`http`]),
//! and the lanes, pacing, retries, circuit breaker and lag measurement they
//! share.
//!
//! Messages are spread over lanes by patient, and each lane sends in
//! order, so a patient's messages reach the target in the order the
//! network delivered them. A lane holds each message until its due wall
//! time (the clock's mapping of its simulated delivery time) and records
//! how late it actually went out. Queues are bounded: when the target is
//! slower than the schedule, the driver waits and the lateness shows in
//! the send lag.
//!
//! Every message handed over ends in exactly one of four ways, counted by
//! cause: accepted, refused (the target answered 4xx or 5xx), failed (no
//! answer, or an answer that could not be read) or not sent (the
//! [`breaker`] was open, or the run stopped): `sent = accepted + refused +
//! failed + not_sent`. Retries are bounded per message ([`RETRIES`]) and per
//! run ([`RETRY_BUDGET_BASE`] plus a tenth of the messages), honour the
//! target's `Retry-After` (up to [`MAX_RETRY_AFTER`]), and wait aside (at
//! most [`RETRY_SLOTS`] at once) so the lane goes on with other patients: a
//! retried message may reach the target after its patient's next one, as
//! a device's resend does.

pub mod auth;
pub mod breaker;
pub mod fhir;
pub mod file;
pub mod hl7;
pub mod http;
pub mod json;
pub mod mqtt;
pub mod select;
pub mod waves;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use medtwin_sim::Measurement;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use crate::clock::SimClock;
use crate::stop::Stop;
use breaker::{Admit, Breaker};

/// Messages queued per lane before the driver waits.
pub const LANE_CAPACITY: usize = 4_096;
/// Extra attempts per message after a retryable failure.
pub const RETRIES: u32 = 2;
/// Retries a run may always make; it may make a tenth of its messages more.
pub const RETRY_BUDGET_BASE: u64 = 100;
/// Messages that may wait for a retry at once (bounded memory); more
/// failures are final.
pub const RETRY_SLOTS: usize = 1_024;
/// Longest `Retry-After` honoured (wall time); a longer one is cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// After a stop, how long a message already on the wire may take to be
/// answered before it is abandoned.
pub const DRAIN: Duration = Duration::from_secs(2);
/// Examples of failures kept for the report.
const MAX_SAMPLES: usize = 5;

/// A wire format: how one measurement becomes one message body.
pub trait Encoder: Send {
    /// MIME type of the bodies.
    fn content_type(&self) -> &'static str;
    /// Appends the message for `m` to `out`.
    fn encode(&self, m: &Measurement, out: &mut Vec<u8>);
}

/// Why a message was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The connection was refused (nothing listens).
    ConnectionRefused,
    /// No answer within the timeout.
    Timeout,
    /// The connection was reset.
    Reset,
    /// The target closed the connection before answering.
    Closed,
    /// Another failure to connect (address, TLS, ...).
    Connect,
    /// Another I/O failure.
    Io,
    /// The target answered with this non-2xx status.
    Status(u16),
    /// A 2xx whose body was cut off, or an answer that is not HTTP.
    MalformedAnswer,
    /// Not sent: the circuit breaker was open.
    TargetDown,
    /// Not sent (or abandoned on the wire): the run stopped.
    Interrupted,
    /// Refused in the protocol's own terms (an HL7 NAK, an MQTT reason
    /// code); the target answered about the message.
    Nak(Nak),
    /// The TLS connection failed, for this reason (unknown CA, expired,
    /// name mismatch, client certificate required or refused, ...).
    Tls(HandshakeCause),
    /// No credential for the target: its token endpoint refused the
    /// client, did not answer, or answered without a usable token.
    Auth(AuthCause),
}

pub use auth::oauth2::AuthCause;
pub use medtwin_tls::HandshakeCause;

/// A refusal in a protocol's own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Nak {
    /// An HL7 v2 acknowledgement other than AA/CA (MSA-1).
    Hl7(AckCode),
    /// An MQTT 5 reason code of 0x80 or more (PUBACK, PUBREC).
    Mqtt(u8),
}

/// HL7 v2 acknowledgement codes (MSA-1): the HL7 crate's.
pub use medtwin_hl7::AckCode;

/// Which of the four ends a cause is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The target answered 4xx or 5xx.
    Refused,
    /// No answer, or an unreadable one.
    Failed,
    /// Never sent.
    NotSent,
}

impl Cause {
    /// The cause's name in reports: `connection_refused`, `timeout`,
    /// `reset`, `closed`, `connect`, `io`, `http_<status>`,
    /// `malformed_answer`, `target_down`, `interrupted`, `auth_token_*`.
    pub fn name(self) -> String {
        match self {
            Cause::ConnectionRefused => "connection_refused".into(),
            Cause::Timeout => "timeout".into(),
            Cause::Reset => "reset".into(),
            Cause::Closed => "closed".into(),
            Cause::Connect => "connect".into(),
            Cause::Io => "io".into(),
            Cause::Status(code) => format!("http_{code}"),
            Cause::MalformedAnswer => "malformed_answer".into(),
            Cause::TargetDown => "target_down".into(),
            Cause::Interrupted => "interrupted".into(),
            Cause::Nak(Nak::Hl7(code)) => format!("hl7_{}", code.as_str().to_ascii_lowercase()),
            Cause::Nak(Nak::Mqtt(code)) => format!("mqtt_rc_{code}"),
            Cause::Tls(tls) => tls.name().into(),
            Cause::Auth(auth) => auth.name().into(),
        }
    }

    /// Which end it is.
    pub fn end(self) -> End {
        match self {
            Cause::Status(_) | Cause::Nak(_) => End::Refused,
            Cause::TargetDown | Cause::Interrupted => End::NotSent,
            _ => End::Failed,
        }
    }

    /// Whether another attempt may help: a connection that failed, 408,
    /// 429 and 5xx. A timeout is not retried (the request may still be
    /// processed, and a hanging target would hold the lane for another
    /// timeout), nor is a malformed answer (the target may have taken it).
    pub fn retryable(self) -> bool {
        match self {
            Cause::Status(code) => code == 408 || code == 429 || code >= 500,
            Cause::ConnectionRefused
            | Cause::Reset
            | Cause::Closed
            | Cause::Connect
            | Cause::Io
            | Cause::Tls(HandshakeCause::HandshakeTimeout)
            | Cause::Auth(AuthCause::TokenUnreachable) => true,
            // A certificate does not fix itself between attempts.
            Cause::Tls(_) => false,
            // Nor do the client's credentials.
            Cause::Auth(_) => false,
            Cause::Timeout
            | Cause::MalformedAnswer
            | Cause::TargetDown
            | Cause::Interrupted
            | Cause::Nak(_) => false,
        }
    }

    /// Whether it counts against the target's health (the breaker): no
    /// answer, a 5xx, or a 429 (the target asks to be left alone). Other
    /// 4xx are answers about the message, not the target; so is a client
    /// certificate refused or missing (the TLS 401/403): with a
    /// certificate per device, one revoked device must not stop the rest.
    pub fn is_down(self) -> bool {
        match self {
            Cause::Status(code) => code >= 500 || code == 429,
            Cause::Tls(HandshakeCause::ClientCertRefused | HandshakeCause::ClientCertRequired) => {
                false
            }
            Cause::TargetDown | Cause::Interrupted | Cause::Nak(_) => false,
            // The target was not asked; a refusing token endpoint is
            // asked at most once a second (auth::oauth2::FAILURE_HOLD).
            Cause::Auth(AuthCause::TokenRefused | AuthCause::TokenMalformed) => false,
            _ => true,
        }
    }
}

/// Why one attempt was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The cause.
    pub cause: Cause,
    /// The target's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// What happened, in words (the error chain, or the status and body).
    pub detail: String,
    /// The protocol's own sub-cause, when it gave one: a FHIR
    /// `OperationOutcome` issue code, an HL7 ERR code, an MQTT reason
    /// code. Counted in [`TransportStats::by_reason`].
    pub reason: Option<String>,
}

impl Failure {
    /// A failure with no `Retry-After` and no sub-cause.
    pub fn new(cause: Cause, detail: impl Into<String>) -> Failure {
        Failure {
            cause,
            retry_after: None,
            detail: detail.into(),
            reason: None,
        }
    }

    /// The same failure with the protocol's sub-cause.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Failure {
        self.reason = Some(reason.into());
        self
    }
}

/// How a carrier's target took one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted (HTTP 2xx, body read whole).
    Accepted,
    /// Not accepted.
    NotAccepted(Failure),
}

/// A way to reach the target.
pub trait Carrier: Send + Sync + 'static {
    /// Most messages one send may carry (a FHIR transaction `Bundle` of N);
    /// 1 for carriers that send one message at a time.
    fn batch_limit(&self) -> usize {
        1
    }
    /// Sends 1 to [`Carrier::batch_limit`] messages of one lane, in order,
    /// and says how the target took them; the outcome applies to each.
    fn send(&self, batch: &[Outgoing]) -> impl Future<Output = Sent> + Send;
    /// Where messages go, for the report.
    fn destination(&self) -> &str;
    /// After the last message: publish an offline status, disconnect.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The carrier's own counters for the report (reconnects, ...).
    fn counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

/// How the target took one message, reported as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The message's [`Outgoing::id`].
    pub id: u64,
    /// Whether the target accepted it (after any retries).
    pub accepted: bool,
    /// When it was first sent (when it was given up on, if never sent).
    pub sent_at: Instant,
}

/// One message on its way out.
#[derive(Debug)]
pub struct Outgoing {
    /// The run's number for it, in the order the twin delivered them.
    pub id: u64,
    /// Which lane (patient index modulo lanes keeps patients in order).
    pub patient_idx: u32,
    /// The device that sent it (carriers that route by device: MQTT
    /// topics, per-device connections).
    pub device_idx: u32,
    /// Simulated delivery time.
    pub delivered_ms: u64,
    /// Encoded body.
    pub body: Vec<u8>,
    /// A measurement (acknowledged to the observer) or a waveform chunk
    /// (counted apart, never acknowledged).
    pub kind: MessageKind,
    /// Credit the message holds until the lanes are done with it (waveform
    /// chunks: their size, `run::twin`), released when it is dropped.
    pub hold: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What a message carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessageKind {
    /// A delivered measurement (telemetry).
    #[default]
    Measurement,
    /// A waveform chunk ([`waves`]).
    Waveform,
}

/// How the waveform chunks ended, apart from the measurements: `sent =
/// accepted + refused + failed + not_sent`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaveformEnds {
    /// Chunks handed to the transport.
    pub sent: u64,
    /// Accepted.
    pub accepted: u64,
    /// Answered 4xx or 5xx (after any retries).
    pub refused: u64,
    /// No answer, or an unreadable one (after any retries).
    pub failed: u64,
    /// Never sent: the breaker was open, or the run stopped.
    pub not_sent: u64,
    /// Every chunk not accepted, by its final cause.
    pub by_cause: BTreeMap<String, u64>,
}

/// Counts of what happened to the measurements handed to the transport:
/// `sent = accepted + refused + failed + not_sent`; waveform chunks are
/// counted the same way in [`TransportStats::waveforms`], apart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransportStats {
    /// Messages handed to the transport.
    pub sent: u64,
    /// Accepted.
    pub accepted: u64,
    /// Answered 4xx or 5xx (after any retries).
    pub refused: u64,
    /// No answer, or an unreadable one (after any retries).
    pub failed: u64,
    /// Never sent: the breaker was open, or the run stopped.
    pub not_sent: u64,
    /// Every message not accepted, by its final cause.
    pub by_cause: BTreeMap<String, u64>,
    /// Messages not accepted whose refusal named a protocol sub-cause, by
    /// `<cause>: <reason>` (e.g. `http_422: invalid`, `hl7_ae: 207`).
    pub by_reason: BTreeMap<String, u64>,
    /// The carrier's own counters (reconnects, connections, ...).
    pub carrier: BTreeMap<String, u64>,
    /// Extra attempts made.
    pub retries: u64,
    /// Retries not made because the run's retry budget was spent.
    pub retries_denied: u64,
    /// Waits for a `Retry-After` the target asked for.
    pub retry_after_waits: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// Probes the breaker sent.
    pub breaker_probes: u64,
    /// Up to five examples of failures, each naming its cause.
    pub samples: Vec<String>,
    /// The waveform chunks (none unless the run streams waveforms).
    pub waveforms: WaveformEnds,
}

impl TransportStats {
    /// Messages not accepted.
    pub fn not_accepted(&self) -> u64 {
        self.refused + self.failed + self.not_sent
    }
}

/// Lateness of sends against their due time, ms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lag {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

struct Shared {
    stats: Mutex<TransportStats>,
    lag_us: Mutex<Histogram<u64>>,
    breaker: Breaker,
    /// Messages handed to lanes, and messages the lanes have finished with
    /// (answered, failed or given up on): `flush` waits for them to meet.
    queued: AtomicU64,
    done: AtomicU64,
    /// Retries made so far (against the run's budget).
    retries_used: AtomicU64,
    /// Messages waiting to be retried at once, at most [`RETRY_SLOTS`].
    retry_slots: Arc<tokio::sync::Semaphore>,
    progress: Notify,
    stop: Stop,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, TransportStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one retry from the run's budget, if any is left.
    fn take_retry(&self) -> bool {
        let allowed = RETRY_BUDGET_BASE + self.queued.load(Ordering::Acquire) / 10;
        self.retries_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < allowed).then_some(used + 1)
            })
            .is_ok()
    }
}

/// What the transport has done so far (for live progress).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Counts so far.
    pub stats: TransportStats,
    /// Send lag p99 so far, ms.
    pub lag_p99_ms: f64,
    /// Messages handed over and not yet finished with.
    pub backlog: u64,
}

/// A running transport.
pub struct Transport {
    lanes: Vec<mpsc::Sender<Outgoing>>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl Transport {
    /// Starts `lanes` lanes sending through `carrier`; each message's fate
    /// goes to `acks` when given. Once `stop` is thrown, lanes send nothing
    /// more, give messages on the wire [`DRAIN`] to be answered, and count
    /// the rest as not sent.
    pub fn start<C: Carrier>(
        carrier: Arc<C>,
        lanes: usize,
        clock: Arc<SimClock>,
        acks: Option<mpsc::Sender<Ack>>,
        stop: Stop,
    ) -> Transport {
        let shared = Arc::new(Shared {
            stats: Mutex::new(TransportStats::default()),
            // 1 µs to 1 h, 3 significant digits: constant, valid bounds.
            lag_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            breaker: Breaker::default(),
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            retries_used: AtomicU64::new(0),
            retry_slots: Arc::new(tokio::sync::Semaphore::new(RETRY_SLOTS)),
            progress: Notify::new(),
            stop,
        });
        let mut senders = Vec::new();
        let mut tasks = JoinSet::new();
        for _ in 0..lanes.max(1) {
            let (tx, rx) = mpsc::channel(LANE_CAPACITY);
            senders.push(tx);
            tasks.spawn(lane(
                rx,
                carrier.clone(),
                clock.clone(),
                shared.clone(),
                acks.clone(),
            ));
        }
        Transport {
            lanes: senders,
            tasks,
            shared,
        }
    }

    /// Queues a message; waits while its lane is full.
    pub async fn send(&self, message: Outgoing) {
        let lane = message.patient_idx as usize % self.lanes.len();
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        // A closed lane only happens after a panic in it, which JoinSet
        // reports; count the message so nothing goes missing and `flush`
        // cannot hang.
        let kinds = Kinds::of(std::slice::from_ref(&message));
        if self.lanes[lane].send(message).await.is_err() {
            count(
                &self.shared,
                Err(Failure::new(Cause::Interrupted, "lane gone")),
                kinds,
                0,
            );
            self.shared.done.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Counts `n` deliveries that were never handed over because the run
    /// stopped first (so `sent` still equals what the twin delivered).
    pub fn abandon(&self, n: u64) {
        let mut stats = self.shared.stats();
        stats.sent += n;
        stats.not_sent += n;
        *stats.by_cause.entry(Cause::Interrupted.name()).or_insert(0) += n;
    }

    /// Counts `n` waveform chunks never handed over because the run
    /// stopped first.
    pub fn abandon_waveforms(&self, n: u64) {
        if n == 0 {
            return;
        }
        let mut stats = self.shared.stats();
        let w = &mut stats.waveforms;
        w.sent += n;
        w.not_sent += n;
        *w.by_cause.entry(Cause::Interrupted.name()).or_insert(0) += n;
    }

    /// Waits until every message queued so far has been sent and answered
    /// (or has failed). Virtual time uses it as a barrier, so no lane runs
    /// far ahead of the others and the frontier means "everything up to
    /// here has reached the target".
    pub async fn flush(&self) {
        let target = self.shared.queued.load(Ordering::Acquire);
        loop {
            // Register for the next notification before checking, so a
            // lane finishing in between cannot be missed.
            let notified = self.shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.done.load(Ordering::Acquire) >= target || self.tasks.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// What the transport has done so far.
    pub fn snapshot(&self) -> Snapshot {
        snapshot(&self.shared)
    }

    /// A handle that reads [`Transport::snapshot`] from elsewhere.
    pub fn watcher(&self) -> Watcher {
        Watcher(self.shared.clone())
    }

    /// Waits for every queued message to be sent (or given up on) and
    /// returns the totals.
    pub async fn finish(mut self) -> (TransportStats, Lag) {
        self.lanes.clear();
        while self.tasks.join_next().await.is_some() {}
        // Messages waiting for a retry hold a slot each: all slots free
        // means every retry has ended (they end within DRAIN of a stop).
        let _all = self
            .shared
            .retry_slots
            .acquire_many(RETRY_SLOTS as u32)
            .await;
        let stats = snapshot(&self.shared).stats;
        let lag = self
            .shared
            .lag_us
            .lock()
            .map(|h| Lag {
                p50: h.value_at_quantile(0.5) as f64 / 1000.0,
                p99: h.value_at_quantile(0.99) as f64 / 1000.0,
                max: h.max() as f64 / 1000.0,
            })
            .unwrap_or_default();
        (stats, lag)
    }
}

/// Reads a running transport's counters (for live progress).
#[derive(Clone)]
pub struct Watcher(Arc<Shared>);

impl Watcher {
    /// What the transport has done so far.
    pub fn snapshot(&self) -> Snapshot {
        snapshot(&self.0)
    }
}

fn snapshot(shared: &Shared) -> Snapshot {
    let mut stats = shared.stats().clone();
    let breaker = shared.breaker.stats();
    stats.breaker_opened = breaker.opened;
    stats.breaker_probes = breaker.probes;
    let lag_p99_ms = shared
        .lag_us
        .lock()
        .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
        .unwrap_or(0.0);
    let backlog = shared
        .queued
        .load(Ordering::Acquire)
        .saturating_sub(shared.done.load(Ordering::Acquire));
    Snapshot {
        stats,
        lag_p99_ms,
        backlog,
    }
}

async fn lane<C: Carrier>(
    mut rx: mpsc::Receiver<Outgoing>,
    carrier: Arc<C>,
    clock: Arc<SimClock>,
    shared: Arc<Shared>,
    acks: Option<mpsc::Sender<Ack>>,
) {
    let limit = carrier.batch_limit().max(1);
    // A message taken while filling a batch but not yet due.
    let mut carried: Option<Outgoing> = None;
    loop {
        let first = match carried.take() {
            Some(message) => message,
            None => match rx.recv().await {
                Some(message) => message,
                None => break,
            },
        };
        let mut batch = vec![first];
        let first = attempt_first(
            &mut batch,
            &mut rx,
            &mut carried,
            limit,
            &*carrier,
            &clock,
            &shared,
        )
        .await;
        match first {
            First::Done(outcome, sent_at, attempts) => {
                finish(&shared, acks.as_ref(), &batch, outcome, sent_at, attempts).await;
            }
            First::Retry(failure, sent_at) => {
                // The retries wait aside, so one message's back-off (or a
                // target's `Retry-After`) never holds up the lane's other
                // patients; the retry slot bounds how many wait at once.
                let Ok(slot) = Arc::clone(&shared.retry_slots).try_acquire_owned() else {
                    shared.stats().retries_denied += 1;
                    finish(&shared, acks.as_ref(), &batch, Err(failure), sent_at, 1).await;
                    continue;
                };
                let (carrier, shared, acks) =
                    (Arc::clone(&carrier), Arc::clone(&shared), acks.clone());
                tokio::spawn(async move {
                    let stop = shared.stop.clone();
                    let (outcome, attempts) = tokio::select! {
                        r = retries(&batch, &*carrier, &shared, failure) => r,
                        () = stop.stopped_for(DRAIN) => (
                            Err(Failure::new(Cause::Interrupted, "abandoned while retrying when the run stopped")),
                            1,
                        ),
                    };
                    finish(&shared, acks.as_ref(), &batch, outcome, sent_at, attempts).await;
                    drop(slot);
                });
            }
        }
    }
}

/// Counts a batch's end (each message in it), reports each message's fate,
/// and wakes a flush waiting for them.
async fn finish(
    shared: &Shared,
    acks: Option<&mpsc::Sender<Ack>>,
    batch: &[Outgoing],
    outcome: Result<(), Failure>,
    sent_at: Instant,
    attempts: u32,
) {
    let accepted = outcome.is_ok();
    count(
        shared,
        outcome,
        Kinds::of(batch),
        attempts.saturating_sub(1),
    );
    if let Some(acks) = acks {
        // Only measurements are observed; waveform chunks are counted.
        for message in batch.iter().filter(|m| m.kind == MessageKind::Measurement) {
            let ack = Ack {
                id: message.id,
                accepted,
                sent_at,
            };
            // The run stopped listening only after an error of its own.
            let _ = acks.send(ack).await;
        }
    }
    let done = shared.done.fetch_add(batch.len() as u64, Ordering::AcqRel) + batch.len() as u64;
    // Only the message that empties the pipeline can end a flush.
    if done >= shared.queued.load(Ordering::Acquire) {
        shared.progress.notify_waiters();
    }
}

/// How a batch's first attempt went.
enum First {
    /// Its end: outcome, when it was sent, attempts made.
    Done(Result<(), Failure>, Instant, u32),
    /// It failed and may be tried again.
    Retry(Failure, Instant),
}

/// Waits for the batch's first message to be due, fills the batch with
/// messages already due (up to `limit`; a message not yet due is carried
/// to the next batch), asks the breaker, sends it once.
async fn attempt_first<C: Carrier>(
    batch: &mut Vec<Outgoing>,
    rx: &mut mpsc::Receiver<Outgoing>,
    carried: &mut Option<Outgoing>,
    limit: usize,
    carrier: &C,
    clock: &SimClock,
    shared: &Shared,
) -> First {
    let stop = &shared.stop;
    let interrupted = || {
        Err(Failure::new(
            Cause::Interrupted,
            "the run stopped before it was sent",
        ))
    };
    if stop.is_stopped() {
        return First::Done(interrupted(), Instant::now(), 0);
    }
    if let Some(due) = clock.due(batch[0].delivered_ms) {
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            _ = stop.stopped() => return First::Done(interrupted(), Instant::now(), 0),
        }
        record_lag(shared, due);
    }
    while batch.len() < limit {
        let Ok(next) = rx.try_recv() else { break };
        match clock.due(next.delivered_ms) {
            Some(due) if due > Instant::now() => {
                *carried = Some(next);
                break;
            }
            Some(due) => {
                record_lag(shared, due);
                batch.push(next);
            }
            None => batch.push(next),
        }
    }
    // The time basis of virtual time: an alert that arrives from now on,
    // even while the target is still handling this message, is placed no
    // earlier than this message's delivery.
    if let Some(last) = batch.last() {
        clock.advance_frontier(last.delivered_ms);
    }
    let sent_at = Instant::now();
    let admit = shared.breaker.admit(sent_at);
    if admit == Admit::Skip {
        let why = "not sent: the target failed repeatedly and the circuit breaker is open";
        return First::Done(Err(Failure::new(Cause::TargetDown, why)), sent_at, 0);
    }
    let outcome = tokio::select! {
        o = carrier.send(batch) => o,
        () = stop.stopped_for(DRAIN) => {
            let why = "abandoned on the wire when the run stopped";
            return First::Done(Err(Failure::new(Cause::Interrupted, why)), sent_at, 1);
        }
    };
    match judged(shared, admit, outcome) {
        None => First::Done(Ok(()), sent_at, 1),
        Some(f) if may_retry(shared, &f, 1) => First::Retry(f, sent_at),
        Some(f) => First::Done(Err(f), sent_at, 1),
    }
}

/// Records how late a message went out against its due time.
fn record_lag(shared: &Shared, due: Instant) {
    let lag = Instant::now().saturating_duration_since(due);
    if let Ok(mut h) = shared.lag_us.lock() {
        h.saturating_record(lag.as_micros().max(1) as u64);
    }
}

/// One attempt's failure, if any, after telling the breaker how the
/// target did (a retry always speaks as `Admit::Send`, never as a probe).
fn judged(shared: &Shared, admit: Admit, outcome: Sent) -> Option<Failure> {
    let failure = match outcome {
        Sent::Accepted => None,
        Sent::NotAccepted(f) => Some(f),
    };
    let down = failure.as_ref().is_some_and(|f| f.cause.is_down());
    shared.breaker.record(admit, down, Instant::now());
    failure
}

/// Whether a message that failed `n` times may go again: a retryable
/// cause, retries left for it and for the run, the breaker closed, the run
/// not stopping. Takes the retry from the run's budget when it may.
fn may_retry(shared: &Shared, failure: &Failure, n: u32) -> bool {
    if !(failure.cause.retryable()
        && n <= RETRIES
        && !shared.stop.is_stopped()
        && shared.breaker.allows_retry())
    {
        return false;
    }
    if shared.take_retry() {
        true
    } else {
        shared.stats().retries_denied += 1;
        false
    }
}

/// Tries a batch again after `failure`, honouring `Retry-After`, until
/// it is accepted or a failure is final. Returns the outcome and the
/// attempts made in all.
async fn retries<C: Carrier>(
    batch: &[Outgoing],
    carrier: &C,
    shared: &Shared,
    mut failure: Failure,
) -> (Result<(), Failure>, u32) {
    let mut n = 1;
    loop {
        let wait = match failure.retry_after {
            Some(after) => {
                shared.stats().retry_after_waits += 1;
                after.min(MAX_RETRY_AFTER)
            }
            None => Duration::from_millis(20 << n),
        };
        tokio::time::sleep(wait).await;
        n += 1;
        let outcome = carrier.send(batch).await;
        match judged(shared, Admit::Send, outcome) {
            None => return (Ok(()), n),
            Some(f) if may_retry(shared, &f, n) => failure = f,
            Some(f) => return (Err(f), n),
        }
    }
}

/// How many of a batch's messages are measurements and waveform chunks.
#[derive(Clone, Copy, Debug)]
struct Kinds {
    measurements: u64,
    waveforms: u64,
}

impl Kinds {
    fn of(batch: &[Outgoing]) -> Kinds {
        let waveforms = batch
            .iter()
            .filter(|m| m.kind == MessageKind::Waveform)
            .count() as u64;
        Kinds {
            measurements: batch.len() as u64 - waveforms,
            waveforms,
        }
    }
}

/// Counts the end of the messages of a batch (they shared one fate), each
/// kind apart, and keeps a few samples of what went wrong.
fn count(shared: &Shared, outcome: Result<(), Failure>, kinds: Kinds, retries: u32) {
    let mut stats = shared.stats();
    stats.retries += u64::from(retries);
    let w = kinds.waveforms;
    stats.waveforms.sent += w;
    let n = kinds.measurements;
    stats.sent += n;
    let failure = match outcome {
        Ok(()) => {
            stats.accepted += n;
            stats.waveforms.accepted += w;
            return;
        }
        Err(f) => f,
    };
    let name = failure.cause.name();
    let first_of_cause =
        !(stats.by_cause.contains_key(&name) || stats.waveforms.by_cause.contains_key(&name));
    if w > 0 {
        let waves = &mut stats.waveforms;
        match failure.cause.end() {
            End::Refused => waves.refused += w,
            End::Failed => waves.failed += w,
            End::NotSent => waves.not_sent += w,
        }
        *waves.by_cause.entry(name.clone()).or_insert(0) += w;
    }
    match failure.cause.end() {
        End::Refused => stats.refused += n,
        End::Failed => stats.failed += n,
        End::NotSent => stats.not_sent += n,
    }
    if n > 0 {
        *stats.by_cause.entry(name.clone()).or_insert(0) += n;
    }
    if let Some(reason) = &failure.reason {
        *stats
            .by_reason
            .entry(format!("{name}: {reason}"))
            .or_insert(0) += n + w;
    }
    // One sample per cause first, so a mixed failure shows each kind.
    if first_of_cause && stats.samples.len() < MAX_SAMPLES {
        let what = if n == 0 { " (waveform chunk)" } else { "" };
        stats
            .samples
            .push(format!("{name}{what}: {}", failure.detail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Clock;

    /// A target that answers slowly for odd patients, so lanes drift apart.
    async fn slow_target() -> (String, tokio::task::JoinHandle<()>) {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/m",
            post(|body: String| async move {
                if body.ends_with('1') {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/m"), server)
    }

    #[test]
    fn flush_returns_only_when_everything_queued_is_answered() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (url, server) = slow_target().await;
            let clock = Arc::new(SimClock::new(Clock::Virtual, Instant::now()));
            let carrier = http::HttpCarrier::new(
                http::HttpConfig {
                    waveform_url: waves::waveform_url(&url),
                    url,
                    auth: Default::default(),
                    timeout: Duration::from_secs(5),
                    connections: 4,
                    run_id: None,
                    tls: None,
                },
                "text/plain",
            )
            .unwrap();
            let transport =
                Transport::start(Arc::new(carrier), 4, clock.clone(), None, Stop::new());
            for round in 0..3u64 {
                for i in 0..40u32 {
                    transport
                        .send(Outgoing {
                            id: round * 40 + u64::from(i),
                            patient_idx: i,
                            device_idx: i,
                            delivered_ms: round * 1_000 + u64::from(i),
                            body: format!("{round}-{}", i % 2).into_bytes(),
                            kind: MessageKind::Measurement,
                            hold: None,
                        })
                        .await;
                }
                transport.flush().await;
                // Everything queued so far has been answered: the frontier
                // is this round's last message, and nothing is pending.
                let sent = transport.shared.stats.lock().unwrap().sent;
                assert_eq!(sent, (round + 1) * 40);
                assert_eq!(clock.sim_at(Instant::now()), round * 1_000 + 39);
            }
            let (stats, _) = transport.finish().await;
            assert_eq!(stats.accepted, 120);
            server.abort();
        });
    }
}
