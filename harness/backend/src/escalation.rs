//! Escalation state of one patient: when to page, and when to re-arm.
//!
//! An alert fires once per escalation, not once per measurement: a septic
//! patient scoring 7 for an hour is one `news2-high`, not 3600. The level
//! drops back (re-arming its alert) only after the score has stayed below
//! that level's threshold for `reset_after` of *measurement* time, so a
//! score flickering around a threshold does not page again and again, and an
//! accelerated run (×600) behaves exactly like a real-time one.

use serde::{Deserialize, Serialize};

use medtwin_sim::news2::News2;

/// NEWS2 total from which the clinical response is urgent (RCP 2017: 5–6
/// medium).
pub const MEDIUM_TOTAL: u8 = 5;
/// NEWS2 total from which the clinical response is an emergency (RCP 2017:
/// ≥7 high).
pub const HIGH_TOTAL: u8 = 7;

/// Escalation level of a patient, ordered `None < Medium < High`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No alert outstanding.
    #[default]
    None,
    /// `news2-medium` has fired: total ≥ 5 or a red score.
    Medium,
    /// `news2-high` has fired: total ≥ 7.
    High,
}

impl Level {
    /// The level a score calls for on its own.
    pub fn of(news2: &News2) -> Level {
        if news2.total >= HIGH_TOTAL {
            Level::High
        } else if news2.total >= MEDIUM_TOTAL || news2.red {
            Level::Medium
        } else {
            Level::None
        }
    }

    /// The alert kind that announces this level, if any.
    pub fn alert_kind(self) -> Option<&'static str> {
        match self {
            Level::None => None,
            Level::Medium => Some("news2-medium"),
            Level::High => Some("news2-high"),
        }
    }

    fn below(self) -> Level {
        match self {
            Level::None | Level::Medium => Level::None,
            Level::High => Level::Medium,
        }
    }

    fn above(self) -> Option<Level> {
        match self {
            Level::None => Some(Level::Medium),
            Level::Medium => Some(Level::High),
            Level::High => None,
        }
    }
}

/// One patient's escalation state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Escalation {
    level: Level,
    /// Newest measurement time seen, ms since the epoch: the patient's own
    /// clock, so a late message cannot move time backwards.
    clock_ms: u64,
    /// Since when (patient clock) the score has been continuously below the
    /// medium and the high threshold; `None` while at or above it.
    below_medium_since_ms: Option<u64>,
    below_high_since_ms: Option<u64>,
    /// Levels left since the last [`Escalation::take_cleared`] (their
    /// alarms ended), highest first.
    cleared: Vec<Level>,
}

impl Escalation {
    /// Current level.
    pub(crate) fn level(&self) -> Level {
        self.level
    }

    /// The levels left (re-armed) since the last call: each one's alarm has
    /// ended.
    pub(crate) fn take_cleared(&mut self) -> Vec<Level> {
        std::mem::take(&mut self.cleared)
    }

    /// Takes a new score, measured at `measured_ms`, and returns the levels
    /// newly reached, lowest first (each one is an alert to send).
    pub(crate) fn update(
        &mut self,
        news2: &News2,
        measured_ms: u64,
        reset_after_ms: u64,
    ) -> Vec<Level> {
        self.clock_ms = self.clock_ms.max(measured_ms);
        let now_ms = self.clock_ms;
        let called_for = Level::of(news2);
        track(
            &mut self.below_medium_since_ms,
            called_for >= Level::Medium,
            now_ms,
        );
        track(
            &mut self.below_high_since_ms,
            called_for >= Level::High,
            now_ms,
        );

        // De-escalate one level at a time while the current level's
        // threshold has been clear for long enough.
        loop {
            let below_since_ms = match self.level {
                Level::None => break,
                Level::Medium => self.below_medium_since_ms,
                Level::High => self.below_high_since_ms,
            };
            match below_since_ms {
                Some(since_ms) if now_ms - since_ms >= reset_after_ms => {
                    self.cleared.push(self.level);
                    self.level = self.level.below();
                }
                _ => break,
            }
        }

        let mut reached = Vec::new();
        while self.level < called_for {
            match self.level.above() {
                Some(next) => {
                    self.level = next;
                    reached.push(next);
                }
                None => break,
            }
        }
        reached
    }
}

fn track(below_since_ms: &mut Option<u64>, at_or_above: bool, now_ms: u64) {
    if at_or_above {
        *below_since_ms = None;
    } else if below_since_ms.is_none() {
        *below_since_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtwin_sim::news2::{Risk, SubScores};

    fn news(total: u8) -> News2 {
        News2 {
            total,
            sub_scores: SubScores::default(),
            red: false,
            risk: Risk::Low,
            missing: Vec::new(),
        }
    }

    const RESET_MS: u64 = 600_000;

    #[test]
    fn a_jump_fires_both_levels_in_order_and_only_once() {
        let mut e = Escalation::default();
        assert_eq!(e.update(&news(2), 0, RESET_MS), vec![]);
        assert_eq!(
            e.update(&news(8), 1_000, RESET_MS),
            vec![Level::Medium, Level::High]
        );
        assert_eq!(e.update(&news(9), 2_000, RESET_MS), vec![]);
    }

    #[test]
    fn a_sustained_recovery_ends_each_level_highest_first_and_once() {
        let mut e = Escalation::default();
        e.update(&news(8), 0, RESET_MS);
        assert_eq!(e.take_cleared(), vec![], "nothing ended yet");
        e.update(&news(1), 1_000, RESET_MS);
        e.update(&news(1), 1_000 + RESET_MS - 1, RESET_MS);
        assert_eq!(e.take_cleared(), vec![], "not clear for long enough");
        e.update(&news(1), 1_000 + RESET_MS, RESET_MS);
        assert_eq!(e.take_cleared(), vec![Level::High, Level::Medium]);
        assert_eq!(e.take_cleared(), vec![], "taken once");
        assert_eq!(e.level(), Level::None);
    }

    #[test]
    fn a_red_score_alone_is_medium() {
        let mut red = news(3);
        red.red = true;
        let mut e = Escalation::default();
        assert_eq!(e.update(&red, 0, RESET_MS), vec![Level::Medium]);
    }

    #[test]
    fn flicker_does_not_refire_but_a_sustained_drop_rearms() {
        let mut e = Escalation::default();
        assert_eq!(e.update(&news(5), 0, RESET_MS), vec![Level::Medium]);
        assert_eq!(e.update(&news(4), 60_000, RESET_MS), vec![]);
        assert_eq!(e.update(&news(5), 120_000, RESET_MS), vec![], "flicker");
        assert_eq!(e.update(&news(4), 180_000, RESET_MS), vec![]);
        assert_eq!(e.update(&news(4), 180_000 + RESET_MS - 1, RESET_MS), vec![]);
        assert_eq!(e.level(), Level::Medium);
        assert_eq!(e.update(&news(4), 180_000 + RESET_MS, RESET_MS), vec![]);
        assert_eq!(e.level(), Level::None);
        assert_eq!(
            e.update(&news(6), 180_000 + RESET_MS + 1, RESET_MS),
            vec![Level::Medium]
        );
    }

    #[test]
    fn high_drops_to_medium_then_to_none() {
        let mut e = Escalation::default();
        e.update(&news(7), 0, RESET_MS);
        e.update(&news(5), 1, RESET_MS);
        e.update(&news(5), 1 + RESET_MS, RESET_MS);
        assert_eq!(e.level(), Level::Medium);
        assert_eq!(
            e.update(&news(7), 2 + RESET_MS, RESET_MS),
            vec![Level::High]
        );
        e.update(&news(0), 3 + RESET_MS, RESET_MS);
        e.update(&news(0), 3 + 2 * RESET_MS, RESET_MS);
        assert_eq!(e.level(), Level::None);
    }

    #[test]
    fn late_messages_do_not_rewind_the_clock() {
        let mut e = Escalation::default();
        e.update(&news(5), 1_000_000, RESET_MS);
        e.update(&news(0), 1_000_000, RESET_MS);
        // A message measured long before cannot count as time spent below.
        e.update(&news(0), 0, RESET_MS);
        assert_eq!(e.level(), Level::Medium);
    }
}
