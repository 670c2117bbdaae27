//! The HTTP carrier: one POST per message, bearer token if the target
//! wants one, a timeout on every request.

use std::time::Duration;

use super::{Carrier, Sent};

/// Where and how to POST.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Target URL.
    pub url: String,
    /// Bearer token for the target.
    pub token: Option<String>,
    /// Per-request (and connect) timeout.
    pub timeout: Duration,
    /// Keep-alive connections kept per host (one per lane).
    pub connections: usize,
}

/// POSTs each message to one URL.
#[derive(Clone, Debug)]
pub struct HttpCarrier {
    client: reqwest::Client,
    config: HttpConfig,
    content_type: &'static str,
}

impl HttpCarrier {
    /// A carrier for bodies of `content_type`.
    pub fn new(
        config: HttpConfig,
        content_type: &'static str,
    ) -> Result<HttpCarrier, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.connections)
            .no_proxy()
            .build()?;
        Ok(HttpCarrier {
            client,
            config,
            content_type,
        })
    }
}

impl Carrier for HttpCarrier {
    async fn send(&self, body: Vec<u8>) -> Sent {
        let mut request = self
            .client
            .post(&self.config.url)
            .header("content-type", self.content_type)
            .body(body);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                // Read the body so the connection can be reused.
                let text = response.text().await.unwrap_or_default();
                let head: String = text.chars().take(120).collect();
                if status.is_success() {
                    Sent::Accepted
                } else if status.is_server_error() {
                    Sent::ServerError(format!("{status}: {head}"))
                } else {
                    Sent::Rejected(format!("{status}: {head}"))
                }
            }
            Err(error) => Sent::Failed(error.to_string()),
        }
    }

    fn destination(&self) -> &str {
        &self.config.url
    }
}
