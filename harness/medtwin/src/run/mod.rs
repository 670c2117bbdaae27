//! One run of one scenario, as a sequence of named stages: open the alert
//! intake, start the target (the embedded reference backend, or the
//! scenario's), start the transport, run the twin on its own thread and
//! drive its deliveries out on the clock, wind down (let simulated time run
//! out, give late alerts their grace), then judge the alerts against the
//! truth and build the report.
//!
//! A run always ends and always reports: a signal or the wall-time
//! deadline throws the run's [`Stop`]; the twin stops, the transport sends
//! nothing more (what it held is counted as not sent), the intake and the
//! backend get short deadlines, and the report is written marked
//! interrupted, with everything counted so far.
//!
//! Codemap: [`twin`] (the twin thread: digests, accounting, encoding),
//! [`observe`] (the checker's truth side, on what the target accepted),
//! [`target`] (what telemetry is sent to), [`judge`] (alerts against
//! obligations), [`report`] (the one conversion from run results to the
//! report's model), [`digest`] (the truth and telemetry digests),
//! [`progress`] (live progress on stderr), [`trust`] (whether the verdict
//! can be trusted).

pub mod digest;
pub mod judge;
pub mod observe;
pub mod progress;
pub mod report;
pub mod target;
pub mod trust;
pub mod twin;

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::clock::SimClock;
use crate::intake::mapping::AlertParser;
use crate::intake::{Inbox, IntakeContext};
use crate::report::Report;
use crate::scenario::interop::IntakeKind;
use crate::scenario::{Clock, Scenario};
use crate::stop::{Stop, StopReason};
use crate::transport::json::Names;
use crate::transport::select::{self, EncodeContext};
use crate::transport::waves::WaveEncoder;
use crate::transport::{Carrier as _, Transport};
use medtwin_sim::Twin;
use twin::{Batch, STEPS_AHEAD, TwinSummary};

/// Wall time between the run's start and simulated zero, so the first
/// messages are not already late.
const EPOCH_LEAD: Duration = Duration::from_millis(200);
/// Width of a lockstep window in virtual time, simulated ms.
const VIRTUAL_WINDOW_MS: u64 = 1_000;
/// In virtual time, a jump to data this much later (sparse telemetry)...
const VIRTUAL_SETTLE_GAP_MS: u64 = 60_000;
/// ...first gives the target this long to post the alerts it raised
/// asynchronously, so they are not placed at the far side of the jump.
const VIRTUAL_SETTLE: Duration = Duration::from_millis(3);
/// After a stop, how long late alerts and the embedded backend get.
const STOP_GRACE: Duration = Duration::from_secs(1);

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
    /// Where the token came from (never the token itself).
    pub token_source: &'static str,
    /// The HMAC secret of a signed webhook: the scenario's, or
    /// `MEDTWIN_ALERT_SECRET`, or the token.
    pub secret: String,
    /// The run's id (`<stamp>-<scenario>-s<seed>`).
    pub run_id: String,
    /// Sent to the target with every message (`x-medtwin-run`): the run
    /// id and a random suffix, unique even for two runs in one second.
    pub target_run: String,
}

impl Start {
    /// Fixes the run's epoch now.
    pub fn now(s: &Scenario) -> Start {
        let env = std::env::var("MEDTWIN_ALERT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let (token, token_source) = match (&s.alerts.token, env) {
            (Some(t), _) => (t.clone(), s.alerts.token_source),
            (None, Some(t)) => (t, "MEDTWIN_ALERT_TOKEN"),
            (None, None) => (random_token(), "generated"),
        };
        let wall = Instant::now();
        let epoch = SystemTime::now() + EPOCH_LEAD;
        let run_id = report::run_id(&s.name, s.sim.seed, epoch);
        let target_run = format!("{run_id}.{}", &random_token()[..8]);
        let secret = s
            .alerts
            .intake
            .webhook
            .secret
            .clone()
            .or_else(|| {
                std::env::var("MEDTWIN_ALERT_SECRET")
                    .ok()
                    .filter(|t| !t.is_empty())
            })
            .unwrap_or_else(|| token.clone());
        Start {
            secret,
            run_id,
            target_run,
            wall,
            epoch,
            // Whole milliseconds, so timestamps and their round trips are exact.
            sim_start: s.start.unwrap_or_else(|| truncate_to_ms(epoch)),
            clock: Arc::new(SimClock::new(s.clock, wall + EPOCH_LEAD)),
            token,
            token_source,
        }
    }
}

/// Where a started run listens and sends, for the people pointing their
/// backend at it.
#[derive(Clone, Debug)]
pub struct Started {
    /// The webhook URL the target must post alerts to (empty when the
    /// scenario opens no webhook).
    pub webhook_url: String,
    /// Every open intake: its name and where the target sends to it.
    pub intakes: Vec<(&'static str, String)>,
    /// The transport's name.
    pub transport: &'static str,
    /// Where the webhook's token came from (never the token itself).
    pub token_source: &'static str,
    /// How the webhook authenticates its sender, in words (never the
    /// token or secret itself).
    pub webhook_auth: String,
    /// Where telemetry goes.
    pub target_url: String,
    /// The intakes' TLS, described (with the certificate's fingerprint).
    pub intake_tls: Option<String>,
}

/// How a run is controlled from outside: its stop switch and how it shows
/// progress.
#[derive(Clone, Debug)]
pub struct Controls {
    /// Thrown by a signal (the caller's) or the run's deadline (armed by
    /// the run from [`crate::scenario::limits::default_max_wall`]).
    pub stop: Stop,
    /// Live progress.
    pub progress: progress::Progress,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            stop: Stop::new(),
            progress: progress::Progress::Off,
        }
    }
}

/// Runs a validated scenario and returns its report.
pub async fn execute(s: &Scenario) -> anyhow::Result<Report> {
    execute_with(s, &Controls::default(), |_| {}).await
}

/// Runs a validated scenario, telling `started` where it listens and sends
/// as soon as it knows, and returns its report (marked interrupted when
/// `controls.stop` was thrown, or the deadline passed).
pub async fn execute_with(
    s: &Scenario,
    controls: &Controls,
    started: impl FnOnce(&Started),
) -> anyhow::Result<Report> {
    let estimate = crate::scenario::limits::Estimate::of(s);
    estimate
        .check(s.max_memory)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = controls.stop.clone();
    let start = Start::now(s);
    let deadline = {
        let (stop, max_wall) = (stop.clone(), crate::scenario::limits::default_max_wall(s));
        tokio::spawn(async move {
            tokio::time::sleep(max_wall).await;
            stop.trigger(StopReason::Deadline);
        })
    };
    let inbox = Inbox::new(start.clock.clone());
    let mqtt_broker = target::mqtt_broker(s).await?;
    let server_tls = match &s.alerts.tls {
        Some(options) => Some(Arc::new(
            medtwin_tls::ServerTls::new(options)
                .map_err(|e| anyhow::anyhow!("[alerts.tls]: {e}"))?,
        )),
        None => None,
    };
    let ctx = IntakeContext {
        inbox: inbox.clone(),
        parser: Arc::new(AlertParser::new(s.alerts.intake.mapping.as_ref())),
        token: start.token.clone(),
        secret: Some(start.secret.clone()),
        mqtt_broker: mqtt_broker.address(),
        server_tls: server_tls.clone(),
        tls: s.transport.tls.clone(),
    };
    let mut intakes = crate::intake::open_all(&s.alerts.intake, s.alerts.listen, &ctx).await?;
    let addresses: Vec<(IntakeKind, String)> =
        intakes.iter().map(|i| (i.kind(), i.address())).collect();
    let listening = target::Listening {
        intakes: &addresses,
        secret: &start.secret,
        mqtt_broker: mqtt_broker.address(),
        tls_fingerprint: server_tls.as_ref().map(|t| t.fingerprint().to_owned()),
    };
    let target = target::start(s, &listening, &start, &start.target_run).await?;
    for intake in &mut intakes {
        let kind = intake.kind();
        intake
            .attach(&target.info)
            .await
            .with_context(|| format!("the {} intake cannot reach the target", kind.name()))?;
    }
    let webhook_url = addresses
        .iter()
        .find(|(k, _)| *k == IntakeKind::Webhook)
        .map(|(_, a)| a.clone())
        .unwrap_or_default();
    let intake_list: Vec<(&'static str, String)> = addresses
        .iter()
        .map(|(k, a)| (k.name(), a.clone()))
        .collect();
    started(&Started {
        webhook_url: webhook_url.clone(),
        intakes: intake_list.clone(),
        transport: s.transport.protocol.name(),
        token_source: start.token_source,
        webhook_auth: match s.alerts.intake.webhook.signature.unwrap_or_default() {
            crate::scenario::interop::Signature::Bearer => {
                format!("bearer token from {}", start.token_source)
            }
            crate::scenario::interop::Signature::Github => {
                "GitHub-style HMAC-SHA256 signature".to_owned()
            }
            crate::scenario::interop::Signature::Stripe => {
                "Stripe-style HMAC-SHA256 signature".to_owned()
            }
        },
        target_url: target.config.url.clone(),
        intake_tls: server_tls
            .as_ref()
            .map(|t| format!("alerts intakes: {}", t.describe())),
    });
    let twin = Twin::new(&s.sim).context("the twin refused its configuration")?;
    let patients = twin.patient_names().to_vec();
    let encode_ctx = EncodeContext {
        names: Names::of(&twin),
        start: start.sim_start,
    };
    let wired = select::connect(&target.config, &encode_ctx)
        .await
        .with_context(|| {
            format!(
                "cannot set up the {} transport to {}",
                s.transport.protocol.name(),
                target.config.url
            )
        })?;
    let carrier = Arc::new(wired.carrier);
    let encoder = wired.encoder;
    // Waveform chunks go over HTTP JSON only (scenario validation refuses
    // waveform devices on the other transports).
    let waves = (target.config.protocol == crate::scenario::interop::Protocol::HttpJson)
        .then(|| WaveEncoder::of(&twin, encode_ctx.names.clone(), encode_ctx.start))
        .flatten();
    let (ack_tx, ack_rx) = mpsc::channel(observe::ACKS_PENDING);
    let transport = Transport::start(
        carrier.clone(),
        target.config.lanes,
        start.clock.clone(),
        Some(ack_tx),
        stop.clone(),
    );
    let phase = Arc::new(AtomicU8::new(progress::Phase::Sending as u8));
    let shown = progress::start(
        controls.progress.clone(),
        progress::Sources {
            clock: start.clock.clone(),
            duration_ms: s.sim.duration_ms,
            transport: transport.watcher(),
            inbox: inbox.clone(),
            phase: phase.clone(),
        },
    );
    let (step_tx, step_rx) = mpsc::channel(observe::STEPS_PENDING);
    let observer = {
        let (expectations, patients) = (s.expectations.clone(), patients.clone());
        let (duration_ms, step_ms, clock) = (s.sim.duration_ms, s.sim.step_ms, start.clock.clone());
        spawn("medtwin-observer", move || {
            observe::run(
                &expectations,
                &patients,
                duration_ms,
                step_ms,
                clock,
                step_rx,
                ack_rx,
            )
        })?
    };
    let (tx, rx) = mpsc::channel::<Batch>(STEPS_AHEAD);
    let twin_thread = {
        let (stop, credit) = (stop.clone(), twin::Credit::on_this_runtime());
        spawn("medtwin-twin", move || {
            twin::run(twin, &encoder, waves.as_ref(), tx, &stop, &credit)
        })?
    };
    drive(rx, &transport, step_tx, s.clock, &stop, &intakes).await;
    let twin: TwinSummary = join(twin_thread, "twin")?;
    let (mut transport_stats, lag) = transport.finish().await;
    carrier.close().await;
    transport_stats.carrier = carrier.counters();
    let observed = join(observer, "observer")?;
    let backend = if stop.is_stopped() {
        progress::set_phase(&phase, progress::Phase::Stopping);
        match target.backend {
            Some(handle) => Some(handle.shutdown(STOP_GRACE).await),
            None => None,
        }
    } else {
        progress::set_phase(&phase, progress::Phase::Grace);
        tokio::select! {
            b = target::wind_down(s, &start.clock, target.backend) => b,
            // Stopped while waiting: the backend (if any) is dropped,
            // which stops it at once; its counters are lost.
            _ = stop.stopped() => None,
        }
    };
    deadline.abort();
    let interrupted = stop.reason();
    let end_ms = observed_until(s, &start.clock, interrupted.is_some());
    for intake in intakes {
        intake.stop().await;
    }
    if let Some(task) = shown {
        task.abort();
        let _ = task.await;
    }
    let (received, refused, heard) = inbox.take_all();
    let mut judged = judge::judge(
        s,
        &twin,
        &observed.truth,
        &received,
        start.sim_start,
        end_ms,
    );
    let trust = trust::assess(s, &lag, &transport_stats, &observed, start.wall.elapsed());
    let verdict = match interrupted {
        Some(reason) => trust::RunVerdict::Interrupted(reason),
        None => trust::verdict(&trust, &transport_stats, &mut judged),
    };
    Ok(report::build(report::Parts {
        scenario: s,
        start: &start,
        target_url: &target.config.url,
        webhook_url: &webhook_url,
        twin,
        truth: observed.truth,
        trust,
        verdict,
        interrupted: interrupted.map(|reason| (reason, end_ms)),
        estimate,
        transport: (transport_stats, lag),
        received: &received,
        refused,
        heard,
        intakes: intake_list,
        judged,
        backend,
    }))
}

/// Starts a named thread.
fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .with_context(|| format!("cannot start the {name} thread"))
}

/// Waits for a thread; its panic is the harness's failure.
fn join<T>(handle: std::thread::JoinHandle<T>, what: &str) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the {what} thread panicked"))
}

/// Hands every delivery to the transport as the twin produces them, each
/// step's records to the observer first. Virtual time has no wall clock to
/// pace the lanes, so it moves in lockstep windows: nothing from the next
/// window is sent until the target has answered everything before it. An
/// alert is then placed within about a window of the data that caused it,
/// whatever the lanes' relative speeds. Once `stop` is thrown, deliveries
/// still coming from the twin are counted as not sent.
async fn drive(
    mut rx: mpsc::Receiver<Batch>,
    transport: &Transport,
    observer: mpsc::Sender<observe::Step>,
    clock: Clock,
    stop: &Stop,
    intakes: &[crate::intake::AnyIntake],
) {
    let lockstep = clock.speed().is_none();
    let mut next_barrier_ms = VIRTUAL_WINDOW_MS;
    let mut next_id = 0;
    'batches: while let Some(batch) = rx.recv().await {
        if stop.is_stopped() {
            transport.abandon(batch.deliveries.len() as u64);
            transport.abandon_waveforms(batch.waves.len() as u64);
            continue;
        }
        let first_id = next_id;
        next_id += batch.deliveries.len() as u64;
        let step = observe::Step {
            out: batch.out,
            first_id,
            credit: batch.credit,
        };
        if observer.send(step).await.is_err() {
            return; // the observer thread panicked; joining it says so
        }
        let n = batch.deliveries.len();
        let n_waves = batch.waves.len();
        // The step's waveform chunks go after its deliveries (they end at
        // the step's end); only deliveries are numbered for the observer.
        let messages = batch.deliveries.into_iter().chain(batch.waves);
        for (k, mut message) in messages.enumerate() {
            if k < n {
                message.id = first_id + k as u64;
            }
            if lockstep && message.delivered_ms >= next_barrier_ms {
                tokio::select! {
                    () = transport.flush() => {}
                    _ = stop.stopped() => {}
                }
                for intake in intakes {
                    intake.settle().await;
                }
                if message.delivered_ms >= next_barrier_ms + VIRTUAL_SETTLE_GAP_MS {
                    tokio::time::sleep(VIRTUAL_SETTLE).await;
                }
                next_barrier_ms =
                    (message.delivered_ms / VIRTUAL_WINDOW_MS + 1) * VIRTUAL_WINDOW_MS;
            }
            if stop.is_stopped() {
                // This message and the rest of the step were never handed
                // over; later steps are counted as they arrive.
                transport.abandon(n.saturating_sub(k) as u64);
                transport.abandon_waveforms((n + n_waves - k.max(n)) as u64);
                continue 'batches;
            }
            transport.send(message).await;
        }
    }
}

/// The last simulated time at which an alert could have been seen: the
/// end (or later, in the grace period), or where the run stopped.
fn observed_until(s: &Scenario, clock: &SimClock, stopped: bool) -> u64 {
    let now = clock.sim_at(Instant::now());
    match (s.clock, stopped) {
        (_, true) => now.min(s.sim.duration_ms),
        (Clock::Virtual, false) => s.sim.duration_ms,
        (_, false) => now.max(s.sim.duration_ms),
    }
}

fn truncate_to_ms(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// A 128-bit token from the OS's randomness (via the std hasher's keys)
/// mixed with the time: the webhook token, never used by the twin.
pub fn random_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let a = RandomState::new().hash_one(nanos);
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:016x}")
}
