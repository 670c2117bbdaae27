//! Same configuration and seed, same bytes; adding a cohort changes nobody
//! else's numbers.

use std::collections::BTreeMap;

use medtwin_sim::rng::stable_id;
use medtwin_sim::{
    CohortConfig, DeviceConfig, DeviceKind, NetworkConfig, PatientSelector, ProfileSpec, Shard,
    SimConfig, Twin,
};

/// FNV-1a over the debug text of every record of every step: a digest of
/// the whole truth log (f64 debug text is exact and stable).
fn digest(config: &SimConfig) -> (u64, u64) {
    let mut twin = Twin::new(config).unwrap();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut records = 0;
    while !twin.finished() {
        let out = twin.step();
        let text = format!(
            "{:?}{:?}{:?}{:?}",
            out.onsets, out.measurements, out.deliveries, out.losses
        );
        records +=
            (out.onsets.len() + out.measurements.len() + out.deliveries.len() + out.losses.len())
                as u64;
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (hash, records)
}

/// Everything one device produced, keyed by device name: (seq, measured,
/// readings) and (seq, delivered or lost).
fn per_device(config: &SimConfig) -> BTreeMap<String, Vec<String>> {
    let mut twin = Twin::new(config).unwrap();
    let names = twin.device_names().to_vec();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while !twin.finished() {
        let step = twin.step();
        for m in &step.measurements {
            out.entry(names[m.device_idx as usize].clone())
                .or_default()
                .push(format!(
                    "m {} {} {:?}",
                    m.seq,
                    m.measured_ms,
                    m.readings.as_slice()
                ));
        }
        for d in &step.deliveries {
            let m = &d.measurement;
            out.entry(names[m.device_idx as usize].clone())
                .or_default()
                .push(format!("d {} {}", m.seq, d.delivered_ms));
        }
        for l in &step.losses {
            out.entry(names[l.device_idx as usize].clone())
                .or_default()
                .push(format!("l {} {:?}", l.seq, l.cause));
        }
    }
    out
}

fn lossy_example() -> SimConfig {
    let mut config = SimConfig::example();
    config.cohorts[0].network = NetworkConfig {
        latency_median_ms: 40.0,
        latency_p99_ms: 2_500.0,
        loss_pct: 5.0,
        loss_burst: 4.0,
        gateway: None,
    };
    config
}

#[test]
fn same_seed_gives_identical_truth() {
    let config = lossy_example();
    let (a, n) = digest(&config);
    assert_eq!(digest(&config), (a, n));
    assert!(n > 7_000, "the run produced only {n} records");
    let mut other = config.clone();
    other.seed += 1;
    assert_ne!(digest(&other).0, a, "a different seed must change the run");
}

#[test]
fn adding_a_cohort_leaves_existing_patients_unchanged() {
    let alone = lossy_example();
    let mut crowded = alone.clone();
    // A new cohort *before* the existing one: shifts every index.
    crowded.cohorts.insert(
        0,
        CohortConfig {
            name: "icu".into(),
            count: 3,
            profile: ProfileSpec::healthy_adult(),
            devices: vec![DeviceConfig {
                every_ms: 1_000,
                ..DeviceConfig::of(DeviceKind::PulseOximeter)
            }],
            network: NetworkConfig::named("lte").unwrap(),
        },
    );
    crowded.events[0].who.cohort = 1;
    let before = per_device(&alone);
    let after = per_device(&crowded);
    assert_eq!(before.len(), 16);
    for (device, records) in &before {
        assert_eq!(
            after.get(device),
            Some(records),
            "{device} changed when a cohort was added"
        );
    }
    assert!(after.keys().any(|d| d.starts_with("icu-")));
}

#[test]
fn every_measurement_is_delivered_lost_or_in_flight() {
    let mut twin = Twin::new(&lossy_example()).unwrap();
    while !twin.finished() {
        twin.step();
    }
    let a = twin.accounting();
    assert!(a.lost_link > 0 && a.delivered > 0);
    assert_eq!(a.generated, a.delivered + a.lost() + a.in_flight);
}

#[test]
fn sepsis_moves_the_true_vitals_and_nobody_else() {
    let mut config = SimConfig::example();
    config.duration_ms = 80 * 60_000; // onset at 10 min + 1 h ramp + 10 min
    let mut twin = Twin::new(&config).unwrap();
    let before: Vec<_> = (0..4).map(|p| twin.vitals(p).unwrap()).collect();
    let mut onsets = Vec::new();
    while !twin.finished() {
        onsets.extend(twin.step().onsets.iter().copied());
    }
    assert_eq!(onsets.len(), 1);
    assert_eq!((onsets[0].patient_idx, onsets[0].onset_ms), (0, 600_000));
    let septic = twin.vitals(0).unwrap();
    // docs/references.md sepsis ramp at full severity: HR +45, RR +14, temp +2.5,
    // SBP -35, SpO2 -7 (within natural variability).
    assert!(septic.hr_bpm - before[0].hr_bpm > 30.0, "{septic:?}");
    assert!(septic.rr_bpm - before[0].rr_bpm > 9.0, "{septic:?}");
    assert!(septic.temp_c - before[0].temp_c > 2.0, "{septic:?}");
    assert!(before[0].sbp_mmhg - septic.sbp_mmhg > 22.0, "{septic:?}");
    assert!(before[0].spo2_pct - septic.spo2_pct > 5.0, "{septic:?}");
    for p in 1..4 {
        let v = twin.vitals(p).unwrap();
        assert!(
            (v.hr_bpm - before[p as usize].hr_bpm).abs() < 15.0,
            "patient {p}: {v:?}"
        );
        assert!(
            (v.temp_c - before[p as usize].temp_c).abs() < 0.5,
            "patient {p}: {v:?}"
        );
    }
}

/// Every record of a run, per step, as text naming the patient or device
/// by name, in the twin's output order.
fn named_steps(config: &SimConfig) -> Vec<Vec<(u64, String)>> {
    let mut twin = Twin::new(config).unwrap();
    let patients = twin.patient_names().to_vec();
    let devices = twin.device_names().to_vec();
    let p = |i: u32| patients[i as usize].clone();
    let d = |i: u32| devices[i as usize].clone();
    let mut steps = Vec::new();
    while !twin.finished() {
        let out = twin.step();
        let mut records = Vec::new();
        // (sort key, text): the key is what merging shards must sort by.
        for o in &out.onsets {
            let name = p(o.patient_idx);
            records.push((
                stable_id(&name),
                format!(
                    "onset {name} {:?} {} {}",
                    o.condition, o.onset_ms, o.severity
                ),
            ));
        }
        for e in &out.ends {
            let name = p(e.patient_idx);
            records.push((stable_id(&name), format!("end {name} {:?}", e.reason)));
        }
        for g in &out.interventions {
            let name = p(g.patient_idx);
            records.push((stable_id(&name), format!("given {name} {:?}", g.kind)));
        }
        for c in &out.criteria {
            let name = p(c.patient_idx);
            records.push((
                stable_id(&name),
                format!("criterion {name} {:?}", c.criterion),
            ));
        }
        for c in &out.states {
            let name = p(c.patient_idx);
            records.push((
                stable_id(&name),
                format!("state {name} {:?} {:?} {}", c.criterion, c.change, c.at_ms),
            ));
        }
        for m in &out.measurements {
            let name = d(m.device_idx);
            records.push((
                stable_id(&name),
                format!(
                    "m {name} {} {} {:?}",
                    m.seq,
                    m.measured_ms,
                    m.readings.as_slice()
                ),
            ));
        }
        for x in &out.deliveries {
            let name = d(x.measurement.device_idx);
            records.push((
                stable_id(&name),
                format!("d {name} {} {}", x.measurement.seq, x.delivered_ms),
            ));
        }
        for l in &out.losses {
            let name = d(l.device_idx);
            records.push((stable_id(&name), format!("l {name} {}", l.seq)));
        }
        steps.push(records);
    }
    steps
}

/// Devices with every quirk the twin models: a battery that runs low,
/// motion artifacts, clock drift, resends, duplicates and on-board memory
/// on the oximeter; an ECG patch with lead-off; a CGM.
fn quirky_devices() -> Vec<DeviceConfig> {
    use medtwin_sim::{ArtifactSpec, BatterySpec};
    let mut oximeter = DeviceConfig {
        every_ms: 1_000,
        battery_pct: 21.0,
        ..DeviceConfig::of(DeviceKind::PulseOximeter)
    };
    let spec = &mut oximeter.spec;
    spec.battery = Some(BatterySpec {
        capacity_mah: 10.0,
        idle_ua: 4_000.0,
        sample_uah: 0.05,
        transmit_uah: 0.2,
        low_pct: 20.0,
    });
    spec.motion = ArtifactSpec {
        per_hour: 20.0,
        mean_s: 20.0,
    };
    spec.clock_ppm = 50.0;
    spec.duplicate_pct = 5.0;
    spec.retries = 2;
    spec.retry_ms = 2_000;
    spec.memory = 100;
    let mut ecg = DeviceConfig::of(DeviceKind::EcgPatch);
    ecg.spec.lead_off = ArtifactSpec {
        per_hour: 6.0,
        mean_s: 60.0,
    };
    vec![oximeter, ecg, DeviceConfig::of(DeviceKind::Cgm)]
}

fn busy_example() -> SimConfig {
    use medtwin_sim::{ConditionKind, EventConfig, InterventionConfig, InterventionKind, Params};
    let mut config = lossy_example();
    config.cohorts[0].count = 9;
    config.cohorts.push(CohortConfig {
        name: "icu".into(),
        count: 5,
        profile: ProfileSpec::healthy_adult(),
        devices: quirky_devices(),
        network: NetworkConfig {
            gateway: Some(medtwin_sim::GatewayConfig {
                buffer: 120,
                eviction: medtwin_sim::Eviction::DropOldest,
                flush_per_s: 10.0,
                mtbf_ms: Some(15 * 60_000),
                mttr_ms: 2 * 60_000,
            }),
            ..NetworkConfig::named("lte").unwrap()
        },
    });
    let who = |cohort, end, pick| PatientSelector {
        cohort,
        first: 0,
        end,
        pick,
    };
    config.events.push(EventConfig {
        at_ms: 5 * 60_000,
        who: who(1, 5, Some(2)),
        condition: ConditionKind::OpioidRespiratoryDepression,
        severity: 1.0,
        ramp_ms: 10 * 60_000,
        duration_ms: None,
        params: Params::defaults(&[]),
    });
    config.faults.push(medtwin_sim::FaultConfig {
        at_ms: 12 * 60_000,
        who: who(0, 9, Some(4)),
        kind: medtwin_sim::FaultKind::NetworkOutage,
        device: None,
        duration_ms: 3 * 60_000,
    });
    config.faults.push(medtwin_sim::FaultConfig {
        at_ms: 8 * 60_000,
        who: who(1, 5, Some(3)),
        kind: medtwin_sim::FaultKind::Disconnect,
        device: Some("pulse_oximeter".into()),
        duration_ms: 4 * 60_000,
    });
    config.interventions.push(InterventionConfig {
        at_ms: 20 * 60_000,
        who: who(1, 5, None),
        kind: InterventionKind::Naloxone,
        params: Params::defaults(InterventionKind::Naloxone.params()),
        duration_ms: None,
    });
    config
}

/// Shard invariance: the shards of a population, run separately, give
/// exactly the records of one run, and merging each step's records by
/// (record kind, stable id) gives the unsharded order.
#[test]
fn shards_together_give_exactly_the_unsharded_run() {
    let config = busy_example();
    let whole = named_steps(&config);
    for count in [2u32, 3] {
        let shards: Vec<_> = (0..count)
            .map(|index| {
                let mut c = config.clone();
                c.shard = Shard { index, count };
                named_steps(&c)
            })
            .collect();
        assert_eq!(shards[0].len(), whole.len());
        for (step, expected) in whole.iter().enumerate() {
            let mut merged: Vec<(u64, String)> =
                shards.iter().flat_map(|s| s[step].clone()).collect();
            // Within one step the twin orders each record kind by (time,
            // stable id); merge the same way.
            let kind = |t: &str| t.split(' ').next().unwrap_or("").to_owned();
            let time_of = |t: &str| -> u64 {
                // Measurements carry their time; other kinds all happen at
                // the step's end, so ordering by stable id is enough.
                if t.starts_with("m ") {
                    t.split(' ')
                        .nth(3)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0)
                } else {
                    0
                }
            };
            let rank = |t: &str| match kind(t).as_str() {
                "onset" => 0,
                "end" => 1,
                "given" => 2,
                "criterion" => 3,
                "m" => 4,
                "d" => 5,
                _ => 6,
            };
            let mut expected_sorted = expected.clone();
            let key = |r: &(u64, String)| (rank(&r.1), time_of(&r.1), r.0, r.1.clone());
            merged.sort_by_key(key);
            expected_sorted.sort_by_key(key);
            assert_eq!(
                merged, expected_sorted,
                "step {step}, {count} shards: records differ"
            );
            // And the unsharded run's own order is exactly that merge order
            // for measurements (the kind whose order the transport sees).
            let ms = |v: &Vec<(u64, String)>| -> Vec<String> {
                v.iter()
                    .filter(|r| r.1.starts_with("m "))
                    .map(|r| r.1.clone())
                    .collect()
            };
            assert_eq!(ms(expected), ms(&merged), "step {step}: measurement order");
        }
    }
    let records: usize = whole.iter().map(Vec::len).sum();
    assert!(records > 20_000, "only {records} records");
    assert!(whole.iter().flatten().any(|r| r.1.starts_with("given ")));
    // Gateways held and flushed, and outages lost messages, in every split.
    assert!(whole.iter().flatten().any(|r| r.1.starts_with("l ")));
}
