//! The MQTT client: one [`Connection`] per client id, driven by one tokio
//! task that owns the socket and the protocol state.
//!
//! A publish resolves when its QoS flow is done (MQTT 3.1.1 §4.3, MQTT 5
//! §4.3): QoS 0 once written to the socket, QoS 1 at PUBACK, QoS 2 at
//! PUBCOMP (PUBREC answered with PUBREL on the way). Packet ids are ours,
//! never 0 and never reused while in flight (§2.3.1); at most
//! `max_in_flight` (and at most the broker's MQTT 5 Receive Maximum) QoS 1/2
//! publishes are in flight, the rest wait in a bounded queue. An MQTT 5
//! PUBACK/PUBREC/PUBCOMP reason code >= 0x80 is a refusal (§2.4).
//!
//! Sessions are clean (Clean Session / Clean Start = 1): when a connection
//! is lost, everything in flight fails with [`PublishError::Disconnected`]
//! and the caller decides whether to send again; nothing is replayed
//! behind its back. The task reconnects with exponential back-off (capped),
//! re-subscribes, and publishes the birth message after every connect.
//!
//! Over TLS (`mqtts://`, [`ConnectOptions::tls`]) the TCP stream is wrapped
//! by [`medtwin_tls::connect`] before CONNECT; the plain path stays a bare
//! `TcpStream` behind a two-armed enum. A TLS failure is
//! [`DownCause::Tls`], named by [`medtwin_tls::classify`], and the socket
//! error is kept whole in [`ConnectError::source`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use medtwin_tls::rustls::ClientConfig;
use medtwin_tls::rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::codec::{self, Packet, Publish};
use crate::error::{ConnectError, DownCause, PublishError, SubscribeError};
use crate::topic::{valid_filter, valid_topic};
use crate::{Qos, Version};

/// A message to publish, a will, or a birth message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Topic name (no wildcards); shared, so a fleet's publishers hand
    /// their device's topic over without copying it.
    pub topic: Arc<str>,
    /// Payload bytes.
    pub payload: Bytes,
    /// QoS.
    pub qos: Qos,
    /// Retain flag.
    pub retain: bool,
}

/// A message a subscription received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The topic it was published to.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// The QoS it was delivered at.
    pub qos: Qos,
    /// Set when it is a retained message sent on subscribing.
    pub retain: bool,
}

/// TLS towards the broker (`mqtts://`): whom to trust and which
/// certificate to show (the configuration, from `medtwin_tls::ClientTls`:
/// the shared one, or a device's own from `config_for`), and the name sent
/// as SNI and checked against the broker's certificate.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The rustls client configuration.
    pub config: Arc<ClientConfig>,
    /// The broker's name.
    pub server_name: ServerName<'static>,
}

/// How to connect, and the limits of the connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `host:port` of the broker.
    pub addr: String,
    /// Protocol version.
    pub version: Version,
    /// Client identifier (unique per broker: a second connection with the
    /// same id takes the first one over).
    pub client_id: String,
    /// Keep-alive; zero turns it off.
    pub keep_alive: Duration,
    /// Last will: published by the broker when this connection ends without
    /// DISCONNECT.
    pub will: Option<Message>,
    /// Published after every successful connect (a retained "online").
    pub birth: Option<Message>,
    /// Most QoS 1/2 publishes awaiting their acknowledgement.
    pub max_in_flight: u16,
    /// Publishes waiting for an in-flight slot, and commands queued to the
    /// connection's task.
    pub queue: usize,
    /// TCP connect, and CONNECT to CONNACK, each.
    pub connect_timeout: Duration,
    /// A publish not done in this time fails with `Timeout`, and the
    /// connection is made anew (the broker stalled).
    pub ack_timeout: Duration,
    /// First wait before a reconnect.
    pub backoff_initial: Duration,
    /// Longest wait between reconnects.
    pub backoff_max: Duration,
    /// Largest packet we accept (and announce, MQTT 5).
    pub max_packet_bytes: u32,
    /// User name and password, when the broker wants them (MQTT 3.1.1
    /// §3.1.2.9: a password needs a user name).
    pub login: Option<(String, String)>,
    /// Where received messages go (subscribers). When the channel is full,
    /// a message is counted as `deliveries_dropped_full` and dropped.
    pub deliveries: Option<mpsc::Sender<Delivery>>,
    /// TLS (`mqtts://`); `None` is plain TCP. The handshake has
    /// `connect_timeout` too.
    pub tls: Option<Tls>,
}

impl ConnectOptions {
    /// Options with defaults: keep-alive 30 s, 64 in flight, 1024 queued,
    /// 5 s connect, 10 s acknowledgement, back-off 100 ms doubling to 5 s,
    /// 1 MiB packets.
    pub fn new(addr: impl Into<String>, client_id: impl Into<String>, version: Version) -> Self {
        ConnectOptions {
            addr: addr.into(),
            version,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(30),
            will: None,
            birth: None,
            max_in_flight: 64,
            queue: 1024,
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_packet_bytes: 1 << 20,
            login: None,
            deliveries: None,
            tls: None,
        }
    }
}

/// What a tagged publish reports: the caller's tag and the publish's
/// fate ([`Connection::publish_tagged`]).
pub type Outcome = (u64, Result<(), PublishError>);

/// Where a publish's fate goes: a waiting [`Connection::publish`], or a
/// [`Connection::publish_tagged`] caller's outcome channel. Every publish
/// is answered exactly once: one dropped unanswered (its command still
/// queued when the task ended) answers [`PublishError::Closed`].
struct PublishDone(Option<Reply>);

enum Reply {
    One(oneshot::Sender<Result<(), PublishError>>),
    Tagged(u64, mpsc::UnboundedSender<Outcome>),
}

impl PublishDone {
    /// Drops it without an answer: for a publish never handed over,
    /// whose caller hears the error straight away.
    fn forget(mut self) {
        self.0 = None;
    }

    fn send(mut self, result: Result<(), PublishError>) {
        if let Some(reply) = self.0.take() {
            reply.answer(result);
        }
    }
}

impl Reply {
    fn answer(self, result: Result<(), PublishError>) {
        // A caller that stopped listening no longer wants the answer.
        match self {
            Reply::One(tx) => {
                let _ = tx.send(result);
            }
            Reply::Tagged(tag, tx) => {
                let _ = tx.send((tag, result));
            }
        }
    }
}

impl Drop for PublishDone {
    fn drop(&mut self) {
        if let Some(reply) = self.0.take() {
            reply.answer(Err(PublishError::Closed));
        }
    }
}
type SubscribeDone = oneshot::Sender<Result<Qos, SubscribeError>>;

enum Command {
    Publish {
        message: Message,
        done: Option<PublishDone>,
        deadline: Instant,
    },
    Subscribe {
        filter: String,
        qos: Qos,
        done: SubscribeDone,
    },
    Disconnect {
        done: oneshot::Sender<()>,
    },
    Kill,
}

/// Counters by name, shared between a connection's task and its handle.
#[derive(Debug, Default)]
struct Counters(Mutex<BTreeMap<String, u64>>);

impl Counters {
    fn add(&self, key: &str, n: u64) {
        // A poisoned lock only means another thread panicked mid-count: the
        // numbers are still the best we have.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The key is allocated only the first time it is counted.
        match map.get_mut(key) {
            Some(count) => *count += n,
            None => {
                map.insert(key.to_owned(), n);
            }
        }
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Shared {
    counters: Counters,
    connected: AtomicBool,
}

/// A connection to a broker (reconnecting by itself).
pub struct Connection {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    client_id: String,
    version: Version,
    ack_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client_id", &self.client_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects (the first attempt must succeed: a broker that is down or
    /// refuses shows here), then keeps the connection up in a task on the
    /// current tokio runtime.
    pub async fn connect(options: ConnectOptions) -> Result<Connection, ConnectError> {
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            connected: AtomicBool::new(false),
        });
        let link = match open(&options).await {
            Ok(link) => link,
            Err(error) => {
                shared
                    .counters
                    .add(&format!("connect_failures_{}", error.cause.name()), 1);
                return Err(error);
            }
        };
        shared.counters.add("connects", 1);
        shared.connected.store(true, Ordering::Relaxed);
        let (commands, rx) = mpsc::channel(options.queue.max(1));
        let connection = Connection {
            commands,
            shared: Arc::clone(&shared),
            task: Mutex::new(None),
            client_id: options.client_id.clone(),
            version: options.version,
            ack_timeout: options.ack_timeout,
        };
        let task = tokio::spawn(drive(First::Up(link), rx, options, shared));
        *connection.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(connection)
    }

    /// Like [`Connection::connect`], but a first attempt that fails does
    /// not end it: the connection is returned down, with the error, and
    /// keeps trying (publishes fail at once with
    /// [`PublishError::NotConnected`] naming the cause until it is up). For
    /// fleets where one device's refusal (its certificate revoked) must not
    /// stop the others.
    pub async fn start(options: ConnectOptions) -> (Connection, Option<ConnectError>) {
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            connected: AtomicBool::new(false),
        });
        let (first, error) = match open(&options).await {
            Ok(link) => {
                shared.counters.add("connects", 1);
                shared.connected.store(true, Ordering::Relaxed);
                (First::Up(link), None)
            }
            Err(error) => {
                shared
                    .counters
                    .add(&format!("connect_failures_{}", error.cause.name()), 1);
                (First::Down(error.cause.clone()), Some(error))
            }
        };
        let (commands, rx) = mpsc::channel(options.queue.max(1));
        let connection = Connection {
            commands,
            shared: Arc::clone(&shared),
            task: Mutex::new(None),
            client_id: options.client_id.clone(),
            version: options.version,
            ack_timeout: options.ack_timeout,
        };
        let task = tokio::spawn(drive(first, rx, options, shared));
        *connection.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        (connection, error)
    }

    /// The client identifier.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Is the connection up now?
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Publishes and waits until the message is done by its QoS (or fails).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
    ) -> Result<(), PublishError> {
        let message = Message {
            topic: Arc::from(topic.into()),
            payload: payload.into(),
            qos,
            retain,
        };
        let result = self.publish_message(message).await;
        match &result {
            Ok(()) => self.shared.counters.add("published", 1),
            Err(error) => self
                .shared
                .counters
                .add(&format!("publish_failed_{}", error.name()), 1),
        }
        result
    }

    /// Hands a publish to the connection without waiting for its fate:
    /// the fate arrives on `outcomes` as `(tag, result)`, exactly once
    /// (QoS 0 once written, QoS 1/2 when acknowledged; a connection that
    /// ends first answers). Waits only while the connection's queue is
    /// full, at most the acknowledgement timeout; an `Err` here means the
    /// publish was never handed over, and nothing arrives for it.
    ///
    /// For callers with many publishes in flight (a load generator): no
    /// future, timer or one-shot channel per publish. The counters are the
    /// caller's to keep: tagged publishes are not counted as `published`.
    pub async fn publish_tagged(
        &self,
        message: Message,
        tag: u64,
        outcomes: &mpsc::UnboundedSender<Outcome>,
    ) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.ack_timeout;
        let done = PublishDone(Some(Reply::Tagged(tag, outcomes.clone())));
        let command = Command::Publish {
            message,
            done: Some(done),
            deadline,
        };
        self.hand_over(command, deadline)
            .await
            .map_err(|(error, command)| {
                // Not handed over: the caller hears it here, not twice.
                if let Command::Publish {
                    done: Some(done), ..
                } = command
                {
                    done.forget();
                }
                error
            })
    }

    /// Puts `command` in the task's queue: at once when it has room, else
    /// waiting for room until `deadline`.
    async fn hand_over(
        &self,
        command: Command,
        deadline: Instant,
    ) -> Result<(), (PublishError, Command)> {
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(command)) => Err((PublishError::Closed, command)),
            Err(mpsc::error::TrySendError::Full(command)) => {
                let permit = match timeout_at(deadline, self.commands.reserve()).await {
                    Err(_) => return Err((PublishError::Timeout, command)),
                    Ok(Err(_)) => return Err((PublishError::Closed, command)),
                    Ok(Ok(permit)) => permit,
                };
                permit.send(command);
                Ok(())
            }
        }
    }

    async fn publish_message(&self, message: Message) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.ack_timeout;
        let (done, rx) = oneshot::channel();
        let command = Command::Publish {
            message,
            done: Some(PublishDone(Some(Reply::One(done)))),
            deadline,
        };
        self.hand_over(command, deadline)
            .await
            .map_err(|(error, _)| error)?;
        // The task fails what it holds past the deadline itself; the grace
        // covers its tick.
        match timeout_at(deadline + Duration::from_millis(250), rx).await {
            Err(_) => Err(PublishError::Timeout),
            Ok(Err(_)) => Err(PublishError::Closed),
            Ok(Ok(result)) => result,
        }
    }

    /// Subscribes to `filter` at `qos` and waits for the SUBACK; returns the
    /// granted QoS. The subscription is renewed after every reconnect;
    /// messages go to `ConnectOptions::deliveries`.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
        qos: Qos,
    ) -> Result<Qos, SubscribeError> {
        let (done, rx) = oneshot::channel();
        let command = Command::Subscribe {
            filter: filter.into(),
            qos,
            done,
        };
        let deadline = Instant::now() + self.ack_timeout;
        match timeout_at(deadline, self.commands.send(command)).await {
            Err(_) => return Err(SubscribeError::Timeout),
            Ok(Err(_)) => return Err(SubscribeError::Closed),
            Ok(Ok(())) => {}
        }
        match timeout_at(deadline + Duration::from_millis(250), rx).await {
            Err(_) => Err(SubscribeError::Timeout),
            Ok(Err(_)) => Err(SubscribeError::Closed),
            Ok(Ok(result)) => result,
        }
    }

    /// Counters: `connects`, `reconnects`, `connect_failures_<cause>`,
    /// `disconnects_<cause>`, `published`, `publish_failed_<error>`,
    /// `deliveries`, `deliveries_dropped_full`, `resubscribes`, ...
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.shared.counters.snapshot()
    }

    /// Waits (at most the acknowledgement timeout) for what is in flight,
    /// then sends DISCONNECT (normal: the broker discards the will) and
    /// closes the socket.
    pub async fn disconnect(&self) {
        let (done, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Disconnect { done })
            .await
            .is_ok()
        {
            let _ = timeout(self.ack_timeout + Duration::from_secs(1), rx).await;
        }
        self.join().await;
    }

    /// Drops the socket without DISCONNECT (what a device losing power
    /// does: the broker publishes the will) and stops reconnecting.
    pub async fn kill(&self) {
        let _ = self.commands.send(Command::Kill).await;
        self.join().await;
    }

    async fn join(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            // Bounded: the task ends on Kill/Disconnect; abort if it does not.
            let abort = task.abort_handle();
            if timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
        self.shared.connected.store(false, Ordering::Relaxed);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Connections keyed by a name (one per device, or one per gateway or
/// lane: the caller chooses what a name stands for).
#[derive(Debug, Default)]
pub struct Connections {
    by_name: HashMap<String, Connection>,
}

impl Connections {
    /// No connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects `name` (replacing and disconnecting an older one).
    pub async fn connect(
        &mut self,
        name: &str,
        options: ConnectOptions,
    ) -> Result<&Connection, ConnectError> {
        let connection = Connection::connect(options).await?;
        if let Some(old) = self.by_name.insert(name.to_owned(), connection) {
            old.disconnect().await;
        }
        self.by_name
            .get(name)
            .ok_or_else(|| unreachable_missing(name))
    }

    /// The connection called `name`.
    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.by_name.get(name)
    }

    /// Publishes on the connection called `name` (`Closed` if there is none).
    pub async fn publish(
        &self,
        name: &str,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: Qos,
        retain: bool,
    ) -> Result<(), PublishError> {
        match self.by_name.get(name) {
            Some(connection) => connection.publish(topic, payload, qos, retain).await,
            None => Err(PublishError::Closed),
        }
    }

    /// All connections' counters, added up.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for connection in self.by_name.values() {
            for (key, n) in connection.counters() {
                *total.entry(key).or_default() += n;
            }
        }
        total
    }

    /// Disconnects every connection.
    pub async fn disconnect_all(&mut self) {
        for (_, connection) in self.by_name.drain() {
            connection.disconnect().await;
        }
    }
}

fn unreachable_missing(name: &str) -> ConnectError {
    // Just inserted under this name; kept typed rather than panicking.
    ConnectError {
        addr: String::new(),
        cause: DownCause::Protocol,
        detail: format!("connection {name:?} vanished"),
        source: None,
    }
}

/// The socket: plain TCP, or TLS over it. One value for both directions:
/// a session reads inside `select!` and writes between, never both at once.
enum Stream {
    Plain(TcpStream),
    Tls(Box<medtwin_tls::tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Writes all of `bytes` and flushes (TLS may hold the tail of a write in
/// its own buffer; for TCP the flush is free).
async fn send_all(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// What the broker granted in its CONNACK, and our own limits.
struct Link {
    stream: Stream,
    buffer: BytesMut,
    receive_max: u16,
    keep_alive: Duration,
    max_qos: Qos,
    retain_available: bool,
    broker_max_packet: usize,
}

fn connect_error(
    options: &ConnectOptions,
    cause: DownCause,
    detail: impl Into<String>,
) -> ConnectError {
    ConnectError {
        addr: options.addr.clone(),
        cause,
        detail: detail.into(),
        source: None,
    }
}

/// A connection error from a socket error, which it keeps whole.
fn io_error(options: &ConnectOptions, error: std::io::Error) -> ConnectError {
    ConnectError {
        addr: options.addr.clone(),
        cause: DownCause::from_io(&error),
        detail: error.to_string(),
        source: Some(error),
    }
}

async fn open(options: &ConnectOptions) -> Result<Link, ConnectError> {
    let tcp = match timeout(options.connect_timeout, TcpStream::connect(&options.addr)).await {
        Err(_) => return Err(connect_error(options, DownCause::ConnectTimeout, "")),
        Ok(Err(error)) => {
            let cause = match error.kind() {
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotFound => {
                    DownCause::NotResolved
                }
                _ => DownCause::from_io(&error),
            };
            return Err(connect_error(options, cause, error.to_string()));
        }
        Ok(Ok(stream)) => stream,
    };
    // Small packets matter more than throughput batching: acks must go out
    // at once.
    let _ = tcp.set_nodelay(true);
    let mut stream = match &options.tls {
        None => Stream::Plain(tcp),
        Some(tls) => {
            let tls = medtwin_tls::connect(
                Arc::clone(&tls.config),
                tls.server_name.clone(),
                tcp,
                options.connect_timeout,
            )
            .await
            .map_err(|error| {
                let mut error = io_error(options, error);
                if !matches!(error.cause, DownCause::Tls(_)) {
                    if error.cause == DownCause::ClosedByBroker {
                        // Closed on our ClientHello: a plain MQTT broker
                        // reads it as a malformed CONNECT and hangs up.
                        error.cause = DownCause::Tls(medtwin_tls::HandshakeCause::NotTls);
                    }
                    error.detail = format!("TLS handshake: {}", error.detail);
                }
                error
            })?;
            Stream::Tls(Box::new(tls))
        }
    };
    let keep_alive_s = u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX);
    let connect = Packet::Connect(codec::Connect {
        client_id: options.client_id.clone(),
        keep_alive_s,
        clean: true,
        will: options.will.as_ref().map(|w| Publish {
            topic: w.topic.to_string(),
            payload: w.payload.clone(),
            qos: w.qos,
            retain: w.retain,
            dup: false,
            pkid: 0,
        }),
        receive_max: (options.version == Version::V5).then_some(u16::MAX),
        max_packet_bytes: (options.version == Version::V5).then_some(options.max_packet_bytes),
        login: options.login.clone(),
    });
    let mut out = BytesMut::new();
    codec::encode(options.version, &connect, &mut out)
        .map_err(|e| connect_error(options, DownCause::Protocol, e.to_string()))?;
    let deadline = Instant::now() + options.connect_timeout;
    match timeout_at(deadline, send_all(&mut stream, &out)).await {
        Err(_) => {
            return Err(connect_error(
                options,
                DownCause::ConnAckTimeout,
                "writing CONNECT",
            ));
        }
        Ok(Err(error)) => return Err(io_error(options, error)),
        Ok(Ok(())) => {}
    }
    let mut buffer = BytesMut::with_capacity(4096);
    let max = options.max_packet_bytes as usize;
    let ack = loop {
        match codec::decode(options.version, &mut buffer, max) {
            Ok(Some(Packet::ConnAck(ack))) => break ack,
            Ok(Some(other)) => {
                return Err(connect_error(
                    options,
                    DownCause::Protocol,
                    format!("expected CONNACK, got {other:?}"),
                ));
            }
            Ok(None) => {}
            Err(error) => {
                return Err(connect_error(
                    options,
                    DownCause::Protocol,
                    error.to_string(),
                ));
            }
        }
        match timeout_at(deadline, stream.read_buf(&mut buffer)).await {
            Err(_) => return Err(connect_error(options, DownCause::ConnAckTimeout, "")),
            Ok(Ok(0)) => {
                return Err(connect_error(
                    options,
                    DownCause::ClosedByBroker,
                    "before CONNACK",
                ));
            }
            Ok(Ok(_)) => {}
            // TLS 1.3: a refused client certificate shows here, as the
            // alert the broker sent after our handshake was done.
            Ok(Err(error)) => return Err(io_error(options, error)),
        }
    };
    if ack.code != 0 {
        return Err(connect_error(
            options,
            DownCause::Rejected(ack.code),
            "CONNACK",
        ));
    }
    let keep_alive = match ack.server_keep_alive_s {
        // MQTT 5 §3.2.2.3.14: the broker's Server Keep Alive replaces ours.
        Some(seconds) => Duration::from_secs(u64::from(seconds)),
        None => options.keep_alive,
    };
    Ok(Link {
        stream,
        buffer,
        // §3.2.2.3.3: absent means 65,535.
        receive_max: options
            .max_in_flight
            .max(1)
            .min(ack.receive_max.unwrap_or(u16::MAX).max(1)),
        keep_alive,
        // §3.2.2.3.4: absent means QoS 2.
        max_qos: ack
            .max_qos
            .and_then(|q| Qos::try_from(q).ok())
            .unwrap_or(Qos::ExactlyOnce),
        retain_available: ack.retain_available.unwrap_or(true),
        broker_max_packet: ack.max_packet_bytes.map_or(usize::MAX, |m| m as usize),
    })
}

/// How a session ended.
enum End {
    Lost(DownCause),
    Closed,
}

/// How a connection's task begins: connected, or down after a first
/// attempt that failed for this cause.
enum First {
    Up(Link),
    Down(DownCause),
}

/// The task: one session after another until disconnected or killed.
async fn drive(
    first: First,
    mut rx: mpsc::Receiver<Command>,
    options: ConnectOptions,
    shared: Arc<Shared>,
) {
    let mut subscriptions: Vec<(String, Qos)> = Vec::new();
    let (mut link, mut last_cause) = match first {
        First::Up(link) => (Some(link), DownCause::ClosedByBroker),
        First::Down(cause) => (None, cause),
    };
    let mut backoff = options.backoff_initial;
    loop {
        if let Some(current) = link.take() {
            shared.connected.store(true, Ordering::Relaxed);
            let end = Session::new(current, &options, &shared)
                .run(&mut rx, &mut subscriptions)
                .await;
            shared.connected.store(false, Ordering::Relaxed);
            match end {
                End::Closed => return,
                End::Lost(cause) => {
                    shared
                        .counters
                        .add(&format!("disconnects_{}", cause.name()), 1);
                    if cause == DownCause::Killed {
                        return;
                    }
                    last_cause = cause;
                    backoff = options.backoff_initial;
                }
            }
        }
        // Down: wait, serving commands (publishes fail at once), then retry.
        let wake = Instant::now() + backoff;
        loop {
            tokio::select! {
                () = sleep_until(wake) => break,
                command = rx.recv() => match command {
                    None | Some(Command::Kill) => return,
                    Some(Command::Disconnect { done }) => {
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::Publish { done, .. }) => {
                        if let Some(done) = done {
                            done.send(Err(PublishError::NotConnected { cause: last_cause.clone() }));
                        }
                    }
                    Some(Command::Subscribe { filter, qos, done }) => {
                        let answer = if valid_filter(&filter) {
                            remember(&mut subscriptions, filter, qos);
                            Err(SubscribeError::NotConnected { cause: last_cause.clone() })
                        } else {
                            Err(SubscribeError::InvalidFilter(filter))
                        };
                        let _ = done.send(answer);
                    }
                },
            }
        }
        match open(&options).await {
            Ok(new) => {
                shared.counters.add("connects", 1);
                shared.counters.add("reconnects", 1);
                link = Some(new);
            }
            Err(error) => {
                shared
                    .counters
                    .add(&format!("connect_failures_{}", error.cause.name()), 1);
                last_cause = error.cause;
                backoff = (backoff * 2)
                    .min(options.backoff_max)
                    .max(options.backoff_initial);
            }
        }
    }
}

fn remember(subscriptions: &mut Vec<(String, Qos)>, filter: String, qos: Qos) {
    match subscriptions.iter_mut().find(|(f, _)| *f == filter) {
        Some(existing) => existing.1 = qos,
        None => subscriptions.push((filter, qos)),
    }
}

struct InFlight {
    done: Option<PublishDone>,
    deadline: Instant,
    qos: Qos,
}

struct Waiting {
    message: Message,
    done: Option<PublishDone>,
    deadline: Instant,
}

/// One network connection's protocol state.
struct Session<'a> {
    link: Link,
    options: &'a ConnectOptions,
    shared: &'a Shared,
    out: BytesMut,
    written: Vec<PublishDone>,
    in_flight: HashMap<u16, InFlight>,
    waiting: VecDeque<Waiting>,
    subscribing: HashMap<u16, (Option<SubscribeDone>, Instant)>,
    received_qos2: HashSet<u16>,
    last_pkid: u16,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    draining: Option<(oneshot::Sender<()>, Instant)>,
}

/// Commands taken per wake-up before writing (a batch is one write).
const BATCH: usize = 64;

impl<'a> Session<'a> {
    fn new(link: Link, options: &'a ConnectOptions, shared: &'a Shared) -> Self {
        Session {
            link,
            options,
            shared,
            out: BytesMut::with_capacity(16 * 1024),
            written: Vec::new(),
            in_flight: HashMap::new(),
            waiting: VecDeque::new(),
            subscribing: HashMap::new(),
            received_qos2: HashSet::new(),
            last_pkid: 0,
            last_sent: Instant::now(),
            ping_sent: None,
            draining: None,
        }
    }

    async fn run(
        mut self,
        rx: &mut mpsc::Receiver<Command>,
        subscriptions: &mut Vec<(String, Qos)>,
    ) -> End {
        let end = self.serve(rx, subscriptions).await;
        self.fail_all(&end);
        end
    }

    async fn serve(
        &mut self,
        rx: &mut mpsc::Receiver<Command>,
        subscriptions: &mut Vec<(String, Qos)>,
    ) -> End {
        for (filter, qos) in subscriptions.iter() {
            self.shared.counters.add("resubscribes", 1);
            if let Err(end) = self.send_subscribe(filter.clone(), *qos, None) {
                return end;
            }
        }
        if let Some(birth) = self.options.birth.clone() {
            let deadline = Instant::now() + self.options.ack_timeout;
            self.start_publish(birth, None, deadline);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(end) = self.flush().await {
                return end;
            }
            if self.draining.is_some() && self.in_flight.is_empty() && self.waiting.is_empty() {
                return self.close().await;
            }
            let taking = self.draining.is_none() && self.waiting.len() < self.options.queue.max(1);
            tokio::select! {
                biased;
                read = self.link.stream.read_buf(&mut self.link.buffer) => match read {
                    Ok(0) => return End::Lost(DownCause::ClosedByBroker),
                    Err(error) => return End::Lost(DownCause::from_io(&error)),
                    Ok(_) => {
                        if let Err(end) = self.read_packets() {
                            return end;
                        }
                    }
                },
                command = rx.recv(), if taking => {
                    let Some(command) = command else {
                        // Every handle is gone: close as if asked to.
                        return self.close().await;
                    };
                    if let Err(end) = self.command(command, subscriptions) {
                        return end;
                    }
                    for _ in 1..BATCH {
                        let Ok(command) = rx.try_recv() else { break };
                        if let Err(end) = self.command(command, subscriptions) {
                            return end;
                        }
                    }
                },
                _ = tick.tick() => {
                    if let Err(end) = self.on_tick() {
                        return end;
                    }
                },
            }
        }
    }

    fn command(
        &mut self,
        command: Command,
        subscriptions: &mut Vec<(String, Qos)>,
    ) -> Result<(), End> {
        match command {
            Command::Publish {
                message,
                done,
                deadline,
            } => {
                self.start_publish(message, done, deadline);
                Ok(())
            }
            Command::Subscribe { filter, qos, done } => {
                if !valid_filter(&filter) {
                    let _ = done.send(Err(SubscribeError::InvalidFilter(filter)));
                    return Ok(());
                }
                remember(subscriptions, filter.clone(), qos);
                self.send_subscribe(filter, qos, Some(done))
            }
            Command::Disconnect { done } => {
                self.draining = Some((done, Instant::now() + self.options.ack_timeout));
                Ok(())
            }
            Command::Kill => Err(End::Lost(DownCause::Killed)),
        }
    }

    fn next_pkid(&mut self) -> u16 {
        // Bounded: fewer than 65,535 ids are ever in use (in-flight is
        // capped by a u16 Receive Maximum, subscriptions by the queue).
        loop {
            self.last_pkid = self.last_pkid.wrapping_add(1);
            let id = self.last_pkid;
            if id != 0 && !self.in_flight.contains_key(&id) && !self.subscribing.contains_key(&id) {
                return id;
            }
        }
    }

    fn encode(&mut self, packet: &Packet) -> Result<(), End> {
        codec::encode(self.options.version, packet, &mut self.out)
            .map_err(|_| End::Lost(DownCause::Protocol))
    }

    fn send_subscribe(
        &mut self,
        filter: String,
        qos: Qos,
        done: Option<SubscribeDone>,
    ) -> Result<(), End> {
        let pkid = self.next_pkid();
        let packet = Packet::Subscribe {
            pkid,
            filters: vec![codec::Filter {
                path: filter,
                qos,
                no_local: false,
                retain_as_published: false,
            }],
        };
        self.encode(&packet)?;
        self.subscribing
            .insert(pkid, (done, Instant::now() + self.options.ack_timeout));
        Ok(())
    }

    fn start_publish(&mut self, message: Message, done: Option<PublishDone>, deadline: Instant) {
        let refuse = |done: Option<PublishDone>, error: PublishError| {
            if let Some(done) = done {
                done.send(Err(error));
            }
        };
        if !valid_topic(&message.topic) {
            return refuse(done, PublishError::InvalidTopic(message.topic.to_string()));
        }
        if message.qos > self.link.max_qos {
            return refuse(
                done,
                PublishError::QosNotSupported {
                    requested: message.qos.level(),
                    max: self.link.max_qos.level(),
                },
            );
        }
        if message.retain && !self.link.retain_available {
            return refuse(done, PublishError::RetainNotSupported);
        }
        if message.qos != Qos::AtMostOnce
            && self.in_flight.len() >= usize::from(self.link.receive_max)
        {
            self.waiting.push_back(Waiting {
                message,
                done,
                deadline,
            });
            return;
        }
        let pkid = if message.qos == Qos::AtMostOnce {
            0
        } else {
            self.next_pkid()
        };
        let before = self.out.len();
        let encoded = codec::encode_publish(
            self.options.version,
            &message.topic,
            &message.payload,
            message.qos,
            message.retain,
            false,
            pkid,
            &mut self.out,
        );
        if let Err(error) = encoded {
            self.out.truncate(before);
            return refuse(
                done,
                match error {
                    codec::CodecError::TooLarge { bytes, max } => {
                        PublishError::TooLarge { bytes, max }
                    }
                    _ => PublishError::InvalidTopic(message.topic.to_string()),
                },
            );
        }
        let bytes = self.out.len() - before;
        let max = self
            .link
            .broker_max_packet
            .min(self.options.max_packet_bytes as usize);
        if bytes > max {
            self.out.truncate(before);
            return refuse(done, PublishError::TooLarge { bytes, max });
        }
        match message.qos {
            Qos::AtMostOnce => {
                if let Some(done) = done {
                    self.written.push(done);
                }
            }
            qos => {
                self.in_flight.insert(
                    pkid,
                    InFlight {
                        done,
                        deadline,
                        qos,
                    },
                );
            }
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        match timeout(
            self.options.ack_timeout,
            send_all(&mut self.link.stream, &self.out),
        )
        .await
        {
            Err(_) => return Err(End::Lost(DownCause::Io(std::io::ErrorKind::TimedOut))),
            Ok(Err(error)) => return Err(End::Lost(DownCause::from_io(&error))),
            Ok(Ok(())) => {}
        }
        self.out.clear();
        self.last_sent = Instant::now();
        for done in self.written.drain(..) {
            done.send(Ok(()));
        }
        Ok(())
    }

    fn read_packets(&mut self) -> Result<(), End> {
        let max = self.options.max_packet_bytes as usize;
        loop {
            match codec::decode(self.options.version, &mut self.link.buffer, max) {
                Ok(Some(packet)) => self.incoming(packet)?,
                Ok(None) => return Ok(()),
                Err(_) => {
                    self.shared.counters.add("malformed_packets", 1);
                    return Err(End::Lost(DownCause::Protocol));
                }
            }
        }
    }

    fn finish(&mut self, pkid: u16, result: Result<(), PublishError>) {
        match self.in_flight.remove(&pkid) {
            Some(entry) => {
                if let Some(done) = entry.done {
                    done.send(result);
                } else if result.is_err() {
                    self.shared.counters.add("birth_failed", 1);
                }
                while self.in_flight.len() < usize::from(self.link.receive_max) {
                    let Some(next) = self.waiting.pop_front() else {
                        break;
                    };
                    self.start_publish(next.message, next.done, next.deadline);
                }
            }
            None => self.shared.counters.add("unknown_acks", 1),
        }
    }

    fn incoming(&mut self, packet: Packet) -> Result<(), End> {
        match packet {
            Packet::PubAck { pkid, code } => {
                let result = if code >= 0x80 {
                    Err(PublishError::Refused { code })
                } else {
                    Ok(())
                };
                if self
                    .in_flight
                    .get(&pkid)
                    .is_some_and(|e| e.qos != Qos::AtLeastOnce)
                {
                    return Err(End::Lost(DownCause::Protocol));
                }
                self.finish(pkid, result);
            }
            Packet::PubRec { pkid, code } => {
                if code >= 0x80 {
                    // §4.3.3: a PUBREC >= 0x80 ends the flow; no PUBREL.
                    self.finish(pkid, Err(PublishError::Refused { code }));
                } else {
                    let known = self.in_flight.contains_key(&pkid);
                    // §3.6.2.1: 0x92 if we hold no such packet id.
                    let code = if known || self.options.version == Version::V311 {
                        0
                    } else {
                        0x92
                    };
                    self.encode(&Packet::PubRel { pkid, code })?;
                    if !known {
                        self.shared.counters.add("unknown_acks", 1);
                    }
                }
            }
            Packet::PubComp { pkid, code } => {
                let result = if code >= 0x80 {
                    Err(PublishError::Refused { code })
                } else {
                    Ok(())
                };
                self.finish(pkid, result);
            }
            Packet::Publish(publish) => self.received(publish)?,
            Packet::PubRel { pkid, .. } => {
                let code =
                    if self.received_qos2.remove(&pkid) || self.options.version == Version::V311 {
                        0
                    } else {
                        0x92
                    };
                self.encode(&Packet::PubComp { pkid, code })?;
            }
            Packet::SubAck { pkid, codes } => {
                let code = codes.first().copied().unwrap_or(0x80);
                let result = match Qos::try_from(code) {
                    Ok(granted) => Ok(granted),
                    Err(_) => {
                        self.shared
                            .counters
                            .add(&format!("subscribe_refused_rc_{code}"), 1);
                        Err(SubscribeError::Refused { code })
                    }
                };
                if let Some((done, _)) = self.subscribing.remove(&pkid) {
                    if let Some(done) = done {
                        let _ = done.send(result);
                    }
                } else {
                    self.shared.counters.add("unknown_acks", 1);
                }
            }
            Packet::UnsubAck { .. } => {}
            Packet::PingResp => self.ping_sent = None,
            Packet::Disconnect { code } => {
                return Err(End::Lost(DownCause::ServerDisconnect(code)));
            }
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::Subscribe { .. }
            | Packet::Unsubscribe { .. }
            | Packet::PingReq
            | Packet::Auth => return Err(End::Lost(DownCause::Protocol)),
        }
        Ok(())
    }

    fn received(&mut self, publish: Publish) -> Result<(), End> {
        let deliver = match publish.qos {
            Qos::AtMostOnce => true,
            Qos::AtLeastOnce => {
                self.encode(&Packet::PubAck {
                    pkid: publish.pkid,
                    code: 0,
                })?;
                true
            }
            Qos::ExactlyOnce => {
                // §4.3.3 method B: deliver on first receipt, remember the
                // packet id until PUBREL so a resent PUBLISH is not
                // delivered twice.
                let first = self.received_qos2.insert(publish.pkid);
                self.encode(&Packet::PubRec {
                    pkid: publish.pkid,
                    code: 0,
                })?;
                if !first {
                    self.shared.counters.add("duplicates_qos2", 1);
                }
                first
            }
        };
        if !deliver {
            return Ok(());
        }
        let Some(deliveries) = &self.options.deliveries else {
            self.shared.counters.add("deliveries_unwanted", 1);
            return Ok(());
        };
        let delivery = Delivery {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
        };
        match deliveries.try_send(delivery) {
            Ok(()) => self.shared.counters.add("deliveries", 1),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.counters.add("deliveries_dropped_full", 1)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.counters.add("deliveries_dropped_closed", 1)
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), End> {
        let now = Instant::now();
        while self.waiting.front().is_some_and(|w| w.deadline <= now) {
            if let Some(waiting) = self.waiting.pop_front()
                && let Some(done) = waiting.done
            {
                done.send(Err(PublishError::Timeout));
            }
        }
        let expired: Vec<u16> = self
            .in_flight
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(pkid, _)| *pkid)
            .collect();
        if !expired.is_empty() {
            for pkid in expired {
                if let Some(entry) = self.in_flight.remove(&pkid)
                    && let Some(done) = entry.done
                {
                    done.send(Err(PublishError::Timeout));
                }
            }
            return Err(End::Lost(DownCause::AckTimeout));
        }
        if self
            .subscribing
            .values()
            .any(|(_, deadline)| *deadline <= now)
        {
            return Err(End::Lost(DownCause::AckTimeout));
        }
        if self
            .draining
            .as_ref()
            .is_some_and(|(_, deadline)| *deadline <= now)
        {
            // In flight too long: give up on it; `close` runs next loop.
            let pkids: Vec<u16> = self.in_flight.keys().copied().collect();
            for pkid in pkids {
                self.finish(pkid, Err(PublishError::Timeout));
            }
            for waiting in self.waiting.drain(..) {
                if let Some(done) = waiting.done {
                    done.send(Err(PublishError::Closed));
                }
            }
        }
        let keep_alive = self.link.keep_alive;
        if !keep_alive.is_zero() {
            match self.ping_sent {
                Some(sent) if now.duration_since(sent) > keep_alive => {
                    return Err(End::Lost(DownCause::KeepAliveTimeout));
                }
                Some(_) => {}
                // §3.1.2.10: never more than the keep-alive between two
                // packets we send; ping at three quarters of it.
                None if now.duration_since(self.last_sent) >= keep_alive * 3 / 4 => {
                    self.encode(&Packet::PingReq)?;
                    self.ping_sent = Some(now);
                }
                None => {}
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> End {
        let _ = self.encode(&Packet::Disconnect { code: 0 });
        let _ = self.flush().await;
        let _ = timeout(Duration::from_secs(1), self.link.stream.shutdown()).await;
        if let Some((done, _)) = self.draining.take() {
            let _ = done.send(());
        }
        End::Closed
    }

    fn fail_all(&mut self, end: &End) {
        let cause = match end {
            End::Lost(cause) => Some(cause.clone()),
            End::Closed => None,
        };
        let publish_error = || match &cause {
            Some(cause) => PublishError::Disconnected {
                cause: cause.clone(),
            },
            None => PublishError::Closed,
        };
        for done in self.written.drain(..) {
            done.send(Err(publish_error()));
        }
        for (_, entry) in self.in_flight.drain() {
            if let Some(done) = entry.done {
                done.send(Err(publish_error()));
            }
        }
        // Never sent: not "disconnected" (the broker cannot have them).
        for waiting in self.waiting.drain(..) {
            if let Some(done) = waiting.done {
                done.send(Err(match &cause {
                    Some(cause) => PublishError::NotConnected {
                        cause: cause.clone(),
                    },
                    None => PublishError::Closed,
                }));
            }
        }
        for (_, (done, _)) in self.subscribing.drain() {
            if let Some(done) = done {
                let _ = done.send(Err(match &cause {
                    Some(cause) => SubscribeError::NotConnected {
                        cause: cause.clone(),
                    },
                    None => SubscribeError::Closed,
                }));
            }
        }
        if let Some((done, _)) = self.draining.take() {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_publish_dropped_unanswered_answers_closed_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        drop(PublishDone(Some(Reply::Tagged(7, tx.clone()))));
        assert_eq!(rx.try_recv().ok(), Some((7, Err(PublishError::Closed))));
        PublishDone(Some(Reply::Tagged(8, tx))).send(Ok(()));
        assert_eq!(rx.try_recv().ok(), Some((8, Ok(()))));
        assert!(rx.try_recv().is_err(), "answered once, not again on drop");
    }
}
