//! `medtwin load` and `medtwin merge`: their arguments and exit codes
//! (0 every threshold held, 5 one failed, 2 input, 3 harness, 4 the
//! target accepted nothing; 130/143 after a signal, the report written).

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use medtwin_sim::Shard;

use super::{Failure, Outcome};
use crate::load::{LoadConfig, report::LoadReport};
use crate::scenario;

/// `medtwin load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The scenario file (its `[load]` section: stages, thresholds).
    pub scenario: PathBuf,
    /// Where to send: `http://host:port/path` (POSTs) or
    /// `mqtt://host:port` (publishes, `[target.mqtt]` topic and QoS);
    /// default: the scenario's `[target]`, else the embedded reference
    /// backend. A token is read from MEDTWIN_TARGET_TOKEN (HTTP bearer, MQTT
    /// password).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Simulated seconds per wall second (1: real time).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = speed)]
    pub speed: f64,
    /// HTTP keep-alive connections (default: `[load] connections`, else 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: Option<u32>,
    /// Twin threads, each simulating a slice of the fleet and dispatching
    /// its messages (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub generators: Option<u32>,
    /// This process's slice of the fleet, `k/n` (k from 0).
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<Shard>,
    /// Wall time of simulated time zero (RFC 3339), shared by every shard.
    #[arg(long, value_name = "TIME", value_parser = start_at)]
    pub start_at: Option<SystemTime>,
    /// Output folder (report.json, index.html, latency.hlog).
    #[arg(long, value_name = "DIR", default_value = "reports/load")]
    pub out: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// `medtwin merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(long, value_name = "DIR", default_value = "reports/merged")]
    pub out: PathBuf,
}

fn speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100_000.0 => Ok(v),
        _ => Err(format!("{text} is out of range (0 to 100000]")),
    }
}

/// `k/n` with `k < n`.
pub fn shard(text: &str) -> Result<Shard, String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: write k/n, e.g. 0/4"))?;
    let k: u32 = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` is not a shard number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a shard count"))?;
    if n == 0 || k >= n {
        return Err(format!(
            "shard {k}/{n}: k must be below n (k counts from 0)"
        ));
    }
    Ok(Shard { index: k, count: n })
}

fn start_at(text: &str) -> Result<SystemTime, String> {
    let t: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))?;
    let ns = u64::try_from(t.as_nanosecond()).map_err(|_| format!("`{text}` is before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
}

/// Runs `medtwin load`.
pub fn load(args: &LoadArgs) -> Result<Outcome, Failure> {
    let mut s = scenario::load(&args.scenario).map_err(|d| Failure::Input(d.to_string()))?;
    if let Some(seed) = args.seed {
        s.sim.seed = seed;
    }
    scenario::limits::Estimate::of(&s)
        .check(s.max_memory)
        .map_err(|e| {
            Failure::Input(format!(
                "error: {}: too big to run: {e}",
                args.scenario.display()
            ))
        })?;
    if let Some(t) = &args.target {
        let checked = if t.starts_with("mqtt://") {
            scenario::interop::host_port(t, "mqtt").map(|_| ())
        } else {
            crate::load::http::split_url(t).map(|_| ())
        };
        checked.map_err(|e| Failure::Input(format!("error: --target {e}")))?;
    }
    if args.start_at.is_some_and(|t| t < SystemTime::now()) {
        return Err(Failure::Input("error: --start-at is in the past".into()));
    }
    if cfg!(debug_assertions) && !args.quiet {
        eprintln!("note: this is a debug build of medtwin: build with --release for load figures");
    }
    let config = LoadConfig {
        target: args.target.clone(),
        speed: args.speed,
        connections: args.connections,
        generators: args.generators,
        shard: args.shard.unwrap_or(Shard::WHOLE),
        start_at: args.start_at,
        out: args.out.clone(),
        quiet: args.quiet,
    };
    // The connections' tasks and the dispatchers on every core (at least
    // two, as for `run`).
    let rt = super::runtime_with(
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2),
    )?;
    let report = rt.block_on(async {
        let stop = super::on_signals();
        let report = crate::load::run(&s, &config, &stop).await;
        (report, stop.reason())
    });
    let (report, stopped) = report;
    let report = report.map_err(|e| Failure::Harness(format!("error: {e:#}")))?;
    print_summary(&report, &args.out);
    if let Some(reason) = stopped {
        return Ok(Outcome::Stopped(reason));
    }
    Ok(verdict(&report))
}

/// A target that accepted nothing is told apart first (exit 4: not
/// there, or refusing everything, is a setup to fix before any threshold
/// means something); then the thresholds (exit 5).
fn verdict(report: &LoadReport) -> Outcome {
    if report.totals.sent > 0 && report.totals.accepted == 0 {
        Outcome::Target
    } else if !report.passed {
        Outcome::Thresholds
    } else {
        Outcome::Pass
    }
}

/// Runs `medtwin merge`.
pub fn merge(args: &MergeArgs) -> Result<Outcome, Failure> {
    let report = crate::load::merge::merge(&args.dirs, &args.out)
        .map_err(|e| Failure::Input(format!("error: {}", e.0)))?
        .map_err(|e| Failure::Harness(format!("error: {e:#}")))?;
    print_summary(&report, &args.out);
    Ok(verdict(&report))
}

/// `medtwin compare` when both sides are load reports (`None`: neither
/// is, the run comparison applies); one load report against a run report
/// is an input error.
pub fn compare(args: &super::CompareArgs) -> Result<Option<Outcome>, Failure> {
    use crate::load::compare;
    let (a, b) = (
        compare::read_if_load(&args.a),
        compare::read_if_load(&args.b),
    );
    let (a, b) = match (a, b) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) => (
            a.map_err(|e| Failure::Input(format!("error: {e:#}")))?,
            b.map_err(|e| Failure::Input(format!("error: {e:#}")))?,
        ),
        _ => {
            return Err(Failure::Input(
                "error: one side is a load report and the other is not".into(),
            ));
        }
    };
    if a.scenario != b.scenario && !args.allow_different_scenarios {
        return Err(Failure::Input(format!(
            "error: different scenarios (\"{}\" and \"{}\"); --allow-different-scenarios to compare anyway",
            a.scenario, b.scenario
        )));
    }
    let found = compare::compare(&a, &b, args.max_latency_regression);
    print!("{}", found.table);
    for note in &found.notes {
        println!("note: {note}");
    }
    if found.regressions.is_empty() {
        println!("\ncompare: no regression past the thresholds");
        return Ok(Some(Outcome::Pass));
    }
    for r in &found.regressions {
        println!("REGRESSION: {r}");
    }
    Ok(Some(Outcome::Fail))
}

fn print_summary(r: &LoadReport, out: &std::path::Path) {
    let t = &r.totals;
    println!(
        "{}: scheduled {}, sent {}, accepted {}, refused {}, failed {}, dropped by the generator {}",
        r.scenario, t.scheduled, t.sent, t.accepted, t.refused, t.failed, t.dropped
    );
    for (cause, n) in &t.causes {
        println!("  {cause}: {n}");
    }
    println!(
        "ingest latency from the scheduled time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; generator lateness p99 {:.2} ms",
        r.ingest_ms.p50, r.ingest_ms.p99, r.ingest_ms.max, r.generator.lateness_ms.p99
    );
    let a = &r.alerts;
    if a.received > 0 || !a.refused.is_empty() {
        let refused: u64 = a.refused.values().sum();
        println!(
            "alerts: {} received ({} without a measurement time), {refused} refused{}; latency from the triggering measurement: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            a.received,
            a.untimed,
            if refused > 0 {
                format!(
                    " ({})",
                    a.refused
                        .iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            },
            r.alert_ms.p50,
            r.alert_ms.p99,
            r.alert_ms.max
        );
    }
    if r.generator.unreliable {
        for why in &r.generator.reasons {
            println!("UNRELIABLE: {why}");
        }
    }
    if let Some(why) = &r.aborted {
        println!("ABORTED: {why}");
    }
    for th in &r.thresholds {
        println!(
            "threshold `{}`: {}{}",
            th.threshold,
            if th.passed { "held" } else { "FAILED" },
            th.value.map_or(String::new(), |v| format!(" ({v:.3})"))
        );
    }
    println!("report: {}", out.join("report.json").display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        assert_eq!(shard("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(shard("4/4").is_err());
        assert!(shard("x").is_err());
    }
}
