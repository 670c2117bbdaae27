//! The network between a device and the backend: a hop with log-normal
//! latency and Gilbert-Elliott bursty loss, and optionally a gateway that
//! stores and forwards while its uplink is down.

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

/// A hop with log-normally distributed latency and bursty loss: a
/// two-state Gilbert-Elliott channel (every message lost in the bad state,
/// none in the good), per device, whose long-run loss and mean burst length
/// are the configured ones.
#[derive(Component, Clone, Debug)]
pub struct Link {
    /// ln of the median latency in ms (`None` for a zero-latency link).
    log_median: Option<f64>,
    /// Shape of the log-normal, fitted so its 99th percentile is the configured one.
    sigma: f64,
    /// P(good → bad) per message.
    p_gb: f64,
    /// P(bad → good) per message.
    p_bg: f64,
}

/// A device's channel state (Gilbert-Elliott).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    /// In the bad (losing) state.
    pub bad: bool,
}

impl Link {
    /// A link from its configuration.
    pub fn new(config: &NetworkConfig) -> Link {
        let log_median = (config.latency_median_ms > 0.0).then(|| config.latency_median_ms.ln());
        let sigma = match log_median {
            Some(mu) => ((config.latency_p99_ms.ln() - mu) / Z_P99).max(0.0),
            None => 0.0,
        };
        // Stationary bad share π = loss; mean bad sojourn L = 1 / p_bg;
        // π = p_gb / (p_gb + p_bg). L = 1 / (1 - π) makes the state of
        // each message independent of the last (plain Bernoulli loss), and
        // is the least burstiness the model allows.
        let loss = (config.loss_pct / 100.0).clamp(0.0, 1.0);
        let (p_gb, p_bg) = if loss >= 1.0 {
            (1.0, 0.0)
        } else {
            let burst = config.loss_burst.max(1.0 / (1.0 - loss));
            let p_bg = 1.0 / burst;
            ((loss * p_bg / (1.0 - loss)).min(1.0), p_bg)
        };
        Link {
            log_median,
            sigma,
            p_gb,
            p_bg,
        }
    }

    /// Latency of one message in ms, or `None` if the message is lost.
    pub fn transmit<R: Rng + ?Sized>(&self, channel: &mut Channel, rng: &mut R) -> Option<u64> {
        // Always draw both numbers so a message's fate never shifts the
        // stream for the next one.
        let u = rng.random::<f64>();
        let z: f64 = StandardNormal.sample(rng);
        channel.bad = if channel.bad {
            u >= self.p_bg
        } else {
            u < self.p_gb
        };
        if channel.bad {
            return None;
        }
        Some(match self.log_median {
            Some(mu) => (mu + self.sigma * z).exp().round() as u64,
            None => 0,
        })
    }
}

/// The device's network stream and channel state.
#[derive(Component)]
pub struct NetRng(pub StreamRng, pub Channel);

/// A message waiting in a gateway's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Held {
    /// The sending device.
    pub device: bevy_ecs::entity::Entity,
    /// The message.
    pub measurement: Measurement,
}

/// A patient's gateway: uplink state (scheduled outages from faults,
/// random ones by MTBF/MTTR), and the store-and-forward buffer.
#[derive(Component, Debug)]
pub struct Gateway {
    /// Buffer capacity, messages (0: no gateway, messages are lost in an outage).
    pub capacity: u32,
    /// Eviction when full.
    pub eviction: crate::config::Eviction,
    /// Flush rate, messages per second.
    pub flush_per_s: f64,
    /// Fractional messages the flush may still send (carried between steps).
    pub flush_credit: f64,
    /// Scheduled outages, (start, end) simulated ms, sorted.
    pub outages: Vec<(u64, u64)>,
    /// Random outages: mean up time and mean down time, ms.
    pub random: Option<(f64, f64)>,
    /// Random outage state: down, and when it next changes.
    pub random_down: bool,
    /// When the random state next changes, ms.
    pub next_change_ms: u64,
    /// The gateway's own stream (random outages).
    pub rng: StreamRng,
    /// Held messages, oldest first.
    pub buffer: std::collections::VecDeque<Held>,
}

impl Gateway {
    /// Whether the uplink is up at `now_ms` (advancing the random outage
    /// process to then).
    pub fn online(&mut self, now_ms: u64) -> bool {
        if let Some((up_mean, down_mean)) = self.random {
            while self.next_change_ms <= now_ms {
                self.random_down = !self.random_down;
                let mean = if self.random_down { down_mean } else { up_mean };
                // Exponential sojourn, at least 1 ms.
                let u: f64 = self.rng.random::<f64>();
                let length = (-(1.0 - u).ln() * mean).max(1.0);
                self.next_change_ms = self.next_change_ms.saturating_add(length as u64);
            }
        }
        let scheduled = self
            .outages
            .iter()
            .any(|&(start, end)| start <= now_ms && now_ms < end);
        !(scheduled || self.random_down)
    }
}

/// Messages on the wire, and resend timers, ordered by (due time, device
/// stable id, seq, what) so they come out in one total order whatever the
/// spawn order.
#[derive(Resource, Default)]
pub struct InFlight {
    heap: BinaryHeap<Reverse<Pending>>,
    duplicates: usize,
}

/// What a pending entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wire {
    /// The message arrives.
    Arrival,
    /// A second copy arrives (its acknowledgement was lost and it was sent again).
    Duplicate,
    /// The sender's resend timer fires: send attempt `n` (from 1).
    Resend(u32),
}

/// A message on the wire, or a resend waiting. Ordered by its key only:
/// (device, seq, what) is unique, so the key alone is a total order.
#[derive(Debug)]
pub struct Pending {
    /// When it arrives (or the resend fires), ms.
    pub due_ms: u64,
    /// When it was put on the wire, ms.
    pub sent_ms: u64,
    /// The sending device's stable id.
    pub device_stable_id: u64,
    /// The sending device.
    pub sender: bevy_ecs::entity::Entity,
    /// What it is.
    pub wire: Wire,
    /// The message.
    pub measurement: Measurement,
}

impl Pending {
    fn key(&self) -> (u64, u64, u64, Wire) {
        (
            self.due_ms,
            self.device_stable_id,
            self.measurement.seq,
            self.wire,
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
    /// Puts an entry on the wire.
    pub fn push(&mut self, pending: Pending) {
        if pending.wire == Wire::Duplicate {
            self.duplicates += 1;
        }
        self.heap.push(Reverse(pending));
    }

    /// Takes the next entry due at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Pending> {
        if self.heap.peek()?.0.due_ms > now_ms {
            return None;
        }
        let Reverse(pending) = self.heap.pop()?;
        if pending.wire == Wire::Duplicate {
            self.duplicates -= 1;
        }
        Some(pending)
    }

    /// Messages on the wire or waiting to be sent again, not counting
    /// duplicate copies (their original is accounted for already).
    pub fn len(&self) -> usize {
        self.heap.len() - self.duplicates
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
            ..NetworkConfig::IDEAL
        });
        let mut rng = rng::stream(1, 1, "net");
        let mut channel = Channel::default();
        let mut samples: Vec<u64> = (0..100_000)
            .map(|_| link.transmit(&mut channel, &mut rng).unwrap())
            .collect();
        samples.sort_unstable();
        let median = samples[50_000] as f64;
        let p99 = samples[99_000] as f64;
        assert!((18.0..=22.0).contains(&median), "median {median}");
        assert!((180.0..=220.0).contains(&p99), "p99 {p99}");
    }

    /// Long-run loss and mean burst length of `n` messages.
    fn loss_and_bursts(loss_pct: f64, loss_burst: f64, n: usize) -> (f64, f64) {
        let link = Link::new(&NetworkConfig {
            latency_median_ms: 10.0,
            latency_p99_ms: 10.0,
            loss_pct,
            loss_burst,
            gateway: None,
        });
        let mut rng = rng::stream(1, 1, "net");
        let mut channel = Channel::default();
        let (mut lost, mut bursts, mut prev) = (0usize, 0usize, false);
        for _ in 0..n {
            let l = link.transmit(&mut channel, &mut rng).is_none();
            lost += usize::from(l);
            bursts += usize::from(l && !prev);
            prev = l;
        }
        (lost as f64 / n as f64, lost as f64 / bursts.max(1) as f64)
    }

    #[test]
    fn loss_rate_and_burst_length_match_configuration() {
        // Independent: bursts as short as Bernoulli gives (1 / (1 - p)).
        let (loss, burst) = loss_and_bursts(5.0, 1.0, 200_000);
        assert!((0.045..=0.055).contains(&loss), "loss {loss}");
        assert!((1.0..=1.12).contains(&burst), "burst {burst}");
        // Bursty: same long-run loss, runs of ~8.
        let (loss, burst) = loss_and_bursts(5.0, 8.0, 400_000);
        assert!((0.042..=0.058).contains(&loss), "loss {loss}");
        assert!((7.0..=9.0).contains(&burst), "burst {burst}");
        // Everything lost.
        assert_eq!(loss_and_bursts(100.0, 1.0, 1_000).0, 1.0);
    }

    #[test]
    fn random_outages_follow_mtbf_and_mttr() {
        let mut g = Gateway {
            capacity: 0,
            eviction: crate::config::Eviction::DropOldest,
            flush_per_s: 1.0,
            flush_credit: 0.0,
            outages: vec![(1_000, 2_000)],
            random: Some((3_600_000.0, 300_000.0)),
            random_down: false,
            next_change_ms: 0,
            rng: rng::stream(1, 2, "gateway"),
            buffer: Default::default(),
        };
        let mut down = 0u64;
        let step = 10_000;
        let n = 30 * 24 * 360; // 30 days of 10-s steps
        for k in 0..n {
            down += u64::from(!g.online(k * step));
        }
        // Unavailability MTTR / (MTBF + MTTR) = 5 / 65 ≈ 7.7 %.
        let share = down as f64 / n as f64;
        assert!((0.05..=0.105).contains(&share), "down {share}");
        // Scheduled outages hold whatever the random state.
        let mut g2 = Gateway {
            random: None,
            rng: rng::stream(1, 3, "gateway"),
            buffer: Default::default(),
            outages: vec![(1_000, 2_000)],
            ..g
        };
        assert!(g2.online(999) && !g2.online(1_000) && !g2.online(1_999) && g2.online(2_000));
    }
}
