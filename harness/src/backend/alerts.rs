//! Alerts out: fault injection, a bounded queue, and delivery to the webhook.
//!
//! The scorer raises an alert while it holds the patient's lock; raising
//! never waits: fault injection decides the alert's fate, and the alert goes
//! into one of a few bounded *lanes* (a full lane counts an overflow and the
//! alert is lost). A patient always maps to the same lane and a lane delivers
//! in order, so `news2-medium` reaches the webhook before the `news2-high`
//! that followed it. Each lane is one task: it waits until the alert is due
//! (the delay fault), then posts it with a timeout and a few retries.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::escalation::Level;
use super::stats::{Counters, bump};
use crate::wire::{ALERT_SCHEMA, AlertMessage, Priority};

/// Faults the backend can inject into its own alerting, to check that the
/// harness notices. All off by default.
///
/// Each knob that draws random numbers gets its own stream seeded from
/// [`BackendConfig::seed`](super::BackendConfig::seed), so adding a knob
/// later (duplicate, spurious, wrong patient) does not change which alerts
/// an existing knob drops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Percentage (0–100) of alerts silently not sent.
    pub drop_alerts_pct: f64,
    /// Wall-clock delay before each alert is sent.
    pub delay_alerts: Duration,
}

impl Faults {
    /// Checks the knobs' ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=100.0).contains(&self.drop_alerts_pct),
            "drop_alerts_pct must be within 0–100, not {}",
            self.drop_alerts_pct
        );
        Ok(())
    }
}

/// Salt of the drop knob's random stream (any fixed constant; each knob has
/// its own).
const DROP_STREAM: u64 = 0x6472_6f70_5f61_6c74; // "drop_alt"

/// Per-request timeout of an alert delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per alert: the first and up to three retries.
const DELIVERY_ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubles each time (100, 200, 400 ms).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Independent delivery lanes. A few, so one slow alert does not hold up
/// every patient; not many, since each is a task and a queue.
const LANES: usize = 4;

/// One alert with the wall-clock delay fault injection gave it.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    alert: AlertMessage,
    delay: Duration,
}

/// Applies [`Faults`] to alerts, repeatably for a given seed and order of
/// alerts.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    faults: Faults,
    drop_rng: Xoshiro256PlusPlus,
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            drop_rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ DROP_STREAM),
        }
    }

    /// What to send for one alert: nothing (dropped), or the alert after a
    /// delay. A knob that adds alerts (duplicate, spurious) would return more.
    pub(crate) fn apply(&mut self, alert: AlertMessage) -> Vec<Planned> {
        // Draw for every alert, even with the knob at 0 or 100, so the stream
        // stays aligned with the alert sequence whatever the setting.
        let draw_pct = self.drop_rng.random::<f64>() * 100.0;
        if draw_pct < self.faults.drop_alerts_pct {
            return Vec::new();
        }
        vec![Planned {
            alert,
            delay: self.faults.delay_alerts,
        }]
    }
}

/// An alert waiting in a lane.
#[derive(Debug)]
struct Queued {
    alert: AlertMessage,
    due: Instant,
}

/// Where alerts go to the webhook.
#[derive(Clone, Debug)]
pub(crate) struct Webhook {
    pub(crate) url: reqwest::Url,
    pub(crate) token: Option<String>,
}

/// Raises alerts: the scorer's side of the lanes.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    lanes: Vec<mpsc::Sender<Queued>>,
    injector: Mutex<FaultInjector>,
    next_id: AtomicU64,
    counters: Arc<Counters>,
}

/// The delivery side: lane tasks and the switch that tells them to drain.
#[derive(Debug)]
pub(crate) struct Lanes {
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) drain: watch::Sender<bool>,
}

/// Starts the lane tasks (on the current tokio runtime).
pub(crate) fn start(
    webhook: Webhook,
    faults: Faults,
    seed: u64,
    queue_capacity: usize,
    counters: Arc<Counters>,
) -> anyhow::Result<(Dispatcher, Lanes)> {
    let client = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .build()
        .context("building the alert delivery client")?;
    let (drain, drain_rx) = watch::channel(false);
    let per_lane = queue_capacity.div_ceil(LANES).max(1);
    let mut senders = Vec::with_capacity(LANES);
    let mut tasks = Vec::with_capacity(LANES);
    for _ in 0..LANES {
        let (tx, rx) = mpsc::channel(per_lane);
        senders.push(tx);
        let lane = Lane {
            rx,
            drain: drain_rx.clone(),
            client: client.clone(),
            webhook: webhook.clone(),
            counters: Arc::clone(&counters),
        };
        tasks.push(tokio::spawn(lane.run()));
    }
    let dispatcher = Dispatcher {
        lanes: senders,
        injector: Mutex::new(FaultInjector::new(faults, seed)),
        next_id: AtomicU64::new(1),
        counters,
    };
    Ok((dispatcher, Lanes { tasks, drain }))
}

impl Dispatcher {
    /// Raises the alert announcing `level` for a patient. Never waits.
    pub(crate) fn raise(&self, patient_id: &str, level: Level, measurement_time: &str, score: u8) {
        let (kind, priority) = match level {
            Level::None => return,
            Level::Medium => ("news2-medium", Priority::Medium),
            Level::High => ("news2-high", Priority::High),
        };
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let alert = AlertMessage {
            schema: Some(ALERT_SCHEMA.to_owned()),
            alert_id: Some(format!("{patient_id}/{kind}/{n}")),
            patient_id: patient_id.to_owned(),
            kind: kind.to_owned(),
            priority,
            measurement_time: Some(measurement_time.to_owned()),
            score: Some(i64::from(score)),
        };
        bump(&self.counters.alerts_emitted);
        let planned = self
            .injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(alert);
        if planned.is_empty() {
            bump(&self.counters.alerts_dropped_by_fault);
        }
        let lane = &self.lanes[lane_of(patient_id)];
        let now = Instant::now();
        for Planned { alert, delay } in planned {
            let queued = Queued {
                alert,
                due: now + delay,
            };
            if lane.try_send(queued).is_err() {
                bump(&self.counters.alerts_queue_overflow);
            }
        }
    }
}

fn lane_of(patient_id: &str) -> usize {
    // DefaultHasher::new() has fixed keys: the same patient always takes the
    // same lane, run after run.
    let mut hasher = DefaultHasher::new();
    patient_id.hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// One delivery lane.
struct Lane {
    rx: mpsc::Receiver<Queued>,
    drain: watch::Receiver<bool>,
    client: reqwest::Client,
    webhook: Webhook,
    counters: Arc<Counters>,
}

impl Lane {
    async fn run(mut self) {
        loop {
            let next = tokio::select! {
                biased;
                queued = self.rx.recv() => queued,
                // Shutdown: no more alerts can be raised.
                _ = self.drain.wait_for(|drain| *drain) => None,
            };
            match next {
                Some(queued) => self.deliver(queued).await,
                None => break,
            }
        }
        // Send what is still queued (the caller bounds how long) and stop.
        while let Ok(queued) = self.rx.try_recv() {
            self.deliver(queued).await;
        }
    }

    async fn deliver(&self, queued: Queued) {
        tokio::time::sleep_until(queued.due).await;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=DELIVERY_ATTEMPTS {
            let mut request = self
                .client
                .post(self.webhook.url.clone())
                .json(&queued.alert);
            if let Some(token) = &self.webhook.token {
                request = request.bearer_auth(token);
            }
            let retry = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    bump(&self.counters.alerts_delivered);
                    return;
                }
                Ok(response) => response.status().is_server_error(),
                // Connection refused, reset, timed out: worth another try.
                // A timed-out alert may have arrived; the alert id lets the
                // receiver see the repeat.
                Err(_) => true,
            };
            if !retry || attempt == DELIVERY_ATTEMPTS {
                break;
            }
            bump(&self.counters.alerts_retried);
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        bump(&self.counters.alerts_failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertMessage {
        AlertMessage {
            schema: None,
            alert_id: None,
            patient_id: "p".to_owned(),
            kind: "news2-medium".to_owned(),
            priority: Priority::Medium,
            measurement_time: None,
            score: None,
        }
    }

    fn kept(pct: f64, seed: u64) -> Vec<bool> {
        let faults = Faults {
            drop_alerts_pct: pct,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, seed);
        (0..1000)
            .map(|_| !injector.apply(alert()).is_empty())
            .collect()
    }

    #[test]
    fn drops_are_repeatable_and_about_the_asked_share() {
        assert_eq!(kept(30.0, 7), kept(30.0, 7));
        assert_ne!(kept(30.0, 7), kept(30.0, 8));
        let n_kept = kept(30.0, 7).iter().filter(|&&k| k).count();
        assert!((620..=780).contains(&n_kept), "{n_kept}");
        assert!(kept(0.0, 1).iter().all(|&k| k));
        assert!(kept(100.0, 1).iter().all(|&k| !k));
    }
}
