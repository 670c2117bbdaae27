//! The alert webhook: where the target POSTs its alerts (medtwin's alert
//! format, `docs/schemas/alert.schema.json`, validated strictly). It
//! checks the bearer token (in constant time) before reading the body,
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
use medtwin_wire::MAX_BODY_BYTES;
use subtle::ConstantTimeEq as _;

use super::{Inbox, Intake, Refusal};

/// Path the webhook listens on.
pub const ALERTS_PATH: &str = "/alerts";

struct Shared {
    token: String,
    inbox: Arc<Inbox>,
}

/// A running webhook.
pub struct Webhook {
    server: Server,
    inbox: Arc<Inbox>,
}

impl Webhook {
    /// Starts listening on `listen`; alerts must carry
    /// `Authorization: Bearer <token>`.
    pub async fn start(
        listen: SocketAddr,
        token: String,
        inbox: Arc<Inbox>,
    ) -> std::io::Result<Webhook> {
        let shared = Arc::new(Shared {
            token,
            inbox: Arc::clone(&inbox),
        });
        let app = Router::new()
            .route(ALERTS_PATH, post(receive))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let server = medtwin_listen::serve(listener, app, Limits::default())?;
        Ok(Webhook { server, inbox })
    }

    /// The URL a target should post alerts to.
    pub fn url(&self) -> String {
        format!("http://{}{ALERTS_PATH}", self.server.addr())
    }
}

impl Intake for Webhook {
    fn address(&self) -> String {
        self.url()
    }

    async fn stop(self) {
        let connections = self.server.shutdown().await;
        self.inbox.add_connections(&connections);
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
    // The token first: an unauthenticated client's body is never read.
    if !authorized(&headers, &shared.token) {
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
    match medtwin_wire::parse_alert(&body) {
        Err(error) => {
            shared.inbox.refuse(&Refusal::Malformed(error), &body);
            StatusCode::BAD_REQUEST
        }
        Ok(message) => match shared.inbox.accept(message, arrival) {
            Ok(()) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}
