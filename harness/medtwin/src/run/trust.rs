//! Whether a run's verdict can be trusted: did the target take the
//! telemetry (a target that accepted less than a set share cannot pass:
//! its verdict is "target unreachable" or "target refused data"), and did
//! the harness keep to its schedule (when its send lag passes 1 % of the
//! tightest deadline, the run is unreliable and no latency expectation can
//! pass on it).

use std::time::Duration;

use medtwin_check::{ExpectationResult, Verdict};

use super::judge::Judged;
use super::observe::Observed;
use crate::scenario::Scenario;
use crate::stop::StopReason;
use crate::transport::{Lag, TransportStats};

/// Share of the tightest deadline the harness's send lag p99 may reach.
const LAG_SHARE_OF_DEADLINE: f64 = 0.01;

/// The run's verdict, with the target's part in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunVerdict {
    /// Every expectation held.
    Pass,
    /// An expectation failed.
    Fail,
    /// Too little telemetry accepted, mostly for want of any answer.
    TargetUnreachable,
    /// Too little telemetry accepted, mostly refused.
    TargetRefusedData,
    /// Stopped before its end (a signal, or the deadline).
    Interrupted(StopReason),
}

/// What the harness found about itself and the target's uptake.
#[derive(Clone, Debug)]
pub struct Trust {
    /// `release` or `debug`.
    pub build: &'static str,
    /// Send lag against the schedule in simulated ms (timed clocks).
    pub lag_sim_ms: Option<Lag>,
    /// The lag p99 allowed, simulated ms (timed clocks with a deadline).
    pub lag_bound_sim_ms: Option<f64>,
    /// Whether latencies can be trusted.
    pub reliable: bool,
    /// Process CPU time, s.
    pub cpu_s: f64,
    /// CPU time over wall time.
    pub cpu_cores_used: f64,
    /// Deliveries the target accepted.
    pub accepted: u64,
    /// Deliveries it did not.
    pub not_accepted: u64,
    /// The share the target had to accept.
    pub min_accepted_share: f64,
    /// Why the run cannot be trusted, in words.
    pub notes: Vec<String>,
}

impl Trust {
    /// accepted / all deliveries; `None` with no delivery.
    pub fn accepted_share(&self) -> Option<f64> {
        let all = self.accepted + self.not_accepted;
        (all > 0).then(|| self.accepted as f64 / all as f64)
    }
}

/// Assesses a run from its send lag, CPU and the target's uptake.
pub fn assess(
    s: &Scenario,
    lag: &Lag,
    stats: &TransportStats,
    observed: &Observed,
    wall: Duration,
) -> Trust {
    let speed = s.clock.speed();
    let lag_sim_ms = speed.map(|x| Lag {
        p50: lag.p50 * x,
        p99: lag.p99 * x,
        max: lag.max * x,
    });
    let tightest = s.expectations.iter().map(|e| e.within_ms).min();
    let lag_bound_sim_ms = speed
        .and(tightest)
        .map(|ms| ms as f64 * LAG_SHARE_OF_DEADLINE);
    let mut notes = Vec::new();
    let reliable = match (&lag_sim_ms, lag_bound_sim_ms) {
        (Some(lag), Some(bound)) if lag.p99 > bound => {
            notes.push(format!(
                "the harness sent telemetry late: send lag p99 {} simulated ({:.1} ms wall) is over 1 % of the tightest deadline ({}); latencies include the harness's own delay{}",
                medtwin_check::duration::human(lag.p99 as u64),
                lag.p99 / speed.unwrap_or(1.0),
                medtwin_check::duration::human(tightest.unwrap_or(0)),
                if stats.failed + stats.not_sent > 0 {
                    " (the target failed or hung while messages waited behind it: see transport.by_cause)"
                } else if cfg!(debug_assertions) {
                    " (this is a debug build: use `cargo run --release`)"
                } else {
                    " (lower --speed, or use a bigger machine)"
                }
            ));
            false
        }
        _ => true,
    };
    let cpu_s = process_cpu_s();
    Trust {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        lag_sim_ms,
        lag_bound_sim_ms,
        reliable,
        cpu_s,
        cpu_cores_used: cpu_s / wall.as_secs_f64().max(1e-9),
        accepted: observed.accepted,
        not_accepted: observed.not_accepted,
        min_accepted_share: s.min_accepted_pct / 100.0,
        notes,
    }
}

/// Applies the assessment to the judgement: latency expectations cannot
/// pass on an unreliable run; a target that took too little cannot pass.
pub fn verdict(trust: &Trust, stats: &TransportStats, judged: &mut Judged) -> RunVerdict {
    if !trust.reliable {
        for e in judged.expectations.iter_mut().filter(|e| is_latency(e)) {
            e.failures.push(format!(
                "latencies cannot be judged on this run: {}",
                trust.notes.join("; ")
            ));
            e.verdict = Verdict::Fail;
        }
    }
    if trust
        .accepted_share()
        .is_some_and(|share| share < trust.min_accepted_share)
    {
        // By what the target did with what was sent (messages the breaker
        // held back say nothing more).
        return if stats.failed > stats.refused {
            RunVerdict::TargetUnreachable
        } else {
            RunVerdict::TargetRefusedData
        };
    }
    if judged
        .expectations
        .iter()
        .all(|e| e.verdict == Verdict::Pass)
    {
        RunVerdict::Pass
    } else {
        RunVerdict::Fail
    }
}

/// Whether an expectation judges latencies: it owed alerts with deadlines.
fn is_latency(e: &ExpectationResult) -> bool {
    e.metrics.obligations > 0
}

/// CPU time (user + system) of this process so far, s, from
/// `/proc/self/stat` (Linux; 0 elsewhere). Ticks are USER_HZ, 100 on Linux.
pub fn process_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_has_spent_some_cpu() {
        // Burn CPU (at most ~2 s) until the kernel's 10 ms ticks show it.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_s() == 0.0 && started.elapsed().as_secs() < 2 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        assert!(process_cpu_s() > 0.0, "{x}");
    }
}
