//! The embedded reference backend: a small, honest NEWS2 alerting service.
//!
//! medtwin ships it so a new user sees a full run without owning a backend:
//! `medtwin run` starts it in-process when a scenario names no target, and
//! `medtwin reference-backend` runs it standalone. It takes telemetry on
//! `POST /v1/measurements`, smooths each parameter over a short window,
//! scores NEWS2 (the chart in `medtwin_sim::news2`) and posts `news2-medium` / `news2-high` alerts to
//! the harness's webhook once per escalation.
//!
//! Codemap:
//! - `window`: a bounded window of samples and its median.
//! - `escalation`: when to page and when to re-arm (hysteresis in
//!   measurement time).
//! - `patient`: one patient's windows, score and escalation.
//! - `server`: routes, validation, ingestion.
//! - `alerts`: fault injection and bounded, ordered delivery.
//! - `stats`: counters.
//! - `fhir`: FHIR R4 under `/fhir` (Observations in, alerts as
//!   resources and Backport subscriptions out).
//!
//! Everything is bounded: request bodies ([`medtwin_wire::MAX_BODY_BYTES`]),
//! samples per window ([`MAX_WINDOW_SAMPLES`]), patients
//! ([`BackendConfig::max_patients`]), queued alerts
//! ([`BackendConfig::alert_queue_capacity`]), and every delivery has a
//! timeout.

mod alerts;
mod escalation;
mod fhir;
mod mllp;
mod mqtt;
mod patient;
mod server;
pub mod sink;
mod stats;
mod window;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use alerts::{Faults, PctKnob};
pub use escalation::{HIGH_TOTAL, Level, MEDIUM_TOTAL};
pub use mqtt::MqttIngest;
pub use patient::{ParameterView, PatientView};
pub use server::{MAX_RUNS, RUN_HEADER};
pub use sink::{Signing, Sink};
pub use stats::{Rejected, Stats};
pub use window::MAX_WINDOW_SAMPLES;

/// Default smoothing window: a minute of 1 Hz oximetry outvotes a motion
/// artefact, and is short next to how fast NEWS2 parameters deteriorate
/// (hours in sepsis, docs/references.md). *Design choice.*
pub const DEFAULT_SMOOTHING: Duration = Duration::from_secs(60);
/// Default time below a level's threshold before its alert re-arms.
/// *Design choice*: long enough that a score hovering at a threshold does
/// not page every few minutes.
pub const DEFAULT_RESET_AFTER: Duration = Duration::from_secs(10 * 60);
/// Default cap on patients.
pub const DEFAULT_MAX_PATIENTS: usize = 1_000_000;
/// Default cap on alerts queued for delivery.
pub const DEFAULT_ALERT_QUEUE_CAPACITY: usize = 4096;

/// How to run the reference backend.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendConfig {
    /// Address to listen on. Only this is bound; the default is
    /// `127.0.0.1:0` (loopback, any free port: see [`BackendHandle::addr`]).
    pub listen: SocketAddr,
    /// Webhook that receives alerts, e.g. `http://127.0.0.1:7000/alerts`;
    /// empty: no webhook (alerts go to `sinks` only).
    pub alerts_url: String,
    /// Sent as `Authorization: Bearer <token>` with every alert, if set.
    pub alerts_token: Option<String>,
    /// Signs every webhook request with an HMAC, if set.
    pub alerts_signing: Option<Signing>,
    /// Further destinations for alerts (ACM, MQTT, ...): each gets every
    /// alert.
    pub sinks: Vec<Sink>,
    /// Telemetry taken besides HTTP (JSON and FHIR are always served on
    /// the HTTP port).
    pub ingest: Ingest,
    /// Required as `Authorization: Bearer <token>` on every route but
    /// `/healthz`, when set (401 otherwise, counted as `unauthorized`).
    pub token: Option<String>,
    /// Faults to inject into alerting.
    pub faults: Faults,
    /// Each parameter is scored on the median of its samples measured within
    /// this span before its newest sample.
    pub smoothing: Duration,
    /// Measurement time a score must stay below a level's threshold before
    /// that level re-arms.
    pub reset_after: Duration,
    /// Seed of the fault injector's random streams.
    pub seed: u64,
    /// Most patients tracked; messages for more get HTTP 503.
    pub max_patients: usize,
    /// Most alerts waiting for delivery; more are counted as overflow.
    pub alert_queue_capacity: usize,
    /// TLS on the listeners (HTTP and MLLP), when set: a certificate from
    /// files or a generated self-signed one ([`BackendHandle::tls`]).
    pub tls: Option<medtwin_tls::ServerOptions>,
    /// Whom alert deliveries over TLS trust (an `https://` webhook, an
    /// `mllps://` ACM intake, an `https://` FHIR rest-hook).
    pub alerts_tls: medtwin_tls::ClientOptions,
}

impl BackendConfig {
    /// A configuration posting alerts to `alerts_url`, with every other
    /// field at its default.
    pub fn new(alerts_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            alerts_url: alerts_url.into(),
            alerts_token: None,
            alerts_signing: None,
            sinks: Vec::new(),
            ingest: Ingest::default(),
            token: None,
            faults: Faults::default(),
            smoothing: DEFAULT_SMOOTHING,
            reset_after: DEFAULT_RESET_AFTER,
            seed: 0,
            max_patients: DEFAULT_MAX_PATIENTS,
            alert_queue_capacity: DEFAULT_ALERT_QUEUE_CAPACITY,
            tls: None,
            alerts_tls: medtwin_tls::ClientOptions::default(),
        }
    }
}

/// Telemetry the backend takes besides HTTP.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingest {
    /// Listen for HL7 v2 ORU^R01 (IHE PCD-01) over MLLP here.
    pub mllp: Option<SocketAddr>,
    /// Subscribe to medtwin JSON telemetry on an MQTT broker.
    pub mqtt: Option<MqttIngest>,
}

/// A running reference backend. Dropping it stops everything at once;
/// [`BackendHandle::shutdown`] stops gracefully.
#[derive(Debug)]
pub struct BackendHandle {
    addr: SocketAddr,
    tls: Option<medtwin_tls::ServerTls>,
    shared: Arc<server::Shared>,
    server: Option<medtwin_listen::Server>,
    /// The MLLP listener (`ingest.mllp`) and its address.
    mllp: Option<(SocketAddr, medtwin_hl7::mllp::Server)>,
    lanes: Option<alerts::Lanes>,
    mqtt: Option<mqtt::Ingestor>,
}

/// Starts the backend on the current tokio runtime and returns once it is
/// listening.
pub async fn start(config: BackendConfig) -> Result<BackendHandle, BackendError> {
    config.faults.validate()?;
    let tls_error = |e: medtwin_tls::TlsError| BackendError::Tls(e.to_string());
    // Alert deliveries over TLS (https webhook, mllps ACM) trust what
    // `alerts_tls` says; plain deliveries need no TLS configuration.
    let secure_alerts = config.alerts_url.starts_with("https://")
        || config
            .sinks
            .iter()
            .any(|s| matches!(s, Sink::Acm { addr } if addr.starts_with("mllps://")))
        || !config.alerts_tls.is_default();
    let alerts_tls = if secure_alerts {
        Some(medtwin_tls::ClientTls::new(&config.alerts_tls).map_err(tls_error)?)
    } else {
        None
    };
    let webhook = if config.alerts_url.is_empty() {
        None
    } else {
        Some(sink::WebhookSink::new(
            &config.alerts_url,
            config.alerts_token.clone(),
            config.alerts_signing.clone(),
            alerts_tls.as_ref(),
        )?)
    };
    let fhir = fhir::FhirStore::new(config.token.clone(), alerts_tls.as_ref())
        .map_err(BackendError::Client)?;
    let sinks = sink::Sinks::start(webhook, &config.sinks, alerts_tls.as_ref())?
        .with_fhir(Arc::clone(&fhir));
    let server_tls = match &config.tls {
        Some(options) => Some(medtwin_tls::ServerTls::new(options).map_err(tls_error)?),
        None => None,
    };
    let counters = Arc::new(stats::Counters::default());
    let (dispatcher, lanes) = alerts::start(
        sinks,
        config.faults,
        config.seed,
        config.alert_queue_capacity,
        Arc::clone(&counters),
    )?;
    let limits = server::Limits {
        token: config.token.clone(),
        smoothing_ms: millis(config.smoothing),
        reset_after_ms: millis(config.reset_after),
        max_patients: config.max_patients as u64,
    };
    let shared = Arc::new(server::Shared::new(limits, counters, dispatcher));
    let bind = |source| BackendError::Bind {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let app =
        server::router(Arc::clone(&shared)).nest("/fhir", fhir::router(Arc::clone(&shared), fhir));
    let server = medtwin_listen::serve_tls(
        listener,
        app,
        medtwin_listen::Limits::default(),
        server_tls.as_ref().map(|t| t.config()),
    )
    .map_err(bind)?;
    let mqtt = match &config.ingest.mqtt {
        Some(ingest) => Some(mqtt::start(ingest, Arc::clone(&shared)).await?),
        None => None,
    };
    let mllp = match config.ingest.mllp {
        Some(at) => {
            let bind = |source| BackendError::Bind { addr: at, source };
            let listener = tokio::net::TcpListener::bind(at).await.map_err(bind)?;
            let bound = listener.local_addr().map_err(bind)?;
            Some((
                bound,
                mllp::start(
                    listener,
                    Arc::clone(&shared),
                    server_tls.as_ref().map(|t| t.config()),
                ),
            ))
        }
        None => None,
    };
    Ok(BackendHandle {
        addr,
        tls: server_tls,
        shared,
        server: Some(server),
        mllp,
        lanes: Some(lanes),
        mqtt,
    })
}

/// Why the reference backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A fault knob outside 0–100 %.
    #[error("{knob} must be within 0–100, not {value}")]
    KnobOutOfRange {
        /// The knob's name.
        knob: &'static str,
        /// What it was set to.
        value: f64,
    },
    /// The webhook URL cannot be used.
    #[error("alerts_url {url:?}: {why}")]
    AlertsUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The HTTP client for alert delivery could not be built.
    #[error("cannot build the alert delivery client")]
    Client(#[source] reqwest::Error),
    /// The MQTT ingest or sink could not be set up.
    #[error("mqtt broker {broker}: {detail}")]
    Mqtt {
        /// The broker.
        broker: String,
        /// What went wrong.
        detail: String,
    },
    /// A TLS certificate, key or CA could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl BackendHandle {
    /// The address actually bound (with the real port when asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listeners' TLS (its certificate's fingerprint), when
    /// [`BackendConfig::tls`] asked for it.
    pub fn tls(&self) -> Option<&medtwin_tls::ServerTls> {
        self.tls.as_ref()
    }

    /// `https` or `http`: the scheme of [`BackendHandle::addr`].
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The MLLP listener's address, when `ingest.mllp` asked for one.
    pub fn mllp_addr(&self) -> Option<SocketAddr> {
        self.mllp.as_ref().map(|(addr, _)| *addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// What the backend knows about one patient (in the most recent run
    /// that knows it), as `GET /v1/patients/{id}`.
    pub fn patient(&self, patient_id: &str) -> Option<PatientView> {
        self.shared.patient(None, patient_id)
    }

    /// Stops accepting requests, lets requests in flight finish, sends the
    /// alerts still queued or delayed, and stops; gives up on whatever is
    /// left after `grace` (counted in [`Stats::alerts_pending`]). Returns
    /// the final counters.
    pub async fn shutdown(mut self, grace: Duration) -> Stats {
        let deadline = Instant::now() + grace;
        // Connections get the listener's own shutdown deadline (2 s), or
        // less when the grace is shorter; then they are dropped.
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout_at(deadline, server.shutdown()).await;
        }
        if let Some(ingest) = self.mqtt.take() {
            let left = deadline.saturating_duration_since(Instant::now());
            ingest.stop(left).await;
        }
        if let Some((_, server)) = self.mllp.take() {
            let _ = tokio::time::timeout_at(deadline, server.shutdown()).await;
        }
        // No request can raise an alert any more: drain the lanes.
        if let Some(lanes) = self.lanes.take() {
            let _ = lanes.drain.send(true);
            for mut task in lanes.tasks {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                }
            }
        }
        self.stats()
    }
}

impl Drop for BackendHandle {
    fn drop(&mut self) {
        // Dropping the servers aborts them.
        self.server.take();
        if let Some(ingest) = self.mqtt.take() {
            ingest.abort();
        }
        self.mllp.take();
        if let Some(lanes) = self.lanes.take() {
            for task in lanes.tasks {
                task.abort();
            }
        }
    }
}
