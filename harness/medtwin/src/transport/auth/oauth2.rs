//! OAuth2 access tokens by the client credentials grant (RFC 6749 §4.4):
//! the client authenticates with `client_secret_basic` (§2.3.1) or a
//! signed JWT assertion (RFC 7523 §2.2, as SMART Backend Services asks),
//! the token is cached, fetched again before it expires (at 80 % of its
//! lifetime, or 30 s before the end for long-lived ones), one fetch at a
//! time, and dropped when the target answers 401.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::jwt::Signer;
use super::{Credential, OAuth2Spec, form_component, form_encode, sensitive};
use crate::transport::{Cause, Failure};

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// After a failed fetch, how long the failure is the answer before the
/// endpoint is asked again (so a refusing endpoint is not asked once per
/// message).
pub const FAILURE_HOLD: Duration = Duration::from_secs(1);
/// The longest lead of a refresh before the token's end.
pub const MAX_REFRESH_LEAD: Duration = Duration::from_secs(30);
/// Bytes of a token endpoint's answer kept in a failure's detail.
const DETAIL_BYTES: usize = 160;

/// Why the token endpoint gave no token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthCause {
    /// It answered 4xx (its OAuth `error` code is the reason).
    TokenRefused,
    /// No answer, or a 5xx.
    TokenUnreachable,
    /// A 2xx without a usable `access_token`.
    TokenMalformed,
}

impl AuthCause {
    /// Every cause.
    pub const ALL: [AuthCause; 3] = [
        AuthCause::TokenRefused,
        AuthCause::TokenUnreachable,
        AuthCause::TokenMalformed,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            AuthCause::TokenRefused => "auth_token_refused",
            AuthCause::TokenUnreachable => "auth_token_unreachable",
            AuthCause::TokenMalformed => "auth_token_malformed",
        }
    }

    /// The cause of a name.
    pub fn from_name(name: &str) -> Option<AuthCause> {
        AuthCause::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What to check, given the endpoint's reason (an OAuth `error` code,
    /// or the cause of a failed connection).
    pub fn hint(self, reason: Option<&str>) -> String {
        match (self, reason) {
            (AuthCause::TokenRefused, Some("invalid_client")) => "the token endpoint refused the client (invalid_client); check client_id, key_id and alg, and that the server has the public key (private_key) or the same secret (client_secret)".into(),
            (AuthCause::TokenRefused, Some("invalid_scope")) => "the token endpoint refused the scope (invalid_scope); ask only for scopes the client is registered for".into(),
            (AuthCause::TokenRefused, Some("unauthorized_client")) => "the client may not use the client credentials grant (unauthorized_client); register it as a backend service".into(),
            (AuthCause::TokenRefused, Some("invalid_grant")) => "the token endpoint refused the grant (invalid_grant); check that token_url is exactly the endpoint the server names (the assertion's aud) and that this machine's clock is right".into(),
            (AuthCause::TokenRefused, Some(other)) => format!("the token endpoint refused the client ({other}); check client_id and its credential"),
            (AuthCause::TokenRefused, None) => "the token endpoint refused the client; check client_id and its credential".into(),
            (AuthCause::TokenUnreachable, reason) => format!(
                "the token endpoint did not answer{}; check token_url, and that it is reachable with the target's TLS settings",
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            (AuthCause::TokenMalformed, _) => "the token endpoint answered 2xx without a usable token; it must answer JSON with access_token, token_type \"bearer\" and expires_in".into(),
        }
    }
}

enum Proof {
    /// `Authorization: Basic` on the token request.
    Secret(HeaderValue),
    /// A signed assertion in the form.
    Jwt(Box<Signer>),
}

struct Token {
    header: HeaderValue,
    refresh_at: Instant,
    expires_at: Option<Instant>,
}

impl Token {
    fn usable(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    failed: Option<(Instant, Failure)>,
}

/// Access tokens for one client at one token endpoint.
pub struct TokenSource {
    client: reqwest::Client,
    token_url: String,
    client_id: String,
    scope: Option<String>,
    proof: Proof,
    /// Held while fetching: one fetch at a time, others wait for it.
    state: tokio::sync::Mutex<State>,
    fetches: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
}

impl TokenSource {
    /// A source for `spec`: the key or secret read now (errors name the
    /// file or variable), no request yet.
    pub fn new(
        spec: &OAuth2Spec,
        tls: Option<&medtwin_tls::ClientTls>,
        timeout: Duration,
    ) -> anyhow::Result<TokenSource> {
        let proof = match &spec.credential {
            Credential::ClientSecret(source) => {
                let secret = source.read()?;
                // RFC 6749 §2.3.1: each form-urlencoded, then basic.
                let pair = format!(
                    "{}:{}",
                    form_component(&spec.client_id),
                    form_component(&secret)
                );
                Proof::Secret(sensitive(
                    &format!("Basic {}", super::jwt::base64(pair.as_bytes())),
                    "the client secret",
                )?)
            }
            Credential::PrivateKey { path, key_id, alg } => {
                Proof::Jwt(Box::new(Signer::from_pem_file(path, *alg, key_id)?))
            }
        };
        let tls = if crate::scenario::interop::uses_tls(&spec.token_url) {
            tls
        } else {
            None
        };
        let client = crate::transport::http::client(timeout, 2, tls)
            .map_err(|e| anyhow::anyhow!("cannot build the token endpoint's HTTP client: {e}"))?;
        Ok(TokenSource {
            client,
            token_url: spec.token_url.clone(),
            client_id: spec.client_id.clone(),
            scope: spec.scope.clone(),
            proof,
            state: tokio::sync::Mutex::new(State::default()),
            fetches: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// `oauth2-client-secret` or `oauth2-private-key-jwt`.
    pub fn mechanism(&self) -> &'static str {
        match self.proof {
            Proof::Secret(_) => "oauth2-client-secret",
            Proof::Jwt(_) => "oauth2-private-key-jwt",
        }
    }

    /// `Bearer <access token>`: the cached one while fresh, else a new one
    /// (one fetch at a time; the others wait and take its result). When a
    /// refresh fails, a token not yet expired is still used.
    pub async fn header(&self) -> Result<HeaderValue, Failure> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(t) = &state.token
            && now < t.refresh_at
        {
            return Ok(t.header.clone());
        }
        if let Some((at, failure)) = &state.failed
            && now < *at + FAILURE_HOLD
        {
            return match &state.token {
                Some(t) if t.usable(now) => Ok(t.header.clone()),
                _ => Err(failure.clone()),
            };
        }
        match self.fetch().await {
            Ok(token) => {
                if self.fetches.fetch_add(1, Ordering::Relaxed) > 0 {
                    self.refreshes.fetch_add(1, Ordering::Relaxed);
                }
                let header = token.header.clone();
                state.token = Some(token);
                state.failed = None;
                Ok(header)
            }
            Err(failure) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                state.failed = Some((Instant::now(), failure.clone()));
                match &state.token {
                    Some(t) if t.usable(Instant::now()) => Ok(t.header.clone()),
                    _ => Err(failure),
                }
            }
        }
    }

    /// The target answered 401 to `used`: the token is dropped (unless a
    /// newer one replaced it meanwhile).
    pub async fn rejected(&self, used: Option<&HeaderValue>) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().await;
        if state.token.as_ref().map(|t| &t.header) == used {
            state.token = None;
            state.failed = None;
        }
    }

    /// The report's counters.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BTreeMap::from([
            ("auth_token_fetches".to_owned(), get(&self.fetches)),
            ("auth_token_refreshes".to_owned(), get(&self.refreshes)),
            ("auth_token_failures".to_owned(), get(&self.failures)),
            ("auth_retries_after_401".to_owned(), get(&self.retries)),
        ])
    }

    fn failure(&self, cause: AuthCause, detail: String) -> Failure {
        Failure::new(
            Cause::Auth(cause),
            format!("token endpoint {}: {detail}", self.token_url),
        )
    }

    /// One token request (RFC 6749 §4.4.2) and its answer (§5.1, §5.2).
    async fn fetch(&self) -> Result<Token, Failure> {
        let started = Instant::now();
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let assertion;
        let mut request = self
            .client
            .post(&self.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        match &self.proof {
            Proof::Secret(basic) => request = request.header(AUTHORIZATION, basic.clone()),
            Proof::Jwt(signer) => {
                assertion = signer
                    .assertion(&self.client_id, &self.token_url)
                    .map_err(|e| {
                        self.failure(AuthCause::TokenRefused, format!("cannot sign: {e}"))
                    })?;
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", &assertion));
            }
        }
        let response = request.body(form_encode(&form)).send().await.map_err(|e| {
            let f = crate::transport::http::failure_of(&e);
            self.failure(AuthCause::TokenUnreachable, f.detail)
                .with_reason(f.cause.name())
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            let f = crate::transport::http::failure_of(&e);
            self.failure(
                AuthCause::TokenUnreachable,
                format!("{status} with a body that could not be read: {}", f.detail),
            )
        })?;
        let head = String::from_utf8_lossy(&body[..body.len().min(DETAIL_BYTES)]).into_owned();
        if status.is_server_error() {
            return Err(self
                .failure(AuthCause::TokenUnreachable, format!("{status}: {head}"))
                .with_reason(format!("http_{}", status.as_u16())));
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Error {
                error: String,
                error_description: Option<String>,
            }
            let (reason, detail) = match serde_json::from_slice::<Error>(&body) {
                Ok(e) => (
                    e.error.clone(),
                    format!(
                        "{status}: {}{}",
                        e.error,
                        e.error_description
                            .map(|d| format!(
                                ": {}",
                                d.chars().take(DETAIL_BYTES).collect::<String>()
                            ))
                            .unwrap_or_default()
                    ),
                ),
                Err(_) => (
                    format!("http_{}", status.as_u16()),
                    format!("{status}: {head}"),
                ),
            };
            return Err(self
                .failure(AuthCause::TokenRefused, detail)
                .with_reason(reason));
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            token_type: Option<String>,
            expires_in: Option<serde_json::Value>,
        }
        let malformed =
            |why: &str| self.failure(AuthCause::TokenMalformed, format!("{status}: {why}"));
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| malformed(&format!("not a token response ({e})")))?;
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(malformed(&format!(
                "token_type \"{kind}\" (only bearer tokens are supported)"
            )));
        }
        if answer.access_token.is_empty() {
            return Err(malformed("an empty access_token"));
        }
        let lifetime = match &answer.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.parse::<f64>().ok(),
            Some(_) => return Err(malformed("expires_in is not a number")),
        }
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)));
        let header = sensitive(
            &format!("Bearer {}", answer.access_token),
            "the access token",
        )
        .map_err(|_| malformed("the access_token has characters an HTTP header cannot carry"))?;
        Ok(match lifetime {
            Some(life) => {
                let lead = MAX_REFRESH_LEAD.min(life / 5);
                Token {
                    header,
                    refresh_at: started + life - lead,
                    expires_at: Some(started + life),
                }
            }
            // No lifetime given: used until the target refuses it.
            None => Token {
                header,
                refresh_at: started + Duration::from_secs(365 * 24 * 3600),
                expires_at: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_have_names_and_hints() {
        for c in AuthCause::ALL {
            assert_eq!(AuthCause::from_name(c.name()), Some(c));
            assert!(!c.hint(None).is_empty());
        }
        assert!(
            AuthCause::TokenRefused
                .hint(Some("invalid_client"))
                .contains("public key")
        );
    }
}
