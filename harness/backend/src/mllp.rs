//! HL7 v2 telemetry in: ORU^R01 (IHE PCD-01) over MLLP, each message
//! decoded into a telemetry message and ingested exactly as
//! `POST /v1/measurements` ingests one, then answered: accepted when
//! taken, an error with an ERR (the HL7 error code and the reason) when it
//! was read but refused, a reject when it is not a PCD-01 `ORU^R01` at
//! all: `CA`/`CE`/`CR` for a message asking for enhanced-mode
//! acknowledgement (PCD-01's MSH-15 `AL`), `AA`/`AE`/`AR` otherwise. Every
//! refusal is counted in the backend's rejections (`bad_hl7` for
//! messages that cannot be decoded, the usual reasons otherwise).

use std::sync::Arc;
use std::time::SystemTime;

use medtwin_hl7::mllp::{Server, ServerLimits, serve_tls};
use medtwin_hl7::time::dtm_of;
use medtwin_hl7::{
    AckCode, AckErrorInfo, DecodeError, Message, ack_code_for, build_ack, control_id,
    decode_oru_r01,
};
use medtwin_sim::Vital;
use tokio::net::TcpListener;

use crate::server::Shared;
use crate::stats::Reason;

/// The run MLLP messages belong to: PCD-01 has no place for medtwin's run
/// header, so one backend serves one HL7 run at a time.
const RUN: &str = "";

/// Serves MLLP on `listener`, ingesting into `shared`.
pub(crate) fn start(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<medtwin_tls::rustls::ServerConfig>>,
) -> Server {
    serve_tls(
        listener,
        move |raw: &[u8]| Some(answer(&shared, raw)),
        ServerLimits::default(),
        tls,
    )
}

/// The ACK for one frame.
fn answer(shared: &Shared, raw: &[u8]) -> Vec<u8> {
    let now = dtm_of(SystemTime::now());
    let id = control_id(raw).unwrap_or_default();
    let ack_id = format!("ACK-{id}");
    let ack = |msg: Option<&Message>, code, error: Option<AckErrorInfo<'_>>| {
        build_ack(msg, &id, ack_code_for(msg, code), error, &now, &ack_id).into_bytes()
    };
    let msg = match Message::parse_bytes(raw) {
        Ok(m) => m,
        Err(e) => {
            shared.reject_undecodable(Reason::BadHl7);
            let text = format!("not an HL7 v2 message: {e}");
            return ack(
                None,
                AckCode::AR,
                Some(AckErrorInfo {
                    code: 100,
                    text: &text,
                }),
            );
        }
    };
    let decoded = match decode_oru_r01(&msg) {
        Ok(d) => d,
        Err(e) => {
            shared.reject_undecodable(Reason::BadHl7);
            let code = if matches!(e, DecodeError::WrongType { .. }) {
                AckCode::AR
            } else {
                AckCode::AE
            };
            let text = e.to_string();
            let error = AckErrorInfo {
                code: e.hl7_error_code(),
                text: &text,
            };
            return ack(Some(&msg), code, Some(error));
        }
    };
    if !decoded.unknown_metrics.is_empty() {
        super::stats::add(
            &shared.counters.unknown_metrics,
            decoded.unknown_metrics.len() as u64,
        );
    }
    let mut message = decoded.message;
    // PCD-01 names each vital by its MDC term; LOINC beside it is optional
    // (medtwin writes it, monitors mostly do not). Fill in the one the
    // wire format expects so only a contradicting LOINC is refused.
    for v in &mut message.values {
        if v.loinc.is_none() {
            v.loinc = Vital::ALL
                .into_iter()
                .find(|vital| vital.code() == v.code)
                .and_then(Vital::loinc)
                .map(str::to_owned);
        }
    }
    match shared.ingest_message(RUN, message) {
        Ok(()) => ack(Some(&msg), AckCode::AA, None),
        Err(refused) => {
            // The backend is full: an application error (207), not the
            // message's fault; otherwise the message broke a rule (102).
            let code = if refused.full { 207 } else { 102 };
            let text = format!("{}: {}", refused.reason, refused.detail);
            ack(
                Some(&msg),
                AckCode::AE,
                Some(AckErrorInfo { code, text: &text }),
            )
        }
    }
}
