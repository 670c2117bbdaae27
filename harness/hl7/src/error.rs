//! Errors of reading HL7 v2 text and of decoding messages from it.

use thiserror::Error;

/// An ER7 text that is not an HL7 v2 message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than the cap ([`crate::MAX_MESSAGE_BYTES`] unless told).
    #[error("message of {len} bytes is over the {max}-byte cap")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not UTF-8 (medtwin reads and writes `UNICODE UTF-8`, MSH-18).
    #[error("message is not UTF-8 (at byte {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// Empty, or only segment terminators.
    #[error("empty message")]
    Empty,
    /// The first segment is not MSH.
    #[error("the first segment is {found:?}, not MSH")]
    NoMsh {
        /// What it starts with (at most 16 characters).
        found: String,
    },
    /// MSH-1/MSH-2 do not give five usable, distinct delimiters.
    #[error("MSH-1/MSH-2 delimiters {found:?} are unusable: {why}")]
    BadDelimiters {
        /// The characters found after `MSH`.
        found: String,
        /// What is wrong with them.
        why: &'static str,
    },
    /// A segment whose name is not three upper-case letters or digits.
    #[error("segment {index} has the name {name:?}, not 3 upper-case letters or digits")]
    BadSegmentName {
        /// 1-based position of the segment.
        index: usize,
        /// The name found (at most 16 characters).
        name: String,
    },
    /// More segments than [`crate::MAX_SEGMENTS`].
    #[error("more than {max} segments")]
    TooManySegments {
        /// The cap.
        max: usize,
    },
}

/// A well-formed HL7 message that is not the message a decoder reads.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not parseable at all.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// MSH-9 names another message.
    #[error("MSH-9 is {found:?}, expected {expected}")]
    WrongType {
        /// MSH-9 as found (`ORU^R01^ORU_R01`).
        found: String,
        /// What the decoder reads.
        expected: &'static str,
    },
    /// A field the decoder needs is absent or empty.
    #[error("{path} is missing")]
    Missing {
        /// Where it should be (`PID-3-1`).
        path: String,
    },
    /// A field has a value the decoder cannot read.
    #[error("{path} = {value:?}: {why}")]
    Invalid {
        /// Where (`OBX[3]-5`).
        path: String,
        /// The value found (at most 64 characters).
        value: String,
        /// Why it cannot be read.
        why: String,
    },
}

/// `text` cut to at most `max` characters, for error messages.
pub(crate) fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl DecodeError {
    pub(crate) fn missing(path: impl Into<String>) -> Self {
        DecodeError::Missing { path: path.into() }
    }

    pub(crate) fn invalid(path: impl Into<String>, value: &str, why: impl Into<String>) -> Self {
        DecodeError::Invalid {
            path: path.into(),
            value: clip(value, 64),
            why: why.into(),
        }
    }

    /// The HL7 error code (table 0357) an ACK answering this error carries:
    /// 101 required field missing, 102 data type error, 200 unsupported
    /// message type, 100 segment sequence error for text that is no message.
    pub fn hl7_error_code(&self) -> u16 {
        match self {
            DecodeError::Parse(_) => 100,
            DecodeError::WrongType { .. } => 200,
            DecodeError::Missing { .. } => 101,
            DecodeError::Invalid { .. } => 102,
        }
    }
}
