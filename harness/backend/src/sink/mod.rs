//! Where alerts go: every sink the backend was configured with gets every
//! alert (after fault injection), in each patient's order. The webhook
//! (medtwin's alert JSON over HTTP, with a bearer token or an HMAC
//! signature) is one sink; the others speak a protocol of their own (IHE
//! ACM over MLLP, MQTT, FHIR).
//!
//! An alert has phases: `Start` when it is raised, `End` when its level
//! re-arms (the score stayed below the threshold for `reset_after`). Sinks
//! that have no place for an end (the webhook) ignore it.

pub mod webhook;

use medtwin_wire::AlertMessage;

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
pub enum Sink {}

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
}

impl Sinks {
    /// Starts the sinks (connections are made lazily, on first use).
    pub(crate) fn start(
        webhook: Option<WebhookSink>,
        others: &[Sink],
    ) -> Result<Sinks, crate::BackendError> {
        if let Some(sink) = others.first() {
            match *sink {}
        }
        Ok(Sinks {
            webhook,
            fhir: None,
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
            _ => Ok(()),
        }
    }
}
