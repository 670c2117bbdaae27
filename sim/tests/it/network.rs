//! The network as the backend sees it: bursty loss, gateways that store and
//! forward through outages, and an account of every measurement.

use std::collections::BTreeMap;

use medtwin_sim::{
    CohortConfig, DeviceConfig, DeviceKind, Eviction, FaultConfig, FaultKind, GatewayConfig,
    LossCause, NetworkConfig, PatientSelector, ProfileSpec, Shard, SimConfig, Twin,
};
use quickcheck::{Gen, QuickCheck, TestResult};

const MIN: u64 = 60_000;

fn ward(count: u32, network: NetworkConfig, duration_ms: u64) -> SimConfig {
    SimConfig {
        seed: 5,
        step_ms: 1_000,
        duration_ms,
        start_ms_of_day: 10 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "home".into(),
            count,
            profile: ProfileSpec::healthy_adult(),
            devices: vec![
                DeviceConfig {
                    every_ms: 1_000,
                    ..DeviceConfig::of(DeviceKind::PulseOximeter)
                },
                DeviceConfig {
                    every_ms: 5 * MIN,
                    ..DeviceConfig::of(DeviceKind::BpCuff)
                },
            ],
            network,
        }],
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

fn outage(at_ms: u64, duration_ms: u64, end: u32) -> FaultConfig {
    FaultConfig {
        at_ms,
        who: PatientSelector {
            cohort: 0,
            first: 0,
            end,
            pick: None,
        },
        kind: FaultKind::NetworkOutage,
        device: None,
        duration_ms,
    }
}

fn gateway(buffer: u32, eviction: Eviction) -> GatewayConfig {
    GatewayConfig {
        buffer,
        eviction,
        flush_per_s: 50.0,
        mtbf_ms: None,
        mttr_ms: 5 * MIN,
    }
}

/// What happened to each device's messages, by device index.
#[derive(Default, Debug)]
struct Fate {
    measured: Vec<(u64, u64)>,
    /// (seq, measured, sent, delivered)
    delivered: Vec<(u64, u64, u64, u64)>,
    /// Second copies: (seq, delivered).
    duplicates: Vec<(u64, u64)>,
    lost: Vec<(u64, LossCause, u64)>,
}

fn run(config: &SimConfig) -> (BTreeMap<u32, Fate>, medtwin_sim::Accounting) {
    let mut twin = Twin::new(config).unwrap();
    let mut fates: BTreeMap<u32, Fate> = BTreeMap::new();
    while !twin.finished() {
        let out = twin.step();
        for m in &out.measurements {
            fates
                .entry(m.device_idx)
                .or_default()
                .measured
                .push((m.seq, m.measured_ms));
        }
        for d in &out.deliveries {
            let m = &d.measurement;
            if d.duplicate {
                fates
                    .entry(m.device_idx)
                    .or_default()
                    .duplicates
                    .push((m.seq, d.delivered_ms));
                continue;
            }
            fates.entry(m.device_idx).or_default().delivered.push((
                m.seq,
                m.measured_ms,
                d.sent_ms,
                d.delivered_ms,
            ));
        }
        for l in &out.losses {
            fates
                .entry(l.device_idx)
                .or_default()
                .lost
                .push((l.seq, l.cause, l.lost_ms));
        }
    }
    (fates, twin.accounting())
}

#[test]
fn an_outage_with_room_in_the_buffer_loses_nothing_and_flushes_after_reconnect() {
    let net = NetworkConfig {
        gateway: Some(gateway(10_000, Eviction::DropOldest)),
        ..NetworkConfig::named("home_wifi").unwrap()
    };
    let net = NetworkConfig {
        loss_pct: 0.0,
        ..net
    };
    let mut config = ward(3, net, 40 * MIN);
    config.faults.push(outage(10 * MIN, 10 * MIN, 3));
    let (fates, acc) = run(&config);
    assert_eq!(acc.lost(), 0, "{acc:?}");
    assert_eq!(acc.generated, acc.delivered + acc.pending());
    for fate in fates.values() {
        let taken = fate
            .measured
            .iter()
            .filter(|m| (10 * MIN..20 * MIN).contains(&m.1))
            .count();
        let during: Vec<_> = fate
            .delivered
            .iter()
            .filter(|d| (10 * MIN..20 * MIN).contains(&d.1))
            .collect();
        // Every measurement taken during the outage arrives, all after the
        // reconnect, within the flush time: ~600 held at 50/s ≈ 12 s, plus
        // the hop's latency.
        assert_eq!(during.len(), taken);
        for d in &during {
            assert!(d.2 >= 20 * MIN, "sent during the outage: {d:?}");
            assert!(d.3 <= 20 * MIN + 15_000 + 5_000, "flushed late: {d:?}");
        }
    }
}

#[test]
fn a_full_buffer_evicts_by_its_policy_and_counts_the_losses() {
    for (eviction, keeps_newest) in [(Eviction::DropOldest, true), (Eviction::DropNewest, false)] {
        let net = NetworkConfig {
            gateway: Some(gateway(100, eviction)),
            ..NetworkConfig::IDEAL
        };
        let mut config = ward(1, net, 30 * MIN);
        config.faults.push(outage(5 * MIN, 10 * MIN, 1));
        let (fates, acc) = run(&config);
        let oxi = &fates[&0];
        let overflow: Vec<_> = oxi
            .lost
            .iter()
            .filter(|l| l.1 == LossCause::BufferOverflow)
            .collect();
        // ~600 oximeter readings and 2 cuff readings into 100 places.
        let held: usize = fates
            .values()
            .map(|f| {
                f.measured
                    .iter()
                    .filter(|m| (5 * MIN..15 * MIN).contains(&m.1))
                    .count()
            })
            .sum();
        assert_eq!(acc.lost_overflow, held as u64 - 100, "{acc:?}");
        assert!(overflow.len() >= 499, "{}", overflow.len());
        let kept: Vec<u64> = oxi
            .delivered
            .iter()
            .filter(|d| (5 * MIN..15 * MIN).contains(&d.1))
            .map(|d| d.1)
            .collect();
        assert!(kept.len() <= 100);
        let newest = *kept.iter().max().unwrap();
        if keeps_newest {
            assert!(newest >= 15 * MIN - 2_000, "drop_oldest keeps the latest");
        } else {
            assert!(newest < 7 * MIN, "drop_newest keeps the first");
        }
        assert_eq!(acc.generated, acc.delivered + acc.lost() + acc.pending());
    }
}

#[test]
fn an_outage_without_a_gateway_loses_what_is_sent_into_it() {
    let mut config = ward(2, NetworkConfig::IDEAL, 20 * MIN);
    config.faults.push(outage(5 * MIN, MIN, 2));
    let (_, acc) = run(&config);
    // 60 oximeter readings per patient, and no cuff reading falls in it
    // for sure; at least the 120.
    assert!(
        (120..=122).contains(&acc.lost_outage),
        "{}",
        acc.lost_outage
    );
    assert_eq!(acc.lost(), acc.lost_outage);
}

/// Over random topologies, device quirks and fault schedules: every
/// device's messages are each delivered, lost or still pending; without
/// resends they leave in the order they were taken (a gateway and a
/// device's memory forward first in, first out); a duplicate only ever
/// repeats a delivered message; nothing arrives before it was sent or is
/// sent before it was measured.
#[test]
fn every_message_is_accounted_for_and_leaves_in_order() {
    type Outage = (u16, u16);
    #[allow(clippy::too_many_arguments)] // quickcheck generates each argument
    fn prop(
        loss: u8,
        burst: u8,
        buffer: u16,
        newest: bool,
        mtbf: u16,
        outages: Vec<Outage>,
        quirks: u8,
        disconnects: Vec<Outage>,
    ) -> TestResult {
        let gateway = (!buffer.is_multiple_of(3)).then(|| GatewayConfig {
            buffer: u32::from(buffer % 700),
            eviction: if newest {
                Eviction::DropNewest
            } else {
                Eviction::DropOldest
            },
            flush_per_s: 5.0 + f64::from(buffer % 40),
            mtbf_ms: mtbf
                .is_multiple_of(2)
                .then_some(u64::from(mtbf % 60 + 1) * MIN),
            mttr_ms: u64::from(mtbf % 7 + 1) * MIN,
        });
        let net = NetworkConfig {
            latency_median_ms: 30.0,
            latency_p99_ms: 900.0,
            loss_pct: f64::from(loss % 30),
            loss_burst: 1.0 + f64::from(burst % 20),
            gateway,
        };
        let mut config = ward(3, net, 90 * MIN);
        for (at, len) in outages.into_iter().take(4) {
            config.faults.push(outage(
                u64::from(at % 80) * MIN,
                u64::from(len % 20 + 1) * MIN,
                3,
            ));
        }
        // The oximeter model's quirks: resends, duplicates, on-board memory.
        let retries = u32::from(quirks % 4);
        let oximeter = &mut config.cohorts[0].devices[0].spec;
        oximeter.retries = retries;
        oximeter.retry_ms = 1_500;
        oximeter.duplicate_pct = f64::from(quirks % 3) * 2.0;
        oximeter.memory = u32::from(quirks % 5) * 50;
        for (at, len) in disconnects.into_iter().take(3) {
            config.faults.push(FaultConfig {
                kind: FaultKind::Disconnect,
                device: Some("pulse_oximeter".to_owned()),
                ..outage(u64::from(at % 80) * MIN, u64::from(len % 10 + 1) * MIN, 2)
            });
        }
        let (fates, acc) = run(&config);
        if acc.generated != acc.delivered + acc.lost() + acc.pending() {
            return TestResult::error(format!("totals {acc:?}"));
        }
        let mut pending = 0;
        for (device, fate) in &fates {
            let n = fate.measured.len();
            let done = fate.delivered.len() + fate.lost.len();
            if done > n {
                return TestResult::error(format!("device {device}: {done} fates of {n}"));
            }
            pending += n - done;
            // Each seq ends at most once.
            let mut seqs: Vec<u64> = fate
                .delivered
                .iter()
                .map(|d| d.0)
                .chain(fate.lost.iter().map(|l| l.0))
                .collect();
            seqs.sort_unstable();
            if seqs.windows(2).any(|w| w[0] == w[1]) {
                return TestResult::error(format!("device {device}: a message ended twice"));
            }
            // Duplicates repeat a delivered message, and arrive after it.
            for &(seq, at) in &fate.duplicates {
                if !fate.delivered.iter().any(|d| d.0 == seq && d.3 <= at) {
                    return TestResult::error(format!("device {device}: stray duplicate {seq}"));
                }
            }
            let mut by_seq = fate.delivered.clone();
            by_seq.sort_unstable();
            let resends = device % 2 == 0 && retries > 0; // oximeters: even indices
            if !resends && by_seq.windows(2).any(|w| w[1].2 < w[0].2) {
                return TestResult::error(format!("device {device}: left out of order"));
            }
            if by_seq.iter().any(|d| !(d.1 <= d.2 && d.2 <= d.3)) {
                return TestResult::error(format!("device {device}: measured ≤ sent ≤ delivered"));
            }
        }
        if pending as u64 != acc.pending() {
            return TestResult::error(format!("pending {pending} vs {acc:?}"));
        }
        let duplicates: usize = fates.values().map(|f| f.duplicates.len()).sum();
        if duplicates as u64 != acc.duplicates {
            return TestResult::error(format!("duplicates {duplicates} vs {acc:?}"));
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(30, 0x006e_6574_776f_726b))
        .tests(40)
        .quickcheck(prop as fn(u8, u8, u16, bool, u16, Vec<Outage>, u8, Vec<Outage>) -> TestResult);
}

#[test]
fn device_faults_lose_or_freeze_what_the_device_reports() {
    let fault = |kind, device, at_ms, duration_ms| FaultConfig {
        at_ms,
        who: PatientSelector {
            cohort: 0,
            first: 0,
            end: 1,
            pick: None,
        },
        kind,
        device,
        duration_ms,
    };
    let mut config = ward(2, NetworkConfig::IDEAL, 30 * MIN);
    config.faults = vec![
        fault(
            FaultKind::SensorOff,
            Some("pulse_oximeter".to_owned()),
            5 * MIN,
            MIN,
        ),
        fault(FaultKind::BatteryDead, None, 10 * MIN, 2 * MIN),
        fault(
            FaultKind::StuckValue,
            Some("pulse_oximeter".to_owned()),
            20 * MIN,
            5 * MIN,
        ),
    ];
    let mut twin = Twin::new(&config).unwrap();
    let mut readings: BTreeMap<(u32, u64), String> = BTreeMap::new();
    let mut losses = Vec::new();
    let mut alarms = Vec::new();
    while !twin.finished() {
        let out = twin.step();
        for m in &out.measurements {
            readings.insert((m.device_idx, m.measured_ms), format!("{:?}", m.readings));
            if let Some(alarm) = m.alarm {
                alarms.push((m.device_idx, m.measured_ms, alarm));
            }
        }
        losses.extend(
            out.losses
                .iter()
                .map(|l| (l.device_idx, l.cause, l.lost_ms)),
        );
    }
    let acc = twin.accounting();
    // Patient 0's oximeter is device 0: a minute of sensor off (one
    // "sensor off" alarm, then 59 readings never taken) and two minutes of
    // dead battery (120) never taken; its cuff (device 1) may fall in the
    // dead battery too. Patient 1 untouched.
    assert_eq!(
        alarms,
        vec![(0, 5 * MIN, medtwin_sim::TechAlarm::SensorOff)]
    );
    let sensor_off = losses
        .iter()
        .filter(|l| l.1 == LossCause::SensorOff)
        .count();
    assert_eq!(sensor_off, 59);
    assert!(losses.iter().all(|l| l.0 <= 1), "patient 1 untouched");
    let dead = losses
        .iter()
        .filter(|l| l.1 == LossCause::BatteryDead && l.0 == 0)
        .count();
    assert_eq!(dead, 120);
    assert_eq!(acc.lost_device as usize, losses.len());
    assert_eq!(acc.generated, acc.delivered + acc.lost() + acc.pending());
    // Stuck: five minutes of the oximeter repeating one reading, and the
    // readings move again afterwards.
    let stuck: std::collections::BTreeSet<&String> = readings
        .range((0, 20 * MIN)..(0, 25 * MIN))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let after: std::collections::BTreeSet<&String> = readings
        .range((0, 25 * MIN)..(0, 30 * MIN))
        .map(|(_, r)| r)
        .collect();
    assert!(after.len() > 3);
}

#[test]
fn every_named_profile_runs_and_the_ambulance_router_rides_out_handovers() {
    for (name, net) in NetworkConfig::PROFILES {
        let config = ward(2, net, 45 * MIN);
        let (fates, acc) = run(&config);
        assert_eq!(
            acc.generated,
            acc.delivered + acc.lost() + acc.pending(),
            "{name}"
        );
        if name == "ambulance" {
            // Handover gaps: some messages waited in the router, none
            // overflowed it.
            let held = fates
                .values()
                .flat_map(|f| f.delivered.iter())
                .filter(|d| d.2 > d.1)
                .count();
            assert!(held > 0, "no handover in 45 min");
            assert_eq!(acc.lost_overflow, 0);
        }
    }
}
