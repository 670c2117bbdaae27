//! Real handshakes over loopback sockets: each way a TLS connection can
//! fail is named by its own cause, on the client's side and the server's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use medtwin_tls::{
    ClientOptions, ClientTls, HandshakeCause, Issued, ServerOptions, ServerTls, TestCa, Validity,
    accept, classify, connect,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

struct Files {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
}

fn files(ca: &TestCa, server: &Issued) -> Files {
    let dir = tempfile::tempdir().unwrap();
    Files {
        ca: write(dir.path(), "ca.crt", ca.cert_pem()),
        server_cert: write(dir.path(), "server.crt", &server.cert_pem),
        server_key: write(dir.path(), "server.key", &server.key_pem),
        _dir: dir,
    }
}

/// One connection: the server answers "pong" to "ping". Returns the
/// client's and the server's outcome.
async fn exchange(
    server: &ServerTls,
    client: &ClientTls,
    host: &str,
) -> (Result<(), HandshakeCause>, Result<(), HandshakeCause>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server.config();
    let serve = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = accept(config, tcp, T).await.map_err(|e| cause(&e))?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| cause(&e))?;
        tls.write_all(b"pong").await.map_err(|e| cause(&e))?;
        tls.shutdown().await.ok();
        Ok(())
    });
    let client = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = client.server_name(host).unwrap();
        let mut tls = connect(client.config(), name, tcp, T)
            .await
            .map_err(|e| cause(&e))?;
        tls.write_all(b"ping").await.map_err(|e| cause(&e))?;
        let mut buf = [0u8; 4];
        // TLS 1.3: a refused client certificate shows on the first read.
        tls.read_exact(&mut buf).await.map_err(|e| cause(&e))?;
        assert_eq!(&buf, b"pong");
        Ok(())
    }
    .await;
    let served = tokio::time::timeout(T, serve).await.unwrap().unwrap();
    (client, served)
}

fn cause(e: &std::io::Error) -> HandshakeCause {
    classify(e).unwrap_or_else(|| panic!("not named as a TLS failure: {e:?}"))
}

fn trusting(ca: &Path) -> ClientOptions {
    ClientOptions {
        ca_cert: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn a_trusted_server_and_a_required_client_certificate_connect() {
    let ca = TestCa::generate("root").unwrap();
    let f = files(
        &ca,
        &ca.issue_server(&["localhost"], Validity::Current).unwrap(),
    );
    let server = ServerTls::new(&ServerOptions {
        cert: Some(f.server_cert.clone()),
        key: Some(f.server_key.clone()),
        client_ca: Some(f.ca.clone()),
        ..ServerOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    ca.issue_client("patch-1", Validity::Current)
        .unwrap()
        .write(dir.path(), "client")
        .unwrap();
    let client = ClientTls::new(&ClientOptions {
        client_cert: Some(dir.path().join("client.crt")),
        client_key: Some(dir.path().join("client.key")),
        ..trusting(&f.ca)
    })
    .unwrap();
    assert_eq!(
        exchange(&server, &client, "localhost").await,
        (Ok(()), Ok(()))
    );

    // Without a certificate: required, on both sides.
    let anonymous = ClientTls::new(&trusting(&f.ca)).unwrap();
    let (c, s) = exchange(&server, &anonymous, "localhost").await;
    assert_eq!(c, Err(HandshakeCause::ClientCertRequired));
    assert_eq!(s, Err(HandshakeCause::ClientCertRequired));
}

#[tokio::test]
async fn unknown_ca_expired_not_yet_valid_and_wrong_name_are_told_apart() {
    let ca = TestCa::generate("root").unwrap();
    let other = TestCa::generate("other").unwrap();
    let cases = [
        (
            other
                .issue_server(&["localhost"], Validity::Current)
                .unwrap(),
            "localhost",
            HandshakeCause::UnknownCa,
        ),
        (
            ca.issue_server(&["localhost"], Validity::Expired).unwrap(),
            "localhost",
            HandshakeCause::Expired,
        ),
        (
            ca.issue_server(&["localhost"], Validity::NotYetValid)
                .unwrap(),
            "localhost",
            HandshakeCause::NotYetValid,
        ),
        (
            ca.issue_server(&["elsewhere.example"], Validity::Current)
                .unwrap(),
            "localhost",
            HandshakeCause::NameMismatch,
        ),
    ];
    for (issued, host, expected) in cases {
        let f = files(&ca, &issued);
        let server = ServerTls::new(&ServerOptions {
            cert: Some(f.server_cert.clone()),
            key: Some(f.server_key.clone()),
            ..ServerOptions::default()
        })
        .unwrap();
        let client = ClientTls::new(&trusting(&f.ca)).unwrap();
        let (c, s) = exchange(&server, &client, host).await;
        assert_eq!(c, Err(expected), "client side of {expected:?}");
        assert!(s.is_err(), "the server saw the client give up: {s:?}");
    }
    // A certificate for another name is accepted when that name is the
    // configured server name.
    let f = files(
        &ca,
        &ca.issue_server(&["elsewhere.example"], Validity::Current)
            .unwrap(),
    );
    let server = ServerTls::new(&ServerOptions {
        cert: Some(f.server_cert.clone()),
        key: Some(f.server_key.clone()),
        ..ServerOptions::default()
    })
    .unwrap();
    let client = ClientTls::new(&ClientOptions {
        server_name: Some("elsewhere.example".into()),
        ..trusting(&f.ca)
    })
    .unwrap();
    assert_eq!(
        exchange(&server, &client, "localhost").await,
        (Ok(()), Ok(()))
    );
}

#[tokio::test]
async fn a_revoked_or_foreign_client_certificate_is_refused() {
    let ca = TestCa::generate("root").unwrap();
    let f = files(
        &ca,
        &ca.issue_server(&["localhost"], Validity::Current).unwrap(),
    );
    let revoked = ca.issue_client("stolen-patch", Validity::Current).unwrap();
    let crl = write(
        f.ca.parent().unwrap(),
        "ca.crl",
        &ca.crl(&[&revoked]).unwrap(),
    );
    let server = ServerTls::new(&ServerOptions {
        cert: Some(f.server_cert.clone()),
        key: Some(f.server_key.clone()),
        client_ca: Some(f.ca.clone()),
        client_crl: Some(crl),
        ..ServerOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    revoked.write(dir.path(), "stolen").unwrap();
    TestCa::generate("rogue")
        .unwrap()
        .issue_client("rogue", Validity::Current)
        .unwrap()
        .write(dir.path(), "rogue")
        .unwrap();
    for (name, server_side) in [
        ("stolen", HandshakeCause::Revoked),
        ("rogue", HandshakeCause::UnknownCa),
    ] {
        let client = ClientTls::new(&ClientOptions {
            client_cert: Some(dir.path().join(format!("{name}.crt"))),
            client_key: Some(dir.path().join(format!("{name}.key"))),
            ..trusting(&f.ca)
        })
        .unwrap();
        let (c, s) = exchange(&server, &client, "localhost").await;
        assert_eq!(c, Err(HandshakeCause::ClientCertRefused), "{name}");
        assert_eq!(s, Err(server_side), "{name}");
    }
}

#[tokio::test]
async fn a_pinned_fingerprint_trusts_a_self_signed_listener_and_nothing_else() {
    let server = ServerTls::new(&ServerOptions::default()).unwrap();
    assert!(server.generated_cert_pem().is_some());
    let pinned = ClientTls::new(&ClientOptions {
        pin_sha256: Some(server.fingerprint().to_string()),
        ..ClientOptions::default()
    })
    .unwrap();
    assert_eq!(exchange(&server, &pinned, "127.0.0.1").await.0, Ok(()));

    let impostor = ServerTls::new(&ServerOptions::default()).unwrap();
    assert_ne!(impostor.fingerprint(), server.fingerprint());
    assert_eq!(
        exchange(&impostor, &pinned, "127.0.0.1").await.0,
        Err(HandshakeCause::PinMismatch)
    );

    let insecure = ClientTls::new(&ClientOptions {
        insecure_skip_verify: true,
        ..ClientOptions::default()
    })
    .unwrap();
    assert_eq!(insecure.options().describe(), "insecure-skip-verify");
    assert_eq!(exchange(&impostor, &insecure, "127.0.0.1").await.0, Ok(()));
}

#[tokio::test]
async fn a_silent_port_times_out_and_a_plain_one_is_not_tls() {
    let ca = TestCa::generate("root").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = ClientTls::new(&trusting(&write(dir.path(), "ca.crt", ca.cert_pem()))).unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (s, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let e = connect(
        client.config(),
        client.server_name("localhost").unwrap(),
        tcp,
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&e), Some(HandshakeCause::HandshakeTimeout));
    hold.abort();

    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = plain.accept().await.unwrap();
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let e = connect(
        client.config(),
        client.server_name("localhost").unwrap(),
        tcp,
        T,
    )
    .await
    .unwrap_err();
    assert_eq!(classify(&e), Some(HandshakeCause::NotTls), "{e:?}");
}

#[test]
fn option_errors_name_the_file_or_the_missing_half() {
    let e = ClientTls::new(&ClientOptions {
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..ClientOptions::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.pem", "not a pem\n");
    let e = ClientTls::new(&trusting(&empty)).unwrap_err();
    assert!(
        e.to_string().contains("empty.pem") && e.to_string().contains("CERTIFICATE"),
        "{e}"
    );
    let e = ClientTls::new(&ClientOptions {
        client_cert: Some(empty.clone()),
        ..ClientOptions::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("client_key"), "{e}");
    let e = ClientTls::new(&ClientOptions {
        pin_sha256: Some("AB:CD".into()),
        ..ClientOptions::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("64 hex digits"), "{e}");
}

#[test]
fn per_device_identities_come_from_a_directory() {
    let ca = TestCa::generate("fleet").unwrap();
    let dir = tempfile::tempdir().unwrap();
    ca.write_identities(dir.path(), &["patch-1", "patch-2"])
        .unwrap();
    let client = ClientTls::new(&ClientOptions {
        ca_cert: Some(dir.path().join("ca.crt")),
        identities: Some(dir.path().to_path_buf()),
        ..ClientOptions::default()
    })
    .unwrap();
    let one = client.config_for("patch-1").unwrap();
    let again = client.config_for("patch-1").unwrap();
    assert!(Arc::ptr_eq(&one, &again), "loaded once");
    assert!(!Arc::ptr_eq(&one, &client.config_for("patch-2").unwrap()));
    let e = client.config_for("patch-3").unwrap_err();
    assert!(e.to_string().contains("patch-3.crt"), "{e}");
    assert_eq!(client.options().describe(), "ca-bundle+device-certs");
}
