//! R4 Subscriptions Backport IG (`http://hl7.org/fhir/uv/subscriptions-backport`,
//! STU 1.1): the topic-based `Subscription` a client creates, and the
//! notification `Bundle`s (type `history`) a server sends, whose first
//! entry is the `Parameters` SubscriptionStatus (profile
//! `backport-subscription-status-r4`).

use serde_json::Value;

use crate::admin::uuid_for;
use crate::bundle::{from_value, parse};
use crate::codes::{
    EXT_FILTER_CRITERIA, EXT_HEARTBEAT_PERIOD, EXT_PAYLOAD_CONTENT, EXT_TIMEOUT, FHIR_JSON,
    PROFILE_BACKPORT_STATUS, PROFILE_BACKPORT_SUBSCRIPTION,
};
use crate::error::FhirError;
use crate::model::{
    Bundle, BundleEntry, BundleRequest, BundleResponse, Extension, Meta, Parameter, Parameters,
    PrimitiveExtensions, Reference, Subscription, SubscriptionChannel,
};

/// What a client asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionRequest {
    /// The topic's canonical URL.
    pub topic: String,
    /// Where notifications go (the rest-hook).
    pub endpoint: String,
    /// Heartbeat period, seconds (0: none).
    pub heartbeat_s: u64,
    /// How long the server should wait on one notification, seconds.
    pub timeout_s: Option<u64>,
    /// Headers the server sends with each notification
    /// (`Authorization: Bearer ...`).
    pub headers: Vec<String>,
    /// Filter criteria (`Flag?patient=...`), if any.
    pub filter: Option<String>,
    /// Why (`Subscription.reason`).
    pub reason: String,
}

/// The Backport-profiled R4 `Subscription` for a request: status
/// requested, criteria = the topic, rest-hook channel with the heartbeat
/// and timeout extensions, payload `application/fhir+json` with content
/// `full-resource`.
pub fn subscription(req: &SubscriptionRequest) -> Subscription {
    let ext_u = |url: &str, v: u64| Extension {
        url: url.to_owned(),
        value_unsigned_int: Some(v),
        ..Extension::default()
    };
    let mut channel_ext = Vec::new();
    if req.heartbeat_s > 0 {
        channel_ext.push(ext_u(EXT_HEARTBEAT_PERIOD, req.heartbeat_s));
    }
    if let Some(t) = req.timeout_s {
        channel_ext.push(ext_u(EXT_TIMEOUT, t));
    }
    Subscription {
        meta: Meta::profile(PROFILE_BACKPORT_SUBSCRIPTION),
        status: "requested".to_owned(),
        reason: req.reason.clone(),
        criteria: req.topic.clone(),
        criteria_ext: req.filter.as_ref().map(|f| PrimitiveExtensions {
            extension: vec![Extension {
                url: EXT_FILTER_CRITERIA.to_owned(),
                value_string: Some(f.clone()),
                ..Extension::default()
            }],
        }),
        channel: SubscriptionChannel {
            extension: channel_ext,
            kind: "rest-hook".to_owned(),
            endpoint: Some(req.endpoint.clone()),
            payload: Some(FHIR_JSON.to_owned()),
            payload_ext: Some(PrimitiveExtensions {
                extension: vec![Extension {
                    url: EXT_PAYLOAD_CONTENT.to_owned(),
                    value_code: Some("full-resource".to_owned()),
                    ..Extension::default()
                }],
            }),
            header: req.headers.clone(),
        },
        ..Subscription::default()
    }
}

/// What a server reads from a Subscription it is asked to create.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionSettings {
    /// The topic.
    pub topic: String,
    /// The rest-hook endpoint.
    pub endpoint: String,
    /// Heartbeat period, seconds (0: none).
    pub heartbeat_s: u64,
    /// Timeout of one notification, seconds.
    pub timeout_s: Option<u64>,
    /// `empty`, `id-only` or `full-resource`.
    pub content: String,
    /// Headers to send.
    pub headers: Vec<String>,
}

/// Reads a Subscription as the Backport IG's R4 profile has it: a
/// rest-hook channel with an endpoint and `application/fhir+json`.
pub fn settings(sub: &Subscription) -> Result<SubscriptionSettings, FhirError> {
    if sub.channel.kind != "rest-hook" {
        return Err(FhirError::element(
            "Subscription.channel.type",
            format!("{:?}: only rest-hook is supported", sub.channel.kind),
        ));
    }
    let endpoint = sub
        .channel
        .endpoint
        .clone()
        .filter(|e| e.starts_with("http://") || e.starts_with("https://"))
        .ok_or_else(|| {
            FhirError::element(
                "Subscription.channel.endpoint",
                "an http(s) URL is required",
            )
        })?;
    match sub.channel.payload.as_deref() {
        Some(FHIR_JSON) | Some("application/json") | None => {}
        Some(other) => {
            return Err(FhirError::element(
                "Subscription.channel.payload",
                format!("{other:?}: only {FHIR_JSON} is supported"),
            ));
        }
    }
    let u = |url: &str| {
        sub.channel
            .extension
            .iter()
            .find(|e| e.url == url)
            .and_then(|e| e.value_unsigned_int)
    };
    let content = sub
        .channel
        .payload_ext
        .as_ref()
        .and_then(|p| p.extension.iter().find(|e| e.url == EXT_PAYLOAD_CONTENT))
        .and_then(|e| e.value_code.clone())
        .unwrap_or_else(|| "id-only".to_owned());
    if !["empty", "id-only", "full-resource"].contains(&content.as_str()) {
        return Err(FhirError::element(
            "Subscription.channel.payload.extension:content",
            format!("{content:?} is not empty, id-only or full-resource"),
        ));
    }
    Ok(SubscriptionSettings {
        topic: sub.criteria.clone(),
        endpoint,
        heartbeat_s: u(EXT_HEARTBEAT_PERIOD).unwrap_or(0),
        timeout_s: u(EXT_TIMEOUT),
        content,
        headers: sub.channel.header.clone(),
    })
}

/// The kind of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationType {
    /// Sent once when the subscription starts.
    Handshake,
    /// Sent when nothing happened for a heartbeat period.
    Heartbeat,
    /// One or more events.
    EventNotification,
    /// An answer to `$status`.
    QueryStatus,
    /// An answer to `$events`.
    QueryEvent,
}

impl NotificationType {
    /// The code.
    pub fn code(self) -> &'static str {
        match self {
            NotificationType::Handshake => "handshake",
            NotificationType::Heartbeat => "heartbeat",
            NotificationType::EventNotification => "event-notification",
            NotificationType::QueryStatus => "query-status",
            NotificationType::QueryEvent => "query-event",
        }
    }

    /// The type of a code.
    pub fn from_code(code: &str) -> Option<NotificationType> {
        [
            NotificationType::Handshake,
            NotificationType::Heartbeat,
            NotificationType::EventNotification,
            NotificationType::QueryStatus,
            NotificationType::QueryEvent,
        ]
        .into_iter()
        .find(|t| t.code() == code)
    }
}

/// One event in a notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Its number since the subscription started (from 1).
    pub number: u64,
    /// When it happened (an instant).
    pub timestamp: String,
    /// The focus resource and its fullUrl (`[base]/Flag/12`), with the
    /// resource type the entry's request names.
    pub focus: Option<Focus>,
}

/// The resource an event is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Focus {
    /// Its absolute URL.
    pub full_url: String,
    /// Its type (`Flag`).
    pub resource_type: String,
    /// The resource (`full-resource` content), or `None` (`id-only`).
    pub resource: Option<Value>,
}

/// A notification to build or as read.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The kind.
    pub kind: NotificationType,
    /// The subscription's absolute URL.
    pub subscription: String,
    /// The topic.
    pub topic: Option<String>,
    /// active | error | off | requested.
    pub status: String,
    /// Events the server generated since the subscription started.
    pub events_since_start: Option<u64>,
    /// The events this notification carries.
    pub events: Vec<Event>,
}

/// The `history` Bundle of a notification: first entry the
/// SubscriptionStatus `Parameters`, then each event's focus resource.
pub fn notification_bundle(n: &Notification, timestamp: &str) -> Bundle {
    let mut parameter = vec![Parameter {
        name: "subscription".to_owned(),
        value_reference: Some(Reference {
            reference: Some(n.subscription.clone()),
            ..Reference::default()
        }),
        ..Parameter::default()
    }];
    if let Some(topic) = &n.topic {
        parameter.push(Parameter {
            name: "topic".to_owned(),
            value_canonical: Some(topic.clone()),
            ..Parameter::default()
        });
    }
    parameter.push(Parameter {
        name: "status".to_owned(),
        value_code: Some(n.status.clone()),
        ..Parameter::default()
    });
    parameter.push(Parameter {
        name: "type".to_owned(),
        value_code: Some(n.kind.code().to_owned()),
        ..Parameter::default()
    });
    if let Some(count) = n.events_since_start {
        parameter.push(Parameter {
            name: "events-since-subscription-start".to_owned(),
            value_string: Some(count.to_string()),
            ..Parameter::default()
        });
    }
    for e in &n.events {
        let mut part = vec![
            Parameter {
                name: "event-number".to_owned(),
                value_string: Some(e.number.to_string()),
                ..Parameter::default()
            },
            Parameter {
                name: "timestamp".to_owned(),
                value_instant: Some(e.timestamp.clone()),
                ..Parameter::default()
            },
        ];
        if let Some(f) = &e.focus {
            part.push(Parameter {
                name: "focus".to_owned(),
                value_reference: Some(Reference {
                    reference: Some(f.full_url.clone()),
                    ..Reference::default()
                }),
                ..Parameter::default()
            });
        }
        parameter.push(Parameter {
            name: "notification-event".to_owned(),
            part,
            ..Parameter::default()
        });
    }
    let status = Parameters {
        meta: Meta::profile(PROFILE_BACKPORT_STATUS),
        parameter,
        ..Parameters::default()
    };
    let status_name = format!(
        "{}#{}#{}",
        n.subscription,
        n.kind.code(),
        n.events_since_start.unwrap_or(0)
    );
    let mut entry = vec![BundleEntry {
        full_url: Some(format!("urn:uuid:{}", uuid_for(&status_name))),
        resource: serde_json::to_value(&status).ok(),
        request: Some(BundleRequest {
            method: "GET".to_owned(),
            url: format!("{}/$status", n.subscription),
            if_none_exist: None,
        }),
        response: Some(BundleResponse {
            status: "200".to_owned(),
            ..BundleResponse::default()
        }),
    }];
    for f in n.events.iter().filter_map(|e| e.focus.as_ref()) {
        let Some(resource) = &f.resource else {
            continue;
        };
        entry.push(BundleEntry {
            full_url: Some(f.full_url.clone()),
            resource: Some(resource.clone()),
            request: Some(BundleRequest {
                method: "POST".to_owned(),
                url: f.resource_type.clone(),
                if_none_exist: None,
            }),
            response: Some(BundleResponse {
                status: "201".to_owned(),
                ..BundleResponse::default()
            }),
        });
    }
    Bundle {
        kind: "history".to_owned(),
        timestamp: Some(timestamp.to_owned()),
        entry,
        ..Bundle::default()
    }
}

/// A count: a valueString of digits, as the IG's R4 profile writes it
/// (R4 has no 64-bit integer); valueInteger or valueUnsignedInt are read
/// too, as some servers write them.
fn number(p: &Parameter, element: &'static str) -> Result<u64, FhirError> {
    p.value_string
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .or(p.value_unsigned_int)
        .or(p.value_integer.and_then(|n| u64::try_from(n).ok()))
        .ok_or_else(|| FhirError::element(element, "must be a valueString of digits"))
}

/// Reads a notification Bundle: type `history`, first entry the
/// SubscriptionStatus `Parameters`; each event's focus resolved against
/// the Bundle's entries by fullUrl.
pub fn parse_notification(body: &[u8]) -> Result<Notification, FhirError> {
    let bundle: Bundle = parse(body, "Bundle")?;
    if bundle.kind != "history" {
        return Err(FhirError::element(
            "Bundle.type",
            format!("{:?}, expected \"history\"", bundle.kind),
        ));
    }
    let first = bundle
        .entry
        .first()
        .and_then(|e| e.resource.clone())
        .ok_or_else(|| FhirError::element("Bundle.entry[0].resource", "missing"))?;
    let status: Parameters = from_value(first, "Parameters")?;
    let text = |name: &'static str| -> Result<&Parameter, FhirError> {
        status
            .get(name)
            .ok_or_else(|| FhirError::element("Parameters.parameter", format!("no {name:?}")))
    };
    let kind_code = text("type")?.value_code.clone().unwrap_or_default();
    let kind = NotificationType::from_code(&kind_code).ok_or_else(|| {
        FhirError::element(
            "Parameters.parameter:type",
            format!("{kind_code:?} is not a notification type"),
        )
    })?;
    let subscription = text("subscription")?
        .value_reference
        .as_ref()
        .and_then(|r| r.reference.clone())
        .ok_or_else(|| FhirError::element("Parameters.parameter:subscription", "no reference"))?;
    let events_since_start = status
        .get("events-since-subscription-start")
        .map(|p| number(p, "Parameters.parameter:events-since-subscription-start"))
        .transpose()?;
    let mut events = Vec::new();
    for p in status
        .parameter
        .iter()
        .filter(|p| p.name == "notification-event")
    {
        let n = p.part("event-number").ok_or_else(|| {
            FhirError::element("Parameters.parameter:notification-event", "no event-number")
        })?;
        let focus = p
            .part("focus")
            .and_then(|f| f.value_reference.as_ref()?.reference.clone())
            .map(|full_url| {
                let entry = bundle
                    .entry
                    .iter()
                    .skip(1)
                    .find(|e| e.full_url.as_deref() == Some(full_url.as_str()));
                let resource = entry.and_then(|e| e.resource.clone());
                let resource_type = resource
                    .as_ref()
                    .and_then(|r| crate::model::resource_type(r).map(str::to_owned))
                    .or_else(|| crate::bundle::parse_location(&full_url).map(|(t, _)| t))
                    .unwrap_or_default();
                Focus {
                    full_url,
                    resource_type,
                    resource,
                }
            });
        events.push(Event {
            number: number(
                n,
                "Parameters.parameter:notification-event.part:event-number",
            )?,
            timestamp: p
                .part("timestamp")
                .and_then(|t| t.value_instant.clone())
                .unwrap_or_default(),
            focus,
        });
    }
    Ok(Notification {
        kind,
        subscription,
        topic: status.get("topic").and_then(|t| t.value_canonical.clone()),
        status: status
            .get("status")
            .and_then(|s| s.value_code.clone())
            .unwrap_or_default(),
        events_since_start,
        events,
    })
}
