//! The beat template: Gaussians in time around the R peak, as ECGSYN sums
//! Gaussians in phase (McSharry et al. 2003, IEEE TBME 50(3):289-294), and
//! their rendering into samples without an `exp` per sample.

/// One Gaussian wave of a beat: `amp · exp(-(t - at)² / 2σ²)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Wave {
    /// Centre, seconds from the start of the run.
    pub at_s: f64,
    /// Width (standard deviation), s.
    pub sigma_s: f64,
    /// Height, in the channel's unit (mV for the ECG).
    pub amp: f64,
}

/// A wave is drawn out to this many standard deviations each side (the
/// rest is below 0.04 % of its height: under one 1-µV step for any wave
/// smaller than 2.5 mV).
const SUPPORT_SIGMAS: f64 = 4.0;

impl Wave {
    /// Where the wave is drawn: `[start, end)`, s.
    pub fn support(&self) -> (f64, f64) {
        let half = SUPPORT_SIGMAS * self.sigma_s;
        (self.at_s - half, self.at_s + half)
    }

    /// Adds the wave to `out`, whose sample `k` is at `t0_s + k / fs`.
    ///
    /// Gaussian samples on a uniform grid follow a product recurrence:
    /// with `g_k = A·exp(-x_k²/2σ²)` and `x_{k+1} = x_k + h`,
    /// `g_{k+1} = g_k · r_k` and `r_{k+1} = r_k · c`, where
    /// `r_0 = exp(-(2 x_0 h + h²)/2σ²)` and `c = exp(-h²/σ²)`: three `exp`
    /// per wave and block, then two multiplications per sample.
    #[inline]
    pub fn add_to(&self, out: &mut [f32], t0_s: f64, fs: f64) {
        if self.amp == 0.0 || out.is_empty() {
            return;
        }
        let (lo, hi) = self.support();
        let first = ((lo - t0_s) * fs).ceil().max(0.0);
        let end = (((hi - t0_s) * fs).ceil()).min(out.len() as f64);
        if first >= end {
            return;
        }
        let (first, end) = (first as usize, end as usize);
        let h = 1.0 / fs;
        let inv = 1.0 / (2.0 * self.sigma_s * self.sigma_s);
        let x0 = t0_s + first as f64 * h - self.at_s;
        let mut g = self.amp * (-x0 * x0 * inv).exp();
        let mut r = (-(2.0 * x0 * h + h * h) * inv).exp();
        let c = (-2.0 * h * h * inv).exp();
        for sample in &mut out[first..end] {
            *sample += g as f32;
            g *= r;
            r *= c;
        }
    }
}

/// The shape of a beat in lead II, relative to its R peak at 0 s, for an
/// RR interval of 1 s. `[P, Q, R, S, T]`: (centre s, width s, height mV).
///
/// Figures (*design choice* within textbook lead II values: P 0.1-0.25 mV
/// and under 120 ms; PR 120-200 ms; QRS 80-100 ms; R 0.5-2 mV; T 0.1-0.5 mV;
/// QT ~400 ms at 60 /min; docs/references.md, "Waveforms"). ECGSYN's own
/// table (angles -60°, -15°, 0°, 15°, 100° and heights 1.2, -5, 30, -7.5,
/// 0.75 in its arbitrary units) has the same order and signs.
const NORMAL: [(f64, f64, f64); 5] = [
    (-0.165, 0.022, 0.15),
    (-0.028, 0.008, -0.12),
    (0.0, 0.011, 1.2),
    (0.030, 0.009, -0.28),
    (0.290, 0.055, 0.30),
];

/// A ventricular beat (PVC, VT): no P, a broad R and S (QRS ≥ 140 ms) and a
/// T wave opposite to the QRS (discordant), as ventricular activation
/// spreads cell to cell rather than through the conduction system.
const VENTRICULAR: [(f64, f64, f64); 5] = [
    (0.0, 0.020, 0.0),
    (-0.045, 0.020, -0.10),
    (0.0, 0.032, 1.35),
    (0.075, 0.030, -0.45),
    (0.320, 0.075, -0.35),
];

/// Which template a beat is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Morphology {
    /// Sinus-conducted: P, narrow QRS, T.
    Normal,
    /// Conducted without a P wave (AF, PEA).
    NoP,
    /// Ventricular: wide QRS, discordant T, no P.
    Ventricular,
}

/// The five waves of a beat with its R peak at `r_s`, after an RR
/// interval of `rr_s`, scaled by `gain`.
///
/// Rate scaling as ECGSYN does it (McSharry 2003): the QRS keeps its
/// width; the T wave's place and width scale with √RR (so QT follows
/// Bazett's QT = QTc·√RR: QT shortens with rate); the P wave moves a
/// little closer at high rates (PR shortens slightly, by RR^0.25).
pub fn waves(morphology: Morphology, r_s: f64, rr_s: f64, gain: f64) -> [Wave; 5] {
    let rr = rr_s.clamp(0.25, 2.5);
    let sqrt_rr = rr.sqrt();
    let table = match morphology {
        Morphology::Normal | Morphology::NoP => &NORMAL,
        Morphology::Ventricular => &VENTRICULAR,
    };
    let mut out = [Wave::default(); 5];
    for (i, &(at, sigma, amp)) in table.iter().enumerate() {
        let (at, sigma) = match i {
            0 => (at * sqrt_rr.sqrt(), sigma),
            4 => (at * sqrt_rr, sigma * sqrt_rr),
            _ => (at, sigma),
        };
        let amp = if i == 0 && morphology != Morphology::Normal {
            0.0
        } else {
            amp * gain
        };
        out[i] = Wave {
            at_s: r_s + at,
            sigma_s: sigma,
            amp,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrence_matches_exp() {
        let wave = Wave {
            at_s: 0.5,
            sigma_s: 0.011,
            amp: 1.2,
        };
        for fs in [125.0, 250.0, 500.0] {
            let mut out = vec![0.0f32; fs as usize];
            wave.add_to(&mut out, 0.0, fs);
            for (k, &v) in out.iter().enumerate() {
                let t = k as f64 / fs;
                let x = t - 0.5;
                let want = if x.abs() <= 4.0 * 0.011 {
                    1.2 * (-x * x / (2.0 * 0.011 * 0.011)).exp()
                } else {
                    0.0
                };
                assert!(
                    (f64::from(v) - want).abs() < 1e-5,
                    "fs {fs} k {k}: {v} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_wave_split_over_two_blocks_equals_one_block() {
        let wave = Wave {
            at_s: 1.0,
            sigma_s: 0.05,
            amp: 0.3,
        };
        let mut whole = vec![0.0f32; 500];
        wave.add_to(&mut whole, 0.0, 250.0);
        let mut a = vec![0.0f32; 250];
        let mut b = vec![0.0f32; 250];
        wave.add_to(&mut a, 0.0, 250.0);
        wave.add_to(&mut b, 1.0, 250.0);
        for k in 0..500 {
            let split = if k < 250 { a[k] } else { b[k - 250] };
            assert!((whole[k] - split).abs() < 1e-6);
        }
    }

    #[test]
    fn qt_shortens_with_rate() {
        let slow = waves(Morphology::Normal, 0.0, 1.5, 1.0);
        let fast = waves(Morphology::Normal, 0.0, 0.4, 1.0);
        assert!(fast[4].at_s < slow[4].at_s);
        assert!(fast[4].sigma_s < slow[4].sigma_s);
        assert_eq!(fast[2].sigma_s, slow[2].sigma_s);
        let ventricular = waves(Morphology::Ventricular, 0.0, 1.0, 1.0);
        assert_eq!(ventricular[0].amp, 0.0);
        assert!(ventricular[4].amp < 0.0);
    }
}
