//! FHIR R4 end to end: the quickstart over FHIR (transport, subscription
//! and polling intakes) with the verdict it has over HTTP JSON; every
//! resource kind a real run emits through an independent validator;
//! reruns that do not duplicate patients and devices; a target that
//! refuses with an OperationOutcome, and one that fails with 500s.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{assert_valid, medtwin, report, root, run_passing, text};

const TOKEN: &str = "fhir-test-token";

/// The quickstart on the virtual clock (lockstep: the harness never runs
/// late, whatever else the machine is doing; the scenario's x400 over FHIR
/// needs a release build on a loaded two-core runner), with the verdict it
/// has over HTTP JSON (`e2e::quickstart_passes_against_the_embedded_backend`).
fn quickstart(extra: &[&str]) -> Value {
    let mut args = vec!["scenarios/quickstart.toml", "--clock", "virtual"];
    args.extend_from_slice(extra);
    let (out, stdout) = run_passing(&args);
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    let r = report(out.path());
    assert_valid(&r);
    r
}

#[test]
fn the_quickstart_passes_over_fhir_with_a_subscription_intake() {
    let r = quickstart(&["--transport", "fhir", "--intake", "fhir-subscription"]);
    assert_eq!(r["target"]["transport"], "fhir");
    assert_eq!(r["transport"]["accepted"], r["transport"]["sent"]);
    let carrier = &r["transport"]["carrier"];
    // 20 patients and 80 devices created, then the Observations.
    assert!(
        carrier["fhir_created"].as_u64().unwrap() >= 100,
        "{carrier}"
    );
    assert!(
        carrier["fhir_transactions"].as_u64().unwrap() > 0,
        "{carrier}"
    );
    let intake = &r["alerts"]["intakes"][0];
    assert_eq!(intake["kind"], "fhir-subscription");
    assert!(intake["received"].as_u64().unwrap() >= 8, "{intake}");
    assert_eq!(intake["counters"]["handshakes"], 1, "{intake}");
    assert_eq!(intake["counters"].get("gaps"), None, "{intake}");
    assert_eq!(r["alerts"]["refused"]["malformed"], 0);
}

#[test]
fn the_quickstart_passes_with_a_polling_intake() {
    let r = quickstart(&["--intake", "fhir-poll"]);
    let intake = &r["alerts"]["intakes"][0];
    assert_eq!(intake["kind"], "fhir-poll");
    assert!(intake["received"].as_u64().unwrap() >= 8, "{intake}");
    assert!(
        intake["counters"]["polls"].as_u64().unwrap() > 5,
        "{intake}"
    );
    assert_eq!(intake["counters"].get("poll_errors"), None, "{intake}");
}

/// A tokio runtime for servers living beside the binary under test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every device class whose messages become a different Observation.
const DEVICES: &str = r#"devices = [
  { kind = "pulse_oximeter", every = "5s" },
  { kind = "ecg_patch", every = "30s" },
  { kind = "bp_cuff", every = "5m" },
  { kind = "thermometer", every = "5m" },
  { kind = "cgm" },
  { kind = "infusion_pump" },
  { kind = "nurse_observations", every = "10m" },
  { kind = "med_dispenser" },
]"#;

fn scenario(target: &str, intake: &str) -> String {
    format!(
        r#"# FHIR interop test: two patients, one septic, every device class.
name = "fhir-kinds"
seed = 11
duration = "40m"
step = "1s"
[clock]
mode = "accelerated"
speed = 300
[[cohort]]
name = "bed"
count = 2
network = "hospital_wifi"
{DEVICES}
[[event]]
at = "1m"
who = "bed[0..1]"
condition = "sepsis"
ramp = "10m"
{target}
[alerts]
intake = {intake}
[alerts.fhir]
heartbeat = "1s"
"#
    )
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> Value {
    rt.block_on(async {
        let r = {
            medtwin_tls::install_default_provider();
            reqwest::Client::new()
        }
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.json::<Value>().await.unwrap()
    })
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn send(rt: &tokio::runtime::Runtime, url: &str, body: Value) -> (u16, Value) {
    rt.block_on(async {
        let r = {
            medtwin_tls::install_default_provider();
            reqwest::Client::new()
        }
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    })
}

/// A transaction of one new Patient and one Observation about it.
fn one_transaction() -> Value {
    let patient = medtwin_fhir::admin::patient("tx-patient");
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f0c1b6e-6d2a-4c8e-9a51-0d6a1c3e2b10",
         "resource": serde_json::to_value(patient).unwrap(),
         "request": {"method": "POST", "url": "Patient",
                     "ifNoneExist": "identifier=https://medtwin.invalid/fhir/sid/patient|tx-patient"}},
        {"fullUrl": "urn:uuid:0b7d3e9a-2f41-4c1d-8e6b-5a9c7d2e4f31",
         "resource": {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1"}]},
            "subject": {"identifier": {"system": "https://medtwin.invalid/fhir/sid/patient", "value": "tx-patient"}},
            "effectiveDateTime": "2026-01-01T08:00:00Z",
            "valueQuantity": {"value": 18, "unit": "breaths/minute", "system": "http://unitsofmeasure.org", "code": "/min"}},
         "request": {"method": "POST", "url": "Observation"}}]})
}

/// The validator script and its Python; `None` (skip) when
/// `MEDTWIN_PYTHON` is unset, unless `CI` is set.
fn validator() -> Option<(String, PathBuf)> {
    let script = root().join("scripts/validators/validate_fhir.py");
    match std::env::var("MEDTWIN_PYTHON") {
        Ok(python) => Some((python, script)),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CI must validate FHIR output: set MEDTWIN_PYTHON (scripts/test.sh does)")
        }
        Err(_) => {
            eprintln!("skipped: MEDTWIN_PYTHON is unset (scripts/test.sh sets it)");
            None
        }
    }
}

fn validate(dir: &Path, resources: &[(String, Value)]) {
    let Some((python, script)) = validator() else {
        return;
    };
    let files: Vec<PathBuf> = resources
        .iter()
        .enumerate()
        .map(|(i, (name, v))| write(dir, &format!("{i}-{name}.json"), &v.to_string()))
        .collect();
    let out = Command::new(python)
        .arg(script)
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

#[test]
fn every_resource_a_run_emits_is_valid_and_reruns_do_not_duplicate() {
    let rt = runtime();
    let mut config = medtwin_backend::BackendConfig::new("");
    config.token = Some(TOKEN.into());
    let backend = rt.block_on(medtwin_backend::start(config)).unwrap();
    let base = format!("http://{}/fhir", backend.addr());
    let dir = tempfile::tempdir().unwrap();
    let target = format!(
        "[target]\nurl = \"{base}\"\ntransport = \"fhir\"\ntoken = \"{TOKEN}\"\n\n[target.fhir]\nbundle = 4\n"
    );
    let path = write(
        dir.path(),
        "fhir.toml",
        &scenario(&target, "[\"fhir-subscription\"]"),
    );
    for run in 0..2 {
        let out = dir.path().join(format!("out-{run}"));
        let done = medtwin(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            matches!(done.status.code(), Some(0 | 1)),
            "{}\n{}",
            text(&done.stdout),
            text(&done.stderr)
        );
        let r = report(&out);
        // Every message sent (device resends included) was taken.
        assert_eq!(
            r["transport"]["accepted"], r["transport"]["sent"],
            "{}",
            r["transport"]
        );
        let carrier = &r["transport"]["carrier"];
        if run == 1 {
            // The second run found its 2 patients and 16 devices.
            assert_eq!(carrier["fhir_found_existing"], 18, "{carrier}");
        }
        assert!(
            r["alerts"]["received"].as_u64().unwrap() >= 1,
            "{}",
            r["alerts"]
        );
    }
    let patients = get(&rt, &format!("{base}/Patient"));
    assert_eq!(patients["total"], 2, "reruns do not duplicate patients");
    let devices = get(&rt, &format!("{base}/Device"));
    assert_eq!(devices["total"], 16, "nor devices");

    // Each run's intake deleted its Subscription when it stopped.
    assert_eq!(get(&rt, &format!("{base}/Subscription"))["total"], 0);
    // What the server holds: Patient, Device, the alerts as DetectedIssue,
    // Flag and Communication (the Subscription medtwin creates is
    // validated in medtwin-fhir's own tests).
    let mut resources: Vec<(String, Value)> = Vec::new();
    for kind in [
        "Patient",
        "Device",
        "DetectedIssue",
        "Flag",
        "Communication",
    ] {
        let found = entries(&get(&rt, &format!("{base}/{kind}")));
        assert!(!found.is_empty(), "no {kind}");
        resources.extend(found.into_iter().map(|r| (kind.to_owned(), r)));
    }
    // The server's own answers: its CapabilityStatement, a searchset, a
    // transaction-response, and the OperationOutcome of a refusal.
    resources.push(("metadata".into(), get(&rt, &format!("{base}/metadata"))));
    resources.push((
        "searchset".into(),
        get(&rt, &format!("{base}/Flag?_count=3")),
    ));
    let (tx_status, tx_answer) = send(&rt, &base, one_transaction());
    assert_eq!(tx_status, 200, "{tx_answer}");
    assert_eq!(tx_answer["type"], "transaction-response");
    resources.push(("transaction-response".into(), tx_answer));
    let (status, refusal) = send(
        &rt,
        &format!("{base}/Observation"),
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "effectiveDateTime": "2026-01-01T08:00:00Z",
               "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "/min"}}),
    );
    assert_eq!(status, 422, "{refusal}");
    assert_eq!(refusal["issue"][0]["expression"][0], "Observation.subject");
    resources.push(("operation-outcome".into(), refusal));
    // Alerts read back as what the backend raised.
    for (_, r) in resources.iter().filter(|(k, _)| k == "DetectedIssue") {
        let a = medtwin_fhir::alert::alert_from(r.clone()).unwrap();
        assert!(
            a.kind.starts_with("news2-") || a.kind.starts_with("device-"),
            "{a:?}"
        );
    }

    // What medtwin sends, recorded: the same encoder to a file.
    let file = dir.path().join("fhir.ndjson");
    let target = format!(
        "[target]\nurl = \"{}\"\ntransport = \"file\"\nencoding = \"fhir\"\n",
        file.display()
    );
    let path = write(dir.path(), "file.toml", &scenario(&target, "\"webhook\""));
    let out = dir.path().join("out-file");
    let done = medtwin(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        matches!(done.status.code(), Some(0 | 1)),
        "{}",
        text(&done.stderr)
    );
    let mut observations: Vec<Vec<u8>> = Vec::new();
    let mut codes = HashSet::new();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let body = match (&l["message"], &l["text"]) {
            (Value::Null, Value::String(t)) => t.clone(),
            (m, _) => m.to_string(),
        };
        for resource in body.lines() {
            let v: Value = serde_json::from_str(resource).unwrap();
            let code = v["code"]["coding"][0]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if codes.insert(code) {
                resources.push(("Observation".into(), v));
            }
            if observations.len() < 40 {
                observations.push(resource.as_bytes().to_vec());
            }
        }
    }
    // Heart rate, SpO2, respiratory rate, blood pressure, temperature,
    // CGM glucose, infusion rate, ACVPU, oxygen, SpO2 scale, dose events.
    for code in [
        "8867-4", "2708-6", "9279-1", "85354-9", "8310-5", "99504-3", "80288-4", "3151-8",
    ] {
        assert!(
            codes.contains(code),
            "no Observation coded {code}: {codes:?}"
        );
    }
    let slices: Vec<&[u8]> = observations.iter().map(Vec::as_slice).collect();
    let tx: Value =
        serde_json::from_slice(&medtwin_fhir::bundle::transaction_raw(&slices)).unwrap();
    resources.push(("transaction".into(), tx));
    validate(dir.path(), &resources);
    drop(backend);
}

/// How the fake FHIR server answers Observations.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 422 with an OperationOutcome (issue code `invalid`).
    Refuse,
    /// 500 the first time each Observation comes, 201 the second.
    FailOnce,
}

/// A FHIR server that creates patients and devices and answers
/// Observations as `mode` says; stops with the runtime.
fn fake(rt: &tokio::runtime::Runtime, mode: Mode) -> (SocketAddr, Arc<Mutex<u64>>) {
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let served = Arc::new(Mutex::new(0_u64));
    let count = Arc::clone(&served);
    let observation = move |headers: HeaderMap| {
        let seen = Arc::clone(&seen);
        let count = Arc::clone(&count);
        async move {
            *count.lock().unwrap() += 1;
            let key = headers
                .get("if-none-exist")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let first = seen.lock().unwrap().insert(key);
            let oo = |status: StatusCode, code: &str| {
                let body = json!({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": code, "diagnostics": "test refusal"}]});
                (
                    status,
                    [("content-type", "application/fhir+json")],
                    body.to_string(),
                )
                    .into_response()
            };
            match mode {
                Mode::Refuse => oo(StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                Mode::FailOnce if first => oo(StatusCode::INTERNAL_SERVER_ERROR, "exception"),
                Mode::FailOnce => (
                    StatusCode::CREATED,
                    [("location", "/fhir/Observation/1/_history/1")],
                    "",
                )
                    .into_response(),
            }
        }
    };
    let create = |kind: &'static str| {
        move || async move {
            (
                StatusCode::CREATED,
                [("location", format!("/fhir/{kind}/{kind}-1/_history/1"))],
                "",
            )
        }
    };
    let app = Router::new()
        .route("/fhir/Patient", post(create("Patient")))
        .route("/fhir/Device", post(create("Device")))
        .route("/fhir/Observation", post(observation));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (addr, served)
}

fn run_against(addr: SocketAddr) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"# A fake FHIR server's refusals, counted.
name = "fhir-fake"
seed = 5
duration = "10m"
step = "1s"
[clock]
mode = "virtual"
[[cohort]]
name = "bed"
count = 2
network = "hospital_wifi"
devices = [{{ kind = "resp_monitor", every = "30s" }}]
[target]
url = "http://{addr}/fhir"
transport = "fhir"
"#
    );
    let path = write(dir.path(), "fake.toml", &toml);
    let out = dir.path().join("out");
    let done = medtwin(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.code().is_some(), "{}", text(&done.stderr));
    report(&out)
}

#[test]
fn a_target_refusing_with_an_operation_outcome_is_counted_by_its_issue_code() {
    let rt = runtime();
    let (addr, served) = fake(&rt, Mode::Refuse);
    let r = run_against(addr);
    let t = &r["transport"];
    let refused = t["refused"].as_u64().unwrap();
    assert!(refused > 0, "{t}");
    assert_eq!(t["accepted"], 0, "{t}");
    assert_eq!(t["by_cause"]["http_422"].as_u64(), Some(refused), "{t}");
    assert_eq!(
        t["by_reason"]["http_422: invalid"].as_u64(),
        Some(refused),
        "{t}"
    );
    assert_eq!(t["retries"], 0, "a 422 is not retried: {t}");
    assert_eq!(*served.lock().unwrap(), refused);
}

#[test]
fn server_errors_are_retried_until_accepted() {
    let rt = runtime();
    let (addr, served) = fake(&rt, Mode::FailOnce);
    let r = run_against(addr);
    let t = &r["transport"];
    let sent = t["sent"].as_u64().unwrap();
    assert!(sent > 0);
    assert_eq!(t["accepted"].as_u64(), Some(sent), "{t}");
    assert_eq!(
        t["retries"].as_u64(),
        Some(sent),
        "each message once more: {t}"
    );
    assert_eq!(*served.lock().unwrap(), 2 * sent);
}

/// A FHIR server whose subscription notifications lose one event and then
/// fall silent: the intake counts the gap, the heartbeat and the silence.
#[test]
fn a_subscription_that_loses_an_event_and_falls_silent_is_reported() {
    use medtwin_fhir::subscription::{
        Event, Focus, Notification, NotificationType, notification_bundle,
    };
    let rt = runtime();
    let subscribe = |body: String| async move {
        let sub: Value = serde_json::from_str(&body).unwrap();
        let endpoint = sub["channel"]["endpoint"].as_str().unwrap().to_owned();
        let auth = sub["channel"]["header"][0].as_str().unwrap().to_owned();
        tokio::spawn(async move {
            let client = {
                medtwin_tls::install_default_provider();
                reqwest::Client::new()
            };
            let alert = medtwin_wire::AlertMessage {
                schema: None,
                alert_id: None,
                patient_id: "bed-000".into(),
                kind: "news2-high".into(),
                priority: medtwin_wire::Priority::High,
                measurement_time: None,
                score: Some(7),
            };
            let flag = |n: u64| {
                let mut f = medtwin_fhir::alert::flag(
                    &medtwin_wire::AlertMessage {
                        alert_id: Some(format!("a{n}")),
                        ..alert.clone()
                    },
                    None,
                );
                f.id = Some(format!("f{n}"));
                serde_json::to_value(f).unwrap()
            };
            let note = |kind, since, events: Vec<u64>| Notification {
                kind,
                subscription: "http://fake/fhir/Subscription/1".into(),
                topic: None,
                status: "active".into(),
                events_since_start: Some(since),
                events: events
                    .into_iter()
                    .map(|n| Event {
                        number: n,
                        timestamp: "2026-01-01T08:00:00Z".into(),
                        focus: Some(Focus {
                            full_url: format!("http://fake/fhir/Flag/f{n}"),
                            resource_type: "Flag".into(),
                            resource: Some(flag(n)),
                        }),
                    })
                    .collect(),
            };
            let (name, value) = auth.split_once(": ").unwrap();
            for n in [
                note(NotificationType::Handshake, 0, vec![]),
                note(NotificationType::EventNotification, 1, vec![1]),
                // Event 2 is lost on the way.
                note(NotificationType::EventNotification, 3, vec![3]),
                note(NotificationType::Heartbeat, 3, vec![]),
            ] {
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                let body =
                    serde_json::to_vec(&notification_bundle(&n, "2026-01-01T08:00:00Z")).unwrap();
                let sent = client
                    .post(&endpoint)
                    .header(name, value)
                    .header("content-type", "application/fhir+json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(sent.status().is_success());
            }
            // Then nothing: the intake must notice the silence.
        });
        (
            StatusCode::CREATED,
            [("location", "/fhir/Subscription/1/_history/1")],
            "",
        )
    };
    let created = |kind: &'static str| {
        move || async move {
            (
                StatusCode::CREATED,
                [("location", format!("/fhir/{kind}/1/_history/1"))],
                "",
            )
        }
    };
    let app = Router::new()
        .route("/fhir/Patient", post(created("Patient")))
        .route("/fhir/Device", post(created("Device")))
        .route("/fhir/Observation", post(created("Observation")))
        .route("/fhir/Subscription", post(subscribe))
        .route(
            "/fhir/Subscription/1",
            axum::routing::delete(|| async { StatusCode::NO_CONTENT }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"# A FHIR server that loses a notification, then falls silent.
name = "fhir-gaps"
seed = 5
duration = "12m"
step = "1s"
[clock]
mode = "accelerated"
speed = 120
[[cohort]]
name = "bed"
count = 1
network = "hospital_wifi"
devices = [{{ kind = "resp_monitor", every = "1m" }}]
[target]
url = "http://{addr}/fhir"
transport = "fhir"
[alerts]
intake = "fhir-subscription"
[alerts.fhir]
heartbeat = "1s"
"#
    );
    let path = write(dir.path(), "gaps.toml", &toml);
    let out = dir.path().join("out");
    let done = medtwin(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        matches!(done.status.code(), Some(0 | 1)),
        "{}\n{}",
        text(&done.stdout),
        text(&done.stderr)
    );
    let r = report(&out);
    let intake = &r["alerts"]["intakes"][0];
    assert_eq!(intake["kind"], "fhir-subscription");
    assert_eq!(intake["received"], 2, "{intake}");
    let c = &intake["counters"];
    assert_eq!(c["handshakes"], 1, "{c}");
    assert_eq!(c["event_notifications"], 2, "{c}");
    assert_eq!(c["heartbeats"], 1, "{c}");
    assert_eq!(c["gaps"], 1, "{c}");
    assert_eq!(c["missed_events"], 1, "{c}");
    assert!(c["silences"].as_u64().unwrap() >= 1, "{c}");
}
