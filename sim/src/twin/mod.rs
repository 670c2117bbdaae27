//! The twin itself: a bevy_ecs `World` stepped by a single-threaded
//! `Schedule` whose systems run in a fixed order every step:
//! conditions → physiology → device sampling → network → truth.

mod devices;
mod net;
mod waves;

use std::collections::{BTreeMap, BTreeSet};

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings};
use rand::RngExt;

use crate::cgm::CgmSensor;
use crate::clinical::{ConditionKind, InterventionKind};
use crate::command::{COMMAND_CAPACITY, Command, CommandError, CommandQueue, Roster};
use crate::config::{DeviceConfig, DeviceKind, Eviction, FaultKind, PatientSelector, SimConfig};
use crate::device::{Artifacts, Device, DeviceClock, DeviceError, NoiseRng, Power};
use crate::error::ConfigError;
use crate::glucose::{self, Drive, GlucoseParams, GlucoseState, Metabolism};
use crate::network::{Channel, Gateway, InFlight, Link, NetRng};
use crate::physiology::{
    self, Body, Course, Daytime, Episode, Given, O2Store, StepFactors, Variation,
};
use crate::profile::Meal;
use crate::rng::{self, StreamRng};
use crate::scores::{CriteriaState, CriterionEvent};
use crate::spec::DeviceSpec;
use crate::truth::{
    Change, CommandApplied, CriterionOnset, EndReason, EpisodeEnd, EpisodeOnset, InterventionGiven,
    LossCause, Measurement, StateChange, StepOutput,
};
use crate::vitals::{Rhythm, Vitals};
use devices::{DeviceFault, Doses, Faulty, Memory, Models, Sensor, sample_devices};
use net::transmit;
use waves::{DeviceSynth, PatientHeart, synthesize_waveforms};

use crate::waveform::{Heart, Synth, WaveformConfig};

/// Simulated time and what every patient shares in a step.
#[derive(Resource)]
struct Clock {
    now_ms: u64,
    step_ms: u64,
    seed: u64,
    start_ms_of_day: u64,
    factors: StepFactors,
}

impl Clock {
    fn daytime(&self) -> Daytime {
        Daytime::at(self.start_ms_of_day + self.now_ms)
    }

    /// Whole simulated minutes completed by the end of this step, and by the
    /// end of the previous one.
    fn minutes(&self) -> (u64, u64) {
        ((self.now_ms - self.step_ms) / 60_000, self.now_ms / 60_000)
    }
}

/// Per-cohort data every patient of the cohort shares.
#[derive(Resource, Default)]
struct Cohorts(Vec<CohortShared>);

struct CohortShared {
    hr_sd: f32,
}

/// Stable ids by patient and device index: records within a step are
/// ordered by these, not by index, so a shard's records come out in the
/// order the unsharded run gives them.
#[derive(Resource, Default)]
struct StableOrder {
    patients: Vec<u64>,
    devices: Vec<u64>,
}

/// The records of the current step.
#[derive(Resource, Default)]
struct Outbox(StepOutput);

/// Commands applied before this step's systems ran, in (time, arrival)
/// order, for `finish_step` to put in the step's records.
#[derive(Resource, Default)]
struct AppliedCommands(Vec<CommandApplied>);

/// Measurements taken this step, waiting for the network system.
#[derive(Resource, Default)]
struct Transmit(Vec<(Entity, Measurement)>);

/// A patient.
#[derive(Component)]
struct Patient {
    idx: u32,
    stable_id: u64,
    cohort: u16,
}

/// What patients without a `Course` component have had: nothing.
static NO_COURSE: Course = Course::NONE;

/// The patient's glucose-insulin model.
#[derive(Component)]
struct Metabolic {
    params: GlucoseParams,
    state: GlucoseState,
}

/// The patient's own daily meals: the profile's, each at a time and of a
/// size drawn once for the patient (see [`own_meals`]). Only on patients
/// whose profile has meals.
#[derive(Component)]
struct Meals(Box<[Meal]>);

/// Largest shift of a patient's meal from the profile's time, minutes
/// (docs/references.md §Glucose model, meal variety: *design choice*).
const MEAL_SHIFT_MAX_MIN: i64 = 30;

/// A patient's meals are 80-120 % of the profile's size (docs/references.md
/// §Glucose model, meal variety: *design choice*).
const MEAL_SIZE_SPREAD: f64 = 0.2;

/// The profile's meals as one patient eats them: each shifted by a time
/// drawn uniformly within ±[`MEAL_SHIFT_MAX_MIN`] and scaled by a factor
/// within 1 ± [`MEAL_SIZE_SPREAD`], from the patient's own `meals` stream
/// (seeded per patient, so no other patient's meals depend on it).
fn own_meals(meals: &[Meal], seed: u64, stable_id: u64) -> Box<[Meal]> {
    let mut rng = rng::stream(seed, stable_id, "meals");
    meals
        .iter()
        .map(|meal| {
            let shift = rng.random_range(-MEAL_SHIFT_MAX_MIN..=MEAL_SHIFT_MAX_MIN);
            let size = rng.random_range(1.0 - MEAL_SIZE_SPREAD..=1.0 + MEAL_SIZE_SPREAD);
            Meal {
                minute_of_day: (i64::from(meal.minute_of_day) + shift).rem_euclid(1440) as u32,
                carbs_g: meal.carbs_g * size,
            }
        })
        .collect()
}

/// Which criteria have held since the patient's last episode onset.
#[derive(Component, Default)]
struct Criteria(CriteriaState);

/// The patient's physiology stream.
#[derive(Component)]
struct PatientRng(StreamRng);

/// Running totals over the whole run: every measurement ends up in exactly
/// one of delivered, lost (by cause), held in a gateway buffer, or in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Measurements taken.
    pub generated: u64,
    /// Measurements that reached the backend's edge.
    pub delivered: u64,
    /// Measurements the network hop lost.
    pub lost_link: u64,
    /// Measurements evicted from or refused by a full gateway buffer.
    pub lost_overflow: u64,
    /// Measurements sent into an outage (or by a disconnected device)
    /// with no buffer to hold them.
    pub lost_outage: u64,
    /// Measurements a device never took (sensor off, battery dead, sensor expired).
    pub lost_device: u64,
    /// Measurements held in gateway buffers and device memories.
    pub buffered: u64,
    /// Measurements on the wire (or waiting to be sent again).
    pub in_flight: u64,
    /// Second copies delivered (not counted in `delivered`).
    pub duplicates: u64,
}

impl Accounting {
    /// All losses, whatever the cause.
    pub fn lost(&self) -> u64 {
        self.lost_link + self.lost_overflow + self.lost_outage + self.lost_device
    }

    /// Not yet delivered nor lost: buffered or on the wire.
    pub fn pending(&self) -> u64 {
        self.buffered + self.in_flight
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
    device_models: Vec<u16>,
    device_waveforms: Vec<Option<WaveformConfig>>,
    accounting: Accounting,
    /// Who is where, to find a commanded patient by name.
    roster: Roster,
    /// Commands waiting for their step.
    commands: CommandQueue,
}

impl Twin {
    /// Builds the population and schedule for `config`.
    pub fn new(config: &SimConfig) -> Result<Twin, ConfigError> {
        config.check()?;
        let mut world = World::new();
        world.insert_resource(Clock {
            now_ms: 0,
            step_ms: config.step_ms,
            seed: config.seed,
            start_ms_of_day: config.start_ms_of_day,
            factors: StepFactors::new(config.step_ms),
        });
        world.insert_resource(Cohorts(
            config
                .cohorts
                .iter()
                .map(|c| CohortShared {
                    hr_sd: c.profile.hr_variability as f32,
                })
                .collect(),
        ));
        world.init_resource::<Outbox>();
        world.init_resource::<StableOrder>();
        world.init_resource::<Transmit>();
        world.init_resource::<InFlight>();
        world.init_resource::<Buffered>();
        world.init_resource::<Models>();
        world.init_resource::<AppliedCommands>();

        let mut twin = Twin {
            world,
            schedule: build_schedule(),
            duration_ms: config.duration_ms,
            patients: Vec::new(),
            patient_names: Vec::new(),
            device_names: Vec::new(),
            device_kinds: Vec::new(),
            device_models: Vec::new(),
            device_waveforms: Vec::new(),
            accounting: Accounting::default(),
            roster: Roster::new(config),
            commands: CommandQueue::default(),
        };
        // Index of each cohort's first patient in the flat patient table.
        let mut cohort_start = Vec::with_capacity(config.cohorts.len());
        let mut n_patients = 0usize;
        for cohort in &config.cohorts {
            cohort_start.push(n_patients);
            n_patients += cohort.count as usize;
        }
        // Courses of the patients something happens to, by position in the
        // whole population (most patients have none: no per-patient table).
        let mut courses: BTreeMap<usize, Course> = BTreeMap::new();
        let _ = n_patients;
        for (i, event) in config.events.iter().enumerate() {
            for index in select(config.seed, &format!("event/{i}"), &event.who) {
                courses
                    .entry(cohort_start[event.who.cohort] + index as usize)
                    .or_default()
                    .episodes
                    .push(Episode {
                        kind: event.condition,
                        onset_ms: event.at_ms,
                        severity: event.severity,
                        ramp_ms: event.ramp_ms,
                        duration_ms: event.duration_ms,
                        params: event.params,
                        started: false,
                        end_ms: None,
                        reached: false,
                        skipped_meal: false,
                    });
            }
        }
        for (i, given) in config.interventions.iter().enumerate() {
            for index in select(config.seed, &format!("intervention/{i}"), &given.who) {
                courses
                    .entry(cohort_start[given.who.cohort] + index as usize)
                    .or_default()
                    .given
                    .push(Given {
                        kind: given.kind,
                        at_ms: given.at_ms,
                        params: given.params,
                        duration_ms: given.duration_ms,
                        done: false,
                    });
            }
        }
        // Scheduled uplink outages, by patient position.
        let mut outages: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
        // Device faults, by patient position.
        let mut device_faults: BTreeMap<usize, Vec<PatientFault>> = BTreeMap::new();
        for (i, fault) in config.faults.iter().enumerate() {
            let span = (fault.at_ms, fault.at_ms.saturating_add(fault.duration_ms));
            for index in select(config.seed, &format!("fault/{i}"), &fault.who) {
                let slot = cohort_start[fault.who.cohort] + index as usize;
                if fault.kind.on_devices() {
                    device_faults.entry(slot).or_default().push(PatientFault {
                        kind: fault.kind,
                        device: fault.device.clone(),
                        start_ms: span.0,
                        end_ms: span.1,
                    });
                } else {
                    outages.entry(slot).or_default().push(span);
                }
            }
        }
        for course in courses.values_mut() {
            // Stable: same-time interventions keep scenario order.
            course.given.sort_by_key(|g| g.at_ms);
        }
        for (c, cohort) in config.cohorts.iter().enumerate() {
            let link = twin.world.spawn(Link::new(&cohort.network)).id();
            for index in 0..cohort.count {
                let slot = cohort_start[c] + index as usize;
                if !config.shard.owns(slot as u64) {
                    continue;
                }
                let scheduled = Scheduled {
                    course: courses.remove(&slot).unwrap_or_default(),
                    outages: outages.remove(&slot).unwrap_or_default(),
                    faults: device_faults.remove(&slot).unwrap_or_default(),
                };
                twin.spawn_patient(config, c, index, link, scheduled);
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
        scheduled: Scheduled,
    ) {
        let Scheduled {
            course,
            mut outages,
            faults,
        } = scheduled;
        let cohort = &config.cohorts[cohort_idx];
        let name = format!("{}-{index:03}", cohort.name);
        let stable = rng::stable_id(&name);
        let patient_idx = self.patients.len() as u32;
        let mut rng = rng::stream(config.seed, stable, "vitals");
        let (traits, draw) = cohort.profile.sample(&mut rng);
        // What is not a profile trait (AF rate, sleep times) comes from a
        // stream of its own: the traits' draws stay as they were.
        let body = Body::drawn(traits, &mut rng::stream(config.seed, stable, "variety"));
        let params = GlucoseParams::new(
            f64::from(traits.weight_kg),
            cohort.profile.metabolism,
            draw.insulin_sensitivity,
            draw.fasting_mgdl,
        );
        let glucose = GlucoseState::steady(&params);
        let hr_sd = cohort.profile.hr_variability;
        // Start at the stationary spread rather than exactly on the target.
        let mut variation = Variation::stationary(hr_sd, &mut rng);
        let clock = self.world.resource::<Clock>();
        let (target, shape) = physiology::target(
            &body,
            &course,
            glucose.glucose_mgdl(&params),
            clock.daytime(),
            0,
        );
        let factors = clock.factors;
        let mut state = target;
        // The stores start full at the target saturation.
        let mut store = O2Store(target.spo2_pct as f32);
        physiology::advance(
            &mut state,
            &mut variation,
            &mut store,
            &target,
            shape,
            hr_sd as f32,
            &factors,
            &mut rng,
        );
        let eventful = !course.is_empty();
        // Only patients with something scheduled carry a `Course`: most
        // patients of a large cohort have none, and it is 56 bytes.
        let mut patient = self.world.spawn((
            Patient {
                idx: patient_idx,
                stable_id: stable,
                cohort: cohort_idx as u16,
            },
            body,
            state,
            variation,
            store,
            Metabolic {
                params,
                state: glucose,
            },
            Criteria::default(),
            PatientRng(rng),
        ));
        if eventful {
            patient.insert(course);
        }
        if cohort.devices.iter().any(|d| d.waveform.is_some()) {
            patient.insert(PatientHeart {
                heart: Heart::new(rng::stream(config.seed, stable, "waveform")),
                pvc_per_min: cohort.profile.pvc_per_min,
            });
        }
        if !cohort.profile.meals.is_empty() {
            patient.insert(Meals(own_meals(&cohort.profile.meals, config.seed, stable)));
        }
        // A gateway where the cohort has one, or where an outage is
        // scheduled (then with no buffer: messages sent into it are lost).
        let gateway = cohort.network.gateway.as_ref();
        if gateway.is_some() || !outages.is_empty() {
            outages.sort_unstable();
            let random = gateway.and_then(|g| g.mtbf_ms.map(|up| (up as f64, g.mttr_ms as f64)));
            patient.insert(Gateway {
                capacity: gateway.map_or(0, |g| g.buffer),
                eviction: gateway.map_or(Eviction::DropOldest, |g| g.eviction),
                flush_per_s: gateway.map_or(1.0, |g| g.flush_per_s),
                flush_credit: 0.0,
                outages,
                random,
                // With random outages, starts "down" at 0 so the first look
                // draws an up time.
                random_down: random.is_some(),
                next_change_ms: 0,
                rng: rng::stream(config.seed, stable, "gateway"),
                buffer: Default::default(),
            });
        }
        let patient = patient.id();
        self.patients.push(patient);
        self.world
            .resource_mut::<StableOrder>()
            .patients
            .push(stable);

        for (d, device) in cohort.devices.iter().enumerate() {
            let spec = &device.spec;
            // A second device of the same model on one patient is `<model>-2`.
            let nth = cohort.devices[..d]
                .iter()
                .filter(|other| other.spec.name == spec.name)
                .count();
            let device_name = match nth {
                0 => format!("{name}/{}", spec.name),
                n => format!("{name}/{}-{}", spec.name, n + 1),
            };
            let mine: Vec<DeviceFault> = faults
                .iter()
                .filter(|f| {
                    f.device
                        .as_deref()
                        .is_none_or(|k| k == spec.name || k == spec.class.name())
                })
                .map(|f| DeviceFault {
                    kind: f.kind,
                    start_ms: f.start_ms,
                    end_ms: f.end_ms,
                    raised: false,
                })
                .collect();
            self.spawn_device(
                config,
                device,
                &device_name,
                patient,
                patient_idx,
                link,
                mine,
            );
        }
        self.patient_names.push(name);
    }

    #[allow(clippy::too_many_arguments)] // everything a device is attached to
    fn spawn_device(
        &mut self,
        config: &SimConfig,
        device: &DeviceConfig,
        device_name: &str,
        patient: Entity,
        patient_idx: u32,
        link: Entity,
        faults: Vec<DeviceFault>,
    ) {
        let spec = &device.spec;
        let device_stable = rng::stable_id(device_name);
        let mut noise = rng::stream(config.seed, device_stable, "noise");
        let error = DeviceError::new(spec, &mut noise);
        let first_ms = if spec.scheduled() {
            devices::next_daily(&spec.times, config.start_ms_of_day, 0)
        } else {
            // Stagger devices: a ward's cuffs do not all inflate at once.
            noise.random_range(0..device.every_ms.div_ceil(config.step_ms).max(1)) * config.step_ms
        };
        let idx = self.device_names.len() as u32;
        let model = self.world.resource_mut::<Models>().index_of(spec);
        // The clock's own stream: models without drift draw nothing from
        // the measurement stream for it.
        let clock = DeviceClock::new(spec, &mut rng::stream(config.seed, device_stable, "clock"));
        // A CGM starts `age` into its life (by default just past warm-up),
        // its interstitial compartment at the patient's glucose.
        let sensor = (spec.class == DeviceKind::Cgm).then(|| {
            let glucose = self
                .world
                .get::<Vitals>(patient)
                .map_or(100.0, |v| v.glucose_mgdl);
            let mut sensor_rng = rng::stream(config.seed, device_stable, "sensor");
            Sensor {
                cgm: CgmSensor::new(&spec.cgm, -(device.age_ms as i64), glucose, &mut sensor_rng),
                expiry_raised: false,
            }
        });
        let mut spawned = self.world.spawn((
            Device {
                idx,
                stable_id: device_stable,
                patient,
                patient_idx,
                link,
                kind: spec.class,
                model,
                every_ms: device.every_ms,
                next_ms: first_ms,
                seq: 0,
            },
            error,
            NoiseRng(noise),
            clock,
            NetRng(
                rng::stream(config.seed, device_stable, "net"),
                Channel::default(),
            ),
        ));
        if let Some(battery) = &spec.battery {
            spawned.insert(Power::new(battery, device.battery_pct));
        }
        if spec.motion.active() || spec.lead_off.active() {
            spawned.insert(Artifacts::default());
        }
        if let Some(sensor) = sensor {
            spawned.insert(sensor);
        }
        if let Some(waveform) = &device.waveform {
            let rng = rng::stream(config.seed, device_stable, "waveform");
            spawned.insert(DeviceSynth(Synth::new(waveform.clone(), rng)));
        }
        if spec.scheduled()
            && matches!(spec.class, DeviceKind::MedDispenser | DeviceKind::SmartPill)
        {
            spawned.insert(Doses {
                next_dose_ms: first_ms,
                pending: Vec::new(),
            });
        }
        if faults.iter().any(|f| f.kind == FaultKind::Disconnect) {
            spawned.insert(Memory::default());
        }
        if !faults.is_empty() {
            spawned.insert(Faulty { faults, last: None });
        }
        self.device_names.push(device_name.to_owned());
        self.device_kinds.push(spec.class);
        self.device_models.push(model);
        self.device_waveforms.push(device.waveform.clone());
        self.world
            .resource_mut::<StableOrder>()
            .devices
            .push(device_stable);
    }

    /// Advances one step and returns what happened in it. Queued commands
    /// due by the end of the step are applied first (see [`Twin::push_command`]).
    pub fn step(&mut self) -> &StepOutput {
        if !self.commands.is_empty() {
            self.apply_commands();
        }
        self.schedule.run(&mut self.world);
        let out = &self.world.resource::<Outbox>().0;
        let acc = &mut self.accounting;
        acc.generated += out.measurements.len() as u64;
        for delivery in &out.deliveries {
            if delivery.duplicate {
                acc.duplicates += 1;
            } else {
                acc.delivered += 1;
            }
        }
        for loss in &out.losses {
            match loss.cause {
                LossCause::LinkLoss => acc.lost_link += 1,
                LossCause::BufferOverflow => acc.lost_overflow += 1,
                LossCause::Outage | LossCause::Disconnected => acc.lost_outage += 1,
                LossCause::SensorOff | LossCause::BatteryDead | LossCause::SensorExpired => {
                    acc.lost_device += 1
                }
            }
        }
        acc.in_flight = self.world.resource::<InFlight>().len() as u64;
        acc.buffered = self.world.resource::<Buffered>().0;
        debug_assert_eq!(acc.generated, acc.delivered + acc.lost() + acc.pending());
        out
    }

    /// Queues `command`, to be applied at simulated time `at_ms`: at the
    /// start of the first step that ends at or after `at_ms`, the twin
    /// changes its world as if the scenario had scheduled the same thing at
    /// `at_ms` (an episode with its onset at `at_ms`, an intervention given
    /// then, a device fault or an uplink outage starting then), and the
    /// step's [`StepOutput::commands`] records it. Commands apply in
    /// (`at_ms`, arrival) order. A command stamped exactly [`Twin::now_ms`]
    /// applies in the next step, still stamped `at_ms`.
    ///
    /// Refused, with nothing queued: invalid parameters
    /// ([`Command::check`]), a time before [`Twin::now_ms`], a patient
    /// this twin does not simulate (unknown, or another shard's), a
    /// device fault that would reach none of the patient's devices, and a
    /// full queue ([`Twin::command_capacity`]).
    pub fn push_command(&mut self, at_ms: u64, command: Command) -> Result<(), CommandError> {
        command.check()?;
        let now_ms = self.now_ms();
        if at_ms < now_ms {
            return Err(CommandError::InThePast { at_ms, now_ms });
        }
        let patient_idx = self.roster.admit(&command, &self.patient_names)?;
        self.commands.push(at_ms, patient_idx, command)
    }

    /// How many commands can wait in the queue at once ([`COMMAND_CAPACITY`]).
    pub fn command_capacity(&self) -> usize {
        COMMAND_CAPACITY
    }

    /// How many commands are waiting for their step.
    pub fn queued_commands(&self) -> usize {
        self.commands.len()
    }

    /// Applies every queued command due by the end of the step about to
    /// run, in (time, arrival) order, by changing the world as `Twin::new`
    /// would have built it had the command been scheduled.
    fn apply_commands(&mut self) {
        let clock = self.world.resource::<Clock>();
        let (end_ms, seed) = (clock.now_ms + clock.step_ms, clock.seed);
        let mut applied = Vec::new();
        // Device faults wait for one pass over the devices.
        let mut device_faults: Vec<(Entity, Option<String>, DeviceFault)> = Vec::new();
        while let Some((at_ms, patient_idx, command)) = self.commands.pop_due(end_ms) {
            let patient = self.patients[patient_idx as usize];
            match &command {
                Command::StartCondition { .. } | Command::GiveIntervention { .. } => {
                    self.add_to_course(patient, at_ms, &command);
                }
                Command::DeviceFault {
                    kind,
                    device,
                    duration_ms,
                    ..
                } => device_faults.push((
                    patient,
                    device.clone(),
                    DeviceFault {
                        kind: *kind,
                        start_ms: at_ms,
                        end_ms: at_ms.saturating_add(*duration_ms),
                        raised: false,
                    },
                )),
                Command::NetworkOutage { duration_ms, .. } => {
                    let span = (at_ms, at_ms.saturating_add(*duration_ms));
                    self.add_outage(patient, span, seed);
                }
            }
            applied.push(CommandApplied {
                at_ms,
                patient_idx,
                command,
            });
        }
        if !device_faults.is_empty() {
            self.add_device_faults(&device_faults);
        }
        self.world
            .resource_mut::<AppliedCommands>()
            .0
            .append(&mut applied);
    }

    /// An episode starting, or an intervention given, at `at_ms`: into the
    /// patient's `Course` (added empty if it had none), as `Twin::new`
    /// puts scheduled ones.
    fn add_to_course(&mut self, patient: Entity, at_ms: u64, command: &Command) {
        let Ok(mut entity) = self.world.get_entity_mut(patient) else {
            return; // patients are never despawned
        };
        let mut course = entity.entry::<Course>().or_default().into_mut();
        match *command {
            Command::StartCondition {
                condition,
                severity,
                ramp_ms,
                duration_ms,
                params,
                ..
            } => {
                // In arrival order, after the scheduled ones.
                course.episodes.push(Episode {
                    kind: condition,
                    onset_ms: at_ms,
                    severity,
                    ramp_ms,
                    duration_ms,
                    params,
                    started: false,
                    end_ms: None,
                    reached: false,
                    skipped_meal: false,
                });
            }
            Command::GiveIntervention {
                kind,
                params,
                duration_ms,
                ..
            } => {
                // In time order, after those already at `at_ms`. Those it
                // goes before are later than `at_ms`, so not given yet: no
                // given intervention's index (which names its random
                // streams) moves.
                let at = course.given.partition_point(|g| g.at_ms <= at_ms);
                let given = Given {
                    kind,
                    at_ms,
                    params,
                    duration_ms,
                    done: false,
                };
                course.given.insert(at, given);
            }
            Command::DeviceFault { .. } | Command::NetworkOutage { .. } => {}
        }
    }

    /// An uplink outage over `span` on the patient's gateway. A patient
    /// without one (its cohort has none) gets a buffer-less gateway, as
    /// `spawn_patient` gives a patient with a scheduled outage: what is
    /// sent into the outage is lost.
    fn add_outage(&mut self, patient: Entity, span: (u64, u64), seed: u64) {
        let Ok(mut entity) = self.world.get_entity_mut(patient) else {
            return;
        };
        let stable = entity.get::<Patient>().map_or(0, |p| p.stable_id);
        let mut gateway = entity
            .entry::<Gateway>()
            .or_insert_with(|| Gateway {
                capacity: 0,
                eviction: Eviction::DropOldest,
                flush_per_s: 1.0,
                flush_credit: 0.0,
                outages: Vec::new(),
                random: None,
                random_down: false,
                next_change_ms: 0,
                rng: rng::stream(seed, stable, "gateway"),
                buffer: Default::default(),
            })
            .into_mut();
        gateway.outages.push(span);
        gateway.outages.sort_unstable();
    }

    /// Adds each (patient, model or class, fault) to the patient's devices
    /// it names (all of them when it names none), in the order given, as
    /// `spawn_patient` does for scheduled ones; a disconnect needs memory.
    fn add_device_faults(&mut self, faults: &[(Entity, Option<String>, DeviceFault)]) {
        let patients: BTreeSet<Entity> = faults.iter().map(|f| f.0).collect();
        let mut devices = self.world.query::<(Entity, &Device)>();
        let models = &self.world.resource::<Models>().0;
        let mut targets: Vec<(Entity, Vec<DeviceFault>)> = Vec::new();
        for (entity, device) in devices.iter(&self.world) {
            if !patients.contains(&device.patient) {
                continue;
            }
            let spec = &models[usize::from(device.model)];
            let names = |k: &str| k == spec.name || k == spec.class.name();
            let mine: Vec<DeviceFault> = faults
                .iter()
                .filter(|(p, filter, _)| {
                    *p == device.patient && filter.as_deref().is_none_or(names)
                })
                .map(|f| f.2)
                .collect();
            if !mine.is_empty() {
                targets.push((entity, mine));
            }
        }
        for (entity, mine) in targets {
            let mut device = self.world.entity_mut(entity);
            if mine.iter().any(|f| f.kind == FaultKind::Disconnect) && !device.contains::<Memory>()
            {
                device.insert(Memory::default());
            }
            match device.get_mut::<Faulty>() {
                Some(mut faulty) => faulty.faults.extend(mine),
                None => {
                    device.insert(Faulty {
                        faults: mine,
                        last: None,
                    });
                }
            }
        }
    }

    /// Bytes of component state each patient carries (what the twin
    /// stores per patient, before the ECS's own bookkeeping).
    pub fn patient_component_bytes() -> usize {
        use std::mem::size_of;
        // `Course` only on patients with something scheduled.
        size_of::<Patient>()
            + size_of::<Body>()
            + size_of::<Vitals>()
            + size_of::<Variation>()
            + size_of::<O2Store>()
            + size_of::<Metabolic>()
            + size_of::<Criteria>()
            + size_of::<Meals>()
            + size_of::<PatientRng>()
            + size_of::<Entity>()
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

    /// Device classes, by device index.
    pub fn device_kinds(&self) -> &[DeviceKind] {
        &self.device_kinds
    }

    /// Device models (catalogue entries), by device index.
    pub fn device_model(&self, device_idx: u32) -> Option<&DeviceSpec> {
        let model = *self.device_models.get(device_idx as usize)?;
        self.world.resource::<Models>().0.get(usize::from(model))
    }

    /// What a device records as waveforms (`None`: values only), by
    /// device index.
    pub fn waveform(&self, device_idx: u32) -> Option<&WaveformConfig> {
        self.device_waveforms.get(device_idx as usize)?.as_ref()
    }

    /// The true current state of a patient.
    pub fn vitals(&self, patient_idx: u32) -> Option<Vitals> {
        let entity = *self.patients.get(patient_idx as usize)?;
        self.world.get::<Vitals>(entity).copied()
    }
}

/// The indices of `who` an event or intervention applies to: the range,
/// or `pick` of it chosen on the event's own stream (partial Fisher-Yates).
fn select(seed: u64, stream_name: &str, who: &PatientSelector) -> Vec<u32> {
    let mut chosen: Vec<u32> = (who.first..who.end).collect();
    if let Some(pick) = who.pick {
        let mut rng = rng::stream(seed, rng::stable_id(stream_name), "pick");
        let pick = (pick as usize).min(chosen.len());
        for k in 0..pick {
            let j = rng.random_range(k..chosen.len());
            chosen.swap(k, j);
        }
        chosen.truncate(pick);
        chosen.sort_unstable();
    }
    chosen
}

/// What the scenario has in store for one patient.
struct Scheduled {
    course: Course,
    outages: Vec<(u64, u64)>,
    faults: Vec<PatientFault>,
}

/// A device fault scheduled on a patient's equipment.
#[derive(Clone, Debug, PartialEq)]
struct PatientFault {
    kind: FaultKind,
    /// Only devices of this model or class.
    device: Option<String>,
    start_ms: u64,
    end_ms: u64,
}

/// Messages held in gateway buffers and device memories, over all of them.
#[derive(Resource, Default)]
struct Buffered(u64);

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
            run_courses,
            advance_glucose,
            advance_physiology,
            sample_devices,
            synthesize_waveforms,
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

/// Conditions start and end, interventions are given, and what they do to
/// the glucose model happens at once.
#[allow(clippy::type_complexity)]
fn run_courses(
    clock: Res<Clock>,
    mut patients: Query<(
        &Patient,
        &Body,
        &Vitals,
        &mut Course,
        &mut Metabolic,
        &mut Criteria,
    )>,
    mut out: ResMut<Outbox>,
) {
    let now = clock.now_ms;
    for (patient, body, vitals, mut course, mut metabolic, mut criteria) in &mut patients {
        let course = &mut *course;
        let metabolic = &mut *metabolic;
        let out = &mut out.0;
        if physiology::exsanguinated(body, course, now) {
            // Untreated exsanguination: the heart stops in PEA, an episode
            // of its own (logged as an onset below).
            let kind = ConditionKind::CardiacArrest;
            let mut params = crate::clinical::Params::defaults(kind.params());
            params.0[0] = 2.0;
            course.episodes.push(Episode {
                kind,
                onset_ms: now,
                severity: 1.0,
                ramp_ms: 0,
                duration_ms: None,
                params,
                started: false,
                end_ms: None,
                reached: false,
                skipped_meal: false,
            });
        }
        start_episodes(patient, course, metabolic, &mut criteria.0, now, out);
        give_interventions(patient, course, metabolic, clock.seed, now, out);
        end_episodes(patient, course, vitals, clock.seed, now, clock.step_ms, out);
        let set = course.o2_set(now);
        course.o2_effective += (set - course.o2_effective) * clock.factors.o2_follow;
    }
}

fn start_episodes(
    patient: &Patient,
    course: &mut Course,
    metabolic: &mut Metabolic,
    criteria: &mut CriteriaState,
    now: u64,
    out: &mut StepOutput,
) {
    for episode in course
        .episodes
        .iter_mut()
        .filter(|e| !e.started && e.onset_ms <= now)
    {
        episode.started = true;
        // Each episode gets its own first moments of each criterion.
        criteria.rearm();
        if episode.kind == ConditionKind::Hypoglycaemia && episode.params.get(0) == 0.0 {
            let units = episode.severity * episode.params.get(1);
            metabolic.state.bolus_sc(&metabolic.params, units);
        }
        out.onsets.push(EpisodeOnset {
            patient_idx: patient.idx,
            condition: episode.kind,
            onset_ms: episode.onset_ms,
            severity: episode.severity,
            ramp_ms: episode.ramp_ms,
        });
    }
}

fn give_interventions(
    patient: &Patient,
    course: &mut Course,
    metabolic: &mut Metabolic,
    seed: u64,
    now: u64,
    out: &mut StepOutput,
) {
    for i in 0..course.given.len() {
        let g = &course.given[i];
        if g.done || g.at_ms > now {
            continue;
        }
        let (kind, at_ms, params) = (g.kind, g.at_ms, g.params);
        course.given[i].done = true;
        let p = &metabolic.params;
        let state = &mut metabolic.state;
        let mut rosc = None;
        match kind {
            InterventionKind::Insulin if params.get(1) == 0.0 => state.bolus_sc(p, params.get(0)),
            InterventionKind::Insulin => state.iv_insulin(p, params.get(0)),
            InterventionKind::Glucose if params.get(1) == 0.0 => state.eat_fast(p, params.get(0)),
            InterventionKind::Glucose => state.iv_glucose(p, params.get(0)),
            InterventionKind::Meal => {
                state.eat(p, params.get(0));
                let bolus = params.get(1);
                let bolus = if bolus < 0.0 {
                    matched_bolus(p, params.get(0))
                } else {
                    bolus
                };
                if bolus > 0.0 {
                    state.bolus_sc(p, bolus);
                }
            }
            InterventionKind::Defibrillation => {
                if let Some(k) = course
                    .episodes
                    .iter()
                    .position(|e| e.kind == ConditionKind::CardiacArrest && e.active(now))
                {
                    let chance = physiology::shock_success(&course.episodes[k], course, now);
                    let mut rng =
                        rng::stream(seed, patient.stable_id, &format!("shock/{at_ms}/{i}"));
                    let success = rng.random_bool(chance.clamp(0.0, 1.0));
                    if success {
                        end_episode(
                            patient,
                            &mut course.episodes[k],
                            now,
                            EndReason::Treated,
                            out,
                        );
                    }
                    rosc = Some(success);
                }
            }
            _ => {}
        }
        out.interventions.push(InterventionGiven {
            patient_idx: patient.idx,
            kind,
            at_ms,
            params,
            rosc,
        });
    }
}

/// A type 1 patient's meal bolus by carbohydrate ratio; none otherwise.
fn matched_bolus(p: &GlucoseParams, carbs_g: f64) -> f64 {
    match p.metabolism {
        Metabolism::Type1 => carbs_g / p.carb_ratio_g_per_u(),
        Metabolism::NonDiabetic => 0.0,
    }
}

fn end_episode(
    patient: &Patient,
    episode: &mut Episode,
    now: u64,
    reason: EndReason,
    out: &mut StepOutput,
) {
    episode.end_ms = Some(now);
    out.ends.push(EpisodeEnd {
        patient_idx: patient.idx,
        condition: episode.kind,
        onset_ms: episode.onset_ms,
        end_ms: now,
        reason,
    });
}

fn end_episodes(
    patient: &Patient,
    course: &mut Course,
    vitals: &Vitals,
    seed: u64,
    now: u64,
    step_ms: u64,
    out: &mut StepOutput,
) {
    let cpr_start = course
        .given
        .iter()
        .filter(|g| g.done && g.kind == InterventionKind::Cpr && g.at_ms <= now)
        .map(|g| g.at_ms)
        .next_back();
    let cpr = course.cpr(now);
    for k in 0..course.episodes.len() {
        let e = &course.episodes[k];
        if !e.active(now) {
            continue;
        }
        let g = vitals.glucose_mgdl;
        let reason = match e.kind {
            _ if e
                .duration_ms
                .is_some_and(|d| now >= e.onset_ms.saturating_add(d)) =>
            {
                Some(EndReason::Duration)
            }
            ConditionKind::Sepsis => {
                let treated = course
                    .given
                    .iter()
                    .any(|g| g.done && g.kind == InterventionKind::Antibiotics);
                (treated && physiology::sepsis_level(e, course, now) < 0.05)
                    .then_some(EndReason::Treated)
            }
            ConditionKind::Hypoglycaemia | ConditionKind::Hyperglycaemia => {
                let hypo = e.kind == ConditionKind::Hypoglycaemia;
                let crossed = if hypo { g < 70.0 } else { g > 250.0 };
                let back = if hypo { g >= 70.0 } else { g < 180.0 };
                if crossed {
                    course.episodes[k].reached = true;
                }
                (course.episodes[k].reached && back).then_some(EndReason::Recovered)
            }
            ConditionKind::CardiacArrest if cpr => {
                // Each completed 2-min CPR cycle in asystole may bring circulation back.
                let start = cpr_start.unwrap_or(now);
                let cycle = 120_000;
                let done_now = (now - start) / cycle;
                let done_before = (now - step_ms).saturating_sub(start) / cycle;
                let rhythm = physiology::arrest_rhythm(e, course, now);
                if done_now > done_before && matches!(rhythm, Rhythm::Asystole | Rhythm::Pea) {
                    let mut rng = rng::stream(seed, patient.stable_id, &format!("cpr/{now}"));
                    let cpr_min = (now - start) as f64 / 60_000.0;
                    rng.random_bool(physiology::cpr_cycle_rosc(cpr_min))
                        .then_some(EndReason::Treated)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(reason) = reason {
            end_episode(patient, &mut course.episodes[k], now, reason, out);
        }
    }
}

/// The glucose model advances once per simulated minute; the patient's
/// meals (with a matched bolus for type 1 patients) happen on their minute.
fn advance_glucose(
    clock: Res<Clock>,
    mut patients: Query<(&mut Metabolic, Option<&Meals>, Option<&mut Course>)>,
) {
    let (before, now_min) = clock.minutes();
    if now_min == before {
        return;
    }
    let minutes = (now_min - before) as u32;
    let day_min = |m: u64| ((clock.start_ms_of_day / 60_000 + m) % 1440) as u32;
    for (mut metabolic, meals, mut course) in &mut patients {
        let meals = meals.map_or(&[][..], |m| &m.0[..]);
        let metabolic = &mut *metabolic;
        for m in before + 1..=now_min {
            let minute = day_min(m);
            for meal in meals.iter().filter(|meal| meal.minute_of_day == minute) {
                let bolus = matched_bolus(&metabolic.params, meal.carbs_g);
                if bolus > 0.0 {
                    metabolic.state.bolus_sc(&metabolic.params, bolus);
                }
                // A missed-meal hypoglycaemia: the bolus is given, the meal is not eaten.
                let skip = course.as_mut().and_then(|c| {
                    c.episodes.iter_mut().find(|e| {
                        e.kind == ConditionKind::Hypoglycaemia
                            && e.params.get(0) == 1.0
                            && e.started
                            && !e.skipped_meal
                    })
                });
                match skip {
                    Some(e) => e.skipped_meal = true,
                    None => metabolic.state.eat(&metabolic.params, meal.carbs_g),
                }
            }
        }
        let now = clock.now_ms;
        let mut drive = Drive::default();
        let episodes = course.as_ref().map_or(&[][..], |c| &c.episodes[..]);
        for e in episodes
            .iter()
            .filter(|e| e.kind == ConditionKind::Hyperglycaemia && e.active(now))
        {
            let level = e.severity * e.progress(now);
            if e.params.get(0) == 0.0 {
                // Missed insulin: basal stops at severity 1.
                drive.basal_factor *= 1.0 - level;
            } else {
                // Illness (design choice): stress hormones double hepatic
                // glucose output and halve insulin action at severity 1.
                drive.egp_factor *= 1.0 + level;
                drive.sensitivity_factor *= 1.0 - 0.5 * level;
            }
        }
        glucose::step_minutes(&mut metabolic.state, &metabolic.params, &drive, minutes);
    }
}

// Bevy systems name their whole query in the signature.
#[allow(clippy::type_complexity)]
fn advance_physiology(
    clock: Res<Clock>,
    cohorts: Res<Cohorts>,
    mut patients: Query<(
        &Patient,
        &Body,
        Option<&Course>,
        &Metabolic,
        &mut Vitals,
        &mut Variation,
        &mut O2Store,
        &mut Criteria,
        &mut PatientRng,
    )>,
    mut out: ResMut<Outbox>,
) {
    let now = clock.now_ms;
    let day = clock.daytime();
    let out = &mut out.0;
    for (
        patient,
        body,
        course,
        metabolic,
        mut vitals,
        mut variation,
        mut store,
        mut criteria,
        mut rng,
    ) in &mut patients
    {
        let glucose = metabolic.state.glucose_mgdl(&metabolic.params);
        let course = course.unwrap_or(&NO_COURSE);
        let (target, shape) = physiology::target(body, course, glucose, day, now);
        let hr_sd = cohorts.0[usize::from(patient.cohort)].hr_sd;
        physiology::advance(
            &mut vitals,
            &mut variation,
            &mut store,
            &target,
            shape,
            hr_sd,
            &clock.factors,
            &mut rng.0,
        );
        criteria
            .0
            .update_states(&vitals, body.traits.spo2_scale, now, |event| {
                let patient_idx = patient.idx;
                match event {
                    CriterionEvent::First(criterion) => out.criteria.push(CriterionOnset {
                        patient_idx,
                        criterion,
                        at_ms: now,
                    }),
                    CriterionEvent::Onset(criterion) => out.states.push(StateChange {
                        patient_idx,
                        criterion,
                        change: Change::Onset,
                        at_ms: now,
                    }),
                    CriterionEvent::End(criterion, at_ms) => out.states.push(StateChange {
                        patient_idx,
                        criterion,
                        change: Change::End,
                        at_ms,
                    }),
                }
            });
    }
}

/// Puts the step's records in a total order that depends neither on query
/// iteration order nor on the shard split: by time, then by the patient's
/// or device's stable id (deliveries already come out of the heap ordered
/// by (arrival, device stable id, seq)).
fn finish_step(
    mut out: ResMut<Outbox>,
    mut applied: ResMut<AppliedCommands>,
    order: Res<StableOrder>,
) {
    let out = &mut out.0;
    let p = |idx: u32| order.patients[idx as usize];
    let d = |idx: u32| order.devices[idx as usize];
    out.onsets
        .sort_by_key(|o| (o.onset_ms, p(o.patient_idx), o.condition));
    out.ends
        .sort_by_key(|e| (e.end_ms, p(e.patient_idx), e.condition, e.onset_ms));
    out.interventions
        .sort_by_key(|g| (g.at_ms, p(g.patient_idx), g.kind));
    if !applied.0.is_empty() {
        // Applied in (time, arrival) order; the sort is stable, so
        // arrival order breaks ties within a patient.
        out.commands.append(&mut applied.0);
        out.commands.sort_by_key(|c| (c.at_ms, p(c.patient_idx)));
    }
    out.criteria
        .sort_by_key(|c| (c.at_ms, p(c.patient_idx), c.criterion));
    out.states
        .sort_by_key(|c| (c.at_ms, p(c.patient_idx), c.criterion, c.change));
    out.measurements
        .sort_by_key(|m| (m.measured_ms, d(m.device_idx)));
    out.losses
        .sort_by_key(|l| (l.lost_ms, d(l.device_idx), l.seq));
    if !out.beats.is_empty() {
        out.beats.sort_by(|a, b| {
            a.r_s
                .total_cmp(&b.r_s)
                .then(p(a.patient_idx).cmp(&p(b.patient_idx)))
        });
    }
    if !out.rhythms.is_empty() {
        out.rhythms.sort_by(|a, b| {
            a.at_s
                .total_cmp(&b.at_s)
                .then(p(a.patient_idx).cmp(&p(b.patient_idx)))
        });
    }
    if !out.waves.is_empty() {
        // Blocks keep their samples where they are in the pool.
        out.waves.sort_by_key(|w| (d(w.device_idx), w.first_sample));
    }
}
