//! The target's circuit breaker, shared by every lane: after
//! [`THRESHOLD`] failures in a row (no answer, or a 5xx) it *opens* and no
//! message is sent for a back-off period (they are counted as not sent,
//! `target_down`); then one message goes out as a *probe*: an answer closes
//! the breaker, another failure opens it again for twice as long, up to
//! [`MAX_BACKOFF`]. A dead or hanging target thus costs a run a few
//! timeouts, not one per message.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// Failures in a row that open the breaker.
pub const THRESHOLD: u32 = 5;
/// First back-off after the breaker opens (wall time).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest back-off: the breaker probes at least this often.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Whether a message may go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// The breaker is closed.
    Send,
    /// The breaker was open and this message tests the target.
    Probe,
    /// The breaker is open (or a probe is out): do not send.
    Skip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, backoff: Duration },
    Probing { backoff: Duration },
}

/// The breaker's counters, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerStats {
    /// Times it opened (from closed).
    pub opened: u64,
    /// Probes sent.
    pub probes: u64,
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<(State, BreakerStats)>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            inner: Mutex::new((State::Closed { failures: 0 }, BreakerStats::default())),
        }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, (State, BreakerStats)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a message may go out at `now`.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut inner = self.lock();
        match inner.0 {
            State::Closed { .. } => Admit::Send,
            State::Open { until, backoff } if now >= until => {
                inner.0 = State::Probing { backoff };
                inner.1.probes += 1;
                Admit::Probe
            }
            State::Open { .. } | State::Probing { .. } => Admit::Skip,
        }
    }

    /// Whether a retry may go out now (only while closed: a retry is never
    /// a probe).
    pub fn allows_retry(&self) -> bool {
        matches!(self.lock().0, State::Closed { .. })
    }

    /// Records how a message sent as `admit` ended: `alive` when the target
    /// answered at all (any status but a 5xx), `failed` when it did not
    /// answer or answered 5xx.
    pub fn record(&self, admit: Admit, failed: bool, now: Instant) {
        let mut inner = self.lock();
        let (state, stats) = &mut *inner;
        *state = match (*state, failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Probing { backoff }, true) if admit == Admit::Probe => {
                let backoff = (backoff * 2).min(MAX_BACKOFF);
                State::Open {
                    until: now + backoff,
                    backoff,
                }
            }
            (State::Closed { failures }, true) if failures + 1 >= THRESHOLD => {
                stats.opened += 1;
                State::Open {
                    until: now + FIRST_BACKOFF,
                    backoff: FIRST_BACKOFF,
                }
            }
            (State::Closed { failures }, true) => State::Closed {
                failures: failures + 1,
            },
            // Failures of messages sent before it opened change nothing.
            (other, true) => other,
        };
    }

    /// The counters so far.
    pub fn stats(&self) -> BreakerStats {
        self.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_and_backs_off() {
        let b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(b.admit(t0), Admit::Send);
            b.record(Admit::Send, true, t0);
        }
        assert_eq!(b.admit(t0), Admit::Send);
        b.record(Admit::Send, true, t0);
        assert_eq!(b.admit(t0), Admit::Skip, "open after {THRESHOLD} failures");
        assert!(!b.allows_retry());
        // After the back-off, exactly one probe goes out.
        let t1 = t0 + FIRST_BACKOFF;
        assert_eq!(b.admit(t1), Admit::Probe);
        assert_eq!(b.admit(t1), Admit::Skip);
        // The probe fails: open twice as long.
        b.record(Admit::Probe, true, t1);
        assert_eq!(b.admit(t1 + FIRST_BACKOFF), Admit::Skip);
        let t2 = t1 + FIRST_BACKOFF * 2;
        assert_eq!(b.admit(t2), Admit::Probe);
        // The probe is answered: closed again.
        b.record(Admit::Probe, false, t2);
        assert_eq!(b.admit(t2), Admit::Send);
        assert_eq!(
            b.stats(),
            BreakerStats {
                opened: 1,
                probes: 2
            }
        );
    }

    #[test]
    fn an_answer_resets_the_count_and_the_backoff_is_capped() {
        let b = Breaker::default();
        let t = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            b.record(Admit::Send, true, t);
        }
        b.record(Admit::Send, false, t);
        b.record(Admit::Send, true, t);
        assert_eq!(b.admit(t), Admit::Send, "the count restarted");
        for _ in 0..THRESHOLD {
            b.record(Admit::Send, true, t);
        }
        let mut now = t;
        for _ in 0..10 {
            now += MAX_BACKOFF;
            assert_eq!(b.admit(now), Admit::Probe);
            b.record(Admit::Probe, true, now);
        }
        assert_eq!(
            b.admit(now + MAX_BACKOFF),
            Admit::Probe,
            "never longer than the cap"
        );
    }
}
