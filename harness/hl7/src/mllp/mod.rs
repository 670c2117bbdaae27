//! MLLP, the Minimal Lower Layer Protocol HL7 v2 runs on over TCP: each
//! message framed as `0x0B` message `0x1C 0x0D` (refs: HL7, "MLLP"). A
//! tokio-util codec ([`MllpCodec`]), a client that sends a message and
//! waits for the ACK answering it ([`MllpClient`]), and a bounded server
//! that answers each message with its handler's ACK ([`serve`]).

mod client;
mod codec;
mod server;

pub use client::{ClientConfig, ClientCounters, ClientTls, MllpClient, SendError};
pub use codec::{END_BLOCK, FrameError, MllpCodec, START_BLOCK};
pub use server::{Server, ServerLimits, ServerStats, serve, serve_tls};
