//! How the true state moves: natural variability around a target, and the
//! target moved by active conditions.

use bevy_ecs::component::Component;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::config::ConditionKind;
use crate::vitals::Vitals;

/// One condition episode on a patient.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// Which condition.
    pub kind: ConditionKind,
    /// Onset, simulated ms.
    pub onset_ms: u64,
    /// Severity in (0, 1].
    pub severity: f64,
    /// Onset to full severity, simulated ms.
    pub ramp_ms: u64,
    /// Whether the onset has been logged.
    pub started: bool,
}

impl Episode {
    /// Fraction of the full deterioration reached at `now_ms`, in [0, 1].
    pub fn progress(&self, now_ms: u64) -> f64 {
        if now_ms < self.onset_ms {
            return 0.0;
        }
        if self.ramp_ms == 0 {
            return 1.0;
        }
        ((now_ms - self.onset_ms) as f64 / self.ramp_ms as f64).min(1.0)
    }
}

/// The conditions scheduled on a patient, started or not.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    /// Episodes in scenario order.
    pub episodes: Vec<Episode>,
}

/// Shift of every vital at full severity of sepsis, from REFERENCE.md ("How
/// deteriorations show", a usable 6-24 h ramp, *design choice*): HR 80→125,
/// RR 14→28, temperature 37→39.5, SBP 120→85, SpO2 97→90. DBP falls with SBP
/// (design choice: about 60 % of the systolic fall, keeping pulse pressure).
const SEPSIS_FULL: Vitals = Vitals {
    hr_bpm: 45.0,
    sbp_mmhg: -35.0,
    dbp_mmhg: -20.0,
    rr_bpm: 14.0,
    spo2_pct: -7.0,
    temp_c: 2.5,
};

/// The state the patient is drawn towards at `now_ms`: baseline plus every
/// active condition's shift.
pub fn target(baseline: &Vitals, conditions: &Conditions, now_ms: u64) -> Vitals {
    let mut target = *baseline;
    for episode in &conditions.episodes {
        let weight = episode.severity * episode.progress(now_ms);
        if weight == 0.0 {
            continue;
        }
        let shift = match episode.kind {
            ConditionKind::Sepsis => SEPSIS_FULL,
        };
        target.hr_bpm += weight * shift.hr_bpm;
        target.sbp_mmhg += weight * shift.sbp_mmhg;
        target.dbp_mmhg += weight * shift.dbp_mmhg;
        target.rr_bpm += weight * shift.rr_bpm;
        target.spo2_pct += weight * shift.spo2_pct;
        target.temp_c += weight * shift.temp_c;
    }
    target
}

/// Natural variability of one vital: an Ornstein-Uhlenbeck process with a
/// stationary standard deviation and a correlation time.
#[derive(Clone, Copy, Debug)]
struct Variability {
    sd: f64,
    tau_s: f64,
}

/// Design choices, sized so a healthy adult's values stay inside the
/// REFERENCE.md validation ranges: beat-to-beat and breath-to-breath
/// variation average out over tens of seconds; BP drifts over minutes;
/// core temperature over tens of minutes.
const HR: Variability = Variability {
    sd: 2.5,
    tau_s: 30.0,
};
const SBP: Variability = Variability {
    sd: 4.0,
    tau_s: 120.0,
};
const DBP: Variability = Variability {
    sd: 3.0,
    tau_s: 120.0,
};
const RR: Variability = Variability {
    sd: 1.0,
    tau_s: 60.0,
};
const SPO2: Variability = Variability {
    sd: 0.4,
    tau_s: 30.0,
};
const TEMP: Variability = Variability {
    sd: 0.05,
    tau_s: 600.0,
};

/// Precomputed exact OU update factors for one step length.
#[derive(Clone, Copy, Debug)]
pub struct StepFactors {
    keep: [f64; 6],
    noise: [f64; 6],
}

impl StepFactors {
    /// Factors for a step of `step_ms`.
    pub fn new(step_ms: u64) -> StepFactors {
        let dt_s = step_ms as f64 / 1000.0;
        let mut keep = [0.0; 6];
        let mut noise = [0.0; 6];
        for (i, v) in [HR, SBP, DBP, RR, SPO2, TEMP].into_iter().enumerate() {
            // Exact discretisation: x' = mu + (x - mu) a + sd sqrt(1 - a^2) z.
            let a = (-dt_s / v.tau_s).exp();
            keep[i] = a;
            noise[i] = v.sd * (1.0 - a * a).sqrt();
        }
        StepFactors { keep, noise }
    }
}

/// Advances `state` by one step towards `target` with natural variability.
pub fn advance<R: Rng + ?Sized>(state: &mut Vitals, target: &Vitals, f: &StepFactors, rng: &mut R) {
    let mut z = || -> f64 { StandardNormal.sample(rng) };
    let ou = |x: f64, mu: f64, i: usize, z: f64| mu + (x - mu) * f.keep[i] + f.noise[i] * z;
    state.hr_bpm = ou(state.hr_bpm, target.hr_bpm, 0, z());
    state.sbp_mmhg = ou(state.sbp_mmhg, target.sbp_mmhg, 1, z());
    state.dbp_mmhg = ou(state.dbp_mmhg, target.dbp_mmhg, 2, z());
    state.rr_bpm = ou(state.rr_bpm, target.rr_bpm, 3, z());
    state.spo2_pct = ou(state.spo2_pct, target.spo2_pct, 4, z());
    state.temp_c = ou(state.temp_c, target.temp_c, 5, z());
    state.clamp_physical();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn sepsis(onset_ms: u64, severity: f64) -> Conditions {
        Conditions {
            episodes: vec![Episode {
                kind: ConditionKind::Sepsis,
                onset_ms,
                severity,
                ramp_ms: 3_600_000,
                started: false,
            }],
        }
    }

    const BASE: Vitals = Vitals {
        hr_bpm: 80.0,
        sbp_mmhg: 120.0,
        dbp_mmhg: 75.0,
        rr_bpm: 14.0,
        spo2_pct: 97.0,
        temp_c: 37.0,
    };

    #[test]
    fn sepsis_ramp_reaches_reference_values_at_full_severity() {
        let c = sepsis(0, 1.0);
        assert_eq!(target(&BASE, &c, 0), BASE);
        let full = target(&BASE, &c, 3_600_000);
        // REFERENCE.md: HR 80→125, RR 14→28, temp 37→39.5, SBP 120→85, SpO2 97→90.
        assert_eq!(full.hr_bpm, 125.0);
        assert_eq!(full.rr_bpm, 28.0);
        assert_eq!(full.temp_c, 39.5);
        assert_eq!(full.sbp_mmhg, 85.0);
        assert_eq!(full.spo2_pct, 90.0);
        let half = target(&BASE, &c, 1_800_000);
        assert_eq!(half.hr_bpm, 102.5);
        // Severity scales the whole shift; nothing moves before onset.
        assert_eq!(target(&BASE, &sepsis(0, 0.5), 3_600_000).hr_bpm, 102.5);
        assert_eq!(target(&BASE, &sepsis(60_000, 1.0), 59_999), BASE);
    }

    #[test]
    fn variability_is_stationary_around_the_target() {
        let f = StepFactors::new(1_000);
        let mut rng = rng::stream(1, 2, "vitals");
        let mut state = BASE;
        let n = 200_000;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..n {
            advance(&mut state, &BASE, &f, &mut rng);
            sum += state.hr_bpm;
            sum_sq += state.hr_bpm * state.hr_bpm;
        }
        let mean = sum / n as f64;
        let sd = (sum_sq / n as f64 - mean * mean).sqrt();
        assert!((mean - 80.0).abs() < 0.3, "mean {mean}");
        assert!((sd - HR.sd).abs() < 0.2, "sd {sd}");
    }
}
