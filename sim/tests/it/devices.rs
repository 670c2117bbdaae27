//! Devices as the twin runs them: each fault kind and quirk visibly changes
//! the delivered stream as specified, and the CGM meets its published
//! accuracy over a population-day.

use medtwin_sim::glucose::Metabolism;
use medtwin_sim::{
    CohortConfig, DeviceConfig, DeviceKind, DeviceTime, EventKind, FaultConfig, FaultKind,
    LossCause, Measurement, NetworkConfig, PatientSelector, ProfileSpec, Quality, Shard, SimConfig,
    TechAlarm, Twin, Vital,
};

const MIN: u64 = 60_000;

fn cohort(count: u32, devices: Vec<DeviceConfig>) -> CohortConfig {
    CohortConfig {
        name: "p".into(),
        count,
        profile: ProfileSpec::healthy_adult(),
        devices,
        network: NetworkConfig::IDEAL,
    }
}

fn config(step_ms: u64, duration_ms: u64, cohorts: Vec<CohortConfig>) -> SimConfig {
    SimConfig {
        seed: 21,
        step_ms,
        duration_ms,
        start_ms_of_day: 8 * 3_600_000,
        cohorts,
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

fn fault(kind: FaultKind, at_ms: u64, duration_ms: u64) -> FaultConfig {
    FaultConfig {
        at_ms,
        who: PatientSelector {
            cohort: 0,
            first: 0,
            end: 1,
            pick: None,
        },
        kind,
        device: None,
        duration_ms,
    }
}

/// Everything the run produced: measurements, deliveries (measurement,
/// sent, delivered, duplicate) and losses.
#[derive(Default)]
struct Run {
    measured: Vec<Measurement>,
    delivered: Vec<(Measurement, u64, u64, bool)>,
    lost: Vec<(u32, u64, LossCause)>,
    accounting: medtwin_sim::Accounting,
}

fn run(config: &SimConfig) -> Run {
    let mut twin = Twin::new(config).unwrap();
    let mut r = Run::default();
    while !twin.finished() {
        let out = twin.step();
        r.measured.extend(out.measurements.iter().copied());
        r.delivered.extend(
            out.deliveries
                .iter()
                .map(|d| (d.measurement, d.sent_ms, d.delivered_ms, d.duplicate)),
        );
        r.lost
            .extend(out.losses.iter().map(|l| (l.device_idx, l.seq, l.cause)));
    }
    r.accounting = twin.accounting();
    let a = r.accounting;
    assert_eq!(a.generated, a.delivered + a.lost() + a.pending(), "{a:?}");
    r
}

fn value(m: &Measurement, vital: Vital) -> Option<f64> {
    m.readings
        .as_slice()
        .iter()
        .find(|r| r.vital == vital)
        .map(|r| r.value)
}

#[test]
fn a_disconnected_device_keeps_its_readings_on_board_and_sends_them_on_reconnect() {
    let mut oximeter = DeviceConfig::of(DeviceKind::PulseOximeter);
    oximeter.spec.memory = 1_000;
    let mut forgetful = DeviceConfig::of(DeviceKind::Thermometer);
    forgetful.every_ms = 10_000;
    let mut c = config(1_000, 20 * MIN, vec![cohort(1, vec![oximeter, forgetful])]);
    c.faults
        .push(fault(FaultKind::Disconnect, 5 * MIN, 5 * MIN));
    let r = run(&c);
    // The oximeter (memory) loses nothing: its 300 readings from the
    // disconnection all leave at the reconnect, in order.
    let held: Vec<_> = r
        .delivered
        .iter()
        .filter(|d| d.0.device_idx == 0 && (5 * MIN..10 * MIN).contains(&d.0.measured_ms))
        .collect();
    assert_eq!(held.len(), 300);
    assert!(held.iter().all(|d| d.1 == 10 * MIN), "sent on reconnect");
    assert!(held.windows(2).all(|w| w[0].0.seq < w[1].0.seq));
    // The thermometer has no memory: what it took while disconnected is lost.
    let lost: Vec<_> = r.lost.iter().filter(|l| l.0 == 1).collect();
    assert_eq!(lost.len(), 30);
    assert!(lost.iter().all(|l| l.2 == LossCause::Disconnected));
}

#[test]
fn a_full_device_memory_drops_its_oldest_readings() {
    let mut oximeter = DeviceConfig::of(DeviceKind::PulseOximeter);
    oximeter.spec.memory = 100;
    let mut c = config(1_000, 10 * MIN, vec![cohort(1, vec![oximeter])]);
    c.faults.push(fault(FaultKind::Disconnect, MIN, 5 * MIN));
    let r = run(&c);
    assert_eq!(r.accounting.lost_outage, 200, "{:?}", r.accounting);
    let kept: Vec<u64> = r
        .delivered
        .iter()
        .filter(|d| (MIN..6 * MIN).contains(&d.0.measured_ms))
        .map(|d| d.0.measured_ms)
        .collect();
    assert_eq!(kept.len(), 100);
    assert!(kept[0] >= 6 * MIN - 100_000, "the newest are kept");
}

#[test]
fn wrong_unit_and_clock_reset_change_the_stream_only_while_they_last() {
    let thermometer = DeviceConfig {
        every_ms: MIN,
        ..DeviceConfig::of(DeviceKind::Thermometer)
    };
    let mut c = config(1_000, 30 * MIN, vec![cohort(1, vec![thermometer])]);
    c.faults.push(fault(FaultKind::WrongUnit, 5 * MIN, 5 * MIN));
    c.faults
        .push(fault(FaultKind::ClockReset, 15 * MIN, 5 * MIN));
    let r = run(&c);
    for m in &r.measured {
        let temp = value(m, Vital::Temp).unwrap();
        let wrong = (5 * MIN..10 * MIN).contains(&m.measured_ms);
        assert_eq!(m.quality == Quality::WrongUnit, wrong, "{m:?}");
        if wrong {
            assert!(
                (95.0..101.0).contains(&temp),
                "°F under a Cel label: {temp}"
            );
        } else {
            assert!((35.5..38.5).contains(&temp), "{temp}");
        }
        let reset = (15 * MIN..20 * MIN).contains(&m.measured_ms);
        match m.device_time {
            DeviceTime::SinceEpoch(ms) => {
                assert!(reset);
                assert_eq!(ms, m.measured_ms - 15 * MIN);
            }
            DeviceTime::Synced(ms) => {
                assert!(!reset);
                assert_eq!(ms, m.measured_ms as i64, "reference clocks do not drift");
            }
        }
    }
}

#[test]
fn an_occluded_pump_stops_and_alarms_after_its_detection_delay() {
    let mut pump = DeviceConfig::of(DeviceKind::InfusionPump);
    pump.spec.rate_ml_h = 125.0;
    pump.spec.alarm_delay_ms = 2 * MIN;
    let mut c = config(1_000, 30 * MIN, vec![cohort(2, vec![pump])]);
    c.faults
        .push(fault(FaultKind::Occlusion, 10 * MIN, 10 * MIN));
    let r = run(&c);
    let alarms: Vec<_> = r
        .measured
        .iter()
        .filter(|m| m.alarm == Some(TechAlarm::Occlusion))
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm, on the occluded pump");
    assert_eq!(alarms[0].patient_idx, 0);
    let at = alarms[0].measured_ms;
    assert!((12 * MIN..12 * MIN + MIN).contains(&at), "alarm at {at}");
    for m in &r.measured {
        let rate = value(m, Vital::InfusionRate).unwrap();
        let stopped = m.patient_idx == 0 && (10 * MIN..20 * MIN).contains(&m.measured_ms);
        assert_eq!(rate == 0.0, stopped, "{m:?}");
        if !stopped {
            assert_eq!(rate, 125.0);
        }
    }
}

#[test]
fn a_battery_warns_then_dies_and_every_reading_after_is_lost() {
    let mut oximeter = DeviceConfig {
        battery_pct: 25.0,
        ..DeviceConfig::of(DeviceKind::PulseOximeter)
    };
    oximeter.spec.battery = Some(medtwin_sim::BatterySpec {
        capacity_mah: 10.0,
        idle_ua: 10_000.0,
        sample_uah: 0.0,
        transmit_uah: 0.0,
        low_pct: 20.0,
    });
    // 2.5 mAh at 10 mA: 15 min; low (2 mAh left) after 3 min.
    let c = config(1_000, 30 * MIN, vec![cohort(1, vec![oximeter])]);
    let r = run(&c);
    let low: Vec<_> = r
        .measured
        .iter()
        .filter(|m| m.alarm == Some(TechAlarm::LowBattery))
        .map(|m| m.measured_ms)
        .collect();
    assert_eq!(low.len(), 1);
    assert!((3 * MIN..3 * MIN + 2_000).contains(&low[0]), "{low:?}");
    let dead: Vec<_> = r
        .lost
        .iter()
        .filter(|l| l.2 == LossCause::BatteryDead)
        .collect();
    let taken = r.delivered.len() as u64;
    assert!((899..=901).contains(&taken), "15 min of readings: {taken}");
    assert_eq!(dead.len() as u64 + taken, r.accounting.generated);
}

#[test]
fn motion_artifacts_read_low_and_are_marked_in_the_truth() {
    let mut oximeter = DeviceConfig::of(DeviceKind::PulseOximeter);
    oximeter.spec.motion = medtwin_sim::ArtifactSpec {
        per_hour: 6.0,
        mean_s: 30.0,
    };
    let c = config(1_000, 4 * 60 * MIN, vec![cohort(4, vec![oximeter])]);
    let r = run(&c);
    let spo2 = |q: Quality| -> Vec<f64> {
        r.measured
            .iter()
            .filter(|m| m.quality == q)
            .filter_map(|m| value(m, Vital::Spo2))
            .collect()
    };
    let moving = spo2(Quality::Motion);
    let still = spo2(Quality::Good);
    // 6/h × 30 s while awake (daytime): ~5 % of readings.
    let share = moving.len() as f64 / (moving.len() + still.len()) as f64;
    assert!((0.02..0.09).contains(&share), "motion share {share}");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&moving) < mean(&still) - 4.0, "false lows");
}

#[test]
fn dispensers_and_smart_pills_agree_on_the_doses_taken() {
    let times = vec![8 * 60, 20 * 60];
    let mut dispenser = DeviceConfig::of(DeviceKind::MedDispenser);
    dispenser.spec.times = times.clone();
    dispenser.spec.adherence_pct = 80.0;
    let mut pill = DeviceConfig::of(DeviceKind::SmartPill);
    pill.spec.times = times;
    pill.spec.adherence_pct = 80.0;
    let mut c = config(
        60_000,
        10 * 24 * 60 * MIN,
        vec![cohort(10, vec![dispenser, pill])],
    );
    c.start_ms_of_day = 0;
    let r = run(&c);
    let events = |kind: EventKind| {
        r.measured
            .iter()
            .filter(|m| m.event.is_some_and(|e| e.kind == kind))
            .collect::<Vec<_>>()
    };
    let taken = events(EventKind::DoseTaken);
    let missed = events(EventKind::DoseMissed);
    let ingested = events(EventKind::PillIngested);
    // 10 patients × 2 doses × 10 days.
    assert_eq!(taken.len() + missed.len(), 200);
    let missed_share = missed.len() as f64 / 200.0;
    assert!((0.12..0.28).contains(&missed_share), "{missed_share}");
    // Every dose taken is swallowed, and reported a few minutes later.
    assert_eq!(ingested.len(), taken.len());
    for t in &taken {
        let e = t.event.unwrap();
        assert!(t.measured_ms >= e.scheduled_ms && t.measured_ms < e.scheduled_ms + 60 * MIN);
        assert!(ingested.iter().any(|i| i.patient_idx == t.patient_idx
            && i.event.unwrap().scheduled_ms == e.scheduled_ms
            && i.measured_ms > t.measured_ms));
    }
    for m in &missed {
        assert_eq!(m.measured_ms, m.event.unwrap().scheduled_ms + 60 * MIN);
    }
}

/// The acceptance test: CGM readings against the true glucose over
/// a population-day give a MARD between 8 and 11 %.
#[test]
fn cgm_mard_over_a_population_day_is_within_published_range() {
    let profile = |metabolism| ProfileSpec {
        metabolism,
        ..ProfileSpec::healthy_adult()
    };
    let cgm = || {
        let mut d = DeviceConfig::of(DeviceKind::Cgm);
        d.spec.cgm.compression_per_night = 0.0;
        d
    };
    let cohorts = vec![
        CohortConfig {
            name: "t1".into(),
            profile: profile(Metabolism::Type1),
            ..cohort(50, vec![cgm()])
        },
        CohortConfig {
            name: "nd".into(),
            profile: profile(Metabolism::NonDiabetic),
            ..cohort(50, vec![cgm()])
        },
    ];
    let c = config(60_000, 24 * 60 * MIN, cohorts);
    let mut twin = Twin::new(&c).unwrap();
    let (mut sum, mut n) = (0.0, 0u32);
    while !twin.finished() {
        let out = twin.step().clone();
        for m in &out.measurements {
            let truth = twin.vitals(m.patient_idx).unwrap().glucose_mgdl;
            if let Some(g) = value(m, Vital::Glucose) {
                sum += (g - truth).abs() / truth;
                n += 1;
            }
        }
    }
    let mard = sum / f64::from(n);
    eprintln!("CGM MARD {:.2} % over {n} readings", mard * 100.0);
    // 100 sensors × 288 readings a day.
    assert!(n >= 28_000, "{n} readings");
    assert!((0.08..=0.11).contains(&mard), "MARD {:.2} %", mard * 100.0);
}
