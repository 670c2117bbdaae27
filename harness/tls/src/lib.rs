//! TLS for medtwin, in one place: every carrier (HTTP, FHIR, MQTT, MLLP)
//! and every listener (webhook, ACM/MLLP intake, reference backend) builds
//! its rustls configuration here, from the same options, with the same
//! crypto provider (*ring*: no system OpenSSL, no cmake).
//!
//! - [`ClientTls`]: whom to trust (system roots, or a CA bundle, or one
//!   pinned certificate fingerprint), and which identity to present
//!   (one client certificate per target, or one per device or gateway from
//!   a directory). Skipping verification is possible only through
//!   [`ClientOptions::insecure_skip_verify`], which callers must report.
//! - [`ServerTls`]: a certificate and key from files, or a generated
//!   self-signed one whose SHA-256 fingerprint is printed; optionally a CA
//!   whose client certificates are required.
//! - [`HandshakeCause`]: why a handshake (or a connection right after it)
//!   failed, read from an error's source chain, with an actionable hint.
//! - [`TestCa`]: a throwaway certificate authority (rcgen) issuing server
//!   and client certificates, expired or wrongly named ones, and a CRL:
//!   for tests, and for `medtwin`'s per-device test identities.

mod cause;
mod client;
mod pem;
mod server;
mod testca;

use std::sync::{Arc, OnceLock};

pub use cause::{FailureCounter, FailureCounts, HandshakeCause, classify, classify_server};
pub use client::{ClientOptions, ClientTls, Identities, Identity, connect};
pub use pem::{fingerprint, load_certs, load_key};
pub use server::{ServerOptions, ServerTls, accept};
pub use testca::{Issued, TestCa, Validity};

pub use rustls;
pub use tokio_rustls;

/// The crypto provider every configuration uses (*ring*).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// Installs [`provider`] as the process's default, for libraries that
/// build their own rustls configuration (reqwest's plain clients). Safe to
/// call any number of times, from any thread.
pub fn install_default_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Err means another provider is already the default: keep it.
        let _ = rustls::crypto::CryptoProvider::install_default((*provider()).clone());
    });
}

/// A configuration that could not be built: a file missing or unreadable,
/// without a certificate or key, or a key that does not match.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file held nothing of the kind expected.
    #[error("{path} holds no {what} (expected a PEM file with a \"-----BEGIN {what}\" block)")]
    Empty {
        /// The file.
        path: String,
        /// "CERTIFICATE" or "PRIVATE KEY".
        what: &'static str,
    },
    /// A PEM file could not be parsed.
    #[error("{path} is not a readable PEM file: {detail}")]
    Pem {
        /// The file.
        path: String,
        /// The parser's words.
        detail: String,
    },
    /// rustls refused the configuration (a key that does not match its
    /// certificate, an unusable CA, ...).
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: String,
        /// rustls's error.
        source: rustls::Error,
    },
    /// A client certificate and key must come together.
    #[error("{0}")]
    Options(String),
    /// Generating a certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}
