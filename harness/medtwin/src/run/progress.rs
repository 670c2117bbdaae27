//! Live progress on stderr, so a user never watches a silent terminal: on
//! a terminal an indicatif bar redrawn twice a second, otherwise a plain
//! line every [`LINE_EVERY`]. Each says the simulated time reached, sends
//! per second, failures by cause, alerts received, the backlog and the
//! send lag; while the run waits for late alerts, it says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::clock::SimClock;
use crate::intake::Inbox;
use crate::transport::Watcher;

/// A plain progress line at least this often.
pub const LINE_EVERY: Duration = Duration::from_secs(4);
/// The bar's redraw interval.
const BAR_EVERY: Duration = Duration::from_millis(500);

/// How to show progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing (`--quiet`).
    Off,
    /// Plain lines on stderr, each starting with the label if any.
    Lines {
        /// E.g. the scenario and seed, in a suite.
        label: Option<String>,
    },
    /// An indicatif bar on stderr (a terminal).
    Bar,
}

/// The run's phase, as progress shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Sending telemetry.
    Sending = 0,
    /// Simulated time is over; waiting for late alerts.
    Grace = 1,
    /// Stopping early (signal or deadline).
    Stopping = 2,
}

/// What progress reads.
pub struct Sources {
    /// Simulated time.
    pub clock: Arc<SimClock>,
    /// The simulated duration, ms.
    pub duration_ms: u64,
    /// The transport's counters.
    pub transport: Watcher,
    /// Alerts received.
    pub inbox: Arc<Inbox>,
    /// The phase.
    pub phase: Arc<AtomicU8>,
}

/// Sets the phase shown.
pub fn set_phase(phase: &AtomicU8, p: Phase) {
    phase.store(p as u8, Ordering::Relaxed);
}

/// Starts showing progress; abort the task to stop (the bar clears).
pub fn start(mode: Progress, sources: Sources) -> Option<JoinHandle<()>> {
    match mode {
        Progress::Off => None,
        Progress::Lines { label } => Some(tokio::spawn(lines(sources, label))),
        Progress::Bar => Some(tokio::spawn(bar(sources))),
    }
}

struct Rate {
    at: Instant,
    sent: u64,
}

/// One status text: `sim 01:02:03/06:00:00 · 1234 sends/s · ...`.
fn status(src: &Sources, rate: &mut Rate) -> (u64, String) {
    let now = Instant::now();
    let sim_ms = src.clock.sim_at(now).min(src.duration_ms);
    let snap = src.transport.snapshot();
    let dt = now
        .saturating_duration_since(rate.at)
        .as_secs_f64()
        .max(1e-3);
    let per_s = (snap.stats.sent.saturating_sub(rate.sent)) as f64 / dt;
    *rate = Rate {
        at: now,
        sent: snap.stats.sent,
    };
    let failures = if snap.stats.by_cause.is_empty() {
        "no failures".to_owned()
    } else {
        let causes: Vec<String> = snap
            .stats
            .by_cause
            .iter()
            .map(|(cause, n)| format!("{cause} {n}"))
            .collect();
        format!("not accepted: {}", causes.join(", "))
    };
    let phase = match src.phase.load(Ordering::Relaxed) {
        1 => "waiting for late alerts · ",
        2 => "stopping · ",
        _ => "",
    };
    let text = format!(
        "{phase}sim {}/{} · {per_s:.0} sends/s · {} accepted · {failures} · {} alerts · backlog {} · lag p99 {:.0} ms",
        clock(sim_ms),
        clock(src.duration_ms),
        snap.stats.accepted,
        src.inbox.len(),
        snap.backlog,
        snap.lag_p99_ms
    );
    (sim_ms, text)
}

async fn lines(src: Sources, label: Option<String>) {
    let mut rate = Rate {
        at: Instant::now(),
        sent: 0,
    };
    let prefix = label.map_or_else(String::new, |l| format!("{l}: "));
    loop {
        tokio::time::sleep(LINE_EVERY).await;
        let (_, text) = status(&src, &mut rate);
        eprintln!("{prefix}{text}");
    }
}

async fn bar(src: Sources) {
    let bar = ProgressBar::with_draw_target(Some(src.duration_ms), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:24} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let mut rate = Rate {
        at: Instant::now(),
        sent: 0,
    };
    // Clears the bar when the task is aborted (dropped).
    struct Clear(ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    loop {
        let (sim_ms, text) = status(&src, &mut rate);
        bar.0.set_position(sim_ms);
        bar.0.set_message(text);
        tokio::time::sleep(BAR_EVERY).await;
    }
}

/// `1d 02:03:04` or `02:03:04`.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_as_durations() {
        assert_eq!(clock(3_723_000), "01:02:03");
        assert_eq!(clock(90_000_000), "1d 01:00:00");
    }
}
