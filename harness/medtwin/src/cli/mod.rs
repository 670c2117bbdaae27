//! The command line: the only place that turns outcomes into exit codes
//! and prints errors. Every command returns `Result<Outcome, Failure>`;
//! [`main`] maps them.
//!
//! Exit codes: 0 every expectation held, 1 one failed, 2 usage or input
//! error (bad arguments, an invalid scenario, a scenario too big for the
//! machine), 3 the harness itself failed or the run passed its wall-time
//! deadline (`--max-wall`), 4 the target did not take the telemetry
//! (unreachable, or refused too much of it to judge), 5 a `medtwin load`
//! threshold failed, 130 stopped by SIGINT
//! and 143 by SIGTERM (each after writing a report marked interrupted).

pub mod args;
mod backend;
mod certs;
pub mod load;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser as _;

use std::io::IsTerminal as _;

use crate::report::{Report, Verdict};
use crate::run::Controls;
use crate::run::progress::Progress;
use crate::scenario;
use crate::scenario::limits::Estimate;
use crate::stop::{Stop, StopReason};
use crate::suite::{self, SuiteError};
pub use args::{BackendArgs, BenchArgs, BenchWhat, Cli, Command, CompareArgs, RunArgs};

/// Every expectation held.
pub const EXIT_PASS: u8 = 0;
/// At least one expectation failed.
pub const EXIT_FAIL: u8 = 1;
/// Usage or input error (bad arguments, invalid scenario).
pub const EXIT_INPUT: u8 = 2;
/// The harness itself failed (could not bind, internal error).
pub const EXIT_HARNESS: u8 = 3;
/// The target did not take the telemetry (unreachable, or refused too much
/// of it): its alerts could not be judged.
pub const EXIT_TARGET: u8 = 4;
/// `medtwin load` or `merge`: a `[load]` threshold failed.
pub const EXIT_THRESHOLDS: u8 = 5;
/// Stopped by SIGINT (128 + 2, as shells report it); a report was written.
pub const EXIT_SIGINT: u8 = 130;
/// Stopped by SIGTERM (128 + 15); a report was written.
pub const EXIT_SIGTERM: u8 = 143;

/// How a command ended, when it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held (or there was nothing to judge).
    Pass,
    /// An expectation failed, or a comparison found a regression.
    Fail,
    /// The target did not take the telemetry.
    Target,
    /// A load threshold failed.
    Thresholds,
    /// Stopped early (its report is marked interrupted).
    Stopped(StopReason),
}

/// Why a command could not do its job.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or input: the message says which.
    Input(String),
    /// The harness itself failed.
    Harness(String),
}

/// Parses the command line, runs it, prints any error and returns the
/// exit code.
pub fn main() -> ExitCode {
    medtwin_tls::install_default_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { EXIT_INPUT } else { 0 });
        }
    };
    let code = match execute(cli) {
        Ok(Outcome::Pass) => EXIT_PASS,
        Ok(Outcome::Fail) => EXIT_FAIL,
        Ok(Outcome::Target) => EXIT_TARGET,
        Ok(Outcome::Thresholds) => EXIT_THRESHOLDS,
        Ok(Outcome::Stopped(StopReason::Interrupt)) => EXIT_SIGINT,
        Ok(Outcome::Stopped(StopReason::Terminate)) => EXIT_SIGTERM,
        Ok(Outcome::Stopped(StopReason::Deadline)) => EXIT_HARNESS,
        Err(Failure::Input(message)) => {
            eprintln!("{message}");
            EXIT_INPUT
        }
        Err(Failure::Harness(message)) => {
            eprintln!("{message}");
            EXIT_HARNESS
        }
    };
    ExitCode::from(code)
}

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Run(args) => run(&args),
        Command::ReferenceBackend(args) => backend::run(&args),
        Command::Report { path } => rerender(&path),
        Command::Compare(args) => compare(&args),
        Command::List { what, catalogue } => {
            let text = crate::list::render(what, &catalogue).map_err(Failure::Input)?;
            print!("{text}");
            Ok(Outcome::Pass)
        }
        Command::Bench(args) => bench(&args),
        Command::Replay(args) => replay(&args),
        Command::Certs(args) => certs::run(&args),
        Command::Record(args) => record(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Load(args) => load::load(&args),
        Command::Merge(args) => load::merge(&args),
    }
}

/// `medtwin record`: exit 0 when everything was written, 2 for a bad
/// scenario, 3 when a file could not be written.
fn record(args: &args::RecordArgs) -> Result<Outcome, Failure> {
    use args::RecordFormat;
    let mut s = scenario::load(&args.scenario).map_err(|d| Failure::Input(d.to_string()))?;
    if let Some(seed) = args.seed {
        s.sim.seed = seed;
    }
    let estimate = Estimate::of(&s);
    estimate.check(None).map_err(|too_big| {
        Failure::Input(format!(
            "{}: too big to run here: {too_big}",
            args.scenario.display()
        ))
    })?;
    let formats = crate::record::Formats {
        wfdb: args.formats.contains(&RecordFormat::Wfdb),
        edf: args.formats.contains(&RecordFormat::Edf),
        vitals: args.formats.contains(&RecordFormat::Vitals),
    };
    let done = crate::record::record(&s.sim, &s.name, s.start, &args.out, formats).map_err(
        |e| match e {
            crate::record::RecordError::Config(_) => Failure::Input(format!("error: {e}")),
            crate::record::RecordError::Write { .. } => Failure::Harness(format!("error: {e}")),
        },
    )?;
    println!(
        "recorded {} · seed {} · {} simulated in {:.2} s wall · {} patients · {} waveform records, {} samples per channel, {} beats annotated",
        s.name,
        s.sim.seed,
        scenario::duration::format((done.simulated_s * 1000.0) as u64),
        done.wall_s,
        done.patients,
        done.records.len(),
        done.samples,
        done.beats
    );
    println!("out: {}", args.out.display());
    Ok(Outcome::Pass)
}

/// `medtwin replay`: exit 0 when the target accepted every message, 4
/// when it did not.
fn replay(args: &args::ReplayArgs) -> Result<Outcome, Failure> {
    use crate::scenario::interop::{Protocol, check_target_address};
    if args.transport == Protocol::File {
        return Err(Failure::Input(
            "error: --transport file would record the recording again; name a target's transport"
                .into(),
        ));
    }
    check_target_address(&args.target, args.transport)
        .map_err(|e| Failure::Input(format!("error: --target: {e}")))?;
    let config = crate::replay::ReplayConfig {
        protocol: args.transport,
        url: args.target.clone(),
        auth: replay_auth(args)?,
        timeout: std::time::Duration::from_millis(args.timeout),
        lanes: usize::from(args.concurrency),
        tls: args.tls.options(),
    };
    let rt = runtime()?;
    let replayed = rt
        .block_on(crate::replay::replay(&args.file, &config))
        .map_err(|e| Failure::Input(format!("error: {e}")))?;
    print!("{}", crate::replay::human(&replayed, &config));
    Ok(if replayed.stats.accepted == replayed.lines {
        Outcome::Pass
    } else {
        Outcome::Target
    })
}

/// `medtwin replay`'s bearer token: `--token-file`, else
/// `MEDTWIN_TARGET_TOKEN`, else none.
fn replay_auth(args: &args::ReplayArgs) -> Result<crate::transport::auth::Auth, Failure> {
    let input = |e: String| Failure::Input(format!("error: {e}"));
    if args.token.is_some() {
        return Err(input(args::refused_secret(
            "--token",
            "MEDTWIN_TARGET_TOKEN",
            "--token-file",
        )));
    }
    let token = match &args.token_file {
        Some(path) => Some(args::read_secret(path, "--token-file").map_err(input)?),
        None => std::env::var("MEDTWIN_TARGET_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    match token {
        Some(t) => crate::transport::auth::Auth::bearer(&t).map_err(|e| input(e.to_string())),
        None => Ok(crate::transport::auth::Auth::none()),
    }
}

/// The async runtime for the edge: two workers, the size of the machine.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    runtime_with(2)
}

/// The async runtime with `threads` workers.
pub fn runtime_with(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Failure::Harness(format!("error: cannot start the async runtime: {e}")))
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A stop switch thrown by SIGINT or SIGTERM (on the current runtime).
pub(crate) fn on_signals() -> Stop {
    let stop = Stop::new();
    let thrown = stop.clone();
    tokio::spawn(async move {
        let reason = wait_for_signal().await;
        eprintln!(
            "\nmedtwin: {} received: stopping, draining for up to {} s, then writing the report (again to stop at once)",
            reason.name().to_uppercase(),
            crate::transport::DRAIN.as_secs() + 2
        );
        thrown.trigger(reason);
        // A second signal: the user means it.
        let again = wait_for_signal().await;
        std::process::exit(i32::from(match again {
            StopReason::Terminate => EXIT_SIGTERM,
            _ => EXIT_SIGINT,
        }));
    });
    stop
}

#[cfg(unix)]
async fn wait_for_signal() -> StopReason {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => StopReason::Interrupt,
        _ = term.recv() => StopReason::Terminate,
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> StopReason {
    let _ = tokio::signal::ctrl_c().await;
    StopReason::Interrupt
}

/// Progress for one run: none when quiet, a bar on a terminal, else lines.
fn progress_mode(quiet: bool, label: Option<String>) -> Progress {
    if quiet {
        Progress::Off
    } else if label.is_none() && std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Lines { label }
    }
}

fn validate(files: &[PathBuf]) -> Result<Outcome, Failure> {
    let mut n_bad = 0;
    for file in files {
        match scenario::load(file) {
            Ok(s) => {
                let estimate = Estimate::of(&s);
                match estimate.check(None) {
                    Ok(()) => println!(
                        "{}: ok ({}: {}, {}, {} expectations; memory {})",
                        file.display(),
                        s.name,
                        plural(estimate.patients, "patient"),
                        scenario::duration::format(s.sim.duration_ms),
                        s.expectations.len(),
                        estimate.human()
                    ),
                    Err(too_big) => {
                        n_bad += 1;
                        eprintln!("{}: too big to run here: {too_big}", file.display());
                    }
                }
            }
            Err(diagnostics) => {
                n_bad += 1;
                eprintln!("{diagnostics}");
            }
        }
    }
    if n_bad > 0 {
        return Err(Failure::Input(format!(
            "{n_bad} of {} files invalid",
            files.len()
        )));
    }
    Ok(Outcome::Pass)
}

/// `medtwin run`: one scenario file, or a suite (a folder, or `--seeds N`).
fn run(args: &RunArgs) -> Result<Outcome, Failure> {
    let overrides = args
        .overrides()
        .map_err(|e| Failure::Input(format!("error: {e}")))?;
    if args.path.is_dir() || args.seeds != 1 {
        return run_suite(args, overrides);
    }
    let scenario = scenario::load(&args.path)
        .map_err(|d| Failure::Input(d.to_string()))?
        .with(&overrides)
        .map_err(|e| Failure::Input(format!("error: {e}")))?;
    if cfg!(debug_assertions) && !args.quiet {
        println!(
            "note: this is a debug build of medtwin; at high clock speeds it sends late and the run may be marked unreliable (build with `cargo run --release`)"
        );
    }
    Estimate::of(&scenario)
        .check(scenario.max_memory)
        .map_err(|e| {
            Failure::Input(format!(
                "error: {}: too big to run: {e}",
                args.path.display()
            ))
        })?;
    let quiet = args.quiet;
    if scenario.transport.tls.insecure_skip_verify {
        // Loud even with --quiet: numbers taken over an unverified link.
        eprintln!(
            "WARNING: --insecure-skip-verify: the target's TLS certificate will NOT be checked; anyone on the path could answer for it"
        );
    }
    let rt = runtime()?;
    let report = rt
        .block_on(async {
            let controls = Controls {
                stop: on_signals(),
                progress: progress_mode(quiet, None),
            };
            crate::run::execute_with(&scenario, &controls, |started| {
                if !quiet {
                    for (kind, address) in &started.intakes {
                        if *kind == "webhook" {
                            println!("alerts webhook: {address} ({})", started.webhook_auth);
                        } else {
                            println!("alerts {kind}: {address}");
                        }
                    }
                    if let Some(tls) = &started.intake_tls {
                        println!("{tls}");
                    }
                    match started.transport {
                        "http-json" => println!("telemetry to: {}", started.target_url),
                        other => println!("telemetry to: {} over {other}", started.target_url),
                    }
                }
            })
            .await
        })
        .map_err(|e| Failure::Harness(format!("error: {e:#}")))?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&report.run_id));
    report.write(&dir).map_err(|e| {
        Failure::Harness(format!(
            "error: cannot write the report to {}: {e:#}",
            dir.display()
        ))
    })?;
    if args.quiet {
        println!("{}: {}", scenario.name, report.verdict.text());
    } else {
        println!("{}", report.summary());
    }
    println!("report: {}", dir.join("report.json").display());
    println!("html: {}", dir.join("index.html").display());
    if let Some(i) = &report.interrupted {
        eprintln!(
            "medtwin: the run was interrupted ({}) at simulated {} of {}; the report holds everything counted until then",
            i.reason,
            scenario::duration::format(i.at_sim_ms),
            scenario::duration::format(scenario.sim.duration_ms)
        );
    }
    Ok(outcome(&report))
}

fn run_suite(args: &RunArgs, overrides: scenario::Overrides) -> Result<Outcome, Failure> {
    let plan = suite::Plan {
        path: args.path.clone(),
        seeds: args.seeds,
        jobs: args.jobs,
        out: args.out.clone(),
        overrides,
        quiet: args.quiet,
    };
    let rt = runtime()?;
    let stop = rt.block_on(async { on_signals() });
    let done = suite::run(&plan, &rt, &stop).map_err(|e| match e {
        SuiteError::Input(message) => Failure::Input(message),
        other => Failure::Harness(format!("error: {other}")),
    })?;
    let (n_fail, n_error, n_target) = (done.failed(), done.errors(), done.target());
    println!(
        "\nsuite: {} runs · {} passed · {} failed · {} target did not take the data · {} harness errors",
        done.runs.len(),
        done.runs.len() - n_fail - n_error - n_target,
        n_fail,
        n_target,
        n_error
    );
    println!("junit: {}", done.root.join("junit.xml").display());
    println!("html: {}", done.root.join("index.html").display());
    if let Some(reason) = stop.reason() {
        Ok(Outcome::Stopped(reason))
    } else if n_error > 0 {
        Err(Failure::Harness(format!(
            "error: {n_error} runs of the suite failed in the harness (see above)"
        )))
    } else if n_target > 0 {
        Ok(Outcome::Target)
    } else if n_fail > 0 {
        Ok(Outcome::Fail)
    } else {
        Ok(Outcome::Pass)
    }
}

fn outcome(report: &Report) -> Outcome {
    match report.verdict {
        Verdict::Pass => Outcome::Pass,
        Verdict::Fail => Outcome::Fail,
        Verdict::TargetUnreachable | Verdict::TargetRefusedData => Outcome::Target,
        Verdict::Interrupted => Outcome::Stopped(
            match report.interrupted.as_ref().map(|i| i.reason.as_str()) {
                Some("sigterm") => StopReason::Terminate,
                Some("deadline") => StopReason::Deadline,
                _ => StopReason::Interrupt,
            },
        ),
    }
}

/// `medtwin report`: re-renders junit.xml and index.html next to the
/// report.json.
fn rerender(path: &Path) -> Result<Outcome, Failure> {
    let report = Report::read(path).map_err(|e| Failure::Input(format!("error: {e:#}")))?;
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    };
    report.render(&dir).map_err(|e| {
        Failure::Harness(format!("error: cannot write into {}: {e:#}", dir.display()))
    })?;
    println!("report: {}", dir.join("index.html").display());
    println!("junit: {}", dir.join("junit.xml").display());
    Ok(Outcome::Pass)
}

/// `medtwin compare`: the changes, and exit 1 past the gate (2 when the
/// input cannot be read or the scenarios differ).
fn compare(args: &CompareArgs) -> Result<Outcome, Failure> {
    if let Some(outcome) = load::compare(args)? {
        return Ok(outcome);
    }
    use crate::compare::{self, Gate, Side};
    let gate = Gate::new(
        args.max_latency_regression,
        args.max_sensitivity_drop,
        args.max_ppv_drop,
        args.max_missed_increase,
        args.max_false_rate_increase,
        args.max_false_alert_increase,
    );
    let input = |e: compare::CompareError| Failure::Input(e.to_string());
    let (a, b) = (
        Side::load(&args.a).map_err(input)?,
        Side::load(&args.b).map_err(input)?,
    );
    let found = compare::compare(&a, &b, &gate, args.allow_different_scenarios).map_err(input)?;
    print!("{}", found.table);
    if !found.notes.is_empty() {
        println!();
    }
    for note in &found.notes {
        println!("note: {note}");
    }
    if found.regressions.is_empty() {
        println!("\ncompare: no regression past the thresholds");
        return Ok(Outcome::Pass);
    }
    println!();
    for r in &found.regressions {
        println!("REGRESSION: {r}");
    }
    Ok(Outcome::Fail)
}

/// `medtwin bench sim|net`.
fn bench(args: &BenchArgs) -> Result<Outcome, Failure> {
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let input = |e: String| Failure::Input(format!("error: {e}"));
    let text = match args.what {
        BenchWhat::Net => crate::bench::net(args.devices, threads, args.steps)
            .map(|b| crate::bench::human_net(&b))
            .map_err(input)?,
        BenchWhat::Sim => crate::bench::sim(args.patients, threads, args.steps, args.sick_pct)
            .map(|b| crate::bench::human(&b))
            .map_err(input)?,
        BenchWhat::Ecg => crate::bench::ecg(args.rate_hz, args.steps)
            .map(|b| crate::bench::human_ecg(&b))
            .map_err(input)?,
    };
    print!("{text}");
    Ok(Outcome::Pass)
}
