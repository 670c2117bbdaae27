//! A throwaway certificate authority: for tests (servers with expired or
//! wrongly named certificates, revoked clients) and for fleets that must
//! present distinct device identities without a real PKI.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::TlsError;
use crate::client::Identities;

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday for a year.
    Current,
    /// Expired yesterday.
    Expired,
    /// Valid from next year.
    NotYetValid,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let now = OffsetDateTime::now_utc();
        let (from, to) = match self {
            Validity::Current => (now - Duration::days(1), now + Duration::days(365)),
            Validity::Expired => (now - Duration::days(30), now - Duration::days(1)),
            Validity::NotYetValid => (now + Duration::days(365), now + Duration::days(730)),
        };
        params.not_before = from;
        params.not_after = to;
    }
}

/// A certificate and key, issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// Its serial number.
    pub serial: Vec<u8>,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
}

impl Issued {
    /// Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (the layout of an
    /// identities directory).
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        let (cert, key) = Identities::files(dir, name);
        std::fs::write(cert, &self.cert_pem)?;
        write_private(&key, &self.key_pem)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// A certificate authority held in memory.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn serial_of(key: &KeyPair) -> Vec<u8> {
    let digest = Sha256::digest(rcgen::PublicKeyData::der_bytes(key));
    let mut serial = digest[..16].to_vec();
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // no leading zero byte
    serial
}

impl TestCa {
    /// A new CA named `name` (its subject's common name), valid for a year.
    pub fn generate(name: &str) -> Result<TestCa, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "medtwin test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::Current.apply(&mut params);
        let key = KeyPair::generate().map_err(gen_err)?;
        params.serial_number = Some(SerialNumber::from_slice(&serial_of(&key)));
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A self-signed server certificate for `names` (DNS names or IP
    /// addresses), for a listener without a certificate of its own.
    pub fn self_signed(names: &[String]) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("medtwin", |n| n.as_str()),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        Validity::Current.apply(&mut params);
        let key = KeyPair::generate().map_err(gen_err)?;
        let serial = serial_of(&key);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(Issued {
            fingerprint: crate::fingerprint(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// The CA's certificate, PEM (what servers and clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM (PKCS#8): to keep beside its certificate
    /// (0600) and never print.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    fn issue(
        &self,
        names: &[String],
        common_name: &str,
        purpose: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![purpose];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let key = KeyPair::generate().map_err(gen_err)?;
        let serial = serial_of(&key);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(Issued {
            fingerprint: crate::fingerprint(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[&str], validity: Validity) -> Result<Issued, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cn = names.first().cloned().unwrap_or_default();
        self.issue(&names, &cn, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// A client certificate whose subject's common name is `name` (a
    /// device or gateway id).
    pub fn issue_client(&self, name: &str, validity: Validity) -> Result<Issued, TlsError> {
        self.issue(&[], name, ExtendedKeyUsagePurpose::ClientAuth, validity)
    }

    /// A CRL (PEM) revoking `revoked`, valid for a day.
    pub fn crl(&self, revoked: &[&Issued]) -> Result<String, TlsError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|i| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&i.serial),
                    revocation_time: now - Duration::hours(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map_err(gen_err)?
            .pem()
            .map_err(gen_err)
    }

    /// Writes `ca.crt` and a client identity per name (`<name>.crt`,
    /// `<name>.key`) into `dir`, creating it: an identities directory.
    pub fn write_identities<S: AsRef<str>>(&self, dir: &Path, names: &[S]) -> Result<(), TlsError> {
        let io = |source: std::io::Error| TlsError::Read {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::write(dir.join("ca.crt"), &self.cert_pem).map_err(io)?;
        for name in names {
            self.issue_client(name.as_ref(), Validity::Current)?
                .write(dir, name.as_ref())
                .map_err(io)?;
        }
        Ok(())
    }
}
