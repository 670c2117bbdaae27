//! The session's clock: simulated time against wall time, which the
//! instructor can pause, resume and speed up or slow down while the ward
//! runs. The twin thread steps when the next step falls due on it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fastest a session may run (simulated seconds per wall second).
pub const MAX_SPEED: f64 = 3_600.0;

/// Simulated ↔ wall time, piecewise linear: re-anchored on every pause,
/// resume and change of speed, so simulated time never jumps.
#[derive(Debug)]
pub struct Pace {
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug)]
struct State {
    anchor_wall: Instant,
    anchor_sim_ms: f64,
    speed: f64,
    paused: bool,
}

/// The clock as the pages show it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PaceView {
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Whether simulated time stands still.
    pub paused: bool,
}

impl Pace {
    /// A clock at `speed` whose simulated zero is now.
    pub fn new(speed: f64) -> Pace {
        Pace {
            state: Mutex::new(State {
                anchor_wall: Instant::now(),
                anchor_sim_ms: 0.0,
                speed,
                paused: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulated time now, ms.
    pub fn sim_now_ms(&self) -> u64 {
        let s = *self.lock();
        sim_at(&s, Instant::now()) as u64
    }

    /// The wall instant simulated `sim_ms` falls due; `None` while paused.
    pub fn due(&self, sim_ms: u64) -> Option<Instant> {
        let s = *self.lock();
        if s.paused {
            return None;
        }
        let ahead_ms = (sim_ms as f64 - s.anchor_sim_ms).max(0.0) / s.speed;
        Some(s.anchor_wall + Duration::from_secs_f64(ahead_ms / 1000.0))
    }

    /// Stops simulated time (no-op when paused).
    pub fn pause(&self) {
        let mut s = self.lock();
        if !s.paused {
            let now = Instant::now();
            s.anchor_sim_ms = sim_at(&s, now);
            s.anchor_wall = now;
            s.paused = true;
        }
    }

    /// Lets simulated time run again from where it stopped.
    pub fn resume(&self) {
        let mut s = self.lock();
        if s.paused {
            s.anchor_wall = Instant::now();
            s.paused = false;
        }
    }

    /// Changes the speed from now on; refuses a speed outside (0, [`MAX_SPEED`]].
    pub fn set_speed(&self, speed: f64) -> Result<(), String> {
        if !(speed > 0.0 && speed <= MAX_SPEED) {
            return Err(format!("speed {speed} is outside (0, {MAX_SPEED}]"));
        }
        let mut s = self.lock();
        let now = Instant::now();
        s.anchor_sim_ms = sim_at(&s, now);
        s.anchor_wall = now;
        s.speed = speed;
        Ok(())
    }

    /// Holds simulated time back to `sim_ms` when the twin has fallen
    /// behind it (a speed the machine cannot keep), so a slow twin is
    /// not then rushed through a backlog.
    pub fn hold_back(&self, sim_ms: u64) {
        let mut s = self.lock();
        let now = Instant::now();
        if !s.paused && sim_at(&s, now) > sim_ms as f64 + 2_000.0 * s.speed {
            s.anchor_sim_ms = sim_ms as f64;
            s.anchor_wall = now;
        }
    }

    /// The clock as the pages show it.
    pub fn view(&self) -> PaceView {
        let s = *self.lock();
        PaceView {
            speed: s.speed,
            paused: s.paused,
        }
    }
}

fn sim_at(s: &State, at: Instant) -> f64 {
    if s.paused {
        return s.anchor_sim_ms;
    }
    s.anchor_sim_ms + at.saturating_duration_since(s.anchor_wall).as_secs_f64() * 1000.0 * s.speed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_holds_time_and_resume_continues_without_a_jump() {
        let pace = Pace::new(1_000.0);
        std::thread::sleep(Duration::from_millis(20));
        pace.pause();
        let held = pace.sim_now_ms();
        assert!(held >= 20_000, "{held}");
        assert_eq!(pace.due(held + 1), None);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pace.sim_now_ms(), held);
        pace.resume();
        assert!(pace.sim_now_ms() < held + 15_000);
        assert!(pace.set_speed(0.0).is_err());
        assert!(pace.set_speed(MAX_SPEED * 2.0).is_err());
        pace.set_speed(1.0).unwrap();
        assert_eq!(pace.view().speed, 1.0);
    }
}
