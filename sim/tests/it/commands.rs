//! Commands on a running twin: a commanded condition, intervention, device
//! fault or outage gives exactly the records the same thing scheduled at
//! the same time gives; the queue refuses what it cannot do, without
//! panicking; shards route commands and still merge into the unsharded
//! run; every measurement stays accounted for.

use medtwin_sim::rng::stable_id;
use medtwin_sim::{
    COMMAND_CAPACITY, CohortConfig, Command, CommandApplied, CommandError, ConditionKind,
    DeviceConfig, DeviceKind, EventConfig, Eviction, FaultConfig, FaultKind, GatewayConfig,
    InterventionConfig, InterventionKind, LossCause, NetworkConfig, Params, PatientSelector,
    ProfileSpec, Shard, SimConfig, StepOutput, TechAlarm, Twin, Vitals,
};
use quickcheck::{Gen, QuickCheck, TestResult};

const MIN: u64 = 60_000;

/// `count` patients called `ward-000`...: an oximeter every second (with
/// on-board memory), a cuff every 5 min, a thermometer and an infusion pump.
fn ward(count: u32, network: NetworkConfig, duration_ms: u64) -> SimConfig {
    let mut oximeter = DeviceConfig {
        every_ms: 1_000,
        ..DeviceConfig::of(DeviceKind::PulseOximeter)
    };
    oximeter.spec.memory = 100;
    SimConfig {
        seed: 11,
        step_ms: 1_000,
        duration_ms,
        start_ms_of_day: 9 * 3_600_000,
        cohorts: vec![CohortConfig {
            name: "ward".into(),
            count,
            profile: ProfileSpec::healthy_adult(),
            devices: vec![
                oximeter,
                DeviceConfig {
                    every_ms: 5 * MIN,
                    ..DeviceConfig::of(DeviceKind::BpCuff)
                },
                DeviceConfig::of(DeviceKind::Thermometer),
                DeviceConfig::of(DeviceKind::InfusionPump),
            ],
            network,
        }],
        events: Vec::new(),
        interventions: Vec::new(),
        faults: Vec::new(),
        shard: Shard::WHOLE,
    }
}

fn lossy() -> NetworkConfig {
    NetworkConfig {
        latency_median_ms: 40.0,
        latency_p99_ms: 2_500.0,
        loss_pct: 3.0,
        loss_burst: 4.0,
        gateway: None,
    }
}

fn buffered() -> NetworkConfig {
    NetworkConfig {
        gateway: Some(GatewayConfig {
            buffer: 5_000,
            eviction: Eviction::DropOldest,
            flush_per_s: 20.0,
            mtbf_ms: None,
            mttr_ms: MIN,
        }),
        ..NetworkConfig::IDEAL
    }
}

/// Patient `index` of cohort 0.
fn one(index: u32) -> PatientSelector {
    PatientSelector {
        cohort: 0,
        first: index,
        end: index + 1,
        pick: None,
    }
}

/// A command to push when the twin is at `push_ms`, stamped `at_ms`.
struct Push {
    push_ms: u64,
    at_ms: u64,
    command: Command,
}

fn push(push_ms: u64, at_ms: u64, command: Command) -> Push {
    Push {
        push_ms,
        at_ms,
        command,
    }
}

/// A run: every step's output, and every patient's true state after it.
#[derive(Debug, Default, PartialEq)]
struct Run {
    steps: Vec<StepOutput>,
    vitals: Vec<Vec<Vitals>>,
}

impl Run {
    fn record(&mut self, twin: &Twin, out: StepOutput) {
        self.steps.push(out);
        let n = twin.patient_names().len() as u32;
        self.vitals
            .push((0..n).map(|p| twin.vitals(p).unwrap()).collect());
    }
}

impl std::ops::Deref for Run {
    type Target = [StepOutput];
    fn deref(&self) -> &[StepOutput] {
        &self.steps
    }
}

/// Every step of `config`, pushing each command (all accepted) when the
/// twin reaches its push time.
fn run(config: &SimConfig, pushes: &[Push]) -> Run {
    let mut twin = Twin::new(config).unwrap();
    let mut steps = Run::default();
    loop {
        let now_ms = twin.now_ms();
        for p in pushes.iter().filter(|p| p.push_ms == now_ms) {
            twin.push_command(p.at_ms, p.command.clone()).unwrap();
        }
        if twin.finished() {
            break;
        }
        let out = twin.step().clone();
        steps.record(&twin, out);
        let acc = twin.accounting();
        assert_eq!(acc.generated, acc.delivered + acc.lost() + acc.pending());
    }
    assert_eq!(twin.queued_commands(), 0, "every command applied");
    steps
}

/// The steps with their command records taken out.
fn without_commands(steps: &[StepOutput]) -> Vec<StepOutput> {
    steps
        .iter()
        .map(|s| StepOutput {
            commands: Vec::new(),
            ..s.clone()
        })
        .collect()
}

/// Asserts two runs' records (and true states) are identical but for the
/// command records, and returns the commanded run's command records with
/// their step's end.
fn assert_same_records(scheduled: &Run, commanded: &Run) -> Vec<(u64, CommandApplied)> {
    assert_eq!(scheduled.len(), commanded.len());
    for (step, (a, b)) in scheduled.vitals.iter().zip(&commanded.vitals).enumerate() {
        assert_eq!(a, b, "step {step}: true states differ");
    }
    assert!(scheduled.iter().all(|s| s.commands.is_empty()));
    let plain = without_commands(commanded);
    for (step, (a, b)) in scheduled.iter().zip(&plain).enumerate() {
        assert_eq!(a, b, "step {step} (ending {} ms) differs", a.now_ms);
    }
    commanded
        .iter()
        .flat_map(|s| s.commands.iter().map(move |c| (s.now_ms, c.clone())))
        .collect()
}

fn sepsis(patient: &str) -> Command {
    Command::start_condition(patient, ConditionKind::Sepsis)
}

fn sepsis_event(at_ms: u64, patient: u32) -> EventConfig {
    EventConfig {
        at_ms,
        who: one(patient),
        condition: ConditionKind::Sepsis,
        severity: 1.0,
        ramp_ms: ConditionKind::Sepsis.default_ramp_ms(),
        duration_ms: None,
        params: Params::defaults(&[]),
    }
}

#[test]
fn a_commanded_sepsis_onset_gives_the_scheduled_events_records() {
    let base = ward(4, lossy(), 20 * MIN);
    // On a step boundary and between two.
    for at_ms in [10 * MIN, 10 * MIN + 500] {
        let mut scheduled = base.clone();
        scheduled.events.push(sepsis_event(at_ms, 1));
        let scheduled = run(&scheduled, &[]);
        // Pushed before the run, mid-run, and in the last step before it is due.
        for push_ms in [0, 5 * MIN, 10 * MIN - 1_000] {
            let commanded = run(&base, &[push(push_ms, at_ms, sepsis("ward-001"))]);
            let applied = assert_same_records(&scheduled, &commanded);
            let due = at_ms.div_ceil(1_000) * 1_000;
            assert_eq!(
                applied,
                vec![(
                    due,
                    CommandApplied {
                        at_ms,
                        patient_idx: 1,
                        command: sepsis("ward-001"),
                    }
                )],
                "pushed at {push_ms}"
            );
            // The onset: exactly at the command's time, in the same step.
            let onsets: Vec<_> = commanded
                .iter()
                .flat_map(|s| s.onsets.iter().map(move |o| (s.now_ms, *o)))
                .collect();
            assert_eq!(onsets.len(), 1);
            assert_eq!(
                (onsets[0].0, onsets[0].1.patient_idx, onsets[0].1.onset_ms),
                (due, 1, at_ms)
            );
            assert_eq!(onsets[0].1.condition, ConditionKind::Sepsis);
        }
    }
    // Same commands, same times: the same records, byte for byte.
    let pushes = [
        push(0, 3 * MIN, sepsis("ward-002")),
        push(
            MIN,
            3 * MIN,
            Command::give("ward-002", InterventionKind::Oxygen),
        ),
    ];
    assert_eq!(run(&base, &pushes), run(&base, &pushes));
}

#[test]
fn intervention_commands_are_given_as_scheduled_ones_are() {
    let mut base = ward(3, lossy(), 25 * MIN);
    // An opioid-depressed patient to reverse, and a glucose load.
    base.events.push(EventConfig {
        at_ms: 2 * MIN,
        who: one(0),
        condition: ConditionKind::OpioidRespiratoryDepression,
        severity: 1.0,
        ramp_ms: 5 * MIN,
        duration_ms: None,
        params: Params::defaults(&[]),
    });
    let naloxone = Command::GiveIntervention {
        patient: "ward-000".into(),
        kind: InterventionKind::Naloxone,
        params: Params([0.8, 0.0, 0.0]),
        duration_ms: None,
    };
    let glucose = Command::GiveIntervention {
        patient: "ward-002".into(),
        kind: InterventionKind::Glucose,
        params: Params([25.0, 1.0, 0.0]), // IV
        duration_ms: None,
    };
    // Oxygen on patient 1: scheduled at 9 min, commanded at 4 min (the
    // course keeps its interventions in time order all the same).
    let oxygen = |at_ms, flow| InterventionConfig {
        at_ms,
        who: one(1),
        kind: InterventionKind::Oxygen,
        params: Params([flow, 0.0, 0.0]),
        duration_ms: Some(10 * MIN),
    };
    let oxygen_command = |flow| Command::GiveIntervention {
        patient: "ward-001".into(),
        kind: InterventionKind::Oxygen,
        params: Params([flow, 0.0, 0.0]),
        duration_ms: Some(10 * MIN),
    };
    base.interventions.push(oxygen(9 * MIN, 1.0));
    let mut scheduled = base.clone();
    scheduled.interventions = vec![
        oxygen(4 * MIN, 15.0),
        oxygen(9 * MIN, 1.0),
        InterventionConfig {
            at_ms: 12 * MIN,
            who: one(0),
            kind: InterventionKind::Naloxone,
            params: Params([0.8, 0.0, 0.0]),
            duration_ms: None,
        },
        InterventionConfig {
            at_ms: 7 * MIN + 250,
            who: one(2),
            kind: InterventionKind::Glucose,
            params: Params([25.0, 1.0, 0.0]),
            duration_ms: None,
        },
    ];
    let scheduled = run(&scheduled, &[]);
    let commanded = run(
        &base,
        &[
            push(0, 12 * MIN, naloxone.clone()),
            push(6 * MIN, 7 * MIN + 250, glucose.clone()),
            push(MIN, 4 * MIN, oxygen_command(15.0)),
        ],
    );
    let applied = assert_same_records(&scheduled, &commanded);
    assert_eq!(applied.len(), 3);
    let given: Vec<_> = commanded
        .iter()
        .flat_map(|s| s.interventions.iter().map(move |g| (s.now_ms, *g)))
        .filter(|g| g.1.kind != InterventionKind::Oxygen)
        .collect();
    assert_eq!(given.len(), 2);
    assert_eq!(
        (given[0].0, given[0].1.patient_idx, given[0].1.kind),
        (7 * MIN + 1_000, 2, InterventionKind::Glucose)
    );
    assert_eq!(given[0].1.at_ms, 7 * MIN + 250);
    assert_eq!(
        (given[1].0, given[1].1.kind, given[1].1.at_ms),
        (12 * MIN, InterventionKind::Naloxone, 12 * MIN)
    );
    assert_eq!(given[1].1.params, Params([0.8, 0.0, 0.0]));
}

#[test]
fn a_sensor_off_command_loses_that_devices_measurements_during_its_span() {
    let base = ward(3, NetworkConfig::IDEAL, 15 * MIN);
    let command = Command::DeviceFault {
        patient: "ward-002".into(),
        kind: FaultKind::SensorOff,
        device: Some("pulse_oximeter".into()),
        duration_ms: 3 * MIN,
    };
    let commanded = run(&base, &[push(2 * MIN, 5 * MIN, command)]);
    let twin = Twin::new(&base).unwrap();
    let oximeter = twin
        .device_names()
        .iter()
        .position(|n| n == "ward-002/pulse_oximeter")
        .unwrap() as u32;
    let losses: Vec<_> = commanded.iter().flat_map(|s| s.losses.iter()).collect();
    // Sampled every second: one "sensor off" alarm, then 179 not taken.
    assert_eq!(losses.len(), 179);
    assert!(losses.iter().all(|l| l.cause == LossCause::SensorOff
        && l.device_idx == oximeter
        && (5 * MIN..8 * MIN).contains(&l.lost_ms)));
    let alarms: Vec<_> = commanded
        .iter()
        .flat_map(|s| s.measurements.iter())
        .filter_map(|m| m.alarm.map(|a| (m.device_idx, m.measured_ms, a)))
        .collect();
    assert_eq!(alarms, vec![(oximeter, 5 * MIN, TechAlarm::SensorOff)]);
    // Back on the patient afterwards.
    assert!(
        commanded.iter().flat_map(|s| s.deliveries.iter()).any(|d| {
            d.measurement.device_idx == oximeter && d.measurement.measured_ms >= 8 * MIN
        })
    );
}

#[test]
fn device_fault_commands_give_the_scheduled_faults_records() {
    let mut base = ward(3, lossy(), 20 * MIN);
    // Patient 1's devices all carry a fault from the start (so a stuck
    // value has last readings to repeat in both runs).
    base.faults.push(FaultConfig {
        at_ms: 30_000,
        who: one(1),
        kind: FaultKind::ClockReset,
        device: None,
        duration_ms: 10_000,
    });
    let faults = [
        (FaultKind::SensorOff, 0, None, MIN, 2 * MIN),
        (
            FaultKind::BatteryDead,
            2,
            Some("bp_cuff"),
            4 * MIN,
            11 * MIN,
        ),
        (
            FaultKind::StuckValue,
            1,
            Some("pulse_oximeter"),
            3 * MIN,
            2 * MIN,
        ),
        (
            FaultKind::WrongUnit,
            1,
            Some("thermometer"),
            2 * MIN,
            20 * MIN,
        ),
        (FaultKind::ClockReset, 2, None, 90_500, 5 * MIN),
        (
            FaultKind::Disconnect,
            0,
            Some("pulse_oximeter"),
            6 * MIN,
            3 * MIN,
        ),
        (
            FaultKind::Occlusion,
            2,
            Some("infusion_pump"),
            8 * MIN,
            4 * MIN,
        ),
    ];
    let mut scheduled = base.clone();
    let mut pushes = Vec::new();
    for (i, &(kind, patient, device, at_ms, duration_ms)) in faults.iter().enumerate() {
        scheduled.faults.push(FaultConfig {
            at_ms,
            who: one(patient),
            kind,
            device: device.map(str::to_owned),
            duration_ms,
        });
        let command = Command::DeviceFault {
            patient: format!("ward-{patient:03}"),
            kind,
            device: device.map(str::to_owned),
            duration_ms,
        };
        // Some before the run, some while it runs.
        let push_ms = if i % 2 == 0 {
            0
        } else {
            (at_ms / 1_000 - 1) * 1_000
        };
        pushes.push(push(push_ms, at_ms, command));
    }
    let scheduled = run(&scheduled, &[]);
    let commanded = run(&base, &pushes);
    let applied = assert_same_records(&scheduled, &commanded);
    assert_eq!(applied.len(), faults.len());
    // The faults did something: device losses, messages held on board.
    let causes: Vec<LossCause> = commanded
        .iter()
        .flat_map(|s| s.losses.iter().map(|l| l.cause))
        .collect();
    assert!(causes.contains(&LossCause::SensorOff));
    assert!(causes.contains(&LossCause::BatteryDead));
    let alarms: Vec<TechAlarm> = commanded
        .iter()
        .flat_map(|s| s.measurements.iter().filter_map(|m| m.alarm))
        .collect();
    assert!(alarms.contains(&TechAlarm::Occlusion));
}

#[test]
fn an_outage_command_loses_without_a_gateway_and_buffers_behind_one() {
    let outage = || Command::NetworkOutage {
        patient: "ward-001".into(),
        duration_ms: 2 * MIN,
    };
    let mut fault = FaultConfig {
        at_ms: 5 * MIN,
        who: one(1),
        kind: FaultKind::NetworkOutage,
        device: None,
        duration_ms: 2 * MIN,
    };
    // No gateway: what patient 1's devices send in the outage is lost.
    let base = ward(3, NetworkConfig::IDEAL, 12 * MIN);
    let mut scheduled = base.clone();
    scheduled.faults.push(fault.clone());
    let commanded = run(&base, &[push(3 * MIN, 5 * MIN, outage())]);
    assert_same_records(&run(&scheduled, &[]), &commanded);
    let twin = Twin::new(&base).unwrap();
    let mine: Vec<u32> = (0..twin.device_names().len() as u32)
        .filter(|&d| twin.device_names()[d as usize].starts_with("ward-001/"))
        .collect();
    let losses: Vec<_> = commanded.iter().flat_map(|s| s.losses.iter()).collect();
    assert!(losses.len() >= 120, "{} lost", losses.len());
    assert!(losses.iter().all(|l| l.cause == LossCause::Outage
        && mine.contains(&l.device_idx)
        && (5 * MIN..7 * MIN).contains(&l.lost_ms)));

    // Behind a gateway: held, then flushed after the outage, none lost.
    let base = ward(3, buffered(), 12 * MIN);
    let mut scheduled = base.clone();
    fault.at_ms = 5 * MIN + 300;
    scheduled.faults.push(fault);
    let mut twin = Twin::new(&base).unwrap();
    twin.push_command(5 * MIN + 300, outage()).unwrap();
    let mut held = 0;
    let mut commanded = Run::default();
    while !twin.finished() {
        let out = twin.step().clone();
        commanded.record(&twin, out);
        held = held.max(twin.accounting().buffered);
    }
    assert_same_records(&run(&scheduled, &[]), &commanded);
    assert!(held >= 100, "held at most {held}");
    let acc = twin.accounting();
    assert_eq!((acc.lost(), acc.buffered), (0, 0), "{acc:?}");
    // Nothing of patient 1 arrived during the outage; its backlog after.
    let late = commanded
        .iter()
        .flat_map(|s| s.deliveries.iter())
        .filter(|d| mine.contains(&d.measurement.device_idx))
        .filter(|d| d.measurement.measured_ms > 5 * MIN + 300)
        .inspect(|d| {
            assert!(
                !(5 * MIN + 300..7 * MIN + 300).contains(&d.delivered_ms),
                "{d:?}"
            )
        })
        .filter(|d| d.sent_ms > d.measurement.measured_ms)
        .count();
    assert!(late >= 100, "{late} flushed");
}

#[test]
fn the_queue_refuses_what_it_cannot_do_and_holds_its_bound() {
    let mut twin = Twin::new(&ward(3, NetworkConfig::IDEAL, 10 * MIN)).unwrap();
    assert_eq!(twin.command_capacity(), COMMAND_CAPACITY);
    for _ in 0..60 {
        twin.step();
    }
    assert_eq!(twin.now_ms(), MIN);
    // The past: refused; now: accepted.
    assert_eq!(
        twin.push_command(MIN - 1, sepsis("ward-000")),
        Err(CommandError::InThePast {
            at_ms: MIN - 1,
            now_ms: MIN
        })
    );
    // Unknown patients: not in the population, or not as named.
    for name in [
        "ward-003",
        "ward-3",
        "ward-0001",
        "ward-",
        "ward",
        "icu-000",
        "",
        "ward-x01",
    ] {
        assert_eq!(
            twin.push_command(2 * MIN, sepsis(name)),
            Err(CommandError::UnknownPatient {
                patient: name.to_owned()
            }),
            "{name:?}"
        );
    }
    // Invalid parameters.
    let bad = [
        Command::StartCondition {
            patient: "ward-000".into(),
            condition: ConditionKind::Sepsis,
            severity: 0.0,
            ramp_ms: MIN,
            duration_ms: None,
            params: Params::defaults(&[]),
        },
        Command::GiveIntervention {
            patient: "ward-000".into(),
            kind: InterventionKind::Oxygen,
            params: Params([20.0, 0.0, 0.0]),
            duration_ms: None,
        },
        Command::DeviceFault {
            patient: "ward-000".into(),
            kind: FaultKind::NetworkOutage,
            device: None,
            duration_ms: MIN,
        },
        Command::NetworkOutage {
            patient: "ward-000".into(),
            duration_ms: 0,
        },
    ];
    for command in bad {
        let err = twin.push_command(2 * MIN, command.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                CommandError::OutOfRange { .. } | CommandError::NotADeviceFault { .. }
            ),
            "{command:?}: {err}"
        );
        let text = err.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
    }
    // A device the patient does not wear.
    let cgm = Command::DeviceFault {
        patient: "ward-001".into(),
        kind: FaultKind::SensorOff,
        device: Some("cgm".into()),
        duration_ms: MIN,
    };
    let err = twin.push_command(2 * MIN, cgm).unwrap_err();
    assert_eq!(err.to_string(), "patient `ward-001` wears no `cgm`");
    assert_eq!(twin.queued_commands(), 0, "nothing refused was queued");

    // Full: the capacity holds, the next is refused, nothing panics.
    let oxygen = Command::give("ward-002", InterventionKind::Oxygen);
    for i in 0..COMMAND_CAPACITY as u64 {
        twin.push_command(MIN + 1_000 * (i % 240), oxygen.clone())
            .unwrap();
    }
    assert_eq!(twin.queued_commands(), COMMAND_CAPACITY);
    assert_eq!(
        twin.push_command(3 * MIN, sepsis("ward-000")),
        Err(CommandError::QueueFull {
            capacity: COMMAND_CAPACITY
        })
    );
    assert_eq!(
        twin.push_command(3 * MIN, sepsis("ward-000"))
            .unwrap_err()
            .to_string(),
        "command queue is full (1024 commands waiting)"
    );
    // Steps drain what is due, each in its step, and room comes back.
    let mut applied = 0;
    let mut last = 0;
    while twin.queued_commands() > 0 {
        let out = twin.step();
        for c in &out.commands {
            assert!(c.at_ms > out.now_ms - 1_000 || c.at_ms == MIN);
            assert!(c.at_ms >= last);
            last = c.at_ms;
        }
        applied += out.commands.len();
        assert_eq!(
            out.interventions.len(),
            out.commands.len(),
            "each applied oxygen given in its step"
        );
    }
    assert_eq!(applied, COMMAND_CAPACITY);
    assert_eq!(twin.now_ms(), MIN + 239_000, "the last due in its own step");
    twin.push_command(twin.now_ms(), sepsis("ward-000"))
        .unwrap();
}

/// A record named for merging shards: (kind rank, time, stable id, text).
type Named = (u8, u64, u64, String);

/// Every record of a step, naming patients and devices by their names
/// (`names`: the twin's patient and device names).
fn named(names: &(Vec<String>, Vec<String>), out: &StepOutput) -> Vec<Named> {
    let p = |i: u32| names.0[i as usize].clone();
    let d = |i: u32| names.1[i as usize].clone();
    let mut records = Vec::new();
    let mut add = |rank, time, name: String, text: String| {
        records.push((rank, time, stable_id(&name), format!("{name} {text}")));
    };
    for o in &out.onsets {
        let text = format!("onset {:?} {} {}", o.condition, o.severity, o.ramp_ms);
        add(0, o.onset_ms, p(o.patient_idx), text);
    }
    for e in &out.ends {
        add(1, e.end_ms, p(e.patient_idx), format!("end {:?}", e.reason));
    }
    for g in &out.interventions {
        add(
            2,
            g.at_ms,
            p(g.patient_idx),
            format!("given {:?} {:?}", g.kind, g.rosc),
        );
    }
    for c in &out.commands {
        add(
            3,
            c.at_ms,
            p(c.patient_idx),
            format!("command {:?}", c.command),
        );
    }
    for c in &out.criteria {
        add(
            4,
            c.at_ms,
            p(c.patient_idx),
            format!("criterion {:?}", c.criterion),
        );
    }
    for m in &out.measurements {
        let text = format!("m {} {:?} {:?}", m.seq, m.readings.as_slice(), m.alarm);
        add(5, m.measured_ms, d(m.device_idx), text);
    }
    for x in &out.deliveries {
        let text = format!("d {} {} {}", x.measurement.seq, x.sent_ms, x.duplicate);
        add(6, x.delivered_ms, d(x.measurement.device_idx), text);
    }
    for l in &out.losses {
        add(
            7,
            l.lost_ms,
            d(l.device_idx),
            format!("l {} {:?}", l.seq, l.cause),
        );
    }
    records
}

/// Two cohorts (one behind gateways with random outages), lossy links.
fn two_wards() -> SimConfig {
    let mut config = ward(7, lossy(), 25 * MIN);
    config.cohorts.push(CohortConfig {
        name: "icu".into(),
        count: 5,
        network: NetworkConfig {
            gateway: Some(GatewayConfig {
                buffer: 150,
                eviction: Eviction::DropOldest,
                flush_per_s: 10.0,
                mtbf_ms: Some(12 * MIN),
                mttr_ms: MIN,
            }),
            ..NetworkConfig::named("lte").unwrap()
        },
        ..config.cohorts[0].clone()
    });
    config
}

/// The commands of the shard test: before the run and during it, several
/// at one time on one patient (arrival order must survive), several at one
/// time on patients whose stable-id order is not their arrival order.
fn busy_pushes() -> Vec<Push> {
    let oxygen = |patient: &str| Command::GiveIntervention {
        patient: patient.into(),
        kind: InterventionKind::Oxygen,
        params: Params([4.0, 0.0, 0.0]),
        duration_ms: Some(5 * MIN),
    };
    let glucose = |patient: &str| Command::give(patient, InterventionKind::Glucose);
    vec![
        push(
            0,
            3 * MIN,
            Command::start_condition("icu-002", ConditionKind::OpioidRespiratoryDepression),
        ),
        push(
            0,
            12 * MIN,
            Command::give("icu-002", InterventionKind::Naloxone),
        ),
        push(
            0,
            6 * MIN,
            Command::DeviceFault {
                patient: "icu-001".into(),
                kind: FaultKind::Disconnect,
                device: Some("pulse_oximeter".into()),
                duration_ms: 3 * MIN,
            },
        ),
        push(
            0,
            8 * MIN,
            Command::NetworkOutage {
                patient: "ward-004".into(),
                duration_ms: 4 * MIN,
            },
        ),
        push(
            0,
            10 * MIN,
            Command::DeviceFault {
                patient: "ward-001".into(),
                kind: FaultKind::SensorOff,
                device: None,
                duration_ms: 2 * MIN,
            },
        ),
        push(
            0,
            15 * MIN,
            Command::NetworkOutage {
                patient: "icu-000".into(),
                duration_ms: 3 * MIN,
            },
        ),
        push(5 * MIN, 5 * MIN, sepsis("ward-002")),
        push(5 * MIN, 7 * MIN + 1, oxygen("ward-002")),
        push(5 * MIN, 20 * MIN, glucose("ward-006")),
        push(5 * MIN, 20 * MIN, oxygen("ward-000")),
        push(5 * MIN, 20 * MIN, glucose("ward-000")),
        push(6 * MIN, 20 * MIN, glucose("icu-003")),
        push(6 * MIN, 20 * MIN, sepsis("ward-000")),
        push(6 * MIN, 20 * MIN, sepsis("ward-005")),
    ]
}

/// Runs `config` pushing `pushes` as they come due; each push must be
/// accepted (`Ok(())`) or refused as another shard's patient. Returns the
/// named records of each step and which pushes this twin accepted.
fn run_shard(config: &SimConfig, pushes: &[Push]) -> (Vec<Vec<Named>>, Vec<bool>) {
    let mut twin = Twin::new(config).unwrap();
    let names = (twin.patient_names().to_vec(), twin.device_names().to_vec());
    let mut accepted = vec![false; pushes.len()];
    let mut steps = Vec::new();
    loop {
        for (i, p) in pushes.iter().enumerate() {
            if p.push_ms != twin.now_ms() {
                continue;
            }
            match twin.push_command(p.at_ms, p.command.clone()) {
                Ok(()) => accepted[i] = true,
                Err(CommandError::OtherShard { patient, shard }) => {
                    assert_eq!(patient, p.command.patient());
                    assert_ne!(shard, config.shard.index);
                    assert!(shard < config.shard.count);
                }
                Err(e) => panic!("{e}"),
            }
        }
        if twin.finished() {
            break;
        }
        let records = named(&names, twin.step());
        // Commands come by (time, stable id), arrival breaking ties.
        let commands: Vec<_> = records.iter().filter(|r| r.0 == 3).collect();
        assert!(commands.is_sorted_by_key(|r| (r.1, r.2)));
        steps.push(records);
    }
    (steps, accepted)
}

#[test]
fn sharded_twins_given_the_same_commands_merge_into_the_unsharded_records() {
    let config = two_wards();
    let pushes = busy_pushes();
    let (whole, accepted) = run_shard(&config, &pushes);
    assert!(
        accepted.iter().all(|&a| a),
        "the whole twin takes every command"
    );
    let applied: usize = whole.iter().flatten().filter(|r| r.0 == 3).count();
    assert_eq!(applied, pushes.len());
    // Same time, same patient: arrival order (oxygen, then glucose, then sepsis).
    let at_20: Vec<&str> = whole
        .iter()
        .flatten()
        .filter(|r| r.0 == 3 && r.1 == 20 * MIN && r.3.starts_with("ward-000 "))
        .map(|r| r.3.as_str())
        .collect();
    assert_eq!(at_20.len(), 3);
    assert!(at_20[0].contains("Oxygen") && at_20[1].contains("Glucose"));
    assert!(at_20[2].contains("Sepsis"));
    for count in [2u32, 3] {
        let shards: Vec<_> = (0..count)
            .map(|index| {
                let mut c = config.clone();
                c.shard = Shard { index, count };
                run_shard(&c, &pushes)
            })
            .collect();
        // Each command taken by exactly one shard.
        for i in 0..pushes.len() {
            let takers = shards.iter().filter(|(_, a)| a[i]).count();
            assert_eq!(takers, 1, "command {i} taken by {takers} shards");
        }
        for (step, expected) in whole.iter().enumerate() {
            // Merge: concatenate the shards' records and sort (stably) by
            // (kind, time, stable id): each entity's records keep their
            // shard's order, which must be the unsharded run's.
            let mut merged: Vec<_> = shards.iter().flat_map(|s| s.0[step].clone()).collect();
            merged.sort_by_key(|r| (r.0, r.1, r.2));
            let mut expected = expected.clone();
            expected.sort_by_key(|r| (r.0, r.1, r.2));
            assert_eq!(merged, expected, "step {step}, {count} shards");
        }
    }
}

#[test]
fn random_commands_keep_every_measurement_accounted_for() {
    type Raw = (u8, u8, u16, u8, u8);
    fn prop(raw: Vec<Raw>, gateway: bool, early: u8) -> TestResult {
        let net = if gateway {
            NetworkConfig {
                gateway: Some(GatewayConfig {
                    buffer: 60,
                    eviction: Eviction::DropNewest,
                    flush_per_s: 3.0,
                    mtbf_ms: Some(8 * MIN),
                    mttr_ms: MIN,
                }),
                ..lossy()
            }
        } else {
            lossy()
        };
        let mut config = ward(3, net, 20 * MIN);
        config.cohorts[0].devices[0].spec.retries = 2;
        config.cohorts[0].devices[0].spec.retry_ms = 1_500;
        config.cohorts[0].devices[0].spec.duplicate_pct = 3.0;
        let run_ms = config.duration_ms;
        let mut commands: Vec<(u64, u64, Command)> = raw
            .iter()
            .take(24)
            .map(|&(kind, who, at, dur, extra)| {
                // Patients 3 and 4 do not exist.
                let patient = format!("ward-{:03}", who % 5);
                let at_ms = u64::from(at) * 37 % (run_ms + 2 * MIN);
                let duration_ms = u64::from(dur) * 3_000; // 0: refused
                let command = match kind % 4 {
                    0 => Command::StartCondition {
                        patient,
                        condition: ConditionKind::ALL[usize::from(extra) % 9],
                        severity: f64::from(extra % 11) / 10.0, // 0: refused
                        ramp_ms: u64::from(dur) * 10_000,
                        duration_ms: (dur % 3 != 0).then_some(duration_ms),
                        params: Params::defaults(
                            ConditionKind::ALL[usize::from(extra) % 9].params(),
                        ),
                    },
                    1 => {
                        let k = InterventionKind::ALL[usize::from(extra) % 13];
                        Command::GiveIntervention {
                            patient,
                            kind: k,
                            params: Params::defaults(k.params()),
                            duration_ms: (dur % 2 == 0).then_some(duration_ms),
                        }
                    }
                    2 => Command::DeviceFault {
                        patient,
                        kind: FaultKind::ALL[usize::from(extra) % 8],
                        device: match extra % 4 {
                            0 => None,
                            1 => Some("pulse_oximeter".into()),
                            2 => Some("bp_cuff".into()),
                            _ => Some("cgm".into()), // not worn: refused
                        },
                        duration_ms,
                    },
                    _ => Command::NetworkOutage {
                        patient,
                        duration_ms,
                    },
                };
                // Pushed before the run, a little before its time, or
                // (refused when it is past) a little after.
                let push_ms = match extra % 3 {
                    0 => 0,
                    1 => (at_ms / 1_000).saturating_sub(u64::from(early % 90)) * 1_000,
                    _ => (at_ms / 1_000 + u64::from(early % 4)) * 1_000,
                };
                (push_ms, at_ms, command)
            })
            .collect();
        commands.sort_by_key(|c| c.0);
        let mut twin = Twin::new(&config).unwrap();
        let mut taken: Vec<(u64, String)> = Vec::new();
        let mut seen: Vec<(u64, String)> = Vec::new();
        let mut next = 0;
        loop {
            while next < commands.len() && commands[next].0 <= twin.now_ms() {
                let (_, at_ms, command) = &commands[next];
                next += 1;
                let valid = command.check().is_ok();
                match twin.push_command(*at_ms, command.clone()) {
                    Ok(()) if valid => taken.push((*at_ms, format!("{command:?}"))),
                    Ok(()) => return TestResult::error(format!("took invalid {command:?}")),
                    Err(CommandError::InThePast { at_ms: a, now_ms })
                        if a == *at_ms && a < now_ms && now_ms == twin.now_ms() => {}
                    Err(CommandError::UnknownPatient { .. }) if command.patient() >= "ward-003" => {
                    }
                    Err(CommandError::NoSuchDevice { .. }) => {}
                    Err(e) if !valid && Some(&e) == command.check().err().as_ref() => {}
                    Err(e) => return TestResult::error(format!("{command:?}: {e}")),
                }
            }
            if twin.finished() {
                break;
            }
            let out = twin.step();
            for c in &out.commands {
                if c.at_ms > out.now_ms || c.at_ms + 1_000 < out.now_ms {
                    return TestResult::error(format!("{c:?} applied at {}", out.now_ms));
                }
                seen.push((c.at_ms, format!("{:?}", c.command)));
            }
            let acc = twin.accounting();
            if acc.generated != acc.delivered + acc.lost() + acc.pending() {
                return TestResult::error(format!("at {}: {acc:?}", twin.now_ms()));
            }
        }
        // Every command taken and due was applied once; the rest wait.
        let end = twin.now_ms();
        let mut due: Vec<_> = taken.iter().filter(|t| t.0 <= end).cloned().collect();
        due.sort();
        seen.sort();
        if due != seen {
            return TestResult::error(format!("taken {due:?}\napplied {seen:?}"));
        }
        if twin.queued_commands() != taken.len() - due.len() {
            return TestResult::error("queue length".to_owned());
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(30, 0x636f_6d6d_616e_6473))
        .tests(30)
        .quickcheck(prop as fn(Vec<Raw>, bool, u8) -> TestResult);
}
