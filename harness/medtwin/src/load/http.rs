//! The load generator's HTTP path: one task per keep-alive connection
//! (hyper's HTTP/1.1 client, no pool logic in the way), each fed by its
//! own bounded queue of pre-encoded bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::stats::Recorder;

/// One message on its way to a connection.
#[derive(Debug)]
pub struct Outgoing {
    /// Report window it belongs to.
    pub window: u64,
    /// When it was due, on this process's clock.
    pub due: Instant,
    /// The encoded body.
    pub body: Bytes,
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path and query of the request.
    pub path: String,
    /// `content-type` of the bodies.
    pub content_type: &'static str,
    /// `authorization` header value, when the target needs one.
    pub authorization: Option<String>,
    /// `x-medtwin-run` header value.
    pub run_id: String,
    /// Per-request (and per-connect) timeout.
    pub timeout: Duration,
    /// A message that waited longer than this in the queue is dropped.
    pub max_late: Duration,
}

/// Parses `http://host:port/path` into an authority and a path.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: `medtwin load` speaks plain http:// (no TLS yet)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_owned()))
}

async fn connect(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, &'static str> {
    let stream =
        match tokio::time::timeout(endpoint.timeout, TcpStream::connect(&endpoint.authority)).await
        {
            Err(_) => return Err("connect_timeout"),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err("connection_refused");
            }
            Ok(Err(_)) => return Err("connect"),
            Ok(Ok(s)) => s,
        };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "connect")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn classify(error: &hyper::Error) -> &'static str {
    if error.is_canceled() || error.is_closed() || error.is_incomplete_message() {
        "closed"
    } else if error.is_parse() {
        "malformed_answer"
    } else {
        "io"
    }
}

/// One connection's task: sends what its queue holds until the queue
/// closes, reconnecting after a failure. Records every fate in `recorder`.
pub async fn connection(
    endpoint: Arc<Endpoint>,
    mut queue: mpsc::Receiver<Outgoing>,
    recorder: Arc<Mutex<Recorder>>,
    backlog: &AtomicU64,
) {
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while let Some(message) = queue.recv().await {
        backlog.fetch_sub(1, Ordering::Relaxed);
        if message.due.elapsed() > endpoint.max_late {
            let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
            let w = r.window(message.window);
            w.counts.dropped += 1;
            w.counts.cause("dropped_late");
            continue;
        }
        let fate = send(&endpoint, &mut sender, message.body).await;
        let latency_us = u64::try_from(message.due.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        let w = r.window(message.window);
        w.counts.sent += 1;
        match fate {
            Ok(status) if (200..300).contains(&status) => {
                w.counts.accepted += 1;
                let _ = w.ingest.record(latency_us.max(1));
            }
            Ok(status) => {
                w.counts.refused += 1;
                w.counts.cause(&format!("status_{status}"));
            }
            Err(cause) => {
                w.counts.failed += 1;
                w.counts.cause(cause);
            }
        }
    }
}

async fn send(
    endpoint: &Endpoint,
    slot: &mut Option<SendRequest<Full<Bytes>>>,
    body: Bytes,
) -> Result<u16, &'static str> {
    let mut sender = match slot.take() {
        Some(s) if !s.is_closed() => s,
        _ => connect(endpoint).await?,
    };
    if sender.ready().await.is_err() {
        sender = connect(endpoint).await?;
    }
    let mut request = hyper::Request::post(endpoint.path.as_str())
        .header(hyper::header::HOST, endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, endpoint.content_type)
        .header(crate::transport::http::RUN_HEADER, endpoint.run_id.as_str());
    if let Some(auth) = &endpoint.authorization {
        request = request.header(hyper::header::AUTHORIZATION, auth.as_str());
    }
    let request = request.body(Full::new(body)).map_err(|_| "request")?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        // Read the answer whole so the connection can carry the next one.
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| classify(&e))?;
        Ok::<u16, &'static str>(status)
    };
    match tokio::time::timeout(endpoint.timeout, exchange).await {
        Err(_) => Err("timeout"),
        Ok(Err(cause)) => Err(cause),
        Ok(Ok(status)) => {
            *slot = Some(sender);
            Ok(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/v1/measurements").unwrap(),
            ("127.0.0.1:8080".into(), "/v1/measurements".into())
        );
        assert_eq!(
            split_url("http://sink").unwrap(),
            ("sink:80".into(), "/".into())
        );
        assert!(split_url("https://x/").unwrap_err().contains("http://"));
    }
}
