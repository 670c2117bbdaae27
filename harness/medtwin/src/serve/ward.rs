//! The ward as the pages show it: each bed's latest numerics (what its
//! devices measured, as a monitor shows them), NEWS2 on those, trends,
//! technical alarms; the alarms the backend raised (after the configured
//! alarm delay), their acknowledgements; and the session's log, which the
//! after-action report reads. Everything here is bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};

use medtwin_sim::news2::{self, Observations, Spo2Scale};
use medtwin_sim::{Acvpu, Command, ConditionKind, InterventionKind, StepOutput, Vital};
use medtwin_wire::{AlertMessage, Priority};
use serde::Serialize;

/// Trend points kept per bed (one per [`TREND_EVERY_MS`]: 4 hours).
pub const TREND_POINTS: usize = 1_440;
/// Simulated time between trend points.
pub const TREND_EVERY_MS: u64 = 10_000;
/// Alarms kept at most; more are counted, not kept.
pub const MAX_ALARMS: usize = 10_000;
/// Log entries kept at most; more are counted, not kept.
pub const MAX_LOG: usize = 50_000;
/// Alerts waiting out the alarm delay at most.
pub const MAX_PENDING: usize = 10_000;
/// A technical alarm not seen again for this long (simulated) is over.
const TECH_HOLD_MS: u64 = 30_000;
/// An acknowledged alarm not raised again for this long (simulated) clears.
const CLEAR_AFTER_MS: u64 = 300_000;

/// One bed's numerics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Numerics {
    /// Heart rate, /min.
    pub hr: Option<f64>,
    /// SpO2, %.
    pub spo2: Option<f64>,
    /// Respiratory rate, /min.
    pub rr: Option<f64>,
    /// Systolic BP, mmHg.
    pub sbp: Option<f64>,
    /// Diastolic BP, mmHg.
    pub dbp: Option<f64>,
    /// Temperature, °C.
    pub temp: Option<f64>,
    /// Glucose, mg/dL.
    pub glucose: Option<f64>,
    /// ACVPU as charted (A, C, V, P, U).
    pub acvpu: Option<&'static str>,
    /// NEWS2 on the latest values (missing parameters score 0).
    pub news2: Option<u8>,
    /// Whether any single NEWS2 parameter scores 3.
    pub news2_red: bool,
}

/// One trend point.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrendPoint {
    /// Simulated ms.
    pub t: u64,
    /// Heart rate.
    pub hr: Option<f64>,
    /// SpO2.
    pub spo2: Option<f64>,
    /// Respiratory rate.
    pub rr: Option<f64>,
    /// Systolic BP.
    pub sbp: Option<f64>,
    /// NEWS2.
    pub news2: Option<u8>,
}

/// One bed.
#[derive(Debug)]
pub struct Bed {
    /// The patient's name.
    pub patient: String,
    /// Numerics now.
    pub now: Numerics,
    o2_lpm: f64,
    scale2: bool,
    acvpu: Option<Acvpu>,
    /// Technical alarms: name → last simulated ms seen.
    tech: BTreeMap<String, u64>,
    trend: VecDeque<TrendPoint>,
    /// Waveform devices on this bed: (device index, rate, channel names).
    pub waves: Vec<(u32, u32, Vec<&'static str>)>,
}

/// An alarm's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Raised, not acknowledged.
    Active,
    /// Acknowledged, condition may persist.
    Acknowledged,
    /// Over.
    Cleared,
}

/// An alarm raised by the backend (one per patient and kind while it lasts).
#[derive(Clone, Debug, Serialize)]
pub struct Alarm {
    /// Its number in the session.
    pub id: u64,
    /// Patient index.
    pub bed: u32,
    /// Patient name.
    pub patient: String,
    /// Alert kind, e.g. `news2-high`.
    pub kind: String,
    /// `high`, `medium` or `low`.
    pub priority: &'static str,
    /// A technical alarm (the backend's `device-*` kinds: a sensor off, a
    /// battery dead), shown apart from the clinical ones.
    pub technical: bool,
    /// Simulated ms it was shown (after the alarm delay).
    pub raised_ms: u64,
    /// Simulated ms the backend's alert arrived.
    pub received_ms: u64,
    /// Simulated ms it was last raised again.
    pub last_ms: u64,
    /// How many alerts it stands for.
    pub repeats: u64,
    /// State.
    pub state: AlarmState,
    /// When and by whom it was acknowledged.
    pub acked_ms: Option<u64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When it cleared.
    pub cleared_ms: Option<u64>,
    /// The higher NEWS2 alarm that replaced it, if one did.
    pub superseded_by: Option<u64>,
    /// The score behind it.
    pub score: Option<i64>,
}

/// One line of the session's log.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    /// Simulated ms.
    pub t: u64,
    /// `instructor`, `trainee`, `scenario`, `twin` or `backend`.
    pub actor: String,
    /// What kind of entry: `condition`, `condition_end`, `intervention`,
    /// `command`, `alarm`, `ack`, `silence`, `clock`, `refused`.
    pub what: &'static str,
    /// The patient, when it concerns one.
    pub patient: Option<String>,
    /// In words.
    pub text: String,
}

/// An intervention the patient received.
#[derive(Clone, Debug, Serialize)]
pub struct Given {
    /// Patient index.
    pub bed: u32,
    /// What.
    #[serde(serialize_with = "intervention_name")]
    pub kind: InterventionKind,
    /// Simulated ms.
    pub at_ms: u64,
    /// Who gave it: `trainee` (or the name given), `instructor`, `cue`,
    /// or `scenario` (scheduled in the scenario file).
    pub actor: String,
}

/// Counters the stats endpoint and the report show.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    /// Instructor requests refused for a missing or wrong token.
    pub unauthorized: u64,
    /// Commands the twin refused (queue full, unknown patient...).
    pub commands_refused: u64,
    /// Commands the twin took.
    pub commands_queued: u64,
    /// Alerts for a patient not on the ward.
    pub alerts_unknown_patient: u64,
    /// Alarms or alerts not kept (over [`MAX_ALARMS`] or [`MAX_PENDING`]).
    pub alarms_dropped: u64,
    /// Log entries not kept (over [`MAX_LOG`]).
    pub log_dropped: u64,
}

/// The ward.
#[derive(Debug)]
pub struct Ward {
    /// Beds by patient index.
    pub beds: Vec<Bed>,
    by_name: HashMap<String, u32>,
    device_bed: HashMap<u32, u32>,
    device_waves: Vec<Option<(u32, Vec<&'static str>)>>,
    /// Every alarm of the session.
    pub alarms: Vec<Alarm>,
    pending: VecDeque<(u64, AlertMessage, u64)>,
    /// The session's log.
    pub log: Vec<LogEntry>,
    /// Conditions that began: (bed, condition, onset ms).
    pub episodes: Vec<(u32, ConditionKind, u64)>,
    /// Interventions given.
    pub given: Vec<Given>,
    /// Who queued which intervention, until the twin gives it.
    queued_by: VecDeque<(u32, InterventionKind, u64, String)>,
    /// Counters.
    pub counters: Counters,
    /// Simulated time of the newest step.
    pub now_ms: u64,
    /// Simulated ms until which the alarm audio is paused.
    pub audio_paused_until_ms: Option<u64>,
    next_trend_ms: u64,
    alarm_delay_ms: u64,
}

/// What changed in a step, for the feed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Alarms raised or changed.
    pub alarms: Vec<Alarm>,
    /// New log entries.
    pub log: Vec<LogEntry>,
}

/// A bed as the tick event and the snapshot show it.
#[derive(Debug, Serialize)]
pub struct BedView<'a> {
    /// Index.
    pub bed: u32,
    /// Name.
    pub patient: &'a str,
    /// Numerics.
    #[serde(flatten)]
    pub now: &'a Numerics,
    /// Technical alarms now.
    pub tech: Vec<&'a str>,
    /// The highest priority of its unacknowledged clinical alarms.
    pub alarm: Option<&'static str>,
    /// Whether it has an acknowledged alarm still standing.
    pub acked: Option<&'static str>,
    /// Whether it has waveforms.
    pub waves: bool,
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Medium => "medium",
        Priority::Low => "low",
    }
}

fn rank(p: &str) -> u8 {
    match p {
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

impl Ward {
    /// A ward of `patients`; `device_waves` has each device's waveform
    /// rate and channels (`None`: it records none), by device index.
    pub fn new(
        patients: &[String],
        device_waves: Vec<Option<(u32, Vec<&'static str>)>>,
        alarm_delay_ms: u64,
    ) -> Ward {
        let beds: Vec<Bed> = patients
            .iter()
            .map(|p| Bed {
                patient: p.clone(),
                now: Numerics::default(),
                o2_lpm: 0.0,
                scale2: false,
                acvpu: None,
                tech: BTreeMap::new(),
                trend: VecDeque::with_capacity(TREND_POINTS),
                waves: Vec::new(),
            })
            .collect();
        Ward {
            device_waves,
            by_name: patients
                .iter()
                .enumerate()
                .map(|(i, p)| (p.clone(), i as u32))
                .collect(),
            beds,
            device_bed: HashMap::new(),
            alarms: Vec::new(),
            pending: VecDeque::new(),
            log: Vec::new(),
            episodes: Vec::new(),
            given: Vec::new(),
            queued_by: VecDeque::new(),
            counters: Counters::default(),
            now_ms: 0,
            audio_paused_until_ms: None,
            next_trend_ms: 0,
            alarm_delay_ms,
        }
    }

    /// The bed of patient `name`.
    pub fn bed_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// Adds a log entry (counted when the log is full).
    pub fn note(&mut self, changes: &mut Changes, entry: LogEntry) {
        if self.log.len() >= MAX_LOG {
            self.counters.log_dropped += 1;
            return;
        }
        self.log.push(entry.clone());
        changes.log.push(entry);
    }

    /// Takes in one step of the twin.
    pub fn step(&mut self, out: &StepOutput, changes: &mut Changes) {
        self.now_ms = out.now_ms;
        for m in &out.measurements {
            self.device_bed.insert(m.device_idx, m.patient_idx);
            let Some(bed) = self.beds.get_mut(m.patient_idx as usize) else {
                continue;
            };
            for r in m.readings.as_slice() {
                let v = Some(r.value).filter(|v| v.is_finite());
                match r.vital {
                    Vital::Hr => bed.now.hr = v,
                    Vital::Spo2 => bed.now.spo2 = v,
                    Vital::Rr => bed.now.rr = v,
                    Vital::Sbp => bed.now.sbp = v,
                    Vital::Dbp => bed.now.dbp = v,
                    Vital::Temp => bed.now.temp = v,
                    Vital::Glucose => bed.now.glucose = v,
                    Vital::Acvpu => bed.acvpu = Acvpu::from_code(r.value),
                    Vital::O2Flow => bed.o2_lpm = r.value,
                    Vital::Spo2Scale => bed.scale2 = r.value == 2.0,
                    _ => {}
                }
            }
            if let Some(alarm) = m.alarm {
                bed.tech.insert(alarm.name().to_owned(), out.now_ms);
            }
        }
        for loss in &out.losses {
            let tech = match loss.cause.name() {
                c @ ("sensor_off" | "battery_dead" | "disconnected") => c,
                _ => continue,
            };
            if let Some(&b) = self.device_bed.get(&loss.device_idx)
                && let Some(bed) = self.beds.get_mut(b as usize)
            {
                bed.tech.insert(tech.to_owned(), out.now_ms);
            }
        }
        for block in &out.waves {
            let Some(bed) = self.beds.get_mut(block.patient_idx as usize) else {
                continue;
            };
            if block.lead_off {
                bed.tech.insert("lead_off".to_owned(), out.now_ms);
            }
            if !bed.waves.iter().any(|w| w.0 == block.device_idx)
                && let Some(Some((rate, channels))) =
                    self.device_waves.get(block.device_idx as usize)
            {
                bed.waves.push((block.device_idx, *rate, channels.clone()));
            }
        }
        let trend_due = out.now_ms >= self.next_trend_ms;
        if trend_due {
            self.next_trend_ms = out.now_ms + TREND_EVERY_MS;
        }
        for bed in &mut self.beds {
            bed.tech
                .retain(|_, seen| *seen + TECH_HOLD_MS >= out.now_ms);
            bed.now.acvpu = bed.acvpu.map(acvpu_letter);
            let scored = news2::score(&Observations {
                rr_per_min: bed.now.rr,
                spo2_pct: bed.now.spo2,
                spo2_scale: if bed.scale2 {
                    Spo2Scale::Scale2
                } else {
                    Spo2Scale::Scale1
                },
                on_oxygen: bed.o2_lpm > 0.0,
                sbp_mmhg: bed.now.sbp,
                hr_per_min: bed.now.hr,
                consciousness: bed.acvpu,
                temp_c: bed.now.temp,
            });
            let measured_any =
                bed.now.hr.is_some() || bed.now.spo2.is_some() || bed.now.rr.is_some();
            bed.now.news2 = measured_any.then_some(scored.total);
            bed.now.news2_red = measured_any && scored.red;
            if trend_due {
                if bed.trend.len() == TREND_POINTS {
                    bed.trend.pop_front();
                }
                bed.trend.push_back(TrendPoint {
                    t: out.now_ms,
                    hr: bed.now.hr,
                    spo2: bed.now.spo2,
                    rr: bed.now.rr,
                    sbp: bed.now.sbp,
                    news2: bed.now.news2,
                });
            }
        }
        self.truth_log(out, changes);
        self.release_due(changes);
        self.clear_over(changes);
    }

    /// Remembers who queued `command` for simulated `at_ms`, so the
    /// intervention is credited to them when the twin gives it.
    pub fn queued(&mut self, command: &Command, at_ms: u64, actor: &str) {
        if let Command::GiveIntervention { patient, kind, .. } = command
            && let Some(bed) = self.bed_of(patient)
            && self.queued_by.len() < MAX_PENDING
        {
            self.queued_by
                .push_back((bed, *kind, at_ms, actor.to_owned()));
        }
    }

    fn record_truth(&mut self, out: &StepOutput) {
        for o in &out.onsets {
            if self.episodes.len() < MAX_LOG {
                self.episodes.push((o.patient_idx, o.condition, o.onset_ms));
            }
        }
        for i in &out.interventions {
            let actor = match self.queued_by.iter().position(|(bed, kind, at, _)| {
                *bed == i.patient_idx && *kind == i.kind && *at <= i.at_ms
            }) {
                Some(k) => self.queued_by.remove(k).map_or_else(String::new, |q| q.3),
                None => "scenario".to_owned(),
            };
            if self.given.len() < MAX_LOG {
                self.given.push(Given {
                    bed: i.patient_idx,
                    kind: i.kind,
                    at_ms: i.at_ms,
                    actor,
                });
            }
        }
    }

    fn truth_log(&mut self, out: &StepOutput, changes: &mut Changes) {
        self.record_truth(out);
        let name = |i: u32| self.beds.get(i as usize).map(|b| b.patient.clone());
        let mut entries = Vec::new();
        for o in &out.onsets {
            entries.push(LogEntry {
                t: o.onset_ms,
                actor: "twin".into(),
                what: "condition",
                patient: name(o.patient_idx),
                text: format!("{} began (severity {:.2})", o.condition.name(), o.severity),
            });
        }
        for e in &out.ends {
            entries.push(LogEntry {
                t: e.end_ms,
                actor: "twin".into(),
                what: "condition_end",
                patient: name(e.patient_idx),
                text: format!("{} ended ({:?})", e.condition.name(), e.reason).to_lowercase(),
            });
        }
        for c in &out.commands {
            entries.push(LogEntry {
                t: c.at_ms,
                actor: "twin".into(),
                what: "command",
                patient: name(c.patient_idx),
                text: format!(
                    "command applied: {}",
                    serde_json::to_string(&c.command).unwrap_or_default()
                ),
            });
        }
        for i in &out.interventions {
            let by = self
                .given
                .iter()
                .rev()
                .find(|g| g.bed == i.patient_idx && g.kind == i.kind && g.at_ms == i.at_ms)
                .map_or_else(|| "scenario".to_owned(), |g| g.actor.clone());
            entries.push(LogEntry {
                t: i.at_ms,
                actor: by,
                what: "intervention",
                patient: name(i.patient_idx),
                text: format!("{} given", i.kind.name()),
            });
        }
        for e in entries {
            self.note(changes, e);
        }
    }

    /// Takes alerts the intakes received; each is shown after the alarm delay.
    pub fn receive(&mut self, alerts: Vec<(AlertMessage, u64)>, changes: &mut Changes) {
        for (alert, received_ms) in alerts {
            if self.bed_of(&alert.patient_id).is_none() {
                self.counters.alerts_unknown_patient += 1;
                continue;
            }
            if self.pending.len() >= MAX_PENDING {
                self.counters.alarms_dropped += 1;
                continue;
            }
            let due = received_ms.max(self.now_ms) + self.alarm_delay_ms;
            self.pending.push_back((due, alert, received_ms));
        }
        self.release_due(changes);
    }

    fn release_due(&mut self, changes: &mut Changes) {
        while self
            .pending
            .front()
            .is_some_and(|(due, ..)| *due <= self.now_ms)
        {
            let Some((_, alert, received_ms)) = self.pending.pop_front() else {
                break;
            };
            self.raise(alert, received_ms, changes);
        }
    }

    fn raise(&mut self, alert: AlertMessage, received_ms: u64, changes: &mut Changes) {
        let Some(bed) = self.bed_of(&alert.patient_id) else {
            return;
        };
        let now = self.now_ms;
        if let Some(a) = self
            .alarms
            .iter_mut()
            .rev()
            .find(|a| a.bed == bed && a.kind == alert.kind && a.state != AlarmState::Cleared)
        {
            a.last_ms = now;
            a.repeats += 1;
            a.score = alert.score.or(a.score);
            return;
        }
        if self.alarms.len() >= MAX_ALARMS {
            self.counters.alarms_dropped += 1;
            return;
        }
        // An escalation supersedes the patient's lower NEWS2 alarm (a
        // monitor shows one NEWS2 condition, at its highest priority).
        let id = self.alarms.len() as u64 + 1;
        if alert.kind.starts_with("news2-") {
            let new_rank = rank(priority_name(alert.priority));
            for a in &mut self.alarms {
                if a.bed == bed
                    && a.kind.starts_with("news2-")
                    && a.state != AlarmState::Cleared
                    && rank(a.priority) < new_rank
                {
                    a.state = AlarmState::Cleared;
                    a.cleared_ms = Some(now);
                    a.superseded_by = Some(id);
                    changes.alarms.push(a.clone());
                }
            }
        }
        let alarm = Alarm {
            id,
            bed,
            patient: alert.patient_id.clone(),
            kind: alert.kind.clone(),
            priority: priority_name(alert.priority),
            technical: alert.kind.starts_with("device-"),
            raised_ms: now,
            received_ms,
            last_ms: now,
            repeats: 1,
            state: AlarmState::Active,
            acked_ms: None,
            acked_by: None,
            cleared_ms: None,
            superseded_by: None,
            score: alert.score,
        };
        let text = format!(
            "{} alarm {} (score {})",
            alarm.priority,
            alarm.kind,
            alarm.score.map_or("-".into(), |s| s.to_string())
        );
        self.note(
            changes,
            LogEntry {
                t: now,
                actor: "backend".into(),
                what: "alarm",
                patient: Some(alarm.patient.clone()),
                text,
            },
        );
        changes.alarms.push(alarm.clone());
        self.alarms.push(alarm);
    }

    /// An acknowledged alarm clears once its NEWS2 band is left (for the
    /// backend's `news2-*` kinds) or it has not been raised again for
    /// [`CLEAR_AFTER_MS`].
    fn clear_over(&mut self, changes: &mut Changes) {
        let now = self.now_ms;
        for a in &mut self.alarms {
            if a.state != AlarmState::Acknowledged {
                continue;
            }
            let news2 = self.beds[a.bed as usize].now.news2.unwrap_or(0);
            let band_left = match a.kind.as_str() {
                "news2-high" => news2 < 7,
                "news2-medium" => news2 < 5,
                _ => false,
            };
            if band_left || a.last_ms + CLEAR_AFTER_MS <= now {
                a.state = AlarmState::Cleared;
                a.cleared_ms = Some(now);
                changes.alarms.push(a.clone());
            }
        }
    }

    /// Acknowledges alarm `id`; `Err` when there is none or it is over.
    pub fn acknowledge(&mut self, id: u64, by: &str, changes: &mut Changes) -> Result<(), String> {
        let now = self.now_ms;
        let Some(a) = self.alarms.iter_mut().find(|a| a.id == id) else {
            return Err(format!("no alarm {id}"));
        };
        if a.state != AlarmState::Active {
            return Err(format!("alarm {id} is already {:?}", a.state).to_lowercase());
        }
        a.state = AlarmState::Acknowledged;
        a.acked_ms = Some(now);
        a.acked_by = Some(by.to_owned());
        let alarm = a.clone();
        self.note(
            changes,
            LogEntry {
                t: now,
                actor: by.to_owned(),
                what: "ack",
                patient: Some(alarm.patient.clone()),
                text: format!(
                    "acknowledged {} alarm {} after {}",
                    alarm.priority,
                    alarm.kind,
                    medtwin_check::duration::format(now.saturating_sub(alarm.raised_ms))
                ),
            },
        );
        changes.alarms.push(alarm);
        Ok(())
    }

    /// Every bed, most acute first: unacknowledged alarm priority, then
    /// NEWS2, then technical alarms, then bed order.
    pub fn beds_by_acuity(&self) -> Vec<BedView<'_>> {
        let mut views: Vec<BedView<'_>> = self
            .beds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let standing = |state: AlarmState| {
                    self.alarms
                        .iter()
                        .filter(|a| a.bed == i as u32 && a.state == state && !a.technical)
                        .map(|a| a.priority)
                        .max_by_key(|p| rank(p))
                };
                BedView {
                    bed: i as u32,
                    patient: &b.patient,
                    now: &b.now,
                    tech: b.tech.keys().map(String::as_str).collect(),
                    alarm: standing(AlarmState::Active),
                    acked: standing(AlarmState::Acknowledged),
                    waves: !b.waves.is_empty(),
                }
            })
            .collect();
        views.sort_by_key(|v| {
            (
                std::cmp::Reverse(v.alarm.map_or(0, rank)),
                std::cmp::Reverse(v.acked.map_or(0, rank)),
                std::cmp::Reverse(v.now.news2.unwrap_or(0)),
                std::cmp::Reverse(v.tech.len()),
                v.bed,
            )
        });
        views
    }

    /// A bed's trend.
    pub fn trend(&self, bed: u32) -> Vec<TrendPoint> {
        self.beds
            .get(bed as usize)
            .map(|b| b.trend.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn intervention_name<S: serde::Serializer>(k: &InterventionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

fn acvpu_letter(a: Acvpu) -> &'static str {
    match a {
        Acvpu::Alert => "A",
        Acvpu::Confused => "C",
        Acvpu::Voice => "V",
        Acvpu::Pain => "P",
        Acvpu::Unresponsive => "U",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(patient: &str, kind: &str, priority: Priority) -> AlertMessage {
        AlertMessage {
            schema: None,
            alert_id: None,
            patient_id: patient.into(),
            kind: kind.into(),
            priority,
            measurement_time: None,
            score: Some(7),
        }
    }

    fn step_to(ward: &mut Ward, now_ms: u64, changes: &mut Changes) {
        let out = StepOutput {
            now_ms,
            ..StepOutput::default()
        };
        ward.step(&out, changes);
    }

    #[test]
    fn alarms_wait_out_the_delay_escalate_and_are_acknowledged_once() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let mut ward = Ward::new(&names, vec![], 10_000);
        let mut changes = Changes::default();
        step_to(&mut ward, 1_000, &mut changes);
        ward.receive(
            vec![
                (alert("a", "news2-medium", Priority::Medium), 1_000),
                (alert("nobody", "news2-high", Priority::High), 1_000),
            ],
            &mut changes,
        );
        assert!(ward.alarms.is_empty(), "held for the 10 s alarm delay");
        assert_eq!(ward.counters.alerts_unknown_patient, 1);
        step_to(&mut ward, 11_000, &mut changes);
        assert_eq!(ward.alarms.len(), 1);
        assert_eq!(ward.alarms[0].raised_ms, 11_000);
        assert_eq!(
            ward.beds_by_acuity()[0].patient,
            "a",
            "the alarmed bed first"
        );
        ward.receive(
            vec![(alert("a", "news2-high", Priority::High), 12_000)],
            &mut changes,
        );
        step_to(&mut ward, 22_000, &mut changes);
        assert_eq!(ward.alarms[0].state, AlarmState::Cleared, "superseded");
        assert_eq!(ward.alarms[0].superseded_by, Some(2));
        assert_eq!(ward.alarms[1].priority, "high");
        assert_eq!(ward.beds_by_acuity()[0].alarm, Some("high"));
        ward.acknowledge(2, "nurse", &mut changes).unwrap();
        assert!(ward.acknowledge(2, "nurse", &mut changes).is_err());
        assert!(ward.acknowledge(99, "nurse", &mut changes).is_err());
        let view = &ward.beds_by_acuity()[0];
        assert_eq!((view.alarm, view.acked), (None, Some("high")));
        assert!(
            ward.log
                .iter()
                .any(|e| e.what == "ack" && e.actor == "nurse")
        );
    }
}
