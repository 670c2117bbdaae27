//! The file carrier: every message as one NDJSON line, for record and
//! replay (`docs/transports/file.md`). A line names the message's run
//! number, simulated delivery time, patient and device, and carries the
//! body exactly: as JSON (`message`) when the body is one JSON value, as a
//! string (`text`) otherwise (HL7 ER7, several FHIR resources).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::select::EncodeContext;
pub use super::select::FileOptions;
use super::{Carrier, Cause, Failure, Outgoing, Sent};

/// One recorded message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line<'a> {
    /// The run's number for the message, in delivery order.
    pub id: u64,
    /// Simulated time the network delivered it, ms.
    pub delivered_ms: u64,
    /// Patient name.
    pub patient: String,
    /// Device name.
    pub device: String,
    /// MIME type of the body.
    pub content_type: String,
    /// The body, when it is one JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub message: Option<&'a RawValue>,
    /// The body, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Line<'_> {
    /// The body exactly as it was sent.
    pub fn body(&self) -> Vec<u8> {
        match (&self.message, &self.text) {
            (Some(raw), _) => raw.get().as_bytes().to_vec(),
            (None, Some(text)) => text.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }
}

/// Writes each message as a line.
pub struct FileCarrier {
    path: String,
    out: Mutex<Option<BufWriter<File>>>,
    content_type: &'static str,
    patients: Vec<String>,
    devices: Vec<String>,
    /// Messages whose lines could not be written (a full disk), counted
    /// in the report's `carrier` counters besides their cause.
    lost_at_close: std::sync::atomic::AtomicU64,
}

impl FileCarrier {
    /// Opens (creates, or truncates unless `append`) the file at `url` (a
    /// path, or `file://` and a path).
    pub fn create(
        url: &str,
        options: &FileOptions,
        content_type: &'static str,
        ctx: &EncodeContext,
    ) -> anyhow::Result<FileCarrier> {
        let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        let file = open(&path, options.append.unwrap_or(false))
            .with_context(|| format!("cannot open {} to record telemetry", path.display()))?;
        Ok(FileCarrier {
            path: path.display().to_string(),
            out: Mutex::new(Some(BufWriter::with_capacity(1 << 16, file))),
            content_type,
            patients: ctx.names.patients.clone(),
            devices: ctx.names.devices.clone(),
            lost_at_close: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn line(&self, m: &Outgoing) -> Result<Vec<u8>, String> {
        let name = |list: &[String], i: u32| list.get(i as usize).cloned().unwrap_or_default();
        let text = std::str::from_utf8(&m.body).map_err(|e| format!("body is not UTF-8: {e}"))?;
        let raw: Option<&RawValue> = serde_json::from_str(text).ok();
        let line = Line {
            id: m.id,
            delivered_ms: m.delivered_ms,
            patient: name(&self.patients, m.patient_idx),
            device: name(&self.devices, m.device_idx),
            content_type: self.content_type.to_owned(),
            message: raw,
            text: raw.is_none().then(|| text.to_owned()),
        };
        let mut out = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
        out.push(b'\n');
        Ok(out)
    }
}

fn open(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path)
}

impl Carrier for FileCarrier {
    async fn send(&self, batch: &[Outgoing]) -> Sent {
        let mut bytes = Vec::new();
        for m in batch {
            match self.line(m) {
                Ok(line) => bytes.extend_from_slice(&line),
                Err(why) => return Sent::NotAccepted(Failure::new(Cause::MalformedAnswer, why)),
            }
        }
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(writer) = out.as_mut() else {
            return Sent::NotAccepted(Failure::new(Cause::Closed, "the file is closed"));
        };
        match writer.write_all(&bytes) {
            Ok(()) => Sent::Accepted,
            Err(e) => Sent::NotAccepted(Failure::new(Cause::Io, format!("{}: {e}", self.path))),
        }
    }

    fn destination(&self) -> &str {
        &self.path
    }

    async fn close(&self) {
        let writer = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut writer) = writer {
            // A failed final flush loses the buffered tail: count its
            // lines (the messages were counted accepted when buffered).
            if writer.flush().is_err() {
                let tail = writer.buffer().iter().filter(|&&b| b == b'\n').count();
                self.lost_at_close
                    .store(tail.max(1) as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let lost = self
            .lost_at_close
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut out = BTreeMap::new();
        if lost > 0 {
            out.insert("lines_lost_at_close".to_owned(), lost);
        }
        out
    }
}
