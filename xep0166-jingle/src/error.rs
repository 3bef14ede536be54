//! Errors: the XEP-0166 stanza errors we answer with ([`JingleCondition`], [`jingle_error`]),
//! what a peer's jingle iq did wrong ([`Rejected`]) and what a caller asked that the session
//! state does not allow ([`Misuse`]).

use minidom::Element;
use xmpp_parsers::jingle::{Action, ContentId, Creator};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::SessionKey;

/// The namespace of the Jingle-specific error conditions (XEP-0166 §11).
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";

/// A Jingle-specific error condition, sent beside the XMPP one (XEP-0166 §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JingleCondition {
    /// `<out-of-order/>`, with `unexpected-request`.
    OutOfOrder,
    /// `<tie-break/>`, with `conflict`.
    TieBreak,
    /// `<unknown-session/>`, with `item-not-found`.
    UnknownSession,
    /// `<unsupported-info/>`, with `feature-not-implemented`.
    UnsupportedInfo,
}

impl JingleCondition {
    /// The element's local name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OutOfOrder => "out-of-order",
            Self::TieBreak => "tie-break",
            Self::UnknownSession => "unknown-session",
            Self::UnsupportedInfo => "unsupported-info",
        }
    }

    /// The condition a stanza error carries, if any.
    pub fn of(error: &StanzaError) -> Option<Self> {
        let other = error.other.as_ref()?;
        if other.ns() != NS_JINGLE_ERRORS {
            return None;
        }
        [
            Self::OutOfOrder,
            Self::TieBreak,
            Self::UnknownSession,
            Self::UnsupportedInfo,
        ]
        .into_iter()
        .find(|c| c.name() == other.name())
    }
}

/// Why we refused a peer's jingle iq: each maps to the stanza error XEP-0166 names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// No session with this (peer full JID, sid): `cancel/item-not-found` + `<unknown-session/>`.
    #[error("unknown session")]
    UnknownSession,
    /// The action is not allowed in the session's state or from this party:
    /// `wait/unexpected-request` + `<out-of-order/>`.
    #[error("{action:?} out of order: {why}")]
    OutOfOrder {
        /// The action received.
        action: Action,
        /// Which rule it broke.
        why: &'static str,
    },
    /// A session-initiate with a sid we use with this peer as initiator ourselves:
    /// `cancel/conflict` + `<tie-break/>`.
    #[error("session-initiate for a sid we initiated")]
    TieBreak,
    /// An action this core does not implement (or an unknown action attribute):
    /// `cancel/feature-not-implemented`.
    #[error("action {0:?} not implemented")]
    NotImplemented(String),
    /// A session-info child we do not understand: `modify/feature-not-implemented` +
    /// `<unsupported-info/>`.
    #[error("unsupported session-info <{name} xmlns='{ns}'/>")]
    UnsupportedInfo {
        /// The child's name.
        name: String,
        /// Its namespace.
        ns: String,
    },
    /// A content (creator, name) the session does not have: `cancel/item-not-found`.
    #[error("no content {name:?} created by {creator:?}")]
    UnknownContent {
        /// The content's creator.
        creator: Creator,
        /// The content's name.
        name: ContentId,
    },
    /// Malformed, or an `initiator`/`responder` that is not the sender: `cancel/bad-request`.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Over a bound (contents per session): `wait/resource-constraint`.
    #[error("over a bound: {0}")]
    ResourceConstraint(&'static str),
}

impl Rejected {
    /// The stanza error for the iq that carried it.
    pub fn to_stanza_error(&self) -> StanzaError {
        use DefinedCondition as D;
        use ErrorType as T;
        match self {
            Self::UnknownSession => {
                jingle_error(T::Cancel, D::ItemNotFound, JingleCondition::UnknownSession)
            }
            Self::OutOfOrder { .. } => {
                jingle_error(T::Wait, D::UnexpectedRequest, JingleCondition::OutOfOrder)
            }
            Self::TieBreak => jingle_error(T::Cancel, D::Conflict, JingleCondition::TieBreak),
            Self::UnsupportedInfo { .. } => jingle_error(
                T::Modify,
                D::FeatureNotImplemented,
                JingleCondition::UnsupportedInfo,
            ),
            Self::NotImplemented(_) => plain(T::Cancel, D::FeatureNotImplemented),
            Self::UnknownContent { .. } => plain(T::Cancel, D::ItemNotFound),
            Self::BadRequest(_) => plain(T::Cancel, D::BadRequest),
            Self::ResourceConstraint(_) => plain(T::Wait, D::ResourceConstraint),
        }
    }
}

fn plain(type_: ErrorType, cond: DefinedCondition) -> StanzaError {
    ft_transport::util::stanza_error(type_, cond)
}

/// A stanza error with a Jingle-specific condition element.
pub fn jingle_error(
    type_: ErrorType,
    cond: DefinedCondition,
    jingle: JingleCondition,
) -> StanzaError {
    let mut e = plain(type_, cond);
    e.other = Some(Element::bare(jingle.name(), NS_JINGLE_ERRORS));
    e
}

/// A command the session's state does not allow; nothing was sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// No such session (never created, or ended).
    #[error("no session {0:?}")]
    NoSession(SessionKey),
    /// A session with this key exists already.
    #[error("session {0:?} exists already")]
    Exists(SessionKey),
    /// The command is not for this role or state (accept twice, accept as initiator, …).
    #[error("{action:?} not allowed now: {why}")]
    NotNow {
        /// The action asked for.
        action: Action,
        /// Why not.
        why: &'static str,
    },
    /// A content the session does not have.
    #[error("no content {0:?}")]
    NoContent(ContentId),
    /// Over a bound of the [`Config`](crate::Config).
    #[error("over a bound: {0}")]
    Bound(&'static str),
    /// Empty contents where some are needed, or one without a description or transport.
    #[error("bad contents: {0}")]
    BadContents(&'static str),
}
