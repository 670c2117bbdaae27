//! `medtwin record SCENARIO --out DIR`: runs the twin as fast as it can,
//! with no target, and writes what happened in formats other tools open:
//! the true vitals (`vitals.csv`, `vitals.ndjson`), and for every device
//! that records waveforms a WFDB record (`.hea`, `.dat` in format 16) with
//! the true beats and rhythms as an MIT annotation file (`.atr`), and the
//! same samples as EDF+ (`.edf`, rhythm changes and lead-off alarms as
//! annotations). Formats: docs/formats/.
//!
//! One module per format; this one runs the twin and hands each step's
//! records to them.

pub mod edf;
pub mod vitals;
pub mod wfdb;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use medtwin_sim::waveform::{BeatKind, Channel, WaveformConfig};
use medtwin_sim::{SimConfig, Twin};

use edf::{EdfInfo, EdfSignal, EdfWriter};
use wfdb::{Annotation, DatWriter, HeaderInfo, Signal};

/// Which files `record` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    /// WFDB records with annotations.
    pub wfdb: bool,
    /// EDF+ files.
    pub edf: bool,
    /// `vitals.csv` and `vitals.ndjson`.
    pub vitals: bool,
}

impl Formats {
    /// Everything.
    pub const ALL: Formats = Formats {
        wfdb: true,
        edf: true,
        vitals: true,
    };
}

/// Why a recording could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The output folder could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scenario's configuration was refused by the twin.
    #[error("the twin refused the scenario: {0}")]
    Config(String),
}

/// What a recording wrote, and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// Simulated seconds.
    pub simulated_s: f64,
    /// Wall time, s.
    pub wall_s: f64,
    /// Patients.
    pub patients: usize,
    /// WFDB/EDF records (one per waveform device).
    pub records: Vec<String>,
    /// Samples written per channel, summed over records.
    pub samples: u64,
    /// True beats annotated.
    pub beats: u64,
}

/// Simulated start as (day, month, year, hour, minute, second), UTC:
/// the scenario's `start`, else 2000-01-01 00:00:00 (a fixed date keeps
/// recordings byte-identical).
fn start_of(start: Option<SystemTime>) -> (u8, u8, u16, u8, u8, u8) {
    let Some(at) = start else {
        return (1, 1, 2000, 0, 0, 0);
    };
    let Ok(ts) = jiff::Timestamp::try_from(at) else {
        return (1, 1, 2000, 0, 0, 0);
    };
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    (
        dt.day() as u8,
        dt.month() as u8,
        dt.year() as u16,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
    )
}

/// How a channel is stored: WFDB description and gain, EDF label and range.
fn layout(channel: Channel) -> (Signal, EdfSignal) {
    // One step: 1 µV for the ECG; 0.1 milli-units for pleth and
    // impedance (range ±3.2767).
    let (description, label, gain) = match channel {
        Channel::EcgII => ("ECG II", "ECG II", 1000.0),
        Channel::Pleth => ("PLETH", "Pleth", 10000.0),
        Channel::Resp => ("RESP", "Resp", 10000.0),
    };
    let unit = channel.unit().to_owned();
    (
        Signal {
            description: description.into(),
            units: unit.clone(),
            gain,
        },
        EdfSignal {
            label: label.into(),
            unit,
            physical: (-32768.0 / gain, 32767.0 / gain),
        },
    )
}

/// One waveform device's open files.
struct Device {
    record: String,
    patient_idx: u32,
    config: WaveformConfig,
    dat: Option<DatWriter>,
    edf: Option<EdfWriter>,
    lead_off: bool,
    /// Where the electrodes came off (true) and back on (false), by
    /// sample: the `~` annotations (a few per hour at most).
    lead_changes: Vec<(u64, bool)>,
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Runs `sim` to its end and writes the recording into `out`.
pub fn record(
    sim: &SimConfig,
    scenario_name: &str,
    start: Option<SystemTime>,
    out: &Path,
    formats: Formats,
) -> Result<Recorded, RecordError> {
    let began = Instant::now();
    std::fs::create_dir_all(out).map_err(write_error(out))?;
    let mut twin = Twin::new(sim).map_err(|e| RecordError::Config(e.to_string()))?;
    let start_parts = start_of(start);
    let (day, month, year, hour, minute, second) = start_parts;
    let base = (
        format!("{hour:02}:{minute:02}:{second:02}"),
        format!("{day:02}/{month:02}/{year}"),
    );
    let names = twin.device_names().to_vec();
    let patients = twin.patient_names().to_vec();
    let mut devices: BTreeMap<u32, Device> = BTreeMap::new();
    for (idx, name) in names.iter().enumerate() {
        let Some(config) = twin.waveform(idx as u32).cloned() else {
            continue;
        };
        let record = wfdb::record_name(name);
        let (signals, edf_signals): (Vec<Signal>, Vec<EdfSignal>) =
            config.channels.iter().map(|&c| layout(c)).unzip();
        let dat = if formats.wfdb {
            let path = out.join(format!("{record}.dat"));
            Some(DatWriter::create(&path, signals).map_err(write_error(&path))?)
        } else {
            None
        };
        let patient_idx = patient_of(name, &patients);
        let edf = if formats.edf {
            let path = out.join(format!("{record}.edf"));
            let info = edf_info(&patients[patient_idx as usize], name, start_parts);
            Some(
                EdfWriter::create(&path, edf_signals, config.rate_hz, &info)
                    .map_err(write_error(&path))?,
            )
        } else {
            None
        };
        devices.insert(
            idx as u32,
            Device {
                record,
                patient_idx,
                config,
                dat,
                edf,
                lead_off: false,
                lead_changes: Vec::new(),
            },
        );
    }
    let mut vitals = if formats.vitals {
        Some(
            vitals::VitalsWriter::create(out)
                .map_err(|(path, source)| RecordError::Write { path, source })?,
        )
    } else {
        None
    };
    // The truth per patient (beats and rhythm changes, s), for the
    // annotation files at the end.
    let mut beats: BTreeMap<u32, Vec<(f64, BeatKind)>> = BTreeMap::new();
    let mut rhythms: BTreeMap<u32, Vec<(f64, &'static str)>> = BTreeMap::new();
    let mut recorded = Recorded {
        simulated_s: 0.0,
        wall_s: 0.0,
        patients: patients.len(),
        records: devices.values().map(|d| d.record.clone()).collect(),
        samples: 0,
        beats: 0,
    };
    while !twin.finished() {
        let step = twin.step();
        for b in &step.beats {
            beats
                .entry(b.patient_idx)
                .or_default()
                .push((b.r_s, b.kind));
        }
        for r in &step.rhythms {
            rhythms
                .entry(r.patient_idx)
                .or_default()
                .push((r.at_s, r.rhythm.label()));
            for d in devices
                .values_mut()
                .filter(|d| d.patient_idx == r.patient_idx)
            {
                if let Some(edf) = d.edf.as_mut() {
                    edf.note(r.at_s, r.rhythm.label());
                }
            }
        }
        for w in &step.waves {
            let Some(d) = devices.get_mut(&w.device_idx) else {
                continue;
            };
            let pool = &step.wave_samples;
            let len = w.len as usize;
            if w.lead_off != d.lead_off {
                d.lead_off = w.lead_off;
                d.lead_changes.push((w.first_sample, w.lead_off));
                if let Some(edf) = d.edf.as_mut() {
                    let at = w.first_sample as f64 / f64::from(d.config.rate_hz);
                    edf.note(at, if w.lead_off { "lead off" } else { "lead on" });
                }
            }
            if let Some(dat) = d.dat.as_mut() {
                dat.append(len, |c| w.channel(pool, c))
                    .map_err(write_error(&out.join(format!("{}.dat", d.record))))?;
            }
            if let Some(edf) = d.edf.as_mut() {
                edf.append(len, |c| w.channel(pool, c))
                    .map_err(write_error(&out.join(format!("{}.edf", d.record))))?;
            }
            recorded.samples += len as u64;
        }
        if let Some(v) = vitals.as_mut() {
            v.step(&twin, step_now_s(&twin), &patients)
                .map_err(|(path, source)| RecordError::Write { path, source })?;
        }
    }
    if let Some(v) = vitals {
        v.finish()
            .map_err(|(path, source)| RecordError::Write { path, source })?;
    }
    for (_, d) in devices {
        let fs = d.config.rate_hz;
        let mut comments = vec![
            format!(
                "medtwin record: scenario {scenario_name}, seed {}",
                sim.seed
            ),
            format!("patient {}", patients[d.patient_idx as usize]),
        ];
        if d.edf.as_ref().is_some_and(|e| e.dropped_notes > 0) {
            comments.push("some EDF annotations did not fit their data record".into());
        }
        if let Some(dat) = d.dat {
            let n_samples = dat.samples();
            let info = HeaderInfo {
                record: d.record.clone(),
                fs,
                base: Some(base.clone()),
                comments,
            };
            let header = out.join(format!("{}.hea", d.record));
            dat.finish(&header, &info).map_err(write_error(&header))?;
            // Lead-off flattens the channels the electrodes feed.
            let unreadable = wfdb::unreadable_mask(
                d.config
                    .channels
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| matches!(c, Channel::EcgII | Channel::Resp))
                    .map(|(j, _)| j),
            );
            let annotations = annotations_of(
                beats.get(&d.patient_idx).map_or(&[][..], |b| &b[..]),
                rhythms.get(&d.patient_idx).map_or(&[][..], |r| &r[..]),
                (&d.lead_changes, unreadable),
                fs,
                n_samples,
            );
            recorded.beats += annotations
                .iter()
                .filter(|a| matches!(a.code, wfdb::NORMAL | wfdb::PVC))
                .count() as u64;
            let atr = out.join(format!("{}.atr", d.record));
            std::fs::write(&atr, wfdb::annotation_bytes(&annotations))
                .map_err(write_error(&atr))?;
        }
        if let Some(edf) = d.edf {
            let path = out.join(format!("{}.edf", d.record));
            let info = edf_info(&patients[d.patient_idx as usize], &d.record, start_parts);
            edf.finish(&info).map_err(write_error(&path))?;
        }
    }
    if formats.wfdb && !recorded.records.is_empty() {
        // PhysioNet's list of the records in a database folder.
        let path = out.join("RECORDS");
        let text: String = recorded.records.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text).map_err(write_error(&path))?;
    }
    recorded.simulated_s = twin.now_ms() as f64 / 1000.0;
    recorded.wall_s = began.elapsed().as_secs_f64();
    Ok(recorded)
}

fn step_now_s(twin: &Twin) -> f64 {
    twin.now_ms() as f64 / 1000.0
}

/// The patient a device is on: its name up to the `/`.
fn patient_of(device: &str, patients: &[String]) -> u32 {
    let patient = device.split('/').next().unwrap_or(device);
    patients.iter().position(|p| p == patient).unwrap_or(0) as u32
}

fn edf_info(patient: &str, device: &str, start: (u8, u8, u16, u8, u8, u8)) -> EdfInfo {
    EdfInfo {
        // EDF+ patient field: code, sex, birthdate, name (X = unknown).
        patient: format!("{} X X X", patient.replace(' ', "_")),
        equipment: format!("medtwin_{}", wfdb::record_name(device)),
        start,
    }
}

/// The annotation file of one record: every true beat at its R peak's
/// sample, every rhythm change as `+` with its label, and every lead-off
/// episode as `~` with the unreadable channels' mask where it starts and
/// `~` with subtyp 0 (clean again) where it ends, within the record.
fn annotations_of(
    beats: &[(f64, BeatKind)],
    rhythms: &[(f64, &'static str)],
    (lead_changes, unreadable): (&[(u64, bool)], i8),
    fs: u32,
    n_samples: u64,
) -> Vec<Annotation> {
    let fs = f64::from(fs);
    let mut out: Vec<Annotation> = Vec::with_capacity(beats.len() + rhythms.len());
    for &(at_s, label) in rhythms {
        out.push(Annotation {
            sample: (at_s * fs).round() as u64,
            code: wfdb::RHYTHM,
            aux: Some(label.into()),
            subtyp: None,
        });
    }
    for &(sample, off) in lead_changes {
        out.push(Annotation {
            sample,
            code: wfdb::NOISE,
            aux: None,
            subtyp: Some(if off { unreadable } else { 0 }),
        });
    }
    for &(r_s, kind) in beats {
        out.push(Annotation {
            sample: (r_s * fs).round() as u64,
            code: match kind {
                BeatKind::Normal => wfdb::NORMAL,
                BeatKind::Ventricular => wfdb::PVC,
            },
            aux: None,
            subtyp: None,
        });
    }
    out.retain(|a| a.sample < n_samples);
    // By sample; a rhythm change before the beat at the same sample.
    out.sort_by_key(|a| (a.sample, a.code != wfdb::RHYTHM));
    out
}
