//! The load generator's MQTT path: `connections` clients (one task each,
//! a client id each), each publishing what its queue holds at the
//! scenario's QoS to the topic its template gives the device
//! (`[target.mqtt]`), with up to [`WINDOW`] publishes in flight. A publish
//! is done when QoS 0 is written to the socket, QoS 1 acknowledged
//! (PUBACK), QoS 2 completed (PUBCOMP); its latency runs from the
//! message's scheduled time to then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medtwin_mqtt::{ConnectOptions, Connection, Message, Outcome, PublishError, Qos, Version};
use tokio::sync::mpsc;

use super::http::Outgoing;
use super::stats::{Fate, Recorder, WindowData};

/// Publishes one client keeps in flight (and the QoS 1/2 window it asks
/// the broker for).
pub const WINDOW: usize = 64;

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct MqttSink {
    /// `host:port` of the broker.
    pub addr: String,
    /// Protocol version.
    pub version: Version,
    /// QoS of every message.
    pub qos: Qos,
    /// User name and password, when the broker wants them.
    pub login: Option<(String, String)>,
    /// The run's id (in the client ids).
    pub run_id: String,
    /// Connect, and acknowledgement, timeout.
    pub timeout: Duration,
    /// A message that waited longer than this in the queue is dropped.
    pub max_late: Duration,
}

/// Opens `n` clients at once. A client whose first connect fails keeps
/// trying; its publishes fail, counted by cause, until it is up.
pub async fn connect(sink: &MqttSink, n: usize) -> Vec<(Connection, Option<String>)> {
    let opening = (0..n).map(|i| {
        // `mt<run>l<i>`: broker-safe, and apart from `run`'s clients.
        let id = crate::transport::mqtt::client_id(&sink.run_id, 'l', i);
        let mut options = ConnectOptions::new(&sink.addr, id, sink.version);
        options.keep_alive = Duration::from_secs(30);
        options.max_in_flight = WINDOW as u16;
        options.queue = 2 * WINDOW;
        options.ack_timeout = sink.timeout;
        options.connect_timeout = sink.timeout.min(Duration::from_secs(10));
        options.login = sink.login.clone();
        async move {
            let (connection, error) = Connection::start(options).await;
            (connection, error.map(|e| e.to_string()))
        }
    });
    futures_util::future::join_all(opening).await
}

/// One client's task: publishes what its queue holds until the queue
/// closes, then disconnects cleanly. Records every fate in `recorder`.
///
/// Publishes are handed over tagged ([`Connection::publish_tagged`]): a
/// message costs a slot in [`Slots`] and two channel sends, with no
/// future, timer or one-shot channel of its own; fates are recorded a
/// batch at a time under one lock.
pub async fn connection(
    client: Connection,
    sink: Arc<MqttSink>,
    mut queue: mpsc::Receiver<Outgoing>,
    recorder: Arc<Mutex<Recorder>>,
    backlog: &AtomicU64,
) {
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let mut slots = Slots::default();
    let mut fates: Vec<Outcome> = Vec::with_capacity(WINDOW);
    let mut taken: Vec<Outgoing> = Vec::with_capacity(WINDOW);
    let mut open = true;
    // Once the queue is closed, how long the last fates may take: the
    // client answers every publish within its acknowledgement timeout, or
    // a connect attempt's two timeouts when it was reconnecting. A fate
    // still missing after this is counted, never waited for forever.
    let mut last_call = std::pin::pin!(tokio::time::sleep(Duration::MAX));
    while open || slots.used() > 0 {
        tokio::select! {
            biased;
            () = &mut last_call, if !open => {
                let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                for (window, _) in slots.drain() {
                    r.window(window).sent(Fate::Failed("no_outcome"));
                }
            }
            _ = outcomes.recv_many(&mut fates, WINDOW), if slots.used() > 0 => {
                let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                for (tag, fate) in fates.drain(..) {
                    // One fate per publish: a tag not held cannot come.
                    let Some((window, due)) = slots.free(tag) else { continue };
                    record(r.window(window), fate, due);
                }
            }
            n = queue.recv_many(&mut taken, WINDOW - slots.used()), if open && slots.used() < WINDOW => {
                if n == 0 {
                    open = false;
                    last_call
                        .as_mut()
                        .reset(tokio::time::Instant::now() + 3 * sink.timeout + Duration::from_secs(1));
                    continue;
                }
                backlog.fetch_sub(n as u64, Ordering::Relaxed);
                for message in taken.drain(..) {
                    if message.due.elapsed() > sink.max_late {
                        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                        r.window(message.window).dropped("dropped_late");
                        continue;
                    }
                    let (window, due) = (message.window, message.due);
                    let tag = slots.take(window, due);
                    let message = Message {
                        topic: message.topic.unwrap_or_else(|| Arc::from("")),
                        payload: message.body,
                        qos: sink.qos,
                        retain: false,
                    };
                    if let Err(error) = client.publish_tagged(message, tag, &outcomes_tx).await {
                        let _ = slots.free(tag);
                        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                        record(r.window(window), Err(error), due);
                    }
                }
            }
        }
    }
    client.disconnect().await;
}

/// Counts one publish's fate (due at `due`) in its window.
fn record(w: &mut WindowData, fate: Result<(), PublishError>, due: Instant) {
    match fate {
        Ok(()) => w.sent(Fate::Accepted(due)),
        Err(e @ PublishError::Refused { .. }) => w.sent(Fate::Refused(&e.name())),
        Err(e) => w.sent(Fate::Failed(&e.name())),
    }
}

/// The publishes a client has in flight, by tag: a tag is a slot's index,
/// reused once its fate is in (the client answers each publish exactly
/// once).
#[derive(Default)]
struct Slots {
    /// Report window and due time of the publish in each slot.
    slots: Vec<Option<(u64, Instant)>>,
    /// Slots not in use.
    free: Vec<usize>,
}

impl Slots {
    /// Slots in use.
    fn used(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// A tag for a publish of `window` due at `due`.
    fn take(&mut self, window: u64, due: Instant) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[index] = Some((window, due));
        index as u64
    }

    /// Empties every slot, giving back what each held.
    fn drain(&mut self) -> Vec<(u64, Instant)> {
        self.free = (0..self.slots.len()).collect();
        self.slots.iter_mut().filter_map(Option::take).collect()
    }

    /// Frees `tag`'s slot, giving back what [`Slots::take`] was given
    /// (`None` for a tag not held).
    fn free(&mut self, tag: u64) -> Option<(u64, Instant)> {
        let index = usize::try_from(tag).ok()?;
        let held = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        Some(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_reuse_tags_once_freed_and_give_back_what_they_held() {
        let t0 = Instant::now();
        let mut slots = Slots::default();
        let a = slots.take(1, t0);
        let b = slots.take(2, t0);
        assert_ne!(a, b);
        assert_eq!(slots.used(), 2);
        assert_eq!(slots.free(a), Some((1, t0)));
        assert_eq!(slots.free(a), None, "a tag is answered once");
        assert_eq!(slots.free(99), None, "a tag never handed out");
        assert_eq!(slots.take(3, t0), a, "a freed slot is reused");
        assert_eq!(slots.used(), 2);
        let mut left = slots.drain();
        left.sort_by_key(|&(w, _)| w);
        assert_eq!(left, vec![(2, t0), (3, t0)]);
        assert_eq!(slots.used(), 0);
        assert_eq!(slots.free(b), None);
        let c = slots.take(4, t0);
        assert_eq!(slots.free(c), Some((4, t0)));
    }
}
