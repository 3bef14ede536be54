//! Why a transfer did not complete: the stage it was in and a typed reason.

use std::fmt;
use std::io;
use std::sync::Arc;
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

/// Why a transfer failed. Grouped by who is at fault, like every xft error; what a crate
/// below reported keeps its own type as the [`source`](std::error::Error::source).
///
/// The peer's refusals and timeouts of any crate are hoisted into [`Rejected`](Self::Rejected),
/// [`Declined`](Self::Declined), [`NoCommonMethod`](Self::NoCommonMethod) and
/// [`Timeout`](Self::Timeout), so an application matches those once whatever the method;
/// everything else a crate reports arrives typed in that crate's variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // The peer said no.
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

    // The peer's bytes are wrong.
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
    /// The received bytes do not have the hash the offer (or the peer, later) announced.
    /// Nothing is kept under the final name.
    #[error("{algo} mismatch: offered {offered}, received {received}")]
    HashMismatch {
        /// The algorithm whose digest differs.
        algo: crate::hash_algo::HashAlgo,
        /// The offer's hash (lower-case hex).
        offered: String,
        /// The hash of what arrived.
        received: String,
    },

    // Local policy.
    /// The file is larger than [`Policy::max_size`](crate::Policy::max_size).
    #[error("offered size {size} exceeds the limit {limit}")]
    TooLarge {
        /// Offered size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The offered size (plus [`Policy::free_space_margin`](crate::Policy::free_space_margin))
    /// does not fit in the free space of the target directory: declined with `forbidden`,
    /// nothing opened.
    #[error("offered size {size} does not fit in the {available} bytes free")]
    NoSpace {
        /// Offered size.
        size: u64,
        /// Free bytes in the target directory's file system.
        available: u64,
    },
    /// A file with the final name exists and overwriting was not asked for.
    #[error("{0} exists and overwrite was not asked for")]
    Exists(std::path::PathBuf),
    /// No answer or no progress within the stage's timeout.
    #[error("nothing within {0:?}")]
    Timeout(Duration),
    /// [`S5bRoute::Proxy`](crate::S5bRoute::Proxy) was asked for and no proxy was found.
    #[error("no socks5 proxy found")]
    NoProxy,

    // What a crate below reported, typed.
    /// XEP-0065: every S5B candidate failed, the peer broke the protocol, the SOCKS5
    /// exchange failed.
    #[error("socks5 bytestream failed")]
    S5b(#[source] Arc<xep0065_s5b::Error>),
    /// XEP-0047: the IBB session failed.
    #[error("in-band bytestream failed")]
    Ibb(#[source] xep0047_ibb::Error),
    /// XEP-0095: the peer's SI answer is malformed or breaks the XEP, or the offer could not
    /// be sent.
    #[error("stream initiation failed")]
    Si(#[source] Arc<xep0095_si::Error>),
    /// XEP-0096: the offer's or the answer's `<file/>` / `<range/>` is malformed.
    #[error("bad file-transfer payload")]
    File(#[source] xep0096_file::FileError),
    /// XEP-0096: receiving into the `.part` file failed (naming, locking, writing, placing).
    #[error("storing the file failed")]
    Write(#[source] Arc<xep0096_file::WriteError>),
    /// XEP-0030: the feature check failed.
    #[error("service discovery failed")]
    Disco(#[source] Arc<xep0030_disco::Error>),
    /// A digest thread stopped.
    #[error("hashing failed")]
    Hash(#[source] xep0096_file::LaneGone),
    /// XEP-0166/0234/0260/0261: the Jingle session failed.
    #[error("jingle session failed")]
    Jingle(#[source] Arc<crate::JingleError>),

    // Ours.
    /// The caller asked for something impossible (no method configured, resume past the end).
    #[error("misuse")]
    Misuse(#[source] Misuse),
    /// Sending a stanza failed (the connection is gone).
    #[error("could not send a stanza")]
    Transport(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// A local or socket I/O error.
    #[error("i/o error")]
    Io(#[from] io::Error),
}

/// What the application did wrong ([`ErrorKind::Misuse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// No method was configured or given in [`SendOptions`](crate::SendOptions).
    #[error("no method configured")]
    NoMethod,
    /// [`FileInfo::md5`](crate::FileInfo::md5) is not 32 hex digits.
    #[error("md5 {0:?} is not 32 hex digits")]
    BadMd5(String),
    /// [`SendOptions::sid`](crate::SendOptions::sid) is not a valid stream id.
    #[error("bad sid")]
    BadSid(#[source] ft_transport::InvalidSid),
    /// [`send_reader`](crate::FileTransfer::send_reader) was given a [`FileInfo`](crate::FileInfo)
    /// without a size: an SI offer must carry one (XEP-0096 §3).
    #[error("a file to send needs a size")]
    UnknownSize,
    /// The reader of [`send_reader`](crate::FileTransfer::send_reader) ended before the
    /// resume offset the peer asked for.
    #[error("the reader ended before the resume offset {0}")]
    ShortReader(u64),
    /// A file changed size while it was read.
    #[error("{path} changed while being read ({read} of {size} bytes)")]
    FileChanged {
        /// The file.
        path: std::path::PathBuf,
        /// Bytes read.
        read: u64,
        /// The size it had when the offer was made.
        size: u64,
    },
    /// The offer was already answered.
    #[error("this offer was already answered")]
    AlreadyAnswered,
    /// The receive target was lost (its writer task died).
    #[error("the receive target was lost")]
    TargetLost,
    /// The transfer's task ended without a result (a panic, or the runtime shut down).
    #[error("the transfer task ended without a result")]
    TaskEnded,
    /// A [`FileRequest`](crate::FileRequest) with neither a name nor a hash.
    #[error("a file request needs a name or a hash")]
    EmptyRequest,
    /// The file given to serve a request does not have the hash the peer asked for.
    #[error("the file to serve does not have the requested {} hash", algo.name())]
    NotTheRequestedFile {
        /// The algorithm whose digest differs.
        algo: crate::HashAlgo,
    },
}

impl ErrorKind {
    /// This error, with every source below it, joined with `": "` (what `--json` prints).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }

    /// A copy for the event stream: typed sources are shared, io errors keep their kind
    /// and message.
    pub(crate) fn copy(&self) -> Self {
        match self {
            Self::Declined { text } => Self::Declined { text: text.clone() },
            Self::NoCommonMethod => Self::NoCommonMethod,
            Self::Rejected(e) => Self::Rejected(e.clone()),
            Self::Cancelled(s) => Self::Cancelled(*s),
            Self::Truncated { expected, got } => Self::Truncated {
                expected: *expected,
                got: *got,
            },
            Self::TooLong { expected } => Self::TooLong {
                expected: *expected,
            },
            Self::HashMismatch {
                algo,
                offered,
                received,
            } => Self::HashMismatch {
                algo: *algo,
                offered: offered.clone(),
                received: received.clone(),
            },
            Self::TooLarge { size, limit } => Self::TooLarge {
                size: *size,
                limit: *limit,
            },
            Self::NoSpace { size, available } => Self::NoSpace {
                size: *size,
                available: *available,
            },
            Self::Exists(p) => Self::Exists(p.clone()),
            Self::Timeout(d) => Self::Timeout(*d),
            Self::NoProxy => Self::NoProxy,
            Self::S5b(e) => Self::S5b(e.clone()),
            Self::Ibb(e) => Self::Ibb(e.clone()),
            Self::Si(e) => Self::Si(e.clone()),
            Self::File(e) => Self::File(e.clone()),
            Self::Write(e) => Self::Write(e.clone()),
            Self::Disco(e) => Self::Disco(e.clone()),
            Self::Hash(e) => Self::Hash(*e),
            Self::Jingle(e) => Self::Jingle(e.clone()),
            Self::Misuse(e) => Self::Misuse(e.clone()),
            Self::Transport(e) => Self::Transport(e.clone()),
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl From<crate::JingleError> for ErrorKind {
    fn from(e: crate::JingleError) -> Self {
        Self::Jingle(Arc::new(e))
    }
}

impl From<Misuse> for ErrorKind {
    fn from(m: Misuse) -> Self {
        Self::Misuse(m)
    }
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
            other => Self::Si(Arc::new(xep0095_si::Error::Rejected(other))),
        }
    }
}

impl From<xep0095_si::Error> for ErrorKind {
    fn from(e: xep0095_si::Error) -> Self {
        match e {
            xep0095_si::Error::Rejected(r) => r.into(),
            xep0095_si::Error::Timeout(d) => Self::Timeout(d),
            other => Self::Si(Arc::new(other)),
        }
    }
}

impl From<xep0065_s5b::Error> for ErrorKind {
    fn from(e: xep0065_s5b::Error) -> Self {
        match e {
            xep0065_s5b::Error::Rejected(se) => Self::Rejected(se),
            xep0065_s5b::Error::Timeout(d) => Self::Timeout(d),
            other => Self::S5b(Arc::new(other)),
        }
    }
}

impl From<xep0047_ibb::Error> for ErrorKind {
    fn from(e: xep0047_ibb::Error) -> Self {
        match e {
            xep0047_ibb::Error::Rejected(se) => Self::Rejected(se),
            xep0047_ibb::Error::ClosedByPeer => Self::Cancelled(Side::Peer),
            other => Self::Ibb(other),
        }
    }
}

impl From<xep0096_file::FileError> for ErrorKind {
    fn from(e: xep0096_file::FileError) -> Self {
        Self::File(e)
    }
}

impl From<xep0096_file::WriteError> for ErrorKind {
    /// The outcomes an application matches on (too long, truncated, hash mismatch, exists,
    /// i/o) are hoisted; the rest stays typed in [`ErrorKind::Write`].
    fn from(e: xep0096_file::WriteError) -> Self {
        use xep0096_file::WriteError as W;
        match e {
            W::TooManyBytes { expected, .. } => Self::TooLong { expected },
            W::SizeMismatch { expected, received } => Self::Truncated {
                expected,
                got: received,
            },
            W::HashMismatch {
                algorithm,
                expected,
                actual,
            } => Self::HashMismatch {
                algo: crate::hash_algo::HashAlgo::from_name(algorithm)
                    .unwrap_or(crate::hash_algo::HashAlgo::Md5),
                offered: expected,
                received: actual,
            },
            W::Exists(p) => Self::Exists(p),
            other => Self::Write(Arc::new(other)),
        }
    }
}

impl From<xep0030_disco::Error> for ErrorKind {
    fn from(e: xep0030_disco::Error) -> Self {
        Self::Disco(Arc::new(e))
    }
}

impl From<xep0096_file::LaneGone> for ErrorKind {
    fn from(e: xep0096_file::LaneGone) -> Self {
        Self::Hash(e)
    }
}

impl From<ft_transport::iq::IqError> for ErrorKind {
    fn from(e: ft_transport::iq::IqError) -> Self {
        match e {
            ft_transport::iq::IqError::Rejected(e) => Self::Rejected(e),
            ft_transport::iq::IqError::Timeout(d) => Self::Timeout(d),
            other => Self::Transport(Arc::new(other)),
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
    fn crate_errors_arrive_typed_as_the_source() {
        use std::error::Error as _;
        let k = ErrorKind::from(xep0047_ibb::Error::Protocol(
            xep0047_ibb::ProtocolError::DuplicateSid,
        ));
        assert!(matches!(
            &k,
            ErrorKind::Ibb(xep0047_ibb::Error::Protocol(
                xep0047_ibb::ProtocolError::DuplicateSid
            ))
        ));
        let source = k.source().expect("the ibb error is the source");
        assert!(source.downcast_ref::<xep0047_ibb::Error>().is_some());
        assert!(k.chain().starts_with("in-band bytestream failed: "));

        let k = ErrorKind::from(xep0065_s5b::Error::NoStreamHost(Vec::new()));
        let ErrorKind::S5b(e) = &k else {
            panic!("{k:?}")
        };
        assert!(matches!(**e, xep0065_s5b::Error::NoStreamHost(_)));
        assert!(
            k.source()
                .and_then(|s| s.downcast_ref::<Arc<xep0065_s5b::Error>>())
                .is_some()
                || k.source()
                    .and_then(|s| s.downcast_ref::<xep0065_s5b::Error>())
                    .is_some()
        );

        let k = ErrorKind::from(xep0095_si::Error::Protocol(
            xep0095_si::SiError::NoChosenMethod,
        ));
        assert!(matches!(&k, ErrorKind::Si(e) if matches!(**e, xep0095_si::Error::Protocol(_))));

        let k = ErrorKind::from(Misuse::NoMethod);
        assert_eq!(k.chain(), "misuse: no method configured");
    }

    #[test]
    fn refusals_and_timeouts_are_hoisted_whatever_the_crate() {
        let rejected = Box::new(ft_transport::util::stanza_error(
            xmpp_parsers::stanza_error::ErrorType::Cancel,
            xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound,
        ));
        assert!(matches!(
            ErrorKind::from(xep0065_s5b::Error::Rejected(rejected.clone())),
            ErrorKind::Rejected(_)
        ));
        assert!(matches!(
            ErrorKind::from(xep0047_ibb::Error::Rejected(rejected)),
            ErrorKind::Rejected(_)
        ));
        assert!(matches!(
            ErrorKind::from(xep0065_s5b::Error::Timeout(Duration::from_secs(1))),
            ErrorKind::Timeout(_)
        ));
        assert!(matches!(
            ErrorKind::from(xep0047_ibb::Error::ClosedByPeer),
            ErrorKind::Cancelled(Side::Peer)
        ));
    }

    #[test]
    fn si_decline_becomes_declined_with_the_text() {
        let k = ErrorKind::from(xep0095_si::Rejection::Declined {
            text: Some("busy".into()),
        });
        assert_eq!(k.to_string(), "the peer declined: busy");
    }
}
