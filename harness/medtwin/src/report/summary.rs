//! The terminal summary of a run: header, accounting, one line per
//! expectation with its outcomes, metrics per kind, the verdict.

use std::fmt::Write as _;

use medtwin_check::duration::{clock_text, format, human};

use super::{Metrics, Report, Verdict, truncate};

impl Report {
    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        self.summary_header(&mut s);
        self.summary_expectations(&mut s);
        self.summary_metrics(&mut s);
        let _ = writeln!(s);
        let _ = write!(s, "verdict: {}", self.verdict.text().to_uppercase());
        if self.verdict == Verdict::Fail {
            let _ = write!(s, "\nrepro: {}", self.repro);
        }
        s
    }

    /// Run, timing, accounting, target and alert lines.
    fn summary_header(&self, s: &mut String) {
        let speed = match self.clock.speed {
            Some(x) => format!("{} x{x}", self.clock.mode),
            None => self.clock.mode.to_owned(),
        };
        let _ = writeln!(
            s,
            "medtwin {} · {} · seed {} · {} · {} patients, {} devices",
            self.version,
            self.scenario.name,
            self.seed,
            speed,
            self.population.patients,
            self.population.devices
        );
        let wall_s = self.timing.wall_ms as f64 / 1000.0;
        match &self.interrupted {
            Some(i) => {
                let _ = writeln!(
                    s,
                    "INTERRUPTED ({}) at simulated {} of {}, after {wall_s:.1} s wall: what follows is everything counted until then",
                    i.reason,
                    format(i.at_sim_ms),
                    format(self.timing.sim_duration_ms)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "simulated {} in {wall_s:.1} s wall · twin {:.0} patient-steps/s",
                    format(self.timing.sim_duration_ms),
                    self.timing.twin_patient_steps_per_s
                );
            }
        }
        let a = &self.accounting.total;
        let _ = writeln!(
            s,
            "telemetry: {} generated · {} delivered · {} lost · {} buffered or in flight at end",
            a.generated, a.delivered, a.lost, a.buffered
        );
        let t = &self.transport.stats;
        let _ = write!(
            s,
            "target {}: {} sent · {} accepted · {} refused · {} failed · {} not sent",
            self.target.url, t.sent, t.accepted, t.refused, t.failed, t.not_sent
        );
        if !t.by_cause.is_empty() {
            let causes: Vec<String> = t.by_cause.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = write!(s, " ({})", causes.join(", "));
        }
        if t.breaker_opened > 0 {
            let _ = write!(
                s,
                " · circuit breaker opened {}× ({} probes)",
                t.breaker_opened, t.breaker_probes
            );
        }
        if let Some(lag) = &self.transport.send_lag_ms {
            let _ = write!(s, " · send lag p99 {:.1} ms", lag.p99);
        }
        let _ = writeln!(s);
        if let Some(w) = &t.waveforms {
            let _ = write!(
                s,
                "waveform chunks: {} sent · {} accepted · {} refused · {} failed · {} not sent",
                w.sent, w.accepted, w.refused, w.failed, w.not_sent
            );
            if !w.by_cause.is_empty() {
                let causes: Vec<String> =
                    w.by_cause.iter().map(|(c, n)| format!("{c} {n}")).collect();
                let _ = write!(s, " ({})", causes.join(", "));
            }
            let _ = writeln!(s);
        }
        let sec = &self.target.security;
        if sec.tls != "none" {
            let _ = writeln!(s, "security: TLS {} · auth {}", sec.tls, sec.auth);
        }
        if sec.insecure_skip_verify {
            let _ = writeln!(
                s,
                "WARNING: the target's certificate was NOT verified (--insecure-skip-verify): anyone on the path could have answered"
            );
        }
        for cause in t.by_cause.keys() {
            if let Some(tls) = medtwin_tls::HandshakeCause::from_name(cause) {
                let _ = writeln!(s, "hint: {cause}: {}", tls.hint());
            }
            if let Some(auth) = crate::transport::AuthCause::from_name(cause) {
                let prefix = format!("{cause}: ");
                let reason = t.by_reason.keys().find_map(|k| k.strip_prefix(&prefix));
                let _ = writeln!(s, "hint: {cause}: {}", auth.hint(reason));
            }
        }
        let kinds: Vec<String> = self
            .alerts
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "alerts: {} received ({}) · {} refused",
            self.alerts.received,
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            },
            self.alerts.refused.total()
        );
        self.summary_trust(s);
    }

    /// What the target accepted, and whether the harness kept its schedule.
    fn summary_trust(&self, s: &mut String) {
        let t = &self.transport;
        if let Some(share) = t.accepted_share {
            let _ = writeln!(
                s,
                "accepted by the target: {} of {} deliveries ({:.2} %; rule oracles see only these; at least {:.0} % needed)",
                t.deliveries_accepted,
                t.deliveries_accepted + t.deliveries_not_accepted,
                share * 100.0,
                t.min_accepted_share * 100.0
            );
        }
        let h = &self.harness;
        if let (Some(lag), Some(bound)) = (&h.send_lag_sim_ms, h.lag_bound_sim_ms) {
            let _ = writeln!(
                s,
                "harness ({} build): send lag p99 {} simulated (bound {}) · {:.2} cores",
                h.build,
                human(lag.p99 as u64),
                human(bound as u64),
                h.cpu_cores_used
            );
        }
        for note in &h.notes {
            let _ = writeln!(s, "UNRELIABLE: {note}");
        }
    }

    /// One line per expectation, with its outcomes and failures.
    fn summary_expectations(&self, s: &mut String) {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<36} {:<7} {:>4} {:>4} {:>6} {:>5} {:>4} {:>9} {:>9} {:>9}",
            "expectation", "verdict", "hits", "late", "missed", "false", "dup", "p50", "p95", "max"
        );
        for e in &self.expectations {
            let lat = |v: Option<u64>| v.map_or("-".to_owned(), human);
            let m = &e.metrics;
            let _ = writeln!(
                s,
                "{:<36} {:<7} {:>4} {:>4} {:>6} {:>5} {:>4} {:>9} {:>9} {:>9}",
                truncate(&e.name, 36),
                e.verdict.text(),
                m.hits,
                m.late,
                m.missed,
                m.false_alerts,
                m.duplicates,
                lat(m.latency_ms.p50),
                lat(m.latency_ms.p95),
                lat(m.latency_ms.max)
            );
            for o in e.outcomes.iter().take(MAX_SUMMARY_OUTCOMES) {
                let at = |v: Option<u64>| v.map_or("-".to_owned(), clock_text);
                let latency = o
                    .latency_ms
                    .map(|l| format!("  latency {}", human(l)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "    {:<12} {:<12} from {:>8}  alert {:>8}{latency}",
                    o.outcome.name(),
                    o.patient,
                    at(o.from_ms),
                    at(o.alert_ms),
                );
            }
            if e.outcomes.len() > MAX_SUMMARY_OUTCOMES {
                let _ = writeln!(
                    s,
                    "    ... {} more in report.json",
                    e.outcomes.len() - MAX_SUMMARY_OUTCOMES
                );
            }
            for failure in &e.failures {
                let _ = writeln!(s, "    FAIL: {failure}");
            }
        }
    }

    /// Sensitivity, PPV, false alerts and PhysioNet per kind and overall.
    fn summary_metrics(&self, s: &mut String) {
        let rate = |x: Option<f64>, pct: bool| match x {
            Some(v) if pct => format!("{:.1}%", v * 100.0),
            Some(v) => format!("{v:.3}"),
            None => "-".to_owned(),
        };
        let mut rows: Vec<(&str, &Metrics)> = self
            .metrics
            .by_kind
            .iter()
            .map(|(k, m)| (k.as_str(), m))
            .collect();
        rows.push(("overall", &self.metrics.overall));
        for (kind, m) in rows {
            let _ = writeln!(
                s,
                "{kind}: sensitivity {} · PPV {} · false/patient-day {} · PhysioNet {}",
                rate(m.sensitivity, true),
                rate(m.ppv, true),
                rate(m.false_alerts_per_patient_day, false),
                rate(m.physionet_score, false)
            );
        }
    }
}

/// Outcome lines per expectation in the terminal summary.
const MAX_SUMMARY_OUTCOMES: usize = 12;
