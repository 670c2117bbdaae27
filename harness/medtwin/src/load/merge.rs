//! `medtwin merge DIR...`: one report from the shards of a load run.
//! Each shard's folder holds its partial `report.json` (counts per window)
//! and its HDR interval log (histograms per window); windows are of
//! scheduled time, so the same window of every shard covers the same
//! messages' times. Histograms add count for count, so the merged
//! percentiles are exactly those of one histogram of every message, and
//! the thresholds are judged again on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use super::LOG_FILE;
use super::report::{LoadReport, generator};
use super::stats::{self, Aggregator, Percentiles, WindowData};
use crate::scenario::load::parse_threshold;

/// Why shards cannot be merged (an input error: exit 2).
#[derive(Debug)]
pub struct MergeError(pub String);

/// Merges the shard folders `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<anyhow::Result<LoadReport>, MergeError> {
    let mut parts = Vec::new();
    for dir in dirs {
        let report =
            LoadReport::read(&dir.join("report.json")).map_err(|e| MergeError(format!("{e:#}")))?;
        let log_path = dir.join(LOG_FILE);
        let log = std::fs::read(&log_path)
            .map_err(|e| MergeError(format!("cannot read {}: {e}", log_path.display())))?;
        let histograms = stats::read_log(&log, report.window_ms)
            .map_err(|e| MergeError(format!("{}: {e}", log_path.display())))?;
        parts.push((dir.clone(), report, histograms));
    }
    let Some((_, first, _)) = parts.first() else {
        return Err(MergeError("nothing to merge".into()));
    };
    let first = first.clone();
    let mut seen = BTreeMap::new();
    for (dir, r, _) in &parts {
        if r.scenario != first.scenario || r.window_ms != first.window_ms {
            return Err(MergeError(format!(
                "{}: scenario \"{}\" with {} ms windows, but {} has \"{}\" with {} ms",
                dir.display(),
                r.scenario,
                r.window_ms,
                parts[0].0.display(),
                first.scenario,
                first.window_ms
            )));
        }
        let shard = r.shard.map_or((0, 1), |s| (s.index, s.count));
        if let Some(other) = seen.insert(shard, dir.clone()) {
            return Err(MergeError(format!(
                "{} and {} are the same shard {}/{}",
                other.display(),
                dir.display(),
                shard.0,
                shard.1
            )));
        }
    }
    let counts: Vec<u32> = seen.keys().map(|(_, n)| *n).collect();
    let n = counts[0];
    if counts.iter().any(|c| *c != n) || seen.len() as u32 != n {
        let have: Vec<String> = seen.keys().map(|(i, n)| format!("{i}/{n}")).collect();
        return Err(MergeError(format!(
            "the shards do not make a whole fleet: have {}, need 0/{n} to {}/{n}",
            have.join(", "),
            n - 1
        )));
    }
    let thresholds = first
        .thresholds
        .iter()
        .map(|t| parse_threshold(&t.threshold).map_err(|(m, _)| MergeError(m)))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(write(parts, first, &thresholds, out))
}

fn write(
    parts: Vec<(PathBuf, LoadReport, stats::LoggedWindows)>,
    first: LoadReport,
    thresholds: &[crate::scenario::load::Threshold],
    out: &Path,
) -> anyhow::Result<LoadReport> {
    let mut windows: BTreeMap<u64, WindowData> = BTreeMap::new();
    let mut cpu = 0.0f64;
    let (mut wall_s, mut devices, mut connections, mut generators) = (0.0f64, 0, 0, 0);
    let mut alerts = super::report::AlertTally::default();
    let mut interrupted = None;
    let mut aborted = None;
    for (_, r, hists) in parts {
        for w in &r.windows {
            windows.entry(w.index).or_default().counts.add(&w.counts);
        }
        for (i, (ingest, lateness, alert)) in hists {
            let slot = windows.entry(i).or_default();
            slot.ingest
                .add(&ingest)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            slot.lateness
                .add(&lateness)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            slot.alert
                .add(&alert)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        cpu = cpu.max(r.generator.cpu_cores_used);
        wall_s = wall_s.max(r.wall_s);
        devices += r.devices;
        connections += r.connections;
        generators += r.generators;
        alerts.received += r.alerts.received;
        alerts.untimed += r.alerts.untimed;
        for (reason, n) in &r.alerts.refused {
            *alerts.refused.entry(reason.clone()).or_default() += n;
        }
        interrupted = interrupted.or(r.interrupted);
        aborted = aborted.or(r.aborted);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let log_path = out.join(LOG_FILE);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&log_path)
            .with_context(|| format!("cannot write {}", log_path.display()))?,
    );
    let mut serializer = V2DeflateSerializer::new();
    let mut agg = Aggregator::new(first.window_ms, thresholds);
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("medtwin merge: windows of scheduled time; values in microseconds")
            .begin_log_with(&mut file, &mut serializer)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", log_path.display()))?;
        for (i, data) in windows {
            stats::log_window(&mut log, i, first.window_ms, &data)?;
            agg.close(i, data);
        }
    }
    std::io::Write::flush(&mut file)?;
    let f = agg.finish();
    let report = LoadReport {
        shard: None,
        shards_merged: first.shard.map_or(1, |s| s.count),
        wall_s,
        devices,
        connections,
        generators,
        interrupted,
        aborted,
        totals: f.total.counts.clone(),
        ingest_ms: Percentiles::of(&f.total.ingest),
        alert_ms: Percentiles::of(&f.total.alert),
        alerts,
        generator: generator(
            Percentiles::of(&f.total.lateness),
            first.generator.lateness_bound_ms,
            cpu,
            first.generator.cpu_cores,
        ),
        passed: f.thresholds.iter().all(|t| t.passed),
        thresholds: f.thresholds,
        windows: f.windows,
        ..first
    };
    report.write(out)?;
    Ok(report)
}
