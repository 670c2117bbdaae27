//! Validation of the patient model against published numbers
//! (`docs/references.md` and the sources cited in `sim/src`): healthy
//! populations, the haemorrhage curve, each condition's course and each
//! intervention's reversal, and physical bounds under any mix.

use medtwin_sim::glucose::Metabolism;
use medtwin_sim::{
    Acvpu, CohortConfig, ConditionKind, Criterion, EndReason, EventConfig, InterventionConfig,
    InterventionKind, NetworkConfig, Params, PatientSelector, ProfileSpec, Rhythm, Shard,
    SimConfig, Spread, Twin, Vitals,
};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn all(count: u32) -> PatientSelector {
    PatientSelector {
        cohort: 0,
        first: 0,
        end: count,
        pick: None,
    }
}

fn event(kind: ConditionKind, at_ms: u64, count: u32) -> EventConfig {
    EventConfig {
        at_ms,
        who: all(count),
        condition: kind,
        severity: 1.0,
        ramp_ms: kind.default_ramp_ms(),
        duration_ms: None,
        params: Params::defaults(kind.params()),
    }
}

fn give(kind: InterventionKind, at_ms: u64, count: u32) -> InterventionConfig {
    InterventionConfig {
        at_ms,
        who: all(count),
        kind,
        params: Params::defaults(kind.params()),
        duration_ms: None,
    }
}

fn config(profile: ProfileSpec, count: u32, duration_ms: u64, step_ms: u64) -> SimConfig {
    SimConfig {
        seed: 11,
        step_ms,
        duration_ms,
        // Mid-afternoon: no sleep transition in short tests.
        start_ms_of_day: 14 * HOUR,
        cohorts: vec![CohortConfig {
            name: "p".into(),
            count,
            profile,
            devices: Vec::new(),
            network: NetworkConfig::IDEAL,
        }],
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

fn copd() -> ProfileSpec {
    ProfileSpec {
        name: "copd".into(),
        spo2: Spread {
            mean: 90.0,
            sd: 1.2,
            min: 88.0,
            max: 92.5,
        },
        spo2_scale: 2,
        rr: Spread {
            mean: 18.0,
            sd: 2.0,
            min: 14.0,
            max: 20.0,
        },
        hr: Spread {
            mean: 84.0,
            sd: 8.0,
            min: 65.0,
            max: 98.0,
        },
        etco2: Spread {
            mean: 47.0,
            sd: 3.0,
            min: 42.0,
            max: 54.0,
        },
        ..ProfileSpec::healthy_adult()
    }
}

fn type1() -> ProfileSpec {
    ProfileSpec {
        name: "type1".into(),
        metabolism: Metabolism::Type1,
        glucose: Spread {
            mean: 115.0,
            sd: 10.0,
            min: 95.0,
            max: 135.0,
        },
        meals: Vec::new(),
        ..ProfileSpec::healthy_adult()
    }
}

/// Runs `config`, calling `each` with (time, every patient's vitals) after
/// every step, and returns every step's truth records concatenated.
fn run(config: &SimConfig, mut each: impl FnMut(u64, &[Vitals])) -> medtwin_sim::StepOutput {
    let mut twin = Twin::new(config).unwrap();
    let n: u32 = config.cohorts.iter().map(|c| c.count).sum();
    let mut log = medtwin_sim::StepOutput::default();
    let mut vitals = Vec::with_capacity(n as usize);
    while !twin.finished() {
        let out = twin.step();
        log.onsets.extend_from_slice(&out.onsets);
        log.ends.extend_from_slice(&out.ends);
        log.interventions.extend_from_slice(&out.interventions);
        log.criteria.extend_from_slice(&out.criteria);
        vitals.clear();
        vitals.extend((0..n).map(|p| twin.vitals(p).unwrap()));
        each(twin.now_ms(), &vitals);
    }
    log
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for x in xs {
        sum += x;
        n += 1.0;
    }
    sum / n
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    percentile(&xs, 50.0)
}

/// docs/references.md validation ranges, for a healthy adult population over a
/// day: the 2.5th-97.5th percentile of patients' own 24-h medians lies in
/// the range for every vital, so does the population median; the core
/// temperature swings about ±0.5 °C with its low near 04:00; BP dips at night.
#[test]
fn healthy_adults_over_24_hours_stay_in_the_validation_ranges() {
    let n = 1_000u32;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 24 * HOUR, 10_000);
    cfg.start_ms_of_day = 0;
    // Samples every 5 min of each vital, per patient.
    type Check = (&'static str, fn(&Vitals) -> f64, f64, f64);
    let vitals: [Check; 8] = [
        ("HR", |v| v.hr_bpm, 60.0, 100.0),
        ("SBP", |v| v.sbp_mmhg, 100.0, 140.0),
        ("DBP", |v| v.dbp_mmhg, 60.0, 90.0),
        ("MAP", |v| v.map_mmhg(), 70.0, 105.0),
        ("RR", |v| v.rr_bpm, 12.0, 20.0),
        ("SpO2", |v| v.spo2_pct, 96.0, 100.0),
        ("EtCO2", |v| v.etco2_mmhg, 35.0, 45.0),
        ("glucose", |v| v.glucose_mgdl, 65.0, 139.0),
    ];
    let mut samples = vec![vec![Vec::new(); n as usize]; vitals.len()];
    let mut temp_by_hour = [0.0f64; 24];
    let mut sbp_day = (0.0, 0.0);
    let mut sbp_night = (0.0, 0.0);
    run(&cfg, |now, all| {
        if now % (5 * MIN) != 0 {
            return;
        }
        let hour = ((now / HOUR) % 24) as usize;
        for (p, v) in all.iter().enumerate() {
            for (k, (_, get, _, _)) in vitals.iter().enumerate() {
                samples[k][p].push(get(v));
            }
        }
        temp_by_hour[hour] += mean(all.iter().map(|v| v.temp_c)) / 12.0;
        let sbp = mean(all.iter().map(|v| v.sbp_mmhg));
        if (1..6).contains(&hour) {
            sbp_night = (sbp_night.0 + sbp, sbp_night.1 + 1.0);
        } else if (9..21).contains(&hour) {
            sbp_day = (sbp_day.0 + sbp, sbp_day.1 + 1.0);
        }
    });
    for (k, (name, _, lo, hi)) in vitals.iter().enumerate() {
        let mut medians: Vec<f64> = samples[k].iter().map(|s| median(s.clone())).collect();
        medians.sort_by(f64::total_cmp);
        let (p2, p50, p97) = (
            percentile(&medians, 2.5),
            percentile(&medians, 50.0),
            percentile(&medians, 97.5),
        );
        eprintln!(
            "{name}: patient medians p2.5 {p2:.1}, p50 {p50:.1}, p97.5 {p97:.1} (range {lo}-{hi})"
        );
        assert!(
            *lo <= p2 && p97 <= *hi && (*lo..=*hi).contains(&p50),
            "{name}: 95 % of patient medians in {p2:.1}..{p97:.1} (median {p50:.1}), outside {lo}..{hi}"
        );
    }
    let (max, min) = temp_by_hour
        .iter()
        .fold((f64::MIN, f64::MAX), |(a, b), &t| (a.max(t), b.min(t)));
    let swing = max - min;
    assert!(
        (0.8..=1.2).contains(&swing),
        "circadian temperature swing {swing:.2} °C, expected about ±0.5"
    );
    let low_hour = temp_by_hour
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(h, _)| h)
        .unwrap();
    assert!(
        (3..=5).contains(&low_hour),
        "temperature low at {low_hour}:00"
    );
    let dip = 1.0 - (sbp_night.0 / sbp_night.1) / (sbp_day.0 / sbp_day.1);
    eprintln!(
        "temperature swing {swing:.2} °C, low at {low_hour}:00; SBP night dip {:.1} %",
        dip * 100.0
    );
    assert!(
        (0.08..=0.2).contains(&dip),
        "night-time SBP dip {:.1} %",
        dip * 100.0
    );
}

/// Pulse's haemorrhage validation data (docs/references.md): MAP ~101/98/65/41 %
/// and cardiac output ~97/81/54/29 % of baseline at 10/20/30/40 % blood
/// volume lost, within ±10 percentage points; HR in the ATLS classes.
#[test]
fn haemorrhage_follows_the_published_curve() {
    let n = 40;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 3 * HOUR, 1_000);
    // 40 % over 40 min: 1 % a minute, from 60 min.
    let mut bleed = event(ConditionKind::Haemorrhage, HOUR, n);
    bleed.params.0[0] = 40.0;
    bleed.ramp_ms = 40 * MIN;
    cfg.events.push(bleed);
    let mut base = (vec![0.0; n as usize], vec![0.0; n as usize], 0.0);
    let marks = [10u64, 20, 30, 40];
    let mut at_marks = vec![(0.0, 0.0, 0.0, 0.0); marks.len()];
    run(&cfg, |now, all| {
        if (50 * MIN..60 * MIN).contains(&now) {
            for (p, v) in all.iter().enumerate() {
                base.0[p] += v.map_mmhg();
                base.1[p] += f64::from(v.co_lpm);
            }
            base.2 += 1.0;
        }
        for (i, m) in marks.iter().enumerate() {
            let t = HOUR + m * MIN;
            if now.abs_diff(t) <= 30_000 {
                let map_pct = mean(
                    all.iter()
                        .enumerate()
                        .map(|(p, v)| 100.0 * v.map_mmhg() / (base.0[p] / base.2)),
                );
                let co_pct = mean(
                    all.iter()
                        .enumerate()
                        .map(|(p, v)| 100.0 * f64::from(v.co_lpm) / (base.1[p] / base.2)),
                );
                let hr = mean(all.iter().map(|v| v.hr_bpm));
                let e = &mut at_marks[i];
                *e = (e.0 + map_pct, e.1 + co_pct, e.2 + hr, e.3 + 1.0);
            }
        }
    });
    let map_ref = [101.0, 98.0, 65.0, 41.0];
    let co_ref = [97.0, 81.0, 54.0, 29.0];
    for (i, (map, co, hr, k)) in at_marks.iter().enumerate() {
        let (map, co, hr) = (map / k, co / k, hr / k);
        eprintln!(
            "{} % lost: MAP {map:.0} % (published {}), CO {co:.0} % (published {}), HR {hr:.0}",
            marks[i], map_ref[i], co_ref[i]
        );
        assert!(
            (map - map_ref[i]).abs() <= 10.0,
            "{} % lost: MAP {map:.0} % of baseline, published {}",
            marks[i],
            map_ref[i]
        );
        assert!(
            (co - co_ref[i]).abs() <= 10.0,
            "{} % lost: CO {co:.0} %, published {}",
            marks[i],
            co_ref[i]
        );
        // ATLS: 15-30 % HR 100-120, 30-40 % HR 120-140.
        if marks[i] == 30 {
            assert!((105.0..=130.0).contains(&hr), "HR at 30 % lost {hr:.0}");
        }
        if marks[i] == 40 {
            assert!((120.0..=150.0).contains(&hr), "HR at 40 % lost {hr:.0}");
        }
    }
}

/// Mean of `get` over every patient at (about) `at`, averaged over ±30 s.
fn mean_at(
    cfg: &SimConfig,
    at: &[u64],
    get: impl Fn(&Vitals) -> f64,
) -> (Vec<f64>, medtwin_sim::StepOutput) {
    let mut acc = vec![(0.0, 0.0); at.len()];
    let log = run(cfg, |now, all| {
        for (i, t) in at.iter().enumerate() {
            if now.abs_diff(*t) <= 30_000 {
                acc[i].0 += mean(all.iter().map(&get));
                acc[i].1 += 1.0;
            }
        }
    });
    (acc.iter().map(|(s, k)| s / k).collect(), log)
}

#[test]
fn sepsis_reaches_the_reference_picture_by_the_end_of_its_ramp() {
    let n = 30;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 7 * HOUR, 5_000);
    cfg.events.push(event(ConditionKind::Sepsis, 30 * MIN, n));
    let end = 30 * MIN + 6 * HOUR;
    let (hr, _) = mean_at(&cfg, &[20 * MIN, end], |v| v.hr_bpm);
    let (rr, _) = mean_at(&cfg, &[end], |v| v.rr_bpm);
    let (temp, _) = mean_at(&cfg, &[end], |v| v.temp_c);
    let (sbp, _) = mean_at(&cfg, &[end], |v| v.sbp_mmhg);
    let (spo2, log) = mean_at(&cfg, &[end], |v| v.spo2_pct);
    // docs/references.md: HR 80→125, RR 14→28, 37→39.5 °C, SBP 120→85, SpO2 97→90.
    assert!(hr[1] - hr[0] >= 40.0 && hr[1] >= 110.0, "HR {hr:?}");
    assert!((25.0..=33.0).contains(&rr[0]), "RR {rr:?}");
    assert!((38.8..=40.0).contains(&temp[0]), "temp {temp:?}");
    assert!((75.0..=92.0).contains(&sbp[0]), "SBP {sbp:?}");
    assert!((87.0..=93.0).contains(&spo2[0]), "SpO2 {spo2:?}");
    // The truth log holds the onset and, for every patient, the first
    // moments of NEWS2 ≥ 5, ≥ 7 and qSOFA ≥ 2 after it.
    assert_eq!(log.onsets.len(), n as usize);
    for criterion in [
        Criterion::News2Medium,
        Criterion::News2High,
        Criterion::Qsofa,
    ] {
        let count = log
            .criteria
            .iter()
            .filter(|c| c.criterion == criterion && c.at_ms > 30 * MIN)
            .count();
        assert_eq!(count, n as usize, "{criterion:?}");
    }
}

#[test]
fn atrial_fibrillation_is_fast_irregular_and_paroxysmal() {
    let n = 10;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 3 * HOUR, 1_000);
    let mut af = event(ConditionKind::AtrialFibrillation, 30 * MIN, n);
    af.duration_ms = Some(HOUR);
    cfg.events.push(af);
    let mut diffs = [(0.0, 0.0); 2];
    let mut prev: Option<Vec<f64>> = None;
    let mut rhythm_during = true;
    let mut hr_during = Vec::new();
    let mut hr_after = Vec::new();
    let log = run(&cfg, |now, all| {
        let hr: Vec<f64> = all.iter().map(|v| v.hr_bpm).collect();
        let phase = if now < 30 * MIN {
            Some(0)
        } else if (35 * MIN..85 * MIN).contains(&now) {
            Some(1)
        } else {
            None
        };
        if let (Some(phase), Some(p)) = (phase, &prev) {
            for (a, b) in hr.iter().zip(p) {
                // Successive 1-s beat intervals, ms: RMSSD-like irregularity.
                let d = 60_000.0 / a - 60_000.0 / b;
                diffs[phase].0 += d * d;
                diffs[phase].1 += 1.0;
            }
        }
        if (35 * MIN..85 * MIN).contains(&now) {
            rhythm_during &= all.iter().all(|v| v.rhythm == Rhythm::Af);
            hr_during.push(mean(hr.iter().copied()));
        }
        if (95 * MIN..120 * MIN).contains(&now) {
            hr_after.push(mean(hr.iter().copied()));
        }
        prev = Some(hr);
    });
    let rmssd = |(s, k): (f64, f64)| (s / k).sqrt();
    let (sinus, af) = (rmssd(diffs[0]), rmssd(diffs[1]));
    assert!(rhythm_during, "rhythm is AF throughout the paroxysm");
    // docs/references.md: uncontrolled rate 110-160, RMSSD far above sinus.
    let during = mean(hr_during);
    assert!((110.0..=165.0).contains(&during), "AF rate {during:.0}");
    assert!(
        af > 3.0 * sinus,
        "RMSSD AF {af:.0} ms vs sinus {sinus:.0} ms"
    );
    let after = mean(hr_after);
    assert!(after < 95.0, "back in sinus at {after:.0}/min");
    assert_eq!(log.ends.len(), n as usize);
    assert!(log.ends.iter().all(|e| e.reason == EndReason::Duration));
}

#[test]
fn rate_control_brings_af_under_110_within_30_minutes() {
    let n = 10;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 2 * HOUR, 1_000);
    cfg.events
        .push(event(ConditionKind::AtrialFibrillation, 10 * MIN, n));
    cfg.interventions
        .push(give(InterventionKind::RateControl, 30 * MIN, n));
    let (hr, _) = mean_at(&cfg, &[25 * MIN, 60 * MIN], |v| v.hr_bpm);
    assert!(hr[0] >= 140.0, "uncontrolled {hr:?}");
    assert!(hr[1] < 110.0, "controlled {hr:?}");
}

#[test]
fn opioid_depression_meets_prodigy_and_naloxone_reverses_it_then_wears_off() {
    let n = 10;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 4 * HOUR, 1_000);
    cfg.events.push(event(
        ConditionKind::OpioidRespiratoryDepression,
        30 * MIN,
        n,
    ));
    cfg.interventions
        .push(give(InterventionKind::Naloxone, 60 * MIN, n));
    let t = [55 * MIN, 65 * MIN, 150 * MIN];
    let (rr, log) = mean_at(&cfg, &t, |v| v.rr_bpm);
    let (etco2, _) = mean_at(&cfg, &t, |v| v.etco2_mmhg);
    let (spo2, _) = mean_at(&cfg, &t, |v| v.spo2_pct);
    let (acvpu, _) = mean_at(&cfg, &t, |v| v.acvpu as u8 as f64);
    // PRODIGY: RR ≤ 5, EtCO2 ≥ 60; SpO2 falls; sedation.
    assert!(rr[0] <= 5.0, "RR {rr:?}");
    assert!(etco2[0] >= 60.0, "EtCO2 {etco2:?}");
    assert!(spo2[0] <= 93.0, "SpO2 {spo2:?}");
    assert!(acvpu[0] >= Acvpu::Pain as u8 as f64, "ACVPU {acvpu:?}");
    // Naloxone: RR back to ≥ 10 within 5 min.
    assert!(rr[1] >= 10.0, "after naloxone {rr:?}");
    assert!(etco2[1] < 50.0, "after naloxone {etco2:?}");
    // It wears off before the opioid does: re-narcotisation.
    assert!(rr[2] <= 6.0, "re-narcotised {rr:?}");
    assert_eq!(
        log.criteria
            .iter()
            .filter(|c| c.criterion == Criterion::RespiratoryDepression)
            .count(),
        n as usize
    );
    assert_eq!(log.interventions.len(), n as usize);
}

#[test]
fn copd_exacerbation_and_oxygen() {
    let n = 20;
    let mut cfg = config(copd(), n, 8 * HOUR, 5_000);
    let mut flare = event(ConditionKind::CopdExacerbation, 30 * MIN, n);
    flare.ramp_ms = 4 * HOUR;
    cfg.events.push(flare);
    let mut o2 = give(InterventionKind::Oxygen, 5 * HOUR, n);
    o2.params.0[0] = 1.0;
    cfg.interventions.push(o2);
    let t = [20 * MIN, 4 * HOUR + 55 * MIN, 5 * HOUR + 5 * MIN];
    let (spo2, _) = mean_at(&cfg, &t, |v| v.spo2_pct);
    let (rr, _) = mean_at(&cfg, &t, |v| v.rr_bpm);
    let (hr, _) = mean_at(&cfg, &t, |v| v.hr_bpm);
    let (etco2, _) = mean_at(&cfg, &t, |v| v.etco2_mmhg);
    // docs/references.md: RR ≥ 24, HR ≥ 95, SpO2 drop > 3 points, PaCO2 > 45.
    assert!(rr[1] >= 24.0, "RR {rr:?}");
    assert!(hr[1] >= 95.0, "HR {hr:?}");
    assert!(spo2[0] - spo2[1] > 3.0, "SpO2 {spo2:?}");
    assert!(etco2[1] > 45.0, "EtCO2 {etco2:?}");
    // 1 L/min oxygen brings SpO2 back towards the 88-92 % target within
    // minutes; it does nothing for the CO2.
    assert!(spo2[2] - spo2[1] >= 3.0, "on O2 {spo2:?}");
    assert!((86.0..=95.0).contains(&spo2[2]), "on O2 {spo2:?}");
    assert!((etco2[2] - etco2[1]).abs() < 3.0, "EtCO2 on O2 {etco2:?}");
}

#[test]
fn hypertensive_crisis_and_a_gentle_antihypertensive() {
    let n = 20;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 4 * HOUR, 5_000);
    cfg.events
        .push(event(ConditionKind::HypertensiveCrisis, 30 * MIN, n));
    cfg.interventions
        .push(give(InterventionKind::Antihypertensive, 2 * HOUR, n));
    let (sbp, _) = mean_at(&cfg, &[2 * HOUR - MIN, 3 * HOUR], |v| v.sbp_mmhg);
    assert!(sbp[0] > 180.0, "crisis {sbp:?}");
    let fall = 1.0 - sbp[1] / sbp[0];
    // ACC/AHA 2017: by no more than 25 % in the first hour, but clearly.
    assert!(
        (0.10..=0.25).contains(&fall),
        "fall {:.0} % {sbp:?}",
        fall * 100.0
    );
}

#[test]
fn septic_hypotension_answers_vasopressor_fluids_antipyretic_and_antibiotics() {
    let n = 20;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 45 * HOUR, 10_000);
    let mut sepsis = event(ConditionKind::Sepsis, 0, n);
    sepsis.ramp_ms = 2 * HOUR;
    cfg.events.push(sepsis);
    cfg.interventions
        .push(give(InterventionKind::Antipyretic, 3 * HOUR, n));
    cfg.interventions
        .push(give(InterventionKind::IvFluids, 4 * HOUR, n));
    let mut press = give(InterventionKind::Vasopressor, 6 * HOUR, n);
    press.duration_ms = Some(6 * HOUR);
    cfg.interventions.push(press);
    cfg.interventions
        .push(give(InterventionKind::Antibiotics, 6 * HOUR, n));
    let t = [
        3 * HOUR,
        4 * HOUR + 30 * MIN,
        6 * HOUR,
        6 * HOUR + 20 * MIN,
        // 10:00 two days on: awake, so no night-time dip.
        44 * HOUR,
    ];
    let (temp, _) = mean_at(&cfg, &t, |v| v.temp_c);
    let (map, _) = mean_at(&cfg, &t, |v| v.map_mmhg());
    let (hr, log) = mean_at(&cfg, &t, |v| v.hr_bpm);
    // Untreated at 3 h: shocked, febrile.
    assert!(map[0] < 70.0 && temp[0] > 39.0, "MAP {map:?} temp {temp:?}");
    // Paracetamol: ~1 °C off the fever within ~1.5 h, HR with it.
    assert!(temp[0] - temp[1] >= 0.6, "temp {temp:?}");
    assert!(hr[0] - hr[1] >= 4.0, "HR {hr:?}");
    // Fluids lift MAP while they run.
    assert!(map[1] > map[0] + 2.0, "fluids {map:?}");
    // Noradrenaline: MAP ≥ 65 within 20 min (Surviving Sepsis Campaign).
    assert!(map[3] >= 64.0, "vasopressor {map:?}");
    // Antibiotics: resolved within about a day and a half.
    assert!(
        map[4] >= 80.0 && hr[4] < 90.0,
        "resolved MAP {map:?} HR {hr:?}"
    );
    assert_eq!(
        log.ends
            .iter()
            .filter(|e| e.reason == EndReason::Treated)
            .count(),
        n as usize
    );
}

#[test]
fn glucose_conditions_and_their_treatments() {
    let n = 10;
    // Insulin excess in type 1: below 70 (ADA level 1), then 15 g glucose.
    let mut cfg = config(type1(), n, 6 * HOUR, 5_000);
    let mut hypo = event(ConditionKind::Hypoglycaemia, 30 * MIN, n);
    hypo.params.0[1] = 5.0;
    cfg.events.push(hypo);
    let mut rescue = give(InterventionKind::Glucose, 2 * HOUR, n);
    rescue.params.0[0] = 20.0;
    cfg.interventions.push(rescue);
    let mut lowest = f64::MAX;
    let mut confused = false;
    let mut hr_low = 0.0;
    let log = run(&cfg, |now, all| {
        let g = mean(all.iter().map(|v| v.glucose_mgdl));
        if now < 2 * HOUR {
            lowest = lowest.min(g);
        }
        confused |= all
            .iter()
            .any(|v| v.glucose_mgdl < 54.0 && v.acvpu >= Acvpu::Confused);
        if now == 2 * HOUR {
            hr_low = mean(all.iter().map(|v| v.hr_bpm));
        }
    });
    assert!(lowest < 70.0, "lowest {lowest:.0} mg/dL");
    assert!(confused, "neuroglycopenia under 54 mg/dL");
    assert!(hr_low > 80.0, "adrenergic HR {hr_low:.0}");
    let c1 = log
        .criteria
        .iter()
        .filter(|c| c.criterion == Criterion::HypoglycaemiaLevel1)
        .count();
    assert_eq!(c1, n as usize);
    let (g, _) = mean_at(&cfg, &[2 * HOUR - MIN, 2 * HOUR + 20 * MIN], |v| {
        v.glucose_mgdl
    });
    assert!(g[1] - g[0] >= 30.0, "rule of 15: {g:?}");

    // Missed insulin: above 250 within 12 h; insulin brings it down.
    let mut cfg = config(type1(), n, 16 * HOUR, 10_000);
    cfg.events
        .push(event(ConditionKind::Hyperglycaemia, 30 * MIN, n));
    let mut fix = give(InterventionKind::Insulin, 12 * HOUR, n);
    fix.params.0[0] = 10.0;
    cfg.interventions.push(fix);
    let (g, _) = mean_at(&cfg, &[12 * HOUR, 15 * HOUR], |v| v.glucose_mgdl);
    assert!(g[0] > 250.0, "missed insulin {g:?}");
    assert!(g[1] < g[0] - 60.0, "insulin {g:?}");

    // A meal with its matched bolus peaks 150-230 mg/dL 45-90 min later.
    let mut cfg = config(type1(), n, 5 * HOUR, 10_000);
    let mut meal = give(InterventionKind::Meal, HOUR, n);
    meal.params.0[0] = 60.0;
    cfg.interventions.push(meal);
    let mut trace = Vec::new();
    run(&cfg, |now, all| {
        trace.push((now, mean(all.iter().map(|v| v.glucose_mgdl))))
    });
    let (at, peak) = trace
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!((150.0..=230.0).contains(&peak), "peak {peak:.0}");
    assert!(
        (HOUR + 45 * MIN..=HOUR + 90 * MIN).contains(&at),
        "peak at {} min",
        (at - HOUR) / MIN
    );
}

#[test]
fn cardiac_arrest_cpr_and_defibrillation() {
    let n = 200;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, HOUR, 1_000);
    cfg.events
        .push(event(ConditionKind::CardiacArrest, 10 * MIN, n));
    let mut cpr = give(InterventionKind::Cpr, 12 * MIN, n);
    cpr.duration_ms = Some(20 * MIN);
    cfg.interventions.push(cpr);
    cfg.interventions
        .push(give(InterventionKind::Defibrillation, 14 * MIN, n));
    let t = [11 * MIN, 13 * MIN];
    let (hr, _) = mean_at(&cfg, &t, |v| v.hr_bpm);
    let (map, _) = mean_at(&cfg, &t, |v| v.map_mmhg());
    let (etco2, _) = mean_at(&cfg, &t, |v| v.etco2_mmhg);
    let (acvpu, log) = mean_at(&cfg, &t, |v| v.acvpu as u8 as f64);
    // docs/references.md: pulse and BP vanish, EtCO2 < 10, unconscious in 10-20 s.
    assert_eq!(hr[0], 0.0);
    assert!(map[0] < 10.0, "MAP {map:?}");
    assert!(etco2[0] < 10.0, "EtCO2 {etco2:?}");
    assert_eq!(acvpu[0], Acvpu::Unresponsive as u8 as f64);
    // CPR: partial perfusion, EtCO2 10-20 mmHg.
    assert!((10.0..=20.0).contains(&etco2[1]), "EtCO2 on CPR {etco2:?}");
    assert!(map[1] > 25.0, "MAP on CPR {map:?}");
    // Shock at 4 min with CPR from 2 min: 50 % - 10 × 2 - 4 × 2 = 22 % chance.
    let shocks: Vec<_> = log
        .interventions
        .iter()
        .filter(|g| g.kind == InterventionKind::Defibrillation)
        .collect();
    assert_eq!(shocks.len(), n as usize);
    let rosc = shocks.iter().filter(|g| g.rosc == Some(true)).count() as f64 / f64::from(n);
    assert!((0.14..=0.30).contains(&rosc), "ROSC fraction {rosc:.2}");
    let treated = log
        .ends
        .iter()
        .filter(|e| e.reason == EndReason::Treated && e.end_ms == 14 * MIN)
        .count() as f64
        / f64::from(n);
    assert_eq!(treated, rosc);
    let pulseless = log
        .criteria
        .iter()
        .filter(|c| c.criterion == Criterion::Pulseless)
        .count();
    assert_eq!(pulseless, n as usize);

    // Asystole does not answer a shock.
    let mut cfg = config(ProfileSpec::healthy_adult(), 50, 30 * MIN, 1_000);
    let mut arrest = event(ConditionKind::CardiacArrest, 5 * MIN, 50);
    arrest.params.0[0] = 1.0;
    cfg.events.push(arrest);
    cfg.interventions
        .push(give(InterventionKind::Defibrillation, 6 * MIN, 50));
    let log = run(&cfg, |_, _| {});
    assert!(log.interventions.iter().all(|g| g.rosc == Some(false)));
}

#[test]
fn fluids_restore_volume_after_haemorrhage() {
    let n = 20;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 3 * HOUR, 5_000);
    let mut bleed = event(ConditionKind::Haemorrhage, 10 * MIN, n);
    bleed.params.0[0] = 35.0;
    cfg.events.push(bleed);
    let mut fluids = give(InterventionKind::IvFluids, HOUR, n);
    fluids.params.0[0] = 3000.0;
    fluids.duration_ms = Some(30 * MIN);
    cfg.interventions.push(fluids);
    let (map, _) = mean_at(&cfg, &[55 * MIN, 100 * MIN], |v| v.map_mmhg());
    let (hr, _) = mean_at(&cfg, &[55 * MIN, 100 * MIN], |v| v.hr_bpm);
    // 3 L crystalloid, a third retained: ~1 L back of ~1.8 L lost.
    assert!(map[1] > map[0] + 15.0, "MAP {map:?}");
    assert!(hr[1] < hr[0] - 10.0, "HR {hr:?}");
}

/// A parameter value from a random fraction, inside the spec's range.
fn param_from(specs: &[medtwin_sim::ParamSpec], raw: u16) -> Params {
    let mut params = Params::defaults(specs);
    for (i, spec) in specs.iter().enumerate() {
        let r = u32::from(raw.rotate_left(i as u32 * 5));
        params.0[i] = match spec.kind {
            medtwin_sim::ParamKind::Number { min, max, .. } => {
                min + (max - min) * f64::from(r % 1001) / 1000.0
            }
            medtwin_sim::ParamKind::Choice { options, .. } => (r as usize % options.len()) as f64,
        };
    }
    params
}

fn within_physical_bounds(v: &Vitals) -> bool {
    let finite = [
        v.hr_bpm,
        v.sbp_mmhg,
        v.dbp_mmhg,
        v.rr_bpm,
        v.spo2_pct,
        v.temp_c,
        v.etco2_mmhg,
        v.glucose_mgdl,
        f64::from(v.co_lpm),
    ]
    .iter()
    .all(|x| x.is_finite());
    finite
        && (0.0..=300.0).contains(&v.hr_bpm)
        && (0.0..=300.0).contains(&v.sbp_mmhg)
        && (0.0..=v.sbp_mmhg).contains(&v.dbp_mmhg)
        && (0.0..=80.0).contains(&v.rr_bpm)
        && (0.0..=100.0).contains(&v.spo2_pct)
        && (25.0..=45.0).contains(&v.temp_c)
        && (0.0..=150.0).contains(&v.etco2_mmhg)
        && (0.0..=1500.0).contains(&v.glucose_mgdl)
        && (0.0..=30.0).contains(&v.co_lpm)
}

/// For any mix of profile, conditions, interventions and seed, every vital
/// stays within physical bounds and is never NaN, at every step.
#[test]
fn any_mix_stays_within_physical_bounds() {
    use quickcheck::{Gen, QuickCheck, TestResult};

    type EventRaw = (u8, u16, u8, u16, u16, bool);
    type GivenRaw = (u8, u16, u16, u16, bool);
    fn prop(seed: u64, profile: u8, events: Vec<EventRaw>, given: Vec<GivenRaw>) -> TestResult {
        let profile = match profile % 3 {
            0 => ProfileSpec::healthy_adult(),
            1 => copd(),
            _ => type1(),
        };
        let n = 3;
        let mut cfg = config(profile, n, 4 * HOUR, 15_000);
        cfg.seed = seed;
        cfg.start_ms_of_day = (seed % 24) * HOUR;
        for (kind, at, severity, ramp, raw, ends) in events.into_iter().take(5) {
            let kind = ConditionKind::ALL[usize::from(kind) % ConditionKind::ALL.len()];
            cfg.events.push(EventConfig {
                at_ms: u64::from(at) * 200 % (3 * HOUR),
                who: all(n),
                condition: kind,
                severity: (f64::from(severity) + 1.0) / 256.0,
                ramp_ms: u64::from(ramp) * 300 % (3 * HOUR),
                duration_ms: ends.then_some(u64::from(raw) * 100 % (2 * HOUR) + MIN),
                params: param_from(kind.params(), raw),
            });
        }
        for (kind, at, raw, duration, limited) in given.into_iter().take(8) {
            let kind = InterventionKind::ALL[usize::from(kind) % InterventionKind::ALL.len()];
            cfg.interventions.push(InterventionConfig {
                at_ms: u64::from(at) * 200 % (4 * HOUR),
                who: all(n),
                kind,
                params: param_from(kind.params(), raw),
                duration_ms: limited.then_some(u64::from(duration) * 100 + MIN),
            });
        }
        let mut bad = None;
        run(&cfg, |now, all| {
            if bad.is_none() {
                bad = all
                    .iter()
                    .find(|v| !within_physical_bounds(v))
                    .map(|v| (now, *v));
            }
        });
        match bad {
            None => TestResult::passed(),
            Some((now, v)) => TestResult::error(format!("at {now} ms: {v:?}")),
        }
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(12, 0x0070_6879_7369_6f6c))
        .tests(60)
        .quickcheck(prop as fn(u64, u8, Vec<EventRaw>, Vec<GivenRaw>) -> TestResult);
}
