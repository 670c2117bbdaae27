//! MQTT over TLS against Debian's mosquitto (skipped with
//! `MEDTWIN_NO_MOSQUITTO`, unless `CI` is set), as a user sets it up:
//! `medtwin certs` writes a test CA, the broker's certificate and one
//! identity per device; mosquitto listens with TLS, requires a client
//! certificate and takes each certificate's common name as the user name
//! (`use_identity_as_username`). A run with `--identities` connects each
//! device with its own certificate and publishes everything; a run without
//! a certificate, a revoked device (`crlfile`), and a CA the run does not
//! trust are each refused and counted under their `tls_*` cause, with the
//! hint in the terminal summary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{medtwin, report, text};

/// Two beds, a pulse oximeter and a thermometer each: four device
/// connections, 10 simulated minutes on the virtual clock; the run passes
/// when the target took a fifth of the messages (one device refused).
fn scenario(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("secure-mqtt.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"secure-mqtt\"\nseed = 11\nduration = \"10m\"\nstep = \"1s\"\n\n\
             [clock]\nmode = \"virtual\"\n\n\
             [target]\nurl = \"mqtts://127.0.0.1:{port}\"\ntransport = \"mqtt\"\ntimeout = \"2s\"\nconcurrency = 2\nmin_accepted_pct = 20\n\n\
             [target.mqtt]\nconnection = \"device\"\n\n\
             [[cohort]]\nname = \"bed\"\ncount = 2\nnetwork = \"hospital_wifi\"\n\
             devices = [\n  {{ kind = \"pulse_oximeter\", every = \"10s\" }},\n  {{ kind = \"thermometer\", every = \"1m\" }},\n]\n"
        ),
    )
    .unwrap();
    path
}

/// The device identities the scenario's four connections use.
const DEVICES: [&str; 4] = [
    "bed-000.pulse_oximeter",
    "bed-000.thermometer",
    "bed-001.pulse_oximeter",
    "bed-001.thermometer",
];

/// `medtwin certs SCENARIO --out DIR [--revoke NAME]...`, which must pass.
fn certs(scenario: &Path, out: &Path, revoke: &[&str]) -> String {
    let mut args = vec![
        "certs",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for name in revoke {
        args.extend_from_slice(&["--revoke", name]);
    }
    let output = medtwin(&args);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "medtwin {args:?}\n{stdout}\n{}",
        text(&output.stderr)
    );
    stdout
}

/// `medtwin run FILE --out DIR/out ARGS`: exit code, everything printed,
/// the report.
fn run(file: &Path, dir: &Path, args: &[&str]) -> (Option<i32>, String, Value) {
    let out = dir.join("out");
    let mut all = vec![
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let output = medtwin(&all);
    let printed = format!("{}\n{}", text(&output.stdout), text(&output.stderr));
    assert!(out.join("report.json").exists(), "no report\n{printed}");
    (output.status.code(), printed, report(&out))
}

/// mosquitto with one TLS listener that requires a client certificate
/// signed by `certs/ca.crt` (and checks `certs/ca.crl` when `crl`);
/// killed on drop. Its log is kept to read who connected.
struct TlsMosquitto {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsMosquitto {
    /// `None` (after saying so) when `MEDTWIN_NO_MOSQUITTO` is set outside CI.
    fn skip() -> bool {
        if std::env::var_os("MEDTWIN_NO_MOSQUITTO").is_some() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must test against mosquitto, but MEDTWIN_NO_MOSQUITTO is set"
            );
            println!("skipped: MEDTWIN_NO_MOSQUITTO is set");
            return true;
        }
        false
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(port: u16, certs: &Path, crl: bool) -> TlsMosquitto {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mosquitto.log");
        let file = |name: &str| certs.join(name).display().to_string();
        let mut conf = format!(
            // `user root`: run as root, mosquitto would otherwise switch
            // to the `mosquitto` user, who cannot read keys made 0600.
            "user root\nper_listener_settings false\npersistence false\nallow_anonymous false\n\
             log_dest file {}\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\nuse_identity_as_username true\n",
            log.display(),
            file("ca.crt"),
            file("server.crt"),
            file("server.key"),
        );
        if crl {
            conf.push_str(&format!("crlfile {}\n", file("ca.crl")));
        }
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(&config, conf).unwrap();
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
                return TlsMosquitto {
                    child: Some(child),
                    log,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "mosquitto did not listen on 127.0.0.1:{port}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The user names (certificate common names) of the clients mosquitto
    /// let in: `New client connected ... u'<name>'`.
    fn identities(&self) -> BTreeSet<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("New client connected"))
            .filter_map(|l| {
                let start = l.find("u'")? + 2;
                let end = l[start..].find('\'')? + start;
                Some(l[start..end].to_owned())
            })
            .collect()
    }
}

impl Drop for TlsMosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn by_cause(report: &Value) -> serde_json::Map<String, Value> {
    report["transport"]["by_cause"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn count(report: &Value, key: &str) -> u64 {
    report["transport"][key].as_u64().unwrap_or(0)
}

#[test]
fn secure_mqtt_certs_writes_a_ca_and_an_identity_per_device_and_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), 8883);
    let out = dir.path().join("pki");
    let printed = certs(&file, &out, &["bed-001.thermometer"]);
    for name in
        DEVICES
            .iter()
            .copied()
            .chain(["gateway-0", "gateway-1", "medtwin-intake", "server"])
    {
        for ext in ["crt", "key"] {
            let path = out.join(format!("{name}.{ext}"));
            assert!(path.exists(), "{} missing\n{printed}", path.display());
        }
    }
    // Two lanes (concurrency = 2): no third gateway.
    assert!(!out.join("gateway-2.crt").exists(), "{printed}");
    assert!(out.join("ca.crt").exists() && out.join("ca.crl").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in ["ca.key", "server.key", "bed-000.thermometer.key"] {
            let mode = std::fs::metadata(out.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    // What it wrote is listed; no key material is printed.
    assert!(printed.contains("4 device identities"), "{printed}");
    assert!(
        printed.contains("ca.crl: revokes bed-001.thermometer"),
        "{printed}"
    );
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    // Each identity's certificate names its device (the broker's user name).
    let cert = std::fs::read_to_string(out.join("bed-000.pulse_oximeter.crt")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");

    // Input errors: an unknown name to revoke, a folder that holds a CA.
    let other = dir.path().join("other");
    let bad = medtwin(&[
        "certs",
        file.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
        "--revoke",
        "bed-009.thermometer",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("bed-009.thermometer"));
    assert!(!other.exists(), "nothing written on an input error");
    let again = medtwin(&[
        "certs",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("already holds a CA"));

    // A device without its key: the run stops before sending anything,
    // naming the file (no broker needed: identities are read first).
    let missing = out.join("bed-001.thermometer.key");
    std::fs::remove_file(&missing).unwrap();
    let run = medtwin(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.path().join("run").to_str().unwrap(),
        "--ca-cert",
        out.join("ca.crt").to_str().unwrap(),
        "--identities",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()),
        "the error names the file: {stderr}"
    );
}

#[test]
fn secure_mqtt_each_device_connects_with_its_own_certificate() {
    if TlsMosquitto::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TlsMosquitto::free_port();
    let file = scenario(dir.path(), port);
    let pki = dir.path().join("pki");
    certs(&file, &pki, &[]);
    let broker = TlsMosquitto::start(port, &pki, false);
    let (code, printed, report) = run(
        &file,
        dir.path(),
        &[
            "--ca-cert",
            pki.join("ca.crt").to_str().unwrap(),
            "--identities",
            pki.to_str().unwrap(),
            // The MQTT intake too, over TLS to the same broker, as
            // `medtwin-intake`.
            "--intake",
            "webhook",
            "--intake",
            "mqtt",
        ],
    );
    assert_eq!(code, Some(0), "{printed}\n{}", broker.log());
    assert!(
        printed.contains("alerts mqtt: mqtts://127.0.0.1:"),
        "{printed}"
    );
    let t = &report["transport"];
    let sent = count(&report, "sent");
    assert!(sent > 0, "{t}");
    assert_eq!(
        count(&report, "accepted"),
        sent,
        "mosquitto acknowledged every message: {t}"
    );
    assert_eq!(t["carrier"]["connections"], 4, "{t}");
    assert_eq!(t["carrier"]["connects"], 4, "{t}");
    assert!(printed.contains("mqtts://127.0.0.1:"), "{printed}");
    // mosquitto let in the four devices, each under its certificate's
    // name, and the intake under its own.
    let seen = broker.identities();
    let expected: BTreeSet<String> = DEVICES
        .iter()
        .chain(&["medtwin-intake"])
        .map(|d| d.to_string())
        .collect();
    assert_eq!(seen, expected, "{}", broker.log());
}

#[test]
fn secure_mqtt_a_missing_certificate_and_an_untrusted_broker_are_named() {
    if TlsMosquitto::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TlsMosquitto::free_port();
    let file = scenario(dir.path(), port);
    let pki = dir.path().join("pki");
    certs(&file, &pki, &[]);
    let broker = TlsMosquitto::start(port, &pki, false);

    // No client certificate: mosquitto (OpenSSL, TLS 1.3) ends the
    // handshake with the certificate_required alert once it has read our
    // empty Certificate, which we see while waiting for CONNACK.
    let no_cert = dir.path().join("no-cert");
    let (code, printed, report) = run(
        &file,
        &no_cert,
        &["--ca-cert", pki.join("ca.crt").to_str().unwrap()],
    );
    assert_eq!(code, Some(4), "the target took nothing: {printed}");
    let causes = by_cause(&report);
    assert_eq!(count(&report, "accepted"), 0, "{causes:?}");
    assert_eq!(
        causes.keys().cloned().collect::<Vec<_>>(),
        ["tls_client_cert_required"],
        "{printed}"
    );
    assert_eq!(
        causes["tls_client_cert_required"].as_u64(),
        Some(count(&report, "sent")),
        "every message, not a breaker's guess"
    );
    assert!(
        printed
            .contains("hint: tls_client_cert_required: the target requires a client certificate"),
        "{printed}"
    );
    assert!(broker.identities().is_empty(), "{}", broker.log());

    // A broker whose CA the run does not trust: refused on our side.
    let other = dir.path().join("other-pki");
    certs(&file, &other, &[]);
    let foreign = dir.path().join("foreign");
    let (code, printed, report) = run(
        &file,
        &foreign,
        &[
            "--ca-cert",
            other.join("ca.crt").to_str().unwrap(),
            "--identities",
            pki.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(4), "{printed}");
    let causes = by_cause(&report);
    assert_eq!(count(&report, "accepted"), 0, "{causes:?}");
    assert!(
        causes.get("tls_unknown_ca").and_then(Value::as_u64) >= Some(1),
        "{printed}"
    );
    // Unknown CA counts against the target (the breaker may stop trying).
    assert!(
        causes
            .keys()
            .all(|k| k == "tls_unknown_ca" || k == "target_down"),
        "{causes:?}"
    );
    assert!(printed.contains("hint: tls_unknown_ca:"), "{printed}");
    let sample = report["transport"]["samples"][0].as_str().unwrap_or("");
    assert!(sample.starts_with("tls_unknown_ca: "), "{sample}");
    assert!(broker.identities().is_empty(), "{}", broker.log());
}

#[test]
fn secure_mqtt_a_revoked_device_is_refused_and_the_others_publish() {
    if TlsMosquitto::skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TlsMosquitto::free_port();
    let file = scenario(dir.path(), port);
    let pki = dir.path().join("pki");
    let revoked = "bed-000.pulse_oximeter";
    certs(&file, &pki, &[revoked]);
    let broker = TlsMosquitto::start(port, &pki, true);
    let (code, printed, report) = run(
        &file,
        dir.path(),
        &[
            "--ca-cert",
            pki.join("ca.crt").to_str().unwrap(),
            "--identities",
            pki.to_str().unwrap(),
        ],
    );
    let causes = by_cause(&report);
    // Only the revoked device's messages failed, all under one cause.
    assert_eq!(
        causes.keys().cloned().collect::<Vec<_>>(),
        ["tls_client_cert_refused"],
        "{printed}\n{}",
        broker.log()
    );
    let refused = causes["tls_client_cert_refused"].as_u64().unwrap();
    let (sent, accepted) = (count(&report, "sent"), count(&report, "accepted"));
    assert_eq!(accepted + refused, sent, "{printed}");
    // The pulse oximeter of bed 0 sends every 10 s, the thermometers every
    // minute: the other three devices' messages all went through.
    assert!(refused > 0 && accepted > 0, "{printed}");
    assert!(
        printed.contains("hint: tls_client_cert_refused:"),
        "{printed}"
    );
    let sample = report["transport"]["samples"][0].as_str().unwrap_or("");
    assert!(
        sample.starts_with("tls_client_cert_refused: ") && sample.contains(revoked),
        "the sample names the cause and the device: {sample}"
    );
    let carrier = &report["transport"]["carrier"];
    assert!(
        carrier["connect_failures_tls_client_cert_refused"].as_u64() >= Some(1),
        "{carrier}"
    );
    let seen = broker.identities();
    let others: BTreeSet<String> = DEVICES
        .iter()
        .filter(|d| **d != revoked)
        .map(|d| d.to_string())
        .collect();
    assert_eq!(seen, others, "{}", broker.log());
    // The target took enough (min_accepted_pct = 20) and there is no
    // expectation to fail.
    assert_eq!(code, Some(0), "{printed}");
}
