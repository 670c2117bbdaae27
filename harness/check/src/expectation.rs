//! Expectations: what must hold for a run to pass. Episode expectations
//! (each condition episode owes an alert), state expectations (each
//! abnormal state of a criterion in the true physiology owes an alert,
//! whatever caused it) and rule oracles (whenever a rule holds on the
//! delivered data, an alert is owed), with budgets. Scenario
//! files are resolved into these by the harness.

use medtwin_sim::{ConditionKind, Criterion};

use crate::rules::Rule;

/// Default `max_gap`: a vital older than this is unknown and a hold does not
/// bridge a gap this long. Design choice: longer than the 15-minute default
/// interval of a ward BP cuff, so a NEWS2 rule sees every parameter.
pub const DEFAULT_MAX_GAP_MS: u64 = 20 * 60_000;
/// Default `rearm`: a rule must stop holding this long before it owes a new
/// alert. Design choice: the reference backend's `reset_after` default.
pub const DEFAULT_REARM_MS: u64 = 10 * 60_000;

/// Where an episode's clock starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The condition's onset.
    Onset,
    /// The first moment the clinical criterion held in the true physiology.
    Criterion,
    /// The first measurement at or after onset on which the abnormal rule held.
    FirstAbnormalMeasurement,
    /// The first delivery at or after onset on which the abnormal rule held.
    FirstAbnormalDelivery,
}

impl Reference {
    /// The name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Reference::Onset => "onset",
            Reference::Criterion => "criterion",
            Reference::FirstAbnormalMeasurement => "first_abnormal_measurement",
            Reference::FirstAbnormalDelivery => "first_abnormal_delivery",
        }
    }
}

/// What creates the obligations.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectKind {
    /// Each episode of `condition` owes an alert within the deadline of its
    /// reference time.
    Episode {
        /// The condition.
        condition: ConditionKind,
        /// The reference time.
        from: Reference,
        /// The criterion named for `from = "criterion"` (default:
        /// [`default_criterion`]).
        criterion: String,
    },
    /// Each abnormal state of `criterion` in the true physiology (the truth
    /// log's state onsets and ends, episode or not) owes an alert within
    /// the deadline of the state's onset.
    State {
        /// The criterion.
        criterion: Criterion,
    },
    /// Each time the rule starts to hold on the delivered data (after
    /// having stopped for `rearm`), an alert is owed.
    Rule,
}

/// Limits beyond "nothing missed or late".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budgets {
    /// False alerts tolerated (a count).
    pub max_false_alerts: Option<u64>,
    /// False alerts per patient-day tolerated.
    pub max_false_alerts_per_patient_day: Option<f64>,
    /// Duplicates tolerated (unlimited when `None`).
    pub max_duplicates: Option<u64>,
    /// Latency percentile limits, ms.
    pub max_latency_p50_ms: Option<u64>,
    /// 95th percentile limit.
    pub max_latency_p95_ms: Option<u64>,
    /// 99th percentile limit.
    pub max_latency_p99_ms: Option<u64>,
    /// Largest latency allowed.
    pub max_latency_ms: Option<u64>,
}

impl Budgets {
    /// The false-alert count tolerated: the one set, else none at all when
    /// only a per-patient-day rate is set (setting any false-alert budget
    /// replaces the default), else the default of 0.
    pub fn false_alert_limit(&self) -> Option<u64> {
        match (self.max_false_alerts, self.max_false_alerts_per_patient_day) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(0),
        }
    }
}

/// One `[[expect]]`, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// Unique name, used in reports.
    pub name: String,
    /// Episode or rule oracle.
    pub kind: ExpectKind,
    /// The alert kind that must follow.
    pub alert: String,
    /// Deadline from the reference time, simulated ms.
    pub within_ms: u64,
    /// For a rule oracle, the rule; for an episode, what "abnormal" means
    /// (`abnormal`, else the alert kind's NEWS2 trigger, else `None`).
    pub rule: Option<Rule>,
    /// Staleness limit and longest gap a hold bridges, ms.
    pub max_gap_ms: u64,
    /// Rule oracles: time a rule must stop holding before it owes again.
    /// Both kinds: how long after its cause stopped holding a repeat alert
    /// still counts as a duplicate (later, it is a false alert).
    pub rearm_ms: u64,
    /// Rule oracles: how long before the rule became due an alert may come
    /// and still answer it (a backend that smooths or predicts differently).
    pub early_ms: u64,
    /// Budgets.
    pub budgets: Budgets,
}

impl Expectation {
    /// The condition, for an episode expectation.
    pub fn condition(&self) -> Option<ConditionKind> {
        match &self.kind {
            ExpectKind::Episode { condition, .. } => Some(*condition),
            ExpectKind::State { .. } | ExpectKind::Rule => None,
        }
    }
}

/// The criterion `from = "criterion"` means when none is named: the alert
/// kind's NEWS2 trigger for `news2-*` alerts, else the condition's own
/// (Sepsis-3 qSOFA, ADA level 1, PRODIGY, ...), else NEWS2 ≥ 5.
pub fn default_criterion(alert: &str, condition: ConditionKind) -> &'static str {
    let criterion = match (alert, condition) {
        ("news2-medium", _) => Criterion::News2Medium,
        ("news2-high", _) => Criterion::News2High,
        (_, ConditionKind::Sepsis) => Criterion::Qsofa,
        (_, ConditionKind::Hypoglycaemia) => Criterion::HypoglycaemiaLevel1,
        (_, ConditionKind::Hyperglycaemia) => Criterion::Hyperglycaemia,
        (_, ConditionKind::OpioidRespiratoryDepression) => Criterion::RespiratoryDepression,
        (_, ConditionKind::HypertensiveCrisis) => Criterion::HypertensiveCrisis,
        (_, ConditionKind::CardiacArrest) => Criterion::Pulseless,
        _ => Criterion::News2Medium,
    };
    criterion.name()
}
