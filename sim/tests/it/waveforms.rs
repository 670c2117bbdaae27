//! Waveforms in the twin: devices that record them, beats as truth, the
//! device's own QRS count as its heart rate, the same samples whatever the
//! shard split, and pinned digests of a short segment per rhythm.

use std::collections::BTreeMap;

use medtwin_sim::rng;
use medtwin_sim::waveform::{
    BeatKind, Channel, Drive, EcgRhythm, Heart, NoiseLevel, Synth, WaveformConfig,
};
use medtwin_sim::{
    CohortConfig, ConditionKind, DeviceConfig, DeviceKind, EventConfig, NetworkConfig, Params,
    PatientSelector, ProfileSpec, Shard, SimConfig, Twin,
};

fn config(rate_hz: u32, noise: NoiseLevel) -> WaveformConfig {
    WaveformConfig {
        rate_hz,
        channels: vec![Channel::EcgII, Channel::Pleth, Channel::Resp],
        noise,
        mains_hz: 50,
    }
}

/// R times and kinds, ECG samples, pleth samples, the detector's rate at
/// the end.
type Rendered = (Vec<(f64, BeatKind)>, Vec<f32>, Vec<f32>, Option<f64>);

/// `seconds` of one rhythm at one rate.
fn render(drive: &Drive, wave: WaveformConfig, seconds: u64, seed: u64) -> Rendered {
    let mut heart = Heart::new(rng::stream(seed, 1, "waveform"));
    let mut synth = Synth::new(wave, rng::stream(seed, 2, "waveform"));
    let (mut beats, mut ecg, mut pleth) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..seconds {
        heart.advance(s as f64, (s + 1) as f64, drive);
        beats.extend(heart.beats_in_block().map(|b| (b.r_s, b.kind)));
        synth.render(&heart, s * 1000, (s + 1) * 1000);
        ecg.extend_from_slice(synth.channel(0));
        pleth.extend_from_slice(synth.channel(1));
    }
    (beats, ecg, pleth, synth.hr_bpm())
}

fn drive(rate_bpm: f64, rhythm: EcgRhythm) -> Drive {
    Drive {
        rate_bpm,
        rhythm,
        resp_bpm: 14.0,
        perfusion: 1.0,
        pvc_per_min: 0.0,
    }
}

/// HR as the validation defines it: 60 / mean RR over the last `n` beats.
fn true_rate(beats: &[(f64, BeatKind)], n: usize) -> f64 {
    let tail = &beats[beats.len() - n - 1..];
    60.0 * n as f64 / (tail[n].0 - tail[0].0)
}

#[test]
fn the_device_counts_the_true_rate_in_sinus_rhythm() {
    for rate_hz in WaveformConfig::RATES_HZ {
        for noise in [NoiseLevel::None, NoiseLevel::Moderate] {
            for rate in [40.0, 75.0, 120.0, 180.0] {
                let (beats, _, _, counted) = render(
                    &drive(rate, EcgRhythm::Sinus),
                    config(rate_hz, noise),
                    30,
                    5,
                );
                let truth = true_rate(&beats, 8);
                let counted = counted.expect("a rate after 30 s");
                // Clean: within 1.5 /min. Noisy: what ANSI/AAMI EC13 asks
                // of a heart rate meter, ±10 % or ±5 /min.
                let tolerance = match noise {
                    NoiseLevel::None => 1.5,
                    _ => (0.1 * truth).max(5.0),
                };
                assert!(
                    (counted - truth).abs() <= tolerance,
                    "{rate_hz} Hz, {noise:?}, {rate}/min: counted {counted}, true {truth}"
                );
            }
        }
    }
}

#[test]
fn a_noisy_signal_fools_the_device() {
    // Motion bursts on every block: the count is no longer the truth.
    let mut heart = Heart::new(rng::stream(1, 1, "waveform"));
    let mut synth = Synth::new(config(250, NoiseLevel::High), rng::stream(1, 2, "waveform"));
    synth.motion = true;
    let d = drive(60.0, EcgRhythm::Sinus);
    for s in 0..30 {
        heart.advance(s as f64, (s + 1) as f64, &d);
        synth.render(&heart, s * 1000, (s + 1) * 1000);
    }
    let counted = synth.hr_bpm().unwrap_or(0.0);
    assert!(
        (counted - 60.0).abs() > 5.0,
        "counted {counted} despite motion"
    );
}

#[test]
fn leads_off_give_a_flat_ecg_and_no_rate() {
    let mut heart = Heart::new(rng::stream(1, 1, "waveform"));
    let mut synth = Synth::new(
        config(250, NoiseLevel::Moderate),
        rng::stream(1, 2, "waveform"),
    );
    synth.lead_off = true;
    let d = drive(70.0, EcgRhythm::Sinus);
    heart.advance(0.0, 1.0, &d);
    synth.render(&heart, 0, 1000);
    assert!(synth.channel(0).iter().all(|&v| v == 0.0));
    assert!(synth.channel(2).iter().all(|&v| v == 0.0));
    assert!(
        synth.channel(1).iter().any(|&v| v > 0.5),
        "the pleth still pulses"
    );
    assert_eq!(synth.hr_bpm(), None);
}

#[test]
fn vf_is_a_4_to_8_hz_oscillation_without_beats_or_pulse() {
    let mut d = drive(300.0, EcgRhythm::Vf);
    d.perfusion = 0.0;
    let (beats, ecg, pleth, _) = render(&d, config(250, NoiseLevel::None), 20, 3);
    assert!(beats.is_empty());
    let crossings = ecg.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    let hz = crossings as f64 / 20.0;
    assert!((3.5..=9.0).contains(&hz), "VF at {hz} Hz");
    assert!(ecg.iter().any(|&v| v.abs() > 0.2), "coarse VF");
    assert!(pleth.iter().all(|&v| v == 0.0), "no pulse");
    let mut d = drive(0.0, EcgRhythm::Asystole);
    d.perfusion = 0.0;
    let (beats, ecg, _, counted) = render(&d, config(250, NoiseLevel::None), 10, 3);
    assert!(beats.is_empty());
    assert!(ecg.iter().all(|&v| v.abs() < 1e-6));
    assert_eq!(counted, None);
}

#[test]
fn the_pulse_arrives_200_to_300_ms_after_the_r_peak() {
    let (beats, ecg, pleth, _) = render(
        &drive(60.0, EcgRhythm::Sinus),
        config(500, NoiseLevel::None),
        10,
        9,
    );
    for &(r_s, _) in &beats[2..beats.len() - 2] {
        let k = (r_s * 500.0).round() as usize;
        // The R peak is the ECG's maximum near it.
        let window = &ecg[k - 10..k + 10];
        let peak = window.iter().cloned().fold(f32::MIN, f32::max);
        assert!((peak - 1.2).abs() < 0.1, "R peak {peak}");
        // The pulse's upstroke: steepest rise of the pleth after R.
        let rise = (k..k + 300)
            .max_by(|&a, &b| (pleth[a + 1] - pleth[a]).total_cmp(&(pleth[b + 1] - pleth[b])))
            .unwrap();
        let foot_ms = (rise - k) as f64 * 2.0;
        assert!(
            (180.0..=330.0).contains(&foot_ms),
            "upstroke {foot_ms} ms after R"
        );
    }
}

#[test]
fn vt_and_pvcs_are_wide_and_ventricular() {
    let (beats, _, _, _) = render(
        &drive(180.0, EcgRhythm::Vt),
        config(250, NoiseLevel::None),
        10,
        4,
    );
    assert!(beats.iter().all(|b| b.1 == BeatKind::Ventricular));
    let mut d = drive(70.0, EcgRhythm::Sinus);
    d.pvc_per_min = 5.0;
    let (beats, _, _, _) = render(&d, config(250, NoiseLevel::None), 120, 4);
    let pvcs = beats
        .iter()
        .filter(|b| b.1 == BeatKind::Ventricular)
        .count();
    assert!((3..=25).contains(&pvcs), "{pvcs} PVCs in 2 min at 5/min");
}

/// FNV-1a of the samples quantised to 1 µV.
fn digest(samples: &[f32]) -> u64 {
    samples.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &v| {
        let q = (f64::from(v) * 1000.0).round() as i64;
        q.to_le_bytes().iter().fold(hash, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    })
}

#[test]
fn segments_per_rhythm_are_pinned() {
    let mut lines = Vec::new();
    for (name, rhythm, rate, perfusion, pvc) in [
        ("sinus 72", EcgRhythm::Sinus, 72.0, 1.0, 0.0),
        ("sinus brady 45", EcgRhythm::Sinus, 45.0, 1.0, 0.0),
        ("sinus tachy 150", EcgRhythm::Sinus, 150.0, 0.8, 0.0),
        ("sinus + pvcs", EcgRhythm::Sinus, 72.0, 1.0, 6.0),
        ("af 130", EcgRhythm::Af, 130.0, 0.8, 0.0),
        ("vt 180", EcgRhythm::Vt, 180.0, 0.0, 0.0),
        ("vf", EcgRhythm::Vf, 300.0, 0.0, 0.0),
        ("asystole", EcgRhythm::Asystole, 0.0, 0.0, 0.0),
        ("pea 50", EcgRhythm::Pea, 50.0, 0.0, 0.0),
    ] {
        let d = Drive {
            rate_bpm: rate,
            rhythm,
            resp_bpm: 14.0,
            perfusion,
            pvc_per_min: pvc,
        };
        let (beats, ecg, pleth, counted) = render(&d, config(250, NoiseLevel::Low), 10, 42);
        let kinds: String = beats.iter().map(|b| b.1.code()).collect();
        lines.push(format!(
            "{name}: beats {kinds} ecg {:016x} pleth {:016x} counted {counted:?}",
            digest(&ecg),
            digest(&pleth)
        ));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

fn ward(shard: Shard) -> SimConfig {
    let mut patch = DeviceConfig::of(DeviceKind::EcgPatch);
    patch.waveform = Some(WaveformConfig {
        rate_hz: 250,
        channels: vec![Channel::EcgII, Channel::Resp],
        noise: NoiseLevel::Moderate,
        mains_hz: 50,
    });
    let mut oximeter = DeviceConfig::of(DeviceKind::PulseOximeter);
    oximeter.waveform = Some(WaveformConfig {
        rate_hz: 125,
        channels: vec![Channel::Pleth],
        noise: NoiseLevel::Low,
        mains_hz: 60,
    });
    let mut profile = ProfileSpec::healthy_adult();
    profile.pvc_per_min = 2.0;
    let kind = ConditionKind::AtrialFibrillation;
    SimConfig {
        seed: 11,
        step_ms: 1_000,
        duration_ms: 60_000,
        start_ms_of_day: 8 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "ward".into(),
            count: 4,
            profile,
            devices: vec![patch, oximeter],
            network: NetworkConfig::IDEAL,
        }],
        events: vec![EventConfig {
            at_ms: 20_000,
            who: PatientSelector {
                cohort: 0,
                first: 1,
                end: 2,
                pick: None,
            },
            condition: kind,
            severity: 1.0,
            ramp_ms: kind.default_ramp_ms(),
            duration_ms: None,
            params: Params::defaults(kind.params()),
        }],
        interventions: Vec::new(),
        faults: Vec::new(),
        shard,
    }
}

/// Per device: every block's samples (as 1-µV integers); per patient:
/// every beat and rhythm change.
fn waves_by_name(config: &SimConfig) -> BTreeMap<String, Vec<String>> {
    let mut twin = Twin::new(config).unwrap();
    let devices = twin.device_names().to_vec();
    let patients = twin.patient_names().to_vec();
    let twin_channels: Vec<usize> = (0..devices.len() as u32)
        .map(|d| twin.waveform(d).map_or(0, |w| w.channels.len()))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while !twin.finished() {
        let step = twin.step();
        for w in &step.waves {
            let channels = twin_channels[w.device_idx as usize];
            let samples = &step.wave_samples
                [w.offset as usize..w.offset as usize + channels * w.len as usize];
            let text = format!("{} {} {:x}", w.first_sample, w.lead_off, digest(samples));
            out.entry(devices[w.device_idx as usize].clone())
                .or_default()
                .push(text);
        }
        for b in &step.beats {
            out.entry(patients[b.patient_idx as usize].clone())
                .or_default()
                .push(format!("{:?} {}", b.kind, b.r_s));
        }
        for r in &step.rhythms {
            out.entry(patients[r.patient_idx as usize].clone())
                .or_default()
                .push(format!("{:?} {}", r.rhythm, r.at_s));
        }
        for m in &step.measurements {
            out.entry(devices[m.device_idx as usize].clone())
                .or_default()
                .push(format!("m {:?}", m.readings.as_slice()));
        }
    }
    out
}

#[test]
fn shards_record_the_same_waveforms_as_the_whole_ward() {
    let whole = waves_by_name(&ward(Shard::WHOLE));
    let mut merged = BTreeMap::new();
    for index in 0..3 {
        merged.extend(waves_by_name(&ward(Shard { index, count: 3 })));
    }
    assert_eq!(whole.len(), 4 * 3, "4 patients, 8 devices");
    assert_eq!(whole, merged);
    // The AF patient's rhythm changed; the others stayed in sinus rhythm.
    let af = &whole["ward-001"];
    assert!(af.iter().any(|l| l.starts_with("Af ")), "{:?}", &af[..3]);
    assert!(!whole["ward-000"].iter().any(|l| l.starts_with("Af ")));
    assert!(
        whole["ward-000"]
            .iter()
            .any(|l| l.starts_with("Ventricular"))
    );
    // Samples at each device's own rate: 60 blocks of 250 and 125.
    let patch = &whole["ward-000/ecg_patch"];
    assert_eq!(patch.iter().filter(|l| !l.starts_with("m ")).count(), 60);
    // The patch reports the rate it counted.
    assert!(
        patch
            .iter()
            .any(|l| l.starts_with("m [Reading { vital: Hr"))
    );
}
