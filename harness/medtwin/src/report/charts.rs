//! The SVG charts of `index.html`, drawn with maud: the latency histogram
//! and CDF of an alert kind, where the time went, and the timeline of a
//! failing outcome's patient.
//!
//! Every axis has ticks at nice values (1, 2 or 5 × 10^n of its unit) and
//! says its unit; latency charts draw the deadline, timelines every moment
//! on the way from onset to alert. Every bar, point and marker carries its
//! values in an SVG `<title>` (shown on hover), and every chart is followed
//! by a closed `<details>` table of the numbers it draws.

use std::fmt;

use maud::{Markup, html};
use medtwin_check::duration::{clock_text, format as duration_text, human};

use super::{Series, Timeline};

/// Slack for floating-point error when a value should sit on a tick.
const EPS: f64 = 1e-9;

/// Ticks of an axis: every multiple of `step` from `first × step` to
/// `last × step`, `step` being 1, 2 or 5 × 10^n.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ticks {
    /// Distance between two ticks.
    pub step: f64,
    /// Index of the first tick.
    pub first: i64,
    /// Index of the last tick.
    pub last: i64,
}

impl Ticks {
    /// Ticks covering `lo..=hi`, the first at or below `lo` and the last at
    /// or above `hi`: the finest nice step, not under `min_step`, that
    /// needs at most `max_ticks` ticks (at least 3: a range across zero
    /// needs 3).
    pub fn covering(lo: f64, hi: f64, max_ticks: usize, min_step: f64) -> Ticks {
        Self::search(lo, hi, max_ticks, min_step, |lo, hi, step| {
            ((lo / step + EPS).floor(), (hi / step - EPS).ceil())
        })
    }

    /// The ticks inside `lo..=hi` (an axis that keeps the data's range):
    /// the finest nice step, not under `min_step`, with at most
    /// `max_ticks` of them.
    pub fn inside(lo: f64, hi: f64, max_ticks: usize, min_step: f64) -> Ticks {
        Self::search(lo, hi, max_ticks, min_step, |lo, hi, step| {
            ((lo / step - EPS).ceil(), (hi / step + EPS).floor())
        })
    }

    fn search(
        lo: f64,
        hi: f64,
        max_ticks: usize,
        min_step: f64,
        ends: impl Fn(f64, f64, f64) -> (f64, f64),
    ) -> Ticks {
        let (lo, hi) = if !(lo.is_finite() && hi.is_finite()) {
            (0.0, 1.0)
        } else if hi > lo {
            (lo, hi)
        } else {
            (lo, lo + min_step.max(1.0))
        };
        let max_ticks = max_ticks.max(3) as f64;
        let start = ((hi - lo) / (max_ticks - 1.0)).log10().floor() as i32 - 1;
        for exp in start..start + 40 {
            for m in [1.0, 2.0, 5.0] {
                let step = m * 10f64.powi(exp);
                if step < min_step * (1.0 - EPS) {
                    continue;
                }
                let (first, last) = ends(lo, hi, step);
                if last - first + 1.0 <= max_ticks {
                    return Ticks {
                        step,
                        first: first as i64,
                        last: last as i64,
                    };
                }
            }
        }
        // Unreachable for finite ranges; still a covering: -1, 0, 1 × step.
        let step = 10f64.powf(lo.abs().max(hi.abs()).log10().ceil());
        Ticks {
            step,
            first: -1,
            last: 1,
        }
    }

    /// The first tick's value.
    pub fn lo(&self) -> f64 {
        self.first as f64 * self.step
    }

    /// The last tick's value.
    pub fn hi(&self) -> f64 {
        self.last as f64 * self.step
    }

    /// Every tick's value, ascending.
    pub fn values(&self) -> Vec<f64> {
        (self.first..=self.last)
            .map(|k| k as f64 * self.step)
            .collect()
    }

    /// A tick's value written with as many decimals as the step needs.
    pub fn label(&self, value: f64) -> String {
        let decimals = if self.step >= 1.0 {
            0
        } else {
            (-self.step.log10() - EPS).ceil() as usize
        };
        format!("{value:.decimals$}")
    }
}

/// Units of duration axes, ms: millisecond, second, minute, hour, day.
const DURATION_UNITS: [f64; 5] = [1.0, 1e3, 6e4, 3.6e6, 8.64e7];

/// Ticks of a duration axis in ms, at 1, 2 or 5 × 10^n whole units of the
/// largest unit that `hi_ms` spans at least twice (`5m`, `30s`, `2h`);
/// covering `lo_ms..=hi_ms` when `cover`, else inside it.
pub fn duration_ticks(lo_ms: f64, hi_ms: f64, max_ticks: usize, cover: bool) -> Ticks {
    let unit = DURATION_UNITS
        .iter()
        .rev()
        .copied()
        .find(|u| hi_ms >= 2.0 * u)
        .unwrap_or(1.0);
    let t = if cover {
        Ticks::covering(lo_ms / unit, hi_ms / unit, max_ticks, 1.0)
    } else {
        Ticks::inside(lo_ms / unit, hi_ms / unit, max_ticks, 1.0)
    };
    Ticks {
        step: t.step * unit,
        ..t
    }
}

/// A duration tick's label: `0`, `250ms`, `1.5s`, `30s`, `5m`, `1h20m`.
pub fn duration_label(ms: f64) -> String {
    let ms = ms.max(0.0).round();
    if ms == 0.0 {
        "0".into()
    } else if ms < 1000.0 {
        format!("{ms}ms")
    } else if ms < 60_000.0 {
        let s = format!("{:.3}", ms / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        duration_text(ms as u64)
    }
}

/// Simulated time as `hh:mm`, or `hh:mm:ss` with `seconds`.
pub fn clock_label(ms: f64, seconds: bool) -> String {
    let text = clock_text(ms.max(0.0).round() as u64);
    if seconds {
        text
    } else {
        text[..text.len() - 3].to_owned()
    }
}

/// A coordinate written to 0.1 px (0 when not finite, so that a degenerate
/// chart never writes an attribute the browser refuses).
#[derive(Clone, Copy)]
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() { self.0 } else { 0.0 };
        let v = (v * 10.0).round() / 10.0;
        if v == v.trunc() {
            write!(f, "{}", v as i64)
        } else {
            write!(f, "{v:.1}")
        }
    }
}

/// A linear map from data values (`d0..d1`) to pixels (`p0..p1`).
#[derive(Clone, Copy, Debug)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn new(d0: f64, d1: f64, p0: f64, p1: f64) -> Scale {
        Scale { d0, d1, p0, p1 }
    }

    fn at(self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            self.p0
        } else {
            self.p0 + (v - self.d0) * (self.p1 - self.p0) / (self.d1 - self.d0)
        }
    }
}

/// A tick: its value (in data units) and its label.
type Tick = (f64, String);

/// Labelled ticks of a number axis.
fn number_ticks(t: &Ticks) -> Vec<Tick> {
    t.values().into_iter().map(|v| (v, t.label(v))).collect()
}

/// Labelled ticks of a duration axis.
fn latency_ticks(t: &Ticks) -> Vec<Tick> {
    t.values()
        .into_iter()
        .map(|v| (v, duration_label(v)))
        .collect()
}

/// A tick's value for its `data-value` attribute (no float noise).
fn tick_value(v: f64) -> String {
    let v = (v * 1e6).round() / 1e6;
    format!("{v}")
}

/// An axis along the bottom of a plot (`x` its pixels, `y` its baseline):
/// a tick and a label per value, and the axis title under them.
fn x_axis(axis: &str, ticks: &[Tick], x: Scale, y: f64, title: &str) -> Markup {
    html! {
        line class="axis-line" x1=(Px(x.p0)) y1=(Px(y)) x2=(Px(x.p1)) y2=(Px(y)) {}
        @for (v, label) in ticks {
            g class="tick" data-axis=(axis) data-value=(tick_value(*v)) {
                line x1=(Px(x.at(*v))) y1=(Px(y)) x2=(Px(x.at(*v))) y2=(Px(y + 4.0)) {}
                text x=(Px(x.at(*v))) y=(Px(y + 15.0)) text-anchor="middle" { (label) }
            }
        }
        text class="axis-title" x=(Px((x.p0 + x.p1) / 2.0)) y=(Px(y + 30.0)) text-anchor="middle" {
            (title)
        }
    }
}

/// An axis along the left of a plot (`y` its pixels, `x` the plot's
/// width): a tick, a label and a light grid line per value.
fn y_axis(axis: &str, ticks: &[Tick], y: Scale, x: Scale) -> Markup {
    html! {
        line class="axis-line" x1=(Px(x.p0)) y1=(Px(y.p0)) x2=(Px(x.p0)) y2=(Px(y.p1)) {}
        @for (v, label) in ticks {
            g class="tick" data-axis=(axis) data-value=(tick_value(*v)) {
                line class="grid" x1=(Px(x.p0)) y1=(Px(y.at(*v))) x2=(Px(x.p1)) y2=(Px(y.at(*v))) {}
                line x1=(Px(x.p0 - 4.0)) y1=(Px(y.at(*v))) x2=(Px(x.p0)) y2=(Px(y.at(*v))) {}
                text x=(Px(x.p0 - 6.0)) y=(Px(y.at(*v) + 3.5)) text-anchor="end" { (label) }
            }
        }
    }
}

/// Rough width of a label in px (11 px system font).
fn text_width(text: &str) -> f64 {
    6.0 * text.chars().count() as f64
}

/// The `viewBox` of a chart `w` by `h`.
fn view_box(w: f64, h: f64) -> String {
    format!("0 0 {} {}", Px(w), Px(h))
}

// ----------------------------------------------------------------------
// Latency charts.

/// One alert kind's latencies (reference to alert) and the deadline they
/// are held to.
#[derive(Clone, Debug, Default)]
pub struct Latencies<'a> {
    /// The alert kind.
    pub kind: &'a str,
    /// Latency (ms) and patient of every hit and late alert, ascending.
    pub values: Vec<(u64, &'a str)>,
    /// The tightest `within` of the expectations requiring this kind.
    pub deadline_ms: Option<u64>,
}

impl Latencies<'_> {
    fn largest(&self) -> u64 {
        self.values.last().map_or(0, |v| v.0)
    }

    /// The deadline when it is on the chart: not more than three times the
    /// largest latency (else the bars would crowd into a corner).
    fn deadline_on_chart(&self) -> Option<u64> {
        self.deadline_ms
            .filter(|&d| self.largest() == 0 || d <= 3 * self.largest())
    }

    /// The latency axis, covering every latency and the deadline.
    fn x(&self) -> (Ticks, Scale) {
        let top = self
            .largest()
            .max(self.deadline_on_chart().unwrap_or(0))
            .max(1);
        let ticks = duration_ticks(0.0, top as f64, 7, true);
        let x = Scale::new(0.0, ticks.hi(), L_LEFT, L_W - L_RIGHT);
        (ticks, x)
    }
}

const L_W: f64 = 440.0;
const L_H: f64 = 250.0;
const L_LEFT: f64 = 52.0;
const L_RIGHT: f64 = 20.0;
const L_TOP: f64 = 28.0;
const L_BOTTOM: f64 = 48.0;

/// The deadline on a latency chart: a labelled dashed line, or a note in
/// the corner when it lies far right of every latency.
fn deadline_line(l: &Latencies, x: Scale, note: &str) -> Markup {
    let Some(ms) = l.deadline_ms else {
        return html! {};
    };
    let label = format!("deadline {}{note}", duration_text(ms));
    if l.deadline_on_chart().is_none() {
        return html! {
            g class="deadline off-chart" data-ms=(ms) {
                text x=(Px(L_W - L_RIGHT)) y=(Px(L_TOP - 10.0)) text-anchor="end" { (label) " →" }
            }
        };
    }
    let px = x.at(ms as f64);
    let (lx, anchor) = if px - text_width(&label) - 4.0 < 4.0 {
        (px + 4.0, "start")
    } else {
        (px - 4.0, "end")
    };
    html! {
        g class="deadline" data-ms=(ms) {
            line x1=(Px(px)) y1=(Px(L_TOP - 18.0)) x2=(Px(px)) y2=(Px(L_H - L_BOTTOM)) stroke-dasharray="5 3" {
                title { (label) }
            }
            text x=(Px(lx)) y=(Px(L_TOP - 10.0)) text-anchor=(anchor) { (label) }
        }
    }
}

/// Histogram bins over `0..=ticks.hi()`: a nice fraction of the tick step
/// (whole ms), at most 25 bins. Returns the bin width and the counts.
fn bins(values: &[(u64, &str)], ticks: &Ticks) -> (u64, Vec<u64>) {
    let step = ticks.step.round().max(1.0) as u64;
    let span = ticks.hi().round().max(1.0) as u64;
    let width = [10, 5, 2, 1]
        .into_iter()
        .filter(|k| step.is_multiple_of(*k))
        .map(|k| step / k)
        .find(|w| span.div_ceil(*w) <= 25)
        .unwrap_or(step);
    let n = span.div_ceil(width).max(1) as usize;
    let mut counts = vec![0u64; n];
    for &(v, _) in values {
        counts[((v / width) as usize).min(n - 1)] += 1;
    }
    (width, counts)
}

/// `n` and a noun, plural unless `n` is 1: "3 alerts", "1 alert".
fn plural(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// "3 alerts" or "1 alert".
fn alerts(n: u64) -> String {
    plural(n, "alert")
}

/// The latency histogram of one alert kind, with its data table (the bins
/// holding alerts).
pub fn histogram(l: &Latencies) -> Markup {
    let (xt, x) = l.x();
    let (width, counts) = bins(&l.values, &xt);
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let yt = Ticks::covering(0.0, top as f64, 5, 1.0);
    let y = Scale::new(0.0, yt.hi(), L_H - L_BOTTOM, L_TOP);
    let bars: Vec<(usize, u64, u64, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| (i, c, i as u64 * width, (i as u64 + 1) * width))
        .collect();
    let between = |from: u64, to: u64| {
        format!(
            "{} and {}",
            duration_label(from as f64),
            duration_label(to as f64)
        )
    };
    html! {
        figure class="chart-box" {
            svg class="chart histogram" data-kind=(l.kind) width=(L_W) height=(L_H) viewBox=(view_box(L_W, L_H)) role="img" {
                title { "Latency histogram of " (l.kind) " alerts" }
                (y_axis("alerts", &number_ticks(&yt), y, x))
                text class="axis-title" x="6" y=(Px(L_TOP - 10.0)) { "alerts" }
                @for &(_, c, from, to) in &bars {
                    rect class="bar" x=(Px(x.at(from as f64) + 1.0)) y=(Px(y.at(c as f64)))
                        width=(Px((x.at(to as f64) - x.at(from as f64) - 2.0).max(1.0)))
                        height=(Px(y.at(0.0) - y.at(c as f64))) {
                        title { (alerts(c)) " between " (between(from, to)) }
                    }
                }
                (x_axis("latency", &latency_ticks(&xt), x, L_H - L_BOTTOM, "latency (reference → alert)"))
                (deadline_line(l, x, ""))
            }
            details class="data" {
                summary { "Histogram data: " (plural(bars.len() as u64, "bin")) " of " (duration_label(width as f64)) " with alerts" }
                table class="data" data-chart="histogram" data-kind=(l.kind) {
                    tr { th { "from" } th { "to" } th { "alerts" } }
                    @for &(i, c, from, to) in &bars {
                        tr data-bin=(i) {
                            td { (duration_label(from as f64)) } td { (duration_label(to as f64)) } td { (c) }
                        }
                    }
                }
            }
        }
    }
}

/// Most points drawn and listed on a CDF.
const MAX_CDF_POINTS: usize = 200;

/// The CDF's points as 1-based ranks into the sorted latencies: every
/// rank, or evenly spaced ranks ending with the last when there are many.
fn cdf_ranks(n: usize) -> Vec<usize> {
    if n <= MAX_CDF_POINTS {
        (1..=n).collect()
    } else {
        (1..=MAX_CDF_POINTS)
            .map(|j| (j * n).div_ceil(MAX_CDF_POINTS))
            .collect()
    }
}

/// A share as a percentage to 0.1: `50.0 %`.
fn share(k: usize, n: usize) -> String {
    format!("{:.1} %", 100.0 * k as f64 / n.max(1) as f64)
}

/// The latency CDF of one alert kind (a step line, a point per latency),
/// with its data table (rank, latency, share at or under it).
pub fn cdf(l: &Latencies) -> Markup {
    let (xt, x) = l.x();
    let yt = Ticks::covering(0.0, 1.0, 6, 0.0);
    let y = Scale::new(0.0, 1.0, L_H - L_BOTTOM, L_TOP);
    let n = l.values.len();
    let ranks = cdf_ranks(n);
    let points = if n <= 50 { "pt show" } else { "pt" };
    let mut line = format!("{},{}", Px(x.at(0.0)), Px(y.at(0.0)));
    let mut below = 0.0;
    for &r in &ranks {
        let px = Px(x.at(l.values[r - 1].0 as f64));
        let share = r as f64 / n as f64;
        line += &format!(" {px},{} {px},{}", Px(y.at(below)), Px(y.at(share)));
        below = share;
    }
    let y_ticks: Vec<Tick> = yt
        .values()
        .into_iter()
        .map(|v| (v, format!("{:.0} %", v * 100.0)))
        .collect();
    let note = l.deadline_ms.map_or(String::new(), |d| {
        let k = l.values.iter().filter(|v| v.0 <= d).count();
        format!(" · {} within", share(k, n))
    });
    html! {
        figure class="chart-box" {
            svg class="chart cdf" data-kind=(l.kind) width=(L_W) height=(L_H) viewBox=(view_box(L_W, L_H)) role="img" {
                title { "Latency CDF of " (l.kind) " alerts" }
                (y_axis("share", &y_ticks, y, x))
                text class="axis-title" x="6" y=(Px(L_TOP - 10.0)) { "alerts at or under" }
                polyline points=(line) fill="none" stroke="#b3261e" stroke-width="2" {}
                @for &r in &ranks {
                    @let (ms, patient) = l.values[r - 1];
                    circle class=(points) cx=(Px(x.at(ms as f64))) cy=(Px(y.at(r as f64 / n as f64))) r="3.5" fill="#b3261e" {
                        title { (patient) " · " (human(ms)) " · " (r) " of " (n) " alerts (" (share(r, n)) ") at or under it" }
                    }
                }
                (x_axis("latency", &latency_ticks(&xt), x, L_H - L_BOTTOM, "latency (reference → alert)"))
                (deadline_line(l, x, &note))
            }
            details class="data" {
                summary { "CDF data: " (ranks.len()) " of " (n) " latencies" }
                table class="data" data-chart="cdf" data-kind=(l.kind) {
                    tr { th { "#" } th { "latency" } th { "at or under" } th class="l" { "patient" } }
                    @for &r in &ranks {
                        @let (ms, patient) = l.values[r - 1];
                        tr data-rank=(r) data-ms=(ms) {
                            td { (r) } td { (human(ms)) } td { (share(r, n)) } td class="l" { (patient) }
                        }
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------------
// Where the time went.

/// Where one expectation's time went: the mean of each stage over its hits
/// and late alerts (ms) and how many alerts each mean is of.
#[derive(Clone, Debug, Default)]
pub struct Stages<'a> {
    /// The expectation.
    pub name: &'a str,
    /// Device, network and backend: mean ms and count.
    pub means: [Option<(f64, usize)>; 4],
}

impl Stages<'_> {
    fn total(&self) -> f64 {
        self.means.iter().flatten().map(|m| m.0).sum()
    }
}

/// Stage names and colours of the decomposition.
const STAGES: [(&str, &str); 4] = [
    ("device", "#7a5cc2"),
    ("network", "#d08a1e"),
    ("harness", "#8a8f99"),
    ("backend", "#3b6fb6"),
];

/// One row's stacked bars (device, network, harness, backend), each titled with
/// its mean, and the total after them.
fn stage_bars(row: &Stages, x: Scale, y0: f64) -> Markup {
    let mut from = 0.0;
    let mut bars = Vec::new();
    for (m, (stage, color)) in row.means.iter().zip(STAGES) {
        if let Some((ms, count)) = *m {
            bars.push((from, ms, count, stage, color));
            from += ms;
        }
    }
    html! {
        text x="4" y=(Px(y0 + 14.0)) { (super::truncate(row.name, 34)) }
        @for &(from, ms, count, stage, color) in &bars {
            rect class="stage" x=(Px(x.at(from))) y=(Px(y0)) width=(Px(x.at(from + ms) - x.at(from))) height="18" fill=(color) {
                title { (row.name) " · " (stage) ": mean " (human(ms as u64)) " over " (alerts(count as u64)) }
            }
        }
        text x=(Px(x.at(from) + 4.0)) y=(Px(y0 + 14.0)) {
            @if from > 0.0 { (human(from as u64)) } @else { "no data" }
        }
    }
}

/// A horizontal stacked bar per expectation (device, network, harness, backend)
/// on a duration axis, with its data table.
pub fn decomposition(rows: &[Stages]) -> Markup {
    let (w, left, right, row_h) = (780.0, 230.0, 90.0, 26.0);
    let longest = rows.iter().map(Stages::total).fold(1.0f64, f64::max);
    let ticks = duration_ticks(0.0, longest, 8, true);
    let x = Scale::new(0.0, ticks.hi(), left, w - right);
    let axis_y = 28.0 + row_h * rows.len() as f64;
    let h = axis_y + 40.0;
    let cell = |m: &Option<(f64, usize)>| m.map_or("-".into(), |m| human(m.0 as u64));
    html! {
        svg class="chart decomposition" width=(w) height=(Px(h)) viewBox=(view_box(w, h)) role="img" {
            title { "Where the time went, per expectation" }
            @for (i, (name, color)) in STAGES.iter().enumerate() {
                rect x=(Px(left + 90.0 * i as f64)) y="4" width="10" height="10" fill=(color) {}
                text x=(Px(left + 14.0 + 90.0 * i as f64)) y="13" { (name) }
            }
            @for (i, row) in rows.iter().enumerate() {
                (stage_bars(row, x, 24.0 + row_h * i as f64))
            }
            (x_axis("duration", &latency_ticks(&ticks), x, axis_y, "mean time per stage"))
        }
        details class="data" {
            summary { "Decomposition data" }
            table class="data" data-chart="decomposition" {
                tr { th class="l" { "expectation" } th { "device" } th { "network" } th { "harness" } th { "backend" } th { "total" } }
                @for row in rows {
                    tr {
                        td class="l" { (row.name) }
                        @for m in &row.means { td { (cell(m)) } }
                        td { (human(row.total() as u64)) }
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------------
// Timelines.

/// A vital drawn on timelines.
struct Vital {
    code: &'static str,
    label: &'static str,
    unit: &'static str,
    color: &'static str,
    /// Smallest span of its axis (a steady vital stays a flat line).
    min_span: f64,
}

/// The vitals of a timeline, top to bottom.
const VITALS: [Vital; 5] = [
    Vital {
        code: "hr",
        label: "HR",
        unit: "/min",
        color: "#b3261e",
        min_span: 20.0,
    },
    Vital {
        code: "spo2",
        label: "SpO2",
        unit: "%",
        color: "#3b6fb6",
        min_span: 5.0,
    },
    Vital {
        code: "rr",
        label: "RR",
        unit: "/min",
        color: "#1b7f3b",
        min_span: 6.0,
    },
    Vital {
        code: "sbp",
        label: "SBP",
        unit: "mmHg",
        color: "#7a5cc2",
        min_span: 20.0,
    },
    Vital {
        code: "temp",
        label: "Temp",
        unit: "°C",
        color: "#d08a1e",
        min_span: 1.0,
    },
];

const T_W: f64 = 1000.0;
const T_LEFT: f64 = 112.0;
const T_RIGHT: f64 = 24.0;
/// Baselines of the marker labels' rows.
const LABEL_ROWS: [f64; 3] = [12.0, 24.0, 36.0];
/// Baseline of the alert triangles.
const ALERT_Y: f64 = 52.0;
const STRIPS_TOP: f64 = 60.0;
const STRIP_H: f64 = 62.0;
const STRIP_GAP: f64 = 18.0;
const RUG_TOP: f64 = STRIPS_TOP + 5.0 * (STRIP_H + STRIP_GAP);
const T_AXIS_Y: f64 = RUG_TOP + 28.0;
const T_H: f64 = T_AXIS_Y + 38.0;

/// The vital's values per bucket (none when not retained).
fn values<'s>(s: &'s Series, v: &Vital) -> &'s [Option<f64>] {
    s.vitals.get(v.code).map_or(&[], Vec::as_slice)
}

/// The y range of a strip: the data's, widened to the vital's smallest
/// span around its middle.
fn strip_range(present: &[(usize, f64)], min_span: f64) -> (f64, f64) {
    let lo = present.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = present
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, min_span);
    }
    if hi - lo >= min_span {
        return (lo, hi);
    }
    let mid = (lo + hi) / 2.0;
    (mid - min_span / 2.0, mid + min_span / 2.0)
}

/// The SVG path of a vital: points closer than 20 minutes are joined; a
/// longer gap in the data is a gap in the line.
fn vital_path(present: &[(usize, f64)], bucket_ms: u64, x: Scale, y: Scale) -> String {
    let join = (20 * 60_000 / bucket_ms.max(1)).max(1) as usize;
    let mut d = String::new();
    let mut last: Option<usize> = None;
    for &(b, v) in present {
        let pen = if last.is_some_and(|l| b - l <= join) {
            'L'
        } else {
            'M'
        };
        d += &format!(
            "{pen}{},{} ",
            Px(x.at((b as u64 * bucket_ms) as f64)),
            Px(y.at(v))
        );
        last = Some(b);
    }
    d.trim_end().to_owned()
}

/// One vital's strip: its y axis with ticks and unit, its line, and a
/// point per bucket titled with its value.
fn strip(i: usize, v: &Vital, s: &Series, patient: &str, x: Scale) -> Markup {
    let top = STRIPS_TOP + i as f64 * (STRIP_H + STRIP_GAP);
    let present: Vec<(usize, f64)> = values(s, v)
        .iter()
        .enumerate()
        .filter_map(|(b, v)| v.map(|v| (b, v)))
        .collect();
    let (lo, hi) = strip_range(&present, v.min_span);
    let yt = Ticks::covering(lo, hi, 4, 0.0);
    let y = Scale::new(yt.lo(), yt.hi(), top + STRIP_H, top);
    let points = if present.len() < 80 {
        "pts show"
    } else {
        "pts"
    };
    html! {
        g class="strip" data-strip=(v.code) {
            (y_axis(v.code, &number_ticks(&yt), y, x))
            text class="axis-title" x="4" y=(Px(top + STRIP_H / 2.0 + 4.0)) { (v.label) " (" (v.unit) ")" }
            @if present.is_empty() {
                text class="no-data" x=(Px(T_LEFT + 8.0)) y=(Px(top + STRIP_H / 2.0)) { "no " (v.label) " measured" }
            } @else {
                path class="vital" data-vital=(v.code) d=(vital_path(&present, s.bucket_ms, x, y)) fill="none" stroke=(v.color) stroke-width="1.5" {}
                g class=(points) fill=(v.color) {
                    @for &(b, val) in &present {
                        @let at = b as u64 * s.bucket_ms;
                        circle cx=(Px(x.at(at as f64))) cy=(Px(y.at(val))) r="3" {
                            title { (patient) " · " (v.label) " " (format!("{val:.1}")) " " (v.unit) " at " (clock_text(at)) }
                        }
                    }
                }
            }
        }
    }
}

/// Deliveries (grey, taller for more) and losses (red) per bucket, under
/// the strips.
fn rug(s: &Series, x: Scale) -> Markup {
    let most = s.delivered.iter().copied().max().unwrap_or(1).max(1) as f64;
    let base = RUG_TOP + 12.0;
    let span = |b: usize| {
        let from = b as u64 * s.bucket_ms;
        let to = from + s.bucket_ms;
        (x.at(from as f64), clock_text(from), clock_text(to))
    };
    let w = (x.at(s.bucket_ms as f64) - x.at(0.0) - 0.5).max(1.0);
    html! {
        text class="axis-title" x="4" y=(Px(base)) { "deliveries" }
        text class="axis-title" x="4" y=(Px(base + 12.0)) { "losses" }
        @for (b, &n) in s.delivered.iter().enumerate() {
            @if n > 0 {
                @let (px, from, to) = span(b);
                @let h = 2.0 + 8.0 * f64::from(n) / most;
                rect class="delivery" x=(Px(px)) y=(Px(base - h)) width=(Px(w)) height=(Px(h)) {
                    title { (n) " delivered " (from) "–" (to) }
                }
            }
        }
        @for (b, &n) in s.lost.iter().enumerate() {
            @if n > 0 {
                @let (px, from, to) = span(b);
                rect class="loss" x=(Px(px)) y=(Px(base + 4.0)) width=(Px(w)) height="8" {
                    title { (n) " lost " (from) "–" (to) }
                }
            }
        }
    }
}

/// A moment on a timeline: when, its name, colour, and dashed or not.
type Moment = (u64, &'static str, &'static str, bool);

/// The moments of a timeline that happened.
fn moments(t: &Timeline) -> Vec<Moment> {
    let all = [
        (t.times.onset_ms, "onset", "#000000", false),
        (t.times.criterion_ms, "criterion", "#555555", true),
        (
            t.times.measured_ms,
            "first abnormal measurement",
            "#7a5cc2",
            true,
        ),
        (
            t.times.delivered_ms,
            "first abnormal delivery",
            "#d08a1e",
            true,
        ),
        (t.deadline_ms, "deadline", "#b3261e", true),
        (t.alert_ms, "judged alert", "#e8590c", false),
    ];
    all.into_iter()
        .filter_map(|(ms, name, color, dash)| ms.map(|ms| (ms, name, color, dash)))
        .collect()
}

/// Where each moment's label goes: x, row baseline and anchor, in the
/// moments' order. Labels sit right of their line (left near the right
/// edge), in the first row where they overlap nothing.
fn place_labels(moments: &[Moment], x: Scale) -> Vec<(f64, f64, &'static str)> {
    let mut order: Vec<usize> = (0..moments.len()).collect();
    order.sort_by_key(|&i| moments[i].0);
    let mut ends = [f64::NEG_INFINITY; LABEL_ROWS.len()];
    let mut placed = vec![(0.0, 0.0, "start"); moments.len()];
    for i in order {
        let px = x.at(moments[i].0 as f64);
        let w = text_width(moments[i].1);
        let (from, to, lx, anchor) = if px + 3.0 + w <= T_W - 2.0 {
            (px, px + 3.0 + w, px + 3.0, "start")
        } else {
            (px - 3.0 - w, px, px - 3.0, "end")
        };
        let row = (0..ends.len())
            .find(|&r| ends[r] + 6.0 <= from)
            .unwrap_or_else(|| {
                (0..ends.len()).fold(0, |a, r| if ends[r] < ends[a] { r } else { a })
            });
        ends[row] = ends[row].max(to);
        placed[i] = (lx, LABEL_ROWS[row], anchor);
    }
    placed
}

/// The moments as labelled vertical lines across the strips, and the
/// patient's alerts as triangles above them.
fn markers(t: &Timeline, x: Scale) -> Markup {
    let moments = moments(t);
    let labels = place_labels(&moments, x);
    html! {
        @for (&(ms, name, color, dash), &(lx, ly, anchor)) in moments.iter().zip(&labels) {
            line class="marker" data-marker=(name) x1=(Px(x.at(ms as f64))) y1="2" x2=(Px(x.at(ms as f64))) y2=(Px(RUG_TOP + 24.0))
                stroke=(color) stroke-width="1.5" stroke-dasharray=[dash.then_some("4 3")] {
                title { (name) " " (clock_text(ms)) }
            }
            text class="marker-label" data-marker=(name) x=(Px(lx)) y=(Px(ly)) text-anchor=(anchor) fill=(color) { (name) }
        }
        @for a in &t.alerts {
            path class="alert" d=(format!("M{},{} l5,-9 l5,9 z", Px(x.at(a.at_ms as f64) - 5.0), Px(ALERT_Y))) fill="#b3261e" {
                title { (a.kind) " alert at " (clock_text(a.at_ms)) }
            }
        }
    }
}

/// The end of a timeline's time axis: the run's end, or a later moment or
/// alert (alerts may come in the grace period).
fn timeline_end(t: &Timeline, duration_ms: u64) -> u64 {
    moments(t)
        .iter()
        .map(|m| m.0)
        .chain(t.alerts.iter().map(|a| a.at_ms))
        .fold(duration_ms, u64::max)
        .max(1)
}

/// The timeline of a failing outcome: a strip per vital (hr, spo2, rr,
/// sbp, temp) with its own axis, the moments from onset to alert, the
/// patient's alerts, deliveries and losses, on a simulated-time axis; then
/// the values per bucket in a table.
pub fn timeline(t: &Timeline, duration_ms: u64) -> Markup {
    let end = timeline_end(t, duration_ms) as f64;
    let xt = duration_ticks(0.0, end, 11, false);
    let seconds = xt.step < 60_000.0;
    let x_ticks: Vec<Tick> = xt
        .values()
        .into_iter()
        .map(|v| (v, clock_label(v, seconds)))
        .collect();
    let x = Scale::new(0.0, end, T_LEFT, T_W - T_RIGHT);
    let unit = if seconds { "hh:mm:ss" } else { "hh:mm" };
    html! {
        figure class="chart-box" {
            svg class="chart timeline" data-outcome=(t.outcome.name()) data-patient=(t.patient) width=(T_W) height=(T_H) viewBox=(view_box(T_W, T_H)) role="img" {
                title { "Vitals of " (t.patient) " (" (t.outcome.name()) ", " (t.expectation) ")" }
                @match &t.series {
                    Some(s) => {
                        @for (i, v) in VITALS.iter().enumerate() { (strip(i, v, s, &t.patient, x)) }
                        (rug(s, x))
                    }
                    None => {
                        text x=(Px(T_LEFT)) y=(Px(STRIPS_TOP + 40.0)) {
                            "vitals not retained for this patient (only the first patients and those with episodes are kept)"
                        }
                    }
                }
                (markers(t, x))
                (x_axis("time", &x_ticks, x, T_AXIS_Y, &format!("simulated time ({unit})")))
            }
            @if let Some(s) = &t.series { (timeline_table(s, &t.patient)) }
        }
    }
}

/// The values a timeline draws, a row per bucket holding any.
fn timeline_table(s: &Series, patient: &str) -> Markup {
    let count = |v: &[u32], b: usize| v.get(b).copied().unwrap_or(0);
    let n = VITALS
        .iter()
        .map(|v| values(s, v).len())
        .chain([s.delivered.len(), s.lost.len()])
        .max()
        .unwrap_or(0);
    let rows: Vec<usize> = (0..n)
        .filter(|&b| {
            VITALS
                .iter()
                .any(|v| values(s, v).get(b).is_some_and(Option::is_some))
                || count(&s.delivered, b) + count(&s.lost, b) > 0
        })
        .collect();
    html! {
        details class="data" {
            summary { "Values of " (patient) ": " (rows.len()) " buckets of " (duration_text(s.bucket_ms)) " (the last value measured in each)" }
            table class="data" data-chart="timeline" data-patient=(patient) {
                tr {
                    th { "from" }
                    @for v in &VITALS { th { (v.label) " (" (v.unit) ")" } }
                    th { "delivered" } th { "lost" }
                }
                @for &b in &rows {
                    tr data-bucket=(b) {
                        td { (clock_text(b as u64 * s.bucket_ms)) }
                        @for v in &VITALS {
                            td { @if let Some(Some(val)) = values(s, v).get(b) { (format!("{val:.1}")) } }
                        }
                        td { (count(&s.delivered, b)) } td { (count(&s.lost, b)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &Ticks, f: impl Fn(f64) -> String) -> Vec<String> {
        t.values().into_iter().map(f).collect()
    }

    #[test]
    fn nice_ticks_of_milliseconds_minutes_and_percent() {
        // 0..1234 ms: 6 ticks at most take steps of 500, 8 of 200.
        let t = Ticks::covering(0.0, 1234.0, 6, 0.0);
        assert_eq!((t.step, t.lo(), t.hi()), (500.0, 0.0, 1500.0));
        let t = Ticks::covering(0.0, 1234.0, 8, 0.0);
        assert_eq!(
            t.values(),
            [0., 200., 400., 600., 800., 1000., 1200., 1400.]
        );
        let t = duration_ticks(0.0, 1234.0, 6, true);
        assert_eq!(labels(&t, duration_label), ["0", "500ms", "1s", "1.5s"]);
        // 0..95 minutes: counted in minutes, every 20, as a latency or as
        // simulated time; inside the range, every 10.
        let t = duration_ticks(0.0, 95.0 * 60_000.0, 6, true);
        assert_eq!(t.step, 20.0 * 60_000.0);
        assert_eq!(
            labels(&t, duration_label),
            ["0", "20m", "40m", "1h", "1h20m", "1h40m"]
        );
        assert_eq!(
            labels(&t, |v| clock_label(v, false)),
            ["00:00", "00:20", "00:40", "01:00", "01:20", "01:40"]
        );
        let t = duration_ticks(0.0, 95.0 * 60_000.0, 11, false);
        assert_eq!((t.step, t.lo(), t.hi()), (600_000.0, 0.0, 5_400_000.0));
        // 84..100 %: every 5 from 80, or every 10 with 4 ticks at most.
        let t = Ticks::covering(84.0, 100.0, 5, 0.0);
        assert_eq!(t.values(), [80., 85., 90., 95., 100.]);
        assert_eq!(
            Ticks::covering(84.0, 100.0, 4, 0.0).values(),
            [80., 90., 100.]
        );
        // Decimals as the step needs them.
        let t = Ticks::covering(36.4, 37.2, 4, 0.0);
        assert_eq!(labels(&t, |v| t.label(v)), ["36.0", "36.5", "37.0", "37.5"]);
        // Counts never step by less than one.
        assert_eq!(Ticks::covering(0.0, 2.0, 5, 1.0).values(), [0., 1., 2.]);
        // Seconds and hours.
        let t = duration_ticks(0.0, 45_000.0, 7, true);
        assert_eq!(
            labels(&t, duration_label),
            ["0", "10s", "20s", "30s", "40s", "50s"]
        );
        let t = duration_ticks(0.0, 24.0 * 3_600_000.0, 11, false);
        assert_eq!(t.step, 3.6e6 * 5.0);
    }

    #[test]
    fn nice_ticks_always_cover_with_a_1_2_5_step() {
        for (lo, hi) in [
            (0.0, 1.0),
            (3.0, 7.5),
            (-12.0, 40.0),
            (0.0, 9e9),
            (99.9, 100.1),
        ] {
            for max in 3..12 {
                let t = Ticks::covering(lo, hi, max, 0.0);
                assert!(
                    t.lo() <= lo + EPS && t.hi() >= hi - EPS,
                    "{lo}..{hi}: {t:?}"
                );
                assert!(
                    (t.last - t.first + 1) as usize <= max,
                    "{lo}..{hi} max {max}: {t:?}"
                );
                let mantissa = t.step / 10f64.powf(t.step.log10().floor());
                assert!(
                    [1.0, 2.0, 5.0, 10.0]
                        .iter()
                        .any(|m| (mantissa - m).abs() < 1e-6),
                    "{t:?}"
                );
            }
        }
        // Degenerate ranges still give two ticks or more.
        for (lo, hi) in [(37.0, 37.0), (5.0, 1.0), (f64::NAN, 1.0)] {
            let t = Ticks::covering(lo, hi, 4, 0.0);
            assert!(t.last > t.first && t.step > 0.0, "{t:?}");
        }
    }

    #[test]
    fn charts_of_degenerate_data_write_finite_coordinates() {
        let one = Latencies {
            kind: "k",
            values: vec![(0, "p")],
            deadline_ms: None,
        };
        let far = Latencies {
            kind: "k",
            values: vec![(10, "p"), (20, "q")],
            deadline_ms: Some(86_400_000),
        };
        let series = Series {
            bucket_ms: 1000,
            vitals: [("spo2".to_owned(), vec![Some(97.0), None, Some(97.0)])].into(),
            delivered: vec![1, 0, 3],
            lost: vec![0, 2, 0],
        };
        let t = Timeline {
            expectation: "e".into(),
            patient: "p".into(),
            outcome: super::super::OutcomeKind::Missed,
            reference_ms: Some(0),
            deadline_ms: Some(0),
            alert_ms: None,
            times: Default::default(),
            alerts: vec![],
            series: Some(series),
        };
        let html = [
            histogram(&one),
            cdf(&one),
            histogram(&far),
            cdf(&far),
            decomposition(&[Stages::default()]),
            timeline(&t, 0),
        ]
        .map(Markup::into_string)
        .concat();
        for bad in ["NaN", "inf", "=\"-"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("class=\"deadline off-chart\" data-ms=\"86400000\""));
        assert!(html.contains("p · SpO2 97.0 % at 00:00:02"));
        assert!(html.contains("2 lost 00:00:01–00:00:02"));
    }

    #[test]
    fn histogram_bins_count_every_latency_once() {
        let values: Vec<(u64, &str)> = [0, 1, 59_999, 60_000, 299_999, 300_000, 1_800_000]
            .into_iter()
            .map(|v| (v, "p"))
            .collect();
        let t = duration_ticks(0.0, 1_800_000.0, 7, true);
        let (width, counts) = bins(&values, &t);
        // Ticks every 5m; bins of 2m30s, the finest fraction with at most 25.
        assert_eq!((t.step, width, counts.len()), (300_000.0, 150_000, 12));
        assert_eq!(counts.iter().sum::<u64>(), values.len() as u64);
        assert_eq!((counts[0], counts[1], counts[2], counts[11]), (4, 1, 1, 1));
    }
}
