//! The network system: gateways flush their backlogs, new messages go out
//! over their device's link (or into the patient's gateway buffer while
//! its uplink is down), resend timers fire, and arrivals become deliveries.

use bevy_ecs::prelude::*;
use rand::RngExt;

use super::devices::Models;
use super::{Buffered, Clock, Outbox, Transmit};
use crate::config::Eviction;
use crate::device::Device;
use crate::network::{Gateway, Held, InFlight, Link, NetRng, Pending, Wire};
use crate::truth::{Delivery, Loss, LossCause, Measurement, StepOutput};

/// Everything `send` needs to reach.
pub(super) struct Wires<'a, 'lw, 'ls, 'dw, 'ds> {
    links: &'a Query<'lw, 'ls, &'static Link>,
    devices: &'a mut Query<'dw, 'ds, (&'static Device, &'static mut NetRng)>,
    models: &'a Models,
    in_flight: &'a mut InFlight,
}

/// Every gateway that is up forwards its backlog at its flush rate; then
/// new measurements go to the backend over their device's link, or into
/// the patient's gateway buffer while its uplink is down (or while older
/// messages still wait, so a device's messages leave in order); then
/// whatever is due on the wire arrives or is sent again.
#[allow(clippy::too_many_arguments)] // a system names everything it touches
pub(super) fn transmit(
    clock: Res<Clock>,
    models: Res<Models>,
    links: Query<&'static Link>,
    mut devices: Query<(&'static Device, &'static mut NetRng)>,
    mut gateways: Query<&mut Gateway>,
    mut pending: ResMut<Transmit>,
    mut in_flight: ResMut<InFlight>,
    mut buffered: ResMut<Buffered>,
    mut out: ResMut<Outbox>,
) {
    let now = clock.now_ms;
    let out = &mut out.0;
    let dt_s = clock.step_ms as f64 / 1000.0;
    let mut wires = Wires {
        links: &links,
        devices: &mut devices,
        models: &models,
        in_flight: &mut in_flight,
    };
    // Backlogs first: a gateway back online forwards what it holds, and
    // only then takes this step's messages (behind the backlog).
    for mut gateway in &mut gateways {
        if gateway.buffer.is_empty() || !gateway.online(now) {
            gateway.flush_credit = 0.0;
            continue;
        }
        gateway.flush_credit += gateway.flush_per_s * dt_s;
        while gateway.flush_credit >= 1.0 {
            let Some(held) = gateway.buffer.pop_front() else {
                break;
            };
            gateway.flush_credit -= 1.0;
            buffered.0 -= 1;
            send(&mut wires, held.device, held.measurement, now, 0, out);
        }
        if gateway.buffer.is_empty() {
            gateway.flush_credit = 0.0;
        }
    }
    // In device stable-id order (stable: a device's own messages keep
    // theirs), so what a shared gateway buffer holds, and evicts, does not
    // depend on query order or the shard split.
    pending.0.sort_by_cached_key(|(entity, _)| {
        wires.devices.get(*entity).map_or(0, |(d, _)| d.stable_id)
    });
    for (entity, measurement) in pending.0.drain(..) {
        let Ok((device, _)) = wires.devices.get(entity) else {
            continue;
        };
        if let Ok(mut gateway) = gateways.get_mut(device.patient)
            && (!gateway.buffer.is_empty() || !gateway.online(now))
        {
            let held = Held {
                device: entity,
                measurement,
            };
            hold(&mut gateway, held, now, &mut buffered.0, out, wires.devices);
            continue;
        }
        send(&mut wires, entity, measurement, now, 0, out);
    }
    // Arrivals and resends; a resend may arrive within the same step.
    while let Some(p) = wires.in_flight.pop_due(now) {
        match p.wire {
            Wire::Arrival | Wire::Duplicate => out.deliveries.push(Delivery {
                measurement: p.measurement,
                sent_ms: p.sent_ms,
                delivered_ms: p.due_ms,
                duplicate: p.wire == Wire::Duplicate,
            }),
            Wire::Resend(attempt) => {
                send(&mut wires, p.sender, p.measurement, p.due_ms, attempt, out);
            }
        }
    }
}

/// Puts one device's message on the wire at `now` (attempt `attempt`, 0
/// for the first) over the device's link: it arrives after the link's
/// latency, or is lost and sent again after the model's resend wait while
/// resends are left, or counts as lost. A delivered message whose
/// acknowledgement is lost comes again: a duplicate.
fn send(
    wires: &mut Wires<'_, '_, '_, '_, '_>,
    entity: Entity,
    measurement: Measurement,
    now: u64,
    attempt: u32,
    out: &mut StepOutput,
) {
    let Ok((device, mut net)) = wires.devices.get_mut(entity) else {
        return;
    };
    let Ok(link) = wires.links.get(device.link) else {
        return;
    };
    let spec = &wires.models.0[usize::from(device.model)];
    let NetRng(rng, channel) = &mut *net;
    let pending = |due_ms, wire| Pending {
        due_ms,
        sent_ms: now,
        device_stable_id: device.stable_id,
        sender: entity,
        wire,
        measurement,
    };
    match link.transmit(channel, rng) {
        Some(latency_ms) => {
            wires
                .in_flight
                .push(pending(now + latency_ms, Wire::Arrival));
            // Drawn only for models that duplicate, so the others' streams
            // are those of a twin without duplicates.
            if spec.duplicate_pct > 0.0 && rng.random::<f64>() * 100.0 < spec.duplicate_pct {
                let again = now + latency_ms + spec.retry_ms.max(1) + latency_ms;
                wires.in_flight.push(pending(again, Wire::Duplicate));
            }
        }
        None if attempt < spec.retries => {
            let at = now + spec.retry_ms.max(1);
            wires.in_flight.push(pending(at, Wire::Resend(attempt + 1)));
        }
        None => out.losses.push(Loss {
            device_idx: device.idx,
            seq: measurement.seq,
            lost_ms: now,
            cause: LossCause::LinkLoss,
        }),
    }
}

/// Puts a message in a gateway's buffer, evicting by its policy when full.
fn hold(
    gateway: &mut Gateway,
    held: Held,
    now: u64,
    buffered: &mut u64,
    out: &mut StepOutput,
    devices: &Query<(&Device, &mut NetRng)>,
) {
    let lose = |h: &Held, cause: LossCause, out: &mut StepOutput| {
        if let Ok((device, _)) = devices.get(h.device) {
            out.losses.push(Loss {
                device_idx: device.idx,
                seq: h.measurement.seq,
                lost_ms: now,
                cause,
            });
        }
    };
    if gateway.capacity == 0 {
        lose(&held, LossCause::Outage, out);
        return;
    }
    if gateway.buffer.len() >= gateway.capacity as usize {
        match gateway.eviction {
            Eviction::DropNewest => {
                lose(&held, LossCause::BufferOverflow, out);
                return;
            }
            Eviction::DropOldest => {
                if let Some(old) = gateway.buffer.pop_front() {
                    *buffered -= 1;
                    lose(&old, LossCause::BufferOverflow, out);
                }
            }
        }
    }
    gateway.buffer.push_back(held);
    *buffered += 1;
}
