//! Errors the twin reports for a configuration it cannot run.

use thiserror::Error;

/// A configuration the twin refuses. The harness validates scenario files
/// before they get here, so these name config fields, not file positions.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// The step must be positive.
    #[error("step must be at least 1 ms")]
    ZeroStep,
    /// Two cohorts share a name, so patient names would collide.
    #[error("cohort name `{name}` is used twice")]
    DuplicateCohort {
        /// The repeated name.
        name: String,
    },
    /// An event or intervention names a cohort index that does not exist.
    #[error("{what} {index} refers to cohort {cohort}, but there are only {n_cohorts}")]
    UnknownCohort {
        /// `event` or `intervention`.
        what: &'static str,
        /// Its index.
        index: usize,
        /// The cohort index it named.
        cohort: usize,
        /// How many cohorts exist.
        n_cohorts: usize,
    },
    /// An event's or intervention's patient range falls outside its cohort.
    #[error("{what} {index} selects patients {first}..{end}, but the cohort has {count}")]
    PatientOutOfRange {
        /// `event` or `intervention`.
        what: &'static str,
        /// Its index.
        index: usize,
        /// First patient selected.
        first: u32,
        /// One past the last patient selected.
        end: u32,
        /// Patients in the cohort.
        count: u32,
    },
    /// A profile's spread is not a valid distribution.
    #[error("profile `{profile}`: `{field}` is not a valid spread (need min ≤ mean ≤ max, sd ≥ 0)")]
    BadProfile {
        /// The profile.
        profile: String,
        /// The field.
        field: &'static str,
    },
    /// A number is outside the range the model accepts.
    #[error("{field} = {value} is out of range ({expected})")]
    OutOfRange {
        /// The field, e.g. `cohort[0].network.loss_pct`.
        field: String,
        /// The rejected value.
        value: f64,
        /// What would be accepted.
        expected: &'static str,
    },
}
