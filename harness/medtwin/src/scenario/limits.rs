//! What a scenario will cost, known before it starts: memory (from the
//! bytes per patient, per device and per message in flight that `medtwin
//! bench` and the large-cohort test measure) and steps. A run that will not
//! fit is refused with the estimate and the limit, in under a second,
//! instead of growing until the machine gives out; `medtwin validate`
//! prints the same estimate.

use std::time::Duration;

use super::Scenario;

/// Memory of the harness with nothing simulated: the runtime, the twin's
/// schedule, the embedded backend, buffers (peak RSS of a small run is
/// 15–20 MiB; rounded up generously).
pub const BASE_BYTES: u64 = 48 << 20;
/// Memory per patient over a run: the twin's components, the harness's
/// name, truth and checker state, the embedded backend's windows. With
/// the per-device cost below, a quickstart patient (four devices) is
/// estimated at 11 KiB; measured peak RSS per such patient: 10.4 KiB at
/// 20,000 patients on 1 Hz oximeters, 5.9 KiB at 200,000 on one reading a
/// minute (release build, `medtwin run`, `report.json` `harness`).
pub const BYTES_PER_PATIENT: u64 = 5 * 1024;
/// Memory per device: the twin's device and network state (`medtwin
/// bench net` measures ~860 B resident per device), its name, its slot in
/// the accounting and the backend's windows for what it measures.
pub const BYTES_PER_DEVICE: u64 = 1536;
/// Messages in flight at most (the run's in-flight credit,
/// `run::twin::MAX_IN_FLIGHT`), plus the twin's one step being encoded.
pub const MAX_IN_FLIGHT: u64 = 64 * 1024;
/// Memory per message in flight: its record, its encoded body, its
/// observer entry.
pub const BYTES_PER_MESSAGE: u64 = 1024;
/// Waveform chunk bytes in flight at most (`run::twin::
/// MAX_WAVE_KIB_IN_FLIGHT`), counted for scenarios with waveform devices.
pub const MAX_WAVE_BYTES_IN_FLIGHT: u64 = 64 << 20;
/// Most steps one run may take: three years at one-second steps.
pub const MAX_STEPS: u64 = 100_000_000;
/// Most patient-steps one run may take (about a day of the twin at 15
/// million patient-steps per second).
pub const MAX_PATIENT_STEPS: u64 = 1_000_000_000_000;

/// What a scenario will take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Patients.
    pub patients: u64,
    /// Devices.
    pub devices: u64,
    /// Steps.
    pub steps: u64,
    /// Peak memory, bytes.
    pub memory_bytes: u64,
}

impl Estimate {
    /// The estimate for `s`.
    pub fn of(s: &Scenario) -> Estimate {
        let patients: u64 = s.sim.cohorts.iter().map(|c| u64::from(c.count)).sum();
        let devices: u64 = s
            .sim
            .cohorts
            .iter()
            .map(|c| u64::from(c.count) * c.devices.len() as u64)
            .sum();
        let steps = s.sim.duration_ms.div_ceil(s.sim.step_ms.max(1));
        let streams_waves = s
            .sim
            .cohorts
            .iter()
            .any(|c| c.devices.iter().any(|d| d.waveform.is_some()));
        let memory_bytes = BASE_BYTES
            + patients.saturating_mul(BYTES_PER_PATIENT)
            + devices.saturating_mul(BYTES_PER_DEVICE)
            + MAX_IN_FLIGHT * BYTES_PER_MESSAGE
            + if streams_waves {
                MAX_WAVE_BYTES_IN_FLIGHT
            } else {
                0
            };
        Estimate {
            patients,
            devices,
            steps,
            memory_bytes,
        }
    }

    /// `~1.2 GiB for 100000 patients, 400000 devices, 86400 steps`.
    pub fn human(&self) -> String {
        format!(
            "~{} for {} patients, {} devices, {} steps",
            bytes(self.memory_bytes),
            self.patients,
            self.devices,
            self.steps
        )
    }

    /// Checks the estimate against the limits: the memory limit (the
    /// scenario's `--max-memory`, else what the machine has available),
    /// [`MAX_STEPS`] and [`MAX_PATIENT_STEPS`]. The error names both.
    pub fn check(&self, max_memory: Option<u64>) -> Result<(), String> {
        if self.steps > MAX_STEPS {
            return Err(format!(
                "the run would take {} steps, over the limit of {MAX_STEPS}: use a longer step or a shorter duration",
                self.steps
            ));
        }
        let patient_steps = self.steps.saturating_mul(self.patients);
        if patient_steps > MAX_PATIENT_STEPS {
            return Err(format!(
                "the run would take {patient_steps} patient-steps, over the limit of {MAX_PATIENT_STEPS} (about a day of computing): fewer patients, a longer step or a shorter duration"
            ));
        }
        let (limit, source) = match max_memory {
            Some(limit) => (limit, "--max-memory"),
            None => match available_memory() {
                Some(limit) => (limit, "memory available on this machine"),
                None => return Ok(()),
            },
        };
        if self.memory_bytes > limit {
            return Err(format!(
                "the run would need {} but the limit is {} ({source}): fewer patients or devices, or raise --max-memory",
                self.human(),
                bytes(limit)
            ));
        }
        Ok(())
    }
}

/// The wall-time deadline of a run: `--max-wall` if given; else, on a
/// timed clock, twice the scheduled wall time (simulated duration over the
/// speed, plus the alert grace) plus a minute; on the virtual clock, half
/// an hour plus two seconds per million patient-steps.
pub fn default_max_wall(s: &Scenario) -> Duration {
    if let Some(d) = s.max_wall {
        return d;
    }
    let grace = s.alerts.grace.as_secs_f64();
    let secs = match s.clock.speed() {
        Some(speed) => 2.0 * (s.sim.duration_ms as f64 / 1000.0 / speed + grace) + 60.0,
        None => {
            let e = Estimate::of(s);
            1800.0 + 2.0 * (e.steps as f64 * e.patients as f64 / 1e6) + grace
        }
    };
    Duration::from_secs_f64(secs.min(1e9))
}

/// `MemAvailable` from `/proc/meminfo` (Linux), bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident memory of this process so far (`VmHWM`, Linux), bytes.
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `512 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let x = n as f64;
    if x >= GIB {
        format!("{:.1} GiB", x / GIB)
    } else {
        format!("{:.0} MiB", (x / MIB).ceil())
    }
}

/// A size such as `512M`, `2G`, `1.5GiB` or a byte count.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512M, 2G)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    let n = value * scale as f64;
    if !(n.is_finite() && n >= 1.0) {
        return Err(format!("{text:?} is not a size (e.g. 512M, 2G)"));
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5X").is_err());
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn this_machine_reports_its_memory() {
        assert!(available_memory().is_some_and(|m| m > 0));
        assert!(peak_rss().is_some_and(|m| m > 0));
    }
}
