//! Suites: `medtwin run DIR` runs every `*.toml` in a folder, `--seeds N`
//! runs each scenario with N seeds, at most `--jobs` runs at once (each run
//! is independent: its own twin, backend, webhook and ports). Verdicts are
//! aggregated; each failing run prints a one-line repro command.
//!
//! Output: `<out>/<scenario>-s<seed>/` per run (report.json, junit.xml,
//! index.html), and at the top `junit.xml` (every run), `suite.json` and
//! `index.html` (links to each run).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::checker::Verdict;
use crate::cli::{EXIT_FAIL, EXIT_HARNESS, EXIT_INPUT, EXIT_PASS, RunArgs};
use crate::junit::escape;
use crate::report::Report;
use crate::scenario::{self, Scenario};

/// Most runs one suite may hold (bounded work and output).
pub const MAX_RUNS: u64 = 10_000;

/// One run of a suite, in `suite.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteRun {
    /// Scenario file.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// `pass`, `fail`, or `error` (the harness failed).
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

/// Entry point of a suite run.
pub fn main(args: &RunArgs) -> u8 {
    if args.seeds == 0 || args.jobs == 0 {
        eprintln!("error: --seeds and --jobs must be at least 1");
        return EXIT_INPUT;
    }
    let files = match files(&args.path) {
        Ok(f) => f,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_INPUT;
        }
    };
    if files.len() as u64 * args.seeds > MAX_RUNS {
        eprintln!(
            "error: {} runs is more than the limit of {MAX_RUNS}",
            files.len() as u64 * args.seeds
        );
        return EXIT_INPUT;
    }
    // Every file is checked before anything runs.
    let mut scenarios: Vec<(PathBuf, Scenario)> = Vec::new();
    let mut bad = 0;
    for file in &files {
        match scenario::load(file)
            .map_err(|d| d.to_string())
            .and_then(|s| crate::run::apply_overrides(s, args))
        {
            Ok(s) => scenarios.push((file.clone(), s)),
            Err(message) => {
                bad += 1;
                eprintln!("{message}");
            }
        }
    }
    if bad > 0 {
        eprintln!(
            "{bad} of {} scenario files invalid: nothing run",
            files.len()
        );
        return EXIT_INPUT;
    }
    let mut jobs: Vec<(String, Scenario)> = Vec::new();
    for (file, s) in &scenarios {
        for k in 0..args.seeds {
            let mut s = s.clone();
            s.sim.seed = s.sim.seed.wrapping_add(k);
            jobs.push((format!("{}-s{}", stem(file), s.sim.seed), s));
        }
    }
    let root = args.out.clone().unwrap_or_else(|| {
        let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        PathBuf::from("reports").join(format!("{stamp}-suite"))
    });
    let Some(runtime) = crate::run::runtime() else {
        return EXIT_HARNESS;
    };
    println!(
        "medtwin {} · suite of {} runs ({} scenarios × {} seeds), {} at a time",
        env!("CARGO_PKG_VERSION"),
        jobs.len(),
        scenarios.len(),
        args.seeds,
        args.jobs
    );
    let results = runtime.block_on(run_all(jobs, args.jobs, root.clone()));
    let mut reports = Vec::new();
    let mut runs = Vec::new();
    let mut n_error = 0;
    for (dir, scenario, result) in results {
        match result {
            Ok(report) => {
                runs.push(SuiteRun {
                    scenario: scenario.path.display().to_string(),
                    seed: report.seed,
                    verdict: crate::report::verdict_text(report.verdict).into(),
                    dir,
                    repro: report.repro.clone(),
                });
                reports.push(report);
            }
            Err(message) => {
                n_error += 1;
                runs.push(SuiteRun {
                    scenario: scenario.path.display().to_string(),
                    seed: scenario.sim.seed,
                    verdict: "error".into(),
                    dir,
                    repro: message,
                });
            }
        }
    }
    if let Err(e) = write_suite(&root, &reports, &runs) {
        eprintln!(
            "error: cannot write the suite report into {}: {e:#}",
            root.display()
        );
        return EXIT_HARNESS;
    }
    let n_fail = runs.iter().filter(|r| r.verdict == "fail").count();
    println!(
        "\nsuite: {} runs · {} passed · {} failed · {} harness errors",
        runs.len(),
        runs.len() - n_fail - n_error,
        n_fail,
        n_error
    );
    println!("junit: {}", root.join("junit.xml").display());
    println!("html: {}", root.join("index.html").display());
    if n_error > 0 {
        EXIT_HARNESS
    } else if n_fail > 0 {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}

type Finished = (String, Scenario, Result<Report, String>);

/// Runs every job, `parallel` at a time, each writing its own folder.
async fn run_all(jobs: Vec<(String, Scenario)>, parallel: usize, root: PathBuf) -> Vec<Finished> {
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut set = tokio::task::JoinSet::new();
    for (i, (dir, s)) in jobs.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let root = root.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = match crate::run::execute(&s).await {
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
                    println!("FAIL {} (seed {})", s.path.display(), s.sim.seed);
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
    std::fs::write(root.join("junit.xml"), crate::junit::render(reports))?;
    std::fs::write(
        root.join("suite.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "schema": "medtwin.suite.v1",
            "version": env!("CARGO_PKG_VERSION"),
            "runs": runs,
        }))? + "\n",
    )?;
    let failing = runs.iter().any(|r| r.verdict != "pass");
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>medtwin suite</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccd;padding:3px 8px}}.v{{padding:12px;color:#fff;font-size:20px;font-weight:700}}\
         .pass{{background:#1b7f3b}}.fail{{background:#b3261e}}</style></head><body>\
         <div class=\"v {0}\">{1}</div><table><tr><th>scenario</th><th>seed</th><th>verdict</th><th>report</th><th>repro</th></tr>",
        if failing { "fail" } else { "pass" },
        if failing {
            "SUITE FAILED"
        } else {
            "SUITE PASSED"
        }
    );
    for r in runs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}/index.html\">open</a></td><td><code>{}</code></td></tr>",
            escape(&r.scenario),
            r.seed,
            escape(&r.verdict),
            escape(&r.dir),
            escape(&r.repro)
        );
    }
    let _ = writeln!(h, "</table></body></html>");
    std::fs::write(root.join("index.html"), h)?;
    Ok(())
}
