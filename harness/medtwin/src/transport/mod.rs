//! Telemetry out: a seam between *wire formats* ([`Encoder`]: a pure
//! function of the twin's record, one module each, e.g. [`json`]) and
//! *carriers* ([`Carrier`]: how bytes reach the target, e.g. [`http`]),
//! and the lanes, pacing, retries and lag measurement they share.
//!
//! Messages are spread over lanes by patient, and each lane sends in
//! order, so a patient's messages reach the target in the order the
//! network delivered them. A lane holds each message until its due wall
//! time (the clock's mapping of its simulated delivery time) and records
//! how late it actually went out. Queues are bounded: when the target is
//! slower than the schedule, the driver waits and the lateness shows in
//! the send lag.

pub mod http;
pub mod json;

use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use medtwin_sim::Measurement;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use crate::clock::SimClock;

/// Messages queued per lane before the driver waits.
const LANE_CAPACITY: usize = 4_096;
/// Extra attempts after a connection error or a server error.
const RETRIES: u32 = 2;
/// Examples of failures kept for the report.
const MAX_SAMPLES: usize = 5;

/// A wire format: how one measurement becomes one message body.
pub trait Encoder: Send {
    /// MIME type of the bodies.
    fn content_type(&self) -> &'static str;
    /// Appends the message for `m` to `out`.
    fn encode(&self, m: &Measurement, out: &mut Vec<u8>);
}

/// How a carrier's target took one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted (HTTP 2xx).
    Accepted,
    /// Refused as bad (HTTP 4xx); not retried.
    Rejected(String),
    /// The target failed (HTTP 5xx); retried.
    ServerError(String),
    /// No answer (refused connection, timeout); retried.
    Failed(String),
}

/// A way to reach the target.
pub trait Carrier: Send + Sync + 'static {
    /// Sends one message body and says how it was taken.
    fn send(&self, body: Vec<u8>) -> impl Future<Output = Sent> + Send;
    /// Where messages go, for the report.
    fn destination(&self) -> &str;
}

/// How the target took one message, reported as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The message's [`Outgoing::id`].
    pub id: u64,
    /// Whether the target accepted it (after any retries).
    pub accepted: bool,
    /// When it was first sent.
    pub sent_at: Instant,
}

/// One message on its way out.
#[derive(Debug)]
pub struct Outgoing {
    /// The run's number for it, in the order the twin delivered them.
    pub id: u64,
    /// Which lane (patient index modulo lanes keeps patients in order).
    pub patient_idx: u32,
    /// Simulated delivery time.
    pub delivered_ms: u64,
    /// Encoded body.
    pub body: Vec<u8>,
}

/// Counts of what happened to the messages handed to the transport.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransportStats {
    /// Messages handed to the transport.
    pub sent: u64,
    /// Accepted.
    pub accepted: u64,
    /// Refused as bad (the target's 4xx).
    pub rejected: u64,
    /// Server errors after every retry.
    pub server_errors: u64,
    /// No answer (connection refused, timeout) after every retry.
    pub failed: u64,
    /// Extra attempts made.
    pub retries: u64,
    /// Up to five examples of failures.
    pub samples: Vec<String>,
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
    /// Messages handed to lanes, and messages the lanes have finished with
    /// (answered, failed or given up on): `flush` waits for them to meet.
    queued: AtomicU64,
    done: AtomicU64,
    progress: Notify,
}

/// A running transport.
pub struct Transport {
    lanes: Vec<mpsc::Sender<Outgoing>>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl Transport {
    /// Starts `lanes` lanes sending through `carrier`; each message's fate
    /// goes to `acks` when given.
    pub fn start<C: Carrier>(
        carrier: Arc<C>,
        lanes: usize,
        clock: Arc<SimClock>,
        acks: Option<mpsc::Sender<Ack>>,
    ) -> Transport {
        let shared = Arc::new(Shared {
            stats: Mutex::new(TransportStats::default()),
            // 1 µs to 1 h, 3 significant digits: constant, valid bounds.
            lag_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            progress: Notify::new(),
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
        // reports; count the message as done so `flush` cannot hang.
        if self.lanes[lane].send(message).await.is_err() {
            self.shared.done.fetch_add(1, Ordering::AcqRel);
        }
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

    /// Waits for every queued message to be sent and returns the totals.
    pub async fn finish(mut self) -> (TransportStats, Lag) {
        self.lanes.clear();
        while self.tasks.join_next().await.is_some() {}
        let stats = self
            .shared
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let lag = self.shared.lag_us.lock().map(|h| Lag {
            p50: h.value_at_quantile(0.5) as f64 / 1000.0,
            p99: h.value_at_quantile(0.99) as f64 / 1000.0,
            max: h.max() as f64 / 1000.0,
        });
        (stats, lag.unwrap_or_default())
    }
}

async fn lane<C: Carrier>(
    mut rx: mpsc::Receiver<Outgoing>,
    carrier: Arc<C>,
    clock: Arc<SimClock>,
    shared: Arc<Shared>,
    acks: Option<mpsc::Sender<Ack>>,
) {
    while let Some(message) = rx.recv().await {
        let due = clock.due(message.delivered_ms);
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
            let lag = Instant::now().saturating_duration_since(due);
            if let Ok(mut h) = shared.lag_us.lock() {
                h.saturating_record(lag.as_micros().max(1) as u64);
            }
        }
        // The time basis of virtual time: an alert that arrives from now
        // on, even while the target is still handling this message, is
        // placed no earlier than this message's delivery.
        clock.advance_frontier(message.delivered_ms);
        let sent_at = Instant::now();
        let mut retries = 0;
        let outcome = loop {
            let outcome = carrier.send(message.body.clone()).await;
            match outcome {
                Sent::ServerError(_) | Sent::Failed(_) if retries < RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(20 << retries)).await;
                }
                other => break other,
            }
        };
        let accepted = outcome == Sent::Accepted;
        record(&shared, outcome, retries);
        if let Some(acks) = &acks {
            let ack = Ack {
                id: message.id,
                accepted,
                sent_at,
            };
            // The run stopped listening only after an error of its own.
            let _ = acks.send(ack).await;
        }
        let done = shared.done.fetch_add(1, Ordering::AcqRel) + 1;
        // Only the message that empties the pipeline can end a flush.
        if done >= shared.queued.load(Ordering::Acquire) {
            shared.progress.notify_waiters();
        }
    }
}

/// Counts one message's outcome (and keeps a few samples of what went wrong).
fn record(shared: &Shared, outcome: Sent, retries: u32) {
    let Ok(mut stats) = shared.stats.lock() else {
        return;
    };
    stats.sent += 1;
    stats.retries += u64::from(retries);
    let sample = match outcome {
        Sent::Accepted => {
            stats.accepted += 1;
            None
        }
        Sent::Rejected(why) => {
            stats.rejected += 1;
            Some(why)
        }
        Sent::ServerError(why) => {
            stats.server_errors += 1;
            Some(why)
        }
        Sent::Failed(why) => {
            stats.failed += 1;
            Some(why)
        }
    };
    if let Some(why) = sample.filter(|_| stats.samples.len() < MAX_SAMPLES) {
        stats.samples.push(why);
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
                    url,
                    token: None,
                    timeout: Duration::from_secs(5),
                    connections: 4,
                },
                "text/plain",
            )
            .unwrap();
            let transport = Transport::start(Arc::new(carrier), 4, clock.clone(), None);
            for round in 0..3u64 {
                for i in 0..40u32 {
                    transport
                        .send(Outgoing {
                            id: round * 40 + u64::from(i),
                            patient_idx: i,
                            delivered_ms: round * 1_000 + u64::from(i),
                            body: format!("{round}-{}", i % 2).into_bytes(),
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
