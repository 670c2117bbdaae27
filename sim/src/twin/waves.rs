//! The waveform system: each patient wearing a waveform device has a
//! [`Heart`]; each waveform device a [`Synth`]. Every step, in blocks of
//! at most 1 s, the hearts take their drive from the true vitals, then each
//! device renders its block, counts its QRS complexes, and the samples and
//! the true beats go into the step's records.

use bevy_ecs::prelude::*;

use super::{Clock, Outbox, Patient};
use crate::device::Device;
use crate::truth::{BeatMark, RhythmMark, WaveBlock};
use crate::vitals::Vitals;
use crate::waveform::{BLOCK_MAX_MS, Channel, Drive, Heart, Synth};

/// A patient's heart, and the ectopy the profile gives it.
#[derive(Component)]
pub(super) struct PatientHeart {
    pub heart: Heart,
    pub pvc_per_min: f64,
}

/// A device's waveform synthesiser.
#[derive(Component)]
pub(super) struct DeviceSynth(pub Synth);

pub(super) fn synthesize_waveforms(
    clock: Res<Clock>,
    mut hearts: Query<(&Patient, &Vitals, &mut PatientHeart)>,
    mut devices: Query<(&Device, &mut DeviceSynth)>,
    mut out: ResMut<Outbox>,
) {
    let out = &mut out.0;
    let end_ms = clock.now_ms;
    let mut t0_ms = end_ms - clock.step_ms;
    while t0_ms < end_ms {
        let t1_ms = (t0_ms + BLOCK_MAX_MS).min(end_ms);
        let (t0_s, t1_s) = (t0_ms as f64 / 1000.0, t1_ms as f64 / 1000.0);
        for (patient, vitals, mut heart) in &mut hearts {
            let drive = Drive::of(vitals, heart.pvc_per_min);
            if let Some(change) = heart.heart.advance(t0_s, t1_s, &drive) {
                out.rhythms.push(RhythmMark {
                    patient_idx: patient.idx,
                    at_s: change.at_s,
                    rhythm: change.rhythm,
                });
            }
            for beat in heart.heart.beats_in_block() {
                out.beats.push(BeatMark {
                    patient_idx: patient.idx,
                    r_s: beat.r_s,
                    kind: beat.kind,
                });
            }
        }
        for (device, mut synth) in &mut devices {
            let Ok((_, _, heart)) = hearts.get(device.patient) else {
                continue;
            };
            let synth = &mut synth.0;
            let first_sample = synth.sample_at(t0_ms);
            synth.render(&heart.heart, t0_ms, t1_ms);
            let len = synth.block_len();
            let offset = out.wave_samples.len();
            for c in 0..synth.config().channels.len() {
                out.wave_samples.extend_from_slice(synth.channel(c));
            }
            out.waves.push(WaveBlock {
                device_idx: device.idx,
                patient_idx: device.patient_idx,
                first_sample,
                len: len as u32,
                offset: offset as u32,
                lead_off: synth.lead_off,
                hr_bpm: synth
                    .config()
                    .channels
                    .contains(&Channel::EcgII)
                    .then(|| synth.hr_bpm())
                    .flatten()
                    .map(|hr| hr as f32),
            });
        }
        t0_ms = t1_ms;
    }
}
