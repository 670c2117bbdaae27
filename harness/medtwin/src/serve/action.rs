//! What the instructor (and a trainee) can ask of a running ward, as the
//! pages send it (JSON) and as a cue file keeps it (TOML): a condition, an
//! intervention, a device fault or a network outage for one patient. Each
//! becomes one [`medtwin_sim::Command`], which enters the twin only
//! through its bounded command queue.
//!
//! A cue file (docs/training.md) is a list of `[[cue]]` tables, each an
//! action with `at`, the simulated time from the session's start:
//!
//! ```toml
//! [[cue]]
//! at = "2m"
//! type = "condition"
//! patient = "ward-003"
//! condition = "opioid_respiratory_depression"
//! severity = 0.9
//! ramp = "5m"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use medtwin_check::duration;
use medtwin_sim::config::FaultKind;
use medtwin_sim::{Command, ConditionKind, InterventionKind, ParamKind, ParamSpec, Params};
use serde::{Deserialize, Serialize};

/// Most cues a file may hold.
pub const MAX_CUES: usize = 512;

/// One thing done to one patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A condition starts now.
    Condition {
        /// The patient's name, e.g. `ward-003`.
        patient: String,
        /// A condition name (`medtwin list conditions`).
        condition: String,
        /// Severity in (0, 1] (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<f64>,
        /// Onset to full severity, e.g. `5m` (default: the condition's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ramp: Option<String>,
        /// Resolves by itself after this long (default: never).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
    },
    /// An intervention is given now.
    Intervention {
        /// The patient's name.
        patient: String,
        /// An intervention name (`medtwin list interventions`).
        intervention: String,
        /// Its parameters by name (numbers, or a choice's option name).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        params: BTreeMap<String, ParamValue>,
        /// How long it runs, if limited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
    },
    /// A device fault: `sensor_off` (an ECG's leads off, a probe off the
    /// finger), `battery_dead`, ...
    DeviceFault {
        /// The patient's name.
        patient: String,
        /// A fault kind that acts on devices.
        fault: String,
        /// Only this device model or class (default: all the patient's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// How long it lasts.
        duration: String,
    },
    /// The patient's uplink is down.
    NetworkOutage {
        /// The patient's name.
        patient: String,
        /// How long it lasts.
        duration: String,
    },
}

/// A parameter's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A number in the parameter's unit.
    Number(f64),
    /// One of a choice's options.
    Text(String),
}

/// An action at a simulated time, as a cue file lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    /// Simulated time from the session's start, e.g. `10m`.
    pub at: String,
    /// What.
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Default, Deserialize)]
struct CueFile {
    #[serde(default)]
    cue: Vec<Cue>,
}

impl Action {
    /// The patient it addresses.
    pub fn patient(&self) -> &str {
        match self {
            Action::Condition { patient, .. }
            | Action::Intervention { patient, .. }
            | Action::DeviceFault { patient, .. }
            | Action::NetworkOutage { patient, .. } => patient,
        }
    }

    /// The twin's command for it; the error names the field.
    pub fn command(&self) -> Result<Command, String> {
        let dur = |field: &str, text: &str| {
            duration::parse(text)
                .map_err(|e| format!("{field}: {e}"))
                .and_then(|ms| {
                    if ms == 0 {
                        Err(format!("{field}: must be longer than 0"))
                    } else {
                        Ok(ms)
                    }
                })
        };
        let command = match self {
            Action::Condition {
                patient,
                condition,
                severity,
                ramp,
                duration,
            } => {
                let kind = ConditionKind::named(condition).ok_or_else(|| {
                    unknown("condition", condition, ConditionKind::ALL.map(|c| c.name()))
                })?;
                let mut command = Command::start_condition(patient.clone(), kind);
                if let Command::StartCondition {
                    severity: s,
                    ramp_ms,
                    duration_ms,
                    ..
                } = &mut command
                {
                    if let Some(v) = severity {
                        *s = *v;
                    }
                    if let Some(r) = ramp {
                        *ramp_ms = duration::parse(r).map_err(|e| format!("ramp: {e}"))?;
                    }
                    *duration_ms = duration
                        .as_deref()
                        .map(|d| dur("duration", d))
                        .transpose()?;
                }
                command
            }
            Action::Intervention {
                patient,
                intervention,
                params,
                duration,
            } => {
                let kind = InterventionKind::named(intervention).ok_or_else(|| {
                    unknown(
                        "intervention",
                        intervention,
                        InterventionKind::ALL.map(|c| c.name()),
                    )
                })?;
                Command::GiveIntervention {
                    patient: patient.clone(),
                    kind,
                    params: resolve_params(kind.name(), kind.params(), params)?,
                    duration_ms: duration
                        .as_deref()
                        .map(|d| dur("duration", d))
                        .transpose()?,
                }
            }
            Action::DeviceFault {
                patient,
                fault,
                device,
                duration,
            } => {
                let kind = FaultKind::ALL
                    .into_iter()
                    .find(|k| k.name() == fault && k.on_devices())
                    .ok_or_else(|| {
                        unknown(
                            "fault",
                            fault,
                            FaultKind::ALL
                                .into_iter()
                                .filter(|k| k.on_devices())
                                .map(|k| k.name()),
                        )
                    })?;
                Command::DeviceFault {
                    patient: patient.clone(),
                    kind,
                    device: device.clone(),
                    duration_ms: dur("duration", duration)?,
                }
            }
            Action::NetworkOutage { patient, duration } => Command::NetworkOutage {
                patient: patient.clone(),
                duration_ms: dur("duration", duration)?,
            },
        };
        command.check().map_err(|e| e.to_string())?;
        Ok(command)
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.into_iter().collect();
    format!("unknown {what} {name:?} (known: {})", known.join(", "))
}

fn resolve_params(
    owner: &str,
    specs: &[ParamSpec],
    given: &BTreeMap<String, ParamValue>,
) -> Result<Params, String> {
    let mut params = Params::defaults(specs);
    for (name, value) in given {
        let Some(i) = specs.iter().position(|s| s.name == name) else {
            let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
            return Err(format!(
                "params.{name}: {owner} has no such parameter (known: {})",
                known.join(", ")
            ));
        };
        params.0[i] = match (&specs[i].kind, value) {
            (ParamKind::Number { .. }, ParamValue::Number(v)) => *v,
            (ParamKind::Choice { options, .. }, ParamValue::Text(t)) => options
                .iter()
                .position(|o| o == t)
                .ok_or_else(|| format!("params.{name}: {t:?} is not one of {options:?}"))?
                as f64,
            (ParamKind::Number { unit, .. }, ParamValue::Text(_)) => {
                return Err(format!("params.{name}: expected a number ({unit})"));
            }
            (ParamKind::Choice { options, .. }, ParamValue::Number(_)) => {
                return Err(format!("params.{name}: expected one of {options:?}"));
            }
        };
    }
    Ok(params)
}

/// A cue file's cues, each checked (its command built) and its time
/// resolved, in time order; an error names the file, the line (TOML
/// syntax) or the cue and field.
pub fn load(path: &Path) -> Result<Vec<(u64, Cue)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`load`] on text.
pub fn parse(text: &str) -> Result<Vec<(u64, Cue)>, String> {
    let file: CueFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.cue.len() > MAX_CUES {
        return Err(format!(
            "{} cues, at most {MAX_CUES} are taken",
            file.cue.len()
        ));
    }
    let mut cues = Vec::with_capacity(file.cue.len());
    for (i, cue) in file.cue.into_iter().enumerate() {
        let at_ms = duration::parse(&cue.at).map_err(|e| format!("cue {}: at: {e}", i + 1))?;
        cue.action
            .command()
            .map_err(|e| format!("cue {} ({}): {e}", i + 1, cue.action.patient()))?;
        cues.push((at_ms, cue));
    }
    cues.sort_by_key(|(at, _)| *at);
    Ok(cues)
}

/// Cues as a cue file (what "save" downloads).
pub fn write(cues: &[Cue]) -> String {
    let mut out = String::from(
        "# medtwin training cues (docs/training.md): each [[cue]] is an action at a\n# simulated time from the session's start.\n",
    );
    for cue in cues {
        out.push_str("\n[[cue]]\n");
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(cue) {
            for (key, value) in map {
                out.push_str(&format!("{key} = {}\n", toml_value(&value)));
            }
        }
    }
    out
}

/// A JSON value as a TOML value: JSON's strings and numbers are valid
/// TOML; objects become inline tables.
fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cue_file_round_trips_and_errors_name_the_field() {
        let text = r#"
[[cue]]
at = "2m"
type = "condition"
patient = "ward-001"
condition = "opioid_respiratory_depression"
severity = 0.9
ramp = "5m"

[[cue]]
at = "1m"
type = "intervention"
patient = "ward-001"
intervention = "naloxone"
params = { dose_mg = 0.4 }
"#;
        let cues = parse(text).unwrap();
        assert_eq!(cues[0].0, 60_000);
        assert_eq!(cues[1].0, 120_000);
        let again = parse(&write(
            &cues.iter().map(|c| c.1.clone()).collect::<Vec<_>>(),
        ))
        .unwrap();
        assert_eq!(again, cues);
        let bad = text.replace("dose_mg", "dose_g");
        let e = parse(&bad).unwrap_err();
        assert!(e.contains("cue 2") && e.contains("params.dose_g"), "{e}");
        let e = parse(
            "[[cue]]\nat = \"1m\"\ntype = \"condition\"\npatient = \"x\"\ncondition = \"flu\"\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown condition \"flu\""), "{e}");
        let e = parse("[[cue]\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
