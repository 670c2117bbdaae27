//! The client against real brokers over loopback: the embedded one, and
//! Debian's mosquitto started by the test (skipped with
//! `MEDTWIN_NO_MOSQUITTO` set, unless `CI` is set too), plus fake peers
//! that never answer, never acknowledge or refuse with MQTT 5 reason codes.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use medtwin_mqtt::{
    Broker, BrokerOptions, ConnectOptions, Connection, Delivery, DownCause, Message, Outcome,
    PublishError, Qos, Version,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

const QOS: [Qos; 3] = [Qos::AtMostOnce, Qos::AtLeastOnce, Qos::ExactlyOnce];
const VERSIONS: [Version; 2] = [Version::V311, Version::V5];

/// A broker the test can stop and start again on the same port.
enum Server {
    Embedded {
        broker: Option<Broker>,
        addr: SocketAddr,
    },
    Mosquitto(Mosquitto),
}

impl Server {
    async fn embedded() -> Server {
        let broker = Broker::start(BrokerOptions::local()).await.unwrap();
        let addr = broker.addr();
        Server::Embedded {
            broker: Some(broker),
            addr,
        }
    }

    fn mosquitto() -> Option<Server> {
        if skip_mosquitto() {
            return None;
        }
        Some(Server::Mosquitto(Mosquitto::start(free_port())))
    }

    fn addr(&self) -> String {
        match self {
            Server::Embedded { addr, .. } => addr.to_string(),
            Server::Mosquitto(m) => format!("127.0.0.1:{}", m.port),
        }
    }

    async fn stop(&mut self) {
        match self {
            Server::Embedded { broker, .. } => {
                if let Some(broker) = broker.take() {
                    broker.stop().await;
                }
            }
            Server::Mosquitto(m) => m.stop(),
        }
    }

    async fn start_again(&mut self) {
        match self {
            Server::Embedded { broker, addr } => {
                *broker = Some(Broker::start(BrokerOptions::at(*addr)).await.unwrap());
            }
            Server::Mosquitto(m) => *m = Mosquitto::start(m.port),
        }
    }
}

/// `MEDTWIN_NO_MOSQUITTO` set: say so and skip, unless `CI` is set too.
fn skip_mosquitto() -> bool {
    if std::env::var_os("MEDTWIN_NO_MOSQUITTO").is_none() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must test against mosquitto, but MEDTWIN_NO_MOSQUITTO is set"
    );
    println!("skipped: MEDTWIN_NO_MOSQUITTO is set");
    true
}

/// Debian's mosquitto on 127.0.0.1:`port`, with a generated config; killed
/// on drop.
struct Mosquitto {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start(port: u16) -> Mosquitto {
        Mosquitto::start_with(port, |_| "allow_anonymous true\n".to_owned())
    }

    /// With more configuration, made from the config folder.
    fn start_with(port: u16, extra: impl FnOnce(&std::path::Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\npersistence false\nlog_dest none\n{}",
                extra(dir.path())
            ),
        )
        .unwrap();
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/test.sh installs it), or set MEDTWIN_NO_MOSQUITTO");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Mosquitto {
                    child: Some(child),
                    port,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mosquitto did not listen on 127.0.0.1:{port} within 5 s");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn options(addr: &str, id: &str, version: Version) -> ConnectOptions {
    let mut options = ConnectOptions::new(addr, id, version);
    options.ack_timeout = Duration::from_secs(3);
    options.connect_timeout = Duration::from_secs(2);
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(400);
    options
}

async fn subscriber(
    addr: &str,
    id: &str,
    version: Version,
    filter: &str,
) -> (Connection, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel(1000);
    let mut o = options(addr, id, version);
    o.deliveries = Some(tx);
    let connection = Connection::connect(o).await.unwrap();
    let granted = connection
        .subscribe(filter, Qos::ExactlyOnce)
        .await
        .unwrap();
    assert_eq!(granted, Qos::ExactlyOnce);
    (connection, rx)
}

async fn next(rx: &mut mpsc::Receiver<Delivery>) -> Delivery {
    timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("the channel is open")
}

async fn nothing_within(rx: &mut mpsc::Receiver<Delivery>, wait: Duration) {
    if let Ok(Some(d)) = timeout(wait, rx.recv()).await {
        panic!("expected nothing, got {d:?}");
    }
}

async fn round_trips(server: &Server) {
    let addr = server.addr();
    for version in VERSIONS {
        let filter = format!("rt/{}/#", version.name());
        let (sub, mut rx) = subscriber(&addr, &format!("rt-sub-{version}"), version, &filter).await;
        let publisher = Connection::connect(options(&addr, &format!("rt-pub-{version}"), version))
            .await
            .unwrap();
        for qos in QOS {
            let topic = format!("rt/{}/q{}/dev", version.name(), qos.level());
            for i in 0..20 {
                publisher
                    .publish(&topic, format!("{{\"i\":{i}}}"), qos, false)
                    .await
                    .unwrap_or_else(|e| panic!("{version} qos {qos} message {i}: {e}"));
            }
            for i in 0..20 {
                let d = next(&mut rx).await;
                assert_eq!(d.topic, topic);
                assert_eq!(
                    &d.payload[..],
                    format!("{{\"i\":{i}}}").as_bytes(),
                    "{version} qos {qos}: in order"
                );
                assert_eq!(
                    d.qos, qos,
                    "delivered at the publish's QoS (subscribed at 2)"
                );
                assert!(!d.retain);
            }
        }
        let counters = publisher.counters();
        assert_eq!(counters.get("published"), Some(&60), "{counters:?}");
        assert_eq!(counters.get("connects"), Some(&1));
        assert_eq!(sub.counters().get("deliveries"), Some(&60));
        // Concurrent publishes share the in-flight window and all complete.
        let topic = format!("rt/{}/burst", version.name());
        let publisher = Arc::new(publisher);
        let results = concurrently(&publisher, &topic, 200).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let mut payloads: Vec<usize> = Vec::new();
        for _ in 0..200 {
            payloads.push(
                String::from_utf8_lossy(&next(&mut rx).await.payload)
                    .parse()
                    .unwrap(),
            );
        }
        payloads.sort_unstable();
        assert_eq!(payloads, (0..200).collect::<Vec<_>>());
        publisher.disconnect().await;
        sub.disconnect().await;
    }
}

/// `n` QoS 1 publishes at once, each on its own task.
async fn concurrently(
    connection: &Arc<Connection>,
    topic: &str,
    n: usize,
) -> Vec<Result<(), PublishError>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let connection = Arc::clone(connection);
        let topic = topic.to_owned();
        set.spawn(async move {
            connection
                .publish(topic, format!("{i}"), Qos::AtLeastOnce, false)
                .await
        });
    }
    set.join_all().await
}

async fn will_and_retained(server: &Server) {
    let addr = server.addr();
    for version in VERSIONS {
        let status = format!("status/{}/dev-1", version.name());
        let (watcher, mut rx) = subscriber(
            &addr,
            &format!("w-{version}"),
            version,
            &format!("status/{}/#", version.name()),
        )
        .await;
        let offline = Message {
            topic: status.as_str().into(),
            payload: "offline".into(),
            qos: Qos::AtLeastOnce,
            retain: true,
        };
        let mut o = options(&addr, &format!("dev-1-{version}"), version);
        o.will = Some(offline.clone());
        o.birth = Some(Message {
            payload: "online".into(),
            ..offline.clone()
        });
        let device = Connection::connect(o.clone()).await.unwrap();
        let d = next(&mut rx).await;
        assert_eq!(
            (d.topic.as_str(), &d.payload[..]),
            (status.as_str(), &b"online"[..])
        );
        // Dropping the socket without DISCONNECT: the broker sends the will.
        device.kill().await;
        let d = next(&mut rx).await;
        assert_eq!(
            &d.payload[..],
            b"offline",
            "{version}: will on an unclean end"
        );
        // A late subscriber sees the retained will, flagged retained.
        let (late, mut late_rx) =
            subscriber(&addr, &format!("late-{version}"), version, &status).await;
        let d = next(&mut late_rx).await;
        assert_eq!((&d.payload[..], d.retain), (&b"offline"[..], true));
        // A clean DISCONNECT discards the will.
        let device = Connection::connect(o).await.unwrap();
        assert_eq!(&next(&mut rx).await.payload[..], b"online");
        assert_eq!(&next(&mut late_rx).await.payload[..], b"online");
        device.disconnect().await;
        nothing_within(&mut rx, Duration::from_millis(400)).await;
        // An empty retained message clears the topic (§3.3.1.3).
        let cleaner = Connection::connect(options(&addr, &format!("clean-{version}"), version))
            .await
            .unwrap();
        cleaner
            .publish(&status, "", Qos::AtLeastOnce, true)
            .await
            .unwrap();
        let (again, mut again_rx) =
            subscriber(&addr, &format!("again-{version}"), version, &status).await;
        nothing_within(&mut again_rx, Duration::from_millis(400)).await;
        for c in [watcher, late, cleaner, again] {
            c.disconnect().await;
        }
    }
}

async fn reconnects_after_restart(server: &mut Server) {
    let addr = server.addr();
    let version = Version::V5;
    let (sub, mut rx) = subscriber(&addr, "rs-sub", version, "rs/#").await;
    let mut o = options(&addr, "rs-pub", version);
    o.birth = Some(Message {
        topic: "rs/status".into(),
        payload: "online".into(),
        qos: Qos::AtLeastOnce,
        retain: true,
    });
    let publisher = Connection::connect(o).await.unwrap();
    assert_eq!(&next(&mut rx).await.payload[..], b"online");
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Down: fails at once with the cause, or with the lost connection.
    let error = publisher
        .publish("rs/x", "down", Qos::AtLeastOnce, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            PublishError::NotConnected {
                cause: DownCause::ConnectionRefused
            } | PublishError::NotConnected {
                cause: DownCause::ClosedByBroker
            } | PublishError::NotConnected {
                cause: DownCause::ServerDisconnect(0x8B)
            }
        ),
        "{error:?}"
    );
    assert!(!publisher.is_connected());
    server.start_again().await;
    // Back: the client reconnects by itself, re-subscribes, re-announces.
    let mut ok = false;
    for _ in 0..60 {
        if publisher
            .publish("rs/x", "back", Qos::AtLeastOnce, false)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "publish works again after the restart: {:?}",
        publisher.counters()
    );
    let mut seen = Vec::new();
    while seen.iter().all(|p: &String| p != "back") {
        seen.push(String::from_utf8_lossy(&next(&mut rx).await.payload).into_owned());
    }
    assert!(
        seen.contains(&"online".to_owned()),
        "birth after reconnect: {seen:?}"
    );
    let counters = publisher.counters();
    assert!(
        counters.get("reconnects").copied().unwrap_or(0) >= 1,
        "{counters:?}"
    );
    assert!(
        counters.keys().any(|k| k.starts_with("disconnects_")),
        "the loss is counted by cause: {counters:?}"
    );
    assert!(
        counters
            .get("connect_failures_connection_refused")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{counters:?}"
    );
    assert!(sub.counters().get("resubscribes").copied().unwrap_or(0) >= 1);
    publisher.disconnect().await;
    sub.disconnect().await;
}

#[tokio::test]
async fn embedded_round_trips_each_qos_and_version() {
    round_trips(&Server::embedded().await).await;
}

#[tokio::test]
async fn embedded_will_and_retained_status() {
    will_and_retained(&Server::embedded().await).await;
}

#[tokio::test]
async fn embedded_reconnect_after_restart_is_counted() {
    let mut server = Server::embedded().await;
    reconnects_after_restart(&mut server).await;
    server.stop().await;
}

#[tokio::test]
async fn mosquitto_round_trips_each_qos_and_version() {
    let Some(server) = Server::mosquitto() else {
        return;
    };
    round_trips(&server).await;
}

#[tokio::test]
async fn mosquitto_will_and_retained_status() {
    let Some(server) = Server::mosquitto() else {
        return;
    };
    will_and_retained(&server).await;
}

#[tokio::test]
async fn mosquitto_reconnect_after_restart_is_counted() {
    let Some(mut server) = Server::mosquitto() else {
        return;
    };
    reconnects_after_restart(&mut server).await;
}

#[tokio::test]
async fn connecting_to_nothing_is_refused_with_its_cause() {
    let port = free_port();
    let error = Connection::connect(options(&format!("127.0.0.1:{port}"), "x", Version::V311))
        .await
        .unwrap_err();
    assert_eq!(error.cause, DownCause::ConnectionRefused, "{error}");
}

/// How a fake MQTT 5 peer misbehaves.
#[derive(Clone, Copy)]
enum Peer {
    /// Reads CONNECT, never answers.
    NoConnAck,
    /// CONNACK, then never acknowledges a PUBLISH.
    NeverAck,
    /// CONNACK, then PUBACK / PUBREC with this reason code.
    Refuse(u8),
    /// CONNACK with this reason code.
    Reject(u8),
}

/// A fake MQTT 5 broker built from rumqttc's codec; counts PUBLISHes.
async fn fake_peer(peer: Peer) -> (String, Arc<AtomicUsize>) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(packet) = Packet::read(&mut buf, None) {
                        let answer: Vec<u8> = match (packet, peer) {
                            (Packet::Connect(..), Peer::NoConnAck) => vec![],
                            // CONNACK: flags, reason code, empty properties.
                            (Packet::Connect(..), Peer::Reject(code)) => {
                                vec![0x20, 0x03, 0x00, code, 0x00]
                            }
                            (Packet::Connect(..), _) => vec![0x20, 0x03, 0x00, 0x00, 0x00],
                            (Packet::Publish(p), peer) => {
                                counter.fetch_add(1, Ordering::SeqCst);
                                let [hi, lo] = p.pkid.to_be_bytes();
                                match (peer, p.qos as u8) {
                                    (Peer::Refuse(code), 1) => vec![0x40, 0x03, hi, lo, code],
                                    (Peer::Refuse(code), 2) => vec![0x50, 0x03, hi, lo, code],
                                    _ => vec![],
                                }
                            }
                            // PINGREQ → PINGRESP.
                            (Packet::PingReq(_), _) => vec![0xD0, 0x00],
                            _ => vec![],
                        };
                        if !answer.is_empty() && stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_peer_that_never_sends_connack_times_out() {
    let (addr, _) = fake_peer(Peer::NoConnAck).await;
    let mut o = options(&addr, "x", Version::V5);
    o.connect_timeout = Duration::from_millis(300);
    let error = Connection::connect(o).await.unwrap_err();
    assert_eq!(error.cause, DownCause::ConnAckTimeout, "{error}");
}

#[tokio::test]
async fn a_connack_refusal_carries_its_code() {
    let (addr, _) = fake_peer(Peer::Reject(0x87)).await;
    let error = Connection::connect(options(&addr, "x", Version::V5))
        .await
        .unwrap_err();
    assert_eq!(error.cause, DownCause::Rejected(0x87), "{error}");
}

#[tokio::test]
async fn unacknowledged_publishes_time_out_and_in_flight_is_bounded() {
    let (addr, seen) = fake_peer(Peer::NeverAck).await;
    let mut o = options(&addr, "x", Version::V5);
    o.ack_timeout = Duration::from_millis(600);
    o.max_in_flight = 3;
    let connection = Arc::new(Connection::connect(o).await.unwrap());
    let results = timeout(Duration::from_secs(5), concurrently(&connection, "a/b", 10))
        .await
        .unwrap();
    assert!(
        results.iter().all(|r| *r == Err(PublishError::Timeout)),
        "{results:?}"
    );
    // Only the window went out before the connection was taken as stalled.
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "in flight is bounded by max_in_flight"
    );
    let counters = connection.counters();
    assert_eq!(
        counters.get("publish_failed_timeout"),
        Some(&10),
        "{counters:?}"
    );
    connection.kill().await;
}

/// Waits for `n` tagged outcomes; panics on a tag reported twice.
async fn outcomes(
    rx: &mut mpsc::UnboundedReceiver<Outcome>,
    n: usize,
) -> std::collections::BTreeMap<u64, Result<(), PublishError>> {
    let mut fates = std::collections::BTreeMap::new();
    while fates.len() < n {
        let (tag, fate) = timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an outcome within 10 s")
            .expect("the channel is open");
        assert!(
            fates.insert(tag, fate).is_none(),
            "tag {tag} answered twice"
        );
    }
    fates
}

#[tokio::test]
async fn tagged_publishes_report_each_fate_once_with_its_tag() {
    let server = Server::embedded().await;
    let addr = server.addr();
    let (sub, mut rx) = subscriber(&addr, "tag-sub", Version::V5, "tag/#").await;
    let publisher = Connection::connect(options(&addr, "tag-pub", Version::V5))
        .await
        .unwrap();
    let (tx, mut fates_rx) = mpsc::unbounded_channel();
    let mut tag = 0;
    for qos in QOS {
        for i in 0..100 {
            let message = Message {
                topic: format!("tag/q{}", qos.level()).into(),
                payload: format!("{i}").into(),
                qos,
                retain: false,
            };
            publisher.publish_tagged(message, tag, &tx).await.unwrap();
            tag += 1;
        }
    }
    let fates = outcomes(&mut fates_rx, 300).await;
    assert_eq!(
        fates.keys().copied().collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    assert!(fates.values().all(Result::is_ok), "{fates:?}");
    for _ in 0..300 {
        next(&mut rx).await;
    }
    nothing_within(&mut rx, Duration::from_millis(200)).await;
    assert!(
        fates_rx.try_recv().is_err(),
        "no fate beyond one per publish"
    );
    // The caller keeps the counts of tagged publishes.
    assert_eq!(publisher.counters().get("published"), None);
    publisher.disconnect().await;
    sub.disconnect().await;

    // Unacknowledged: every publish, in flight or waiting for room, times
    // out, each answered once.
    let (addr, seen) = fake_peer(Peer::NeverAck).await;
    let mut o = options(&addr, "x", Version::V5);
    o.ack_timeout = Duration::from_millis(600);
    o.max_in_flight = 3;
    let connection = Connection::connect(o).await.unwrap();
    for tag in 0..10 {
        let message = Message {
            topic: "a/b".into(),
            payload: "x".into(),
            qos: Qos::AtLeastOnce,
            retain: false,
        };
        connection.publish_tagged(message, tag, &tx).await.unwrap();
    }
    let fates = outcomes(&mut fates_rx, 10).await;
    assert!(
        fates.values().all(|f| *f == Err(PublishError::Timeout)),
        "{fates:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 3, "in flight is bounded");
    connection.kill().await;
    // A dead connection refuses at once, and reports nothing later.
    let message = Message {
        topic: "a/b".into(),
        payload: "x".into(),
        qos: Qos::AtMostOnce,
        retain: false,
    };
    assert_eq!(
        connection.publish_tagged(message, 99, &tx).await,
        Err(PublishError::Closed)
    );
    assert!(
        timeout(Duration::from_millis(300), fates_rx.recv())
            .await
            .is_err(),
        "nothing reported for a publish never handed over"
    );
}

#[tokio::test]
async fn mqtt5_refusals_carry_the_reason_code() {
    let (addr, seen) = fake_peer(Peer::Refuse(0x97)).await;
    let connection = Connection::connect(options(&addr, "x", Version::V5))
        .await
        .unwrap();
    for qos in [Qos::AtLeastOnce, Qos::ExactlyOnce] {
        let error = connection
            .publish("a/b", "x", qos, false)
            .await
            .unwrap_err();
        assert_eq!(error, PublishError::Refused { code: 0x97 }, "qos {qos}");
    }
    // QoS 0 has no acknowledgement: done once written.
    connection
        .publish("a/b", "x", Qos::AtMostOnce, false)
        .await
        .unwrap();
    assert_eq!(
        connection.counters().get("publish_failed_refused_rc_151"),
        Some(&2)
    );
    // The connection stays up after a refusal.
    assert!(connection.is_connected());
    connection.disconnect().await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalid_topics_are_refused_before_sending() {
    let server = Server::embedded().await;
    let connection = Connection::connect(options(&server.addr(), "x", Version::V311))
        .await
        .unwrap();
    for topic in ["", "a/+", "a/#"] {
        let error = connection
            .publish(topic, "x", Qos::AtLeastOnce, false)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PublishError::InvalidTopic(_)),
            "{topic:?}: {error:?}"
        );
    }
    assert!(
        connection
            .subscribe("a/#/b", Qos::AtMostOnce)
            .await
            .is_err()
    );
    connection.disconnect().await;
}

/// CONNECT bytes for MQTT 3.1.1 with a will, from rumqttc's codec.
fn raw_connect(id: &str, keep_alive_s: u16, will_topic: &str) -> Vec<u8> {
    use rumqttc::mqttbytes::v4::{Connect, LastWill, Packet};
    let mut connect = Connect::new(id);
    connect.keep_alive = keep_alive_s;
    connect.last_will = Some(LastWill::new(
        will_topic,
        "gone",
        rumqttc::mqttbytes::QoS::AtLeastOnce,
        false,
    ));
    let mut buf = BytesMut::new();
    Packet::Connect(connect).write(&mut buf, 1 << 20).unwrap();
    buf.to_vec()
}

#[tokio::test]
async fn the_embedded_broker_closes_a_silent_client_after_one_and_a_half_keep_alives() {
    let server = Server::embedded().await;
    let addr = server.addr();
    let (watcher, mut rx) = subscriber(&addr, "ka-watch", Version::V311, "ka/#").await;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(&raw_connect("ka-dev", 1, "ka/dev"))
        .await
        .unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK, accepted");
    let started = std::time::Instant::now();
    // Silent: no PINGREQ. §3.1.2.10: closed after 1.5 x 1 s, will published.
    let d = next(&mut rx).await;
    assert_eq!((d.topic.as_str(), &d.payload[..]), ("ka/dev", &b"gone"[..]));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    let mut rest = Vec::new();
    let n = timeout(Duration::from_secs(2), stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "the broker closed the socket");
    let Server::Embedded {
        broker: Some(broker),
        ..
    } = &server
    else {
        unreachable!()
    };
    assert_eq!(broker.counters().get("keepalive_timeouts"), Some(&1));
    assert_eq!(broker.counters().get("wills"), Some(&1));
    watcher.disconnect().await;
}

#[tokio::test]
async fn the_embedded_broker_refuses_an_unknown_protocol_level() {
    let server = Server::embedded().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    // MQTT 3.1 ("MQIsdp", level 3) CONNECT, id "x", keep-alive 10.
    let mut connect = vec![0x10, 17, 0x00, 0x06];
    connect.extend_from_slice(b"MQIsdp");
    connect.extend_from_slice(&[0x03, 0x02, 0x00, 0x0A, 0x00, 0x01, b'x']);
    stream.write_all(&connect).await.unwrap();
    let mut answer = Vec::new();
    timeout(Duration::from_secs(2), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    // MQTT 3.1.1 §3.1.2.2: CONNACK 0x01, unacceptable protocol level.
    assert_eq!(answer, [0x20, 0x02, 0x00, 0x01]);
}

#[tokio::test]
async fn a_second_connection_with_the_same_id_takes_over_and_the_first_will_goes_out() {
    let server = Server::embedded().await;
    let addr = server.addr();
    let (watcher, mut rx) = subscriber(&addr, "to-watch", Version::V5, "to/#").await;
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(&raw_connect("same", 30, "to/first"))
        .await
        .unwrap();
    let mut connack = [0u8; 4];
    first.read_exact(&mut connack).await.unwrap();
    let second = Connection::connect(options(&addr, "same", Version::V311))
        .await
        .unwrap();
    let Server::Embedded {
        broker: Some(broker),
        ..
    } = &server
    else {
        unreachable!()
    };
    let d = match timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(d)) => d,
        other => panic!("{other:?} {:?} {:?}", broker.counters(), watcher.counters()),
    };
    assert_eq!(
        (d.topic.as_str(), &d.payload[..]),
        ("to/first", &b"gone"[..])
    );
    let mut rest = Vec::new();
    timeout(Duration::from_secs(2), first.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(second.is_connected());
    second
        .publish("to/second", "here", Qos::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&next(&mut rx).await.payload[..], b"here");
    second.disconnect().await;
    watcher.disconnect().await;
}

#[tokio::test]
async fn mosquitto_with_passwords_takes_the_login_and_refuses_without() {
    if skip_mosquitto() {
        return;
    }
    let port = free_port();
    let _broker = Mosquitto::start_with(port, |dir| {
        let file = dir.join("passwords");
        let made = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args(["medtwin", "s3cret"])
            .status()
            .expect("mosquitto_passwd comes with mosquitto");
        assert!(made.success());
        format!("allow_anonymous false\npassword_file {}\n", file.display())
    });
    let addr = format!("127.0.0.1:{port}");
    for (version, refused) in [(Version::V311, 5), (Version::V5, 0x87)] {
        // MQTT 3.1.1 §3.2.2.3: 5 not authorized; MQTT 5 §3.2.2.2: 0x87.
        let error = Connection::connect(options(&addr, "anon", version))
            .await
            .unwrap_err();
        assert_eq!(
            error.cause,
            DownCause::Rejected(refused),
            "{version}: {error}"
        );
        let mut o = options(&addr, "auth", version);
        o.login = Some(("medtwin".into(), "s3cret".into()));
        let connection = Connection::connect(o).await.unwrap();
        connection
            .publish("a/b", "x", Qos::AtLeastOnce, false)
            .await
            .unwrap();
        connection.disconnect().await;
    }
}
