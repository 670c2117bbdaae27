//! What the command line changes in a scenario: seed, target, clock and
//! the reference backend's fault knobs (`medtwin run` flags).

use std::time::Duration;

use medtwin_backend::PctKnob;

use super::{Clock, Scenario, Target};

/// Changes to a loaded scenario, each already checked on its own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Another seed.
    pub seed: Option<u64>,
    /// Drive this URL instead of the scenario's target or the embedded
    /// backend.
    pub target: Option<String>,
    /// Another transport.
    pub transport: Option<super::interop::Protocol>,
    /// Another encoding.
    pub encoding: Option<super::interop::Encoding>,
    /// Other intakes (none: the scenario's).
    pub intakes: Vec<super::interop::IntakeKind>,
    /// Another clock.
    pub clock: Option<Clock>,
    /// Reference-backend percentage knobs.
    pub pct: Vec<(PctKnob, f64)>,
    /// Reference-backend alert delay, simulated ms.
    pub delay_alerts_ms: Option<u64>,
    /// Where the webhook listens.
    pub alerts_listen: Option<std::net::SocketAddr>,
    /// The webhook's bearer token.
    pub alerts_token: Option<String>,
    /// The run's wall-time deadline.
    pub max_wall: Option<Duration>,
    /// The run's memory limit, bytes.
    pub max_memory: Option<u64>,
    /// TLS on the intakes (`--alerts-tls`, ...): replaces `[alerts.tls]`.
    pub alerts_tls: Option<medtwin_tls::ServerOptions>,
    /// TLS options from the command line (`--ca-cert`, ...): each one set
    /// replaces the scenario's `[target.tls]` field.
    pub tls: medtwin_tls::ClientOptions,
}

impl Overrides {
    /// Whether any fault knob of the reference backend is set.
    pub fn has_fault_knobs(&self) -> bool {
        !self.pct.is_empty() || self.delay_alerts_ms.is_some()
    }
}

impl Scenario {
    /// The scenario with `o` applied; an error when the changes contradict
    /// each other or the scenario (fault knobs with an external target).
    pub fn with(mut self, o: &Overrides) -> Result<Scenario, String> {
        if let Some(seed) = o.seed {
            self.sim.seed = seed;
        }
        if let Some(url) = &o.target {
            let (timeout, concurrency) = self
                .target
                .as_ref()
                .map_or((Duration::from_secs(5), 8), |t| (t.timeout, t.concurrency));
            let auth = self
                .target
                .as_ref()
                .map(|t| t.auth.clone())
                .unwrap_or_default();
            self.target = Some(Target {
                url: url.clone(),
                auth,
                timeout,
                concurrency,
            });
        }
        if let Some(protocol) = o.transport {
            let streams = self
                .sim
                .cohorts
                .iter()
                .any(|c| c.devices.iter().any(|d| d.waveform.is_some()));
            if streams && protocol != super::interop::Protocol::HttpJson {
                return Err(format!(
                    "--transport {}: the scenario's waveform devices stream over http-json only \
                     (or write them to files with `medtwin record`)",
                    protocol.name()
                ));
            }
            let t = &mut self.transport;
            t.protocol = protocol;
            if !protocol.encodings().contains(&t.encoding) {
                t.encoding = protocol.default_encoding();
            }
        }
        if let Some(encoding) = o.encoding {
            let protocol = self.transport.protocol;
            if !protocol.encodings().contains(&encoding) {
                return Err(format!(
                    "--encoding {}: the {} transport carries {}",
                    encoding.name(),
                    protocol.name(),
                    protocol
                        .encodings()
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            self.transport.encoding = encoding;
        }
        if o.transport.is_some() || o.target.is_some() {
            let protocol = self.transport.protocol;
            match &self.target {
                Some(t) => super::interop::check_target_address(&t.url, protocol)
                    .map_err(|e| format!("--target: {e}"))?,
                None if protocol == super::interop::Protocol::File => {
                    return Err(
                        "--transport file needs --target <file>: the file to record to".into(),
                    );
                }
                None => {}
            }
        }
        if !o.intakes.is_empty() {
            let mut kinds = Vec::new();
            for k in &o.intakes {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
            self.alerts.intake.kinds = kinds;
        }
        if let Some(clock) = o.clock {
            self.clock = clock;
        }
        if let Some(listen) = o.alerts_listen {
            self.alerts.listen = listen;
        }
        if o.alerts_tls.is_some() {
            self.alerts.tls.clone_from(&o.alerts_tls);
        }
        if let Some(token) = &o.alerts_token {
            self.alerts.token = Some(token.clone());
            self.alerts.token_source = "--alerts-token-file";
        }
        let tls = &mut self.transport.tls;
        let cli = &o.tls;
        for (field, given) in [
            (&mut tls.ca_cert, &cli.ca_cert),
            (&mut tls.client_cert, &cli.client_cert),
            (&mut tls.client_key, &cli.client_key),
            (&mut tls.identities, &cli.identities),
        ] {
            if given.is_some() {
                field.clone_from(given);
            }
        }
        if cli.pin_sha256.is_some() {
            tls.pin_sha256.clone_from(&cli.pin_sha256);
        }
        if cli.server_name.is_some() {
            tls.server_name.clone_from(&cli.server_name);
        }
        tls.insecure_skip_verify |= cli.insecure_skip_verify;
        if !cli.is_default() {
            match self.target.as_ref().map(|t| t.url.as_str()) {
                Some(url) if super::interop::uses_tls(url) => {}
                Some(url) => {
                    return Err(format!(
                        "--ca-cert, --client-cert and the other TLS options need a TLS target; {url} is not one (use https://, mqtts:// or mllps://)"
                    ));
                }
                None => {
                    return Err("--ca-cert, --client-cert and the other TLS options need a --target (the embedded reference backend is reached without TLS)".into());
                }
            }
        }
        if o.max_wall.is_some() {
            self.max_wall = o.max_wall;
        }
        if o.max_memory.is_some() {
            self.max_memory = o.max_memory;
        }
        if o.has_fault_knobs() && self.target.is_some() {
            return Err("the fault knobs (--drop-alerts-pct, --delay-alerts, ...) apply to the embedded reference backend, not to a --target".into());
        }
        for &(knob, pct) in &o.pct {
            *self.backend.faults.pct_mut(knob) = pct;
        }
        if let Some(ms) = o.delay_alerts_ms {
            self.backend.faults.delay_alerts = Duration::from_millis(ms);
        }
        Ok(self)
    }
}
