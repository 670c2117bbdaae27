//! IHE ACM (PCD-04) alarms in: ORU^R40 over MLLP (`docs/intakes/acm.md`).
//!
//! An MLLP listener, as an alarm manager's alert consumer: each `ORU^R40`
//! is read (through the scenario's `[alerts.mapping]` HL7 paths when there
//! is one, as a PCD-04 report otherwise) and answered: accepted once
//! taken, an error with an ERR naming what could not be read, a reject for
//! a message that is not an `ORU^R40` (or not HL7); in enhanced mode
//! (`CA`/`CE`/`CR`) when the report asks for it, as PCD-04's MSH-15 `AL`
//! does, in original mode (`AA`/`AE`/`AR`) otherwise. An alarm's `start` is the alert the
//! checker judges ([`Inbox::accept`]); its other phases (`continue`,
//! `update`, `escalate`, `end`, ...) go to the alert history. Nothing is
//! dropped: every refusal is counted with a sample. Bounded like the
//! webhook: 64 KiB frames, a cap on connections, an idle timeout, a
//! shutdown deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use medtwin_hl7::mllp::{Server, ServerLimits, serve_tls};
use medtwin_hl7::time::dtm_of;
use medtwin_hl7::{
    AckCode, AckErrorInfo, AlertReport, EventPhase, Message, ack_code_for, build_ack, control_id,
};
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
    scheme: &'static str,
}

impl AcmIntake {
    /// Listens on `listen` (loopback, a free port, by default).
    pub async fn start(listen: SocketAddr, ctx: &IntakeContext) -> std::io::Result<AcmIntake> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let (inbox, parser) = (Arc::clone(&ctx.inbox), Arc::clone(&ctx.parser));
        let tls = ctx.server_tls.as_ref().map(|t| t.config());
        let scheme = if tls.is_some() { "mllps" } else { "mllp" };
        let server = serve_tls(
            listener,
            move |raw: &[u8]| Some(receive(&inbox, &parser, raw)),
            limits(),
            tls,
        );
        Ok(AcmIntake {
            server,
            inbox: Arc::clone(&ctx.inbox),
            scheme,
        })
    }

    /// The `mllp://host:port` (or `mllps://`) alarm sources send to.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.server.local_addr())
    }
}

impl Intake for AcmIntake {
    fn address(&self) -> String {
        self.url()
    }

    async fn stop(self) {
        let stats = self.server.shutdown().await;
        for (cause, n) in stats.tls_failures() {
            self.inbox.count("acm", cause, n);
        }
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
        build_ack(msg, &id, ack_code_for(msg, code), error, &now, &ack_id).into_bytes()
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use medtwin_hl7::mllp::{ClientConfig, MllpClient, SendError};
    use medtwin_hl7::{AlertReport, EventPhase, Pcd01Options};
    use medtwin_wire::{AlertMessage, Priority};

    use super::*;
    use crate::clock::SimClock;
    use crate::scenario::Clock;
    use crate::scenario::interop::MappingSpec;

    fn context(mapping: Option<&MappingSpec>) -> IntakeContext {
        let clock = Arc::new(SimClock::new(Clock::Virtual, Instant::now()));
        IntakeContext {
            inbox: Inbox::new(clock),
            parser: Arc::new(AlertParser::new(mapping)),
            token: "t".into(),
            secret: None,
            mqtt_broker: None,
            server_tls: None,
            tls: Default::default(),
        }
    }

    fn report(phase: EventPhase, control_id: &str) -> String {
        let alert = AlertMessage {
            schema: None,
            alert_id: Some("bed-1/news2-high/1".into()),
            patient_id: "bed-1".into(),
            kind: "news2-high".into(),
            priority: Priority::High,
            measurement_time: Some("2026-01-01T08:00:00Z".into()),
            score: Some(7),
        };
        AlertReport::from_alert(&alert, phase, "2026-01-01T08:00:01Z", None)
            .encode(&Pcd01Options::default(), control_id)
    }

    async fn nak(client: &MllpClient, text: &str) -> (AckCode, Option<String>) {
        match client.send(text.as_bytes()).await {
            Err(SendError::Nak {
                code, error_code, ..
            }) => (code, error_code),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn starts_are_judged_later_phases_recorded_and_refusals_counted() {
        let ctx = context(None);
        let intake = AcmIntake::start(SocketAddr::from(([127, 0, 0, 1], 0)), &ctx)
            .await
            .unwrap();
        let client = MllpClient::new(
            intake.url().trim_start_matches("mllp://"),
            ClientConfig::default(),
        );
        client
            .send(report(EventPhase::Start, "C1").as_bytes())
            .await
            .unwrap();
        client
            .send(report(EventPhase::End, "C2").as_bytes())
            .await
            .unwrap();
        use medtwin_hl7::AckCode::{AR, CE, CR};
        // Unusable delimiters (two the same): not HL7, though its control
        // id can still be answered.
        let not_hl7 = "MSH|^^\\&|||||||ORU^R40|N1|P|2.6\r";
        assert_eq!(nak(&client, not_hl7).await.0, AR);
        let r01 = report(EventPhase::Start, "C3").replace("ORU^R40^ORU_R40", "ORU^R01^ORU_R01");
        assert_eq!(nak(&client, &r01).await, (CR, Some("200".into())));
        let no_patient = report(EventPhase::Start, "C4").replace("bed-1^^^MEDTWIN^PI", "");
        assert_eq!(nak(&client, &no_patient).await, (CE, Some("101".into())));
        client.close().await;
        intake.stop().await;
        let (alerts, refused, heard) = ctx.inbox.take_all();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(
            (a.via, a.message.kind.as_str(), a.message.priority),
            ("acm", "news2-high", Priority::High)
        );
        assert_eq!(
            a.message.measurement_time.as_deref(),
            Some("2026-01-01T08:00:00.000Z")
        );
        assert_eq!(a.message.score, Some(7));
        assert_eq!(heard.history.len(), 1);
        assert_eq!(heard.history[0].phase, "end");
        assert_eq!(heard.history[0].state.as_deref(), Some("inactive"));
        assert_eq!(refused.malformed, 3, "{refused:?}");
        assert_eq!(refused.samples.len(), 3);
        assert_eq!(heard.counters["acm"]["start"], 1);
        assert_eq!(heard.counters["acm"]["end"], 1);
    }

    #[tokio::test]
    async fn a_mapping_reads_foreign_reports_and_what_it_cannot_read_is_unmapped() {
        let mapping = MappingSpec {
            patient: Some("PID-3-1".into()),
            kind: Some("OBX[1]-5-2".into()),
            priority: Some("OBX[6]-5".into()),
            priorities: [("PH".to_owned(), "high".to_owned())].into(),
            ..MappingSpec::default()
        };
        let ctx = context(Some(&mapping));
        let intake = AcmIntake::start(SocketAddr::from(([127, 0, 0, 1], 0)), &ctx)
            .await
            .unwrap();
        let client = MllpClient::new(
            intake.url().trim_start_matches("mllp://"),
            ClientConfig::default(),
        );
        client
            .send(report(EventPhase::Start, "M1").as_bytes())
            .await
            .unwrap();
        let unreadable = report(EventPhase::Start, "M2").replace("|PH|", "|P?|");
        assert_eq!(nak(&client, &unreadable).await.0, AckCode::CE);
        client.close().await;
        intake.stop().await;
        let (alerts, refused, _) = ctx.inbox.take_all();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].message.kind, "MDCX_EVT_MEDTWIN_NEWS2_HIGH");
        assert_eq!(refused.unmapped, 1, "{refused:?}");
    }
}
