//! Typed errors. Every failure names its cause (`DownCause::name`), which is
//! also the key it is counted under.

use std::io;

/// Why a connection could not be made, or why one ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownCause {
    /// The address did not resolve.
    NotResolved,
    /// TCP connect refused (nothing listens).
    ConnectionRefused,
    /// TCP connect did not finish in time.
    ConnectTimeout,
    /// No CONNACK in time.
    ConnAckTimeout,
    /// CONNACK refused the connection with this return (3.1.1) or reason
    /// (5) code.
    Rejected(u8),
    /// The broker closed the socket.
    ClosedByBroker,
    /// An MQTT 5 broker sent DISCONNECT with this reason code.
    ServerDisconnect(u8),
    /// No PINGRESP within the keep-alive.
    KeepAliveTimeout,
    /// A QoS 1/2 acknowledgement did not come in time: the connection is
    /// taken as stalled and made anew (MQTT 5 §4.4: only a new connection
    /// resends).
    AckTimeout,
    /// A socket error of this kind.
    Io(io::ErrorKind),
    /// The peer broke the protocol (undecodable or unexpected packet).
    Protocol,
    /// The connection was dropped on purpose without DISCONNECT.
    Killed,
    /// The TLS connection (`mqtts://`) failed, for this reason: named by
    /// [`medtwin_tls::classify`] from the socket error's source chain. With
    /// TLS 1.3 a server refuses a client certificate after the client's
    /// handshake is done, so that refusal shows while waiting for CONNACK.
    Tls(medtwin_tls::HandshakeCause),
}

impl DownCause {
    /// The counter key: `connection_refused`, `rejected_rc_135`, ...
    pub fn name(&self) -> String {
        match self {
            DownCause::NotResolved => "not_resolved".into(),
            DownCause::ConnectionRefused => "connection_refused".into(),
            DownCause::ConnectTimeout => "connect_timeout".into(),
            DownCause::ConnAckTimeout => "connack_timeout".into(),
            DownCause::Rejected(code) => format!("rejected_rc_{code}"),
            DownCause::ClosedByBroker => "closed_by_broker".into(),
            DownCause::ServerDisconnect(code) => format!("server_disconnect_rc_{code}"),
            DownCause::KeepAliveTimeout => "keepalive_timeout".into(),
            DownCause::AckTimeout => "ack_timeout".into(),
            DownCause::Io(kind) => format!("io_{}", format!("{kind:?}").to_lowercase()),
            DownCause::Protocol => "protocol_error".into(),
            DownCause::Killed => "killed".into(),
            DownCause::Tls(cause) => cause.name().into(),
        }
    }

    pub(crate) fn from_io(error: &io::Error) -> DownCause {
        // Only failing sockets get here: looking through the error's chain
        // costs nothing on the way that works.
        if let Some(cause) = medtwin_tls::classify(error) {
            return DownCause::Tls(cause);
        }
        match error.kind() {
            io::ErrorKind::ConnectionRefused => DownCause::ConnectionRefused,
            io::ErrorKind::UnexpectedEof => DownCause::ClosedByBroker,
            kind => DownCause::Io(kind),
        }
    }
}

impl std::fmt::Display for DownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A connection that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("mqtt connect to {addr}: {cause}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
pub struct ConnectError {
    /// The broker address as given.
    pub addr: String,
    /// Why.
    pub cause: DownCause,
    /// More, for a person (the socket error, the packet).
    pub detail: String,
    /// The socket error, kept whole so its chain can be read (the TLS
    /// alert or certificate error inside it: [`medtwin_tls::classify`]).
    #[source]
    pub source: Option<io::Error>,
}

impl ConnectError {
    /// The TLS cause, when the connection failed in TLS.
    pub fn tls_cause(&self) -> Option<medtwin_tls::HandshakeCause> {
        match self.cause {
            DownCause::Tls(cause) => Some(cause),
            _ => None,
        }
    }
}

/// A publish that did not get done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// MQTT 5: PUBACK, PUBREC or PUBCOMP carried a reason code >= 0x80.
    #[error("broker refused the message with reason code {code:#04x}")]
    Refused {
        /// The reason code.
        code: u8,
    },
    /// Not done within the acknowledgement timeout.
    #[error("no acknowledgement in time")]
    Timeout,
    /// The connection ended before the QoS flow was done; the broker may or
    /// may not have the message.
    #[error("connection lost before the message was done: {cause}")]
    Disconnected {
        /// Why the connection ended.
        cause: DownCause,
    },
    /// The connection is down (reconnecting); not sent.
    #[error("not connected: {cause}")]
    NotConnected {
        /// Why the last connection attempt failed.
        cause: DownCause,
    },
    /// The connection was closed by its owner; not sent.
    #[error("connection closed")]
    Closed,
    /// A topic name that MQTT forbids (empty, wildcards, NUL, too long).
    #[error("invalid topic name {0:?}")]
    InvalidTopic(String),
    /// Larger than the broker's Maximum Packet Size or ours.
    #[error("packet of {bytes} bytes over the maximum of {max}")]
    TooLarge {
        /// The packet's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// MQTT 5: the broker's Maximum QoS is lower.
    #[error("QoS {requested} over the broker's maximum QoS {max}")]
    QosNotSupported {
        /// Asked for.
        requested: u8,
        /// The broker's CONNACK Maximum QoS.
        max: u8,
    },
    /// MQTT 5: the broker said Retain Available = 0.
    #[error("the broker does not support retained messages")]
    RetainNotSupported,
}

impl PublishError {
    /// The counter key for this error.
    pub fn name(&self) -> String {
        match self {
            PublishError::Refused { code } => format!("refused_rc_{code}"),
            PublishError::Timeout => "timeout".into(),
            PublishError::Disconnected { cause } => format!("disconnected_{}", cause.name()),
            PublishError::NotConnected { cause } => format!("not_connected_{}", cause.name()),
            PublishError::Closed => "closed".into(),
            PublishError::InvalidTopic(_) => "invalid_topic".into(),
            PublishError::TooLarge { .. } => "too_large".into(),
            PublishError::QosNotSupported { .. } => "qos_not_supported".into(),
            PublishError::RetainNotSupported => "retain_not_supported".into(),
        }
    }
}

/// A subscription that was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// SUBACK refused it (0x80 in 3.1.1; a reason code >= 0x80 in 5).
    #[error("broker refused the subscription with code {code:#04x}")]
    Refused {
        /// The return or reason code.
        code: u8,
    },
    /// Not a valid topic filter.
    #[error("invalid topic filter {0:?}")]
    InvalidFilter(String),
    /// No SUBACK in time.
    #[error("no SUBACK in time")]
    Timeout,
    /// Not connected now; the subscription is made when the connection is
    /// back.
    #[error("not connected: {cause}")]
    NotConnected {
        /// Why.
        cause: DownCause,
    },
    /// The connection was closed by its owner.
    #[error("connection closed")]
    Closed,
}

/// A topic template that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` where name is not `patient`, `device` or `kind`.
    #[error(
        "topic template {template:?}: unknown placeholder {{{name}}} (known: {{patient}}, {{device}}, {{kind}})"
    )]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// The unknown name.
        name: String,
    },
    /// A `{` without `}` or a lone `}`.
    #[error("topic template {template:?}: unbalanced brace at byte {at}")]
    Unbalanced {
        /// The template.
        template: String,
        /// Byte offset.
        at: usize,
    },
    /// Wildcards, NUL, an empty template, a leading `$`, or too long.
    #[error("topic template {template:?}: {why}")]
    Invalid {
        /// The template.
        template: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// The embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Binding the listener failed.
    #[error("mqtt broker: bind {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
}
