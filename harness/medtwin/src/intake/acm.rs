//! IHE ACM (PCD-04) alarms in: ORU^R40 over MLLP (`docs/intakes/acm.md`).
//!
//! An MLLP listener, as an alarm manager's alert consumer: each `ORU^R40`
//! is read (through the scenario's `[alerts.mapping]` HL7 paths when there
//! is one, as a PCD-04 report otherwise) and answered: `AA` once taken,
//! `AE` with an ERR naming what could not be read, `AR` for a message that
//! is not an `ORU^R40` (or not HL7). An alarm's `start` is the alert the
//! checker judges ([`Inbox::accept`]); its other phases (`continue`,
//! `update`, `escalate`, `end`, ...) go to the alert history. Nothing is
//! dropped: every refusal is counted with a sample. Bounded like the
//! webhook: 64 KiB frames, a cap on connections, an idle timeout, a
//! shutdown deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use medtwin_hl7::mllp::{Server, ServerLimits, serve};
use medtwin_hl7::time::dtm_of;
use medtwin_hl7::{AckCode, AckErrorInfo, AlertReport, EventPhase, Message, build_ack, control_id};
use medtwin_wire::MAX_BODY_BYTES;

use super::mapping::AlertParser;
use super::{AnyIntake, HistoryEntry, Inbox, Intake, IntakeContext, Refusal};
use crate::scenario::interop::AcmOptions;

/// The intake's name in the inbox and the report.
pub const VIA: &str = "acm";

/// The listener's limits: frames as large as a webhook body, an idle
/// connection closed after a minute (alarm managers keep one open).
pub fn limits() -> ServerLimits {
    ServerLimits {
        max_frame_bytes: MAX_BODY_BYTES,
        read_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(5),
        max_connections: 64,
        shutdown_deadline: Duration::from_secs(2),
    }
}

/// A running ACM intake.
pub struct AcmIntake {
    server: Server,
    inbox: Arc<Inbox>,
}

impl AcmIntake {
    /// Listens on `listen` (loopback, a free port, by default).
    pub async fn start(listen: SocketAddr, ctx: &IntakeContext) -> std::io::Result<AcmIntake> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let (inbox, parser) = (Arc::clone(&ctx.inbox), Arc::clone(&ctx.parser));
        let server = serve(
            listener,
            move |raw: &[u8]| Some(receive(&inbox, &parser, raw)),
            limits(),
        );
        Ok(AcmIntake {
            server,
            inbox: Arc::clone(&ctx.inbox),
        })
    }

    /// The `mllp://host:port` alarm sources send to.
    pub fn url(&self) -> String {
        format!("mllp://{}", self.server.local_addr())
    }
}

impl Intake for AcmIntake {
    fn address(&self) -> String {
        self.url()
    }

    async fn stop(self) {
        let stats = self.server.shutdown().await;
        for _ in 0..stats.too_large {
            self.inbox
                .refuse(&Refusal::TooLarge, b"(MLLP frame over 64 KiB)");
        }
        for _ in 0..stats.malformed_frames {
            self.inbox
                .refuse(&Refusal::Malformed("not MLLP framing".into()), b"");
        }
        self.inbox
            .add_connections(&medtwin_listen::ConnectionStats {
                accepted: stats.connections,
                too_many_connections: stats.refused_connections,
                dropped_at_shutdown: stats.dropped_at_shutdown,
                idle_closed: stats.read_timeouts,
                ..Default::default()
            });
        self.inbox.count(VIA, "connections", stats.connections);
    }
}

/// Opens the MLLP listener.
pub async fn open(options: &AcmOptions, ctx: &IntakeContext) -> anyhow::Result<AnyIntake> {
    let listen = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let intake = AcmIntake::start(listen, ctx)
        .await
        .with_context(|| format!("cannot listen for ACM alerts (MLLP) on {listen}"))?;
    Ok(AnyIntake::Acm(intake))
}

/// The name a phase is counted under.
fn phase_counter(phase: &EventPhase) -> &'static str {
    match phase {
        EventPhase::Start => "start",
        EventPhase::Continue => "continue",
        EventPhase::Update => "update",
        EventPhase::Escalate => "escalate",
        EventPhase::DeEscalate => "de-escalate",
        EventPhase::End => "end",
        EventPhase::Other(_) => "other_phase",
    }
}

/// Reads one frame into the inbox and returns its ACK.
fn receive(inbox: &Inbox, parser: &AlertParser, raw: &[u8]) -> Vec<u8> {
    let arrival = inbox.arrival();
    let now = dtm_of(SystemTime::now());
    let id = control_id(raw).unwrap_or_default();
    let ack_id = format!("ACK-{id}");
    let ack = |msg: Option<&Message>, code: AckCode, error: Option<(u16, &str)>| {
        let error = error.map(|(code, text)| AckErrorInfo { code, text });
        build_ack(msg, &id, code, error, &now, &ack_id).into_bytes()
    };
    let msg = match Message::parse_bytes(raw) {
        Ok(m) => m,
        Err(e) => {
            let why = format!("not HL7 v2: {e}");
            inbox.refuse(&Refusal::Malformed(why.clone()), raw);
            return ack(None, AckCode::AR, Some((100, &why)));
        }
    };
    let (code, event, _) = msg.message_type();
    if (code, event) != ("ORU", "R40") {
        let why = format!("MSH-9 is {code}^{event}, not ORU^R40 (IHE PCD-04)");
        inbox.refuse(&Refusal::Malformed(why.clone()), raw);
        return ack(Some(&msg), AckCode::AR, Some((200, &why)));
    }
    let report = AlertReport::decode(&msg);
    let mapped = parser.parse_hl7(|path| msg.get(path).map(str::to_owned));
    let (alert, phase, state) = match (mapped, report) {
        (Some(Ok(alert)), report) => {
            // The mapping reads the alert; the phase still comes from the
            // PCD-04 facets when the message has them.
            let (phase, state) = match report {
                Ok(r) => (r.phase, Some(r.state.as_str().to_owned())),
                Err(_) => (EventPhase::Start, None),
            };
            (alert, phase, state)
        }
        (Some(Err(refusal)), _) => {
            let why = match &refusal {
                Refusal::Unmapped(w) | Refusal::Malformed(w) => w.clone(),
                other => format!("{other:?}"),
            };
            inbox.refuse(&refusal, raw);
            return ack(Some(&msg), AckCode::AE, Some((101, &why)));
        }
        (None, Err(e)) => {
            let why = e.to_string();
            inbox.refuse(&Refusal::Malformed(why.clone()), raw);
            return ack(Some(&msg), AckCode::AE, Some((e.hl7_error_code(), &why)));
        }
        (None, Ok(r)) => {
            let state = Some(r.state.as_str().to_owned());
            (r.to_alert_message(), r.phase, state)
        }
    };
    inbox.count(VIA, phase_counter(&phase), 1);
    if phase == EventPhase::Start {
        if let Err(refusal) = inbox.accept(alert, arrival, VIA) {
            // Already counted by the inbox (it is full).
            let why = format!("{refusal:?}");
            return ack(Some(&msg), AckCode::AE, Some((207, &why)));
        }
    } else {
        inbox.history(HistoryEntry {
            via: VIA,
            alert_id: alert.alert_id,
            patient_id: alert.patient_id,
            kind: alert.kind,
            phase: phase.as_str().to_owned(),
            state,
            sim_ms: arrival.sim_ms,
        });
    }
    ack(Some(&msg), AckCode::AA, None)
}
