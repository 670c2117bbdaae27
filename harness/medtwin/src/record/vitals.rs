//! The true vitals of every patient at every step, as CSV (one header
//! line, then `time_s,patient,...`) and as NDJSON (one JSON object a line,
//! the same fields). Values are the twin's truth, not what devices said.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use medtwin_sim::{Rhythm, Twin};

/// The columns, in order (units last in each name).
pub const COLUMNS: [&str; 12] = [
    "time_s",
    "patient",
    "hr_bpm",
    "sbp_mmhg",
    "dbp_mmhg",
    "map_mmhg",
    "rr_bpm",
    "spo2_pct",
    "temp_c",
    "etco2_mmhg",
    "glucose_mgdl",
    "rhythm",
];

/// Writes `vitals.csv` and `vitals.ndjson` step by step.
pub struct VitalsWriter {
    csv: BufWriter<File>,
    ndjson: BufWriter<File>,
    csv_path: PathBuf,
    ndjson_path: PathBuf,
    line: String,
}

type Failed = (PathBuf, io::Error);

fn rhythm_name(r: Rhythm) -> &'static str {
    match r {
        Rhythm::Sinus => "sinus",
        Rhythm::Af => "af",
        Rhythm::Vt => "vt",
        Rhythm::Vf => "vf",
        Rhythm::Asystole => "asystole",
        Rhythm::Pea => "pea",
    }
}

impl VitalsWriter {
    /// Creates both files in `dir`.
    pub fn create(dir: &Path) -> Result<VitalsWriter, Failed> {
        let csv_path = dir.join("vitals.csv");
        let ndjson_path = dir.join("vitals.ndjson");
        let open = |p: &PathBuf| {
            File::create(p)
                .map(|f| BufWriter::with_capacity(1 << 16, f))
                .map_err(|e| (p.clone(), e))
        };
        let mut csv = open(&csv_path)?;
        writeln!(csv, "{}", COLUMNS.join(",")).map_err(|e| (csv_path.clone(), e))?;
        Ok(VitalsWriter {
            csv,
            ndjson: open(&ndjson_path)?,
            csv_path,
            ndjson_path,
            line: String::new(),
        })
    }

    /// One row per patient at simulated time `now_s`.
    pub fn step(&mut self, twin: &Twin, now_s: f64, patients: &[String]) -> Result<(), Failed> {
        use std::fmt::Write as _;
        for (idx, name) in patients.iter().enumerate() {
            let Some(v) = twin.vitals(idx as u32) else {
                continue;
            };
            let rhythm = rhythm_name(v.rhythm);
            let values = [
                v.hr_bpm,
                v.sbp_mmhg,
                v.dbp_mmhg,
                v.map_mmhg(),
                v.rr_bpm,
                v.spo2_pct,
                v.temp_c,
                v.etco2_mmhg,
                v.glucose_mgdl,
            ];
            self.line.clear();
            let _ = write!(self.line, "{now_s},{name}");
            for x in values {
                let _ = write!(self.line, ",{x:.2}");
            }
            let _ = writeln!(self.line, ",{rhythm}");
            self.csv
                .write_all(self.line.as_bytes())
                .map_err(|e| (self.csv_path.clone(), e))?;
            self.line.clear();
            let _ = write!(self.line, "{{\"time_s\":{now_s},\"patient\":\"{name}\"");
            for (column, x) in COLUMNS[2..11].iter().zip(values) {
                let _ = write!(self.line, ",\"{column}\":{x:.2}");
            }
            let _ = writeln!(self.line, ",\"rhythm\":\"{rhythm}\"}}");
            self.ndjson
                .write_all(self.line.as_bytes())
                .map_err(|e| (self.ndjson_path.clone(), e))?;
        }
        Ok(())
    }

    /// Flushes both files.
    pub fn finish(mut self) -> Result<(), Failed> {
        self.csv.flush().map_err(|e| (self.csv_path.clone(), e))?;
        self.ndjson
            .flush()
            .map_err(|e| (self.ndjson_path.clone(), e))
    }
}
