//! Validation of the glucose model and of the truth log's abnormal states
//! against published ranges (docs/references.md "How deteriorations show"
//! and "Glucose model"): the 75 g OGTT of a healthy adult (WHO 2006), a
//! type 1 patient's matched meal bolus (the bolus-test criterion), type 1
//! patients over 72 h on their profile (international CGM consensus,
//! Battelino 2019), and spontaneous abnormal states reaching the truth log
//! with onset and end and no scheduled condition.
//!
//! Every test prints what it measured (`--nocapture` shows it); glucose is
//! read from the true state (no device error).

use medtwin_sim::glucose::Metabolism;
use medtwin_sim::{
    Change, CohortConfig, Criterion, InterventionConfig, InterventionKind, Meal, NetworkConfig,
    Params, PatientSelector, ProfileSpec, Shard, SimConfig, Spread, StepOutput, Twin,
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

fn config(profile: ProfileSpec, count: u32, duration_ms: u64, start_hour: u64) -> SimConfig {
    SimConfig {
        seed: 7,
        step_ms: MIN,
        duration_ms,
        start_ms_of_day: start_hour * HOUR,
        cohorts: vec![CohortConfig {
            name: "g".into(),
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

/// The catalogue's `type1_diabetes` profile (harness/medtwin/catalogue/
/// profiles.toml): the healthy adult with type 1 metabolism, its glucose
/// and insulin-sensitivity spreads and age; the healthy adult's meals.
fn type1_diabetes() -> ProfileSpec {
    ProfileSpec {
        name: "type1_diabetes".into(),
        metabolism: Metabolism::Type1,
        age: Spread {
            mean: 35.0,
            sd: 13.0,
            min: 18.0,
            max: 70.0,
        },
        glucose: Spread {
            mean: 115.0,
            sd: 12.0,
            min: 90.0,
            max: 135.0,
        },
        insulin_sensitivity: Spread {
            mean: 1.0,
            sd: 0.2,
            min: 0.6,
            max: 1.5,
        },
        ..ProfileSpec::healthy_adult()
    }
}

fn without_meals(profile: ProfileSpec) -> ProfileSpec {
    ProfileSpec {
        meals: Vec::<Meal>::new(),
        ..profile
    }
}

/// Runs `config` and returns each patient's true glucose at every minute
/// (index 0 is the end of the first step) and the truth records.
fn glucose_traces(config: &SimConfig) -> (Vec<Vec<f64>>, StepOutput) {
    let mut twin = Twin::new(config).unwrap();
    let n: u32 = config.cohorts.iter().map(|c| c.count).sum();
    let mut traces = vec![Vec::new(); n as usize];
    let mut log = StepOutput::default();
    while !twin.finished() {
        let out = twin.step();
        log.onsets.extend_from_slice(&out.onsets);
        log.ends.extend_from_slice(&out.ends);
        log.criteria.extend_from_slice(&out.criteria);
        log.states.extend_from_slice(&out.states);
        for (p, trace) in traces.iter_mut().enumerate() {
            trace.push(twin.vitals(p as u32).unwrap().glucose_mgdl);
        }
    }
    (traces, log)
}

/// Glucose at minute `m` after the start (the end of step `m`).
fn at(trace: &[f64], m: u64) -> f64 {
    trace[m as usize - 1]
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for x in xs {
        sum += x;
        n += 1.0;
    }
    sum / n
}

/// The 75 g oral glucose load of the WHO OGTT in healthy adults: the mean
/// curve peaks 120-160 mg/dL at 30-60 min and is 70-140 mg/dL at 2 h
/// (WHO 2006; docs/references.md "How deteriorations show").
#[test]
fn ogtt_in_healthy_adults_peaks_120_to_160_at_30_to_60_min_and_is_under_140_at_2_h() {
    let n = 20;
    let mut cfg = config(without_meals(ProfileSpec::healthy_adult()), n, 4 * HOUR, 7);
    let kind = InterventionKind::Glucose;
    let mut load = InterventionConfig {
        at_ms: HOUR,
        who: all(n),
        kind,
        params: Params::defaults(kind.params()),
        duration_ms: None,
    };
    load.params.0[0] = 75.0;
    cfg.interventions.push(load);
    let (traces, _) = glucose_traces(&cfg);
    let curve: Vec<f64> = (1..=4 * 60)
        .map(|m| mean(traces.iter().map(|t| at(t, m))))
        .collect();
    let base = curve[59];
    let (peak_min, peak) = (60..curve.len())
        .map(|i| (i + 1 - 60, curve[i]))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    let two_h = curve[60 + 120 - 1];
    let lowest = (60..curve.len()).map(|i| curve[i]).fold(f64::MAX, f64::min);
    let patient_peaks: Vec<f64> = traces
        .iter()
        .map(|t| t[60..].iter().copied().fold(f64::MIN, f64::max))
        .collect();
    let patient_two_h: Vec<f64> = traces.iter().map(|t| at(t, 180)).collect();
    let patient_low = traces
        .iter()
        .map(|t| t[60..].iter().copied().fold(f64::MAX, f64::min))
        .fold(f64::MAX, f64::min);
    println!(
        "OGTT 75 g, {n} healthy adults (mean curve): fasting {base:.0}, peak {peak:.0} mg/dL at \
         {peak_min} min, 30 min {:.0}, 60 min {:.0}, 90 min {:.0}, 2-h {two_h:.0}, 3-h {:.0}, \
         lowest {lowest:.0}; per patient: peaks {:.0}-{:.0}, 2-h {:.0}-{:.0}, lowest {patient_low:.0}",
        curve[89],
        curve[119],
        curve[149],
        curve[239],
        patient_peaks.iter().copied().fold(f64::MAX, f64::min),
        patient_peaks.iter().copied().fold(f64::MIN, f64::max),
        patient_two_h.iter().copied().fold(f64::MAX, f64::min),
        patient_two_h.iter().copied().fold(f64::MIN, f64::max),
    );
    assert!((120.0..=160.0).contains(&peak), "peak {peak:.0}");
    assert!((30..=60).contains(&peak_min), "peak at {peak_min} min");
    assert!((70.0..140.0).contains(&two_h), "2-h {two_h:.0}");
    // Every patient: a normal 2-h value and no reactive hypoglycaemia.
    assert!(
        patient_two_h.iter().all(|g| (70.0..140.0).contains(g)),
        "{patient_two_h:?}"
    );
    assert!(patient_low >= 60.0, "lowest {patient_low:.0}");
}

/// What a meal of `carbs_g` with its matched bolus at 1 h does to each
/// patient of a type 1 cohort of `n`.
struct MealResponse {
    /// 4-h value minus the pre-meal value, mg/dL.
    delta_4h: Vec<f64>,
    /// Mean over 4-5 h minus the pre-meal value, mg/dL.
    delta_4_5h: Vec<f64>,
    /// Lowest value in the 6 h after the meal, mg/dL.
    nadir: Vec<f64>,
    /// Highest value in the 6 h after the meal, mg/dL.
    peak: Vec<f64>,
}

fn matched_bolus(n: u32, carbs_g: f64) -> MealResponse {
    let mut cfg = config(without_meals(type1_diabetes()), n, 7 * HOUR, 7);
    let kind = InterventionKind::Meal;
    let mut meal = InterventionConfig {
        at_ms: HOUR,
        who: all(n),
        kind,
        params: Params::defaults(kind.params()),
        duration_ms: None,
    };
    meal.params.0[0] = carbs_g;
    cfg.interventions.push(meal);
    let (traces, _) = glucose_traces(&cfg);
    MealResponse {
        delta_4h: traces.iter().map(|t| at(t, 300) - at(t, 60)).collect(),
        delta_4_5h: traces
            .iter()
            .map(|t| mean((300..=360).map(|m| at(t, m))) - at(t, 60))
            .collect(),
        nadir: traces
            .iter()
            .map(|t| t[60..].iter().copied().fold(f64::MAX, f64::min))
            .collect(),
        peak: traces
            .iter()
            .map(|t| t[60..].iter().copied().fold(f64::MIN, f64::max))
            .collect(),
    }
}

fn lowest(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::MAX, f64::min)
}

fn highest(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::MIN, f64::max)
}

/// A matched meal bolus in type 1 leaves glucose within ±30 mg/dL of the
/// pre-meal value at 4 h (docs/references.md "How deteriorations show",
/// the bolus-test criterion), and after 50 g at least 90 % of the cohort
/// never goes under 70 mg/dL.
#[test]
fn type1_matched_bolus_returns_within_30_mgdl_at_4_h() {
    let n = 20;
    let responses = [50.0, 80.0].map(|carbs_g| (carbs_g, matched_bolus(n, carbs_g)));
    for (carbs_g, r) in &responses {
        let under_70 = r.nadir.iter().filter(|&&g| g < 70.0).count();
        let within = r.delta_4h.iter().filter(|d| d.abs() <= 30.0).count();
        println!(
            "type 1, {carbs_g} g meal + matched bolus, {n} patients: 4-h minus pre-meal mean \
             {:+.0} mg/dL (range {:+.0} to {:+.0}), {within} within ±30; 4-5 h mean {:+.0}; \
             peak {:.0}-{:.0}; nadir (6 h) under 70 in {under_70}, lowest {:.0}",
            mean(r.delta_4h.iter().copied()),
            lowest(&r.delta_4h),
            highest(&r.delta_4h),
            mean(r.delta_4_5h.iter().copied()),
            lowest(&r.peak),
            highest(&r.peak),
            lowest(&r.nadir),
        );
    }
    for (carbs_g, r) in &responses {
        let within = r.delta_4h.iter().filter(|d| d.abs() <= 30.0).count();
        assert!(
            mean(r.delta_4h.iter().copied()).abs() <= 30.0,
            "{carbs_g} g: {:?}",
            r.delta_4h
        );
        assert!(
            within as f64 >= 0.9 * n as f64,
            "{carbs_g} g: {:?}",
            r.delta_4h
        );
        if *carbs_g == 50.0 {
            let under_70 = r.nadir.iter().filter(|&&g| g < 70.0).count();
            assert!(under_70 as f64 <= 0.1 * n as f64, "nadirs {:?}", r.nadir);
        }
    }
}

/// Type 1 patients on their profile (three meals a day, each with its
/// matched bolus) over 72 h, nothing else happening: time below 70 mg/dL
/// under 4 % and below 54 mg/dL under 1 % (Battelino 2019).
#[test]
fn type1_over_72_h_on_its_profile_meets_the_time_below_range_targets() {
    let n = 50;
    let cfg = config(type1_diabetes(), n, 72 * HOUR, 0);
    let (traces, _) = glucose_traces(&cfg);
    let samples = traces.iter().map(Vec::len).sum::<usize>() as f64;
    let below = |limit: f64| {
        traces.iter().flatten().filter(|&&g| g < limit).count() as f64 / samples * 100.0
    };
    let patients_under = |limit: f64| {
        traces
            .iter()
            .filter(|t| t.iter().any(|&g| g < limit))
            .count()
    };
    let (tbr70, tbr54, tar180) = (below(70.0), below(54.0), 100.0 - below(180.0 + 1e-9));
    let in_range = 100.0 - tbr70 - tar180;
    let lowest = traces.iter().flatten().copied().fold(f64::MAX, f64::min);
    let highest = traces.iter().flatten().copied().fold(f64::MIN, f64::max);
    println!(
        "type 1 profile, {n} patients, 72 h: time below 70 {tbr70:.1} %, below 54 {tbr54:.1} %, \
         in 70-180 {in_range:.1} %, above 180 {tar180:.1} %; patients under 70: {}, under 54: {}; \
         range {lowest:.0}-{highest:.0} mg/dL; mean {:.0}",
        patients_under(70.0),
        patients_under(54.0),
        mean(traces.iter().flatten().copied()),
    );
    assert!(tbr70 < 4.0, "time below 70: {tbr70:.1} %");
    assert!(tbr54 < 1.0, "time below 54: {tbr54:.1} %");
    // A correctly treated population spends most of its time in range.
    assert!(in_range > 50.0, "time in range {in_range:.1} %");
}

/// (onset, end) of every abnormal state of `criterion` on `patient`, in
/// order; checks that onsets and ends alternate, starting with an onset.
fn states_of(log: &StepOutput, patient: u32, criterion: Criterion) -> Vec<(u64, Option<u64>)> {
    let mut out: Vec<(u64, Option<u64>)> = Vec::new();
    for c in log
        .states
        .iter()
        .filter(|c| c.patient_idx == patient && c.criterion == criterion)
    {
        match c.change {
            Change::Onset => {
                assert!(out.last().is_none_or(|s| s.1.is_some()), "{out:?}");
                out.push((c.at_ms, None));
            }
            Change::End => {
                let open = out.last_mut().expect("an end after an onset");
                assert!(open.1.is_none() && open.0 <= c.at_ms, "{out:?}");
                open.1 = Some(c.at_ms);
            }
        }
    }
    out
}

fn minutes(ms: u64) -> f64 {
    ms as f64 / MIN as f64
}

fn give(kind: InterventionKind, at_ms: u64, n: u32, first: f64) -> InterventionConfig {
    let mut given = InterventionConfig {
        at_ms,
        who: all(n),
        kind,
        params: Params::defaults(kind.params()),
        duration_ms: None,
    };
    given.params.0[0] = first;
    given
}

/// An insulin overdose (an intervention, no condition) takes type 1
/// patients into level 1 and level 2 hypoglycaemia; confusion below
/// 54 mg/dL scores NEWS2 3 (a red score); 20 g of oral glucose brings them
/// back. The truth log records each state's onset and end although no
/// condition was scheduled (so no episode exists to re-arm the criteria).
#[test]
fn spontaneous_hypoglycaemia_and_a_news2_red_score_begin_and_end_in_the_truth_log() {
    let n = 5;
    let mut cfg = config(without_meals(type1_diabetes()), n, 8 * HOUR, 14);
    let rescue = |at_ms| give(InterventionKind::Glucose, at_ms, n, 20.0);
    let mut meal = give(InterventionKind::Meal, 3 * HOUR + 40 * MIN, n, 40.0);
    meal.params.0[1] = 0.0;
    cfg.interventions.extend([
        give(InterventionKind::Insulin, HOUR, n, 4.0),
        rescue(3 * HOUR),
        rescue(3 * HOUR + 20 * MIN),
        meal,
    ]);
    let (traces, log) = glucose_traces(&cfg);
    assert!(log.onsets.is_empty() && log.ends.is_empty());
    for p in 0..n {
        let lowest = traces[p as usize].iter().copied().fold(f64::MAX, f64::min);
        let l1 = states_of(&log, p, Criterion::HypoglycaemiaLevel1);
        let l2 = states_of(&log, p, Criterion::HypoglycaemiaLevel2);
        let red = states_of(&log, p, Criterion::News2Red);
        let show = |s: &[(u64, Option<u64>)]| {
            s.iter()
                .map(|(a, b)| format!("{:.0}-{:.0} min", minutes(*a), b.map_or(f64::NAN, minutes)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "patient {p}: lowest {lowest:.0} mg/dL; level 1 {}; level 2 {}; NEWS2 red {}",
            show(&l1),
            show(&l2),
            show(&red)
        );
        assert_eq!(l1.len(), 1, "{l1:?}");
        assert_eq!(l2.len(), 1, "{l2:?}");
        let ((l1_on, l1_end), (l2_on, l2_end)) = (l1[0], l2[0]);
        let (l1_end, l2_end) = (l1_end.expect("level 1 ends"), l2_end.expect("level 2 ends"));
        // Level 2 lies within level 1; both end after the rescue.
        assert!(l1_on < l2_on && l2_end <= l1_end, "{l1:?} {l2:?}");
        assert!(l1_end > 3 * HOUR && l1_end < 5 * HOUR, "{l1:?}");
        // The truth agrees with the true glucose: under 70 from the onset
        // to the end, back at or above it from the end for 15 min.
        let g = |ms: u64| at(&traces[p as usize], ms / MIN);
        assert!(g(l1_on) < 70.0 && g(l1_end - MIN) < 70.0, "{l1:?}");
        assert!((0..15).all(|m| g(l1_end + m * MIN) >= 70.0), "{l1:?}");
        // Confusion under 54 mg/dL scores 3 (new confusion, RCP 2017).
        assert!(
            !red.is_empty() && red.iter().all(|s| s.1.is_some()),
            "{red:?}"
        );
        assert!(red[0].0 >= l2_on, "{red:?}");
    }
}

/// A healthy ward over 24 h with nothing scheduled: every abnormal state
/// that begins also ends (or is open at the end), onsets and ends
/// alternate, and hovering at a threshold does not flood the truth log.
#[test]
fn healthy_ward_states_pair_up_and_stay_few() {
    let n = 100;
    let mut cfg = config(ProfileSpec::healthy_adult(), n, 24 * HOUR, 0);
    cfg.step_ms = 1_000;
    let (_, log) = glucose_traces(&cfg);
    let mut counts = std::collections::BTreeMap::new();
    for c in Criterion::ALL {
        let mut onsets = 0;
        for p in 0..n {
            onsets += states_of(&log, p, c).len();
        }
        counts.insert(c.name(), onsets);
    }
    let per_patient_day = log.states.len() as f64 / f64::from(n);
    println!(
        "healthy ward, {n} patients, 24 h: state onsets by criterion {counts:?}; {per_patient_day:.2} records per patient-day"
    );
    assert!(per_patient_day < 20.0, "{per_patient_day}");
    // A healthy adult's meals never reach hyperglycaemia (> 180 mg/dL).
    assert_eq!(counts["hyperglycaemia_level1"], 0);
}
