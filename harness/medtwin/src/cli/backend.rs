//! `medtwin reference-backend`: the reference backend on its own, until
//! interrupted or `--stop-after`.

use std::time::Duration;

use medtwin_backend::{BackendConfig, Faults};

use super::{BackendArgs, Failure, Outcome, runtime};

/// Runs the reference backend standalone.
pub fn run(args: &BackendArgs) -> Result<Outcome, Failure> {
    let mut faults = Faults::default();
    for (knob, pct) in args.faults.pcts() {
        *faults.pct_mut(knob) = pct;
    }
    faults.delay_alerts = Duration::from_millis(args.faults.delay_alerts.unwrap_or(0));
    let mut config = BackendConfig::new(args.alerts.clone().unwrap_or_default());
    config.listen = args.listen;
    config.ingest.mllp = args.mllp_listen;
    config.tls = args.tls.options();
    config.alerts_tls.ca_cert = args.alerts_ca_cert.clone();
    config.alerts_tls.pin_sha256 = args.alerts_pin_sha256.clone();
    let input = |e: String| Failure::Input(format!("error: {e}"));
    for (given, flag, env, file_flag) in [
        (
            args.token.is_some(),
            "--token",
            "MEDTWIN_BACKEND_TOKEN",
            "--token-file",
        ),
        (
            args.alerts_token.is_some(),
            "--alerts-token",
            "MEDTWIN_ALERT_TOKEN",
            "--alerts-token-file",
        ),
        (
            args.alerts_secret.is_some(),
            "--alerts-secret",
            "MEDTWIN_ALERT_SECRET",
            "--alerts-secret-file",
        ),
    ] {
        if given {
            return Err(input(super::args::refused_secret(flag, env, file_flag)));
        }
    }
    let file = |path: &Option<std::path::PathBuf>, flag: &str| {
        path.as_deref()
            .map(|p| super::args::read_secret(p, flag))
            .transpose()
            .map_err(input)
    };
    let alerts_secret = file(&args.alerts_secret_file, "--alerts-secret-file")?;
    let alerts_token = file(&args.alerts_token_file, "--alerts-token-file")?;
    let token_file = file(&args.token_file, "--token-file")?;
    if let Some(style) = args.alerts_signature {
        let secret = alerts_secret
            .or_else(|| {
                std::env::var("MEDTWIN_ALERT_SECRET")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .ok_or_else(|| {
                Failure::Input(
                    "error: --alerts-signature needs --alerts-secret-file or MEDTWIN_ALERT_SECRET"
                        .into(),
                )
            })?;
        config.alerts_signing = Some(match style {
            super::args::SignatureStyle::Github => medtwin_backend::Signing::Github { secret },
            super::args::SignatureStyle::Stripe => medtwin_backend::Signing::Stripe { secret },
        });
    }
    config.alerts_token = alerts_token.or_else(|| {
        std::env::var("MEDTWIN_ALERT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
    });
    let (token, source) = match (
        token_file,
        std::env::var("MEDTWIN_BACKEND_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    ) {
        (Some(t), _) => (t, "--token-file"),
        (None, Some(t)) => (t, "MEDTWIN_BACKEND_TOKEN"),
        (None, None) => (crate::run::random_token(), "generated"),
    };
    config.token = Some(token.clone());
    config.faults = faults;
    config.smoothing = Duration::from_millis(args.smoothing);
    config.reset_after = Duration::from_millis(args.reset_after);
    config.seed = args.seed;
    let stop_after = args.stop_after.map(Duration::from_millis);
    runtime()?.block_on(async move {
        let listen = config.listen;
        let handle = medtwin_backend::start(config).await.map_err(|error| {
            Failure::Harness(format!(
                "error: cannot start the reference backend on {listen}: {error}"
            ))
        })?;
        println!(
            "reference backend: POST telemetry to {}://{}/v1/measurements",
            handle.scheme(),
            handle.addr()
        );
        if let Some(addr) = handle.mllp_addr() {
            let scheme = if handle.tls().is_some() { "mllps" } else { "mllp" };
            println!("reference backend: HL7 v2 (PCD-01) over MLLP at {scheme}://{addr}");
        }
        if let Some(tls) = handle.tls() {
            println!("reference backend: {}", tls.describe());
        }
        if source == "generated" {
            // A generated token must be shown, or nothing could use it.
            println!(
                "bearer token (generated): {token}\n  e.g. MEDTWIN_TARGET_TOKEN={token} medtwin run SCENARIO --target {}://{}/v1/measurements",
                handle.scheme(),
                handle.addr()
            );
        } else {
            println!("bearer token: from {source}");
        }
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let stats = handle.shutdown(Duration::from_secs(5)).await;
        println!("{}", serde_json::to_string(&stats).unwrap_or_default());
        Ok(Outcome::Pass)
    })
}
