//! General acknowledgements (`ACK`): MSH, MSA (acknowledgement code and
//! the control id it answers), and an ERR segment when the message was
//! not accepted (refs: HL7, "ACK").

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::message::{Er7Writer, Message};

/// MSA-1, HL7 table 0008: original mode (`AA`/`AE`/`AR`) and enhanced
/// mode commit acknowledgements (`CA`/`CE`/`CR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AckCode {
    /// Application accept.
    AA,
    /// Application error: the message was read but could not be processed.
    AE,
    /// Application reject: the message was refused (type, version,
    /// structure).
    AR,
    /// Commit accept.
    CA,
    /// Commit error.
    CE,
    /// Commit reject.
    CR,
}

impl AckCode {
    /// The two letters.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// True for `AA` and `CA`: the message was taken.
    pub fn is_accept(self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }
}

impl fmt::Display for AckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AckCode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim() {
            "AA" => AckCode::AA,
            "AE" => AckCode::AE,
            "AR" => AckCode::AR,
            "CA" => AckCode::CA,
            "CE" => AckCode::CE,
            "CR" => AckCode::CR,
            _ => return Err(()),
        })
    }
}

/// A parsed acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the control id of the message answered.
    pub control_id: String,
    /// ERR-3-1, the HL7 error code (table 0357), if any.
    pub error_code: Option<String>,
    /// The error's text: ERR-8 (user message), else ERR-7 (diagnostics),
    /// else ERR-3-2, else MSA-3 (the pre-2.5 text message).
    pub error_text: Option<String>,
}

/// An answer that is not an acknowledgement.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AckError {
    /// Not an HL7 message.
    #[error("answer is not HL7: {0}")]
    Parse(#[from] crate::ParseError),
    /// No MSA segment.
    #[error("answer has no MSA segment")]
    NoMsa,
    /// MSA-1 is not one of table 0008's codes.
    #[error("MSA-1 is {0:?}, not an acknowledgement code")]
    BadCode(String),
}

/// What an ACK tells about a message it does not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckErrorInfo<'a> {
    /// HL7 error code, table 0357 (101 required field missing, 102 data
    /// type error, 200 unsupported message type, 207 application internal
    /// error, ...).
    pub code: u16,
    /// Its text.
    pub text: &'a str,
}

/// The code an answer to `original` uses for the outcome `code` (given in
/// original-mode terms): a message that values MSH-15 or MSH-16 asks for
/// enhanced-mode acknowledgement, whose accept (commit) acknowledgement is
/// `CA`/`CE`/`CR` (IHE PCD-01 and PCD-04 messages send `AL`/`NE`: one
/// commit acknowledgement, no application one); otherwise original mode,
/// `AA`/`AE`/`AR` (refs: HL7, "ACK").
pub fn ack_code_for(original: Option<&Message>, code: AckCode) -> AckCode {
    let enhanced = original.is_some_and(|m| m.get("MSH-15").is_some() || m.get("MSH-16").is_some());
    match (enhanced, code) {
        (true, AckCode::AA) => AckCode::CA,
        (true, AckCode::AE) => AckCode::CE,
        (true, AckCode::AR) => AckCode::CR,
        (false, AckCode::CA) => AckCode::AA,
        (false, AckCode::CE) => AckCode::AE,
        (false, AckCode::CR) => AckCode::AR,
        (_, c) => c,
    }
}

/// The text table 0357 gives an HL7 error code.
pub fn error_code_text(code: u16) -> &'static str {
    match code {
        0 => "Message accepted",
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        204 => "Unknown key identifier",
        205 => "Duplicate key identifier",
        206 => "Application record locked",
        _ => "Application internal error",
    }
}

/// Builds the `ACK` answering `original` (its parsed form, if it could be
/// parsed; `control_id` is MSA-2, from the message or from
/// [`crate::control_id`] on its raw bytes): MSH with sender and receiver
/// swapped, the original's trigger event, `ACK` structure, v2.6; MSA;
/// ERR (error code, severity `E`, the text as user message) when `error`
/// is given. `time` is MSH-7 (HL7 DTM), `ack_id` MSH-10.
pub fn build_ack(
    original: Option<&Message>,
    control_id: &str,
    code: AckCode,
    error: Option<AckErrorInfo<'_>>,
    time: &str,
    ack_id: &str,
) -> String {
    let get = |p: &str| original.and_then(|m| m.get(p)).unwrap_or("");
    let comps = |p: &str| -> Vec<String> {
        (1..=3)
            .map(|c| get(&format!("{p}-{c}")).to_owned())
            .collect()
    };
    let (recv_app, recv_fac) = (comps("MSH-3"), get("MSH-4"));
    let (send_app, send_fac) = (comps("MSH-5"), get("MSH-6"));
    let event = get("MSH-9-2");
    let mut w = Er7Writer::new();
    let send: Vec<&str> = send_app.iter().map(String::as_str).collect();
    let recv: Vec<&str> = recv_app.iter().map(String::as_str).collect();
    w.msh()
        .comps(&send)
        .field(send_fac)
        .comps(&recv)
        .field(recv_fac)
        .field(time)
        .empty(1)
        .comps(&["ACK", event, "ACK"])
        .field(ack_id)
        .field(original.and_then(|m| m.get("MSH-11")).unwrap_or("P"))
        .field("2.6");
    w.segment("MSA").field(code.as_str()).field(control_id);
    if let Some(e) = error {
        let code_text = e.code.to_string();
        w.segment("ERR")
            .empty(2)
            .comps(&[&code_text, error_code_text(e.code), "HL70357"])
            .field("E")
            .empty(3)
            .field(e.text);
    }
    w.finish()
}

/// Reads an acknowledgement (any message with an MSA segment).
pub fn parse_ack(raw: &[u8]) -> Result<Ack, AckError> {
    let m = Message::parse_bytes(raw)?;
    let msa = m.segment("MSA", 1).ok_or(AckError::NoMsa)?;
    let code_text = msa.get(1, 1).unwrap_or("");
    let code = code_text
        .parse()
        .map_err(|()| AckError::BadCode(crate::error::clip(code_text, 16)))?;
    let err = m.segment("ERR", 1);
    let error_text = err
        .and_then(|e| e.get(8, 1).or_else(|| e.get(7, 1)).or_else(|| e.get(3, 2)))
        .or_else(|| msa.get(3, 1))
        .map(str::to_owned);
    Ok(Ack {
        code,
        control_id: msa.get(2, 1).unwrap_or("").to_owned(),
        error_code: err.and_then(|e| e.get(3, 1)).map(str::to_owned),
        error_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_build_and_parse_with_and_without_errors() {
        let orig = Message::parse(
            "MSH|^~\\&|SRC^0011^EUI-64|SF|DST|DF|20260101000000+0000||ORU^R40^ORU_R40|C-7|P|2.6\r",
        )
        .unwrap();
        let ok = build_ack(
            Some(&orig),
            "C-7",
            AckCode::AA,
            None,
            "20260101000001+0000",
            "A1",
        );
        let m = Message::parse(&ok).unwrap();
        assert_eq!(m.get("MSH-3"), Some("DST"));
        assert_eq!(m.get("MSH-5"), Some("SRC"));
        assert_eq!(m.get("MSH-5-2"), Some("0011"));
        assert_eq!(m.message_type(), ("ACK", "R40", "ACK"));
        assert!(m.segment("ERR", 1).is_none());
        let ack = parse_ack(ok.as_bytes()).unwrap();
        assert_eq!((ack.code, ack.control_id.as_str()), (AckCode::AA, "C-7"));
        assert!(ack.code.is_accept());

        let err = AckErrorInfo {
            code: 101,
            text: "PID-3-1 is missing | really",
        };
        let nak = build_ack(
            Some(&orig),
            "C-7",
            AckCode::AE,
            Some(err),
            "20260101000001+0000",
            "A2",
        );
        let ack = parse_ack(nak.as_bytes()).unwrap();
        assert_eq!(ack.code, AckCode::AE);
        assert!(!ack.code.is_accept());
        assert_eq!(ack.error_code.as_deref(), Some("101"));
        assert_eq!(
            ack.error_text.as_deref(),
            Some("PID-3-1 is missing | really")
        );

        // An old-style NAK with MSA-3 only.
        let old = parse_ack(b"MSH|^~\\&|||||||ACK|1|P|2.3\rMSA|AR|C-9|no thanks\r").unwrap();
        assert_eq!(old.code, AckCode::AR);
        assert_eq!(old.error_text.as_deref(), Some("no thanks"));
        assert_eq!(parse_ack(b"MSH|^~\\&|\rPID|1\r"), Err(AckError::NoMsa));
        assert!(matches!(
            parse_ack(b"MSH|^~\\&|\rMSA|OK|1\r"),
            Err(AckError::BadCode(_))
        ));
        // PCD messages (MSH-15 AL, MSH-16 NE) get commit acknowledgements.
        let pcd =
            Message::parse("MSH|^~\\&|A||||20260101||ORU^R01^ORU_R01|1|P|2.6|||AL|NE\r").unwrap();
        assert_eq!(ack_code_for(Some(&pcd), AckCode::AA), AckCode::CA);
        assert_eq!(ack_code_for(Some(&pcd), AckCode::AE), AckCode::CE);
        assert_eq!(ack_code_for(Some(&pcd), AckCode::AR), AckCode::CR);
        assert_eq!(ack_code_for(Some(&orig), AckCode::AE), AckCode::AE);
        assert_eq!(ack_code_for(None, AckCode::CR), AckCode::AR);
        for c in ["AA", "AE", "AR", "CA", "CE", "CR"] {
            assert_eq!(c.parse::<AckCode>().unwrap().as_str(), c);
        }
    }
}
