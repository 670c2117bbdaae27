//! Scenario files: TOML in, a typed [`Scenario`] with every default
//! resolved out, or every problem in the file with its position.
//!
//! The format is documented in `docs/scenario-format.md`.

pub mod auth;
pub mod catalogue;
pub(crate) mod devices;
pub mod diag;
pub mod duration;
pub mod events;
mod expect;
mod file;
pub mod interop;
pub mod limits;
pub mod load;
mod overrides;

use medtwin_sim::waveform::{NoiseLevel, WaveformConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use medtwin_backend::{Faults, PctKnob};
use medtwin_sim::{
    CohortConfig, ConditionKind, DeviceConfig, Eviction, GatewayConfig, NetworkConfig,
    PatientSelector, ProfileSpec, SimConfig,
};
use toml::Spanned;

use catalogue::Catalogue;
pub use diag::{Diagnostic, Diagnostics};
use diag::{Reporter, suggest};
use duration::Dur;
use expect::resolve_expectations;
use file::{ClockMode, NetworkSpec, ScenarioFile};
pub use medtwin_check::{Budgets, ExpectKind, Expectation, Reference};

/// Largest population a scenario may declare (bounded memory).
pub const MAX_PATIENTS: u64 = 10_000_000;
/// Longest simulated duration a scenario may declare.
pub const MAX_DURATION_MS: u64 = 366 * 86_400_000;

/// How simulated time maps to wall time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clock {
    /// As fast as possible.
    Virtual,
    /// One simulated second per wall second.
    RealTime,
    /// `speed` simulated seconds per wall second.
    Accelerated {
        /// Simulated seconds per wall second.
        speed: f64,
    },
}

impl Clock {
    /// Simulated seconds per wall second, `None` for virtual time.
    pub fn speed(self) -> Option<f64> {
        match self {
            Clock::Virtual => None,
            Clock::RealTime => Some(1.0),
            Clock::Accelerated { speed } => Some(speed),
        }
    }

    /// The name used in scenario files and reports.
    pub fn mode_name(self) -> &'static str {
        match self {
            Clock::Virtual => "virtual",
            Clock::RealTime => "real-time",
            Clock::Accelerated { .. } => "accelerated",
        }
    }
}

/// An external backend to drive instead of the embedded one.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Where telemetry is POSTed.
    pub url: String,
    /// How medtwin authenticates to it (`[target.auth]`, or `[target]
    /// token` as a bearer token; without either the run takes
    /// `MEDTWIN_TARGET_TOKEN` when it is set).
    pub auth: auth::AuthSpec,
    /// Timeout of each request.
    pub timeout: Duration,
    /// Parallel connections (each keeps its patients' messages in order).
    pub concurrency: usize,
}

/// The webhook the target posts alerts to.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertIntake {
    /// Address to listen on (default: loopback, a free port, so runs never
    /// collide).
    pub listen: SocketAddr,
    /// Required bearer token; when `None`, the run takes
    /// `MEDTWIN_ALERT_TOKEN` or makes one up.
    pub token: Option<String>,
    /// Where `token` came from: `scenario` or `--alerts-token-file`.
    pub token_source: &'static str,
    /// How long to keep listening after the last telemetry is sent.
    pub grace: Duration,
    /// The alert kinds the target emits, when the scenario declares them
    /// (expectations must then name one of them).
    pub kinds: Option<Vec<String>>,
    /// Which intakes receive alerts, and their settings.
    pub intake: interop::IntakeChoice,
    /// TLS on the intakes' listeners (`[alerts.tls]`, `--alerts-tls`).
    pub tls: Option<medtwin_tls::ServerOptions>,
}

/// Knobs of the embedded reference backend.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendKnobs {
    /// Faults to inject into its alerting. `delay_alerts` is simulated
    /// time here; a run converts it to wall time with its clock.
    pub faults: Faults,
    /// Median window applied to each vital before scoring.
    pub smoothing_ms: u64,
    /// Time below a threshold before a level can fire again.
    pub reset_after_ms: u64,
}

impl Default for BackendKnobs {
    fn default() -> Self {
        BackendKnobs {
            faults: Faults::default(),
            smoothing_ms: 60_000,
            reset_after_ms: 600_000,
        }
    }
}

/// A scenario, validated, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// What it tests.
    pub description: Option<String>,
    /// What the twin simulates.
    pub sim: SimConfig,
    /// Wall-clock time of simulated time zero; `None`: the run's start.
    pub start: Option<SystemTime>,
    /// Clock mode.
    pub clock: Clock,
    /// External target; `None`: the embedded reference backend.
    pub target: Option<Target>,
    /// How telemetry is carried and encoded (to either).
    pub transport: interop::TransportChoice,
    /// Alert webhook.
    pub alerts: AlertIntake,
    /// Reference-backend knobs.
    pub backend: BackendKnobs,
    /// What must hold for the run to pass.
    pub expectations: Vec<Expectation>,
    /// Below this share of deliveries accepted by the target, the run
    /// cannot pass (percent).
    pub min_accepted_pct: f64,
    /// Wall time after which the run stops and reports (`--max-wall`);
    /// `None`: [`crate::scenario::limits::default_max_wall`].
    pub max_wall: Option<Duration>,
    /// Memory the run may take (`--max-memory`); `None`: what the machine
    /// has available.
    pub max_memory: Option<u64>,
    /// `[load]`: how `medtwin load` drives the fleet.
    pub load: load::LoadProfile,
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Diagnostics(vec![Diagnostic {
            file: path.to_owned(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read the file: {error}"),
            help: None,
        }])
    })?;
    parse(path, &text)
}

/// Validates scenario text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, Diagnostics> {
    let root = diag::parse_toml(path, text)?;
    let mut reporter = Reporter::new(path, text, Some(&root));
    let file: Option<ScenarioFile> = diag::deserialize_all(&mut reporter);
    // Go on to check meaning even after type errors, so one run of
    // `validate` shows every problem; the invalid keys were pruned.
    let scenario = file.map(|file| resolve(path, file, &mut reporter, text.len()));
    reporter.finish()?;
    scenario.ok_or_else(|| Diagnostics(Vec::new()))
}

fn condition(name: file::ConditionName) -> ConditionKind {
    events::condition(name)
}

pub use overrides::Overrides;

/// Semantic checks and defaults. Reports every problem; the returned value
/// is only meaningful when the reporter found none.
fn resolve(path: &Path, file: ScenarioFile, r: &mut Reporter<'_>, len: usize) -> Scenario {
    let whole = 0..len.min(1);
    let name = match &file.name {
        Some(name) => name.get_ref().clone(),
        None => {
            r.missing(whole.clone(), "name".into());
            String::new()
        }
    };
    let (duration, step_ms) = resolve_timing(&file, whole.clone(), r);
    let start = resolve_start(&file, r);
    let clock = resolve_clock(&file, r);
    let start_ms_of_day = resolve_time_of_day(&file, start, r);
    let catalogue = resolve_catalogue(path, &file, r);
    let cohorts = resolve_cohorts(&file, &catalogue, step_ms, whole, r);
    let events = events::resolve_events(&file.event, duration, &cohorts, r);
    let interventions = events::resolve_interventions(&file.intervention, duration, &cohorts, r);
    let faults = events::resolve_faults(&file.fault, duration, &cohorts, r);
    let target = resolve_target(&file, r);
    let transport = resolve_transport(&file, target.is_some(), r);
    check_waveform_transport(&file, transport.protocol, r);
    let alerts = resolve_alerts(&file, r);
    let backend = resolve_backend(&file, target.is_some(), r);
    let expectations = resolve_expectations(&file, r.source(), alerts.kinds.as_deref(), r);
    let min_accepted_pct = resolve_min_accepted(&file, r);
    let load = load::resolve(file.load.as_ref(), duration, r);
    Scenario {
        path: path.to_owned(),
        name,
        description: file.description.clone(),
        sim: SimConfig {
            seed: file.seed.unwrap_or(1),
            step_ms,
            duration_ms: duration.unwrap_or(1),
            cohorts,
            start_ms_of_day,
            events,
            interventions,
            faults,
            shard: medtwin_sim::Shard::WHOLE,
        },
        start,
        clock,
        target,
        transport,
        alerts,
        backend,
        expectations,
        min_accepted_pct,
        max_wall: None,
        max_memory: None,
        load,
    }
}

/// Default share of deliveries the target must accept, percent.
pub const DEFAULT_MIN_ACCEPTED_PCT: f64 = 99.0;

/// `[target] min_accepted_pct`.
fn resolve_min_accepted(file: &ScenarioFile, r: &mut Reporter<'_>) -> f64 {
    let value = file
        .target
        .as_ref()
        .and_then(|t| t.get_ref().min_accepted_pct.clone());
    number_in(
        &value,
        |x| (0.0..=100.0).contains(&x),
        "target.min_accepted_pct",
        "a percentage: 0 to 100",
        DEFAULT_MIN_ACCEPTED_PCT,
        r,
    )
}

/// `duration` (`None` when missing or invalid: checks against it are then
/// skipped rather than reported as knock-on errors) and `step`.
fn resolve_timing(
    file: &ScenarioFile,
    whole: std::ops::Range<usize>,
    r: &mut Reporter<'_>,
) -> (Option<u64>, u64) {
    let duration = match &file.duration {
        Some(d) if d.get_ref().ms() == 0 => {
            r.error(
                d.span(),
                Some("duration".into()),
                "duration must be positive",
                None,
            );
            None
        }
        Some(d) if d.get_ref().ms() > MAX_DURATION_MS => {
            r.error(
                d.span(),
                Some("duration".into()),
                "duration is longer than the 366-day limit",
                None,
            );
            None
        }
        Some(d) => Some(d.get_ref().ms()),
        None => {
            r.missing(whole, "duration".into());
            None
        }
    };
    let step_ms = match &file.step {
        Some(s) if s.get_ref().ms() == 0 => {
            r.error(
                s.span(),
                Some("step".into()),
                "step must be at least 1ms",
                None,
            );
            1_000
        }
        Some(s) if duration.is_some_and(|d| s.get_ref().ms() > d) => {
            r.error(
                s.span(),
                Some("step".into()),
                "step is longer than the duration",
                None,
            );
            1_000
        }
        Some(s) => s.get_ref().ms(),
        None => 1_000,
    };
    (duration, step_ms)
}

/// `start`: the wall-clock time of simulated zero, RFC 3339.
fn resolve_start(file: &ScenarioFile, r: &mut Reporter<'_>) -> Option<SystemTime> {
    file.start.as_ref().and_then(|s| {
        let parsed = medtwin_wire::parse_time(s.get_ref());
        if parsed.is_none() {
            r.error(
                s.span(),
                Some("start".into()),
                format!("invalid start time \"{}\"", s.get_ref()),
                Some("write an RFC 3339 time, e.g. \"2026-01-01T08:00:00Z\"".into()),
            );
        }
        parsed
    })
}

/// Every `[[cohort]]`: name, count, devices, network, profile.
fn resolve_cohorts(
    file: &ScenarioFile,
    catalogue: &Catalogue,
    step_ms: u64,
    whole: std::ops::Range<usize>,
    r: &mut Reporter<'_>,
) -> Vec<CohortConfig> {
    if file.cohort.is_empty() {
        r.error(
            whole.clone(),
            Some("cohort".into()),
            "a scenario needs at least one [[cohort]]",
            None,
        );
    }
    let mut cohorts = Vec::new();
    let mut n_patients: u64 = 0;
    for i in 0..file.cohort.len() {
        let cohort = resolve_cohort(file, i, catalogue, step_ms, r);
        n_patients += u64::from(cohort.count);
        cohorts.push(cohort);
    }
    if n_patients > MAX_PATIENTS {
        r.error(
            whole,
            Some("cohort".into()),
            format!("{n_patients} patients is more than the limit of {MAX_PATIENTS}"),
            None,
        );
    }
    cohorts
}

/// `[[cohort]]` number `i`.
fn resolve_cohort(
    file: &ScenarioFile,
    i: usize,
    catalogue: &Catalogue,
    step_ms: u64,
    r: &mut Reporter<'_>,
) -> CohortConfig {
    let spanned = &file.cohort[i];
    let c = spanned.get_ref();
    let at = spanned.span();
    let field = |f: &str| format!("cohort[{i}].{f}");
    let name = match &c.name {
        Some(n) => {
            let text = n.get_ref();
            if !diag::valid_name(text) {
                r.error(
                    n.span(),
                    Some(field("name")),
                    format!("invalid cohort name \"{text}\""),
                    Some("use letters, digits, `_` and `-`".into()),
                );
            } else if file.cohort[..i]
                .iter()
                .any(|o| o.get_ref().name.as_ref().map(|x| x.get_ref()) == Some(text))
            {
                r.error(
                    n.span(),
                    Some(field("name")),
                    format!("cohort name \"{text}\" is used twice"),
                    None,
                );
            }
            text.clone()
        }
        None => {
            r.missing(at.clone(), field("name"));
            format!("cohort{i}")
        }
    };
    let count = match &c.count {
        Some(n) if *n.get_ref() == 0 => {
            r.error(
                n.span(),
                Some(field("count")),
                "count must be at least 1",
                None,
            );
            1
        }
        Some(n) => *n.get_ref(),
        None => {
            r.missing(at.clone(), field("count"));
            1
        }
    };
    let mut devices = Vec::new();
    for (j, d) in c.devices.iter().enumerate() {
        let device = resolve_device(d, catalogue, step_ms, &field(&format!("devices[{j}]")), r);
        devices.extend(device);
    }
    let network = match &c.network {
        None => NetworkConfig::IDEAL,
        Some(n) => resolve_network(n, &field("network"), r),
    };
    CohortConfig {
        name,
        count,
        profile: resolve_profile(&c.profile, catalogue, &field("profile"), r),
        devices,
        network,
    }
}

/// The local time of day at simulated time zero: `time_of_day`, else the
/// time of day of `start` (taken as local time), else 08:00 (a day shift's
/// start). Never the wall clock, so the twin stays reproducible.
fn resolve_time_of_day(
    file: &ScenarioFile,
    start: Option<SystemTime>,
    r: &mut Reporter<'_>,
) -> u64 {
    if let Some(t) = &file.time_of_day {
        return match catalogue::parse_clock_time(t.get_ref()) {
            Some(minutes) => u64::from(minutes) * 60_000,
            None => {
                r.error(
                    t.span(),
                    Some("time_of_day".into()),
                    format!("invalid time of day \"{}\"", t.get_ref()),
                    Some("write 24-hour \"HH:MM\", e.g. \"22:00\"".into()),
                );
                8 * 3_600_000
            }
        };
    }
    match start.and_then(|s| s.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(since) => (since.as_millis() % 86_400_000) as u64,
        None => 8 * 3_600_000,
    }
}

/// The built-in profiles, then the scenario's `[catalogue]` files, then its
/// inline `[[profile]]` tables.
fn resolve_catalogue(path: &Path, file: &ScenarioFile, r: &mut Reporter<'_>) -> Catalogue {
    let mut catalogue = match Catalogue::builtin() {
        Ok(c) => c,
        Err(diagnostics) => {
            r.found.extend(diagnostics.0);
            Catalogue::default()
        }
    };
    // Catalogue files may hold profiles, devices or both; the key only
    // says which the author meant, for the message.
    let files = file.catalogue.iter().flat_map(|c| {
        let profiles = c.profiles.iter().enumerate();
        let profiles = profiles.map(|(i, p)| (format!("catalogue.profiles[{i}]"), "profile", p));
        let devices = c.devices.iter().enumerate();
        let devices = devices.map(|(i, p)| (format!("catalogue.devices[{i}]"), "device", p));
        profiles.chain(devices)
    });
    for (field, what, p) in files {
        let full = catalogue::relative_to(path, p.get_ref());
        if let Err(diagnostics) = catalogue.add_file(&full) {
            r.error(
                p.span(),
                Some(field),
                format!("the {what} file \"{}\" has errors (below)", p.get_ref()),
                None,
            );
            r.found.extend(diagnostics.0);
        }
    }
    for (i, entry) in file.profile.iter().enumerate() {
        catalogue.add_entry(entry, &format!("profile[{i}]"), r);
    }
    for (i, entry) in file.device.iter().enumerate() {
        catalogue.add_device(entry, &format!("device[{i}]"), r);
    }
    catalogue
}

/// One `devices` entry: a catalogue model, its cadence, charge and age.
fn resolve_device(
    d: &Spanned<file::DeviceSpec>,
    catalogue: &Catalogue,
    step_ms: u64,
    field: &str,
    r: &mut Reporter<'_>,
) -> Option<DeviceConfig> {
    let entry = d.get_ref();
    let f = |key: &str| format!("{field}.{key}");
    let Some(kind) = &entry.kind else {
        r.missing(d.span(), f("kind"));
        return None;
    };
    let Some(spec) = catalogue.device(kind.get_ref()) else {
        let names = catalogue.device_names();
        r.error(
            kind.span(),
            Some(f("kind")),
            format!("unknown device `{}`", kind.get_ref()),
            Some(match suggest(kind.get_ref(), &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "expected one of {} (see `medtwin list devices`)",
                    diag::quoted_list(&names)
                ),
            }),
        );
        return None;
    };
    let every_ms = match &entry.every {
        Some(e) if e.get_ref().ms() < step_ms => {
            r.error(
                e.span(),
                Some(f("every")),
                format!(
                    "every = \"{}\" is shorter than the step ({})",
                    e.get_ref(),
                    Dur(step_ms)
                ),
                None,
            );
            step_ms
        }
        Some(e) => e.get_ref().ms(),
        None => spec.every_ms.max(step_ms),
    };
    let battery_pct = number_in(
        &entry.battery_pct,
        |x| (0.0..=100.0).contains(&x),
        &f("battery_pct"),
        "0 to 100",
        100.0,
        r,
    );
    if entry.battery_pct.is_some() && spec.battery.is_none() {
        r.error(
            d.span(),
            Some(f("battery_pct")),
            format!("`{}` is mains powered", spec.name),
            Some("pick a battery-powered model, or drop battery_pct".into()),
        );
    }
    let waveform = resolve_waveform(d, spec, field, r);
    Some(DeviceConfig {
        spec: spec.clone(),
        every_ms,
        battery_pct,
        age_ms: entry
            .age
            .as_ref()
            .map_or(spec.default_age_ms(), |a| a.get_ref().ms()),
        waveform,
    })
}

/// A device entry's waveform keys: `waveforms = true` records the model's
/// channels at its rate; `waveform_hz`, `waveform_noise` and `mains_hz`
/// change that (and need `waveforms = true`).
fn resolve_waveform(
    d: &Spanned<file::DeviceSpec>,
    spec: &medtwin_sim::DeviceSpec,
    field: &str,
    r: &mut Reporter<'_>,
) -> Option<WaveformConfig> {
    let entry = d.get_ref();
    let f = |key: &str| format!("{field}.{key}");
    let on = entry.waveforms.as_ref().is_some_and(|w| *w.get_ref());
    if !on {
        for (set, key) in [
            (entry.waveform_hz.as_ref().map(|v| v.span()), "waveform_hz"),
            (
                entry.waveform_noise.as_ref().map(|v| v.span()),
                "waveform_noise",
            ),
            (entry.mains_hz.as_ref().map(|v| v.span()), "mains_hz"),
        ] {
            if let Some(span) = set {
                r.error(
                    span,
                    Some(f(key)),
                    format!("{key} without waveforms"),
                    Some("add `waveforms = true` to record waveforms".into()),
                );
            }
        }
        return None;
    }
    if spec.waveform_channels.is_empty() || spec.waveform_hz == 0 {
        r.error(
            entry.waveforms.as_ref().map_or(d.span(), |w| w.span()),
            Some(f("waveforms")),
            format!("`{}` records no waveforms", spec.name),
            Some(
                "ecg_patch, bedside_monitor and pulse oximeters do (`medtwin list devices`)".into(),
            ),
        );
        return None;
    }
    let mut rate_hz = spec.waveform_hz;
    if let Some(hz) = &entry.waveform_hz {
        if WaveformConfig::RATES_HZ.contains(hz.get_ref()) {
            rate_hz = *hz.get_ref();
        } else {
            r.error(
                hz.span(),
                Some(f("waveform_hz")),
                format!("waveform_hz = {} is not a supported rate", hz.get_ref()),
                Some("expected 125, 250 or 500".into()),
            );
        }
    }
    let mut noise = NoiseLevel::default();
    if let Some(n) = &entry.waveform_noise {
        match NoiseLevel::named(n.get_ref()) {
            Some(level) => noise = level,
            None => {
                let names: Vec<&str> = NoiseLevel::ALL.iter().map(|l| l.name()).collect();
                r.error(
                    n.span(),
                    Some(f("waveform_noise")),
                    format!("unknown noise level `{}`", n.get_ref()),
                    Some(match suggest(n.get_ref(), &names) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("expected one of {}", diag::quoted_list(&names)),
                    }),
                );
            }
        }
    }
    let mut mains_hz = 50;
    if let Some(m) = &entry.mains_hz {
        if matches!(m.get_ref(), 50 | 60) {
            mains_hz = *m.get_ref();
        } else {
            r.error(
                m.span(),
                Some(f("mains_hz")),
                format!("mains_hz = {} is neither 50 nor 60", m.get_ref()),
                Some("expected 50 or 60".into()),
            );
        }
    }
    Some(WaveformConfig {
        rate_hz,
        channels: spec.waveform_channels.clone(),
        noise,
        mains_hz,
    })
}

fn resolve_profile(
    name: &Option<Spanned<String>>,
    catalogue: &Catalogue,
    field: &str,
    r: &mut Reporter<'_>,
) -> ProfileSpec {
    let Some(name) = name else {
        return catalogue
            .get("healthy_adult")
            .cloned()
            .unwrap_or_else(ProfileSpec::healthy_adult);
    };
    if let Some(profile) = catalogue.get(name.get_ref()) {
        return profile.clone();
    }
    let names = catalogue.names();
    r.error(
        name.span(),
        Some(field.into()),
        format!("unknown profile `{}`", name.get_ref()),
        Some(match suggest(name.get_ref(), &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("expected one of {}", diag::quoted_list(&names)),
        }),
    );
    ProfileSpec::healthy_adult()
}

fn resolve_clock(file: &ScenarioFile, r: &mut Reporter<'_>) -> Clock {
    let Some(spanned) = &file.clock else {
        return Clock::Virtual;
    };
    let spec = spanned.get_ref();
    match (spec.mode.unwrap_or(ClockMode::Virtual), &spec.speed) {
        (ClockMode::Accelerated, Some(speed)) => {
            let s = *speed.get_ref();
            if !(s > 0.0 && s <= 1_000_000.0) {
                r.error(speed.span(), Some("clock.speed".into()), format!("speed = {s} is out of range"), Some("speed is simulated seconds per wall second, greater than 0 and at most 1000000".into()));
            }
            Clock::Accelerated { speed: s }
        }
        (ClockMode::Accelerated, None) => {
            r.error(
                spanned.span(),
                Some("clock.speed".into()),
                "mode = \"accelerated\" needs a speed",
                Some("add e.g. `speed = 60` (one simulated minute per wall second)".into()),
            );
            Clock::Accelerated { speed: 1.0 }
        }
        (mode, Some(speed)) => {
            r.error(
                speed.span(),
                Some("clock.speed".into()),
                "speed only applies to mode = \"accelerated\"",
                None,
            );
            if mode == ClockMode::RealTime {
                Clock::RealTime
            } else {
                Clock::Virtual
            }
        }
        (ClockMode::RealTime, None) => Clock::RealTime,
        (ClockMode::Virtual, None) => Clock::Virtual,
    }
}

fn named_network(name: &Spanned<String>, field: &str, r: &mut Reporter<'_>) -> NetworkConfig {
    NetworkConfig::named(name.get_ref()).unwrap_or_else(|| {
        let names: Vec<&str> = NetworkConfig::PROFILES.iter().map(|(n, _)| *n).collect();
        let help = match suggest(name.get_ref(), &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "expected one of {}, or a table with latency_median, latency_p99 and loss_pct",
                diag::quoted_list(&names)
            ),
        };
        r.error(
            name.span(),
            Some(field.into()),
            format!("unknown network profile `{}`", name.get_ref()),
            Some(help),
        );
        NetworkConfig::IDEAL
    })
}

fn resolve_network(
    spanned: &Spanned<NetworkSpec>,
    field: &str,
    r: &mut Reporter<'_>,
) -> NetworkConfig {
    let table = match spanned.get_ref() {
        NetworkSpec::Named(name) => {
            let name = Spanned::new(spanned.span(), name.clone());
            return named_network(&name, field, r);
        }
        NetworkSpec::Custom(table) => table,
    };
    let base = match &table.profile {
        Some(name) => named_network(name, &format!("{field}.profile"), r),
        None => NetworkConfig::IDEAL,
    };
    let median = table
        .latency_median
        .map_or(base.latency_median_ms, |d| d.ms() as f64);
    let p99 = table.latency_p99.map_or(
        if table.latency_median.is_some() {
            median
        } else {
            base.latency_p99_ms
        },
        |d| d.ms() as f64,
    );
    let loss_pct = table.loss_pct.unwrap_or(base.loss_pct);
    if p99 < median {
        r.error(
            spanned.span(),
            Some(format!("{field}.latency_p99")),
            "latency_p99 is below latency_median",
            None,
        );
    }
    if !(0.0..=100.0).contains(&loss_pct) {
        r.error(
            spanned.span(),
            Some(format!("{field}.loss_pct")),
            format!("loss_pct = {loss_pct} is not a percentage"),
            None,
        );
    }
    if median > 3_600_000.0 || p99 > 3_600_000.0 {
        r.error(
            spanned.span(),
            Some(field.into()),
            "latency above one hour",
            None,
        );
    }
    let loss_burst = number_in(
        &table.loss_burst,
        |b| (1.0..=1e6).contains(&b),
        &format!("{field}.loss_burst"),
        "the mean length of a loss burst, in messages: 1 to 1000000",
        base.loss_burst,
        r,
    );
    let gateway = match &table.gateway {
        None => base.gateway.clone(),
        Some(g) => Some(resolve_gateway(g, &format!("{field}.gateway"), r)),
    };
    NetworkConfig {
        latency_median_ms: median,
        latency_p99_ms: p99.max(median),
        loss_pct: loss_pct.clamp(0.0, 100.0),
        loss_burst,
        gateway,
    }
}

/// A number from the file when present and `ok`; when out of range the
/// problem is reported (with `hint`) and `default` stands in, as it does
/// when the key is absent.
pub(super) fn number_in(
    value: &Option<Spanned<f64>>,
    ok: impl Fn(f64) -> bool,
    field: &str,
    hint: &str,
    default: f64,
    r: &mut Reporter<'_>,
) -> f64 {
    match value {
        Some(v) if !ok(*v.get_ref()) => {
            let key = field.rsplit('.').next().unwrap_or(field);
            r.error(
                v.span(),
                Some(field.into()),
                format!("{key} = {} is out of range", v.get_ref()),
                Some(hint.into()),
            );
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    }
}

fn resolve_gateway(
    spanned: &Spanned<file::GatewaySpec>,
    field: &str,
    r: &mut Reporter<'_>,
) -> GatewayConfig {
    let g = spanned.get_ref();
    // Design choice: a phone or hub forwards a backlog at ~20 messages/s.
    let flush_per_s = number_in(
        &g.flush_rate,
        |f| f > 0.0 && f <= 1e6,
        &format!("{field}.flush_rate"),
        "messages per second: greater than 0, at most 1000000",
        20.0,
        r,
    );
    if let Some(m) = &g.mttr
        && g.mtbf.is_none()
    {
        r.error(
            m.span(),
            Some(format!("{field}.mttr")),
            "mttr needs an mtbf (random outages need both)",
            None,
        );
    }
    let positive = |d: &Option<Spanned<Dur>>, key: &str, r: &mut Reporter<'_>| {
        d.as_ref().and_then(|d| {
            if d.get_ref().ms() == 0 {
                r.error(
                    d.span(),
                    Some(format!("{field}.{key}")),
                    format!("{key} must be positive"),
                    None,
                );
                None
            } else {
                Some(d.get_ref().ms())
            }
        })
    };
    let mtbf_ms = positive(&g.mtbf, "mtbf", r);
    // Design choice: outages of a few minutes unless the scenario says.
    let mttr_ms = positive(&g.mttr, "mttr", r).unwrap_or(5 * 60_000);
    GatewayConfig {
        // Design choice: a phone app or hub keeps about an hour of 1-Hz data.
        buffer: g.buffer.as_ref().map_or(3_600, |b| *b.get_ref()),
        eviction: match g.eviction {
            Some(file::EvictionName::DropNewest) => Eviction::DropNewest,
            _ => Eviction::DropOldest,
        },
        flush_per_s,
        mtbf_ms,
        mttr_ms,
    }
}

/// `ward`, `ward[3]` or `ward[0..4]` (end exclusive).
pub(super) fn resolve_who(
    who: &Spanned<String>,
    cohorts: &[CohortConfig],
    field: &str,
    r: &mut Reporter<'_>,
) -> Option<PatientSelector> {
    let text = who.get_ref().trim();
    let syntax_help = "write `cohort`, `cohort[i]` or `cohort[first..end]` (end exclusive)";
    let (name, range) = match text.split_once('[') {
        None => (text, None),
        Some((name, rest)) => match rest.strip_suffix(']') {
            Some(inner) => (name, Some(inner)),
            None => {
                r.error(
                    who.span(),
                    Some(field.into()),
                    format!("cannot read who = \"{text}\""),
                    Some(syntax_help.into()),
                );
                return None;
            }
        },
    };
    let Some(cohort) = cohorts.iter().position(|c| c.name == name) else {
        let names: Vec<&str> = cohorts.iter().map(|c| c.name.as_str()).collect();
        let help = suggest(name, &names)
            .map(|best| format!("did you mean `{best}`?"))
            .or_else(|| {
                (!names.is_empty())
                    .then(|| format!("cohorts in this file: {}", diag::quoted_list(&names)))
            });
        r.error(
            who.span(),
            Some(field.into()),
            format!("no cohort named `{name}`"),
            help,
        );
        return None;
    };
    let count = cohorts[cohort].count;
    let (first, end) = match range {
        None => (0, count),
        Some(inner) => {
            let parsed = match inner.split_once("..") {
                Some((a, b)) => a
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .zip(b.trim().parse::<u32>().ok()),
                None => inner
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .map(|i| (i, i.saturating_add(1))),
            };
            let Some((first, end)) = parsed else {
                r.error(
                    who.span(),
                    Some(field.into()),
                    format!("cannot read who = \"{text}\""),
                    Some(syntax_help.into()),
                );
                return None;
            };
            if first >= end || end > count {
                r.error(
                    who.span(),
                    Some(field.into()),
                    format!(
                        "who = \"{text}\" is outside cohort `{name}`, which has patients 0..{count}"
                    ),
                    None,
                );
                return None;
            }
            (first, end)
        }
    };
    Some(PatientSelector {
        cohort,
        first,
        end,
        pick: None,
    })
}

fn resolve_target(file: &ScenarioFile, r: &mut Reporter<'_>) -> Option<Target> {
    let spanned = file.target.as_ref()?;
    let spec = spanned.get_ref();
    // Without a URL, [target] only chooses how to talk to the embedded
    // reference backend (its transport and options).
    let Some(url) = &spec.url else {
        for (given, field) in [
            (spec.token.is_some(), "target.token"),
            (spec.auth.is_some(), "target.auth"),
            (spec.timeout.is_some(), "target.timeout"),
            (spec.concurrency.is_some(), "target.concurrency"),
        ] {
            if given {
                r.error(
                    spanned.span(),
                    Some(field.into()),
                    format!("{field} needs target.url (without a URL the embedded reference backend is the target)"),
                    Some("add url = \"...\", or remove the setting".into()),
                );
            }
        }
        return None;
    };
    let protocol = spec
        .transport
        .as_ref()
        .and_then(|p| interop::Protocol::parse(p.get_ref()))
        .unwrap_or_default();
    check_target_url(url, protocol, r);
    // A password in the URL would be printed with it (summary, report,
    // repro line).
    if let Ok(parsed) = reqwest::Url::parse(url.get_ref())
        && parsed.password().is_some()
    {
        r.error(
            url.span(),
            Some("target.url".into()),
            "target.url carries a password, which would be printed with the URL",
            Some(
                "move it to [target.auth] kind = \"basic\" with password_env or password_file"
                    .into(),
            ),
        );
    }
    let concurrency = match &spec.concurrency {
        Some(c) if !(1..=1024).contains(c.get_ref()) => {
            r.error(
                c.span(),
                Some("target.concurrency".into()),
                format!("concurrency = {} is out of range (1 to 1024)", c.get_ref()),
                None,
            );
            8
        }
        Some(c) => *c.get_ref() as usize,
        None => 8,
    };
    let timeout = match &spec.timeout {
        Some(t) if t.get_ref().ms() == 0 => {
            r.error(
                t.span(),
                Some("target.timeout".into()),
                "timeout must be positive",
                None,
            );
            Duration::from_secs(5)
        }
        Some(t) => t.get_ref().std(),
        None => Duration::from_secs(5),
    };
    let auth = match (&spec.auth, &spec.token) {
        (Some(a), token) => auth::resolve(a, token.is_some(), protocol, r),
        (None, Some(token)) => auth::AuthSpec::Bearer(auth::SecretSource::Literal(token.clone())),
        (None, None) => auth::AuthSpec::None,
    };
    Some(Target {
        url: url.get_ref().clone(),
        auth,
        timeout,
        concurrency,
    })
}

/// Waveform chunks travel over `http-json` only: a device with
/// `waveforms = true` on another transport is an error at that key.
fn check_waveform_transport(
    file: &ScenarioFile,
    protocol: interop::Protocol,
    r: &mut Reporter<'_>,
) {
    if protocol == interop::Protocol::HttpJson {
        return;
    }
    for (i, c) in file.cohort.iter().enumerate() {
        for (j, d) in c.get_ref().devices.iter().enumerate() {
            let Some(on) = d.get_ref().waveforms.as_ref().filter(|w| *w.get_ref()) else {
                continue;
            };
            r.error(
                on.span(),
                Some(format!("cohort[{i}].devices[{j}].waveforms")),
                format!(
                    "waveform streaming needs the http-json transport, not {}",
                    protocol.name()
                ),
                Some(
                    "use transport = \"http-json\" (the default), or drop `waveforms = true` \
                     (the device then counts no QRS of its own)"
                        .into(),
                ),
            );
        }
    }
}

/// Checks `[target] url` for its protocol.
fn check_target_url(url: &Spanned<String>, protocol: interop::Protocol, r: &mut Reporter<'_>) {
    if let Err(why) = interop::check_target_address(url.get_ref(), protocol) {
        let help = match protocol {
            interop::Protocol::Mqtt => {
                Some("write mqtt://host:port, e.g. \"mqtt://127.0.0.1:1883\"".to_owned())
            }
            interop::Protocol::Hl7Mllp => {
                Some("write mllp://host:port, e.g. \"mllp://127.0.0.1:2575\"".to_owned())
            }
            _ => None,
        };
        r.error(url.span(), Some("target.url".into()), why, help);
    }
}

/// `[target] transport`, `encoding` and the protocol tables.
fn resolve_transport(
    file: &ScenarioFile,
    has_url: bool,
    r: &mut Reporter<'_>,
) -> interop::TransportChoice {
    use interop::{Encoding, Protocol};
    let mut choice = interop::TransportChoice::default();
    let Some(spanned) = &file.target else {
        return choice;
    };
    let spec = spanned.get_ref();
    if let Some(name) = &spec.transport {
        match Protocol::parse(name.get_ref()) {
            Some(p) => choice.protocol = p,
            None => r.error(
                name.span(),
                Some("target.transport".into()),
                format!("unknown transport \"{}\"", name.get_ref()),
                Some(format!(
                    "one of: {}",
                    Protocol::ALL.map(Protocol::name).join(", ")
                )),
            ),
        }
    }
    choice.encoding = choice.protocol.default_encoding();
    if let Some(name) = &spec.encoding {
        match Encoding::parse(name.get_ref()) {
            Some(e) if choice.protocol.encodings().contains(&e) => choice.encoding = e,
            Some(e) => r.error(
                name.span(),
                Some("target.encoding".into()),
                format!(
                    "transport {} cannot carry the {} encoding",
                    choice.protocol.name(),
                    e.name()
                ),
                Some(format!(
                    "it carries: {}",
                    choice
                        .protocol
                        .encodings()
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            None => r.error(
                name.span(),
                Some("target.encoding".into()),
                format!("unknown encoding \"{}\"", name.get_ref()),
                Some(format!(
                    "one of: {}",
                    Encoding::ALL.map(Encoding::name).join(", ")
                )),
            ),
        }
    }
    if choice.protocol == Protocol::File && !has_url {
        r.error(
            spanned.span(),
            Some("target.url".into()),
            "transport \"file\" needs target.url: the file to record to",
            None,
        );
    }
    choice.fhir = spec.fhir.clone().unwrap_or_default();
    choice.mqtt = spec.mqtt.clone().unwrap_or_default();
    choice.hl7 = spec.hl7.clone().unwrap_or_default();
    choice.file = spec.file.clone().unwrap_or_default();
    for (given, table, protocol) in [
        (spec.fhir.is_some(), "target.fhir", Protocol::Fhir),
        (spec.mqtt.is_some(), "target.mqtt", Protocol::Mqtt),
        (spec.hl7.is_some(), "target.hl7", Protocol::Hl7Mllp),
        (spec.file.is_some(), "target.file", Protocol::File),
    ] {
        if given && choice.protocol != protocol {
            r.error(
                spanned.span(),
                Some(table.into()),
                format!(
                    "[{table}] configures the {} transport, but the transport is {}",
                    protocol.name(),
                    choice.protocol.name()
                ),
                Some(format!(
                    "set transport = \"{}\", or remove [{table}]",
                    protocol.name()
                )),
            );
        }
    }
    if let Err(why) = interop::check_transport(&choice) {
        r.error(spanned.span(), Some(why.0), why.1, None);
    }
    if let Some(tls) = &spec.tls {
        choice.tls = resolve_tls(tls, r.path());
        let plain = spec.url.as_ref().map(|u| u.get_ref().as_str());
        match plain {
            None => r.error(
                spanned.span(),
                Some("target.tls".into()),
                "[target.tls] needs target.url: the embedded reference backend is reached without TLS",
                Some("add url = \"https://...\" (or mqtts://, mllps://), or remove [target.tls]".into()),
            ),
            Some(url) if !interop::uses_tls(url) && choice.protocol != Protocol::File => r.error(
                spanned.span(),
                Some("target.tls".into()),
                format!("[target.tls] is set, but target.url \"{url}\" does not use TLS"),
                Some("use https://, mqtts:// or mllps://, or remove [target.tls]".into()),
            ),
            _ => {}
        }
    }
    choice
}

/// `[target.tls]` with its paths read from the scenario's folder.
fn resolve_tls(spec: &interop::TlsSpec, scenario: &Path) -> medtwin_tls::ClientOptions {
    let base = scenario.parent().unwrap_or(Path::new("."));
    let path = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
    medtwin_tls::ClientOptions {
        ca_cert: path(&spec.ca_cert),
        pin_sha256: spec.pin_sha256.clone(),
        client_cert: path(&spec.client_cert),
        client_key: path(&spec.client_key),
        identities: path(&spec.identities),
        insecure_skip_verify: spec.insecure_skip_verify.unwrap_or(false),
        server_name: spec.server_name.clone(),
    }
}

/// Checks that `text` is an absolute http(s) URL with a host: the one URL
/// check for scenario files and the command line. The error says why not.
pub fn check_http_url(text: &str) -> Result<(), String> {
    match reqwest::Url::parse(text) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        Ok(_) => Err(format!("\"{text}\" is not an http(s) URL")),
        Err(error) => Err(format!("invalid URL \"{text}\": {error}")),
    }
}

fn resolve_alerts(file: &ScenarioFile, r: &mut Reporter<'_>) -> AlertIntake {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let Some(spec) = &file.alerts else {
        return AlertIntake {
            listen: loopback,
            token: None,
            token_source: "scenario",
            grace: Duration::from_secs(5),
            kinds: None,
            intake: interop::IntakeChoice {
                kinds: vec![interop::IntakeKind::Webhook],
                ..interop::IntakeChoice::default()
            },
            tls: None,
        };
    };
    let listen = match &spec.listen {
        Some(text) => text.get_ref().parse().unwrap_or_else(|_| {
            r.error(
                text.span(),
                Some("alerts.listen".into()),
                format!("invalid address \"{}\"", text.get_ref()),
                Some("write an IP and port, e.g. \"127.0.0.1:9797\"".into()),
            );
            loopback
        }),
        None => loopback,
    };
    let kinds = spec.kinds.as_ref().map(|kinds| {
        for (i, k) in kinds.iter().enumerate() {
            if k.get_ref().trim().is_empty() {
                r.error(
                    k.span(),
                    Some(format!("alerts.kinds[{i}]")),
                    "an alert kind cannot be empty",
                    None,
                );
            }
        }
        kinds.iter().map(|k| k.get_ref().clone()).collect()
    });
    let intake = resolve_intakes(spec, r);
    let tls = spec.tls.as_ref().map(|t| {
        let at = r.source().find("[alerts.tls]").unwrap_or(0);
        let base = r.path().parent().unwrap_or(Path::new("."));
        let path = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
        if t.cert.is_some() != t.key.is_some() {
            r.error(
                at..at,
                Some("alerts.tls".into()),
                "[alerts.tls] needs both cert and key (or neither, for a self-signed certificate)",
                None,
            );
        }
        if t.client_crl.is_some() && t.client_ca.is_none() {
            r.error(
                at..at,
                Some("alerts.tls.client_crl".into()),
                "client_crl needs client_ca",
                None,
            );
        }
        medtwin_tls::ServerOptions {
            cert: path(&t.cert),
            key: path(&t.key),
            names: Vec::new(),
            client_ca: path(&t.client_ca),
            client_crl: path(&t.client_crl),
        }
    });
    AlertIntake {
        listen,
        token: spec.token.clone(),
        token_source: "scenario",
        grace: spec.grace.map_or(Duration::from_secs(5), Dur::std),
        kinds,
        intake,
        tls,
    }
}

/// `[alerts] intake` and the intake tables.
fn resolve_intakes(spec: &file::AlertsSpec, r: &mut Reporter<'_>) -> interop::IntakeChoice {
    use interop::IntakeKind;
    let mut choice = interop::IntakeChoice {
        kinds: vec![IntakeKind::Webhook],
        webhook: spec.webhook.clone().unwrap_or_default(),
        acm: spec.acm.clone().unwrap_or_default(),
        mqtt: spec.mqtt.clone().unwrap_or_default(),
        fhir: spec.fhir.clone().unwrap_or_default(),
        mapping: spec.mapping.clone(),
    };
    if let Some(given) = &spec.intake {
        let names: Vec<String> = match given.get_ref() {
            file::OneOrMany::One(name) => vec![name.clone()],
            file::OneOrMany::Many(names) => names.clone(),
        };
        let mut kinds = Vec::new();
        for name in &names {
            match IntakeKind::parse(name) {
                Some(k) if kinds.contains(&k) => r.error(
                    given.span(),
                    Some("alerts.intake".into()),
                    format!("intake \"{name}\" is named twice"),
                    None,
                ),
                Some(k) => kinds.push(k),
                None => r.error(
                    given.span(),
                    Some("alerts.intake".into()),
                    format!("unknown intake \"{name}\""),
                    Some(format!(
                        "one of: {}",
                        IntakeKind::ALL.map(IntakeKind::name).join(", ")
                    )),
                ),
            }
        }
        if names.is_empty() {
            r.error(
                given.span(),
                Some("alerts.intake".into()),
                "name at least one intake",
                Some("e.g. intake = [\"webhook\"]".into()),
            );
        }
        choice.kinds = kinds;
    }
    if let Err((field, why)) = interop::check_intakes(&choice) {
        let span = spec.intake.as_ref().map_or(0..0, |s| s.span());
        r.error(span, Some(field), why, None);
    }
    choice
}

fn resolve_backend(file: &ScenarioFile, has_target: bool, r: &mut Reporter<'_>) -> BackendKnobs {
    let mut knobs = BackendKnobs::default();
    let Some(spanned) = &file.backend else {
        return knobs;
    };
    if has_target {
        r.error(spanned.span(), Some("backend".into()), "[backend] configures the embedded reference backend, but [target] names an external one", Some("remove [backend], or remove [target]".into()));
    }
    let spec = spanned.get_ref();
    for knob in PctKnob::ALL {
        let Some(pct) = spec.pct(knob) else { continue };
        if !(0.0..=100.0).contains(pct.get_ref()) {
            r.error(
                pct.span(),
                Some(format!("backend.{}", knob.name())),
                format!("{} = {} is not a percentage", knob.name(), pct.get_ref()),
                None,
            );
        }
        *knobs.faults.pct_mut(knob) = pct.get_ref().clamp(0.0, 100.0);
    }
    if let Some(d) = spec.delay_alerts {
        knobs.faults.delay_alerts = d.std();
    }
    if let Some(d) = spec.smoothing {
        knobs.smoothing_ms = d.ms();
    }
    if let Some(d) = spec.reset_after {
        knobs.reset_after_ms = d.ms();
    }
    knobs
}
