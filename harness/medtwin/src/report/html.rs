//! `index.html`: the report for people. One self-contained file (inline
//! CSS, inline SVG drawn here, a few lines of inline JS; nothing fetched):
//! verdict first, then the expectations, metrics per alert kind, latency
//! histogram and CDF per kind, the latency decomposition, a timeline of the
//! patient's vitals for each failing outcome, and device and network
//! accounting.

use std::fmt::Write as _;

use medtwin_check::duration::{clock_text, human};

use super::{ExpectationResult, Metrics, OutcomeKind, Report, Timeline, Verdict, truncate};

/// Escapes text for HTML and XML attributes and content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:20px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d7dbe2;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.verdict{padding:14px 18px;border-radius:6px;color:#fff;font-size:22px;font-weight:700}
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
svg.chart{background:#fff;border:1px solid #d7dbe2}
svg text{font:11px system-ui,sans-serif;fill:#334}
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
    let mut h = String::with_capacity(64 * 1024);
    let verdict = r.verdict.text();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>medtwin {verdict}: {}</title><style>{CSS}</style></head><body><main>",
        escape(&r.scenario.name)
    );
    let _ = write!(
        h,
        "<div class=\"verdict {verdict}\" id=\"verdict\">{} — {}</div>",
        verdict.to_uppercase(),
        escape(&r.scenario.name)
    );
    let failing = r
        .expectations
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .count();
    let _ = write!(
        h,
        "<p class=\"sub\">{} of {} expectations failed · seed {} · medtwin {} · run <code>{}</code> · {} · synthetic data</p>",
        failing,
        r.expectations.len(),
        r.seed,
        escape(&r.version),
        escape(&r.run_id),
        escape(&r.clock.mode),
    );
    if let Some(d) = &r.scenario.description {
        let _ = write!(h, "<p class=\"sub\">{}</p>", escape(d));
    }
    let _ = write!(
        h,
        "<p class=\"sub\">repro: <code>{}</code></p>",
        escape(&r.repro)
    );
    expectations(&mut h, r);
    metrics(&mut h, r);
    latency_charts(&mut h, r);
    decomposition(&mut h, r);
    timelines(&mut h, r);
    accounting(&mut h, r);
    let _ = writeln!(
        h,
        "<p class=\"sub\">Schema {} · all patients are simulated.</p></main><script>{JS}</script></body></html>",
        escape(&r.schema)
    );
    h
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

fn metric_cells(h: &mut String, m: &Metrics) {
    let _ = write!(
        h,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        m.obligations,
        m.hits,
        m.late,
        m.missed,
        m.inconclusive,
        m.false_alerts,
        m.duplicates,
        pct(m.sensitivity),
        pct(m.ppv),
        num(m.false_alerts_per_patient_day),
        num(m.physionet_score),
        lat(m.latency_ms.p50),
        lat(m.latency_ms.p95),
        lat(m.latency_ms.p99),
        lat(m.latency_ms.max),
    );
}

const METRIC_HEAD: &str = "<th>owed</th><th>hits</th><th>late</th><th>missed</th><th>inconcl.</th>\
<th>false</th><th>dup</th><th>sens.</th><th>PPV</th><th>false/pt-day</th><th>PhysioNet</th>\
<th>p50</th><th>p95</th><th>p99</th><th>max</th>";

fn expectations(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Expectations</h2><table id=\"expectations\"><tr><th class=\"l\">expectation</th>\
         <th class=\"l\">verdict</th><th class=\"l\">alert</th><th class=\"l\">from</th><th>within</th>{METRIC_HEAD}</tr>"
    );
    for e in &r.expectations {
        let v = e.verdict.text();
        let from = match (&e.condition, &e.from, &e.rule) {
            (Some(c), Some(f), _) => format!("{c} {f}"),
            (_, _, Some(rule)) => format!("rule <code>{}</code>", escape(rule)),
            _ => "-".into(),
        };
        let _ = write!(
            h,
            "<tr class=\"{}\"><td class=\"l\">{}</td><td class=\"l\"><span class=\"badge b-{v}\">{v}</span></td>\
             <td class=\"l\">{}</td><td class=\"l\">{from}</td><td>{}</td>",
            if e.verdict == Verdict::Fail {
                "failrow"
            } else {
                ""
            },
            escape(&e.name),
            escape(&e.alert),
            human(e.within_ms),
        );
        metric_cells(h, &e.metrics);
        let _ = write!(h, "</tr>");
    }
    let _ = write!(h, "</table>");
    for e in r.expectations.iter().filter(|e| !e.failures.is_empty()) {
        let _ = write!(h, "<h3>{}</h3><ul class=\"failures\">", escape(&e.name));
        for f in &e.failures {
            let _ = write!(h, "<li>{}</li>", escape(f));
        }
        let _ = write!(h, "</ul>");
    }
    for (i, e) in r.expectations.iter().enumerate() {
        outcomes_table(h, i, e);
    }
}

fn outcomes_table(h: &mut String, i: usize, e: &ExpectationResult) {
    const MAX_ROWS: usize = 500;
    let _ = write!(
        h,
        "<details{}><summary>Outcomes of “{}” ({})</summary>\
         <label><input type=\"checkbox\" data-filter=\"outcomes-{i}\"> failing only</label>\
         <table id=\"outcomes-{i}\"><tr><th class=\"l\">outcome</th><th class=\"l\">patient</th><th>from</th>\
         <th>reference</th><th>alert</th><th>latency</th><th>device</th><th>network</th><th>backend</th><th class=\"l\">note</th></tr>",
        if e.verdict == Verdict::Fail {
            " open"
        } else {
            ""
        },
        escape(&e.name),
        e.outcomes.len()
    );
    for o in e.outcomes.iter().take(MAX_ROWS) {
        let d = o.decomposition.clone().unwrap_or_default();
        let _ = write!(
            h,
            "<tr data-outcome=\"{0}\" data-failing=\"{1}\"><td class=\"l\"><span class=\"badge b-{0}\">{0}</span></td>\
             <td class=\"l\">{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td><td>{8}</td><td>{9}</td><td class=\"l\">{10}</td></tr>",
            o.outcome.name(),
            u8::from(o.outcome.is_failure()),
            escape(&o.patient),
            at(o.from_ms),
            at(o.reference_ms),
            at(o.alert_ms),
            lat(o.latency_ms),
            lat(d.device_ms),
            lat(d.network_ms),
            lat(d.backend_ms),
            escape(o.note.as_deref().unwrap_or("")),
        );
    }
    let _ = write!(h, "</table>");
    if e.outcomes.len() > MAX_ROWS {
        let _ = write!(
            h,
            "<p class=\"sub\">{} more in report.json</p>",
            e.outcomes.len() - MAX_ROWS
        );
    }
    let _ = write!(h, "</details>");
}

fn metrics(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Metrics per alert kind</h2><table id=\"metrics\"><tr><th class=\"l\">kind</th>{METRIC_HEAD}</tr>"
    );
    for (kind, m) in &r.metrics.by_kind {
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", escape(kind));
        metric_cells(h, m);
        let _ = write!(h, "</tr>");
    }
    let _ = write!(h, "<tr><th class=\"l\">overall</th>");
    metric_cells(h, &r.metrics.overall);
    let _ = write!(
        h,
        "</tr></table><p class=\"sub\">Sensitivity = hits / (hits + late + missed); PPV = answered / (answered + false); \
         PhysioNet 2015 score = (TP+TN)/(TP+TN+FP+5·FN) with TP = hits, FN = missed + late, FP = false alerts, \
         TN = patients with nothing owed and no false alert.</p>"
    );
}

/// Latencies of hits and late alerts per alert kind.
fn latencies_by_kind(r: &Report) -> Vec<(String, Vec<u64>)> {
    let mut by: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for e in &r.expectations {
        let v = by.entry(e.alert.clone()).or_default();
        v.extend(e.outcomes.iter().filter_map(|o| o.latency_ms));
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            (k, v)
        })
        .collect()
}

const W: f64 = 360.0;
const H: f64 = 180.0;
const PAD: f64 = 34.0;

fn axis(h: &mut String, x_label: &str, y_label: &str) {
    let _ = write!(
        h,
        "<line x1=\"{PAD}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#889\"/>\
         <line x1=\"{PAD}\" y1=\"10\" x2=\"{PAD}\" y2=\"{0}\" stroke=\"#889\"/>\
         <text x=\"{2}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\
         <text x=\"4\" y=\"12\">{5}</text>",
        H - PAD,
        W - 8.0,
        (W + PAD) / 2.0,
        H - 6.0,
        escape(x_label),
        escape(y_label)
    );
}

fn latency_charts(h: &mut String, r: &Report) {
    let _ = write!(h, "<h2>Alert latency per kind</h2>");
    let kinds = latencies_by_kind(r);
    if kinds.iter().all(|(_, v)| v.is_empty()) {
        let _ = write!(
            h,
            "<p class=\"sub\">No alert answered an obligation: no latencies to chart.</p>"
        );
        return;
    }
    for (kind, values) in kinds.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(h, "<h3>{}</h3><div class=\"charts\">", escape(kind));
        let max = values.last().copied().unwrap_or(0).max(1) as f64;
        // Histogram: 20 bins from 0 to the largest latency.
        const BINS: usize = 20;
        let mut counts = [0u64; BINS];
        for &v in values {
            let b = ((v as f64 / max) * BINS as f64) as usize;
            counts[b.min(BINS - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let plot_w = W - PAD - 10.0;
        let plot_h = H - PAD - 12.0;
        let _ = write!(
            h,
            "<svg class=\"chart histogram\" data-kind=\"{}\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\"><title>latency histogram</title>",
            escape(kind)
        );
        axis(h, &format!("latency (0 – {})", human(max as u64)), "alerts");
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let bw = plot_w / BINS as f64;
            let bh = plot_h * c as f64 / top;
            let _ = write!(
                h,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3b6fb6\"><title>{c}</title></rect>",
                PAD + i as f64 * bw + 1.0,
                H - PAD - bh,
                bw - 2.0,
                bh
            );
        }
        let _ = write!(h, "</svg>");
        // CDF: a step line through every latency.
        let _ = write!(
            h,
            "<svg class=\"chart cdf\" data-kind=\"{}\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\"><title>latency CDF</title>",
            escape(kind)
        );
        axis(
            h,
            &format!("latency (0 – {})", human(max as u64)),
            "fraction",
        );
        let n = values.len() as f64;
        let mut points = format!("{PAD},{:.1}", H - PAD);
        for (i, &v) in values.iter().enumerate() {
            let x = PAD + plot_w * v as f64 / max;
            let y0 = H - PAD - plot_h * i as f64 / n;
            let y1 = H - PAD - plot_h * (i + 1) as f64 / n;
            let _ = write!(points, " {x:.1},{y0:.1} {x:.1},{y1:.1}");
        }
        let _ = write!(
            h,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"#b3261e\" stroke-width=\"2\"/></svg></div>"
        );
    }
}

fn decomposition(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Where the time went</h2><p class=\"sub\">Mean over hits and late alerts: device (criterion or onset → first abnormal measurement), \
         network (that measurement → its delivery), backend (first abnormal delivery → alert).</p>"
    );
    let rows: Vec<(&str, [Option<f64>; 3])> = r
        .expectations
        .iter()
        .map(|e| {
            let mean = |f: fn(&super::Decomposition) -> Option<u64>| {
                let v: Vec<u64> = e
                    .outcomes
                    .iter()
                    .filter_map(|o| o.decomposition.as_ref().and_then(f))
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64)
            };
            (
                e.name.as_str(),
                [
                    mean(|d| d.device_ms),
                    mean(|d| d.network_ms),
                    mean(|d| d.backend_ms),
                ],
            )
        })
        .collect();
    let total = |p: &[Option<f64>; 3]| p.iter().flatten().sum::<f64>();
    let longest = rows.iter().map(|(_, p)| total(p)).fold(1.0f64, f64::max);
    let row_h = 26.0;
    let height = 30.0 + row_h * rows.len() as f64;
    let width = 760.0;
    let _ = write!(
        h,
        "<svg class=\"chart decomposition\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\"><title>latency decomposition</title>\
         <rect x=\"220\" y=\"4\" width=\"10\" height=\"10\" fill=\"#7a5cc2\"/><text x=\"234\" y=\"13\">device</text>\
         <rect x=\"300\" y=\"4\" width=\"10\" height=\"10\" fill=\"#d08a1e\"/><text x=\"314\" y=\"13\">network</text>\
         <rect x=\"390\" y=\"4\" width=\"10\" height=\"10\" fill=\"#3b6fb6\"/><text x=\"404\" y=\"13\">backend</text>"
    );
    let colors = ["#7a5cc2", "#d08a1e", "#3b6fb6"];
    for (i, (name, parts)) in rows.iter().enumerate() {
        let y = 24.0 + row_h * i as f64;
        let _ = write!(
            h,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + 14.0,
            escape(&truncate(name, 34))
        );
        let mut x = 220.0;
        for (part, color) in parts.iter().zip(colors) {
            let Some(ms) = part else { continue };
            let w = (width - 300.0) * ms / longest;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"{color}\"><title>{}</title></rect>",
                human(*ms as u64)
            );
            x += w;
        }
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 4.0,
            y + 14.0,
            if total(parts) > 0.0 {
                human(total(parts) as u64)
            } else {
                "no data".into()
            }
        );
    }
    let _ = write!(h, "</svg>");
}

/// Vitals drawn on a timeline, with their colour and a fixed range.
const STRIPS: [(&str, &str, f64, f64); 5] = [
    ("hr", "#b3261e", 30.0, 180.0),
    ("spo2", "#3b6fb6", 75.0, 100.0),
    ("rr", "#1b7f3b", 0.0, 45.0),
    ("sbp", "#7a5cc2", 60.0, 200.0),
    ("temp", "#d08a1e", 34.0, 42.0),
];

fn timelines(h: &mut String, r: &Report) {
    let _ = write!(h, "<h2>Failing outcomes</h2>");
    if r.timelines.is_empty() {
        let _ = write!(
            h,
            "<p class=\"sub\">None: nothing was missed, late or false.</p>"
        );
        return;
    }
    for t in &r.timelines {
        timeline(h, t, r.timing.sim_duration_ms);
    }
}

fn timeline(h: &mut String, t: &Timeline, duration_ms: u64) {
    let _ = write!(
        h,
        "<h3><span class=\"badge b-{0}\">{0}</span> {1} · {2}</h3>",
        t.outcome.name(),
        escape(&t.expectation),
        escape(&t.patient)
    );
    let width = 1000.0;
    let left = 60.0;
    let strip_h = 50.0;
    let plot_w = width - left - 10.0;
    let height = 40.0 + strip_h * STRIPS.len() as f64 + 30.0;
    let end = duration_ms.max(1) as f64;
    let x_of = |ms: u64| left + plot_w * (ms as f64 / end).min(1.05);
    let _ = write!(
        h,
        "<svg class=\"chart timeline\" data-outcome=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\"><title>vitals timeline</title>",
        t.outcome.name()
    );
    let top = 20.0;
    match &t.series {
        Some(series) => {
            for (i, (code, color, lo, hi)) in STRIPS.iter().enumerate() {
                let y0 = top + strip_h * i as f64;
                let _ = write!(
                    h,
                    "<text x=\"4\" y=\"{:.1}\">{code}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e6eb\"/>",
                    y0 + strip_h / 2.0,
                    y0 + strip_h,
                    width - 10.0,
                    y0 + strip_h
                );
                let Some(values) = series.vitals.get(*code) else {
                    continue;
                };
                // Points closer than 20 minutes are joined; a longer gap
                // in the data is a gap in the line. Sparse vitals get dots.
                let join_buckets = (20 * 60_000 / series.bucket_ms.max(1)).max(1) as usize;
                let present = values.iter().filter(|v| v.is_some()).count();
                let mut path = String::new();
                let mut last: Option<usize> = None;
                for (b, v) in values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let x = x_of(b as u64 * series.bucket_ms + series.bucket_ms / 2);
                    let frac = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0);
                    let y = y0 + strip_h - 4.0 - (strip_h - 8.0) * frac;
                    let pen = if last.is_some_and(|l| b - l <= join_buckets) {
                        "L"
                    } else {
                        "M"
                    };
                    let _ = write!(path, "{pen}{x:.1},{y:.1} ");
                    if present < 80 {
                        let _ = write!(
                            h,
                            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{color}\"/>"
                        );
                    }
                    last = Some(b);
                }
                if !path.is_empty() {
                    let _ = write!(
                        h,
                        "<path class=\"vital\" data-vital=\"{code}\" d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>"
                    );
                }
            }
            // Delivery rug (grey) and losses (red) under the strips.
            let rug_y = top + strip_h * STRIPS.len() as f64 + 4.0;
            let most = series.delivered.iter().copied().max().unwrap_or(1).max(1) as f64;
            for (b, &n) in series.delivered.iter().enumerate() {
                if n > 0 {
                    let x = x_of(b as u64 * series.bucket_ms);
                    let _ = write!(
                        h,
                        "<rect class=\"delivery\" x=\"{x:.1}\" y=\"{rug_y:.1}\" width=\"2\" height=\"{:.1}\" fill=\"#99a\"/>",
                        2.0 + 8.0 * f64::from(n) / most
                    );
                }
            }
            for (b, &n) in series.lost.iter().enumerate() {
                if n > 0 {
                    let x = x_of(b as u64 * series.bucket_ms);
                    let _ = write!(
                        h,
                        "<rect class=\"loss\" x=\"{x:.1}\" y=\"{:.1}\" width=\"2\" height=\"6\" fill=\"#b3261e\"><title>{n} lost</title></rect>",
                        rug_y + 12.0
                    );
                }
            }
        }
        None => {
            let _ = write!(
                h,
                "<text x=\"{left}\" y=\"60\">vitals not retained for this patient (only the first patients and those with episodes are kept)</text>"
            );
        }
    }
    let bottom = top + strip_h * STRIPS.len() as f64;
    let mut marker = |ms: Option<u64>, label: &str, color: &str, dash: bool| {
        let Some(ms) = ms else { return };
        let x = x_of(ms);
        let _ = write!(
            h,
            "<line class=\"marker\" data-marker=\"{label}\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"{color}\" stroke-width=\"1.5\"{}><title>{label} {}</title></line>",
            if dash {
                " stroke-dasharray=\"4 3\""
            } else {
                ""
            },
            clock_text(ms)
        );
    };
    marker(t.times.onset_ms, "onset", "#000", false);
    marker(t.times.criterion_ms, "criterion", "#555", true);
    marker(
        t.times.measured_ms,
        "first abnormal measurement",
        "#7a5cc2",
        true,
    );
    marker(
        t.times.delivered_ms,
        "first abnormal delivery",
        "#d08a1e",
        true,
    );
    marker(t.deadline_ms, "deadline", "#b3261e", true);
    marker(t.alert_ms, "judged alert", "#e8590c", false);
    for a in &t.alerts {
        let x = x_of(a.at_ms);
        let _ = write!(
            h,
            "<path class=\"alert\" d=\"M{:.1},{:.1} l5,-9 l5,9 z\" fill=\"#b3261e\"><title>{} at {}</title></path>",
            x - 5.0,
            top - 2.0,
            escape(&a.kind),
            clock_text(a.at_ms)
        );
    }
    // Time axis.
    for i in 0..=6 {
        let ms = duration_ms / 6 * i;
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(ms),
            height - 4.0,
            clock_text(ms)
        );
    }
    let _ = write!(h, "</svg>");
    let _ = write!(
        h,
        "<p class=\"sub\">onset {} · criterion {} · first abnormal measurement {} (delivered {}) · first abnormal delivery {} · deadline {} · alert {}. \
         ▲ alerts of the patient (orange line: the alert judged); grey ticks deliveries, red ticks losses.</p>",
        at(t.times.onset_ms),
        at(t.times.criterion_ms),
        at(t.times.measured_ms),
        at(t.times.measured_delivered_ms),
        at(t.times.delivered_ms),
        at(t.deadline_ms),
        at(t.alert_ms),
    );
    if t.outcome == OutcomeKind::False {
        let _ = write!(
            h,
            "<p class=\"sub\">No obligation for this patient when the alert came.</p>"
        );
    }
}

fn accounting(h: &mut String, r: &Report) {
    let a = &r.accounting;
    let _ = write!(
        h,
        "<h2>Devices and network</h2><table id=\"accounting\"><tr><th class=\"l\">device kind</th><th>devices</th><th>generated</th><th>delivered</th><th>lost</th><th>buffered or in flight at end</th><th class=\"l\">losses by cause</th><th>duplicates</th><th class=\"l\">alarms</th><th class=\"l\">events</th><th class=\"l\">artifacts</th></tr>"
    );
    let map = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (kind, d) in &a.by_device_kind {
        let c = &d.counts;
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            escape(kind),
            r.population.devices_by_kind.get(kind).copied().unwrap_or(0),
            c.generated,
            c.delivered,
            c.lost,
            c.buffered,
            map(&d.lost_by_cause),
            d.duplicates,
            map(&d.alarms),
            map(&d.events),
            map(&d.artifacts),
        );
    }
    let _ = write!(
        h,
        "<tr><th class=\"l\">all</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th><th>{}</th><th></th><th></th><th></th></tr></table>",
        r.population.devices,
        a.total.generated,
        a.total.delivered,
        a.total.lost,
        a.total.buffered,
        a.duplicates
    );
    let causes: Vec<String> = a
        .lost_by_cause
        .iter()
        .map(|(k, n)| format!("{} {n}", escape(k)))
        .collect();
    let t = &r.transport.stats;
    let _ = write!(
        h,
        "<p class=\"sub\">Lost by cause: {} · target <code>{}</code>: {} sent, {} accepted, {} rejected, {} server errors, {} failed, {} retries · \
         alerts: {} received, {} about unknown patients, {} refused.</p>",
        if causes.is_empty() {
            "none".into()
        } else {
            causes.join(", ")
        },
        escape(&r.target.url),
        t.sent,
        t.accepted,
        t.rejected,
        t.server_errors,
        t.failed,
        t.retries,
        r.alerts.received,
        r.alerts.unknown_patients,
        r.alerts.refused.total(),
    );
}
