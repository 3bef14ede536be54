//! Why a transfer did not complete: the stage it was in and a typed reason.

use std::fmt;
use std::io;
use std::time::Duration;

use xmpp_parsers::stanza_error::StanzaError;

/// Where in its life a transfer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Reading the file and hashing it before the offer (sender).
    Prepare,
    /// Asking the peer's disco#info (sender, with [`Config::check_features`](crate::Config::check_features)).
    Disco,
    /// The SI offer is out and waits for the peer's answer (sender), or waits for the
    /// application to accept or decline (receiver).
    Offer,
    /// Finding proxies and their streamhosts (sender).
    Proxies,
    /// Setting up the bytestream: S5B candidates, activation, the IBB open.
    Connect,
    /// Bytes flow.
    Stream,
    /// Checking the byte count and hash, moving the `.part` file into place (receiver).
    Verify,
    /// Ending the bytestream (the IBB close, the S5B half-close) (sender).
    Close,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Prepare => "prepare",
            Self::Disco => "disco",
            Self::Offer => "offer",
            Self::Proxies => "proxies",
            Self::Connect => "connect",
            Self::Stream => "stream",
            Self::Verify => "verify",
            Self::Close => "close",
        })
    }
}

/// Who ended a transfer on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This side ([`TransferHandle::cancel`](crate::TransferHandle::cancel)).
    Local,
    /// The peer.
    Peer,
}

/// Why a transfer failed. Grouped by who is at fault, like every xft error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peer declined the offer (`forbidden`, or `not-acceptable` from old Smack/Spark).
    #[error("the peer declined{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Declined {
        /// The peer's reason, if it gave one.
        text: Option<String>,
    },
    /// The peer supports none of the methods we offered (`no-valid-streams`), or the peer
    /// lacks SI file transfer (stage `Disco`).
    #[error("no stream method in common with the peer")]
    NoCommonMethod,
    /// The peer answered a request with another stanza error.
    #[error("the peer answered with {:?} ({:?})", .0.defined_condition, .0.type_)]
    Rejected(Box<StanzaError>),
    /// Cancelled on purpose.
    #[error("cancelled by {}", match .0 { Side::Local => "us", Side::Peer => "the peer" })]
    Cancelled(Side),
    /// The bytestream ended before the offered number of bytes arrived.
    #[error("the stream ended after {got} of {expected} bytes")]
    Truncated {
        /// Bytes expected (the offered size, or the range length).
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The peer sent more bytes than it offered. Nothing is kept.
    #[error("the peer sent more than the {expected} bytes it offered")]
    TooLong {
        /// Bytes expected.
        expected: u64,
    },
    /// The received bytes do not have the hash the offer announced.
    #[error("md5 mismatch: offered {offered}, received {received}")]
    HashMismatch {
        /// The offer's hash (lower-case hex).
        offered: String,
        /// The hash of what arrived.
        received: String,
    },
    /// The file is larger than [`Policy::max_size`](crate::Policy::max_size).
    #[error("offered size {size} exceeds the limit {limit}")]
    TooLarge {
        /// Offered size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file with the final name exists and overwriting was not asked for.
    #[error("{0} exists and overwrite was not asked for")]
    Exists(std::path::PathBuf),
    /// No answer or no progress within the stage's timeout.
    #[error("nothing within {0:?}")]
    Timeout(Duration),
    /// Every S5B candidate failed and no fallback was possible.
    #[error("socks5 bytestream failed: {0}")]
    S5b(String),
    /// IBB failed.
    #[error("in-band bytestream failed: {0}")]
    Ibb(String),
    /// The peer broke a protocol (a malformed answer, a method never offered).
    #[error("protocol violation by the peer: {0}")]
    Protocol(String),
    /// The caller asked for something impossible (no method configured, resume past the end).
    #[error("misuse: {0}")]
    Misuse(String),
    /// Sending a stanza failed (the connection is gone).
    #[error("could not send a stanza: {0}")]
    Transport(String),
    /// A local or socket I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A transfer that did not complete: the stage and the reason.
#[derive(Debug, thiserror::Error)]
#[error("transfer failed at stage {stage}: {kind}")]
pub struct TransferError {
    /// Where it failed.
    pub stage: Stage,
    /// Why.
    #[source]
    pub kind: ErrorKind,
}

impl TransferError {
    /// An error at `stage`.
    pub fn new(stage: Stage, kind: ErrorKind) -> Self {
        Self { stage, kind }
    }

    /// Whether this transfer was cancelled on purpose by `side`.
    pub fn is_cancelled_by(&self, side: Side) -> bool {
        matches!(self.kind, ErrorKind::Cancelled(s) if s == side)
    }
}

impl From<xep0095_si::Rejection> for ErrorKind {
    fn from(r: xep0095_si::Rejection) -> Self {
        match r {
            xep0095_si::Rejection::Declined { text } => Self::Declined { text },
            xep0095_si::Rejection::NoValidStreams | xep0095_si::Rejection::BadProfile => {
                Self::NoCommonMethod
            }
            xep0095_si::Rejection::Other(e) => Self::Rejected(e),
            other => Self::Protocol(other.to_string()),
        }
    }
}

impl From<xep0095_si::Error> for ErrorKind {
    fn from(e: xep0095_si::Error) -> Self {
        match e {
            xep0095_si::Error::Rejected(r) => r.into(),
            xep0095_si::Error::Timeout(d) => Self::Timeout(d),
            xep0095_si::Error::Protocol(p) => Self::Protocol(p.to_string()),
            xep0095_si::Error::Send(s) => Self::Transport(s.to_string()),
            other => Self::Misuse(other.to_string()),
        }
    }
}

impl From<ft_transport::iq::IqError> for ErrorKind {
    fn from(e: ft_transport::iq::IqError) -> Self {
        match e {
            ft_transport::iq::IqError::Rejected(e) => Self::Rejected(e),
            ft_transport::iq::IqError::Timeout(d) => Self::Timeout(d),
            other => Self::Transport(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_stage_and_the_reason_in_lower_case() {
        let e = TransferError::new(
            Stage::Stream,
            ErrorKind::Truncated {
                expected: 10,
                got: 4,
            },
        );
        assert_eq!(
            e.to_string(),
            "transfer failed at stage stream: the stream ended after 4 of 10 bytes"
        );
        let e = TransferError::new(Stage::Offer, ErrorKind::Cancelled(Side::Peer));
        assert!(e.is_cancelled_by(Side::Peer));
        assert_eq!(e.kind.to_string(), "cancelled by the peer");
    }

    #[test]
    fn si_decline_becomes_declined_with_the_text() {
        let k = ErrorKind::from(xep0095_si::Rejection::Declined {
            text: Some("busy".into()),
        });
        assert_eq!(k.to_string(), "the peer declined: busy");
    }
}
