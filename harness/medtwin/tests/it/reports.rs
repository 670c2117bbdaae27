//! Reports as a QA engineer uses them: junit.xml and report.json snapshots,
//! `medtwin report` re-rendering, `medtwin compare` as a regression gate,
//! suites of scenarios and seeds, and index.html in a real headless
//! Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{check_schema, medtwin, root, run_passing, text};
use medtwin_check::duration;
use serde_json::Value;

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

const FIXTURE: &str = "fixtures/scenarios/fault-knobs.toml";

/// A failing run with no alert at all (every alert dropped): its outcomes
/// do not depend on timing, so its reports snapshot exactly.
fn dropped_run(dir: &Path) {
    let run = medtwin(&[
        "run",
        FIXTURE,
        "--clock",
        "virtual",
        "--drop-alerts-pct",
        "100",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
}

/// Replaces the value of every `attr="..."` with `[redacted]`.
fn redact_attr(xml: &str, attr: &str) -> String {
    let needle = format!("{attr}=\"");
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&needle) {
        out.push_str(&rest[..i + needle.len()]);
        rest = &rest[i + needle.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("[redacted]");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn junit_and_report_json_of_a_failing_run() {
    let out = tempfile::tempdir().unwrap();
    dropped_run(out.path());
    let xml = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    let run_id = report(out.path())["run_id"].as_str().unwrap().to_owned();
    let xml = redact_attr(&xml, "time").replace(&run_id, "[run-id]");
    // One test case for the target's uptake, one per expectation, each
    // expectation failing with its reasons.
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(xml.matches("<failure ").count(), 2);
    insta::assert_snapshot!("junit_dropped_alerts", xml);
    insta::assert_json_snapshot!("report_dropped_alerts", report(out.path()), {
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
        ".backend.alerts_retried" => "[count]",
        // A request timed out on a loaded machine is retried (and may
        // arrive twice): counted, not fixed.
        ".transport.retries" => "[count]",
        ".backend.accepted" => "[count]",
        ".timelines[].series" => "[series: drawn in index.html, see the chromium test]",
    });
}

#[test]
fn report_command_re_renders_from_report_json() {
    let out = tempfile::tempdir().unwrap();
    dropped_run(out.path());
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    let xml = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    std::fs::remove_file(out.path().join("index.html")).unwrap();
    std::fs::remove_file(out.path().join("junit.xml")).unwrap();
    let run = medtwin(&["report", out.path().join("report.json").to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(
        std::fs::read_to_string(out.path().join("index.html")).unwrap(),
        html
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("junit.xml")).unwrap(),
        xml
    );
    // Not a report: an input error.
    let bad = out.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"other\"}").unwrap();
    assert_eq!(
        medtwin(&["report", bad.to_str().unwrap()]).status.code(),
        Some(2)
    );
}

#[test]
fn compare_shows_changes_and_gates_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    dropped_run(&a);
    // A: both obligations hit; B: latencies 50 % worse, one hit fewer, three
    // false alerts (the report's counts; compare recomputes the rates).
    let mut base = report(&a);
    let e = &mut base["expectations"][0];
    e["latency_ms"] = serde_json::json!({"p50": 1000, "p95": 2000, "p99": 2000, "max": 2000});
    e["hits"] = serde_json::json!(2);
    e["missed"] = serde_json::json!(0);
    let mut r = base.clone();
    let e = &mut r["expectations"][0];
    e["latency_ms"] = serde_json::json!({"p50": 1500, "p95": 3000, "p99": 3000, "max": 3000});
    e["hits"] = serde_json::json!(1);
    e["missed"] = serde_json::json!(1);
    e["false_alerts"] = serde_json::json!(3);
    std::fs::write(a.join("report.json"), base.to_string()).unwrap();
    let b = dir.path().join("b.json");
    std::fs::write(&b, r.to_string()).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let same = medtwin(&["compare", a, a]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));
    assert!(text(&same.stdout).contains("no regression"));

    // By default: any worsening of correctness, latency past 10 % (virtual
    // clock: the threshold alone).
    let worse = medtwin(&["compare", a, b]);
    let stdout = text(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{stdout}");
    for regression in [
        "sepsis raises news2-medium: latency p95 2.0s → 3.0s (+50.0%, limit 10.0%; virtual clock)",
        "sepsis raises news2-medium: missed 0 → 1 (limit +0)",
        "sepsis raises news2-medium: sensitivity 1.000 → 0.500",
        "sepsis raises news2-medium: ppv 1.000 → 0.250",
        "sepsis raises news2-medium: false/patient-day 0.000 → 8.000",
    ] {
        assert!(
            stdout.contains(&format!("REGRESSION: {regression}")),
            "{regression}: {stdout}"
        );
    }
    assert!(stdout.contains("latency p50"), "{stdout}");

    // Each flag loosens its own metric.
    let loose = [
        ("--max-latency-regression", "60%"),
        ("--max-missed-increase", "1"),
        ("--max-sensitivity-drop", "0.5"),
        ("--max-ppv-drop", "0.75"),
        ("--max-false-rate-increase", "8"),
    ];
    // `medtwin compare A B` with the loose flags, `tighter` replacing one of
    // them (or added) and `without` left out.
    let with = |tighter: (&str, &str), without: &str| {
        let mut args = vec!["compare", a, b];
        for (flag, value) in loose.iter().filter(|(f, _)| *f != without) {
            args.extend([
                *flag,
                if *flag == tighter.0 {
                    tighter.1
                } else {
                    *value
                },
            ]);
        }
        if !loose.iter().any(|(f, _)| *f == tighter.0) {
            args.extend([tighter.0, tighter.1]);
        }
        medtwin(&args)
    };
    let loosened = with(("--max-latency-regression", "60%"), "");
    assert_eq!(
        loosened.status.code(),
        Some(0),
        "{}",
        text(&loosened.stdout)
    );
    for (flag, value, line) in [
        ("--max-latency-regression", "10%", "latency p95 2.0s → 3.0s"),
        ("--max-missed-increase", "0", "missed 0 → 1"),
        ("--max-sensitivity-drop", "0.1", "sensitivity 1.000 → 0.500"),
        ("--max-ppv-drop", "0.5", "ppv 1.000 → 0.250"),
        (
            "--max-false-rate-increase",
            "7.5",
            "false/patient-day 0.000 → 8.000",
        ),
        (
            "--max-false-alert-increase",
            "2",
            "false alerts 0 → 3 (limit +2)",
        ),
    ] {
        let run = with((flag, value), "");
        let stdout = text(&run.stdout);
        assert_eq!(run.status.code(), Some(1), "{flag} {value}: {stdout}");
        assert!(
            stdout.contains(&format!("REGRESSION: sepsis raises news2-medium: {line}")),
            "{flag} {value}: {stdout}"
        );
    }
    // The count budget alone replaces the default rate budget (0).
    let count = with(
        ("--max-false-alert-increase", "3"),
        "--max-false-rate-increase",
    );
    assert_eq!(count.status.code(), Some(0), "{}", text(&count.stdout));
    let rate = with(
        ("--max-latency-regression", "60%"),
        "--max-false-rate-increase",
    );
    assert_eq!(rate.status.code(), Some(1), "{}", text(&rate.stdout));

    // Timed runs, one a side: latency shown, not gated, and why.
    for (path, mut value) in [(a.to_owned() + "/report.json", base), (b.to_owned(), r)] {
        value["clock"]["mode"] = serde_json::json!("accelerated");
        std::fs::write(path, value.to_string()).unwrap();
    }
    let timed = with(("--max-latency-regression", "10%"), "");
    let stdout = text(&timed.stdout);
    assert_eq!(timed.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("+50.0%"), "{stdout}");
    assert!(
        stdout.contains("note: latency not gated: one timed run per side has no measured spread"),
        "{stdout}"
    );

    let bad = medtwin(&["compare", a, b, "--max-latency-regression", "ten"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_suite_runs_every_scenario_with_every_seed() {
    let out = tempfile::tempdir().unwrap();
    let run = medtwin(&[
        "run",
        "fixtures/suite",
        "--seeds",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}{}", text(&run.stderr));
    for seed in [11, 12] {
        assert!(
            stdout.contains(&format!(
                "repro: medtwin run fixtures/suite/ward-fail.toml --seed {seed} "
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("PASS fixtures/suite/ward-pass.toml (seed {seed})")),
            "{stdout}"
        );
        for name in ["ward-pass", "ward-fail"] {
            let dir = out.path().join(format!("{name}-s{seed}"));
            assert_eq!(report(&dir)["seed"], seed);
            assert!(dir.join("index.html").is_file() && dir.join("junit.xml").is_file());
        }
    }
    assert!(
        stdout.contains("suite: 4 runs · 2 passed · 2 failed"),
        "{stdout}"
    );
    // Reference times: the first abnormal measurement follows the onset and
    // precedes the alert.
    let r = report(&out.path().join("ward-pass-s11"));
    let from_measured = &r["expectations"][1];
    assert_eq!(from_measured["from"], "first_abnormal_measurement");
    for o in from_measured["outcomes"].as_array().unwrap() {
        let reference = o["reference_ms"].as_u64().unwrap();
        assert_eq!(o["measured_ms"].as_u64(), Some(reference), "{o}");
        assert!(reference >= o["onset_ms"].as_u64().unwrap(), "{o}");
        assert!(o["alert_ms"].as_u64().unwrap() >= reference, "{o}");
        let d = &o["decomposition"];
        assert!(
            d["device_ms"].as_u64().is_some() && d["backend_ms"].as_u64().is_some(),
            "{o}"
        );
    }
    // From the criterion: onset → criterion → measured → delivered → alert,
    // every step measured.
    let from_criterion = &r["expectations"][2];
    assert_eq!(from_criterion["hits"], 2, "{from_criterion}");
    for o in from_criterion["outcomes"].as_array().unwrap() {
        let t = |k: &str| o[k].as_u64().unwrap_or_else(|| panic!("{k} in {o}"));
        assert_eq!(t("reference_ms"), t("criterion_ms"));
        assert!(t("onset_ms") <= t("criterion_ms"), "{o}");
        assert!(t("measured_ms") <= t("delivered_ms") && t("delivered_ms") <= t("alert_ms"));
        let d = &o["decomposition"];
        for part in ["physiology_ms", "device_ms", "network_ms", "backend_ms"] {
            assert!(d[part].as_u64().is_some(), "{part} in {o}");
        }
    }
    let xml = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 4);
    // Per run: "target accepted the telemetry" and its two expectations.
    assert_eq!(xml.matches("<testcase ").count(), 12);
    assert_eq!(xml.matches("<failure ").count(), 2);
    let suite: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("suite.json")).unwrap())
            .unwrap();
    assert_eq!(suite["runs"].as_array().unwrap().len(), 4);
    assert!(
        std::fs::read_to_string(out.path().join("index.html"))
            .unwrap()
            .contains("SUITE FAILED")
    );
}

/// Debian's `chromium` (or another Chromium build on PATH).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

#[test]
fn html_report_renders_in_headless_chromium_without_console_errors() {
    let Some(browser) = chromium() else {
        // scripts/test.sh installs chromium; it sets this only when it
        // cannot (no root and no sudo), and says so.
        if std::env::var_os("MEDTWIN_NO_BROWSER").is_some() {
            eprintln!("skipped: no chromium and MEDTWIN_NO_BROWSER is set");
            return;
        }
        panic!("chromium is not installed: run ./scripts/test.sh, which installs it");
    };
    // A run with both latencies (news2-medium hits) and failures (the
    // wrong-kind fault): every chart has something to draw.
    let out = tempfile::tempdir().unwrap();
    let run = medtwin(&[
        "run",
        FIXTURE,
        "--speed",
        "600",
        "--wrong-kind-pct",
        "100",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let page = out.path().join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "nothing external"
    );
    assert!(!html.contains("<link"), "no external stylesheet");

    let profile = tempfile::tempdir().unwrap();
    let done = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs");
    let dom = text(&done.stdout);
    let log = text(&done.stderr);
    assert!(done.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    // The script ran to its end.
    assert!(dom.contains("data-ready=\"1\""), "{dom}");
    // Verdict first.
    let verdict = dom.find("id=\"verdict\"").unwrap();
    assert!(dom[..verdict].find("<table").is_none());
    assert!(dom.contains("FAIL — fault-knobs"));
    // Histogram and CDF per alert kind with latencies, drawn.
    assert!(dom.contains("class=\"chart histogram\" data-kind=\"news2-medium\""));
    assert!(dom.contains("class=\"chart cdf\" data-kind=\"news2-medium\""));
    assert!(dom.contains("<rect class=\"bar\""));
    assert!(dom.contains("<polyline"));
    // A timeline per failing outcome, with vitals and markers.
    assert!(dom.matches("class=\"chart timeline\"").count() >= 4);
    assert!(dom.contains("data-vital=\"spo2\""));
    assert!(dom.contains("data-marker=\"onset\""));
    assert!(dom.contains("data-marker=\"first abnormal delivery\""));
    assert!(dom.contains("class=\"alert\""));
    // Device and network accounting.
    assert!(dom.contains("id=\"accounting\""));
    // Readable charts: axes with ticks and units, the deadline, values on
    // hover and in tables, all matching report.json.
    let r = report(out.path());
    latency_charts_match_the_report(&dom, &r, "news2-medium");
    timeline_matches_the_report(&dom, &r);
}

/// The first element of `html` opening with `open`, to its first `close`.
fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    elements(html, open, close)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no `{open}` in {html}"))
}

/// Every element of `html` opening with `open`, each to its first `close`.
fn elements<'a>(html: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    html.match_indices(open)
        .map(|(i, _)| {
            let end = html[i..].find(close).expect("closed") + close.len();
            &html[i..i + end]
        })
        .collect()
}

/// The text of the first `<tag ...>` in `html`.
fn text_in<'a>(html: &'a str, tag: &str) -> &'a str {
    let inner = element(html, &format!("<{tag}"), &format!("</{tag}>"));
    &inner[inner.find('>').unwrap() + 1..inner.len() - tag.len() - 3]
}

/// The value of attribute `name` in the first tag of `html`.
fn attr<'a>(html: &'a str, name: &str) -> &'a str {
    let tag = &html[..html.find('>').unwrap()];
    let at = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {tag}"));
    let rest = &tag[at + name.len() + 3..];
    &rest[..rest.find('"').unwrap()]
}

/// The ticks of axis `axis` in `svg`: value, label and x of the tick line.
fn ticks(svg: &str, axis: &str) -> Vec<(f64, String, f64)> {
    elements(
        svg,
        &format!("<g class=\"tick\" data-axis=\"{axis}\""),
        "</g>",
    )
    .into_iter()
    .map(|t| {
        let line = element(t, "<line", ">");
        (
            attr(t, "data-value").parse().unwrap(),
            text_in(t, "text").to_owned(),
            attr(line, "x1").parse().unwrap(),
        )
    })
    .collect()
}

/// Every tick step is the same.
fn evenly_spaced(ticks: &[(f64, String, f64)]) -> bool {
    let step = ticks[1].0 - ticks[0].0;
    step > 0.0
        && ticks
            .windows(2)
            .all(|w| (w[1].0 - w[0].0 - step).abs() < 1e-6)
}

/// Latencies of hits and late alerts of `kind`, ascending, and the tightest
/// deadline of the expectations requiring it.
fn latencies(r: &Value, kind: &str) -> (Vec<u64>, u64) {
    let of_kind: Vec<&Value> = r["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["alert"] == kind)
        .collect();
    let mut all: Vec<u64> = of_kind
        .iter()
        .flat_map(|e| e["outcomes"].as_array().unwrap())
        .filter_map(|o| o["latency_ms"].as_u64())
        .collect();
    all.sort_unstable();
    let deadline = of_kind.iter().filter_map(|e| e["within_ms"].as_u64()).min();
    (all, deadline.unwrap())
}

/// The `svg` or `table` (`tag`) of chart `chart` ("histogram", "cdf") of
/// alert kind `kind`.
fn chart<'a>(dom: &'a str, tag: &str, chart: &str, kind: &str) -> &'a str {
    let open = match tag {
        "svg" => format!("<svg class=\"chart {chart}\" data-kind=\"{kind}\""),
        _ => format!("<table class=\"data\" data-chart=\"{chart}\" data-kind=\"{kind}\""),
    };
    element(dom, &open, &format!("</{tag}>"))
}

/// The histogram and CDF of `kind` match report.json.
fn latency_charts_match_the_report(dom: &str, r: &Value, kind: &str) {
    let (latencies, deadline) = latencies(r, kind);
    assert!(!latencies.is_empty() && latencies.len() <= 200);
    latency_axes_show_units_and_the_deadline(dom, kind, &latencies, deadline);
    histogram_bars_and_table_count_every_latency(dom, kind, &latencies);
    cdf_points_and_table_list_every_latency(dom, r, kind, &latencies);
}

/// Duration ticks with units at an even step covering every latency, whole
/// counts, and the deadline a labelled dashed line where the axis puts it.
fn latency_axes_show_units_and_the_deadline(
    dom: &str,
    kind: &str,
    latencies: &[u64],
    deadline: u64,
) {
    let hist = chart(dom, "svg", "histogram", kind);
    let x = ticks(hist, "latency");
    assert!(x.len() >= 3 && evenly_spaced(&x), "{x:?}");
    assert_eq!(x[0].1, "0");
    for (ms, label, _) in &x[1..] {
        let parsed = duration::parse(label).unwrap_or_else(|e| panic!("tick `{label}`: {e}"));
        assert_eq!(parsed as f64, *ms, "tick `{label}`");
    }
    assert!(x[x.len() - 1].0 >= latencies[latencies.len() - 1] as f64);
    let counts = ticks(hist, "alerts");
    assert!(counts.len() >= 2, "{counts:?}");
    assert!(
        counts
            .iter()
            .all(|(v, l, _)| l.parse::<f64>() == Ok(*v) && v.fract() == 0.0)
    );
    for svg in [hist, chart(dom, "svg", "cdf", kind)] {
        assert_eq!(ticks(svg, "latency"), x);
        let line = element(
            svg,
            &format!("<g class=\"deadline\" data-ms=\"{deadline}\">"),
            "</g>",
        );
        let label = format!("deadline {}", duration::format(deadline));
        assert!(text_in(line, "text").starts_with(&label), "{line}");
        assert_eq!(text_in(line, "title"), text_in(line, "text"));
        let dashed = element(line, "<line", ">");
        assert!(dashed.contains("stroke-dasharray"), "{dashed}");
        let (first, last) = (&x[0], &x[x.len() - 1]);
        let at = first.2 + (deadline as f64 - first.0) / (last.0 - first.0) * (last.2 - first.2);
        let drawn: f64 = attr(dashed, "x1").parse().unwrap();
        assert!(
            (drawn - at).abs() < 0.2,
            "deadline at {drawn}, axis says {at}"
        );
    }
}

/// Bars titled "N alerts between A and B" adding up to every latency, and
/// a table row per bar (the bins holding alerts) with the same counts.
fn histogram_bars_and_table_count_every_latency(dom: &str, kind: &str, latencies: &[u64]) {
    let bars = elements(
        chart(dom, "svg", "histogram", kind),
        "<rect class=\"bar\"",
        "</rect>",
    );
    let counted: Vec<u64> = bars
        .iter()
        .map(|b| {
            let title = text_in(b, "title");
            assert!(
                title.contains(" between ") && title.contains(" and "),
                "{title}"
            );
            title.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(counted.iter().sum::<u64>(), latencies.len() as u64);
    let in_table: Vec<u64> = elements(
        chart(dom, "table", "histogram", kind),
        "<tr data-bin=",
        "</tr>",
    )
    .iter()
    .map(|row| {
        text_in(elements(row, "<td", "</td>")[2], "td")
            .parse()
            .unwrap()
    })
    .collect();
    assert_eq!(in_table, counted);
}

/// A CDF point per latency titled with it, "% at or under" ticks, and a
/// table listing every latency in order, ending at the report's max.
fn cdf_points_and_table_list_every_latency(dom: &str, r: &Value, kind: &str, latencies: &[u64]) {
    let cdf = chart(dom, "svg", "cdf", kind);
    let share = ticks(cdf, "share");
    assert!(share.iter().all(|(_, l, _)| l.ends_with(" %")) && share[share.len() - 1].1 == "100 %");
    let points = elements(cdf, "<circle", "</circle>");
    assert_eq!(points.len(), latencies.len());
    for (p, ms) in points.iter().zip(latencies) {
        let title = text_in(p, "title");
        assert!(
            title.contains(&format!(" · {} · ", duration::human(*ms))),
            "{title}"
        );
    }
    let listed: Vec<u64> = elements(chart(dom, "table", "cdf", kind), "<tr data-rank=", "</tr>")
        .iter()
        .map(|row| attr(row, "data-ms").parse().unwrap())
        .collect();
    assert_eq!(listed, latencies);
    assert_eq!(
        listed.last().copied(),
        r["metrics"]["by_kind"][kind]["latency_ms"]["max"].as_u64()
    );
}

/// The first timeline with vitals matches report.json.
fn timeline_matches_the_report(dom: &str, r: &Value) {
    let timelines = r["timelines"].as_array().unwrap();
    let svgs = elements(dom, "<svg class=\"chart timeline\"", "</svg>");
    assert_eq!(svgs.len(), timelines.len());
    let j = timelines
        .iter()
        .position(|t| t["series"].is_object())
        .expect("a timeline with vitals");
    let (t, svg) = (&timelines[j], svgs[j]);
    assert_eq!(attr(svg, "data-patient"), t["patient"].as_str().unwrap());
    timeline_axes_show_time_and_units(svg);
    timeline_titles_carry_values(svg, t);
    // Its table: the j-th of those of timelines with vitals.
    let k = timelines[..j]
        .iter()
        .filter(|t| t["series"].is_object())
        .count();
    let table = elements(
        dom,
        "<table class=\"data\" data-chart=\"timeline\"",
        "</table>",
    )[k];
    timeline_table_lists_every_bucket_with_data(table, &t["series"]);
}

/// A time axis in hh:mm at an even step, and a strip per vital with its
/// unit and ticks.
fn timeline_axes_show_time_and_units(svg: &str) {
    let x = ticks(svg, "time");
    assert!(x.len() >= 4 && evenly_spaced(&x), "{x:?}");
    for (ms, label, _) in &x {
        assert_eq!(*label, duration::clock_text(*ms as u64)[..5], "{x:?}");
    }
    let strips = [
        ("hr", "HR (/min)"),
        ("spo2", "SpO2 (%)"),
        ("rr", "RR (/min)"),
        ("sbp", "SBP (mmHg)"),
        ("temp", "Temp (°C)"),
    ];
    for (code, title) in strips {
        assert!(
            svg.contains(&format!(">{title}</text>")),
            "no axis title {title}"
        );
        let y = ticks(svg, code);
        assert!(y.len() >= 2 && evenly_spaced(&y), "{code}: {y:?}");
        assert!(
            y.iter()
                .all(|(v, l, _)| l.parse::<f64>().is_ok_and(|l| (l - v).abs() < 1e-9))
        );
    }
}

/// The first SpO2 value's point, the markers (labelled, titled with their
/// time) and the patient's alerts (titled) in timeline `t`.
fn timeline_titles_carry_values(svg: &str, t: &Value) {
    let patient = t["patient"].as_str().unwrap();
    let (b, v) = first_spo2(&t["series"]);
    let clock = duration::clock_text(b as u64 * t["series"]["bucket_ms"].as_u64().unwrap());
    let point = format!("<title>{patient} · SpO2 {v:.1} % at {clock}</title>");
    assert!(svg.contains(&point), "no {point}");
    let moments = [
        ("onset", &t["times"]["onset_ms"]),
        ("deadline", &t["deadline_ms"]),
        ("judged alert", &t["alert_ms"]),
    ];
    let moments: Vec<(&str, u64)> = moments
        .iter()
        .filter_map(|(n, ms)| ms.as_u64().map(|ms| (*n, ms)))
        .collect();
    assert!(!moments.is_empty());
    for (name, ms) in moments {
        let line = element(
            svg,
            &format!("<line class=\"marker\" data-marker=\"{name}\""),
            "</line>",
        );
        assert_eq!(
            text_in(line, "title"),
            format!("{name} {}", duration::clock_text(ms))
        );
        let label = element(
            svg,
            &format!("<text class=\"marker-label\" data-marker=\"{name}\""),
            "</text>",
        );
        assert_eq!(text_in(label, "text"), name);
    }
    let alerts = elements(svg, "<path class=\"alert\"", "</path>");
    assert_eq!(alerts.len(), t["alerts"].as_array().unwrap().len());
    assert!(
        alerts
            .iter()
            .all(|a| text_in(a, "title").contains(" alert at "))
    );
}

/// The bucket and value of the first SpO2 in a timeline's series.
fn first_spo2(series: &Value) -> (usize, f64) {
    let spo2 = series["vitals"]["spo2"].as_array().unwrap();
    spo2.iter()
        .enumerate()
        .find_map(|(b, v)| v.as_f64().map(|v| (b, v)))
        .expect("an SpO2 value")
}

/// A row per bucket holding a value, a delivery or a loss; the first
/// SpO2's row shows it.
fn timeline_table_lists_every_bucket_with_data(table: &str, series: &Value) {
    let drawn = ["hr", "spo2", "rr", "sbp", "temp"];
    let with_data = |i: usize| {
        drawn.iter().any(|c| series["vitals"][c][i].is_number())
            || series["delivered"][i].as_u64().unwrap_or(0)
                + series["lost"][i].as_u64().unwrap_or(0)
                > 0
    };
    let buckets = series["delivered"].as_array().unwrap().len();
    let expected = (0..buckets).filter(|&i| with_data(i)).count();
    assert_eq!(elements(table, "<tr data-bucket=", "</tr>").len(), expected);
    let (b, v) = first_spo2(series);
    let row = element(table, &format!("<tr data-bucket=\"{b}\""), "</tr>");
    assert!(row.contains(&format!("<td>{v:.1}</td>")), "{row}");
}

#[test]
fn report_json_follows_its_documented_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/report.schema.json")).unwrap(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    // Hits, false alerts, missed rule onsets and timelines: most fields filled.
    let run = medtwin(&[
        "run",
        FIXTURE,
        "--clock",
        "virtual",
        "--wrong-patient-pct",
        "50",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(run.status.code().is_some(), "{}", text(&run.stderr));
    let r = report(out.path());
    assert!(!r["timelines"].as_array().unwrap().is_empty());
    check_schema(&schema, &schema, &r, "report").unwrap();
    // The checker can fail: a field the schema does not know is refused.
    let mut extra = r.clone();
    extra["surprise"] = Value::Bool(true);
    assert!(check_schema(&schema, &schema, &extra, "report").is_err());
}

/// The QA engineer's command: every scenario in `scenarios/qa/` passes
/// against the reference backend, with one JUnit file for the suite.
#[test]
fn the_shipped_qa_suite_passes() {
    let (out, _) = run_passing(&["scenarios/qa/", "--clock", "virtual"]);
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("qa-sepsis-ward"), "{junit}");
}
