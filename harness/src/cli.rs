//! The command line: argument definitions and dispatch.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::scenario;

/// Every expectation held.
pub const EXIT_PASS: u8 = 0;
/// At least one expectation failed.
pub const EXIT_FAIL: u8 = 1;
/// Usage or input error (bad arguments, invalid scenario).
pub const EXIT_INPUT: u8 = 2;
/// The harness itself failed (could not bind, internal error).
pub const EXIT_HARNESS: u8 = 3;

/// medtwin: a digital twin of connected care. Simulates patients, their
/// devices and networks, drives the telemetry into a backend and checks
/// the backend's alerts.
#[derive(Debug, Parser)]
#[command(name = "medtwin", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a backend and check its alerts.
    Run(RunArgs),
    /// Check scenario files and report every error with its position.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the reference NEWS2 backend on its own.
    ReferenceBackend(BackendArgs),
    /// Re-render junit.xml and index.html from a report.json (or its folder).
    Report {
        /// report.json, or the run folder holding it.
        path: PathBuf,
    },
    /// Compare two runs' reports; exit 1 past a regression threshold.
    Compare(crate::compare::CompareArgs),
    /// List the profiles, conditions, interventions, networks or devices a scenario can name.
    List {
        /// What to list.
        what: crate::list::ListWhat,
        /// Also read profiles from these files.
        #[arg(long, value_name = "FILE")]
        catalogue: Vec<PathBuf>,
    },
    /// Measure the twin on this machine.
    Bench {
        /// What to measure: `sim` (physiology) or `net` (devices and network).
        what: BenchWhat,
        /// Patients to simulate (`sim`).
        #[arg(long, default_value_t = 1_000_000)]
        patients: u64,
        /// Devices to simulate (`net`: four per patient).
        #[arg(long, default_value_t = 100_000)]
        devices: u64,
        /// Threads, one twin shard each (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// One-second steps to time.
        #[arg(long, default_value_t = 60)]
        steps: u64,
        /// Percentage of patients with conditions (sepsis, then AF).
        #[arg(long, default_value_t = 0.0, value_name = "PCT")]
        sick_pct: f64,
    },
}

/// `medtwin bench` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWhat {
    /// The physiology step and the glucose model.
    Sim,
    /// The device, gateway and network path.
    Net,
}

/// `medtwin run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file, or a folder: every `*.toml` in it runs as a suite.
    pub path: PathBuf,
    /// Run each scenario with N seeds: the scenario's (or `--seed`'s), +1, ...
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seeds: u64,
    /// Runs at once in a suite.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Write the report here instead of `reports/<run-id>/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Send telemetry to this URL instead of the scenario's target or the
    /// embedded reference backend.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Override the clock mode: virtual, real-time or accelerated.
    #[arg(long, value_name = "MODE")]
    pub clock: Option<String>,
    /// Speed for `--clock accelerated` (simulated seconds per wall second).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Reference backend: drop this percentage of alerts.
    #[arg(long, value_name = "PCT")]
    pub drop_alerts_pct: Option<f64>,
    /// Reference backend: delay every alert by this much simulated time.
    #[arg(long, value_name = "DURATION")]
    pub delay_alerts: Option<String>,
    /// Reference backend: send this percentage of alerts twice.
    #[arg(long, value_name = "PCT")]
    pub duplicate_alerts_pct: Option<f64>,
    /// Reference backend: this percentage of scored messages raise a spurious alert.
    #[arg(long, value_name = "PCT")]
    pub spurious_alerts_pct: Option<f64>,
    /// Reference backend: this percentage of alerts name another patient.
    #[arg(long, value_name = "PCT")]
    pub wrong_patient_pct: Option<f64>,
    /// Reference backend: this percentage of alerts carry the other NEWS2 kind.
    #[arg(long, value_name = "PCT")]
    pub wrong_kind_pct: Option<f64>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `medtwin reference-backend`.
#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Webhook URL alerts are POSTed to.
    #[arg(long, value_name = "URL")]
    pub alerts: String,
    /// Bearer token for the webhook (default: `MEDTWIN_ALERT_TOKEN`).
    #[arg(long)]
    pub alerts_token: Option<String>,
    /// Drop this percentage of alerts (a fault knob).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub drop_alerts_pct: f64,
    /// Delay every alert by this much wall time (a fault knob).
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub delay_alerts: String,
    /// Send this percentage of alerts twice (a fault knob).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub duplicate_alerts_pct: f64,
    /// This percentage of scored messages raise a spurious alert (a fault knob).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub spurious_alerts_pct: f64,
    /// This percentage of alerts name another patient (a fault knob).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub wrong_patient_pct: f64,
    /// This percentage of alerts carry the other NEWS2 kind (a fault knob).
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub wrong_kind_pct: f64,
    /// Median window applied to each vital before scoring.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub smoothing: String,
    /// Time below a threshold before the same alert can fire again.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub reset_after: String,
    /// Seed of the fault knobs' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this much wall time (default: run until interrupted).
    #[arg(long, value_name = "DURATION")]
    pub stop_after: Option<String>,
}

/// Runs a parsed command line and returns the exit code.
pub fn execute(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Run(args) => crate::run::main(args),
        Command::ReferenceBackend(args) => crate::run::reference_backend_main(args),
        Command::Report { path } => crate::compare::rerender(&path),
        Command::Compare(args) => crate::compare::main(&args),
        Command::List { what, catalogue } => match crate::list::render(what, &catalogue) {
            Ok(text) => {
                print!("{text}");
                EXIT_PASS
            }
            Err(error) => {
                eprintln!("{error}");
                EXIT_INPUT
            }
        },
        Command::Bench {
            what: BenchWhat::Net,
            devices,
            threads,
            steps,
            ..
        } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            match crate::bench::net(devices, threads, steps) {
                Ok(b) => {
                    print!("{}", crate::bench::human_net(&b));
                    EXIT_PASS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    EXIT_INPUT
                }
            }
        }
        Command::Bench {
            what: BenchWhat::Sim,
            patients,
            threads,
            steps,
            sick_pct,
            ..
        } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            if !(0.0..=100.0).contains(&sick_pct) {
                eprintln!("error: --sick-pct {sick_pct} is not a percentage");
                return EXIT_INPUT;
            }
            match crate::bench::sim(patients, threads, steps, sick_pct) {
                Ok(b) => {
                    print!("{}", crate::bench::human(&b));
                    EXIT_PASS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    EXIT_INPUT
                }
            }
        }
    }
}

fn validate(files: &[PathBuf]) -> u8 {
    let mut n_bad = 0;
    for file in files {
        match scenario::load(file) {
            Ok(s) => {
                let patients: u32 = s.sim.cohorts.iter().map(|c| c.count).sum();
                println!(
                    "{}: ok ({}: {patients} patients, {}, {} expectations)",
                    file.display(),
                    s.name,
                    scenario::duration::format(s.sim.duration_ms),
                    s.expectations.len()
                );
            }
            Err(diagnostics) => {
                n_bad += 1;
                eprintln!("{diagnostics}");
            }
        }
    }
    if n_bad > 0 {
        eprintln!("{n_bad} of {} files invalid", files.len());
        EXIT_INPUT
    } else {
        EXIT_PASS
    }
}
