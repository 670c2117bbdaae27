//! MLLP over real loopback sockets: ACKs, NAKs, a peer that never
//! answers, frames over the cap, stale answers, caps and shutdown.

use std::time::Duration;

use medtwin_hl7::mllp::{ClientConfig, MllpClient, SendError, ServerLimits, serve};
use medtwin_hl7::{
    AckCode, AckErrorInfo, Message, Pcd01Options, build_ack, control_id, encode_oru_r01,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::every_device;

fn message(seq: u64) -> Vec<u8> {
    let mut m = every_device()[0].clone();
    m.seq = seq;
    encode_oru_r01(&m, &Pcd01Options::default()).into_bytes()
}

fn config(ack_ms: u64) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        ack_timeout: Duration::from_millis(ack_ms),
        max_frame_bytes: 64 * 1024,
    }
}

fn limits() -> ServerLimits {
    ServerLimits {
        max_frame_bytes: 64 * 1024,
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(1),
        max_connections: 4,
        shutdown_deadline: Duration::from_millis(500),
    }
}

/// Answers every message with `code`; AE/AR carry an ERR.
fn acker(code: AckCode) -> impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static {
    move |raw: &[u8]| {
        let msg = Message::parse_bytes(raw).ok();
        let id = control_id(raw).unwrap_or_default();
        let err = (!code.is_accept()).then_some(AckErrorInfo {
            code: 207,
            text: "store is full",
        });
        Some(build_ack(msg.as_ref(), &id, code, err, "20260101080002+0000", "K").into_bytes())
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn messages_are_acknowledged_over_one_connection() {
    let server = serve(listener().await, acker(AckCode::AA), limits());
    let client = MllpClient::new(server.local_addr().to_string(), config(2000));
    for seq in 0..3 {
        let ack = client.send(&message(seq)).await.unwrap();
        assert_eq!(ack.code, AckCode::AA);
        assert_eq!(Some(ack.control_id), control_id(&message(seq)));
    }
    assert_eq!(
        (client.counters().connects, client.counters().reconnects),
        (1, 0)
    );
    client.close().await;
    let stats = server.shutdown().await;
    assert_eq!((stats.connections, stats.messages), (1, 3));
}

#[tokio::test]
async fn naks_come_back_with_their_code_and_error_text() {
    for code in [AckCode::AE, AckCode::AR, AckCode::CR] {
        let server = serve(listener().await, acker(code), limits());
        let client = MllpClient::new(server.local_addr().to_string(), config(2000));
        for _ in 0..2 {
            match client.send(&message(1)).await {
                Err(SendError::Nak {
                    code: c,
                    error_code,
                    text,
                }) => {
                    assert_eq!(c, code);
                    assert_eq!(error_code.as_deref(), Some("207"));
                    assert_eq!(text.as_deref(), Some("store is full"));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        // A NAK is an answer: the connection is kept.
        assert_eq!(client.counters().connects, 1, "{code}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_peer_that_never_acks_times_out_is_counted_and_reconnected() {
    let server = serve(listener().await, |_: &[u8]| None, limits());
    let client = MllpClient::new(server.local_addr().to_string(), config(200));
    let started = std::time::Instant::now();
    assert!(matches!(
        client.send(&message(1)).await,
        Err(SendError::Timeout(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(
        client.send(&message(2)).await,
        Err(SendError::Timeout(_))
    ));
    let c = client.counters();
    assert_eq!((c.timeouts, c.connects, c.reconnects), (2, 2, 1), "{c:?}");
    let stats = server.shutdown().await;
    assert_eq!(stats.unanswered, 2);
}

#[tokio::test]
async fn a_frame_over_the_cap_closes_the_connection_and_is_counted() {
    let small = ServerLimits {
        max_frame_bytes: 256,
        ..limits()
    };
    let server = serve(listener().await, acker(AckCode::AA), small);
    let client = MllpClient::new(server.local_addr().to_string(), config(2000));
    let big = message(1);
    assert!(big.len() > 256);
    let err = client.send(&big).await.unwrap_err();
    assert!(
        matches!(err, SendError::Closed | SendError::Reset(_)),
        "{err:?}"
    );
    let stats = server.shutdown().await;
    assert_eq!((stats.too_large, stats.messages), (1, 0));
    // The client refuses to send over its own cap.
    let tiny = MllpClient::new(
        "127.0.0.1:9",
        ClientConfig {
            max_frame_bytes: 16,
            ..config(100)
        },
    );
    assert!(matches!(
        tiny.send(&big).await,
        Err(SendError::Unsendable(_))
    ));
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    drop(l);
    let client = MllpClient::new(addr.to_string(), config(500));
    assert!(matches!(
        client.send(&message(1)).await,
        Err(SendError::Refused { .. })
    ));
}

/// A raw peer: reads one frame, writes `answer` (already framed or not).
async fn raw_peer(answers: Vec<Vec<u8>>, close_after: bool) -> std::net::SocketAddr {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let _ = s.read(&mut buf).await;
        for a in answers {
            let _ = s.write_all(&a).await;
        }
        if !close_after {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });
    addr
}

fn framed(payload: &[u8]) -> Vec<u8> {
    [b"\x0b".as_slice(), payload, b"\x1c\r"].concat()
}

#[tokio::test]
async fn a_stale_ack_is_skipped_and_the_matching_one_taken() {
    let msg = message(7);
    let id = control_id(&msg).unwrap();
    let stale = build_ack(
        None,
        "someone-else",
        AckCode::AA,
        None,
        "20260101080002+0000",
        "K1",
    );
    let right = build_ack(None, &id, AckCode::AA, None, "20260101080002+0000", "K2");
    let addr = raw_peer(
        vec![framed(stale.as_bytes()), framed(right.as_bytes())],
        false,
    )
    .await;
    let client = MllpClient::new(addr.to_string(), config(2000));
    let ack = client.send(&msg).await.unwrap();
    assert_eq!(ack.control_id, id);
    assert_eq!(client.counters().stale_acks, 1);
}

#[tokio::test]
async fn garbage_and_silence_then_close_are_told_apart() {
    let addr = raw_peer(vec![b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()], false).await;
    let client = MllpClient::new(addr.to_string(), config(2000));
    assert!(matches!(
        client.send(&message(1)).await,
        Err(SendError::MalformedAnswer(_))
    ));
    let addr = raw_peer(vec![framed(b"not hl7 at all")], false).await;
    let client = MllpClient::new(addr.to_string(), config(2000));
    assert!(matches!(
        client.send(&message(1)).await,
        Err(SendError::MalformedAnswer(_))
    ));
    let addr = raw_peer(vec![], true).await;
    let client = MllpClient::new(addr.to_string(), config(2000));
    let err = client.send(&message(1)).await.unwrap_err();
    assert!(
        matches!(err, SendError::Closed | SendError::Reset(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_connection_the_peer_closed_is_replaced_and_the_message_resent() {
    // The server closes idle connections after 100 ms.
    let quick = ServerLimits {
        read_timeout: Duration::from_millis(100),
        ..limits()
    };
    let server = serve(listener().await, acker(AckCode::AA), quick);
    let client = MllpClient::new(server.local_addr().to_string(), config(2000));
    client.send(&message(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.send(&message(2)).await.unwrap();
    let c = client.counters();
    assert_eq!((c.connects, c.resends), (2, 1), "{c:?}");
    let stats = server.shutdown().await;
    assert_eq!(stats.read_timeouts, 1);
    assert_eq!(stats.messages, 2);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_counted() {
    let one = ServerLimits {
        max_connections: 1,
        ..limits()
    };
    let server = serve(listener().await, acker(AckCode::AA), one);
    let first = MllpClient::new(server.local_addr().to_string(), config(2000));
    first.send(&message(1)).await.unwrap();
    let second = MllpClient::new(server.local_addr().to_string(), config(1000));
    let err = second.send(&message(2)).await.unwrap_err();
    assert!(
        matches!(err, SendError::Closed | SendError::Reset(_)),
        "{err:?}"
    );
    first.send(&message(3)).await.unwrap();
    let stats = server.shutdown().await;
    assert!(stats.refused_connections >= 1, "{stats:?}");
    assert_eq!(stats.messages, 2);
}

#[tokio::test]
async fn shutdown_ends_within_its_deadline_with_connections_open() {
    let server = serve(listener().await, acker(AckCode::AA), limits());
    let client = MllpClient::new(server.local_addr().to_string(), config(2000));
    client.send(&message(1)).await.unwrap();
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}
