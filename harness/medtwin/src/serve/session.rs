//! The session's twin thread: steps the twin when each step falls due on
//! the session's [`Pace`], takes the instructor's and trainees' commands
//! into the twin's bounded queue between steps (the one way in), feeds the
//! ward and the live feeds, and hands each step's deliveries to the
//! transport (towards the embedded backend or the backend under test).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use medtwin_sim::{Command, StepOutput, Twin};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::bus::Bus;
use super::pace::Pace;
use super::ward::{Changes, Ward};
use crate::stop::Stop;
use crate::transport::{Encoder, MessageKind, Outgoing};

/// Commands waiting for the twin thread at most (each then goes into the
/// twin's own bounded queue); more are refused with 503 and counted.
pub const REQUESTS_PENDING: usize = 64;
/// Steps of deliveries waiting for the transport at most.
pub const STEPS_PENDING: usize = 64;
/// Shortest wall time between two ward ticks on the feed.
const TICK_EVERY: Duration = Duration::from_millis(200);
/// Longest the twin thread sleeps before looking at its inputs again.
const NAP: Duration = Duration::from_millis(20);

/// A command for the twin, with who asked and where the answer goes.
pub struct Request {
    /// Simulated ms it applies at (`None`: now; never earlier than now).
    pub at_ms: Option<u64>,
    /// The command.
    pub command: Command,
    /// `instructor`, `trainee` or `cue`.
    pub actor: String,
    /// The simulated ms it was queued for, or why the twin refused it.
    pub reply: oneshot::Sender<Result<u64, String>>,
}

/// What the threads and handlers of a session share.
pub struct Shared {
    /// The ward.
    pub ward: Mutex<Ward>,
    /// Ward events (ticks, alarms, log): resumable.
    pub events: Bus,
    /// Waveform blocks (live only).
    pub waves: Bus,
    /// The session's clock.
    pub pace: Pace,
    /// The twin's step, simulated ms.
    pub step_ms: u64,
    /// The scenario's length, simulated ms.
    pub duration_ms: u64,
    /// Scenario name.
    pub scenario: String,
    /// Run id (the report folder's name).
    pub run_id: String,
    /// Whether the twin reached the scenario's end.
    pub finished: AtomicBool,
    /// Steps run.
    pub steps: AtomicU64,
    /// Commands refused before reaching the twin (its inbox full).
    pub busy: AtomicU64,
    /// Waveform viewers per bed, and of every bed: a block is built only
    /// when someone watches its bed.
    pub watching: Vec<AtomicU32>,
    /// Viewers of every bed's waveforms.
    pub watching_all: AtomicU32,
}

impl Shared {
    /// The viewer counter of `bed` (`None`: of every bed); `None` for a
    /// bed the ward does not have.
    pub fn watching_counter(&self, bed: Option<u32>) -> Option<&AtomicU32> {
        match bed {
            None => Some(&self.watching_all),
            Some(b) => self.watching.get(b as usize),
        }
    }

    /// The ward, locked (a panicked holder leaves it usable: it holds no
    /// invariant a half-done update breaks beyond one step's display).
    pub fn ward(&self) -> std::sync::MutexGuard<'_, Ward> {
        self.ward.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes what changed.
    pub fn publish(&self, changes: Changes) {
        for alarm in changes.alarms {
            let data = serde_json::to_string(&alarm).unwrap_or_default();
            self.events.publish("alarm", Some(alarm.bed), data);
        }
        for entry in changes.log {
            let data = serde_json::to_string(&entry).unwrap_or_default();
            self.events.publish("log", None, data);
        }
    }

    /// Publishes the ward's tick: clock and every bed by acuity.
    pub fn publish_tick(&self) {
        let data = {
            let ward = self.ward();
            serde_json::to_string(&Tick {
                t: ward.now_ms,
                clock: self.pace.view(),
                finished: self.finished.load(Ordering::Relaxed),
                audio_paused_until: ward.audio_paused_until_ms,
                beds: ward.beds_by_acuity(),
            })
            .unwrap_or_default()
        };
        self.events.publish("tick", None, data);
    }
}

/// The ward's tick event.
#[derive(Serialize)]
struct Tick<'a> {
    t: u64,
    clock: super::pace::PaceView,
    finished: bool,
    audio_paused_until: Option<u64>,
    beds: Vec<super::ward::BedView<'a>>,
}

/// A block of one device's waveforms on the feed: samples as integers
/// (µV for the ECG, thousandths for pleth and respiration), so a second
/// of three channels at 250 Hz is a few kB of JSON.
#[derive(Serialize)]
struct WaveEvent<'a> {
    bed: u32,
    device: u32,
    rate: u32,
    first: u64,
    lead_off: bool,
    ch: Vec<(&'a str, Vec<i32>)>,
}

/// Runs the twin until `stop`; `out` takes each step's deliveries.
pub fn run(
    mut twin: Twin,
    encoder: &impl Encoder,
    shared: &Shared,
    mut requests: mpsc::Receiver<Request>,
    out: mpsc::Sender<Vec<Outgoing>>,
    stop: &Stop,
) {
    let mut last_tick = Instant::now() - TICK_EVERY;
    let channels: Vec<(u32, Vec<&'static str>)> = (0..twin.device_names().len() as u32)
        .map(|d| {
            twin.waveform(d)
                .map(|w| (w.rate_hz, w.channels.iter().map(|c| c.name()).collect()))
                .unwrap_or_default()
        })
        .collect();
    while !stop.is_stopped() {
        while let Ok(request) = requests.try_recv() {
            let at_ms = request.at_ms.unwrap_or(0).max(twin.now_ms());
            let answer = twin
                .push_command(at_ms, request.command.clone())
                .map(|()| at_ms)
                .map_err(|e| e.to_string());
            {
                let mut ward = shared.ward();
                if answer.is_ok() {
                    ward.queued(&request.command, at_ms, &request.actor);
                    ward.counters.commands_queued += 1;
                } else {
                    ward.counters.commands_refused += 1;
                }
            }
            let _ = request.reply.send(answer);
        }
        if twin.finished() {
            if !shared.finished.swap(true, Ordering::Relaxed) {
                shared.publish_tick();
            }
            std::thread::sleep(NAP);
            continue;
        }
        let next_ms = twin.now_ms() + shared.step_ms;
        match shared.pace.due(next_ms) {
            None => {
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    shared.publish_tick();
                    last_tick = Instant::now();
                }
                std::thread::sleep(NAP);
                continue;
            }
            Some(due) => {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep((due - now).min(NAP));
                    continue;
                }
            }
        }
        let step: &StepOutput = twin.step();
        shared.steps.fetch_add(1, Ordering::Relaxed);
        let mut changes = Changes::default();
        shared.ward().step(step, &mut changes);
        shared.publish(changes);
        if shared.waves.has_subscribers() {
            publish_waves(shared, step, &channels);
        }
        if !step.deliveries.is_empty() {
            let batch: Vec<Outgoing> = step
                .deliveries
                .iter()
                .map(|d| {
                    let mut body = Vec::with_capacity(256);
                    encoder.encode(&d.measurement, &mut body);
                    Outgoing {
                        id: 0,
                        patient_idx: d.measurement.patient_idx,
                        device_idx: d.measurement.device_idx,
                        delivered_ms: d.delivered_ms,
                        body,
                        kind: MessageKind::Measurement,
                        hold: None,
                    }
                })
                .collect();
            if out.blocking_send(batch).is_err() {
                break;
            }
        }
        shared.pace.hold_back(twin.now_ms());
        if last_tick.elapsed() >= TICK_EVERY {
            shared.publish_tick();
            last_tick = Instant::now();
        }
    }
}

fn publish_waves(shared: &Shared, step: &StepOutput, channels: &[(u32, Vec<&'static str>)]) {
    for block in &step.waves {
        let watched = shared.watching_all.load(Ordering::Relaxed) > 0
            || shared
                .watching
                .get(block.patient_idx as usize)
                .is_some_and(|w| w.load(Ordering::Relaxed) > 0);
        let Some((rate, names)) = channels.get(block.device_idx as usize) else {
            continue;
        };
        if !watched {
            continue;
        }
        let ch = names
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let samples = block.channel(&step.wave_samples, c);
                (
                    *name,
                    samples
                        .iter()
                        .map(|v| (v * 1000.0).round() as i32)
                        .collect(),
                )
            })
            .collect();
        let event = WaveEvent {
            bed: block.patient_idx,
            device: block.device_idx,
            rate: *rate,
            first: block.first_sample,
            lead_off: block.lead_off,
            ch,
        };
        let data = serde_json::to_string(&event).unwrap_or_default();
        shared.waves.publish("wave", Some(block.patient_idx), data);
    }
}
