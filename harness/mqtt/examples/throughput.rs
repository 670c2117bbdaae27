//! Messages per second on loopback: medtwin's MQTT client against
//! `mosquitto_pub` in the same run, against the same mosquitto, QoS 0 and 1.
//!
//! ```text
//! cargo run --release -p medtwin-mqtt --example throughput -- [messages] [host:port]
//! ```
//!
//! With `embedded` as the address it runs against medtwin's embedded
//! broker in the same process. With `tls` it starts mosquitto with a plain
//! and a TLS listener (a test CA's server certificate, a client
//! certificate required, TLS 1.3) and measures medtwin's QoS 0 and 1
//! publishes over each, and their ratio. Without an address it starts Debian's `mosquitto` on a free loopback
//! port with a generated config. Every message is a 180-byte medtwin-like
//! JSON line; `mosquitto_pub -l` reads them from stdin (one message per
//! line, its default in-flight window of 20 for QoS 1). medtwin publishes
//! them one at a time (each awaited: one round trip per QoS 1 message, as
//! one lane does) and with 20 in flight (as 20 lanes do). Rates include
//! connecting; a subscriber counts what the broker delivered. Never run
//! as a test: numbers depend on the machine.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medtwin_mqtt::{ConnectOptions, Connection, Delivery, Qos, Version};
use tokio::sync::mpsc;

fn payload(i: usize) -> String {
    let mut line = format!(
        "{{\"synthetic\":true,\"patient_id\":\"p-{:04}\",\"device_id\":\"spo2-{:04}\",\"code\":\"spo2\",\"value\":97.0,\"unit\":\"%\",\"seq\":{i:08}}}",
        i % 1000,
        i % 1000
    );
    while line.len() < 180 {
        line.push(' ');
    }
    line
}

async fn counter(addr: &str, topic: &str) -> (Connection, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel(1 << 20);
    let mut options = ConnectOptions::new(addr, format!("count-{topic}"), Version::V311);
    options.deliveries = Some(tx);
    let connection = Connection::connect(options)
        .await
        .expect("subscriber connects");
    connection
        .subscribe(topic, Qos::AtLeastOnce)
        .await
        .expect("subscribed");
    (connection, rx)
}

async fn drain(rx: &mut mpsc::Receiver<Delivery>, want: usize) -> usize {
    let mut got = 0;
    while got < want {
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Some(_)) => got += 1,
            _ => break,
        }
    }
    got
}

async fn medtwin(addr: &str, topic: &str, n: usize, qos: Qos, window: usize) -> (f64, usize) {
    medtwin_over(addr, addr, None, topic, n, qos, window).await
}

/// Publishes to `addr` (over TLS when `tls`), counting what a plain
/// subscriber on `count_addr` gets.
async fn medtwin_over(
    addr: &str,
    count_addr: &str,
    tls: Option<medtwin_mqtt::Tls>,
    topic: &str,
    n: usize,
    qos: Qos,
    window: usize,
) -> (f64, usize) {
    let (sub, mut rx) = counter(count_addr, topic).await;
    let start = Instant::now();
    let mut options = ConnectOptions::new(addr, format!("bench-{topic}"), Version::V311);
    options.max_in_flight = 64;
    options.tls = tls;
    let connection = Arc::new(Connection::connect(options).await.expect("connects"));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..window {
        let connection = Arc::clone(&connection);
        let topic = topic.to_owned();
        tasks.spawn(async move {
            let mut failed = 0;
            for i in (w..n).step_by(window) {
                if connection
                    .publish(topic.as_str(), payload(i), qos, false)
                    .await
                    .is_err()
                {
                    failed += 1;
                }
            }
            failed
        });
    }
    let failed: usize = tasks.join_all().await.into_iter().sum();
    connection.disconnect().await;
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(failed, 0, "every publish done");
    let got = drain(&mut rx, n).await;
    sub.disconnect().await;
    (n as f64 / seconds, got)
}

async fn mosquitto_pub(addr: &str, topic: &str, n: usize, qos: Qos) -> (f64, usize) {
    let (sub, mut rx) = counter(addr, topic).await;
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut input = String::with_capacity(n * 181);
    for i in 0..n {
        input.push_str(&payload(i));
        input.push('\n');
    }
    let start = Instant::now();
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-t",
            topic,
            "-q",
            &qos.level().to_string(),
            "-l",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is installed");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("mosquitto_pub reads its stdin");
    let status = child.wait().expect("mosquitto_pub ends");
    let seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "mosquitto_pub: {status}");
    let got = drain(&mut rx, n).await;
    sub.disconnect().await;
    (n as f64 / seconds, got)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// mosquitto with a plain and a TLS listener; QoS 0 and 1 over each.
async fn tls_versus_plain(n: usize) {
    use medtwin_tls::{ClientOptions, ClientTls, TestCa, Validity};
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::generate("bench").expect("a CA");
    std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).expect("written");
    ca.issue_server(&["127.0.0.1"], Validity::Current)
        .expect("issued")
        .write(dir.path(), "server")
        .expect("written");
    ca.issue_client("bench", Validity::Current)
        .expect("issued")
        .write(dir.path(), "bench")
        .expect("written");
    let (plain, secure) = (free_port(), free_port());
    let path = |name: &str| dir.path().join(name).display().to_string();
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            // `user root`: as root, mosquitto would switch to the
            // `mosquitto` user, who cannot read the 0600 key.
            "user root\nper_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\n\
             listener {plain} 127.0.0.1\n\
             listener {secure} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            path("ca.crt"),
            path("server.crt"),
            path("server.key")
        ),
    )
    .expect("config written");
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&config)
        .spawn()
        .expect("mosquitto is installed");
    for port in [plain, secure] {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let client = ClientTls::new(&ClientOptions {
        ca_cert: Some(dir.path().join("ca.crt")),
        client_cert: Some(dir.path().join("bench.crt")),
        client_key: Some(dir.path().join("bench.key")),
        ..ClientOptions::default()
    })
    .expect("client TLS");
    let tls = medtwin_mqtt::Tls {
        config: client.config(),
        server_name: client.server_name("127.0.0.1").expect("a name"),
    };
    let (plain, secure) = (format!("127.0.0.1:{plain}"), format!("127.0.0.1:{secure}"));
    println!("{n} messages of 180 bytes: mqtt://{plain} against mqtts://{secure}");
    for qos in [Qos::AtMostOnce, Qos::AtLeastOnce] {
        for window in [1, 20] {
            let topic = format!("bench/plain/{qos}/{window}");
            let (p, p_got) = medtwin_over(&plain, &plain, None, &topic, n, qos, window).await;
            let topic = format!("bench/tls/{qos}/{window}");
            let (t, t_got) =
                medtwin_over(&secure, &plain, Some(tls.clone()), &topic, n, qos, window).await;
            println!(
                "qos {qos}, {window:>2} in flight: plain {p:>9.0} msg/s (delivered {p_got}); \
                 TLS {t:>9.0} msg/s (delivered {t_got}); TLS/plain {:.2}",
                t / p
            );
        }
    }
    let _ = broker.kill();
    let _ = broker.wait();
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(20_000, |a| a.parse().expect("a message count"));
    let mut args = args.peekable();
    if args.peek().is_some_and(|a| a == "tls") {
        tls_versus_plain(n).await;
        return;
    }
    let mut broker = None;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut embedded = None;
    let addr = match args.next() {
        // The embedded broker, in this process.
        Some(addr) if addr == "embedded" => {
            let b = medtwin_mqtt::Broker::start(medtwin_mqtt::BrokerOptions::local())
                .await
                .expect("the embedded broker starts");
            let addr = b.addr().to_string();
            embedded = Some(b);
            addr
        }
        Some(addr) => addr,
        None => {
            let port = free_port();
            let config = dir.path().join("mosquitto.conf");
            std::fs::write(
                &config,
                format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\n"),
            )
            .expect("config written");
            broker = Some(
                Command::new("mosquitto")
                    .arg("-c")
                    .arg(&config)
                    .spawn()
                    .expect("mosquitto is installed"),
            );
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            format!("127.0.0.1:{port}")
        }
    };
    println!("{n} messages of 180 bytes to {addr}");
    for qos in [Qos::AtMostOnce, Qos::AtLeastOnce] {
        let (pub_rate, pub_got) = mosquitto_pub(&addr, &format!("bench/pub/{qos}"), n, qos).await;
        let (one_rate, one_got) = medtwin(&addr, &format!("bench/one/{qos}"), n, qos, 1).await;
        let (win_rate, win_got) = medtwin(&addr, &format!("bench/win/{qos}"), n, qos, 20).await;
        println!(
            "qos {qos}: mosquitto_pub -l {pub_rate:>9.0} msg/s (delivered {pub_got}); \
             medtwin 1 in flight {one_rate:>9.0} msg/s ({:.2}x, delivered {one_got}); \
             medtwin 20 in flight {win_rate:>9.0} msg/s ({:.2}x, delivered {win_got})",
            one_rate / pub_rate,
            win_rate / pub_rate,
        );
    }
    if let Some(b) = embedded {
        b.stop().await;
    }
    if let Some(mut broker) = broker {
        let _ = broker.kill();
        let _ = broker.wait();
    }
}
