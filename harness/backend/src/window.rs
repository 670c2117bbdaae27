//! A bounded window of one parameter's recent samples and their median.
//!
//! A pulse oximeter reports once a second and a single motion artefact can
//! read 80 %; a cuff reports every 15 minutes. Scoring the median of the
//! samples in the last `smoothing` of measurement time handles both: the
//! artefact is outvoted, and a sparse parameter's window holds just its
//! latest value.

use std::collections::VecDeque;

/// Most samples one window keeps, whatever the smoothing span: at 1 Hz and
/// the default 60 s span a window holds 60; the cap bounds memory for faster
/// or misbehaving senders (the oldest go first).
pub const MAX_WINDOW_SAMPLES: usize = 256;

/// What happened to a pushed sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The sample is in the window.
    Kept,
    /// The sample was older than the newest by the span or more; ignored.
    Stale,
}

/// Samples of one parameter, sorted by measurement time, spanning less than
/// the smoothing span back from the newest.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    /// (measured at, ms since the Unix epoch; value), oldest first.
    samples: VecDeque<(u64, f64)>,
    /// Median of `samples`, kept up to date on every push.
    median: Option<f64>,
}

impl Window {
    /// Adds a sample. A sample is in the window when it is the newest or
    /// less than `span_ms` older than the newest (the window is the half-open
    /// interval (newest − span, newest]); with a zero span only samples at
    /// the newest time count.
    pub(crate) fn push(&mut self, measured_ms: u64, value: f64, span_ms: u64) -> Pushed {
        let newest_ms = match self.samples.back() {
            Some(&(newest_ms, _)) => newest_ms,
            None => measured_ms,
        };
        if !in_window(measured_ms, newest_ms, span_ms) {
            return Pushed::Stale;
        }
        // Equal times keep arrival order: insert after every sample at or
        // before this one.
        let at = self.samples.partition_point(|&(t, _)| t <= measured_ms);
        self.samples.insert(at, (measured_ms, value));
        let newest_ms = newest_ms.max(measured_ms);
        while let Some(&(t, _)) = self.samples.front() {
            if in_window(t, newest_ms, span_ms) && self.samples.len() <= MAX_WINDOW_SAMPLES {
                break;
            }
            self.samples.pop_front();
        }
        self.median = median(&self.samples);
        debug_assert!(self.samples.len() <= MAX_WINDOW_SAMPLES);
        Pushed::Kept
    }

    /// Median of the samples in the window; `None` before the first sample.
    pub(crate) fn median(&self) -> Option<f64> {
        self.median
    }

    /// The newest sample, (measured at in ms since the epoch, value).
    pub(crate) fn newest(&self) -> Option<(u64, f64)> {
        self.samples.back().copied()
    }

    /// Number of samples in the window.
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }
}

fn in_window(measured_ms: u64, newest_ms: u64, span_ms: u64) -> bool {
    measured_ms >= newest_ms || newest_ms - measured_ms < span_ms
}

/// Median without allocating: the mean of the two middle values for an even
/// count.
fn median(samples: &VecDeque<(u64, f64)>) -> Option<f64> {
    let mut values = [0.0_f64; MAX_WINDOW_SAMPLES];
    let n = samples.len().min(MAX_WINDOW_SAMPLES);
    for (slot, &(_, v)) in values.iter_mut().zip(samples.iter()) {
        *slot = v;
    }
    let values = &mut values[..n];
    values.sort_unstable_by(f64::total_cmp);
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outlier_is_outvoted() {
        let mut w = Window::default();
        for s in 0..30 {
            let v = if s == 15 { 80.0 } else { 97.0 };
            w.push(s * 1000, v, 60_000);
        }
        assert_eq!(w.median(), Some(97.0));
    }

    #[test]
    fn old_samples_leave_and_late_ones_are_stale() {
        let mut w = Window::default();
        w.push(0, 1.0, 10_000);
        w.push(5_000, 2.0, 10_000);
        w.push(10_000, 3.0, 10_000);
        assert_eq!(w.len(), 2, "the sample exactly one span old has left");
        assert_eq!(w.push(0, 9.0, 10_000), Pushed::Stale);
        assert_eq!(w.push(7_000, 4.0, 10_000), Pushed::Kept);
        assert_eq!(w.len(), 3);
        assert_eq!(w.newest(), Some((10_000, 3.0)));
        assert_eq!(w.median(), Some(3.0));
    }

    #[test]
    fn zero_span_keeps_the_latest_only() {
        let mut w = Window::default();
        w.push(0, 1.0, 0);
        w.push(1, 2.0, 0);
        assert_eq!((w.len(), w.median()), (1, Some(2.0)));
    }

    #[test]
    fn the_cap_holds() {
        let mut w = Window::default();
        for s in 0..1000 {
            w.push(s, s as f64, u64::MAX);
        }
        assert_eq!(w.len(), MAX_WINDOW_SAMPLES);
        assert_eq!(w.newest(), Some((999, 999.0)));
    }
}
