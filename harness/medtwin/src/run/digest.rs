//! Digests of a run: SHA-256 over every truth record and over the
//! telemetry delivered, one JSON line per record in the twin's order.
//! Same scenario and seed, same digests, whatever the clock or target.

use medtwin_sim::{SimConfig, StepOutput, Twin};
use sha2::{Digest as _, Sha256};

/// The two digests of a run, `sha256:<hex>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// Every delivery (measurement and delivery time), in delivery order.
    pub telemetry: String,
    /// Every truth record: onsets, ends, interventions, criteria,
    /// measurements, deliveries, losses.
    pub truth: String,
}

/// Hashes a run's records step by step.
pub struct Digester {
    truth: Sha256,
    telemetry: Sha256,
    line: Vec<u8>,
}

impl Default for Digester {
    fn default() -> Self {
        Digester {
            truth: Sha256::new(),
            telemetry: Sha256::new(),
            line: Vec::with_capacity(256),
        }
    }
}

impl Digester {
    /// Adds one step's records.
    pub fn step(&mut self, out: &StepOutput) {
        for o in &out.onsets {
            self.truth_line("onset", o);
        }
        for e in &out.ends {
            self.truth_line("ended", e);
        }
        for g in &out.interventions {
            self.truth_line("given", g);
        }
        for c in &out.criteria {
            self.truth_line("criterion", c);
        }
        for m in &out.measurements {
            self.truth_line("measured", m);
        }
        for d in &out.deliveries {
            self.truth_line("delivered", d);
            self.telemetry.update(&self.line);
        }
        for l in &out.losses {
            self.truth_line("lost", l);
        }
    }

    /// Encodes `tag <json>\n` into the line buffer and hashes it into the truth.
    fn truth_line(&mut self, tag: &str, record: &impl serde::Serialize) {
        self.line.clear();
        self.line.extend_from_slice(tag.as_bytes());
        self.line.push(b' ');
        // Serialising plain structs of numbers and names cannot fail.
        let _ = serde_json::to_writer(&mut self.line, record);
        self.line.push(b'\n');
        self.truth.update(&self.line);
    }

    /// The digests of everything added.
    pub fn finish(self) -> Digests {
        Digests {
            telemetry: hex(self.telemetry),
            truth: hex(self.truth),
        }
    }
}

fn hex(hasher: Sha256) -> String {
    let bytes = hasher.finalize();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Runs the twin alone over `config` and returns its digests.
pub fn of_run(config: &SimConfig) -> Result<Digests, medtwin_sim::ConfigError> {
    let mut twin = Twin::new(config)?;
    let mut digester = Digester::default();
    while !twin.finished() {
        digester.step(twin.step());
    }
    Ok(digester.finish())
}
