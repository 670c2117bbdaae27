//! The protocol-independent parts of interop, end to end: choosing a
//! transport and intakes (and refusing nonsense with the field named), the
//! file transport's NDJSON record, and signed webhooks.

use serde_json::Value;

use crate::common::{assert_valid, medtwin, report, root, run_passing, text};

#[test]
fn the_file_transport_records_every_delivery_as_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.ndjson");
    let out = dir.path().join("report");
    let run = medtwin(&[
        "run",
        "fixtures/scenarios/small-sepsis.toml",
        "--clock",
        "virtual",
        "--transport",
        "file",
        "--target",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    // Nothing reads the file and raises alerts: the expectation fails (exit
    // 1), but the run itself is sound.
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert!(
        text(&run.stdout).contains("over file"),
        "{}",
        text(&run.stdout)
    );
    let r = report(&out);
    assert_valid(&r);
    assert_eq!(r["target"]["transport"], "file");
    assert_eq!(r["target"]["encoding"], "json");
    let delivered = r["accounting"]["delivered"].as_u64().unwrap();
    assert_eq!(r["transport"]["accepted"].as_u64(), Some(delivered));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/telemetry.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let recorded = std::fs::read_to_string(&file).unwrap();
    let mut ids = Vec::new();
    let mut last_per_patient = std::collections::HashMap::new();
    for line in recorded.lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        let message = &l["message"];
        assert!(validator.is_valid(message), "{line}");
        assert_eq!(l["patient"], message["patient_id"], "{line}");
        assert_eq!(l["device"], message["device_id"], "{line}");
        assert_eq!(l["content_type"], "application/json");
        // Each patient's messages are recorded in delivery order.
        let at = l["delivered_ms"].as_u64().unwrap();
        let previous = last_per_patient.insert(l["patient"].to_string(), at);
        assert!(previous.is_none_or(|p| p <= at), "{line}");
        ids.push(l["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len() as u64,
        delivered,
        "one line per delivery, none twice"
    );
}

#[test]
fn a_signed_webhook_takes_the_backends_signed_alerts() {
    let (out, stdout) = run_passing(&["fixtures/scenarios/signed-webhook.toml"]);
    assert!(
        stdout.contains("(GitHub-style HMAC-SHA256 signature)"),
        "{stdout}"
    );
    let r = report(out.path());
    assert_eq!(r["alerts"]["refused"]["unauthorized"], 0);
    assert!(r["alerts"]["received"].as_u64().unwrap() >= 2);
    assert_eq!(r["alerts"]["intakes"][0]["kind"], "webhook");
}

fn invalid(toml: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let mut all = vec!["run", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = medtwin(&all);
    let stderr = text(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}\n{stderr}",
        text(&run.stdout)
    );
    stderr
}

const BASE: &str = r#"name = "x"
duration = "1m"
[[cohort]]
name = "bay"
count = 1
network = "hospital_wifi"
devices = [{ kind = "pulse_oximeter", every = "5s" }]
"#;

#[test]
fn transports_and_intakes_that_make_no_sense_are_refused_with_the_field() {
    let unknown = invalid(&format!("{BASE}[target]\ntransport = \"pigeon\"\n"), &[]);
    assert!(
        unknown.contains("target.transport") && unknown.contains("hl7-mllp"),
        "{unknown}"
    );
    let table = invalid(
        &format!("{BASE}[target]\ntransport = \"fhir\"\n[target.mqtt]\nqos = 1\n"),
        &[],
    );
    assert!(
        table.contains("target.mqtt") && table.contains("transport = \"mqtt\""),
        "{table}"
    );
    let qos = invalid(
        &format!("{BASE}[target]\ntransport = \"mqtt\"\n[target.mqtt]\nqos = 3\n"),
        &[],
    );
    assert!(qos.contains("target.mqtt.qos"), "{qos}");
    let topic = invalid(
        &format!("{BASE}[target]\ntransport = \"mqtt\"\n[target.mqtt]\ntopic = \"a/{{ward}}\"\n"),
        &[],
    );
    assert!(topic.contains("{ward}"), "{topic}");
    let url = invalid(
        &format!("{BASE}[target]\ntransport = \"hl7-mllp\"\nurl = \"http://x:1\"\n"),
        &[],
    );
    assert!(
        url.contains("target.url") && url.contains("mllp://"),
        "{url}"
    );
    let encoding = invalid(
        &format!("{BASE}[target]\ntransport = \"fhir\"\nencoding = \"hl7\"\n"),
        &[],
    );
    assert!(encoding.contains("target.encoding"), "{encoding}");
    let intake = invalid(
        &format!("{BASE}[alerts]\nintake = [\"webhook\", \"pager\"]\n"),
        &[],
    );
    assert!(
        intake.contains("alerts.intake") && intake.contains("fhir-poll"),
        "{intake}"
    );
    let mapping = invalid(&format!("{BASE}[alerts.mapping]\nkind = \"/k\"\n"), &[]);
    assert!(mapping.contains("alerts.mapping.patient"), "{mapping}");
    let flag = invalid(
        BASE,
        &["--transport", "mqtt", "--target", "http://127.0.0.1:1"],
    );
    assert!(
        flag.contains("--target") && flag.contains("scheme"),
        "{flag}"
    );
    let file = invalid(BASE, &["--transport", "file"]);
    assert!(file.contains("--target"), "{file}");
    let name = invalid(BASE, &["--intake", "pager"]);
    assert!(name.contains("unknown intake"), "{name}");
}

#[test]
fn a_recording_replays_into_a_backend_and_bad_recordings_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.ndjson");
    let out = dir.path().join("report");
    let record = medtwin(&[
        "run",
        "fixtures/scenarios/small-sepsis.toml",
        "--clock",
        "virtual",
        "--transport",
        "file",
        "--target",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(record.status.code(), Some(1), "{}", text(&record.stderr));
    let lines = std::fs::read_to_string(&file).unwrap().lines().count() as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = rt.block_on(async {
        let mut config = medtwin_backend::BackendConfig::new("");
        config.token = Some("replay-token".into());
        medtwin_backend::start(config).await.unwrap()
    });
    let url = format!("http://{}/v1/measurements", backend.addr());
    let token_file = dir.path().join("token.txt");
    std::fs::write(&token_file, "replay-token\n").unwrap();
    let replay = medtwin(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    let stdout = text(&replay.stdout);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&replay.stderr)
    );
    assert!(
        stdout.contains(&format!("replayed {lines} messages")),
        "{stdout}"
    );
    assert_eq!(
        backend.stats().accepted,
        lines,
        "every recorded message scored"
    );
    assert_eq!(
        backend.patient("bay-000").map(|p| p.patient_id),
        Some("bay-000".into())
    );
    // A FHIR recording replays over the FHIR transport (its content type
    // is the FHIR encoder's own).
    let fhir = dir.path().join("f.ndjson");
    let record = medtwin(&[
        "run",
        "fixtures/scenarios/small-sepsis.toml",
        "--clock",
        "virtual",
        "--transport",
        "file",
        "--encoding",
        "fhir",
        "--target",
        fhir.to_str().unwrap(),
        "--out",
        dir.path().join("report-fhir").to_str().unwrap(),
    ]);
    assert_eq!(record.status.code(), Some(1), "{}", text(&record.stderr));
    let fhir_url = format!("http://{}/fhir", backend.addr());
    let replay = medtwin(&[
        "replay",
        fhir.to_str().unwrap(),
        "--transport",
        "fhir",
        "--target",
        &fhir_url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    let stdout = text(&replay.stdout);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&replay.stderr)
    );
    assert!(
        stdout.contains(&format!("replayed {lines} messages")),
        "{stdout}"
    );
    // A wrong token: every message refused, counted by cause, exit 4.
    let refused = medtwin(&["replay", file.to_str().unwrap(), "--target", &url]);
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        text(&refused.stdout).contains("http_401"),
        "{}",
        text(&refused.stdout)
    );
    // A broken line is an input error naming the file and line.
    let bad = dir.path().join("bad.ndjson");
    let first = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&bad, format!("{first}\n{{\"id\": \"x\"}}\n")).unwrap();
    let broken = medtwin(&["replay", bad.to_str().unwrap(), "--target", &url]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken.stderr).contains("bad.ndjson:2:"),
        "{}",
        text(&broken.stderr)
    );
    drop(backend);
}

#[test]
fn every_interop_qa_scenario_passes_against_the_reference_backend() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scenarios/qa"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("interop-") && n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let file = format!("scenarios/qa/{name}");
        let (out, stdout) = run_passing(&[&file, "--clock", "virtual"]);
        assert!(stdout.contains("verdict: PASS"), "{file}\n{stdout}");
        assert_valid(&report(out.path()));
    }
}
