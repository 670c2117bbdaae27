//! HL7 v2.6 out: ORU^R01 per IHE PCD-01 over MLLP
//! (`docs/transports/hl7-mllp.md`).
//!
//! [`Hl7Encoder`] turns each measurement into the PCD-01 `ORU^R01` of its
//! neutral form ([`JsonEncoder::message`]), a pure function;
//! [`MllpCarrier`] keeps one MLLP connection per lane (a patient's lane is
//! `patient_idx % lanes`, so a patient's messages stay in order on one
//! connection) and waits for each message's ACK: `AA`/`CA` is accepted,
//! `AE`/`AR`/`CE`/`CR` a refusal counted as `hl7_ae` ... with the ERR code
//! as its reason, no ACK within the target's timeout a `timeout`, and a
//! closed, reset or garbled connection a failure of that name.

use std::collections::BTreeMap;
use std::time::SystemTime;

use medtwin_hl7::mllp::{ClientConfig, MllpClient, SendError};
use medtwin_hl7::{Pcd01Options, encode_oru_r01};
use medtwin_sim::Measurement;

use super::json::{JsonEncoder, Names};
pub use super::select::Hl7Options;
use super::select::{AnyCarrier, AnyEncoder, EncodeContext, TargetConfig, Wired};
use super::{Carrier, Cause, Encoder, Failure, Nak, Outgoing, Sent};
use crate::scenario::interop::host_port;

/// MIME type of ER7 bodies (what the file carrier records).
pub const CONTENT_TYPE: &str = "x-application/hl7-v2+er7";

/// The PCD-01 header fields a scenario's `[target.hl7]` sets.
pub fn pcd01_options(options: &Hl7Options) -> Pcd01Options {
    let mut o = Pcd01Options::default();
    let set = |field: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            field.clone_from(v);
        }
    };
    set(&mut o.sending_application, &options.sending_application);
    set(&mut o.sending_facility, &options.sending_facility);
    set(&mut o.receiving_application, &options.receiving_application);
    set(&mut o.receiving_facility, &options.receiving_facility);
    o
}

/// Encodes measurements as IHE PCD-01 `ORU^R01` (ER7, segments ended by
/// `\r`).
#[derive(Clone, Debug)]
pub struct Hl7Encoder {
    json: JsonEncoder,
    options: Pcd01Options,
}

impl Hl7Encoder {
    /// An encoder whose simulated time zero is the wall time `start`.
    pub fn new(names: Names, start: SystemTime, options: Pcd01Options) -> Hl7Encoder {
        Hl7Encoder {
            json: JsonEncoder::new(names, start),
            options,
        }
    }
}

impl Encoder for Hl7Encoder {
    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    fn encode(&self, m: &Measurement, out: &mut Vec<u8>) {
        out.extend_from_slice(encode_oru_r01(&self.json.message(m), &self.options).as_bytes());
    }
}

/// Sends each message over MLLP and waits for its ACK; one connection per
/// lane.
pub struct MllpCarrier {
    clients: Vec<MllpClient>,
    destination: String,
}

impl MllpCarrier {
    /// A carrier to `mllp://host:port` (or `host:port`) with `lanes`
    /// connections, each made on its first message; `ack_timeout` bounds
    /// the connect and the wait for each ACK.
    pub fn new(
        url: &str,
        lanes: usize,
        ack_timeout: std::time::Duration,
        tls: Option<&medtwin_tls::ClientTls>,
    ) -> anyhow::Result<MllpCarrier> {
        let (host, port) =
            host_port(url, "mllp").map_err(|e| anyhow::anyhow!("target url: {e}"))?;
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let cfg = ClientConfig {
            connect_timeout: ack_timeout,
            ack_timeout,
            ..ClientConfig::default()
        };
        let secure = match tls {
            Some(tls) => Some(medtwin_hl7::mllp::ClientTls {
                config: tls.config(),
                server_name: tls.server_name(&host)?,
            }),
            None => None,
        };
        Ok(MllpCarrier {
            clients: (0..lanes.max(1))
                .map(|_| match &secure {
                    Some(tls) => MllpClient::with_tls(addr.clone(), cfg, tls.clone()),
                    None => MllpClient::new(addr.clone(), cfg),
                })
                .collect(),
            destination: if secure.is_some() {
                format!("mllps://{addr}")
            } else {
                format!("mllp://{addr}")
            },
        })
    }
}

/// The sources of an error, joined (the TLS error's own words).
fn chain(e: &dyn std::error::Error) -> String {
    let mut words = Vec::new();
    let mut next = e.source();
    while let Some(source) = next {
        words.push(source.to_string());
        next = source.source();
    }
    words.join(": ")
}

/// The transport's cause of a failed MLLP exchange.
pub fn failure_of(e: &SendError) -> Failure {
    if let Some(tls) = medtwin_tls::classify(e) {
        return Failure::new(Cause::Tls(tls), format!("{e}: {}", chain(e)));
    }
    let cause = match e {
        SendError::Refused { .. } => Cause::ConnectionRefused,
        SendError::ConnectTimeout { .. } | SendError::Connect { .. } => Cause::Connect,
        SendError::Timeout(_) => Cause::Timeout,
        SendError::Closed => Cause::Closed,
        SendError::Reset(_) => Cause::Reset,
        SendError::Io(_) | SendError::Unsendable(_) => Cause::Io,
        SendError::Tls { .. } => Cause::Tls(medtwin_tls::HandshakeCause::Protocol),
        SendError::MalformedAnswer(_) => Cause::MalformedAnswer,
        SendError::Nak {
            code,
            error_code,
            text,
        } => {
            let failure = Failure::new(Cause::Nak(Nak::Hl7(*code)), e.to_string());
            // The ERR code names the reason (few values, as the report's
            // by-reason counts need); its text is in the detail.
            let reason = match (error_code, text) {
                (Some(c), _) => Some(c.clone()),
                (None, Some(t)) => Some(t.chars().take(64).collect()),
                (None, None) => None,
            };
            return match reason {
                Some(r) => failure.with_reason(r),
                None => failure,
            };
        }
    };
    Failure::new(cause, e.to_string())
}

impl Carrier for MllpCarrier {
    async fn send(&self, batch: &[Outgoing]) -> Sent {
        // One message per send (batch_limit is 1).
        let Some(m) = batch.first() else {
            return Sent::Accepted;
        };
        let client = &self.clients[m.patient_idx as usize % self.clients.len()];
        match client.send(&m.body).await {
            Ok(_) => Sent::Accepted,
            Err(e) => Sent::NotAccepted(failure_of(&e)),
        }
    }

    fn destination(&self) -> &str {
        &self.destination
    }

    async fn close(&self) {
        for c in &self.clients {
            c.close().await;
        }
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in &self.clients {
            let k = c.counters();
            for (name, n) in [
                ("connects", k.connects),
                ("reconnects", k.reconnects),
                ("resends", k.resends),
                ("stale_acks", k.stale_acks),
                ("ack_timeouts", k.timeouts),
            ] {
                *out.entry(name.to_owned()).or_insert(0) += n;
            }
        }
        out
    }
}

/// Makes the MLLP carrier (connections open on first use) and the
/// PCD-01 encoder.
pub async fn connect(cfg: &TargetConfig, ctx: &EncodeContext) -> anyhow::Result<Wired> {
    let tls = cfg.client_tls()?;
    let carrier = MllpCarrier::new(&cfg.url, cfg.lanes, cfg.timeout, tls.as_deref())?;
    Ok(Wired {
        carrier: AnyCarrier::Mllp(carrier),
        encoder: AnyEncoder::Hl7(Hl7Encoder::new(
            ctx.names.clone(),
            ctx.start,
            pcd01_options(&cfg.hl7),
        )),
    })
}

/// The HL7 encoder, for carriers that take any encoding (file, MQTT),
/// with the default `[target.hl7]` header fields.
pub fn encoder(ctx: &EncodeContext) -> anyhow::Result<AnyEncoder> {
    Ok(AnyEncoder::Hl7(Hl7Encoder::new(
        ctx.names.clone(),
        ctx.start,
        Pcd01Options::default(),
    )))
}
