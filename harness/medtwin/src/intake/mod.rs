//! Alerts in: every intake (today the webhook, [`webhook`]) delivers into
//! one bounded [`Inbox`], which places each alert in simulated time as it
//! arrives and counts everything it refuses by reason. Nothing is dropped
//! silently.

pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use medtwin_wire::AlertMessage;

use crate::clock::SimClock;

/// Most alerts one run keeps; further ones are counted, not stored.
pub const MAX_ALERTS: usize = 1_000_000;
/// How many refused payloads are kept as examples for the report.
const MAX_SAMPLES: usize = 5;
/// Bytes of a refused payload kept in its example.
const SAMPLE_BYTES: usize = 120;

/// An alert as received.
#[derive(Clone, Debug)]
pub struct ReceivedAlert {
    /// What the target sent.
    pub message: AlertMessage,
    /// Simulated time it arrived (see [`SimClock::sim_at`]).
    pub received_sim_ms: u64,
    /// Wall instant it arrived.
    pub received_at: Instant,
}

/// What the intakes refused, by reason, with a few examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refused {
    /// Missing or wrong credentials (401).
    pub unauthorized: u64,
    /// A payload that is not a valid alert (400).
    pub malformed: u64,
    /// A body over the size limit (413).
    pub too_large: u64,
    /// A body the client stopped sending part-way.
    pub cut_off: u64,
    /// A body slower than the body-read timeout.
    pub body_timeout: u64,
    /// Connections whose request headers were slower than the timeout.
    pub header_timeout: u64,
    /// Connections closed on arrival: too many were open.
    pub too_many_connections: u64,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: u64,
    /// Alerts beyond [`MAX_ALERTS`].
    pub overflow: u64,
    /// Up to five examples: reason and the first bytes of the payload.
    pub samples: Vec<String>,
}

impl Refused {
    /// Total refused.
    pub fn total(&self) -> u64 {
        self.unauthorized
            + self.malformed
            + self.too_large
            + self.cut_off
            + self.body_timeout
            + self.header_timeout
            + self.too_many_connections
            + self.dropped_at_shutdown
            + self.overflow
    }

    /// Adds a listener's connection-level refusals.
    pub fn add_connections(&mut self, c: &medtwin_listen::ConnectionStats) {
        self.header_timeout += c.header_timeouts;
        self.too_many_connections += c.too_many_connections;
        self.dropped_at_shutdown += c.dropped_at_shutdown;
    }
}

/// Why an intake refused a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or wrong credentials.
    Unauthorized,
    /// Not a valid alert; the parser's reason.
    Malformed(String),
    /// Over the size limit.
    TooLarge,
    /// Cut off part-way; the reason.
    CutOff(String),
    /// Too slow.
    BodyTimeout,
    /// The inbox is full.
    Overflow,
}

/// When a payload arrived.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// Wall instant.
    pub at: Instant,
    /// Simulated time (see [`SimClock::sim_at`]).
    pub sim_ms: u64,
}

#[derive(Default)]
struct Held {
    alerts: Vec<ReceivedAlert>,
    refused: Refused,
}

/// The bounded inbox every intake delivers into.
pub struct Inbox {
    clock: Arc<SimClock>,
    held: Mutex<Held>,
}

impl Inbox {
    /// An empty inbox placing alerts on `clock`.
    pub fn new(clock: Arc<SimClock>) -> Arc<Inbox> {
        Arc::new(Inbox {
            clock,
            held: Mutex::new(Held::default()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (each update is one push or one increment).
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stamps an arrival now, in wall and simulated time. An intake calls
    /// it first thing, before reading or checking the payload.
    pub fn arrival(&self) -> Arrival {
        let at = Instant::now();
        Arrival {
            at,
            sim_ms: self.clock.sim_at(at),
        }
    }

    /// Takes one alert; refuses it when the inbox is full.
    pub fn accept(&self, message: AlertMessage, arrival: Arrival) -> Result<(), Refusal> {
        let mut held = self.held();
        if held.alerts.len() >= MAX_ALERTS {
            held.refused.overflow += 1;
            return Err(Refusal::Overflow);
        }
        held.alerts.push(ReceivedAlert {
            message,
            received_sim_ms: arrival.sim_ms,
            received_at: arrival.at,
        });
        Ok(())
    }

    /// Counts a refused payload, keeping its first bytes as an example.
    pub fn refuse(&self, why: &Refusal, payload: &[u8]) {
        let mut held = self.held();
        let reason = match why {
            Refusal::Unauthorized => {
                held.refused.unauthorized += 1;
                "unauthorized".to_owned()
            }
            Refusal::Malformed(error) => {
                held.refused.malformed += 1;
                format!("malformed ({error})")
            }
            Refusal::TooLarge => {
                held.refused.too_large += 1;
                "too large".to_owned()
            }
            Refusal::CutOff(error) => {
                held.refused.cut_off += 1;
                format!("cut off ({error})")
            }
            Refusal::BodyTimeout => {
                held.refused.body_timeout += 1;
                "body timeout".to_owned()
            }
            Refusal::Overflow => {
                held.refused.overflow += 1;
                return;
            }
        };
        if held.refused.samples.len() < MAX_SAMPLES {
            let head = String::from_utf8_lossy(&payload[..payload.len().min(SAMPLE_BYTES)]);
            held.refused.samples.push(format!("{reason}: {head}"));
        }
    }

    /// Alerts received so far.
    pub fn len(&self) -> usize {
        self.held().alerts.len()
    }

    /// Whether no alert has been received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a listener's connection-level refusals.
    pub fn add_connections(&self, c: &medtwin_listen::ConnectionStats) {
        self.held().refused.add_connections(c);
    }

    /// Refusals so far (for live progress).
    pub fn refused_total(&self) -> u64 {
        self.held().refused.total()
    }

    /// Everything received and refused; the inbox is empty afterwards.
    pub fn take(&self) -> (Vec<ReceivedAlert>, Refused) {
        let held = std::mem::take(&mut *self.held());
        (held.alerts, held.refused)
    }
}

/// A running alert intake: it delivers into an [`Inbox`] until stopped.
pub trait Intake: Send {
    /// Where the target should send its alerts (a URL, a topic, ...).
    fn address(&self) -> String;
    /// Stops receiving; whatever arrived stays in the inbox.
    fn stop(self) -> impl Future<Output = ()> + Send;
}

/// Alerts received, by kind (for summaries).
pub fn count_by_kind(alerts: &[ReceivedAlert]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for alert in alerts {
        *out.entry(alert.message.kind.clone()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Clock;
    use medtwin_wire::Priority;

    fn alert(kind: &str) -> AlertMessage {
        AlertMessage {
            schema: None,
            alert_id: None,
            patient_id: "p".into(),
            kind: kind.into(),
            priority: Priority::High,
            measurement_time: None,
            score: None,
        }
    }

    #[test]
    fn the_inbox_places_counts_and_bounds() {
        let clock = Arc::new(SimClock::new(Clock::Virtual, Instant::now()));
        clock.advance_frontier(42_000);
        let inbox = Inbox::new(clock);
        inbox.accept(alert("a"), inbox.arrival()).unwrap();
        inbox.accept(alert("b"), inbox.arrival()).unwrap();
        inbox.refuse(&Refusal::Unauthorized, b"{}");
        inbox.refuse(&Refusal::Malformed("expected value".into()), &[b'x'; 500]);
        let (alerts, refused) = inbox.take();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].received_sim_ms, 42_000);
        assert_eq!((refused.unauthorized, refused.malformed), (1, 1));
        assert_eq!(refused.samples.len(), 2);
        assert!(refused.samples[1].len() < 160, "{}", refused.samples[1]);
        assert_eq!(count_by_kind(&alerts).get("a"), Some(&1));
        assert!(inbox.is_empty());
    }
}
