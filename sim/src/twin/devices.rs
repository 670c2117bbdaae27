//! Device sampling: each device due this step measures its patient (or
//! reports an event), shaped by its model's artifacts, battery, clock and
//! the faults scheduled on it; the messages go to the network system.

use std::collections::VecDeque;

use bevy_ecs::prelude::*;
use rand::RngExt;

use super::waves::DeviceSynth;
use super::{Buffered, Clock, Outbox, Transmit};
use crate::cgm::{CgmReading, CgmSensor};
use crate::config::{DeviceKind, FaultKind};
use crate::device::{
    self, Artifacts, Charge, Device, DeviceClock, DeviceError, NoiseRng, Power, Subject,
};
use crate::news2::Spo2Scale;
use crate::physiology::Body;
use crate::rng;
use crate::spec::DeviceSpec;
use crate::truth::{
    DeviceEvent, EventKind, Loss, LossCause, Measurement, Quality, Readings, StepOutput, TechAlarm,
};
use crate::vitals::Vitals;
use crate::waveform::Channel;

/// The device models in use, by [`Device::model`].
#[derive(Resource, Default)]
pub(super) struct Models(pub Vec<DeviceSpec>);

impl Models {
    /// The index of `spec`, adding it if new.
    pub(super) fn index_of(&mut self, spec: &DeviceSpec) -> u16 {
        match self.0.iter().position(|s| s == spec) {
            Some(i) => i as u16,
            None => {
                self.0.push(spec.clone());
                (self.0.len() - 1) as u16
            }
        }
    }
}

/// A fault scheduled on a device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct DeviceFault {
    pub kind: FaultKind,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Whether its one-off alarm (sensor off, occlusion) has gone out.
    pub raised: bool,
}

impl DeviceFault {
    fn covers(&self, now_ms: u64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// A device with faults scheduled, and its last readings (for a stuck value).
#[derive(Component)]
pub(super) struct Faulty {
    pub faults: Vec<DeviceFault>,
    pub last: Option<Readings>,
}

impl Faulty {
    fn active(&self, kind: FaultKind, now_ms: u64) -> Option<usize> {
        self.faults
            .iter()
            .position(|f| f.kind == kind && f.covers(now_ms))
    }
}

/// Messages a device keeps on board while disconnected, oldest first.
#[derive(Component, Default)]
pub(super) struct Memory(pub VecDeque<Measurement>);

/// A CGM's sensor, and whether it has said it expired.
#[derive(Component)]
pub(super) struct Sensor {
    pub cgm: CgmSensor,
    pub expiry_raised: bool,
}

/// A dispenser's or smart pill's dose schedule: the next scheduled dose,
/// and doses decided but not yet reported (report at, event).
#[derive(Component)]
pub(super) struct Doses {
    pub next_dose_ms: u64,
    pub pending: Vec<(u64, DeviceEvent)>,
}

/// The next time after `after_ms` (simulated) that falls on one of the
/// daily `times` (minutes after local midnight), local midnight being
/// `start_ms_of_day` before simulated time 0.
pub(super) fn next_daily(times: &[u32], start_ms_of_day: u64, after_ms: u64) -> u64 {
    const DAY: u64 = 86_400_000;
    let local = start_ms_of_day + after_ms;
    let midnight = local - local % DAY;
    times
        .iter()
        .flat_map(|&m| {
            let at = midnight + u64::from(m) * 60_000;
            [at, at + DAY]
        })
        .filter(|&at| at > local)
        .min()
        .map_or(u64::MAX, |at| at - start_ms_of_day)
}

/// Whether the patient takes the dose scheduled at `scheduled_ms`, and how
/// many minutes after the reminder. Drawn on a stream of the patient and
/// the dose, so a dispenser and a smart pill on one patient agree.
/// Delay: exponential, mean 10 min, within a 60-min window (design choice).
fn dose_decision(seed: u64, patient: u64, scheduled_ms: u64, adherence_pct: f64) -> Option<u64> {
    let mut rng = rng::stream(seed, patient, &format!("dose/{scheduled_ms}"));
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    let delay_min = (-(1.0 - v).ln() * 10.0).min(55.0);
    (u * 100.0 < adherence_pct).then_some((delay_min * 60_000.0) as u64)
}

/// Window after a scheduled dose after which a dispenser reports it missed.
const DOSE_WINDOW_MS: u64 = 60 * 60_000;
/// From swallowing to the ingestible sensor's report (design choice).
const INGESTION_REPORT_MS: u64 = 3 * 60_000;

/// Per-device mutable state the sampling system works on.
#[derive(bevy_ecs::query::QueryData)]
#[query_data(mutable)]
pub(super) struct DeviceParts {
    entity: Entity,
    device: &'static mut Device,
    error: &'static mut DeviceError,
    rng: &'static mut NoiseRng,
    clock: &'static DeviceClock,
    power: Option<&'static mut Power>,
    artifacts: Option<&'static mut Artifacts>,
    faulty: Option<&'static mut Faulty>,
    memory: Option<&'static mut Memory>,
    sensor: Option<&'static mut Sensor>,
    doses: Option<&'static mut Doses>,
    synth: Option<&'static mut DeviceSynth>,
}

/// What became of one sample.
enum Outcome {
    /// Nothing: the device had nothing to say (CGM warming up, no dose due).
    Nothing,
    /// Scheduled but not taken, and why.
    NotTaken(LossCause),
    /// A message.
    Message(Measurement),
}

#[allow(clippy::too_many_arguments)] // a system names everything it touches
pub(super) fn sample_devices(
    clock: Res<Clock>,
    models: Res<Models>,
    patients: Query<(&Vitals, &Body, &super::Patient)>,
    mut devices: Query<DeviceParts>,
    mut transmit: ResMut<Transmit>,
    mut buffered: ResMut<Buffered>,
    mut out: ResMut<Outbox>,
) {
    let now = clock.now_ms;
    let out = &mut out.0;
    // Once a step, not once a device.
    let asleep = clock.daytime().sleep;
    for mut d in &mut devices {
        let spec = &models.0[usize::from(d.device.model)];
        // A reconnected device sends what it kept on board.
        let disconnected = d
            .faulty
            .as_ref()
            .is_some_and(|f| f.active(FaultKind::Disconnect, now).is_some());
        if !disconnected && let Some(memory) = d.memory.as_mut() {
            for m in memory.0.drain(..) {
                buffered.0 -= 1;
                transmit.0.push((d.entity, m));
            }
        }
        if d.device.next_ms > now {
            continue;
        }
        let Ok((truth, body, patient)) = patients.get(d.device.patient) else {
            continue;
        };
        d.device.next_ms = if spec.scheduled() {
            next_daily(&spec.times, clock.start_ms_of_day, now)
        } else {
            d.device.next_ms + d.device.every_ms
        };
        let outcome = sample(&mut d, spec, truth, body, patient, &clock, asleep);
        let seq = d.device.seq;
        match outcome {
            Outcome::Nothing => continue,
            Outcome::NotTaken(cause) => {
                // Scheduled but never taken: counted, with why, never sent.
                out.measurements.push(unsent(&d.device, seq, now));
                out.losses.push(Loss {
                    device_idx: d.device.idx,
                    seq,
                    lost_ms: now,
                    cause,
                });
            }
            Outcome::Message(m) => {
                out.measurements.push(m);
                if disconnected {
                    keep_on_board(&mut d, spec, m, now, &mut buffered.0, out);
                } else {
                    transmit.0.push((d.entity, m));
                }
            }
        }
        d.device.seq += 1;
    }
}

/// The record of a measurement that was due but never taken.
fn unsent(device: &Device, seq: u64, now: u64) -> Measurement {
    Measurement {
        device_idx: device.idx,
        patient_idx: device.patient_idx,
        kind: device.kind,
        seq,
        measured_ms: now,
        device_time: crate::truth::DeviceTime::Synced(now as i64),
        readings: Readings::new(&[]),
        quality: Quality::Good,
        alarm: None,
        event: None,
    }
}

/// Keeps a message on a disconnected device, dropping the oldest when the
/// on-board memory is full (or the message itself when there is none).
fn keep_on_board(
    d: &mut DevicePartsItem<'_, '_>,
    spec: &DeviceSpec,
    m: Measurement,
    now: u64,
    buffered: &mut u64,
    out: &mut StepOutput,
) {
    let lose = |m: &Measurement, out: &mut StepOutput| {
        out.losses.push(Loss {
            device_idx: m.device_idx,
            seq: m.seq,
            lost_ms: now,
            cause: LossCause::Disconnected,
        });
    };
    let Some(memory) = d.memory.as_mut() else {
        lose(&m, out);
        return;
    };
    if spec.memory == 0 {
        lose(&m, out);
        return;
    }
    if memory.0.len() >= spec.memory as usize
        && let Some(old) = memory.0.pop_front()
    {
        *buffered -= 1;
        lose(&old, out);
    }
    memory.0.push_back(m);
    *buffered += 1;
}

/// One due sample of one device.
fn sample(
    d: &mut DevicePartsItem<'_, '_>,
    spec: &DeviceSpec,
    truth: &Vitals,
    body: &Body,
    patient: &super::Patient,
    clock: &Clock,
    asleep: f64,
) -> Outcome {
    let now = clock.now_ms;
    let fault =
        |d: &DevicePartsItem<'_, '_>, kind| d.faulty.as_ref().and_then(|f| f.active(kind, now));
    let reset_at = fault(d, FaultKind::ClockReset)
        .and_then(|i| d.faulty.as_ref().map(|f| f.faults[i].start_ms));
    let mut m = Measurement {
        device_idx: d.device.idx,
        patient_idx: d.device.patient_idx,
        kind: d.device.kind,
        seq: d.device.seq,
        measured_ms: now,
        device_time: d.clock.time(now, reset_at),
        readings: Readings::new(&[]),
        quality: Quality::Good,
        alarm: None,
        event: None,
    };

    // Power first: a dead battery takes nothing.
    if fault(d, FaultKind::BatteryDead).is_some() {
        return Outcome::NotTaken(LossCause::BatteryDead);
    }
    if let (Some(power), Some(battery)) = (d.power.as_mut(), spec.battery.as_ref()) {
        if power.dead() {
            return Outcome::NotTaken(LossCause::BatteryDead);
        }
        match power.drain(battery, now) {
            Charge::Dead => return Outcome::NotTaken(LossCause::BatteryDead),
            Charge::JustLow => m.alarm = Some(TechAlarm::LowBattery),
            Charge::Ok => {}
        }
    }
    // A sensor off the patient says so once, then takes nothing.
    if let Some(i) = fault(d, FaultKind::SensorOff)
        && let Some(faulty) = d.faulty.as_mut()
    {
        if faulty.faults[i].raised {
            return Outcome::NotTaken(LossCause::SensorOff);
        }
        faulty.faults[i].raised = true;
        m.alarm = Some(TechAlarm::SensorOff);
        return Outcome::Message(m);
    }

    match spec.class {
        DeviceKind::MedDispenser | DeviceKind::SmartPill => {
            return dose_event(d, spec, patient, clock, m);
        }
        DeviceKind::Cgm => {
            let Some(sensor) = d.sensor.as_mut() else {
                return Outcome::Nothing;
            };
            let reading = sensor
                .cgm
                .read(&spec.cgm, now, truth.glucose_mgdl, asleep, &mut d.rng.0);
            match reading {
                CgmReading::WarmingUp => return Outcome::Nothing,
                CgmReading::Expired => {
                    // Says so once (the alarm takes the first missing reading's place).
                    if sensor.expiry_raised {
                        return Outcome::NotTaken(LossCause::SensorExpired);
                    }
                    sensor.expiry_raised = true;
                    m.alarm = Some(TechAlarm::SensorExpired);
                    return Outcome::Message(m);
                }
                CgmReading::Value { mgdl, compression } => {
                    m.readings = Readings::new(&[crate::truth::Reading {
                        vital: crate::vitals::Vital::Glucose,
                        value: mgdl,
                    }]);
                    if compression {
                        m.quality = Quality::Compression;
                    }
                }
            }
        }
        _ => {
            let subject = Subject {
                weight_kg: f64::from(body.traits.weight_kg),
                // The scale prescribed for the patient (profile traits),
                // what a nurse-observation round charts.
                spo2_scale: if body.traits.spo2_scale == 2 {
                    Spo2Scale::Scale2
                } else {
                    Spo2Scale::Scale1
                },
            };
            let rng = &mut d.rng.0;
            m.readings =
                device::measure(spec, truth, subject, &mut d.error, d.device.every_ms, rng);
            let (motion, lead_off) = match d.artifacts.as_mut() {
                Some(a) => (
                    a.motion.active(&spec.motion, now, 1.0 - 0.8 * asleep, rng),
                    a.lead_off.active(&spec.lead_off, now, 1.0, rng),
                ),
                None => (false, false),
            };
            if let Some(alarm) = device::pulseless(spec, truth) {
                m.readings = Readings::new(&[]);
                m.quality = Quality::LowPerfusion;
                m.alarm = m.alarm.or(Some(alarm));
            } else if device::low_perfusion(spec, truth) {
                m.readings = Readings::new(&[]);
                m.quality = Quality::LowPerfusion;
                m.alarm = m.alarm.or(Some(TechAlarm::LowPerfusion));
            } else if lead_off {
                m.readings = Readings::new(&[]);
                m.quality = Quality::LeadOff;
                m.alarm = m.alarm.or(Some(TechAlarm::LeadOff));
            } else if let Some(synth) = d
                .synth
                .as_ref()
                .filter(|s| s.0.config().channels.contains(&Channel::EcgII))
            {
                // A waveform device counts its own QRS complexes: motion
                // shows in the waveform (and fools the count), not here.
                counted_rate(&mut m.readings, synth.0.hr_bpm());
                if motion {
                    m.quality = Quality::Motion;
                }
            } else if motion && device::motion_artifact(spec.class, &mut m.readings, rng) {
                m.quality = Quality::Motion;
            }
            if let Some(synth) = d.synth.as_mut() {
                // The next waveform block shows what the device just saw.
                synth.0.lead_off = lead_off;
                synth.0.motion = motion;
            }
            if spec.class == DeviceKind::InfusionPump
                && let Some(i) = fault(d, FaultKind::Occlusion)
                && let Some(faulty) = d.faulty.as_mut()
            {
                // The pump stops; it alarms once pressure has built up.
                m.readings = Readings::new(&[crate::truth::Reading {
                    vital: crate::vitals::Vital::InfusionRate,
                    value: 0.0,
                }]);
                let f = &mut faulty.faults[i];
                if !f.raised && now >= f.start_ms.saturating_add(spec.alarm_delay_ms) {
                    f.raised = true;
                    m.alarm = Some(TechAlarm::Occlusion);
                }
            }
        }
    }

    // Firmware faults act on whatever was measured.
    if let Some(faulty) = d.faulty.as_mut() {
        if faulty.active(FaultKind::StuckValue, now).is_some() {
            if let Some(last) = faulty.last {
                m.readings = last;
                m.quality = Quality::Stuck;
            }
        } else if !m.readings.is_empty() {
            faulty.last = Some(m.readings);
        }
        if faulty.active(FaultKind::WrongUnit, now).is_some() && !m.readings.is_empty() {
            device::wrong_unit(&mut m.readings);
            m.quality = Quality::WrongUnit;
        }
    }
    Outcome::Message(m)
}

/// A waveform device's heart rate: what its QRS detector counted
/// (rounded to 1 /min), or no heart rate before it has counted two beats.
fn counted_rate(readings: &mut Readings, counted: Option<f64>) {
    let mut kept = [crate::truth::Reading {
        vital: crate::vitals::Vital::Hr,
        value: 0.0,
    }; 3];
    let mut n = 0;
    for r in readings.as_slice() {
        if r.vital == crate::vitals::Vital::Hr {
            let Some(rate) = counted else { continue };
            kept[n] = crate::truth::Reading {
                vital: r.vital,
                value: rate.round(),
            };
        } else {
            kept[n] = *r;
        }
        n += 1;
    }
    *readings = Readings::new(&kept[..n]);
}

/// A dispenser's or smart pill's wake-up: decide the doses now due, then
/// report the earliest decided event that is due (one message per step).
fn dose_event(
    d: &mut DevicePartsItem<'_, '_>,
    spec: &DeviceSpec,
    patient: &super::Patient,
    clock: &Clock,
    mut m: Measurement,
) -> Outcome {
    let now = clock.now_ms;
    let Some(doses) = d.doses.as_mut() else {
        return Outcome::Nothing;
    };
    while doses.next_dose_ms <= now {
        let scheduled = doses.next_dose_ms;
        let taken = dose_decision(clock.seed, patient.stable_id, scheduled, spec.adherence_pct);
        let event = |kind| DeviceEvent {
            kind,
            scheduled_ms: scheduled,
        };
        match (spec.class, taken) {
            (DeviceKind::MedDispenser, Some(delay)) => doses
                .pending
                .push((scheduled + delay, event(EventKind::DoseTaken))),
            (DeviceKind::MedDispenser, None) => doses
                .pending
                .push((scheduled + DOSE_WINDOW_MS, event(EventKind::DoseMissed))),
            (_, Some(delay)) => doses.pending.push((
                scheduled + delay + INGESTION_REPORT_MS,
                event(EventKind::PillIngested),
            )),
            (_, None) => {}
        }
        doses.next_dose_ms = next_daily(&spec.times, clock.start_ms_of_day, scheduled);
    }
    doses.pending.sort_by_key(|(at, _)| *at);
    let due = doses.pending.first().is_some_and(|(at, _)| *at <= now);
    let message = if due {
        let (_, event) = doses.pending.remove(0);
        m.event = Some(event);
        Outcome::Message(m)
    } else {
        Outcome::Nothing
    };
    // Wake for the next dose or the next report, whichever comes first.
    let next_report = doses.pending.first().map_or(u64::MAX, |(at, _)| *at);
    d.device.next_ms = doses.next_dose_ms.min(next_report).max(now + 1);
    message
}
