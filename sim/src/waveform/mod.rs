//! Waveforms: the ECG, the photoplethysmogram (pleth) and the impedance
//! respiration signal, beat for beat consistent with the twin's state.
//!
//! Two halves, so every device on a patient sees the same heart:
//! - [`Heart`] (one per patient wearing a waveform device) turns the twin's
//!   rate and rhythm, step by step, into *beats*: each with its time, its
//!   type (normal or ventricular) and its wave parameters precomputed (a
//!   template in the spirit of McSharry's ECGSYN: a sum of Gaussians for
//!   P, Q, R, S and T, widths and the T wave's place scaled with the RR
//!   interval). It also carries the non-beat activity: the fibrillatory
//!   f waves of AF, the chaotic VF oscillation, the breathing phase.
//! - [`Synth`] (one per waveform device) renders that activity into the
//!   device's samples at its own rate (125, 250 or 500 Hz), adds the
//!   device's artifacts (baseline wander, EMG, mains, motion bursts, lead
//!   off) and runs the device's own QRS detector ([`QrsDetector`]), whose
//!   count is the heart rate the device reports: a noisy signal gives a
//!   wrong rate, as on real devices.
//!
//! Everything is allocation-free once built (fixed rings, buffers reused
//! block after block) and deterministic: the heart draws from the patient's
//! `waveform` stream, the artifacts from the device's.
//!
//! Sources and design choices: docs/references.md, "Waveforms".

mod detect;
mod ecg;
mod heart;
mod synth;

pub use detect::QrsDetector;
pub use ecg::{Morphology, Wave};
pub use heart::{Beat, BeatKind, Drive, EcgRhythm, Heart, RhythmChange};
pub use synth::{BLOCK_MAX_MS, Channel, NoiseLevel, Synth, WaveformConfig};
