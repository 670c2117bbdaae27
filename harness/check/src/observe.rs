//! The truth side of the checker: reads the twin's records step by step
//! (on the twin's thread) and turns them into obligations, reference times
//! and a bounded, downsampled vitals series for the report's timelines.
//!
//! Two streams are evaluated per rule and patient, with [`crate::rules`]:
//! the *measurement* stream (every measurement taken, in measurement
//! order: what the devices saw) and the *delivery* stream (every delivery,
//! in delivery order: what the target received). Rule oracles use the
//! delivery stream only, so a target is never blamed for data the network
//! lost. Episode expectations use both for their reference times and the
//! latency decomposition.
//!
//! Criterion onsets (the first moment a clinical criterion held in the
//! true physiology, since the start or the patient's latest episode onset)
//! come from the twin's `StepOutput::criteria`; an episode's criterion time
//! is the first onset of its criterion at or after the episode's onset.

use std::collections::{BTreeMap, HashMap};

use medtwin_sim::{
    Change, Criterion, CriterionOnset, Delivery, EndReason, EpisodeEnd, EpisodeOnset,
    InterventionGiven, Loss, Measurement, ParamKind, StateChange, StepOutput,
};

use crate::records::{EpisodeRecord, InterventionRecord, Obligation, ParamValue, Times};
use crate::rules::{Rule, RuleState};
use crate::{ExpectKind, Expectation, Reference};

/// Criterion onsets kept per (patient, criterion): the twin re-arms a
/// criterion only at an episode onset, so a few suffice.
const MAX_CRITERION_ONSETS: usize = 64;
/// Interventions listed in the report; more are counted, not listed.
pub const MAX_INTERVENTION_RECORDS: usize = 10_000;
/// Obligations kept per expectation; more are counted, not kept.
pub const MAX_OBLIGATIONS: usize = 1_000_000;
/// Patients whose vitals series is kept for timelines (the first ones by
/// index, and every patient with an episode, up to this many in all).
pub const MAX_SERIES_PATIENTS: usize = 256;
/// Points per series.
pub const SERIES_POINTS: usize = 300;

/// A patient's vitals, downsampled: per bucket, the last value measured of
/// each vital (`None`: none), and how many measurements of the patient were
/// delivered and lost in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Bucket width, ms; bucket `i` starts at `i * bucket_ms`.
    pub bucket_ms: u64,
    /// Vital code → values per bucket, to 0.1 (`hr`, `spo2`, `rr`, `sbp`,
    /// `dbp`, `map`, `temp`).
    pub vitals: BTreeMap<String, Vec<Option<f64>>>,
    /// Deliveries per bucket.
    pub delivered: Vec<u32>,
    /// Losses per bucket.
    pub lost: Vec<u32>,
}

/// Rule states for both streams, per patient (the measurement stream only
/// when an episode expectation uses the rule: empty otherwise).
struct Evaluator {
    rule: Rule,
    max_gap_ms: u64,
    measured: Vec<RuleState>,
    delivered: Vec<RuleState>,
    /// Current truth on the delivery stream.
    holding: Vec<bool>,
}

/// A rule oracle's running state.
struct Oracle {
    evaluator: usize,
    rearm_ms: u64,
    /// Delivery time the rule last held, per patient.
    last_true: Vec<Option<u64>>,
    /// Whether it held at the patient's previous delivery.
    was_holding: Vec<bool>,
    /// The onsets, in delivery order.
    onsets: Vec<RuleOnset>,
    /// Per patient, its latest onset (an index into `onsets`).
    latest: Vec<Option<usize>>,
    overflow: u64,
}

/// One time a rule began to hold on the delivered data.
struct RuleOnset {
    patient_idx: u32,
    /// Delivery time of the sample that completed it: the obligation's due time.
    due_ms: u64,
    /// When the harness sent that sample.
    sent_ms: u64,
    /// Measurement time of that sample.
    measured_ms: u64,
    /// The last delivery on which it still held (before the next onset).
    until_ms: u64,
}

/// An abnormal state of a criterion a state expectation names.
struct State {
    patient_idx: u32,
    criterion: Criterion,
    onset_ms: u64,
    end_ms: Option<u64>,
}

/// An episode with its first abnormal measurement and delivery per evaluator.
struct Episode {
    patient_idx: u32,
    record: EpisodeRecord,
    /// Per evaluator: (measured ms, device, seq) of the first abnormal measurement.
    first_measured: Vec<Option<(u64, u32, u64)>>,
    /// Per evaluator: its delivery time, once delivered.
    first_measured_delivered: Vec<Option<u64>>,
    /// Per evaluator: the first abnormal delivery time.
    first_delivered: Vec<Option<u64>>,
    /// Per evaluator: when the harness sent that delivery.
    first_sent: Vec<Option<u64>>,
}

/// Reads the twin's records; see the module docs.
pub struct Observer {
    expectations: Vec<Expectation>,
    /// Per expectation: the evaluator it uses, if any.
    evaluator_of: Vec<Option<usize>>,
    evaluators: Vec<Evaluator>,
    oracles: Vec<Option<Oracle>>,
    episodes: Vec<Episode>,
    /// Open episodes per patient (indices into `episodes`).
    episodes_of: HashMap<u32, Vec<usize>>,
    /// (device, seq) of a first abnormal measurement → (episode, evaluator).
    awaiting_delivery: HashMap<(u32, u64), Vec<(usize, usize)>>,
    device_patient: Vec<u32>,
    criteria: HashMap<(u32, &'static str), Vec<u64>>,
    /// Criteria some state expectation names: only their states are kept.
    watched: Vec<Criterion>,
    /// Their states, in onset order (at most [`MAX_OBLIGATIONS`]).
    states: Vec<State>,
    /// Open states by (patient, criterion): an index into `states`.
    open_states: HashMap<(u32, Criterion), usize>,
    /// States past [`MAX_OBLIGATIONS`], per criterion.
    states_dropped: HashMap<Criterion, u64>,
    interventions: Vec<InterventionRecord>,
    interventions_dropped: u64,
    series: HashMap<u32, Series>,
    bucket_ms: u64,
    n_patients: usize,
}

/// Everything the truth side found, for the checker and the report.
#[derive(Default)]
pub struct Truth {
    /// Condition episodes, in onset order.
    pub episodes: Vec<EpisodeRecord>,
    /// Interventions given, in time order (at most
    /// [`MAX_INTERVENTION_RECORDS`]).
    pub interventions: Vec<InterventionRecord>,
    /// Interventions past that limit, counted.
    pub interventions_dropped: u64,
    /// Per expectation, its obligations.
    pub obligations: Vec<Vec<Obligation>>,
    /// Obligations not kept past [`MAX_OBLIGATIONS`], per expectation.
    pub obligations_overflow: Vec<u64>,
    /// Vitals series of the retained patients, by patient index.
    pub series: HashMap<u32, Series>,
}

const VITAL_CODES: [&str; 7] = ["hr", "spo2", "rr", "sbp", "dbp", "map", "temp"];

impl Observer {
    /// An observer for `expectations` over `n_patients` patients.
    pub fn new(
        expectations: &[Expectation],
        n_patients: usize,
        duration_ms: u64,
        step_ms: u64,
    ) -> Observer {
        let mut evaluators: Vec<Evaluator> = Vec::new();
        let mut evaluator_of = Vec::new();
        for e in expectations {
            let Some(rule) = &e.rule else {
                evaluator_of.push(None);
                continue;
            };
            let same = evaluators
                .iter()
                .position(|v| v.rule.source == rule.source && v.max_gap_ms == e.max_gap_ms);
            let idx = same.unwrap_or_else(|| {
                evaluators.push(Evaluator {
                    rule: rule.clone(),
                    max_gap_ms: e.max_gap_ms,
                    measured: Vec::new(),
                    delivered: vec![rule.state(e.max_gap_ms); n_patients],
                    holding: vec![false; n_patients],
                });
                evaluators.len() - 1
            });
            // Only episode expectations look at the measurement stream.
            if matches!(e.kind, ExpectKind::Episode { .. }) && evaluators[idx].measured.is_empty() {
                evaluators[idx].measured = vec![rule.state(e.max_gap_ms); n_patients];
            }
            evaluator_of.push(Some(idx));
        }
        let oracles = expectations
            .iter()
            .zip(&evaluator_of)
            .map(|(e, ev)| match (&e.kind, ev) {
                (ExpectKind::Rule, Some(evaluator)) => Some(Oracle {
                    evaluator: *evaluator,
                    rearm_ms: e.rearm_ms,
                    last_true: vec![None; n_patients],
                    was_holding: vec![false; n_patients],
                    onsets: Vec::new(),
                    latest: vec![None; n_patients],
                    overflow: 0,
                }),
                _ => None,
            })
            .collect();
        let bucket_ms = (duration_ms.div_ceil(SERIES_POINTS as u64))
            .max(step_ms)
            .max(1);
        let mut series = HashMap::new();
        for p in 0..n_patients.min(MAX_SERIES_PATIENTS / 2) {
            series.insert(p as u32, Series::new(bucket_ms, duration_ms));
        }
        Observer {
            expectations: expectations.to_vec(),
            evaluator_of,
            evaluators,
            oracles,
            episodes: Vec::new(),
            episodes_of: HashMap::new(),
            awaiting_delivery: HashMap::new(),
            device_patient: Vec::new(),
            criteria: HashMap::new(),
            watched: expectations
                .iter()
                .filter_map(|e| match e.kind {
                    ExpectKind::State { criterion } => Some(criterion),
                    _ => None,
                })
                .collect(),
            states: Vec::new(),
            open_states: HashMap::new(),
            states_dropped: HashMap::new(),
            interventions: Vec::new(),
            interventions_dropped: 0,
            series,
            bucket_ms,
            n_patients,
        }
    }

    /// Records that `criterion` held for a patient at `at_ms` in the true
    /// physiology (for the first time since the start or its latest
    /// episode onset).
    fn criterion(&mut self, patient_idx: u32, criterion: &'static str, at_ms: u64) {
        let times = self.criteria.entry((patient_idx, criterion)).or_default();
        if times.len() < MAX_CRITERION_ONSETS {
            times.push(at_ms);
        }
    }

    /// Reads one step's records, every delivery taken by the target the
    /// moment it was delivered (a perfect target and harness).
    pub fn step(&mut self, out: &StepOutput, patients: &[String]) {
        let taken: Vec<Option<u64>> = out
            .deliveries
            .iter()
            .map(|d| Some(d.delivered_ms))
            .collect();
        self.step_taken(out, &taken, patients);
    }

    /// Reads one step's records with how the target took each delivery:
    /// `taken[i]` is `Some(sent_ms)` (the simulated time the harness
    /// actually sent delivery `i`) when the target accepted it, `None` when
    /// it refused it or never answered. The delivery stream (rule oracles,
    /// first abnormal delivery) holds only what the target accepted.
    pub fn step_taken(&mut self, out: &StepOutput, taken: &[Option<u64>], patients: &[String]) {
        self.onsets(&out.onsets, patients);
        self.criteria(&out.criteria);
        self.states(&out.states);
        self.ends(&out.ends);
        self.interventions(&out.interventions, patients);
        self.measurements(&out.measurements);
        self.deliveries(&out.deliveries, taken);
        self.losses(&out.losses);
    }

    fn onsets(&mut self, onsets: &[EpisodeOnset], patients: &[String]) {
        for o in onsets {
            let idx = self.episodes.len();
            self.episodes.push(Episode {
                patient_idx: o.patient_idx,
                record: EpisodeRecord {
                    patient: patients
                        .get(o.patient_idx as usize)
                        .cloned()
                        .unwrap_or_default(),
                    condition: o.condition.name().to_owned(),
                    onset_ms: o.onset_ms,
                    severity: o.severity,
                    end_ms: None,
                    end_reason: None,
                    criteria: BTreeMap::new(),
                },
                first_measured: vec![None; self.evaluators.len()],
                first_measured_delivered: vec![None; self.evaluators.len()],
                first_delivered: vec![None; self.evaluators.len()],
                first_sent: vec![None; self.evaluators.len()],
            });
            self.episodes_of.entry(o.patient_idx).or_default().push(idx);
            if self.series.len() < MAX_SERIES_PATIENTS {
                let (b, d) = (self.bucket_ms, self.bucket_ms * SERIES_POINTS as u64);
                self.series
                    .entry(o.patient_idx)
                    .or_insert_with(|| Series::new(b, d));
            }
        }
    }

    fn criteria(&mut self, criteria: &[CriterionOnset]) {
        for c in criteria {
            self.criterion(c.patient_idx, c.criterion.name(), c.at_ms);
            // The twin re-arms the criteria at each onset, so this is the
            // first moment after the patient's latest episode onset.
            if let Some(&k) = self
                .episodes_of
                .get(&c.patient_idx)
                .and_then(|list| list.last())
            {
                self.episodes[k]
                    .record
                    .criteria
                    .entry(c.criterion.name().to_owned())
                    .or_insert(c.at_ms);
            }
        }
    }

    /// Keeps the onsets and ends of the states a state expectation names
    /// (an expectation matches only what it names).
    fn states(&mut self, changes: &[StateChange]) {
        for c in changes {
            if !self.watched.contains(&c.criterion) {
                continue;
            }
            let key = (c.patient_idx, c.criterion);
            match c.change {
                Change::Onset if self.states.len() < MAX_OBLIGATIONS => {
                    self.open_states.insert(key, self.states.len());
                    self.states.push(State {
                        patient_idx: c.patient_idx,
                        criterion: c.criterion,
                        onset_ms: c.at_ms,
                        end_ms: None,
                    });
                }
                Change::Onset => *self.states_dropped.entry(c.criterion).or_default() += 1,
                Change::End => {
                    if let Some(k) = self.open_states.remove(&key) {
                        self.states[k].end_ms = Some(c.at_ms);
                    }
                }
            }
        }
    }

    fn ends(&mut self, ends: &[EpisodeEnd]) {
        for e in ends {
            let ended = self.episodes_of.get(&e.patient_idx).and_then(|list| {
                list.iter().copied().find(|&k| {
                    let r = &self.episodes[k].record;
                    r.condition == e.condition.name() && r.onset_ms == e.onset_ms
                })
            });
            if let Some(k) = ended {
                let r = &mut self.episodes[k].record;
                r.end_ms = Some(e.end_ms);
                r.end_reason = Some(
                    match e.reason {
                        EndReason::Duration => "duration",
                        EndReason::Treated => "treated",
                        EndReason::Recovered => "recovered",
                    }
                    .to_owned(),
                );
            }
        }
    }

    fn interventions(&mut self, given: &[InterventionGiven], patients: &[String]) {
        for g in given {
            if self.interventions.len() >= MAX_INTERVENTION_RECORDS {
                self.interventions_dropped += 1;
                continue;
            }
            let specs = g.kind.params();
            let params = specs
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let v = g.params.get(i);
                    let value = match spec.kind {
                        ParamKind::Choice { options, .. } => ParamValue::Choice(
                            options.get(v as usize).copied().unwrap_or("?").to_owned(),
                        ),
                        ParamKind::Number { .. } => ParamValue::Number(v),
                    };
                    (spec.name.to_owned(), value)
                })
                .collect();
            self.interventions.push(InterventionRecord {
                patient: patients
                    .get(g.patient_idx as usize)
                    .cloned()
                    .unwrap_or_default(),
                kind: g.kind.name().to_owned(),
                at_ms: g.at_ms,
                params,
                rosc: g.rosc,
            });
        }
    }

    fn measurements(&mut self, measurements: &[Measurement]) {
        for m in measurements {
            let p = m.patient_idx as usize;
            if p >= self.n_patients {
                continue;
            }
            let d = m.device_idx as usize;
            if self.device_patient.len() <= d {
                self.device_patient.resize(d + 1, u32::MAX);
            }
            self.device_patient[d] = m.patient_idx;
            if let Some(s) = self.series.get_mut(&m.patient_idx) {
                let b = (m.measured_ms / self.bucket_ms) as usize;
                for r in m.readings.as_slice() {
                    if let Some(v) = s.vitals.get_mut(r.vital.code())
                        && let Some(slot) = v.get_mut(b)
                    {
                        *slot = Some((r.value * 10.0).round() / 10.0);
                    }
                }
            }
            for (k, ev) in self.evaluators.iter_mut().enumerate() {
                if ev.measured.is_empty() {
                    continue;
                }
                let abnormal =
                    ev.measured[p].observe(&ev.rule, m.readings.as_slice(), m.measured_ms);
                if !abnormal {
                    continue;
                }
                for &e in self.episodes_of.get(&m.patient_idx).into_iter().flatten() {
                    let ep = &mut self.episodes[e];
                    if ep.first_measured[k].is_none() && ep.record.onset_ms <= m.measured_ms {
                        ep.first_measured[k] = Some((m.measured_ms, m.device_idx, m.seq));
                        self.awaiting_delivery
                            .entry((m.device_idx, m.seq))
                            .or_default()
                            .push((e, k));
                    }
                }
            }
        }
    }

    fn deliveries(&mut self, deliveries: &[Delivery], taken: &[Option<u64>]) {
        for (d, taken) in deliveries.iter().zip(taken) {
            let m = &d.measurement;
            let p = m.patient_idx as usize;
            if p >= self.n_patients {
                continue;
            }
            let Some(sent_ms) = *taken else {
                // Refused or unanswered: the target never had it.
                self.awaiting_delivery.remove(&(m.device_idx, m.seq));
                continue;
            };
            if let Some(s) = self.series.get_mut(&m.patient_idx)
                && let Some(n) = s
                    .delivered
                    .get_mut((d.delivered_ms / self.bucket_ms) as usize)
            {
                *n += 1;
            }
            if let Some(waiting) = self.awaiting_delivery.remove(&(m.device_idx, m.seq)) {
                for (e, k) in waiting {
                    self.episodes[e].first_measured_delivered[k] = Some(d.delivered_ms);
                }
            }
            for (k, ev) in self.evaluators.iter_mut().enumerate() {
                let now = ev.delivered[p].observe(&ev.rule, m.readings.as_slice(), m.measured_ms);
                ev.holding[p] = now;
                if !now {
                    continue;
                }
                for &e in self.episodes_of.get(&m.patient_idx).into_iter().flatten() {
                    let ep = &mut self.episodes[e];
                    if ep.first_delivered[k].is_none() && ep.record.onset_ms <= d.delivered_ms {
                        ep.first_delivered[k] = Some(d.delivered_ms);
                        ep.first_sent[k] = Some(sent_ms);
                    }
                }
            }
            for oracle in self.oracles.iter_mut().flatten() {
                let holding = self.evaluators[oracle.evaluator].holding[p];
                let was = std::mem::replace(&mut oracle.was_holding[p], holding);
                if !holding {
                    continue;
                }
                // A new onset when the rule was not holding at the previous
                // delivery and has been off for at least `rearm`.
                let rearmed = !was
                    && oracle.last_true[p]
                        .is_none_or(|last| d.delivered_ms.saturating_sub(last) >= oracle.rearm_ms);
                if rearmed {
                    if oracle.onsets.len() < MAX_OBLIGATIONS {
                        oracle.latest[p] = Some(oracle.onsets.len());
                        oracle.onsets.push(RuleOnset {
                            patient_idx: m.patient_idx,
                            due_ms: d.delivered_ms,
                            sent_ms,
                            measured_ms: m.measured_ms,
                            until_ms: d.delivered_ms,
                        });
                    } else {
                        oracle.latest[p] = None;
                        oracle.overflow += 1;
                    }
                }
                oracle.last_true[p] = Some(d.delivered_ms);
                if let Some(i) = oracle.latest[p] {
                    oracle.onsets[i].until_ms = d.delivered_ms;
                }
            }
        }
    }

    fn losses(&mut self, losses: &[Loss]) {
        for l in losses {
            let Some(&p) = self.device_patient.get(l.device_idx as usize) else {
                continue;
            };
            if let Some(s) = self.series.get_mut(&p)
                && let Some(n) = s.lost.get_mut((l.lost_ms / self.bucket_ms) as usize)
            {
                *n += 1;
            }
            // A lost first abnormal measurement never arrives.
            self.awaiting_delivery.remove(&(l.device_idx, l.seq));
        }
    }

    /// The obligations of every expectation, the episodes and the series.
    pub fn finish(mut self, patients: &[String]) -> Truth {
        let mut obligations = Vec::with_capacity(self.expectations.len());
        let mut overflow = Vec::with_capacity(self.expectations.len());
        for i in 0..self.expectations.len() {
            let (list, dropped) = match &self.expectations[i].kind {
                ExpectKind::Rule => match self.oracles[i].take() {
                    Some(oracle) => (
                        self.rule_obligations(&oracle, self.expectations[i].early_ms, patients),
                        oracle.overflow,
                    ),
                    None => (Vec::new(), 0),
                },
                ExpectKind::Episode { .. } => (self.episode_obligations(i), 0),
                ExpectKind::State { criterion } => (
                    self.state_obligations(*criterion, patients),
                    self.states_dropped.get(criterion).copied().unwrap_or(0),
                ),
            };
            obligations.push(list);
            overflow.push(dropped);
        }
        let mut episodes: Vec<EpisodeRecord> =
            self.episodes.into_iter().map(|e| e.record).collect();
        episodes.sort_by(|a, b| (a.onset_ms, &a.patient).cmp(&(b.onset_ms, &b.patient)));
        Truth {
            episodes,
            interventions: self.interventions,
            interventions_dropped: self.interventions_dropped,
            obligations,
            obligations_overflow: overflow,
            series: self.series,
        }
    }

    /// A rule oracle's obligations: one per onset on the delivery stream.
    fn rule_obligations(
        &self,
        oracle: &Oracle,
        early_ms: u64,
        patients: &[String],
    ) -> Vec<Obligation> {
        let name = |p: u32| patients.get(p as usize).cloned().unwrap_or_default();
        oracle
            .onsets
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let (p, due, measured) = (o.patient_idx, o.due_ms, o.measured_ms);
                // The patient's latest onset still holding at the last
                // delivery: it held to the end of the run.
                let still_holding =
                    oracle.latest[p as usize] == Some(i) && oracle.was_holding[p as usize];
                let onset = self
                    .episodes_of
                    .get(&p)
                    .into_iter()
                    .flatten()
                    .map(|&k| self.episodes[k].record.onset_ms)
                    .filter(|&t| t <= due)
                    .max();
                Obligation {
                    patient: name(p),
                    from_ms: due.saturating_sub(early_ms),
                    reference_ms: Some(due),
                    unresolved: None,
                    holds_until_ms: (!still_holding).then_some(o.until_ms),
                    times: Times {
                        onset_ms: onset,
                        criterion_ms: None,
                        measured_ms: Some(measured),
                        measured_delivered_ms: Some(due),
                        delivered_ms: Some(due),
                        sent_ms: Some(o.sent_ms),
                    },
                }
            })
            .collect()
    }

    /// A state expectation's obligations: one per abnormal state of its
    /// criterion, due from the state's onset, held until its end.
    fn state_obligations(&self, criterion: Criterion, patients: &[String]) -> Vec<Obligation> {
        self.states
            .iter()
            .filter(|s| s.criterion == criterion)
            .map(|s| Obligation {
                patient: patients
                    .get(s.patient_idx as usize)
                    .cloned()
                    .unwrap_or_default(),
                from_ms: s.onset_ms,
                reference_ms: Some(s.onset_ms),
                unresolved: None,
                holds_until_ms: s.end_ms,
                times: Times {
                    onset_ms: Some(s.onset_ms),
                    criterion_ms: Some(s.onset_ms),
                    ..Times::default()
                },
            })
            .collect()
    }

    /// An episode expectation's obligations: one per episode of its
    /// condition, with its reference time.
    fn episode_obligations(&self, i: usize) -> Vec<Obligation> {
        let ExpectKind::Episode {
            condition,
            from,
            criterion,
        } = &self.expectations[i].kind
        else {
            return Vec::new();
        };
        let ev = self.evaluator_of[i];
        self.episodes
            .iter()
            .filter(|ep| ep.record.condition == condition.name())
            .map(|ep| {
                let criterion_ms = self
                    .criteria
                    .iter()
                    .filter(|((p, name), _)| *p == ep.patient_idx && *name == criterion.as_str())
                    .flat_map(|(_, times)| times)
                    .copied()
                    .filter(|&t| t >= ep.record.onset_ms)
                    .min();
                let measured = ev.and_then(|k| ep.first_measured[k]);
                let times = Times {
                    onset_ms: Some(ep.record.onset_ms),
                    criterion_ms,
                    measured_ms: measured.map(|m| m.0),
                    measured_delivered_ms: ev.and_then(|k| ep.first_measured_delivered[k]),
                    delivered_ms: ev.and_then(|k| ep.first_delivered[k]),
                    sent_ms: ev.and_then(|k| ep.first_sent[k]),
                };
                let (reference_ms, unresolved) =
                    self.reference(*from, criterion, &times, ev.is_some());
                Obligation {
                    patient: ep.record.patient.clone(),
                    from_ms: ep.record.onset_ms,
                    reference_ms,
                    unresolved,
                    holds_until_ms: ep.record.end_ms,
                    times,
                }
            })
            .collect()
    }

    fn reference(
        &self,
        from: Reference,
        criterion: &str,
        times: &Times,
        has_rule: bool,
    ) -> (Option<u64>, Option<String>) {
        let why = |text: String| (None, Some(text));
        match from {
            Reference::Onset => (times.onset_ms, None),
            Reference::Criterion => match times.criterion_ms {
                Some(t) => (Some(t), None),
                None => why(format!(
                    "criterion `{criterion}` never held in the true physiology after onset"
                )),
            },
            _ if !has_rule => why("no rule says what is abnormal".into()),
            Reference::FirstAbnormalMeasurement => match times.measured_ms {
                Some(t) => (Some(t), None),
                None => why("no measurement after onset was abnormal".into()),
            },
            Reference::FirstAbnormalDelivery => match times.delivered_ms {
                Some(t) => (Some(t), None),
                None => why("no abnormal data reached the target after onset".into()),
            },
        }
    }
}

impl Series {
    fn new(bucket_ms: u64, duration_ms: u64) -> Series {
        let n = (duration_ms.div_ceil(bucket_ms) as usize).clamp(1, SERIES_POINTS + 1);
        Series {
            bucket_ms,
            vitals: VITAL_CODES
                .iter()
                .map(|c| ((*c).to_owned(), vec![None; n]))
                .collect(),
            delivered: vec![0; n],
            lost: vec![0; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Budgets;
    use medtwin_sim::{
        ConditionKind, Criterion, CriterionOnset, Delivery, DeviceKind, EpisodeOnset, Measurement,
        Reading, Readings, Vital,
    };

    fn expect(kind: ExpectKind, rule: &str) -> Expectation {
        Expectation {
            name: "x".into(),
            kind,
            alert: "a".into(),
            within_ms: 60_000,
            rule: Some(Rule::parse(rule).unwrap()),
            max_gap_ms: 120_000,
            rearm_ms: 60_000,
            early_ms: 0,
            budgets: Budgets::default(),
        }
    }

    fn measurement(seq: u64, t: u64, spo2: f64) -> Measurement {
        Measurement {
            device_idx: 0,
            patient_idx: 0,
            kind: DeviceKind::PulseOximeter,
            seq,
            measured_ms: t,
            device_time: medtwin_sim::DeviceTime::Synced(t as i64),
            readings: Readings::new(&[Reading {
                vital: Vital::Spo2,
                value: spo2,
            }]),
            quality: medtwin_sim::Quality::Good,
            alarm: None,
            event: None,
        }
    }

    #[test]
    fn episode_reference_times_follow_measurements_and_deliveries() {
        let episode = ExpectKind::Episode {
            condition: ConditionKind::Sepsis,
            from: Reference::FirstAbnormalDelivery,
            criterion: "sepsis".into(),
        };
        let mut o = Observer::new(&[expect(episode, "spo2 < 90")], 1, 600_000, 1_000);
        let names = vec!["p".to_owned()];
        let mut out = StepOutput {
            onsets: vec![EpisodeOnset {
                patient_idx: 0,
                condition: ConditionKind::Sepsis,
                onset_ms: 10_000,
                severity: 1.0,
                ramp_ms: 1,
            }],
            measurements: vec![measurement(0, 20_000, 95.0), measurement(1, 30_000, 88.0)],
            ..StepOutput::default()
        };
        o.step(&out, &names);
        out.onsets.clear();
        out.measurements.clear();
        out.deliveries = vec![
            Delivery {
                measurement: measurement(0, 20_000, 95.0),
                sent_ms: 20_000,
                delivered_ms: 21_000,
                duplicate: false,
            },
            Delivery {
                measurement: measurement(1, 30_000, 88.0),
                sent_ms: 30_000,
                delivered_ms: 32_500,
                duplicate: false,
            },
        ];
        o.step(&out, &names);
        let truth = o.finish(&names);
        let ob = &truth.obligations[0][0];
        assert_eq!(ob.from_ms, 10_000);
        assert_eq!(ob.reference_ms, Some(32_500));
        assert_eq!(ob.times.measured_ms, Some(30_000));
        assert_eq!(ob.times.measured_delivered_ms, Some(32_500));
        assert_eq!(truth.episodes[0].condition, "sepsis");
    }

    #[test]
    fn criterion_reference_is_its_first_onset_after_the_episode() {
        let episode = ExpectKind::Episode {
            condition: ConditionKind::Sepsis,
            from: Reference::Criterion,
            criterion: "qsofa".into(),
        };
        let names = vec!["p".to_owned()];
        let criterion = |at_ms| CriterionOnset {
            patient_idx: 0,
            criterion: Criterion::Qsofa,
            at_ms,
        };
        let mut o = Observer::new(&[expect(episode.clone(), "spo2 < 90")], 1, 600_000, 1_000);
        // Held once before the onset (does not count), then after it.
        o.step(
            &StepOutput {
                criteria: vec![criterion(2_000)],
                ..StepOutput::default()
            },
            &names,
        );
        o.step(
            &StepOutput {
                onsets: vec![EpisodeOnset {
                    patient_idx: 0,
                    condition: ConditionKind::Sepsis,
                    onset_ms: 10_000,
                    severity: 1.0,
                    ramp_ms: 1,
                }],
                criteria: vec![criterion(45_000)],
                ..StepOutput::default()
            },
            &names,
        );
        let t = o.finish(&names);
        assert_eq!(t.obligations[0][0].reference_ms, Some(45_000));
        assert_eq!(t.obligations[0][0].times.criterion_ms, Some(45_000));
        // Never held after onset: inconclusive, saying why.
        let mut o = Observer::new(&[expect(episode, "spo2 < 90")], 1, 600_000, 1_000);
        o.step(
            &StepOutput {
                onsets: vec![EpisodeOnset {
                    patient_idx: 0,
                    condition: ConditionKind::Sepsis,
                    onset_ms: 10_000,
                    severity: 1.0,
                    ramp_ms: 1,
                }],
                ..StepOutput::default()
            },
            &names,
        );
        let t = o.finish(&names);
        assert_eq!(t.obligations[0][0].reference_ms, None);
        assert!(
            t.obligations[0][0]
                .unresolved
                .as_deref()
                .unwrap()
                .contains("never held")
        );
    }

    #[test]
    fn rule_oracle_owes_once_per_onset_and_rearms() {
        let mut o = Observer::new(&[expect(ExpectKind::Rule, "spo2 < 90")], 1, 600_000, 1_000);
        let names = vec!["p".to_owned()];
        let values = [
            (0, 95.0),
            (10, 85.0),
            (20, 85.0),
            (30, 95.0),
            (40, 85.0),
            (200, 95.0),
            (300, 85.0),
        ];
        let out = StepOutput {
            deliveries: values
                .iter()
                .enumerate()
                .map(|(i, &(s, v))| Delivery {
                    measurement: measurement(i as u64, s * 1_000, v),
                    sent_ms: s * 1_000,
                    delivered_ms: s * 1_000 + 500,
                    duplicate: false,
                })
                .collect(),
            ..StepOutput::default()
        };
        o.step(&out, &names);
        let t = o.finish(&names);
        // Low at 10 s (owed), off at 30 s, low again at 40 s: within the
        // 60 s rearm, not owed again; low at 300 s, long after: owed.
        let due: Vec<u64> = t.obligations[0].iter().map(|o| o.from_ms).collect();
        assert_eq!(due, vec![10_500, 300_500]);
    }

    /// A state expectation owes one alert per state of the criterion it
    /// names, from the state's onset to its end; states of other criteria
    /// and episodes owe it nothing.
    #[test]
    fn state_expectations_owe_one_alert_per_state_of_their_criterion_only() {
        let state = ExpectKind::State {
            criterion: Criterion::HypoglycaemiaLevel1,
        };
        let mut o = Observer::new(&[expect(state, "spo2 < 90")], 2, 3_600_000, 1_000);
        let names = vec!["p".to_owned(), "q".to_owned()];
        let change = |patient_idx, criterion, change, at_ms| StateChange {
            patient_idx,
            criterion,
            change,
            at_ms,
        };
        let steps = [
            vec![
                change(0, Criterion::HypoglycaemiaLevel1, Change::Onset, 60_000),
                change(1, Criterion::News2Medium, Change::Onset, 60_000),
            ],
            vec![change(
                0,
                Criterion::HypoglycaemiaLevel1,
                Change::End,
                600_000,
            )],
            vec![change(
                0,
                Criterion::HypoglycaemiaLevel1,
                Change::Onset,
                900_000,
            )],
        ];
        for states in steps {
            let out = StepOutput {
                states,
                ..StepOutput::default()
            };
            o.step(&out, &names);
        }
        let truth = o.finish(&names);
        let owed: Vec<(&str, u64, Option<u64>, Option<u64>)> = truth.obligations[0]
            .iter()
            .map(|ob| {
                (
                    ob.patient.as_str(),
                    ob.from_ms,
                    ob.reference_ms,
                    ob.holds_until_ms,
                )
            })
            .collect();
        assert_eq!(
            owed,
            [
                ("p", 60_000, Some(60_000), Some(600_000)),
                ("p", 900_000, Some(900_000), None),
            ]
        );
        assert!(truth.episodes.is_empty());
    }
}
