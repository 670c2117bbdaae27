//! Authentication towards the target, end to end (`[target.auth]`,
//! docs/security-auth.md): the binary against a small OAuth2 token
//! endpoint and protected ingest endpoints on loopback that check what
//! they are sent as a real server would: the client assertion's signature
//! (with the public key), its claims and a jti never seen before; the
//! client secret; basic credentials; only unexpired tokens they issued.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use medtwin::transport::auth::jwt::{base64, base64_decode};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::common::{report, root, text};

const CLIENT_ID: &str = "medtwin-backend";
const KEY_ID: &str = "medtwin-key-1";

/// The identity provider and the protected resource server in one.
#[derive(Default)]
struct Server {
    /// The token endpoint's own URL (the assertion's `aud`).
    token_url: Mutex<String>,
    /// The P-384 public key registered under [`KEY_ID`] (uncompressed).
    public_key: Option<Vec<u8>>,
    /// The client secret (client_secret_basic).
    client_secret: Option<String>,
    /// Basic credentials the ingest endpoint takes instead of tokens.
    basic: Option<(String, String)>,
    /// `expires_in` advertised.
    lifetime: Duration,
    /// How long a token is really honoured (shorter: the server revokes).
    honoured: Duration,
    issued: Mutex<Vec<(String, Instant)>>,
    jtis: Mutex<HashSet<String>>,
    token_refusals: AtomicU64,
    accepted: AtomicU64,
    unauthorized: AtomicU64,
    ids: AtomicU64,
}

fn oauth_error(code: &str, why: &str) -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": code, "error_description": why})),
    )
        .into_response()
}

fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

impl Server {
    /// Checks a client assertion as a SMART server does; the reason why
    /// not, as an OAuth error.
    fn check_assertion(&self, jwt: &str) -> Result<(), (&'static str, String)> {
        let bad = |why: &str| ("invalid_client", why.to_owned());
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, c, s] = parts.as_slice() else {
            return Err(bad("not a JWS"));
        };
        let header: Value = serde_json::from_slice(&base64_decode(h).ok_or(bad("header"))?)
            .map_err(|_| bad("header"))?;
        let claims: Value = serde_json::from_slice(&base64_decode(c).ok_or(bad("claims"))?)
            .map_err(|_| bad("claims"))?;
        if header["alg"] != "ES384" || header["typ"] != "JWT" {
            return Err(bad("alg/typ"));
        }
        if header["kid"] != KEY_ID {
            return Err(bad("unknown kid"));
        }
        let Some(key) = &self.public_key else {
            return Err(bad("no key registered for this client"));
        };
        let sig = base64_decode(s).ok_or(bad("signature"))?;
        signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, key)
            .verify(format!("{h}.{c}").as_bytes(), &sig)
            .map_err(|_| bad("the signature does not verify with the registered key"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exp = claims["exp"].as_u64().ok_or(bad("exp"))?;
        if claims["iss"] != CLIENT_ID || claims["sub"] != CLIENT_ID {
            return Err(bad("iss/sub"));
        }
        if claims["aud"] != self.token_url.lock().unwrap().as_str() {
            return Err(("invalid_grant", "aud is not this endpoint".into()));
        }
        if exp <= now || exp > now + 300 {
            return Err(("invalid_grant", "exp not within five minutes".into()));
        }
        let jti = claims["jti"].as_str().ok_or(bad("jti"))?.to_owned();
        if !self.jtis.lock().unwrap().insert(jti) {
            return Err(("invalid_grant", "jti replayed".into()));
        }
        Ok(())
    }
}

async fn token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let form = form(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let verdict = match (&server.client_secret, get("client_assertion")) {
        (Some(secret), _) => {
            let expected = format!(
                "Basic {}",
                base64(format!("{CLIENT_ID}:{secret}").as_bytes())
            );
            match headers.get(header::AUTHORIZATION) {
                Some(h) if h.as_bytes() == expected.as_bytes() => Ok(()),
                _ => Err(("invalid_client", "wrong client secret".to_owned())),
            }
        }
        (None, Some(jwt)) => {
            if get("client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                Err(("invalid_client", "client_assertion_type".to_owned()))
            } else {
                server.check_assertion(jwt)
            }
        }
        (None, None) => Err(("invalid_client", "no client authentication".to_owned())),
    };
    if let Err((code, why)) = verdict {
        server.token_refusals.fetch_add(1, Ordering::Relaxed);
        return oauth_error(code, &why);
    }
    let mut issued = server.issued.lock().unwrap();
    let value = format!("at-{}-{}", issued.len(), std::process::id());
    issued.push((value.clone(), Instant::now()));
    axum::Json(json!({
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": server.lifetime.as_secs_f64(),
        "scope": get("scope").unwrap_or(""),
    }))
    .into_response()
}

impl Server {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
        else {
            return false;
        };
        if let Some((user, password)) = &self.basic {
            return given == format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        }
        let Some(token) = given.strip_prefix("Bearer ") else {
            return false;
        };
        self.issued
            .lock()
            .unwrap()
            .iter()
            .any(|(t, at)| t == token && at.elapsed() < self.honoured)
    }

    /// Whether the request may in; counted.
    fn ingest(&self, headers: &HeaderMap) -> bool {
        let ok = self.authorized(headers);
        let counter = if ok {
            &self.accepted
        } else {
            &self.unauthorized
        };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }
}

/// 401 with RFC 6750's challenge.
fn unauthorized() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
    )
        .into_response()
}

async fn ingest(State(server): State<Arc<Server>>, headers: HeaderMap) -> axum::response::Response {
    if server.ingest(&headers) {
        StatusCode::ACCEPTED.into_response()
    } else {
        unauthorized()
    }
}

/// `POST [base]/{type}`: a conditional create that always creates.
async fn fhir_create(
    State(server): State<Arc<Server>>,
    axum::extract::Path(kind): axum::extract::Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    if !server.ingest(&headers) {
        return unauthorized();
    }
    let id = server.ids.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("{kind}/{id}/_history/1"))],
    )
        .into_response()
}

/// `POST [base]`: a transaction, every entry created.
async fn fhir_transaction(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    if !server.ingest(&headers) {
        return unauthorized();
    }
    let bundle: Value = serde_json::from_str(&body).unwrap_or_default();
    let entries = bundle["entry"].as_array().map_or(0, Vec::len);
    let answer = json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": (0..entries).map(|_| json!({"response": {"status": "201 Created"}})).collect::<Vec<_>>(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        answer.to_string(),
    )
        .into_response()
}

/// Starts the server on loopback; its address. It lives as long as `rt`.
fn start(rt: &tokio::runtime::Runtime, server: Arc<Server>) -> SocketAddr {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *server.token_url.lock().unwrap() = format!("http://{addr}/token");
        let app = axum::Router::new()
            .route("/token", post(token))
            .route("/ingest", post(ingest))
            .route("/fhir", post(fhir_transaction))
            .route("/fhir/{kind}", post(fhir_create))
            .with_state(server);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A P-384 key: its PKCS#8 PEM, and its public key.
fn p384_key() -> (String, Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let b64 = base64(pkcs8.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (pem, pair.public_key().as_ref().to_vec())
}

/// A scenario with `[target]` (url, transport) and `[target.auth]` as
/// given, `seconds` of simulated time for four patients sending once a
/// second.
fn scenario(
    dir: &Path,
    url: &str,
    transport: &str,
    auth: &str,
    seconds: u32,
) -> std::path::PathBuf {
    let text = format!(
        r#"name = "secure auth"
duration = "{seconds}s"
seed = 7
start = "2026-01-01T00:00:00Z"
[[cohort]]
name = "bed"
count = 4
devices = [{{ kind = "pulse_oximeter", every = "1s" }}]
[target]
url = "{url}"
transport = "{transport}"
timeout = "2s"
concurrency = 2
[target.auth]
{auth}
[alerts]
grace = "200ms"
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `medtwin run SCENARIO --clock real-time --out DIR` with `env` set.
fn run(scenario: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medtwin"));
    cmd.args([
        "run",
        scenario.to_str().unwrap(),
        "--clock",
        "real-time",
        "--out",
    ])
    .arg(out)
    .current_dir(root())
    .env_remove("MEDTWIN_TARGET_TOKEN")
    .env_remove("MEDTWIN_ALERT_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Every file under `dir`, and the run's output, hold no `secret`.
fn assert_no_secret(dir: &Path, out: &Output, secret: &str) {
    assert!(
        !text(&out.stdout).contains(secret),
        "stdout shows the secret"
    );
    assert!(
        !text(&out.stderr).contains(secret),
        "stderr shows the secret"
    );
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "{} shows the secret",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 3, "report.json, junit.xml, index.html at least");
}

fn counters(report: &Value) -> &serde_json::Map<String, Value> {
    report["transport"]["carrier"]
        .as_object()
        .unwrap_or_else(|| panic!("carrier counters: {:#}", report["transport"]))
}

#[test]
fn secure_auth_smart_backend_services_refreshes_short_lived_tokens() {
    let rt = runtime();
    let (pem, public) = p384_key();
    let server = Arc::new(Server {
        public_key: Some(public),
        lifetime: Duration::from_secs(2),
        honoured: Duration::from_secs(2),
        ..Server::default()
    });
    let addr = start(&rt, Arc::clone(&server));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &pem).unwrap();
    let auth = format!(
        r#"kind = "oauth2"
token_url = "http://{addr}/token"
client_id = "{CLIENT_ID}"
scope = "system/Observation.c"
private_key = "key.pem"
key_id = "{KEY_ID}"
alg = "ES384""#
    );
    let path = scenario(
        dir.path(),
        &format!("http://{addr}/ingest"),
        "http-json",
        &auth,
        7,
    );
    let out = dir.path().join("out");
    let done = run(&path, &out, &[]);
    let stdout = text(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&done.stderr)
    );
    let report = report(&out);
    let stats = &report["transport"];
    let accepted = stats["accepted"].as_u64().unwrap();
    assert!(accepted >= 20, "{stats:#}");
    assert_eq!(
        stats["sent"].as_u64(),
        Some(accepted),
        "every message accepted: {stats:#}"
    );
    assert_eq!(server.accepted.load(Ordering::Relaxed), accepted);
    let issued = server.issued.lock().unwrap().len();
    assert!(issued >= 3, "7 s of 2 s tokens: refreshed, {issued} issued");
    assert_eq!(server.token_refusals.load(Ordering::Relaxed), 0);
    assert_eq!(
        server.jtis.lock().unwrap().len(),
        issued,
        "one fresh assertion per token"
    );
    let c = counters(&report);
    assert_eq!(
        c["auth_token_fetches"].as_u64(),
        Some(issued as u64),
        "{c:?}"
    );
    assert_eq!(c["auth_token_refreshes"].as_u64(), Some(issued as u64 - 1));
    assert_eq!(
        report["target"]["security"]["auth"],
        "oauth2-private-key-jwt"
    );
    // The key never leaves its file.
    let key_body: String = pem.lines().nth(2).unwrap().to_owned();
    assert_no_secret(&out, &done, &key_body);
}

#[test]
fn secure_auth_a_revoked_token_is_refetched_and_the_request_retried_once() {
    // Tokens advertised for an hour but honoured for one second: the
    // target's 401 makes medtwin fetch another and send again.
    let rt = runtime();
    let (pem, public) = p384_key();
    let server = Arc::new(Server {
        public_key: Some(public),
        lifetime: Duration::from_secs(3600),
        honoured: Duration::from_secs(1),
        ..Server::default()
    });
    let addr = start(&rt, Arc::clone(&server));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &pem).unwrap();
    let auth = format!(
        "kind = \"oauth2\"\ntoken_url = \"http://{addr}/token\"\nclient_id = \"{CLIENT_ID}\"\nprivate_key = \"key.pem\"\nkey_id = \"{KEY_ID}\"\nalg = \"ES384\""
    );
    let path = scenario(
        dir.path(),
        &format!("http://{addr}/ingest"),
        "http-json",
        &auth,
        6,
    );
    let out = dir.path().join("out");
    let done = run(&path, &out, &[]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        text(&done.stdout),
        text(&done.stderr)
    );
    let report = report(&out);
    let stats = &report["transport"];
    assert_eq!(stats["sent"], stats["accepted"], "{stats:#}");
    let c = counters(&report);
    let retried = c["auth_retries_after_401"].as_u64().unwrap();
    assert!(retried >= 2, "{c:?}");
    assert!(server.unauthorized.load(Ordering::Relaxed) >= retried);
    assert!(server.issued.lock().unwrap().len() >= 3);
}

#[test]
fn secure_auth_a_refused_assertion_is_counted_with_a_hint() {
    // The server knows no key for the client: invalid_client.
    let rt = runtime();
    let (pem, _) = p384_key();
    let server = Arc::new(Server {
        lifetime: Duration::from_secs(60),
        honoured: Duration::from_secs(60),
        ..Server::default()
    });
    let addr = start(&rt, Arc::clone(&server));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), &pem).unwrap();
    let auth = format!(
        "kind = \"oauth2\"\ntoken_url = \"http://{addr}/token\"\nclient_id = \"{CLIENT_ID}\"\nprivate_key = \"key.pem\"\nkey_id = \"{KEY_ID}\"\nalg = \"ES384\""
    );
    let path = scenario(
        dir.path(),
        &format!("http://{addr}/ingest"),
        "http-json",
        &auth,
        3,
    );
    let out = dir.path().join("out");
    let done = run(&path, &out, &[]);
    let stdout = text(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(4),
        "the target took nothing: {stdout}\n{}",
        text(&done.stderr)
    );
    assert!(stdout.contains("auth_token_refused"), "{stdout}");
    assert!(
        stdout.contains("hint: auth_token_refused: the token endpoint refused the client (invalid_client); check client_id, key_id"),
        "{stdout}"
    );
    let report = report(&out);
    let stats = &report["transport"];
    let sent = stats["sent"].as_u64().unwrap();
    assert!(sent > 0);
    assert_eq!(
        stats["by_cause"]["auth_token_refused"].as_u64(),
        Some(sent),
        "{stats:#}"
    );
    assert_eq!(
        stats["by_reason"]["auth_token_refused: invalid_client"].as_u64(),
        Some(sent)
    );
    let sample = stats["samples"][0].as_str().unwrap();
    assert!(
        sample.contains("auth_token_refused") && sample.contains("invalid_client"),
        "{sample}"
    );
    assert_eq!(server.accepted.load(Ordering::Relaxed), 0);
    // A refusing endpoint is asked about once a second, not per message.
    let asked = server.token_refusals.load(Ordering::Relaxed);
    assert!(
        asked >= 1 && asked < sent,
        "asked {asked} times for {sent} messages"
    );
}

#[test]
fn secure_auth_client_secret_over_fhir_keeps_the_secret_out_of_everything() {
    let rt = runtime();
    let secret = "cs-5f1c0a9e-secret-value";
    let server = Arc::new(Server {
        client_secret: Some(secret.into()),
        lifetime: Duration::from_secs(2),
        honoured: Duration::from_secs(2),
        ..Server::default()
    });
    let addr = start(&rt, Arc::clone(&server));
    let dir = tempfile::tempdir().unwrap();
    let auth = format!(
        "kind = \"oauth2\"\ntoken_url = \"http://{addr}/token\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"MEDTWIN_TEST_CLIENT_SECRET\""
    );
    let path = scenario(dir.path(), &format!("http://{addr}/fhir"), "fhir", &auth, 4);
    let out = dir.path().join("out");
    let done = run(&path, &out, &[("MEDTWIN_TEST_CLIENT_SECRET", secret)]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        text(&done.stdout),
        text(&done.stderr)
    );
    let report = report(&out);
    let stats = &report["transport"];
    assert_eq!(stats["sent"], stats["accepted"], "{stats:#}");
    assert!(
        server.accepted.load(Ordering::Relaxed) > stats["accepted"].as_u64().unwrap(),
        "the patients and devices were created with the token too"
    );
    assert!(server.issued.lock().unwrap().len() >= 2, "refreshed");
    assert_eq!(report["target"]["security"]["auth"], "oauth2-client-secret");
    assert_no_secret(&out, &done, secret);
    for issued in server.issued.lock().unwrap().iter() {
        assert_no_secret(&out, &done, &issued.0);
    }
    // Without the variable: an error before the run, naming it (not a value).
    let missing = run(&path, &dir.path().join("out2"), &[]);
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scenario.toml:")
            && stderr.contains("target.auth.client_secret_env")
            && stderr.contains("the environment variable MEDTWIN_TEST_CLIENT_SECRET is not set"),
        "{stderr}"
    );
}

#[test]
fn secure_auth_basic_from_a_password_file() {
    let rt = runtime();
    let password = "pw-9d2e-basic-password";
    let server = Arc::new(Server {
        basic: Some(("ingest-user".into(), password.into())),
        ..Server::default()
    });
    let addr = start(&rt, Arc::clone(&server));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password.txt"), format!("{password}\n")).unwrap();
    let auth = "kind = \"basic\"\nusername = \"ingest-user\"\npassword_file = \"password.txt\"";
    let path = scenario(
        dir.path(),
        &format!("http://{addr}/ingest"),
        "http-json",
        auth,
        2,
    );
    let out = dir.path().join("out");
    let done = run(&path, &out, &[]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        text(&done.stdout),
        text(&done.stderr)
    );
    let report = report(&out);
    let stats = &report["transport"];
    assert_eq!(stats["sent"], stats["accepted"], "{stats:#}");
    assert!(server.accepted.load(Ordering::Relaxed) > 0);
    assert_eq!(report["target"]["security"]["auth"], "basic");
    assert_no_secret(&out, &done, password);
    let encoded = base64(format!("ingest-user:{password}").as_bytes());
    assert_no_secret(&out, &done, &encoded);
}

#[test]
fn secure_auth_secrets_are_refused_on_the_command_line() {
    let secret = "cli-secret-7a41";
    for args in [
        vec![
            "replay",
            "x.ndjson",
            "--target",
            "http://127.0.0.1:9/x",
            "--token",
            secret,
        ],
        vec![
            "run",
            "fixtures/scenarios/small-sepsis.toml",
            "--alerts-token",
            secret,
        ],
        vec!["reference-backend", "--token", secret, "--stop-after", "1s"],
        vec![
            "reference-backend",
            "--alerts-token",
            secret,
            "--stop-after",
            "1s",
        ],
        vec![
            "reference-backend",
            "--alerts-secret",
            secret,
            "--stop-after",
            "1s",
        ],
    ] {
        let done = crate::common::medtwin(&args);
        let stderr = text(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("secrets are not taken on the command line, where `ps` shows them"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("-file FILE"), "{args:?}: {stderr}");
        assert!(!stderr.contains(secret) && !text(&done.stdout).contains(secret));
    }
}
