//! The nurse-observation round (`DeviceKind::NurseObs`): at its cadence (or
//! its daily times) it charts the patient's true level of consciousness,
//! the oxygen flow running and the NEWS2 SpO2 scale of the patient's
//! profile, exactly, and nothing in between.

use medtwin_sim::spec::NURSE_OBS_EVERY_MS;
use medtwin_sim::{
    Acvpu, CohortConfig, ConditionKind, DeviceConfig, DeviceKind, EventConfig, InterventionConfig,
    InterventionKind, NetworkConfig, Params, PatientSelector, ProfileSpec, Shard, SimConfig, Twin,
    Vital,
};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

fn patient(cohort: usize, index: u32) -> PatientSelector {
    PatientSelector {
        cohort,
        first: index,
        end: index + 1,
        pick: None,
    }
}

/// Two healthy adults (scale 1) and two COPD-like patients (scale 2), all
/// charted every hour; an opioid sedates healthy patient 0 (V from half
/// severity, P from 0.8) for 3 h, and COPD patient 1 is on 2 L/min of
/// oxygen from 4 h to 7 h.
fn config(nurse: DeviceConfig) -> SimConfig {
    let mut copd = ProfileSpec::healthy_adult();
    copd.name = "scale2".into();
    copd.spo2_scale = 2;
    let cohort = |name: &str, profile: ProfileSpec| CohortConfig {
        name: name.into(),
        count: 2,
        profile,
        devices: vec![nurse.clone()],
        network: NetworkConfig::IDEAL,
    };
    SimConfig {
        seed: 5,
        step_ms: MIN,
        duration_ms: 12 * HOUR,
        start_ms_of_day: 8 * HOUR,
        cohorts: vec![
            cohort("well", ProfileSpec::healthy_adult()),
            cohort("copd", copd),
        ],
        events: vec![EventConfig {
            at_ms: 2 * HOUR,
            who: patient(0, 0),
            condition: ConditionKind::OpioidRespiratoryDepression,
            severity: 1.0,
            ramp_ms: 20 * MIN,
            duration_ms: Some(3 * HOUR),
            params: Params::defaults(ConditionKind::OpioidRespiratoryDepression.params()),
        }],
        interventions: vec![InterventionConfig {
            at_ms: 4 * HOUR,
            who: patient(1, 1),
            kind: InterventionKind::Oxygen,
            params: Params([2.0, 0.0, 0.0]),
            duration_ms: Some(3 * HOUR),
        }],
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

/// One charted round: (patient, measured at, ACVPU code, O2 L/min, scale),
/// each checked against the twin's true state of that step.
type Round = (u32, u64, f64, f64, f64);

fn rounds(config: &SimConfig) -> Vec<Round> {
    let mut twin = Twin::new(config).unwrap();
    let mut out = Vec::new();
    while !twin.finished() {
        let step = twin.step().clone();
        for m in &step.measurements {
            assert_eq!(m.kind, DeviceKind::NurseObs);
            let codes: Vec<Vital> = m.readings.as_slice().iter().map(|r| r.vital).collect();
            assert_eq!(codes, [Vital::Acvpu, Vital::O2Flow, Vital::Spo2Scale]);
            let [acvpu, o2, scale] = [0, 1, 2].map(|i| m.readings.as_slice()[i].value);
            let truth = twin.vitals(m.patient_idx).unwrap();
            assert_eq!(acvpu, f64::from(truth.acvpu.code()), "{m:?} vs {truth:?}");
            assert_eq!(o2, f64::from(truth.o2_lpm), "{m:?} vs {truth:?}");
            out.push((m.patient_idx, m.measured_ms, acvpu, o2, scale));
        }
    }
    out
}

#[test]
fn the_round_charts_the_true_consciousness_oxygen_and_scale_at_its_cadence() {
    let mut nurse = DeviceConfig::of(DeviceKind::NurseObs);
    assert_eq!(nurse.every_ms, NURSE_OBS_EVERY_MS);
    assert_eq!(NURSE_OBS_EVERY_MS, 4 * HOUR, "a ward's 4-hourly round");
    nurse.every_ms = HOUR;
    let rounds = rounds(&config(nurse));
    for p in 0..4 {
        let times: Vec<u64> = rounds.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(times.len(), 12, "patient {p}: {times:?}");
        assert!(times[0] < HOUR, "first round within the first interval");
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == HOUR),
            "patient {p}: {times:?}"
        );
    }
    // The scale is the profile's: 1 for the healthy, 2 for the COPD cohort.
    for r in &rounds {
        assert_eq!(r.4, if r.0 < 2 { 1.0 } else { 2.0 }, "{r:?}");
    }
    // Consciousness and oxygen change, and the chart follows (checked
    // against the truth round by round above): the sedated patient is
    // charted V or worse during the opioid only; the patient on oxygen is
    // charted 2 L/min during the 3 h only, room air otherwise.
    let sedated: Vec<&Round> = rounds.iter().filter(|r| r.0 == 0).collect();
    assert!(
        sedated
            .iter()
            .any(|r| r.2 >= f64::from(Acvpu::Voice.code())),
        "{sedated:?}"
    );
    assert!(
        sedated
            .iter()
            .filter(|r| r.1 < 2 * HOUR || r.1 >= 7 * HOUR)
            .all(|r| r.2 == 0.0),
        "{sedated:?}"
    );
    let on_o2: Vec<&Round> = rounds.iter().filter(|r| r.0 == 3).collect();
    for r in &on_o2 {
        let expect = if (4 * HOUR..7 * HOUR).contains(&r.1) {
            2.0
        } else {
            0.0
        };
        assert_eq!(r.3, expect, "{r:?}");
    }
    assert!(
        rounds.iter().filter(|r| r.0 != 3).all(|r| r.3 == 0.0),
        "nobody else is on oxygen"
    );
}

#[test]
fn a_round_at_daily_times_charts_at_those_times() {
    let mut nurse = DeviceConfig::of(DeviceKind::NurseObs);
    // 08:00 start: 10:00, 14:00 and 18:00 fall in the 12 h, 22:00 does not
    // (it is the end), 06:00 only the next day.
    nurse.spec.times = vec![6 * 60, 10 * 60, 14 * 60, 18 * 60];
    let rounds = rounds(&config(nurse));
    for p in 0..4 {
        let times: Vec<u64> = rounds.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(times, [2 * HOUR, 6 * HOUR, 10 * HOUR], "patient {p}");
    }
}
