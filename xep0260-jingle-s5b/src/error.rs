//! Typed errors: [`InputError`] for a peer's transport element we refuse (the answer to its
//! iq), [`Error`] for a negotiation that failed (the application falls back).

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use xep0065_s5b::{Attempt, Failure};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// The namespace of Jingle's own error conditions (XEP-0166 §10).
pub const JINGLE_ERRORS_NS: &str = "urn:xmpp:jingle:errors:1";

/// A transport element (from session-initiate, session-accept or transport-info) that we
/// refuse. The negotiation is left as it was: the application answers the iq with
/// [`stanza_error`](Self::stanza_error) and the peer may still send a correct one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The element is not a valid s5b:1 transport.
    #[error("malformed transport: {0}")]
    Malformed(&'static str),
    /// `mode='udp'`: not supported.
    #[error("udp mode is not supported")]
    Udp,
    /// The transport sid is not this negotiation's.
    #[error("transport sid {got:?} is not {expected:?}")]
    WrongSid {
        /// This negotiation's sid.
        expected: String,
        /// The element's.
        got: String,
    },
    /// `candidate-used` or `activated` names a cid that was never offered (by us for
    /// candidate-used, or by the peer for activated), or not the one used.
    #[error("cid {0:?} was never offered or is not the one in use")]
    UnknownCid(String),
    /// Valid, but not now (candidates twice, candidate-used twice, activated before
    /// candidate-used, proxy-error without a nominated proxy, anything after the end).
    #[error("{0} out of order")]
    OutOfOrder(&'static str),
}

impl InputError {
    /// The stanza error to answer the iq with: `modify/bad-request`,
    /// `modify/not-acceptable` (udp), or `cancel/unexpected-request` with
    /// `<out-of-order xmlns='urn:xmpp:jingle:errors:1'/>`.
    pub fn stanza_error(&self) -> StanzaError {
        let (type_, condition, jingle) = match self {
            Self::Malformed(_) | Self::WrongSid { .. } | Self::UnknownCid(_) => {
                (ErrorType::Modify, DefinedCondition::BadRequest, None)
            }
            Self::Udp => (ErrorType::Modify, DefinedCondition::NotAcceptable, None),
            Self::OutOfOrder(_) => (
                ErrorType::Cancel,
                DefinedCondition::UnexpectedRequest,
                Some(Element::builder("out-of-order", JINGLE_ERRORS_NS).build()),
            ),
        };
        let mut e = StanzaError::new(type_, condition, "en", self.to_string());
        e.other = jingle;
        e
    }
}

/// Why a negotiation failed. On any of these the composing layer falls back (XEP-0260 §5:
/// transport-replace to IBB) or terminates with `<connectivity-error/>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Both sides sent candidate-error (XEP-0260 §2.4): nothing connects.
    #[error("no candidate connected on either side ({} of the peer's tried)", attempts.len())]
    NoCandidate {
        /// Our attempts at the peer's candidates.
        attempts: Vec<Attempt>,
    },
    /// The nominated candidate is our proxy and we could not connect to it.
    #[error("cannot connect to our proxy {proxy}")]
    ProxyConnect {
        /// The proxy.
        proxy: Jid,
        /// Why.
        #[source]
        source: Failure,
    },
    /// The nominated candidate is our proxy and it refused the activation.
    #[error("the proxy {proxy} refused the activation: {condition:?}")]
    ProxyActivation {
        /// The proxy.
        proxy: Jid,
        /// Its error condition.
        condition: DefinedCondition,
    },
    /// The peer reported `<proxy-error/>` for the nominated proxy.
    #[error("the peer could not use the nominated proxy candidate {cid}")]
    PeerProxyError {
        /// The candidate.
        cid: String,
    },
    /// The whole negotiation took longer than its budget.
    #[error("no bytestream within the {0:?} budget")]
    Timeout(Duration),
}
