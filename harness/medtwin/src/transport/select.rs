//! Which protocol carries the telemetry, and wiring it up: the scenario's
//! `[target] transport` (or `--transport`) picks a [`Protocol`]; [`connect`]
//! runs the protocol's setup (FHIR creates the patients and devices, MQTT
//! opens its connections, MLLP its sockets) before the twin starts, and
//! returns the carrier and the encoder that feed the lanes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use medtwin_sim::Measurement;

use super::file::FileCarrier;
use super::http::{HttpCarrier, HttpConfig};
use super::json::{JsonEncoder, Names};
use super::mqtt::MqttCarrier;
use super::{Carrier, Encoder, Outgoing, Sent};
pub use crate::scenario::interop::{
    Encoding, FhirOptions, FileOptions, Hl7Options, MqttOptions, Protocol, TransportChoice,
};

/// Where and how to send telemetry, resolved from the scenario (or the
/// embedded backend's addresses).
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// The body encoding (the protocol's default unless the scenario says).
    pub encoding: Encoding,
    /// Where: an `http://` URL (HTTP JSON), a FHIR base URL, `mqtt://host:port`,
    /// `mllp://host:port`, or a file path.
    pub url: String,
    /// How to authenticate (HTTP and FHIR: the `Authorization` header;
    /// MQTT: the password).
    pub auth: super::auth::Auth,
    /// Timeout of each request or acknowledgement.
    pub timeout: Duration,
    /// Lanes, and connections where the protocol keeps one per lane.
    pub lanes: usize,
    /// The run's id, sent where the protocol has a place for it.
    pub run_id: Option<String>,
    /// `[target.fhir]`.
    pub fhir: FhirOptions,
    /// `[target.mqtt]`.
    pub mqtt: MqttOptions,
    /// `[target.hl7]`.
    pub hl7: Hl7Options,
    /// `[target.file]`.
    pub file: FileOptions,
    /// `[target.tls]` and the `--ca-cert` family; used when the address
    /// asks for TLS (`https://`, `mqtts://`, `mllps://`).
    pub tls: medtwin_tls::ClientOptions,
}

impl TargetConfig {
    /// An HTTP JSON target at `url` with default options.
    pub fn http(url: impl Into<String>, timeout: Duration, lanes: usize) -> TargetConfig {
        TargetConfig::new(&TransportChoice::default(), url, timeout, lanes)
    }

    /// A target at `url` over the scenario's transport choice, with no
    /// authentication and no run id.
    pub fn new(
        choice: &TransportChoice,
        url: impl Into<String>,
        timeout: Duration,
        lanes: usize,
    ) -> TargetConfig {
        TargetConfig {
            protocol: choice.protocol,
            encoding: choice.encoding,
            url: url.into(),
            auth: super::auth::Auth::none(),
            timeout,
            lanes,
            run_id: None,
            fhir: choice.fhir.clone(),
            mqtt: choice.mqtt.clone(),
            hl7: choice.hl7.clone(),
            file: choice.file.clone(),
            tls: choice.tls.clone(),
        }
    }

    /// The client TLS for this target: `None` for a plain address; an error
    /// naming the file or option that is wrong.
    pub fn client_tls(&self) -> anyhow::Result<Option<std::sync::Arc<medtwin_tls::ClientTls>>> {
        if !crate::scenario::interop::uses_tls(&self.url) {
            return Ok(None);
        }
        let tls = medtwin_tls::ClientTls::new(&self.tls)
            .map_err(|e| anyhow::anyhow!("TLS towards {}: {e}", self.url))?;
        Ok(Some(std::sync::Arc::new(tls)))
    }

    /// The HTTP settings, for the protocols that speak HTTP.
    pub fn http_config(&self) -> anyhow::Result<HttpConfig> {
        Ok(HttpConfig {
            url: self.url.clone(),
            waveform_url: super::waves::waveform_url(&self.url),
            auth: self.auth.clone(),
            timeout: self.timeout,
            connections: self.lanes,
            run_id: self.run_id.clone(),
            tls: self.client_tls()?,
        })
    }
}

/// What encoders need beside the measurement: names by index and the run's
/// time zero.
#[derive(Clone, Debug)]
pub struct EncodeContext {
    /// Patient, device and model names by index.
    pub names: Names,
    /// Wall-clock time of simulated zero.
    pub start: SystemTime,
}

/// A connected transport's two halves.
pub struct Wired {
    /// Takes the bodies to the target.
    pub carrier: AnyCarrier,
    /// Makes the bodies (runs on the twin's thread).
    pub encoder: AnyEncoder,
}

/// Runs the protocol's setup and returns its carrier and encoder.
pub async fn connect(cfg: &TargetConfig, ctx: &EncodeContext) -> anyhow::Result<Wired> {
    match cfg.protocol {
        Protocol::HttpJson => {
            let carrier = HttpCarrier::new(cfg.http_config()?, "application/json")
                .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
            Ok(Wired {
                carrier: AnyCarrier::Http(carrier),
                encoder: encoder(cfg.encoding, ctx)?,
            })
        }
        Protocol::Fhir => super::fhir::connect(cfg, ctx).await,
        Protocol::Mqtt => super::mqtt::connect(cfg, ctx).await,
        Protocol::Hl7Mllp => super::hl7::connect(cfg, ctx).await,
        Protocol::File => {
            let encoder = encoder(cfg.encoding, ctx)?;
            let carrier = FileCarrier::create(&cfg.url, &cfg.file, encoder.content_type(), ctx)?;
            Ok(Wired {
                carrier: AnyCarrier::File(carrier),
                encoder,
            })
        }
    }
}

/// The encoder of an encoding, for carriers that take any (MQTT, file).
pub fn encoder(encoding: Encoding, ctx: &EncodeContext) -> anyhow::Result<AnyEncoder> {
    match encoding {
        Encoding::Json => Ok(AnyEncoder::Json(JsonEncoder::new(
            ctx.names.clone(),
            ctx.start,
        ))),
        Encoding::Fhir => super::fhir::encoder(ctx),
        Encoding::Hl7 => super::hl7::encoder(ctx),
    }
}

/// Every carrier, so the lanes stay monomorphic.
pub enum AnyCarrier {
    /// HTTP POST of each body.
    Http(HttpCarrier),
    /// NDJSON lines to a file.
    File(FileCarrier),
    /// FHIR R4 Observations and transaction Bundles.
    Fhir(super::fhir::FhirCarrier),
    /// MQTT publishes.
    Mqtt(MqttCarrier),
    /// HL7 v2 over MLLP, waiting for each ACK.
    Mllp(super::hl7::MllpCarrier),
}

impl Carrier for AnyCarrier {
    fn batch_limit(&self) -> usize {
        match self {
            AnyCarrier::Http(c) => c.batch_limit(),
            AnyCarrier::File(c) => c.batch_limit(),
            AnyCarrier::Fhir(c) => c.batch_limit(),
            AnyCarrier::Mqtt(c) => c.batch_limit(),
            AnyCarrier::Mllp(c) => c.batch_limit(),
        }
    }

    async fn send(&self, batch: &[Outgoing]) -> Sent {
        match self {
            AnyCarrier::Http(c) => c.send(batch).await,
            AnyCarrier::File(c) => c.send(batch).await,
            AnyCarrier::Fhir(c) => c.send(batch).await,
            AnyCarrier::Mqtt(c) => c.send(batch).await,
            AnyCarrier::Mllp(c) => c.send(batch).await,
        }
    }

    fn destination(&self) -> &str {
        match self {
            AnyCarrier::Http(c) => c.destination(),
            AnyCarrier::File(c) => c.destination(),
            AnyCarrier::Fhir(c) => c.destination(),
            AnyCarrier::Mqtt(c) => c.destination(),
            AnyCarrier::Mllp(c) => c.destination(),
        }
    }

    async fn close(&self) {
        match self {
            AnyCarrier::Http(c) => c.close().await,
            AnyCarrier::File(c) => c.close().await,
            AnyCarrier::Fhir(c) => c.close().await,
            AnyCarrier::Mqtt(c) => c.close().await,
            AnyCarrier::Mllp(c) => c.close().await,
        }
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        match self {
            AnyCarrier::Http(c) => c.counters(),
            AnyCarrier::File(c) => c.counters(),
            AnyCarrier::Fhir(c) => c.counters(),
            AnyCarrier::Mqtt(c) => c.counters(),
            AnyCarrier::Mllp(c) => c.counters(),
        }
    }
}

/// Every encoder.
pub enum AnyEncoder {
    /// medtwin's JSON.
    Json(JsonEncoder),
    /// FHIR R4 Observations, one per line.
    Fhir(super::fhir::FhirEncoder),
    /// HL7 v2 ORU^R01 (IHE PCD-01).
    Hl7(super::hl7::Hl7Encoder),
}

impl Encoder for AnyEncoder {
    fn content_type(&self) -> &'static str {
        match self {
            AnyEncoder::Json(e) => e.content_type(),
            AnyEncoder::Fhir(e) => e.content_type(),
            AnyEncoder::Hl7(e) => e.content_type(),
        }
    }

    fn encode(&self, m: &Measurement, out: &mut Vec<u8>) {
        match self {
            AnyEncoder::Json(e) => e.encode(m, out),
            AnyEncoder::Fhir(e) => e.encode(m, out),
            AnyEncoder::Hl7(e) => e.encode(m, out),
        }
    }
}
