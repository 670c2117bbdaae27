//! What telemetry is sent to: the scenario's external target, or the
//! embedded reference backend started for the run (wired to the run's
//! webhook, with the scenario's fault knobs), and how the run winds down.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use medtwin_backend::{BackendConfig, BackendHandle, Stats};

use super::Start;
use crate::clock::SimClock;
use crate::scenario::Scenario;
use crate::transport::http::HttpConfig;

/// Lanes (and keep-alive connections) towards the embedded backend.
const EMBEDDED_LANES: usize = 8;
/// Per-request timeout towards the embedded backend.
const EMBEDDED_TIMEOUT: Duration = Duration::from_secs(5);

/// The run's target.
pub struct Target {
    /// Where and how to send.
    pub http: HttpConfig,
    /// The embedded backend, when it is the target.
    pub backend: Option<BackendHandle>,
}

/// Starts the embedded backend when the scenario names no target. The
/// embedded one takes a fresh random bearer token, known only to this run's
/// transport, so no other local process can feed it telemetry or read it.
pub async fn start(
    s: &Scenario,
    webhook_url: &str,
    start: &Start,
    run_id: &str,
) -> anyhow::Result<Target> {
    if let Some(t) = &s.target {
        return Ok(Target {
            http: HttpConfig {
                url: t.url.clone(),
                token: t.token.clone().or_else(|| {
                    std::env::var("MEDTWIN_TARGET_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty())
                }),
                timeout: t.timeout,
                connections: t.concurrency,
                run_id: Some(run_id.to_owned()),
            },
            backend: None,
        });
    }
    let token = super::random_token();
    let mut config = BackendConfig::new(webhook_url);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.alerts_token = Some(start.token.clone());
    config.token = Some(token.clone());
    config.faults = s.backend.faults;
    // The scenario's delay is simulated time; the backend waits on the wall.
    config.faults.delay_alerts = start.clock.wall(millis(s.backend.faults.delay_alerts));
    config.smoothing = Duration::from_millis(s.backend.smoothing_ms);
    config.reset_after = Duration::from_millis(s.backend.reset_after_ms);
    config.seed = s.sim.seed;
    let handle = medtwin_backend::start(config)
        .await
        .context("cannot start the embedded reference backend")?;
    Ok(Target {
        http: HttpConfig {
            url: format!("http://{}/v1/measurements", handle.addr()),
            token: Some(token),
            timeout: EMBEDDED_TIMEOUT,
            connections: EMBEDDED_LANES,
            run_id: Some(run_id.to_owned()),
        },
        backend: Some(handle),
    })
}

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
