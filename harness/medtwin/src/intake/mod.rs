//! Alerts in: every intake ([`webhook`], [`acm`], [`mqtt`], [`fhir`])
//! delivers into one bounded [`Inbox`], which places each alert in
//! simulated time as it arrives and counts everything it refuses by reason.
//! Nothing is dropped silently. Payloads are read by medtwin's own alert
//! format or by the scenario's declarative [`mapping`].
//!
//! Several intakes may run at once. An alert that arrives through a second
//! intake with an id already received through another is the same alert
//! seen twice: it is recorded in the history, not judged again.

pub mod acm;
pub mod fhir;
pub mod mapping;
pub mod mqtt;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use medtwin_wire::AlertMessage;

use crate::clock::SimClock;
use crate::scenario::interop::{IntakeChoice, IntakeKind};

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
    /// The intake it came through (`webhook`, `acm`, ...).
    pub via: &'static str,
}

/// Something an intake heard about an alert besides its start: a later
/// phase (an ACM alarm's update or end), or the same alert through a
/// second intake.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The intake it came through.
    pub via: &'static str,
    /// The alert's id, when it has one.
    pub alert_id: Option<String>,
    /// The patient.
    pub patient_id: String,
    /// The alert's kind.
    pub kind: String,
    /// `start`, `continue`, `update`, `escalate`, `end`, or `seen-again`.
    pub phase: String,
    /// The alarm's state when the protocol says (`active`, `inactive`,
    /// `latched`, ...).
    pub state: Option<String>,
    /// Simulated time it arrived.
    pub sim_ms: u64,
}

/// What the intakes refused, by reason, with a few examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refused {
    /// Missing or wrong credentials (401).
    pub unauthorized: u64,
    /// A payload that is not a valid alert (400).
    pub malformed: u64,
    /// A payload the scenario's mapping could not read.
    pub unmapped: u64,
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
    /// Each count with its reason's name, in a fixed order.
    pub fn by_reason(&self) -> [(&'static str, u64); 10] {
        [
            ("unauthorized", self.unauthorized),
            ("malformed", self.malformed),
            ("unmapped", self.unmapped),
            ("too_large", self.too_large),
            ("cut_off", self.cut_off),
            ("body_timeout", self.body_timeout),
            ("header_timeout", self.header_timeout),
            ("too_many_connections", self.too_many_connections),
            ("dropped_at_shutdown", self.dropped_at_shutdown),
            ("overflow", self.overflow),
        ]
    }

    /// Total refused.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
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
    /// The scenario's mapping could not read it; why.
    Unmapped(String),
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

/// Most history entries one run keeps; further ones are counted.
pub const MAX_HISTORY: usize = 100_000;

#[derive(Default)]
struct Held {
    alerts: Vec<ReceivedAlert>,
    refused: Refused,
    /// Ids of the alerts received, with the intake that first brought each.
    ids: std::collections::HashMap<String, &'static str>,
    history: Vec<HistoryEntry>,
    history_dropped: u64,
    counters: BTreeMap<(&'static str, &'static str), u64>,
}

/// What the intakes saw besides the alerts: later phases, repeats across
/// intakes, and each intake's own counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heard {
    /// Later phases and repeats, in arrival order (at most
    /// [`MAX_HISTORY`]).
    pub history: Vec<HistoryEntry>,
    /// History entries beyond the bound, counted.
    pub history_dropped: u64,
    /// Each intake's counters (`heartbeats`, `gaps`, `silences`, ...).
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
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

    /// Takes one alert that came through `via`; refuses it when the inbox
    /// is full. An alert whose id already came through *another* intake is
    /// recorded as `seen-again` in the history instead (a backend sending
    /// each alert on two channels raised it once).
    pub fn accept(
        &self,
        message: AlertMessage,
        arrival: Arrival,
        via: &'static str,
    ) -> Result<(), Refusal> {
        let mut held = self.held();
        if let Some(id) = &message.alert_id {
            match held.ids.get(id) {
                Some(&first) if first != via => {
                    let entry = HistoryEntry {
                        via,
                        alert_id: Some(id.clone()),
                        patient_id: message.patient_id,
                        kind: message.kind,
                        phase: "seen-again".into(),
                        state: None,
                        sim_ms: arrival.sim_ms,
                    };
                    push_history(&mut held, entry);
                    return Ok(());
                }
                Some(_) => {}
                None if held.ids.len() < MAX_ALERTS => {
                    held.ids.insert(id.clone(), via);
                }
                None => {}
            }
        }
        if held.alerts.len() >= MAX_ALERTS {
            held.refused.overflow += 1;
            return Err(Refusal::Overflow);
        }
        held.alerts.push(ReceivedAlert {
            message,
            received_sim_ms: arrival.sim_ms,
            received_at: arrival.at,
            via,
        });
        Ok(())
    }

    /// Records a later phase of an alert (or anything else an intake
    /// heard about one that is not a new alert).
    pub fn history(&self, entry: HistoryEntry) {
        push_history(&mut self.held(), entry);
    }

    /// Adds `n` to an intake's counter (`heartbeats`, `gaps`, ...).
    pub fn count(&self, via: &'static str, counter: &'static str, n: u64) {
        *self.held().counters.entry((via, counter)).or_insert(0) += n;
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
            Refusal::Unmapped(error) => {
                held.refused.unmapped += 1;
                format!("unmapped ({error})")
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
        let (alerts, refused, _) = self.take_all();
        (alerts, refused)
    }

    /// Everything received, refused and heard; the inbox is empty
    /// afterwards.
    pub fn take_all(&self) -> (Vec<ReceivedAlert>, Refused, Heard) {
        let held = std::mem::take(&mut *self.held());
        let mut counters: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((via, name), n) in held.counters {
            counters
                .entry(via.to_owned())
                .or_default()
                .insert(name.to_owned(), n);
        }
        let heard = Heard {
            history: held.history,
            history_dropped: held.history_dropped,
            counters,
        };
        (held.alerts, held.refused, heard)
    }
}

fn push_history(held: &mut Held, entry: HistoryEntry) {
    if held.history.len() < MAX_HISTORY {
        held.history.push(entry);
    } else {
        held.history_dropped += 1;
    }
}

/// A running alert intake: it delivers into an [`Inbox`] until stopped.
pub trait Intake: Send {
    /// Where the target should send its alerts (a URL, a topic, ...).
    fn address(&self) -> String;
    /// Stops receiving; whatever arrived stays in the inbox.
    fn stop(self) -> impl Future<Output = ()> + Send;
}

/// What every intake is opened with.
#[derive(Clone)]
pub struct IntakeContext {
    /// Where alerts go.
    pub inbox: Arc<Inbox>,
    /// How payloads are read.
    pub parser: Arc<mapping::AlertParser>,
    /// The bearer token senders must present (webhook, FHIR rest-hook).
    pub token: String,
    /// The HMAC secret for signed webhooks.
    pub secret: Option<String>,
    /// The run's MQTT broker (`mqtt://host:port`), when it has one.
    pub mqtt_broker: Option<String>,
    /// TLS for the listeners (webhook, ACM, FHIR rest-hook), when
    /// `[alerts.tls]` asks for it.
    pub server_tls: Option<Arc<medtwin_tls::ServerTls>>,
    /// The target's client TLS options (`[target.tls]`), for an intake that
    /// connects out over TLS (an `mqtts://` broker).
    pub tls: medtwin_tls::ClientOptions,
}

/// The target, as intakes that talk to it need it (FHIR subscription and
/// polling).
#[derive(Clone, Debug, Default)]
pub struct TargetInfo {
    /// The target's FHIR base URL, when it has one.
    pub fhir_base: Option<String>,
    /// How to authenticate to the target.
    pub auth: crate::transport::auth::Auth,
    /// The target's TLS, when it has one.
    pub tls: Option<Arc<medtwin_tls::ClientTls>>,
}

/// Every intake, so the run holds them in one list.
pub enum AnyIntake {
    /// The webhook.
    Webhook(webhook::Webhook),
    /// FHIR subscription or polling (boxed: it holds its options and
    /// client).
    Fhir(Box<fhir::FhirIntake>),
    /// An MQTT subscription.
    Mqtt(mqtt::MqttIntake),
    /// IHE ACM over MLLP.
    Acm(acm::AcmIntake),
}

impl AnyIntake {
    /// Its kind.
    pub fn kind(&self) -> IntakeKind {
        match self {
            AnyIntake::Webhook(_) => IntakeKind::Webhook,
            AnyIntake::Fhir(i) => i.kind(),
            AnyIntake::Mqtt(_) => IntakeKind::Mqtt,
            AnyIntake::Acm(_) => IntakeKind::Acm,
        }
    }

    /// Where the target sends (URL, MLLP address, topic filter).
    pub fn address(&self) -> String {
        match self {
            AnyIntake::Webhook(i) => i.address(),
            AnyIntake::Fhir(i) => i.address(),
            AnyIntake::Mqtt(i) => i.address(),
            AnyIntake::Acm(i) => i.address(),
        }
    }

    /// Starts talking to the target, for intakes that must (FHIR creates
    /// its subscription or starts polling); the others do nothing.
    pub async fn attach(&mut self, target: &TargetInfo) -> anyhow::Result<()> {
        match self {
            AnyIntake::Webhook(_) | AnyIntake::Mqtt(_) | AnyIntake::Acm(_) => Ok(()),
            AnyIntake::Fhir(i) => i.attach(target).await,
        }
    }

    /// In virtual time, called at every lockstep barrier once the target
    /// has answered everything sent so far: an intake that must ask for
    /// alerts (FHIR polling) asks now, so its alerts are placed within a
    /// window of the data that raised them rather than wherever simulated
    /// time has run to by its next wall-clock poll. The others do nothing.
    pub async fn settle(&self) {
        match self {
            AnyIntake::Webhook(_) | AnyIntake::Mqtt(_) | AnyIntake::Acm(_) => {}
            AnyIntake::Fhir(i) => i.settle().await,
        }
    }

    /// Stops receiving.
    pub async fn stop(self) {
        match self {
            AnyIntake::Webhook(i) => i.stop().await,
            AnyIntake::Fhir(i) => i.stop().await,
            AnyIntake::Mqtt(i) => i.stop().await,
            AnyIntake::Acm(i) => i.stop().await,
        }
    }
}

/// Opens every intake the scenario names, in its order.
pub async fn open_all(
    choice: &IntakeChoice,
    listen: std::net::SocketAddr,
    ctx: &IntakeContext,
) -> anyhow::Result<Vec<AnyIntake>> {
    use anyhow::Context as _;
    let mut out = Vec::new();
    for kind in &choice.kinds {
        let intake = match kind {
            IntakeKind::Webhook => AnyIntake::Webhook(
                webhook::Webhook::start(listen, webhook::Auth::of(&choice.webhook, ctx), ctx)
                    .await
                    .with_context(|| format!("cannot listen for alerts on {listen}"))?,
            ),
            IntakeKind::Acm => acm::open(&choice.acm, ctx).await?,
            IntakeKind::Mqtt => mqtt::open(&choice.mqtt, ctx).await?,
            IntakeKind::FhirSubscription => fhir::open(&choice.fhir, true, ctx).await?,
            IntakeKind::FhirPoll => fhir::open(&choice.fhir, false, ctx).await?,
        };
        out.push(intake);
    }
    Ok(out)
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
        inbox
            .accept(alert("a"), inbox.arrival(), "webhook")
            .unwrap();
        inbox
            .accept(alert("b"), inbox.arrival(), "webhook")
            .unwrap();
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

    #[test]
    fn an_alert_through_a_second_intake_is_history_not_a_second_alert() {
        let clock = Arc::new(SimClock::new(Clock::Virtual, Instant::now()));
        let inbox = Inbox::new(clock);
        let with_id = |id: &str| AlertMessage {
            alert_id: Some(id.into()),
            ..alert("news2-high")
        };
        inbox.accept(with_id("a1"), inbox.arrival(), "acm").unwrap();
        inbox
            .accept(with_id("a1"), inbox.arrival(), "webhook")
            .unwrap();
        // The same intake twice is the target's duplicate: judged as such.
        inbox.accept(with_id("a1"), inbox.arrival(), "acm").unwrap();
        inbox
            .accept(with_id("a2"), inbox.arrival(), "webhook")
            .unwrap();
        inbox.count("acm", "naks", 2);
        let (alerts, _, heard) = inbox.take_all();
        let vias: Vec<_> = alerts.iter().map(|a| a.via).collect();
        assert_eq!(vias, ["acm", "acm", "webhook"]);
        assert_eq!(heard.history.len(), 1);
        assert_eq!(heard.history[0].phase, "seen-again");
        assert_eq!(heard.history[0].via, "webhook");
        assert_eq!(heard.counters["acm"]["naks"], 2);
    }
}
