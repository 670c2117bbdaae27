//! An MLLP client: one connection, one message at a time, each answered
//! by the ACK whose MSA-2 names it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::codec::Framed;

use super::codec::{FrameError, MllpCodec};
use crate::ack::{Ack, AckCode, parse_ack};

/// Timeouts and limits of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait, from the start of the send, for the ACK.
    pub ack_timeout: Duration,
    /// Largest frame sent or read.
    pub max_frame_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(10),
            max_frame_bytes: crate::MAX_MESSAGE_BYTES,
        }
    }
}

/// Why a message was not acknowledged.
#[derive(Debug, Error)]
pub enum SendError {
    /// Nothing listens at the address.
    #[error("connection refused by {addr}")]
    Refused {
        /// The address.
        addr: String,
    },
    /// No connection within the connect timeout.
    #[error("no connection to {addr} within {timeout:?}")]
    ConnectTimeout {
        /// The address.
        addr: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The connection could not be made for another reason.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed (`medtwin_tls::classify` names why).
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        /// The address.
        addr: String,
        /// The handshake's error.
        #[source]
        source: io::Error,
    },
    /// No ACK answering the message within the ACK timeout.
    #[error("no ACK within {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before answering.
    #[error("connection closed before the ACK")]
    Closed,
    /// The peer reset the connection.
    #[error("connection reset: {0}")]
    Reset(#[source] io::Error),
    /// Another socket failure.
    #[error("i/o: {0}")]
    Io(#[source] io::Error),
    /// The answer is not an MLLP-framed ACK.
    #[error("malformed answer: {0}")]
    MalformedAnswer(String),
    /// The peer refused the message (`AE`, `AR`, `CE`, `CR`).
    #[error("{code}{}{}", error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Nak {
        /// MSA-1.
        code: AckCode,
        /// ERR-3-1, the HL7 error code.
        error_code: Option<String>,
        /// The error's text.
        text: Option<String>,
    },
    /// The message has no MSH-10 to match an ACK by, or is over the cap.
    #[error("message not sendable: {0}")]
    Unsendable(&'static str),
}

impl SendError {
    fn from_io(e: io::Error) -> SendError {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => SendError::Reset(e),
            io::ErrorKind::UnexpectedEof => SendError::Closed,
            _ => SendError::Io(e),
        }
    }

    fn from_frame(e: FrameError) -> SendError {
        match e {
            FrameError::Io(e) => SendError::from_io(e),
            FrameError::Truncated { .. } => SendError::Closed,
            other => SendError::MalformedAnswer(other.to_string()),
        }
    }

    /// True when the connection broke before any answer: a reused
    /// connection the peer had already closed, worth one fresh try.
    fn broken_before_answer(&self) -> bool {
        matches!(self, SendError::Closed | SendError::Reset(_))
    }
}

/// What a client has done, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Connections made.
    pub connects: u64,
    /// Connections made after a broken one.
    pub reconnects: u64,
    /// Messages sent again on a fresh connection because a reused one
    /// turned out closed.
    pub resends: u64,
    /// ACKs read that answered another (earlier) message.
    pub stale_acks: u64,
    /// Sends that timed out waiting for the ACK.
    pub timeouts: u64,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    reconnects: AtomicU64,
    resends: AtomicU64,
    stale_acks: AtomicU64,
    timeouts: AtomicU64,
}

/// A connection's byte stream: plain TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

type Conn = Framed<Box<dyn Io>, MllpCodec>;

/// TLS towards the peer: the client configuration and the name to send.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The rustls configuration (trust, client certificate).
    pub config: Arc<medtwin_tls::rustls::ClientConfig>,
    /// The server name sent (SNI) and checked.
    pub server_name: medtwin_tls::rustls::pki_types::ServerName<'static>,
}

/// An MLLP client for one peer. Sends are serialised (one message
/// awaiting its ACK at a time, as MLLP's original mode requires); a
/// broken connection is dropped and the next send connects again.
pub struct MllpClient {
    addr: String,
    cfg: ClientConfig,
    tls: Option<ClientTls>,
    conn: Mutex<Option<Conn>>,
    counters: Counters,
}

impl std::fmt::Debug for MllpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MllpClient")
            .field("addr", &self.addr)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl MllpClient {
    /// A client for `addr` (`host:port`); it connects on the first send.
    pub fn new(addr: impl Into<String>, cfg: ClientConfig) -> Self {
        MllpClient {
            addr: addr.into(),
            cfg,
            tls: None,
            conn: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// A client for `addr` that speaks MLLP over TLS (as an IHE ATNA
    /// secure node does); the handshake shares the connect timeout.
    pub fn with_tls(addr: impl Into<String>, cfg: ClientConfig, tls: ClientTls) -> Self {
        MllpClient {
            tls: Some(tls),
            ..MllpClient::new(addr, cfg)
        }
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the client has done so far.
    pub fn counters(&self) -> ClientCounters {
        let c = &self.counters;
        ClientCounters {
            connects: c.connects.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            resends: c.resends.load(Ordering::Relaxed),
            stale_acks: c.stale_acks.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
        }
    }

    /// Closes the connection, if open.
    pub async fn close(&self) {
        if let Some(mut conn) = self.conn.lock().await.take() {
            let _ = timeout(Duration::from_secs(1), conn.close()).await;
        }
    }

    /// Sends one ER7 message and waits for the ACK whose MSA-2 is its
    /// MSH-10 (ACKs for other ids, late answers to an earlier message,
    /// are skipped and counted). `AA`/`CA` is `Ok`; any other code is
    /// [`SendError::Nak`]. The ACK timeout runs from the start of the
    /// send, connecting included.
    pub async fn send(&self, message: &[u8]) -> Result<Ack, SendError> {
        let control_id =
            crate::control_id(message).ok_or(SendError::Unsendable("no MSH-10 control id"))?;
        if message.len() > self.cfg.max_frame_bytes {
            return Err(SendError::Unsendable("message over the frame cap"));
        }
        let deadline = Instant::now() + self.cfg.ack_timeout;
        let mut slot = self.conn.lock().await;
        let reused = slot.is_some();
        let result = match self
            .exchange(&mut slot, message, &control_id, deadline)
            .await
        {
            Err(e) if reused && e.broken_before_answer() => {
                self.counters.resends.fetch_add(1, Ordering::Relaxed);
                self.exchange(&mut slot, message, &control_id, deadline)
                    .await
            }
            other => other,
        };
        if matches!(result, Err(SendError::Timeout(_))) {
            self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn exchange(
        &self,
        slot: &mut Option<Conn>,
        message: &[u8],
        control_id: &str,
        deadline: Instant,
    ) -> Result<Ack, SendError> {
        let conn = match slot {
            Some(conn) => conn,
            None => slot.insert(self.connect(deadline).await?),
        };
        let result = Self::send_and_wait(
            conn,
            message,
            control_id,
            deadline,
            &self.counters,
            self.cfg.ack_timeout,
        )
        .await;
        // Keep the connection after an answer (an ACK or a NAK); drop it
        // after anything else, so a late ACK cannot answer the next message.
        if !matches!(result, Ok(_) | Err(SendError::Nak { .. })) {
            *slot = None;
        }
        result
    }

    async fn connect(&self, deadline: Instant) -> Result<Conn, SendError> {
        let limit = self
            .cfg
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let stream = match timeout(limit, TcpStream::connect(&self.addr)).await {
            Err(_) => {
                return Err(SendError::ConnectTimeout {
                    addr: self.addr.clone(),
                    timeout: limit,
                });
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(SendError::Refused {
                    addr: self.addr.clone(),
                });
            }
            Ok(Err(source)) => {
                return Err(SendError::Connect {
                    addr: self.addr.clone(),
                    source,
                });
            }
            Ok(Ok(s)) => s,
        };
        // Latency matters more than packet count: one small frame each way.
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Io> = match &self.tls {
            None => Box::new(stream),
            Some(tls) => {
                let left = limit.max(Duration::from_millis(1));
                let secured = medtwin_tls::connect(
                    Arc::clone(&tls.config),
                    tls.server_name.clone(),
                    stream,
                    left,
                )
                .await
                .map_err(|source| SendError::Tls {
                    addr: self.addr.clone(),
                    source,
                })?;
                Box::new(secured)
            }
        };
        if self.counters.connects.fetch_add(1, Ordering::Relaxed) > 0 {
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Framed::new(
            stream,
            MllpCodec::new(self.cfg.max_frame_bytes),
        ))
    }

    async fn send_and_wait(
        conn: &mut Conn,
        message: &[u8],
        control_id: &str,
        deadline: Instant,
        counters: &Counters,
        ack_timeout: Duration,
    ) -> Result<Ack, SendError> {
        match timeout_at(deadline, conn.send(message)).await {
            Err(_) => return Err(SendError::Timeout(ack_timeout)),
            Ok(Err(e)) => return Err(SendError::from_frame(e)),
            Ok(Ok(())) => {}
        }
        loop {
            let frame: Bytes = match timeout_at(deadline, conn.next()).await {
                Err(_) => return Err(SendError::Timeout(ack_timeout)),
                Ok(None) => return Err(SendError::Closed),
                Ok(Some(Err(e))) => return Err(SendError::from_frame(e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let ack = parse_ack(&frame).map_err(|e| SendError::MalformedAnswer(e.to_string()))?;
            if ack.control_id != control_id {
                counters.stale_acks.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if ack.code.is_accept() {
                return Ok(ack);
            }
            return Err(SendError::Nak {
                code: ack.code,
                error_code: ack.error_code,
                text: ack.error_text,
            });
        }
    }
}
