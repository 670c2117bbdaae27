//! The alert webhook: where the target posts its alerts.
//!
//! It requires a bearer token, bounds what it accepts (body size, number of
//! alerts kept), and counts everything it refuses by reason; nothing is
//! dropped silently.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::SimClock;
use crate::wire::{AlertMessage, MAX_BODY_BYTES};

/// Path the webhook listens on.
pub const ALERTS_PATH: &str = "/alerts";
/// Most alerts one run keeps; further ones are counted, not stored.
pub const MAX_ALERTS: usize = 1_000_000;
/// How many refused payloads are kept as examples for the report.
const MAX_SAMPLES: usize = 5;

/// An alert as received.
#[derive(Clone, Debug)]
pub struct ReceivedAlert {
    /// What the target sent.
    pub message: AlertMessage,
    /// Simulated time it arrived (see [`SimClock::sim_at`]).
    pub received_sim_ms: u64,
    /// Wall instant it arrived.
    pub received_at: Instant,
}

/// What the webhook refused, by reason, with a few examples.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Refused {
    /// Missing or wrong bearer token.
    pub unauthorized: u64,
    /// Body that is not a valid alert.
    pub malformed: u64,
    /// Alerts beyond [`MAX_ALERTS`].
    pub overflow: u64,
    /// Up to five examples: reason and the first bytes of the body.
    pub samples: Vec<String>,
}

impl Refused {
    /// Total refused.
    pub fn total(&self) -> u64 {
        self.unauthorized + self.malformed + self.overflow
    }
}

#[derive(Default)]
struct Inbox {
    alerts: Vec<ReceivedAlert>,
    refused: Refused,
}

struct Shared {
    token: String,
    clock: Arc<SimClock>,
    inbox: Mutex<Inbox>,
}

/// A running webhook.
pub struct Intake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Intake {
    /// Starts listening on `listen`; alerts must carry `Authorization: Bearer <token>`.
    pub async fn start(
        listen: SocketAddr,
        token: String,
        clock: Arc<SimClock>,
    ) -> std::io::Result<Intake> {
        let shared = Arc::new(Shared {
            token,
            clock,
            inbox: Mutex::new(Inbox::default()),
        });
        let app = Router::new()
            .route(ALERTS_PATH, post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Intake {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The URL a target should post alerts to.
    pub fn url(&self) -> String {
        format!("http://{}{ALERTS_PATH}", self.addr)
    }

    /// Alerts received so far.
    pub fn alert_count(&self) -> usize {
        self.shared
            .inbox
            .lock()
            .map_or(0, |inbox| inbox.alerts.len())
    }

    /// Stops listening and returns what arrived.
    pub async fn stop(mut self) -> (Vec<ReceivedAlert>, Refused) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        let mut inbox = match self.shared.inbox.lock() {
            Ok(inbox) => inbox,
            Err(poisoned) => poisoned.into_inner(),
        };
        let inbox = std::mem::take(&mut *inbox);
        (inbox.alerts, inbox.refused)
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    // Compare without an early exit, so timing does not leak the token.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let received_at = Instant::now();
    let received_sim_ms = shared.clock.sim_at(received_at);
    let parsed = serde_json::from_slice::<AlertMessage>(&body);
    let Ok(mut inbox) = shared.inbox.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let sample = |reason: &str| {
        let head: String = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        format!("{reason}: {head}")
    };
    if !authorized(&headers, &shared.token) {
        inbox.refused.unauthorized += 1;
        if inbox.refused.samples.len() < MAX_SAMPLES {
            let s = sample("unauthorized");
            inbox.refused.samples.push(s);
        }
        return StatusCode::UNAUTHORIZED;
    }
    match parsed {
        Err(error) => {
            inbox.refused.malformed += 1;
            if inbox.refused.samples.len() < MAX_SAMPLES {
                let s = sample(&format!("malformed ({error})"));
                inbox.refused.samples.push(s);
            }
            StatusCode::BAD_REQUEST
        }
        Ok(_) if inbox.alerts.len() >= MAX_ALERTS => {
            inbox.refused.overflow += 1;
            StatusCode::SERVICE_UNAVAILABLE
        }
        Ok(message) => {
            inbox.alerts.push(ReceivedAlert {
                message,
                received_sim_ms,
                received_at,
            });
            StatusCode::ACCEPTED
        }
    }
}

/// Alerts received, by kind (for summaries).
pub fn count_by_kind(alerts: &[ReceivedAlert]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for alert in alerts {
        *out.entry(alert.message.kind.clone()).or_insert(0) += 1;
    }
    out
}
