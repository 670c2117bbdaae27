//! Networks as a user reaches them: gateways, outages and the accounting
//! of every measurement in the report.

use crate::common::{report, run_passing};

#[test]
fn home_monitoring_rides_out_an_outage_through_the_phone_buffer() {
    let (out, _) = run_passing(&["scenarios/qa/home-lte-outage.toml", "--clock", "virtual"]);
    let r = report(out.path());
    let acc = &r["accounting"];
    // The buffer had room: the only losses are the LTE hop's own.
    let causes = acc["lost_by_cause"].as_object().unwrap();
    assert!(causes.keys().all(|c| c == "link_loss"), "{acc}");
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert_eq!(
        n(&acc["generated"]),
        n(&acc["delivered"]) + n(&acc["lost"]) + n(&acc["buffered"])
    );
    // The septic patient was behind the outage: the alert came with the
    // flushed burst, minutes after onset but seconds after the data.
    let hits: Vec<_> = r["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["outcomes"].as_array().unwrap().iter())
        .filter(|o| o["outcome"] == "hit")
        .collect();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter()
            .any(|o| o["latency_ms"].as_u64().unwrap() < 60_000)
    );
}

#[test]
fn an_outage_with_a_small_buffer_is_counted_by_cause() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny-buffer.toml");
    std::fs::write(
        &scenario,
        r#"# A phone that holds only 50 messages through a 10-minute outage.
name = "tiny-buffer"
duration = "30m"

[[cohort]]
name = "home"
count = 2
network = { gateway = { buffer = 50, eviction = "drop_oldest" } }
devices = [{ kind = "pulse_oximeter" }]

[[cohort]]
name = "bare"
count = 1
devices = [{ kind = "pulse_oximeter" }]

[[fault]]
at = "5m"
who = "home"
kind = "network_outage"
duration = "10m"

[[fault]]
at = "5m"
who = "bare"
kind = "network_outage"
duration = "1m"

[[fault]]
at = "20m"
who = "bare"
kind = "sensor_off"
device = "pulse_oximeter"
duration = "2m"
"#,
    )
    .unwrap();
    let (out, _) = run_passing(&[scenario.to_str().unwrap()]);
    let r = report(out.path());
    let causes = &r["accounting"]["lost_by_cause"];
    // 600 readings per phone into 50 places; 60 sent into the bare
    // outage; two minutes of the bare patient's oximeter off the finger
    // (the first reading time carries its "sensor off" alarm instead).
    assert_eq!(causes["buffer_overflow"], 2 * 550, "{causes}");
    assert_eq!(causes["outage"], 60, "{causes}");
    assert_eq!(causes["sensor_off"], 119, "{causes}");
    let oximeters = &r["accounting"]["by_device_kind"]["pulse_oximeter"];
    assert_eq!(oximeters["alarms"]["sensor_off"], 1, "{oximeters}");
    assert_eq!(oximeters["lost_by_cause"]["sensor_off"], 119, "{oximeters}");
}

#[test]
fn list_devices_prints_the_catalogue_with_specs() {
    let out = crate::common::medtwin(&["list", "devices"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::common::text(&out.stderr)
    );
    let stdout = crate::common::text(&out.stdout);
    for needle in [
        "ring_oximeter  (pulse_oximeter)",
        "ecg_patch  (ecg_patch)",
        "cgm  (cgm)",
        "life 10d",
        "weight_scale",
        "med_dispenser",
        "infusion_pump",
        "daily at 07:30, 19:30",
        "~61 h at this cadence",
    ] {
        assert!(stdout.contains(needle), "{needle} in\n{stdout}");
    }
}

#[test]
fn a_scenario_adds_its_own_device_model_and_gets_positioned_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("own-device.toml");
    std::fs::write(
        &good,
        r#"name = "own-device"
duration = "10m"

[[device]]
name = "cheap_oximeter"
extends = "finger_oximeter"
spo2 = { bias_sd = 3.0 }
every = "2s"

[[cohort]]
name = "w"
count = 2
devices = [{ kind = "cheap_oximeter", battery_pct = 50 }]
"#,
    )
    .unwrap();
    let out = crate::common::medtwin(&["validate", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::common::text(&out.stderr)
    );
    let bad = dir.path().join("bad-device.toml");
    std::fs::write(
        &bad,
        r#"name = "bad-device"
duration = "10m"

[[device]]
name = "odd_cuff"
class = "bp_cuff"
spo2 = { bias_sd = 1.0 }

[[cohort]]
name = "w"
count = 1
devices = [{ kind = "ring_oximetre" }, { kind = "bp_cuff", battery_pct = 40 }]
"#,
    )
    .unwrap();
    let out = crate::common::medtwin(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = crate::common::text(&out.stderr);
    for needle in [
        "bad-device.toml:7:8: error in `device[0].spo2`: a bp_cuff does not report `spo2`",
        "error in `cohort[0].devices[0].kind`: unknown device `ring_oximetre`",
        "did you mean `ring_oximeter`?",
        "error in `cohort[0].devices[1].battery_pct`: `bp_cuff` is mains powered",
    ] {
        assert!(stderr.contains(needle), "{needle} in\n{stderr}");
    }
}
