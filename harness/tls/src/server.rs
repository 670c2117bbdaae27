//! The server side: a listener's certificate (from files, or generated
//! self-signed) and, optionally, the CA whose client certificates it
//! requires.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::cause::HandshakeTimedOut;
use crate::pem::{fingerprint, load_certs};
use crate::{Identity, TestCa, TlsError, provider};

/// A listener's TLS options. Paths are PEM files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// The certificate chain to present...
    pub cert: Option<PathBuf>,
    /// ...and its key. Without both, a self-signed certificate is
    /// generated for [`ServerOptions::names`].
    pub key: Option<PathBuf>,
    /// Names for a generated certificate (default: `localhost`,
    /// `127.0.0.1`, `::1`).
    pub names: Vec<String>,
    /// Require a client certificate signed by a CA in this bundle.
    pub client_ca: Option<PathBuf>,
    /// Refuse client certificates on this CRL (PEM), with `client_ca`.
    pub client_crl: Option<PathBuf>,
}

/// A listener's TLS, ready: its configuration and its certificate's
/// fingerprint (printed, so clients can pin it).
#[derive(Clone, Debug)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    fingerprint: String,
    cert_pem: Option<String>,
    requires_client_cert: bool,
}

impl ServerTls {
    /// Builds the listener's TLS from its options.
    pub fn new(options: &ServerOptions) -> Result<ServerTls, TlsError> {
        let (identity, cert_pem) = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => (Identity::load(cert, key)?, None),
            (None, None) => {
                let names = if options.names.is_empty() {
                    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
                } else {
                    options.names.clone()
                };
                let issued = TestCa::self_signed(&names)?;
                (
                    Identity::from_pem(&issued.cert_pem, &issued.key_pem)?,
                    Some(issued.cert_pem),
                )
            }
            _ => {
                return Err(TlsError::Options(
                    "a listener's certificate needs its key, and the key its certificate (--tls-cert with --tls-key)".into(),
                ));
            }
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                context: "TLS versions".into(),
                source,
            })?;
        let builder = match &options.client_ca {
            Some(bundle) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in load_certs(bundle)? {
                    roots.add(cert).map_err(|source| TlsError::Rustls {
                        context: format!(
                            "{} holds a certificate that is not a usable CA",
                            bundle.display()
                        ),
                        source,
                    })?;
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                if let Some(crl) = &options.client_crl {
                    use rustls::pki_types::CertificateRevocationListDer;
                    use rustls::pki_types::pem::PemObject as _;
                    let bytes = std::fs::read(crl).map_err(|source| TlsError::Read {
                        path: crl.display().to_string(),
                        source,
                    })?;
                    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| TlsError::Pem {
                            path: crl.display().to_string(),
                            detail: e.to_string(),
                        })?;
                    verifier = verifier.with_crls(crls);
                }
                let verifier = verifier.build().map_err(|e| {
                    TlsError::Options(format!("cannot build the client verifier: {e}"))
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let (chain, key) = identity.parts();
        let leaf: CertificateDer<'static> = chain
            .first()
            .cloned()
            .ok_or_else(|| TlsError::Options("the listener's certificate chain is empty".into()))?;
        let mut config =
            builder
                .with_single_cert(chain, key)
                .map_err(|source| TlsError::Rustls {
                    context: "the listener's certificate and key do not go together".into(),
                    source,
                })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            fingerprint: fingerprint(&leaf),
            cert_pem,
            requires_client_cert: options.client_ca.is_some(),
        })
    }

    /// The configuration (for a `TlsAcceptor`).
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The certificate's SHA-256 fingerprint (`AB:CD:...`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The generated certificate's PEM, when it was generated (so a client
    /// in the same process can trust it).
    pub fn generated_cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.requires_client_cert
    }

    /// What a listener prints when it starts: `TLS, self-signed
    /// certificate sha256 AB:CD:...` (and whether client certificates are
    /// required), so a client can pin or check it.
    pub fn describe(&self) -> String {
        let source = if self.cert_pem.is_some() {
            "self-signed"
        } else {
            "from file"
        };
        let mtls = if self.requires_client_cert {
            ", client certificates required"
        } else {
            ""
        };
        format!(
            "TLS, {source} certificate sha256 {}{mtls}",
            self.fingerprint
        )
    }
}

/// Accepts TLS over `stream` within `timeout`; a slower handshake fails
/// with an error [`crate::classify`] names `tls_handshake_timeout`.
pub async fn accept<S>(
    config: Arc<ServerConfig>,
    stream: S,
    timeout: Duration,
) -> std::io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            HandshakeTimedOut(timeout),
        )),
    }
}
