//! Alerts out: fault injection, a bounded queue, and delivery to the webhook.
//!
//! The scorer raises an alert while it holds the patient's lock; raising
//! never waits: fault injection decides the alert's fate, and the alert goes
//! into one of a few bounded *lanes* (a full lane counts an overflow and the
//! alert is lost). A patient always maps to the same lane and a lane delivers
//! in order, so `news2-medium` reaches the webhook before the `news2-high`
//! that followed it. Each lane is one task: it waits until the alert is due
//! (the delay fault), then posts it with a timeout and a few retries.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::escalation::Level;
use super::stats::{Counters, add, bump};
use medtwin_wire::{ALERT_SCHEMA, AlertMessage, Priority};

use crate::BackendError;
use crate::sink::{Outbound, Phase, Sinks};

/// Faults the backend can inject into its own alerting, to check that the
/// harness notices. All off by default.
///
/// Each knob that draws random numbers gets its own stream seeded from
/// [`BackendConfig::seed`](super::BackendConfig::seed), so adding a knob
/// later (duplicate, spurious, wrong patient) does not change which alerts
/// an existing knob drops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Percentage (0–100) of alerts silently not sent.
    pub drop_alerts_pct: f64,
    /// Wall-clock delay before each alert is sent. (A scenario's `[backend]
    /// delay_alerts` is simulated time; a run converts it with its clock.)
    pub delay_alerts: Duration,
    /// Percentage (0–100) of alerts sent twice (the copy right after).
    pub duplicate_alerts_pct: f64,
    /// Percentage (0–100) of scored messages that raise no real alert but
    /// raise a spurious `news2-medium` for their patient.
    pub spurious_alerts_pct: f64,
    /// Percentage (0–100) of alerts sent naming another patient (of those
    /// the backend knows, in sorted order, the one half-way round).
    pub wrong_patient_pct: f64,
    /// Percentage (0–100) of alerts sent as the other NEWS2 kind
    /// (`news2-medium` ↔ `news2-high`).
    pub wrong_kind_pct: f64,
}

/// One of the percentage knobs of [`Faults`]: the one list every place
/// that names, checks, prints or overrides them goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PctKnob {
    /// [`Faults::drop_alerts_pct`].
    DropAlerts,
    /// [`Faults::duplicate_alerts_pct`].
    DuplicateAlerts,
    /// [`Faults::spurious_alerts_pct`].
    SpuriousAlerts,
    /// [`Faults::wrong_patient_pct`].
    WrongPatient,
    /// [`Faults::wrong_kind_pct`].
    WrongKind,
}

impl PctKnob {
    /// Every percentage knob, in the order reports and commands list them.
    pub const ALL: [PctKnob; 5] = [
        PctKnob::DropAlerts,
        PctKnob::DuplicateAlerts,
        PctKnob::SpuriousAlerts,
        PctKnob::WrongPatient,
        PctKnob::WrongKind,
    ];

    /// Its name in scenario files and reports, e.g. `drop_alerts_pct`.
    pub fn name(self) -> &'static str {
        match self {
            PctKnob::DropAlerts => "drop_alerts_pct",
            PctKnob::DuplicateAlerts => "duplicate_alerts_pct",
            PctKnob::SpuriousAlerts => "spurious_alerts_pct",
            PctKnob::WrongPatient => "wrong_patient_pct",
            PctKnob::WrongKind => "wrong_kind_pct",
        }
    }

    /// Its command-line flag, e.g. `--drop-alerts-pct`.
    pub fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }
}

impl Faults {
    /// The value of a percentage knob.
    pub fn pct(&self, knob: PctKnob) -> f64 {
        match knob {
            PctKnob::DropAlerts => self.drop_alerts_pct,
            PctKnob::DuplicateAlerts => self.duplicate_alerts_pct,
            PctKnob::SpuriousAlerts => self.spurious_alerts_pct,
            PctKnob::WrongPatient => self.wrong_patient_pct,
            PctKnob::WrongKind => self.wrong_kind_pct,
        }
    }

    /// The value of a percentage knob, to set.
    pub fn pct_mut(&mut self, knob: PctKnob) -> &mut f64 {
        match knob {
            PctKnob::DropAlerts => &mut self.drop_alerts_pct,
            PctKnob::DuplicateAlerts => &mut self.duplicate_alerts_pct,
            PctKnob::SpuriousAlerts => &mut self.spurious_alerts_pct,
            PctKnob::WrongPatient => &mut self.wrong_patient_pct,
            PctKnob::WrongKind => &mut self.wrong_kind_pct,
        }
    }

    /// Checks the knobs' ranges.
    pub fn validate(&self) -> Result<(), BackendError> {
        for knob in PctKnob::ALL {
            let value = self.pct(knob);
            if !(0.0..=100.0).contains(&value) {
                return Err(BackendError::KnobOutOfRange {
                    knob: knob.name(),
                    value,
                });
            }
        }
        Ok(())
    }
}

/// Salt of the drop knob's random stream (any fixed constant; each knob has
/// its own).
const DROP_STREAM: u64 = 0x6472_6f70_5f61_6c74; // "drop_alt"
/// Salt of the duplicate knob's stream.
const DUPLICATE_STREAM: u64 = 0x6475_705f_616c_7274; // "dup_alrt"
/// Salt of the spurious knob's stream.
const SPURIOUS_STREAM: u64 = 0x7370_7572_696f_7573; // "spurious"
/// Salt of the wrong-patient knob's stream.
const WRONG_PATIENT_STREAM: u64 = 0x7772_6f6e_675f_7074; // "wrong_pt"
/// Salt of the wrong-kind knob's stream.
const WRONG_KIND_STREAM: u64 = 0x7772_6f6e_675f_6b64; // "wrong_kd"
/// Patients remembered for the wrong-patient knob (bounded).
const MAX_KNOWN_PATIENTS: usize = 4096;

/// Attempts per alert: the first and up to three retries.
const DELIVERY_ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubles each time (100, 200, 400 ms).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Independent delivery lanes. A few, so one slow alert does not hold up
/// every patient; not many, since each is a task and a queue.
const LANES: usize = 4;

/// One alert with the wall-clock delay fault injection gave it.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    alert: AlertMessage,
    delay: Duration,
}

/// Applies [`Faults`] to alerts, repeatably for a given seed and order of
/// alerts.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    faults: Faults,
    drop_rng: Xoshiro256PlusPlus,
    duplicate_rng: Xoshiro256PlusPlus,
    spurious_rng: Xoshiro256PlusPlus,
    wrong_patient_rng: Xoshiro256PlusPlus,
    wrong_kind_rng: Xoshiro256PlusPlus,
    /// Patients in order of first message (at most [`MAX_KNOWN_PATIENTS`]).
    known: Vec<String>,
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults, seed: u64) -> Self {
        let rng = |salt: u64| Xoshiro256PlusPlus::seed_from_u64(seed ^ salt);
        Self {
            faults,
            drop_rng: rng(DROP_STREAM),
            duplicate_rng: rng(DUPLICATE_STREAM),
            spurious_rng: rng(SPURIOUS_STREAM),
            wrong_patient_rng: rng(WRONG_PATIENT_STREAM),
            wrong_kind_rng: rng(WRONG_KIND_STREAM),
            known: Vec::new(),
        }
    }

    /// Remembers a patient for the wrong-patient knob.
    pub(crate) fn register(&mut self, patient_id: &str) {
        if self.known.len() < MAX_KNOWN_PATIENTS {
            self.known.push(patient_id.to_owned());
        }
    }

    /// Whether a message that raised no real alert raises a spurious one.
    pub(crate) fn spurious(&mut self) -> bool {
        self.spurious_rng.random::<f64>() * 100.0 < self.faults.spurious_alerts_pct
    }

    /// Another patient than `patient_id`: of the patients known, in sorted
    /// order, the one half-way round from it (so not a neighbour, whatever
    /// order their first messages arrived in).
    fn other_patient(&self, patient_id: &str) -> String {
        let mut sorted: Vec<&String> = self.known.iter().collect();
        sorted.sort_unstable();
        match sorted.iter().position(|p| *p == patient_id) {
            Some(i) if sorted.len() > 1 => {
                let step = (sorted.len() / 2).max(1);
                sorted[(i + step) % sorted.len()].clone()
            }
            _ => format!("{patient_id}-other"),
        }
    }

    /// What to send for one alert: nothing (dropped), or the alert after a
    /// delay, possibly renamed (wrong patient, wrong kind), possibly twice
    /// (duplicate). Every knob draws once per alert, whatever the outcome.
    pub(crate) fn apply(&mut self, alert: AlertMessage) -> Vec<Planned> {
        // Draw for every alert, even with the knob at 0 or 100, so the stream
        // stays aligned with the alert sequence whatever the setting.
        let draw_pct = self.drop_rng.random::<f64>() * 100.0;
        let duplicate = self.duplicate_rng.random::<f64>() * 100.0;
        let wrong_patient = self.wrong_patient_rng.random::<f64>() * 100.0;
        let wrong_kind = self.wrong_kind_rng.random::<f64>() * 100.0;
        if draw_pct < self.faults.drop_alerts_pct {
            return Vec::new();
        }
        let mut alert = alert;
        if wrong_patient < self.faults.wrong_patient_pct {
            alert.patient_id = self.other_patient(&alert.patient_id);
        }
        if wrong_kind < self.faults.wrong_kind_pct {
            (alert.kind, alert.priority) = match alert.kind.as_str() {
                "news2-medium" => ("news2-high".to_owned(), Priority::High),
                _ => ("news2-medium".to_owned(), Priority::Medium),
            };
        }
        let mut planned = vec![Planned {
            alert: alert.clone(),
            delay: self.faults.delay_alerts,
        }];
        if duplicate < self.faults.duplicate_alerts_pct {
            alert.alert_id = alert.alert_id.map(|id| format!("{id}/dup"));
            planned.push(Planned {
                alert,
                delay: self.faults.delay_alerts,
            });
        }
        planned
    }
}

/// An alert phase waiting in a lane.
#[derive(Debug)]
struct Queued {
    out: Outbound,
    due: Instant,
}

/// Most alarms remembered as active (for their `End`), per backend.
const MAX_ACTIVE: usize = 1 << 20;

/// Raises alerts: the scorer's side of the lanes.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    lanes: Vec<mpsc::Sender<Queued>>,
    injector: Mutex<FaultInjector>,
    next_id: AtomicU64,
    counters: Arc<Counters>,
    /// The alert id of each active alarm, by (patient, kind): its `End`
    /// names the alert that started.
    active: Mutex<HashMap<(String, String), AlertMessage>>,
}

/// The delivery side: lane tasks and the switch that tells them to drain.
#[derive(Debug)]
pub(crate) struct Lanes {
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) drain: watch::Sender<bool>,
}

/// Starts the lane tasks (on the current tokio runtime).
pub(crate) fn start(
    sinks: Sinks,
    faults: Faults,
    seed: u64,
    queue_capacity: usize,
    counters: Arc<Counters>,
) -> Result<(Dispatcher, Lanes), BackendError> {
    let sinks = Arc::new(sinks);
    let (drain, drain_rx) = watch::channel(false);
    let per_lane = queue_capacity.div_ceil(LANES).max(1);
    let mut senders = Vec::with_capacity(LANES);
    let mut tasks = Vec::with_capacity(LANES);
    for _ in 0..LANES {
        let (tx, rx) = mpsc::channel(per_lane);
        senders.push(tx);
        let lane = Lane {
            rx,
            drain: drain_rx.clone(),
            sinks: Arc::clone(&sinks),
            counters: Arc::clone(&counters),
        };
        tasks.push(tokio::spawn(lane.run()));
    }
    let dispatcher = Dispatcher {
        lanes: senders,
        injector: Mutex::new(FaultInjector::new(faults, seed)),
        next_id: AtomicU64::new(1),
        counters,
        active: Mutex::new(HashMap::new()),
    };
    Ok((dispatcher, Lanes { tasks, drain }))
}

impl Dispatcher {
    /// Remembers a patient (for the wrong-patient knob).
    pub(crate) fn register(&self, patient_id: &str) {
        self.injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(patient_id);
    }

    /// The spurious knob: maybe raises a `news2-medium` with no cause.
    pub(crate) fn maybe_spurious(&self, patient_id: &str, measurement_time: &str, score: u8) {
        let fire = self
            .injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spurious();
        if fire {
            bump(&self.counters.alerts_spurious_by_fault);
            self.raise(patient_id, Level::Medium, measurement_time, score);
        }
    }

    /// Raises the alert announcing `level` for a patient. Never waits.
    pub(crate) fn raise(&self, patient_id: &str, level: Level, measurement_time: &str, score: u8) {
        let (kind, priority) = match level {
            Level::None => return,
            Level::Medium => ("news2-medium", Priority::Medium),
            Level::High => ("news2-high", Priority::High),
        };
        self.send(patient_id, kind, priority, measurement_time, Some(score));
    }

    /// Passes on a device's technical alarm as `device-<alarm>`: low
    /// priority for housekeeping (battery, sensor life), high for a stopped
    /// infusion, medium for lost signal (IEC 60601-1-8 leaves technical
    /// alarm priorities to the manufacturer; these are design choices).
    pub(crate) fn raise_device(&self, patient_id: &str, alarm: &str, measurement_time: &str) {
        let priority = match alarm {
            "low_battery" | "sensor_expired" => Priority::Low,
            "occlusion" => Priority::High,
            _ => Priority::Medium,
        };
        let kind = format!("device-{}", alarm.replace('_', "-"));
        self.send(patient_id, &kind, priority, measurement_time, None);
    }

    /// Ends the alarm announcing `level` for a patient (its level
    /// re-armed). Never waits. Fault injection does not touch ends.
    pub(crate) fn end(&self, patient_id: &str, level: Level) {
        let Some(kind) = level.alert_kind() else {
            return;
        };
        let started = self
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(patient_id.to_owned(), kind.to_owned()));
        if let Some(message) = started {
            self.enqueue(
                patient_id,
                Outbound {
                    message,
                    phase: Phase::End,
                },
                Duration::ZERO,
            );
        }
    }

    fn enqueue(&self, patient_id: &str, out: Outbound, delay: Duration) {
        let queued = Queued {
            out,
            due: Instant::now() + delay,
        };
        if self.lanes[lane_of(patient_id)].try_send(queued).is_err() {
            bump(&self.counters.alerts_queue_overflow);
        }
    }

    fn send(
        &self,
        patient_id: &str,
        kind: &str,
        priority: Priority,
        measurement_time: &str,
        score: Option<u8>,
    ) {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let alert = AlertMessage {
            schema: Some(ALERT_SCHEMA.to_owned()),
            alert_id: Some(format!("{patient_id}/{kind}/{n}")),
            patient_id: patient_id.to_owned(),
            kind: kind.to_owned(),
            priority,
            measurement_time: Some(measurement_time.to_owned()),
            score: score.map(i64::from),
        };
        bump(&self.counters.alerts_emitted);
        {
            let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
            if active.len() < MAX_ACTIVE {
                active.insert((patient_id.to_owned(), kind.to_owned()), alert.clone());
            }
        }
        let planned = self
            .injector
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(alert);
        match planned.len() {
            0 => bump(&self.counters.alerts_dropped_by_fault),
            1 => {}
            n => add(&self.counters.alerts_duplicated_by_fault, n as u64 - 1),
        }
        for Planned { alert, delay } in planned {
            let out = Outbound {
                message: alert,
                phase: Phase::Start,
            };
            self.enqueue(patient_id, out, delay);
        }
    }
}

fn lane_of(patient_id: &str) -> usize {
    // DefaultHasher::new() has fixed keys: the same patient always takes the
    // same lane, run after run.
    let mut hasher = DefaultHasher::new();
    patient_id.hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// One delivery lane.
struct Lane {
    rx: mpsc::Receiver<Queued>,
    drain: watch::Receiver<bool>,
    sinks: Arc<Sinks>,
    counters: Arc<Counters>,
}

impl Lane {
    async fn run(mut self) {
        loop {
            let next = tokio::select! {
                biased;
                queued = self.rx.recv() => queued,
                // Shutdown: no more alerts can be raised.
                _ = self.drain.wait_for(|drain| *drain) => None,
            };
            match next {
                Some(queued) => self.deliver(queued).await,
                None => break,
            }
        }
        // Send what is still queued (the caller bounds how long) and stop.
        while let Ok(queued) = self.rx.try_recv() {
            self.deliver(queued).await;
        }
    }

    /// Delivers one phase to every sink, each with a few retries; an
    /// alert counts as delivered when every sink took it.
    async fn deliver(&self, queued: Queued) {
        tokio::time::sleep_until(queued.due).await;
        let mut all = true;
        for name in self.sinks.names() {
            let mut backoff = FIRST_BACKOFF;
            let mut delivered = false;
            for attempt in 1..=DELIVERY_ATTEMPTS {
                match self.sinks.deliver(name, &queued.out).await {
                    Ok(()) => {
                        delivered = true;
                        break;
                    }
                    Err(e) if !e.retry || attempt == DELIVERY_ATTEMPTS => break,
                    Err(_) => {
                        bump(&self.counters.alerts_retried);
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
            all &= delivered;
        }
        if queued.out.phase != Phase::Start {
            return;
        }
        if all {
            bump(&self.counters.alerts_delivered);
        } else {
            bump(&self.counters.alerts_failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertMessage {
        AlertMessage {
            schema: None,
            alert_id: None,
            patient_id: "p".to_owned(),
            kind: "news2-medium".to_owned(),
            priority: Priority::Medium,
            measurement_time: None,
            score: None,
        }
    }

    fn kept(pct: f64, seed: u64) -> Vec<bool> {
        let faults = Faults {
            drop_alerts_pct: pct,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, seed);
        (0..1000)
            .map(|_| !injector.apply(alert()).is_empty())
            .collect()
    }

    #[test]
    fn drops_are_repeatable_and_about_the_asked_share() {
        assert_eq!(kept(30.0, 7), kept(30.0, 7));
        assert_ne!(kept(30.0, 7), kept(30.0, 8));
        let n_kept = kept(30.0, 7).iter().filter(|&&k| k).count();
        assert!((620..=780).contains(&n_kept), "{n_kept}");
        assert!(kept(0.0, 1).iter().all(|&k| k));
        assert!(kept(100.0, 1).iter().all(|&k| !k));
    }
}
