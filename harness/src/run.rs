//! `medtwin run` and `medtwin reference-backend`: wiring the twin, the
//! clock, the transport, the target and the webhook into one run.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use medtwin_sim::{SimConfig, StepOutput, Twin};
use tokio::sync::mpsc;

use crate::backend::{self, BackendConfig, Faults};
use crate::checker::observe::{Observer, Truth};
use crate::checker::{self, AlertRecord, Verdict};
use crate::cli::{BackendArgs, EXIT_FAIL, EXIT_HARNESS, EXIT_INPUT, EXIT_PASS, RunArgs};
use crate::clock::SimClock;
use crate::intake::{self, Intake};
use crate::report::{self, Report};
use crate::scenario::{self, Clock, Expectation, Scenario, Target, duration};
use crate::transport::{Outgoing, Transport, TransportConfig};
use crate::wire;

/// Steps the twin may run ahead of the transport (bounded memory).
const STEPS_AHEAD: usize = 64;
/// Wall time between the run's start and simulated zero, so the first
/// messages are not already late.
const EPOCH_LEAD: Duration = Duration::from_millis(200);

/// Entry point of `medtwin run`: one scenario file, or a suite (a folder,
/// or `--seeds N`).
pub fn main(args: RunArgs) -> u8 {
    if args.path.is_dir() || args.seeds != 1 {
        return crate::suite::main(&args);
    }
    let scenario = match scenario::load(&args.path)
        .map_err(|d| d.to_string())
        .and_then(|s| apply_overrides(s, &args))
    {
        Ok(scenario) => scenario,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_INPUT;
        }
    };
    let Some(runtime) = runtime() else {
        return EXIT_HARNESS;
    };
    let report = match runtime.block_on(execute(&scenario)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error:#}");
            return EXIT_HARNESS;
        }
    };
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&report.run_id));
    if let Err(error) = report.write(&dir) {
        eprintln!(
            "error: cannot write the report to {}: {error:#}",
            dir.display()
        );
        return EXIT_HARNESS;
    }
    if args.quiet {
        println!(
            "{}: {}",
            scenario.name,
            if report.verdict == Verdict::Pass {
                "pass"
            } else {
                "fail"
            }
        );
    } else {
        println!("{}", report.summary());
    }
    println!("report: {}", dir.join("report.json").display());
    println!("html: {}", dir.join("index.html").display());
    if report.verdict == Verdict::Pass {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

/// The async runtime for the edge: two workers, the size of the machine.
pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    built
        .map_err(|error| eprintln!("error: cannot start the async runtime: {error}"))
        .ok()
}

/// Command-line overrides on top of the scenario file.
pub(crate) fn apply_overrides(mut s: Scenario, args: &RunArgs) -> Result<Scenario, String> {
    let bad = |what: String| Err(format!("error: {what}"));
    if let Some(seed) = args.seed {
        s.sim.seed = seed;
    }
    if let Some(url) = &args.target {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return bad(format!("--target {url} is not an http(s) URL")),
        }
        let (timeout, concurrency) = s
            .target
            .as_ref()
            .map_or((Duration::from_secs(5), 8), |t| (t.timeout, t.concurrency));
        let token = s.target.as_ref().and_then(|t| t.token.clone());
        s.target = Some(Target {
            url: url.clone(),
            token,
            timeout,
            concurrency,
        });
    }
    match (args.clock.as_deref(), args.speed) {
        (None, None) => {}
        (None | Some("accelerated"), Some(speed)) if speed > 0.0 && speed <= 1_000_000.0 => {
            s.clock = Clock::Accelerated { speed };
        }
        (None | Some("accelerated"), Some(speed)) => {
            return bad(format!("--speed {speed} is out of range (0 to 1000000]"));
        }
        (Some("accelerated"), None) => return bad("--clock accelerated needs --speed".into()),
        (Some("virtual"), None) => s.clock = Clock::Virtual,
        (Some("real-time"), None) => s.clock = Clock::RealTime,
        (Some(mode @ ("virtual" | "real-time")), Some(_)) => {
            return bad(format!("--speed does not apply to --clock {mode}"));
        }
        (Some(other), _) => {
            return bad(format!(
                "unknown clock mode `{other}` (virtual, real-time or accelerated)"
            ));
        }
    }
    let pct_knobs = [
        (
            "--drop-alerts-pct",
            args.drop_alerts_pct,
            &mut s.backend.drop_alerts_pct,
        ),
        (
            "--duplicate-alerts-pct",
            args.duplicate_alerts_pct,
            &mut s.backend.duplicate_alerts_pct,
        ),
        (
            "--spurious-alerts-pct",
            args.spurious_alerts_pct,
            &mut s.backend.spurious_alerts_pct,
        ),
        (
            "--wrong-patient-pct",
            args.wrong_patient_pct,
            &mut s.backend.wrong_patient_pct,
        ),
        (
            "--wrong-kind-pct",
            args.wrong_kind_pct,
            &mut s.backend.wrong_kind_pct,
        ),
    ];
    let any_knob = args.delay_alerts.is_some() || pct_knobs.iter().any(|k| k.1.is_some());
    if any_knob && s.target.is_some() {
        return bad("the fault knobs (--drop-alerts-pct, --delay-alerts, ...) apply to the embedded reference backend, not to a --target".into());
    }
    for (flag, value, knob) in pct_knobs {
        if let Some(pct) = value {
            if !(0.0..=100.0).contains(&pct) {
                return bad(format!("{flag} {pct} is not a percentage"));
            }
            *knob = pct;
        }
    }
    if let Some(text) = &args.delay_alerts {
        s.backend.delay_alerts_ms = duration::parse(text)
            .map_err(|why| format!("error: --delay-alerts {text}: {why}"))?
            .ms();
    }
    Ok(s)
}

/// Width of a lockstep window in virtual time, simulated ms.
const VIRTUAL_WINDOW_MS: u64 = 1_000;

/// What the twin thread hands the driver for one step.
struct Batch {
    deliveries: Vec<Outgoing>,
}

/// What the twin thread found over the whole run.
#[derive(Default)]
struct TwinSummary {
    patients: Vec<String>,
    devices_by_kind: BTreeMap<String, u64>,
    n_devices: u64,
    accounting: report::Counts,
    by_kind: BTreeMap<String, report::DeviceCounts>,
    lost_by_cause: BTreeMap<String, u64>,
    duplicates: u64,
    telemetry_digest: String,
    truth_digest: String,
    steps: u64,
    busy: Duration,
    truth: Option<Truth>,
}

/// Runs the twin to the end, streaming each step's deliveries to `tx`.
/// Runs on its own thread: the twin is synchronous and must not block the
/// async runtime.
fn run_twin(
    config: SimConfig,
    expectations: Vec<Expectation>,
    start: SystemTime,
    tx: mpsc::Sender<Batch>,
) -> Result<TwinSummary, medtwin_sim::ConfigError> {
    let mut twin = Twin::new(&config)?;
    let patients = twin.patient_names().to_vec();
    let mut observer = Observer::new(
        &expectations,
        patients.len(),
        config.duration_ms,
        config.step_ms,
    );
    let devices = twin.device_names().to_vec();
    // Each device's model (catalogue entry) name: its kind on the wire and
    // in the report.
    let kinds: Vec<String> = (0..devices.len() as u32)
        .map(|i| {
            twin.device_model(i)
                .map_or_else(String::new, |m| m.name.clone())
        })
        .collect();
    let mut summary = TwinSummary {
        patients: patients.clone(),
        n_devices: devices.len() as u64,
        ..Default::default()
    };
    for kind in &kinds {
        *summary.devices_by_kind.entry(kind.clone()).or_insert(0) += 1;
    }
    let names = wire::Names {
        patients: &patients,
        devices: &devices,
        models: &kinds,
    };
    let mut digester = crate::digest::Digester::default();
    while !twin.finished() {
        let started = Instant::now();
        let out: &StepOutput = twin.step();
        summary.busy += started.elapsed();
        summary.steps += 1;
        // Episodes, criterion onsets, rule oracles and vitals series.
        observer.step(out, &patients);
        digester.step(out);
        for m in &out.measurements {
            let kind = summary
                .by_kind
                .entry(kinds[m.device_idx as usize].clone())
                .or_default();
            kind.counts.generated += 1;
            if let Some(alarm) = m.alarm {
                *kind.alarms.entry(alarm.name().to_owned()).or_insert(0) += 1;
            }
            if let Some(event) = m.event {
                *kind.events.entry(event.kind.name().to_owned()).or_insert(0) += 1;
            }
            if m.quality != medtwin_sim::Quality::Good {
                *kind
                    .artifacts
                    .entry(m.quality.name().to_owned())
                    .or_insert(0) += 1;
            }
        }
        for d in &out.deliveries {
            let kind = summary
                .by_kind
                .entry(kinds[d.measurement.device_idx as usize].clone())
                .or_default();
            if d.duplicate {
                kind.duplicates += 1;
                summary.duplicates += 1;
            } else {
                kind.counts.delivered += 1;
            }
        }
        for l in &out.losses {
            let kind = summary
                .by_kind
                .entry(kinds[l.device_idx as usize].clone())
                .or_default();
            kind.counts.lost += 1;
            *kind
                .lost_by_cause
                .entry(l.cause.name().to_owned())
                .or_insert(0) += 1;
            *summary
                .lost_by_cause
                .entry(l.cause.name().to_owned())
                .or_insert(0) += 1;
        }
        if out.deliveries.is_empty() {
            continue;
        }
        let batch = Batch {
            deliveries: out
                .deliveries
                .iter()
                .map(|d| Outgoing {
                    patient_idx: d.measurement.patient_idx,
                    delivered_ms: d.delivered_ms,
                    body: serde_json::to_vec(&wire::telemetry(&d.measurement, &names, start))
                        .unwrap_or_default(),
                })
                .collect(),
        };
        if tx.blocking_send(batch).is_err() {
            break; // the driver stopped; its error is reported there
        }
    }
    let acc = twin.accounting();
    summary.accounting = report::Counts {
        generated: acc.generated,
        delivered: acc.delivered,
        lost: acc.lost(),
        buffered: acc.pending(),
    };
    for kind in summary.by_kind.values_mut() {
        let counts = &mut kind.counts;
        counts.buffered = counts.generated - counts.delivered - counts.lost;
    }
    let digests = digester.finish();
    summary.telemetry_digest = digests.telemetry;
    summary.truth_digest = digests.truth;
    summary.truth = Some(observer.finish(&patients));
    Ok(summary)
}

/// Runs a validated scenario and returns its report.
pub async fn execute(s: &Scenario) -> anyhow::Result<Report> {
    let wall_start = Instant::now();
    let epoch = wall_start + EPOCH_LEAD;
    let epoch_system = SystemTime::now() + EPOCH_LEAD;
    // Whole milliseconds, so timestamps and their round trips are exact.
    let start = s.start.unwrap_or_else(|| truncate_to_ms(epoch_system));
    let clock = Arc::new(SimClock::new(s.clock, epoch));
    let token = s
        .alerts
        .token
        .clone()
        .or_else(|| {
            std::env::var("MEDTWIN_ALERT_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
        })
        .unwrap_or_else(random_token);

    let intake = Intake::start(s.alerts.listen, token.clone(), clock.clone())
        .await
        .with_context(|| format!("cannot listen for alerts on {}", s.alerts.listen))?;

    let (target_url, transport_config, backend) = match &s.target {
        Some(target) => (target.url.clone(), target.clone(), None),
        None => {
            let mut config = BackendConfig::new(intake.url());
            config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
            config.alerts_token = Some(token.clone());
            config.faults = Faults {
                drop_alerts_pct: s.backend.drop_alerts_pct,
                delay_alerts: clock.wall(s.backend.delay_alerts_ms),
                duplicate_alerts_pct: s.backend.duplicate_alerts_pct,
                spurious_alerts_pct: s.backend.spurious_alerts_pct,
                wrong_patient_pct: s.backend.wrong_patient_pct,
                wrong_kind_pct: s.backend.wrong_kind_pct,
            };
            config.smoothing = Duration::from_millis(s.backend.smoothing_ms);
            config.reset_after = Duration::from_millis(s.backend.reset_after_ms);
            config.seed = s.sim.seed;
            let handle = backend::start(config)
                .await
                .context("cannot start the embedded reference backend")?;
            let url = format!("http://{}/v1/measurements", handle.addr());
            let target = Target {
                url: url.clone(),
                token: None,
                timeout: Duration::from_secs(5),
                concurrency: 8,
            };
            (url, target, Some(handle))
        }
    };
    let transport = Transport::start(
        TransportConfig {
            url: transport_config.url.clone(),
            token: transport_config.token.clone(),
            timeout: transport_config.timeout,
            concurrency: transport_config.concurrency,
        },
        clock.clone(),
    )?;

    let (tx, mut rx) = mpsc::channel::<Batch>(STEPS_AHEAD);
    let config = s.sim.clone();
    let expectations = s.expectations.clone();
    let twin_thread = std::thread::Builder::new()
        .name("medtwin-twin".into())
        .spawn(move || run_twin(config, expectations, start, tx))
        .context("cannot start the twin thread")?;
    // Virtual time has no wall clock to pace the lanes, so it moves in
    // lockstep windows: nothing from the next window is sent until the
    // target has answered everything before it. An alert is then placed
    // within about a window of the data that caused it, whatever the lanes'
    // relative speeds.
    let lockstep = s.clock.speed().is_none();
    let mut next_barrier_ms = VIRTUAL_WINDOW_MS;
    while let Some(batch) = rx.recv().await {
        for message in batch.deliveries {
            if lockstep && message.delivered_ms >= next_barrier_ms {
                transport.flush().await;
                next_barrier_ms =
                    (message.delivered_ms / VIRTUAL_WINDOW_MS + 1) * VIRTUAL_WINDOW_MS;
            }
            transport.send(message).await;
        }
    }
    let mut twin = twin_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the twin thread panicked"))?
        .context("the twin refused its configuration")?;
    let (transport_stats, lag) = transport.finish().await;

    // Let simulated time run out on the wall clock, then give late alerts
    // their grace period.
    if let Some(end) = clock.due(s.sim.duration_ms) {
        tokio::time::sleep_until(end.into()).await;
    }
    let backend_stats = match backend {
        Some(handle) => {
            let grace = s.alerts.grace + clock.wall(s.backend.delay_alerts_ms);
            let stats = handle.shutdown(grace).await;
            Some(serde_json::to_value(stats)?)
        }
        None => {
            tokio::time::sleep(s.alerts.grace).await;
            None
        }
    };
    // The last simulated time at which an alert could have been seen.
    let end_ms = match s.clock {
        Clock::Virtual => s.sim.duration_ms,
        _ => clock.sim_at(Instant::now()).max(s.sim.duration_ms),
    };
    let (received, refused) = intake.stop().await;

    let known: HashMap<&str, ()> = twin.patients.iter().map(|p| (p.as_str(), ())).collect();
    let alerts: Vec<AlertRecord> = received
        .iter()
        .map(|a| AlertRecord {
            patient: a.message.patient_id.clone(),
            kind: a.message.kind.clone(),
            at_ms: a.received_sim_ms,
            measured_ms: a
                .message
                .measurement_time
                .as_deref()
                .and_then(wire::parse_time)
                .and_then(|t| t.duration_since(start).ok())
                .map(|d| d.as_millis() as u64),
        })
        .collect();
    let unknown_patients = alerts
        .iter()
        .filter(|a| !known.contains_key(a.patient.as_str()))
        .count() as u64;
    let mut truth = twin
        .truth
        .take()
        .context("the twin thread returned no truth")?;
    let window = checker::Window {
        end_ms,
        patients: twin.patients.len() as u64,
        duration_ms: s.sim.duration_ms,
    };
    let expectations: Vec<_> = s
        .expectations
        .iter()
        .zip(&truth.obligations)
        .map(|(e, owed)| checker::check(e, owed, &alerts, window))
        .collect();
    let metrics = checker::summarize(&expectations);
    let timelines = report::timelines(&expectations, &alerts, &truth, &twin.patients);
    let episodes = std::mem::take(&mut truth.episodes);
    let interventions = std::mem::take(&mut truth.interventions);
    let verdict = if expectations.iter().all(|e| e.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };

    let patients = twin.patients.len() as u64;
    let busy_s = twin.busy.as_secs_f64();
    Ok(Report {
        schema: report::REPORT_SCHEMA.to_owned(),
        synthetic_data: true,
        run_id: run_id(&s.name, s.sim.seed, epoch_system),
        scenario: report::ScenarioInfo {
            name: s.name.clone(),
            path: s.path.display().to_string(),
            description: s.description.clone(),
        },
        seed: s.sim.seed,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        repro: repro(s),
        verdict,
        clock: report::ClockInfo {
            mode: s.clock.mode_name().to_owned(),
            speed: s.clock.speed(),
            epoch: wire::format_time(epoch_system),
            start: wire::format_time(start),
            alert_time_basis: match s.clock {
                Clock::Virtual => {
                    "frontier: the latest simulated delivery time sent when the alert arrived"
                }
                _ => "epoch: (arrival wall time - epoch) x speed",
            }
            .to_owned(),
        },
        target: report::TargetInfo {
            kind: if s.target.is_some() {
                "external"
            } else {
                "embedded-reference-backend"
            }
            .to_owned(),
            url: target_url,
            faults: s.target.is_none().then_some(report::Faults {
                drop_alerts_pct: s.backend.drop_alerts_pct,
                delay_alerts_ms: s.backend.delay_alerts_ms,
                duplicate_alerts_pct: s.backend.duplicate_alerts_pct,
                spurious_alerts_pct: s.backend.spurious_alerts_pct,
                wrong_patient_pct: s.backend.wrong_patient_pct,
                wrong_kind_pct: s.backend.wrong_kind_pct,
            }),
        },
        timing: report::Timing {
            sim_duration_ms: s.sim.duration_ms,
            step_ms: s.sim.step_ms,
            wall_ms: wall_start.elapsed().as_millis() as u64,
            steps: twin.steps,
            twin_busy_ms: busy_s * 1000.0,
            twin_patient_steps_per_s: if busy_s > 0.0 {
                (patients * twin.steps) as f64 / busy_s
            } else {
                0.0
            },
        },
        population: report::Population {
            patients,
            devices: twin.n_devices,
            devices_by_kind: twin.devices_by_kind.clone(),
        },
        digests: report::Digests {
            telemetry: twin.telemetry_digest.clone(),
            truth: twin.truth_digest.clone(),
        },
        accounting: report::Accounting {
            total: twin.accounting.clone(),
            lost_by_cause: twin.lost_by_cause.clone(),
            duplicates: twin.duplicates,
            by_device_kind: twin.by_kind.clone(),
        },
        transport: report::TransportReport {
            stats: transport_stats,
            send_lag_ms: s.clock.speed().map(|_| lag),
        },
        alerts: report::AlertsReport {
            received: received.len() as u64,
            by_kind: intake::count_by_kind(&received),
            unknown_patients,
            refused,
        },
        episodes,
        interventions,
        interventions_not_listed: truth.interventions_dropped,
        expectations,
        metrics,
        timelines,
        backend: backend_stats,
    })
}

fn truncate_to_ms(t: SystemTime) -> SystemTime {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// A 128-bit token from the OS's randomness (via the std hasher's keys)
/// mixed with the time: the webhook token, never used by the twin.
fn random_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let a = RandomState::new().hash_one(nanos);
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:016x}")
}

/// `20261124T101500Z-quickstart-s42`.
fn run_id(name: &str, seed: u64, at: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{stamp}-{slug}-s{seed}")
}

/// A command that repeats this run exactly (scenario, seed, version, and
/// whatever the command line changed).
fn repro(s: &Scenario) -> String {
    let mut cmd = format!("medtwin run {} --seed {}", s.path.display(), s.sim.seed);
    match s.clock {
        Clock::Virtual => cmd.push_str(" --clock virtual"),
        Clock::RealTime => cmd.push_str(" --clock real-time"),
        Clock::Accelerated { speed } => {
            cmd.push_str(&format!(" --clock accelerated --speed {speed}"))
        }
    }
    match &s.target {
        Some(target) => cmd.push_str(&format!(" --target {}", target.url)),
        None => {
            let b = &s.backend;
            for (flag, pct) in [
                ("--drop-alerts-pct", b.drop_alerts_pct),
                ("--duplicate-alerts-pct", b.duplicate_alerts_pct),
                ("--spurious-alerts-pct", b.spurious_alerts_pct),
                ("--wrong-patient-pct", b.wrong_patient_pct),
                ("--wrong-kind-pct", b.wrong_kind_pct),
            ] {
                if pct > 0.0 {
                    cmd.push_str(&format!(" {flag} {pct}"));
                }
            }
            if s.backend.delay_alerts_ms > 0 {
                cmd.push_str(&format!(
                    " --delay-alerts {}",
                    duration::format(s.backend.delay_alerts_ms)
                ));
            }
        }
    }
    cmd.push_str(&format!("  # medtwin {}", env!("CARGO_PKG_VERSION")));
    cmd
}

/// Entry point of `medtwin reference-backend`.
pub fn reference_backend_main(args: BackendArgs) -> u8 {
    let parse_dur = |flag: &str, text: &str| {
        duration::parse(text).map_err(|why| format!("error: --{flag} {text}: {why}"))
    };
    let settings = (|| -> Result<BackendConfig, String> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| {
            format!(
                "error: --listen {} is not an address like 127.0.0.1:8080",
                args.listen
            )
        })?;
        match reqwest::Url::parse(&args.alerts) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(format!(
                    "error: --alerts {} is not an http(s) URL",
                    args.alerts
                ));
            }
        }
        for (flag, pct) in [
            ("--drop-alerts-pct", args.drop_alerts_pct),
            ("--duplicate-alerts-pct", args.duplicate_alerts_pct),
            ("--spurious-alerts-pct", args.spurious_alerts_pct),
            ("--wrong-patient-pct", args.wrong_patient_pct),
            ("--wrong-kind-pct", args.wrong_kind_pct),
        ] {
            if !(0.0..=100.0).contains(&pct) {
                return Err(format!("error: {flag} {pct} is not a percentage"));
            }
        }
        let mut config = BackendConfig::new(args.alerts.clone());
        config.listen = listen;
        config.alerts_token = args
            .alerts_token
            .clone()
            .or_else(|| std::env::var("MEDTWIN_ALERT_TOKEN").ok());
        config.faults = Faults {
            drop_alerts_pct: args.drop_alerts_pct,
            delay_alerts: parse_dur("delay-alerts", &args.delay_alerts)?.std(),
            duplicate_alerts_pct: args.duplicate_alerts_pct,
            spurious_alerts_pct: args.spurious_alerts_pct,
            wrong_patient_pct: args.wrong_patient_pct,
            wrong_kind_pct: args.wrong_kind_pct,
        };
        config.smoothing = parse_dur("smoothing", &args.smoothing)?.std();
        config.reset_after = parse_dur("reset-after", &args.reset_after)?.std();
        config.seed = args.seed;
        Ok(config)
    })();
    let config = match settings {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_INPUT;
        }
    };
    let stop_after = match args
        .stop_after
        .as_deref()
        .map(|t| parse_dur("stop-after", t))
        .transpose()
    {
        Ok(d) => d.map(|d| d.std()),
        Err(message) => {
            eprintln!("{message}");
            return EXIT_INPUT;
        }
    };
    let Some(runtime) = runtime() else {
        return EXIT_HARNESS;
    };
    runtime.block_on(async move {
        let listen = config.listen;
        let handle = match backend::start(config).await {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("error: cannot start the reference backend on {listen}: {error:#}");
                return EXIT_HARNESS;
            }
        };
        println!(
            "reference backend: POST telemetry to http://{}/v1/measurements",
            handle.addr()
        );
        let stop = async {
            match stop_after {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        stop.await;
        let stats = handle.shutdown(Duration::from_secs(5)).await;
        println!("{}", serde_json::to_string(&stats).unwrap_or_default());
        EXIT_PASS
    })
}
