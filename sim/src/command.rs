//! Commands: the one door into a running twin.
//!
//! Everything a scenario schedules up front (conditions, interventions,
//! device faults, uplink outages) can also be asked of a running twin with
//! [`Twin::push_command`](crate::Twin::push_command), stamped in simulated
//! time. A command addresses a patient by name (as
//! [`Twin::patient_names`](crate::Twin::patient_names) gives them), so a
//! router can hand the same command to every shard: the shard that owns the
//! patient takes it, the others refuse it with
//! [`CommandError::OtherShard`].
//!
//! Queued commands are kept in (time, arrival) order, at most
//! [`COMMAND_CAPACITY`] of them. At the start of each step the twin applies
//! every command due by the end of that step to the world, exactly as if it
//! had been scheduled at that time (an episode with its onset at the
//! command's time, an intervention given then, a device fault or an outage
//! spanning from then), and records it in
//! [`StepOutput::commands`](crate::StepOutput::commands). The systems then
//! do the rest, as for anything scheduled: the same command at the same
//! time gives the same records, whatever the shard split.

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::clinical::{ConditionKind, InterventionKind, ParamKind, ParamSpec, Params};
use crate::config::{FaultKind, SimConfig};

/// How many commands a twin holds queued at most; more are refused with
/// [`CommandError::QueueFull`] until steps have applied some.
pub const COMMAND_CAPACITY: usize = 1024;

/// Something to do to one patient of a running twin. The time is given
/// apart, to [`Twin::push_command`](crate::Twin::push_command).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// A condition starts (as an `[[event]]` would schedule it).
    StartCondition {
        /// The patient's name, e.g. `ward-003`.
        patient: String,
        /// Which condition.
        #[serde(serialize_with = "condition_name")]
        condition: ConditionKind,
        /// Severity in (0, 1]: the fraction of the full deterioration reached.
        severity: f64,
        /// Time from onset to full severity, ms.
        ramp_ms: u64,
        /// Time after onset at which it resolves by itself, if it does (positive).
        duration_ms: Option<u64>,
        /// Condition-specific parameters, in the order of
        /// [`ConditionKind::params`]; unused slots are 0.
        #[serde(serialize_with = "param_values")]
        params: Params,
    },
    /// An intervention is given (as an `[[intervention]]` would schedule it).
    GiveIntervention {
        /// The patient's name.
        patient: String,
        /// What.
        #[serde(serialize_with = "intervention_name")]
        kind: InterventionKind,
        /// Parameters, in the order of [`InterventionKind::params`]; unused
        /// slots are 0.
        #[serde(serialize_with = "param_values")]
        params: Params,
        /// How long it runs (infusion, oxygen, CPR), if limited (positive).
        duration_ms: Option<u64>,
    },
    /// A fault on the patient's devices (as a `[[fault]]` of a kind that
    /// acts on devices would schedule it). One difference: a device keeps
    /// its last readings (what a `stuck_value` repeats) only while it has
    /// a fault, scheduled or commanded, so a `stuck_value` on a device
    /// that had none before freezes nothing.
    DeviceFault {
        /// The patient's name.
        patient: String,
        /// What fails: a kind for which [`FaultKind::on_devices`] holds.
        #[serde(serialize_with = "fault_name")]
        kind: FaultKind,
        /// Only the patient's devices of this model or class (`None`: all of them).
        device: Option<String>,
        /// How long it lasts, ms (positive).
        duration_ms: u64,
    },
    /// The patient's uplink is down (a `network_outage` fault): a gateway
    /// buffers, without one what is sent into the outage is lost.
    NetworkOutage {
        /// The patient's name.
        patient: String,
        /// How long it lasts, ms (positive).
        duration_ms: u64,
    },
}

impl Command {
    /// `condition` on `patient` at severity 1, with the condition's default
    /// ramp and parameters and no set duration.
    pub fn start_condition(patient: impl Into<String>, condition: ConditionKind) -> Command {
        Command::StartCondition {
            patient: patient.into(),
            condition,
            severity: 1.0,
            ramp_ms: condition.default_ramp_ms(),
            duration_ms: None,
            params: Params::defaults(condition.params()),
        }
    }

    /// `kind` given to `patient` with its default parameters, unlimited.
    pub fn give(patient: impl Into<String>, kind: InterventionKind) -> Command {
        Command::GiveIntervention {
            patient: patient.into(),
            kind,
            params: Params::defaults(kind.params()),
            duration_ms: None,
        }
    }

    /// The name of the patient it addresses.
    pub fn patient(&self) -> &str {
        match self {
            Command::StartCondition { patient, .. }
            | Command::GiveIntervention { patient, .. }
            | Command::DeviceFault { patient, .. }
            | Command::NetworkOutage { patient, .. } => patient,
        }
    }

    /// The command's name, as in its serialized `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::StartCondition { .. } => "start_condition",
            Command::GiveIntervention { .. } => "give_intervention",
            Command::DeviceFault { .. } => "device_fault",
            Command::NetworkOutage { .. } => "network_outage",
        }
    }

    /// Checks what needs no twin: severity, parameters against the
    /// condition's or intervention's table, durations, the fault kind.
    pub fn check(&self) -> Result<(), CommandError> {
        match self {
            Command::StartCondition {
                condition,
                severity,
                duration_ms,
                params,
                ..
            } => {
                if !(*severity > 0.0 && *severity <= 1.0) {
                    return Err(CommandError::OutOfRange {
                        field: "severity".into(),
                        value: *severity,
                        expected: "greater than 0, at most 1".into(),
                    });
                }
                check_duration(*duration_ms)?;
                check_params(condition.name(), condition.params(), params)
            }
            Command::GiveIntervention {
                kind,
                params,
                duration_ms,
                ..
            } => {
                check_duration(*duration_ms)?;
                check_params(kind.name(), kind.params(), params)
            }
            Command::DeviceFault {
                kind, duration_ms, ..
            } => {
                if !kind.on_devices() {
                    return Err(CommandError::NotADeviceFault { kind: *kind });
                }
                check_duration(Some(*duration_ms))
            }
            Command::NetworkOutage { duration_ms, .. } => check_duration(Some(*duration_ms)),
        }
    }
}

fn check_duration(duration_ms: Option<u64>) -> Result<(), CommandError> {
    match duration_ms {
        Some(0) => Err(CommandError::OutOfRange {
            field: "duration_ms".into(),
            value: 0.0,
            expected: "greater than 0 ms".into(),
        }),
        _ => Ok(()),
    }
}

/// Every parameter within its spec's range (a choice: one of its option
/// indices), and the slots no spec uses at 0, as scenario resolution leaves them.
fn check_params(owner: &str, specs: &[ParamSpec], params: &Params) -> Result<(), CommandError> {
    for (i, &value) in params.0.iter().enumerate() {
        let Some(spec) = specs.get(i) else {
            if value != 0.0 {
                return Err(CommandError::OutOfRange {
                    field: format!("params[{i}]"),
                    value,
                    expected: format!("0: {owner} takes {} parameter(s)", specs.len()),
                });
            }
            continue;
        };
        let (ok, expected) = match spec.kind {
            ParamKind::Number { min, max, unit, .. } => (
                value >= min && value <= max,
                format!("{min} to {max} {unit}"),
            ),
            ParamKind::Choice { options, .. } => (
                value >= 0.0 && value.fract() == 0.0 && value < options.len() as f64,
                format!("an option index: {}", options.join(", ")),
            ),
        };
        if !ok {
            return Err(CommandError::OutOfRange {
                field: format!("{owner}.{}", spec.name),
                value,
                expected,
            });
        }
    }
    Ok(())
}

/// Why a twin refused a command. Nothing was queued.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum CommandError {
    /// The queue holds [`COMMAND_CAPACITY`] commands already.
    #[error("command queue is full ({capacity} commands waiting)")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The command is stamped before the twin's current time.
    #[error("command at {at_ms} ms is in the past (the twin is at {now_ms} ms)")]
    InThePast {
        /// The command's time, simulated ms.
        at_ms: u64,
        /// The end of the twin's last step, simulated ms.
        now_ms: u64,
    },
    /// No patient of the population has that name.
    #[error("no patient `{patient}` in the population")]
    UnknownPatient {
        /// The name given.
        patient: String,
    },
    /// The patient exists, but another shard simulates it.
    #[error("patient `{patient}` is simulated by shard {shard}, not this one")]
    OtherShard {
        /// The name given.
        patient: String,
        /// Index of the shard that owns it.
        shard: u32,
    },
    /// A number outside what the twin accepts.
    #[error("{field} = {value} is out of range (expected {expected})")]
    OutOfRange {
        /// Which field, e.g. `severity` or `naloxone.dose_mg`.
        field: String,
        /// The rejected value.
        value: f64,
        /// What would be accepted.
        expected: String,
    },
    /// A device-fault command with a kind that does not act on devices.
    #[error("fault `{}` does not act on devices", .kind.name())]
    NotADeviceFault {
        /// The kind given.
        kind: FaultKind,
    },
    /// A device-fault command that would reach none of the patient's devices.
    #[error("patient `{patient}` wears no {}", .device.as_deref().map_or("device".to_owned(), |d| format!("`{d}`")))]
    NoSuchDevice {
        /// The patient.
        patient: String,
        /// The model or class asked for (`None`: any device).
        device: Option<String>,
    },
}

/// Commands waiting for their step, in (time, arrival) order.
#[derive(Default)]
pub(crate) struct CommandQueue {
    queued: BTreeMap<(u64, u64), (u32, Command)>,
    arrivals: u64,
}

impl CommandQueue {
    /// Commands waiting.
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether none wait (the per-step fast path).
    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Queues `command` for patient `patient_idx` at `at_ms`, after every
    /// command already queued for that time.
    pub(crate) fn push(
        &mut self,
        at_ms: u64,
        patient_idx: u32,
        command: Command,
    ) -> Result<(), CommandError> {
        if self.queued.len() >= COMMAND_CAPACITY {
            return Err(CommandError::QueueFull {
                capacity: COMMAND_CAPACITY,
            });
        }
        self.queued
            .insert((at_ms, self.arrivals), (patient_idx, command));
        self.arrivals += 1;
        Ok(())
    }

    /// The first command due at or before `end_ms`: (time, patient index, command).
    pub(crate) fn pop_due(&mut self, end_ms: u64) -> Option<(u64, u32, Command)> {
        let entry = self.queued.first_entry()?;
        if entry.key().0 > end_ms {
            return None;
        }
        let ((at_ms, _), (patient_idx, command)) = entry.remove_entry();
        Some((at_ms, patient_idx, command))
    }
}

/// Who is where: each cohort's name, position in the whole population,
/// size and the devices its patients wear, and this twin's shard. Finds a
/// patient by name without a per-patient table.
pub(crate) struct Roster {
    cohorts: Vec<RosterCohort>,
    shard_index: u32,
    shard_count: u32,
}

struct RosterCohort {
    name: String,
    /// Position of its first patient in the whole population.
    start: u64,
    count: u32,
    /// (model name, class name) of each device its patients wear.
    devices: Vec<(String, &'static str)>,
}

impl Roster {
    pub(crate) fn new(config: &SimConfig) -> Roster {
        let mut start = 0u64;
        let cohorts = config
            .cohorts
            .iter()
            .map(|c| {
                let cohort = RosterCohort {
                    name: c.name.clone(),
                    start,
                    count: c.count,
                    devices: c
                        .devices
                        .iter()
                        .map(|d| (d.spec.name.clone(), d.spec.class.name()))
                        .collect(),
                };
                start += u64::from(c.count);
                cohort
            })
            .collect();
        Roster {
            cohorts,
            shard_index: config.shard.index,
            shard_count: config.shard.count.max(1),
        }
    }

    /// The patient index in this twin of the patient `command` addresses,
    /// if this twin simulates it and the command can reach what it names.
    /// `names` are the twin's patient names, by index.
    pub(crate) fn admit(&self, command: &Command, names: &[String]) -> Result<u32, CommandError> {
        let name = command.patient();
        let unknown = || CommandError::UnknownPatient {
            patient: name.to_owned(),
        };
        // `<cohort>-<index:03>`: a cohort name may itself contain `-`.
        let (cohort, index) = self
            .cohorts
            .iter()
            .find_map(|cohort| {
                let digits = name.strip_prefix(cohort.name.as_str())?.strip_prefix('-')?;
                let index: u32 = digits.parse().ok()?;
                (index < cohort.count && format!("{index:03}") == digits).then_some((cohort, index))
            })
            .ok_or_else(unknown)?;
        let position = cohort.start + u64::from(index);
        let count = u64::from(self.shard_count);
        let shard = (position % count) as u32;
        if shard != self.shard_index {
            return Err(CommandError::OtherShard {
                patient: name.to_owned(),
                shard,
            });
        }
        let patient_idx = u32::try_from(position / count).map_err(|_| unknown())?;
        // The twin's own table has the final word.
        if names.get(patient_idx as usize).map(String::as_str) != Some(name) {
            return Err(unknown());
        }
        if let Command::DeviceFault { device, .. } = command {
            let worn = cohort.devices.iter().any(|(model, class)| {
                device
                    .as_deref()
                    .is_none_or(|d| d == model.as_str() || d == *class)
            });
            if !worn {
                return Err(CommandError::NoSuchDevice {
                    patient: name.to_owned(),
                    device: device.clone(),
                });
            }
        }
        Ok(patient_idx)
    }
}

fn condition_name<S: serde::Serializer>(kind: &ConditionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn intervention_name<S: serde::Serializer>(
    kind: &InterventionKind,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn fault_name<S: serde::Serializer>(kind: &FaultKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn param_values<S: serde::Serializer>(params: &Params, s: S) -> Result<S::Ok, S::Error> {
    params.0.serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sepsis() -> Command {
        Command::start_condition("ward-000", ConditionKind::Sepsis)
    }

    #[test]
    fn defaults_pass_and_bad_numbers_are_refused() {
        for kind in ConditionKind::ALL {
            assert_eq!(Command::start_condition("p", kind).check(), Ok(()));
        }
        for kind in InterventionKind::ALL {
            assert_eq!(Command::give("p", kind).check(), Ok(()));
        }
        for severity in [0.0, -0.1, 1.01, f64::NAN] {
            let mut c = sepsis();
            if let Command::StartCondition { severity: s, .. } = &mut c {
                *s = severity;
            }
            assert!(
                matches!(c.check(), Err(CommandError::OutOfRange { ref field, .. }) if field == "severity"),
                "severity {severity}"
            );
        }
        // Naloxone 0.04..=10 mg; its other slots unused.
        let naloxone = |params| Command::GiveIntervention {
            patient: "p".into(),
            kind: InterventionKind::Naloxone,
            params: Params(params),
            duration_ms: None,
        };
        assert_eq!(naloxone([0.4, 0.0, 0.0]).check(), Ok(()));
        let err = naloxone([20.0, 0.0, 0.0]).check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "naloxone.dose_mg = 20 is out of range (expected 0.04 to 10 mg)"
        );
        assert!(naloxone([0.4, 1.0, 0.0]).check().is_err());
        assert!(naloxone([f64::NAN, 0.0, 0.0]).check().is_err());
        // A choice is one of its option indices.
        let arrest = |rhythm| Command::StartCondition {
            patient: "p".into(),
            condition: ConditionKind::CardiacArrest,
            severity: 1.0,
            ramp_ms: 0,
            duration_ms: None,
            params: Params([rhythm, 0.0, 0.0]),
        };
        assert_eq!(arrest(1.0).check(), Ok(()));
        assert_eq!(arrest(2.0).check(), Ok(()));
        assert_eq!(arrest(3.0).check(), Ok(()));
        assert!(arrest(4.0).check().is_err());
        assert!(arrest(0.5).check().is_err());
        // Durations are positive; an outage is not a device fault.
        let outage = Command::NetworkOutage {
            patient: "p".into(),
            duration_ms: 0,
        };
        assert!(outage.check().is_err());
        let fault = Command::DeviceFault {
            patient: "p".into(),
            kind: FaultKind::NetworkOutage,
            device: None,
            duration_ms: 1_000,
        };
        assert_eq!(
            fault.check(),
            Err(CommandError::NotADeviceFault {
                kind: FaultKind::NetworkOutage
            })
        );
        assert_eq!(
            fault.check().unwrap_err().to_string(),
            "fault `network_outage` does not act on devices"
        );
    }

    #[test]
    fn the_queue_keeps_time_then_arrival_order_and_its_bound() {
        let mut q = CommandQueue::default();
        let c = |name: &str| Command::give(name, InterventionKind::Oxygen);
        q.push(5_000, 0, c("b")).unwrap();
        q.push(1_000, 1, c("a")).unwrap();
        q.push(5_000, 2, c("c")).unwrap();
        assert_eq!(q.pop_due(999), None);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(10_000))
            .map(|(at, idx, c)| (at, idx, c.patient().to_owned()))
            .collect();
        assert_eq!(
            order,
            [
                (1_000, 1, "a".to_owned()),
                (5_000, 0, "b".to_owned()),
                (5_000, 2, "c".to_owned())
            ]
        );
        for i in 0..COMMAND_CAPACITY {
            q.push(i as u64, 0, c("x")).unwrap();
        }
        assert_eq!(
            q.push(0, 0, c("x")),
            Err(CommandError::QueueFull {
                capacity: COMMAND_CAPACITY
            })
        );
        assert_eq!(q.len(), COMMAND_CAPACITY);
    }
}
