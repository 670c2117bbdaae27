//! MQTT end to end, as a user runs it: the quickstart over MQTT against the
//! embedded broker and backend gives the verdict it gives over HTTP JSON,
//! with alerts coming back over MQTT too; the same against Debian's
//! mosquitto (started here; skipped with `MEDTWIN_NO_MOSQUITTO`, unless
//! `CI` is set) with the reference backend subscribed to it; and a broker
//! killed mid-run: reconnects counted, what was not delivered counted by
//! cause, and the run still ends with a report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use medtwin_backend::{BackendConfig, MqttIngest, Sink, sink::MqttSinkConfig};
use medtwin_mqtt::{Qos, Version};
use serde_json::Value;

use crate::common::{medtwin, report, root, text};

/// A scenario file: `base` (relative to the repository) with `extra`
/// TOML appended, written into `dir`.
fn scenario(dir: &Path, base: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(root().join(base)).unwrap();
    let path = dir.join("scenario.toml");
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs `medtwin run FILE --out DIR/out` on the virtual clock (lockstep:
/// the verdict does not depend on how busy the machine is); returns the
/// exit code, stdout and the report.
fn run(file: &str, dir: &Path) -> (Option<i32>, String, Value) {
    run_with(file, dir, &["--clock", "virtual"])
}

/// [`run`] with other arguments instead of `--clock virtual`.
fn run_with(file: &str, dir: &Path, args: &[&str]) -> (Option<i32>, String, Value) {
    let out = dir.join("out");
    let mut all = vec!["run", file, "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = medtwin(&all);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        out.join("report.json").exists(),
        "no report\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (
        output.status.code(),
        format!("{stdout}\n{stderr}"),
        report(&out),
    )
}

/// Each expectation's name, verdict and counts (not its latencies, which
/// vary from run to run).
fn outcomes(report: &Value) -> Vec<String> {
    report["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} obligations {} hits {} late {} missed {} false {}",
                e["name"],
                e["verdict"],
                e["obligations"],
                e["hits"],
                e["late"],
                e["missed"],
                e["false_alerts"]
            )
        })
        .collect()
}

fn carrier(report: &Value, key: &str) -> u64 {
    report["transport"]["carrier"][key].as_u64().unwrap_or(0)
}

#[test]
fn quickstart_over_mqtt_gives_the_http_verdict_with_alerts_over_mqtt() {
    let http_dir = tempfile::tempdir().unwrap();
    let http = scenario(http_dir.path(), "scenarios/quickstart.toml", "");
    let (http_code, _, http_report) = run(&http, http_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "scenarios/quickstart.toml",
        "[target]\ntransport = \"mqtt\"\n\n[alerts]\nintake = \"mqtt\"\n",
    );
    let (code, out, report) = run(&file, dir.path());
    assert_eq!(code, http_code, "{out}");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(outcomes(&report), outcomes(&http_report), "{out}");
    assert!(out.contains("telemetry to: mqtt://127.0.0.1:"), "{out}");
    assert!(out.contains("alerts mqtt: mqtt://127.0.0.1:"), "{out}");
    let t = &report["transport"];
    assert_eq!(t["accepted"], t["sent"], "{t}");
    // One connection per lane, each published its birth besides the data.
    let connections = carrier(&report, "connections");
    assert!(connections >= 1, "{t}");
    assert_eq!(carrier(&report, "connects"), connections, "{t}");
    // Every message published once and acknowledged, plus each
    // connection's own "offline" at the clean close (its "online" births
    // are not the transport's messages).
    assert_eq!(
        carrier(&report, "published"),
        t["sent"].as_u64().unwrap() + connections,
        "{t}"
    );
    // The backend read every payload (status topics are not telemetry).
    assert_eq!(report["backend"]["rejected"]["bad_json"], 0);
    assert_eq!(report["backend"]["accepted"], t["accepted"]);
    // Every alert came over MQTT.
    let intakes = report["alerts"]["intakes"].as_array().unwrap();
    assert_eq!(intakes.len(), 1);
    assert_eq!(intakes[0]["kind"], "mqtt");
    assert_eq!(intakes[0]["received"], report["alerts"]["received"]);
    assert!(report["alerts"]["received"].as_u64().unwrap() >= 8);
}

#[test]
fn small_run_over_mqtt5_at_qos0_with_both_intakes_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "fixtures/scenarios/small-sepsis.toml",
        "[target]\ntransport = \"mqtt\"\n\n[target.mqtt]\nqos = 0\nversion = \"5\"\nconnection = \"device\"\n\n\
         [alerts]\nintake = [\"webhook\", \"mqtt\"]\n\n[alerts.mqtt]\nqos = 0\nversion = \"5\"\n",
    );
    let (code, out, report) = run(&file, dir.path());
    assert_eq!(code, Some(0), "{out}");
    // connection = "device": one connection per device (6 patients x 4).
    assert_eq!(
        carrier(&report, "connections"),
        24,
        "{}",
        report["transport"]
    );
    assert_eq!(report["transport"]["accepted"], report["transport"]["sent"]);
    let intakes = report["alerts"]["intakes"].as_array().unwrap();
    let mqtt = intakes.iter().find(|i| i["kind"] == "mqtt").unwrap();
    let webhook = intakes.iter().find(|i| i["kind"] == "webhook").unwrap();
    // The same alerts came both ways: the second copy of each is history.
    let seen_again = report["alerts"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["phase"] == "seen-again")
        .count() as u64;
    let received = mqtt["received"].as_u64().unwrap() + webhook["received"].as_u64().unwrap();
    assert!(received >= 1, "{}", report["alerts"]);
    assert_eq!(
        seen_again,
        report["alerts"]["received"].as_u64().unwrap(),
        "each alert arrived twice: {}",
        report["alerts"]
    );
}

/// Debian's mosquitto on a free loopback port; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// `None` (after saying so) when `MEDTWIN_NO_MOSQUITTO` is set outside CI.
    pub fn start_or_skip() -> Option<Mosquitto> {
        if std::env::var_os("MEDTWIN_NO_MOSQUITTO").is_some() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must test against mosquitto, but MEDTWIN_NO_MOSQUITTO is set"
            );
            println!("skipped: MEDTWIN_NO_MOSQUITTO is set");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(Mosquitto::start(port))
    }

    fn start(port: u16) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"),
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
        panic!("mosquitto did not listen on 127.0.0.1:{port}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medtwin_and_the_reference_backend_talk_through_mosquitto() {
    let Some(broker) = Mosquitto::start_or_skip() else {
        return;
    };
    // The reference backend as a foreign system would be: subscribed to
    // medtwin's telemetry on mosquitto, publishing its alerts there.
    let mut config = BackendConfig::new("");
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.ingest.mqtt = Some(MqttIngest {
        broker: broker.addr(),
        filter: "medtwin/+/+/+".into(),
        qos: Qos::AtLeastOnce,
        version: Version::V311,
        run: String::new(),
        ignore: vec!["medtwin/+/+/status".into()],
    });
    config.sinks.push(Sink::Mqtt(MqttSinkConfig {
        broker: broker.addr(),
        topic: "medtwin/alerts/{patient}".into(),
        qos: Qos::AtLeastOnce,
        version: Version::V311,
    }));
    let backend = medtwin_backend::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "fixtures/scenarios/small-sepsis.toml",
        &format!(
            "[target]\nurl = \"mqtt://{}\"\ntransport = \"mqtt\"\n\n[target.mqtt]\nversion = \"5\"\n\n\
             [alerts]\nintake = \"mqtt\"\n",
            broker.addr()
        ),
    );
    let path = dir.path().to_owned();
    let (code, out, report) = tokio::task::spawn_blocking(move || run(&file, &path))
        .await
        .unwrap();
    let stats = backend.shutdown(Duration::from_secs(2)).await;
    assert_eq!(code, Some(0), "{out}");
    let t = &report["transport"];
    assert_eq!(t["accepted"], t["sent"], "{t}");
    assert_eq!(
        stats.accepted,
        t["accepted"].as_u64().unwrap(),
        "the backend took every message mosquitto acknowledged"
    );
    assert_eq!(
        stats.rejected.bad_json, 0,
        "status topics are not telemetry"
    );
    let intakes = report["alerts"]["intakes"].as_array().unwrap();
    assert_eq!(intakes[0]["kind"], "mqtt");
    assert!(
        intakes[0]["received"].as_u64().unwrap() >= 1,
        "{}",
        report["alerts"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_run_is_survived_and_counted() {
    let Some(mut broker) = Mosquitto::start_or_skip() else {
        return;
    };
    let port = broker.port;
    let dir = tempfile::tempdir().unwrap();
    // Slow enough to outlive the outage: 90 simulated minutes at x600.
    let file = scenario(
        dir.path(),
        "fixtures/scenarios/small-sepsis.toml",
        &format!(
            "[target]\nurl = \"mqtt://127.0.0.1:{port}\"\ntransport = \"mqtt\"\ntimeout = \"1s\"\n"
        ),
    );
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("speed = 1200", "speed = 600");
    std::fs::write(&file, text).unwrap();
    let path = dir.path().to_owned();
    let running = tokio::task::spawn_blocking(move || run_with(&file, &path, &[]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _back = Mosquitto::start(port);
    let (code, out, report) = running.await.unwrap();
    assert!(code.is_some(), "the run ended by itself: {out}");
    let t = &report["transport"];
    let sent = t["sent"].as_u64().unwrap();
    let accepted = t["accepted"].as_u64().unwrap();
    let not_ok = t["failed"].as_u64().unwrap()
        + t["not_sent"].as_u64().unwrap()
        + t["refused"].as_u64().unwrap();
    assert_eq!(accepted + not_ok, sent, "{t}");
    assert!(not_ok > 0, "the outage cost messages: {t}");
    let by_cause = t["by_cause"].as_object().unwrap();
    assert!(
        by_cause.keys().any(|k| [
            "connection_refused",
            "reset",
            "closed",
            "target_down",
            "connect"
        ]
        .contains(&k.as_str())),
        "counted by cause: {t}"
    );
    assert!(carrier(&report, "reconnects") >= 1, "{t}");
    assert!(
        t["carrier"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("disconnects_")),
        "{t}"
    );
    // And it sent again once the broker was back.
    assert!(accepted > sent / 2, "{t}");
}
