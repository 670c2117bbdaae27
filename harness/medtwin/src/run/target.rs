//! What telemetry is sent to: the scenario's external target, or the
//! embedded reference backend started for the run (fed over the scenario's
//! transport, sending its alerts to every intake the run opened, with the
//! scenario's fault knobs), and how the run winds down.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use medtwin_backend::{BackendConfig, BackendHandle, Signing, Stats};

use super::Start;
use crate::clock::SimClock;
use crate::intake::TargetInfo;
use crate::scenario::Scenario;
use crate::scenario::auth::{AuthSpec, SecretSource};
use crate::scenario::interop::{IntakeKind, Protocol, Signature};
use crate::transport::auth::Auth;
use crate::transport::select::TargetConfig;

/// Lanes (and keep-alive connections) towards the embedded backend.
const EMBEDDED_LANES: usize = 8;
/// Per-request timeout towards the embedded backend.
const EMBEDDED_TIMEOUT: Duration = Duration::from_secs(5);

/// The run's target.
pub struct Target {
    /// Where and how to send.
    pub config: TargetConfig,
    /// The embedded backend, when it is the target.
    pub backend: Option<BackendHandle>,
    /// What intakes that talk to the target need (FHIR base, token).
    pub info: TargetInfo,
}

/// Where the run's intakes listen, for the embedded backend to send to.
pub struct Listening<'a> {
    /// Each open intake's kind and address.
    pub intakes: &'a [(IntakeKind, String)],
    /// The webhook's HMAC secret (signed webhooks).
    pub secret: &'a str,
    /// The run's MQTT broker (`mqtt://host:port`), when it has one.
    pub mqtt_broker: Option<String>,
    /// The intakes' TLS certificate fingerprint, when they speak TLS: the
    /// embedded backend pins it.
    pub tls_fingerprint: Option<String>,
}

/// The run's MQTT broker: the embedded one (started here, stopped when
/// dropped) when the embedded backend takes telemetry over MQTT or sends
/// alerts to an MQTT intake that names no broker; the target itself when
/// an external target speaks MQTT.
pub enum MqttBroker {
    /// None needed.
    None,
    /// The external target's.
    External(String),
    /// Started for this run.
    Embedded(medtwin_mqtt::Broker),
}

impl MqttBroker {
    /// `mqtt://host:port`, when there is one.
    pub fn address(&self) -> Option<String> {
        match self {
            MqttBroker::None => None,
            MqttBroker::External(url) => Some(url.clone()),
            MqttBroker::Embedded(b) => Some(format!("mqtt://{}", b.addr())),
        }
    }
}

/// Starts the run's MQTT broker when it needs one (see [`MqttBroker`]).
pub async fn mqtt_broker(s: &Scenario) -> anyhow::Result<MqttBroker> {
    let mqtt_telemetry = s.transport.protocol == Protocol::Mqtt;
    if let Some(t) = &s.target {
        return Ok(if mqtt_telemetry {
            MqttBroker::External(t.url.clone())
        } else {
            MqttBroker::None
        });
    }
    let mqtt_alerts =
        s.alerts.intake.kinds.contains(&IntakeKind::Mqtt) && s.alerts.intake.mqtt.broker.is_none();
    if mqtt_telemetry || mqtt_alerts {
        let broker = crate::transport::mqtt::embedded_broker().await?;
        return Ok(MqttBroker::Embedded(broker));
    }
    Ok(MqttBroker::None)
}

impl Listening<'_> {
    fn address(&self, kind: IntakeKind) -> Option<&str> {
        self.intakes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| a.as_str())
    }
}

/// How the embedded backend authenticates its alerts to the webhook:
/// `token` as a bearer, or an HMAC with `secret` (`[alerts.webhook]
/// signature`).
pub fn sign_alerts(config: &mut BackendConfig, signature: Signature, token: &str, secret: &str) {
    match signature {
        Signature::Bearer => config.alerts_token = Some(token.to_owned()),
        Signature::Github => {
            config.alerts_signing = Some(Signing::Github {
                secret: secret.to_owned(),
            });
        }
        Signature::Stripe => {
            config.alerts_signing = Some(Signing::Stripe {
                secret: secret.to_owned(),
            });
        }
    }
}

/// The scenario's external target, or the embedded backend started now.
/// The embedded one takes a fresh random bearer token, known only to this
/// run's transport, so no other local process can feed it telemetry or
/// read it.
pub async fn start(
    s: &Scenario,
    listening: &Listening<'_>,
    start: &Start,
    run_id: &str,
) -> anyhow::Result<Target> {
    let choice = &s.transport;
    if let Some(t) = &s.target {
        let mut config = TargetConfig {
            run_id: Some(run_id.to_owned()),
            ..TargetConfig::new(choice, t.url.clone(), t.timeout, t.concurrency)
        };
        let tls = config.client_tls()?;
        config.auth = target_auth(&t.auth, tls.as_deref(), t.timeout)?;
        let fhir_base = s
            .alerts
            .intake
            .fhir
            .base
            .clone()
            .or_else(|| (choice.protocol == Protocol::Fhir).then(|| t.url.clone()));
        return Ok(Target {
            info: TargetInfo {
                fhir_base,
                auth: config.auth.clone(),
                tls,
            },
            config,
            backend: None,
        });
    }
    let token = super::random_token();
    let mut config = BackendConfig::new(listening.address(IntakeKind::Webhook).unwrap_or(""));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    sign_alerts(
        &mut config,
        s.alerts.intake.webhook.signature.unwrap_or_default(),
        &start.token,
        listening.secret,
    );
    if let Some(pin) = &listening.tls_fingerprint {
        config.alerts_tls.pin_sha256 = Some(pin.clone());
    }
    config.token = Some(token.clone());
    config.faults = s.backend.faults;
    // The scenario's delay is simulated time; the backend waits on the wall.
    config.faults.delay_alerts = start.clock.wall(millis(s.backend.faults.delay_alerts));
    config.smoothing = Duration::from_millis(s.backend.smoothing_ms);
    config.reset_after = Duration::from_millis(s.backend.reset_after_ms);
    config.seed = s.sim.seed;
    if choice.protocol == Protocol::Hl7Mllp {
        config.ingest.mllp = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let mqtt_url = crate::transport::mqtt::wire_embedded_backend(
        &mut config,
        s,
        listening.mqtt_broker.as_deref(),
        listening.address(IntakeKind::Mqtt).is_some(),
        run_id,
    )?;
    if let Some(addr) = listening.address(IntakeKind::Acm) {
        config.sinks.push(medtwin_backend::sink::Sink::Acm {
            addr: addr.to_owned(),
        });
    }
    let handle = medtwin_backend::start(config)
        .await
        .context("cannot start the embedded reference backend")?;
    let http = format!("http://{}", handle.addr());
    let url = match choice.protocol {
        Protocol::HttpJson => format!("{http}/v1/measurements"),
        Protocol::Fhir => format!("{http}/fhir"),
        Protocol::Mqtt => mqtt_url.context("no MQTT broker for the embedded backend")?,
        Protocol::Hl7Mllp => match handle.mllp_addr() {
            Some(addr) => format!("mllp://{addr}"),
            None => anyhow::bail!("the embedded reference backend opened no MLLP listener"),
        },
        Protocol::File => anyhow::bail!(
            "the embedded reference backend cannot take telemetry over {} in this build",
            choice.protocol.name()
        ),
    };
    let fhir_base = Some(
        s.alerts
            .intake
            .fhir
            .base
            .clone()
            .unwrap_or_else(|| format!("{http}/fhir")),
    );
    let auth = Auth::bearer(&token)?;
    Ok(Target {
        config: TargetConfig {
            auth: auth.clone(),
            run_id: Some(run_id.to_owned()),
            ..TargetConfig::new(choice, url, EMBEDDED_TIMEOUT, EMBEDDED_LANES)
        },
        backend: Some(handle),
        info: TargetInfo {
            fhir_base,
            auth,
            tls: None,
        },
    })
}

/// The external target's authentication: `[target.auth]` (or `[target]
/// token`), else `MEDTWIN_TARGET_TOKEN` as a bearer token when it is set,
/// else none. Secrets are read now: an error names the variable or file.
fn target_auth(
    spec: &AuthSpec,
    tls: Option<&medtwin_tls::ClientTls>,
    timeout: Duration,
) -> anyhow::Result<Auth> {
    let spec = match spec {
        AuthSpec::None if std::env::var_os(TARGET_TOKEN_ENV).is_some_and(|v| !v.is_empty()) => {
            AuthSpec::Bearer(SecretSource::Env(TARGET_TOKEN_ENV.to_owned()))
        }
        spec => spec.clone(),
    };
    Auth::from_spec(&spec, tls, timeout)
        .with_context(|| format!("[target.auth] ({})", spec.mechanism()))
}

/// The bearer token for an external target when the scenario names none.
pub const TARGET_TOKEN_ENV: &str = "MEDTWIN_TARGET_TOKEN";

/// Lets simulated time run out on the wall clock, then gives late alerts
/// their grace period (stopping the embedded backend gracefully within it).
/// Returns the embedded backend's final counters.
pub async fn wind_down(
    s: &Scenario,
    clock: &SimClock,
    backend: Option<BackendHandle>,
) -> Option<Stats> {
    if let Some(end) = clock.due(s.sim.duration_ms) {
        tokio::time::sleep_until(end.into()).await;
    }
    match backend {
        Some(handle) => {
            let grace = s.alerts.grace + clock.wall(millis(s.backend.faults.delay_alerts));
            Some(handle.shutdown(grace).await)
        }
        None => {
            tokio::time::sleep(s.alerts.grace).await;
            None
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
