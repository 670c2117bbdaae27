//! HTTP listeners that always end. Both of medtwin's servers (the alert
//! webhook and the reference backend) are reachable by any local process,
//! so neither may be held open by one: every connection has a header-read
//! timeout, the number of open connections is capped (more are closed at
//! once, and counted), and [`Server::shutdown`] gives connections a
//! deadline, after which they are dropped (and counted). [`read_body`]
//! reads a request body with a size limit and a timeout, telling a body
//! that was too large, cut off, or too slow apart. [`serve_tls`] serves
//! the same way over TLS: the handshake must finish within the header
//! timeout, and each failed handshake is counted by its cause.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use medtwin_tls::rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 256;
/// How long [`Server::shutdown`] waits for connections before dropping them.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(2);

/// A listener's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Header-read timeout per request.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Shutdown deadline.
    pub shutdown_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown_deadline: SHUTDOWN_DEADLINE,
        }
    }
}

/// What a listener refused or cut, at the connection level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed on arrival: too many were open.
    pub too_many_connections: u64,
    /// Connections closed because a request's headers were too slow (the
    /// client had begun a request and did not finish its headers in time).
    pub header_timeouts: u64,
    /// Keep-alive connections closed after sitting idle for the header
    /// timeout (normal; not a refusal).
    pub idle_closed: u64,
    /// Connections that ended in another protocol or I/O error.
    pub errors: u64,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: u64,
    /// TLS handshakes that failed, by cause (see `tls_failures`).
    pub tls_failed: medtwin_tls::FailureCounts,
}

impl ConnectionStats {
    /// The failed TLS handshakes by cause name (`tls_unknown_ca`, ...),
    /// only the causes seen.
    pub fn tls_failures(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.tls_failed.iter()
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    too_many_connections: AtomicU64,
    header_timeouts: AtomicU64,
    idle_closed: AtomicU64,
    errors: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    tls_failed: medtwin_tls::FailureCounter,
}

impl Counters {
    fn snapshot(&self) -> ConnectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            accepted: get(&self.accepted),
            too_many_connections: get(&self.too_many_connections),
            header_timeouts: get(&self.header_timeouts),
            idle_closed: get(&self.idle_closed),
            errors: get(&self.errors),
            dropped_at_shutdown: get(&self.dropped_at_shutdown),
            tls_failed: self.tls_failed.snapshot(),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Serves `app` on `listener` within `limits`, on the current runtime.
pub fn serve(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<Server> {
    serve_tls(listener, app, limits, None)
}

/// Serves `app` like [`serve`], over TLS when `tls` is given: the
/// handshake counts against the header timeout, and a failed one closes
/// the connection and is counted by cause.
pub fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<ServerConfig>>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(accept_loop(
        listener,
        app,
        limits,
        tls,
        Arc::clone(&counters),
        stopped,
    ));
    Ok(Server {
        addr,
        counters,
        stop: Some(stop),
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<ServerConfig>>,
    counters: Arc<Counters>,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors, or a connection reset
                        // before it was accepted: count it, breathe, go on.
                        bump(&counters.errors);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    bump(&counters.too_many_connections);
                    drop(stream);
                    continue;
                };
                bump(&counters.accepted);
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let counters = Arc::clone(&counters);
                let Some(tls) = &tls else {
                    let (stream, unanswered) = Counted::new(stream);
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            count_end(&counters, &error, &unanswered);
                        }
                        drop(slot);
                    });
                    continue;
                };
                // Over TLS the handshake runs in the connection's task (a
                // slow one holds only its own slot); the connection joins
                // the graceful shutdown once it speaks HTTP.
                let tls = Arc::clone(tls);
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    match medtwin_tls::accept(tls, stream, limits.header_timeout).await {
                        Ok(stream) => {
                            let (stream, unanswered) = Counted::new(stream);
                            let connection = hyper::server::conn::http1::Builder::new()
                                .timer(TokioTimer::new())
                                .header_read_timeout(limits.header_timeout)
                                .serve_connection(TokioIo::new(stream), service);
                            if let Err(error) = watcher.watch(connection).await {
                                count_end(&counters, &error, &unanswered);
                            }
                        }
                        Err(error) => {
                            counters.tls_failed.record(&error);
                        }
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_deadline, graceful.shutdown()).await;
    if drained.is_err() {
        let left = connections.len() as u64;
        counters
            .dropped_at_shutdown
            .fetch_add(left, Ordering::Relaxed);
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

fn count_end(counters: &Counters, error: &hyper::Error, unanswered: &AtomicU64) {
    if error.is_timeout() && unanswered.load(Ordering::Relaxed) == 0 {
        bump(&counters.idle_closed);
    } else if error.is_timeout() {
        bump(&counters.header_timeouts);
    } else if !error.is_incomplete_message() && !error.is_closed() {
        bump(&counters.errors);
    }
}

/// A stream that counts the bytes read since it last wrote: after an
/// answer, anything read belongs to the next request, so a header timeout
/// with nothing read since is an idle keep-alive connection, not a slow
/// client.
struct Counted<S> {
    inner: S,
    unanswered: Arc<AtomicU64>,
}

impl<S> Counted<S> {
    fn new(inner: S) -> (Counted<S>, Arc<AtomicU64>) {
        let unanswered = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner,
            unanswered: Arc::clone(&unanswered),
        };
        (counted, unanswered)
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.unanswered.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.unanswered.store(0, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Server {
    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection counters so far.
    pub fn stats(&self) -> ConnectionStats {
        self.counters.snapshot()
    }

    /// Stops accepting, lets requests in progress finish within the
    /// shutdown deadline, drops what is left, and returns the counters.
    pub async fn shutdown(mut self) -> ConnectionStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.counters.snapshot()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Why a body could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (declared or streamed).
    TooLarge,
    /// The client stopped sending before the body's end.
    Cut(String),
    /// The body took longer than the timeout.
    Timeout,
}

/// Reads a body of at most `limit` bytes within `timeout`. A declared
/// `Content-Length` over the limit is refused before reading anything.
pub async fn read_body(
    body: Body,
    content_length: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    if content_length.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut body = body;
        let mut collected = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Cut(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if collected.len() + data.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                collected.extend_from_slice(&data);
            }
        }
        Ok::<_, BodyError>(Bytes::from(collected))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Instant;
    use tokio::io::AsyncWriteExt as _;

    async fn server(limits: Limits) -> Server {
        let app = Router::new().route("/", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve(listener, app, limits).unwrap()
    }

    #[tokio::test]
    async fn a_slow_header_client_cannot_hold_shutdown_past_the_deadline() {
        let limits = Limits {
            header_timeout: Duration::from_secs(60),
            shutdown_deadline: Duration::from_millis(300),
            ..Limits::default()
        };
        let server = server(limits).await;
        let mut slow = Vec::new();
        for _ in 0..20 {
            let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            slow.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let stats = server.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(stats.accepted, 20);
        assert_eq!(stats.dropped_at_shutdown, 20, "{stats:?}");
    }

    #[tokio::test]
    async fn slow_headers_time_out_and_extra_connections_are_refused() {
        let limits = Limits {
            header_timeout: Duration::from_millis(200),
            max_connections: 2,
            ..Limits::default()
        };
        let server = server(limits).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        let stats = server.stats();
        assert_eq!(stats.too_many_connections, 1, "{stats:?}");
        assert_eq!(stats.header_timeouts, 2, "{stats:?}");
        // The slots are free again: a real request is served.
        medtwin_tls::install_default_provider();
        let answer = reqwest::get(format!("http://{}/", server.addr()))
            .await
            .unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_not_a_slow_client() {
        let limits = Limits {
            header_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let server = server(limits).await;
        medtwin_tls::install_default_provider();
        let client = reqwest::Client::new();
        let answer = client
            .get(format!("http://{}/", server.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        // The client keeps the connection; it sits idle past the timeout.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stats = server.stats();
        assert_eq!(
            (stats.idle_closed, stats.header_timeouts),
            (1, 0),
            "{stats:?}"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn over_tls_a_pinned_client_is_served_and_failed_handshakes_are_counted_by_cause() {
        let tls = medtwin_tls::ServerTls::new(&medtwin_tls::ServerOptions::default()).unwrap();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve_tls(listener, app, Limits::default(), Some(tls.config())).unwrap();
        let pinned = medtwin_tls::ClientTls::new(&medtwin_tls::ClientOptions {
            pin_sha256: Some(tls.fingerprint().to_owned()),
            ..Default::default()
        })
        .unwrap();
        medtwin_tls::install_default_provider();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(pinned.config_owned())
            .build()
            .unwrap();
        let url = format!("https://127.0.0.1:{}/", server.addr().port());
        let answer = client.get(&url).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");

        // A client that does not trust the self-signed certificate.
        let stranger = reqwest::Client::builder()
            .tls_backend_preconfigured(
                medtwin_tls::ClientTls::new(&medtwin_tls::ClientOptions {
                    pin_sha256: Some("00".repeat(32)),
                    ..Default::default()
                })
                .unwrap()
                .config_owned(),
            )
            .build()
            .unwrap();
        assert!(stranger.get(&url).send().await.is_err());
        // Plain HTTP to the TLS port.
        let plain = format!("http://127.0.0.1:{}/", server.addr().port());
        assert!(reqwest::get(&plain).await.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = server.shutdown().await;
        let failures: Vec<_> = stats.tls_failures().collect();
        assert_eq!(
            failures,
            vec![("tls_server_cert_refused", 1), ("tls_not_tls", 1)],
            "{stats:?}"
        );
    }

    #[tokio::test]
    async fn bodies_too_large_cut_or_slow_are_told_apart() {
        let body = Body::from(vec![b'x'; 10]);
        assert_eq!(
            read_body(body, None, 5, Duration::from_secs(1)).await,
            Err(BodyError::TooLarge)
        );
        let body = Body::from("abc");
        assert_eq!(
            read_body(body, Some(100), 5, Duration::from_secs(1)).await,
            Err(BodyError::TooLarge),
            "a declared length over the limit is refused unread"
        );
        let body = Body::from("abc");
        assert_eq!(
            read_body(body, Some(3), 5, Duration::from_secs(1))
                .await
                .unwrap(),
            Bytes::from("abc")
        );
        let slow = Body::new(Silent);
        assert_eq!(
            read_body(slow, None, 5, Duration::from_millis(100)).await,
            Err(BodyError::Timeout)
        );
    }

    /// A body that never sends anything.
    struct Silent;

    impl hyper::body::Body for Silent {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }
}
