//! MQTT over TLS between the client and the embedded broker, over real
//! handshakes on loopback (a test CA from `medtwin_tls`): a device with its
//! certificate publishes and a TLS subscriber gets the message; a client
//! without a certificate, with a revoked one, or that does not trust the
//! broker's CA is refused, each under its own cause, with the TLS error
//! kept in the error's source chain; a TLS client at a plain broker is
//! told the port is not TLS.

use std::path::Path;
use std::time::Duration;

use medtwin_mqtt::{
    Broker, BrokerOptions, ConnectOptions, Connection, DownCause, PublishError, Qos, Tls, Version,
};
use medtwin_tls::{
    ClientOptions, ClientTls, HandshakeCause, ServerOptions, ServerTls, TestCa, Validity, classify,
};
use tokio::sync::mpsc;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, `server.crt` for 127.0.0.1, and identities `device-1`,
    /// `device-2` and `stolen` (on `ca.crl`).
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::generate("root").unwrap();
        ca.write_identities(dir.path(), &["device-1", "device-2"])
            .unwrap();
        ca.issue_server(&["127.0.0.1"], Validity::Current)
            .unwrap()
            .write(dir.path(), "server")
            .unwrap();
        let stolen = ca.issue_client("stolen", Validity::Current).unwrap();
        stolen.write(dir.path(), "stolen").unwrap();
        std::fs::write(dir.path().join("ca.crl"), ca.crl(&[&stolen]).unwrap()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A broker requiring a client certificate from the CA (minus the
    /// revoked ones).
    async fn broker(&self) -> Broker {
        let server = ServerTls::new(&ServerOptions {
            cert: Some(self.path("server.crt")),
            key: Some(self.path("server.key")),
            client_ca: Some(self.path("ca.crt")),
            client_crl: Some(self.path("ca.crl")),
            ..ServerOptions::default()
        })
        .unwrap();
        let mut options = BrokerOptions::local();
        options.tls = Some(server.config());
        Broker::start(options).await.unwrap()
    }

    /// The client TLS trusting `ca`, with identities from this folder.
    fn client(&self, ca: &Path) -> ClientTls {
        ClientTls::new(&ClientOptions {
            ca_cert: Some(ca.to_path_buf()),
            identities: Some(self.dir.path().to_path_buf()),
            ..ClientOptions::default()
        })
        .unwrap()
    }
}

fn options(addr: &str, id: &str, client: &ClientTls, identity: Option<&str>) -> ConnectOptions {
    let mut options = ConnectOptions::new(addr, id, Version::V5);
    options.connect_timeout = Duration::from_secs(5);
    options.ack_timeout = Duration::from_secs(5);
    options.tls = Some(Tls {
        config: match identity {
            Some(name) => client.config_for(name).unwrap(),
            None => client.config(),
        },
        server_name: client.server_name("127.0.0.1").unwrap(),
    });
    options
}

#[tokio::test]
async fn devices_with_their_certificates_publish_over_tls() {
    let pki = Pki::new();
    let broker = pki.broker().await;
    let addr = broker.addr().to_string();
    let client = pki.client(&pki.path("ca.crt"));
    let (tx, mut rx) = mpsc::channel(16);
    let mut sub = options(&addr, "sub", &client, Some("device-2"));
    sub.deliveries = Some(tx);
    let sub = Connection::connect(sub).await.unwrap();
    sub.subscribe("ward/#", Qos::AtLeastOnce).await.unwrap();
    let device = Connection::connect(options(&addr, "dev", &client, Some("device-1")))
        .await
        .unwrap();
    for qos in [Qos::AtMostOnce, Qos::AtLeastOnce, Qos::ExactlyOnce] {
        device
            .publish("ward/bed-1/spo2", format!("97 at {qos}"), qos, false)
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload, format!("97 at {qos}").as_bytes());
    }
    device.disconnect().await;
    sub.disconnect().await;
    let counters = broker.counters();
    assert_eq!(counters.get("connections"), Some(&2), "{counters:?}");
    assert_eq!(counters.get("tls_failures"), None, "{counters:?}");
    broker.stop().await;
}

#[tokio::test]
async fn refusals_are_named_by_their_tls_cause() {
    let pki = Pki::new();
    let broker = pki.broker().await;
    let addr = broker.addr().to_string();
    let trusting = pki.client(&pki.path("ca.crt"));

    // No certificate: required (seen on the CONNACK read in TLS 1.3).
    let error = Connection::connect(options(&addr, "anon", &trusting, None))
        .await
        .unwrap_err();
    assert_eq!(
        error.cause,
        DownCause::Tls(HandshakeCause::ClientCertRequired),
        "{error}"
    );
    assert_eq!(error.cause.name(), "tls_client_cert_required");
    // The rustls error is in the source chain, for any caller to read.
    assert_eq!(classify(&error), Some(HandshakeCause::ClientCertRequired));

    // Revoked: refused by the broker; the connection stays down and says
    // why on every publish.
    let (down, error) =
        Connection::start(options(&addr, "stolen", &trusting, Some("stolen"))).await;
    let error = error.expect("refused");
    assert_eq!(
        error.tls_cause(),
        Some(HandshakeCause::ClientCertRefused),
        "{error}"
    );
    assert!(!down.is_connected());
    assert_eq!(
        down.publish("ward/x", "1", Qos::AtLeastOnce, false).await,
        Err(PublishError::NotConnected {
            cause: DownCause::Tls(HandshakeCause::ClientCertRefused)
        })
    );
    assert_eq!(
        down.counters()
            .get("connect_failures_tls_client_cert_refused"),
        Some(&1)
    );
    down.kill().await;

    // A broker whose CA we do not trust: refused on our side.
    let other = TestCa::generate("other").unwrap();
    let other_ca = pki.path("other-ca.crt");
    std::fs::write(&other_ca, other.cert_pem()).unwrap();
    let wary = pki.client(&other_ca);
    let error = Connection::connect(options(&addr, "wary", &wary, Some("device-1")))
        .await
        .unwrap_err();
    assert_eq!(
        error.cause,
        DownCause::Tls(HandshakeCause::UnknownCa),
        "{error}"
    );

    // The broker counts the third when its side of the handshake ends,
    // just after ours.
    let mut counters = broker.counters();
    for _ in 0..50 {
        if counters.get("tls_failures") == Some(&3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        counters = broker.counters();
    }
    assert_eq!(counters.get("tls_failures"), Some(&3), "{counters:?}");
    assert_eq!(
        counters.get("tls_client_cert_required"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(counters.get("tls_revoked"), Some(&1), "{counters:?}");
    broker.stop().await;

    // TLS towards a plain broker: the port does not speak TLS.
    let plain = Broker::start(BrokerOptions::local()).await.unwrap();
    let error = Connection::connect(options(
        &plain.addr().to_string(),
        "lost",
        &trusting,
        Some("device-1"),
    ))
    .await
    .unwrap_err();
    assert_eq!(
        error.cause,
        DownCause::Tls(HandshakeCause::NotTls),
        "{error}"
    );
    plain.stop().await;
}
