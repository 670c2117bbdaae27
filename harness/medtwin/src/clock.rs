//! Maps simulated time to wall time for one run.
//!
//! In `real-time` and `accelerated` mode a run has an *epoch*: the wall
//! instant of simulated time zero. Simulated `t` is due at
//! `epoch + t / speed`, and anything observed at wall time `w` (an alert
//! arriving) happened at simulated `(w - epoch) * speed`.
//!
//! `virtual` mode has no epoch: it runs as fast as possible, so an
//! observation is placed at the *frontier*, the latest simulated time the
//! harness had sent when it arrived. That is a lower bound on what the
//! target had seen, and the report says so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::scenario::Clock;

/// Simulated time against wall time for one run.
#[derive(Debug)]
pub struct SimClock {
    mode: Clock,
    epoch: Instant,
    frontier_ms: AtomicU64,
}

impl SimClock {
    /// A clock whose simulated zero is at `epoch`.
    pub fn new(mode: Clock, epoch: Instant) -> SimClock {
        SimClock {
            mode,
            epoch,
            frontier_ms: AtomicU64::new(0),
        }
    }

    /// The clock mode.
    pub fn mode(&self) -> Clock {
        self.mode
    }

    /// The wall instant of simulated time zero.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// When simulated `sim_ms` is due on the wall clock; `None` in virtual mode.
    pub fn due(&self, sim_ms: u64) -> Option<Instant> {
        let speed = self.mode.speed()?;
        Some(self.epoch + Duration::from_secs_f64(sim_ms as f64 / 1000.0 / speed))
    }

    /// Wall-clock length of a simulated duration; in virtual mode, taken 1:1.
    pub fn wall(&self, sim_ms: u64) -> Duration {
        let speed = self.mode.speed().unwrap_or(1.0);
        Duration::from_secs_f64(sim_ms as f64 / 1000.0 / speed)
    }

    /// The simulated time of something observed at wall instant `at`.
    pub fn sim_at(&self, at: Instant) -> u64 {
        match self.mode.speed() {
            Some(speed) => {
                (at.saturating_duration_since(self.epoch).as_secs_f64() * speed * 1000.0).round()
                    as u64
            }
            None => self.frontier_ms.load(Ordering::Acquire),
        }
    }

    /// Records that everything up to `sim_ms` has been sent.
    pub fn advance_frontier(&self, sim_ms: u64) {
        self.frontier_ms.fetch_max(sim_ms, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerated_time_maps_both_ways() {
        let epoch = Instant::now();
        let clock = SimClock::new(Clock::Accelerated { speed: 600.0 }, epoch);
        assert_eq!(clock.due(60_000), Some(epoch + Duration::from_millis(100)));
        assert_eq!(clock.sim_at(epoch + Duration::from_millis(100)), 60_000);
        assert_eq!(clock.wall(600_000), Duration::from_secs(1));
        // Before the epoch is simulated zero, never negative.
        assert_eq!(
            clock.sim_at(epoch.checked_sub(Duration::from_secs(1)).unwrap_or(epoch)),
            0
        );
    }

    #[test]
    fn virtual_time_uses_the_frontier() {
        let clock = SimClock::new(Clock::Virtual, Instant::now());
        assert_eq!(clock.due(5_000), None);
        clock.advance_frontier(5_000);
        clock.advance_frontier(3_000);
        assert_eq!(clock.sim_at(Instant::now()), 5_000);
    }
}
