//! NEWS2 scoring against an independent, table-driven model of RCP 2017
//! Chart 1, plus hand-computed cases read off the chart.
//!
//! The model keeps the chart as data (lists of inclusive (lo, hi, points)
//! bands in charted units) and rounds in integer arithmetic: inputs are
//! generated as whole thousandths, so the model knows the exact decimal a
//! device sent and rounds it half up the way it would be written on the
//! chart, with no floating point involved.

use medtwin_sim::Acvpu;
use medtwin_sim::news2::{self, News2, Observations, Parameter, Risk, Spo2Scale};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

/// Fixed so a failure replays; change it to explore, not to make a test pass.
const SEED: u64 = 0x4e45_5753_3220_3137; // "NEWS2 17"

/// An inclusive band of charted values and its points.
type Band = (i64, i64, u8);

const LO: i64 = i64::MIN;
const HI: i64 = i64::MAX;

/// Respiration rate, breaths/min.
const RR: &[Band] = &[
    (LO, 8, 3),
    (9, 11, 1),
    (12, 20, 0),
    (21, 24, 2),
    (25, HI, 3),
];
/// SpO2 scale 1, %.
const SPO2_SCALE1: &[Band] = &[(LO, 91, 3), (92, 93, 2), (94, 95, 1), (96, HI, 0)];
/// SpO2 scale 2 on air, %: ≥93 on air scores 0.
const SPO2_SCALE2_AIR: &[Band] = &[
    (LO, 83, 3),
    (84, 85, 2),
    (86, 87, 1),
    (88, 92, 0),
    (93, HI, 0),
];
/// SpO2 scale 2 on oxygen, %.
const SPO2_SCALE2_OXYGEN: &[Band] = &[
    (LO, 83, 3),
    (84, 85, 2),
    (86, 87, 1),
    (88, 92, 0),
    (93, 94, 1),
    (95, 96, 2),
    (97, HI, 3),
];
/// Systolic BP, mmHg.
const SBP: &[Band] = &[
    (LO, 90, 3),
    (91, 100, 2),
    (101, 110, 1),
    (111, 219, 0),
    (220, HI, 3),
];
/// Pulse, /min.
const HR: &[Band] = &[
    (LO, 40, 3),
    (41, 50, 1),
    (51, 90, 0),
    (91, 110, 1),
    (111, 130, 2),
    (131, HI, 3),
];
/// Temperature in tenths of a °C.
const TEMP_TENTHS: &[Band] = &[
    (LO, 350, 3),
    (351, 360, 1),
    (361, 380, 0),
    (381, 390, 1),
    (391, HI, 2),
];

const ALL_TABLES: &[&[Band]] = &[
    RR,
    SPO2_SCALE1,
    SPO2_SCALE2_AIR,
    SPO2_SCALE2_OXYGEN,
    SBP,
    HR,
    TEMP_TENTHS,
];

fn lookup(table: &[Band], charted: i64) -> u8 {
    let hits: Vec<u8> = table
        .iter()
        .filter(|&&(lo, hi, _)| lo <= charted && charted <= hi)
        .map(|&(_, _, points)| points)
        .collect();
    assert_eq!(hits.len(), 1, "bands must cover {charted} exactly once");
    hits[0]
}

/// Half-up rounding of `thousandths / 1000` to a multiple of `1000 / per_unit`,
/// returned in those units (per_unit 1: whole numbers, 10: tenths).
fn round_half_up(thousandths: i64, per_unit: i64) -> i64 {
    let step = 1000 / per_unit;
    (thousandths + step / 2).div_euclid(step)
}

/// One parameter as generated: missing, or an exact decimal in thousandths
/// and a nudge of -1, 0 or +1 unit in the last place, as a sender's
/// arithmetic can leave it (38.0 + 0.05 might be stored as 38.04999…, which
/// a chart still reads as 38.05).
#[derive(Clone, Copy, Debug)]
struct Value(Option<(i64, i8)>);

impl Value {
    fn thousandths(self) -> Option<i64> {
        self.0.map(|(k, _)| k)
    }

    fn as_f64(self) -> Option<f64> {
        self.0.map(|(k, nudge)| {
            let x = k as f64 / 1000.0;
            match nudge {
                ..=-1 => x.next_down(),
                0 => x,
                1.. => x.next_up(),
            }
        })
    }
}

/// Random observations with the exact decimals behind them.
#[derive(Clone, Debug)]
struct Case {
    rr: Value,
    spo2: Value,
    sbp: Value,
    hr: Value,
    temp: Value,
    on_oxygen: bool,
    scale: Spo2Scale,
    consciousness: Option<Acvpu>,
}

fn below(g: &mut Gen, n: u64) -> i64 {
    (u64::arbitrary(g) % n) as i64
}

/// A value in `lo..=hi` (whole units), usually near a band edge, as
/// thousandths; missing one time in eight.
fn value(g: &mut Gen, lo: i64, hi: i64, per_unit: i64, table: &[Band]) -> Value {
    if below(g, 8) == 0 {
        return Value(None);
    }
    let thousandths = match below(g, 3) {
        // Anywhere in range, any thousandth.
        0 => lo * 1000 + below(g, ((hi - lo) * 1000 + 1) as u64),
        // Within a charted step of a band edge, landing on halves often.
        _ => {
            let edges: Vec<i64> = table.iter().filter(|b| b.0 != LO).map(|b| b.0).collect();
            let edge = edges[below(g, edges.len() as u64) as usize];
            let step = 1000 / per_unit;
            let offset = *g
                .choose(&[
                    -step,
                    -step / 2,
                    -step / 2 + 1,
                    -1,
                    0,
                    1,
                    step / 2 - 1,
                    step / 2,
                    step,
                ])
                .unwrap();
            edge * step + offset + if below(g, 4) == 0 { below(g, 5) - 2 } else { 0 }
        }
    };
    Value(Some((thousandths, *g.choose(&[-1, 0, 0, 1]).unwrap())))
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let scale = *g.choose(&[Spo2Scale::Scale1, Spo2Scale::Scale2]).unwrap();
        let on_oxygen = bool::arbitrary(g);
        let spo2_table = match (scale, on_oxygen) {
            (Spo2Scale::Scale1, _) => SPO2_SCALE1,
            (Spo2Scale::Scale2, false) => SPO2_SCALE2_AIR,
            (Spo2Scale::Scale2, true) => SPO2_SCALE2_OXYGEN,
        };
        let acvpu = [
            None,
            Some(Acvpu::Alert),
            Some(Acvpu::Alert),
            Some(Acvpu::Confused),
            Some(Acvpu::Voice),
            Some(Acvpu::Pain),
            Some(Acvpu::Unresponsive),
        ];
        Case {
            rr: value(g, 0, 60, 1, RR),
            spo2: value(g, 60, 100, 1, spo2_table),
            sbp: value(g, 40, 300, 1, SBP),
            hr: value(g, 0, 250, 1, HR),
            temp: value(g, 30, 45, 10, TEMP_TENTHS),
            on_oxygen,
            scale,
            consciousness: *g.choose(&acvpu).unwrap(),
        }
    }
}

/// The model: the chart as data, applied to exact decimals.
fn model(case: &Case) -> News2 {
    let mut missing = Vec::new();
    let mut points = |parameter, v: Value, per_unit, table| match v.thousandths() {
        Some(k) => lookup(table, round_half_up(k, per_unit)),
        None => {
            missing.push(parameter);
            0
        }
    };
    let spo2_table = match (case.scale, case.on_oxygen) {
        (Spo2Scale::Scale1, _) => SPO2_SCALE1,
        (Spo2Scale::Scale2, false) => SPO2_SCALE2_AIR,
        (Spo2Scale::Scale2, true) => SPO2_SCALE2_OXYGEN,
    };
    let rr = points(Parameter::Rr, case.rr, 1, RR);
    let spo2 = points(Parameter::Spo2, case.spo2, 1, spo2_table);
    let sbp = points(Parameter::Sbp, case.sbp, 1, SBP);
    let hr = points(Parameter::Hr, case.hr, 1, HR);
    let temp = points(Parameter::Temp, case.temp, 10, TEMP_TENTHS);
    let consciousness = match case.consciousness {
        None => {
            missing.push(Parameter::Consciousness);
            0
        }
        Some(Acvpu::Alert) => 0,
        Some(_) => 3,
    };
    let air_or_oxygen = if case.on_oxygen { 2 } else { 0 };
    let subs = [rr, spo2, air_or_oxygen, sbp, hr, consciousness, temp];
    let total: u8 = subs.iter().sum();
    let red = subs.contains(&3);
    let risk = if total >= 7 {
        Risk::High
    } else if total >= 5 {
        Risk::Medium
    } else if red {
        Risk::LowMedium
    } else {
        Risk::Low
    };
    let sub_scores = news2::SubScores {
        rr,
        spo2,
        air_or_oxygen,
        sbp,
        hr,
        consciousness,
        temp,
    };
    missing.sort();
    News2 {
        total,
        sub_scores,
        red,
        risk,
        missing,
    }
}

fn observations(case: &Case) -> Observations {
    Observations {
        rr_per_min: case.rr.as_f64(),
        spo2_pct: case.spo2.as_f64(),
        spo2_scale: case.scale,
        on_oxygen: case.on_oxygen,
        sbp_mmhg: case.sbp.as_f64(),
        hr_per_min: case.hr.as_f64(),
        consciousness: case.consciousness,
        temp_c: case.temp.as_f64(),
    }
}

fn agrees_with_model(case: Case) -> TestResult {
    let expected = model(&case);
    let actual = news2::score(&observations(&case));
    if actual == expected {
        TestResult::passed()
    } else {
        TestResult::error(format!(
            "{case:?}\nexpected {expected:?}\nactual   {actual:?}"
        ))
    }
}

#[test]
fn score_agrees_with_the_table_model() {
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(100, SEED))
        .tests(10_000)
        .max_tests(10_000)
        .quickcheck(agrees_with_model as fn(Case) -> TestResult);
}

#[test]
fn model_tables_cover_every_value_once() {
    for table in ALL_TABLES {
        for charted in -1000..=1000 {
            lookup(table, charted);
        }
    }
}

// Hand-computed cases, read off the chart.

fn only(f: impl FnOnce(&mut Observations)) -> News2 {
    let mut obs = Observations {
        consciousness: Some(Acvpu::Alert),
        ..Observations::default()
    };
    f(&mut obs);
    news2::score(&obs)
}

#[test]
fn rr_25_scores_3_and_is_red() {
    let n = only(|o| o.rr_per_min = Some(25.0));
    assert_eq!(
        (n.sub_scores.rr, n.total, n.red, n.risk),
        (3, 3, true, Risk::LowMedium)
    );
}

#[test]
fn rr_rounds_to_the_charted_whole_breath() {
    assert_eq!(only(|o| o.rr_per_min = Some(20.4)).sub_scores.rr, 0);
    assert_eq!(only(|o| o.rr_per_min = Some(20.5)).sub_scores.rr, 2);
    assert_eq!(only(|o| o.rr_per_min = Some(8.49)).sub_scores.rr, 3);
}

#[test]
fn spo2_scale2_93_on_air_scores_0_and_on_oxygen_1() {
    let air = only(|o| {
        o.spo2_scale = Spo2Scale::Scale2;
        o.spo2_pct = Some(93.0);
    });
    assert_eq!((air.sub_scores.spo2, air.sub_scores.air_or_oxygen), (0, 0));
    let oxygen = only(|o| {
        o.spo2_scale = Spo2Scale::Scale2;
        o.on_oxygen = true;
        o.spo2_pct = Some(93.0);
    });
    assert_eq!(
        (
            oxygen.sub_scores.spo2,
            oxygen.sub_scores.air_or_oxygen,
            oxygen.total
        ),
        (1, 2, 3)
    );
    let high_on_oxygen = only(|o| {
        o.spo2_scale = Spo2Scale::Scale2;
        o.on_oxygen = true;
        o.spo2_pct = Some(98.0);
    });
    assert_eq!(high_on_oxygen.sub_scores.spo2, 3);
}

#[test]
fn temperature_bands_at_one_decimal() {
    assert_eq!(only(|o| o.temp_c = Some(39.1)).sub_scores.temp, 2);
    assert_eq!(only(|o| o.temp_c = Some(39.0)).sub_scores.temp, 1);
    assert_eq!(only(|o| o.temp_c = Some(38.05)).sub_scores.temp, 1);
    assert_eq!(only(|o| o.temp_c = Some(38.04)).sub_scores.temp, 0);
    assert_eq!(only(|o| o.temp_c = Some(35.0)).sub_scores.temp, 3);
    assert_eq!(only(|o| o.temp_c = Some(35.05)).sub_scores.temp, 1);
}

#[test]
fn total_7_is_high() {
    // RR 22 (2) + SpO2 94 (1) + pulse 115 (2) + temperature 38.5 (1) + SBP 105 (1) = 7.
    let n = only(|o| {
        o.rr_per_min = Some(22.0);
        o.spo2_pct = Some(94.0);
        o.hr_per_min = Some(115.0);
        o.temp_c = Some(38.5);
        o.sbp_mmhg = Some(105.0);
    });
    assert_eq!((n.total, n.red, n.risk), (7, false, Risk::High));
}

#[test]
fn total_5_is_medium_and_a_single_3_is_red() {
    let n = only(|o| {
        o.rr_per_min = Some(22.0);
        o.hr_per_min = Some(115.0);
        o.sbp_mmhg = Some(105.0);
    });
    assert_eq!((n.total, n.risk), (5, Risk::Medium));
    let n = only(|o| o.consciousness = Some(Acvpu::Voice));
    assert_eq!((n.total, n.red, n.risk), (3, true, Risk::LowMedium));
    let n = only(|o| o.sbp_mmhg = Some(220.0));
    assert_eq!((n.sub_scores.sbp, n.red), (3, true));
}

#[test]
fn missing_parameters_score_0_and_are_listed() {
    let n = news2::score(&Observations::default());
    assert_eq!((n.total, n.risk), (0, Risk::Low));
    assert_eq!(
        n.missing,
        vec![
            Parameter::Rr,
            Parameter::Spo2,
            Parameter::Sbp,
            Parameter::Hr,
            Parameter::Consciousness,
            Parameter::Temp
        ]
    );
    let n = only(|o| o.on_oxygen = true);
    assert_eq!(
        (n.total, n.red, n.risk),
        (2, false, Risk::Low),
        "oxygen is 2, never red"
    );
}
