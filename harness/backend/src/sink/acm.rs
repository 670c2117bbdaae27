//! The IHE ACM sink: each alert phase as a PCD-04 `ORU^R40` over MLLP to
//! an alert consumer (medtwin's ACM intake, or a real alarm manager),
//! waiting for its ACK. A start is sent as phase `start`, state `active`;
//! an end (the level re-armed) as `end`, `inactive`, with the same alert
//! id. Connection failures and ACK timeouts are retried by the alert
//! lanes; a NAK is final (the consumer read the report and refused it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use medtwin_hl7::mllp::{ClientConfig, MllpClient, SendError};
use medtwin_hl7::{AlertReport, EventPhase, Pcd01Options};
use medtwin_wire::format_time;

use super::{Outbound, Phase, Undelivered};
use crate::BackendError;

/// How long the sink waits for each ACK (and a connection).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends ACM reports to one MLLP address.
#[derive(Debug)]
pub struct AcmSink {
    client: MllpClient,
    options: Pcd01Options,
    next_id: AtomicU64,
}

impl AcmSink {
    /// A sink to `addr` (`host:port`); it connects on first use.
    pub fn new(addr: &str, tls: Option<&medtwin_tls::ClientTls>) -> Result<AcmSink, BackendError> {
        let options = Pcd01Options {
            sending_application: "MEDTWIN_BACKEND".into(),
            receiving_application: "MEDTWIN_ACM".into(),
            ..Pcd01Options::default()
        };
        let cfg = ClientConfig {
            connect_timeout: ACK_TIMEOUT,
            ack_timeout: ACK_TIMEOUT,
            ..ClientConfig::default()
        };
        let client = match addr.strip_prefix("mllps://") {
            Some(hostport) => {
                let tls =
                    tls.ok_or_else(|| BackendError::Tls(format!("{addr}: no TLS configuration")))?;
                let host = hostport
                    .rsplit_once(':')
                    .map_or(hostport, |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let server_name = tls
                    .server_name(host)
                    .map_err(|e| BackendError::Tls(e.to_string()))?;
                MllpClient::with_tls(
                    hostport,
                    cfg,
                    medtwin_hl7::mllp::ClientTls {
                        config: tls.config(),
                        server_name,
                    },
                )
            }
            None => MllpClient::new(addr.strip_prefix("mllp://").unwrap_or(addr), cfg),
        };
        Ok(AcmSink {
            client,
            options,
            next_id: AtomicU64::new(1),
        })
    }

    /// The report of one phase, stamped now, as ER7.
    pub fn report(&self, out: &Outbound) -> String {
        let phase = match out.phase {
            Phase::Start => EventPhase::Start,
            Phase::End => EventPhase::End,
        };
        let now = format_time(SystemTime::now());
        let report = AlertReport::from_alert(&out.message, phase, &now, None);
        let id = format!("MTB-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        report.encode(&self.options, &id)
    }

    /// Sends one phase and waits for its ACK.
    pub async fn deliver(&self, out: &Outbound) -> Result<(), Undelivered> {
        let text = self.report(out);
        match self.client.send(text.as_bytes()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Undelivered {
                retry: !matches!(e, SendError::Nak { .. } | SendError::Unsendable(_)),
                detail: format!("ACM to {}: {e}", self.client.addr()),
            }),
        }
    }
}
