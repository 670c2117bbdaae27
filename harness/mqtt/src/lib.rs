//! MQTT 3.1.1 and 5 for medtwin.
//!
//! - [`client`]: a connection ([`Connection`]) that publishes and subscribes,
//!   resolving each publish when its QoS flow is *done* (QoS 0 written to
//!   the socket, QoS 1 at PUBACK, QoS 2 at PUBCOMP), with a bounded number
//!   in flight, keep-alive, a last will, a retained "birth" message sent after
//!   every (re)connect, and reconnects with capped exponential back-off, all
//!   counted by cause. [`Connections`] keys connections by a name. A
//!   caller with many publishes in flight (the load generator) hands them
//!   over with [`Connection::publish_tagged`] instead: each fate comes
//!   back once, tagged, on the caller's channel, with no future, timer or
//!   one-shot channel per message.
//! - [`topic`]: topic templates (`{patient}`, `{device}`, `{kind}`) whose
//!   names cannot inject `/`, `+` or `#`, and filter matching.
//! - [`broker`]: a small embedded broker (3.1.1 and 5, QoS 0/1/2, retained
//!   messages, last wills, keep-alive) on the caller's tokio runtime that
//!   binds where it is told (127.0.0.1:0 in tests) and stops cleanly.
//!
//! Packets are encoded and decoded by rumqttc's codec (`mqttbytes` v4 for
//! 3.1.1, `v5::mqttbytes` for 5), except that a PUBLISH is written from
//! its parts (byte for byte rumqttc's, held to it by a property test),
//! sparing a copy of the topic per message. rumqttc's own event loop is not used: its
//! `publish` resolves when the request is queued, a packet id is chosen
//! inside the event loop and never handed back, unacknowledged publishes
//! are replayed or dropped across reconnects behind the caller's back, and
//! an MQTT 5 PUBACK refusal is only logged. medtwin must know the fate of
//! every message, so the state machine (packet ids, in-flight window,
//! acknowledgements, timeouts) is ours, in [`client`].
//!
//! The facts cited here (packet flows, reason codes) are from the OASIS
//! MQTT 3.1.1 and 5.0 standards, copied into `docs/references.md`
//! ("MQTT").

pub mod broker;
pub mod client;
mod codec;
mod error;
pub mod topic;

use std::fmt;
use std::str::FromStr;

pub use broker::{Broker, BrokerOptions};
pub use client::{ConnectOptions, Connection, Connections, Delivery, Message, Outcome, Tls};
pub use error::{
    BrokerError, ConnectError, DownCause, PublishError, SubscribeError, TemplateError,
};
pub use topic::{TopicNames, TopicTemplate};

/// The protocol version a connection speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    #[default]
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl Version {
    /// The name used in scenarios: `"3.1.1"` or `"5"`.
    pub fn name(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "3.1.1" | "4" => Ok(Version::V311),
            "5" | "5.0" => Ok(Version::V5),
            other => Err(format!(
                "unknown MQTT version {other:?}: expected \"3.1.1\" or \"5\""
            )),
        }
    }
}

/// Quality of service of a publish or a subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qos {
    /// At most once: done when written to the socket.
    #[default]
    AtMostOnce = 0,
    /// At least once: done at PUBACK.
    AtLeastOnce = 1,
    /// Exactly once: done at PUBCOMP.
    ExactlyOnce = 2,
}

impl Qos {
    /// The QoS number, 0, 1 or 2.
    pub fn level(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Qos {
    type Error = String;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            2 => Ok(Qos::ExactlyOnce),
            other => Err(format!("QoS must be 0, 1 or 2, not {other}")),
        }
    }
}

impl fmt::Display for Qos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.level())
    }
}

/// medtwin's defaults, shared by the harness's carrier and intake and the
/// reference backend's ingest and sink, so the two ends agree.
pub mod defaults {
    /// Telemetry topic template.
    pub const TELEMETRY_TOPIC: &str = "medtwin/{patient}/{device}/{kind}";
    /// Each connection's retained `online`/`offline` status.
    pub const STATUS_TOPIC: &str = "medtwin/{patient}/{device}/status";
    /// The filter the alert intake subscribes to.
    pub const ALERT_FILTER: &str = "medtwin/alerts/#";
    /// The topic template alerts are published to.
    pub const ALERT_TOPIC: &str = "medtwin/alerts/{patient}";
    /// QoS of telemetry and alerts: at least once, as clinical data is
    /// sent in IoMT practice (docs/references.md, "MQTT").
    pub const QOS: u8 = 1;
}
