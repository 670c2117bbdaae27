//! `medtwin compare A B`: what changed between two runs (or two suites of
//! runs), and a regression gate a CI job can trust.
//!
//! A and B are each a `report.json`, a run folder, or a suite folder (one
//! with `suite.json`, from `medtwin run DIR --seeds N`). Runs are grouped
//! by scenario (name and file name); A and B must hold the same scenarios,
//! else [`CompareError::DifferentScenarios`] unless that is allowed. Per
//! scenario, per expectation (matched by name) and overall, the runs'
//! counts are summed and the rates recomputed from the sums (sensitivity
//! = hits / (hits + late + missed), PPV = (hits + late) / (hits + late +
//! false), false alerts per patient-day); each latency percentile is the
//! median over the runs, with its spread (max − min over the runs).
//!
//! The gate ([`Gate`]) is on correctness: by default any increase in
//! missed obligations (per run), any drop in sensitivity or PPV and any
//! increase in false alerts per patient-day is a regression. Latency is a
//! regression only when its increase passes the threshold (10 % by
//! default) *and* the spread measured between repeat runs (suites, on any
//! clock: virtual-clock latencies also move by seconds from run to run).
//! With one run per side there is no spread: on the virtual clock the
//! threshold alone gates; a timed run's latency is shown, not gated, and
//! the notes say why.
//!
//! This module returns data ([`Comparison`], [`CompareError`]); the command
//! line turns them into output and exit codes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use medtwin_check::duration::human;
use serde::Deserialize;

use crate::report::{Metrics, Report, truncate};

/// Float comparisons tolerate this much (rates recomputed from sums, and
/// thresholds typed in decimal, are not exact).
pub const EPSILON: f64 = 1e-9;

/// Why latency is not gated for a timed run per side.
pub const LATENCY_NOT_GATED: &str = "latency not gated: one timed run per side has no measured spread; compare suites with --seeds N, or virtual-clock runs";

/// Name of the overall row of each scenario.
const OVERALL: &str = "(overall)";

/// Thresholds of the gate: how much worse B may be than A.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    /// Missed obligations per run B may add (a suite's total over its runs).
    pub missed: u64,
    /// Absolute sensitivity drop allowed.
    pub sensitivity: f64,
    /// Absolute PPV drop allowed.
    pub ppv: f64,
    /// Increase in false alerts per patient-day allowed (`None`: not checked).
    pub false_rate: Option<f64>,
    /// False alerts per run B may add (`None`: not checked).
    pub false_alerts: Option<u64>,
    /// Relative latency increase allowed (0.1 = 10 %).
    pub latency: f64,
}

impl Default for Gate {
    /// Any worsening of correctness; latency past 10 % (and the spread).
    fn default() -> Gate {
        Gate {
            missed: 0,
            sensitivity: 0.0,
            ppv: 0.0,
            false_rate: Some(0.0),
            false_alerts: None,
            latency: 0.10,
        }
    }
}

impl Gate {
    /// The gate of the command line's thresholds. False alerts: the rate
    /// budget (default 0 per patient-day) applies unless only the count
    /// budget is given, which then replaces it; given both, both apply.
    pub fn new(
        latency: f64,
        sensitivity: f64,
        ppv: f64,
        missed: u64,
        false_rate: Option<f64>,
        false_alerts: Option<u64>,
    ) -> Gate {
        let false_rate = match (false_rate, false_alerts) {
            (None, Some(_)) => None,
            (rate, _) => Some(rate.unwrap_or(0.0)),
        };
        Gate {
            missed,
            sensitivity,
            ppv,
            false_rate,
            false_alerts,
            latency,
        }
    }
}

/// Parses a percentage, `10%` or `10`, into a fraction.
pub fn parse_pct(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!("{text}: expected a percentage like 10%")),
    }
}

/// Parses a fraction within 0–1 (a drop in sensitivity or PPV).
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text}: expected a fraction within 0–1")),
    }
}

/// Parses a rate: a finite number, 0 or more (false alerts per patient-day).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text}: expected a number, 0 or more")),
    }
}

/// Why a comparison could not be made (input errors).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A report or suite could not be read.
    #[error("{0}")]
    Read(String),
    /// A and B ran different scenarios (`scenario (file)` of each side).
    #[error(
        "error: A and B ran different scenarios (only in A: {}; only in B: {}); \
         pass --allow-different-scenarios to compare them anyway",
        list(only_a),
        list(only_b)
    )]
    DifferentScenarios {
        /// Scenarios only A ran.
        only_a: Vec<String>,
        /// Scenarios only B ran.
        only_b: Vec<String>,
    },
    /// A run on one side stopped before its end: its counts cover only
    /// part of the scenario, so no comparison would be fair.
    #[error(
        "error: {side} holds an interrupted run ({run_id}: {reason}); rerun it to the end before comparing"
    )]
    Interrupted {
        /// `A` or `B`.
        side: &'static str,
        /// The interrupted run.
        run_id: String,
        /// Why it stopped.
        reason: String,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// One side of a comparison: every run read from a `report.json`, a run
/// folder or a suite folder.
#[derive(Clone, Debug)]
pub struct Side {
    /// What was named on the command line.
    pub path: PathBuf,
    /// Whether it was a suite folder.
    pub suite: bool,
    /// The runs read.
    pub runs: Vec<Report>,
    /// Suite entries with no report (the run failed in the harness).
    pub skipped: Vec<String>,
}

/// `suite.json`, as far as compare reads it.
#[derive(Deserialize)]
struct SuiteFile {
    schema: String,
    runs: Vec<SuiteEntry>,
}

/// One run of `suite.json`.
#[derive(Deserialize)]
struct SuiteEntry {
    scenario: String,
    seed: u64,
    verdict: String,
    dir: String,
}

/// The schema tag of `suite.json` this reads.
const SUITE_SCHEMA: &str = "medtwin.suite.v1";

impl Side {
    /// Reads a `report.json`, a run folder holding one, or a suite folder
    /// (`suite.json`: every run's report, runs the harness failed skipped).
    pub fn load(path: &Path) -> Result<Side, CompareError> {
        let read =
            |p: &Path| Report::read(p).map_err(|e| CompareError::Read(format!("error: {e:#}")));
        let suite_json = path.join("suite.json");
        if !path.is_dir() || !suite_json.is_file() {
            if path.is_dir() && !path.join("report.json").is_file() {
                return Err(CompareError::Read(format!(
                    "error: {} holds neither report.json (a run) nor suite.json (a suite)",
                    path.display()
                )));
            }
            return Ok(Side {
                path: path.to_owned(),
                suite: false,
                runs: vec![read(path)?],
                skipped: Vec::new(),
            });
        }
        let text = std::fs::read_to_string(&suite_json).map_err(|e| {
            CompareError::Read(format!("error: cannot read {}: {e}", suite_json.display()))
        })?;
        let file: SuiteFile = serde_json::from_str(&text).map_err(|e| {
            CompareError::Read(format!(
                "error: {} is not a medtwin suite: {e}",
                suite_json.display()
            ))
        })?;
        if file.schema != SUITE_SCHEMA {
            return Err(CompareError::Read(format!(
                "error: {} has schema `{}`; this medtwin reads `{SUITE_SCHEMA}`",
                suite_json.display(),
                file.schema
            )));
        }
        let mut side = Side {
            path: path.to_owned(),
            suite: true,
            runs: Vec::new(),
            skipped: Vec::new(),
        };
        for entry in file.runs {
            if entry.verdict == "error" {
                side.skipped.push(format!(
                    "{} seed {}: the run failed in the harness",
                    entry.scenario, entry.seed
                ));
            } else {
                side.runs.push(read(&path.join(&entry.dir))?);
            }
        }
        if side.runs.is_empty() {
            return Err(CompareError::Read(format!(
                "error: the suite {} holds no run with a report",
                path.display()
            )));
        }
        Ok(side)
    }

    /// A side of one run.
    pub fn of_run(report: Report) -> Side {
        Side {
            path: PathBuf::from(&report.run_id),
            suite: false,
            runs: vec![report],
            skipped: Vec::new(),
        }
    }

    /// A side of several runs (a suite).
    pub fn of_runs(runs: Vec<Report>) -> Side {
        Side {
            path: PathBuf::from("suite"),
            suite: true,
            runs,
            skipped: Vec::new(),
        }
    }

    /// The runs by scenario.
    fn groups(&self) -> BTreeMap<Key, Vec<&Report>> {
        let mut out: BTreeMap<Key, Vec<&Report>> = BTreeMap::new();
        for r in &self.runs {
            out.entry(Key::of(r)).or_default().push(r);
        }
        out
    }

    /// One line saying what this side holds.
    fn describe(&self) -> String {
        match (self.suite, self.runs.as_slice()) {
            (false, [r]) => format!(
                "{} (seed {}, {}, {}, {} clock)",
                r.scenario.name,
                r.seed,
                r.run_id,
                r.verdict.text(),
                r.clock.mode
            ),
            _ => format!("suite {} ({} runs)", self.path.display(), self.runs.len()),
        }
    }
}

/// A scenario's identity: its name and its file's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: String,
    file: String,
}

impl Key {
    fn of(r: &Report) -> Key {
        let file = Path::new(&r.scenario.path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Key {
            name: r.scenario.name.clone(),
            file,
        }
    }

    fn show(&self) -> String {
        if self.file.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.file)
        }
    }
}

/// What a comparison found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// The table: per scenario, expectation and metric, A, B, the change
    /// and (latency) the spread.
    pub table: String,
    /// Remarks: latency not gated and why, expectations or scenarios on
    /// one side only, skipped suite runs.
    pub notes: Vec<String>,
    /// The regressions past the gate, one sentence each (empty: none).
    pub regressions: Vec<String>,
}

/// Compares B against A under `gate`. Refuses different scenarios unless
/// `allow_different`; then it compares the scenarios both ran (or, one
/// scenario each, those two) and lists the rest.
pub fn compare(
    a: &Side,
    b: &Side,
    gate: &Gate,
    allow_different: bool,
) -> Result<Comparison, CompareError> {
    for (side, name) in [(a, "A"), (b, "B")] {
        if let Some(r) = side.runs.iter().find(|r| r.interrupted.is_some()) {
            return Err(CompareError::Interrupted {
                side: name,
                run_id: r.run_id.clone(),
                reason: r
                    .interrupted
                    .as_ref()
                    .map_or_else(String::new, |i| i.reason.clone()),
            });
        }
    }
    let (ga, gb) = (a.groups(), b.groups());
    let only_a: Vec<String> = ga
        .keys()
        .filter(|k| !gb.contains_key(k))
        .map(Key::show)
        .collect();
    let only_b: Vec<String> = gb
        .keys()
        .filter(|k| !ga.contains_key(k))
        .map(Key::show)
        .collect();
    let mut pairs: Vec<(String, &[&Report], &[&Report])> = ga
        .iter()
        .filter_map(|(k, ra)| gb.get(k).map(|rb| (k.show(), ra.as_slice(), rb.as_slice())))
        .collect();
    let mut out = Out::default();
    if !only_a.is_empty() || !only_b.is_empty() {
        if !allow_different {
            return Err(CompareError::DifferentScenarios { only_a, only_b });
        }
        if pairs.is_empty() && ga.len() == 1 && gb.len() == 1 {
            let (ka, ra) = ga.iter().next().expect("one scenario");
            let (kb, rb) = gb.iter().next().expect("one scenario");
            pairs.push((format!("{} vs {}", ka.show(), kb.show()), ra, rb));
        } else {
            for s in &only_a {
                out.note(format!("scenario only in A, not compared: {s}"));
            }
            for s in &only_b {
                out.note(format!("scenario only in B, not compared: {s}"));
            }
        }
    }
    let _ = writeln!(out.table, "A: {}\nB: {}", a.describe(), b.describe());
    for (side, label) in [(a, "A"), (b, "B")] {
        for s in &side.skipped {
            out.note(format!("{label}: skipped {s}"));
        }
        for r in side.runs.iter().filter(|r| !r.harness.reliable) {
            out.note(format!(
                "{label}: run {} was marked unreliable (the harness lagged): its latencies include the harness's own delay",
                r.run_id
            ));
        }
    }
    if pairs.is_empty() {
        out.note("no scenario in common: nothing compared".into());
    }
    let prefix = pairs.len() > 1;
    for (scenario, ra, rb) in pairs {
        compare_scenario(&mut out, &scenario, prefix, ra, rb, gate);
    }
    Ok(Comparison {
        table: out.table,
        notes: out.notes,
        regressions: out.regressions,
    })
}

/// The output being written.
#[derive(Default)]
struct Out {
    table: String,
    notes: Vec<String>,
    regressions: Vec<String>,
}

impl Out {
    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    fn row(&mut self, name: &str, metric: &str, a: &str, b: &str, change: &str, spread: &str) {
        let line = format!(
            "{:<36} {metric:<16} {a:>10} {b:>10} {change:>9} {spread:>10}",
            truncate(name, 36)
        );
        let _ = writeln!(self.table, "{}", line.trim_end());
    }
}

/// The clock of a scenario's runs, which decides how latency is gated
/// when no spread was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Basis {
    /// Every run on both sides used the virtual clock: the threshold alone.
    Virtual,
    /// A run was timed (real-time, accelerated): with no spread measured,
    /// latency is not gated.
    Timed,
}

/// One scenario: its runs on each side, per expectation and overall.
fn compare_scenario(
    out: &mut Out,
    scenario: &str,
    prefix: bool,
    ra: &[&Report],
    rb: &[&Report],
    gate: &Gate,
) {
    let virtual_clock = |runs: &[&Report]| runs.iter().all(|r| r.clock.mode == "virtual");
    let basis = if virtual_clock(ra) && virtual_clock(rb) {
        Basis::Virtual
    } else {
        Basis::Timed
    };
    let _ = writeln!(
        out.table,
        "\n{scenario}: A {}, B {}, {} clock\n",
        runs_text(ra),
        runs_text(rb),
        if basis == Basis::Virtual {
            "virtual"
        } else {
            "timed"
        }
    );
    let modes = |runs: &[&Report]| -> BTreeSet<String> {
        runs.iter().map(|r| r.clock.mode.clone()).collect()
    };
    if modes(ra) != modes(rb) {
        out.note(format!(
            "{scenario}: A and B ran on different clocks ({} against {}): their latencies measure different things",
            list(&modes(ra).into_iter().collect::<Vec<_>>()),
            list(&modes(rb).into_iter().collect::<Vec<_>>())
        ));
    }
    out.row("expectation", "metric", "A", "B", "change", "spread");
    let names = |runs: &[&Report]| -> Vec<String> {
        let mut seen = Vec::new();
        for e in runs.iter().flat_map(|r| &r.expectations) {
            if !seen.contains(&e.name) {
                seen.push(e.name.clone());
            }
        }
        seen
    };
    let (na, nb) = (names(ra), names(rb));
    let label = |name: &str| {
        if prefix {
            format!("{scenario}: {name}")
        } else {
            name.to_owned()
        }
    };
    for name in na.iter().filter(|n| !nb.contains(n)) {
        out.note(format!(
            "expectation only in A, not compared: {}",
            label(name)
        ));
    }
    for name in nb.iter().filter(|n| !na.contains(n)) {
        out.note(format!(
            "expectation only in B, not compared: {}",
            label(name)
        ));
    }
    let of = |runs: &[&Report], name: &str| {
        let metrics = runs
            .iter()
            .flat_map(|r| &r.expectations)
            .filter(|e| e.name == name);
        aggregate(metrics.map(|e| &e.metrics))
    };
    for name in na.iter().filter(|n| nb.contains(n)) {
        let (a, b) = (of(ra, name), of(rb, name));
        compare_metrics(out, &label(name), &a, &b, gate, basis);
    }
    let (a, b) = (
        aggregate(ra.iter().map(|r| &r.metrics.overall)),
        aggregate(rb.iter().map(|r| &r.metrics.overall)),
    );
    compare_metrics(out, &label(OVERALL), &a, &b, gate, basis);
}

/// `1 run (seed 7)`, `3 runs (seeds 7, 8, 9)`: at most 10 seeds listed.
fn runs_text(runs: &[&Report]) -> String {
    let mut seeds: Vec<String> = runs.iter().take(10).map(|r| r.seed.to_string()).collect();
    if runs.len() > 10 {
        seeds.push("…".into());
    }
    match runs.len() {
        1 => format!("1 run (seed {})", seeds.join(", ")),
        n => format!("{n} runs (seeds {})", seeds.join(", ")),
    }
}

/// A latency percentile over runs: the median, and max − min (with two
/// runs or more that have it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Stat {
    median: Option<f64>,
    spread: Option<f64>,
}

impl Stat {
    fn of(mut values: Vec<u64>) -> Stat {
        values.sort_unstable();
        let n = values.len();
        if n == 0 {
            return Stat::default();
        }
        let median = if n % 2 == 1 {
            values[n / 2] as f64
        } else {
            (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
        };
        let spread = (n >= 2).then(|| (values[n - 1] - values[0]) as f64);
        Stat {
            median: Some(median),
            spread,
        }
    }
}

/// Metrics of one expectation (or overall) over a side's runs: counts
/// summed, rates recomputed from the sums, latency percentiles as [`Stat`]s.
#[derive(Clone, Debug, Default, PartialEq)]
struct Agg {
    runs: usize,
    hits: u64,
    late: u64,
    missed: u64,
    false_alerts: u64,
    patient_days: f64,
    /// p50, p95, p99, max.
    latency: [Stat; 4],
}

fn aggregate<'a>(metrics: impl Iterator<Item = &'a Metrics>) -> Agg {
    let mut agg = Agg::default();
    let mut latencies: [Vec<u64>; 4] = Default::default();
    for m in metrics {
        agg.runs += 1;
        agg.hits += m.hits;
        agg.late += m.late;
        agg.missed += m.missed;
        agg.false_alerts += m.false_alerts;
        agg.patient_days += m.patient_days;
        let l = &m.latency_ms;
        for (values, v) in latencies.iter_mut().zip([l.p50, l.p95, l.p99, l.max]) {
            values.extend(v);
        }
    }
    agg.latency = latencies.map(Stat::of);
    agg
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Agg {
    fn sensitivity(&self) -> Option<f64> {
        ratio(self.hits, self.hits + self.late + self.missed)
    }

    fn ppv(&self) -> Option<f64> {
        ratio(
            self.hits + self.late,
            self.hits + self.late + self.false_alerts,
        )
    }

    fn false_rate(&self) -> Option<f64> {
        (self.patient_days > 0.0).then(|| self.false_alerts as f64 / self.patient_days)
    }
}

/// Every metric of one expectation (or overall): table rows and
/// regressions.
fn compare_metrics(out: &mut Out, name: &str, a: &Agg, b: &Agg, gate: &Gate, basis: Basis) {
    compare_count(
        out,
        name,
        "missed",
        (a.missed, a.runs),
        (b.missed, b.runs),
        Some(gate.missed),
    );
    compare_rate(
        out,
        name,
        "sensitivity",
        a.sensitivity(),
        b.sensitivity(),
        Some(gate.sensitivity),
        true,
    );
    compare_rate(out, name, "ppv", a.ppv(), b.ppv(), Some(gate.ppv), true);
    let (fa, fb) = ((a.false_alerts, a.runs), (b.false_alerts, b.runs));
    compare_count(out, name, "false alerts", fa, fb, gate.false_alerts);
    compare_rate(
        out,
        name,
        "false/patient-day",
        a.false_rate(),
        b.false_rate(),
        gate.false_rate,
        false,
    );
    let labels = ["latency p50", "latency p95", "latency p99", "latency max"];
    for ((label, sa), sb) in labels.iter().zip(&a.latency).zip(&b.latency) {
        compare_latency(out, name, label, (*sa, *sb), gate.latency, basis);
    }
}

/// A count, per run when a side has several runs: more than `limit`
/// added is a regression. `a` and `b` are (count summed, runs).
fn compare_count(
    out: &mut Out,
    name: &str,
    label: &str,
    a: (u64, usize),
    b: (u64, usize),
    limit: Option<u64>,
) {
    let per_run = |(count, runs): (u64, usize)| count as f64 / runs.max(1) as f64;
    let (va, vb) = (per_run(a), per_run(b));
    let single = a.1 <= 1 && b.1 <= 1;
    let digits = if single { 0 } else { 2 };
    let label = if single {
        label.to_owned()
    } else {
        format!("{label}/run")
    };
    let show = |v: f64| format!("{v:.digits$}");
    if let Some(limit) = limit
        && vb - va > limit as f64 + EPSILON
    {
        out.regressions.push(format!(
            "{name}: {label} {} → {} (limit +{limit})",
            show(va),
            show(vb)
        ));
    }
    let change = format!("{:+.digits$}", vb - va);
    out.row(name, &label, &show(va), &show(vb), &change, "");
}

/// A rate: a drop (`higher_is_better`) or a rise past `limit` is a
/// regression.
fn compare_rate(
    out: &mut Out,
    name: &str,
    label: &str,
    va: Option<f64>,
    vb: Option<f64>,
    limit: Option<f64>,
    higher_is_better: bool,
) {
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    let change = match (va, vb) {
        (Some(x), Some(y)) => {
            let worse = if higher_is_better { x - y } else { y - x };
            if let Some(limit) = limit
                && worse > limit + EPSILON
            {
                let what = if higher_is_better { "drop" } else { "rise" };
                out.regressions.push(format!(
                    "{name}: {label} {x:.3} → {y:.3} ({what} {worse:.3}, limit {limit})"
                ));
            }
            format!("{:+.3}", y - x)
        }
        _ => "-".into(),
    };
    out.row(name, label, &show(va), &show(vb), &change, "");
}

/// A latency percentile: a regression when it grew past the threshold and
/// past the spread between repeat runs (the larger side's); with no
/// spread measured (one run per side), past the threshold alone on the
/// virtual clock, and not gated on a timed one.
fn compare_latency(
    out: &mut Out,
    name: &str,
    label: &str,
    (sa, sb): (Stat, Stat),
    limit: f64,
    basis: Basis,
) {
    let show = |v: Option<f64>| v.map_or("-".into(), |v| human(v.round() as u64));
    let spread = match (sa.spread, sb.spread) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    let change = match (sa.median, sb.median) {
        (Some(x), Some(y)) => {
            let increase = y - x;
            let rel = if x > 0.0 {
                increase / x
            } else if increase > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            let past = rel > limit + EPSILON;
            let why = match (spread, basis) {
                (Some(s), _) if increase > s + EPSILON => Some(format!(
                    "beyond the spread of {} between repeat runs",
                    human(s.round() as u64)
                )),
                (Some(_), _) => None,
                (None, Basis::Virtual) => Some("virtual clock".to_owned()),
                (None, Basis::Timed) => {
                    out.note(LATENCY_NOT_GATED.to_owned());
                    None
                }
            };
            if past && let Some(why) = why {
                out.regressions.push(format!(
                    "{name}: {label} {} → {} ({}, limit {:.1}%; {why})",
                    show(Some(x)),
                    show(Some(y)),
                    pct(rel),
                    limit * 100.0
                ));
            }
            pct(rel)
        }
        _ => "-".into(),
    };
    let spread_text = show(spread);
    out.row(
        name,
        label,
        &show(sa.median),
        &show(sb.median),
        &change,
        &spread_text,
    );
}

/// A relative change as a signed percentage.
fn pct(rel: f64) -> String {
    if rel.is_infinite() {
        "+inf%".into()
    } else if rel.abs() < 0.0005 {
        "+0.0%".into()
    } else {
        format!("{:+.1}%", rel * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        Accounting, AlertsReport, ClockInfo, Counts, Digests, ExpectationResult, HarnessReport,
        Percentiles, Population, REPORT_SCHEMA, Refused, ScenarioInfo, Summary, TargetInfo, Timing,
        TransportReport, TransportStats, Verdict,
    };

    /// Metrics of a few numbers: counts, and every latency percentile
    /// derived from `latency_ms` (p95 = p99 = max = 2 × p50).
    fn metrics(hits: u64, late: u64, missed: u64, false_alerts: u64, latency_ms: u64) -> Metrics {
        Metrics {
            obligations: hits + late + missed,
            hits,
            late,
            missed,
            false_alerts,
            patient_days: 0.5,
            latency_ms: Percentiles {
                p50: Some(latency_ms),
                p95: Some(2 * latency_ms),
                p99: Some(2 * latency_ms),
                max: Some(2 * latency_ms),
            },
            ..Metrics::default()
        }
    }

    /// A report of one run of `scenario` on `clock` with one expectation,
    /// "sepsis pages", whose metrics are also the overall ones.
    fn run(scenario: &str, clock: &str, m: Metrics) -> Report {
        let expectation = ExpectationResult {
            name: "sepsis pages".into(),
            kind: "episode".into(),
            condition: Some("sepsis".into()),
            from: Some("onset".into()),
            rule: None,
            alert: "news2-medium".into(),
            within_ms: 1_800_000,
            max_false_alerts: Some(0),
            verdict: Verdict::Pass,
            metrics: m.clone(),
            failures: Vec::new(),
            outcomes: Vec::new(),
        };
        Report {
            schema: REPORT_SCHEMA.into(),
            synthetic_data: true,
            run_id: format!("run-{scenario}"),
            scenario: ScenarioInfo {
                name: scenario.into(),
                path: format!("scenarios/{scenario}.toml"),
                description: None,
            },
            seed: 7,
            version: "0".into(),
            repro: String::new(),
            verdict: Verdict::Pass,
            clock: ClockInfo {
                mode: clock.into(),
                speed: (clock != "virtual").then_some(1200.0),
                epoch: String::new(),
                start: String::new(),
                alert_time_basis: String::new(),
            },
            target: TargetInfo {
                kind: "embedded-reference-backend".into(),
                url: String::new(),
                transport: "http-json".into(),
                encoding: "json".into(),
                faults: None,
                security: Default::default(),
            },
            timing: Timing {
                sim_duration_ms: 0,
                step_ms: 1000,
                wall_ms: 0,
                steps: 0,
                twin_busy_ms: 0.0,
                twin_patient_steps_per_s: 0.0,
            },
            population: Population {
                patients: 6,
                devices: 24,
                devices_by_kind: BTreeMap::new(),
            },
            digests: Digests {
                telemetry: String::new(),
                truth: String::new(),
            },
            accounting: Accounting {
                total: Counts::default(),
                lost_by_cause: BTreeMap::new(),
                duplicates: 0,
                by_device_kind: BTreeMap::new(),
            },
            transport: TransportReport {
                stats: TransportStats::default(),
                send_lag_ms: None,
                deliveries_accepted: 0,
                deliveries_not_accepted: 0,
                accepted_share: None,
                min_accepted_share: 0.99,
            },
            alerts: AlertsReport {
                received: 0,
                by_kind: BTreeMap::new(),
                unknown_patients: 0,
                refused: Refused::default(),
                webhook: String::new(),
                intakes: Vec::new(),
                history: Vec::new(),
                history_dropped: 0,
                token_source: "generated".into(),
            },
            episodes: Vec::new(),
            interventions: Vec::new(),
            interventions_not_listed: 0,
            expectations: vec![expectation],
            metrics: Summary {
                by_kind: BTreeMap::new(),
                overall: m,
            },
            timelines: Vec::new(),
            backend: None,
            interrupted: None,
            harness: HarnessReport {
                build: "debug".into(),
                send_lag_sim_ms: None,
                lag_bound_sim_ms: None,
                reliable: true,
                cpu_s: 0.0,
                cpu_cores_used: 0.0,
                notes: Vec::new(),
                memory_estimate_bytes: 0,
                peak_rss_bytes: None,
                max_wall_s: 0.0,
            },
        }
    }

    fn single(clock: &str, m: Metrics) -> Side {
        Side::of_run(run("ward", clock, m))
    }

    /// A suite of `ward` on `clock`, one run per p50 latency.
    fn suite(clock: &str, p50s: &[u64]) -> Side {
        Side::of_runs(
            p50s.iter()
                .map(|&l| run("ward", clock, metrics(2, 0, 0, 0, l)))
                .collect(),
        )
    }

    fn gate(a: &Side, b: &Side) -> Comparison {
        compare(a, b, &Gate::default(), false).expect("same scenario")
    }

    #[test]
    fn same_runs_are_no_regression() {
        for clock in ["virtual", "accelerated"] {
            let a = single(clock, metrics(2, 1, 1, 1, 600_000));
            let found = gate(&a, &a.clone());
            assert!(found.regressions.is_empty(), "{found:?}");
            assert!(found.table.contains("sepsis pages"), "{}", found.table);
            assert!(found.table.contains("(overall)"), "{}", found.table);
        }
    }

    #[test]
    fn a_ppv_drop_is_a_regression() {
        // PPV 1.0 → 0.33: the same hits, two false alerts.
        let a = single("accelerated", metrics(1, 0, 0, 0, 600_000));
        let b = single("accelerated", metrics(1, 0, 0, 2, 600_000));
        let found = gate(&a, &b);
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r.starts_with("sepsis pages: ppv 1.000 → 0.333")),
            "{found:?}"
        );
        // The false-alert rate rose too (0 → 4 per patient-day).
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r.contains("false/patient-day 0.000 → 4.000")),
            "{found:?}"
        );
        // Loosened past both: no regression.
        let loose = Gate::new(0.1, 0.0, 0.7, 0, Some(4.0), None);
        assert!(
            compare(&a, &b, &loose, false)
                .unwrap()
                .regressions
                .is_empty()
        );
    }

    #[test]
    fn one_more_missed_obligation_is_a_regression() {
        let a = single("virtual", metrics(3, 0, 0, 0, 600_000));
        let b = single("virtual", metrics(2, 0, 1, 0, 600_000));
        let found = gate(&a, &b);
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r == "sepsis pages: missed 0 → 1 (limit +0)"),
            "{found:?}"
        );
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r.starts_with("sepsis pages: sensitivity 1.000 → 0.667")),
            "{found:?}"
        );
        let loose = Gate::new(0.1, 0.34, 0.0, 1, None, None);
        assert!(
            compare(&a, &b, &loose, false)
                .unwrap()
                .regressions
                .is_empty()
        );
    }

    #[test]
    fn latency_of_single_timed_runs_is_shown_not_gated() {
        let a = single("accelerated", metrics(2, 0, 0, 0, 600_000));
        let b = single("accelerated", metrics(2, 0, 0, 0, 690_000));
        let found = gate(&a, &b);
        assert!(found.regressions.is_empty(), "{found:?}");
        assert!(found.table.contains("+15.0%"), "{}", found.table);
        assert_eq!(found.notes, vec![LATENCY_NOT_GATED.to_owned()]);
    }

    #[test]
    fn latency_of_virtual_runs_is_gated_by_the_threshold() {
        let a = single("virtual", metrics(2, 0, 0, 0, 600_000));
        let b = single("virtual", metrics(2, 0, 0, 0, 690_000));
        let found = gate(&a, &b);
        assert!(
            found.regressions.iter().any(|r| r
                == "sepsis pages: latency p50 10m → 11m30s (+15.0%, limit 10.0%; virtual clock)"),
            "{found:?}"
        );
        // Every percentile, per expectation and overall.
        assert_eq!(found.regressions.len(), 8, "{found:?}");
        assert!(found.notes.is_empty(), "{found:?}");
        let loose = Gate::new(0.2, 0.0, 0.0, 0, None, None);
        assert!(
            compare(&a, &b, &loose, false)
                .unwrap()
                .regressions
                .is_empty()
        );
        // A virtual baseline against a timed candidate is timed.
        let timed = single("accelerated", metrics(2, 0, 0, 0, 690_000));
        assert!(gate(&a, &timed).regressions.is_empty());
    }

    #[test]
    fn latency_of_suites_is_gated_past_the_spread() {
        for clock in ["accelerated", "virtual"] {
            // A: p50 10, 11 and 12 minutes (median 11m, spread 2m).
            let a = suite(clock, &[600_000, 660_000, 720_000]);
            // +15 % (1m39s): inside the spread.
            let inside = suite(clock, &[690_000, 759_000, 828_000]);
            let found = gate(&a, &inside);
            assert!(found.regressions.is_empty(), "{clock}: {found:?}");
            assert!(found.notes.is_empty(), "{clock}: {found:?}");
            assert!(found.table.contains("+15.0%"), "{}", found.table);
            assert!(found.table.contains("2m18s"), "the spread: {}", found.table);
            // +60 % (6m36s): beyond it.
            let beyond = suite(clock, &[960_000, 1_056_000, 1_152_000]);
            let found = gate(&a, &beyond);
            assert!(
                found.regressions.iter().any(|r| r.starts_with(
                    "sepsis pages: latency p50 11m → 17m36s (+60.0%, limit 10.0%; beyond the spread"
                )),
                "{clock}: {found:?}"
            );
            // A suite against one run: the suite's spread gates.
            let one = single(clock, metrics(2, 0, 0, 0, 759_000));
            assert!(gate(&a, &one).regressions.is_empty(), "{clock}");
            assert!(!gate(&one, &beyond).regressions.is_empty(), "{clock}");
        }
    }

    #[test]
    fn suites_sum_counts_and_compare_them_per_run() {
        // A: no miss in three runs; B: one miss in three runs.
        let clean = |_| run("ward", "virtual", metrics(3, 0, 0, 0, 600_000));
        let a = Side::of_runs((0..3).map(clean).collect());
        let mut runs: Vec<Report> = (0..3).map(clean).collect();
        runs[1] = run("ward", "virtual", metrics(2, 0, 1, 0, 600_000));
        let b = Side::of_runs(runs);
        let found = gate(&a, &b);
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r == "sepsis pages: missed/run 0.00 → 0.33 (limit +0)"),
            "{found:?}"
        );
        // Sensitivity from the sums: 8 / 9.
        assert!(
            found
                .regressions
                .iter()
                .any(|r| r.starts_with("sepsis pages: sensitivity 1.000 → 0.889")),
            "{found:?}"
        );
    }

    #[test]
    fn different_scenarios_are_refused_unless_allowed() {
        let a = Side::of_run(run("ward", "virtual", metrics(2, 0, 0, 0, 600_000)));
        let b = Side::of_run(run("icu", "virtual", metrics(2, 0, 0, 0, 600_000)));
        let refused = compare(&a, &b, &Gate::default(), false).unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, CompareError::DifferentScenarios { .. })
                && message.contains("only in A: ward (ward.toml)")
                && message.contains("only in B: icu (icu.toml)")
                && message.contains("--allow-different-scenarios"),
            "{message}"
        );
        let allowed = compare(&a, &b, &Gate::default(), true).unwrap();
        assert!(allowed.regressions.is_empty(), "{allowed:?}");
        assert!(
            allowed.table.contains("ward (ward.toml) vs icu (icu.toml)"),
            "{}",
            allowed.table
        );
    }

    #[test]
    fn expectations_on_one_side_only_are_listed() {
        let a = single("virtual", metrics(2, 0, 0, 0, 600_000));
        let mut rb = run("ward", "virtual", metrics(2, 0, 0, 0, 600_000));
        rb.expectations[0].name = "sepsis pages fast".into();
        let found = gate(&a, &Side::of_run(rb));
        assert!(
            found
                .notes
                .contains(&"expectation only in A, not compared: sepsis pages".to_owned()),
            "{found:?}"
        );
        assert!(
            found
                .notes
                .contains(&"expectation only in B, not compared: sepsis pages fast".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn float_noise_is_not_a_regression() {
        // 0.1 + 0.2 patient-days against 0.3: the same rate, unequal floats.
        let mut ma = metrics(2, 0, 0, 1, 600_000);
        ma.patient_days = 0.1 + 0.2;
        let mut mb = ma.clone();
        mb.patient_days = 0.3;
        let found = gate(&single("virtual", ma), &single("virtual", mb));
        assert!(found.regressions.is_empty(), "{found:?}");
    }

    #[test]
    fn false_alert_budgets_replace_and_combine() {
        let d = Gate::default();
        assert_eq!((d.false_rate, d.false_alerts), (Some(0.0), None));
        let count = Gate::new(0.1, 0.0, 0.0, 0, None, Some(3));
        assert_eq!((count.false_rate, count.false_alerts), (None, Some(3)));
        let both = Gate::new(0.1, 0.0, 0.0, 0, Some(1.0), Some(3));
        assert_eq!((both.false_rate, both.false_alerts), (Some(1.0), Some(3)));
        assert_eq!(parse_pct("10%"), Ok(0.1));
        assert!(parse_rate("-1").is_err() && parse_fraction("1.5").is_err());
    }

    #[test]
    fn an_interrupted_run_is_not_compared() {
        let a = single("virtual", metrics(4, 0, 0, 0, 100));
        let mut stopped = run("ward", "virtual", metrics(4, 0, 0, 0, 100));
        stopped.interrupted = Some(crate::report::Interruption {
            reason: "sigint".into(),
            at_sim_ms: 1_000,
            after_wall_s: 1.0,
        });
        let b = Side::of_run(stopped);
        let err = compare(&a, &b, &Gate::default(), false).unwrap_err();
        assert!(
            err.to_string().contains("B holds an interrupted run"),
            "{err}"
        );
    }
}
