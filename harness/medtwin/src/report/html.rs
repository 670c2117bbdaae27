//! `index.html`: the report for people. One self-contained file (inline
//! CSS, inline SVG drawn by [`super::charts`], a few lines of inline JS;
//! nothing fetched), written with maud templates, which escape every text:
//! verdict first, then the expectations, metrics per alert kind, latency
//! histogram and CDF per kind, the latency decomposition, a timeline of the
//! patient's vitals for each failing outcome, and device and network
//! accounting.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use medtwin_check::duration::{clock_text, human};

use super::charts::{self, Latencies, Stages};
use super::{
    Decomposition, ExpectationResult, Metrics, Outcome, OutcomeKind, Report, Timeline, Verdict,
};

const CSS: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:20px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d7dbe2;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.verdict{padding:14px 18px;border-radius:6px;color:#fff;font-size:22px;font-weight:700}
.unreliable{color:#b3261e}
.pass{background:#1b7f3b}.fail{background:#b3261e}
.sub{color:#4a5365;margin:4px 0}
code,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #d7dbe2;padding:3px 7px;text-align:right}th{background:#eef1f5}
td.l,th.l{text-align:left}
tr.failrow td{background:#fdecea}
.badge{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.b-pass,.b-hit{background:#1b7f3b}.b-fail,.b-missed,.b-late,.b-false{background:#b3261e}
.b-duplicate,.b-inconclusive{background:#8a6d00}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart-box{margin:0 0 8px}
svg.chart{background:#fff;border:1px solid #d7dbe2;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#334}
svg .tick text{font-size:10px;fill:#4a5365}
svg .axis-line,svg .tick line{stroke:#889}
svg .tick line.grid{stroke:#eef0f3}
svg text.axis-title{fill:#4a5365}
svg .deadline line{stroke:#b3261e;stroke-width:1.5}
svg .deadline text{fill:#b3261e;font-weight:600}
svg text.marker-label{font-size:10px;font-weight:600}
svg circle.pt,svg .pts circle{fill-opacity:0}
svg circle.pt.show,svg circle.pt:hover,svg .pts.show circle,svg .pts circle:hover{fill-opacity:1}
svg rect.delivery{fill:#99a}svg rect.loss{fill:#b3261e}
svg rect.bar{fill:#3b6fb6}svg rect.bar:hover{fill:#274f87}
svg rect.stage:hover,svg rect.delivery:hover,svg rect.loss:hover{opacity:.7}
details.data summary{color:#4a5365;font-size:12.5px;cursor:pointer}
table.data{font-size:12px}
.failures li{color:#b3261e}
details{margin:4px 0}
"#;

const JS: &str = r#"
(function(){
  var boxes=document.querySelectorAll('input[data-filter]');
  boxes.forEach(function(box){
    box.addEventListener('change',function(){
      var t=document.getElementById(box.getAttribute('data-filter'));
      if(!t){return;}
      t.querySelectorAll('tr[data-outcome]').forEach(function(row){
        var failing=row.getAttribute('data-failing')==='1';
        row.style.display=(box.checked&&!failing)?'none':'';
      });
    });
  });
  document.body.setAttribute('data-ready','1');
})();
"#;

/// Renders the report.
pub fn render(r: &Report) -> String {
    let verdict = r.verdict.text();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { "medtwin " (verdict) ": " (r.scenario.name) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    (heading(r))
                    (expectations(r))
                    (metrics(r))
                    (latency_charts(r))
                    (decomposition(r))
                    (timelines(r))
                    (accounting(r))
                    p class="sub" { "Schema " (r.schema) " · all patients are simulated." }
                }
                script { (PreEscaped(JS)) }
            }
        }
    };
    page.into_string() + "\n"
}

/// The verdict and what was run.
fn heading(r: &Report) -> Markup {
    let verdict = r.verdict.text();
    let failing = r
        .expectations
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .count();
    let class = if r.verdict == Verdict::Pass {
        "pass"
    } else {
        "fail"
    };
    let t = &r.transport;
    html! {
        div class={ "verdict " (class) } id="verdict" {
            (verdict.to_uppercase()) " — " (r.scenario.name)
        }
        @if let Some(share) = t.accepted_share {
            p class="sub" id="uptake" {
                "The target accepted " (t.deliveries_accepted) " of "
                (t.deliveries_accepted + t.deliveries_not_accepted) " deliveries ("
                (format!("{:.2} %", share * 100.0)) "; at least "
                (format!("{:.0} %", t.min_accepted_share * 100.0))
                " needed). Rule oracles see only what it accepted."
            }
        }
        @for note in &r.harness.notes {
            p class="sub unreliable" id="unreliable" { strong { "Unreliable run: " } (note) }
        }
        p class="sub" {
            (failing) " of " (r.expectations.len()) " expectations failed · seed " (r.seed)
            " · medtwin " (r.version) " · run " code { (r.run_id) } " · " (r.clock.mode) " · " (r.target.transport) " · synthetic data"
        }
        @if let Some(d) = &r.scenario.description {
            p class="sub" { (d) }
        }
        p class="sub" { "repro: " code { (r.repro) } }
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn num(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

fn lat(x: Option<u64>) -> String {
    x.map_or("-".into(), human)
}

fn at(x: Option<u64>) -> String {
    x.map_or("-".into(), clock_text)
}

/// The header cells of [`metric_cells`].
fn metric_head() -> Markup {
    html! {
        @for h in ["owed", "hits", "late", "missed", "inconcl.", "false", "dup", "sens.", "PPV",
                   "false/pt-day", "PhysioNet", "p50", "p95", "p99", "max"] {
            th { (h) }
        }
    }
}

/// Counts, rates and latency percentiles as table cells.
fn metric_cells(m: &Metrics) -> Markup {
    let l = &m.latency_ms;
    html! {
        @for n in [m.obligations, m.hits, m.late, m.missed, m.inconclusive, m.false_alerts, m.duplicates] {
            td { (n) }
        }
        td { (pct(m.sensitivity)) } td { (pct(m.ppv)) }
        td { (num(m.false_alerts_per_patient_day)) } td { (num(m.physionet_score)) }
        @for p in [l.p50, l.p95, l.p99, l.max] { td { (lat(p)) } }
    }
}

/// The expectations table, why each failing one failed, and every
/// expectation's outcomes.
fn expectations(r: &Report) -> Markup {
    html! {
        h2 { "Expectations" }
        table id="expectations" {
            tr {
                th class="l" { "expectation" } th class="l" { "verdict" } th class="l" { "alert" }
                th class="l" { "from" } th { "within" } (metric_head())
            }
            @for e in &r.expectations { (expectation_row(e)) }
        }
        @for e in r.expectations.iter().filter(|e| !e.failures.is_empty()) {
            h3 { (e.name) }
            ul class="failures" { @for f in &e.failures { li { (f) } } }
        }
        @for (i, e) in r.expectations.iter().enumerate() { (outcomes_table(i, e)) }
    }
}

fn expectation_row(e: &ExpectationResult) -> Markup {
    let v = e.verdict.text();
    html! {
        tr class=[(e.verdict == Verdict::Fail).then_some("failrow")] {
            td class="l" { (e.name) }
            td class="l" { span class={ "badge b-" (v) } { (v) } }
            td class="l" { (e.alert) }
            td class="l" {
                @match (&e.condition, &e.from, &e.rule) {
                    (Some(c), Some(f), _) => { (c) " " (f) }
                    (_, _, Some(rule)) => { "rule " code { (rule) } }
                    _ => { "-" }
                }
            }
            td { (human(e.within_ms)) }
            (metric_cells(&e.metrics))
        }
    }
}

/// Most outcome rows shown per expectation (the rest are in report.json).
const MAX_ROWS: usize = 500;

fn outcomes_table(i: usize, e: &ExpectationResult) -> Markup {
    let id = format!("outcomes-{i}");
    html! {
        details open[e.verdict == Verdict::Fail] {
            summary { "Outcomes of “" (e.name) "” (" (e.outcomes.len()) ")" }
            label { input type="checkbox" data-filter=(id); " failing only" }
            table id=(id) {
                tr {
                    th class="l" { "outcome" } th class="l" { "patient" } th { "from" } th { "reference" }
                    th { "alert" } th { "latency" } th { "device" } th { "network" } th { "harness" } th { "backend" }
                    th class="l" { "note" }
                }
                @for o in e.outcomes.iter().take(MAX_ROWS) { (outcome_row(o)) }
            }
            @if e.outcomes.len() > MAX_ROWS {
                p class="sub" { (e.outcomes.len() - MAX_ROWS) " more in report.json" }
            }
        }
    }
}

fn outcome_row(o: &Outcome) -> Markup {
    let name = o.outcome.name();
    let d = o.decomposition.clone().unwrap_or_default();
    html! {
        tr data-outcome=(name) data-failing=(u8::from(o.outcome.is_failure())) {
            td class="l" { span class={ "badge b-" (name) } { (name) } }
            td class="l" { (o.patient) }
            @for t in [o.from_ms, o.reference_ms, o.alert_ms] { td { (at(t)) } }
            @for l in [o.latency_ms, d.device_ms, d.network_ms, d.harness_ms, d.backend_ms] { td { (lat(l)) } }
            td class="l" { (o.note.as_deref().unwrap_or("")) }
        }
    }
}

fn metrics(r: &Report) -> Markup {
    html! {
        h2 { "Metrics per alert kind" }
        table id="metrics" {
            tr { th class="l" { "kind" } (metric_head()) }
            @for (kind, m) in &r.metrics.by_kind {
                tr { td class="l" { (kind) } (metric_cells(m)) }
            }
            tr { th class="l" { "overall" } (metric_cells(&r.metrics.overall)) }
        }
        p class="sub" {
            "Sensitivity = hits / (hits + late + missed); PPV = answered / (answered + false); "
            "PhysioNet 2015 score = (TP+TN)/(TP+TN+FP+5·FN) with TP = hits, FN = missed + late, "
            "FP = false alerts, TN = patients with nothing owed and no false alert."
        }
    }
}

/// Latencies of hits and late alerts per alert kind, with the tightest
/// deadline of the expectations requiring the kind.
fn latencies_by_kind(r: &Report) -> Vec<Latencies<'_>> {
    let mut by: BTreeMap<&str, Latencies> = BTreeMap::new();
    for e in &r.expectations {
        let l = by.entry(&e.alert).or_insert_with(|| Latencies {
            kind: &e.alert,
            ..Default::default()
        });
        l.deadline_ms = Some(l.deadline_ms.map_or(e.within_ms, |d| d.min(e.within_ms)));
        l.values.extend(
            e.outcomes
                .iter()
                .filter_map(|o| o.latency_ms.map(|ms| (ms, o.patient.as_str()))),
        );
    }
    by.into_values()
        .map(|mut l| {
            l.values.sort_unstable();
            l
        })
        .collect()
}

fn latency_charts(r: &Report) -> Markup {
    let kinds = latencies_by_kind(r);
    html! {
        h2 { "Alert latency per kind" }
        @if kinds.iter().all(|l| l.values.is_empty()) {
            p class="sub" { "No alert answered an obligation: no latencies to chart." }
        }
        @for l in kinds.iter().filter(|l| !l.values.is_empty()) {
            h3 { (l.kind) }
            p class="sub" {
                (l.values.len()) " latencies, reference to alert; dashed: the deadline ("
                "the tightest “within” of the expectations requiring " (l.kind) "). Hover for values."
            }
            div class="charts" { (charts::histogram(l)) (charts::cdf(l)) }
        }
    }
}

/// The mean of one stage over an expectation's decomposed outcomes, and
/// how many it is of.
fn mean_of(e: &ExpectationResult, f: fn(&Decomposition) -> Option<u64>) -> Option<(f64, usize)> {
    let v: Vec<u64> = e
        .outcomes
        .iter()
        .filter_map(|o| o.decomposition.as_ref().and_then(f))
        .collect();
    (!v.is_empty()).then(|| (v.iter().sum::<u64>() as f64 / v.len() as f64, v.len()))
}

fn decomposition(r: &Report) -> Markup {
    let rows: Vec<Stages> = r
        .expectations
        .iter()
        .map(|e| Stages {
            name: &e.name,
            means: [
                mean_of(e, |d| d.device_ms),
                mean_of(e, |d| d.network_ms),
                mean_of(e, |d| d.harness_ms),
                mean_of(e, |d| d.backend_ms),
            ],
        })
        .collect();
    html! {
        h2 { "Where the time went" }
        p class="sub" {
            "Mean over hits and late alerts: device (criterion or onset → first abnormal measurement), "
            "network (that measurement → its delivery), harness (the first abnormal delivery's time → "
            "when medtwin actually sent it: its own lag), backend (that send → alert)."
        }
        (charts::decomposition(&rows))
    }
}

fn timelines(r: &Report) -> Markup {
    html! {
        h2 { "Failing outcomes" }
        @if r.timelines.is_empty() {
            p class="sub" { "None: nothing was missed, late or false." }
        }
        @for t in &r.timelines { (timeline(t, r.timing.sim_duration_ms)) }
    }
}

fn timeline(t: &Timeline, duration_ms: u64) -> Markup {
    let name = t.outcome.name();
    html! {
        h3 { span class={ "badge b-" (name) } { (name) } " " (t.expectation) " · " (t.patient) }
        (charts::timeline(t, duration_ms))
        p class="sub" {
            "onset " (at(t.times.onset_ms)) " · criterion " (at(t.times.criterion_ms))
            " · first abnormal measurement " (at(t.times.measured_ms))
            " (delivered " (at(t.times.measured_delivered_ms)) ")"
            " · first abnormal delivery " (at(t.times.delivered_ms))
            " · deadline " (at(t.deadline_ms)) " · alert " (at(t.alert_ms)) ". "
            "▲ alerts of the patient (orange line: the alert judged); grey ticks deliveries, red ticks losses. "
            "Hover a point for its value."
        }
        @if t.outcome == OutcomeKind::False {
            p class="sub" { "No obligation for this patient when the alert came." }
        }
    }
}

/// `name n, name n` of a map of counts.
fn counts(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn accounting(r: &Report) -> Markup {
    let a = &r.accounting;
    html! {
        h2 { "Devices and network" }
        table id="accounting" {
            tr {
                th class="l" { "device kind" } th { "devices" } th { "generated" } th { "delivered" }
                th { "lost" } th { "buffered or in flight at end" } th class="l" { "losses by cause" }
                th { "duplicates" } th class="l" { "alarms" } th class="l" { "events" } th class="l" { "artifacts" }
            }
            @for (kind, d) in &a.by_device_kind {
                @let c = &d.counts;
                tr {
                    td class="l" { (kind) }
                    td { (r.population.devices_by_kind.get(kind).copied().unwrap_or(0)) }
                    @for n in [c.generated, c.delivered, c.lost, c.buffered] { td { (n) } }
                    td class="l" { (counts(&d.lost_by_cause)) }
                    td { (d.duplicates) }
                    @for m in [&d.alarms, &d.events, &d.artifacts] { td class="l" { (counts(m)) } }
                }
            }
            tr {
                th class="l" { "all" } th { (r.population.devices) }
                @for n in [a.total.generated, a.total.delivered, a.total.lost, a.total.buffered] { th { (n) } }
                th {} th { (a.duplicates) } th {} th {} th {}
            }
        }
        (accounting_note(r))
    }
}

/// Losses by cause, what the target answered, and what the webhook got.
fn accounting_note(r: &Report) -> Markup {
    let t = &r.transport.stats;
    let causes = counts(&r.accounting.lost_by_cause);
    html! {
        p class="sub" {
            "Lost by cause: " @if causes.is_empty() { "none" } @else { (causes) }
            " · target " code { (r.target.url) } ": " (t.sent) " sent, " (t.accepted) " accepted, "
            (t.refused) " refused, " (t.failed) " failed, " (t.not_sent) " not sent"
            @if !t.by_cause.is_empty() { " (" (counts(&t.by_cause)) ")" }
            ", " (t.retries) " retries, circuit breaker opened " (t.breaker_opened) "× · alerts: " (r.alerts.received) " received, "
            (r.alerts.unknown_patients) " about unknown patients, " (r.alerts.refused.total()) " refused."
        }
    }
}
