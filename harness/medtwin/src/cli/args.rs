//! The command line's arguments (clap derive): every flag, its parser and
//! its help. Values are checked here, as they are parsed, so a bad flag is
//! a usage error naming the flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use medtwin_backend::PctKnob;

use crate::scenario::{self, Clock, Overrides};

/// medtwin: a digital twin of connected care. Simulates patients, their
/// devices and networks, drives the telemetry into a backend and checks
/// the backend's alerts.
#[derive(Debug, Parser)]
#[command(name = "medtwin", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a backend and check its alerts.
    Run(RunArgs),
    /// Check scenario files and report every error with its position.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the reference NEWS2 backend on its own.
    ReferenceBackend(BackendArgs),
    /// Re-render junit.xml and index.html from a report.json (or its folder).
    Report {
        /// report.json, or the run folder holding it.
        path: PathBuf,
    },
    /// Compare two runs or suites; exit 1 past a regression threshold.
    Compare(CompareArgs),
    /// List the profiles, conditions, interventions, networks or devices a scenario can name.
    List {
        /// What to list.
        what: crate::list::ListWhat,
        /// Also read profiles from these files.
        #[arg(long, value_name = "FILE")]
        catalogue: Vec<PathBuf>,
    },
    /// Measure the twin on this machine.
    Bench(BenchArgs),
    /// Send a recording made by the file transport to a target.
    Replay(ReplayArgs),
    /// Write a test CA, a server certificate and a client certificate per
    /// device and gateway of a scenario (for `[target.tls] identities`).
    Certs(CertsArgs),
    /// Run a scenario's twin as fast as it can, no target, and write its
    /// vitals (CSV, NDJSON) and waveforms (WFDB with annotations, EDF+).
    Record(RecordArgs),
    /// Serve a live ward in the browser for training: central station,
    /// bedside monitors, instructor console, after-action report.
    Serve(super::serve::ServeArgs),
    /// Drive the fleet as an open workload against a target: latency from
    /// each message's scheduled time, stage profiles, thresholds (exit 5).
    Load(super::load::LoadArgs),
    /// Merge the reports of `medtwin load --shard` runs into one.
    Merge(super::load::MergeArgs),
}

/// `medtwin record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What to write: any of wfdb, edf, vitals, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values = ["wfdb", "edf", "vitals"])]
    pub formats: Vec<RecordFormat>,
}

/// A format `medtwin record` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// WFDB records (.hea, .dat format 16) with annotations (.atr).
    Wfdb,
    /// EDF+C files with an annotations signal.
    Edf,
    /// vitals.csv and vitals.ndjson.
    Vitals,
}

/// `medtwin certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The scenario whose devices and gateways get an identity each.
    pub scenario: PathBuf,
    /// The folder to write into (created; refused if it already holds a CA).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A name (DNS name or IP address) the server certificate is valid for
    /// (repeat for several; default: localhost and 127.0.0.1).
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_names: Vec<String>,
    /// Revoke this identity (a device's or gateway's name, as written) in
    /// `ca.crl` (repeat for several).
    #[arg(long = "revoke", value_name = "NAME")]
    pub revoke: Vec<String>,
}

/// `medtwin replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The NDJSON recording (`[target] transport = "file"`).
    pub file: PathBuf,
    /// Where to send it (as `[target] url` for the transport).
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// The transport: http-json, fhir, mqtt or hl7-mllp; it must carry the
    /// recording's encoding.
    #[arg(long, value_name = "NAME", value_parser = protocol, default_value = "http-json")]
    pub transport: scenario::interop::Protocol,
    /// A file holding the bearer token (default: `MEDTWIN_TARGET_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub token: Option<String>,
    /// Per request or acknowledgement, e.g. `5s`.
    #[arg(long, value_name = "DURATION", value_parser = duration_ms, default_value = "5s")]
    pub timeout: u64,
    /// Lanes (connections); each patient's messages stay in order on one.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// TLS towards the target.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS towards the target (`[target.tls]` in a scenario; see
/// docs/security.md). Each flag given replaces the scenario's field.
#[derive(Clone, Debug, Default, Args)]
pub struct TlsArgs {
    /// Trust only the CAs in this PEM bundle (instead of the system's).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint
    /// (as a self-signed medtwin listener prints it).
    #[arg(long, value_name = "HEX")]
    pub pin_sha256: Option<String>,
    /// The client certificate (PEM chain) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// A folder of per-device or per-gateway identities (`<name>.crt`,
    /// `<name>.key`), for a connection per device (MQTT).
    #[arg(long, value_name = "DIR")]
    pub identities: Option<PathBuf>,
    /// Check the target's certificate against this name instead of the
    /// URL's host.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Accept any certificate from the target. Insecure: the run says so on
    /// the terminal and in its report.
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

impl TlsArgs {
    /// The options these flags give.
    pub fn options(&self) -> medtwin_tls::ClientOptions {
        medtwin_tls::ClientOptions {
            ca_cert: self.ca_cert.clone(),
            pin_sha256: self.pin_sha256.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            identities: self.identities.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            server_name: self.tls_server_name.clone(),
        }
    }
}

/// TLS on a listener medtwin runs (`[alerts.tls]` for a run's intakes).
#[derive(Clone, Debug, Default, Args)]
pub struct ListenerTlsArgs {
    /// Serve over TLS with a generated self-signed certificate (its SHA-256
    /// fingerprint is printed, for clients to pin).
    #[arg(long = "tls-self-signed", conflicts_with = "tls_cert")]
    pub self_signed: bool,
    /// Serve over TLS with this certificate chain (PEM).
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's key (PEM).
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by a CA in this bundle (PEM).
    #[arg(long = "tls-client-ca", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Refuse client certificates on this CRL (PEM).
    #[arg(long = "tls-client-crl", value_name = "FILE", requires = "client_ca")]
    pub client_crl: Option<PathBuf>,
}

impl ListenerTlsArgs {
    /// The listener's TLS, when any flag asks for it.
    pub fn options(&self) -> Option<medtwin_tls::ServerOptions> {
        let wanted = self.self_signed || self.tls_cert.is_some() || self.client_ca.is_some();
        wanted.then(|| medtwin_tls::ServerOptions {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            names: Vec::new(),
            client_ca: self.client_ca.clone(),
            client_crl: self.client_crl.clone(),
        })
    }
}

/// How the reference backend signs its webhook requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignatureStyle {
    /// `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>`.
    Stripe,
}

/// `--clock` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockMode {
    /// As fast as possible.
    Virtual,
    /// One simulated second per wall second.
    RealTime,
    /// `--speed` simulated seconds per wall second.
    Accelerated,
}

/// The reference backend's fault knobs, shared by `run` (overriding the
/// scenario's `[backend]`) and `reference-backend`.
#[derive(Clone, Debug, Default, Args)]
pub struct FaultArgs {
    /// Reference backend: drop this percentage of alerts.
    #[arg(long, value_name = "PCT", value_parser = pct)]
    pub drop_alerts_pct: Option<f64>,
    /// Reference backend: delay every alert by this much (simulated time in
    /// `run`, wall time in `reference-backend`).
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    pub delay_alerts: Option<u64>,
    /// Reference backend: send this percentage of alerts twice.
    #[arg(long, value_name = "PCT", value_parser = pct)]
    pub duplicate_alerts_pct: Option<f64>,
    /// Reference backend: this percentage of scored messages raise a spurious alert.
    #[arg(long, value_name = "PCT", value_parser = pct)]
    pub spurious_alerts_pct: Option<f64>,
    /// Reference backend: this percentage of alerts name another patient.
    #[arg(long, value_name = "PCT", value_parser = pct)]
    pub wrong_patient_pct: Option<f64>,
    /// Reference backend: this percentage of alerts carry the other NEWS2 kind.
    #[arg(long, value_name = "PCT", value_parser = pct)]
    pub wrong_kind_pct: Option<f64>,
}

impl FaultArgs {
    /// The percentage knobs given, in [`PctKnob::ALL`] order.
    pub fn pcts(&self) -> Vec<(PctKnob, f64)> {
        PctKnob::ALL
            .into_iter()
            .filter_map(|knob| {
                let value = match knob {
                    PctKnob::DropAlerts => self.drop_alerts_pct,
                    PctKnob::DuplicateAlerts => self.duplicate_alerts_pct,
                    PctKnob::SpuriousAlerts => self.spurious_alerts_pct,
                    PctKnob::WrongPatient => self.wrong_patient_pct,
                    PctKnob::WrongKind => self.wrong_kind_pct,
                };
                value.map(|v| (knob, v))
            })
            .collect()
    }
}

/// `medtwin run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file, or a folder: every `*.toml` in it runs as a suite.
    pub path: PathBuf,
    /// Run each scenario with N seeds: the scenario's (or `--seed`'s), +1, ...
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seeds: u64,
    /// Runs at once in a suite.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Write the report here instead of `reports/<run-id>/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Send telemetry to this URL instead of the scenario's target or the
    /// embedded reference backend (`http://...` for http-json and fhir,
    /// `mqtt://host:port`, `mllp://host:port`, or a file path for file).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Carry telemetry over this transport instead of the scenario's:
    /// http-json, fhir, mqtt, hl7-mllp or file.
    #[arg(long, value_name = "NAME", value_parser = protocol)]
    pub transport: Option<scenario::interop::Protocol>,
    /// Encode telemetry so (json, fhir or hl7), where the transport can
    /// carry several (mqtt, file).
    #[arg(long, value_name = "NAME", value_parser = encoding)]
    pub encoding: Option<scenario::interop::Encoding>,
    /// Receive alerts through this intake instead of the scenario's
    /// (repeat for several): webhook, acm, mqtt, fhir-subscription,
    /// fhir-poll.
    #[arg(long = "intake", value_name = "NAME", value_parser = intake)]
    pub intakes: Vec<scenario::interop::IntakeKind>,
    /// Override the clock mode.
    #[arg(long, value_name = "MODE")]
    pub clock: Option<ClockMode>,
    /// Speed for `--clock accelerated` (simulated seconds per wall second,
    /// up to 1000000).
    #[arg(long, value_parser = speed)]
    pub speed: Option<f64>,
    /// Listen for the target's alerts here (default: the scenario's
    /// `[alerts] listen`, else loopback on a free port).
    #[arg(long, value_name = "ADDR")]
    pub alerts_listen: Option<SocketAddr>,
    /// Serve the intakes (webhook, ACM, FHIR rest-hook) over TLS; without
    /// `--alerts-tls-cert`, with a generated self-signed certificate whose
    /// fingerprint is printed (as `[alerts.tls]`).
    #[arg(long)]
    pub alerts_tls: bool,
    /// The intakes' certificate chain (PEM); implies `--alerts-tls`.
    #[arg(long, value_name = "FILE", requires = "alerts_tls_key")]
    pub alerts_tls_cert: Option<PathBuf>,
    /// The intakes' certificate key (PEM).
    #[arg(long, value_name = "FILE", requires = "alerts_tls_cert")]
    pub alerts_tls_key: Option<PathBuf>,
    /// Require the target's alert senders to present a certificate signed
    /// by a CA in this bundle; implies `--alerts-tls`.
    #[arg(long, value_name = "FILE")]
    pub alerts_tls_client_ca: Option<PathBuf>,
    /// A file holding the bearer token the target must send with its
    /// alerts (default: the scenario's, else `MEDTWIN_ALERT_TOKEN`, else a
    /// random one).
    #[arg(long, value_name = "FILE")]
    pub alerts_token_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub alerts_token: Option<String>,
    /// Fault knobs of the embedded reference backend.
    #[command(flatten)]
    pub faults: FaultArgs,
    /// TLS towards the target.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Stop the run after this much wall time and report what it has, e.g.
    /// `10m` (default: twice the scheduled wall time plus a minute on a
    /// timed clock; 30 min plus 2 s per million patient-steps on the
    /// virtual clock). Exit code 3.
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    pub max_wall: Option<u64>,
    /// Refuse a scenario estimated to need more memory than this, e.g.
    /// `4G` (default: the memory available on this machine).
    #[arg(long, value_name = "SIZE", value_parser = crate::scenario::limits::parse_bytes)]
    pub max_memory: Option<u64>,
    /// Print only the verdict line (no progress).
    #[arg(long, short)]
    pub quiet: bool,
}

impl RunArgs {
    /// What these flags change in a scenario.
    pub fn overrides(&self) -> Result<Overrides, String> {
        Ok(Overrides {
            seed: self.seed,
            target: self.target.clone(),
            transport: self.transport,
            encoding: self.encoding,
            intakes: self.intakes.clone(),
            clock: clock(self.clock, self.speed)?,
            pct: self.faults.pcts(),
            delay_alerts_ms: self.faults.delay_alerts,
            alerts_listen: self.alerts_listen,
            alerts_tls: (self.alerts_tls
                || self.alerts_tls_cert.is_some()
                || self.alerts_tls_client_ca.is_some())
            .then(|| medtwin_tls::ServerOptions {
                cert: self.alerts_tls_cert.clone(),
                key: self.alerts_tls_key.clone(),
                names: Vec::new(),
                client_ca: self.alerts_tls_client_ca.clone(),
                client_crl: None,
            }),
            alerts_token: match (&self.alerts_token, &self.alerts_token_file) {
                (Some(_), _) => {
                    return Err(refused_secret(
                        "--alerts-token",
                        "MEDTWIN_ALERT_TOKEN",
                        "--alerts-token-file",
                    ));
                }
                (None, Some(path)) => Some(read_secret(path, "--alerts-token-file")?),
                (None, None) => None,
            },
            max_wall: self.max_wall.map(std::time::Duration::from_millis),
            max_memory: self.max_memory,
            tls: self.tls.options(),
        })
    }
}

/// The refusal of a secret flag (whose value is never repeated): `ps`
/// shows every process's arguments to every user.
pub fn refused_secret(flag: &str, env: &str, file_flag: &str) -> String {
    format!(
        "{flag}: secrets are not taken on the command line, where `ps` shows them: set {env} or pass {file_flag} FILE"
    )
}

/// The secret in the file a `--...-file` flag names; an error names the
/// flag and the file, never the contents.
pub fn read_secret(path: &std::path::Path, flag: &str) -> Result<String, String> {
    scenario::auth::SecretSource::File(path.to_owned())
        .read()
        .map_err(|e| format!("{flag}: {e}"))
}

/// A transport's name.
pub(super) fn protocol(text: &str) -> Result<scenario::interop::Protocol, String> {
    use scenario::interop::Protocol;
    Protocol::parse(text).ok_or_else(|| {
        format!(
            "unknown transport \"{text}\" (one of: {})",
            Protocol::ALL.map(Protocol::name).join(", ")
        )
    })
}

/// An encoding's name.
fn encoding(text: &str) -> Result<scenario::interop::Encoding, String> {
    use scenario::interop::Encoding;
    Encoding::parse(text).ok_or_else(|| {
        format!(
            "unknown encoding \"{text}\" (one of: {})",
            Encoding::ALL.map(Encoding::name).join(", ")
        )
    })
}

/// An intake's name.
pub(super) fn intake(text: &str) -> Result<scenario::interop::IntakeKind, String> {
    use scenario::interop::IntakeKind;
    IntakeKind::parse(text).ok_or_else(|| {
        format!(
            "unknown intake \"{text}\" (one of: {})",
            IntakeKind::ALL.map(IntakeKind::name).join(", ")
        )
    })
}

/// The clock `--clock` and `--speed` ask for, if any.
fn clock(mode: Option<ClockMode>, speed: Option<f64>) -> Result<Option<Clock>, String> {
    Ok(match (mode, speed) {
        (None, None) => None,
        (None | Some(ClockMode::Accelerated), Some(speed)) => Some(Clock::Accelerated { speed }),
        (Some(ClockMode::Accelerated), None) => {
            return Err("--clock accelerated needs --speed".into());
        }
        (Some(ClockMode::Virtual), None) => Some(Clock::Virtual),
        (Some(ClockMode::RealTime), None) => Some(Clock::RealTime),
        (Some(mode @ (ClockMode::Virtual | ClockMode::RealTime)), Some(_)) => {
            let name = if mode == ClockMode::Virtual {
                "virtual"
            } else {
                "real-time"
            };
            return Err(format!("--speed does not apply to --clock {name}"));
        }
    })
}

/// `medtwin reference-backend`.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Webhook URL alerts are POSTed to (none: alerts go only to the other
    /// sinks named, and to the FHIR store).
    #[arg(long, value_name = "URL", value_parser = http_url)]
    pub alerts: Option<String>,
    /// A file holding the webhook's bearer token (default:
    /// `MEDTWIN_ALERT_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub alerts_token_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub alerts_token: Option<String>,
    /// Sign each webhook request with an HMAC-SHA256 of its body, GitHub
    /// or Stripe style (secret: `--alerts-secret-file`, else
    /// `MEDTWIN_ALERT_SECRET`).
    #[arg(long, value_name = "STYLE")]
    pub alerts_signature: Option<SignatureStyle>,
    /// A file holding the HMAC secret for `--alerts-signature`.
    #[arg(long, value_name = "FILE")]
    pub alerts_secret_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub alerts_secret: Option<String>,
    /// Also take HL7 v2 ORU^R01 (IHE PCD-01) over MLLP on this address.
    #[arg(long, value_name = "ADDR")]
    pub mllp_listen: Option<SocketAddr>,
    /// A file holding the bearer token every request must carry (default:
    /// `MEDTWIN_BACKEND_TOKEN`, else a random one, printed at start). Point
    /// `medtwin run --target` at it with `MEDTWIN_TARGET_TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub token: Option<String>,
    /// Fault knobs (the delay is wall time here).
    #[command(flatten)]
    pub faults: FaultArgs,
    /// Median window applied to each vital before scoring.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_ms)]
    pub smoothing: u64,
    /// Time below a threshold before the same alert can fire again.
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = duration_ms)]
    pub reset_after: u64,
    /// Seed of the fault knobs' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this much wall time (default: run until interrupted).
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    pub stop_after: Option<u64>,
    /// TLS on the backend's listeners (HTTP and MLLP).
    #[command(flatten)]
    pub tls: ListenerTlsArgs,
    /// Trust only the CAs in this bundle when delivering alerts over TLS
    /// (an https webhook, an mllps ACM intake).
    #[arg(long, value_name = "FILE")]
    pub alerts_ca_cert: Option<PathBuf>,
    /// Trust exactly the alert receiver's certificate with this SHA-256
    /// fingerprint (as a medtwin run prints it for its intakes).
    #[arg(long, value_name = "HEX")]
    pub alerts_pin_sha256: Option<String>,
}

/// `medtwin compare`: B against A. Gates on correctness by default (any
/// worsening); latency past the threshold and the spread between repeat
/// runs (one run per side on the virtual clock: the threshold alone).
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: report.json, its run folder, or a suite folder
    /// (suite.json, from `medtwin run DIR --seeds N`).
    pub a: PathBuf,
    /// The candidate: report.json, its run folder, or a suite folder.
    pub b: PathBuf,
    /// Fail when missed obligations per run grow by more than N.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_missed_increase: u64,
    /// Fail when sensitivity drops by more than X (0–1).
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = crate::compare::parse_fraction)]
    pub max_sensitivity_drop: f64,
    /// Fail when PPV drops by more than X (0–1).
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = crate::compare::parse_fraction)]
    pub max_ppv_drop: f64,
    /// Fail when false alerts per patient-day grow by more than X (default
    /// 0, unless only --max-false-alert-increase is given, which replaces it).
    #[arg(long, value_name = "X", value_parser = crate::compare::parse_rate)]
    pub max_false_rate_increase: Option<f64>,
    /// Fail when false alerts per run grow by more than N (not checked
    /// unless given).
    #[arg(long, value_name = "N")]
    pub max_false_alert_increase: Option<u64>,
    /// Fail when a latency percentile grows by more than this, e.g. `10%`,
    /// and by more than the spread between repeat runs (with one run per
    /// side: the threshold alone on the virtual clock, not gated on a timed
    /// one).
    #[arg(long, value_name = "PCT", default_value = "10%", value_parser = crate::compare::parse_pct)]
    pub max_latency_regression: f64,
    /// Compare runs of different scenarios (by default refused, exit 2).
    #[arg(long)]
    pub allow_different_scenarios: bool,
}

/// `medtwin bench` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchWhat {
    /// The physiology step and the glucose model.
    Sim,
    /// The device, gateway and network path.
    Net,
    /// ECG synthesis (samples per second on one core).
    Ecg,
}

/// `medtwin bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure: `sim` (physiology) or `net` (devices and network).
    pub what: BenchWhat,
    /// Patients to simulate (`sim`).
    #[arg(long, default_value_t = 1_000_000)]
    pub patients: u64,
    /// Devices to simulate (`net`: four per patient).
    #[arg(long, default_value_t = 100_000)]
    pub devices: u64,
    /// Threads, one twin shard each (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// One-second steps to time.
    #[arg(long, default_value_t = 60)]
    pub steps: u64,
    /// ECG sample rate, Hz (`ecg`: 125, 250 or 500).
    #[arg(long, default_value_t = 250)]
    pub rate_hz: u32,
    /// Percentage of patients with conditions (sepsis, then AF).
    #[arg(long, default_value_t = 0.0, value_name = "PCT", value_parser = pct)]
    pub sick_pct: f64,
}

/// A percentage, 0 to 100.
fn pct(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("{text} is not a percentage (0 to 100)")),
    }
}

/// A duration such as `90s`, `5m` or `1h30m`, in milliseconds.
pub(super) fn duration_ms(text: &str) -> Result<u64, String> {
    medtwin_check::duration::parse(text)
}

/// A clock speed, greater than 0 and at most 1000000.
pub(super) fn speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1_000_000.0 => Ok(v),
        _ => Err(format!("{text} is out of range (0 to 1000000]")),
    }
}

/// An absolute http(s) URL.
fn http_url(text: &str) -> Result<String, String> {
    scenario::check_http_url(text).map(|()| text.to_owned())
}
