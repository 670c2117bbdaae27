//! HL7 v2 for medtwin, after the IHE Patient Care Device (PCD) Technical
//! Framework: ER7 messages ([`Message`], [`Er7Writer`]), the PCD-01
//! "Communicate PCD Data" `ORU^R01` ([`pcd01`]), the ACM PCD-04 "Report
//! Alert" `ORU^R40` ([`acm`]), acknowledgements ([`ack`]) and MLLP framing,
//! client and server ([`mllp`]).
//!
//! The facts these modules use (segment and field positions, MDC codes,
//! profile identifiers) are copied with their sources into
//! `docs/references.md`, section "HL7 v2, IHE PCD-01 and ACM (PCD-04)";
//! code comments cite that section as "refs: HL7".
//!
//! Depends on no medtwin crate but `medtwin-wire`: the neutral forms it
//! converts to and from are [`medtwin_wire::TelemetryMessage`] and
//! [`medtwin_wire::AlertMessage`].

pub mod ack;
pub mod acm;
mod error;
pub mod mdc;
mod message;
pub mod mllp;
pub mod pcd01;
pub mod time;

pub use ack::{Ack, AckCode, AckError, AckErrorInfo, ack_code_for, build_ack, parse_ack};
pub use acm::{
    AlarmPriority, AlarmState, AlertReport, AlertType, EventPhase, InactivationState, Trigger,
};
pub use error::{DecodeError, ParseError};
pub use message::{
    Delimiters, Er7Writer, Field, MAX_MESSAGE_BYTES, MAX_SEGMENTS, Message, Segment, control_id,
    escape_into, unescape,
};
pub use pcd01::{Pcd01Options, decode_oru_r01, encode_oru_r01};
