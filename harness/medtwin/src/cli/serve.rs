//! `medtwin serve`: a training session in the browser (docs/training.md).
//! Exit 0 when the session ended and its after-action report was written;
//! 2 for a bad scenario, cue file or flag; 3 when the session could not
//! start (a port in use) or its report could not be written.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::args::{duration_ms, intake, protocol, read_secret, refused_secret, speed};
use super::{Failure, Outcome, on_signals, runtime};
use crate::scenario::{self, Overrides};
use crate::serve::{ServeOptions, action};

/// The instructor's token from the environment.
pub const INSTRUCTOR_TOKEN_ENV: &str = "MEDTWIN_INSTRUCTOR_TOKEN";

/// `medtwin serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Serve the pages here (loopback by default: pass 0.0.0.0:PORT to
    /// let other machines in, and keep the token to the instructor).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7600")]
    pub listen: SocketAddr,
    /// Simulated seconds per wall second (1 = real time; the instructor
    /// can change it during the session).
    #[arg(long, value_parser = speed, default_value = "1")]
    pub speed: f64,
    /// Simulated delay between an alarm's arrival from the backend and its
    /// display (the alarm system's signal generation delay), e.g. `10s`.
    #[arg(long, value_name = "DURATION", value_parser = duration_ms, default_value = "0s")]
    pub alarm_delay: u64,
    /// Cues to arm at the start (a cue file, docs/training.md).
    #[arg(long, value_name = "FILE")]
    pub cues: Option<PathBuf>,
    /// A file holding the instructor's token (default:
    /// `MEDTWIN_INSTRUCTOR_TOKEN`, else a random one, printed).
    #[arg(long, value_name = "FILE")]
    pub instructor_token_file: Option<PathBuf>,
    /// Refused: a secret on the command line shows in `ps`.
    #[arg(long, hide = true)]
    pub instructor_token: Option<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Send telemetry to this backend under test instead of the embedded
    /// reference backend.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Carry telemetry over this transport instead of the scenario's.
    #[arg(long, value_name = "NAME", value_parser = protocol)]
    pub transport: Option<scenario::interop::Protocol>,
    /// Receive alarms through this intake (repeat for several): webhook,
    /// acm, mqtt, fhir-subscription, fhir-poll.
    #[arg(long = "intake", value_name = "NAME", value_parser = intake)]
    pub intakes: Vec<scenario::interop::IntakeKind>,
    /// Listen for the backend's alarms here.
    #[arg(long, value_name = "ADDR")]
    pub alerts_listen: Option<SocketAddr>,
    /// Write the after-action report here instead of `reports/<run-id>/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// End the session after this much wall time, e.g. `2h`.
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    pub max_wall: Option<u64>,
    /// End the session when the scenario's time runs out (default: keep
    /// serving until the instructor ends it or Ctrl-C).
    #[arg(long)]
    pub exit_at_end: bool,
}

/// Runs `medtwin serve`.
pub fn run(args: &ServeArgs) -> Result<Outcome, Failure> {
    let input = |e: String| Failure::Input(format!("error: {e}"));
    if args.instructor_token.is_some() {
        return Err(input(refused_secret(
            "--instructor-token",
            INSTRUCTOR_TOKEN_ENV,
            "--instructor-token-file",
        )));
    }
    let (token, source) = match &args.instructor_token_file {
        Some(path) => (
            read_secret(path, "--instructor-token-file").map_err(input)?,
            "--instructor-token-file",
        ),
        None => match std::env::var(INSTRUCTOR_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty())
        {
            Some(t) => (t, INSTRUCTOR_TOKEN_ENV),
            None => (crate::run::random_token(), "generated"),
        },
    };
    let overrides = Overrides {
        seed: args.seed,
        target: args.target.clone(),
        transport: args.transport,
        intakes: args.intakes.clone(),
        alerts_listen: args.alerts_listen,
        ..Overrides::default()
    };
    let s = scenario::load(&args.scenario)
        .map_err(|d| Failure::Input(d.to_string()))?
        .with(&overrides)
        .map_err(|e| input(e.to_string()))?;
    let cues = match &args.cues {
        Some(path) => action::load(path).map_err(input)?,
        None => Vec::new(),
    };
    let options = ServeOptions {
        listen: args.listen,
        speed: args.speed,
        alarm_delay_ms: args.alarm_delay,
        token: token.clone(),
        cues,
        out: args.out.clone(),
        max_wall: args.max_wall.map(std::time::Duration::from_millis),
        exit_at_end: args.exit_at_end,
    };
    let rt = runtime()?;
    let ended = rt
        .block_on(async {
            let stop = on_signals();
            crate::serve::serve(&s, options, stop, |serving| {
                println!(
                    "medtwin serve: {} · {} patients · speed x{}",
                    s.name, serving.patients, args.speed
                );
                for (kind, address) in &serving.intakes {
                    println!("alarms {kind}: {address}");
                }
                println!("telemetry to: {}", serving.target_url);
                match source {
                    "generated" => println!("instructor token: {token}"),
                    other => println!("instructor token: from {other}"),
                }
                println!("instructor console: {}instructor", serving.url);
                // Last: scripts wait for this line.
                println!("central station: {}", serving.url);
            })
            .await
        })
        .map_err(|e| Failure::Harness(format!("error: {e:#}")))?;
    println!(
        "session ended after {} simulated · {} alarms, {} acknowledged",
        medtwin_check::duration::format(ended.simulated_ms),
        ended.alarms.0,
        ended.alarms.1
    );
    println!(
        "after-action report: {}",
        ended.dir.join("after-action.html").display()
    );
    Ok(Outcome::Pass)
}
