//! The network hop between a device and the backend.

use bevy_ecs::component::Component;
use bevy_ecs::resource::Resource;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::config::NetworkConfig;
use crate::rng::StreamRng;
use crate::truth::Measurement;

/// z of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874;

/// A hop with log-normally distributed latency and independent loss.
#[derive(Component, Clone, Debug)]
pub struct Link {
    /// ln of the median latency in ms (`None` for a zero-latency link).
    log_median: Option<f64>,
    /// Shape of the log-normal, fitted so its 99th percentile is the configured one.
    sigma: f64,
    /// Probability of loss per message.
    loss_p: f64,
}

impl Link {
    /// A link from its configuration.
    pub fn new(config: &NetworkConfig) -> Link {
        let log_median = (config.latency_median_ms > 0.0).then(|| config.latency_median_ms.ln());
        let sigma = match log_median {
            Some(mu) => ((config.latency_p99_ms.ln() - mu) / Z_P99).max(0.0),
            None => 0.0,
        };
        Link {
            log_median,
            sigma,
            loss_p: config.loss_pct / 100.0,
        }
    }

    /// Latency of one message in ms, or `None` if the message is lost.
    pub fn transmit<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<u64> {
        // Always draw both numbers so a message's fate never shifts the
        // stream for the next one.
        let lost = rng.random::<f64>() < self.loss_p;
        let z: f64 = StandardNormal.sample(rng);
        if lost {
            return None;
        }
        Some(match self.log_median {
            Some(mu) => (mu + self.sigma * z).exp().round() as u64,
            None => 0,
        })
    }
}

/// The device's network stream.
#[derive(Component)]
pub struct NetRng(pub StreamRng);

/// Messages on the wire, ordered by (arrival time, device stable id, seq) so
/// arrivals come out in one total order whatever the spawn order.
#[derive(Resource, Default)]
pub struct InFlight {
    heap: BinaryHeap<Reverse<Pending>>,
}

/// A message on the wire. Ordered by its key only: (device, seq) is unique,
/// so the key alone is a total order.
struct Pending {
    delivered_ms: u64,
    device_stable_id: u64,
    measurement: Measurement,
}

impl Pending {
    fn key(&self) -> (u64, u64, u64) {
        (
            self.delivered_ms,
            self.device_stable_id,
            self.measurement.seq,
        )
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl InFlight {
    /// Puts a measurement on the wire, arriving at `delivered_ms`.
    pub fn push(&mut self, measurement: Measurement, device_stable_id: u64, delivered_ms: u64) {
        self.heap.push(Reverse(Pending {
            delivered_ms,
            device_stable_id,
            measurement,
        }));
    }

    /// Takes the next message arriving at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<(Measurement, u64)> {
        if self.heap.peek()?.0.delivered_ms > now_ms {
            return None;
        }
        let Reverse(pending) = self.heap.pop()?;
        Some((pending.measurement, pending.delivered_ms))
    }

    /// Messages still on the wire.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is on the wire.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    #[test]
    fn latency_matches_configured_median_and_p99() {
        let link = Link::new(&NetworkConfig {
            latency_median_ms: 20.0,
            latency_p99_ms: 200.0,
            loss_pct: 0.0,
        });
        let mut rng = rng::stream(1, 1, "net");
        let mut samples: Vec<u64> = (0..100_000)
            .map(|_| link.transmit(&mut rng).unwrap())
            .collect();
        samples.sort_unstable();
        let median = samples[50_000] as f64;
        let p99 = samples[99_000] as f64;
        assert!((18.0..=22.0).contains(&median), "median {median}");
        assert!((180.0..=220.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn loss_rate_matches_configuration() {
        let link = Link::new(&NetworkConfig {
            latency_median_ms: 10.0,
            latency_p99_ms: 10.0,
            loss_pct: 5.0,
        });
        let mut rng = rng::stream(1, 1, "net");
        let lost = (0..100_000)
            .filter(|_| link.transmit(&mut rng).is_none())
            .count();
        assert!((4_500..=5_500).contains(&lost), "lost {lost}");
    }
}
