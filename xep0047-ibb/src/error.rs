//! Errors, grouped by who is at fault.

use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// A malformed IBB payload from the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The `sid` attribute is absent or empty.
    #[error("ibb element has no sid")]
    MissingSid,
    /// The `sid` is not a valid stream id (overlong, or not an NMTOKEN).
    #[error("bad sid")]
    BadSid(#[source] ft_transport::InvalidSid),
    /// `<open/>` has no `block-size`.
    #[error("ibb open has no block-size")]
    MissingBlockSize,
    /// `block-size` is not a number.
    #[error("ibb block-size {0:?} is not a number")]
    InvalidBlockSize(String),
    /// `block-size` is 0 or above 65535.
    #[error("ibb block-size {0} is outside 1..=65535")]
    BlockSizeOutOfRange(u32),
    /// `stanza` is neither `iq` nor `message`.
    #[error("ibb stanza kind {0:?} is neither iq nor message")]
    InvalidStanzaKind(String),
    /// `<data/>` has no `seq`.
    #[error("ibb data has no seq")]
    MissingSeq,
    /// `seq` is not a 16-bit unsigned integer.
    #[error("ibb seq {0:?} is not a 16-bit unsigned integer")]
    InvalidSeq(String),
    /// The chunk text is not RFC 4648 §4 base64.
    #[error("ibb data is not valid base64 (rfc 4648 section 4)")]
    InvalidBase64,
    /// An element in the IBB namespace that the XEP does not define.
    #[error("unknown ibb element <{0}/>")]
    UnknownElement(String),
}

/// The peer broke XEP-0047 on a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Data or close for a sid with no open session (XEP-0047 §2.2: `cancel/item-not-found`).
    #[error("no open ibb session with this sid")]
    UnknownSession,
    /// An open for a sid that is already in use (`cancel/not-acceptable`).
    #[error("ibb sid is already in use")]
    DuplicateSid,
    /// A chunk whose seq is not the next expected one: a gap or a replay
    /// (XEP-0047 §2.2: `cancel/unexpected-request`).
    #[error("ibb seq {got} received, {expected} expected")]
    UnexpectedSeq {
        /// The seq expected next.
        expected: u16,
        /// The seq received.
        got: u16,
    },
    /// A chunk that is not valid base64 or lacks `seq` (XEP-0047 §2.2: `cancel/bad-request`).
    #[error("malformed ibb data: {0}")]
    Malformed(PayloadError),
    /// A chunk larger than the negotiated block-size (`cancel/bad-request`, BAD-INPUT A5 and
    /// F9), found from the text's length before decoding or after it.
    #[error("ibb chunk of {len} bytes exceeds block-size {block_size}")]
    ChunkTooLarge {
        /// The decoded chunk length (when refused from the text: the least it would decode
        /// to).
        len: usize,
        /// The negotiated block-size.
        block_size: u16,
    },
    /// An open asking for a block-size above the local limit (`modify/resource-constraint`).
    #[error("ibb block-size {requested} exceeds limit {limit}")]
    BlockSizeTooLarge {
        /// What the peer asked for.
        requested: u16,
        /// The local maximum.
        limit: u16,
    },
    /// Message-mode data arrived faster than the reader consumed it and the receive buffer
    /// reached its hard cap (`wait/resource-constraint`).
    #[error("ibb receive buffer overflow ({0} bytes buffered)")]
    ReceiveBufferOverflow(usize),
    /// iq-mode data went on arriving while this many chunks were held unacknowledged
    /// ([`Config::max_queued_blocks`](crate::Config::max_queued_blocks)):
    /// `cancel/resource-constraint`.
    #[error("the peer sent more than {0} ibb chunks without waiting for their acknowledgement")]
    TooManyUnacknowledged(usize),
}

impl From<&ProtocolError> for StanzaError {
    fn from(e: &ProtocolError) -> Self {
        let (t, c) = match e {
            ProtocolError::UnknownSession => (ErrorType::Cancel, DefinedCondition::ItemNotFound),
            ProtocolError::DuplicateSid => (ErrorType::Cancel, DefinedCondition::NotAcceptable),
            ProtocolError::UnexpectedSeq { .. } => {
                (ErrorType::Cancel, DefinedCondition::UnexpectedRequest)
            }
            ProtocolError::Malformed(_) => (ErrorType::Cancel, DefinedCondition::BadRequest),
            ProtocolError::ChunkTooLarge { .. } => {
                (ErrorType::Cancel, DefinedCondition::BadRequest)
            }
            ProtocolError::BlockSizeTooLarge { .. } => {
                (ErrorType::Modify, DefinedCondition::ResourceConstraint)
            }
            ProtocolError::ReceiveBufferOverflow(_) => {
                (ErrorType::Wait, DefinedCondition::ResourceConstraint)
            }
            ProtocolError::TooManyUnacknowledged(_) => {
                (ErrorType::Cancel, DefinedCondition::ResourceConstraint)
            }
        };
        Self::new(t, c, "en", "")
    }
}

/// What a timeout was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The answer to our `<open/>`.
    Open,
    /// The acknowledgement of a data chunk.
    Ack,
    /// The answer to our `<close/>`, or the flush before it.
    Close,
    /// Nothing at all happened on the session.
    Inactivity,
    /// An expected incoming open did not arrive.
    Expect,
}

/// The caller did something wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// Writing after `close()` or after the session ended.
    #[error("ibb session is closed for writing")]
    WriteAfterClose,
    /// A block-size of 0 was asked for.
    #[error("ibb block-size must be at least 1")]
    ZeroBlockSize,
    /// Opening a sid that is already in use with that peer.
    #[error("ibb sid is already in use with this peer")]
    SidInUse,
}

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bad XML or bytes.
    #[error("malformed ibb payload: {0}")]
    Malformed(#[from] PayloadError),
    /// The peer broke the XEP.
    #[error("ibb protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer (or its server) answered with an error.
    #[error("ibb rejected by peer: {0:?}")]
    Rejected(Box<StanzaError>),
    /// The peer closed the session before our data was acknowledged.
    #[error("ibb session closed by peer with data unacknowledged")]
    ClosedByPeer,
    /// A wait ran out.
    #[error("ibb timed out waiting for {0:?}")]
    Timeout(TimeoutKind),
    /// The caller did something wrong.
    #[error("ibb misuse: {0}")]
    Misuse(#[from] MisuseError),
    /// Sending through the transport failed (only from the `tokio` driver).
    #[error("ibb transport error: {0}")]
    Io(#[from] std::io::Error),
}

impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Self::Malformed(e) => Self::Malformed(e.clone()),
            Self::Protocol(e) => Self::Protocol(e.clone()),
            Self::Rejected(e) => Self::Rejected(e.clone()),
            Self::ClosedByPeer => Self::ClosedByPeer,
            Self::Timeout(k) => Self::Timeout(*k),
            Self::Misuse(e) => Self::Misuse(e.clone()),
            Self::Io(e) => Self::Io(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

impl Error {
    /// The stanza error condition, if this error came from or was sent to the wire.
    pub fn condition(&self) -> Option<DefinedCondition> {
        match self {
            Self::Rejected(e) => Some(e.defined_condition.clone()),
            Self::Protocol(p) => Some(StanzaError::from(p).defined_condition),
            _ => None,
        }
    }
}

impl From<ft_transport::InvalidSid> for PayloadError {
    /// An empty sid is a missing one; anything else a bad one.
    fn from(e: ft_transport::InvalidSid) -> Self {
        match e {
            ft_transport::InvalidSid::Empty => Self::MissingSid,
            other => Self::BadSid(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_gap_maps_to_cancel_unexpected_request() {
        let e = StanzaError::from(&ProtocolError::UnexpectedSeq {
            expected: 1,
            got: 3,
        });
        assert_eq!(e.type_, ErrorType::Cancel);
        assert_eq!(e.defined_condition, DefinedCondition::UnexpectedRequest);
    }

    #[test]
    fn display_is_lowercase_with_context() {
        let e = ProtocolError::BlockSizeTooLarge {
            requested: 65535,
            limit: 8192,
        };
        assert_eq!(e.to_string(), "ibb block-size 65535 exceeds limit 8192");
    }
}
