//! `[load]`: how `medtwin load` drives the fleet (connections, queues,
//! report windows), its stage profile on the scenario timeline (ramp,
//! hold, spike, storm) and its thresholds (`ingest.p99 < 200ms`,
//! `errors < 0.1%`, optionally `per 10s`). Checked with positions like
//! every other section; `medtwin run` ignores it.

use serde::Deserialize;
use toml::Spanned;

use super::diag::{Reporter, quoted_list};
use super::duration::Dur;

/// `[load]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadSpec {
    pub connections: Option<Spanned<u32>>,
    pub queue: Option<Spanned<u32>>,
    pub max_late: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub window: Option<Spanned<Dur>>,
    pub lateness_bound: Option<Spanned<Dur>>,
    pub spread: Option<Spanned<Dur>>,
    pub initial_devices_pct: Option<Spanned<f64>>,
    pub abort_on_fail: Option<bool>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<String>>,
    #[serde(default)]
    pub stage: Vec<Spanned<StageSpec>>,
}

/// `[[load.stage]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageSpec {
    pub kind: Option<Spanned<String>>,
    pub at: Option<Spanned<Dur>>,
    pub duration: Option<Spanned<Dur>>,
    pub devices_pct: Option<Spanned<f64>>,
    pub rate_pct: Option<Spanned<f64>>,
}

/// What a stage does to the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// Move the levels linearly from the previous ones to this stage's.
    Ramp,
    /// Set the levels at once (or keep them) for the duration.
    Hold,
    /// This stage's levels for the duration, then back to the previous.
    Spike,
    /// An outage: nothing is sent; at its end every gateway flushes what
    /// it held at once (each held message is due at the stage's end).
    Storm,
}

impl StageKind {
    const NAMES: [&'static str; 4] = ["ramp", "hold", "spike", "storm"];

    fn parse(text: &str) -> Option<StageKind> {
        Some(match text {
            "ramp" => StageKind::Ramp,
            "hold" => StageKind::Hold,
            "spike" => StageKind::Spike,
            "storm" => StageKind::Storm,
            _ => return None,
        })
    }

    /// Its name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Ramp => "ramp",
            StageKind::Hold => "hold",
            StageKind::Spike => "spike",
            StageKind::Storm => "storm",
        }
    }
}

/// One stage, resolved: absolute simulated times and the levels it ends at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// What it does.
    pub kind: StageKind,
    /// Simulated start, ms.
    pub start_ms: u64,
    /// Simulated end, ms.
    pub end_ms: u64,
    /// Share of the fleet's devices sending, % (at the end of a ramp).
    pub devices_pct: f64,
    /// Share of each sending device's messages sent, %.
    pub rate_pct: f64,
}

/// A measured quantity a threshold bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Ingest latency (scheduled time → acknowledgement) at a quantile (0..=1).
    Ingest(f64),
    /// The generator's lateness (scheduled time → handed to a connection).
    Lateness(f64),
    /// Alert latency (triggering measurement's time → the alert's arrival).
    Alert(f64),
    /// Messages not accepted (refused, failed or dropped) / scheduled, %.
    Errors,
    /// Messages dropped by the generator / scheduled, %.
    Drops,
}

/// One threshold: `metric < bound`, over the whole run or every window.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written.
    pub text: String,
    /// What it bounds.
    pub metric: Metric,
    /// `<=` rather than `<`.
    pub inclusive: bool,
    /// The bound: ms for latencies, % for shares.
    pub bound: f64,
    /// `per 10s`: each window of this width must hold; `None`: the whole run.
    pub per_ms: Option<u64>,
}

/// `[load]`, resolved with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadProfile {
    /// HTTP keep-alive connections (`None`: the command line's or 8).
    pub connections: Option<u32>,
    /// Messages that may wait per connection; more are dropped and counted.
    pub queue: u32,
    /// A message not handed to a connection this long after its time is
    /// dropped by the generator (counted), never sent late, ms.
    pub max_late_ms: u64,
    /// Per-request timeout, ms.
    pub timeout_ms: u64,
    /// Width of the report's windows (scheduled time), ms.
    pub window_ms: u64,
    /// Above this generator lateness p99 the run is unreliable, ms.
    pub lateness_bound_ms: u64,
    /// Each device sends this far into the twin's step at most (a fixed
    /// phase per device, from its name): real devices do not tick together
    /// on the step's boundary, ms; `None`: one step.
    pub spread_ms: Option<u64>,
    /// Devices sending before the first stage, %.
    pub initial_devices_pct: f64,
    /// Stop at the first window that fails a threshold.
    pub abort_on_fail: bool,
    /// The stages, in time order.
    pub stages: Vec<Stage>,
    /// The thresholds.
    pub thresholds: Vec<Threshold>,
}

impl Default for LoadProfile {
    fn default() -> LoadProfile {
        LoadProfile {
            connections: None,
            queue: 1_024,
            max_late_ms: 1_000,
            timeout_ms: 5_000,
            window_ms: 1_000,
            lateness_bound_ms: 5,
            spread_ms: None,
            initial_devices_pct: 100.0,
            abort_on_fail: false,
            stages: Vec::new(),
            thresholds: Vec::new(),
        }
    }
}

/// Resolves `[load]` (the default profile when absent).
pub(crate) fn resolve(
    spec: Option<&Spanned<LoadSpec>>,
    duration_ms: Option<u64>,
    r: &mut Reporter<'_>,
) -> LoadProfile {
    let mut out = LoadProfile::default();
    let Some(spec) = spec else {
        return out;
    };
    let s = spec.get_ref();
    if let Some(c) = &s.connections {
        if (1..=10_000).contains(c.get_ref()) {
            out.connections = Some(*c.get_ref());
        } else {
            r.error(
                c.span(),
                Some("load.connections".into()),
                format!("connections = {} is out of range", c.get_ref()),
                Some("1 to 10000".into()),
            );
        }
    }
    if let Some(q) = &s.queue {
        if (1..=1_000_000).contains(q.get_ref()) {
            out.queue = *q.get_ref();
        } else {
            r.error(
                q.span(),
                Some("load.queue".into()),
                format!("queue = {} is out of range", q.get_ref()),
                Some("1 to 1000000 messages per connection".into()),
            );
        }
    }
    let positive =
        |d: &Option<Spanned<Dur>>, field: &str, default: u64, r: &mut Reporter<'_>| match d {
            Some(d) if d.get_ref().ms() == 0 => {
                r.error(
                    d.span(),
                    Some(format!("load.{field}")),
                    format!("{field} must be positive"),
                    None,
                );
                default
            }
            Some(d) => d.get_ref().ms(),
            None => default,
        };
    out.max_late_ms = positive(&s.max_late, "max_late", out.max_late_ms, r);
    out.timeout_ms = positive(&s.timeout, "timeout", out.timeout_ms, r);
    out.window_ms = positive(&s.window, "window", out.window_ms, r);
    out.lateness_bound_ms = positive(
        &s.lateness_bound,
        "lateness_bound",
        out.lateness_bound_ms,
        r,
    );
    out.spread_ms = s.spread.as_ref().map(|d| d.get_ref().ms());
    out.initial_devices_pct = super::number_in(
        &s.initial_devices_pct,
        |x| (0.0..=100.0).contains(&x),
        "load.initial_devices_pct",
        "a percentage: 0 to 100",
        100.0,
        r,
    );
    out.abort_on_fail = s.abort_on_fail.unwrap_or(false);
    out.stages = resolve_stages(&s.stage, duration_ms, r);
    for (i, t) in s.thresholds.iter().enumerate() {
        match parse_threshold(t.get_ref()) {
            Ok(threshold) => {
                if let Some(per) = threshold.per_ms
                    && per % out.window_ms != 0
                {
                    r.error(
                        t.span(),
                        Some(format!("load.thresholds[{i}]")),
                        format!(
                            "`per {}` is not a multiple of the window ({})",
                            Dur(per),
                            Dur(out.window_ms)
                        ),
                        Some("set [load] window to a divisor of it".into()),
                    );
                }
                out.thresholds.push(threshold);
            }
            Err((message, help)) => r.error(
                t.span(),
                Some(format!("load.thresholds[{i}]")),
                message,
                help,
            ),
        }
    }
    out
}

fn resolve_stages(
    specs: &[Spanned<StageSpec>],
    duration_ms: Option<u64>,
    r: &mut Reporter<'_>,
) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut end_ms = 0;
    for (i, spanned) in specs.iter().enumerate() {
        let field = |name: &str| format!("load.stage[{i}].{name}");
        let s = spanned.get_ref();
        let kind = match &s.kind {
            Some(k) => match StageKind::parse(k.get_ref()) {
                Some(kind) => kind,
                None => {
                    r.error(
                        k.span(),
                        Some(field("kind")),
                        format!("unknown stage kind \"{}\"", k.get_ref()),
                        Some(format!("one of {}", quoted_list(&StageKind::NAMES))),
                    );
                    continue;
                }
            },
            None => {
                r.missing(spanned.span(), field("kind"));
                continue;
            }
        };
        let start_ms = match &s.at {
            Some(at) if at.get_ref().ms() < end_ms => {
                r.error(
                    at.span(),
                    Some(field("at")),
                    format!("the stage starts at {} but the previous one ends at {}", at.get_ref(), Dur(end_ms)),
                    Some("stages follow each other in time; leave `at` out to start where the previous ends".into()),
                );
                end_ms
            }
            Some(at) => at.get_ref().ms(),
            None => end_ms,
        };
        let duration = match &s.duration {
            Some(d) if d.get_ref().ms() == 0 => {
                r.error(
                    d.span(),
                    Some(field("duration")),
                    "duration must be positive",
                    None,
                );
                continue;
            }
            Some(d) => d.get_ref().ms(),
            None => {
                r.missing(spanned.span(), field("duration"));
                continue;
            }
        };
        if let (Some(total), Some(d)) = (duration_ms, &s.duration)
            && start_ms + duration > total
        {
            r.error(
                d.span(),
                Some(field("duration")),
                format!(
                    "the stage ends at {}, after the scenario's {}",
                    Dur(start_ms + duration),
                    Dur(total)
                ),
                None,
            );
        }
        let previous = stages.last().map(|p: &Stage| (p.devices_pct, p.rate_pct));
        let pct = |v: &Option<Spanned<f64>>, name: &str, default: f64, r: &mut Reporter<'_>| {
            super::number_in(
                v,
                |x| (0.0..=100.0).contains(&x),
                &field(name),
                "a percentage: 0 to 100",
                default,
                r,
            )
        };
        let (devices_before, rate_before) = previous.unwrap_or((f64::NAN, 100.0));
        if kind == StageKind::Ramp && s.devices_pct.is_none() && s.rate_pct.is_none() {
            r.error(
                spanned.span(),
                Some(format!("load.stage[{i}]")),
                "a ramp needs devices_pct or rate_pct: the level it ramps to",
                None,
            );
        }
        if kind == StageKind::Storm && (s.devices_pct.is_some() || s.rate_pct.is_some()) {
            r.error(
                spanned.span(),
                Some(format!("load.stage[{i}]")),
                "a storm keeps the levels before it: leave devices_pct and rate_pct out",
                None,
            );
        }
        // NaN marks "the initial level", filled in by `LoadProfile::levels`.
        let devices_pct = pct(&s.devices_pct, "devices_pct", devices_before, r);
        let rate_pct = pct(&s.rate_pct, "rate_pct", rate_before, r);
        end_ms = start_ms + duration;
        stages.push(Stage {
            kind,
            start_ms,
            end_ms,
            devices_pct,
            rate_pct,
        });
    }
    stages
}

const QUANTILES: [(&str, f64); 7] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
    ("max", 1.0),
    ("mean", -1.0),
];

/// Parses `ingest.p99 < 200ms`, `errors < 0.1%`, `... per 10s`.
pub fn parse_threshold(text: &str) -> Result<Threshold, (String, Option<String>)> {
    let syntax = || {
        Some("write `METRIC < VALUE` or `METRIC < VALUE per WINDOW`, e.g. \"ingest.p99 < 200ms\", \"errors < 0.1%\", \"ingest.p95 < 50ms per 10s\"".to_string())
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let (metric, op, value, per) = match words.as_slice() {
        [m, op, v] => (*m, *op, *v, None),
        [m, op, v, "per", w] => (*m, *op, *v, Some(*w)),
        _ => return Err((format!("cannot read the threshold \"{text}\""), syntax())),
    };
    let inclusive = match op {
        "<" => false,
        "<=" => true,
        _ => {
            return Err((
                format!("unknown comparison `{op}` in \"{text}\""),
                Some("thresholds are upper bounds: `<` or `<=`".into()),
            ));
        }
    };
    let metric = match metric.split_once('.') {
        Some(("ingest" | "lateness" | "alert", q)) => {
            let Some(&(_, quantile)) = QUANTILES.iter().find(|(name, _)| *name == q) else {
                return Err((
                    format!("unknown statistic `{q}` in \"{text}\""),
                    Some(format!(
                        "one of {}",
                        quoted_list(&QUANTILES.map(|(n, _)| n))
                    )),
                ));
            };
            if metric.starts_with("ingest") {
                Metric::Ingest(quantile)
            } else if metric.starts_with("alert") {
                Metric::Alert(quantile)
            } else {
                Metric::Lateness(quantile)
            }
        }
        None if metric == "errors" => Metric::Errors,
        None if metric == "drops" => Metric::Drops,
        _ => {
            return Err((
                format!("unknown metric `{metric}` in \"{text}\""),
                Some("one of ingest.pNN, lateness.pNN, alert.pNN, errors, drops".into()),
            ));
        }
    };
    let bound = match metric {
        Metric::Errors | Metric::Drops => value
            .strip_suffix('%')
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                (
                    format!("`{value}` is not a percentage"),
                    Some("e.g. 0.1%".into()),
                )
            })?,
        _ => super::duration::parse(value)
            .map(|ms| ms as f64)
            .map_err(|why| {
                (
                    format!("`{value}` is not a duration: {why}"),
                    Some("e.g. 200ms, 2s".into()),
                )
            })?,
    };
    let per_ms = match per {
        None => None,
        Some(w) => match super::duration::parse(w) {
            Ok(ms) if ms > 0 => Some(ms),
            _ => {
                return Err((
                    format!("`per {w}`: not a positive duration"),
                    Some("e.g. per 10s".into()),
                ));
            }
        },
    };
    Ok(Threshold {
        text: text.to_string(),
        metric,
        inclusive,
        bound,
        per_ms,
    })
}

impl LoadProfile {
    /// The levels (devices %, rate %) at simulated time `t_ms`, and whether
    /// a storm holds messages then (`Some(end)`: due at the storm's end).
    pub fn levels(&self, t_ms: u64) -> (f64, f64, Option<u64>) {
        let mut devices = self.initial_devices_pct;
        let mut rate = 100.0;
        for stage in &self.stages {
            let fill = |x: f64, before: f64| if x.is_nan() { before } else { x };
            let (to_devices, to_rate) =
                (fill(stage.devices_pct, devices), fill(stage.rate_pct, rate));
            if t_ms < stage.start_ms {
                break;
            }
            if t_ms >= stage.end_ms {
                if stage.kind != StageKind::Spike {
                    devices = to_devices;
                    rate = to_rate;
                }
                continue;
            }
            return match stage.kind {
                StageKind::Ramp => {
                    let f = (t_ms - stage.start_ms) as f64 / (stage.end_ms - stage.start_ms) as f64;
                    (
                        devices + (to_devices - devices) * f,
                        rate + (to_rate - rate) * f,
                        None,
                    )
                }
                StageKind::Hold | StageKind::Spike => (to_devices, to_rate, None),
                StageKind::Storm => (devices, rate, Some(stage.end_ms)),
            };
        }
        (devices, rate, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(kind: StageKind, start_ms: u64, end_ms: u64, devices_pct: f64) -> Stage {
        Stage {
            kind,
            start_ms,
            end_ms,
            devices_pct,
            rate_pct: 100.0,
        }
    }

    #[test]
    fn levels_follow_ramp_hold_spike_and_storm() {
        let profile = LoadProfile {
            initial_devices_pct: 0.0,
            stages: vec![
                stage(StageKind::Ramp, 0, 10_000, 100.0),
                stage(StageKind::Hold, 10_000, 20_000, 50.0),
                stage(StageKind::Spike, 20_000, 25_000, 100.0),
                stage(StageKind::Storm, 30_000, 40_000, f64::NAN),
            ],
            ..LoadProfile::default()
        };
        assert_eq!(profile.levels(5_000).0, 50.0);
        assert_eq!(profile.levels(15_000).0, 50.0);
        assert_eq!(profile.levels(22_000).0, 100.0);
        assert_eq!(profile.levels(27_000).0, 50.0, "a spike falls back");
        assert_eq!(profile.levels(35_000), (50.0, 100.0, Some(40_000)));
        assert_eq!(profile.levels(45_000), (50.0, 100.0, None));
    }

    #[test]
    fn thresholds_parse_and_refuse_with_a_reason() {
        let t = parse_threshold("ingest.p99 < 200ms").unwrap();
        assert_eq!(
            (t.metric, t.bound, t.per_ms),
            (Metric::Ingest(0.99), 200.0, None)
        );
        let t = parse_threshold("errors <= 0.1% per 10s").unwrap();
        assert_eq!(
            (t.metric, t.inclusive, t.bound, t.per_ms),
            (Metric::Errors, true, 0.1, Some(10_000))
        );
        assert!(
            parse_threshold("ingest.p42 < 1s")
                .unwrap_err()
                .0
                .contains("p42")
        );
        assert!(parse_threshold("errors > 1%").unwrap_err().0.contains('>'));
        let alert = parse_threshold("alert.p95 < 30s per 1m").unwrap();
        assert_eq!(
            (alert.metric, alert.bound, alert.per_ms),
            (Metric::Alert(0.95), 30_000.0, Some(60_000))
        );
        assert!(
            parse_threshold("errors < 1")
                .unwrap_err()
                .0
                .contains("percentage")
        );
    }
}
