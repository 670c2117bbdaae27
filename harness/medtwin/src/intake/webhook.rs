//! The alert webhook: where the target POSTs its alerts (medtwin's alert
//! format, `docs/schemas/alert.schema.json`, validated strictly, or a
//! foreign payload read through the scenario's mapping). It authenticates
//! the sender by a bearer token (checked in constant time before the body
//! is read) or by an HMAC-SHA256 signature of the body (GitHub or Stripe
//! style, checked once the body is read),
//! reads the body with a size limit and a timeout, serves within the
//! listener's limits (`medtwin-listen`: header timeout, connection cap,
//! shutdown deadline), and hands everything, refusals included, to the
//! [`Inbox`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use medtwin_listen::{BodyError, Limits, Server};
use medtwin_wire::{MAX_BODY_BYTES, signature};
use subtle::ConstantTimeEq as _;

use super::mapping::AlertParser;
use super::{Inbox, Intake, IntakeContext, Refusal};
use crate::scenario::interop::{Signature, WebhookOptions};

/// Default tolerance of a Stripe-style signature's timestamp.
pub const DEFAULT_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// How the webhook authenticates its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// GitHub-style HMAC signature with this secret.
    Github(String),
    /// Stripe-style HMAC signature with this secret and timestamp
    /// tolerance.
    Stripe(String, std::time::Duration),
}

impl Auth {
    /// The scenario's choice, with the run's token or secret.
    pub fn of(options: &WebhookOptions, ctx: &IntakeContext) -> Auth {
        let secret = || {
            options
                .secret
                .clone()
                .or_else(|| ctx.secret.clone())
                .unwrap_or_else(|| ctx.token.clone())
        };
        match options.signature.unwrap_or_default() {
            Signature::Bearer => Auth::Bearer(ctx.token.clone()),
            Signature::Github => Auth::Github(secret()),
            Signature::Stripe => Auth::Stripe(
                secret(),
                options.tolerance.map_or(DEFAULT_TOLERANCE, |d| d.std()),
            ),
        }
    }
}

/// Path the webhook listens on.
pub const ALERTS_PATH: &str = "/alerts";

struct Shared {
    auth: Auth,
    inbox: Arc<Inbox>,
    parser: Arc<AlertParser>,
}

/// A running webhook.
pub struct Webhook {
    server: Server,
    inbox: Arc<Inbox>,
    scheme: &'static str,
}

impl Webhook {
    /// Starts listening on `listen`; alerts must authenticate by `auth`.
    pub async fn start(
        listen: SocketAddr,
        auth: Auth,
        ctx: &IntakeContext,
    ) -> std::io::Result<Webhook> {
        let inbox = Arc::clone(&ctx.inbox);
        let shared = Arc::new(Shared {
            auth,
            inbox: Arc::clone(&inbox),
            parser: Arc::clone(&ctx.parser),
        });
        let app = Router::new()
            .route(ALERTS_PATH, post(receive))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let tls = ctx.server_tls.as_ref().map(|t| t.config());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = medtwin_listen::serve_tls(listener, app, Limits::default(), tls)?;
        Ok(Webhook {
            server,
            inbox,
            scheme,
        })
    }

    /// The URL a target should post alerts to.
    pub fn url(&self) -> String {
        format!("{}://{}{ALERTS_PATH}", self.scheme, self.server.addr())
    }
}

impl Intake for Webhook {
    fn address(&self) -> String {
        self.url()
    }

    async fn stop(self) {
        let connections = self.server.shutdown().await;
        self.inbox.add_connections(&connections);
        for (cause, n) in connections.tls_failures() {
            self.inbox.count("webhook", cause, n);
        }
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> StatusCode {
    let arrival = shared.inbox.arrival();
    // A bearer token first: an unauthenticated client's body is never read.
    if let Auth::Bearer(token) = &shared.auth
        && !authorized(&headers, token)
    {
        shared.inbox.refuse(&Refusal::Unauthorized, b"");
        return StatusCode::UNAUTHORIZED;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body =
        match medtwin_listen::read_body(body, length, MAX_BODY_BYTES, medtwin_listen::BODY_TIMEOUT)
            .await
        {
            Ok(body) => body,
            Err(error) => {
                let (refusal, status) = match error {
                    BodyError::TooLarge => (Refusal::TooLarge, StatusCode::PAYLOAD_TOO_LARGE),
                    BodyError::Cut(why) => (Refusal::CutOff(why), StatusCode::BAD_REQUEST),
                    BodyError::Timeout => (Refusal::BodyTimeout, StatusCode::REQUEST_TIMEOUT),
                };
                shared.inbox.refuse(&refusal, b"");
                return status;
            }
        };
    // A signature covers the body, so it is checked once the body is read.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = match &shared.auth {
        Auth::Bearer(_) => Ok(()),
        Auth::Github(secret) => {
            signature::verify_github(secret.as_bytes(), &body, header(signature::GITHUB_HEADER))
        }
        Auth::Stripe(secret, tolerance) => signature::verify_stripe(
            secret.as_bytes(),
            &body,
            header(signature::STRIPE_HEADER),
            std::time::SystemTime::now(),
            *tolerance,
        ),
    };
    if signed.is_err() {
        shared.inbox.refuse(&Refusal::Unauthorized, b"");
        return StatusCode::UNAUTHORIZED;
    }
    match shared.parser.parse_json(&body) {
        Err(refusal) => {
            shared.inbox.refuse(&refusal, &body);
            StatusCode::BAD_REQUEST
        }
        Ok(message) => match shared.inbox.accept(message, arrival, "webhook") {
            Ok(()) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::clock::SimClock;
    use crate::scenario::Clock;

    const ALERT: &[u8] = br#"{"patient_id":"p","kind":"news2-high","priority":"high"}"#;

    async fn post(url: &str, header: Option<(&str, String)>) -> u16 {
        medtwin_tls::install_default_provider();
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(ALERT);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    #[test]
    fn signed_webhooks_take_good_signatures_and_count_the_rest() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let inbox = Inbox::new(Arc::new(SimClock::new(Clock::Virtual, Instant::now())));
            let ctx = IntakeContext {
                inbox: inbox.clone(),
                parser: Arc::new(AlertParser::default()),
                token: "t".into(),
                secret: Some("k".into()),
                mqtt_broker: None,
                server_tls: None,
                tls: Default::default(),
            };
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let github = Webhook::start(listen, Auth::Github("k".into()), &ctx)
                .await
                .unwrap();
            let good = signature::github(b"k", ALERT);
            let url = github.url();
            assert_eq!(
                post(&url, Some((signature::GITHUB_HEADER, good))).await,
                202
            );
            assert_eq!(post(&url, None).await, 401, "unsigned");
            let forged = signature::github(b"guess", ALERT);
            assert_eq!(
                post(&url, Some((signature::GITHUB_HEADER, forged))).await,
                401
            );
            github.stop().await;
            let tolerance = Duration::from_secs(300);
            let stripe = Webhook::start(listen, Auth::Stripe("k".into(), tolerance), &ctx)
                .await
                .unwrap();
            let url = stripe.url();
            let now = signature::stripe(b"k", ALERT, SystemTime::now());
            assert_eq!(post(&url, Some((signature::STRIPE_HEADER, now))).await, 202);
            let old = SystemTime::now() - Duration::from_secs(3600);
            let replayed = signature::stripe(b"k", ALERT, old);
            assert_eq!(
                post(&url, Some((signature::STRIPE_HEADER, replayed))).await,
                401
            );
            stripe.stop().await;
            let (alerts, refused) = inbox.take();
            assert_eq!(alerts.len(), 2);
            assert!(alerts.iter().all(|a| a.via == "webhook"));
            assert_eq!(refused.unauthorized, 3);
        });
    }
}
