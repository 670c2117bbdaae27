//! Failing targets, abusive clients and signals (the Robust issue): the
//! `medtwin` binary against a chaos target on loopback that answers 500,
//! 503 or 429 with `Retry-After`, 400, resets, cuts its answer, answers
//! garbage, answers after 5 s, hangs, is not there, or mixes them. Each run
//! must end within its bound, count every message by cause
//! (`sent = accepted + refused + failed + not_sent`, and the twin's
//! `generated = delivered + lost + buffered`), stay under a memory bound
//! and exit with the documented code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{report, root, text};

const FIXTURE: &str = "fixtures/scenarios/chaos.toml";
/// No chaos run may take longer (the healthy run takes ~4 s of schedule
/// plus the alert grace; a generous bound for a busy 2-core machine).
const WALL_BOUND: Duration = Duration::from_secs(60);
/// Peak RSS bound for a 4-patient run, whatever the target does.
const RSS_BOUND: u64 = 400 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Status500,
    Status503RetryAfter,
    Status429RetryAfter,
    Status400,
    Reset,
    CutBody,
    Garbage,
    Slow5s,
    Hang,
    Mixed,
}

/// Serves `mode` on a loopback port until the test's runtime ends; returns
/// the URL and a count of requests seen.
async fn chaos(mode: Mode) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, mode, Arc::clone(&counter)));
        }
    });
    (format!("http://{addr}/v1/measurements"), seen)
}

/// Reads one request (headers and a Content-Length body); false at EOF.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return true;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn answer(status: &str, extra: &str) -> Vec<u8> {
    let body = "{\"error\":\"chaos\"}";
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn connection(mut stream: TcpStream, mode: Mode, seen: Arc<AtomicU64>) {
    while read_request(&mut stream).await {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        let mode = if mode == Mode::Mixed {
            // Mostly accepted, with every failure now and then.
            match n % 10 {
                1 => Mode::Status500,
                3 => Mode::Status429RetryAfter,
                5 => Mode::Reset,
                7 => Mode::CutBody,
                9 => Mode::Status400,
                _ => {
                    let ok = answer("202 Accepted", "");
                    if stream.write_all(&ok).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        } else {
            mode
        };
        let reply = match mode {
            Mode::Status500 => answer("500 Internal Server Error", ""),
            Mode::Status503RetryAfter => answer("503 Service Unavailable", "retry-after: 1\r\n"),
            Mode::Status429RetryAfter => answer("429 Too Many Requests", "retry-after: 1\r\n"),
            Mode::Status400 => answer("400 Bad Request", ""),
            Mode::Reset => {
                // A zero linger does not block on drop: it sends a reset.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return; // dropped with linger 0: a reset
            }
            Mode::CutBody => {
                let cut = b"HTTP/1.1 202 Accepted\r\ncontent-length: 100\r\n\r\n{\"accep";
                let _ = stream.write_all(cut).await;
                return;
            }
            Mode::Garbage => {
                let _ = stream.write_all(b"garbage, not HTTP at all\r\n\r\n").await;
                return;
            }
            Mode::Slow5s => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                answer("202 Accepted", "")
            }
            Mode::Hang => {
                // Hold the connection, say nothing, until the client leaves.
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Mode::Mixed => unreachable!("resolved above"),
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// What one run against the chaos target did.
struct Ran {
    code: Option<i32>,
    wall: Duration,
    report: Value,
    stdout: String,
}

fn run_against(url: &str, out: &Path) -> Ran {
    let started = Instant::now();
    let done = Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(["run", FIXTURE, "--quiet", "--target", url, "--out"])
        .arg(out)
        .current_dir(root())
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .env_remove("MEDTWIN_TARGET_TOKEN")
        .output()
        .unwrap();
    Ran {
        code: done.status.code(),
        wall: started.elapsed(),
        report: report(out),
        stdout: text(&done.stdout) + &text(&done.stderr),
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The invariants every chaos run must keep; returns the transport counts.
fn check_invariants(ran: &Ran, what: &str) -> Value {
    let r = &ran.report;
    assert!(
        ran.wall < WALL_BOUND,
        "{what}: took {:?}\n{}",
        ran.wall,
        ran.stdout
    );
    let t = r["transport"].clone();
    let (sent, accepted, refused, failed, not_sent) = (
        n(&t["sent"]),
        n(&t["accepted"]),
        n(&t["refused"]),
        n(&t["failed"]),
        n(&t["not_sent"]),
    );
    assert!(sent > 0, "{what}: {t}");
    assert_eq!(
        sent,
        accepted + refused + failed + not_sent,
        "{what}: sent = accepted + refused + failed + not_sent\n{t}"
    );
    let by_cause: u64 = t["by_cause"].as_object().unwrap().values().map(n).sum();
    assert_eq!(
        by_cause,
        refused + failed + not_sent,
        "{what}: every message not accepted has a cause\n{t}"
    );
    let a = &r["accounting"];
    assert_eq!(
        n(&a["generated"]),
        n(&a["delivered"]) + n(&a["lost"]) + n(&a["buffered"]),
        "{what}: generated = delivered + lost + buffered\n{a}"
    );
    assert_eq!(
        sent,
        n(&a["delivered"]) + n(&a["duplicates"]),
        "{what}: every delivery was handed to the transport\n{a}\n{t}"
    );
    let rss = n(&r["harness"]["peak_rss_bytes"]);
    assert!(rss > 0 && rss < RSS_BOUND, "{what}: peak RSS {rss}");
    for sample in t["samples"].as_array().unwrap() {
        let s = sample.as_str().unwrap();
        assert!(
            !s.ends_with("error sending request for url"),
            "{what}: a sample must name its cause: {s}"
        );
    }
    t
}

/// Each failing mode ends in bound, with its cause counted and exit 4.
#[test]
fn every_failing_target_ends_in_bound_counted_by_cause() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cases = [
        (Mode::Status500, "http_500"),
        (Mode::Status503RetryAfter, "http_503"),
        (Mode::Status429RetryAfter, "http_429"),
        (Mode::Status400, "http_400"),
        (Mode::Reset, "reset"),
        (Mode::CutBody, "malformed_answer"),
        (Mode::Garbage, "malformed_answer"),
        (Mode::Slow5s, "timeout"),
        (Mode::Hang, "timeout"),
    ];
    for (mode, cause) in cases {
        let (url, seen) = rt.block_on(chaos(mode));
        let out = tempfile::tempdir().unwrap();
        let ran = run_against(&url, out.path());
        let what = format!("{mode:?}");
        let t = check_invariants(&ran, &what);
        assert_eq!(ran.code, Some(4), "{what}: exit code\n{}", ran.stdout);
        assert!(n(&t["by_cause"][cause]) > 0, "{what}: no {cause}\n{t}");
        assert_eq!(n(&t["accepted"]), 0, "{what}: {t}");
        assert!(seen.load(Ordering::Relaxed) > 0, "{what}: never reached");
        if matches!(mode, Mode::Status503RetryAfter | Mode::Status429RetryAfter) {
            assert!(n(&t["retry_after_waits"]) > 0, "{what}: Retry-After\n{t}");
        }
        if cause != "http_400" && cause != "http_429" {
            // The target is down (no answer, or 5xx): the breaker opens and
            // most messages are never sent.
            assert!(n(&t["breaker_opened"]) >= 1, "{what}: breaker\n{t}");
            assert!(n(&t["by_cause"]["target_down"]) > 0, "{what}: {t}");
        }
        let verdict = ran.report["verdict"].as_str().unwrap();
        let expected = if cause.starts_with("http_") {
            "target_refused_data"
        } else {
            "target_unreachable"
        };
        assert_eq!(verdict, expected, "{what}");
    }
}

/// A closed port: connection refused, the breaker opens, the run ends.
#[test]
fn a_closed_port_ends_the_run_promptly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tempfile::tempdir().unwrap();
    let ran = run_against(
        &format!("http://127.0.0.1:{port}/v1/measurements"),
        out.path(),
    );
    let t = check_invariants(&ran, "closed port");
    assert_eq!(ran.code, Some(4), "{}", ran.stdout);
    assert!(n(&t["by_cause"]["connection_refused"]) > 0, "{t}");
    assert!(n(&t["by_cause"]["target_down"]) > 0, "{t}");
    assert_eq!(ran.report["verdict"], "target_unreachable");
    assert!(
        t["samples"][0]
            .as_str()
            .unwrap()
            .starts_with("connection_refused: "),
        "{t}"
    );
}

/// A target that fails one request in two: everything is counted, the run
/// ends, and with half the data refused it cannot pass.
#[test]
fn a_mixed_target_is_counted_cause_by_cause() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, _) = rt.block_on(chaos(Mode::Mixed));
    let out = tempfile::tempdir().unwrap();
    let ran = run_against(&url, out.path());
    let t = check_invariants(&ran, "mixed");
    assert_eq!(ran.code, Some(4), "{}", ran.stdout);
    assert!(n(&t["accepted"]) > 0, "{t}");
    for cause in [
        "http_400",
        "http_429",
        "http_500",
        "reset",
        "malformed_answer",
    ] {
        assert!(n(&t["by_cause"][cause]) > 0, "mixed: no {cause}\n{t}");
    }
    assert!(n(&t["retries"]) > 0, "{t}");
}

/// SIGINT in the middle of a run: a valid report marked interrupted, exit
/// 130, everything counted so far.
#[test]
fn sigint_mid_run_leaves_a_report_marked_interrupted() {
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(["run", "fixtures/scenarios/fault-knobs.toml", "--out"])
        .arg(out.path())
        .current_dir(root())
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let interrupted = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let done = child.wait_with_output().unwrap();
    // Drain (2 s) plus the backend's and webhook's deadlines, with room.
    assert!(
        interrupted.elapsed() < Duration::from_secs(15),
        "{:?}",
        interrupted.elapsed()
    );
    assert_eq!(done.status.code(), Some(130), "{}", text(&done.stderr));
    let r = report(out.path());
    crate::common::assert_valid(&r);
    assert_eq!(r["verdict"], "interrupted");
    assert_eq!(r["interrupted"]["reason"], "sigint");
    let at = n(&r["interrupted"]["at_sim_ms"]);
    assert!(at > 0 && at < 90 * 60_000, "{}", r["interrupted"]);
    let t = &r["transport"];
    assert_eq!(
        n(&t["sent"]),
        n(&t["accepted"]) + n(&t["refused"]) + n(&t["failed"]) + n(&t["not_sent"]),
        "{t}"
    );
    assert!(text(&done.stderr).contains("SIGINT received"));
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("run completed") && junit.contains("interrupted (sigint)"));
}

/// Clients that open connections and send half a header, during a run,
/// do not delay its end by more than the shutdown deadline.
#[test]
fn slow_header_clients_do_not_hold_a_run_open() {
    let alone = {
        let out = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let done = crate::common::medtwin(&[
            "run",
            "fixtures/scenarios/small-sepsis.toml",
            "--clock",
            "virtual",
            "--quiet",
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert!(done.status.code().is_some());
        started.elapsed()
    };
    let out = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args([
            "run",
            "fixtures/scenarios/small-sepsis.toml",
            "--clock",
            "virtual",
            "--quiet",
            "--alerts-listen",
            &listen,
            "--out",
        ])
        .arg(out.path())
        .current_dir(root())
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut slow = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.len() < 50 && Instant::now() < deadline {
        match std::net::TcpStream::connect(&listen) {
            Ok(mut s) => {
                use std::io::Write as _;
                let _ = s.write_all(b"POST /alerts HTTP/1.1\r\nHost: x\r\n");
                slow.push(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert!(!slow.is_empty(), "the webhook never listened");
    let done = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(done.status.code().is_some());
    // The shutdown deadline is 2 s; allow scheduling noise.
    assert!(
        took < alone + Duration::from_secs(6),
        "alone {alone:?}, with slow clients {took:?}"
    );
    let r = report(out.path());
    let refused = &r["alerts"]["refused"];
    assert!(
        n(&refused["header_timeout"]) + n(&refused["dropped_at_shutdown"]) > 0,
        "{refused}"
    );
    drop(slow);
}

/// A scenario too big for the machine is refused before it starts, naming
/// the estimate and the limit.
#[test]
fn an_oversize_scenario_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.toml");
    let text_of = std::fs::read_to_string(root().join("fixtures/scenarios/small-sepsis.toml"))
        .unwrap()
        .replacen("count = 6", "count = 10000000", 1);
    assert!(text_of.contains("count = 10000000"), "fixture changed");
    std::fs::write(&file, text_of).unwrap();
    let started = Instant::now();
    let done = crate::common::medtwin(&[
        "run",
        file.to_str().unwrap(),
        "--max-memory",
        "2G",
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done.status.code(), Some(2), "{}", text(&done.stderr));
    let err = text(&done.stderr);
    assert!(
        err.contains("too big to run")
            && err.contains("10000000 patients")
            && err.contains("--max-memory"),
        "{err}"
    );
    let validate = crate::common::medtwin(&["validate", file.to_str().unwrap()]);
    assert!(
        text(&validate.stdout).contains("memory ~") || text(&validate.stderr).contains("too big")
    );
}

/// A large cohort that fits runs within its memory estimate (+25 %): the
/// estimate `validate` prints and `run` checks is one a user can plan by.
#[test]
fn a_large_cohort_stays_within_its_memory_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.toml");
    let scenario = r#"
name = "large-cohort"
seed = 11
duration = "3m"
step = "1s"

[clock]
mode = "virtual"

[[cohort]]
name = "ward"
count = 4000
network = "hospital_wifi"
devices = [
  { kind = "pulse_oximeter", every = "10s" },
  { kind = "resp_monitor", every = "1m" },
  { kind = "bp_cuff", every = "15m" },
  { kind = "thermometer", every = "5m" },
]

[[event]]
at = "1m"
who = "ward"
pick = 10
condition = "sepsis"

[[expect]]
name = "sepsis raises news2-medium"
episode = "sepsis"
alert = "news2-medium"
within = "2h"
"#;
    std::fs::write(&file, scenario).unwrap();
    let out = dir.path().join("out");
    let done = crate::common::medtwin(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(done.status.code().is_some(), "{}", text(&done.stderr));
    let r = report(&out);
    let h = &r["harness"];
    let (estimate, peak) = (n(&h["memory_estimate_bytes"]), n(&h["peak_rss_bytes"]));
    println!(
        "4000 patients, 16000 devices: peak RSS {} MiB, estimate {} MiB",
        peak >> 20,
        estimate >> 20
    );
    assert!(
        peak as f64 <= estimate as f64 * 1.25,
        "peak {peak} over the estimate {estimate} by more than 25 %"
    );
    assert!(n(&r["transport"]["sent"]) > 50_000, "{}", r["transport"]);
}
