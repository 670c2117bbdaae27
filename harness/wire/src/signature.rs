//! HMAC-SHA256 webhook signatures, the two common styles: GitHub's
//! `X-Hub-Signature-256: sha256=<hex>` over the body, and Stripe's
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>` over `"<t>.<body>"`,
//! which also dates the request so a captured one cannot be replayed
//! later. Verification compares in constant time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Header of a GitHub-style signature.
pub const GITHUB_HEADER: &str = "x-hub-signature-256";
/// Header of a Stripe-style signature.
pub const STRIPE_HEADER: &str = "stripe-signature";

/// The hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    hex(&mac(secret, message))
}

fn mac(secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The GitHub-style header value for `body`.
pub fn github(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// The Stripe-style header value for `body`, dated `now`.
pub fn stripe(secret: &[u8], body: &[u8], now: SystemTime) -> String {
    let t = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!("t={t},v1={}", hmac_hex(secret, &stripe_payload(t, body)))
}

fn stripe_payload(t: u64, body: &[u8]) -> Vec<u8> {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    signed
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    /// No signature header.
    #[error("no signature header")]
    Missing,
    /// The header is not in the expected form.
    #[error("signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("signature timestamp is outside the tolerance")]
    Stale,
    /// The HMAC does not match.
    #[error("signature does not match")]
    Mismatch,
}

fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks a GitHub-style header value against `body`.
pub fn verify_github(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), BadSignature> {
    let header = header.ok_or(BadSignature::Missing)?;
    let given = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(BadSignature::Malformed)?;
    if equal(&given.to_ascii_lowercase(), &hmac_hex(secret, body)) {
        Ok(())
    } else {
        Err(BadSignature::Mismatch)
    }
}

/// Checks a Stripe-style header value against `body` at `now`: its `t` no
/// further than `tolerance` from now, and one of its `v1` signatures
/// matching.
pub fn verify_stripe(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), BadSignature> {
    let header = header.ok_or(BadSignature::Missing)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<u64>().map_err(|_| BadSignature::Malformed)?),
            Some(("v1", v)) => signatures.push(v.to_ascii_lowercase()),
            Some(_) => {}
            None => return Err(BadSignature::Malformed),
        }
    }
    let t = t.ok_or(BadSignature::Malformed)?;
    if signatures.is_empty() {
        return Err(BadSignature::Malformed);
    }
    let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if now_s.abs_diff(t) > tolerance.as_secs() {
        return Err(BadSignature::Stale);
    }
    let expected = hmac_hex(secret, &stripe_payload(t, body));
    if signatures.iter().any(|s| equal(s, &expected)) {
        Ok(())
    } else {
        Err(BadSignature::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_verify_and_refuse_by_reason() {
        let body = br#"{"patient_id":"p"}"#;
        let h = github(b"s3cret", body);
        assert_eq!(verify_github(b"s3cret", body, Some(&h)), Ok(()));
        assert_eq!(
            verify_github(b"other", body, Some(&h)),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            verify_github(b"s3cret", b"{}", Some(&h)),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            verify_github(b"s3cret", body, None),
            Err(BadSignature::Missing)
        );
        assert_eq!(
            verify_github(b"s3cret", body, Some("md5=x")),
            Err(BadSignature::Malformed)
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let s = stripe(b"k", body, now);
        let tol = Duration::from_secs(300);
        assert_eq!(verify_stripe(b"k", body, Some(&s), now, tol), Ok(()));
        let later = now + Duration::from_secs(301);
        assert_eq!(
            verify_stripe(b"k", body, Some(&s), later, tol),
            Err(BadSignature::Stale)
        );
        assert_eq!(
            verify_stripe(b"x", body, Some(&s), now, tol),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            verify_stripe(b"k", body, Some("v1=ab"), now, tol),
            Err(BadSignature::Malformed)
        );
    }
}
