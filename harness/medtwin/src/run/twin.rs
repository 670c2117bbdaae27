//! The twin's side of a run, on its own thread (the twin is synchronous
//! and must not block the async runtime): step to the end, feed the
//! digests, count every measurement by device kind, encode each delivery
//! and hand the step (records and messages) to the driver through a
//! bounded channel. The checker's observer reads the records later, once
//! the target has answered for the step's deliveries (`run::observe`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medtwin_sim::{Quality, StepOutput, Twin};
use tokio::sync::mpsc;

use super::digest::Digester;
use crate::stop::Stop;
use crate::transport::waves::WaveEncoder;
use crate::transport::{Encoder, MessageKind, Outgoing};

/// Steps the twin may run ahead of the transport (bounded memory).
pub const STEPS_AHEAD: usize = 64;
/// Deliveries in flight at most, from the twin to the observer (encoded,
/// queued, on the wire, awaiting their answer or their observation): the
/// twin waits for credit before handing over a step, so memory does not
/// grow with the cohort's message rate. A step larger than this takes all
/// of it.
pub const MAX_IN_FLIGHT: usize = 65_536;

/// Waveform chunk bytes in flight at most, in KiB (the twin waits for this
/// credit, apart from the deliveries', before handing over a step's
/// chunks; each chunk holds its share until the target has answered for
/// it). A step's chunks larger than this take all of it.
pub const MAX_WAVE_KIB_IN_FLIGHT: usize = 64 * 1024;

/// What the twin thread hands the driver for one step.
pub struct Batch {
    /// The step's credit: one permit per delivery (at most all of them).
    pub credit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The step's records, for the observer.
    pub out: StepOutput,
    /// The step's deliveries, encoded, in the order of `out.deliveries`
    /// (their ids are set by the driver).
    pub deliveries: Vec<Outgoing>,
    /// The step's waveform chunks, encoded (none unless the run streams
    /// waveforms); sent after the deliveries, never observed.
    pub waves: Vec<Outgoing>,
}

/// Measurement accounting: generated = delivered + lost + buffered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Measurements taken.
    pub generated: u64,
    /// Reached the target's edge.
    pub delivered: u64,
    /// Lost on the way.
    pub lost: u64,
    /// Still on the way when the run ended.
    pub buffered: u64,
}

/// Accounting of one device kind, and what its devices said or suffered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KindCounts {
    /// generated = delivered + lost + buffered.
    pub counts: Counts,
    /// Losses by cause.
    pub lost_by_cause: BTreeMap<String, u64>,
    /// Duplicate copies delivered.
    pub duplicates: u64,
    /// Technical alarms raised, by alarm.
    pub alarms: BTreeMap<String, u64>,
    /// Events reported, by event.
    pub events: BTreeMap<String, u64>,
    /// Messages an artifact or firmware fault shaped, by cause.
    pub artifacts: BTreeMap<String, u64>,
}

/// What the twin thread found over the whole run.
#[derive(Default)]
pub struct TwinSummary {
    /// Patient names, by index.
    pub patients: Vec<String>,
    /// Devices by kind (catalogue model).
    pub devices_by_kind: BTreeMap<String, u64>,
    /// Devices simulated.
    pub n_devices: u64,
    /// Totals.
    pub accounting: Counts,
    /// By device kind.
    pub by_kind: BTreeMap<String, KindCounts>,
    /// Losses by cause.
    pub lost_by_cause: BTreeMap<String, u64>,
    /// Duplicate copies delivered.
    pub duplicates: u64,
    /// Digests of the telemetry and of the truth.
    pub digests: super::digest::Digests,
    /// Steps run.
    pub steps: u64,
    /// Wall time inside the twin's steps.
    pub busy: Duration,
}

/// Runs the twin to the end (or until `stop` is thrown), streaming each
/// step that recorded anything to `tx` (with its waveform chunks, when
/// `waves` encodes them).
pub fn run(
    mut twin: Twin,
    encoder: &impl Encoder,
    waves: Option<&WaveEncoder>,
    tx: mpsc::Sender<Batch>,
    stop: &Stop,
    credit: &Credit,
) -> TwinSummary {
    // Apart from the deliveries' credit, so neither can wait on the other.
    let wave_credit = credit.another(MAX_WAVE_KIB_IN_FLIGHT);
    let patients = twin.patient_names().to_vec();
    // Each device's model (catalogue entry) name: its kind on the wire and
    // in the report.
    let models: Vec<String> = (0..twin.device_names().len() as u32)
        .map(|i| {
            twin.device_model(i)
                .map_or_else(String::new, |m| m.name.clone())
        })
        .collect();
    let mut tally = Tally::new(models);
    let mut digester = Digester::default();
    let (mut steps, mut busy) = (0, Duration::ZERO);
    while !twin.finished() && !stop.is_stopped() {
        let started = Instant::now();
        let out: &StepOutput = twin.step();
        busy += started.elapsed();
        steps += 1;
        digester.step(out);
        tally.step(out);
        let streams_waves = waves.is_some() && !out.waves.is_empty();
        if nothing_to_observe(out) && !streams_waves {
            continue;
        }
        let mut batch = encode(out, encoder, waves);
        hold_wave_credit(&mut batch.waves, &wave_credit);
        batch.credit = credit.take(batch.deliveries.len());
        if tx.blocking_send(batch).is_err() {
            break; // the driver stopped; its error is reported there
        }
    }
    let acc = twin.accounting();
    TwinSummary {
        accounting: Counts {
            generated: acc.generated,
            delivered: acc.delivered,
            lost: acc.lost(),
            buffered: acc.pending(),
        },
        digests: digester.finish(),
        steps,
        busy,
        patients,
        ..tally.finish()
    }
}

/// Whether a step recorded nothing the observer reads.
fn nothing_to_observe(out: &StepOutput) -> bool {
    out.onsets.is_empty()
        && out.ends.is_empty()
        && out.interventions.is_empty()
        && out.criteria.is_empty()
        && out.states.is_empty()
        && out.measurements.is_empty()
        && out.deliveries.is_empty()
        && out.losses.is_empty()
}

/// A step's deliveries (and its waveform chunks, with `waves`) as
/// outgoing messages.
fn encode(out: &StepOutput, encoder: &impl Encoder, waves: Option<&WaveEncoder>) -> Batch {
    Batch {
        credit: None,
        out: records(out),
        waves: waves.map_or_else(Vec::new, |w| wave_messages(out, w)),
        deliveries: out
            .deliveries
            .iter()
            .map(|d| {
                let mut body = Vec::with_capacity(256);
                encoder.encode(&d.measurement, &mut body);
                Outgoing {
                    id: 0,
                    patient_idx: d.measurement.patient_idx,
                    device_idx: d.measurement.device_idx,
                    delivered_ms: d.delivered_ms,
                    body,
                    kind: MessageKind::Measurement,
                    hold: None,
                }
            })
            .collect(),
    }
}

/// A step's records for the observer: everything but the waveform samples,
/// which it never reads (and which can be most of a step's bytes).
fn records(out: &StepOutput) -> StepOutput {
    StepOutput {
        onsets: out.onsets.clone(),
        ends: out.ends.clone(),
        interventions: out.interventions.clone(),
        commands: out.commands.clone(),
        criteria: out.criteria.clone(),
        states: out.states.clone(),
        measurements: out.measurements.clone(),
        deliveries: out.deliveries.clone(),
        losses: out.losses.clone(),
        beats: out.beats.clone(),
        rhythms: out.rhythms.clone(),
        ..StepOutput::default()
    }
}

/// One message per wave block: the chunk is sent when its last sample was
/// taken (the block's end, in simulated time).
fn wave_messages(out: &StepOutput, waves: &WaveEncoder) -> Vec<Outgoing> {
    out.waves
        .iter()
        .filter_map(|block| {
            let mut body = Vec::with_capacity(16 * block.len as usize);
            if !waves.encode(block, &out.wave_samples, &mut body) {
                return None;
            }
            Some(Outgoing {
                id: u64::MAX, // never acknowledged to the observer
                patient_idx: block.patient_idx,
                device_idx: block.device_idx,
                delivered_ms: waves.end_ms(block),
                body,
                kind: MessageKind::Waveform,
                hold: None,
            })
        })
        .collect()
}

/// Each chunk takes its size in KiB of the waveform credit, held (in
/// [`Outgoing::hold`]) until the lanes are done with it, so the chunks
/// waiting in lanes stay within [`MAX_WAVE_KIB_IN_FLIGHT`].
fn hold_wave_credit(chunks: &mut [Outgoing], credit: &Credit) {
    let kib: Vec<usize> = chunks.iter().map(|m| m.body.len().div_ceil(1024)).collect();
    let Some(mut all) = credit.take(kib.iter().sum()) else {
        return;
    };
    for (chunk, &k) in chunks.iter_mut().zip(&kib) {
        // Fails only when the step took all of the credit: the rest go
        // with the last chunk.
        chunk.hold = all.split(k);
    }
    if all.num_permits() > 0
        && let Some(last) = chunks.last_mut()
    {
        match last.hold.as_mut() {
            Some(held) => held.merge(all),
            None => last.hold = Some(all),
        }
    }
}

/// The run's in-flight credit ([`MAX_IN_FLIGHT`] permits), taken by the
/// twin's thread (which is not a runtime thread) through the runtime's
/// handle.
pub struct Credit {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    runtime: tokio::runtime::Handle,
    max: usize,
}

impl Credit {
    /// Credit on the current runtime (panics outside one, like
    /// `Handle::current`).
    pub fn on_this_runtime() -> Credit {
        Credit {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            runtime: tokio::runtime::Handle::current(),
            max: MAX_IN_FLIGHT,
        }
    }

    /// Another credit of `max` permits on the same runtime.
    fn another(&self, max: usize) -> Credit {
        Credit {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max)),
            runtime: self.runtime.clone(),
            max,
        }
    }

    /// Waits for `n` permits (at most all of them); `None` for none.
    fn take(&self, n: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = n.min(self.max) as u32;
        if n == 0 {
            return None;
        }
        let permits = std::sync::Arc::clone(&self.permits);
        self.runtime.block_on(permits.acquire_many_owned(n)).ok()
    }
}

/// Counts of measurements, deliveries and losses by device kind.
struct Tally {
    /// Each device's slot in `kinds`.
    slot_of_device: Vec<usize>,
    /// Model names by slot.
    names: Vec<String>,
    kinds: Vec<KindCounts>,
    summary: TwinSummary,
}

impl Tally {
    fn new(models: Vec<String>) -> Tally {
        let mut summary = TwinSummary {
            n_devices: models.len() as u64,
            ..TwinSummary::default()
        };
        let mut names: Vec<String> = Vec::new();
        let mut slot_of_device = Vec::with_capacity(models.len());
        for model in models {
            *summary.devices_by_kind.entry(model.clone()).or_insert(0) += 1;
            let slot = names.iter().position(|n| *n == model).unwrap_or_else(|| {
                names.push(model);
                names.len() - 1
            });
            slot_of_device.push(slot);
        }
        Tally {
            slot_of_device,
            kinds: vec![KindCounts::default(); names.len()],
            names,
            summary,
        }
    }

    fn kind(&mut self, device_idx: u32) -> &mut KindCounts {
        &mut self.kinds[self.slot_of_device[device_idx as usize]]
    }

    fn step(&mut self, out: &StepOutput) {
        for m in &out.measurements {
            let kind = self.kind(m.device_idx);
            kind.counts.generated += 1;
            if let Some(alarm) = m.alarm {
                *kind.alarms.entry(alarm.name().to_owned()).or_insert(0) += 1;
            }
            if let Some(event) = m.event {
                *kind.events.entry(event.kind.name().to_owned()).or_insert(0) += 1;
            }
            if m.quality != Quality::Good {
                let cause = m.quality.name().to_owned();
                *kind.artifacts.entry(cause).or_insert(0) += 1;
            }
        }
        for d in &out.deliveries {
            if d.duplicate {
                self.kind(d.measurement.device_idx).duplicates += 1;
                self.summary.duplicates += 1;
            } else {
                self.kind(d.measurement.device_idx).counts.delivered += 1;
            }
        }
        for l in &out.losses {
            let cause = l.cause.name();
            let kind = self.kind(l.device_idx);
            kind.counts.lost += 1;
            *kind.lost_by_cause.entry(cause.to_owned()).or_insert(0) += 1;
            *self
                .summary
                .lost_by_cause
                .entry(cause.to_owned())
                .or_insert(0) += 1;
        }
    }

    /// The totals; only kinds that took or lost a measurement are listed.
    fn finish(mut self) -> TwinSummary {
        for (name, mut kind) in self.names.into_iter().zip(self.kinds) {
            if kind == KindCounts::default() {
                continue;
            }
            let c = &mut kind.counts;
            c.buffered = c.generated - c.delivered - c.lost;
            self.summary.by_kind.insert(name, kind);
        }
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: usize) -> Outgoing {
        Outgoing {
            id: u64::MAX,
            patient_idx: 0,
            device_idx: 0,
            delivered_ms: 0,
            body: vec![b' '; bytes],
            kind: MessageKind::Waveform,
            hold: None,
        }
    }

    #[test]
    fn chunks_hold_their_size_of_the_wave_credit_until_dropped() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let credit = rt.block_on(async { Credit::on_this_runtime() }).another(8);
        let held = |chunks: &[Outgoing]| -> Vec<usize> {
            chunks
                .iter()
                .map(|c| c.hold.as_ref().map_or(0, |h| h.num_permits()))
                .collect()
        };
        // 3 KiB, 1 byte (1 KiB), 2.5 KiB (3 KiB): 7 of 8 KiB held.
        let mut chunks = vec![chunk(3 * 1024), chunk(1), chunk(2 * 1024 + 512)];
        std::thread::scope(|s| {
            s.spawn(|| hold_wave_credit(&mut chunks, &credit));
        });
        assert_eq!(held(&chunks), [3, 1, 3]);
        assert_eq!(credit.permits.available_permits(), 1);
        // A step larger than the credit waits for the rest, then takes all
        // of it (the last chunk keeps what its share could not split).
        let freed = std::thread::spawn({
            let permits = std::sync::Arc::clone(&credit.permits);
            move || {
                std::thread::sleep(Duration::from_millis(50));
                drop(chunks);
                permits
            }
        });
        let mut big = vec![chunk(6 * 1024), chunk(6 * 1024)];
        std::thread::scope(|s| {
            s.spawn(|| hold_wave_credit(&mut big, &credit));
        });
        freed.join().unwrap();
        assert_eq!(held(&big), [6, 2]);
        assert_eq!(credit.permits.available_permits(), 0);
        drop(big);
        assert_eq!(credit.permits.available_permits(), 8);
    }
}
