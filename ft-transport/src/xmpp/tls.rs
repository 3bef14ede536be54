//! The TLS handshake after `<proceed/>`: rustls with the system's roots
//! (`rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`) and any extra
//! roots the options carry, and its failures as [`Error`]s that say why.

use std::io;
use std::sync::Arc;

use sasl::common::ChannelBinding;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore};

use super::Error;

/// The roots a login trusts: the system's, and `extra` (DER certificates).
fn roots(extra: &[Vec<u8>]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "could not load some system root certificates");
    }
    let (system, _) = store.add_parsable_certificates(native.certs);
    let (added, refused) =
        store.add_parsable_certificates(extra.iter().map(|d| CertificateDer::from(d.clone())));
    tracing::debug!(
        system,
        extra = added,
        refused,
        "trusting {} root certificates",
        store.len()
    );
    store
}

/// Runs the TLS handshake on `io` for `domain`; `server` names the address in errors.
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    domain: &str,
    server: &str,
    extra_roots: &[Vec<u8>],
) -> Result<(TlsStream<S>, ChannelBinding), Error> {
    let name = ServerName::try_from(domain.to_owned()).map_err(|e| Error::Tls {
        server: server.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let config = ClientConfig::builder()
        .with_root_certificates(roots(extra_roots))
        .with_no_client_auth();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
        .map_err(|e| handshake_error(e, domain, server))?;
    let (_, conn) = tls.get_ref();
    tracing::debug!(
        %server,
        version = ?conn.protocol_version(),
        cipher = ?conn.negotiated_cipher_suite().map(|c| c.suite()),
        "tls established"
    );
    // As tokio-xmpp does: the RFC 9266 exporter under TLS 1.3, nothing before.
    let binding = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => conn
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .map_or(ChannelBinding::None, ChannelBinding::TlsExporter),
        _ => ChannelBinding::None,
    };
    Ok((tls, binding))
}

/// The handshake's I/O error as a [`Error::Certificate`] when rustls refused the
/// certificate, [`Error::Tls`] otherwise.
fn handshake_error(e: io::Error, domain: &str, server: &str) -> Error {
    let verdict = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match verdict {
        Some(source @ rustls::Error::InvalidCertificate(_)) => Error::Certificate {
            server: server.to_owned(),
            name: domain.to_owned(),
            source: Box::new(source),
        },
        _ => Error::Tls {
            server: server.to_owned(),
            source: e,
        },
    }
}

/// Why rustls refused a certificate, in words.
pub(super) fn certificate_reason(e: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(e) = e else {
        return e.to_string();
    };
    match e {
        CertificateError::UnknownIssuer => "it is issued by a certificate authority that is not \
                                            trusted here (not among the roots: the system's, \
                                            or the file SSL_CERT_FILE names)"
            .to_owned(),
        CertificateError::BadSignature => "its signature does not verify".to_owned(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({e})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is for another name ({e})")
        }
        other => other.to_string(),
    }
}
