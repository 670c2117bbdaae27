//! A device's view of the heart: its channels rendered at its own sample
//! rate, with its artifacts, and its QRS detector.

use std::f64::consts::TAU;

use rand::{Rng, RngExt};

use super::detect::QrsDetector;
use super::heart::{Heart, Oscillation};
use crate::rng::StreamRng;

/// A waveform channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// ECG lead II, mV.
    EcgII,
    /// Photoplethysmogram at the finger, normalised units (1 = a normal
    /// pulse's height).
    Pleth,
    /// Thoracic impedance respiration, Ω change around the baseline.
    Resp,
}

impl Channel {
    /// Every channel, in the order a record stores them.
    pub const ALL: [Channel; 3] = [Channel::EcgII, Channel::Pleth, Channel::Resp];

    /// The name in scenario files and record headers.
    pub fn name(self) -> &'static str {
        match self {
            Channel::EcgII => "ecg_ii",
            Channel::Pleth => "pleth",
            Channel::Resp => "resp",
        }
    }

    /// The channel called `name`.
    pub fn named(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Unit of the samples (as WFDB and EDF headers write it).
    pub fn unit(self) -> &'static str {
        match self {
            Channel::EcgII => "mV",
            Channel::Pleth => "NU",
            Channel::Resp => "Ohm",
        }
    }
}

/// How much electrode and motion noise a device picks up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NoiseLevel {
    /// A clean signal.
    None,
    /// Resting patient, good electrodes.
    #[default]
    Low,
    /// An ambulatory patient: clearly visible wander, EMG and mains.
    Moderate,
    /// A poor contact on a moving patient.
    High,
}

impl NoiseLevel {
    /// Every level.
    pub const ALL: [NoiseLevel; 4] = [
        NoiseLevel::None,
        NoiseLevel::Low,
        NoiseLevel::Moderate,
        NoiseLevel::High,
    ];

    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            NoiseLevel::None => "none",
            NoiseLevel::Low => "low",
            NoiseLevel::Moderate => "moderate",
            NoiseLevel::High => "high",
        }
    }

    /// The level called `name`.
    pub fn named(name: &str) -> Option<NoiseLevel> {
        NoiseLevel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Baseline wander, EMG (RMS) and mains amplitudes, mV (*design
    /// choice*; moderate is the MIT-BIH Noise Stress Test's range of
    /// baseline wander and muscle artifact at SNR ~24 dB for a 1.2 mV R:
    /// Moody, Muldrow & Mark 1984).
    fn amplitudes_mv(self) -> (f64, f64, f64) {
        match self {
            NoiseLevel::None => (0.0, 0.0, 0.0),
            NoiseLevel::Low => (0.05, 0.01, 0.01),
            NoiseLevel::Moderate => (0.15, 0.03, 0.05),
            NoiseLevel::High => (0.4, 0.08, 0.15),
        }
    }
}

/// What a waveform device records.
#[derive(Clone, Debug, PartialEq)]
pub struct WaveformConfig {
    /// Samples per second per channel: 125, 250 or 500.
    pub rate_hz: u32,
    /// Channels, in [`Channel::ALL`] order.
    pub channels: Vec<Channel>,
    /// Noise picked up.
    pub noise: NoiseLevel,
    /// Mains frequency, Hz (50 or 60).
    pub mains_hz: u32,
}

impl WaveformConfig {
    /// Rates a device may sample at.
    pub const RATES_HZ: [u32; 3] = [125, 250, 500];
}

/// Largest block rendered at once, s (the heart's blocks are at most 1 s).
pub const BLOCK_MAX_MS: u64 = 1_000;

/// A device's waveform state: oscillators for its artifacts, the block
/// buffer (reused), and its QRS detector.
pub struct Synth {
    config: WaveformConfig,
    rng: StreamRng,
    /// Channel-major samples of the last block.
    buffer: Vec<f32>,
    block_len: usize,
    wander: Oscillation,
    mains: Oscillation,
    detector: QrsDetector,
    counting: bool,
    /// Whether the electrodes are off (set by the device's sampling): the
    /// ECG and impedance channels go flat.
    pub lead_off: bool,
    /// Whether the patient is moving (set by the device's sampling).
    pub motion: bool,
}

impl Synth {
    /// A device's synthesiser, drawing from `rng` (its `waveform` stream).
    pub fn new(config: WaveformConfig, mut rng: StreamRng) -> Synth {
        let block = (config.rate_hz as usize * BLOCK_MAX_MS as usize).div_ceil(1000) + 1;
        let wander = Oscillation {
            phase: rng.random_range(0.0..TAU),
            freq_hz: rng.random_range(0.15..0.35),
            amp: 0.0,
        };
        let mains = Oscillation {
            phase: rng.random_range(0.0..TAU),
            freq_hz: f64::from(config.mains_hz),
            amp: 0.0,
        };
        Synth {
            buffer: vec![0.0; block * config.channels.len()],
            block_len: 0,
            detector: QrsDetector::new(config.rate_hz),
            counting: true,
            config,
            rng,
            wander,
            mains,
            lead_off: false,
            motion: false,
        }
    }

    /// The same synthesiser without its QRS detector: synthesis alone,
    /// for measuring it (`medtwin bench ecg`, the divan benchmarks).
    pub fn without_detector(mut self) -> Synth {
        self.counting = false;
        self
    }

    /// What it records.
    pub fn config(&self) -> &WaveformConfig {
        &self.config
    }

    /// The first sample index at or after `t_ms`.
    pub fn sample_at(&self, t_ms: u64) -> u64 {
        (t_ms * u64::from(self.config.rate_hz)).div_ceil(1000)
    }

    /// Renders the heart's current block (`heart.block()`), which must
    /// span `[t0_ms, t1_ms)`, at most [`BLOCK_MAX_MS`] long, then counts
    /// its QRS complexes; [`Synth::channel`] then reads the samples.
    pub fn render(&mut self, heart: &Heart, t0_ms: u64, t1_ms: u64) {
        let fs = f64::from(self.config.rate_hz);
        let k0 = self.sample_at(t0_ms);
        let n = (self.sample_at(t1_ms) - k0) as usize;
        let t_first = k0 as f64 / fs;
        let (t0_s, _) = heart.block();
        let per_channel = self.buffer.len() / self.config.channels.len().max(1);
        assert!(n <= per_channel, "a block of at most {BLOCK_MAX_MS} ms");
        self.block_len = n;
        let (wander_mv, emg_mv, mains_mv) = self.config.noise.amplitudes_mv();
        // One motion burst per block: a 1-3 Hz swing and 4x the EMG.
        let motion = self.motion.then(|| {
            (
                self.rng.random_range(0.4..1.2),
                self.rng.random_range(1.0..3.0),
                self.rng.random_range(0.0..TAU),
            )
        });
        for c in 0..self.config.channels.len() {
            let channel = self.config.channels[c];
            let out = &mut self.buffer[c * per_channel..c * per_channel + n];
            out.fill(0.0);
            match channel {
                Channel::EcgII => {
                    if self.lead_off {
                        continue;
                    }
                    for beat in heart.beats() {
                        for wave in &beat.ecg {
                            wave.add_to(out, t_first, fs);
                        }
                    }
                    for osc in &heart.fib {
                        add_sine(out, osc, t_first - t0_s, fs);
                    }
                    let mut wander = self.wander;
                    wander.amp = wander_mv;
                    add_sine(out, &wander, 0.0, fs);
                    let mut mains = self.mains;
                    mains.amp = mains_mv;
                    add_sine(out, &mains, 0.0, fs);
                    let mut emg = emg_mv;
                    if let Some((amp, freq_hz, phase)) = motion {
                        let swing = Oscillation {
                            phase,
                            freq_hz,
                            amp,
                        };
                        add_sine(out, &swing, 0.0, fs);
                        emg = emg.max(0.01) * 4.0;
                    }
                    add_noise(out, emg as f32, &mut self.rng);
                }
                Channel::Pleth => {
                    for beat in heart.beats() {
                        for wave in &beat.pulse {
                            wave.add_to(out, t_first, fs);
                        }
                    }
                    if let Some((amp, freq_hz, phase)) = motion {
                        let swing = Oscillation {
                            phase,
                            freq_hz,
                            amp,
                        };
                        add_sine(out, &swing, 0.0, fs);
                    }
                    add_noise(out, (emg_mv * 0.2) as f32, &mut self.rng);
                }
                Channel::Resp => {
                    if self.lead_off {
                        continue;
                    }
                    // 0.5 Ω of impedance change per breath (*design
                    // choice*, within the 0.1-3 Ω of thoracic impedance
                    // pneumography).
                    let mut breath = heart.breath;
                    breath.amp *= 0.5;
                    add_sine(out, &breath, t_first - t0_s, fs);
                }
            }
        }
        let seconds = n as f64 / fs;
        self.wander.phase = (self.wander.phase + TAU * self.wander.freq_hz * seconds) % TAU;
        self.mains.phase = (self.mains.phase + TAU * self.mains.freq_hz * seconds) % TAU;
        if !self.counting {
            return;
        }
        if let Some(c) = self
            .config
            .channels
            .iter()
            .position(|&c| c == Channel::EcgII)
        {
            if self.lead_off {
                self.detector.reset();
            } else {
                self.detector
                    .process(&self.buffer[c * per_channel..c * per_channel + n]);
            }
        }
    }

    /// The last block's samples of the `c`-th channel.
    pub fn channel(&self, c: usize) -> &[f32] {
        let per_channel = self.buffer.len() / self.config.channels.len().max(1);
        &self.buffer[c * per_channel..c * per_channel + self.block_len]
    }

    /// Samples per channel in the last block.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// The rate the device's QRS detector counts, /min (see
    /// [`QrsDetector::hr_bpm`]).
    pub fn hr_bpm(&self) -> Option<f64> {
        self.detector.hr_bpm()
    }
}

/// Adds `osc` (phase at `offset_s` before the first sample) to `out`
/// with a rotating phasor: no `sin` per sample.
fn add_sine(out: &mut [f32], osc: &Oscillation, offset_s: f64, fs: f64) {
    if osc.amp == 0.0 || osc.freq_hz == 0.0 {
        return;
    }
    let phase = osc.phase + TAU * osc.freq_hz * offset_s;
    let (mut s, mut c) = phase.sin_cos();
    let (ds, dc) = (TAU * osc.freq_hz / fs).sin_cos();
    for sample in out {
        *sample += (osc.amp * s) as f32;
        let next_s = s * dc + c * ds;
        c = c * dc - s * ds;
        s = next_s;
    }
}

/// Adds zero-mean noise of RMS `rms`: the sum of four uniform 16-bit
/// draws from one 64-bit word (Irwin-Hall, near-Gaussian), one generator
/// call per sample.
fn add_noise(out: &mut [f32], rms: f32, rng: &mut StreamRng) {
    if rms == 0.0 {
        return;
    }
    // Four U(0,1) sum to mean 2, variance 4/12: scale to unit variance.
    let scale = rms * 3.0f32.sqrt() / 65536.0;
    for sample in out {
        let w = rng.next_u64();
        let sum = (w & 0xffff) + ((w >> 16) & 0xffff) + ((w >> 32) & 0xffff) + (w >> 48);
        *sample += (sum as f32 - 2.0 * 65535.5) * scale;
    }
}
