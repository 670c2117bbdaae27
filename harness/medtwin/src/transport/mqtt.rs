//! MQTT 3.1.1 and 5 out (`docs/transports/mqtt.md`): each message is
//! published to a topic rendered from a template (`{patient}`, `{device}`,
//! `{kind}` = the device's model), at the configured QoS, on one connection
//! per lane (`connection = "gateway"`, the default) or per device
//! (`"device"`). Every connection announces a retained `online` on its
//! status topic after each (re)connect, leaves a retained `offline` as its
//! last will, and publishes `offline` itself on a clean close.
//!
//! A publish is accepted when its QoS flow is done (QoS 0 written, QoS 1
//! PUBACK, QoS 2 PUBCOMP; `medtwin_mqtt::client`). Failures map to the
//! transport's causes: an MQTT 5 reason code >= 0x80 is `Nak(Mqtt(code))`
//! (`mqtt_rc_<n>`), no acknowledgement in time is `Timeout`, a connection
//! lost with the message in flight is `Reset`, a connection down is
//! `ConnectionRefused` or `Connect` (its cause in `reason`). Reconnects,
//! connection failures and losses by cause are in [`Carrier::counters`].
//!
//! `mqtts://host:port` (8883 by convention) is MQTT over TLS, with
//! `[target.tls]`: each connection shows its own certificate from the
//! `identities` folder when one is set ([`identity_name`]: a device's name
//! with `/` as `.`, or `gateway-<lane>`), else the target-wide
//! `client_cert` (or none). A connection the broker refuses in TLS (its
//! certificate unknown, revoked, missing) does not stop the run: it stays
//! down and keeps trying, and its messages fail as `Tls(cause)`
//! (`tls_client_cert_refused`, ...), so one revoked device costs only its
//! own messages. Any other failure to connect at setup ends the run.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use medtwin_mqtt::{
    Broker, BrokerOptions, ConnectOptions, Connection, DownCause, Message, PublishError, Qos,
    TopicNames, TopicTemplate, Version,
};

pub use super::select::MqttOptions;
use super::select::{AnyCarrier, EncodeContext, TargetConfig, Wired};
use super::{Carrier, Cause, Failure, Nak, Outgoing, Sent};
use crate::scenario::interop::host_port;

pub use medtwin_mqtt::defaults::{
    QOS as DEFAULT_QOS, STATUS_TOPIC as DEFAULT_STATUS_TOPIC, TELEMETRY_TOPIC as DEFAULT_TOPIC,
};
/// Most connections `connection = "device"` opens; more devices must share
/// gateway connections.
pub const MAX_DEVICE_CONNECTIONS: usize = 2_000;
/// Connections opened at once during setup.
const CONNECT_PARALLEL: usize = 32;
/// How long `close` waits for each connection's `offline`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Keep-alive of every connection.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// QoS 1/2 publishes in flight per connection (lanes send one at a time;
/// the birth message can overlap).
const MAX_IN_FLIGHT: u16 = 16;

/// The patient and device names of a gateway connection's status topic.
const GATEWAY_PATIENT: &str = "_gateway";

/// The identity (`<name>.crt`, `<name>.key` in `[target.tls] identities`,
/// and the certificate's common name `medtwin certs` writes) of a device's
/// connection (`connection = "device"`): the twin's device name,
/// `<patient>/<device>` (`ward-001/pulse_oximeter`), with `/` written `.`
/// (`ward-001.pulse_oximeter`), so the folder stays flat (a Kubernetes
/// secret, one file per key).
pub fn identity_name(device: &str) -> String {
    device.replace('/', ".")
}

/// The name of lane `lane`'s connection (`connection = "gateway"`):
/// `gateway-<lane>`, from 0; its status topic's device and its identity.
pub fn gateway_name(lane: usize) -> String {
    format!("gateway-{lane}")
}

/// The identity the MQTT alerts intake shows to an `mqtts://` broker when
/// the identities folder holds one (else the target-wide certificate).
pub const INTAKE_IDENTITY: &str = "medtwin-intake";

/// The TLS of a connection on behalf of `name`, for an `mqtts://` address:
/// its own identity when there is an identities folder (an error naming
/// the missing file), else the shared configuration.
pub fn tls_for(
    tls: &medtwin_tls::ClientTls,
    host: &str,
    name: &str,
) -> anyhow::Result<medtwin_mqtt::Tls> {
    Ok(medtwin_mqtt::Tls {
        config: tls
            .config_for(name)
            .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
        server_name: tls
            .server_name(host)
            .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
    })
}

/// Starts the embedded broker a run uses when the embedded reference
/// backend takes telemetry (or sends alerts) over MQTT: loopback, a free
/// port, stopped when dropped.
pub async fn embedded_broker() -> anyhow::Result<Broker> {
    let mut options = BrokerOptions::local();
    // Device connections, the backend's subscriber and sink, the intake.
    options.max_connections = MAX_DEVICE_CONNECTIONS + 64;
    Broker::start(options)
        .await
        .context("cannot start the embedded MQTT broker")
}

/// Points the embedded reference backend at the run's broker (`broker`,
/// `mqtt://host:port`): it subscribes to the telemetry template's filter
/// when telemetry goes over MQTT, and publishes alerts for an open MQTT
/// intake to a topic its filter matches (see [`alert_topic_for`]). Returns
/// the telemetry URL, `mqtt://host:port`, when there is a broker.
pub fn wire_embedded_backend(
    config: &mut medtwin_backend::BackendConfig,
    s: &crate::scenario::Scenario,
    broker: Option<&str>,
    mqtt_intake: bool,
    run_id: &str,
) -> anyhow::Result<Option<String>> {
    let addr_of = |url: &str| -> anyhow::Result<String> {
        let (host, port) = host_port(url, "mqtt").map_err(|e| anyhow::anyhow!(e))?;
        Ok(format!("{host}:{port}"))
    };
    let run_broker = broker.map(addr_of).transpose()?;
    if s.transport.protocol == crate::scenario::interop::Protocol::Mqtt
        && let Some(addr) = &run_broker
    {
        let r = Resolved::of(&s.transport.mqtt)?;
        config.ingest.mqtt = Some(medtwin_backend::MqttIngest {
            broker: addr.clone(),
            filter: r.topic.filter(),
            // Broker and backend share this process: the last hop needs
            // no acknowledgement (the publisher's QoS is between medtwin
            // and the broker), and skipping it halves the broker's work.
            qos: Qos::AtMostOnce,
            version: r.version,
            run: run_id.to_owned(),
            ignore: vec![r.status_topic.filter()],
        });
    }
    if mqtt_intake {
        let intake = &s.alerts.intake.mqtt;
        let sink_broker = match &intake.broker {
            Some(url) => Some(addr_of(url)?),
            None => run_broker.clone(),
        };
        if let Some(addr) = sink_broker {
            let version = match intake.version.as_deref() {
                None => Version::V311,
                Some(v) => v.parse().map_err(|e: String| anyhow::anyhow!(e))?,
            };
            let filter = intake
                .topic
                .as_deref()
                .unwrap_or(medtwin_mqtt::defaults::ALERT_FILTER);
            config.sinks.push(medtwin_backend::Sink::Mqtt(
                medtwin_backend::sink::MqttSinkConfig {
                    broker: addr,
                    topic: alert_topic_for(filter),
                    qos: Qos::try_from(intake.qos.unwrap_or(medtwin_mqtt::defaults::QOS))
                        .map_err(|e| anyhow::anyhow!(e))?,
                    version,
                },
            ));
        }
    }
    Ok(run_broker.map(|addr| format!("mqtt://{addr}")))
}

/// A topic template that `filter` matches: the first wildcard level holds
/// `{patient}`, a second one `{kind}` (`medtwin/alerts/#` →
/// `medtwin/alerts/{patient}`).
pub fn alert_topic_for(filter: &str) -> String {
    let mut fillers = ["{patient}", "{kind}"].into_iter();
    filter
        .split('/')
        .map(|level| match level {
            "+" | "#" => fillers.next().unwrap_or("_"),
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The settings resolved from `[target.mqtt]`.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Protocol version.
    pub version: Version,
    /// QoS of every telemetry message.
    pub qos: Qos,
    /// Telemetry topic template.
    pub topic: TopicTemplate,
    /// Status topic template.
    pub status_topic: TopicTemplate,
    /// One connection per device (else per lane).
    pub per_device: bool,
}

impl Resolved {
    /// Reads and checks the options (defaults applied).
    pub fn of(options: &MqttOptions) -> anyhow::Result<Resolved> {
        let version = match options.version.as_deref() {
            None => Version::V311,
            Some(v) => v.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        };
        let qos =
            Qos::try_from(options.qos.unwrap_or(DEFAULT_QOS)).map_err(|e| anyhow::anyhow!(e))?;
        let topic = TopicTemplate::parse(options.topic.as_deref().unwrap_or(DEFAULT_TOPIC))?;
        let status_topic = TopicTemplate::parse(
            options
                .status_topic
                .as_deref()
                .unwrap_or(DEFAULT_STATUS_TOPIC),
        )?;
        let per_device = match options.connection.as_deref() {
            None | Some("gateway") => false,
            Some("device") => true,
            Some(other) => anyhow::bail!("connection = \"{other}\": \"device\" or \"gateway\""),
        };
        Ok(Resolved {
            version,
            qos,
            topic,
            status_topic,
            per_device,
        })
    }
}

/// Publishes each message on its lane's (or device's) connection.
pub struct MqttCarrier {
    destination: String,
    resolved: Resolved,
    connections: Vec<Connection>,
    /// Per connection: its name, and why its first attempt failed in TLS
    /// (for the samples of its messages' failures).
    refused: Vec<Option<String>>,
    status_topics: Vec<String>,
    patients: Vec<String>,
    devices: Vec<String>,
    kinds: Vec<String>,
}

/// A short, broker-safe client id: MQTT 3.1.1 §3.1.3.1 lets a server
/// refuse anything but 1 to 23 characters of `[0-9a-zA-Z]`.
pub fn client_id(run: &str, role: char, index: usize) -> String {
    let run: String = run
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    format!("mt{run}{role}{index}")
}

/// Connects to the broker (every connection before the twin starts) and
/// returns the carrier and the encoder.
pub async fn connect(cfg: &TargetConfig, ctx: &EncodeContext) -> anyhow::Result<Wired> {
    let resolved = Resolved::of(&cfg.mqtt)?;
    let (host, port) = host_port(&cfg.url, "mqtt").map_err(|e| anyhow::anyhow!(e))?;
    let addr = format!("{host}:{port}");
    let run = cfg
        .run_id
        .clone()
        .unwrap_or_else(|| format!("p{}", std::process::id()));
    let names = &ctx.names;
    let tls = cfg.client_tls()?;
    // (client id, status topic, identity name) per connection.
    let plan: Vec<(String, String, String)> = if resolved.per_device {
        anyhow::ensure!(
            names.devices.len() <= MAX_DEVICE_CONNECTIONS,
            "connection = \"device\" would open {} connections (at most {MAX_DEVICE_CONNECTIONS}); use connection = \"gateway\"",
            names.devices.len()
        );
        (0..names.devices.len())
            .map(|d| {
                let (patient, device) = split_device(&names.devices[d]);
                let topic = resolved.status_topic.render(&TopicNames {
                    patient,
                    device,
                    kind: "status",
                });
                (
                    client_id(&run, 'd', d),
                    topic,
                    identity_name(&names.devices[d]),
                )
            })
            .collect()
    } else {
        (0..cfg.lanes.max(1))
            .map(|lane| {
                let gateway = gateway_name(lane);
                let topic = resolved.status_topic.render(&TopicNames {
                    patient: GATEWAY_PATIENT,
                    device: &gateway,
                    kind: "status",
                });
                (client_id(&run, 'g', lane), topic, gateway)
            })
            .collect()
    };
    // MQTT 3.1.1 §3.1.2.9: a password needs a user name.
    // A bearer token is the password; basic's user name wins over
    // [target.mqtt] username.
    let login = cfg.auth.mqtt_login().map(|(user, password)| {
        let user = user
            .or_else(|| cfg.mqtt.username.clone())
            .unwrap_or_else(|| "medtwin".to_owned());
        (user, password)
    });
    // Every identity is read before the first connection: a missing file
    // is an error naming it, before the run starts.
    let tls_of: Vec<Option<medtwin_mqtt::Tls>> = plan
        .iter()
        .map(|(_, _, name)| {
            tls.as_deref()
                .map(|tls| tls_for(tls, &host, name))
                .transpose()
        })
        .collect::<anyhow::Result<_>>()?;
    let scheme = if tls.is_some() { "mqtts" } else { "mqtt" };
    let mut connections = Vec::with_capacity(plan.len());
    let mut refused = Vec::with_capacity(plan.len());
    for (chunk, tls_chunk) in plan
        .chunks(CONNECT_PARALLEL)
        .zip(tls_of.chunks(CONNECT_PARALLEL))
    {
        let mut set = tokio::task::JoinSet::new();
        for (i, ((id, status, _), tls)) in chunk.iter().zip(tls_chunk).enumerate() {
            let mut options = connect_options(&addr, id, status, &resolved, cfg.timeout);
            options.login = login.clone();
            options.tls = tls.clone();
            set.spawn(async move { (i, Connection::start(options).await) });
        }
        let mut opened: Vec<(usize, Connection, Option<String>)> = Vec::with_capacity(chunk.len());
        for (i, (connection, error)) in set.join_all().await {
            let why = match error {
                None => None,
                // Refused in TLS: this connection's identity (or the
                // broker's certificate); counted on its messages.
                Some(error) if error.tls_cause().is_some() => {
                    Some(format!("{} ({}): {error}", chunk[i].2, chunk[i].0))
                }
                Some(error) => {
                    return Err(anyhow::Error::new(error))
                        .with_context(|| format!("cannot connect to the MQTT broker at {addr}"));
                }
            };
            opened.push((i, connection, why));
        }
        opened.sort_by_key(|(i, _, _)| *i);
        for (_, connection, why) in opened {
            connections.push(connection);
            refused.push(why);
        }
    }
    let carrier = MqttCarrier {
        destination: format!("{scheme}://{addr}/{}", resolved.topic.text()),
        status_topics: plan.into_iter().map(|(_, topic, _)| topic).collect(),
        resolved,
        connections,
        refused,
        patients: names.patients.clone(),
        devices: names.devices.clone(),
        kinds: names.models.clone(),
    };
    Ok(Wired {
        carrier: AnyCarrier::Mqtt(carrier),
        encoder: super::select::encoder(cfg.encoding, ctx)?,
    })
}

/// A device's patient and its name within the patient: the twin names
/// devices `<patient>/<device>` (a name without `/` stands for both).
fn split_device(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or((name, name))
}

fn connect_options(
    addr: &str,
    id: &str,
    status: &str,
    resolved: &Resolved,
    timeout: Duration,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(addr, id, resolved.version);
    let offline = Message {
        topic: status.into(),
        payload: "offline".into(),
        qos: Qos::AtLeastOnce,
        retain: true,
    };
    options.birth = Some(Message {
        payload: "online".into(),
        ..offline.clone()
    });
    options.will = Some(offline);
    options.keep_alive = KEEP_ALIVE;
    options.max_in_flight = MAX_IN_FLIGHT;
    options.ack_timeout = timeout;
    options.connect_timeout = timeout.min(Duration::from_secs(10));
    options
}

impl MqttCarrier {
    fn index_of(&self, message: &Outgoing) -> usize {
        if self.resolved.per_device {
            message.device_idx as usize
        } else {
            message.patient_idx as usize % self.connections.len().max(1)
        }
    }

    /// The topic a message goes to.
    pub fn topic(&self, message: &Outgoing) -> String {
        let patient = name_at(&self.patients, message.patient_idx);
        let device = split_device(name_at(&self.devices, message.device_idx)).1;
        self.resolved.topic.render(&TopicNames {
            patient,
            device,
            kind: name_at(&self.kinds, message.device_idx),
        })
    }
}

fn name_at(names: &[String], index: u32) -> &str {
    names.get(index as usize).map_or("", String::as_str)
}

/// The transport's view of a failed publish.
pub fn failure_of(error: &PublishError) -> Failure {
    let detail = error.to_string();
    // Limits the client checks before sending are the broker's refusals
    // with MQTT 5's codes (docs/references.md, "MQTT").
    let nak = |code: u8| {
        Failure::new(Cause::Nak(Nak::Mqtt(code)), detail.clone())
            .with_reason(format!("{code:#04x}"))
    };
    match error {
        PublishError::Refused { code } => nak(*code),
        PublishError::InvalidTopic(_) => nak(0x90),
        PublishError::TooLarge { .. } => nak(0x95),
        PublishError::RetainNotSupported => nak(0x9A),
        PublishError::QosNotSupported { .. } => nak(0x9B),
        PublishError::Timeout => Failure::new(Cause::Timeout, detail),
        PublishError::Disconnected {
            cause: DownCause::Tls(tls),
        }
        | PublishError::NotConnected {
            cause: DownCause::Tls(tls),
        } => Failure::new(Cause::Tls(*tls), detail),
        PublishError::Disconnected { cause } => {
            Failure::new(Cause::Reset, detail).with_reason(cause.name())
        }
        PublishError::NotConnected { cause } => {
            let main = match cause {
                DownCause::ConnectionRefused => Cause::ConnectionRefused,
                DownCause::ClosedByBroker | DownCause::ServerDisconnect(_) => Cause::Closed,
                _ => Cause::Connect,
            };
            Failure::new(main, detail).with_reason(cause.name())
        }
        PublishError::Closed => Failure::new(Cause::Interrupted, detail),
    }
}

impl Carrier for MqttCarrier {
    async fn send(&self, batch: &[Outgoing]) -> Sent {
        for message in batch {
            let index = self.index_of(message);
            let Some(connection) = self.connections.get(index) else {
                return Sent::NotAccepted(Failure::new(
                    Cause::Connect,
                    format!("no connection for device {}", message.device_idx),
                ));
            };
            let topic = self.topic(message);
            let result = connection
                .publish(topic, message.body.clone(), self.resolved.qos, false)
                .await;
            if let Err(error) = result {
                let mut failure = failure_of(&error);
                if let (Cause::Tls(_), Some(Some(why))) = (failure.cause, self.refused.get(index)) {
                    failure.detail = format!("{}; connection {why}", failure.detail);
                }
                return Sent::NotAccepted(failure);
            }
        }
        Sent::Accepted
    }

    fn destination(&self) -> &str {
        &self.destination
    }

    async fn close(&self) {
        let closing = self.connections.iter().zip(&self.status_topics).map(
            |(connection, status)| async move {
                let offline = connection.publish(status.clone(), "offline", Qos::AtLeastOnce, true);
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, offline).await;
                connection.disconnect().await;
            },
        );
        for close in closing {
            close.await;
        }
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for connection in &self.connections {
            for (key, n) in connection.counters() {
                *total.entry(key).or_insert(0) += n;
            }
        }
        total.insert("connections".to_owned(), self.connections.len() as u64);
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_resolve_with_defaults_and_refuse_nonsense() {
        let r = Resolved::of(&MqttOptions::default()).unwrap();
        assert_eq!(
            (r.version, r.qos, r.per_device),
            (Version::V311, Qos::AtLeastOnce, false)
        );
        assert_eq!(r.topic.filter(), "medtwin/+/+/+");
        let bad = MqttOptions {
            topic: Some("m/{ward}".into()),
            ..MqttOptions::default()
        };
        assert!(
            Resolved::of(&bad)
                .unwrap_err()
                .to_string()
                .contains("{ward}")
        );
    }

    #[test]
    fn alert_topics_match_their_filter() {
        for filter in ["medtwin/alerts/#", "a/+/b/#", "x/+", "fixed/topic"] {
            let topic = alert_topic_for(filter);
            let rendered = TopicTemplate::parse(&topic).unwrap().render(&TopicNames {
                patient: "p/1",
                device: "d",
                kind: "news2-high",
            });
            assert!(
                medtwin_mqtt::topic::matches(filter, &rendered),
                "{filter} vs {rendered}"
            );
        }
        assert_eq!(
            alert_topic_for("medtwin/alerts/#"),
            "medtwin/alerts/{patient}"
        );
    }

    #[test]
    fn identities_are_flat_file_names() {
        assert_eq!(
            identity_name("ward-001/pulse_oximeter"),
            "ward-001.pulse_oximeter"
        );
        assert_eq!(identity_name("ward-001/bp_cuff-2"), "ward-001.bp_cuff-2");
        assert_eq!(gateway_name(3), "gateway-3");
    }

    #[test]
    fn client_ids_are_short_and_plain() {
        let id = client_id("run-2026-12-01T05:00:00Z-abcdef", 'g', 7);
        assert!(
            id.len() <= 23 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
    }

    #[test]
    fn failures_map_to_causes() {
        assert_eq!(
            failure_of(&PublishError::Refused { code: 0x97 }).cause,
            Cause::Nak(Nak::Mqtt(0x97))
        );
        assert_eq!(failure_of(&PublishError::Timeout).cause, Cause::Timeout);
        let down = failure_of(&PublishError::NotConnected {
            cause: DownCause::ConnectionRefused,
        });
        assert_eq!(down.cause, Cause::ConnectionRefused);
        assert_eq!(down.reason.as_deref(), Some("connection_refused"));
        let refused = failure_of(&PublishError::NotConnected {
            cause: DownCause::Tls(medtwin_tls::HandshakeCause::ClientCertRefused),
        });
        assert_eq!(
            (refused.cause, refused.cause.name()),
            (
                Cause::Tls(medtwin_tls::HandshakeCause::ClientCertRefused),
                "tls_client_cert_refused".to_owned()
            )
        );
        let lost = failure_of(&PublishError::Disconnected {
            cause: DownCause::KeepAliveTimeout,
        });
        assert_eq!(
            (lost.cause, lost.reason.as_deref()),
            (Cause::Reset, Some("keepalive_timeout"))
        );
    }
}
