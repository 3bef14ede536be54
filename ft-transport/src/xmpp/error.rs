//! What connecting, logging in and sending fail with.

use std::fmt;
use std::io;
use std::time::Duration;

/// Where a client login stood when it failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginStage {
    /// Resolving the server's name and opening the TCP connection.
    Connect,
    /// Stream header and features, before TLS.
    Stream,
    /// `<starttls/>` sent, waiting for `<proceed/>`.
    StartTls,
    /// The TLS handshake.
    TlsHandshake,
    /// Stream header and features over TLS.
    TlsStream,
    /// SASL authentication.
    Authentication,
    /// The stream restart after authentication and the resource binding.
    Bind,
}

impl fmt::Display for LoginStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::Stream => "opening the stream",
            Self::StartTls => "starttls",
            Self::TlsHandshake => "the tls handshake",
            Self::TlsStream => "opening the stream over tls",
            Self::Authentication => "authentication",
            Self::Bind => "resource binding",
        })
    }
}

/// What connecting or sending can fail with.
///
/// A login fails at the first definite answer (refused credentials, an untrusted
/// certificate, no STARTTLS, a refused connection): nothing is retried, so the error comes
/// in about a round trip and names what happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plaintext was asked for a server that is not on loopback (misuse).
    #[error("plaintext refused for non-loopback server {0}")]
    PlaintextNotLoopback(String),
    /// The account JID has no local part (misuse).
    #[error("the account jid {0} has no local part")]
    NoLocalPart(String),
    /// The server's name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name looked up.
        host: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No TCP connection could be opened (refused, unreachable, timed out).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address (or addresses, comma-separated) tried.
        addr: String,
        /// The last attempt's error.
        #[source]
        source: io::Error,
    },
    /// TLS is required (no plaintext asked for) and the server offers no STARTTLS: usually
    /// a server without a certificate for the domain.
    #[error(
        "the server at {server} offers no starttls and tls is required (has it a certificate for {domain}?)"
    )]
    NoStartTls {
        /// The server's address.
        server: String,
        /// The domain we logged in to.
        domain: String,
    },
    /// The server answered `<starttls/>` with `<failure/>`.
    #[error("the server at {server} refused starttls")]
    StartTlsRefused {
        /// The server's address.
        server: String,
    },
    /// The server's certificate failed verification.
    #[error(
        "the certificate of {server} is not trusted for {name}: {}",
        super::tls::certificate_reason(source)
    )]
    Certificate {
        /// The server's address.
        server: String,
        /// The name it was checked for (the JID's domain).
        name: String,
        /// rustls' verdict (an `InvalidCertificate`).
        #[source]
        source: Box<tokio_rustls::rustls::Error>,
    },
    /// The TLS handshake failed for another reason (an alert, no common version).
    #[error("tls handshake with {server} failed: {source}")]
    Tls {
        /// The server's address.
        server: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The server refused the credentials (SASL `<failure/>`).
    #[error("authentication as {jid} refused by the server: {condition}")]
    AuthRefused {
        /// The account.
        jid: String,
        /// The SASL condition (`not-authorized`, `account-disabled`, …).
        condition: String,
    },
    /// No SASL mechanism both sides support.
    #[error("no sasl mechanism in common with the server (it offers {offered}){hint}")]
    NoMechanism {
        /// The mechanisms the server offered, comma-separated.
        offered: String,
        /// A hint when the server wants TLS first.
        hint: &'static str,
    },
    /// The server refused the resource binding.
    #[error("the server refused resource binding: {0}")]
    BindRefused(String),
    /// The server closed the stream with a stream error during login.
    #[error("the server closed the stream during {stage}: {condition}")]
    StreamError {
        /// Where the login stood.
        stage: LoginStage,
        /// The stream error.
        condition: String,
    },
    /// Another failure during login (the connection broke, the server sent nonsense).
    #[error("login failed during {stage}: {source}")]
    Login {
        /// Where the login stood.
        stage: LoginStage,
        /// What failed.
        #[source]
        source: tokio_xmpp::Error,
    },
    /// The session did not come online in time: the server stopped answering at `stage`.
    /// The attempt is abandoned and its connection closed.
    #[error("no answer from {server} during {stage} within {after:?}")]
    OnlineTimeout {
        /// The server's address.
        server: String,
        /// Where the login stood.
        stage: LoginStage,
        /// The timeout.
        after: Duration,
    },
    /// The stream ended (closed by either side, or its socket failed) before the stanza
    /// could be queued.
    #[error("xmpp stream closed")]
    Closed,
    /// The component could not connect or authenticate.
    #[error("component connection failed: {0}")]
    Component(#[source] tokio_xmpp::Error),
}

impl Error {
    /// A tokio-xmpp error during login at `stage`, as the most precise variant.
    pub(super) fn login(stage: LoginStage, e: tokio_xmpp::Error) -> Self {
        match e {
            tokio_xmpp::Error::StreamError(s) => Self::StreamError {
                stage,
                condition: s.0.to_string(),
            },
            source => Self::Login { stage, source },
        }
    }

    /// Whether this is a login failure (as opposed to misuse or a closed session).
    pub fn is_login_failure(&self) -> bool {
        !matches!(
            self,
            Self::PlaintextNotLoopback(_) | Self::NoLocalPart(_) | Self::Closed
        )
    }
}

/// `NotAuthorized` → `not-authorized`: xmpp-parsers' condition names (their `Debug`) as on
/// the wire.
pub(super) fn kebab(camel: &str) -> String {
    let name = camel.split(['(', ' ', '{']).next().unwrap_or(camel);
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::kebab;

    #[test]
    fn condition_names_are_written_as_on_the_wire() {
        assert_eq!(kebab("NotAuthorized"), "not-authorized");
        assert_eq!(kebab("AccountDisabled"), "account-disabled");
        assert_eq!(kebab("Text(\"x\")"), "text");
        assert_eq!(kebab("aborted"), "aborted");
    }
}
