//! The load report: `report.json` (schema `medtwin.load.v1`), and
//! `index.html` with throughput, latency percentiles and errors per
//! window, storm and spike stages and scheduled faults shaded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use medtwin_sim::Shard;
use serde::{Deserialize, Serialize};

use super::stats::{Counts, Finished, Percentiles, ThresholdResult, WindowSummary};
use crate::scenario::Scenario;
use crate::scenario::load::{LoadProfile, StageKind};

/// The schema tag of a load report.
pub const LOAD_SCHEMA: &str = "medtwin.load.v1";

/// A shard in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    /// This shard, from 0.
    pub index: u32,
    /// How many.
    pub count: u32,
}

/// A stage, for the charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StageInfo {
    /// ramp, hold, spike or storm.
    pub kind: String,
    /// Start on the scenario timeline, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
}

/// Whether the generator kept its own schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Generator {
    /// Scheduled time → handed to a connection, ms.
    pub lateness_ms: Percentiles,
    /// The bound on its p99 from `[load] lateness_bound`, ms.
    pub lateness_bound_ms: f64,
    /// CPU of this process over the run, cores (includes the embedded
    /// backend when it is the target).
    pub cpu_cores_used: f64,
    /// Cores the machine offers.
    pub cpu_cores: f64,
    /// The figures cannot be trusted: the generator fell behind or its CPU
    /// was saturated.
    pub unreliable: bool,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// `report.json` of `medtwin load` (and of `medtwin merge`); see
/// docs/load.md. Times named `*_s` are on the scenario timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(
    deny_unknown_fields,
    title = "medtwin load report (medtwin.load.v1)",
    extend("$id" = "https://medtwin.invalid/schemas/load-report.schema.json")
)]
pub struct LoadReport {
    /// [`LOAD_SCHEMA`].
    pub schema: String,
    /// The scenario's name.
    pub scenario: String,
    /// Where the telemetry went.
    pub target: String,
    /// The slice of the fleet this report covers (`None`: the whole fleet).
    pub shard: Option<ShardInfo>,
    /// Shards merged into this report (1 for a single process).
    pub shards_merged: u32,
    /// Wall time of simulated time zero (RFC 3339).
    pub start_at: String,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Keep-alive connections (per process; summed over shards).
    pub connections: u32,
    /// Twin threads, each with its own dispatcher (summed over shards).
    #[serde(default)]
    pub generators: u32,
    /// Devices simulated.
    pub devices: u64,
    /// Width of a window of scheduled time, ms.
    pub window_ms: u64,
    /// Wall time the run took, s (longest shard's for a merge).
    pub wall_s: f64,
    /// Stopped by a signal (its name), with the report still written.
    pub interrupted: Option<String>,
    /// Stopped by `abort_on_fail` (why).
    pub aborted: Option<String>,
    /// Every message by fate, over the run.
    pub totals: Counts,
    /// Ingest latency (scheduled → 2xx), ms.
    pub ingest_ms: Percentiles,
    /// Alert latency (triggering measurement's time → the alert's
    /// arrival at the webhook), ms.
    #[serde(default)]
    pub alert_ms: Percentiles,
    /// Alerts the webhook received and refused.
    #[serde(default)]
    pub alerts: AlertTally,
    /// The generator's own schedule and CPU.
    pub generator: Generator,
    /// Every threshold's verdict.
    pub thresholds: Vec<ThresholdResult>,
    /// Every threshold held.
    pub passed: bool,
    /// The profile's stages.
    pub stages: Vec<StageInfo>,
    /// The scenario's scheduled faults (`[[fault]]`: network outages,
    /// device faults), shaded in the charts.
    #[serde(default)]
    pub faults: Vec<StageInfo>,
    /// Every window.
    pub windows: Vec<WindowSummary>,
}

/// What [`LoadReport::build`] needs.
pub struct Inputs<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Its `[load]`.
    pub profile: &'a LoadProfile,
    /// Where it sent.
    pub target: &'a str,
    /// Its shard.
    pub shard: Shard,
    /// Clock speed.
    pub speed: f64,
    /// Connections.
    pub connections: u32,
    /// Twin threads.
    pub generators: u32,
    /// Devices simulated by this process.
    pub devices: u64,
    /// Simulated time zero on the wall.
    pub start_at: SystemTime,
    /// Wall time taken, s.
    pub wall_s: f64,
    /// CPU used, cores.
    pub cpu_cores_used: f64,
    /// The signal that stopped it.
    pub stopped: Option<String>,
    /// Why `abort_on_fail` stopped it.
    pub aborted: Option<String>,
    /// Alerts received and refused.
    pub alerts: AlertTally,
    /// The aggregation.
    pub finished: Finished,
}

/// The alerts a load run's webhook took.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertTally {
    /// Where the target sends its alerts (empty for a merge).
    pub webhook: String,
    /// Alerts received (timed or not).
    pub received: u64,
    /// Received without a usable `measurement_time` (no latency).
    pub untimed: u64,
    /// Refused by the webhook (authentication, a payload that does not
    /// parse), by reason.
    pub refused: BTreeMap<String, u64>,
}

/// The JSON Schema of a load report (`docs/schemas/load-report.schema.json`).
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(LoadReport).to_value();
    medtwin_wire::unwrap_descriptions(&mut schema);
    schema
}

/// Cores this machine offers.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// The generator's verdict from its lateness and CPU.
pub fn generator(
    lateness_ms: Percentiles,
    bound_ms: f64,
    cpu_cores_used: f64,
    cpu_cores: f64,
) -> Generator {
    let mut reasons = Vec::new();
    if lateness_ms.count > 0 && lateness_ms.p99 > bound_ms {
        reasons.push(format!(
            "the generator's lateness p99 was {:.1} ms, above the {bound_ms} ms bound: it could not keep its schedule",
            lateness_ms.p99
        ));
    }
    if cpu_cores_used >= 0.9 * cpu_cores {
        reasons.push(format!(
            "this process used {cpu_cores_used:.2} of {cpu_cores} cores: the CPU was saturated"
        ));
    }
    Generator {
        lateness_ms,
        lateness_bound_ms: bound_ms,
        cpu_cores_used,
        cpu_cores,
        unreliable: !reasons.is_empty(),
        reasons,
    }
}

/// The stages of a profile, for the report.
pub fn stages(profile: &LoadProfile) -> Vec<StageInfo> {
    profile
        .stages
        .iter()
        .map(|s| StageInfo {
            kind: s.kind.name().to_owned(),
            start_s: s.start_ms as f64 / 1_000.0,
            end_s: s.end_ms as f64 / 1_000.0,
        })
        .collect()
}

/// The scenario's scheduled faults, for the report (`kind` is the fault's
/// name, e.g. `network_outage`).
pub fn faults(s: &Scenario) -> Vec<StageInfo> {
    s.sim
        .faults
        .iter()
        .map(|f| StageInfo {
            kind: f.kind.name().to_owned(),
            start_s: f.at_ms as f64 / 1_000.0,
            end_s: (f.at_ms + f.duration_ms) as f64 / 1_000.0,
        })
        .collect()
}

impl LoadReport {
    /// The report of one process's run.
    pub fn build(i: Inputs<'_>) -> LoadReport {
        let f = i.finished;
        let lateness = Percentiles::of(&f.total.lateness);
        LoadReport {
            schema: LOAD_SCHEMA.to_owned(),
            scenario: i.scenario.name.clone(),
            target: i.target.to_owned(),
            shard: (i.shard.count > 1).then_some(ShardInfo {
                index: i.shard.index,
                count: i.shard.count,
            }),
            shards_merged: 1,
            start_at: jiff::Timestamp::try_from(i.start_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            speed: i.speed,
            connections: i.connections,
            generators: i.generators,
            devices: i.devices,
            window_ms: i.profile.window_ms,
            wall_s: i.wall_s,
            interrupted: i.stopped,
            aborted: i.aborted,
            totals: f.total.counts.clone(),
            ingest_ms: Percentiles::of(&f.total.ingest),
            alert_ms: Percentiles::of(&f.total.alert),
            alerts: i.alerts,
            generator: generator(
                lateness,
                i.profile.lateness_bound_ms as f64,
                i.cpu_cores_used,
                cores(),
            ),
            passed: f.thresholds.iter().all(|t| t.passed),
            thresholds: f.thresholds,
            stages: stages(i.profile),
            faults: faults(i.scenario),
            windows: f.windows,
        }
    }

    /// Writes `report.json` and `index.html` into `dir` (each to a
    /// temporary file, then renamed).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).context("cannot serialize the report")?;
        write_atomic(&dir.join("report.json"), &json)?;
        write_atomic(&dir.join("index.html"), html(self).into_string().as_bytes())
    }

    /// Reads a load report.
    pub fn read(path: &Path) -> anyhow::Result<LoadReport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let report: LoadReport = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a load report", path.display()))?;
        if report.schema != LOAD_SCHEMA {
            anyhow::bail!(
                "{}: schema {} is not {LOAD_SCHEMA}",
                path.display(),
                report.schema
            );
        }
        Ok(report)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A line chart of per-window series over the scenario timeline, with the
/// storm and spike stages and the scheduled faults shaded.
fn chart(title: &str, unit: &str, r: &LoadReport, series: &[(&str, &str, Vec<f64>)]) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 60.0;
    const BOTTOM: f64 = 24.0;
    let xs: Vec<f64> = r.windows.iter().map(|w| w.start_s).collect();
    let x_max = xs.last().copied().unwrap_or(1.0).max(
        r.stages
            .iter()
            .chain(&r.faults)
            .map(|s| s.end_s)
            .fold(0.0, f64::max),
    ) + r.window_ms as f64 / 1_000.0;
    let y_max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |t: f64| LEFT + (W - LEFT - 10.0) * t / x_max;
    let y = |v: f64| (H - BOTTOM) - (H - BOTTOM - 10.0) * v / y_max;
    let mut svg = format!(r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">"#);
    for f in &r.faults {
        svg.push_str(&format!(
            r##"<rect class="fault" x="{:.1}" y="10" width="{:.1}" height="{:.1}" fill="#d9d2e9" fill-opacity="0.7"><title>fault {} {}–{} s</title></rect>"##,
            x(f.start_s),
            (x(f.end_s) - x(f.start_s)).max(1.0),
            H - BOTTOM - 10.0,
            f.kind,
            f.start_s,
            f.end_s
        ));
    }
    for s in &r.stages {
        if s.kind == StageKind::Storm.name() || s.kind == StageKind::Spike.name() {
            let fill = if s.kind == "storm" {
                "#f4cccc"
            } else {
                "#fff2cc"
            };
            svg.push_str(&format!(
                r#"<rect x="{:.1}" y="10" width="{:.1}" height="{:.1}" fill="{fill}"><title>{} {}–{} s</title></rect>"#,
                x(s.start_s),
                (x(s.end_s) - x(s.start_s)).max(1.0),
                H - BOTTOM - 10.0,
                s.kind,
                s.start_s,
                s.end_s
            ));
        }
    }
    svg.push_str(&format!(
        r##"<line x1="{LEFT}" y1="{b}" x2="{W}" y2="{b}" stroke="#333"/><line x1="{LEFT}" y1="10" x2="{LEFT}" y2="{b}" stroke="#333"/>"##,
        b = H - BOTTOM
    ));
    for k in 0..=4 {
        let v = y_max / 1.1 * k as f64 / 4.0;
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v:.1}</text>"#,
            LEFT - 4.0,
            y(v) + 3.0
        ));
        let t = x_max * k as f64 / 4.0;
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{t:.0} s</text>"#,
            x(t),
            H - 8.0
        ));
    }
    for (name, color, values) in series {
        let points: Vec<String> = xs
            .iter()
            .zip(values)
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{name}</title></polyline>"#,
            points.join(" ")
        ));
    }
    svg.push_str("</svg>");
    html! {
        h2 { (title) " (" (unit) ")" }
        p.legend { @for (name, color, _) in series { span style={ "color:" (color) } { "■ " (name) " " } } }
        (PreEscaped(svg))
    }
}

/// The HTML page.
pub fn html(r: &LoadReport) -> Markup {
    let window_s = r.window_ms as f64 / 1_000.0 / r.speed.max(1e-9);
    let per_s = |n: u64| n as f64 / window_s;
    let sends: Vec<f64> = r.windows.iter().map(|w| per_s(w.counts.sent)).collect();
    let accepted: Vec<f64> = r.windows.iter().map(|w| per_s(w.counts.accepted)).collect();
    let p50: Vec<f64> = r.windows.iter().map(|w| w.ingest_ms.p50).collect();
    let p99: Vec<f64> = r.windows.iter().map(|w| w.ingest_ms.p99).collect();
    let errors: Vec<f64> = r
        .windows
        .iter()
        .map(|w| w.counts.errors_pct().unwrap_or(0.0))
        .collect();
    let drops: Vec<f64> = r
        .windows
        .iter()
        .map(|w| w.counts.drops_pct().unwrap_or(0.0))
        .collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "medtwin load: " (r.scenario) }
                style { "body{font-family:sans-serif;max-width:800px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.fail{color:#b00}.pass{color:#070}" }
            }
            body {
                h1 { "medtwin load: " (r.scenario) }
                p {
                    "Target " code { (r.target) } ", " (r.devices) " devices, speed ×" (r.speed) ", "
                    (r.connections) " connections, " (r.shards_merged) " shard(s). "
                    @if r.passed { span.pass { "Thresholds held." } } @else { span.fail { "Thresholds failed." } }
                }
                @if let Some(why) = &r.aborted { p.fail { "Aborted: " (why) } }
                @if let Some(sig) = &r.interrupted { p.fail { "Interrupted by " (sig) "." } }
                @if r.generator.unreliable {
                    p.fail { "Unreliable: " @for why in &r.generator.reasons { (why) ". " } }
                }
                table {
                    tr { th { "scheduled" } th { "sent" } th { "accepted" } th { "refused" } th { "failed" } th { "dropped" } }
                    tr { td { (r.totals.scheduled) } td { (r.totals.sent) } td { (r.totals.accepted) } td { (r.totals.refused) } td { (r.totals.failed) } td { (r.totals.dropped) } }
                }
                p { "Ingest latency from the scheduled time: p50 " (format!("{:.2}", r.ingest_ms.p50)) " ms, p99 "
                    (format!("{:.2}", r.ingest_ms.p99)) " ms, max " (format!("{:.2}", r.ingest_ms.max)) " ms. Generator lateness p99 "
                    (format!("{:.2}", r.generator.lateness_ms.p99)) " ms; CPU " (format!("{:.2}", r.generator.cpu_cores_used)) " cores." }
                @if r.alerts.received > 0 {
                    p { "Alerts: " (r.alerts.received) " received (" (r.alerts.untimed) " without a measurement time); latency from the triggering measurement: p50 "
                        (format!("{:.2}", r.alert_ms.p50)) " ms, p95 " (format!("{:.2}", r.alert_ms.p95)) " ms, max " (format!("{:.2}", r.alert_ms.max)) " ms." }
                }
                @if !r.totals.causes.is_empty() {
                    p { "By cause: " @for (c, n) in &r.totals.causes { code { (c) } " " (n) "; " } }
                }
                @if !r.thresholds.is_empty() {
                    h2 { "Thresholds" }
                    table {
                        tr { th { "threshold" } th { "verdict" } th { "value" } th { "failing windows" } }
                        @for t in &r.thresholds {
                            tr {
                                td { code { (t.threshold) } }
                                td class=(if t.passed { "pass" } else { "fail" }) { (if t.passed { "held" } else { "failed" }) }
                                td { (t.value.map_or("–".to_string(), |v| format!("{v:.3}"))) }
                                td { (t.failing_windows) }
                            }
                        }
                    }
                }
                (chart("Throughput per window", "messages/s of wall time", r, &[("sent", "#1f77b4", sends), ("accepted", "#2ca02c", accepted)]))
                (chart("Ingest latency from the scheduled time", "ms", r, &[("p50", "#1f77b4", p50), ("p99", "#d62728", p99)]))
                (chart("Errors and generator drops", "% of scheduled", r, &[("not accepted", "#d62728", errors), ("dropped by the generator", "#ff7f0e", drops)]))
                p { small { "Shaded: storm (red) and spike (yellow) stages. Windows are " (r.window_ms) " ms of scenario time." } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_load_report_schema_is_the_generated_one() {
        // Set MEDTWIN_BLESS=1 to rewrite it after a deliberate change (and
        // bump LOAD_SCHEMA when the shape of report.json changes).
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/schemas/load-report.schema.json");
        let text = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var_os("MEDTWIN_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/schemas/load-report.schema.json drifted from load::report; run \
             `MEDTWIN_BLESS=1 cargo test -p medtwin --lib load_report_schema` and commit it"
        );
    }
}
