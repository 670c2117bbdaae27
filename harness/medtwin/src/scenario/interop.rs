//! How a run talks to its target: the transport (`[target] transport`,
//! `encoding` and each protocol's table) and the alert intakes (`[alerts]
//! intake` and each intake's table). The types are read straight from the
//! scenario file (`serde`, unknown keys refused), so each protocol's
//! settings are declared once, here; `transport/` and `intake/` use them.

use std::net::SocketAddr;

use serde::Deserialize;

use super::duration::Dur;

/// A way of sending telemetry: carrier and default encoding together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// medtwin's JSON, one POST per message (`docs/transports/http-json.md`).
    #[default]
    HttpJson,
    /// FHIR R4 over REST (`docs/transports/fhir.md`).
    Fhir,
    /// MQTT 3.1.1 or 5 (`docs/transports/mqtt.md`).
    Mqtt,
    /// HL7 v2.6 ORU^R01 per IHE PCD-01 over MLLP
    /// (`docs/transports/hl7-mllp.md`).
    Hl7Mllp,
    /// NDJSON to a file, for record and replay (`docs/transports/file.md`).
    File,
}

impl Protocol {
    /// Every protocol, in the order lists show them.
    pub const ALL: [Protocol; 5] = [
        Protocol::HttpJson,
        Protocol::Fhir,
        Protocol::Mqtt,
        Protocol::Hl7Mllp,
        Protocol::File,
    ];

    /// Its name in scenarios, on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::HttpJson => "http-json",
            Protocol::Fhir => "fhir",
            Protocol::Mqtt => "mqtt",
            Protocol::Hl7Mllp => "hl7-mllp",
            Protocol::File => "file",
        }
    }

    /// The protocol of a name.
    pub fn parse(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The encoding it carries unless told otherwise.
    pub fn default_encoding(self) -> Encoding {
        match self {
            Protocol::HttpJson | Protocol::Mqtt | Protocol::File => Encoding::Json,
            Protocol::Fhir => Encoding::Fhir,
            Protocol::Hl7Mllp => Encoding::Hl7,
        }
    }

    /// The encodings it can carry.
    pub fn encodings(self) -> &'static [Encoding] {
        match self {
            Protocol::HttpJson => &[Encoding::Json],
            Protocol::Fhir => &[Encoding::Fhir],
            Protocol::Hl7Mllp => &[Encoding::Hl7],
            Protocol::Mqtt | Protocol::File => &[Encoding::Json, Encoding::Fhir, Encoding::Hl7],
        }
    }
}

/// How one measurement becomes one message body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// medtwin's telemetry JSON (`docs/schemas/telemetry.schema.json`).
    #[default]
    Json,
    /// FHIR R4 Observations, one compact JSON resource per line.
    Fhir,
    /// HL7 v2.6 ORU^R01 (IHE PCD-01), ER7.
    Hl7,
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 3] = [Encoding::Json, Encoding::Fhir, Encoding::Hl7];

    /// Its name in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Fhir => "fhir",
            Encoding::Hl7 => "hl7",
        }
    }

    /// The encoding of a name.
    pub fn parse(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// `[target.fhir]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FhirOptions {
    /// Messages per transaction `Bundle`; 1 (the default) sends one
    /// resource per request.
    pub bundle: Option<u32>,
}

/// `[target.mqtt]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttOptions {
    /// Topic template; `{patient}`, `{device}` and `{kind}` are replaced.
    pub topic: Option<String>,
    /// Quality of service: 0, 1 or 2.
    pub qos: Option<u8>,
    /// Protocol version: `3.1.1` or `5`.
    pub version: Option<String>,
    /// One connection per `device`, or per `gateway` (lane).
    pub connection: Option<String>,
    /// Topic template of each connection's retained `online`/`offline`
    /// status (its last will).
    pub status_topic: Option<String>,
    /// User name sent with `[target] token` as the password (default
    /// `medtwin`).
    pub username: Option<String>,
}

/// `[target.hl7]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hl7Options {
    /// MSH-3, the sending application (default `MEDTWIN`).
    pub sending_application: Option<String>,
    /// MSH-4, the sending facility (default `MEDTWIN`).
    pub sending_facility: Option<String>,
    /// MSH-5, the receiving application (default: none).
    pub receiving_application: Option<String>,
    /// MSH-6, the receiving facility (default: none).
    pub receiving_facility: Option<String>,
}

/// `[target.file]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// Add to the file instead of replacing it.
    pub append: Option<bool>,
}

/// `[target.tls]`: whom the carrier trusts and which certificate it shows
/// (`docs/security.md`). Relative paths are read from the scenario file's
/// folder.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// Trust only the CAs in this PEM bundle (instead of the system's).
    pub ca_cert: Option<String>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint.
    pub pin_sha256: Option<String>,
    /// The client certificate (PEM chain) shown to the target...
    pub client_cert: Option<String>,
    /// ...and its key (PEM).
    pub client_key: Option<String>,
    /// A folder of per-device (or per-gateway) identities, `<name>.crt`
    /// and `<name>.key`, for carriers with a connection per device.
    pub identities: Option<String>,
    /// Accept any server certificate: reported loudly, never the default.
    pub insecure_skip_verify: Option<bool>,
    /// Check the server's certificate against this name instead of the
    /// URL's host.
    pub server_name: Option<String>,
}

/// The transport a run uses, whether the target is external or the
/// embedded reference backend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransportChoice {
    /// The protocol.
    pub protocol: Protocol,
    /// The body encoding.
    pub encoding: Encoding,
    /// `[target.fhir]`.
    pub fhir: FhirOptions,
    /// `[target.mqtt]`.
    pub mqtt: MqttOptions,
    /// `[target.hl7]`.
    pub hl7: Hl7Options,
    /// `[target.file]`.
    pub file: FileOptions,
    /// `[target.tls]`, with paths resolved, and the `--ca-cert` family.
    pub tls: medtwin_tls::ClientOptions,
}

/// A way of receiving alerts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntakeKind {
    /// HTTP POSTs of medtwin's alert JSON (or a mapped payload)
    /// (`docs/intakes/webhook.md`).
    #[default]
    Webhook,
    /// IHE ACM (PCD-04) ORU^R40 over MLLP (`docs/intakes/acm.md`).
    Acm,
    /// An MQTT subscription (`docs/intakes/mqtt.md`).
    Mqtt,
    /// FHIR R4 Subscriptions Backport rest-hook notifications
    /// (`docs/intakes/fhir.md`).
    FhirSubscription,
    /// Polling FHIR `Flag`, `DetectedIssue` or `Communication`
    /// (`docs/intakes/fhir.md`).
    FhirPoll,
}

impl IntakeKind {
    /// Every intake.
    pub const ALL: [IntakeKind; 5] = [
        IntakeKind::Webhook,
        IntakeKind::Acm,
        IntakeKind::Mqtt,
        IntakeKind::FhirSubscription,
        IntakeKind::FhirPoll,
    ];

    /// Its name in scenarios, on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            IntakeKind::Webhook => "webhook",
            IntakeKind::Acm => "acm",
            IntakeKind::Mqtt => "mqtt",
            IntakeKind::FhirSubscription => "fhir-subscription",
            IntakeKind::FhirPoll => "fhir-poll",
        }
    }

    /// The intake of a name.
    pub fn parse(name: &str) -> Option<IntakeKind> {
        IntakeKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// How a webhook authenticates its sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signature {
    /// `Authorization: Bearer <token>` (the default).
    #[default]
    Bearer,
    /// GitHub style: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
    /// body>`.
    Github,
    /// Stripe style: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256
    /// of "<t>.<body>">`, refused when `t` is further than the tolerance
    /// from now.
    Stripe,
}

/// `[alerts.webhook]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookOptions {
    /// How the sender authenticates: `bearer` (default), `github` or
    /// `stripe` (HMAC-SHA256 signatures).
    pub signature: Option<Signature>,
    /// The HMAC secret for `github` and `stripe`; default: the
    /// `MEDTWIN_ALERT_SECRET` environment variable, or a generated one.
    pub secret: Option<String>,
    /// How far a Stripe-style timestamp may be from now (default 5 min).
    pub tolerance: Option<Dur>,
}

/// `[alerts.acm]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcmOptions {
    /// Address the MLLP listener binds (default: loopback, a free port).
    pub listen: Option<SocketAddr>,
}

/// `[alerts.mqtt]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttIntakeOptions {
    /// Broker, `mqtt://host:port` (default: the run's broker, when its
    /// telemetry goes over MQTT, or the embedded one).
    pub broker: Option<String>,
    /// Topic filter to subscribe to (default `medtwin/alerts/#`).
    pub topic: Option<String>,
    /// Quality of service of the subscription: 0, 1 or 2.
    pub qos: Option<u8>,
    /// Protocol version: `3.1.1` or `5`.
    pub version: Option<String>,
}

/// `[alerts.fhir]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FhirIntakeOptions {
    /// FHIR base URL (default: the target's, when it speaks FHIR, or the
    /// embedded backend's).
    pub base: Option<String>,
    /// What is polled: `Flag`, `DetectedIssue` (default) or
    /// `Communication`.
    pub resource: Option<String>,
    /// How often to poll (wall time; default 1 s).
    pub poll_every: Option<Dur>,
    /// Address the rest-hook listener binds (default: loopback, a free
    /// port).
    pub listen: Option<SocketAddr>,
    /// The subscription topic (canonical URL) to subscribe to.
    pub topic: Option<String>,
    /// Heartbeat period asked of the server (default 5 s).
    pub heartbeat: Option<Dur>,
}

/// `[alerts.mapping]`: how to read an alert from a payload medtwin does not
/// know. JSON pointers (RFC 6901) for JSON and FHIR payloads, HL7
/// segment–field paths (`PID-3-1`, `OBX[2]-5`) for HL7 v2.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The patient id.
    pub patient: Option<String>,
    /// The alert's kind.
    pub kind: Option<String>,
    /// The priority; mapped through `priorities` when given.
    pub priority: Option<String>,
    /// The time of the measurement that raised it (RFC 3339, or HL7 DTM).
    pub time: Option<String>,
    /// The alert's id.
    pub id: Option<String>,
    /// A fixed kind, when the payload has none.
    pub kind_value: Option<String>,
    /// The payload's priority words → `low`, `medium` or `high`.
    #[serde(default)]
    pub priorities: std::collections::BTreeMap<String, String>,
    /// The payload's kind words → the kinds expectations name.
    #[serde(default)]
    pub kinds: std::collections::BTreeMap<String, String>,
}

/// Every intake's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntakeChoice {
    /// The intakes to open (at least one; default the webhook).
    pub kinds: Vec<IntakeKind>,
    /// `[alerts.webhook]`.
    pub webhook: WebhookOptions,
    /// `[alerts.acm]`.
    pub acm: AcmOptions,
    /// `[alerts.mqtt]`.
    pub mqtt: MqttIntakeOptions,
    /// `[alerts.fhir]`.
    pub fhir: FhirIntakeOptions,
    /// `[alerts.mapping]`.
    pub mapping: Option<MappingSpec>,
}

/// Most messages one FHIR transaction `Bundle` may carry.
pub const MAX_BUNDLE: u32 = 1_000;

/// The `host:port` of `<scheme>://host:port` (a bare `host:port` is taken
/// too); the error says what is wrong.
pub fn host_port(text: &str, scheme: &str) -> Result<(String, u16), String> {
    let rest = match text.split_once("://") {
        Some((s, rest)) if s == scheme || s.strip_suffix('s') == Some(scheme) => rest,
        Some((s, _)) => {
            return Err(format!(
                "\"{text}\": the scheme is {s}, not {scheme} (or {scheme}s, over TLS)"
            ));
        }
        None => text,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("\"{text}\" has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("\"{text}\": \"{port}\" is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(format!("\"{text}\" has no host"));
    }
    Ok((host.to_owned(), port))
}

/// Whether an address asks for TLS: `https://`, `mqtts://` or `mllps://`.
pub fn uses_tls(text: &str) -> bool {
    matches!(
        text.split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .as_deref(),
        Some("https" | "mqtts" | "mllps")
    )
}

/// Checks a target address for its protocol: an http(s) URL for HTTP JSON
/// and FHIR, `mqtt://host:port`, `mllp://host:port`, or a file path.
pub fn check_target_address(text: &str, protocol: Protocol) -> Result<(), String> {
    match protocol {
        Protocol::HttpJson | Protocol::Fhir => super::check_http_url(text),
        Protocol::File if text.trim().is_empty() => {
            Err("the file to record to cannot be empty".into())
        }
        Protocol::File => Ok(()),
        Protocol::Mqtt => host_port(text, "mqtt").map(|_| ()),
        Protocol::Hl7Mllp => host_port(text, "mllp").map(|_| ()),
    }
}

/// The placeholders a topic template may use.
pub const TOPIC_PLACEHOLDERS: [&str; 3] = ["patient", "device", "kind"];

/// Checks a topic template: only known `{placeholders}`, no wildcards.
pub fn check_topic_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("the topic template is empty".into());
    }
    if template.contains(['+', '#']) {
        return Err(format!(
            "topic \"{template}\" has a wildcard (+ or #): a topic to publish to cannot"
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("topic \"{template}\" has an unclosed {{"));
        };
        let name = &rest[open + 1..open + close];
        if !TOPIC_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "topic \"{template}\": unknown placeholder {{{name}}} (known: {{patient}}, {{device}}, {{kind}})"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

fn check_qos(qos: Option<u8>, field: &str) -> Result<(), (String, String)> {
    match qos {
        Some(q) if q > 2 => Err((field.into(), format!("qos = {q}: MQTT has 0, 1 and 2"))),
        _ => Ok(()),
    }
}

fn check_version(version: Option<&str>, field: &str) -> Result<(), (String, String)> {
    match version {
        Some("3.1.1" | "5") | None => Ok(()),
        Some(v) => Err((
            field.into(),
            format!("version = \"{v}\": medtwin speaks MQTT \"3.1.1\" and \"5\""),
        )),
    }
}

/// Checks the protocol tables' values; the error names the field.
pub fn check_transport(choice: &TransportChoice) -> Result<(), (String, String)> {
    if let Some(n) = choice.fhir.bundle
        && !(1..=MAX_BUNDLE).contains(&n)
    {
        return Err((
            "target.fhir.bundle".into(),
            format!("bundle = {n}: 1 (one resource per request) to {MAX_BUNDLE}"),
        ));
    }
    let mqtt = &choice.mqtt;
    check_qos(mqtt.qos, "target.mqtt.qos")?;
    check_version(mqtt.version.as_deref(), "target.mqtt.version")?;
    if let Some(c) = &mqtt.connection
        && !matches!(c.as_str(), "device" | "gateway")
    {
        return Err((
            "target.mqtt.connection".into(),
            format!("connection = \"{c}\": \"device\" or \"gateway\""),
        ));
    }
    if let Some(topic) = &mqtt.topic {
        check_topic_template(topic).map_err(|e| ("target.mqtt.topic".to_owned(), e))?;
    }
    if let Some(topic) = &mqtt.status_topic {
        check_topic_template(topic).map_err(|e| ("target.mqtt.status_topic".to_owned(), e))?;
    }
    Ok(())
}

/// Checks the intake tables' values; the error names the field.
pub fn check_intakes(choice: &IntakeChoice) -> Result<(), (String, String)> {
    check_qos(choice.mqtt.qos, "alerts.mqtt.qos")?;
    check_version(choice.mqtt.version.as_deref(), "alerts.mqtt.version")?;
    if let Some(broker) = &choice.mqtt.broker {
        host_port(broker, "mqtt").map_err(|e| ("alerts.mqtt.broker".to_owned(), e))?;
    }
    if let Some(r) = &choice.fhir.resource
        && !matches!(r.as_str(), "Flag" | "DetectedIssue" | "Communication")
    {
        return Err((
            "alerts.fhir.resource".into(),
            format!("resource = \"{r}\": Flag, DetectedIssue or Communication"),
        ));
    }
    if let Some(every) = choice.fhir.poll_every
        && every.ms() < 50
    {
        return Err((
            "alerts.fhir.poll_every".into(),
            format!("poll_every = {every}: at least 50ms"),
        ));
    }
    if choice
        .webhook
        .signature
        .is_some_and(|s| s != Signature::Bearer)
        && choice.webhook.secret.as_deref() == Some("")
    {
        return Err((
            "alerts.webhook.secret".into(),
            "an empty HMAC secret authenticates nothing".into(),
        ));
    }
    if let Some(m) = &choice.mapping {
        if m.patient.is_none() {
            return Err((
                "alerts.mapping.patient".into(),
                "a mapping must say where the patient id is".into(),
            ));
        }
        if m.kind.is_none() && m.kind_value.is_none() {
            return Err((
                "alerts.mapping.kind".into(),
                "a mapping needs `kind` (where the kind is) or `kind_value` (a fixed kind)".into(),
            ));
        }
        for (word, priority) in &m.priorities {
            if !matches!(priority.as_str(), "low" | "medium" | "high") {
                return Err((
                    format!("alerts.mapping.priorities.{word}"),
                    format!("\"{priority}\" is not a priority: low, medium or high"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_and_topics_are_checked() {
        assert_eq!(
            host_port("mqtt://127.0.0.1:1883", "mqtt"),
            Ok(("127.0.0.1".into(), 1883))
        );
        assert_eq!(host_port("[::1]:2575", "mllp"), Ok(("::1".into(), 2575)));
        assert!(
            host_port("http://x:1", "mqtt")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(
            host_port("mqtt://x", "mqtt")
                .unwrap_err()
                .contains("no port")
        );
        assert_eq!(
            host_port("mqtts://broker:8883", "mqtt"),
            Ok(("broker".into(), 8883))
        );
        assert!(uses_tls("mllps://h:1") && uses_tls("https://h") && !uses_tls("mqtt://h:1"));
        assert!(check_topic_template("medtwin/{patient}/{kind}").is_ok());
        assert!(
            check_topic_template("a/{ward}")
                .unwrap_err()
                .contains("{ward}")
        );
        assert!(check_topic_template("a/+/b").is_err());
        assert!(check_topic_template("a/{patient").is_err());
    }
}
