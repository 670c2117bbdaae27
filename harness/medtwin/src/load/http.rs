//! The load generator's HTTP path: one task per keep-alive connection,
//! each fed by its own bounded queue of pre-encoded bodies, each with a
//! lean HTTP/1.1 client ([`Client`]).

use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::stats::{Fate, Recorder};

/// One message on its way to a connection.
#[derive(Debug)]
pub struct Outgoing {
    /// Report window it belongs to.
    pub window: u64,
    /// When it was due, on this process's clock.
    pub due: Instant,
    /// The encoded body.
    pub body: Bytes,
    /// Its MQTT topic (`None` over HTTP).
    pub topic: Option<Arc<str>>,
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

/// A connection's client: a plain HTTP/1.1 keep-alive exchange written
/// for this one job, as wrk does it. Each request is a fixed head and a
/// pre-encoded body written with one call; each answer is read into a
/// reused buffer and parsed with `httparse` (hyper's own parser), its
/// body framed by Content-Length, chunked coding or the connection's
/// close. hyper's client costs two task hand-offs and a header map per
/// request, about twice this path's CPU per message; `run` and every
/// other sender keep using it.
pub struct Client {
    endpoint: Arc<Endpoint>,
    /// The request head up to the Content-Length value.
    head: Vec<u8>,
    /// The request being written.
    out: Vec<u8>,
    /// Answer bytes read and not yet consumed.
    input: Vec<u8>,
    stream: Option<TcpStream>,
    /// The connection's one request timer (see [`Client::timed`]).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Longest answer head read before giving up on it.
const MAX_HEAD: usize = 64 * 1024;

impl Client {
    /// A client for `endpoint` (connects on the first send).
    pub fn new(endpoint: Arc<Endpoint>) -> Client {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: {}\r\n{}: {}\r\n",
            endpoint.path,
            endpoint.authority,
            endpoint.content_type,
            crate::transport::http::RUN_HEADER,
            endpoint.run_id
        );
        if let Some(auth) = &endpoint.authorization {
            head.push_str(&format!("authorization: {auth}\r\n"));
        }
        head.push_str("content-length: ");
        Client {
            endpoint,
            head: head.into_bytes(),
            out: Vec::with_capacity(1_024),
            input: Vec::with_capacity(16 * 1_024),
            stream: None,
            deadline: None,
        }
    }

    /// Sends one body and reads the answer: its status, or why not.
    pub async fn send(&mut self, body: &[u8]) -> Result<u16, &'static str> {
        self.send_from(body, Instant::now()).await
    }

    /// [`Client::send`], its timeout counted from `start` (now, read by
    /// the caller).
    pub async fn send_from(&mut self, body: &[u8], start: Instant) -> Result<u16, &'static str> {
        self.out.clear();
        self.out.extend_from_slice(&self.head);
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{}\r\n\r\n", body.len());
        self.out.extend_from_slice(body);
        let timeout = self.endpoint.timeout;
        // A kept-alive connection the target closed while it was idle
        // fails before any answer byte: the target never read the
        // request, so it is sent once more on a fresh connection.
        let reused = self.stream.is_some();
        let first = self.timed(start + timeout).await;
        let outcome = match first {
            Some(Err(Failure::Stale)) if reused => {
                self.stream = None;
                self.timed(Instant::now() + timeout).await
            }
            other => other,
        };
        match outcome {
            None => {
                self.stream = None;
                Err("timeout")
            }
            Some(Err(f)) => {
                self.stream = None;
                Err(f.cause())
            }
            Some(Ok((status, keep))) => {
                if !keep {
                    self.stream = None;
                }
                Ok(status)
            }
        }
    }

    /// One exchange, or `None` when it is not over by `limit`.
    ///
    /// The connection keeps one timer, not one per request: it is armed
    /// for some earlier request's limit (never later than this one's, as a
    /// connection's requests start in order) and, when it fires before
    /// `limit`, re-armed for `limit`. A request that takes microseconds
    /// then touches no timer at all; the timer fires about once per
    /// timeout, whatever the request rate.
    async fn timed(&mut self, limit: Instant) -> Option<Result<(u16, bool), Failure>> {
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(limit.into())));
        let exchange = exchange(&self.endpoint, &mut self.stream, &self.out, &mut self.input);
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                biased;
                done = &mut exchange => return Some(done),
                () = deadline.as_mut() => {
                    if Instant::now() >= limit {
                        return None;
                    }
                    deadline.as_mut().reset(limit.into());
                }
            }
        }
    }
}

/// Writes the request in `out` and reads its answer, connecting first
/// when there is no connection.
async fn exchange(
    endpoint: &Endpoint,
    stream: &mut Option<TcpStream>,
    out: &[u8],
    input: &mut Vec<u8>,
) -> Result<(u16, bool), Failure> {
    if stream.is_none() {
        *stream = Some(connect(endpoint).await?);
        input.clear();
    }
    let stream = stream.as_mut().expect("connected");
    stream.write_all(out).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Failure::Stale,
        _ => Failure::Cause("io"),
    })?;
    read_answer(stream, input).await
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    /// Closed before any answer byte.
    Stale,
    /// A counted cause.
    Cause(&'static str),
}

impl Failure {
    fn cause(&self) -> &'static str {
        match self {
            Failure::Stale => "closed",
            Failure::Cause(c) => c,
        }
    }
}

/// Reads more bytes into `input`; `Ok(0)` at the end of the stream.
async fn fill(stream: &mut TcpStream, input: &mut Vec<u8>) -> Result<usize, Failure> {
    let len = input.len();
    if input.capacity() - len < 4_096 {
        input.reserve(16 * 1_024);
    }
    let n = stream.read_buf(input).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
            Failure::Cause("closed")
        }
        _ => Failure::Cause("io"),
    })?;
    Ok(n)
}

/// Reads one final answer (skipping 1xx ones): its status and whether the
/// connection may carry the next request.
async fn read_answer(stream: &mut TcpStream, input: &mut Vec<u8>) -> Result<(u16, bool), Failure> {
    let mut any = !input.is_empty();
    loop {
        let (used, status, framing, keep) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(input) {
                Ok(httparse::Status::Complete(used)) => {
                    let status = response.code.unwrap_or(0);
                    let (framing, keep) = framing(&response, status);
                    break (used, status, framing, keep);
                }
                Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => {}
                _ => return Err(Failure::Cause("malformed_answer")),
            }
            if fill(stream, input).await? == 0 {
                return Err(if any {
                    Failure::Cause("closed")
                } else {
                    Failure::Stale
                });
            }
            any = true;
        };
        input.drain(..used);
        match framing {
            Framing::None => {}
            Framing::Length(n) => skip(stream, input, n).await?,
            Framing::Chunked => chunked(stream, input).await?,
            Framing::UntilClose => {
                while fill(stream, input).await? > 0 {
                    input.clear();
                }
                input.clear();
            }
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        return Ok((status, keep));
    }
}

/// How an answer's body ends (RFC 9112 §6.3).
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn framing(response: &httparse::Response<'_, '_>, status: u16) -> (Framing, bool) {
    let has_token = |value: &[u8], token: &str| {
        value
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    // One pass over the headers.
    let (mut close, mut keep_alive, mut chunked) = (false, false, false);
    // The first Content-Length counts; `Some(None)`: not a number.
    let mut length: Option<Option<u64>> = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            close |= has_token(h.value, "close");
            keep_alive |= has_token(h.value, "keep-alive");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= has_token(h.value, "chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length.get_or_insert_with(|| {
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
        }
    }
    // HTTP/1.0 answers close unless they say keep-alive.
    let keep = if response.version == Some(0) {
        keep_alive
    } else {
        !close
    };
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return (Framing::None, keep);
    }
    if chunked {
        return (Framing::Chunked, keep);
    }
    match length.flatten() {
        Some(n) => (Framing::Length(n), keep),
        // A Content-Length that is not a number, or none: to the close.
        None => (Framing::UntilClose, false),
    }
}

/// Consumes `n` body bytes.
async fn skip(stream: &mut TcpStream, input: &mut Vec<u8>, mut n: u64) -> Result<(), Failure> {
    loop {
        let here = (input.len() as u64).min(n) as usize;
        input.drain(..here);
        n -= here as u64;
        if n == 0 {
            return Ok(());
        }
        if fill(stream, input).await? == 0 {
            return Err(Failure::Cause("closed"));
        }
    }
}

/// Consumes a chunked body and its trailers.
async fn chunked(stream: &mut TcpStream, input: &mut Vec<u8>) -> Result<(), Failure> {
    loop {
        let size = loop {
            match httparse::parse_chunk_size(input) {
                Ok(httparse::Status::Complete((used, size))) => {
                    input.drain(..used);
                    break size;
                }
                Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => {
                    if fill(stream, input).await? == 0 {
                        return Err(Failure::Cause("closed"));
                    }
                }
                _ => return Err(Failure::Cause("malformed_answer")),
            }
        };
        if size == 0 {
            break;
        }
        // The chunk and its CRLF.
        skip(stream, input, size + 2).await?;
    }
    // Trailers, up to the empty line.
    loop {
        if let Some(end) = input.windows(2).position(|w| w == b"\r\n") {
            let line_empty = end == 0;
            input.drain(..end + 2);
            if line_empty {
                return Ok(());
            }
            continue;
        }
        if input.len() >= MAX_HEAD || fill(stream, input).await? == 0 {
            return Err(Failure::Cause("malformed_answer"));
        }
    }
}

async fn connect(endpoint: &Endpoint) -> Result<TcpStream, Failure> {
    let stream =
        match tokio::time::timeout(endpoint.timeout, TcpStream::connect(&endpoint.authority)).await
        {
            Err(_) => return Err(Failure::Cause("connect_timeout")),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(Failure::Cause("connection_refused"));
            }
            Ok(Err(_)) => return Err(Failure::Cause("connect")),
            Ok(Ok(s)) => s,
        };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One connection's task: sends what its queue holds until the queue
/// closes, reconnecting after a failure. Records every fate in `recorder`.
pub async fn connection(
    endpoint: Arc<Endpoint>,
    mut queue: mpsc::Receiver<Outgoing>,
    recorder: Arc<Mutex<Recorder>>,
    backlog: &AtomicU64,
) {
    let max_late = endpoint.max_late;
    let mut client = Client::new(endpoint);
    while let Some(message) = queue.recv().await {
        backlog.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        if now.saturating_duration_since(message.due) > max_late {
            let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
            r.window(message.window).dropped("dropped_late");
            continue;
        }
        let answer = client.send_from(&message.body, now).await;
        let status;
        let fate = match answer {
            Ok(s) if (200..300).contains(&s) => Fate::Accepted(message.due),
            Ok(s) => {
                status = format!("status_{s}");
                Fate::Refused(&status)
            }
            Err(cause) => Fate::Failed(cause),
        };
        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        r.window(message.window).sent(fate);
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

    /// A loopback server answering each request on a connection with the
    /// next of `answers` (raw bytes), closing after the last; records the
    /// requests' bytes.
    async fn server(answers: Vec<&'static [u8]>) -> (Arc<Endpoint>, Arc<Mutex<Vec<u8>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let endpoint = Arc::new(Endpoint {
            authority: listener.local_addr().unwrap().to_string(),
            path: "/v1/measurements?x=1".into(),
            content_type: "application/json",
            authorization: Some("Bearer t".into()),
            run_id: "load-test".into(),
            timeout: Duration::from_millis(500),
            max_late: Duration::from_secs(1),
        });
        let record = seen.clone();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4_096];
                for answer in answers.by_ref() {
                    // One request: a head with content-length 2 and a body.
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n")
                        || got.len() < head_end(&got) + 2
                    {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    record.lock().unwrap().extend_from_slice(&got);
                    if answer.is_empty() {
                        break; // close without answering
                    }
                    stream.write_all(answer).await.unwrap();
                    if answer.ends_with(b"CLOSE") {
                        break;
                    }
                }
            }
        });
        (endpoint, seen)
    }

    fn head_end(got: &[u8]) -> usize {
        got.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(usize::MAX - 2, |i| i + 4)
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_chunks_or_close_and_1xx_is_skipped() {
        let (endpoint, seen) = server(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let mut client = Client::new(endpoint.clone());
        assert_eq!(client.send(b"{}").await, Ok(200));
        assert_eq!(client.send(b"{}").await, Ok(202));
        assert_eq!(client.send(b"{}").await, Ok(204));
        assert_eq!(client.send(b"{}").await, Ok(503));
        assert!(client.stream.is_none(), "connection: close is honoured");
        let seen = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        assert_eq!(
            seen.matches("POST /v1/measurements?x=1 HTTP/1.1\r\n")
                .count(),
            4
        );
        assert!(seen.contains(&format!("host: {}\r\n", endpoint.authority)));
        assert!(seen.contains("authorization: Bearer t\r\n"));
        assert!(seen.contains("x-medtwin-run: load-test\r\n"));
        assert!(seen.contains("content-length: 2\r\n\r\n{}"));
    }

    #[tokio::test]
    async fn a_body_read_to_the_close_then_a_fresh_connection() {
        let (endpoint, seen) = server(vec![
            b"HTTP/1.0 200 OK\r\n\r\nuntil close CLOSE",
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let mut client = Client::new(endpoint);
        assert_eq!(client.send(b"{}").await, Ok(200));
        assert!(client.stream.is_none());
        // The server takes the next connection and answers again.
        assert_eq!(client.send(b"{}").await, Ok(201));
        assert_eq!(
            String::from_utf8(seen.lock().unwrap().clone())
                .unwrap()
                .matches("POST")
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn a_stale_kept_alive_connection_is_retried_once_and_garbage_is_malformed() {
        // First connection: one answer, then closed unanswered (stale);
        // the retry's connection gets garbage.
        let (endpoint, _) = server(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"",
            b"SMTP ready\r\n\r\n",
        ])
        .await;
        let mut client = Client::new(endpoint);
        assert_eq!(client.send(b"{}").await, Ok(200));
        assert_eq!(client.send(b"{}").await, Err("malformed_answer"));
    }

    /// An endpoint for `listener` with no authorization and `timeout_ms`.
    fn plain_endpoint(listener: &tokio::net::TcpListener, timeout_ms: u64) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            authority: listener.local_addr().unwrap().to_string(),
            path: "/".into(),
            content_type: "application/json",
            authorization: None,
            run_id: "r".into(),
            timeout: Duration::from_millis(timeout_ms),
            max_late: Duration::from_secs(1),
        })
    }

    #[tokio::test]
    async fn silence_times_out_and_a_closed_port_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = plain_endpoint(&listener, 200);
        let mut client = Client::new(endpoint.clone());
        assert_eq!(client.send(b"{}").await, Err("timeout"));
        drop(listener);
        assert_eq!(client.send(b"{}").await, Err("connection_refused"));
    }

    /// The connection's one timer, armed for an earlier request, gives a
    /// later request its whole timeout, counted from its own start.
    #[tokio::test]
    async fn a_later_request_gets_its_whole_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = plain_endpoint(&listener, 300);
        // Answers the first request, then reads and never answers.
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4_096];
            let mut got = Vec::new();
            while got.len() < head_end(&got) + 2 {
                let n = stream.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            while stream.read(&mut buf).await.unwrap_or(0) > 0 {}
        });
        let mut client = Client::new(endpoint);
        assert_eq!(client.send(b"{}").await, Ok(200));
        // The timer armed for the first request fires 100 ms into the
        // second; the second must still wait its own 300 ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        assert_eq!(client.send(b"{}").await, Err("timeout"));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "timed out after {:?}",
            started.elapsed()
        );
    }
}
