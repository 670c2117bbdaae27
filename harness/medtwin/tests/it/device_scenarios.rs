//! Devices as a user reaches them: the QA scenarios for realistic device
//! models (CGM, home cuff, scale, wearables, ambulance telemetry,
//! dispensers and ingestible sensors, infusion pumps) run end to end
//! against the reference backend. Each test checks the report (verdict,
//! schema, accounting, alarms, events, alerts), then steps the scenario's
//! twin again through the library to check what the report only sums up:
//! when each device measured, what it read, and when each message arrived.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{check_schema, report, root, run_passing};
use medtwin::scenario::{self, Scenario};
use medtwin_sim::{
    Delivery, EventKind, Loss, LossCause, Measurement, StepOutput, TechAlarm, Twin, Vital,
};
use serde_json::Value;

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// A count in a `{ name: count }` map of the report, 0 when absent.
fn count(map: &Value, key: &str) -> u64 {
    map.get(key).map_or(0, n)
}

/// Runs `file` in virtual time against the embedded reference backend,
/// insists on PASS, checks the report against its documented schema and
/// its accounting identities, and returns it.
fn passing(file: &str) -> Value {
    let (out, stdout) = run_passing(&[file, "--clock", "virtual"]);
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    let r = report(out.path());
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/schemas/report.schema.json")).unwrap(),
    )
    .unwrap();
    check_schema(&schema, &schema, &r, "report").unwrap();
    check_accounting(&r["accounting"]);
    r
}

/// Every measurement ends delivered, lost or still pending, overall and per
/// device model; losses add up by cause; the models add up to the totals.
fn check_accounting(acc: &Value) {
    let kinds = acc["by_device_kind"].as_object().unwrap();
    assert!(!kinds.is_empty(), "{acc}");
    let mut sums = [0u64; 5];
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, k) in kinds {
        assert_eq!(
            n(&k["generated"]),
            n(&k["delivered"]) + n(&k["lost"]) + n(&k["buffered"]),
            "{kind}: {k}"
        );
        let by_cause: u64 = k["lost_by_cause"]
            .as_object()
            .unwrap()
            .values()
            .map(n)
            .sum();
        assert_eq!(by_cause, n(&k["lost"]), "{kind}: {k}");
        for (cause, c) in k["lost_by_cause"].as_object().unwrap() {
            *causes.entry(cause.clone()).or_insert(0) += n(c);
        }
        // Alarms, events and artifacts ride on measurements.
        for part in ["alarms", "events", "artifacts"] {
            for (name, c) in k[part].as_object().unwrap() {
                assert!(n(c) <= n(&k["generated"]), "{kind} {part}.{name}: {k}");
            }
        }
        for (i, field) in ["generated", "delivered", "lost", "buffered", "duplicates"]
            .iter()
            .enumerate()
        {
            sums[i] += n(&k[*field]);
        }
    }
    assert_eq!(
        n(&acc["generated"]),
        n(&acc["delivered"]) + n(&acc["lost"]) + n(&acc["buffered"]),
        "{acc}"
    );
    for (i, field) in ["generated", "delivered", "lost", "buffered", "duplicates"]
        .iter()
        .enumerate()
    {
        assert_eq!(sums[i], n(&acc[*field]), "{field} by kind vs total: {acc}");
    }
    let total: BTreeMap<String, u64> = acc["lost_by_cause"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(c, v)| (c.clone(), n(v)))
        .collect();
    assert_eq!(causes, total, "{acc}");
}

/// One run of a scenario's twin, stepped through the library: every
/// measurement, delivery and loss, with device and patient names.
struct Trace {
    scenario: Scenario,
    devices: Vec<String>,
    measurements: Vec<Measurement>,
    deliveries: Vec<Delivery>,
    losses: Vec<Loss>,
}

impl Trace {
    /// Steps the twin of `file` to the end (no backend, no network I/O).
    fn of(file: &str) -> Trace {
        let scenario = scenario::load(&root().join(file)).unwrap();
        let mut twin = Twin::new(&scenario.sim).unwrap();
        let devices = twin.device_names().to_vec();
        let mut t = Trace {
            scenario,
            devices,
            measurements: Vec::new(),
            deliveries: Vec::new(),
            losses: Vec::new(),
        };
        while !twin.finished() {
            let out: &StepOutput = twin.step();
            t.measurements.extend_from_slice(&out.measurements);
            t.deliveries.extend_from_slice(&out.deliveries);
            t.losses.extend_from_slice(&out.losses);
        }
        t
    }

    fn device(&self, name: &str) -> u32 {
        self.devices
            .iter()
            .position(|d| d == name)
            .unwrap_or_else(|| panic!("no device {name} in {:?}", self.devices)) as u32
    }

    /// The measurements of device `name`, in order.
    fn taken(&self, name: &str) -> Vec<&Measurement> {
        let d = self.device(name);
        self.measurements
            .iter()
            .filter(|m| m.device_idx == d)
            .collect()
    }

    /// First deliveries (not duplicates) of device `name`.
    fn delivered(&self, name: &str) -> Vec<&Delivery> {
        let d = self.device(name);
        self.deliveries
            .iter()
            .filter(|x| x.measurement.device_idx == d && !x.duplicate)
            .collect()
    }

    fn lost(&self, name: &str) -> Vec<&Loss> {
        let d = self.device(name);
        self.losses.iter().filter(|l| l.device_idx == d).collect()
    }

    /// Message by message: each measurement is delivered at most once
    /// (duplicates apart, and only after a first delivery), or lost once,
    /// never both, at or after it was measured; what is neither is what
    /// the report calls buffered. The same run as the report's: same totals.
    fn check_against(&self, r: &Value) {
        let acc = &r["accounting"];
        let measured: BTreeMap<(u32, u64), u64> = self
            .measurements
            .iter()
            .map(|m| ((m.device_idx, m.seq), m.measured_ms))
            .collect();
        assert_eq!(
            measured.len(),
            self.measurements.len(),
            "a (device, seq) twice"
        );
        assert_eq!(measured.len() as u64, n(&acc["generated"]));
        let mut ended: BTreeSet<(u32, u64)> = BTreeSet::new();
        for d in &self.deliveries {
            let key = (d.measurement.device_idx, d.measurement.seq);
            let at = measured[&key];
            assert!(
                at <= d.sent_ms && d.sent_ms <= d.delivered_ms,
                "measured {at}, sent {}, delivered {}",
                d.sent_ms,
                d.delivered_ms
            );
            if d.duplicate {
                assert!(ended.contains(&key), "duplicate before the first: {key:?}");
            } else {
                assert!(ended.insert(key), "delivered twice: {key:?}");
            }
        }
        for l in &self.losses {
            let key = (l.device_idx, l.seq);
            assert!(measured[&key] <= l.lost_ms, "{l:?}");
            assert!(
                ended.insert(key),
                "lost and delivered, or lost twice: {key:?}"
            );
        }
        let delivered = self.deliveries.iter().filter(|d| !d.duplicate).count() as u64;
        assert_eq!(delivered, n(&acc["delivered"]));
        assert_eq!(self.losses.len() as u64, n(&acc["lost"]));
        assert_eq!(
            measured.len() as u64 - ended.len() as u64,
            n(&acc["buffered"])
        );
    }
}

fn reading(m: &Measurement, vital: Vital) -> Option<f64> {
    m.readings
        .as_slice()
        .iter()
        .find(|r| r.vital == vital)
        .map(|r| r.value)
}

#[test]
fn chronic_disease_at_home_cgm_warm_up_expiry_and_backfill() {
    let file = "scenarios/qa/chronic-disease.toml";
    let r = passing(file);
    let acc = &r["accounting"];
    let kinds = &acc["by_device_kind"];
    let cgm = &kinds["cgm"];
    // Five sensors, one reading each 5 min for 36 h (432), less the new
    // sensor's 2-h warm-up (24); a sensor due at time 0 may take one more
    // at the very end.
    let full = 36 * 12;
    let g = n(&cgm["generated"]);
    assert!((5 * full - 24..=5 * full - 24 + 5).contains(&g), "{cgm}");
    // The old sensor expires 12 h in: one alarm, then the 24 h of readings
    // it owes are lost (one 5-min slot carries the alarm).
    assert_eq!(cgm["alarms"], serde_json::json!({ "sensor_expired": 1 }));
    let expired = count(&cgm["lost_by_cause"], "sensor_expired");
    assert!((24 * 12 - 2..=24 * 12).contains(&expired), "{cgm}");
    // Three cuffs at 07:30, 19:30 and 07:30 again; three scales at 07:00
    // on each of the two mornings.
    assert_eq!(n(&kinds["home_bp_cuff"]["generated"]), 9, "{acc}");
    assert_eq!(n(&kinds["weight_scale"]["generated"]), 6, "{acc}");
    // The phone kept the disconnected sensor's readings, the hub held the
    // cuff reading through its outage: nothing lost but to expiry (and the
    // odd Wi-Fi loss the resends did not cover); nothing left behind.
    for cause in acc["lost_by_cause"].as_object().unwrap().keys() {
        assert!(
            ["sensor_expired", "link_loss"].contains(&cause.as_str()),
            "{acc}"
        );
    }
    assert!(count(&acc["lost_by_cause"], "link_loss") <= 3, "{acc}");
    assert_eq!(n(&acc["buffered"]), 0, "{acc}");
    // The backend passed the expiry on once, and raised nothing on glucose,
    // a few cuff readings or weights.
    assert_eq!(
        r["alerts"]["by_kind"],
        serde_json::json!({ "device-sensor-expired": 1 }),
        "{}",
        r["alerts"]
    );
    // The missed meal took the patient below 70 mg/dL; glucose and a meal
    // brought them back.
    let episodes = r["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    let hypo = &episodes[0];
    assert_eq!(hypo["condition"], "hypoglycaemia");
    assert_eq!(hypo["end_reason"], "recovered", "{hypo}");
    let level1 = n(&hypo["criteria"]["hypoglycaemia_level1"]);

    let t = Trace::of(file);
    t.check_against(&r);
    // Every CGM reads every 5 min of true time, from its first slot (a
    // slot at time 0 is taken at the end of the first step, so the first
    // gap may be a step short).
    for name in t.devices.iter().filter(|d| d.ends_with("/cgm")) {
        let taken = t.taken(name);
        assert!(!taken.is_empty(), "{name}");
        for (i, w) in taken.windows(2).enumerate() {
            let gap = w[1].measured_ms - w[0].measured_ms;
            if i == 0 {
                assert!((5 * MIN - t.scenario.sim.step_ms..=5 * MIN).contains(&gap));
            } else {
                assert_eq!(gap, 5 * MIN, "{name}");
            }
        }
        for m in &taken {
            if let Some(v) = reading(m, Vital::Glucose) {
                assert!((40.0..=400.0).contains(&v), "{name}: {v} mg/dL");
            }
        }
    }
    // Inserted at the start: silent through its 2-h warm-up.
    let new = t.taken("t1d_new-000/cgm");
    assert!(
        (2 * HOUR..2 * HOUR + 5 * MIN).contains(&new[0].measured_ms),
        "first reading {} ms",
        new[0].measured_ms
    );
    assert!(reading(new[0], Vital::Glucose).is_some());
    // Inserted 9.5 days before: readings until 12 h, then the expiry alarm
    // in the next slot, then nothing but losses by cause sensor_expired.
    let old = t.taken("t1d_old-000/cgm");
    let alarm = old
        .iter()
        .position(|m| m.alarm == Some(TechAlarm::SensorExpired))
        .expect("an expiry alarm");
    assert!(
        (12 * HOUR..12 * HOUR + 5 * MIN).contains(&old[alarm].measured_ms),
        "expired at {} ms",
        old[alarm].measured_ms
    );
    assert!(
        old[..alarm]
            .iter()
            .all(|m| reading(m, Vital::Glucose).is_some())
    );
    assert!(old[alarm + 1..].iter().all(|m| m.readings.is_empty()));
    let old_losses = t.lost("t1d_old-000/cgm");
    assert_eq!(old_losses.len() as u64, expired);
    assert!(
        old_losses
            .iter()
            .all(|l| l.cause == LossCause::SensorExpired && l.lost_ms > old[alarm].measured_ms)
    );
    // The CGM shows the hypo within half an hour of glucose falling under
    // 70 mg/dL (an 8-min lag, readings every 5 min).
    let low = t
        .taken("t1d-000/cgm")
        .iter()
        .filter(|m| (level1..level1 + 30 * MIN).contains(&m.measured_ms))
        .filter_map(|m| reading(m, Vital::Glucose))
        .fold(f64::INFINITY, f64::min);
    assert!(low < 70.0, "lowest CGM reading after the hypo: {low}");
    // Out of range from 18 h to 20 h: the 24 readings stay on the sensor
    // and arrive after the phone is back, none lost.
    let kept: Vec<_> = t
        .delivered("t1d-001/cgm")
        .into_iter()
        .filter(|d| (18 * HOUR..20 * HOUR).contains(&d.measurement.measured_ms))
        .collect();
    assert_eq!(kept.len(), 24);
    assert!(kept.iter().all(|d| d.sent_ms >= 20 * HOUR), "{kept:?}");
    assert!(t.lost("t1d-001/cgm").is_empty());
    // The hub down from 07:15 to 07:45 holds the 07:30 cuff reading.
    let cuff = t.delivered("htn-001/home_bp_cuff");
    let morning = cuff
        .iter()
        .find(|d| d.measurement.measured_ms == HOUR + 30 * MIN)
        .expect("the 07:30 reading delivered");
    assert!(morning.sent_ms >= HOUR + 45 * MIN, "{morning:?}");
}

#[test]
fn ward_wifi_wearables_sepsis_sensor_off_and_a_flat_battery() {
    let file = "scenarios/qa/ward-wifi.toml";
    let r = passing(file);
    let acc = &r["accounting"];
    let kinds = &acc["by_device_kind"];
    let oxi = &kinds["finger_oximeter"];
    // Ten minutes off the finger at one reading per 5 s: 120 slots, the
    // first carries the sensor-off alarm.
    assert_eq!(count(&oxi["alarms"], "sensor_off"), 1, "{oxi}");
    assert_eq!(count(&oxi["lost_by_cause"], "sensor_off"), 119, "{oxi}");
    // The flat battery: one low-battery alarm, then dead for the rest of
    // the run, as long as its charge and draw say.
    assert_eq!(count(&oxi["alarms"], "low_battery"), 1, "{oxi}");
    let t = Trace::of(file);
    let side = &t.scenario.sim.cohorts[1].devices[0];
    assert_eq!(side.spec.name, "finger_oximeter");
    let battery = side.spec.battery.expect("a battery");
    let life_ms = battery.life_hours(side.every_ms) * side.battery_pct / 100.0 * HOUR as f64;
    let expected = (t.scenario.sim.duration_ms as f64 - life_ms) / side.every_ms as f64;
    let dead = count(&oxi["lost_by_cause"], "battery_dead") as f64;
    assert!(
        (dead - expected).abs() <= 2.0,
        "{dead} readings lost to a dead battery, {expected:.1} expected"
    );
    // Each lead-off reading of an ECG patch says so.
    let ecg = &kinds["ecg_patch"];
    assert_eq!(
        count(&ecg["alarms"], "lead_off"),
        count(&ecg["artifacts"], "lead_off"),
        "{ecg}"
    );
    // Wearables resend: some acknowledgements are lost, duplicates counted
    // apart from deliveries.
    assert!(n(&oxi["duplicates"]) > 0, "{oxi}");
    // Seven temperature patches every 2 min for 2 h.
    let temp = n(&kinds["temperature_patch"]["generated"]);
    assert!((7 * 60..=7 * 61).contains(&temp), "{temp}");
    // The backend passed each device alarm on once, and caught the sepsis.
    let alerts = &r["alerts"]["by_kind"];
    assert_eq!(count(alerts, "device-sensor-off"), 1, "{alerts}");
    assert_eq!(count(alerts, "device-low-battery"), 1, "{alerts}");
    assert!(count(alerts, "news2-medium") >= 1, "{alerts}");
    assert!(count(alerts, "news2-high") >= 1, "{alerts}");
    // The septic patient got both, in time: one hit per expectation.
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!(n(&e["hits"]), 1, "{e}");
    }

    t.check_against(&r);
    // Off the finger from 40 to 50 min: one alarm message, no readings in
    // the window, readings again after it.
    let off = t.taken("ward-001/finger_oximeter");
    let window = 40 * MIN..50 * MIN;
    let inside: Vec<_> = off
        .iter()
        .filter(|m| window.contains(&m.measured_ms))
        .collect();
    assert_eq!(inside[0].alarm, Some(TechAlarm::SensorOff));
    assert!(inside.iter().all(|m| m.readings.is_empty()));
    assert!(
        off.iter()
            .any(|m| m.measured_ms >= window.end && reading(m, Vital::Spo2).is_some())
    );
    // The flat battery: low at once, then readings until it dies, then
    // losses only.
    let flat = t.taken("side-000/finger_oximeter");
    assert_eq!(flat[0].alarm, Some(TechAlarm::LowBattery));
    let losses = t.lost("side-000/finger_oximeter");
    let died = losses[0].lost_ms;
    assert!(losses.iter().all(|l| l.cause == LossCause::BatteryDead));
    assert!(
        (died as f64 - life_ms).abs() <= 2.0 * side.every_ms as f64,
        "died at {died} ms, {life_ms:.0} ms expected"
    );
    assert!(
        flat.iter()
            .filter(|m| m.measured_ms >= died)
            .all(|m| m.readings.is_empty())
    );
}

#[test]
fn ambulance_handovers_are_bridged_by_the_router() {
    let file = "scenarios/qa/ambulance-ecg.toml";
    let r = passing(file);
    let acc = &r["accounting"];
    // The router's buffer never filled and nothing went into a dead link:
    // the only losses are LTE's own, after the resends.
    for cause in acc["lost_by_cause"].as_object().unwrap().keys() {
        assert_eq!(cause, "link_loss", "{acc}");
    }
    let lost = n(&acc["lost"]) as f64;
    assert!(lost / (n(&acc["generated"]) as f64) < 0.01, "{acc}");
    // Three patients, two 1-Hz devices each, for 45 min.
    for kind in ["ecg_patch", "finger_oximeter"] {
        let g = n(&acc["by_device_kind"][kind]["generated"]);
        assert!((3 * 2700..=3 * 2701).contains(&g), "{kind}: {g}");
    }
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!(n(&e["hits"]), 1, "{e}");
    }
    assert!(count(&r["alerts"]["by_kind"], "news2-medium") >= 1);

    let t = Trace::of(file);
    t.check_against(&r);
    // Handover gaps: messages leave the router seconds after they were
    // measured (longer than any resend chain: 3 x 1 s, 2 x 2 s), for every
    // patient, and the longest hold is a gap's length, not minutes.
    let held: Vec<_> = t
        .deliveries
        .iter()
        .filter(|d| !d.duplicate && d.sent_ms >= d.measurement.measured_ms + 5_000)
        .collect();
    assert!(held.len() > 100, "{} held", held.len());
    let patients: BTreeSet<u32> = held.iter().map(|d| d.measurement.patient_idx).collect();
    assert_eq!(patients.len(), 3, "{patients:?}");
    let longest = held
        .iter()
        .map(|d| d.sent_ms - d.measurement.measured_ms)
        .max()
        .unwrap();
    assert!(longest < 3 * MIN, "held {longest} ms");
    // The bleeding patient's finger oximeter loses the pulse as MAP falls.
    let oxi = t.taken("amb-001/finger_oximeter");
    assert!(oxi.iter().any(|m| m.alarm == Some(TechAlarm::LowPerfusion)));
}

#[test]
fn medication_adherence_events_share_dose_decisions() {
    let file = "scenarios/qa/medication-adherence.toml";
    let r = passing(file);
    let acc = &r["accounting"];
    let dispenser = &acc["by_device_kind"]["med_dispenser"]["events"];
    let pill = &acc["by_device_kind"]["smart_pill"]["events"];
    let taken = count(dispenser, "dose_taken");
    let missed = count(dispenser, "dose_missed");
    // 20 patients, two doses a day for three days, each reported once.
    assert_eq!(taken + missed, 20 * 2 * 3, "{dispenser}");
    let share = missed as f64 / (taken + missed) as f64;
    assert!((0.1..0.3).contains(&share), "missed share {share}");
    // The ingestible sensor reports exactly the doses taken.
    assert_eq!(count(pill, "pill_ingested"), taken, "{pill} vs {dispenser}");
    assert_eq!(count(pill, "dose_taken") + count(pill, "dose_missed"), 0);
    // The hub outage lost nothing; events raise no alert.
    assert!(
        acc["lost_by_cause"]
            .as_object()
            .unwrap()
            .keys()
            .all(|c| c == "link_loss"),
        "{acc}"
    );
    assert_eq!(n(&r["alerts"]["received"]), 0, "{}", r["alerts"]);

    let t = Trace::of(file);
    t.check_against(&r);
    let step = t.scenario.sim.step_ms;
    for p in 0..20 {
        let dispenser = t.taken(&format!("home-{p:03}/med_dispenser"));
        let pill = t.taken(&format!("home-{p:03}/smart_pill"));
        let mut doses = BTreeSet::new();
        let mut swallowed = BTreeMap::new();
        for m in &dispenser {
            let e = m.event.expect("a dispenser reports events");
            assert!(doses.insert(e.scheduled_ms), "dose reported twice: {e:?}");
            let after = m.measured_ms - e.scheduled_ms;
            match e.kind {
                // Taken within the hour's window, missed when it closes.
                EventKind::DoseTaken => {
                    assert!(after <= 55 * MIN + step, "{e:?} at {}", m.measured_ms);
                    swallowed.insert(e.scheduled_ms, m.measured_ms);
                }
                EventKind::DoseMissed => {
                    assert!((60 * MIN..=60 * MIN + step).contains(&after), "{e:?}");
                }
                EventKind::PillIngested => panic!("a dispenser reported {e:?}"),
            }
        }
        assert_eq!(doses.len(), 6, "patient {p}");
        // The pill reports the same doses, 3 min after they were taken.
        let ingested: BTreeMap<u64, u64> = pill
            .iter()
            .map(|m| {
                let e = m.event.expect("a smart pill reports events");
                assert_eq!(e.kind, EventKind::PillIngested);
                (e.scheduled_ms, m.measured_ms)
            })
            .collect();
        assert_eq!(
            ingested.keys().collect::<Vec<_>>(),
            swallowed.keys().collect::<Vec<_>>(),
            "patient {p}"
        );
        for (dose, at) in &ingested {
            let gap = at - swallowed[dose];
            assert!((3 * MIN - step..=3 * MIN + step).contains(&gap), "{gap}");
        }
    }
    // Home 4's hub was down 19:30-21:30: the 20:00 dose's events waited in
    // it and left when it came back.
    let evening = 13 * HOUR;
    for device in ["home-004/med_dispenser", "home-004/smart_pill"] {
        for d in t.delivered(device) {
            let e = d.measurement.event.unwrap();
            if e.scheduled_ms == evening {
                assert!(d.sent_ms >= 14 * HOUR + 30 * MIN, "{device}: {d:?}");
            }
        }
    }
}

#[test]
fn infusion_occlusion_stops_the_pump_and_alarms_after_its_delay() {
    let file = "scenarios/qa/infusion-occlusion.toml";
    let r = passing(file);
    let pumps = &r["accounting"]["by_device_kind"]["infusion_pump"];
    assert_eq!(pumps["alarms"], serde_json::json!({ "occlusion": 1 }));
    // Four pumps, one rate a minute for an hour.
    let g = n(&pumps["generated"]);
    assert!((4 * 60..=4 * 61).contains(&g), "{pumps}");
    // One device-occlusion alert, no NEWS2 alert on stable patients.
    assert_eq!(
        r["alerts"]["by_kind"],
        serde_json::json!({ "device-occlusion": 1 }),
        "{}",
        r["alerts"]
    );

    let t = Trace::of(file);
    t.check_against(&r);
    let occluded = 20 * MIN..35 * MIN;
    for p in 0..4 {
        let name = format!("bay-{p:03}/infusion_pump");
        for m in t.taken(&name) {
            let rate = reading(m, Vital::InfusionRate).expect("a rate");
            let blocked = p == 2 && occluded.contains(&m.measured_ms);
            let want = if blocked { 0.0 } else { 125.0 };
            assert_eq!(rate, want, "{name} at {} ms", m.measured_ms);
        }
    }
    // The alarm: once, on the first reading 2 min (pressure build-up)
    // after the line blocked, and delivered to the backend.
    let alarms: Vec<_> = t
        .measurements
        .iter()
        .filter(|m| m.alarm.is_some())
        .collect();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let alarm = alarms[0];
    assert_eq!(alarm.alarm, Some(TechAlarm::Occlusion));
    assert_eq!(
        t.devices[alarm.device_idx as usize],
        "bay-002/infusion_pump"
    );
    assert!(
        (22 * MIN..23 * MIN).contains(&alarm.measured_ms),
        "alarm at {} ms",
        alarm.measured_ms
    );
    assert!(t.deliveries.iter().any(|d| d.measurement.seq == alarm.seq
        && d.measurement.device_idx == alarm.device_idx));
}

#[test]
fn copd_at_home_is_scored_on_the_scale_the_nurse_charts() {
    let file = "scenarios/qa/copd-home.toml";
    let r = passing(file);
    // Both expectations: the three exacerbations paged, in time; the stable
    // seven never paged at all (their 88-92 % scores 0 on scale 2).
    let exacerbating = ["copd-000", "copd-001", "copd-002"];
    for e in r["expectations"].as_array().unwrap() {
        assert_eq!(e["verdict"], "pass", "{e}");
        assert_eq!(
            (n(&e["hits"]), n(&e["missed"]), n(&e["late"])),
            (3, 0, 0),
            "{e}"
        );
        assert!(
            e["false_alerts_per_patient_day"].as_f64().unwrap() <= 0.2,
            "{e}"
        );
        for o in e["outcomes"].as_array().unwrap() {
            let patient = o["patient"].as_str().unwrap();
            assert!(exacerbating.contains(&patient), "{o}");
        }
    }
    // Ten rounds at 07:00, 11:00, 15:00 and 19:00 on each of three days,
    // all delivered through the hub.
    let rounds = &r["accounting"]["by_device_kind"]["virtual_ward_round"];
    assert_eq!(n(&rounds["generated"]), 10 * 4 * 3, "{rounds}");

    // What went on the wire: every round charts the patient alert (0), on
    // room air (0 L/min) and on SpO2 scale 2, before the spot check it
    // goes with; the spot checks read 88-92 % around a stable patient.
    let t = Trace::of(file);
    t.check_against(&r);
    for p in 0..10 {
        let round = t.taken(&format!("copd-{p:03}/virtual_ward_round"));
        assert_eq!(round.len(), 12);
        for m in &round {
            assert_eq!(reading(m, Vital::Acvpu), Some(0.0), "{m:?}");
            assert_eq!(reading(m, Vital::O2Flow), Some(0.0), "{m:?}");
            assert_eq!(reading(m, Vital::Spo2Scale), Some(2.0), "{m:?}");
        }
        let spot = t.taken(&format!("copd-{p:03}/spot_oximeter"));
        assert_eq!(spot.len(), 12);
        for (m, s) in round.iter().zip(&spot) {
            assert_eq!(s.measured_ms - m.measured_ms, 5 * MIN);
        }
        if p >= 3 {
            let low = spot
                .iter()
                .filter_map(|m| reading(m, Vital::Spo2))
                .filter(|v| *v <= 91.0)
                .count();
            assert!(
                low > 0,
                "copd-{p:03}: never at or under 91 % (a red 3 on scale 1)"
            );
        }
    }

    // The control: the same patients without the nurse's round. Nothing
    // says scale 2, the backend scores scale 1, the stable patients page
    // and the run fails on its false-alert budget.
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let unscaled = text.replace("  { kind = \"virtual_ward_round\" },\n", "");
    assert_ne!(unscaled, text);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copd-unscaled.toml");
    std::fs::write(&path, unscaled).unwrap();
    let out = dir.path().join("out");
    let run = crate::common::medtwin(&[
        "run",
        path.to_str().unwrap(),
        "--clock",
        "virtual",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(
        run.status.code(),
        Some(0),
        "{}",
        crate::common::text(&run.stdout)
    );
    let control = report(&out);
    assert_eq!(control["verdict"], "fail");
    let e = &control["expectations"][0];
    assert!(
        e["false_alerts_per_patient_day"].as_f64().unwrap() > 0.2,
        "{e}"
    );
}
