//! `medtwin serve` as an educator and trainees use it: the real binary
//! serving a ward on loopback, driven over HTTP (the live feed, resuming
//! it, the instructor's token, commands reaching the twin's truth, an
//! alarm acknowledged and in the after-action report) and, in the
//! `chromium` tests, in a real headless Chromium through WebDriver.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{root, text};

const TOKEN: &str = "instructor-token-for-tests";

/// A running `medtwin serve`; killed when dropped (it also stops by
/// itself: `--max-wall`).
pub struct Served {
    child: Child,
    /// The central station's URL, ending in `/`.
    pub url: String,
    /// Where the after-action report goes.
    pub out: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `scenario` at `speed` on a free loopback port.
pub fn serve(scenario: &str, extra: &[&str]) -> Served {
    let out = tempfile::tempdir().expect("a temporary folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args([
            "serve",
            scenario,
            "--listen",
            "127.0.0.1:0",
            "--max-wall",
            "3m",
        ])
        .args(["--out", out.path().to_str().expect("UTF-8 path")])
        .args(extra)
        .current_dir(root())
        .env("MEDTWIN_INSTRUCTOR_TOKEN", TOKEN)
        .env_remove("MEDTWIN_ALERT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("medtwin serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("medtwin serve ended before serving:\n{seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.strip_prefix("central station: ") {
            break url.trim().to_owned();
        }
    };
    assert!(
        seen.contains("instructor token: from MEDTWIN_INSTRUCTOR_TOKEN") && !seen.contains(TOKEN),
        "the token's source is named, the token itself not printed:\n{seen}"
    );
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, url, out }
}

impl Served {
    /// Waits for the process to end by itself; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The report folder.
    pub fn report_dir(&self) -> &Path {
        self.out.path()
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Sse {
    /// `id:`.
    pub id: u64,
    /// `event:`.
    pub name: String,
    /// `data:`, parsed.
    pub data: Value,
}

/// An open SSE stream, read event by event.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens `url`, resuming after `last_id` when given.
    pub async fn open(url: &str, last_id: Option<u64>) -> SseReader {
        let mut request = client().get(url);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.expect("the feed answers");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a Server-Sent Events stream"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or `None` at the
    /// stream's end or after `limit`.
    pub async fn next(&mut self, limit: Duration) -> Option<Sse> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(Sse {
                    id: id.unwrap_or(0),
                    name,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                });
            }
            let chunk = tokio::time::timeout_at(until, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Reads until `pick` returns something, or `limit` passes.
    pub async fn until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&Sse) -> Option<T>,
    ) -> Option<T> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            let event = self.next(left).await?;
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    }
}

/// An HTTP client (the TLS provider installed, as reqwest needs).
pub fn client() -> reqwest::Client {
    medtwin_tls::install_default_provider();
    reqwest::Client::new()
}

async fn post(url: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut request = client().post(url).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn serve_streams_resumes_refuses_strangers_and_takes_commands_into_the_truth() {
    let mut served = serve("scenarios/training/sepsis-ward.toml", &["--speed", "30"]);
    let base = served.url.clone();

    // The pages come from the binary.
    let page = client()
        .get(&base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Central station") && page.contains("/assets/central.js"));
    let js = client()
        .get(format!("{base}assets/bedside.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-type"], "text/javascript");

    // The live feed: numbered ticks carrying every bed.
    let mut feed = SseReader::open(&format!("{base}api/events"), None).await;
    let mut ticks = Vec::new();
    while ticks.len() < 4 {
        let e = feed
            .next(Duration::from_secs(10))
            .await
            .expect("ticks keep coming");
        if e.name == "tick" {
            ticks.push(e);
        }
    }
    for pair in ticks.windows(2) {
        assert!(
            pair[1].id > pair[0].id,
            "ids increase: {} then {}",
            pair[0].id,
            pair[1].id
        );
        assert!(
            pair[1].data["t"].as_u64() >= pair[0].data["t"].as_u64(),
            "time moves on"
        );
    }
    assert_eq!(
        ticks[0].data["beds"].as_array().map(Vec::len),
        Some(8),
        "{:?}",
        ticks[0].data
    );
    drop(feed);

    // Several browsers see the same ward: the same events, the same ids.
    let mut one = SseReader::open(&format!("{base}api/events"), Some(ticks[3].id)).await;
    let mut two = SseReader::open(&format!("{base}api/events"), Some(ticks[3].id)).await;
    for _ in 0..3 {
        let (a, b) = (
            one.next(Duration::from_secs(5)).await.expect("browser one"),
            two.next(Duration::from_secs(5)).await.expect("browser two"),
        );
        assert_eq!((a.id, &a.name, &a.data), (b.id, &b.name, &b.data));
    }
    drop((one, two));

    // A dropped connection resumes where it left off.
    let resume_after = ticks[1].id;
    let mut resumed = SseReader::open(&format!("{base}api/events"), Some(resume_after)).await;
    let first = resumed
        .next(Duration::from_secs(5))
        .await
        .expect("the replay");
    assert_eq!(
        first.id,
        resume_after + 1,
        "resumed right after the last event seen"
    );
    let second = resumed
        .next(Duration::from_secs(5))
        .await
        .expect("then live");
    assert_eq!(second.id, resume_after + 2);

    // Strangers are refused and counted.
    let command = json!({"type": "condition", "patient": "ward-002",
        "condition": "opioid_respiratory_depression", "severity": 1.0, "ramp": "1m"});
    let (status, body) = post(
        &format!("{base}api/instructor/command"),
        command.clone(),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(
        &format!("{base}api/instructor/command"),
        command.clone(),
        Some("guess"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &format!("{base}api/instructor/clock"),
        json!({"action": "pause"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let stats = get(&format!("{base}api/stats")).await;
    assert_eq!(stats["counters"]["unauthorized"], 3, "{stats}");
    assert_eq!(
        stats["counters"]["commands_queued"], 0,
        "nothing reached the twin: {stats}"
    );
    // A trainee may give interventions, not start conditions.
    let (status, _) = post(&format!("{base}api/act"), command.clone(), None).await;
    assert_eq!(status, 403);
    // A bad command names its field.
    let (status, body) = post(
        &format!("{base}api/instructor/command"),
        json!({"type": "condition", "patient": "ward-002", "condition": "flu"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown condition \"flu\""),
        "{body}"
    );

    // The instructor's command goes through the twin's queue into its truth.
    let mut live = SseReader::open(&format!("{base}api/events"), None).await;
    let (status, body) = post(
        &format!("{base}api/instructor/command"),
        command,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let queued_at = body["queued_at_ms"]
        .as_u64()
        .expect("queued at a simulated time");
    let applied = live
        .until(Duration::from_secs(20), |e| {
            (e.name == "log"
                && e.data["what"] == "command"
                && e.data["patient"] == "ward-002"
                && e.data["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("opioid_respiratory_depression"))
            .then(|| e.data.clone())
        })
        .await
        .expect("the twin applied the command and recorded it");
    assert!(applied["t"].as_u64() >= Some(queued_at), "{applied}");

    // The patient deteriorates through the physiology; the embedded
    // backend alarms; a trainee acknowledges.
    let alarm = live
        .until(Duration::from_secs(60), |e| {
            (e.name == "alarm" && e.data["patient"] == "ward-002" && e.data["technical"] == false)
                .then(|| e.data.clone())
        })
        .await
        .expect("the backend raised an alarm for ward-002");
    let id = alarm["id"].as_u64().unwrap();
    let (status, body) = post(
        &format!("{base}api/alarms/{id}/ack"),
        json!({"by": "nurse-a"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &format!("{base}api/alarms/{id}/ack"),
        json!({"by": "nurse-b"}),
        None,
    )
    .await;
    assert_eq!(status, 409, "acknowledged once");
    let (status, body) = post(
        &format!("{base}api/act"),
        json!({"type": "intervention", "patient": "ward-002", "intervention": "naloxone",
               "params": {"dose_mg": 0.4}, "by": "nurse-a"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    live.until(Duration::from_secs(20), |e| {
        (e.name == "log" && e.data["what"] == "intervention" && e.data["actor"] == "nurse-a")
            .then_some(())
    })
    .await
    .expect("the naloxone was given, credited to the trainee");

    // Pause holds simulated time; resume lets it run on.
    let (status, _) = post(
        &format!("{base}api/instructor/clock"),
        json!({"action": "pause"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let mut clock = SseReader::open(&format!("{base}api/events"), None).await;
    let paused = clock
        .until(Duration::from_secs(5), |e| {
            (e.name == "tick" && e.data["clock"]["paused"] == true).then(|| e.data["t"].clone())
        })
        .await
        .expect("a paused tick");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = get(&format!("{base}api/ward")).await;
    assert_eq!(still["t"], paused, "no simulated time passes while paused");
    let (status, _) = post(
        &format!("{base}api/instructor/clock"),
        json!({"action": "resume"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let resumed = clock
        .until(Duration::from_secs(10), |e| {
            (e.name == "tick" && e.data["t"].as_u64() > paused.as_u64()).then_some(())
        })
        .await;
    assert!(resumed.is_some(), "time runs again after resume");
    let (status, _) = post(
        &format!("{base}api/instructor/clock"),
        json!({"action": "speed", "speed": 0}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400, "a speed of 0 is refused");

    // Cues: what the instructor did comes back as a cue file.
    let cues = client()
        .get(format!("{base}api/instructor/cues"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cues.contains("[[cue]]") && cues.contains("opioid_respiratory_depression"),
        "{cues}"
    );

    // Ending the session writes the after-action report.
    let (status, _) = post(&format!("{base}api/instructor/end"), json!({}), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        served.wait_exit(Duration::from_secs(20)),
        Some(0),
        "serve exits 0 when ended"
    );
    let html = std::fs::read_to_string(served.report_dir().join("after-action.html"))
        .expect("after-action.html");
    assert!(
        html.contains("nurse-a") && html.contains(alarm["kind"].as_str().unwrap()),
        "the ack is in the report"
    );
    let session: Value = serde_json::from_str(
        &std::fs::read_to_string(served.report_dir().join("training.json")).expect("training.json"),
    )
    .unwrap();
    let acked = session["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .expect("the alarm is in training.json");
    assert_eq!(acked["acked_by"], "nurse-a");
    assert!(acked["acked_ms"].as_u64() >= acked["raised_ms"].as_u64());
    let due = session["dues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["patient"] == "ward-002" && d["condition"] == "opioid_respiratory_depression")
        .expect("what the opioid depression called for");
    assert_eq!(due["given_by"], "nurse-a", "{due}");
    assert_eq!(due["outcome"], "met", "{due}");
}

#[test]
fn serve_refuses_a_bad_cue_file_and_a_token_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cues: PathBuf = dir.path().join("cues.toml");
    std::fs::write(&cues, "[[cue]]\nat = \"1m\"\ntype = \"condition\"\npatient = \"ward-001\"\ncondition = \"sepsis\"\nseverity = 7\n").unwrap();
    let out = crate::common::medtwin(&[
        "serve",
        "scenarios/training/sepsis-ward.toml",
        "--cues",
        cues.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("cues.toml") && err.contains("cue 1") && err.contains("severity"),
        "{err}"
    );
    let out = crate::common::medtwin(&[
        "serve",
        "scenarios/training/sepsis-ward.toml",
        "--instructor-token",
        "hunter2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "the secret is not echoed"
    );
}

#[tokio::test]
async fn serve_drops_a_reader_that_falls_behind_and_counts_it() {
    // Eight beds of 500 Hz waveforms at x60: ~480 blocks (3.6 MB) a
    // second, far more than loopback buffers hold while nobody reads.
    let served = serve("scenarios/training/sepsis-ward.toml", &["--speed", "60"]);
    let base = served.url.clone();
    let mut slow = SseReader::open(&format!("{base}api/waves"), None).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let told = slow
        .until(Duration::from_secs(30), |e| {
            (e.name == "lagged").then_some(())
        })
        .await;
    assert!(told.is_some(), "a reader a ring behind is told it lagged");
    assert!(
        slow.next(Duration::from_secs(2)).await.is_none(),
        "and its stream ends (the browser reconnects)"
    );
    let stats = get(&format!("{base}api/stats")).await;
    assert!(
        stats["waves"]["lagged"].as_u64() >= Some(1),
        "counted: {stats}"
    );
    // The server is still serving everyone else.
    let mut fresh = SseReader::open(&format!("{base}api/waves?bed=3"), None).await;
    let block = fresh
        .next(Duration::from_secs(10))
        .await
        .expect("live again");
    assert_eq!(block.data["bed"], 3, "filtered to the bed asked for");
    assert_eq!(block.data["rate"], 500);
    let ecg = &block.data["ch"][0];
    assert_eq!(ecg[0], "ecg_ii");
    assert_eq!(
        ecg[1].as_array().map(Vec::len),
        Some(500),
        "one second at 500 Hz"
    );
}
