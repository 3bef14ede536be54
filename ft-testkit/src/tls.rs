//! A certificate authority made by the test: Prosody serves STARTTLS with a certificate it
//! issued, and only a client told to trust it (`SSL_CERT_FILE`, or
//! `ClientOptions::with_root_certificate_der`) accepts it. No system root is involved.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, io};

/// A fresh CA (an ECDSA P-256 key, valid for decades), able to issue server certificates.
#[derive(Clone)]
pub struct TestCa {
    name: String,
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Arc<Issuer<'static, KeyPair>>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A server certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl TestCa {
    /// A new CA whose common name is `name`.
    pub fn new(name: &str) -> Result<Self, Error> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Arc::new(Issuer::new(params, key)),
        })
    }

    /// The CA certificate, PEM (what `SSL_CERT_FILE` names).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER (what `ClientOptions::with_root_certificate_der` takes).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Writes the CA certificate as PEM to `path`.
    pub fn write_pem(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, &self.cert_pem)
            .map_err(io(format!("writing the test ca to {}", path.display())))
    }

    /// A server certificate for the DNS name `name`, issued by this CA.
    pub fn issue(&self, name: &str) -> Result<IssuedCert, Error> {
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
