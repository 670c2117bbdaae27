//! A small embedded MQTT broker for tests and for medtwin's embedded
//! backend: MQTT 3.1.1 and 5, QoS 0/1/2, retained messages, last wills,
//! keep-alive, client-id takeover. Clean sessions only: a CONNACK always
//! says Session Present = 0, which tells a client asking for a persistent
//! session that it has none (MQTT 3.1.1 §3.2.2.2, MQTT 5 §3.2.2.1.1).
//! No authentication, no shared subscriptions, no topic aliases. With
//! [`BrokerOptions::tls`] it speaks MQTT over TLS only (`mqtts://`):
//! `medtwin_tls::accept` in each connection's task, so a slow handshake
//! holds up no one; a failed one is counted as `tls_failures` and
//! `tls_<cause>` (`tls_client_cert_required`, ...).
//!
//! It runs on the caller's tokio runtime, binds where it is told
//! (127.0.0.1:0 in tests), and [`Broker::stop`] closes the listener and
//! every connection and waits for its tasks (bounded), so the port can be
//! bound again at once. Every queue is bounded and every refusal counted.
//!
//! Why not rumqttd: rumqttd 0.20 runs on threads of its own with no way to
//! stop them or to learn the port it bound, and pulls axum 0.7, clap,
//! config and a Prometheus exporter as non-optional dependencies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::codec::{self, ConnAck, Packet, Publish};
use crate::error::BrokerError;
use crate::topic::{matches, valid_filter, valid_topic};
use crate::{Qos, Version};

/// Where and with which limits the broker runs.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// Most open connections; more are closed on arrival (counted).
    pub max_connections: usize,
    /// Largest packet accepted (announced in MQTT 5 CONNACKs).
    pub max_packet_bytes: u32,
    /// Time from TCP accept to a whole CONNECT.
    pub connect_timeout: Duration,
    /// Most retained topics kept; new ones over this are not kept (counted).
    pub max_retained: usize,
    /// Messages queued for one subscriber; over this they are dropped
    /// (counted as `dropped_queue_full`).
    pub client_queue: usize,
    /// QoS 1/2 messages in flight to one subscriber.
    pub max_in_flight: u16,
    /// TLS on the listener (from `medtwin_tls::ServerTls::config`; with a
    /// client CA, a client certificate is required); `None` is plain TCP.
    /// The handshake has `connect_timeout`.
    pub tls: Option<Arc<medtwin_tls::rustls::ServerConfig>>,
}

impl BrokerOptions {
    /// Loopback, a free port, default limits.
    pub fn local() -> Self {
        BrokerOptions::at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// `addr`, default limits: 1024 connections, 1 MiB packets, 10 s to
    /// CONNECT, 100,000 retained topics, 10,000 queued and 1,000 in flight
    /// per subscriber.
    pub fn at(addr: SocketAddr) -> Self {
        BrokerOptions {
            addr,
            max_connections: 1024,
            max_packet_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(10),
            max_retained: 100_000,
            client_queue: 10_000,
            max_in_flight: 1000,
            tls: None,
        }
    }
}

#[derive(Debug, Default)]
struct Counters(Mutex<BTreeMap<&'static str, u64>>);

impl Counters {
    fn add(&self, key: &'static str, n: u64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(key).or_default() += n;
    }
}

struct Client {
    connection: u64,
    version: Version,
    queue: mpsc::Sender<Publish>,
    kick: Arc<Notify>,
    subscriptions: Vec<codec::Filter>,
}

#[derive(Default)]
struct Router {
    clients: HashMap<String, Client>,
    retained: BTreeMap<String, (Bytes, Qos)>,
    next_connection: u64,
}

struct Shared {
    router: Mutex<Router>,
    counters: Counters,
    options: BrokerOptions,
}

impl Shared {
    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers to every matching subscription; keeps it if retained.
    /// Returns how many clients it was queued for.
    fn route(&self, message: &Publish, from: &str) -> usize {
        let mut router = self.router();
        if message.retain {
            if message.payload.is_empty() {
                // §3.3.1.3: an empty retained message deletes the topic's.
                router.retained.remove(&message.topic);
            } else if router.retained.len() < self.options.max_retained
                || router.retained.contains_key(&message.topic)
            {
                router.retained.insert(
                    message.topic.clone(),
                    (message.payload.clone(), message.qos),
                );
            } else {
                self.counters.add("retained_dropped_full", 1);
            }
        }
        let mut queued = 0;
        for (id, client) in &router.clients {
            // One copy per client at the highest matching QoS (§3.3.4).
            let mut best: Option<(Qos, bool)> = None;
            for sub in &client.subscriptions {
                if (sub.no_local && id == from) || !matches(&sub.path, &message.topic) {
                    continue;
                }
                let rap = sub.retain_as_published && client.version == Version::V5;
                best = Some(match best {
                    Some((q, r)) => (q.max(sub.qos), r || rap),
                    None => (sub.qos, rap),
                });
            }
            let Some((qos, rap)) = best else { continue };
            let out = Publish {
                topic: message.topic.clone(),
                payload: message.payload.clone(),
                qos: message.qos.min(qos),
                // §3.3.1.3: retain is cleared on normal delivery unless
                // MQTT 5 Retain As Published.
                retain: rap && message.retain,
                dup: false,
                pkid: 0,
            };
            match client.queue.try_send(out) {
                Ok(()) => queued += 1,
                Err(_) => self.counters.add("dropped_queue_full", 1),
            }
        }
        queued
    }
}

/// A running embedded broker.
pub struct Broker {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(options: BrokerOptions) -> Result<Broker, BrokerError> {
        let listener =
            TcpListener::bind(options.addr)
                .await
                .map_err(|source| BrokerError::Bind {
                    addr: options.addr,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| BrokerError::Bind {
            addr: options.addr,
            source,
        })?;
        let shared = Arc::new(Shared {
            router: Mutex::new(Router::default()),
            counters: Counters::default(),
            options,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept(listener, Arc::clone(&shared), stopped));
        Ok(Broker {
            addr,
            stop,
            task: Some(task),
            shared,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters: `connections`, `refused_max_connections`, `received`,
    /// `delivered`, `dropped_queue_full`, `wills`, `takeovers`,
    /// `keepalive_timeouts`, `malformed`, ...
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let map = self
            .shared
            .counters
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    /// Retained messages now held (topic → payload).
    pub fn retained(&self) -> BTreeMap<String, Bytes> {
        let router = self.shared.router();
        router
            .retained
            .iter()
            .map(|(topic, (payload, _))| (topic.clone(), payload.clone()))
            .collect()
    }

    /// Closes the listener and every connection (MQTT 5 clients get
    /// DISCONNECT 0x8B, server shutting down; no wills are published) and
    /// waits at most 2 s for the tasks.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if timeout(Duration::from_secs(3), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            // Dropping the accept task's JoinSet aborts every connection.
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if connections.len() >= shared.options.max_connections {
                        shared.counters.add("refused_max_connections", 1);
                        drop(stream);
                        continue;
                    }
                    shared.counters.add("connections", 1);
                    connections.spawn(open(stream, Arc::clone(&shared), stopped.clone()));
                }
                Err(_) => {
                    // Out of descriptors and the like: count, breathe, go on.
                    shared.counters.add("accept_errors", 1);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

/// Why a connection ended, and whether its will is published.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// DISCONNECT with this reason code (0 for 3.1.1).
    Disconnect(u8),
    Eof,
    Io,
    KeepAlive,
    Malformed,
    Protocol,
    TakenOver,
    Shutdown,
}

impl End {
    /// MQTT 3.1.1 §3.1.2.5 / MQTT 5 §3.1.2.5: the will is published unless
    /// the client sent DISCONNECT with reason 0x00. We skip it when the
    /// broker itself is going away.
    fn publishes_will(&self) -> bool {
        !matches!(self, End::Disconnect(0) | End::Shutdown)
    }

    /// The MQTT 5 DISCONNECT reason code the server sends before closing.
    fn server_reason(&self) -> Option<u8> {
        match self {
            End::KeepAlive => Some(0x8D),
            End::Malformed => Some(0x81),
            End::Protocol => Some(0x82),
            End::TakenOver => Some(0x8E),
            End::Shutdown => Some(0x8B),
            End::Disconnect(_) | End::Eof | End::Io => None,
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(write: &mut W, out: &mut BytesMut) -> bool {
    if out.is_empty() {
        return true;
    }
    // The flush matters over TLS (a record may wait in its buffer); over
    // TCP it is free.
    let ok = matches!(
        timeout(Duration::from_secs(10), async {
            write.write_all(out).await?;
            write.flush().await
        })
        .await,
        Ok(Ok(()))
    );
    out.clear();
    ok
}

/// A connection accepted: over TLS first when the broker has it, then
/// MQTT. One socket for both directions: the session reads inside
/// `select!` and writes between.
async fn open(stream: TcpStream, shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    match shared.options.tls.clone() {
        None => serve(stream, shared, stopped).await,
        Some(config) => {
            match medtwin_tls::accept(config, stream, shared.options.connect_timeout).await {
                Ok(tls) => serve(tls, shared, stopped).await,
                Err(error) => {
                    shared.counters.add("tls_failures", 1);
                    if let Some(cause) = medtwin_tls::classify(&error) {
                        shared.counters.add(cause.name(), 1);
                    }
                }
            }
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let max = shared.options.max_packet_bytes as usize;
    let mut buffer = BytesMut::with_capacity(4096);
    let deadline = Instant::now() + shared.options.connect_timeout;
    let level = loop {
        match codec::connect_level(&buffer, max) {
            Ok(Some(level)) => break level,
            Ok(None) => {}
            Err(_) => {
                shared.counters.add("malformed", 1);
                return;
            }
        }
        match timeout_at(deadline, stream.read_buf(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => {}
            Err(_) => {
                shared.counters.add("connect_timeouts", 1);
                return;
            }
            Ok(_) => return,
        }
    };
    let version = match level {
        4 => Version::V311,
        5 => Version::V5,
        _ => {
            // MQTT 3.1.1 §3.1.2.2: CONNACK return code 0x01 (unacceptable
            // protocol level), then close.
            shared.counters.add("refused_protocol_level", 1);
            let _ = timeout(
                Duration::from_secs(1),
                write_all(
                    &mut stream,
                    &mut BytesMut::from(&[0x20, 0x02, 0x00, 0x01][..]),
                ),
            )
            .await;
            return;
        }
    };
    let connect = loop {
        match codec::decode(version, &mut buffer, max) {
            Ok(Some(Packet::Connect(connect))) => break connect,
            Ok(Some(_)) | Err(_) => {
                shared.counters.add("malformed", 1);
                return;
            }
            Ok(None) => {}
        }
        match timeout_at(deadline, stream.read_buf(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => {}
            Err(_) => {
                shared.counters.add("connect_timeouts", 1);
                return;
            }
            Ok(_) => return,
        }
    };
    let mut out = BytesMut::new();
    let (client_id, assigned) = if connect.client_id.is_empty() {
        if version == Version::V311 && !connect.clean {
            // §3.1.3.1: a zero-byte id needs a clean session; code 0x02.
            let ack = ConnAck {
                code: 2,
                ..ConnAck::default()
            };
            let _ = codec::encode(version, &Packet::ConnAck(ack), &mut out);
            write_all(&mut stream, &mut out).await;
            return;
        }
        let n = {
            let mut router = shared.router();
            router.next_connection += 1;
            router.next_connection
        };
        (format!("medtwin-auto-{n}"), true)
    } else {
        (connect.client_id.clone(), false)
    };
    let (queue, mut queued) = mpsc::channel(shared.options.client_queue.max(1));
    let kick = Arc::new(Notify::new());
    let connection = {
        let mut router = shared.router();
        router.next_connection += 1;
        let connection = router.next_connection;
        let client = Client {
            connection,
            version,
            queue,
            kick: Arc::clone(&kick),
            subscriptions: Vec::new(),
        };
        if let Some(old) = router.clients.insert(client_id.clone(), client) {
            // §3.1.4: a second connection with the same id takes over.
            shared.counters.add("takeovers", 1);
            old.kick.notify_one();
        }
        connection
    };
    let ack = ConnAck {
        session_present: false,
        code: 0,
        receive_max: (version == Version::V5).then_some(u16::MAX),
        max_packet_bytes: (version == Version::V5).then_some(shared.options.max_packet_bytes),
        assigned_client_id: (assigned && version == Version::V5).then(|| client_id.clone()),
        ..ConnAck::default()
    };
    let _ = codec::encode(version, &Packet::ConnAck(ack), &mut out);
    let mut session = Session {
        shared: &shared,
        version,
        client_id: &client_id,
        out,
        received_qos2: HashSet::new(),
        sent: HashMap::new(),
        last_pkid: 0,
        // MQTT 5 §3.1.2.11.3/4: the client's Receive Maximum and Maximum
        // Packet Size bound what we send it.
        max_in_flight: usize::from(
            connect
                .receive_max
                .unwrap_or(u16::MAX)
                .min(shared.options.max_in_flight)
                .max(1),
        ),
        client_max_packet: connect.max_packet_bytes.map_or(usize::MAX, |m| m as usize),
    };
    let keep_alive = Duration::from_secs(u64::from(connect.keep_alive_s));
    let mut last_read = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let end = loop {
        if !write_all(&mut stream, &mut session.out).await {
            break End::Io;
        }
        let room = session.sent.len() < session.max_in_flight;
        tokio::select! {
            _ = stopped.changed() => break End::Shutdown,
            () = kick.notified() => break End::TakenOver,
            n = stream.read_buf(&mut buffer) => match n {
                Ok(0) => break End::Eof,
                Err(_) => break End::Io,
                Ok(_) => {
                    last_read = Instant::now();
                    if let Some(end) = session.read_packets(&mut buffer, max) {
                        break end;
                    }
                }
            },
            message = queued.recv(), if room => {
                // The router drops our sender only when a new connection
                // with our client id replaced us (it kicks us too; this
                // may be seen first).
                let Some(message) = message else { break End::TakenOver };
                session.send(message);
                while session.sent.len() < session.max_in_flight {
                    let Ok(message) = queued.try_recv() else { break };
                    session.send(message);
                }
            },
            _ = tick.tick() => {
                // §3.1.2.10: 1.5 times the keep-alive without a packet.
                if !keep_alive.is_zero() && last_read.elapsed() > keep_alive * 3 / 2 {
                    shared.counters.add("keepalive_timeouts", 1);
                    break End::KeepAlive;
                }
            },
        }
    };
    if version == Version::V5
        && let Some(code) = end.server_reason()
    {
        let _ = codec::encode(version, &Packet::Disconnect { code }, &mut session.out);
        write_all(&mut stream, &mut session.out).await;
    }
    let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
    {
        let mut router = shared.router();
        if router
            .clients
            .get(&client_id)
            .is_some_and(|c| c.connection == connection)
        {
            router.clients.remove(&client_id);
        }
    }
    if end.publishes_will()
        && let Some(will) = connect.will
        && valid_topic(&will.topic)
    {
        shared.counters.add("wills", 1);
        shared.route(&will, &client_id);
    }
}

struct Session<'a> {
    shared: &'a Shared,
    version: Version,
    client_id: &'a str,
    out: BytesMut,
    received_qos2: HashSet<u16>,
    /// Packet ids of QoS 1/2 messages sent to this client and not yet done.
    sent: HashMap<u16, Qos>,
    last_pkid: u16,
    max_in_flight: usize,
    client_max_packet: usize,
}

impl Session<'_> {
    fn encode(&mut self, packet: &Packet) -> Result<(), End> {
        codec::encode(self.version, packet, &mut self.out).map_err(|_| End::Protocol)
    }

    fn read_packets(&mut self, buffer: &mut BytesMut, max: usize) -> Option<End> {
        loop {
            match codec::decode(self.version, buffer, max) {
                Ok(Some(packet)) => {
                    if let Err(end) = self.incoming(packet) {
                        return Some(end);
                    }
                }
                Ok(None) => return None,
                Err(_) => {
                    self.shared.counters.add("malformed", 1);
                    return Some(End::Malformed);
                }
            }
        }
    }

    fn send(&mut self, mut message: Publish) {
        if message.qos != Qos::AtMostOnce {
            message.pkid = loop {
                self.last_pkid = self.last_pkid.wrapping_add(1);
                if self.last_pkid != 0 && !self.sent.contains_key(&self.last_pkid) {
                    break self.last_pkid;
                }
            };
        }
        let before = self.out.len();
        let pkid = message.pkid;
        let qos = message.qos;
        if codec::encode(self.version, &Packet::Publish(message), &mut self.out).is_err() {
            self.out.truncate(before);
            self.shared.counters.add("dropped_unencodable", 1);
            return;
        }
        if self.out.len() - before > self.client_max_packet {
            // MQTT 5 §3.1.2.11.4: discard what the client cannot take.
            self.out.truncate(before);
            self.shared.counters.add("dropped_client_max_packet", 1);
            return;
        }
        self.shared.counters.add("delivered", 1);
        if qos != Qos::AtMostOnce {
            self.sent.insert(pkid, qos);
        }
    }

    fn incoming(&mut self, packet: Packet) -> Result<(), End> {
        let v5 = self.version == Version::V5;
        match packet {
            Packet::Publish(publish) => {
                if !valid_topic(&publish.topic) {
                    return Err(End::Protocol);
                }
                self.shared.counters.add("received", 1);
                match publish.qos {
                    Qos::AtMostOnce => {
                        self.shared.route(&publish, self.client_id);
                    }
                    Qos::AtLeastOnce => {
                        let queued = self.shared.route(&publish, self.client_id);
                        // MQTT 5 §3.4.2.1: 0x10 No matching subscribers.
                        let code = if v5 && queued == 0 { 0x10 } else { 0 };
                        self.encode(&Packet::PubAck {
                            pkid: publish.pkid,
                            code,
                        })?;
                    }
                    Qos::ExactlyOnce => {
                        // §4.3.3 method B: route once, on first receipt.
                        let mut queued = 1;
                        if self.received_qos2.insert(publish.pkid) {
                            queued = self.shared.route(&publish, self.client_id);
                        }
                        let code = if v5 && queued == 0 { 0x10 } else { 0 };
                        self.encode(&Packet::PubRec {
                            pkid: publish.pkid,
                            code,
                        })?;
                    }
                }
            }
            Packet::PubRel { pkid, .. } => {
                let known = self.received_qos2.remove(&pkid);
                let code = if known || !v5 { 0 } else { 0x92 };
                self.encode(&Packet::PubComp { pkid, code })?;
            }
            Packet::PubAck { pkid, .. } | Packet::PubComp { pkid, .. } => {
                self.sent.remove(&pkid);
            }
            Packet::PubRec { pkid, code } => {
                if code >= 0x80 {
                    self.sent.remove(&pkid);
                } else {
                    let code = if self.sent.contains_key(&pkid) || !v5 {
                        0
                    } else {
                        0x92
                    };
                    self.encode(&Packet::PubRel { pkid, code })?;
                }
            }
            Packet::Subscribe { pkid, filters } => self.subscribe(pkid, filters)?,
            Packet::Unsubscribe { pkid, filters } => {
                let mut codes = Vec::new();
                {
                    let mut router = self.shared.router();
                    let subs = router
                        .clients
                        .get_mut(self.client_id)
                        .map(|c| &mut c.subscriptions);
                    if let Some(subs) = subs {
                        for filter in &filters {
                            let before = subs.len();
                            subs.retain(|s| s.path != *filter);
                            // MQTT 5 §3.11.3: 0x11 No subscription existed.
                            codes.push(if subs.len() < before { 0x00 } else { 0x11 });
                        }
                    }
                }
                codes.resize(filters.len(), 0x11);
                self.encode(&Packet::UnsubAck { pkid, codes })?;
            }
            Packet::PingReq => self.encode(&Packet::PingResp)?,
            Packet::Disconnect { code } => return Err(End::Disconnect(code)),
            // §3.1.0: a second CONNECT is a protocol violation; the rest are
            // server-to-client packets.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck { .. }
            | Packet::UnsubAck { .. }
            | Packet::PingResp
            | Packet::Auth => return Err(End::Protocol),
        }
        Ok(())
    }

    fn subscribe(&mut self, pkid: u16, filters: Vec<codec::Filter>) -> Result<(), End> {
        let v5 = self.version == Version::V5;
        let mut codes = Vec::with_capacity(filters.len());
        let mut granted = Vec::new();
        for filter in filters {
            if filter.path.starts_with("$share/") {
                // MQTT 5 §4.8.2: not supported here (0x9E); 3.1.1 failure.
                codes.push(if v5 { 0x9E } else { 0x80 });
            } else if !valid_filter(&filter.path) {
                // 0x8F Topic Filter invalid (5), 0x80 Failure (3.1.1).
                codes.push(if v5 { 0x8F } else { 0x80 });
            } else {
                codes.push(filter.qos.level());
                granted.push(filter);
            }
        }
        let mut retained = Vec::new();
        {
            let mut router = self.shared.router();
            let router = &mut *router;
            if let Some(client) = router.clients.get_mut(self.client_id) {
                for filter in &granted {
                    // §3.8.4: a subscription to an existing filter replaces it.
                    client.subscriptions.retain(|s| s.path != filter.path);
                    client.subscriptions.push(filter.clone());
                    for (topic, (payload, qos)) in &router.retained {
                        if matches(&filter.path, topic) {
                            retained.push(Publish {
                                topic: topic.clone(),
                                payload: payload.clone(),
                                qos: (*qos).min(filter.qos),
                                // §3.3.1.3: retained messages sent on
                                // subscribing carry retain = 1.
                                retain: true,
                                dup: false,
                                pkid: 0,
                            });
                        }
                    }
                }
            }
        }
        self.encode(&Packet::SubAck { pkid, codes })?;
        for message in retained {
            self.send(message);
        }
        Ok(())
    }
}
