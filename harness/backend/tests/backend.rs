//! The reference backend end to end on loopback: real HTTP in, real alerts
//! out to a webhook receiver that checks the bearer token, as `medtwin run`
//! uses it.
//!
//! Each test starts its own backend and receiver on 127.0.0.1:0. Alerts are
//! awaited by shutting the backend down with a grace period (which sends
//! everything queued), so no test sleeps or polls for them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use medtwin_backend::{
    self as backend, BackendConfig, BackendHandle, Faults, Level, PatientView, Stats,
};
use medtwin_sim::Vital;
use medtwin_wire::{
    self as wire, ALERT_SCHEMA, AlertMessage, Priority, TELEMETRY_SCHEMA, TelemetryMessage,
    WireValue,
};
use tokio::time::Instant;

const TOKEN: &str = "s3cret";
const GRACE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- receiver

/// What the webhook received.
#[derive(Default)]
struct Received {
    alerts: Vec<(AlertMessage, Instant)>,
    unauthorized: usize,
}

/// A webhook on loopback that records alerts carrying the right token.
struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        async fn intake(
            State(received): State<Arc<Mutex<Received>>>,
            headers: HeaderMap,
            Json(alert): Json<AlertMessage>,
        ) -> StatusCode {
            let mut received = received.lock().unwrap();
            let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {TOKEN}"));
            if !authorized {
                received.unauthorized += 1;
                return StatusCode::UNAUTHORIZED;
            }
            received.alerts.push((alert, Instant::now()));
            StatusCode::NO_CONTENT
        }
        let received = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/alerts", post(intake))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/alerts"),
            received,
            task,
        }
    }

    fn alerts(&self) -> Vec<AlertMessage> {
        self.received
            .lock()
            .unwrap()
            .alerts
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    fn alerts_for(&self, patient_id: &str) -> Vec<AlertMessage> {
        self.alerts()
            .into_iter()
            .filter(|a| a.patient_id == patient_id)
            .collect()
    }

    fn unauthorized(&self) -> usize {
        self.received.lock().unwrap().unauthorized
    }
}

// ---------------------------------------------------------------- sender

fn config(receiver: &Receiver) -> BackendConfig {
    BackendConfig {
        alerts_token: Some(TOKEN.to_owned()),
        ..BackendConfig::new(receiver.url.clone())
    }
}

/// `measured_at` of a time `t_s` seconds into the run.
fn at(t_s: f64) -> String {
    let start = wire::parse_time("2026-01-01T08:00:00Z").unwrap();
    wire::format_time(start + Duration::from_secs_f64(t_s))
}

fn vital(code: &str) -> Vital {
    Vital::ALL.into_iter().find(|v| v.code() == code).unwrap()
}

/// A telemetry message exactly as the harness puts it on the wire.
fn message(
    patient_id: &str,
    device_kind: &str,
    seq: u64,
    t_s: f64,
    values: &[(&str, f64)],
) -> TelemetryMessage {
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.to_owned(),
        synthetic: true,
        patient_id: patient_id.to_owned(),
        device_id: format!("{patient_id}/{device_kind}"),
        device_kind: device_kind.to_owned(),
        seq,
        measured_at: at(t_s),
        values: values
            .iter()
            .map(|&(code, value)| {
                let v = vital(code);
                WireValue {
                    code: code.to_owned(),
                    value,
                    unit: v.unit().to_owned(),
                    loinc: v.loinc().map(str::to_owned),
                }
            })
            .collect(),
        alarm: None,
        event: None,
    }
}

/// A full set of vitals from a ward monitor: `[hr, rr, spo2, sbp, temp]`.
fn vitals(
    patient_id: &str,
    seq: u64,
    t_s: f64,
    [hr, rr, spo2, sbp, temp]: [f64; 5],
) -> TelemetryMessage {
    message(
        patient_id,
        "vitals_monitor",
        seq,
        t_s,
        &[
            ("hr", hr),
            ("rr", rr),
            ("spo2", spo2),
            ("sbp", sbp),
            ("dbp", 70.0),
            ("temp", temp),
        ],
    )
}

/// A nurse's observation round: ACVPU code (0 = A .. 4 = U), oxygen flow in
/// L/min, NEWS2 SpO2 scale.
fn nurse_obs(
    patient_id: &str,
    seq: u64,
    t_s: f64,
    acvpu: f64,
    o2_lpm: f64,
    scale: f64,
) -> TelemetryMessage {
    message(
        patient_id,
        "nurse_observations",
        seq,
        t_s,
        &[("acvpu", acvpu), ("o2_flow", o2_lpm), ("spo2_scale", scale)],
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            http: {
                medtwin_tls::install_default_provider();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
            base: format!("http://{addr}"),
        }
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/v1/measurements", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    /// Posts one message and expects it accepted.
    async fn post(&self, m: &TelemetryMessage) {
        let (status, body) = self.post_raw(serde_json::to_vec(m).unwrap()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["accepted"], 1);
    }

    async fn post_all(&self, ms: &[TelemetryMessage]) {
        let (status, body) = self.post_raw(serde_json::to_vec(ms).unwrap()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["accepted"], ms.len());
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn patient(&self, id: &str) -> PatientView {
        let response = self.get(&format!("/v1/patients/{id}")).await;
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    async fn stats(&self) -> Stats {
        self.get("/v1/stats").await.json().await.unwrap()
    }
}

async fn start(config: BackendConfig) -> (BackendHandle, Client) {
    let handle = backend::start(config).await.unwrap();
    let client = Client::new(handle.addr());
    (handle, client)
}

/// Sepsis-like deterioration, a full set every 5 minutes. Scores, read off
/// NEWS2 Chart 1: 0, 4, 5 (medium), 6, 7 (high), 8.
fn deterioration(patient_id: &str) -> Vec<TelemetryMessage> {
    vec![
        vitals(patient_id, 0, 0.0, [80.0, 16.0, 97.0, 120.0, 37.0]),
        vitals(patient_id, 1, 300.0, [95.0, 22.0, 97.0, 120.0, 38.5]),
        vitals(patient_id, 2, 600.0, [115.0, 22.0, 97.0, 120.0, 38.5]),
        vitals(patient_id, 3, 900.0, [115.0, 22.0, 97.0, 105.0, 38.5]),
        vitals(patient_id, 4, 1200.0, [115.0, 22.0, 94.0, 105.0, 38.5]),
        vitals(patient_id, 5, 1500.0, [115.0, 26.0, 94.0, 105.0, 38.5]),
    ]
}

fn healthy(patient_id: &str, seq: u64, t_s: f64) -> TelemetryMessage {
    vitals(patient_id, seq, t_s, [72.0, 14.0, 98.0, 118.0, 36.9])
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_deteriorating_patient_pages_medium_then_high_once_each() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    let worsening = deterioration("ward-001");
    for (i, m) in worsening.iter().enumerate() {
        client.post(m).await;
        client
            .post(&healthy("ward-002", i as u64, 300.0 * i as f64))
            .await;
    }
    assert_eq!(client.get("/healthz").await.status().as_u16(), 200);
    let view = client.patient("ward-001").await;
    assert_eq!((view.level, view.news2.total), (Level::High, 8));
    assert_eq!(view.parameters["rr"].value, 26.0);
    assert_eq!(client.patient("ward-002").await.level, Level::None);
    assert_eq!(
        client.get("/v1/patients/ward-999").await.status().as_u16(),
        404
    );

    let stats = backend.shutdown(GRACE).await;
    let alerts = receiver.alerts_for("ward-001");
    let summary: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.kind.as_str(),
                a.priority,
                a.measurement_time.clone(),
                a.score,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("news2-medium", Priority::Medium, Some(at(600.0)), Some(5)),
            ("news2-high", Priority::High, Some(at(1200.0)), Some(7)),
        ]
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.schema.as_deref() == Some(ALERT_SCHEMA))
    );
    assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
    assert!(alerts[0].alert_id.is_some());
    assert!(
        receiver.alerts_for("ward-002").is_empty(),
        "a healthy patient is never paged"
    );
    assert_eq!(receiver.unauthorized(), 0);
    assert_eq!(stats.accepted, 12);
    assert_eq!(stats.patients, 2);
    assert_eq!(
        (
            stats.alerts_emitted,
            stats.alerts_delivered,
            stats.alerts_pending
        ),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn one_noisy_spo2_sample_does_not_page_but_a_sustained_fall_does() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    // Two minutes of 1 Hz oximetry; one artefact at 82 % in the first
    // (scale 1: ≤91 is a red 3 on its own) and, for the control patient, a
    // real fall to 85 % for the second minute.
    let oximetry = |patient_id: &str, spo2: &dyn Fn(u64) -> f64| -> Vec<TelemetryMessage> {
        (0..120)
            .map(|s| {
                message(
                    patient_id,
                    "pulse_oximeter",
                    s,
                    s as f64,
                    &[("spo2", spo2(s)), ("hr", 75.0)],
                )
            })
            .collect()
    };
    let noisy = oximetry("ward-010", &|s| if s == 60 { 82.0 } else { 97.0 });
    let falling = oximetry("ward-011", &|s| if s >= 60 { 85.0 } else { 97.0 });
    client.post_all(&noisy).await;
    client.post_all(&falling).await;
    // A sample more than the smoothing window older than the newest is late:
    // ignored and counted.
    client
        .post(&message(
            "ward-010",
            "pulse_oximeter",
            999,
            30.0,
            &[("spo2", 50.0)],
        ))
        .await;
    assert_eq!(
        client.patient("ward-010").await.parameters["spo2"].value,
        97.0
    );

    let stats = backend.shutdown(GRACE).await;
    assert!(
        receiver.alerts_for("ward-010").is_empty(),
        "one artefact paged someone"
    );
    let control = receiver.alerts_for("ward-011");
    assert_eq!(control.len(), 1, "{control:?}");
    assert_eq!(control[0].kind, "news2-medium");
    // The window holds the last 60 samples; with 30 of them at 85 % the
    // median, the mean of the middle two, is 91 %: already a red 3 (s = 89).
    assert_eq!(control[0].measurement_time, Some(at(89.0)));
    assert_eq!(stats.out_of_order, 1);
}

#[tokio::test]
async fn alerts_rearm_only_after_reset_after_below_threshold() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    let sick = |seq, t_s| vitals("ward-020", seq, t_s, [115.0, 22.0, 97.0, 120.0, 38.5]); // 5
    let well = |seq, t_s| vitals("ward-020", seq, t_s, [72.0, 14.0, 98.0, 118.0, 36.9]); // 0
    // Default reset_after is 10 minutes of measurement time.
    // Samples a minute or more apart, so each window holds one sample.
    let timeline = [
        sick(0, 0.0),    // medium fires
        well(1, 120.0),  // below since 120
        sick(2, 300.0),  // back above within 10 min: no new alert
        well(3, 360.0),  // below since 360
        well(4, 959.0),  // 599 s below: not yet re-armed
        sick(5, 1020.0), // so no alert
        well(6, 1080.0), // below since 1080
        well(7, 1680.0), // 600 s below: re-armed
        sick(8, 1740.0), // medium fires again
        sick(9, 1800.0), // and only once
    ];
    for m in &timeline {
        client.post(m).await;
    }
    backend.shutdown(GRACE).await;
    let times: Vec<_> = receiver
        .alerts_for("ward-020")
        .into_iter()
        .map(|a| (a.kind, a.measurement_time))
        .collect();
    assert_eq!(
        times,
        vec![
            ("news2-medium".to_owned(), Some(at(0.0))),
            ("news2-medium".to_owned(), Some(at(1740.0))),
        ]
    );
}

#[tokio::test]
async fn dropping_every_alert_sends_none_and_counts_them() {
    let receiver = Receiver::start().await;
    let mut config = config(&receiver);
    config.faults = Faults {
        drop_alerts_pct: 100.0,
        ..Faults::default()
    };
    let (backend, client) = start(config).await;
    client.post_all(&deterioration("ward-030")).await;
    let stats = backend.shutdown(GRACE).await;
    assert!(receiver.alerts().is_empty());
    assert_eq!(stats.alerts_emitted, 2);
    assert_eq!(stats.alerts_dropped_by_fault, 2);
    assert_eq!((stats.alerts_delivered, stats.alerts_pending), (0, 0));
}

#[tokio::test]
async fn delayed_alerts_arrive_no_sooner_than_the_delay() {
    const DELAY: Duration = Duration::from_millis(300);
    let receiver = Receiver::start().await;
    let mut config = config(&receiver);
    config.faults.delay_alerts = DELAY;
    let (backend, client) = start(config).await;
    let posted = Instant::now();
    client.post_all(&deterioration("ward-040")).await;
    backend.shutdown(GRACE).await;
    let received = receiver.received.lock().unwrap();
    assert_eq!(received.alerts.len(), 2);
    for (alert, arrived) in &received.alerts {
        assert!(
            *arrived >= posted + DELAY,
            "{} arrived after {:?}",
            alert.kind,
            *arrived - posted
        );
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_counted_as_failed() {
    let receiver = Receiver::start().await;
    let mut config = config(&receiver);
    config.alerts_token = Some("wrong".to_owned());
    let (backend, client) = start(config).await;
    client.post_all(&deterioration("ward-050")).await;
    let stats = backend.shutdown(GRACE).await;
    assert!(receiver.alerts().is_empty());
    assert_eq!(receiver.unauthorized(), 2, "a 4xx is not retried");
    assert_eq!((stats.alerts_failed, stats.alerts_retried), (2, 0));
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_reason_and_counted() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    let good = healthy("ward-060", 0, 0.0);

    let (status, body) = client.post_raw("{not json").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_json"))
    );

    let mut wrong_schema = good.clone();
    wrong_schema.schema = "medtwin.telemetry.v0".to_owned();
    let mut unknown_vital = good.clone();
    unknown_vital.values[0].code = "lactate".to_owned();
    let mut unit_mismatch = good.clone();
    unit_mismatch.values[5].unit = "[degF]".to_owned();
    let mut bad_time = good.clone();
    bad_time.measured_at = "yesterday".to_owned();
    for (m, reason) in [
        (&wrong_schema, "wrong_schema"),
        (&unknown_vital, "unknown_vital"),
        (&unit_mismatch, "unit_mismatch"),
        (&bad_time, "bad_time"),
    ] {
        let (status, body) = client.post_raw(serde_json::to_vec(m).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}: {body}");
        assert_eq!(body["error"], reason);
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    // One bad message refuses the whole body, and nothing of it is kept.
    let (status, body) = client
        .post_raw(serde_json::to_vec(&[good.clone(), unknown_vital.clone()]).unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("message 1"),
        "{body}"
    );
    assert_eq!(
        client.get("/v1/patients/ward-060").await.status().as_u16(),
        404
    );

    // Oversized, declared up front...
    let big = vec![good.clone(); wire::MAX_BODY_BYTES / 300];
    let big = serde_json::to_vec(&big).unwrap();
    assert!(big.len() > wire::MAX_BODY_BYTES);
    let (status, body) = client.post_raw(big).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
    );
    // ...and chunked, with no Content-Length to go by.
    assert_eq!(post_chunked(backend.addr(), 8, 10 * 1024).await, 413);
    assert_eq!(
        post_chunked(backend.addr(), 1, 10).await,
        400,
        "a small chunked body is read"
    );

    client.post(&good).await;
    let stats = client.stats().await;
    let r = stats.rejected;
    assert_eq!(
        (
            r.bad_json,
            r.wrong_schema,
            r.unknown_vital,
            r.unit_mismatch,
            r.bad_time,
            r.too_large
        ),
        (2, 1, 2, 1, 1, 2)
    );
    assert_eq!(stats.accepted, 1);
    backend.shutdown(GRACE).await;
}

/// Posts `n_chunks` chunks of `chunk_bytes` spaces with chunked transfer
/// encoding; returns the status code. (A plain socket: the client side has
/// no streaming bodies, and tokio is built without io-util.)
async fn post_chunked(addr: SocketAddr, n_chunks: usize, chunk_bytes: usize) -> u16 {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = "POST /v1/measurements HTTP/1.1\r\nhost: medtwin\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = format!("{chunk_bytes:x}\r\n{}\r\n", " ".repeat(chunk_bytes));
        for _ in 0..n_chunks {
            // The server may answer 413 and close before the last chunk.
            if stream.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn patients_beyond_the_cap_get_503() {
    let receiver = Receiver::start().await;
    let mut config = config(&receiver);
    config.max_patients = 1;
    let (backend, client) = start(config).await;
    client.post(&healthy("ward-070", 0, 0.0)).await;
    client.post(&healthy("ward-070", 1, 60.0)).await;
    let (status, body) = client
        .post_raw(serde_json::to_vec(&healthy("ward-071", 0, 0.0)).unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("too_many_patients"))
    );
    let stats = backend.shutdown(GRACE).await;
    assert_eq!(
        (
            stats.patients,
            stats.rejected.too_many_patients,
            stats.accepted
        ),
        (1, 1, 2)
    );
}

#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period() {
    let receiver = Receiver::start().await;
    let mut config = config(&receiver);
    config.faults.delay_alerts = Duration::from_secs(3600);
    let (backend, client) = start(config).await;
    client.post_all(&deterioration("ward-080")).await;
    let stats = backend.shutdown(Duration::from_millis(200)).await;
    assert!(receiver.alerts().is_empty());
    assert_eq!((stats.alerts_emitted, stats.alerts_pending), (2, 2));
}

#[tokio::test]
async fn the_listen_address_is_what_was_asked() {
    let receiver = Receiver::start().await;
    let backend = backend::start(config(&receiver)).await.unwrap();
    assert!(backend.addr().ip().is_loopback());
    assert_ne!(backend.addr().port(), 0);
    let mut bad = config(&receiver);
    bad.alerts_url = "not a url".to_owned();
    assert!(backend::start(bad).await.is_err());
    let mut bad = config(&receiver);
    bad.faults.drop_alerts_pct = 101.0;
    assert!(backend::start(bad).await.is_err());
    backend.shutdown(GRACE).await;
}

#[tokio::test]
async fn a_charted_scale_2_patient_is_scored_on_scale_2_and_oxygen_scores_2() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    // Two COPD patients living at SpO2 90 % on air, otherwise normal. Only
    // ward-090's nurse charts scale 2; ward-091's scale is not on the wire.
    let copd = |id: &str, seq, t_s| vitals(id, seq, t_s, [80.0, 16.0, 90.0, 125.0, 36.9]);
    client
        .post(&nurse_obs("ward-090", 0, 0.0, 0.0, 0.0, 2.0))
        .await;
    client.post(&copd("ward-090", 0, 60.0)).await;
    client.post(&copd("ward-091", 0, 60.0)).await;
    let view = client.patient("ward-090").await;
    assert_eq!(
        (view.news2.sub_scores.spo2, view.news2.total, view.level),
        (0, 0, Level::None),
        "{view:?}"
    );
    assert_eq!(view.parameters["spo2_scale"].value, 2.0);
    let control = client.patient("ward-091").await;
    assert_eq!(
        (control.news2.sub_scores.spo2, control.level),
        (3, Level::Medium)
    );

    // Put on 2 L/min: oxygen scores 2; at 90 % on scale 2 the SpO2 still 0.
    client
        .post(&nurse_obs("ward-090", 1, 3600.0, 0.0, 2.0, 2.0))
        .await;
    client.post(&copd("ward-090", 1, 3660.0)).await;
    let view = client.patient("ward-090").await;
    assert_eq!(
        (
            view.news2.sub_scores.air_or_oxygen,
            view.news2.sub_scores.spo2,
            view.news2.total
        ),
        (2, 0, 2)
    );
    assert_eq!(view.parameters["o2_flow"].value, 2.0);
    // Over-oxygenated: 97 % on oxygen on scale 2 is a red 3 (5 in all).
    client
        .post(&vitals(
            "ward-090",
            2,
            3720.0,
            [80.0, 16.0, 97.0, 125.0, 36.9],
        ))
        .await;
    assert_eq!(client.patient("ward-090").await.news2.total, 5);

    backend.shutdown(GRACE).await;
    let paged: Vec<_> = receiver
        .alerts_for("ward-090")
        .into_iter()
        .map(|a| (a.kind, a.measurement_time, a.score))
        .collect();
    assert_eq!(
        paged,
        vec![("news2-medium".to_owned(), Some(at(3720.0)), Some(5))],
        "paged at 90 % on air, or not for over-oxygenation"
    );
    let control: Vec<_> = receiver.alerts_for("ward-091");
    assert_eq!(
        control.len(),
        1,
        "scale 1 pages the uncharted one: {control:?}"
    );
}

#[tokio::test]
async fn a_patient_charted_responding_to_voice_scores_3_and_pages() {
    let receiver = Receiver::start().await;
    let (backend, client) = start(config(&receiver)).await;
    client.post(&healthy("ward-095", 0, 0.0)).await;
    assert_eq!(client.patient("ward-095").await.level, Level::None);
    client
        .post(&nurse_obs("ward-095", 0, 60.0, 2.0, 0.0, 1.0))
        .await;
    let view = client.patient("ward-095").await;
    assert_eq!(
        (
            view.news2.sub_scores.consciousness,
            view.news2.red,
            view.level
        ),
        (3, true, Level::Medium)
    );
    assert_eq!(view.parameters["acvpu"].value, 2.0);
    // Alert again 12 minutes on: the score drops back (re-arming is the
    // escalation's business).
    client
        .post(&nurse_obs("ward-095", 1, 780.0, 0.0, 0.0, 1.0))
        .await;
    assert_eq!(client.patient("ward-095").await.news2.total, 0);
    backend.shutdown(GRACE).await;
    let alerts = receiver.alerts_for("ward-095");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (
            alerts[0].kind.as_str(),
            alerts[0].measurement_time.clone(),
            alerts[0].score
        ),
        ("news2-medium", Some(at(60.0)), Some(3))
    );
}
