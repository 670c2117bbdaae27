//! WFDB records as PhysioNet's tools read them (docs/formats/wfdb.md):
//! the header (`.hea`), the signal file in format 16 (`.dat`: each frame's
//! samples as 16-bit two's complement little-endian integers, signals
//! interleaved) and an annotation file in the MIT format (`.atr`).
//!
//! Sources: "header(5)", "signal(5)" and "annot(5)" of the WFDB
//! Programmer's Guide (Moody, PhysioNet), cited in docs/references.md.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// One signal of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Description (the header line's last field), e.g. `ECG II`.
    pub description: String,
    /// Physical units, e.g. `mV`.
    pub units: String,
    /// ADC units per physical unit.
    pub gain: f64,
}

impl Signal {
    /// A physical value as a stored sample: rounded, clamped to the 16-bit
    /// range (-32768 is WFDB's "no value", so the range is -32767..32767).
    pub fn quantise(&self, value: f32) -> i16 {
        let adu = (f64::from(value) * self.gain).round();
        adu.clamp(-32767.0, 32767.0) as i16
    }
}

/// Writes the `.dat` file of a record, frame by frame, and keeps what its
/// header needs (length, each signal's first value and checksum).
pub struct DatWriter {
    out: BufWriter<File>,
    signals: Vec<Signal>,
    frame_bytes: Vec<u8>,
    samples: u64,
    first: Vec<i16>,
    checksums: Vec<u16>,
}

impl DatWriter {
    /// Creates `path` for `signals`.
    pub fn create(path: &Path, signals: Vec<Signal>) -> io::Result<DatWriter> {
        let n = signals.len();
        Ok(DatWriter {
            out: BufWriter::with_capacity(1 << 16, File::create(path)?),
            signals,
            frame_bytes: Vec::new(),
            samples: 0,
            first: vec![0; n],
            checksums: vec![0; n],
        })
    }

    /// Appends a block: `channel(c)` gives signal `c`'s samples, all of
    /// one length `len`.
    pub fn append<'a>(
        &mut self,
        len: usize,
        channel: impl Fn(usize) -> &'a [f32],
    ) -> io::Result<()> {
        let n = self.signals.len();
        self.frame_bytes.clear();
        self.frame_bytes.resize(len * n * 2, 0);
        for c in 0..n {
            let samples = channel(c);
            debug_assert_eq!(samples.len(), len);
            let signal = &self.signals[c];
            let mut sum = self.checksums[c];
            for (k, &v) in samples.iter().enumerate() {
                let q = signal.quantise(v);
                sum = sum.wrapping_add(q as u16);
                let at = (k * n + c) * 2;
                self.frame_bytes[at..at + 2].copy_from_slice(&q.to_le_bytes());
            }
            if self.samples == 0
                && let Some(&v) = samples.first()
            {
                self.first[c] = signal.quantise(v);
            }
            self.checksums[c] = sum;
        }
        self.samples += len as u64;
        self.out.write_all(&self.frame_bytes)
    }

    /// Samples per signal written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Flushes the signal file and writes the header next to it.
    pub fn finish(mut self, header: &Path, info: &HeaderInfo) -> io::Result<()> {
        self.out.flush()?;
        let mut text = format!(
            "{} {} {} {}",
            info.record,
            self.signals.len(),
            info.fs,
            self.samples
        );
        if let Some((time, date)) = &info.base {
            text.push_str(&format!(" {time} {date}"));
        }
        text.push('\n');
        for (c, s) in self.signals.iter().enumerate() {
            text.push_str(&format!(
                "{}.dat 16 {}(0)/{} 16 0 {} {} 0 {}\n",
                info.record,
                fmt_gain(s.gain),
                s.units,
                self.first[c],
                self.checksums[c] as i16,
                s.description
            ));
        }
        for line in &info.comments {
            text.push_str(&format!("# {line}\n"));
        }
        std::fs::write(header, text)
    }
}

fn fmt_gain(gain: f64) -> String {
    if gain.fract() == 0.0 {
        format!("{gain:.0}")
    } else {
        format!("{gain}")
    }
}

/// What a header says besides its signals.
#[derive(Clone, Debug, Default)]
pub struct HeaderInfo {
    /// Record name: letters, digits and underscores.
    pub record: String,
    /// Samples per second per signal.
    pub fs: u32,
    /// Base time `HH:MM:SS` and date `DD/MM/YYYY`, when known.
    pub base: Option<(String, String)>,
    /// Comment lines (`# ...`).
    pub comments: Vec<String>,
}

/// A record name from a device name: anything but letters, digits and
/// underscores becomes `_` (WFDB record names allow only those).
pub fn record_name(device: &str) -> String {
    device
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// An annotation: its sample, its code, and an optional aux string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Annotation {
    /// Sample number.
    pub sample: u64,
    /// MIT annotation code ([`NORMAL`], [`PVC`], [`RHYTHM`], [`NOISE`]).
    pub code: u8,
    /// Aux string (rhythm labels such as `(AFIB`).
    pub aux: Option<String>,
    /// The `subtyp` field, when not 0: for [`NOISE`], which signals are
    /// noisy (bits 0-3, signal 0-3) or unreadable (bits 4-7); 0 is a clean
    /// signal again ([`unreadable_mask`]).
    pub subtyp: Option<i8>,
}

/// A [`NOISE`] annotation's `subtyp` for these signals (record indices 0-3)
/// becoming unreadable: bit 4 + j for signal j (the MIT convention: bits
/// 0-3 noisy, bits 4-7 unreadable; -1 all signals unreadable).
pub fn unreadable_mask(signals: impl IntoIterator<Item = usize>) -> i8 {
    let mask = signals
        .into_iter()
        .filter(|&j| j < 4)
        .fold(0u8, |m, j| m | (0x10 << j));
    mask as i8
}

/// Normal beat, `N`.
pub const NORMAL: u8 = 1;
/// Premature ventricular contraction, `V`.
pub const PVC: u8 = 5;
/// Signal quality change, `~` (aux: none).
pub const NOISE: u8 = 14;
/// Rhythm change, `+` (aux: the rhythm, e.g. `(N`).
pub const RHYTHM: u8 = 28;
const SKIP: u16 = 59;
const SUB: u16 = 61;
const AUX: u16 = 63;

/// The MIT-format bytes of `annotations` (sorted by sample): each a 16-bit
/// little-endian word, code in the top 6 bits and the interval since the
/// previous one in the low 10; longer intervals go in a SKIP; a `subtyp`
/// follows its annotation as a SUB word (code 61, the value's low 8 bits,
/// read back as a signed char); an aux string follows (padded to an even
/// length); two zero bytes end the file.
pub fn annotation_bytes(annotations: &[Annotation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(annotations.len() * 2 + 2);
    let word = |out: &mut Vec<u8>, w: u16| out.extend_from_slice(&w.to_le_bytes());
    let mut last = 0u64;
    for a in annotations {
        debug_assert!(a.sample >= last, "annotations in sample order");
        let delta = a.sample.saturating_sub(last);
        last = a.sample;
        if delta > 1023 {
            word(&mut out, SKIP << 10);
            // PDP-11 long: high 16 bits first, each half little-endian.
            let d = delta.min(i32::MAX as u64) as u32;
            word(&mut out, (d >> 16) as u16);
            word(&mut out, (d & 0xffff) as u16);
            word(&mut out, u16::from(a.code) << 10);
        } else {
            word(&mut out, (u16::from(a.code) << 10) | delta as u16);
        }
        if let Some(subtyp) = a.subtyp {
            word(&mut out, (SUB << 10) | u16::from(subtyp as u8));
        }
        if let Some(aux) = &a.aux {
            let bytes = &aux.as_bytes()[..aux.len().min(255)];
            word(&mut out, (AUX << 10) | bytes.len() as u16);
            out.extend_from_slice(bytes);
            if bytes.len() % 2 == 1 {
                out.push(0);
            }
        }
    }
    word(&mut out, 0);
    out
}

/// Reads MIT-format annotation bytes back (the writer's subset: codes,
/// SKIP, AUX). For tests and `medtwin` itself; PhysioNet's `rdann` is the
/// independent reader.
pub fn read_annotations(bytes: &[u8]) -> Result<Vec<Annotation>, String> {
    let mut out: Vec<Annotation> = Vec::new();
    let mut at = 0usize;
    let mut sample = 0u64;
    let word = |at: usize| -> Result<u16, String> {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| format!("annotation file cut short at byte {at}"))
    };
    loop {
        let w = word(at)?;
        at += 2;
        if w == 0 {
            return Ok(out);
        }
        let (code, low) = (w >> 10, u64::from(w & 0x3ff));
        match code {
            SKIP => {
                let high = u32::from(word(at)?);
                let lo = u32::from(word(at + 2)?);
                at += 4;
                sample += u64::from((high << 16) | lo);
            }
            SUB => {
                let last = out
                    .last_mut()
                    .ok_or_else(|| "a subtyp before any annotation".to_string())?;
                last.subtyp = Some(low as u8 as i8);
            }
            AUX => {
                let len = low as usize;
                let text = bytes
                    .get(at..at + len)
                    .ok_or_else(|| format!("aux string cut short at byte {at}"))?;
                at += len + len % 2;
                let last = out
                    .last_mut()
                    .ok_or_else(|| "an aux string before any annotation".to_string())?;
                last.aux = Some(String::from_utf8_lossy(text).into_owned());
            }
            _ => {
                sample += low;
                out.push(Annotation {
                    sample,
                    code: code as u8,
                    aux: None,
                    subtyp: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_round_trip_with_skips_subtypes_and_aux() {
        let annotations = vec![
            Annotation {
                sample: 0,
                code: RHYTHM,
                aux: Some("(N".into()),
                subtyp: None,
            },
            Annotation {
                sample: 100,
                code: NORMAL,
                aux: None,
                subtyp: None,
            },
            Annotation {
                sample: 100_000,
                code: PVC,
                aux: None,
                subtyp: None,
            },
            Annotation {
                sample: 100_000,
                code: RHYTHM,
                aux: Some("(AFIB".into()),
                subtyp: None,
            },
            Annotation {
                sample: 100_050,
                code: NOISE,
                aux: None,
                subtyp: Some(unreadable_mask([0, 2])),
            },
            Annotation {
                sample: 102_000,
                code: NOISE,
                aux: None,
                subtyp: Some(0),
            },
            Annotation {
                sample: 5_000_000,
                code: NORMAL,
                aux: None,
                subtyp: None,
            },
        ];
        let bytes = annotation_bytes(&annotations);
        assert_eq!(bytes.len() % 2, 0);
        assert_eq!(&bytes[bytes.len() - 2..], &[0, 0]);
        assert_eq!(read_annotations(&bytes).unwrap(), annotations);
        // The first word: `+` at sample 0.
        assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 28 << 10);
        assert_eq!(unreadable_mask([0, 2]), 0x50);
        assert_eq!(unreadable_mask([0, 1, 2, 3]), -16);
    }

    #[test]
    fn a_record_round_trips_within_one_quantisation_step() {
        let dir = tempfile::tempdir().unwrap();
        let signals = vec![
            Signal {
                description: "ECG II".into(),
                units: "mV".into(),
                gain: 1000.0,
            },
            Signal {
                description: "RESP".into(),
                units: "Ohm".into(),
                gain: 10000.0,
            },
        ];
        let dat = dir.path().join("r.dat");
        let mut w = DatWriter::create(&dat, signals.clone()).unwrap();
        let ecg: Vec<f32> = (0..250).map(|k| (k as f32 * 0.05).sin() * 1.3).collect();
        let resp: Vec<f32> = (0..250).map(|k| (k as f32 * 0.01).cos() * 0.5).collect();
        let chans = [ecg.clone(), resp.clone()];
        w.append(250, |c| &chans[c]).unwrap();
        w.append(250, |c| &chans[c]).unwrap();
        let info = HeaderInfo {
            record: "r".into(),
            fs: 250,
            base: None,
            comments: vec!["test".into()],
        };
        w.finish(&dir.path().join("r.hea"), &info).unwrap();
        let bytes = std::fs::read(&dat).unwrap();
        assert_eq!(bytes.len(), 500 * 2 * 2);
        for k in 0..500 {
            for (c, signal) in signals.iter().enumerate() {
                let at = (k * 2 + c) * 4 / 2;
                let q = i16::from_le_bytes([bytes[at], bytes[at + 1]]);
                let back = f64::from(q) / signal.gain;
                let want = f64::from(chans[c][k % 250]);
                assert!((back - want).abs() <= 0.5 / signal.gain + 1e-9);
            }
        }
        let header = std::fs::read_to_string(dir.path().join("r.hea")).unwrap();
        let lines: Vec<&str> = header.lines().collect();
        assert_eq!(lines[0], "r 2 250 500");
        assert!(lines[1].starts_with("r.dat 16 1000(0)/mV 16 0 "));
        assert!(lines[1].ends_with(" 0 ECG II"));
        assert_eq!(lines[3], "# test");
    }

    #[test]
    fn record_names_keep_letters_digits_and_underscores() {
        assert_eq!(record_name("ward-000/ecg_patch"), "ward_000_ecg_patch");
    }
}
