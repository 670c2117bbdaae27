//! HTTP JSON transport: one POST per measurement, in medtwin's own schema.
//!
//! Messages are spread over `concurrency` lanes by patient, and each lane
//! sends in order over one keep-alive connection, so a patient's messages
//! reach the target in the order the network delivered them. A lane holds
//! each message until its due wall time (the clock's mapping of its
//! simulated delivery time) and records how late it actually went out.
//! Queues are bounded: when the target is slower than the schedule, the
//! driver waits and the lateness shows in `send_lag_ms`.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use crate::clock::SimClock;

/// Messages queued per lane before the driver waits.
const LANE_CAPACITY: usize = 4_096;
/// Extra attempts after a connection error or a 5xx answer.
const RETRIES: u32 = 2;

/// One message on its way out.
#[derive(Debug)]
pub struct Outgoing {
    /// Which lane (patient index modulo lanes keeps patients in order).
    pub patient_idx: u32,
    /// Simulated delivery time.
    pub delivered_ms: u64,
    /// JSON body.
    pub body: Vec<u8>,
}

/// Counts of what happened to the messages handed to the transport.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct TransportStats {
    /// Messages handed to the transport.
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx (the target refused the message).
    pub rejected: u64,
    /// Answered 5xx after every retry.
    pub server_errors: u64,
    /// No answer (connection refused, timeout) after every retry.
    pub failed: u64,
    /// Extra attempts made.
    pub retries: u64,
    /// Up to five examples of failures.
    pub samples: Vec<String>,
}

/// Lateness of sends against their due time, ms.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
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

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Target URL.
    pub url: String,
    /// Bearer token for the target.
    pub token: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Number of lanes (connections).
    pub concurrency: usize,
}

impl Transport {
    /// Starts the lanes.
    pub fn start(config: TransportConfig, clock: Arc<SimClock>) -> anyhow::Result<Transport> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.concurrency)
            .no_proxy()
            .build()?;
        let shared = Arc::new(Shared {
            stats: Mutex::new(TransportStats::default()),
            // 1 µs to 1 h, 3 significant digits.
            lag_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            progress: Notify::new(),
        });
        let mut lanes = Vec::new();
        let mut tasks = JoinSet::new();
        for _ in 0..config.concurrency.max(1) {
            let (tx, rx) = mpsc::channel(LANE_CAPACITY);
            lanes.push(tx);
            tasks.spawn(lane(
                rx,
                client.clone(),
                config.clone(),
                clock.clone(),
                shared.clone(),
            ));
        }
        Ok(Transport {
            lanes,
            tasks,
            shared,
        })
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

enum Outcome {
    Accepted,
    Rejected(String),
    ServerError(String),
    Failed(String),
}

async fn lane(
    mut rx: mpsc::Receiver<Outgoing>,
    client: reqwest::Client,
    config: TransportConfig,
    clock: Arc<SimClock>,
    shared: Arc<Shared>,
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
        let mut retries = 0;
        let outcome = loop {
            let outcome = post(&client, &config, message.body.clone()).await;
            match outcome {
                Outcome::ServerError(_) | Outcome::Failed(_) if retries < RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(20 << retries)).await;
                }
                other => break other,
            }
        };
        clock.advance_frontier(message.delivered_ms);
        record(&shared, outcome, retries);
        let done = shared.done.fetch_add(1, Ordering::AcqRel) + 1;
        // Only the message that empties the pipeline can end a flush.
        if done >= shared.queued.load(Ordering::Acquire) {
            shared.progress.notify_waiters();
        }
    }
}

/// Counts one message's outcome (and keeps a few samples of what went wrong).
fn record(shared: &Shared, outcome: Outcome, retries: u32) {
    let Ok(mut stats) = shared.stats.lock() else {
        return;
    };
    stats.sent += 1;
    stats.retries += u64::from(retries);
    let sample = match outcome {
        Outcome::Accepted => {
            stats.accepted += 1;
            None
        }
        Outcome::Rejected(why) => {
            stats.rejected += 1;
            Some(why)
        }
        Outcome::ServerError(why) => {
            stats.server_errors += 1;
            Some(why)
        }
        Outcome::Failed(why) => {
            stats.failed += 1;
            Some(why)
        }
    };
    if let Some(why) = sample.filter(|_| stats.samples.len() < 5) {
        stats.samples.push(why);
    }
}

async fn post(client: &reqwest::Client, config: &TransportConfig, body: Vec<u8>) -> Outcome {
    let mut request = client
        .post(&config.url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = &config.token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Read the body so the connection can be reused.
            let text = response.text().await.unwrap_or_default();
            let head: String = text.chars().take(120).collect();
            if status.is_success() {
                Outcome::Accepted
            } else if status.is_server_error() {
                Outcome::ServerError(format!("{status}: {head}"))
            } else {
                Outcome::Rejected(format!("{status}: {head}"))
            }
        }
        Err(error) => Outcome::Failed(error.to_string()),
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
            let transport = Transport::start(
                TransportConfig {
                    url,
                    token: None,
                    timeout: Duration::from_secs(5),
                    concurrency: 4,
                },
                clock.clone(),
            )
            .unwrap();
            for round in 0..3u64 {
                for i in 0..40u32 {
                    transport
                        .send(Outgoing {
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
