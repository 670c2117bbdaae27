//! The live feed to browsers: numbered events, a bounded replay buffer so
//! a dropped connection resumes where it left off (`Last-Event-ID`), and a
//! bounded broadcast ring shared by every client, so a slow browser lags
//! (is told to reload, and counted) instead of growing memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// One event as the browser receives it.
#[derive(Debug)]
pub struct Event {
    /// Its number (SSE `id:`), increasing from 1.
    pub id: u64,
    /// Its SSE `event:` name.
    pub name: &'static str,
    /// JSON.
    pub data: String,
    /// The patient it concerns, for streams filtered by patient.
    pub patient: Option<u32>,
}

/// A numbered event stream with a replay buffer.
#[derive(Debug)]
pub struct Bus {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    replay_capacity: usize,
    /// Clients that fell a whole broadcast ring behind (told to resume).
    pub lagged: AtomicU64,
    /// Resumes whose `Last-Event-ID` was older than the replay buffer
    /// (told to reload the ward).
    pub too_old: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    replay: VecDeque<Arc<Event>>,
}

/// Where a new subscriber starts.
pub enum Resume {
    /// These events were missed; then the live receiver.
    From(Vec<Arc<Event>>),
    /// The id is older than the replay buffer: reload from the snapshot.
    TooOld,
}

impl Bus {
    /// A bus keeping the last `replay` events, with a broadcast ring of
    /// `ring` events per client at most.
    pub fn new(replay: usize, ring: usize) -> Bus {
        Bus {
            inner: Mutex::new(Inner {
                next_id: 1,
                replay: VecDeque::with_capacity(replay),
            }),
            tx: broadcast::channel(ring).0,
            replay_capacity: replay,
            lagged: AtomicU64::new(0),
            too_old: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes an event; returns its id.
    pub fn publish(&self, name: &'static str, patient: Option<u32>, data: String) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let event = Arc::new(Event {
            id,
            name,
            data,
            patient,
        });
        if self.replay_capacity > 0 {
            if inner.replay.len() == self.replay_capacity {
                inner.replay.pop_front();
            }
            inner.replay.push_back(event.clone());
        }
        // Under the lock, so a subscriber sees each event once: from the
        // replay or from the receiver, never both, never neither.
        let _ = self.tx.send(event);
        id
    }

    /// Whether anyone is listening (waveforms are not built for nobody).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// The id of the newest event (0 before any).
    pub fn last_id(&self) -> u64 {
        self.lock().next_id - 1
    }

    /// Subscribes, with what was missed after `last_id` (`None`: nothing
    /// is replayed, the client starts live).
    pub fn subscribe(&self, last_id: Option<u64>) -> (Resume, broadcast::Receiver<Arc<Event>>) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let Some(last) = last_id else {
            return (Resume::From(Vec::new()), rx);
        };
        let newest = inner.next_id - 1;
        if last >= newest {
            return (Resume::From(Vec::new()), rx);
        }
        let oldest = inner.replay.front().map_or(inner.next_id, |e| e.id);
        if last + 1 < oldest {
            self.too_old.fetch_add(1, Ordering::Relaxed);
            return (Resume::TooOld, rx);
        }
        let missed = inner
            .replay
            .iter()
            .filter(|e| e.id > last)
            .cloned()
            .collect();
        (Resume::From(missed), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_replays_what_was_missed_and_refuses_what_is_gone() {
        let bus = Bus::new(4, 8);
        for k in 0..6 {
            bus.publish("tick", None, format!("{k}"));
        }
        let (resume, _) = bus.subscribe(Some(3));
        let Resume::From(missed) = resume else {
            panic!("3 is still in the buffer")
        };
        assert_eq!(missed.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5, 6]);
        assert!(matches!(bus.subscribe(Some(1)).0, Resume::TooOld));
        assert_eq!(bus.too_old.load(Ordering::Relaxed), 1);
        let (_, mut rx) = bus.subscribe(None);
        bus.publish("tick", None, "7".into());
        assert_eq!(rx.try_recv().unwrap().id, 7);
    }
}
