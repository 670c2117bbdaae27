//! The client side: whom a carrier trusts and which certificate it shows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use crate::cause::HandshakeTimedOut;
use crate::pem::{fingerprint, load_certs, load_key, normalise_fingerprint};
use crate::{TlsError, provider};

/// What a client trusts and presents. All paths are PEM files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// Trust only the CAs in this bundle instead of the system's roots (as
    /// `curl --cacert` does).
    pub ca_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint
    /// (a self-signed listener's, as it printed it), whoever signed it.
    pub pin_sha256: Option<String>,
    /// The client certificate (chain) presented to every server...
    pub client_cert: Option<PathBuf>,
    /// ...and its private key.
    pub client_key: Option<PathBuf>,
    /// A directory of per-device (or per-gateway) identities:
    /// `<name>.crt` and `<name>.key` for each; used where a carrier opens a
    /// connection per device or gateway.
    pub identities: Option<PathBuf>,
    /// Accept any server certificate. Only on an explicit opt-in, and the
    /// caller must say so loudly (the run's report records it).
    pub insecure_skip_verify: bool,
    /// The name to check the server's certificate against (and send as SNI)
    /// instead of the URL's host.
    pub server_name: Option<String>,
}

impl ClientOptions {
    /// Whether any option is set (a run without them uses system roots and
    /// no client certificate).
    pub fn is_default(&self) -> bool {
        *self == ClientOptions::default()
    }

    /// The mechanism, in a word, for reports: `system-roots`, `ca-bundle`,
    /// `pinned`, or `insecure`, with `+client-cert` or `+device-certs`.
    pub fn describe(&self) -> String {
        let trust = if self.insecure_skip_verify {
            "insecure-skip-verify"
        } else if self.pin_sha256.is_some() {
            "pinned"
        } else if self.ca_cert.is_some() {
            "ca-bundle"
        } else {
            "system-roots"
        };
        let identity = if self.identities.is_some() {
            "+device-certs"
        } else if self.client_cert.is_some() {
            "+client-cert"
        } else {
            ""
        };
        format!("{trust}{identity}")
    }
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Reads a chain and key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        Ok(Identity {
            chain: load_certs(cert)?,
            key: load_key(key)?,
        })
    }

    /// Parses a chain and key from PEM text.
    pub fn from_pem(cert: &str, key: &str) -> Result<Identity, TlsError> {
        use rustls::pki_types::pem::PemObject as _;
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: "(certificate text)".into(),
                detail: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::Pem {
            path: "(key text)".into(),
            detail: e.to_string(),
        })?;
        Ok(Identity { chain, key })
    }

    /// The leaf certificate's SHA-256 fingerprint.
    pub fn fingerprint(&self) -> String {
        self.chain.first().map(fingerprint).unwrap_or_default()
    }

    pub(crate) fn parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

/// Per-device identities from a directory, read on first use.
#[derive(Debug)]
pub struct Identities {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<ClientConfig>>>,
}

impl Identities {
    /// The files for `name`: `<dir>/<name>.crt` and `<dir>/<name>.key`.
    pub fn files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        )
    }
}

/// A client's TLS, resolved: the verifier, and the identities it can show.
#[derive(Debug)]
pub struct ClientTls {
    options: ClientOptions,
    verifier: Arc<dyn ServerCertVerifier>,
    shared: Arc<ClientConfig>,
    identities: Option<Identities>,
}

impl ClientTls {
    /// Reads the CA bundle, the client certificate and checks the
    /// identities directory exists; every file error names the file.
    pub fn new(options: &ClientOptions) -> Result<ClientTls, TlsError> {
        let verifier: Arc<dyn ServerCertVerifier> = if options.insecure_skip_verify {
            Arc::new(AnyCertificate)
        } else if let Some(pin) = &options.pin_sha256 {
            let pin = normalise_fingerprint(pin);
            if pin.len() != 64 {
                return Err(TlsError::Options(format!(
                    "the pinned fingerprint must be a SHA-256 (64 hex digits, colons allowed); got {} digits",
                    pin.len()
                )));
            }
            Arc::new(Pinned { pin })
        } else {
            let mut roots = RootCertStore::empty();
            if let Some(bundle) = &options.ca_cert {
                for cert in load_certs(bundle)? {
                    roots.add(cert).map_err(|source| TlsError::Rustls {
                        context: format!(
                            "{} holds a certificate that is not a usable CA",
                            bundle.display()
                        ),
                        source,
                    })?;
                }
            } else {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(TlsError::Options(
                        "no system CA certificates were found (install Debian's ca-certificates, or pass a CA bundle with --ca-cert)".into(),
                    ));
                }
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| {
                    TlsError::Options(format!("cannot build the certificate verifier: {e}"))
                })?
        };
        let verifier = match &options.server_name {
            Some(name) if !options.insecure_skip_verify => {
                let name = ServerName::try_from(name.clone()).map_err(|e| {
                    TlsError::Options(format!("server_name {name:?} is not a valid TLS name: {e}"))
                })?;
                Arc::new(NameOverride {
                    inner: verifier,
                    name,
                }) as Arc<dyn ServerCertVerifier>
            }
            _ => verifier,
        };
        let default_identity = match (&options.client_cert, &options.client_key) {
            (Some(cert), Some(key)) => Some(Identity::load(cert, key)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsError::Options(
                    "a client certificate needs its key too (client_key / --client-key)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(TlsError::Options(
                    "a client key needs its certificate too (client_cert / --client-cert)".into(),
                ));
            }
        };
        let identities = match &options.identities {
            Some(dir) if !dir.is_dir() => {
                return Err(TlsError::Options(format!(
                    "the identities directory {} does not exist (it should hold <device>.crt and <device>.key per device)",
                    dir.display()
                )));
            }
            Some(dir) => Some(Identities {
                dir: dir.clone(),
                loaded: Mutex::new(HashMap::new()),
            }),
            None => None,
        };
        let shared = Arc::new(build(&verifier, default_identity.as_ref())?);
        Ok(ClientTls {
            options: options.clone(),
            verifier,
            shared,
            identities,
        })
    }

    /// The options this was built from.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The configuration shared by every connection that shows the
    /// target-wide identity (or none). One configuration means one session
    /// cache: reconnections resume their sessions.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.shared)
    }

    /// A fresh copy of the shared configuration (for libraries that take
    /// one by value, such as reqwest).
    pub fn config_owned(&self) -> ClientConfig {
        (*self.shared).clone()
    }

    /// The configuration for a connection on behalf of `name` (a device or
    /// gateway): its own certificate from the identities directory when
    /// there is one, else the shared configuration.
    pub fn config_for(&self, name: &str) -> Result<Arc<ClientConfig>, TlsError> {
        let Some(identities) = &self.identities else {
            return Ok(self.config());
        };
        let mut loaded = identities.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = loaded.get(name) {
            return Ok(Arc::clone(config));
        }
        let (cert, key) = Identities::files(&identities.dir, name);
        if !cert.exists() {
            return Err(TlsError::Options(format!(
                "no certificate for {name} in {} (expected {} and {})",
                identities.dir.display(),
                cert.display(),
                key.display()
            )));
        }
        let identity = Identity::load(&cert, &key)?;
        let config = Arc::new(build(&self.verifier, Some(&identity))?);
        loaded.insert(name.to_string(), Arc::clone(&config));
        Ok(config)
    }

    /// The server name to send (SNI) for `host`; the certificate is
    /// checked against [`ClientOptions::server_name`] when it is set.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_string())
            .map_err(|e| TlsError::Options(format!("{name:?} is not a valid TLS server name: {e}")))
    }
}

fn build(
    verifier: &Arc<dyn ServerCertVerifier>,
    identity: Option<&Identity>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            context: "TLS versions".into(),
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(verifier));
    match identity {
        Some(identity) => {
            let (chain, key) = identity.parts();
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::Rustls {
                    context: "the client certificate and key do not go together".into(),
                    source,
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Opens TLS over `stream` (a connected socket) within `timeout`. A
/// handshake that takes longer fails with an error [`crate::classify`]
/// names `tls_handshake_timeout`.
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    stream: S,
    timeout: Duration,
) -> std::io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(server_name, stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            HandshakeTimedOut(timeout),
        )),
    }
}

fn schemes() -> Vec<SignatureScheme> {
    provider()
        .signature_verification_algorithms
        .supported_schemes()
}

fn tls12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

fn tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

/// Trusts one certificate, by its fingerprint: the handshake's signatures
/// are still checked, so the server must hold that certificate's key.
#[derive(Debug)]
struct Pinned {
    pin: String,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if normalise_fingerprint(&fingerprint(end_entity)) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}

/// Accepts any certificate (the explicit, reported opt-in).
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}

/// Checks the server's certificate against a configured name instead of
/// the one connected to (a target reached by address whose certificate
/// names its service).
#[derive(Debug)]
struct NameOverride {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
