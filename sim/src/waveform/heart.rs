//! The patient's heart as the waveforms see it: beat times and types from
//! the twin's rate and rhythm, each beat's waves precomputed once, and the
//! activity between beats (AF's f waves, VF, breathing).

use std::f64::consts::TAU;

use rand::RngExt;
use rand_distr::StandardNormal;

use super::ecg::{self, Morphology, Wave};
use crate::rng::StreamRng;
use crate::vitals::{Rhythm, Vitals};

/// The rhythm as the ECG shows it (and as a WFDB rhythm annotation names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EcgRhythm {
    /// Sinus rhythm, whatever its rate (brady- and tachycardia included).
    #[default]
    Sinus,
    /// Atrial fibrillation.
    Af,
    /// Ventricular tachycardia.
    Vt,
    /// Ventricular fibrillation.
    Vf,
    /// Asystole.
    Asystole,
    /// Pulseless electrical activity.
    Pea,
}

impl EcgRhythm {
    /// The rhythm the ECG shows for the twin's rhythm.
    pub fn of(rhythm: Rhythm) -> EcgRhythm {
        match rhythm {
            Rhythm::Sinus => EcgRhythm::Sinus,
            Rhythm::Af => EcgRhythm::Af,
            Rhythm::Vt => EcgRhythm::Vt,
            Rhythm::Vf => EcgRhythm::Vf,
            Rhythm::Asystole => EcgRhythm::Asystole,
            Rhythm::Pea => EcgRhythm::Pea,
        }
    }

    /// The WFDB rhythm label (the aux string of a `+` annotation): MIT-BIH's
    /// `(N`, `(AFIB`, `(VT`, `(VFL`; `(ASYS` as the PhysioNet/CinC 2015
    /// challenge names asystole, and medtwin's `(PEA` (no MIT-BIH label).
    pub fn label(self) -> &'static str {
        match self {
            EcgRhythm::Sinus => "(N",
            EcgRhythm::Af => "(AFIB",
            EcgRhythm::Vt => "(VT",
            EcgRhythm::Vf => "(VFL",
            EcgRhythm::Asystole => "(ASYS",
            EcgRhythm::Pea => "(PEA",
        }
    }

    /// Whether the rhythm has discrete beats (QRS complexes).
    pub fn has_beats(self) -> bool {
        !matches!(self, EcgRhythm::Vf | EcgRhythm::Asystole)
    }
}

/// What kind of beat (the WFDB beat annotation code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BeatKind {
    /// Normal (sinus- or AF-conducted, and PEA's complexes): `N`.
    #[default]
    Normal,
    /// Ventricular (a PVC, a beat of VT): `V`.
    Ventricular,
}

impl BeatKind {
    /// The MIT annotation mnemonic.
    pub fn code(self) -> char {
        match self {
            BeatKind::Normal => 'N',
            BeatKind::Ventricular => 'V',
        }
    }
}

/// One beat: when its R peak is, what kind it is, and its waves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Beat {
    /// R peak, s from the start of the run.
    pub r_s: f64,
    /// Kind.
    pub kind: BeatKind,
    /// P, Q, R, S, T in lead II, mV.
    pub ecg: [Wave; 5],
    /// The pulse it ejects at the finger: systolic and dicrotic waves,
    /// in units of a normal pulse's height (zero without a pulse).
    pub pulse: [Wave; 2],
}

/// A rhythm beginning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RhythmChange {
    /// When, s from the start of the run.
    pub at_s: f64,
    /// The rhythm from then on.
    pub rhythm: EcgRhythm,
}

/// What drives the heart during one block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drive {
    /// Mean ventricular rate, /min (the twin's HR; ignored without beats).
    pub rate_bpm: f64,
    /// Rhythm.
    pub rhythm: EcgRhythm,
    /// Breathing rate, /min (0: apnoea).
    pub resp_bpm: f64,
    /// Perfusion at the finger: 1 a normal pulse, 0 none.
    pub perfusion: f64,
    /// Premature ventricular complexes per minute, in sinus rhythm or AF.
    pub pvc_per_min: f64,
}

impl Drive {
    /// The drive of a patient in `vitals` with `pvc_per_min` ectopy.
    ///
    /// Perfusion follows the pulse pressure (40 mmHg = 1: a narrow pulse
    /// pressure in shock gives a small pleth; *design choice*), none
    /// without a pulse.
    pub fn of(vitals: &Vitals, pvc_per_min: f64) -> Drive {
        let rhythm = EcgRhythm::of(vitals.rhythm);
        let perfusion = if vitals.has_pulse() {
            ((vitals.sbp_mmhg - vitals.dbp_mmhg) / 40.0).clamp(0.05, 1.5)
        } else {
            0.0
        };
        Drive {
            rate_bpm: vitals.ecg_rate(),
            rhythm,
            resp_bpm: vitals.rr_bpm,
            perfusion,
            pvc_per_min,
        }
    }
}

/// One oscillation between beats: phase at the block's start, rate, height.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Oscillation {
    pub phase: f64,
    pub freq_hz: f64,
    pub amp: f64,
}

impl Oscillation {
    fn advance(&mut self, seconds: f64) {
        self.phase = (self.phase + TAU * self.freq_hz * seconds).rem_euclid(TAU);
    }
}

/// Beats kept: from 1 s before the block (a slow beat's T wave) to the
/// look-ahead after it, for blocks of at most 1 s.
const RING: usize = 32;
/// Beats are scheduled this far past the block, so the next beat's P and
/// Q waves are drawn before its R peak's block (s).
const LOOKAHEAD_S: f64 = 0.6;
/// Beats older than this before the block's start are dropped (s).
const KEEP_S: f64 = 1.2;
/// Shortest RR interval the heart produces (s): the ventricles'
/// refractory period bounds any rate at ~240 /min (*design choice*).
const MIN_RR_S: f64 = 0.25;

/// Respiratory sinus arrhythmia: RR varies ±5 % with breathing at rest,
/// shrinking at high rates (*design choice* within reported RSA of 20-100 ms
/// at rest; Task Force of ESC/NASPE 1996 HRV standard).
fn rsa_fraction(rate_bpm: f64) -> f64 {
    0.05 * ((120.0 - rate_bpm) / 60.0).clamp(0.1, 1.0)
}
/// Mayer waves (~0.1 Hz) modulate RR by ±1.5 % (*design choice*).
const LF_FRACTION: f64 = 0.015;
const LF_HZ: f64 = 0.1;
/// Beat-to-beat jitter in sinus rhythm, fraction of RR (*design choice*).
const SINUS_JITTER: f64 = 0.005;
/// AF: RR lognormal around the mean, CV ~0.2 (beat-to-beat CV in AF is
/// 15-25 %, docs/references.md), bounded to 0.55-1.9 × mean.
const AF_RR_SIGMA: f64 = 0.2;
/// VT: regular, 1 % jitter.
const VT_JITTER: f64 = 0.01;
/// A PVC comes at 60 % of the RR interval (coupling interval); in sinus
/// rhythm the next sinus beat keeps its time (full compensatory pause: two
/// RR intervals from the beat before the PVC).
const PVC_COUPLING: f64 = 0.6;

/// A patient's heart for the waveforms: beat times and shapes.
pub struct Heart {
    rng: StreamRng,
    ring: [Beat; RING],
    first: usize,
    len: usize,
    /// When the next beat is due and what kind it is.
    next_r_s: f64,
    next_kind: BeatKind,
    /// After a PVC in sinus rhythm: when the next sinus beat is due.
    resume_s: Option<f64>,
    last_r_s: f64,
    rhythm: Option<EcgRhythm>,
    rhythm_since_s: f64,
    drive: Drive,
    /// Where the block starts and ends, s.
    t0_s: f64,
    t1_s: f64,
    /// f waves (AF) or the VF oscillation, at the block's start.
    pub(super) fib: [Oscillation; 2],
    /// Breathing, at the block's start: phase 0 starts an inspiration.
    pub(super) breath: Oscillation,
    lf_phase: f64,
}

impl Heart {
    /// A heart drawing from `rng` (the patient's `waveform` stream).
    pub fn new(mut rng: StreamRng) -> Heart {
        let lf_phase = rng.random_range(0.0..TAU);
        let breath = Oscillation {
            phase: rng.random_range(0.0..TAU),
            ..Oscillation::default()
        };
        let first_beat = rng.random_range(0.0..0.8);
        Heart {
            rng,
            ring: [Beat::default(); RING],
            first: 0,
            len: 0,
            next_r_s: first_beat,
            next_kind: BeatKind::Normal,
            resume_s: None,
            last_r_s: f64::NEG_INFINITY,
            rhythm: None,
            rhythm_since_s: 0.0,
            drive: Drive {
                rate_bpm: 60.0,
                rhythm: EcgRhythm::Sinus,
                resp_bpm: 0.0,
                perfusion: 0.0,
                pvc_per_min: 0.0,
            },
            t0_s: 0.0,
            t1_s: 0.0,
            fib: [Oscillation::default(); 2],
            breath,
            lf_phase,
        }
    }

    /// The block `[t0_s, t1_s)` (at most 1 s) under `drive`: schedules the
    /// beats it needs and sets the activity between beats. Returns the
    /// rhythm change at `t0_s`, if the rhythm changed (or this is the
    /// first block).
    pub fn advance(&mut self, t0_s: f64, t1_s: f64, drive: &Drive) -> Option<RhythmChange> {
        debug_assert!(t1_s - t0_s <= 1.0 + 1e-9, "blocks of at most 1 s");
        // The oscillations carry on from the previous block.
        let previous = self.t1_s - self.t0_s;
        for osc in &mut self.fib {
            osc.advance(previous);
        }
        self.breath.advance(previous);
        self.t0_s = t0_s;
        self.t1_s = t1_s;
        self.drive = *drive;
        let mut change = None;
        if self.rhythm != Some(drive.rhythm) {
            change = Some(RhythmChange {
                at_s: t0_s,
                rhythm: drive.rhythm,
            });
            self.rhythm = Some(drive.rhythm);
            self.rhythm_since_s = t0_s;
            // Beats not yet reached belong to the old rhythm.
            while self.len > 0 && self.beat(self.len - 1).r_s >= t0_s {
                self.len -= 1;
            }
            self.resume_s = None;
            self.next_kind = if drive.rhythm == EcgRhythm::Vt {
                BeatKind::Ventricular
            } else {
                BeatKind::Normal
            };
            self.next_r_s = t0_s.max(self.last_r_s + MIN_RR_S);
        }
        self.breath.freq_hz = drive.resp_bpm.max(0.0) / 60.0;
        self.breath.amp = if drive.resp_bpm > 0.0 { 1.0 } else { 0.0 };
        self.set_fibrillation(drive);
        // Drop what no sample of this block can see any more.
        while self.len > 0 && self.ring[self.first].r_s < t0_s - KEEP_S {
            self.first = (self.first + 1) % RING;
            self.len -= 1;
        }
        if drive.rhythm.has_beats() {
            let horizon = t1_s + LOOKAHEAD_S;
            while self.next_r_s < horizon && self.len < RING {
                self.schedule_next();
            }
        } else {
            self.next_r_s = self.next_r_s.max(t1_s);
        }
        change
    }

    /// The f waves of AF (one component, 5-8 Hz, ~0.05 mV) or VF's chaotic
    /// 4-8 Hz oscillation (two components; coarse 0.5 mV at onset, fine
    /// ~0.15 mV after 10 min: docs/references.md, "Waveforms").
    fn set_fibrillation(&mut self, drive: &Drive) {
        let rng = &mut self.rng;
        let mut wander = |osc: &mut Oscillation, lo: f64, hi: f64| {
            if osc.freq_hz < lo || osc.freq_hz > hi {
                osc.freq_hz = rng.random_range(lo..hi);
            }
            let step: f64 = rng.sample(StandardNormal);
            osc.freq_hz = (osc.freq_hz + 0.35 * step).clamp(lo, hi);
        };
        match drive.rhythm {
            EcgRhythm::Af => {
                wander(&mut self.fib[0], 5.0, 8.0);
                self.fib[0].amp = 0.05 * (1.0 + 0.3 * self.rng.random_range(-1.0..1.0));
                self.fib[1].amp = 0.0;
            }
            EcgRhythm::Vf => {
                let minutes = (self.t0_s - self.rhythm_since_s) / 60.0;
                let coarse = 0.15 + 0.35 * (-minutes / 5.0).exp();
                wander(&mut self.fib[0], 4.0, 8.0);
                wander(&mut self.fib[1], 4.0, 8.0);
                let m0 = 0.7 + 0.3 * self.rng.random_range(-1.0..1.0);
                let m1 = 0.4 + 0.3 * self.rng.random_range(-1.0..1.0);
                self.fib[0].amp = coarse * m0;
                self.fib[1].amp = coarse * m1;
            }
            _ => {
                self.fib[0].amp = 0.0;
                self.fib[1].amp = 0.0;
            }
        }
    }

    fn normal(&mut self) -> f64 {
        self.rng.sample(StandardNormal)
    }

    /// Places the due beat and decides when the one after it comes.
    fn schedule_next(&mut self) {
        let drive = self.drive;
        let at = self.next_r_s;
        let kind = self.next_kind;
        let mean_rr = 60.0 / drive.rate_bpm.clamp(15.0, 240.0);
        let rr_before = if self.last_r_s.is_finite() {
            at - self.last_r_s
        } else {
            mean_rr
        };
        let morphology = match (kind, drive.rhythm) {
            (BeatKind::Ventricular, _) => Morphology::Ventricular,
            (_, EcgRhythm::Sinus) => Morphology::Normal,
            _ => Morphology::NoP,
        };
        // PEA's complexes are smaller (*design choice*).
        let gain = if drive.rhythm == EcgRhythm::Pea {
            0.6
        } else {
            1.0
        };
        let ecg = ecg::waves(morphology, at, rr_before, gain);
        let pulse = pulse_waves(at, rr_before, mean_rr, kind, drive.perfusion);
        self.push(Beat {
            r_s: at,
            kind,
            ecg,
            pulse,
        });
        self.last_r_s = at;

        let z = self.normal();
        let (next, next_kind) = match drive.rhythm {
            EcgRhythm::Vt => (at + mean_rr * (1.0 + VT_JITTER * z), BeatKind::Ventricular),
            _ if kind == BeatKind::Ventricular && self.resume_s.is_some() => (
                self.resume_s.take().unwrap_or(at + mean_rr),
                BeatKind::Normal,
            ),
            EcgRhythm::Sinus | EcgRhythm::Af | EcgRhythm::Pea => {
                let rr = match drive.rhythm {
                    EcgRhythm::Sinus => {
                        let t = at - self.t0_s;
                        let breath = self.breath.phase + TAU * self.breath.freq_hz * t;
                        let lf = self.lf_phase + TAU * LF_HZ * at;
                        mean_rr
                            * (1.0 - self.breath.amp * rsa_fraction(drive.rate_bpm) * breath.sin()
                                + LF_FRACTION * lf.sin()
                                + SINUS_JITTER * z)
                    }
                    EcgRhythm::Af => {
                        let factor = (AF_RR_SIGMA * z - 0.5 * AF_RR_SIGMA * AF_RR_SIGMA).exp();
                        mean_rr * factor.clamp(0.55, 1.9)
                    }
                    _ => mean_rr * (1.0 + SINUS_JITTER * z),
                };
                let rr = rr.max(MIN_RR_S);
                let pvc = (drive.pvc_per_min * rr / 60.0).min(0.5);
                if drive.rhythm != EcgRhythm::Pea && pvc > 0.0 && self.rng.random_bool(pvc) {
                    let coupling = (PVC_COUPLING * rr).max(MIN_RR_S);
                    let resume = match drive.rhythm {
                        EcgRhythm::Sinus => at + 2.0 * rr,
                        // AF has no sinus clock to keep: the next beat
                        // comes a drawn interval after the PVC.
                        _ => at + coupling + rr,
                    };
                    self.resume_s = Some(resume.max(at + coupling + MIN_RR_S));
                    (at + coupling, BeatKind::Ventricular)
                } else {
                    (at + rr, BeatKind::Normal)
                }
            }
            EcgRhythm::Vf | EcgRhythm::Asystole => (at + mean_rr, BeatKind::Normal),
        };
        self.next_r_s = next.max(at + MIN_RR_S);
        self.next_kind = next_kind;
    }

    fn push(&mut self, beat: Beat) {
        if self.len == RING {
            // Cannot happen with blocks of at most 1 s (at most ~12 beats
            // live); keep the newest rather than stall.
            self.first = (self.first + 1) % RING;
            self.len -= 1;
        }
        let slot = (self.first + self.len) % RING;
        self.ring[slot] = beat;
        self.len += 1;
    }

    fn beat(&self, i: usize) -> &Beat {
        &self.ring[(self.first + i) % RING]
    }

    /// Every beat the block's samples can see, oldest first.
    pub fn beats(&self) -> impl Iterator<Item = &Beat> {
        (0..self.len).map(|i| self.beat(i))
    }

    /// The beats whose R peak falls in the current block, oldest first.
    pub fn beats_in_block(&self) -> impl Iterator<Item = &Beat> {
        let (t0, t1) = (self.t0_s, self.t1_s);
        self.beats().filter(move |b| b.r_s >= t0 && b.r_s < t1)
    }

    /// The current block, s.
    pub fn block(&self) -> (f64, f64) {
        (self.t0_s, self.t1_s)
    }

    /// The drive of the current block.
    pub fn drive(&self) -> &Drive {
        &self.drive
    }
}

/// The pulse a beat ejects: it reaches the finger 200-300 ms after the R
/// peak (pulse arrival time; longer when perfusion is poor), a systolic
/// wave and a smaller dicrotic one (*design choice* within published
/// PPG morphology: Allen 2007, Physiol. Meas. 28:R1). A beat after a short
/// interval fills less and ejects less (Frank-Starling): a PVC's pulse is
/// small (the pulse deficit).
fn pulse_waves(
    r_s: f64,
    rr_before: f64,
    mean_rr: f64,
    kind: BeatKind,
    perfusion: f64,
) -> [Wave; 2] {
    if perfusion <= 0.0 {
        return [Wave::default(); 2];
    }
    let filling = (rr_before / mean_rr).clamp(0.3, 1.3);
    let kind_factor = match kind {
        BeatKind::Normal => 1.0,
        BeatKind::Ventricular => 0.5,
    };
    let amp = perfusion * filling * kind_factor;
    let arrival = 0.22 + 0.06 * (1.0 - perfusion.min(1.0));
    let sqrt_rr = mean_rr.clamp(0.25, 2.0).sqrt();
    [
        Wave {
            at_s: r_s + arrival + 0.10,
            sigma_s: 0.055 * sqrt_rr,
            amp,
        },
        Wave {
            at_s: r_s + arrival + 0.32 * sqrt_rr,
            sigma_s: 0.08 * sqrt_rr,
            amp: 0.4 * amp,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn drive(rate_bpm: f64, rhythm: EcgRhythm) -> Drive {
        Drive {
            rate_bpm,
            rhythm,
            resp_bpm: 14.0,
            perfusion: 1.0,
            pvc_per_min: 0.0,
        }
    }

    /// R times over `seconds` one-second blocks.
    fn beats(heart: &mut Heart, drive: &Drive, seconds: u32) -> Vec<Beat> {
        beats_from(heart, drive, 0, seconds)
    }

    fn beats_from(heart: &mut Heart, drive: &Drive, from: u32, seconds: u32) -> Vec<Beat> {
        let mut out = Vec::new();
        for s in from..from + seconds {
            heart.advance(f64::from(s), f64::from(s + 1), drive);
            out.extend(heart.beats_in_block().copied());
        }
        out
    }

    fn normalised_rmssd(beats: &[Beat]) -> f64 {
        let rr: Vec<f64> = beats.windows(2).map(|w| w[1].r_s - w[0].r_s).collect();
        let mean = rr.iter().sum::<f64>() / rr.len() as f64;
        let ms = rr.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / (rr.len() - 1) as f64;
        ms.sqrt() / mean
    }

    #[test]
    fn sinus_rate_is_the_drive_rate() {
        for rate in [40.0, 75.0, 120.0, 180.0] {
            let mut heart = Heart::new(rng::stream(1, 2, "waveform"));
            let b = beats(&mut heart, &drive(rate, EcgRhythm::Sinus), 120);
            let span = b.last().unwrap().r_s - b[0].r_s;
            let measured = 60.0 * (b.len() - 1) as f64 / span;
            assert!((measured - rate).abs() < 0.02 * rate, "{rate}: {measured}");
            assert!(b.iter().all(|b| b.kind == BeatKind::Normal));
        }
    }

    #[test]
    fn af_and_sinus_are_separable_by_rr_irregularity_over_100_seeds() {
        // RMSSD / mean RR over a minute: sinus at 40-180 /min and AF at
        // 80-160 /min, 100 seeds each; the groups must not overlap.
        let (mut sinus, mut af) = (Vec::new(), Vec::new());
        for seed in 0..100 {
            let rate = 40.0 + f64::from(seed as u32 % 15) * 10.0;
            let mut heart = Heart::new(rng::stream(seed, 7, "waveform"));
            let s = beats(&mut heart, &drive(rate, EcgRhythm::Sinus), 60);
            sinus.push(normalised_rmssd(&s));
            let af_rate = 80.0 + f64::from(seed as u32 % 9) * 10.0;
            let mut heart = Heart::new(rng::stream(seed, 8, "waveform"));
            let a = beats(&mut heart, &drive(af_rate, EcgRhythm::Af), 60);
            af.push(normalised_rmssd(&a));
        }
        let range = |v: &[f64]| {
            v.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            })
        };
        let (sinus_min, sinus_max) = range(&sinus);
        let (af_min, af_max) = range(&af);
        eprintln!(
            "RMSSD/RR over 100 seeds: sinus {sinus_min:.4}-{sinus_max:.4}, AF {af_min:.4}-{af_max:.4}"
        );
        assert!(sinus_max < 0.1, "sinus RMSSD/RR up to {sinus_max}");
        assert!(af_min > 0.15, "AF RMSSD/RR down to {af_min}");
        assert!(sinus_max < af_min, "the groups overlap");
    }

    #[test]
    fn pvcs_are_premature_with_a_compensatory_pause() {
        let mut heart = Heart::new(rng::stream(3, 4, "waveform"));
        let mut d = drive(60.0, EcgRhythm::Sinus);
        d.pvc_per_min = 6.0;
        let b = beats(&mut heart, &d, 300);
        let mut seen = 0;
        for w in b.windows(3) {
            if w[1].kind == BeatKind::Ventricular {
                seen += 1;
                let before = w[1].r_s - w[0].r_s;
                let after = w[2].r_s - w[1].r_s;
                assert!(before < 0.8, "premature: {before}");
                let pair = w[2].r_s - w[0].r_s;
                assert!((pair - 2.0).abs() < 0.25, "compensatory: {pair}");
                assert!(after > before);
                assert_eq!(w[1].ecg[0].amp, 0.0, "no P wave");
            }
        }
        assert!((15..=60).contains(&seen), "{seen} PVCs in 5 min at 6/min");
    }

    #[test]
    fn rhythms_change_with_the_drive() {
        let mut heart = Heart::new(rng::stream(1, 1, "waveform"));
        let first = heart.advance(0.0, 1.0, &drive(70.0, EcgRhythm::Sinus));
        assert_eq!(first.map(|c| c.rhythm), Some(EcgRhythm::Sinus));
        assert_eq!(
            heart.advance(1.0, 2.0, &drive(70.0, EcgRhythm::Sinus)),
            None
        );
        let vf = heart.advance(2.0, 3.0, &drive(300.0, EcgRhythm::Vf));
        assert_eq!(vf.map(|c| (c.at_s, c.rhythm)), Some((2.0, EcgRhythm::Vf)));
        assert_eq!(heart.beats_in_block().count(), 0);
        assert!(heart.fib[0].amp > 0.1);
        let vt = beats_from(&mut heart, &drive(180.0, EcgRhythm::Vt), 3, 10);
        assert!(vt.iter().all(|b| b.kind == BeatKind::Ventricular));
        assert!((25..=35).contains(&vt.len()));
    }
}
