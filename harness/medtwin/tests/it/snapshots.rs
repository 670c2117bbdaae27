//! Snapshots: the quickstart report (times and ids redacted) and the
//! `validate` messages for every broken scenario in `fixtures/invalid/`.

use std::path::{Path, PathBuf};

use crate::common::root;
use medtwin::scenario::{self, Clock};

/// Every file in `fixtures/invalid/` must be refused, with these messages.
#[test]
fn validate_messages_for_broken_scenarios() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    let mut all = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = Path::new("fixtures/invalid").join(file.file_name().unwrap());
        match scenario::parse(&shown, &text) {
            Ok(_) => panic!("{} should be invalid", shown.display()),
            Err(diagnostics) => {
                for d in &diagnostics.0 {
                    assert!(d.line > 0 && d.column > 0, "{d}");
                }
                all.push_str(&diagnostics.to_string());
                all.push_str("\n\n");
            }
        }
    }
    insta::assert_snapshot!("validate_invalid_fixtures", all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_report() {
    let path = Path::new("scenarios/quickstart.toml");
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut s = scenario::parse(path, &text).unwrap();
    // Virtual time: the same checks as the accelerated quickstart, in seconds.
    s.clock = Clock::Virtual;
    let report = medtwin::run::execute(&s).await.unwrap();
    insta::assert_json_snapshot!("quickstart_report", report, {
        ".run_id" => "[run-id]",
        ".clock.epoch" => "[wall-time]",
        ".clock.start" => "[wall-time]",
        ".timing.wall_ms" => "[wall-ms]",
        ".timing.twin_busy_ms" => "[wall-ms]",
        ".timing.twin_patient_steps_per_s" => "[rate]",
        ".target.url" => "[url]",
        ".alerts.webhook" => "[url]",
        ".alerts.intakes[].address" => "[url]",
        ".harness.cpu_s" => "[cpu]",
        ".harness.cpu_cores_used" => "[cpu]",
        ".harness.peak_rss_bytes" => "[rss]",
        ".harness.build" => "[build]",
        ".expectations[].latency_ms.*" => "[latency]",
        ".expectations[].outcomes[].alert_ms" => "[arrival]",
        ".expectations[].outcomes[].latency_ms" => "[latency]",
        ".expectations[].outcomes[].decomposition.backend_ms" => "[latency]",
        ".metrics.by_kind.*.latency_ms.*" => "[latency]",
        ".metrics.overall.latency_ms.*" => "[latency]",
        ".timelines[].alert_ms" => "[arrival]",
        ".timelines[].alerts[].at_ms" => "[arrival]",
        ".backend.alerts_retried" => "[count]",
        // On a loaded machine a request can time out after the backend took
        // it; the retry then delivers it twice. Counted, but not fixed.
        ".transport.retries" => "[count]",
        ".backend.accepted" => "[count]",
    });
}
