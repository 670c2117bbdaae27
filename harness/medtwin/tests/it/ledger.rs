//! A backend medtwin has never seen, written from its docs alone, that
//! keeps a ledger of what it did: it evaluates `hr > 110 for 60s` on the
//! telemetry it accepts (re-armed after 2 min, as the scenario's
//! expectation says), and answers each onset its own way: at once while
//! still handling the request, after answering, after a delay in data
//! time, not at all, twice, for the wrong patient, for a patient that does
//! not exist, or again long after the rule stopped; and it alerts a
//! healthy patient for nothing. The checker's counts must equal the
//! ledger's exactly, in virtual and in accelerated time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use medtwin_wire::{AlertMessage, Priority, TelemetryMessage};
use quickcheck::{Gen, QuickCheck, TestResult};
use serde_json::Value;

use crate::common::{root, text};

/// Two paroxysms of AF on six of eight patients: twelve onsets of
/// `hr > 110 for 60s`, two healthy patients.
const SCENARIO: &str = r#"
# Ledger backend fixture: AF twice on bay[0..6], bay-006 and bay-007 healthy;
# every onset of `hr > 110 for 60s` owes an `hr-high` alert within 3 min.
name = "ledger"
duration = "30m"
seed = 3
start = "2026-01-01T00:00:00Z"
[[cohort]]
name = "bay"
count = 8
devices = [{ kind = "pulse_oximeter", every = "1s" }]
[[event]]
at = "1m"
who = "bay[0..6]"
condition = "atrial_fibrillation"
ramp = "30s"
duration = "6m"
rate_bpm = 160                     # well clear of 110: one onset each
[[event]]
at = "15m"
who = "bay[0..6]"
condition = "atrial_fibrillation"
ramp = "30s"
duration = "6m"
rate_bpm = 160                     # well clear of 110: one onset each
[alerts]
kinds = ["hr-high"]
grace = "1s"
[[expect]]
name = "hr above 110 for a minute pages"
rule = "hr > 110 for 60s"
alert = "hr-high"
within = "3m"
rearm = "2m"
max_false_alerts = 1000
"#;

const HOLD_MS: u64 = 60_000;
const REARM_MS: u64 = 120_000;
const WITHIN_MS: u64 = 180_000;
const TOKEN: &str = "ledger-token";

/// How the backend answers one onset.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// At once, before answering the telemetry request that completed it.
    Sync,
    /// Right after answering that request.
    Afterwards,
    /// When it first sees data this much later (data time).
    Delay(u64),
    /// Never.
    Drop,
    /// At once, twice.
    Twice,
    /// At once, naming another (healthy) patient.
    WrongPatient(&'static str),
    /// At once, naming a patient that does not exist.
    Ghost,
    /// At once, and again well after the rule stopped holding.
    StaleRepeat,
}

/// What the backend did, counted as the checker should count it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ledger {
    obligations: u64,
    hits: u64,
    late: u64,
    missed: u64,
    false_alerts: u64,
    duplicates: u64,
    unknown: u64,
}

/// One patient's evaluation of `hr > 110 for 60s`, as medtwin's docs
/// define it: latest value by measurement time, a hold restarts when the
/// condition breaks, an onset needs the rule off for `rearm` before.
#[derive(Default)]
struct Patient {
    hold_start: Option<u64>,
    holding: bool,
    last_true: Option<u64>,
    onsets: u32,
    /// Alerts waiting for data time to pass: (at data ms, patient named, repeat?).
    pending: Vec<(u64, String)>,
    /// The latest onset's answer still to finish (stale repeat).
    stale_after: Option<u64>,
}

/// How the backend answers each (patient, onset number).
type Plan = dyn Fn(&str, u32) -> Answer + Send + Sync;

struct Backend {
    plan: Box<Plan>,
    /// A healthy patient to alert once, for nothing, at this data time.
    spurious: Mutex<Option<(String, u64)>>,
    patients: Mutex<HashMap<String, Patient>>,
    ledger: Mutex<Ledger>,
    webhook: String,
    client: reqwest::Client,
    start: SystemTime,
}

impl Backend {
    fn data_ms(&self, m: &TelemetryMessage) -> Option<u64> {
        let t = medtwin_wire::parse_time(&m.measured_at)?;
        Some(t.duration_since(self.start).ok()?.as_millis() as u64)
    }

    async fn alert(&self, patient: &str) {
        let alert = AlertMessage {
            schema: None,
            alert_id: None,
            patient_id: patient.to_owned(),
            kind: "hr-high".into(),
            priority: Priority::High,
            measurement_time: None,
            score: None,
        };
        let sent = self
            .client
            .post(&self.webhook)
            .bearer_auth(TOKEN)
            .json(&alert)
            .send()
            .await;
        assert!(
            sent.is_ok_and(|r| r.status() == StatusCode::ACCEPTED),
            "the webhook took the alert"
        );
    }

    fn count(&self, f: impl FnOnce(&mut Ledger)) {
        f(&mut self.ledger.lock().unwrap());
    }

    /// Evaluates one message; returns the alerts to send now (patient
    /// named) and those to send after answering.
    fn observe(&self, m: &TelemetryMessage) -> (Vec<String>, Vec<String>) {
        let (mut now, mut after) = (Vec::new(), Vec::new());
        let Some(t) = self.data_ms(m) else {
            return (now, after);
        };
        let hr = m.values.iter().find(|v| v.code == "hr").map(|v| v.value);
        let mut patients = self.patients.lock().unwrap();
        let p = patients.entry(m.patient_id.clone()).or_default();
        // Alerts whose data time has come.
        let due: Vec<String> = p
            .pending
            .iter()
            .filter(|(at, _)| *at <= t)
            .map(|(_, who)| who.clone())
            .collect();
        p.pending.retain(|(at, _)| *at > t);
        now.extend(due);
        let mut spurious = self.spurious.lock().unwrap();
        if spurious
            .as_ref()
            .is_some_and(|(who, at)| *who == m.patient_id && t >= *at)
        {
            *spurious = None;
            now.push(m.patient_id.clone());
            self.count(|l| l.false_alerts += 1);
        }
        drop(spurious);
        let cond = hr.is_some_and(|v| v > 110.0);
        let start = if cond {
            *p.hold_start.get_or_insert(t)
        } else {
            p.hold_start = None;
            u64::MAX
        };
        let holding = cond && t >= start.saturating_add(HOLD_MS);
        let was = std::mem::replace(&mut p.holding, holding);
        if holding {
            let rearmed = !was && p.last_true.is_none_or(|last| t - last >= REARM_MS);
            p.last_true = Some(t);
            if rearmed {
                p.onsets += 1;
                let answer = (self.plan)(&m.patient_id, p.onsets);
                self.answer(p, &m.patient_id, t, answer, &mut now, &mut after);
            }
        } else if let Some(at) = p.stale_after
            && p.last_true
                .is_some_and(|last| t >= last + REARM_MS + 60_000)
            && t >= at
        {
            p.stale_after = None;
            now.push(m.patient_id.clone());
        }
        (now, after)
    }

    fn answer(
        &self,
        p: &mut Patient,
        who: &str,
        t: u64,
        answer: Answer,
        now: &mut Vec<String>,
        after: &mut Vec<String>,
    ) {
        self.count(|l| l.obligations += 1);
        match answer {
            Answer::Sync => {
                now.push(who.into());
                self.count(|l| l.hits += 1);
            }
            Answer::Afterwards => {
                after.push(who.into());
                self.count(|l| l.hits += 1);
            }
            Answer::Delay(ms) => {
                p.pending.push((t + ms, who.into()));
                // Latency is the delay plus at most a second of data and
                // a virtual-time window: the plans keep clear of the edge.
                self.count(|l| {
                    if ms <= WITHIN_MS - 10_000 {
                        l.hits += 1
                    } else {
                        l.late += 1
                    }
                });
            }
            Answer::Drop => self.count(|l| l.missed += 1),
            Answer::Twice => {
                now.push(who.into());
                now.push(who.into());
                self.count(|l| {
                    l.hits += 1;
                    l.duplicates += 1
                });
            }
            Answer::WrongPatient(other) => {
                now.push(other.into());
                self.count(|l| {
                    l.missed += 1;
                    l.false_alerts += 1
                });
            }
            Answer::Ghost => {
                now.push(format!("ghost-{who}"));
                self.count(|l| {
                    l.missed += 1;
                    l.unknown += 1
                });
            }
            Answer::StaleRepeat => {
                now.push(who.into());
                p.stale_after = Some(t);
                self.count(|l| {
                    l.hits += 1;
                    l.false_alerts += 1
                });
            }
        }
    }
}

async fn ingest(State(b): State<Arc<Backend>>, body: axum::body::Bytes) -> StatusCode {
    let Ok(m) = serde_json::from_slice::<TelemetryMessage>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let (now, after) = b.observe(&m);
    // Alerting while still handling the request that triggered it.
    for who in now {
        b.alert(&who).await;
    }
    if !after.is_empty() {
        let b = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            for who in after {
                b.alert(&who).await;
            }
        });
    }
    StatusCode::OK
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs medtwin against a ledger backend answering by `plan`; returns the
/// ledger and the expectation's result from report.json.
fn run(
    plan: impl Fn(&str, u32) -> Answer + Send + Sync + 'static,
    spurious: Option<(&str, u64)>,
    clock: &[&str],
) -> (Ledger, Value, Value) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let alerts_port = free_port();
    let backend = Arc::new(Backend {
        plan: Box::new(plan),
        spurious: Mutex::new(spurious.map(|(who, at)| (who.to_owned(), at))),
        patients: Mutex::default(),
        ledger: Mutex::default(),
        webhook: format!("http://127.0.0.1:{alerts_port}/alerts"),
        client: {
            medtwin_tls::install_default_provider();
            reqwest::Client::new()
        },
        start: medtwin_wire::parse_time("2026-01-01T00:00:00Z").unwrap(),
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .unwrap();
    let target = format!("http://{}/ingest", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/ingest", post(ingest))
        .with_state(backend.clone());
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ledger.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.path().join("out");
    let alerts_listen = format!("127.0.0.1:{alerts_port}");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &target,
        "--alerts-listen",
        &alerts_listen,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(clock);
    let done = std::process::Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(&args)
        .env("MEDTWIN_ALERT_TOKEN", TOKEN)
        .current_dir(root())
        .output()
        .unwrap();
    let json = std::fs::read_to_string(out.join("report.json"))
        .unwrap_or_else(|_| panic!("no report: {}{}", text(&done.stdout), text(&done.stderr)));
    let report: Value = serde_json::from_str(&json).unwrap();
    let ledger = backend.ledger.lock().unwrap().clone();
    drop(rt);
    (ledger, report["expectations"][0].clone(), report)
}

/// The checker's counts, as a ledger.
fn counted(e: &Value) -> Ledger {
    let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}"));
    Ledger {
        obligations: n("obligations"),
        hits: n("hits"),
        late: n("late"),
        missed: n("missed"),
        false_alerts: n("false_alerts"),
        duplicates: n("duplicates"),
        unknown: n("unknown_patients"),
    }
}

/// Every fault on its own patient: bay-000 answers properly (once in the
/// request, once after it), bay-001 drops its first, bay-002 names bay-007
/// for its first, bay-003 is late first then alerts twice, bay-004 repeats
/// long after its first and names a ghost for its second, bay-005 answers a
/// minute late (still in time); bay-006 gets an alert for nothing.
fn every_fault(patient: &str, onset: u32) -> Answer {
    match (patient, onset) {
        ("bay-000", 1) => Answer::Sync,
        ("bay-000", _) => Answer::Afterwards,
        ("bay-001", 1) => Answer::Drop,
        ("bay-002", 1) => Answer::WrongPatient("bay-007"),
        ("bay-003", 1) => Answer::Delay(5 * 60_000),
        ("bay-003", _) => Answer::Twice,
        ("bay-004", 1) => Answer::StaleRepeat,
        ("bay-004", _) => Answer::Ghost,
        ("bay-005", 1) => Answer::Delay(60_000),
        _ => Answer::Sync,
    }
}

fn check_every_fault(clock: &[&str]) -> Value {
    let (ledger, e, report) = run(every_fault, Some(("bay-006", 4 * 60_000)), clock);
    assert_eq!(ledger.obligations, 12, "the fixture's twelve onsets");
    assert_eq!(counted(&e), ledger, "{e}");
    // Each fault shows: 8 hits, 1 late, 3 missed, 3 false, 1 duplicate,
    // 1 unknown patient (the ledger says the same, by construction).
    assert_eq!(
        (
            ledger.hits,
            ledger.late,
            ledger.missed,
            ledger.false_alerts,
            ledger.duplicates,
            ledger.unknown
        ),
        (8, 1, 3, 3, 1, 1),
        "{ledger:?}"
    );
    assert_eq!(report["alerts"]["unknown_patients"], 1);
    assert_eq!(report["verdict"], "fail");
    // No hit is placed before the data that caused it.
    for o in e["outcomes"].as_array().unwrap() {
        if let (Some(alert), Some(due)) = (o["alert_ms"].as_u64(), o["delivered_ms"].as_u64())
            && o["outcome"] == "hit"
        {
            assert!(alert >= due, "{o}");
        }
    }
    report
}

#[test]
fn ledger_no_faults_virtual() {
    let (ledger, e, report) = run(|_, _| Answer::Sync, None, &["--clock", "virtual"]);
    assert_eq!(counted(&e), ledger, "{e}");
    assert_eq!((ledger.hits, ledger.obligations), (12, 12));
    assert_eq!(report["verdict"], "pass", "{report}");
}

#[test]
fn ledger_every_fault_virtual() {
    check_every_fault(&["--clock", "virtual"]);
}

#[test]
fn ledger_every_fault_accelerated() {
    // Timed: the alerts sent inside the request, after answering and after
    // a delay in data time are all placed after their data.
    let report = check_every_fault(&["--speed", "180"]);
    assert_eq!(report["harness"]["reliable"], true, "{}", report["harness"]);
}

#[test]
fn ledger_alert_timings_quickcheck() {
    // Random data-time delays per onset, clear of the deadline's edge:
    // in time (≤ 2m30s) is a hit, past 3m20s late.
    fn prop(delays: Vec<u16>) -> TestResult {
        if delays.is_empty() {
            return TestResult::discard();
        }
        let delays: Vec<u64> = delays
            .iter()
            .map(|d| {
                let s = u64::from(*d % 250);
                if s <= 150 {
                    s * 1_000
                } else {
                    (s + 50) * 1_000
                }
            })
            .collect();
        let plan = move |patient: &str, onset: u32| {
            let i = patient
                .trim_start_matches("bay-")
                .parse::<usize>()
                .unwrap_or(0)
                * 2
                + onset as usize;
            Answer::Delay(delays[i % delays.len()])
        };
        let (ledger, e, _) = run(plan, None, &["--clock", "virtual"]);
        TestResult::from_bool(counted(&e) == ledger)
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(12, 0x6c65_6467_6572))
        .tests(3)
        .quickcheck(prop as fn(Vec<u16>) -> TestResult);
}
