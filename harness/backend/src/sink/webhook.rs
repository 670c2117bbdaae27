//! The webhook sink: medtwin's alert JSON POSTed to a URL, authenticated
//! by a bearer token or an HMAC-SHA256 signature (GitHub or Stripe style).

use std::time::{Duration, SystemTime};

use medtwin_wire::{AlertMessage, signature};

use super::Undelivered;
use crate::BackendError;

/// Per-request timeout of an alert delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the webhook's requests are signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
    Github {
        /// The shared secret.
        secret: String,
    },
    /// `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
    /// "<t>.<body>")>`.
    Stripe {
        /// The shared secret.
        secret: String,
    },
}

impl Signing {
    /// The header (name, value) signing `body` at `now`.
    pub fn header(&self, body: &[u8], now: SystemTime) -> (&'static str, String) {
        match self {
            Signing::Github { secret } => (
                signature::GITHUB_HEADER,
                signature::github(secret.as_bytes(), body),
            ),
            Signing::Stripe { secret } => (
                signature::STRIPE_HEADER,
                signature::stripe(secret.as_bytes(), body, now),
            ),
        }
    }
}

/// Posts alerts to one URL.
#[derive(Clone, Debug)]
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
    signing: Option<Signing>,
}

impl WebhookSink {
    /// A sink posting to `url` with a bearer `token` and/or a `signing`.
    pub fn new(
        url: &str,
        token: Option<String>,
        signing: Option<Signing>,
        tls: Option<&medtwin_tls::ClientTls>,
    ) -> Result<WebhookSink, BackendError> {
        let parsed = reqwest::Url::parse(url).map_err(|error| BackendError::AlertsUrl {
            url: url.to_owned(),
            why: error.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(BackendError::AlertsUrl {
                url: url.to_owned(),
                why: "only http and https are supported".into(),
            });
        }
        medtwin_tls::install_default_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .no_proxy();
        if let Some(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls.config_owned());
        }
        let client = builder.build().map_err(BackendError::Client)?;
        Ok(WebhookSink {
            client,
            url: parsed,
            token,
            signing,
        })
    }

    /// Posts one alert once.
    pub(crate) async fn deliver(&self, alert: &AlertMessage) -> Result<(), Undelivered> {
        let body = serde_json::to_vec(alert).map_err(|e| Undelivered {
            retry: false,
            detail: e.to_string(),
        })?;
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json");
        if let Some(signing) = &self.signing {
            let (name, value) = signing.header(&body, SystemTime::now());
            request = request.header(name, value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(Undelivered {
                retry: response.status().is_server_error(),
                detail: format!("the webhook answered {}", response.status()),
            }),
            // Connection refused, reset, timed out: worth another try. A
            // timed-out alert may have arrived; the alert id lets the
            // receiver see the repeat.
            Err(error) => Err(Undelivered {
                retry: true,
                detail: error.to_string(),
            }),
        }
    }
}
