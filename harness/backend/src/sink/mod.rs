//! Where alerts go: every sink the backend was configured with gets every
//! alert (after fault injection), in each patient's order. The webhook
//! (medtwin's alert JSON over HTTP, with a bearer token or an HMAC
//! signature) is one sink; the others speak a protocol of their own (IHE
//! ACM over MLLP, MQTT, FHIR).
//!
//! An alert has phases: `Start` when it is raised, `End` when its level
//! re-arms (the score stayed below the threshold for `reset_after`). Sinks
//! that have no place for an end (the webhook) ignore it.

pub mod acm;
pub mod mqtt;
pub mod webhook;

use medtwin_wire::AlertMessage;

pub use acm::AcmSink;
pub use mqtt::{MqttSink, MqttSinkConfig};
pub use webhook::{Signing, WebhookSink};

/// A phase of an alert's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Raised.
    Start,
    /// Over: its level re-armed.
    End,
}

/// One alert phase on its way to the sinks.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The alert (for `End`, the one that started, with its id).
    pub message: AlertMessage,
    /// Which phase.
    pub phase: Phase,
}

/// A configured destination for alerts, besides the webhook.
#[derive(Clone, Debug, PartialEq)]
pub enum Sink {
    /// Publish each alert's start to an MQTT broker.
    Mqtt(MqttSinkConfig),
    /// IHE ACM: PCD-04 `ORU^R40` over MLLP to `addr` (`host:port`).
    Acm {
        /// Where the alert consumer listens.
        addr: String,
    },
}

/// Why a sink did not take an alert.
#[derive(Debug)]
pub struct Undelivered {
    /// Whether another attempt may help.
    pub retry: bool,
    /// What happened.
    pub detail: String,
}

/// The running sinks.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub(crate) webhook: Option<WebhookSink>,
    /// The FHIR store (always on: every alert is stored for FHIR search
    /// and subscriptions).
    pub(crate) fhir: Option<std::sync::Arc<crate::fhir::FhirStore>>,
    pub(crate) mqtt: Option<MqttSink>,
    pub(crate) acm: Option<AcmSink>,
}

impl Sinks {
    /// Starts the sinks (connections are made lazily, on first use).
    pub(crate) fn start(
        webhook: Option<WebhookSink>,
        others: &[Sink],
        tls: Option<&medtwin_tls::ClientTls>,
    ) -> Result<Sinks, crate::BackendError> {
        let mut mqtt = None;
        let mut acm = None;
        for sink in others {
            match sink {
                Sink::Acm { addr } => acm = Some(AcmSink::new(addr, tls)?),
                Sink::Mqtt(config) => mqtt = Some(MqttSink::new(config.clone())?),
            }
        }
        Ok(Sinks {
            webhook,
            fhir: None,
            mqtt,
            acm,
        })
    }

    /// The same sinks, storing every alert in the FHIR store too.
    pub(crate) fn with_fhir(mut self, store: std::sync::Arc<crate::fhir::FhirStore>) -> Sinks {
        self.fhir = Some(store);
        self
    }

    /// Every sink, by name.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.webhook.is_some() {
            names.push("webhook");
        }
        if self.fhir.is_some() {
            names.push("fhir");
        }
        if self.mqtt.is_some() {
            names.push("mqtt");
        }
        if self.acm.is_some() {
            names.push("acm");
        }
        names
    }

    /// Delivers one phase to the sink named `name` (one of
    /// [`Sinks::names`]) once.
    pub(crate) async fn deliver(&self, name: &str, out: &Outbound) -> Result<(), Undelivered> {
        match name {
            "webhook" => match &self.webhook {
                Some(w) if out.phase == Phase::Start => w.deliver(&out.message).await,
                _ => Ok(()),
            },
            "fhir" => {
                if let Some(store) = &self.fhir {
                    store.record_alert(&out.message, out.phase);
                }
                Ok(())
            }
            "mqtt" => match &self.mqtt {
                Some(m) if out.phase == Phase::Start => m.deliver(&out.message).await,
                _ => Ok(()),
            },
            "acm" => match &self.acm {
                Some(a) => a.deliver(out).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
