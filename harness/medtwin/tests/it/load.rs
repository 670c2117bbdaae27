//! `medtwin load` and `medtwin merge` end to end: the binary against the
//! embedded backend or a slow loopback target, its exit codes, its report
//! and interval log, and several processes merged. Tests whose figures
//! depend on the wall clock are named `load_wall_*` (the `wall-clock` test
//! group in .config/nextest.toml runs them alone).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{check_schema, medtwin, report, root, text};

/// An HTTP/1.1 target on loopback that answers every request 200 after
/// `delay`, one request at a time per connection; it stops accepting
/// after `life`.
fn slow_target(delay: Duration, life: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let end = Instant::now() + life;
        while Instant::now() < end {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    std::thread::spawn(move || serve(stream, delay));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    format!("http://{addr}/v1/measurements")
}

fn serve(stream: std::net::TcpStream, delay: Duration) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        std::thread::sleep(delay);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn windows(r: &Value) -> &Vec<Value> {
    r["windows"].as_array().expect("windows")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn load_wall_open_model_counts_drops_and_measures_from_the_schedule() {
    let target = slow_target(Duration::from_millis(20), Duration::from_secs(60));
    let out = tempfile::tempdir().unwrap();
    let run = medtwin(&[
        "load",
        "fixtures/load/slow-target.toml",
        "--target",
        &target,
        "--speed",
        "2",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(5), "{stdout}{}", text(&run.stderr));
    let r = report(out.path());
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/load-report.schema.json")).unwrap(),
    )
    .unwrap();
    check_schema(&schema, &schema, &r, "report").unwrap();
    let t = &r["totals"];
    // Every scheduled message has exactly one fate.
    assert_eq!(u(&t["scheduled"]), u(&t["sent"]) + u(&t["dropped"]));
    assert_eq!(
        u(&t["sent"]),
        u(&t["accepted"]) + u(&t["refused"]) + u(&t["failed"])
    );
    // ~1600 due at 200/s; two 20-ms connections take ~100/s.
    assert!(u(&t["scheduled"]) > 1_400, "{t}");
    assert!(
        u(&t["dropped"]) > u(&t["scheduled"]) / 4,
        "the generator could not send about half on time: {t}"
    );
    let causes = &t["causes"];
    let cause = |c: &str| causes[c].as_u64().unwrap_or(0);
    assert!(
        cause("dropped_late") > 0,
        "waited past max_late in a queue: {t}"
    );
    assert_eq!(
        cause("dropped_queue_full") + cause("dropped_late"),
        u(&t["dropped"]),
        "{t}"
    );
    // Latency counts from the scheduled time: queueing shows in it, well
    // past the target's 20 ms.
    assert!(
        r["ingest_ms"]["p99"].as_f64().unwrap() > 100.0,
        "{}",
        r["ingest_ms"]
    );
    let w = windows(&r);
    let first = w.first().unwrap()["ingest_ms"]["p50"].as_f64().unwrap();
    let later = w[w.len() / 2]["ingest_ms"]["p50"].as_f64().unwrap();
    assert!(
        later > 1.5 * first,
        "latency grows as the queues fill: {first} then {later}"
    );
    let errors = &r["thresholds"][0];
    assert_eq!(errors["threshold"], "errors < 0.1%");
    assert_eq!(errors["passed"], false);
    assert_eq!(r["thresholds"][1]["passed"], true, "ingest.p99 < 10s holds");
    assert_eq!(r["passed"], false);
    assert!(
        stdout.contains("threshold `errors < 0.1%`: FAILED"),
        "{stdout}"
    );
    // The interval log is the crate's format, one entry per window and tag.
    let log = std::fs::read_to_string(out.path().join("latency.hlog")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("Tag=lateness,0.000,2.000,")),
        "{log}"
    );
    assert_eq!(log.matches("Tag=ingest,").count(), w.len());
    assert!(
        std::fs::read_to_string(out.path().join("index.html"))
            .unwrap()
            .contains("<svg")
    );
}

#[test]
fn load_wall_abort_on_fail_stops_early_with_the_report_marked() {
    let target = slow_target(Duration::from_millis(20), Duration::from_secs(60));
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = medtwin(&[
        "load",
        "fixtures/load/abort.toml",
        "--target",
        &target,
        "--speed",
        "2",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(5), "{}", text(&run.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "stopped before its 30 s of wall time"
    );
    let r = report(out.path());
    assert!(
        r["aborted"].as_str().unwrap().contains("threshold failed"),
        "{}",
        r["aborted"]
    );
    let th = &r["thresholds"][0];
    assert_eq!(th["passed"], false);
    assert!(u(&th["failing_windows"]) >= 1);
    assert_eq!(th["failing_windows_s"][0], 0.0);
}

#[test]
fn load_wall_stage_profile_shows_in_the_windows() {
    let out = tempfile::tempdir().unwrap();
    let run = medtwin(&[
        "load",
        "fixtures/load/ramp.toml",
        "--speed",
        "10",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let r = report(out.path());
    let counts: Vec<u64> = windows(&r)
        .iter()
        .map(|w| u(&w["counts"]["scheduled"]))
        .collect();
    // Six 5-s windows, and the samples taken at the end instant (30 s).
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert_eq!(counts[6], 100, "every device once at 30 s: {counts:?}");
    // Ramp 0 → 100 % over 20 s: the mean share of each 5-s window is
    // 12.5, 37.5, 62.5, 87.5 % of 500 messages; then 100 % for 10 s.
    for (i, expected) in [62.0, 187.0, 312.0, 437.0, 500.0, 500.0].iter().enumerate() {
        let got = counts[i] as f64;
        assert!(
            (got - expected).abs() < 0.25 * expected.max(100.0),
            "window {i}: {got} messages, expected about {expected}: {counts:?}"
        );
    }
    assert!(counts.windows(2).take(4).all(|p| p[0] < p[1]), "{counts:?}");
    assert_eq!(r["stages"][0]["kind"], "ramp");
    assert_eq!(u(&r["totals"]["dropped"]), 0);
}

#[test]
fn load_malformed_section_is_an_input_error_with_positions() {
    let run = medtwin(&["load", "fixtures/load/invalid/section.toml", "--quiet"]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    for expected in [
        "fixtures/load/invalid/section.toml:14:9: error in `load.queue`",
        "fixtures/load/invalid/section.toml:15:15: error in `load.thresholds[0]`: unknown statistic `p42`",
        "fixtures/load/invalid/section.toml:18:8: error in `load.stage[0].kind`: unknown stage kind \"surge\"",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    let validate = medtwin(&["validate", "fixtures/load/invalid/section.toml"]);
    assert_eq!(validate.status.code(), Some(2));
}

fn spawn_load(scenario: &str, out: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_medtwin"))
        .args(["load", scenario, "--speed", "10", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn load_wall_four_shards_merge_into_the_unsharded_counts() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let scenario = "fixtures/load/shards.toml";
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let start = start.to_string();
    // One twin thread for the whole fleet, three for the same fleet, and
    // two in each of four shards: the slices' union is always the fleet.
    let threaded = dir.path().join("threaded");
    let mut children = vec![
        spawn_load(scenario, &whole, &["--generators", "1"]),
        spawn_load(scenario, &threaded, &["--generators", "3"]),
    ];
    let mut shard_dirs = Vec::new();
    for k in 0..4 {
        let d = dir.path().join(format!("shard-{k}"));
        let shard = format!("{k}/4");
        children.push(spawn_load(
            scenario,
            &d,
            &["--shard", &shard, "--start-at", &start, "--generators", "2"],
        ));
        shard_dirs.push(d);
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["merge".to_string()];
    args.extend(shard_dirs.iter().map(|d| d.to_str().unwrap().to_owned()));
    args.extend(["--out".into(), merged.to_str().unwrap().into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = medtwin(&args);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));

    let (w, m) = (report(&whole), report(&merged));
    assert_eq!(m["shards_merged"], 4);
    assert_eq!(m["devices"], w["devices"]);
    assert_eq!(m["totals"]["scheduled"], w["totals"]["scheduled"]);
    // Fates depend on the target's timing; on a quiet machine none fails.
    let clean = |r: &Value| u(&r["totals"]["accepted"]) == u(&r["totals"]["scheduled"]);
    if clean(&w) && clean(&m) {
        assert_eq!(m["totals"]["accepted"], w["totals"]["accepted"]);
    }
    assert_eq!(
        u(&m["totals"]["sent"]) + u(&m["totals"]["dropped"]),
        u(&m["totals"]["scheduled"])
    );
    let per_window = |r: &Value| -> Vec<(u64, u64)> {
        windows(r)
            .iter()
            .map(|x| (u(&x["index"]), u(&x["counts"]["scheduled"])))
            .collect()
    };
    assert_eq!(per_window(&m), per_window(&w), "scheduled per window");
    let t = report(&threaded);
    assert_eq!(
        (t["generators"].clone(), w["generators"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(m["generators"], 8, "two in each of four shards");
    assert_eq!(t["devices"], w["devices"]);
    assert_eq!(
        per_window(&t),
        per_window(&w),
        "scheduled per window, 3 twins"
    );
    // The histograms hold every message once: totals count for count.
    assert_eq!(m["ingest_ms"]["count"], m["totals"]["accepted"]);
    assert_eq!(w["ingest_ms"]["count"], w["totals"]["accepted"]);
    assert_eq!(
        m["generator"]["lateness_ms"]["count"],
        w["totals"]["scheduled"]
    );
    let shard_sum: u64 = shard_dirs
        .iter()
        .map(|d| u(&report(d)["totals"]["scheduled"]))
        .sum();
    assert_eq!(shard_sum, u(&w["totals"]["scheduled"]));
    // The storm: nothing due inside it, its messages due at its end.
    let storm_window = windows(&w).iter().find(|x| u(&x["index"]) == 4);
    assert!(storm_window.is_none(), "nothing is due during the storm");
    assert_eq!(m["thresholds"].as_array().unwrap().len(), 2);

    // A missing shard is an input error.
    let partial = medtwin(&[
        "merge",
        shard_dirs[0].to_str().unwrap(),
        shard_dirs[1].to_str().unwrap(),
        "--out",
        dir.path().join("partial").to_str().unwrap(),
    ]);
    assert_eq!(partial.status.code(), Some(2));
    assert!(
        text(&partial.stderr).contains("do not make a whole fleet"),
        "{}",
        text(&partial.stderr)
    );
}

/// Every YAML document under `deploy/kubernetes/`, parsed.
fn manifests() -> Vec<(String, serde_norway::Value)> {
    let dir = root().join("deploy/kubernetes");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: serde_norway::Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn deploy_kubernetes_manifests_are_an_indexed_job_and_its_merge() {
    let all = manifests();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["load-job.yaml", "merge-job.yaml", "results-pvc.yaml"]
    );
    let get = |name: &str| &all.iter().find(|(n, _)| n == name).unwrap().1;
    let load = get("load-job.yaml");
    assert_eq!(load["kind"].as_str(), Some("Job"));
    let spec = &load["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(spec["completions"], spec["parallelism"]);
    let container = &spec["template"]["spec"]["containers"][0];
    let script = container["args"][0].as_str().unwrap();
    assert!(
        script.contains("--shard \"${JOB_COMPLETION_INDEX}/${SHARDS}\""),
        "{script}"
    );
    assert!(script.contains("--start-at \"$START_AT\""), "{script}");
    let shards = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("SHARDS"))
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(
        Some(shards),
        spec["completions"].as_u64(),
        "SHARDS = completions"
    );
    let merge = get("merge-job.yaml");
    let args = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(args.contains("medtwin merge /results/shard-*"), "{args}");
    // Both Jobs and the claim name the same volume.
    let claim = |job: &serde_norway::Value| {
        job["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find_map(|v| {
                v["persistentVolumeClaim"]["claimName"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap()
    };
    assert_eq!(claim(load), claim(merge));
    assert_eq!(
        get("results-pvc.yaml")["metadata"]["name"].as_str(),
        Some(claim(load).as_str())
    );
}

#[test]
fn load_wall_compare_finds_a_threshold_and_error_regression() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy");
    let slow = dir.path().join("slow");
    let fast = medtwin(&[
        "load",
        "fixtures/load/slow-target.toml",
        "--speed",
        "4",
        "--quiet",
        "--out",
        healthy.to_str().unwrap(),
    ]);
    assert_eq!(fast.status.code(), Some(0), "{}", text(&fast.stderr));
    let target = slow_target(Duration::from_millis(20), Duration::from_secs(60));
    let bad = medtwin(&[
        "load",
        "fixtures/load/slow-target.toml",
        "--target",
        &target,
        "--speed",
        "4",
        "--quiet",
        "--out",
        slow.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(5), "{}", text(&bad.stderr));
    let same = medtwin(&[
        "compare",
        healthy.to_str().unwrap(),
        healthy.to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));
    let worse = medtwin(&["compare", healthy.to_str().unwrap(), slow.to_str().unwrap()]);
    let stdout = text(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("REGRESSION: errors grew"), "{stdout}");
    assert!(
        stdout.contains("REGRESSION: threshold `errors < 0.1%` held, now fails"),
        "{stdout}"
    );
}

/// Over MQTT to Debian's mosquitto at QoS 1: every message acknowledged,
/// and a subscriber (mosquitto_sub) gets each one on its device's topic;
/// without a target, through the embedded broker to the embedded backend;
/// a broker that is not there fails every message by its cause (exit 4).
#[test]
fn load_wall_mqtt_publishes_every_message_to_mosquitto_at_qos_1() {
    let Some(broker) = crate::interop_mqtt::Mosquitto::start_or_skip() else {
        return;
    };
    let scenario = "fixtures/load/mqtt.toml";
    let port = broker.addr().rsplit(':').next().unwrap().to_owned();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-v",
            "-t",
            "load/#",
        ])
        .args(["-C", "400", "-W", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (Debian's mosquitto-clients; scripts/test.sh installs it)");
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mosquitto");
    let target = format!("mqtt://{}", broker.addr());
    let run = spawn_load(scenario, &out, &["--target", &target, "--connections", "3"]);
    let run = run.wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let r = report(&out);
    assert_eq!(r["target"], target.as_str());
    let t = &r["totals"];
    assert_eq!(u(&t["scheduled"]), 400, "{t}");
    assert_eq!(
        t["accepted"], t["scheduled"],
        "every publish acknowledged: {t}"
    );
    assert_eq!(r["ingest_ms"]["count"], t["accepted"]);
    assert_eq!(r["connections"], 3);

    let got = sub.wait_with_output().unwrap();
    let lines = text(&got.stdout);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 400, "{}", text(&got.stderr));
    let mut seqs = std::collections::BTreeSet::new();
    for line in &lines {
        let (topic, payload) = line.split_once(' ').unwrap();
        let m: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(m["schema"], "medtwin.telemetry.v1");
        assert_eq!(
            topic,
            format!("load/{}/pulse_oximeter", m["patient_id"].as_str().unwrap()),
            "the device's own topic"
        );
        assert!(
            seqs.insert((topic.to_owned(), u(&m["seq"]))),
            "{line} twice"
        );
    }
    assert_eq!(
        seqs.iter()
            .filter(|(t, _)| t == "load/ward-000/pulse_oximeter")
            .count(),
        20
    );

    // No target: the embedded broker, the reference backend subscribed.
    let out = dir.path().join("embedded");
    let run = spawn_load(scenario, &out, &[]).wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let r = report(&out);
    assert!(
        r["target"]
            .as_str()
            .unwrap()
            .starts_with("mqtt://127.0.0.1:"),
        "{}",
        r["target"]
    );
    assert_eq!(r["totals"]["accepted"], 400, "{}", r["totals"]);

    // Nobody listening: every message failed, by cause; nothing accepted.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = dir.path().join("closed");
    let target = format!("mqtt://{closed}");
    let run = spawn_load(scenario, &out, &["--target", &target])
        .wait_with_output()
        .unwrap();
    assert_eq!(run.status.code(), Some(4), "{}", text(&run.stderr));
    let t = &report(&out)["totals"];
    assert_eq!(t["accepted"], 0, "{t}");
    assert_eq!(u(&t["failed"]) + u(&t["dropped"]), 400, "{t}");
    assert!(
        t["causes"]
            .as_object()
            .unwrap()
            .keys()
            .any(|c| c.starts_with("not_connected")),
        "{t}"
    );
}

/// Alert latency under load: the embedded backend's NEWS2 alerts come back
/// to the load run's webhook, each timed from its triggering measurement;
/// `alert.p99` is a threshold like any other, and a backend that holds
/// its alerts (the `delay_alerts` fault, 10 simulated minutes = 1 s at
/// x600) fails it with exit 5.
#[test]
fn load_wall_alert_latency_is_measured_from_the_triggering_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "fixtures/load/alerts.toml";
    let out = dir.path().join("healthy");
    let run = medtwin(&[
        "load",
        scenario,
        "--speed",
        "600",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("alerts webhook: http://127.0.0.1:"));
    let r = report(&out);
    let a = &r["alerts"];
    assert!(u(&a["received"]) >= 2, "both septic patients alert: {a}");
    assert_eq!(
        a["untimed"], 0,
        "the reference backend sends measurement_time"
    );
    assert_eq!(r["alert_ms"]["count"], a["received"], "{}", r["alert_ms"]);
    let p99 = r["alert_ms"]["p99"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 < 5_000.0, "{}", r["alert_ms"]);
    let per_window: u64 = windows(&r).iter().map(|w| u(&w["counts"]["alerts"])).sum();
    assert_eq!(per_window, u(&a["received"]), "every alert in a window");
    assert!(stdout.contains("alerts: "), "{stdout}");

    // The same backend holding every alert 10 simulated minutes.
    let held = dir.path().join("held.toml");
    let mut text_ = std::fs::read_to_string(root().join(scenario)).unwrap();
    text_ = text_.replace("\"alert.p99 < 5s\"", "\"alert.p99 < 500ms\"");
    text_.push_str("\n[backend]\ndelay_alerts = \"10m\"\n");
    std::fs::write(&held, text_).unwrap();
    let out = dir.path().join("held");
    let run = medtwin(&[
        "load",
        held.to_str().unwrap(),
        "--speed",
        "600",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(5), "{}", text(&run.stdout));
    let r = report(&out);
    let p50 = r["alert_ms"]["p50"].as_f64().unwrap();
    assert!(
        p50 >= 990.0,
        "held a second of wall time: {}",
        r["alert_ms"]
    );
    let failed = r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["threshold"] == "alert.p99 < 500ms")
        .unwrap();
    assert_eq!(failed["passed"], false, "{failed}");
}

/// The scenario's scheduled faults are in the report and shaded in the
/// HTML charts; an outage without a gateway loses what falls in it, so
/// fewer messages are due while it lasts.
#[test]
fn load_wall_scheduled_faults_are_in_the_report_and_shaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outage.toml");
    let mut scenario = std::fs::read_to_string(root().join("fixtures/load/ramp.toml")).unwrap();
    scenario = scenario.replace("initial_devices_pct = 0", "initial_devices_pct = 100");
    scenario.push_str(
        "\n[[fault]]\nat = \"10s\"\nwho = \"ward[0..50]\"\nkind = \"network_outage\"\nduration = \"5s\"\n",
    );
    std::fs::write(&file, scenario).unwrap();
    let out = dir.path().join("out");
    let run = medtwin(&[
        "load",
        file.to_str().unwrap(),
        "--speed",
        "10",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let r = report(&out);
    assert_eq!(r["faults"][0]["kind"], "network_outage", "{}", r["faults"]);
    assert_eq!(r["faults"][0]["start_s"], 10.0);
    assert_eq!(r["faults"][0]["end_s"], 15.0);
    let due = |i: u64| {
        windows(&r)
            .iter()
            .find(|w| u(&w["index"]) == i)
            .map_or(0, |w| u(&w["counts"]["scheduled"]))
    };
    assert!(
        due(2) < due(1),
        "half the ward offline in 10-15 s: {} vs {}",
        due(2),
        due(1)
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains(r#"class="fault""#), "a shaded fault window");
    assert!(html.contains("fault network_outage 10–15 s"));
}
