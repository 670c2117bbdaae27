//! `medtwin serve`: a live ward in the browser for training. The scenario
//! runs on a session clock the instructor controls (real time by default;
//! pause, resume, speed); its telemetry goes to the embedded reference
//! backend (or the backend under test) over the scenario's transport, and
//! the backend's alarms come back through the run's intakes, as in `run`.
//!
//! Codemap: [`pace`] (the session's clock), [`session`] (the twin thread:
//! commands into the twin's bounded queue, steps, feeds, deliveries),
//! [`ward`] (what the pages show: numerics, NEWS2, trends, technical
//! alarms, the backend's alarms and their acknowledgements, the log),
//! [`bus`] (numbered live feeds with a bounded replay buffer), [`api`]
//! (axum routes, SSE, the instructor's token), [`action`] (actions and the
//! cue file format), [`aar`] (the after-action report). Pages are in
//! `assets/`, compiled into the binary.

pub mod aar;
pub mod action;
pub mod api;
pub mod bus;
pub mod pace;
pub mod session;
pub mod ward;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::clock::SimClock;
use crate::intake::mapping::AlertParser;
use crate::intake::{Inbox, IntakeContext};
use crate::run::{Start, target};
use crate::scenario::Scenario;
use crate::scenario::interop::IntakeKind;
use crate::stop::Stop;
use crate::transport::json::Names;
use crate::transport::select::{self, EncodeContext};
use crate::transport::{Carrier as _, Transport};
use medtwin_sim::Twin;

/// Events the ward feed replays to a reconnecting browser at most.
pub const EVENT_REPLAY: usize = 4_096;
/// Events a browser may fall behind on the ward feed before it is dropped
/// (and resumes from the replay buffer).
pub const EVENT_RING: usize = 1_024;
/// Waveform blocks a browser may fall behind before it is dropped.
pub const WAVE_RING: usize = 256;
/// How often the intakes' inbox is read for new alarms.
const INBOX_EVERY: Duration = Duration::from_millis(100);

/// How to serve a session.
pub struct ServeOptions {
    /// Where the pages are served.
    pub listen: SocketAddr,
    /// Simulated seconds per wall second at the start.
    pub speed: f64,
    /// Simulated delay between an alert's arrival and its alarm on screen.
    pub alarm_delay_ms: u64,
    /// The instructor's token.
    pub token: String,
    /// Cues armed at the start: (simulated ms, cue).
    pub cues: Vec<(u64, action::Cue)>,
    /// Where the after-action report goes (default `reports/<run-id>/`).
    pub out: Option<PathBuf>,
    /// End the session after this much wall time.
    pub max_wall: Option<Duration>,
    /// End the session when the scenario's time runs out.
    pub exit_at_end: bool,
}

/// Where a session listens, for the people using it.
pub struct Serving {
    /// The central station's URL.
    pub url: String,
    /// The run id.
    pub run_id: String,
    /// Where the backend's alarms come in (intake, address).
    pub intakes: Vec<(&'static str, String)>,
    /// Where telemetry goes.
    pub target_url: String,
    /// Patients on the ward.
    pub patients: usize,
}

/// What a session left behind.
pub struct Ended {
    /// The report folder.
    pub dir: PathBuf,
    /// Alarms raised, acknowledged.
    pub alarms: (usize, usize),
    /// Simulated time run, ms.
    pub simulated_ms: u64,
}

/// Serves a session until `stop` (a signal, the instructor's "end", the
/// wall-time limit or, with `exit_at_end`, the scenario's end), then
/// writes the after-action report.
pub async fn serve(
    s: &Scenario,
    options: ServeOptions,
    stop: Stop,
    started: impl FnOnce(&Serving),
) -> anyhow::Result<Ended> {
    crate::scenario::limits::Estimate::of(s)
        .check(s.max_memory)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut start = Start::now(s);
    // The session paces the twin itself: the transport sends what it is
    // handed at once, and an alarm is placed at the newest data sent.
    start.clock = Arc::new(SimClock::new(
        crate::scenario::Clock::Virtual,
        Instant::now(),
    ));
    let inbox = Inbox::new(start.clock.clone());
    let mqtt_broker = target::mqtt_broker(s).await?;
    let server_tls = match &s.alerts.tls {
        Some(o) => Some(Arc::new(
            medtwin_tls::ServerTls::new(o).map_err(|e| anyhow::anyhow!("[alerts.tls]: {e}"))?,
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
    let twin = Twin::new(&s.sim).context("the twin refused its configuration")?;
    let patients = twin.patient_names().to_vec();
    let device_waves = (0..twin.device_names().len() as u32)
        .map(|d| {
            twin.waveform(d)
                .map(|w| (w.rate_hz, w.channels.iter().map(|c| c.name()).collect()))
        })
        .collect();
    let encode_ctx = EncodeContext {
        names: Names::of(&twin),
        start: start.sim_start,
    };
    let wired = select::connect(&target.config, &encode_ctx)
        .await
        .with_context(|| format!("cannot set up the transport to {}", target.config.url))?;
    let carrier = Arc::new(wired.carrier);
    let encoder = wired.encoder;
    let transport = Transport::start(
        carrier.clone(),
        target.config.lanes,
        start.clock.clone(),
        None,
        stop.clone(),
    );
    let shared = Arc::new(session::Shared {
        ward: Mutex::new(ward::Ward::new(
            &patients,
            device_waves,
            options.alarm_delay_ms,
        )),
        events: bus::Bus::new(EVENT_REPLAY, EVENT_RING),
        waves: bus::Bus::new(0, WAVE_RING),
        pace: pace::Pace::new(options.speed),
        step_ms: s.sim.step_ms,
        duration_ms: s.sim.duration_ms,
        scenario: s.name.clone(),
        run_id: start.run_id.clone(),
        finished: AtomicBool::new(false),
        steps: AtomicU64::new(0),
        busy: AtomicU64::new(0),
        watching: (0..patients.len()).map(|_| AtomicU32::new(0)).collect(),
        watching_all: AtomicU32::new(0),
    });
    let (request_tx, request_rx) = mpsc::channel(session::REQUESTS_PENDING);
    let (out_tx, mut out_rx) =
        mpsc::channel::<Vec<crate::transport::Outgoing>>(session::STEPS_PENDING);
    let twin_thread = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("medtwin-serve-twin".into())
            .spawn(move || session::run(twin, &encoder, &shared, request_rx, out_tx, &stop))
            .context("cannot start the twin thread")?
    };
    let driver = tokio::spawn(async move {
        let mut next_id = 0;
        while let Some(batch) = out_rx.recv().await {
            for mut m in batch {
                m.id = next_id;
                next_id += 1;
                transport.send(m).await;
            }
        }
        transport
    });
    let alarms_task = {
        let (shared, inbox, stop) = (shared.clone(), inbox.clone(), stop.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(INBOX_EVERY);
            while !stop.is_stopped() {
                every.tick().await;
                let (received, _) = inbox.take();
                let mut changes = ward::Changes::default();
                let alerts = received
                    .into_iter()
                    .map(|r| (r.message, r.received_sim_ms))
                    .collect();
                shared.ward().receive(alerts, &mut changes);
                let raised = !changes.alarms.is_empty();
                shared.publish(changes);
                if raised {
                    shared.publish_tick();
                }
            }
        })
    };
    let app = Arc::new(api::App {
        shared: shared.clone(),
        token: options.token.clone(),
        requests: request_tx,
        stop: stop.clone(),
        issued: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let server = {
        let (router, stop) = (api::router(app.clone()), stop.clone());
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    stop.stopped().await;
                })
                .await
        })
    };
    started(&Serving {
        url: format!("http://{addr}/"),
        run_id: start.run_id.clone(),
        intakes: addresses
            .iter()
            .map(|(k, a)| (k.name(), a.clone()))
            .collect(),
        target_url: target.config.url.clone(),
        patients: patients.len(),
    });
    if !options.cues.is_empty() {
        let armed = api::arm(&app, options.cues, 0).await;
        eprintln!("cues armed: {armed}");
    }
    let deadline = options.max_wall.map(|d| {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.trigger(crate::stop::StopReason::Deadline);
        })
    });
    if options.exit_at_end {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            while !shared.finished.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Late alarms get a moment to arrive.
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.trigger(crate::stop::StopReason::Deadline);
        });
    }
    stop.stopped().await;
    if let Some(d) = deadline {
        d.abort();
    }
    // Drain: the twin thread sees the stop within a nap; the server's
    // connections (live feeds) are cut after a short grace.
    let _ = tokio::task::spawn_blocking(move || twin_thread.join()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    alarms_task.abort();
    if let Ok(Ok(transport)) = tokio::time::timeout(Duration::from_secs(3), driver).await {
        let _ = tokio::time::timeout(Duration::from_secs(3), transport.finish()).await;
    }
    carrier.close().await;
    for intake in intakes {
        intake.stop().await;
    }
    if let Some(handle) = target.backend {
        handle.shutdown(Duration::from_millis(500)).await;
    }
    let dir = options
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(&start.run_id));
    write_report(&shared, &dir)?;
    let ward = shared.ward();
    Ok(Ended {
        dir,
        alarms: (
            ward.alarms.len(),
            ward.alarms.iter().filter(|a| a.acked_ms.is_some()).count(),
        ),
        simulated_ms: ward.now_ms,
    })
}

/// Writes `after-action.html` and `training.json` (each to a temporary
/// file, then renamed).
fn write_report(shared: &session::Shared, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(&aar::json(shared))?;
    let html = aar::render(shared);
    for (name, body) in [("training.json", json), ("after-action.html", html)] {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
