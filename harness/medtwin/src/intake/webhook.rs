//! The alert webhook: where the target POSTs its alerts (medtwin's alert
//! format, `docs/schemas/alert.schema.json`). It requires a bearer token
//! (compared in constant time), bounds the body size, and hands everything
//! to the [`Inbox`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use medtwin_wire::{AlertMessage, MAX_BODY_BYTES};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Inbox, Intake, Refusal};

/// Path the webhook listens on.
pub const ALERTS_PATH: &str = "/alerts";

struct Shared {
    token: String,
    inbox: Arc<Inbox>,
}

/// A running webhook.
pub struct Webhook {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Webhook {
    /// Starts listening on `listen`; alerts must carry
    /// `Authorization: Bearer <token>`.
    pub async fn start(
        listen: SocketAddr,
        token: String,
        inbox: Arc<Inbox>,
    ) -> std::io::Result<Webhook> {
        let shared = Arc::new(Shared { token, inbox });
        let app = Router::new()
            .route(ALERTS_PATH, post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Webhook {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The URL a target should post alerts to.
    pub fn url(&self) -> String {
        format!("http://{}{ALERTS_PATH}", self.addr)
    }
}

impl Intake for Webhook {
    fn address(&self) -> String {
        self.url()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let arrival = shared.inbox.arrival();
    if !authorized(&headers, &shared.token) {
        shared.inbox.refuse(&Refusal::Unauthorized, &body);
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<AlertMessage>(&body) {
        Err(error) => {
            shared
                .inbox
                .refuse(&Refusal::Malformed(error.to_string()), &body);
            StatusCode::BAD_REQUEST
        }
        Ok(message) => match shared.inbox.accept(message, arrival) {
            Ok(()) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}
