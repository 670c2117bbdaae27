//! One run of one scenario, as a sequence of named stages: open the alert
//! intake, start the target (the embedded reference backend, or the
//! scenario's), start the transport, run the twin on its own thread and
//! drive its deliveries out on the clock, wind down (let simulated time run
//! out, give late alerts their grace), then judge the alerts against the
//! truth and build the report.
//!
//! Codemap: [`twin`] (the twin thread: observer, digests, accounting,
//! encoding), [`target`] (what telemetry is sent to), [`judge`] (alerts
//! against obligations), [`report`] (the one conversion from run results
//! to the report's model), [`digest`] (the truth and telemetry digests).

pub mod digest;
pub mod judge;
pub mod report;
pub mod target;
pub mod twin;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::clock::SimClock;
use crate::intake::webhook::Webhook;
use crate::intake::{Inbox, Intake as _};
use crate::report::Report;
use crate::scenario::{Clock, Scenario};
use crate::transport::Transport;
use crate::transport::http::HttpCarrier;
use twin::{Batch, STEPS_AHEAD, TwinSummary};

/// Wall time between the run's start and simulated zero, so the first
/// messages are not already late.
const EPOCH_LEAD: Duration = Duration::from_millis(200);
/// Width of a lockstep window in virtual time, simulated ms.
const VIRTUAL_WINDOW_MS: u64 = 1_000;

/// When and how the run maps simulated time, and the webhook's token.
pub struct Start {
    /// Wall instant the run began.
    pub wall: Instant,
    /// Wall-clock time of simulated zero (the run epoch).
    pub epoch: SystemTime,
    /// Timestamp carried by measurements taken at simulated zero.
    pub sim_start: SystemTime,
    /// Simulated ↔ wall time.
    pub clock: Arc<SimClock>,
    /// Bearer token the target must present to the webhook.
    pub token: String,
}

impl Start {
    /// Fixes the run's epoch now.
    fn now(s: &Scenario) -> Start {
        let wall = Instant::now();
        let epoch = SystemTime::now() + EPOCH_LEAD;
        Start {
            wall,
            epoch,
            // Whole milliseconds, so timestamps and their round trips are exact.
            sim_start: s.start.unwrap_or_else(|| truncate_to_ms(epoch)),
            clock: Arc::new(SimClock::new(s.clock, wall + EPOCH_LEAD)),
            token: s
                .alerts
                .token
                .clone()
                .or_else(|| {
                    std::env::var("MEDTWIN_ALERT_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty())
                })
                .unwrap_or_else(random_token),
        }
    }
}

/// Runs a validated scenario and returns its report.
pub async fn execute(s: &Scenario) -> anyhow::Result<Report> {
    let start = Start::now(s);
    let inbox = Inbox::new(start.clock.clone());
    let webhook = Webhook::start(s.alerts.listen, start.token.clone(), inbox.clone())
        .await
        .with_context(|| format!("cannot listen for alerts on {}", s.alerts.listen))?;
    let target = target::start(s, &webhook.url(), &start).await?;
    let carrier = HttpCarrier::new(target.http.clone(), "application/json")
        .context("cannot build the HTTP client")?;
    let transport = Transport::start(
        Arc::new(carrier),
        target.http.connections,
        start.clock.clone(),
    );
    let (tx, rx) = mpsc::channel::<Batch>(STEPS_AHEAD);
    let (config, expectations, sim_start) =
        (s.sim.clone(), s.expectations.clone(), start.sim_start);
    let twin_thread = std::thread::Builder::new()
        .name("medtwin-twin".into())
        .spawn(move || twin::run(config, expectations, sim_start, tx))
        .context("cannot start the twin thread")?;
    drive(rx, &transport, s.clock).await;
    let twin: TwinSummary = twin_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the twin thread panicked"))?
        .context("the twin refused its configuration")?;
    let (transport_stats, lag) = transport.finish().await;
    let backend = target::wind_down(s, &start.clock, target.backend).await;
    let end_ms = observed_until(s, &start.clock);
    webhook.stop().await;
    let (received, refused) = inbox.take();
    let judged = judge::judge(s, &twin, &received, start.sim_start, end_ms);
    Ok(report::build(report::Parts {
        scenario: s,
        start: &start,
        target_url: &target.http.url,
        twin,
        transport: (transport_stats, lag),
        received: &received,
        refused,
        judged,
        backend,
    }))
}

/// Hands every delivery to the transport as the twin produces them.
/// Virtual time has no wall clock to pace the lanes, so it moves in
/// lockstep windows: nothing from the next window is sent until the target
/// has answered everything before it. An alert is then placed within about
/// a window of the data that caused it, whatever the lanes' relative speeds.
async fn drive(mut rx: mpsc::Receiver<Batch>, transport: &Transport, clock: Clock) {
    let lockstep = clock.speed().is_none();
    let mut next_barrier_ms = VIRTUAL_WINDOW_MS;
    while let Some(batch) = rx.recv().await {
        for message in batch.deliveries {
            if lockstep && message.delivered_ms >= next_barrier_ms {
                transport.flush().await;
                next_barrier_ms =
                    (message.delivered_ms / VIRTUAL_WINDOW_MS + 1) * VIRTUAL_WINDOW_MS;
            }
            transport.send(message).await;
        }
    }
}

/// The last simulated time at which an alert could have been seen.
fn observed_until(s: &Scenario, clock: &SimClock) -> u64 {
    match s.clock {
        Clock::Virtual => s.sim.duration_ms,
        _ => clock.sim_at(Instant::now()).max(s.sim.duration_ms),
    }
}

fn truncate_to_ms(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// A 128-bit token from the OS's randomness (via the std hasher's keys)
/// mixed with the time: the webhook token, never used by the twin.
fn random_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let a = RandomState::new().hash_one(nanos);
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:016x}")
}
