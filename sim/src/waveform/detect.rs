//! A device's own QRS detector, in the manner of Pan and Tompkins (IEEE
//! TBME 32(3):230-236, 1985): slope, squaring, a moving-window integral
//! over 150 ms, and an adaptive threshold between the running signal and
//! noise peak levels, with a 200 ms refractory period. Simplified (no
//! band-pass filter, no search-back, one threshold) as a small device's
//! firmware may be: noise, motion and fibrillation fool it, so the heart
//! rate a device reports is what it counted, not the truth.

/// Longest moving-window integral, samples (150 ms at 500 Hz).
const WINDOW_MAX: usize = 80;
/// Longest slope lag, samples (16 ms at 500 Hz).
const LAG_MAX: usize = 8;
/// RR intervals averaged for the rate.
const RR_KEPT: usize = 8;
/// Refractory period after a detection, s.
const REFRACTORY_S: f64 = 0.2;
/// Learning period before the first detection, s.
const LEARN_S: f64 = 2.0;
/// No detection for this long reads as a rate of 0 (asystole: no QRS for
/// 4 s, PhysioNet/CinC 2015 alarm definition).
const ASYSTOLE_S: f64 = 4.0;
/// Smallest integral counted as a QRS: a 0.15 mV complex's (mV², design
/// choice); a flat line, or low noise on one, never counts.
const FLOOR: f32 = 2e-3;

/// A running QRS detector over one ECG channel.
#[derive(Clone, Debug)]
pub struct QrsDetector {
    fs: f64,
    lag: usize,
    window: usize,
    history: [f32; LAG_MAX + 1],
    squares: [f32; WINDOW_MAX],
    /// Where sample `n` goes in `history` and in `squares` (`n` modulo
    /// their lengths, kept by counting: no division per sample).
    history_pos: usize,
    window_pos: usize,
    sum: f32,
    n: u64,
    signal_level: f32,
    noise_level: f32,
    learn_max: f32,
    in_peak: bool,
    peak: f32,
    peak_n: u64,
    last_beat_n: Option<u64>,
    rr: [u32; RR_KEPT],
    rr_len: usize,
    rr_pos: usize,
    /// Beats counted since the start.
    pub detections: u64,
}

impl QrsDetector {
    /// A detector for samples at `fs` Hz.
    pub fn new(fs: u32) -> QrsDetector {
        let fs = f64::from(fs);
        QrsDetector {
            fs,
            lag: ((0.016 * fs).round() as usize).clamp(1, LAG_MAX),
            window: ((0.15 * fs).round() as usize).clamp(1, WINDOW_MAX),
            history: [0.0; LAG_MAX + 1],
            squares: [0.0; WINDOW_MAX],
            history_pos: 0,
            window_pos: 0,
            sum: 0.0,
            n: 0,
            signal_level: 0.0,
            noise_level: 0.0,
            learn_max: 0.0,
            in_peak: false,
            peak: 0.0,
            peak_n: 0,
            last_beat_n: None,
            rr: [0; RR_KEPT],
            rr_len: 0,
            rr_pos: 0,
            detections: 0,
        }
    }

    /// Feeds the next samples (mV).
    pub fn process(&mut self, samples: &[f32]) {
        let learn = (LEARN_S * self.fs) as u64;
        let refractory = (REFRACTORY_S * self.fs) as u64;
        for &x in samples {
            let slot = self.history_pos;
            let back = if slot >= self.lag {
                slot - self.lag
            } else {
                slot + LAG_MAX + 1 - self.lag
            };
            let slope = x - self.history[back];
            self.history[slot] = x;
            self.history_pos = if slot == LAG_MAX { 0 } else { slot + 1 };
            let w = self.window_pos;
            self.window_pos = if w + 1 == self.window { 0 } else { w + 1 };
            let square = slope * slope;
            self.sum += square - self.squares[w];
            self.squares[w] = square;
            // Re-add from scratch now and then: no drift from rounding.
            if w == 0 {
                self.sum = self.squares[..self.window].iter().sum();
            }
            let mwi = self.sum / self.window as f32;
            self.n += 1;
            if self.n < learn {
                self.learn_max = self.learn_max.max(mwi);
                self.noise_level += (mwi - self.noise_level) / 64.0;
                continue;
            }
            if self.n == learn {
                self.signal_level = self.learn_max;
            }
            let threshold =
                (self.noise_level + 0.25 * (self.signal_level - self.noise_level)).max(FLOOR);
            if self.in_peak {
                if mwi > self.peak {
                    self.peak = mwi;
                    self.peak_n = self.n;
                } else if mwi < 0.5 * self.peak {
                    self.in_peak = false;
                    self.signal_level += 0.125 * (self.peak - self.signal_level);
                    self.beat(self.peak_n);
                }
                continue;
            }
            let since = self.last_beat_n.map_or(u64::MAX, |b| self.n - b);
            if mwi > threshold && since > refractory {
                self.in_peak = true;
                self.peak = mwi;
                self.peak_n = self.n;
            } else {
                self.noise_level += (mwi - self.noise_level) / 64.0;
                // Nothing for 1.5 s: the signal got smaller; lower the bar.
                if since > (1.5 * self.fs) as u64 {
                    self.signal_level *= 1.0 - (1.0 / self.fs) as f32;
                }
            }
        }
    }

    fn beat(&mut self, at: u64) {
        if let Some(last) = self.last_beat_n {
            self.rr[self.rr_pos] = (at - last) as u32;
            self.rr_pos = (self.rr_pos + 1) % RR_KEPT;
            self.rr_len = (self.rr_len + 1).min(RR_KEPT);
        }
        self.last_beat_n = Some(at);
        self.detections += 1;
    }

    /// The rate counted: 60 over the mean of the last 8 RR intervals, /min;
    /// 0 after 4 s without a QRS; `None` before two beats were counted.
    pub fn hr_bpm(&self) -> Option<f64> {
        let last = self.last_beat_n?;
        if (self.n - last) as f64 > ASYSTOLE_S * self.fs {
            return Some(0.0);
        }
        if self.rr_len == 0 {
            return None;
        }
        let total: u64 = self.rr[..self.rr_len].iter().map(|&r| u64::from(r)).sum();
        Some(60.0 * self.fs * self.rr_len as f64 / total as f64)
    }

    /// Forgets everything counted (the leads came off).
    pub fn reset(&mut self) {
        *self = QrsDetector::new(self.fs as u32);
    }
}
