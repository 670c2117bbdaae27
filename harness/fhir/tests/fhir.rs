//! Every resource kind medtwin emits, built from realistic messages:
//! checked fact by fact, read back by our decoder (round trip), and run
//! through an independent validator (`scripts/validators/validate_fhir.py`,
//! Python `fhir.resources` plus the profile rules it cannot check).

use std::path::PathBuf;
use std::process::Command;

use medtwin_fhir::admin::{self, if_none_exist, parse_identifier_search, uuid_for};
use medtwin_fhir::alert::{alert_from, communication, detected_issue, flag};
use medtwin_fhir::bundle::{
    self, TransactionOutcome, create_observation, first_issue, outcome, parse_location,
    transaction, transaction_outcome,
};
use medtwin_fhir::codes::{self, LOINC, MDC, SID_OBSERVATION, SID_PATIENT, UCUM};
use medtwin_fhir::model::{Bundle, Observation, Subscription};
use medtwin_fhir::observation::{Refs, observations, parse_key, telemetry};
use medtwin_fhir::subscription::{
    Event, Focus, Notification, NotificationType, SubscriptionRequest, notification_bundle,
    parse_notification, settings, subscription,
};
use medtwin_wire::{
    ALERT_SCHEMA, AlertMessage, Priority, TELEMETRY_SCHEMA, TelemetryMessage, WireEvent, WireValue,
};
use serde_json::{Value, json};

fn value(code: &str, v: f64) -> WireValue {
    let vc = codes::vital(code).unwrap();
    WireValue {
        code: code.into(),
        value: v,
        unit: vc.unit.into(),
        loinc: vc.loinc.map(|l| l.code.to_owned()),
    }
}

fn message(kind: &str, seq: u64, values: Vec<WireValue>) -> TelemetryMessage {
    TelemetryMessage {
        schema: TELEMETRY_SCHEMA.into(),
        synthetic: true,
        patient_id: "ward-003".into(),
        device_id: format!("ward-003/{kind}"),
        device_kind: kind.into(),
        seq,
        measured_at: "2026-01-01T08:00:01.500Z".into(),
        values,
        alarm: None,
        event: None,
    }
}

/// One message of every shape the twin sends.
fn messages() -> Vec<TelemetryMessage> {
    let mut alarm_only = message("finger_oximeter", 9, vec![]);
    alarm_only.alarm = Some("low_perfusion".into());
    let mut with_alarm = message("ecg_patch", 10, vec![value("hr", 0.0), value("rr", 12.0)]);
    with_alarm.alarm = Some("lead_off".into());
    let mut event = message("med_dispenser", 11, vec![]);
    event.event = Some(WireEvent {
        kind: "dose_missed".into(),
        scheduled_at: "2026-01-01T08:00:00.000Z".into(),
    });
    let mut battery = message("cgm", 12, vec![value("glucose", 142.0)]);
    battery.alarm = Some("low_battery".into());
    vec![
        message(
            "pulse_oximeter",
            1,
            vec![value("spo2", 96.0), value("hr", 88.0)],
        ),
        message("ecg_patch", 2, vec![value("hr", 112.0), value("rr", 24.0)]),
        message(
            "bp_cuff",
            3,
            vec![value("sbp", 92.0), value("dbp", 55.0), value("map", 67.0)],
        ),
        message("cuffless_bp_patch", 4, vec![value("sbp", 131.0)]),
        message("thermometer", 5, vec![value("temp", 38.4)]),
        message("cgm", 6, vec![value("glucose", 71.0)]),
        message("weight_scale", 7, vec![value("weight", 82.3)]),
        message("infusion_pump", 8, vec![value("infusion_rate", 125.0)]),
        message(
            "nurse_observations",
            13,
            vec![
                value("acvpu", 2.0),
                value("o2_flow", 2.0),
                value("spo2_scale", 2.0),
            ],
        ),
        alarm_only,
        with_alarm,
        event,
        battery,
    ]
}

const REFS: Refs<'static> = Refs {
    patient: Some("Patient/1"),
    device: Some("Device/2"),
};

fn encode(m: &TelemetryMessage) -> Vec<Observation> {
    let mut out = Vec::new();
    observations(m, REFS, &mut out);
    out
}

fn no_patient(_: &str) -> Option<String> {
    None
}

fn close(a: &[TelemetryMessage], b: &[TelemetryMessage]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        let mut y = y.clone();
        for (vx, vy) in x.values.iter().zip(y.values.iter_mut()) {
            assert!((vx.value - vy.value).abs() <= 1e-9 * vx.value.abs().max(1.0));
            vy.value = vx.value;
        }
        assert_eq!(x, &y);
    }
}

#[test]
fn observations_follow_the_vital_signs_profiles() {
    let obs = encode(&messages()[0]);
    assert_eq!(obs.len(), 2, "SpO2 and pulse rate are two Observations");
    let spo2 = serde_json::to_value(&obs[0]).unwrap();
    assert_eq!(spo2["resourceType"], "Observation");
    assert_eq!(spo2["status"], "final");
    assert_eq!(spo2["meta"]["profile"][0], codes::PROFILE_OXYGENSAT);
    assert_eq!(spo2["category"][0]["coding"][0]["code"], "vital-signs");
    let codings: Vec<(&str, &str)> = spo2["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["system"].as_str().unwrap(), c["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codings,
        [(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")]
    );
    assert_eq!(spo2["valueQuantity"]["system"], UCUM);
    assert_eq!(spo2["valueQuantity"]["code"], "%");
    assert_eq!(spo2["effectiveDateTime"], "2026-01-01T08:00:01.500Z");
    assert_eq!(spo2["subject"]["reference"], "Patient/1");
    assert_eq!(spo2["subject"]["identifier"]["system"], SID_PATIENT);
    assert_eq!(spo2["device"]["reference"], "Device/2");
    assert_eq!(spo2["identifier"][0]["system"], SID_OBSERVATION);
    assert_eq!(
        spo2["identifier"][0]["value"],
        "ward-003/pulse_oximeter/1/spo2"
    );
    // resourceType first, as FHIR's JSON examples write it.
    assert!(
        serde_json::to_string(&obs[0])
            .unwrap()
            .starts_with(r#"{"resourceType":"Observation""#)
    );
    // The oximeter's pulse rate is MDC_PULS_OXIM_PULS_RATE, the ECG's heart
    // rate MDC_ECG_HEART_RATE.
    let hr = serde_json::to_value(&obs[1]).unwrap();
    assert_eq!(hr["code"]["coding"][1]["code"], "149530");
    let ecg = serde_json::to_value(&encode(&messages()[1])[0]).unwrap();
    assert_eq!(ecg["code"]["coding"][1]["code"], "147842");
    assert_eq!(ecg["meta"]["profile"][0], codes::PROFILE_HEARTRATE);

    // Blood pressure: one panel, three components, the bp profile.
    let bp = encode(&messages()[2]);
    assert_eq!(bp.len(), 1);
    let bp = serde_json::to_value(&bp[0]).unwrap();
    assert_eq!(bp["meta"]["profile"][0], codes::PROFILE_BP);
    assert_eq!(bp["code"]["coding"][0]["code"], "85354-9");
    let comps: Vec<&str> = bp["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(comps, ["8480-6", "8462-4", "8478-0"]);
    assert_eq!(bp["component"][0]["valueQuantity"]["code"], "mm[Hg]");
    assert!(bp.get("valueQuantity").is_none());
    // A systolic-only reading still meets bp: its diastolic is there
    // with a data absent reason.
    let partial = serde_json::to_value(&encode(&messages()[3])[0]).unwrap();
    assert_eq!(partial["meta"]["profile"][0], codes::PROFILE_BP);
    assert_eq!(
        partial["component"][1]["code"]["coding"][0]["code"],
        "8462-4"
    );
    assert_eq!(
        partial["component"][1]["dataAbsentReason"]["coding"][0]["code"],
        "not-performed"
    );

    // CGM: the CGM IG's code, category and profile.
    let cgm = serde_json::to_value(&encode(&messages()[5])[0]).unwrap();
    assert_eq!(cgm["code"]["coding"][0]["code"], "99504-3");
    assert_eq!(cgm["category"][0]["coding"][0]["code"], "laboratory");
    assert_eq!(cgm["meta"]["profile"][0], codes::PROFILE_CGM_MASS);
    assert_eq!(cgm["valueQuantity"]["code"], "mg/dL");

    // The nurse's ACVPU is coded, the SpO2 scale an integer.
    let nurse = encode(&messages()[8]);
    let acvpu = serde_json::to_value(&nurse[0]).unwrap();
    assert_eq!(acvpu["valueCodeableConcept"]["coding"][0]["code"], "V");
    assert_eq!(serde_json::to_value(&nurse[2]).unwrap()["valueInteger"], 2);

    // An alarm alone: one device-status Observation with the alarm's code.
    let alarm = encode(&messages()[9]);
    assert_eq!(alarm.len(), 1);
    assert_eq!(
        alarm[0].code.code_in(codes::CS_DEVICE_ALARM),
        Some("low_perfusion")
    );
    // lead_off has an MDC event code.
    let lead = encode(&messages()[10]);
    assert_eq!(lead.len(), 3);
    assert_eq!(lead[2].code.code_in(MDC), Some("196876"));
}

#[test]
fn encoding_is_pure() {
    for m in messages() {
        let a = bundle::to_json(&encode(&m));
        let b = bundle::to_json(&encode(&m.clone()));
        assert_eq!(a, b);
    }
}

#[test]
fn observations_read_back_to_the_same_messages() {
    for m in messages() {
        let obs = encode(&m);
        if obs.is_empty() {
            continue;
        }
        // Through JSON, as a server would see them.
        let back: Vec<Observation> = obs
            .iter()
            .map(|o| serde_json::from_slice(&bundle::to_json(o)).unwrap())
            .collect();
        let decoded = telemetry(&back, &no_patient).unwrap();
        close(std::slice::from_ref(&m), &decoded);
    }
    // Many messages in one list (a transaction of N): each comes back on
    // its own, in order.
    let all = messages();
    let obs: Vec<Observation> = all.iter().flat_map(encode).collect();
    close(&all, &telemetry(&obs, &no_patient).unwrap());
}

#[test]
fn foreign_observations_are_read_or_refused_with_the_element() {
    // Another client's heart rate: LOINC only, subject by reference only.
    let foreign: Observation = serde_json::from_value(json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": "Patient/77"},
        "effectiveDateTime": "2026-01-01T08:00:00+01:00",
        "valueQuantity": {"value": 61, "system": UCUM, "code": "/min"}
    }))
    .unwrap();
    let resolve = |r: &str| (r == "Patient/77").then(|| "bed-7".to_owned());
    let m = telemetry(std::slice::from_ref(&foreign), &resolve).unwrap();
    assert_eq!(m[0].patient_id, "bed-7");
    assert_eq!(m[0].values[0].code, "hr");
    assert_eq!(m[0].values[0].value, 61.0);
    // A unit the wire does not use is refused, naming the element.
    let mut wrong = foreign.clone();
    wrong.value_quantity.as_mut().unwrap().code = Some("{beats}/min".into());
    let err = telemetry(&[wrong], &resolve).unwrap_err();
    assert_eq!(err.expression(), Some("Observation.valueQuantity"));
    let mut unknown = foreign.clone();
    unknown.subject.as_mut().unwrap().reference = Some("Patient/78".into());
    assert_eq!(
        telemetry(&[unknown], &resolve).unwrap_err().expression(),
        Some("Observation.subject")
    );
    let mut no_time = foreign;
    no_time.effective_date_time = None;
    assert_eq!(
        telemetry(&[no_time], &resolve).unwrap_err().expression(),
        Some("Observation.effective[x]")
    );
}

#[test]
fn conditional_creates_and_transactions() {
    assert_eq!(
        if_none_exist(SID_PATIENT, "ward 3|a&b"),
        "identifier=https://medtwin.invalid/fhir/sid/patient|ward%203%7Ca%26b"
    );
    assert_eq!(
        parse_identifier_search(&if_none_exist(SID_PATIENT, "ward 3|a&b")),
        Some((Some(SID_PATIENT.to_owned()), "ward 3|a&b".to_owned()))
    );
    assert_eq!(
        parse_key("ward-003/pulse_oximeter/12/spo2"),
        Some(("ward-003/pulse_oximeter".into(), 12))
    );
    let u = uuid_for("x");
    assert_eq!(u, uuid_for("x"));
    assert_ne!(u, uuid_for("y"));
    assert_eq!(&u[14..15], "8", "version 8");
    let obs: Vec<Observation> = messages().iter().take(3).flat_map(encode).collect();
    let tx = transaction(obs.iter().map(create_observation).collect());
    let json = serde_json::to_value(&tx).unwrap();
    assert_eq!(json["type"], "transaction");
    assert_eq!(json["entry"].as_array().unwrap().len(), 5);
    assert_eq!(json["entry"][0]["request"]["method"], "POST");
    assert_eq!(json["entry"][0]["request"]["url"], "Observation");
    assert!(
        json["entry"][0]["request"]["ifNoneExist"]
            .as_str()
            .unwrap()
            .ends_with("|ward-003/pulse_oximeter/1/spo2")
    );
    assert!(
        json["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );

    let response = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created", "location": "Observation/5/_history/1"}},
        {"response": {"status": "200 OK", "location": "Observation/6/_history/1"}}]});
    let body = serde_json::to_vec(&response).unwrap();
    assert_eq!(
        transaction_outcome(&body, 2).unwrap(),
        TransactionOutcome::Done(vec![
            Some("Observation/5/_history/1".into()),
            Some("Observation/6/_history/1".into())
        ])
    );
    assert!(
        transaction_outcome(&body, 3).is_err(),
        "entry count must match"
    );
    let failed = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201"}},
        {"response": {"status": "422 Unprocessable Entity", "outcome":
            serde_json::to_value(outcome("error", "processing", "bad code", None)).unwrap()}}]});
    match transaction_outcome(&serde_json::to_vec(&failed).unwrap(), 2).unwrap() {
        TransactionOutcome::Failed {
            index,
            status,
            issue,
        } => {
            assert_eq!((index, status), (1, 422));
            assert_eq!(issue.unwrap().code, "processing");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_location("http://h/fhir/Patient/12/_history/3"),
        Some(("Patient".into(), "12".into()))
    );
    assert_eq!(
        parse_location("Device/ab-1"),
        Some(("Device".into(), "ab-1".into()))
    );
    assert_eq!(parse_location("nothing"), None);
    let oo = bundle::to_json(&outcome(
        "error",
        "invalid",
        "no subject",
        Some("Observation.subject"),
    ));
    let issue = first_issue(&oo).unwrap();
    assert_eq!(
        (issue.code.as_str(), issue.expression[0].as_str()),
        ("invalid", "Observation.subject")
    );
    assert!(first_issue(b"{\"resourceType\":\"Patient\"}").is_none());
}

fn alert(priority: Priority) -> AlertMessage {
    AlertMessage {
        schema: Some(ALERT_SCHEMA.into()),
        alert_id: Some("a-17".into()),
        patient_id: "ward-003".into(),
        kind: "news2-high".into(),
        priority,
        measurement_time: Some("2026-01-01T08:00:01.500Z".into()),
        score: Some(7),
    }
}

#[test]
fn alerts_round_trip_through_each_resource() {
    for p in [Priority::Low, Priority::Medium, Priority::High] {
        let a = alert(p);
        for resource in [
            serde_json::to_value(detected_issue(&a, Some("Patient/1"))).unwrap(),
            serde_json::to_value(flag(&a, Some("Patient/1"))).unwrap(),
            serde_json::to_value(communication(&a, None, "2026-01-01T08:00:02.000Z")).unwrap(),
        ] {
            assert_eq!(alert_from(resource.clone()).unwrap(), a, "{resource}");
        }
    }
    let di = serde_json::to_value(detected_issue(&alert(Priority::Medium), None)).unwrap();
    assert_eq!(di["severity"], "moderate");
    let f = serde_json::to_value(flag(&alert(Priority::High), None)).unwrap();
    assert_eq!(
        f["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "PH"
    );
    let mut bad = di.clone();
    bad["severity"] = json!("urgent");
    assert!(alert_from(bad).is_err());
    assert!(alert_from(json!({"resourceType": "Patient"})).is_err());
}

fn sub_request() -> SubscriptionRequest {
    SubscriptionRequest {
        topic: codes::TOPIC_ALERT.into(),
        endpoint: "http://127.0.0.1:9/fhir-hook".into(),
        heartbeat_s: 5,
        timeout_s: Some(2),
        headers: vec!["Authorization: Bearer t0ken".into()],
        filter: Some("Flag?patient=ward-003".into()),
        reason: "medtwin alert intake".into(),
    }
}

fn notifications() -> Vec<Notification> {
    let base = Notification {
        kind: NotificationType::Handshake,
        subscription: "http://127.0.0.1:8/fhir/Subscription/s1".into(),
        topic: Some(codes::TOPIC_ALERT.into()),
        status: "active".into(),
        events_since_start: Some(0),
        events: vec![],
    };
    let flag = serde_json::to_value(flag(&alert(Priority::High), Some("Patient/1"))).unwrap();
    vec![
        base.clone(),
        Notification {
            kind: NotificationType::Heartbeat,
            events_since_start: Some(3),
            ..base.clone()
        },
        Notification {
            kind: NotificationType::EventNotification,
            events_since_start: Some(4),
            events: vec![Event {
                number: 4,
                timestamp: "2026-01-01T08:00:02.000Z".into(),
                focus: Some(Focus {
                    full_url: "http://127.0.0.1:8/fhir/Flag/9".into(),
                    resource_type: "Flag".into(),
                    resource: Some(flag),
                }),
            }],
            ..base
        },
    ]
}

#[test]
fn subscriptions_and_notifications_round_trip() {
    let sub = subscription(&sub_request());
    let json = serde_json::to_value(&sub).unwrap();
    assert_eq!(json["criteria"], codes::TOPIC_ALERT);
    assert_eq!(json["channel"]["type"], "rest-hook");
    assert_eq!(json["channel"]["payload"], "application/fhir+json");
    assert_eq!(
        json["channel"]["_payload"]["extension"][0]["valueCode"],
        "full-resource"
    );
    assert_eq!(json["channel"]["extension"][0]["valueUnsignedInt"], 5);
    let back: Subscription = serde_json::from_value(json).unwrap();
    let s = settings(&back).unwrap();
    assert_eq!(
        (s.heartbeat_s, s.content.as_str(), s.endpoint.as_str()),
        (5, "full-resource", "http://127.0.0.1:9/fhir-hook")
    );
    let mut email = back;
    email.channel.kind = "email".into();
    assert!(settings(&email).is_err());

    for n in notifications() {
        let bundle = notification_bundle(&n, "2026-01-01T08:00:03.000Z");
        let body = bundle::to_json(&bundle);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "history");
        assert_eq!(json["entry"][0]["resource"]["resourceType"], "Parameters");
        assert_eq!(parse_notification(&body).unwrap(), n);
    }
    let event = bundle::to_json(&notification_bundle(
        &notifications()[2],
        "2026-01-01T08:00:03Z",
    ));
    let json: Value = serde_json::from_slice(&event).unwrap();
    let params = &json["entry"][0]["resource"]["parameter"];
    let names: Vec<&str> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "subscription",
            "topic",
            "status",
            "type",
            "events-since-subscription-start",
            "notification-event"
        ]
    );
    assert_eq!(params[4]["valueString"], "4");
    assert_eq!(params[5]["part"][0]["name"], "event-number");
}

/// The validator script and the Python that runs it; `None` (skip) when
/// `MEDTWIN_PYTHON` is unset, unless `CI` is set.
fn validator() -> Option<(String, PathBuf)> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/validators/validate_fhir.py");
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

fn validate(python: &str, script: &PathBuf, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// Every kind of resource medtwin emits, by name.
fn every_resource() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for m in messages() {
        for (i, o) in encode(&m).iter().enumerate() {
            out.push((
                format!("observation-{}-{}-{i}", m.device_kind, m.seq),
                serde_json::to_value(o).unwrap(),
            ));
        }
    }
    out.push((
        "patient".into(),
        serde_json::to_value(admin::patient("ward-003")).unwrap(),
    ));
    for model in ["pulse_oximeter", "cgm", "bp_cuff"] {
        out.push((
            format!("device-{model}"),
            serde_json::to_value(admin::device(
                &format!("ward-003/{model}"),
                model,
                "ward-003",
                Some("Patient/1"),
            ))
            .unwrap(),
        ));
    }
    let obs: Vec<Observation> = messages().iter().flat_map(encode).collect();
    out.push((
        "transaction".into(),
        serde_json::to_value(transaction(obs.iter().map(create_observation).collect())).unwrap(),
    ));
    out.push((
        "operation-outcome".into(),
        serde_json::to_value(outcome(
            "error",
            "invalid",
            "no subject",
            Some("Observation.subject"),
        ))
        .unwrap(),
    ));
    let a = alert(Priority::High);
    out.push((
        "detected-issue".into(),
        serde_json::to_value(detected_issue(&a, Some("Patient/1"))).unwrap(),
    ));
    out.push((
        "flag".into(),
        serde_json::to_value(flag(&a, Some("Patient/1"))).unwrap(),
    ));
    out.push((
        "communication".into(),
        serde_json::to_value(communication(&a, Some("Patient/1"), "2026-01-01T08:00:02Z")).unwrap(),
    ));
    out.push((
        "subscription".into(),
        serde_json::to_value(subscription(&sub_request())).unwrap(),
    ));
    for n in notifications() {
        out.push((
            format!("notification-{}", n.kind.code()),
            serde_json::to_value(notification_bundle(&n, "2026-01-01T08:00:03.000Z")).unwrap(),
        ));
    }
    out
}

#[test]
fn every_resource_kind_passes_an_independent_validator() {
    let Some((python, script)) = validator() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = every_resource()
        .into_iter()
        .map(|(name, v)| {
            let path = dir.path().join(format!("{name}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
            path
        })
        .collect();
    let (ok, text) = validate(&python, &script, &files);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("ok: {} resource(s) valid", files.len())),
        "{text}"
    );
}

#[test]
fn the_validator_refuses_what_breaks_a_profile() {
    let Some((python, script)) = validator() else {
        return;
    };
    let good = every_resource();
    let find = |prefix: &str| {
        good.iter()
            .find(|(n, _)| n.starts_with(prefix))
            .unwrap()
            .1
            .clone()
    };
    let spo2 = find("observation-pulse_oximeter");
    let bp = find("observation-bp_cuff");
    let cgm = find("observation-cgm-6");
    let sub = find("subscription");
    let event = find("notification-event-notification");
    let tx = find("transaction");
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = spo2.clone();
    v["code"]["coding"].as_array_mut().unwrap().remove(0);
    cases.push(("oxygensat without 2708-6", v));
    let mut v = spo2.clone();
    v["valueQuantity"]["code"] = json!("percent");
    cases.push(("a non-UCUM unit", v));
    let mut v = spo2.clone();
    v["category"] = json!([]);
    cases.push(("no vital-signs category", v));
    let mut v = spo2.clone();
    v.as_object_mut().unwrap().remove("effectiveDateTime");
    cases.push(("no effective[x]", v));
    let mut v = spo2.clone();
    v.as_object_mut().unwrap().remove("subject");
    cases.push(("no subject", v));
    let mut v = spo2.clone();
    v["status"] = json!("done");
    cases.push(("a status outside its value set", v));
    let mut v = spo2;
    v["valueQuantity"]["value"] = json!("ninety");
    cases.push(("a value that is not a decimal", v));
    let mut v = bp;
    v["component"].as_array_mut().unwrap().remove(1);
    cases.push(("bp without diastolic", v));
    let mut v = cgm;
    v["valueQuantity"]["code"] = json!("mmol/L");
    cases.push(("CGM in mmol/L under the mass profile", v));
    let mut v = sub;
    v["channel"]["extension"][0]["valueUnsignedInt"] = json!("5");
    cases.push(("heartbeat not an unsignedInt", v));
    let mut v = event.clone();
    v["entry"][0]["resource"]["parameter"][4]["valueString"] = json!("four");
    cases.push(("events-since-subscription-start not digits", v));
    let mut v = event;
    v["entry"].as_array_mut().unwrap().truncate(1);
    cases.push(("a focus not in the bundle", v));
    let mut v = tx;
    v["entry"][0]["resource"]["subject"]["reference"] =
        json!("urn:uuid:00000000-0000-8000-8000-000000000000");
    cases.push(("an unresolved urn:uuid", v));
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, v)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let (ok, text) = validate(&python, &script, &[path]);
        assert!(!ok, "the validator accepted {what}: {text}");
    }
}

#[test]
fn a_bundle_of_everything_reads_back_as_bundle() {
    let obs: Vec<Observation> = messages().iter().flat_map(encode).collect();
    let tx = transaction(obs.iter().map(create_observation).collect());
    let body = bundle::to_json(&tx);
    let back: Bundle = bundle::parse(&body, "Bundle").unwrap();
    let obs_back: Vec<Observation> = back
        .entry
        .iter()
        .map(|e| bundle::from_value(e.resource.clone().unwrap(), "Observation").unwrap())
        .collect();
    assert_eq!(obs_back, obs);
    assert!(bundle::parse::<Bundle>(&body, "Patient").is_err());
}

#[test]
fn raw_transactions_equal_typed_ones_and_parse_back() {
    let obs: Vec<Observation> = messages().iter().flat_map(encode).collect();
    let lines: Vec<Vec<u8>> = obs.iter().map(bundle::to_json).collect();
    let raw = bundle::transaction_raw(&lines.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let typed = bundle::to_json(&transaction(obs.iter().map(create_observation).collect()));
    let a: Value = serde_json::from_slice(&raw).unwrap();
    let b: Value = serde_json::from_slice(&typed).unwrap();
    assert_eq!(a, b);
    let (kind, entries) = bundle::parse_transaction(&raw).unwrap();
    assert_eq!(kind, "transaction");
    assert_eq!(entries.len(), obs.len());
    for (e, o) in entries.iter().zip(&obs) {
        assert_eq!(
            (e.method.as_str(), e.resource_type.as_str()),
            ("POST", "Observation")
        );
        assert_eq!(
            &bundle::parse_observation(e.resource.get().as_bytes()).unwrap(),
            o
        );
    }
    assert!(bundle::parse_observation(br#"{"resourceType":"Patient"}"#).is_err());
}

#[test]
fn the_direct_writer_writes_what_the_typed_resources_serialise_to() {
    for m in messages() {
        for refs in [REFS, Refs::default()] {
            let mut typed = Vec::new();
            observations(&m, refs, &mut typed);
            let mut out = Vec::new();
            medtwin_fhir::observation::write_observations(&m, refs, &mut out);
            let lines: Vec<Value> = if out.is_empty() {
                Vec::new()
            } else {
                out.split(|b| *b == b'\n')
                    .map(|l| serde_json::from_slice(l).unwrap())
                    .collect()
            };
            let expected: Vec<Value> = typed
                .iter()
                .map(|o| serde_json::to_value(o).unwrap())
                .collect();
            assert_eq!(lines, expected, "{m:?}");
            // Same bytes, field order included.
            let joined: Vec<u8> = typed
                .iter()
                .map(bundle::to_json)
                .collect::<Vec<_>>()
                .join(&b'\n');
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(joined).unwrap()
            );
        }
    }
}

#[test]
fn counts_written_as_integers_are_read_too() {
    let n = &notifications()[2];
    let mut json: Value =
        serde_json::to_value(notification_bundle(n, "2026-01-01T08:00:03Z")).unwrap();
    let params = &mut json["entry"][0]["resource"]["parameter"];
    params[4] = json!({"name": "events-since-subscription-start", "valueInteger": 4});
    params[5]["part"][0] = json!({"name": "event-number", "valueUnsignedInt": 4});
    let back = parse_notification(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(back.events_since_start, Some(4));
    assert_eq!(back.events[0].number, 4);
    params_bad(&mut json);
    assert!(parse_notification(&serde_json::to_vec(&json).unwrap()).is_err());
}

fn params_bad(json: &mut Value) {
    json["entry"][0]["resource"]["parameter"][5]["part"][0] =
        json!({"name": "event-number", "valueString": "four"});
}
