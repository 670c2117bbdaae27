//! Waveform chunks over HTTP JSON, as a user runs them: `medtwin run`
//! with waveform devices against the embedded backend (which counts the
//! chunks) and against a loopback server that keeps every body, so each
//! chunk is held to `docs/schemas/waveform.schema.json` and decoded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common::{check_schema, report, root, run_passing};

const SCENARIO: &str = "fixtures/waveforms/stream.toml";
/// Thirty seconds of two 250-Hz ECG patches (ECG, resp) and one 500-Hz
/// bedside monitor (ECG, pleth, resp).
const CHUNKS: u64 = 3 * 30;
const SAMPLES: u64 = 2 * 30 * 250 * 2 + 30 * 500 * 3;

#[test]
fn the_embedded_backend_accepts_and_counts_every_waveform_chunk() {
    let (out, stdout) = run_passing(&[SCENARIO]);
    let r = report(out.path());
    crate::common::assert_valid(&r);
    let waves = &r["transport"]["waveforms"];
    assert_eq!(waves["sent"], CHUNKS, "{waves}");
    assert_eq!(waves["accepted"], CHUNKS, "{waves}");
    for end in ["refused", "failed", "not_sent"] {
        assert_eq!(waves[end], 0, "{end}: {waves}");
    }
    // The measurements are counted as before, apart from the chunks.
    let t = &r["transport"];
    assert_eq!(t["sent"], r["accounting"]["delivered"], "{t}");
    assert_eq!(t["accepted"], t["sent"]);
    assert_eq!(r["backend"]["waveform_chunks"], CHUNKS);
    assert_eq!(r["backend"]["waveform_samples"], SAMPLES);
    assert!(
        stdout.contains(&format!(
            "waveform chunks: {CHUNKS} sent · {CHUNKS} accepted"
        )),
        "{stdout}"
    );
}

/// Every body the loopback target received, by path.
type Bodies = Arc<Mutex<BTreeMap<String, Vec<Vec<u8>>>>>;

/// A loopback target: keeps every body by path, and refuses the bedside
/// monitor's chunks (400), so refusals show apart from the measurements.
fn start_target() -> (String, Bodies) {
    use axum::http::{StatusCode, Uri};
    let bodies: Bodies = Arc::default();
    let kept = bodies.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move |uri: Uri, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let refuse = uri.path() == "/api/waveforms"
                        && String::from_utf8_lossy(&body).contains("\"bedside_monitor\"");
                    kept.lock()
                        .unwrap()
                        .entry(uri.path().to_owned())
                        .or_default()
                        .push(body.to_vec());
                    if refuse {
                        StatusCode::BAD_REQUEST
                    } else {
                        StatusCode::ACCEPTED
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            // Ends with the test process.
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}/api/measurements"), bodies)
}

#[test]
fn chunks_reach_the_waveform_url_valid_against_their_schema_and_decode_per_second() {
    let (url, bodies) = start_target();
    let dir = tempfile::tempdir().unwrap();
    let scenario =
        std::fs::read_to_string(root().join(SCENARIO)).unwrap() + "\n[alerts]\ngrace = \"1s\"\n";
    let path = dir.path().join("stream.toml");
    std::fs::write(&path, scenario).unwrap();
    let (out, stdout) = run_passing(&[path.to_str().unwrap(), "--target", &url]);
    let r = report(out.path());
    let waves = &r["transport"]["waveforms"];
    assert_eq!(waves["sent"], CHUNKS, "{waves}");
    assert_eq!(waves["accepted"], 60, "{waves}");
    assert_eq!(waves["refused"], 30, "{waves}");
    assert_eq!(waves["by_cause"]["http_400"], 30, "{waves}");
    assert_eq!(r["transport"]["refused"], 0, "measurements are apart");
    assert!(stdout.contains("(http_400 30)"), "{stdout}");

    let bodies = bodies.lock().unwrap();
    let measurements = &bodies["/api/measurements"];
    assert_eq!(
        measurements.len() as u64,
        r["transport"]["sent"].as_u64().unwrap()
    );
    let chunks = &bodies["/api/waveforms"];
    assert_eq!(
        chunks.len() as u64,
        CHUNKS,
        "one chunk per device per second"
    );

    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/waveform.schema.json")).unwrap(),
    )
    .unwrap();
    // Per device: the next first sample each chunk expects.
    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    let mut hr_seen = 0;
    for body in chunks {
        let chunk: Value = serde_json::from_slice(body).unwrap();
        if let Err(e) = check_schema(&schema, &schema, &chunk, "chunk") {
            panic!("{e}\n{chunk}");
        }
        let typed: medtwin_wire::WaveformChunk = serde_json::from_value(chunk.clone()).unwrap();
        assert_eq!(typed.check(), Ok(()));
        assert!(typed.synthetic);
        let (rate, kind) = (typed.rate_hz, typed.device_kind.as_str());
        let want_rate = if kind == "bedside_monitor" { 500 } else { 250 };
        assert_eq!(rate, want_rate, "{kind}");
        // One-second chunks: as many samples per channel as the rate.
        assert_eq!(typed.samples, rate, "{kind}");
        let names: Vec<&str> = typed.channels.iter().map(|c| c.name.as_str()).collect();
        let want: &[&str] = if kind == "bedside_monitor" {
            &["ecg_ii", "pleth", "resp"]
        } else {
            &["ecg_ii", "resp"]
        };
        assert_eq!(names, want, "{kind}");
        for c in &typed.channels {
            assert_eq!(c.data.len(), rate as usize, "{}", c.name);
        }
        let expected = next.entry(typed.device_id.clone()).or_insert(0);
        assert_eq!(typed.first_sample, *expected, "{}: no gap", typed.device_id);
        *expected += u64::from(typed.samples);
        // The start is time zero plus first_sample / rate.
        let start = medtwin_wire::parse_time(&typed.start).unwrap();
        let zero = medtwin_wire::parse_time("2026-01-01T08:00:00Z").unwrap();
        assert_eq!(
            start.duration_since(zero).unwrap().as_millis() as u64,
            typed.first_sample * 1000 / u64::from(rate)
        );
        // The ECG decodes to millivolts: a second of it holds at least one
        // R wave (healthy adults, no arrhythmia) and stays within ±5 mV.
        let ecg = &typed.channels[0];
        let mv: Vec<f64> = ecg
            .data
            .iter()
            .map(|&d| f64::from(d) * ecg.factor)
            .collect();
        let peak = mv.iter().copied().fold(f64::MIN, f64::max);
        assert!(
            peak > 0.4 && mv.iter().all(|v| v.abs() < 5.0),
            "{kind}: peak {peak} mV"
        );
        if let Some(hr) = typed.hr_bpm {
            assert!((30.0..=150.0).contains(&hr), "{kind}: counted {hr} /min");
            hr_seen += 1;
        }
    }
    assert_eq!(next.len(), 3, "three devices");
    assert!(
        next.values().all(|&n| n == 30 * 250 || n == 30 * 500),
        "{next:?}"
    );
    // The devices count their own beats after the first few seconds.
    assert!(hr_seen >= 3 * 25, "chunks with a counted rate: {hr_seen}");
}

#[test]
fn waveform_devices_on_another_transport_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(root().join(SCENARIO))
        .unwrap()
        .replace(
            "[clock]",
            "[target]\ntransport = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\n\n[clock]",
        );
    let path = dir.path().join("mqtt.toml");
    std::fs::write(&path, scenario).unwrap();
    let run = crate::common::medtwin(&["validate", path.to_str().unwrap()]);
    let stderr = crate::common::text(&run.stderr) + &crate::common::text(&run.stdout);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "mqtt.toml:28:46: error in `cohort[0].devices[0].waveforms`: waveform streaming \
             needs the http-json transport, not mqtt"
        ),
        "{stderr}"
    );
    // The same from the command line.
    let run = crate::common::medtwin(&["run", SCENARIO, "--transport", "hl7-mllp"]);
    let stderr = crate::common::text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "--transport hl7-mllp: the scenario's waveform devices stream over http-json only"
        ),
        "{stderr}"
    );
}
