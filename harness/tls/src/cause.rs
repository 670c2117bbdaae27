//! Why a TLS connection failed, named: read from an error's source chain
//! (rustls's error, inside an I/O error, inside an HTTP client's error),
//! so every carrier and listener counts the same causes under the same
//! names, each with a first line a user can act on.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};

/// A TLS failure's cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HandshakeCause {
    /// The peer's certificate is signed by a CA not trusted here.
    UnknownCa,
    /// The peer's certificate has expired.
    Expired,
    /// The peer's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate is not valid for the name connected to.
    NameMismatch,
    /// The peer's certificate is revoked (on a CRL).
    Revoked,
    /// The server's certificate is not the pinned one.
    PinMismatch,
    /// Another problem with the peer's certificate (bad signature, wrong
    /// purpose, unsupported algorithm, unreadable).
    BadCertificate,
    /// The server requires a client certificate and none was presented.
    ClientCertRequired,
    /// The server refused the client certificate presented (unknown CA,
    /// revoked, expired, denied).
    ClientCertRefused,
    /// A client refused this listener's certificate (seen from a
    /// listener: [`classify_server`]).
    ServerCertRefused,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The peer does not speak TLS on this port.
    NotTls,
    /// Another TLS protocol failure (no common version or cipher, an alert
    /// without a certificate reason, a decode error).
    Protocol,
}

impl HandshakeCause {
    /// Every cause, in report order.
    pub const ALL: [HandshakeCause; 13] = [
        HandshakeCause::UnknownCa,
        HandshakeCause::Expired,
        HandshakeCause::NotYetValid,
        HandshakeCause::NameMismatch,
        HandshakeCause::Revoked,
        HandshakeCause::PinMismatch,
        HandshakeCause::BadCertificate,
        HandshakeCause::ClientCertRequired,
        HandshakeCause::ClientCertRefused,
        HandshakeCause::ServerCertRefused,
        HandshakeCause::HandshakeTimeout,
        HandshakeCause::NotTls,
        HandshakeCause::Protocol,
    ];

    /// The cause's name in reports: `tls_unknown_ca`, `tls_expired`, ...
    pub fn name(self) -> &'static str {
        match self {
            HandshakeCause::UnknownCa => "tls_unknown_ca",
            HandshakeCause::Expired => "tls_expired",
            HandshakeCause::NotYetValid => "tls_not_yet_valid",
            HandshakeCause::NameMismatch => "tls_name_mismatch",
            HandshakeCause::Revoked => "tls_revoked",
            HandshakeCause::PinMismatch => "tls_pin_mismatch",
            HandshakeCause::BadCertificate => "tls_bad_certificate",
            HandshakeCause::ClientCertRequired => "tls_client_cert_required",
            HandshakeCause::ClientCertRefused => "tls_client_cert_refused",
            HandshakeCause::ServerCertRefused => "tls_server_cert_refused",
            HandshakeCause::HandshakeTimeout => "tls_handshake_timeout",
            HandshakeCause::NotTls => "tls_not_tls",
            HandshakeCause::Protocol => "tls_protocol",
        }
    }

    /// The cause from its report name.
    pub fn from_name(name: &str) -> Option<HandshakeCause> {
        HandshakeCause::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What the cause means and what to do, seen from a client (a carrier
    /// or an intake's HTTP client).
    pub fn hint(self) -> &'static str {
        match self {
            HandshakeCause::UnknownCa => {
                "the target's certificate is signed by an unknown CA; pass its CA with --ca-cert (or [target.tls] ca_cert)"
            }
            HandshakeCause::Expired => {
                "the target's certificate has expired; renew it on the target (or check this machine's clock)"
            }
            HandshakeCause::NotYetValid => {
                "the target's certificate is not valid yet; check the clocks of this machine and the target"
            }
            HandshakeCause::NameMismatch => {
                "the target's certificate is not valid for the host name in the URL; use the name on the certificate, or set [target.tls] server_name"
            }
            HandshakeCause::Revoked => "the target's certificate has been revoked",
            HandshakeCause::PinMismatch => {
                "the target's certificate is not the pinned one; check the fingerprint the listener printed"
            }
            HandshakeCause::BadCertificate => {
                "the target's certificate cannot be used (bad signature, wrong key usage or algorithm)"
            }
            HandshakeCause::ClientCertRequired => {
                "the target requires a client certificate; pass one with --client-cert and --client-key (or [target.tls] client_cert/client_key, or identities per device)"
            }
            HandshakeCause::ClientCertRefused => {
                "the target refused the client certificate (unknown CA, revoked or expired on its side); check which CA the target trusts"
            }
            HandshakeCause::ServerCertRefused => {
                "a client refused this listener's certificate; give the client its CA (or the printed SHA-256 fingerprint to pin)"
            }
            HandshakeCause::HandshakeTimeout => {
                "the TLS handshake did not finish in time; is the port a TLS port, and is the target overloaded?"
            }
            HandshakeCause::NotTls => {
                "the target does not speak TLS on this port; use the plain scheme (http://, mqtt://, mllp://) or the TLS port"
            }
            HandshakeCause::Protocol => {
                "the TLS handshake failed (no common version or cipher suite, or the peer aborted); see the sample for the detail"
            }
        }
    }
}

impl fmt::Display for HandshakeCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error [`crate::connect`] and [`crate::accept`] give when the
/// handshake outlasts its timeout.
#[derive(Debug)]
pub(crate) struct HandshakeTimedOut(pub Duration);

impl fmt::Display for HandshakeTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake timed out after {:?}", self.0)
    }
}

impl Error for HandshakeTimedOut {}

/// The TLS cause of `error`, looking through its whole source chain; `None`
/// when nothing in it is a TLS failure.
pub fn classify(error: &(dyn Error + 'static)) -> Option<HandshakeCause> {
    let mut next: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(cause) = direct(e) {
            return Some(cause);
        }
        // An I/O error's source() skips the error it wraps; look inside,
        // through I/O errors wrapped in I/O errors (as HTTP connectors do).
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(std::io::Error::get_ref) {
            if let Some(cause) = direct(inner) {
                return Some(cause);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        next = e.source();
    }
    None
}

fn direct(e: &(dyn Error + 'static)) -> Option<HandshakeCause> {
    if e.downcast_ref::<HandshakeTimedOut>().is_some() {
        return Some(HandshakeCause::HandshakeTimeout);
    }
    e.downcast_ref::<rustls::Error>().map(of_rustls)
}

/// The TLS cause of `error` seen from a listener: a certificate alert
/// from the client means it refused *this* side's certificate.
pub fn classify_server(error: &(dyn Error + 'static)) -> Option<HandshakeCause> {
    classify(error).map(|cause| match cause {
        HandshakeCause::ClientCertRefused => HandshakeCause::ServerCertRefused,
        other => other,
    })
}

/// A listener's failed handshakes by cause (lock-free; shared by the
/// HTTP and MLLP listeners).
#[derive(Debug, Default)]
pub struct FailureCounter([std::sync::atomic::AtomicU64; HandshakeCause::ALL.len()]);

impl FailureCounter {
    /// Counts a failed server-side handshake under its cause
    /// ([`classify_server`]; `tls_protocol` when it names none).
    pub fn record(&self, error: &(dyn Error + 'static)) {
        let cause = classify_server(error).unwrap_or(HandshakeCause::Protocol);
        let i = HandshakeCause::ALL
            .iter()
            .position(|c| *c == cause)
            .unwrap_or(0);
        self.0[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> FailureCounts {
        FailureCounts(std::array::from_fn(|i| {
            self.0[i].load(std::sync::atomic::Ordering::Relaxed)
        }))
    }
}

/// Failed handshakes by cause, as counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureCounts([u64; HandshakeCause::ALL.len()]);

impl FailureCounts {
    /// The causes seen, by name (`tls_unknown_ca`, ...), with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        HandshakeCause::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (c.name(), n))
    }
}

/// The cause of a rustls error.
pub fn of_rustls(error: &rustls::Error) -> HandshakeCause {
    use HandshakeCause as H;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            // A self-signed certificate checked against the system roots
            // ends in a candidate issuer whose key cannot verify it: no
            // trusted CA signed it either way.
            CertificateError::UnknownIssuer
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                H::UnknownCa
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => H::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                H::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                H::NameMismatch
            }
            CertificateError::Revoked => H::Revoked,
            CertificateError::ApplicationVerificationFailure => H::PinMismatch,
            _ => H::BadCertificate,
        },
        rustls::Error::NoCertificatesPresented => H::ClientCertRequired,
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => H::ClientCertRequired,
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied => H::ClientCertRefused,
            _ => H::Protocol,
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => H::NotTls,
        _ => H::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for cause in HandshakeCause::ALL {
            assert_eq!(HandshakeCause::from_name(cause.name()), Some(cause));
            assert!(seen.insert(cause.name()), "{cause:?}");
            assert!(!cause.hint().is_empty());
        }
    }

    #[test]
    fn a_rustls_error_is_found_inside_io_and_wrapping_errors() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(classify(&Outer(io)), Some(HandshakeCause::UnknownCa));
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        assert_eq!(classify(&io), Some(HandshakeCause::ClientCertRequired));
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        ));
        assert_eq!(classify(&Outer(nested)), Some(HandshakeCause::Expired));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), None, "not a TLS failure");
    }
}
