//! Telemetry in over MQTT: one connection subscribes to a topic filter
//! (medtwin's default template's, `medtwin/+/+/+`) on a broker, reads each
//! payload as medtwin's telemetry JSON (one message or an array, as
//! `POST /v1/measurements` takes) and ingests it exactly as the HTTP route
//! does, counted the same way (`bad_json` for what it cannot read).
//! Retained messages delivered on subscribing predate this backend's run
//! and are skipped, as are topics of the senders' status (`ignore`). The queue between the connection and the ingest is
//! bounded; the connection reconnects and re-subscribes by itself.

use std::sync::Arc;
use std::time::Duration;

use medtwin_mqtt::topic::matches;
use medtwin_mqtt::{ConnectOptions, Connection, Delivery, Qos, Version};
use medtwin_wire::TelemetryMessage;
use tokio::sync::mpsc;

use crate::BackendError;
use crate::server::Shared;
use crate::stats::Reason;

/// Messages waiting between the connection and the ingest.
const QUEUE: usize = 16_384;

/// Where and what to subscribe to.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttIngest {
    /// Broker `host:port`.
    pub broker: String,
    /// Topic filter, e.g. `medtwin/+/+/+`.
    pub filter: String,
    /// QoS of the subscription.
    pub qos: Qos,
    /// Protocol version.
    pub version: Version,
    /// The run the messages belong to (what HTTP senders put in
    /// `x-medtwin-run`).
    pub run: String,
    /// Topics matching these filters are not telemetry (the senders'
    /// retained `online`/`offline` status) and are skipped.
    pub ignore: Vec<String>,
}

/// A running subscription.
#[derive(Debug)]
pub(crate) struct Ingestor {
    connection: Connection,
    task: tokio::task::JoinHandle<()>,
}

/// Connects and subscribes; messages are ingested until [`Ingestor::stop`].
pub(crate) async fn start(
    config: &MqttIngest,
    shared: Arc<Shared>,
) -> Result<Ingestor, BackendError> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let id = format!("mtbe{}x{}", std::process::id(), unique());
    let mut options = ConnectOptions::new(&config.broker, id, config.version);
    options.deliveries = Some(tx);
    options.max_packet_bytes = u32::try_from(medtwin_wire::MAX_BODY_BYTES).unwrap_or(u32::MAX);
    let mqtt = |detail: String| BackendError::Mqtt {
        broker: config.broker.clone(),
        detail,
    };
    let connection = Connection::connect(options)
        .await
        .map_err(|e| mqtt(e.to_string()))?;
    connection
        .subscribe(config.filter.clone(), config.qos)
        .await
        .map_err(|e| mqtt(format!("subscribing to {}: {e}", config.filter)))?;
    let task = tokio::spawn(ingest(
        rx,
        shared,
        config.run.clone(),
        config.ignore.clone(),
    ));
    Ok(Ingestor { connection, task })
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn ingest(
    mut rx: mpsc::Receiver<Delivery>,
    shared: Arc<Shared>,
    run: String,
    ignore: Vec<String>,
) {
    while let Some(delivery) = rx.recv().await {
        if delivery.retain || ignore.iter().any(|f| matches(f, &delivery.topic)) {
            continue;
        }
        let payload = &delivery.payload[..];
        let first = payload.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'[') {
            serde_json::from_slice::<Vec<TelemetryMessage>>(payload)
        } else {
            serde_json::from_slice::<TelemetryMessage>(payload).map(|m| vec![m])
        };
        match parsed {
            // Counted by reason inside, as the HTTP route's are.
            Ok(messages) => {
                for message in messages {
                    let _ = shared.ingest_message(&run, message);
                }
            }
            Err(_) => shared.reject_undecodable(Reason::BadJson),
        }
    }
}

impl Ingestor {
    /// Unsubscribes (disconnects) and waits for what was received to be
    /// ingested, at most `wait`.
    pub(crate) async fn stop(self, wait: Duration) {
        self.connection.disconnect().await;
        let abort = self.task.abort_handle();
        if tokio::time::timeout(wait, self.task).await.is_err() {
            abort.abort();
        }
    }

    /// Stops at once.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}
