//! What the session table reports.

use minidom::Element;
use xmpp_parsers::jingle::{Action, Reason, ReasonElement};
use xmpp_parsers::stanza_error::StanzaError;

use crate::types::{Content, SessionKey};

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EndCause {
    /// The peer sent session-terminate (with its reason, if any).
    ByPeer(Option<ReasonElement>),
    /// We called [`Endpoint::terminate`](crate::Endpoint::terminate).
    ByUs(Reason),
    /// A wait ran out (PENDING too long, a transport-replace unanswered, an iq of ours
    /// unanswered); we sent session-terminate with `<timeout/>`.
    Timeout,
    /// The peer answered our session-initiate or session-accept with an error.
    Refused(Action, StanzaError),
}

/// How one of our requests failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// The peer answered with this error.
    Stanza(Box<StanzaError>),
    /// No answer within [`Config::request_timeout`](crate::Config::request_timeout).
    Timeout,
}

/// What happened, for the application and transport layers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A peer initiated a session (we are responder; it is PENDING until [`Endpoint::accept`](crate::Endpoint::accept)
    /// or [`Endpoint::terminate`](crate::Endpoint::terminate)).
    Initiated {
        /// The session.
        key: SessionKey,
        /// Its contents, with their descriptions and transports.
        contents: Vec<Content>,
    },
    /// The peer accepted our session (now ACTIVE).
    Accepted {
        /// The session.
        key: SessionKey,
        /// The contents as accepted (the responder's transports).
        contents: Vec<Content>,
    },
    /// transport-info for one content.
    TransportInfo {
        /// The session.
        key: SessionKey,
        /// The content, with its `<transport/>`.
        content: Content,
        /// With [`Config::defer_transport_info`](crate::Config::defer_transport_info): the
        /// id of the iq, not answered yet; answer it with
        /// [`Endpoint::answer_transport_info`](crate::Endpoint::answer_transport_info).
        /// `None`: acknowledged already.
        answer: Option<String>,
    },
    /// The peer proposes another transport; answer with [`Endpoint::transport_accept`](crate::Endpoint::transport_accept) or
    /// [`Endpoint::transport_reject`](crate::Endpoint::transport_reject) before [`Config::replace_timeout`](crate::Config::replace_timeout).
    TransportReplace {
        /// The session.
        key: SessionKey,
        /// The content with the proposed transport.
        content: Content,
    },
    /// The peer accepted our transport-replace.
    TransportAccepted {
        /// The session.
        key: SessionKey,
        /// The content (with the peer's transport element, if it sent one).
        content: Content,
    },
    /// The peer rejected our transport-replace; the previous transport stays.
    TransportRejected {
        /// The session.
        key: SessionKey,
        /// The content.
        content: Content,
    },
    /// A session-info child in one of [`Config::session_info_ns`](crate::Config::session_info_ns).
    SessionInfo {
        /// The session.
        key: SessionKey,
        /// The child (`<checksum/>`, `<received/>`, …).
        payload: Element,
    },
    /// The session is over and removed.
    Ended {
        /// The session.
        key: SessionKey,
        /// Why.
        cause: EndCause,
    },
    /// The peer acknowledged one of our iqs.
    RequestDone {
        /// The session it was for.
        key: SessionKey,
        /// The iq id (as returned by the command).
        id: String,
        /// Its action.
        action: Action,
    },
    /// One of our iqs failed.
    RequestFailed {
        /// The session it was for.
        key: SessionKey,
        /// The iq id.
        id: String,
        /// Its action.
        action: Action,
        /// How.
        error: RequestError,
    },
}
