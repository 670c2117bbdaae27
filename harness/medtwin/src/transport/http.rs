//! The HTTP carrier: one POST per message, the target's authentication
//! ([`super::auth`]; a 401 retried once with a fresh OAuth2 token), a
//! timeout on every request, and every failure named by its
//! cause (refused, timeout, reset, closed, a status, a cut-off answer).

use std::sync::Arc;
use std::time::Duration;

use medtwin_tls::ClientTls;

use super::{Carrier, Cause, Failure, Outgoing, Sent};

/// Where and how to POST.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Target URL.
    pub url: String,
    /// Where waveform chunks go ([`super::waves::waveform_url`] of `url`).
    pub waveform_url: String,
    /// How to authenticate to the target.
    pub auth: super::auth::Auth,
    /// Per-request (and connect) timeout.
    pub timeout: Duration,
    /// Keep-alive connections kept per host (one per lane).
    pub connections: usize,
    /// Sent as [`RUN_HEADER`] with every message, when set.
    pub run_id: Option<String>,
    /// TLS, for an `https://` URL.
    pub tls: Option<Arc<ClientTls>>,
}

/// An HTTP client with medtwin's settings: timeouts on connecting and on
/// each request, `connections` idle keep-alive connections kept per host,
/// no proxy, and the target's TLS (one rustls configuration for the
/// client, so its session cache resumes sessions across reconnections).
pub fn client(
    timeout: Duration,
    connections: usize,
    tls: Option<&ClientTls>,
) -> Result<reqwest::Client, reqwest::Error> {
    medtwin_tls::install_default_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(connections)
        .no_proxy();
    if let Some(tls) = tls {
        let mut config = tls.config_owned();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        builder = builder.tls_backend_preconfigured(config);
    }
    builder.build()
}

/// POSTs each message to one URL (medtwin's JSON, or any single-body
/// format).
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
        let client = client(config.timeout, config.connections, config.tls.as_deref())?;
        Ok(HttpCarrier {
            client,
            config,
            content_type,
        })
    }
}

impl Carrier for HttpCarrier {
    async fn send(&self, batch: &[Outgoing]) -> Sent {
        // One message per request (batch_limit is 1).
        let Some(first) = batch.first() else {
            return Sent::Accepted;
        };
        let url = match first.kind {
            super::MessageKind::Measurement => &self.config.url,
            super::MessageKind::Waveform => &self.config.waveform_url,
        };
        let mut request = self
            .client
            .post(url)
            .header("content-type", self.content_type)
            .body(first.body.clone());
        if let Some(run) = &self.config.run_id {
            request = request.header(RUN_HEADER, run);
        }
        let response = match self.config.auth.send(request).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Sent::NotAccepted(failure_of(&error)),
            Err(auth) => return Sent::NotAccepted(auth),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read the whole body: the connection can then be reused, and a 2xx
        // cut off mid-way is not an acceptance.
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                let f = failure_of(&error);
                let detail = format!("{status} with a body that could not be read: {}", f.detail);
                let cause = if status.is_success() {
                    Cause::MalformedAnswer
                } else {
                    Cause::Status(status.as_u16())
                };
                return Sent::NotAccepted(Failure {
                    cause,
                    retry_after,
                    detail,
                    reason: None,
                });
            }
        };
        if status.is_success() {
            return Sent::Accepted;
        }
        let head: String = text.chars().take(120).collect();
        if let Some(tls) = tls_refusal(status.as_u16(), &text) {
            return Sent::NotAccepted(Failure::new(Cause::Tls(tls), format!("{status}: {head}")));
        }
        Sent::NotAccepted(Failure {
            cause: Cause::Status(status.as_u16()),
            retry_after,
            detail: format!("{status}: {head}"),
            reason: None,
        })
    }

    fn destination(&self) -> &str {
        &self.config.url
    }

    fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        self.config.auth.counters()
    }
}

/// A client-certificate refusal that a TLS terminator reports in HTTP
/// rather than in the handshake: nginx with `ssl_verify_client on`
/// completes the handshake and answers 400 "No required SSL certificate was
/// sent" (none shown) or "The SSL certificate error" (one it does not
/// trust). Named as the TLS causes they are.
fn tls_refusal(status: u16, body: &str) -> Option<medtwin_tls::HandshakeCause> {
    use medtwin_tls::HandshakeCause as H;
    if status != 400 {
        return None;
    }
    if body.contains("No required SSL certificate was sent") {
        Some(H::ClientCertRequired)
    } else if body.contains("The SSL certificate error") {
        Some(H::ClientCertRefused)
    } else {
        None
    }
}

/// Header naming the run on every telemetry request, so a backend shared by
/// several runs can keep each run's state apart (the reference backend
/// does).
pub const RUN_HEADER: &str = "x-medtwin-run";

/// A `Retry-After` value: delay-seconds, or an HTTP date.
pub fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    Some(Duration::try_from(when.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// The cause of a failed request, from the error and its sources; the
/// detail is the whole chain, so a sample says more than "error sending
/// request".
pub(crate) fn failure_of(error: &reqwest::Error) -> Failure {
    let mut chain = vec![error.to_string()];
    let mut io_kind = None;
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let text = e.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind = io_kind.or(Some(io.kind()));
        }
        source = e.source();
    }
    let detail = chain.join(": ");
    if let Some(tls) = medtwin_tls::classify(error) {
        return Failure::new(Cause::Tls(tls), detail);
    }
    use std::io::ErrorKind as K;
    let cause = if error.is_timeout() {
        Cause::Timeout
    } else {
        match io_kind {
            Some(K::ConnectionRefused) => Cause::ConnectionRefused,
            Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe) => Cause::Reset,
            Some(K::TimedOut) => Cause::Timeout,
            Some(K::UnexpectedEof) => Cause::Closed,
            _ if detail.contains("connection closed before message completed") => Cause::Closed,
            _ if detail.contains("invalid HTTP") || detail.contains("parse") => {
                Cause::MalformedAnswer
            }
            _ if error.is_connect() => Cause::Connect,
            _ if error.is_body() || error.is_decode() => Cause::MalformedAnswer,
            _ => Cause::Io,
        }
    };
    Failure::new(cause, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_client_certificate_refusals_are_tls_causes() {
        use medtwin_tls::HandshakeCause as H;
        let page = "<html><head><title>400 No required SSL certificate was sent</title></head>";
        assert_eq!(tls_refusal(400, page), Some(H::ClientCertRequired));
        let page = "<center>The SSL certificate error</center>";
        assert_eq!(tls_refusal(400, page), Some(H::ClientCertRefused));
        assert_eq!(tls_refusal(400, "bad json"), None);
        assert_eq!(tls_refusal(403, page), None);
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
