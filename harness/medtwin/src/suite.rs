//! Suites: `medtwin run DIR` runs every `*.toml` in a folder, `--seeds N`
//! runs each scenario with N seeds, at most `--jobs` runs at once (each run
//! is independent: its own twin, backend, webhook and ports). Verdicts are
//! aggregated; each failing run prints a one-line repro command.
//!
//! Output: `<out>/<scenario>-s<seed>/` per run (report.json, junit.xml,
//! index.html), and at the top `junit.xml` (every run), `suite.json` and
//! `index.html` (links to each run).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::report::{Report, Verdict};
use crate::run::Controls;
use crate::run::progress::Progress;
use crate::scenario::{self, Overrides, Scenario};
use crate::stop::Stop;

/// Most runs one suite may hold (bounded work and output).
pub const MAX_RUNS: u64 = 10_000;

/// One run of a suite, in `suite.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteRun {
    /// Scenario file.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// `pass`, `fail`, `target unreachable`, `target refused data`, or
    /// `error` (the harness failed).
    pub verdict: String,
    /// Run folder, relative to the suite folder.
    pub dir: String,
    /// The repro command.
    pub repro: String,
}

/// The scenario files of `path`: itself, or every `*.toml` in it, sorted.
fn files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!(
            "error: {} holds no *.toml scenario",
            path.display()
        ));
    }
    Ok(out)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into())
}

/// What to run as a suite.
#[derive(Clone, Debug)]
pub struct Plan {
    /// A scenario file, or a folder of them.
    pub path: PathBuf,
    /// Seeds per scenario: the scenario's (or the override's), +1, ...
    pub seeds: u64,
    /// Runs at once.
    pub jobs: usize,
    /// Where the suite's folder goes (default `reports/<stamp>-suite`).
    pub out: Option<PathBuf>,
    /// Command-line changes to every scenario.
    pub overrides: Overrides,
    /// No progress lines.
    pub quiet: bool,
}

/// Why a suite did not run.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// Bad arguments or invalid scenarios: nothing ran.
    #[error("{0}")]
    Input(String),
    /// The suite's own files could not be written.
    #[error("cannot write the suite report into {dir}: {why}")]
    Write {
        /// The suite folder.
        dir: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// What a suite did.
#[derive(Clone, Debug)]
pub struct SuiteOutcome {
    /// The suite folder.
    pub root: PathBuf,
    /// Every run, in plan order.
    pub runs: Vec<SuiteRun>,
}

impl SuiteOutcome {
    /// Runs that failed an expectation.
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| r.verdict == "fail").count()
    }

    /// Runs where the harness itself failed.
    pub fn errors(&self) -> usize {
        self.runs.iter().filter(|r| r.verdict == "error").count()
    }

    /// Runs whose target did not take the telemetry.
    pub fn target(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.verdict.starts_with("target"))
            .count()
    }
}

/// Loads every scenario (all checked before anything runs) and the
/// (scenario, seed) jobs.
fn jobs(plan: &Plan) -> Result<(Vec<(String, Scenario)>, usize), SuiteError> {
    if plan.seeds == 0 || plan.jobs == 0 {
        return Err(SuiteError::Input(
            "error: --seeds and --jobs must be at least 1".into(),
        ));
    }
    let files = files(&plan.path).map_err(SuiteError::Input)?;
    if files.len() as u64 * plan.seeds > MAX_RUNS {
        return Err(SuiteError::Input(format!(
            "error: {} runs is more than the limit of {MAX_RUNS}",
            files.len() as u64 * plan.seeds
        )));
    }
    let mut scenarios: Vec<(PathBuf, Scenario)> = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        match scenario::load(file)
            .map_err(|d| d.to_string())
            .and_then(|s| s.with(&plan.overrides).map_err(|e| format!("error: {e}")))
        {
            Ok(s) => scenarios.push((file.clone(), s)),
            Err(message) => problems.push(message),
        }
    }
    if !problems.is_empty() {
        problems.push(format!(
            "{} of {} scenario files invalid: nothing run",
            problems.len(),
            files.len()
        ));
        return Err(SuiteError::Input(problems.join("\n")));
    }
    let mut jobs = Vec::new();
    for (file, s) in &scenarios {
        for k in 0..plan.seeds {
            let mut s = s.clone();
            s.sim.seed = s.sim.seed.wrapping_add(k);
            jobs.push((format!("{}-s{}", stem(file), s.sim.seed), s));
        }
    }
    Ok((jobs, scenarios.len()))
}

/// Runs a suite on `runtime`: every job, `plan.jobs` at a time, printing a
/// line per finished run; writes the suite's files.
/// Once `stop` is thrown, runs under way stop and report (interrupted) and
/// runs not yet started are not run (verdict `not run`).
pub fn run(
    plan: &Plan,
    runtime: &tokio::runtime::Runtime,
    stop: &Stop,
) -> Result<SuiteOutcome, SuiteError> {
    let (jobs, n_scenarios) = jobs(plan)?;
    let root = plan.out.clone().unwrap_or_else(|| {
        let stamp: String = medtwin_wire::format_time(SystemTime::now())
            .chars()
            .take(19)
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        PathBuf::from("reports").join(format!("{stamp}Z-suite"))
    });
    println!(
        "medtwin {} · suite of {} runs ({} scenarios × {} seeds), {} at a time",
        env!("CARGO_PKG_VERSION"),
        jobs.len(),
        n_scenarios,
        plan.seeds,
        plan.jobs
    );
    let results = runtime.block_on(run_all(jobs, plan, root.clone(), stop));
    let mut reports = Vec::new();
    let mut runs = Vec::new();
    for (dir, scenario, result) in results {
        match result {
            Ok(report) => {
                runs.push(SuiteRun {
                    scenario: scenario.path.display().to_string(),
                    seed: report.seed,
                    verdict: report.verdict.text().into(),
                    dir,
                    repro: report.repro.clone(),
                });
                reports.push(report);
            }
            Err(message) => runs.push(SuiteRun {
                scenario: scenario.path.display().to_string(),
                seed: scenario.sim.seed,
                verdict: "error".into(),
                dir,
                repro: message,
            }),
        }
    }
    write_suite(&root, &reports, &runs).map_err(|e| SuiteError::Write {
        dir: root.clone(),
        why: format!("{e:#}"),
    })?;
    Ok(SuiteOutcome { root, runs })
}

type Finished = (String, Scenario, Result<Report, String>);

/// Runs every job, `parallel` at a time, each writing its own folder.
async fn run_all(
    jobs: Vec<(String, Scenario)>,
    plan: &Plan,
    root: PathBuf,
    stop: &Stop,
) -> Vec<Finished> {
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.jobs));
    let mut set = tokio::task::JoinSet::new();
    for (i, (dir, s)) in jobs.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let root = root.clone();
        let controls = Controls {
            stop: stop.clone(),
            progress: if plan.quiet {
                Progress::Off
            } else {
                Progress::Lines {
                    label: Some(dir.clone()),
                }
            },
        };
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            if controls.stop.is_stopped() {
                let why = "not run: the suite was interrupted".to_owned();
                println!("NOT RUN {} (seed {})", s.path.display(), s.sim.seed);
                return (i, dir, s, Err(why));
            }
            let result = match crate::run::execute_with(&s, &controls, |_| {}).await {
                Ok(report) => match report.write(&root.join(&dir)) {
                    Ok(()) => Ok(report),
                    Err(e) => Err(format!("cannot write {}: {e:#}", root.join(&dir).display())),
                },
                Err(e) => Err(format!("{e:#}")),
            };
            match &result {
                Ok(r) if r.verdict == Verdict::Pass => {
                    println!("PASS {} (seed {})", s.path.display(), s.sim.seed);
                }
                Ok(r) => {
                    println!(
                        "{} {} (seed {})",
                        r.verdict.text().to_uppercase(),
                        s.path.display(),
                        s.sim.seed
                    );
                    for e in r.expectations.iter().filter(|e| e.verdict == Verdict::Fail) {
                        for f in &e.failures {
                            println!("     {}: {f}", e.name);
                        }
                    }
                    println!("     repro: {}", r.repro);
                }
                Err(e) => println!("ERROR {} (seed {}): {e}", s.path.display(), s.sim.seed),
            }
            (i, dir, s, result)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(item) => done.push(item),
            Err(e) => eprintln!("error: a run's task failed: {e}"),
        }
    }
    done.sort_by_key(|(i, ..)| *i);
    done.into_iter().map(|(_, d, s, r)| (d, s, r)).collect()
}

fn write_suite(root: &Path, reports: &[Report], runs: &[SuiteRun]) -> anyhow::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::write(
        root.join("junit.xml"),
        crate::report::junit::render(reports)?,
    )?;
    std::fs::write(
        root.join("suite.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "schema": "medtwin.suite.v1",
            "version": env!("CARGO_PKG_VERSION"),
            "runs": runs,
        }))? + "\n",
    )?;
    let failing = runs.iter().any(|r| r.verdict != "pass");
    let (class, verdict) = if failing {
        ("fail", "SUITE FAILED")
    } else {
        ("pass", "SUITE PASSED")
    };
    const CSS: &str = "body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}\
        td,th{border:1px solid #ccd;padding:3px 8px}.v{padding:12px;color:#fff;font-size:20px;font-weight:700}\
        .pass{background:#1b7f3b}.fail{background:#b3261e}";
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "medtwin suite" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                div class={ "v " (class) } { (verdict) }
                table {
                    tr { th { "scenario" } th { "seed" } th { "verdict" } th { "report" } th { "repro" } }
                    @for r in runs {
                        tr {
                            td { (r.scenario) }
                            td { (r.seed) }
                            td { (r.verdict) }
                            td { a href={ (r.dir) "/index.html" } { "open" } }
                            td { code { (r.repro) } }
                        }
                    }
                }
            }
        }
    };
    std::fs::write(root.join("index.html"), page.into_string() + "\n")?;
    Ok(())
}
