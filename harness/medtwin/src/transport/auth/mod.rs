//! How medtwin authenticates to the target (`[target.auth]`,
//! docs/security-auth.md): a bearer token, HTTP basic (RFC 7617), or an
//! OAuth2 access token from a token endpoint by the client credentials
//! grant (RFC 6749 §4.4) with a client secret or a signed JWT assertion
//! (RFC 7523; SMART Backend Services).
//!
//! An [`Auth`] is built once per run and shared by the HTTP and FHIR
//! carriers and the FHIR intake: each request asks it for the
//! `Authorization` value ([`Auth::header`]). OAuth2 tokens are cached and
//! fetched again before they expire, one fetch at a time (the lanes wait on
//! it); a 401 from the target drops the token and the request is sent once
//! more with a fresh one ([`Auth::send`]).
//!
//! Secrets come from environment variables or files ([`SecretSource`]);
//! no `Debug` here shows one, and no error message quotes one.

pub mod jwt;
pub mod oauth2;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;

pub use crate::scenario::auth::{Alg, AuthSpec, Credential, OAuth2Spec, SecretSource};
use crate::transport::Failure;

/// The target's authentication, shared by everything that talks to it.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth(Option<Arc<Kind>>);

enum Kind {
    /// A header that never changes (bearer, basic), and what MQTT sends.
    Static {
        header: HeaderValue,
        mechanism: &'static str,
        username: Option<String>,
        password: String,
    },
    /// Tokens from a token endpoint.
    OAuth2(Box<oauth2::TokenSource>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({} <redacted>)", self.mechanism())
    }
}

fn sensitive(text: &str, what: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| anyhow::anyhow!("{what} has characters an HTTP header cannot carry"))?;
    value.set_sensitive(true);
    Ok(value)
}

impl Auth {
    /// No authentication.
    pub fn none() -> Auth {
        Auth(None)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> anyhow::Result<Auth> {
        Ok(Auth(Some(Arc::new(Kind::Static {
            header: sensitive(&format!("Bearer {token}"), "the bearer token")?,
            mechanism: "bearer",
            username: None,
            password: token.to_owned(),
        }))))
    }

    /// `Authorization: Basic ...` (RFC 7617: `user:password`, UTF-8,
    /// base64).
    pub fn basic(username: &str, password: &str) -> anyhow::Result<Auth> {
        if username.contains(':') {
            anyhow::bail!("a basic-auth user name cannot contain ':' (RFC 7617 §2)");
        }
        let credentials = jwt::base64(format!("{username}:{password}").as_bytes());
        Ok(Auth(Some(Arc::new(Kind::Static {
            header: sensitive(&format!("Basic {credentials}"), "the password")?,
            mechanism: "basic",
            username: Some(username.to_owned()),
            password: password.to_owned(),
        }))))
    }

    /// The authentication `spec` asks for: secrets read now (an error
    /// names the variable or file), the token endpoint reached over `tls`
    /// with `timeout`, lazily.
    pub fn from_spec(
        spec: &AuthSpec,
        tls: Option<&medtwin_tls::ClientTls>,
        timeout: Duration,
    ) -> anyhow::Result<Auth> {
        match spec {
            AuthSpec::None => Ok(Auth::none()),
            AuthSpec::Bearer(source) => Auth::bearer(&source.read()?),
            AuthSpec::Basic { username, password } => Auth::basic(username, &password.read()?),
            AuthSpec::OAuth2(o) => Ok(Auth(Some(Arc::new(Kind::OAuth2(Box::new(
                oauth2::TokenSource::new(o, tls, timeout)?,
            )))))),
        }
    }

    /// The mechanism's name in reports (see [`AuthSpec::mechanism`]).
    pub fn mechanism(&self) -> &'static str {
        match self.0.as_deref() {
            None => "none",
            Some(Kind::Static { mechanism, .. }) => mechanism,
            Some(Kind::OAuth2(t)) => t.mechanism(),
        }
    }

    /// Whether there is anything to send.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The `Authorization` value for the next request (`None`: send none);
    /// an OAuth2 token is fetched first if there is none fresh enough.
    pub async fn header(&self) -> Result<Option<HeaderValue>, Failure> {
        match self.0.as_deref() {
            None => Ok(None),
            Some(Kind::Static { header, .. }) => Ok(Some(header.clone())),
            Some(Kind::OAuth2(t)) => t.header().await.map(Some),
        }
    }

    /// The target answered 401 to a request sent with `used`: whether a
    /// new attempt may help (an OAuth2 token, dropped so the next
    /// [`Auth::header`] fetches another).
    pub async fn rejected(&self, used: Option<&HeaderValue>) -> bool {
        match self.0.as_deref() {
            Some(Kind::OAuth2(t)) => {
                t.rejected(used).await;
                true
            }
            _ => false,
        }
    }

    /// Sends `request` with the `Authorization` value; on a 401 that a
    /// fresh token may cure, sends it once more with a new one. The outer
    /// error is the authentication's own failure (the token endpoint's),
    /// the inner result the target's answer.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, Failure> {
        let with = |request: reqwest::RequestBuilder, header: &Option<HeaderValue>| match header {
            Some(h) => request.header(reqwest::header::AUTHORIZATION, h.clone()),
            None => request,
        };
        // Bodies here are bytes, which clone; a stream would not be retried.
        let again = request.try_clone();
        let header = self.header().await?;
        let answer = with(request, &header).send().await;
        if let Ok(response) = &answer
            && response.status() == reqwest::StatusCode::UNAUTHORIZED
            && let Some(again) = again
            && self.rejected(header.as_ref()).await
        {
            let header = self.header().await?;
            return Ok(with(again, &header).send().await);
        }
        Ok(answer)
    }

    /// The user name and password an MQTT CONNECT carries: a bearer token
    /// as the password (no user name), basic's pair.
    pub fn mqtt_login(&self) -> Option<(Option<String>, String)> {
        match self.0.as_deref() {
            Some(Kind::Static {
                username, password, ..
            }) => Some((username.clone(), password.clone())),
            _ => None,
        }
    }

    /// Counters for the report (OAuth2: `auth_token_fetches`,
    /// `auth_token_refreshes`, `auth_token_failures`,
    /// `auth_retries_after_401`).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        match self.0.as_deref() {
            Some(Kind::OAuth2(t)) => t.counters(),
            _ => BTreeMap::new(),
        }
    }
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2): unreserved bytes
/// as they are, space as `+`, the rest `%XX`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&form_component(k));
        out.push('=');
        out.push_str(&form_component(v));
    }
    out
}

/// One form-urlencoded component.
pub fn form_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_rfc_7617_and_nothing_shows_a_secret() {
        // RFC 7617 §2's example.
        let auth = Auth::basic("Aladdin", "open sesame").unwrap();
        let header = futures_header(&auth);
        assert_eq!(header, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(!format!("{auth:?}").contains("sesame"));
        assert!(Auth::basic("a:b", "p").is_err());
        let bearer = Auth::bearer("s3cr3t-value").unwrap();
        assert_eq!(futures_header(&bearer), "Bearer s3cr3t-value");
        assert!(!format!("{bearer:?}").contains("s3cr3t"));
        assert_eq!(bearer.mechanism(), "bearer");
    }

    fn futures_header(auth: &Auth) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let h = rt.block_on(auth.header()).unwrap().unwrap();
        assert!(h.is_sensitive());
        h.to_str().unwrap().to_owned()
    }

    #[test]
    fn forms_are_urlencoded() {
        assert_eq!(
            form_encode(&[
                ("grant_type", "client_credentials"),
                ("scope", "system/Observation.c x&y=z")
            ]),
            "grant_type=client_credentials&scope=system%2FObservation.c+x%26y%3Dz"
        );
    }
}
