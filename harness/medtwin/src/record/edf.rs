//! EDF+ files (continuous, `EDF+C`) as EDFbrowser, pyEDFlib and MNE read
//! them (docs/formats/edf.md): a 256-byte header, 256 bytes per signal,
//! then data records of 1 s, each holding every signal's samples as 16-bit
//! little-endian integers and an `EDF Annotations` signal whose first
//! time-stamped annotation list (TAL) keeps the record's start time.
//!
//! Sources: Kemp et al. 1992 (EDF) and Kemp & Olivan 2003 (EDF+),
//! Clinical Neurophysiology 114:1755-1761; cited in docs/references.md.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// One ordinary signal.
#[derive(Clone, Debug, PartialEq)]
pub struct EdfSignal {
    /// Label (16 characters at most), e.g. `ECG II`.
    pub label: String,
    /// Physical dimension, e.g. `mV`.
    pub unit: String,
    /// Physical value of digital -32768 and 32767: chosen so one digital
    /// step is exactly the WFDB record's (gain 1000/mV: -32.768..32.767).
    pub physical: (f64, f64),
}

impl EdfSignal {
    fn quantise(&self, value: f32) -> i16 {
        let (lo, hi) = self.physical;
        let step = (hi - lo) / 65535.0;
        let digital = ((f64::from(value) - lo) / step).round() - 32768.0;
        digital.clamp(-32768.0, 32767.0) as i16
    }
}

/// Bytes of the annotation signal in each data record (TALs for a
/// second: the time keeping, and a few rhythm changes or alarms).
const ANNOTATION_BYTES: usize = 128;

/// Writes an EDF+C file one 1-s data record at a time.
pub struct EdfWriter {
    out: BufWriter<File>,
    signals: Vec<EdfSignal>,
    fs: usize,
    /// Samples waiting for a full data record, per signal.
    pending: Vec<Vec<f32>>,
    /// Annotations waiting for their data record: (onset s, text).
    notes: Vec<(f64, String)>,
    record_bytes: Vec<u8>,
    records: u64,
    /// Annotations that did not fit their record's annotation signal.
    pub dropped_notes: u64,
}

/// Who and when, for the header.
#[derive(Clone, Debug)]
pub struct EdfInfo {
    /// The patient field: `code sex birthdate name` (X = unknown).
    pub patient: String,
    /// Equipment (the recording field's last subfield), no spaces.
    pub equipment: String,
    /// Start: (day, month 1-12, year, hour, minute, second).
    pub start: (u8, u8, u16, u8, u8, u8),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl EdfWriter {
    /// Creates `path` with `signals` at `fs` samples per second each.
    pub fn create(
        path: &Path,
        signals: Vec<EdfSignal>,
        fs: u32,
        info: &EdfInfo,
    ) -> io::Result<EdfWriter> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        out.write_all(&header(&signals, fs as usize, info, 0))?;
        Ok(EdfWriter {
            out,
            pending: vec![Vec::with_capacity(fs as usize * 2); signals.len()],
            signals,
            fs: fs as usize,
            notes: Vec::new(),
            record_bytes: Vec::new(),
            records: 0,
            dropped_notes: 0,
        })
    }

    /// Appends samples: `channel(c)` gives signal `c`'s next `len`.
    pub fn append<'a>(
        &mut self,
        len: usize,
        channel: impl Fn(usize) -> &'a [f32],
    ) -> io::Result<()> {
        for c in 0..self.signals.len() {
            self.pending[c].extend_from_slice(&channel(c)[..len]);
        }
        while self.pending[0].len() >= self.fs {
            self.write_record()?;
        }
        Ok(())
    }

    /// An annotation at `onset_s` (seconds from the start).
    pub fn note(&mut self, onset_s: f64, text: &str) {
        self.notes
            .push((onset_s, text.replace(['\u{14}', '\u{15}', '\0'], " ")));
    }

    fn write_record(&mut self) -> io::Result<()> {
        let fs = self.fs;
        self.record_bytes.clear();
        for (c, signal) in self.signals.iter().enumerate() {
            for &v in &self.pending[c][..fs] {
                self.record_bytes
                    .extend_from_slice(&signal.quantise(v).to_le_bytes());
            }
            self.pending[c].drain(..fs);
        }
        // Time keeping first: "+<start>\x14\x14\0", then this second's notes.
        let start = self.records;
        let mut tal = format!("+{start}\u{14}\u{14}\0").into_bytes();
        let end = (start + 1) as f64;
        let mut kept = Vec::new();
        for (onset, text) in self.notes.drain(..) {
            if onset >= end {
                kept.push((onset, text));
                continue;
            }
            let entry = format!("+{onset:.3}\u{14}{text}\u{14}\0").into_bytes();
            if tal.len() + entry.len() <= ANNOTATION_BYTES {
                tal.extend_from_slice(&entry);
            } else {
                self.dropped_notes += 1;
            }
        }
        self.notes = kept;
        tal.resize(ANNOTATION_BYTES, 0);
        self.record_bytes.extend_from_slice(&tal);
        self.records += 1;
        self.out.write_all(&self.record_bytes)
    }

    /// Writes the last whole data record's worth (a partial last second
    /// is dropped: EDF data records have one duration) and the final
    /// record count in the header.
    pub fn finish(mut self, info: &EdfInfo) -> io::Result<u64> {
        self.out.flush()?;
        let records = self.records;
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header(&self.signals, self.fs, info, records))?;
        file.flush()?;
        Ok(records)
    }
}

/// `value` left-aligned in `width` ASCII bytes.
fn field(out: &mut Vec<u8>, value: &str, width: usize) {
    let mut bytes: Vec<u8> = value
        .bytes()
        .map(|b| if (32..127).contains(&b) { b } else { b'_' })
        .take(width)
        .collect();
    bytes.resize(width, b' ');
    out.extend_from_slice(&bytes);
}

/// A number in at most 8 characters.
fn number(x: f64) -> String {
    let text = format!("{x}");
    if text.len() <= 8 {
        text
    } else {
        format!("{x:.3}").chars().take(8).collect()
    }
}

fn header(signals: &[EdfSignal], fs: usize, info: &EdfInfo, records: u64) -> Vec<u8> {
    let ns = signals.len() + 1;
    let (day, month, year, hour, minute, second) = info.start;
    let mut h = Vec::with_capacity(256 * (ns + 1));
    field(&mut h, "0", 8);
    field(&mut h, &info.patient, 80);
    let month_name = MONTHS[usize::from(month.clamp(1, 12)) - 1];
    field(
        &mut h,
        &format!(
            "Startdate {day:02}-{month_name}-{year} X X {}",
            info.equipment
        ),
        80,
    );
    field(&mut h, &format!("{day:02}.{month:02}.{:02}", year % 100), 8);
    field(&mut h, &format!("{hour:02}.{minute:02}.{second:02}"), 8);
    field(&mut h, &(256 * (ns + 1)).to_string(), 8);
    field(&mut h, "EDF+C", 44);
    field(&mut h, &records.to_string(), 8);
    field(&mut h, "1", 8);
    field(&mut h, &ns.to_string(), 4);
    let labels: Vec<&str> = signals
        .iter()
        .map(|s| s.label.as_str())
        .chain(["EDF Annotations"])
        .collect();
    for l in &labels {
        field(&mut h, l, 16);
    }
    for _ in 0..ns {
        field(&mut h, "", 80);
    }
    for s in signals {
        field(&mut h, &s.unit, 8);
    }
    field(&mut h, "", 8);
    for s in signals {
        field(&mut h, &number(s.physical.0), 8);
    }
    field(&mut h, "-1", 8);
    for s in signals {
        field(&mut h, &number(s.physical.1), 8);
    }
    field(&mut h, "1", 8);
    for _ in 0..ns {
        field(&mut h, "-32768", 8);
    }
    for _ in 0..ns {
        field(&mut h, "32767", 8);
    }
    for _ in 0..ns {
        field(&mut h, "", 80);
    }
    for _ in signals {
        field(&mut h, &fs.to_string(), 8);
    }
    field(&mut h, &(ANNOTATION_BYTES / 2).to_string(), 8);
    for _ in 0..ns {
        field(&mut h, "", 32);
    }
    debug_assert_eq!(h.len(), 256 * (ns + 1));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_records_have_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.edf");
        let info = EdfInfo {
            patient: "ward-000 X X X".into(),
            equipment: "medtwin".into(),
            start: (1, 1, 2026, 8, 0, 0),
        };
        let signals = vec![EdfSignal {
            label: "ECG II".into(),
            unit: "mV".into(),
            physical: (-32.768, 32.767),
        }];
        let mut w = EdfWriter::create(&path, signals.clone(), 250, &info).unwrap();
        let ecg: Vec<f32> = (0..375).map(|k| k as f32 / 1000.0).collect();
        w.note(0.0, "(N");
        w.note(1.2, "(AFIB");
        w.append(375, |_| &ecg).unwrap();
        w.append(375, |_| &ecg).unwrap();
        let records = w.finish(&info).unwrap();
        assert_eq!(records, 3);
        let bytes = std::fs::read(&path).unwrap();
        // Header: 256 bytes, and 256 per signal (ECG and annotations).
        let data = 256 * 3;
        let record = 250 * 2 + ANNOTATION_BYTES;
        assert_eq!(bytes.len(), data + 3 * record);
        assert_eq!(&bytes[192..197], b"EDF+C");
        assert_eq!(std::str::from_utf8(&bytes[236..244]).unwrap().trim(), "3");
        assert_eq!(std::str::from_utf8(&bytes[184..192]).unwrap().trim(), "768");
        // Exactly the WFDB quantisation: 1 µV per step.
        let first = i16::from_le_bytes([bytes[data + 2], bytes[data + 3]]);
        assert_eq!(first, 1);
        assert_eq!(signals[0].quantise(1.234), 1234);
        let tal = &bytes[data + 500..data + record];
        assert!(tal.starts_with(b"+0\x14\x14\0+0.000\x14(N\x14\0"));
        let second = &bytes[data + record + 500..data + 2 * record];
        assert!(second.starts_with(b"+1\x14\x14\0+1.200\x14(AFIB\x14\0"));
    }
}
