//! The checker's truth side, fed what the target actually took: each
//! step's records reach the observer only once the transport has said, for
//! every delivery of the step, whether the target accepted it and when the
//! harness sent it. So rule oracles and first-abnormal-delivery times see
//! only accepted data, and the latency decomposition shows the harness's
//! own send lag apart from the backend's time.
//!
//! Runs on its own thread, reading two bounded channels: the steps (from
//! the driver, each before its messages go out) and the acknowledgements
//! (from the transport's lanes, in any order). Acknowledgements for later
//! steps wait in a buffer bounded by the messages in flight.

use std::collections::HashMap;
use std::sync::Arc;

use medtwin_check::Expectation;
use medtwin_check::observe::{Observer, Truth};
use medtwin_sim::StepOutput;
use tokio::sync::mpsc;

use crate::clock::SimClock;
use crate::transport::Ack;

/// Steps waiting for their acknowledgements (bounded memory).
pub const STEPS_PENDING: usize = 64;
/// Acknowledgements queued for the observer.
pub const ACKS_PENDING: usize = 16_384;

/// One step's records, and the ids its deliveries were sent under.
pub struct Step {
    /// The step's records.
    pub out: StepOutput,
    /// Id of its first delivery; the rest follow in order.
    pub first_id: u64,
    /// The step's share of the run's in-flight credit (see
    /// [`super::twin::MAX_IN_FLIGHT`]), given back once it is observed.
    pub credit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What the target took, and the observer's findings.
pub struct Observed {
    /// The truth side's findings on the accepted data.
    pub truth: Truth,
    /// Deliveries the target accepted.
    pub accepted: u64,
    /// Deliveries it did not (refused, failed, or never acknowledged).
    pub not_accepted: u64,
}

/// Observes every step on what the target accepted; returns when both
/// channels are closed.
pub fn run(
    expectations: &[Expectation],
    patients: &[String],
    duration_ms: u64,
    step_ms: u64,
    clock: Arc<SimClock>,
    mut steps: mpsc::Receiver<Step>,
    mut acks: mpsc::Receiver<Ack>,
) -> Observed {
    let mut observer = Observer::new(expectations, patients.len(), duration_ms, step_ms);
    let mut early: HashMap<u64, Ack> = HashMap::new();
    let (mut accepted, mut not_accepted) = (0, 0);
    while let Some(step) = steps.blocking_recv() {
        let n = step.out.deliveries.len();
        let mut got: Vec<Option<Ack>> = (0..n as u64)
            .map(|k| early.remove(&(step.first_id + k)))
            .collect();
        let mut left = got.iter().filter(|a| a.is_none()).count();
        while left > 0 {
            let Some(ack) = acks.blocking_recv() else {
                break; // the lanes are gone: the rest was never answered
            };
            match ack.id.checked_sub(step.first_id) {
                Some(k) if (k as usize) < n => {
                    if got[k as usize].replace(ack).is_none() {
                        left -= 1;
                    }
                }
                _ => {
                    early.insert(ack.id, ack);
                }
            }
        }
        let taken: Vec<Option<u64>> = step
            .out
            .deliveries
            .iter()
            .zip(&got)
            .map(|(d, ack)| {
                let ack = ack.filter(|a| a.accepted)?;
                // Virtual time has no lag: a message is sent at its time.
                let sent = clock.due(d.delivered_ms).map_or(d.delivered_ms, |_| {
                    clock.sim_at(ack.sent_at).max(d.delivered_ms)
                });
                Some(sent)
            })
            .collect();
        let n_taken = taken.iter().filter(|t| t.is_some()).count() as u64;
        accepted += n_taken;
        not_accepted += n as u64 - n_taken;
        observer.step_taken(&step.out, &taken, patients);
    }
    Observed {
        truth: observer.finish(patients),
        accepted,
        not_accepted,
    }
}
