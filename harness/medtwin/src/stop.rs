//! Stopping a run early: a signal (SIGINT, SIGTERM) or the run's wall-time
//! deadline. One [`Stop`] is shared by the driver, the transport's lanes
//! and the wind-down; whoever sees it stops taking new work, and the run
//! still writes its report, marked interrupted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Why a run stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// The run passed its wall-time deadline (`--max-wall`).
    Deadline,
}

impl StopReason {
    /// `sigint`, `sigterm` or `deadline`.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Interrupt => "sigint",
            StopReason::Terminate => "sigterm",
            StopReason::Deadline => "deadline",
        }
    }
}

/// A shared, one-way stop switch (the first reason wins).
#[derive(Clone, Debug)]
pub struct Stop {
    tx: Arc<watch::Sender<Option<StopReason>>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    /// A switch that has not been thrown.
    pub fn new() -> Stop {
        Stop {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Throws the switch, unless it already was.
    pub fn trigger(&self, reason: StopReason) {
        self.tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        *self.tx.borrow()
    }

    /// Whether the switch is thrown.
    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// Resolves once the switch is thrown.
    pub async fn stopped(&self) -> StopReason {
        let mut rx = self.tx.subscribe();
        // The guard is dropped before any other await.
        let reason = rx.wait_for(Option::is_some).await.ok().and_then(|r| *r);
        match reason {
            Some(reason) => reason,
            // The sender lives in `self`: it cannot be gone.
            None => std::future::pending().await,
        }
    }

    /// Resolves `grace` after the switch is thrown: work already under way
    /// gets that long to finish.
    pub async fn stopped_for(&self, grace: Duration) {
        self.stopped().await;
        tokio::time::sleep(grace).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins_and_wakes_every_waiter() {
        let stop = Stop::new();
        assert!(!stop.is_stopped());
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.stopped().await })
        };
        tokio::task::yield_now().await;
        stop.trigger(StopReason::Deadline);
        stop.trigger(StopReason::Interrupt);
        assert_eq!(waiter.await.unwrap(), StopReason::Deadline);
        assert_eq!(stop.reason(), Some(StopReason::Deadline));
        // Already stopped: resolves at once.
        assert_eq!(stop.stopped().await, StopReason::Deadline);
    }
}
