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
    CohortConfig, Criterion, InterventionConfig, InterventionKind, Meal, NetworkConfig, Params,
    PatientSelector, ProfileSpec, Shard, SimConfig, Spread, StepOutput, Twin,
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

/// Criterion onsets of `criterion`, by patient.
fn onsets_of(log: &StepOutput, criterion: Criterion) -> Vec<(u32, u64)> {
    log.criteria
        .iter()
        .filter(|c| c.criterion == criterion)
        .map(|c| (c.patient_idx, c.at_ms))
        .collect()
}
