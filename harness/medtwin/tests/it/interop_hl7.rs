//! HL7 v2 end to end: telemetry as IHE PCD-01 `ORU^R01` over MLLP and
//! alarms as IHE ACM `ORU^R40` into medtwin's ACM intake, with the
//! reference backend on loopback; every message medtwin and the backend
//! emit through an independent validator (hl7apy); targets that NAK every
//! message and one that never answers.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medtwin_hl7::mllp::{ClientConfig, MllpClient, SendError, ServerLimits, serve};
use medtwin_hl7::{
    AckCode, AckErrorInfo, AlertReport, EventPhase, Message, Pcd01Options, build_ack, control_id,
    encode_oru_r01,
};
use medtwin_wire::{TELEMETRY_SCHEMA, TelemetryMessage, WireValue};
use serde_json::Value;

use crate::common::{assert_valid, medtwin, report, root, text};

/// The Python with hl7apy, or `None` (skip) unless CI requires it.
fn python() -> Option<String> {
    match std::env::var("MEDTWIN_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the HL7 validator: set MEDTWIN_PYTHON (scripts/test.sh does)"
            );
            eprintln!("skipped: MEDTWIN_PYTHON is not set (the hl7apy validator)");
            None
        }
    }
}

/// Runs scripts/validators/validate_hl7.py on every message; panics with
/// its output when one is invalid.
fn assert_hl7apy_valid(python: &str, messages: &[String]) {
    assert!(!messages.is_empty(), "nothing to validate");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = dir.path().join(format!("{i:05}.hl7"));
            std::fs::write(&path, m).unwrap();
            path
        })
        .collect();
    let out = Command::new(python)
        .arg(root().join("scripts/validators/validate_hl7.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `medtwin run ARGS --out DIR`: exit code, report, stdout.
fn run(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = tempfile::tempdir().unwrap();
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.path().to_str().unwrap()]);
    let done = medtwin(&all);
    let stdout = text(&done.stdout);
    let path = out.path().join("report.json");
    assert!(
        path.exists(),
        "no report; stdout:\n{stdout}\nstderr:\n{}",
        text(&done.stderr)
    );
    (done.status.code(), report(out.path()), stdout)
}

/// Each expectation's verdict and counts, for comparing runs.
fn outcomes(r: &Value) -> Vec<(String, String, u64, u64, u64)> {
    r["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["verdict"].as_str().unwrap_or_default().to_owned(),
                e["hits"].as_u64().unwrap_or(0),
                e["missed"].as_u64().unwrap_or(0),
                e["false_alerts"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn the_quickstart_passes_over_hl7_and_acm_as_over_http() {
    let (code, http, _) = run(&["scenarios/quickstart.toml", "--clock", "virtual"]);
    assert_eq!(code, Some(0));
    let (code, hl7, stdout) = run(&[
        "scenarios/quickstart.toml",
        "--clock",
        "virtual",
        "--transport",
        "hl7-mllp",
        "--intake",
        "acm",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_valid(&hl7);
    assert_eq!(hl7["target"]["transport"], "hl7-mllp");
    assert_eq!(hl7["target"]["encoding"], "hl7");
    assert!(
        hl7["target"]["url"]
            .as_str()
            .unwrap()
            .starts_with("mllp://"),
        "{}",
        hl7["target"]
    );
    assert_eq!(hl7["alerts"]["intakes"][0]["kind"], "acm");
    assert_eq!(outcomes(&hl7), outcomes(&http));
    assert_eq!(hl7["verdict"], http["verdict"]);
    // Every delivery was taken, each answered by its ACK on a lane's
    // connection.
    let t = &hl7["transport"];
    assert_eq!(t["sent"], t["accepted"], "{t}");
    assert_eq!(t["accepted"], hl7["accounting"]["delivered"]);
    assert_eq!(t["carrier"]["ack_timeouts"], 0, "{t}");
    assert_eq!(hl7["alerts"]["received"], http["alerts"]["received"]);
    assert_eq!(hl7["alerts"]["refused"]["malformed"], 0);
    let counters = &hl7["alerts"]["intakes"][0]["counters"];
    assert_eq!(counters["start"], hl7["alerts"]["received"], "{counters}");
}

/// A scenario writing ER7 to a file: one message per delivery, every
/// device kind medtwin ships that sends vitals or alarms.
const RECORD: &str = r#"# Every ORU^R01 medtwin emits, recorded for the HL7 validator.
name = "hl7-record"
seed = 3
duration = "6m"
step = "1s"
[clock]
mode = "virtual"
[target]
transport = "file"
encoding = "hl7"
url = "FILE"
[[cohort]]
name = "bay"
count = 2
network = "hospital_wifi"
devices = [
  { kind = "pulse_oximeter", every = "30s" },
  { kind = "ecg_patch", every = "1m" },
  { kind = "resp_monitor", every = "1m" },
  { kind = "bp_cuff", every = "2m" },
  { kind = "thermometer", every = "2m" },
  { kind = "cgm", every = "5m" },
  { kind = "weight_scale", every = "2m" },
  { kind = "infusion_pump", every = "1m" },
  { kind = "nurse_observations", every = "2m" },
]
"#;

#[test]
fn every_oru_r01_medtwin_emits_passes_hl7apy_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("record.toml");
    let file = dir.path().join("telemetry.ndjson");
    std::fs::write(&scenario, RECORD.replace("FILE", file.to_str().unwrap())).unwrap();
    let (_, r, stdout) = run(&[scenario.to_str().unwrap()]);
    assert_eq!(r["target"]["encoding"], "hl7", "{stdout}");
    let mut messages = Vec::new();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        assert_eq!(l["content_type"], "x-application/hl7-v2+er7");
        let er7 = l["text"].as_str().unwrap().to_owned();
        let m = Message::parse(&er7).unwrap();
        let decoded = medtwin_hl7::decode_oru_r01(&m).unwrap();
        assert_eq!(decoded.message.patient_id, l["patient"], "{er7}");
        assert_eq!(decoded.message.device_id, l["device"], "{er7}");
        assert!(decoded.unknown_metrics.is_empty());
        messages.push(er7);
    }
    let kinds: std::collections::BTreeSet<String> = messages
        .iter()
        .filter_map(|m| {
            Message::parse(m).ok()?.segments_named("OBX").find_map(|o| {
                (o.get(3, 1) == Some("531969")).then(|| o.get(5, 1).unwrap_or("").to_owned())
            })
        })
        .collect();
    assert!(kinds.len() >= 8, "{kinds:?}");
    let Some(py) = python() else { return };
    assert_hl7apy_valid(&py, &messages);
}

fn telemetry(seq: u64, minute: u64, sick: bool) -> TelemetryMessage {
    let v = |code: &str, value: f64, unit: &str| WireValue {
        code: code.into(),
        value,
        unit: unit.into(),
        loinc: None,
    };
    let values = if sick {
        vec![
            v("spo2", 85.0, "%"),
            v("hr", 135.0, "/min"),
            v("rr", 30.0, "/min"),
        ]
    } else {
        vec![
            v("spo2", 98.0, "%"),
            v("hr", 70.0, "/min"),
            v("rr", 14.0, "/min"),
        ]
    };
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.into(),
        synthetic: true,
        patient_id: "bed-1".into(),
        device_id: "bed-1/monitor".into(),
        device_kind: "nurse_observations".into(),
        seq,
        measured_at: format!("2026-01-01T08:{minute:02}:00.000Z"),
        values,
        alarm: None,
        event: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_ingests_pcd01_naks_bad_messages_and_emits_valid_pcd04() {
    // An alert consumer that records every report and answers AA.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&received);
    let consumer = serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        move |raw: &[u8]| {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(raw).into_owned());
            let msg = Message::parse_bytes(raw).ok();
            let id = control_id(raw).unwrap_or_default();
            Some(
                build_ack(
                    msg.as_ref(),
                    &id,
                    AckCode::AA,
                    None,
                    "20260101080000+0000",
                    "K",
                )
                .into_bytes(),
            )
        },
        ServerLimits::default(),
    );
    let mut config = medtwin_backend::BackendConfig::new("");
    config.ingest.mllp = Some("127.0.0.1:0".parse().unwrap());
    config.sinks.push(medtwin_backend::sink::Sink::Acm {
        addr: consumer.local_addr().to_string(),
    });
    config.smoothing = Duration::ZERO;
    config.reset_after = Duration::from_secs(60);
    let backend = medtwin_backend::start(config).await.unwrap();
    let client = MllpClient::new(
        backend.mllp_addr().unwrap().to_string(),
        ClientConfig::default(),
    );
    let opts = Pcd01Options::default();
    // Sick for five minutes (NEWS2 high), then well for ten (re-armed).
    for minute in 0..15 {
        let m = telemetry(minute, minute, minute < 5);
        let ack = client
            .send(encode_oru_r01(&m, &opts).as_bytes())
            .await
            .unwrap();
        assert_eq!(
            ack.code,
            AckCode::CA,
            "commit accept: PCD-01 asks for enhanced mode"
        );
    }
    // A message the backend cannot read is NAKed with an ERR, and counted.
    let good = encode_oru_r01(&telemetry(99, 30, false), &opts);
    let no_patient = good.replacen("bed-1^^^MEDTWIN^PI", "", 1);
    match client.send(no_patient.as_bytes()).await {
        Err(SendError::Nak {
            code,
            error_code,
            text,
        }) => {
            // PCD-01 asks for enhanced mode (MSH-15 AL): a commit error.
            assert_eq!(code, AckCode::CE);
            assert_eq!(error_code.as_deref(), Some("101"));
            assert!(text.unwrap().contains("PID-3-1"));
        }
        other => panic!("{other:?}"),
    }
    let adt = good.replacen("ORU^R01^ORU_R01", "ADT^A01^ADT_A01", 1);
    assert!(matches!(
        client.send(adt.as_bytes()).await,
        Err(SendError::Nak {
            code: AckCode::CR,
            ..
        })
    ));
    let stats = backend.shutdown(Duration::from_secs(3)).await;
    assert_eq!(stats.accepted, 15);
    assert_eq!(stats.rejected.bad_hl7, 2);
    consumer.shutdown().await;

    let reports: Vec<String> = received.lock().unwrap().clone();
    let decoded: Vec<AlertReport> = reports
        .iter()
        .map(|r| AlertReport::decode(&Message::parse(r).unwrap()).unwrap())
        .collect();
    let starts: Vec<&str> = decoded
        .iter()
        .filter(|r| r.phase == EventPhase::Start)
        .map(|r| r.kind.as_str())
        .collect();
    assert!(starts.contains(&"news2-high"), "{decoded:?}");
    assert!(
        decoded
            .iter()
            .any(|r| r.phase == EventPhase::End && r.kind == "news2-high"),
        "the re-armed level ends: {decoded:?}"
    );
    for r in &decoded {
        assert_eq!(r.patient_id, "bed-1");
    }
    let Some(py) = python() else { return };
    assert_hl7apy_valid(&py, &reports);
}

/// A target that answers every message with `code` (and an ERR), or
/// never answers.
fn refusing_target(code: Option<AckCode>) -> (tokio::runtime::Runtime, medtwin_hl7::mllp::Server) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve(
            listener,
            move |raw: &[u8]| {
                let code = code?;
                let msg = Message::parse_bytes(raw).ok();
                let id = control_id(raw).unwrap_or_default();
                let err = AckErrorInfo {
                    code: 207,
                    text: "the store is read-only",
                };
                Some(
                    build_ack(
                        msg.as_ref(),
                        &id,
                        code,
                        Some(err),
                        "20260101080000+0000",
                        "K",
                    )
                    .into_bytes(),
                )
            },
            ServerLimits::default(),
        )
    });
    (rt, server)
}

const SMALL: &str = "fixtures/scenarios/small-sepsis.toml";

#[test]
fn a_target_that_naks_everything_refused_the_data() {
    for (code, cause) in [(AckCode::AE, "hl7_ae"), (AckCode::AR, "hl7_ar")] {
        let (rt, server) = refusing_target(Some(code));
        let url = format!("mllp://{}", server.local_addr());
        let (exit, r, stdout) = run(&[
            SMALL,
            "--clock",
            "virtual",
            "--transport",
            "hl7-mllp",
            "--target",
            &url,
        ]);
        assert_ne!(exit, Some(0), "{stdout}");
        assert_valid(&r);
        let t = &r["transport"];
        assert_eq!(t["accepted"], 0, "{t}");
        assert_eq!(t["refused"], t["sent"], "{t}");
        assert_eq!(t["by_cause"][cause], t["sent"], "{t}");
        assert_eq!(t["by_reason"][format!("{cause}: 207")], t["sent"], "{t}");
        assert_eq!(r["verdict"], "target_refused_data", "{stdout}");
        let stats = rt.block_on(server.shutdown());
        assert_eq!(stats.messages, t["sent"].as_u64().unwrap());
    }
}

#[test]
fn a_target_that_never_acks_times_out_and_the_run_still_ends() {
    let (rt, server) = refusing_target(None);
    let url = format!("mllp://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    // A short ACK timeout keeps the test short; the breaker then stops
    // sending to the silent target.
    let scenario = dir.path().join("silent.toml");
    let fixture = std::fs::read_to_string(root().join(SMALL)).unwrap();
    std::fs::write(
        &scenario,
        format!(
            "{fixture}\n[target]\ntransport = \"hl7-mllp\"\nurl = \"{url}\"\ntimeout = \"200ms\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (exit, r, stdout) = run(&[scenario.to_str().unwrap(), "--clock", "virtual"]);
    assert!(started.elapsed() < Duration::from_secs(120), "{stdout}");
    assert_ne!(exit, Some(0), "{stdout}");
    let t = &r["transport"];
    assert_eq!(t["accepted"], 0, "{t}");
    assert!(t["by_cause"]["timeout"].as_u64().unwrap() >= 1, "{t}");
    assert!(t["carrier"]["ack_timeouts"].as_u64().unwrap() >= 1, "{t}");
    assert_eq!(
        t["sent"].as_u64().unwrap(),
        t["refused"].as_u64().unwrap()
            + t["failed"].as_u64().unwrap()
            + t["not_sent"].as_u64().unwrap(),
        "{t}"
    );
    assert_eq!(r["verdict"], "target_unreachable", "{stdout}");
    let stats = rt.block_on(server.shutdown());
    assert!(stats.unanswered >= 1, "{stats:?}");
}
