//! What an [`FtSession`](crate::FtSession) is and reports.

use minidom::Element;
use xep0166_jingle::{EndCause, Reason, RequestError};
use xmpp_parsers::hashes::Hash;
use xmpp_parsers::jingle::Action;
use xmpp_parsers::jingle_ft::Range;

use crate::info::Checksum;

/// Which way the file goes, seen from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We send the bytes (our offer, or a peer's request we serve).
    Send,
    /// We receive them (a peer's offer, or our request).
    Receive,
}

/// Where the negotiation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtState {
    /// We initiated; waiting for session-accept.
    Offered,
    /// The peer initiated; waiting for our [`FtSession::accept`](crate::FtSession::accept) or [`FtSession::decline`](crate::FtSession::decline).
    Incoming,
    /// Accepted: transport negotiation and the bytes.
    Accepted,
    /// Over.
    Ended,
}

/// What the session reports, from the core's events.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FtEvent {
    /// The peer accepted (our offer or request); its transport element and, for a resume, the
    /// range it wants.
    Accepted {
        /// The peer's `<transport/>`.
        transport: Option<Element>,
        /// The `<range/>` of its description, if any.
        range: Option<Range>,
    },
    /// transport-info from the peer (its candidates, candidate-used, …).
    TransportInfo(Element),
    /// The peer proposes this transport instead (answer with [`FtSession::accept_transport`](crate::FtSession::accept_transport)
    /// or [`FtSession::reject_transport`](crate::FtSession::reject_transport)).
    TransportReplace(Element),
    /// The peer accepted our transport-replace.
    TransportAccepted(Option<Element>),
    /// The peer rejected our transport-replace.
    TransportRejected,
    /// A `<checksum/>` for this file.
    Checksum(Checksum),
    /// The peer has received the whole file.
    Received,
    /// One of our iqs failed (the session may go on, except where `Ended` follows).
    RequestFailed {
        /// Its action.
        action: Action,
        /// How.
        error: RequestError,
    },
    /// The session is over.
    Ended {
        /// The reason, when one was given (ours or the peer's).
        reason: Option<Reason>,
        /// The core's account.
        cause: EndCause,
    },
}

/// How a received file's digest compares with what the peer announced.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every algorithm both sides have agrees.
    Match,
    /// One disagrees: the file is bad (terminate with `media-error`, keep no file).
    Mismatch(Hash),
    /// No algorithm in common (or the peer announced none): unverified.
    Unverified,
}
