//! Waveform synthesis, measured with divan: one minute of ECG lead II in
//! 1-s blocks (beats scheduled and rendered), clean and with moderate
//! artifacts, synthesis alone and with the device's QRS detector. The
//! counter is samples: divan prints samples per second.
//!
//! `cargo bench -p medtwin-sim --bench waveform`; `medtwin bench ecg`
//! measures the same path for users.

use divan::Bencher;
use divan::counter::ItemsCount;
use medtwin_sim::rng;
use medtwin_sim::waveform::{Channel, Drive, EcgRhythm, Heart, NoiseLevel, Synth, WaveformConfig};

fn main() {
    divan::main();
}

const SECONDS: u64 = 60;

fn minute(bencher: Bencher, rate_hz: u32, noise: NoiseLevel, rhythm: EcgRhythm, detector: bool) {
    let config = WaveformConfig {
        rate_hz,
        channels: vec![Channel::EcgII],
        noise,
        mains_hz: 50,
    };
    let drive = Drive {
        rate_bpm: 72.0,
        rhythm,
        resp_bpm: 14.0,
        perfusion: 1.0,
        pvc_per_min: 0.0,
    };
    bencher
        .counter(ItemsCount::new(SECONDS * u64::from(rate_hz)))
        .with_inputs(|| {
            let heart = Heart::new(rng::stream(1, 1, "waveform"));
            let synth = Synth::new(config.clone(), rng::stream(1, 2, "waveform"));
            let synth = if detector {
                synth
            } else {
                synth.without_detector()
            };
            (heart, synth)
        })
        .bench_local_values(|(mut heart, mut synth)| {
            let mut sum = 0.0f32;
            for s in 0..SECONDS {
                heart.advance(s as f64, (s + 1) as f64, &drive);
                synth.render(&heart, s * 1000, (s + 1) * 1000);
                sum += synth.channel(0)[0];
            }
            sum
        });
}

#[divan::bench(args = [125, 250, 500])]
fn ecg_sinus_clean(bencher: Bencher, rate_hz: u32) {
    minute(bencher, rate_hz, NoiseLevel::None, EcgRhythm::Sinus, false);
}

#[divan::bench(args = [250])]
fn ecg_af_moderate_noise(bencher: Bencher, rate_hz: u32) {
    minute(bencher, rate_hz, NoiseLevel::Moderate, EcgRhythm::Af, false);
}

#[divan::bench(args = [250])]
fn ecg_sinus_with_qrs_detector(bencher: Bencher, rate_hz: u32) {
    minute(
        bencher,
        rate_hz,
        NoiseLevel::Moderate,
        EcgRhythm::Sinus,
        true,
    );
}
