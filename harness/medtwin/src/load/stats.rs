//! What a load run counts, per window of *scheduled* time (so the windows
//! of shards line up exactly), and the one aggregation both the live run
//! and `medtwin merge` feed closed windows through: totals, per-window
//! summaries, thresholds, and the HDR interval log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Serializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriter, Tag};
use serde::{Deserialize, Serialize};

use crate::scenario::load::{Metric, Threshold};

/// Significant digits of every latency histogram (0.1 % resolution).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds that grows as values need.
pub fn histogram() -> Histogram<u64> {
    // 3 significant digits is always a valid precision.
    Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits")
}

/// Messages of one window by fate. `scheduled = sent + dropped` once the
/// window is closed, and `sent = accepted + refused + failed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    /// Due in the window (after the stage profile).
    pub scheduled: u64,
    /// Handed to a connection and sent.
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered with another status.
    pub refused: u64,
    /// No answer (connect, timeout, reset, I/O).
    pub failed: u64,
    /// Not sent on time by the generator (queue full, or too late to send).
    pub dropped: u64,
    /// Refusals, failures and drops by cause (`status_503`, `timeout`,
    /// `dropped_queue_full`, `dropped_late`, ...).
    pub causes: BTreeMap<String, u64>,
    /// Alerts that arrived in the window with the time of the measurement
    /// that raised them (their latency is in the alert histogram).
    #[serde(default)]
    pub alerts: u64,
}

impl Counts {
    /// Adds `other` into these.
    pub fn add(&mut self, other: &Counts) {
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.failed += other.failed;
        self.dropped += other.dropped;
        self.alerts += other.alerts;
        for (cause, n) in &other.causes {
            *self.causes.entry(cause.clone()).or_default() += n;
        }
    }

    /// Counts one message under `cause`.
    pub fn cause(&mut self, cause: &str) {
        match self.causes.get_mut(cause) {
            Some(n) => *n += 1,
            None => {
                self.causes.insert(cause.to_owned(), 1);
            }
        }
    }

    /// Not accepted (refused, failed or dropped), % of scheduled.
    pub fn errors_pct(&self) -> Option<f64> {
        (self.scheduled > 0).then(|| {
            100.0 * (self.refused + self.failed + self.dropped) as f64 / self.scheduled as f64
        })
    }

    /// Dropped by the generator, % of scheduled.
    pub fn drops_pct(&self) -> Option<f64> {
        (self.scheduled > 0).then(|| 100.0 * self.dropped as f64 / self.scheduled as f64)
    }
}

/// Everything one window holds.
#[derive(Clone, Debug)]
pub struct WindowData {
    /// Messages by fate.
    pub counts: Counts,
    /// Scheduled time → 2xx answer, µs.
    pub ingest: Histogram<u64>,
    /// Scheduled time → handed to a connection's queue, µs: the
    /// generator's own lateness.
    pub lateness: Histogram<u64>,
    /// Triggering measurement's time → the alert's arrival, µs, for the
    /// alerts that arrived in the window.
    pub alert: Histogram<u64>,
}

impl Default for WindowData {
    fn default() -> WindowData {
        WindowData {
            counts: Counts::default(),
            ingest: histogram(),
            lateness: histogram(),
            alert: histogram(),
        }
    }
}

/// What became of a message that was sent.
pub enum Fate<'a> {
    /// Accepted; it was due at this instant (its ingest latency runs from
    /// then to now).
    Accepted(Instant),
    /// Answered with a refusal, by cause (`status_503`, `refused_rc_135`).
    Refused(&'a str),
    /// Not answered, by cause (`timeout`, `closed`, `no_outcome`).
    Failed(&'a str),
}

/// Microseconds from `due` to now (0 if `due` is later).
fn micros_since(due: Instant) -> u64 {
    u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl WindowData {
    /// Counts a sent message's fate.
    pub fn sent(&mut self, fate: Fate<'_>) {
        self.counts.sent += 1;
        match fate {
            Fate::Accepted(due) => {
                self.counts.accepted += 1;
                let _ = self.ingest.record(micros_since(due).max(1));
            }
            Fate::Refused(cause) => {
                self.counts.refused += 1;
                self.counts.cause(cause);
            }
            Fate::Failed(cause) => {
                self.counts.failed += 1;
                self.counts.cause(cause);
            }
        }
    }

    /// Counts a message the generator dropped, by cause (`dropped_late`,
    /// `dropped_queue_full`).
    pub fn dropped(&mut self, cause: &str) {
        self.counts.dropped += 1;
        self.counts.cause(cause);
    }

    /// Adds `other` into this one (exact: HDR histograms add count for count).
    pub fn add(&mut self, other: &WindowData) {
        self.counts.add(&other.counts);
        // Auto-resizing histograms of equal precision always add.
        let _ = self.ingest.add(&other.ingest);
        let _ = self.lateness.add(&other.lateness);
        let _ = self.alert.add(&other.alert);
    }
}

/// Records into windows; one per task, behind its own mutex (uncontended
/// but for the collector's visits).
#[derive(Debug, Default)]
pub struct Recorder {
    windows: BTreeMap<u64, WindowData>,
}

impl Recorder {
    /// The window `index`, created when first used.
    pub fn window(&mut self, index: u64) -> &mut WindowData {
        self.windows.entry(index).or_default()
    }

    /// Adds the counts of the windows still open into `into`.
    pub fn peek_counts(&self, into: &mut Counts) {
        for w in self.windows.values() {
            into.add(&w.counts);
        }
    }

    /// Moves out every window before `end` (all of them for `u64::MAX`).
    pub fn take_before(&mut self, end: u64) -> BTreeMap<u64, WindowData> {
        let rest = self.windows.split_off(&end);
        std::mem::replace(&mut self.windows, rest)
    }
}

/// A latency distribution as the report shows it, ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// 99.9th percentile, ms.
    pub p999: f64,
    /// Largest, ms.
    pub max: f64,
    /// Mean, ms.
    pub mean: f64,
}

impl Percentiles {
    /// The summary of a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1_000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1_000.0,
        }
    }
}

/// One window in the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowSummary {
    /// Index (start = index × window).
    pub index: u64,
    /// Start on the scenario timeline, s.
    pub start_s: f64,
    /// Messages by fate.
    pub counts: Counts,
    /// Ingest latency, ms.
    pub ingest_ms: Percentiles,
    /// Generator lateness, ms.
    pub lateness_ms: Percentiles,
    /// Alert latency of the alerts that arrived in the window, ms.
    #[serde(default)]
    pub alert_ms: Percentiles,
}

/// A threshold's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThresholdResult {
    /// As written in the scenario.
    pub threshold: String,
    /// Whether it held.
    pub passed: bool,
    /// The whole run's value (or the worst window's, for `per`), in the
    /// threshold's unit (ms or %); `None`: nothing was measured.
    pub value: Option<f64>,
    /// Starts of the windows that failed it (`per` thresholds), s; at most
    /// [`MAX_LISTED`].
    pub failing_windows_s: Vec<f64>,
    /// How many windows failed it.
    pub failing_windows: u64,
}

/// Most failing windows listed per threshold.
pub const MAX_LISTED: usize = 100;

/// The value of `metric` over `data`, in ms or %.
pub fn value(metric: Metric, data: &WindowData) -> Option<f64> {
    let latency = |h: &Histogram<u64>, q: f64| {
        (!h.is_empty()).then(|| {
            if q < 0.0 {
                h.mean() / 1_000.0
            } else if q >= 1.0 {
                h.max() as f64 / 1_000.0
            } else {
                h.value_at_quantile(q) as f64 / 1_000.0
            }
        })
    };
    match metric {
        Metric::Ingest(q) => latency(&data.ingest, q),
        Metric::Lateness(q) => latency(&data.lateness, q),
        Metric::Alert(q) => latency(&data.alert, q),
        Metric::Errors => data.counts.errors_pct(),
        Metric::Drops => data.counts.drops_pct(),
    }
}

fn holds(t: &Threshold, value: Option<f64>) -> bool {
    match value {
        None => true,
        Some(v) if t.inclusive => v <= t.bound,
        Some(v) => v < t.bound,
    }
}

struct Group {
    per_windows: u64,
    index: Option<u64>,
    data: WindowData,
}

/// Takes closed windows in order and keeps only what the report needs:
/// the run's totals, one summary per window, and the thresholds' state.
/// Each window's histograms are written to the interval log, then dropped,
/// so memory does not grow with the run's length.
pub struct Aggregator {
    window_ms: u64,
    thresholds: Vec<Threshold>,
    results: Vec<ThresholdResult>,
    groups: Vec<Option<Group>>,
    /// The whole run.
    pub total: WindowData,
    /// Every window closed so far.
    pub windows: Vec<WindowSummary>,
}

impl Aggregator {
    /// An aggregator for windows `window_ms` wide.
    pub fn new(window_ms: u64, thresholds: &[Threshold]) -> Aggregator {
        Aggregator {
            window_ms,
            thresholds: thresholds.to_vec(),
            results: thresholds
                .iter()
                .map(|t| ThresholdResult {
                    threshold: t.text.clone(),
                    passed: true,
                    value: None,
                    failing_windows_s: Vec::new(),
                    failing_windows: 0,
                })
                .collect(),
            groups: thresholds
                .iter()
                .map(|t| {
                    t.per_ms.map(|per| Group {
                        per_windows: (per / window_ms).max(1),
                        index: None,
                        data: WindowData::default(),
                    })
                })
                .collect(),
            total: WindowData::default(),
            windows: Vec::new(),
        }
    }

    /// Takes window `index` (in increasing order). Returns whether a
    /// `per` threshold failed on a group this closed.
    pub fn close(&mut self, index: u64, data: WindowData) -> bool {
        if let Some(last) = self.windows.last_mut()
            && index <= last.index
        {
            // A straggler for a window already closed (it cannot happen
            // within the settle time; kept exact in the totals if it does).
            if last.index == index {
                last.counts.add(&data.counts);
            }
            self.total.add(&data);
            return false;
        }
        let mut failed = false;
        for i in 0..self.thresholds.len() {
            let Some(group) = &mut self.groups[i] else {
                continue;
            };
            let g = index / group.per_windows;
            if group.index.is_some_and(|open| open != g) {
                failed |= self.finish_group(i);
            }
            let Some(group) = &mut self.groups[i] else {
                continue;
            };
            group.index = Some(g);
            group.data.add(&data);
        }
        self.total.add(&data);
        self.windows.push(WindowSummary {
            index,
            start_s: (index * self.window_ms) as f64 / 1_000.0,
            ingest_ms: Percentiles::of(&data.ingest),
            lateness_ms: Percentiles::of(&data.lateness),
            alert_ms: Percentiles::of(&data.alert),
            counts: data.counts,
        });
        failed
    }

    fn finish_group(&mut self, i: usize) -> bool {
        let Some(group) = &mut self.groups[i] else {
            return false;
        };
        let Some(g) = group.index.take() else {
            return false;
        };
        let data = std::mem::take(&mut group.data);
        let start_s = (g * group.per_windows * self.window_ms) as f64 / 1_000.0;
        let t = &self.thresholds[i];
        let v = value(t.metric, &data);
        let result = &mut self.results[i];
        if let Some(v) = v {
            result.value = Some(result.value.map_or(v, |w: f64| w.max(v)));
        }
        if holds(t, v) {
            return false;
        }
        result.passed = false;
        result.failing_windows += 1;
        if result.failing_windows_s.len() < MAX_LISTED {
            result.failing_windows_s.push(start_s);
        }
        true
    }

    /// Closes the open groups and judges the whole-run thresholds.
    pub fn finish(mut self) -> Finished {
        for i in 0..self.thresholds.len() {
            self.finish_group(i);
            let t = &self.thresholds[i];
            if t.per_ms.is_none() {
                let v = value(t.metric, &self.total);
                self.results[i].value = v;
                self.results[i].passed = holds(t, v);
            }
        }
        Finished {
            total: self.total,
            windows: self.windows,
            thresholds: self.results,
        }
    }
}

/// What an aggregation ends with.
pub struct Finished {
    /// The whole run.
    pub total: WindowData,
    /// Every window.
    pub windows: Vec<WindowSummary>,
    /// Every threshold's verdict.
    pub thresholds: Vec<ThresholdResult>,
}

/// Tags of the interval log.
pub const INGEST_TAG: &str = "ingest";
/// The generator-lateness tag.
pub const LATENESS_TAG: &str = "lateness";
/// The alert-latency tag (written only for windows with alerts).
pub const ALERT_TAG: &str = "alert";

/// Writes a window's histograms to the interval log (start and length on
/// the scenario timeline).
pub fn log_window<W: std::io::Write, S: Serializer>(
    log: &mut IntervalLogWriter<'_, '_, W, S>,
    index: u64,
    window_ms: u64,
    data: &WindowData,
) -> std::io::Result<()> {
    let start = Duration::from_millis(index * window_ms);
    let length = Duration::from_millis(window_ms);
    for (tag, h) in [
        (INGEST_TAG, &data.ingest),
        (LATENESS_TAG, &data.lateness),
        (ALERT_TAG, &data.alert),
    ] {
        if tag == ALERT_TAG && h.is_empty() {
            continue;
        }
        log.write_histogram(h, start, length, Tag::new(tag))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    Ok(())
}

/// Windows' histograms from an interval log by index: (ingest, lateness,
/// alert).
pub type LoggedWindows = BTreeMap<u64, (Histogram<u64>, Histogram<u64>, Histogram<u64>)>;

/// Reads an interval log written by [`log_window`]: histograms by window
/// index, as (ingest, lateness, alert).
pub fn read_log(text: &[u8], window_ms: u64) -> Result<LoggedWindows, String> {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut out = LoggedWindows::new();
    let mut deserializer = Deserializer::new();
    for (n, entry) in IntervalLogIterator::new(text).enumerate() {
        let entry = entry.map_err(|e| format!("entry {}: {e:?}", n + 1))?;
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let start_ms = u64::try_from(h.start_timestamp().as_millis()).unwrap_or(u64::MAX);
        if start_ms % window_ms != 0 {
            return Err(format!(
                "entry {}: starts at {start_ms} ms, not on a {window_ms} ms window",
                n + 1
            ));
        }
        let bytes = base64_decode(h.encoded_histogram())
            .ok_or_else(|| format!("entry {}: the histogram is not base64", n + 1))?;
        let decoded: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("entry {}: cannot decode the histogram: {e:?}", n + 1))?;
        let mut grown = histogram();
        grown
            .add(&decoded)
            .map_err(|e| format!("entry {}: {e:?}", n + 1))?;
        let slot = out
            .entry(start_ms / window_ms)
            .or_insert_with(|| (histogram(), histogram(), histogram()));
        let target = match h.tag().map(|t| t.as_str()) {
            Some(INGEST_TAG) => &mut slot.0,
            Some(LATENESS_TAG) => &mut slot.1,
            Some(ALERT_TAG) => &mut slot.2,
            other => return Err(format!("entry {}: unknown tag {other:?}", n + 1)),
        };
        target
            .add(&grown)
            .map_err(|e| format!("entry {}: {e:?}", n + 1))?;
    }
    Ok(out)
}

/// Standard base64 (with padding), as the interval log writes it.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim().trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = chunk.len().saturating_sub(1);
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

    #[test]
    fn the_interval_log_reads_back_count_for_count() {
        let mut data = WindowData::default();
        for us in [1u64, 250, 1_000, 12_345, 4_000_000] {
            data.ingest.record(us).unwrap();
            data.lateness.record(us / 2 + 1).unwrap();
        }
        let mut alerted = data.clone();
        alerted.alert.record(2_500_000).unwrap();
        let mut bytes = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        {
            let mut log = IntervalLogWriterBuilder::new()
                .begin_log_with(&mut bytes, &mut serializer)
                .unwrap();
            log_window(&mut log, 3, 1_000, &data).unwrap();
            log_window(&mut log, 7, 1_000, &alerted).unwrap();
        }
        let read = read_log(&bytes, 1_000).unwrap();
        assert_eq!(read.keys().copied().collect::<Vec<_>>(), vec![3, 7]);
        let (ingest, lateness, alert) = &read[&7];
        assert_eq!(ingest, &data.ingest);
        assert_eq!(lateness, &data.lateness);
        assert_eq!(alert, &alerted.alert);
        assert!(read[&3].2.is_empty(), "no alerts, no alert entry");
        assert!(read_log(&bytes, 3_000).is_err(), "windows must line up");
    }

    #[test]
    fn per_window_thresholds_name_the_failing_windows() {
        let t = crate::scenario::load::parse_threshold("errors < 10% per 2s").unwrap();
        let mut agg = Aggregator::new(1_000, std::slice::from_ref(&t));
        let window = |scheduled, failed| WindowData {
            counts: Counts {
                scheduled,
                sent: scheduled,
                accepted: scheduled - failed,
                failed,
                ..Counts::default()
            },
            ..WindowData::default()
        };
        assert!(!agg.close(0, window(10, 0)));
        assert!(!agg.close(1, window(10, 1)));
        assert!(!agg.close(2, window(10, 5)));
        assert!(agg.close(4, window(10, 0)), "group 1 (2-4 s) had 25 %");
        let done = agg.finish();
        assert_eq!(done.thresholds[0].failing_windows_s, vec![2.0]);
        assert!(!done.thresholds[0].passed);
        assert_eq!(done.total.counts.scheduled, 40);
    }
}
