//! `medtwin report PATH` (re-render from report.json) and `medtwin compare
//! A B`: what changed between two runs, and a regression gate.
//!
//! Compared per expectation (matched by name) and overall: latency
//! percentiles p50/p95/p99/max, sensitivity, PPV and false alerts. The
//! gate fails (exit 1) when B is worse than A past a threshold:
//! `--max-latency-regression 10%` (relative increase of any latency
//! percentile), `--max-sensitivity-drop 0.05` and `--max-ppv-drop 0.05`
//! (absolute), `--max-false-alert-increase 0` (count). A threshold not
//! given is not checked; with none given, the gate is the default latency
//! regression of 10 % and no drop in sensitivity.

use std::fmt::Write as _;

use medtwin_check::duration::human;

use crate::report::{Metrics, Report, truncate};

/// Thresholds of the gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate {
    /// Relative latency increase allowed (0.1 = 10 %).
    pub latency: Option<f64>,
    /// Absolute sensitivity drop allowed.
    pub sensitivity: Option<f64>,
    /// Absolute PPV drop allowed.
    pub ppv: Option<f64>,
    /// False alerts added allowed.
    pub false_alerts: Option<u64>,
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

impl Gate {
    /// The gate of the thresholds given; with none given, the default:
    /// a latency regression of 10 % and no drop in sensitivity.
    pub fn new(
        latency: Option<f64>,
        sensitivity: Option<f64>,
        ppv: Option<f64>,
        false_alerts: Option<u64>,
    ) -> Gate {
        if latency.is_none() && sensitivity.is_none() && ppv.is_none() && false_alerts.is_none() {
            return Gate {
                latency: Some(0.10),
                sensitivity: Some(0.0),
                ppv: None,
                false_alerts: None,
            };
        }
        Gate {
            latency,
            sensitivity,
            ppv,
            false_alerts,
        }
    }
}

/// The comparison as text, and the regressions past the gate.
pub fn compare(a: &Report, b: &Report, gate: Gate) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut regressions = Vec::new();
    let _ = writeln!(
        text,
        "A: {} (seed {}, {}, {})\nB: {} (seed {}, {}, {})\n",
        a.scenario.name,
        a.seed,
        a.run_id,
        a.verdict.text(),
        b.scenario.name,
        b.seed,
        b.run_id,
        b.verdict.text()
    );
    let _ = writeln!(
        text,
        "{:<36} {:<14} {:>10} {:>10} {:>9}",
        "expectation", "metric", "A", "B", "change"
    );
    let mut pairs: Vec<(String, &Metrics, &Metrics)> = Vec::new();
    for ea in &a.expectations {
        match b.expectations.iter().find(|eb| eb.name == ea.name) {
            Some(eb) => pairs.push((ea.name.clone(), &ea.metrics, &eb.metrics)),
            None => {
                let _ = writeln!(text, "{:<36} only in A", ea.name);
            }
        }
    }
    for eb in &b.expectations {
        if !a.expectations.iter().any(|ea| ea.name == eb.name) {
            let _ = writeln!(text, "{:<36} only in B", eb.name);
        }
    }
    pairs.push(("(overall)".into(), &a.metrics.overall, &b.metrics.overall));
    for (name, ma, mb) in pairs {
        let shown = truncate(&name, 36);
        for (p, va, vb) in [
            ("latency p50", ma.latency_ms.p50, mb.latency_ms.p50),
            ("latency p95", ma.latency_ms.p95, mb.latency_ms.p95),
            ("latency p99", ma.latency_ms.p99, mb.latency_ms.p99),
            ("latency max", ma.latency_ms.max, mb.latency_ms.max),
        ] {
            let change = match (va, vb) {
                (Some(x), Some(y)) if x > 0 => {
                    let rel = (y as f64 - x as f64) / x as f64;
                    if let Some(limit) = gate.latency
                        && rel > limit
                    {
                        regressions.push(format!(
                            "{name}: {p} {} → {} (+{:.1}%, limit {:.1}%)",
                            human(x),
                            human(y),
                            rel * 100.0,
                            limit * 100.0
                        ));
                    }
                    format!("{:+.1}%", rel * 100.0)
                }
                _ => "-".into(),
            };
            let show = |v: Option<u64>| v.map_or("-".into(), human);
            let _ = writeln!(
                text,
                "{shown:<36} {p:<14} {:>10} {:>10} {change:>9}",
                show(va),
                show(vb)
            );
        }
        for (label, va, vb, limit) in [
            (
                "sensitivity",
                ma.sensitivity,
                mb.sensitivity,
                gate.sensitivity,
            ),
            ("ppv", ma.ppv, mb.ppv, gate.ppv),
        ] {
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.3}", v));
            let change = match (va, vb) {
                (Some(x), Some(y)) => {
                    if let Some(limit) = limit
                        && x - y > limit + 1e-12
                    {
                        regressions.push(format!(
                            "{name}: {label} {x:.3} → {y:.3} (drop {:.3}, limit {limit})",
                            x - y
                        ));
                    }
                    format!("{:+.3}", y - x)
                }
                _ => "-".into(),
            };
            let _ = writeln!(
                text,
                "{shown:<36} {label:<14} {:>10} {:>10} {change:>9}",
                show(va),
                show(vb)
            );
        }
        let (fa, fb) = (ma.false_alerts, mb.false_alerts);
        if let Some(limit) = gate.false_alerts
            && fb > fa + limit
        {
            regressions.push(format!("{name}: false alerts {fa} → {fb} (limit +{limit})"));
        }
        let _ = writeln!(
            text,
            "{shown:<36} {:<14} {fa:>10} {fb:>10} {:>+9}",
            "false alerts",
            fb as i64 - fa as i64
        );
    }
    (text, regressions)
}
