//! One packet model over rumqttc's two codecs (`mqttbytes::v4` for MQTT
//! 3.1.1, `v5::mqttbytes::v5` for MQTT 5), with reason codes as numbers.
//!
//! Reason code numbers are from MQTT 5.0 §2.4 and the tables of each
//! packet (§3.2.2.2 CONNACK, §3.4.2.1 PUBACK, §3.5.2.1 PUBREC, §3.6.2.1
//! PUBREL, §3.7.2.1 PUBCOMP, §3.9.3 SUBACK, §3.11.3 UNSUBACK, §3.14.2.1
//! DISCONNECT), and MQTT 3.1.1 §3.2.2.3 (CONNACK return codes) and §3.9.3
//! (SUBACK return codes); see docs/references.md ("MQTT").

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes as m4;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes as m5;
use rumqttc::v5::mqttbytes::v5;

use crate::{Qos, Version};

/// A will or any message: topic, payload, QoS, retain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Publish {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
    pub dup: bool,
    pub pkid: u16,
}

/// CONNECT, as far as we use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Connect {
    pub client_id: String,
    pub keep_alive_s: u16,
    pub clean: bool,
    pub will: Option<Publish>,
    /// MQTT 5: Receive Maximum (§3.1.2.11.3).
    pub receive_max: Option<u16>,
    /// MQTT 5: Maximum Packet Size (§3.1.2.11.4).
    pub max_packet_bytes: Option<u32>,
    /// User name and password (§3.1.3.5, §3.1.3.6).
    pub login: Option<(String, String)>,
}

/// CONNACK, as far as we use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnAck {
    pub session_present: bool,
    /// 0 is success; 3.1.1 return codes 1..=5, MQTT 5 reason codes >= 0x80.
    pub code: u8,
    pub receive_max: Option<u16>,
    pub server_keep_alive_s: Option<u16>,
    pub assigned_client_id: Option<String>,
    pub max_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub max_packet_bytes: Option<u32>,
}

/// A subscription request: filter, QoS and the MQTT 5 options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Filter {
    pub path: String,
    pub qos: Qos,
    pub no_local: bool,
    pub retain_as_published: bool,
}

/// Every control packet, both versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck { pkid: u16, code: u8 },
    PubRec { pkid: u16, code: u8 },
    PubRel { pkid: u16, code: u8 },
    PubComp { pkid: u16, code: u8 },
    Subscribe { pkid: u16, filters: Vec<Filter> },
    SubAck { pkid: u16, codes: Vec<u8> },
    Unsubscribe { pkid: u16, filters: Vec<String> },
    UnsubAck { pkid: u16, codes: Vec<u8> },
    PingReq,
    PingResp,
    Disconnect { code: u8 },
    Auth,
}

/// A packet that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("mqtt 3.1.1 packet: {0}")]
    V4(#[from] m4::Error),
    #[error("mqtt 5 packet: {0}")]
    V5(#[from] m5::Error),
    #[error("reason code {0:#04x} has no meaning in this packet")]
    UnknownCode(u8),
    #[error("packet of {bytes} bytes is over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("not a CONNECT packet (first byte {0:#04x})")]
    NotConnect(u8),
    #[error("{0}")]
    Invalid(&'static str),
}

/// Reads one packet from `buf` if it holds a whole one (`Ok(None)`: read more).
pub(crate) fn decode(
    version: Version,
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<Packet>, CodecError> {
    // Whole frames only: rumqttc reports a frame whose inside is short as
    // "insufficient bytes" after taking it off the buffer, which must be a
    // malformed packet, not a wait for more.
    let Some((header, remaining)) = fixed_header(buf, max_bytes)? else {
        return Ok(None);
    };
    if buf.len() < header + remaining {
        return Ok(None);
    }
    match version {
        Version::V311 => match v4::Packet::read(buf, max_bytes) {
            Ok(packet) => Ok(Some(from_v4(packet))),
            Err(m4::Error::InsufficientBytes(_)) => Err(m4::Error::MalformedPacket.into()),
            Err(error) => Err(error.into()),
        },
        Version::V5 => {
            if buf.first() == Some(&0xE0) {
                return decode_disconnect_v5(buf, max_bytes);
            }
            let max = u32::try_from(max_bytes).unwrap_or(u32::MAX);
            match v5::Packet::read(buf, Some(max)) {
                Ok(packet) => from_v5(packet).map(Some),
                Err(m5::Error::InsufficientBytes(_)) => Err(m5::Error::MalformedPacket.into()),
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// The fixed header at the head of `buf`: (its length, Remaining Length),
/// `Ok(None)` when incomplete (MQTT §2.2.3: 1 to 4 bytes, 7 bits each).
fn fixed_header(buf: &[u8], max_bytes: usize) -> Result<Option<(usize, usize)>, CodecError> {
    let mut remaining: usize = 0;
    let mut at = 1;
    loop {
        let Some(&byte) = buf.get(at) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7f) << (7 * (at - 1));
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return Err(m4::Error::MalformedRemainingLength.into());
        }
    }
    if remaining + at > max_bytes {
        return Err(CodecError::TooLarge {
            bytes: remaining + at,
            max: max_bytes,
        });
    }
    Ok(Some((at, remaining)))
}

/// MQTT 5 DISCONNECT (§3.14): rumqttc 0.25 cannot read one whose Remaining
/// Length is 1 (reason code, properties absent), nor reason codes it does
/// not list, so we read it here; the properties are skipped.
fn decode_disconnect_v5(
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<Packet>, CodecError> {
    let Some((header, remaining)) = fixed_header(buf, max_bytes)? else {
        return Ok(None);
    };
    if buf.len() < header + remaining {
        return Ok(None);
    }
    // §3.14.2.1: no reason code (Remaining Length 0) means 0x00.
    let code = if remaining == 0 { 0 } else { buf[header] };
    let _ = buf.split_to(header + remaining);
    Ok(Some(Packet::Disconnect { code }))
}

/// The protocol level of the CONNECT at the head of `buf` (`Ok(None)`: read
/// more). MQTT 3.1.1 §3.1.2.1-2, MQTT 5 §3.1.2.1-2: protocol name, then
/// the level byte (3 = MQTT 3.1 "MQIsdp", 4 = 3.1.1, 5 = 5.0).
pub(crate) fn connect_level(buf: &[u8], max_bytes: usize) -> Result<Option<u8>, CodecError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != 0x10 {
        return Err(CodecError::NotConnect(first));
    }
    let Some((at, _)) = fixed_header(buf, max_bytes)? else {
        return Ok(None);
    };
    let (Some(&hi), Some(&lo)) = (buf.get(at), buf.get(at + 1)) else {
        return Ok(None);
    };
    let name_len = usize::from(u16::from_be_bytes([hi, lo]));
    Ok(buf.get(at + 2 + name_len).copied())
}

/// Appends `packet` to `buf`.
pub(crate) fn encode(
    version: Version,
    packet: &Packet,
    buf: &mut BytesMut,
) -> Result<(), CodecError> {
    if let Packet::Publish(p) = packet {
        return encode_publish(
            version, &p.topic, &p.payload, p.qos, p.retain, p.dup, p.pkid, buf,
        );
    }
    match version {
        Version::V311 => {
            to_v4(packet)?.write(buf, usize::MAX)?;
        }
        Version::V5 => {
            if let Packet::Disconnect { code } = packet {
                // rumqttc 0.25 writes a reason code without properties with
                // a Remaining Length one short. MQTT 5 §3.14.2.2.1: with a
                // Remaining Length of 1 the properties are absent.
                disconnect_reason(*code)?;
                buf.extend_from_slice(&[0xE0, 0x01, *code]);
                return Ok(());
            }
            to_v5(packet)?.write(buf, None)?;
        }
    }
    Ok(())
}

/// Largest Remaining Length a fixed header can carry (MQTT 3.1.1 §2.2.3,
/// MQTT 5 §1.5.5: four bytes of 7 bits).
const MAX_REMAINING: usize = 268_435_455;

/// Appends a PUBLISH (MQTT 3.1.1 §3.3, MQTT 5 §3.3; docs/references.md,
/// "PUBLISH framing") straight from its parts, without building rumqttc's
/// packet (which would copy the topic into a `String` of its own for
/// every message). Byte for byte what rumqttc writes (a property test
/// holds it to that); MQTT 5 with no properties (a Property Length of 0).
#[allow(clippy::too_many_arguments)] // the PUBLISH header's fields, each used once
pub(crate) fn encode_publish(
    version: Version,
    topic: &str,
    payload: &[u8],
    qos: Qos,
    retain: bool,
    dup: bool,
    pkid: u16,
    buf: &mut BytesMut,
) -> Result<(), CodecError> {
    let topic_len =
        u16::try_from(topic.len()).map_err(|_| CodecError::Invalid("topic over 65,535 bytes"))?;
    let with_id = qos != Qos::AtMostOnce;
    if with_id && pkid == 0 {
        // §2.3.1: a QoS 1 or 2 PUBLISH carries a non-zero packet id.
        return Err(CodecError::Invalid("packet id 0 on a QoS 1/2 PUBLISH"));
    }
    // MQTT 5 adds a Property Length (0: no properties), one byte.
    let properties = version == Version::V5;
    let remaining =
        2 + topic.len() + 2 * usize::from(with_id) + usize::from(properties) + payload.len();
    if remaining > MAX_REMAINING {
        return Err(CodecError::TooLarge {
            bytes: remaining,
            max: MAX_REMAINING,
        });
    }
    buf.reserve(5 + remaining);
    buf.extend_from_slice(&[0x30 | u8::from(dup) << 3 | qos.level() << 1 | u8::from(retain)]);
    let mut left = remaining;
    loop {
        // Seven bits a byte, least significant first; the top bit says
        // "more follows".
        let byte = (left % 128) as u8;
        left /= 128;
        if left == 0 {
            buf.extend_from_slice(&[byte]);
            break;
        }
        buf.extend_from_slice(&[byte | 0x80]);
    }
    buf.extend_from_slice(&topic_len.to_be_bytes());
    buf.extend_from_slice(topic.as_bytes());
    if with_id {
        buf.extend_from_slice(&pkid.to_be_bytes());
    }
    if properties {
        buf.extend_from_slice(&[0]);
    }
    buf.extend_from_slice(payload);
    Ok(())
}

fn qos4(qos: Qos) -> m4::QoS {
    match qos {
        Qos::AtMostOnce => m4::QoS::AtMostOnce,
        Qos::AtLeastOnce => m4::QoS::AtLeastOnce,
        Qos::ExactlyOnce => m4::QoS::ExactlyOnce,
    }
}

fn from_qos4(qos: m4::QoS) -> Qos {
    match qos {
        m4::QoS::AtMostOnce => Qos::AtMostOnce,
        m4::QoS::AtLeastOnce => Qos::AtLeastOnce,
        m4::QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

fn qos5(qos: Qos) -> m5::QoS {
    match qos {
        Qos::AtMostOnce => m5::QoS::AtMostOnce,
        Qos::AtLeastOnce => m5::QoS::AtLeastOnce,
        Qos::ExactlyOnce => m5::QoS::ExactlyOnce,
    }
}

fn from_qos5(qos: m5::QoS) -> Qos {
    match qos {
        m5::QoS::AtMostOnce => Qos::AtMostOnce,
        m5::QoS::AtLeastOnce => Qos::AtLeastOnce,
        m5::QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

fn from_v4(packet: v4::Packet) -> Packet {
    match packet {
        v4::Packet::Connect(c) => Packet::Connect(Connect {
            client_id: c.client_id,
            keep_alive_s: c.keep_alive,
            clean: c.clean_session,
            will: c.last_will.map(|w| Publish {
                topic: w.topic,
                payload: w.message,
                qos: from_qos4(w.qos),
                retain: w.retain,
                dup: false,
                pkid: 0,
            }),
            receive_max: None,
            max_packet_bytes: None,
            login: c.login.map(|l| (l.username, l.password)),
        }),
        v4::Packet::ConnAck(a) => Packet::ConnAck(ConnAck {
            session_present: a.session_present,
            code: match a.code {
                v4::ConnectReturnCode::Success => 0,
                v4::ConnectReturnCode::RefusedProtocolVersion => 1,
                v4::ConnectReturnCode::BadClientId => 2,
                v4::ConnectReturnCode::ServiceUnavailable => 3,
                v4::ConnectReturnCode::BadUserNamePassword => 4,
                v4::ConnectReturnCode::NotAuthorized => 5,
            },
            ..ConnAck::default()
        }),
        v4::Packet::Publish(p) => Packet::Publish(Publish {
            topic: p.topic,
            payload: p.payload,
            qos: from_qos4(p.qos),
            retain: p.retain,
            dup: p.dup,
            pkid: p.pkid,
        }),
        v4::Packet::PubAck(a) => Packet::PubAck {
            pkid: a.pkid,
            code: 0,
        },
        v4::Packet::PubRec(a) => Packet::PubRec {
            pkid: a.pkid,
            code: 0,
        },
        v4::Packet::PubRel(a) => Packet::PubRel {
            pkid: a.pkid,
            code: 0,
        },
        v4::Packet::PubComp(a) => Packet::PubComp {
            pkid: a.pkid,
            code: 0,
        },
        v4::Packet::Subscribe(s) => Packet::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| Filter {
                    path: f.path,
                    qos: from_qos4(f.qos),
                    no_local: false,
                    retain_as_published: false,
                })
                .collect(),
        },
        v4::Packet::SubAck(s) => Packet::SubAck {
            pkid: s.pkid,
            codes: s
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => from_qos4(q).level(),
                    v4::SubscribeReasonCode::Failure => 0x80,
                })
                .collect(),
        },
        v4::Packet::Unsubscribe(u) => Packet::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::UnsubAck(u) => Packet::UnsubAck {
            pkid: u.pkid,
            codes: Vec::new(),
        },
        v4::Packet::PingReq => Packet::PingReq,
        v4::Packet::PingResp => Packet::PingResp,
        v4::Packet::Disconnect => Packet::Disconnect { code: 0 },
    }
}

fn to_v4(packet: &Packet) -> Result<v4::Packet, CodecError> {
    Ok(match packet {
        Packet::Connect(c) => v4::Packet::Connect(v4::Connect {
            protocol: m4::Protocol::V4,
            keep_alive: c.keep_alive_s,
            client_id: c.client_id.clone(),
            clean_session: c.clean,
            last_will: c.will.as_ref().map(|w| v4::LastWill {
                topic: w.topic.clone(),
                message: w.payload.clone(),
                qos: qos4(w.qos),
                retain: w.retain,
            }),
            login: c.login.as_ref().map(|(u, p)| v4::Login {
                username: u.clone(),
                password: p.clone(),
            }),
        }),
        Packet::ConnAck(a) => v4::Packet::ConnAck(v4::ConnAck {
            session_present: a.session_present,
            code: match a.code {
                0 => v4::ConnectReturnCode::Success,
                1 => v4::ConnectReturnCode::RefusedProtocolVersion,
                2 => v4::ConnectReturnCode::BadClientId,
                3 => v4::ConnectReturnCode::ServiceUnavailable,
                4 => v4::ConnectReturnCode::BadUserNamePassword,
                5 => v4::ConnectReturnCode::NotAuthorized,
                other => return Err(CodecError::UnknownCode(other)),
            },
        }),
        Packet::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos4(p.qos),
            retain: p.retain,
            topic: p.topic.clone(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        Packet::PubAck { pkid, .. } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Packet::PubRec { pkid, .. } => v4::Packet::PubRec(v4::PubRec::new(*pkid)),
        Packet::PubRel { pkid, .. } => v4::Packet::PubRel(v4::PubRel::new(*pkid)),
        Packet::PubComp { pkid, .. } => v4::Packet::PubComp(v4::PubComp::new(*pkid)),
        Packet::Subscribe { pkid, filters } => v4::Packet::Subscribe(v4::Subscribe {
            pkid: *pkid,
            filters: filters
                .iter()
                .map(|f| v4::SubscribeFilter::new(f.path.clone(), qos4(f.qos)))
                .collect(),
        }),
        Packet::SubAck { pkid, codes } => v4::Packet::SubAck(v4::SubAck {
            pkid: *pkid,
            return_codes: codes
                .iter()
                .map(|&c| match Qos::try_from(c) {
                    Ok(q) => v4::SubscribeReasonCode::Success(qos4(q)),
                    Err(_) => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        }),
        Packet::Unsubscribe { pkid, filters } => v4::Packet::Unsubscribe(v4::Unsubscribe {
            pkid: *pkid,
            topics: filters.clone(),
        }),
        Packet::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
        Packet::PingReq => v4::Packet::PingReq,
        Packet::PingResp => v4::Packet::PingResp,
        // MQTT 3.1.1 has no reason code on DISCONNECT and no AUTH.
        Packet::Disconnect { .. } | Packet::Auth => v4::Packet::Disconnect,
    })
}

fn from_v5(packet: v5::Packet) -> Result<Packet, CodecError> {
    Ok(match packet {
        v5::Packet::Connect(c, will, login) => {
            let properties = c.properties.unwrap_or_default();
            Packet::Connect(Connect {
                client_id: c.client_id,
                keep_alive_s: c.keep_alive,
                clean: c.clean_start,
                will: will.map(|w| Publish {
                    topic: String::from_utf8_lossy(&w.topic).into_owned(),
                    payload: w.message,
                    qos: from_qos5(w.qos),
                    retain: w.retain,
                    dup: false,
                    pkid: 0,
                }),
                receive_max: properties.receive_maximum,
                max_packet_bytes: properties.max_packet_size,
                login: login.map(|l| (l.username, l.password)),
            })
        }
        v5::Packet::ConnAck(a) => {
            let mut ack = ConnAck {
                session_present: a.session_present,
                code: connack_code(a.code),
                ..ConnAck::default()
            };
            if let Some(p) = a.properties {
                ack.receive_max = p.receive_max;
                ack.server_keep_alive_s = p.server_keep_alive;
                ack.assigned_client_id = p.assigned_client_identifier;
                ack.max_qos = p.max_qos;
                ack.retain_available = p.retain_available.map(|r| r != 0);
                ack.max_packet_bytes = p.max_packet_size;
            }
            Packet::ConnAck(ack)
        }
        v5::Packet::Publish(p) => {
            if p.properties
                .as_ref()
                .is_some_and(|p| p.topic_alias.is_some())
            {
                // We never allow topic aliases (Topic Alias Maximum absent
                // = 0, §3.1.2.11.5 / §3.2.2.3.8), so one is a protocol error.
                return Err(m5::Error::MalformedPacket.into());
            }
            Packet::Publish(Publish {
                topic: String::from_utf8(p.topic.to_vec())
                    .map_err(|_| CodecError::V5(m5::Error::TopicNotUtf8))?,
                payload: p.payload,
                qos: from_qos5(p.qos),
                retain: p.retain,
                dup: p.dup,
                pkid: p.pkid,
            })
        }
        v5::Packet::PubAck(a) => Packet::PubAck {
            pkid: a.pkid,
            code: puback_code(a.reason),
        },
        v5::Packet::PubRec(a) => Packet::PubRec {
            pkid: a.pkid,
            code: pubrec_code(a.reason),
        },
        v5::Packet::PubRel(a) => Packet::PubRel {
            pkid: a.pkid,
            code: match a.reason {
                v5::PubRelReason::Success => 0,
                v5::PubRelReason::PacketIdentifierNotFound => 0x92,
            },
        },
        v5::Packet::PubComp(a) => Packet::PubComp {
            pkid: a.pkid,
            code: match a.reason {
                v5::PubCompReason::Success => 0,
                v5::PubCompReason::PacketIdentifierNotFound => 0x92,
            },
        },
        v5::Packet::Subscribe(s) => Packet::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| Filter {
                    path: f.path,
                    qos: from_qos5(f.qos),
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                })
                .collect(),
        },
        v5::Packet::SubAck(s) => Packet::SubAck {
            pkid: s.pkid,
            codes: s.return_codes.into_iter().map(suback_code).collect(),
        },
        v5::Packet::Unsubscribe(u) => Packet::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::UnsubAck(u) => Packet::UnsubAck {
            pkid: u.pkid,
            codes: u
                .reasons
                .into_iter()
                .map(|r| match r {
                    v5::UnsubAckReason::Success => 0x00,
                    v5::UnsubAckReason::NoSubscriptionExisted => 0x11,
                    v5::UnsubAckReason::UnspecifiedError => 0x80,
                    v5::UnsubAckReason::ImplementationSpecificError => 0x83,
                    v5::UnsubAckReason::NotAuthorized => 0x87,
                    v5::UnsubAckReason::TopicFilterInvalid => 0x8F,
                    v5::UnsubAckReason::PacketIdentifierInUse => 0x91,
                })
                .collect(),
        },
        v5::Packet::PingReq(_) => Packet::PingReq,
        v5::Packet::PingResp(_) => Packet::PingResp,
        // `DisconnectReasonCode` is `repr(u8)` with the standard's numbers.
        v5::Packet::Disconnect(d) => Packet::Disconnect {
            code: d.reason_code as u8,
        },
        v5::Packet::Auth(_) => Packet::Auth,
    })
}

fn to_v5(packet: &Packet) -> Result<v5::Packet, CodecError> {
    Ok(match packet {
        Packet::Connect(c) => {
            let properties = v5::ConnectProperties {
                receive_maximum: c.receive_max,
                max_packet_size: c.max_packet_bytes,
                ..v5::ConnectProperties::new()
            };
            let will = c.will.as_ref().map(|w| {
                v5::LastWill::new(
                    w.topic.clone(),
                    w.payload.to_vec(),
                    qos5(w.qos),
                    w.retain,
                    None,
                )
            });
            v5::Packet::Connect(
                v5::Connect {
                    keep_alive: c.keep_alive_s,
                    client_id: c.client_id.clone(),
                    clean_start: c.clean,
                    properties: Some(properties),
                },
                will,
                c.login
                    .as_ref()
                    .map(|(u, p)| v5::Login::new(u.clone(), p.clone())),
            )
        }
        Packet::ConnAck(a) => {
            let properties = v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: a.receive_max,
                max_qos: a.max_qos,
                retain_available: a.retain_available.map(u8::from),
                max_packet_size: a.max_packet_bytes,
                assigned_client_identifier: a.assigned_client_id.clone(),
                topic_alias_max: None,
                reason_string: None,
                user_properties: Vec::new(),
                // The embedded broker has neither (§3.2.2.3.12, 3.2.2.3.13).
                wildcard_subscription_available: None,
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: a.server_keep_alive_s,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            };
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: a.session_present,
                code: connack_reason(a.code)?,
                properties: Some(properties),
            })
        }
        Packet::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: qos5(p.qos),
            retain: p.retain,
            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
            pkid: p.pkid,
            payload: p.payload.clone(),
            properties: None,
        }),
        Packet::PubAck { pkid, code } => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: puback_reason(*code)?,
            properties: None,
        }),
        Packet::PubRec { pkid, code } => v5::Packet::PubRec(v5::PubRec {
            pkid: *pkid,
            reason: pubrec_reason(*code)?,
            properties: None,
        }),
        Packet::PubRel { pkid, code } => v5::Packet::PubRel(v5::PubRel {
            pkid: *pkid,
            reason: match code {
                0 => v5::PubRelReason::Success,
                0x92 => v5::PubRelReason::PacketIdentifierNotFound,
                other => return Err(CodecError::UnknownCode(*other)),
            },
            properties: None,
        }),
        Packet::PubComp { pkid, code } => v5::Packet::PubComp(v5::PubComp {
            pkid: *pkid,
            reason: match code {
                0 => v5::PubCompReason::Success,
                0x92 => v5::PubCompReason::PacketIdentifierNotFound,
                other => return Err(CodecError::UnknownCode(*other)),
            },
            properties: None,
        }),
        Packet::Subscribe { pkid, filters } => v5::Packet::Subscribe(v5::Subscribe {
            pkid: *pkid,
            filters: filters
                .iter()
                .map(|f| v5::Filter {
                    path: f.path.clone(),
                    qos: qos5(f.qos),
                    nolocal: f.no_local,
                    preserve_retain: f.retain_as_published,
                    retain_forward_rule: v5::RetainForwardRule::OnEverySubscribe,
                })
                .collect(),
            properties: None,
        }),
        Packet::SubAck { pkid, codes } => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: codes
                .iter()
                .map(|&c| suback_reason(c))
                .collect::<Result<_, _>>()?,
            properties: None,
        }),
        Packet::Unsubscribe { pkid, filters } => v5::Packet::Unsubscribe(v5::Unsubscribe {
            pkid: *pkid,
            filters: filters.clone(),
            properties: None,
        }),
        Packet::UnsubAck { pkid, codes } => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            reasons: codes
                .iter()
                .map(|&c| match c {
                    0x00 => Ok(v5::UnsubAckReason::Success),
                    0x11 => Ok(v5::UnsubAckReason::NoSubscriptionExisted),
                    0x80 => Ok(v5::UnsubAckReason::UnspecifiedError),
                    0x8F => Ok(v5::UnsubAckReason::TopicFilterInvalid),
                    other => Err(CodecError::UnknownCode(other)),
                })
                .collect::<Result<_, _>>()?,
            properties: None,
        }),
        Packet::PingReq => v5::Packet::PingReq(v5::PingReq),
        Packet::PingResp => v5::Packet::PingResp(v5::PingResp),
        Packet::Disconnect { code } => {
            v5::Packet::Disconnect(v5::Disconnect::new(disconnect_reason(*code)?))
        }
        Packet::Auth => return Err(CodecError::UnknownCode(0)),
    })
}

/// MQTT 5 §3.2.2.2 CONNACK reason codes.
const CONNACK_CODES: [(u8, v5::ConnectReturnCode); 22] = [
    (0x00, v5::ConnectReturnCode::Success),
    (0x80, v5::ConnectReturnCode::UnspecifiedError),
    (0x81, v5::ConnectReturnCode::MalformedPacket),
    (0x82, v5::ConnectReturnCode::ProtocolError),
    (0x83, v5::ConnectReturnCode::ImplementationSpecificError),
    (0x84, v5::ConnectReturnCode::UnsupportedProtocolVersion),
    (0x85, v5::ConnectReturnCode::ClientIdentifierNotValid),
    (0x86, v5::ConnectReturnCode::BadUserNamePassword),
    (0x87, v5::ConnectReturnCode::NotAuthorized),
    (0x88, v5::ConnectReturnCode::ServerUnavailable),
    (0x89, v5::ConnectReturnCode::ServerBusy),
    (0x8A, v5::ConnectReturnCode::Banned),
    (0x8C, v5::ConnectReturnCode::BadAuthenticationMethod),
    (0x90, v5::ConnectReturnCode::TopicNameInvalid),
    (0x95, v5::ConnectReturnCode::PacketTooLarge),
    (0x97, v5::ConnectReturnCode::QuotaExceeded),
    (0x99, v5::ConnectReturnCode::PayloadFormatInvalid),
    (0x9A, v5::ConnectReturnCode::RetainNotSupported),
    (0x9B, v5::ConnectReturnCode::QoSNotSupported),
    (0x9C, v5::ConnectReturnCode::UseAnotherServer),
    (0x9D, v5::ConnectReturnCode::ServerMoved),
    (0x9F, v5::ConnectReturnCode::ConnectionRateExceeded),
];

fn connack_code(reason: v5::ConnectReturnCode) -> u8 {
    CONNACK_CODES
        .iter()
        .find(|(_, r)| *r == reason)
        .map_or(0x80, |(c, _)| *c)
}

fn connack_reason(code: u8) -> Result<v5::ConnectReturnCode, CodecError> {
    CONNACK_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, r)| *r)
        .ok_or(CodecError::UnknownCode(code))
}

/// MQTT 5 §3.4.2.1 PUBACK reason codes (PUBREC, §3.5.2.1, has the same).
const PUBACK_CODES: [(u8, v5::PubAckReason); 9] = [
    (0x00, v5::PubAckReason::Success),
    (0x10, v5::PubAckReason::NoMatchingSubscribers),
    (0x80, v5::PubAckReason::UnspecifiedError),
    (0x83, v5::PubAckReason::ImplementationSpecificError),
    (0x87, v5::PubAckReason::NotAuthorized),
    (0x90, v5::PubAckReason::TopicNameInvalid),
    (0x91, v5::PubAckReason::PacketIdentifierInUse),
    (0x97, v5::PubAckReason::QuotaExceeded),
    (0x99, v5::PubAckReason::PayloadFormatInvalid),
];

fn puback_code(reason: v5::PubAckReason) -> u8 {
    PUBACK_CODES
        .iter()
        .find(|(_, r)| *r == reason)
        .map_or(0x80, |(c, _)| *c)
}

fn puback_reason(code: u8) -> Result<v5::PubAckReason, CodecError> {
    PUBACK_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, r)| *r)
        .ok_or(CodecError::UnknownCode(code))
}

fn pubrec_code(reason: v5::PubRecReason) -> u8 {
    match reason {
        v5::PubRecReason::Success => 0x00,
        v5::PubRecReason::NoMatchingSubscribers => 0x10,
        v5::PubRecReason::UnspecifiedError => 0x80,
        v5::PubRecReason::ImplementationSpecificError => 0x83,
        v5::PubRecReason::NotAuthorized => 0x87,
        v5::PubRecReason::TopicNameInvalid => 0x90,
        v5::PubRecReason::PacketIdentifierInUse => 0x91,
        v5::PubRecReason::QuotaExceeded => 0x97,
        v5::PubRecReason::PayloadFormatInvalid => 0x99,
    }
}

fn pubrec_reason(code: u8) -> Result<v5::PubRecReason, CodecError> {
    Ok(match code {
        0x00 => v5::PubRecReason::Success,
        0x10 => v5::PubRecReason::NoMatchingSubscribers,
        0x80 => v5::PubRecReason::UnspecifiedError,
        0x83 => v5::PubRecReason::ImplementationSpecificError,
        0x87 => v5::PubRecReason::NotAuthorized,
        0x90 => v5::PubRecReason::TopicNameInvalid,
        0x91 => v5::PubRecReason::PacketIdentifierInUse,
        0x97 => v5::PubRecReason::QuotaExceeded,
        0x99 => v5::PubRecReason::PayloadFormatInvalid,
        other => return Err(CodecError::UnknownCode(other)),
    })
}

/// MQTT 5 §3.9.3 SUBACK reason codes.
fn suback_code(reason: v5::SubscribeReasonCode) -> u8 {
    match reason {
        v5::SubscribeReasonCode::Success(q) => from_qos5(q).level(),
        v5::SubscribeReasonCode::Failure | v5::SubscribeReasonCode::Unspecified => 0x80,
        v5::SubscribeReasonCode::ImplementationSpecific => 0x83,
        v5::SubscribeReasonCode::NotAuthorized => 0x87,
        v5::SubscribeReasonCode::TopicFilterInvalid => 0x8F,
        v5::SubscribeReasonCode::PkidInUse => 0x91,
        v5::SubscribeReasonCode::QuotaExceeded => 0x97,
        v5::SubscribeReasonCode::SharedSubscriptionsNotSupported => 0x9E,
        v5::SubscribeReasonCode::SubscriptionIdNotSupported => 0xA1,
        v5::SubscribeReasonCode::WildcardSubscriptionsNotSupported => 0xA2,
    }
}

fn suback_reason(code: u8) -> Result<v5::SubscribeReasonCode, CodecError> {
    Ok(match code {
        0..=2 => v5::SubscribeReasonCode::Success(match code {
            0 => m5::QoS::AtMostOnce,
            1 => m5::QoS::AtLeastOnce,
            _ => m5::QoS::ExactlyOnce,
        }),
        0x80 => v5::SubscribeReasonCode::Unspecified,
        0x83 => v5::SubscribeReasonCode::ImplementationSpecific,
        0x87 => v5::SubscribeReasonCode::NotAuthorized,
        0x8F => v5::SubscribeReasonCode::TopicFilterInvalid,
        0x91 => v5::SubscribeReasonCode::PkidInUse,
        0x97 => v5::SubscribeReasonCode::QuotaExceeded,
        0x9E => v5::SubscribeReasonCode::SharedSubscriptionsNotSupported,
        0xA1 => v5::SubscribeReasonCode::SubscriptionIdNotSupported,
        0xA2 => v5::SubscribeReasonCode::WildcardSubscriptionsNotSupported,
        other => return Err(CodecError::UnknownCode(other)),
    })
}

/// MQTT 5 §3.14.2.1 DISCONNECT reason codes we send.
fn disconnect_reason(code: u8) -> Result<v5::DisconnectReasonCode, CodecError> {
    use v5::DisconnectReasonCode as D;
    Ok(match code {
        0x00 => D::NormalDisconnection,
        0x04 => D::DisconnectWithWillMessage,
        0x80 => D::UnspecifiedError,
        0x81 => D::MalformedPacket,
        0x82 => D::ProtocolError,
        0x89 => D::ServerBusy,
        0x8B => D::ServerShuttingDown,
        0x8D => D::KeepAliveTimeout,
        0x8E => D::SessionTakenOver,
        0x8F => D::TopicFilterInvalid,
        0x90 => D::TopicNameInvalid,
        0x93 => D::ReceiveMaximumExceeded,
        0x95 => D::PacketTooLarge,
        0x97 => D::QuotaExceeded,
        other => return Err(CodecError::UnknownCode(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(version: Version, packet: Packet) {
        let mut buf = BytesMut::new();
        encode(version, &packet, &mut buf).unwrap();
        let whole = buf.clone();
        // A partial packet asks for more, never errs.
        let mut part = BytesMut::from(&whole[..whole.len() - 1]);
        assert_eq!(decode(version, &mut part, 1 << 20).unwrap(), None);
        assert_eq!(decode(version, &mut buf, 1 << 20).unwrap(), Some(packet));
        assert!(buf.is_empty());
    }

    /// What rumqttc writes for the same PUBLISH: the oracle for
    /// [`encode_publish`].
    fn rumqttc_publish(version: Version, publish: &Publish) -> BytesMut {
        let mut buf = BytesMut::new();
        let packet = Packet::Publish(publish.clone());
        match version {
            Version::V311 => {
                to_v4(&packet).unwrap().write(&mut buf, usize::MAX).unwrap();
            }
            Version::V5 => {
                to_v5(&packet).unwrap().write(&mut buf, None).unwrap();
            }
        }
        buf
    }

    fn ours(version: Version, p: &Publish) -> BytesMut {
        let mut buf = BytesMut::from(&b"kept"[..]);
        encode_publish(
            version, &p.topic, &p.payload, p.qos, p.retain, p.dup, p.pkid, &mut buf,
        )
        .unwrap();
        assert_eq!(&buf[..4], b"kept", "appends, never overwrites");
        buf.split_off(4)
    }

    #[test]
    fn publish_is_written_as_rumqttc_writes_it() {
        use quickcheck::{Gen, QuickCheck};
        fn same(
            topic: String,
            payload: Vec<u8>,
            (qos, retain, dup, pkid): (u8, bool, bool, u16),
        ) -> bool {
            let qos = [Qos::AtMostOnce, Qos::AtLeastOnce, Qos::ExactlyOnce][usize::from(qos % 3)];
            let publish = Publish {
                topic,
                payload: payload.into(),
                qos,
                retain,
                dup,
                pkid: if qos == Qos::AtMostOnce {
                    0
                } else {
                    pkid.max(1)
                },
            };
            [Version::V311, Version::V5]
                .into_iter()
                .all(|v| ours(v, &publish) == rumqttc_publish(v, &publish))
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(60, 0x6d71_7474_7075_6221))
            .tests(5_000)
            .quickcheck(same as fn(String, Vec<u8>, (u8, bool, bool, u16)) -> bool);
        // Remaining Lengths at each width's edges (§2.2.3: 1 to 4 bytes).
        for len in [0, 120, 121, 122, 16_375, 16_376, 2_097_143, 2_097_144] {
            for (version, qos) in [
                (Version::V311, Qos::AtMostOnce),
                (Version::V5, Qos::ExactlyOnce),
            ] {
                let publish = Publish {
                    topic: "ward/bed-1".into(),
                    payload: vec![7; len].into(),
                    qos,
                    retain: false,
                    dup: false,
                    pkid: if qos == Qos::AtMostOnce { 0 } else { 9 },
                };
                assert_eq!(
                    ours(version, &publish),
                    rumqttc_publish(version, &publish),
                    "{version} {len}"
                );
            }
        }
    }

    #[test]
    fn a_publish_that_cannot_be_framed_is_refused() {
        let mut buf = BytesMut::new();
        let long = "t".repeat(65_536);
        assert!(matches!(
            encode_publish(
                Version::V5,
                &long,
                b"",
                Qos::AtMostOnce,
                false,
                false,
                0,
                &mut buf
            ),
            Err(CodecError::Invalid(_))
        ));
        assert!(matches!(
            encode_publish(
                Version::V311,
                "a",
                b"",
                Qos::AtLeastOnce,
                false,
                false,
                0,
                &mut buf
            ),
            Err(CodecError::Invalid(_))
        ));
        let huge = vec![0; MAX_REMAINING];
        assert!(matches!(
            encode_publish(
                Version::V311,
                "a",
                &huge,
                Qos::AtMostOnce,
                false,
                false,
                0,
                &mut buf
            ),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(buf.is_empty(), "nothing written for a refused packet");
    }

    #[test]
    fn packets_round_trip_in_both_versions() {
        for version in [Version::V311, Version::V5] {
            let will = Publish {
                topic: "s/p1/offline".into(),
                payload: Bytes::from_static(b"offline"),
                qos: Qos::AtLeastOnce,
                retain: true,
                dup: false,
                pkid: 0,
            };
            round_trip(
                version,
                Packet::Connect(Connect {
                    client_id: "dev-1".into(),
                    keep_alive_s: 30,
                    clean: true,
                    will: Some(will),
                    receive_max: (version == Version::V5).then_some(10),
                    max_packet_bytes: (version == Version::V5).then_some(4096),
                    login: Some(("medtwin".into(), "s3cret".into())),
                }),
            );
            round_trip(
                version,
                Packet::Publish(Publish {
                    topic: "a/b".into(),
                    payload: Bytes::from_static(b"{}"),
                    qos: Qos::ExactlyOnce,
                    retain: false,
                    dup: true,
                    pkid: 7,
                }),
            );
            round_trip(version, Packet::PubAck { pkid: 3, code: 0 });
            round_trip(
                version,
                Packet::PubComp {
                    pkid: 65535,
                    code: 0,
                },
            );
            round_trip(
                version,
                Packet::SubAck {
                    pkid: 9,
                    codes: vec![0, 1, 2, 0x80],
                },
            );
        }
        round_trip(
            Version::V5,
            Packet::PubAck {
                pkid: 3,
                code: 0x97,
            },
        );
        round_trip(
            Version::V5,
            Packet::PubRec {
                pkid: 4,
                code: 0x87,
            },
        );
        round_trip(Version::V5, Packet::Disconnect { code: 0x8E });
        round_trip(Version::V5, Packet::Disconnect { code: 0 });
        // Reason code and an empty property block, as other brokers send.
        let mut buf = BytesMut::from(&[0xE0, 0x02, 0x8B, 0x00, 0xC0, 0x00][..]);
        assert_eq!(
            decode(Version::V5, &mut buf, 1024).unwrap(),
            Some(Packet::Disconnect { code: 0x8B })
        );
        assert_eq!(
            decode(Version::V5, &mut buf, 1024).unwrap(),
            Some(Packet::PingReq)
        );
    }

    #[test]
    fn connect_level_reads_the_protocol_level() {
        for (version, level) in [(Version::V311, 4), (Version::V5, 5)] {
            let mut buf = BytesMut::new();
            let connect = Connect {
                client_id: "x".into(),
                keep_alive_s: 0,
                clean: true,
                will: None,
                receive_max: None,
                max_packet_bytes: None,
                login: None,
            };
            encode(version, &Packet::Connect(connect), &mut buf).unwrap();
            assert_eq!(connect_level(&buf, 1024).unwrap(), Some(level));
            assert_eq!(connect_level(&buf[..5], 1024).unwrap(), None);
        }
        assert!(connect_level(&[0x30, 0], 1024).is_err());
    }
}
