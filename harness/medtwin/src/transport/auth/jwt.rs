//! Signed JWT client assertions (RFC 7523 §2.2), as SMART Backend
//! Services asks for them: `RS384` (RSASSA-PKCS1-v1_5 with SHA-384) or
//! `ES384` (ECDSA P-384 with SHA-384, the signature as the fixed-length
//! `r || s` of RFC 7518 §3.4), signed with `ring`; base64url without
//! padding (RFC 7515 §2).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};

pub use crate::scenario::auth::Alg;

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs client assertions. Its `Debug` names the
/// file, never the key.
pub struct Signer {
    key: Key,
    alg: Alg,
    key_id: String,
    path: PathBuf,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Seconds a client assertion is valid: SMART asks for no more than five
/// minutes; a minute less leaves room for a server clock behind ours.
pub const ASSERTION_LIFETIME_S: u64 = 240;

impl Signer {
    /// The PKCS#8 private key in the PEM file at `path` (`openssl genpkey`
    /// writes this form), for `alg`; errors name the file, never the key.
    pub fn from_pem_file(path: &Path, alg: Alg, key_id: &str) -> anyhow::Result<Signer> {
        let key = medtwin_tls::load_key(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let medtwin_tls::rustls::pki_types::PrivateKeyDer::Pkcs8(der) = key else {
            anyhow::bail!(
                "{}: the key is not in PKCS#8 form (\"BEGIN PRIVATE KEY\"); convert it with `openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW`",
                path.display()
            );
        };
        Signer::from_pkcs8(der.secret_pkcs8_der(), alg, key_id)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            .map(|s| Signer {
                path: path.to_owned(),
                ..s
            })
    }

    /// A PKCS#8 (DER) private key for `alg`.
    pub fn from_pkcs8(der: &[u8], alg: Alg, key_id: &str) -> anyhow::Result<Signer> {
        let rng = SystemRandom::new();
        let key = match alg {
            Alg::Rs384 => {
                Key::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| {
                    anyhow::anyhow!("not an RSA private key usable for RS384 ({e})")
                })?)
            }
            Alg::Es384 => Key::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
                    .map_err(|e| {
                        anyhow::anyhow!("not a P-384 EC private key usable for ES384 ({e})")
                    })?,
            ),
        };
        Ok(Signer {
            key,
            alg,
            key_id: key_id.to_owned(),
            path: PathBuf::new(),
            rng,
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// A signed client assertion: `iss` = `sub` = `client_id`, `aud` =
    /// the token endpoint, `exp` [`ASSERTION_LIFETIME_S`] from now, a
    /// random `jti` never used before.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({
            "alg": self.alg.name(),
            "typ": "JWT",
            "kid": self.key_id,
        });
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": random_hex(&self.rng)?,
        });
        self.sign(&header, &claims)
    }

    /// `base64url(header) . base64url(claims) . base64url(signature)`.
    pub fn sign(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> anyhow::Result<String> {
        let mut jwt = base64url(header.to_string().as_bytes());
        jwt.push('.');
        jwt.push_str(&base64url(claims.to_string().as_bytes()));
        let signature = match &self.key {
            Key::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA384,
                    &self.rng,
                    jwt.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| anyhow::anyhow!("RS384 signing failed"))?;
                sig
            }
            Key::Ec(key) => key
                .sign(&self.rng, jwt.as_bytes())
                .map_err(|_| anyhow::anyhow!("ES384 signing failed"))?
                .as_ref()
                .to_vec(),
        };
        jwt.push('.');
        jwt.push_str(&base64url(&signature));
        Ok(jwt)
    }
}

/// 128 random bits, in hex.
pub fn random_hex(rng: &SystemRandom) -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness from the operating system"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[(n >> (18 - 6 * i)) as usize & 63]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (RFC 4648 §5, RFC 7515 §2).
pub fn base64url(bytes: &[u8]) -> String {
    encode(bytes, URL_SAFE, false)
}

/// base64 with padding (RFC 4648 §4), as HTTP basic authentication uses.
pub fn base64(bytes: &[u8]) -> String {
    encode(bytes, STANDARD, true)
}

/// Decodes base64url or base64, with or without padding; `None` on a
/// character outside both alphabets.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair as _, UnparsedPublicKey};

    fn parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
        let mut it = jwt.split('.');
        let (h, c, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert!(it.next().is_none(), "three parts");
        for p in [h, c, s] {
            assert!(
                !p.contains('=') && !p.contains('+') && !p.contains('/'),
                "base64url without padding: {p}"
            );
        }
        (
            serde_json::from_slice(&base64_decode(h).unwrap()).unwrap(),
            serde_json::from_slice(&base64_decode(c).unwrap()).unwrap(),
            base64_decode(s).unwrap(),
            format!("{h}.{c}"),
        )
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded);
            assert_eq!(base64url(plain.as_bytes()), coded.trim_end_matches('='));
            assert_eq!(base64_decode(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64_decode("a b"), None);
    }

    #[test]
    fn es384_assertions_verify_with_the_public_key_and_have_smart_claims() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let signer = Signer::from_pkcs8(pkcs8.as_ref(), Alg::Es384, "key-1").unwrap();
        let jwt = signer
            .assertion("medtwin", "https://auth.example/token")
            .unwrap();
        let (header, claims, sig, signed) = parts(&jwt);
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES384", "typ": "JWT", "kid": "key-1"})
        );
        assert_eq!(claims["iss"], "medtwin");
        assert_eq!(claims["sub"], "medtwin");
        assert_eq!(claims["aud"], "https://auth.example/token");
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(
            exp > iat && exp - iat <= 300,
            "exp at most five minutes ahead"
        );
        assert_eq!(sig.len(), 96, "fixed-length r || s");
        UnparsedPublicKey::new(
            &signature::ECDSA_P384_SHA384_FIXED,
            pair.public_key().as_ref(),
        )
        .verify(signed.as_bytes(), &sig)
        .expect("the signature verifies");
        let mut tampered = signed.into_bytes();
        tampered[0] ^= 1;
        assert!(
            UnparsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                pair.public_key().as_ref()
            )
            .verify(&tampered, &sig)
            .is_err()
        );
        let again = signer
            .assertion("medtwin", "https://auth.example/token")
            .unwrap();
        assert_ne!(
            parts(&again).1["jti"],
            claims["jti"],
            "a fresh jti each time"
        );
        assert!(
            !format!("{signer:?}").contains("BEGIN"),
            "Debug shows no key"
        );
    }

    #[test]
    fn rs384_assertions_verify_with_the_public_key() {
        // ring cannot make RSA keys: openssl makes one, as the docs say.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsa.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .output();
        match made {
            Ok(out) if out.status.success() => {}
            _ => {
                eprintln!("skipped: no openssl to make an RSA key");
                return;
            }
        }
        let signer = Signer::from_pem_file(&path, Alg::Rs384, "rsa-1").unwrap();
        let jwt = signer.assertion("c", "https://a/token").unwrap();
        let (header, _, sig, signed) = parts(&jwt);
        assert_eq!(header["alg"], "RS384");
        let Key::Rsa(pair) = &signer.key else {
            panic!("RSA")
        };
        UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA384,
            pair.public().as_ref(),
        )
        .verify(signed.as_bytes(), &sig)
        .expect("the signature verifies");
        let err = Signer::from_pem_file(&path, Alg::Es384, "k")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ES384") && err.contains("rsa.pem"), "{err}");
    }
}
