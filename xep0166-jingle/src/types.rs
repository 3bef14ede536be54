//! The values the core hands up and takes: session keys, contents, roles, states, settings.

use std::time::Duration;

use jid::FullJid;
use minidom::Element;
use xmpp_parsers::jingle::{ContentId, Creator, Senders};

pub use ft_transport::Sid;

/// One session: the peer's full JID and the sid. Sessions are routed by both, so a sid
/// reused by another JID is another session (or unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The other party.
    pub peer: FullJid,
    /// The session id (a bounded NMTOKEN, [`Sid`]).
    pub sid: Sid,
}

impl SessionKey {
    /// A key from its parts.
    pub fn new(peer: FullJid, sid: Sid) -> Self {
        Self { peer, sid }
    }
}

/// Which side of a session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent session-initiate.
    Initiator,
    /// We received it.
    Responder,
}

/// Where a session is (XEP-0166 §6.1's PENDING and ACTIVE; ENDED sessions are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Initiated, not yet accepted.
    Pending,
    /// Accepted.
    Active,
}

/// A `<content/>` as the core sees it: the attributes it checks, and the application's
/// `<description/>` and the transport's `<transport/>` as opaque elements, which the
/// application and transport crates parse themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Which party created the content (its name is unique per creator).
    pub creator: Creator,
    /// The content's name.
    pub name: ContentId,
    /// Which parties send media (`both` when absent).
    pub senders: Senders,
    /// The application's `<description/>`.
    pub description: Option<Element>,
    /// The transport's `<transport/>`.
    pub transport: Option<Element>,
}

impl Content {
    /// A content with no payload and `senders='both'`.
    pub fn new(creator: Creator, name: impl Into<String>) -> Self {
        Self {
            creator,
            name: ContentId(name.into()),
            senders: Senders::Both,
            description: None,
            transport: None,
        }
    }

    /// Sets `senders`.
    #[must_use]
    pub fn with_senders(mut self, senders: Senders) -> Self {
        self.senders = senders;
        self
    }

    /// Sets the `<description/>`.
    #[must_use]
    pub fn with_description(mut self, d: impl Into<Element>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Sets the `<transport/>`.
    #[must_use]
    pub fn with_transport(mut self, t: impl Into<Element>) -> Self {
        self.transport = Some(t.into());
        self
    }

    /// The namespace of the transport, if any (how a transport is identified).
    pub fn transport_ns(&self) -> Option<String> {
        self.transport.as_ref().map(Element::ns)
    }

    /// The namespace of the description, if any.
    pub fn description_ns(&self) -> Option<String> {
        self.description.as_ref().map(Element::ns)
    }

    /// Whether this content is the one (`creator`, `name`) designates.
    pub fn is(&self, creator: &Creator, name: &ContentId) -> bool {
        &self.creator == creator && &self.name == name
    }
}

/// Settings. `Default` gives the documented values.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The prefix of the ids of the iqs we send (unique per connection). Default `"jg"`.
    pub id_prefix: String,
    /// Sessions at once, in total. Default 256.
    pub max_sessions: usize,
    /// Sessions at once with one peer full JID. Default 16.
    pub max_sessions_per_peer: usize,
    /// Contents per session (and per action). Default 4 (file transfer uses one).
    pub max_contents: usize,
    /// How long we wait for the answer to an iq we sent. Default 30 s.
    pub request_timeout: Duration,
    /// How long a session may stay PENDING (the initiator waits for session-accept, the
    /// responder's user for a decision). Default 300 s.
    pub pending_timeout: Duration,
    /// How long a transport-replace may wait for transport-accept/-reject, either way.
    /// Default 30 s.
    pub replace_timeout: Duration,
    /// The namespaces of the session-info children we hand up; any other child is answered
    /// `feature-not-implemented` + `<unsupported-info/>`. Default empty (the application
    /// adds its own, e.g. `urn:xmpp:jingle:apps:file-transfer:5`).
    pub session_info_ns: Vec<String>,
    /// Whether the application answers transport-info itself: a transport-info with one
    /// content is then not acknowledged on arrival; its [`Event::TransportInfo`](crate::Event::TransportInfo)
    /// carries the iq's id and the application answers with
    /// [`Endpoint::answer_transport_info`](crate::Endpoint::answer_transport_info) once
    /// its transport judged the element (XEP-0260's `bad-request` for a `candidate-used`
    /// naming a cid never offered). Unanswered within [`Config::answer_timeout`] it is
    /// acknowledged. Default `false` (acknowledged at once).
    pub defer_transport_info: bool,
    /// How long a deferred transport-info waits for the application's answer. Default 5 s.
    pub answer_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            id_prefix: "jg".to_owned(),
            max_sessions: 256,
            max_sessions_per_peer: 16,
            max_contents: 4,
            request_timeout: Duration::from_secs(30),
            pending_timeout: Duration::from_secs(300),
            replace_timeout: Duration::from_secs(30),
            session_info_ns: Vec::new(),
            defer_transport_info: false,
            answer_timeout: Duration::from_secs(5),
        }
    }
}
