//! Alerts in from an MQTT subscription (`docs/intakes/mqtt.md`): one
//! connection subscribes to a topic filter (default `medtwin/alerts/#`);
//! each message's payload is read by the run's [`AlertParser`] (medtwin's
//! alert JSON, or the scenario's mapping) and accepted into the inbox as
//! arriving `via = "mqtt"`, or refused with a sample. Messages wait in a
//! bounded queue between the connection and the inbox; overflow is
//! counted (`dropped_full`). A retained message delivered when the
//! subscription is made predates the run and is counted
//! (`retained_ignored`), never judged. The connection reconnects and
//! re-subscribes by itself (`reconnects`).
//!
//! An `mqtts://` broker is reached over TLS with the target's client
//! options (`[target.tls]`, the `--ca-cert` family): the identity
//! `medtwin-intake` from the `identities` folder when it holds one
//! (`medtwin certs` writes it), else the target-wide `client_cert` (or
//! none).
//!
//! [`AlertParser`]: super::mapping::AlertParser

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use medtwin_mqtt::topic::valid_filter;
use medtwin_mqtt::{ConnectOptions, Connection, Delivery, Qos, Version};
use tokio::sync::mpsc;

use super::{AnyIntake, Inbox, Intake, IntakeContext, mapping::AlertParser};
use crate::scenario::interop::{MqttIntakeOptions, host_port};

pub use medtwin_mqtt::defaults::{ALERT_FILTER as DEFAULT_FILTER, QOS as DEFAULT_QOS};
/// Messages queued between the connection and the inbox.
pub const QUEUE: usize = 1_024;
/// Largest alert payload taken, bytes (larger packets are refused by the
/// connection and counted as a protocol error).
pub const MAX_PAYLOAD_BYTES: u32 = 256 * 1024;
const VIA: &str = "mqtt";

/// A running MQTT subscription.
pub struct MqttIntake {
    connection: Connection,
    reader: tokio::task::JoinHandle<()>,
    address: String,
    inbox: Arc<Inbox>,
}

/// Connects and subscribes.
pub async fn open(options: &MqttIntakeOptions, ctx: &IntakeContext) -> anyhow::Result<AnyIntake> {
    let broker = options
        .broker
        .clone()
        .or_else(|| ctx.mqtt_broker.clone())
        .context(
            "the MQTT intake needs a broker: set [alerts.mqtt] broker = \"mqtt://host:port\" (or mqtts://)",
        )?;
    let (host, port) =
        host_port(&broker, "mqtt").map_err(|e| anyhow::anyhow!("alerts.mqtt.broker: {e}"))?;
    let version: Version = match options.version.as_deref() {
        None => Version::V311,
        Some(v) => v.parse().map_err(|e: String| anyhow::anyhow!(e))?,
    };
    let qos = Qos::try_from(options.qos.unwrap_or(DEFAULT_QOS)).map_err(|e| anyhow::anyhow!(e))?;
    let filter = options
        .topic
        .clone()
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    anyhow::ensure!(
        valid_filter(&filter),
        "alerts.mqtt.topic: \"{filter}\" is not a valid MQTT topic filter"
    );
    let (tx, rx) = mpsc::channel(QUEUE);
    let addr = format!("{host}:{port}");
    let mut connect = ConnectOptions::new(&addr, client_id(), version);
    connect.deliveries = Some(tx);
    connect.max_packet_bytes = MAX_PAYLOAD_BYTES;
    connect.ack_timeout = Duration::from_secs(5);
    let tls = crate::scenario::interop::uses_tls(&broker);
    if tls {
        connect.tls = Some(intake_tls(&ctx.tls, &host)?);
    }
    let scheme = if tls { "mqtts" } else { "mqtt" };
    let connection = Connection::connect(connect).await.map_err(|e| {
        let hint = e
            .tls_cause()
            .map_or_else(String::new, |cause| format!(" (hint: {})", cause.hint()));
        anyhow::Error::new(e).context(format!(
            "the MQTT intake cannot connect to {scheme}://{addr}{hint}"
        ))
    })?;
    connection
        .subscribe(filter.clone(), qos)
        .await
        .with_context(|| format!("the MQTT intake cannot subscribe to \"{filter}\" on {addr}"))?;
    let reader = tokio::spawn(read(rx, Arc::clone(&ctx.inbox), Arc::clone(&ctx.parser)));
    Ok(AnyIntake::Mqtt(MqttIntake {
        connection,
        reader,
        address: format!("{scheme}://{addr}/{filter}"),
        inbox: Arc::clone(&ctx.inbox),
    }))
}

/// The intake's TLS towards `host`: its own identity when the identities
/// folder has one, else the shared configuration.
fn intake_tls(
    options: &medtwin_tls::ClientOptions,
    host: &str,
) -> anyhow::Result<medtwin_mqtt::Tls> {
    use crate::transport::mqtt::INTAKE_IDENTITY;
    let tls = medtwin_tls::ClientTls::new(options)
        .map_err(|e| anyhow::anyhow!("the MQTT intake's TLS: {e}"))?;
    let own = options.identities.as_ref().is_some_and(|dir| {
        medtwin_tls::Identities::files(dir, INTAKE_IDENTITY)
            .0
            .exists()
    });
    let name = if own { INTAKE_IDENTITY } else { "" };
    let config = if own {
        tls.config_for(name)
    } else {
        Ok(tls.config())
    }
    .map_err(|e| anyhow::anyhow!("the MQTT intake's TLS: {e}"))?;
    Ok(medtwin_mqtt::Tls {
        config,
        server_name: tls
            .server_name(host)
            .map_err(|e| anyhow::anyhow!("the MQTT intake's TLS: {e}"))?,
    })
}

/// A client id unique on this machine (MQTT 3.1.1 §3.1.3.1: 1 to 23 of
/// `[0-9a-zA-Z]` is always allowed).
fn client_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "mtin{}x{:x}x{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn read(mut rx: mpsc::Receiver<Delivery>, inbox: Arc<Inbox>, parser: Arc<AlertParser>) {
    while let Some(delivery) = rx.recv().await {
        let arrival = inbox.arrival();
        if delivery.retain {
            inbox.count(VIA, "retained_ignored", 1);
            continue;
        }
        match parser.parse_json(&delivery.payload) {
            Err(refusal) => inbox.refuse(&refusal, &delivery.payload),
            // A full inbox counts its own overflow.
            Ok(message) => {
                let _ = inbox.accept(message, arrival, VIA);
            }
        }
    }
}

impl Intake for MqttIntake {
    fn address(&self) -> String {
        self.address.clone()
    }

    async fn stop(self) {
        self.connection.disconnect().await;
        let counters = self.connection.counters();
        let get = |key: &str| counters.get(key).copied().unwrap_or(0);
        self.inbox.count(VIA, "reconnects", get("reconnects"));
        self.inbox
            .count(VIA, "dropped_full", get("deliveries_dropped_full"));
        let lost: u64 = counters
            .iter()
            .filter(|(k, _)| k.starts_with("disconnects_"))
            .map(|(_, n)| n)
            .sum();
        self.inbox.count(VIA, "connection_losses", lost);
        // The reader ends when the connection's sender is gone.
        let abort = self.reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
