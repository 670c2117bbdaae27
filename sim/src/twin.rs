//! The twin itself: a bevy_ecs `World` stepped by a single-threaded
//! `Schedule` whose systems run in a fixed order every step:
//! conditions → physiology → device sampling → network → truth.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::config::{DeviceKind, SimConfig};
use crate::device::{self, Device, DeviceError, NoiseRng};
use crate::error::ConfigError;
use crate::network::{InFlight, Link, NetRng};
use crate::physiology::{self, Conditions, Episode, StepFactors};
use crate::rng::{self, StreamRng};
use crate::truth::{Delivery, EpisodeOnset, Loss, LossCause, Measurement, StepOutput};
use crate::vitals::{Baseline, Vitals};

/// Simulated time.
#[derive(Resource)]
struct Clock {
    now_ms: u64,
    step_ms: u64,
    factors: StepFactors,
}

/// The records of the current step.
#[derive(Resource, Default)]
struct Outbox(StepOutput);

/// Measurements taken this step, waiting for the network system.
#[derive(Resource, Default)]
struct Transmit(Vec<(Entity, Measurement)>);

/// A patient.
#[derive(Component)]
struct Patient {
    idx: u32,
}

/// The patient's physiology stream.
#[derive(Component)]
struct PatientRng(StreamRng);

/// Running totals over the whole run: every measurement ends up in exactly
/// one of delivered, lost or in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Measurements taken.
    pub generated: u64,
    /// Measurements that reached the backend's edge.
    pub delivered: u64,
    /// Measurements the network lost.
    pub lost_link: u64,
    /// Measurements still on the wire.
    pub in_flight: u64,
}

impl Accounting {
    /// All losses, whatever the cause.
    pub fn lost(&self) -> u64 {
        self.lost_link
    }
}

/// A running simulation.
pub struct Twin {
    world: World,
    schedule: Schedule,
    duration_ms: u64,
    patients: Vec<Entity>,
    patient_names: Vec<String>,
    device_names: Vec<String>,
    device_kinds: Vec<DeviceKind>,
    accounting: Accounting,
}

impl Twin {
    /// Builds the population and schedule for `config`.
    pub fn new(config: &SimConfig) -> Result<Twin, ConfigError> {
        config.check()?;
        let mut world = World::new();
        world.insert_resource(Clock {
            now_ms: 0,
            step_ms: config.step_ms,
            factors: StepFactors::new(config.step_ms),
        });
        world.init_resource::<Outbox>();
        world.init_resource::<Transmit>();
        world.init_resource::<InFlight>();

        let mut twin = Twin {
            world,
            schedule: build_schedule(),
            duration_ms: config.duration_ms,
            patients: Vec::new(),
            patient_names: Vec::new(),
            device_names: Vec::new(),
            device_kinds: Vec::new(),
            accounting: Accounting::default(),
        };
        // Index of each cohort's first patient in the flat patient table.
        let mut cohort_start = Vec::with_capacity(config.cohorts.len());
        let mut n_patients = 0usize;
        for cohort in &config.cohorts {
            cohort_start.push(n_patients);
            n_patients += cohort.count as usize;
        }
        let mut conditions = vec![Conditions::default(); n_patients];
        for (i, event) in config.events.iter().enumerate() {
            let who = &event.who;
            let mut chosen: Vec<u32> = (who.first..who.end).collect();
            if let Some(pick) = who.pick {
                // Partial Fisher-Yates on the event's own stream.
                let mut rng =
                    rng::stream(config.seed, rng::stable_id(&format!("event/{i}")), "pick");
                let pick = (pick as usize).min(chosen.len());
                for k in 0..pick {
                    let j = rng.random_range(k..chosen.len());
                    chosen.swap(k, j);
                }
                chosen.truncate(pick);
                chosen.sort_unstable();
            }
            for index in chosen {
                conditions[cohort_start[who.cohort] + index as usize]
                    .episodes
                    .push(Episode {
                        kind: event.condition,
                        onset_ms: event.at_ms,
                        severity: event.severity,
                        ramp_ms: event.ramp_ms,
                        started: false,
                    });
            }
        }
        for (c, cohort) in config.cohorts.iter().enumerate() {
            let link = twin.world.spawn(Link::new(&cohort.network)).id();
            for index in 0..cohort.count {
                let slot = cohort_start[c] + index as usize;
                twin.spawn_patient(
                    config,
                    c,
                    index,
                    link,
                    std::mem::take(&mut conditions[slot]),
                );
            }
        }
        Ok(twin)
    }

    fn spawn_patient(
        &mut self,
        config: &SimConfig,
        cohort_idx: usize,
        index: u32,
        link: Entity,
        conditions: Conditions,
    ) {
        let cohort = &config.cohorts[cohort_idx];
        let name = format!("{}-{index:03}", cohort.name);
        let stable = rng::stable_id(&name);
        let patient_idx = self.patients.len() as u32;
        let mut rng = rng::stream(config.seed, stable, "vitals");
        let baseline = cohort.profile.sample_baseline(&mut rng);
        let mut state = baseline.0;
        // Start at the stationary spread rather than exactly on the baseline.
        let z: f64 = StandardNormal.sample(&mut rng);
        state.hr_bpm += 2.5 * z;
        state.clamp_physical();
        let patient = self
            .world
            .spawn((
                Patient { idx: patient_idx },
                baseline,
                state,
                conditions,
                PatientRng(rng),
            ))
            .id();
        self.patients.push(patient);

        for (d, device) in cohort.devices.iter().enumerate() {
            // A second device of the same kind on one patient is `<kind>-2`.
            let nth = cohort.devices[..d]
                .iter()
                .filter(|other| other.kind == device.kind)
                .count();
            let device_name = match nth {
                0 => format!("{name}/{}", device.kind.name()),
                n => format!("{name}/{}-{}", device.kind.name(), n + 1),
            };
            let device_stable = rng::stable_id(&device_name);
            let mut noise = rng::stream(config.seed, device_stable, "noise");
            let error = DeviceError::new(device.kind, &mut noise);
            // Stagger devices: a ward's cuffs do not all inflate at once.
            let phase_steps =
                noise.random_range(0..device.every_ms.div_ceil(config.step_ms).max(1));
            let idx = self.device_names.len() as u32;
            self.world.spawn((
                Device {
                    idx,
                    stable_id: device_stable,
                    patient,
                    patient_idx,
                    link,
                    kind: device.kind,
                    every_ms: device.every_ms,
                    next_ms: phase_steps * config.step_ms,
                    seq: 0,
                },
                error,
                NoiseRng(noise),
                NetRng(rng::stream(config.seed, device_stable, "net")),
            ));
            self.device_names.push(device_name);
            self.device_kinds.push(device.kind);
        }
        self.patient_names.push(name);
    }

    /// Advances one step and returns what happened in it.
    pub fn step(&mut self) -> &StepOutput {
        self.schedule.run(&mut self.world);
        let out = &self.world.resource::<Outbox>().0;
        let acc = &mut self.accounting;
        acc.generated += out.measurements.len() as u64;
        acc.delivered += out.deliveries.len() as u64;
        acc.lost_link += out
            .losses
            .iter()
            .filter(|l| l.cause == LossCause::LinkLoss)
            .count() as u64;
        acc.in_flight = self.world.resource::<InFlight>().len() as u64;
        debug_assert_eq!(acc.generated, acc.delivered + acc.lost() + acc.in_flight);
        out
    }

    /// Simulated time at the end of the last step, ms.
    pub fn now_ms(&self) -> u64 {
        self.world.resource::<Clock>().now_ms
    }

    /// Whether the configured duration has been simulated.
    pub fn finished(&self) -> bool {
        self.now_ms() >= self.duration_ms
    }

    /// Totals so far.
    pub fn accounting(&self) -> Accounting {
        self.accounting
    }

    /// Patient names, by patient index (`<cohort>-<index:03>`).
    pub fn patient_names(&self) -> &[String] {
        &self.patient_names
    }

    /// Device names, by device index (`<patient>/<kind>`).
    pub fn device_names(&self) -> &[String] {
        &self.device_names
    }

    /// Device kinds, by device index.
    pub fn device_kinds(&self) -> &[DeviceKind] {
        &self.device_kinds
    }

    /// The true current state of a patient.
    pub fn vitals(&self, patient_idx: u32) -> Option<Vitals> {
        let entity = *self.patients.get(patient_idx as usize)?;
        self.world.get::<Vitals>(entity).copied()
    }
}

fn build_schedule() -> Schedule {
    let mut schedule = Schedule::default();
    schedule.set_executor(SingleThreadedExecutor::new());
    schedule.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: LogLevel::Error,
        ..Default::default()
    });
    schedule.add_systems(
        (
            begin_step,
            start_conditions,
            advance_physiology,
            sample_devices,
            transmit,
            finish_step,
        )
            .chain(),
    );
    schedule
}

fn begin_step(mut clock: ResMut<Clock>, mut out: ResMut<Outbox>) {
    clock.now_ms += clock.step_ms;
    out.0.clear();
    out.0.now_ms = clock.now_ms;
}

fn start_conditions(
    clock: Res<Clock>,
    mut patients: Query<(&Patient, &mut Conditions)>,
    mut out: ResMut<Outbox>,
) {
    for (patient, mut conditions) in &mut patients {
        // Only touch the component (and its change tick) when something starts.
        if !conditions
            .episodes
            .iter()
            .any(|e| !e.started && e.onset_ms <= clock.now_ms)
        {
            continue;
        }
        for episode in conditions
            .episodes
            .iter_mut()
            .filter(|e| !e.started && e.onset_ms <= clock.now_ms)
        {
            episode.started = true;
            out.0.onsets.push(EpisodeOnset {
                patient_idx: patient.idx,
                condition: episode.kind,
                onset_ms: episode.onset_ms,
                severity: episode.severity,
                ramp_ms: episode.ramp_ms,
            });
        }
    }
}

fn advance_physiology(
    clock: Res<Clock>,
    mut patients: Query<(&Baseline, &Conditions, &mut Vitals, &mut PatientRng)>,
) {
    for (baseline, conditions, mut vitals, mut rng) in &mut patients {
        let target = physiology::target(&baseline.0, conditions, clock.now_ms);
        physiology::advance(&mut vitals, &target, &clock.factors, &mut rng.0);
    }
}

fn sample_devices(
    clock: Res<Clock>,
    patients: Query<&Vitals>,
    mut devices: Query<(Entity, &mut Device, &mut DeviceError, &mut NoiseRng)>,
    mut transmit: ResMut<Transmit>,
    mut out: ResMut<Outbox>,
) {
    let now_ms = clock.now_ms;
    for (entity, mut device, mut error, mut rng) in &mut devices {
        if device.next_ms > now_ms {
            continue;
        }
        let Ok(truth) = patients.get(device.patient) else {
            continue;
        };
        let readings = device::measure(device.kind, truth, &mut error, device.every_ms, &mut rng.0);
        let measurement = Measurement {
            device_idx: device.idx,
            patient_idx: device.patient_idx,
            kind: device.kind,
            seq: device.seq,
            measured_ms: now_ms,
            readings,
        };
        device.seq += 1;
        device.next_ms += device.every_ms;
        out.0.measurements.push(measurement);
        transmit.0.push((entity, measurement));
    }
}

fn transmit(
    clock: Res<Clock>,
    links: Query<&Link>,
    mut devices: Query<(&Device, &mut NetRng)>,
    mut pending: ResMut<Transmit>,
    mut in_flight: ResMut<InFlight>,
    mut out: ResMut<Outbox>,
) {
    for (entity, measurement) in pending.0.drain(..) {
        let Ok((device, mut rng)) = devices.get_mut(entity) else {
            continue;
        };
        let Ok(link) = links.get(device.link) else {
            continue;
        };
        match link.transmit(&mut rng.0) {
            Some(latency_ms) => in_flight.push(
                measurement,
                device.stable_id,
                measurement.measured_ms + latency_ms,
            ),
            None => out.0.losses.push(Loss {
                device_idx: device.idx,
                seq: measurement.seq,
                lost_ms: measurement.measured_ms,
                cause: LossCause::LinkLoss,
            }),
        }
    }
    while let Some((measurement, delivered_ms)) = in_flight.pop_due(clock.now_ms) {
        out.0.deliveries.push(Delivery {
            measurement,
            delivered_ms,
        });
    }
}

/// Puts the step's records in a total order that does not depend on query
/// iteration order (deliveries already come out of the heap ordered).
fn finish_step(mut out: ResMut<Outbox>) {
    let out = &mut out.0;
    out.onsets
        .sort_by_key(|o| (o.onset_ms, o.patient_idx, o.condition));
    out.measurements
        .sort_by_key(|m| (m.measured_ms, m.device_idx));
    out.losses.sort_by_key(|l| (l.lost_ms, l.device_idx, l.seq));
}
