//! `[target.auth]`: how medtwin authenticates to the target
//! (docs/scenario-format.md, docs/security-auth.md), read and checked with
//! positions; secrets stay where they live (an environment variable or a
//! file) until the run reads them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::diag::Reporter;
use super::interop::Protocol;

/// The signing algorithm of a client assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-384, an RSA key (at least 2048 bits).
    Rs384,
    /// ECDSA on P-384 with SHA-384.
    Es384,
}

impl Alg {
    /// The name in a JWT header and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs384 => "RS384",
            Alg::Es384 => "ES384",
        }
    }

    /// From its name (`RS384`, `ES384`).
    pub fn parse(text: &str) -> Option<Alg> {
        match text {
            "RS384" => Some(Alg::Rs384),
            "ES384" => Some(Alg::Es384),
            _ => None,
        }
    }
}

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the scenario (`[target] token`) or given by the embedded
    /// backend.
    Literal(String),
    /// An environment variable, by name.
    Env(String),
    /// A file (the whole file, one trailing newline dropped).
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal(<redacted>)"),
            SecretSource::Env(name) => write!(f, "Env({name:?})"),
            SecretSource::File(path) => write!(f, "File({path:?})"),
        }
    }
}

impl SecretSource {
    /// The secret; an error names the variable or file (never a value).
    pub fn read(&self) -> anyhow::Result<String> {
        let value = match self {
            SecretSource::Literal(v) => v.clone(),
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    anyhow::bail!("the environment variable {name} is not set")
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    anyhow::bail!("the environment variable {name} is not valid UTF-8")
                }
            },
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                text.strip_suffix('\r').unwrap_or(text).to_owned()
            }
        };
        if value.is_empty() {
            anyhow::bail!("{} is empty", self.describe());
        }
        Ok(value)
    }

    /// Where it comes from, in words (never the value).
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Literal(_) => "the scenario's value".to_owned(),
            SecretSource::Env(name) => format!("the environment variable {name}"),
            SecretSource::File(path) => format!("the file {}", path.display()),
        }
    }
}

/// How the client proves itself to an OAuth2 token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    ClientSecret(SecretSource),
    /// `private_key_jwt` (RFC 7523; SMART Backend Services).
    PrivateKey {
        /// The PKCS#8 PEM key.
        path: PathBuf,
        /// The key's id (`kid`), as registered with the server.
        key_id: String,
        /// The signing algorithm.
        alg: Alg,
    },
}

/// `[target.auth]`, resolved (paths from the scenario's folder; secrets
/// still where they live).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthSpec {
    /// Nothing.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretSource),
    /// `Authorization: Basic base64(user:password)` (RFC 7617).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretSource,
    },
    /// An access token by the client credentials grant.
    OAuth2(OAuth2Spec),
}

/// `[target.auth] kind = "oauth2"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2Spec {
    /// The token endpoint.
    pub token_url: String,
    /// The client's id.
    pub client_id: String,
    /// The scopes asked for (space-separated), if any.
    pub scope: Option<String>,
    /// How the client authenticates.
    pub credential: Credential,
}

impl AuthSpec {
    /// The mechanism's name in reports: `none`, `bearer`, `basic`,
    /// `oauth2-client-secret` or `oauth2-private-key-jwt`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            AuthSpec::None => "none",
            AuthSpec::Bearer(_) => "bearer",
            AuthSpec::Basic { .. } => "basic",
            AuthSpec::OAuth2(o) => match o.credential {
                Credential::ClientSecret(_) => "oauth2-client-secret",
                Credential::PrivateKey { .. } => "oauth2-private-key-jwt",
            },
        }
    }
}

/// `[target.auth]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    kind: Spanned<String>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
    client_secret_env: Option<Spanned<String>>,
    client_secret_file: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    key_id: Option<Spanned<String>>,
    alg: Option<Spanned<String>>,
}

/// The kinds of `[target.auth]`.
const KINDS: [&str; 3] = ["bearer", "basic", "oauth2"];

impl AuthFile {
    /// Every field given, by name, with its span.
    fn given(&self) -> Vec<(&'static str, &Spanned<String>)> {
        [
            ("token_env", &self.token_env),
            ("token_file", &self.token_file),
            ("username", &self.username),
            ("password_env", &self.password_env),
            ("password_file", &self.password_file),
            ("token_url", &self.token_url),
            ("client_id", &self.client_id),
            ("scope", &self.scope),
            ("client_secret_env", &self.client_secret_env),
            ("client_secret_file", &self.client_secret_file),
            ("private_key", &self.private_key),
            ("key_id", &self.key_id),
            ("alg", &self.alg),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v)))
        .collect()
    }
}

/// The fields each kind takes.
fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "bearer" => &["token_env", "token_file"],
        "basic" => &["username", "password_env", "password_file"],
        _ => &[
            "token_url",
            "client_id",
            "scope",
            "client_secret_env",
            "client_secret_file",
            "private_key",
            "key_id",
            "alg",
        ],
    }
}

/// `[target.auth]` checked and resolved: paths from the scenario file's
/// folder, named environment variables checked to be set (their values are
/// read when the run starts). `table` is the table's span; `literal` is
/// `[target] token`, which cannot be given as well.
pub fn resolve(
    spec: &Spanned<AuthFile>,
    literal_token: bool,
    protocol: Protocol,
    r: &mut Reporter<'_>,
) -> AuthSpec {
    let table = spec.span();
    let spec = spec.get_ref();
    let kind = spec.kind.get_ref().as_str();
    if !KINDS.contains(&kind) {
        r.error(
            spec.kind.span(),
            Some("target.auth.kind".into()),
            format!("unknown auth kind \"{kind}\""),
            Some(format!("one of: {}", super::diag::quoted_list(&KINDS))),
        );
        return AuthSpec::None;
    }
    if literal_token {
        r.error(
            table.clone(),
            Some("target.token".into()),
            "[target] token and [target.auth] are both set",
            Some("keep one: [target.auth] with token_env or token_file keeps the secret out of the scenario".into()),
        );
    }
    let allowed = fields_of(kind);
    let mut ok = true;
    for (name, value) in spec.given() {
        if !allowed.contains(&name) {
            r.error(
                value.span(),
                Some(format!("target.auth.{name}")),
                format!("{name} does not apply to kind = \"{kind}\""),
                Some(format!(
                    "kind = \"{kind}\" takes {}",
                    super::diag::quoted_list(allowed)
                )),
            );
            ok = false;
        }
    }
    let applies = match kind {
        "oauth2" => matches!(protocol, Protocol::HttpJson | Protocol::Fhir),
        _ => matches!(
            protocol,
            Protocol::HttpJson | Protocol::Fhir | Protocol::Mqtt
        ),
    };
    if !applies {
        r.error(
            spec.kind.span(),
            Some("target.auth.kind".into()),
            format!(
                "kind = \"{kind}\" does not apply to the {} transport",
                protocol.name()
            ),
            Some(match protocol {
                Protocol::Mqtt => "MQTT takes a user name and password: use kind = \"basic\" (or \"bearer\", sent as the password)".into(),
                _ => "authenticate with mutual TLS ([target.tls] client_cert, client_key) instead".into(),
            }),
        );
        ok = false;
    }
    let base = r.path().parent().unwrap_or(Path::new(".")).to_owned();
    let mut secret = |env: &Option<Spanned<String>>,
                      file: &Option<Spanned<String>>,
                      stem: &str,
                      r: &mut Reporter<'_>|
     -> Option<SecretSource> {
        match (env, file) {
            (Some(_), Some(f)) => {
                r.error(
                    f.span(),
                    Some(format!("target.auth.{stem}_file")),
                    format!("{stem}_env and {stem}_file are both set"),
                    Some("keep one".into()),
                );
                None
            }
            (Some(env), None) => {
                let name = env.get_ref();
                let set = std::env::var_os(name).is_some_and(|v| !v.is_empty());
                if !set {
                    r.error(
                        env.span(),
                        Some(format!("target.auth.{stem}_env")),
                        format!("the environment variable {name} is not set (or is empty)"),
                        Some(format!(
                            "export {name} before the run, or name a file with {stem}_file"
                        )),
                    );
                    return None;
                }
                Some(SecretSource::Env(name.clone()))
            }
            (None, Some(file)) => Some(SecretSource::File(base.join(file.get_ref()))),
            (None, None) => None,
        }
    };
    let missing = |r: &mut Reporter<'_>, what: &str, help: &str| {
        r.error(
            table.clone(),
            Some("target.auth".into()),
            format!("kind = \"{kind}\" needs {what}"),
            Some(help.to_owned()),
        );
    };
    let resolved = match kind {
        "bearer" => {
            let source = secret(&spec.token_env, &spec.token_file, "token", r);
            if spec.token_env.is_none() && spec.token_file.is_none() {
                missing(
                    r,
                    "token_env or token_file",
                    "e.g. token_env = \"MEDTWIN_TARGET_TOKEN\"",
                );
            }
            source.map(AuthSpec::Bearer)
        }
        "basic" => {
            let password = secret(&spec.password_env, &spec.password_file, "password", r);
            if spec.password_env.is_none() && spec.password_file.is_none() {
                missing(
                    r,
                    "password_env or password_file",
                    "e.g. password_env = \"TARGET_PASSWORD\"",
                );
            }
            let username = match &spec.username {
                Some(u) if u.get_ref().contains(':') => {
                    r.error(
                        u.span(),
                        Some("target.auth.username".into()),
                        "a basic-auth user name cannot contain ':' (RFC 7617 §2)",
                        None,
                    );
                    None
                }
                Some(u) => Some(u.get_ref().clone()),
                None => {
                    missing(r, "username", "e.g. username = \"medtwin\"");
                    None
                }
            };
            match (username, password) {
                (Some(username), Some(password)) => Some(AuthSpec::Basic { username, password }),
                _ => None,
            }
        }
        _ => resolve_oauth2(spec, &base, &mut secret, &missing, r),
    };
    match resolved {
        Some(auth) if ok => auth,
        _ => AuthSpec::None,
    }
}

type SecretFn<'s> = dyn FnMut(
        &Option<Spanned<String>>,
        &Option<Spanned<String>>,
        &str,
        &mut Reporter<'_>,
    ) -> Option<SecretSource>
    + 's;

fn resolve_oauth2(
    spec: &AuthFile,
    base: &Path,
    secret: &mut SecretFn<'_>,
    missing: &dyn Fn(&mut Reporter<'_>, &str, &str),
    r: &mut Reporter<'_>,
) -> Option<AuthSpec> {
    let token_url = match &spec.token_url {
        Some(url) => match super::check_http_url(url.get_ref()) {
            Ok(()) => Some(url.get_ref().clone()),
            Err(why) => {
                r.error(url.span(), Some("target.auth.token_url".into()), why, None);
                None
            }
        },
        None => {
            missing(
                r,
                "token_url",
                "the server's token endpoint, e.g. token_url = \"https://auth.example/token\" (SMART servers list it in .well-known/smart-configuration)",
            );
            None
        }
    };
    let client_id = match &spec.client_id {
        Some(id) if !id.get_ref().is_empty() => Some(id.get_ref().clone()),
        Some(id) => {
            r.error(
                id.span(),
                Some("target.auth.client_id".into()),
                "client_id is empty",
                None,
            );
            None
        }
        None => {
            missing(r, "client_id", "the id the server registered medtwin under");
            None
        }
    };
    let has_secret = spec.client_secret_env.is_some() || spec.client_secret_file.is_some();
    let credential = match (&spec.private_key, has_secret) {
        (Some(key), true) => {
            r.error(
                key.span(),
                Some("target.auth.private_key".into()),
                "private_key and a client secret are both set",
                Some("keep one: private_key (SMART Backend Services) or client_secret_env/client_secret_file".into()),
            );
            None
        }
        (None, true) => secret(
            &spec.client_secret_env,
            &spec.client_secret_file,
            "client_secret",
            r,
        )
        .map(Credential::ClientSecret),
        (Some(key), false) => {
            let alg = match &spec.alg {
                Some(a) => match Alg::parse(a.get_ref()) {
                    Some(alg) => Some(alg),
                    None => {
                        r.error(
                            a.span(),
                            Some("target.auth.alg".into()),
                            format!("unknown alg \"{}\"", a.get_ref()),
                            Some("\"RS384\" (an RSA key) or \"ES384\" (a P-384 EC key), as SMART Backend Services asks".into()),
                        );
                        None
                    }
                },
                None => {
                    missing(
                        r,
                        "alg with private_key",
                        "alg = \"RS384\" (an RSA key) or \"ES384\" (a P-384 EC key)",
                    );
                    None
                }
            };
            let key_id = match &spec.key_id {
                Some(k) => Some(k.get_ref().clone()),
                None => {
                    missing(
                        r,
                        "key_id with private_key",
                        "the kid of the key in the JWK Set the server holds, e.g. key_id = \"medtwin-2026\"",
                    );
                    None
                }
            };
            match (alg, key_id) {
                (Some(alg), Some(key_id)) => Some(Credential::PrivateKey {
                    path: base.join(key.get_ref()),
                    key_id,
                    alg,
                }),
                _ => None,
            }
        }
        (None, false) => {
            missing(
                r,
                "a credential",
                "client_secret_env or client_secret_file (a client secret), or private_key, key_id and alg (SMART Backend Services)",
            );
            None
        }
    };
    if spec.private_key.is_none() {
        for (value, name) in [(&spec.key_id, "key_id"), (&spec.alg, "alg")] {
            if let Some(v) = value {
                r.error(
                    v.span(),
                    Some(format!("target.auth.{name}")),
                    format!("{name} applies only with private_key"),
                    None,
                );
            }
        }
    }
    Some(AuthSpec::OAuth2(OAuth2Spec {
        token_url: token_url?,
        client_id: client_id?,
        scope: spec.scope.as_ref().map(|s| s.get_ref().clone()),
        credential: credential?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_errors_name_the_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "hunter2\n").unwrap();
        assert_eq!(SecretSource::File(file.clone()).read().unwrap(), "hunter2");
        std::fs::write(&file, "").unwrap();
        let err = SecretSource::File(file).read().unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = SecretSource::Env("MEDTWIN_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the environment variable MEDTWIN_TEST_SURELY_UNSET_VAR is not set"
        );
    }

    const HEAD: &str = "name = \"a\"\nduration = \"1m\"\n[[cohort]]\nname = \"bed\"\ncount = 1\n[target]\nurl = \"https://fhir.example/r4\"\ntransport = \"fhir\"\n";

    fn parse(auth: &str) -> Result<crate::scenario::Scenario, String> {
        crate::scenario::parse(
            Path::new("/s/scenario.toml"),
            &format!("{HEAD}[target.auth]\n{auth}\n"),
        )
        .map_err(|d| d.to_string())
    }

    #[test]
    fn smart_backend_services_resolves_with_the_key_beside_the_scenario() {
        let s = parse(
            "kind = \"oauth2\"\ntoken_url = \"https://auth.example/token\"\nclient_id = \"mt\"\nscope = \"system/Observation.c\"\nprivate_key = \"keys/k.pem\"\nkey_id = \"k1\"\nalg = \"ES384\"",
        )
        .unwrap();
        let auth = &s.target.unwrap().auth;
        assert_eq!(
            auth,
            &AuthSpec::OAuth2(OAuth2Spec {
                token_url: "https://auth.example/token".into(),
                client_id: "mt".into(),
                scope: Some("system/Observation.c".into()),
                credential: Credential::PrivateKey {
                    path: PathBuf::from("/s/keys/k.pem"),
                    key_id: "k1".into(),
                    alg: Alg::Es384,
                },
            })
        );
        assert_eq!(auth.mechanism(), "oauth2-private-key-jwt");
    }

    #[test]
    fn mistakes_are_named_by_line_and_field() {
        // HEAD has 8 lines; [target.auth] is line 9.
        let err = parse("kind = \"oauth2\"\ntoken_url = \"https://a/t\"\nclient_id = \"c\"\nprivate_key = \"k.pem\"\nalg = \"HS256\"").unwrap_err();
        assert!(
            err.contains("scenario.toml:14:7: error in `target.auth.alg`: unknown alg \"HS256\""),
            "{err}"
        );
        assert!(err.contains("needs key_id with private_key"), "{err}");
        let err = parse("kind = \"basic\"\nusername = \"u\"\npassword_env = \"MEDTWIN_TEST_SURELY_UNSET_PW\"\ntoken_url = \"https://a/t\"").unwrap_err();
        assert!(
            err.contains("scenario.toml:12:16: error in `target.auth.password_env`: the environment variable MEDTWIN_TEST_SURELY_UNSET_PW is not set"),
            "{err}"
        );
        assert!(
            err.contains("`target.auth.token_url`: token_url does not apply to kind = \"basic\""),
            "{err}"
        );
        let err = parse("kind = \"magic\"").unwrap_err();
        assert!(err.contains("unknown auth kind \"magic\""), "{err}");
        let err = parse("kind = \"oauth2\"\ntoken_url = \"https://a/t\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\nprivate_key = \"k.pem\"").unwrap_err();
        assert!(
            err.contains("private_key and a client secret are both set"),
            "{err}"
        );
        let err = parse("kind = \"bearer\"\ntoken_file = \"t\"\ntoken_env = \"X\"").unwrap_err();
        assert!(
            err.contains("token_env and token_file are both set"),
            "{err}"
        );
    }

    #[test]
    fn oauth2_does_not_apply_to_mqtt_and_a_literal_token_is_bearer() {
        let text = "name = \"a\"\nduration = \"1m\"\n[[cohort]]\nname = \"bed\"\ncount = 1\n[target]\nurl = \"mqtt://127.0.0.1:1883\"\ntransport = \"mqtt\"\n[target.auth]\nkind = \"oauth2\"\ntoken_url = \"https://a/t\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\n";
        let err = crate::scenario::parse(Path::new("s.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kind = \"oauth2\" does not apply to the mqtt transport"),
            "{err}"
        );
        let text = "name = \"a\"\nduration = \"1m\"\n[[cohort]]\nname = \"bed\"\ncount = 1\n[target]\nurl = \"http://h/x\"\ntoken = \"t0k\"\n";
        let s = crate::scenario::parse(Path::new("s.toml"), text).unwrap();
        let auth = s.target.unwrap().auth;
        assert_eq!(auth, AuthSpec::Bearer(SecretSource::Literal("t0k".into())));
        assert!(!format!("{auth:?}").contains("t0k"), "Debug redacts");
        let text = "name = \"a\"\nduration = \"1m\"\n[[cohort]]\nname = \"bed\"\ncount = 1\n[target]\nurl = \"http://u:pw@h/x\"\n";
        let err = crate::scenario::parse(Path::new("s.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("carries a password") && !err.contains("pw@"),
            "{err}"
        );
    }
}
