//! Same configuration and seed, same bytes; adding a cohort changes nobody
//! else's numbers.

use std::collections::BTreeMap;

use medtwin_sim::{
    CohortConfig, DeviceConfig, DeviceKind, NetworkConfig, ProfileSpec, SimConfig, Twin,
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
                kind: DeviceKind::PulseOximeter,
                every_ms: 1_000,
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
    // REFERENCE.md sepsis ramp at full severity: HR +45, RR +14, temp +2.5,
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
