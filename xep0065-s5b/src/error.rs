//! Errors, grouped by who is at fault, and their mapping to the wire (stanza error
//! conditions and SOCKS5 reply codes).

use std::time::Duration;

use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::codec::Socks5Error;
use crate::wire::ReplyCode;

/// A `<query xmlns='http://jabber.org/protocol/bytestreams'/>` payload the peer sent is
/// malformed. Every variant maps to `modify/bad-request` ([XEP-0065 §5.3.1]).
///
/// [XEP-0065 §5.3.1]: https://xmpp.org/extensions/xep-0065.html#direct-proto-initiate
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The element is not a bytestreams `<query/>`.
    #[error("element <{name}/> in namespace {ns:?} is not a bytestreams query")]
    NotQuery {
        /// The element name found.
        name: String,
        /// The namespace found.
        ns: String,
    },
    /// An offer or activation has no (or an empty) `sid` attribute.
    #[error("query has no sid attribute")]
    MissingSid,
    /// The `sid` is not a valid stream id (overlong, or not an NMTOKEN).
    #[error("bad sid")]
    BadSid(#[source] ft_transport::InvalidSid),
    /// The `mode` attribute is neither `tcp` nor `udp`.
    #[error("unknown mode {0:?} (expected tcp or udp)")]
    UnknownMode(String),
    /// An offer lists no `<streamhost/>`.
    #[error("offer lists no streamhost")]
    NoStreamHost,
    /// A required attribute is absent.
    #[error("<{element}/> has no {attribute} attribute")]
    MissingAttribute {
        /// The element (`streamhost`, `streamhost-used`).
        element: &'static str,
        /// The attribute name.
        attribute: &'static str,
    },
    /// A `port` attribute is not a number in 1..=65535.
    #[error("streamhost port {0:?} is not a port number in 1..=65535")]
    BadPort(String),
    /// A `host` attribute is neither an IP literal nor a plausible host name.
    #[error("streamhost host {0:?} is not an ip address or host name")]
    BadHost(String),
    /// A JID (attribute or `<activate/>` text) does not parse.
    #[error("{context} {value:?} is not a valid jid: {reason}")]
    BadJid {
        /// Where the JID was found.
        context: &'static str,
        /// The text found.
        value: String,
        /// Why it does not parse (the `jid::Error` text).
        reason: String,
    },
    /// The query holds none of streamhost, streamhost-used or activate where one was needed.
    #[error("query holds no {0}")]
    Missing(&'static str),
}

impl From<&PayloadError> for StanzaError {
    fn from(_: &PayloadError) -> Self {
        stanza_error(ErrorType::Modify, DefinedCondition::BadRequest)
    }
}

/// The peer broke XEP-0065 (well-formed stanzas, wrong content or order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The offer asks for UDP, which this crate does not support (mapped to
    /// `modify/not-acceptable`, the XEP's answer of a target unwilling to accept).
    #[error("udp mode is not supported")]
    UdpNotSupported,
    /// The offer's sid is not one this side expects from that peer (`modify/not-acceptable`).
    #[error("no session {sid:?} expected from {from}")]
    UnexpectedSid {
        /// The sid offered.
        sid: String,
        /// Who offered it.
        from: String,
    },
    /// `streamhost-used` names a JID that was not offered.
    #[error("streamhost-used names {0}, which was not offered")]
    UnknownStreamHostUsed(String),
    /// A SOCKS5 CONNECT named a DST.ADDR no session waits for.
    #[error("socks5 dst.addr {0:?} matches no pending session")]
    UnknownDstAddr(String),
    /// A result came without the payload it needs.
    #[error("result has no {0}")]
    MissingPayload(&'static str),
}

impl From<&ProtocolError> for StanzaError {
    fn from(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::UdpNotSupported | ProtocolError::UnexpectedSid { .. } => {
                stanza_error(ErrorType::Modify, DefinedCondition::NotAcceptable)
            }
            ProtocolError::UnknownStreamHostUsed(_) | ProtocolError::UnknownDstAddr(_) => {
                stanza_error(ErrorType::Cancel, DefinedCondition::ItemNotFound)
            }
            ProtocolError::MissingPayload(_) => {
                stanza_error(ErrorType::Modify, DefinedCondition::BadRequest)
            }
        }
    }
}

impl From<&ProtocolError> for ReplyCode {
    fn from(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::UnknownDstAddr(_) => Self::NotAllowed,
            _ => Self::GeneralFailure,
        }
    }
}

/// The caller used the API wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// A session with this sid and peer is already pending.
    #[error("a session {0:?} with this peer is already pending")]
    DuplicateSid(String),
    /// There is no streamhost to offer (no local listener address and no proxy).
    #[error("no streamhost to offer: no listener address and no proxy")]
    NothingToOffer,
    /// The transport's own JID is needed as a full JID for the hash.
    #[error("own jid {0} is not usable for dst.addr")]
    OwnJid(String),
}

/// Why a SOCKS5 bytestream could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent a malformed bytestreams payload.
    #[error("malformed bytestreams payload: {0}")]
    Malformed(#[from] PayloadError),
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer (target, or proxy on activation) answered with a stanza error.
    #[error("peer refused: {:?} ({:?})", .0.defined_condition, .0.type_)]
    Rejected(Box<StanzaError>),
    /// No streamhost could be used; one reason per streamhost tried, in offer order.
    #[error("no streamhost worked ({} tried)", .0.len())]
    NoStreamHost(Vec<crate::Attempt>),
    /// Nothing happened within the time allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The SOCKS5 exchange failed.
    #[error("socks5: {0}")]
    Socks5(#[from] Socks5Error),
    /// The caller misused the API.
    #[error("misuse: {0}")]
    Misuse(#[from] MisuseError),
    /// Sending a stanza failed.
    #[error("could not send a stanza: {0}")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A socket operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The peer's stanza error, if this is a rejection.
    pub fn stanza_error(&self) -> Option<&StanzaError> {
        match self {
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// A stanza error with no text.
pub(crate) fn stanza_error(type_: ErrorType, condition: DefinedCondition) -> StanzaError {
    StanzaError::new(type_, condition, "en", "")
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
