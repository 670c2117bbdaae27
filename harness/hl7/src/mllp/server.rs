//! A bounded MLLP server: a cap on connections and frame size, an idle
//! read timeout, a write timeout, a shutdown deadline, every refusal
//! counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use medtwin_tls::rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use super::codec::{FrameError, MllpCodec};

/// The server's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest frame read; a larger one closes the connection.
    pub max_frame_bytes: usize,
    /// A connection with no complete frame for this long is closed.
    pub read_timeout: Duration,
    /// Longest wait to write an ACK.
    pub write_timeout: Duration,
    /// Most connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// After shutdown is asked, how long open connections may finish.
    pub shutdown_deadline: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_frame_bytes: crate::MAX_MESSAGE_BYTES,
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_deadline: Duration::from_secs(2),
        }
    }
}

/// What the server has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed on arrival (over `max_connections`).
    pub refused_connections: u64,
    /// Frames read and handed to the handler.
    pub messages: u64,
    /// Frames over the cap (the connection is closed).
    pub too_large: u64,
    /// Bytes that were not MLLP frames (the connection is closed).
    pub malformed_frames: u64,
    /// Connections closed for want of a frame within the read timeout.
    pub read_timeouts: u64,
    /// ACKs that could not be written in time.
    pub write_failures: u64,
    /// Messages the handler chose not to answer.
    pub unanswered: u64,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: u64,
    /// TLS handshakes that failed, by cause (see `tls_failures`).
    pub tls_failed: medtwin_tls::FailureCounts,
}

impl ServerStats {
    /// The failed TLS handshakes by cause name, only the causes seen.
    pub fn tls_failures(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.tls_failed.iter()
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused_connections: AtomicU64,
    messages: AtomicU64,
    too_large: AtomicU64,
    malformed_frames: AtomicU64,
    read_timeouts: AtomicU64,
    write_failures: AtomicU64,
    unanswered: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    tls_failed: medtwin_tls::FailureCounter,
}

fn snapshot(c: &Counters) -> ServerStats {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    ServerStats {
        connections: l(&c.connections),
        refused_connections: l(&c.refused_connections),
        messages: l(&c.messages),
        too_large: l(&c.too_large),
        malformed_frames: l(&c.malformed_frames),
        read_timeouts: l(&c.read_timeouts),
        write_failures: l(&c.write_failures),
        unanswered: l(&c.unanswered),
        dropped_at_shutdown: l(&c.dropped_at_shutdown),
        tls_failed: c.tls_failed.snapshot(),
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    addr: std::net::SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    /// The accept loop (it owns the connections: aborting it drops them).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    /// Dropping a server stops it at once.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Its counts so far.
    pub fn stats(&self) -> ServerStats {
        snapshot(&self.counters)
    }

    /// Stops accepting, lets open connections finish the message in hand
    /// for at most the shutdown deadline, drops the rest; returns the
    /// final counts.
    pub async fn shutdown(mut self) -> ServerStats {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        snapshot(&self.counters)
    }
}

/// Serves MLLP on `listener`: each frame read is given to `handler`,
/// whose answer (an ACK, usually from [`crate::build_ack`]) is written
/// back; `None` leaves the message unanswered (counted). The handler runs
/// on the connection's task: keep it quick and non-blocking.
pub fn serve<H>(listener: TcpListener, handler: H, limits: ServerLimits) -> Server
where
    H: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    serve_tls(listener, handler, limits, None)
}

/// Serves like [`serve`], over TLS when `tls` is given: the handshake must
/// finish within the read timeout; a failed one closes the connection and
/// is counted by cause ([`ServerStats::tls_failures`]).
pub fn serve_tls<H>(
    listener: TcpListener,
    handler: H,
    limits: ServerLimits,
    tls: Option<Arc<ServerConfig>>,
) -> Server
where
    H: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        Arc::new(handler),
        limits,
        tls,
        counters.clone(),
        stopped,
    ));
    Server {
        addr,
        counters,
        stop,
        task: Some(task),
    }
}

async fn accept_loop<H>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: ServerLimits,
    tls: Option<Arc<ServerConfig>>,
    counters: Arc<Counters>,
    mut stopped: watch::Receiver<bool>,
) where
    H: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            a = listener.accept() => a,
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or similar: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            bump(&counters.refused_connections);
            drop(stream);
            continue;
        }
        bump(&counters.connections);
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::Relaxed);
        let (handler, counters, open, stopped) = (
            handler.clone(),
            counters.clone(),
            open.clone(),
            stopped.clone(),
        );
        let tls = tls.clone();
        conns.spawn(async move {
            match tls {
                None => connection(stream, &*handler, limits, &counters, stopped).await,
                Some(tls) => match medtwin_tls::accept(tls, stream, limits.read_timeout).await {
                    Ok(stream) => connection(stream, &*handler, limits, &counters, stopped).await,
                    Err(error) => {
                        counters.tls_failed.record(&error);
                    }
                },
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if timeout(limits.shutdown_deadline, drain).await.is_err() {
        counters
            .dropped_at_shutdown
            .fetch_add(conns.len() as u64, Ordering::Relaxed);
        conns.shutdown().await;
    }
}

async fn connection<H, S>(
    stream: S,
    handler: &H,
    limits: ServerLimits,
    counters: &Counters,
    mut stopped: watch::Receiver<bool>,
) where
    H: Fn(&[u8]) -> Option<Vec<u8>>,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut framed = Framed::new(stream, MllpCodec::new(limits.max_frame_bytes));
    loop {
        let next = tokio::select! {
            _ = stopped.changed() => return,
            n = timeout(limits.read_timeout, framed.next()) => n,
        };
        let frame = match next {
            Err(_) => {
                bump(&counters.read_timeouts);
                return;
            }
            Ok(None) | Ok(Some(Err(FrameError::Io(_) | FrameError::Truncated { .. }))) => return,
            Ok(Some(Err(FrameError::TooLarge { .. }))) => {
                bump(&counters.too_large);
                return;
            }
            Ok(Some(Err(FrameError::Garbage { .. }))) => {
                bump(&counters.malformed_frames);
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        bump(&counters.messages);
        let Some(answer) = handler(&frame) else {
            bump(&counters.unanswered);
            continue;
        };
        match timeout(limits.write_timeout, framed.send(answer.as_slice())).await {
            Ok(Ok(())) => {}
            _ => {
                bump(&counters.write_failures);
                return;
            }
        }
    }
}
