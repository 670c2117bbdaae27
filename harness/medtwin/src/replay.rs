//! `medtwin replay`: sends a recording made by the file transport
//! (`docs/transports/file.md`) to a target over any transport, exactly as
//! recorded (the bodies are not re-encoded), each patient's messages in
//! their recorded order, as fast as the target takes them. Every message
//! ends as accepted, refused, failed or not sent, counted by cause like a
//! run's.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::SimClock;
use crate::scenario::Clock;
use crate::scenario::interop::{Encoding, Protocol};
use crate::stop::Stop;
use crate::transport::file::Line;
use crate::transport::json::Names;
use crate::transport::select::{self, EncodeContext, TargetConfig};
use crate::transport::{Carrier as _, Outgoing, Transport, TransportStats};

/// Longest line read from a recording, bytes (a message body is at most
/// 64 KiB; its JSON framing and escapes fit well within this).
const MAX_LINE_BYTES: usize = 1 << 20;

/// Where and how to replay.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// The transport.
    pub protocol: Protocol,
    /// Where to (as `[target] url`).
    pub url: String,
    /// How to authenticate (a bearer token from `--token-file` or
    /// `MEDTWIN_TARGET_TOKEN`).
    pub auth: crate::transport::auth::Auth,
    /// Per request.
    pub timeout: Duration,
    /// Lanes.
    pub lanes: usize,
    /// TLS towards the target (for `https://`, `mqtts://`, `mllps://`).
    pub tls: medtwin_tls::ClientOptions,
}

/// What a replay did.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// Lines read.
    pub lines: u64,
    /// What the transport did with them.
    pub stats: TransportStats,
    /// Wall time taken.
    pub wall: Duration,
}

/// Each encoding's content type, asked of the encoders themselves (so the
/// recording and the replay cannot drift apart).
fn content_types() -> Vec<(&'static str, Encoding)> {
    use crate::transport::Encoder as _;
    let ctx = EncodeContext {
        names: Names::default(),
        start: SystemTime::UNIX_EPOCH,
    };
    Encoding::ALL
        .into_iter()
        .filter_map(|e| Some((select::encoder(e, &ctx).ok()?.content_type(), e)))
        .collect()
}

/// One pass over the file: the names in order of first appearance, and
/// the recorded encoding (every line must share it).
fn survey(path: &Path) -> Result<(Names, Encoding, u64), String> {
    let mut names = Names::default();
    let mut seen_p = HashMap::new();
    let mut seen_d = HashMap::new();
    let known = content_types();
    let mut encoding = None;
    let mut n = 0;
    for_each_line(path, |number, line| {
        n += 1;
        if !seen_p.contains_key(&line.patient) {
            seen_p.insert(line.patient.clone(), names.patients.len() as u32);
            names.patients.push(line.patient.clone());
        }
        if !seen_d.contains_key(&line.device) {
            seen_d.insert(line.device.clone(), names.devices.len() as u32);
            names.devices.push(line.device.clone());
            names.models.push(String::new());
        }
        let e = known
            .iter()
            .find(|(ct, _)| *ct == line.content_type)
            .map(|&(_, e)| e)
            .ok_or_else(|| {
                format!(
                    "{}:{number}: content_type \"{}\" is not one medtwin records",
                    path.display(),
                    line.content_type
                )
            })?;
        match encoding {
            None => encoding = Some(e),
            Some(first) if first != e => {
                return Err(format!(
                    "{}:{number}: the recording mixes encodings ({} and {})",
                    path.display(),
                    first.name(),
                    e.name()
                ));
            }
            Some(_) => {}
        }
        Ok(())
    })?;
    let encoding = encoding.ok_or_else(|| format!("{}: no messages", path.display()))?;
    Ok((names, encoding, n))
}

/// Calls `f` with each line (1-based number) of a recording; the error
/// names the file, line and problem.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &Line<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{}:{}: {e}", path.display(), number + 1))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if buf.len() > MAX_LINE_BYTES {
            return Err(format!(
                "{}:{number}: line longer than {MAX_LINE_BYTES} bytes",
                path.display()
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|e| format!("{}:{number}: not UTF-8: {e}", path.display()))?
            .trim_end();
        if text.is_empty() {
            continue;
        }
        let line: Line<'_> = serde_json::from_str(text)
            .map_err(|e| format!("{}:{number}: not a recorded message: {e}", path.display()))?;
        f(number, &line)?;
    }
}

use std::io::Read as _;

/// Replays the recording at `path` to the target.
pub async fn replay(path: &Path, config: &ReplayConfig) -> Result<Replayed, String> {
    let started = Instant::now();
    let (names, encoding, lines) = survey(path)?;
    if !config.protocol.encodings().contains(&encoding) {
        return Err(format!(
            "{} holds {} messages; the {} transport carries {}",
            path.display(),
            encoding.name(),
            config.protocol.name(),
            config
                .protocol
                .encodings()
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut target = TargetConfig::http(config.url.clone(), config.timeout, config.lanes);
    target.protocol = config.protocol;
    target.encoding = encoding;
    target.auth = config.auth.clone();
    target.tls = config.tls.clone();
    let index_p: HashMap<String, u32> = names
        .patients
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    let index_d: HashMap<String, u32> = names
        .devices
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    let ctx = EncodeContext {
        names,
        start: SystemTime::now(),
    };
    let wired = select::connect(&target, &ctx).await.map_err(|e| {
        format!(
            "cannot set up the {} transport: {e:#}",
            config.protocol.name()
        )
    })?;
    let carrier = Arc::new(wired.carrier);
    let clock = Arc::new(SimClock::new(Clock::Virtual, Instant::now()));
    let transport = Transport::start(carrier.clone(), config.lanes, clock, None, Stop::new());
    // Read again, sending as we go: the lanes' bounded queues hold the
    // file back, so memory stays bounded whatever its size.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Outgoing>(1024);
    let reader = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            for_each_line(&path, |_, line| {
                let message = Outgoing {
                    id: line.id,
                    patient_idx: index_p.get(&line.patient).copied().unwrap_or(0),
                    device_idx: index_d.get(&line.device).copied().unwrap_or(0),
                    delivered_ms: line.delivered_ms,
                    body: line.body(),
                    kind: crate::transport::MessageKind::Measurement,
                    hold: None,
                };
                tx.blocking_send(message)
                    .map_err(|_| "the sender stopped".to_owned())
            })
        })
    };
    while let Some(message) = rx.recv().await {
        transport.send(message).await;
    }
    let read = reader
        .await
        .map_err(|e| format!("the reader failed: {e}"))?;
    let (mut stats, _) = transport.finish().await;
    carrier.close().await;
    stats.carrier = carrier.counters();
    read?;
    Ok(Replayed {
        lines,
        stats,
        wall: started.elapsed(),
    })
}

/// The replay's summary, for the terminal.
pub fn human(r: &Replayed, config: &ReplayConfig) -> String {
    let s = &r.stats;
    let secs = r.wall.as_secs_f64();
    let mut out = format!(
        "replayed {} messages to {} over {} in {secs:.1} s ({:.0} messages/s): {} accepted · {} refused · {} failed · {} not sent\n",
        r.lines,
        config.url,
        config.protocol.name(),
        if secs > 0.0 {
            r.lines as f64 / secs
        } else {
            0.0
        },
        s.accepted,
        s.refused,
        s.failed,
        s.not_sent
    );
    for (cause, n) in &s.by_cause {
        out.push_str(&format!("  {cause}: {n}\n"));
    }
    for sample in &s.samples {
        out.push_str(&format!("  e.g. {sample}\n"));
    }
    out
}
