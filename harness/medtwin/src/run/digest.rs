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
    /// Every truth record: onsets, ends, interventions, commands applied,
    /// criteria, measurements, deliveries, losses.
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
        // None in a run without commands: its digests are unchanged.
        for c in &out.commands {
            self.truth_line("command", c);
        }
        for c in &out.criteria {
            self.truth_line("criterion", c);
        }
        for c in &out.states {
            self.truth_line("state", c);
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
        // Waveform truth (only scenarios with waveform devices have any,
        // so no other digest changes): every true beat and rhythm change.
        for r in &out.rhythms {
            self.truth_line("rhythm", r);
        }
        for b in &out.beats {
            self.truth_line("beat", b);
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

#[cfg(test)]
mod tests {
    use super::*;
    use medtwin_sim::{CommandApplied, ConditionKind, InterventionGiven, InterventionKind, Params};

    /// A command is one `command <json>` line, right after the
    /// interventions; its JSON names the command, its kinds and patient.
    #[test]
    fn commands_are_hashed_after_the_interventions() {
        let command = CommandApplied {
            at_ms: 60_000,
            patient_idx: 1,
            command: medtwin_sim::Command::start_condition("ward-001", ConditionKind::Sepsis),
        };
        let json = serde_json::to_string(&command).unwrap();
        assert_eq!(
            json,
            r#"{"at_ms":60000,"patient_idx":1,"command":{"type":"start_condition","patient":"ward-001","condition":"sepsis","severity":1.0,"ramp_ms":21600000,"duration_ms":null,"params":[0.0,0.0,0.0]}}"#
        );
        let given = InterventionGiven {
            patient_idx: 1,
            kind: InterventionKind::Oxygen,
            at_ms: 60_000,
            params: Params([2.0, 0.0, 0.0]),
            rosc: None,
        };
        let out = StepOutput {
            now_ms: 60_000,
            interventions: vec![given],
            commands: vec![command],
            ..StepOutput::default()
        };
        let mut digester = Digester::default();
        digester.step(&out);
        let mut expected = Sha256::new();
        expected.update(format!(
            "given {}\n",
            serde_json::to_string(&given).unwrap()
        ));
        expected.update(format!("command {json}\n"));
        assert_eq!(digester.finish().truth, hex(expected));
    }
}
