//! The checker: holds the target's alerts against what really happened.
//!
//! The truth side ([`observe`]) turns the twin's records into
//! *obligations*, one per alert owed: an episode of a condition (episode
//! expectations) or a time a rule started to hold on the delivered data
//! (rule oracles). This module matches them with the alerts.
//!
//! Per patient, obligations and alerts of the expectation's kind are matched
//! one-to-one in time order: each obligation takes the first unmatched
//! alert at or after its start (`from_ms`: the episode's onset, or the
//! moment the rule became due). A matched alert is a *hit* if it came within
//! the deadline of the obligation's reference time, else *late*; an
//! obligation with no alert is *missed*, or *inconclusive* if its deadline
//! lies beyond the end of the observation window or its reference time is
//! unknown (e.g. the criterion never held after the onset). Unmatched alerts
//! are *duplicates* when they follow an obligation of the patient, and
//! *false* otherwise.
//!
//! By construction: hits + late + missed + inconclusive = obligations, and
//! hits + late + duplicates + false = alerts of the kind.

pub mod duration;
mod expectation;
mod matching;
mod metrics;
pub mod observe;
mod records;
pub mod rules;

pub use expectation::{
    Budgets, DEFAULT_MAX_GAP_MS, DEFAULT_REARM_MS, ExpectKind, Expectation, Reference,
    default_criterion,
};
pub use matching::{
    Decomposition, ExpectationResult, Outcome, OutcomeKind, Verdict, Window, check,
};
pub use metrics::{Metrics, Percentiles, Summary, summarize};
pub use records::{AlertRecord, EpisodeRecord, InterventionRecord, Obligation, ParamValue, Times};
