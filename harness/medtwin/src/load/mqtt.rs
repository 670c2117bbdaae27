//! The load generator's MQTT path: `connections` clients (one task each,
//! a client id each), each publishing what its queue holds at the
//! scenario's QoS to the topic its template gives the device
//! (`[target.mqtt]`), with up to [`WINDOW`] publishes in flight. A publish
//! is done when QoS 0 is written to the socket, QoS 1 acknowledged
//! (PUBACK), QoS 2 completed (PUBCOMP); its latency runs from the
//! message's scheduled time to then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use medtwin_mqtt::{ConnectOptions, Connection, Qos, Version};
use tokio::sync::mpsc;

use super::http::Outgoing;
use super::stats::Recorder;

/// Publishes one client keeps in flight (and the QoS 1/2 window it asks
/// the broker for).
pub const WINDOW: usize = 64;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct MqttSink {
    /// `host:port` of the broker.
    pub addr: String,
    /// Protocol version.
    pub version: Version,
    /// QoS of every message.
    pub qos: Qos,
    /// User name and password, when the broker wants them.
    pub login: Option<(String, String)>,
    /// The run's id (in the client ids).
    pub run_id: String,
    /// Connect, and acknowledgement, timeout.
    pub timeout: Duration,
    /// A message that waited longer than this in the queue is dropped.
    pub max_late: Duration,
}

/// Opens `n` clients at once. A client whose first connect fails keeps
/// trying; its publishes fail, counted by cause, until it is up.
pub async fn connect(sink: &MqttSink, n: usize) -> Vec<(Connection, Option<String>)> {
    let opening = (0..n).map(|i| {
        // `mt<run>l<i>`: broker-safe, and apart from `run`'s clients.
        let id = crate::transport::mqtt::client_id(&sink.run_id, 'l', i);
        let mut options = ConnectOptions::new(&sink.addr, id, sink.version);
        options.keep_alive = Duration::from_secs(30);
        options.max_in_flight = WINDOW as u16;
        options.queue = 2 * WINDOW;
        options.ack_timeout = sink.timeout;
        options.connect_timeout = sink.timeout.min(Duration::from_secs(10));
        options.login = sink.login.clone();
        async move {
            let (connection, error) = Connection::start(options).await;
            (connection, error.map(|e| e.to_string()))
        }
    });
    futures_util::future::join_all(opening).await
}

/// One client's task: publishes what its queue holds until the queue
/// closes, then disconnects cleanly. Records every fate in `recorder`.
pub async fn connection(
    client: Connection,
    sink: Arc<MqttSink>,
    mut queue: mpsc::Receiver<Outgoing>,
    recorder: Arc<Mutex<Recorder>>,
    backlog: &AtomicU64,
) {
    let client = &client;
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            Some((window, due, fate)) = pending.next(), if !pending.is_empty() => {
                let fate: Result<(), medtwin_mqtt::PublishError> = fate;
                let due: std::time::Instant = due;
                let latency_us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
                let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                let w = r.window(window);
                w.counts.sent += 1;
                match fate {
                    Ok(()) => {
                        w.counts.accepted += 1;
                        let _ = w.ingest.record(latency_us.max(1));
                    }
                    Err(e @ medtwin_mqtt::PublishError::Refused { .. }) => {
                        w.counts.refused += 1;
                        w.counts.cause(&e.name());
                    }
                    Err(e) => {
                        w.counts.failed += 1;
                        w.counts.cause(&e.name());
                    }
                }
            }
            message = queue.recv(), if open && pending.len() < WINDOW => {
                let Some(message) = message else {
                    open = false;
                    continue;
                };
                backlog.fetch_sub(1, Ordering::Relaxed);
                if message.due.elapsed() > sink.max_late {
                    let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                    let w = r.window(message.window);
                    w.counts.dropped += 1;
                    w.counts.cause("dropped_late");
                    continue;
                }
                let topic = message.topic.as_deref().unwrap_or_default().to_owned();
                let qos = sink.qos;
                pending.push(async move {
                    let fate = client.publish(topic, message.body, qos, false).await;
                    (message.window, message.due, fate)
                });
            }
        }
    }
    client.disconnect().await;
}
